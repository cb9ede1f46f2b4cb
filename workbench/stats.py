"""Evaluation statistics for the chapters' claims: an accuracy with its interval, and the
difference of two methods on the same problems.

* `accuracy(hits)`: k/n with the Wilson score interval (through `scipy.stats.binomtest`), which
  behaves at 0/n and n/n where the normal approximation does not;
* `paired(a, b)`: the mean of ``a - b`` over the same problems with a bootstrap percentile
  interval (`scipy.stats.bootstrap`, seeded), and McNemar's exact test on the problems where
  exactly one method is right (a binomial test on the discordant pairs).  A difference whose
  interval contains 0 (or that the test cannot tell from chance) is not resolved by the data,
  and a chapter must say so.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats as _stats


# scipy >= 1.15 takes ``rng``; older releases (the floor is 1.11) only ``random_state``
_SEED = "rng" if "rng" in inspect.signature(_stats.bootstrap).parameters else "random_state"


def _as_hits(hits, name: str) -> np.ndarray:
    arr = np.asarray(list(hits), dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty sequence of 0/1 (or True/False) results")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold only 0/1 (or True/False) results")
    return arr


def _check_confidence(confidence):
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


@dataclass(frozen=True)
class Accuracy:
    k: int
    n: int
    low: float
    high: float
    confidence: float = 0.95

    @property
    def rate(self) -> float:
        return self.k / self.n

    def __str__(self):
        return (f"{self.rate:.3f} [{self.low:.3f}, {self.high:.3f}] ({self.k}/{self.n}, "
                f"{self.confidence:.0%} Wilson)")


def accuracy(hits, confidence: float = 0.95) -> Accuracy:
    """k/n right with its Wilson score interval."""
    _check_confidence(confidence)
    arr = _as_hits(hits, "hits")
    k, n = int(arr.sum()), int(arr.size)
    ci = _stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Accuracy(k, n, float(ci.low), float(ci.high), confidence)


@dataclass(frozen=True)
class Paired:
    diff: float          # mean of a - b
    low: float           # bootstrap percentile interval of the mean difference
    high: float
    a_only: int          # problems only a gets right
    b_only: int          # problems only b gets right
    p_value: float       # McNemar's exact test (two-sided)
    n: int
    confidence: float = 0.95

    @property
    def resolved(self) -> bool:
        """The data say which method is better: the interval excludes 0 *and* McNemar's test
        rejects "equally good" at 1 - confidence (on a handful of problems the bootstrap
        interval can be a single point while the test still says "could be chance")."""
        return (self.low > 0 or self.high < 0) and self.p_value < 1 - self.confidence

    def __str__(self):
        return (f"{self.diff:+.3f} [{self.low:+.3f}, {self.high:+.3f}] over {self.n} problems "
                f"({self.a_only} only a, {self.b_only} only b; McNemar p = {self.p_value:.3g})")


def paired(a, b, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> Paired:
    """The difference of two methods' results ``a`` and ``b`` on the same problems."""
    _check_confidence(confidence)
    a, b = _as_hits(a, "a"), _as_hits(b, "b")
    if a.size != b.size:
        raise ValueError(f"a and b must score the same problems, got {a.size} and {b.size}")
    d = a - b
    if np.all(d == d[0]):
        low = high = float(d[0])
    else:
        res = _stats.bootstrap((d,), np.mean, confidence_level=confidence, method="percentile",
                               n_resamples=n_resamples, **{_SEED: np.random.default_rng(seed)})
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    a_only, b_only = int((d > 0).sum()), int((d < 0).sum())
    p = 1.0 if a_only + b_only == 0 else float(
        _stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return Paired(float(d.mean()), low, high, a_only, b_only, p, int(d.size), confidence)


class MeanInterval(NamedTuple):
    """(mean, low, high): a tuple, so it unpacks and indexes as one."""
    mean: float
    low: float
    high: float

    def __str__(self):
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def mean_interval(values, confidence: float = 0.95, n_resamples: int = 2000,
                  seed: int = 0) -> MeanInterval:
    """The mean of real-valued per-item results with a seeded bootstrap percentile interval
    (`scipy.stats.bootstrap`); constant values give a zero-width interval.  For a paired
    difference of two methods, pass the per-item differences."""
    _check_confidence(confidence)
    x = np.asarray(list(values), dtype=float)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError("values must be a non-empty sequence of finite numbers")
    if np.all(x == x[0]):
        return MeanInterval(float(x[0]), float(x[0]), float(x[0]))
    ci = _stats.bootstrap((x,), np.mean, confidence_level=confidence, method="percentile",
                          n_resamples=n_resamples,
                          **{_SEED: np.random.default_rng(seed)}).confidence_interval
    return MeanInterval(float(x.mean()), float(ci.low), float(ci.high))


def hits_by(rows, *fields, correct: str = "correct", problem: str = "id") -> dict:
    """Per-problem results of a sweep, grouped: ``{(row[f] for f in fields): [correct, ...]}``
    (a plain value instead of a tuple for one field), every group listed in the same problem
    order, so two groups can go straight into `paired`.  Every group must cover the same
    problems once each; a sweep with a gap raises instead of pairing the wrong problems."""
    if not fields:
        raise ValueError("fields: name at least one field to group the rows by")
    groups: dict = {}
    for r in rows:
        key = tuple(r[f] for f in fields) if len(fields) > 1 else r[fields[0]]
        g = groups.setdefault(key, {})
        if r[problem] in g:
            raise ValueError(f"rows: problem {r[problem]!r} appears twice in group {key}")
        g[r[problem]] = bool(r[correct])
    if not groups:
        raise ValueError("rows must not be empty")
    order = list(next(iter(groups.values())))
    for key, g in groups.items():
        if set(g) != set(order):
            raise ValueError(f"rows: group {key} covers {len(g)} problems, not the same "
                             f"{len(order)} as the first group")
    return {key: [g[p] for p in order] for key, g in groups.items()}
