import math
import random
from collections import Counter

import numpy as np
import pytest

from workbench import meta, scoring
from workbench.budget import BudgetExceeded, Cost
from workbench.meta import LMGenerator, TextGenerator, TextOutput, as_generator
from workbench.tinyworld.worlds import story_grammar
from workbench.tasks import load as load_task

ARITH = load_task("tinyworld-arithmetic")


def scripted(texts, logprobs=None):
    """A black-box generator cycling through fixed texts (deterministic, seed ignored)."""
    state = {"i": 0}

    def fn(prompt, seed):
        i = state["i"] % len(texts)
        state["i"] += 1
        return (texts[i], logprobs[i]) if logprobs else texts[i]
    return TextGenerator(fn, "scripted")


def discrete(outcomes, probs):
    """A black-box generator drawing from a finite distribution, with exact log-probs."""
    def fn(prompt, seed):
        i = np.random.default_rng(seed).choice(len(outcomes), p=probs)
        return outcomes[i], math.log(probs[i])
    return TextGenerator(fn, "discrete")


def grammar_generator():
    """Exact sampler of p* (the story grammar) with exact log-probabilities."""
    g = story_grammar()

    def fn(prompt, seed):
        text = g.sample(random.Random(seed))
        return text, g.log_p_star(text)
    return TextGenerator(fn, "p*")


def test_majority_vote_counts_and_breaks_ties_by_first_appearance():
    gen = scripted(["A: 5", "A: 7", "A: 7", "no answer", "A: 5"])
    r = meta.majority_vote("Q: 2+3\n", gen, 5)
    assert r.votes == {5: 2.0, 7: 2.0} and r.answer == 5 and r.chosen == 0
    r = meta.majority_vote("Q: 2+3\n", scripted(["x", "A: 1", "A: 2", "A: 2"]), 4)
    assert r.answer == 2 and r.chosen == 2


def test_weighted_vote_and_best_of_n():
    gen = scripted(["A: 5", "A: 7", "A: 7", "A: 5", "A: 9"])
    weights = {"A: 5": 0.9, "A: 7": 0.3, "A: 9": 0.95}
    scorer = lambda p, outs: ([weights[o.text] for o in outs], Cost(external_tokens=len(outs)))
    r = meta.weighted_vote("Q\n", gen, scorer, 5)
    assert r.answer == 5 and r.votes[5] == pytest.approx(1.8)
    assert r.cost.external_tokens == 5
    r = meta.best_of_n("Q\n", scripted(["A: 5", "A: 7", "A: 9"]), scorer, 3)
    assert r.text == "A: 9" and r.chosen == 2


@pytest.mark.parametrize("seed", range(8))
def test_mbr_with_answer_match_is_majority_vote(seed):
    rng = np.random.default_rng(seed)
    texts = [f"A: {k}" for k in rng.choice(4, 9, p=[0.4, 0.3, 0.2, 0.1])]
    mv = meta.majority_vote("Q\n", scripted(texts), 9)
    mb = meta.mbr("Q\n", scripted(texts), meta.answer_match(), 9)
    assert meta.default_answer(mb.text) == mv.answer
    assert mb.chosen == mv.chosen  # both pick the first candidate with the winning answer


@pytest.mark.parametrize("seed", range(6))
def test_mbr_with_weighted_evidence_is_weighted_vote(seed):
    rng = np.random.default_rng(seed)
    texts = [f"A: {k}" for k in rng.integers(0, 4, 10)]
    w = {f"A: {k}": float(v) for k, v in enumerate(rng.random(4))}
    scorer = lambda p, outs: ([w[o.text] for o in outs], Cost())
    mb = meta.mbr("Q\n", scripted(texts), meta.answer_match(), 10, weight_scorer=scorer)
    wv = meta.weighted_vote("Q\n", scripted(texts), scorer, 10)
    assert meta.default_answer(mb.text) == wv.answer


def test_rejection_sampling_acceptance_rate_is_z_over_m():
    """Target q~(y) = p*(y) * (2 if y mentions a dragon else 1), proposal p*, M = 2:
    Z = 1 + P*(dragon), so the acceptance rate is Z / M and accepted samples mention a dragon
    with probability 2 P / (1 + P)."""
    p_dragon = story_grammar().prob_contains(" dragon")
    log_target = lambda prompt, o: o.logprob + (math.log(2) if " dragon" in o.text else 0.0)
    r = meta.rejection_sample("", grammar_generator(), log_target, math.log(2),
                              num_samples=1500, max_proposals=10_000, batch=100, seed=0)
    rate, n = r.info["acceptance_rate"], r.info["proposals"]
    z_over_m = (1 + p_dragon) / 2
    assert abs(rate - z_over_m) < 4 * math.sqrt(z_over_m * (1 - z_over_m) / n)
    frac = np.mean([" dragon" in c.text for c in r.candidates])
    expect = 2 * p_dragon / (1 + p_dragon)
    assert abs(frac - expect) < 4 * math.sqrt(expect * (1 - expect) / len(r.candidates))


def test_rejection_sampling_errors():
    gen = grammar_generator()
    with pytest.raises(ValueError, match="bound is violated"):
        meta.rejection_sample("", gen, lambda p, o: o.logprob + 1.0, 0.0, seed=0)
    with pytest.raises(BudgetExceeded):
        meta.rejection_sample("", gen, meta.filter_target(lambda t: False), 0.0,
                              max_proposals=20, seed=0)
    with pytest.raises(ValueError, match="logprob"):
        meta.rejection_sample("", scripted(["a"]), lambda p, o: 0.0, 0.0, seed=0)


def test_filter_target_keeps_exactly_the_valid_outputs():
    r = meta.rejection_sample("", grammar_generator(), meta.filter_target(lambda t: "." in t[:-1]),
                              0.0, num_samples=50, max_proposals=5000, seed=1)
    assert all("." in c.text[:-1] for c in r.candidates)


def test_bon_policy_exact_and_kl_bound():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(40))
    r = rng.permutation(40).astype(float)
    for n in (1, 2, 4, 16, 64):
        pi = meta.bon_policy(p, r, n)
        assert pi.sum() == pytest.approx(1.0)
        kl = meta.kl_divergence(pi, p)
        assert kl <= meta.bon_kl_bound(n) + 1e-9
        if n == 1:
            assert kl == pytest.approx(0.0, abs=1e-12)
    # with ties the mass is split in proportion to p
    pi = meta.bon_policy([0.5, 0.25, 0.25], [1.0, 1.0, 0.0], 2)
    assert pi.tolist() == pytest.approx([0.9375 * 2 / 3, 0.9375 / 3, 0.0625])


def test_best_of_n_policy_matches_simulation():
    outcomes = ["a", "b", "c", "d"]
    probs = [0.4, 0.3, 0.2, 0.1]
    reward = {"a": 0.0, "b": 2.0, "c": 1.0, "d": 3.0}
    scorer = lambda pr, outs: ([reward[o.text] for o in outs], Cost())
    gen = discrete(outcomes, probs)
    draws = Counter(meta.best_of_n("", gen, scorer, 3, seed=s).text for s in range(3000))
    exact = meta.bon_policy(probs, [reward[o] for o in outcomes], 3)
    for o, q in zip(outcomes, exact):
        assert abs(draws[o] / 3000 - q) < 4 * math.sqrt(q * (1 - q) / 3000) + 1e-9


def test_importance_resampling_approaches_target():
    outcomes, probs = ["a", "b", "c"], [0.6, 0.3, 0.1]
    target = {"a": 0.1, "b": 0.3, "c": 0.6}
    lw = lambda p, o: math.log(target[o.text]) - o.logprob
    picks = Counter(meta.importance_resample("", discrete(outcomes, probs), lw, 64, seed=s).text
                    for s in range(1500))
    for o in outcomes:
        assert abs(picks[o] / 1500 - target[o]) < 0.06


def test_noisy_channel():
    gen = scripted(["A: 1", "A: 2"], [-1.0, -2.0])
    channel = lambda x, o: ((-5.0 if o.text == "A: 1" else 0.0), Cost(external_tokens=3))
    prior = lambda o: (0.0, Cost())
    r = meta.noisy_channel("Q\n", gen, 2, channel, prior, lambda_channel=1.0)
    assert r.text == "A: 2" and r.cost.external_tokens == 6


def test_meta_generators_nest_through_as_generator(tiny_lm):
    inner = as_generator(meta.majority_vote, generator=scripted(["A: 3", "A: 3", "A: 1"]), n=3)
    outer = meta.majority_vote("Q\n", inner, 2)
    assert outer.answer == 3 and len(outer.candidates) == 2
    assert outer.candidates[0].answer == 3


def test_table5_costs_for_lm_generators(tiny_lm):
    """Costs follow Table 5: input T_in * N, output sum of T_i, verifier C_s = T_in + T_i."""
    gen = LMGenerator(tiny_lm, max_new_tokens=8)
    prompt = "Q: 2+3\n"
    t_in = len(tiny_lm.encode(prompt))
    lengths = lambda r: [len(c.token_ids) for c in r.candidates]
    r = meta.best_of_n(prompt, gen, scoring.LogProbScorer(), 5, seed=0)
    assert r.cost.input_tokens == 5 * t_in and r.cost.output_tokens == sum(lengths(r))
    assert r.cost.external_tokens == 0
    # an LLM "verifier" that re-reads prompt + output: C_s = T_in + T per candidate
    from workbench.scoring import TokenScorer
    from transformers import LlamaConfig, LlamaForTokenClassification
    import torch
    torch.manual_seed(0)
    cfg = tiny_lm.model.config
    clf = LlamaForTokenClassification(LlamaConfig(**{**cfg.to_dict(), "num_labels": 1})).eval()
    v = scoring.VerifierScorer(TokenScorer(clf, tiny_lm.tokenizer))
    r = meta.best_of_n(prompt, gen, v, 4, seed=1)
    c_s = [len(tiny_lm.encode(prompt + c.text)) for c in r.candidates]
    assert r.cost.external_tokens == sum(c_s)
    r = meta.weighted_vote(prompt, gen, v, 4, seed=1)
    assert r.cost.external_tokens == sum(len(tiny_lm.encode(prompt + c.text))
                                         for c in r.candidates)
    r = meta.majority_vote(prompt, gen, 6, seed=2)
    assert r.cost.input_tokens == 6 * t_in and r.cost.external_tokens == 0
    # shared prefix: the prompt is computed once for the N samples
    assert r.cost.computed_tokens < r.cost.input_tokens + r.cost.output_tokens


def test_oracle_scorer_reads_the_question():
    s = scoring.oracle(ARITH)
    outs = [meta.TextOutput("7*3=21, 12+21\n12+21=33\nA: 33"), meta.TextOutput("A: 30")]
    assert s("Q: 12+7*3\n", outs)[0] == [1.0, 0.0]


def test_one_vote_counter_with_one_tie_rule():
    """`meta.plurality` is the vote of majority_vote (and of TinyWorld's evaluations): the
    largest count, ties to the answer seen first, None not voting."""
    from workbench.tinyworld.evaluate import majority
    for answers in ([3, 5, 5, 3], [5, 3, 3, 5], [None, None, 7], [None], [2, 2, 9]):
        gen = scripted([f"A: {a}" if a is not None else "no answer" for a in answers])
        want = meta.majority_vote("Q\n", gen, len(answers)).answer
        assert meta.plurality(answers) == majority(answers) == want
    assert meta.plurality([4, 8, 8], [0.9, 0.3, 0.3]) == 4


def test_self_consistency_weightings():
    """count: majority vote; probability: p(y | x) of each distinct path once; normalized: every
    sample weighted by exp(mean token log-prob), the confidence-weighted vote."""
    texts, lps = ["A: 1", "A: 2", "A: 2", "A: 1", "A: 3"], [-1.0, -3.0, -3.0, -1.0, -0.5]
    assert meta.self_consistency("Q", scripted(texts, lps), 5).answer == 1      # tie: first seen
    r = meta.self_consistency("Q", scripted(texts, lps), 5, weighting="probability")
    assert r.scores == pytest.approx([math.exp(-1), math.exp(-3), 0, 0, math.exp(-0.5)])
    assert r.answer == 3                  # e^-0.5 beats e^-1 (path "A: 1" counted once) and e^-3
    with pytest.raises(ValueError, match="weighting must be"):
        meta.self_consistency("Q", scripted(texts, lps), 5, weighting="mean")
    with pytest.raises(ValueError, match="needs generators that return log-probs"):
        meta.self_consistency("Q", scripted(texts), 5, weighting="normalized")


def test_confidence_weighted_vote_on_a_language_model(tiny_lm):
    gen = LMGenerator(tiny_lm, max_new_tokens=12)
    r = meta.self_consistency("Q: 12+7*3-5\n", gen, 6, seed=3, weighting="normalized")
    assert any(c.finish_reason == "eos" for c in r.candidates)     # the end token is counted
    for c, w in zip(r.candidates, r.scores):
        scored = c.logprobs + ([c.end_logprob] if c.finish_reason == "eos" else [])
        assert w == pytest.approx(math.exp(np.mean(scored)))                  # exp(mean log p)
        assert w == pytest.approx(meta.sample_confidence(c)) and 0 < w <= 1
    answers = [meta.default_answer(c.text) for c in r.candidates]
    assert r.answer == meta.plurality(answers, r.scores)
    same = meta.self_consistency("Q: 12+7*3-5\n", gen, 6, seed=3, weighting="normalized")
    assert same.scores == r.scores and same.answer == r.answer               # seeded


def test_sample_confidence_needs_a_token_count():
    out = meta.TextOutput("A: 3", logprob=-2.0)
    with pytest.raises(ValueError, match="token count"):
        meta.sample_confidence(out)
    out.cost = Cost(output_tokens=4)
    assert meta.sample_confidence(out) == pytest.approx(math.exp(-0.5))


def test_replay_hands_out_the_pool_in_order_and_refuses_to_run_dry():
    pool = [TextOutput(f"A: {a}", Cost(output_tokens=n, calls=1)) for a, n in
            ((3, 5), (4, 7), (3, 6), (3, 9))]
    r = meta.adaptive_vote("Q\n", meta.Replay(pool), max_n=4, stop="decided")
    assert r.answer == 3 and r.info["samples"] == 3 and r.cost.output_tokens == 18
    replay = meta.Replay(pool)
    assert [o.text for o in replay.generate("Q\n", 3, seed=99)] == ["A: 3", "A: 4", "A: 3"]
    with pytest.raises(ValueError, match="holds 4 outputs; 5 were asked for"):
        replay.generate("Q\n", 2)
