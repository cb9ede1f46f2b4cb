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
#   less like the text the model was trained on; length normalisation pulls them back (§3.1).
#
# Survey section: §3.1 (MAP decoding algorithms, pitfalls of MAP decoding). Runs in about
# 30 s on a 2-core CPU.

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

import workbench as wb
from workbench import decoding
from workbench.measures import coin_flips, typical_set_mass
from workbench.tinyworld import worlds
from workbench.tinyworld.grammar import TokenGrammar
from widgets import checks
from widgets import token_level as views
from widgets.beam_tree import BeamTree, beam_tree_figure

wb.seed_everything(SEED)
lm = wb.load(MODEL)
EOS = lm.eos_token_id
story, review = worlds.story_grammar(), worlds.review_grammar()
truths = {g.prompt: TokenGrammar(g, lm.tokenizer) for g in (story, review)}
PROMPT = story.prompt


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
for k in (1, 2, 4, 8):
    b = decoding.beam_search(lm, PROMPT, num_beams=k, length_penalty=0.0, max_new_tokens=24)
    print(f"beam search, {k} beams: {b.text!r:36} log p_θ = {b.best.seq_logprob:.3f}")

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

# %% [markdown]
# The mode's log-probability is only about 2 nats above a typical one, but the spread of
# log p(y) over samples is a fraction of a nat: the mode sits ten standard deviations away from
# where samples live. "Most probable" and "representative" are different things.
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
print(f"share of true stories at least as probable as the mode: "
      f"{np.mean(lp_true >= mode_lp - 1e-9):.4f}  (= p*(mode) = {math.exp(mode_lp):.4f})")
views.logprob_histogram_figure({"stories drawn from p*": lp_true}, {"mode of p*": mode_lp},
                               {"−H(p*)": -H}, xaxis_title="log p*(y)",
                               title="The most probable story is nothing like a typical one")

# %% [markdown]
# The mode, a four-word story, is more probable than every one of the 5000 true stories
# except the copies of itself, and shorter than almost all of them. A writer who always
# produced the mode would be "most probable" and obviously not a sample of this world.
#
# ## The model's MAP outputs among its own samples
#
# Now the trained model. We draw 200 samples from p_θ and compare their log-probabilities with
# those of greedy decoding, beam search and exact MAP. The samples' mean −log p_θ estimates the
# model's entropy.

# %%
samples = decoding.sample(lm, PROMPT, n=200, seed=SEED, max_new_tokens=48)
done_samples = [s for s in samples if s.finish_reason == "eos"]
lp_samples = np.array(lm.score(PROMPT, [s.token_ids + [EOS] for s in done_samples]))
beam4 = decoding.beam_search(lm, PROMPT, num_beams=4, length_penalty=0.0, max_new_tokens=24)
outputs = {"greedy": greedy, "beam search (4)": beam4.best, "exact MAP": best}
lp_outputs = {k: log_p_theta(PROMPT, o) for k, o in outputs.items()}
for k, o in outputs.items():
    share = np.mean(lp_samples >= lp_outputs[k] - 1e-4)  # equal sequences: equal up to float noise
    print(f"{k:>16}: {o.text!r:30} log p_θ = {lp_outputs[k]:6.2f}, log p* = "
          f"{log_p_star(PROMPT, o):6.2f}; samples as probable: {share:.3f}")
print(f"samples: mean log p_θ = {lp_samples.mean():.2f}, mean log p* of the grammatical ones "
      f"= {np.mean([v for v in (log_p_star(PROMPT, s) for s in done_samples) if v > -1e9]):.2f}")
views.logprob_histogram_figure({"samples y ~ p_θ": lp_samples}, lp_outputs,
                               {"mean log p_θ of samples": lp_samples.mean()},
                               xaxis_title="log p_θ(y | x)",
                               title="MAP decoding's outputs sit at the far right of the "
                                     "model's samples")

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

rows, best_by_width = [], {}
for alpha in (0.0, 1.0):
    for k in WIDTHS:
        outs = [decoding.beam_search(lm, p, num_beams=k, length_penalty=alpha,
                                     max_new_tokens=24).best for p in PROMPTS]
        rows.append({"num_beams": k, "length_penalty": alpha, **measure(outs)})
        best_by_width[(alpha, k)] = [o.text for o in outs]
maps = [decoding.exact_map(lm, p, max_new_tokens=24) for p in PROMPTS]
map_row = measure(maps)
print(f"{'beams':>5} {'α':>4} {'length':>7} {'log p_θ':>8} {'log p*':>7}")
for r in rows:
    print(f"{r['num_beams']:5d} {r['length_penalty']:4.1f} {r['length']:7.2f} {r['logp']:8.3f} "
          f"{r['logp_star']:7.3f}")
print(f"{'MAP':>5} {'':4} {map_row['length']:7.2f} {map_row['logp']:8.3f} "
      f"{map_row['logp_star']:7.3f}")
views.beam_width_figure(rows, map_row)

# %%
print(f"{'prompt':24} {'greedy (1 beam)':34} {'16 beams, α = 0':26} {'exact MAP':20}")
for p, g, w, m in zip(PROMPTS, best_by_width[(0.0, 1)], best_by_width[(0.0, 16)], maps):
    print(f"{p:24} {g!r:34} {w!r:26} {m.text!r:20}")

# %% [markdown]
# What the experiment shows:
# - With the MAP objective (α = 0), widening the beam raises log p_θ — that is its job — and
#   the outputs get **shorter**: the extra probability is bought by stopping early. By a
#   handful of beams the search has found the exact MAP output on these prompts.
# - Those outputs are also more probable under the truth p\*: in this world the model's mode and
#   the true mode agree. What they are not is *typical*: a story drawn from p\* has log p\*
#   around −21, the MAP stories sit near −5. MAP decoding is a fine answer to "the single most
#   likely story" and a poor one to "a story like the ones this world tells".
# - **Length normalisation** (α = 1) ranks by log-probability per token, so longer outputs
#   survive: the curve bends the other way. It is a heuristic — it changes the objective
#   rather than fixing the search.
#
# In machine translation the same shift is what turns wide beams from better to worse
# (Koehn & Knowles, 2017): the reference translation is a typical output, not the mode.

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
