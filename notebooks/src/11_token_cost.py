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
#   step-level search and refinement — and what 104 problems can and cannot tell about them:
#   costs are exact; some accuracy differences are resolved (voting, REBASE and the calculator
#   beat greedy decoding; voting beats best-of-N with a verifier), and many are not;
# - **compute-optimal inference** (eq. 52): a smaller model sampled more often against a larger
#   one sampled less, at equal FLOPs (Wu et al., 2024), and two ways to spend fewer tokens for
#   the same answer (§6.3).
#
# **Prerequisites**: chapter 07 (best-of-N, voting), chapter 08 (step-level search) and
# chapter 09 (refinement), whose methods this chapter prices; chapter 10 for the verifier and
# the PRM. **Student time**: 45–60 minutes with the exercises.
#
# Survey sections: §6.1 (Table 5), §6.2–6.4 (eq. 52). Runs in under a minute on a 2-core CPU
# (50 s measured while the machine ran other builds; the comparison is precomputed by
# `scripts/sweep_compute.py`, and a test re-runs a slice of it).
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
from workbench import adapters, budget, meta, scoring, stats
from workbench import reward_models as rm
from workbench.paths import data_dir
from workbench.tinyworld import formats
from widgets import checks, compute
from widgets.source import show_source

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # its verifier, PRM and one-operation lines
CLAIMS = TINYWORLD and formats.speaks_tinyworld(lm)   # the prose's numbers are TinyWorld's
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
# With $T_\text{in}$ prompt tokens and $T$ output tokens per generator call, Table 5 (§6.1)
# predicts each method's tokens. Its rows, as formulas (input; output; external):
#
# $$\begin{array}{lccc}
# \text{method} & \text{input} & \text{output} & \text{external} \\ \hline
# \text{reranking (best-of-}N\text{, a scorer)} & T_\text{in} N & T N & N C_s \\
# \text{best-of-}N\text{ (log-p), self-consistency} & T_\text{in} N & T N & 0 \\
# \text{best-of-}N\text{ (LLM sequence scorer)} & T_\text{in} N & T N & N (T_\text{in} + T + 1) \\
# \text{weighted self-consistency} & T_\text{in} N & T N & N C_s \\
# \text{step-level beam (scorer)} & T_\text{in} N_b N_e S & T_s N_b N_e S & N_b N_e S\, C_s \\
# \text{step-level DFS (scorer)} & T_\text{in} N_e S & T_s N_e S & N_e S\, C_s \\
# \text{refinement (general)} & T_\text{in} (1 + N_r) & T (1 + N_r) & N_r C_z \\
# \text{refinement (self-feedback)} & T_\text{in} + (2 T_\text{in} + T) N_r & T + 2 T N_r & 0
# \end{array}$$
#
# $C_s$ is the tokens of one call of a scoring model ($C_s \approx T_\text{in} + T$ for a
# model that re-reads prompt and output); step-level search keeps $N_b$ states, expands each
# $N_e$ times, for $S$ steps of $T_s$ tokens ($T_s S \ge T$), and Table 5 charges every scorer
# call a full sequence; refinement runs $N_r$ rounds, each getting $C_z$ tokens of feedback.
# `budget.table5` is the table as a function; the rows are one dictionary:

# %%
import inspect
_lines = inspect.getsource(budget).split("\n")
_start = next(i for i, ln in enumerate(_lines) if ln.startswith("TABLE5 = {"))
_end = next(i for i in range(_start, len(_lines)) if _lines[i].startswith("}"))
from IPython.display import Markdown, display
display(Markdown("`workbench.budget.TABLE5` (workbench/budget.py)\n\n```python\n"
                 + "\n".join(_lines[_start:_end + 1]) + "\n```"))
show_source(budget.table5)

# %% [markdown]
# Move the sliders:

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
# Both worked examples come out as the survey states them: beam search with $N_b = 16$,
# $N_e = 64$ generates exactly as many output tokens as best-of-1024 ($N_b N_e = N$) but calls
# the scorer $S$ times as often, and three self-feedback refinements cost $7T$ output tokens,
# fewer than best-of-8's $8T$.

# %% tags=["claim"]
assert beam.output_tokens == bon.output_tokens == 61440
assert beam.external_tokens == S * bon.external_tokens
assert sf.output_tokens == 7 * T < b8.output_tokens == 8 * T

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
# - for sampling and search, **computed** tokens are below input + output: the N samples share
#   one computed prompt (majority vote: computed = T_in + the output tokens), and step-level
#   search, which bills its prompt and steps so far as input at every step, extends one KV
#   cache instead of re-reading them — there computed tokens are a small fraction of the bill.

# %% tags=["claim"]
if CLAIMS:
    vote, bo8, greedy_run = runs["majority vote N=8"].cost, runs["best-of-8 (verifier)"].cost, \
        runs["greedy"].cost
    assert (vote.input_tokens, vote.output_tokens) == (bo8.input_tokens, bo8.output_tokens)
    assert vote.external_tokens == 0 < bo8.external_tokens
    assert abs(vote.forward_passes - greedy_run.forward_passes) <= 0.1 * greedy_run.forward_passes
    for name in ("beam 2x2 (PRM)", "refine (self-feedback)"):     # sequential: more passes
        assert runs[name].cost.forward_passes > vote.forward_passes
    assert vote.computed_tokens == len(lm.encode(prompt)) + vote.output_tokens
    beam_c = runs["beam 2x2 (PRM)"].cost                             # "a small fraction"
    assert beam_c.computed_tokens < 0.3 * (beam_c.input_tokens + beam_c.output_tokens)

# %% [markdown]
# ### A hard budget
#
# Table 5 predicts a bill; a `budget.Budget` enforces one. Give a search a limit on any `Cost`
# field and it checks every planned step against what is left: it shrinks a request it cannot
# pay for in full, stops when nothing more can be afforded (and returns the best state it has,
# finished or not), and refuses to start when the limit cannot pay for a single step. Here is the
# same PRM beam (2×2, same seed) with half its output tokens, then with a limit below one step's
# bound (`max_step_tokens` = 40):

# %%
show_source(budget.Budget)
beam_full = runs["beam 2x2 (PRM)"]
cap = budget.Budget(output_tokens=beam_full.cost.output_tokens // 2)
capped = meta.stepwise_beam(prompt, stepper, meta.prm_value(prm), 2, 2, max_steps=10, seed=SEED,
                            budget=cap)
print(f"limit {cap.limits}: spent {cap.spent.output_tokens} output tokens, stopped by "
      f"{capped.info['stopped']!r}, answer {fmt.answer(capped.text)}")
print("   its best state:", repr(capped.text))
try:
    meta.stepwise_beam(prompt, stepper, meta.prm_value(prm), 2, 2, max_steps=10, seed=SEED,
                       budget=budget.Budget(output_tokens=39))
    refused = None
except budget.BudgetExceeded as e:
    refused = str(e)
print("limit of 39 output tokens:", refused)

# %% [markdown]
# On TinyWorld's problem, with half the tokens the beam stops mid-solution: its best state has
# no answer yet, so a hard cap is a promise about the bill, not about the answer. (A search that
# finishes within the limit stops as "done".) The budget's own ledger and the result's cost
# agree to the token.

# %% tags=["claim"]
# any model: the capped run stays within its limit and bills what the budget recorded; a limit
# below one step is refused before anything is spent
assert capped.cost.output_tokens <= cap.limits["output_tokens"] < beam_full.cost.output_tokens
assert capped.cost == cap.spent and capped.info["stopped"] in ("budget", "done")
assert refused is not None and "cannot pay for a single step" in refused
if CLAIMS:   # TinyWorld's target: "stops mid-solution: its best state has no answer yet"
    assert capped.info["stopped"] == "budget"
    assert fmt.answer(capped.text) is None and fmt.answer(beam_full.text) is not None
print("The budget holds.")

# %% [markdown]
# ## Compute-matched comparison (§6.2–6.4)
#
# Comparing methods at their favourite settings says little: a method that spends ten times
# more tokens should be better. The sweep (TinyWorld's target, draft, verifier and PRM,
# committed by `scripts/sweep_compute.py`) ran every method at a few settings on the same 104
# held-out TinyWorld problems (the `hard` set of chapter 00: the first 13 problems of each cell
# with three to six operations on two- or three-digit numbers, the set of chapters 08 and 09;
# the same seed per problem in every method) and recorded accuracy and the Table 5 bill per
# problem.

# %%
sweep = json.loads((data_dir() / "results" / "compute_sweep.json").read_text())
target_methods = [m for m in dict.fromkeys(s["method"] for s in sweep["summary"])
                  if "draft" not in m and not m.startswith("code")]
rows = [s for s in sweep["summary"] if s["method"] in target_methods]
hits = stats.hits_by(sweep["rows"], "method", "setting")
print(f"{len(sweep['config']['problems'])} problems;"
      f" {len(rows)} (method, setting) pairs on the target; accuracy with its 95 % Wilson interval")
for s in sorted(rows, key=lambda s: s["total_tokens"]):
    print(f"{s['method']:>28s} {s['setting']:>18s}  {stats.accuracy(hits[s['method'], s['setting']])}"
          f"  tokens {s['total_tokens']:7.0f} (external {s['external_tokens']:6.0f})")
compute.pareto_figure(rows, "total_tokens", title=f"Accuracy (95 % Wilson interval) vs tokens "
                      f"billed per problem, {len(sweep['config']['problems'])} problems")

# %% [markdown]
# Before reading a ranking off this figure, look at the error bars: on 104 problems one
# problem is about 1 point, and every interval is about ±9 points wide. Methods run on the *same*
# problems, so the fair test of "A beats B" is paired (`stats.paired`: the problems only one of
# them gets right):

# %%
BEST = [("greedy", "-"), ("majority_vote", "N=16"), ("weighted_vote (verifier)", "N=16"),
        ("best_of_n (verifier)", "N=16"), ("refine (calculator)", "Nr<=3"),
        ("rebase (PRM)", "width=16"), ("stepwise_beam (PRM)", "Nb=4, Ne=4"),
        ("mcts (PRM, verifier)", "4 iterations"), ("refine (self-feedback)", "Nr<=3")]
pairs = {(a, b): stats.paired(hits[a], hits[b]) for i, a in enumerate(BEST) for b in BEST[i + 1:]}
resolved = [(a, b, d) for (a, b), d in pairs.items() if d.resolved]
print(f"{len(pairs)} paired comparisons among {len(BEST)} settings; resolved: {len(resolved)}")
for a, b, d in resolved:
    print(f"  {a[0]} {a[1]} - {b[0]} {b[1]}: {d}")
for a, b in ((("majority_vote", "N=16"), ("greedy", "-")),
             (("refine (calculator)", "Nr<=3"), ("greedy", "-")),
             (("rebase (PRM)", "width=16"), ("majority_vote", "N=16"))):
    print(f"{a[0]} {a[1]} - {b[0]} {b[1]}: {stats.paired(hits[a], hits[b])}")

# %% [markdown]
# **What 104 problems resolve.** Three kinds of difference, each with a paired interval that
# excludes 0:
# - **spending beats greedy decoding** for majority voting over 16 samples (74 of 104 against
#   62), the verifier's weighted vote (73), the calculator's refinement loop (75) and REBASE
#   (77) — but not for best-of-16 with the verifier (64), step-level beam search (66) or MCTS
#   (68), whose gains are within noise;
# - **voting beats picking**: majority voting and the weighted vote over 16 samples both beat
#   best-of-16 with the same verifier (74 and 73 against 64). The verifier is a worse judge of
#   one sample than the crowd of sixteen is (chapter 10 measures why: it ranks poorly within a
#   problem), and REBASE, which spends the PRM on steps instead, beats best-of-16 and beam
#   search too;
# - **self-feedback is below most methods**: it refines a sample drawn at temperature 0.8 (48
#   of 104 right on its own) and, as chapter 09 shows, does not improve it (52).
#
# Everything else among these settings is within noise — in particular the order of the best
# four: REBASE 77, the calculator 75, voting 74 and the weighted vote 73 cannot be ranked on
# 104 problems. What the sweep shows exactly is the other axis, **cost**, which is
# accounting, not sampling: the calculator's refinement loop reaches the level of the best
# methods for 201 tokens per problem, where the step-level searches bill about 4,700 to
# 14,300. The dashed line
# is the **Pareto front** of the point estimates: settings no other setting beats on both
# accuracy and cost — read it as "these are cheap and not worse", not as a ranking. That the
# expensive beam and MCTS are not on it fits what Kapoor et al. (2024) argue about simple
# baselines and what Wu et al. (2024) found for MCTS (§6.4); REBASE, which Wu et al. found
# compute-optimal, is on it here too, at the narrower of its two widths.
#
# Without an exact tool the best *point estimate* at each budget changes with the budget
# (remember the error bars: noise could reorder neighbours):

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
# The best method changes with the budget, as §6.4 says: **greedy decoding** at about 120
# tokens per problem (62 of 104; one sample at temperature 0.8 gets 48, a resolved gap),
# **majority voting** over 16 samples at about 2,000 (74, a resolved gain over greedy), and
# **REBASE** with width 4 at about 4,700 (77). The first step up is resolved; the second is 3
# problems, within noise, so on these data the search buys nothing the vote had not already
# bought, at more than twice the bill. Voting over only four samples (54) is not better than
# greedy decoding at all: four votes are too few to outvote the sampling noise that
# temperature 0.8 adds (chapter 07). Paying the verifier to read the 16 samples of the vote
# triples the bill and buys nothing the data can see (73 against 74).
#
# Counting only **generated** tokens, as many papers do, hides the scorer's share (§6.1:
# "one must also account for ... external information"). Step-level search generates about
# as many tokens as best-of-N with the same N_b·N_e, but bills about 2.4 to 3.1 times as much:
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
# ## Compute-optimal inference, on the page (§6.4, eq. 52)
#
# Wu et al. (2024) pose the choice of model size $M$ (parameters), generated tokens $T$ and
# meta-generator $g$ as a minimisation of the error $E$ at a fixed compute budget $C$:
#
# $$\big(M_\text{opt}(C), T_\text{opt}(C), g_\text{opt}\big) = \arg\min_{M, T, g
#   \text{ s.t. } c(M, T, g) = C} E(M, T, g). \qquad (52)$$
#
# The compute $c(M, T, g)$ is counted in floating-point operations. A forward pass of a
# decoder-only transformer costs about two FLOPs per parameter per token it processes (one
# multiply and one add per weight), so
#
# $$c \approx 2\, M \cdot (\text{tokens computed}),$$
#
# and at equal compute a model with a $k$-th of the parameters can process about $k$ times as
# many tokens: draw $k$ times as many samples of the same length. With the two models of this
# zoo:

# %%
sizes_m = {name: json.loads((data_dir() / "models" / name / "metrics.json").read_text())[
    "parameters"] for name in ("tinyworld", "tinyworld-draft")}
ratio = sizes_m["tinyworld"] / sizes_m["tinyworld-draft"]
print({k: f"{v / 1e6:.2f}M parameters" for k, v in sizes_m.items()})
print(f"2 x M FLOPs per token: target {2 * sizes_m['tinyworld'] / 1e6:.1f} MFLOPs, draft "
      f"{2 * sizes_m['tinyworld-draft'] / 1e6:.1f} MFLOPs; at equal compute the draft "
      f"processes {ratio:.1f} x as many tokens")

# %% tags=["claim"]
assert 8 < ratio < 10      # "about a tenth" of the parameters: ~9 samples for one

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
# Here the answer is clear-cut, and resolved: the draft almost never solves these problems (1 of
# 104 greedy) and its votes are never right (0 of 104 at N = 4, 16 and 64), because voting
# converges to the answer the model believes most (eq. 35) — no N rescues a model whose most
# likely answer is wrong. The target wins at every
# FLOP budget. Wu et al. (2024) found the smaller model often the better buy, but
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
# Adaptive voting stops after about twelve samples on average instead of sixteen: a fifth fewer
# tokens, for three problems fewer right (71 against 74 of 104, not resolved). The cascade only
# pays off when the cheap model is often confidently right: our draft never agrees with itself,
# so every question is routed to the target and the draft's tokens are spent for nothing.
#
# **A lesson in noise, for free.** Routed 100 % of the time, the cascade *is* the target's
# majority vote over four samples — the same estimator, drawn with other seeds. It scores 56 of
# 104 where the plain maj@4 row scores 54: two runs of one method disagree on 20 problems
# and differ by 2 points, which the paired test duly calls unresolved. Any gap between two
# methods on 104 problems has to be read against that.

# %%
cascade, maj4 = hits["cascade draft->target", "4 draft, 4 target"], hits["majority_vote", "N=4"]
same_method = stats.paired(cascade, maj4)
print("cascade (= maj@4, other seeds) - maj@4:", same_method)

# %% tags=["claim"]
# the claims are about the committed sweep (TinyWorld's), whatever MODEL and TASK are
right = {k: sum(h) for k, h in hits.items()}
assert len(sweep["config"]["problems"]) == 104 and sweep["config"]["problem_set"] == "hard"
G, MV, WV, BON = ("greedy", "-"), ("majority_vote", "N=16"), ("weighted_vote (verifier)", "N=16"), \
    ("best_of_n (verifier)", "N=16")
CALC, REB, BEAM, MCTS = ("refine (calculator)", "Nr<=3"), ("rebase (PRM)", "width=16"), \
    ("stepwise_beam (PRM)", "Nb=4, Ne=4"), ("mcts (PRM, verifier)", "4 iterations")
self_fb = ("refine (self-feedback)", "Nr<=3")
won = {(a, b) if pairs[a, b].diff > 0 else (b, a) for a, b, _ in resolved}   # (winner, loser)
assert won == {(MV, G), (WV, G), (CALC, G), (REB, G), (MV, BON), (WV, BON), (REB, BON),
               (REB, BEAM), (MV, self_fb), (WV, self_fb), (CALC, self_fb), (REB, self_fb),
               (BEAM, self_fb), (MCTS, self_fb)}, won
assert [right[k] for k in (G, MV, WV, CALC, REB, BON, BEAM, MCTS, self_fb)] == \
    [62, 74, 73, 75, 77, 64, 66, 68, 52]
assert (right["sample", "N=1"], right["majority_vote", "N=4"], right["rebase (PRM)", "width=4"]) \
    == (48, 54, 77)
assert stats.paired(hits[G], hits["sample", "N=1"]).resolved
assert not stats.paired(hits[G], hits["majority_vote", "N=4"]).resolved
assert not stats.paired(hits["rebase (PRM)", "width=4"], hits[MV]).resolved
calc = get(*CALC)
assert round(calc["total_tokens"]) == 201
searches = [r["total_tokens"] for r in rows if r["method"].startswith(("stepwise_beam", "rebase"))]
assert 4600 < min(searches) and max(searches) < 14400, searches
assert [(r["method"], r["setting"]) for r in front] == [
    ("sample", "N=1"), G, ("adaptive_vote", "max 16, beta 0.95"), MV, ("rebase (PRM)", "width=4")]
assert [(b["method"], b["setting"]) for b in (compute.best_at_budget(no_tool, x)
                                              for x in (200, 2000, 5000))] == [G, MV, ("rebase (PRM)", "width=4")]
assert round(get(*G)["total_tokens"], -1) == 120 and 1900 < get(*MV)["total_tokens"] < 2100
assert get("rebase (PRM)", "width=4")["total_tokens"] > 2 * get(*MV)["total_tokens"]
wv, mv = get(*WV), get(*MV)
assert 2.8 < wv["total_tokens"] / mv["total_tokens"] < 3.2        # "triples the bill"
assert right["greedy (draft)", "-"] == 1
assert all(right["majority_vote (draft)", f"N={n}"] == 0 for n in (4, 16, 64))
assert stats.paired(hits[G], hits["greedy (draft)", "-"]).resolved
av = get("adaptive_vote", "max 16, beta 0.95")
assert 11.5 < av["samples"] < 12.5 and 0.75 < av["total_tokens"] / mv["total_tokens"] < 0.85
assert (right["adaptive_vote", "max 16, beta 0.95"], right[MV]) == (71, 74)
assert not stats.paired(hits["adaptive_vote", "max 16, beta 0.95"], hits[MV]).resolved
assert get("cascade draft->target", "4 draft, 4 target")["routed"] == 1.0
assert (sum(cascade), sum(maj4)) == (56, 54) and not same_method.resolved
assert same_method.a_only + same_method.b_only == 20
ratios = []
for (m, ns), (b, nb) in ((("stepwise_beam (PRM)", "Nb=2, Ne=2"), ("best_of_n (verifier)", "N=4")),
                         (BEAM, BON)):
    beam, bon = get(m, ns), get(b, nb)
    assert 0.9 < beam["output_tokens"] / bon["output_tokens"] < 1.0    # "about as many generated"
    ratios.append(beam["total_tokens"] / bon["total_tokens"])
    assert abs(bon["external_tokens"] / bon["total_tokens"] - 2 / 3) < 0.02   # "two thirds"
assert [round(r, 1) for r in sorted(ratios)] == [2.4, 3.1], ratios   # "2.4 to 3.1 times"
print("The claims hold.")

# %% [markdown]
# ### Stopping early, run live
#
# The sweep above ran adaptive voting with fresh samples. To see *why* it saves, run it again
# on a pool that is already drawn: chapter 07's 104 problems with 64 samples each at
# temperature 0.7 (`scripts/sweep_parallel.py`), where every rule reads the same first 16
# samples of each problem in the same order (`meta.Replay`), so the rules differ only in when
# they stop. Two stopping rules:
#
# - **decided**: stop once the leader cannot be overtaken by the votes still to come, i.e. when
#   its count c₁ satisfies c₁ > c₂ + (N − n) for every rival count c₂ (ties go to the earlier
#   answer). The answer is always the one voting on all N samples would give.
# - **Beta** (Aggarwal et al., 2023): with c₁ and c₂ the two largest counts after n samples,
#   stop once
#
# $$P\big(p_1 > p_2 \mid c_1, c_2\big) \;=\; P\big(X > \tfrac12\big),\quad X \sim \mathrm{Beta}(c_1 + 1,\, c_2 + 1), \qquad \ge C \;(= 0.95 \text{ here}),$$
#
#   the posterior probability, under a uniform prior on the two answers' shares, that the
#   leader is really the more likely answer. It may stop on a leader that more samples would
#   have overturned.

# %%
show_source(meta.adaptive_vote, meta.adaptive.beta_confidence)

# %%
pool_rows = json.loads((data_dir() / "results" / "parallel_pool.json").read_text())["pools"]["0.7"]


def replay(r, n=16):
    """The first n samples of problem r's pool, each billed its own length in output tokens."""
    return meta.Replay([meta.TextOutput(f"A: {a}", budget.Cost(output_tokens=k, calls=1))
                        for a, k in zip(r["answers"][:n], r["lengths"][:n])])


def run(rule):
    votes = [rule(r) for r in pool_rows]
    return {"votes": votes, "right": [v.answer == r["answer"] for v, r in zip(votes, pool_rows)],
            "tokens": sum(v.cost.output_tokens for v in votes)}


stopping = {"majority vote, N = 16": run(lambda r: meta.majority_vote("", replay(r), 16)),
            "stop when decided": run(lambda r: meta.adaptive_vote("", replay(r), 16,
                                                                  stop="decided")),
            "stop at Beta >= 0.95": run(lambda r: meta.adaptive_vote("", replay(r), 16,
                                                                     confidence=0.95))}
FULL, BETA = stopping["majority vote, N = 16"], stopping["stop at Beta >= 0.95"]
fixed = {n: run(lambda r, n=n: meta.majority_vote("", replay(r), n)) for n in range(2, 16)}
n_match = max(n for n, f in fixed.items() if f["tokens"] <= BETA["tokens"])  # same spend, fixed N
stopping[f"majority vote, N = {n_match}"] = fixed[n_match]
for name, res in stopping.items():
    used = stats.mean_interval([len(v.candidates) for v in res["votes"]])
    print(f"{name:>22s}: right {stats.accuracy(res['right'])}   samples {used}   "
          f"output tokens {res['tokens'] / FULL['tokens']:.0%} of N = 16")
same_answers = {name: sum(a.answer == b.answer for a, b in zip(res["votes"], FULL["votes"]))
                for name, res in stopping.items()}
spend_matched = stats.paired(fixed[n_match]["right"], BETA["right"])
print("answers equal to N = 16's:", same_answers)
print(f"fixed N = {n_match} - Beta rule:", spend_matched)

# %% [markdown]
# On this pool both rules keep every one of N = 16's 104 answers: the *decided* rule by
# construction, at about three quarters of the tokens, and the Beta rule by luck of this pool,
# at about 70 %. Spending the same tokens on a *fixed* smaller N is not the same thing: the
# largest fixed N within the Beta rule's spend, N = 11, gets 76 of 104 right against 83, a gap
# the paired bootstrap resolves (McNemar p ≈ 0.04), on this one pool. Adaptive voting spends
# its samples where the vote is close; a fixed N spends them evenly, on easy problems too.
# (The sweep's fresh samples at temperature 0.8 above cost the Beta rule three problems, 71
# against 74 — not resolved: it can stop on the wrong leader.)

# %% tags=["claim"]
# the claims are about the committed pool (TinyWorld's), whatever MODEL and TASK are
DECIDED = stopping["stop when decided"]
assert len(pool_rows) == 104 and sum(FULL["right"]) == 83
assert same_answers["stop when decided"] == same_answers["stop at Beta >= 0.95"] == 104
assert 0.72 < DECIDED["tokens"] / FULL["tokens"] < 0.80      # "about three quarters"
assert 0.66 < BETA["tokens"] / FULL["tokens"] < 0.74         # "about 70 %"
assert n_match == 11 and sum(fixed[11]["right"]) == 76 and spend_matched.resolved
assert 0.03 < spend_matched.p_value < 0.05, spend_matched
print("Adaptive voting keeps N = 16's answers at a fraction of its tokens.")

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1** (implement it). Write Table 5's row for step-level beam search with a
# scorer by hand: `beam_row(t_in, t, n_b, n_e, s, c_s)` returns the tuple
# `(input, output, external)` of tokens, with $T_s = T / S$ tokens per step. Do not call
# `budget`; the check compares your row with `budget.table5("step-level beam (scorer)", ...)`.

# %% tags=["solution"]
def beam_row(t_in, t, n_b, n_e, s, c_s):
    ### BEGIN SOLUTION
    calls = n_b * n_e * s
    return t_in * calls, (t / s) * calls, calls * c_s
    ### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    for args in ((15, 60, 16, 64, 5, 75), (20, 90, 4, 2, 6, 222), (7, 30, 1, 3, 3, 40)):
        mine = tuple(float(x) for x in beam_row(*args))
        t_in_, t_, n_b_, n_e_, s_, c_s_ = args
        ref = budget.table5("step-level beam (scorer)", t_in_, t_, n_b=n_b_, n_e=n_e_, s=s_,
                            c_s=c_s_)
        want = (ref.input_tokens, ref.output_tokens, ref.external_tokens)
        checks.expect(not np.isclose(mine[1], t_ * n_b_ * n_e_ * s_), f"beam_row{args}: the "
                      "output charges a whole solution T per expansion; each expansion "
                      "generates one step, T_s = T / S tokens.")
        checks.expect(not np.isclose(mine[2], n_b_ * n_e_ * c_s_) or s_ == 1, f"beam_row{args}: "
                      "the scorer is called at every one of the S steps, not once per "
                      "expansion overall.")
        for label, m, w in zip(("input", "output", "external"), mine, want):
            checks.expect(np.isclose(m, w), f"beam_row{args}: the {label} tokens are {m!r}, "
                          "not Table 5's; count the generator calls (N_b · N_e per step, for S "
                          "steps) and what each one reads, writes and costs the scorer.")

# %% [markdown]
# **Exercise 2** (reason with the table). With $T_s S = T$, step-level beam search generates
# fewer output tokens than best-of-N when $N_b N_e < N$ (§6.1). For $T_\text{in} = 15$,
# $T = 60$, $S = 5$ and $N_b = 4$: find the largest $N_e$ for which the beam generates
# *strictly* fewer output tokens than best-of-64, and store it in `max_expansions`. Then store
# in `external_ratio` how many times the beam's external tokens at that $N_e$ exceed
# best-of-64's, with the same scorer ($C_s = T_\text{in} + T$).

# %% tags=["solution"]
### BEGIN SOLUTION
bon64 = budget.table5("reranking", 15, 60, n=64, c_s=75)
max_expansions = max(e for e in range(1, 65) if budget.table5(
    "step-level beam (scorer)", 15, 60, n_b=4, n_e=e, s=5, c_s=75).output_tokens
    < bon64.output_tokens)
external_ratio = budget.table5("step-level beam (scorer)", 15, 60, n_b=4, n_e=max_expansions,
                               s=5, c_s=75).external_tokens / bon64.external_tokens
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(max_expansions=max_expansions, external_ratio=external_ratio)
    checks.expect(max_expansions != 16, f"max_expansions = {max_expansions!r}: with N_b · N_e "
                  "= 64 the beam generates exactly as many output tokens as best-of-64; the "
                  "exercise asks for strictly fewer.")
    out = lambda e: budget.table5("step-level beam (scorer)", 15, 60, n_b=4, n_e=e, s=5,
                                  c_s=75).output_tokens
    bon_out = budget.table5("reranking", 15, 60, n=64, c_s=75).output_tokens
    checks.expect(isinstance(max_expansions, (int, np.integer)) and out(max_expansions) < bon_out
                  and out(max_expansions + 1) >= bon_out, f"max_expansions = "
                  f"{max_expansions!r} is not the largest N_e whose output is below "
                  "best-of-64's: compare T_s · N_b · N_e · S with T · N.")
    ext = lambda e: budget.table5("step-level beam (scorer)", 15, 60, n_b=4, n_e=e, s=5,
                                  c_s=75).external_tokens
    want = ext(max_expansions) / budget.table5("reranking", 15, 60, n=64, c_s=75).external_tokens
    checks.expect(not np.isclose(float(external_ratio), 1 / want), f"external_ratio = "
                  f"{external_ratio!r} is upside down: the beam's external tokens divided by "
                  "best-of-64's.")
    checks.close("external_ratio", external_ratio, want, "the beam calls the scorer N_b · N_e "
                 "times at each of S steps; best-of-64 calls it 64 times.", tol=1e-9)

# %% [markdown]
# **Exercise 3** (predict, then run). Before running anything: majority voting over 16
# samples on the running problem — how many **input** tokens will it bill, and will it take
# more **forward passes** than the 8 samples above? Store your predicted input tokens in
# `predicted_input` as a formula of the prompt's length (`len(lm.encode(prompt))`). Then run
# `meta.majority_vote(prompt, sampler, 16, answer_fn=fmt.answer, seed=SEED)` and store its
# cost's `forward_passes` in `passes_16`. Is it about twice the 8 samples' passes?

# %% tags=["solution"]
### BEGIN SOLUTION
predicted_input = 16 * len(lm.encode(prompt))
passes_16 = meta.majority_vote(prompt, sampler, 16, answer_fn=fmt.answer,
                               seed=SEED).cost.forward_passes
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(predicted_input=predicted_input, passes_16=passes_16)
    ref = meta.majority_vote(prompt, sampler, 16, answer_fn=fmt.answer, seed=SEED).cost
    checks.expect(predicted_input != len(lm.encode(prompt)), f"predicted_input = "
                  f"{predicted_input!r} is one prompt; Table 5 bills the prompt once per "
                  "sample (T_in · N), even though it is computed once.")
    checks.expect(predicted_input == ref.input_tokens, f"predicted_input = {predicted_input!r}"
                  ", but the run billed a different number of input tokens: T_in · N.")
    checks.expect(passes_16 != 2 * runs["majority vote N=8"].cost.forward_passes
                  or passes_16 == ref.forward_passes, f"passes_16 = {passes_16!r} doubles the "
                  "8 samples' passes; run the vote and read its cost.")
    checks.expect(passes_16 == ref.forward_passes, f"passes_16 = {passes_16!r} is not the run's "
                  "forward_passes: one batch advances all 16 samples together, so the passes "
                  "follow the longest sample, not the number of samples.")

# %% [markdown] tags=["solution"]
# *Think about it:* eq. 52 asks for the model size, the tokens and the meta-generator that
# minimise the error at a fixed compute budget. Sketch two accuracy-vs-FLOPs curves, one for a
# small model sampled N times with majority voting and one for a model ten times larger. Under
# what shape of the small model's curve is the small model the compute-optimal choice at some
# budgets, and under what shape is it never? What does voting converge to as N grows (eq. 35
# for weighted voting, its unweighted special case for plain voting)?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* At equal FLOPs the small model gets about ten times the samples. Its
# voting curve rises with N only while more samples move the vote toward the right answer;
# as N grows, voting converges to the answer the model puts most mass on (eq. 35 with v = 1:
# the mode of the marginal over answers). If that answer is right on a good share of problems
# — the small model already solves a fair fraction, and its errors are spread over many
# different wrong answers — its curve climbs and can cross the large model's at low and middle
# budgets, which is what Wu et al. (2024) often found. If its most likely answer is wrong on
# most problems, no N helps: its curve saturates low and the large model is optimal at every
# budget. So the optimum of eq. 52 depends on where each model's curve starts and where voting
# saturates, not only on the price per token. Common misconception: "more samples always
# beat a bigger model at equal compute".
# <!-- END SOLUTION -->

# %% [markdown]
# ## Key takeaways
#
# - Table 5 turns a method and its settings into input, output and external tokens before
#   anything runs; the survey's worked examples (beam 16 × 64 vs best-of-1024; 3 self-feedback
#   rounds = 7T) come out of it exactly.
# - The bill has more than generated tokens: the scorer's external tokens, and input tokens
#   re-sent at every step, can dominate it. A machine's cost is different again: forward
#   passes (latency) and computed tokens (what a KV cache and a shared prompt save).
# - Compare methods **compute-matched**: accuracy against tokens (or FLOPs) spent, on the same
#   problems; the best method is a function of the budget.
# - Eq. 52 makes the choice of model size part of the question; FLOPs ≈ 2 · parameters ·
#   tokens put models of different sizes on one axis. A small model is a good buy only if its
#   voting curve climbs.
# - Spending less (§6.3): stop sampling once the vote is decided, or route through a cheap
#   model first, which pays only when the cheap model is often confidently right.
#
# ## Further reading
#
# - Survey §6.1 (Table 5), §6.2–6.4 (scaling the budget, minimising it, compute-optimal
#   inference, eq. 52).
# - Wu et al. (2024), *Inference scaling laws: an empirical analysis of compute-optimal
#   inference for problem-solving with language models* (eq. 52, REBASE).
# - Snell et al. (2024), *Scaling LLM test-time compute optimally can be more effective than
#   scaling model parameters*.
# - Kapoor et al. (2024), *AI agents that matter* (cost-controlled comparisons).
# - Chen et al. (2023), *FrugalGPT* (cascades); Aggarwal et al. (2023), *Let's sample step by
#   step: adaptive-consistency for efficient reasoning with LLMs*.
# - Kaplan et al. (2020), *Scaling laws for neural language models* (the 2 · N FLOPs per
#   token of a forward pass).
