"""Views of the KV cache (survey §7.2, eqs. 55-56): what it holds, what it costs, what it saves.

* `cache_grid_figure(gen, step)` draws the cache after a step of `efficiency.timed_greedy`: one
  row per layer, one cell per cached position (keys and values of every KV head), prompt
  positions written by the prefill apart from positions written one per decoding step.
* `timeline_figure(gen, ...)` draws milliseconds per forward pass: one prefill, then flat
  decoding steps with the cache; steadily growing steps when every step recomputes.
* `cache_sizes_figure(rows)` compares MHA / GQA / MQA cache sizes (`efficiency.attention_variants`).
* `KVCacheView` steps through a generation with a slider.
* `roofline_figure(hw, rows)` draws the roofline min(P, W x intensity) of an accelerator with the
  forward passes of `efficiency.roofline_table` on it; `throughput_figure(rows)` tokens per
  second against batch size (`efficiency.throughput`); `timings_figure` and `ratios_figure` bar
  charts of measured milliseconds and of benchmark ratios against their targets;
  `grouped_bars_figure` grouped bars (e.g. tokens computed with and without sharing).
* `prefix_tree(cache)` / `prefix_tree_figure(cache, tokenizer)` draw the radix tree of an
  `efficiency.PrefixCache`: one node per stored edge, its tokens and how many there are.
"""
from __future__ import annotations

import math

import plotly.graph_objects as go

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure, wrap

FONT_DARK = "#666666"


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
    fig.update_layout(xaxis_title="generated token", yaxis_title="ms per forward pass")
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


def recorded_generation(events):
    """A `timed_greedy` generation's ``info`` and ``token_ids``, rebuilt from the ``kv_pass``
    events of one of its runs (what `KVCacheView` draws)."""
    from types import SimpleNamespace
    timeline = [{"kind": e["phase"], "seconds": e["seconds"], "computed": e["computed"],
                 "cache_tokens": e["cache_tokens"], "cache_bytes": e["cache_bytes"]}
                for e in events]
    info = {"timeline": timeline, "use_cache": events[0]["phase"] != "recompute",
            **events[0]["shape"]}
    return SimpleNamespace(info=info, token_ids=[e["token"] for e in events])


class KVCacheView:
    """Step through a `timed_greedy` generation: the cache grid and the per-step timeline.
    `KVCacheView.replay(trace)` opens a recorded one instead, without the model."""

    def __init__(self, gen, no_cache=None, tokenizer=None, *top):
        import ipywidgets as w
        self.gen, self.tokenizer = gen, tokenizer
        n = len(gen.info["timeline"])
        self.grid = go.FigureWidget(cache_grid_figure(gen, 0))
        self.timeline = go.FigureWidget(timeline_figure(gen, no_cache))
        self.slider = w.IntSlider(min=0, max=n - 1, value=0, description="step",
                                  continuous_update=False)
        self.detail = w.HTML()
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = w.VBox([*top, self.slider, self.detail, self.grid, self.timeline])
        self.show(0)

    @classmethod
    def replay(cls, trace, tokenizer=None, run: int = -1, no_cache: int | None = None):
        """Cached run ``run`` of `timed_greedy` recorded in ``trace`` (its ``kv_pass``
        events), with recompute run ``no_cache`` beside it on the timeline when given (None:
        none).  The times are the recording machine's; nothing here needs the model."""
        import ipywidgets as w
        from .replay import needed, note, pick, tokenizer_of
        events = needed(trace, "kv_pass", "an efficiency.timed_greedy run")
        runs = [[]]
        for e in events:
            runs += [[]] if e["step"] == 0 and runs[-1] else []
            runs[-1].append(e)
        cached = [r for r in runs if r[0]["phase"] != "recompute"]
        plain = [r for r in runs if r[0]["phase"] == "recompute"]
        gen = recorded_generation(pick(cached, run, "run", "timed_greedy runs with the cache"))
        other = (recorded_generation(pick(plain, no_cache, "no_cache", "recomputing runs"))
                 if no_cache is not None else None)
        return cls(gen, other, tokenizer_of(trace, tokenizer), note(w, (
            "The milliseconds were measured on the machine that recorded the run.")))

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


# -- roofline, batching, timings -------------------------------------------------------------
def roofline_figure(hardware, rows=(), extra=(), title: str | None = None,
                    height: int = 380) -> go.Figure:
    """The roofline of ``hardware`` (an `efficiency.Hardware`, or a list of them): attainable
    FLOP/s = min(peak, bandwidth x intensity), log-log, with the ridge point marked; ``rows``
    (from `efficiency.roofline_table` / `roofline`) are drawn at their intensity and the FLOP/s
    the bound allows.  ``extra``: more ``(label, intensity)`` points (e.g. eqs. 53-54)."""
    hws = list(hardware) if isinstance(hardware, (list, tuple)) else [hardware]
    fig = figure(title or f"Roofline: {hws[0].name}", height=height)
    xs = [10 ** (e / 10) for e in range(-10, 51)]
    for i, hw in enumerate(hws):
        fig.add_trace(go.Scatter(x=xs, y=[min(hw.flops, hw.bandwidth * x) / 1e12 for x in xs],
                                 mode="lines", name=hw.name,
                                 line=dict(color=[MUTED, PALETTE[7], PALETTE[5]][i % 3]
                                           if i else NEUTRAL, width=2)))
        fig.add_trace(go.Scatter(x=[hw.ridge], y=[hw.flops / 1e12], mode="markers",
                                 marker=dict(symbol="diamond", size=9, color=NEUTRAL),
                                 name=f"ridge {hw.ridge:.0f} FLOP/byte", showlegend=i == 0,
                                 hovertemplate="ridge point: %{x:.0f} FLOP/byte<extra></extra>"))
    hw = hws[0]
    for j, r in enumerate(rows):
        y = min(hw.flops, hw.bandwidth * r["intensity"]) / 1e12
        fig.add_trace(go.Scatter(
            x=[r["intensity"]], y=[y], mode="markers+text", text=[r["case"]],
            textposition="top left" if r["intensity"] > hw.ridge else "bottom right",
            marker=dict(size=11, color=BAD if r.get("bound") == "memory" else GOOD),
            name=r["case"], showlegend=False,
            hovertemplate=f"{r['case']}: %{{x:.1f}} FLOP/byte, {r.get('bound', '')}-bound"
                          "<extra></extra>"))
    for label, intensity in extra:
        y = min(hw.flops, hw.bandwidth * intensity) / 1e12
        fig.add_trace(go.Scatter(x=[intensity], y=[y], mode="markers+text", text=[label],
                                 textposition="bottom right", showlegend=False,
                                 marker=dict(size=9, symbol="x", color=PALETTE[4]),
                                 hovertemplate=f"{label}: %{{x:.2f}} FLOP/byte<extra></extra>"))
    fig.update_layout(xaxis=dict(type="log", title="arithmetic intensity (FLOP per byte moved)"),
                      yaxis=dict(type="log", title="attainable TFLOP/s"))
    return fig


def throughput_figure(rows, height: int = 340) -> go.Figure:
    """Tokens per second and milliseconds per decoding step against batch size
    (rows of `efficiency.throughput`)."""
    from plotly.subplots import make_subplots
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.update_layout(height=height, title=wrap("Batching: more sequences per step; the step grows "
                                                 "more slowly than the batch"))
    b = [r["batch"] for r in rows]
    fig.add_trace(go.Bar(x=[str(x) for x in b], y=[r["tokens_per_second"] for r in rows],
                         name="tokens / s", marker_color=NEUTRAL), secondary_y=False)
    fig.add_trace(go.Scatter(x=[str(x) for x in b], y=[r["ms_per_step"] for r in rows],
                             name="ms per decoding step", mode="lines+markers",
                             line=dict(color=PALETTE[1])), secondary_y=True)
    fig.update_xaxes(title_text="batch size (sequences decoded together)")
    fig.update_yaxes(title_text="tokens per second", secondary_y=False)
    fig.update_yaxes(title_text="ms per step", secondary_y=True, showgrid=False, rangemode="tozero")
    return fig


def timings_figure(values: dict, title: str = "Milliseconds per decoding step",
                   unit: str = "ms", height: int = 320) -> go.Figure:
    """A bar per ``{name: value}`` (e.g. ms per token of several implementations)."""
    fig = figure(title, height=height)
    names = list(values)
    fig.add_trace(go.Bar(x=names, y=[values[n] for n in names],
                         marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
                         text=[f"{values[n]:.2f} {unit}" for n in names], textposition="outside",
                         cliponaxis=False))
    fig.update_layout(yaxis_title=unit, showlegend=False)
    return fig


def ratios_figure(rows, title: str = "Measured speedups against their targets",
                  height: int = 360) -> go.Figure:
    """Horizontal bars of ``(name, ratio, target or None)``; a bar is green when it meets its
    target, red when it does not, grey when it has none; targets as ticks."""
    rows = list(rows)[::-1]
    fig = figure(title, height=max(height, 60 + 36 * len(rows)))
    colors = [MUTED if need is None else (GOOD if r >= need else BAD) for _, r, need in rows]
    fig.add_trace(go.Bar(y=[n for n, _, _ in rows], x=[r for _, r, _ in rows], orientation="h",
                         marker_color=colors, text=[f"{r:.2f}x" for _, r, _ in rows],
                         textposition="outside", cliponaxis=False, name="measured"))
    need = [(n, t) for n, _, t in rows if t is not None]
    if need:
        fig.add_trace(go.Scatter(y=[n for n, _ in need], x=[t for _, t in need], mode="markers",
                                 marker=dict(symbol="line-ns-open", size=22, color=FONT_DARK,
                                             line=dict(width=3)), name="target"))
    fig.add_vline(x=1, line=dict(color=BAD, width=1, dash="dot"))
    fig.update_layout(xaxis=dict(title="x faster", type="log"),
                      margin=dict(l=330, r=70))  # r: room for the last bar's label
    return fig



# -- the radix tree of a prefix cache ----------------------------------------------------------
def prefix_tree(cache, tokenizer=None) -> list:
    """Nodes of a `PrefixCache`'s radix tree, depth first: ``{"id", "parent", "depth",
    "tokens", "text", "stored", "prefix"}`` (``prefix``: tokens from the root to the node's
    end).  The root (id 0) holds nothing."""
    out, stack = [], [(cache.root, None, 0, 0)]
    while stack:
        node, parent, depth, before = stack.pop()
        i = len(out)
        text = (tokenizer.decode(list(node.tokens)) if tokenizer is not None
                else " ".join(map(str, node.tokens)))
        out.append({"id": i, "parent": parent, "depth": depth, "tokens": list(node.tokens),
                    "text": text, "stored": len(node.tokens), "prefix": before + len(node.tokens)})
        for tok in sorted(node.children, reverse=True):
            stack.append((node.children[tok], i, depth + 1, before + len(node.tokens)))
    return out


def _short(text: str, n: int = 18) -> str:
    t = text.replace("\n", "↵")
    return t if len(t) <= n else t[: n - 1] + "…"


def prefix_tree_figure(cache, tokenizer=None, title: str | None = None,
                       height: int = 420) -> go.Figure:
    """The radix tree: the root on the left, one node per stored edge (label: its text, size:
    its number of tokens), so shared prefixes appear once however many prompts use them."""
    nodes = prefix_tree(cache, tokenizer)
    kids = {n["id"]: [] for n in nodes}
    for n in nodes[1:]:
        kids[n["parent"]].append(n["id"])
    pos, nxt = {}, [0.0]

    def place(i):
        if not kids[i]:
            pos[i] = nxt[0]
            nxt[0] += 1
        else:
            for c in kids[i]:
                place(c)
            pos[i] = sum(pos[c] for c in kids[i]) / len(kids[i])
    place(0)
    fig = figure(title or f"Prefix cache: {cache.stored_tokens} tokens stored in "
                 f"{len(nodes) - 1} edges", height=height)
    ex, ey = [], []
    for n in nodes[1:]:
        p = nodes[n["parent"]]
        ex += [p["depth"], n["depth"], None]
        ey += [-pos[p["id"]], -pos[n["id"]], None]
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=MUTED, width=1.5),
                             hoverinfo="skip", showlegend=False))
    shown, depth = nodes[1:], max(n["depth"] for n in nodes)
    room = max(4, min(18, 84 // (depth + 2)))  # characters a depth column holds at 700 px
    fig.add_trace(go.Scatter(
        x=[n["depth"] for n in shown], y=[-pos[n["id"]] for n in shown], mode="markers+text",
        marker=dict(size=[8 + 3 * math.sqrt(n["stored"]) for n in shown],
                    color=[n["stored"] for n in shown], colorscale="Blues", cmin=0,
                    line=dict(color=NEUTRAL, width=1), showscale=False),
        text=[_short(n["text"], room) for n in shown], textposition="top center",
        customdata=[[n["stored"], n["prefix"], n["text"].replace("\n", "↵")] for n in shown],
        hovertemplate="%{customdata[1]} tokens from the root, %{customdata[0]} on this edge"
                      "<br>%{customdata[2]}<extra></extra>", showlegend=False))
    fig.add_trace(go.Scatter(x=[0], y=[-pos[0]], mode="markers+text", text=["root"],
                             textposition="middle left", marker=dict(size=10, color=BAD),
                             hoverinfo="skip", showlegend=False))
    fig.update_layout(xaxis=dict(title="edge depth in the radix tree", showgrid=False,
                                 zeroline=False, range=[-0.5, depth + 1.5], dtick=1),
                      yaxis=dict(visible=False))
    return fig


def grouped_bars_figure(rows, title: str = "Tokens computed", yaxis: str | None = None,
                        height: int = 340) -> go.Figure:
    """Grouped bars: for each ``{"name", <series>: value, ...}`` row, one bar per series
    (e.g. tokens computed without and with prefix sharing)."""
    rows = list(rows)
    series = [k for k in rows[0] if k != "name"]
    fig = figure(title, height=height)
    for i, s in enumerate(series):
        fig.add_trace(go.Bar(x=[r["name"] for r in rows], y=[r[s] for r in rows], name=s,
                             marker_color=[BAD, GOOD, NEUTRAL, PALETTE[1]][i % 4],
                             text=[f"{r[s]:,.0f}" if isinstance(r[s], int) else f"{r[s]:.2f}"
                                   for r in rows], textposition="outside", cliponaxis=False))
    fig.update_layout(barmode="group", yaxis_title=yaxis)
    return fig


class PrefixStepper:
    """Step a stream of prompts through an `efficiency.PrefixCache`, one request at a time:
    the radix tree after request k, what that request was served from the tree and what it
    computed, and the totals so far.  ``capacities``: the cache sizes to choose from (None:
    unbounded); the stream is replayed from the start when the capacity changes or the slider
    moves back.  `PrefixStepper.replay(trace)` steps through recorded requests instead."""

    def __init__(self, lm, stream, capacities=(None,), tokenizer=None):
        if not stream:
            raise ValueError("stream must hold at least one prompt")
        self.lm, self.stream, self.tokenizer = lm, list(stream), tokenizer or lm.tokenizer
        self._build(capacities)

    def _build(self, capacities, *top):
        import ipywidgets as W
        self.request = W.IntSlider(value=1, min=1, max=len(self.stream), description="request")
        self.capacity = W.Dropdown(options=[("unbounded" if c is None else str(c), c)
                                            for c in capacities], description="capacity")
        self.fig = go.FigureWidget(figure("", height=420))
        self.info = W.HTML()
        self.cache, self.log = None, []
        for w in (self.request, self.capacity):
            w.observe(lambda _: self.update(), names="value")
        self.view = W.VBox([*top, W.HBox([self.request, self.capacity]), self.fig, self.info])
        self.update()

    @classmethod
    def replay(cls, trace, tokenizer=None, cache: int = 0):
        """The requests recorded in ``trace`` for its ``cache``-th prefix cache (its
        ``prefix_lookup`` events: each prompt, what it reused and computed, the tree after
        it), one at a time.  Another capacity would re-serve the stream, which needs the
        model: the dropdown shows the recorded one, disabled."""
        import ipywidgets as W
        from .replay import freeze, needed, note, pick, tokenizer_of
        events = needed(trace, "prefix_lookup", "an efficiency.PrefixCache serving a stream")
        serials = list(dict.fromkeys(e["cache"] for e in events))
        serial = pick(serials, cache, "cache", "prefix caches")
        view = cls.__new__(cls)
        view.lm, view.recorded = None, [e for e in events if e["cache"] == serial]
        view.stream = [e["prompt"] for e in view.recorded]
        view.tokenizer = tokenizer_of(trace, tokenizer)
        view._build((view.recorded[0]["max_tokens"],), note(W, (
            "The slider steps through the recorded requests; another capacity would serve the "
            "stream again, which needs the model.")))
        freeze(view.capacity)
        return view

    def advance_to(self, k: int) -> None:
        """Serve the first ``k`` prompts (replaying from an empty cache when needed); the log
        holds each request's (prompt tokens, served from the tree, computed)."""
        from workbench.efficiency import PrefixCache
        if self.lm is None:                      # replayed: the recorded requests
            self.cache, self.log = recorded_cache(self.recorded[:k])
            return
        if self.cache is None or self.cache.max_tokens != self.capacity.value or k < len(self.log):
            self.cache, self.log = PrefixCache(self.lm, max_tokens=self.capacity.value), []
        while len(self.log) < k:
            before = (self.cache.reused_tokens, self.cache.computed_tokens,
                      self.cache.requested_tokens)
            self.cache.prefill(self.stream[len(self.log)])
            self.log.append((self.cache.requested_tokens - before[2],
                             self.cache.reused_tokens - before[0],
                             self.cache.computed_tokens - before[1]))

    def update(self):
        k = self.request.value
        self.advance_to(k)
        new = prefix_tree_figure(self.cache, self.tokenizer)
        with self.fig.batch_update():
            self.fig.data = []
            for tr in new.data:
                self.fig.add_trace(tr)
            self.fig.layout = new.layout
        asked, served, computed = self.log[-1]
        c = self.cache
        self.info.value = (
            f"request {k} of {len(self.stream)}: {asked} prompt tokens, "
            f"<b style='color:{GOOD if served else BAD}'>{served} served from the tree</b>, "
            f"{computed} computed. So far: hit rate {c.hit_rate:.2f}, {c.tokens_saved} of "
            f"{c.requested_tokens} prompt tokens not recomputed; {c.stored_tokens} tokens stored"
            + (f" (capacity {c.max_tokens})" if c.max_tokens else ""))

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)


def recorded_cache(events) -> tuple:
    """(a stand-in for the `PrefixCache` after ``events``, the `PrefixStepper` log of them):
    the tree of the last ``prefix_lookup`` event and the counters summed over all of them."""
    from types import SimpleNamespace
    nodes = []
    for parent, tokens in events[-1]["tree"]:
        nodes.append(SimpleNamespace(tokens=tokens, children={}))
        if parent >= 0:
            nodes[parent].children[tokens[0]] = nodes[-1]
    log = [(len(e["prompt"]), e["reused"], e["computed"]) for e in events]
    asked, reused, computed = (sum(col) for col in zip(*log))
    cache = SimpleNamespace(root=nodes[0], max_tokens=events[-1]["max_tokens"],
                            stored_tokens=sum(len(n.tokens) for n in nodes),
                            requested_tokens=asked, hit_rate=reused / asked if asked else 0.0,
                            tokens_saved=asked - computed)
    return cache, log


def kv_quant_figure(rows, height: int = 340) -> go.Figure:
    """KL divergence from the float cache against the bits of a quantized KV cache, one line per
    grouping of the keys; ``rows``: dicts with "bits", "keys", "kl", "agreement", "bytes_ratio"."""
    fig = figure("A quantized KV cache: distance from the float cache while decoding",
                 height=height)
    for i, keys in enumerate(sorted({r["keys"] for r in rows})):
        line = sorted((r for r in rows if r["keys"] == keys), key=lambda r: r["bits"])
        fig.add_trace(go.Scatter(
            x=[r["bits"] for r in line], y=[r["kl"] for r in line], mode="lines+markers",
            name=f"keys per {keys}", line=dict(color=PALETTE[i % len(PALETTE)]),
            customdata=[[r["agreement"], r["bytes_ratio"]] for r in line],
            hovertemplate="%{x} bits: KL %{y:.2g} nats, argmax agrees at %{customdata[0]:.1%}, "
                          "%{customdata[1]:.1%} of the float cache's bytes<extra></extra>"))
    fig.update_layout(xaxis=dict(title="bits per key and value", dtick=1),
                      yaxis=dict(title="mean KL, nats", type="log"))
    return fig


def serving_steps_figure(results, height: int = 420) -> go.Figure:
    """Step by step, for each `efficiency.continuous_batching` / `static_batching` result: the
    rows in the decode pass (top) and the KV token slots reserved (bottom)."""
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("rows in the decoding pass", "KV token slots reserved"))
    for i, res in enumerate(results):
        color = PALETTE[i % len(PALETTE)]
        steps = [s.step for s in res.steps]
        for row, ys in ((1, [s.batch for s in res.steps]),
                        (2, [s.reserved_tokens for s in res.steps])):
            fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines", line=dict(color=color,
                                                                            shape="hv"),
                                     name=f"{res.scheduler} ({res.num_steps} steps)",
                                     legendgroup=res.scheduler, showlegend=row == 1),
                          row=row, col=1)
    fig.update_layout(height=height, title="Serving the same requests:<br>static vs continuous "
                      "batching")
    fig.update_xaxes(title_text="engine step", row=2, col=1)
    return fig


def serving_curve_figure(rows, height: int = 360) -> go.Figure:
    """Mean latency against throughput, one line per scheduler, one point per arrival rate
    (rows of `efficiency.serving_curve`)."""
    fig = figure("Latency vs throughput as requests arrive faster (simulated)", height=height)
    for i, scheduler in enumerate(("static", "continuous")):
        line = [r for r in rows if r["scheduler"] == scheduler]
        fig.add_trace(go.Scatter(
            x=[r["throughput"] for r in line], y=[r["mean_latency"] for r in line],
            mode="lines+markers", name=scheduler, line=dict(color=PALETTE[i]),
            customdata=[r["rate"] for r in line],
            hovertemplate="rate %{customdata}: throughput %{x:.2f} tokens per time unit, "
                          "mean latency %{y:.0f}<extra></extra>"))
    fig.update_layout(xaxis_title="throughput (output tokens per time unit)",
                      yaxis_title="mean latency (time units)")
    return fig
