"""Model compression and implementation choices (survey §7.2): int8 weights, attention kernels.

Quantising weights to int8 shrinks the bytes a memory-bound decoding step must read (§7.1)
at some cost in fidelity, which `agreement` measures as next-token argmax agreement and KL
divergence against the original.  `with_attention` swaps the attention implementation (PyTorch's
fused scaled-dot-product attention vs the eager softmax(QK^T / sqrt(d)) V): the same function
computed differently, so outputs agree up to rounding while speed may differ.
"""
from __future__ import annotations

import copy
import warnings

import torch

from ..models import LanguageModel


def quantize_int8(lm: LanguageModel) -> LanguageModel:
    """A copy of ``lm`` with int8 dynamically quantised Linear layers (CPU only).

    Weights are stored as int8 with one scale per tensor; activations are quantised on the fly
    per batch (``torch.ao.quantization.quantize_dynamic``).  Embeddings stay in float.
    """
    if lm.device.type != "cpu":
        raise ValueError(f"int8 dynamic quantisation runs on the CPU; the model is on {lm.device}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch.ao.quantization is deprecated in favour of torchao
        from torch.ao.quantization import quantize_dynamic
        model = quantize_dynamic(copy.deepcopy(lm.model).float(), {torch.nn.Linear},
                                 dtype=torch.qint8)
    out = LanguageModel(model, lm.tokenizer, name=f"{lm.name}-int8", device="cpu")
    out.cache_factory = lm.cache_factory
    return out


def weight_bytes(lm: LanguageModel) -> int:
    """Bytes of the weights (float parameters plus packed int8 weights of quantised layers)."""
    total = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    for m in lm.model.modules():
        if hasattr(m, "_packed_params") and callable(getattr(type(m), "weight", None)):
            w, b = m.weight(), m.bias()   # a quantised Linear: int8 weight, float bias
            total += w.numel() * w.element_size() + (b.numel() * b.element_size() if b is not None
                                                     else 0)
    return total


def with_attention(lm: LanguageModel, implementation: str) -> LanguageModel:
    """A copy of ``lm`` using another attention implementation ("sdpa", "eager", ...)."""
    model = copy.deepcopy(lm.model)
    try:
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(implementation)
        else:
            model.config._attn_implementation = implementation
    except (ValueError, ImportError) as err:
        raise ValueError(f"implementation {implementation!r} is not available: {err}") from err
    out = LanguageModel(model, lm.tokenizer, name=f"{lm.name}-{implementation}", device=lm.device)
    out.cache_factory = lm.cache_factory
    return out


@torch.no_grad()
def agreement(reference: LanguageModel, other: LanguageModel, texts) -> dict:
    """How closely ``other`` reproduces ``reference`` on ``texts``, at every position:
    argmax agreement, mean KL(p_reference || p_other) in nats, max |logit difference|."""
    agree = total = 0
    kl = diff = 0.0
    for text in ([texts] if isinstance(texts, str) else texts):
        ids = torch.tensor([reference.encode(text)])
        a = reference.forward(ids.to(reference.device))[0][0].cpu()
        b = other.forward(ids.to(other.device))[0][0].cpu()
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        total += a.shape[0]
        la, lb = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
        kl += float((la.exp() * (la - lb)).sum())
        diff = max(diff, float((a - b).abs().max()))
    return {"agreement": agree / total, "kl": kl / total, "max_logit_diff": diff,
            "positions": total}
