"""Chapters 10 and 11: the exercises' check cells, run on their own (no models loaded), pass on
the stored solutions, fail on the student notebook's blanks, and fail on the likely mistakes
with a message that says what to reconsider."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
student = load_script("student_notebooks")
checks = pytest.importorskip("widgets.checks")


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def exercises(stem: str, blank: bool = False) -> dict:
    """{n: (solution cell source, check cell source)} of a built chapter's exercises."""
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    if blank:
        nb = student.student(nb)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    out, n = {}, 0
    for i, c in enumerate(cells):
        if "check" in tags(c):
            n += 1
            out[n] = (cells[i - 1].source, c.source)
    return out


def run(source: str, ns: dict):
    exec(compile(source, "<cell>", "exec"), ns)


def failure(source: str, ns: dict) -> str:
    with pytest.raises(checks.ExerciseFailed) as err:
        run(source, ns)
    return str(err.value)


def mistake_says(make_ns, wrong: str, check: str) -> str:
    """The message of a check cell run after a likely wrong answer."""
    ns = make_ns()
    run(wrong, ns)
    return failure(check, ns)


def solution_passes_and_blank_fails(chapter: str, n: int, make_ns) -> str:
    """Run exercise ``n``'s solution and check cell (they pass), then its blank student cell and
    the check (it fails); the failure's message."""
    sol, blank = exercises(chapter), exercises(chapter, blank=True)
    ns = make_ns()
    run(sol[n][0], ns)
    run(sol[n][1], ns)
    ns = make_ns()
    run(blank[n][0], ns)
    message = failure(blank[n][1], ns)
    assert message.startswith(f"Exercise {n}:")
    return message


# -- chapter 11: Table 5 by hand (needs only workbench.budget) ------------------------------

def ns_11() -> dict:
    from workbench import budget
    return {"budget": budget, "checks": checks, "np": np}


def test_chapter_11_table5_exercises_pass_and_fail_with_a_message():
    sol = exercises("11_token_cost")
    for n in (1, 2):
        message = solution_passes_and_blank_fails("11_token_cost", n, ns_11)
        assert ("NotImplementedError" in message) if n == 1 else ("(blank)" in message)
    # likely mistakes: a whole solution per expansion; N_b N_e = N (not strictly fewer)
    assert "T_s = T / S" in mistake_says(ns_11, "def beam_row(t_in, t, n_b, n_e, s, c_s):\n"
        "    return t_in * n_b * n_e * s, t * n_b * n_e * s, n_b * n_e * s * c_s\n", sol[1][1])
    assert "strictly fewer" in mistake_says(
        ns_11, "max_expansions, external_ratio = 16, 5.0",
        sol[2][1])
    assert "upside down" in mistake_says(
        ns_11, "max_expansions, external_ratio = 15, 4800 / 22500",
        sol[2][1])


# -- chapter 10: AUROC and the p_theta * v choice by hand (stub chapter objects) ------------

def ns_10() -> dict:
    from workbench import scoring
    from workbench.tinyworld import evaluate as ev
    cands = [SimpleNamespace(logprob=lp, text=f"solution {i}")
             for i, lp in enumerate((-1.0, -0.5, -3.0, -0.2))]
    scores = [0.95, 0.90, 0.99, 0.40]
    joint = [scoring.joint_log_score(c.logprob, v) for c, v in zip(cands, scores)]
    best = int(np.argmax(joint))
    picks = {"verifier": SimpleNamespace(scores=scores, candidates=cands),
             "verifier x p_theta": SimpleNamespace(chosen=best, text=cands[best].text)}
    return {"checks": checks, "np": np, "ev": ev, "scoring": scoring, "picks": picks,
            "flags": [True, False, True, False], "SEED": 0}


def test_chapter_10_auroc_and_joint_exercises_pass_and_fail_with_a_message():
    sol = exercises("10_external_information")
    for n in (2, 3):
        message = solution_passes_and_blank_fails("10_external_information", n, ns_10)
        assert "(blank)" in message or "NotImplementedError" in message, message
    # AUROC counted the wrong way round; ties as wins
    assert "1 minus the AUROC" in mistake_says(ns_10, "def auroc(s, y):\n"
        "    pos = [a for a, l in zip(s, y) if l]; neg = [a for a, l in zip(s, y) if not l]\n"
        "    return sum(b > a for a in pos for b in neg) / (len(pos) * len(neg))\n"
        "running_auroc = auroc(picks['verifier'].scores, flags)\n", sol[2][1])
    assert "tie as 1/2" in mistake_says(ns_10, "def auroc(s, y):\n"
        "    pos = [a for a, l in zip(s, y) if l]; neg = [a for a, l in zip(s, y) if not l]\n"
        "    return sum(a >= b for a in pos for b in neg) / (len(pos) * len(neg))\n"
        "running_auroc = auroc(picks['verifier'].scores, flags)\n", sol[2][1])
    # the verifier's argmax; v added instead of log v
    assert "verifier's favourite" in mistake_says(
        ns_10, "def joint_choice(lps, ps):\n    return int(np.argmax(ps))\n",
        sol[3][1])
    assert "logarithm" in mistake_says(
        ns_10, "def joint_choice(lps, ps):\n    return int(np.argmax(np.add(lps, ps)))\n",
        sol[3][1])


def test_chapters_10_and_11_have_claims_checks_and_open_questions():
    claims = load_script("claims")
    table = claims.table()
    for stem, n_claims in (("10_external_information", 7), ("11_token_cost", 3)):
        row = table[stem]
        assert row["claim"] >= n_claims and row["check"] >= 3 and row["open"] >= 1, (stem, row)
