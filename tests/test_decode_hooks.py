"""The hooks of the one token loop, `decoding.decode`, with adapters that are not the package's
own: ``forced()`` (tokens appended without a model pass, fed as one run), ``spent()`` (the cost
of models an adapter runs) and ``trace_fields(row)``.  References: the same loop without
fast-forward, and teacher-forced scoring (`measures.sequence_logprob`, another code path)."""
import pytest
import torch

import workbench as wb
from workbench import decoding
from workbench.budget import Cost
from workbench.measures import sequence_logprob

PROMPT = "Story:"


@pytest.fixture(scope="module")
def lm():
    return wb.load("tinyworld", device="cpu")


class Template:
    """Forces ``fixed[t]`` at the token times it lists; free choices elsewhere."""

    def __init__(self, fixed: dict):
        self.fixed, self.t, self.seen = fixed, 0, []

    def __call__(self, logits):
        if self.t in self.fixed:        # only reached without fast-forward: mask to the one token
            keep = torch.full_like(logits, float("-inf"))
            keep[:, self.fixed[self.t]] = 0.0
            return logits + keep
        return logits

    def forced(self):
        return self.fixed.get(self.t)

    def observe(self, tokens, adapted=None):
        self.seen.append(adapted is None)
        self.t += 1


def test_forced_runs_are_fed_in_one_pass_and_change_nothing_else(lm):
    word = lm.tokenizer(" the cat", add_special_tokens=False)["input_ids"]
    assert len(word) == 2
    fixed = {2 + i: tok for i, tok in enumerate(word)} | {9: word[0]}
    fast = decoding.decode(lm, lm.prefill(PROMPT), decoding.choose_greedy, 12,
                           [Template(fixed)], eos=False)[0]
    slow = decoding.decode(lm, lm.prefill(PROMPT), decoding.choose_greedy, 12,
                           [Template(fixed)], eos=False, fast_forward=False)[0]
    assert fast.token_ids == slow.token_ids and len(fast.token_ids) == 12
    assert all(fast.token_ids[t] == tok for t, tok in fixed.items())
    assert fast.logprobs == pytest.approx(slow.logprobs, abs=1e-5)
    teacher = sequence_logprob(lm, PROMPT, [fast.token_ids])[0]
    assert fast.logprob == pytest.approx(teacher, abs=1e-4)
    # the two forced tokens at t=2, 3 ride on the pass of t=1's token (2 passes saved); the
    # lone forced token at t=9 rides on the pass of t=8's token (1 saved)
    assert slow.cost.forward_passes - fast.cost.forward_passes == 3
    with wb.trace() as t:
        decoding.decode(lm, lm.prefill(PROMPT), decoding.choose_greedy, 12, [Template(fixed)],
                        eos=False)
    assert [e["tokens"] for e in t.of("fast_forward")] == [[fast.token_ids[1]] + word,
                                                            fast.token_ids[8:10]]
    assert sorted(e["t"] for e in t.of("step")) == [t for t in range(12) if t not in fixed]


def test_a_batch_is_not_fast_forwarded(lm):
    """Rows would need different runs: every row is decoded token by token (same tokens)."""
    fixed = {1: lm.tokenizer(" the", add_special_tokens=False)["input_ids"][0]}
    tpl = Template(fixed)
    tpl.forced = lambda: fixed.get(tpl.t)
    out = decoding.decode(lm, lm.prefill([PROMPT, "Q:"]), decoding.choose_greedy, 4, [tpl],
                          eos=False)
    assert all(g.token_ids[1] == fixed[1] for g in out)
    assert out[0].cost.forward_passes == 3          # 4 tokens, the last not fed
    assert tpl.seen == [False] * 4                  # every token was a choice


class Bill:
    """An adapter that runs a model of its own: its cost joins the bill; its fields the trace."""

    def __init__(self):
        self.steps = 0

    def __call__(self, logits):
        self.steps += 1
        return logits

    def spent(self):
        return Cost(forward_passes=self.steps, computed_tokens=5 * self.steps)

    def trace_fields(self, row):
        return {"components": {"bill": [[0, -1.0]]}}


def test_an_adapter_books_its_cost_and_its_trace_fields(lm):
    plain = decoding.decode(lm, lm.prefill(PROMPT), decoding.choose_greedy, 5, eos=False)[0]
    with wb.trace() as t:
        g = decoding.decode(lm, lm.prefill(PROMPT), decoding.choose_greedy, 5, [Bill()],
                            eos=False)[0]
    assert g.token_ids == plain.token_ids
    assert g.cost.forward_passes == plain.cost.forward_passes + 5
    assert g.cost.computed_tokens == plain.cost.computed_tokens + 25
    steps = t.of("step")
    assert len(steps) == 5 and all(e["components"] == {"bill": [[0, -1.0]]} for e in steps)
    assert all(e["q_logprob"] == pytest.approx(e["logprob"], abs=1e-5) for e in steps)


def test_adapters_that_remove_every_token_are_named(lm):
    with pytest.raises(ValueError, match=r"removed every allowed token at step 0 \(row 0\)"):
        decoding.decode(lm, lm.prefill(PROMPT), decoding.choose_sample, 3,
                        [lambda x: torch.full_like(x, float("-inf"))])
