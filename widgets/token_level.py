"""Figures for the token-level chapters 01-03 (survey §2, §3.1-3.3) and the coin explorer.

Every figure is a pure function of plain data (numbers computed by `workbench`):
`logprob_scatter_figure` (log p_theta against the exact log p*), `goals_figure` (one family of
generators scored on the three goals of §2.2), `coin_figure` / `CoinExplorer` (the most
probable sequence of coin flips is atypical), `logprob_histogram_figure` (where the outputs of
MAP decoding fall among samples), `beam_width_figure` (outputs as the beam widens), `repetition_figure` (the repetition trap),
`temperature_figure` (tau -> 0 is greedy, tau -> inf is uniform) and `tradeoff_figure`
(diversity against coherence for the adapters of Table 2).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure, subplot_titles, wrap



def _finite(values):
    return [float(v) if v is not None and math.isfinite(v) else None for v in values]


# -- chapter 01 ---------------------------------------------------------------------------
def logprob_scatter_figure(lp_star, lp_theta, texts=None,
                           title="Stories drawn from p*: the model's log-probability against "
                                 "the truth") -> go.Figure:
    """One point per output: x = log p*(y) (exact), y = log p_theta(y); the diagonal is a
    perfect model."""
    lp_star, lp_theta = np.asarray(lp_star, float), np.asarray(lp_theta, float)
    lo = float(min(lp_star.min(), lp_theta.min())) - 1
    hi = float(max(lp_star.max(), lp_theta.max())) + 1
    fig = figure(title, height=420, xaxis_title="log p*(y)  (the true distribution)",
                 yaxis_title="log p_θ(y | x)  (the model)")
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="p_θ = p*",
                    line=dict(color=MUTED, dash="dash"), hoverinfo="skip")
    fig.add_scatter(x=lp_star, y=lp_theta, mode="markers", name="a story y ~ p*",
                    marker=dict(color=NEUTRAL, size=6, opacity=0.7),
                    text=list(texts) if texts is not None else None,
                    hovertemplate="%{text}<br>log p* = %{x:.2f}<br>log p_θ = %{y:.2f}"
                                  "<extra></extra>")
    return fig


GOALS = (("goal 1: maximise  E_g[p*(y)]", "expected_p_star", "higher is better"),
         ("goal 2: sample p_θ  KL(p_θ ‖ g)", "kl_model", "lower is better"),
         ("goal 3: sample q* = p*  KL(p* ‖ g)", "kl_target", "lower is better"))


def goals_figure(rows: list, title="One family of generators, three goals") -> go.Figure:
    """``rows``: one dict per generator with ``tau`` (the temperature; 0 for a deterministic
    generator such as greedy or MAP, drawn as a labelled marker left of the curve), ``label``
    and the three scores of `GOALS`; ``inf`` (a generator that cannot produce the target's
    outputs) is drawn as an arrow at the top of its panel."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08,  # each in two lines: narrow
                        subplot_titles=[g[0].replace("  ", "<br>", 1) for g in GOALS])
    temp = [r for r in rows if r["tau"] > 0]
    fixed = [r for r in rows if r["tau"] == 0]
    left = min(r["tau"] for r in temp) if temp else 1.0
    colors = [BAD, PALETTE[4], PALETTE[3], PALETTE[5]]
    for c, (_, key, better) in enumerate(GOALS, start=1):
        pts = [r for r in temp if r.get(key) is not None]
        ys = [r[key] for r in pts]
        fig.add_scatter(x=[r["tau"] for r in pts], y=_finite(ys), mode="lines+markers",
                        name="temperature sampling", line=dict(color=NEUTRAL),
                        showlegend=c == 1, text=[r["label"] for r in pts], row=1, col=c,
                        hovertemplate="%{text}: %{y:.4g}<extra></extra>")
        finite = [v for v in _finite(ys + [r[key] for r in fixed]) if v is not None]
        top = max(finite) if finite else 1.0
        for i, r in enumerate(fixed):
            v = r[key]
            ok = v is not None and math.isfinite(v)
            fig.add_scatter(x=[left / (2 + i)], y=[v if ok else top], mode="markers",
                            name=r["label"], legendgroup=r["label"], showlegend=c == 1,
                            marker=dict(color=colors[i % len(colors)], size=11,
                                        symbol="diamond" if ok else "triangle-up"),
                            row=1, col=c,
                            hovertemplate=f"{r['label']}: {v:.4g}<extra></extra>")
        if any(not math.isfinite(r[key]) for r in fixed):
            fig.add_annotation(x=math.log10(left / 2), y=top, text="∞", showarrow=False,
                               yshift=16, row=1, col=c)
        fig.update_yaxes(title_text=better, row=1, col=c)
        fig.update_xaxes(title_text="τ", type="log", row=1, col=c)
    fig.update_layout(title=wrap(title), height=400, title_pad_b=44)
    return fig


# -- chapter 02 ---------------------------------------------------------------------------
def coin_figure(stats: dict, eps: float = 0.005) -> go.Figure:
    """Left: log-probability of *one* sequence with k heads (the MAP objective), highest at the
    all-heads mode.  Right: probability of getting k heads at all (what samples look like).
    The shaded band is the typical set: sequences whose log-probability per flip is within
    ``eps`` nats of minus the entropy per flip."""
    k = np.array(stats["k"])
    n = stats["n"]
    lp = np.array(stats["log_p_sequence"])
    pc = np.exp(np.array(stats["log_p_count"]))
    h = stats["entropy"] / n
    inside = np.abs(-lp / n - h) <= eps
    mass = float(pc[inside].sum())
    m = stats["mode_heads"]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "log p of ONE sequence with k heads", "P(k heads): what samples look like"))
    fig.update_annotations(yshift=8)   # the subplot titles clear the top tick labels
    if inside.any():
        lo, hi = int(k[inside].min()), int(k[inside].max())
        for c in (1, 2):
            fig.add_vrect(x0=lo - 0.5, x1=hi + 0.5, fillcolor=GOOD, opacity=0.15, line_width=0,
                          row=1, col=c)
    fig.add_scatter(x=k.tolist(), y=lp.tolist(), mode="lines", line=dict(color=NEUTRAL),
                    name="log p(sequence)", row=1, col=1,
                    hovertemplate="k = %{x}: log p = %{y:.2f}<extra></extra>")
    fig.add_scatter(x=[m], y=[lp[m]], mode="markers+text", text=["the mode"],
                    textposition="bottom left", marker=dict(color=BAD, size=12, symbol="star"),
                    name="most probable sequence", row=1, col=1)
    fig.add_hline(y=-stats["entropy"], line=dict(color=GOOD, dash="dash"), row=1, col=1,
                  annotation_text="−H (typical log p)", annotation_position="bottom right")
    fig.add_bar(x=k.tolist(), y=pc.tolist(), marker_color=PALETTE[1], name="P(k heads)", row=1,
                col=2, hovertemplate="k = %{x}: P = %{y:.3g}<extra></extra>")
    fig.add_scatter(x=[m], y=[pc[m]], mode="markers+text", text=[f"mode: P = {pc[m]:.1e}"],
                    textposition="top left", marker=dict(color=BAD, size=12, symbol="star"),
                    showlegend=False, row=1, col=2)
    fig.update_xaxes(title_text="number of heads k", row=1, col=1)
    fig.update_xaxes(title_text="number of heads k", row=1, col=2)
    fig.update_layout(
        title=wrap(f"{n} flips, P(heads) = {stats['p']:.2f}: the mode has {m} heads, log p = "
               f"{stats['mode_logp']:.2f}; a typical sequence has log p ≈ −H = "
               f"{-stats['entropy']:.2f}<br><sub>typical set (ε = {eps} nats/flip, shaded) holds "
               f"{mass:.3f} of the probability; P(a sample is as probable as the mode) = "
               f"{stats['p_as_likely_as_mode']:.1e}</sub>"),
        height=460, showlegend=False, title_pad_b=44)
    return fig


class CoinExplorer:
    """Sliders for the number of flips, the coin's bias and the typical-set width ε."""

    def __init__(self, n: int = 100, p: float = 0.51, eps: float = 0.005):
        import ipywidgets as W

        from workbench.measures import coin_flips
        self._stats = coin_flips
        self.n = W.IntSlider(value=n, min=5, max=500, step=5, description="flips n")
        self.p = W.FloatSlider(value=p, min=0.5, max=0.95, step=0.01, description="P(heads)")
        self.eps = W.FloatLogSlider(value=eps, base=10, min=-3.5, max=-0.5, step=0.1,
                                    description="ε", readout_format=".4f")
        self.fig = go.FigureWidget(self.figure())
        for w in (self.n, self.p, self.eps):
            w.observe(lambda _: self.redraw(), names="value")
        self.view = W.VBox([W.HBox([self.n, self.p, self.eps]), self.fig])

    def figure(self):
        return coin_figure(self._stats(self.n.value, self.p.value), self.eps.value)

    def redraw(self):
        new = self.figure()
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.add_traces(list(new.data))
            self.fig.layout = new.layout

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)


def logprob_histogram_figure(samples: dict, markers: dict, lines: dict | None = None,
                             title: str = "", xaxis_title: str = "log p(y)") -> go.Figure:
    """Histograms of the log-probabilities of sampled outputs (``samples``: name -> values),
    with vertical markers for single outputs (``markers``: name -> value, e.g. greedy, beam,
    MAP) and dashed reference lines (``lines``: name -> value, e.g. -H)."""
    fig = figure(title, height=400, barmode="overlay", xaxis_title=xaxis_title,
                 yaxis_title="samples",
                 margin=dict(t=80))
    for i, (name, vals) in enumerate(samples.items()):
        v = [x for x in _finite(vals) if x is not None]
        fig.add_histogram(x=v, name=name, opacity=0.6, marker_color=PALETTE[i % len(PALETTE)],
                          nbinsx=40)
    colors = [BAD, PALETTE[4], PALETTE[3], PALETTE[5]]
    for i, (name, v) in enumerate(markers.items()):
        fig.add_vline(x=v, line=dict(color=colors[i % len(colors)], width=2))
        fig.add_scatter(x=[v], y=[0], mode="markers", name=f"{name} ({v:.2f})",
                        marker=dict(color=colors[i % len(colors)], symbol="star", size=13))
    for name, v in (lines or {}).items():
        fig.add_vline(x=v, line=dict(color=GOOD, dash="dash"))
        fig.add_scatter(x=[v], y=[0], mode="markers", name=f"{name} ({v:.2f})",
                        marker=dict(color=GOOD, symbol="line-ns-open", size=14))
    return fig


def beam_width_figure(rows: list, map_rows: dict | None = None,
                      title="As the beam widens, outputs get shorter and more probable"
                      ) -> go.Figure:
    """``rows``: dicts with ``num_beams``, ``length_penalty``, ``length`` (mean tokens),
    ``logp`` (mean log p_theta) and ``logp_star`` (mean log p*); one line per length penalty.
    ``map_rows``: the same means for exact MAP, drawn as dashed lines."""
    panels = (("length", "mean output length (tokens)"), ("logp", "mean log p_θ(y | x)"),
              ("logp_star", "mean log p*(y | x)"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[1] for p in panels],
                        horizontal_spacing=0.08)
    penalties = sorted({r["length_penalty"] for r in rows})
    for i, lp in enumerate(penalties):
        rs = sorted((r for r in rows if r["length_penalty"] == lp), key=lambda r: r["num_beams"])
        for c, (key, _) in enumerate(panels, start=1):
            fig.add_scatter(x=[r["num_beams"] for r in rs], y=[r[key] for r in rs],
                            mode="lines+markers", name=f"beam search, length penalty {lp:g}",
                            line=dict(color=PALETTE[i]), showlegend=c == 1, row=1, col=c,
                            hovertemplate="%{x} beams: %{y:.3f}<extra></extra>")
    if map_rows:
        for c, (key, _) in enumerate(panels, start=1):
            fig.add_hline(y=map_rows[key], line=dict(color=BAD, dash="dash"), row=1, col=c)
        fig.add_scatter(x=[None], y=[None], mode="lines", line=dict(color=BAD, dash="dash"),
                        name="exact MAP (eq. 7)")
    for c in (1, 2, 3):
        fig.update_xaxes(title_text="beams", type="log", dtick=math.log10(2), row=1, col=c)
    fig.update_layout(title=wrap(title), height=380)
    return fig



def repetition_figure(rows: list, title="Asked to go on, greedy decoding and beam search loop"
                      ) -> go.Figure:
    """``rows``: dicts with ``method``, ``rep`` (the mean rep-n of its outputs with an interval,
    a ``(mean, low, high)`` triple such as `workbench.stats.mean_interval` returns) and ``loops``
    (the share of outputs that end in a loop, with ``rate``, ``low`` and ``high`` as
    `workbench.stats.accuracy` returns).  Two bar panels with the intervals as error bars."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=[
        "repeated 4-grams per output (rep-4)", "share of outputs that end in a loop"])
    names = [r["method"] for r in rows]
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(rows))]
    panels = ([tuple(r["rep"]) for r in rows],
              [(r["loops"].rate, r["loops"].low, r["loops"].high) for r in rows])
    for c, values in enumerate(panels, start=1):
        mid = [v[0] for v in values]
        fig.add_bar(x=names, y=mid, marker_color=colors, showlegend=False, row=1, col=c,
                    error_y=dict(type="data", symmetric=False,
                                 array=[v[2] - v[0] for v in values],
                                 arrayminus=[v[0] - v[1] for v in values]),
                    hovertemplate="%{x}: %{y:.3f}<extra></extra>")
        fig.update_yaxes(range=[0, 1.05], row=1, col=c)
    fig.update_layout(title=wrap(title), height=380)
    return fig


# -- chapter 03 ---------------------------------------------------------------------------
def frequency_figure(labels, p, freq, title="Sampled frequencies against p_θ") -> go.Figure:
    """Bars: the model's probability of each token; markers: how often it was drawn."""
    fig = figure(title, height=360, yaxis_title="probability",
                 xaxis=dict(type="category", tickangle=-45))
    fig.add_bar(x=list(labels), y=list(map(float, p)), name="p_θ", marker_color=NEUTRAL,
                hovertemplate="%{x}: p_θ = %{y:.4f}<extra></extra>")
    fig.add_scatter(x=list(labels), y=list(map(float, freq)), mode="markers",
                    name="frequency among the draws",
                    marker=dict(color=BAD, symbol="line-ew-open", size=16, line_width=3),
                    hovertemplate="%{x}: frequency = %{y:.4f}<extra></extra>")
    return fig


def temperature_figure(taus, entropy, p_top, tv_uniform, log_vocab: float,
                       title="Temperature interpolates between greedy and uniform (eq. 14)"
                       ) -> go.Figure:
    """Left: entropy of q_tau (0 = one token; log |V| = uniform).  Right: probability of the
    greedy token and total-variation distance to the uniform distribution."""
    names, pad = subplot_titles(("entropy of q_τ (nats)",
                                 "probability of the greedy token · distance to uniform"))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=names)
    fig.add_scatter(x=taus, y=entropy, mode="lines+markers", name="H(q_τ)",
                    line=dict(color=NEUTRAL), row=1, col=1)
    fig.add_hline(y=log_vocab, line=dict(color=MUTED, dash="dash"), row=1, col=1,
                  annotation_text="log |V|: uniform", annotation_position="bottom right")
    fig.add_scatter(x=taus, y=p_top, mode="lines+markers", name="q_τ(greedy token)",
                    line=dict(color=BAD), row=1, col=2)
    fig.add_scatter(x=taus, y=tv_uniform, mode="lines+markers", name="TV(q_τ, uniform)",
                    line=dict(color=GOOD), row=1, col=2)
    for c in (1, 2):
        fig.add_vline(x=1.0, line=dict(color=MUTED, dash="dot"), row=1, col=c)
        fig.update_xaxes(title_text="temperature τ", type="log", row=1, col=c)
    fig.update_layout(title=wrap(title), height=380, title_pad_b=pad)
    return fig


def tradeoff_figure(points: list, reference: dict | None = None,
                    title="Diversity against coherence, adapter by adapter",
                    right=("logp_star_token", "mean log p* per token of the acceptable ones")
                    ) -> go.Figure:
    """``points``: dicts with ``family`` (adapter name), ``label`` (its setting), ``diversity``,
    ``acceptable`` (share of outputs p* can produce) and the key named in ``right`` (by
    default ``logp_star_token``, the mean log p* per token of the acceptable outputs).
    Left panel: diversity against acceptability; right: against that key.  One line per
    family, in the order given; ``reference`` (samples of p* itself) is a star."""
    key2, title2 = right
    names, pad = subplot_titles(("coherence = share of acceptable stories", title2))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=names)
    families = list(dict.fromkeys(p["family"] for p in points))
    symbols = ["circle", "square", "diamond", "cross", "triangle-up", "x", "pentagon",
               "hexagon"]
    for i, fam in enumerate(families):
        ps = [p for p in points if p["family"] == fam]
        for c, key in ((1, "acceptable"), (2, key2)):
            fig.add_scatter(x=[p[key] for p in ps], y=[p["diversity"] for p in ps],
                            mode="lines+markers", name=fam, legendgroup=fam,
                            showlegend=c == 1, text=[p["label"] for p in ps],
                            line=dict(color=PALETTE[i % len(PALETTE)], width=1.5),
                            marker=dict(symbol=symbols[i % len(symbols)], size=8),
                            hovertemplate="%{text}<br>coherence %{x:.3f}<br>diversity %{y:.3f}"
                                          "<extra></extra>", row=1, col=c)
    if reference:
        for c, key in ((1, "acceptable"), (2, key2)):
            fig.add_scatter(x=[reference[key]], y=[reference["diversity"]], mode="markers",
                            name=reference.get("label", "p* (the truth)"), showlegend=c == 1,
                            marker=dict(symbol="star", size=16, color=GOOD,
                                        line=dict(color="#333", width=1)), row=1, col=c)
    fig.update_yaxes(title_text="diversity (distinct-2 across samples)", row=1, col=1)
    fig.update_xaxes(title_text="acceptable share →", row=1, col=1)
    fig.update_xaxes(title_text="more probable under p* →", row=1, col=2)
    fig.update_layout(title=wrap(title), height=460, title_pad_b=pad)
    return fig


__all__ = ["logprob_scatter_figure", "goals_figure", "GOALS", "coin_figure", "CoinExplorer",
           "logprob_histogram_figure", "beam_width_figure", "frequency_figure",
           "temperature_figure", "tradeoff_figure"]
