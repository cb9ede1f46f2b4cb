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
#   price — for most truncations — of some mass the truth needs; and within every adapter
#   family, **diversity trades against coherence** (§3.2);
# - **sampling without replacement** with stochastic beam search (Kool et al., 2019): k
#   distinct sequences and an unbiased estimator, which pays where p_θ is peaked and not where
#   its mass is spread.
#
# Survey sections: §3.2 (sampling and adapters), §3.3 (token-level sampling adapters,
# Table 2). Runs in about 75 s on a 2-core CPU.
#
# **Prerequisites:** chapters 01–02; entropy, total variation and a confidence interval.
# **Student time:** 50–60 minutes (the explorer and exercise 4, writing top-p, take the
# longest).

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
from scipy.stats import chisquare

import workbench as wb
from workbench import adapters, decoding, stats
from workbench.measures import distinct_n, position_logits
from workbench.tinyworld import arithmetic as ar, formats, worlds
from workbench.tinyworld.grammar import TokenGrammar
from widgets import checks
from widgets import distribution as dist_views
from widgets import token_level as views
from widgets.source import show_source

wb.seed_everything(SEED)
lm = wb.load(MODEL)
EOS = lm.eos_token_id
story = worlds.story_grammar()
truth = TokenGrammar(story, lm.tokenizer)
PROMPT = story.prompt
TARGET = MODEL == "tinyworld"   # the claims about the model's numbers are about TinyWorld's target
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
expected = p * len(draws)                  # a χ² test; tokens expected < 5 times share one bin
big = expected >= 5
observed = freq * len(draws)
fit = chisquare(np.append(observed[big], observed[~big].sum()),
                np.append(expected[big], expected[~big].sum()))
print(f"χ² goodness of fit over {big.sum() + 1} bins: p = {fit.pvalue:.2f}")
ids = dist_views.shown_tokens(p, top=15)
fig = views.frequency_figure(dist_views.token_labels(lm.tokenizer, ids), p[ids], freq[ids],
                             title=f"4000 draws after {prefix!r} against p_θ")
fig

# %% tags=["claim"]
assert fit.pvalue > 0.01, fit          # the draws are consistent with p_θ (a statistical test)
assert tv < 2 * noise, (tv, noise)     # and their distance is of the size noise alone gives

# %% [markdown]
# The distance is what sampling noise alone produces, and a χ² test finds no departure from
# p_θ: the sampler draws from the model's distribution.
#
# **Look inside.** `decoding.sample` is the token loop of chapter 02 (`decoding.decode`) with
# a chooser that draws from the softmax of the (adapted) logits with a seeded generator:

# %%
show_source(decoding.sample, decoding.choose_sample)

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

# %% tags=["claim"]
# the two limits of eq. 14, computed exactly on one next-token distribution
assert entropy[0] < 1e-3 and p_top[0] > 0.999                      # τ → 0: greedy
assert tv_uniform[-1] < 0.02 and math.log(len(logits)) - entropy[-1] < 0.01   # τ → ∞: uniform
assert all(a >= b for a, b in zip(p_top, p_top[1:]))                # q(greedy token) falls

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
V = len(logits)   # under the uniform distribution: E[distinct among n] = V (1 − (1 − 1/V)^n)
print(f"uniform over {V} tokens would give {V * (1 - (1 - 1 / V) ** len(hot_tokens)):.1f} "
      "distinct on average")

# %% tags=["claim"]
assert {s.text for s in cold} == {decoding.greedy(lm, PROMPT).text}
if TARGET:
    assert abs(len(set(hot_tokens)) - V * (1 - (1 - 1 / V) ** len(hot_tokens))) < 3

# %% [markdown]
# ## The adapters of Table 2
#
# Temperature rescales; the others **truncate**: they keep a subset of tokens and renormalise.
#
# | adapter | keeps the tokens ... | survey, Table 2 |
# |---|---|---|
# | `top_k(k)` | ... with the k largest probabilities | truncation (top-k) |
# | `top_p(p)` | ... of the smallest set with mass ≥ p (nucleus) | truncation (cumulative prob.) |
# | `min_p(p)` | ... with probability ≥ p · max probability | not in Table 2 (Nguyen et al., 2024): a threshold relative to the top token |
# | `typical(mass)` | ... whose surprise −log p is closest to the entropy, up to `mass` | truncation (entropy) |
# | `epsilon(eps)` | ... with probability ≥ ε | truncation (probability) |
# | `eta(eps)` | ... with probability ≥ min(ε, √ε·e^(−H)) | truncation (prob. and entropy) |
# | `Mirostat(tau)` | ... with surprise ≤ μ, where μ adapts so the average surprise is τ bits (Mirostat 2.0) | adaptive truncation |
# | `MirostatV1(tau)` | ... the top k, with k from a Zipf fit of the distribution and μ (the paper's Algorithm 1) | target perplexity |
# | `bat(eps)` | ... with probability ≥ ε, or that a linear program proves the truth must give mass | truncation (linear program) |
#
# **Look inside.** An adapter is a few lines: temperature divides the logits (eq. 14); top-k
# and min-p set the logits of the removed tokens to −∞. (Top-p is exercise 4: write it, then
# compare with the package's version shown after the exercise.)

# %%
show_source(adapters.temperature, adapters.top_k, adapters.min_p)

# %% [markdown]
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
print(f"after {prefix!r}: p_θ puts {p_row[p_star == 0].sum():.4f} of its mass on tokens p* "
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
starts = np.cumsum([0] + [len(c) for c in conts])[:-1]


def story_interval(per_position, n_resamples=2000):
    """The mean over all positions, with a 95 % bootstrap interval that resamples whole
    stories (positions of one story are not independent)."""
    sums, sizes = np.add.reduceat(per_position, starts), np.diff(np.append(starts, len(L)))
    pick = np.random.default_rng(SEED).integers(0, len(sums), (n_resamples, len(sums)))
    boot = sums[pick].sum(1) / sizes[pick].sum(1)
    return float(per_position.mean()), *np.percentile(boot, [2.5, 97.5])


print(f"{len(L)} positions along {len(stories)} true stories; 95 % intervals over stories")
print(f"{'adapter':18} {'error mass':>28} {'truth lost':>28}")
tail, lost_at = {}, {}
for name, value in [("ancestral", None)] + list(SETTINGS.items()):
    q = torch.softmax(decoding.apply_adapters(L, FAMILIES[name](value)).double(), -1)
    err = (q * forbidden).sum(-1).numpy()         # q's mass on tokens p* forbids
    lost = (P_STAR * (q == 0)).sum(-1).numpy()    # p*'s mass on tokens q removed
    label = name if value is None else f"{name}({value})"
    tail[name], lost_at[name] = (story_interval(err), story_interval(lost)), lost
    print(f"{label:18} " + "  ".join(f"{m:.5f} [{lo:.5f}, {hi:.5f}]" for m, lo, hi in tail[name]))

# %% tags=["claim"]
if TARGET:
    anc_err = tail["ancestral"][0]
    assert anc_err[1] > 0 and tail["ancestral"][1][0] == 0         # error mass, no truth lost
    for name in ("top_k", "top_p", "min_p", "typical", "epsilon", "eta"):
        assert tail[name][0][0] <= 0.1 * anc_err[0], name           # ≥ 90 % of the error mass cut
    for name in ("top_k", "top_p", "min_p", "typical"):
        assert tail[name][1][1] > 0.03, name                         # 4-11 % of the truth lost
    assert 0 < tail["epsilon"][1][1] and tail["epsilon"][1][2] < 0.01
    assert tail["eta"][0][0] == 0 and tail["eta"][1][2] < 0.001     # η: almost none lost,
    assert (lost_at["eta"] > 0).sum() == 1                          # at a single position
    assert tail["temperature"][1][0] == 0 and tail["temperature"][0][1] > 0

# %% [markdown]
# Every truncation cuts at least 90 % of the error mass (ancestral sampling puts 0.4 % of its
# mass on tokens the world forbids). What they pay for it differs. Top-k, top-p, min-p and
# typical sampling at these settings also remove 4–11 % of the truth's own mass; ε(0.01)
# removes 0.4 %; and η(0.01) almost none — 0.004 %, a single position of 789 — while cutting
# all the measured error mass: at this setting η keeps the truth and drops the error, better
# than the others on both counts. Temperature below 1 moves mass away from the tail without
# removing anything, so it loses none of the truth but keeps some error mass. This is the
# diversity–coherence trade-off at the level of one token (and a reminder that a setting can
# sit at a better point of it than another); next, at the level of whole stories.
#
# ### Mirostat: steering the surprise
#
# Mirostat (Basu et al., 2021) does not fix a truncation: it steers one so that the average
# **surprise** −log₂ p(y_t) of the sampled tokens is a target τ bits (perplexity 2^τ). After each
# token it moves a threshold μ (bits) by the error, μ ← μ − η(−log₂ p(y_t) − τ), starting at 2τ.
# The paper's version (Algorithm 1, `MirostatV1`) assumes the sorted probabilities follow a
# Zipf law p_i ∝ i^(−s), estimates s from the top m = 100 of them,
#
# $$\hat s = \frac{\sum_i t_i b_i}{\sum_i t_i^2}, \quad t_i = \log\frac{i+1}{i}, \quad b_i = \log\frac{p_i}{p_{i+1}}, \qquad k = \left(\frac{\hat\varepsilon\, 2^{\mu}}{1 - N^{-\hat\varepsilon}}\right)^{1/\hat s}, \quad \hat\varepsilon = \hat s - 1,$$
#
# and keeps the top k tokens (N: the vocabulary size). Mirostat 2.0 (`Mirostat`, the version
# most libraries ship) drops the Zipf fit and keeps the tokens whose surprise is at most μ.
# *Look inside*, the paper's version:

# %%
show_source(adapters.MirostatV1.__call__, adapters.zipf_exponent)

# %% [markdown]
# Both versions, 24 stories of 48 tokens each (one batch per setting, the end token ignored),
# at τ = 2 and 3 bits, against plain sampling; the average surprise of each story after its
# first 8 tokens, with a bootstrap interval over the 24 stories:

# %%
plain = decoding.sample(lm, "Story:", n=24, seed=SEED, max_new_tokens=48, eos=False)
surprise = {"plain sampling": stats.mean_interval(
    [np.mean(np.asarray(g.logprobs[8:]) / -math.log(2)) for g in plain])}
miro_k = {}
for name, make in (("Mirostat 2.0", adapters.Mirostat), ("Mirostat (paper)", adapters.MirostatV1)):
    for tau in (2.0, 3.0):
        ad = make(tau=tau)
        decoding.sample(lm, "Story:", adapters=[ad], n=24, seed=SEED, max_new_tokens=48, eos=False)
        surprise[name, tau] = stats.mean_interval(np.asarray(ad.surprises[8:]).mean(0))
        if make is adapters.MirostatV1:
            miro_k[tau] = float(np.median(ad.k))
for key, iv in surprise.items():
    print(f"{str(key):28s} average surprise {iv} bits")
print("the paper's version keeps a median k of", miro_k)

# %% [markdown]
# At τ = 2 Mirostat 2.0 lands on the target (its interval contains 2), and the paper's version
# lands just below it (1.95, interval [1.91, 1.99]): its k is a whole number of tokens, and at
# k = 3 one token more or less moves the surprise by a step. At τ = 3 neither can: truncation
# only removes tokens, so it can lower the surprise, never raise it, and TinyWorld's own samples
# carry only about 2.6 bits a token. Both settle where plain sampling is (their intervals overlap
# plain sampling's): the target is out of reach, and the feedback has switched truncation off.
# The Zipf fit turns μ into a small k: the paper's version keeps 3 tokens at τ = 2 and 10 at τ = 3
# (the medians over all steps).

# %% tags=["claim"]
if TARGET:
    for name in ("Mirostat 2.0", "Mirostat (paper)"):
        assert abs(surprise[name, 2.0].mean - 2.0) < 0.06, surprise[name, 2.0]
        hi = surprise[name, 3.0]
        assert hi.high < 3.0 and hi.low < surprise["plain sampling"].high \
            and surprise["plain sampling"].low < hi.high, (hi, surprise["plain sampling"])
    assert surprise["Mirostat 2.0", 2.0].low < 2.0 < surprise["Mirostat 2.0", 2.0].high
    assert surprise["Mirostat (paper)", 2.0].high < 2.0                   # just below, resolved
    assert round(surprise["plain sampling"].mean, 1) == 2.6
    assert miro_k == {2.0: 3.0, 3.0: 10.0}
print("The claims hold.")

# %% [markdown]
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
         "top_p": [0.5, 0.8, 0.9, 0.95], "min_p": [0.3, 0.2, 0.1, 0.05],
         "typical": [0.3, 0.6, 0.9, 0.95], "epsilon": [0.1, 0.05, 0.02, 0.01],
         "eta": [0.5, 0.3, 0.1, 0.03], "mirostat": [1.0, 1.5, 2.0, 2.5]}
N = 64


def diversity(seqs):
    """distinct-2 across the stories, and the half-width of its 95 % interval from a
    jackknife (leave one story out; resampling with replacement would duplicate stories)."""
    d = distinct_n(seqs, 2)
    loo = np.array([distinct_n(seqs[:i] + seqs[i + 1:], 2) for i in range(len(seqs))])
    return d, 1.96 * math.sqrt((len(seqs) - 1) / len(seqs) * ((loo - loo.mean()) ** 2).sum())


def mean_interval(values):
    """(mean, low, high): a seeded 95 % bootstrap interval of the mean."""
    return stats.mean_interval(values, seed=SEED)


def coherence(outputs):
    """(token ids, finished) pairs -> the share of acceptable stories (with its Wilson
    interval), and the mean exact log p* of the acceptable ones, per story and per token (the
    end of the story included; with its bootstrap interval)."""
    lps = [(story.log_p_star(lm.decode(ids)) if done else -math.inf, len(ids) + 1)
           for ids, done in outputs]
    ok = [(v, n) for v, n in lps if v > -math.inf]
    per_token = mean_interval([v / n for v, n in ok])
    return {"acceptable": len(ok) / len(lps), "acceptable_ci": stats.accuracy(
                [v > -math.inf for v, _ in lps]),
            "logp_star": float(np.mean([v for v, _ in ok])),
            "logp_star_token": per_token[0], "logp_star_token_ci": per_token[1:]}


points = []
for family, values in SWEEP.items():
    for v in values:
        outs = decoding.sample(lm, PROMPT, adapters=FAMILIES[family](v), n=N, seed=SEED,
                               max_new_tokens=48)
        d, pm = diversity([o.token_ids for o in outs])
        points.append({"family": family, "label": f"{family}({v})", "diversity": d,
                       "diversity_pm": pm, "length": np.mean([len(o.token_ids) for o in outs]),
                       **coherence([(o.token_ids, o.finish_reason == "eos") for o in outs])})
ref_ids = [lm.encode(story.sample(rng), bos=False) for _ in range(N)]
d, pm = diversity(ref_ids)
reference = {"label": "p* (the world)", "diversity": d, "diversity_pm": pm,
             "length": np.mean([len(ids) for ids in ref_ids]),
             **coherence([(ids, True) for ids in ref_ids])}
print(f"{'setting':16} {'distinct-2 (95 %)':>17} {'tokens':>6} {'acceptable (95 %)':>21} "
      f"{'log p*':>7} {'per token (95 %)':>23}")
for r in points + [reference]:
    a, (lo, hi) = r["acceptable_ci"], r["logp_star_token_ci"]
    print(f"{r['label']:16} {r['diversity']:9.3f} ± {r['diversity_pm']:.3f} {r['length']:6.1f} "
          f"{r['acceptable']:5.3f} [{a.low:.3f}, {a.high:.3f}] {r['logp_star']:7.2f} "
          f"{r['logp_star_token']:7.3f} [{lo:.3f}, {hi:.3f}]")
fig = views.tradeoff_figure(points, reference)
for trace in fig.data:           # error bars: the 95 % interval of distinct-2
    same = [r for r in points + [reference] if r["label"] in (trace.text or ())
            or (trace.name == reference["label"] and r is reference)]
    trace.error_y = dict(type="data", array=[r["diversity_pm"] for r in same], thickness=1,
                         width=3)
fig

# %% tags=["claim"]
by_label = {r["label"]: r for r in points}
ends = {fam: (by_label[f"{fam}({vals[0]})"], by_label[f"{fam}({vals[-1]})"])
        for fam, vals in SWEEP.items()}   # (most truncating or coldest, least)
if TARGET:
    for fam, (cut, free) in ends.items():
        # across each family's range: diversity rises beyond its interval ...
        gap = free["diversity"] - cut["diversity"]
        assert gap > math.hypot(cut["diversity_pm"], free["diversity_pm"]), fam
        # ... and the stories get less probable per token (typical sampling: not so)
        lower = cut["logp_star_token_ci"][0] > free["logp_star_token_ci"][1]
        assert lower == (fam != "typical"), fam
    typ = ends["typical"]
    assert typ[0]["logp_star_token"] < typ[1]["logp_star_token"]
    t05, t07, t10, t16 = (by_label[f"temperature({v})"] for v in (0.5, 0.7, 1.0, 1.6))
    assert t16["acceptable_ci"].high < 0.5 and t05["acceptable_ci"].k == N
    assert abs(t07["diversity"] - t10["diversity"]) < math.hypot(t07["diversity_pm"],
                                                                 t10["diversity_pm"])
    assert t07["diversity"] > t10["diversity"] and t10["length"] > t07["length"]
    assert all(r["acceptable"] >= 0.95 for r in points if r["family"] != "temperature")
    above = [r for r in points if r["logp_star_token"] > reference["logp_star_token_ci"][1]]
    assert len(above) > 2 * len(points) / 3, len(above)

# %% [markdown]
# How to read it: each line is one adapter family, each point one setting, from the most
# truncating (or the coldest) to the least; the bars are 95 % intervals of distinct-2.
# - **Across each family's range the trade-off holds.** From its most to its least
#   truncating setting every family gains diversity beyond the noise, and — except typical
#   sampling — its acceptable stories get less probable per token under p\*. (The cell above
#   checks all eight.)
# - **Coherence is lost in two ways.** Above τ = 1 stories stop being grammatical (72 %
#   acceptable at τ = 1.3, 33 % at τ = 1.6). With the truncations nearly every story stays
#   acceptable (95 % or more at every setting): what falls is how probable the stories are.
# - **Between neighbouring settings the data are noisy.** τ = 0.7 scores a higher distinct-2
#   than τ = 1.0 (0.489 against 0.438), a difference inside the intervals; 64 stories cannot
#   order them. Distinct-2 also depends on length: longer stories repeat the same function
#   bigrams (`". The"`) and lower the ratio, and the τ = 1.0 stories are longer. A diversity
#   number should come with the outputs' lengths.
# - **Typical sampling is the exception on the right panel.** At mass 0.3 it keeps the tokens
#   whose surprise is closest to the entropy, not the most probable ones, so its stories are
#   not more probable per token than at mass 0.95 — if anything less (−1.65 against −1.59,
#   the intervals overlap) — by design: it aims at typical text, not probable text.
# - **The star is p\* itself.** On the right panel it sits left of most settings: the world's
#   own stories are less probable per token than what truncation writes. That is chapter 02's
#   lesson again — read that panel as "how much of the tail was cut", not as "how good".
#
# Which point lies closest to the star is the practical question, and the survey's reading of
# the literature is that there is no general answer: Shi et al. (2024a) "find no definitive
# best method", and which adapter to use "remains an open question".
#
# Two adapters of Table 2 need more than the model's logits and are elsewhere: contrastive
# decoding and DExperts use other models (chapter 04). Basis-aware truncation (`adapters.bat`)
# solves linear programs — seconds per token — so it is better inspected one distribution at a
# time than swept here.

# %% [markdown]
# ## k different samples: stochastic beam search
#
# Ask the target for 8 worked solutions of one arithmetic question and most of them are the
# same solution: when p_θ is peaked, independent draws repeat themselves. Sampling **without
# replacement** returns k *distinct* sequences instead. The Gumbel-top-k trick (Kool, van Hoof
# and Welling, 2019 — a staple next to the survey, which does not cover it) perturbs every
# complete sequence's log-probability with independent Gumbel noise and keeps the k largest:
#
# $$G_y = \log p_\theta(y \mid x) + \mathrm{Gumbel}(0, 1), \qquad
#   \{y^{(1)}, \dots, y^{(k)}\} = \operatorname{top-}k_y\, G_y .$$
#
# **Stochastic beam search** finds those k without enumerating sequences. It draws the
# perturbations top-down, so that a prefix's G is the maximum of its completions' G: each
# child gets $G' = \log p_\theta(y_{\le t} \mid x) + \mathrm{Gumbel}(0, 1)$, and the children
# are shifted so that their maximum Z becomes the parent's value $G_{y_{<t}}$,
#
# $$G_{y_{\le t}} = -\log\big(e^{-G_{y_{<t}}} - e^{-Z} + e^{-G'_{y_{\le t}}}\big).$$
#
# A beam search that keeps the k prefixes with the largest G is then exact. The k samples
# also estimate any expectation without bias, with κ the (k+1)-th largest G:
#
# $$\mathbb{E}_{y \sim p_\theta}[f(y)] \approx \sum_{i=1}^{k}
#   \frac{p_\theta(y^{(i)} \mid x)}{q_\kappa(y^{(i)})}\, f(y^{(i)}), \qquad
#   q_\kappa(y) = 1 - \exp\!\big(-e^{\log p_\theta(y \mid x) - \kappa}\big).$$
#
# **Look inside** (`tests/test_stochastic_beam.py` checks that k = 1 samples p_θ exactly, that
# the children's values are Gumbel(log p) and that the estimator is unbiased):

# %%
show_source(decoding.stochastic_beam_search, decoding.truncated_gumbel)

# %% [markdown]
# One question, its worked solutions at temperature 1: first 64 independent samples, then
# stochastic beam search with k = 8 under 10 seeds, estimating the probability that a solution
# is right, P_θ(right) = E[f(y)] with f(y) = 1 when y ends with the right answer.

# %%
K, SBS_SEEDS = 8, 10
arith_fmt = formats.arithmetic_format(lm)
question = ar.Problem("38*3-45+17")
ask = arith_fmt.prompt(question)
is_right = lambda y: float(arith_fmt.answer(y.text) == question.answer)   # noqa: E731
iid = decoding.sample(lm, ask, n=64, seed=SEED, max_new_tokens=60)
distinct_in_8 = [len({tuple(y.token_ids) for y in iid[i:i + K]}) for i in range(0, 64, K)]
runs_sbs = [decoding.stochastic_beam_search(lm, ask, k=K, max_new_tokens=60, seed=s)
            for s in range(SBS_SEEDS)]
sbs_est = np.array([r.estimate(is_right) for r in runs_sbs])
mass = np.array([sum(math.exp(y.info["seq_logprob"]) for y in r.samples) for r in runs_sbs])
p_right = float(np.mean(sbs_est))
iid_sd = math.sqrt(p_right * (1 - p_right) / K)     # the mean of K independent draws
print(f"distinct solutions among 8 independent samples: {np.mean(distinct_in_8):.1f} "
      f"on average (8 groups of 8)")
print(f"stochastic beam search: 8 distinct solutions holding {mass.mean():.3f} of p_θ's mass; "
      f"P(right) estimated {p_right:.3f}, standard deviation over {SBS_SEEDS} seeds "
      f"{sbs_est.std(ddof=1):.4f}")
print(f"the mean of 8 independent samples: standard deviation √(p(1−p)/8) = {iid_sd:.3f}")

# %% [markdown]
# Where the distribution is peaked, sampling without replacement pays: 8 independent draws
# hold about 2 distinct solutions, while 8 samples without replacement cover almost all of
# p_θ's mass, and the estimate of P_θ(right) barely moves between seeds — a standard deviation
# more than a hundred times smaller than the mean of 8 independent draws has.
#
# Where the mass is spread, the picture turns. The first two tokens of a story have hundreds of
# likely continuations; 8 of them hold a fraction of the mass, the weights p/q_κ vary wildly,
# and the estimator — still unbiased — is no better than plain sampling (its standard
# deviation, with a bootstrap interval, is not below that of 8 independent draws). Estimate
# the probability that the story starts with its most likely token, which p_θ gives exactly:

# %%
p_first = torch.softmax(lm.next_logits(PROMPT)[0].double(), -1)
top_first = int(p_first.argmax())
starts = lambda y: float(bool(y.token_ids) and y.token_ids[0] == top_first)   # noqa: E731
story_est = np.array([decoding.stochastic_beam_search(lm, PROMPT, k=K, max_new_tokens=2, seed=s)
                      .estimate(starts) for s in range(60)])
exact = float(p_first[top_first])
boot = np.random.default_rng(SEED).choice(story_est, (2000, len(story_est)))
sd_ci = np.percentile(boot.std(axis=1, ddof=1), [2.5, 97.5])
print(f"p_θ(first token = {lm.decode([top_first])!r}) = {exact:.3f}; the estimate over 60 seeds: "
      f"mean {story_est.mean():.3f} ± {1.96 * story_est.std(ddof=1) / math.sqrt(60):.3f}")
print(f"standard deviation: stochastic beam search {story_est.std(ddof=1):.3f} "
      f"[{sd_ci[0]:.3f}, {sd_ci[1]:.3f}] against {math.sqrt(exact * (1 - exact) / K):.3f} "
      "for the mean of 8 independent samples")

# %% tags=["claim"]
if TARGET:
    assert np.mean(distinct_in_8) < 3                        # "about 2 distinct solutions"
    assert mass.min() > 0.95                                  # "almost all of the mass"
    assert sbs_est.std(ddof=1) < iid_sd / 100                 # "more than a hundred times"
    assert abs(story_est.mean() - exact) < 1.96 * story_est.std(ddof=1) / math.sqrt(60)
    plain_sd = math.sqrt(exact * (1 - exact) / K)
    assert story_est.std(ddof=1) > plain_sd and sd_ci[1] > plain_sd   # "no better"
print("The claims hold." if TARGET else "The claims are about TinyWorld's target.")

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

# %% [markdown]
# **Look inside** (once your `my_top_p` passes): the package's nucleus truncation sorts the
# logits in *ascending* order and removes a token while the mass up to and including it is at
# most 1 − p, which keeps the token that crosses the threshold; `min_tokens_to_keep` guards
# against removing everything. Compare it with yours.

# %%
show_source(adapters.top_p)


# %% [markdown]
# ## Key takeaways
#
# - Ancestral sampling (eq. 12) draws exactly from p_θ — checked here with a χ² test.
# - A sampling adapter q_t (eq. 13) reshapes each next-token distribution: temperature
#   (eq. 14) interpolates between greedy (τ → 0) and uniform (τ → ∞); truncations keep a
#   subset of tokens and renormalise.
# - The model's errors live in its tail: truncation removes most of the mass the truth
#   forbids, and most truncations also remove some of the truth (η at 0.01 almost none).
# - Across each family's range, diversity trades against coherence; between neighbouring
#   settings, 64 stories often cannot tell the difference, and distinct-n is confounded with
#   length. Which adapter to use remains an open question.
# - Mirostat steers the average surprise to τ by feedback; both versions reach a reachable
#   target, and neither can raise the surprise above what untruncated sampling carries.
# - Stochastic beam search samples k distinct sequences (Gumbel-top-k, drawn top-down); its
#   estimator is unbiased, and far less noisy than independent samples when p_θ is peaked.
#
# ## Further reading
#
# - Welleck et al. (2024), *From Decoding to Meta-Generation*: §3.2 (ancestral sampling and the
#   diversity–coherence trade-off, eqs. 11–12), §3.3 (sampling adapters, eqs. 13–14, Table 2).
# - Holtzman, Buys, Du, Forbes & Choi (2020), *The Curious Case of Neural Text Degeneration* —
#   nucleus (top-p) sampling. Fan, Lewis & Dauphin (2018), *Hierarchical Neural Story
#   Generation* — top-k sampling.
# - Hewitt, Manning & Liang (2022), *Truncation Sampling as Language Model Desmoothing* — ε- and
#   η-sampling, and the tail errors this chapter measures.
# - Meister, Pimentel, Wiher & Cotterell (2023), *Locally Typical Sampling*; Basu, Ramachandran,
#   Keskar & Varshney (2021), *Mirostat*; Nguyen et al. (2024), *Turning Up the Heat: Min-p
#   Sampling for Creative and Coherent LLM Outputs*.
# - Meister, Pimentel, Malagutti, Wilcox & Cotterell (2023), *On the Efficacy of Sampling
#   Adapters*; Shi et al. (2024), *A Thorough Examination of Decoding Methods in the Era of
#   LLMs* — no definitive best method.
# - Kool, van Hoof & Welling (2019), *Stochastic Beams and Where to Find Them: The Gumbel-Top-k
#   Trick for Sampling Sequences Without Replacement*.
