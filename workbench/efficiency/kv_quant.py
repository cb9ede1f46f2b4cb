"""KV-cache quantisation (survey §7.2; KIVI, Liu et al., 2024): keys and values in b bits.

A decoding step reads the whole KV cache (§7.1), so once the context is long the cache's bytes,
not the weights', bound a memory-bound step and the batch that fits.  Min-max (asymmetric)
quantisation stores b-bit codes and, per group of numbers, an offset m (the group's minimum) and
a step s:

    s = (max x - min x) / (2^b - 1),   q = round((x - m) / s) in {0, ..., 2^b - 1},   x^ = m + s q

so |x - x^| <= s / 2.  Which numbers share a group matters: keys have a few outlier channels, so
KIVI quantises keys per channel (the statistics run over the tokens) and values per token (over
each token's channels).  The cache is transformers' own `QuantizedLayer` (the last R tokens kept
in full precision, flushed into codes when the window fills) with this quantiser as its backend.
Codes are held one per byte here for readability; the byte counts below are of packed codes.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..models import LanguageModel
from .kv import head_dim, kv_heads

AXES = {"channel": -2, "token": -1}   # the dimension a group's statistics run over


@dataclass
class QuantizedTensor:
    """b-bit codes of a tensor, with the offset and step of each group (`quantize_minmax`)."""
    codes: torch.Tensor   # uint8, same shape as the tensor
    offset: torch.Tensor  # m, reduced (keepdim) over the grouped dimension
    step: torch.Tensor    # s, same shape as offset
    bits: int

    def dequantize(self) -> torch.Tensor:
        """x^ = m + s q."""
        return self.offset + self.step * self.codes.to(self.step.dtype)

    def packed_bytes(self, scale_bytes: int = 2) -> int:
        """Bytes with the codes packed b bits each and m, s stored in ``scale_bytes`` each."""
        return (self.codes.numel() * self.bits + 7) // 8 + 2 * self.offset.numel() * scale_bytes


def quantize_minmax(x: torch.Tensor, bits: int, dim: int = -1) -> QuantizedTensor:
    """Min-max quantisation of ``x`` to ``bits`` bits, one group per slice along ``dim``:
    m = min x, s = (max x - min x) / (2^b - 1), q = round((x - m) / s) (a constant group has
    s = 0 and is exact)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 1 to 8, got {bits!r}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    levels = 2 ** bits - 1
    lo, hi = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    step = (hi - lo) / levels
    safe = torch.where(step > 0, step, torch.ones_like(step))
    codes = torch.round((x - lo) / safe).clamp_(0, levels).to(torch.uint8)
    return QuantizedTensor(codes, lo, step, bits)


@functools.lru_cache(maxsize=None)
def _layer_class():
    from transformers.cache_utils import QuantizedLayer

    class MinMaxQuantizedLayer(QuantizedLayer):
        """transformers' residual-window quantized layer with `quantize_minmax` as backend."""

        def _quantize(self, tensor, axis):
            return quantize_minmax(tensor, self.nbits, dim=axis)

        def _dequantize(self, q_tensor):
            return q_tensor.dequantize()

    return MinMaxQuantizedLayer


def quantized_kv_cache(config, bits: int = 4, keys: str = "channel", values: str = "token",
                       residual: int = 16):
    """An empty KV cache that stores keys and values in ``bits`` bits (``keys``/``values``:
    "channel" or "token" groups) beyond a full-precision window of the last ``residual`` tokens."""
    for name, axis in (("keys", keys), ("values", values)):
        if axis not in AXES:
            raise ValueError(f"{name} must be one of {sorted(AXES)}, got {axis!r}")
    if isinstance(residual, bool) or not isinstance(residual, int) or residual < 1:
        raise ValueError(f"residual must be a positive integer, got {residual!r}")
    quantize_minmax(torch.zeros(1), bits)   # validates bits
    from transformers.cache_utils import Cache
    layer = _layer_class()
    n = config.get_text_config(decoder=True).num_hidden_layers
    return Cache(layers=[layer(bits, AXES[keys], AXES[values], 64, residual) for _ in range(n)])


def with_quantized_kv(lm: LanguageModel, bits: int = 4, keys: str = "channel",
                      values: str = "token", residual: int = 16) -> LanguageModel:
    """``lm`` (the same weights) whose every KV cache is a `quantized_kv_cache`; for decoding
    loops that only append to the cache (greedy, sampling), not for those that crop it."""
    quantized_kv_cache(lm.model.config, bits, keys, values, residual)   # validates, fails early
    out = LanguageModel(lm.model, lm.tokenizer, name=f"{lm.name}-kv{bits}", device=lm.device)
    out.cache_factory = functools.partial(quantized_kv_cache, lm.model.config, bits, keys, values,
                                          residual)
    return out


def quantized_kv_bytes(config, tokens: int, bits: int, scale_bytes: int = 2,
                       dtype_bytes: int = 4, residual: int = 0) -> int:
    """Bytes of a KIVI-style cache of ``tokens`` positions: per layer and KV head, the codes
    (2 d b / 8 per token), a step and offset per token for the values, per channel for the keys,
    and the last ``residual`` tokens in full precision (compare `kv_cache_bytes`)."""
    d, heads = head_dim(config), kv_heads(config)
    stored = max(tokens - residual, 0)
    per_head = ((2 * d * stored * bits + 7) // 8 + 2 * scale_bytes * (stored + d)
                + 2 * d * min(tokens, residual) * dtype_bytes)
    return config.num_hidden_layers * heads * per_head


@dataclass
class FidelityReference:
    """What `decode_fidelity` compares against, computed once: the reference model's greedy
    continuation of each prompt (``ids``, the prompt's length ``n``) and its stepwise
    log-probabilities along it (``logprobs``, one row per decoded position)."""
    name: str
    prompts: list
    max_new_tokens: int
    rows: list          # (ids, n, logprobs) per prompt


@torch.no_grad()
def fidelity_reference(reference: LanguageModel, prompts,
                       max_new_tokens: int = 64) -> FidelityReference:
    """The float side of `decode_fidelity`, to reuse across the models compared with it."""
    from ..decoding import greedy
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    rows = []
    for prompt in prompts:
        n = len(reference.encode(prompt))
        ids = reference.encode(prompt) + greedy(reference, prompt, max_new_tokens=max_new_tokens,
                                                eos=False).token_ids
        rows.append((ids, n, _stepwise_logprobs(reference, ids, n)))
    return FidelityReference(reference.name, prompts, max_new_tokens, rows)


@torch.no_grad()
def decode_fidelity(reference, other: LanguageModel, prompts=None,
                    max_new_tokens: int = 64) -> dict:
    """How closely ``other`` (e.g. `with_quantized_kv`) tracks ``reference`` while decoding:
    teacher-forced along the reference's greedy continuation of each prompt, one token per pass
    through each model's own KV cache; argmax agreement and mean KL(p_ref || p_other) in nats
    over the decoded positions.

    ``reference`` is a model (then ``prompts`` are required) or a `fidelity_reference` computed
    once for several comparisons (then its own prompts and length are used)."""
    if isinstance(reference, FidelityReference):
        if prompts is not None:
            raise ValueError("prompts must be None when reference is a FidelityReference (it "
                             "holds its own prompts)")
        ref = reference
    elif prompts is None:
        raise ValueError("prompts are required when reference is a model")
    else:
        ref = fidelity_reference(reference, prompts, max_new_tokens)
    agree, kl, total = 0, 0.0, 0
    for ids, n, a in ref.rows:
        b = _stepwise_logprobs(other, ids, n)
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        kl += float((a.exp() * (a - b)).sum())
        total += a.shape[0]
    return {"agreement": agree / total, "kl": kl / total, "positions": total}


def _stepwise_logprobs(lm: LanguageModel, ids: list, n: int) -> torch.Tensor:
    """log p(. | ids[:t]) for t = n .. len(ids) - 1: a prefill of ``n`` tokens, then one token
    per pass through the cache (which is where a quantized cache differs)."""
    logits, cache = lm.forward(torch.tensor([ids[:n]], device=lm.device))
    rows = [logits[0, -1]]
    for t in ids[n:-1]:
        logits, cache = lm.forward(torch.tensor([[t]], device=lm.device), cache=cache)
        rows.append(logits[0, -1])
    return torch.log_softmax(torch.stack(rows).float().cpu(), -1)
