"""Evaluation statistics (`workbench.stats`) against their definitions."""
import math

import numpy as np
import pytest

from workbench import stats


def wilson_by_hand(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 26), (19, 26), (26, 26), (50, 104), (1, 3)])
def test_wilson_interval_is_the_closed_form(k, n):
    acc = stats.accuracy([1] * k + [0] * (n - k))
    lo, hi = wilson_by_hand(k, n)
    assert (acc.k, acc.n) == (k, n)
    assert acc.low == pytest.approx(lo) and acc.high == pytest.approx(hi)
    assert acc.low <= acc.rate <= acc.high and f"({k}/{n}, 95% Wilson)" in str(acc)


def test_paired_difference_interval_and_mcnemar():
    rng = np.random.default_rng(0)
    a = rng.random(104) < 0.7
    b = a.copy()
    b[:20] = ~b[:20]                        # b differs from a on 20 problems
    r = stats.paired(a, b, seed=1)
    d = a.astype(float) - b.astype(float)
    assert r.diff == pytest.approx(d.mean()) and r.n == 104
    assert (r.a_only, r.b_only) == (int((d > 0).sum()), int((d < 0).sum()))
    # McNemar's exact test: binomial on the discordant pairs
    from scipy.stats import binomtest
    assert r.p_value == pytest.approx(binomtest(r.a_only, r.a_only + r.b_only).pvalue)
    # the bootstrap interval of a mean difference is about mean +- 1.96 sd / sqrt(n)
    half = 1.96 * d.std() / math.sqrt(d.size)
    assert r.low == pytest.approx(d.mean() - half, abs=0.02)
    assert r.high == pytest.approx(d.mean() + half, abs=0.02)
    assert r == stats.paired(a, b, seed=1)                       # seeded


def test_resolved_only_when_the_interval_excludes_zero():
    assert stats.paired([1] * 19 + [0] * 7, [0] * 26).resolved
    tie = stats.paired([1, 0, 1, 0], [0, 1, 1, 0])
    assert not tie.resolved and tie.p_value == 1.0
    four = stats.paired([1] * 4, [0] * 4)     # a point interval, but 4 problems could be chance
    assert (four.low, four.high) == (1.0, 1.0) and four.p_value == 0.125 and not four.resolved
    same = stats.paired([1, 0, 1], [1, 0, 1])
    assert (same.low, same.high, same.p_value, same.resolved) == (0.0, 0.0, 1.0, False)


@pytest.mark.parametrize("call,name", [
    (lambda: stats.accuracy([]), "hits"), (lambda: stats.accuracy([0, 2]), "hits"),
    (lambda: stats.paired([1, 0], [1]), "a and b"), (lambda: stats.paired([0.5], [1]), "a"),
    (lambda: stats.accuracy([1], confidence=1.5), "confidence")])
def test_bad_input_is_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_hits_by_groups_in_one_problem_order_and_refuses_gaps():
    rows = [{"method": "a", "setting": "1", "id": "p2", "correct": True},
            {"method": "a", "setting": "1", "id": "p1", "correct": False},
            {"method": "b", "setting": "1", "id": "p1", "correct": True},
            {"method": "b", "setting": "1", "id": "p2", "correct": False}]
    got = stats.hits_by(rows, "method")
    assert got == {"a": [True, False], "b": [False, True]}       # both in the order p2, p1
    assert stats.hits_by(rows, "method", "setting")[("b", "1")] == [False, True]
    assert stats.paired(got["a"], got["b"]).n == 2
    with pytest.raises(ValueError, match="group"):
        stats.hits_by(rows[:3], "method")
    with pytest.raises(ValueError, match="twice"):
        stats.hits_by(rows + rows[:1], "method")
    with pytest.raises(ValueError, match="fields"):
        stats.hits_by(rows)


def test_mean_interval_is_scipys_seeded_bootstrap_and_refuses_bad_values():
    from scipy.stats import bootstrap
    x = np.random.default_rng(3).normal(size=40)
    got = stats.mean_interval(x, seed=7)
    kw = {"rng" if "rng" in __import__("inspect").signature(bootstrap).parameters
          else "random_state": np.random.default_rng(7)}
    ref = bootstrap((x,), np.mean, method="percentile", n_resamples=2000, **kw).confidence_interval
    assert (got.low, got.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    mean, low, high = got
    assert low < mean < high and mean == pytest.approx(x.mean())
    assert tuple(stats.mean_interval([2.0, 2.0])) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="values"):
        stats.mean_interval([])
    with pytest.raises(ValueError, match="values"):
        stats.mean_interval([1.0, float("nan")])
