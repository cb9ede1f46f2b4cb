import json

import pytest

import workbench as wb
from workbench import decoding
from workbench.budget import Budget, BudgetExceeded, Cost, total
from workbench.trace import emit, instrumentation, source


def test_no_active_trace_records_nothing():
    emit("step", x=1)  # must not fail without a trace


def test_trace_collects_json_serialisable_events(tiny_lm):
    import torch
    with wb.trace() as t:
        emit("custom", tensor=torch.tensor([1.5, float("-inf")]), n=3)
        decoding.greedy(tiny_lm, "Story:", max_new_tokens=4)
    assert t.of("custom")[0]["tensor"] == [1.5, "-inf"]
    steps = t.of("step")
    assert len(steps) >= 1 and all(e["source"] == "greedy" for e in steps)
    assert {"token", "logprob", "top"} <= set(steps[0])
    json.loads(t.to_json())


def test_nested_traces_and_sources():
    """An event reaches every open trace (a widget that opens its own hides nothing from the
    user's); each trace tags it with the innermost source opened while it was recording."""
    with wb.trace() as outer:
        with source("meta"):
            emit("a")
            with wb.trace() as inner:
                with source("inner"):
                    emit("b")
    assert [e["kind"] for e in outer.events] == ["a", "b"]
    assert [e["kind"] for e in inner.events] == ["b"]
    assert [e["source"] for e in outer.events] == ["meta", "inner"]
    assert inner.events[0]["source"] == "inner" and inner.events[0]["i"] == 0


def test_instrumentation_switch_and_max_events():
    with wb.trace(max_events=2) as t:
        for _ in range(5):
            emit("x")
        with instrumentation(False):
            emit("y")
    assert len(t) == 2 and t.dropped == 3 and not t.of("y")


def test_cost_addition_and_total():
    a = Cost(input_tokens=3, output_tokens=5, calls=1)
    b = Cost(external_tokens=7, forward_passes=2, computed_tokens=9, calls=1)
    c = total([a, b])
    assert c == Cost(3, 5, 7, 2, 9, 2) and c.total_tokens == 15
    assert sum([a, b]) == c


def test_budget_limits():
    b = Budget(output_tokens=10, total_tokens=12)
    assert b.affords(Cost(output_tokens=10))
    b.charge(Cost(output_tokens=8))
    assert b.remaining("output_tokens") == 2
    assert not b.affords(Cost(output_tokens=3))
    with pytest.raises(BudgetExceeded):
        b.charge(Cost(input_tokens=5))
    with pytest.raises(ValueError, match="unknown budget field"):
        Budget(tokens=3)
    with pytest.raises(ValueError, match="output_tokens"):
        Budget(output_tokens=-1)


def test_results_carry_cost(tiny_lm):
    outs = decoding.sample(tiny_lm, "Story:", n=3, seed=0, max_new_tokens=6)
    c = total(o.cost for o in outs)
    assert c.calls == 3
    assert c.input_tokens == 3 * len(tiny_lm.encode("Story:"))
    assert c.output_tokens == sum(len(o.token_ids) for o in outs)
    # the prompt is computed once for the three samples
    assert c.computed_tokens < c.input_tokens + c.output_tokens


def test_table5_predictions():
    from workbench.budget import table5
    c = table5("best-of-n (llm scorer)", t_in=10, t=20, n=4)
    assert (c.input_tokens, c.output_tokens, c.external_tokens) == (40, 80, 4 * 31)
    # the survey's example: beam 16 x 64 expansions spends best-of-1024's output tokens ...
    beam = table5("step-level beam (scorer)", 10, 100, n_b=16, n_e=64, s=5, c_s=110)
    bon = table5("reranking", 10, 100, n=1024, c_s=110)
    assert beam.output_tokens == bon.output_tokens
    # ... but calls the scorer S times as often
    assert beam.external_tokens == 5 * bon.external_tokens
    # three self-feedback refinements cost 7T output tokens, cheaper than best-of-8
    assert table5("refinement (self-feedback)", 10, 50, n_r=3).output_tokens == 7 * 50
    for bad in (dict(method="nope", t_in=1, t=1), dict(method="reranking", t_in=1, t=1, m=2),
                dict(method="reranking", t_in=-1, t=1)):
        with pytest.raises(ValueError):
            table5(**bad)
