"""Lookahead decoding (survey §7.2; Fu et al. 2024): exactly greedy's tokens, in fewer
sequential steps where the text repeats."""
import pytest

import workbench as wb
from workbench import decoding, efficiency
from workbench.efficiency import lookahead_decoding
from workbench.trace import EVENTS

PROMPTS = ["Story:", "Story: the cat sat. the cat sat. the cat", "Q: 12+7*3-5\n"]
SETTINGS = [(4, 3, 4), (5, 2, 3), (3, 4, 2), (1, 2, 1), (2, 5, 0)]   # (window, ngram, G)
REPETITIVE = PROMPTS[1]


@pytest.fixture(scope="module")
def tinyworld():
    return wb.load("tinyworld", device="cpu")


def assert_same_as_greedy(out, ref):
    assert out.token_ids == ref.token_ids
    assert out.text == ref.text
    assert out.finish_reason == ref.finish_reason
    assert out.logprob == pytest.approx(ref.logprob, abs=1e-4)    # the end token included
    assert (out.end_logprob is None) == (ref.end_logprob is None)
    assert out.proposal_logprob == 0.0                                # deterministic, as greedy
    assert out.logprobs == pytest.approx(ref.logprobs, abs=1e-4)
    steps = out.info["steps"]
    # each step adds at least one token (EOS counted: it is a generated token too); the
    # prompt's pass is a step even when no token is asked for, as in greedy decoding
    assert steps <= max(len(out.token_ids) + (out.finish_reason == "eos"), 1)
    assert steps <= ref.cost.forward_passes
    assert sum(out.info["accepted_per_step"]) == len(out.token_ids)
    assert len(out.info["accepted_per_step"]) == steps
    assert out.cost.forward_passes == out.info["forward_passes"] == steps
    assert out.cost.output_tokens == len(out.token_ids)


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("eos", [True, False])
def test_tokens_equal_greedy_on_tinyworld(tinyworld, prompt, eos):
    ref = decoding.greedy(tinyworld, prompt, 48, eos=eos)
    for window, ngram, g in SETTINGS:
        out = lookahead_decoding(tinyworld, prompt, window=window, ngram=ngram,
                                 max_candidates=g, max_new_tokens=48, stop_at_eos=eos)
        assert_same_as_greedy(out, ref)


@pytest.mark.parametrize("max_new_tokens", [0, 1, 2, 5])
def test_short_budgets_equal_greedy(tinyworld, tiny_lm, max_new_tokens):
    for lm in (tinyworld, tiny_lm):
        for prompt in PROMPTS[:2]:
            ref = decoding.greedy(lm, prompt, max_new_tokens, eos=False)
            out = lookahead_decoding(lm, prompt, max_new_tokens=max_new_tokens,
                                     stop_at_eos=False)
            assert_same_as_greedy(out, ref)
            assert len(out.token_ids) == max_new_tokens


def test_tokens_equal_greedy_on_a_random_llama(tiny_lm):
    for prompt in PROMPTS:
        for eos in (True, False):
            ref = decoding.greedy(tiny_lm, prompt, 40, eos=eos)
            for window, ngram, g in SETTINGS[:3]:
                out = lookahead_decoding(tiny_lm, prompt, window, ngram, g, 40, stop_at_eos=eos)
                assert_same_as_greedy(out, ref)


def test_it_saves_steps_where_text_repeats(tinyworld):
    ref = decoding.greedy(tinyworld, REPETITIVE, 64, eos=False)
    out = lookahead_decoding(tinyworld, REPETITIVE, window=4, ngram=3, max_candidates=4,
                             max_new_tokens=64, stop_at_eos=False)
    assert_same_as_greedy(out, ref)
    info = out.info
    # measured: 24 steps, 2.67 tokens per step (greedy: 64 passes, one token each)
    assert info["steps"] <= 40 < ref.cost.forward_passes == 64
    assert info["tokens_per_step"] >= 1.5
    assert info["tokens_per_step"] == pytest.approx(64 / info["steps"])
    assert max(info["accepted_per_step"]) >= 3 and info["pool_size"] > 0


@pytest.mark.parametrize("name, value", [("window", 0), ("window", 2.0), ("ngram", 1),
                                         ("ngram", True), ("max_candidates", -1),
                                         ("max_new_tokens", -1)])
def test_invalid_parameters_name_themselves(tiny_lm, name, value):
    with pytest.raises(ValueError, match=name):
        lookahead_decoding(tiny_lm, "Story:", **{name: value})


def test_trace_has_one_lookahead_step_per_step(tinyworld):
    with wb.trace() as t:
        out = lookahead_decoding(tinyworld, REPETITIVE, window=3, ngram=3, max_candidates=2,
                                 max_new_tokens=30, stop_at_eos=False)
    steps = [e for e in t.events if e["kind"] == "lookahead_step"]
    assert len(steps) == out.info["steps"] - 1          # step 0 is the prompt's pass
    assert [e["step"] for e in steps] == list(range(1, out.info["steps"]))
    assert all(e["source"] == "lookahead" for e in steps)
    assert set(EVENTS["lookahead_step"].fields) <= set(steps[0])
    tokens = out.token_ids[:1] + [tok for e in steps for tok in e["tokens"]]
    assert tokens == out.token_ids
    for e in steps:
        assert len(e["window"]) == 3
        assert all(len(c) == 2 for c in e["candidates"]) and len(e["candidates"]) <= 2
        assert 0 <= e["accepted"] <= 2 and len(e["tokens"]) == e["accepted"] + 1
    sizes = [e["pool_size"] for e in steps]
    assert sizes[0] == 0 < sizes[1]     # an n-gram (n = 3) needs two levels of the trajectory
    assert sizes[-1] == out.info["pool_size"]
    assert any(e["accepted"] for e in steps) and not steps[0]["candidates"]
    assert "lookahead_decoding" in efficiency.__all__
