"""Meta-generation algorithms (survey §4): generators that call generators.

Chains (§4.1), parallel generation with reranking/transformation (§4.2), step-level search
(§4.3) and refinement (§4.4).  Every algorithm takes generators as arguments (token-level ones,
black boxes or other meta-generators via `as_generator`) and returns a `MetaResult`.
"""
from .base import (FunctionGenerator, Generator, LMGenerator, MetaResult, Replay,
                   TextGenerator, TextOutput, as_generator, batch_seeds, generate,
                   generate_batch, total_cost)
from .chains import chain, chain_of_thought, least_to_most, tool_generate
from .parallel import (answer_match, best_of_n, bon_kl_bound, bon_policy, default_answer,
                       filter_target, importance_resample, kl_divergence,
                       majority_vote, mbr, noisy_channel, overlap_f1, plurality, proposal_weight,
                       rejection_sample, sample_confidence, self_consistency, weighted_vote)
from .aggregate import (judge_verifier, lever, parse_choice, sandbox_executor,
                        universal_self_consistency, usc_prompt)
from .adaptive import adaptive_vote, beta_confidence, cascade
from .mcts import mcts
from .refine import (Feedback, calculator_feedback, corrector, execution_feedback,
                     outcome_feedback, reask, refine, regenerate_from_error, resample,
                     self_feedback, step_feedback, verifier_feedback)
from .reflect import critique_feedback, feedback_evaluator, reflexion, self_refine
from .search import allocate, best_first, rebase, stepwise_beam, tree_of_thought
from .smc import (dvts, effective_sample_size, multinomial_resample, particle_filter,
                  systematic_resample)
from .steps import LMStepper, Partial, Step, TextStepper
from .values import (Value, logprob_value, oracle_value, prm_value, self_evaluation_value,
                     terminal_value, verifier_value)
from .tree import Node, SearchResult

__all__ = [n for n in dir() if not n.startswith("_")]
