"""Distribution explorer (survey §3.2-3.3, Table 2): the model's next-token distribution p_theta
and, live, the distribution q after the sampling adapters, with the removed tokens marked, the
entropy and the kept mass; for a TinyWorld grammar prompt the true p* beside them.

`make_adapters(settings)` turns ``{"top_k": 20, "temperature": 0.7, ...}`` into the adapter list
(applied in Hugging Face's order); `distribution_data` and `distribution_figure` are pure;
`DistributionExplorer` is the interactive view (a prompt box and one slider per adapter).
"""
from __future__ import annotations

import time
from functools import partial

import numpy as np
import plotly.graph_objects as go
import torch

from workbench import adapters as A

from .style import GOOD, MUTED, NEUTRAL, PALETTE, figure

ORDER = ("temperature", "top_k", "top_p", "min_p", "typical", "epsilon", "eta")
PARAM = {"temperature": "tau", "top_k": "k", "top_p": "p", "min_p": "p", "typical": "mass",
         "epsilon": "eps", "eta": "eps"}
DEFAULTS = {"temperature": 0.7, "top_k": 20, "top_p": 0.9, "min_p": 0.05, "typical": 0.9,
            "epsilon": 3e-4, "eta": 3e-4}


def make_adapters(settings: dict) -> list:
    """``{name: value or None}`` -> ``[partial(adapters.<name>, <param>=value), ...]`` in the
    order temperature, top_k, top_p, min_p, typical, epsilon, eta (as HF applies them)."""
    unknown = set(settings) - set(ORDER)
    if unknown:
        raise ValueError(f"unknown adapter(s) {sorted(unknown)}; use {ORDER}")
    return [partial(getattr(A, name), **{PARAM[name]: settings[name]}) for name in ORDER
            if settings.get(name) is not None]


def token_labels(tokenizer, ids) -> list:
    """Readable, unique labels: ␣ for a space, ↵ for a newline, </s> for EOS."""
    out, seen = [], set()
    for t in ids:
        s = "</s>" if t == tokenizer.eos_token_id else tokenizer.decode([t])
        s = s.replace(" ", "␣").replace("\n", "↵") or "∅"
        if s in seen:
            s = f"{s}#{t}"
        seen.add(s)
        out.append(s)
    return out


_token_grammars: dict = {}


def true_next(lm, prompt: str):
    """p*(. | prompt) as a vector when the prompt is a prefix inside a TinyWorld grammar
    (stories, reviews), else None."""
    from workbench.tinyworld import worlds
    from workbench.tinyworld.grammar import TokenGrammar
    for g in (worlds.story_grammar(), worlds.review_grammar()):
        if isinstance(prompt, str) and prompt.startswith(g.prompt):
            key = (g.name, id(lm.tokenizer))
            if key not in _token_grammars:
                _token_grammars[key] = TokenGrammar(g, lm.tokenizer)
            try:
                return _token_grammars[key].next_token_vector(lm.encode(prompt), lm.vocab_size)
            except ValueError:        # not a canonical prefix: p* = 0
                return None
    return None


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def shown_tokens(p: np.ndarray, p_star=None, top: int = 20) -> list:
    """The tokens to draw: the ``top`` most probable under p_theta, plus p*'s most probable."""
    ids = list(np.argsort(-p, kind="stable")[:top])
    if p_star is not None:
        ids += [t for t in np.argsort(-p_star, kind="stable")[:top // 2]
                if p_star[t] > 0 and t not in ids]
    return sorted(ids, key=lambda t: -p[t])


def distribution_data(logits: torch.Tensor, settings: dict, ids: list, labels: list,
                      p_star=None) -> dict:
    """Everything the explorer draws for one setting of the adapters.

    ``logits`` is the (V,) next-token logits; ``ids``/``labels`` the tokens to draw.  Returns
    p_theta and q (after the adapters) for those tokens, which tokens were kept, and over the
    whole vocabulary: the number kept, the p_theta mass kept, H(p_theta), H(q) in nats and, with
    ``p_star``, the p* mass kept.
    """
    adapted = A.chain(make_adapters(settings))(logits.view(1, -1))[0]
    p = torch.softmax(logits.double(), -1).numpy()
    q = torch.softmax(adapted.double(), -1).numpy()
    kept = torch.isfinite(adapted).numpy()
    out = {"ids": list(ids), "labels": list(labels), "p": p[ids].tolist(), "q": q[ids].tolist(),
           "kept": kept[ids].tolist(), "n_kept": int(kept.sum()), "vocab": int(kept.size),
           "kept_mass": float(p[kept].sum()), "entropy_p": _entropy(p), "entropy_q": _entropy(q),
           "p_star": None, "p_star_kept": None, "settings": dict(settings)}
    if p_star is not None:
        out["p_star"] = [float(p_star[t]) for t in ids]
        out["p_star_kept"] = float(p_star[kept].sum())
    return out


def _title(d: dict) -> str:
    if d.get("recorded"):
        return (f"top {len(d['ids'])} tokens recorded · their p_θ mass {sum(d['p']):.3f} · "
                "entropies and kept counts need the whole distribution")
    s = (f"{d['n_kept']} of {d['vocab']} tokens kept · p_θ mass kept {d['kept_mass']:.3f} · "
         f"H(p_θ) {d['entropy_p']:.2f} → H(q) {d['entropy_q']:.2f} nats")
    if d["p_star_kept"] is not None:
        s += f" · p* mass kept {d['p_star_kept']:.3f}"
    return s


def _styles(d: dict) -> dict:
    return {"colors": [NEUTRAL if k else MUTED for k in d["kept"]],
            "marks": ["" if k else "✕" for k in d["kept"]]}


def distribution_figure(d: dict, prompt: str | None = None) -> go.Figure:
    """Bars of p_theta (grey and ✕ where an adapter removed the token), q after the adapters,
    and diamonds for the true p* when known."""
    st = _styles(d)
    fig = figure(_title(d), height=380, barmode="group", yaxis_title="probability",
                 xaxis=dict(type="category", tickangle=-45))
    fig.add_bar(x=d["labels"], y=d["p"], name="p_θ (model)", marker_color=st["colors"],
                text=st["marks"], textposition="outside",
                hovertemplate="%{x}: p_θ = %{y:.4f}<extra></extra>")
    fig.add_bar(x=d["labels"], y=d["q"], name="q (after adapters)", marker_color=PALETTE[1],
                hovertemplate="%{x}: q = %{y:.4f}<extra></extra>")
    fig.add_scatter(x=d["labels"], y=d["p_star"] or [0] * len(d["labels"]), mode="markers",
                    name="p* (true)", marker=dict(symbol="diamond", size=9, color=GOOD),
                    visible=d["p_star"] is not None,
                    hovertemplate="%{x}: p* = %{y:.4f}<extra></extra>")
    if prompt is not None:
        fig.update_layout(title_text=f"Next token after {prompt!r}<br><sub>{_title(d)}</sub>")
    return fig


class DistributionExplorer:
    """A prompt, one checkbox + slider per adapter; bars update as the sliders move.
    `DistributionExplorer.replay(trace)` shows the recorded steps of a run instead."""

    def __init__(self, lm, prompt: str = "Story: The", top: int = 20, settings=None):
        import ipywidgets as W
        self.lm, self.top = lm, top
        settings = dict(settings or {})
        self.prompt = W.Text(value=prompt, description="prompt", continuous_update=False,
                             layout=W.Layout(width="420px"))
        self.on, self.value = {}, {}
        rows = []
        for name in ORDER:
            v = settings.get(name)
            self.on[name] = W.Checkbox(value=v is not None, description=name, indent=False,
                                       layout=W.Layout(width="110px"))
            self.value[name] = _slider(W, name, DEFAULTS[name] if v is None else v)
            rows.append(W.HBox([self.on[name], self.value[name]]))
        self.info = W.HTML()
        self._load(prompt)
        self.fig = go.FigureWidget(distribution_figure(self.data(), prompt))
        self.prompt.observe(lambda ch: self.set_prompt(ch["new"]), names="value")
        for name in ORDER:
            self.on[name].observe(lambda _: self.redraw(), names="value")
            self.value[name].observe(lambda _: self.redraw(), names="value")
        self.view = W.VBox([self.prompt, W.HBox([W.VBox(rows[:4]), W.VBox(rows[4:])]),
                            self.fig, self.info])
        self.redraw()

    @classmethod
    def replay(cls, trace, tokenizer=None, run: int = 0, row: int = 0, t: int = 0,
               prompt: str | None = None, top: int = 20):
        """The next-token candidates recorded at step ``t`` of row ``row`` of token-loop run
        ``run`` in ``trace`` (a ``step`` event's top pairs of p_θ, and of q when the run used
        adapters), with a slider over the run's steps.  Only the top-k was recorded, so the
        adapters cannot be re-applied (that needs the whole distribution): their controls are
        hidden, and a note says so.  ``prompt`` (not recorded) is shown when given."""
        import ipywidgets as W
        from .replay import note, pick, recorded_steps, tokenizer_of
        view = cls.__new__(cls)
        view.lm, view.top, view.p_star = None, top, None
        view.steps = recorded_steps(trace, run, row)
        pick(view.steps, t, "t", "steps in that run")
        view.tokenizer, view.recorded_prompt = tokenizer_of(trace, tokenizer), prompt
        view.step = W.IntSlider(value=0, min=0, max=len(view.steps) - 1, description="step t")
        view.prompt = W.Text(description="prefix", disabled=True, layout=W.Layout(width="420px"))
        view.fig = go.FigureWidget()
        view.info = W.HTML()
        view.step.observe(lambda ch: view._show_recorded(ch["new"]), names="value")
        view.view = W.VBox([note(W, (
            f"The bars are the top {len(view.steps[0]['top'])} candidates recorded at each "
            "step: p_θ, and q after the adapters the run used (q = p_θ when it used none). "
            "Moving an adapter needs the whole distribution, of which only the top was "
            "recorded, so the adapter controls are off.")), W.HBox([view.step, view.prompt]),
            view.fig, view.info])
        view.step.value = t
        view._show_recorded(t)
        return view

    def _show_recorded(self, t: int):
        """Draw the candidates recorded at step ``t`` of the replayed run."""
        from .replay import recorded_candidates
        e = self.steps[t]
        d = {**recorded_candidates(e, self.tokenizer, self.top), "recorded": True,
             "p_star": None, "p_star_kept": None, "settings": {}}
        before = [s["token"] for s in self.steps[:t]]
        text = (self.tokenizer.decode(before) if self.tokenizer is not None else str(before))
        self.prompt.value = (self.recorded_prompt or "…") + text
        new = distribution_figure(d, self.prompt.value)
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.add_traces(list(new.data))
            self.fig.layout = new.layout
        taken = (d["labels"][d["ids"].index(e["token"])] if e["token"] in d["ids"]
                 else f"{e['token']} (outside the recorded top)")
        self.info.value = (f"step {t} of {len(self.steps)}: the run took <code>{taken}</code>, "
                           f"log p_θ = {e['logprob']:.3f}")
        self.last = d
        return d

    def settings(self) -> dict:
        return {n: self.value[n].value for n in ORDER if self.on[n].value}

    def _load(self, prompt: str):
        self.logits = self.lm.next_logits(prompt)[0].float().cpu()
        self.p_star = true_next(self.lm, prompt)
        p = torch.softmax(self.logits.double(), -1).numpy()
        self.ids = shown_tokens(p, self.p_star, self.top)
        self.labels = token_labels(self.lm.tokenizer, self.ids)

    def data(self) -> dict:
        return distribution_data(self.logits, self.settings(), self.ids, self.labels, self.p_star)

    def set_prompt(self, prompt: str):
        self._load(prompt)
        new = distribution_figure(self.data(), prompt)
        with self.fig.batch_update():
            for old, tr in zip(self.fig.data, new.data):
                old.update(tr.to_plotly_json())
            self.fig.layout.title = new.layout.title
        self.redraw()

    def redraw(self):
        """Recompute q from the cached logits and update the bars in place."""
        d = self.data()
        st = _styles(d)
        with self.fig.batch_update():
            bars_p, bars_q, star = self.fig.data
            bars_p.marker.color, bars_p.text = st["colors"], st["marks"]
            bars_q.y = d["q"]
            self.fig.layout.title.text = (f"Next token after {self.prompt.value!r}"
                                          f"<br><sub>{_title(d)}</sub>")
        adapters = ", ".join(A.describe(a) for a in make_adapters(d["settings"])) or "none"
        self.info.value = f"adapters, in order: <code>{adapters}</code>"
        self.last = d
        return d

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)


def _slider(W, name, value):
    kw = dict(description=PARAM[name], continuous_update=True, layout=W.Layout(width="300px"))
    if name == "top_k":
        return W.IntSlider(value=int(value), min=1, max=200, **kw)
    if name in ("epsilon", "eta"):
        return W.FloatLogSlider(value=value, base=10, min=-6, max=-0.5, step=0.1,
                                readout_format=".1e", **kw)
    lo, hi = {"temperature": (0.05, 3.0), "top_p": (0.01, 1.0), "min_p": (0.0, 1.0),
              "typical": (0.01, 0.99)}[name]
    return W.FloatSlider(value=value, min=lo, max=hi, step=0.01, **kw)


def redraw_times(lm, prompt: str = "Story: The", n: int = 20, seed: int = 0) -> list:
    """Seconds from a slider move to the updated figure, for ``n`` random moves (the figure
    update in Python; the browser's repaint is not included)."""
    rng = np.random.default_rng(seed)
    ex = DistributionExplorer(lm, prompt, settings={"temperature": 1.0, "top_p": 0.9})
    times = []
    for i in range(n):
        name = ORDER[i % len(ORDER)]
        s = ex.value[name]
        new = (float(10 ** rng.uniform(s.min, s.max)) if name in ("epsilon", "eta")
               else type(s.value)(rng.uniform(s.min, s.max)))
        t0 = time.perf_counter()
        if not ex.on[name].value:
            ex.on[name].value = True          # a checkbox is a move too
        else:
            s.value = new
        times.append(time.perf_counter() - t0)
    return times


__all__ = ["make_adapters", "true_next", "shown_tokens", "token_labels", "distribution_data",
           "distribution_figure", "DistributionExplorer", "redraw_times", "ORDER", "DEFAULTS"]
