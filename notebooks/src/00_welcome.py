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
import workbench as wb
from workbench import decoding
from workbench.tinyworld import arithmetic, worlds
from widgets import world as views

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
# 1. Sample 8 continuations of `"Review:"` with `n=8`. How many prompt tokens were actually
#    computed? Store the answer in `computed_prompt_tokens`.
# 2. Use the exact grammar to find p\* of the story `" The cat slept."`; store it in `p_cat`.
# 3. Which of the two is more probable under p\*: the most probable story, or the story you
#    sampled above? Store `True` in `mode_more_probable` if the mode is.

# %%
# Your answers here (these are the solutions; change them and re-run the check)
computed_prompt_tokens = len(lm.encode("Review:"))
p_cat = story.p_star(" The cat slept.")
mode_more_probable = story.mode()[1] > story.log_p_star(text)

# %%
reviews = decoding.sample(lm, "Review:", n=8, seed=SEED, max_new_tokens=1)
c = wb.budget.total(r.cost for r in reviews)
assert computed_prompt_tokens == c.computed_tokens, "the prompt is computed once for all 8"
assert abs(p_cat - __import__("math").exp(story.log_p_star(" The cat slept."))) < 1e-12
assert mode_more_probable is True
print("All three answers are right.")
