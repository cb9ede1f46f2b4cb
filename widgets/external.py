"""Views of external information (survey §5): what a learned judge sees in a solution, and
which of N candidates each judge picks.

* `step_scores_figure`: a process reward model's probability after every step of one solution
  beside the exact step checker's verdict, and the outcome verifier's single score;
* `discrimination_figure`: how well a judge ranks right above wrong, pooled over problems,
  within one problem, and against a single slip (0.5 = chance);
* `evidence_figure`: where a Bayes-rule verifier finds its evidence, token by token;
* `SelectorExplorer`: the same N samples judged by several scorers (log-p, verifier, PRM, the
  exact check): the candidate each one picks, re-run as the controls move.
"""
from __future__ import annotations

import plotly.graph_objects as go

from .parallel import best_of_n_figure
from .style import BAD, GOOD, NEUTRAL, figure, wrap


def step_scores_figure(steps, prm_probs, step_ok, verifier_prob=None, title=None) -> go.Figure:
    """One bar per step: the PRM's P(all steps so far are right), green where the exact checker
    accepts the step and red where it does not; the verifier's score as a dashed line."""
    x = [f"{i + 1}. {s.strip()[:28]}" for i, s in enumerate(steps)]
    fig = figure(title or "What the process reward model sees, step by step", height=340,
                 yaxis=dict(title="probability", range=[0, 1.05]))
    fig.add_bar(x=x, y=list(prm_probs), marker_color=[GOOD if ok else BAD for ok in step_ok],
                name="PRM after this step", hovertext=list(steps), hoverinfo="text+y")
    if verifier_prob is not None:
        fig.add_hline(y=verifier_prob, line=dict(color=NEUTRAL, dash="dash"),
                      annotation_text=f"outcome verifier: {verifier_prob:.2f}",
                      annotation_position="top left")
    fig.update_xaxes(type="category")
    return fig


def discrimination_figure(aurocs: dict, title=None) -> go.Figure:
    """Horizontal bars of AUROC-like numbers (P(right outscores wrong)) with the 0.5 chance
    line: ``{"label": value}`` in the order given."""
    labels, values = list(aurocs), [float(v) for v in aurocs.values()]
    fig = figure(title or "How well does the judge rank right above wrong?",
                 height=120 + 40 * len(labels),
                 xaxis=dict(title="P(right scores higher); dashed: chance (0.5)", range=[0, 1]))
    fig.add_bar(y=labels, x=values, orientation="h", text=[f"{v:.2f}" for v in values],
                marker_color=[GOOD if v >= 0.75 else NEUTRAL if v >= 0.6 else BAD
                              for v in values], showlegend=False)
    fig.add_vline(x=0.5, line=dict(color=NEUTRAL, dash="dash"))
    fig.update_yaxes(autorange="reversed")
    return fig


def evidence_figure(rows: dict, title=None) -> go.Figure:
    """Where a Bayes-rule verifier (`workbench.scoring.BayesScorer`) finds its evidence: one
    panel row per text, ``{"label": (tokens, votes)}``, a bar per token of log p(y_t | right) -
    log p(y_t | wrong) (red where a wrong solution would rather write that token)."""
    from plotly.subplots import make_subplots
    labels = list(rows)
    fig = make_subplots(rows=len(labels), cols=1, subplot_titles=[
        f"{k}: total {sum(v[1]):+.1f} nats" for k, v in rows.items()], vertical_spacing=0.18)
    for i, (tokens, votes) in enumerate(rows.values(), start=1):
        x = [f"{j}:{t}" for j, t in enumerate(tokens)]
        fig.add_bar(x=x, y=list(votes), row=i, col=1, showlegend=False,
                    marker_color=[GOOD if v >= 0 else BAD for v in votes],
                    hovertext=[repr(t) for t in tokens], hoverinfo="text+y")
        fig.update_xaxes(type="category", tickmode="array", tickvals=x,
                         ticktext=[t.replace("\n", "⏎") for t in tokens], row=i, col=1)
        fig.update_yaxes(title_text="nats", row=i, col=1)
    fig.update_layout(title=wrap(title or "Each token's vote: right or wrong?"),
                      height=200 + 180 * len(labels))
    return fig


class SelectorExplorer:
    """Slider for N, a toggle between judges: best-of-N (eq. 28) over the same samples (same
    seed), with the chosen candidate outlined and correctness coloured.
    `SelectorExplorer.replay(trace)` toggles between recorded best-of-N runs instead."""

    def __init__(self, generator, prompt, scorers: dict, check, seed=0, n=8):
        self.generator, self.prompt, self.scorers = generator, prompt, scorers
        self.check, self.seed = check, seed
        self._build(n, list(scorers))
        for w in (self.n, self.judge):
            w.observe(lambda _: self.update(), names="value")
        self.update()

    @classmethod
    def replay(cls, trace, judges=None, check=None):
        """The best-of-N runs recorded in ``trace`` (their ``candidate`` and ``choose``
        events), one per judge: ``judges`` names them in order (default run 0, run 1, ...);
        ``check(text) -> bool`` (optional, no model needed) colours right and wrong.  Changing
        N would draw new samples, which needs the model: N shows the recorded one, disabled."""
        import ipywidgets as W
        from .replay import freeze, needed, note, split_runs
        events = needed(trace, ("candidate", "choose"), "a meta.best_of_n run per judge")
        runs = split_runs(events, "choose")
        judges = list(judges) if judges is not None else [f"run {i}" for i in range(len(runs))]
        if len(judges) != len(runs):
            raise ValueError(f"judges must name the {len(runs)} recorded best-of-N runs in "
                             f"order, got {len(judges)} names")
        view = cls.__new__(cls)
        view.generator = view.prompt = view.scorers = view.seed = None
        view.check, view.runs = check, dict(zip(judges, runs))
        n = sum(e["kind"] == "candidate" for e in runs[0])
        view._build(n, judges, note(W, "The toggle switches between the recorded judges' runs; "
                                       "N shows the recorded one, since more samples would "
                                       "need the model."))
        freeze(view.n)
        view.judge.observe(lambda _: view.update(), names="value")
        view.update()
        return view

    def _build(self, n, judges, *top):
        import ipywidgets as W
        self.n = W.IntSlider(value=n, min=1, max=max(32, n), description="N")
        self.judge = W.ToggleButtons(options=judges)
        self.fig = go.FigureWidget(figure("", height=320))
        self.info = W.HTML()
        self.view = W.VBox([*top, self.n, self.judge, self.fig, self.info])

    def run(self):
        from workbench import meta
        if self.generator is None:                 # replayed: the recorded run
            return self.runs[self.judge.value]
        return meta.best_of_n(self.prompt, self.generator, self.scorers[self.judge.value],
                              self.n.value, seed=self.seed)

    def update(self):
        from .parallel import selection
        r = self.run()
        run = selection(r)
        flags = None if self.check is None else [bool(self.check(t)) for t in run["texts"]]
        verdict = "" if flags is None else f" ({'right' if flags[run['chosen']] else 'wrong'})"
        new = best_of_n_figure(r, flags, title=f"{self.judge.value} picks candidate "
                               f"{run['chosen']}{verdict}")
        with self.fig.batch_update():
            self.fig.data = []
            for tr in new.data:
                self.fig.add_trace(tr)
            self.fig.layout = new.layout
        right = (f"{sum(flags)} of {len(flags)} candidates are right" if flags is not None
                 else f"{len(run['texts'])} candidates (no check given)")
        self.info.value = right + (f"; external tokens spent judging: {r.cost.external_tokens}"
                                   if hasattr(r, "cost") else "; replayed from a trace")
        return r

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)
