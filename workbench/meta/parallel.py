"""Parallel meta-generators (survey §4.2): generate N candidates, then rerank or transform.

Every function takes the prompt x, a generator g (anything with ``generate(prompt, n, seed)``,
see `workbench.meta.base`) and its own parameters phi, and returns a `MetaResult` whose cost is
the sum of the candidates' costs plus what scorers and aggregators spent (Table 5).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ..trace import active, emit, source
from ..budget import BudgetExceeded, Cost
from .base import MetaResult, _seeds, generate, total_cost


def default_answer(text: str):
    """The voting function c(y) for TinyWorld's arithmetic: the integer after the last ``A:``
    (else after "answer is", for few-shot prompted Hub models; `workbench.prompts`), None when
    there is none.  For any other task pass its reader, ``answer_fn=task.extract``
    (`workbench.tasks`: GSM8K's ``#### 1,200``, MATH's ``\\boxed{}``, code, ...)."""
    from ..prompts import extract_answer
    return extract_answer(text)


def _emit_candidates(cands, answers=None, scores=None):
    if active():
        for i, c in enumerate(cands):
            emit("candidate", index=i, text=c.text,
                    answer=None if answers is None else answers[i],
                    score=None if scores is None else scores[i])


def best_of_n(prompt, generator, scorer, n: int, seed=None) -> MetaResult:
    """Best-of-N (Definition 5, eq. 28): argmax_{y^(n) ~ g} v(y^(n)).

    ``scorer(prompt, outputs) -> (scores, cost)`` (see `workbench.scoring`).  Ties go to the
    earliest candidate.
    """
    with source("best_of_n"):
        cands = generate(generator, prompt, n, seed)
        scores, s_cost = scorer(prompt, cands)
        best = int(np.argmax(scores))
        _emit_candidates(cands, scores=scores)
        emit("choose", index=best, score=scores[best])
    return MetaResult(cands[best].text, total_cost(cands) + s_cost, cands, list(scores), best,
                      logprob=getattr(cands[best], "logprob", None))


def _tally(answers, weights):
    """Summed weight per answer in order of first appearance (None answers do not vote)."""
    votes = OrderedDict()
    for a, w in zip(answers, weights):
        if a is not None:
            votes[a] = votes.get(a, 0.0) + w
    return votes


def _winner(votes):
    return max(votes, key=lambda a: votes[a]) if votes else None  # first max: earliest answer


def _vote_result(cands, answers, votes, scores, extra_cost, name):
    win = _winner(votes)
    chosen = answers.index(win) if win is not None else 0
    if active():
        _emit_candidates(cands, answers, scores)
        for a, v in votes.items():
            emit("vote", answer=a, weight=v, winner=a == win)
        emit("choose", index=chosen, answer=win)
    return MetaResult(cands[chosen].text if cands else "", total_cost(cands) + extra_cost, cands,
                      scores, chosen, win, dict(votes), info={"answers": answers, "method": name})


def majority_vote(prompt, generator, n: int, answer_fn=default_answer, seed=None) -> MetaResult:
    """Majority voting / self-consistency (eqs. 32-33): the most frequent answer c(y^(i)).

    Ties go to the answer that appeared first; candidates without an answer do not vote.
    """
    with source("majority_vote"):
        cands = generate(generator, prompt, n, seed)
        answers = [answer_fn(c.text) for c in cands]
        return _vote_result(cands, answers, _tally(answers, [1.0] * n), None, Cost(),
                            "majority_vote")


def weighted_vote(prompt, generator, scorer, n: int, answer_fn=default_answer,
                  seed=None) -> MetaResult:
    """Weighted majority voting (eq. 34): argmax_a sum_i v(y^(i)) 1[c(y^(i)) = a]."""
    with source("weighted_vote"):
        cands = generate(generator, prompt, n, seed)
        scores, s_cost = scorer(prompt, cands)
        answers = [answer_fn(c.text) for c in cands]
        return _vote_result(cands, answers, _tally(answers, scores), list(scores), s_cost,
                            "weighted_vote")


def self_consistency(prompt, generator, n: int, answer_fn=default_answer, seed=None,
                     weighting: str = "count") -> MetaResult:
    """Self-consistency (Wang et al. 2023): the answer of highest marginal probability,
    sum_z g(z, a | x), estimated from N sampled paths.

    ``weighting="count"`` counts samples (a Monte Carlo estimate of the marginal; this is
    majority voting); ``"probability"`` sums p(z, a | x) over the *distinct* paths sampled;
    ``"normalized"`` weights every sample by the model's confidence in it, the geometric mean
    of its token probabilities, c_i = exp((1/|y_i|) sum_t log p(y_t | y_<t, x)) (Wang et al.'s
    "normalized weighted sum"; confidence-weighted voting).
    """
    if weighting == "count":
        return majority_vote(prompt, generator, n, answer_fn, seed)
    if weighting not in ("probability", "normalized"):
        raise ValueError("weighting must be 'count', 'probability' or 'normalized', got "
                         f"{weighting!r}")
    with source("self_consistency"):
        cands = generate(generator, prompt, n, seed)
        if any(getattr(c, "logprob", None) is None for c in cands):
            raise ValueError(f"weighting={weighting!r} needs generators that return log-probs")
        answers = [answer_fn(c.text) for c in cands]
        weights = (_distinct_probability(cands) if weighting == "probability"
                   else [sample_confidence(c) for c in cands])
        return _vote_result(cands, answers, _tally(answers, weights), weights, Cost(),
                            "self_consistency")


def _distinct_probability(cands) -> list:
    """p(y | x) for the first sample of each distinct text, 0 for its repeats."""
    seen, weights = set(), []
    for c in cands:
        weights.append(0.0 if c.text in seen else math.exp(c.logprob))
        seen.add(c.text)
    return weights


def sample_confidence(candidate) -> float:
    """The model's confidence in one sample: exp of its mean token log-probability, the
    geometric mean of p(y_t | y_<t, x) over its tokens, the end token included when ``logprob``
    counts it (in (0, 1])."""
    n = (len(getattr(candidate, "token_ids", None) or []) or candidate.cost.output_tokens) + \
        (getattr(candidate, "end_logprob", None) is not None)
    if n <= 0:
        raise ValueError("confidence needs the sample's token count (token_ids or "
                         "cost.output_tokens); the generator reported none")
    return math.exp(candidate.logprob / n)


# -- minimum Bayes risk --------------------------------------------------------------------

def answer_match(answer_fn=default_answer):
    """u(y, y') = 1[c(y) = c(y')]: MBR with this utility is majority voting (eq. 38)."""
    def u(e, h):
        a = answer_fn(h.text)
        return float(a is not None and answer_fn(e.text) == a)
    return u


def overlap_f1(e, h) -> float:
    """u(y, y') = unigram F1 between the two texts (a simple similarity for free text)."""
    a, b = e.text.split(), h.text.split()
    if not a or not b:
        return float(a == b)
    common = sum(min(a.count(w), b.count(w)) for w in set(a))
    if common == 0:
        return 0.0
    p, r = common / len(b), common / len(a)
    return 2 * p * r / (p + r)


def mbr(prompt, generator, utility, n: int, evidence=None, n_evidence: int | None = None,
        weight_scorer=None, seed=None) -> MetaResult:
    """Minimum Bayes risk (eqs. 36-37): argmax_{y' in Y_h} sum_{y in Y_e} w(y) u(y, y').

    The hypothesis set Y_h holds ``n`` outputs of ``generator``; the evidence set Y_e is Y_h
    itself (``evidence=None``) or ``n_evidence`` outputs of the generator ``evidence``.
    ``weight_scorer`` weighs the evidence by v(y) (uniform otherwise).  With
    ``utility=answer_match()`` this is majority voting, and with ``weight_scorer=v`` it is
    weighted voting exactly - eq. 38 with the weight on the evidence y.
    """
    s_h, s_e = _seeds(seed, 2)
    with source("mbr"):
        hyps = generate(generator, prompt, n, s_h)
        evid = hyps if evidence is None else generate(evidence, prompt, n_evidence or n, s_e)
        cost = total_cost(hyps) + (Cost() if evidence is None else total_cost(evid))
        w = [1.0] * len(evid)
        if weight_scorer is not None:
            w, s_cost = weight_scorer(prompt, evid)
            cost = cost + s_cost
        z = sum(w) or 1.0
        risk = [sum(wi * utility(e, h) for wi, e in zip(w, evid)) / z for h in hyps]
        best = int(np.argmax(risk))
        _emit_candidates(hyps, scores=risk)
        emit("choose", index=best, score=risk[best])
    return MetaResult(hyps[best].text, cost, hyps, risk, best,
                      info={"evidence": evid, "evidence_weights": w})


def noisy_channel(prompt, generator, n: int, channel, prior, lambda_channel: float = 1.0,
                  lambda_prior: float = 1.0, seed=None) -> MetaResult:
    """Noisy-channel reranking (eq. 31):
    s(y) = log p(y | x) + lambda_1 log p(x | y) + lambda_2 log p(y).

    ``channel(prompt, output) -> (log p(x | y), cost)`` and ``prior(output) -> (log p(y),
    cost)``; the direct model's log p(y | x) is the candidates' own log-probability.
    """
    with source("noisy_channel"):
        cands = generate(generator, prompt, n, seed)
        cost, scores, parts = total_cost(cands), [], []
        for c in cands:
            if getattr(c, "logprob", None) is None:
                raise ValueError("noisy_channel needs candidates with log-probabilities")
            ch, c1 = channel(prompt, c)
            pr, c2 = prior(c)
            cost = cost + c1 + c2
            parts.append({"direct": c.logprob, "channel": ch, "prior": pr})
            scores.append(c.logprob + lambda_channel * ch + lambda_prior * pr)
        best = int(np.argmax(scores))
        _emit_candidates(cands, scores=scores)
        emit("choose", index=best, score=scores[best])
    return MetaResult(cands[best].text, cost, cands, scores, best, info={"parts": parts})


# -- sampling from a target distribution (§4.2.3) ------------------------------------------

def rejection_sample(prompt, proposal, log_target, log_M: float, num_samples: int = 1,
                     max_proposals: int = 1000, batch: int = 16, seed=None) -> MetaResult:
    """Sequence-level rejection sampling (Figure 5): draw y ~ g, accept with probability
    q~(y) / (M g(y)), where q~ is the unnormalised target and M g(y) >= q~(y) for all y.

    ``log_target(prompt, output)`` gives log q~(y) (``-inf`` to reject outright); log g(y) is
    ``output.proposal_logprob``, the probability of y under the distribution the proposal
    actually sampled (adapters such as a temperature included; ``output.logprob`` is p_theta's,
    which is g only for plain sampling).  Accepted samples are exact draws from q* = q~/Z, and
    the expected acceptance rate is Z / M.  Raises ``ValueError`` if a proposal violates the
    bound, and `BudgetExceeded` if ``num_samples`` are not accepted within ``max_proposals``.
    """
    if num_samples < 1 or max_proposals < 1:
        raise ValueError("num_samples and max_proposals must be >= 1")
    s_prop, s_u = _seeds(seed, 2)
    batch_seeds = iter(_seeds(s_prop, -(-max_proposals // batch)))
    u_rng = np.random.default_rng(s_u)
    accepted, proposals, cost = [], 0, Cost()
    with source("rejection_sample"):
        while len(accepted) < num_samples:
            if proposals >= max_proposals:
                raise BudgetExceeded(
                    f"only {len(accepted)} of {num_samples} samples accepted in {proposals} "
                    f"proposals (max_proposals={max_proposals})")
            m = min(batch, max_proposals - proposals)
            outs = generate(proposal, prompt, m, next(batch_seeds))
            cost = cost + total_cost(outs)
            for o in outs:
                proposals += 1
                log_g = proposal_logprob(o, "rejection_sample")
                lt = log_target(prompt, o)
                log_ratio = lt - log_M - log_g
                if log_ratio > 1e-6:
                    raise ValueError(f"the bound is violated: q~(y)/g(y) = "
                                     f"{math.exp(lt - log_g):.4g} > M = {math.exp(log_M):.4g}")
                u = float(u_rng.random())
                ok = math.log(u) < log_ratio if lt > -math.inf else False
                emit("propose_accept" if ok else "propose_reject", text=o.text, log_ratio=log_ratio,
                     u=u)
                if ok:
                    accepted.append(o)
                    if len(accepted) == num_samples:
                        break
    return MetaResult(accepted[0].text, cost, accepted, None, 0,
                      info={"proposals": proposals, "accepted": len(accepted),
                            "acceptance_rate": len(accepted) / proposals})


def proposal_logprob(output, who: str) -> float:
    """log g(y | x) of a proposal's output: its ``.proposal_logprob``, the probability under the
    distribution actually sampled (`decoding.Generation.proposal_logprob`, or what a black-box
    `TextGenerator` returned)."""
    lg = getattr(output, "proposal_logprob", None)
    if lg is None:
        raise ValueError(f"{who} needs log g(y): the proposal's outputs must carry "
                         ".proposal_logprob (a server's .logprob is p_theta's, not g's)")
    return lg


def filter_target(predicate):
    """log q~(y) = log g(y) if predicate(y) else -inf: q* is g restricted to a set (eq. 17);
    with M = 1 rejection sampling keeps exactly the outputs that pass."""
    return lambda prompt, o: (proposal_logprob(o, "filter_target") if predicate(o.text)
                              else -math.inf)


def importance_resample(prompt, generator, log_weight, k: int, seed=None,
                        temperature: float = 1.0) -> MetaResult:
    """Pseudo-rejection sampling / sampling-importance-resampling (§4.2.3): draw k candidates
    from g, then pick one with probability proportional to exp(log_weight(y) / temperature).

    With ``log_weight = log q~(y) - log g(y)`` (log g(y) is ``candidate.proposal_logprob``,
    see `proposal_weight`) this approaches exact sampling from q* as k -> infinity; with ``log_weight = v(y)`` it samples from the value function's softmax.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    s_gen, s_pick = _seeds(seed, 2)
    with source("importance_resample"):
        cands = generate(generator, prompt, k, s_gen)
        lw = np.array([log_weight(prompt, c) for c in cands], float) / temperature
        if not np.isfinite(lw).any():
            raise ValueError("every candidate has weight 0 (log_weight = -inf)")
        p = np.exp(lw - lw[np.isfinite(lw)].max())
        p = np.where(np.isfinite(lw), p, 0.0)
        p /= p.sum()
        pick = int(np.random.default_rng(s_pick).choice(len(cands), p=p))
        _emit_candidates(cands, scores=p.tolist())
        emit("choose", index=pick, score=float(p[pick]))
    return MetaResult(cands[pick].text, total_cost(cands), cands, p.tolist(), pick)


def proposal_weight(log_target):
    """The importance weight log w(y) = log q~(y) - log g(y) for `importance_resample`, with
    log g(y) the candidate's own proposal log-probability (adapters included)."""
    return lambda prompt, o: log_target(prompt, o) - proposal_logprob(o, "proposal_weight")


# -- the best-of-N policy (eq. 39) ---------------------------------------------------------

def bon_policy(probs, rewards, n: int) -> np.ndarray:
    """Exact distribution of best-of-N over a finite output space.

    pi(y) = F(r(y))^N - F(r(y)^-)^N split over outputs of equal reward in proportion to p,
    where F is the reward CDF under p (the best of N independent draws).
    """
    p = np.asarray(probs, float)
    r = np.asarray(rewards, float)
    if p.ndim != 1 or p.shape != r.shape or (p < 0).any() or not np.isclose(p.sum(), 1):
        raise ValueError("probs must be a probability vector with one reward per entry")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pi = np.zeros_like(p)
    levels = np.unique(r)
    below = 0.0
    for lv in levels:
        group = r == lv
        mass = p[group].sum()
        share = (below + mass) ** n - below ** n
        if mass > 0:
            pi[group] = share * p[group] / mass
        below += mass
    return pi


def kl_divergence(p, q) -> float:
    """KL(p || q) = sum p log(p / q) (0 log 0 = 0)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = p > 0
    if (q[m] <= 0).any():
        return math.inf
    return float(np.sum(p[m] * (np.log(p[m]) - np.log(q[m]))))


def bon_kl_bound(n: int) -> float:
    """The analytical KL(pi_BoN || p) ~ log N - (N - 1)/N (an upper bound, Beirami et al.)."""
    return math.log(n) - (n - 1) / n



def plurality(answers, weights=None):
    """The vote of eqs. 33-34 on answers alone: the answer with the largest summed weight (1 each
    by default), ties to the answer seen first, None answers not voting (None if none votes).
    The one counter behind `majority_vote`, `weighted_vote`, `adaptive_vote` and the evaluations."""
    return _winner(_tally(answers, [1.0] * len(answers) if weights is None else weights))
