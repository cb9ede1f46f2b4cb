"""Meta-Generation Workbench: the inference-time algorithms of LLMs, instrumented.

    import workbench as wb
    lm = wb.load("tinyworld")
    with wb.trace() as t:
        out = wb.decoding.sample(lm, "Story:", seed=0)
    out.text, out.cost, t.events

Modules follow the survey (Welleck et al., 2024): `models` (p_theta), `adapters` (§3.3),
`decoding` (§3.1-3.3), `degeneration` (§3.1: contrastive search, diverse beam search),
`control` (§3.4, §5.1), `constraints` (§3.5), `meta` (§4), `scoring` and `tools` (§5),
`budget` (§6), `efficiency` (§7), `tinyworld` (the embedded world).
"""
from . import budget, decoding, degeneration, prompts, tasks, trace as _trace_module
from .budget import Budget, Cost
from .loading import ModelNotAvailable, embedded_models, load
from .models import DecodeState, LanguageModel
from .rng import make_generator, seed_everything
from .trace import emit, trace

__version__ = "0.1.0"
__all__ = ["load", "trace", "emit", "Cost", "Budget", "LanguageModel", "DecodeState",
           "ModelNotAvailable", "embedded_models", "make_generator", "seed_everything",
           "decoding", "degeneration", "budget", "prompts", "tasks"]
tracing = _trace_module

# §3.1's rules against degenerate MAP outputs live in `degeneration` (they build on decoding's
# beam phases, and decoding never imports back); decoding lists them too, where a reader of the
# survey looks for token-level algorithms: `wb.decoding.contrastive_search` is the same function.
decoding.contrastive_search = degeneration.contrastive_search
decoding.diverse_beam_search = degeneration.diverse_beam_search
