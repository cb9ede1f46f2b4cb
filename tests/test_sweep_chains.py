"""scripts/sweep_chains.py (chapter 06): the stored sweep covers its problem set, and a slice
re-runs identically."""
import json

import pytest

from conftest import load_script
from workbench.paths import data_dir
from workbench.tinyworld.tasks import problem_set

RESULTS = data_dir() / "results" / "chains.json"
SLICE = ["chain-of-thought", "calculator tool", "words, rewrite then solve"]


@pytest.fixture(scope="module")
def sweep():
    if not RESULTS.exists() or not (data_dir() / "models" / "tinyworld" / "config.json").exists():
        pytest.skip("needs the embedded target and data/results/chains.json")
    mod = load_script("sweep_chains")
    return mod, json.loads(RESULTS.read_text()), mod.setup()


def test_the_sweep_covers_its_problem_set(sweep):
    mod, data, (_, _, runs) = sweep
    ids = [t["id"] for t in problem_set(data["config"]["problem_set"])]
    assert data["config"]["problems"] == ids and len(ids) == 104
    assert data["summary"] == mod.summarize(data["rows"])
    assert {s["method"] for s in data["summary"]} == set(runs)
    assert all(s["problems"] == len(ids) for s in data["summary"])


@pytest.mark.parametrize("name", SLICE)
def test_a_slice_reruns_identically(sweep, name):
    mod, data, (task, fmt, runs) = sweep
    records = problem_set(data["config"]["problem_set"])[:2]
    problems = [task.problem(t["expression"]) for t in records]
    fresh = mod.chains.evaluate({name: runs[name]}, problems, fmt.check)[name]
    stored = {r["id"]: r for r in data["rows"] if r["method"] == name}
    for t, row in zip(records, fresh):
        assert row == {k: stored[t["id"]][k] for k in row}
