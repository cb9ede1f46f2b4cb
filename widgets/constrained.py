"""Views of constrained decoding (survey §3.5): the token mask step by step, and token healing.

* `constrained_steps(events, tokenizer)` reads a trace of `workbench.constraints.generate`
  (its ``mask`` and ``forced`` events) into one record per step; `mask_figure` draws how many
  tokens each automaton state allowed, forced steps (no forward pass needed) apart.
* `healing_rows(data)` / `healing_figure(data)` draw the tokens without and with token healing
  from `constraints.compare_healing` or `constraints.template_tokens` (survey Figure 3).
* `conditional_figure(labels, sampled, exact)` compares samplers' output frequencies with exact
  distributions (e.g. constrained decoding against the true conditional p(y | y valid)).
* `ConstrainedView` and `HealingView` are the interactive versions (ipywidgets + FigureWidget).
"""
from __future__ import annotations

import plotly.graph_objects as go

from workbench.trace import as_events

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure


def _show(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵") or "∅"


def constrained_steps(events, tokenizer=None) -> list:
    """One record per decoding step of a constrained generation trace.

    Each record: ``t``, ``state`` (automaton state), ``forced``, ``token``, ``text`` (the token's
    text when a tokenizer is given), ``n_allowed`` and ``allowed`` (the traced sample of allowed
    token ids).  Only events with a step index ``t`` from ``generate`` are read.
    """
    steps = []
    for e in as_events(events):
        if e.get("source") != "constrained" or "t" not in e or e["kind"] not in ("mask",
                                                                                 "forced"):
            continue
        forced = e["kind"] == "forced"
        steps.append({"t": e["t"], "state": e.get("state"), "forced": forced,
                      "token": e["token"], "n_allowed": 1 if forced else e["n_allowed"],
                      "allowed": [e["token"]] if forced else (e.get("allowed") or [])})
    steps.sort(key=lambda s: s["t"])
    if tokenizer is not None:
        for s in steps:
            s["text"] = tokenizer.decode([s["token"]])
            s["allowed_text"] = [tokenizer.decode([i]) for i in s["allowed"]]
    return steps


def mask_figure(steps, title: str = "Allowed tokens per step", height: int = 360) -> go.Figure:
    """Bars: tokens allowed at each step (log scale); green steps were forced (fast-forward)."""
    fig = figure(title, height=height)
    for forced, name, color in ((False, "model chooses", NEUTRAL),
                                (True, "forced: no forward pass", GOOD)):
        rows = [s for s in steps if s["forced"] == forced]
        fig.add_trace(go.Bar(
            x=[s["t"] for s in rows], y=[s["n_allowed"] for s in rows], name=name,
            marker_color=color, text=[_show(s.get("text", str(s["token"]))) for s in rows],
            textposition="outside", cliponaxis=False,
            customdata=[[s["state"], ", ".join(_show(a) for a in s.get("allowed_text", [])[:8])]
                        for s in rows],
            hovertemplate="step %{x}<br>state %{customdata[0]}<br>%{y} allowed<br>"
                          "chose %{text}<br>e.g. %{customdata[1]}<extra></extra>"))
    fig.update_layout(barmode="overlay", xaxis_title="step", yaxis_title="allowed tokens",
                      yaxis_type="log")
    return fig


def healing_rows(data: dict) -> dict:
    """``{"without": [(text, role)], "with": [...]}`` with roles prompt / boundary / healed /
    generated, from `compare_healing` (generation) or `template_tokens` (tokenization only)."""
    k = data.get("rolled_back", 0)
    if isinstance(data["without"], dict):                      # compare_healing
        wo, wi = data["without"], data["with"]
        p = wo["prompt_tokens"]
        without = [(t, "prompt") for t in p[:len(p) - k]] + \
            [(t, "boundary") for t in p[len(p) - k:]]
        without += [(t, "generated") for t in wo["tokens"]]
        healed = wi["tokens"][:1]
        with_ = [(t, "prompt") for t in wi["prompt_tokens"]] + [(t, "healed") for t in healed]
        with_ += [(t, "generated") for t in wi["tokens"][1:]]
    else:                                                       # template_tokens
        kept = data["kept"]
        without = [(t, "prompt") for t in data["without"][:kept]]
        without += [(t, "boundary") for t in data["without"][kept:kept + k]]
        without += [(t, "generated") for t in data["without"][kept + k:]]
        with_ = [(t, "prompt") for t in data["with"][:kept]] + \
            [(t, "healed") for t in data["with"][kept:kept + 1]] + \
            [(t, "generated") for t in data["with"][kept + 1:]]
    return {"without": without, "with": with_}


def healing_figure(data: dict, title: str | None = None, height: int = 260) -> go.Figure:
    """Token boxes without and with healing; the forced boundary in red, the healed token green."""
    rows = healing_rows(data)
    colors = {"prompt": MUTED, "boundary": BAD, "healed": GOOD, "generated": PALETTE[0]}
    fig = figure(title or f"Token healing: removed {data.get('removed', '')!r}", height=height)
    for role, color in colors.items():
        xs, bases, ys, texts = [], [], [], []
        for label in ("without", "with"):
            pos = 0
            for text, r in rows[label]:
                width = len(text) + 1
                if r == role:
                    xs.append(width)
                    bases.append(pos)
                    ys.append(f"{label} healing")
                    texts.append(_show(text))
                pos += width
        fig.add_trace(go.Bar(x=xs, base=bases, y=ys, orientation="h", name=role, text=texts,
                             textposition="inside", insidetextanchor="middle",
                             marker=dict(color=color, line=dict(width=1, color="white")),
                             hovertemplate="%{text}<extra>" + role + "</extra>"))
    fig.update_layout(barmode="overlay", xaxis=dict(visible=False),
                      yaxis=dict(categoryorder="array",
                                 categoryarray=["with healing", "without healing"]))
    return fig


def conditional_figure(labels, sampled: dict, exact: dict | None = None,
                       title: str = "Which outputs each sampler produces", height: int = 360,
                       xaxis: str | None = None) -> go.Figure:
    """Bars: the frequency of each label among each sampler's outputs (``{name: [freq, ...]}``);
    markers: exact distributions over the same labels (``{name: [prob, ...]}``)."""
    fig = figure(title, height=height, xaxis=dict(type="category", title=xaxis),
                 yaxis_title="probability", barmode="group")
    for i, (name, freq) in enumerate(sampled.items()):
        fig.add_bar(x=[str(x) for x in labels], y=[float(v) for v in freq], name=name,
                    marker_color=[NEUTRAL, PALETTE[1], PALETTE[4]][i % 3],
                    hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>")
    for i, (name, probs) in enumerate((exact or {}).items()):
        fig.add_scatter(x=[str(x) for x in labels], y=[float(v) for v in probs], name=name,
                        mode="markers", marker=dict(color=[GOOD, BAD, MUTED][i % 3], size=14,
                                                    symbol="line-ew-open", line_width=3),
                        hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>")
    return fig


class ConstrainedView:
    """Run a constrained generation and step through its masks (slider -> allowed tokens);
    `ConstrainedView.replay(trace)` opens a recorded run instead, without the model."""

    def __init__(self, lm, prompt: str, constraint, seed: int = 0, max_new_tokens: int = 64,
                 **kwargs):
        import workbench as wb
        from workbench.constraints import generate
        with wb.trace() as t:
            self.result = generate(lm, prompt, constraint, seed=seed,
                                   max_new_tokens=max_new_tokens, **kwargs)
        self._show_steps(constrained_steps(t.events, lm.tokenizer),
                         f"<b>{self.result.text!r}</b><br>{self.result.cost} · passes saved by "
                         f"fast-forward: {self.result.info['passes_saved']}")

    @classmethod
    def replay(cls, trace, tokenizer=None):
        """The view of a run recorded in ``trace`` (live, or loaded with `workbench.trace.load`,
        whose tokenizer shows the tokens)."""
        view = cls.__new__(cls)
        view.result = None
        steps = constrained_steps(trace, tokenizer or getattr(trace, "tokenizer", None))
        text = "".join(s.get("text", "") for s in steps)
        view._show_steps(steps, f"<b>{text!r}</b><br>{len(steps)} steps, "
                                f"{sum(s['forced'] for s in steps)} forced (replayed from a trace)")
        return view

    def _show_steps(self, steps, summary: str):
        import ipywidgets as w
        self.steps = steps
        self.figure = go.FigureWidget(mask_figure(self.steps))
        self.slider = w.IntSlider(min=0, max=max(len(self.steps) - 1, 0), description="step")
        self.detail = w.HTML()
        self.slider.observe(lambda change: self._update(), names="value")
        self.widget = w.VBox([w.HTML(summary), self.figure, self.slider, self.detail])
        self._update()

    def _update(self):
        if not self.steps:
            self.detail.value = "no steps"
            return
        s = self.steps[self.slider.value]
        allowed = " ".join(f"<code>{_show(a)}</code>" for a in s.get("allowed_text", []))
        kind = "forced (no forward pass)" if s["forced"] else "chosen by the model"
        shown = _show(s.get("text", str(s["token"])))
        self.detail.value = (f"state {s['state']}: {s['n_allowed']} allowed; "
                             f"<code>{shown}</code> {kind}<br>{allowed}")
        with self.figure.batch_update():
            self.figure.layout.shapes = [dict(type="line", x0=s["t"], x1=s["t"], y0=0, y1=1,
                                              yref="paper", line=dict(color=BAD, dash="dot"))]

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


class HealingView:
    """Type a prompt; see the tokens the model gets and writes without and with healing.
    `HealingView.replay(trace)` opens a recorded comparison instead, without the model."""

    def __init__(self, lm, prompt: str = "Story: An unnatural token", max_new_tokens: int = 6):
        import ipywidgets as w
        self.lm = lm
        self.text = w.Text(value=prompt, description="prompt")
        self.tokens = w.IntSlider(value=max_new_tokens, min=1, max=30, description="new tokens")
        self.button = w.Button(description="generate")
        self.figure = go.FigureWidget(figure(height=260))
        self.info = w.HTML()
        self.button.on_click(lambda _: self.update())
        self.widget = w.VBox([w.HBox([self.text, self.tokens, self.button]), self.figure,
                              self.info])
        self.update()

    @classmethod
    def replay(cls, trace, run: int = -1):
        """The ``run``-th comparison recorded in ``trace`` (its ``healing_compare`` events; the
        last by default).  Another prompt or length needs the model: those controls show the
        recorded ones, disabled."""
        import ipywidgets as w
        from .replay import freeze, needed, note, pick
        events = needed(trace, "healing_compare", "a constraints.compare_healing run")
        e = pick(events, run, "run", "healing comparisons")
        view = cls.__new__(cls)
        view.lm = None
        view.text = w.Text(value=e["prompt"], description="prompt")
        n = max(len(e["without"]["tokens"]), 1)
        view.tokens = w.IntSlider(value=n, min=1, max=max(n, 30), description="new tokens")
        view.button = w.Button(description="generate")
        freeze(view.text, view.tokens, view.button)
        view.figure, view.info = go.FigureWidget(figure(height=260)), w.HTML()
        view.widget = w.VBox([note(w, "Another prompt or length needs the model."),
                              w.HBox([view.text, view.tokens, view.button]), view.figure,
                              view.info])
        view.show({k: e[k] for k in ("prompt", "removed", "rolled_back", "without", "with")})
        return view

    def update(self):
        from workbench.constraints import compare_healing
        return self.show(compare_healing(self.lm, self.text.value,
                                         max_new_tokens=self.tokens.value))

    def show(self, data: dict) -> dict:
        """Draw one comparison (`compare_healing`'s result, or a recorded one)."""
        fig = healing_figure(data)
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(fig.data)
            self.figure.layout = fig.layout
        self.info.value = (f"without: <code>{data['without']['text']!r}</code><br>"
                           f"with: <code>{data['with']['text']!r}</code>")
        return data

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
