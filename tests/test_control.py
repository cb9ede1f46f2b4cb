"""Controlled generation (survey §3.4, §5.1): exact rules, equivalences, lock-step costs."""
from functools import partial

import pytest
import torch

import workbench as wb
from workbench import adapters, control, decoding
from workbench.scoring import TokenScorer

PROMPT = "Review:"


@pytest.fixture(scope="module")
def models(tokenizer):
    from conftest import random_llama
    return [wb.LanguageModel(random_llama(tokenizer, seed=s), tokenizer, f"m{s}")
            for s in range(3)]


@pytest.fixture(scope="module")
def classifier(tokenizer):
    from transformers import LlamaConfig, LlamaForTokenClassification
    torch.manual_seed(7)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=128, num_labels=1,
                      pad_token_id=tokenizer.pad_token_id)
    return TokenScorer(LlamaForTokenClassification(cfg).eval(), tokenizer, "clf")


def logits(seed, shape=(3, 11)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 2


def dist(x):
    return torch.softmax(x.double(), -1)


# -- the rules equal their formulas -------------------------------------------------------------
def test_product_of_experts_rule():
    s, o = logits(0), logits(1)
    p, q = dist(s), dist(o)
    want = p * q ** 0.7
    assert torch.allclose(dist(control.poe_logits(s, o, 0.7)), want / want.sum(-1, keepdim=True))


def test_dexperts_rule():
    s, e, a = logits(0), logits(1), logits(2)
    want = dist(s) * (dist(e) / dist(a)) ** 1.5
    got = dist(control.dexperts_logits(s, e, a, 1.5))
    assert torch.allclose(got, want / want.sum(-1, keepdim=True))


@pytest.mark.parametrize("alpha,beta", [(0.1, 1.0), (0.3, 0.5), (1.0, 1.0), (0.0, 2.0)])
def test_contrastive_rule(alpha, beta):
    s, a = logits(3), logits(4)
    got = control.contrastive_logits(s, a, alpha, beta)
    for row in range(s.shape[0]):
        pe, pa = dist(s[row]), dist(a[row])
        head = [v for v in range(11) if pe[v] >= alpha * pe.max()]
        assert torch.isfinite(got[row]).nonzero().view(-1).tolist() == head
        score = torch.tensor([float(pe[v].log() - beta * pa[v].log()) for v in head])
        assert torch.allclose(dist(got[row])[head], dist(score).to(torch.float64), atol=1e-6)
    assert (torch.isfinite(control.contrastive_logits(s, a, 1.0)).sum(-1) == 1).all()


def test_fudge_and_rad_rules():
    s = logits(5)
    cand = control.top_candidates(s, 4)
    assert cand.tolist() == torch.argsort(s, -1, descending=True)[:, :4].tolist()
    c = torch.rand(3, 4, generator=torch.Generator().manual_seed(0))
    got = dist(control.fudge_logits(s, cand, c, 2.0))
    want = torch.zeros(3, 11, dtype=torch.float64).scatter(
        -1, cand, dist(s).gather(-1, cand) * c.double() ** 2)
    assert torch.allclose(got, want / want.sum(-1, keepdim=True))
    got = dist(control.rad_logits(s, cand, c, 3.0))
    want = torch.zeros(3, 11, dtype=torch.float64).scatter(
        -1, cand, torch.softmax(s.gather(-1, cand).double() + 3.0 * c.double(), -1))
    assert torch.allclose(got, want)


def test_rules_reject_bad_strengths():
    s = logits(0)
    for bad in (float("nan"), float("inf"), "1", None, True):
        with pytest.raises(ValueError, match="alpha"):
            control.poe_logits(s, s, bad)
    with pytest.raises(ValueError, match="alpha must be in"):
        control.contrastive_logits(s, s, alpha=1.5)
    with pytest.raises(ValueError, match="beta must be in"):
        control.contrastive_logits(s, s, beta=-1)
    with pytest.raises(ValueError, match="beta must be in"):
        control.fudge_logits(s, control.top_candidates(s, 2), torch.ones(3, 2), -0.5)
    for k in (0, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            control.top_candidates(s, k)


# -- generators: equivalences -------------------------------------------------------------------
def plain(lm, seed, tokens=10, **kw):
    return decoding.sample(lm, PROMPT, seed=seed, max_new_tokens=tokens, **kw)


@pytest.mark.parametrize("run", [
    lambda a, b, c, **kw: control.dexperts(a, b, c, PROMPT, alpha=0.0, **kw),
    lambda a, b, c, **kw: control.proxy_tuning(a, b, c, PROMPT, alpha=0.0, **kw),
    lambda a, b, c, **kw: control.product_of_experts(a, b, PROMPT, alpha=0.0, **kw),
    lambda a, b, c, **kw: control.contrastive(a, b, PROMPT, alpha=0.0, beta=0.0, **kw),
])
def test_zero_strength_is_plain_sampling(models, run):
    a, b, c = models
    for seed in (0, 1):
        assert run(a, b, c, seed=seed, max_new_tokens=10).token_ids == plain(a, seed).token_ids


def spread(texts):
    """A scorer whose values differ a lot between candidates (by text length)."""
    return [(len(t) * 7919 % 97 + 1) / 98 for t in texts]


@pytest.mark.parametrize("method", [control.fudge, control.reward_augmented])
@pytest.mark.parametrize("use_classifier", [True, False])
def test_zero_beta_is_top_k_sampling(models, classifier, method, use_classifier):
    lm, scorer = models[0], classifier if use_classifier else spread
    for seed in (0, 1):
        got = method(lm, scorer, PROMPT, beta=0.0, k=6, seed=seed, max_new_tokens=10)
        want = plain(lm, seed, adapters=[partial(adapters.top_k, k=6)])
        assert got.token_ids == want.token_ids
        assert got.logprobs == pytest.approx(want.logprobs, abs=1e-5)


def test_product_with_itself_is_temperature_half(models):
    lm = models[0]
    got = control.product_of_experts(lm, lm, PROMPT, alpha=1.0, seed=2, n=4, max_new_tokens=10)
    want = decoding.sample(lm, PROMPT, seed=2, n=4, max_new_tokens=10,
                           adapters=[partial(adapters.temperature, tau=0.5)])
    assert [g.token_ids for g in got] == [w.token_ids for w in want]
    assert got[0].cost.forward_passes == want[0].cost.forward_passes   # run once, not twice


def test_seeds(models):
    a, b, c = models
    run = partial(control.dexperts, a, b, c, PROMPT, alpha=1.0, n=4, max_new_tokens=8)
    assert [g.token_ids for g in run(seed=5)] == [g.token_ids for g in run(seed=5)]
    assert [g.token_ids for g in run(seed=5)] != [g.token_ids for g in run(seed=6)]
    gen = torch.Generator().manual_seed(5)
    assert [g.token_ids for g in run(seed=gen)] == [g.token_ids for g in run(seed=5)]


def test_lockstep_caches_match_recomputation(models):
    """Greedy PoE of two cached models == argmax of s_a + 0.5 s_b recomputed from scratch."""
    a, b, _ = models
    got = control.product_of_experts(a, b, PROMPT, alpha=0.5, greedy=True, max_new_tokens=8)
    ids = a.encode(PROMPT)
    for tok in got.token_ids:
        s = a.next_logits([ids])[0] + 0.5 * b.next_logits([ids])[0]
        assert int(s.argmax()) == tok
        ids = ids + [tok]


def test_batches_of_prompts(models):
    a, b, _ = models
    prompts = [PROMPT, "Review: The soup"]
    out = control.contrastive(a, b, prompts, beta=1.0, n=2, seed=0, max_new_tokens=6,
                              greedy=True)
    assert [[g.prompt for g in grp] for grp in out] == [[p, p] for p in prompts]
    for p, grp in zip(prompts, out):
        alone = control.contrastive(a, b, p, beta=1.0, greedy=True, max_new_tokens=6)
        assert grp[0].token_ids == grp[1].token_ids == alone.token_ids


# -- classifier / reward guidance ---------------------------------------------------------------
@pytest.mark.parametrize("cached", [True, False])
def test_fudge_scores_candidates_with_the_classifier(models, classifier, cached):
    lm, k = models[0], 5
    with wb.trace() as t:
        g = control.fudge(lm, classifier, PROMPT, beta=2.0, k=k, seed=0, max_new_tokens=5,
                          cache_scorer=cached)
    steps = t.of("step", "fudge")
    assert len(steps) == len(g.token_ids) + (g.finish_reason == "eos")
    ids, full = lm.encode(PROMPT), 0
    for ev in steps:
        cands = [c for c, _ in ev["candidates"]]
        seqs = [ids + ([c] if c != lm.eos_token_id else []) for c in cands]
        want = [p[-1] for p in classifier.position_probs(seqs)]
        assert [v for _, v in ev["candidates"]] == pytest.approx(want, abs=1e-5)
        assert cands == [c for c, _ in ev["components"]["target"][:k]]
        full += sum(len(s) for s in seqs)
        ids = ids + [ev["token"]]
    n, L0 = len(steps), len(lm.encode(PROMPT))
    if cached:   # prefill + one pass over the k candidates per step + the chosen tokens
        assert g.info["costs"]["classifier"].forward_passes == 2 * n
        assert g.cost.external_tokens == L0 + k * n + (n - 1)
        assert g.cost.forward_passes == 3 * n
    else:        # every candidate sequence in full, one batch per step
        assert g.cost.external_tokens == full
        assert g.cost.forward_passes == 2 * n


def test_only_a_causal_classifier_runs_with_a_kv_cache(tokenizer, models):
    """The cached path is chosen by behaviour (a forward fills the cache), never by the names
    of the model's forward parameters, which transformers renames between releases."""
    from transformers import (BertConfig, BertForTokenClassification, LlamaConfig,
                              LlamaForTokenClassification)

    from workbench.control.generators import scorer_model
    torch.manual_seed(0)
    small = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                 num_attention_heads=2, intermediate_size=64, num_labels=1,
                 pad_token_id=tokenizer.pad_token_id)
    causal = TokenScorer(LlamaForTokenClassification(LlamaConfig(**small)), tokenizer)
    encoder = TokenScorer(BertForTokenClassification(BertConfig(**small)), tokenizer)
    lm = models[0]
    assert scorer_model(encoder, lm) is None
    run = scorer_model(causal, lm)
    state = run.prefill([lm.encode(PROMPT)])
    want = causal.position_probs([lm.encode(PROMPT)])[0][-1]
    assert torch.sigmoid(state.logits[0, 0]).item() == pytest.approx(want, abs=1e-5)


def test_guidance_follows_a_callable_scorer(models):
    lm = models[0]
    first = control.top_candidates(lm.next_logits([lm.encode(PROMPT)]), 4)[0].tolist()
    word = lm.decode([first[2]])
    likes = lambda texts: [float(t.endswith(word)) for t in texts]  # noqa: E731
    for seed in range(3):
        g = control.reward_augmented(lm, likes, PROMPT, beta=50.0, k=4, seed=seed,
                                     max_new_tokens=1)
        assert g.token_ids == [first[2]]
        g = control.fudge(lm, likes, PROMPT, beta=20.0, k=4, seed=seed, max_new_tokens=1)
        assert g.token_ids == [first[2]]
        g = control.fudge(lm, likes, PROMPT, beta=20.0, k=4, label=-1, seed=seed,
                          max_new_tokens=1)
        assert g.token_ids[0] in first and g.token_ids != [first[2]]


# -- costs, trace, errors ----------------------------------------------------------------------
def test_cost_is_one_pass_per_model_per_token(models):
    a, b, c = models
    g = control.dexperts(a, b, c, PROMPT, alpha=1.0, seed=0, max_new_tokens=7)
    steps = len(g.token_ids) + (g.finish_reason == "eos")
    assert g.cost.forward_passes == 3 * steps
    assert {r: x.forward_passes for r, x in g.info["costs"].items()} == \
        {"target": steps, "expert": steps, "anti_expert": steps}
    assert g.cost.output_tokens == len(g.token_ids) and g.cost.calls == 1
    assert len(g.info["q_logprobs"]) == len(g.logprobs) == len(g.token_ids)


def test_step_events_carry_components(models):
    a, b, _ = models
    with wb.trace() as t:
        g = control.contrastive(a, b, PROMPT, alpha=0.2, seed=0, max_new_tokens=5)
    ev = t.of("step", "contrastive")
    assert [e["token"] for e in ev][:len(g.token_ids)] == g.token_ids
    assert set(ev[0]["components"]) == {"expert", "amateur"}
    e = ev[0]
    assert e["logprob"] == pytest.approx(g.logprobs[0])
    assert e["q_logprob"] == pytest.approx(g.info["q_logprobs"][0])
    assert len(e["top"]) == 8 and e["top"][0][1] >= e["top"][-1][1]


def test_generators_reject_bad_arguments(models, classifier, tokenizer):
    a, b, c = models
    with pytest.raises(ValueError, match="beta"):
        control.fudge(a, classifier, PROMPT, beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        control.reward_augmented(a, classifier, PROMPT, beta=float("nan"))
    with pytest.raises(ValueError, match="k must be"):
        control.fudge(a, classifier, PROMPT, k=0)
    with pytest.raises(ValueError, match="label"):
        control.fudge(a, classifier, PROMPT, label=0)
    with pytest.raises(ValueError, match="alpha"):
        control.dexperts(a, b, c, PROMPT, alpha=float("inf"))
    with pytest.raises(ValueError, match="alpha must be in"):
        control.contrastive(a, b, PROMPT, alpha=2.0)
    with pytest.raises(ValueError, match="n must be"):
        control.product_of_experts(a, b, PROMPT, n=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        control.product_of_experts(a, b, PROMPT, max_new_tokens=0)
    with pytest.raises(TypeError, match="scorer"):
        control.fudge(a, 3, PROMPT)
    with pytest.raises(ValueError, match="method"):
        control.steer("magic", {"target": a, "positive": b, "negative": c}, PROMPT, 1.0)
    from conftest import random_llama
    tok2 = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tok2.add_tokens(["<extra>"])
    other = wb.LanguageModel(random_llama(tok2), tok2, "other")
    with pytest.raises(ValueError, match="share one tokenizer"):
        control.product_of_experts(a, other, PROMPT)


def test_steer_roles(models, classifier):
    a, b, c = models
    roles = {"target": a, "draft": c, "positive": b, "negative": c, "classifier": classifier}
    neg = control.steer("dexperts", roles, PROMPT, 2.0, label=-1, seed=0, max_new_tokens=5)
    want = control.dexperts(a, c, b, PROMPT, alpha=2.0, seed=0, max_new_tokens=5)
    assert neg.token_ids == want.token_ids
    for m in control.METHODS:
        g = control.steer(m, roles, PROMPT, 1.0, seed=0, max_new_tokens=3, k=4)
        assert g.info["method"] == m and g.cost.forward_passes > 0


def test_measure_attribute_fluency_and_diversity():
    from workbench.control import tinyworld as tw
    from workbench.decoding import Generation
    from workbench.budget import Cost

    costs = {"target": Cost(forward_passes=4), "expert": Cost(forward_passes=4)}
    gen = lambda text: Generation(text=text, token_ids=[5] * 3, logprobs=[-1.0] * 3,  # noqa
                                  prompt="Review:", prompt_ids=[1], finish_reason="eos",
                                  cost=Cost(output_tokens=3), info={"costs": costs})
    gens = [gen(" The soup was great."), gen(" The soup was great."), gen(" The soup was rude."),
            gen(" soup soup")]
    m = tw.measure(gens, [1, 1, 1, 1])
    assert m["attribute_rate"] == 0.5 and m["grammatical"] == 0.75
    assert m["distinct"] == 0.75 and m["passes_per_step"] == 2.0
