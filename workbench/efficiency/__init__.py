"""Efficient generation (survey §7): KV cache, batching and prefix sharing, speculative
decoding, arithmetic intensity and the roofline, quantisation and attention kernels.

    from workbench import efficiency as eff
    eff.timed_greedy(lm, "Story:", 256, use_cache=False)      # the cost of no KV cache
    eff.speculative_decode(target, draft, "Story:", k=4, seed=0)
    eff.tree_speculative_decoding(target, draft, "Story:", branching=(2, 2, 1), seed=0)
    eff.lookahead_decoding(lm, "Story:", window=4, ngram=3)  # greedy, fewer sequential steps
    eff.medusa_decoding(lm, eff.MedusaHeads.from_pretrained(path, lm), "Story:", topk=(3, 2, 1))
    eff.PrefixCache(lm).prefill(prompts)                       # reuse computed prefixes
    eff.use_growing_cache(lm)          # KV caches that append in place (faster decoding)
    eff.with_quantized_kv(lm, bits=4)  # keys and values stored in 4 bits (KIVI)
    eff.continuous_batching(lm, requests, max_batch=4, num_blocks=32, block_size=4)
"""
from .batching import (PagedKVAllocator, Request, ServingResult, StepRecord,
                       continuous_batching, merge_states, padded_reservation, poisson_workload,
                       serving_curve, simulate_serving, static_batching)
from .kv import (attention_variants, cache_bytes, cache_length, growing_cache,
                 kv_cache_bytes, ms_per_token, new_cache, timed_greedy, use_growing_cache,
                 with_kv_heads)
from .kv_quant import (FidelityReference, QuantizedTensor, decode_fidelity, fidelity_reference,
                       quantize_minmax, quantized_kv_bytes, quantized_kv_cache,
                       with_quantized_kv)
from .lookahead import lookahead_decoding
from .medusa import MedusaHeads, medusa_decoding
from .prefix import PrefixCache, throughput
from .quantize import agreement, quantize_int8, weight_bytes, with_attention
from .roofline import (CPU_2CORE, H100, H100_NO_TENSOR_CORES, LLAMA2_7B, Hardware, forward_cost,
                       measure_cpu, parameter_count, roofline, roofline_table)
from .speculative import (ModelDrafter, PromptLookupDrafter, SpecStep,
                          accepted_length_distribution, expected_speedup,
                          expected_tokens_per_round, greedy_verify_step, prompt_lookup_decode,
                          speculative_decode, speculative_sampling_step, summarize,
                          truncated_draft)
from .tree_spec import greedy_tree_step, multi_draft_step, tree_speculative_decoding

__all__ = [
    "attention_variants", "cache_bytes", "cache_length", "kv_cache_bytes",
    "ms_per_token", "timed_greedy", "with_kv_heads", "growing_cache", "use_growing_cache",
    "new_cache", "QuantizedTensor", "decode_fidelity", "FidelityReference", "fidelity_reference",
    "quantize_minmax", "quantized_kv_bytes",
    "quantized_kv_cache", "with_quantized_kv", "lookahead_decoding", "PrefixCache", "throughput",
    "agreement", "quantize_int8", "weight_bytes", "with_attention", "CPU_2CORE", "H100",
    "H100_NO_TENSOR_CORES", "LLAMA2_7B", "Hardware", "forward_cost", "measure_cpu",
    "parameter_count", "roofline", "roofline_table", "ModelDrafter", "PromptLookupDrafter",
    "SpecStep", "accepted_length_distribution", "expected_speedup", "expected_tokens_per_round",
    "greedy_verify_step", "prompt_lookup_decode", "speculative_decode",
    "speculative_sampling_step", "summarize", "truncated_draft", "tree_speculative_decoding",
    "MedusaHeads", "medusa_decoding", "multi_draft_step", "greedy_tree_step",
    "PagedKVAllocator", "Request", "ServingResult",
    "StepRecord", "continuous_batching", "merge_states", "padded_reservation",
    "poisson_workload", "serving_curve", "simulate_serving", "static_batching"]
