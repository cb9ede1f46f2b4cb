"""Spending fewer tokens for the same answer (survey §6.3).

* `adaptive_vote`: adaptive consistency (Aggarwal et al. 2023) - majority voting that samples a
  few candidates at a time and stops once the majority is decided.
* `cascade`: route to an expensive generator only when a cheap one is not consistent (FrugalGPT
  style, Chen et al. 2023b; here a draft model before the target).
"""
from __future__ import annotations

from math import comb

from ..budget import Cost
from ..trace import emit, source
from .base import MetaResult, _seeds, generate, total_cost
from .parallel import _tally, _winner, default_answer


def beta_confidence(top: int, second: int) -> float:
    """P(p_top > p_second) under a uniform prior on the two answers' shares given their counts:
    P(X > 1/2) for X ~ Beta(top + 1, second + 1), exactly (a binomial tail)."""
    a, b = top + 1, second + 1
    n = a + b - 1
    return sum(comb(n, j) for j in range(a)) / 2 ** n   # I_{1/2}(a, b) = P(Bin(n, 1/2) >= a)


def adaptive_vote(prompt, generator, max_n: int = 16, batch: int = 1, stop: str = "beta",
                  confidence: float = 0.95, min_n: int = 2, answer_fn=default_answer,
                  seed=None) -> MetaResult:
    """Majority voting (eq. 32) that stops sampling early (adaptive consistency).

    Samples ``batch`` candidates at a time, up to ``max_n``.  ``stop="beta"`` stops once
    P(leader's share > runner-up's) >= ``confidence`` (Aggarwal et al.'s Beta criterion, after
    at least ``min_n`` samples); ``stop="decided"`` stops only when the leader can no longer be
    overtaken by the samples left, so the answer is always the one voting on all ``max_n``
    would give (ties go to the earlier answer, as in `majority_vote`).
    """
    if stop not in ("beta", "decided"):
        raise ValueError(f"stop must be 'beta' or 'decided', got {stop!r}")
    if max_n < 1 or batch < 1 or min_n < 1:
        raise ValueError("max_n, batch and min_n must be >= 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    cands, answers = [], []
    with source("adaptive_vote"):
        for s in _seeds(seed, -(-max_n // batch)):
            outs = generate(generator, prompt, min(batch, max_n - len(cands)), s)
            cands += outs
            answers += [answer_fn(o.text) for o in outs]
            votes = _tally(answers, [1.0] * len(answers))
            counts = sorted(votes.values(), reverse=True) + [0, 0]
            left = max_n - len(cands)
            if stop == "decided":
                done, conf = _decided(answers, votes, left), None
            else:
                conf = beta_confidence(int(counts[0]), int(counts[1]))
                done = len(cands) >= min_n and conf >= confidence
            emit("sample", n=len(cands), votes=dict(votes), confidence=conf)
            if done or left == 0:
                break
        win = _winner(votes)
        chosen = answers.index(win) if win is not None else 0
        emit("choose", index=chosen, answer=win)
    return MetaResult(cands[chosen].text if cands else "", total_cost(cands), cands, None, chosen,
                      win, dict(votes), info={"answers": answers, "samples": len(cands),
                                              "max_n": max_n, "stop": stop})


def _decided(answers, votes, left) -> bool:
    """True when no way of casting the ``left`` remaining votes changes the winner (ties go to
    the answer seen first; a new answer would be seen after all current ones)."""
    win = _winner(votes)
    if left == 0:
        return True
    if win is None or votes[win] < left:
        return False
    first = answers.index(win)
    return all(votes[win] > c + left or (votes[win] == c + left and first < answers.index(b))
               for b, c in votes.items() if b != win)


def cascade(prompt, cheap, expensive, n_cheap: int = 4, agreement: float = 0.75,
            n_expensive: int = 4, answer_fn=default_answer, seed=None) -> MetaResult:
    """A two-model cascade (§6.3): ``n_cheap`` samples of the cheap generator vote; if the
    winning answer has at least ``agreement`` of the votes, it is returned, otherwise
    ``n_expensive`` samples of the expensive generator vote and decide.  ``info`` says whether
    the query was routed and what each stage cost."""
    if not 0 < agreement <= 1:
        raise ValueError(f"agreement must be in (0, 1], got {agreement}")
    if n_cheap < 1 or n_expensive < 1:
        raise ValueError("n_cheap and n_expensive must be >= 1")
    s1, s2 = _seeds(seed, 2)
    with source("cascade"):
        small = generate(cheap, prompt, n_cheap, s1)
        answers = [answer_fn(o.text) for o in small]
        votes = _tally(answers, [1.0] * n_cheap)
        win = _winner(votes)
        share = votes[win] / n_cheap if win is not None else 0.0
        routed = share < agreement
        emit("route", share=share, routed=routed, votes=dict(votes))
        big, cost_big = [], Cost()
        if routed:
            big = generate(expensive, prompt, n_expensive, s2)
            cost_big = total_cost(big)
            answers_big = [answer_fn(o.text) for o in big]
            votes = _tally(answers_big, [1.0] * n_expensive)
            win = _winner(votes)
            pool, pool_answers = big, answers_big
        else:
            pool, pool_answers = small, answers
    chosen = pool_answers.index(win) if win is not None else 0
    return MetaResult(pool[chosen].text, total_cost(small) + cost_big, small + big, None,
                      chosen + (len(small) if routed else 0), win, dict(votes),
                      info={"routed": routed, "cheap_share": share,
                            "cheap_cost": total_cost(small), "expensive_cost": cost_big})
