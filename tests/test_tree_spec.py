"""Token-tree speculative decoding (survey §7.2; SpecInfer, Miao et al. 2024): the per-node
multi-step speculative sampling rule is exact, greedy tree decoding is greedy decoding, sampled
outputs follow the adapted target exactly, and a tree accepts at least as much per round as a
chain."""
import itertools
import math
from functools import partial

import numpy as np
import pytest
import torch
from scipy import stats

import workbench as wb
from conftest import support
from workbench import adapters, decoding
from workbench.efficiency import (multi_draft_step, speculative_decode,
                                  speculative_sampling_step, tree_spec,
                                  tree_speculative_decoding, truncated_draft)
from workbench.measures import sequence_logprob
from workbench.trace import EVENTS, trace

V = 6


def _pq(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V) * 0.7)
    return torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)


def _draws(p, q, m, n, seed):
    """n tokens emitted by multi_draft_step, the m children drawn from q without replacement."""
    gen = torch.Generator().manual_seed(seed)
    counts, accepted = np.zeros(V), 0
    for _ in range(n):
        kids = tree_spec._draw_children(q, m, gen)
        tok, i = multi_draft_step(p, q, kids, gen)
        counts[tok] += 1
        accepted += i is not None
    return counts, accepted


def _chi2(counts, probs):
    keep = probs * counts.sum() >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(probs[keep], probs[~keep].sum()) * counts.sum()
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def _exact_output(p, q, m):
    """The rule's output distribution, enumerating every ordered draw of m children."""
    out = np.zeros(V)
    for kids in itertools.permutations(range(V), m):
        qk, prob = q.clone(), 1.0
        for c in kids:      # probability of drawing this order without replacement
            prob *= float(qk[c] / qk.sum())
            qk[c] = 0
        if prob == 0:
            continue
        pi, qi, reach = p.clone(), q.clone(), prob
        for c in kids:
            a = min(1.0, float(pi[c] / qi[c])) if qi[c] > 0 else 0.0
            out[c] += reach * a
            reach *= 1 - a
            pi, qi = tree_spec._residual(pi, qi), qi.clone()
            qi[c] = 0
            qi = qi / qi.sum()
        out += reach * pi.numpy()
    return out


@pytest.mark.parametrize("m", [1, 2, 3])
def test_multi_draft_step_is_exact(m):
    """Exactly p when enumerated (three (p, q) pairs); empirically p over 20,000 draws of
    `multi_draft_step` itself (chi-square)."""
    for seed in (0, 1, 2):
        p, q = _pq(seed)
        assert _exact_output(p, q, m) == pytest.approx(p.numpy(), abs=1e-12)
    p, q = _pq(m)
    counts, _ = _draws(p, q, m, 20_000, seed=10 * m)
    pval = _chi2(counts, p.numpy())
    print(f"m={m}: chi-square p-value {pval:.3g}")
    assert pval > 1e-3


def test_one_child_accepts_with_probability_sum_min_p_q():
    """m = 1 is speculative sampling: acceptance probability sum_v min(p(v), q(v))."""
    p, q = _pq(2)
    n = 20_000
    _, accepted = _draws(p, q, 1, n, seed=5)
    beta = float(torch.minimum(p, q).sum())
    assert abs(accepted / n - beta) < 5 * math.sqrt(beta * (1 - beta) / n)
    gen = torch.Generator().manual_seed(0)
    step = speculative_sampling_step(p.view(1, -1).repeat(2, 1), q.view(1, -1), [0], gen)
    assert step.accept_probs[0] == pytest.approx(min(1.0, float(p[0] / q[0])))


def test_skipping_the_residual_update_is_biased(monkeypatch):
    """Power check: keep p unchanged after a rejection and the output no longer follows p."""
    p, q = _pq(0)
    monkeypatch.setattr(tree_spec, "_residual", lambda p, q: p)
    counts, _ = _draws(p, q, 2, 20_000, seed=3)
    pval = _chi2(counts, p.numpy())
    print(f"without the residual: chi-square p-value {pval:.3g}")
    assert pval < 1e-6


PROMPTS = ["Story:", "Q: 12+7*3-5\n", "Once upon"]


@pytest.mark.parametrize("branching", [(1,), (2, 2, 1), (3, 2), (4,)])
def test_greedy_tree_decoding_is_greedy(target, draft, branching):
    for prompt, eos in itertools.product(PROMPTS, (True, False)):
        ref = decoding.greedy(target, prompt, 24, eos=eos)
        out = tree_speculative_decoding(target, draft, prompt, branching=branching,
                                        max_new_tokens=24, greedy=True, stop_at_eos=eos)
        assert out.token_ids == ref.token_ids
        assert out.finish_reason == ref.finish_reason
        assert out.logprob == pytest.approx(ref.logprob, abs=1e-4)
        assert out.info["target_passes"] == len(out.info["rounds"]) + 1   # + the prompt's
        assert out.proposal_logprob == 0.0


def test_greedy_tree_decoding_on_random_llamas(tokenizer):
    from conftest import random_llama
    t = wb.LanguageModel(random_llama(tokenizer, seed=0, layers=2), tokenizer, "t")
    d = wb.LanguageModel(random_llama(tokenizer, seed=1, layers=1), tokenizer, "d")
    for branching in [(2, 2, 1), (3, 2)]:
        ref = decoding.greedy(t, "Story:", 12, eos=False)
        out = tree_speculative_decoding(t, d, "Story:", branching=branching, max_new_tokens=12,
                                        greedy=True, stop_at_eos=False)
        assert out.token_ids == ref.token_ids
        assert out.logprob == pytest.approx(ref.logprob, abs=1e-4)


@pytest.mark.parametrize("which,branching,depth,n", [("tinyworld-draft", (2, 2), 3, 400),
                                                     ("first layer", (2,), 2, 250)])
def test_sampled_outputs_follow_the_adapted_target(target, draft, which, branching, depth, n):
    """Top-3 at T = 1.5: the outputs' frequencies over n seeds match the enumerated
    distribution of plain sampling through the same adapters, and each output's proposal
    log-probability is its log-probability under those adapters.  TinyWorld's draft agrees
    with the target (children mostly accepted: the tree's deeper levels are used); the target's
    first layer alone (`truncated_draft`) often does not (the residuals are used)."""
    ads = [partial(adapters.temperature, tau=1.5), partial(adapters.top_k, k=3)]
    q_model = draft if which == "tinyworld-draft" else truncated_draft(target, 1)
    ys = support(target, "Story:", ads, depth)
    log_g = sequence_logprob(target, "Story:", ys, ads)
    assert np.exp(log_g).sum() == pytest.approx(1.0, abs=1e-5)
    index = {tuple(y): i for i, y in enumerate(ys)}
    counts, accepted, rejected = np.zeros(len(ys)), 0, 0
    for seed in range(n):
        g = tree_speculative_decoding(target, q_model, "Story:", branching=branching,
                                      max_new_tokens=depth, adapters=ads, seed=seed)
        y = g.token_ids + ([target.eos_token_id] if g.finish_reason == "eos" else [])
        counts[index[tuple(y)]] += 1
        assert g.proposal_logprob == pytest.approx(float(log_g[index[tuple(y)]]), abs=1e-4)
        accepted += sum(len(r["path"]) for r in g.info["rounds"])
        rejected += sum(len(r["path"]) < depth - 1 for r in g.info["rounds"][:1])
    pval = _chi2(counts, np.exp(log_g))
    print(f"{which} draft, sampling end to end: chi-square p-value {pval:.3g} "
          f"({accepted / n:.2f} drafted tokens accepted per output, first round stopped early in {rejected} of {n})")
    assert pval > 1e-3
    assert 0 < rejected < n     # both ways out of a round were taken


def test_a_tree_accepts_at_least_as_much_per_round_as_a_chain(target, draft):
    tree = tree_speculative_decoding(target, draft, "Story:", branching=(2, 2, 1),
                                     max_new_tokens=64, greedy=True, stop_at_eos=False)
    chain = speculative_decode(target, draft, "Story:", k=3, max_new_tokens=64, greedy=True,
                               stop_at_eos=False)
    assert tree.token_ids == chain.token_ids
    print(f"tokens per round: tree {tree.info['tokens_per_round']:.3f} "
          f"({tree.info['target_passes']} target passes), chain "
          f"{chain.info['tokens_per_round']:.3f} "
          f"({chain.info['target_cost'].forward_passes} target passes)")
    assert tree.info["tokens_per_round"] >= chain.info["tokens_per_round"]
    assert tree.info["target_passes"] <= chain.info["target_cost"].forward_passes
    assert set(tree.info["tree_size"][:-1]) == {2 + 4 + 4}


@pytest.mark.parametrize("bad", [(), [], (2, 0), (1.5,), (True,), 3, None])
def test_bad_branching_is_named(target, draft, bad):
    with pytest.raises(ValueError, match="branching"):
        tree_speculative_decoding(target, draft, "Story:", branching=bad)


def test_other_errors(target, tiny_lm, tokenizer):
    from conftest import random_llama
    small = wb.LanguageModel(random_llama(tokenizer), tokenizer, "x")
    small.vocab_size = target.vocab_size + 1
    with pytest.raises(ValueError, match="vocabulary"):
        tree_speculative_decoding(target, small, "Story:")
    with pytest.raises(ValueError, match="adapters"):
        tree_speculative_decoding(target, tiny_lm, "Story:", adapters=[adapters.Mirostat()])
    with pytest.raises(ValueError, match="max_new_tokens"):
        tree_speculative_decoding(target, tiny_lm, "Story:", max_new_tokens=-1)


def test_trace_events_carry_their_fields(target, tiny_lm):
    with trace() as t:
        g = tree_speculative_decoding(target, tiny_lm, "Story:", branching=(2, 1),
                                      max_new_tokens=8, seed=0, stop_at_eos=False)
    events = [e for e in t.events if e["kind"] == "tree_spec_round"]
    assert len(events) == len(g.info["rounds"])
    fields = set(EVENTS["tree_spec_round"].fields)
    emitted = []
    for r, (e, rd) in enumerate(zip(events, g.info["rounds"])):
        assert fields <= set(e) and e["round"] == r and e["source"] == "tree_spec"
        assert e["tokens"] == rd["tokens"] and e["path"] == rd["path"]
        assert len(e["parents"]) == len(e["tokens"]) <= 2 + 2
        assert all(-1 <= a < i for i, a in enumerate(e["parents"]))
        assert e["path"] == sorted(e["path"]) and len(e["emitted"]) == len(e["path"]) + 1
        assert [e["tokens"][i] for i in e["path"]] == e["emitted"][:-1]
        emitted += e["emitted"]
    assert emitted[:len(g.token_ids)] == g.token_ids
