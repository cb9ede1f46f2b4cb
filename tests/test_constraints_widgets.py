"""Constrained-decoding widgets: pure figure functions from traces, and the interactive views."""
import json

import workbench as wb
from widgets.constrained import (ConstrainedView, HealingView, constrained_steps,
                                 healing_figure, healing_rows, mask_figure)
from workbench.constraints import compare_healing, generate, json_constraint, template_tokens
from workbench.tinyworld.worlds import JSON_PROMPT, RECORD_SCHEMA


def test_mask_figure_from_a_trace(tiny_lm):
    with wb.trace() as t:
        g = generate(tiny_lm, JSON_PROMPT, json_constraint(RECORD_SCHEMA, tiny_lm), seed=0,
                     max_new_tokens=120)
    steps = constrained_steps(json.loads(t.to_json()), tiny_lm.tokenizer)
    assert [s["t"] for s in steps] == list(range(len(g.token_ids) + 1))      # + the EOS step
    assert [s["token"] for s in steps][:-1] == g.token_ids
    assert [s["forced"] for s in steps][:-1] == g.info["forced"]
    assert [s["state"] for s in steps][:-1] == g.info["states"]
    fig = mask_figure(steps)
    free, forced = fig.data
    assert len(forced.x) == sum(s["forced"] for s in steps) and set(forced.y) == {1}
    assert len(free.x) + len(forced.x) == len(steps) and min(free.y) >= 2
    assert fig.layout.yaxis.type == "log"


def test_healing_figure_reproduces_figure_3(tokenizer):
    data = template_tokens(tokenizer, "An unnatural token", "ization")
    rows = healing_rows(data)
    assert rows["with"] == [("An", "prompt"), (" unnatural", "prompt"),
                            (" tokenization", "healed")]
    assert [r for _, r in rows["without"]][:4] == ["prompt", "prompt", "boundary", "boundary"]
    fig = healing_figure(data)
    by_name = {tr.name: tr for tr in fig.data}
    assert list(by_name["healed"].text) == ["␣tokenization"]
    assert list(by_name["boundary"].text) == ["␣tok", "en"]
    assert set(by_name["prompt"].y) == {"without healing", "with healing"}


def test_healing_figure_from_generations(tiny_lm):
    data = compare_healing(tiny_lm, "Story: An unnatural token", max_new_tokens=3)
    rows = healing_rows(data)
    healed = [t for t, r in rows["with"] if r == "healed"]
    assert len(healed) == 1 and healed[0].startswith(" token")
    assert [t for t, r in rows["without"] if r == "boundary"] == [" tok", "en"]
    assert len(healing_figure(data).data) == 4


def test_interactive_views_build(tiny_lm):
    view = ConstrainedView(tiny_lm, "Q:", r"The answer is [0-9]{1,2}\.", seed=0,
                           max_new_tokens=20)
    assert view.steps and len(view.figure.data) == 2
    view.slider.value = view.slider.max
    assert "state" in view.detail.value and view.figure.layout.shapes
    heal = HealingView(tiny_lm, max_new_tokens=2)
    assert heal.figure.data and "without" in heal.info.value


def test_conditional_figure():
    from widgets.constrained import conditional_figure
    fig = conditional_figure([19, 20], {"constrained": [0.7, 0.3], "rejection": [0.5, 0.5]},
                             {"p(y | valid)": [0.5, 0.5]})
    bars = [t for t in fig.data if t.type == "bar"]
    marks = [t for t in fig.data if t.type == "scatter"]
    assert [b.name for b in bars] == ["constrained", "rejection"] and list(bars[0].x) == ["19", "20"]
    assert len(marks) == 1 and list(marks[0].y) == [0.5, 0.5]
