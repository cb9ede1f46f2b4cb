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
# §4.2.3's rejection sampling. Runs in about 40 s on a 2-core CPU.

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

import workbench as wb
from workbench import constraints as C
from workbench import decoding, meta
from workbench.constraints.library import LibraryMatcher
from workbench.tinyworld.grammar import TokenGrammar
from workbench.tinyworld import formats
from workbench.tinyworld.worlds import (NEGATIVE, POSITIVE, RECORD_SCHEMA, review_grammar,
                                        sentiment, story_grammar, validate_record)
from widgets import checks
from widgets import constrained as views
from widgets.kv_cache import grouped_bars_figure, timings_figure

wb.seed_everything(SEED)
lm = wb.load(MODEL)
json_prompt = formats.json_format(lm).prompt()   # 'JSON:\n'; few-shot records first for other models
EOS = lm.eos_token_id
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
      f"| forward passes {g.cost.forward_passes} for {len(g.token_ids)} tokens "
      f"(saved {g.info['passes_saved']})")

# %% [markdown]
# Two tokens are allowed first, not one: `" The"`, and `" "` followed later by `"The"`. The
# index allows **every** tokenization of a valid text, including ones the tokenizer would
# never produce (we come back to such unnatural boundaries with token healing). Where exactly
# one token is allowed, it is appended **without asking the model** — the survey's *template
# speedup*: a run of forced tokens is fed to the model in one pass together with the next free
# choice.
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
# ## Experiment: rejection sampling against constrained decoding
#
# Two ways to get outputs that satisfy a constraint:
# - **rejection sampling** (§4.2.3): sample from p_θ and keep the valid outputs. The kept
#   outputs are exact draws from q\*(y) ∝ p_θ(y | x) 𝟙[y valid] (eq. 17); the price is every
#   rejected draw, and the acceptance rate is p_θ(valid), which can be tiny;
# - **constrained decoding**: mask every step. Never rejects — but each step renormalises over
#   the allowed tokens *without knowing how much valid continuation lies behind each one*.
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

# %% tags=["claim"]
N_REJECT, N_CONSTRAINED = 120, 400
proposal = meta.LMGenerator(lm, max_new_tokens=60)
with wb.trace() as t:
    rs = meta.rejection_sample(json_prompt, proposal, meta.filter_target(age_index.matches),
                               0.0, num_samples=N_REJECT, max_proposals=4000, batch=200,
                               seed=SEED)
proposed = [e["text"] for e in t.events if e["kind"] in ("accept", "reject")]
constrained = decoding.sample(lm, json_prompt, adapters=[C.ConstraintAdapter(age_index)],
                              n=N_CONSTRAINED, seed=SEED, max_new_tokens=60)
assert all(age_index.matches(g.text) for g in constrained)
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
grouped_bars_figure(rows, title="The cost of one valid record (ages 19-30)",
                    yaxis="per valid record")

# %% [markdown]
# Rejection sampling pays for its exactness with the tokens of every rejected proposal — here
# several proposals per kept record, because only about one age in seven is allowed.
# Constrained decoding spends one record's tokens per record. Greedy constrained decoding is
# the cheapest and the least like a sample: the same record every time.
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
views.conditional_figure(
    AGES, {f"constrained decoding ({N_CONSTRAINED} samples)": f_con,
           f"rejection sampling ({N_REJECT} accepted)": f_rej},
    {"truth p*(age | valid)": uniform, "p_θ(age | valid), exact": p_cond,
     "masked decoder, exact": q_local},
    title=f"Ages written under the constraint {LO} ≤ age ≤ {HI}", xaxis="age")

# %% [markdown]
# The rejection samples scatter around the truth (their TV is sampling noise); the constrained
# samples pile up on **30**, because the mask at the first digit cannot see that `3` leads to
# one valid age and `2` to ten. Constrained decoding samples from
# q(y) = ∏ₜ p_θ(yₜ | y<ₜ) / Zₜ(y<ₜ), where Zₜ is the mass of the allowed tokens at step t; the
# true conditional divides by one global Z = p_θ(valid) instead. The two agree only when every
# allowed token leads to the same share of valid continuations — try a range of 20–29 in
# exercise 3. This is one of the distortions the survey alludes to with *minimally invasive*
# decoding (Beurer-Kellner et al., 2024), and why rejection sampling (or importance weighting,
# chapter 07) is still used when exactness matters.
#
# ## Token healing (Figure 3)
#
# A prompt (or a template) that ends in the middle of a word forces a token boundary the
# model hardly ever saw. TinyWorld's tokenizer writes `" tokenization"` as one token, but the
# template `"An unnatural token"` is cut into `" tok"` + `"en"`; to continue it the model must
# spell `"iz"` + `"ation"`. **Token healing** rolls the prompt back to the last token boundary
# that keeps the removed text a prefix of some token (here before `" tok"`), and requires the
# first generated token to start with the removed text `" token"` (a prefix-tree lookup).

# %%
figure3 = C.template_tokens(lm, "An unnatural token", "ization")
print("without healing:", figure3["without"])
print("with healing:   ", figure3["with"], "| the tokenizer's own:", figure3["natural"])
views.healing_figure(figure3, title="Figure 3: the template forces ' tok' + 'en'")

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
    heal_stats[heal] = {"log p_θ": float(np.mean(logp)),
                          "stories": np.mean([story.log_p_star(s) > -math.inf for s in texts]),
                          "example": texts[0], "tokens": lm.token_strings(seqs[0])}
for heal, r in heal_stats.items():
    print(f"{'with' if heal else 'without'} healing: mean log p_θ {r['log p_θ']:7.2f}, "
          f"stories of the world {r['stories']:.2f}; e.g. {r['tokens']}")
views.healing_figure(C.compare_healing(lm, HEAL_PROMPT, max_new_tokens=6),
                     title="Greedy continuations without and with token healing")

# %% [markdown]
# Without healing the model is asked to continue from a tokenization it never produces
# itself. It does not know what to do there: it spells the rest of the word letter by letter,
# its log-probability collapses, and the stories go wrong (a noun followed by "in the park" is
# not a sentence of the world). As token sequences they are impossible anyway — p\* only writes
# canonical tokenizations. Healing lets the model write `" tokenization"` as it learned it, and
# the continuation is an ordinary, probable story.
#
# ## How fast is the mask? Ours against llguidance
#
# Our index answers "which tokens are allowed?" with a precomputed table. llguidance
# (Microsoft's guidance library, used by vLLM, SGLang and llama.cpp) computes each mask on the
# fly with a lexer and an Earley parser over bytes, which lets it handle context-free grammars
# too. Both give the same masks (the tests compare them token for token); here we time them
# along the same token paths — the constrained records sampled above.

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
print(f"{n_steps} steps; our index built in {build * 1e3:.0f} ms "
      f"({fresh.n_states} states); per step:", {k: f"{v:.1f} µs" for k, v in us.items()})
print("our cached lookup is faster than llguidance:", us["ours, cached"] < us["llguidance"])
timings_figure(us, title=f"Mask + state update per token (llguidance / ours cached = "
                         f"{us['llguidance'] / us['ours, cached']:.0f}×)", unit="µs")

# %% [markdown]
# A table lookup beats a parser, and both are far below a forward pass of even this small
# model. The table's price is paid up front (building the index) and grows with states ×
# vocabulary; a parser handles recursive grammars and huge vocabularies with no such table —
# which is why production systems use parsers with caches.
#
# ## Lexical constraints (§3.5.2)
#
# Inference APIs offer **ban lists** and **logit bias**: adapters that forbid or discourage
# tokens. Banning every negative adjective, though, does not make a review positive — the
# model can still write "not great":

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
hit = np.mean([all(C.satisfied(g.text, CLAUSES)) for g in plain])
print(f"plain samples that satisfy the formula: {hit:.2f}")

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
