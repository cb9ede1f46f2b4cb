"""Chapter 06's chains (survey §4.1, §5.2) as runs over problems, shared with
``scripts/sweep_chains.py``: each run maps a task problem to an output with ``.text`` and
``.cost``, and `evaluate` grades runs on the same problems (for paired comparisons)."""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .. import decoding, meta


def chain_runs(lm, task, fmt, seed=0) -> dict:
    """name -> run(problem) for the chains chapter 06 compares.  Direct answering and
    chain-of-thought (eq. 27) run on any task; least-to-most, the calculator tool, the program
    run in a sandbox and the rewriting of problems in words use TinyWorld's parser and formats,
    and are included only for TinyWorld's arithmetic task."""
    greedy = meta.LMGenerator(lm, greedy=True, stop=fmt.stop)
    reasoner = meta.LMGenerator(lm, greedy=True, stop=(fmt.marker.strip(),) + fmt.stop)

    def direct_answer(p):
        """The answer asked for right away: the prompt, then the answer marker (no thought)."""
        g = decoding.greedy(lm, fmt.prompt(p) + fmt.marker, max_new_tokens=8)
        return meta.TextOutput(fmt.marker + g.text.split("\n")[0], g.cost)

    runs = {"direct answer": direct_answer,
            "chain-of-thought": lambda p: meta.chain_of_thought(
                fmt.prompt(p), reasoner, greedy, marker=fmt.marker, seed=seed)}
    if task.name == "tinyworld-arithmetic":
        runs.update(_tinyworld_runs(lm, fmt, greedy))
    return runs


def _tinyworld_runs(lm, fmt, greedy) -> dict:
    from ..tinyworld import formats
    from ..tinyworld.worlds import expression_words
    from ..tools import run_python
    parser = formats.ArithmeticDecomposer()
    calc_fmt = formats.arithmetic_format(lm, calc=True)
    stages = rewriting_stages(lm, greedy)

    def program_aided(p):
        g = decoding.greedy(lm, f"Code: {p.question}\n", max_new_tokens=80)
        r = run_python(g.text, timeout=5)
        return meta.TextOutput(f"A: {r.stdout.strip()}" if r.ok else r.feedback, g.cost)

    return {
        "least-to-most": lambda p: meta.least_to_most(fmt.prompt(p), greedy, parser),
        "calculator tool": lambda p: meta.tool_generate(lm, calc_fmt.prompt(p)),
        "calc format, no tool": lambda p: decoding.greedy(lm, calc_fmt.prompt(p),
                                                          max_new_tokens=200),
        "program + sandbox": program_aided,
        "words, direct": lambda p: decoding.greedy(
            lm, f"Q: {expression_words(p.question)}\n", max_new_tokens=200),
        "words, rewrite then solve": lambda p: meta.chain(expression_words(p.question), stages),
    }


def rewriting_stages(lm, solver) -> list:
    """The two-stage rewriting chain (eq. 25): words -> expression (``Words: ... Q: ``), then the
    expression solved by ``solver``."""
    rewrite = meta.LMGenerator(lm, greedy=True, stop="\n", max_new_tokens=40)
    return [(rewrite, "Words: {x}\nQ: "), (solver, lambda x, y: f"Q: {y.strip()}\n")]


def evaluate(runs: dict, problems, check, progress: bool = False) -> dict:
    """Run every run on every problem: name -> one row per problem (``correct`` by
    ``check(problem, text)``, and the tokens billed: ``total_tokens``, ``output_tokens``,
    ``external_tokens``), in problem order."""
    out = {}
    for name, run in runs.items():
        rows = []
        for p in tqdm(problems, desc=name, disable=not progress):
            r = run(p)
            rows.append({"correct": bool(check(p, r.text)),
                         "total_tokens": r.cost.total_tokens,
                         "output_tokens": r.cost.output_tokens,
                         "external_tokens": r.cost.external_tokens})
        out[name] = rows
    return out


def summary(rows: list) -> tuple:
    """(accuracy, mean tokens billed) of one run's rows."""
    return (float(np.mean([r["correct"] for r in rows])),
            float(np.mean([r["total_tokens"] for r in rows])))
