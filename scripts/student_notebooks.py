"""Write the student notebooks: the stored chapters with their solutions blanked.

The stored notebooks ``notebooks/NN_name.ipynb`` are the *solution* notebooks (CI runs them
under nbval).  In their exercise cells (tagged ``solution``) the answer is an nbgrader solution
region::

    ### BEGIN SOLUTION
    p_cat = story.p_star(" The cat slept.")
    ### END SOLUTION

A student notebook replaces each region by a stub:

- a top-level region that assigns answers the chapter's check cells read (``p_cat`` above)
  becomes
  ``# YOUR CODE HERE`` and one ``name = ...`` placeholder per answer.  The placeholder is
  Python's ``...`` (not ``None``, which is a legitimate answer of some exercises, and not
  nbgrader's ``raise``, which would stop "Run all" at the first exercise): the notebook runs
  to the end and each check cell says which answer is still blank;
- any other region (the body of a function the student is to write) becomes nbgrader's stub,
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()``, indented like the region; the check
  cell turns that error into "write its body".

Markdown regions between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` (teacher's
answers to open questions) are removed, and a markdown cell left empty is dropped; so are
nbgrader's hidden tests (``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``) in check cells,
which ``scripts/grade.py`` restores from the solution notebook.  Every
output, execution count and stored widget state is cleared.  Tags stay, so
``scripts/grade.py`` finds the check cells.

    python scripts/student_notebooks.py                    # every chapter -> build/student/
    python scripts/student_notebooks.py 00 12 --out DIR    # chapters whose name starts so
    python scripts/student_notebooks.py --nbgrader DIR     # also nbgrader source notebooks

``--nbgrader DIR`` additionally writes the solution notebooks, outputs cleared, with nbgrader
cell metadata (``solution`` cells as autograded answers, or manually graded for markdown;
``check`` cells as autograder tests worth one point), for instructors who use nbgrader's own
``generate_assignment`` / ``autograde``.
"""
from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CODE_BEGIN, CODE_END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
STUB = "# YOUR CODE HERE"
RAISE = "raise NotImplementedError()"


def tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def _regions(lines: list, begin: str, end: str) -> list:
    out, start = [], None
    for i, line in enumerate(lines):
        if line.strip() == begin:
            start = i
        elif line.strip() == end and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"{begin!r} on line {start + 1} is never closed")
    return out


def _python(source: str) -> str:
    """A cell's source with IPython magics and shell escapes commented out, for ``ast``."""
    return re.sub(r"^(\s*)([%!])", r"\1#\2", source, flags=re.M)


def names_read(sources) -> set:
    """The names the given code reads (``ast.Name`` in a load context) without assigning them
    anywhere itself: for check cells, the answers they check and the chapter's objects."""
    read, stored = set(), set()
    for src in sources:
        for node in ast.walk(ast.parse(_python(src))):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else stored).add(node.id)
    return read - stored


def _targets(node) -> list:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for elt in node.elts for n in _targets(elt)]
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return []


def assigned(code: str) -> list:
    """Names a block assigns at its top level, in order of first assignment."""
    names = []
    for stmt in ast.parse(code).body:
        if isinstance(stmt, ast.Assign):
            found = [n for t in stmt.targets for n in _targets(t)]
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
            found = _targets(stmt.target)
        else:
            found = []
        names += [n for n in found if n not in names]
    return names


def blank_code(source: str, answers: set) -> str:
    """``source`` with each ``### BEGIN/END SOLUTION`` region replaced by its stub: for a
    region that is not indented, one ``name = ...`` placeholder per answer (a name in
    ``answers``) it assigns at its top level; else (a function's body, or no answer assigned)
    nbgrader's ``raise NotImplementedError()``, indented like the region."""
    lines = source.split("\n")
    for start, stop in reversed(_regions(lines, CODE_BEGIN, CODE_END)):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        body = textwrap.dedent("\n".join(lines[start + 1: stop]))
        names = [] if indent else [n for n in assigned(_python(body)) if n in answers]
        stub = [f"{n} = ..." for n in names] or [RAISE]
        lines[start: stop + 1] = [indent + s for s in [STUB] + stub]
    return "\n".join(lines)


def hide_tests(source: str) -> str:
    """``source`` without its ``### BEGIN/END HIDDEN TESTS`` regions (nbgrader's hidden tests:
    checks the student does not see, which ``scripts/grade.py`` puts back)."""
    lines = source.split("\n")
    for start, stop in reversed(_regions(lines, HIDDEN_BEGIN, HIDDEN_END)):
        del lines[start: stop + 1]
    return "\n".join(lines)


def blank_markdown(source: str) -> str:
    """``source`` without its ``<!-- BEGIN/END SOLUTION -->`` regions."""
    lines = source.split("\n")
    for start, stop in reversed(_regions(lines, MD_BEGIN, MD_END)):
        del lines[start: stop + 1]
    return "\n".join(lines).strip("\n")


def student(nb):
    """The student version of a solution notebook (a new notebook; ``nb`` is untouched)."""
    nb = copy.deepcopy(nb)
    answers = names_read(c.source for c in nb.cells
                         if c.cell_type == "code" and "check" in tags(c))
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = hide_tests(blank_code(cell.source, answers))
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown" and MD_BEGIN in cell.source:
            cell.source = blank_markdown(cell.source)
            if not cell.source.strip():
                continue
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def nbgrader_source(nb, stem: str):
    """The solution notebook, outputs cleared, with nbgrader cell metadata (schema 3):
    ``solution`` code cells are autograded answers, ``solution`` markdown cells manually graded
    answers, ``check`` cells autograder tests worth one point."""
    nb = copy.deepcopy(nb)
    n = {"answer": 0, "check": 0}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        kind = "answer" if "solution" in tags(cell) else "check" if "check" in tags(cell) else None
        if kind is None:
            continue
        n[kind] += 1
        meta = {"grade_id": f"{stem}-{kind}-{n[kind]}", "schema_version": 3, "task": False,
                "solution": kind == "answer", "locked": kind == "check",
                "grade": kind == "check" or cell.cell_type == "markdown"}
        if meta["grade"]:
            meta["points"] = 1
        cell.metadata["nbgrader"] = meta
    nb.metadata.pop("widgets", None)
    return nb


def chapters(only=()) -> list:
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                  if not only or any(p.stem.startswith(o) for o in only))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("only", nargs="*", help="chapter name prefixes (default: every chapter)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "student",
                    help="where the student notebooks go (default build/student)")
    ap.add_argument("--nbgrader", type=Path, metavar="DIR",
                    help="also write nbgrader source notebooks (solutions, metadata) to DIR")
    args = ap.parse_args(argv)
    paths = chapters(args.only)
    if not paths:
        sys.exit(f"no chapter matches {args.only}")
    args.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        n_code = sum(len(_regions(c.source.split("\n"), CODE_BEGIN, CODE_END))
                     for c in nb.cells if c.cell_type == "code")
        n_md = sum(len(_regions(c.source.split("\n"), MD_BEGIN, MD_END))
                   for c in nb.cells if c.cell_type == "markdown")
        n_check = sum("check" in tags(c) for c in nb.cells)
        nbformat.write(student(nb), args.out / path.name)
        if args.nbgrader:
            args.nbgrader.mkdir(parents=True, exist_ok=True)
            nbformat.write(nbgrader_source(nb, path.stem), args.nbgrader / path.name)
        print(f"{path.stem}: {n_code} code and {n_md} markdown solution regions blanked, "
              f"{n_check} check cells -> {args.out / path.name}")


if __name__ == "__main__":
    main()
