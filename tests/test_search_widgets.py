"""The search-tree, refinement and compute views build figures from results (no browser)."""
import plotly.graph_objects as go
import pytest

from widgets import chains, compute, refinement, search_tree
from workbench import meta

from test_refine import PROMPT as RPROMPT, bad_line, continuer, fixed
from test_search import ARITH, PROMPT, HashValue, LateOracle, noisy_solver


@pytest.fixture(scope="module")
def results():
    st = meta.TextStepper(noisy_solver(0.4))
    return {
        "beam": meta.stepwise_beam(PROMPT, st, meta.oracle_value(ARITH), 2, 3, seed=0),
        "dfs": meta.tree_of_thought(PROMPT, meta.TextStepper(noisy_solver(0.5)), LateOracle(),
                                    "dfs", expansions=3, threshold=0.5, seed=0),
        "best_first": meta.best_first(PROMPT, st, HashValue(), expansions=2, seed=0),
        "rebase": meta.rebase(PROMPT, st, meta.oracle_value(ARITH), width=6, seed=0),
        "mcts": meta.mcts(PROMPT, st, HashValue(), iterations=10, width=2, seed=0),
    }


@pytest.mark.parametrize("name", ["beam", "dfs", "best_first", "rebase", "mcts"])
def test_replay_ends_in_the_final_tree(results, name):
    r = results[name]
    its = search_tree.iterations(r)
    final = search_tree.tree_at(r)
    assert [n["id"] for n in final] == [n.id for n in r.tree]
    for n, node in zip(final, r.tree):
        assert n["value"] == node.value and n["visits"] == node.visits
        assert n["status"] == ("root" if node.id == 0 and node.status != "chosen"
                               else node.status)
    sizes = [len(search_tree.tree_at(r, i)) for i in its]
    assert sizes == sorted(sizes) and sizes[-1] == len(r.tree)
    fig = search_tree.search_tree_figure(r, its[0])
    shown = sum(len(t.x) for t in fig.data[1:] if t.name != "selected now")
    assert shown == sizes[0]
    assert search_tree.search_tree_figure(r).to_json()     # serialisable for the notebook


def test_replay_shows_pruning_and_selection_as_they_happen(results):
    r = results["beam"]
    first_prune = next(e for e in r.events if e["kind"] == "prune")
    before = {n["id"]: n for n in search_tree.tree_at(r, first_prune["it"] - 1)} \
        if first_prune["it"] else {}
    after = {n["id"]: n for n in search_tree.tree_at(r, first_prune["it"])}
    assert after[first_prune["node"]]["status"] == "pruned"
    assert first_prune["node"] not in before or before[first_prune["node"]]["status"] != "pruned"
    sel = next(e for e in r.events if e["kind"] == "select")
    marked = [n["id"] for n in search_tree.tree_at(r, sel["it"]) if n["selected"]]
    assert marked == sorted(sel["nodes"])


def test_mcts_visits_grow_during_playback(results):
    r = results["mcts"]
    root_visits = [search_tree.tree_at(r, i)[0]["visits"] for i in search_tree.iterations(r)]
    assert root_visits == list(range(1, len(root_visits) + 1))
    fig = search_tree.search_tree_figure(r)
    sizes = [s for t in fig.data if t.name in search_tree.COLORS for s in t.marker.size]
    assert max(sizes) > min(sizes)          # marker size follows visits


def test_layout_centres_parents():
    nodes = [{"id": 0, "parent": None, "depth": 0}, {"id": 1, "parent": 0, "depth": 1},
             {"id": 2, "parent": 0, "depth": 1}, {"id": 3, "parent": 2, "depth": 2}]
    pos = search_tree.tree_layout(nodes)
    assert pos[1] == (0.0, -1) and pos[3] == (1.0, -2) and pos[2] == (1.0, -1)
    assert pos[0] == (0.5, 0)


def test_search_tree_view(results):
    view = search_tree.SearchTreeView(results["dfs"])
    assert isinstance(view.figure, go.FigureWidget)
    back = next(e for e in results["dfs"].events if e["kind"] == "backtrack")
    view.slider.value = back["it"]
    assert "backtrack from node" in view.events.value


def refine_result():
    return meta.refine(RPROMPT, fixed(bad_line(1)), meta.step_feedback(ARITH),
                       meta.regenerate_from_error(continuer()))


def test_refinement_rows_mark_changes_and_the_flagged_line():
    rows = refinement.refinement_rows(refine_result())
    assert len(rows) == 2 and rows[0]["flagged"] == 1 and rows[1]["done"]
    assert rows[0]["changes"] == ["new"] * 5
    assert rows[1]["changes"] == ["kept", "changed", "kept", "kept", "kept"]
    assert rows[1]["removed"] == [bad_line(1).split("\n")[1]]
    assert refinement.line_changes("a\nb", "a\nc\nd") == ["kept", "changed", "new"]


def test_refinement_figure_and_view():
    r = refine_result()
    fig = refinement.refinement_figure(r)
    z = fig.data[0].z
    codes = list(refinement.STATUS)
    assert codes[z[1][0]] == "flagged" and codes[z[0][1]] == "done"
    assert fig.to_json()
    view = refinement.RefinementView(r)
    assert "line-through" in view.after.value and "y(0)" in view.before.value
    view.slider.value = 0
    assert view.before.value == ""


def test_pareto_front_and_figure():
    rows = [{"method": "a", "setting": "1", "accuracy": 0.5, "output_tokens": 100},
            {"method": "a", "setting": "2", "accuracy": 0.6, "output_tokens": 400},
            {"method": "b", "setting": "1", "accuracy": 0.55, "output_tokens": 150},
            {"method": "b", "setting": "2", "accuracy": 0.55, "output_tokens": 500}]
    front = compute.pareto_front(rows)
    assert [(r["method"], r["setting"]) for r in front] == [("a", "1"), ("b", "1"), ("a", "2")]
    fig = compute.pareto_figure(rows)
    assert [t.name for t in fig.data] == ["a", "b", "Pareto front"]
    assert list(fig.data[2].x) == [100, 150, 400]
    assert fig.data[0].error_y.array is None                       # no intervals, no error bars
    with_ci = [dict(r, low=r["accuracy"] - 0.1, high=r["accuracy"] + 0.2) for r in rows]
    bars = compute.pareto_figure(with_ci).data[0].error_y
    assert list(bars.array) == pytest.approx([0.2, 0.2]) and list(bars.arrayminus) == pytest.approx([0.1, 0.1])


def test_chains_figure_error_bars():
    from widgets import chains
    results = {"x": (0.5, 10.0), "y": (0.25, 20.0)}
    fig = chains.chains_figure(results, {"x": (0.4, 0.7), "y": (0.1, 0.3)}, title="t")
    assert list(fig.data[0].error_y.array) == pytest.approx([0.2, 0.05])
    assert list(fig.data[0].error_y.arrayminus) == pytest.approx([0.1, 0.15])
    with pytest.raises(ValueError, match="intervals"):
        chains.chains_figure(results, {"x": (0.4, 0.7)})


def test_chain_explorer_runs_the_chosen_chain_and_prices_every_chain():
    """The explorer runs the chain picked on the problem picked, under a trace: stages drawn
    from the trace, the verdict of the task's check, and every chain's bill on that problem."""
    from workbench.budget import Cost
    from workbench.meta import TextOutput
    from workbench.tasks import Problem
    from workbench.trace import emit
    calls = []

    def two_stage(p):
        calls.append(("two", p.id))
        emit("stage", index=0, prompt=p.question, output="plan")
        emit("stage", index=1, prompt="plan", output=p.reference)
        return TextOutput(p.reference, Cost(input_tokens=3, output_tokens=2, calls=2))

    def wrong(p):
        calls.append(("wrong", p.id))
        emit("tool", tool="CALC", call="1+1", result="=2")
        return TextOutput("0", Cost(input_tokens=1, output_tokens=1, external_tokens=2, calls=1))

    problems = [Problem("a", "1+1", "2"), Problem("b", "2+2", "4")]
    ex = chains.ChainExplorer({"two stages": two_stage, "wrong": wrong}, problems,
                              lambda p, text: text.strip() == p.reference)
    assert len(ex.fig.layout.annotations) == 2 and "right" in ex.output.value
    assert ex.table.value.count("<tr>") == 3 and ">yes<" in ex.table.value
    ex.chain.value = "wrong"
    assert "wrong</b>" in ex.output.value and "1+1 &rarr; =2" in ex.output.value
    assert len(ex.fig.layout.annotations) == 0
    n = len(calls)
    ex.problem.value = 1                  # a new problem: the table is computed for it once
    assert ("two", "b") in calls[n:] and ("wrong", "b") in calls[n:]
    ex.problem.value = 0
    assert calls[-1] == ("wrong", "a")    # the table of problem a was kept
    with pytest.raises(ValueError, match="chain must be one of"):
        chains.ChainExplorer({"x": two_stage}, problems, lambda p, t: True, chain="y")
    with pytest.raises(ValueError, match="must not be empty"):
        chains.ChainExplorer({}, problems, lambda p, t: True)
