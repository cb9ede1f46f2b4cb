"""`meta.self_evaluation_value` (self-evaluation guided beam search, Xie et al. 2023):
v = lam * log p_theta(steps) + (1 - lam) * sum_k log C(step k), checked by hand and in a search."""
import math

import pytest

import workbench as wb
from workbench import meta
from workbench.budget import Cost
from workbench.reward_models import LLMJudge


class ScriptedJudge:
    """A step judge whose confidence in a prefix is fixed by its number of steps."""
    name = "scripted"

    def __init__(self, by_depth):
        self.by_depth, self.calls = by_depth, 0

    def step_scores(self, prompt, texts):
        self.calls += 1
        return [[self.by_depth[k] for k in range(len([s for s in t.split("\n") if s]))]
                for t in texts]

    def step_cost(self, prompt, texts):
        return Cost(external_tokens=7 * len(texts))


def test_the_value_is_the_weighted_log_of_both_factors():
    judge = ScriptedJudge([0.9, 0.5, 0.2])
    parts = [meta.Partial("1+1=2\n", logprob=-1.5), meta.Partial("1+1=2\n2*3=6\n", logprob=-4.0),
             meta.Partial("a\nb\nc\n", logprob=-0.25)]
    for lam in (0.0, 0.3, 1.0):
        vals, cost = meta.self_evaluation_value(judge, lam)("Q: x\n", parts)
        want = [lam * -1.5 + (1 - lam) * math.log(0.9),
                lam * -4.0 + (1 - lam) * (math.log(0.9) + math.log(0.5)),
                lam * -0.25 + (1 - lam) * (math.log(0.9) + math.log(0.5) + math.log(0.2))]
        assert vals == pytest.approx(want, abs=1e-12)
        assert cost == Cost(external_tokens=21)
    value = meta.self_evaluation_value(judge, 1.0)
    assert value("Q\n", parts)[0] == [p.logprob for p in parts]   # lam = 1: log p alone
    assert value.cost_of("Q\n", parts) == Cost(external_tokens=21)
    assert value("Q\n", []) == ([], Cost())


def test_a_zero_confidence_ranks_last_without_nan():
    vals, _ = meta.self_evaluation_value(ScriptedJudge([0.0]), 0.5)(
        "Q\n", [meta.Partial("x\n", logprob=-1.0)])
    assert math.isfinite(vals[0]) and vals[0] < -300


@pytest.mark.parametrize("lam", [-0.1, 1.5, "0.5", True, float("nan")])
def test_rejects_a_bad_lam(lam):
    with pytest.raises(ValueError, match="lam"):
        meta.self_evaluation_value(ScriptedJudge([0.5]), lam)


def test_needs_log_probabilities():
    with pytest.raises(ValueError, match="log-probabilities"):
        meta.self_evaluation_value(ScriptedJudge([0.5]))("Q\n", [meta.Partial("x\n")])


def test_guides_step_level_beam_search_with_the_model_as_its_own_judge():
    lm = wb.load("tinyworld")
    judge = LLMJudge(lm, yes="A", no="Q")   # TinyWorld's vocabulary has no Yes/No: any 2 tokens
    value = meta.self_evaluation_value(judge, lam=0.5)
    prompt = "Q: 38*3-45+17\n"
    r = meta.stepwise_beam(prompt, meta.LMStepper(lm, max_step_tokens=40), value, beam_size=2,
                           expansions=2, max_steps=3, seed=0)
    scored = [n for n in r.tree[1:] if n.value is not None]
    assert len(scored) >= 3 and r.text
    texts = [r.solution(n.id) for n in scored]
    steps = judge.step_scores(prompt, texts)
    want = [0.5 * n.cum_logprob + 0.5 * sum(math.log(c) for c in cs)
            for n, cs in zip(scored, steps)]
    assert [n.value for n in scored] == pytest.approx(want, abs=1e-5)
    assert r.cost.external_tokens == judge.step_cost(prompt, texts).external_tokens
