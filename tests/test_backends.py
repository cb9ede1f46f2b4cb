"""`CompletionsGenerator` over OpenAI-compatible servers.

* End to end against a real ``transformers serve`` process on a loopback port, serving the
  embedded ``tinyworld`` model (or, before the zoo exists, a small random Llama over the
  TinyWorld tokenizer) offline: greedy text equals local greedy decoding of the same weights,
  costs match the server's token counts, seeded sampling repeats, best-of-N and majority
  voting run through it, and with ``--continuous-batching`` concurrency 1/4/16/64 gives the
  same texts faster, the server batching what is in flight (its log, `serve_util`).
* The protocol against a scripted server answering like vLLM (``n`` honoured, log-probs
  returned) or failing on purpose (unknown model, no usage, too slow, down, 429/500 answers,
  dropped connections), and ``generate_batch``'s concurrency (order, in-flight limit, seeds).
"""
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from workbench import decoding, meta
from workbench.backends import (TRANSFORMERS_SERVE_SAMPLING, BackendError, ChatGenerator,
                                CompletionsGenerator, ModelNotServed, ServerLogProbScorer,
                                ServerUnavailable)
from workbench.scoring import LogProbScorer

from serve_util import batch_sizes, free_port as _free_port, serving

PROMPT = "Q: 1+2\n"


# -- a scripted OpenAI-style server ---------------------------------------------------------

class Load:
    """Requests being answered at once: ``inflight`` now, ``peak`` the most so far."""

    def __init__(self):
        self.lock, self.inflight, self.peak = threading.Lock(), 0, 0

    def start(self):
        with self.lock:
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)

    def stop(self):
        with self.lock:
            self.inflight -= 1


class Scripted(BaseHTTPRequestHandler):
    """Answers /v1/completions like vLLM: n choices, per-token log-probs, usage.

    ``delay`` (seconds, at most) sleeps a random time per request and appends ``[prompt]`` to
    each text; ``failures`` requests in a row are answered with ``fail_status`` (0: the
    connection is closed with no answer; a 429 says ``Retry-After: 0``) before answering
    normally again; after ``ok_left`` answers (when set) every request fails.  ``load`` counts the
    requests being answered at once."""
    mode = "vllm"      # "vllm" | "ignore_n" | "no_usage" | "slow"
    requests = []
    delay, failures, fail_status = 0.0, 0, 500
    ok_left = None     # answers to give before failing every request (None: no limit)
    lock = threading.Lock()
    load = None        # a Load, new for every test

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        raw = json.dumps(body).encode()
        self._uncount()
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
        self.load = type(self).load  # this test's counter (a late request keeps its own)
        self.load.start()
        self.counted = True
        try:
            self._answer()
        finally:
            self._uncount()

    def _uncount(self):
        """Count this request as answered (before its answer is written: the client may send
        its next request as soon as it has read it)."""
        if getattr(self, "counted", False):
            self.counted = False
            self.load.stop()

    def _fail(self) -> bool:
        """Answer with the scripted failure if one is due (True), else do nothing."""
        cls = type(self)
        with cls.lock:
            due = cls.failures > 0 or cls.ok_left == 0
            cls.failures -= cls.failures > 0
            if not due and cls.ok_left is not None:
                cls.ok_left -= 1
        if due and cls.fail_status == 0:
            self.close_connection = True  # drop the connection without an answer
        elif due:
            self._uncount()
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
        type(self).requests.append(dict(body))
        if self._fail():
            return
        if self.delay:
            time.sleep(random.uniform(0, self.delay))
        if body.get("model") not in (None, "tiny"):
            return self._send(404, {"object": "error", "type": "NotFoundError", "code": 404,
                                    "message": f"The model `{body['model']}` does not exist."})
        chat = self.path == "/v1/chat/completions"
        if chat:  # the scripted chat template: "<system>|<user>"
            body["prompt"] = "|".join(m["content"] for m in body["messages"])
        if body.get("echo") and self.mode == "vllm":
            return self._send(200, self._echo(body["prompt"]))
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
        usage = {"prompt_tokens": 5, "completion_tokens": sum(
            len(c["logprobs"]["tokens"]) for c in choices)}
        if chat:  # the chat format: message.content, logprobs.content[i].logprob
            choices = [{"index": c["index"], "finish_reason": "stop",
                        "message": {"role": "assistant", "content": c["text"]},
                        "logprobs": {"content": [{"token": t, "logprob": -0.5}
                                                 for t in c["logprobs"]["tokens"]]}}
                       for c in choices]
        out = {"id": "x", "object": "text_completion", "model": "tiny", "choices": choices[::-1]}
        if self.mode != "no_usage":
            out["usage"] = usage
        self._send(200, out)

    @staticmethod
    def _echo(prompt):
        """vLLM's echo: one token per character of the prompt, log-prob -0.1 each (the first
        None), then one generated token."""
        text = prompt + "!"
        lps = [None] + [-0.1] * (len(text) - 1)
        return {"id": "e", "object": "text_completion", "model": "tiny", "choices": [{
            "index": 0, "text": text, "finish_reason": "length", "logprobs": {
                "tokens": list(text), "token_logprobs": lps,
                "text_offset": list(range(len(text)))}}],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": 1}}


@pytest.fixture
def scripted():
    Scripted.mode, Scripted.requests = "vllm", []
    Scripted.delay, Scripted.failures, Scripted.fail_status = 0.0, 0, 500
    Scripted.ok_left = None
    Scripted.load = Load()
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
    assert sorted(arrival) == sorted(prompts) and Scripted.load.peak > 1  # really concurrent


def test_concurrency_limit_is_respected(scripted):
    Scripted.delay = 0.1
    g = CompletionsGenerator(scripted, concurrency=3)
    g.generate_batch([f"p{i}" for i in range(18)], 1, seed=0)
    assert Scripted.load.peak == 3 and len(Scripted.requests) == 18
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


def test_chat_generator_shares_the_plumbing(scripted):
    g = ChatGenerator(scripted, model="tiny", system="be brief", concurrency=4)
    batch = g.generate_batch(["a", "b"], 3, seed=2)
    assert all(r["messages"] == [{"role": "system", "content": "be brief"},
                                 {"role": "user", "content": p}]
               for r, p in zip(sorted(Scripted.requests,
                                      key=lambda r: r["messages"][-1]["content"]), "ab"))
    assert all(r["logprobs"] is True and "prompt" not in r for r in Scripted.requests)
    plain = CompletionsGenerator(scripted, model="tiny").generate_batch(["a", "b"], 3, seed=2)
    assert [[o.text for o in outs] for outs in batch] == [[o.text for o in outs]
                                                         for outs in plain]
    assert [o.logprob for outs in batch for o in outs] == [
        o.logprob for outs in plain for o in outs]
    assert all(o.info["tokens"] and o.cost.output_tokens == len(o.info["tokens"])
               for outs in batch for o in outs)
    Scripted.failures, Scripted.fail_status = 1, 429
    assert g("c", seed=0).text  # the same retries


def test_server_prompt_logprobs_score_the_continuation(scripted):
    scorer = ServerLogProbScorer(CompletionsGenerator(scripted, model="tiny", concurrency=2))
    outs = [meta.TextOutput("12"), meta.TextOutput(" 345")]
    scores, cost = scorer("Q: ", outs)
    assert scores == pytest.approx([-0.2, -0.4])  # -0.1 per character of the continuation
    assert cost.external_tokens == len("Q: 12") + len("Q:  345")
    assert all(r["echo"] is True and r["max_tokens"] == 1 for r in Scripted.requests)
    per_token = ServerLogProbScorer(scorer.generator, per_token=True)("Q: ", outs)[0]
    assert per_token == pytest.approx([-0.1, -0.1])
    b = meta.best_of_n("x", CompletionsGenerator(scripted), scorer, n=3, seed=0)
    assert b.chosen == max(range(3), key=lambda i: (b.scores[i], -i))
    Scripted.mode = "ignore_n"  # a server that ignores echo (like transformers serve)
    with pytest.raises(BackendError, match="returns no prompt log-probs"):
        scorer("Q: ", outs)
    with pytest.raises(TypeError, match="needs a CompletionsGenerator"):
        ServerLogProbScorer(ChatGenerator(scripted))


# -- a real `transformers serve` --------------------------------------------------------------

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
    """`transformers serve` with its defaults (one request decoded at a time)."""
    with serving(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def served_batching(tmp_path_factory):
    """`transformers serve --continuous-batching`: concurrent requests share decoding steps."""
    with serving(tmp_path_factory, "--continuous-batching", log_batches=True) as server:
        yield server


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
    with pytest.raises(BackendError, match="returns no prompt log-probs"):  # nor prompt ones
        ServerLogProbScorer(g)(PROMPT, [out])


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


def _batch_prompts(k):
    return [f"Q: {i % 9 + 1}+{i // 9 + 2}\n" for i in range(k)]


@pytest.mark.slow
@pytest.mark.tier
def test_concurrent_batch_on_continuous_batching_is_faster_and_the_same(served_batching, local):
    """32 prompts x 4 samples at concurrency 1, 4, 16 and 64 on the same server, in the same
    run, with the batch sizes the server's log reveals (`serve_util.batch_sizes`).  Measured on
    the 2-core CPU (tinyworld, 24 new tokens; docs/servers.md): 1.6-3.0x at 4, 2.2-3.8x at 16,
    3.0-3.5x at 64 (the spread is the other jobs on the machine); the bound leaves room for a
    busy machine."""
    base, log = served_batching[0], served_batching[3]
    prompts = _batch_prompts(32)
    gen = lambda k: CompletionsGenerator(base, max_tokens=24, timeout=300,  # noqa: E731
                                         concurrency=k, extra=TRANSFORMERS_SERVE_SAMPLING)
    gen(1).generate("Story:", 2, seed=0)  # warm the server up (and learn it ignores n)
    seconds, texts, batches = {}, {}, {}
    for k in (1, 4, 16, 64):
        g = gen(k)
        g.batches = False
        before = len(log.read_text())
        t = time.perf_counter()
        batch = g.generate_batch(prompts, 4, seed=0)
        seconds[k] = time.perf_counter() - t
        time.sleep(0.5)  # the server's last log lines
        batches[k] = batch_sizes(log.read_text()[before:])
        texts[k] = [[o.text for o in outs] for outs in batch]
        assert [sum(o.cost.calls for o in outs) for outs in batch] == [4] * 32
        assert [outs[0].cost.input_tokens for outs in batch] == [
            len(local.encode(p)) for p in prompts]
        assert batches[k]["requests"] == 128, batches[k]  # every request, logged once
        assert 1 <= batches[k]["max"] <= k, batches[k]  # never more than were sent at once
    assert texts[64] == texts[16] == texts[4] == texts[1]  # seeds per prompt and sample
    print("\nconcurrency  seconds  speed-up  server batch (mean, max)")
    for k, s in seconds.items():
        print(f"{k:11d} {s:8.1f} {seconds[1] / s:8.2f}x  {batches[k]['mean']:6.2f} "
              f"{batches[k]['max']:4d}")
    assert batches[1]["max"] == 1  # one request at a time: the server never batched
    assert batches[16]["max"] > 4, batches  # ... and with 16 in flight it did
    ratio = seconds[1] / seconds[16]
    assert ratio >= 1.4, f"concurrency 16 only {ratio:.2f}x faster than 1: {seconds}"
    greedy = CompletionsGenerator(base, max_tokens=24, timeout=300, temperature=0,
                                  concurrency=8).generate_batch(prompts[:8])
    assert [outs[0].text for outs in greedy] == [
        decoding.greedy(local, p, max_new_tokens=24).text for p in prompts[:8]]
