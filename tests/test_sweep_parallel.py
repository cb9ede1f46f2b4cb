"""scripts/sweep_parallel.py: the stored curves follow from the stored pool, and the pool's
first problem re-samples and re-scores identically from the committed weights."""
import json
import math

import pytest

from conftest import load_script
from workbench.paths import data_dir

RESULTS = data_dir() / "results"


@pytest.fixture(scope="module")
def stored():
    needed = ["tinyworld", "tinyworld-verifier"]
    if not (RESULTS / "parallel_pool.json").exists() or not all(
            (data_dir() / "models" / m / "config.json").exists() for m in needed):
        pytest.skip("needs the embedded models and data/results/parallel_pool.json")
    return (load_script("sweep_parallel"), json.loads((RESULTS / "parallel_pool.json").read_text()),
            json.loads((RESULTS / "parallel_scaling.json").read_text()))


@pytest.mark.slow
def test_curves_follow_from_the_pool(stored):
    mod, pool, scaling = stored
    meta = scaling["meta"]
    ns = [n for n in mod.NS if n <= meta["pool"]]
    got = mod.pool_curves(pool["pools"]["0.7"], ns, meta["boots"])
    assert json.loads(json.dumps(got)) == scaling["curves"]["0.7"]
    assert len(pool["pools"]["0.7"]) == meta["problems"]


def test_joint_scores_are_log_v_lowered_by_log_p(stored):
    _, pool, _ = stored
    gaps = []
    for row in pool["pools"]["0.7"]:
        assert len(row["joint"]) == len(row["scores"]) == len(row["answers"])
        # log p_theta(y|x) <= 0, so log p + log v <= log v (v was rounded to 4 decimals)
        gaps += [j - math.log(v + 5e-5) for j, v in zip(row["joint"], row["scores"])]
    assert all(math.isfinite(g) and g <= 1e-3 for g in gaps)
    assert min(gaps) < -1            # the generator's log-probability is really in there


def test_first_problem_resamples_identically(stored):
    import workbench as wb
    from workbench.meta import scaling
    mod, pool, _ = stored
    lm, v = wb.load("tinyworld", device="cpu"), wb.load("tinyworld-verifier", device="cpu")
    temp = mod.TEMPERATURES[0]
    fresh = mod.compact(scaling.sample_pool(lm, mod.tasks_subset(pool["meta"]["per_cell"])[:1],
                                            pool["meta"]["pool"], temp, v, seed=0,
                                            progress=False))[0]
    old = pool["pools"][str(temp)][0]
    assert fresh["id"] == old["id"] and fresh["answers"] == old["answers"]
    assert fresh["lengths"] == old["lengths"]
    for key in ("scores", "joint"):
        assert fresh[key] == pytest.approx(old[key], abs=2e-3)
