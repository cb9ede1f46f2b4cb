"""Views of chained meta-generators (survey §4.1): accuracy vs cost per chain, and the stages
of one chain read from its trace."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.trace import as_events

from .style import NEUTRAL, PALETTE, error_bars, figure


def chains_figure(results: dict, intervals: dict | None = None, title: str = "") -> go.Figure:
    """``{name: (accuracy, tokens per problem)}`` as two bar charts side by side; ``intervals``
    (``{name: (low, high)}``, e.g. Wilson intervals) draws error bars on the accuracies."""
    names = list(results)
    acc = [results[k][0] for k in names]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "tokens billed per problem"))
    error = None
    if intervals:
        missing = [k for k in names if k not in intervals]
        if missing:
            raise ValueError(f"intervals has no interval for {missing}")
        error = error_bars(acc, [intervals[k][0] for k in names], [intervals[k][1] for k in names])
    fig.add_bar(x=names, y=acc, marker_color=PALETTE[0], error_y=error,
                showlegend=False, row=1, col=1)
    fig.add_bar(x=names, y=[results[k][1] for k in names], marker_color=PALETTE[1],
                showlegend=False, row=1, col=2)
    fig.update_layout(template="plotly+workbench", height=400, margin=dict(b=120, t=80),
                      title=title or None)
    fig.update_yaxes(range=[0, 1], row=1, col=1)
    return fig


def stages_figure(events: list) -> go.Figure:
    """One box per ``stage`` event: the prompt it saw (hover) and what it produced."""
    stages = [e for e in as_events(events) if e["kind"] == "stage"]
    fig = figure(f"A chain of {len(stages)} generator calls", height=120 + 40 * len(stages),
                 xaxis=dict(visible=False, range=[0, 1]),
                 yaxis=dict(visible=False, range=[-len(stages), 1]))
    for i, e in enumerate(stages):
        label = e.get("question") or e.get("prompt", "")
        out = (e.get("output") or "").strip().replace("\n", " | ")
        fig.add_annotation(x=0.02, y=-i, xanchor="left", showarrow=False, align="left",
                           text=f"<b>{i + 1}.</b> {label.strip()[-40:]!s} &rarr; {out[:70]}",
                           bordercolor=NEUTRAL, borderwidth=1, borderpad=4,
                           hovertext=e.get("prompt", ""))
    return fig
