"""Traces that travel: runs recorded with a model from outside TinyWorld (a GPT-2 with its own
BPE, loaded by path like a Hub model), saved, loaded back without the model, and replayed in the
same views; each view draws the same figure from the loaded trace as from the live run."""
import json
import math
from functools import partial

import plotly.graph_objects as go
import pytest

import workbench as wb
from conftest import load_script
from widgets.beam_tree import BeamTree, beam_tree_figure
from widgets.distribution import DistributionExplorer
from widgets.external import SelectorExplorer
from widgets.kv_cache import KVCacheView, PrefixStepper
from widgets.stepper import Stepper, StepSession
from workbench import adapters, meta, scoring
from widgets.chains import stages_figure
from widgets.parallel import VotingExplorer, best_of_n_figure, rejection_figure, vote_figure
from widgets.world import trace_steps_figure
from widgets.constrained import ConstrainedView, constrained_steps, mask_figure
from widgets.refinement import RefinementView, refinement_figure
from widgets.search_tree import SearchTreeView, search_tree_figure
from widgets.speculative import SpeculativeView, acceptance_figure, rounds_figure
from workbench.paths import data_dir

record = load_script("record_traces")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(live trace, results, the same trace saved and loaded back, the target model)."""
    root = tmp_path_factory.mktemp("traces")
    lm, draft = record.models(root)
    t, results = record.record(lm, draft)
    return t, results, wb.trace.load(t.save(root / "run.jsonl", lm)), lm


def same(a, b):
    assert json.dumps(a.to_plotly_json(), sort_keys=True, default=str) == \
        json.dumps(b.to_plotly_json(), sort_keys=True, default=str)


def plain(fig) -> go.Figure:
    """A figure or FigureWidget without the trace ids a widget assigns."""
    d = fig.to_plotly_json()
    return go.Figure({"data": [{k: v for k, v in tr.items() if k != "uid"} for tr in d["data"]],
                      "layout": d["layout"]})


def without(trace, kind: str) -> list:
    """The trace's events less every event of ``kind``."""
    return [e for e in trace.events if e["kind"] != kind]


def test_the_loaded_trace_is_the_recorded_one(recorded):
    t, _, back, lm = recorded
    assert back.events == t.events and back.meta["model"] == lm.name
    assert back.tokenizer.get_vocab() == lm.tokenizer.get_vocab()
    assert len(back.tokenizer) != len(wb.load("tinyworld").tokenizer)   # not TinyWorld's


def test_every_view_draws_the_same_figure_from_the_loaded_trace(recorded):
    t, r, back, lm = recorded
    same(search_tree_figure(r["stepwise_beam"]), search_tree_figure(back))
    same(beam_tree_figure(r["beam_search"], lm.tokenizer), beam_tree_figure(back, back.tokenizer))
    same(rounds_figure(r["speculative"], lm.tokenizer), rounds_figure(back, back.tokenizer))
    same(acceptance_figure(r["speculative"]), acceptance_figure(back))
    same(refinement_figure(r["refine"]), refinement_figure(back))
    same(vote_figure(r["majority_vote"]), vote_figure(back.by("majority_vote")))
    same(best_of_n_figure(r["best_of_n"]), best_of_n_figure(back.by("best_of_n")))
    same(stages_figure(t), stages_figure(back))
    same(rejection_figure(t, 0.0), rejection_figure(back, 0.0))
    same(trace_steps_figure(t.by("sample"), lm.tokenizer),
         trace_steps_figure(back.by("sample"), back.tokenizer))
    same(mask_figure(constrained_steps(t, lm.tokenizer)),
         mask_figure(constrained_steps(back, back.tokenizer)))


def test_the_run_views_open_on_a_loaded_trace_without_a_model(recorded):
    back = recorded[2]
    assert SearchTreeView(back).figure.data
    assert SpeculativeView(back, back.tokenizer).figure.data
    assert len(RefinementView(back).rows) == len(back.of("version"))
    view = ConstrainedView.replay(back)
    assert len(view.steps) == len(back.of("mask")) + len(back.of("forced"))
    assert view.result is None and view.figure.data


def test_the_shipped_trace_replays():
    """data/traces/gpt2-local.jsonl (scripts/record_traces.py) opens in every run view."""
    back = wb.trace.load(data_dir() / "traces" / "gpt2-local.jsonl")
    assert back.meta["model"] == "gpt2-local" and back.meta["schema"] == wb.trace.SCHEMA
    assert [p for e in back.events for p in wb.trace.problems(e)] == []
    rounds = {e["round"] for e in back.of("draft") + back.of("bonus") + back.of("resample")}
    assert len(rounds_figure(back, back.tokenizer).data[0].y) == len(rounds)
    assert len(vote_figure(back.by("majority_vote")).data[0].x) == \
        len(back.by("majority_vote").of("vote"))
    final = search_tree_figure(back)
    assert sum(len(tr.x) for tr in final.data if tr.mode == "markers+text") == \
        1 + sum(len(e["children"]) for e in back.of("expand"))
    assert SearchTreeView(back).figure.data and RefinementView(back).rows
    assert ConstrainedView.replay(back).steps
    assert beam_tree_figure(back, back.tokenizer).data
    assert BeamTree.replay(back).fig.data and Stepper.replay(back.by("sample")).session.steps
    assert sum(DistributionExplorer.replay(back.by("sample"), run=1).last["kept"]) == 3
    assert VotingExplorer.replay(back.by("majority_vote")).n.value == 5
    assert len(SelectorExplorer.replay(back.by("best_of_n")).judge.options) == 2
    assert len(KVCacheView.replay(back, no_cache=0).timeline.data) == 2
    assert PrefixStepper.replay(back).request.max == len(record.STREAM)


def test_beam_tree_replays_the_recorded_search(recorded):
    _, _, back, lm = recorded
    live = BeamTree(lm, "A story:", num_beams=2, max_new_tokens=5)
    view = BeamTree.replay(back)
    same(plain(live.fig), plain(view.fig))
    assert view.info.value.split("</ol>")[0] == live.info.value.split("</ol>")[0]
    assert (view.width.value, view.tokens.value) == (2, 5) and view.result is None
    assert all(w.disabled for w in (view.width, view.penalty, view.tokens, view.stopping))
    assert "needs the model" in view.view.children[0].value
    with pytest.raises(ValueError, match="no beam_step events; record a decoding.beam_search"):
        BeamTree.replay(without(back, "beam_step"))


def test_stepper_replays_the_recorded_path_and_refuses_other_tokens(recorded):
    _, _, back, lm = recorded
    view = Stepper.replay(back.by("sample"), prompt="A story:", top=10)
    live = StepSession(lm, "A story:", seed=0, top=10)
    s = view.session
    while s.next_token() is not None:
        a, b = live.snapshot(), s.snapshot()
        assert a["path"] == b["path"] and a["text"] == b["text"] and a["prompt"] == b["prompt"]
        ca, cb = a["candidates"], b["candidates"]
        assert ca["ids"] == cb["ids"] and ca["labels"] == cb["labels"] and ca["kept"] == cb["kept"]
        assert cb["p"] == pytest.approx(ca["p"], abs=1e-6) and cb["q"] == cb["p"]
        other = next(t for t in cb["ids"] if t != s.next_token())
        with pytest.raises(ValueError, match="choosing another token needs the model"):
            s.choose(other)
        view._do(lambda: s.choose(other))            # what clicking that bar does
        assert "choosing another token needs the model" in view.info.value
        assert live.sample() == s.next_token()
        view.buttons["forward"].click()
    assert len(s.tokens) == len(live.tokens) == 8 and s.snapshot()["candidates"]["ids"] == []
    view.buttons["forward"].click()
    assert "the recording ends after 8 tokens" in view.info.value
    view.buttons["rewind"].click()
    assert s.tokens == live.tokens[:-1] and set(view.buttons) == {"forward", "rewind"}
    assert "need the model" in view.view.children[0].value


def test_stepper_replays_the_adapted_distribution(recorded):
    _, _, back, lm = recorded
    s = Stepper.replay(back.by("sample"), run=1, top=10).session
    live = StepSession(lm, "A story:", partial(adapters.top_k, k=3), seed=0, top=10)
    ca, cb = live.candidates(), s.candidates()
    assert cb["kept"] == ca["kept"] and sum(cb["kept"]) == 3
    assert cb["q"] == pytest.approx(ca["q"], abs=1e-6) and sum(cb["q"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no step events; record a decoding.sample"):
        Stepper.replay(without(back, "step"))
    with pytest.raises(ValueError, match="run must be in"):
        Stepper.replay(back.by("sample"), run=999)


def test_distribution_explorer_replays_recorded_steps(recorded):
    _, _, back, lm = recorded
    view = DistributionExplorer.replay(back.by("sample"), prompt="A story:", top=10)
    live = DistributionExplorer(lm, "A story:", top=10, settings={})
    assert view.last["ids"] == live.last["ids"] and view.last["labels"] == live.last["labels"]
    assert view.last["p"] == pytest.approx(live.last["p"], abs=1e-6)
    assert list(view.fig.data[0].x) == list(live.fig.data[0].x)
    steps = view.steps
    view.step.value = 3
    assert view.prompt.value == "A story:" + back.tokenizer.decode([e["token"] for e in steps[:3]])
    assert view.last["ids"] == [t for t, _ in steps[3]["top"]] and view.prompt.disabled
    assert not hasattr(view, "on") and "adapter controls are off" in view.view.children[0].value
    adapted = DistributionExplorer.replay(back.by("sample"), run=1).last
    assert sum(adapted["kept"]) == 3 and math.isclose(sum(q for q in adapted["q"]), 1.0,
                                                      rel_tol=1e-6)
    with pytest.raises(ValueError, match="t must be in"):
        DistributionExplorer.replay(back.by("sample"), t=len(steps))
    with pytest.raises(ValueError, match="no step events"):
        DistributionExplorer.replay(without(back, "step"))


def test_voting_explorer_replays_the_recorded_run(recorded):
    _, r, back, _ = recorded
    view = VotingExplorer.replay(back.by("majority_vote"))
    same(plain(view.fig), vote_figure(r["majority_vote"]))
    assert view.n.value == 5 and view.n.disabled and view.method.disabled
    assert view.temp.layout.display == "none" and "needs the model" in view.view.children[0].value
    same(plain(VotingExplorer.replay(back.by("best_of_n")).fig), best_of_n_figure(r["best_of_n"]))
    with pytest.raises(ValueError, match="no candidate events; record a meta.majority_vote"):
        VotingExplorer.replay(without(back, "candidate"))


def test_selector_explorer_toggles_the_recorded_judges(recorded):
    _, _, back, lm = recorded
    judges = {"log p per token": scoring.LogProbScorer(per_token=True),
              "log p": scoring.LogProbScorer()}
    check = lambda text: len(text) % 2 == 0                       # noqa: E731
    live = SelectorExplorer(meta.LMGenerator(lm, max_new_tokens=6), "Question:", judges, check,
                            seed=0, n=4)
    view = SelectorExplorer.replay(back.by("best_of_n"), judges=list(judges), check=check)
    for name in judges:
        live.judge.value = view.judge.value = name
        same(plain(live.fig), plain(view.fig))
        assert view.info.value.split(";")[0] == live.info.value.split(";")[0]
    assert view.n.value == 4 and view.n.disabled
    with pytest.raises(ValueError, match="judges must name the 2 recorded"):
        SelectorExplorer.replay(back.by("best_of_n"), judges=["one"])
    with pytest.raises(ValueError, match="no candidate events; record a meta.best_of_n"):
        SelectorExplorer.replay(without(back, "candidate"))


def test_kv_cache_view_replays_the_recorded_passes(recorded):
    _, r, back, lm = recorded
    live = KVCacheView(r["timed_greedy"], r["timed_recompute"], lm.tokenizer)
    view = KVCacheView.replay(back, no_cache=0)
    for step in (0, 3, 5):
        live.slider.value = view.slider.value = step
        same(plain(live.grid), plain(view.grid))
        assert view.detail.value == live.detail.value
    same(plain(live.timeline), plain(view.timeline))
    assert "machine that recorded" in view.widget.children[0].value
    assert len(KVCacheView.replay(back).timeline.data) == 1
    with pytest.raises(ValueError, match="no_cache must be in"):
        KVCacheView.replay(back, no_cache=1)
    with pytest.raises(ValueError, match="no kv_pass events; record an efficiency.timed_greedy"):
        KVCacheView.replay(without(back, "kv_pass"))


def test_prefix_stepper_replays_the_recorded_requests(recorded):
    _, _, back, lm = recorded
    live = PrefixStepper(lm, record.STREAM, capacities=(record.CAPACITY,))
    view = PrefixStepper.replay(back)
    assert view.request.max == len(record.STREAM) and view.capacity.disabled
    for k in range(1, len(record.STREAM) + 1):
        live.request.value = view.request.value = k
        same(plain(live.fig), plain(view.fig))
        assert view.info.value == live.info.value
    assert "needs the model" in view.view.children[0].value
    assert live.cache.stored_tokens <= record.CAPACITY < sum(a for a, _, _ in live.log)
    with pytest.raises(ValueError, match="cache must be in"):
        PrefixStepper.replay(back, cache=2)
    with pytest.raises(ValueError, match="no prefix_lookup events; record an efficiency.Prefix"):
        PrefixStepper.replay(without(back, "prefix_lookup"))


def test_healing_view_replays_the_recorded_comparison(recorded):
    """The healing view opened on the loaded trace draws the live comparison's figure; the
    prompt and length controls show the recorded ones, disabled."""
    from widgets.constrained import HealingView, healing_figure
    _, r, back, _ = recorded
    view = HealingView.replay(back)
    same(plain(view.figure), plain(healing_figure(r["healing"])))
    assert view.text.value == record.HEAL_PROMPT and view.text.disabled and view.button.disabled
    assert r["healing"]["removed"] == " y" and r["healing"]["with"]["tokens"][0] == " yes"
    assert view.lm is None and repr(r["healing"]["with"]["text"]) in view.info.value
    with pytest.raises(ValueError, match="no healing_compare events"):
        HealingView.replay(without(back, "healing_compare"))
    with pytest.raises(ValueError, match="run must be in"):
        HealingView.replay(back, run=5)
