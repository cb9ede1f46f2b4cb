"""A probabilistic grammar whose true distribution p* is known exactly.

The grammar is a *deterministic probabilistic finite automaton* (a right-linear PCFG): from each
state it emits one *piece* (a word with its leading space, or a punctuation mark) with a given
probability and moves to the next state, or stops.  So for any text

    p*(y) = prod_t P(piece_t | state_t) * P(stop | state_T),

and, because the pieces are exactly the tokenizer's pre-tokens, the canonical token sequence of a
text is the concatenation of the pieces' token sequences.  `TokenGrammar` uses that to give the
exact next-token distribution p*(. | y_<t) in token space, the quantity a language model p_theta
approximates (survey §2.2), for any token prefix.  Non-canonical token prefixes have p* = 0.
"""
from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

STOP = None  # the "piece" that ends a text


@dataclass
class Grammar:
    """States map to lists of ``(piece, next_state, weight)``; ``piece=None`` means stop."""
    name: str
    prompt: str
    start: str
    rules: dict = field(default_factory=dict)

    def add(self, state: str, alternatives):
        total = sum(w for _, _, w in alternatives)
        pieces = [p for p, _, _ in alternatives]
        if len(set(pieces)) != len(pieces):
            raise ValueError(f"state {state!r}: a piece appears twice (not deterministic)")
        self.rules[state] = [(p, n, w / total) for p, n, w in alternatives]

    def validate(self):
        for s, alts in self.rules.items():
            for p, n, _ in alts:
                if p is not STOP and n not in self.rules:
                    raise ValueError(f"state {s!r} leads to unknown state {n!r}")

    # -- sampling and exact probabilities -------------------------------------------------
    def sample(self, rng: random.Random) -> str:
        """One text (without the prompt), drawn from p*."""
        state, out = self.start, []
        while True:
            alts = self.rules[state]
            p, nxt, _ = rng.choices(alts, weights=[w for _, _, w in alts])[0]
            if p is STOP:
                return "".join(out)
            out.append(p)
            state = nxt

    def parse(self, text: str):
        """All ``(pieces, log p*)`` derivations of ``text`` (one for this deterministic grammar)."""
        results = []

        def walk(state, pos, pieces, lp):
            for p, nxt, w in self.rules[state]:
                if p is STOP:
                    if pos == len(text):
                        results.append((list(pieces), lp + math.log(w)))
                elif text.startswith(p, pos):
                    walk(nxt, pos + len(p), pieces + [p], lp + math.log(w))

        walk(self.start, 0, [], 0.0)
        return results

    def log_p_star(self, text: str) -> float:
        """log p*(text); ``-inf`` for texts the grammar cannot produce."""
        parses = self.parse(text)
        if not parses:
            return -math.inf
        return float(np.logaddexp.reduce([lp for _, lp in parses]))

    def p_star(self, text: str) -> float:
        return math.exp(self.log_p_star(text))

    def mode(self):
        """The single most probable text and its log-probability (Dijkstra on -log p)."""
        heap = [(0.0, 0, self.start, ())]
        seen, tie = set(), 1
        while heap:
            cost, _, state, pieces = heapq.heappop(heap)
            if state is STOP:
                return "".join(pieces), -cost
            if state in seen:
                continue
            seen.add(state)
            for p, nxt, w in self.rules[state]:
                tie += 1
                if p is STOP:
                    heapq.heappush(heap, (cost - math.log(w), tie, STOP, pieces))
                else:
                    heapq.heappush(heap, (cost - math.log(w), tie, nxt, pieces + (p,)))
        raise RuntimeError("grammar produces no text")  # pragma: no cover

    def _expect(self, reward, through) -> float:
        """Solve h(s) = sum_a P(a|s) [reward(a, P(a|s)) + through(a) h(next(a))] at the start:
        the expected total reward of a text, for rewards collected piece by piece."""
        states = list(self.rules)
        idx = {s: i for i, s in enumerate(states)}
        A = np.eye(len(states))
        b = np.zeros(len(states))
        for s, alts in self.rules.items():
            for p, nxt, w in alts:
                b[idx[s]] += w * reward(p, w)
                if p is not STOP and through(p):
                    A[idx[s], idx[nxt]] -= w
        return float(np.linalg.solve(A, b)[idx[self.start]])

    def entropy(self) -> float:
        """Exact entropy H(p*) in nats: the expected sum of -log P(a | s) along a text."""
        return self._expect(lambda p, w: -math.log(w), lambda p: True)

    def prob_contains(self, piece: str) -> float:
        """Exact P*(a text contains ``piece``): reward 1 on reaching it, then stop counting."""
        return self._expect(lambda p, w: float(p == piece), lambda p: p != piece)

    def expected_length(self) -> float:
        """Expected number of pieces of a text under p*."""
        return self._expect(lambda p, w: float(p is not STOP), lambda p: True)


class TokenGrammar:
    """The grammar seen through a tokenizer: exact p* over canonical token sequences.

    A hypothesis is ``(state, partial)``: the automaton is in ``state`` and ``partial`` holds the
    tokens already read of the current piece (a strict prefix of that piece's tokens).  Because
    one piece's tokens can be a prefix of another's (`` cat`` / `` cat`` + ``s``), a token prefix
    can leave several hypotheses alive; each carries the probability of the pieces completed so far.
    """

    def __init__(self, grammar: Grammar, tokenizer):
        self.grammar, self.tok = grammar, tokenizer
        self.eos = tokenizer.eos_token_id
        self.bos = tokenizer.bos_token_id
        self.prompt_ids = tuple(tokenizer.encode(grammar.prompt, add_special_tokens=False))
        self.pieces = {}
        for alts in grammar.rules.values():
            for p, _, _ in alts:
                if p is not STOP and p not in self.pieces:
                    self.pieces[p] = tuple(tokenizer.encode(p, add_special_tokens=False))

    def _strip(self, ids):
        ids = list(ids)
        if ids and ids[0] == self.bos:
            ids = ids[1:]
        n = len(self.prompt_ids)
        if tuple(ids[:n]) != self.prompt_ids:
            raise ValueError(f"ids must start with the tokens of the prompt {self.grammar.prompt!r}")
        return ids[n:]

    def _advance(self, hyps, t):
        out = defaultdict(float)
        for (state, partial), w in hyps.items():
            k = len(partial)
            for p, nxt, pw in self.grammar.rules[state]:
                if p is STOP:
                    continue
                toks = self.pieces[p]
                if toks[:k] != partial or len(toks) <= k or toks[k] != t:
                    continue
                if len(toks) == k + 1:
                    out[(nxt, ())] += w * pw
                else:
                    out[(state, partial + (t,))] = w  # same weight for all pieces sharing it
        return dict(out)

    def _mass(self, state, partial, w):
        k = len(partial)
        return w * sum(pw for p, _, pw in self.grammar.rules[state]
                       if (p is STOP and k == 0) or (p is not STOP and self.pieces[p][:k] == partial
                                                     and len(self.pieces[p]) > k))

    def hypotheses(self, ids, has_prompt=True):
        body = self._strip(ids) if has_prompt else list(ids)
        hyps = {(self.grammar.start, ()): 1.0}
        for t in body:
            if t == self.eos:
                raise ValueError("ids continue after the end-of-sequence token")
            hyps = self._advance(hyps, t)
            if not hyps:
                break
        return hyps

    def prefix_probability(self, ids, has_prompt=True) -> float:
        """p*(some canonical text starts with these tokens)."""
        return sum(self._mass(s, pa, w) for (s, pa), w in self.hypotheses(ids, has_prompt).items())

    def next_token_distribution(self, ids, has_prompt=True) -> dict:
        """Exact p*(next token | ids) as ``{token_id: prob}`` (EOS stands for the end)."""
        dist = defaultdict(float)
        for (state, partial), w in self.hypotheses(ids, has_prompt).items():
            k = len(partial)
            for p, _, pw in self.grammar.rules[state]:
                if p is STOP:
                    if k == 0:
                        dist[self.eos] += w * pw
                else:
                    toks = self.pieces[p]
                    if toks[:k] == partial and len(toks) > k:
                        dist[toks[k]] += w * pw
        z = sum(dist.values())
        if z <= 0:
            raise ValueError("p* of this token prefix is 0 (not a canonical prefix of the grammar)")
        return {t: v / z for t, v in dist.items()}

    def next_token_vector(self, ids, vocab_size, has_prompt=True) -> np.ndarray:
        vec = np.zeros(vocab_size)
        for t, p in self.next_token_distribution(ids, has_prompt).items():
            vec[t] = p
        return vec

    def log_p_star_tokens(self, ids, has_prompt=True) -> float:
        """log p* of a complete token sequence ending with EOS (``-inf`` if non-canonical)."""
        ids = list(ids)
        if not ids or ids[-1] != self.eos:
            raise ValueError("ids must end with the end-of-sequence token")
        hyps = self.hypotheses(ids[:-1], has_prompt)
        total = 0.0
        for (state, partial), w in hyps.items():
            if partial == ():
                total += w * sum(pw for p, _, pw in self.grammar.rules[state] if p is STOP)
        return math.log(total) if total > 0 else -math.inf
