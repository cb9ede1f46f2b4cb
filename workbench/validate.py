"""Parameter checks shared by every algorithm: a bad value raises ``ValueError`` naming the
parameter, never a hang, a NaN or a silent fallback (docs/conventions.md, "Errors")."""
from __future__ import annotations

import math

import numpy as np


def count(name: str, value, lo: int = 1) -> int:
    """``value`` as an ``int`` >= ``lo`` (NumPy integers too; a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def number(name: str, value, lo: float = -math.inf, hi: float = math.inf,
           finite: bool = True) -> float:
    """``value`` as a ``float`` in [lo, hi]; finite unless ``finite=False`` (then only NaN is
    refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or math.isnan(value) or (finite and not math.isfinite(value)):
        raise ValueError(f"{name} must be a {'finite ' if finite else ''}number, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return float(value)
