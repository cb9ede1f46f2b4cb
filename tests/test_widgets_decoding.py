"""Widgets of chapters 1-3: distribution explorer, step-through generation, beam tree."""
import math
import statistics

import numpy as np
import pytest
import torch

from widgets import beam_tree, distribution, stepper
from widgets.style import GOOD, MUTED
from workbench import adapters, decoding


# -- distribution explorer ----------------------------------------------------------------
def test_make_adapters_order_and_values():
    ads = distribution.make_adapters({"eta": 1e-3, "temperature": 0.5, "top_k": 7, "top_p": None})
    assert [adapters.describe(a) for a in ads] == ["temperature(tau=0.5)", "top_k(k=7)",
                                                   "eta(eps=0.001)"]
    with pytest.raises(ValueError, match="unknown adapter"):
        distribution.make_adapters({"top_z": 1})


def test_adapter_labels_read_as_typed():
    """A slider's 0.1 * 9 is labelled 0.9 (issue 22: `top_p(p=0.9000000000000001)`)."""
    slid = distribution.make_adapters({"top_p": 0.1 * 9, "temperature": 0.7000000000000001})
    assert [adapters.describe(a) for a in slid] == ["temperature(tau=0.7)", "top_p(p=0.9)"]
    assert repr(adapters.Mirostat(tau=0.1 * 30, lr=0.1)) == "Mirostat(tau=3, lr=0.1)"
    assert adapters.describe(adapters.top_p) == "top_p"


def test_distribution_data_matches_the_adapters(tiny_lm):
    logits = tiny_lm.next_logits("Story: The")[0] * 20
    p = torch.softmax(logits.double(), -1).numpy()
    ids = distribution.shown_tokens(p, top=15)
    labels = distribution.token_labels(tiny_lm.tokenizer, ids)
    settings = {"temperature": 0.8, "top_p": 0.7}
    d = distribution.distribution_data(logits, settings, ids, labels)
    ref = adapters.top_p(adapters.temperature(logits, 0.8), 0.7)
    kept = torch.isfinite(ref)
    assert d["n_kept"] == int(kept.sum()) and d["kept"] == kept[ids].tolist()
    assert d["kept_mass"] == pytest.approx(float(p[kept.numpy()].sum()))
    assert d["q"] == pytest.approx(torch.softmax(ref.double(), -1)[ids].tolist())
    assert d["entropy_p"] == pytest.approx(float(-(p * np.log(p)).sum()))
    assert d["entropy_q"] < d["entropy_p"]
    assert len(set(labels)) == len(labels) and d["p"] == sorted(d["p"], reverse=True)
    fig = distribution.distribution_figure(d, "Story: The")
    bars = fig.data[0]
    assert list(bars.x) == labels
    assert [c == MUTED for c in bars.marker.color] == [not k for k in d["kept"]]
    assert [t == "✕" for t in bars.text] == [not k for k in d["kept"]]
    assert f"{d['n_kept']} of {tiny_lm.vocab_size} tokens kept" in fig.layout.title.text
    assert fig.data[2].visible is False                # no p* given


def test_true_distribution_beside_the_model(tiny_lm):
    p_star = distribution.true_next(tiny_lm, "Story: The")
    assert p_star is not None and p_star.sum() == pytest.approx(1.0)
    assert distribution.true_next(tiny_lm, "Q: 1+1") is None
    assert distribution.true_next(tiny_lm, "Story: The zebra") is None   # not in the grammar
    ex = distribution.DistributionExplorer(tiny_lm, "Story: The", settings={"top_k": 3})
    d = ex.last
    assert d["p_star"] is not None and ex.fig.data[2].visible is not False
    top_true = int(np.argmax(p_star))
    assert top_true in d["ids"]                        # p*'s tokens are drawn too
    kept = torch.isfinite(adapters.top_k(ex.logits, 3)).numpy()
    assert d["p_star_kept"] == pytest.approx(float(p_star[kept].sum()))
    assert "p* mass kept" in ex.fig.layout.title.text


def test_explorer_sliders_redraw_the_figure(tiny_lm):
    ex = distribution.DistributionExplorer(tiny_lm, "Review: The", settings={})
    assert ex.last["n_kept"] == tiny_lm.vocab_size
    ex.on["top_k"].value = True
    ex.value["top_k"].value = 4
    assert ex.last["n_kept"] == 4 and sum(ex.last["kept"]) == 4
    assert list(ex.fig.data[1].y) == pytest.approx(ex.last["q"])
    ex.on["temperature"].value = True
    ex.value["temperature"].value = 2.0
    assert ex.last["settings"] == {"temperature": 2.0, "top_k": 4}
    ex.prompt.value = "Story: A"
    assert ex.last["p_star"] is not None and ex.fig.data[0].x[0] == ex.labels[0]


def test_slider_redraw_is_fast(tiny_lm):
    times = distribution.redraw_times(tiny_lm, "Story: The", n=21)
    assert statistics.median(times) <= 0.150, times


# -- step-through generation --------------------------------------------------------------
def test_stepper_greedy_matches_decoding_and_rewinds(tiny_lm):
    s = stepper.StepSession(tiny_lm, "Story:")
    for _ in range(6):
        s.greedy()
    ref = decoding.greedy(tiny_lm, "Story:", max_new_tokens=6, eos=False)
    assert s.tokens == ref.token_ids
    assert s.logprobs == pytest.approx(ref.logprobs, abs=1e-5)
    assert s.logprob == pytest.approx(tiny_lm.score("Story:", [s.tokens])[0], abs=1e-4)
    before = s.candidates()
    s.branch()
    s.rewind(2)
    assert s.tokens == ref.token_ids[:4]
    s.choose(before["ids"][1])                         # a different 5th token
    snap = s.snapshot()
    assert len(snap["branches"]) == 1 and len(snap["path"]["cum"]) == 6
    assert snap["path"]["cum"][-1] == pytest.approx(s.logprob)
    s.switch(0)
    assert s.tokens == ref.token_ids
    torch.testing.assert_close(s.state.logits[0], tiny_lm.next_logits(
        [tiny_lm.encode("Story:") + s.tokens])[0], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="k must"):
        s.rewind(99)


def test_stepper_sampling_uses_the_adapters_and_seed(tiny_lm):
    ads = [lambda x: adapters.top_k(x, 3)]
    a = stepper.StepSession(tiny_lm, "Story:", adapters=ads, seed=5)
    b = stepper.StepSession(tiny_lm, "Story:", adapters=ads, seed=5)
    for _ in range(5):
        ta = a.candidates()
        assert a.sample() in ta["ids"][:3]
        b.sample()
    assert a.tokens == b.tokens
    c = a.candidates()
    assert sum(c["kept"]) == 3 and sum(c["q"]) == pytest.approx(1.0)


def test_stepper_figure_content(tiny_lm):
    s = stepper.StepSession(tiny_lm, "Story:", adapters=[lambda x: adapters.top_k(x, 2)])
    s.greedy(), s.greedy()
    s.branch()
    s.rewind(1)
    fig = stepper.stepper_figure(s.snapshot())
    names = [t.name for t in fig.data]
    assert names == ["branch 0", "path", "p_θ", "q (adapted)"]
    assert list(fig.data[1].y) == pytest.approx([0.0] + list(np.cumsum(s.logprobs)))
    colors = list(fig.data[2].marker.color)[::-1]
    assert colors[:2] == [GOOD, GOOD] and set(colors[2:]) == {MUTED}
    w = stepper.Stepper(tiny_lm, "Story:")
    w.buttons["sample"].click()
    w.buttons["greedy"].click()
    assert len(w.session.tokens) == 2 and "2</b> tokens" in w.info.value


# -- beam tree ----------------------------------------------------------------------------
def test_beam_tree_figure_shows_every_node(tiny_lm):
    r = decoding.beam_search(tiny_lm, "Story: The", num_beams=3, max_new_tokens=5)
    pos = beam_tree.tree_layout(r.tree)
    assert set(pos) == {n.id for n in r.tree}
    assert all(pos[n.id][0] == n.step for n in r.tree)
    ys = [pos[n.id][1] for n in r.tree if not any(m.parent == n.id for m in r.tree)]
    assert sorted(ys) == list(range(len(ys)))          # leaves on distinct rows
    fig = beam_tree.beam_tree_figure(r, tiny_lm.tokenizer)
    nodes = {t.name: t for t in fig.data if t.name}
    counts = {s: sum(n.status == s for n in r.tree) for s in ("kept", "pruned", "finished")}
    assert {k: len(v.x) for k, v in nodes.items()} == counts
    assert nodes["pruned"].marker.color == MUTED
    stars = [t for t, s in zip(nodes["finished"].text, nodes["finished"].marker.symbol)
             if s == "star"]
    assert len(stars) == len(r.hypotheses) and any("#1" in t for t in stars)


def test_beam_tree_widget_reruns_on_controls(tiny_lm):
    w = beam_tree.BeamTree(tiny_lm, "Story:", num_beams=2, max_new_tokens=4)
    n2 = len(w.result.tree)
    w.width.value = 4
    assert w.result.params["num_beams"] == 4 and len(w.result.tree) > n2
    w.penalty.value = -1.0
    assert w.result.params["length_penalty"] == -1.0
    assert "#1" in w.info.value and len(w.fig.data) == 6
    assert math.isfinite(w.result.score)


def test_repetition_figure_draws_each_method_with_its_interval():
    from widgets.token_level import repetition_figure
    from workbench import stats
    rows = [{"method": "greedy", "rep": stats.mean_interval([0.8, 0.9, 0.85]),
             "loops": stats.accuracy([1, 1, 1])},
            {"method": "sampling", "rep": stats.mean_interval([0.0, 0.1, 0.05]),
             "loops": stats.accuracy([0, 0, 1])}]
    fig = repetition_figure(rows)
    assert [tr.x for tr in fig.data] == [("greedy", "sampling")] * 2
    assert fig.data[0].y == pytest.approx((0.85, 0.05))
    assert fig.data[1].y == pytest.approx((1.0, 1 / 3))
    assert fig.data[1].error_y.arrayminus[0] == pytest.approx(1.0 - rows[0]["loops"].low)
