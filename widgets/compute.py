"""Compute-matched comparisons (survey §6.3-6.4): accuracy against tokens spent, per method.

* `pareto_front(rows, x)` keeps the settings no other setting beats on both accuracy and cost;
* `pareto_figure(rows, x)` draws every method's settings as a line (cost on a log axis) and the
  Pareto front across all methods; rows come from ``scripts/sweep_compute.py``
  (``data/results/compute_sweep.json``: method, setting, accuracy, mean tokens per problem).
"""
from __future__ import annotations

import plotly.graph_objects as go

from .style import MUTED, PALETTE, error_bars, figure, wrap

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
    """Accuracy vs cost: one line per method through its settings, the Pareto front dashed.
    Rows with ``low`` and ``high`` (an interval of the accuracy, e.g. Wilson) get error bars."""
    fig = figure(title or "Accuracy vs compute on the same problems", height=height)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for k, m in enumerate(methods):
        pts = sorted((r for r in rows if r["method"] == m), key=lambda r: r[x])
        bars = None
        if all("low" in r and "high" in r for r in pts):
            bars = dict(error_bars([r["accuracy"] for r in pts], [r["low"] for r in pts],
                                   [r["high"] for r in pts]), thickness=1, width=3)
        fig.add_trace(go.Scatter(
            x=[r[x] for r in pts], y=[r["accuracy"] for r in pts], mode="lines+markers",
            name=m, line=dict(color=PALETTE[k % len(PALETTE)]), error_y=bars,
            text=[r.get("setting", "") for r in pts],
            hovertemplate=f"{m} %{{text}}<br>accuracy %{{y:.3f}}<br>%{{x:.0f}}<extra></extra>"))
    front = pareto_front(rows, x)
    fig.add_trace(go.Scatter(x=[r[x] for r in front], y=[r["accuracy"] for r in front],
                             mode="lines", name="Pareto front",
                             line=dict(color=MUTED, dash="dash", width=3), hoverinfo="skip"))
    fig.update_layout(xaxis=dict(type="log", title=LABELS.get(x, x)),
                      yaxis=dict(title="accuracy"))
    return fig


TOKEN_FIELDS = ("input_tokens", "output_tokens", "external_tokens")
TOKEN_NAMES = {"input_tokens": "input", "output_tokens": "output", "external_tokens": "external"}


def best_at_budget(rows, budget: float, x: str = "total_tokens", y: str = "accuracy"):
    """The most accurate row whose cost ``x`` is at most ``budget`` (None if none fits; ties go
    to the cheaper row)."""
    fits = [r for r in rows if r[x] <= budget]
    return max(fits, key=lambda r: (r[y], -r[x])) if fits else None


def cost_figure(rows, title: str | None = None, height: int = 380) -> go.Figure:
    """Table 5's three columns as stacked bars per method (``rows``: dicts with ``name`` and
    the token fields); with an ``accuracy`` in every row, accuracy gets a panel of its own,
    with error bars where every row also has its interval's ``low`` and ``high``."""
    from plotly.subplots import make_subplots
    names = [r["name"] for r in rows]
    acc = all("accuracy" in r for r in rows)
    fig = make_subplots(rows=1, cols=2 if acc else 1, column_widths=[0.35, 0.65] if acc else None,
                        subplot_titles=("accuracy", "tokens per problem") if acc else None)
    col = 2 if acc else 1
    if acc:
        bars = all("low" in r and "high" in r for r in rows)
        err = dict(type="data", symmetric=False,
                   array=[r["high"] - r["accuracy"] for r in rows],
                   arrayminus=[r["accuracy"] - r["low"] for r in rows]) if bars else None
        fig.add_bar(x=names, y=[r["accuracy"] for r in rows], marker_color=PALETTE[2],
                    error_y=err, showlegend=False, row=1, col=1)
        fig.update_yaxes(range=[0, 1], row=1, col=1)
    for k, f in enumerate(TOKEN_FIELDS):
        fig.add_bar(x=names, y=[r.get(f, 0) for r in rows], name=TOKEN_NAMES[f],
                    marker_color=PALETTE[k], row=1, col=col)
    fig.update_layout(template="plotly+workbench", barmode="stack", height=height,
                      title=wrap(title), margin=dict(b=130))
    return fig


TABLE5_SHOWN = ("ancestral sampling", "best-of-n (log-p)", "best-of-n (llm scorer)",
                "weighted self-consistency", "step-level beam (scorer)",
                "step-level dfs (scorer)", "refinement", "refinement (self-feedback)")


def table5_rows(t_in, t, n, n_b, n_e, s, n_r, c_z=0, methods=TABLE5_SHOWN) -> list:
    """Table 5's predicted budget of each method, with a scorer that reads the prompt and the
    output (C_s = T_in + T) and T_s = T / S."""
    from workbench.budget import table5
    rows = []
    for m in methods:
        c = table5(m, t_in, t, n=n, n_b=n_b, n_e=n_e, s=s, n_r=n_r, c_s=t_in + t, c_z=c_z)
        rows.append({"name": m, **{f: getattr(c, f) for f in TOKEN_FIELDS}})
    return rows


class Table5Explorer:
    """Sliders for Table 5's cost parameters; stacked bars of each method's predicted tokens."""

    def __init__(self, t_in=20, t=60):
        import ipywidgets as W
        self.sliders = {
            "t_in": W.IntSlider(value=t_in, min=1, max=200, description="T_in"),
            "t": W.IntSlider(value=t, min=1, max=400, description="T"),
            "n": W.IntSlider(value=16, min=1, max=128, description="N"),
            "n_b": W.IntSlider(value=4, min=1, max=16, description="N_b"),
            "n_e": W.IntSlider(value=4, min=1, max=16, description="N_e"),
            "s": W.IntSlider(value=5, min=1, max=20, description="S"),
            "n_r": W.IntSlider(value=3, min=0, max=10, description="N_r"),
            "c_z": W.IntSlider(value=10, min=0, max=200, description="C_z")}
        self.fig = go.FigureWidget(self.figure())
        for w in self.sliders.values():
            w.observe(lambda _: self.update(), names="value")
        s = list(self.sliders.values())
        self.view = W.VBox([W.HBox(s[:4]), W.HBox(s[4:]), self.fig])

    def values(self) -> dict:
        return {k: w.value for k, w in self.sliders.items()}

    def figure(self):
        return cost_figure(table5_rows(**self.values()), "Table 5: predicted tokens per query",
                           height=420)

    def update(self):
        new = self.figure()
        with self.fig.batch_update():
            for old, tr in zip(self.fig.data, new.data):
                old.y = tr.y

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)
