"""The KV cache (survey §7.2, eqs. 55-56): prefill once, then decode one token at a time.

A prefill pass over (x, y_<t) returns the next-token distribution *and* a state S (the keys and
values of every layer); each decoding step feeds one token plus S and extends S (eq. 56).
Without the state every step re-runs the whole sequence, so its cost grows with t.  This module
times both, gives the cache-size formula, builds multi-query / grouped-query variants of a model
(Shazeer 2019; Ainslie et al. 2023) and records a per-forward prefill/decode timeline.
"""
from __future__ import annotations

import copy
import functools
import time

import torch

from ..decoding import Generation
from ..models import LanguageModel, cache_tensors
from ..trace import active, emit, source


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def kv_heads(config) -> int:
    return getattr(config, "num_key_value_heads", None) or config.num_attention_heads


def kv_cache_bytes(config, tokens: int, batch: int = 1, dtype_bytes: int = 4) -> int:
    """Size of the KV cache: layers x KV heads x head dim x 2 (K and V) x bytes x tokens x batch.

    Multi-query (1 KV head) and grouped-query attention (G < heads) shrink it by heads / G.
    """
    return (config.num_hidden_layers * kv_heads(config) * head_dim(config) * 2 * dtype_bytes
            * tokens * batch)


def _append(buf, n, new):
    """Write ``new`` (B, H, T, D) after the first ``n`` positions of ``buf``, growing it by half
    its size (at least 64 positions) when full: amortised O(1) copying per token."""
    T = new.shape[-2]
    if buf is None or buf.dim() != 4 or buf.shape[-2] < n + T or buf.shape[:2] != new.shape[:2]:
        grown = new.new_empty(*new.shape[:2], n + T + max(64, (n + T) // 2), new.shape[-1])
        if n:
            grown[:, :, :n] = buf[:, :, :n]
        buf = grown
    buf[:, :, n:n + T] = new
    return buf, n + T


@functools.lru_cache(maxsize=None)
def _growing_classes():
    from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer whose keys and values live in buffers with spare room: appending a
        token writes in place instead of concatenating (copying) the whole layer's cache, and
        cropping only moves the end.  ``keys``/``values`` are views of the filled part."""

        @property
        def keys(self):
            b = self.__dict__.get("_kb")
            return b if b is None or b.dim() != 4 else b[:, :, :self._kn]

        @keys.setter
        def keys(self, t):   # assignments by inherited methods (reorder, select, offload)
            self._kb, self._kn = t, (t.shape[-2] if t is not None and t.dim() == 4 else 0)

        @property
        def values(self):
            b = self.__dict__.get("_vb")
            return b if b is None or b.dim() != 4 else b[:, :, :self._vn]

        @values.setter
        def values(self, t):
            self._vb, self._vn = t, (t.shape[-2] if t is not None and t.dim() == 4 else 0)

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self._kb, self._kn = _append(self._kb, self._kn, key_states)
            self._vb, self._vn = _append(self._vb, self._vn, value_states)
            return self.keys, self.values

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove > 0:
                raise ValueError("crop takes a negative number: the count of tokens to remove")
            if self.is_initialized:
                self._kn = max(0, self._kn + tokens_to_remove)
                self._vn = max(0, self._vn + tokens_to_remove)

    class GrowingCache(DynamicCache):
        """`DynamicCache` made of `GrowingLayer`s."""

        def __init__(self):
            Cache.__init__(self, layer_class_to_replicate=GrowingLayer)

    return GrowingLayer, GrowingCache


def growing_cache():
    """An empty KV cache that grows in place (amortised), for ``lm.cache_factory``.

    transformers' DynamicCache concatenates each layer's whole cache at every step, so a step
    copies O(batch x length) memory; this one appends into spare room.  Same results.
    """
    try:
        return _growing_classes()[1]()
    except (ImportError, TypeError) as err:
        raise RuntimeError(f"this transformers version has no layered cache API: {err}") from err


def use_growing_cache(lm: LanguageModel, on: bool = True) -> LanguageModel:
    """Make ``lm`` start every KV cache as a `growing_cache` (``on=False``: the default)."""
    if on:
        growing_cache()   # fails early on an unsupported transformers version
    lm.cache_factory = growing_cache if on else None
    return lm


def new_cache(lm: LanguageModel):
    """An empty cache as ``lm`` would start one."""
    if lm.cache_factory is not None:
        return lm.cache_factory()
    from transformers import DynamicCache
    return DynamicCache()


def cache_length(cache) -> int:
    """Number of positions held in a transformers cache."""
    tensors = cache_tensors(cache)
    return tensors[0].shape[-2] if tensors else 0


def cache_bytes(cache) -> int:
    """Bytes held by the key and value tensors of a transformers cache."""
    return sum(t.numel() * t.element_size() for t in cache_tensors(cache))


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _seconds(start, device):
    _sync(device)
    return time.perf_counter() - start


def timed_greedy(lm: LanguageModel, prompt, max_new_tokens: int = 64,
                 use_cache: bool = True) -> Generation:
    """Greedy decoding (eq. 4) that times every forward pass: with the cache, or recomputing.

    ``use_cache=True``: one prefill pass over the prompt, then one pass per token that feeds the
    new token and the state (eq. 56).  ``use_cache=False``: every step re-runs the whole sequence
    (eq. 55 each time), so step t computes len(prompt) + t positions.  EOS does not stop the loop
    (the point is the timing).  ``info`` holds the timeline: per forward its ``kind`` (prefill,
    decode or recompute), ``seconds``, positions ``computed``, ``cache_tokens`` and
    ``cache_bytes`` afterwards.
    """
    ids = lm.prompt_ids(prompt, max_new_tokens)
    snap = lm.counter.snapshot()
    out, logprobs, timeline = [], [], []
    seq = torch.tensor([ids], device=lm.device)
    cache, new = None, seq
    for t in range(max_new_tokens):
        start = time.perf_counter()
        logits, kv = lm.forward(new if use_cache else seq, cache=cache)
        last = logits[0, -1]
        tok = last.argmax()
        logprobs.append(float(torch.log_softmax(last, -1)[tok]))
        sec = _seconds(start, lm.device)
        cache = kv if use_cache else None
        timeline.append({"kind": ("prefill" if t == 0 else "decode") if use_cache else "recompute",
                         "seconds": sec, "computed": new.shape[1] if use_cache else seq.shape[1],
                         "cache_tokens": cache_length(kv) if use_cache else 0,
                         "cache_bytes": cache_bytes(kv) if use_cache else 0})
        out.append(int(tok))
        new = tok.view(1, 1)
        seq = torch.cat([seq, new], dim=1)
    cfg = lm.model.config
    info = {"timeline": timeline, "use_cache": use_cache, "layers": cfg.num_hidden_layers,
            "kv_heads": kv_heads(cfg), "head_dim": head_dim(cfg), "prompt_tokens": len(ids)}
    if active():
        _emit_passes(info, out)
    return Generation.of(lm, prompt, ids, out, logprobs, spent=lm.counter.since(snap), info=info,
                         proposal_logprobs=[0.0] * len(out))   # greedy: deterministic


def _emit_passes(info: dict, tokens: list) -> None:
    """One ``kv_pass`` event per timed forward pass (after the timing, so it costs none)."""
    shape = {k: info[k] for k in ("layers", "kv_heads", "head_dim", "prompt_tokens")}
    with source("timed_greedy"):
        for i, (e, tok) in enumerate(zip(info["timeline"], tokens)):
            emit("kv_pass", step=i, phase=e["kind"], seconds=e["seconds"], computed=e["computed"],
                 cache_tokens=e["cache_tokens"], cache_bytes=e["cache_bytes"], token=tok,
                 shape=shape)


def ms_per_token(lm: LanguageModel, prompt="Story:", tokens: int = 64, repeats: int = 3,
                 batch: int = 1) -> float:
    """Median wall time (ms) per decoding step with the KV cache at the given batch size."""
    times = []
    for _ in range(repeats):
        state = lm.prefill(prompt, n=batch)
        start = time.perf_counter()
        for _ in range(tokens):
            lm.advance(state, state.logits.argmax(-1))
        times.append(_seconds(start, lm.device) / tokens * 1000)
    return sorted(times)[len(times) // 2]


def with_kv_heads(lm: LanguageModel, n_kv_heads: int) -> LanguageModel:
    """The same model with ``n_kv_heads`` key/value heads: MHA (= heads), GQA, or MQA (1).

    Key and value projections of each group of query heads are mean-pooled, the conversion
    Ainslie et al. (2023) use before uptraining; everything else is copied.  The cache shrinks
    by heads / n_kv_heads; the outputs change unless the pooled heads were equal.
    """
    cfg = lm.model.config
    heads, old = cfg.num_attention_heads, kv_heads(cfg)
    if not isinstance(n_kv_heads, int) or n_kv_heads < 1 or heads % n_kv_heads:
        raise ValueError(f"n_kv_heads must divide num_attention_heads={heads}, got {n_kv_heads}")
    if old % n_kv_heads:
        raise ValueError(f"n_kv_heads={n_kv_heads} must divide the model's {old} KV heads")
    new_cfg = copy.deepcopy(cfg)
    new_cfg.num_key_value_heads = n_kv_heads
    model = type(lm.model)(new_cfg).to(device=lm.device, dtype=lm.model.dtype).eval()
    state = lm.model.state_dict()
    d, group = head_dim(cfg), old // n_kv_heads
    for name, w in list(state.items()):
        if name.endswith(("k_proj.weight", "v_proj.weight", "k_proj.bias", "v_proj.bias")):
            pooled = w.reshape(n_kv_heads, group, d, *w.shape[1:]).mean(dim=1)
            state[name] = pooled.reshape(n_kv_heads * d, *w.shape[1:])
    model.load_state_dict(state)
    out = LanguageModel(model, lm.tokenizer, name=f"{lm.name}-kv{n_kv_heads}")
    out.cache_factory = lm.cache_factory
    return out


def attention_variants(lm: LanguageModel, tokens: int = 1024) -> list:
    """MHA, GQA and MQA sizes for this architecture: KV heads, cache bytes at ``tokens``."""
    cfg = lm.model.config
    heads = cfg.num_attention_heads
    out = []
    for g in sorted({h for h in range(1, heads + 1) if heads % h == 0}, reverse=True):
        kind = "MHA" if g == heads else ("MQA" if g == 1 else "GQA")
        out.append({"kind": kind, "kv_heads": g,
                    "cache_bytes": kv_cache_bytes(_with(cfg, g), tokens,
                                                  dtype_bytes=lm.model.dtype.itemsize)})
    return out


def _with(cfg, g):
    c = copy.copy(cfg)
    c.num_key_value_heads = g
    return c
