"""scripts/sweep_search.py (chapter 08): a slice of the stored sweep re-runs identically."""
import json

import pytest

from conftest import load_script
from workbench.tinyworld.tasks import problem_seed
from workbench.paths import data_dir

RESULTS = data_dir() / "results" / "step_search.json"
SLICE = [("stepwise_beam (PRM)", "Nb=2, Ne=2"), ("best_of_n (verifier)", "N=4"),
         ("stepwise_beam (oracle value)", "Nb=2, Ne=2"), ("particle_filter (PRM)", "N=4"),
         ("dvts (PRM)", "N=4, M=2")]
FIELDS = ("answer", "correct", "output_tokens", "input_tokens", "external_tokens",
          "computed_tokens", "calls")


@pytest.fixture(scope="module")
def sweep():
    needed = ["tinyworld", "tinyworld-verifier", "tinyworld-prm"]
    if not RESULTS.exists() or not all((data_dir() / "models" / m / "config.json").exists()
                                       for m in needed):
        pytest.skip("needs the embedded models and data/results/step_search.json")
    mod = load_script("sweep_search")
    return mod, json.loads(RESULTS.read_text()), mod.sc.Models()


def test_summary_covers_every_problem(sweep):
    mod, data, _ = sweep
    assert data["summary"] == mod.sc.summarize(data["rows"])
    assert all(s["problems"] == len(data["config"]["problems"]) for s in data["summary"])


@pytest.mark.parametrize("method,setting", SLICE)
def test_a_slice_reruns_identically(sweep, method, setting):
    mod, data, models = sweep
    tasks = mod.tasks(len(data["config"]["problems"]))
    assert [t["id"] for t in tasks] == data["config"]["problems"]
    fn = mod.methods(models)[method][setting]
    stored = {r["id"]: r for r in data["rows"] if (r["method"], r["setting"]) == (method, setting)}
    row = mod.sc.run_one(fn, tasks[0], problem_seed(tasks[0], data["config"]["seed"]), models)
    assert {k: row[k] for k in FIELDS} == {k: stored[tasks[0]["id"]][k] for k in FIELDS}
