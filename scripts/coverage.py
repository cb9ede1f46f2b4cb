"""The survey-coverage table: survey § -> algorithm -> function -> chapters -> tests.

    python scripts/coverage.py            # writes docs/coverage.md
    python scripts/coverage.py --check    # exits 1 if docs/coverage.md is stale or a check fails

`ROWS` is the table's only hand-written part: one row per algorithm, procedure or claim that
the survey (Welleck et al., 2024) names, as ``(section, name, paths, status)``.

- ``paths``: the dotted paths of what implements it in `workbench` (space-separated).  The
  chapters that use a row are the notebooks ``notebooks/src/NN_*.py`` that call one of its
  names (``name(``, ``meta.name(``, ...); its tests are the files ``tests/test_*.py`` that
  mention one.  ``from m import name`` counts as ``m.name``.  A name that other objects also
  have (``tokenizer.decode``) is searched as ``module.name`` instead (`CALLS`).
- ``status``: ``""`` for an implemented row: every path must import and some test must mention
  it.  ``"planned: <issue>"`` for a path being added in parallel: allowed ONLY while the path
  does not import -- once it does, the check fails until whoever merges it drops the marker.
  ``"not yet: <what>"`` (no path needed) and ``"out of scope: <why>"`` for what the workbench
  does not do: it is about inference, so training-time methods are out of scope.

The reverse check: every public function or class of the algorithm modules (`MODULES`) whose
docstring cites the survey (an equation "eq. N" / "eqs." or a "§") must be in some row's paths,
unless `NOT_ALGORITHMS` lists it with a reason -- so an algorithm cannot be added without a row.
"""
from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "coverage.md"
TRAINING = "out of scope: training-time"
PARTLY = "partly: implemented and tested, no chapter calls it or shows its source"

ROWS = [
    # §2 Preliminaries
    ("2", "Generation algorithm y = f(x; p_θ, φ) as a token loop (Def. 1)",
     "workbench.decoding.decode", ""),
    ("2", "Sequence probability p_θ(y|x) = Π_t p_θ(y_t|y_<t, x) (eq. 11)",
     "workbench.measures.sequence_logprob", ""),
    ("2.2.3", "Sampling from a specified target q* (eq. 17): g restricted to a set, g·verifier",
     "workbench.meta.filter_target workbench.scoring.JointScorer", ""),
    ("2.2", "Learning p_θ: pretraining, fine-tuning, data and architecture choices", "",
     f"{TRAINING}: the workbench takes p_θ as given (TinyWorld's zoo is trained only to have "
     "models to decode from)"),
    ("2.2.3", "Reaching q* by training: RLHF (PPO), DPO, KL-regularised RL, GFlowNet fine-tuning",
     "", f"{TRAINING}: these change θ; the workbench reaches q* at inference (best-of-N, "
     "rejection sampling, controlled decoding)"),
    # §3.1 MAP decoding
    ("3.1", "Greedy decoding (eq. 8)", "workbench.decoding.greedy", ""),
    ("3.1", "Beam search (approximate MAP, eq. 7)", "workbench.decoding.beam_search", ""),
    ("3.1", "Exact MAP decoding (branch-and-bound)", "workbench.decoding.exact_map", ""),
    ("3.1", "Length normalisation of beam scores (log p / |y|^α)",
     "workbench.decoding.beam_search", ""),
    ("3.1", "Inadequacy of the mode: the mode vs the typical set",
     "workbench.measures.coin_flips workbench.measures.typical_set_mass", ""),
    ("3.1", "Degeneration: repetition traps (rep-n, loop period)",
     "workbench.measures.repeated_ngrams workbench.measures.loop_period", ""),
    ("3.1", "Contrastive search (Su et al., 2022; issue 20)",
     "workbench.degeneration.contrastive_search workbench.degeneration.degeneration_penalty", ""),
    ("3.1", "Diverse beam search (Vijayakumar et al., 2018; issue 20)",
     "workbench.degeneration.diverse_beam_search", ""),
    # §3.2 Sampling
    ("3.2", "Ancestral sampling (eq. 12)", "workbench.decoding.sample", ""),
    ("3.2", "Diversity–coherence trade-off (distinct-n)", "workbench.measures.distinct_n", ""),
    ("3.2", "Stochastic beam search: k samples without replacement (Kool et al., 2019; issue 20)",
     "workbench.decoding.stochastic_beam_search workbench.decoding.truncated_gumbel", ""),
    # §3.3 Token-level sampling adapters (Table 2)
    ("3.3", "Sampling adapters q_t and their composition (eq. 13)",
     "workbench.adapters.chain workbench.decoding.apply_adapters", ""),
    ("3.3", "Temperature sampling (eq. 14)", "workbench.adapters.temperature", ""),
    ("3.3", "Top-k sampling", "workbench.adapters.top_k", ""),
    ("3.3", "Nucleus (top-p) sampling", "workbench.adapters.top_p", ""),
    ("3.3", "Min-p sampling (Nguyen et al., 2024; not in Table 2)", "workbench.adapters.min_p", ""),
    ("3.3", "Locally typical sampling", "workbench.adapters.typical", ""),
    ("3.3", "ε-sampling", "workbench.adapters.epsilon", ""),
    ("3.3", "η-sampling", "workbench.adapters.eta", ""),
    ("3.3", "Mirostat 2.0 (target perplexity, surprise threshold)",
     "workbench.adapters.Mirostat workbench.adapters.mirostat", ""),
    ("3.3", "Mirostat as in the paper (Zipf-estimated adaptive top-k, Algorithm 1)",
     "workbench.adapters.MirostatV1 workbench.adapters.zipf_exponent", ""),
    ("3.3", "Basis-aware threshold sampling (LP solver)", "workbench.adapters.bat", ""),
    ("3.3", "Inference-time adapters: product with another model (p_θ·p_θ')^α",
     "workbench.control.product_of_experts workbench.control.poe_logits", ""),
    ("3.3", "Proxy tuning", "workbench.control.proxy_tuning", ""),
    ("3.3", "Lookahead adapters that decode several tokens ahead (NeuroLogic A*esque)", "",
     "not yet: no issue; FUDGE and RAD (§3.4) cover learned one-step lookahead"),
    # §3.4 Controlled generation
    ("3.4", "Classifier guidance (FUDGE, eq. 16)",
     "workbench.control.fudge workbench.control.fudge_logits", ""),
    ("3.4", "Generative (Bayes-rule) classifier for guidance",
     "workbench.scoring.BayesScorer", ""),
    ("3.4", "DExperts (expert / anti-expert, eq. 4 form)",
     "workbench.control.dexperts workbench.control.dexperts_logits", ""),
    ("3.4", "Contrastive decoding (eq. 49)",
     "workbench.control.contrastive workbench.control.contrastive_logits", ""),
    ("3.4", "Reward-augmented decoding (eq. 21)",
     "workbench.control.reward_augmented workbench.control.rad_logits", ""),
    ("3.4", "Training attribute classifiers and experts for control", "",
     f"{TRAINING}: the chapters use TinyWorld's ready-made experts and classifiers"),
    # §3.5 Constrained decoding
    ("3.5.1", "Constrained decoding by masking (driver)", "workbench.constraints.generate", ""),
    ("3.5.1", "Regular-expression constraints (regex -> DFA -> token index)",
     "workbench.constraints.regex_constraint workbench.constraints.compile_regex", ""),
    ("3.5.1", "JSON-schema constraints", "workbench.constraints.json_constraint "
     "workbench.constraints.schema_to_regex", ""),
    ("3.5.1", "Parser efficiency: a precomputed token index",
     "workbench.constraints.TokenIndex workbench.constraints.mask_logits", ""),
    ("3.5.1", "Context-free grammars (Lark grammar via llguidance)",
     "workbench.constraints.library.lark_grammar workbench.constraints.library.LibraryMatcher", ""),
    ("3.5.1", "Template speedups (fast-forward of forced tokens)",
     "workbench.constraints.generate", ""),
    ("3.5.1", "Token healing", "workbench.constraints.heal_prompt "
     "workbench.constraints.healing_candidates workbench.constraints.compare_healing", ""),
    ("3.5.1", "Minimally invasive constrained decoding (DOMINO subword alignment)", "",
     "not yet: no issue; token healing covers the prompt-boundary case"),
    ("3.5.2", "Lexical constraints: banned words and logit bias",
     "workbench.constraints.BanWords workbench.constraints.logit_bias", ""),
    ("3.5.2", "Lexically constrained beam search (grid / bank beam search)",
     "workbench.constraints.lexical_beam_search", ""),
    # §4.1 Chained meta-generators
    ("4.1", "Chaining prompted language models (eq. 2)", "workbench.meta.chain", ""),
    ("4.1", "Chain-of-thought", "workbench.meta.chain_of_thought", ""),
    ("4.1", "Problem decomposition (least-to-most)", "workbench.meta.least_to_most", ""),
    # §4.2 Parallel meta-generators
    ("4.2.1", "Best-of-N reranking (Def. 5)", "workbench.meta.best_of_n", ""),
    ("4.2.1", "Best-of-N in alignment: its policy and KL(π_BoN ‖ p) ≤ log N − (N−1)/N",
     "workbench.meta.bon_policy workbench.meta.bon_kl_bound workbench.meta.kl_divergence", ""),
    ("4.2.1", "Noisy-channel reranking", "workbench.meta.noisy_channel", ""),
    ("4.2.1", "LEVER: reranking programs with their execution results (issue 20)",
     "workbench.meta.lever workbench.meta.sandbox_executor workbench.meta.judge_verifier", ""),
    ("4.2.2", "Majority voting / self-consistency (eqs. 32-33)",
     "workbench.meta.majority_vote workbench.meta.self_consistency workbench.meta.plurality", ""),
    ("4.2.2", "Weighted majority voting (eq. 34) and its N → ∞ limit (eq. 35)",
     "workbench.meta.weighted_vote workbench.meta.scaling.marginal_accuracy", ""),
    ("4.2.2", "Confidence-weighted voting (self-consistency's normalized weighting)",
     "workbench.meta.sample_confidence", ""),
    ("4.2.2", "Minimum Bayes risk decoding (eqs. 36-38)",
     "workbench.meta.mbr workbench.meta.answer_match workbench.meta.overlap_f1", ""),
    ("4.2.2", "Generate-and-transform: LLM aggregation over the full responses (universal "
     "self-consistency)",
     "workbench.meta.universal_self_consistency workbench.meta.usc_prompt "
     "workbench.meta.parse_choice", ""),
    ("4.2.3", "Sequence-level rejection sampling", "workbench.meta.rejection_sample", ""),
    ("4.2.3", "Pseudo-rejection sampling (sampling-importance-resampling)",
     "workbench.meta.importance_resample", ""),
    # §4.3 Step-level search
    ("4.3", "Step-level beam search", "workbench.meta.stepwise_beam", ""),
    ("4.3", "Tree of Thoughts", "workbench.meta.tree_of_thought", ""),
    ("4.3", "Best-first search", "workbench.meta.best_first", ""),
    ("4.3", "REBASE (reward-balanced expansion)",
     "workbench.meta.rebase workbench.meta.allocate", ""),
    ("4.3", "Monte-Carlo tree search", "workbench.meta.mcts", ""),
    ("4.3", "Value functions: log-prob, PRM, outcome verifier, oracle",
     "workbench.meta.logprob_value workbench.meta.prm_value workbench.meta.verifier_value "
     "workbench.meta.oracle_value", ""),
    ("4.3", "Self-evaluation guided beam search: λ log p + (1-λ) Σ log C, C a step judge",
     "workbench.meta.self_evaluation_value", ""),
    ("4.3", "Particle filtering (sequential Monte Carlo over steps; issue 20)",
     "workbench.meta.particle_filter workbench.meta.smc.systematic_resample "
     "workbench.meta.smc.multinomial_resample workbench.meta.smc.effective_sample_size", ""),
    ("4.3", "Diverse verifier tree search, DVTS (issue 20)",
     "workbench.meta.dvts", ""),
    ("4.3", "Training process reward models and value functions", "",
     f"{TRAINING}: the workbench loads trained PRMs and verifiers"),
    # §4.4 Refinement
    ("4.4", "Refinement loop (eqs. 41-43)", "workbench.meta.refine", ""),
    ("4.4", "Prompted feedback (intrinsic self-feedback)", "workbench.meta.self_feedback", ""),
    ("4.4", "Environment feedback (step checker, calculator, code execution)",
     "workbench.meta.step_feedback workbench.meta.calculator_feedback "
     "workbench.meta.execution_feedback", ""),
    ("4.4", "Learned feedback (verifier-based, GLoRe-style)",
     "workbench.meta.verifier_feedback", ""),
    ("4.4", "Prompted refiners (Self-Refine, Reflexion-style re-asking)",
     "workbench.meta.reask workbench.meta.regenerate_from_error", ""),
    ("4.4", "Self-Refine: a written critique from the same model (eqs. 44-45; issue 20)",
     "workbench.meta.critique_feedback workbench.meta.self_refine", ""),
    ("4.4", "Reflexion: verbal reflections on failed attempts in a bounded memory (issue 20)",
     "workbench.meta.reflexion workbench.meta.feedback_evaluator", ""),
    ("4.4", "Learned refiners (self-correction corrector)", "workbench.meta.corrector", ""),
    ("4.4", "Does refinement work? Resampling baseline", "workbench.meta.resample", ""),
    ("4.4", "Training refiners with RL (e.g. SCoRe, RISE)", "",
     f"{TRAINING}: the corrector is trained once offline (scripts/train_corrector.py); "
     "RL training of refiners is not taught"),
    # §5 External information
    ("5.1", "Small and large models: cascades", "workbench.meta.cascade", ""),
    ("5.2", "Calling an external tool (calculator)",
     "workbench.meta.tool_generate workbench.tools.calculator", ""),
    ("5.2", "Observations from an environment (sandboxed code execution)",
     "workbench.tools.run_python", ""),
    ("5.2", "Scalar feedback models: outcome / process reward models, LLM judges",
     "workbench.scoring.VerifierScorer workbench.scoring.ProcessScorer "
     "workbench.reward_models.OutcomeRewardModel workbench.reward_models.ProcessRewardModel "
     "workbench.reward_models.LLMJudge", ""),
    ("5.2", "Retrieval augmentation (information conveyed in prompts)", "",
     "not yet: no issue; the workbench has no retriever or document store"),
    # §6 Token cost
    ("6", "Token cost of meta-generators (Table 5)", "workbench.budget.table5", ""),
    ("6.1", "Token budgets", "workbench.budget.Budget", ""),
    ("6.2", "Scaling the token budget: accuracy vs N curves", "workbench.meta.scaling.curve", ""),
    ("6.3", "Adaptive compute: early-stopping voting", "workbench.meta.adaptive_vote", ""),
    ("6.4", "Compute-optimal inference: a smaller model sampled more at equal FLOPs (eq. 52)",
     "workbench.efficiency.parameter_count workbench.meta.scaling.curve", ""),
    # §7 Speeding up generation
    ("7.1", "Roofline: compute- vs memory-bound, arithmetic intensity",
     "workbench.efficiency.roofline workbench.efficiency.forward_cost", ""),
    ("7.2", "KV cache: prefill and decode steps (eqs. 55-56)",
     "workbench.efficiency.kv_cache_bytes workbench.efficiency.timed_greedy", ""),
    ("7.2", "Multi-query and grouped-query attention",
     "workbench.efficiency.with_kv_heads workbench.efficiency.attention_variants", ""),
    ("7.2", "Model compression: quantisation", "workbench.efficiency.quantize_int8", ""),
    ("7.2", "KV-cache quantisation (KIVI: min-max codes, keys per channel, values per token)",
     "workbench.efficiency.with_quantized_kv workbench.efficiency.quantize_minmax", ""),
    ("7.2", "Model compression: distillation", "", f"{TRAINING}: it trains a new model"),
    ("7.2", "Hardware-aware implementation (fused / SDPA attention)",
     "workbench.efficiency.with_attention", ""),
    ("7.2", "Speculative sampling with a draft model",
     "workbench.efficiency.speculative_decode workbench.efficiency.speculative_sampling_step "
     "workbench.efficiency.greedy_verify_step", ""),
    ("7.2", "Speculative speed-up: expected tokens per round and walltime",
     "workbench.efficiency.expected_tokens_per_round workbench.efficiency.expected_speedup", ""),
    ("7.2", "Token-tree speculative decoding (SpecInfer, Sequoia: multi-step speculative "
     "sampling)", "workbench.efficiency.tree_speculative_decoding "
     "workbench.efficiency.multi_draft_step", ""),
    ("7.2", "Prompt lookup decoding (copied drafts)",
     "workbench.efficiency.prompt_lookup_decode workbench.efficiency.PromptLookupDrafter", ""),
    ("7.2", "Lookahead decoding (Jacobi iteration, n-gram pool, no draft model)",
     "workbench.efficiency.lookahead_decoding", ""),
    ("7.2", "Self-speculation with an early-exit draft",
     "workbench.efficiency.truncated_draft", ""),
    ("7.2", "Tree drafts from extra decoding heads (Medusa)",
     "workbench.efficiency.medusa_decoding workbench.efficiency.MedusaHeads", ""),
    ("7.3", "Batching: throughput vs batch size", "workbench.efficiency.throughput "
     "workbench.efficiency.ms_per_token", ""),
    ("7.3", "Prefix sharing across a meta-generator's calls (radix cache)",
     "workbench.efficiency.PrefixCache", ""),
    ("7.3", "Continuous batching with a paged KV cache (Orca, vLLM/PagedAttention) vs static "
     "batching; latency vs throughput over arrival rates",
     "workbench.efficiency.continuous_batching workbench.efficiency.static_batching "
     "workbench.efficiency.PagedKVAllocator workbench.efficiency.simulate_serving", ""),
]

# Names that other objects also have (``tokenizer.decode``): searched as ``module.name``, which
# ``from workbench.module import name`` also provides.
CALLS = {"workbench.decoding.sample": "decoding.sample",
         "workbench.decoding.decode": "decoding.decode",
         "workbench.constraints.generate": "C.generate constraints.generate",
         "workbench.meta.chain": "meta.chain", "workbench.adapters.chain": "adapters.chain",
         "workbench.meta.resample": "meta.resample", "workbench.meta.corrector": "meta.corrector",
         "workbench.meta.scaling.curve": "scaling.curve"}

MODULES = ["decoding", "degeneration", "adapters", "scoring", "budget", "control.generators",
           "control.rules", "constraints.*", "meta.*", "tools.*", "efficiency.*"]

# Survey-citing public names that are not algorithms of their own (reason beside each).
NOT_ALGORITHMS = {}   # none at present: e.g. {"workbench.x.helper": "a step of y, not an algorithm"}

SURVEY_CITE = re.compile(r"\beqs?\.\s*\(?\d|§", re.I)


def resolve(path):
    """The object a dotted path names (the module's attribute wins over a submodule)."""
    parent, _, name = path.rpartition(".")
    return getattr(importlib.import_module(parent), name)


def imports(path):
    try:
        resolve(path)
        return True
    except (ImportError, AttributeError):
        return False


def _names(folder, glob, calls):
    """{file: every dotted suffix of the names it calls (``calls``) or mentions}."""
    pattern = r"(?<![\w.])([A-Za-z_][\w.]*)" + (r"\s*\(" if calls else "")
    out = {}
    for p in sorted((ROOT / folder).glob(glob)):
        if p.name != "test_coverage.py":
            text = p.read_text(encoding="utf-8")
            imported = re.findall(r"from\s+([\w.]+)\s+import\s+\(?([\w\s,]+)", text)
            words = re.findall(pattern, text) + [  # from m import a, b: the names m.a, m.b
                f"{m}.{n}" for m, ns in imported for n in re.findall(r"\w+", ns)]
            if calls:   # a chapter that shows a function's source teaches it too
                shown = [w.split(".") for args in re.findall(r"show_source\(([^)]*)\)", text)
                         for w in re.findall(r"[A-Za-z_][\w.]*", args)]
                words += [".".join(w[:i]) for w in shown for i in range(1, len(w) + 1)]  # C.m: C
            parts = (w.split(".") for w in set(words))
            out[p.name] = {".".join(w[i:]) for w in parts for i in range(len(w))}
    return out


def _hits(files, names):
    return sorted(f for f, found in files.items() if found & names)


def derive():
    """Each row with its chapters and tests (from the code), and a list of problems."""
    chapters = _names("notebooks/src", "[0-9][0-9]_*.py", calls=True)
    tests = _names("tests", "test_*.py", calls=False)
    rows, problems = [], []
    for section, name, paths, status in ROWS:
        paths = paths.split()
        ok = [p for p in paths if imports(p)]
        if status.startswith("planned") and ok:
            problems.append(f"{ok[0]} imports now: drop the 'planned' marker of {name!r}")
        elif not status and len(ok) < len(paths):
            problems.append(f"{name!r}: {sorted(set(paths) - set(ok))} do not import")
        if status and not status.startswith(("planned", "not yet", "out of scope")):
            problems.append(f"{name!r}: unknown status {status!r}")
        names = {n for p in ok for n in CALLS.get(p, p.rpartition(".")[2]).split()}
        used, tested = _hits(chapters, names), _hits(tests, names)
        if not status and not tested:
            problems.append(f"{name!r}: no test mentions {paths[0]}")
        rows.append(dict(section=section, name=name, paths=paths, status=status,
                         chapters=[c[:2] for c in used], tests=tested))
    listed = {id(resolve(p)) for r in rows if not r["status"] for p in r["paths"]}
    for cited in survey_citing():
        if id(resolve(cited)) not in listed and cited not in NOT_ALGORITHMS:
            problems.append(f"{cited} cites the survey but has no coverage row")
    return rows, problems


def survey_citing():
    """Dotted paths of the public functions and classes in `MODULES` citing the survey."""
    names = []
    for spec in MODULES:
        pkg = spec.removesuffix(".*").replace(".", "/")
        mods = ([f"workbench.{spec[:-2]}.{p.stem}" for p in sorted((ROOT / "workbench" / pkg)
                 .glob("*.py")) if p.stem != "__init__"] if spec.endswith(".*")
                else [f"workbench.{spec}"])
        for mod_name in mods:
            mod = importlib.import_module(mod_name)
            for attr, obj in vars(mod).items():
                if (not attr.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                        and obj.__module__ == mod_name
                        and SURVEY_CITE.search(inspect.getdoc(obj) or "")):
                    names.append(f"{mod_name}.{attr}")
    return names


def kind(row):
    if row["status"]:
        return row["status"].split(":")[0]
    if row["chapters"]:
        return "implemented, taught and tested"
    return PARTLY


def render(rows):
    kinds = ["implemented, taught and tested", PARTLY, "planned", "not yet", "out of scope"]
    out = ["# Survey coverage", "",
           "Which algorithms, procedures and claims of the survey *From Decoding to "
           "Meta-Generation* (Welleck et al., 2024) the workbench implements, where a chapter "
           "teaches them and which tests exercise them. **Generated: do not edit.** The rows "
           "are `ROWS` in `scripts/coverage.py`; the chapters (notebooks that call the "
           "function or show its source with `show_source`) and tests (test files that name it) "
           "are found in the code by "
           "`python scripts/coverage.py`, and `tests/test_coverage.py` fails when this page "
           "is stale, a path does not import, or a function whose docstring cites the survey "
           "has no row. A *planned* row names a function being added in parallel: the test "
           "passes only while it does not import, so whoever merges it drops the marker.", "", "## Summary", "", "| status | rows |", "|---|---|"]
    out += [f"| {k} | {sum(kind(r) == k for r in rows)} |" for k in kinds]
    sections = {}
    for r in rows:
        sections.setdefault(r["section"].split(".")[0], []).append(r)
    for top, group in sections.items():
        out += ["", f"## §{top}", "", "| § | algorithm | function | chapters | tests |",
                "|---|---|---|---|---|"]
        for r in group:
            func = "<br>".join(f"`{p.removeprefix('workbench.')}`" for p in r["paths"])
            if r["status"]:
                func = "<br>".join(filter(None, [func, f"*{r['status'].split(':')[0]}*"]))
            tests = ", ".join(t.removeprefix("test_").removesuffix(".py") for t in r["tests"])
            name = r["name"].replace("|", "\\|")
            out.append(f"| {r['section']} | {name} | {func} | "
                       f"{', '.join(r['chapters']) or '—'} | {tests or '—'} |")
    out += ["", "## Deliberately out of scope", "",
            "The workbench is about inference: it takes the model p_θ as given. These are "
            "left out, and why:", ""]
    out += [f"- **{r['name']}** (§{r['section']}): {r['status'].split(':', 1)[1].strip()}"
            for r in rows if r["status"].startswith("out of scope")]
    out += ["", "## Not yet", ""]
    out += [f"- **{r['name']}** (§{r['section']}): {r['status'].split(':', 1)[1].strip()}"
            for r in rows if r["status"].startswith(("not yet", "planned"))]
    return "\n".join(out) + "\n"


def main(argv):
    rows, problems = derive()
    text = render(rows)
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            problems.append(f"{OUT.relative_to(ROOT)} is stale: run python scripts/coverage.py")
    else:
        OUT.write_text(text, encoding="utf-8")
    print("\n".join(problems) or "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
