# %% [markdown]
# # 02 · MAP decoding: greedy, beam search, exact search — and why the mode is atypical
#
# {badges}
#
# **What you will learn**
# - what MAP decoding asks for — the single most probable output (eq. 7) — and how greedy
#   decoding (eq. 8) and beam search approximate it, and exact search finds it;
# - why the most probable output is **atypical**: the survey's coin example computed exactly,
#   then TinyWorld's stories, where we know the true p\*;
# - measured: as the beam widens towards exact MAP, outputs get **shorter**, more probable and
#   less like the text the model was trained on (on 7 of 8 prompts; the eighth is already the
#   MAP output); length normalisation changes the objective and brings longer outputs back on
#   most prompts (§3.1);
# - the **repetition trap**: asked for 48 tokens past the end of a story, greedy decoding loops
#   on all 16 prompts, sampling on none; **contrastive search** (Su et al., 2022) halves the
#   repetition but still loops on 12 of 16 (a difference within noise); **diverse beam
#   search** (Vijayakumar et al., 2018) makes the beams' outputs measurably more distinct.
#
# Survey section: §3.1 (MAP decoding algorithms, pitfalls of MAP decoding). Runs in about
# 60 s on a 2-core CPU.
#
# **Prerequisites:** chapter 01 (p_θ, p\*, generators, the three goals); logarithms and the
# binomial distribution. **Student time:** 65–75 minutes (exercise 1 is done by hand first).

# %%
# SETUP

# %%
# Parameters: the model every cell uses, and the seed that makes the outputs reproducible.
MODEL = "tinyworld"   # any embedded name, a local directory, or a Hugging Face causal-LM id
SEED = 0

# %%
import math
import random

import numpy as np
import torch

import workbench as wb
from scipy.stats import binomtest

from workbench import decoding, degeneration, stats
from workbench.measures import (coin_flips, distinct_n, loop_period, repeated_ngrams,
                                typical_set_mass)
from workbench.tinyworld import worlds
from workbench.tinyworld.grammar import TokenGrammar
from widgets import checks
from widgets import token_level as views
from widgets.beam_tree import BeamTree, beam_tree_figure
from widgets.source import show_source

wb.seed_everything(SEED)
lm = wb.load(MODEL)
EOS = lm.eos_token_id
story, review = worlds.story_grammar(), worlds.review_grammar()
truths = {g.prompt: TokenGrammar(g, lm.tokenizer) for g in (story, review)}
PROMPT = story.prompt
TARGET = MODEL == "tinyworld"   # the claims about the model's outputs are about TinyWorld's target


def log_p_theta(prompt, out):
    """log p_θ(y | x) of a complete output, its end-of-sequence token included."""
    return lm.score(prompt, [list(out.token_ids) + [EOS]])[0]


def log_p_star(prompt, out):
    """Exact log p*(y | x): the probability that a story which starts with the prompt ends
    with y (the prompt may already hold the first words)."""
    truth = truths["Story:" if prompt.startswith("Story:") else "Review:"]
    ids = lm.encode(prompt)
    if out.finish_reason != "eos":
        return -math.inf
    return truth.log_p_star_tokens(ids + list(out.token_ids) + [EOS]) - math.log(
        truth.prefix_probability(ids))


print(lm)

# %% [markdown]
# ## MAP decoding and its cheapest approximation
#
# Faced with a distribution over outputs, the most natural choice is its most probable member,
# the *maximum a posteriori* output:
#
# $$f(x; p_\theta) = \arg\max_{y \in \mathcal{Y}} p_\theta(y \mid x) \quad (7)$$
#
# The output space is far too large to enumerate, so **greedy decoding** takes the most
# probable token at every step, ŷ_t = argmax p_θ(y_t | ŷ<t, x) (eq. 8). That replaces one
# maximisation over sequences by a sequence of maximisations over tokens (eqs. 9–10), which is
# not the same thing: a token that looks best now can lead to a worse sequence.

# %%
greedy = decoding.greedy(lm, PROMPT)
best = decoding.exact_map(lm, PROMPT, max_new_tokens=24)
print(f"greedy   : {greedy.text!r:32} log p_θ = {log_p_theta(PROMPT, greedy):.3f}")
print(f"exact MAP: {best.text!r:32} log p_θ = {best.seq_logprob:.3f}")

# %% [markdown]
# Where do the two part ways? Below, each output token by token: the probability of the token
# chosen, and the running log-probability. Greedy wins the step where the two differ — that is
# all it looks at — and loses the sequence, because its path needs more tokens, each of which
# costs probability.

# %%
def walk(out):
    lps = lm.token_logprobs(PROMPT, [list(out.token_ids) + [EOS]])[0]
    names = lm.token_strings(out.token_ids) + ["</s>"]
    return list(zip(names, lps, np.cumsum(lps)))

for name, out in (("greedy", greedy), ("exact MAP", best)):
    print(f"{name:>9}: " + "  ".join(f"{t!r} {math.exp(lp):.2f} ({c:.2f})"
                                     for t, lp, c in walk(out)))

# %% tags=["claim"]
assert best.optimal and best.seq_logprob >= log_p_theta(PROMPT, greedy) - 1e-9
if TARGET:
    g_walk, m_walk = walk(greedy), walk(best)
    split = next(i for i, (a, b) in enumerate(zip(g_walk, m_walk)) if a[0] != b[0])
    assert g_walk[split][1] > m_walk[split][1]          # greedy wins the step where they part
    assert len(g_walk) > len(m_walk) and g_walk[-1][2] < m_walk[-1][2] - 2   # ... and loses

# %% [markdown]
# **Look inside.** Greedy decoding is the token loop of `decoding.decode` with a chooser that
# takes the argmax of eq. 8; sampling (chapter 03) is the same loop with another chooser. The
# loop prefills the prompt once, then calls the model once per step on the KV cache
# (`lm.advance`), and stops a row at the end-of-sequence token.

# %%
show_source(decoding.greedy, decoding.choose_greedy, decoding.decode)

# %% [markdown]
# ## Beam search
#
# Beam search keeps K prefixes instead of one. At each step it extends every prefix by every
# token, scores each extension by its log-probability log p_θ(y<t ∘ y_t | x), and keeps the K
# best (§3.1). With K = 1 it is greedy decoding; as K grows it approaches exact MAP. Finished
# hypotheses are ranked by log p_θ(y | x) / |y|^α, where α is the *length penalty*: α = 0 is
# the MAP objective itself, α = 1 (the Hugging Face default) divides by the length.
#
# Explore the search below: every candidate the search considered is drawn, the pruned ones
# in grey; the stars are the finished hypotheses it returns, ranked. Move the width and the
# length penalty and watch which story wins.

# %%
tree = BeamTree(lm, PROMPT, num_beams=3, length_penalty=0.0, max_new_tokens=12)
tree

# %%
beams = decoding.beam_search(lm, PROMPT, num_beams=3, length_penalty=0.0, max_new_tokens=12)
print([(h.text, round(h.seq_logprob, 3)) for h in beams.hypotheses])
beam_tree_figure(beams, lm.tokenizer)

# %% [markdown]
# **Look inside.** `decoding.beam_search` reproduces Hugging Face's bookkeeping and
# stopping rules exactly (a test compares the two), so its loop reads as named phases, as
# Hugging Face's does. The search itself is the first phase, `_top_k_continuations`: add each
# live beam's score to its next-token log-probabilities (`logp + run.scores[:, None]`) and
# take the best 2K extensions over all beams at once (`torch.topk`). Then `_merge_finished`
# moves those that ended to the finished set with score log p_θ(y | x) / |y|^α, and
# `_next_live_beams` keeps the best K that did not end.

# %%
show_source(decoding.beam_search, decoding._top_k_continuations)

# %% [markdown]
# ## Exact MAP search
#
# Sometimes the exact argmax can be found (Stahlberg & Byrne, 2019). `decoding.exact_map` is a
# depth-first branch-and-bound: a prefix's log-probability can only fall as it grows, so any
# prefix already less probable than the best complete output is cut with its whole subtree.
# When the search ends, its answer is *proven* optimal. On TinyWorld's small model this takes
# a few dozen forward passes; on a large model and long outputs it can be hopeless.

# %%
print(f"exact MAP after {PROMPT!r}: {best.text!r}, log p_θ = {best.seq_logprob:.3f}, "
      f"proven optimal: {best.optimal}, nodes expanded: {best.nodes_expanded}")
widths = {}
for k in (1, 2, 4, 8):
    b = widths[k] = decoding.beam_search(lm, PROMPT, num_beams=k, length_penalty=0.0,
                                         max_new_tokens=24)
    print(f"beam search, {k} beams: {b.text!r:36} log p_θ = {b.best.seq_logprob:.3f}")

# %% tags=["claim"]
assert all(b.best.seq_logprob <= best.seq_logprob + 1e-4 for b in widths.values())  # float32
if TARGET:
    assert widths[1].text == greedy.text and best.nodes_expanded < 100
    assert all(widths[k].text == best.text for k in (2, 4, 8))

# %% [markdown]
# **Look inside.** The branch-and-bound is a recursive depth-first search over the token
# tree: at each node it first scores "stop here" (the prefix + EOS, no forward pass needed),
# then visits the children most probable first, and returns as soon as a child's prefix is
# already no more probable than the best complete output found (`if cum + v <= self.best_lp:
# return`) — the children are sorted, so all the others are cut too.

# %%
show_source(decoding.exact_map, decoding._BranchAndBound.visit)

# %% [markdown]
# The empty output is a candidate too. After a complete sentence, the grammar's single most
# likely move is to stop (p\* = 0.55), so the most probable continuation is **nothing at all** —
# the TinyWorld version of Stahlberg & Byrne's finding that exact MAP often returns the empty
# sequence:

# %%
done = "Story: The dog ran."
empty = decoding.exact_map(lm, done, max_new_tokens=24)
print(f"exact MAP after {done!r}: {empty.text!r} (log p_θ = {empty.seq_logprob:.3f}, "
      f"p_θ = {math.exp(empty.seq_logprob):.2f})")
print(f"p*(stop here) = {math.exp(log_p_star(done, empty)):.2f}")
p_next = truths["Story:"].next_token_distribution(lm.encode(done))
print("the most probable next tokens under p*:",
      {("</s>" if t == EOS else lm.decode([t])): round(v, 3)
       for t, v in sorted(p_next.items(), key=lambda kv: -kv[1])[:4]})

# %% tags=["claim"]
assert max(p_next, key=p_next.get) == EOS and abs(p_next[EOS] - 0.55) < 1e-9   # exact p*
if TARGET:
    assert empty.text == "" and empty.optimal and empty.finish_reason == "eos"

# %% [markdown]
# ## The mode is atypical: flipping a coin
#
# Why would the most probable output be a bad one? The survey's illustration (after Dieleman,
# 2020): flip a coin with P(heads) = 0.51 a hundred times. The single most probable sequence is
# a hundred heads — every head is slightly more likely than a tail. But a sample almost never
# looks like that: there is one sequence with 100 heads and C(100, 51) ≈ 10²⁹ sequences with 51.
# A *typical* sequence has a log-probability close to −H, minus the entropy (the *typical set*,
# MacKay 2004), and the mode's is far above it.
#
# Move the sliders: n flips, the bias, and the width ε of the typical set (in nats per flip).
# The left panel is what MAP ranks by, the right one is what samples look like.

# %%
views.CoinExplorer(n=100, p=0.51, eps=0.005)

# %%
coin = coin_flips(100, 0.51)
print(f"most probable sequence: {coin['mode_heads']} heads, log p = {coin['mode_logp']:.2f}, "
      f"P = {math.exp(coin['mode_logp']):.1e}")
print(f"a random sequence: log p = {-coin['entropy']:.2f} ± {coin['logp_std']:.2f} (−H ± std)")
print(f"P(a random sequence is as probable as the mode) = {coin['p_as_likely_as_mode']:.1e}")
print(f"most likely number of heads: {coin['likeliest_count']} "
      f"(P = {coin['p_likeliest_count']:.3f})")
print(f"typical set, ε = 0.005 nats/flip: probability {typical_set_mass(100, 0.51, 0.005):.3f}")
views.coin_figure(coin, eps=0.005)

# %% tags=["claim"]
# exact values: the binomial, the mode 100 heads, its distance from −H in standard deviations
assert math.isclose(math.comb(100, 51), 9.89e28, rel_tol=1e-3)
assert coin["mode_heads"] == 100 and math.isclose(coin["mode_logp"], 100 * math.log(0.51))
gap_nats = coin["mode_logp"] + coin["entropy"]
assert 1.9 < gap_nats < 2.0 and coin["logp_std"] < 0.25           # "about 2 nats", "a fraction"
assert 9.5 < gap_nats / coin["logp_std"] < 10.0                     # "ten standard deviations"
assert coin["likeliest_count"] == 51 and abs(typical_set_mass(100, 0.51, 0.005) - 0.988) < 5e-4

# %% [markdown]
# The mode's log-probability is only about 2 nats above a typical one, but the spread of
# log p(y) over samples is a fraction of a nat (0.20): the mode sits almost ten standard
# deviations (9.8) away from where samples live. "Most probable" and "representative" are
# different things.
#
# ## The mode is atypical: TinyWorld's stories, exactly
#
# The story grammar is the same phenomenon with a real-looking output space. We know its mode
# (a shortest-path search over the grammar), its entropy (a linear system), and we can draw as
# many true stories as we like.

# %%
rng = random.Random(SEED)
true_stories = [story.sample(rng) for _ in range(5000)]
lp_true = np.array([story.log_p_star(t) for t in true_stories])
mode_text, mode_lp = story.mode()
H = story.entropy()
words = lambda t: len(t.replace(".", " .").split())
print(f"mode of p*: {mode_text!r}, log p* = {mode_lp:.2f}, {words(mode_text)} words")
print(f"entropy H(p*) = {H:.2f} nats; true stories: mean log p* = {lp_true.mean():.2f}, "
      f"mean length {np.mean([words(t) for t in true_stories]):.1f} words")
as_probable = stats.accuracy(lp_true >= mode_lp - 1e-9)
print(f"true stories at least as probable as the mode: {as_probable}; exact p*(mode) = "
      f"{math.exp(mode_lp):.4f} (binomial test p = "
      f"{binomtest(as_probable.k, as_probable.n, math.exp(mode_lp)).pvalue:.2f})")
longer = stats.accuracy([words(t) > words(mode_text) for t in true_stories])
print(f"true stories longer than the mode: {longer}; shorter: "
      f"{sum(words(t) < words(mode_text) for t in true_stories)}")
views.logprob_histogram_figure({"stories drawn from p*": lp_true}, {"mode of p*": mode_lp},
                               {"−H(p*)": -H}, xaxis_title="log p*(y)",
                               title="The most probable story is nothing like a typical one")

# %% tags=["claim"]
half = 1.96 * lp_true.std(ddof=1) / math.sqrt(len(lp_true))
assert abs(lp_true.mean() + H) < half                       # samples agree with the exact −H
assert {t for t, v in zip(true_stories, lp_true) if v >= mode_lp - 1e-9} == {mode_text}
assert binomtest(as_probable.k, as_probable.n, math.exp(mode_lp)).pvalue > 0.01
assert words(mode_text) == 4 and min(words(t) for t in true_stories) == 4
assert longer.low > 0.88, longer

# %% [markdown]
# The mode, a four-word story, is more probable than every one of the 5000 true stories
# except the copies of itself (drawn about as often as p\*(mode) says), and no true story is
# shorter: nine in ten are longer. A writer who always produced the mode would be "most
# probable" and obviously not a sample of this world.
#
# ## The model's MAP outputs among its own samples
#
# Now the trained model. We draw 200 samples from p_θ and compare the log-probabilities of the
# 199 that end within 48 tokens with those of greedy decoding, beam search and exact MAP. The
# samples' mean −log p_θ estimates the model's entropy.

# %%
samples = decoding.sample(lm, PROMPT, n=200, seed=SEED, max_new_tokens=48)
done_samples = [s for s in samples if s.finish_reason == "eos"]
lp_samples = np.array(lm.score(PROMPT, [s.token_ids + [EOS] for s in done_samples]))
beam4 = decoding.beam_search(lm, PROMPT, num_beams=4, length_penalty=0.0, max_new_tokens=24)
outputs = {"greedy": greedy, "beam search (4)": beam4.best, "exact MAP": best}
lp_outputs = {k: log_p_theta(PROMPT, o) for k, o in outputs.items()}
as_probable_as = {}
for k, o in outputs.items():
    share = as_probable_as[k] = stats.accuracy(   # equal sequences: equal up to float noise
        lp_samples >= lp_outputs[k] - 1e-4)
    print(f"{k:>16}: {o.text!r:30} log p_θ = {lp_outputs[k]:6.2f}, log p* = "
          f"{log_p_star(PROMPT, o):6.2f}; samples as probable: {share}")
print(f"samples: mean log p_θ = {lp_samples.mean():.2f}, mean log p* of the grammatical ones "
      f"= {np.mean([v for v in (log_p_star(PROMPT, s) for s in done_samples) if v > -1e9]):.2f}")
views.logprob_histogram_figure({"samples y ~ p_θ": lp_samples}, lp_outputs,
                               {"mean log p_θ of samples": lp_samples.mean()},
                               xaxis_title="log p_θ(y | x)",
                               title="MAP decoding's outputs sit at the far right of the "
                                     "model's samples")

# %% tags=["claim"]
if TARGET:   # the title: fewer than 15 % of samples reach greedy's log p_θ, fewer than 3 % MAP's
    assert len(lp_samples) == 199 and as_probable_as["greedy"].high < 0.15
    assert as_probable_as["exact MAP"].high < 0.03 and as_probable_as["exact MAP"].k == 1

# %% [markdown]
# Greedy's story is more probable than nine samples in ten, exact MAP's more probable than
# every sample but the one that *is* the MAP story: both sit in the far right tail of what the
# model itself writes.

# %% [markdown]
# ## Experiment: widening the beam
#
# The survey reports that wide beams, which approach exact MAP, *degrade* outputs by favouring
# short ones (Koehn & Knowles, 2017), and that length normalisation mitigates this (Murray &
# Chiang, 2018). We run beam search with 1 to 16 beams on eight prompts — stories and reviews,
# some already started — with the pure MAP objective (α = 0) and with length normalisation
# (α = 1), and measure the outputs: their length, their log p_θ and their exact log p\*.
# Exact MAP gives the limit.

# %%
PROMPTS = ["Story:", "Story: A", "Story: The little", "Story: An", "Story: The dragon",
           "Story: The girl found", "Review:", "Review: The service was"]
WIDTHS = [1, 2, 4, 8, 16]

def measure(outs):
    return {"length": np.mean([o.length for o in outs]),
            "logp": np.mean([o.seq_logprob for o in outs]),
            "logp_star": np.mean([log_p_star(p, o) for p, o in zip(PROMPTS, outs)])}

rows, best_by_width, outs_by_width = [], {}, {}
for alpha in (0.0, 1.0):
    for k in WIDTHS:
        outs = [decoding.beam_search(lm, p, num_beams=k, length_penalty=alpha,
                                     max_new_tokens=24).best for p in PROMPTS]
        rows.append({"num_beams": k, "length_penalty": alpha, **measure(outs)})
        best_by_width[(alpha, k)] = [o.text for o in outs]
        outs_by_width[(alpha, k)] = outs
maps = [decoding.exact_map(lm, p, max_new_tokens=24) for p in PROMPTS]
map_row = measure(maps)
print(f"{'beams':>5} {'α':>4} {'length':>7} {'log p_θ':>8} {'log p*':>7}")
for r in rows:
    print(f"{r['num_beams']:5d} {r['length_penalty']:4.1f} {r['length']:7.2f} {r['logp']:8.3f} "
          f"{r['logp_star']:7.3f}")
print(f"{'MAP':>5} {'':4} {map_row['length']:7.2f} {map_row['logp']:8.3f} "
      f"{map_row['logp_star']:7.3f}")
views.beam_width_figure(rows, map_row)

# %% [markdown]
# Eight prompts are few, so besides the means we count, prompt by prompt, how the widest beam's
# output compares with greedy's (1 beam), and ask a sign test whether "shorter and more
# probable under p\*" on that many prompts could be chance.

# %%
def per_prompt(alpha):
    """Per prompt: (length, log p*) of the 1-beam and the 16-beam output."""
    return [((one.length, log_p_star(p, one)), (wide.length, log_p_star(p, wide)))
            for p, one, wide in zip(PROMPTS, outs_by_width[alpha, 1], outs_by_width[alpha, 16])]

compare = {alpha: per_prompt(alpha) for alpha in (0.0, 1.0)}
for alpha, pairs in compare.items():
    better = sum(w[0] < g[0] and w[1] > g[1] for g, w in pairs)
    worse = sum(w[0] > g[0] and w[1] < g[1] for g, w in pairs)
    same = sum(w == g for g, w in pairs)
    sign = binomtest(better, better + worse).pvalue if better + worse else 1.0
    print(f"α = {alpha}: 16 beams vs greedy — shorter and more probable under p* on {better} "
          f"prompts, longer and less probable on {worse}, the same output on {same} "
          f"(sign test p = {sign:.3f})")

# %% tags=["claim"]
if TARGET:
    by_k = {(r["length_penalty"], r["num_beams"]): r for r in rows}
    lengths0 = [by_k[0.0, k]["length"] for k in WIDTHS]
    logps0 = [by_k[0.0, k]["logp"] for k in WIDTHS]
    assert lengths0 == sorted(lengths0, reverse=True) and logps0 == sorted(logps0)
    assert best_by_width[(0.0, 4)] == [m.text for m in maps] and lengths0[-1] < lengths0[0] - 1
    g0 = compare[0.0]
    assert sum(w[0] < g[0] and w[1] > g[1] for g, w in g0) == 7 and sum(w == g for g, w in g0) == 1
    assert binomtest(7, 7).pvalue < 0.05
    lengths1 = [by_k[1.0, k]["length"] for k in WIDTHS]
    assert lengths1[1] < lengths1[0] < lengths1[-1]            # a dip, then longer than greedy
    assert sum(w[0] > g[0] and w[1] < g[1] for g, w in compare[1.0]) == 5

# %%
print(f"{'prompt':24} {'greedy (1 beam)':34} {'16 beams, α = 0':26} {'exact MAP':20}")
for p, g, w, m in zip(PROMPTS, best_by_width[(0.0, 1)], best_by_width[(0.0, 16)], maps):
    print(f"{p:24} {g!r:34} {w!r:26} {m.text!r:20}")

# %% [markdown]
# What the experiment shows:
# - With the MAP objective (α = 0), widening the beam raises log p_θ — that is its job — and
#   the outputs get **shorter**: the extra probability is bought by stopping early. By four
#   beams the search has found the exact MAP output on all eight prompts. Prompt by prompt,
#   the widest beam's output is shorter than greedy's on 7 of the 8 (on the eighth greedy
#   already finds the MAP output); 7 of 7 in the same direction has a sign-test p-value of
#   0.016, so the direction is not luck, though eight prompts say nothing about its size in
#   general.
# - Those outputs are also more probable under the truth p\*: after `"Story:"` the model's mode
#   is the true mode (chapter 01). What they are not is *typical*: a story drawn from p\* has
#   log p\* around −21, the MAP stories sit near −5. MAP decoding is a fine answer to "the
#   single most likely story" and a poor one to "a story like the ones this world tells".
# - **Length normalisation** (α = 1) ranks by log-probability per token, so longer outputs
#   survive. The mean length first dips a little (2 and 4 beams), then at 8 and 16 beams
#   rises above greedy's: five story prompts get longer, less probable outputs, while the two
#   review prompts still get the short MAP review. It is a heuristic — it changes the
#   objective rather than fixing the search.
#
# Koehn & Knowles (2017) found that in machine translation wide beams *degrade* outputs by
# favouring short ones. TinyWorld reproduces the shortening, not the degradation: here the
# shorter outputs are more probable under the truth too. Why the mode is a bad output in
# translation is debated; the survey (§3.1, "pitfalls of MAP decoding") lists several
# explanations of this *inadequacy of the mode* (Eikema, 2024): the most probable outputs
# gather so little probability that small estimation errors make the mode arbitrary (Eikema &
# Aziz, 2020; Stahlberg et al., 2022), or MAP outputs fall outside the typical set of the
# model's distribution (Meister et al., 2023b) — the mechanism this chapter shows in
# isolation.

# %% [markdown]
# ## The repetition trap, and two decoding rules against it
#
# The survey lists a second pathology of approximate MAP decoding: greedy decoding "can also
# fail by getting trapped in repetitive sequences" (§3.1; Holtzman et al., 2020; Welleck et
# al., 2020). We measure it on sixteen prompts (`TRAP_PROMPTS` below: the eight of the
# experiment above and eight more) with two measures of `workbench.measures`:
# `repeated_ngrams`, the share of an output's 4-grams that repeat an earlier one (*rep-4*,
# Welleck et al., 2020), and `loop_period`, which says whether the output *ends in a loop*
# (its last tokens are one unit repeated at least three times in a row).
#
# First the honest part: **with its end-of-sequence token, TinyWorld's model does not loop.**
# Greedy decoding ends every one of the sixteen prompts after one sentence (below). The trap
# appears when the output must be longer than the model wants to write, as in open-ended
# generation, where a continuation of fixed length is asked for (Holtzman et al. generate
# fixed-length continuations of web text). We ask for 48 tokens with `eos=False`: the
# end-of-sequence token becomes an ordinary token (written `</s>` below), as in a model
# writing a stream of documents.

# %%
TRAP_PROMPTS = PROMPTS + ["Story: The boy", "Story: A big dog", "Story: The wizard saw",
                          "Story: The robot", "Story: The kind teacher", "Story: An owl",
                          "Review: The pizza", "Review: The staff was"]
with_eos = decoding.greedy(lm, TRAP_PROMPTS, max_new_tokens=48)
print(f"greedy with EOS: {sum(o.finish_reason == 'eos' for o in with_eos)} of "
      f"{len(with_eos)} outputs end with EOS, {sum(loop_period(o.token_ids) > 0 for o in with_eos)}"
      " end in a loop")
trap_outs = {
    "greedy": decoding.greedy(lm, TRAP_PROMPTS, max_new_tokens=48, eos=False),
    "beam search (4)": [decoding.beam_search(lm, p, num_beams=4, max_new_tokens=48, eos=False)
                        for p in TRAP_PROMPTS],
    "sampling": decoding.sample(lm, TRAP_PROMPTS, max_new_tokens=48, eos=False, seed=SEED),
    "contrastive (k=4, α=0.6)": [degeneration.contrastive_search(
        lm, p, top_k=4, alpha=0.6, max_new_tokens=48, eos=False) for p in TRAP_PROMPTS]}
rep4 = {k: [repeated_ngrams(o.token_ids, 4) for o in outs] for k, outs in trap_outs.items()}
loops = {k: [loop_period(o.token_ids) > 0 for o in outs] for k, outs in trap_outs.items()}
trap_rows = [{"method": k, "rep": stats.mean_interval(rep4[k]), "loops": stats.accuracy(loops[k])}
             for k in trap_outs]
for r in trap_rows:
    print(f"{r['method']:>25}: rep-4 {r['rep']}, end in a loop {r['loops']}")
for k, outs in trap_outs.items():
    print(f"{k:>25}: {lm.decode(outs[4].token_ids, skip_special_tokens=False)[:90]!r}")
views.repetition_figure(trap_rows)

# %% [markdown]
# Greedy decoding loops on every prompt, and a beam of four on most: once "The cat found the
# ball." has been written, writing it again is the most probable continuation, and more so
# each time. Sampling, which takes a token in proportion to its probability rather than the
# most probable one, never loops here.
#
# **Contrastive search** (Su et al., 2022) stays close to greedy decoding but refuses to go
# back where it has already been. Among the k most probable next tokens V^(k), it takes
#
# $$y_t = \arg\max_{v \in V^{(k)}} \Big\{ (1-\alpha)\, p_\theta(v \mid y_{<t}, x) - \alpha
#   \max_{1 \le j < t} \cos\big(h_v, h_{y_j}\big) \Big\}$$
#
# where h_v is the model's last hidden state after the candidate v and h_{y_j} that of each
# earlier token (the prompt's included). The second term, the *degeneration penalty*, is
# large for a token that would put the model in a state it was already in: the first step of
# a loop. α = 0 (or k = 1) is greedy decoding.
#
# **Look inside.** Each step feeds the k candidates as k rows of one forward pass on the
# shared KV cache (`lm.forward(..., hidden=True)` returns the hidden states), scores them,
# and keeps the winner's row of the cache.

# %%
show_source(degeneration.contrastive_search, degeneration._contrastive_step,
            degeneration.degeneration_penalty)

# %%
cs_vs_greedy = stats.mean_interval(np.subtract(rep4["contrastive (k=4, α=0.6)"],
                                               rep4["greedy"]))
cs_loops = stats.paired(loops["greedy"], loops["contrastive (k=4, α=0.6)"])
print(f"rep-4, contrastive search minus greedy, per prompt: {cs_vs_greedy}")
print(f"ends in a loop, greedy minus contrastive search: {cs_loops}")

# %% tags=["claim"]
if TARGET:
    by = {r["method"]: r for r in trap_rows}
    assert all(o.finish_reason == "eos" for o in with_eos)                 # no loop with EOS
    assert not any(loop_period(o.token_ids) for o in with_eos)
    assert by["greedy"]["loops"].k == 16 and by["greedy"]["loops"].low > 0.8
    assert by["beam search (4)"]["loops"].k == 14 and by["greedy"]["rep"].mean > 0.85
    assert by["sampling"]["loops"].k == 0 and by["sampling"]["rep"].high < 0.1
    assert abs(by["contrastive (k=4, α=0.6)"]["rep"].mean - 0.42) < 0.005
    assert abs(by["greedy"]["rep"].mean - 0.86) < 0.005
    assert cs_vs_greedy.high < -0.3                                  # rep-4 roughly halved...
    assert by["contrastive (k=4, α=0.6)"]["loops"].k == 12           # ... yet 12 of 16 loop
    assert not cs_loops.resolved and cs_loops.p_value > 0.1          # 16 vs 12: within noise
print("The claims hold.")

# %% [markdown]
# Contrastive search halves the repeated 4-grams (rep-4 0.42 against greedy's 0.86; the
# per-prompt difference −0.44 has a 95 % interval of [−0.53, −0.36]) and writes a few new
# sentences before it falls in; but at the usual setting (k = 4, α = 0.6) twelve of its
# sixteen outputs still end in a loop. Sixteen against twelve loops is **within noise**
# (McNemar's test p = 0.125 on the four prompts where they differ): on this model and these
# prompts we cannot say contrastive search escapes the trap more often, only that it enters
# it later.
#
# ## Diverse beam search
#
# Beam search has a related failure: its K beams tend to be near-copies of one another, a
# single ending with small variations. **Diverse beam search** (Vijayakumar et al., 2018)
# splits the K beams into G groups of K/G and decodes the groups in turn at every step; group
# g ranks the extensions y_<t ∘ v of its beams by
#
# $$\Theta(y_{<t} \circ v) - \lambda \sum_{h < g} \mathrm{count}_h^{(t)}(v),$$
#
# where Θ is the group's running score (log p_θ plus the penalties it paid earlier) and
# count_h^(t)(v) is how often group h chose v at this step (the *Hamming diversity*). With
# one group, or λ = 0, it is plain beam search (a test checks both). We compare four groups
# of one beam (λ = 1) with a beam of four on the eight prompts of the experiment above: the
# diversity of the four outputs (distinct-2) and their mean log p_θ.

# %%
show_source(degeneration._diverse_step, decoding._top_k_continuations)

# %%
dbs_rows = []
for p in PROMPTS:
    div = degeneration.diverse_beam_search(lm, p, num_beams=4, num_groups=4,
                                           diversity_penalty=1.0, max_new_tokens=24)
    plain = decoding.beam_search(lm, p, num_beams=4, max_new_tokens=24)
    dbs_rows.append({"prompt": p, "diverse": [h.text for h in div.hypotheses],
                     "beam": [h.text for h in plain.hypotheses],
                     "d2": (distinct_n([h.token_ids for h in div.hypotheses], 2),
                            distinct_n([h.token_ids for h in plain.hypotheses], 2)),
                     "logp": (np.mean([h.seq_logprob for h in div.hypotheses]),
                              np.mean([h.seq_logprob for h in plain.hypotheses]))})
print("after 'Story:'\n  beam search :", dbs_rows[0]["beam"], "\n  diverse     :",
      dbs_rows[0]["diverse"])
d2_gain = stats.mean_interval([r["d2"][0] - r["d2"][1] for r in dbs_rows])
logp_cost = stats.mean_interval([r["logp"][0] - r["logp"][1] for r in dbs_rows])
print(f"distinct-2 of the 4 outputs: diverse {np.mean([r['d2'][0] for r in dbs_rows]):.3f}, "
      f"beam {np.mean([r['d2'][1] for r in dbs_rows]):.3f}; difference per prompt {d2_gain}")
print(f"mean log p_θ of the 4 outputs, diverse minus beam, per prompt: {logp_cost}")

# %% tags=["claim"]
if TARGET:
    assert all(r["d2"][0] >= r["d2"][1] for r in dbs_rows) and d2_gain.low > 0.1
    assert abs(np.mean([r["d2"][0] for r in dbs_rows]) - 0.85) < 0.005
    assert abs(np.mean([r["d2"][1] for r in dbs_rows]) - 0.67) < 0.005
    assert abs(d2_gain.mean - 0.18) < 0.005 and abs(logp_cost.mean + 0.27) < 0.005
    assert logp_cost.low < 0 < logp_cost.high                        # the cost: within noise
print("The claims hold.")

# %% [markdown]
# The groups part ways: distinct-2 of the four outputs rises from 0.67 to 0.85 (per prompt
# +0.18, 95 % interval [+0.11, +0.26]), never falling on any of the eight prompts. The price
# one would expect, less probable outputs, is **within noise** here (−0.27 nats on average,
# interval [−0.73, +0.33]): plain beam search's extra hypotheses are themselves little
# variations that cost probability too.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1** (by hand first). A coin with P(heads) = 0.7 is flipped 20 times. What is the
# log-probability of the most probable sequence, and the most likely *number* of heads? Store
# them in `mode_logp_20` and `likeliest_20` (use `math`, not `coin_flips`).

# %% tags=["solution"]
### BEGIN SOLUTION
mode_logp_20 = 20 * math.log(0.7)
likeliest_20 = 14
### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    checks.answered(mode_logp_20=mode_logp_20, likeliest_20=likeliest_20)
    c20 = coin_flips(20, 0.7)
    checks.expect(not math.isclose(float(mode_logp_20), math.exp(c20["mode_logp"])),
                  f"mode_logp_20 = {mode_logp_20} is a probability; the exercise asks for its log.")
    checks.expect(not math.isclose(float(mode_logp_20), 14 * math.log(0.7) + 6 * math.log(0.3)),
                  f"mode_logp_20 = {mode_logp_20} is the log-probability of *one* sequence "
                  "with 14 heads. Which single sequence is the most probable, when each flip is "
                  "heads with probability 0.7?")
    checks.close("mode_logp_20", mode_logp_20, c20["mode_logp"], "the flips are independent, "
                 "so a sequence's log-probability is the sum of its flips' log-probabilities.")
    checks.expect(likeliest_20 != 20, "likeliest_20 = 20 is the head count of the most probable "
                  "sequence, but only one sequence has 20 heads. A count is as likely as the "
                  "total probability of all the sequences with that many heads (binomial).")
    checks.expect(likeliest_20 == c20["likeliest_count"], f"likeliest_20 = {likeliest_20} is "
                  "not the most likely number of heads: compare C(20, k)·0.7^k·0.3^(20−k) over k.")

# %% [markdown] tags=["solution"]
# *Think about it:* the most probable sequence is all heads, yet the most likely number of
# heads is not 20. Why, and what does that say about MAP decoding?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* All-heads is the single most probable sequence (0.7²⁰ ≈ 8·10⁻⁴), but it is
# alone; there are C(20, 14) = 38 760 sequences with 14 heads, each much less probable
# (≈ 4.9·10⁻⁶) and together probable 0.19. A sample almost never looks like the mode. MAP
# decoding returns that one most probable output, which is why it can be atypical (short,
# repetitive) text even when the model is good: "most probable" is not "representative".
# <!-- END SOLUTION -->

# %% [markdown]
# **Exercise 2.** Run exact MAP after `"Story: The dragon"` (24 new tokens at most). Store its
# text in `map_dragon`, and in `fewer_tokens` how many tokens fewer its output has than greedy
# decoding's for the same prompt (negative if it has more).

# %% tags=["solution"]
### BEGIN SOLUTION
map_out = decoding.exact_map(lm, "Story: The dragon", max_new_tokens=24)
map_dragon = map_out.text
fewer_tokens = len(decoding.greedy(lm, "Story: The dragon").token_ids) - len(map_out.token_ids)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(map_dragon=map_dragon, fewer_tokens=fewer_tokens)
    m = decoding.exact_map(lm, "Story: The dragon", max_new_tokens=24)
    g = decoding.greedy(lm, "Story: The dragon")
    checks.expect(map_dragon != g.text, "map_dragon is greedy decoding's output: greedy picks "
                  "the best token at each step, exact MAP the best whole sequence "
                  "(decoding.exact_map).")
    checks.expect(map_dragon == m.text, f"map_dragon = {map_dragon!r} is not exact MAP's output "
                  "after \"Story: The dragon\" with max_new_tokens=24.")
    checks.expect(fewer_tokens != len(g.text) - len(m.text), f"fewer_tokens = {fewer_tokens} "
                  "counts characters; count tokens (a Generation's .token_ids).")
    checks.expect(fewer_tokens != -(len(g.token_ids) - len(m.token_ids)), f"fewer_tokens = "
                  f"{fewer_tokens} has the wrong sign: greedy's length minus MAP's.")
    checks.expect(fewer_tokens == len(g.token_ids) - len(m.token_ids), f"fewer_tokens = "
                  f"{fewer_tokens} is not the difference of the two outputs' token counts.")

# %% [markdown]
# **Exercise 3.** In the experiment, what is the smallest beam width (α = 0) whose outputs equal
# exact MAP's on all eight prompts? Store it in `first_width` (`None` if no width did).

# %% tags=["solution"]
### BEGIN SOLUTION
first_width = next((k for k in WIDTHS
                    if best_by_width[(0.0, k)] == [m.text for m in maps]), None)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(first_width=first_width)
    same = [k for k in WIDTHS if best_by_width[(0.0, k)] == [m.text for m in maps]]
    want = same[0] if same else None
    checks.expect(first_width in WIDTHS or first_width is None,
                  f"first_width = {first_width!r} is not one of the widths tried, {WIDTHS}.")
    checks.expect(first_width not in same or first_width == want, f"with {first_width} beams the "
                  "outputs do equal exact MAP's, but a narrower beam already finds them all.")
    checks.expect(first_width == want, f"with first_width = {first_width!r} beams, at least one "
                  "prompt's output differs from exact MAP's: compare best_by_width[(0.0, k)] "
                  "with [m.text for m in maps], prompt by prompt (the table above).")

# %% [markdown]
# **Exercise 4** (implement it). Write contrastive search's degeneration penalty: given the
# hidden states of k candidates (a (k, d) tensor) and those of the n context tokens (n, d),
# return a (k,) tensor holding, for each candidate, the largest cosine similarity between it
# and any context token. The check compares your function with
# `degeneration.degeneration_penalty` on random tensors.

# %% tags=["solution"]
def my_penalty(candidates, context):
    """max_j cos(h_v, h_j) for each row h_v of ``candidates`` over the rows h_j of ``context``."""
    ### BEGIN SOLUTION
    a = candidates / candidates.norm(dim=-1, keepdim=True)
    b = context / context.norm(dim=-1, keepdim=True)
    return (a @ b.T).max(-1).values
    ### END SOLUTION

# %% tags=["check"]
with checks.exercise(4):
    gen = torch.Generator().manual_seed(SEED)
    cands, ctx = 3 * torch.randn(4, 16, generator=gen), torch.randn(6, 16, generator=gen)
    mine, ref = my_penalty(cands, ctx), degeneration.degeneration_penalty(cands, ctx)
    checks.expect(isinstance(mine, torch.Tensor) and tuple(mine.shape) == (4,),
                  f"my_penalty should return one value per candidate, a tensor of shape (4,) "
                  f"here, got {type(mine).__name__} {tuple(getattr(mine, 'shape', ()))}.")
    raw = (cands @ ctx.T).max(-1).values
    checks.expect(not torch.allclose(mine, raw, atol=1e-5), "my_penalty returns dot "
                  "products: divide by the norms of both vectors to get a cosine.")
    cos = torch.nn.functional.normalize(cands, dim=-1) @ \
        torch.nn.functional.normalize(ctx, dim=-1).T
    checks.expect(not torch.allclose(mine, cos.min(-1).values, atol=1e-5), "my_penalty takes "
                  "the least similar context token; the penalty is the *most* similar one.")
    checks.expect(not torch.allclose(mine, 1 - cos.max(-1).values, atol=1e-5), "my_penalty "
                  "returns a cosine distance (1 - cos); the penalty is the similarity itself.")
    checks.expect(torch.allclose(mine, ref, atol=1e-5), f"my_penalty gives {mine.tolist()}, "
                  "which is not max_j cos(h_v, h_j) for each candidate row h_v.")

# %% [markdown] tags=["solution"]
# *Think about it:* contrastive search with k = 4, α = 0.6 still ends most outputs in a loop.
# What would you expect from a larger k or α, and what would you measure besides repetition
# to judge the outputs?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* A larger α weighs the penalty more, a larger k offers less probable
# candidates that are far from every earlier state; together they do break the loops on this
# model (try `top_k=8`), but the escape goes to improbable tokens: the stories derail into
# arithmetic or JSON fragments, text from other parts of the training corpus. Repetition
# alone rewards that. One must also measure coherence or quality, e.g. the mean token
# log-probability under the model, or here the exact log p\* of the story under the grammar,
# which is −∞ once a story leaves it: the diversity–coherence trade-off of §3.2 again.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Key takeaways
#
# - MAP decoding asks for the single most probable output (eq. 7). Greedy decoding (eq. 8)
#   maximises one token at a time and can lose the sequence; beam search keeps K prefixes;
#   branch-and-bound finds and proves the exact argmax when the model is small enough.
# - The most probable output is **atypical**: a coin's 100 heads sit almost ten standard
#   deviations from where samples live, TinyWorld's MAP story is shorter and far more probable
#   than the world's stories, and the MAP outputs of the model sit in the far tail of its own
#   samples. Even the empty output can be the mode.
# - Wider beams find more probable, shorter outputs (7 of 8 prompts here); length
#   normalisation is a heuristic that changes the objective.
# - Eight prompts support a direction (a sign test), not a size: say how many cases a
#   finding rests on.
# - MAP-style decoding loops when it must go on: greedy on 16 of 16 prompts, sampling on 0.
#   Contrastive search penalises hidden states the model already visited and halves the
#   repetition, but at k = 4, α = 0.6 it mostly enters the loop later rather than never;
#   diverse beam search penalises each group for the tokens earlier groups chose and makes
#   the K outputs more distinct, at a cost in log p_θ too small to resolve on eight prompts.
#
# ## Further reading
#
# - Welleck et al. (2024), *From Decoding to Meta-Generation*: §3.1 (MAP decoding algorithms,
#   eqs. 7–10; pitfalls of MAP decoding; the unreasonable effectiveness of approximate MAP).
# - Koehn & Knowles (2017), *Six Challenges for Neural Machine Translation* — the beam problem.
# - Stahlberg & Byrne (2019), *On NMT Search Errors and Model Errors: Cat Got Your Tongue?* —
#   exact search, and the empty translation as the mode.
# - Murray & Chiang (2018), *Correcting Length Bias in Neural Machine Translation*.
# - Eikema & Aziz (2020), *Is MAP Decoding All You Need? The Inadequacy of the Mode in Neural
#   Machine Translation*; Meister, Cotterell & Vieira (2020), *If Beam Search is the Answer,
#   What was the Question?*
# - Holtzman et al. (2020), *The Curious Case of Neural Text Degeneration*; Welleck et al.
#   (2020), *Neural Text Generation with Unlikelihood Training* (rep-n) — the repetition trap.
# - Su et al. (2022), *A Contrastive Framework for Neural Text Generation* — contrastive
#   search (not to be confused with contrastive *decoding*, chapter 04).
# - Vijayakumar et al. (2018), *Diverse Beam Search: Decoding Diverse Solutions from Neural
#   Sequence Models*.
# - Dieleman (2020), *Musings on typicality* (blog post) — the coin example; MacKay (2003),
#   *Information Theory, Inference, and Learning Algorithms*, ch. 4 — the typical set.
