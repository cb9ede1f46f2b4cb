"""Chapters 08 and 09: the implement-it and line-number exercises check what they claim to.

The exercise cells are taken from the stored (solution) notebooks and run on their own, in a
small namespace, without executing the chapters: the solution passes, the student's blank copy
fails with a message, and the likely mistakes (Python's round() instead of largest remainders,
a 0-based line for a 1-based one, and the reverse) fail with the message that names them."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
student = load_script("student_notebooks")
checks = pytest.importorskip("widgets.checks")


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def exercise(stem: str, n: int, blank: bool = False):
    """The (solution, check) code cells of exercise ``n`` of notebook ``stem`` (the student's
    version with ``blank``)."""
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    if blank:
        nb = student.student(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    at = next(i for i, c in enumerate(code)
              if "check" in tags(c) and f"checks.exercise({n})" in c.source)
    return code[at - 1].source, code[at].source


def namespace(**extra):
    from workbench import meta
    from workbench.tinyworld import arithmetic as ar
    return {"np": np, "re": re, "meta": meta, "checks": checks, "ar": ar, "TINYWORLD": False,
            **extra}


def run(solution, check, ns):
    exec(compile(solution, "solution", "exec"), ns)
    exec(compile(check, "check", "exec"), ns)


def solution_passes_blank_fails(stem, n, placeholder, capsys):
    """Exercise ``n``: the solution passes its check, the student's blank copy fails it."""
    solution, check = exercise(stem, n)
    run(solution, check, namespace())
    assert f"Exercise {n}: right." in capsys.readouterr().out
    blank, _ = exercise(stem, n, blank=True)
    assert "BEGIN SOLUTION" not in blank and f"{placeholder} = ..." in blank
    with pytest.raises(checks.ExerciseFailed, match="still `...`|NotImplementedError"):
        run(blank, check, namespace())
    return solution, check


def mistake_fails(solution, check, old, new, match):
    """The solution with ``old`` replaced by the mistake ``new`` fails with ``match``."""
    wrong = solution.replace(old, new)
    assert wrong != solution
    with pytest.raises(checks.ExerciseFailed, match=match):
        run(wrong, check, namespace())


def test_ch08_allocate_solution_passes_blank_and_wrong_ones_fail(capsys):
    solution, check = solution_passes_blank_fails("08_step_level_search", 1, "rebase_alloc",
                                                  capsys)
    rounding = ("def my_allocate(width, weights):\n    w = np.asarray(weights, float)\n"
                "    return [int(round(x)) for x in width * w / w.sum()]\n"
                "rebase_alloc = my_allocate(8, np.exp(np.array([0.9, 0.5, 0.1]) / 0.2))\n")
    with pytest.raises(checks.ExerciseFailed, match="adds up to .*floor them"):
        run(rounding, check, namespace())
    mistake_fails(solution, check, "(-(exact[i] - out[i]), i)", "(-(exact[i] - out[i]), -i)",
                  "on a tie to the earlier state")
    mistake_fails(solution, check, "np.array([0.9, 0.5, 0.1]) / 0.2", "np.array([0.9, 0.5, 0.1])",
                  "divide the values by the temperature")


def test_ch08_systematic_resampling_exercise(capsys):
    solution, check = solution_passes_blank_fails("08_step_level_search", 4,
                                                  "systematic_children", capsys)
    mistake_fails(solution, check, 'side="right"', 'side="left"', "belongs to the later slice")
    mistake_fails(solution, check, "np.cumsum(w / w.sum())", "np.cumsum(w)",
                  "normalise the weights")
    mistake_fails(solution, check, "systematic_children = {2}", "systematic_children = {1, 2, 3}",
                  "floor")


@pytest.fixture(scope="module")
def arith():
    import workbench as wb
    return wb.tasks.load("tinyworld-arithmetic")


def test_ch09_lines_count_from_one(arith, capsys):
    solution, check = exercise("09_refinement", 1)
    ns = namespace(wb=__import__("workbench"))
    run(solution, check, ns)
    assert (ns["calc_line"], ns["step_line"]) == (2, 2)      # the second step, counted from 1
    zero_based = solution.replace(".first_error + 1", ".first_error")
    with pytest.raises(checks.ExerciseFailed, match="0-based index"):
        run(zero_based, check, namespace(wb=__import__("workbench")))
    solution2, check2 = exercise("09_refinement", 2)
    ns2 = namespace(arith=arith)
    run(solution2, check2, ns2)
    assert (ns2["calc_done"], ns2["step_done"], ns2["step_flag"]) == (True, False, 1)
    with pytest.raises(checks.ExerciseFailed, match="0-based index"):
        run(solution2.replace("z_step.first_error + 1", "z_step.first_error"), check2,
            namespace(arith=arith))
    assert "Exercise 1: right." in capsys.readouterr().out


def test_ch09_calculator_feedback_exercise(capsys):
    solution, check = exercise("09_refinement", 3)
    run(solution, check, namespace())
    assert "Exercise 3: right." in capsys.readouterr().out
    one_based = solution.replace('f"{a}{op}{b}={right}")', 'f"{a}{op}{b}={right}")'
                                 ).replace(", i,\n", ", i + 1,\n")
    assert one_based != solution
    with pytest.raises(checks.ExerciseFailed, match="counts from 1"):
        run(one_based, check, namespace())
    blank, _ = exercise("09_refinement", 3, blank=True)
    assert "raise NotImplementedError()" in blank and "eval(" not in blank
    with pytest.raises(checks.ExerciseFailed, match="NotImplementedError"):
        run(blank, check, namespace())
