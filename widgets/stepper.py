"""Step-through generation (survey §2.2, eqs. 11-13): pick or sample one token at a time, rewind,
branch, and watch the cumulative log-probability log p_theta(y_<=t | x) of the path.

`StepSession` holds the state (a KV-cached `DecodeState`, the path, saved branches) and is
usable without a browser; `stepper_figure` is a pure function of `StepSession.snapshot()`;
`Stepper` adds buttons and a clickable bar chart of the next-token candidates.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench import decoding
from workbench.rng import make_generator

from .distribution import token_labels
from .style import GOOD, MUTED, NEUTRAL, PALETTE


class StepSession:
    """One prompt, one path of chosen tokens, and the branches saved along the way.

    ``adapters`` (a list or `workbench.adapters.chain`) shape the distribution that `sample`
    and `greedy` choose from; the log-probabilities shown are always p_theta's.
    """

    def __init__(self, lm, prompt, adapters=None, seed=0, top: int = 12):
        self.lm, self.prompt, self.top = lm, prompt, top
        self.adapters = decoding._adapter_list(adapters)
        self.generator = make_generator(seed, lm.device)
        self._snap = lm.counter.snapshot()
        self.state = lm.prefill(prompt)
        self.prompt_len = len(self.state.ids[0])
        self.tokens, self.logprobs, self.branches = [], [], []

    # -- moves ----------------------------------------------------------------------------
    def _logp(self):
        return torch.log_softmax(self.state.logits[0].float(), -1)

    def _adapted(self):
        return decoding.apply_adapters(self.state.logits, self.adapters)

    def choose(self, token: int):
        """Append ``token`` (any id in the vocabulary)."""
        token = int(token)
        if not 0 <= token < self.lm.vocab_size:
            raise ValueError(f"token must be in [0, {self.lm.vocab_size}), got {token}")
        self.logprobs.append(float(self._logp()[token]))
        self.tokens.append(token)
        self.lm.advance(self.state, [token])
        return token

    def sample(self):
        """Draw the next token from softmax(q_t(s_theta)) (eqs. 12-13)."""
        adapted = self._adapted()
        tok = decoding.choose_sample(adapted, self.generator)
        for a in self.adapters:
            if hasattr(a, "observe"):
                a.observe(tok, adapted)
        return self.choose(int(tok[0]))

    def greedy(self):
        """Take the most probable token after the adapters (eq. 8)."""
        return self.choose(int(self._adapted()[0].argmax()))

    def rewind(self, k: int = 1):
        """Drop the last ``k`` chosen tokens (the KV cache is cropped, not recomputed)."""
        if not 0 <= k <= len(self.tokens):
            raise ValueError(f"k must be in [0, {len(self.tokens)}], got {k}")
        if k:
            self.lm.rewind(self.state, k)
            del self.tokens[-k:], self.logprobs[-k:]

    def branch(self):
        """Save the current path; it stays drawn while you rewind and try other tokens."""
        if self.tokens and (self.tokens, self.logprobs) not in self.branches:
            self.branches.append((list(self.tokens), list(self.logprobs)))

    def switch(self, i: int):
        """Go back to saved branch ``i`` (shared prefix kept, the rest run in one pass)."""
        toks, lps = self.branches[i]
        common = 0
        while common < min(len(toks), len(self.tokens)) and toks[common] == self.tokens[common]:
            common += 1
        self.rewind(len(self.tokens) - common)
        if toks[common:]:
            self.lm.extend(self.state, toks[common:])
        self.tokens, self.logprobs = list(toks), list(lps)

    # -- what to draw ---------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.lm.decode(self.tokens)

    @property
    def logprob(self) -> float:
        return float(sum(self.logprobs))

    @property
    def cost(self):
        """Forward passes and computed tokens of this session so far (rewinds included)."""
        return self.lm.counter.since(self._snap)

    def candidates(self) -> dict:
        """The ``top`` most probable next tokens: p_theta, q after the adapters, kept or not."""
        logits = self.state.logits[0].float()
        adapted = self._adapted()[0]
        p = torch.softmax(logits.double(), -1)
        q = torch.softmax(adapted.double(), -1)
        ids = torch.argsort(p, descending=True, stable=True)[:self.top].tolist()
        return {"ids": ids, "labels": token_labels(self.lm.tokenizer, ids),
                "p": p[ids].tolist(), "q": q[ids].tolist(),
                "kept": torch.isfinite(adapted[ids]).tolist()}

    def snapshot(self) -> dict:
        """Plain data for `stepper_figure`."""
        tok = self.lm.tokenizer

        def path(toks, lps):
            return {"labels": token_labels(tok, toks), "cum": np.cumsum([0.0] + lps).tolist()}
        return {"prompt": self.prompt if isinstance(self.prompt, str) else self.lm.decode(
                    self.prompt), "text": self.text, "path": path(self.tokens, self.logprobs),
                "branches": [path(t, lp) for t, lp in self.branches],
                "candidates": self.candidates(), "logprob": self.logprob}


def stepper_figure(snap: dict) -> go.Figure:
    """Left: cumulative log p_theta of the path (saved branches dashed).  Right: the next-token
    candidates, p_theta and q after the adapters (grey where an adapter removed the token)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.1,
                        subplot_titles=("cumulative log p_θ(y≤t | x)", "next token"))
    for i, b in enumerate(snap["branches"]):
        fig.add_scatter(x=list(range(len(b["cum"]))), y=b["cum"], mode="lines+markers",
                        text=["(prompt)"] + b["labels"], name=f"branch {i}",
                        line=dict(dash="dash", color=MUTED), row=1, col=1,
                        hovertemplate="%{text}: %{y:.3f}<extra></extra>")
    p = snap["path"]
    fig.add_scatter(x=list(range(len(p["cum"]))), y=p["cum"], mode="lines+markers+text",
                    text=["(prompt)"] + p["labels"], textposition="top center", name="path",
                    line=dict(color=NEUTRAL), row=1, col=1,
                    hovertemplate="%{text}: %{y:.3f}<extra></extra>")
    c = snap["candidates"]
    labels = c["labels"][::-1]
    fig.add_bar(y=labels, x=c["p"][::-1], orientation="h", name="p_θ",
                marker_color=[GOOD if k else MUTED for k in c["kept"][::-1]], row=1, col=2,
                customdata=c["ids"][::-1], hovertemplate="%{y}: p_θ = %{x:.4f}<extra></extra>")
    fig.add_bar(y=labels, x=c["q"][::-1], orientation="h", name="q (adapted)",
                marker_color=PALETTE[1], row=1, col=2, customdata=c["ids"][::-1],
                hovertemplate="%{y}: q = %{x:.4f}<extra></extra>")
    fig.update_layout(
        title=f"{snap['prompt']!r} + {snap['text']!r}  (log p_θ = {snap['logprob']:.3f})",
        height=400, barmode="group", showlegend=True)
    fig.update_xaxes(title_text="step t", row=1, col=1)
    fig.update_yaxes(type="category", row=1, col=2)
    return fig


class Stepper:
    """Buttons: sample, greedy, rewind, branch; click a candidate bar to choose that token.
    `Stepper.replay(trace)` steps along a recorded run instead, without the model."""

    def __init__(self, lm, prompt="Story:", adapters=None, seed=0, top: int = 12):
        self.session = StepSession(lm, prompt, adapters, seed, top)
        s = self.session
        self._build({"sample": s.sample, "greedy": s.greedy, "rewind": s.rewind,
                     "branch": s.branch})

    @classmethod
    def replay(cls, trace, tokenizer=None, run: int = 0, row: int = 0,
               prompt: str | None = None, top: int = 12):
        """Step along row ``row`` of token-loop run ``run`` recorded in ``trace`` (its ``step``
        events: the token taken, its log p_θ and the top candidates of p_θ and of q), shown with
        ``tokenizer`` (default: the loaded trace's).  The prompt is not recorded: pass it to
        show it.  Forward and rewind follow the recorded path; sampling anew, greedy and
        choosing another token would need the model, so they are off."""
        import ipywidgets as W
        from .replay import RecordedSession, note, recorded_steps, tokenizer_of
        view = cls.__new__(cls)
        view.session = RecordedSession(recorded_steps(trace, run, row),
                                       tokenizer_of(trace, tokenizer), prompt, top)
        s = view.session
        view._build({"forward": s.forward, "rewind": s.rewind}, note(W, (
            f"<b>forward</b> and <b>rewind</b> move along the recorded path of "
            f"{len(s.steps)} tokens; the bars are the top candidates recorded at each step. "
            "Sampling anew, greedy, branching and choosing a token the recording did not take "
            "need the model: those controls are off, and clicking another bar only says so.")))
        return view

    def _build(self, moves: dict, *top):
        import ipywidgets as W
        self.buttons = {n: W.Button(description=n, layout=W.Layout(width="90px")) for n in moves}
        for name, move in moves.items():
            self.buttons[name].on_click(lambda _, move=move: self._do(move))
        self.branch_pick = W.Dropdown(options=[], description="go to")
        self.branch_pick.observe(self._go, names="value")
        self.branch_pick.layout.display = None if "branch" in moves else "none"
        self.fig = go.FigureWidget(stepper_figure(self.session.snapshot()))
        self.info = W.HTML()
        self.view = W.VBox([*top, W.HBox(list(self.buttons.values()) + [self.branch_pick]),
                            self.fig, self.info])
        self.redraw()

    def _do(self, move):
        try:
            move()
        except ValueError as err:      # a replayed run's end, or a token it did not take
            self.redraw()
            self.info.value += f"<br><b>{err}</b>"
            return
        self.redraw()

    def _go(self, change):
        if change["new"] is not None:
            self._do(lambda: self.session.switch(change["new"]))

    def _click(self, trace, points, state):
        if points.point_inds:
            self._do(lambda: self.session.choose(trace.customdata[points.point_inds[0]]))

    def redraw(self):
        new = stepper_figure(self.session.snapshot())
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.add_traces(list(new.data))
            self.fig.layout.title = new.layout.title
        for tr in self.fig.data[-2:]:
            tr.on_click(self._click)
        self.branch_pick.unobserve(self._go, names="value")
        self.branch_pick.options = [(f"branch {i}", i) for i in range(len(self.session.branches))]
        self.branch_pick.value = None
        self.branch_pick.observe(self._go, names="value")
        s = self.session
        self.info.value = f"<b>{len(s.tokens)}</b> tokens, log p_θ = {s.logprob:.3f}; " + (
            f"cost so far: {s.cost.forward_passes} forward passes, {s.cost.computed_tokens} "
            "computed tokens" if hasattr(s, "cost") else
            f"{len(s.steps)} recorded; no forward passes (replayed)")

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)
