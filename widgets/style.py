"""One look for every figure: readable in light and dark JupyterLab themes, Colab and HTML.

Backgrounds are transparent and text is a mid grey, so a figure reads on white and on black.
Colours are the Okabe-Ito palette (distinguishable with colour-vision deficiencies).
"""
from __future__ import annotations

import sys

import plotly.graph_objects as go
import plotly.io as pio

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#999999"]
GOOD, BAD, NEUTRAL, MUTED = "#009E73", "#D55E00", "#0072B2", "rgba(150,150,150,0.45)"
FONT = "#8a8a8a"
GRID = "rgba(128,128,128,0.25)"

pio.templates["workbench"] = go.layout.Template(layout=go.Layout(
    paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
    font=dict(color=FONT, size=13), colorway=PALETTE,
    xaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID),
    yaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID),
    legend=dict(bgcolor="rgba(0,0,0,0)"), margin=dict(l=50, r=20, t=50, b=45),
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
    fig.update_layout(title=title, height=height, **layout)
    return fig


def error_bars(values, lows, highs) -> dict:
    """Plotly ``error_y`` for asymmetric intervals [low, high] around ``values``."""
    return dict(type="data", symmetric=False,
                array=[h - v for v, h in zip(values, highs)],
                arrayminus=[v - lo for v, lo in zip(values, lows)])
