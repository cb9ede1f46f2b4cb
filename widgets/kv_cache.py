"""Views of the KV cache (survey §7.2, eqs. 55-56): what it holds, what it costs, what it saves.

* `cache_grid_figure(gen, step)` draws the cache after a step of `efficiency.timed_greedy`: one
  row per layer, one cell per cached position (keys and values of every KV head), prompt
  positions written by the prefill apart from positions written one per decoding step.
* `timeline_figure(gen, ...)` draws milliseconds per forward pass: one prefill, then flat
  decoding steps with the cache; steadily growing steps when every step recomputes.
* `cache_sizes_figure(rows)` compares MHA / GQA / MQA cache sizes (`efficiency.attention_variants`).
* `KVCacheView` steps through a generation with a slider.
"""
from __future__ import annotations

import plotly.graph_objects as go

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def cache_grid(gen, step: int) -> dict:
    """Cells of the cache after forward pass ``step``: ``{"layers", "positions", "written"}``
    where ``written[p]`` is ``"prefill"`` or the decoding step that wrote position ``p``."""
    timeline = gen.info["timeline"]
    if not 0 <= step < len(timeline):
        raise ValueError(f"step must be in [0, {len(timeline) - 1}], got {step}")
    written = []
    for i, e in enumerate(timeline[:step + 1]):
        written += ["prefill" if e["kind"] == "prefill" else i] * (e["cache_tokens"] - len(written))
    return {"layers": gen.info["layers"], "positions": len(written), "written": written,
            "bytes": timeline[step]["cache_bytes"], "kv_heads": gen.info["kv_heads"],
            "head_dim": gen.info["head_dim"]}


def cache_grid_figure(gen, step: int | None = None, height: int = 300) -> go.Figure:
    """The cache after ``step`` (default: the last): layers x positions; the newest column red."""
    if not gen.info.get("use_cache", True):
        raise ValueError("this generation recomputed every step: it kept no cache to draw")
    step = len(gen.info["timeline"]) - 1 if step is None else step
    g = cache_grid(gen, step)
    codes = [0 if w == "prefill" else (2 if w == step else 1) for w in g["written"]]
    z = [codes for _ in range(g["layers"])]
    hover = [[f"layer {layer}, position {p}<br>written by "
              f"{'prefill' if w == 'prefill' else f'decoding step {w}'}"
              for p, w in enumerate(g["written"])] for layer in range(g["layers"])]
    scale = [[0, MUTED], [0.33, MUTED], [0.33, NEUTRAL], [0.66, NEUTRAL], [0.66, BAD], [1, BAD]]
    fig = figure(f"KV cache after step {step}: {g['positions']} positions x {g['layers']} layers "
                 f"x {g['kv_heads']} KV heads x {g['head_dim']} dims x 2 (K, V) = "
                 f"{_mib(g['bytes'])}", height=height)
    fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=2, colorscale=scale, showscale=False, xgap=1,
                             ygap=1, text=hover, hoverinfo="text"))
    fig.update_layout(xaxis=dict(title="cached position (grey: prefill, blue: decoding, red: "
                                     "newest)", showgrid=False, zeroline=False),
                      yaxis=dict(title="layer", showgrid=False, zeroline=False),
                      title_font_size=13)
    return fig


def timeline_figure(gen, no_cache=None, height: int = 340) -> go.Figure:
    """Milliseconds per forward pass; with ``no_cache`` (a ``use_cache=False`` run) beside it."""
    fig = figure("Time per forward pass: prefill, then decoding", height=height)
    for g, name, color in ((gen, "with KV cache", NEUTRAL), (no_cache, "recomputing", BAD)):
        if g is None:
            continue
        tl = g.info["timeline"]
        fig.add_trace(go.Scatter(
            x=list(range(len(tl))), y=[1000 * e["seconds"] for e in tl], mode="lines+markers",
            name=name, line=dict(color=color), marker=dict(size=4),
            customdata=[[e["kind"], e["computed"]] for e in tl],
            hovertemplate="step %{x}: %{y:.2f} ms<br>%{customdata[0]}, %{customdata[1]} "
                          "positions computed<extra></extra>"))
    first = gen.info["timeline"][0]
    if first["kind"] == "prefill":
        fig.add_annotation(x=0, y=1000 * first["seconds"], text=f"prefill ({first['computed']} "
                           "tokens)", showarrow=True, arrowhead=2, ax=40, ay=-30)
    fig.update_layout(xaxis_title="generated token", yaxis_title="ms per forward pass",
                      legend=dict(orientation="h", y=1.12))
    return fig


def cache_sizes_figure(rows, height: int = 300) -> go.Figure:
    """Cache size per attention variant, from `efficiency.attention_variants`."""
    fig = figure("KV cache size: multi-head, grouped-query, multi-query attention", height=height)
    colors = {"MHA": PALETTE[0], "GQA": PALETTE[1], "MQA": GOOD}
    fig.add_trace(go.Bar(
        x=[f"{r['kind']} ({r['kv_heads']} KV heads)" for r in rows],
        y=[r["cache_bytes"] / 2**20 for r in rows],
        marker_color=[colors[r["kind"]] for r in rows],
        text=[_mib(r["cache_bytes"]) for r in rows], textposition="outside", cliponaxis=False))
    fig.update_layout(yaxis_title="MiB", showlegend=False)
    return fig


class KVCacheView:
    """Step through a `timed_greedy` generation: the cache grid and the per-step timeline."""

    def __init__(self, gen, no_cache=None, tokenizer=None):
        import ipywidgets as w
        self.gen, self.tokenizer = gen, tokenizer
        n = len(gen.info["timeline"])
        self.grid = go.FigureWidget(cache_grid_figure(gen, 0))
        self.timeline = go.FigureWidget(timeline_figure(gen, no_cache))
        self.slider = w.IntSlider(min=0, max=n - 1, value=0, description="step",
                                  continuous_update=False)
        self.detail = w.HTML()
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = w.VBox([self.slider, self.detail, self.grid, self.timeline])
        self.show(0)

    def show(self, step: int):
        fig = cache_grid_figure(self.gen, step)
        e = self.gen.info["timeline"][step]
        with self.grid.batch_update():
            self.grid.data[0].z = fig.data[0].z
            self.grid.data[0].text = fig.data[0].text
            self.grid.layout.title = fig.layout.title
            self.timeline.layout.shapes = [dict(type="line", x0=step, x1=step, y0=0, y1=1,
                                                yref="paper", line=dict(color=BAD, dash="dot"))]
        token = self.gen.token_ids[step]
        text = repr(self.tokenizer.decode([token])) if self.tokenizer is not None else token
        self.detail.value = (f"step {step} ({e['kind']}): computed {e['computed']} positions in "
                             f"{1000 * e['seconds']:.2f} ms, chose {text}; cache holds "
                             f"{e['cache_tokens']} positions, {_mib(e['cache_bytes'])}")

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
