"""The stored control sweep (data/results/control_tradeoff.json): its claims, and a re-run slice."""
import pytest

import workbench as wb
from workbench.control import tinyworld as tw
from workbench.paths import data_dir

RESULTS = data_dir() / "results" / "control_tradeoff.json"
needs_results = pytest.mark.skipif(not RESULTS.exists(), reason="run scripts/sweep_control.py")
needs_models = pytest.mark.skipif(not set(tw.MODEL_NAMES.values()) <= set(wb.embedded_models()),
                                  reason="TinyWorld control models not trained yet")


@pytest.fixture(scope="module")
def stored():
    return tw.load_tradeoff(RESULTS)


def at(stored, method, strength, part="review"):
    return next(p for p in stored["points"]
                if (p["method"], p["strength"], p["part"]) == (method, strength, part))


@needs_results
@pytest.mark.parametrize("part", ["review", "tasks"])
def test_zero_strength_points_are_the_same_samples(stored, part):
    """Common random numbers: every logit rule at strength 0 is plain sampling from the target,
    FUDGE and RAD at 0 are top-k sampling."""
    plain = [at(stored, m, 0, part) for m in ("dexperts", "proxy_tuning", "product_of_experts")]
    topk = [at(stored, m, 0, part) for m in ("fudge", "reward_augmented")]
    for group in (plain, topk):
        assert all(p["samples"] == group[0]["samples"] for p in group)
        assert all(p["attribute_rate"] == group[0]["attribute_rate"] for p in group)


@needs_results
@pytest.mark.parametrize("part", ["review", "tasks"])
@pytest.mark.parametrize("method", ["fudge", "reward_augmented", "dexperts", "proxy_tuning",
                                    "product_of_experts"])
def test_control_raises_the_attribute_rate(stored, method, part):
    pts = sorted((p for p in stored["points"] if p["method"] == method and p["part"] == part),
                 key=lambda p: p["strength"])
    assert pts[-1]["attribute_rate"] >= pts[0]["attribute_rate"] + 0.2


@needs_results
@needs_models
@pytest.mark.parametrize("method,strength", [("dexperts", 2), ("fudge", 4)])
def test_a_slice_reproduces(stored, method, strength):
    want = at(stored, method, strength)
    got = tw.run_point(tw.load_models(device="cpu"), method, strength, "review", n=stored["n"],
                       seed=stored["seed"], max_new_tokens=stored["max_new_tokens"],
                       k=stored["k"])
    for key, tol in (("attribute_rate", 0.05), ("grammatical", 0.05), ("logp_star", 0.3),
                     ("logp_target", 0.5), ("passes_per_step", 1e-9)):
        assert got[key] == pytest.approx(want[key], abs=tol), key
    same = sum(a["text"] == b["text"] for a, b in zip(got["samples"], want["samples"]))
    assert same >= 0.75 * len(want["samples"])
