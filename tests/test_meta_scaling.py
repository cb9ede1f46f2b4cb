import numpy as np
import pytest

from workbench.meta import scaling


def synthetic_pool(seed=0, problems=40, size=32):
    """Problems whose correct answer is 0; the model puts mass p on it and spreads the rest
    over 3 wrong answers; the verifier scores correct candidates higher on average."""
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(problems):
        p = rng.uniform(0.15, 0.7)
        ans = [0 if rng.random() < p else int(rng.integers(1, 4)) for _ in range(size)]
        correct = [a == 0 for a in ans]
        scores = [float(np.clip(rng.normal(0.7 if c else 0.4, 0.2), 0, 1)) for c in correct]
        pool.append({"id": i, "answer": 0, "answers": ans, "correct": correct, "scores": scores,
                     "logprobs": [0.0] * size, "lengths": [10] * size})
    return pool


def test_curves_behave_as_the_survey_describes():
    pool = synthetic_pool()
    ns = [1, 4, 16, 32]
    oracle = scaling.curve(pool, "oracle", ns, boots=30)
    vote = scaling.curve(pool, "vote", ns, boots=30)
    weighted = scaling.curve(pool, "weighted", ns, boots=30)
    first = scaling.curve(pool, "first", [1], boots=30)["accuracy"][0]
    assert oracle["accuracy"] == sorted(oracle["accuracy"])          # pass@N only grows
    assert vote["accuracy"][0] == pytest.approx(first, abs=0.05)     # N = 1 is one sample
    assert vote["accuracy"][-1] > vote["accuracy"][0] + 0.1          # voting helps here
    # the verifier puts more mass on correct answers, so weighted voting wins (Wu et al.)
    assert scaling.mass_on_correct(pool, True) > scaling.mass_on_correct(pool, False)
    assert weighted["accuracy"][-1] >= vote["accuracy"][-1]
    # at N = pool size the vote is the marginal-argmax estimate (eq. 35), ties broken at random
    assert vote["accuracy"][-1] == pytest.approx(scaling.marginal_accuracy(pool), abs=0.02)
    assert all(e >= 0 for e in vote["stderr"])


def test_one_tie_rule_first_drawn_so_ties_are_random_in_a_subset():
    """Votes count through meta.plurality (a tie goes to the answer drawn first), so two
    disagreeing samples are worth one sample, and the limit counts a k-way tie as 1/k."""
    row = {"answers": [7, 3], "correct": [True, False], "scores": [0.5, 0.5], "answer": 7}
    assert scaling.choose("vote", [7, 3], None, [True, False])
    assert not scaling.choose("vote", [3, 7], None, [False, True])
    pool = [row, dict(row, answers=[3, 3, 7], correct=[False, False, True], scores=[0.5] * 3)]
    assert scaling.marginal_accuracy(pool) == pytest.approx((1 / 2 + 0) / 2)
    assert scaling.marginal_accuracy(pool, weighted=True) == pytest.approx((1 / 2 + 0) / 2)
    two = scaling.curve([row] * 50, "vote", [2], boots=40, seed=0)["accuracy"][0]
    assert 0.4 < two < 0.6                     # a coin flip between 7 and 3, not a fixed pick


def test_bad_arguments():
    pool = synthetic_pool(problems=2, size=4)
    with pytest.raises(ValueError, match="larger than the pool"):
        scaling.curve(pool, "vote", [8])
    with pytest.raises(ValueError, match="method"):
        scaling.curve(pool, "nope", [1])
