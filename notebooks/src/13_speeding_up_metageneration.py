# %% [markdown]
# # 13 · Speeding up meta-generation: batching and prefix sharing
#
# {badges}
#
# **What you will learn**
# - why meta-generators are a workload of their own: many calls to the same model, on prompts
#   that share long prefixes;
# - **batching** the calls of a meta-generator, and what padding costs when outputs end at
#   different times;
# - **prefix sharing across best-of-N samples**: the prompt is computed once however many
#   samples are drawn — the tokens *billed* (Table 5) and the tokens *computed* part ways;
# - a **radix-tree prefix cache** (as SGLang's RadixAttention) that reuses keys and values
#   across calls: a few-shot header shared by many questions, its hit rate, LRU eviction;
# - **prefix sharing across tree-search nodes**: a child step computes only its own tokens,
#   never its parent's text again — the same search, far fewer tokens computed;
# - what **vLLM** and **SGLang** do with the same ideas at scale (paged KV memory, copy-on-write,
#   continuous batching, radix caches).
#
# Survey sections: §7 (speeding up meta-generation algorithms; libraries and tools), building
# on §4.2 (parallel meta-generators), §4.3 (step-level search) and Table 5 (§6.1). Runs in
# about 60 s on a 2-core CPU; the long measurements come from `scripts/bench_efficiency.py`
# (`data/results/efficiency.json`; a test re-runs a slice of it).

# %%
# SETUP

# %%
MODEL = "tinyworld"          # any embedded name, local directory or HF causal-LM id
DRAFT = "tinyworld-draft"    # not needed here; chapter 12 uses it for speculative decoding
SEED = 0

# %%
import json
import time

import workbench as wb
from workbench import adapters, decoding, meta
from workbench import efficiency as eff
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld.tasks import load_tasks
from widgets import checks
from widgets import kv_cache as views
from widgets.search_tree import search_tree_figure

wb.seed_everything(SEED)
lm = wb.load(MODEL)
eff.use_growing_cache(lm)   # KV caches that append in place: same results, less copying
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
# ## Meta-generators make many calls
#
# Best-of-N, voting and MBR draw N samples of one prompt (§4.2); step-level search expands
# every state of a tree into several next steps (§4.3); a few-shot or system prompt is repeated
# in front of every question. Chapter 12 sped up *one* call. Here we use the **structure
# across calls**, which the survey (§7) and its tutorial single out: calls that are
# independent can be **batched**, and calls that share a prefix can **share its KV cache**.
#
# ## Batching the calls
#
# Sixteen samples drawn one call at a time run sixteen token loops; drawn as one batch, one loop
# advances all sixteen rows per forward pass (chapter 12: a memory-bound step costs about the
# same for one row or sixteen).

# %%
N, T = 16, 48
sampler = [lambda s: adapters.temperature(s, 0.8)]
start = time.perf_counter()
one_by_one = [decoding.sample(lm, questions[0], adapters=sampler, seed=i, max_new_tokens=T)
              for i in range(N)]
t_sequential = time.perf_counter() - start
start = time.perf_counter()
batched = decoding.sample(lm, questions[0], adapters=sampler, seed=SEED, n=N, max_new_tokens=T)
t_batched = time.perf_counter() - start
cost_seq, cost_batch = wb.budget.total(g.cost for g in one_by_one), wb.budget.total(
    g.cost for g in batched)
print(f"one call at a time: {cost_seq.forward_passes} forward passes, {t_sequential:.2f} s")
print(f"one batch of {N}    : {cost_batch.forward_passes} forward passes, {t_batched:.2f} s")
lengths = [len(g.token_ids) + (g.finish_reason == "eos") for g in batched]
padding = sum(max(lengths) - n for n in lengths)
print(f"the batch ran until its longest sample ({max(lengths)} steps); rows that had finished "
      f"rode along for {padding} of {N * max(lengths)} row-steps")
views.timings_figure({"16 calls, one after the other": 1000 * t_sequential,
                      f"one batch of {N}": 1000 * t_batched},
                     title="Drawing 16 samples (ms, measured)")

# %% [markdown]
# Those padded row-steps are wasted work. Serving systems avoid it with **continuous batching**
# (Orca, Yu et al. 2022; vLLM): the batch is re-formed at every step, a finished sequence leaves
# at once and a waiting request takes its slot.
#
# ## Prefix sharing across best-of-N samples
#
# All N samples start from the same prompt, so its keys and values are the same for all of
# them. `decoding.sample(lm, prompt, n=N)` runs the prompt **once** and copies its cache into N
# rows (`DecodeState.repeat`); `decoding.sample(lm, [prompt] * N)` treats the N copies as
# different prompts and computes each. Same samples, same billed tokens; different work:

# %%
P = len(lm.encode(prompt))
shared = decoding.sample(lm, prompt, adapters=sampler, seed=SEED, n=N, max_new_tokens=T)
unshared = decoding.sample(lm, [prompt] * N, adapters=sampler, seed=SEED, max_new_tokens=T)
c_shared = wb.budget.total(g.cost for g in shared)
c_unshared = wb.budget.total(g.cost for g in unshared)
print("the same samples:", [g.token_ids for g in shared] == [g.token_ids for g in unshared])
for name, c in (("shared prompt", c_shared), ("prompt per sample", c_unshared)):
    print(f"{name:18s}: billed input {c.input_tokens} + output {c.output_tokens}; "
          f"computed {c.computed_tokens} positions")
print(f"the prompt has P = {P} tokens: sharing computes it once instead of {N} times, "
      f"saving (N - 1) P = {(N - 1) * P} positions")

# %% [markdown]
# This is the gap between the **billed** input tokens of Table 5 (T_in · N: an API charges
# every call for its prompt) and what a system that shares prefixes really computes. Every
# meta-generator built on `meta.LMGenerator` gets it for free:

# %%
vote = meta.majority_vote(prompt, meta.LMGenerator(lm, adapters=sampler, max_new_tokens=T),
                          n=N, seed=SEED)
print(f"majority vote over {N} samples: answer {vote.answer} (correct: "
      f"{ar.Problem(questions[0][3:-1]).answer})")
print(f"billed input {vote.cost.input_tokens} = {P} x {N}; computed {vote.cost.computed_tokens}")

# %% [markdown]
# Now the time it takes, for 1, 4 and 16 samples (the figure holds the timings; the benchmark
# below records the ratio on a quiet machine):

# %%
timing_rows = []
for n in (1, 4, 16):
    start = time.perf_counter()
    decoding.sample(lm, prompt, adapters=sampler, seed=SEED, n=n, max_new_tokens=T)
    a = time.perf_counter() - start
    start = time.perf_counter()
    decoding.sample(lm, [prompt] * n, adapters=sampler, seed=SEED, max_new_tokens=T)
    b = time.perf_counter() - start
    timing_rows.append({"name": f"N = {n}", "prompt per sample": 1000 * b,
                        "shared prompt": 1000 * a})
views.grouped_bars_figure(timing_rows, title=f"Drawing N samples of a {P}-token prompt",
                          yaxis="ms (measured)")

# %% [markdown]
# **Memory.** Sharing the *computation* is not sharing the *memory*: `repeat` copies the
# prompt's cache into every row, so the N rows hold N copies. A paged KV store (vLLM's
# PagedAttention) keeps the prompt's blocks once and lets the N sequences point at them, copying
# a block only when a sequence writes into it (copy-on-write):

# %%
state = lm.prefill(prompt, n=N)
per_token = eff.kv_cache_bytes(lm.model.config, 1, dtype_bytes=lm.model.dtype.itemsize)
print(f"copied rows: {state.cache_bytes() / 2**20:.2f} MiB = {N} x {P} tokens x "
      f"{per_token} bytes")
print(f"stored once: {P * per_token / 2**20:.2f} MiB for the prompt, plus each sample's own "
      f"tokens as it grows")

# %% [markdown]
# ## A radix tree of prefixes, across calls
#
# Samples of *one* prompt are the easy case. Across calls, prompts share prefixes of every
# length: the few-shot header, the `Q: ` after it, the first digits of similar questions, a
# search state's text and all its children. `eff.PrefixCache` keeps the keys and values of
# every prefix it has computed in a **radix tree** (one edge per run of tokens, split where
# prompts diverge), as SGLang's RadixAttention does (Zheng et al., 2024); a new prompt is served
# its longest stored prefix and only the rest is computed.

# %%
cache = eff.PrefixCache(lm)
served = cache.prefill([header + q for q in questions])
plain = lm.prefill([header + q for q in questions])
print(cache.stats())
print("same next-token logits as computing every prompt in full:",
      bool((served.logits - plain.logits).abs().max() < 1e-4))
views.prefix_tree_figure(cache, lm.tokenizer)

# %% [markdown]
# The header appears once in the tree; each question hangs off it, and questions starting with
# the same digits share those too. The first prompt paid for the header; the seven others were
# served it.
#
# A real cache has a capacity. When it is full, the **least recently used** leaves are evicted
# (as in RadixAttention). Serve the questions in rounds with two different headers, and watch
# the hit rate fall with the capacity:

# %%
other = "".join(ar.Problem(e).prompt() + ar.Problem(e).solution() + "\n"
                for e in ["7*8-19+3", "66-5*9+12", "9+8*7-40"])
stream = [h + q for q in questions[:4] for h in (header, other)] * 2
capacity_rows = []
for capacity in (None, 600, 300, 150):
    pc = eff.PrefixCache(lm, max_tokens=capacity)
    for p in stream:
        pc.prefill(p)
    capacity_rows.append(pc.stats())
    print(f"capacity {str(capacity):>4s} tokens: hit rate {pc.hit_rate:.2f}, "
          f"{pc.tokens_saved} of {pc.requested_tokens} prompt tokens not recomputed")
views.grouped_bars_figure(
    [{"name": f"capacity {c or 'unbounded'}", "computed": r["computed_tokens"],
      "served from the tree": r["reused_tokens"]}
     for c, r in zip((None, 600, 300, 150), capacity_rows)],
    title=f"{len(stream)} prompts through an LRU prefix cache", yaxis="prompt tokens")

# %% [markdown]
# SGLang adds **cache-aware scheduling** on top: among waiting requests, it serves first those
# with the longest cached prefix, so hits happen before eviction.
#
# ## Prefix sharing across a search tree
#
# Step-level search (chapter 08) expands states into next steps; every child's prompt is its
# parent's text plus one step. A stepper that re-encodes each state (`meta.TextStepper` around a
# generator — all a black-box API allows) pays for the whole text at every expansion.
# `meta.LMStepper` stores every state it generates in a `PrefixCache`, so expanding a state
# computes only the new tokens. Run the same best-first search (gpt-f style, value = cumulative
# log-probability) both ways, with the same seed:

# %%
search_prompt = questions[1]
value = meta.logprob_value("sum")
kw = dict(expansions=3, max_expansions=6, max_steps=8, seed=SEED)
stepper = meta.LMStepper(lm, adapters=sampler)
reuse = meta.best_first(search_prompt, stepper, value, **kw)
reencode = meta.best_first(search_prompt, meta.TextStepper(
    meta.LMGenerator(lm, adapters=sampler, stop="\n", max_new_tokens=32)), value, **kw)
print("same tree both ways:", [n.step for n in reuse.tree] == [n.step for n in reencode.tree])
print(f"{len(reuse.tree)} nodes; answer {reuse.answer} (correct: "
      f"{ar.Problem(search_prompt[3:-1]).answer})")
for name, r in (("re-encoding every state", reencode), ("reusing the KV cache", reuse)):
    print(f"{name:24s}: billed {r.cost.input_tokens} in + {r.cost.output_tokens} out; "
          f"computed {r.cost.computed_tokens} positions")
search_tree_figure(reuse)

# %% [markdown]
# The stepper's prefix cache mirrors the search tree: the prompt once, then one edge per step.

# %%
print(stepper.cache)
views.prefix_tree_figure(stepper.cache, lm.tokenizer, title="The search tree, as a radix tree "
                         "of cached keys and values")

# %% [markdown]
# Deeper trees save more: a state at depth d has d steps of text that a re-encoding stepper
# computes again for every child. Here is the whole picture in tokens computed:

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
# ## At scale: vLLM and SGLang
#
# The workbench keeps these ideas small enough to read. Serving systems implement them for
# thousands of concurrent sequences on GPUs:
#
# | idea | in this workbench | vLLM (Kwon et al., 2023) | SGLang (Zheng et al., 2024) |
# |---|---|---|---|
# | KV memory | one contiguous tensor per layer, rows copied by `repeat` | **PagedAttention**: fixed-size blocks and a block table per sequence, like virtual memory pages; no fragmentation | paged memory as well, indexed by the radix tree |
# | N samples, beam search | prompt computed once, cache copied into N rows | prompt blocks shared with reference counts; **copy-on-write** when a sequence diverges | `fork` in the program shares the prefix |
# | prefixes across requests | `PrefixCache`: radix tree, LRU leaves | automatic prefix caching (blocks found by a hash of their tokens) | **RadixAttention**: radix tree over all requests, LRU eviction, cache-aware scheduling |
# | batching | a static batch padded to its longest row | **continuous batching**: sequences join and leave at every step | continuous batching |
# | one call faster (ch. 12) | growing cache, speculative decoding, int8 | CUDA graphs, fused kernels, quantisation, speculative decoding | the same, plus compressed automata for constrained decoding |
#
# Two more ideas from this line of work: **Hydragen** (Juravsky et al., 2024) computes attention
# over a shared prefix as one matrix product for all sequences instead of once per sequence,
# turning a memory-bound read into compute-bound work; and SGLang's *front-end language*
# (`gen`, `select`, `fork`) lets the runtime see a meta-generation program's structure, so it
# knows which prefixes will be shared before the calls arrive.
#
# ## The claim, measured by the benchmark
#
# `scripts/bench_efficiency.py` times 16 samples of the few-shot prompt with and without a
# shared prefix on a quiet machine:

# %%
pre = bench["prefix"]
print(f"prefix sharing, {pre['samples']} samples of a {pre['prompt_tokens']}-token prompt: "
      f"{pre['speedup']:.2f}x faster (target 2x)")
print(f"prefix cache over {pre['prefix_cache']['lookups']} few-shot prompts: hit rate "
      f"{pre['prefix_cache']['hit_rate']:.2f}, {pre['prefix_cache']['tokens_saved']} tokens "
      f"not recomputed, prefill {pre['prefix_cache_prefill_speedup']:.2f}x faster")
views.throughput_figure(bench["throughput"])

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
