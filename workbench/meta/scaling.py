"""Scaling curves for parallel meta-generators (survey §6.2, Figure 6).

Sampling afresh for every N is wasteful: draw one large *pool* of candidates per problem once,
then estimate each method's accuracy at budget N by drawing many random subsets of size N from
the pool (without replacement).  The same pool gives every method, so they are compared on
exactly the same samples.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .. import adapters, decoding
from .parallel import _tally, plurality


def sample_pool(lm, tasks, n: int, temperature: float, verifier=None, seed: int = 0,
                batch_rows: int = 64, answer_fn=None, progress: bool = True,
                max_new_tokens: int = 200, keep_texts: bool = False) -> list:
    """``n`` samples per task at ``temperature``: answers, correctness, verifier scores,
    log-probabilities and output lengths (everything the curves need; the texts too with
    ``keep_texts``, for scoring them with other judges later)."""
    from .parallel import default_answer
    answer_fn = answer_fn or default_answer
    per = max(1, batch_rows // n) if n <= batch_rows else 1
    pool = []
    chunks = list(range(0, len(tasks), per))
    for k, s in enumerate(tqdm(chunks, desc=f"pool T={temperature}", disable=not progress)):
        group = tasks[s:s + per]
        prompts = [t["prompt"] for t in group]
        rows = [[] for _ in group]
        for j in range(0, n, batch_rows):
            m = min(batch_rows, n - j)
            outs = decoding.sample(lm, prompts, adapters=[lambda x: adapters.temperature(
                x, temperature)], seed=seed * 1_000_003 + k * 1009 + j, n=m,
                max_new_tokens=max_new_tokens)
            for r, o in zip(rows, outs):
                r += o
        for t, gens in zip(group, rows):
            texts = [g.text for g in gens]
            scores = verifier.score([t["prompt"] + x for x in texts]) if verifier else None
            ans = [answer_fn(x) for x in texts]
            pool.append({"id": t["id"], "answer": t["answer"], "answers": ans,
                         "correct": [a == t["answer"] for a in ans],
                         "scores": scores, "logprobs": [g.logprob for g in gens],
                         "lengths": [len(g.token_ids) for g in gens],
                         **({"texts": texts} if keep_texts else {})})
    return pool


def choose(method: str, answers, scores, correct):
    """Index-free decision of one method on one subset: returns whether it is correct.  Votes
    go through `meta.plurality`, the counter every vote of the package uses: a tie goes to the
    tied answer drawn first, which in a random subset is a uniformly random tie-break."""
    if method == "oracle":                       # pass@N: some candidate is right
        return any(correct)
    if method == "vote":                         # eq. 33
        return plurality(answers) == _truth(answers, correct)
    if method == "weighted":                     # eq. 34
        return plurality(answers, scores) == _truth(answers, correct)
    if method == "best_of_n":                    # eq. 28 with the verifier
        return bool(correct[int(np.argmax(scores))])
    if method == "first":                        # a single sample (N = 1 baseline)
        return bool(correct[0])
    raise ValueError(f"method must be oracle, vote, weighted, best_of_n or first, got {method!r}")


def _truth(answers, correct):
    for a, c in zip(answers, correct):
        if c:
            return a
    return object()  # no correct answer among them: nothing can match


def curve(pool, method: str, ns, boots: int = 50, seed: int = 0) -> dict:
    """Accuracy of ``method`` at each N: mean over problems of the mean over ``boots`` random
    subsets, with the standard error over problems."""
    rng = np.random.default_rng(seed)
    means, errs = [], []
    for n in ns:
        per_problem = []
        for row in pool:
            size = len(row["answers"])
            if n > size:
                raise ValueError(f"N={n} is larger than the pool ({size} samples per problem)")
            hits = 0
            for _ in range(boots):
                idx = rng.choice(size, n, replace=False)
                pick = lambda key: [row[key][i] for i in idx] if row[key] is not None else None
                hits += choose(method, pick("answers"), pick("scores"), pick("correct"))
            per_problem.append(hits / boots)
        means.append(float(np.mean(per_problem)))
        errs.append(float(np.std(per_problem) / np.sqrt(len(per_problem))))
    return {"method": method, "n": list(ns), "accuracy": means, "stderr": errs}


def marginal_accuracy(pool, weighted: bool = False) -> float:
    """The limit N -> infinity of (weighted) voting (eq. 35): the answer maximising
    sum_z v(z, a) g(a, z | x), estimated with the whole pool, is it correct?  A tie is broken
    at random, as `curve` breaks it: a right answer that shares the top tally with k - 1 others
    counts 1/k, so this is `curve`'s expectation at N = the pool size."""
    hits = []
    for row in pool:
        w = row["scores"] if weighted else [1.0] * len(row["answers"])
        votes = _tally(row["answers"], w)
        most = max(votes.values(), default=None)
        top = [a for a, v in votes.items() if v == most]
        hits.append(top.count(row["answer"]) / len(top) if top else 0.0)
    return float(np.mean(hits))


def mass_on_correct(pool, weighted: bool) -> float:
    """Share of the (score-weighted) mass on correct answers: weighted voting beats voting when
    v * g puts more mass on them than g (Wu et al., 2024)."""
    fr = []
    for row in pool:
        w = np.array(row["scores"] if weighted else [1.0] * len(row["answers"]), float)
        fr.append(float(w[np.array(row["correct"])].sum() / max(w.sum(), 1e-12)))
    return float(np.mean(fr))
