"""adapters.MirostatV1, the paper's Mirostat (Basu et al., 2021, Algorithm 1): the Zipf fit,
the k it keeps, and the feedback that holds the average surprise at tau."""
import math

import pytest
import torch

from workbench import adapters as A


def zipf_logits(s: float, V: int = 1000) -> torch.Tensor:
    return -s * torch.log(torch.arange(1, V + 1, dtype=torch.float64))


@pytest.mark.parametrize("s", [0.8, 1.0, 1.1, 1.7])
def test_the_zipf_exponent_of_an_exact_zipf_law_is_found_exactly(s):
    logp = torch.log_softmax(zipf_logits(s), -1)[None]
    top = torch.topk(logp, 101, dim=-1).values
    assert float(A.zipf_exponent(top)) == pytest.approx(s, rel=1e-9)


def test_k_is_the_papers_formula():
    s, V, tau = 1.1, 1000, 3.0
    ad = A.MirostatV1(tau=tau)
    out = ad(zipf_logits(s, V).float()[None])
    mu, e = 2 * tau, s - 1
    want = round(((e * 2 ** mu) / (1 - V ** (-e))) ** (1 / s)) + 1        # the authors' compute_k + 1
    assert ad.k == [[want]] and int(torch.isfinite(out).sum()) == want
    assert torch.isfinite(out[0, :want]).all()                             # the top-k, in order


def test_exponent_one_uses_the_limit_and_a_flat_top_keeps_everything():
    V = 500
    ad = A.MirostatV1(tau=2.0)
    ad(zipf_logits(1.0, V).float()[None])
    assert ad.k[0][0] == round((2 ** 4 / math.log(V)) ** 1.0) + 1         # e / (1 - V^-e) -> 1/ln V
    flat = A.MirostatV1(tau=2.0)
    assert torch.isfinite(flat(torch.zeros(1, V))).all() and flat.k == [[V]]


def test_feedback_holds_the_average_surprise_at_tau():
    """Sampling from a fixed Zipf law, the mean surprise of 2000 draws (after 200 of burn-in)
    is tau within 0.1 bits, for two targets; a fixed top-k would not adapt."""
    g = torch.Generator().manual_seed(0)
    logits = zipf_logits(1.2, 2000).float()[None]
    for tau in (2.5, 4.0):
        ad = A.MirostatV1(tau=tau, lr=0.1)
        for _ in range(2200):
            tok = torch.multinomial(torch.softmax(ad(logits), -1), 1, generator=g)
            ad.observe(tok.view(-1))
        surprise = [s[0] for s in ad.surprises[200:]]
        assert sum(surprise) / len(surprise) == pytest.approx(tau, abs=0.1)


def test_rows_are_independent_and_bad_input_is_named():
    ad = A.MirostatV1(tau=3.0)
    both = ad(torch.stack([zipf_logits(1.1), zipf_logits(2.5)]).float())
    assert torch.isfinite(both).sum(-1).tolist() == ad.k[0] and ad.k[0][0] > ad.k[0][1]
    for kw, msg in (({"m": 0}, "m must be"), ({"tau": -1}, "tau must be"), ({"lr": 0}, "lr must")):
        with pytest.raises(ValueError, match=msg):
            A.MirostatV1(**kw)
    assert repr(A.MirostatV1(tau=0.1 * 30)) == "MirostatV1(tau=3, lr=0.1, m=100)"
