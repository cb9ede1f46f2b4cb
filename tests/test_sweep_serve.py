"""scripts/sweep_compute.py end to end through a real `transformers serve --continuous-batching`
on loopback (the scripted-server tests are tests/test_sweep_server.py): a sweep stopped after
two problems resumes without sending the finished problems' prompts again, the rows keep the
local schema, and greedy decoding through the server gives the local run's answers, with one
more output token per answer (the end-of-sequence token the server bills)."""
import json

import pytest

from serve_util import serving
from test_sweep_server import FIELDS, _rows, sweep  # noqa: F401  (the fixture)
from workbench.backends import CompletionsGenerator

ONLY = ["greedy", "sample", "adaptive_vote"]  # "greedy" also runs "greedy (draft)", locally


@pytest.fixture(scope="module")
def served_batching(tmp_path_factory):
    with serving(tmp_path_factory, "--continuous-batching") as server:
        yield server[0]


@pytest.fixture
def sent(monkeypatch):
    """The prompts of every request sent to a server."""
    prompts, complete = [], CompletionsGenerator._complete

    def record(self, prompt, n, seed):
        prompts.append(prompt)
        return complete(self, prompt, n, seed)
    monkeypatch.setattr(CompletionsGenerator, "_complete", record)
    return prompts


@pytest.mark.slow
@pytest.mark.tier
def test_sweep_through_transformers_serve_resumes_and_matches_local_greedy(
        sweep, served_batching, sent, tmp_path):  # noqa: F811
    out, local = tmp_path / "served.json", tmp_path / "local.json"
    prompts = {t["id"]: t["prompt"] for t in sweep.subset(5)}
    ids = list(prompts)
    server = ["--server", served_batching, "--concurrency", "4", "--out", str(out)]
    sweep.main(["--only", *ONLY, "--problems", "2", *server])  # stopped after two problems
    assert set(sent) == {prompts[i] for i in ids[:2]}
    sent.clear()
    sweep.main(["--only", *ONLY, "--problems", "5", *server])  # resumed
    assert set(sent) == {prompts[i] for i in ids[2:]}  # the finished problems are not redone
    assert sent.count(prompts[ids[2]]) >= 1 + 1 + 4  # greedy, sample, a batch of votes

    rows = _rows(out)
    data = json.loads(out.read_text())
    assert data["config"]["server"] == served_batching and data["config"]["problems"] == ids
    assert len(rows) == 4 * 5 and all(FIELDS <= set(r) <= FIELDS | {"samples"} for r in rows)
    sweep.main(["--only", "greedy", "--problems", "5", "--out", str(local)])  # no server
    mine = {(r["method"], r["id"]): r for r in _rows(local)}
    for r in rows:
        ref = mine.get((r["method"], r["id"]))
        if r["method"] == "greedy (draft)":  # local in both runs: the same row
            assert r == ref
        elif r["method"] == "greedy":
            assert (r["answer"], r["correct"], r["input_tokens"], r["calls"]) == (
                ref["answer"], ref["correct"], ref["input_tokens"], ref["calls"]), (r, ref)
            # the server bills the end-of-sequence token that local decoding drops (every
            # answer here ends before the 160-token limit)
            assert ref["output_tokens"] < 160 and r["output_tokens"] == ref["output_tokens"] + 1
            assert r["computed_tokens"] == r["target_flops"] == 0 < ref["computed_tokens"]
        else:
            assert r["computed_tokens"] == 0 and r["calls"] >= 1
