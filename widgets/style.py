"""One look for every figure: readable in light and dark JupyterLab themes, Colab and HTML.

Figures are white cards with near-black text: they read the same in JupyterLab's light and dark
themes, in Colab, in exported pages and on a projector (a transparent background needs a mid-grey
text that washes out on both).  Legends sit under the plot, across its width, so they never
cover a title, whatever the width of the notebook; `wrap` breaks a long title into lines.
Colours are the Okabe-Ito palette (distinguishable with colour-vision deficiencies).
"""
from __future__ import annotations

import sys

import plotly.graph_objects as go
import plotly.io as pio

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#999999"]
GOOD, BAD, NEUTRAL, MUTED = "#009E73", "#D55E00", "#0072B2", "rgba(150,150,150,0.45)"
FONT = "#222222"
PAPER = "white"
GRID = "rgba(0,0,0,0.12)"
# under the plot across its width (the margin grows to hold it): never over a title
LEGEND_BELOW = dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0,
                    xanchor="left", bgcolor="rgba(0,0,0,0)")

pio.templates["workbench"] = go.layout.Template(layout=go.Layout(
    paper_bgcolor=PAPER, plot_bgcolor=PAPER,
    font=dict(color=FONT, size=13), colorway=PALETTE,
    title=dict(automargin=True, yref="paper", y=1, yanchor="bottom", pad=dict(b=28),
               xref="container", x=0.01, xanchor="left"),
    xaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID),
    yaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID),
    legend=LEGEND_BELOW, margin=dict(l=50, r=20, t=50, b=45),
    hoverlabel=dict(font_size=12)))
pio.templates.default = "plotly+workbench"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup_renderer() -> str:
    """Pick the plotly renderer for where we run (Colab needs its own)."""
    pio.renderers.default = "colab" if in_colab() else "plotly_mimetype"
    return pio.renderers.default


setup_renderer()


def figure(title: str | None = None, height: int = 360, **layout) -> go.Figure:
    """An empty figure in the workbench style."""
    fig = go.Figure()
    fig.update_layout(title=wrap(title) if title else None, height=height, **layout)
    return fig


def wrap(text: str | None, width: int = 64) -> str | None:
    """A title broken into lines of at most ``width`` characters (plotly's ``<br>``), so it
    fits a narrow notebook; a ``<sub>...</sub>`` line is broken at 1.4 ``width`` (its font is
    smaller), lines already broken are kept, and so is a line with other markup (no title:
    None)."""
    if not text:
        return text
    import re
    import textwrap
    lines = []
    for line in text.split("<br>"):
        sub = re.fullmatch(r"<sub>([^<]*)</sub>", line)
        if sub:
            lines += [f"<sub>{s}</sub>" for s in textwrap.wrap(sub[1], int(1.4 * width))]
        else:
            lines += [line] if "<" in line else textwrap.wrap(line, width) or [""]
    return "<br>".join(lines)


def subplot_titles(titles, width: int = 34) -> tuple:
    """Subplot titles wrapped for a narrow notebook (``width`` characters a line), and the
    figure title's ``title_pad_b`` that keeps the title above them."""
    wrapped = [wrap(t, width) for t in titles]
    return wrapped, 12 + 16 * max(t.count("<br>") + 1 for t in wrapped)


def error_bars(values, lows, highs) -> dict:
    """Plotly ``error_y`` for asymmetric intervals [low, high] around ``values``."""
    return dict(type="data", symmetric=False,
                array=[h - v for v, h in zip(values, highs)],
                arrayminus=[v - lo for v, lo in zip(values, lows)])
