"""Views of step-level search (survey §4.3): the search tree, replayed iteration by iteration.

* `tree_at(search, iteration)` replays a search's events (stepwise beam, tree of thoughts,
  best-first, REBASE, MCTS) up to an iteration: which nodes exist, their values, visit counts
  and mean rewards, which were pruned, and which were selected in that iteration.  ``search`` is
  a `SearchResult`, its ``trace``, a trace loaded with `workbench.trace.load`, or their events:
  the view needs the events only, never the model.
* `tree_layout(nodes)` places the tree (leaves side by side, parents centred over children);
  `search_tree_figure(search, iteration)` draws it; `SearchTreeView` adds a play button and an
  iteration slider, and shows the events of the iteration and the chosen solution.
"""
from __future__ import annotations

import html

import plotly.graph_objects as go

from workbench.trace import as_events, last_run

from .style import BAD, GOOD, MUTED, NEUTRAL, PALETTE, figure

COLORS = {"frontier": "#999999", "expanded": NEUTRAL, "terminal": PALETTE[1], "pruned": BAD,
          "chosen": GOOD, "root": PALETTE[4]}


def _show(text: str) -> str:
    return text.replace("\n", "↵")


KINDS = ("expand", "score", "select", "prune", "backtrack", "rollout", "backup", "done")


def search_events(search) -> list:
    """The events of one search: a result's own, a trace's, or a list of events (of a trace
    that recorded several searches, the last one)."""
    return last_run(as_events(search), KINDS, "done")


def iterations(search) -> list:
    """The iteration indices that appear in the search's events, in order."""
    return sorted({e["it"] for e in search_events(search)})


def tree_at(search, iteration: int | None = None) -> list:
    """The tree as it stood at the end of ``iteration`` (None: the end of the search).

    One dict per node that exists by then: ``id``, ``parent``, ``depth``, ``step``,
    ``value``, ``visits``, ``reward``, ``status`` (root, frontier, expanded, terminal, pruned, or
    chosen at the end), ``selected`` (selected in this iteration), ``rollouts`` (texts and
    rewards of the rollouts run from it so far).
    """
    events = search_events(search)
    its = sorted({e["it"] for e in events})
    last = its[-1] if its else 0
    it = last if iteration is None else iteration
    final = iteration is None or it >= last
    nodes = {0: _fresh(0, None, 0, "", False, "root")}
    for e in events:
        if e["it"] > it:
            break
        kind = e["kind"]
        if kind == "expand":
            parent = nodes[e["node"]]
            if e["node"] != 0:
                parent["status"] = "expanded"
            for c, step, term in zip(e["children"], e["steps"], e["terminal"]):
                nodes[c] = _fresh(c, e["node"], parent["depth"] + 1, step, term,
                                  "terminal" if term else "frontier")
        elif kind == "score":
            nodes[e["node"]]["value"] = e["value"]
        elif kind == "prune":
            nodes[e["node"]]["status"] = "pruned"
        elif kind == "backup":
            for n, r, v in zip(e["nodes"], e["rewards"], e["visits"]):
                nodes[n]["reward"], nodes[n]["visits"] = r, v
        elif kind == "rollout":
            nodes[e["node"]]["rollouts"].append((e["text"], e["reward"]))
        elif kind == "select" and e["it"] == it:
            for n in e["nodes"]:
                nodes[n]["selected"] = True
    done = next((e for e in events if e["kind"] == "done"), None)
    if final and done is not None:
        node = done["node"]
        while node is not None:
            nodes[node]["status"] = "chosen"
            node = nodes[node]["parent"]
    return [nodes[k] for k in sorted(nodes)]


def _fresh(id, parent, depth, step, terminal, status):
    return {"id": id, "parent": parent, "depth": depth, "step": step, "terminal": terminal,
            "value": None, "visits": 0, "reward": None, "status": status, "selected": False,
            "rollouts": []}


def summary(search) -> dict:
    """Method, answer, chosen text and stop reason of a search (from its ``done`` event)."""
    events = search_events(search)
    done = next((e for e in events if e["kind"] == "done"), {})
    method = (search.info.get("method") if hasattr(search, "info")
              else next((e.get("source") for e in events if e.get("source")), None))
    return {"method": method, "answer": done.get("answer"), "text": done.get("text"),
            "stopped": done.get("stopped"), "nodes": 1 + sum(len(e["children"]) for e in events
                                                             if e["kind"] == "expand")}


def tree_layout(nodes) -> dict:
    """``{id: (x, y)}``: y = -depth; leaves one unit apart in depth-first order, each parent
    centred over its children."""
    kids = {n["id"]: [] for n in nodes}
    for n in nodes:
        if n["parent"] is not None and n["parent"] in kids:
            kids[n["parent"]].append(n["id"])
    depth = {n["id"]: n["depth"] for n in nodes}
    pos, next_x = {}, [0.0]

    def place(i):
        if not kids[i]:
            pos[i] = (next_x[0], -depth[i])
            next_x[0] += 1.0
        else:
            for c in kids[i]:
                place(c)
            xs = [pos[c][0] for c in kids[i]]
            pos[i] = ((min(xs) + max(xs)) / 2, -depth[i])
    stack_safe = sorted(kids)   # ids: parents always precede children
    if stack_safe:
        place(stack_safe[0])
    return pos


def _hover(n) -> str:
    parts = [f"node {n['id']} ({n['status']})", html.escape(_show(n["step"])) or "(prompt)"]
    if n["value"] is not None:
        parts.append(f"value {n['value']:.3f}")
    if n["visits"]:
        parts.append(f"visits {n['visits']}, mean reward {n['reward']:.3f}")
    for text, r in n["rollouts"][-3:]:
        parts.append(f"rollout → {html.escape(_show(text))[:60]} (reward {r:.2f})")
    return "<br>".join(parts)


def search_tree_figure(search, iteration: int | None = None, height: int = 460) -> go.Figure:
    """The search tree at ``iteration``: nodes coloured by status (sized by visits when the
    search counts them), values as labels, nodes selected in the iteration ringed."""
    nodes = tree_at(search, iteration)
    pos = tree_layout(nodes)
    by_id = {n["id"]: n for n in nodes}
    about = summary(search)
    title = (f"{about['method']}: {len(nodes)} nodes"
             + (f", iteration {iteration}" if iteration is not None else ", final tree")
             + (f" - answer {about['answer']}" if iteration is None else ""))
    fig = figure(title, height=height)
    ex, ey = [], []
    for n in nodes:
        if n["parent"] is not None and n["parent"] in pos:
            (x0, y0), (x1, y1) = pos[n["parent"]], pos[n["id"]]
            ex += [x0, x1, None]
            ey += [y0, y1, None]
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=MUTED, width=1),
                             hoverinfo="skip", showlegend=False))
    counts_visits = any(n["visits"] for n in nodes)
    for status, color in COLORS.items():
        group = [n for n in nodes if n["status"] == status]
        if not group:
            continue
        size = [10 + min(30, 6 * n["visits"] ** 0.5) if counts_visits else 14 for n in group]
        fig.add_trace(go.Scatter(
            x=[pos[n["id"]][0] for n in group], y=[pos[n["id"]][1] for n in group],
            mode="markers+text", name=status,
            text=[f"{n['value']:.2f}" if n["value"] is not None else "" for n in group],
            textposition="top center", textfont=dict(size=10),
            customdata=[_hover(n) for n in group], hovertemplate="%{customdata}<extra></extra>",
            marker=dict(color=color, size=size, opacity=0.45 if status == "pruned" else 0.95,
                        line=dict(color=[PALETTE[6] if n["selected"] else color
                                         for n in group],
                                  width=[4 if n["selected"] else 0 for n in group]))))
    sel = [i for i, n in by_id.items() if n["selected"]]
    if sel:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="selected now",
                                 marker=dict(size=12, color="rgba(0,0,0,0)",
                                             line=dict(color=PALETTE[6], width=3))))
    fig.update_layout(xaxis=dict(visible=False),
                      yaxis=dict(title="depth (steps)", tickvals=[-d for d in range(
                          max(n["depth"] for n in nodes) + 1)], ticktext=[str(d) for d in range(
                              max(n["depth"] for n in nodes) + 1)], zeroline=False))
    return fig


def iteration_events(search, iteration: int) -> list:
    """The events of one iteration (for the view's text pane)."""
    return [e for e in search_events(search) if e["it"] == iteration]


def describe(event) -> str:
    """One line for an event."""
    k = event["kind"]
    if k == "expand":
        return (f"expand node {event['node']}: " +
                "; ".join(f"{c}: {_show(s)}" for c, s in zip(event["children"], event["steps"])))
    if k == "score":
        return f"score node {event['node']}: {event['value']:.3f}"
    if k == "select":
        extra = f" (expansions {event['alloc']})" if "alloc" in event else ""
        return f"select {event['nodes']}{extra}"
    if k == "prune":
        return f"prune node {event['node']} ({event['reason']})"
    if k == "backtrack":
        return f"backtrack from node {event['node']} to node {event['to']}"
    if k == "rollout":
        return f"rollout from node {event['node']}: {_show(event['text'])} -> {event['reward']:.3f}"
    if k == "backup":
        return f"backup reward {event['reward']:.3f} along {event['nodes']}"
    if k == "done":
        return f"done ({event['stopped']}): {_show(event['text'] or '')}"
    return str(event)


def _summary_html(search) -> str:
    """The view's header: what a result knows (value, cost, KV reuse), or a saved trace's."""
    about = summary(search)
    head = (f"<b>{html.escape(str(about['method'] or ''))}</b>"
            + (f", value {html.escape(str(search.info.get('value')))}"
               if hasattr(search, "info") else "")
            + f": answer <b>{html.escape(str(about['answer']))}</b>, {about['nodes']} nodes, "
            f"stopped: {about['stopped']}")
    if hasattr(search, "info"):
        kv = search.info["kv"]
        head += (f"; tokens: {search.cost}; KV reuse computed {kv['computed_tokens']} of "
                 f"{kv['naive_tokens']} naive tokens")
    return head


class SearchTreeView:
    """Play a search back: an iteration slider (with a play button) over the tree figure, the
    events of the current iteration, and the answer."""

    def __init__(self, search, height: int = 460):
        import ipywidgets as w
        self.search, self.height = search, height
        its = iterations(search) or [0]
        self.figure = go.FigureWidget(search_tree_figure(search, its[0], height))
        self.slider = w.IntSlider(min=its[0], max=its[-1], value=its[0], description="iteration",
                                  continuous_update=False)
        self.play = w.Play(min=its[0], max=its[-1], interval=900, description="play")
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.events = w.HTML()
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = w.VBox([w.HTML(_summary_html(search)), w.HBox([self.play, self.slider]),
                              self.figure, self.events])
        self.show(its[0])

    def show(self, iteration: int):
        last = (iterations(self.search) or [0])[-1]
        fig = search_tree_figure(self.search, None if iteration >= last else iteration,
                                 self.height)
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(fig.data)
            self.figure.layout = fig.layout
        lines = [html.escape(describe(e)) for e in iteration_events(self.search, iteration)]
        self.events.value = "<br>".join(lines[:40]) + ("<br>..." if len(lines) > 40 else "")

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
