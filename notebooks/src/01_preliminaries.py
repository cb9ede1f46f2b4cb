# %% [markdown]
# # 01 · Preliminaries: models, generators and the goals of generation
#
# {badges}
#
# **What you will learn**
# - what a language model p_θ is: logits s_θ, a softmax, and a product of next-token
#   distributions; and how it differs from the distribution p\* it was trained to imitate —
#   in TinyWorld we know p\* *exactly*, so we can measure the gap;
# - what a **generator** g(y | x; p_θ, φ) is: any procedure that turns a prompt into outputs,
#   deterministic (y = f(x)) or stochastic (y ~ g);
# - how the survey states what a user wants: an **acceptability** function A, a target
#   distribution q\* ∝ A, and a generator that is close to it (eqs. 1–3);
# - the **three goals** of generation — maximisation, sampling from the model, sampling from a
#   target (§2.2.1–2.2.3) — and, measured, why no single generator is best at all three.
#
# Survey sections: §2 (Preliminaries), §2.1, §2.2. Runs in about 40 s on a 2-core CPU.
#
# **Prerequisites:** chapter 00; the softmax, the chain rule of probability, logarithms, an
# expectation, and the KL divergence KL(p ‖ q) = E_p[log p − log q] (its definition is enough).
# **Student time:** 50–60 minutes (the stepper invites play; the three goals take the longest).

# %%
# SETUP

# %%
# Parameters: the model every cell uses, and the seed that makes the outputs reproducible.
MODEL = "tinyworld"   # any embedded name, a local directory, or a Hugging Face causal-LM id
SEED = 0

# %%
import math
import random
from functools import partial

import numpy as np
import torch

import workbench as wb
from workbench import adapters, decoding, stats
from workbench.measures import position_logits, sequence_logprob
from workbench.tinyworld import worlds
from workbench.tinyworld.grammar import TokenGrammar
from widgets import checks
from widgets import token_level as views
from widgets.source import show_source
from widgets.stepper import Stepper

wb.seed_everything(SEED)
lm = wb.load(MODEL)
story = worlds.story_grammar()            # the true distribution p* of TinyWorld's stories
truth = TokenGrammar(story, lm.tokenizer)  # the same p*, seen token by token
PROMPT = story.prompt                     # "Story:"
EOS = lm.eos_token_id
TARGET = MODEL == "tinyworld"             # the claims about the model's numbers are about it
print(lm)


def interval(values):
    """The mean of ``values`` with a seeded 95 % bootstrap percentile interval: (mean, low, high)."""
    return stats.mean_interval(values, seed=SEED)

# %% [markdown]
# ## A language model is a product of next-token distributions
#
# A language model scores every token of the vocabulary 𝒱 with a **logit** s_θ(· | y<t, x) and
# turns the scores into probabilities with a softmax (§2.2):
#
# $$p_\theta(\cdot \mid y_{<t}, x) = \frac{\exp s_\theta(\cdot \mid y_{<t}, x)}{Z}, \qquad
#   p_\theta(y \mid x) = \prod_{t=1}^{|y|} p_\theta(y_t \mid y_{<t}, x).$$
#
# The second equation (the chain rule, eq. 11 in §3.2) is what makes a sequence's probability
# computable one token at a time. Here are the logits after `"Story: The"` and the softmax:

# %% tags=["claim"]
logits = lm.next_logits(PROMPT + " The")[0]
probs = torch.softmax(logits, -1)
assert torch.allclose(probs.log(), lm.next_logprobs(PROMPT + " The")[0], atol=1e-5)
top = torch.topk(probs, 6)
print(f"vocabulary size |V| = {len(probs)}, probabilities sum to {float(probs.sum()):.4f}")
for p, t in zip(top.values.tolist(), top.indices.tolist()):
    print(f"  {lm.tokenizer.decode([t])!r:12} logit {float(logits[t]):6.2f}   p_θ = {p:.3f}")

# %% [markdown]
# ## p_θ imitates p\*, and TinyWorld knows p\*
#
# A model is trained to approximate the distribution its training data came from, the survey's
# p\* (Table 1: "the target distribution for which an LM was trained"). For real text nobody
# knows p\*. TinyWorld's stories come from a probabilistic grammar, so p\*(y) is exact, and so is
# p\*(y_t | y<t) in token space. Below, one story, token by token: the model's probability of
# each token next to the truth. The last row is the end of the story (the EOS token): a
# complete output y includes the decision to stop.

# %%
y = " The cat found a ball."
ids = lm.encode(y, bos=False) + [EOS]
lp_tokens = lm.token_logprobs(PROMPT, [ids])[0]
prefix = lm.encode(PROMPT)
print(f"{'token':>10}  {'p_θ':>6}  {'p*':>6}")
for t, lp in zip(ids, lp_tokens):
    p_true = truth.next_token_distribution(prefix).get(t, 0.0)
    name = "</s>" if t == EOS else lm.tokenizer.decode([t])
    print(f"{name!r:>10}  {math.exp(lp):6.3f}  {p_true:6.3f}")
    prefix = prefix + [t]
print(f"log p_θ(y | x) = {sum(lp_tokens):.3f}   log p*(y) = {story.log_p_star(y):.3f}")

# %% [markdown]
# ### Be the generator
#
# Step through a story yourself. **sample** draws the next token from p_θ, **greedy** takes the
# most probable one, clicking a bar chooses that token, **rewind** undoes, **branch** keeps the
# current path drawn while you try another. The left panel is the running log p_θ(y≤t | x):
# it can only go down, one log-probability at a time. (Four tokens were sampled already.)

# %%
stepper = Stepper(lm, PROMPT, seed=SEED)
for _ in range(4):
    stepper.session.sample()
stepper.redraw()
stepper

# %% [markdown]
# The cell below reads the path you built and asks the truth about it: is it a prefix that
# p\* can continue (probability > 0), and how probable is that prefix under each distribution?
# Re-run it after stepping.

# %%
s = stepper.session
toks = s.tokens[:s.tokens.index(EOS) + 1] if EOS in s.tokens else s.tokens
if toks and toks[-1] == EOS:       # a finished story: its exact log p*
    lp_true = truth.log_p_star_tokens(lm.encode(PROMPT) + toks)
else:                              # a prefix: log p*(some story starts like this)
    mass = truth.prefix_probability(lm.encode(PROMPT) + toks)
    lp_true = math.log(mass) if mass > 0 else -math.inf
print(f"your story so far: {lm.decode(toks)!r}")
print(f"log p_θ = {sum(s.logprobs[:len(toks)]):.3f}   log p* = {lp_true:.3f}"
      + ("   (p* = 0: the grammar cannot produce this)" if lp_true == -math.inf else ""))

# %% [markdown]
# ### How close is p_θ to p\*?
#
# Draw 200 stories from p\* and score each under both distributions. If p_θ were perfect every
# point would lie on the diagonal. The average vertical gap, E_{y~p\*}[log p\*(y) − log
# p_θ(y)], is the KL divergence KL(p\* ‖ p_θ): how many nats per story the model loses.

# %%
rng = random.Random(SEED)
true_stories = [story.sample(rng) for _ in range(200)]
true_ids = [lm.encode(t, bos=False) + [EOS] for t in true_stories]
lp_star = np.array([story.log_p_star(t) for t in true_stories])
lp_model = sequence_logprob(lm, PROMPT, true_ids)
gap = lp_star - lp_model
print(f"entropy H(p*) = {story.entropy():.2f} nats per story; mean -log p* here "
      f"{-lp_star.mean():.2f}")
kl_story = interval(gap)
print(f"KL(p* || p_θ) ≈ {kl_story[0]:.2f} nats per story, 95 % bootstrap interval "
      f"[{kl_story[1]:.2f}, {kl_story[2]:.2f}]")
views.logprob_scatter_figure(lp_star, lp_model, true_stories)

# %% tags=["claim"]
assert kl_story[1] > 0, kl_story          # p_θ ≠ p*: the interval excludes 0
if TARGET:
    assert round(kl_story[0], 2) == 0.16 and kl_story[2] < 0.3, kl_story

# %% [markdown]
# The model is close to the truth but not equal to it: p_θ ≈ p\*, never p_θ = p\*. The
# 200 stories measure the gap at 0.16 nats per story, and its interval excludes 0. Generation
# algorithms work with p_θ, and everything they do inherits its errors — chapter 03 shows how
# sampling adapters try to cut the tokens where those errors hurt most.
#
# The other direction tells us something the scatter cannot: the model sometimes writes stories
# that p\* **cannot** produce (p\* = 0), ungrammatical ones. We count them among 200 samples.

# %%
model_samples = decoding.sample(lm, PROMPT, n=200, seed=SEED, max_new_tokens=48)
accepted = [g.finish_reason == "eos" and story.log_p_star(g.text) > -math.inf
            for g in model_samples]
print(f"{sum(accepted)} of {len(accepted)} samples from p_θ are stories p* can produce")
impossible = stats.accuracy([not a for a in accepted])
print("share p* cannot produce:", impossible)
print("some it cannot:", [g.text for g, a in zip(model_samples, accepted) if not a][:3])

# %% tags=["claim"]
assert impossible.low > 0, impossible     # "sometimes": more than never, beyond noise
if TARGET:
    assert (impossible.k, impossible.n) == (8, 200) and impossible.high < 0.1, impossible

# %% [markdown]
# ## Generators
#
# A **generator** g(y | x; p_θ, φ) maps a prompt x, a model and some parameters φ (a
# temperature, a number of beams, a number of samples...) to a distribution over outputs; a
# generation algorithm draws from it, y ~ g (§2.2). Some are deterministic, y = f(x; p_θ, φ):
# greedy decoding and beam search return the same output every time. Others are stochastic.
# In the workbench they are plain functions of `(lm, prompt, ...)`:

# %%
tau_half = [partial(adapters.temperature, tau=0.5)]
print("greedy, twice      :", [decoding.greedy(lm, PROMPT).text for _ in range(2)])
print("beam search (4)    :", [decoding.beam_search(lm, PROMPT, num_beams=4).text])
print("sampling, seeds 0-2:", [decoding.sample(lm, PROMPT, seed=s).text for s in range(3)])
print("sampling at τ = 0.5:", [decoding.sample(lm, PROMPT, adapters=tau_half, seed=s).text
                              for s in range(3)])

# %% [markdown]
# **One loop underneath.** Greedy decoding and sampling are the same token loop,
# `decoding.decode` (a generation algorithm in the sense of §2's Definition 1): at each step it
# computes the logits, applies the adapters and hands the result to a *chooser*, which is the
# only thing that differs. Greedy takes the argmax, y_t = argmax_v s_θ(v | y<t, x); sampling
# draws y_t ~ softmax(q_t(s_θ(· | y<t, x))) with a seeded random generator. Look inside the
# two choosers:

# %%
show_source(decoding.choose_greedy, decoding.choose_sample)

# %%
from workbench.rng import make_generator
loop_greedy = decoding.decode(lm, lm.prefill([PROMPT]), decoding.choose_greedy, 60)[0]
loop_sampled = [decoding.decode(lm, lm.prefill([PROMPT]), decoding.choose_sample, 60, tau_half,
                                generator=make_generator(s))[0] for s in range(3)]
print("the loop with argmax        :", [loop_greedy.text])
print("the loop with draws, τ = 0.5:", [y.text for y in loop_sampled])

# %% tags=["claim"]
# any model: the loop run by hand gives exactly what decoding.greedy and decoding.sample give
assert loop_greedy.token_ids == decoding.greedy(lm, PROMPT, max_new_tokens=60).token_ids
assert [y.token_ids for y in loop_sampled] == [
    decoding.sample(lm, PROMPT, adapters=tau_half, seed=s, max_new_tokens=60).token_ids
    for s in range(3)]
print("greedy decoding and sampling are one loop with two choosers.")

# %% [markdown]
# For most generators the distribution g(· | x) cannot be written down ("in most situations
# analytically intractable", §2.2): what is the probability that best-of-16 with a verifier
# returns y? But for *token-level* samplers it can: sampling through adapters q_t draws each
# token from q_t(p_θ(· | y<t, x)) (eq. 13), so g(y | x) is the product of those adapted
# probabilities. `workbench.measures.sequence_logprob` computes it. For a deterministic
# generator, g puts all its mass on one output.
#
# **Look inside.** Here is the whole computation: the logits at every position of y (one
# forward pass for a batch of outputs), the adapters q_t applied to them, a log-softmax, and
# the sum of the log-probabilities of y's own tokens — eq. 11 without adapters, eq. 13 with.

# %%
show_source(sequence_logprob)

# %%
ys = [" The cat found the ball.", " The cat slept.", " A brave wizard sang happily."]
y_ids = [lm.encode(t, bos=False) + [EOS] for t in ys]
for tau in (0.5, 1.0, 2.0):
    lg = sequence_logprob(lm, PROMPT, y_ids, [partial(adapters.temperature, tau=tau)])
    print(f"τ = {tau}: " + "   ".join(f"g({t!r}) = {math.exp(v):.2e}" for t, v in zip(ys, lg)))
print("greedy: g(y) = 1 for", repr(decoding.greedy(lm, PROMPT).text), "and 0 for every other y")

# %% [markdown]
# ## What does the user want? Acceptability and the target q\*
#
# §2.1 starts from the user: an **acceptability** function A(S) scores any *set* of outputs S.
# Normalised, it is a target distribution, and the ideal generator is the one closest to it:
#
# $$q_*(S) \propto A(S) \quad (1), \qquad \arg\min_g d(q_*, g) \quad (2).$$
#
# In TinyWorld one natural user wants **stories that could have come from the world**: a
# single story is acceptable when p\*(y) > 0, and the target is the world itself, q\* = p\*.
# A user who wants several stories might score a set by how many *different* acceptable
# stories it holds — acceptability of a set can reward diversity as well as quality.

# %%
def acceptable(g):
    """A({y}) for one generated output: it ended, and p* can produce it."""
    return g.finish_reason == "eos" and story.log_p_star(g.text) > -math.inf

def A(outputs):
    """A(S) for a set: the number of distinct acceptable stories in it."""
    return len({g.text for g in outputs if acceptable(g)})

few = model_samples[:16]
print(f"16 samples from p_θ: {sum(map(acceptable, few))} acceptable, A(S) = {A(few)}")
print(f"the greedy output 16 times: A(S) = {A([decoding.greedy(lm, PROMPT)] * 16)}")

# %% [markdown]
# ## Three goals, one family of generators
#
# The survey groups generation methods by goal, all special cases of maximising a reward
# r(q\*, g) between the target and the generator's distribution (eq. 3):
#
# 1. **maximisation** (§2.2.1, eq. 4): output what scores highest; with q\* ∝ v the reward is
#    r = E_{y~g}[q\*(y | x)];
# 2. **sampling from the model** (§2.2.2, eq. 5): y ~ p_θ, so g should equal p_θ;
# 3. **sampling from a target** (§2.2.3, eq. 6): minimise KL(q\* ‖ g).
#
# We take q\* = p\* and score one family of generators on all three: temperature sampling at
# several τ (eq. 14; chapter 03), and greedy decoding and exact MAP search (chapter 02) as the
# deterministic limit. Goal 1 is estimated from 100 outputs of each sampler at five
# temperatures. Goals 2 and 3 are expectations under p_θ and under p\*: we estimate them on 200
# samples of p_θ and the 200 stories of p\* from above, scored under every generator with
# `sequence_logprob` (the model's logits are computed once and re-used for every τ).

# %%
SAMPLED = [0.3, 0.5, 0.7, 1.0, 1.4]
TAUS = sorted(set(SAMPLED) | {0.4, 0.6, 0.8, 0.9, 1.1, 1.2, 1.7, 2.0})
model_ids = [g.token_ids + [EOS] for g in model_samples if g.finish_reason == "eos"]
L_model = position_logits(lm, PROMPT, model_ids)     # s_θ at every position, computed once
L_true = position_logits(lm, PROMPT, true_ids)
lp_model_own = sequence_logprob(lm, PROMPT, model_ids, logits=L_model)
rows, each = [], {}     # each[(goal, τ)]: the per-output values behind a row's mean
for tau in TAUS:
    temp = [partial(adapters.temperature, tau=tau)]
    each["kl_model", tau] = lp_model_own - sequence_logprob(lm, PROMPT, model_ids, temp,
                                                            logits=L_model)
    each["kl_target", tau] = lp_star - sequence_logprob(lm, PROMPT, true_ids, temp,
                                                        logits=L_true)
    row = {"tau": tau, "label": f"τ = {tau}", "expected_p_star": None, "acceptable": None,
           "kl_model": float(np.mean(each["kl_model", tau])),
           "kl_target": float(np.mean(each["kl_target", tau]))}
    if tau in SAMPLED:
        outs = decoding.sample(lm, PROMPT, adapters=temp, n=100, seed=SEED, max_new_tokens=48)
        each["p_star", tau] = np.array(
            [math.exp(story.log_p_star(g.text)) if acceptable(g) else 0.0 for g in outs])
        row["expected_p_star"] = float(np.mean(each["p_star", tau]))
        row["acceptable"] = float(np.mean([acceptable(g) for g in outs]))
    rows.append(row)
greedy_out = decoding.greedy(lm, PROMPT)
map_out = decoding.exact_map(lm, PROMPT, max_new_tokens=24)
for name, out in (("greedy", greedy_out), ("exact MAP", map_out)):
    rows.append({"tau": 0, "label": name, "expected_p_star": story.p_star(out.text),
                 "acceptable": 1.0, "kl_model": math.inf, "kl_target": math.inf})
fmt = lambda v, f: "—".rjust(len(format(0.0, f))) if v is None else format(v, f)
print(f"{'generator':>10}  {'E_g[p*(y)]':>10}  {'KL(p_θ‖g)':>9}  {'KL(p*‖g)':>9}  acceptable")
for r in rows:
    print(f"{r['label']:>10}  {fmt(r['expected_p_star'], '10.5f')}  {r['kl_model']:9.3f}  "
          f"{r['kl_target']:9.3f}  {fmt(r['acceptable'], '10.2f')}")
print(f"greedy: {greedy_out.text!r}   exact MAP: {map_out.text!r}   "
      f"mode of p*: {story.mode()[0]!r}")
views.goals_figure(rows)

# %% [markdown]
# Every number in that table is an average over a finite set of outputs — 100 samples per
# temperature for goal 1, the 199 finished samples of p_θ for goal 2, the 200 stories of p\*
# for goal 3 — so each has an uncertainty. The cell below gives the 95 % bootstrap intervals
# of the numbers the reading below relies on. For goal 3 it also compares neighbouring
# temperatures on the *same* 200 stories: the interval of the per-story difference.

# %%
def show(name, ci):
    print(f"{name:34} {ci[0]:9.5f}  [{ci[1]:9.5f}, {ci[2]:9.5f}]")

for tau in SAMPLED:
    show(f"goal 1: E_g[p*(y)], τ = {tau}", interval(each["p_star", tau]))
print(f"{'goal 1: greedy, exact MAP (exact)':34} {rows[-2]['expected_p_star']:9.5f}, "
      f"{rows[-1]['expected_p_star']:9.5f}")
for tau in (0.8, 0.9, 1.1, 1.2):
    show(f"goal 2: KL(p_θ‖g), τ = {tau}", interval(each["kl_model", tau]))
for tau in (0.9, 1.0, 1.1, 1.2):
    show(f"goal 3: KL(p*‖g), τ = {tau}", interval(each["kl_target", tau]))
goal3 = {other: interval(each["kl_target", 1.0] - each["kl_target", other])
         for other in (0.9, 1.1, 1.2)}
for other, ci in goal3.items():
    show(f"goal 3: τ = 1.0 minus τ = {other}", ci)

# %% tags=["claim"]
kl_model = {r["tau"]: r["kl_model"] for r in rows if r["tau"] > 0}
kl_target = {r["tau"]: r["kl_target"] for r in rows if r["tau"] > 0}
assert abs(kl_model[1.0]) < 1e-9                           # goal 2 met exactly at τ = 1
assert rows[-1]["label"] == "exact MAP" and map_out.optimal
if TARGET:
    # goal 1: colder samplers concentrate; exact MAP beats every sampler; greedy is worse than
    # exact MAP and than sampling at τ = 0.3
    e1 = {tau: interval(each["p_star", tau]) for tau in SAMPLED}
    assert [round(e1[t][0], 6) for t in SAMPLED] == sorted((round(e1[t][0], 6) for t in SAMPLED),
                                                           reverse=True), e1
    assert e1[0.3][1] > e1[1.0][2] and e1[1.0][1] > 0, e1
    assert map_out.text == story.mode()[0] and greedy_out.text != map_out.text
    assert rows[-1]["expected_p_star"] > max(ci[2] for ci in e1.values())
    assert rows[-2]["expected_p_star"] < e1[0.3][1]
    # goal 2: every other temperature is resolved above 0 except τ = 0.9
    assert len(model_ids) == 199 and len(true_ids) == 200
    for tau in (t for t in kl_model if t != 1.0):
        low = interval(each["kl_model", tau])[1]
        assert (low > 0) == (tau != 0.9), (tau, kl_model[tau], low)
    # goal 3: the minimum is at τ = 1.0, indistinguishable from 1.1, resolved below 0.9 and 1.2
    assert min(kl_target, key=kl_target.get) == 1.0, kl_target
    assert goal3[1.1][1] < 0 < goal3[1.1][2], goal3
    assert goal3[0.9][2] < 0 and goal3[1.2][2] < 0, goal3
    assert A(few) == 16 and A([greedy_out] * 16) == 1

# %% [markdown]
# What the three panels show:
# - **Goal 1** rewards concentration. The colder the sampler, the more its outputs pile onto
#   the most probable stories: E_g[p\*(y)] falls at every step from τ = 0.3 to τ = 1.4 (some
#   neighbouring intervals overlap, but the fall from τ = 0.3 to τ = 1.0 is resolved). The
#   deterministic generators put all their mass on one story. Exact MAP finds the story with
#   the highest p_θ, which here is also the one with the highest p\*, and beats every
#   sampler; greedy decoding, only an approximation of MAP (chapter 02), does worse than
#   exact MAP and even worse than sampling at τ = 0.3.
# - **Goal 2** is met exactly at τ = 1: ancestral sampling *is* p_θ, so KL(p_θ ‖ g) = 0. Any
#   other temperature moves away; a deterministic generator is infinitely far away, since it
#   cannot produce the model's other outputs (the figure draws ∞ at the top of its axis: it is
#   not a value). The KL is positive for every τ ≠ 1 in theory; with 199 samples the estimate
#   resolves it everywhere except at τ = 0.9, where 0.03 nats are within the noise.
# - **Goal 3** asks for p\*, not p_θ. Because p_θ ≠ p\*, the best temperature *need not* be
#   exactly 1: a temperature could compensate for the model's errors, for instance cool a
#   model that spreads too much mass into its tail. Here that does not happen, or not
#   measurably: the smallest KL(p\*‖g) is at τ = 1.0, and τ = 1.1 is indistinguishable from it
#   (the per-story difference has an interval that contains 0), while τ = 0.9 and τ = 1.2 are
#   resolved as worse. This model's errors are not of a kind one temperature can fix. The
#   deterministic generators are again infinitely far.
#
# No generator wins all three: this is why the survey's question "why are sophisticated
# generation algorithms needed at all?" has an answer — different users want different things,
# and sampling once from p_θ serves only one of them. A set of outputs makes the same point:
# 16 samples of p_θ hold 16 distinct acceptable stories, A(S) = 16, and the greedy story 16
# times has A(S) = 1. The next two chapters take the goals in turn: MAP decoding (goal 1,
# chapter 02) and sampling with adapters (goals 2–3, chapter 03).

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1** (the chain rule). With `lm.token_logprobs`, compute log p_θ(y | x) of the
# complete story `" The dog ran."` after `PROMPT`: a story is complete when the model ends it,
# so its last token is `EOS`. Store the number in `logp_dog`.

# %% tags=["solution"]
### BEGIN SOLUTION
dog = lm.encode(" The dog ran.", bos=False) + [EOS]
logp_dog = sum(lm.token_logprobs(PROMPT, [dog])[0])
### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    checks.answered(logp_dog=logp_dog)
    ids = lm.encode(" The dog ran.", bos=False)
    want = lm.score(PROMPT, [ids + [EOS]])[0]
    checks.expect(not math.isclose(float(logp_dog), lm.score(PROMPT, [ids])[0], abs_tol=1e-4),
                  f"logp_dog = {logp_dog} leaves out the end of the story: add the log-probability "
                  "of EOS after the last word.")
    checks.expect(not math.isclose(float(logp_dog), math.exp(want), abs_tol=1e-6),
                  f"logp_dog = {logp_dog} is a probability; the exercise asks for its logarithm.")
    checks.close("logp_dog", logp_dog, want, "by the chain rule, log p_θ(y | x) is the sum of "
                 "the log-probabilities of y's tokens (EOS included), each given the prompt and "
                 "the tokens before it.", tol=1e-4)

# %% [markdown]
# **Exercise 2** (set acceptability). Draw 16 samples at temperature 0.5 and 16 at
# temperature 1.5 (`n=16, seed=SEED, max_new_tokens=48`, the adapter
# `partial(adapters.temperature, tau=...)`) and compute the acceptability A(S) of each set, the
# number of *distinct* acceptable stories in it. Store them in `a_cold` and `a_hot`.

# %% tags=["solution"]
### BEGIN SOLUTION
a_cold = A(decoding.sample(lm, PROMPT, adapters=[partial(adapters.temperature, tau=0.5)],
                           n=16, seed=SEED, max_new_tokens=48))
a_hot = A(decoding.sample(lm, PROMPT, adapters=[partial(adapters.temperature, tau=1.5)],
                          n=16, seed=SEED, max_new_tokens=48))
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(a_cold=a_cold, a_hot=a_hot)
    for name, value, tau in (("a_cold", a_cold, 0.5), ("a_hot", a_hot, 1.5)):
        outs = decoding.sample(lm, PROMPT, adapters=[partial(adapters.temperature, tau=tau)],
                               n=16, seed=SEED, max_new_tokens=48)
        checks.expect(value != sum(map(acceptable, outs)) or value == A(outs),
                      f"{name} = {value} counts every acceptable sample; A(S) counts the "
                      "*distinct* acceptable stories (a story drawn twice counts once).")
        checks.expect(value == A(outs), f"{name} = {value} is not A(S) of the 16 samples at "
                      f"τ = {tau}: draw them with the arguments above (same seed) and count the "
                      "distinct stories that ended with EOS and that p* can produce.")

# %% [markdown]
# **Exercise 3.** Which temperature in `TAUS` came closest to the target p\* (goal 3)? Store
# it in `best_tau`.

# %% tags=["solution"]
### BEGIN SOLUTION
best_tau = min((r for r in rows if r["tau"] > 0), key=lambda r: r["kl_target"])["tau"]
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(best_tau=best_tau)
    kl = {r["tau"]: r["kl_target"] for r in rows if r["tau"] > 0}
    kl_model = {r["tau"]: r["kl_model"] for r in rows if r["tau"] > 0}
    checks.expect(best_tau in kl, f"best_tau = {best_tau!r} is not one of TAUS {TAUS}.")
    checks.expect(kl_model[best_tau] != min(kl_model.values()) or kl[best_tau] == min(kl.values()),
                  f"best_tau = {best_tau} is closest to p_θ (goal 2, KL(p_θ‖g)); goal 3 measures "
                  "the distance to the target p*, KL(p*‖g).")
    checks.expect(kl[best_tau] == min(kl.values()), f"best_tau = {best_tau} is not where "
                  "KL(p*‖g) is smallest: read the column KL(p*‖g) of the table (or the rows' "
                  "\"kl_target\").")

# %% [markdown]
# ## Key takeaways
#
# - A language model is a softmax over logits at every step, and a sequence's probability is
#   the product of its next-token probabilities (eq. 11): computable one token at a time.
# - p_θ approximates the training distribution p\* and never equals it. TinyWorld measures the
#   gap exactly: about 0.16 nats per story, and the model writes a few stories the world
#   cannot (8 of 200).
# - A **generator** g(y | x; p_θ, φ) is any procedure from prompts to outputs; for
#   token-level samplers g(y | x) is the product of the adapted next-token probabilities
#   (eq. 13), for deterministic ones it is a point mass.
# - The user's goal is an acceptability A(S) over *sets* of outputs, normalised into a target
#   q\* (eqs. 1–3). Maximisation, sampling from the model and sampling from a target are
#   different goals: exact MAP wins the first, τ = 1 the second, and the third asks for p\*,
#   which no temperature reaches here.
# - Every number measured on samples comes with an interval; a difference inside it (τ = 1.0
#   against 1.1) is not a finding.
#
# ## Further reading
#
# - Welleck et al. (2024), *From Decoding to Meta-Generation*: §2 (preliminaries), §2.1 (the
#   user's goal, eqs. 1–2), §2.2 (the modeling problem, eq. 3; §2.2.1–2.2.3, eqs. 4–6), Table 1.
# - Meister, Pimentel, Malagutti, Wilcox & Cotterell (2023), *On the Efficacy of Sampling
#   Adapters* — the sampling-adapter view of eq. 13 (the survey's Meister et al., 2023a).
# - Eikema & Aziz (2020), *Is MAP Decoding All You Need? The Inadequacy of the Mode in Neural
#   Machine Translation* — why the most probable output and a good one differ (chapter 02).
# - Holtzman, Buys, Du, Forbes & Choi (2020), *The Curious Case of Neural Text Degeneration* —
#   the samples-versus-maximisation debate that motivates chapters 02 and 03.
