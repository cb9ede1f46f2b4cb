"""Chapter 07's exercises teach: the stored solutions pass their checks, the student's blank
copy fails every check with a message, and the likely wrong answers (a vote that breaks ties by
a set's order or counts ``None``, pass@k with replacement, the reversed KL, the acceptance rate
of the experiment above) fail with a message that says what to reconsider."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "notebooks" / "07_parallel_metageneration.ipynb"
student = load_script("student_notebooks")


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def exercise(nb, number):
    """The (solution, check) code cells of exercise ``number`` (1-based, in order)."""
    cells = code_cells(nb)
    checks = [i for i, c in enumerate(cells) if "check" in tags(c)]
    i = checks[number - 1]
    assert "solution" in tags(cells[i - 1]), cells[i - 1].source
    return cells[i - 1], cells[i]


def run(source, ns):
    exec(compile(source, "07", "exec"), ns)


def failure(check, ns):
    """The check cell's failure message (None when it passes)."""
    try:
        run(check.source, ns)
    except AssertionError as e:
        return str(e)
    return None


@pytest.fixture(scope="module")
def solution():
    return nbformat.read(PATH, as_version=4)


@pytest.fixture
def light():
    """What the checks of exercises 1-2 read, without loading any model."""
    from widgets import checks
    import workbench as wb
    from workbench import meta
    from workbench.budget import Cost
    return {"checks": checks, "wb": wb, "meta": meta, "Cost": Cost, "math": math}


def test_the_vote_check_catches_ties_none_and_weights(solution, light):
    answer, check = exercise(solution, 1)
    ns = dict(light)
    run(answer.source, ns)
    assert failure(check, ns) is None                      # the solution passes
    wrong = {
        # a set's order breaks the tie of [5, 3, 3, 5] towards 3
        "def my_vote(answers, weights=None):\n"
        "    return max(sorted(set(a for a in answers if a is not None)), key=answers.count)":
            "tie goes to the one that appeared first",
        # None counted as an answer
        "def my_vote(answers, weights=None):\n"
        "    import collections\n"
        "    return collections.Counter(answers).most_common(1)[0][0] if answers else None":
            "a None answer does not vote",
        # weights ignored
        "def my_vote(answers, weights=None):\n"
        "    import collections\n"
        "    c = collections.Counter(a for a in answers if a is not None)\n"
        "    return c.most_common(1)[0][0] if c else None":
            "sum each answer's weights",
    }
    for source, message in wrong.items():
        ns = dict(light)
        run(source, ns)
        got = failure(check, ns)
        assert got and got.startswith("Exercise 1:") and message in got, (source, got)


def test_the_pass_at_k_check_catches_sampling_with_replacement(solution, light):
    answer, check = exercise(solution, 2)
    ns = dict(light)
    run(answer.source, ns)
    assert failure(check, ns) is None
    for source, message in {
            "def my_pass_at_k(n, c, k):\n    return 1 - (1 - c / n) ** k": "*with* replacement",
            "def my_pass_at_k(n, c, k):\n    return c / n": "is not right",
            "def my_pass_at_k(n, c, k):\n    return None": "return a probability"}.items():
        ns = dict(light)
        run(source, ns)
        got = failure(check, ns)
        assert got and got.startswith("Exercise 2:") and message in got, (source, got)


def _namespace(monkeypatch, nb):
    """The namespace after chapter 07's parameter, import and rejection-sampling cells."""
    monkeypatch.chdir(ROOT / "notebooks")
    cells = code_cells(nb)
    ns = {}
    for c in cells[1:3]:                          # parameters, imports
        run(c.source, ns)
    run(next(c.source for c in cells if "p_star_gen =" in c.source), ns)
    return ns


def _exercises(nb):
    """The exercise cells (solutions and checks), in order."""
    cells = code_cells(nb)
    return cells[next(i for i, c in enumerate(cells) if "solution" in tags(c)):]


def _checks(cells, ns):
    """Each check cell's failure message (None when it passed), running every cell."""
    out = []
    for c in cells:
        if "check" in tags(c):
            out.append(failure(c, ns))
        else:
            run(c.source, ns)
    return out


@pytest.mark.slow
def test_blank_chapter_07_fails_each_check_with_a_teaching_message(monkeypatch, solution):
    ns = _namespace(monkeypatch, solution)
    assert _checks(_exercises(solution), dict(ns)) == [None] * 4    # the solutions pass
    blank = _checks(_exercises(student.student(solution)), dict(ns))
    assert [m.split(":")[0] for m in blank] == [f"Exercise {i}" for i in range(1, 5)], blank
    for m in blank[:2]:
        assert "still raises NotImplementedError" in m, m
    for m in blank[2:]:
        assert "still `...` (blank)" in m, m
    # wrong answers: the reversed KL, and M = 2's rate and run
    ex3, ex4 = exercise(solution, 3)[1], exercise(solution, 4)[1]
    wrong = dict(ns)
    run("kl_4 = meta.kl_divergence([0.5, 0.3, 0.2], meta.bon_policy([0.5, 0.3, 0.2], "
        "[1, 2, 3], 4))", wrong)
    assert "the order matters" in failure(ex3, wrong)
    run("rs4 = None\nrate_m4 = (1 + grammar.prob_contains(' dragon')) / 2", wrong)
    assert "is the rate with M = 2" in failure(ex4, wrong)
    run("rate_m4 = (1 + grammar.prob_contains(' dragon')) / 4\n"
        "rs4 = meta.rejection_sample('', p_star_gen, log_target, math.log(2), num_samples=100, "
        "max_proposals=2000, batch=50, seed=SEED + 1)", wrong)
    assert "far from what M = 4 gives" in failure(ex4, wrong)
