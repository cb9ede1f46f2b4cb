import math

import numpy as np

from workbench import meta
from workbench.budget import Cost
from workbench.meta import TextGenerator
from widgets import parallel as views


def fixed(texts):
    it = iter(texts)
    return TextGenerator(lambda p, s: next(it))


def test_vote_figure_marks_winner_and_truth():
    r = meta.majority_vote("Q\n", fixed(["A: 5", "A: 7", "A: 7"]), 3)
    fig = views.vote_figure(r, correct=5)
    bar = fig.data[0]
    assert list(bar.x) == ["5", "7"] and list(bar.y) == [1.0, 2.0]
    assert list(bar.text) == ["", "winner"]
    assert bar.marker.color[0] != bar.marker.color[1]  # the correct answer is coloured apart


def test_best_of_n_figure_outlines_choice():
    scorer = lambda p, outs: ([0.1, 0.9, 0.5], Cost())
    r = meta.best_of_n("Q\n", fixed(["a", "b", "c"]), scorer, 3)
    fig = views.best_of_n_figure(r, [False, True, False])
    assert list(fig.data[0].y) == [0.1, 0.9, 0.5]
    assert list(fig.data[0].marker.line.width) == [0, 3, 0]


def test_rejection_figure_from_trace():
    import workbench as wb
    gen = TextGenerator(lambda p, s: ("yes" if s % 2 else "no", math.log(0.5)))
    with wb.trace() as t:
        meta.rejection_sample("", gen, meta.filter_target(lambda x: x == "yes"), 0.0,
                              num_samples=3, max_proposals=200, seed=0)
    fig = views.rejection_figure(t.events, 0.0)
    n = len(t.of("propose_accept")) + len(t.of("propose_reject"))
    assert len(fig.data[0].x) == n and fig.data[2].y[-1] == len(t.of("propose_accept")) / n


def test_scaling_and_kl_figures():
    curves = {"vote": {"n": [1, 4], "accuracy": [0.4, 0.6], "stderr": [0.02, 0.02]},
              "oracle": {"n": [1, 4], "accuracy": [0.4, 0.8], "stderr": [0.02, 0.01]}}
    fig = views.scaling_figure(curves, limits={"vote limit": 0.65})
    assert {tr.name for tr in fig.data} == {"majority vote", "pass@N (oracle)"}
    ns = [1, 2, 4]
    fig = views.kl_figure(ns, [0, 0.2, 0.6], [meta.bon_kl_bound(n) for n in ns])
    assert np.allclose(fig.data[1].y, [0, math.log(2) - 0.5, math.log(4) - 0.75])


def test_voting_explorer_redraws(tiny_lm):
    ex = views.VotingExplorer(tiny_lm, "Q: 1+2\n", correct=3)
    ex.n.value = 3
    assert len(ex.fig.data) == 1 and "cost" in ex.info.value


def test_voting_explorer_asks_with_the_tasks_stop_strings_and_reader(tiny_lm):
    """On another task the explorer stops where the task's format stops and votes on what the
    task's reader reads (here a reader that sees the stop strings were applied)."""
    seen = []

    def reader(text):
        seen.append(text)
        return "cut" if "\n" not in text else None
    ex = views.VotingExplorer(tiny_lm, "Q: 1+2\n", correct="cut", stop=("\n",),
                              answer_fn=reader)
    assert seen and ex.stop == ("\n",)
    assert all("\n" not in t[:-1] for t in seen)     # each reply ends at its first newline
    assert ex.run().answer in ("cut", None)
