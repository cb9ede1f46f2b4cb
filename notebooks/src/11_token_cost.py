# %% [markdown]
# # 11 · Token cost: budgets, compute-matched comparisons, small vs large models
#
# {badges}
#
# **What you will learn**
# - how to read the bill of a meta-generator: input, output and external tokens (survey §6.1,
#   **Table 5**), plus what a machine actually computes (forward passes, token positions);
# - to reason with Table 5 *before* running anything: when step-level search is cheaper than
#   best-of-N, when refinement is cheaper than sampling (§6.1);
# - why comparisons must be **compute-matched** (§6.2–6.4): accuracy against tokens spent, on
#   the same problems, for greedy decoding, sampling, voting, best-of-N with a verifier,
#   step-level search and refinement — and that **the best method depends on the budget**;
# - **compute-optimal inference** (eq. 52): a smaller model sampled more often against a larger
#   one sampled less, at equal FLOPs (Wu et al., 2024), and two ways to spend fewer tokens for
#   the same answer (§6.3).
#
# Runs in about 20 s on a 2-core CPU (the comparison is precomputed by
# `scripts/sweep_compute.py`; a test re-runs a slice of it).
#
# **Your own model and task.** `MODEL` takes any causal LM (a local directory or a Hub id) and
# `TASK` any task of `workbench.tasks` (`"gsm8k"`, `"math"`, or your own file, see
# `docs/real-models.md`). Table 5 and the measured bill run on every task; off TinyWorld your
# model, asked as a judge (`reward_models.LLMJudge(lm)`), stands in for TinyWorld's verifier
# and PRM, and refinement takes the judge's verdict as feedback (the calculator and
# self-feedback re-do TinyWorld's one-operation lines). The compute-matched sweeps are
# TinyWorld's, committed: they read the same whatever `MODEL` and `TASK` are.

# %%
# SETUP

# %%
MODEL = "tinyworld"   # or a local directory / HF causal-LM id
TASK = "tinyworld-arithmetic"   # or "gsm8k", "math", ... (workbench.tasks; see docs/real-models.md)
SEED = 0

# %%
import json
import numpy as np
import workbench as wb
from workbench import adapters, budget, meta, scoring
from workbench import reward_models as rm
from workbench.paths import data_dir
from widgets import compute

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # its verifier, PRM and one-operation lines
if TINYWORLD:
    verifier, prm = wb.load("tinyworld-verifier"), wb.load("tinyworld-prm")
else:   # TinyWorld's verifier and PRM know only its arithmetic: your model judges instead
    verifier = prm = rm.LLMJudge(lm)
problem = task.problem("47+8*6-25") if TINYWORLD else task.problems[0]
prompt = fmt.prompt(problem)
print(prompt + "(correct answer:", problem.reference, ")")

# %% [markdown]
# ## Table 5: a budget you can compute before running
#
# With T_in prompt tokens and T output tokens per generator call, Table 5 predicts each
# method's tokens: best-of-N costs T_in·N input and T·N output tokens, plus N·C_s external
# tokens when a scoring model reads each candidate (C_s ≈ T_in + T for a model that re-reads
# prompt and output); step-level beam search with N_b kept states, N_e expansions and S steps
# of T_s tokens costs T_s·N_b·N_e·S output tokens and calls the scorer N_b·N_e·S times;
# refinement with N_r rounds costs T·(1 + N_r) output tokens plus N_r·C_z for the feedback.
# `budget.table5` is the table as a function. Move the sliders:

# %%
compute.Table5Explorer(t_in=15, t=60)

# %% [markdown]
# Two of the survey's worked examples (§6.1), checked with the table:

# %%
T_in, T, S = 15, 60, 5
beam = budget.table5("step-level beam (scorer)", T_in, T, n_b=16, n_e=64, s=S, c_s=T_in + T)
bon = budget.table5("reranking", T_in, T, n=1024, c_s=T_in + T)
print(f"beam 16 x 64 vs best-of-1024: output {beam.output_tokens:.0f} vs {bon.output_tokens:.0f},"
      f" external {beam.external_tokens:.0f} vs {bon.external_tokens:.0f} (S = {S} times more)")
sf = budget.table5("refinement (self-feedback)", T_in, T, n_r=3)
b8 = budget.table5("best-of-n (log-p)", T_in, T, n=8)
print(f"3 self-feedback refinements: {sf.output_tokens:.0f} output tokens = 7T;"
      f" best-of-8: {b8.output_tokens:.0f}")

# %% [markdown]
# ## The measured bill
#
# Every `workbench` result carries a `Cost` with Table 5's three columns and two more that a
# machine cares about: **forward passes** (sequential model calls, which set the latency) and
# **computed tokens** (positions actually run through a model; the N samples of best-of-N
# share one computed prompt, and a KV cache never recomputes a prefix). Six methods on one
# problem (off TinyWorld five: the calculator and self-feedback re-do TinyWorld's
# one-operation lines `a op b=c`, so refinement there takes the judge's verdict instead):

# %%
temp = [lambda s: adapters.temperature(s, 0.8)]
sampler = meta.LMGenerator(lm, stop=fmt.stop, adapters=temp, max_new_tokens=160)
stepper = meta.LMStepper(lm, adapters=temp, max_step_tokens=40, answer_marker=fmt.marker.strip())
v = scoring.VerifierScorer(verifier)
redo = meta.regenerate_from_error(sampler)
runs = {
    "greedy": meta.majority_vote(prompt, meta.LMGenerator(lm, stop=fmt.stop, greedy=True), 1,
                                 answer_fn=fmt.answer),
    "majority vote N=8": meta.majority_vote(prompt, sampler, 8, answer_fn=fmt.answer, seed=SEED),
    "best-of-8 (verifier)": meta.best_of_n(prompt, sampler, v, 8, seed=SEED),
    "beam 2x2 (PRM)": meta.stepwise_beam(prompt, stepper, meta.prm_value(prm), 2, 2,
                                         max_steps=10, seed=SEED),
}
if TINYWORLD:
    runs["refine (calculator)"] = meta.refine(
        prompt, sampler, meta.calculator_feedback(answer_fn=fmt.answer), redo, 3, seed=SEED)
    runs["refine (self-feedback)"] = meta.refine(prompt, sampler, meta.self_feedback(lm), redo,
                                                 3, seed=SEED)
else:
    print(f"the calculator and self-feedback check TinyWorld's one-operation lines, which "
          f"{task.name} has not; refinement here stops when the judge says yes")
    runs["refine (judge)"] = meta.refine(prompt, sampler, meta.verifier_feedback(verifier), redo,
                                         3, seed=SEED)
print(f"{'':24s}{'answer':>7s}{'input':>7s}{'output':>7s}{'extern':>7s}{'passes':>7s}"
      f"{'computed':>9s}")
for name, r in runs.items():
    c = r.cost
    print(f"{name:24s}{str(fmt.answer(r.text)):>7s}{c.input_tokens:7d}{c.output_tokens:7d}"
          f"{c.external_tokens:7d}{c.forward_passes:7d}{c.computed_tokens:9d}")
compute.cost_figure([{"name": k, **r.cost.as_dict()} for k, r in runs.items()],
                    "Tokens billed per method on one problem")

# %% [markdown]
# Things to notice:
# - best-of-8 and majority vote generate the same samples (same seed), so they bill the same
#   input and output; the verifier adds external tokens, voting adds none;
# - sampling 8 in one batch takes about as many **forward passes** as one sample: the passes
#   are as many as the longest sample has tokens. Step-level search and refinement are
#   sequential — every step or round waits for the previous one;
# - **computed** tokens are far below input + output: the prompt is computed once for the
#   batch, and step-level search extends one KV cache instead of re-reading its prefix.
#
# ## Compute-matched comparison (§6.2–6.4)
#
# Comparing methods at their favourite settings says little: a method that spends ten times
# more tokens should be better. The sweep (TinyWorld's target, draft, verifier and PRM,
# committed by `scripts/sweep_compute.py`) ran every method at a few settings on the same 48
# held-out TinyWorld problems (three or more operations, two-digit numbers; the same seed per
# problem in every method) and recorded accuracy and the Table 5 bill per problem.

# %%
sweep = json.loads((data_dir() / "results" / "compute_sweep.json").read_text())
target_methods = [m for m in dict.fromkeys(s["method"] for s in sweep["summary"])
                  if "draft" not in m and not m.startswith("code")]
rows = [s for s in sweep["summary"] if s["method"] in target_methods]
print(f"{len(sweep['config']['problems'])} problems;"
      f" {len(rows)} (method, setting) pairs on the target")
for s in sorted(rows, key=lambda s: s["total_tokens"]):
    print(f"{s['method']:>28s} {s['setting']:>18s}  accuracy {s['accuracy']:.3f}"
          f"  tokens {s['total_tokens']:7.0f} (external {s['external_tokens']:6.0f})")
compute.pareto_figure(rows, "total_tokens", title="Accuracy vs tokens billed per problem")

# %% [markdown]
# The dashed line is the **Pareto front**: settings that no other setting beats on both
# accuracy and cost. In TinyWorld one method sits on it almost alone: refinement with the
# **calculator** as feedback (chapter 09) — an exact external signal (§5.2) that re-checks
# every step for a few tokens. The expensive search methods (step-level beam, REBASE, MCTS)
# are all dominated: they buy their accuracy with many scorer tokens, as Kapoor et al. (2024)
# and Wu et al. (2024) found for simple baselines against tree search (§6.4).
#
# Without an exact tool the answer to "which method is best?" depends on the budget:

# %%
no_tool = [r for r in rows if "calculator" not in r["method"]]
budgets = [100, 200, 500, 2000, 5000, 10000]
for b in budgets:
    best = compute.best_at_budget(no_tool, b)
    print(f"at most {b:6d} tokens/problem:", "nothing fits" if best is None else
          f"{best['method']} {best['setting']} (accuracy {best['accuracy']:.3f})")
front = compute.pareto_front(no_tool, "total_tokens")
print("\nPareto front without the calculator:", [f"{r['method']} {r['setting']}" for r in front])
compute.pareto_figure(no_tool, "total_tokens", title="Without the calculator")

# %% [markdown]
# With little to spend, **greedy decoding** is the best buy (one sample at temperature 0.8 is
# worse, and so is voting over only four); with more, **majority voting** over 16 samples
# overtakes it. Paying the verifier to read the same 16 samples buys little here: as weights
# in a vote it gains one problem of 48 over plain voting (within noise) for three times the
# tokens, and as an argmax (best-of-16) it falls below plain voting (chapter 10 shows why). The
# ranking of methods is a function of the budget, which is why a comparison at one setting
# per method says little.
#
# Counting only **generated** tokens, as many papers do, hides the scorer's share (§6.1:
# "one must also account for ... external information"). Step-level search generates about
# as many tokens as best-of-N with the same N_b·N_e, but bills two to three times as much:
# every step is a new call that re-sends the prompt and the steps so far (input tokens), and
# the PRM reads every partial solution — twice, like the verifier, once per class code
# (external tokens). In best-of-N the verifier's reading is two thirds of the bill:

# %%
get = lambda m, s: next(r for r in sweep["summary"] if r["method"] == m and r["setting"] == s)
for m, s in (("best_of_n (verifier)", "N=4"), ("stepwise_beam (PRM)", "Nb=2, Ne=2"),
             ("best_of_n (verifier)", "N=16"), ("stepwise_beam (PRM)", "Nb=4, Ne=4")):
    r = get(m, s)
    share = r["external_tokens"] / r["total_tokens"]
    print(f"{m:>22s} {s:>11s}  generated {r['output_tokens']:6.0f}   billed"
          f" {r['total_tokens']:6.0f}   external share {share:.2f}")

# %% [markdown]
# ## Compute-optimal inference: a small model, more samples (§6.4, eq. 52)
#
# Eq. 52 chooses the model size M, the tokens T and the meta-generator g that minimise the
# error at a compute budget C. FLOPs make different model sizes comparable: a forward pass
# costs about 2·M FLOPs per computed token. TinyWorld's draft has about a tenth of its
# target's parameters, so at equal FLOPs it can draw roughly ten times as many samples (the
# sweep's numbers):

# %%
params = sweep["config"]["parameters"]
print({k: f"{v / 1e6:.2f}M" for k, v in params.items()})
pick = {"greedy": "target", "majority_vote": "target", "greedy (draft)": "draft",
        "majority_vote (draft)": "draft"}
sizes = [dict(s, method=f"{s['method'].split(' (')[0]} ({pick[s['method']]})")
         for s in sweep["summary"] if s["method"] in pick]
for s in sorted(sizes, key=lambda s: s["target_flops"]):
    print(f"{s['method']:>24s} {s['setting']:>6s}  accuracy {s['accuracy']:.3f}"
          f"  GFLOPs/problem {s['target_flops'] / 1e9:7.2f}")
compute.pareto_figure(sizes, "target_flops", title="Draft vs target at equal FLOPs")

# %% [markdown]
# Here the answer is clear-cut: the draft almost never solves these problems (2% greedy), and
# its votes are never right, because voting converges to the answer the model believes most
# (eq. 35) — no N rescues a model whose most likely answer is wrong. The target wins at every
# FLOP budget. Wu et al. (2024) found the smaller model the better buy at most budgets, but
# their small models already solved a fair share of the problems: eq. 52's optimum depends
# on where each model's accuracy curve starts, not only on its price per token.
#
# ## Spending less for the same answer (§6.3)
#
# Two ways to cut the bill: **adaptive voting** stops sampling once the majority is decided
# (Aggarwal et al., 2023), and a **cascade** asks the cheap model first and routes a question
# to the expensive one only when the cheap samples disagree (FrugalGPT-style).

# %%
for m, s in (("majority_vote", "N=16"), ("adaptive_vote", "max 16, beta 0.95"),
             ("majority_vote", "N=4"), ("cascade draft->target", "4 draft, 4 target")):
    r = get(m, s)
    extra = (f", samples {r['samples']:.1f}" if "samples" in r else "") + \
        (f", routed {r['routed']:.0%}" if "routed" in r else "")
    print(f"{m:>22s} {s:>18s}  accuracy {r['accuracy']:.3f}  output tokens"
          f" {r['output_tokens']:6.0f}  GFLOPs {r['target_flops'] / 1e9:6.2f}{extra}")

# %% [markdown]
# Adaptive voting stops after about ten samples on average instead of sixteen, giving up a
# little accuracy for a third fewer tokens. The cascade only pays off when the cheap model is
# often confidently right: our draft never agrees with itself, so every question is routed to
# the target and the draft's tokens are spent for nothing — the cascade costs more than the
# target's own majority vote over four samples.
#
# ## Exercises
#
# 1. With T_s·S = T, step-level beam search with N_b = 4 generates fewer output tokens than
#    best-of-64 when N_b·N_e < N. Using `budget.table5`, find the largest N_e for which it is
#    strictly cheaper. Store it in `max_expansions`.
# 2. Which (method, setting) of the sweep is the most accurate within 500 tokens billed per
#    problem? Store `"method setting"` in `best_500`.
# 3. How many times the target's greedy FLOPs does majority voting with 64 draft samples cost?
#    Store the ratio in `flops_ratio`.

# %%
bon64 = budget.table5("best-of-n (log-p)", 15, 60, n=64).output_tokens
max_expansions = max(e for e in range(1, 65) if budget.table5(
    "step-level beam (log-p)", 15, 60, n_b=4, n_e=e, s=5).output_tokens < bon64)
b = compute.best_at_budget(rows, 500)
best_500 = f"{b['method']} {b['setting']}"
flops_ratio = get("majority_vote (draft)", "N=64")["target_flops"] / get("greedy", "-")[
    "target_flops"]

# %%
assert max_expansions == 15
fits = [r for r in rows if r["total_tokens"] <= 500]
assert max(r["accuracy"] for r in fits) == next(
    r["accuracy"] for r in fits if f"{r['method']} {r['setting']}" == best_500)
draft_64 = [r for r in sweep["rows"] if r["method"] == "majority_vote (draft)"
            and r["setting"] == "N=64"]
greedy = [r for r in sweep["rows"] if r["method"] == "greedy"]
assert abs(flops_ratio - sum(r["target_flops"] for r in draft_64)
           / sum(r["target_flops"] for r in greedy)) < 1e-9
print("All three answers are right.")
