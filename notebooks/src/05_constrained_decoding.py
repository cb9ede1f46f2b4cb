# %% [markdown]
# # 05 · Constrained decoding: regular expressions, JSON, token healing, required words
#
# {badges}
#
# **What you will learn**
# - how a **structural constraint** (a regular expression or a JSON schema) becomes a token
#   mask: pattern → automaton over bytes → an index of the tokens allowed in every state, looked
#   up at each step (§3.5.1); and the **template speedup**: a token that is the only one allowed
#   costs no forward pass;
# - measured: **rejection sampling** (§4.2.3) draws exactly from q\*(y) ∝ p_θ(y) 𝟙[y valid]
#   (eq. 17) but pays for every rejected draw; **constrained decoding** never fails, but masking
#   and renormalising each step does **not** sample from that q\* — checked against the exact
#   conditional, which TinyWorld knows;
# - **token healing** (the survey's Figure 3): what an unnatural token boundary costs in
#   log-probability, and how rolling the prompt back repairs it;
# - how our masks compare in speed with a production library (llguidance);
# - **lexical constraints** (§3.5.2): ban lists, logit bias and NeuroLogic-style beam search.
#
# Survey sections: §3.5 (3.5.1 structural, 3.5.2 lexical constraints), with §3.4's eq. 17 and
# §4.2.3's rejection sampling. Runs in about 65 s on a 2-core CPU.
#
# **Prerequisites:** chapters 01 and 03 (p_θ, sampling adapters, eq. 13); regular expressions
# and finite automata at the level of "a regex is recognised by a finite automaton".
# **Student time:** 80–90 minutes for the whole chapter — the densest of the workbench.
#
# **If you have 45 minutes**, do "From a pattern to a token mask" (up to the records'
# template speedup), the experiment "Rejection sampling against constrained decoding", and
# "Token healing" up to the measured cost; then exercises 1 and 3. Skip the interactive views
# (run them, do not explore them), "How fast is the mask?" and "Lexical constraints": they
# can be read afterwards, or assigned as homework with exercise 2.

# %%
# SETUP

# %%
# Parameters: the model every cell uses, and the seed that makes the outputs reproducible.
MODEL = "tinyworld"   # any embedded name, a local directory, or a Hugging Face causal-LM id
SEED = 0

# %%
import json
import math
import time
from collections import Counter

import numpy as np
import torch
from scipy.stats import chisquare

import workbench as wb
from workbench import constraints as C
from workbench import decoding, meta, stats
from workbench.constraints.library import LibraryMatcher
from workbench.tinyworld.grammar import TokenGrammar
from workbench.tinyworld import formats
from workbench.tinyworld.worlds import (NEGATIVE, POSITIVE, RECORD_SCHEMA, review_grammar,
                                        sentiment, story_grammar, validate_record)
from widgets import checks
from widgets import constrained as views
from widgets.kv_cache import grouped_bars_figure, timings_figure
from widgets.source import show_source

wb.seed_everything(SEED)
lm = wb.load(MODEL)
json_prompt = formats.json_format(lm).prompt()   # 'JSON:\n'; few-shot records first for other models
EOS = lm.eos_token_id
TARGET = MODEL == "tinyworld"   # the claims about the model's numbers are about TinyWorld's target
print(lm)

# %% [markdown]
# ## From a pattern to a token mask
#
# A constraint says which outputs are allowed. For a regular expression the parser is a
# finite automaton, so "which next tokens keep the output valid?" has an answer that can be
# computed **once, ahead of decoding**, for every automaton state (Outlines' index, Willard &
# Louf 2023): walk every token's bytes through the automaton from every state. At decoding time
# the mask is a lookup; the logits outside it become −∞ and the next token is chosen as usual —
# greedily (eq. 4) or by sampling from the renormalised, masked distribution.
#
# Written out: let σ_t be the automaton's state after the bytes of y<t, and 𝒜(σ) ⊆ 𝒱 the
# tokens whose bytes lead from σ to a state from which the pattern can still be completed
# (plus EOS where σ accepts). Constrained decoding is a sampling adapter (eq. 13) that masks
# the next-token distribution and renormalises what is left:
#
# $$q_t(y_t \mid y_{<t}, x) = \frac{p_\theta(y_t \mid y_{<t}, x)\,
#   \mathbb{1}[y_t \in \mathcal{A}(\sigma_t)]}{Z_t(y_{<t})}, \qquad
#   Z_t(y_{<t}) = \sum_{v \in \mathcal{A}(\sigma_t)} p_\theta(v \mid y_{<t}, x).$$
#
# In logits: s_θ(v) for v ∈ 𝒜(σ_t), −∞ elsewhere. The survey states this in words (§3.5.1:
# the parser "filters next-token candidates by allowing only valid continuations"); the
# equations of this chapter are written in its notation, and only eqs. 4, 13 and 17 are its
# own numbered ones.
#
# **Look inside.** The index is built by walking every token's bytes through the automaton
# from every state at once (`TokenIndex._walk`); decoding then looks the allowed set up
# (`allowed`) and masks the logits (`mask_logits`).

# %%
show_source(C.mask_logits, C.TokenIndex.allowed, C.TokenIndex._walk)

# %% [markdown]
# A one-clause review about three dishes:

# %%
DISH = r" The (soup|pizza|coffee) was (not |very )?[a-z]+\."
index = C.regex_constraint(DISH, lm)
print(index)
first = index.allowed(index.start)
print(f"{len(first)} of {lm.vocab_size} tokens allowed first:",
      [lm.decode([int(t)]) for t in first])
g = C.generate(lm, "Review:", index, seed=SEED, max_new_tokens=20)
print(repr(g.text), "| matches:", index.matches(g.text))
print(f"{sum(g.info['forced'])} of {len(g.token_ids)} tokens forced",
      f"| forward passes {g.cost.forward_passes} for {len(g.token_ids)} tokens and the end "
      f"(saved {g.info['passes_saved']})")
print(f"log p_θ(y | x) = {g.logprob:.3f}, of which the forced end: {g.end_logprob:.4f}; "
      f"log g(y | x) = {g.proposal_logprob:.3f}")

# %% tags=["claim"]
assert sorted(lm.decode([int(t)]) for t in first) == [" ", " The"]
assert index.matches(g.text) and g.finish_reason == "eos"
assert not any(g.info["forced"]) and g.end_proposal_logprob == 0.0     # only the end forced
assert g.info["passes_saved"] == 0 and g.cost.forward_passes == len(g.token_ids) + 1 == 6

# %% [markdown]
# Two tokens are allowed first, not one: `" The"`, and `" "` followed later by `"The"`. The
# index allows **every** tokenization of a valid text, including ones the tokenizer would
# never produce (we come back to such unnatural boundaries with token healing). Where exactly
# one token is allowed, |𝒜(σ_t)| = 1, q_t puts all its mass on it whatever p_θ says, so it is
# appended **without asking the model** — the survey's *template speedup*: a run of forced
# tokens is fed to the model in one pass together with the next free choice. Here no token
# was forced before the end, and the end was: after the final `"."` the pattern allows only
# EOS, so g(EOS) = 1. Its probability under the model, p_θ(EOS | y, x), still takes a pass
# (`g.logprob` is log p_θ of the whole output, end included, which importance weights need),
# so nothing is saved here: 6 forward passes for 5 tokens and the end. Fast-forward pays on
# forced runs *inside* an output, whose log-probabilities come with the next pass anyway.
#
# JSON schemas without recursion are regular once the layout is fixed; `C.json_constraint`
# translates TinyWorld's record schema to a regex (`C.schema_to_regex`) and indexes it. Step
# through a constrained record below: the bars are how many tokens each state allowed (log
# scale), green ones were forced. Move the slider to see the allowed tokens at a step.

# %%
record_index = C.json_constraint(RECORD_SCHEMA, lm)
print(record_index)
view = views.ConstrainedView(lm, json_prompt, record_index, seed=SEED, max_new_tokens=80)
view

# %% [markdown]
# How much the template saves on records: 8 records with and without fast-forward. (The same
# seeds need not give the same records: a forced token draws no random number.)

# %%
runs = {ff: [C.generate(lm, json_prompt, record_index, seed=s, max_new_tokens=80,
                        fast_forward=ff) for s in range(SEED, SEED + 8)] for ff in (False, True)}
for ff, gs in runs.items():
    n_tok = sum(len(g.token_ids) + 1 for g in gs)
    passes = sum(g.cost.forward_passes for g in gs)
    print(f"fast-forward {'on ' if ff else 'off'}: {passes / n_tok:.2f} forward passes per token")
print(f"forced tokens per record: {np.mean([sum(g.info['forced']) for g in runs[True]]):.1f}")
print(runs[True][0].text)

# %% [markdown]
# Only 3 tokens of a record's ~30 are forced, although most of a record is template
# (`{"name": "`, `", "age": `, ...). The reason is the same as above: the index allows every
# tokenization of the template, and `", "age": ` can be spelled with many token sequences, so
# the next token is rarely unique. A library that allows only the tokenizer's own (*canonical*)
# tokenization of forced text — llguidance's default — can force whole runs. Along the
# canonical tokenization of the same records, count the steps where exactly one token is
# allowed, under our index and under llguidance with canonical forcing:

# %%
forced_counts = {"ours (every tokenization)": [], "llguidance, canonical forcing": []}
for g in runs[True]:
    path = lm.encode(g.text, bos=False) + [EOS]          # the tokenizer's own tokenization
    q, canonical = record_index.start, LibraryMatcher(lm, schema=RECORD_SCHEMA,
                                                      canonical_forcing=True)
    ours = canon = 0
    for tok in path:
        ours += len(record_index.allowed(q)) == 1
        canon += len(canonical.allowed()) == 1
        canonical.consume(tok)
        q = record_index.next_state(q, tok)
    forced_counts["ours (every tokenization)"].append(ours / len(path))
    forced_counts["llguidance, canonical forcing"].append(canon / len(path))
for name, shares in forced_counts.items():
    print(f"{name:31} forced share of the record's tokens (EOS included): "
          f"{np.mean(shares):.2f} (min {min(shares):.2f}, max {max(shares):.2f})")

# %% tags=["claim"]
assert abs(np.mean([sum(g.info["forced"]) for g in runs[True]]) - 3) < 0.5
assert max(forced_counts["ours (every tokenization)"]) < 0.2
assert min(forced_counts["llguidance, canonical forcing"]) > 0.65

# %% [markdown]
# With canonical forcing about 70 % of a record's tokens are forced, each a token the model
# need not be asked for (the run is fed to it in one pass together with the next free
# choice); our index forces about one in eight. The price of canonical forcing is
# the other side of the same coin: it forbids tokenizations the model might have preferred,
# the problem token healing addresses below (and the subject of exercise 2).
#
# **Look inside.** `C.generate` is the masked decoder with fast-forward and healing: at each
# step it looks up the allowed tokens (`allowed_at.at`), appends a forced token without a
# pass (`is_forced`) or masks the logits and chooses (`_choose`), and feeds pending forced
# runs to the model in one pass (`feed`).

# %%
show_source(C.generate)

# %% [markdown]
# ## Experiment: rejection sampling against constrained decoding
#
# Two ways to get outputs that satisfy a constraint:
# - **rejection sampling** (§4.2.3): sample from p_θ and keep the valid outputs. The kept
#   outputs are exact draws from q\*(y) ∝ p_θ(y | x) 𝟙[y valid] (eq. 17); the price is every
#   rejected draw, and the acceptance rate is p_θ(valid), which can be tiny;
# - **constrained decoding**: mask every step. Never rejects — but each step renormalises over
#   the allowed tokens *without knowing how much valid continuation lies behind each one*.
#
# In symbols, with 𝓛 the set of valid outputs, the target is eq. 17 with Y\*_x = 𝓛 (§4.2.3
# writes the same target for valid JSON):
#
# $$q_*(y \mid x) = \frac{p_\theta(y \mid x)\, \mathbb{1}[y \in \mathcal{L}]}
#   {p_\theta(\mathcal{L} \mid x)} \quad (17)$$
#
# Rejection sampling proposes y ~ g = p_θ and accepts with probability q̃(y) / (M g(y)) with
# q̃ = p_θ 𝟙[y ∈ 𝓛] and M = 1, i.e. exactly when y ∈ 𝓛: the accepted outputs follow q\*, and a
# proposal is accepted with probability p_θ(𝓛 | x). Masked decoding multiplies the adapted
# steps instead:
#
# $$q_{\text{mask}}(y \mid x) = \prod_t q_t(y_t \mid y_{<t}, x)
#   = \frac{p_\theta(y \mid x)\, \mathbb{1}[y \in \mathcal{L}]}{\prod_t Z_t(y_{<t})},$$
#
# the same numerator with a different normaliser for every y. The exact next-token
# distribution of q\* weighs each allowed token by the probability that what follows it can
# still be completed validly,
#
# $$q_*(y_t \mid y_{<t}, x) \propto p_\theta(y_t \mid y_{<t}, x)\;
#   p_\theta(\mathcal{L} \mid y_{<t} \circ y_t, x),$$
#
# and the mask replaces that probability by 1 wherever it is not 0.
#
# To make the difference visible we narrow the schema: the person must be **19 to 30** years
# old. TinyWorld's records draw the age uniformly from 18–99 (`worlds.sample_record`),
# independently of the other fields, so the true conditional is known exactly: **uniform, 1/12
# per age**. Now think like the masked decoder at the age's first digit: `1`, `2` and `3` are
# allowed. The model gives `2` and `3` the same probability (ten ages each in 18–99), so the
# masked decoder writes `3` as often as `2` — but behind `3` lies a single valid age, 30.

# %%
LO, HI = 19, 30
AGE_SCHEMA = json.loads(json.dumps(RECORD_SCHEMA))
AGE_SCHEMA["properties"]["age"] = {"type": "integer", "minimum": LO, "maximum": HI}
age_index = C.json_constraint(AGE_SCHEMA, lm)
AGES = list(range(LO, HI + 1))
TRUE_AGES = range(18, 100)          # the world's ages, uniform


def local_age_distribution(lo, hi):
    """The age a masked decoder writes if its model is the world itself (ages uniform on 18..99):
    the first digit is drawn from p*(first digit) renormalised over the allowed digits, then the
    second from the allowed ones (all equally likely under p*)."""
    ok = range(lo, hi + 1)
    first = Counter(str(a)[0] for a in TRUE_AGES)
    z = sum(first[d] for d in {str(a)[0] for a in ok})
    return {a: first[str(a)[0]] / z / sum(str(b)[0] == str(a)[0] for b in ok) for a in ok}


q_world = local_age_distribution(LO, HI)
print("masked decoding with a perfect model:",
      {a: round(q, 3) for a, q in q_world.items()}, "— the truth is", round(1 / len(AGES), 3))

# %% [markdown]
# Now with the trained model. Rejection sampling uses the workbench's `meta.rejection_sample`
# with the target q̃(y) = p_θ(y) 𝟙[valid] (`meta.filter_target`, so M = 1: a proposal is kept
# exactly when it is valid); constrained decoding masks with the same index (here as an adapter
# of the batched sampler, `C.ConstraintAdapter`).
#
# **Look inside.** The acceptance test is one comparison, `math.log(u) < log_ratio`, with
# log_ratio = log q̃(y) − log M − log g(y); the adapter masks each row with its automaton
# state and advances the states in `observe`.

# %%
show_source(meta.filter_target, meta.rejection_sample, C.ConstraintAdapter)

# %%
N_REJECT, N_CONSTRAINED = 120, 400
proposal = meta.LMGenerator(lm, max_new_tokens=60)
with wb.trace() as t:
    rs = meta.rejection_sample(json_prompt, proposal, meta.filter_target(age_index.matches),
                               0.0, num_samples=N_REJECT, max_proposals=4000, batch=200,
                               seed=SEED)
proposed = [e["text"] for e in t.events if e["kind"] in ("propose_accept", "propose_reject")]
constrained = decoding.sample(lm, json_prompt, adapters=[C.ConstraintAdapter(age_index)],
                              n=N_CONSTRAINED, seed=SEED, max_new_tokens=60)
greedy = C.generate(lm, json_prompt, age_index, greedy=True, max_new_tokens=60)

valid_any = np.mean([validate_record(s)[0] for s in proposed])
few = [C.generate(lm, json_prompt, age_index, seed=s, max_new_tokens=60)
       for s in range(SEED, SEED + 8)]
rows = [{"name": "rejection sampling",
         "sampled tokens": rs.cost.output_tokens / N_REJECT,
         "tokens computed": rs.cost.computed_tokens / N_REJECT},
        {"name": "constrained decoding",
         "sampled tokens": float(np.mean([len(g.token_ids) for g in constrained])),
         "tokens computed": float(np.mean([g.cost.computed_tokens for g in few]))}]
print(f"proposals: {rs.info['proposals']}; valid under RECORD_SCHEMA (ages 18-99): "
      f"{valid_any:.3f}; valid under AGE_SCHEMA ({LO}-{HI}): {rs.info['acceptance_rate']:.3f} "
      f"(the world's rate: {len(AGES) / len(TRUE_AGES):.3f})")
for r in rows:
    print(f"{r['name']:22} per valid record: {r['sampled tokens']:6.1f} tokens sampled, "
          f"{r['tokens computed']:6.1f} tokens computed by the model")
print(f"constrained decoding: {np.mean([g.cost.forward_passes for g in few]):.1f} forward "
      "passes per record with fast-forward")
print("greedy constrained decoding, every time:", greedy.text)
accepted = stats.accuracy([1] * N_REJECT + [0] * (rs.info["proposals"] - N_REJECT))
print(f"acceptance rate of rejection sampling: {accepted}")
grouped_bars_figure(rows, title="The cost of one valid record (ages 19-30)",
                    yaxis="per valid record")

# %% tags=["claim"]
assert all(age_index.matches(g.text) for g in constrained)       # constrained never fails
assert all(age_index.matches(c.text) for c in rs.candidates)     # rejection keeps valid ones
if TARGET:   # p_θ(valid) agrees with the world's 12/82; many proposals per kept record
    assert accepted.low <= len(AGES) / len(TRUE_AGES) <= accepted.high, accepted
    assert rs.info["proposals"] / N_REJECT > 6
    assert rows[0]["sampled tokens"] > 5 * rows[1]["sampled tokens"]

# %% [markdown]
# Rejection sampling pays for its exactness with the tokens of every rejected proposal — here
# about eight proposals per kept record, because only about one age in seven is allowed (the
# model accepts 12.6 % of its proposals, 95 % interval 10.6–14.8 %, which covers the world's
# 12/82 = 14.6 %). Constrained decoding spends one record's tokens per record. Greedy
# constrained decoding is the cheapest and the least like a sample: the same record every
# time.
#
# Which ages do the two samplers write? Besides the world's truth (uniform), the model's own
# exact conditional can be computed where the age starts: after `{"name": "Ada", "age": `,
# p_θ(age | valid) ∝ p_θ(digits, ","), and the masked decoder's exact distribution is the
# product of the renormalised digit probabilities it sees.

# %%
prefix = json_prompt + '{"name": "Ada", "age": '
lp = np.array(lm.score(prefix, [f"{a}," for a in AGES]))
p_cond = np.exp(lp - np.logaddexp.reduce(lp))                  # p_θ(age | prefix, valid)
ids = lm.encode(prefix)
state = age_index.start
for tok in ids[len(lm.encode(json_prompt)):]:
    state = age_index.next_state(state, tok)


def masked(ids, state):
    """p_θ(next token) renormalised over the tokens the index allows in ``state``."""
    return torch.softmax(C.mask_logits(lm.next_logits([ids])[0], age_index, state).double(), -1)


q1 = masked(ids, state)
q_local = []
for a in AGES:
    d1, d2 = (lm.encode(d, bos=False)[0] for d in str(a))
    q_local.append(float(q1[d1] * masked(ids + [d1], age_index.next_state(state, d1))[d2]))
q_local = np.array(q_local)

def freq(records):
    ages = Counter(json.loads(r)["age"] for r in records)
    return np.array([ages[a] / len(records) for a in AGES])


f_rej = freq([c.text for c in rs.candidates])
f_con = freq([g.text for g in constrained])
uniform = np.full(len(AGES), 1 / len(AGES))
tv = lambda p, q: 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())   # noqa: E731
kl = lambda p, q: float(np.sum(p * np.log(p / q)))                            # noqa: E731
noise = lambda n: 0.5 * np.sqrt(2 / np.pi) * np.sqrt(uniform * (1 - uniform) / n).sum()  # noqa
print(f"exact, Ada:  TV(masked decoder, p_θ(· | valid)) = {tv(q_local, p_cond):.3f}, "
      f"KL = {kl(q_local, p_cond):.3f} nats;  TV(p_θ(· | valid), truth) = "
      f"{tv(p_cond, uniform):.3f}")
print(f"samples:     TV(constrained, truth) = {tv(f_con, uniform):.3f} "
      f"(noise alone ≈ {noise(N_CONSTRAINED):.3f}); TV(rejection, truth) = "
      f"{tv(f_rej, uniform):.3f} (noise alone ≈ {noise(N_REJECT):.3f})")
print(f"age 30: truth {1 / len(AGES):.3f}, p_θ {p_cond[-1]:.3f}, masked decoder "
      f"{q_local[-1]:.3f} (perfect model: {q_world[HI]:.3f}), constrained samples "
      f"{f_con[-1]:.3f}, rejection samples {f_rej[-1]:.3f}")
digits = {d: float(q1[lm.encode(d, bos=False)[0]]) for d in "123"}
print("masked decoder at the first digit, Ada:", {d: round(v, 3) for d, v in digits.items()})
views.conditional_figure(
    AGES, {f"constrained decoding ({N_CONSTRAINED} samples)": f_con,
           f"rejection sampling ({N_REJECT} accepted)": f_rej},
    {"truth p*(age | valid)": uniform, "p_θ(age | valid), exact": p_cond,
     "masked decoder, exact": q_local},
    title=f"Ages written under the constraint {LO} ≤ age ≤ {HI}", xaxis="age")

# %% [markdown]
# TV distances of samples need a noise level to be read; a χ² test of each sample against a
# candidate distribution says directly whether the samples could have come from it (a
# p-value far below 0.05: they could not). The share of age 30 gets a Wilson interval.

# %%
tests = {"rejection vs truth (uniform)": chisquare(f_rej * N_REJECT, uniform * N_REJECT),
         "constrained vs truth (uniform)": chisquare(f_con * N_CONSTRAINED,
                                                     uniform * N_CONSTRAINED),
         "constrained vs masked decoder (exact)": chisquare(f_con * N_CONSTRAINED,
                                                            q_local * N_CONSTRAINED)}
for name, test in tests.items():
    print(f"{name:40} χ² = {test.statistic:7.1f}, p = {test.pvalue:.2g}")
age30 = {name: stats.accuracy([json.loads(r)["age"] == HI for r in records])
         for name, records in (("constrained", [g.text for g in constrained]),
                               ("rejection", [c.text for c in rs.candidates]))}
for name, a in age30.items():
    print(f"age 30, {name:12} {a}   (truth {1 / len(AGES):.3f})")

# %% tags=["claim"]
assert abs(q_world[HI] - 10 / 22) < 1e-12            # a perfect model's masked decoder: 10/22
if TARGET:
    assert tests["rejection vs truth (uniform)"].pvalue > 0.05
    assert tests["constrained vs truth (uniform)"].pvalue < 1e-10
    assert tests["constrained vs masked decoder (exact)"].pvalue > 0.05
    assert age30["constrained"].low > 0.35 and age30["rejection"].high < 0.2
    assert 0.8 < digits["2"] / digits["3"] < 1.25     # `2` and `3` about equally probable
    assert 0.3 < tv(q_local, p_cond) < 0.45 and tv(p_cond, uniform) < 0.05

# %% [markdown]
# The rejection samples scatter around the truth: a χ² test finds no departure from the
# uniform ages. The constrained samples pile up on **30** — 44 % of them (95 % interval
# 40–49 %) against a truth of 8 % — and agree instead with the masked decoder's exact
# distribution, because the mask at the first digit cannot see that `3` leads to one valid
# age and `2` to ten (the model gives `2` and `3` about the same probability there).
# Constrained decoding samples from q_mask(y) = p_θ(y | x) 𝟙[y ∈ 𝓛] / ∏ₜ Zₜ(y<ₜ); the true
# conditional divides by one global Z = p_θ(𝓛 | x) instead. The two agree only when every
# allowed token leads to the same share of valid continuations — try a range of 20–29 in
# exercise 3.
#
# This bias of *local* renormalisation is not what the survey calls invasiveness. Beurer-
# Kellner et al. (2024) call a constrained decoder *minimally invasive* if every valid output
# the model could generate can still be generated under the constraint — a question of which
# token sequences the mask allows. Our index allows every tokenization of every valid text, so
# it is minimally invasive in that sense, and still samples from the wrong distribution. The
# distortion shown here is studied elsewhere — Lew et al. (2023) correct it with sequential
# Monte Carlo, Park et al. (2024) with *grammar-aligned decoding* — and it is why rejection
# sampling (or importance weighting, chapter 07) is still used when exactness matters.
#
# ## Token healing (Figure 3)
#
# A prompt (or a template) that ends in the middle of a word forces a token boundary the
# model hardly ever saw. TinyWorld's tokenizer writes `" tokenization"` as one token, but the
# template `"An unnatural token"` is cut into `" tok"` + `"en"`; to continue it the model must
# spell `"iz"` + `"ation"`. **Token healing** rolls the prompt back to the last token boundary
# that keeps the removed text a prefix of some token (here before `" tok"`), and requires the
# first generated token to start with the removed text `" token"` (a prefix-tree lookup).
#
# Written out: the prompt x = (x₁, …, x_n) is cut back to x≤n−k, where the removed text
# r = str(x_{n−k+1}) ⋯ str(x_n) is the longest tail of the prompt that is still a prefix of
# some token, and the first new token must extend r (r ⊑ s: r is a prefix of s):
#
# $$q_1(y_1 \mid x_{\le n-k}) \propto p_\theta(y_1 \mid x_{\le n-k})\,
#   \mathbb{1}\big[r \sqsubseteq \operatorname{str}(y_1)\big],$$
#
# after which any other constraint continues from the text r already written. It is the mask
# of this chapter again, with 𝒜 = {v : r ⊑ str(v)} for one step.

# %%
show_source(C.heal_prompt, C.healing_candidates)

# %%
figure3 = C.template_tokens(lm, "An unnatural token", "ization")
print("without healing:", figure3["without"])
print("with healing:   ", figure3["with"], "| the tokenizer's own:", figure3["natural"])
views.healing_figure(figure3, title="Figure 3: the template forces ' tok' + 'en'")

# %% tags=["claim"]
if TARGET:   # the survey's Figure 3 with TinyWorld's tokenizer
    assert figure3["with"] == figure3["natural"] == ["An", " unnatural", " tokenization"]
    assert figure3["without"][2:4] == [" tok", "en"] and figure3["removed"] == " token"

# %% [markdown]
# Type your own prompts into the healing view: it generates greedily without and with healing
# and shows the tokens of both.

# %%
views.HealingView(lm, "Story: An unnatural token", max_new_tokens=6)

# %% [markdown]
# What the boundary costs, measured: 16 stories continuing `"Story: An unnatural token"` under
# the constraint that the next word completes "tokenization" and the sentence ends with a
# period. For each we score the **whole** token sequence after `"Story:"` (the prompt's own
# tokens included, and the end of text) with p_θ, and check whether the text is a story of
# the world (p\* > 0).

# %%
HEAL_PROMPT, COMPLETION = "Story: An unnatural token", r"ization( [a-z]+)+\."
story = story_grammar()
base = len(lm.encode("Story:"))
heal_stats = {}
for heal in (False, True):
    gens = [C.generate(lm, HEAL_PROMPT, COMPLETION, seed=s, heal=heal, max_new_tokens=16)
            for s in range(SEED, SEED + 16)]
    seqs = [g.prompt_ids[base:] + g.token_ids + [EOS] for g in gens]
    logp = lm.score("Story:", seqs)
    texts = [" An unnatural token" + g.text for g in gens]
    heal_stats[heal] = {"log p_θ": float(np.mean(logp)), "each": np.array(logp),
                        "stories": np.mean([story.log_p_star(s) > -math.inf for s in texts]),
                        "story_hits": stats.accuracy([story.log_p_star(s) > -math.inf
                                                      for s in texts]),
                        "example": texts[0], "tokens": lm.token_strings(seqs[0])}
for heal, r in heal_stats.items():
    print(f"{'with' if heal else 'without'} healing: mean log p_θ {r['log p_θ']:7.2f}, "
          f"stories of the world {r['stories']:.2f}; e.g. {r['tokens']}")
gain = heal_stats[True]["each"] - heal_stats[False]["each"]
print(f"per story, healing raises log p_θ by {gain.min():.1f} to {gain.max():.1f} nats "
      f"(all {int((gain > 0).sum())} of {len(gain)} higher); stories of the world: "
      f"{heal_stats[False]['story_hits']} without, {heal_stats[True]['story_hits']} with")
views.healing_figure(C.compare_healing(lm, HEAL_PROMPT, max_new_tokens=6),
                     title="Greedy continuations without and with token healing")

# %% tags=["claim"]
if TARGET:
    assert (gain > 100).all()                                    # every story, by > 100 nats
    assert heal_stats[True]["story_hits"].k == 16 and heal_stats[False]["story_hits"].k == 0

# %% [markdown]
# Without healing the model is asked to continue from a tokenization it never produces
# itself. It does not know what to do there: it spells the rest of the word letter by letter,
# its log-probability collapses — by more than 100 nats for every one of the 16 stories — and
# the stories go wrong (a noun followed by "in the park" is not a sentence of the world;
# none of the 16 is one, all 16 healed ones are). As token sequences they are impossible anyway — p\* only writes
# canonical tokenizations. Healing lets the model write `" tokenization"` as it learned it, and
# the continuation is an ordinary, probable story.
#
# ## How fast is the mask? Ours against llguidance
#
# Our index answers "which tokens are allowed?" with a precomputed table, one row per
# automaton state. That works for regular languages only. For a context-free grammar G — JSON
# with nesting, a programming language — there is no finite automaton, and the allowed set
# depends on the whole parse so far:
#
# $$\mathcal{A}(y_{<t}) = \{v \in \mathcal{V} : \operatorname{str}(y_{<t} \circ v)
#   \text{ is a prefix of some string of } L(G)\}.$$
#
# *Grammar-constrained decoding* computes it at every step with a parser (the survey's
# §3.5.1 names PICARD, GCD, Synchromesh and DOMINO; Geng et al., 2023, is GCD) and masks as
# above. llguidance (Microsoft's guidance library, used by vLLM, SGLang and llama.cpp) does
# this with a lexer and an Earley parser over bytes; `LibraryMatcher` wraps it with the same
# interface as our index:

# %%
show_source(LibraryMatcher)

# %% [markdown]
# On our regular constraints the two give the same masks (the tests compare them token for
# token, and the cell below checks the paths it times); here we time them along the same token
# paths — the constrained records sampled above — next to one forward pass of the model.

# %%
paths = [g.token_ids + [EOS] for g in constrained[:40]]
n_steps = sum(len(p) for p in paths)


def time_ours(index):
    t0 = time.perf_counter()
    for p in paths:
        q = index.start
        for tok in p:
            index.mask(q)
            q = index.next_state(q, tok)
    return (time.perf_counter() - t0) / n_steps * 1e6


def time_llguidance():
    matchers = [LibraryMatcher(lm, schema=AGE_SCHEMA) for _ in paths]   # built before timing
    t0 = time.perf_counter()
    for p, m in zip(paths, matchers):
        for tok in p:
            m.bitmask()
            m.consume(tok)
    return (time.perf_counter() - t0) / n_steps * 1e6


t0 = time.perf_counter()
fresh = C.json_constraint(AGE_SCHEMA, lm)
build = time.perf_counter() - t0
us = {"ours, first use": time_ours(fresh), "ours, cached": min(time_ours(fresh) for _ in range(3)),
      "llguidance": min(time_llguidance() for _ in range(3))}
step = lm.prefill([lm.encode(json_prompt)])
passes = []
for _ in range(10):
    t0 = time.perf_counter()
    lm.advance(step, torch.tensor([paths[0][0]]))
    passes.append(time.perf_counter() - t0)
forward_us = float(np.median(passes)) * 1e6
print(f"{n_steps} steps; our index built in {build * 1e3:.0f} ms "
      f"({fresh.n_states} states); per step:", {k: f"{v:.1f} µs" for k, v in us.items()},
      f"| one forward pass: {forward_us / 1e3:.1f} ms")
same_masks = True
for p in paths[:10]:
    q, m = fresh.start, LibraryMatcher(lm, schema=AGE_SCHEMA)
    for tok in p:
        same_masks &= bool(np.array_equal(fresh.allowed(q), m.allowed()))
        m.consume(tok)
        q = fresh.next_state(q, tok)
print("the same masks along 10 paths:", same_masks)
timings_figure(us, title=f"Mask + state update per token (llguidance / ours cached = "
                         f"{us['llguidance'] / us['ours, cached']:.0f}×)", unit="µs")

# %% tags=["claim"]
assert same_masks
assert us["ours, cached"] < us["llguidance"]                  # measured in the same run
assert max(us.values()) < 0.05 * forward_us                    # both far below a forward pass

# %% [markdown]
# A table lookup beats a parser, and both are far below a forward pass of even this small
# model (microseconds against milliseconds). The ratio in the title is not a number to
# remember: it compares a Python loop calling llguidance's per-token bindings with a lookup
# in a table already built, and it moves with the machine and its load. The table's price is
# paid up front (building the index) and grows with states × vocabulary; a parser handles
# recursive grammars and huge vocabularies with no such table — which is why production
# systems use parsers with caches.
#
# ## Lexical constraints (§3.5.2)
#
# Inference APIs offer **ban lists** and **logit bias**: adapters that forbid or discourage
# tokens — the mask again, with a fixed banned set B (q_t ∝ p_θ 𝟙[y_t ∉ B]), or a bias added
# to the logits (s_θ(v) + b_v). **Look inside:** `C.BanWords` bans whole words, so it must
# remember what was already written (a word can span several tokens):

# %%
show_source(C.BanWords)

# %% [markdown]
# Banning every negative adjective, though, does not make a review positive — the model can
# still write "not great":

# %%
ban = C.BanWords(lm, NEGATIVE)
banned = decoding.sample(lm, "Review:", adapters=[ban], n=64, seed=SEED, max_new_tokens=40)
plain = decoding.sample(lm, "Review:", n=64, seed=SEED, max_new_tokens=40)
for name, outs in (("plain sampling", plain), ("negative words banned", banned)):
    labels = Counter(sentiment(g.text) for g in outs)
    has_neg = np.mean([any(w in g.text.replace(".", " ").split() for w in NEGATIVE)
                       for g in outs])
    print(f"{name:22}: contains a negative word {has_neg:.2f}; oracle says positive "
          f"{labels[1] / 64:.2f}, negative {labels[-1] / 64:.2f}, "
          f"not a review {labels[None] / 64:.2f}")
still_negative = stats.accuracy([sentiment(g.text) == -1 for g in banned])
print("negative reviews with the ban:", still_negative, "e.g.",
      next(g.text for g in banned if sentiment(g.text) == -1))

# %% tags=["claim"]
assert not any(any(w in g.text.replace(".", " ").split() for w in NEGATIVE) for g in banned)
if TARGET:
    assert still_negative.low > 0.1, still_negative              # the ban does not fix it

# %% [markdown]
# *Forcing* words in is harder: the model must plan for them. NeuroLogic decoding (Lu et al.,
# 2021) takes a formula in conjunctive normal form — here (soup ∨ pizza) ∧ (rude) — and runs a
# beam search whose candidates include the tokens that advance an unmet clause, choosing the
# beam bank by bank (by how many clauses a hypothesis satisfies), so progress on the
# constraints is not crowded out by likelier hypotheses.

# %%
CLAUSES = [["soup", "pizza"], ["rude"]]
neuro = C.lexical_beam_search(lm, "Review:", CLAUSES, num_beams=4, max_new_tokens=24)
print(repr(neuro.text), C.satisfied(neuro.text, CLAUSES), "| cost:", neuro.cost)
hit = stats.accuracy([all(C.satisfied(g.text, CLAUSES)) for g in plain])
print(f"plain samples that satisfy the formula: {hit}")

# %% tags=["claim"]
assert all(C.satisfied(neuro.text, CLAUSES))
if TARGET:
    assert hit.high < 0.2, hit
    assert review_grammar().log_p_star(neuro.text) > -6          # a short, probable review

# %% [markdown]
# The beam search satisfies the formula with one search of 4 beams, and finds a short,
# probable review of this world that does (log p\* above −6); plain sampling satisfies it in
# fewer than one review in five (6 of 64). A lexical constraint says which words must appear,
# not what the text should say: in English, "rude" soup would be an odd review.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1.** Build a constraint (`C.regex_constraint`) that only allows a one-clause review
# about the **staff** whose adjective is positive (the positive words are `POSITIVE`), and store
# it in `staff_constraint`; generate one review with it after `"Review:"`
# (`C.generate(..., seed=SEED)`) and store its text in `staff_review`. The check also generates
# with your constraint at other seeds.

# %% tags=["solution"]
### BEGIN SOLUTION
staff_constraint = C.regex_constraint(r" The staff was (" + "|".join(POSITIVE) + r")\.", lm)
staff_review = C.generate(lm, "Review:", staff_constraint, seed=SEED).text
### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    checks.answered(staff_constraint=staff_constraint, staff_review=staff_review)
    checks.expect(staff_review == C.generate(lm, "Review:", staff_constraint, seed=SEED).text,
                  f"staff_review = {staff_review!r} is not what C.generate(lm, \"Review:\", "
                  "staff_constraint, seed=SEED) writes: generate it, do not type it.")
    for seed in range(SEED, SEED + 4):
        text = C.generate(lm, "Review:", staff_constraint, seed=seed).text
        checks.expect(review_grammar().log_p_star(text) > -math.inf, f"with seed {seed} your "
                      f"constraint lets the model write {text!r}, which is not a review of "
                      "this world (p* = 0): spell out the whole clause, \" The staff was ...\".")
        checks.expect("staff" in text.split() and len(text.split(".")) == 2, f"with seed {seed} "
                      f"your constraint lets the model write {text!r}: one clause, about the "
                      "staff.")
        checks.expect(sentiment(text) == 1, f"with seed {seed} your constraint lets the model "
                      f"write {text!r}, which is not positive: allow only the words of POSITIVE.")

# %% [markdown]
# **Exercise 2.** How many tokens does `record_index` allow in its **start** state
# (`record_index.allowed(record_index.start)`)? Store the number in `n_start`.

# %% tags=["solution"]
### BEGIN SOLUTION
n_start = len(record_index.allowed(record_index.start))
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(n_start=n_start)
    starts = [lm.decode([int(t)]) for t in record_index.allowed(record_index.start)]
    checks.expect(n_start != 1, "n_start = 1 would make the first token forced, but a record's "
                  "first bytes can be written with more than one token: decode each allowed "
                  "token (lm.decode([t])) and look.")
    checks.expect(n_start == len(starts), f"n_start = {n_start} is not the number of tokens the "
                  "start state allows.")

# %% [markdown] tags=["solution"]
# *Think about it:* every record begins with the same bytes. Why is more than one token
# allowed at the start, and what would a tokenizer-aware library do differently? (See the
# docstring of `workbench/constraints/library.py` on canonical forcing.)
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* Every record starts with `{"`, and TinyWorld's tokenizer has a token for
# `{"` and one for `{`. The index allows *every* tokenization of a valid text, so both are
# allowed: the first token is not forced (no template speedup there), and the path through
# `{` is a tokenization the tokenizer itself would never produce, an unnatural boundary of the
# kind token healing deals with. llguidance by default forces only the canonical tokenization
# (`{"`); `LibraryMatcher` turns that off (`no_forcing`) to compare like with like.
# <!-- END SOLUTION -->

# %% [markdown]
# **Exercise 3.** With `local_age_distribution` (the masked decoder with a perfect model),
# compute the total-variation distance to the uniform truth for the range 20–29 and for the
# experiment's range 19–30. Store them in `tv_20s` and `tv_19_30`.

# %% tags=["solution"]
### BEGIN SOLUTION
def tv_to_uniform(lo, hi):
    q = local_age_distribution(lo, hi)
    return 0.5 * sum(abs(v - 1 / len(q)) for v in q.values())

tv_20s = tv_to_uniform(20, 29)
tv_19_30 = tv_to_uniform(19, 30)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(tv_20s=tv_20s, tv_19_30=tv_19_30)
    for name, value, (lo, hi) in (("tv_20s", tv_20s, (20, 29)), ("tv_19_30", tv_19_30, (19, 30))):
        q = local_age_distribution(lo, hi)
        gaps = [abs(v - 1 / len(q)) for v in q.values()]
        checks.expect(not math.isclose(float(value), sum(gaps), abs_tol=1e-12) or sum(gaps) == 0,
                      f"{name} = {value} is Σ|q − u|; total variation is half of it.")
        checks.close(name, value, 0.5 * sum(gaps), f"TV(q, u) = ½ Σ_age |q(age) − u(age)|, with "
                     f"u uniform on the {hi - lo + 1} ages {lo}–{hi}.", tol=1e-12)

# %% [markdown] tags=["solution"]
# *Think about it:* why is one of the two distances exactly 0?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* For 20–29 the only allowed first digit is `2`, so renormalising over the
# allowed first digits changes nothing, and every second digit 0–9 then leads to exactly one
# valid age with the same probability: the masked decoder's local renormalisation equals the
# global one. For 19–30 the allowed first digits lead to 1, 10 and 1 valid ages, but the mask
# weighs them by p\*(first digit) alone (2 : 10 : 10 ages in 18–99), so the single age behind
# `3` gets 10/22 of the mass.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Key takeaways
#
# - A structural constraint becomes a mask on the next-token distribution: an adapter (eq. 13)
#   that keeps the tokens 𝒜(σ_t) leading to a completable output and renormalises. For a regex
#   the allowed sets are a table computed once per automaton state; for a context-free
#   grammar a parser computes them at every step.
# - A token that is the only one allowed costs no forward pass (the template speedup) — how
#   many there are depends on whether every tokenization is allowed or only the canonical one.
# - Masking is not conditioning: q_mask divides by ∏ₜ Zₜ, the target q\* (eq. 17) by one
#   p_θ(𝓛 | x). Rejection sampling is exact and pays for every rejected draw; masked decoding
#   never fails and is biased wherever allowed tokens lead to different amounts of valid
#   continuation (age 30: 44 % instead of 8 %).
# - Token healing undoes an unnatural token boundary by rolling the prompt back and
#   constraining the first token to extend the removed text.
# - Lexical constraints: bans are masks and do not change meaning; forcing words in needs
#   search (NeuroLogic).
#
# ## Further reading
#
# - Welleck et al. (2024), *From Decoding to Meta-Generation*: §3.5 (constrained decoding:
#   §3.5.1 parser-based decoding, template speedups, token healing, minimally invasive
#   decoding; §3.5.2 lexical constraints), §3.4 (eq. 17), §4.2.3 (rejection sampling).
# - Willard & Louf (2023), *Efficient Guided Generation for Large Language Models* (Outlines:
#   the regex index); Geng, Josifoski, Peyrard & West (2023), *Grammar-Constrained Decoding
#   for Structured NLP Tasks without Finetuning*.
# - Beurer-Kellner, Fischer & Vechev (2024), *Guiding LLMs The Right Way: Fast, Non-Invasive
#   Constrained Generation* (DOMINO, minimal invasiveness); Lundberg (2023), *The Art of
#   Prompt Design: Prompt Boundaries and Token Healing* (blog post).
# - Lew, Zhi-Xuan, Grand & Mansinghka (2023), *Sequential Monte Carlo Steering of Large
#   Language Models using Probabilistic Programs*; Park, Wang, Berg-Kirkpatrick, Polikarpova &
#   D'Antoni (2024), *Grammar-Aligned Decoding* — the distortion of masked decoding and how to
#   correct it.
# - Lu et al. (2021), *NeuroLogic Decoding: (Un)supervised Neural Text Generation with
#   Predicate Logic Constraints*; Hokamp & Liu (2017), *Lexically Constrained Decoding for
#   Sequence Generation Using Grid Beam Search*.
