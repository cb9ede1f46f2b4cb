# %% [markdown]
# # 08 · Step-level search: beams, trees and value functions over reasoning steps
#
# {badges}
#
# **What you will learn**
# - to see generation as **search** (survey §4.3): a state s_t is the problem plus the steps
#   written so far, an action is the next step, the environment appends it; greedy decoding
#   (eq. 40) is the simplest policy over such states;
# - the **value functions** v(s_t) of Table 4: the model's own log-probability (gpt-f), a
#   **process reward model** (PRM), an outcome verifier read mid-solution — and TinyWorld's exact
#   step checker as an upper bound;
# - the **search strategies** over the same tree: step-level beam search, best-first (gpt-f),
#   tree of thoughts (DFS with a threshold), REBASE and MCTS, replayed iteration by iteration;
# - what they **cost** (Table 5: T_s·N_b·N_e·S output tokens, N_b·N_e·S scorer calls) and what a
#   KV cache shared along the tree saves (§7.3, chapter 13);
# - the claim, measured on harder TinyWorld problems: for the same number of generated tokens,
#   search guided by a process reward model beats greedy decoding and the parallel methods of
#   chapter 07 at a small budget — and why a wider search against the same imperfect value
#   stops paying off (as Snell et al., 2024 found).
#
# Runs in about 40 s on a 2-core CPU (the compute-matched sweep is precomputed by
# `scripts/sweep_search.py`; a test re-runs a slice of it).
#
# **Your own model and task.** `MODEL` takes any causal LM (a local directory or a Hub id) and
# `TASK` any task of `workbench.tasks` (`"gsm8k"`, `"math"`, or your own file, see
# `docs/real-models.md`). Every search runs on any task, one line of the reply per step (GSM8K's
# few-shot examples solve a problem in one line, so a base model's tree there is shallow; an
# instruct model, asked through its chat template, usually writes a step per line); off
# TinyWorld the PRM and the verifier are your model asked as a judge (`rm.LLMJudge`), since
# TinyWorld's only know its arithmetic, and the exact step checker (the `oracle`) is left out:
# only TinyWorld's arithmetic has one. The compute-matched sweep is TinyWorld's.

# %%
# SETUP

# %%
MODEL = "tinyworld"   # or a local directory / HF causal-LM id
TASK = "tinyworld-arithmetic"   # or "gsm8k", "math", ... (workbench.tasks; see docs/real-models.md)
SEED = 0

# %%
import json, textwrap
import numpy as np
import workbench as wb
from workbench import adapters, decoding, meta
from workbench import reward_models as rm
from workbench.paths import data_dir
from workbench.tinyworld import formats
from widgets import search_tree as views
from widgets.compute import pareto_figure

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # its step checker, PRM and verifier exist only there
if TINYWORLD:
    prm, verifier = wb.load("tinyworld-prm"), wb.load("tinyworld-verifier")
else:   # TinyWorld's PRM and verifier know only its arithmetic: your model judges instead
    prm = verifier = rm.LLMJudge(lm)
problem = task.problem("94*2*8*5-742") if TINYWORLD else task.problems[0]
prompt = fmt.prompt(problem)
greedy = decoding.greedy(lm, prompt, max_new_tokens=160, stop=fmt.stop or None)
print(prompt + greedy.text)
check = (task.step_check(problem, greedy.text).message if TINYWORLD else
         f"answer {fmt.answer(greedy.text)} is {'right' if fmt.check(problem, greedy.text) else 'wrong'}")
print("\ncorrect answer:", problem.reference, "| checker:", check)

# %% [markdown]
# ## States, actions and values
#
# Each line of a worked solution is one **step**. A *stepper* samples the next step of a state
# (here from the target at temperature 0.8, stopping at the newline); the state is the prompt and
# the steps so far. Below, the distinct steps among six sampled first steps, and four values
# v(s_1) for each (Table 4; three off TinyWorld):
#
# | value | what it is | cost (Table 5) |
# |---|---|---|
# | `logprob` | mean log p_θ per token of the steps (gpt-f uses the sum) | free: the generator computed it |
# | `prm` | the PRM's P(every step so far is correct), read at the step's newline | C_s external tokens per state |
# | `verifier` | the outcome verifier's P(the solution will be right), read mid-way | C_s per state |
# | `oracle` | the exact step checker: 1 if every step so far is right (TinyWorld's arithmetic only) | not a method, an upper bound |
#
# Off TinyWorld, `prm` and `verifier` are your model asked "are the steps so far correct?" and
# "is this solution correct?" (`rm.LLMJudge`: p(Yes) against p(No) of its next token).

# %%
temp = [lambda x: adapters.temperature(x, 0.8)]
# a step is one line: a GSM8K line may hold a whole short solution, ending "The answer is N."
stepper = meta.LMStepper(lm, adapters=temp, max_step_tokens=40 if TINYWORLD else 100,
                         answer_marker=fmt.marker.strip())
stepper.start(prompt)
(first,), cost = stepper.propose(prompt, [[]], [6], seed=SEED)
first = list({s.text: s for s in first}.values())          # the distinct ones
states = [meta.Partial(s.text, s.terminal, s.logprob, s.tokens, 1) for s in first]
value_fns = [meta.logprob_value("mean"), meta.prm_value(prm), meta.verifier_value(verifier)]
if TINYWORLD:
    value_fns.append(meta.oracle_value(task))
else:
    print(f"(no oracle column: {task.name} has no step checker; only TinyWorld's arithmetic has one)")
table = {v.name: v(prompt, states)[0] for v in value_fns}
print(f"{'first step':34s}" + "".join(f"{k:>15s}" for k in table))
for i, s in enumerate(first):
    step = textwrap.shorten(s.text.strip(), 34, placeholder="...")
    print(f"{step:34s}" + "".join(f"{table[k][i]:15.3f}" for k in table))
print("\ncost of the six samples:", cost)

# %% [markdown]
# TinyWorld's PRM was trained on the target's own solutions, labelled by the exact checker, to
# predict whether the steps so far are right: it is a learned, imperfect copy of the `oracle`
# column. The log-probability only says how *usual* a step is.
#
# ## Step-level beam search, step by step
#
# Stepwise beam search (Welleck et al., 2022; Xie et al., 2023) keeps N_b states; each iteration
# expands every state into N_e next steps, scores them with v(s_t) and keeps the N_b best.
# The value here is the PRM before the end and the verifier on finished solutions
# (`meta.terminal_value`; off TinyWorld, the judge's two questions). Press play, or move the
# slider: orange nodes are finished solutions, red ones pruned, green the chosen path; hover a
# node for its step and value.

# %%
value = meta.terminal_value(meta.verifier_value(verifier), meta.prm_value(prm))
beam = meta.stepwise_beam(prompt, stepper, value, beam_size=3, expansions=3, seed=SEED,
                          answer_fn=fmt.answer)
print(beam.text, "\n\nanswer", beam.answer, "| nodes", len(beam.tree), "| cost:", beam.cost)
views.SearchTreeView(beam)

# %% [markdown]
# ## Other ways to walk the same tree
#
# The strategies differ in which states they expand and how they use v(s_t) (Table 4):
# - **best-first** (gpt-f, Polu & Sutskever 2020): a priority queue of every state, keyed by the
#   cumulative log p_θ; pop the best, expand it;
# - **tree of thoughts, DFS** (Yao et al., 2023): go down the best child, prune children valued
#   below a threshold, backtrack at dead ends, stop at the first accepted solution;
# - **REBASE** (Wu et al., 2024): a fixed width of expansions per depth, shared among the
#   frontier states in proportion to softmax(v/T), finished solutions vote;
# - **MCTS** (RAP, AlphaLLM): select by UCT, expand, roll the solution out to the end, score it
#   with the verifier and back the reward up the path.

# %%
runs = {
    "stepwise beam (3x3), PRM": beam,
    "best-first, log p (gpt-f)": meta.best_first(prompt, stepper, meta.logprob_value("sum"),
                                                 expansions=3, max_expansions=12, seed=SEED,
                                                 answer_fn=fmt.answer),
    "tree of thoughts DFS, PRM >= 0.5": meta.tree_of_thought(
        prompt, stepper, meta.prm_value(prm), "dfs", expansions=3, threshold=0.5, seed=SEED,
        answer_fn=fmt.answer),
    "REBASE (width 8), PRM": meta.rebase(prompt, stepper, value, width=8, temperature=0.1,
                                         seed=SEED, answer_fn=fmt.answer),
    "MCTS (8 simulations)": meta.mcts(prompt, stepper, meta.prm_value(prm), iterations=8,
                                      width=3, reward=meta.verifier_value(verifier), seed=SEED,
                                      answer_fn=fmt.answer),
}
print(f"{'':34s} answer  right  nodes  output  external  computed/naive")
for name, r in runs.items():
    kv = r.info["kv"]
    print(f"{name:34s} {str(r.answer):>6s}  {str(fmt.check(problem, r.text)):>5s}  "
          f"{len(r.tree):5d}  {r.cost.output_tokens:6d}  {r.cost.external_tokens:8d}  "
          f"{kv['computed_tokens']:5d}/{kv['naive_tokens']}")
views.search_tree_figure(runs["MCTS (8 simulations)"])

# %% [markdown]
# In the MCTS tree, node size is the visit count: simulations pile up under the children whose
# rollouts the verifier liked. The last column is the KV reuse of the stepper: every state's
# keys and values stay cached, so a child computes only its own tokens, not its parent's prefix
# again (chapter 13 measures it). Table 5 bills the naive count: every step is one call whose
# input is the prompt plus the steps so far.
#
# ## What a search costs (Table 5)
#
# A step-level beam makes N_b·N_e calls per level and scores every new state: T_s·N_b·N_e·S
# output tokens (the same as best-of-N with N = N_b·N_e when T_s·S = T) but N_b·N_e·S scorer calls,
# S times more than reranking N finished solutions. Identical sibling steps are merged
# (`dedupe=True`), so a confident model spends less:

# %%
levels = max(n.depth for n in beam.tree)
scored = sum(e["kind"] == "score" for e in beam.history)
print(f"levels S = {levels}, calls {beam.cost.calls} <= N_b*N_e*S = {3 * 3 * levels}")
reads = ("prompt + steps so far, read twice, C_s = 2(n + 1)" if TINYWORLD else
         "the judge's question around prompt + steps so far")
print(f"states scored {scored}, external tokens {beam.cost.external_tokens} "
      f"(~{beam.cost.external_tokens / scored:.0f} per state: {reads})")

# %% [markdown]
# ## The claim: search guided by a process reward model, at equal compute
#
# `scripts/sweep_search.py` ran each method on 24 harder held-out TinyWorld problems (4 or 5
# operations, 2- or 3-digit numbers: 6 from each cell) with the same seed per problem: greedy decoding; majority
# vote and best-of-N with the verifier (N = 4, 16); stepwise beam and REBASE guided by the PRM
# with N_b·N_e = 4 and 16; and the beam guided by the exact checker, a ceiling.

# %%
sweep = json.loads((data_dir() / "results" / "step_search.json").read_text())
rows = sweep["summary"]
print(f"{len(sweep['config']['problems'])} problems")
for r in sorted(rows, key=lambda r: (r["method"], r["output_tokens"])):
    print(f"{r['method']:30s} {r['setting']:11s} accuracy {r['accuracy']:.3f}  "
          f"generated {r['output_tokens']:6.0f}  all tokens {r['total_tokens']:6.0f}")
pareto_figure(rows, "output_tokens", title="TinyWorld: accuracy vs generated tokens per problem")

# %% [markdown]
# What TinyWorld's sweep shows (24 problems: differences under about 10 points are within noise):
# - At about 400 generated tokens (four samples' worth) every method is at or above greedy
#   (0.50): voting and REBASE 0.54, best-of-4 with the verifier 0.58, and the PRM-guided beam
#   (N_b·N_e = 4) 0.63 — a small edge for step-level search at a small budget, within noise.
# - At sixteen samples' worth **majority voting**, best-of-16 with the verifier and REBASE
#   all reach 0.67, while the wider PRM-guided beam falls to 0.58: with more candidates, a
#   search guided by a learned value finds more solutions that fool it — the
#   over-optimisation of an imperfect value that Snell et al. (2024) saw with search against a
#   PRM (chapter 10 shows the same for best-of-N).
# - The **exact checker** as value reaches 0.75 and 0.83 with the same generation budgets:
#   step-level search pays off in proportion to the quality of its value function. TinyWorld's
#   PRM (step AUROC 0.87) is not good enough for a wide search to beat voting on these hard
#   problems; on the easier mix of chapter 11's sweep the same searches draw level with voting
#   (REBASE 0.83, the beam 0.77, voting 0.81 at sixteen samples' worth).
#
# Counting every billed token — inputs and the scorer's external tokens too — moves the step-level
# methods to the right: the PRM reads the whole partial solution at every step.

# %%
pareto_figure(rows, "total_tokens",
              title="TinyWorld: accuracy vs all billed tokens (input + output + external)")

# %% [markdown]
# ## Exercises
#
# 1. REBASE gives each frontier state a share of the remaining width proportional to
#    softmax(v/T). With width 8, temperature T = 0.2 and values (0.9, 0.5, 0.1), how many
#    expansions does each state get? Use `meta.allocate` and store the list in `alloc`.
# 2. Run `meta.stepwise_beam` on the same problem with the exact checker as value
#    (`meta.oracle_value(task)`), `beam_size=2, expansions=2`. Store the result in `oracle_beam`.
#    What does this value cost in external tokens? (TinyWorld's arithmetic only: no other task
#    has an exact step checker.)
# 3. From the sweep, compute the accuracy of the PRM-guided beam minus that of majority voting
#    at the same generation budget, N_b·N_e = N = 4 and 16 (a difference of fractions). Store
#    them in `gain_4` and `gain_16`.

# %%
alloc = meta.allocate(8, np.exp(np.array([0.9, 0.5, 0.1]) / 0.2))
if TINYWORLD:
    oracle_beam = meta.stepwise_beam(prompt, stepper, meta.oracle_value(task), beam_size=2,
                                     expansions=2, seed=SEED, answer_fn=fmt.answer)
else:
    oracle_beam = None
    print(f"exercise 2 needs an exact step checker, which {task.name} does not have")
acc = {(r["method"], r["setting"]): r["accuracy"] for r in rows}
gain_4 = acc["stepwise_beam (PRM)", "Nb=2, Ne=2"] - acc["majority_vote", "N=4"]
gain_16 = acc["stepwise_beam (PRM)", "Nb=4, Ne=4"] - acc["majority_vote", "N=16"]

# %%
assert alloc == [7, 1, 0] and sum(alloc) == 8
if TINYWORLD:
    assert oracle_beam.cost.external_tokens == 0
if TINYWORLD and formats.speaks_tinyworld(lm):   # a claim about TinyWorld's target: it solves this
    assert fmt.check(problem, oracle_beam.text)
    assert all(oracle_beam.tree[i].value == 1.0 for i in oracle_beam.path(oracle_beam.info["chosen_node"])[1:])
per = lambda m, s: np.mean([r["correct"] for r in sweep["rows"] if (r["method"], r["setting"]) == (m, s)])
assert abs(gain_4 - (per("stepwise_beam (PRM)", "Nb=2, Ne=2") - per("majority_vote", "N=4"))) < 1e-12
assert abs(gain_16 - (per("stepwise_beam (PRM)", "Nb=4, Ne=4") - per("majority_vote", "N=16"))) < 1e-12
print("All three answers are right." if TINYWORLD else
      "Answers 1 and 3 are right (2 needs TinyWorld's step checker).")
