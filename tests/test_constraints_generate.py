"""Constrained generation: validity, fast-forward savings, budget, adapter form, errors."""
import re

import pytest
import torch

import workbench as wb
from workbench.constraints import (ConstraintAdapter, generate, json_constraint,
                                   regex_constraint)
from workbench.decoding import sample
from workbench.tinyworld.worlds import JSON_PROMPT, RECORD_SCHEMA, validate_record


@pytest.fixture(scope="module")
def record_index(tiny_lm):
    return json_constraint(RECORD_SCHEMA, tiny_lm)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_constrained_sample_validates(tiny_lm, record_index, seed):
    g = generate(tiny_lm, JSON_PROMPT, record_index, seed=seed, max_new_tokens=120)
    assert validate_record(g.text) == (True, "valid"), g.text
    assert g.finish_reason == "eos" and g.info["accepted"]
    assert g.cost.output_tokens == len(g.token_ids) and g.cost.input_tokens == len(g.prompt_ids)
    assert len(g.logprobs) == len(g.token_ids) and all(lp <= 0 for lp in g.logprobs)


def test_same_seed_same_output(tiny_lm, record_index):
    a = generate(tiny_lm, JSON_PROMPT, record_index, seed=5, max_new_tokens=120)
    b = generate(tiny_lm, JSON_PROMPT, record_index, seed=5, max_new_tokens=120)
    assert a.token_ids == b.token_ids


def test_fast_forward_saves_passes_and_changes_nothing_else(tiny_lm, record_index):
    with wb.trace() as t:
        fast = generate(tiny_lm, JSON_PROMPT, record_index, greedy=True, max_new_tokens=120)
    slow = generate(tiny_lm, JSON_PROMPT, record_index, greedy=True, max_new_tokens=120,
                    fast_forward=False)
    assert fast.token_ids == slow.token_ids
    assert max(abs(a - b) for a, b in zip(fast.logprobs, slow.logprobs)) < 1e-4
    saved = fast.info["passes_saved"]
    assert saved > 0 and slow.info["passes_saved"] == 0
    assert slow.cost.forward_passes - fast.cost.forward_passes == saved
    assert slow.cost.forward_passes == 1 + len(slow.token_ids)       # prefill + one per token
    forced = t.of("forced")
    assert len(forced) == sum(fast.info["forced"]) + 1               # + the forced EOS
    assert all(e["source"] == "constrained" for e in forced)
    runs = t.of("fast_forward")
    assert runs and all(e["passes_saved"] == len(e["tokens"]) - 1 for e in runs)
    mask = t.of("mask")
    assert all(fast.token_ids[e["t"]:e["t"] + len(e["tokens"])] == e["tokens"] for e in runs)
    assert mask and all(0 < e["n_allowed"] and e["token"] in e["allowed"] or
                        e["n_allowed"] > len(e["allowed"]) for e in mask)


def test_template_regex_is_mostly_forced(tiny_lm):
    c = regex_constraint(r"The answer is [0-9]{1,3}\.", tiny_lm)
    g = generate(tiny_lm, "Q:", c, seed=0, max_new_tokens=20)
    assert re.fullmatch(r"The answer is [0-9]{1,3}\.", g.text)
    assert g.info["passes_saved"] >= 2


def test_budget_is_respected_and_too_small_budget_raises(tiny_lm):
    c = regex_constraint(r"[a-z]{3,40}", tiny_lm)
    for seed in range(3):
        g = generate(tiny_lm, "Story:", c, seed=seed, max_new_tokens=3)
        assert re.fullmatch(r"[a-z]{3,40}", g.text) and len(g.token_ids) <= 3
    with pytest.raises(ValueError, match="needs at least 28 tokens"):
        generate(tiny_lm, JSON_PROMPT, RECORD_SCHEMA, seed=0, max_new_tokens=27)


def test_constraint_forms_and_errors(tiny_lm):
    g = generate(tiny_lm, "Q:", r"(yes|no)", seed=0, max_new_tokens=4)
    assert g.text in ("yes", "no")
    with pytest.raises(ValueError, match="invalid regex"):
        generate(tiny_lm, "Q:", r"(yes|no", seed=0)
    free = generate(tiny_lm, "Q:", None, seed=3, max_new_tokens=8)      # no constraint at all
    assert free.token_ids == sample(tiny_lm, "Q:", seed=3, max_new_tokens=8).token_ids
    with pytest.raises(TypeError):
        generate(tiny_lm, "Q:", 42, seed=0)


def test_adapters_apply_after_the_mask(tiny_lm):
    from workbench.constraints import logit_bias
    c = regex_constraint(r"(yes|no|maybe)", tiny_lm)
    top1 = lambda l: l.masked_fill(l < l.max(-1, keepdim=True).values, float("-inf"))
    m, z = (tiny_lm.tokenizer.convert_tokens_to_ids(x) for x in ("m", "z"))
    for seed in range(3):       # top-1 after the mask keeps a valid token; 'z' stays masked
        g = generate(tiny_lm, "Q:", c, seed=seed, max_new_tokens=6,
                     adapters=[logit_bias({m: 50.0, z: 1e4}), top1])
        assert g.text == "maybe"
    first = c.allowed(c.start).tolist()
    with pytest.raises(ValueError, match="removed every allowed token"):
        generate(tiny_lm, "Q:", c, seed=0, adapters=[logit_bias({i: float("-inf")
                                                               for i in first})])


def test_adapter_form_matches_generate_without_fast_forward(tiny_lm, record_index):
    for seed in (0, 1):
        a = sample(tiny_lm, JSON_PROMPT, adapters=[ConstraintAdapter(record_index)], seed=seed,
                   max_new_tokens=120)
        b = generate(tiny_lm, JSON_PROMPT, record_index, seed=seed, max_new_tokens=120,
                     fast_forward=False)
        assert a.token_ids == b.token_ids and validate_record(a.text)[0]
        assert a.finish_reason == "eos"


def test_batched_adapter_rows_are_independent(tiny_lm):
    out = sample(tiny_lm, "Q:", adapters=[ConstraintAdapter(r"[0-9]{2}", tiny_lm)], seed=0,
                 n=4, max_new_tokens=4)
    assert all(re.fullmatch(r"[0-9]{2}", g.text) for g in out)
    assert all(torch.isfinite(torch.tensor(g.logprobs)).all() for g in out)


@pytest.mark.skipif("tinyworld" not in wb.embedded_models(), reason="tinyworld not trained yet")
def test_trained_model_json_records(target):
    index = json_constraint(RECORD_SCHEMA, target)
    for seed in range(3):
        g = generate(target, JSON_PROMPT, index, seed=seed, max_new_tokens=120)
        assert validate_record(g.text) == (True, "valid") and g.info["passes_saved"] > 0
