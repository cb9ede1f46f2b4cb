"""Step-level search on a language model: KV reuse is exact and saves recomputation."""
import pytest

from workbench import meta
from workbench.budget import Budget, BudgetExceeded

PROMPT = "Q: 12+7*3\n"


@pytest.fixture(scope="module")
def lm_and_adapter(tiny_lm):
    import torch
    nl = tiny_lm.encode("\n", bos=False)[0]
    allowed = [tiny_lm.encode(c, bos=False)[0] for c in "0123456789+-*="]
    bias = torch.full((tiny_lm.vocab_size,), -float("inf"))
    bias[allowed], bias[nl], bias[tiny_lm.eos_token_id] = 0.0, 2.5, -1.0

    def short_lines(logits):
        """Arithmetic characters only (each its own token, so texts re-tokenize to the same
        ids) and short lines: a random model, made to look like a step writer."""
        return logits + bias
    return tiny_lm, short_lines


def stepper(lm, adapter, **kw):
    return meta.LMStepper(lm, adapters=[adapter], max_step_tokens=8, **kw)


def test_reused_caches_give_the_models_own_logprobs(lm_and_adapter):
    """Every node's step log-probability, computed from a reused (and left-padded, batched)
    KV cache, equals a fresh computation of log p(step | prompt + steps before)."""
    lm, ad = lm_and_adapter
    r = meta.stepwise_beam(PROMPT, stepper(lm, ad), meta.logprob_value("mean"), beam_size=3,
                           expansions=2, max_steps=4, seed=0)
    deep = [n for n in r.tree if n.depth >= 2]
    assert len(deep) >= 4
    for n in r.tree[1:]:
        steps = [r.tree[i].step_obj for i in r.path(n.id)[1:]]
        prefix = lm.encode(PROMPT) + [t for s in steps[:-1] for t in s.token_ids]
        ended = [lm.eos_token_id] if steps[-1].finish == "eos" else []   # the end is counted
        fresh = lm.token_logprobs(prefix, [steps[-1].token_ids + ended])[0]
        assert sum(fresh) == pytest.approx(n.logprob, abs=1e-4)


def test_kv_reuse_matches_reencoding_and_computes_less(lm_and_adapter):
    lm, ad = lm_and_adapter
    gen = meta.LMGenerator(lm, adapters=[ad], stop="\n", max_new_tokens=8)
    mcts = lambda *a, **kw: meta.mcts(*a, rollout=False, **kw)   # rollouts run differently
    for algo in (meta.best_first, mcts):
        a = algo(PROMPT, stepper(lm, ad), meta.logprob_value("prob"), seed=3)
        b = algo(PROMPT, meta.TextStepper(gen, max_step_tokens=8), meta.logprob_value("prob"),
                 seed=3)
        assert [n.step for n in a.tree] == [n.step for n in b.tree]
        assert a.cost.output_tokens == b.cost.output_tokens
        assert a.cost.computed_tokens < b.cost.computed_tokens
        assert a.info["kv"]["naive_tokens"] == a.cost.input_tokens + a.cost.output_tokens


def test_kv_reuse_halves_computation_on_deep_trees(lm_and_adapter):
    lm, ad = lm_and_adapter
    r = meta.stepwise_beam(PROMPT, stepper(lm, ad), meta.logprob_value("mean"), beam_size=2,
                           expansions=3, max_steps=6, seed=1)
    assert max(n.depth for n in r.tree) >= 4
    kv = r.info["kv"]
    assert kv["computed_tokens"] == r.cost.computed_tokens
    assert kv["ratio"] <= 0.5


@pytest.mark.parametrize("field,limit", [("computed_tokens", 60), ("forward_passes", 25),
                                         ("output_tokens", 50), ("calls", 7)])
def test_lm_budgets_hold(lm_and_adapter, field, limit):
    lm, ad = lm_and_adapter
    for algo in (lambda b: meta.stepwise_beam(PROMPT, stepper(lm, ad), meta.logprob_value(),
                                              2, 2, budget=b, seed=0),
                 lambda b: meta.mcts(PROMPT, stepper(lm, ad), meta.logprob_value("prob"), 30,
                                     budget=b, seed=0)):
        budget = Budget(**{field: limit})
        try:
            r = algo(budget)
        except BudgetExceeded:
            continue
        assert getattr(r.cost, field) <= limit and r.info["stopped"] == "budget"
