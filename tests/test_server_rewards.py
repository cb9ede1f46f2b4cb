"""`ServerRewardScorer` / `ServerProcessScorer` against a scripted server that answers vLLM's
``/classify`` and ``/pooling`` formats (workbench/backends/rewards.py names the sources):
scores land on the right candidates in order whatever order the server lists them, batches go
out concurrently within the limit, costs are the server's token counts, a server without the
endpoint or with a malformed answer gets a clear error naming the URL, and best-of-N and
weighted voting pick what the served scores say."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workbench import meta, scoring
from workbench.backends import BackendError, ServerProcessScorer, ServerRewardScorer
from workbench.budget import Cost
from workbench.meta.base import TextOutput

PROMPT = "Q: 2+3\n"


def good_prob(text: str) -> float:
    """The scripted reward: high for a reply ending in the right answer 5, plus a little that
    depends on every character, so that every text gets its own score."""
    return (0.9 if text.rstrip().endswith("A: 5") else 0.2) + sum(map(ord, text)) / 1e6


class Pooling(BaseHTTPRequestHandler):
    """/classify: probs [1 - p, p] per input; /pooling: one row [p_bad, p_good] per step tag
    "<extra_0>" (STEP pooling), p_good read from the text before the tag.  Items are listed
    in reverse order (their ``index`` says where they belong); usage counts one token per
    character.  ``malformed`` drops the probabilities; ``only`` limits the endpoints served."""
    requests, malformed, only = [], False, ("/classify", "/pooling")
    lock = threading.Lock()
    inflight = peak = 0

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        cls = type(self)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with cls.lock:
            cls.requests.append(body)
            cls.inflight += 1
            cls.peak = max(cls.peak, cls.inflight)
        time.sleep(0.05)
        with cls.lock:
            cls.inflight -= 1
        if self.path not in cls.only:
            return self._send(404, {"detail": "Not Found"})
        texts = body["input"]
        items = [self._item(i, t) for i, t in enumerate(texts)][::-1]
        usage = {"prompt_tokens": sum(map(len, texts)), "total_tokens": sum(map(len, texts)),
                 "completion_tokens": 0}
        self._send(200, {"id": "x", "object": "list", "model": "rm", "data": items,
                         "usage": usage})

    def _item(self, i, text):
        if self.path == "/classify":
            p = good_prob(text)
            item = {"index": i, "label": "LABEL_1", "probs": [1 - p, p], "num_classes": 2}
            if self.malformed:
                del item["probs"]
            return item
        parts = text.split("<extra_0>")[:-1]
        rows = [[1 - good_prob(s), good_prob(s)] for s in parts]
        return {"index": i, "object": "pooling", "data": "oops" if self.malformed else rows}


@pytest.fixture
def server():
    Pooling.requests, Pooling.malformed = [], False
    Pooling.only, Pooling.peak = ("/classify", "/pooling"), 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Pooling)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


REPLIES = ["2+3=6\nA: 6", "2+3=5\nA: 5", "A: 4", "2+3=5\n\nA: 5\n", "A: 7"]


def test_outcome_scores_map_to_their_candidates_in_order(server):
    rm = ServerRewardScorer(server, "rm", batch_size=2, concurrency=3)
    scores, cost = rm(PROMPT, [TextOutput(r) for r in REPLIES])
    assert scores == pytest.approx([good_prob(PROMPT + r) for r in REPLIES])
    assert len(set(scores)) == len(REPLIES)                       # the test can fail
    assert cost == Cost(external_tokens=sum(len(PROMPT + r) for r in REPLIES))
    sent = sorted((t for r in Pooling.requests for t in r["input"]))
    assert sent == sorted(PROMPT + r for r in REPLIES)            # each reply once
    assert all(len(r["input"]) <= 2 and r["model"] == "rm" for r in Pooling.requests)
    assert len(Pooling.requests) == 3 and Pooling.peak >= 2       # batches of 2, concurrently
    assert rm(PROMPT, []) == ([], Cost())


def test_concurrency_limit_and_custom_format(server):
    rm = ServerRewardScorer(server, batch_size=1, concurrency=2,
                            format=lambda q, y: f"{y} <- {q}")
    scores, _ = rm(PROMPT, REPLIES)
    assert Pooling.peak <= 2 and len(Pooling.requests) == len(REPLIES)
    assert scores == pytest.approx([good_prob(f"{r} <- {PROMPT}") for r in REPLIES])
    assert "model" not in Pooling.requests[0]                     # the server's only model


def test_process_scores_per_step(server):
    prm = ServerProcessScorer(server, "prm", reduce="min", batch_size=2)
    steps, cost = prm.step_scores_and_cost(PROMPT, REPLIES)
    split = [[s for s in r.split("\n") if s.strip()] for r in REPLIES]
    want = [[good_prob((PROMPT if k == 0 else "") + s) for k, s in enumerate(p)] for p in split]
    assert steps == [pytest.approx(w) for w in want]
    assert PROMPT + "2+3=6<extra_0>A: 6<extra_0>" in Pooling.requests[0]["input"] + \
        Pooling.requests[1]["input"] + Pooling.requests[2]["input"]
    scores, _ = prm(PROMPT, [TextOutput(r) for r in REPLIES])
    assert scores == pytest.approx([min(w) for w in want])
    assert cost.external_tokens > 0
    last = ServerProcessScorer(server, "prm", reduce="last")(PROMPT, REPLIES)[0]
    assert last == pytest.approx([w[-1] for w in want]) and last != scores


def test_process_scorer_checks_the_step_count(server):
    one_tag = ServerProcessScorer(server, format=lambda q, steps: q + steps[0] + "<extra_0>")
    with pytest.raises(BackendError, match=r"1 step rows for 2 steps.*STEP pooling"):
        one_tag(PROMPT, ["a\nb"])


def test_clear_errors(server):
    Pooling.only = ("/pooling",)
    with pytest.raises(BackendError, match=rf"{server}/classify does not exist \(HTTP 404.*"
                                           r"--runner pooling"):
        ServerRewardScorer(server)(PROMPT, REPLIES)
    Pooling.only, Pooling.malformed = ("/classify", "/pooling"), True
    with pytest.raises(BackendError, match=rf"{server}/classify answered an item without"):
        ServerRewardScorer(server)(PROMPT, REPLIES)
    with pytest.raises(BackendError, match=rf"{server}/pooling answered an item without"):
        ServerProcessScorer(server)(PROMPT, REPLIES)
    Pooling.malformed = False
    with pytest.raises(BackendError, match=r"good=5 but .* 2 values per row"):
        ServerRewardScorer(server, good=5)(PROMPT, REPLIES)
    for kw, name in [({"endpoint": "score"}, "endpoint"), ({"batch_size": 0}, "batch_size"),
                     ({"good": -1}, "good"), ({"concurrency": 0}, "concurrency")]:
        with pytest.raises(ValueError, match=name):
            ServerRewardScorer(server, **kw)
    with pytest.raises(ValueError, match="reduce"):
        ServerProcessScorer(server, reduce="max")


def test_pooling_reward_rows_and_raw_rewards(server):
    """/pooling with ALL pooling answers a row per token: the last row is the reward."""
    rm = ServerRewardScorer(server, endpoint="pooling", good=1,
                            extra={"task": "token_classify"})
    texts = ["x<extra_0>y<extra_0>", "z<extra_0>"]
    scores, _ = rm("", texts)
    assert scores == pytest.approx([good_prob("y"), good_prob("z")])
    assert Pooling.requests[0] == {"input": texts, "task": "token_classify"}


def test_served_models_follow_the_verifier_and_prm_protocols(server):
    """`scoring.VerifierScorer`, `ProcessScorer`, `meta.verifier_value` and `meta.prm_value`
    take the served models as they take `workbench.reward_models`; the cost asked for right
    after the scores comes from the same answer (one request per scoring)."""
    orm, prm = ServerRewardScorer(server), ServerProcessScorer(server, reduce="last")
    outs = [TextOutput(r) for r in REPLIES]
    by_orm, by_prm = orm(PROMPT, outs), prm(PROMPT, outs)
    assert by_orm[0] != by_prm[0]                                 # the test can fail
    Pooling.requests = []
    assert scoring.VerifierScorer(orm)(PROMPT, outs) == by_orm
    assert scoring.ProcessScorer(prm, reduce="last")(PROMPT, outs) == by_prm
    assert meta.verifier_value(orm)(PROMPT, outs) == by_orm
    assert meta.prm_value(prm, reduce="last")(PROMPT, outs) == by_prm
    assert scoring.VerifierScorer(prm)(PROMPT, outs) == by_prm    # a PRM as a verifier
    assert len(Pooling.requests) == 5                             # one request each
    assert meta.verifier_value(orm).cost_of(PROMPT, outs[:2]) == orm(PROMPT, outs[:2])[1]
    assert len(Pooling.requests) == 7                 # a cost not just scored is asked for


class Fixed:
    """A generator returning the given replies."""
    name = "fixed"

    def __init__(self, replies):
        self.replies = replies

    def generate(self, prompt, n=1, seed=None):
        return [TextOutput(r, Cost(output_tokens=1, calls=1)) for r in self.replies[:n]]


def test_best_of_n_and_weighted_vote_follow_the_served_scores(server):
    """Three replies say 6, one says 5; the served reward prefers 5 strongly enough that both
    best-of-N and the reward-weighted vote pick it, where a plain majority picks 6."""
    gen = Fixed(["2+3=6\nA: 6", "A: 6", "2+3 is 6\nA: 6", "2+3=5\nA: 5"])
    rm = ServerRewardScorer(server, concurrency=4, batch_size=1)
    best = meta.best_of_n(PROMPT, gen, rm, 4)
    assert best.text == "2+3=5\nA: 5" and best.chosen == 3
    assert best.cost.external_tokens == sum(len(PROMPT + r) for r in gen.replies)
    assert meta.majority_vote(PROMPT, gen, 4).answer == 6
    vote = meta.weighted_vote(PROMPT, gen, rm, 4)
    assert vote.answer == 5 and vote.votes[5] > vote.votes[6]
    prm = ServerProcessScorer(server, reduce="last", concurrency=4)
    assert meta.best_of_n(PROMPT, gen, prm, 4).chosen == 3
