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


# -- chapter 11: Table 5 by hand (needs only workbench.budget) ------------------------------

def ns_11() -> dict:
    from workbench import budget
    return {"budget": budget, "checks": checks, "np": np}


def test_chapter_11_table5_exercises_pass_and_fail_with_a_message():
    sol, blank = exercises("11_token_cost"), exercises("11_token_cost", blank=True)
    for n in (1, 2):
        ns = ns_11()
        run(sol[n][0], ns)
        run(sol[n][1], ns)                       # the solution passes
        ns = ns_11()
        run(blank[n][0], ns)
        message = failure(blank[n][1], ns)       # the blank fails, and says why
        assert message.startswith(f"Exercise {n}:")
        assert ("NotImplementedError" in message) if n == 1 else ("(blank)" in message)
    # likely mistakes: a whole solution per expansion; N_b N_e = N (not strictly fewer)
    ns = ns_11()
    run("def beam_row(t_in, t, n_b, n_e, s, c_s):\n"
        "    return t_in * n_b * n_e * s, t * n_b * n_e * s, n_b * n_e * s * c_s\n", ns)
    assert "T_s = T / S" in failure(sol[1][1], ns)
    ns = ns_11()
    run("max_expansions, external_ratio = 16, 5.0", ns)
    assert "strictly fewer" in failure(sol[2][1], ns)
    ns = ns_11()
    run("max_expansions, external_ratio = 15, 4800 / 22500", ns)
    assert "upside down" in failure(sol[2][1], ns)


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
    sol, blank = exercises("10_external_information"), exercises("10_external_information",
                                                                 blank=True)
    for n in (2, 3):
        ns = ns_10()
        run(sol[n][0], ns)
        run(sol[n][1], ns)
        ns = ns_10()
        run(blank[n][0], ns)
        message = failure(blank[n][1], ns)
        assert message.startswith(f"Exercise {n}:")
        assert "(blank)" in message or "NotImplementedError" in message, message
    # AUROC counted the wrong way round; ties as wins
    ns = ns_10()
    run("def auroc(s, y):\n"
        "    pos = [a for a, l in zip(s, y) if l]; neg = [a for a, l in zip(s, y) if not l]\n"
        "    return sum(b > a for a in pos for b in neg) / (len(pos) * len(neg))\n"
        "running_auroc = auroc(picks['verifier'].scores, flags)\n", ns)
    assert "1 minus the AUROC" in failure(sol[2][1], ns)
    ns = ns_10()
    run("def auroc(s, y):\n"
        "    pos = [a for a, l in zip(s, y) if l]; neg = [a for a, l in zip(s, y) if not l]\n"
        "    return sum(a >= b for a in pos for b in neg) / (len(pos) * len(neg))\n"
        "running_auroc = auroc(picks['verifier'].scores, flags)\n", ns)
    assert "tie as 1/2" in failure(sol[2][1], ns)
    # the verifier's argmax; v added instead of log v
    ns = ns_10()
    run("def joint_choice(lps, ps):\n    return int(np.argmax(ps))\n", ns)
    assert "verifier's favourite" in failure(sol[3][1], ns)
    ns = ns_10()
    run("def joint_choice(lps, ps):\n    return int(np.argmax(np.add(lps, ps)))\n", ns)
    assert "logarithm" in failure(sol[3][1], ns)


def test_chapters_10_and_11_have_claims_checks_and_open_questions():
    claims = load_script("claims")
    table = claims.table()
    for stem, n_claims in (("10_external_information", 7), ("11_token_cost", 3)):
        row = table[stem]
        assert row["claim"] >= n_claims and row["check"] >= 3 and row["open"] >= 1, (stem, row)
