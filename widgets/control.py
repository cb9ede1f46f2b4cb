"""Views of controlled generation (survey §3.4, §5.1): the control-strength explorer.

* `tradeoff_figure(sweep, ...)`: attribute rate against fluency for every method of a stored sweep
  (``workbench.control.tinyworld.load_tradeoff()``), one curve per method through its strengths,
  the chosen method in colour and its chosen strength ringed.
* `samples_figure(samples)`: samples as a table, each coloured by the exact oracle's label
  (positive, negative, or not a review of the grammar).
* `explorer_figure` puts both side by side; `ControlExplorer` drives it with a method dropdown and a
  strength slider, showing the sweep's stored samples or, given the models, fresh ones.
* `step_figure(labels, dists)`: several next-token distributions at one prefix, side by side.
"""
from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import BAD, GOOD, MUTED, PALETTE, figure, wrap

FLUENCY = {"logp_star": "mean log p* of grammatical outputs", "grammatical":
           "fraction grammatical", "logp_target": "mean log p_theta(y | x)",
           "distinct": "fraction of distinct outputs"}
LABELS = {1: ("positive", GOOD), -1: ("negative", BAD), None: ("not a review", MUTED)}


def curves(sweep: dict, part: str = "review") -> dict:
    """``{method: [point, ...]}`` of one part of the sweep, points by increasing strength."""
    out: dict = {}
    for p in sweep["points"]:
        if p["part"] == part:
            out.setdefault(p["method"], []).append(p)
    if not out:
        raise ValueError(f"the sweep has no points for part {part!r}")
    return {m: sorted(ps, key=lambda p: p["strength"]) for m, ps in out.items()}


def point(sweep: dict, method: str, strength: float, part: str = "review") -> dict:
    """The sweep's point for ``method`` at ``strength``."""
    for p in curves(sweep, part).get(method, []):
        if p["strength"] == strength:
            return p
    raise ValueError(f"no point for {method!r} at strength {strength} in part {part!r}")


def _check_fluency(fluency):
    if fluency not in FLUENCY:
        raise ValueError(f"fluency must be one of {list(FLUENCY)}, got {fluency!r}")


def add_tradeoff(fig, sweep, method=None, strength=None, part="review", fluency="logp_star",
                 **where):
    """Draw the trade-off curves into ``fig`` (``where``: row/col of a subplot)."""
    _check_fluency(fluency)
    names = sweep.get("strength_name", {})
    ys = [p[fluency] for ps in curves(sweep, part).values() for p in ps]
    for i, (m, ps) in enumerate(curves(sweep, part).items()):
        chosen = method is None or m == method
        color = PALETTE[i % len(PALETTE)] if chosen else MUTED
        label = [f"{names.get(m, 's')}={p['strength']:g}" for p in ps]
        fig.add_trace(go.Scatter(
            x=[p["attribute_rate"] for p in ps], y=[p[fluency] for p in ps], name=m,
            mode="lines+markers+text" if m == method else "lines+markers",
            text=_spaced(ps, label, fluency, max(ys) - min(ys)) if m == method else None,
            cliponaxis=False, textposition=["top " + ("left" if q["attribute_rate"] > 0.6
                                                      else "right") for q in ps],
            line=dict(color=color, width=3 if m == method else 1.5),
            marker=dict(size=7, color=color), customdata=label,
            hovertemplate=f"{m} %{{customdata}}<br>attribute %{{x:.2f}}<br>"
                          f"{fluency} %{{y:.2f}}<extra></extra>"), **where)
    if method is not None and strength is not None:
        p = point(sweep, method, strength, part)
        fig.add_trace(go.Scatter(
            x=[p["attribute_rate"]], y=[p[fluency]], mode="markers", showlegend=False,
            marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color=BAD, width=3)),
            hoverinfo="skip"), **where)
    fig.update_xaxes(title_text="attribute rate (exact oracle)", range=[-0.03, 1.03], **where)
    fig.update_yaxes(title_text=FLUENCY[fluency], **where)
    return fig


def tradeoff_figure(sweep: dict, method: str | None = None, strength: float | None = None,
                    part: str = "review", fluency: str = "logp_star", height: int = 420):
    """Attribute rate (x) against fluency (y) for every method, through its strengths."""
    fig = figure("Attribute vs fluency as the control strength grows", height=height)
    return add_tradeoff(fig, sweep, method, strength, part, fluency)


def step_figure(labels, dists: dict, title: str = "One step: the next-token distributions",
                height: int = 360):
    """Grouped bars: several next-token distributions (``{name: [prob, ...]}``) over the same
    tokens, e.g. the target's and the steered ones at one prefix."""
    fig = figure(title, height=height, barmode="group", yaxis_title="probability",
                 xaxis=dict(type="category", tickangle=-45))
    for i, (name, probs) in enumerate(dists.items()):
        fig.add_bar(x=list(labels), y=[float(v) for v in probs], name=name,
                    marker_color=PALETTE[i % len(PALETTE)],
                    hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>")
    return fig


def _spaced(ps, labels, fluency, y_span, gap=0.2) -> list:
    """The labels of the first and last points and of those at least ``gap`` apart (as a
    share of the axes) from every point labelled before them; "" for the others (their label
    stays in the hover)."""
    kept, out = [], [""] * len(ps)
    for i in ([0, len(ps) - 1] + list(range(1, len(ps) - 1)))[:len(ps)]:
        p, text = ps[i], labels[i]
        xy = (p["attribute_rate"], p[fluency] / (y_span or 1.0))
        near = any(abs(xy[0] - a) < gap and abs(xy[1] - b) < gap for a, b in kept)
        out[i] = "" if near else text
        kept += [] if near else [xy]
    return out


def _cells(samples):
    lab = [LABELS[s["label"]] for s in samples]
    lp = ["-" if s["logp_star"] is None else f"{s['logp_star']:.2f}" for s in samples]
    text = [html.escape(s["prompt"]) + "<b>" + html.escape(s["text"]) + "</b>" for s in samples]
    return [[name for name, _ in lab], lp, text], [c for _, c in lab]


def add_samples(fig, samples, **where):
    """Draw the samples table into ``fig``: oracle label, log p*, prompt + <b>continuation</b>."""
    values, colors = _cells(samples)
    fig.add_trace(go.Table(
        columnwidth=[1.8, 1.3, 5],   # "positive" and "-33.71" fit at 700 px
        header=dict(values=["oracle", "log p*", "sample"], align="left",
                    fill_color="rgba(0,0,0,0)", font=dict(color="#555555")),
        cells=dict(values=values, align="left", fill_color="rgba(0,0,0,0)",
                   font=dict(color=[colors, colors, colors]))), **where)
    return fig


def samples_figure(samples: list, title: str | None = "Samples", height: int = 360):
    """Samples coloured by the oracle's label (`workbench.control.tinyworld.sample_records`)."""
    return add_samples(figure(title, height=height), samples)


def explorer_figure(sweep: dict, method: str, strength: float, samples: list | None = None,
                    part: str = "review", fluency: str = "logp_star", height: int = 460):
    """The trade-off curves with the chosen point ringed, beside the samples at that point
    (the sweep's stored ones unless ``samples`` are given)."""
    p = point(sweep, method, strength, part)
    samples = p["samples"] if samples is None else samples
    fig = make_subplots(rows=1, cols=2, column_widths=[0.42, 0.58],
                        specs=[[{"type": "xy"}, {"type": "table"}]])
    name = sweep.get("strength_name", {}).get(method, "strength")
    fig.update_layout(template="plotly+workbench", height=height,
                      title=wrap(f"{method}, {name} = {strength:g}: attribute "
                                 f"{p['attribute_rate']:.2f}, grammatical "
                                 f"{p['grammatical']:.2f}"))
    add_tradeoff(fig, sweep, method, strength, part, fluency, row=1, col=1)
    return add_samples(fig, samples, row=1, col=2)


class ControlExplorer:
    """Method dropdown and strength slider -> samples coloured by the oracle, and the point on
    the stored trade-off curve.  Without ``models`` the sweep's stored samples are shown; with
    them (``workbench.control.load_models()``), ``n`` fresh samples of ``prompt`` per setting."""

    def __init__(self, sweep: dict, models: dict | None = None, prompt: str = "Review:",
                 label: int = 1, n: int = 8, seed: int = 0, part: str = "review",
                 fluency: str = "logp_star", method: str | None = None):
        import ipywidgets as w
        _check_fluency(fluency)
        self.sweep, self.models, self.prompt, self.label = sweep, models, prompt, label
        self.n, self.seed, self.part, self._hold = n, seed, part, False
        self.curves = curves(sweep, part)
        method = method or next(iter(self.curves))
        self.method = w.Dropdown(options=list(self.curves), value=method, description="method")
        self.strength = w.SelectionSlider(options=self._strengths(method), description="strength",
                                          continuous_update=False)
        self.fluency = w.Dropdown(options=list(FLUENCY), value=fluency, description="fluency")
        self.figure = go.FigureWidget(self.build())
        self.method.observe(self._method_changed, names="value")
        for control in (self.strength, self.fluency):
            control.observe(lambda change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.method, self.strength, self.fluency]), self.figure])

    def _strengths(self, method):
        return [p["strength"] for p in self.curves[method]]

    def samples(self):
        """Fresh samples at the current setting (None without models)."""
        if self.models is None:
            return None
        from workbench.control import tinyworld as tw
        gens = tw.steer(self.method.value, self.models, self.prompt, self.strength.value,
                        self.label, n=self.n, seed=self.seed, max_new_tokens=tw.MAX_NEW_TOKENS)
        return tw.sample_records(gens, [self.label] * len(gens))

    def build(self):
        return explorer_figure(self.sweep, self.method.value, self.strength.value,
                               self.samples(), self.part, self.fluency.value)

    def update(self):
        if self._hold:
            return
        fig = self.build()
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(list(fig.data))   # keeps their axes and table domain
            self.figure.layout = fig.layout

    def _method_changed(self, change):
        self._hold = True                            # new options reset the value: one update
        self.strength.options = self._strengths(change["new"])
        self._hold = False
        self.update()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
