"""`Generation.logprob` is log p_theta(y | x) and `Generation.proposal_logprob` is log g(y | x)
of the adapted distribution actually sampled, both counting the end token when the output ended
on it.  References: `measures.sequence_logprob` (teacher-forced scoring, a separate code path),
and, for rejection sampling with an LM proposal, the exact distribution of the TinyWorld model
over a support small enough to enumerate."""
import math
from functools import partial

import numpy as np
import pytest
import scipy.stats as sps

import workbench as wb
from conftest import support
from workbench import adapters, constraints, decoding, efficiency as eff, meta
from workbench.measures import sequence_logprob


@pytest.fixture(scope="module")
def lm():
    return wb.load("tinyworld", device="cpu")


def with_end(lm, g):
    return g.token_ids + ([lm.eos_token_id] if g.finish_reason == "eos" else [])


def check_against_reference(lm, prompt, gens, ads):
    for g in gens:
        ids = with_end(lm, g)
        assert g.logprob == pytest.approx(sequence_logprob(lm, prompt, [ids])[0], abs=1e-4)
        assert g.proposal_logprob == pytest.approx(
            sequence_logprob(lm, prompt, [ids], ads)[0], abs=1e-4)


@pytest.mark.parametrize("ads", [
    [partial(adapters.temperature, tau=0.5)],
    [partial(adapters.top_k, k=5)],
    [partial(adapters.temperature, tau=1.3), partial(adapters.top_p, p=0.8)],
    None])
def test_sampling_reports_p_theta_and_the_proposal(lm, ads):
    gens = decoding.sample(lm, "Story:", adapters=ads, seed=3, n=6, max_new_tokens=60)
    assert sum(g.finish_reason == "eos" for g in gens) >= 3      # the end token is exercised
    check_against_reference(lm, "Story:", gens, ads)
    if ads is None:
        assert all(g.proposal_logprob == g.logprob for g in gens)


def test_temperature_moves_the_proposal_far_from_p_theta(lm):
    """The measurement of the issue: at T = 0.5 log g and log p_theta differ by nats, so an
    algorithm that needs g cannot use p_theta's number."""
    g = decoding.sample(lm, "Story:", adapters=[partial(adapters.temperature, tau=0.5)], seed=3)
    assert g.finish_reason == "eos" and g.proposal_logprob - g.logprob > 1.0


def test_greedy_and_deterministic_searches_have_proposal_zero(lm):
    g = decoding.greedy(lm, "Story:", max_new_tokens=60)
    assert g.finish_reason == "eos" and g.proposal_logprob == 0.0
    assert g.logprob == pytest.approx(sequence_logprob(lm, "Story:", [with_end(lm, g)])[0],
                                      abs=1e-4)
    c = wb.decoding.contrastive_search(lm, "Story:", max_new_tokens=60)
    assert c.proposal_logprob == 0.0
    assert c.logprob == pytest.approx(sequence_logprob(lm, "Story:", [with_end(lm, c)])[0],
                                      abs=1e-4)
    b = decoding.beam_search(lm, "Story:", num_beams=3, max_new_tokens=60)
    assert b.best.finish_reason == "eos" and b.best.logprob == pytest.approx(b.best.seq_logprob)


@pytest.mark.parametrize("fast_forward", [True, False])
def test_constrained_generation_counts_the_end_token(lm, fast_forward):
    """A regex that forces the end: with fast-forward, the forced EOS's p_theta still counts;
    the proposal is the masked distribution, so log g >= log p_theta."""
    g = constraints.generate(lm, "Story:", r" The (cat|dog) sat\.", seed=1,
                             fast_forward=fast_forward)
    assert g.finish_reason == "eos"
    ref = sequence_logprob(lm, "Story:", [with_end(lm, g)])[0]
    assert g.logprob == pytest.approx(ref, abs=1e-4)
    assert g.proposal_logprob >= g.logprob and g.end_proposal_logprob == 0.0


def test_speculative_sampling_reports_the_target_proposal(lm):
    draft = wb.load("tinyworld-draft", device="cpu")
    ads = [partial(adapters.temperature, tau=0.7)]
    g = eff.speculative_decode(lm, draft, "Story:", k=4, adapters=ads, seed=2,
                               max_new_tokens=60)
    check_against_reference(lm, "Story:", [g], ads)


def test_rejection_sampling_with_an_lm_proposal_is_exact(lm):
    """Proposal g: the TinyWorld model through top-3 at T = 0.5, three tokens (27 outputs).
    Target q~ = p_theta on g's support, bound M = max q~/g by enumeration.  The accepted outputs
    follow q* = q~ / Z (chi-square), and the acceptance rate is Z / M."""
    ads = [partial(adapters.temperature, tau=0.5), partial(adapters.top_k, k=3)]
    ys = support(lm, "Story:", ads, 3)
    log_g = sequence_logprob(lm, "Story:", ys, ads)
    log_p = sequence_logprob(lm, "Story:", ys)
    assert math.fsum(np.exp(log_g)) == pytest.approx(1.0, abs=1e-5)    # the support is all of g
    q_star = np.exp(log_p) / np.exp(log_p).sum()
    log_M = float(np.max(log_p - log_g)) + 1e-3   # float32 decoding vs the float64 reference
    gen = meta.LMGenerator(lm, adapters=ads, max_new_tokens=3)
    r = meta.rejection_sample("Story:", gen, lambda x, o: o.logprob, log_M, num_samples=1000,
                              max_proposals=60_000, batch=512, seed=0)
    index = {tuple(y): i for i, y in enumerate(ys)}
    counts = np.bincount([index[tuple(with_end(lm, c))] for c in r.candidates],
                         minlength=len(ys))
    n = len(r.candidates)
    assert (q_star * n).min() >= 5                       # chi-square's rule of thumb holds
    assert sps.chisquare(counts, q_star * n).pvalue > 1e-3, counts
    # the test has the power to see the difference: g's own counts would fail it
    assert sps.chisquare(np.exp(log_g) * n, q_star * n).pvalue < 1e-6
    z_over_m = math.exp(math.log(np.exp(log_p).sum()) - log_M)
    rate, n = r.info["acceptance_rate"], r.info["proposals"]
    assert abs(rate - z_over_m) < 4 * math.sqrt(z_over_m * (1 - z_over_m) / n)


def test_a_server_output_without_a_proposal_is_refused():
    out = meta.TextOutput("a", logprob=-1.0)      # p_theta known, g not (a server's report)
    gen = lambda prompt, n, seed=None: [out] * n
    gen = type("G", (), {"generate": staticmethod(gen)})()
    with pytest.raises(ValueError, match="proposal_logprob"):
        meta.rejection_sample("", gen, lambda x, o: 0.0, 0.0, seed=0)
    with pytest.raises(ValueError, match="proposal_logprob"):
        meta.importance_resample("", gen, meta.proposal_weight(lambda x, o: 0.0), 2, seed=0)


def test_importance_resampling_weights_by_target_over_proposal(lm):
    ads = [partial(adapters.temperature, tau=0.6)]
    gen = meta.LMGenerator(lm, adapters=ads, max_new_tokens=40)
    r = meta.importance_resample("Story:", gen, meta.proposal_weight(lambda x, o: o.logprob),
                                 8, seed=1)
    lw = np.array([c.logprob - c.proposal_logprob for c in r.candidates])
    want = np.exp(lw - lw.max()) / np.exp(lw - lw.max()).sum()
    assert r.scores == pytest.approx(want.tolist())


def test_generation_of_refuses_an_eos_without_its_logprob(lm):
    with pytest.raises(ValueError, match="end_logprob"):
        decoding.Generation.of(lm, "x", [1], [5], [-0.1], finish_reason="eos")
