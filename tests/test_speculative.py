"""Speculative decoding (survey §7.2): exactness of the accept/reject step and of the full loop."""
import copy

import pytest
import torch
from scipy import stats

import workbench as wb
from workbench import adapters, decoding
from workbench.efficiency import (PromptLookupDrafter, accepted_length_distribution,
                                  expected_tokens_per_round, greedy_verify_step,
                                  prompt_lookup_decode, speculative_decode,
                                  speculative_sampling_step, truncated_draft)

PROMPTS = ["Story:", "Q: 12+7*3-5\n", "JSON: {\"name\": \"Ada\""]


@pytest.fixture(scope="module")
def pair(tokenizer):
    """A random 3-layer target and drafts: an independent random model (it never agrees), the
    target's first layer, and the target with a perturbed head (it agrees about 60% of the
    time under the adapters used below)."""
    from conftest import random_llama
    torch.set_num_threads(1)
    target = wb.LanguageModel(random_llama(tokenizer, seed=0, layers=3), tokenizer, "target")
    other = wb.LanguageModel(random_llama(tokenizer, seed=1, layers=1), tokenizer, "other")
    noisy = copy.deepcopy(target.model)
    torch.manual_seed(1)
    with torch.no_grad():
        noisy.lm_head.weight.add_(0.005 * torch.randn_like(noisy.lm_head.weight))
    return target, other, truncated_draft(target, 1), wb.LanguageModel(noisy, tokenizer, "noisy")


def chi2_pvalue(counts: dict, probs: dict) -> float:
    """Pearson chi-square test of observed counts against exact probabilities (pooled tail)."""
    n = sum(counts.values())
    keys = sorted(probs, key=probs.get, reverse=True)
    big = [k for k in keys if probs[k] * n >= 5]
    obs = [counts.get(k, 0) for k in big]
    exp = [probs[k] * n for k in big]
    rest_p = 1 - sum(probs[k] for k in big)
    rest_n = n - sum(obs)
    if rest_p * n >= 1:
        obs.append(rest_n)
        exp.append(rest_p * n)
    elif rest_n > 0:
        return 0.0
    exp = [e * n / sum(exp) for e in exp]
    return float(stats.chisquare(obs, exp).pvalue)


# -- the pure step -------------------------------------------------------------------------
def _random_dists(seed, k, V, sharp=2.0):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(sharp * torch.randn(k + 1, V, generator=g), -1)
    q = torch.softmax(sharp * torch.randn(k, V, generator=g), -1)
    q[:, 0] = 0   # a token the draft never proposes
    q /= q.sum(-1, keepdim=True)
    p[:, 1] = 0   # a token the target never emits (the draft may propose it)
    p /= p.sum(-1, keepdim=True)
    return p, q


def _draws(p, q, n, seed, step=speculative_sampling_step):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        d = torch.multinomial(q, 1, generator=g).view(-1).tolist()
        out.append(step(p, q, d, g))
    return out


def test_step_output_distribution_equals_p():
    p, q = _random_dists(0, 2, 6)
    draws = _draws(p, q, 12000, seed=1)
    first = {}
    for s in draws:
        first[s.tokens[0]] = first.get(s.tokens[0], 0) + 1
    assert first.get(1, 0) == 0          # p = 0 is never emitted, even when drafted
    assert chi2_pvalue(first, dict(enumerate(p[0].tolist()))) > 1e-3
    # the second emitted token, in rounds that kept the first draft, follows p[1]
    second = {}
    for s in draws:
        if s.n_accepted >= 1:
            second[s.tokens[1]] = second.get(s.tokens[1], 0) + 1
    assert chi2_pvalue(second, dict(enumerate(p[1].tolist()))) > 1e-3
    # the test has power: the drafted tokens themselves (distributed as q) fail it
    g = torch.Generator().manual_seed(2)
    drafted = {}
    for t in torch.multinomial(q[0], 12000, replacement=True, generator=g).tolist():
        drafted[t] = drafted.get(t, 0) + 1
    assert chi2_pvalue(drafted, dict(enumerate(p[0].tolist()))) < 1e-6


def test_step_acceptance_matches_the_closed_form():
    """Context-free p and q: each position is kept with alpha = sum min(p, q), i.i.d., so
    tokens per round follow (1 - alpha^(k+1)) / (1 - alpha) and the truncated geometric."""
    k, V = 4, 8
    p1, q1 = _random_dists(3, 0, V)[0][0], _random_dists(4, 1, V)[1][0]
    p, q = p1.expand(k + 1, V).contiguous(), q1.expand(k, V).contiguous()
    alpha = float(torch.minimum(p1, q1).sum())
    draws = _draws(p, q, 8000, seed=5)
    mean_tokens = sum(len(s.tokens) for s in draws) / len(draws)
    assert mean_tokens == pytest.approx(expected_tokens_per_round(alpha, k), abs=0.06)
    hist = [0] * (k + 1)
    for s in draws:
        hist[s.n_accepted] += 1
    dist = accepted_length_distribution(alpha, k)
    assert stats.chisquare(hist, [x * len(draws) for x in dist]).pvalue > 1e-3
    assert sum(s.kind == "bonus" for s in draws) == hist[k]


def test_step_edge_cases():
    V = 5
    p = torch.zeros(3, V)
    p[:, 2] = 1
    # q == p: everything is kept and the bonus token comes from p[k]
    s = speculative_sampling_step(p, p[:2].clone(), [2, 2], torch.Generator().manual_seed(0))
    assert s.tokens == [2, 2, 2] and s.n_accepted == 2 and s.kind == "bonus"
    # the draft proposes a token the target rules out: rejected, resampled from the residual
    q = torch.zeros(2, V)
    q[:, 4] = 1
    s = speculative_sampling_step(p, q, [4, 4], torch.Generator().manual_seed(0))
    assert s.tokens == [2] and s.n_accepted == 0 and s.kind == "resample"
    assert s.accept_probs == [0.0, 0.0]
    # a deterministic drafter (q=None) is a one-hot q: kept with probability p(d)
    s = speculative_sampling_step(p, None, [2, 3], torch.Generator().manual_seed(0))
    assert s.tokens == [2, 2] and s.n_accepted == 1
    # k = 0 is a plain draw from p[0]
    assert speculative_sampling_step(p[:1], None, [], None).tokens == [2]
    with pytest.raises(ValueError, match="p must have shape"):
        speculative_sampling_step(p, q, [4])
    with pytest.raises(ValueError, match="q must have shape"):
        speculative_sampling_step(p, q[:1], [4, 4])


def test_greedy_step_is_the_one_hot_sampling_step():
    p, q = _random_dists(7, 3, 6)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        d = torch.multinomial(q, 1, generator=g).view(-1).tolist()
        d[0] = int(p[0].argmax()) if torch.rand(1, generator=g) < 0.7 else d[0]
        a = greedy_verify_step(p, d)
        onehot_p = torch.nn.functional.one_hot(p.argmax(-1), 6).float()
        b = speculative_sampling_step(onehot_p, None, d, g)
        assert (a.tokens, a.n_accepted, a.kind) == (b.tokens, b.n_accepted, b.kind)


# -- the full loop -------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("k", [1, 3, 6])
def test_greedy_speculative_equals_target_greedy(pair, prompt, k):
    target, other, early, _ = pair
    ref = decoding.greedy(target, prompt, max_new_tokens=40).token_ids
    for draft in (other, early):
        for rollback in ("crop", "rewind"):
            out = speculative_decode(target, draft, prompt, k=k, max_new_tokens=40, greedy=True,
                                     rollback=rollback)
            assert out.token_ids == ref, (draft.name, rollback)
    assert prompt_lookup_decode(target, prompt, k=k, max_new_tokens=40,
                                greedy=True).token_ids == ref


def test_k_zero_is_plain_sampling(pair):
    target, other, _, _ = pair
    ref = decoding.sample(target, "Story:", seed=11, max_new_tokens=15)
    out = speculative_decode(target, other, "Story:", k=0, seed=11, max_new_tokens=15)
    assert out.token_ids == ref.token_ids
    assert out.logprobs == pytest.approx(ref.logprobs, abs=1e-5)
    hot = lambda x: adapters.temperature(x, 0.5)  # noqa: E731  (one callable, not a list)
    assert speculative_decode(target, other, "Story:", k=0, seed=3, max_new_tokens=8,
                              adapters=hot).token_ids == \
        decoding.sample(target, "Story:", seed=3, max_new_tokens=8, adapters=[hot]).token_ids


def _exact_two_token_distribution(target, prompt, adapt):
    ids = target.encode(prompt)
    p1 = torch.softmax(adapt(target.next_logits([ids])), -1)[0]
    out = {}
    for a in torch.nonzero(p1).view(-1).tolist():
        p2 = torch.softmax(adapt(target.next_logits([ids + [a]])), -1)[0]
        for b in torch.nonzero(p2).view(-1).tolist():
            out[(a, b)] = float(p1[a] * p2[b])
    return out


@pytest.mark.parametrize("which", ["noisy", "lookup"])
def test_sampled_output_follows_the_target_distribution(pair, which):
    """chi-square on the first token and on the first two tokens against exact p_theta."""
    target, _, _, noisy = pair

    def adapt(x):
        return adapters.top_k(adapters.temperature(x, 0.05), 4)

    # the prompt ends in a loop of the target's greedy output, so copied n-grams are plausible
    prompt = "Story:" + decoding.greedy(target, "Story:", max_new_tokens=12).text
    exact = _exact_two_token_distribution(target, prompt, adapt)
    g = torch.Generator().manual_seed(123)
    pairs, accepted = {}, 0
    for _ in range(1000):
        if which == "lookup":
            out = prompt_lookup_decode(target, prompt, k=2, max_new_tokens=3, adapters=[adapt],
                                       seed=g, stop_at_eos=False)
        else:
            out = speculative_decode(target, noisy, prompt, k=2,
                                     max_new_tokens=3, adapters=[adapt], seed=g,
                                     stop_at_eos=False)
        key = tuple(out.token_ids[:2])
        pairs[key] = pairs.get(key, 0) + 1
        accepted += out.info["accepted"]
    first, exact_first = {}, {}
    for (a, b), c in pairs.items():
        first[a] = first.get(a, 0) + c
    for (a, b), pr in exact.items():
        exact_first[a] = exact_first.get(a, 0) + pr
    assert chi2_pvalue(first, exact_first) > 1e-3
    assert chi2_pvalue(pairs, exact) > 1e-3
    assert accepted > 150   # the draft path is exercised, not only resampling


def test_trace_events_and_info_agree(pair):
    target, _, early, _ = pair
    with wb.trace() as t:
        out = speculative_decode(target, early, "Story:", k=3, max_new_tokens=30, seed=0,
                                 stop_at_eos=False)
    info = out.info
    kinds = t.kinds()
    assert kinds.get("accept", 0) == info["accepted"]
    assert kinds.get("reject", 0) == kinds.get("resample", 0)
    assert kinds["draft"] == info["drafting_rounds"]
    assert kinds.get("bonus", 0) + kinds.get("resample", 0) == len(info["rounds"])
    assert all(e["source"] == "speculative" for e in t.events)
    assert sum(r["accepted"] + 1 for r in info["rounds"]) == len(out.token_ids) == 30
    for r in info["rounds"]:
        assert r["kind"] == ("bonus" if r["accepted"] == len(r["drafted"]) else "resample") \
            or not r["drafted"]
    assert 0 <= info["acceptance_rate"] <= 1


def test_cost_counts_target_and_draft_passes(pair):
    target, other, _, _ = pair
    out = speculative_decode(target, other, "Story:", k=4, max_new_tokens=20, seed=1,
                             stop_at_eos=False)
    tc, dc = out.info["target_cost"], out.info["draft_cost"]
    rounds = len(out.info["rounds"])
    assert tc.forward_passes == rounds + 1               # prefill + one verification per round
    assert out.cost.forward_passes == tc.forward_passes + dc.forward_passes
    assert out.cost.computed_tokens == tc.computed_tokens + dc.computed_tokens
    assert out.cost.output_tokens == 20
    assert out.cost.input_tokens == len(target.encode("Story:"))
    rewound = speculative_decode(target, other, "Story:", k=4, max_new_tokens=20, seed=1,
                                 stop_at_eos=False, rollback="rewind")
    assert rewound.token_ids == out.token_ids
    rejections = sum(r["accepted"] < len(r["drafted"]) for r in out.info["rounds"])
    assert rewound.info["target_cost"].forward_passes == tc.forward_passes + rejections


def test_prompt_lookup_drafter_copies_the_latest_match():
    d = PromptLookupDrafter(max_ngram=2)
    d.start([5, 6, 7, 8, 5, 6, 9, 1, 5, 6])
    assert d.propose(3, None, True, None)[0] == [9, 1, 5]    # "5 6" last seen before 9
    d.start([1, 2, 3])
    assert d.propose(3, None, True, None)[0] == []
    d.start([4, 4, 4])
    assert d.propose(5, None, True, None)[0] == [4]


def test_prompt_lookup_accepts_copies(pair):
    target, _, _, _ = pair
    ref = decoding.greedy(target, "Story: The cat", max_new_tokens=60)
    prompt = "Story: The cat" + ref.text   # the continuation is now in the prompt: copy it
    out = prompt_lookup_decode(target, prompt, k=8, max_new_tokens=40, greedy=True)
    assert out.token_ids == decoding.greedy(target, prompt, max_new_tokens=40).token_ids
    assert out.info["acceptance_rate"] > 0.5
    assert out.cost.forward_passes < 30


def test_bad_arguments(pair, tokenizer):
    target, other, _, _ = pair
    with pytest.raises(ValueError, match="k must be"):
        speculative_decode(target, other, "Story:", k=-1)
    with pytest.raises(ValueError, match="rollback"):
        speculative_decode(target, other, "Story:", rollback="undo")
    with pytest.raises(ValueError, match="stateless"):
        speculative_decode(target, other, "Story:", adapters=[adapters.mirostat()])
    with pytest.raises(ValueError, match="layers"):
        truncated_draft(target, 0)
    with pytest.raises(ValueError, match="alpha"):
        expected_tokens_per_round(1.5, 3)


def test_eos_and_length_limits(pair):
    target, other, _, _ = pair
    eos = target.eos_token_id
    # force EOS as the only choice after a few tokens by masking everything else
    out = speculative_decode(target, other, "Story:", k=4, max_new_tokens=7, seed=0)
    assert len(out.token_ids) <= 7 and out.finish_reason in ("eos", "length")
    only_eos = [lambda x: torch.where(torch.arange(x.shape[-1]) == eos, x, -float("inf"))]
    out = speculative_decode(target, other, "Story:", k=3, max_new_tokens=10,
                             adapters=only_eos, seed=0)
    assert out.token_ids == [] and out.finish_reason == "eos"
