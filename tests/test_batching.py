"""Continuous batching with a paged KV cache (survey §7.3; Orca, Yu et al. 2022; vLLM, Kwon
et al. 2023): every request gets exactly greedy's tokens (and transformers' own continuous
batching's), the allocator's block arithmetic, and the schedule's steps and latencies against
static batching."""
import pytest
from transformers import GenerationConfig

import workbench as wb
from conftest import random_llama
from workbench import LanguageModel, decoding
from workbench.efficiency import (PagedKVAllocator, Request, continuous_batching,
                                  padded_reservation, poisson_workload, serving_curve,
                                  simulate_serving, static_batching, use_growing_cache)

PROMPTS = ["Story:", "Q: 12+7*3-5\n", "Story: the cat sat. the cat", "Story: A dog",
           "Q: 3+4\n", "Story: the"]
BUDGETS = [12, 6, 20, 3, 9, 15]
ARRIVALS = [0, 0, 1, 2, 2, 5]


def workload():
    return [Request(i, p, n, a) for i, (p, n, a) in enumerate(zip(PROMPTS, BUDGETS, ARRIVALS))]


_REFS: dict = {}


def greedy_refs(lm) -> list:
    """``decoding.greedy`` on each request of the workload (computed once per model)."""
    if lm.name not in _REFS:
        _REFS[lm.name] = [decoding.greedy(lm, r.prompt, r.max_new_tokens) for r in workload()]
    return _REFS[lm.name]


def assert_same_as_greedy(lm, out):
    for req, gen, ref in zip(workload(), out.generations, greedy_refs(lm)):
        assert gen.token_ids == ref.token_ids
        assert gen.text == ref.text
        assert gen.finish_reason == ref.finish_reason
        assert (gen.end_logprob is None) == (ref.end_logprob is None)
        assert gen.logprob == pytest.approx(ref.logprob, abs=1e-4)
        assert gen.logprobs == pytest.approx(ref.logprobs, abs=1e-4)
        assert gen.proposal_logprob == 0.0
        assert gen.info["request"] == req.id and gen.info["arrival"] == req.arrival


@pytest.mark.parametrize("name", ["target", "tiny_lm"])
def test_every_request_gets_greedys_tokens(name, request):
    lm = request.getfixturevalue(name)
    settings = [dict(max_batch=3, num_blocks=40, block_size=4),
                dict(max_batch=6, num_blocks=11, block_size=4),     # blocks run short: waits
                dict(max_batch=2, num_blocks=64, block_size=1)]
    for kw in settings:
        assert_same_as_greedy(lm, continuous_batching(lm, workload(), **kw))
    assert_same_as_greedy(lm, static_batching(lm, workload(), batch_size=4))


def test_without_eos_and_with_growing_caches(target, tokenizer):
    """``eos=False`` decodes every budget out; caches that grow in place merge as well."""
    reqs = workload()[:3]
    out = continuous_batching(target, reqs, max_batch=2, num_blocks=40, block_size=4, eos=False)
    for req, gen in zip(reqs, out.generations):
        ref = decoding.greedy(target, req.prompt, req.max_new_tokens, eos=False)
        assert gen.token_ids == ref.token_ids and len(gen.token_ids) == req.max_new_tokens
        assert gen.finish_reason == "length"
    lm = use_growing_cache(LanguageModel(random_llama(tokenizer, seed=5), tokenizer, "grow"))
    out = continuous_batching(lm, workload(), max_batch=3, num_blocks=40, block_size=4)
    for req, gen in zip(workload(), out.generations):
        assert gen.token_ids == decoding.greedy(lm, req.prompt, req.max_new_tokens).token_ids


@pytest.mark.parametrize("name", ["target", "tiny_lm"])
def test_transformers_continuous_batching_gives_the_same_tokens(name, request):
    try:
        from transformers import ContinuousBatchingConfig
    except ImportError:   # transformers 5.0 (the lower bound) has generate_batch but not this
        pytest.skip("this transformers release has no ContinuousBatchingConfig")
    lm = request.getfixturevalue(name)
    reqs = [Request(i, p, 12, arrival=i) for i, p in enumerate(PROMPTS[:3])]
    ours = continuous_batching(lm, reqs, max_batch=2, num_blocks=24, block_size=4)
    theirs = lm.model.generate_batch(
        inputs=[lm.prompt_ids(r.prompt) for r in reqs],
        generation_config=GenerationConfig(max_new_tokens=12, do_sample=False,
                                           eos_token_id=lm.eos_token_id,
                                           pad_token_id=lm.pad_token_id),
        # a small paged cache: sized from free memory it takes a minute on a CPU
        continuous_batching_config=ContinuousBatchingConfig(
            num_blocks=16, page_size=16, max_batch_tokens=64, max_requests_per_batch=4),
        warmup=False)
    got = [theirs[f"req_{i}"].generated_tokens for i in range(len(reqs))]
    want = [g.token_ids + ([lm.eos_token_id] if g.finish_reason == "eos" else [])
            for g in ours.generations]                      # theirs include the EOS token
    assert got == want
    if name == "target":
        assert [g.finish_reason for g in ours.generations] == ["eos", "length", "eos"]


def test_the_allocator_counts_blocks_by_hand():
    alloc = PagedKVAllocator(num_blocks=8, block_size=4)
    assert [alloc.blocks_for(n) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    assert alloc.grow("a", 3) == [0]
    assert alloc.grow("b", 10) == [1, 2, 3]
    assert alloc.grow("c", 5) == [4, 5]
    assert (alloc.used_blocks, alloc.reserved_tokens, alloc.used_tokens) == (6, 24, 18)
    assert alloc.fragmentation == 6                         # 1 + 2 + 3 empty slots
    assert alloc.grow("a", 4) == [0] and alloc.used_blocks == 6     # still fits its block
    assert alloc.grow("a", 5) == [0, 6]                     # a new block, not contiguous
    assert alloc.free("b") == 3 and alloc.free_blocks == 4
    assert alloc.grow("d", 12) == [1, 2, 3]                 # freed blocks are reused
    assert alloc.grow("d", 13) == [1, 2, 3, 7] and alloc.free_blocks == 0
    with pytest.raises(MemoryError, match="needs 3 more blocks, 0 are free"):
        alloc.grow("e", 9)
    with pytest.raises(ValueError, match="request_id 'zz'"):
        alloc.free("zz")
    # the padded static batch of the same three requests (budgets 2, 8, 4)
    assert padded_reservation([3, 10, 5], [2, 8, 4]) == 3 * (10 + 8) == 54
    assert padded_reservation([3, 10, 5], 4) == 42


def test_bad_parameters_are_named():
    lm_free = [(lambda: PagedKVAllocator(0, 4), "num_blocks"),
               (lambda: PagedKVAllocator(4, 0), "block_size"),
               (lambda: PagedKVAllocator(4, 2.5), "block_size"),
               (lambda: padded_reservation([], 3), "prompt_lens"),
               (lambda: padded_reservation([3], -1), "max_new_tokens"),
               (lambda: simulate_serving([(0, 2, 3)], scheduler="fifo"), "scheduler"),
               (lambda: simulate_serving([(0, 0, 3)]), "prompt_len"),
               (lambda: simulate_serving([(0, 2, 3)], max_batch=0), "max_batch"),
               (lambda: poisson_workload(4, rate=0), "rate")]
    for call, name in lm_free:
        with pytest.raises(ValueError, match=name):
            call()


def test_bad_requests_are_named(target):
    ok = [Request(0, "Story:", 4)]
    cases = [(dict(requests=ok, max_batch=0), "max_batch"),
             (dict(requests=ok, num_blocks=0), "num_blocks"),
             (dict(requests=ok, block_size=0), "block_size"),
             (dict(requests=[]), "requests"),
             (dict(requests=[Request(0, "Story:", 0)]), "max_new_tokens"),
             (dict(requests=[Request(0, "Story:", 3, arrival=-1)]), "arrival"),
             (dict(requests=ok + ok), "distinct ids")]
    for kw, name in cases:
        with pytest.raises(ValueError, match=name):
            continuous_batching(target, **kw)
    with pytest.raises(ValueError, match="batch_size"):
        static_batching(target, ok, batch_size=0)
    # a request that can never fit: 2 prompt tokens + 7 new need 3 blocks of 4, only 2 exist
    with pytest.raises(ValueError, match=r"num_blocks=2 is too few for request 0.*3 blocks"):
        continuous_batching(target, [Request(0, "Story:", 7)], num_blocks=2, block_size=4)


def test_out_of_blocks_the_engine_waits(target):
    """Prompts of 3, 13, 10, 5, 8, 4 tokens and budgets 12, 6, 20, 3, 9, 15 have worst cases
    of 4, 5, 8, 2, 5, 5 blocks of 4.  With 9 blocks: 0 and 1 start (9); 2 (8) waits until
    both have left (steps 5 and 6); 3 and 4 (2 + 5) wait behind it, first come first served,
    and 5 (5 more would make 12) waits for 4."""
    out = continuous_batching(target, workload(), max_batch=6, num_blocks=9, block_size=4)
    assert_same_as_greedy(target, out)
    admitted = {rid: s.step for s in out.steps for rid in s.admitted}
    assert admitted == {0: 0, 1: 0, 2: 7, 3: 12, 4: 12, 5: 21}
    assert max(s.blocks_used for s in out.steps) == 7             # of 9
    assert all(s.waiting > 0 for s in out.steps[:21])
    assert out.num_steps == 27


def test_continuous_beats_static_on_a_mixed_workload(target):
    with wb.trace() as t:
        cont = continuous_batching(target, workload(), max_batch=3, num_blocks=40, block_size=4)
    stat = static_batching(target, workload(), batch_size=3)
    # greedy ends: requests 0 and 2 and 5 on EOS after 6, 4, 5 tokens, the others at budget
    assert [len(g.token_ids) for g in cont.generations] == [6, 6, 4, 3, 9, 5]
    assert (cont.num_steps, stat.num_steps) == (15, 17)
    assert cont.latencies == [7, 6, 5, 7, 13, 8] and cont.mean_latency == 46 / 6
    assert stat.latencies == [8, 8, 7, 15, 15, 12] and stat.mean_latency == 65 / 6
    assert (cont.mean_ttft, stat.mean_ttft) == (16 / 6, 23 / 6)
    # memory: paged blocks on demand vs the padded reservation of each static batch
    assert cont.peak_reserved_tokens == 44 and max(s.blocks_used for s in cont.steps) == 11
    assert stat.peak_reserved_tokens == 99 == padded_reservation([3, 13, 10], [12, 6, 20])
    assert all(s.reserved_tokens - s.used_tokens < 4 * s.batch for s in cont.steps
               if s.batch)                                  # < one block per request
    # compute: continuous prefills in more passes, static decodes finished rows' padding
    assert (cont.cost.forward_passes, stat.cost.forward_passes) == (18, 16)
    assert (cont.cost.computed_tokens, stat.cost.computed_tokens) == (73, 85)
    assert [s.batch for s in cont.steps] == [2, 3, 3, 3, 3, 1, 2, 3, 2, 2, 2, 2, 1, 1, 0]
    events = t.of("batch_step")
    assert len(events) == 15 and events[0]["admitted"] == [0, 1]
    assert sum(len(e["tokens"]) for e in events) == 6 + 6 + 4 + 3 + 9 + 5 + 3    # 3 EOS
    assert sum(g.cost.forward_passes for g in cont.generations) == 18      # booked once


def test_the_serving_simulation_by_hand():
    work = [(0, 2, 3), (0, 2, 1), (1, 4, 2)]
    cont = simulate_serving(work, "continuous", max_batch=2, a=1.0, b=0.5)
    stat = simulate_serving(work, "static", max_batch=2, a=1.0, b=0.5)
    # continuous: step 1 prefills 0 and 1 (4 tokens, 3.0): 1 is done at 3; step 2 prefills 2
    # and decodes 0 (5 tokens, 3.5); step 3 decodes 0 and 2 (2 tokens, 2.0): done at 8.5
    assert cont["mean_latency"] == pytest.approx((8.5 + 3 + 7.5) / 3)
    assert cont["throughput"] == pytest.approx(6 / 8.5)
    # static: batch {0, 1}: prefill 2·2 tokens (3.0), 2 decode steps of 2 rows (2.0 each),
    # done at 7; batch {2}: prefill 4 tokens (3.0), 1 decode step (1.5): done at 11.5
    assert stat["mean_latency"] == pytest.approx((7 + 7 + 10.5) / 3)
    assert stat["throughput"] == pytest.approx(6 / 11.5)
    assert poisson_workload(5, 0.5, seed=3) == poisson_workload(5, 0.5, seed=3)
    curve = serving_curve([0.05, 0.2, 1.0], n=60, max_batch=4, seed=1)
    assert curve == serving_curve([0.05, 0.2, 1.0], n=60, max_batch=4, seed=1)
    for lo, hi in zip(curve[0::2], curve[1::2]):       # (static, continuous) per rate
        assert (lo["scheduler"], hi["scheduler"]) == ("static", "continuous")
        assert hi["mean_latency"] < lo["mean_latency"]
        assert hi["throughput"] >= lo["throughput"]
