"""KV cache, prefix sharing, roofline and quantisation (survey §7)."""
import math

import pytest
import torch

import workbench as wb
from workbench import decoding
from workbench.efficiency import (CPU_2CORE, H100, LLAMA2_7B, PrefixCache, agreement,
                                  attention_variants, cache_bytes, forward_cost,
                                  kv_cache_bytes, measure_cpu, parameter_count, quantize_int8,
                                  roofline, roofline_table, throughput, timed_greedy,
                                  weight_bytes, with_attention, with_kv_heads)
from workbench.efficiency.prefix import layer_pairs


def full_logits(lm, ids):
    with torch.no_grad():
        return lm.model(input_ids=torch.tensor([ids])).logits[0].float()


@pytest.fixture(scope="module")
def lm(tokenizer):
    from conftest import random_llama
    torch.set_num_threads(1)
    return wb.LanguageModel(random_llama(tokenizer, seed=3, layers=2, heads=4), tokenizer, "r")


# -- KV cache ------------------------------------------------------------------------------
def test_cache_and_recompute_give_the_same_tokens(lm):
    a = timed_greedy(lm, "Story:", 24, use_cache=True)
    b = timed_greedy(lm, "Story:", 24, use_cache=False)
    assert a.token_ids == b.token_ids
    ref = decoding.greedy(lm, "Story:", max_new_tokens=24).token_ids
    assert a.token_ids[:len(ref)] == ref
    P, T = len(lm.encode("Story:")), 24
    assert a.cost.computed_tokens == P + T - 1 and a.cost.forward_passes == T
    assert b.cost.computed_tokens == sum(P + t for t in range(T))
    kinds = [e["kind"] for e in a.info["timeline"]]
    assert kinds == ["prefill"] + ["decode"] * (T - 1)
    assert [e["cache_tokens"] for e in a.info["timeline"]] == list(range(P, P + T))
    assert all(e["kind"] == "recompute" for e in b.info["timeline"])


@pytest.mark.parametrize("kv", [4, 2, 1])
def test_cache_size_formula_equals_measured_bytes(tokenizer, kv):
    from conftest import random_llama
    model = wb.LanguageModel(random_llama(tokenizer, layers=3, hidden=64, heads=4, kv_heads=kv),
                             tokenizer)
    state = model.prefill(["Story: The cat", "Q: 1+2\n"], n=3)   # 6 rows, padded
    tokens = state.mask.shape[1]
    expected = 3 * kv * 16 * 2 * 4 * tokens * 6
    assert kv_cache_bytes(model.model.config, tokens, batch=6) == expected
    assert state.cache_bytes() == cache_bytes(state.cache) == expected
    g = timed_greedy(model, "Story:", 5)
    last = g.info["timeline"][-1]
    assert last["cache_bytes"] == kv_cache_bytes(model.model.config, last["cache_tokens"])


def test_mha_gqa_mqa_variants(lm):
    rows = attention_variants(lm, tokens=100)
    assert [r["kind"] for r in rows] == ["MHA", "GQA", "MQA"]
    assert [r["kv_heads"] for r in rows] == [4, 2, 1]
    assert rows[0]["cache_bytes"] == 4 * rows[2]["cache_bytes"] == 2 * rows[1]["cache_bytes"]
    same = with_kv_heads(lm, 4)
    assert torch.allclose(same.next_logits("Story:"), lm.next_logits("Story:"), atol=1e-5)
    mqa = with_kv_heads(lm, 1)
    state = mqa.prefill("Story: The cat")
    assert state.cache_bytes() == lm.prefill("Story: The cat").cache_bytes() // 4
    assert torch.allclose(state.logits[0], full_logits(mqa, state.ids[0])[-1], atol=1e-4)
    with pytest.raises(ValueError, match="n_kv_heads"):
        with_kv_heads(lm, 3)


def test_pooling_equal_heads_is_exact(lm):
    """If the KV heads of a group are equal, mean-pooling them into GQA changes nothing."""
    import copy
    m = copy.deepcopy(lm)
    with torch.no_grad():
        for layer in m.model.model.layers:
            for proj in (layer.self_attn.k_proj, layer.self_attn.v_proj):
                w = proj.weight.view(2, 2, 16, -1)
                w[:, 1] = w[:, 0]
    gqa = with_kv_heads(m, 2)
    assert torch.allclose(gqa.next_logits("Story: A dog"), m.next_logits("Story: A dog"),
                          atol=1e-5)


def test_crop_matches_recompute(lm):
    state = lm.prefill("Story: The")
    logits = lm.extend(state, [30, 31, 32, 33])
    snap = lm.counter.snapshot()
    state.crop(2, logits[1:2])
    assert lm.counter.since(snap).forward_passes == 0
    assert state.ids[0][-2:] == [30, 31]
    lm.advance(state, [40])
    assert torch.allclose(state.logits[0], full_logits(lm, state.ids[0])[-1], atol=1e-4)
    with pytest.raises(ValueError, match="n_tokens"):
        state.crop(100, logits[:1])
    with pytest.raises(ValueError, match="n_tokens"):
        state.crop(-1)
    state.crop(1)                   # without logits: none until the next advance
    assert state.logits is None and state.ids[0][-2:] == [30, 31]
    lm.advance(state, [41])
    assert torch.allclose(state.logits[0], full_logits(lm, state.ids[0])[-1], atol=1e-4)


def test_crop_and_rewind_work_on_left_padded_rows(lm):
    """Rows of different lengths (left padding): crop drops the same count from each; rewind
    recomputes the logits the rows had before."""
    state = lm.prefill(["Story: The", "Q: 12+7*3-5\n"])
    before = state.logits.clone()
    lm.advance(state, [30, 31])
    lm.advance(state, [32, 33])
    lm.rewind(state, 2)
    assert torch.allclose(state.logits, before, atol=1e-4)
    for row in state.ids:
        assert torch.allclose(state.logits[state.ids.index(row)],
                              full_logits(lm, row)[-1], atol=1e-4)
    with pytest.raises(ValueError, match="first token"):
        lm.rewind(state, min(len(r) for r in state.ids))


@pytest.fixture(scope="module")
def grown(lm):
    """The same weights, with KV caches that grow in place."""
    from workbench.efficiency import use_growing_cache
    return use_growing_cache(wb.LanguageModel(lm.model, lm.tokenizer, "grown"))


def test_growing_cache_decodes_like_the_default(lm, grown):
    prompts = ["Story: The", "Q: 12+7*3-5\n", "Review:"]
    a, b = lm.prefill(prompts, n=2), grown.prefill(prompts, n=2)
    assert type(b.cache).__name__ == "GrowingCache"
    for step in range(70):   # past the first growth of the buffers
        tok = a.logits.argmax(-1)
        lm.advance(a, tok)
        grown.advance(b, tok)
        assert torch.allclose(a.logits, b.logits, atol=1e-4), step
    assert b.cache_bytes() == a.cache_bytes()
    for r in (0, 3):
        assert torch.allclose(b.logits[r], full_logits(lm, b.ids[r])[-1], atol=1e-4)
    child = b.select([5, 5, 0])       # copies: the parent stays usable
    grown.advance(child, torch.tensor([7, 8, 9]))
    grown.advance(b, b.logits.argmax(-1))
    assert torch.allclose(child.logits[1], full_logits(lm, child.ids[1])[-1], atol=1e-4)
    assert torch.allclose(b.logits[5], full_logits(lm, b.ids[5])[-1], atol=1e-4)


def test_growing_cache_extend_rewind_and_crop(grown):
    state = grown.prefill("Story: The")
    logits = grown.extend(state, [20, 21, 22, 23])
    grown.rewind(state, 1)
    assert torch.allclose(state.logits[0], full_logits(grown, state.ids[0])[-1], atol=1e-4)
    state.crop(2, logits[0:1])
    grown.extend(state, [30, 31])   # overwrites the cropped positions
    assert torch.allclose(state.logits[0], full_logits(grown, state.ids[0])[-1], atol=1e-4)
    assert decoding.greedy(grown, "Story:", max_new_tokens=20).token_ids == \
        decoding.greedy(wb.LanguageModel(grown.model, grown.tokenizer), "Story:",
                        max_new_tokens=20).token_ids


# -- prefix sharing ------------------------------------------------------------------------
PREFIX = "Q: 12+7*3-5\n12+21-5\nA: 28\n"


@pytest.mark.parametrize("which", ["default", "growing"])
def test_prefix_cache_serves_the_same_logits(lm, grown, which):
    lm = lm if which == "default" else grown
    prompts = [PREFIX + "Q: 3+4\n", PREFIX + "Q: 3*9\n", PREFIX + "Q: 8-1\n", "Story: The cat"]
    pc = PrefixCache(lm)
    state = pc.prefill(prompts)
    ref = lm.prefill(prompts)
    assert torch.allclose(state.logits, ref.logits, atol=1e-4)
    ids = [lm.encode(p) for p in prompts]

    def shared(a, b):
        return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    # each prompt reuses its longest common prefix with any earlier prompt
    reused = sum(max([shared(ids[i], ids[j]) for j in range(i)], default=0)
                 for i in range(len(ids)))
    assert reused >= 2 * len(lm.encode(PREFIX + "Q: "))
    lengths = [len(x) for x in ids]
    assert pc.requested_tokens == sum(lengths)
    assert pc.reused_tokens == reused
    assert pc.tokens_saved == reused == pc.requested_tokens - pc.computed_tokens
    assert pc.hits == 3 and pc.lookups == 4   # the last prompt shares only BOS
    assert pc.hit_rate == pytest.approx(reused / sum(lengths))
    assert len(pc) == sum(lengths) - reused
    # decoding from the served state gives the same tokens as from a fresh prefill
    a = decoding.decode(lm, state, decoding.choose_greedy, 8)
    b = decoding.decode(lm, ref, decoding.choose_greedy, 8)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]


def test_prefix_cache_reuses_a_search_tree(lm):
    """Children of a node hit the node's stored state; N samples share one prompt."""
    pc = PrefixCache(lm)
    root = pc.prefill(PREFIX, n=4)
    gens = decoding.decode(lm, root, decoding.choose_sample, 6,
                           generator=torch.Generator().manual_seed(0), eos=False)
    assert all(len(g.token_ids) == 6 for g in gens)
    stored = pc.insert_state(root)   # each row's 5 advanced tokens (distinct rows only)
    assert stored == 5 * len({tuple(r) for r in root.ids})
    assert all(pc.match(r) == len(r) for r in root.ids)
    child = root.ids[0] + [17, 18]
    before = pc.computed_tokens
    state = pc.prefill([child])
    assert pc.computed_tokens - before == 2      # only the new tokens are computed
    assert torch.allclose(state.logits[0], full_logits(lm, child)[-1], atol=1e-4)


def test_prefix_cache_splits_edges_and_evicts(lm):
    pc = PrefixCache(lm)
    a, b = lm.encode("Story: The cat sat"), lm.encode("Story: The dog ran")
    pc.prefill([a])
    n_common = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert pc.match(b) == n_common
    pc.prefill([b])
    assert pc.match(a) == len(a) and pc.match(b) == len(b)
    kv = pc.keys_values(b)
    ref = layer_pairs(lm.prefill([b]).cache)
    assert all(torch.allclose(k, rk, atol=1e-5) and torch.allclose(v, rv, atol=1e-5)
               for (k, v), (rk, rv) in zip(kv, ref))
    small = PrefixCache(lm, max_tokens=len(a) + 1)
    small.prefill([a])
    small.prefill([b])
    assert len(small) == len(b) <= len(a) + 1
    assert small.match(b) == len(b) and small.match(a) == n_common   # a's tail was evicted


def test_sharing_one_prompt_computes_it_once(lm):
    snap = lm.counter.snapshot()
    shared = decoding.sample(lm, PREFIX, n=16, seed=0, max_new_tokens=4)
    c_shared = lm.counter.since(snap).computed_tokens
    snap = lm.counter.snapshot()
    decoding.sample(lm, [PREFIX] * 16, seed=0, max_new_tokens=4)
    c_unshared = lm.counter.since(snap).computed_tokens
    P = len(lm.encode(PREFIX))
    assert c_unshared - c_shared == 15 * P
    assert len(shared) == 16


def test_throughput_rows(lm):
    rows = throughput(lm, "Story:", batch_sizes=(1, 4), max_new_tokens=4)
    assert [r["batch"] for r in rows] == [1, 4]
    assert all(r["tokens_per_second"] > 0 and r["tokens"] == 4 * r["batch"] for r in rows)


# -- roofline ------------------------------------------------------------------------------
def test_parameter_count_matches_the_model(lm):
    cfg = lm.model.config
    counted = parameter_count(cfg)
    norms = sum(p.numel() for n, p in lm.model.named_parameters() if "norm" in n)
    total = sum(p.numel() for p in lm.model.parameters())
    assert counted["layers"] + counted["embedding"] + counted["head"] == total - norms
    assert parameter_count(LLAMA2_7B)["layers"] + 2 * 32000 * 4096 == pytest.approx(6.74e9,
                                                                                     rel=0.01)


def test_decode_is_memory_bound_and_prefill_compute_bound():
    assert H100.ridge == pytest.approx(989.4e12 / 3.35e12)
    dec = roofline(LLAMA2_7B, H100, batch=1, new_tokens=1, context=512)
    pre = roofline(LLAMA2_7B, H100, batch=1, new_tokens=2048, context=0)
    assert dec["bound"] == "memory" and pre["bound"] == "compute"
    assert 0.9 < dec["intensity"] < 1.1            # ~2 FLOP per 2-byte weight
    assert dec["seconds"] == pytest.approx(13.5e9 / 3.35e12, rel=0.05)
    # verifying k+1 tokens costs about as much as decoding one (why speculation pays)
    ver = roofline(LLAMA2_7B, H100, batch=1, new_tokens=5, context=512)
    assert ver["seconds"] < 1.05 * dec["seconds"]
    rows = roofline_table(LLAMA2_7B, H100)
    assert [r["bound"] for r in rows] == ["memory", "memory", "memory", "compute"]
    small = forward_cost(LLAMA2_7B, batch=1, new_tokens=1, context=0)
    assert small["flops"] == pytest.approx(2 * parameter_count(LLAMA2_7B)["matmul"], rel=1e-3)
    assert CPU_2CORE.ridge > 1
    with pytest.raises(ValueError):
        forward_cost(LLAMA2_7B, batch=0)


def test_measure_cpu_gives_positive_rates():
    hw = measure_cpu(size=256, seconds=0.05)
    assert hw.flops > 1e8 and hw.bandwidth > 1e8


# -- quantisation and attention kernels ----------------------------------------------------
TEXTS = ["Story: The cat sat on the mat. The dog ran.", PREFIX]


def test_int8_quantisation_shrinks_weights_and_stays_close(lm):
    q = quantize_int8(lm)
    linear = sum(m.weight.numel() for m in lm.model.modules() if isinstance(m, torch.nn.Linear))
    assert weight_bytes(lm) - weight_bytes(q) == pytest.approx(3 * linear, rel=0.01)
    r = agreement(lm, q, TEXTS)
    assert r["kl"] < 1e-3 and r["max_logit_diff"] < 0.05 and r["positions"] > 20
    assert r["agreement"] > 0.8
    assert agreement(lm, lm, TEXTS)["kl"] == 0.0


def test_sdpa_and_eager_attention_agree(lm):
    eager, sdpa = with_attention(lm, "eager"), with_attention(lm, "sdpa")
    assert eager.model.config._attn_implementation == "eager"
    r = agreement(sdpa, eager, TEXTS)
    assert r["max_logit_diff"] < 1e-4 and r["agreement"] == 1.0
    assert decoding.greedy(eager, "Story:", max_new_tokens=10).token_ids == \
        decoding.greedy(lm, "Story:", max_new_tokens=10).token_ids
    with pytest.raises(ValueError, match="not available"):
        with_attention(lm, "no-such-kernel")
    assert math.isfinite(r["kl"])


def test_benchmark_script_slice(lm):
    """A small slice of scripts/bench_efficiency.py, so the script keeps working."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import bench_efficiency as be
    from workbench.efficiency import truncated_draft
    kv = be.bench_kv(lm, 12)
    assert kv["same_tokens"] and kv["cache_bytes"] == kv["formula_bytes"]
    prompts = be.arithmetic_prompts(1)
    rows = be.bench_speculative(lm, truncated_draft(lm, 1), prompts, (2,), True, 10)
    assert rows[0]["same_as_target"] and sum(rows[0]["accepted_hist"]) > 0
    look = be.bench_lookup(lm, prompts, 4, 10)
    assert look["same_as_target"]
    pre = be.bench_prefix(lm, be.few_shot_header(1), ["Q: 1+2\n", "Q: 3*4\n"], 2, 3)
    assert pre["prefix_cache"]["tokens_saved"] > 0 and pre["max_logit_diff"] < 1e-4
