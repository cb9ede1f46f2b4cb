"""Particle filtering (sequential Monte Carlo) over steps and DVTS (workbench.meta.smc)."""
import random

import numpy as np
import pytest
from scipy import stats as sps

from workbench import meta
from workbench.budget import Budget, BudgetExceeded
from workbench.meta import TextStepper
from workbench.tinyworld import arithmetic as ar

from test_search import ARITH, PROMPT, HashValue, noisy_solver

ANSWER = ar.Problem("12+7*3-5*2").answer


class Const(meta.Value):
    """The uniform potential: every state is worth the same."""
    name = "uniform"

    def __init__(self, v=0.5):
        self.v = v

    def one(self, prompt, p):
        return self.v


def test_effective_sample_size_on_known_weights():
    ess = meta.effective_sample_size
    assert ess([1, 1, 1, 1]) == 4 and ess([0.25] * 4) == 4
    assert ess([1, 0, 0, 0]) == 1 and ess([0, 0]) == 0
    assert ess([3, 1]) == pytest.approx(16 / 10)
    for bad in ([1, -1], [1, np.nan], [[1, 2]]):
        with pytest.raises(ValueError, match="weights"):
            ess(bad)


def test_multinomial_resampling_draws_parents_in_proportion_to_the_weights():
    w = np.array([0.1, 0.2, 0.3, 0.4, 0.0])
    counts = np.bincount(meta.multinomial_resample(w * 7, 4000, seed=0), minlength=5)
    assert counts[4] == 0 and counts.sum() == 4000
    chi2 = sps.chisquare(counts[:4], 4000 * w[:4])
    assert chi2.pvalue > 0.01, (counts, chi2)
    skewed = np.bincount(meta.multinomial_resample([0.4, 0.3, 0.2, 0.1], 4000, seed=0),
                         minlength=4)
    assert sps.chisquare(skewed, 4000 * w[:4]).pvalue < 1e-6     # the test can tell them apart


def test_systematic_resampling_gives_floor_or_ceil_and_the_right_mean():
    w = np.array([0.05, 0.5, 0.0, 0.3, 0.15])
    n, draws = 7, []
    for seed in range(3000):
        c = np.bincount(meta.systematic_resample(w, n, seed=seed), minlength=5)
        assert c.sum() == n and c[2] == 0
        assert ((np.floor(n * w) <= c) & (c <= np.ceil(n * w))).all(), c
        draws.append(c)
    mean = np.mean(draws, 0)
    assert np.abs(mean - n * w).max() < 0.05, mean
    assert meta.systematic_resample([1, 1, 1], 3, seed=5) == [0, 1, 2]   # equal weights: each once
    with pytest.raises(ValueError, match="weights"):
        meta.systematic_resample([0, 0], 2)
    with pytest.raises(ValueError, match="n must"):
        meta.multinomial_resample([1, 2], 0)


def test_a_uniform_potential_never_resamples_and_is_independent_sampling():
    """Equal weights: ESS = N every step, so no threshold <= 1 resamples, and the particles are
    N independent step-by-step samples: N disjoint paths, correct at the solver's rate."""
    n = 120
    for threshold in (0.5, 1.0):
        r = meta.particle_filter(PROMPT, TextStepper(noisy_solver(0.2)), Const(), particles=n,
                                 threshold=threshold, dedupe=False, seed=3)
        steps = r.trace.of("pf_step")
        assert steps and all(e["parents"] is None and e["ess"] == pytest.approx(n)
                             for e in steps)
        assert len(r.tree[0].children) == n
        assert all(len(node.children) <= 1 for node in r.tree[1:])      # chains, never forks
        leaves = [node for node in r.tree if not node.children]
        assert len(leaves) == n and all(node.terminal for node in leaves)
        right = sum(ar.check_answer(ar.Problem("12+7*3-5*2"), r.solution(node.id))
                    for node in leaves)
        # four reductions, each wrong with probability 0.2: P(right) = 0.8^4 = 0.4096
        assert sps.binomtest(right, n, 0.8 ** 4).pvalue > 0.01, right
        assert r.cost.calls == 5 * n and r.info["stopped"] == "done"    # 4 steps + the answer


def test_an_exact_potential_keeps_only_valid_particles():
    """With the exact step checker as potential the weights are 0 or 1: every resampling keeps
    only particles whose steps are all right, so the answer is right."""
    for seed in range(4):
        r = meta.particle_filter(PROMPT, TextStepper(noisy_solver(0.4)),
                                 meta.oracle_value(ARITH), particles=8, threshold=1.0, seed=seed)
        resampled = [e for e in r.trace.of("pf_step") if e["parents"] is not None]
        assert resampled, "a noisy solver should trigger resampling"
        for e in resampled:
            assert all(r.tree[i].value == 1.0 for i in e["nodes"]), e
            assert e["ess"] < 8
        assert r.answer == ANSWER
        assert any(n.status == "pruned" for n in r.tree)


def test_weights_follow_the_incremental_ratio():
    """w_i = G(s_t) / G(s_t') since the last resampling (here never: w_i = G(s_t))."""
    r = meta.particle_filter(PROMPT, TextStepper(noisy_solver(0.5)), HashValue(), particles=6,
                             threshold=0.0, seed=1)
    last = r.trace.of("pf_step")[-1]
    values = np.array([r.tree[i].value for i in last["nodes"]])
    assert last["weights"] == pytest.approx((values / values.sum()).tolist())
    assert last["ess"] == pytest.approx(meta.effective_sample_size(values))


def test_the_weighted_vote_sums_the_final_weights():
    r = meta.particle_filter(PROMPT, TextStepper(noisy_solver(0.5)), HashValue(), particles=8,
                             threshold=0.0, seed=2)
    votes = {}
    for i, w in zip(r.info["particles"], r.info["weights"]):
        a = meta.default_answer(r.solution(i))
        votes[a] = votes.get(a, 0.0) + w
    assert r.votes == pytest.approx(votes) and r.answer == max(votes, key=votes.get)
    best = meta.particle_filter(PROMPT, TextStepper(noisy_solver(0.5)), HashValue(),
                                particles=8, threshold=0.0, select="best", seed=2)
    assert best.tree[best.info["chosen_node"]].value == max(
        best.tree[i].value for i in best.info["particles"])


def test_dvts_with_one_subtree_is_a_greedy_stepwise_beam():
    for seed in (0, 5):
        d = meta.dvts(PROMPT, TextStepper(noisy_solver(0.4)), HashValue(), width=3,
                      expansions=3, seed=seed)
        b = meta.stepwise_beam(PROMPT, TextStepper(noisy_solver(0.4)), HashValue(),
                               beam_size=1, expansions=3, seed=seed)
        assert d.text == b.text and d.cost == b.cost and d.answer == b.answer
        assert [(n.step, n.parent, n.status, n.value) for n in d.tree] == \
            [(n.step, n.parent, n.status, n.value) for n in b.tree]


def test_dvts_joins_independent_subtrees_and_returns_the_best_leaf():
    d = meta.dvts(PROMPT, TextStepper(noisy_solver(0.4)), HashValue(), width=8, expansions=2,
                  seed=1)
    subs = d.trace.of("dvts_subtree")
    assert [e["index"] for e in subs] == [0, 1, 2, 3] and d.info["subtrees"] == 4
    assert len(d.tree[0].children) == 4 * 2                       # M first steps per subtree
    assert d.cost.calls == sum(e["kind"] == "expand" for e in d.events) * 2
    for e in subs:
        leaf = d.tree[e["node"]]
        assert leaf.value == e["value"] and meta.default_answer(d.solution(leaf.id)) == e["answer"]
    best = max(subs, key=lambda e: e["value"])
    assert d.info["chosen_node"] == best["node"] and d.text == d.solution(best["node"])
    chosen = [n.id for n in d.tree if n.status == "chosen"]
    assert chosen == d.path(best["node"])                          # one chosen path only
    for n in d.tree[1:]:
        assert d.tree[n.parent].children.count(n.id) == 1


@pytest.mark.parametrize("algo", ["particle_filter", "dvts"])
def test_budgets_are_never_exceeded(algo):
    rng = random.Random(algo)
    run = {"particle_filter": lambda b, s: meta.particle_filter(
        PROMPT, TextStepper(noisy_solver(0.3), max_step_tokens=12), HashValue(3), 6, budget=b,
        seed=s), "dvts": lambda b, s: meta.dvts(
        PROMPT, TextStepper(noisy_solver(0.3), max_step_tokens=12), HashValue(3), 6, 2,
        budget=b, seed=s)}[algo]
    stopped = 0
    for trial in range(12):
        field = ["output_tokens", "calls", "external_tokens", "total_tokens"][trial % 4]
        budget = Budget(**{field: rng.randint(1, 200)})
        try:
            r = run(budget, trial)
        except BudgetExceeded:
            assert budget.spent.calls == 0
            continue
        limit = budget.limits[field]
        spent = r.cost.total_tokens if field == "total_tokens" else getattr(r.cost, field)
        assert spent <= limit and r.cost == budget.spent
        stopped += r.info["stopped"] == "budget"
    assert stopped


def test_bad_parameters_name_themselves():
    st = TextStepper(noisy_solver(0.0))
    for kwargs, name in (({"particles": 0}, "particles"), ({"threshold": 1.5}, "threshold"),
                         ({"resampling": "stratified"}, "resampling"),
                         ({"select": "majority"}, "select"), ({"max_steps": 0}, "max_steps")):
        with pytest.raises(ValueError, match=name):
            meta.particle_filter(PROMPT, st, HashValue(), **kwargs)
    with pytest.raises(ValueError, match="value must be >= 0"):
        meta.particle_filter(PROMPT, st, Const(-1.0), particles=2)   # e.g. a log-probability
    for kwargs, name in (({"width": 6, "expansions": 4}, "width"),
                         ({"expansions": 0}, "expansions"), ({"select": "x"}, "select")):
        with pytest.raises(ValueError, match=name):
            meta.dvts(PROMPT, st, HashValue(), **kwargs)


def test_same_seed_same_particles():
    def tree(fn, seed):
        return [n.step for n in fn(PROMPT, TextStepper(noisy_solver(0.5)), HashValue(),
                                   seed=seed).tree]
    for fn in (lambda *a, **k: meta.particle_filter(*a, particles=6, threshold=0.9, **k),
               lambda *a, **k: meta.dvts(*a, width=6, expansions=3, **k)):
        assert tree(fn, 11) == tree(fn, 11) != tree(fn, 12)
