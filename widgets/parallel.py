"""Views of parallel meta-generators (survey §4.2): votes, best-of-N, rejection sampling, and
scaling curves.  Every ``*_figure`` is a pure function of a result or of the events of a trace
that recorded the run (live or loaded with `workbench.trace.load`); `VotingExplorer` re-runs
the algorithm as its controls move."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from workbench.trace import as_events, last_run

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure


def selection(run) -> dict:
    """What a parallel meta-generator chose: ``texts`` of the candidates, their ``scores`` (or
    None), ``votes`` (answer -> weight, or None), the ``chosen`` index and its ``answer``;
    from the result, or from a trace's ``candidate``, ``vote`` and ``choose`` events."""
    if hasattr(run, "candidates"):
        return {"texts": [c.text for c in run.candidates], "scores": run.scores,
                "votes": run.votes, "chosen": run.chosen, "answer": run.answer}
    events = last_run(as_events(run), ("candidate", "vote", "choose"), "choose")
    cands = [e for e in events if e["kind"] == "candidate"]
    pick = next((e for e in events if e["kind"] == "choose"), {"index": None})
    scores = [c["score"] for c in cands]
    votes = {e["answer"]: e["weight"] for e in events if e["kind"] == "vote"}
    answer = pick.get("answer", cands[pick["index"]]["answer"] if pick["index"] is not None
                      else None)
    return {"texts": [c["text"] for c in cands],
            "scores": None if all(s is None for s in scores) else scores,
            "votes": votes or None, "chosen": pick["index"], "answer": answer}


def vote_figure(result, correct=None, title=None) -> go.Figure:
    """Voting histogram: each answer's count (or summed weight), the winner, the right answer."""
    run = selection(result)
    votes, winner = run["votes"] or {}, run["answer"]
    answers = list(votes)
    colors = [GOOD if a == correct else (BAD if a == winner else NEUTRAL) for a in answers]
    fig = figure(title or f"{len(run['texts'])} candidates -> answer {winner}"
                 + ("" if correct is None else f" (correct: {correct})"), height=320,
                 xaxis_title="answer", yaxis_title="votes" if run["scores"] is None else "weight")
    fig.add_bar(x=[str(a) for a in answers], y=[votes[a] for a in answers], marker_color=colors,
                text=["winner" if a == winner else "" for a in answers],
                textposition="outside", hovertemplate="answer %{x}: %{y:.2f}<extra></extra>")
    fig.update_xaxes(type="category")
    return fig


def best_of_n_figure(result, correct_flags=None, title=None) -> go.Figure:
    """Each candidate's score, the chosen one outlined; green/red when correctness is known."""
    run = selection(result)
    scores = run["scores"] or []
    x = list(range(len(scores)))
    colors = [NEUTRAL if correct_flags is None else (GOOD if c else BAD) for c in
              (correct_flags or [None] * len(scores))]
    widths = [3 if i == run["chosen"] else 0 for i in x]
    fig = figure(title or f"Best-of-{len(scores)}: candidate {run['chosen']} is chosen",
                 height=320, xaxis_title="candidate", yaxis_title="score v(y)")
    fig.add_bar(x=x, y=scores, marker=dict(color=colors, line=dict(width=widths, color=FONT)),
                hovertext=[t[-60:] for t in run["texts"]], hoverinfo="text+y")
    return fig


FONT = "#555555"


def rejection_figure(events, log_M: float, title=None) -> go.Figure:
    """Rejection sampling: every proposal's acceptance probability q~(y)/(M g(y)) against its
    uniform draw u; accepted below the diagonal of chance, with the running acceptance rate."""
    props = [e for e in as_events(events) if e["kind"] in ("propose_accept", "propose_reject")]
    ratio = [min(1.0, math.exp(e["log_ratio"])) if isinstance(e["log_ratio"], (int, float))
             else 0.0 for e in props]
    acc = [e["kind"] == "propose_accept" for e in props]
    running = np.cumsum(acc) / np.arange(1, len(acc) + 1) if acc else []
    fig = figure(title or f"Rejection sampling with M = {math.exp(log_M):.3g}: "
                 f"{sum(acc)} of {len(acc)} accepted", height=340,
                 xaxis_title="proposal", yaxis_title="probability")
    x = list(range(len(props)))
    fig.add_scatter(x=x, y=ratio, mode="markers", name="q~(y) / (M g(y))",
                    marker=dict(color=[GOOD if a else BAD for a in acc], size=7))
    fig.add_scatter(x=x, y=[e["u"] for e in props], mode="markers", name="uniform draw u",
                    marker=dict(color=MUTED, symbol="x", size=6))
    fig.add_scatter(x=x, y=list(running), mode="lines", name="acceptance rate so far",
                    line=dict(color=NEUTRAL))
    return fig


def scaling_figure(curves: dict, methods=None, title="Accuracy vs number of samples N",
                   limits: dict | None = None) -> go.Figure:
    """Scaling curves with standard-error bars (the survey's Figure 6 analogue)."""
    names = {"oracle": "pass@N (oracle)", "best_of_n": "best-of-N (verifier)",
             "best_of_n_joint": "best-of-N (p_θ · verifier)",
             "vote": "majority vote", "weighted": "weighted vote", "first": "one sample"}
    fig = figure(title, height=380, xaxis=dict(type="log", title="N (samples per problem)"),
                 yaxis=dict(title="accuracy", range=[0, 1.02]))
    for i, m in enumerate(methods or [k for k in names if k in curves]):
        c = curves[m]
        fig.add_scatter(x=c["n"], y=c["accuracy"], name=names.get(m, m), mode="lines+markers",
                        error_y=dict(type="data", array=c["stderr"], visible=True),
                        line=dict(color=PALETTE[i % len(PALETTE)],
                                  dash="dot" if m == "oracle" else None))
    for i, (name, value) in enumerate((limits or {}).items()):
        fig.add_hline(y=value, line=dict(dash="dash", color=MUTED),
                      annotation_text=name, annotation_position="bottom right")
    fig.update_xaxes(tickvals=curves[next(iter(curves))]["n"])
    return fig


def kl_figure(ns, exact, bound) -> go.Figure:
    """KL(best-of-N policy || p): exact on a small output space vs log N - (N - 1)/N."""
    fig = figure("How far best-of-N moves from the base model", height=340,
                 xaxis=dict(type="log", title="N"), yaxis_title="KL(pi_BoN || p) (nats)")
    fig.add_scatter(x=list(ns), y=list(exact), name="exact", mode="lines+markers",
                    line_color=NEUTRAL)
    fig.add_scatter(x=list(ns), y=list(bound), name="log N - (N-1)/N", mode="lines",
                    line=dict(color=BAD, dash="dash"))
    return fig


class VotingExplorer:
    """Sliders for N and temperature, a method toggle: re-runs the meta-generator on one problem
    and redraws the votes (or the best-of-N scores).  ``stop`` and ``answer_fn`` are the task's
    (``fmt.stop``, ``fmt.answer``; default: none, and TinyWorld's integer after ``A:``);
    ``correct`` is compared with what ``answer_fn`` reads."""

    def __init__(self, lm, prompt, correct=None, scorer=None, seed=0, stop=(), answer_fn=None):
        import ipywidgets as W
        from workbench.meta import default_answer
        self.lm, self.prompt, self.correct, self.scorer, self.seed = lm, prompt, correct, scorer, seed
        self.stop = tuple(stop) if stop else None   # None: as LMGenerator's default
        self.answer_fn = answer_fn or default_answer
        self.n = W.IntSlider(value=8, min=1, max=32, description="N")
        self.temp = W.FloatSlider(value=1.0, min=0.1, max=1.5, step=0.1, description="temperature")
        opts = ["majority vote"] + (["weighted vote", "best-of-N"] if scorer else [])
        self.method = W.ToggleButtons(options=opts)
        self.fig = go.FigureWidget(self.figure())
        self.info = W.HTML()
        for w in (self.n, self.temp, self.method):
            w.observe(lambda _: self.update(), names="value")
        self.view = W.VBox([W.HBox([self.n, self.temp]), self.method, self.fig, self.info])
        self.update()

    @classmethod
    def replay(cls, trace, correct=None, run: int = -1):
        """The votes (or best-of-N scores) of parallel run ``run`` recorded in ``trace`` (its
        ``candidate``, ``vote`` and ``choose`` events; pass ``trace.by("majority_vote")`` to
        pick one algorithm's runs).  N, the temperature and the method would re-run the
        generator, which needs the model: N and the method show the recorded run, disabled;
        the temperature, not recorded, is hidden."""
        import ipywidgets as W
        from .replay import freeze, needed, note, pick, split_runs
        events = needed(trace, ("candidate", "vote", "choose"),
                        "a meta.majority_vote, weighted_vote or best_of_n run")
        r = pick(split_runs(events, "choose"), run, "run", "parallel runs")
        cands = [e for e in r if e["kind"] == "candidate"]
        voted = any(e["kind"] == "vote" for e in r)
        view = cls.__new__(cls)
        view.lm, view.correct, view.scorer = None, correct, None
        view.n = W.IntSlider(value=len(cands), min=1, max=max(32, len(cands)), description="N")
        view.temp = W.FloatSlider(description="temperature", layout=W.Layout(display="none"))
        view.method = W.ToggleButtons(options=["vote" if voted else "best-of-N"])
        freeze(view.n, view.temp, view.method)
        flags = None if correct is None else [c["answer"] == correct for c in cands]
        view.fig = go.FigureWidget(vote_figure(r, correct) if voted else
                                   best_of_n_figure(r, flags))
        answer = selection(r)["answer"]
        view.info = W.HTML(f"answer <b>{answer if answer is not None else '-'}</b>; "
                           f"{len(cands)} recorded candidates")
        view.view = W.VBox([note(W, "N, the temperature and the method show the recorded run; "
                                    "changing them would draw new samples, which needs the "
                                    "model."), W.HBox([view.n, view.temp]), view.method,
                            view.fig, view.info])
        return view

    def run(self):
        from workbench import adapters, meta
        g = meta.LMGenerator(self.lm, adapters=[lambda x: adapters.temperature(
            x, self.temp.value)], stop=self.stop)
        if self.method.value == "majority vote":
            return meta.majority_vote(self.prompt, g, self.n.value, seed=self.seed,
                                      answer_fn=self.answer_fn)
        if self.method.value == "weighted vote":
            return meta.weighted_vote(self.prompt, g, self.scorer, self.n.value, seed=self.seed,
                                      answer_fn=self.answer_fn)
        return meta.best_of_n(self.prompt, g, self.scorer, self.n.value, seed=self.seed)

    def figure(self, result=None):
        if result is None:
            return figure("", height=320)
        if result.votes is not None:
            return vote_figure(result, self.correct)
        flags = [self.answer_fn(c.text) == self.correct for c in result.candidates]
        return best_of_n_figure(result, flags if self.correct is not None else None)

    def update(self):
        r = self.run()
        new = self.figure(r)
        with self.fig.batch_update():
            self.fig.data = []
            for tr in new.data:
                self.fig.add_trace(tr)
            self.fig.layout = new.layout
        self.info.value = (f"answer <b>{r.answer if r.answer is not None else '-'}</b>; "
                           f"cost: {r.cost}")

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)
