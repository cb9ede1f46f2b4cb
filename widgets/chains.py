"""Views of chained meta-generators (survey §4.1): accuracy vs cost per chain, and the stages
of one chain read from its trace."""
from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.trace import as_events

from .style import BAD, GOOD, NEUTRAL, PALETTE, error_bars, figure, wrap


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
    fig.update_layout(template="plotly+workbench", height=400, margin=dict(b=120),
                      title=wrap(title) if title else None)
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


def run_table(rows: dict) -> str:
    """``{chain: (right or not, Cost)}`` as an HTML table: the verdict and the Table 5 bill."""
    head = ("<tr><th style='text-align:left'>chain</th><th>right?</th><th>input</th>"
            "<th>output</th><th>external</th></tr>")
    body = "".join(
        f"<tr><td style='text-align:left'>{html.escape(name)}</td>"
        f"<td style='color:{GOOD if ok else BAD}'>{'yes' if ok else 'no'}</td>"
        f"<td>{c.input_tokens}</td><td>{c.output_tokens}</td><td>{c.external_tokens}</td></tr>"
        for name, (ok, c) in rows.items())
    return f"<table>{head}{body}</table>"


class ChainExplorer:
    """Pick a problem and a chain: the chain runs on it (under a trace) and the view shows its
    stages (or its tool calls), its output, whether it is right, and what every chain pays on
    the same problem.  ``runs``: ``{name: run(problem)}`` (`experiments.chain_runs`);
    ``problems``: the task's problems to choose from; ``check(problem, text)`` grades."""

    def __init__(self, runs: dict, problems, check, chain: str | None = None):
        import ipywidgets as W
        if not runs or not problems:
            raise ValueError("runs and problems must not be empty")
        if chain is not None and chain not in runs:
            raise ValueError(f"chain must be one of {list(runs)}, got {chain!r}")
        self.runs, self.problems, self.check = runs, list(problems), check
        self._table = {}
        short = [" ".join(p.question.split()) for p in self.problems]
        self.problem = W.Dropdown(options=[(q if len(q) <= 60 else q[:59] + "…", i)
                                           for i, q in enumerate(short)], description="problem")
        self.chain = W.Dropdown(options=list(runs), value=chain or list(runs)[0],
                                description="chain")
        self.fig = go.FigureWidget(figure("", height=160))
        self.output, self.table = W.HTML(), W.HTML()
        for w in (self.problem, self.chain):
            w.observe(lambda _: self.update(), names="value")
        self.view = W.VBox([W.HBox([self.problem, self.chain]), self.fig, self.output,
                            self.table])
        self.update()

    def run(self, name: str | None = None, problem=None):
        """Run one chain on one problem under a trace: (output, its events)."""
        from workbench import trace
        with trace() as t:
            out = self.runs[name or self.chain.value](problem or self.current)
        return out, t.events

    @property
    def current(self):
        return self.problems[self.problem.value]

    def every_chain(self) -> dict:
        """Every chain on the current problem (computed once per problem)."""
        i = self.problem.value
        if i not in self._table:
            self._table[i] = {}
            for name in self.runs:
                out, _ = self.run(name)
                self._table[i][name] = (bool(self.check(self.current, out.text)), out.cost)
        return self._table[i]

    def update(self):
        out, events = self.run()
        stages = [e for e in events if e["kind"] == "stage"]
        new = stages_figure(events) if stages else figure(
            "One generator call (no stages): its output is below", height=120)
        with self.fig.batch_update():
            self.fig.layout = new.layout
        calls = [f"{e['call']} &rarr; {html.escape(e['result'])}" for e in events
                 if e["kind"] == "tool"]
        ok = self.check(self.current, out.text)
        self.output.value = (
            f"<pre>{html.escape(out.text.strip())}</pre>"
            + (f"tool calls: {'; '.join(calls)}<br>" if calls else "")
            + f"<b style='color:{GOOD if ok else BAD}'>{'right' if ok else 'wrong'}</b>"
            f" (reference {html.escape(str(self.current.reference))}); cost: {out.cost}")
        self.table.value = run_table(self.every_chain())

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)
