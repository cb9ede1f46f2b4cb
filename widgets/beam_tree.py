"""Beam search tree (survey §3.1): every candidate `workbench.decoding.beam_search` considered,
with its token and cumulative log-probability; pruned branches greyed, finished hypotheses
marked (the returned ones ranked); width, length-penalty and early-stopping controls re-run it.

`tree_layout` and `beam_tree_figure` are pure functions of a `BeamSearchResult`, or of the
events of a trace that recorded the search (live or loaded with `workbench.trace.load`).
"""
from __future__ import annotations

import plotly.graph_objects as go

from workbench import decoding
from workbench.trace import as_events, last_run

from .distribution import token_labels
from .style import GOOD, MUTED, NEUTRAL, figure

STATUS_COLOR = {"kept": NEUTRAL, "pruned": MUTED, "finished": GOOD}


def beam_run(run, tokenizer=None) -> dict:
    """A beam search's ``tree`` (`decoding.Node` objects), ``params`` and best hypothesis
    (``text``, ``score``): the result's, or rebuilt from the ``beam_step``, ``beam_finish`` and
    ``beam_done`` events of a trace (the text decoded with ``tokenizer``, else token ids)."""
    if hasattr(run, "tree"):
        return {"tree": run.tree, "params": run.params, "text": run.best.text,
                "score": run.best.score}
    events = last_run(as_events(run), ("beam_step", "beam_finish", "beam_done"), "beam_done")
    tree = [decoding.Node(0, None, None, 0.0, 0.0, 0)]
    for e in (e for e in events if e["kind"] == "beam_step"):
        for n, p, tok, lp, cum in zip(e["nodes"], e["parents"], e["tokens"], e["logprobs"],
                                      e["cum_logprobs"]):
            tree.append(decoding.Node(n, p, tok, lp, cum, e["t"] + 1,
                                      "kept" if n in e["kept"] else "pruned"))
    for e in (e for e in events if e["kind"] == "beam_finish"):
        tree[e["node"]].status, tree[e["node"]].score = "finished", e["score"]
        tree[e["node"]].reason = e["reason"]
    done = next(e for e in events if e["kind"] == "beam_done")
    for rank, n in enumerate(done["returned"]):
        tree[n].rank = rank
    best = tree[done["returned"][0]]
    tokens = [tree[i].token for i in decoding.tree_path(tree, best.id)[1:]]
    tokens = tokens[:-1] if best.reason == "eos" else tokens
    return {"tree": tree, "params": done["params"], "score": best.score,
            "text": tokenizer.decode(tokens) if tokenizer is not None else str(tokens)}


def tree_layout(tree: list) -> dict:
    """``{node id: (x, y)}``: x is the step; leaves get consecutive y in depth-first order
    (children best first) and a parent sits at the mean of its children."""
    children = {n.id: [] for n in tree}
    for n in tree[1:]:
        children[n.parent].append(n.id)
    pos, next_y = {}, [0]

    def place(i):
        kids = sorted(children[i], key=lambda j: -tree[j].cum_logprob)
        if not kids:
            pos[i] = (tree[i].step, next_y[0])
            next_y[0] += 1
        else:
            for j in kids:
                place(j)
            pos[i] = (tree[i].step, sum(pos[j][1] for j in kids) / len(kids))

    place(0)                         # recursion depth = number of steps
    return pos


def beam_tree_figure(result, tokenizer=None, title: str | None = None) -> go.Figure:
    """Nodes at (step, leaf order), coloured by status; finished hypotheses as stars (the
    returned ones labelled #1, #2, ...) or open circles (finished but beaten); edges greyed
    into pruned nodes."""
    run = beam_run(result, tokenizer)
    tree = run["tree"]
    pos = tree_layout(tree)
    toks = [n.token for n in tree[1:]]
    labels = ["(prompt)"] + (token_labels(tokenizer, toks) if tokenizer is not None
                             else [str(t) for t in toks])
    fig = figure(title or _title(run), height=max(320, 17 * len(pos) // 2 + 160),
                 xaxis=dict(title="step (generated tokens)", dtick=1, zeroline=False),
                 yaxis=dict(visible=False), showlegend=True)
    for status, color in STATUS_COLOR.items():
        xs, ys = [], []
        for n in tree[1:]:
            if n.status == status:
                (x0, y0), (x1, y1) = pos[n.parent], pos[n.id]
                xs += [x0, x1, None]
                ys += [y0, y1, None]
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1),
                        hoverinfo="skip", showlegend=False)
    for status, color in STATUS_COLOR.items():
        nodes = [n for n in tree if n.status == status]
        if status == "finished":
            symbols = ["star" if n.rank is not None else "circle-open" for n in nodes]
        else:
            symbols = ["circle"] * len(nodes)
        text = [labels[n.id] + (f" #{n.rank + 1}" if n.rank is not None else "") for n in nodes]
        hover = [_hover(n, labels[n.id]) for n in nodes]
        fig.add_scatter(x=[pos[n.id][0] for n in nodes], y=[pos[n.id][1] for n in nodes],
                        mode="markers+text", name=status, text=text, textposition="middle right",
                        textfont=dict(size=10, color=color if status != "pruned" else MUTED),
                        marker=dict(color=color, size=[11 if s == "star" else 7 for s in symbols],
                                    symbol=symbols), hovertext=hover, hoverinfo="text")
    return fig


def _hover(n, label):
    s = f"{label}<br>step {n.step}, cumulative log p = {n.cum_logprob:.3f}"
    if n.parent is not None:
        s += f"<br>log p(token) = {n.logprob:.3f}"
    if n.status == "finished":
        s += f"<br>finished ({n.reason}), score {n.score:.4f}"
    return s + f"<br>{n.status}"


def _title(run) -> str:
    p = run["params"]
    return (f"Beam search, {p['num_beams']} beams, length penalty {p['length_penalty']}, "
            f"early_stopping={p['early_stopping']}: {len(run['tree']) - 1} candidates in "
            f"{p['steps']} steps; best {run['text']!r} (score {run['score']:.3f})")


class BeamTree:
    """Sliders for the width, the length penalty and max tokens, a toggle for early stopping;
    every change re-runs `decoding.beam_search` and redraws the tree.  `BeamTree.replay(trace)`
    opens a recorded search instead, without the model (the controls then only show its
    parameters)."""

    def __init__(self, lm, prompt="Story: The", num_beams=3, length_penalty=1.0,
                 max_new_tokens=8, early_stopping=False):
        self.lm, self.prompt = lm, prompt
        self._controls(num_beams, length_penalty, max_new_tokens, early_stopping)
        self.fig = go.FigureWidget(self.figure())
        for w in (self.width, self.penalty, self.tokens, self.stopping):
            w.observe(lambda _: self.redraw(), names="value")
        self._layout()
        self.redraw()

    @classmethod
    def replay(cls, trace, tokenizer=None):
        """The tree of the last beam search recorded in ``trace`` (its ``beam_step``,
        ``beam_finish`` and ``beam_done`` events; live, or loaded with `workbench.trace.load`,
        whose tokenizer shows the tokens).  Changing a control would re-run the search, which
        needs the model: the controls show the recorded parameters, disabled."""
        import ipywidgets as W
        from .replay import freeze, needed, note, tokenizer_of
        needed(trace, ("beam_step", "beam_finish", "beam_done"), "a decoding.beam_search run")
        needed(trace, ("beam_done",), "a decoding.beam_search run that returned")
        view = cls.__new__(cls)
        view.lm = view.prompt = view.result = None
        tok = tokenizer_of(trace, tokenizer)
        run = beam_run(trace, tok)
        p = run["params"]
        view._controls(p["num_beams"], p["length_penalty"], p["max_new_tokens"],
                       p["early_stopping"])
        freeze(view.width, view.penalty, view.tokens, view.stopping)
        view.fig = go.FigureWidget(beam_tree_figure(trace, tok))
        view._layout(note(W, "The controls show the recorded search's parameters; changing "
                             "them would re-run the search, which needs the model."))
        view.info.value = hypotheses_html(recorded_hypotheses(trace, tok)) + \
            f"{len(run['tree']) - 1} candidates scored in {p['steps']} steps (recorded)"
        return view

    def _controls(self, num_beams, length_penalty, max_new_tokens, early_stopping):
        import ipywidgets as W
        self.width = W.IntSlider(value=num_beams, min=1, max=8, description="beams")
        self.penalty = W.FloatSlider(value=length_penalty, min=-2.0, max=3.0, step=0.1,
                                     description="length pen.")
        self.tokens = W.IntSlider(value=max_new_tokens, min=1, max=max(24, max_new_tokens),
                                  description="max tokens")
        self.stopping = W.ToggleButtons(options=[("False", False), ("True", True),
                                                 ("never", "never")], value=early_stopping,
                                        description="early stop")

    def _layout(self, *top):
        import ipywidgets as W
        self.info = W.HTML()
        self.view = W.VBox([*top, W.HBox([self.width, self.penalty, self.tokens]),
                            self.stopping, self.fig, self.info])

    def run(self):
        return decoding.beam_search(self.lm, self.prompt, num_beams=self.width.value,
                                    length_penalty=self.penalty.value,
                                    early_stopping=self.stopping.value,
                                    max_new_tokens=self.tokens.value)

    def figure(self, result=None):
        self.result = result or self.run()
        return beam_tree_figure(self.result, self.lm.tokenizer)

    def redraw(self):
        new = self.figure(self.run())
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.add_traces(list(new.data))
            self.fig.layout = new.layout
        rows = [(h.text, h.score, h.seq_logprob, h.length, h.finish_reason)
                for h in self.result.hypotheses]
        self.info.value = hypotheses_html(rows) + f"cost: {self.result.cost}"

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)


def hypotheses_html(rows) -> str:
    """The returned hypotheses, best first: ``(text, score, log p, length, reason)`` rows."""
    items = "".join(f"<li>#{i + 1} {text!r}: score {score:.4f}, log p {lp:.3f}, {n} tokens "
                    f"({reason})</li>" for i, (text, score, lp, n, reason) in enumerate(rows))
    return f"<ol style='list-style:none'>{items}</ol>"


def recorded_hypotheses(trace, tokenizer=None) -> list:
    """`hypotheses_html` rows of the last beam search in ``trace``, from its ``beam_finish``
    and ``beam_done`` events (texts decoded with ``tokenizer``, else token ids)."""
    events = last_run(as_events(trace), ("beam_step", "beam_finish", "beam_done"), "beam_done")
    tree = beam_run(events)["tree"]
    finish = {e["node"]: e for e in events if e["kind"] == "beam_finish"}
    rows = []
    for n in events[-1]["returned"]:
        f = finish[n]
        tokens = [tree[i].token for i in decoding.tree_path(tree, n)[1:]]
        tokens = tokens[:-1] if f["reason"] == "eos" else tokens
        text = (tokenizer.decode(tokens, skip_special_tokens=True) if tokenizer is not None
                else str(tokens))
        rows.append((text, f["score"], f["cum_logprob"], f["length"], f["reason"]))
    return rows
