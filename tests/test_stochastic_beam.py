"""Stochastic beam search (Kool et al., 2019): the truncated Gumbel keeps the parent's maximum,
k = 1 samples exactly p_theta, the k samples are distinct, and the estimator is unbiased."""
import math

import numpy as np
import pytest
import torch
from scipy import stats as st

from workbench import trace
from workbench.decoding import stochastic_beam_search, truncated_gumbel

PROMPT = "Story:"


def test_truncated_gumbel_keeps_the_parents_maximum_and_the_childrens_order():
    g = torch.Generator().manual_seed(0)
    phi = torch.log_softmax(torch.randn(5, 7, dtype=torch.float64, generator=g), -1)
    phi[0, 3] = -math.inf
    parent = torch.randn(5, dtype=torch.float64, generator=g)
    out = truncated_gumbel(parent, phi, torch.Generator().manual_seed(1))
    assert torch.allclose(out.max(-1).values, parent, atol=1e-9)
    assert out[0, 3] == -math.inf and torch.isfinite(out[1:]).all()
    assert (out <= parent[:, None] + 1e-12).all()


def test_truncated_gumbel_children_are_gumbels_of_their_log_probabilities():
    """With T ~ Gumbel(logsumexp phi), each child is marginally Gumbel(phi_c): mean phi_c + gamma,
    standard deviation pi / sqrt(6)."""
    n = 20_000
    phi = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)).expand(n, 4)
    gen = torch.Generator().manual_seed(2)
    u = torch.rand(n, dtype=torch.float64, generator=gen)
    parent = -torch.log(-torch.log(u))                       # logsumexp(phi) = 0
    out = truncated_gumbel(parent, phi, gen).numpy()
    sd = math.pi / math.sqrt(6)
    for c in range(4):
        assert abs(out[:, c].mean() - (float(phi[0, c]) + np.euler_gamma)) < 4 * sd / math.sqrt(n)
        assert st.kstest(out[:, c] - float(phi[0, c]), "gumbel_r").pvalue > 1e-3


def test_one_sample_follows_the_model_exactly(target):
    """k = 1 is exact ancestral sampling: the first token's frequencies over 600 seeds match
    p_theta(y_1 | x) (chi-square over the likely tokens and the rest)."""
    p = torch.softmax(target.next_logits([PROMPT])[0].double(), -1).numpy()
    top = np.argsort(-p)[:5]
    counts = np.zeros(6)
    for s in range(600):
        y = stochastic_beam_search(target, PROMPT, k=1, max_new_tokens=2, seed=s).samples[0]
        first = y.token_ids[0] if y.token_ids else target.eos_token_id
        counts[list(top).index(first) if first in top else 5] += 1
    expected = 600 * np.append(p[top], 1 - p[top].sum())
    keep = expected > 5
    rest = np.append(counts[keep], counts[~keep].sum())
    want = np.append(expected[keep], expected[~keep].sum())
    assert st.chisquare(rest[want > 0], want[want > 0] * rest.sum() / want[want > 0].sum()
                        ).pvalue > 1e-3


def test_samples_are_distinct_and_best_first(target):
    r = stochastic_beam_search(target, PROMPT, k=6, max_new_tokens=4, seed=0)
    seqs = [tuple(s.token_ids) + (s.finish_reason,) for s in r.samples]
    assert len(r.samples) == 6 and len(set(seqs)) == 6
    gs = [s.info["gumbel"] for s in r.samples]
    assert gs == sorted(gs, reverse=True) and r.threshold < gs[-1]
    for s in r.samples:   # each sample's log-probability: its tokens' (and EOS's) log p
        ids = s.token_ids + [target.eos_token_id] * (s.finish_reason == "eos")
        assert s.info["seq_logprob"] == pytest.approx(
            sum(target.token_logprobs(PROMPT, [ids])[0]), abs=1e-4)
        assert s.logprobs == pytest.approx(target.token_logprobs(PROMPT, [ids])[0][:len(
            s.token_ids)], abs=1e-4)


def test_enumerating_every_sequence_makes_the_estimate_exact(target):
    """One token, no EOS: k = vocabulary size returns every sequence, kappa = -inf, and the
    estimate of E[1] is exactly 1."""
    V = target.vocab_size
    r = stochastic_beam_search(target, PROMPT, k=V, max_new_tokens=1, seed=0, eos=False)
    assert len(r.samples) == V and r.threshold == -math.inf
    assert r.estimate(lambda y: 1.0) == pytest.approx(1.0, abs=1e-9)


def test_the_estimator_is_unbiased(target):
    """E_p[1{y_1 = a}] = p(a) for the most likely first token a, estimated from k = 4 samples
    without replacement over 300 seeds: the mean is within 4 standard errors of p(a)."""
    p = torch.softmax(target.next_logits([PROMPT])[0].double(), -1)
    a = int(p.argmax())
    est = [stochastic_beam_search(target, PROMPT, k=4, max_new_tokens=2, seed=s).estimate(
        lambda y: float(bool(y.token_ids) and y.token_ids[0] == a)) for s in range(300)]
    se = np.std(est, ddof=1) / math.sqrt(len(est))
    assert abs(np.mean(est) - float(p[a])) < 4 * se + 1e-9


def test_trace_and_bad_input(target):
    with trace() as t:
        r = stochastic_beam_search(target, PROMPT, k=3, max_new_tokens=3, seed=1)
    steps = [e for e in t.events if e["kind"] == "sbs_step"]
    assert steps and len(steps[-1]["gumbels"]) == 3 and steps[-1]["kappa"] == r.threshold
    with pytest.raises(ValueError, match="k must be"):
        stochastic_beam_search(target, PROMPT, k=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        stochastic_beam_search(target, PROMPT, max_new_tokens=0)
