"""One instrumentation mechanism for every algorithm in the workbench.

Algorithms call ``emit(kind, **fields)``.  With no active trace, ``emit`` returns at once; code
that would do work only to build an event's fields first checks ``active()``.  Inside

    with trace() as t:
        out = decoding.sample(lm, "Story:", seed=0)

every event is appended to ``t.events`` as a plain, JSON-serialisable dict with a ``kind``
(``step``, ``expand``, ``select``, ``vote``, ``score``, ``accept``, ``reject``, ``cache``, ...),
a running index ``i``, the ``source`` (the algorithm that emitted it) and its own fields.
Tensors and NumPy values are converted to lists and numbers on the way in.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from typing import Any

_stack: list = []
_enabled = True


def active() -> bool:
    """True when an event emitted now would be recorded."""
    return bool(_stack) and _enabled


def emit(kind: str, **fields) -> None:
    """Record an event in the innermost active trace (no-op without one)."""
    if not _stack or not _enabled:
        return
    _stack[-1]._record(kind, fields)


def plain(x: Any):
    """Convert tensors, arrays and numpy scalars into JSON-friendly Python values."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else (None if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if hasattr(x, "tolist"):  # torch tensors, numpy arrays and scalars
        return plain(x.tolist())
    if hasattr(x, "as_dict"):
        return plain(x.as_dict())
    return str(x)


class Trace:
    """A list of events plus helpers to query them."""

    def __init__(self, max_events: int | None = None):
        self.events: list = []
        self.max_events = max_events
        self.dropped = 0
        self._sources: list = []

    def _record(self, kind, fields):
        if self.max_events is not None and len(self.events) >= self.max_events:
            self.dropped += 1
            return
        ev = {"kind": kind, "i": len(self.events)}
        if self._sources:
            ev["source"] = self._sources[-1]
        for k, v in fields.items():
            ev[k] = plain(v)
        self.events.append(ev)

    def __enter__(self):
        _stack.append(self)
        return self

    def __exit__(self, *exc):
        _stack.remove(self)
        return False

    def of(self, kind: str, source: str | None = None) -> list:
        """Events of one kind (optionally from one source)."""
        return [e for e in self.events
                if e["kind"] == kind and (source is None or e.get("source") == source)]

    def kinds(self) -> dict:
        out: dict = {}
        for e in self.events:
            out[e["kind"]] = out.get(e["kind"], 0) + 1
        return out

    def to_json(self) -> str:
        return json.dumps(self.events)

    def __len__(self):
        return len(self.events)

    def __repr__(self):
        return f"Trace({len(self.events)} events: {self.kinds()})"


def trace(max_events: int | None = None) -> Trace:
    """Start recording: ``with wb.trace() as t: ...``."""
    return Trace(max_events)


@contextmanager
def source(name: str):
    """Tag the events emitted inside with the algorithm's name (nested calls stack)."""
    pushed = [t for t in _stack]
    for t in pushed:
        t._sources.append(name)
    try:
        yield
    finally:
        for t in pushed:
            t._sources.pop()


@contextmanager
def instrumentation(enabled: bool):
    """Switch all instrumentation off (``False``) or on, e.g. to measure its overhead."""
    global _enabled
    old, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = old
