"""Token-saving meta-generators (survey §6.3): adaptive consistency and a two-model cascade."""
import random

import pytest

from workbench import meta
from workbench.meta import TextGenerator


def sequence(texts):
    it = iter(texts)
    return TextGenerator(lambda p, s: next(it), "sequence")


def test_beta_confidence_is_the_exact_posterior_probability():
    assert meta.beta_confidence(0, 0) == pytest.approx(0.5)
    assert meta.beta_confidence(1, 0) == pytest.approx(0.75)    # Beta(2, 1): 1 - 0.5^2
    assert meta.beta_confidence(3, 0) == pytest.approx(1 - 0.5 ** 4)
    assert meta.beta_confidence(5, 5) == pytest.approx(0.5)
    assert meta.beta_confidence(6, 2) > meta.beta_confidence(5, 2)


@pytest.mark.parametrize("seed", range(30))
def test_decided_stopping_never_changes_the_majority(seed):
    rng = random.Random(seed)
    texts = [f"A: {rng.choice([1, 1, 2, 3])}" if rng.random() > 0.1 else "?" for _ in range(12)]
    full = meta.majority_vote("Q\n", sequence(texts), 12)
    early = meta.adaptive_vote("Q\n", sequence(texts), max_n=12, stop="decided")
    assert early.answer == full.answer
    assert early.info["samples"] <= 12 and early.cost.calls == early.info["samples"]


def test_beta_stopping_saves_samples_on_easy_questions():
    easy = meta.adaptive_vote("Q\n", sequence(["A: 7"] * 16), max_n=16, confidence=0.95)
    assert easy.answer == 7 and easy.info["samples"] == 4       # 1 - 0.5^5 >= 0.95 at 4-0
    hard = meta.adaptive_vote("Q\n", sequence(["A: 1", "A: 2"] * 8), max_n=16)
    assert hard.info["samples"] == 16


def test_cascade_routes_only_inconsistent_questions():
    cheap_ok = sequence(["A: 5"] * 3 + ["A: 6"])
    big = sequence(["A: 9"] * 4)
    r = meta.cascade("Q\n", cheap_ok, big, n_cheap=4, agreement=0.75)
    assert not r.info["routed"] and r.answer == 5 and r.cost.calls == 4
    r = meta.cascade("Q\n", sequence(["A: 5", "A: 6"] * 2), sequence(["A: 9"] * 4), n_cheap=4,
                     agreement=0.75, n_expensive=3)
    assert r.info["routed"] and r.answer == 9 and r.cost.calls == 7
    assert r.text == "A: 9" and r.chosen == 4
