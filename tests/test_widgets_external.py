"""Widgets of chapters 10-11: judges' views (widgets.external) and token budgets
(widgets.compute)."""
from workbench.budget import Cost
from workbench.meta import TextGenerator
from widgets import compute, external


def test_step_scores_figure_colours_steps():
    fig = external.step_scores_figure(["1+2=3, 3*4", "3*4=13"], [0.9, 0.2], [True, False], 0.3)
    bar = fig.data[0]
    assert list(bar.y) == [0.9, 0.2] and bar.marker.color[0] != bar.marker.color[1]
    assert any("0.30" in a.text for a in fig.layout.annotations)


def test_discrimination_figure_marks_chance():
    fig = external.discrimination_figure({"pooled": 0.85, "within": 0.65, "slip": 0.5})
    bar = fig.data[0]
    assert list(bar.y) == ["pooled", "within", "slip"] and list(bar.x) == [0.85, 0.65, 0.5]
    assert len(set(bar.marker.color)) == 3
    assert fig.layout.shapes[0].x0 == 0.5 and "chance" in fig.layout.xaxis.title.text


def test_selector_explorer_switches_judges():
    texts = ["A: 1", "A: 2", "A: 3"]
    gen = TextGenerator(lambda p, s: texts[s % 3])
    first = lambda p, outs: ([1.0 if o.text == "A: 1" else 0.0 for o in outs], Cost())
    right = lambda p, outs: ([1.0 if o.text == "A: 2" else 0.0 for o in outs],
                             Cost(external_tokens=5))
    ex = external.SelectorExplorer(gen, "Q\n", {"first": first, "right": right},
                                   check=lambda t: t == "A: 2", n=12)
    r = ex.update()
    assert r.candidates[r.chosen].text == "A: 1" and "wrong" in ex.fig.layout.title.text
    ex.judge.value = "right"
    assert "right" in ex.fig.layout.title.text and "5" in ex.info.value


def test_best_at_budget_and_cost_figure():
    rows = [{"name": "a", "accuracy": 0.3, "total_tokens": 10},
            {"name": "b", "accuracy": 0.6, "total_tokens": 100},
            {"name": "c", "accuracy": 0.6, "total_tokens": 50}]
    assert compute.best_at_budget(rows, 5) is None
    assert compute.best_at_budget(rows, 20)["name"] == "a"
    assert compute.best_at_budget(rows, 1000)["name"] == "c"
    fig = compute.cost_figure([dict(r, input_tokens=1, output_tokens=2, external_tokens=3)
                               for r in rows])
    assert len(fig.data) == 4 and list(fig.data[3].y) == [3, 3, 3]


def test_table5_explorer_follows_the_table():
    rows = {r["name"]: r for r in compute.table5_rows(10, 20, n=4, n_b=2, n_e=2, s=2, n_r=1)}
    assert rows["best-of-n (llm scorer)"]["external_tokens"] == 4 * 31
    assert rows["weighted self-consistency"]["external_tokens"] == 4 * 30
    ex = compute.Table5Explorer()
    ex.sliders["n"].value = 2
    bon = list(ex.fig.data[1].y)[list(ex.fig.data[1].x).index("best-of-n (log-p)")]
    assert bon == 2 * ex.sliders["t"].value


def test_evidence_figure_one_row_per_text():
    fig = external.evidence_figure({"right": (["1", "+", "2", "=3"], [0.1, 0.0, 0.2, 0.5]),
                                    "one slip": (["1", "+", "2", "=4"], [0.1, 0.0, 0.2, -2.0])})
    assert len(fig.data) == 2 and list(fig.data[1].y) == [0.1, 0.0, 0.2, -2.0]
    colours = fig.data[1].marker.color
    assert colours[3] != colours[0]                       # the slip's vote stands out
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["right: total +0.8 nats", "one slip: total -1.7 nats"]
