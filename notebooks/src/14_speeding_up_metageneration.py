# %% [markdown]
# # 14 · Speeding up meta-generation: batching and prefix sharing
#
# {badges}
#
# **What you will learn**
# - why meta-generators are a workload of their own: many calls to the same model, on prompts
#   that share long prefixes;
# - **batching** the calls of a meta-generator, and what padding costs when outputs end at
#   different times;
# - **prefix sharing across best-of-N samples**: the prompt is computed once however many
#   samples are drawn — the tokens *billed* (Table 5) and the tokens *computed* part ways, by
#   exactly (N − 1) times the prompt;
# - a **radix-tree prefix cache** (as SGLang's RadixAttention) that reuses keys and values
#   across calls: a few-shot header shared by many questions, its hit rate, and why LRU
#   eviction falls off a cliff instead of degrading gently;
# - **prefix sharing across tree-search nodes**: a child step computes only its own tokens,
#   never its parent's text again — the same search, about half the tokens computed;
# - **continuous batching** over **paged KV memory** for requests that arrive over time: a
#   real engine on the model, checked against transformers' own, and the latency-throughput
#   trade it changes;
# - what **vLLM** and **SGLang** do with the same ideas at scale (paged KV memory, copy-on-write,
#   continuous batching, radix caches).
#
# **Survey sections**: §7.3 (speeding up meta-generation algorithms) and §7.4 (libraries and
# tools), building on §4.2 (parallel meta-generators), §4.3 (step-level search) and Table 5
# (§6.1). **Prerequisites**: chapter 12 (prefill and decoding, the KV cache and its size,
# batching), chapter 07 (best-of-N and majority voting), chapter 08 (step-level search; only for
# the search-tree section); chapter 11 helps for Table 5's billed tokens. **Student time**: 55–70
# minutes (reading, running, three exercises). Runs in about a minute on an idle 2-core CPU
# (longer when other programs share it); the long measurements come from
# `scripts/bench_efficiency.py` (`data/results/efficiency.json`; a test re-runs a slice of it).

# %%
# SETUP

# %%
MODEL = "tinyworld"          # any embedded name, local directory or HF causal-LM id
DRAFT = "tinyworld-draft"    # not needed here; chapter 13 uses it for speculative decoding
SEED = 0

# %%
import json
import time

import torch
import workbench as wb
from workbench import adapters, decoding, meta
from workbench import efficiency as eff
from workbench.models import DecodeState
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld.tasks import load_tasks
from widgets import checks
from widgets import kv_cache as views
from widgets.search_tree import search_tree_figure
from widgets.source import show_source

wb.seed_everything(SEED)
torch.set_num_threads(1)   # time on one thread, as the benchmark does (chapter 12, "Timing")
lm = wb.load(MODEL)
eff.use_growing_cache(lm)   # KV caches that append in place: same results, less copying
EMBEDDED = MODEL == "tinyworld"   # the claims about this model's numbers
print(lm)
bench = json.loads((data_dir() / "results" / "efficiency.json").read_text())

# A few-shot prompt: four worked examples (a long header shared by every question, like a
# system prompt), then the question.
examples = ["12+7*3-5", "85-29+7*6", "4*6-13+9", "38+17*3-29+6*4"]
header = "".join(ar.Problem(e).prompt() + ar.Problem(e).solution() + "\n" for e in examples)
questions = [t["prompt"] for t in load_tasks("arithmetic")[100:108]]
prompt = header + questions[0]
print(f"header: {len(lm.encode(header))} tokens; question: {questions[0]!r}")

# %% [markdown]
# A word on this prompt. TinyWorld's models were trained on one problem per document, so
# behind a few-shot header TinyWorld does not answer the question (it starts a question of its
# own: try `decoding.greedy(lm, prompt)`). The header stands in for the long system prompts and
# few-shot headers of real deployments; what this chapter measures is what the model
# *computes*, and for that its answers do not matter. Where answers matter (the vote below), the
# prompt is the bare question, the format TinyWorld was trained on.
#
# ## Meta-generators make many calls
#
# Best-of-N, voting and MBR draw N samples of one prompt (§4.2); step-level search expands
# every state of a tree into several next steps (§4.3); a few-shot or system prompt is repeated
# in front of every question. Chapters 12 and 13 sped up *one* call. Here we use the **structure
# across calls**, which the survey (§7.3) and its tutorial single out: calls that are
# independent can be **batched**, and calls that share a prefix can **share its KV cache**.
#
# ## Batching the calls
#
# Sixteen samples drawn one call at a time run sixteen token loops; drawn as one batch, one loop
# advances all sixteen rows per forward pass (chapter 12: a memory-bound step costs far less
# than sixteen). If sample i generates $L_i$ tokens (its end-of-sequence token included), a call
# makes one forward pass per token, so
#
# $$\text{passes}_{\text{one at a time}} = \sum_{i=1}^{N} L_i, \qquad \text{passes}_{\text{batch}} = \max_i L_i, \qquad \text{padding} = \sum_{i=1}^{N} \Big(\max_j L_j - L_i\Big) \text{ row-steps}:$$
#
# a finished row rides along (fed a padding token) until the longest one ends. *Look inside*,
# the token loop every generator runs, with the padding of finished rows near its end:

# %%
show_source(decoding.decode)

# %% [markdown]
# First the time, with every sample exactly 24 tokens long (`eos=False`), so that both ways do
# the same work per sample (one timing each: the claim below asks for a margin that a busy
# machine keeps):

# %%
N, T, T_TIMING = 16, 96, 24
sampler = [lambda s: adapters.temperature(s, 0.8)]
start = time.perf_counter()
one_by_one = [decoding.sample(lm, questions[0], adapters=sampler, seed=i, eos=False,
                              max_new_tokens=T_TIMING) for i in range(N)]
t_sequential = time.perf_counter() - start
start = time.perf_counter()
batched = decoding.sample(lm, questions[0], adapters=sampler, seed=SEED, n=N, eos=False,
                          max_new_tokens=T_TIMING)
t_batched = time.perf_counter() - start
cost_seq, cost_batch = (wb.budget.total(g.cost for g in gens) for gens in (one_by_one, batched))
print(f"one call at a time: {cost_seq.forward_passes} forward passes, {t_sequential:.2f} s")
print(f"one batch of {N}    : {cost_batch.forward_passes} forward passes, {t_batched:.2f} s")
views.timings_figure({f"{N} calls, one after the other": 1000 * t_sequential,
                      f"one batch of {N}": 1000 * t_batched},
                     title=f"Drawing {N} samples of {T_TIMING} tokens (ms, measured once each)")

# %% [markdown]
# Now let the samples end where they end (up to T = 96 tokens), as a meta-generator would, and
# count the padding:

# %%
finished = decoding.sample(lm, questions[0], adapters=sampler, seed=SEED, n=N, max_new_tokens=T)
lengths = [len(g.token_ids) + (g.finish_reason == "eos") for g in finished]
padding = sum(max(lengths) - n for n in lengths)
P_q = len(lm.encode(questions[0]))
c_finished = wb.budget.total(g.cost for g in finished)
print(f"sample lengths: {sorted(lengths)}")
print(f"the batch ran until its longest sample ({max(lengths)} steps); rows that had finished "
      f"rode along for {padding} of {N * max(lengths)} row-steps")
print(f"computed positions: {c_finished.computed_tokens} = P + N (max L - 1) = "
      f"{P_q} + {N} x {max(lengths) - 1}")

# %% [markdown]
# The claims: one forward pass per token per call one at a time, one per step for the batch
# ($N \cdot 24$ against 24 here); the batch at least 3 times faster (a single timing of each, so
# the margin is wide); and with free lengths, padded row-steps that the computed positions
# include.

# %% tags=["claim"]
assert cost_seq.forward_passes == N * T_TIMING and cost_batch.forward_passes == T_TIMING
assert c_finished.forward_passes == max(lengths)
assert c_finished.computed_tokens == P_q + N * (max(lengths) - 1)
if EMBEDDED:
    assert t_sequential > 3 * t_batched, (t_sequential, t_batched)
    assert padding > 0 and all(g.finish_reason == "eos" for g in finished)
print("The claims hold.")

# %% [markdown]
# Those padded row-steps are wasted work. Serving systems avoid it with **continuous batching**
# (iteration-level scheduling: Orca, Yu et al., 2022; vLLM): the batch is re-formed at every
# step, a finished sequence leaves at once and a waiting request takes its slot.
#
# ## Prefix sharing across best-of-N samples
#
# All N samples start from the same prompt, so its keys and values are the same for all of
# them. `decoding.sample(lm, prompt, n=N)` runs the prompt **once** and copies its cache into N
# rows (`DecodeState.repeat`); `decoding.sample(lm, [prompt] * N)` treats the N copies as
# different prompts and computes each. With the prompt's length $T_{\text{in}}$ (Table 5's
# symbol) and $L_{\max}$ the longest sample, the positions computed are
#
# $$C_{\text{shared}} = T_{\text{in}} + N (L_{\max} - 1), \qquad C_{\text{per sample}} = N\, T_{\text{in}} + N (L_{\max} - 1), \qquad C_{\text{per sample}} - C_{\text{shared}} = (N - 1)\, T_{\text{in}},$$
#
# while both bill $T_{\text{in}} \cdot N$ input tokens (Table 5) and the same output tokens.
# *Look inside*: the sampler prefills once and repeats the state's rows:

# %%
show_source(decoding._run, DecodeState.repeat)

# %%
P = len(lm.encode(prompt))
shared = decoding.sample(lm, prompt, adapters=sampler, seed=SEED, n=N, max_new_tokens=T)
unshared = decoding.sample(lm, [prompt] * N, adapters=sampler, seed=SEED, max_new_tokens=T)
c_shared = wb.budget.total(g.cost for g in shared)
c_unshared = wb.budget.total(g.cost for g in unshared)
print("the same samples:", [g.token_ids for g in shared] == [g.token_ids for g in unshared])
print("a sample behind the few-shot header:", repr(shared[0].text))
for name, c in (("shared prompt", c_shared), ("prompt per sample", c_unshared)):
    print(f"{name:18s}: billed input {c.input_tokens} + output {c.output_tokens}; "
          f"computed {c.computed_tokens} positions")
print(f"the prompt has T_in = {P} tokens: sharing computes it once instead of {N} times, "
      f"saving (N - 1) T_in = {(N - 1) * P} positions")

# %% tags=["claim"]
assert [g.token_ids for g in shared] == [g.token_ids for g in unshared]
assert (c_shared.input_tokens, c_shared.output_tokens) == (c_unshared.input_tokens,
                                                           c_unshared.output_tokens)
assert c_shared.input_tokens == N * P
assert c_unshared.computed_tokens - c_shared.computed_tokens == (N - 1) * P
if EMBEDDED:   # behind the header TinyWorld starts a question of its own and never answers
    assert not any("A:" in g.text for g in shared)
print("The claims hold.")

# %% [markdown]
# This is the gap between the **billed** input tokens of Table 5 ($T_{\text{in}} \cdot N$: an
# API charges every call for its prompt) and what a system that shares prefixes really
# computes. Every meta-generator built on `meta.LMGenerator` gets it for free. A majority vote
# over 16 samples of the bare question (where TinyWorld does answer):

# %%
vote = meta.majority_vote(questions[0], meta.LMGenerator(lm, adapters=sampler, max_new_tokens=T),
                          n=N, seed=SEED)
truth = ar.Problem(questions[0][3:-1]).answer
votes = {a: int(v) for a, v in sorted(vote.votes.items(), key=lambda kv: -kv[1])}
print(f"majority vote over {N} samples: answer {vote.answer} (correct: {truth}); votes {votes}")
print(f"billed input {vote.cost.input_tokens} = {P_q} x {N}; computed "
      f"{vote.cost.computed_tokens} positions, the prompt's {P_q} once")

# %% [markdown]
# The vote is right although not every sample is, and the right answer holds a majority of the
# 16 votes; the input billed is $N \cdot T_{\text{in}}$ while the question was computed once.

# %% tags=["claim"]
longest = max(len(c.token_ids) + (c.finish_reason == "eos") for c in vote.candidates)
assert vote.cost.input_tokens == N * P_q
assert vote.cost.computed_tokens == P_q + N * (longest - 1)
if EMBEDDED:
    assert vote.answer == truth and len(votes) > 1     # right, though not every sample is
    assert votes[truth] > N // 2
print("The claims hold.")

# %% [markdown]
# Now the time it takes, for 1, 4 and 16 samples of the few-shot prompt (one timing each; the
# benchmark at the end records the ratio on a quiet machine). At N = 1 the two calls do the same
# work; at N = 16 sharing computes 15 prompts fewer, and the claim asks it to be at least twice
# as fast:

# %%
timing_rows, computed_at = [], {}
for n in (1, 4, 16):
    start = time.perf_counter()
    a = decoding.sample(lm, prompt, adapters=sampler, seed=SEED, n=n, max_new_tokens=T)
    a_s = time.perf_counter() - start
    start = time.perf_counter()
    b = decoding.sample(lm, [prompt] * n, adapters=sampler, seed=SEED, max_new_tokens=T)
    b_s = time.perf_counter() - start
    computed_at[n] = tuple(wb.budget.total(g.cost for g in x).computed_tokens for x in (a, b))
    timing_rows.append({"name": f"N = {n}", "prompt per sample": 1000 * b_s,
                        "shared prompt": 1000 * a_s, "ratio": b_s / a_s})
views.grouped_bars_figure([{k: v for k, v in r.items() if k != "ratio"} for r in timing_rows],
                          title=f"Drawing N samples of a {P}-token prompt", yaxis="ms (measured)")

# %% tags=["claim"]
assert computed_at[1][0] == computed_at[1][1]
assert computed_at[16][1] - computed_at[16][0] == 15 * P
if EMBEDDED:
    assert timing_rows[-1]["ratio"] > 2, timing_rows
print("The claims hold.")

# %% [markdown]
# **Memory.** Sharing the *computation* is not sharing the *memory*: `repeat` copies the
# prompt's cache into every row, so the N rows hold N copies. A paged KV store (vLLM's
# PagedAttention) keeps the prompt's blocks once and lets the N sequences point at them, copying
# a block only when a sequence writes into it (copy-on-write). With $M_{\text{KV}}(n)$ the cache
# bytes of n positions (chapter 12),
#
# $$M_{\text{copied}} = N \cdot M_{\text{KV}}(T_{\text{in}}), \qquad M_{\text{paged}} = M_{\text{KV}}(T_{\text{in}}) + \text{each sample's own tokens}, \qquad \text{saving } (N - 1)\, M_{\text{KV}}(T_{\text{in}}).$$

# %%
state = lm.prefill(prompt, n=N)
per_token = eff.kv_cache_bytes(lm.model.config, 1, dtype_bytes=lm.model.dtype.itemsize)
print(f"copied rows: {state.cache_bytes() / 2**20:.2f} MiB = {N} x {P} tokens x "
      f"{per_token} bytes")
print(f"stored once: {P * per_token / 2**20:.2f} MiB for the prompt, plus each sample's own "
      f"tokens as it grows")

# %% tags=["claim"]
assert state.cache_bytes() == N * P * per_token
print("The claim holds.")

# %% [markdown]
# ## A radix tree of prefixes, across calls
#
# Samples of *one* prompt are the easy case. Across calls, prompts share prefixes of every
# length: the few-shot header, the `Q: ` after it, the first digits of similar questions, a
# search state's text and all its children. `eff.PrefixCache` keeps the keys and values of
# every prefix it has computed in a **radix tree** (one edge per run of tokens, split where
# prompts diverge), as SGLang's RadixAttention does (Zheng et al., 2024); a new prompt is served
# its longest stored prefix and only the rest is computed. For request j with prompt $x_j$, let
# $m_j$ be the length of the longest stored prefix of $x_j$, at most $|x_j| - 1$ (the last
# token is always run, for its next-token logits). Then
#
# $$\text{computed}_j = |x_j| - m_j, \qquad \text{hit rate} = \frac{\sum_j m_j}{\sum_j |x_j|}.$$
#
# *Look inside*: the walk down the tree, and the prefill that uses it:

# %%
show_source(eff.PrefixCache._walk, eff.PrefixCache.prefill)

# %%
cache = eff.PrefixCache(lm)
served = cache.prefill([header + q for q in questions])
plain = lm.prefill([header + q for q in questions])
H = len(lm.encode(header))
print(cache.stats())
print("same next-token logits as computing every prompt in full:",
      bool((served.logits - plain.logits).abs().max() < 1e-4))
views.prefix_tree_figure(cache, lm.tokenizer)

# %% [markdown]
# The header appears once in the tree; each question hangs off it, and questions starting with
# the same digits share those too. The first prompt paid for the header; the seven others were
# served it. The claims: the same logits as computing every prompt in full, 7 hits in 8
# lookups, at least the header's $H$ tokens served to each of the seven, and computed positions
# equal to requested minus served, as the formula says.

# %% tags=["claim"]
assert (served.logits - plain.logits).abs().max() < 1e-4
assert (cache.lookups, cache.hits) == (8, 7)
assert cache.reused_tokens >= 7 * H
assert cache.computed_tokens == cache.requested_tokens - cache.reused_tokens
print("The claims hold.")

# %% [markdown]
# A real cache has a capacity. When it is full, the **least recently used** leaves are evicted
# (as in RadixAttention): while the stored positions exceed the capacity, remove the leaf
# $\ell^\star = \arg\min_{\ell \in \text{leaves}} \text{last use}(\ell)$ (a node becomes a
# leaf, and can go next, once its children are gone). *Look inside*:

# %%
show_source(eff.PrefixCache._evict)

# %% [markdown]
# Serve the first four questions in rounds, each behind two different headers in turn, and
# shrink the capacity:

# %%
other = "".join(ar.Problem(e).prompt() + ar.Problem(e).solution() + "\n"
                for e in ["7*8-19+3", "66-5*9+12", "9+8*7-40"])
stream = [h + q for q in questions[:4] for h in (header, other)] * 2
both_headers = H + len(lm.encode(other)) - 1          # they share only the BOS token
capacities = (None, 600, 500, 400, 300)
capacity_rows, rates = [], {}
for capacity in capacities:
    pc = eff.PrefixCache(lm, max_tokens=capacity)
    for x in stream:
        pc.prefill(x)
    capacity_rows.append(pc.stats())
    rates[capacity] = pc.hit_rate
    print(f"capacity {str(capacity):>4s} tokens: hit rate {pc.hit_rate:.2f}, "
          f"{pc.tokens_saved} of {pc.requested_tokens} prompt tokens not recomputed")
print(f"the two headers together: {both_headers} tokens")
views.grouped_bars_figure(
    [{"name": f"capacity {c or 'unbounded'}", "computed": r["computed_tokens"],
      "served from the tree": r["reused_tokens"]}
     for c, r in zip(capacities, capacity_rows)],
    title=f"{len(stream)} prompts through an LRU prefix cache", yaxis="prompt tokens")

# %% [markdown]
# The hit rate does not fall gently with the capacity: it holds while both headers fit, dips
# when they barely do (500), and collapses to almost nothing once they do not (400 and below).
# The requests alternate between the two headers, and LRU evicts exactly the least recently
# used one, which is the one the next request needs: with a cyclic access pattern a little
# larger than the cache, LRU misses every time. That is the classic worst case of LRU, and one
# reason SGLang adds **cache-aware scheduling**: among waiting requests it serves first those
# with the longest cached prefix, so that requests sharing a header run together, before
# eviction. The claims: the same hit rate at 600 as unbounded, lower at 500, below 0.05 at 400,
# where the two headers (between 400 and 500 tokens together, printed above) no longer fit.

# %% tags=["claim"]
assert 400 < both_headers < 500
if EMBEDDED:
    assert rates[600] == rates[None] > rates[500] > 0.05 > rates[400] >= rates[300], rates
print("The claims hold.")

# %% [markdown]
# **Step through it.** The same stream, one request at a time: the tree after each request,
# what the request was served from it and what it had to compute. At capacity 600 the two
# headers sit side by side in the tree from request 2 on; at 400, watch each request evict
# the header the next one needs.

# %%
views.PrefixStepper(lm, stream, capacities=capacities)

# %% tags=["claim"]
two = eff.PrefixCache(lm, max_tokens=600)
two.prefill(stream[0]), two.prefill(stream[1])
assert two.stored_tokens >= both_headers          # both headers in the tree after request 2
print("The claim holds.")

# %% [markdown]
# ## Prefix sharing across a search tree
#
# Step-level search (chapter 08) expands states into next steps; every child's prompt is its
# parent's text plus one step. A state at depth d is the prompt x followed by steps
# $s_1 \dots s_d$. A stepper that re-encodes each state (`meta.TextStepper` around a generator —
# all a black-box API allows) computes $|x| + \sum_{i \le d} |s_i|$ prompt positions every time
# it expands it (its children share them in one batch); `meta.LMStepper` stores every state it
# generates in a `PrefixCache`, so expanding a state computes only its last token before the
# new steps. Both **bill** the whole text of the state as input for every call. *Look inside*:

# %%
show_source(meta.LMStepper._decode)

# %% [markdown]
# Run the same best-first search (gpt-f style, value = cumulative log-probability) both ways,
# with the same seed:

# %%
search_prompt = questions[1]
value = meta.logprob_value("sum")
kw = dict(expansions=3, max_expansions=12, max_steps=12, seed=SEED)
stepper = meta.LMStepper(lm, adapters=sampler)
reuse = meta.best_first(search_prompt, stepper, value, **kw)
reencode = meta.best_first(search_prompt, meta.TextStepper(
    meta.LMGenerator(lm, adapters=sampler, stop="\n", max_new_tokens=32)), value, **kw)
search_truth = ar.Problem(search_prompt[3:-1]).answer
print("same tree both ways:", [n.step for n in reuse.tree] == [n.step for n in reencode.tree])
print(f"{len(reuse.tree)} nodes; answer {reuse.answer} (correct: {search_truth})")
for name, r in (("re-encoding every state", reencode), ("reusing the KV cache", reuse)):
    print(f"{name:24s}: billed {r.cost.input_tokens} in + {r.cost.output_tokens} out; "
          f"computed {r.cost.computed_tokens} positions")
search_tree_figure(reuse)

# %% [markdown]
# The claims: the same tree both ways, the same tokens billed, and the cache computing at most
# 60 % of the positions the re-encoding stepper computes; with TinyWorld the search also ends
# at the right answer.

# %% tags=["claim"]
assert [n.step for n in reuse.tree] == [n.step for n in reencode.tree]
assert (reuse.cost.input_tokens, reuse.cost.output_tokens) == (reencode.cost.input_tokens,
                                                               reencode.cost.output_tokens)
assert reuse.cost.computed_tokens < 0.6 * reencode.cost.computed_tokens
if EMBEDDED:
    assert reuse.answer == search_truth
print("The claims hold.")

# %% [markdown]
# The stepper's prefix cache mirrors the search tree: the prompt once, then one edge per step.

# %%
print(stepper.cache)
views.prefix_tree_figure(stepper.cache, lm.tokenizer, title="The search tree, as a radix tree "
                         "of cached keys and values")

# %% [markdown]
# Deeper trees save more: a state at depth d has d steps of text that a re-encoding stepper
# computes again for every expansion. Here is the whole picture in tokens computed:

# %%
views.grouped_bars_figure(
    [{"name": f"best-of-{N} (prompt {P} tokens)", "without sharing": c_unshared.computed_tokens,
      "with sharing": c_shared.computed_tokens},
     {"name": f"{len(questions)} questions, shared header",
      "without sharing": cache.requested_tokens, "with sharing": cache.computed_tokens},
     {"name": f"best-first search ({len(reuse.tree)} nodes)",
      "without sharing": reencode.cost.computed_tokens,
      "with sharing": reuse.cost.computed_tokens}],
    title="Token positions computed, without and with prefix sharing", yaxis="positions")

# %% [markdown]
# ## Serving requests that arrive over time: continuous batching and paged KV memory
#
# A server's requests (or a meta-generator's calls) arrive one after another and want outputs of
# different lengths. **Static batching** starts a batch, pads it, and runs it until its longest
# output is done: a finished row keeps its slot, and a new arrival waits for the whole batch.
# **Continuous batching** (Orca; Yu et al., 2022) schedules at every decoding step: a finished
# request leaves at once and a waiting one takes its place. Its memory is **paged** (vLLM;
# Kwon et al., 2023): each request holds a table of fixed-size blocks of $b$ tokens, allocated
# as it grows, instead of a padded row sized for the worst case:
#
# $$\text{reserved}_{\text{paged}} = b \sum_{i\ \text{running}} \left\lceil \frac{|x_i| + |y_i|}{b} \right\rceil \qquad\text{vs}\qquad \text{reserved}_{\text{static}} = B \left(\max_i |x_i| + \max_i n_i\right),$$
#
# with $n_i$ request $i$'s output budget. `eff.continuous_batching` is a real engine on the
# model: each step admits arrived requests while the batch has room and the block pool can hold
# their worst case, lets every row choose its greedy token, retires the finished rows (freeing
# their blocks) and runs one batched decoding pass. *Look inside* its admission rule:

# %%
show_source(eff.batching._Continuous._admit)

# %% [markdown]
# Six of the questions, with different output budgets, arriving at steps 0 to 5; a batch of at
# most 4 rows both ways, blocks of 8 tokens. The same requests go to transformers' own
# continuous batching (`generate_batch`, with its paged cache) for comparison:

# %%
budgets, arrivals = [40, 12, 32, 8, 40, 20], [0, 0, 1, 2, 3, 5]
requests = [eff.Request(i, q, n, a) for i, (q, n, a) in enumerate(zip(questions, budgets,
                                                                    arrivals))]
served = {"static": eff.static_batching(lm, requests, batch_size=4),
          "continuous": eff.continuous_batching(lm, requests, max_batch=4, num_blocks=64,
                                                block_size=8)}
for name, res in served.items():
    print(f"{name:10}: {res.num_steps} engine steps, mean latency {res.mean_latency:.1f} steps "
          f"(first token after {res.mean_ttft:.1f}), peak KV slots reserved "
          f"{res.peak_reserved_tokens}, {res.cost.forward_passes} forward passes")
hf_tokens = None
if hasattr(lm.model, "generate_batch"):
    from transformers import ContinuousBatchingConfig, GenerationConfig
    hf = lm.model.generate_batch(
        inputs=[lm.prompt_ids(r.prompt) for r in requests],
        generation_config=GenerationConfig(max_new_tokens=max(budgets), do_sample=False,
                                           eos_token_id=lm.eos_token_id,
                                           pad_token_id=lm.pad_token_id),
        continuous_batching_config=ContinuousBatchingConfig(
            num_blocks=32, page_size=16, max_batch_tokens=128, max_requests_per_batch=4),
        warmup=False)
    # one budget for all there: cut each to its request's budget (and drop a final EOS)
    hf_tokens = [[t for t in hf[f"req_{i}"].generated_tokens if t != lm.eos_token_id][:n]
                 for i, n in enumerate(budgets)]
    print("transformers' continuous batching gives the same tokens:",
          hf_tokens == [g.token_ids for g in served["continuous"].generations])
views.serving_steps_figure(list(served.values()))

# %% [markdown]
# The figure shows the difference: the static batch's rows stay in the pass until its longest
# output is done (the flat tops), and the second batch waits for the first; continuous
# batching refills the freed rows at once, and reserves only the blocks its sequences fill.
# The price here is a second pass on every step that admits someone (the newcomers' prefill;
# Orca fuses the two).
#
# Over many requests, a simulation (no model: a step costs $a + b \cdot$ tokens computed) shows
# the trade at the heart of serving: as requests arrive faster, a static server's latency
# climbs and its throughput stops at what fixed batches can carry, while continuous batching
# keeps the batch full:

# %%
curve = eff.serving_curve([0.02, 0.05, 0.1, 0.2, 0.5, 1.0], n=200, max_batch=8, seed=SEED)
views.serving_curve_figure(curve)

# %% [markdown]
# The claims: continuous batching gives every request exactly the tokens of greedy decoding,
# and the same tokens as transformers' continuous batching; on these six requests it finishes
# in fewer engine steps, with a lower mean latency, and reserves fewer KV slots at its peak than
# the padded static batch; in the simulation its mean latency is lower at every arrival rate
# and its throughput at least as high. All of these are deterministic (greedy decoding, a
# seeded workload), so they are exact statements, not estimates.

# %% tags=["claim"]
cont, stat = served["continuous"], served["static"]
first = decoding.greedy(lm, requests[0].prompt, max_new_tokens=budgets[0])
assert cont.generations[0].token_ids == first.token_ids
assert [g.token_ids for g in cont.generations] == [g.token_ids for g in stat.generations]
if hf_tokens is not None:
    assert hf_tokens == [g.token_ids for g in cont.generations]
assert cont.num_steps < stat.num_steps and cont.mean_latency < stat.mean_latency
assert cont.peak_reserved_tokens < stat.peak_reserved_tokens
by = {(r["rate"], r["scheduler"]): r for r in curve}
for rate in {r["rate"] for r in curve}:
    assert by[rate, "continuous"]["mean_latency"] < by[rate, "static"]["mean_latency"]
    assert by[rate, "continuous"]["throughput"] >= by[rate, "static"]["throughput"] * 0.999
print("The claims hold.")

# %% [markdown]
# ## At scale: vLLM and SGLang (§7.4)
#
# The workbench keeps these ideas small enough to read. Serving systems implement them for
# thousands of concurrent sequences on GPUs:
#
# | idea | in this workbench | vLLM (Kwon et al., 2023) | SGLang (Zheng et al., 2024) |
# |---|---|---|---|
# | KV memory | one contiguous tensor per layer, rows copied by `repeat` | **PagedAttention**: fixed-size blocks and a block table per sequence, like virtual memory pages; no fragmentation | paged memory as well, indexed by the radix tree |
# | N samples, beam search | prompt computed once, cache copied into N rows | prompt blocks shared with reference counts; **copy-on-write** when a sequence diverges | `fork` in the program shares the prefix |
# | prefixes across requests | `PrefixCache`: radix tree, LRU leaves | automatic prefix caching (blocks found by a hash of their tokens) | **RadixAttention**: radix tree over all requests, LRU eviction, cache-aware scheduling |
# | batching | a static batch padded to its longest row; `continuous_batching` (above) | **continuous batching**: sequences join and leave at every step | continuous batching |
# | one call faster (ch. 12) | growing cache, speculative decoding, int8 | CUDA graphs, fused kernels, quantisation, speculative decoding | the same, plus compressed automata for constrained decoding |
#
# Two more ideas from this line of work: **Hydragen** (Juravsky et al., 2024) computes attention
# over a shared prefix as one matrix product for all sequences instead of once per sequence,
# turning a memory-bound read into compute-bound work; and SGLang's *front-end language*
# (`gen`, `select`, `fork`) lets the runtime see a meta-generation program's structure, so it
# knows which prefixes will be shared before the calls arrive.
#
# ## The claims, measured by the benchmark
#
# `scripts/bench_efficiency.py` times 16 samples of a 549-token few-shot prompt with and without
# a shared prefix, a prefix cache over 16 few-shot prompts, and batched decoding at batch 1 to
# 64, on a quiet machine (one timing each). The claim cell asserts against the committed
# `data/results/efficiency.json`; it re-times nothing.

# %%
pre = bench["prefix"]
tp = {r["batch"]: r for r in bench["throughput"]}
print(f"prefix sharing, {pre['samples']} samples of a {pre['prompt_tokens']}-token prompt: "
      f"{pre['speedup']:.2f}x faster (target 2x)")
print(f"prefix cache over {pre['prefix_cache']['lookups']} few-shot prompts: hit rate "
      f"{pre['prefix_cache']['hit_rate']:.2f}, {pre['prefix_cache']['tokens_saved']} tokens "
      f"not recomputed, prefill {pre['prefix_cache_prefill_speedup']:.2f}x faster")
print(f"batch 64 vs batch 1: {tp[64]['tokens_per_second'] / tp[1]['tokens_per_second']:.1f}x the "
      f"tokens per second, {tp[64]['ms_per_step'] / tp[1]['ms_per_step']:.1f}x the step time")
views.throughput_figure(bench["throughput"]).update_layout(
    title="Batching (benchmark): 64x the sequences,<br>about 12x the tokens per second, "
          "5x the step time")

# %% [markdown]
# Prefix sharing reached 3.7× against its 2× target; the prefix cache served 91 % of the
# prompt tokens and made the prefill 5.8 times faster. Batching 64 sequences gave about 12
# times the tokens per second of one, while each step took about 5 times as long: a step is far
# from free at batch 64, only far cheaper than 64 steps.

# %% tags=["claim"]
assert pre["speedup"] >= 2 and round(pre["speedup"], 1) == 3.7 and pre["max_logit_diff"] < 1e-4
assert round(pre["prefix_cache"]["hit_rate"], 2) == 0.91
assert round(pre["prefix_cache_prefill_speedup"], 1) == 5.8
assert round(tp[64]["tokens_per_second"] / tp[1]["tokens_per_second"]) == 12
assert round(tp[64]["ms_per_step"] / tp[1]["ms_per_step"]) == 5
print("The claims hold (against the committed data/results/efficiency.json).")

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1** (predict, then measure). Take N = 8 samples of `questions[2]`, each exactly
# T = 10 tokens long (`max_new_tokens=10, eos=False`). How many token positions does
# `decoding.sample(lm, questions[2], n=8, ...)` compute, and how many does
# `decoding.sample(lm, [questions[2]] * 8, ...)` compute? Write both as formulas in P (the
# prompt's length with `lm.encode`) and store them in `computed_shared` and
# `computed_unshared`; then run the two calls and compare.

# %% tags=["solution"]
### BEGIN SOLUTION
P2 = len(lm.encode(questions[2]))
computed_shared = P2 + 8 * (10 - 1)     # the prompt once; the 10th token is never fed back
computed_unshared = 8 * P2 + 8 * (10 - 1)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    checks.answered(computed_shared=computed_shared, computed_unshared=computed_unshared)
    q2 = questions[2]
    runs = {"computed_shared": decoding.sample(lm, q2, seed=SEED, n=8, max_new_tokens=10,
                                               eos=False),
            "computed_unshared": decoding.sample(lm, [q2] * 8, seed=SEED, max_new_tokens=10,
                                                 eos=False)}
    answers = {"computed_shared": computed_shared, "computed_unshared": computed_unshared}
    for name, outs in runs.items():
        want = wb.budget.total(g.cost for g in outs).computed_tokens
        checks.expect(answers[name] != want + 8, f"{name} = {answers[name]} feeds every sampled "
                      "token back; the 10th token of each sample is sampled and never fed to "
                      "the model, so each sample costs 9 decoding positions.")
        checks.expect(answers[name] == want, f"{name} = {answers[name]} is not what the call "
                      "computes: the prompt's P positions (once if shared, once per sample if "
                      "not) plus the decoding positions.")

# %% [markdown] tags=["solution"]
# *Think about it:* does sharing the prompt's cache across the samples change what they say?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* No. The prompt's keys and values depend only on the prompt's tokens, so the
# copy each row receives is what that row would have computed itself; the samples then differ
# only by their random draws (the cell on prefix sharing above prints "the same samples: True").
# Only the work is shared, not the randomness; numerically the two can differ at the level of
# float rounding, when batched kernels sum in another order.
# <!-- END SOLUTION -->

# %% [markdown]
# **Exercise 2.** A fresh `PrefixCache` first serves `header + questions[0]`, then
# `header + questions[1]`. How many tokens of the second prompt are served from the tree? Store
# it in `reused`. (Hint: compare the two prompts' token ids.)

# %% tags=["solution"]
### BEGIN SOLUTION
a, b = lm.encode(header + questions[0]), lm.encode(header + questions[1])
reused = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(reused=reused)
    tree = eff.PrefixCache(lm)
    tree.prefill(header + questions[0])
    tree.prefill(header + questions[1])
    checks.expect(reused != len(lm.encode(header)), f"reused = {reused} is the header's length, "
                  "but the two prompts share a little more than the header: compare their "
                  "token ids position by position.")
    checks.expect(reused == tree.reused_tokens, f"reused = {reused} is not the longest common "
                  "prefix of the two prompts' token ids (BOS included).")

# %% [markdown]
# **Exercise 3.** How many bytes of KV cache does a block-sharing store save over copying, for
# N = 16 samples of the P-token `prompt`? Store it in `bytes_saved` (use `eff.kv_cache_bytes`
# with this model's config and its number size, `lm.model.dtype.itemsize`).

# %% tags=["solution"]
### BEGIN SOLUTION
bytes_saved = (N - 1) * eff.kv_cache_bytes(lm.model.config, P, dtype_bytes=lm.model.dtype.itemsize)
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(bytes_saved=bytes_saved)
    one = lm.prefill(prompt).cache_bytes()
    copied = lm.prefill(prompt, n=N).cache_bytes()
    checks.expect(bytes_saved != copied, f"bytes_saved = {bytes_saved} is every copy; a "
                  "block-sharing store still keeps one, so it saves N − 1 of the N.")
    checks.expect(bytes_saved != (N - 1) * one // 2, f"bytes_saved = {bytes_saved} assumes 2 "
                  "bytes a number; this model keeps lm.model.dtype.itemsize bytes.")
    checks.expect(bytes_saved == copied - one, f"bytes_saved = {bytes_saved} is not the "
                  "difference between N copies of the prompt's cache and one.")
print(f"Sharing saves {bytes_saved / 2**20:.2f} MiB for {N} samples of a {P}-token prompt.")

# %% [markdown]
# ## Key takeaways
#
# - Meta-generators call one model many times on prompts that share prefixes; that structure,
#   not the single call, is what §7.3 speeds up.
# - **Batching** N calls turns $\sum_i L_i$ forward passes into $\max_i L_i$; rows that finish
#   early ride along as padding until the longest ends, which continuous batching removes.
# - **Prefix sharing** computes a prompt once for N samples: $(N - 1) T_{\text{in}}$ positions
#   fewer, the same samples, and the same tokens billed ($T_{\text{in}} \cdot N$ in Table 5).
#   Billed and computed tokens are different numbers; budgets (chapter 11) count the first,
#   hardware pays the second.
# - Sharing the computation is not sharing the memory: copied rows hold N caches of the prompt;
#   paged memory with copy-on-write holds one.
# - A **radix tree** generalises prefix sharing across calls (few-shot headers, search trees);
#   under LRU eviction its hit rate collapses once the working set stops fitting, because a
#   cyclic pattern makes LRU evict what is needed next.
# - In **tree search**, reusing each state's cache leaves the tree and the billed tokens
#   unchanged and cuts the positions computed roughly in half here; deeper trees save more.
#
# ## Further reading
#
# - Survey §7.3 (speeding up meta-generation algorithms) and §7.4 (libraries and tools) of
#   Welleck et al. (2024), with Table 5 (§6.1) for billed tokens, and the NeurIPS 2024 tutorial's
#   efficiency part (Finlayson, Schoelkopf & Welleck, 2024).
# - Kwon et al. (2023), *Efficient Memory Management for Large Language Model Serving with
#   PagedAttention* (vLLM).
# - Zheng et al. (2024), *SGLang: Efficient Execution of Structured Language Model Programs*
#   (RadixAttention, cache-aware scheduling, the front-end language).
# - Yu et al. (2022), *Orca: A Distributed Serving System for Transformer-Based Generative
#   Models* (iteration-level scheduling, i.e. continuous batching).
# - Juravsky et al. (2024), *Hydragen: High-Throughput LLM Inference with Shared Prefixes*.
# - Pope et al. (2023), *Efficiently Scaling Transformer Inference* (why batched decoding is
#   memory-bound, and what KV-cache memory limits).
