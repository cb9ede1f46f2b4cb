# %% [markdown]
# # 12 · Speeding up generation: KV cache, roofline, batching, speculative decoding
#
# {badges}
#
# **What you will learn**
# - what **prefill** and **decoding** are (survey eqs. 55–56), what the **KV cache** keeps, and
#   how big it is: 2 × layers × KV heads × head dim × bytes × tokens × batch, checked against the
#   bytes the embedded model really holds, then scaled up to Llama-2-7B;
# - how **multi-query** and **grouped-query attention** shrink the cache, and what converting a
#   trained model costs in fidelity;
# - **arithmetic intensity** and the **roofline** (§7.1, eqs. 53–54) with the survey's H100
#   figures: why decoding a token is memory-bound and a prefill compute-bound;
# - two choices that change speed but (almost) not outputs: **int8 weights** and the
#   **attention kernel** (PyTorch's fused SDPA vs the eager softmax(QKᵀ/√d)V);
# - **batching**: more tokens per second from the same memory-bound steps;
# - **speculative decoding** (draft-then-verify): why its output follows the target exactly, how
#   many tokens a round yields (closed form vs measured), and **prompt-lookup** drafting on a
#   task that copies its input.
#
# Survey sections: §7 (introduction), §7.1 (latency, throughput, hardware), §7.2 (speeding up
# the generator), equations 53–56. Runs in about 60 s on a 2-core CPU; the long measurements
# come from `scripts/bench_efficiency.py` (stored in `data/results/efficiency.json`; a test
# re-runs a slice of it).

# %%
# SETUP

# %%
MODEL = "tinyworld"          # the target p_θ: an embedded name, a local directory or a HF id
DRAFT = "tinyworld-draft"    # the draft q for speculative decoding (same tokenizer)
SEED = 0

# %%
import json
import math
import statistics
import time
from types import SimpleNamespace

import torch
import workbench as wb
from workbench import decoding
from workbench import efficiency as eff
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld.corpus import document
from widgets import checks
from widgets import kv_cache as kv_views
from widgets import speculative as spec_views

wb.seed_everything(SEED)
lm, draft = wb.load(MODEL), wb.load(DRAFT)
for m in (lm, draft):
    eff.use_growing_cache(m)   # KV caches that append in place: same results, less copying
cfg = lm.model.config
print(lm)
print(draft)
bench = json.loads((data_dir() / "results" / "efficiency.json").read_text())

# %% [markdown]
# ## What "faster" means (§7.1)
#
# Three quantities pull against each other: **latency** (time to produce one output),
# **throughput** (outputs per second across many requests) and **quality**. Batching raises
# throughput but not the latency of a single request; int8 weights can raise both while costing
# some quality; speculative decoding lowers latency without changing the output distribution at
# all. And all of it depends on the hardware: a GPU, and this CPU too, can do far more
# arithmetic per second than it can move bytes from memory.
#
# ## Prefill, then decode (eqs. 55–56)
#
# A **prefill** pass over the prompt x returns the next-token distribution *and* a state S, the
# keys and values of every attention layer (eq. 55). Each **decoding** step feeds one new token
# together with S, and appends that token's keys and values to S (eq. 56). Without the state
# every step re-runs the whole sequence: step t computes |x| + t positions instead of one.

# %%
prompt = "Story:"
T = 128
with_cache = eff.timed_greedy(lm, prompt, T)
no_cache = eff.timed_greedy(lm, prompt, T, use_cache=False)
P = len(lm.encode(prompt))
print("same tokens with and without the cache:", with_cache.token_ids == no_cache.token_ids)
print(f"with the KV cache: {with_cache.cost.forward_passes} passes, "
      f"{with_cache.cost.computed_tokens} positions computed (P + T - 1 = {P + T - 1})")
print(f"recomputing      : {no_cache.cost.forward_passes} passes, "
      f"{no_cache.cost.computed_tokens} positions computed (sum over t of P + t = "
      f"{sum(P + t for t in range(T))})")
tl, tr = with_cache.info["timeline"], no_cache.info["timeline"]
print(f"prefill {1000 * tl[0]['seconds']:.1f} ms; median decoding step "
      f"{1000 * statistics.median(e['seconds'] for e in tl[1:]):.2f} ms; last recomputing step "
      f"{1000 * statistics.median(e['seconds'] for e in tr[-8:]):.2f} ms")

# %% [markdown]
# Step through the generation: the grid is the cache after each forward pass (one row per
# layer, one cell per cached position; grey cells were written by the prefill, blue ones by
# decoding steps, the red one just now). Below, milliseconds per forward pass: with the cache
# the steps stay flat; recomputing, they grow with the sequence.

# %%
kv_views.KVCacheView(with_cache, no_cache, lm.tokenizer)

# %% [markdown]
# ## How big is the cache?
#
# Every layer keeps a key and a value vector per KV head for every position of every sequence:
#
# bytes = 2 (K and V) × layers × KV heads × head dim × bytes per number × tokens × batch.
#
# Check the formula against the bytes a real batch holds (two prompts, three continuations
# each, left-padded to the longer prompt):

# %%
state = lm.prefill(["Story: The cat", "Q: 12+7*3-5\n"], n=3)
width = state.mask.shape[1]
dtype_bytes = lm.model.dtype.itemsize
formula = eff.kv_cache_bytes(cfg, width, batch=6, dtype_bytes=dtype_bytes)
print(f"{cfg.num_hidden_layers} layers x {eff.kv.kv_heads(cfg)} KV heads x "
      f"{eff.kv.head_dim(cfg)} dims x 2 x {dtype_bytes} bytes = "
      f"{eff.kv_cache_bytes(cfg, 1, dtype_bytes=dtype_bytes)} bytes per token")
print(f"6 rows x {width} positions: formula {formula} bytes, measured {state.cache_bytes()} bytes")
last = with_cache.info["timeline"][-1]
print(f"the greedy run above ends with {last['cache_tokens']} positions = "
      f"{last['cache_bytes'] / 2**20:.2f} MiB")

# %% [markdown]
# TinyWorld's cache is tiny. The same formula for Llama-2-7B (32 layers, 32 heads of 128 dims,
# 16-bit numbers) gives half a mebibyte **per token**: a 4096-token sequence holds 2 GiB, and a
# batch of seven such sequences holds more bytes of cache than the 12.6 GiB of weights.

# %%
llama_per_token = eff.kv_cache_bytes(eff.LLAMA2_7B, 1, dtype_bytes=2)
llama_weights = 2 * (eff.parameter_count(eff.LLAMA2_7B)["matmul"]
                     + eff.parameter_count(eff.LLAMA2_7B)["embedding"])
print(f"Llama-2-7B: {llama_per_token / 2**20:.2f} MiB per token, "
      f"{eff.kv_cache_bytes(eff.LLAMA2_7B, 4096, dtype_bytes=2) / 2**30:.1f} GiB for 4096 tokens;"
      f" weights {llama_weights / 2**30:.1f} GiB")
print("sequences of 4096 tokens whose cache outweighs the weights:",
      next(b for b in range(1, 100)
           if eff.kv_cache_bytes(eff.LLAMA2_7B, 4096, b, dtype_bytes=2) > llama_weights))

# %% [markdown]
# ## Fewer KV heads: MHA, GQA, MQA (§7.2, "Architectural modifications")
#
# Multi-head attention (MHA) gives every query head its own keys and values. **Grouped-query
# attention** (GQA; Ainslie et al., 2023) lets a group of query heads share one KV head;
# **multi-query attention** (MQA; Shazeer, 2019) keeps a single KV head. The cache shrinks by
# heads / KV heads, so more sequences fit in memory and each decoding step reads fewer bytes.
#
# `eff.with_kv_heads` converts our trained MHA model by mean-pooling the key and value
# projections of each group, the conversion Ainslie et al. start from before *uptraining*. We
# did not uptrain, so the converted models drift from the original:

# %%
texts = [document(3, i) for i in range(8)]
for g in (8, 4, 2, 1):
    variant = eff.with_kv_heads(lm, g)
    gen = eff.timed_greedy(variant, prompt, 32)
    agree = eff.agreement(lm, variant, texts)
    print(f"{g} KV heads: {gen.info['timeline'][-1]['cache_bytes']:6d} bytes of cache for "
          f"{gen.info['timeline'][-1]['cache_tokens']} positions; next-token argmax agrees with "
          f"the original at {agree['agreement']:.3f} of positions")
kv_views.cache_sizes_figure(eff.attention_variants(lm, tokens=1024))

# %% [markdown]
# This is why GQA and MQA are chosen **before** training (or followed by uptraining): the
# memory saving is exact, the quality has to be earned.
#
# ## Arithmetic intensity and the roofline (§7.1, eqs. 53–54)
#
# An operation does F floating-point operations and moves B bytes between memory and the chip;
# its **arithmetic intensity** is F / B. A matrix product A = BC of n × n matrices (eq. 53) does
# 2n³ FLOP on 3n² numbers; an elementwise ReLU (eq. 54) does one operation per number read and
# written. On hardware with peak compute P and memory bandwidth W, an operation takes at least
# max(F / P, B / W): below the **ridge point** P / W it is **memory-bound**, above it
# **compute-bound**.
#
# The survey's H100 figures: 989.4 TFLOP/s of dense BF16 matrix multiplication on Tensor Cores,
# but only 133.8 TFLOP/s for BF16 arithmetic that cannot use them; with 3.35 TB/s of memory
# bandwidth (the H100 SXM datasheet; the survey does not quote it) the ridge points are:

# %%
n = 4096
matmul = 2 * n ** 3 / (3 * n * n * 2)      # FLOP per byte, 16-bit numbers
relu = (n * n) / (2 * n * n * 2)
print(f"A = BC, n = {n} (eq. 53): {matmul:.0f} FLOP/byte;  ReLU (eq. 54): {relu} FLOP/byte")
for hw in (eff.H100, eff.H100_NO_TENSOR_CORES):
    print(f"{hw.name}: ridge at {hw.ridge:.0f} FLOP/byte")

# %% [markdown]
# A forward pass of a decoder is mostly matrix products whose size depends on how many tokens
# go through it at once. Decoding one token reads every weight (2 bytes) to do 2 FLOP with it:
# intensity ≈ 1. A prefill of 512 tokens reuses each weight 512 times. Here are the standard
# cases for Llama-2-7B on an H100 (`eff.roofline_table`; times are lower bounds):

# %%
table = eff.roofline_table(eff.LLAMA2_7B, eff.H100)
print(f"{'case':22s} {'FLOP/byte':>10s} {'bound':>8s} {'time':>10s} {'tokens/s':>10s} "
      f"{'Tensor Core use':>16s}")
for r in table:
    print(f"{r['case']:22s} {r['intensity']:10.1f} {r['bound']:>8s} "
          f"{1000 * r['seconds']:7.2f} ms {r['tokens_per_second']:10.0f} "
          f"{100 * r['utilisation']:15.1f}%")
kv_views.roofline_figure([eff.H100, eff.H100_NO_TENSOR_CORES], table,
                         extra=[("A = BC (eq. 53)", matmul), ("ReLU (eq. 54)", relu)],
                         title="Roofline of an H100 (BF16) with Llama-2-7B forward passes")

# %% [markdown]
# Three lessons from the table:
# - **Decoding at batch 1 uses a third of a percent of the Tensor Cores.** The time is spent
#   reading 13 GB of weights for every token.
# - **Verifying 5 tokens costs the same as decoding 1**: the weights are read once either way.
#   This is what speculative decoding exploits (below).
# - **Batching** raises intensity, but each sequence also reads its own KV cache, which no other
#   sequence shares: at 512 tokens of context, Llama-2-7B's decoding never reaches the ridge,
#   whatever the batch (exercise 3 asks when MQA gets there).
#
# The same effect, measured on this CPU: a prefill pass over a long prompt costs much less **per
# token** than a decoding step. (Figures hold the timings; they vary from run to run.)

# %%
long_prompt = lm.encode(" ".join(texts))[:256]
prefill_s, decode_s = [], []
for _ in range(3):
    start = time.perf_counter()
    st = lm.prefill(long_prompt)
    prefill_s.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(16):
        lm.advance(st, st.logits.argmax(-1))
    decode_s.append((time.perf_counter() - start) / 16)
cpu = eff.measure_cpu(seconds=0.3)
per_token = {f"prefill of {len(long_prompt)} tokens, per token": 1000 * min(prefill_s) / len(long_prompt),
             "decoding step (1 token)": 1000 * min(decode_s)}
print(f"prefill {1000 * min(prefill_s):.1f} ms for {len(long_prompt)} tokens; "
      f"decoding {1000 * min(decode_s):.2f} ms per token")
kv_views.timings_figure(per_token, title=f"ms per token on this CPU (measured: "
                        f"{cpu.flops / 1e9:.0f} GFLOP/s, {cpu.bandwidth / 1e9:.0f} GB/s)")

# %% [markdown]
# ## Implementation choices: int8 weights and the attention kernel (§7.2)
#
# **Quantisation** stores weights in fewer bits (here int8 with one scale per tensor, via
# PyTorch's dynamic quantisation), so a memory-bound step reads fewer bytes, at some cost in
# fidelity. **Hardware-aware implementations** compute the *same* function differently:
# PyTorch's fused scaled-dot-product attention (SDPA, a FlashAttention-style kernel) against
# the eager softmax(QKᵀ/√d)V. The first changes the outputs a little; the second only up to
# rounding:

# %%
eager = eff.with_attention(lm, "eager")
same = eff.agreement(lm, eager, texts[:3])
print(f"eager vs SDPA: argmax agrees at every position: {same['agreement'] == 1.0}; "
      f"largest logit difference below 1e-4: {same['max_logit_diff'] < 1e-4}")
timings = {"fp32, SDPA": eff.ms_per_token(lm, long_prompt, tokens=32),
           "fp32, eager": eff.ms_per_token(eager, long_prompt, tokens=32)}
if lm.device.type == "cpu":   # PyTorch's dynamic int8 quantisation runs on the CPU
    q8 = eff.quantize_int8(lm)
    close = eff.agreement(lm, q8, texts)
    print(f"int8 weights: {eff.weight_bytes(lm) / 2**20:.1f} MiB -> "
          f"{eff.weight_bytes(q8) / 2**20:.1f} MiB; argmax agrees at "
          f"{close['agreement']:.3f} of positions, mean KL {close['kl']:.3f} nats")
    timings["int8, SDPA"] = eff.ms_per_token(q8, long_prompt, tokens=32)
kv_views.timings_figure(timings, title=f"ms per decoding step after {len(long_prompt)} tokens")

# %% [markdown]
# On a model this small, per-step overheads (Python, kernel launches) weigh as much as reading
# the weights, so neither choice is guaranteed to win here; the stored benchmark below records
# what they did on the reference machine. On a GPU serving a 7B model, int8 weights halve the
# bytes a 16-bit decoding step reads, and fused attention kernels are what make long contexts
# affordable.
#
# ## Batching
#
# A decoding step reads all the weights whatever the batch, so decoding B sequences together
# costs little more than decoding one, until compute becomes the limit:

# %%
rows = eff.throughput(lm, "Story:", batch_sizes=(1, 4, 16, 64), max_new_tokens=32, seed=SEED)
print("batch sizes:", [r["batch"] for r in rows], "| tokens per batch:",
      [r["tokens"] for r in rows])
kv_views.throughput_figure(rows)

# %% [markdown]
# Batching improves **throughput**; the **latency** of each sequence stays that of the slowest
# step. Chapter 13 builds on it: meta-generators make many calls, which can be batched and can
# share their prefixes.
#
# ## Speculative decoding: draft, then verify (§7.2, "Parallelization across time")
#
# A cheap **draft** q proposes k tokens d₁ … d_k. The target p_θ scores all k + 1 positions in
# **one** forward pass (as cheap as one decoding step, by the roofline above). Then:
# - keep d_i with probability **min(1, p(d_i) / q(d_i))**: always when q(d_i) ≤ p(d_i), and
#   with probability p/q otherwise (equivalently, a token with q > p is *rejected* with
#   probability 1 − p/q — read the survey's sentence with this in mind);
# - at the first rejection, draw the next token from norm(max(p − q, 0)) and stop the round;
# - if all k are kept, draw a **bonus** token from p at position k + 1.
#
# Every round emits between 1 and k + 1 tokens, and the output follows p_θ **exactly** (Leviathan
# et al., 2023; Chen et al., 2023). If each draft token is accepted with probability α
# independently, a round yields (1 − α^{k+1}) / (1 − α) tokens on average, and with c the cost
# of a draft step relative to a target step the speedup is
# (1 − α^{k+1}) / ((1 − α)(k c + 1)).
#
# First, exactness on a toy vocabulary of five tokens: draft from q, verify against p, count
# what comes out.

# %%
p = torch.tensor([0.45, 0.25, 0.15, 0.10, 0.05])
q = torch.tensor([0.20, 0.40, 0.10, 0.25, 0.05])
gen = wb.make_generator(SEED)
counts, kept, N = torch.zeros(5), 0, 10_000
for _ in range(N):
    d = int(torch.multinomial(q, 1, generator=gen))
    step = eff.speculative_sampling_step(torch.stack([p, p]), q.view(1, -1), [d], gen)
    counts[step.tokens[0]] += 1
    kept += step.n_accepted
empirical = counts / N
print(f"acceptance rate {kept / N:.3f}; theory: sum of min(p, q) = {torch.minimum(p, q).sum():.3f}")
print("first emitted token follows p (every frequency within 0.015):",
      bool((empirical - p).abs().max() < 0.015))
kv_views.grouped_bars_figure(
    [{"name": f"token {i}", "target p": float(p[i]), "draft q": float(q[i]),
      "emitted (measured)": float(empirical[i])} for i in range(5)],
    title="Draft from q, verify against p: the output follows p", yaxis="probability")

# %% [markdown]
# Now the embedded pair: the target (6 layers) and its draft (2 layers, a quarter of the width)
# share the tokenizer. With `greedy=True`, verification keeps a draft token when it is the
# target's argmax, so the output is **exactly** the target's greedy output, in fewer target
# passes:

# %%
problem = ar.Problem("38+17*3-29+6*4")
task = problem.prompt()
reference = decoding.greedy(lm, task, max_new_tokens=96)
fast = eff.speculative_decode(lm, draft, task, k=4, greedy=True, max_new_tokens=96)
print(task + reference.text)
print("\nsame tokens as the target's greedy decoding:", fast.token_ids == reference.token_ids)
print(f"target passes: {reference.cost.forward_passes} alone, "
      f"{fast.info['target_cost'].forward_passes} with the draft "
      f"(+ {fast.info['draft_cost'].forward_passes} draft passes); "
      f"{fast.info['accepted']} of {fast.info['drafted']} drafted tokens kept")

# %% [markdown]
# Sampling at temperature 1, on a story. Each row of the widget is a round: green drafts were
# kept, red was rejected (grey ones after it were never checked), and the last column is the
# target's own token (resampled after a rejection, or the bonus). The histogram compares the
# number of tokens kept per round with the i.i.d. closed form αⁿ(1 − α).

# %%
with wb.trace() as t:
    story = eff.speculative_decode(lm, draft, "Story:", k=4, max_new_tokens=96, seed=SEED)
info = story.info
print(repr(story.text[:150]))
print(f"alpha = {info['acceptance_rate']:.3f} (mean of sum(min(p, q)) over checked positions: "
      f"{info['mean_beta']:.3f})")
print(f"tokens per round: measured {info['tokens_per_round']:.2f}, closed form at this alpha "
      f"{info['expected_tokens_per_round']:.2f}")
print("events:", sorted({e["kind"] for e in t.events}))
c = bench["draft_ms"] / bench["target_ms"]
spec_views.SpeculativeView(story, lm.tokenizer, sweep=bench["speculative_sampled"], c=c)

# %% [markdown]
# ### Prompt lookup: drafting by copying
#
# The draft need not be a model. **Prompt lookup decoding** (Yang et al., 2023) finds the last
# few generated tokens earlier in the prompt or output and proposes what followed them there.
# TinyWorld's worked arithmetic copies most of each line from the line before, so copying is a
# good guess; it costs no forward pass, only a dictionary look-up.

# %%
lookup = eff.prompt_lookup_decode(lm, task, k=8, greedy=True, max_new_tokens=96)
print("same tokens as greedy decoding:", lookup.token_ids == reference.token_ids)
print(f"target passes: {reference.cost.forward_passes} alone, "
      f"{lookup.cost.forward_passes} with prompt lookup; "
      f"{lookup.info['accepted']} of {lookup.info['drafted']} copied tokens kept")
spec_views.rounds_figure(lookup, lm.tokenizer, rounds=12)

# %% [markdown]
# ### Measured: does fewer passes mean less time?
#
# Time the three ways of producing the same greedy tokens, several times each (the figure shows
# the best run of each; timings vary from run to run):

# %%
def best_ms_per_token(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - start) / len(out.token_ids))
    return 1000 * best

live = {"target alone": best_ms_per_token(lambda: decoding.greedy(lm, task, max_new_tokens=96)),
        "draft + target (k=4)": best_ms_per_token(lambda: eff.speculative_decode(
            lm, draft, task, k=4, greedy=True, max_new_tokens=96)),
        "prompt lookup (k=8)": best_ms_per_token(lambda: eff.prompt_lookup_decode(
            lm, task, k=8, greedy=True, max_new_tokens=96))}
kv_views.timings_figure(live, title="ms per generated token, same output")

# %% [markdown]
# Speculative decoding does **more** arithmetic in total (the draft's passes, and target
# positions that get rejected) and still saves time, because each target pass is memory- and
# overhead-bound: checking k + 1 tokens costs about what one costs.
#
# ## The claims, measured by the benchmark
#
# `scripts/bench_efficiency.py` makes the long measurements on a quiet machine (one thread) and
# stores them; every ratio compares runs made in the same process.

# %%
kv = bench["kv"]
spec = max(bench["speculative_sampled"], key=lambda r: r["speedup"])
greedy_spec = max(bench["speculative_greedy"], key=lambda r: r["speedup"])
claims = [
    (f"KV cache vs recomputing, {kv['tokens']} tokens", kv["speedup"], 5.0),
    (f"speculative sampling with the draft, k={spec['k']}", spec["speedup"], 1.5),
    (f"speculative greedy with the draft, k={greedy_spec['k']}", greedy_spec["speedup"], 1.5),
    ("prompt lookup on worked arithmetic (k=8)", bench["prompt_lookup"]["speedup"], 1.5),
    ("int8 vs fp32, decoding step", bench["kernels"]["fp32_ms"] / bench["kernels"]["int8_ms"],
     None),
    ("SDPA vs eager attention, decoding step",
     bench["kernels"]["eager_ms"] / bench["kernels"]["sdpa_ms"], None)]
print(f"models: {bench['target']} + {bench['draft']}, {bench['threads']} thread(s)")
for name, ratio, need in claims:
    print(f"{name:48s} {ratio:5.2f}x" + (f"  (target {need}x)" if need else ""))
print(f"acceptance rate at k={spec['k']}: {spec['alpha']:.2f}; draft/target cost c = {c:.2f}")
kv_views.ratios_figure(claims)

# %% [markdown]
# The speedup against k, beside the closed form at each measured α: tokens per target pass
# grow with k, but each extra draft step costs c, so the speedup peaks at a moderate k.

# %%
spec_views.speedup_figure(bench["speculative_sampled"], c=c)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank).
#
# **Exercise 1.** How many GiB (2³⁰ bytes) of KV cache does Llama-2-7B (`eff.LLAMA2_7B`:
# layers, heads and head size are in it; 16-bit numbers, MHA) hold for one sequence of 4096
# tokens? Work it out from the formula above and store it in `llama_cache_gib`.

# %% tags=["solution"]
### BEGIN SOLUTION
llama_cache_gib = 2 * 32 * 32 * 128 * 2 * 4096 / 2**30   # K and V x layers x heads x dim x bytes
### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    checks.answered(llama_cache_gib=llama_cache_gib)
    gib = eff.kv_cache_bytes(eff.LLAMA2_7B, 4096, dtype_bytes=2) / 2**30
    for wrong, why in ((gib / 2, "counts only the keys or only the values: the cache holds both"),
                       (gib * 2, "uses 4 bytes a number; 16-bit numbers are 2 bytes"),
                       (gib * 2**30 / 1e9, "is in GB (10⁹ bytes); a GiB is 2³⁰ bytes")):
        checks.expect(not math.isclose(float(llama_cache_gib), wrong, rel_tol=1e-9),
                      f"llama_cache_gib = {llama_cache_gib} {why}.")
    checks.close("llama_cache_gib", llama_cache_gib, gib, "2 (K and V) × layers × KV heads × "
                 "head dim × bytes per number × tokens, in units of 2³⁰ bytes.")
print(f"Llama-2-7B holds {llama_cache_gib:.1f} GiB of KV cache for one sequence of 4096 tokens.")

# %% [markdown]
# **Exercise 2.** With acceptance rate α = 0.8, what is the expected number of tokens per round
# at k = 4? Store it in `tokens_per_round`. With a draft costing c = 0.1 of the target per step,
# which k in 1 … 10 gives the largest speedup? Store it in `best_k`.

# %% tags=["solution"]
### BEGIN SOLUTION
tokens_per_round = (1 - 0.8 ** 5) / (1 - 0.8)
best_k = max(range(1, 11), key=lambda k: eff.expected_speedup(0.8, k, 0.1))
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(tokens_per_round=tokens_per_round, best_k=best_k)
    checks.expect(not math.isclose(float(tokens_per_round), (1 - 0.8 ** 4) / (1 - 0.8)),
                  f"tokens_per_round = {tokens_per_round} leaves out the bonus token: a round "
                  "emits up to k + 1 tokens.")
    checks.close("tokens_per_round", tokens_per_round, eff.expected_tokens_per_round(0.8, 4),
                 "the i-th draft token is emitted only if all i are accepted (probability α^i), "
                 "and every round emits one token of the target's own: 1 + α + … + α^k.")
    speedups = {k: eff.expected_speedup(0.8, k, 0.1) for k in range(1, 11)}
    checks.expect(best_k in speedups, f"best_k = {best_k!r} is not one of 1 … 10.")
    checks.expect(best_k != max(speedups, key=lambda k: eff.expected_tokens_per_round(0.8, k))
                  or speedups[best_k] == max(speedups.values()), f"best_k = {best_k} maximises "
                  "the tokens per round, but each draft step costs c: maximise tokens per round "
                  "/ (k c + 1).")
    checks.expect(speedups[best_k] == max(speedups.values()), f"best_k = {best_k} does not give "
                  "the largest speedup (1 − α^(k+1)) / ((1 − α)(k c + 1)) over k = 1 … 10.")
print(f"{tokens_per_round:.2f} tokens per round at k = 4; the best k is {best_k}.")

# %% [markdown] tags=["solution"]
# *Think about it:* the closed form assumes every draft token is accepted independently with
# the same α. Why does a real draft break that assumption, and in which direction can it move
# the speedup?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* Acceptance depends on the context: formulaic or copied spans (the prompt
# lookup task above) are accepted almost always, hard choices rarely, and acceptances within a
# round are correlated (a draft that has gone off track stays off). Since 1 + α + … + α^k is
# convex in α, rounds that alternate between easy and hard text yield *more* tokens on average
# than the closed form at their mean α; the speedup also depends on where the rejections
# fall, which one number cannot say. So the closed form is a model to compare measurements
# with (as the benchmark above does), not a prediction, and context-dependent acceptance is
# why adaptive draft lengths are used.
# <!-- END SOLUTION -->

# %% [markdown]
# **Exercise 3.** Give Llama-2-7B a single KV head (MQA). What is the smallest batch at which
# decoding with 512 tokens of context becomes compute-bound on the H100 (`eff.roofline`)? Store
# it in `mqa_batch`.

# %% tags=["solution"]
### BEGIN SOLUTION
mqa = SimpleNamespace(**vars(eff.LLAMA2_7B))
mqa.num_key_value_heads = 1
mqa_batch = next(b for b in range(1, 10_000)
                 if eff.roofline(mqa, eff.H100, batch=b, context=512)["bound"] == "compute")
### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    checks.answered(mqa_batch=mqa_batch)
    one_head = SimpleNamespace(**{**vars(eff.LLAMA2_7B), "num_key_value_heads": 1})
    bound = lambda b: eff.roofline(one_head, eff.H100, batch=int(b), context=512)["bound"]
    checks.expect(float(mqa_batch).is_integer() and mqa_batch >= 1,
                  f"mqa_batch = {mqa_batch!r} should be a batch size, an integer ≥ 1.")
    checks.expect(bound(mqa_batch) == "compute", f"at batch {mqa_batch}, decoding with one KV "
                  "head is still memory-bound: a copy of eff.LLAMA2_7B with num_key_value_heads "
                  "= 1, into eff.roofline(..., batch=b, context=512), for growing b.")
    checks.expect(mqa_batch == 1 or bound(mqa_batch - 1) == "memory", f"mqa_batch = {mqa_batch} "
                  "is compute-bound, but so is a smaller batch: find the smallest.")
print(f"With one KV head, decoding is compute-bound from batch {mqa_batch} on.")

# %% [markdown]
# **Exercise 4** (implement it). At one position, the draft proposes d ~ q and speculative
# sampling keeps it with probability min(1, p(d)/q(d)); otherwise it draws the token from the
# residual norm(max(p − q, 0)). Write `accept_prob(p, q)`, the vector of keep probabilities of
# every token, and `residual(p, q)`, the distribution drawn from after a rejection (p and q:
# probability vectors over the vocabulary). The check compares `accept_prob` with the
# package's (`SpecStep.accept_probs`) and verifies with your `residual` that the emitted token
# follows p exactly: P(emit y) = q(y)·a(y) + (1 − Σ_z q(z)·a(z))·r(y) = p(y).

# %% tags=["solution"]
def accept_prob(p, q):
    """Probability of keeping each token, were the draft to propose it."""
    ### BEGIN SOLUTION
    return torch.clamp(p / q, max=1.0)
    ### END SOLUTION


def residual(p, q):
    """The distribution a rejected position is resampled from."""
    ### BEGIN SOLUTION
    r = (p - q).clamp_min(0)
    return r / r.sum()
    ### END SOLUTION

# %% tags=["check"]
with checks.exercise(4):
    gen = torch.Generator().manual_seed(SEED)
    pairs = [(torch.tensor([0.45, 0.25, 0.15, 0.10, 0.05]),     # the toy pair above
              torch.tensor([0.20, 0.40, 0.10, 0.25, 0.05]))] + [
        tuple(x / x.sum() for x in torch.rand(2, 12, generator=gen) + 0.01) for _ in range(3)]
    for pp, qq in pairs:
        a = accept_prob(pp.clone(), qq.clone())
        ids = list(range(len(pp)))
        ref = eff.SpecStep([], 0, "", pp[ids].tolist(), qq[ids].tolist()).accept_probs
        bad = [i for i in ids if not math.isclose(float(a[i]), ref[i], abs_tol=1e-6)]
        checks.expect(not [i for i in bad if qq[i] <= pp[i]], "accept_prob: a token the draft "
                      "proposes no more often than the target wants (q ≤ p) is always kept.")
        checks.expect(not bad, "accept_prob: a token the draft proposes too often (q > p) is "
                      "kept with probability p/q, so that q·a = min(p, q).")
        r = residual(pp.clone(), qq.clone())
        checks.expect(bool((r >= 0).all()) and math.isclose(float(r.sum()), 1, abs_tol=1e-6),
                      "residual should return a probability distribution (non-negative, sum 1).")
        kept = qq * a
        emitted = kept + (1 - kept.sum()) * r
        checks.expect(torch.allclose(emitted, pp, atol=1e-6), "with your residual the emitted "
                      "token does not follow p: after a rejection, the draw has to put back "
                      "exactly the mass acceptance left missing, p − min(p, q), normalised.")
