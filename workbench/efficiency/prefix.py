"""Batching and prefix sharing (survey §7: speeding up meta-generation).

Meta-generators call the generator many times on prompts that share long prefixes: N samples of
one prompt, few-shot prompts with a common header, children of a search-tree node that extend
their parent's text.  `PrefixCache` stores the keys and values computed for every token prefix
in a radix tree (as SGLang's RadixAttention, Zheng et al. 2024) and serves the longest stored
prefix of a new prompt, so only the rest is computed.  `throughput` measures how batching turns
memory-bound decoding steps into more tokens per second.
"""
from __future__ import annotations

import itertools
import time

import torch

from ..decoding import choose_sample, decode
from ..models import DecodeState, LanguageModel, cache_tensors
from ..rng import make_generator
from ..trace import active, emit, source
from .kv import _seconds, new_cache


def make_cache(pairs, lm: LanguageModel | None = None):
    """A cache (``lm``'s kind, else a DynamicCache) holding ``[(keys, values), ...]`` per layer."""
    from transformers import DynamicCache
    cache = new_cache(lm) if lm is not None else DynamicCache()
    for i, (k, v) in enumerate(pairs):
        cache.update(k, v, i)
    return cache


def layer_pairs(cache) -> list:
    """``[(keys, values), ...]`` per layer of a transformers cache."""
    t = cache_tensors(cache)
    n = len(t) // 2
    if hasattr(cache, "layers"):
        return [(t[2 * i], t[2 * i + 1]) for i in range(n)]
    return list(zip(t[:n], t[n:]))


_SERIALS = itertools.count()


class _Node:
    __slots__ = ("tokens", "kv", "children", "parent", "used")

    def __init__(self, tokens=(), kv=None, parent=None):
        self.tokens, self.kv, self.parent = tuple(tokens), kv, parent
        self.children, self.used = {}, 0

    def split(self, at: int) -> "_Node":
        """Cut this edge after ``at`` tokens; returns the new upper node."""
        upper = _Node(self.tokens[:at], [(k[:, :, :at], v[:, :, :at]) for k, v in self.kv],
                      self.parent)
        upper.used = self.used
        self.parent.children[self.tokens[0]] = upper
        self.tokens = self.tokens[at:]
        self.kv = [(k[:, :, at:], v[:, :, at:]) for k, v in self.kv]
        self.parent = upper
        upper.children[self.tokens[0]] = self
        return upper


class PrefixCache:
    """Computed KV states keyed by token prefix, in a radix tree, reused across calls.

    ``prefill(prompts, n)`` is `LanguageModel.prefill` that first looks up the longest stored
    prefix of each prompt and computes only the remaining tokens; ``insert_state(state)`` stores
    what a decoding loop computed (e.g. a search-tree node's text), so its children hit it.
    ``max_tokens`` bounds the stored positions (least recently used leaves are evicted).
    Statistics: ``requested_tokens`` (prompt tokens asked for), ``reused_tokens`` (served from the
    tree), ``computed_tokens`` (counted by the model), ``hit_rate`` and ``tokens_saved``.
    """

    def __init__(self, lm: LanguageModel, max_tokens: int | None = None):
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens}")
        self.lm, self.max_tokens = lm, max_tokens
        self.root = _Node()
        self.stored_tokens = 0
        self.lookups = self.hits = 0
        self.requested_tokens = self.reused_tokens = self.computed_tokens = 0
        self._tick = 0
        self.serial = next(_SERIALS)          # names the cache in its prefix_lookup events

    # -- the tree --------------------------------------------------------------------------
    def _walk(self, ids):
        """Longest stored prefix of ``ids``: (length, [(node, tokens used on its edge)])."""
        node, i, path = self.root, 0, []
        while i < len(ids):
            child = node.children.get(ids[i])
            if child is None:
                break
            edge = child.tokens
            n = 0
            while n < len(edge) and i + n < len(ids) and edge[n] == ids[i + n]:
                n += 1
            path.append((child, n))
            i += n
            if n < len(edge):
                break
            node = child
        return i, path

    def match(self, ids) -> int:
        """Length of the longest stored prefix of ``ids``."""
        return self._walk(list(ids))[0]

    def _touch(self, path):
        self._tick += 1
        for node, _ in path:
            node.used = self._tick

    def keys_values(self, ids) -> list:
        """The stored ``[(keys, values), ...]`` per layer for a prefix ``ids`` (must be stored)."""
        n, path = self._walk(list(ids))
        if n < len(ids):
            raise ValueError(f"only {n} of the {len(ids)} tokens are stored")
        self._touch(path)
        layers = len(path[0][0].kv)
        return [tuple(torch.cat([node.kv[l][j][:, :, :used] for node, used in path], dim=2)
                      for j in (0, 1)) for l in range(layers)]

    def insert(self, ids, cache, row: int = 0, offset: int = 0) -> int:
        """Store the KV of ``ids`` read from ``cache`` (token j at column ``offset + j`` of
        ``row``); returns how many new positions were stored."""
        ids = [int(t) for t in ids]
        n, path = self._walk(ids)
        if n == len(ids):
            self._touch(path)
            return 0
        node = self.root
        if path:
            last, used = path[-1]
            node = last
            if used < len(last.tokens):
                node = last.split(used)
                path[-1] = (node, used)
        pairs = layer_pairs(cache)
        kv = [(k[row:row + 1, :, offset + n:offset + len(ids)].clone(),
               v[row:row + 1, :, offset + n:offset + len(ids)].clone()) for k, v in pairs]
        leaf = _Node(ids[n:], kv, node)
        node.children[ids[n]] = leaf
        self.stored_tokens += len(ids) - n
        self._touch(path + [(leaf, 0)])
        self._evict()
        return len(ids) - n

    def insert_state(self, state: DecodeState) -> int:
        """Store every row of a decoding state (all of ``state.ids[r]`` must be cached)."""
        width = state.mask.shape[1]
        return sum(self.insert(ids, state.cache, row=r, offset=width - len(ids))
                   for r, ids in enumerate(state.ids))

    def tree_rows(self) -> list:
        """The radix tree as plain data, depth first: ``[parent row (-1: the root), tokens]``
        per node, the root first."""
        rows, stack = [], [(self.root, -1)]
        while stack:
            node, parent = stack.pop()
            rows.append([parent, list(node.tokens)])
            stack.extend((child, len(rows) - 1) for child in node.children.values())
        return rows

    def _evict(self):
        while self.max_tokens is not None and self.stored_tokens > self.max_tokens:
            leaves, stack = [], [self.root]
            while stack:
                node = stack.pop()
                stack.extend(node.children.values())
                if not node.children and node is not self.root:
                    leaves.append(node)
            old = min(leaves, key=lambda x: x.used)
            del old.parent.children[old.tokens[0]]
            self.stored_tokens -= len(old.tokens)

    # -- serving ---------------------------------------------------------------------------
    def prefill(self, prompts, n: int = 1) -> DecodeState:
        """`LanguageModel.prefill` that reuses stored prefixes and stores what it computes.

        Each prompt computes only the tokens after its longest stored prefix (at least its last
        token, whose logits are needed); rows are then left-padded into one batch state.
        """
        lm = self.lm
        rows = [lm.prompt_ids(p) for p in ([prompts] if isinstance(prompts, str) or (
            len(prompts) and isinstance(prompts[0], int)) else list(prompts))]
        if not rows:
            raise ValueError("prompts is empty")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        snap = lm.counter.snapshot()
        caches, logits = [], []
        for ids in rows:
            m = min(self.match(ids), len(ids) - 1)
            cache = make_cache(self.keys_values(ids[:m]), lm) if m else None
            out, cache = lm.forward(torch.tensor([ids[m:]], device=lm.device), cache=cache)
            self.insert(ids, cache)
            caches.append(cache)
            logits.append(out[0, -1])
            self.lookups += 1
            self.hits += m > 0
            self.requested_tokens += len(ids)
            self.reused_tokens += m
            if active():
                with source("prefix_cache"):
                    emit("prefix_lookup", cache=self.serial, prompt=ids, reused=m,
                         computed=len(ids) - m, max_tokens=self.max_tokens,
                         tree=self.tree_rows())
        self.computed_tokens += lm.counter.since(snap).computed_tokens
        width = max(len(r) for r in rows)
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=lm.device)
        for i, r in enumerate(rows):
            mask[i, width - len(r):] = 1
        if len(rows) == 1:
            cache = caches[0]
        else:
            per_row = [layer_pairs(c) for c in caches]
            cache = make_cache([tuple(torch.cat([_left_pad(p[l][j], width) for p in per_row])
                                      for j in (0, 1)) for l in range(len(per_row[0]))], lm)
        positions = torch.tensor([len(r) for r in rows], device=lm.device)
        state = DecodeState(lm, cache, mask, positions, torch.stack(logits),
                            [list(r) for r in rows])
        return state.repeat(n) if n > 1 else state

    @property
    def hit_rate(self) -> float:
        """Fraction of requested prompt tokens served from the tree."""
        return self.reused_tokens / self.requested_tokens if self.requested_tokens else 0.0

    @property
    def tokens_saved(self) -> int:
        """Requested prompt tokens minus tokens the model actually computed (counter-based)."""
        return self.requested_tokens - self.computed_tokens

    def stats(self) -> dict:
        return {"lookups": self.lookups, "hits": self.hits,
                "requested_tokens": self.requested_tokens, "reused_tokens": self.reused_tokens,
                "computed_tokens": self.computed_tokens, "hit_rate": self.hit_rate,
                "tokens_saved": self.tokens_saved, "stored_tokens": self.stored_tokens}

    def __len__(self):
        return self.stored_tokens

    def __repr__(self):
        return (f"PrefixCache({self.stored_tokens} tokens stored, hit rate {self.hit_rate:.2f}, "
                f"{self.tokens_saved} tokens saved)")


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    pad = width - t.shape[2]
    if pad == 0:
        return t
    return torch.cat([t.new_zeros(t.shape[0], t.shape[1], pad, t.shape[3]), t], dim=2)


def throughput(lm: LanguageModel, prompt, batch_sizes=(1, 2, 4, 8, 16, 32),
               max_new_tokens: int = 32, seed=0) -> list:
    """Tokens per second of ancestral sampling (eq. 14) at each batch size, one shared prompt.

    Decoding is memory-bound (§7.1): a step reads all weights whatever the batch, so larger
    batches produce more tokens per second until compute becomes the limit.
    """
    out = []
    for b in batch_sizes:
        if b < 1:
            raise ValueError(f"batch sizes must be >= 1, got {b}")
        gen = make_generator(seed, lm.device)
        start = time.perf_counter()
        state = lm.prefill(prompt, n=b)
        decode(lm, state, choose_sample, max_new_tokens, generator=gen, eos=False)
        sec = _seconds(start, lm.device)
        out.append({"batch": b, "seconds": sec, "tokens": b * max_new_tokens,
                    "tokens_per_second": b * max_new_tokens / sec,
                    "ms_per_step": sec / max_new_tokens * 1000})
    return out
