"""Student notebooks, check cells and grading (scripts/student_notebooks.py, scripts/grade.py,
widgets/checks.py, scripts/claims.py): the student's copy holds no solution, and a check cell
run on a blank or wrong answer fails with a message that teaches."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
student = load_script("student_notebooks")
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# the chapters whose exercises have solution regions (06-11 to follow)
CONVERTED = ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14"]


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def with_regions():
    return [p for p in CHAPTERS if any("solution" in tags(c)
                                       for c in nbformat.read(p, as_version=4).cells)]


def region_lines(source: str, begin: str, end: str) -> list:
    """The stripped, non-empty lines inside a cell's solution regions."""
    lines = source.split("\n")
    return [ln.strip() for a, b in student._regions(lines, begin, end)
            for ln in lines[a + 1: b] if ln.strip()]


def test_the_converted_chapters_have_exercises():
    have = {p.stem[:2] for p in with_regions()}
    assert set(CONVERTED) <= have, set(CONVERTED) - have


@pytest.mark.parametrize("path", with_regions(), ids=lambda p: p.stem)
def test_student_notebook_has_no_solutions_but_stubs_and_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    st = student.student(nb)
    by_id = {c.id: c for c in st.cells}
    checks = [c for c in nb.cells if "check" in tags(c)]
    assert checks and [c.id for c in checks] == [c.id for c in st.cells if "check" in tags(c)]
    for cell in nb.cells:
        if "solution" not in tags(cell):
            continue
        if cell.cell_type == "code":
            secret = region_lines(cell.source, student.CODE_BEGIN, student.CODE_END)
            kept = by_id[cell.id].source
            # lines of the student's cell that were solution lines (and nothing else)
            lines = cell.source.split("\n")
            inside = {i for a, b in student._regions(lines, student.CODE_BEGIN, student.CODE_END)
                      for i in range(a, b + 1)}
            outside = {ln.strip() for i, ln in enumerate(lines) if i not in inside}
            leaked = [ln for ln in secret if ln in {x.strip() for x in kept.split("\n")} - outside]
            assert not leaked, (path.stem, leaked)
            assert "BEGIN SOLUTION" not in kept and student.STUB in kept
            top_level = [ln for ln in cell.source.split("\n") if ln == student.CODE_BEGIN]
            if top_level:   # a top-level region leaves placeholders, never a raise
                assert re.search(r"^\w+ = \.\.\.$", kept, re.M), kept
                assert not re.search(r"^raise NotImplementedError", kept, re.M), kept
            else:
                assert student.RAISE in kept
        else:
            secret = region_lines(cell.source, student.MD_BEGIN, student.MD_END)
            text = by_id[cell.id].source if cell.id in by_id else ""
            assert "BEGIN SOLUTION" not in text
            assert not [ln for ln in secret if ln in text], (path.stem, cell.id)
    for cell in st.cells:
        assert "SOLUTION" not in cell.source, cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert "widgets" not in st.metadata


def test_stubs_placeholders_and_markdown():
    src = ("x = 1\n### BEGIN SOLUTION\nhelper = 2\nanswer, other = helper + 1, 0\n"
           "### END SOLUTION\nprint(answer)")
    assert student.blank_code(src, {"answer", "other"}) == (
        "x = 1\n# YOUR CODE HERE\nanswer = ...\nother = ...\nprint(answer)")
    assert student.blank_code(src, set()) == (
        "x = 1\n# YOUR CODE HERE\nraise NotImplementedError()\nprint(answer)")
    fn = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    y = x\n    return y\n    ### END SOLUTION"
    assert student.blank_code(fn, {"y"}) == (
        "def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    md = "Question?\n<!-- BEGIN SOLUTION -->\nThe answer.\n<!-- END SOLUTION -->"
    assert student.blank_markdown(md) == "Question?"
    assert student.names_read(["with c.exercise(1):\n    c.answered(a=a)\n    b = 1\n    b"]) == {
        "c", "a"}


def test_command_writes_student_and_nbgrader_notebooks(tmp_path):
    out, grader = tmp_path / "student", tmp_path / "source"
    student.main(["00", "--out", str(out), "--nbgrader", str(grader)])
    nb = nbformat.read(out / "00_welcome.ipynb", as_version=4)
    assert any("computed_prompt_tokens = ..." in c.source for c in nb.cells)
    src = nbformat.read(grader / "00_welcome.ipynb", as_version=4)
    meta = [c.metadata["nbgrader"] for c in src.cells if "nbgrader" in c.metadata]
    assert [m["solution"] for m in meta] == [True, False] * 3
    assert all(m["grade"] and m["points"] == 1 and m["locked"] for m in meta if not m["solution"])
    assert len({m["grade_id"] for m in meta}) == len(meta)
    assert all(c.get("outputs", []) == [] for c in src.cells)


def test_claims_are_counted():
    claims = load_script("claims")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("assert 1", metadata={"tags": ["claim"]}),
                nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["solution"]}),
                nbformat.v4.new_code_cell("assert x", metadata={"tags": ["check", "claim"]}),
                nbformat.v4.new_markdown_cell("text"),
                nbformat.v4.new_markdown_cell("Q?", metadata={"tags": ["solution"]})]
    assert claims.count(nb) == {"claim": 2, "solution": 2, "check": 1, "open": 1}
    table = claims.table()
    assert set(table) == {p.stem for p in CHAPTERS}
    assert table["05_constrained_decoding"]["claim"] >= 1
    assert all(table[p.stem]["check"] >= 3 for p in CHAPTERS if p.stem[:2] in CONVERTED)


# -- check cells that teach ---------------------------------------------------------------


def test_check_helpers_say_what_is_wrong(capsys):
    checks = pytest.importorskip("widgets.checks")
    with pytest.raises(checks.ExerciseFailed, match=r"Exercise 1: `x` is still `\.\.\.`"):
        with checks.exercise(1):
            checks.answered(x=...)
    with pytest.raises(checks.ExerciseFailed, match="Exercise 2: name 'nope' is not defined. Run"):
        with checks.exercise(2):
            nope  # noqa: B018, F821
    with pytest.raises(checks.ExerciseFailed, match="still raises NotImplementedError"):
        with checks.exercise(3):
            raise NotImplementedError()
    with pytest.raises(checks.ExerciseFailed, match="raised TypeError"):
        with checks.exercise(4):
            checks.expect(len(3), "unreachable")
    with pytest.raises(checks.ExerciseFailed, match=r"`p` = 0\.5 is not right: hint"):
        checks.close("p", 0.5, 0.25, "hint")
    with pytest.raises(checks.ExerciseFailed, match="`p` should be a number, got str"):
        checks.close("p", "a", 0.25, "hint")
    with checks.exercise(5):
        checks.answered(x=None)
        checks.close("p", 0.25 + 1e-12, 0.25, "hint")
    assert capsys.readouterr().out == "Exercise 5: right.\n"


def _chapter(monkeypatch, nb, name):
    """Run a chapter's parameter and import cells, then hand back the namespace and the exercise
    cells (answer, check) in order."""
    monkeypatch.chdir(ROOT / "notebooks")
    cells = [c for c in nb.cells if c.cell_type == "code"]
    ns = {}
    for c in cells[1:3]:        # parameters, imports (the set-up cell does nothing here)
        exec(compile(c.source, name, "exec"), ns)
    start = next(i for i, c in enumerate(cells) if "solution" in tags(c))
    return ns, cells[start:]


def _run(cells, ns, name):
    """Each check cell's error message (None when it passed), running every cell."""
    out = []
    for c in cells:
        try:
            exec(compile(c.source, name, "exec"), ns)
        except Exception as e:  # noqa: BLE001 - a check cell's failure is the result
            assert "check" in tags(c), c.source
            out.append(str(e))
        else:
            if "check" in tags(c):
                out.append(None)
    return out


def _solutions_pass_and_blanks_fail(monkeypatch, name, blanks):
    """The solutions pass every check; the student copy fails each, with the given messages."""
    path = next((ROOT / "notebooks").glob(f"{name}_*.ipynb"))
    solution = nbformat.read(path, as_version=4)
    ns, cells = _chapter(monkeypatch, solution, name)
    assert _run(cells, dict(ns), name) == [None] * len(blanks)
    blank = _run(_chapter(monkeypatch, student.student(solution), name)[1], dict(ns), name)
    assert [m.split(":")[0] for m in blank] == [f"Exercise {i + 1}" for i in range(len(blanks))]
    for m, why in zip(blank, blanks):
        assert why in m, m
    return ns, cells


@pytest.mark.slow
def test_blank_chapter_12_fails_each_check_with_a_teaching_message(monkeypatch):
    ns, cells = _solutions_pass_and_blanks_fail(
        monkeypatch, "12", ["still `...` (blank)"] * 2 + ["still raises NotImplementedError"])
    wrong = dict(ns)            # a wrong answer: the cache of keys only
    exec("llama_cache_gib = 32 * 32 * 128 * 2 * 4096 / 2**30", wrong)
    check_1 = next(c for c in cells if "check" in tags(c))
    with pytest.raises(AssertionError, match="only the keys or only the values"):
        exec(compile(check_1.source, "12", "exec"), wrong)


@pytest.mark.slow
def test_blank_chapter_13_fails_each_check_with_a_teaching_message(monkeypatch):
    ns, cells = _solutions_pass_and_blanks_fail(
        monkeypatch, "13", ["still `...` (blank)"] + ["still raises NotImplementedError"] * 2)
    wrong = dict(ns)            # a wrong residual: the target itself
    exec("def accept_prob(p, q):\n    return torch.clamp(p / q, max=1.0)\n"
         "def residual(p, q):\n    return p\n", wrong)
    check_2 = [c for c in cells if "check" in tags(c)][1]
    with pytest.raises(AssertionError, match="does not follow p"):
        exec(compile(check_2.source, "13", "exec"), wrong)


# -- grading ------------------------------------------------------------------------------


def _grade(path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "grade.py"), str(path), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_grade_reports_each_check_and_fails_on_a_blank_answer(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("from widgets import checks"),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 2\n### END SOLUTION",
                                  metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("with checks.exercise(1):\n    checks.answered(x=x)\n"
                                  "    checks.expect(x == 2, f'x = {x}: double 1.')",
                                  metadata={"tags": ["check"]}),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\ny = 3\n### END SOLUTION",
                                  metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("with checks.exercise(2):\n    checks.expect(y == 3, 'y?')",
                                  metadata={"tags": ["check"]})]
    nbformat.write(nb, tmp_path / "solution.ipynb")
    blank = student.student(nb)
    blank.cells[3].source = "y = 4"                                 # a wrong answer
    blank.cells[4].source = "with checks.exercise(2):\n    pass"    # and a tampered check
    nbformat.write(blank, tmp_path / "student.ipynb")
    good = _grade(tmp_path / "solution.ipynb")
    bad = _grade(tmp_path / "student.ipynb", "--checks-from", str(tmp_path / "solution.ipynb"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS  exercise 1" in good.stdout and "2/2 checks pass" in good.stdout
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL  exercise 1: ExerciseFailed: Exercise 1: `x` is still `...` (blank)" in bad.stdout
    assert "FAIL  exercise 2: ExerciseFailed: Exercise 2: y?" in bad.stdout
    assert "0/2 checks pass" in bad.stdout
    assert _grade(tmp_path / "student.ipynb", "--own-checks").stdout.endswith("1/2 checks pass\n")


def test_grading_restores_the_solution_notebooks_check_cells():
    grade = load_script("grade")
    solution = nbformat.read(ROOT / "notebooks" / "00_welcome.ipynb", as_version=4)
    mine = student.student(solution)
    checks = [i for i, c in enumerate(mine.cells) if "check" in tags(c)]
    mine.cells[checks[0]].source = "pass"
    grade.restore_checks(mine, solution)
    assert [mine.cells[i].source for i in checks] == [
        c.source for c in solution.cells if "check" in tags(c)]
    assert all(mine.cells[i].outputs == [] for i in checks)
    del mine.cells[checks[-1]].metadata["tags"]
    with pytest.raises(ValueError, match="2 check cells, its solution notebook 3"):
        grade.restore_checks(mine, solution)
    assert student.hide_tests("a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc") == "a\nc"


@pytest.mark.slow
@pytest.mark.tier
def test_grade_passes_the_solution_notebook_of_chapter_00():
    done = _grade(ROOT / "notebooks" / "00_welcome.ipynb")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3/3 checks pass" in done.stdout
