"""Meta-generation algorithms (survey §4): generators that call generators.

Chains (§4.1), parallel generation with reranking/transformation (§4.2), step-level search
(§4.3) and refinement (§4.4).  Every algorithm takes generators as arguments (token-level ones,
black boxes or other meta-generators via `as_generator`) and returns a `MetaResult`.
"""
from .base import (FunctionGenerator, LMGenerator, MetaResult, TextGenerator, TextOutput,
                   as_generator, generate, total_cost)
from .chains import chain, chain_of_thought, least_to_most, tool_generate
from .parallel import (answer_match, best_of_n, bon_kl_bound, bon_policy, default_answer,
                       filter_target, importance_resample, kl_divergence, llm_aggregate,
                       majority_vote, mbr, noisy_channel, overlap_f1, rejection_sample,
                       self_consistency, weighted_vote)

__all__ = [n for n in dir() if not n.startswith("_")]
