"""The TinyWorld training corpus: a seeded, endless mixture of documents.

Every document is plain text; the model sees ``<s> text </s>``.  Document ``i`` of a stream is a
function of ``(seed, i)`` only, so training is reproducible and resumable without storing data.
"""
from __future__ import annotations

import random
from functools import lru_cache

from . import arithmetic as ar
from .worlds import (JSON_PROMPT, expression_words, record_text, review_grammar, sample_record,
                     story_grammar)

# share of each kind of document in the corpus
MIXTURE = {"arith": 0.45, "calc": 0.07, "code": 0.05, "words": 0.03, "backward": 0.03,
           "vote": 0.03, "story": 0.14, "review": 0.12, "json": 0.08}
# training difficulty: weights over number of operations and operand digits
N_OPS = {1: 1, 2: 2, 3: 3, 4: 3, 5: 3, 6: 2}
DIGITS = {1: 1, 2: 2, 3: 2}
HELDOUT_SEED = 1234


def _pick(rng, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@lru_cache(maxsize=None)
def heldout_expressions() -> frozenset:
    """Every problem of the held-out pool (the test set is chosen from it): never trained on."""
    from .tasks import arithmetic_pool
    return frozenset(t["expression"] for t in arithmetic_pool())


def training_problem(rng: random.Random, max_ops=None) -> ar.Problem:
    """A problem from the training difficulty mix, never one of the held-out test problems."""
    while True:
        n = _pick(rng, N_OPS)
        if max_ops is not None:
            n = min(n, max_ops)
        p = ar.sample_problem(rng, n, _pick(rng, DIGITS))
        if p.expression not in heldout_expressions():
            return p


def program(problem: ar.Problem) -> str:
    """The problem as a straight-line Python program (program-aided solving, §5.2)."""
    items, lines, names = ar.tokenize_expression(problem.expression), [], iter("abcdefghijkl")
    if len(items) == 1:
        return f"print({items[0]})"
    while len(items) > 1:
        i = ar.next_reduction(items)
        var = next(names)
        lines.append(f"{var}={items[i - 1]}{items[i]}{items[i + 1]}")
        items = items[: i - 1] + [var] + items[i + 2:]
    return "\n".join(lines + [f"print({items[0]})"])


def vote_doc(rng: random.Random) -> str:
    """A list of candidate answers and its most common one (LLM-based aggregation, §4.2.2)."""
    k = rng.randint(3, 9)
    answers = [rng.randint(0, 999) for _ in range(rng.randint(1, 3))]
    while True:
        xs = [rng.choice(answers) if rng.random() < 0.7 else rng.randint(0, 999) for _ in range(k)]
        counts = {a: xs.count(a) for a in xs}
        top = max(counts.values())
        if list(counts.values()).count(top) == 1:
            winner = max(counts, key=counts.get)
            return f"Answers: {', '.join(map(str, xs))}\nMost common: {winner}"


def make_doc(kind: str, rng: random.Random) -> str:
    if kind in ("arith", "calc", "backward"):
        p = training_problem(rng)   # worked solutions take a random valid order of operations
        if kind == "backward":
            return f"Backward:\n{p.solution(rng=rng)}\nQ: {p.expression}"
        return p.prompt(calc=kind == "calc") + p.solution(calc=kind == "calc", rng=rng)
    if kind == "code":
        p = training_problem(rng)
        return f"Code: {p.expression}\n{program(p)}"
    if kind == "words":
        p = training_problem(rng, max_ops=3)
        return f"Words: {expression_words(p.expression)}\nQ: {p.expression}"
    if kind == "vote":
        return vote_doc(rng)
    if kind == "story":
        g = story_grammar()
        return g.prompt + g.sample(rng)
    if kind == "review":
        g = review_grammar()
        return g.prompt + g.sample(rng)
    if kind == "json":
        return JSON_PROMPT + record_text(sample_record(rng))
    raise ValueError(f"kind: unknown document kind {kind!r}")


def document(seed: int, i: int, mixture=None) -> str:
    """Document ``i`` of the stream with this seed."""
    rng = random.Random(seed * 1_000_003 + i)
    return make_doc(_pick(rng, mixture or MIXTURE), rng)


def documents(seed: int, start: int = 0, mixture=None):
    i = start
    while True:
        yield document(seed, i, mixture)
        i += 1
