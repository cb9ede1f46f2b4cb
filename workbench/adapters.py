"""Sampling adapters q_t (survey §3.3, Table 2): logits in, logits out (-inf where removed)."""
from __future__ import annotations

import torch


def _check(name, value, lo=None, hi=None, lo_open=False, hi_open=False):
    import math
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value}")


def temperature(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Temperature (eq. 12): s / tau.  tau -> 0 approaches greedy, tau -> inf uniform."""
    _check("tau", tau, 0, lo_open=True)
    return logits / tau
