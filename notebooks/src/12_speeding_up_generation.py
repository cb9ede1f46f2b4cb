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
#   trained model without retraining costs in fidelity;
# - **arithmetic intensity** and the **roofline** (§7.1, eqs. 53–54) with the survey's H100
#   figures: why decoding a token is memory-bound and a prefill compute-bound;
# - two choices that change speed but (almost) not outputs: **int8 weights** and the
#   **attention kernel** (PyTorch's fused SDPA vs the eager softmax(QKᵀ/√d)V);
# - **batching**: more tokens per second from the same memory-bound steps;
# - **speculative decoding** (draft-then-verify): the acceptance rule and why the output follows
#   the target exactly (and the survey's misprinted rejection probability), how many tokens a
#   round yields (closed form vs measured, with intervals), **prompt-lookup** drafting on a task
#   that copies its input, and why the measured speedup falls short of the closed form;
# - how to read timings measured on a shared machine: ratios, repeats, and margins.
#
# **Survey sections**: §7 (introduction), §7.1 (latency, throughput, hardware), §7.2 (speeding
# up the generator), equations 53–56. **Prerequisites**: chapter 01 (next-token distributions,
# softmax, ancestral sampling), chapter 02 (greedy decoding); what attention computes,
# softmax(QKᵀ/√d)V; basic PyTorch. **Student time**: 90–100 minutes for everything (reading,
# the two widgets, four exercises); see the 45-minute path below. Runs in about a minute on an
# idle 2-core CPU (longer when other programs share it); the long measurements come from
# `scripts/bench_efficiency.py` (stored in `data/results/efficiency.json`; a test re-runs a
# slice of it).
#
# > **If you have 45 minutes.** Do "Prefill, then decode", "How big is the cache?", the
# > roofline table and its three lessons, and "Speculative decoding" up to the embedded pair's
# > runs (the toy exactness test, greedy and sampled drafts); then exercises 2 and 4. Skip
# > "Fewer KV heads", "Implementation choices", "Batching" (chapter 13 returns to it), prompt
# > lookup, the timing sections and exercises 1 and 3. Run every cell anyway: later cells use
# > earlier results.

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

import scipy.stats
import torch
import workbench as wb
from workbench import decoding, stats
from workbench import efficiency as eff
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld.corpus import document
from workbench.tinyworld.tasks import load_tasks
from widgets import checks
from widgets import kv_cache as kv_views
from widgets import speculative as spec_views
from widgets.source import show_source

wb.seed_everything(SEED)
torch.set_num_threads(1)   # time on one thread, as the benchmark does (see "Timing" below)
lm, draft = wb.load(MODEL), wb.load(DRAFT)
for m in (lm, draft):
    eff.use_growing_cache(m)   # KV caches that append in place: same results, less copying
cfg = lm.model.config
EMBEDDED = (MODEL, DRAFT) == ("tinyworld", "tinyworld-draft")   # claims about these two models
print(lm)
print(draft)
bench = json.loads((data_dir() / "results" / "efficiency.json").read_text())


def interval(k, n):
    """k successes out of n, with the 95 % Wilson interval (workbench.stats.accuracy)."""
    return stats.accuracy([1] * k + [0] * (n - k))

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
# **Timing on a shared machine.** Every timing in this chapter is one draw from a noisy
# process: other programs on the machine, caches, clock frequency. Three habits make such
# numbers honest: compare **ratios** of runs made in the same process (interleaved, so that a
# busy moment hits both), **repeat** and report the median with the spread, and claim only a
# **margin** well inside what a quiet machine measures. Printed milliseconds change from run to
# run (the notebook tests replace them by `TIME` before comparing outputs), so the ratios are
# drawn in figures, and the claim cells assert the margins. The chapter runs PyTorch on **one
# thread**, as the benchmark does: with two threads on a machine that other programs keep busy,
# a 5M-parameter model's decoding step can spend most of its time waiting for its second thread
# rather than computing, which makes small and large operations cost alike and hides the
# effects this chapter measures.
#
# ## Prefill, then decode (eqs. 55–56)
#
# A **prefill** pass over the input $(y_{<t}, x)$ returns the next-token distribution *and* a
# state $S_{y_{<t},x}$, the keys and values of every attention layer (the KV cache):
#
# $$p_\theta(\cdot \mid y_{<t}, x) = \operatorname{softmax}\big(s_\theta(\cdot \mid y_{<t}, x)\big) \quad (55)$$
#
# Each **decoding** step feeds one new token together with the state, and appends that token's
# keys and values to it:
#
# $$p_\theta(\cdot \mid y_{<t+1}, x, S_{y_{\le t},x}) = \operatorname{softmax}\big(s_\theta(\cdot \mid y_{<t+1}, x, S_{y_{\le t},x})\big) \quad (56)$$
#
# Count the positions the model computes to produce T tokens after a prompt of P tokens. With
# the state, the prefill computes P and each of the T − 1 later steps one (the T-th token is
# chosen but never fed back). Without it, step t re-runs all P + t positions:
#
# $$C_{\text{cache}} = P + T - 1, \qquad C_{\text{recompute}} = \sum_{t=0}^{T-1} (P + t) = TP + \frac{T(T-1)}{2}.$$
#
# *Look inside*: the package's prefill (eq. 55, it returns the logits **and** the state) and
# decoding step (eq. 56, one token in, the state extended in place):

# %%
show_source(wb.LanguageModel.prefill, wb.LanguageModel.advance)

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
      f"{no_cache.cost.computed_tokens} positions computed (TP + T(T-1)/2 = "
      f"{T * P + T * (T - 1) // 2})")
tl, tr = with_cache.info["timeline"], no_cache.info["timeline"]
decode_s = statistics.median(e["seconds"] for e in tl[1:])
recompute_s = statistics.median(e["seconds"] for e in tr[-8:])
print(f"prefill {1000 * tl[0]['seconds']:.1f} ms; median decoding step {1000 * decode_s:.2f} ms; "
      f"median of the last 8 recomputing steps {1000 * recompute_s:.2f} ms")

# %% [markdown]
# The claims of this section: the same tokens either way, exactly the position counts above,
# and the last recomputing steps (over ~130 positions each) take at least **1.5 times** as long
# as a cached step. Each is the median over many steps of the same run, so a busy moment on the
# machine does not decide it; the benchmark at the end measures the whole 512-token generation
# on a quiet machine.

# %% tags=["claim"]
assert with_cache.token_ids == no_cache.token_ids
assert with_cache.cost.computed_tokens == P + T - 1
assert no_cache.cost.computed_tokens == T * P + T * (T - 1) // 2
if EMBEDDED:
    assert recompute_s > 1.5 * decode_s, (recompute_s, decode_s)
print("The claims hold.")

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
# Every layer keeps a key and a value vector per KV head for every position of every sequence.
# With L layers, $H_{kv}$ KV heads of $d_{\text{head}}$ dimensions, b bytes per number, n
# positions and B sequences:
#
# $$M_{\text{KV}} = 2 \cdot L \cdot H_{kv} \cdot d_{\text{head}} \cdot b \cdot n \cdot B \quad\text{bytes (2: keys and values).}$$
#
# *Look inside*:

# %%
show_source(eff.kv_cache_bytes)

# %% [markdown]
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
outweigh = next(b for b in range(1, 100)
                if eff.kv_cache_bytes(eff.LLAMA2_7B, 4096, b, dtype_bytes=2) > llama_weights)
print(f"Llama-2-7B: {llama_per_token / 2**20:.2f} MiB per token, "
      f"{eff.kv_cache_bytes(eff.LLAMA2_7B, 4096, dtype_bytes=2) / 2**30:.1f} GiB for 4096 tokens;"
      f" weights {llama_weights / 2**30:.1f} GiB")
print("sequences of 4096 tokens whose cache outweighs the weights:", outweigh)

# %% tags=["claim"]
assert state.cache_bytes() == formula
assert last["cache_bytes"] == eff.kv_cache_bytes(cfg, last["cache_tokens"], dtype_bytes=dtype_bytes)
assert llama_per_token == 2**19                                   # half a MiB per token
assert eff.kv_cache_bytes(eff.LLAMA2_7B, 4096, dtype_bytes=2) == 2 * 2**30
assert round(llama_weights / 2**30, 1) == 12.6 and outweigh == 7
print("The claims hold.")

# %% [markdown]
# ## Fewer KV heads: MHA, GQA, MQA (§7.2, "Architectural modifications")
#
# Multi-head attention (MHA) gives every query head its own keys and values. **Grouped-query
# attention** (GQA; Ainslie et al., 2023) lets a group of query heads share one KV head;
# **multi-query attention** (MQA; Shazeer, 2019) keeps a single KV head. With H query heads and
# $H_{kv}$ KV heads the cache shrinks by exactly $H / H_{kv}$, so more sequences fit in memory
# and each decoding step reads fewer bytes.
#
# `eff.with_kv_heads` converts our trained MHA model by mean-pooling the key and value
# projections of each group $G_g$ of $H / H_{kv}$ heads, the conversion Ainslie et al. start
# from before *uptraining*:
#
# $$W_K^{(g)} = \frac{1}{|G_g|} \sum_{h \in G_g} W_K^{(h)}, \qquad W_V^{(g)} = \frac{1}{|G_g|} \sum_{h \in G_g} W_V^{(h)}.$$
#
# *Look inside*:

# %%
show_source(eff.with_kv_heads)

# %% [markdown]
# We did not uptrain, so the converted models drift from the original. The agreement of the
# next-token argmax is counted over every position of eight documents, with a 95 % Wilson
# interval (positions of one document are not independent, so read the intervals as a little
# too narrow):

# %%
texts = [document(3, i) for i in range(8)]
variants = {}
for g in (8, 4, 2, 1):
    variant = eff.with_kv_heads(lm, g)
    gen = eff.timed_greedy(variant, prompt, 32)
    agree = eff.agreement(lm, variant, texts)
    n_pos = agree["positions"]
    variants[g] = {"bytes": gen.info["timeline"][-1]["cache_bytes"],
                   "agree": interval(round(agree["agreement"] * n_pos), n_pos)}
    print(f"{g} KV heads: {variants[g]['bytes']:6d} bytes of cache for "
          f"{gen.info['timeline'][-1]['cache_tokens']} positions; next-token argmax agrees with "
          f"the original at {variants[g]['agree']}")
kv_views.cache_sizes_figure(eff.attention_variants(lm, tokens=1024))

# %% [markdown]
# The claims: the cache shrinks exactly in proportion to the KV heads; keeping all 8 heads
# changes nothing; and every halving of the heads lowers the agreement, with intervals that do
# not overlap; with 4 KV heads the argmax already differs at about half of the positions
# (agreement below 0.6).

# %% tags=["claim"]
heads = eff.kv.kv_heads(cfg)
assert all(variants[g]["bytes"] * heads == variants[heads]["bytes"] * g for g in variants)
if EMBEDDED:
    assert variants[8]["agree"].rate == 1.0
    for more, fewer in ((8, 4), (4, 2), (2, 1)):
        assert variants[fewer]["agree"].high < variants[more]["agree"].low, (more, fewer)
    assert variants[4]["agree"].high < 0.6, variants[4]["agree"]
print("The claims hold.")

# %% [markdown]
# This is why GQA and MQA are chosen **before** training (or followed by uptraining): the
# memory saving is exact, the quality has to be earned.
#
# ## Arithmetic intensity and the roofline (§7.1, eqs. 53–54)
#
# An operation does F floating-point operations and moves D bytes between memory and the chip;
# its **arithmetic intensity** is I = F / D. On hardware with peak compute Π (FLOP/s) and memory
# bandwidth W (bytes/s), it takes at least
#
# $$t \ \ge\ \max\!\left(\frac{F}{\Pi},\ \frac{D}{W}\right), \qquad \text{memory-bound when } I = \frac{F}{D} < \frac{\Pi}{W} \text{ (the ridge point), compute-bound above it.}$$
#
# The survey's two examples, for n × n matrices of b-byte numbers:
#
# $$A = BC \quad (53)$$
#
# does $F = 2n^3$ on $D = 3n^2 b$ bytes (read B and C, write A): $I = 2n / (3b)$, which grows
# with n; and
#
# $$Y = \operatorname{ReLU}(X) \quad (54)$$
#
# does one operation per number read and written, $F = n^2$ on $D = 2n^2 b$: $I = 1 / (2b)$,
# whatever n. The survey's H100 figures: 989.4 TFLOP/s of dense BF16 matrix multiplication on
# Tensor Cores, but only 133.8 TFLOP/s for BF16 arithmetic that cannot use them; with 3.35 TB/s
# of memory bandwidth (the H100 SXM datasheet; the survey does not quote it) the ridge points
# are:

# %%
n = 4096
matmul = 2 * n ** 3 / (3 * n * n * 2)      # FLOP per byte, 16-bit numbers
relu = (n * n) / (2 * n * n * 2)
print(f"A = BC, n = {n} (eq. 53): {matmul:.0f} FLOP/byte;  ReLU (eq. 54): {relu} FLOP/byte")
for hw in (eff.H100, eff.H100_NO_TENSOR_CORES):
    print(f"{hw.name}: ridge at {hw.ridge:.0f} FLOP/byte")

# %% [markdown]
# A forward pass of a decoder is mostly matrix products whose size depends on how many tokens
# go through it at once. With $N_w$ weights of b bytes, B rows each feeding $t_{\text{new}}$
# tokens after c cached positions, `eff.forward_cost` counts
#
# $$F = 2 N_w B\, t_{\text{new}} + 4 L H d_{\text{head}} \cdot B \Big(t_{\text{new}}\, c + \frac{t_{\text{new}}(t_{\text{new}}+1)}{2}\Big), \qquad D = N_w b + m\, B\, (c + t_{\text{new}}),$$
#
# with $m = 2 L H_{kv} d_{\text{head}} b$ the cache bytes per position: the first term of F is
# 2 FLOP per weight per token, the second the attention scores and their use ($QK^\top$ and the
# product with V) over every query–key pair; every weight is read once, every cached key and
# value once (activations are small and left out). Decoding one token reads every
# weight (b = 2 bytes) to do 2 FLOP with it: I ≈ 1. A prefill of 512 tokens reuses each weight
# 512 times. *Look inside*:

# %%
show_source(eff.forward_cost, eff.roofline)

# %% [markdown]
# Here are the standard cases for Llama-2-7B on an H100 (`eff.roofline_table`; times are lower
# bounds):

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
#   reading 13.5 GB for every token: the 13.2 GB of weights its matrix products use, and the
#   512-token cache.
# - **Verifying 5 tokens costs the same as decoding 1** (within 0.1 %): the weights are read
#   once either way. This is what speculative decoding exploits (below).
# - **Batching** raises intensity, but each sequence also reads its own KV cache, which no other
#   sequence shares: at 512 tokens of context, Llama-2-7B's decoding never reaches the ridge,
#   whatever the batch (exercise 3 asks when MQA gets there).

# %% tags=["claim"]
decode1, decode64, verify5, prefill512 = table
assert round(matmul) == 1365 and relu == 0.25
assert round(eff.H100.ridge) == 295 and round(eff.H100_NO_TENSOR_CORES.ridge) == 40
assert 0.002 < decode1["utilisation"] < 0.005            # "a third of a percent"
assert 13.4e9 < decode1["bytes"] < 13.6e9
assert 13.1e9 < 2 * eff.parameter_count(eff.LLAMA2_7B)["matmul"] < 13.3e9
assert abs(verify5["seconds"] / decode1["seconds"] - 1) < 0.001
assert prefill512["bound"] == "compute" and decode1["bound"] == decode64["bound"] == "memory"
assert eff.roofline(eff.LLAMA2_7B, eff.H100, batch=10**6, context=512)["bound"] == "memory"
print("The claims hold.")

# %% [markdown]
# The same effect, measured on this CPU: a prefill pass over a long prompt costs much less **per
# token** than a decoding step. Three interleaved repeats; the claim pairs the *fastest*
# decoding step with the *slowest* prefill and still asks for a factor of 5:

# %%
long_prompt = lm.encode(" ".join(texts))[:256]
prefill_s, step_s = [], []
for _ in range(3):
    start = time.perf_counter()
    st = lm.prefill(long_prompt)
    prefill_s.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(16):
        lm.advance(st, st.logits.argmax(-1))
    step_s.append((time.perf_counter() - start) / 16)
cpu = eff.measure_cpu(seconds=0.3)
per_token = {f"prefill of {len(long_prompt)} tokens, per token": 1000 * min(prefill_s) / len(long_prompt),
             "decoding step (1 token)": 1000 * min(step_s)}
print(f"prefill {1000 * min(prefill_s):.1f} ms for {len(long_prompt)} tokens; "
      f"decoding {1000 * min(step_s):.2f} ms per token")
kv_views.timings_figure(per_token, title=f"ms per token on this CPU (measured: "
                        f"{cpu.flops / 1e9:.0f} GFLOP/s, {cpu.bandwidth / 1e9:.0f} GB/s)")

# %% tags=["claim"]
if EMBEDDED:
    assert min(step_s) > 5 * max(prefill_s) / len(long_prompt), (step_s, prefill_s)
print("The claim holds.")

# %% [markdown]
# ## Implementation choices: int8 weights and the attention kernel (§7.2)
#
# **Quantisation** stores weights in fewer bits, so a memory-bound step reads fewer bytes, at
# some cost in fidelity. Here: PyTorch's dynamic quantisation, int8 with one scale per weight
# matrix,
#
# $$\hat W = s \cdot \operatorname{clamp}\big(\operatorname{round}(W / s), -128, 127\big), \qquad s = \frac{\max_{ij} |W_{ij}|}{127.5},$$
#
# with activations quantised on the fly (the embeddings stay in 32 bits). **Hardware-aware
# implementations** compute the *same* function differently: PyTorch's fused
# scaled-dot-product attention (SDPA, a FlashAttention-style kernel) against the eager
# $\operatorname{softmax}(QK^\top/\sqrt{d})\,V$ (the survey's footnote to §7.2). The first
# changes the outputs a little; the second only up to rounding. *Look inside*:

# %%
show_source(eff.quantize_int8)

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
    int8_agree = interval(round(close["agreement"] * close["positions"]), close["positions"])
    print(f"int8 weights: {eff.weight_bytes(lm) / 2**20:.1f} MiB -> "
          f"{eff.weight_bytes(q8) / 2**20:.1f} MiB; argmax agrees at {int8_agree}; "
          f"mean KL {close['kl']:.3f} nats")
    timings["int8, SDPA"] = eff.ms_per_token(q8, long_prompt, tokens=32)
kv_views.timings_figure(timings, title=f"ms per decoding step after {len(long_prompt)} tokens "
                        "(median of 3 runs each)")

# %% [markdown]
# The claims: eager and fused attention agree at every position (logits within 1e-4); int8
# weights take under a third of the bytes, and change the argmax at several percent of the
# positions: the agreement's interval lies between 0.85 and 1, excluding 1.

# %% tags=["claim"]
assert same["agreement"] == 1.0 and same["max_logit_diff"] < 1e-4
if EMBEDDED and lm.device.type == "cpu":
    assert eff.weight_bytes(q8) < eff.weight_bytes(lm) / 3
    assert 0.85 < int8_agree.low and int8_agree.high < 1.0, int8_agree
    assert close["kl"] < 0.01
print("The claims hold.")

# %% [markdown]
# On a model this small, per-step overheads (Python, kernel launches) weigh as much as reading
# the weights, so neither choice is guaranteed to win here; the benchmark at the end records
# what they did on a quiet machine. On a GPU serving a 7B model, int8 weights halve the bytes
# a 16-bit decoding step reads, and fused attention kernels are what make long contexts
# affordable.
#
# ## Batching
#
# A decoding step reads all the weights whatever the batch, so decoding B sequences together
# costs little more than decoding one, until compute becomes the limit. With $t_{\text{step}}(B)$
# the time of one step at batch B,
#
# $$\text{throughput}(B) = \frac{B}{t_{\text{step}}(B)} \ \text{tokens/s}, \qquad \text{a gain of } \frac{B \cdot t_{\text{step}}(1)}{t_{\text{step}}(B)} \text{ over batch 1.}$$
#
# *Look inside*:

# %%
show_source(eff.throughput)

# %% [markdown]
# Three repeats at each batch size; the figure shows the median of each:

# %%
repeats = [eff.throughput(lm, "Story:", batch_sizes=(1, 4, 16, 64), max_new_tokens=32, seed=SEED)
           for _ in range(3)]
rows = [{**runs[0], **{key: statistics.median(r[key] for r in runs)
                       for key in ("seconds", "tokens_per_second", "ms_per_step")}}
        for runs in zip(*repeats)]
print("batch sizes:", [r["batch"] for r in rows], "| tokens per batch:",
      [r["tokens"] for r in rows])
fig = kv_views.throughput_figure(rows)
fig.update_layout(title="Batching: 64x the sequences per step, for a step time that grows far "
                  "less (median of 3)")

# %% [markdown]
# The step time is **not** flat: at batch 64 a step costs clearly more than a batch-1 step on
# this CPU (the small model is not purely memory-bound), but far less than 64 times as much, so
# the tokens per second rise. The claims: batch 64 gives at least 4 times the tokens per second of batch
# 1, and its step takes at least 1.5 times as long.

# %% tags=["claim"]
one, sixty_four = rows[0], rows[-1]
if EMBEDDED:
    assert sixty_four["tokens_per_second"] > 4 * one["tokens_per_second"], rows
    assert sixty_four["ms_per_step"] > 1.5 * one["ms_per_step"], rows
print("The claims hold.")

# %% [markdown]
# Batching improves **throughput**; the **latency** of each sequence is that of the batch's
# steps, which grew. Chapter 13 builds on it: meta-generators make many calls, which can be
# batched and can share their prefixes.

# %% [markdown]
# ## Speculative decoding: draft, then verify (§7.2, "Parallelization across time")
#
# A cheap **draft** q proposes k tokens $d_1 \dots d_k$. The target $p_\theta$ scores all k + 1
# positions in **one** forward pass (as cheap as one decoding step, by the roofline above).
# Then, position by position, with $p = p_\theta(\cdot \mid y_{<t'})$ and
# $q = q(\cdot \mid y_{<t'})$ the two next-token distributions there:
# - keep $d_i$ with probability
#
#   $$a(d_i) = \min\!\left(1,\ \frac{p(d_i)}{q(d_i)}\right):$$
#
#   always when $q(d_i) \le p(d_i)$, and with probability $p(d_i)/q(d_i)$ otherwise;
# - at the first rejection, draw the next token from the **residual** distribution and stop the
#   round:
#
#   $$p_{\text{res}}(y) = \frac{\max\big(0,\ p(y) - q(y)\big)}{\sum_{y'} \max\big(0,\ p(y') - q(y')\big)};$$
#
# - if all k are kept, draw a **bonus** token from $p_\theta$ at position k + 1.
#
# **A correction to the survey.** §7.2 describes the rule as "keeping it if
# $q(y_{t'}|y_{<t'}) \le p_\theta(y_{t'}|y_{<t'})$, and rejecting it when
# $q(y_{t'}|y_{<t'}) > p_\theta(y_{t'}|y_{<t'})$ with probability
# $p_\theta(y_{t'}|y_{<t'})/q(y_{t'}|y_{<t'})$ or if a preceding token was rejected". The
# rejection probability there is upside down: $p_\theta/q$ is the probability of **keeping**
# such a token; it is **rejected with probability** $1 - p_\theta/q$ (Leviathan et al., 2023,
# Algorithm 1; Chen et al., 2023). Read literally, the survey's rule would keep a token the draft
# proposes ten times too often with probability 0.9 instead of 0.1. The sentence also leaves out
# the resampling from $p_{\text{res}}$ after a rejection, without which the output would not
# follow $p_\theta$.
#
# **Why the output is exact.** The probability that a position emits y sums "proposed and
# kept" and "some proposal rejected, then y drawn from the residual":
#
# $$\Pr[y] = q(y)\, a(y) + \Big(1 - \sum_z \min\big(p(z), q(z)\big)\Big)\, p_{\text{res}}(y) = \min\big(p(y), q(y)\big) + \max\big(0,\ p(y) - q(y)\big) = p(y),$$
#
# because $1 - \sum_z \min(p(z), q(z)) = \sum_z \max(0, p(z) - q(z))$, the residual's
# normaliser. So every round emits between 1 and k + 1 tokens, and the output follows
# $p_\theta$ **exactly** (Leviathan et al., 2023; Chen et al., 2023).
#
# **How many tokens a round yields.** The probability of keeping a proposal at one position is
# $\beta = \sum_y \min(p(y), q(y))$ (one minus the total-variation distance of p and q); its
# mean over positions is the **acceptance rate** α. If each draft token is kept independently
# with probability α, a round keeps n drafts with probability $\alpha^n (1 - \alpha)$ for
# n < k and $\alpha^k$ for n = k, and yields on average (Leviathan et al., 2023, eq. 1; they
# call k γ)
#
# $$\mathbb{E}[\text{tokens per round}] = \sum_{i=0}^{k} \alpha^i = \frac{1 - \alpha^{k+1}}{1 - \alpha}.$$
#
# A round costs k draft steps, each c times a target step, plus one target pass, so the
# expected speedup over the target alone is (their Theorem 3.8)
#
# $$\text{speedup}(\alpha, k, c) = \frac{1 - \alpha^{k+1}}{(1 - \alpha)(k c + 1)}.$$
#
# *Look inside*: the accept/reject step, and the two closed forms:

# %%
show_source(eff.speculative_sampling_step, eff.expected_tokens_per_round, eff.expected_speedup)

# %% [markdown]
# First, exactness on a toy vocabulary of five tokens: draft from q, verify against p, count
# what comes out. The acceptance rate should be $\sum_y \min(p(y), q(y)) = 0.70$ and the first
# emitted token should follow p; with 10,000 draws both are measured with their uncertainty (a
# Wilson interval for the rate, a χ² goodness-of-fit test for the distribution):

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
toy_alpha = interval(kept, N)
fit = scipy.stats.chisquare(counts.numpy(), (N * p).numpy())
print(f"acceptance rate {toy_alpha}; theory: sum of min(p, q) = {torch.minimum(p, q).sum():.3f}")
for i in range(5):
    print(f"token {i}: p = {p[i]:.2f}, emitted {interval(int(counts[i]), N)}")
print(f"chi-square test of 'the emitted token follows p': p-value {fit.pvalue:.2f}")
kv_views.grouped_bars_figure(
    [{"name": f"token {i}", "target p": float(p[i]), "draft q": float(q[i]),
      "emitted (measured)": float(empirical[i])} for i in range(5)],
    title="Draft from q, verify against p: the output follows p", yaxis="probability")

# %% tags=["claim"]
assert toy_alpha.low <= float(torch.minimum(p, q).sum()) <= toy_alpha.high, toy_alpha
assert fit.pvalue > 0.01, fit
print("The claims hold: the acceptance rate is sum(min(p, q)), and the output follows p.")

# %% [markdown]
# Now the embedded pair: the target (6 layers) and its draft (2 layers of half the width: 0.6M
# parameters against 5.3M) share the tokenizer. With `greedy=True`, p and q become one-hot
# distributions on their argmax, and the rule becomes: keep $d_i$ exactly when
# $d_i = \arg\max_v p_\theta(v \mid y_{<t'})$, and at the first mismatch emit the target's
# argmax instead. So the output is **exactly** the target's greedy output, in fewer target
# passes. *Look inside*:

# %%
show_source(eff.greedy_verify_step)

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

# %% tags=["claim"]
assert fast.token_ids == reference.token_ids
if EMBEDDED:
    dcfg = draft.model.config
    assert (cfg.num_hidden_layers, dcfg.num_hidden_layers) == (6, 2)
    assert 2 * dcfg.hidden_size == cfg.hidden_size
    assert 2 * fast.info["target_cost"].forward_passes < reference.cost.forward_passes
print("The claims hold: the same tokens, in under half the target passes.")

# %% [markdown]
# Sampling at temperature 1, on six arithmetic problems (stories are too short: a TinyWorld
# story is a sentence, over in a handful of rounds). Each row of the widget is a round of the first run:
# green drafts were kept, red was rejected (grey ones after it were never checked), and the last
# column is the target's own token (resampled after a rejection, or the bonus). The statistics
# pool all six runs, so that α has enough positions behind it for a useful interval.

# %%
prompts = [t["prompt"] for t in load_tasks("arithmetic") if t["n_ops"] >= 4][:6]
with wb.trace() as t:
    runs = [eff.speculative_decode(lm, draft, x, k=4, max_new_tokens=96, seed=SEED + i)
            for i, x in enumerate(prompts)]
rounds = [r for g in runs for r in g.info["rounds"] if r["drafted"]]
pooled = eff.summarize(rounds, 4)
rejected = sum(r["accepted"] < len(r["drafted"]) for r in rounds)
alpha = interval(pooled["accepted"], pooled["accepted"] + rejected)
band = [eff.expected_tokens_per_round(a, 4) for a in (alpha.low, alpha.high)]
print(repr(runs[0].text[:80]))
print(f"{len(rounds)} rounds in {len(runs)} runs; alpha = {alpha}")
print(f"mean of sum(min(p, q)) over the checked positions: {pooled['mean_beta']:.3f}")
print(f"tokens per round: measured {pooled['tokens_per_round']:.2f}; closed form "
      f"{pooled['expected_tokens_per_round']:.2f} at this alpha, "
      f"[{band[0]:.2f}, {band[1]:.2f}] over its interval")
print("events:", sorted({e["kind"] for e in t.events}))
c = bench["draft_ms"] / bench["target_ms"]
spec_views.SpeculativeView(runs[0], lm.tokenizer, sweep=bench["speculative_sampled"], c=c)

# %% [markdown]
# The histogram of kept drafts per round for all six runs, against $\alpha^n(1 - \alpha)$ and
# $\alpha^k$:

# %%
spec_views.acceptance_figure(pooled)

# %% [markdown]
# Two checks of the theory on real models. The measured acceptance rate α should equal the
# mean of $\beta = \sum_y \min(p, q)$ over the checked positions (the toy's law, position by
# position): the mean β lies inside α's interval. And if acceptances were far from independent
# (a draft that goes off track staying off), the tokens per round would leave the closed form's
# range; here they lie inside it.

# %% tags=["claim"]
if EMBEDDED:
    assert alpha.low <= pooled["mean_beta"] <= alpha.high, (alpha, pooled["mean_beta"])
    assert band[0] <= pooled["tokens_per_round"] <= band[1], (band, pooled["tokens_per_round"])
    assert len(rounds) >= 60
print("The claims hold.")

# %% [markdown]
# ### Prompt lookup: drafting by copying
#
# The draft need not be a model. **Prompt lookup decoding** (Saxena, 2023) finds the last few
# generated tokens earlier in the prompt or output and proposes what followed them there. It
# is the simplest member of a family the survey mentions: Yang et al. (2023), whom the survey
# cites for "using prompt n-grams as proposals", copy spans from a *reference* document
# (retrieved or cached text) that the output is likely to repeat; lookahead decoding (Fu et al.,
# 2024) generates its own n-grams to draft from. TinyWorld's worked arithmetic copies most of
# each line from the line before, so copying is a good guess; it costs no forward pass, only a
# dictionary look-up. With a deterministic draft, q is one-hot on the copied token, so a copy is
# kept with probability $p(d)$ (when sampling) or exactly when it is the argmax (greedy).
# *Look inside*, the drafter's proposal:

# %%
show_source(eff.PromptLookupDrafter.propose)

# %%
lookup = eff.prompt_lookup_decode(lm, task, k=8, greedy=True, max_new_tokens=96)
copies = interval(lookup.info["accepted"], lookup.info["drafted"])
checked = lookup.info["accepted"] + sum(r["accepted"] < len(r["drafted"])
                                        for r in lookup.info["rounds"] if r["drafted"])
lookup_alpha = interval(lookup.info["accepted"], checked)
print("same tokens as greedy decoding:", lookup.token_ids == reference.token_ids)
print(f"target passes: {reference.cost.forward_passes} alone, "
      f"{lookup.cost.forward_passes} with prompt lookup")
print(f"copied tokens kept: {copies}")
print(f"copies the target checked that passed (alpha): {lookup_alpha}")
spec_views.rounds_figure(lookup, lm.tokenizer, rounds=12)

# %% [markdown]
# Most copied tokens are thrown away unchecked: the drafter proposes 8 even where only a few
# can be right, and a round stops at its first rejection. Of the copies the target did check,
# a much larger share passed (the α in the figure's title). Every kept copy saves a target
# pass, and an unused one costs nothing but a longer verification pass. The claims: the same
# tokens as greedy decoding; no forward pass but the target's; under half the target passes;
# fewer than half of the copies kept, but α above that.

# %% tags=["claim"]
assert lookup.token_ids == reference.token_ids
assert lookup.cost.forward_passes == lookup.info["target_cost"].forward_passes   # no draft model
if EMBEDDED:
    assert 2 * lookup.cost.forward_passes < reference.cost.forward_passes
    assert copies.high < 0.5 and lookup_alpha.low > copies.high
print("The claims hold.")

# %% [markdown]
# ### Measured: does fewer passes mean less time?
#
# Time the three ways of producing the same greedy tokens, five times each, interleaved (target,
# draft + target, prompt lookup; then again), and measure on the way what the roofline's
# second lesson predicts for this CPU: a pass that verifies 5 tokens against one decoding step,
# after 256 tokens of context (nine interleaved pairs):

# %%
def seconds_per_token(fn):
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) / len(out.token_ids)


methods = {"target alone": lambda: decoding.greedy(lm, task, max_new_tokens=96),
           "draft + target (k=4)": lambda: eff.speculative_decode(
               lm, draft, task, k=4, greedy=True, max_new_tokens=96),
           "prompt lookup (k=8)": lambda: eff.prompt_lookup_decode(
               lm, task, k=8, greedy=True, max_new_tokens=96)}
live = {name: [] for name in methods}
for _ in range(5):
    for name, fn in methods.items():
        live[name].append(seconds_per_token(fn))
base = live["target alone"]
speedups = {name: [b / s for b, s in zip(base, live[name])] for name in list(methods)[1:]}

st = lm.prefill(long_prompt)
verify_vs_step = []
for _ in range(9):
    before = st.logits.clone()
    start = time.perf_counter()
    lm.advance(st, before.argmax(-1))
    one = time.perf_counter() - start
    st.crop(1, before)              # back to 256 positions, no extra pass
    start = time.perf_counter()
    lm.extend(st, long_prompt[1:6])
    verify_vs_step.append((time.perf_counter() - start) / one)
    st.crop(5, before)
kv_views.timings_figure({name: 1000 * statistics.median(v) for name, v in live.items()},
                        title="ms per generated token, same output (median of 5)")

# %% [markdown]
# The ratios, each the median of its repeats (the label gives the range over the repeats), with
# the margin the claim asks for as a tick:

# %%
ratio_rows = [(f"{name} vs target alone ({min(v):.2f}-{max(v):.2f})", statistics.median(v), 1.0)
              for name, v in speedups.items()]
ratio_rows.append((f"verify 5 tokens / decode 1 ({min(verify_vs_step):.2f}-"
                   f"{max(verify_vs_step):.2f})", statistics.median(verify_vs_step), None))
kv_views.ratios_figure(ratio_rows, title="Live ratios on this CPU (median of the repeats)")

# %% [markdown]
# Speculative decoding does **more** arithmetic in total (the draft's passes, and target
# positions that get rejected) and still saves time, because each target pass is memory- and
# overhead-bound: on this CPU, verifying 5 tokens costs more than one decoding step but well
# under the five steps it replaces. The claims: both drafting methods are faster than the
# target alone (median ratio above 1), and the verification pass costs between 1 and 2.5
# decoding steps. On a loaded machine the ratios shrink and spread (overheads grow for every
# method), which is why the claim asks only for "faster" and the benchmark below, on a quiet
# machine, gives the size.

# %% tags=["claim"]
if EMBEDDED:
    for name, v in speedups.items():
        assert statistics.median(v) > 1.0, (name, v)
    assert 1.0 < statistics.median(verify_vs_step) < 2.5, verify_vs_step
print("The claims hold.")

# %% [markdown]
# ## The claims, measured by the benchmark
#
# `scripts/bench_efficiency.py` makes the long measurements on a quiet machine (one thread) and
# stores them in `data/results/efficiency.json`; every ratio compares runs made in the same
# process, but each is **one** timing of each side. The claim cells of this section assert
# against those committed results (they do not re-time anything). The acceptance rates come with
# Wilson intervals over the drafted positions of the eight problems, rebuilt from the stored
# histograms of kept drafts per round (which count a short last draft as a rejection, so they
# read a hair below the stored α).

# %%
kv = bench["kv"]
spec = max(bench["speculative_sampled"], key=lambda r: r["speedup"])
greedy_spec = max(bench["speculative_greedy"], key=lambda r: r["speedup"])
kernels = bench["kernels"]
claims = [
    (f"KV cache vs recomputing, {kv['tokens']} tokens", kv["speedup"], 5.0),
    (f"speculative sampling with the draft, k={spec['k']}", spec["speedup"], 1.5),
    (f"speculative greedy with the draft, k={greedy_spec['k']}", greedy_spec["speedup"], 1.5),
    ("prompt lookup on worked arithmetic (k=8)", bench["prompt_lookup"]["speedup"], 1.5),
    ("int8 vs fp32, decoding step", kernels["fp32_ms"] / kernels["int8_ms"], None),
    ("SDPA vs eager attention, decoding step", kernels["eager_ms"] / kernels["sdpa_ms"], None)]
print(f"models: {bench['target']} + {bench['draft']}, {bench['threads']} thread(s)")
for name, ratio, need in claims:
    print(f"{name:48s} {ratio:5.2f}x" + (f"  (target {need}x)" if need else ""))
print(f"draft/target cost per decoding step c = {c:.2f}")


def stored_alpha(row):
    """The acceptance rate of a stored row with its Wilson interval, from its histogram."""
    hist, k = row["accepted_hist"], row["k"]
    kept = sum(n * count for n, count in enumerate(hist))
    return interval(kept, kept + sum(count for n, count in enumerate(hist) if n < k))


print(f"\n{'sampled, k':10s} {'alpha [95% interval]':>34s} {'tokens/round':>13s} "
      f"{'closed form':>12s} {'speedup':>8s} {'closed form':>12s}")
for r in bench["speculative_sampled"]:
    a = stored_alpha(r)
    print(f"{r['k']:10d} {str(a):>34s} {r['tokens_per_round']:13.2f} "
          f"{eff.expected_tokens_per_round(r['alpha'], r['k']):12.2f} {r['speedup']:7.2f}x "
          f"{eff.expected_speedup(r['alpha'], r['k'], c):11.2f}x")
kv_views.ratios_figure(claims)

# %% [markdown]
# What the stored run shows, and what it cannot:
# - The KV cache (13× over 512 tokens) and greedy drafting (2.4× at k = 4, the same tokens as
#   the target every time) clear their targets with room to spare.
# - Prompt lookup reaches 1.51× against a 1.5× target: met by a hair in a single timing, so
#   "about 1.5×" is all the data support.
# - **Sampled speculative decoding misses its 1.5× target: 1.29× at k = 3**, where the closed
#   form at the measured α = 0.84 and c = 0.19 promises 2.0×. The token counts agree with the
#   theory (tokens per round match the closed form at every k); the *time* does not, because the
#   closed form counts forward passes and nothing else. On this CPU a verification pass costs
#   more than one decoding step (the live measurement above), and every round adds work that
#   neither model's step time contains: a softmax of both models over the vocabulary, the
#   accept/reject draws, cropping two caches. On a GPU serving a 7B target those costs are
#   small beside a memory-bound pass; with a 5M-parameter target they are not.
# - **Single timings are noisy, and the file shows how much.** The greedy and the sampled rows
#   each time the same target decoding the same eight prompts one token per pass; their
#   baselines read 4.65 and 2.92 ms per token, a 1.6× difference with nothing changed but the
#   decoding rule (sampling is, if anything, the slower rule). Measured against the other
#   baseline, greedy drafting would read 1.5× and sampled drafting 2.1×. So the stored ratios
#   are uncertain by tens of percent, and only differences larger than that are findings.
# - int8 weights made the decoding step 1.39× faster; SDPA against eager attention, 1.05×, is
#   within the noise of one timing.

# %% tags=["claim"]
assert kv["speedup"] >= 5 and kv["same_tokens"] and round(kv["speedup"]) == 13
assert (greedy_spec["k"], round(greedy_spec["speedup"], 1)) == (4, 2.4)
assert (spec["k"], round(spec["speedup"], 2), round(spec["alpha"], 2), round(c, 2)) == (3, 1.29,
                                                                                     0.84, 0.19)
assert round(eff.expected_speedup(spec["alpha"], spec["k"], c), 1) == 2.0
assert round(bench["prompt_lookup"]["speedup"], 2) == 1.51
assert greedy_spec["speedup"] >= 1.5 and all(r["same_as_target"] for r in bench["speculative_greedy"])
assert bench["prompt_lookup"]["same_as_target"] and 1.3 <= bench["prompt_lookup"]["speedup"] < 1.6
assert 1.0 < spec["speedup"] < 1.5                                         # the miss
assert eff.expected_speedup(spec["alpha"], spec["k"], c) > spec["speedup"] + 0.5   # the gap
for r in bench["speculative_sampled"] + bench["speculative_greedy"]:       # token counts fit
    a = stored_alpha(r)
    lo, hi = (eff.expected_tokens_per_round(x, r["k"]) for x in (a.low, a.high))
    assert lo <= r["tokens_per_round"] <= hi, (r["k"], lo, r["tokens_per_round"], hi)
baselines = (bench["speculative_greedy"][0]["baseline_ms_per_token"],
             bench["speculative_sampled"][0]["baseline_ms_per_token"])
assert max(baselines) / min(baselines) > 1.4, baselines                     # the noise
assert 1.4 < min(baselines) / greedy_spec["ms_per_token"] < 1.6             # greedy, other baseline
assert 2.0 < max(baselines) / spec["ms_per_token"] < 2.2                    # sampled, other baseline
assert round(kernels["fp32_ms"] / kernels["int8_ms"], 2) == 1.39
assert round(kernels["eager_ms"] / kernels["sdpa_ms"], 2) == 1.05   # one timing: noise-sized
print("The claims hold (against the committed data/results/efficiency.json).")

# %% [markdown]
# The speedup against k, beside the closed forms at each measured α: tokens per target pass
# grow with k, but each extra draft step costs c. In the stored sampled run the speedup rises
# from 1.06× at k = 1 to its peak at k = 3 and falls to 1.12× at k = 8; with greedy drafts it
# climbs to about 2.4× at k = 3 and stays there up to k = 8. (One timing per k: differences of a
# few hundredths between neighbouring k are noise.)

# %%
spec_views.speedup_figure(bench["speculative_sampled"], c=c)

# %% tags=["claim"]
sampled = {r["k"]: r["speedup"] for r in bench["speculative_sampled"]}
greedy_k = {r["k"]: r["speedup"] for r in bench["speculative_greedy"]}
assert max(sampled, key=sampled.get) == 3
assert (round(sampled[1], 2), round(sampled[8], 2), round(greedy_k[3], 1)) == (1.06, 1.12, 2.4)
assert sampled[1] < sampled[3] - 0.1 and sampled[8] < sampled[3] - 0.1
assert max(v for k, v in greedy_k.items() if k >= 3) - min(v for k, v in greedy_k.items()
                                                              if k >= 3) < 0.1
print("The claims hold (against the committed data/results/efficiency.json).")

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
# sampling keeps it with probability $a(d) = \min(1, p(d)/q(d))$; otherwise it draws the token
# from the residual $p_{\text{res}} \propto \max(0, p - q)$. Write `accept_prob(p, q)`, the
# vector of keep probabilities of **every** token of the vocabulary, and `residual(p, q)`, the
# distribution drawn from after a rejection (p and q: probability vectors over the vocabulary).
# The package's step (in the look-inside cell above) only ever evaluates the drafted tokens;
# write yours for the whole vocabulary without copying it, and be ready to say why the residual
# is what it is. The check compares `accept_prob` with the package's (`SpecStep.accept_probs`)
# and verifies with your `residual` that the emitted token follows p exactly:
# $\Pr[y] = q(y)\,a(y) + \big(1 - \sum_z q(z)\,a(z)\big)\, r(y) = p(y)$.

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

# %% [markdown]
# ## Key takeaways
#
# - **Prefill once, then decode with the KV cache** (eqs. 55–56): the positions computed fall
#   from $TP + T(T-1)/2$ to $P + T - 1$, with the same tokens.
# - **The cache has a size you can compute**: $2 L H_{kv} d_{\text{head}} b$ bytes per token, half
#   a mebibyte for Llama-2-7B, where seven 4096-token sequences outweigh the weights. GQA and MQA
#   shrink it by exactly $H / H_{kv}$; the quality has to be earned by (up)training (our
#   conversion without it already changes the argmax at about half the positions with 4 KV
#   heads).
# - **Decoding is memory-bound** (intensity ≈ 1 FLOP/byte against an H100 ridge of 295): on the
#   roofline, verifying 5 tokens costs what decoding 1 does; on this CPU it costs more than one
#   step but far fewer than five. Batching turns the same memory-bound steps into several times
#   the tokens per second, while each step gets slower.
# - **Speculative sampling** keeps a draft token with probability $\min(1, p/q)$ and resamples
#   from $\operatorname{norm}(\max(0, p - q))$ after a rejection; the output follows $p_\theta$
#   exactly. The survey's sentence gives the rejection probability as $p/q$; it is $1 - p/q$.
# - **Theory for token counts, measurement for time**: tokens per round match
#   $(1 - \alpha^{k+1})/(1 - \alpha)$ within the interval of α, but the speedup closed form,
#   which counts only forward passes, promised 2.0× where the stored run measured 1.29×.
# - **Timings are noisy**: compare ratios of interleaved runs, repeat, and claim margins; one
#   timing of a baseline moved by 1.6× in the stored benchmark with nothing changed.
#
# ## Further reading
#
# - Survey §7 (introduction), §7.1 (latency, throughput, hardware; eqs. 53–54) and §7.2
#   (speeding up the generator; eqs. 55–56, draft-then-verify) of Welleck et al. (2024), *From
#   Decoding to Meta-Generation*; Table 6 lists the classes of techniques.
# - Pope et al. (2023), *Efficiently Scaling Transformer Inference* (KV-cache memory, multi-query
#   attention and the latency/throughput trade-off at scale).
# - Shazeer (2019), *Fast Transformer Decoding: One Write-Head is All You Need* (MQA); Ainslie
#   et al. (2023), *GQA: Training Generalized Multi-Query Transformer Models from Multi-Head
#   Checkpoints*.
# - Williams, Waterman & Patterson (2009), *Roofline: An Insightful Visual Performance Model for
#   Multicore Architectures*; He (2022), *Making Deep Learning Go Brrrr From First Principles*
#   (blog post).
# - Dao et al. (2022), *FlashAttention*; Dao (2023), *FlashAttention-2*; Dettmers et al. (2022),
#   *LLM.int8()*.
# - Leviathan, Kalman & Matias (2023), *Fast Inference from Transformers via Speculative
#   Decoding* (ICML 2023; the survey cites the 2022 preprint); Chen et al. (2023), *Accelerating
#   Large Language Model Decoding with Speculative Sampling*.
# - Saxena (2023), *Prompt Lookup Decoding* (code and write-up on GitHub); Yang et al. (2023),
#   *Inference with Reference: Lossless Acceleration of Large Language Models*; Fu et al. (2024),
#   *Break the Sequential Dependency of LLM Inference Using Lookahead Decoding*.
