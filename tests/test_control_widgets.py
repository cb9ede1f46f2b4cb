"""The control-strength explorer builds its figures from sweep data (no browser)."""
import plotly.graph_objects as go
import pytest
import torch

import workbench as wb
from widgets import control as view
from widgets.style import BAD, GOOD, MUTED


def sample(label, text=" The soup was great."):
    return {"prompt": "Review:", "text": text, "target": 1, "label": label,
            "logp_star": None if label is None else -7.5}


@pytest.fixture(scope="module")
def sweep():
    points = []
    for m, rates in (("fudge", (0.5, 0.7, 0.9)), ("dexperts", (0.5, 0.8, 0.95))):
        for s, r in zip((0, 1, 2), rates):
            points.append({"method": m, "strength": s, "part": "review", "attribute_rate": r,
                           "grammatical": 1 - s / 10, "logp_star": -8 - s,
                           "logp_target": -9 - s, "samples": [sample(1), sample(-1),
                                                               sample(None, " The The")]})
    return {"points": points, "strength_name": {"fudge": "beta", "dexperts": "alpha"}}


def test_tradeoff_figure(sweep):
    fig = view.tradeoff_figure(sweep, "dexperts", 1, fluency="grammatical")
    lines = {t.name: t for t in fig.data if t.name}
    assert set(lines) == {"fudge", "dexperts"}
    assert list(lines["dexperts"].x) == [0.5, 0.8, 0.95]
    assert list(lines["dexperts"].y) == [1.0, 0.9, 0.8]
    assert lines["fudge"].line.color == MUTED and lines["dexperts"].line.color != MUTED
    assert list(lines["dexperts"].text) == ["alpha=0", "alpha=1", "alpha=2"]
    ring = fig.data[-1]
    assert (ring.x[0], ring.y[0]) == (0.8, 0.9) and ring.marker.line.color == BAD
    assert len(view.tradeoff_figure(sweep).data) == 2          # no method chosen: no ring
    with pytest.raises(ValueError, match="fluency"):
        view.tradeoff_figure(sweep, fluency="bleu")
    with pytest.raises(ValueError, match="no point"):
        view.tradeoff_figure(sweep, "fudge", 7)
    with pytest.raises(ValueError, match="part"):
        view.tradeoff_figure(sweep, part="tasks")


def test_samples_are_coloured_by_the_oracle(sweep):
    fig = view.samples_figure([sample(1), sample(-1), sample(None, " <b>x")])
    table = fig.data[0]
    assert list(table.cells.values[0]) == ["positive", "negative", "not a review"]
    assert list(table.cells.font.color[2]) == [GOOD, BAD, MUTED]
    assert list(table.cells.values[1]) == ["-7.50", "-7.50", "-"]
    assert "&lt;b&gt;x" in table.cells.values[2][2]              # text is escaped


def test_explorer_figure_and_view(sweep):
    fig = view.explorer_figure(sweep, "fudge", 2)
    assert isinstance(fig.data[-1], go.Table) and "beta = 2" in fig.layout.title.text
    assert len(fig.data[-1].cells.values[0]) == 3
    ex = view.ControlExplorer(sweep)
    assert isinstance(ex.figure, go.FigureWidget)
    assert list(ex.strength.options) == [0, 1, 2]
    ex.method.value = "dexperts"
    assert "dexperts" in ex.figure.layout.title.text
    ex.strength.value = 2
    ring = [t for t in ex.figure.data if isinstance(t, go.Scatter)][-1]
    assert (ring.x[0], ring.y[0]) == (0.95, -10)
    ex.fluency.value = "logp_target"
    ring = [t for t in ex.figure.data if isinstance(t, go.Scatter)][-1]
    assert ring.y[0] == -11


def test_explorer_runs_fresh_samples(sweep, tokenizer):
    from conftest import random_llama
    torch.set_num_threads(1)
    lms = [wb.LanguageModel(random_llama(tokenizer, seed=s), tokenizer, f"m{s}") for s in (0, 1)]
    models = {"target": lms[0], "positive": lms[1], "negative": lms[0], "draft": lms[1]}
    with pytest.raises(ValueError, match="classifier"):
        view.ControlExplorer(sweep, models=models, n=3)
    ex = view.ControlExplorer(sweep, models=models, n=3, seed=0, method="dexperts")
    ex.strength.value = 2
    table = ex.figure.data[-1]
    assert len(table.cells.values[0]) == 3
    assert set(table.cells.values[0]) <= {"positive", "negative", "not a review"}


def test_step_figure():
    fig = view.step_figure([" great", " rude"], {"target": [0.3, 0.2], "dexperts": [0.6, 0.01]})
    assert [t.name for t in fig.data] == ["target", "dexperts"]
    assert list(fig.data[1].y) == [0.6, 0.01] and fig.layout.barmode == "group"
