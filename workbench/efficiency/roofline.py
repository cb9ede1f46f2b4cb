"""Arithmetic intensity and the roofline model (survey §7.1, "Hardware-aware optimization").

Like the survey's matrix product (eq. 53) and elementwise ReLU (eq. 54), a forward pass must
do F floating-point operations and move B bytes between memory and the chip; its arithmetic
intensity is F / B.  On hardware with peak compute P (FLOP/s) and memory bandwidth W (bytes/s)
the pass takes at least max(F / P, B / W): below the ridge point P / W (FLOP per byte) it is
memory-bound, above it compute-bound.  Decoding one token reads every weight to do ~2 FLOP per
weight, so it is memory-bound; a prefill over many tokens reuses each weight read many times
and becomes compute-bound.  This is why batching, speculative verification of k tokens in one
pass and weight quantisation speed up decoding.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from .kv import head_dim, kv_heads


@dataclass(frozen=True)
class Hardware:
    """Peak compute (FLOP/s) and memory bandwidth (bytes/s) of an accelerator."""
    name: str
    flops: float
    bandwidth: float

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP/byte) above which a kernel is compute-bound."""
        return self.flops / self.bandwidth


# Survey §7.1: "the H100 can perform up to 989.4 TFLOP/s in BF16 within a dense matrix
# multiplication using Tensor Cores, but only 133.8 TFLOP/s of BF16 arithmetic" (NVIDIA, 2022).
# Memory bandwidth, which the survey does not quote: 3.35 TB/s of HBM3 (H100 SXM5 datasheet).
H100 = Hardware("H100 SXM, BF16 Tensor Core (dense)", 989.4e12, 3.35e12)
H100_NO_TENSOR_CORES = Hardware("H100 SXM, BF16 without Tensor Cores", 133.8e12, 3.35e12)
# A nominal 2-core x86 CPU: 2 cores x 3 GHz x 32 FP32 FLOP/cycle (two AVX2 FMA units),
# dual-channel DDR4-3200 (51.2 GB/s).  `measure_cpu()` measures this machine instead.
CPU_2CORE = Hardware("2-core AVX2 CPU (nominal), FP32", 2 * 3e9 * 32, 51.2e9)
# Llama-2-7B's shape (Touvron et al., 2023), for calculations at a realistic scale.
LLAMA2_7B = SimpleNamespace(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                            num_key_value_heads=32, intermediate_size=11008, vocab_size=32000)


def measure_cpu(size: int = 1024, seconds: float = 0.5) -> Hardware:
    """This machine's achieved FP32 matmul FLOP/s and memory copy bandwidth (bytes/s)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or n < 2:
        a @ b
        n += 1
    flops = 2 * size ** 3 * n / (time.perf_counter() - start)
    src = torch.empty(32 * 2 ** 20 // 4)   # 32 MiB, larger than the caches
    dst = torch.empty_like(src)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or n < 2:
        dst.copy_(src)
        n += 1
    bandwidth = 2 * src.numel() * 4 * n / (time.perf_counter() - start)   # read + write
    return Hardware(f"this CPU ({torch.get_num_threads()} threads), FP32, measured", flops,
                    bandwidth)


def parameter_count(config) -> dict:
    """Weights of a Llama-style decoder: attention, MLP (gated: 3 matrices), embedding, head."""
    h, d, layers = config.hidden_size, head_dim(config), config.num_hidden_layers
    attn = h * config.num_attention_heads * d * 2 + h * kv_heads(config) * d * 2
    mlp = 3 * h * config.intermediate_size
    embed = config.vocab_size * h
    return {"per_layer": attn + mlp, "layers": layers * (attn + mlp), "embedding": embed,
            "head": embed, "matmul": layers * (attn + mlp) + embed}


def forward_cost(config, batch: int = 1, new_tokens: int = 1, context: int = 0,
                 bytes_per_param: float = 2, kv_bytes: float | None = None) -> dict:
    """FLOP, bytes moved and arithmetic intensity of one forward pass.

    ``batch`` rows each feed ``new_tokens`` tokens after ``context`` cached positions.  FLOP:
    2 per weight per token for the matrix multiplications plus 4 x heads x head dim per
    (query, key) pair for attention (QK^T and AV).  Bytes: every weight once, the KV cache read
    and the new keys/values written (activations are small and ignored).
    """
    if batch < 1 or new_tokens < 1 or context < 0:
        raise ValueError("need batch >= 1, new_tokens >= 1, context >= 0")
    kv_bytes = bytes_per_param if kv_bytes is None else kv_bytes
    tokens = batch * new_tokens
    params = parameter_count(config)
    pairs = batch * (new_tokens * context + new_tokens * (new_tokens + 1) // 2)
    layers = config.num_hidden_layers
    flops = 2 * params["matmul"] * tokens + 4 * layers * config.num_attention_heads * \
        head_dim(config) * pairs
    kv_per_token = 2 * layers * kv_heads(config) * head_dim(config) * kv_bytes
    moved = params["matmul"] * bytes_per_param + kv_per_token * batch * (context + new_tokens)
    return {"flops": flops, "bytes": moved, "intensity": flops / moved, "tokens": tokens}


def roofline(config, hardware: Hardware, batch: int = 1, new_tokens: int = 1, context: int = 0,
             bytes_per_param: float = 2) -> dict:
    """Lower bound on the time of a forward pass and which resource bounds it."""
    c = forward_cost(config, batch, new_tokens, context, bytes_per_param)
    compute, memory = c["flops"] / hardware.flops, c["bytes"] / hardware.bandwidth
    seconds = max(compute, memory)
    return c | {"hardware": hardware.name, "compute_seconds": compute,
                "memory_seconds": memory, "seconds": seconds,
                "bound": "compute" if compute >= memory else "memory",
                "tokens_per_second": c["tokens"] / seconds,
                "utilisation": compute / seconds}


def roofline_table(config, hardware: Hardware, context: int = 512, k: int = 4,
                   bytes_per_param: float = 2) -> list:
    """The standard cases: decode at batch 1 and 64, verifying k+1 drafted tokens, prefill."""
    cases = [("decode, batch 1", 1, 1, context), ("decode, batch 64", 64, 1, context),
             (f"verify {k + 1} tokens", 1, k + 1, context),
             (f"prefill {context} tokens", 1, context, 0)]
    return [{"case": name} | roofline(config, hardware, b, t, c, bytes_per_param)
            for name, b, t, c in cases]
