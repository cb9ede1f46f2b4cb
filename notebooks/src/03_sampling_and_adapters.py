# %% [markdown]
# # 03 · Sampling and sampling adapters
#
# {badges}
#
# **What you will learn**
# - **ancestral sampling** (eqs. 11–12): drawing a sequence token by token draws it exactly
#   from p_θ — checked against the model's own distribution;
# - **sampling adapters** q_t (eq. 13) that reshape each next-token distribution before the
#   draw: temperature (eq. 14) and the truncation methods of Table 2 — top-k, nucleus (top-p),
#   min-p, typical, ε, η, Mirostat;
# - measured: temperature τ → 0 **is** greedy decoding and τ → ∞ approaches the **uniform**
#   distribution; truncation removes the mass the model puts where the truth puts none, at the
#   price of some mass the truth needs; and across adapters and settings, **diversity trades
#   against coherence** (§3.2).
#
# Survey sections: §3.2 (sampling and adapters), §3.3 (token-level sampling adapters,
# Table 2). Runs in about 45 s on a 2-core CPU.

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
from workbench import adapters, decoding
from workbench.measures import distinct_n, position_logits
from workbench.tinyworld import worlds
from workbench.tinyworld.grammar import TokenGrammar
from widgets import checks
from widgets import distribution as dist_views
from widgets import token_level as views

wb.seed_everything(SEED)
lm = wb.load(MODEL)
EOS = lm.eos_token_id
story = worlds.story_grammar()
truth = TokenGrammar(story, lm.tokenizer)
PROMPT = story.prompt
print(lm)

# %% [markdown]
# ## Ancestral sampling
#
# Because an autoregressive model factorises a sequence's probability into next-token
# conditionals (eq. 11), a sequence can be drawn one token at a time:
#
# $$y_t \sim p_\theta(\cdot \mid y_{<t}, x) \quad (12)$$
#
# and the result is *exactly* a sample of p_θ(y | x). `decoding.sample` does this (with a KV
# cache, so each step costs one token of computation). A quick check that the draws follow
# p_θ: 4000 one-token samples after `"Story: The"`, their frequencies against p_θ.

# %%
prefix = PROMPT + " The"
p = torch.softmax(lm.next_logits(prefix)[0].double(), -1).numpy()
draws = decoding.sample(lm, prefix, n=4000, seed=SEED, max_new_tokens=1)
freq = np.bincount([d.token_ids[0] if d.token_ids else EOS for d in draws],
                   minlength=len(p)) / len(draws)
tv = 0.5 * np.abs(freq - p).sum()
noise = 0.5 * np.sqrt(2 / np.pi) * np.sqrt(p * (1 - p) / len(draws)).sum()  # E|N(0, σ²)| sums
print(f"total variation between the 4000 draws and p_θ: {tv:.3f} "
      f"(sampling noise alone gives about {noise:.3f})")
ids = dist_views.shown_tokens(p, top=15)
fig = views.frequency_figure(dist_views.token_labels(lm.tokenizer, ids), p[ids], freq[ids],
                             title=f"4000 draws after {prefix!r} against p_θ")
fig

# %% [markdown]
# ## Sampling adapters
#
# Ancestral sampling is diverse, but it also draws tokens the model over-rates, which hurts
# coherence (§3.2). Most remedies are **sampling adapters** (Meister et al., 2023a): each step
# draws from a transformed distribution,
#
# $$y_t \sim q_t\big(p_\theta(y_t \mid y_{<t}, x)\big) \quad (13)$$
#
# In the workbench an adapter is a function from logits to logits (`-inf` where a token is
# removed), and `decoding.sample(..., adapters=[...])` applies a list of them in order.
# The simplest is **temperature** (Example 1), which divides the logits by τ:
#
# $$q_t(y_t \mid y_{<t}, x; p_\theta, \tau) \propto \exp\big(s_\theta(y_{<t}, x) / \tau\big)
#   \quad (14)$$
#
# The survey: "Sending τ to 0 yields greedy decoding, τ = 1 yields ancestral sampling, and
# τ > 1 approaches uniform sampling." We check both limits on one next-token distribution.

# %%
logits = lm.next_logits(PROMPT + " The little")[0].double()
greedy_token = int(logits.argmax())
TAUS = np.geomspace(0.01, 100, 25)
qs = [torch.softmax(adapters.temperature(logits, float(t)), -1).numpy() for t in TAUS]
entropy = [float(-(q[q > 0] * np.log(q[q > 0])).sum()) for q in qs]
p_top = [float(q[greedy_token]) for q in qs]
tv_uniform = [float(0.5 * np.abs(q - 1 / len(q)).sum()) for q in qs]
for i in (0, 8, 12, 16, 24):
    print(f"τ = {TAUS[i]:7.2f}: entropy {entropy[i]:.3f} nats, q(greedy token) = {p_top[i]:.3f},"
          f" TV to uniform = {tv_uniform[i]:.3f}")
print(f"log |V| = {math.log(len(logits)):.3f}")
views.temperature_figure(TAUS, entropy, p_top, tv_uniform, math.log(len(logits)))

# %% [markdown]
# And at the level of whole outputs: 8 samples at τ = 0.01 are all the greedy story, while at
# τ = 100 the model is ignored and tokens come out nearly uniformly — not even words.

# %%
cold = decoding.sample(lm, PROMPT, adapters=[partial(adapters.temperature, tau=0.01)], n=8,
                       seed=SEED, max_new_tokens=24)
hot = decoding.sample(lm, PROMPT, adapters=[partial(adapters.temperature, tau=100.0)], n=8,
                      seed=SEED, max_new_tokens=12)
print("greedy        :", repr(decoding.greedy(lm, PROMPT).text))
print("τ = 0.01, 8 × :", {s.text for s in cold})
print("τ = 100       :", repr(hot[0].text))
hot_tokens = [t for s in hot for t in s.token_ids]
print(f"τ = 100: {len(set(hot_tokens))} distinct tokens among {len(hot_tokens)} drawn")

# %% [markdown]
# ## The adapters of Table 2
#
# Temperature rescales; the others **truncate**: they keep a subset of tokens and renormalise.
#
# | adapter | keeps the tokens ... | survey, Table 2 |
# |---|---|---|
# | `top_k(k)` | ... with the k largest probabilities | truncation (top-k) |
# | `top_p(p)` | ... of the smallest set with mass ≥ p (nucleus) | truncation (cumulative prob.) |
# | `min_p(p)` | ... with probability ≥ p · max probability | truncation (probability) |
# | `typical(mass)` | ... whose surprise −log p is closest to the entropy, up to `mass` | truncation (entropy) |
# | `epsilon(eps)` | ... with probability ≥ ε | truncation (probability) |
# | `eta(eps)` | ... with probability ≥ min(ε, √ε·e^(−H)) | truncation (prob. and entropy) |
# | `Mirostat(tau)` | ... with surprise ≤ μ, where μ adapts so the average surprise is τ bits | adaptive truncation |
# | `bat(eps)` | ... with probability ≥ ε, or that a linear program proves the truth must give mass | truncation (linear program) |
#
# The explorer shows one next-token distribution after a story prefix: grey bars (✕) are the
# tokens the adapters removed, orange bars the distribution q that is actually sampled, and the
# green diamonds the **true** p\* of TinyWorld. Tick adapters, move the sliders, edit the
# prompt. The title tells how much of p_θ's mass — and of the truth's — survives.

# %%
explorer = dist_views.DistributionExplorer(lm, PROMPT + " The little cat", top=20,
                                           settings={"top_p": 0.9})
explorer

# %%
prefix = PROMPT + " The little cat"
row_logits = lm.next_logits(prefix)[0].float()
p_star = dist_views.true_next(lm, prefix)
p_row = torch.softmax(row_logits.double(), -1).numpy()
ids = dist_views.shown_tokens(p_row, p_star, 20)
labels = dist_views.token_labels(lm.tokenizer, ids)
SETTINGS = {"temperature": 0.7, "top_k": 10, "top_p": 0.9, "min_p": 0.1, "typical": 0.9,
            "epsilon": 0.01, "eta": 0.01}
print(f"after {prefix!r}: p_θ puts {p_row[p_star == 0].sum():.3f} of its mass on tokens p* "
      "forbids")
print(f"{'adapter':22} {'kept':>5} {'p_θ mass kept':>14} {'p* mass kept':>13}")
for name, value in SETTINGS.items():
    d = dist_views.distribution_data(row_logits, {name: value}, ids, labels, p_star)
    print(f"{name + '(' + str(value) + ')':22} {d['n_kept']:5d} {d['kept_mass']:14.3f} "
          f"{d['p_star_kept']:13.3f}")
dist_views.distribution_figure(
    dist_views.distribution_data(row_logits, {"top_p": 0.9}, ids, labels, p_star), prefix)

# %% [markdown]
# ## Why truncate? The model's errors live in the tail
#
# Ancestral sampling "can suffer from incoherence, i.e., over-sampling highly-unlikely tokens
# due to model error" (§3.2). With the exact p\* we can measure this token by token. Along 60
# true stories, at every position, we compute two numbers for each adapter:
# - **error mass**: the probability q gives to tokens that p\* forbids (they make the story
#   ungrammatical — incoherence);
# - **truth lost**: the share of p\*'s own mass that q removed (tokens the world would have
#   used, now impossible — lost diversity).

# %%
rng = random.Random(SEED)
stories = [story.sample(rng) for _ in range(60)]
conts = [lm.encode(s, bos=False) + [EOS] for s in stories]
L = torch.cat(position_logits(lm, PROMPT, conts))                  # (positions, V)
base = lm.encode(PROMPT)
P_STAR = torch.tensor(np.stack([truth.next_token_vector(base + c[:t], lm.vocab_size)
                                for c in conts for t in range(len(c))]))
FAMILIES = {"ancestral": lambda v: [],
            "temperature": lambda v: [partial(adapters.temperature, tau=v)],
            "top_k": lambda v: [partial(adapters.top_k, k=v)],
            "top_p": lambda v: [partial(adapters.top_p, p=v)],
            "min_p": lambda v: [partial(adapters.min_p, p=v)],
            "typical": lambda v: [partial(adapters.typical, mass=v)],
            "epsilon": lambda v: [partial(adapters.epsilon, eps=v)],
            "eta": lambda v: [partial(adapters.eta, eps=v)],
            "mirostat": lambda v: [adapters.Mirostat(tau=v)]}
forbidden = P_STAR == 0
print(f"{len(L)} positions along {len(stories)} true stories")
print(f"{'adapter':18} {'error mass':>10} {'truth lost':>10}")
for name, value in [("ancestral", None)] + list(SETTINGS.items()):
    q = torch.softmax(decoding.apply_adapters(L, FAMILIES[name](value)).double(), -1)
    err = float((q * forbidden).sum(-1).mean())       # q's mass on tokens p* forbids
    lost = float((P_STAR * (q == 0)).sum(-1).mean())  # p*'s mass on tokens q removed
    label = name if value is None else f"{name}({value})"
    print(f"{label:18} {err:10.4f} {lost:10.4f}")

# %% [markdown]
# Every truncation cuts most of the error mass — and every one of them also cuts some of the
# truth. Temperature below 1 moves mass away from the tail without removing anything, so it
# loses none of the truth but keeps some error mass. This is the diversity–coherence trade-off
# at the level of one token; next, at the level of whole stories.
#
# ## Experiment: diversity against coherence
#
# For every adapter family of Table 2 we sample 64 stories at several settings and measure
# - **diversity**: distinct-2, the share of distinct token bigrams across the 64 stories;
# - **coherence**: the share of *acceptable* stories (p\* > 0, as in chapter 01), and how
#   probable the acceptable ones are under the truth: their mean exact log p\* per token (per
#   token, because a longer story is less probable however good it is).
#
# The star is p\* itself: 64 stories of the world, the diversity and coherence we would like.

# %%
SWEEP = {"temperature": [0.5, 0.7, 1.0, 1.3, 1.6], "top_k": [3, 10, 30, 100],
         "top_p": [0.5, 0.8, 0.9, 0.95], "min_p": [0.3, 0.1, 0.05, 0.02],
         "typical": [0.3, 0.6, 0.9, 0.95], "epsilon": [0.05, 0.01, 0.003, 0.001],
         "eta": [0.05, 0.01, 0.003, 0.001], "mirostat": [1.5, 2.5, 3.5, 4.5]}
N = 64

def coherence(outputs):
    """(token ids, finished) pairs -> the share of acceptable stories, and the mean exact
    log p* of the acceptable ones, per story and per token (the end of the story included)."""
    lps = [(story.log_p_star(lm.decode(ids)) if done else -math.inf, len(ids) + 1)
           for ids, done in outputs]
    ok = [(v, n) for v, n in lps if v > -math.inf]
    return {"acceptable": len(ok) / len(lps),
            "logp_star": float(np.mean([v for v, _ in ok])) if ok else float("nan"),
            "logp_star_token": float(np.mean([v / n for v, n in ok])) if ok else float("nan")}

points = []
for family, values in SWEEP.items():
    for v in values:
        outs = decoding.sample(lm, PROMPT, adapters=FAMILIES[family](v), n=N, seed=SEED,
                               max_new_tokens=48)
        points.append({"family": family, "label": f"{family}({v})",
                       "diversity": distinct_n([o.token_ids for o in outs], 2),
                       **coherence([(o.token_ids, o.finish_reason == "eos") for o in outs])})
ref_ids = [lm.encode(story.sample(rng), bos=False) for _ in range(N)]
reference = {"label": "p* (the world)", "diversity": distinct_n(ref_ids, 2),
             **coherence([(ids, True) for ids in ref_ids])}
print(f"{'setting':16} {'distinct-2':>10} {'acceptable':>10} {'log p*':>7} {'per token':>9}")
for r in points + [reference]:
    print(f"{r['label']:16} {r['diversity']:10.3f} {r['acceptable']:10.3f} "
          f"{r['logp_star']:7.2f} {r['logp_star_token']:9.3f}")
views.tradeoff_figure(points, reference)

# %% [markdown]
# How to read it: each line is one adapter family, each point one setting; moving along a line
# trades one goal for the other.
# - **More truncation or a lower temperature** (left to right on both panels): nearly every
#   story is acceptable and probable, but the stories repeat each other — diversity falls.
# - **Less truncation or a higher temperature**: more distinct bigrams, but more ungrammatical
#   stories, and the acceptable ones are less probable — the incoherence of ancestral sampling.
# - The families mostly trace the **same frontier**; which point lies closest to the star is
#   the practical question. The survey's reading of the literature is the same: Shi et al.
#   (2024a) "find no definitive best method", and which adapter to use "remains an open
#   question".
#
# Two adapters of Table 2 need more than the model's logits and are elsewhere: contrastive
# decoding and DExperts use other models (chapter 04). Basis-aware truncation (`adapters.bat`)
# solves linear programs — seconds per token — so it is better inspected one distribution at a
# time than swept here.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1.** What is the entropy (in nats) of the next-token distribution after
# `"Story: The little"` (its logits are `logits`) at temperature τ = 0.5? Use
# `adapters.temperature` and store it in `entropy_half`.

# %% tags=["solution"]
### BEGIN SOLUTION
q_half = torch.softmax(adapters.temperature(logits, 0.5), -1)
entropy_half = float(-(q_half * q_half.log()).sum())
### END SOLUTION

# %% tags=["check"]
def entropy_at(tau):
    lq = torch.log_softmax(logits / tau, -1)
    return float(-(lq.exp() * lq).sum())

with checks.exercise(1):
    checks.answered(entropy_half=entropy_half)
    checks.expect(not math.isclose(float(entropy_half), entropy_at(1.0), rel_tol=1e-6),
                  f"entropy_half = {entropy_half} is the entropy at τ = 1: apply the temperature "
                  "to the logits before the softmax.")
    checks.expect(not math.isclose(float(entropy_half), entropy_at(0.5) / math.log(2), rel_tol=1e-6),
                  f"entropy_half = {entropy_half} is in bits; nats use the natural logarithm.")
    checks.close("entropy_half", entropy_half, entropy_at(0.5), "H(q) = −Σ q log q, with q the "
                 "softmax of the logits divided by τ = 0.5 (tokens with q = 0 contribute 0).",
                 tol=1e-6)

# %% [markdown]
# **Exercise 2** (predict, then run). Draw 8 stories with `top_k` and k = 1 (`n=8, seed=SEED`).
# How many of them are the greedy story? Decide first, then store the count in `n_greedy`.

# %% tags=["solution"]
### BEGIN SOLUTION
k1 = decoding.sample(lm, PROMPT, adapters=[partial(adapters.top_k, k=1)], n=8, seed=SEED)
n_greedy = sum(s.text == decoding.greedy(lm, PROMPT).text for s in k1)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(n_greedy=n_greedy)
    outs = decoding.sample(lm, PROMPT, adapters=[partial(adapters.top_k, k=1)], n=8, seed=SEED)
    want = sum(o.text == decoding.greedy(lm, PROMPT).text for o in outs)
    checks.expect(n_greedy == want, f"n_greedy = {n_greedy} is not what the 8 samples show: "
                  "draw them as above and compare each one's text with decoding.greedy's. What "
                  "does top-k keep of each next-token distribution when k = 1?")

# %% [markdown] tags=["solution"]
# *Think about it:* would another seed change that count? Why?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* No. With k = 1 the adapter keeps only the most probable token of each
# next-token distribution, so the "sample" has probability 1 at every step: top-1 sampling is
# greedy decoding, whatever the seed (barring exact ties between the two best logits).
# <!-- END SOLUTION -->

# %% [markdown]
# **Exercise 3.** In the sweep, which setting has the highest diversity among those whose
# stories are at least 95% acceptable? Store its label (e.g. `"top_p(0.9)"`) in
# `best_setting`.

# %% tags=["solution"]
### BEGIN SOLUTION
best_setting = max((r for r in points if r["acceptable"] >= 0.95),
                   key=lambda r: r["diversity"])["label"]
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(best_setting=best_setting)
    by_label = {r["label"]: r for r in points}
    checks.expect(best_setting in by_label, f"best_setting = {best_setting!r} is not a label of "
                  "the sweep (the first column of its table, e.g. \"top_p(0.9)\").")
    ok = [r for r in points if r["acceptable"] >= 0.95]
    checks.expect(by_label[best_setting]["acceptable"] >= 0.95, f"{best_setting} has "
                  f"{by_label[best_setting]['acceptable']:.0%} acceptable stories, under 95%.")
    checks.expect(by_label[best_setting]["diversity"] == max(r["diversity"] for r in ok),
                  f"{best_setting} is at least 95% acceptable, but another such setting has a "
                  "higher distinct-2.")

# %% [markdown]
# **Exercise 4** (implement it). Write nucleus (top-p) truncation (Table 2, eq. 13): given a
# vector of logits and p, return the same logits with `-inf` on every token outside the
# *smallest* set of most probable tokens whose total probability is at least p. The check
# compares your function with `adapters.top_p` on this chapter's distribution and on random
# ones.

# %% tags=["solution"]
def my_top_p(logits, p):
    """Nucleus truncation of a (V,) tensor of logits at mass p."""
    ### BEGIN SOLUTION
    probs = torch.softmax(logits, -1)
    order = torch.argsort(probs, descending=True)
    above = torch.cumsum(probs[order], 0) - probs[order]   # mass of the tokens ranked higher
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[order[above < p]] = True                          # the token crossing p is kept
    return logits.masked_fill(~keep, -math.inf)
    ### END SOLUTION

# %% tags=["check"]
with checks.exercise(4):
    gen = torch.Generator().manual_seed(SEED)
    cases = [(logits, p) for p in (0.5, 0.8, 0.95)] + [
        (3 * torch.randn(50, generator=gen, dtype=torch.float64), p) for p in (0.3, 0.9)]
    for x, mass in cases:
        mine, ref = my_top_p(x.clone(), mass), adapters.top_p(x, mass)
        checks.expect(isinstance(mine, torch.Tensor) and mine.shape == x.shape,
                      f"my_top_p should return a tensor of logits shaped like its input "
                      f"{tuple(x.shape)}, got {type(mine).__name__}.")
        kept, want = torch.isfinite(mine), torch.isfinite(ref)
        n, m = int(kept.sum()), int(want.sum())
        checks.expect(not (kept & ~want).any(), f"at p = {mass} my_top_p keeps {n} tokens and "
                      f"the nucleus has {m}: it is the *smallest* set of most probable tokens "
                      "whose mass reaches p, no token beyond it.")
        checks.expect(not (want & ~kept).any(), f"at p = {mass} my_top_p keeps {n} tokens and "
                      f"the nucleus has {m}: keep the most probable tokens until their mass "
                      "reaches p, the token that takes it past p included.")
        checks.expect(torch.equal(mine[kept], x[kept]), "my_top_p changes the logits it keeps; "
                      "a truncation adapter only sets the others to -inf.")
