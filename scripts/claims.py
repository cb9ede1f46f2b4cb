"""Count the tagged cells of each stored chapter: claim checks, checked exercises, open questions.

A claim-check cell (tag ``claim``) asserts a quantitative statement of the chapter's prose, so a
result that moves after a retrain or an upgrade fails the notebook under nbval; an exercise cell
(tag ``solution``) holds a solution region and its check cell is tagged ``check``
(docs/conventions.md, "Exercises and claims").

    python scripts/claims.py            # a table of every chapter
    python scripts/claims.py 05 12      # chapters whose name starts so
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
TAGS = ("claim", "solution", "check")


def count(nb) -> dict:
    """``{tag: number of cells carrying it}`` for the tags in ``TAGS``, and ``open``: the
    markdown ``solution`` cells (open questions with a teacher's answer)."""
    n = dict.fromkeys(TAGS + ("open",), 0)
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        for tag in tags & set(TAGS):
            n[tag] += 1
        n["open"] += cell.get("cell_type") == "markdown" and "solution" in tags
    return n


def table(only=()) -> dict:
    """``{chapter: count(...)}`` for the stored chapters in ``notebooks/``."""
    paths = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
                   if not only or any(p.stem.startswith(o) for o in only))
    return {p.stem: count(nbformat.read(p, as_version=4)) for p in paths}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("only", nargs="*", help="chapter name prefixes")
    rows = table(ap.parse_args(argv).only)
    head = ("claim checks", "checked exercises", "open questions")
    print(f"{'chapter':34} " + " ".join(head))
    line = "{:34} {:12} {:17} {:14}"
    for name, n in rows.items():
        print(line.format(name, n["claim"], n["check"], n["open"]))
    total = {t: sum(n[t] for n in rows.values()) for t in ("claim", "check", "open")}
    print(line.format("total", total["claim"], total["check"], total["open"]))


if __name__ == "__main__":
    main()
