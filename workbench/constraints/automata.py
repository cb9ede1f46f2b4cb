"""Regular expression -> Thompson NFA -> DFA over bytes (survey §3.5.1).

Regex-based constrained decoding (Outlines, Guidance, LMQL) rests on one fact: a regular
language is recognised by a finite automaton, so "which continuations are still valid?" is a
table lookup.  The classic route, written out here:

1. `thompson` builds a nondeterministic automaton (NFA) from the syntax tree of `regex.parse`:
   one small fragment per node, glued with empty (epsilon) moves.  Characters become UTF-8 byte
   ranges, so the automaton reads bytes, like byte-level BPE tokens.
2. `determinize` runs the subset construction: a DFA state is the set of NFA states reachable
   after the same input.  Bytes that no edge tells apart share one class, so each state has at
   most a few dozen distinct moves.
3. `prune` keeps only *live* states (an accepting state is still reachable): reaching a dead
   state means the output can no longer be completed, which the token mask must forbid.
4. `minimize` merges states with the same future (Moore's partition refinement), so a
   templated pattern becomes a short chain of states.

`compile_regex(pattern)` runs all four and returns a `DFA` with a (states, 256) transition
table (``-1`` = dead).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .regex import parse, utf8_sequences

MAX_NFA_STATES = 200_000
MAX_DFA_STATES = 20_000


class NFA:
    """States 0..n-1 with epsilon moves and byte-range moves ``(lo, hi, target)``."""

    def __init__(self):
        self.eps: list = []
        self.edges: list = []
        self.start = self.accept = 0

    def new(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise ValueError(f"regex is too large: more than {MAX_NFA_STATES} NFA states "
                             "(reduce the repetition counts)")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1


def thompson(tree) -> NFA:
    """Thompson's construction: one fragment (start, end) per node of the tree."""
    nfa = NFA()

    def build(node):
        kind = node[0]
        s, e = nfa.new(), nfa.new()
        if kind == "set":
            for seq in (q for lo, hi in node[1] for q in utf8_sequences(lo, hi)):
                cur = s
                for k, (blo, bhi) in enumerate(seq):
                    nxt = e if k == len(seq) - 1 else nfa.new()
                    nfa.edges[cur].append((blo, bhi, nxt))
                    cur = nxt
        elif kind == "cat":
            cur = s
            for child in node[1]:
                cs, ce = build(child)
                nfa.eps[cur].append(cs)
                cur = ce
            nfa.eps[cur].append(e)
        elif kind == "alt":
            for child in node[1]:
                cs, ce = build(child)
                nfa.eps[s].append(cs)
                nfa.eps[ce].append(e)
        else:                       # ("rep", child, m, n): m copies, then n-m optional or a loop
            _, child, m, n = node
            cur = s
            for _ in range(m):
                cs, ce = build(child)
                nfa.eps[cur].append(cs)
                cur = ce
            if n is None:
                cs, ce = build(child)
                nfa.eps[cur] += [cs, e]
                nfa.eps[ce] += [cs, e]
            else:
                for _ in range(n - m):
                    cs, ce = build(child)
                    nfa.eps[cur] += [cs, e]     # skipping the remaining copies is allowed
                    cur = ce
            nfa.eps[cur].append(e)
        return s, e

    nfa.start, nfa.accept = build(tree)
    return nfa


def byte_classes(nfa: NFA) -> np.ndarray:
    """Class id of each byte: bytes that every NFA edge treats alike share a class."""
    cuts = np.zeros(257, dtype=bool)
    for edges in nfa.edges:
        for lo, hi, _ in edges:
            cuts[lo] = cuts[hi + 1] = True
    cuts[0] = False
    return np.cumsum(cuts[:256]).astype(np.int64)


def determinize(nfa: NFA):
    """Subset construction: ``(trans (S, C), accepting (S,), class_of (256,))``, -1 = no move."""
    class_of = byte_classes(nfa)

    def closure(states):
        seen, stack = set(states), list(states)
        while stack:
            for t in nfa.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    first = closure([nfa.start])
    ids, sets, rows = {first: 0}, [first], []
    while len(rows) < len(sets):
        moves: dict = {}
        for s in sets[len(rows)]:
            for lo, hi, t in nfa.edges[s]:
                for c in range(class_of[lo], class_of[hi] + 1):
                    moves.setdefault(c, set()).add(t)
        row = {}
        for c, targets in moves.items():
            target = closure(targets)
            if target not in ids:
                if len(sets) >= MAX_DFA_STATES:
                    raise ValueError(f"regex is too large: more than {MAX_DFA_STATES} DFA states")
                ids[target] = len(sets)
                sets.append(target)
            row[c] = ids[target]
        rows.append(row)
    trans = np.full((len(sets), int(class_of[-1]) + 1), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        for c, t in row.items():
            trans[i, c] = t
    accepting = np.array([nfa.accept in s for s in sets])
    return trans, accepting, class_of


def live_states(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """States from which an accepting state can still be reached (backward search)."""
    live = accepting.copy()
    while True:
        nxt = live | (live[trans] & (trans >= 0)).any(axis=1)
        if (nxt == live).all():
            return live
        live = nxt


def minimize(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """Moore's partition refinement: block id of each state (-1 moves count as one dead block).

    Start from {accepting, not accepting}; split blocks whose states move to different blocks
    on some byte class; stop when no block splits.  States in one block have the same future.
    """
    n = len(trans)
    full = np.vstack([trans, np.full((1, trans.shape[1]), -1)])
    full[full < 0] = n                                  # an explicit dead state n
    block = np.append(accepting, False).astype(np.int64)
    count = len(np.unique(block))
    while True:
        sig = np.concatenate([block[:, None], block[full]], axis=1)
        _, block = np.unique(sig, axis=0, return_inverse=True)
        block = block.reshape(-1)
        if block.max() + 1 == count:
            return block[:n]
        count = block.max() + 1


@dataclass
class DFA:
    """A deterministic automaton over bytes whose states are all live.

    ``trans[q, b]`` is the state after byte ``b`` in state ``q`` (``-1``: the input can no
    longer be completed); ``accepting[q]`` says whether the bytes read so far match.
    """
    trans: np.ndarray
    accepting: np.ndarray
    start: int = 0
    pattern: str = ""

    @property
    def n_states(self) -> int:
        return len(self.trans)

    def step(self, state: int, data: bytes) -> int:
        """The state after reading ``data`` from ``state`` (-1 if it leaves the language)."""
        for b in data:
            if state < 0:
                break
            state = int(self.trans[state, b])
        return state

    def matches(self, text) -> bool:
        """Whether the whole of ``text`` (str or bytes) is in the language."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        q = self.step(self.start, data)
        return q >= 0 and bool(self.accepting[q])

    def __repr__(self):
        return f"DFA({self.pattern!r}, {self.n_states} states)"


def compile_regex(pattern: str, minimal: bool = True) -> DFA:
    """Parse, build the NFA, determinize, prune dead states and (by default) minimise.

    Raises ValueError for an unsupported pattern and for one that matches no string at all.
    """
    trans, accepting, class_of = determinize(thompson(parse(pattern)))
    live = live_states(trans, accepting)
    if not live[0]:
        raise ValueError(f"regex {pattern!r} matches no string (its language is empty)")
    trans = np.where((trans >= 0) & live[np.maximum(trans, 0)], trans, -1)
    block = minimize(trans, accepting) if minimal else np.arange(len(trans))
    block[~live] = -1
    # renumber the surviving blocks in breadth-first order from the start state
    order, seen = [int(block[0])], {int(block[0]): 0}
    rep = {}
    for q in range(len(trans)):
        rep.setdefault(int(block[q]), q)
    for b in order:
        for c in range(trans.shape[1]):
            t = trans[rep[b], c]
            if t >= 0 and int(block[t]) not in seen:
                seen[int(block[t])] = len(order)
                order.append(int(block[t]))
    out = np.full((len(order), trans.shape[1]), -1, dtype=np.int32)
    acc = np.zeros(len(order), dtype=bool)
    for new, b in enumerate(order):
        q = rep[b]
        acc[new] = accepting[q]
        for c in range(trans.shape[1]):
            t = trans[q, c]
            out[new, c] = seen[int(block[t])] if t >= 0 else -1
    return DFA(out[:, class_of], acc, 0, pattern)
