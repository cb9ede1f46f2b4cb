# %% [markdown]
# # 00 · Welcome to the Meta-Generation Workbench
#
# {badges}
#
# **What you will learn here**
# - how the workbench is organised: one module per part of the survey *From Decoding to
#   Meta-Generation* (Welleck et al., 2024), and one chapter per section;
# - **TinyWorld**, the small world every chapter runs in offline: its tasks, its exact ground
#   truth, and its zoo of trained models;
# - how to load a model (the embedded one, or any Hugging Face model), generate, and read what
#   an algorithm did through its **trace** and its **token cost**.
#
# Survey sections: §1 (introduction) and §2 (preliminaries: p_θ, p\*, generators).
#
# **Prerequisites:** Python, and probability at the level of "a distribution, a
# log-probability, an expectation". No GPU and no internet.
# **Student time:** about 30 minutes (reading, running every cell, the three exercises). The
# notebook itself runs in about 25 s on a 2-core CPU.

# %%
# SETUP

# %%
# Parameters: the model every cell uses, and the seed that makes the outputs reproducible.
MODEL = "tinyworld"   # any embedded name, a local directory, or a Hugging Face causal-LM id
SEED = 0

# %% [markdown]
# ## How the workbench is organised
#
# The survey's formalism is the architecture. A language model p_θ gives next-token logits; a
# **generator** g(y | x) turns a prompt into outputs; a **meta-generator** is a generator that
# calls other generators, scorers and tools.
#
# | module | survey | what is in it |
# |---|---|---|
# | `workbench.models` | §2 | `LanguageModel`: p_θ, KV cache, scoring, token counting |
# | `workbench.adapters` | §3.3 | sampling adapters q_t: temperature, top-k, top-p, min-p, η, ... |
# | `workbench.decoding` | §3.1–3.3 | greedy, sampling, beam search, exact MAP |
# | `workbench.control` | §3.4, §5.1 | classifier guidance, DExperts, contrastive decoding |
# | `workbench.constraints` | §3.5 | regex/JSON automata over tokens, token healing |
# | `workbench.meta` | §4 | chains, best-of-N, voting, MBR, search, refinement |
# | `workbench.scoring`, `tools` | §5 | verifiers, reward models, calculator, code sandbox |
# | `workbench.budget` | §6 | token accounting (Table 5) and budgets |
# | `workbench.efficiency` | §7 | KV cache, prefix sharing, speculative decoding |
# | `workbench.tinyworld` | — | the embedded world and its exact checkers |
# | `widgets` | — | interactive views of what the algorithms did |

# %%
import json
import math

import numpy as np
from scipy.stats import binomtest

import workbench as wb
from workbench import decoding, stats
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic, worlds
from workbench.tinyworld.tasks import PROBLEM_SETS, problem_seed, problem_set
from widgets import checks, world as views

wb.seed_everything(SEED)
lm = wb.load(MODEL)
TARGET = MODEL == "tinyworld"   # the claims about a model's numbers are about TinyWorld's target
lm

# %% [markdown]
# ## TinyWorld: a small world whose ground truth we know
#
# Nothing here needs the internet or a GPU. TinyWorld generates its own training corpus, and
# because it generated it, the code knows the truth exactly. It has four parts.
#
# **1. Arithmetic with worked steps** — the survey's running example of problem solving. Each
# line performs one operation and rewrites what is left; an exact checker grades the answer and
# every step (it is also the *calculator tool* of later chapters).

# %%
problem = arithmetic.Problem("12+7*3-5")
print(problem.prompt() + problem.solution())
out = decoding.greedy(lm, problem.prompt())
print("\nThe model's greedy solution:\n" + out.text)
check = arithmetic.check_steps(problem, out.text)
print("\nanswer correct:", arithmetic.check_answer(problem, out.text), "| steps:", check.correct)

# %% [markdown]
# **2. A probabilistic grammar** of short stories (and one of restaurant reviews). Because the
# grammar is a probabilistic automaton, the true probability p\*(y) of any text is exact — and so
# is the true next-token distribution p\*(· | y_<t) in the tokenizer's space. The model p_θ was
# trained to approximate p\*; here is how close it got after one prefix:

# %%
import random
story = worlds.story_grammar()
text = story.sample(random.Random(SEED))
print("a story drawn from p*:", repr(text), f"  log p* = {story.log_p_star(text):.2f}")
print("the most probable story:", repr(story.mode()[0]), f"  log p* = {story.mode()[1]:.2f}")
print(f"entropy of p*: {story.entropy():.2f} nats per story")
views.next_token_figure(views.next_token_comparison(lm, "Story: The little", story))

# %% [markdown]
# The most probable story is short and dull; a typical story has log p\* near minus the
# entropy, the average of −log p\* over the world's stories. Both halves of that sentence can
# be checked: draw 5000 stories from p\*, and compare their mean log p\* (with its 95 %
# interval) with −H(p\*), which the grammar knows exactly; and count how many are at least as
# probable as the mode (a binomial test says whether that count agrees with p\*(mode)).

# %%
rng = random.Random(SEED)
stories = [story.sample(rng) for _ in range(5000)]
lp_stories = np.array([story.log_p_star(t) for t in stories])
half = 1.96 * lp_stories.std(ddof=1) / math.sqrt(len(lp_stories))
print(f"mean log p* of 5000 stories: {lp_stories.mean():.2f} ± {half:.2f} (95 %); "
      f"exact −H(p*) = {-story.entropy():.2f}")
mode_text, mode_lp = story.mode()
as_probable = stats.accuracy(lp_stories >= mode_lp - 1e-9)
agree = binomtest(as_probable.k, as_probable.n, math.exp(mode_lp)).pvalue
print(f"stories at least as probable as the mode: {as_probable}; "
      f"exact p*(mode) = {math.exp(mode_lp):.4f} (binomial test p = {agree:.2f})")
print("which ones:", {t for t, v in zip(stories, lp_stories) if v >= mode_lp - 1e-9})

# %% tags=["claim"]
# exact values of the grammar, estimated from samples: the intervals must cover them
assert abs(lp_stories.mean() + story.entropy()) < half, (lp_stories.mean(), story.entropy())
assert agree > 0.01, (as_probable, agree)   # the count agrees with the exact p*(mode)
assert {t for t, v in zip(stories, lp_stories) if v >= mode_lp - 1e-9} == {mode_text}
assert 15 < mode_lp + story.entropy() < 16.5, mode_lp   # "about 16 nats"

# %% [markdown]
# The mean log p\* of the samples agrees with −H(p\*) within its interval, about 16 nats below
# the mode's. No story drawn is as probable as the mode except the mode itself, drawn about as
# often as its probability (0.4 %) says. Keep that in mind for chapter 02, where searching for
# the most probable output turns out not to give typical text.
#
# **3. Reviews with an exact sentiment oracle** (for controlled generation) and **4. JSON
# records** following a schema (for constrained decoding and rejection sampling):

# %%
review = worlds.review_grammar().sample(random.Random(3))
print(repr(review), "-> sentiment", worlds.sentiment(review))
record = decoding.sample(lm, worlds.JSON_PROMPT, seed=SEED).text
print(record, "->", worlds.validate_record(record))

# %% [markdown]
# ## The zoo
#
# Every model was trained on this CPU by `scripts/train_zoo.py` and evaluated by the same
# script (the Medusa heads of chapter 13 by `scripts/train_medusa.py`); each directory in
# `data/models/` has a model card and a `metrics.json`.

# %%
print(views.zoo_table())

# %% [markdown]
# Two things to know before reading these numbers.
# - The **KL** in the first row, KL(p\*‖p_θ), is **per token**, in nats: the exact KL of the
#   next-token distributions, averaged over the positions of 300 stories of the world.
#   Chapter 01 measures the same gap **per story**, summed over a story's tokens.
# - The **arithmetic** numbers are accuracies on the 312 problems of the test set (the next
#   section), each a count of problems out of 312 with its own uncertainty. The card stores
#   which problems greedy decoding got right, so its 95 % interval can be computed. The card
#   also lists the targets the zoo had to meet (acceptance thresholds set when it was built,
#   checked again by `tests/test_zoo.py`): some claims of later chapters were built into
#   TinyWorld on purpose.

# %%
card = json.loads((data_dir() / "models" / "tinyworld" / "metrics.json").read_text())
greedy_card = stats.accuracy([int(b) for b in card["arithmetic"]["greedy_correct_bits"]])
print("greedy decoding on the test set:", greedy_card)
print("training targets met:", json.dumps(card["targets_met"], indent=1))

# %% tags=["claim"]
assert greedy_card.n == 312 and round(greedy_card.rate, 2) == 0.71, greedy_card
assert 0.64 < greedy_card.low < 0.66 and 0.74 < greedy_card.high < 0.76, greedy_card
assert all(card["targets_met"].values()), card["targets_met"]

# %% [markdown]
# 220 of 312 is 71 %, and its 95 % interval runs from 65 % to 75 %: 312 problems pin the
# accuracy down to about ±5 points, no better. A difference of a few points between two
# methods needs a paired comparison on the same problems (chapter 06 onwards) before it means
# anything.
#
# ## Which problems each chapter measures on
#
# Every accuracy in chapters 06–11 is measured on one of three documented sets of the
# held-out arithmetic test set (`workbench.tinyworld.tasks.PROBLEM_SETS`, `problem_set(name)`).
# Every problem has an id `arith-NNN`, and every sweep seeds problem `arith-NNN` with
# `seed * 100003 + NNN` (`problem_seed`), so a row means the same draw in every set that
# holds it. Chapters 01–05 measure on the other parts of TinyWorld, where p\* or an exact
# oracle is known.
#
# | set | what is in it | problems | used by |
# |---|---|---|---|
# | `test` | all test problems: 24 from each of 13 (operations, digits) cells — the full evaluation | 312 | the model card (the zoo table above), 10 (the calculator experiment) |
# | `pool` | the first 8 problems of every cell | 104 | 06 (chains), 07 (sample pools, scaling curves), 10 (judges and selectors) |
# | `hard` | the first 13 problems of the 8 cells with 3–6 operations on 2- or 3-digit numbers | 104 | 08 (step-level search), 09 (refinement), 11 (compute-matched comparison) |
# | story grammar (exact p\*) | stories of p\* and samples of p_θ | 200 + 200, 100 per temperature | 01 (p_θ against p\*, the three goals) |
# | story grammar, coin | 5000 stories of p\*, 200 samples of p_θ, 8 story/review prompts; a coin computed exactly | — | 02 (MAP, beam width) |
# | story grammar | 4000 one-token draws; 60 stories of p\* (789 positions); 64 stories per adapter setting | — | 03 (sampling, adapters) |
# | reviews + exact sentiment oracle | 64 reviews per method and strength (`data/results/control_tradeoff.json`) | — | 04 (controlled generation) |
# | JSON records, reviews, stories | records aged 19–30 (120 by rejection, 400 constrained), 64 reviews, 16 stories | — | 05 (constrained decoding) |
# | story and arithmetic prompts | timings, not accuracies (`data/results/efficiency.json`) | — | 12–14 (speed) |
#
# The 13 test cells were chosen on the trained target's own per-cell numbers
# (`scripts/calibrate_test_set.py`, `data/results/pool_by_cell.json`): cells greedy decoding
# nearly always solves, and cells it almost never solves, were left out, so that
# meta-generation has room to show a gain. That is a legitimate design for a teaching world,
# and it means the numbers are evidence about TinyWorld, not about LLMs in general.

# %%
for name, what in PROBLEM_SETS.items():
    records = problem_set(name)
    cells = sorted({(t["n_ops"], t["digits"]) for t in records})
    print(f"{name:5} {len(records):4d} problems in {len(cells):2d} cells "
          f"({records[0]['id']} ... {records[-1]['id']}): {what}")
first_hard = problem_set("hard")[0]
print(f"seed 3 draws problem {first_hard['id']} with seed {problem_seed(first_hard, 3)}")

# %% tags=["claim"]
sets = {name: problem_set(name) for name in PROBLEM_SETS}
by_cell = lambda recs: {c: sum((t["n_ops"], t["digits"]) == c for t in recs)  # noqa: E731
                        for c in {(t["n_ops"], t["digits"]) for t in recs}}
assert by_cell(sets["test"]) == {c: 24 for c in by_cell(sets["test"])} and len(sets["test"]) == 312
assert by_cell(sets["pool"]) == {c: 8 for c in by_cell(sets["test"])}
assert by_cell(sets["hard"]) == {(n, d): 13 for n in range(3, 7) for d in (2, 3)}
assert problem_seed(first_hard, 3) == 3 * 100003 + int(first_hard["id"][-3:])

# %% [markdown]
# ## Traces and costs
#
# Every algorithm reports what it did into the active trace: plain records with a `kind`. And
# every result carries its **cost** in the survey's units (Table 5): input tokens, output tokens,
# external tokens spent by scorers and tools, plus forward passes and the tokens actually
# computed (which caching and prefix sharing reduce).

# %%
with wb.trace() as t:
    samples = decoding.sample(lm, "Story:", n=4, seed=SEED, max_new_tokens=24)
for s in samples:
    print(repr(s.text))
print(t)
print("first event:", {k: v for k, v in t.events[0].items() if k != "top"})
total = wb.budget.total(s.cost for s in samples)
print(total)

# %%
views.trace_steps_figure(t.events, lm.tokenizer, row=0)

# %% [markdown]
# Read the last line. The four samples share one prompt, so the prompt's tokens were computed
# once: `input_tokens` bills them once per sample (4 × 3 = 12), the model computed them once
# (3). But the four rows are decoded as one batch, one forward pass per step, and a story that
# has ended keeps its row in the batch until the longest one ends: every decoding pass
# computes 4 positions. So `computed_tokens` = 3 + 4 × (passes − 1), here 3 + 4 × 20 = 83 —
# *more* than the 12 + 42 tokens billed. Sharing saves the prompt; padding costs the finished
# rows (chapter 14 measures both).

# %% tags=["claim"]
prompt_len = len(lm.encode("Story:"))
assert total.input_tokens == 4 * prompt_len
assert total.computed_tokens == prompt_len + 4 * (total.forward_passes - 1), total
if TARGET:
    assert (prompt_len, total.forward_passes, total.computed_tokens) == (3, 21, 83), total
    assert total.computed_tokens > total.input_tokens + total.output_tokens

# %% [markdown]
# ### One vocabulary, and traces that travel
#
# Every event kind has one documented shape: `wb.trace.EVENTS` lists each kind, what it means
# and its fields, and the test suite checks every event any algorithm emits against it. A trace
# saves to a file (`t.save(path, lm)`: JSON Lines, with the model's name and the tokenizer
# needed to show its tokens) and `wb.trace.load(path)` reads it back, so a run recorded on a GPU
# with a large model replays here in the same views, without the model. The workbench ships one
# recorded with a model from outside TinyWorld (a small GPT-2 with its own vocabulary,
# `scripts/record_traces.py`; untrained, so its text is noise). Its first eight events are the
# eight tokens of one sampled story, drawn here with the tokenizer the file carries:

# %%
print(wb.trace.EVENTS["step"].about, "->", list(wb.trace.EVENTS["step"].fields))
shipped = wb.trace.load(data_dir() / "traces" / "gpt2-local.jsonl")
print(shipped)
views.trace_steps_figure(shipped.events[:8], shipped.tokenizer, row=0)

# %% [markdown]
# ## Switching models
#
# `wb.load` takes an embedded name, a local directory saved with `save_pretrained`, or a Hugging
# Face id (`wb.load("Qwen/Qwen2.5-0.5B-Instruct")` on a machine that can download it; on a GPU
# it uses bfloat16). Offline, an unknown id fails at once with a message saying what to do:

# %%
try:
    wb.load("some-org/a-model-that-is-not-here")
except wb.ModelNotAvailable as err:
    print(type(err).__name__, ":", str(err)[:120], "...")
draft = wb.load("tinyworld-draft")
print(draft)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell**: run it, and it says
# either that the answer is right or what to reconsider. (In the student notebooks,
# `python scripts/student_notebooks.py`, the answer cells are blank; this notebook shows
# solutions.)
#
# **Exercise 1** (predict, then measure). `decoding.sample(lm, "Review:", n=8,
# max_new_tokens=1)` draws 8 one-token continuations of the same prompt. How many token
# positions does it compute? Store the number in `computed_prompt_tokens`. (The cell on traces
# and costs above has a hint.)

# %% tags=["solution"]
### BEGIN SOLUTION
computed_prompt_tokens = len(lm.encode("Review:"))   # BOS included; the 8 rows share it
### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    checks.answered(computed_prompt_tokens=computed_prompt_tokens)
    reviews = decoding.sample(lm, "Review:", n=8, seed=SEED, max_new_tokens=1)
    computed = wb.budget.total(r.cost for r in reviews).computed_tokens
    n = computed_prompt_tokens
    checks.expect(n != 8 * computed, f"computed_prompt_tokens = {n} counts the prompt once per "
                  "sample, but the 8 samples share one prompt: it is computed once.")
    checks.expect(n != computed - 1, f"computed_prompt_tokens = {n} is one short: the BOS "
                  "token that lm.encode puts first is computed too.")
    checks.expect(n == computed, f"computed_prompt_tokens = {n} is not what the run computed: "
                  "count the prompt's tokens with lm.encode, once for all 8 samples (the one "
                  "new token of each comes out of that same pass).")

# %% [markdown]
# **Exercise 2.** Use the exact grammar (`story`) to find p\* of the story `" The cat slept."`
# (with its leading space, as a story follows `"Story:"`); store the probability in `p_cat`.

# %% tags=["solution"]
### BEGIN SOLUTION
p_cat = story.p_star(" The cat slept.")
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(p_cat=p_cat)
    logp = story.log_p_star(" The cat slept.")
    checks.expect(not (isinstance(p_cat, (int, float)) and abs(p_cat - logp) < 1e-9),
                  f"p_cat = {p_cat} is a log-probability; the exercise asks for p*(y) itself.")
    checks.close("p_cat", p_cat, math.exp(logp), "ask the grammar for p* of exactly "
                 "\" The cat slept.\" (story.p_star), leading space included.", tol=1e-12)

# %% [markdown]
# **Exercise 3.** Which is more probable under p\*: the most probable story (`story.mode()`),
# or the story `text` sampled above? Store the log p\* of each in `logp_mode` and `logp_sample`,
# and `True` in `mode_more_probable` if the mode is the more probable one (else `False`).

# %% tags=["solution"]
### BEGIN SOLUTION
logp_mode = story.mode()[1]
logp_sample = story.log_p_star(text)
mode_more_probable = logp_mode > logp_sample
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(logp_mode=logp_mode, logp_sample=logp_sample,
                    mode_more_probable=mode_more_probable)
    checks.close("logp_mode", logp_mode, story.mode()[1],
                 "story.mode() returns (text, log p*) of the most probable story.")
    checks.close("logp_sample", logp_sample, story.log_p_star(text),
                 "story.log_p_star gives log p* of the sampled `text`.")
    checks.expect(mode_more_probable == (story.mode()[1] > story.log_p_star(text)),
                  f"mode_more_probable = {mode_more_probable!r} does not follow from your two "
                  "log-probabilities: the larger log p* is the more probable story.")

# %% [markdown]
# ## Key takeaways
#
# - The workbench follows the survey: a language model p_θ, **generators** that turn a prompt
#   into outputs, and **meta-generators** that call generators, scorers and tools; one module
#   per part of the survey.
# - **TinyWorld** knows its truth exactly: p\* of every story and review, every next-token
#   distribution p\*(· | y<t), the sentiment of a review, the validity of a record, the answer
#   and every step of an arithmetic problem. Later chapters check algorithms against it
#   instead of only describing them.
# - Every result carries a **cost** in the survey's units (Table 5), and the tokens billed
#   and the tokens computed are different numbers (sharing and padding).
# - A number measured on problems is a count with an **uncertainty**: read 71 % on 312
#   problems as 65–75 %, and compare methods on the same problems. TinyWorld's test cells
#   and its zoo were tuned so that meta-generation has room to help: the numbers are evidence
#   about TinyWorld.
#
# ## Further reading
#
# - Welleck, Bertsch, Finlayson, Schoelkopf, Xie, Neubig, Kulikov & Harchaoui (2024), *From
#   Decoding to Meta-Generation: Inference-time Algorithms for Large Language Models*, TMLR:
#   §1 (introduction), §2 (preliminaries) and Table 1 (notation); Table 5 (§6) for the token
#   costs.
# - Finlayson, Schoelkopf & Welleck (2024), *Beyond Decoding: Meta-Generation Algorithms for
#   Large Language Models*, NeurIPS 2024 tutorial (slides).
# - Eldan & Li (2023), *TinyStories: How Small Can Language Models Be and Still Speak Coherent
#   English?* — another small synthetic world in which small models can be trained and
#   studied.
