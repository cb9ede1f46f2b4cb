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

# %%
# SETUP

# %%
MODEL = "tinyworld"   # or a local directory / HF causal-LM id: asked few-shot (wb.prompts)
SEED = 0

# %%
import json
import numpy as np
import workbench as wb
from workbench import adapters, decoding, meta
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from widgets import search_tree as views
from widgets.compute import pareto_figure

wb.seed_everything(SEED)
lm = wb.load(MODEL)
fmt = wb.prompts.arithmetic_format(lm)   # bare for TinyWorld; a few-shot prompt for any other model
prm = wb.load("tinyworld-prm")
verifier = wb.load("tinyworld-verifier")
problem = ar.Problem("94*2*8*5-742")
prompt = fmt.prompt(problem)
greedy = decoding.greedy(lm, prompt, max_new_tokens=160)
print(prompt + greedy.text)
print("\ncorrect answer:", problem.answer, "| checker:", ar.check_steps(problem, greedy.text).message)

# %% [markdown]
# ## States, actions and values
#
# Each line of a worked solution is one **step**. A *stepper* samples the next step of a state
# (here from the target at temperature 0.8, stopping at the newline); the state is the prompt and
# the steps so far. Below, the distinct steps among six sampled first steps, and four values
# v(s_1) for each (Table 4):
#
# | value | what it is | cost (Table 5) |
# |---|---|---|
# | `logprob` | mean log p_θ per token of the steps (gpt-f uses the sum) | free: the generator computed it |
# | `prm` | the PRM's P(every step so far is correct), read at the step's newline | C_s external tokens per state |
# | `verifier` | the outcome verifier's P(the solution will be right), read mid-way | C_s per state |
# | `oracle` | the exact step checker: 1 if every step so far is right | not a method, an upper bound |

# %%
temp = [lambda x: adapters.temperature(x, 0.8)]
stepper = meta.LMStepper(lm, adapters=temp, max_step_tokens=40)
stepper.start(prompt)
(first,), cost = stepper.propose(prompt, [[]], [6], seed=SEED)
first = list({s.text: s for s in first}.values())          # the distinct ones
states = [meta.Partial(s.text, s.terminal, s.logprob, s.tokens, 1) for s in first]
value_fns = [meta.logprob_value("mean"), meta.prm_value(prm), meta.verifier_value(verifier),
             meta.oracle_value()]
table = {v.name: v(prompt, states)[0] for v in value_fns}
print(f"{'first step':34s}" + "".join(f"{k:>15s}" for k in table))
for i, s in enumerate(first):
    print(f"{s.text.strip():34s}" + "".join(f"{table[k][i]:15.3f}" for k in table))
print("\ncost of the six samples:", cost)

# %% [markdown]
# The PRM was trained on the target's own solutions, labelled by the exact checker, to predict
# whether the steps so far are right: it is a learned, imperfect copy of the `oracle` column.
# The log-probability only says how *usual* a step is.
#
# ## Step-level beam search, step by step
#
# Stepwise beam search (Welleck et al., 2022; Xie et al., 2023) keeps N_b states; each iteration
# expands every state into N_e next steps, scores them with v(s_t) and keeps the N_b best.
# The value here is the PRM before the end and the verifier on finished solutions
# (`meta.terminal_value`). Press play, or move the slider: orange nodes are finished solutions,
# red ones pruned, green the chosen path; hover a node for its step and value.

# %%
value = meta.terminal_value(meta.verifier_value(verifier), meta.prm_value(prm))
beam = meta.stepwise_beam(prompt, stepper, value, beam_size=3, expansions=3, seed=SEED)
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
                                                 expansions=3, max_expansions=12, seed=SEED),
    "tree of thoughts DFS, PRM >= 0.5": meta.tree_of_thought(
        prompt, stepper, meta.prm_value(prm), "dfs", expansions=3, threshold=0.5, seed=SEED),
    "REBASE (width 8), PRM": meta.rebase(prompt, stepper, value, width=8, temperature=0.1,
                                         seed=SEED),
    "MCTS (8 simulations)": meta.mcts(prompt, stepper, meta.prm_value(prm), iterations=8,
                                      width=3, reward=meta.verifier_value(verifier), seed=SEED),
}
print(f"{'':34s} answer  right  nodes  output  external  computed/naive")
for name, r in runs.items():
    kv = r.info["kv"]
    print(f"{name:34s} {str(r.answer):>6s}  {str(r.answer == problem.answer):>5s}  "
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
print(f"states scored {scored}, external tokens {beam.cost.external_tokens} "
      f"(~{beam.cost.external_tokens / scored:.0f} per state: prompt + steps so far, read "
      f"twice, C_s = 2(n + 1))")

# %% [markdown]
# ## The claim: search guided by a process reward model, at equal compute
#
# `scripts/sweep_search.py` ran each method on 24 harder held-out problems (4 or 5
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
pareto_figure(rows, "output_tokens", title="Accuracy vs generated tokens per problem")

# %% [markdown]
# What the sweep shows (24 problems: differences under about 10 points are within noise):
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
pareto_figure(rows, "total_tokens", title="Accuracy vs all billed tokens (input + output + external)")

# %% [markdown]
# ## Exercises
#
# 1. REBASE gives each frontier state a share of the remaining width proportional to
#    softmax(v/T). With width 8, temperature T = 0.2 and values (0.9, 0.5, 0.1), how many
#    expansions does each state get? Use `meta.allocate` and store the list in `alloc`.
# 2. Run `meta.stepwise_beam` on the same problem with the exact checker as value
#    (`meta.oracle_value()`), `beam_size=2, expansions=2`. Store the result in `oracle_beam`.
#    What does this value cost in external tokens?
# 3. From the sweep, compute the accuracy of the PRM-guided beam minus that of majority voting
#    at the same generation budget, N_b·N_e = N = 4 and 16 (a difference of fractions). Store
#    them in `gain_4` and `gain_16`.

# %%
alloc = meta.allocate(8, np.exp(np.array([0.9, 0.5, 0.1]) / 0.2))
oracle_beam = meta.stepwise_beam(prompt, stepper, meta.oracle_value(), beam_size=2, expansions=2,
                                 seed=SEED)
acc = {(r["method"], r["setting"]): r["accuracy"] for r in rows}
gain_4 = acc["stepwise_beam (PRM)", "Nb=2, Ne=2"] - acc["majority_vote", "N=4"]
gain_16 = acc["stepwise_beam (PRM)", "Nb=4, Ne=4"] - acc["majority_vote", "N=16"]

# %%
assert alloc == [7, 1, 0] and sum(alloc) == 8
assert oracle_beam.cost.external_tokens == 0
if wb.prompts.speaks_tinyworld(lm):     # a claim about TinyWorld's target: it can solve this
    assert oracle_beam.answer == problem.answer
    assert all(oracle_beam.tree[i].value == 1.0 for i in oracle_beam.path(oracle_beam.info["chosen_node"])[1:])
per = lambda m, s: np.mean([r["correct"] for r in sweep["rows"] if (r["method"], r["setting"]) == (m, s)])
assert abs(gain_4 - (per("stepwise_beam (PRM)", "Nb=2, Ne=2") - per("majority_vote", "N=4"))) < 1e-12
assert abs(gain_16 - (per("stepwise_beam (PRM)", "Nb=4, Ne=4") - per("majority_vote", "N=16"))) < 1e-12
print("All three answers are right.")
