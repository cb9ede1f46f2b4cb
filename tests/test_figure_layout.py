"""Every stored figure reads at a narrow JupyterLab width (issue 22, polish): each chapter's plotly
figures, and the figures its widgets show in their saved state, are drawn by plotly.js in headless
Chromium at 700 px (a notebook beside JupyterLab's file browser on a small laptop, or a projector)
and no text may leave the figure or cover other text: titles, legends, annotations, axis titles,
tick labels and data labels.  Two things are allowed, both by name: tick labels of different axes
touching at a corner by less than 10 px, and table cells (a plotly table scrolls)."""
import itertools
from pathlib import Path

import nbformat
import plotly
import pytest
from browser_util import browser_context, require_browser

from widgets import export

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
WIDTH = 700

# each drawn text: its role and its box, after plotly.js laid the figure out at the div's width
TEXTS_JS = r"""(fig) => {
  const d = document.getElementById('g'); Plotly.purge(d);
  const layout = Object.assign({}, fig.layout, {autosize: true}); delete layout.width;
  return Plotly.newPlot(d, fig.data, layout, {responsive: false}).then(() => {
    const svg = d.querySelector('.main-svg').getBoundingClientRect();
    const role = t => t.closest('.legend') ? 'legend' : t.closest('.g-gtitle') ? 'title'
      : t.closest('.annotation') ? 'annotation' : t.closest('.cell-text-holder') ? 'table'
      : /^[xy]\d*title$/.test(t.getAttribute('class') || '') ? 'axis title'
      : t.closest('g[class$="tick"]') ? t.closest('g[class$="tick"]').getAttribute('class')[0] +
        ' tick' : 'data label';
    const texts = Array.from(d.querySelectorAll('text'))
      .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
      .map(t => { const r = t.getBoundingClientRect();
        return {role: role(t), text: t.textContent.slice(0, 40),
                box: [r.left - svg.left, r.top - svg.top, r.right - svg.left, r.bottom - svg.top]};
      });
    return {width: svg.width, height: svg.height, texts};
  });
}"""


def figures(path: Path):
    """(where, figure dict) for every plotly output and every figure a widget shows."""
    nb = nbformat.read(path, as_version=4)
    state = (nb.metadata.get("widgets", {})
             .get("application/vnd.jupyter.widget-state+json", {}).get("state", {}))
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if export.PLOTLY in data:
                yield f"cell {i}", data[export.PLOTLY]
            if export.WIDGET in data:
                parts = export.widget_parts(state, data[export.WIDGET]["model_id"])
                for k, (kind, fig) in enumerate(parts):
                    if kind == "figure":
                        yield f"cell {i} (widget figure {k})", fig


def problems(drawn: dict) -> list:
    """Texts outside the figure, and pairs of texts that cover each other."""
    out, texts = [], [t for t in drawn["texts"] if t["role"] != "table"]
    for t in texts:
        x0, y0, x1, y1 = t["box"]
        if x0 < -1 or y0 < -1 or x1 > drawn["width"] + 1 or y1 > drawn["height"] + 1:
            out.append(f"{t['role']} {t['text']!r} leaves the figure")
    for a, b in itertools.combinations(texts, 2):
        w = min(a["box"][2], b["box"][2]) - max(a["box"][0], b["box"][0])
        h = min(a["box"][3], b["box"][3]) - max(a["box"][1], b["box"][1])
        ticks = a["role"].endswith("tick") and b["role"].endswith("tick")
        if w <= 2 or h <= 2 or (ticks and (a["role"] == b["role"] or max(w, h) < 10)):
            continue
        out.append(f"{a['role']} {a['text']!r} covers {b['role']} {b['text']!r} "
                   f"({w:.0f} x {h:.0f} px)")
    return out


@pytest.fixture(scope="module")
def page():
    require_browser()
    with browser_context(width=WIDTH + 40) as ctx:
        p = ctx.new_page()
        p.set_content(f"<div id='g' style='width:{WIDTH}px'></div>")
        p.add_script_tag(path=str(PLOTLY_JS))
        yield p


@pytest.mark.tier
def test_the_check_sees_a_legend_over_a_title_and_a_title_cut_off(page):
    bad = {"data": [{"type": "bar", "x": [1, 2], "y": [1, 2], "name": f"series {i}"}
                    for i in range(6)],
           "layout": {"title": {"text": "A title long enough to run past the right edge of a "
                                        "seven-hundred pixel wide notebook output area",
                                "xref": "paper", "x": 0, "yref": "paper", "y": 1,
                                "yanchor": "bottom"},
                      "legend": {"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"}}}
    found = problems(page.evaluate(TEXTS_JS, bad))
    assert any("title" in f and "leaves the figure" in f for f in found), found
    assert any("legend" in f and "covers title" in f or "title" in f and "covers legend" in f
               for f in found), found


@pytest.mark.tier
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem[:2])
def test_no_text_overlaps_or_leaves_a_figure_at_700_px(page, path):
    found = [f"{where}: {p}" for where, fig in figures(path)
             for p in problems(page.evaluate(TEXTS_JS, fig))]
    assert not found, f"{path.name} at {WIDTH} px:\n" + "\n".join(found)
