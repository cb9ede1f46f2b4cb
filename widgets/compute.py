"""Compute-matched comparisons (survey §6.3-6.4): accuracy against tokens spent, per method.

* `pareto_front(rows, x)` keeps the settings no other setting beats on both accuracy and cost;
* `pareto_figure(rows, x)` draws every method's settings as a line (cost on a log axis) and the
  Pareto front across all methods; rows come from ``scripts/sweep_compute.py``
  (``data/results/compute_sweep.json``: method, setting, accuracy, mean tokens per problem).
"""
from __future__ import annotations

import plotly.graph_objects as go

from .style import MUTED, PALETTE, figure

LABELS = {"output_tokens": "generated tokens per problem",
          "total_tokens": "input + output + external tokens per problem",
          "computed_tokens": "token positions computed per problem (KV reuse counted)",
          "target_flops": "forward FLOPs per problem (2 x parameters x computed tokens)"}


def pareto_front(rows, x: str = "output_tokens", y: str = "accuracy") -> list:
    """Rows not dominated by another row (no other is at least as accurate and at most as
    costly, and strictly better in one), sorted by cost."""
    front = [r for r in rows if not any(
        o[y] >= r[y] and o[x] <= r[x] and (o[y] > r[y] or o[x] < r[x]) for o in rows)]
    return sorted(front, key=lambda r: r[x])


def pareto_figure(rows, x: str = "output_tokens", title: str | None = None,
                  height: int = 420) -> go.Figure:
    """Accuracy vs cost: one line per method through its settings, the Pareto front dashed."""
    fig = figure(title or "Accuracy vs compute on the same problems", height=height)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for k, m in enumerate(methods):
        pts = sorted((r for r in rows if r["method"] == m), key=lambda r: r[x])
        fig.add_trace(go.Scatter(
            x=[r[x] for r in pts], y=[r["accuracy"] for r in pts], mode="lines+markers",
            name=m, line=dict(color=PALETTE[k % len(PALETTE)]),
            text=[r.get("setting", "") for r in pts],
            hovertemplate=f"{m} %{{text}}<br>accuracy %{{y:.3f}}<br>%{{x:.0f}}<extra></extra>"))
    front = pareto_front(rows, x)
    fig.add_trace(go.Scatter(x=[r[x] for r in front], y=[r["accuracy"] for r in front],
                             mode="lines", name="Pareto front",
                             line=dict(color=MUTED, dash="dash", width=3), hoverinfo="skip"))
    fig.update_layout(xaxis=dict(type="log", title=LABELS.get(x, x)),
                      yaxis=dict(title="accuracy"), legend=dict(orientation="h", y=-0.2))
    return fig
