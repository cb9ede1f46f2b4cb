"""Token accounting after the survey's Table 5 (§6.1), plus hard budgets.

A `Cost` counts what one call spent:

* ``input_tokens``  - prompt tokens sent to generators (Table 5 "Input": T_in per call),
* ``output_tokens`` - tokens generated (Table 5 "Output": T per call),
* ``external_tokens`` - tokens spent by scorers, verifiers and tools (Table 5 "External"),
* ``forward_passes`` - model forward calls,
* ``computed_tokens`` - token positions actually run through a model; KV caching and prefix
  sharing make this smaller than input + output,
* ``calls`` - generator calls.

Costs add with ``+``; every result object carries one as ``.cost``.  A `Budget` caps any of
these fields; algorithms that take a budget check it before spending and never exceed it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

FIELDS = ("input_tokens", "output_tokens", "external_tokens", "forward_passes",
          "computed_tokens", "calls")


@dataclass
class Cost:
    input_tokens: int = 0
    output_tokens: int = 0
    external_tokens: int = 0
    forward_passes: int = 0
    computed_tokens: int = 0
    calls: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(*(getattr(self, f) + getattr(other, f) for f in FIELDS))

    def __radd__(self, other):
        return self if other == 0 else self.__add__(other)

    @property
    def total_tokens(self) -> int:
        """Input + output + external: what a token-priced API would bill."""
        return self.input_tokens + self.output_tokens + self.external_tokens

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self):
        return (f"in={self.input_tokens} out={self.output_tokens} ext={self.external_tokens} "
                f"passes={self.forward_passes} computed={self.computed_tokens}")


def total(costs) -> Cost:
    return sum(costs, Cost())


class BudgetExceeded(RuntimeError):
    """Raised by `Budget.charge` when spending would go over a limit."""


class Budget:
    """Limits on any `Cost` field, e.g. ``Budget(output_tokens=2000)``.

    ``remaining(field)`` tells how much is left; ``affords(cost)`` whether a planned spend fits;
    ``charge(cost)`` records it (raising `BudgetExceeded` if it does not fit).
    """

    def __init__(self, **limits):
        unknown = set(limits) - set(FIELDS) - {"total_tokens"}
        if unknown:
            raise ValueError(f"unknown budget field(s) {sorted(unknown)}; use {FIELDS}")
        for k, v in limits.items():
            if v is None or v < 0:
                raise ValueError(f"{k} must be a non-negative number, got {v!r}")
        self.limits = limits
        self.spent = Cost()

    def remaining(self, field: str) -> float:
        if field not in self.limits:
            return float("inf")
        used = self.spent.total_tokens if field == "total_tokens" else getattr(self.spent, field)
        return self.limits[field] - used

    def affords(self, cost: Cost) -> bool:
        after = self.spent + cost
        return all((after.total_tokens if k == "total_tokens" else getattr(after, k)) <= v
                   for k, v in self.limits.items())

    def charge(self, cost: Cost) -> None:
        if not self.affords(cost):
            raise BudgetExceeded(f"spending {cost} would exceed the budget {self.limits}")
        self.spent = self.spent + cost

    def __repr__(self):
        return f"Budget(limits={self.limits}, spent={self.spent})"



# -- the survey's Table 5: predicted token budgets -------------------------------------------

TABLE5 = {
    # method: (input, output, external) as functions of the cost parameters
    "ancestral sampling": (lambda p: p["t_in"], lambda p: p["t"], lambda p: 0),
    "reranking": (lambda p: p["t_in"] * p["n"], lambda p: p["t"] * p["n"],
                  lambda p: p["n"] * p["c_s"]),
    "best-of-n (log-p)": (lambda p: p["t_in"] * p["n"], lambda p: p["t"] * p["n"],
                          lambda p: 0),
    "best-of-n (llm scorer)": (lambda p: p["t_in"] * p["n"], lambda p: p["t"] * p["n"],
                               lambda p: p["n"] * (p["t_in"] + p["t"] + 1)),
    "transformation": (lambda p: p["t_in"] * p["n"], lambda p: p["t"] * p["n"],
                       lambda p: p["c_t"]),
    "self-consistency": (lambda p: p["t_in"] * p["n"], lambda p: p["t"] * p["n"],
                         lambda p: 0),
    "weighted self-consistency": (lambda p: p["t_in"] * p["n"], lambda p: p["t"] * p["n"],
                                  lambda p: p["n"] * p["c_s"]),
    "step-level beam (log-p)": (lambda p: p["t_in"] * p["n_b"] * p["n_e"] * p["s"],
                                lambda p: p["t_s"] * p["n_b"] * p["n_e"] * p["s"],
                                lambda p: 0),
    "step-level beam (scorer)": (lambda p: p["t_in"] * p["n_b"] * p["n_e"] * p["s"],
                                 lambda p: p["t_s"] * p["n_b"] * p["n_e"] * p["s"],
                                 lambda p: p["n_b"] * p["n_e"] * p["s"] * p["c_s"]),
    "step-level dfs (scorer)": (lambda p: p["t_in"] * p["n_e"] * p["s"],
                                lambda p: p["t_s"] * p["n_e"] * p["s"],
                                lambda p: p["n_e"] * p["s"] * p["c_s"]),
    "refinement": (lambda p: p["t_in"] * (1 + p["n_r"]), lambda p: p["t"] * (1 + p["n_r"]),
                   lambda p: p["n_r"] * p["c_z"]),
    "refinement (self-feedback)": (lambda p: p["t_in"] + (2 * p["t_in"] + p["t"]) * p["n_r"],
                                   lambda p: p["t"] + 2 * p["t"] * p["n_r"], lambda p: 0),
}
DEFAULTS = {"n": 1, "c_s": 0, "c_t": 0, "c_z": 0, "n_b": 1, "n_e": 1, "s": 1, "n_r": 0,
            "t_s": None}


def table5(method: str, t_in: float, t: float, **params) -> Cost:
    """The token budget the survey's Table 5 predicts for ``method`` (one of `TABLE5`).

    ``t_in`` and ``t`` are the input and output tokens of one generator call; the other cost
    parameters are ``n``, ``c_s`` (tokens per call of a scoring model), ``c_t`` (one call of a
    transformation), ``n_b``, ``n_e``, ``s`` and ``t_s`` (step-level search; ``t_s`` defaults to
    ``t / s``), ``n_r`` and ``c_z`` (refinement).  Only the three token fields are predicted.
    """
    if method not in TABLE5:
        raise ValueError(f"method must be one of {sorted(TABLE5)}, got {method!r}")
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown cost parameter(s) {sorted(unknown)}; use {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params, "t_in": t_in, "t": t}
    for k, v in p.items():
        if v is not None and v < 0:
            raise ValueError(f"{k} must be >= 0, got {v}")
    if p["t_s"] is None:
        p["t_s"] = t / max(p["s"], 1)
    i, o, e = (f(p) for f in TABLE5[method])
    return Cost(input_tokens=i, output_tokens=o, external_tokens=e)
