"""Export the chapters to static HTML pages with interactive plots, loading nothing from a CDN.

    python scripts/export_html.py                      # notebooks/NN_*.ipynb -> build/html/
    python scripts/export_html.py nb.ipynb --out DIR   # given notebooks, elsewhere
    python scripts/export_html.py --theme dark

The stored notebooks hold plotly figures as JSON (``application/vnd.plotly.v1+json``, from the
renderer "plotly_mimetype").  Before nbconvert's "lab" template runs, each figure gets an HTML
representation (a ``Plotly.newPlot`` call), and plotly.js is inlined once in the page head.
Widget outputs need a live kernel: they become their static image (the initial state, made at
build time) and a short note.  Images from the web (the
Colab/Binder badges) become their alt text, so the page loads nothing from outside.  Equations in markdown become
MathML (the browser draws it; no MathJax).  The template drops the require.js, MathJax,
mermaid and widget-manager scripts that nbconvert would load from CDNs.
"""
from __future__ import annotations

import argparse
import copy
import html
import re
import sys
from pathlib import Path

import jinja2
import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from widgets.export import (PLOTLY, WIDGET, plotly_view, widget_still,  # noqa: E402
                            without_web_images)

OUT = ROOT / "build" / "html"
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
WIDGET_NOTE = ('<div class="wb-widget-note" style="padding:6px 10px;border-left:3px solid '
               '#999;color:#888;font-style:italic">Interactive widget: run this notebook in '
               'JupyterLab to use it.</div>')
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)")


def chapters() -> list:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def count_plots(nb) -> int:
    """Plotly figures among the stored outputs (each becomes one plot in the page)."""
    return sum(PLOTLY in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def _mathml(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert
    tex = tex.strip().replace(r"\arg\max", r"\operatorname{arg\,max}")
    try:
        return convert(tex, display="block" if display else "inline")
    except Exception:  # a construct latex2mathml does not know: show the source
        return f"<code>{html.escape(tex)}</code>"


def prepare(nb):
    """A copy of ``nb`` ready for the template, and the MathML its placeholders stand for."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)  # no widget manager (it would come from a CDN)
    maths, k = [], 0

    def hold(m, display):
        maths.append(_mathml(m.group(1), display))
        return f"WBMATH{len(maths) - 1:05d}X"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            src = DISPLAY_MATH.sub(lambda m: hold(m, True), cell.source)
            src = INLINE_MATH.sub(lambda m: hold(m, False), src)
            cell.source = without_web_images(src)
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY in data:
                k += 1
                data["text/html"] = plotly_view(data[PLOTLY], f"wb-plot-{k}")
            elif WIDGET in data:   # its static image (initial state) when the build made one
                out["data"] = {"text/html": widget_still(data) + WIDGET_NOTE}
    return nb, maths


def render(nb, name: str, theme: str = "light") -> str:
    """The page for one notebook: nbconvert's lab template, plotly.js inlined once."""
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs
    nb, maths = prepare(nb)
    exporter = HTMLExporter(template_name="lab", theme=theme,
                            extra_loaders=[jinja2.DictLoader({"wb.html.j2": TEMPLATE})],
                            template_file="wb.html.j2")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    body = re.sub(r"WBMATH(\d{5})X", lambda m: maths[int(m.group(1))], body)
    head = ('<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: "local"};'
            f'</script>\n<script type="text/javascript">{get_plotlyjs()}</script>\n</head>')
    return body.replace("</head>", head, 1)


def export(path, out_dir=OUT, theme: str = "light") -> Path:
    path = Path(path)
    out = Path(out_dir) / (path.stem + ".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(nbformat.read(path, as_version=4), path.stem, theme), encoding="utf-8")
    return out


def write_index(pages, out_dir=OUT) -> Path:
    items = "\n".join(f'<li><a href="{p.name}">{html.escape(p.stem)}</a></li>' for p in pages)
    index = Path(out_dir) / "index.html"
    index.write_text(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Meta-Generation "
                     f"Workbench</title></head><body><h1>Chapters</h1><ul>\n{items}\n</ul>"
                     f"</body></html>\n", encoding="utf-8")
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--theme", choices=["light", "dark"], default="light")
    args = ap.parse_args(argv)
    paths = args.notebooks or chapters()
    if not paths:
        sys.exit("no notebooks to export (notebooks/NN_*.ipynb not built yet)")
    pages = []
    for p in paths:
        pages.append(export(p, args.out, args.theme))
        print(f"{pages[-1]}  ({count_plots(nbformat.read(p, as_version=4))} plots)")
    print(write_index(pages, args.out))


if __name__ == "__main__":
    main()
