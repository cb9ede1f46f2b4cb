"""Traces that travel: runs recorded with a model from outside TinyWorld (a GPT-2 with its own
BPE, loaded by path like a Hub model), saved, loaded back without the model, and replayed in the
same views; each view draws the same figure from the loaded trace as from the live run."""
import json

import pytest

import workbench as wb
from conftest import load_script
from widgets.beam_tree import beam_tree_figure
from widgets.chains import stages_figure
from widgets.parallel import best_of_n_figure, rejection_figure, vote_figure
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
