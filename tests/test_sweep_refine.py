"""scripts/sweep_refine.py (chapter 09): a slice re-runs identically, and the rounds read off one
long loop are what a loop stopped after k rounds gives."""
import json

import pytest

from conftest import load_script
from workbench.tinyworld.tasks import problem_seed
from workbench.paths import data_dir

RESULTS = data_dir() / "results" / "refinement.json"
SLICE = ["calculator (tool)", "self-feedback (intrinsic)"]
FIELDS = ("round", "answer", "correct", "output_tokens", "input_tokens", "external_tokens",
          "calls")


@pytest.fixture(scope="module")
def sweep():
    needed = ["tinyworld", "tinyworld-verifier", "tinyworld-prm"]
    if not RESULTS.exists() or not all((data_dir() / "models" / m / "config.json").exists()
                                       for m in needed):
        pytest.skip("needs the embedded models and data/results/refinement.json")
    mod = load_script("sweep_refine")
    return mod, json.loads(RESULTS.read_text()), mod.sc.Models()


def test_summary_covers_every_problem_and_round(sweep):
    mod, data, _ = sweep
    assert data["summary"] == mod.summarize(data["rows"])
    n = len(data["config"]["problems"])
    assert all(s["problems"] == n for s in data["summary"])
    assert {s["round"] for s in data["summary"]} == set(range(data["config"]["rounds"] + 1))


@pytest.mark.parametrize("method", SLICE)
def test_a_slice_reruns_identically(sweep, method):
    mod, data, models = sweep
    task = mod.hard_tasks(1)[0]
    fn = mod.methods(models)[method]
    stored = [r for r in data["rows"] if (r["method"], r["id"]) == (method, task["id"])]
    seed = problem_seed(task, data["config"]["seed"])
    rows = mod.run_task(fn, task, seed)
    assert [{k: r[k] for k in FIELDS} for r in rows] == [{k: r[k] for k in FIELDS} for r in stored]
    one = mod.run_task(fn, task, seed, n=1)[-1]     # a loop stopped after one round
    assert {k: one[k] for k in FIELDS} == {k: rows[1][k] for k in FIELDS}
