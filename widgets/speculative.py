"""Views of speculative decoding (survey §7.2, draft-then-verify).

* `round_cells(result)` turns ``result.info["rounds"]`` of `efficiency.speculative_decode` (or
  `prompt_lookup_decode`) into cells: every drafted token accepted, rejected or never checked,
  then the token the target added (resampled after a rejection, or the bonus token).
* `rounds_figure` draws them, one row per round; `acceptance_figure` the histogram of accepted
  drafts per round against the closed form alpha^n (1 - alpha), alpha^k; `speedup_figure` the
  measured speedup against k beside (1 - alpha^(k+1)) / ((1 - alpha)(k c + 1)).
* `SpeculativeView` shows a run with a window over its rounds.

Each takes a run: the result, or a trace that recorded it (live or loaded with
`workbench.trace.load`), whose events give the same rounds (`run_info`).
"""
from __future__ import annotations

import plotly.graph_objects as go

from workbench.efficiency.speculative import (accepted_length_distribution, expected_speedup,
                                              expected_tokens_per_round, rounds_from_events,
                                              summarize)
from workbench.trace import as_events

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure

COLORS = {"accepted": GOOD, "rejected": BAD, "unchecked": MUTED, "resampled": PALETTE[1],
          "bonus": NEUTRAL, "target": PALETTE[4]}


def _show(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵") or "∅"


def run_info(run) -> dict:
    """A run's ``info`` (rounds and their summary): the result's own, or rebuilt from the
    events of a trace that recorded it."""
    if isinstance(run, dict):
        return run
    if "rounds" in getattr(run, "info", {}):
        return run.info
    rounds = rounds_from_events(as_events(run))
    return summarize(rounds, max((len(r["drafted"]) for r in rounds), default=0))


def round_cells(result, tokenizer=None) -> list:
    """``[{"round", "pos", "token", "text", "status", "p", "q"}]`` for every drafted token and
    every token the target added.  Status: accepted, rejected, unchecked (after a rejection),
    resampled, bonus, or target (a round without a draft)."""
    cells = []
    for r, rd in enumerate(run_info(result)["rounds"]):
        n, drafted = rd["accepted"], rd["drafted"]
        for i, tok in enumerate(drafted):
            status = "accepted" if i < n else ("rejected" if i == n else "unchecked")
            cells.append({"round": r, "pos": i, "token": tok, "status": status,
                          "p": rd["p"][i] if i < len(rd["p"]) else None,
                          "q": rd["q"][i] if i < len(rd["q"]) else None})
        status = "target" if not drafted else ("bonus" if n == len(drafted) else "resampled")
        cells.append({"round": r, "pos": len(drafted) if status == "bonus" else
                      (n if status == "resampled" else 0), "token": rd["next"], "status": status,
                      "p": None, "q": None, "added": True})
    for c in cells:
        c["text"] = _show(tokenizer.decode([c["token"]])) if tokenizer is not None \
            else str(c["token"])
    return cells


def rounds_figure(result, tokenizer=None, first: int = 0, rounds: int = 20,
                  height: int | None = None) -> go.Figure:
    """Rounds ``first .. first+rounds-1``, one row each: the drafted tokens d1..dk coloured by
    outcome, then in the last column the token the target added (resampled or bonus)."""
    info = run_info(result)
    shown = list(range(first, min(first + rounds, len(info["rounds"]))))
    k = max([len(info["rounds"][r]["drafted"]) for r in shown] + [info["k"], 1])
    codes = {s: i for i, s in enumerate(COLORS)}
    z = [[None] * (k + 1) for _ in shown]
    text = [[""] * (k + 1) for _ in shown]
    hover = [[""] * (k + 1) for _ in shown]
    for c in round_cells(result, tokenizer):
        if c["round"] not in shown:
            continue
        row, col = shown.index(c["round"]), (k if c.get("added") else c["pos"])
        z[row][col], text[row][col] = codes[c["status"]], c["text"]
        hover[row][col] = f"round {c['round']}: {c['text']} ({c['status']})" + (
            f"<br>p={c['p']:.3f}, q={c['q']:.3f}" if c["p"] is not None else "")
    n = len(COLORS)
    scale = [x for i, col in enumerate(COLORS.values()) for x in ([i / n, col], [(i + 1) / n, col])]
    fig = figure(f"Draft-then-verify, k={info['k']}: acceptance rate {info['acceptance_rate']:.2f},"
                 f" {info['tokens_per_round']:.2f} tokens per round",
                 height=height or 130 + 30 * max(1, len(shown)))
    fig.add_trace(go.Heatmap(z=z, x=[f"d{i + 1}" for i in range(k)] + ["target"],
                             y=[f"round {r}" for r in shown], zmin=-0.5, zmax=n - 0.5,
                             colorscale=scale, showscale=False, xgap=2, ygap=2, text=text,
                             texttemplate="%{text}", textfont=dict(size=12, color="white"),
                             customdata=hover, hovertemplate="%{customdata}<extra></extra>"))
    present = {c for row in z for c in row if c is not None}
    for status, color in COLORS.items():   # legend entries
        if codes[status] not in present:
            continue
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=status,
                                 marker=dict(symbol="square", size=12, color=color)))
    fig.update_layout(yaxis=dict(autorange="reversed", showgrid=False),
                      xaxis=dict(side="top", showgrid=False),
                      margin=dict(t=80), title_pad_b=46)  # the title above the column labels
    return fig


def acceptance_figure(result, height: int = 320) -> go.Figure:
    """Histogram of accepted drafts per round, with the i.i.d. closed form at the measured alpha."""
    info = run_info(result)
    rounds = [r for r in info["rounds"] if r["drafted"]]
    k = max((len(r["drafted"]) for r in rounds), default=info["k"])
    counts = [sum(r["accepted"] == n for r in rounds) for n in range(k + 1)]
    alpha = info["acceptance_rate"]
    total = max(1, sum(counts))
    fig = figure(f"Accepted drafts per round (alpha = {alpha:.2f})", height=height)
    fig.add_trace(go.Bar(x=list(range(k + 1)), y=[c / total for c in counts], name="measured",
                         marker_color=NEUTRAL))
    fig.add_trace(go.Scatter(x=list(range(k + 1)), y=accepted_length_distribution(alpha, k),
                             mode="lines+markers", name="alpha^n (1 - alpha); alpha^k",
                             line=dict(color=PALETTE[1])))
    fig.update_layout(xaxis_title="drafted tokens accepted", yaxis_title="fraction of rounds")
    return fig


def speedup_figure(rows, c: float | None = None, height: int = 340) -> go.Figure:
    """Measured speedup vs k (rows with ``k``, ``speedup``, ``alpha``, as from
    scripts/bench_efficiency.py) and the closed form at each row's alpha with cost ratio c."""
    rows = sorted(rows, key=lambda r: r["k"])
    fig = figure("Speedup of speculative decoding vs draft length k", height=height)
    fig.add_trace(go.Scatter(x=[r["k"] for r in rows], y=[r["speedup"] for r in rows],
                             mode="lines+markers", name="measured", line=dict(color=NEUTRAL)))
    fig.add_trace(go.Scatter(
        x=[r["k"] for r in rows],
        y=[expected_tokens_per_round(r["alpha"], r["k"]) for r in rows], mode="lines",
        name="tokens per target pass (closed form)", line=dict(color=MUTED, dash="dot")))
    if c is not None:
        fig.add_trace(go.Scatter(
            x=[r["k"] for r in rows], y=[expected_speedup(r["alpha"], r["k"], c) for r in rows],
            mode="lines", name=f"closed form, c = {c:.2f}", line=dict(color=PALETTE[1],
                                                                      dash="dash")))
    fig.add_hline(y=1, line=dict(color=BAD, width=1))
    fig.update_layout(xaxis=dict(title="k (drafted tokens per round)", dtick=1),
                      yaxis_title="x faster than the target alone")
    return fig


class SpeculativeView:
    """A run's rounds (with a slider over them), its acceptance histogram, and optionally the
    speedup-vs-k rows of a sweep."""

    def __init__(self, result, tokenizer=None, sweep=None, c: float | None = None,
                 rounds: int = 12):
        import ipywidgets as w
        self.result, self.tokenizer, self.rounds = result, tokenizer, rounds
        info = run_info(result)
        n = len(info["rounds"])
        self.figure = go.FigureWidget(rounds_figure(result, tokenizer, 0, rounds))
        self.slider = w.IntSlider(min=0, max=max(0, n - rounds), description="first round",
                                  continuous_update=False)
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        passes = (f"; target passes {info['target_cost'].forward_passes}, draft passes "
                  f"{info['draft_cost'].forward_passes}" if "target_cost" in info else "")
        head = f"<b>{result.text!r}</b><br>" if hasattr(result, "text") else ""
        tokens = (len(result.token_ids) if hasattr(result, "token_ids")
                  else sum(r["accepted"] + 1 for r in info["rounds"]))
        summary = w.HTML(f"{head}{tokens} tokens in "
                         f"{n} rounds; {info['accepted']} of {info['drafted']} drafts "
                         f"accepted{passes}")
        side = [go.FigureWidget(acceptance_figure(result))]
        if sweep:
            side.append(go.FigureWidget(speedup_figure(sweep, c)))
        self.widget = w.VBox([summary, self.slider, self.figure, w.HBox(side)])

    def show(self, first: int):
        fig = rounds_figure(self.result, self.tokenizer, first, self.rounds)
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(fig.data)
            self.figure.layout = fig.layout

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
