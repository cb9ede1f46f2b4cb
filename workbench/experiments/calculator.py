"""Chapter 10's calculator experiment (survey §5.2): a model alone against the same model
calling a calculator mid-decoding, both greedy, on TinyWorld's arithmetic.

`scripts/sweep_tools.py` runs it on the 312 test problems and commits the rows; the chapter
reads them and re-runs the first problems live with `record` to show they still hold.
"""
from __future__ import annotations

from .. import decoding, meta
from ..tinyworld import formats
from ..tinyworld.tasks import problem_set

RUNS = ("alone", "+ calculator")
MAX_NEW_TOKENS = 200      # as the model card's greedy run: long solutions are not cut short
FIELDS = ("input_tokens", "output_tokens", "external_tokens")


def problems(task, which: str = "test", n: int | None = None) -> list:
    """The task's `Problem`s of problem set ``which`` (`tinyworld.tasks.PROBLEM_SETS`), in
    order; the first ``n`` of them."""
    by_id = {p.id: p for p in task.problems}
    return [by_id[t["id"]] for t in problem_set(which)[:n]]


def solve(lm, problem, run: str):
    """One greedy worked solution of ``problem`` by ``lm``: ``run`` is ``"alone"`` (the bare
    format) or ``"+ calculator"`` (the ``[CALC]`` format, `meta.tool_generate`)."""
    if run == "alone":
        return decoding.greedy(lm, formats.arithmetic_format(lm).prompt(problem),
                               max_new_tokens=MAX_NEW_TOKENS)
    if run == "+ calculator":
        return meta.tool_generate(lm, formats.arithmetic_format(lm, calc=True).prompt(problem),
                                  max_new_tokens=MAX_NEW_TOKENS)
    raise ValueError(f"run must be one of {RUNS}, got {run!r}")


def record(lm, task, problem, run: str) -> dict:
    """The stored row of one run: which problem, model and run, right or not, and its
    Table 5 token counts."""
    out = solve(lm, problem, run)
    return {"id": problem.id, "model": lm.name, "run": run,
            "correct": bool(task.format(lm).check(problem, out.text)),
            "finish_reason": out.finish_reason,
            **{f: getattr(out.cost, f) for f in FIELDS}}
