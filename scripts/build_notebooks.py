"""Build the chapters: ``notebooks/src/NN_name.py`` (percent format) -> executed ``.ipynb``.

Sources are plain Python files whose cells start with ``# %%`` (code) or ``# %% [markdown]``
(markdown, every line prefixed by ``# ``).  The marker line may carry jupytext-style cell
metadata as ``key=JSON`` pairs, e.g. ``# %% tags=["check"]`` or
``# %% [markdown] tags=["solution"]``; it becomes the built cell's ``metadata``.  The tags the
chapters use (docs/conventions.md, "Exercises and claims"):

- ``claim``: a claim-check cell, asserting a quantitative statement of the prose
  (``scripts/claims.py`` counts them);
- ``solution``: an exercise cell holding nbgrader solution regions (``### BEGIN SOLUTION`` /
  ``### END SOLUTION`` in code, ``<!-- BEGIN SOLUTION -->`` / ``<!-- END SOLUTION -->`` around a
  teacher's answer in markdown), which ``scripts/student_notebooks.py`` blanks;
- ``check``: the check cell of an exercise, which ``scripts/grade.py`` reports on.

A solution region outside a cell tagged ``solution``, or an unbalanced one, is an error (as in
nbgrader).  Each notebook is executed top to bottom in a fresh
kernel so that the stored outputs are exactly what nbval will reproduce; the run time is
printed and must stay under 90 s on a 2-core CPU.

    python scripts/build_notebooks.py              # all chapters
    python scripts/build_notebooks.py 03 07        # chapters whose name starts with 03 or 07
    python scripts/build_notebooks.py --no-execute # only convert
    python scripts/build_notebooks.py --static 03  # only remake stored notebooks' static images

Every figure and every widget that shows figures also gets a static PNG (`add_static`), and
the cells get slide metadata for presenting with RISE (`add_slides`).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
REPO = "metagen-workbench/metagen-workbench"
BADGES = (
    "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}.ipynb) "
    "[![Binder](https://mybinder.org/badge_logo.svg)]"
    "(https://mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/notebooks/{name}.ipynb)")
SETUP = """# Set-up: on Colab, fetch the workbench with its embedded models and install it against
# Colab's own torch and transformers (scripts/colab_setup.py); anywhere else this cell does nothing.
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    if not os.path.isdir("/content/workbench"):
        subprocess.run(["git", "clone", "-q", "--depth", "1",
                        "https://github.com/{repo}", "/content/workbench"], check=True)
    %run /content/workbench/scripts/colab_setup.py"""
SRC, OUT = ROOT / "notebooks" / "src", ROOT / "notebooks"
CELL = re.compile(r"^# %%(.*)$", re.M)
MARKERS = {"code": ("### BEGIN SOLUTION", "### END SOLUTION"),
           "markdown": ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->")}


def header(rest: str, where: str = "") -> tuple[str, dict]:
    """The cell type and metadata of a marker line's text after ``# %%``:
    ``' [markdown] tags=["solution"]'`` -> ``("markdown", {"tags": ["solution"]})``."""
    text = rest.strip()
    kind = "code"
    if text.startswith("[markdown]"):
        kind, text = "markdown", text[len("[markdown]"):].strip()
    meta, decode = {}, json.JSONDecoder().raw_decode
    while text:
        m = re.match(r"([A-Za-z_][\w.-]*)=", text)
        if not m:
            raise ValueError(f"{where}cell marker '# %%{rest}': expected [markdown] and/or "
                             f"key=JSON metadata (tags=[\"check\"]), got {text!r}")
        try:
            value, end = decode(text, m.end())
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}cell marker '# %%{rest}': the value of {m.group(1)} is "
                             f"not JSON ({e.msg})") from None
        meta[m.group(1)] = value
        text = text[end:].strip()
    tags = meta.get("tags", [])
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise ValueError(f"{where}cell marker '# %%{rest}': tags must be a list of strings")
    return kind, meta


def solution_regions(kind: str, source: str) -> list:
    """(begin, end) line indices of the solution regions in a cell's source; raises ValueError
    for a region that does not close, or closes before it opens."""
    begin, end = MARKERS[kind] if kind in MARKERS else MARKERS["code"]
    regions, start = [], None
    for i, line in enumerate(source.split("\n")):
        if line.strip() == begin:
            if start is not None:
                raise ValueError(f"{begin!r} on line {i + 1} inside an open region")
            start = i
        elif line.strip() == end:
            if start is None:
                raise ValueError(f"{end!r} on line {i + 1} without {begin!r}")
            regions.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"{begin!r} on line {start + 1} is never closed by {end!r}")
    return regions


def parse(text: str, name: str = ""):
    """Split a percent-format source into cells (markdown or code, with the marker line's
    metadata).

    ``{badges}`` in a markdown cell becomes the Colab/Binder badges of this notebook, and a code
    cell that is just ``# SETUP`` becomes the standard set-up cell.
    """
    marks = list(CELL.finditer(text))
    cells = []
    for i, m in enumerate(marks):
        line = text.count("\n", 0, m.start()) + 1
        where = f"{name + ':' if name else ''}{line}: "
        kind, meta = header(m.group(1), where)
        body = text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        body = body.strip("\n")
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.split("\n")]
            md = "\n".join(lines).replace("{badges}", BADGES.format(repo=REPO, name=name))
            cell = nbformat.v4.new_markdown_cell(md)
        elif body.strip() == "# SETUP":
            cell = nbformat.v4.new_code_cell(SETUP.format(repo=REPO))
        else:
            cell = nbformat.v4.new_code_cell(body)
        try:
            regions = solution_regions(kind, cell.source)
        except ValueError as e:
            raise ValueError(f"{where}{e}") from None
        if bool(regions) != ("solution" in meta.get("tags", [])):
            raise ValueError(f"{where}a cell has solution regions if and only if it is tagged "
                             "\"solution\" (# %% tags=[\"solution\"])")
        cell.metadata.update(meta)
        cells.append(cell)
    return cells


def build(src: Path, execute: bool = True, timeout: int = 600) -> float:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(src.read_text(), src.stem)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = OUT / (src.stem + ".ipynb")
    seconds = 0.0
    if execute:
        from nbclient import NotebookClient
        t0 = time.time()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(OUT)}}).execute()
        seconds = time.time() - t0
        for c in nb.cells:  # keep stored notebooks small and stable
            c.metadata.pop("execution", None)
        slim(nb)
        add_static(nb)
    add_slides(nb)
    nbformat.write(nb, out)
    return seconds


def add_slides(nb) -> None:
    """Presenter's mode (JupyterLab with RISE, `jupyterlab-rise`): each ``#``/``##`` heading
    starts a slide, each ``###`` heading a sub-slide (below it), and the claim and check cells
    are skipped (they assert what the slides say; run the notebook to see them pass)."""
    for cell in nb.cells:
        kind = None
        if cell.cell_type == "markdown":
            first = cell.source.lstrip().split("\n", 1)[0]
            kind = ("slide" if re.match(r"#{1,2} ", first) else
                    "subslide" if first.startswith("### ") else None)
        elif set(cell.metadata.get("tags", [])) & {"claim", "check"}:
            kind = "skip"
        if kind:
            cell.metadata["slideshow"] = {"slide_type": kind}
        else:
            cell.metadata.pop("slideshow", None)


def add_static(nb) -> dict:
    """Static images of the figures and widgets (`widgets.export.add_static_images`), so the
    stored notebook reads on GitHub, nbviewer and Colab before it runs; not counted in the
    chapter's run time (it is made here, at build time)."""
    sys.path.insert(0, str(ROOT))
    from widgets.export import add_static_images, renderer
    with renderer():
        return add_static_images(nb)


def slim(nb) -> None:
    """Drop the JavaScript bundle each saved anywidget carries (``_esm``: plotly.js, ~5 MB per
    FigureWidget) from the stored widget state.  A live kernel sends it again when the cell runs;
    model ids and every other field stay, so stored outputs and widget counts are unchanged."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    for model in state.get("state", {}).values():
        if len(model.get("state", {}).get("_esm", "")) > 10_000:
            model["state"]["_esm"] = ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("only", nargs="*", help="name prefixes to build")
    ap.add_argument("--no-execute", action="store_true")
    ap.add_argument("--slim", action="store_true", help="only slim the stored notebooks' widget state")
    ap.add_argument("--static", action="store_true",
                    help="only (re)make the stored notebooks' static images and slide metadata, "
                         "without running them")
    args = ap.parse_args()
    if args.slim or args.static:
        for path in sorted(OUT.glob("[0-9][0-9]_*.ipynb")):
            if args.only and not any(path.stem.startswith(o) for o in args.only):
                continue
            nb = nbformat.read(path, as_version=4)
            slim(nb)
            if args.static:
                add_slides(nb)
                print(f"{path.stem}: {add_static(nb)}", flush=True)
            nbformat.write(nb, path)
        return
    srcs = sorted(p for p in SRC.glob("*.py")
                  if not args.only or any(p.stem.startswith(o) for o in args.only))
    for src in srcs:
        s = build(src, not args.no_execute)
        print(f"{src.stem}: {s:.1f} s", flush=True)
        if s > 90:
            print(f"  WARNING: {src.stem} took more than 90 s", file=sys.stderr)


if __name__ == "__main__":
    main()
