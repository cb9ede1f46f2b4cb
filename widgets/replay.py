"""What the explorers share when they open on a recorded trace instead of a model
(``View.replay(trace)``): finding the runs a trace holds, the recorded next-token candidates of a
``step`` event, and the note a replayed view shows where a control would need the model.

A replayed view never fakes what was not recorded: a control that would re-run the model is
disabled (or hidden) and `note` says so in the widget.
"""
from __future__ import annotations

import math

from workbench.trace import as_events

from .distribution import token_labels

NOTE_STYLE = ("border-left:4px solid #c98a00;background:#fff8e5;padding:4px 8px;"
              "margin:4px 0;color:#333")


def needed(trace, kinds, record: str) -> list:
    """The events of ``kinds`` (a kind or a tuple of kinds) in ``trace``; a ValueError naming
    what is missing, and what to record, when there is none."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    events = [e for e in as_events(trace) if e["kind"] in kinds]
    if not any(e["kind"] == kinds[0] for e in events):
        raise ValueError(f"this trace has no {kinds[0]} events; record {record}")
    return events


def split_runs(events, end: str) -> list:
    """``events`` cut into runs, each ending with an event of kind ``end`` (a trailing run
    without one is kept)."""
    runs, cur = [], []
    for e in events:
        cur.append(e)
        if e["kind"] == end:
            runs.append(cur)
            cur = []
    return runs + ([cur] if cur else [])


def step_runs(events) -> list:
    """The token-loop runs among ``step`` events: a run's events go strictly forward in
    (source, t, row); each run is ``{row: [its step events, in t order]}``."""
    runs, last = [], None
    for e in events:
        key = (e["t"], e["row"])
        if last is None or e.get("source") != last[0] or key <= last[1]:
            runs.append({})
        runs[-1].setdefault(e["row"], []).append(e)
        last = (e.get("source"), key)
    return runs


def pick(items: list, index: int, name: str, what: str):
    """``items[index]`` or a ValueError naming the parameter and how many there are."""
    if not -len(items) <= index < len(items):
        raise ValueError(f"{name} must be in [{-len(items)}, {len(items) - 1}]: this trace holds "
                         f"{len(items)} {what}, got {index}")
    return items[index]


def recorded_steps(trace, run: int = 0, row: int = 0) -> list:
    """The ``step`` events of one row of one recorded token-loop run, in t order."""
    events = needed(trace, "step", "a decoding.sample (or decode) run")
    rows = pick(step_runs(events), run, "run", "token-loop runs")
    return pick([rows[r] for r in sorted(rows)], row, "row", "rows in that run")


def number(x) -> float:
    """A recorded log-probability as a float (`workbench.trace.plain` writes ±inf as the text
    "inf" / "-inf", which float reads back)."""
    return float(x)


def recorded_candidates(event: dict, tokenizer, top: int | None = None) -> dict:
    """The next-token candidates a ``step`` event recorded, most probable first: ``ids``,
    ``labels``, ``p`` (p_θ), ``q`` (after the run's adapters; None where the recorded top of q
    does not say) and ``kept`` (False only where the recording shows the adapters removed it)."""
    pairs = event["top"][:top]
    ids = [int(t) for t, _ in pairs]
    p = [math.exp(number(lp)) for _, lp in pairs]
    adapted = event.get("top_adapted")
    if adapted is None:                          # no adapters: q is p_θ
        return {"ids": ids, "labels": labels(tokenizer, ids), "p": p, "q": list(p),
                "kept": [True] * len(ids)}
    q_of = {int(t): number(lp) for t, lp in adapted}
    complete = any(v == -math.inf for v in q_of.values())   # every kept token is listed
    q = [math.exp(q_of[t]) if t in q_of else (0.0 if complete else None) for t in ids]
    kept = [q_of.get(t, -math.inf if complete else 0.0) > -math.inf for t in ids]
    return {"ids": ids, "labels": labels(tokenizer, ids), "p": p, "q": q, "kept": kept}


def labels(tokenizer, ids) -> list:
    """Token labels with the tokenizer, else the ids as text."""
    return token_labels(tokenizer, ids) if tokenizer is not None else [str(t) for t in ids]


def note(W, text: str):
    """The visible note a replayed view shows above its controls."""
    return W.HTML(f"<div style='{NOTE_STYLE}'>▶ <b>Replayed from a trace</b>, without the model. "
                  f"{text}</div>")


def tokenizer_of(trace, tokenizer=None):
    """``tokenizer``, else the one a loaded trace carries (None: tokens shown as ids)."""
    return tokenizer if tokenizer is not None else getattr(trace, "tokenizer", None)


def freeze(*controls) -> None:
    """Disable controls that would re-run the model."""
    for c in controls:
        c.disabled = True


class RecordedSession:
    """A position along one recorded token-loop run, with `StepSession`'s view of it (``tokens``,
    ``logprobs``, ``text``, ``logprob``, ``candidates``, ``snapshot``): `forward` takes the
    token the recording took next and `rewind` steps back; no other token can be chosen, as
    that would need the model."""

    def __init__(self, steps: list, tokenizer=None, prompt: str | None = None, top: int = 12):
        self.steps, self.tokenizer, self.top = steps, tokenizer, top
        self.prompt = prompt if prompt is not None else "(prompt not recorded)"
        self.tokens, self.logprobs, self.branches = [], [], []

    def next_token(self):
        """The token the recording took next (None at its end)."""
        return self.steps[len(self.tokens)]["token"] if len(self.tokens) < len(self.steps) \
            else None

    def forward(self):
        """Take the recorded next token."""
        e = self.steps[len(self.tokens)] if self.next_token() is not None else None
        if e is None:
            raise ValueError(f"the recording ends after {len(self.steps)} tokens")
        self.tokens.append(int(e["token"]))
        self.logprobs.append(number(e["logprob"]))
        return self.tokens[-1]

    def choose(self, token: int):
        """``token`` if it is the one the recording took next; other tokens need the model."""
        if int(token) != self.next_token():
            raise ValueError(f"token must be the recorded next token {self.next_token()}, got "
                             f"{token}: choosing another token needs the model")
        return self.forward()

    def rewind(self, k: int = 1):
        """Drop the last ``k`` tokens of the path."""
        if not 0 <= k <= len(self.tokens):
            raise ValueError(f"k must be in [0, {len(self.tokens)}], got {k}")
        if k:
            del self.tokens[-k:], self.logprobs[-k:]

    @property
    def text(self) -> str:
        if self.tokenizer is None:
            return str(self.tokens)
        return self.tokenizer.decode(self.tokens, skip_special_tokens=True)

    @property
    def logprob(self) -> float:
        return float(sum(self.logprobs))

    def candidates(self) -> dict:
        """The recorded candidates of the next step (none at the end of the recording)."""
        if self.next_token() is None:
            return {"ids": [], "labels": [], "p": [], "q": [], "kept": []}
        return recorded_candidates(self.steps[len(self.tokens)], self.tokenizer, self.top)

    def snapshot(self) -> dict:
        """Plain data for `widgets.stepper.stepper_figure`, as `StepSession.snapshot`."""
        cum = [0.0]
        for lp in self.logprobs:
            cum.append(cum[-1] + lp)
        return {"prompt": self.prompt, "text": self.text,
                "path": {"labels": labels(self.tokenizer, self.tokens), "cum": cum},
                "branches": [], "candidates": self.candidates(), "logprob": self.logprob}
