"""scripts/sweep_compute.py: a slice of the stored compute-matched sweep re-runs identically."""
import json

import pytest

from conftest import load_script
from workbench.paths import data_dir

RESULTS = data_dir() / "results" / "compute_sweep.json"
SLICE = [("majority_vote", "N=4"), ("majority_vote (draft)", "N=16"),
         ("stepwise_beam (PRM)", "Nb=2, Ne=2"),
         ("refine (calculator)", "Nr<=1"), ("mcts (PRM, verifier)", "4 iterations")]
FIELDS = ("answer", "correct", "output_tokens", "input_tokens", "external_tokens",
          "computed_tokens", "calls")


def sweep_module():
    return load_script("sweep_compute")


@pytest.fixture(scope="module")
def sweep():
    needed = ["tinyworld", "tinyworld-draft", "tinyworld-verifier", "tinyworld-prm"]
    if not RESULTS.exists() or not all((data_dir() / "models" / m / "config.json").exists()
                                       for m in needed):
        pytest.skip("needs the embedded models and data/results/compute_sweep.json")
    mod = sweep_module()
    return mod, json.loads(RESULTS.read_text()), mod.Models()


def test_summary_matches_the_rows(sweep):
    mod, data, _ = sweep
    assert data["summary"] == mod.summarize(data["rows"])
    ids = data["config"]["problems"]
    for s in data["summary"]:
        assert s["problems"] == len(ids)


@pytest.mark.parametrize("method,setting", SLICE)
def test_a_slice_reruns_identically(sweep, method, setting):
    mod, data, models = sweep
    from workbench.tinyworld.tasks import problem_seed
    tasks = mod.subset(len(data["config"]["problems"]))
    assert [t["id"] for t in tasks] == data["config"]["problems"]
    fn = mod.methods(models)[method][setting]
    stored = {r["id"]: r for r in data["rows"] if (r["method"], r["setting"]) == (method, setting)}
    for i in (0,):
        row = mod.run_one(fn, tasks[i], problem_seed(tasks[i], data["config"]["seed"]), models)
        assert {k: row[k] for k in FIELDS} == {k: stored[tasks[i]["id"]][k] for k in FIELDS}


def test_redo_drops_only_the_chosen_methods_rows(tmp_path):
    """``--only NAME --redo`` recomputes a method after a model it uses was retrained."""
    mod = sweep_module()
    rows = [{"method": m, "setting": "-", "id": i, "correct": c, "output_tokens": 1,
             "input_tokens": 1, "external_tokens": 0, "computed_tokens": 2, "target_flops": 1}
            for m, c in (("best_of_n (verifier)", True), ("majority_vote", False))
            for i in ("a", "b")]
    out = tmp_path / "sweep.json"
    mod.save({"config": {"problems": ["a", "b"]}, "rows": rows}, out)
    kept = mod.start(out, {"problems": ["a"]}, only=["best_of_n"], redo=True)
    assert {r["method"] for r in kept["rows"]} == {"majority_vote"}
    again = mod.start(out, {"problems": ["a"]}, only=["best_of_n"])
    assert len(again["rows"]) == 4                     # without --redo, rows are resumed
    saved = mod.save(again, out)                       # only the configured problems stay
    assert {r["id"] for r in saved["rows"]} == {"a"} and len(saved["summary"]) == 2
    assert mod.chosen("rebase (PRM)", ["rebase"]) and not mod.chosen("greedy", ["rebase"])
    assert mod.chosen("greedy", None)
