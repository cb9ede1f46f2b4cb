"""Views of refinement (survey §4.4): the versions y(0), y(1), ..., the feedback z on each, and
what changed.

* `refinement_rows(result)` turns a `meta.refine` result into one record per version: its
  lines, each marked kept / changed / new / removed against the previous version, the line the
  feedback localised, and the feedback itself.
* `refinement_figure(result)` draws the timeline: one column per version, one row per line,
  coloured by change, the flagged line in red, the feedback under each column.
* `RefinementView` steps through the versions with a slider and shows them side by side.

Each takes the result, or a trace that recorded the run (live or loaded with
`workbench.trace.load`): its ``version`` and ``feedback`` events hold the same history.
"""
from __future__ import annotations

import difflib
import html

import plotly.graph_objects as go

from workbench.trace import as_events, last_run

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure

STATUS = {"kept": MUTED, "changed": NEUTRAL, "new": PALETTE[1], "flagged": BAD, "done": GOOD}


def line_changes(before: str | None, after: str) -> list:
    """Per line of ``after``: "kept" (also in ``before`` at the aligned place), "changed"
    (replaces a line of ``before``) or "new" (inserted, or everything when ``before`` is None)."""
    new = after.split("\n")
    if before is None:
        return ["new"] * len(new)
    out = ["kept"] * len(new)
    sm = difflib.SequenceMatcher(a=before.split("\n"), b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "replace":     # the first lines replace old ones, any extra are new
            for j in range(j1, j2):
                out[j] = "changed" if j - j1 < i2 - i1 else "new"
        elif tag == "insert":
            for j in range(j1, j2):
                out[j] = "new"
    return out


def history(run) -> dict:
    """A refinement run's ``versions`` (the texts y(0), y(1), ...), ``feedback`` (dicts),
    ``stopped`` and ``answer``: from the result, or from the events of a trace that recorded
    it."""
    if "versions" in getattr(run, "info", {}):
        return {"versions": run.info["versions"], "feedback": run.info["feedback"],
                "stopped": run.info["stopped"], "answer": run.answer}
    events = last_run(as_events(run), ("version", "feedback", "stop"), "stop")
    stop = next((e for e in events if e["kind"] == "stop"), {})
    return {"versions": [e["text"] for e in events if e["kind"] == "version"],
            "feedback": [{k: e[k] for k in ("done", "text", "first_error", "fix")}
                         for e in events if e["kind"] == "feedback"],
            "stopped": stop.get("reason"), "answer": stop.get("answer")}


def refinement_rows(result) -> list:
    """One dict per version: ``t``, ``text``, ``lines``, ``changes`` (per line),
    ``removed`` (lines of the previous version that are gone), ``feedback`` (the dict h gave
    on this version, or None for the last), ``flagged`` (the localised line) and ``done``."""
    run = history(result)
    versions, notes = run["versions"], run["feedback"]
    rows = []
    for t, text in enumerate(versions):
        prev = versions[t - 1] if t else None
        z = notes[t] if t < len(notes) else None
        removed = []
        if prev is not None:
            sm = difflib.SequenceMatcher(a=prev.split("\n"), b=text.split("\n"), autojunk=False)
            removed = [ln for tag, i1, i2, _, _ in sm.get_opcodes() if tag in ("delete", "replace")
                       for ln in prev.split("\n")[i1:i2]]
        rows.append({"t": t, "text": text, "lines": text.split("\n"),
                     "changes": line_changes(prev, text), "removed": removed, "feedback": z,
                     "flagged": z["first_error"] if z else None,
                     "done": bool(z and z["done"])})
    return rows


def _cell_status(row, i):
    if row["flagged"] == i:
        return "flagged"
    if row["done"]:
        return "done"
    return row["changes"][i]


def refinement_figure(result, height: int | None = None) -> go.Figure:
    """Versions as columns, their lines as rows: kept lines grey, changed blue, new orange, the
    line the feedback flagged red, a version the feedback accepted green."""
    rows = refinement_rows(result)
    n_lines = max(len(r["lines"]) for r in rows)
    codes = {s: i for i, s in enumerate(STATUS)}
    z = [[None] * len(rows) for _ in range(n_lines)]
    text = [[""] * len(rows) for _ in range(n_lines)]
    hover = [[""] * len(rows) for _ in range(n_lines)]
    cut = max(8, 88 // len(rows))  # characters a cell holds at 700 px (the full line on hover)
    for r in rows:
        for i, ln in enumerate(r["lines"]):
            s = _cell_status(r, i)
            z[i][r["t"]] = codes[s]
            text[i][r["t"]] = ln if len(ln) <= cut else ln[:cut - 1] + "…"
            hover[i][r["t"]] = f"version {r['t']}, line {i + 1} ({s}): {html.escape(ln)}"
    n = len(STATUS)
    scale = [x for i, c in enumerate(STATUS.values()) for x in ([i / n, c], [(i + 1) / n, c])]
    run = history(result)
    fig = figure(f"Refinement: {len(rows) - 1} refinement(s), stopped ({run['stopped']}); answer "
                 f"{run['answer']}", height=height or 170 + 34 * n_lines)
    labels = [f"y({r['t']})<br><sub>{html.escape((r['feedback'] or {}).get('text', '')[:38])}"
              f"</sub>" for r in rows]
    fig.add_trace(go.Heatmap(z=z, x=labels, y=[f"line {i + 1}" for i in range(n_lines)],
                             zmin=-0.5, zmax=n - 0.5, colorscale=scale, showscale=False, xgap=3,
                             ygap=2, text=text, texttemplate="%{text}",
                             textfont=dict(size=11, color="white"), customdata=hover,
                             hovertemplate="%{customdata}<extra></extra>"))
    present = {c for row in z for c in row if c is not None}
    for s, c in STATUS.items():
        if codes[s] in present:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=s,
                                     marker=dict(symbol="square", size=12, color=c)))
    fig.update_layout(yaxis=dict(autorange="reversed", showgrid=False),
                      xaxis=dict(side="top", showgrid=False),
                      margin=dict(t=110), title_pad_b=60)  # the title above the column labels
    return fig


def version_html(row, previous=None) -> str:
    """A version's lines as HTML, changes highlighted, with the feedback under it."""
    out = []
    for i, ln in enumerate(row["lines"]):
        s = _cell_status(row, i)
        color = {"kept": "inherit"}.get(s, STATUS[s])
        out.append(f'<span style="color:{color}">{html.escape(ln) or "&nbsp;"}</span>')
    for ln in row["removed"]:
        out.append(f'<span style="color:{MUTED};text-decoration:line-through">'
                   f"{html.escape(ln)}</span>")
    z = row["feedback"]
    note = (f"<i>feedback: {html.escape(z['text'])}</i>" if z else "<i>(no feedback asked)</i>")
    return (f"<div style='font-family:monospace;white-space:pre'><b>y({row['t']})</b><br>"
            + "<br>".join(out) + f"</div>{note}")


class RefinementView:
    """Slide through the versions: the previous and the current one side by side, and the
    timeline of all versions."""

    def __init__(self, result):
        import ipywidgets as w
        self.rows = refinement_rows(result)
        self.figure = go.FigureWidget(refinement_figure(result))
        self.slider = w.IntSlider(min=0, max=len(self.rows) - 1, value=len(self.rows) - 1,
                                  description="version", continuous_update=False)
        self.before, self.after = w.HTML(), w.HTML()
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = w.VBox([self.slider, w.HBox([self.before, self.after]), self.figure])
        self.show(self.slider.value)

    def show(self, t: int):
        self.after.value = version_html(self.rows[t])
        self.before.value = version_html(self.rows[t - 1]) if t else ""

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
