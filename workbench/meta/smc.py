"""Particle filtering over reasoning steps, and diverse verifier tree search (survey §4.3).

* `particle_filter`: sequential Monte Carlo (Puri et al., 2025, "A probabilistic inference
  approach to inference-time scaling of LLMs using particle-based Monte Carlo methods"): N
  partial solutions (particles) move one step at a time, are weighted by a value function used
  as a *potential* (the PRM), and are resampled when the weights degenerate;
* `dvts`: diverse verifier tree search (Beeching et al., 2024, "search-and-learn"): the width
  is split into independent subtrees, each a greedy step-level search (`stepwise_beam` with one
  state) under the value, and the best leaf is returned;
* the pieces they are made of: `effective_sample_size`, `multinomial_resample`,
  `systematic_resample`.

Both build on `workbench.meta.tree.Search`, so they bill Table 5 costs (every generated step is a
call whose input is prompt + steps so far; every scored state C_s external tokens), keep to a
`Budget`, and record their events like the other searches.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..budget import BudgetExceeded
from ..trace import Trace, emit, source
from ..validate import count, number
from .search import _best, _fallback, stepwise_beam
from .tree import Search, SearchResult

SELECT = ("weighted_vote", "best")


def effective_sample_size(weights) -> float:
    """ESS = (Σ_i w_i)² / Σ_i w_i² of non-negative importance weights (Kong, 1992): N for equal
    weights, 1 when one particle carries all the weight, 0 when every weight is 0."""
    w = np.asarray(weights, float)
    if w.ndim != 1 or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"weights must be a list of finite numbers >= 0, got {weights!r}")
    sq = float((w ** 2).sum())
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


def _normalised(weights):
    w = np.asarray(weights, float)
    if w.ndim != 1 or not len(w) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights!r}")
    return w / w.sum()


def multinomial_resample(weights, n: int, seed=None) -> list:
    """``n`` parent indices drawn independently with P(i) = w_i / Σ_j w_j."""
    p, n = _normalised(weights), count("n", n)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(len(p), size=n, p=p).tolist())


def systematic_resample(weights, n: int, seed=None) -> list:
    """``n`` parent indices by systematic resampling (Kitagawa, 1996): one uniform u ~ U[0, 1),
    the points (k + u)/n, k = 0..n-1, and parent i for each point that falls in the i-th slice
    of the cumulative weights.  Particle i gets ⌊n w̄_i⌋ or ⌈n w̄_i⌉ children (w̄ = w/Σw),
    n w̄_i on average: the same expectation as multinomial resampling, with less variance."""
    p, n = _normalised(weights), count("n", n)
    u = np.random.default_rng(seed).random()
    edges = np.cumsum(p)
    edges[-1] = 1.0                                     # rounding must not lose the last slice
    return np.searchsorted(edges, (np.arange(n) + u) / n, side="right").tolist()


RESAMPLERS = {"systematic": systematic_resample, "multinomial": multinomial_resample}


def particle_filter(prompt, stepper, value, particles: int = 8, threshold: float = 0.5,
                    resampling: str = "systematic", max_steps: int = 10,
                    select: str = "weighted_vote", budget=None, dedupe: bool = True, seed=None,
                    answer_fn=None):
    """Particle filtering (sequential Monte Carlo) over steps (Puri et al., 2025; §4.3).

    The target at step t is π_t(s_t) ∝ g(s_t | x) · G(s_t): the generator's distribution over
    partial solutions, tilted by the potential G = ``value`` (the PRM's P(every step so far is
    correct), say).  N = ``particles`` states are drawn from g and moved one step at a time;
    since a particle was *proposed* by g, its importance weight is the potential, updated
    incrementally from the last time t' it was resampled (where G(root) = 1):

        w_i ← w_i · G(s_t^i) / G(s_{t-1}^i),   so   w_i = G(s_t^i) / G(s_{t'}^i)

    (without resampling w_i = G(s_t^i), the weight Puri et al. use; a particle whose potential
    is 0 keeps weight 0).  After every step, ESS = (Σ_i w_i)² / Σ_i w_i²; when ESS < threshold·N
    the N particles are resampled (``resampling``: "systematic" or "multinomial", parents drawn
    with P ∝ w_i) and every weight reset to 1.  Finished particles stop moving but keep their
    weight and take part in resampling.  It stops when every particle has finished (or after
    ``max_steps``); the answer is chosen among the finished particles by ``select``:
    "weighted_vote" (answer a wins with the largest Σ_i w_i [answer_i = a], the estimate of
    π's answer distribution) or "best" (the largest value G).  ``threshold`` 0 never resamples
    (N independent samples, step by step); 1 resamples unless the weights are all equal.
    Cost (Table 5): N calls per step and N scored states, as a beam with N_b N_e = N.
    """
    count("particles", particles), count("max_steps", max_steps)
    number("threshold", threshold, 0.0, 1.0)
    if resampling not in RESAMPLERS:
        raise ValueError(f"resampling must be one of {sorted(RESAMPLERS)}, got {resampling!r}")
    if select not in SELECT:
        raise ValueError(f"select must be 'weighted_vote' or 'best', got {select!r}")
    S = Search("particle_filter", prompt, stepper, value, budget, dedupe, seed,
               {"particles": particles, "threshold": threshold, "resampling": resampling,
                "max_steps": max_steps, "select": select})
    nodes, w, base = [S.tree[0]] * particles, np.ones(particles), np.ones(particles)
    with source("particle_filter"):
        for depth in range(max_steps):
            S.it = depth
            moved = _advance(S, nodes)
            if moved is None:
                break
            nodes, w = _reweight(nodes, moved, w, base)
            if w.sum() <= 0:
                S.stopped = "no weight left"
                S.log("pf_step", nodes=[n.id for n in nodes], weights=w.tolist(), ess=0.0,
                      parents=None)
                break
            nodes, w, base = _resample(S, nodes, w, base, threshold, RESAMPLERS[resampling])
            if S.stopped or all(n.terminal for n in nodes):
                break
        else:
            S.stopped = "max_steps"
        return _pf_finish(S, nodes, w, select, answer_fn)


def _advance(S, nodes):
    """Move every unfinished particle one step (one batch; particles on the same state share
    its expansion).  Returns the new node of each particle (None: it did not move), or None when
    nothing could be generated or scored."""
    live = {}
    for i, n in enumerate(nodes):
        if not n.terminal:
            live.setdefault(n.id, []).append(i)
    if not live:
        return [None] * len(nodes)
    parents = [S.tree[k] for k in live]
    kids = S.expand(parents, [len(v) for v in live.values()])
    if kids is None or not S.score([c for group in kids for c in group]):
        return None
    moved = [None] * len(nodes)
    for owners, group in zip(live.values(), kids):
        draws = [c for c in group for _ in range(c.copies)]      # a merged twin, once per draw
        for i, c in zip(owners, draws):
            moved[i] = c
        if len(draws) < len(owners):                            # the budget shrank the batch
            S.stopped = "budget"
    return moved


def _reweight(nodes, moved, w, base):
    """w_i = G(s_t^i) / G(s_{t'}^i) for each particle that moved (0 when the ratio's parts are)."""
    w = w.copy()
    new = list(nodes)
    for i, c in enumerate(moved):
        if c is None:
            continue
        if c.value < 0:
            raise ValueError(f"value must be >= 0 to weight particles (a potential, e.g. a "
                             f"PRM's probability), got {c.value} for node {c.id}")
        new[i] = c
        w[i] = c.value / base[i] if base[i] > 0 else 0.0
    return new, w


def _resample(S, nodes, w, base, threshold, resampler):
    """ESS; below threshold·N, draw N parents with P ∝ w, reset the weights to 1 and the base
    G(s_{t'}) to each survivor's value; states no particle holds any more are pruned."""
    n = len(nodes)
    ess = effective_sample_size(w)
    parents = None
    if ess < threshold * n:
        parents = resampler(w, n, S.next_seed())
        kept = {nodes[i].id for i in parents}
        for node in {m.id: m for m in nodes}.values():
            if node.id not in kept:
                S.prune(node, "resampled away")
        nodes = [nodes[i] for i in parents]
        w = np.ones(n)
        base = np.array([m.value for m in nodes])
    S.log("pf_step", nodes=[m.id for m in nodes], weights=(w / w.sum()).tolist(), ess=ess,
          parents=parents)
    return nodes, w, base


def _pf_finish(S, nodes, w, select, answer_fn):
    from .parallel import default_answer
    answer_fn = answer_fn or default_answer
    w = w / w.sum() if w.sum() > 0 else w               # the vote is π's answer distribution
    done = [(n, wi) for n, wi in zip(nodes, w) if n.terminal]
    finished = list({n.id: n for n, _ in done}.values())
    votes = None
    if not done:
        chosen = _best([n for n in nodes if n.id]) or _fallback(S, [])
    elif select == "best":
        chosen = _best(finished)
    else:
        votes = {}
        for n, wi in done:
            a = answer_fn(S.text(n))
            if a is not None:
                votes[a] = votes.get(a, 0.0) + float(wi)
        win = max(votes, key=lambda a: votes[a]) if votes else None
        chosen = _best([n for n in finished if win is None or answer_fn(S.text(n)) == win])
    result = S.finish(chosen, finished, answer_fn,
                      {"particles": [n.id for n in nodes], "weights": w.tolist()})
    result.votes = votes
    return result


def dvts(prompt, stepper, value, width: int = 16, expansions: int = 4, max_steps: int = 10,
         select: str = "best", budget=None, dedupe: bool = True, seed=None, answer_fn=None):
    """Diverse verifier tree search, DVTS (Beeching et al., 2024; §4.3).

    The width N = ``width`` is split into K = N / M independent subtrees, M = ``expansions``:
    each is a greedy step-level search under the value (`stepwise_beam` with N_b = 1, N_e = M:
    every step, M candidates for the one state, the best by v kept) from its own first steps,
    with its own seed.  Every step therefore generates K·M = N steps, as a beam with N_b N_e =
    N, but the subtrees never compete with each other, so one state the value overrates cannot
    take the whole width (a beam's failure mode).  The answer is the best subtree's solution by
    value (``select="best"``) or the answer with the largest sum of values over the subtrees
    (``"weighted_vote"``).  With K = 1 it is ``stepwise_beam(beam_size=1, expansions=N)``.
    The result's tree joins the subtrees under one root; each subtree's events carry its own
    node ids, shifted by the ``offset`` of its ``dvts_subtree`` event.
    """
    count("width", width), count("expansions", expansions), count("max_steps", max_steps)
    if width % expansions:
        raise ValueError(f"width must be a multiple of expansions ({expansions}), got {width}")
    if select not in SELECT:
        raise ValueError(f"select must be 'weighted_vote' or 'best', got {select!r}")
    from .base import _seeds
    from .parallel import default_answer
    answer_fn = answer_fn or default_answer
    k = width // expansions
    seeds = [seed] if k == 1 else _seeds(seed, k)
    runs, trace = [], Trace()
    with trace, source("dvts"):
        for sd in seeds:
            try:
                runs.append(stepwise_beam(prompt, stepper, value, 1, expansions, max_steps,
                                          budget, dedupe, sd, answer_fn))
            except BudgetExceeded:
                if not runs:
                    raise
                break
        tree, leaves = _join([r.tree for r in runs])
        for i, (r, leaf) in enumerate(zip(runs, leaves)):
            emit("dvts_subtree", index=i, offset=leaf[1], node=leaf[0].id,
                 value=leaf[0].value, answer=r.answer)
        stopped = {r.info["stopped"] for r in runs} | ({"budget"} if len(runs) < k else set())
        stopped = next(s for s in ("budget", "max_steps", "done") if s in stopped | {"done"})
        return _dvts_result(runs, tree, [leaf for leaf, _ in leaves], select, answer_fn,
                            trace, {"width": width, "expansions": expansions,
                                    "max_steps": max_steps, "select": select}, stopped)


def _join(trees):
    """One tree with a shared root from the subtrees' trees (ids shifted); returns it and, per
    subtree, (its chosen node in the joined tree, its offset)."""
    root = replace(trees[0][0], children=[], status="expanded")
    tree, leaves = [root], []
    for sub in trees:
        off = len(tree) - 1
        shift = lambda i: 0 if i == 0 else i + off   # noqa: E731
        for n in sub[1:]:
            status = n.status if n.status != "chosen" else (
                "terminal" if n.terminal else "expanded")
            tree.append(replace(n, id=shift(n.id), parent=shift(n.parent), status=status,
                                children=[shift(c) for c in n.children]))
        root.children += [shift(c) for c in sub[0].children]
        chosen = next(i for i, n in enumerate(sub) if n.status == "chosen" and
                      not any(sub[c].status == "chosen" for c in n.children))
        leaves.append((tree[shift(chosen)], off))
    return tree, leaves


def _dvts_result(runs, tree, leaves, select, answer_fn, trace, params, stopped):
    answers = [r.answer for r in runs]
    values = [leaf.value if leaf.value is not None else -np.inf for leaf in leaves]
    pick = max(range(len(runs)), key=lambda i: (values[i], -i))
    votes = None
    if select == "weighted_vote":
        votes = {}
        for a, v in zip(answers, values):
            if a is not None:
                votes[a] = votes.get(a, 0.0) + max(float(v), 0.0)
        if votes:
            win = max(votes, key=lambda a: votes[a])
            pick = max((i for i in range(len(runs)) if answers[i] == win),
                       key=lambda i: (values[i], -i))
    node = tree[leaves[pick].id]
    while node is not None:
        node.status = "chosen"
        node = tree[node.parent] if node.parent is not None else None
    cost = sum((r.cost for r in runs[1:]), runs[0].cost)
    cands = [c for r in runs for c in r.candidates]
    scores = [s for r in runs for s in r.scores]
    text = runs[pick].text
    chosen_idx = next((i for i, c in enumerate(cands) if c.text == text), None)
    kv = [r.info["kv"] for r in runs]
    computed, naive = (sum(x["computed_tokens"] for x in kv), sum(x["naive_tokens"] for x in kv))
    info = {"method": "dvts", "params": params, "value": runs[0].info["value"],
            "stopped": stopped,
            "iterations": max(r.info["iterations"] for r in runs), "nodes": len(tree),
            "chosen_node": leaves[pick].id, "subtrees": len(runs), "rollouts": [],
            "kv": {"computed_tokens": computed, "naive_tokens": naive,
                   "ratio": computed / naive if naive else None}}
    result = SearchResult(text, cost, cands, scores, chosen_idx, answer_fn(text), info=info,
                          tree=tree, trace=trace)
    result.votes = votes
    return result
