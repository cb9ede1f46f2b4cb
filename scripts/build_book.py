"""Build the chapters as a static book site: navigation, a table of contents by survey
section, equations, search, interactive plotly figures and the widgets' static images, with
nothing loaded from the network when it is viewed.

    python scripts/build_book.py                 # build/book/index.html
    python scripts/build_book.py --out DIR

It uses the Executable Books stack that Jupyter Book is made of: Sphinx with MyST-NB (reads the
stored notebooks; nothing is executed), the sphinx-book-theme, and MathJax served from the site
itself (sphinx-mathjax-offline).  Before Sphinx reads them, each stored plotly figure gets an
HTML view (a ``Plotly.newPlot`` call; plotly.js is copied into the site once) and each widget
becomes its static image (made by ``scripts/build_notebooks.py``) and a note, since a widget
needs a live kernel.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from widgets.export import (PLOTLY, WIDGET, plotly_view, widget_still,  # noqa: E402
                            without_web_images)

OUT = ROOT / "build" / "book"
NOTE = ('<div class="wb-widget-note" style="padding:6px 10px;border-left:3px solid #999;'
        'color:#777;font-style:italic">Interactive widget, shown in its initial state: run this '
        'chapter in JupyterLab to use it.</div>')

# The table of contents, by section of the survey (Welleck et al., 2024).
PARTS = [("Getting started", ["00", "01"]),
         ("§3 Token-level generation algorithms", ["02", "03", "04", "05"]),
         ("§4 Meta-generation algorithms", ["06", "07", "08", "09"]),
         ("§5 Incorporating external information", ["10"]),
         ("§6 Token cost and performance", ["11"]),
         ("§7 Speeding up generation", ["12", "13", "14"])]

CONF = '''# Sphinx configuration written by scripts/build_book.py (do not edit here).
project = "Meta-Generation Workbench"
author = "Meta-Generation Workbench"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
html_theme = "sphinx_book_theme"
html_title = "Meta-Generation Workbench"
html_static_path = ["_static"]
html_js_files = ["plotly.min.js"]
html_theme_options = {"show_toc_level": 2, "use_download_button": False,
                      "home_page_in_toc": True}
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "myst.xref_missing", "mystnb.unknown_mime_type",
                     "misc.highlighting_failure", "myst.strikethrough"]
exclude_patterns = ["_build"]
'''


def chapters() -> list:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def prepare(nb):
    """The notebook as the book shows it: plotly figures as HTML views, widgets as their static
    image and a note, no saved widget state (its manager would come from a CDN), no images
    from the web."""
    nb.metadata.pop("widgets", None)
    k = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = without_web_images(cell.source)
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY in data:
                k += 1
                fig = data.pop(PLOTLY)
                height = f"{fig.get('layout', {}).get('height', 450)}px"
                data["text/html"] = plotly_view(fig, f"wb-plot-{k}", height)
                data.pop("image/png", None)
            elif WIDGET in data:
                out["data"] = {"text/html": widget_still(data) + NOTE}
    return nb


def index_page(names: dict) -> str:
    """The landing page: what the book is, and the chapters by survey section."""
    lines = ["# Meta-Generation Workbench", "",
             "Chapters on the inference-time algorithms of large language models, one per "
             "section of the survey *From Decoding to Meta-Generation* (Welleck et al., TMLR "
             "2024). Every figure here is the one the chapter drew when it was built; the "
             "widgets appear in their initial state. Run a chapter in JupyterLab, Colab or "
             "Binder to use them.", ""]
    for caption, prefixes in PARTS:
        lines += ["```{toctree}", f":caption: {caption}", ":maxdepth: 1", ""]
        lines += [f"chapters/{names[p]}" for p in prefixes if p in names]
        lines += ["```", ""]
    return "\n".join(lines)


def build(out: Path = OUT) -> Path:
    src = out.parent / (out.name + "-src")
    shutil.rmtree(src, ignore_errors=True)
    (src / "chapters").mkdir(parents=True)
    (src / "_static").mkdir()
    names = {}
    for path in chapters():
        nb = prepare(nbformat.read(path, as_version=4))
        nbformat.write(nb, src / "chapters" / path.name)
        names[path.stem[:2]] = path.stem
    listed = {p for _, ps in PARTS for p in ps}
    if set(names) - listed:
        raise SystemExit(f"chapters {sorted(set(names) - listed)} are in no part of PARTS")
    (src / "index.md").write_text(index_page(names), encoding="utf-8")
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    import plotly
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                src / "_static" / "plotly.min.js")
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q",
                    str(src), str(out)], check=True)
    return out / "index.html"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    print(build(args.out))


if __name__ == "__main__":
    main()
