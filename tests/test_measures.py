"""workbench.measures: the coin-flip facts of §3.1 (exact, against brute force) and
sequence_logprob (eq. 11) against the model's own score."""
import itertools
import math

import numpy as np

from workbench.measures import coin_flips, sequence_logprob, typical_set_mass


def test_coin_flips_match_brute_force_enumeration():
    n, p = 8, 0.6
    c = coin_flips(n, p)
    seqs = list(itertools.product([0, 1], repeat=n))
    logp = np.array([sum(math.log(p if s else 1 - p) for s in seq) for seq in seqs])
    assert math.isclose(c["entropy"], -(np.exp(logp) * logp).sum(), rel_tol=1e-9)
    assert c["mode_heads"] == n                       # the mode is all heads
    mode = logp.max()
    assert math.isclose(c["p_as_likely_as_mode"], np.exp(logp[logp >= mode - 1e-12]).sum())
    assert math.isclose(sum(math.exp(x) for x in c["log_p_count"]), 1.0, rel_tol=1e-9)


def test_typical_set_holds_most_mass_the_mode_almost_none():
    c = coin_flips(1000, 0.51)
    assert typical_set_mass(1000, 0.51, eps=0.05) > 0.9
    assert c["p_as_likely_as_mode"] < 1e-6


def test_sequence_logprob_without_adapters_is_the_models_score(tiny_lm):
    conts = [" The cat slept.", " A dog"]
    ours = sequence_logprob(tiny_lm, "Story:", conts)
    assert np.allclose(ours, tiny_lm.score("Story:", conts), atol=1e-4)
