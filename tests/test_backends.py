"""`CompletionsGenerator` over OpenAI-compatible servers.

* End to end against a real ``transformers serve`` process on a loopback port, serving the
  embedded ``tinyworld`` model (or, before the zoo exists, a small random Llama over the
  TinyWorld tokenizer) offline: greedy text equals local greedy decoding of the same weights,
  costs match the server's token counts, seeded sampling repeats, and best-of-N and majority
  voting run through it.
* The protocol against a scripted server answering like vLLM (``n`` honoured, log-probs
  returned) or failing on purpose (unknown model, no usage, too slow, down, 429/500 answers,
  dropped connections), and ``generate_batch``'s concurrency (order, in-flight limit, seeds).
"""
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from workbench import decoding, meta
from workbench.backends import (TRANSFORMERS_SERVE_SAMPLING, BackendError, CompletionsGenerator,
                                ModelNotServed, ServerUnavailable)
from workbench.paths import data_dir
from workbench.scoring import LogProbScorer

PROMPT = "Q: 1+2\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a scripted OpenAI-style server ---------------------------------------------------------

class Scripted(BaseHTTPRequestHandler):
    """Answers /v1/completions like vLLM: n choices, per-token log-probs, usage.

    ``delay`` (seconds, at most) sleeps a random time per request and appends ``[prompt]`` to
    each text; ``failures`` requests in a row are answered with ``fail_status`` (0: the
    connection is closed with no answer; a 429 says ``Retry-After: 0``) before answering
    normally again.  ``inflight`` and
    ``peak`` count the requests being answered at once."""
    mode = "vllm"      # "vllm" | "ignore_n" | "no_usage" | "slow"
    requests = []
    delay, failures, fail_status = 0.0, 0, 500
    inflight = peak = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": "tiny", "object": "model"}]})
        self._send(404, {"detail": "Not Found"})

    def do_POST(self):
        cls = type(self)
        with cls.lock:
            cls.inflight += 1
            cls.peak = max(cls.peak, cls.inflight)
        try:
            self._answer()
        finally:
            with cls.lock:
                cls.inflight -= 1

    def _fail(self) -> bool:
        """Answer with the scripted failure if one is due (True), else do nothing."""
        cls = type(self)
        with cls.lock:
            due = cls.failures > 0
            cls.failures -= due
        if due and cls.fail_status == 0:
            self.close_connection = True  # drop the connection without an answer
        elif due:
            self.send_response(cls.fail_status)
            if cls.fail_status == 429:
                self.send_header("Retry-After", "0")
            raw = json.dumps({"error": {"message": "overloaded, try later"}}).encode()
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        return due

    def _answer(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self._fail():
            return
        if self.delay:
            time.sleep(random.uniform(0, self.delay))
        if body.get("model") not in (None, "tiny"):
            return self._send(404, {"object": "error", "type": "NotFoundError", "code": 404,
                                    "message": f"The model `{body['model']}` does not exist."})
        if body["prompt"] == "too long":
            return self._send(400, {"object": "error", "code": 400, "message":
                                    "This model's maximum context length is 16 tokens."})
        if self.mode == "slow":
            time.sleep(2)
        n = 1 if self.mode == "ignore_n" else body["n"]
        seed = body.get("seed", 0)
        choices = []
        for i in range(n):
            k = 1 + (seed + i) % 3  # 1-3 tokens, depending on seed and index
            toks = [f" t{seed % 7}{j}" for j in range(k)]
            tag = f" [{body['prompt']}]" if self.delay else ""
            choices.append({"index": i, "text": "".join(toks) + f" A: {(seed + i) % 2}" + tag,
                            "finish_reason": "stop",
                            "logprobs": {"tokens": toks, "token_logprobs": [-0.5] * k}})
        out = {"id": "x", "object": "text_completion", "model": "tiny", "choices": choices[::-1]}
        if self.mode != "no_usage":
            out["usage"] = {"prompt_tokens": 5, "completion_tokens": sum(
                len(c["logprobs"]["tokens"]) for c in choices)}
        self._send(200, out)


@pytest.fixture
def scripted():
    Scripted.mode, Scripted.requests = "vllm", []
    Scripted.delay, Scripted.failures, Scripted.fail_status = 0.0, 0, 500
    Scripted.inflight = Scripted.peak = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_batched_request_with_logprobs(scripted):
    g = CompletionsGenerator(scripted + "/v1", model="tiny", max_tokens=8)
    outs = g.generate("x", 4, seed=3)
    assert len(Scripted.requests) == 1 and Scripted.requests[0]["n"] == 4
    assert Scripted.requests[0]["logprobs"] == 1 and Scripted.requests[0]["max_tokens"] == 8
    assert g.batches is True
    seed = Scripted.requests[0]["seed"]
    lens = [1 + (seed + i) % 3 for i in range(4)]
    assert [o.cost.output_tokens for o in outs] == lens  # choices back in index order
    assert [o.logprob for o in outs] == [-0.5 * k for k in lens]
    assert all(o.cost.input_tokens == 5 for o in outs)
    assert sum(o.cost.calls for o in outs) == 1
    assert [o.text for o in g.generate("x", 4, seed=3)] == [o.text for o in outs]


def test_server_ignoring_n_gets_one_request_per_sample(scripted):
    Scripted.mode = "ignore_n"
    g = CompletionsGenerator(scripted, max_tokens=8)
    first = g.generate("x", 3, seed=0)
    assert g.batches is False and len(Scripted.requests) == 3
    seeds = [r["seed"] for r in Scripted.requests]
    assert len(set(seeds)) == 3 and "model" not in Scripted.requests[0]
    assert sum(o.cost.calls for o in first) == 3
    again = g.generate("x", 3, seed=0)  # known now: no probe, same seeds, same outputs
    assert [r["n"] for r in Scripted.requests[3:]] == [1, 1, 1]
    assert [o.text for o in again] == [o.text for o in first]


def test_meta_generators_over_a_batching_server(scripted):
    g = CompletionsGenerator(scripted, model="tiny")
    r = meta.majority_vote("x", g, n=6, seed=1)
    answers = [meta.default_answer(c.text) for c in r.candidates]
    assert r.votes == dict(Counter(answers)) and r.answer == Counter(answers).most_common(1)[0][0]
    b = meta.best_of_n("x", g, LogProbScorer(), n=5, seed=2)
    assert b.scores == [c.logprob for c in b.candidates]
    assert b.text == b.candidates[max(range(5), key=lambda i: (b.scores[i], -i))].text
    assert b.cost.output_tokens == sum(c.cost.output_tokens for c in b.candidates)


def test_clear_errors(scripted):
    with pytest.raises(ModelNotServed, match=r"does not serve model 'big'.*\['tiny'\]"):
        CompletionsGenerator(scripted, model="big").generate("x")
    with pytest.raises(BackendError, match="HTTP 400: This model's maximum") as err:
        CompletionsGenerator(scripted, model="tiny").generate("too long")
    assert not isinstance(err.value, ModelNotServed)
    Scripted.mode = "no_usage"
    with pytest.raises(BackendError, match="usage"):
        CompletionsGenerator(scripted).generate("x")
    Scripted.mode = "slow"
    t = time.time()
    with pytest.raises(ServerUnavailable, match="timeout=0.5"):
        CompletionsGenerator(scripted, timeout=0.5).generate("x")
    assert time.time() - t < 1.9
    with pytest.raises(ServerUnavailable, match="no OpenAI-compatible server answers"):
        CompletionsGenerator(f"http://127.0.0.1:{_free_port()}").generate("x")
    with pytest.raises(ValueError, match="n must be >= 1"):
        CompletionsGenerator(scripted).generate("x", 0)
    with pytest.raises(ValueError, match="temperature"):
        CompletionsGenerator(scripted, temperature=-1)


def test_default_generate_batch_is_the_loop_over_generate():
    g = meta.TextGenerator(lambda p, s: f"{p}:{s}")
    prompts = ["a", "b", "c"]
    batch = g.generate_batch(prompts, 2, seed=5)
    seeds = meta.batch_seeds(5, 3)
    assert [[o.text for o in outs] for outs in batch] == [
        [o.text for o in g.generate(p, 2, s)] for p, s in zip(prompts, seeds)]
    assert len(set(seeds)) == 3  # every prompt its own seed
    plain = meta.generate_batch(lambda p, s: p.upper(), prompts, 1, seed=0)  # a bare function
    assert [outs[0].text for outs in plain] == ["A", "B", "C"]
    assert meta.batch_seeds(None, 2) == [None, None]


def test_batch_keeps_the_prompts_order_under_shuffled_delays(scripted):
    Scripted.delay = 0.2
    prompts = [f"p{i}" for i in range(16)]
    g = CompletionsGenerator(scripted, concurrency=8)
    batch = g.generate_batch(prompts, 2, seed=0)
    assert [len(outs) for outs in batch] == [2] * 16
    assert all(o.text.endswith(f" [{p}]") for p, outs in zip(prompts, batch) for o in outs)
    arrival = [r["prompt"] for r in Scripted.requests]
    assert sorted(arrival) == sorted(prompts) and Scripted.peak > 1  # really concurrent


def test_concurrency_limit_is_respected(scripted):
    Scripted.delay = 0.1
    g = CompletionsGenerator(scripted, concurrency=3)
    g.generate_batch([f"p{i}" for i in range(18)], 1, seed=0)
    assert Scripted.peak == 3 and len(Scripted.requests) == 18
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="concurrency"):
            CompletionsGenerator(scripted, concurrency=bad)
    with pytest.raises(ValueError, match="retries"):
        CompletionsGenerator(scripted, retries=-1)


@pytest.mark.parametrize("mode", ["vllm", "ignore_n"])
def test_same_seed_same_outputs_at_any_concurrency(scripted, mode):
    Scripted.mode, Scripted.delay = mode, 0.05
    prompts = [f"q{i}" for i in range(10)]
    texts = lambda batch: [[o.text for o in outs] for outs in batch]  # noqa: E731
    one = CompletionsGenerator(scripted, concurrency=1)
    first = one.generate_batch(prompts, 3, seed=7)
    eight = CompletionsGenerator(scripted, concurrency=8)
    eight.generate("q0", 3, seed=0)  # learn whether the server honours "n"
    assert texts(eight.generate_batch(prompts, 3, seed=7)) == texts(first)
    seeds = meta.batch_seeds(7, len(prompts))
    assert texts(first) == [[o.text for o in one.generate(p, 3, s)]
                            for p, s in zip(prompts, seeds)]
    assert texts(eight.generate_batch(prompts, 3, seed=8)) != texts(first)
    assert sum(o.cost.calls for outs in first for o in outs) == (
        10 if mode == "vllm" else 30)


@pytest.mark.parametrize("status", [429, 503, 0])
def test_overload_and_dropped_connections_are_retried(scripted, status):
    Scripted.failures, Scripted.fail_status = 2, status
    g = CompletionsGenerator(scripted, retries=2, backoff=0.01)
    out = g("x", seed=1)
    assert len(Scripted.requests) == 3 and out.text.endswith("A: " + out.text[-1])
    assert out.cost.output_tokens >= 1


def test_retries_run_out_with_a_clear_error(scripted):
    Scripted.failures, Scripted.fail_status = 99, 500
    g = CompletionsGenerator(scripted, retries=2, backoff=0.05)
    t = time.time()
    with pytest.raises(BackendError, match=r"/v1/completions answered HTTP 500: overloaded, "
                                           r"try later \(after 3 attempts\)") as err:
        g("x")
    assert scripted in str(err.value)
    assert len(Scripted.requests) == 3 and time.time() - t >= 0.05 + 0.1  # backed off 2 times
    Scripted.requests, Scripted.failures = [], 0
    with pytest.raises(BackendError, match="HTTP 400: This model's maximum"):
        CompletionsGenerator(scripted, retries=3, backoff=0.01).generate("too long")
    assert len(Scripted.requests) == 1  # a 4xx other than 429 is not retried


def test_batch_error_names_the_url(scripted):
    Scripted.failures, Scripted.fail_status = 99, 502
    g = CompletionsGenerator(scripted, retries=1, backoff=0.0, concurrency=4)
    with pytest.raises(BackendError, match=f"{scripted}/v1/completions answered HTTP 502"):
        g.generate_batch(["a", "b", "c", "d"], 1, seed=0)


# -- a real `transformers serve` --------------------------------------------------------------

def _served_model(tmp_path_factory) -> Path:
    """data/models/tinyworld, or a random 2-layer Llama saved with the TinyWorld tokenizer."""
    target = data_dir() / "models" / "tinyworld"
    if (target / "config.json").exists():
        return target
    from transformers import AutoTokenizer

    from conftest import random_llama
    path = tmp_path_factory.mktemp("random-llama")
    tok = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    random_llama(tok, seed=1).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _listening_addresses(port) -> set:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("tcp", "tcp6"):
        f = Path("/proc/net") / name
        for line in f.read_text().splitlines()[1:] if f.exists() else []:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                found.add(addr)
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A `transformers serve` process on 127.0.0.1 serving the model offline; stopped after."""
    for mod in ("fastapi", "uvicorn", "openai"):
        try:
            __import__(mod)
        except ImportError:
            pytest.fail(f"`transformers serve` needs {mod}: run scripts/setup.sh (test extras)")
    path = _served_model(tmp_path_factory)
    port = _free_port()
    cli = Path(sys.executable).with_name("transformers")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with open(log, "w") as out:
        proc = subprocess.Popen([str(cli), "serve", str(path), "--host", "127.0.0.1", "--port",
                                 str(port), "--device", "cpu", "--log-level", "warning"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 420  # imports are slow on a busy 2-core machine
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited ({proc.returncode}): "
                            f"{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"transformers serve not up in 420 s: {log.read_text()[-3000:]}")
            time.sleep(2)
        yield base, path, port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    assert proc.poll() is not None


@pytest.fixture(scope="module")
def local(served):
    import workbench as wb
    return wb.load(str(served[1]))


@pytest.mark.slow
@pytest.mark.tier
def test_server_listens_on_loopback_only(served):
    assert _listening_addresses(served[2]) == {"0100007F"}  # 127.0.0.1, nothing else


@pytest.mark.slow
@pytest.mark.tier
def test_greedy_through_the_server_equals_local_greedy(served, local):
    g = CompletionsGenerator(served[0], temperature=0, max_tokens=24, timeout=300)
    out = g(PROMPT)
    ref = decoding.greedy(local, PROMPT, max_new_tokens=24)
    assert out.text == ref.text
    assert out.cost.input_tokens == len(local.encode(PROMPT))
    # the server counts the end-of-sequence token it generated; local decoding drops it
    assert out.cost.output_tokens == len(ref.token_ids) + (ref.finish_reason == "eos")
    assert out.logprob is None  # transformers serve returns no log-probs (yet)


@pytest.mark.slow
@pytest.mark.tier
def test_seeded_sampling_through_the_server(served):
    g = CompletionsGenerator(served[0], max_tokens=16, timeout=300,
                             extra=TRANSFORMERS_SERVE_SAMPLING)
    story = "Story:"  # many continuations are likely here (the trained model is sure of 1+2)
    a = g.generate(story, 3, seed=0)
    assert g.batches is False  # transformers serve ignores "n": one request per sample
    assert sum(o.cost.calls for o in a) == 3
    assert [o.text for o in g.generate(story, 3, seed=0)] == [o.text for o in a]
    assert [o.text for o in g.generate(story, 3, seed=1)] != [o.text for o in a]


@pytest.mark.slow
@pytest.mark.tier
def test_best_of_n_and_majority_vote_through_the_server(served, local):
    g = CompletionsGenerator(served[0], max_tokens=48, timeout=300, stop=None,
                             extra=TRANSFORMERS_SERVE_SAMPLING)
    n, prompt_len = 5, len(local.encode(PROMPT))
    vote = meta.majority_vote(PROMPT, g, n=n, seed=0)
    answers = [meta.default_answer(c.text) for c in vote.candidates]
    assert len(vote.candidates) == n
    assert vote.votes == {a: float(k) for a, k in Counter(a for a in answers
                                                            if a is not None).items()}
    assert vote.cost.input_tokens == n * prompt_len and vote.cost.calls == n
    best = meta.best_of_n(PROMPT, g, LogProbScorer(local), n=n, seed=1)
    assert best.chosen == max(range(n), key=lambda i: (best.scores[i], -i))
    assert best.text == best.candidates[best.chosen].text
    assert best.cost.external_tokens > 0  # the local model re-scored the server's texts
    if served[1].name == "tinyworld":  # the trained model adds 1 + 2
        assert vote.answer == 3, vote.votes
