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
# Runs in about 20 s on a 2-core CPU.

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
import math

import workbench as wb
from workbench import decoding
from workbench.tinyworld import arithmetic, worlds
from widgets import checks, world as views

wb.seed_everything(SEED)
lm = wb.load(MODEL)
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
story = worlds.story_grammar()
import random
text = story.sample(random.Random(SEED))
print("a story drawn from p*:", repr(text), f"  log p* = {story.log_p_star(text):.2f}")
print("the most probable story:", repr(story.mode()[0]), f"  log p* = {story.mode()[1]:.2f}")
print(f"entropy of p*: {story.entropy():.2f} nats per story")
views.next_token_figure(views.next_token_comparison(lm, "Story: The little", story))

# %% [markdown]
# The most probable story is short and dull; a typical story has log p\* near minus the
# entropy. Keep that in mind for chapter 02, where searching for the most probable output turns
# out not to give typical text.
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
# script; each directory in `data/models/` has a model card and a `metrics.json`.

# %%
print(views.zoo_table())

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
# The four samples share one prompt, so the prompt's tokens were computed once:
# `computed_tokens` is smaller than `input_tokens + output_tokens`.
#
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
