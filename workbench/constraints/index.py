"""The token index: per automaton state, which tokens keep the output valid (survey §3.5.1).

The parser side of constrained decoding is a DFA over bytes (`automata.py`); the model side is a
vocabulary of multi-byte tokens.  Following Outlines (Willard & Louf, 2023), the index walks
*every token* through the DFA from *every state* once, ahead of decoding::

    next[q][v] = delta*(q, bytes(v))      kept when the state reached is live

so that at decoding time the mask of allowed tokens is a lookup, not a parse.  EOS is allowed
exactly in accepting states.  ``distance[q]`` is the fewest tokens that complete the output
from ``q``; generation uses it to refuse a ``max_new_tokens`` too small to finish, and to keep
every sample completable within its budget.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
import torch

from .automata import DFA, compile_regex
from .vocab import vocabulary

INF = np.iinfo(np.int64).max // 2


def _tokenizer(lm_or_tokenizer):
    return getattr(lm_or_tokenizer, "tokenizer", lm_or_tokenizer)


class TokenIndex:
    """Allowed tokens and successor states for every state of a DFA, over one tokenizer.

    ``allowed(q)`` are the token ids (EOS included in accepting states), ``next_state(q, v)``
    the state after token ``v``, ``mask(q)`` a boolean tensor over the model's logits.
    """

    def __init__(self, dfa: DFA, tokenizer, vocab_size: int | None = None, schema=None):
        t0 = time.perf_counter()
        self.dfa, self.pattern, self.schema = dfa, dfa.pattern, schema
        self.tokenizer = tokenizer
        self.vocab = vocabulary(tokenizer)
        self.eos = self.vocab.eos
        self.vocab_size = max(vocab_size or 0, self.vocab.size)
        ids, ends = self._walk()
        self.distance = self._distances(ends)
        keep = [self.distance[e] < INF for e in ends]   # the state reached can still finish
        self._ids = [i[k] for i, k in zip(ids, keep)]
        self._next = [e[k] for e, k in zip(ends, keep)]
        self._lookup = [dict(zip(ids.tolist(), nxt.tolist()))
                        for ids, nxt in zip(self._ids, self._next)]
        self._masks: dict = {}
        self.build_seconds = time.perf_counter() - t0
        if self.distance[dfa.start] >= INF:
            raise ValueError(f"no token sequence of this tokenizer spells a string matching "
                             f"{self.pattern!r}")

    def _walk(self):
        """Run every token through the DFA from every state, all tokens at once (numpy).

        Returns, per state, the ids of the tokens that stay in a live state and those states.
        """
        n, V = self.dfa.n_states, self.vocab.size
        dead = n
        trans = np.vstack([self.dfa.trans, np.full((1, 256), -1)]).astype(np.int64)
        trans[trans < 0] = dead
        M, L = self.vocab.matrix, self.vocab.lengths
        ids, ends = [], []
        chunk = max(1, 2_000_000 // max(V, 1))
        for s in range(0, n, chunk):
            cur = np.repeat(np.arange(s, min(n, s + chunk))[:, None], V, axis=1)
            for j in range(M.shape[1]):
                cur = np.where(j < L, trans[cur, M[:, j]], cur)
            cur[:, L == 0] = dead                  # special tokens spell no text
            for row in cur:
                ok = np.nonzero(row != dead)[0]
                ids.append(ok)
                ends.append(row[ok])
        return ids, ends

    def _distances(self, ends: list) -> np.ndarray:
        """Fewest tokens from each state to an accepting one (breadth-first, backwards)."""
        n = self.dfa.n_states
        preds = [set() for _ in range(n)]
        for q in range(n):
            for t in np.unique(ends[q]).tolist():
                preds[t].add(q)
        dist = np.full(n, INF, dtype=np.int64)
        queue = deque(np.nonzero(self.dfa.accepting)[0].tolist())
        dist[list(queue)] = 0
        while queue:
            t = queue.popleft()
            for q in preds[t]:
                if dist[q] == INF:
                    dist[q] = dist[t] + 1
                    queue.append(q)
        return dist

    # -- lookups used while decoding ---------------------------------------------------------
    @property
    def start(self) -> int:
        return self.dfa.start

    @property
    def n_states(self) -> int:
        return self.dfa.n_states

    def is_accepting(self, state: int) -> bool:
        return bool(self.dfa.accepting[state])

    def allowed(self, state: int, eos: bool = True) -> np.ndarray:
        """Token ids allowed in ``state`` (sorted; EOS appended when ``state`` accepts)."""
        ids = self._ids[state]
        if eos and self.is_accepting(state) and self.eos is not None:
            ids = np.union1d(ids, [self.eos])
        return ids

    def successors(self, state: int):
        """``(token ids, next states)`` of the text tokens allowed in ``state`` (no EOS)."""
        return self._ids[state], self._next[state]

    def next_state(self, state: int, token: int) -> int:
        """The state after ``token``; EOS keeps an accepting state.  ValueError if not allowed."""
        token = int(token)
        if token == self.eos and self.is_accepting(state):
            return state
        nxt = self._lookup[state].get(token)
        if nxt is None:
            raise ValueError(f"token {token} ({self.vocab.tokens[token]!r}) is not allowed in "
                             f"state {state} of {self.pattern!r}")
        return nxt

    def mask(self, state: int, width: int | None = None, device=None) -> torch.Tensor:
        """Boolean mask over ``width`` logits (default: the vocabulary), True where allowed."""
        width = width or self.vocab_size
        key = (state, width, str(device))
        m = self._masks.get(key)
        if m is None:
            m = torch.zeros(width, dtype=torch.bool)
            m[torch.as_tensor(self.allowed(state), dtype=torch.long)] = True
            m = self._masks[key] = m.to(device) if device is not None else m
        return m

    def matches(self, text) -> bool:
        return self.dfa.matches(text)

    def __repr__(self):
        return (f"TokenIndex({self.pattern[:60]!r}, {self.n_states} states, "
                f"{sum(len(i) for i in self._ids)} transitions)")


def mask_logits(logits: torch.Tensor, index: TokenIndex, state: int) -> torch.Tensor:
    """Logits with -inf outside the tokens allowed in ``state`` (a (V,) or (1, V) tensor)."""
    m = index.mask(state, logits.shape[-1], logits.device)
    return logits.masked_fill(~m, float("-inf"))


def regex_constraint(pattern: str, lm_or_tokenizer, minimal: bool = True) -> TokenIndex:
    """Compile ``pattern`` to a DFA and index it over the model's (or tokenizer's) vocabulary."""
    tok = _tokenizer(lm_or_tokenizer)
    width = getattr(lm_or_tokenizer, "vocab_size", None) if tok is not lm_or_tokenizer else None
    t0 = time.perf_counter()
    dfa = compile_regex(pattern, minimal=minimal)
    dfa_seconds = time.perf_counter() - t0
    index = TokenIndex(dfa, tok, width)
    index.dfa_seconds = dfa_seconds
    return index


def json_constraint(schema: dict, lm_or_tokenizer) -> TokenIndex:
    """A `TokenIndex` for JSON following ``schema`` (see `json_schema.schema_to_regex`)."""
    from .json_schema import schema_to_regex
    index = regex_constraint(schema_to_regex(schema), lm_or_tokenizer)
    index.schema = schema
    return index
