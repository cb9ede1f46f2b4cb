"""scripts/sweep_external.py: the first problems of the stored selector pool re-sample and
re-score identically, and the stored curves follow from the stored pool."""
import json

import pytest

from conftest import load_script
from workbench.paths import data_dir

RESULTS = data_dir() / "results" / "external_selectors.json"


def sweep_module():
    return load_script("sweep_external")


@pytest.fixture(scope="module")
def stored():
    needed = ["tinyworld", "tinyworld-verifier", "tinyworld-prm"]
    if not RESULTS.exists() or not all((data_dir() / "models" / m / "config.json").exists()
                                       for m in needed):
        pytest.skip("needs the embedded models and data/results/external_selectors.json")
    return sweep_module(), json.loads(RESULTS.read_text())


def test_curves_follow_from_the_pool(stored):
    mod, data = stored
    assert mod.curves(data["pool"]) == data["curves"]
    assert mod.full_pool_hits(data["pool"]) == data["full_pool"]
    assert {len(h) for h in data["full_pool"].values()} == {len(data["pool"])}
    assert len(data["pool"]) == data["meta"]["problems"]


def test_first_problems_resample_identically(stored):
    import workbench as wb
    mod, data = stored
    lm = wb.load("tinyworld", device="cpu")
    v, prm = wb.load("tinyworld-verifier", device="cpu"), wb.load("tinyworld-prm", device="cpu")
    per = max(1, 64 // data["meta"]["pool"])          # sample_pool's first batch of problems
    tasks = mod.tasks_subset(per)
    pool = mod.make_pool(lm, v, prm, tasks, data["meta"]["pool"], data["meta"]["seed"])
    for new, old in zip(pool, data["pool"]):
        assert new["id"] == old["id"] and new["answers"] == old["answers"]
        assert new["lengths"] == old["lengths"]
        for key in ("verifier", "prm", "logp_mean"):
            assert new[key] == pytest.approx(old[key], abs=2e-4), key
        # The stored pool predates counting the end token in log p_theta (issue 20): "joint"
        # now adds log p_theta(EOS | y, x), which is negative and on these problems tiny
        # (-3e-4 measured); re-running the sweep restores the 2e-4 check above.
        assert all(o - 1e-3 <= n <= o + 2e-4 for n, o in zip(new["joint"], old["joint"]))


TOOLS = data_dir() / "results" / "tool_use.json"


def test_calculator_sweep_reruns_identically():
    """scripts/sweep_tools.py: every problem has its four runs, and the first problems
    re-run to the same rows (greedy: no seed)."""
    import workbench as wb
    from workbench.experiments import calculator
    if not TOOLS.exists() or not (data_dir() / "models" / "tinyworld-draft").exists():
        pytest.skip("needs the embedded models and data/results/tool_use.json")
    data = json.loads(TOOLS.read_text())
    task = wb.tasks.load("tinyworld-arithmetic")
    ids = [p.id for p in calculator.problems(task, data["meta"]["problem_set"])]
    assert data["meta"]["problems"] == len(ids)
    assert sorted((r["id"], r["model"], r["run"]) for r in data["rows"]) == sorted(
        (i, m, r) for i in ids for m in data["meta"]["models"] for r in calculator.RUNS)
    stored = {(r["id"], r["model"], r["run"]): r for r in data["rows"]}
    models = [wb.load(m, device="cpu") for m in data["meta"]["models"]]
    for p in calculator.problems(task, data["meta"]["problem_set"])[5:9]:
        for lm in models:
            for run in calculator.RUNS:
                assert calculator.record(lm, task, p, run) == stored[p.id, lm.name, run]
    with pytest.raises(ValueError, match="run must be"):
        calculator.solve(models[0], task.problems[0], "with a slide rule")
