"""Grade a chapter notebook: run it in a fresh kernel and report each exercise's check cell.

    python scripts/grade.py build/student/00_welcome.ipynb
    python scripts/grade.py answers.ipynb --executed graded.ipynb   # also keep the run

The check cells that run are the solution notebook's (``notebooks/<same file name>``, or
``--checks-from PATH``): a student's edits to a check cell do not count, and nbgrader hidden
tests removed from the student's copy come back.  ``--own-checks`` runs the notebook's own.
The notebook is executed top to bottom by nbclient in a fresh ``python3`` kernel with
``notebooks/`` as the working directory (as the chapters expect), errors allowed so that every
exercise is checked.  Each cell tagged ``check`` passes when it ran without an error; a failed
one is printed with its error's message (the check cells' messages say what is wrong, see
``widgets/checks.py``).  Errors in other cells are listed too, since a later check may fail
because of them.  Exit status: 0 when every check passes, 1 when one fails, 2 when the
notebook has no check cells or could not be run.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
EXERCISE = re.compile(r"exercise\((\w+)")


def label(cell, k: int) -> str:
    m = EXERCISE.search(cell.source)
    return f"exercise {m.group(1)}" if m else f"check {k}"


def error_of(cell):
    """``"Name: message"`` of the first error a code cell's outputs hold, else None."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".rstrip(": ")
    return None


def tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def restore_checks(nb, solution) -> None:
    """Replace ``nb``'s check cells, in order, by those of ``solution`` (outputs cleared);
    ValueError when the two do not have the same number of check cells."""
    want = [c for c in solution.cells if "check" in tags(c)]
    have = [i for i, c in enumerate(nb.cells) if "check" in tags(c)]
    if len(want) != len(have):
        raise ValueError(f"the notebook has {len(have)} check cells, its solution notebook "
                         f"{len(want)}: was a check cell deleted, or its tag removed?")
    for i, ref in zip(have, want):
        cell = copy.deepcopy(ref)
        cell.outputs, cell.execution_count = [], None
        nb.cells[i] = cell


def run(nb, timeout: int = 600, cwd: Path = ROOT / "notebooks") -> None:
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()


def report(nb) -> tuple[list, list]:
    """(checks, other errors) of an executed notebook: ``(label, error or None)`` per check
    cell, ``(cell index, error)`` per failed cell that is not a check."""
    checks, others, k = [], [], 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        err = error_of(cell)
        if "check" in tags(cell):
            k += 1
            checks.append((label(cell, k), err))
        elif err:
            others.append((i, err))
    return checks, others


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    ap.add_argument("--executed", type=Path, help="write the executed notebook here")
    ap.add_argument("--checks-from", type=Path, metavar="PATH",
                    help="the solution notebook whose check cells run (default: the chapter "
                         "of the same file name in notebooks/, when there is one)")
    ap.add_argument("--own-checks", action="store_true",
                    help="run the notebook's own check cells, as they are")
    args = ap.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    if not any("check" in tags(c) for c in nb.cells):
        print(f"{args.notebook}: no check cells (cells tagged 'check') to grade")
        return 2
    ref = args.checks_from or ROOT / "notebooks" / args.notebook.name
    if not args.own_checks and ref.exists() and ref.resolve() != args.notebook.resolve():
        try:
            restore_checks(nb, nbformat.read(ref, as_version=4))
        except ValueError as e:
            print(f"{args.notebook}: {e}")
            return 2
        print(f"check cells from {ref}")
    elif args.checks_from and not args.checks_from.exists():
        print(f"{args.checks_from} does not exist")
        return 2
    t0 = time.time()
    try:
        run(nb, args.timeout)
    except Exception as e:   # a dead kernel or a timeout: nothing to grade
        print(f"{args.notebook}: could not be run: {type(e).__name__}: {e}")
        return 2
    if args.executed:
        nbformat.write(nb, args.executed)
    checks, others = report(nb)
    print(f"{args.notebook.name} ({time.time() - t0:.0f} s)")
    for name, err in checks:
        print(f"  {'PASS' if err is None else 'FAIL'}  {name}" + (f": {err}" if err else ""))
    for i, err in others:
        print(f"  note: cell {i} (not a check) raised {err}")
    passed = sum(err is None for _, err in checks)
    print(f"{passed}/{len(checks)} checks pass")
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
