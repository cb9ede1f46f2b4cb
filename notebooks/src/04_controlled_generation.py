# %% [markdown]
# # 04 · Controlled generation: steering with classifiers, rewards and other models
#
# {badges}
#
# **What you will learn**
# - the goal of controlled generation: sample from p_θ(y | x) re-weighted by a sequence-level
#   criterion c(y), q\* ∝ p_θ(y | x) c(y) (eq. 15) — a classifier (eq. 16), an indicator
#   (eq. 17) or a reward (eqs. 18–20);
# - the token-level approximations that re-weight every next-token distribution on the fly:
#   **FUDGE**-style classifier guidance (eq. 16 with a prefix classifier), **reward-augmented
#   decoding** (eq. 21), the **product of experts** (eqs. 22 and 48), **DExperts** and **proxy
#   tuning** (Table 2: eq. 48 with an expert/anti-expert ratio), and **contrastive decoding**
#   (eq. 49);
# - measured on TinyWorld's restaurant reviews, where an exact oracle knows each review's
#   sentiment and the exact probability p\* of its text: **the attribute rate rises with the
#   control strength β or α, and what pays for it is diversity, not fluency** — the reviews
#   get *more* probable under p\* and collapse onto a few — and what each method costs in
#   forward passes and scorer calls.
#
# Survey sections: §3.4 (controlled generation), §5.1 (generation with several models).
# Runs in about 50 s on a 2-core CPU (the full trade-off sweep is precomputed by
# `scripts/sweep_control.py`; this notebook re-runs two points of it).
#
# **Prerequisites:** chapters 01 and 03 (p_θ, p\*, sampling adapters); Bayes' rule and the
# product of two distributions. **Student time:** 45–60 minutes.

# %%
# SETUP

# %%
# Parameters: the model every cell uses, and the seed that makes the outputs reproducible.
MODEL = "tinyworld"   # the target; the experts, draft and classifier are TinyWorld's own
SEED = 0

# %%
import math

import numpy as np
import torch
from scipy.stats import bootstrap

import workbench as wb
from workbench import control, decoding, meta, stats
from workbench.budget import Cost
from workbench.control import tinyworld as tw
from workbench.tinyworld.worlds import NEGATIVE, POSITIVE, sentiment
from widgets import checks
from widgets import control as views
from widgets.kv_cache import grouped_bars_figure
from widgets.source import show_source

wb.seed_everything(SEED)
models = tw.load_models()
models["target"] = lm = wb.load(MODEL)
TARGET = MODEL == "tinyworld"   # the claims about the models' numbers are about TinyWorld's
for role, m in models.items():
    print(f"{role:10} {m}")

# %% [markdown]
# ## The target distribution and its token-level approximations
#
# The survey frames controlled generation as sampling from
#
# $$q_* \propto p_\theta(y \mid x)\, c(y) \quad (15)$$
#
# and with an attribute classifier as the criterion,
#
# $$q_* \propto p_\theta(y \mid x)\, p(a \mid x, y)^\beta \quad (16)$$
#
# q\* is a distribution over whole sequences; the methods below approximate it **one token at
# a time**, each re-weighting the next-token distribution of the target p_θ with information
# from elsewhere. In TinyWorld the attribute is a review's sentiment, and the roles are played
# by small models trained for them (`control.MODEL_NAMES`):
#
# | method | re-weighting of p_θ(y_t \| y_<t) | survey | what it needs |
# |---|---|---|---|
# | FUDGE (Yang & Klein, 2021) | × p_φ(a \| y_<t ∘ v)^β on the top-k tokens v | eq. 16 | a prefix classifier |
# | reward-augmented (Deng & Raffel, 2023) | softmax(s_θ^{1:k} + β r^{1:k}) | eq. 21 | a reward of prefixes |
# | product of experts | × p_expert^α | eqs. 22, 48 | an expert LM |
# | DExperts (Liu et al., 2021a) | × (p_expert / p_anti-expert)^α | Table 2 | expert and anti-expert |
# | proxy tuning (Liu et al., 2024a) | × (p_tuned / p_untuned)^α | Table 2 | a small tuned model and its base |
# | contrastive (Li et al., 2023a) | log p_θ − β log p_amateur on plausible tokens | eq. 49 (β = 1) | a weaker "amateur" LM |
#
# The survey's eq. 48 is the product of experts with one expert, p' ∝ p_θ · p_β^α; the ratio
# form of DExperts and proxy tuning is in its Table 2, not in an equation. Eq. 49 subtracts the
# amateur's log-probability with weight 1; the weight β is a later generalisation (O'Brien &
# Lewis, 2023), which the workbench exposes (β = 1 is eq. 49).
#
# **Look inside.** Each rule is a pure function of logits in `workbench.control`: in log
# space a product of distributions is a sum of logits, and a rule that works on the top-k
# candidates only (FUDGE, RAD) puts −∞ everywhere else.

# %%
from workbench.control import rules as control_rules
show_source(control.fudge_logits, control.rad_logits, control_rules._on_candidates,
            control.poe_logits, control.dexperts_logits)

# %% [markdown]
# Here they are at one step, after `"Review: The soup was"`, where the next word decides the
# sentiment.

# %%
prefix = "Review: The soup was"
ids = [lm.encode(prefix)]
s, pos, neg = (models[r].next_logits(ids) for r in ("target", "positive", "negative"))
cand = control.top_candidates(s, 20)
p_clf, _ = control.candidate_scorer(models["classifier"], lm)([ids[0] + [c] for c in
                                                                cand[0].tolist()])
p_clf = torch.tensor([p_clf])
rules = {"target p_θ": s,
         "FUDGE β=4 (eq. 16)": control.fudge_logits(s, cand, p_clf, beta=4.0),
         "RAD β=10 (eq. 21)": control.rad_logits(s, cand, p_clf, beta=10.0),
         "product of experts α=1 (eq. 22)": control.poe_logits(s, pos, alpha=1.0),
         "DExperts α=2 (Table 2)": control.dexperts_logits(s, pos, neg, alpha=2.0)}
dists = {k: torch.softmax(v[0].double(), -1).numpy() for k, v in rules.items()}
first = lambda words: sorted({lm.encode(" " + w, bos=False)[0] for w in words})  # noqa: E731
POS, NEG = first(POSITIVE), first(NEGATIVE)
print(f"{'':34} {'P(positive word)':>16} {'P(negative word)':>16} {'P(not)':>7}")
NOT = lm.encode(" not", bos=False)[0]
for name, q in dists.items():
    print(f"{name:34} {q[POS].sum():16.3f} {q[NEG].sum():16.3f} {q[NOT]:7.3f}")
p_not = {r: float(torch.softmax(models[r].next_logits(ids)[0].double(), -1)[NOT])
         for r in ("positive", "negative")}
print("P(not) under the positive expert {positive:.3f}, the negative expert {negative:.3f}"
      .format(**p_not))
shown = sorted(set(np.argsort(-dists["target p_θ"])[:10]) |
               set(np.argsort(-dists["DExperts α=2 (Table 2)"])[:6]),
               key=lambda i: -dists["target p_θ"][i])
views.step_figure([repr(lm.decode([int(i)])) for i in shown],
                  {k: v[shown] for k, v in dists.items()},
                  title=f"Next token after {prefix!r}: the target and four steered versions")

# %% tags=["claim"]
if TARGET:
    base = dists["target p_θ"]
    for name, q in dists.items():
        if name != "target p_θ":      # every rule moves mass from negative to positive words
            assert q[POS].sum() > base[POS].sum() and q[NEG].sum() < base[NEG].sum(), name
    assert abs(p_not["positive"] - p_not["negative"]) < 0.02
    assert dists["product of experts α=1 (eq. 22)"][NOT] > base[NOT]
    assert dists["DExperts α=2 (Table 2)"][NOT] < base[NOT] / 4

# %% [markdown]
# Every rule moves mass from negative to positive adjectives. They differ in *what they know*:
# the classifier and the reward judge the prefix as it would stand after each candidate (a
# look-ahead, §3.3's "lookahead adapters"), while the expert-based rules only compare the
# next-token preferences of models trained on positive and negative text. `" not"` shows the
# difference: it is neither positive nor negative until the next word ("not awful" is a
# positive review here, "not great" a negative one), and both experts give it about the same
# probability (0.18 and 0.17). DExperts' ratio therefore says nothing about it, and it loses
# mass only to the adjectives the ratio boosts; the product of experts, which multiplies by
# the positive expert alone, even raises it (0.20 → 0.35), since both models like it.
#
# The generators (`control.fudge`, `control.dexperts`, ...) apply the rule at every step. All
# models run in lock-step, each with its own KV cache, so a token costs one forward pass per
# model — plus, for FUDGE and RAD, one pass of the scorer over the k candidates.
#
# **Look inside.** `control.lockstep` is the controlled-generation loop shared by every
# method: prefill each model once, then at each step combine the models' logits with the
# method's rule (`combine`), sample, and advance every model's KV cache with the chosen token.
# A method is a rule plugged into it, as `control.dexperts` shows.

# %%
show_source(control.dexperts, control.lockstep)

# %%
for method in ("fudge", "dexperts", "product_of_experts"):
    strength = {"fudge": 4, "dexperts": 2, "product_of_experts": 1}[method]
    g = tw.steer(method, models, "Review:", strength, label=1, seed=SEED, max_new_tokens=48)
    print(f"{method:19} {g.text!r:60} oracle: {sentiment(g.text)}")
    print(f"{'':19} cost: {g.cost}")
# proxy tuning called directly, as with your own models: a small model tuned for the attribute
# (the positive expert, fine-tuned from the draft) against its untuned base (the draft)
proxy = control.proxy_tuning(models["target"], models["positive"], models["draft"], "Review:",
                             alpha=2.0, seed=SEED, max_new_tokens=48)
print(f"{'proxy_tuning':19} {proxy.text!r:60} oracle: {sentiment(proxy.text)}")
print(f"{'':19} cost: {proxy.cost}")

# %% tags=["claim"]
# any model: lock-step proxy tuning runs three models, one pass each per token after the prefill
n_new = len(proxy.token_ids)
assert proxy.cost.forward_passes == 3 * (n_new - (proxy.finish_reason != "eos")) + 3, \
    (proxy.cost, n_new, proxy.finish_reason)
print("proxy tuning: three forward passes per generated token.")

# %% [markdown]
# ## Explore the control strength
#
# The explorer reads the precomputed sweep (`data/results/control_tradeoff.json`, written by
# `scripts/sweep_control.py`): 64 reviews per method and strength, steered towards
# *positive*. Pick a method and slide its strength: the ring moves along the method's curve
# (left: the attribute rate, judged by the exact oracle; up: the mean exact log p\* of the
# grammatical reviews), and the table shows samples at that point, coloured by the oracle —
# grey ones are not reviews of the grammar at all. Pass `models=models` to draw fresh samples
# instead of the stored ones.

# %%
sweep = tw.load_tradeoff()
views.ControlExplorer(sweep, method="dexperts")

# %% [markdown]
# ## Experiment: the attribute–fluency trade-off
#
# Stronger control should buy a higher attribute rate at a price (eq. 16: β "assign[s] more
# weight to the classifier at higher values", so q\* moves away from p_θ). The papers behind
# these methods report the price as fluency: perplexity rises as the attribute rate does. The
# sweep measures, for every method and strength, on 64 reviews steered towards *positive*:
# - **attribute rate**: the share the exact oracle calls positive (ungrammatical text fails);
# - **fluency**: the share of grammatical reviews, and the mean exact log p\* of those — how
#   probable the text is in the world it imitates;
# - **diversity**: the share of distinct reviews among the 64.

# %%
print(f"{'method':19} {'strength':>8} {'attribute':>9} {'grammatical':>11} {'log p*':>7} "
      f"{'distinct':>8} {'passes/token':>12} {'scorer tokens/token':>19}")
for method, pts in views.curves(sweep).items():
    for p in pts:
        lp = "    -  " if p["logp_star"] is None else f"{p['logp_star']:7.2f}"
        print(f"{method:19} {p['strength']:8g} {p['attribute_rate']:9.3f} "
              f"{p['grammatical']:11.3f} {lp} {p['distinct']:8.3f} "
              f"{p['passes_per_step']:12.2f} {p['external_per_token']:19.1f}")
views.tradeoff_figure(sweep, fluency="logp_star")

# %% [markdown]
# Each rate in the table is a count out of 64 reviews. Their 95 % Wilson intervals, for the
# strength-0 baseline and each method's strongest setting:

# %%
def rate(p, key):
    """A stored rate of the sweep as a count out of n, with its Wilson interval."""
    k = round(p[key] * p["n"])
    return stats.accuracy([1] * k + [0] * (p["n"] - k))

curves = views.curves(sweep)
for method, pts in curves.items():
    for p in (pts[0], pts[-1]):
        print(f"{method:19} {p['strength']:4g}  attribute {rate(p, 'attribute_rate')}   "
              f"grammatical {rate(p, 'grammatical')}")

# %% tags=["claim"]
steering = [m for m in curves if m != "contrastive"]
if TARGET:
    for m in steering:
        first, last = curves[m][0], curves[m][-1]
        assert rate(max(curves[m], key=lambda p: p["attribute_rate"]), "attribute_rate").low \
            > rate(first, "attribute_rate").high, m            # the attribute rate rises ...
        assert max(p["attribute_rate"] for p in curves[m]) == 1.0, m    # ... to 1
        assert last["attribute_rate"] >= 0.95, m
        assert last["logp_star"] > first["logp_star"] + 4, m              # fluency rises
        assert -6.1 < last["logp_star"] < -5.0, m
        assert all(p["grammatical"] >= 0.95 for p in curves[m]), m       # a few per cent at most
        assert all(p["grammatical"] == 1 for p in curves[m][:-2]), m     # only at the top
        assert first["distinct"] - last["distinct"] > 0.3, m             # diversity falls
    assert round(curves["fudge"][0]["distinct"] * 64) == 61
    assert sorted(round(curves[m][-1]["distinct"] * 64) for m in steering) == [8, 31, 35, 38, 39]
    cd = curves["contrastive"]
    assert not any(rate(p, "attribute_rate").low > rate(cd[0], "attribute_rate").high
                   for p in cd)                                           # no steering
    assert rate(cd[-1], "grammatical").high < 0.5
    assert [p["tokens"] for p in cd] == sorted(p["tokens"] for p in cd)   # longer and longer

# %% [markdown]
# How to read it: each curve starts at strength 0 — plain (top-k) sampling from the target,
# about as often positive as the world's reviews (28 of 64) — and moves right as the strength
# grows.
# - **Every steering method raises the attribute rate**, to 1 (64 of 64 at its best strength;
#   the intervals are far apart), and stays at 0.95 or more at its strongest setting.
# - **Fluency, measured as probability, rises at the strengths that steer.** The mean log p\*
#   of the reviews goes from −11.3 to between −6.1 and −5.0 at each method's strongest
#   setting (at small strengths it moves within noise: FUDGE at β = 1 and proxy tuning at
#   α = 0.5 dip by about a nat). Strong steering writes the safest positive review there is,
#   one short clause with a common positive word (`" The soup was great."`), and in TinyWorld
#   that is also among the most probable reviews of all: these texts are bland, not broken.
#   (The papers measure fluency with a large LM's perplexity; whether it would agree was not
#   measured here.) Only at the two highest strengths of a method do any reviews stop being
#   grammatical, and never more than 3 of 64.
# - **Contrastive decoding** is the exception: it does not steer the attribute (its amateur is
#   the untuned draft, not a negative model; no setting is resolved above its start), and as β
#   grows it writes longer, run-on reviews that stop being grammatical (14 of 64 grammatical
#   at β = 2) — the §5.1 method that uses a second model for *quality*, pushed too far.
#
# Where does the price go, then? Into **diversity**: the same figure with the share of
# distinct reviews on the vertical axis.

# %%
fig = views.tradeoff_figure(sweep, fluency="distinct")
fig.update_layout(title="Attribute vs diversity as the control strength grows")

# %% [markdown]
# As the strength grows, the 64 reviews collapse: from 61 distinct reviews without control
# to 31–39 at the strongest settings of most methods, and to 8 for the product of experts at
# α = 4. q\* ∝ p_θ · p(a | y)^β concentrates on the outputs the classifier (or the expert
# ratio) is surest about, and with a large β that is a small set. Control trades the model's
# variety for the attribute; which strength to pick depends on how much variety the
# application needs.
#
# The sweep is heavy, so it lives in a script, but it is deterministic: re-running one of its
# points here gives the same numbers. We re-run two, the baseline (strength 0) and DExperts at
# α = 2, keeping every review, so that the rise in fluency and the fall in diversity get
# intervals of their own: a bootstrap interval of the difference in mean log p\*, and a
# jackknife interval of the share of distinct reviews.

# %%
stored = views.point(sweep, "dexperts", 2)
run = dict(n=sweep["n"], seed=sweep["seed"], max_new_tokens=sweep["max_new_tokens"],
           k=sweep["k"], keep=sweep["n"])
again = tw.run_point(models, "dexperts", 2, "review", **run)
baseline = tw.run_point(models, "product_of_experts", 0, "review", **run)  # = plain sampling
for key in ("attribute_rate", "grammatical", "logp_star", "passes_per_step"):
    print(f"{key:16} stored {stored[key]:8.3f}   re-run {again[key]:8.3f}")


def distinct_share(texts):
    """The share of distinct texts, and the half-width of its 95 % interval (jackknife)."""
    share = lambda ts: len(set(ts)) / len(ts)  # noqa: E731
    loo = np.array([share(texts[:i] + texts[i + 1:]) for i in range(len(texts))])
    n = len(texts)
    return share(texts), 1.96 * math.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum())


lp = {name: np.array([r["logp_star"] for r in point["samples"] if r["logp_star"] is not None])
      for name, point in (("baseline", baseline), ("DExperts α=2", again))}
gain = bootstrap((lp["DExperts α=2"], lp["baseline"]), lambda a, b: a.mean() - b.mean(),
                 method="percentile", n_resamples=2000,
                 random_state=np.random.default_rng(SEED)).confidence_interval
div = {name: distinct_share([r["text"] for r in point["samples"]])
       for name, point in (("baseline", baseline), ("DExperts α=2", again))}
print(f"mean log p*: baseline {lp['baseline'].mean():.2f}, DExperts α=2 "
      f"{lp['DExperts α=2'].mean():.2f}; difference 95 % [{gain.low:.2f}, {gain.high:.2f}]")
for name, (d, pm) in div.items():
    print(f"distinct reviews, {name}: {d:.3f} ± {pm:.3f}")

# %% tags=["claim"]
for key in ("attribute_rate", "grammatical", "logp_star", "passes_per_step"):
    assert math.isclose(stored[key], again[key], abs_tol=1e-9), key     # the sweep reproduces
if TARGET:
    assert 3 < gain.low and gain.high < 8                                # fluency rises
    assert div["baseline"][0] - div["DExperts α=2"][0] > math.hypot(div["baseline"][1],
                                                                     div["DExperts α=2"][1])

# %% [markdown]
# Both effects are far outside the noise: DExperts at α = 2 writes reviews about 5 nats more
# probable under p\* than plain sampling (95 % interval 3.4 to 7.7), and the share of distinct
# reviews falls from 0.95 to 0.58, much more than either interval.

# %% [markdown]
# ## What control costs
#
# Lock-step methods multiply the forward passes per token by the number of models: three for
# DExperts and proxy tuning (target, expert, anti-expert or base), two for the product of
# experts and contrastive decoding. FUDGE and RAD also show three passes per token with only
# one extra model: the target's pass, the scorer's pass over the k = 20 candidates, and the
# scorer's pass that appends the chosen token to its own KV cache (so that the next step's
# candidates are scored from there). The scorer's tokens — a little over 20 per generated
# token — are what the survey's token accounting (Table 5) books as external tokens.

# %%
rows = []
for method, pts in views.curves(sweep).items():
    p = pts[len(pts) // 2]
    rows.append({"name": f"{method} ({sweep['strength_name'][method]}={p['strength']:g})",
                 "forward passes per token": p["passes_per_step"],
                 "scorer tokens per token": p["external_per_token"]})
grouped_bars_figure(rows, title="Cost per generated token (middle strength of each method)",
                    yaxis="per generated token")

# %% tags=["claim"]
models_per_method = {"fudge": 3, "reward_augmented": 3, "dexperts": 3, "proxy_tuning": 3,
                     "product_of_experts": 2, "contrastive": 2}
for method, pts in views.curves(sweep).items():
    for p in pts:
        assert p["passes_per_step"] == models_per_method[method], (method, p)
        scorer = method in ("fudge", "reward_augmented")
        assert (20 < p["external_per_token"] < 26) if scorer else p["external_per_token"] == 0

# %% [markdown]
# ## Steering tokens or reranking samples: the noisy channel (eq. 31)
#
# Everything above changes the distribution token by token. The other way to reach the
# attribute is at the sequence level (chapter 07): draw N whole reviews from the target and
# rerank them. The survey's noisy-channel reranker (§4.2.1) scores each candidate by
#
# $$s(y) = \log p(y \mid x) + \lambda_1 \log p(x \mid y) + \lambda_2 \log p(y). \qquad (31)$$
#
# Let x be the attribute we ask for, "positive". Then the channel p(x | y) is exactly what
# TinyWorld's prefix classifier estimates at the last token of a review, P(positive | y). Here
# λ₁ = 1 and λ₂ = 0 (no separate prior), and the candidates are N = 8 reviews sampled from the
# target. We repeat this for 30 seeds and compare the noisy channel's choice with the first
# sample (plain sampling) and with the most probable candidate (the direct model alone).
# TinyWorld's oracle gives the true sentiment of every review.

# %%
show_source(meta.noisy_channel)


def channel(x, y):
    """log p(x = positive | y): the classifier's probability at the review's last token."""
    text = x + y.text
    return math.log(max(models["classifier"].score(text), 1e-12)), \
        models["classifier"].cost_of([text])


reviews = meta.LMGenerator(lm, max_new_tokens=48)
picks = [meta.noisy_channel("Review:", reviews, 8, channel, lambda y: (0.0, Cost()),
                            lambda_channel=1.0, lambda_prior=0.0, seed=SEED + s)
         for s in range(30)]
positive = {"first sample": [sentiment(r.candidates[0].text) == 1 for r in picks],
            "most probable of 8": [sentiment(max(r.candidates, key=lambda c: c.logprob).text)
                                   == 1 for r in picks],
            "noisy channel, 8": [sentiment(r.text) == 1 for r in picks]}
for name, hits in positive.items():
    print(f"{name:>20s}: positive {stats.accuracy(hits)}")
gain = stats.paired(positive["noisy channel, 8"], positive["first sample"])
print("noisy channel - first sample:", gain)
print("one search's bill:", picks[0].cost)

# %% [markdown]
# Reranking eight samples by the channel lifts the share of positive reviews well above plain
# sampling's (the paired difference over the 30 seeds is resolved), while the direct model
# alone (the most probable candidate) does not move it. Nothing about the model changed: the
# price is eight samples and a classifier pass over each (the external tokens), where the
# lock-step methods above pay one pass per model per token.

# %% tags=["claim"]
# any target: the bill is the 8 samples plus the classifier's tokens over each of them
texts = ["Review:" + c.text for c in picks[0].candidates]
assert picks[0].cost.external_tokens == models["classifier"].cost_of(texts).external_tokens
if TARGET:   # the paragraph: resolved gain over plain sampling; max log p does not move it
    assert gain.resolved and gain.diff > 0.2, gain
    assert not stats.paired(positive["most probable of 8"], positive["first sample"]).resolved
    print("The noisy channel's gain holds.")

# %% [markdown]
# ## Contrastive decoding (eq. 49)
#
# Contrastive decoding scores a token by how much more the expert likes it than the amateur
# (eq. 49 is β = 1; the weight β is O'Brien & Lewis's, 2023),
#
# $$s(y_{<t} \circ y_t) = \log p_\theta(y_t \mid y_{<t}) - \beta \log p'_\theta(y_t \mid y_{<t}),
#   \quad y_t \in \mathcal{V}_{\text{head}} = \{v : p_\theta(v) \ge \alpha \max_w
#   p_\theta(w)\} \quad (49)$$
#
# The plausibility set V_head (the survey's "truncation criterion"; Li et al.'s adaptive
# plausibility constraint) keeps the score from rewarding tokens that both models find absurd.
# In the workbench the score is used as logits:

# %%
show_source(control.contrastive_logits)

# %% [markdown]
# After `"Story: The little"`, the tokens the small draft predicts as well as the target lose,
# the ones only the target knows gain:

# %%
story_prefix = [lm.encode("Story: The little")]
e, a = lm.next_logits(story_prefix), models["draft"].next_logits(story_prefix)
cd = torch.softmax(control.contrastive_logits(e, a, alpha=0.1, beta=1.0)[0].double(), -1)
pe, pa = torch.softmax(e[0].double(), -1), torch.softmax(a[0].double(), -1)
head = torch.isfinite(control.contrastive_logits(e, a, alpha=0.1, beta=1.0)[0])
print(f"{int(head.sum())} plausible tokens (α = 0.1)")
order = torch.argsort(-pe)[:8].tolist()
print(f"{'token':12} {'p_θ':>6} {'p_amateur':>9} {'contrastive':>11}")
for i in order:
    print(f"{lm.decode([i])!r:12} {pe[i]:6.3f} {pa[i]:9.3f} {cd[i]:11.3f}")
end = [lm.encode("Story: The cat found the ball.")]
pe_end, pa_end = (torch.softmax(m.next_logits(end)[0].double(), -1) for m in (lm, models["draft"]))
THE = lm.encode(" The", bos=False)[0]
print(f"after 'Story: The cat found the ball.': end of text p_θ {pe_end[lm.eos_token_id]:.3f}, "
      f"p_amateur {pa_end[lm.eos_token_id]:.3f};  ' The' p_θ {pe_end[THE]:.3f}, "
      f"p_amateur {pa_end[THE]:.3f}")
plain = decoding.greedy(lm, "Story:", max_new_tokens=30)
cd_story = control.contrastive(lm, models["draft"], "Story:", greedy=True, max_new_tokens=30)
print("greedy     :", repr(plain.text))
print("contrastive:", repr(cd_story.text), "| ended:", cd_story.finish_reason == "eos")

# %% tags=["claim"]
if TARGET:
    assert abs(pe_end[lm.eos_token_id] - pa_end[lm.eos_token_id]) < 0.02   # about the same
    assert pe_end[THE] > pa_end[THE]                                       # ' The' a little more
    assert plain.finish_reason == "eos" and cd_story.finish_reason == "length"

# %% [markdown]
# Li et al. pair a large expert with a small amateur of the same family, so that what is
# subtracted is the amateur's typical mistakes (repetition, generic text). Here the draft
# agrees with the target on most choices — after `"Story: The cat found the ball."` both give
# the end of the story about the same probability — and where the two agree, the score
# log p_θ − log p_amateur is close to 0 for every plausible token, so small differences
# decide: the target likes
# `" The"` a little more than the draft does, and the story goes on. That is why the greedy
# contrastive story runs on, as do the sweep's reviews at β ≥ 1. Which amateur, and how much
# of it to subtract (β), matter as much as the rule itself.
#
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1.** At `"Review: The soup was"` (the logits `s`, `pos`, `neg` above), what total
# probability does **DExperts with α = 1** give to the first tokens of the positive adjectives
# (`POS`)? Use `control.dexperts_logits` and store it in `p_pos`.

# %% tags=["solution"]
### BEGIN SOLUTION
p_pos = float(torch.softmax(control.dexperts_logits(s, pos, neg, 1.0)[0].double(), -1)[POS].sum())
### END SOLUTION

# %% tags=["check"]
def mass_pos(logits):
    return float(torch.softmax(logits[0].double(), -1)[POS].sum())

with checks.exercise(1):
    checks.answered(p_pos=p_pos)
    for wrong, what in ((s, "the target p_θ's, before any control"),
                        (control.dexperts_logits(s, pos, neg, 2.0), "DExperts at α = 2 (the "
                         "table's row)"), (pos, "the positive expert's alone")):
        checks.expect(not np.isclose(float(p_pos), mass_pos(wrong), atol=1e-6),
                      f"p_pos = {p_pos} is {what}; the exercise asks for DExperts with α = 1.")
    checks.close("p_pos", p_pos, mass_pos(control.dexperts_logits(s, pos, neg, 1.0)),
                 "DExperts gives q ∝ p_θ·(p₊/p₋)^α, i.e. the softmax of s + α(s₊ − s₋); sum q "
                 "over the tokens in POS.", tol=1e-6)

# %% [markdown] tags=["solution"]
# *Think about it:* DExperts multiplies p_θ by the ratio (p₊/p₋)^α. What can happen, at a large
# α, to a token that the target finds implausible but that the positive expert likes a little
# more than the negative one?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* The ratio ignores how probable the token is: a token with p₊ = 10⁻⁴ and
# p₋ = 10⁻⁶ gets a factor 100^α, as much as a fluent token with p₊ = 0.1 and p₋ = 0.001. At a
# large α such factors swamp p_θ, and tokens the target would never write can win, which is
# where fluency and the attribute start to trade against each other (the sweep below). The
# plausibility constraint of contrastive decoding (only tokens with p_θ at least a fraction of
# max p_θ, eq. 49) is one guard against exactly this.
# <!-- END SOLUTION -->

# %% [markdown]
# **Exercise 2.** In the sweep (part `"review"`), what is the smallest DExperts α whose attribute
# rate is at least 0.9? Store it in `alpha_90` (`None` if no α reaches 0.9).

# %% tags=["solution"]
### BEGIN SOLUTION
alpha_90 = min((p["strength"] for p in views.curves(sweep)["dexperts"]
                if p["attribute_rate"] >= 0.9), default=None)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(alpha_90=alpha_90)
    rate = {p["strength"]: p["attribute_rate"] for p in views.curves(sweep)["dexperts"]}
    reached = [a for a, r in rate.items() if r >= 0.9]
    checks.expect(alpha_90 is None or alpha_90 in rate, f"alpha_90 = {alpha_90!r} is not one of "
                  f"the strengths DExperts was run at, {sorted(rate)}.")
    checks.expect(alpha_90 is None or rate[alpha_90] >= 0.9, f"at α = {alpha_90} DExperts' "
                  f"attribute rate is {rate.get(alpha_90)}, under 0.9.")
    checks.expect(alpha_90 is not None or not reached, "alpha_90 is None, but some α does reach "
                  "an attribute rate of 0.9 (views.curves(sweep)[\"dexperts\"]).")
    checks.expect(alpha_90 == (min(reached) if reached else None), f"α = {alpha_90} reaches 0.9, "
                  "but a smaller α already does.")

# %% [markdown]
# **Exercise 3.** Among the sweep's review points with an attribute rate of at least 0.9, which
# keeps the most distinct reviews? Store `(method, strength)` in `best_point`.

# %% tags=["solution"]
### BEGIN SOLUTION
best_point = max(((p["method"], p["strength"]) for p in sweep["points"]
                  if p["part"] == "review" and p["attribute_rate"] >= 0.9),
                 key=lambda k: views.point(sweep, *k)["distinct"])
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(best_point=best_point)
    review = {(p["method"], p["strength"]): p for p in sweep["points"] if p["part"] == "review"}
    checks.expect(isinstance(best_point, tuple) and tuple(best_point) in review,
                  f"best_point = {best_point!r} should be a (method, strength) pair of the "
                  "sweep's review part, e.g. (\"fudge\", 1).")
    chosen = review[tuple(best_point)]
    checks.expect(chosen["attribute_rate"] >= 0.9, f"{best_point} has an attribute rate of "
                  f"{chosen['attribute_rate']:.2f}, under 0.9.")
    checks.expect(chosen["distinct"] == max(p["distinct"] for p in review.values()
                                            if p["attribute_rate"] >= 0.9),
                  f"{best_point} reaches 0.9, but another point that does keeps more distinct "
                  "reviews (the key \"distinct\").")

# %% [markdown]
# ## Key takeaways
#
# - Controlled generation targets q\* ∝ p_θ(y | x) c(y) (eq. 15): a classifier (eq. 16), an
#   indicator (eq. 17) or a reward (eqs. 18–20). The token-level methods approximate it by
#   re-weighting every next-token distribution, each rule a few lines on logits.
# - FUDGE and RAD look one token ahead with a scorer of prefixes; DExperts, proxy tuning and
#   the product of experts compare models' next-token preferences; contrastive decoding uses
#   a weaker model to improve quality, not to steer an attribute.
# - On TinyWorld's reviews every steering method reaches the attribute, and the price is
#   diversity, not fluency: the reviews get more probable and fewer. A claim about "fluency"
#   depends on how fluency is measured.
# - Cost: one forward pass per model per token, plus the scorer's passes and its tokens
#   (external tokens, Table 5) for FUDGE and RAD.
#
# ## Further reading
#
# - Welleck et al. (2024), *From Decoding to Meta-Generation*: §3.4 (controlled generation,
#   eqs. 15–22), §5.1 (multiple models, eqs. 48–49), Table 2.
# - Yang & Klein (2021), *FUDGE: Controlled Text Generation With Future Discriminators*.
# - Deng & Raffel (2023), *Reward-Augmented Decoding*.
# - Liu et al. (2021), *DExperts: Decoding-Time Controlled Text Generation with Experts and
#   Anti-Experts*; Liu et al. (2024), *Tuning Language Models by Proxy*.
# - Li et al. (2023), *Contrastive Decoding: Open-ended Text Generation as Optimization*;
#   O'Brien & Lewis (2023), *Contrastive Decoding Improves Reasoning in Large Language Models*.
# - Korbak, Elsahar, Kruszewski & Dymetman (2022), *On Reinforcement Learning and Distribution
#   Matching for Fine-Tuning Language Models with no Catastrophic Forgetting* — the
#   distributional view of q\* (eq. 15).
