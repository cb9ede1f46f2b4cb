"""Sampling adapters (survey §3.3, Table 2): identical to the Hugging Face processors."""
import math
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import (EpsilonLogitsWarper, EtaLogitsWarper, MinPLogitsWarper,
                          TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
                          TypicalLogitsWarper)

from workbench import adapters, decoding

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def logits(draw):
    """(B, V) float32 logits with ties (values from a small grid) and -inf entries."""
    b = draw(st.integers(1, 3))
    v = draw(st.integers(1, 24))
    grid = draw(st.booleans())
    value = (st.sampled_from([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0]) if grid
             else st.floats(-20, 20, allow_nan=False, width=32))
    rows = []
    for _ in range(b):
        row = draw(st.lists(st.one_of(value, st.just(-math.inf)) if draw(st.booleans()) else value,
                            min_size=v, max_size=v))
        if all(x == -math.inf for x in row):
            row[draw(st.integers(0, v - 1))] = draw(value)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)


def same(a, b):
    return a.shape == b.shape and torch.equal(a, b)


def crossing_values(x):
    """Probabilities at which a threshold falls exactly on a token (cumulative sums, p_i)."""
    p = torch.softmax(x, -1)
    sp = torch.sort(p, -1, descending=True)[0]
    vals = set(sp.cumsum(-1).flatten().tolist()) | set(p.flatten().tolist())
    return sorted(v for v in vals if 0 < v < 1)


@SETTINGS
@given(x=logits(), tau=st.floats(0.05, 20))
def test_temperature_equals_hf(x, tau):
    assert same(adapters.temperature(x, tau), TemperatureLogitsWarper(float(tau))(None, x))


@SETTINGS
@given(x=logits(), k=st.integers(1, 30), keep=st.integers(1, 5))
def test_top_k_equals_hf(x, k, keep):
    assert same(adapters.top_k(x, k, keep), TopKLogitsWarper(k, min_tokens_to_keep=keep)(None, x))


@SETTINGS
@given(x=logits(), data=st.data(), keep=st.integers(1, 5))
def test_top_p_equals_hf(x, data, keep):
    p = data.draw(st.one_of(st.floats(0.01, 1.0), st.sampled_from(crossing_values(x) or [1.0]),
                            st.just(1.0)))
    ours = adapters.top_p(x, p, keep)
    assert same(ours, TopPLogitsWarper(p, min_tokens_to_keep=keep)(None, x))


@SETTINGS
@given(x=logits(), data=st.data(), keep=st.integers(1, 5))
def test_min_p_equals_hf(x, data, keep):
    p = data.draw(st.one_of(st.floats(0.0, 1.0), st.just(0.0), st.just(1.0)))
    assert same(adapters.min_p(x, p, keep), MinPLogitsWarper(p, min_tokens_to_keep=keep)(None, x))


@SETTINGS
@given(x=logits(), data=st.data(), keep=st.integers(1, 5))
def test_typical_equals_hf(x, data, keep):
    mass = data.draw(st.one_of(st.floats(0.01, 0.99),
                               st.sampled_from([v for v in crossing_values(x) if v < 1] or [0.5])))
    ours = adapters.typical(x, mass, keep)
    assert same(ours, TypicalLogitsWarper(mass, min_tokens_to_keep=keep)(None, x))


@SETTINGS
@given(x=logits(), data=st.data(), keep=st.integers(1, 5))
def test_epsilon_equals_hf(x, data, keep):
    eps = data.draw(st.one_of(st.floats(1e-4, 0.99),
                              st.sampled_from([v for v in crossing_values(x) if v < 1] or [0.1])))
    assert same(adapters.epsilon(x, eps, keep),
                EpsilonLogitsWarper(eps, min_tokens_to_keep=keep)(None, x))


@SETTINGS
@given(x=logits(), eps=st.floats(1e-4, 0.99), keep=st.integers(1, 5))
def test_eta_equals_hf(x, eps, keep):
    assert same(adapters.eta(x, eps, keep), EtaLogitsWarper(eps, min_tokens_to_keep=keep)(None, x))


def test_equal_hf_on_model_logits(tiny_lm):
    x = tiny_lm.next_logits(["Story: The little", "Q: 1+2\n", "Review: The soup"]) * 30
    pairs = [(adapters.top_k(x, 20), TopKLogitsWarper(20)), (adapters.top_p(x, 0.9),
             TopPLogitsWarper(0.9)), (adapters.min_p(x, 0.1), MinPLogitsWarper(0.1)),
             (adapters.typical(x, 0.9), TypicalLogitsWarper(0.9)),
             (adapters.epsilon(x, 3e-4), EpsilonLogitsWarper(3e-4)),
             (adapters.eta(x, 3e-4), EtaLogitsWarper(3e-4))]
    for ours, hf in pairs:
        assert same(ours, hf(None, x))
        assert 1 < int(torch.isfinite(ours).sum()) < x.numel()  # something kept, something cut


def test_pure_and_any_leading_shape():
    x = torch.randn(2, 3, 11)
    before = x.clone()
    out = adapters.top_p(x, 0.5)
    assert torch.equal(x, before) and out.shape == x.shape
    assert same(out[1, 2], adapters.top_p(x[1, 2], 0.5))
    assert same(adapters.typical(x[0, 0], 0.5), adapters.typical(x[0, :1], 0.5)[0])


@pytest.mark.parametrize("call, name", [
    (lambda x: adapters.temperature(x, 0), "tau"),
    (lambda x: adapters.temperature(x, "hot"), "tau"),
    (lambda x: adapters.top_k(x, 0), "k"), (lambda x: adapters.top_k(x, 2.5), "k"),
    (lambda x: adapters.top_p(x, 1.5), "p"), (lambda x: adapters.top_p(x, 0), "p"),
    (lambda x: adapters.top_p(x, 0.5, min_tokens_to_keep=0), "min_tokens_to_keep"),
    (lambda x: adapters.min_p(x, -0.1), "p"), (lambda x: adapters.typical(x, 1.0), "mass"),
    (lambda x: adapters.epsilon(x, 0.0), "eps"), (lambda x: adapters.eta(x, 1.0), "eps"),
    (lambda x: adapters.eta(x, float("nan")), "eps"), (lambda x: adapters.Mirostat(tau=-1), "tau"),
    (lambda x: adapters.Mirostat(lr=0), "lr"),
    (lambda x: adapters.bat(x, 2.0, torch.eye(5)), "eps"),
])
def test_bad_parameters_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        call(torch.randn(1, 5))


def test_top_p_keeps_the_token_that_crosses_the_threshold():
    x = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(adapters.top_p(x, 0.6)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(adapters.top_p(x, 0.5)).tolist() == [[True, False, False, False]]


# -- composition --------------------------------------------------------------------------
def test_chain_applies_in_order_and_lists_work_in_decode(tiny_lm):
    x = torch.randn(2, 50)
    a, b = partial(adapters.top_k, k=5), partial(adapters.temperature, tau=0.5)
    assert same(adapters.chain(a, b)(x), b(a(x)))
    assert same(adapters.chain([a], adapters.chain(b))(x), b(a(x)))
    assert repr(adapters.chain(a, b)) == "chain(top_k(k=5), temperature(tau=0.5))"
    s1 = decoding.sample(tiny_lm, "Story:", adapters=[a, b], seed=1, max_new_tokens=8)
    s2 = decoding.sample(tiny_lm, "Story:", adapters=adapters.chain(a, b), seed=1,
                         max_new_tokens=8)
    assert s1.token_ids == s2.token_ids
    with pytest.raises(TypeError, match="callables"):
        adapters.chain(a, 3)


# -- mirostat -----------------------------------------------------------------------------
def zipf_logits(v=500, s=1.1):
    return -s * torch.log(torch.arange(1, v + 1, dtype=torch.float32)).view(1, -1)


def test_mirostat_truncates_by_surprise_and_keeps_the_top():
    x = zipf_logits()
    m = adapters.Mirostat(tau=2.0)
    out = m(x)
    surprise = -torch.log_softmax(x.double(), -1) / math.log(2)
    assert torch.equal(torch.isfinite(out), surprise <= 4.0)     # mu starts at 2 tau
    m.mu = torch.tensor([0.0])
    assert int(torch.isfinite(m(x)).sum()) == 1


@pytest.mark.parametrize("tau", [2.5, 4.0])
def test_mirostat_reaches_the_target_surprise(tau):
    x = zipf_logits(s=1.3)           # entropy 5.1 bits; the top token's surprise is 1.8 bits
    m = adapters.Mirostat(tau=tau, lr=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3000):
        tok = decoding.choose_sample(m(x), gen)
        m.observe(tok, None)
    mean = float(np.mean(m.surprises[500:]))
    assert abs(mean - tau) < 0.15, mean
    plain = -(torch.softmax(x, -1) * torch.log_softmax(x, -1)).sum() / math.log(2)
    assert abs(float(plain) - tau) > 1.0          # untruncated sampling is far from the target


def test_mirostat_in_decode_and_reset(tiny_lm):
    m = adapters.Mirostat(tau=3.0)
    g = decoding.sample(tiny_lm, "Story:", adapters=[m], seed=0, max_new_tokens=6, n=2)
    assert len(m.surprises) >= 1 and m.mu.shape == (2,)
    with pytest.raises(ValueError, match="reset"):
        m(torch.randn(3, tiny_lm.vocab_size))
    m.reset()
    assert m(torch.randn(3, tiny_lm.vocab_size)).shape == (3, tiny_lm.vocab_size)
    assert len(g) == 2


# -- basis-aware truncation ---------------------------------------------------------------
def raw_min_mass(w, probs, i, eps):
    """Independent check in the textbook form: min p_i s.t. W^T p = W^T p_hat, sum p = 1,
    0 <= p <= p_hat / (1 - eps)."""
    from scipy.optimize import linprog
    a = np.concatenate([w, np.ones((w.shape[0], 1))], 1).T
    c = np.zeros(len(probs))
    c[i] = 1
    res = linprog(c, A_eq=a, b_eq=a @ probs, bounds=list(zip(0 * probs, probs / (1 - eps))),
                  method="highs")
    assert res.status == 0
    return res.x[i] / probs[i]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bat_keeps_exactly_the_tokens_the_lp_proves_necessary(seed):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    x = (w @ torch.randn(6, generator=gen, dtype=torch.float64)).float().view(1, -1)
    eps = 0.02
    out = adapters.bat(x, eps, w)
    probs = torch.softmax(x.double(), -1)[0].numpy()
    kept = torch.isfinite(out[0]).numpy()
    assert kept[probs >= eps].all()
    decided = 0
    for i in np.flatnonzero(probs < eps):
        m = raw_min_mass(w.numpy(), probs, i, eps)
        if m > 1e-3 or m < 1e-9:         # away from the tolerance
            assert kept[i] == (m > 1e-3), (i, m)
            decided += 1
    assert decided >= 20
    assert kept.sum() > (probs >= eps).sum()      # rescues tokens epsilon truncation drops


def test_bat_basis_is_never_reused_for_a_new_matrix_at_a_freed_address():
    """Regression: the basis cache was keyed by storage address, so a new embedding allocated
    where a freed one had been got the old basis (the cause of an 'intermittent' failure)."""
    from workbench.adapters import _basis
    for seed in range(6):
        w = torch.randn(40, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        a = np.concatenate([w.numpy(), np.ones((40, 1))], 1)
        b = _basis(w)
        assert np.allclose(b @ (b.T @ a), a)           # spans [W, 1] of *this* matrix
        del w
    w = torch.randn(40, 6, dtype=torch.float64)
    first = _basis(w)
    w.mul_(2).add_(1)                                    # changed in place: recomputed
    a = np.concatenate([w.numpy(), np.ones((40, 1))], 1)
    assert _basis(w) is not first and np.allclose(_basis(w) @ (_basis(w).T @ a), a)


def test_bat_full_rank_embedding_keeps_every_token():
    w = torch.randn(6, 8)
    x = torch.randn(1, 6) * 4
    assert torch.isfinite(adapters.bat(x, 0.3, w)).all()


def test_bat_on_a_model_and_candidate_limit(tiny_lm):
    x = tiny_lm.next_logits("Story: The little") * 30
    out = adapters.bat(x, 0.01, tiny_lm, max_candidates=3)
    eps_kept = torch.isfinite(adapters.epsilon(x, 0.01))
    kept = torch.isfinite(out)
    assert (kept | ~eps_kept).all() and kept.sum() <= eps_kept.sum() + 3
    with pytest.raises(ValueError, match="rows"):
        adapters.bat(x[:, :100], 0.01, tiny_lm)


def test_adapters_on_the_embedded_model():
    import workbench as wb
    try:
        lm = wb.load("tinyworld", device="cpu")
    except wb.ModelNotAvailable:
        pytest.skip("the embedded tinyworld model is not trained yet")
    x = lm.next_logits(["Story: The little", "Review: The soup was"])
    for ours, hf in [(adapters.top_p(x, 0.9), TopPLogitsWarper(0.9)),
                     (adapters.typical(x, 0.9), TypicalLogitsWarper(0.9)),
                     (adapters.eta(x, 3e-4), EtaLogitsWarper(3e-4))]:
        assert same(ours, hf(None, x))
    out = adapters.bat(x[:1], 0.01, lm, max_candidates=5)
    assert torch.isfinite(adapters.epsilon(x[:1], 0.01))[~torch.isfinite(out)].sum() == 0
