import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import workbench as wb
from workbench import decoding
from workbench.models import LanguageModel, output_cache

PROMPTS = ["Q: 12+7*3-5\n", "Story: The little", "JSON: {\"name\": \"Ada\"", "Review:"]


def full_logits(lm, ids):
    with torch.no_grad():
        return lm.model(input_ids=torch.tensor([ids])).logits[0].float()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_next_logits_equal_hf_forward(tiny_lm, prompt):
    ids = tiny_lm.encode(prompt)
    ours = tiny_lm.next_logits(prompt)[0]
    assert torch.allclose(ours, full_logits(tiny_lm, ids)[-1], atol=1e-5)


def test_batched_prefixes_with_padding_equal_unbatched(tiny_lm):
    batched = tiny_lm.next_logits(PROMPTS)
    for i, p in enumerate(PROMPTS):
        single = full_logits(tiny_lm, tiny_lm.encode(p))[-1]
        assert torch.allclose(batched[i], single, atol=1e-4), p


def _decode_and_compare(lm, state, steps, atol=1e-4):
    for _ in range(steps):
        tok = state.logits.argmax(-1)
        lm.advance(state, tok)
        for r in range(state.batch_size):
            ref = full_logits(lm, state.ids[r])[-1]
            assert torch.allclose(state.logits[r], ref, atol=atol)


def test_incremental_decoding_matches_recompute(tiny_lm):
    _decode_and_compare(tiny_lm, tiny_lm.prefill(PROMPTS[0]), 8)


def test_incremental_decoding_after_padding_in_a_batch(tiny_lm):
    _decode_and_compare(tiny_lm, tiny_lm.prefill(PROMPTS), 6)


def test_expanded_cache_rows_diverge_correctly(tiny_lm):
    state = tiny_lm.prefill(PROMPTS[1], n=4)
    assert state.batch_size == 4
    tiny_lm.advance(state, torch.tensor([5, 6, 7, 8]))  # different token per row
    for r in range(4):
        assert torch.allclose(state.logits[r], full_logits(tiny_lm, state.ids[r])[-1], atol=1e-4)
    _decode_and_compare(tiny_lm, state, 4)


def test_expanding_shares_the_prefix_compute(tiny_lm):
    snap = tiny_lm.counter.snapshot()
    tiny_lm.prefill(PROMPTS[0], n=16)
    cost = tiny_lm.counter.since(snap)
    assert cost.forward_passes == 1
    assert cost.computed_tokens == len(tiny_lm.encode(PROMPTS[0]))


def test_costs_measured_in_threads_sharing_a_model_are_their_own(tiny_lm):
    """The counter is per thread (a sweep with --concurrency runs methods in threads on one
    model): each greedy decode costs what it costs alone, the totals add every thread's."""
    prompts = ["Q: 1+2\n", "Story:", "Q: 12*3\n", "The"] * 2
    alone = [decoding.greedy(tiny_lm, p, max_new_tokens=12).cost for p in prompts]
    before = tiny_lm.counter.forward_passes
    barrier = threading.Barrier(4)

    def run(p):
        barrier.wait()  # the four threads decode at once
        return decoding.greedy(tiny_lm, p, max_new_tokens=12).cost
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(run, prompts))
    assert together == alone
    assert tiny_lm.counter.forward_passes - before == sum(c.forward_passes for c in alone)


def test_select_copies_and_keeps_parent_usable(tiny_lm):
    parent = tiny_lm.prefill(PROMPTS[1])
    child = parent.select([0, 0])
    tiny_lm.advance(child, torch.tensor([10, 11]))
    tiny_lm.advance(parent, torch.tensor([12]))
    assert torch.allclose(parent.logits[0], full_logits(tiny_lm, parent.ids[0])[-1], atol=1e-4)
    assert torch.allclose(child.logits[1], full_logits(tiny_lm, child.ids[1])[-1], atol=1e-4)


def test_extend_and_rewind(tiny_lm):
    state = tiny_lm.prefill(PROMPTS[0])
    ids0 = list(state.ids[0])
    logits = tiny_lm.extend(state, [20, 21, 22])
    ref = full_logits(tiny_lm, state.ids[0])
    assert torch.allclose(logits, ref[-3:], atol=1e-4)
    tiny_lm.rewind(state, 2)
    assert state.ids[0] == ids0 + [20]
    assert torch.allclose(state.logits[0], full_logits(tiny_lm, state.ids[0])[-1], atol=1e-4)
    _decode_and_compare(tiny_lm, state, 3)


def test_sequence_logprob_is_sum_of_token_logprobs(tiny_lm):
    conts = [" The cat slept.", " A dog", "\n"]
    per_token = tiny_lm.token_logprobs("Story:", conts)
    totals = tiny_lm.score("Story:", conts)
    for lps, tot, c in zip(per_token, totals, conts):
        assert math.isclose(sum(lps), tot, rel_tol=1e-6)
        ids = tiny_lm.encode("Story:" + c) if c != "\n" else tiny_lm.encode("Story:") + \
            tiny_lm.encode(c, bos=False)
        lp = torch.log_softmax(full_logits(tiny_lm, ids), -1)
        n = len(lps)
        ref = [float(lp[len(ids) - n - 1 + j, ids[len(ids) - n + j]]) for j in range(n)]
        assert lps == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_hf_generate(tiny_lm, prompt):
    ids = tiny_lm.encode(prompt)
    ours = decoding.greedy(tiny_lm, prompt, max_new_tokens=20)
    ref = tiny_lm.model.generate(torch.tensor([ids]), max_new_tokens=20, do_sample=False,
                                 attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 pad_token_id=tiny_lm.pad_token_id)[0, len(ids):].tolist()
    if tiny_lm.eos_token_id in ref:
        ref = ref[:ref.index(tiny_lm.eos_token_id)]
    assert ours.token_ids == ref
    assert ours.cost.output_tokens == len(ref)
    assert ours.cost.input_tokens == len(ids)


def test_generation_result_fields(tiny_lm):
    g = decoding.greedy(tiny_lm, "Story:", max_new_tokens=5)
    assert g.text == tiny_lm.decode(g.token_ids)
    assert len(g.logprobs) == len(g.token_ids)
    assert g.finish_reason in ("eos", "length", "stop")
    assert g.cost.forward_passes >= 1


def test_same_seed_same_samples_different_seed_differs(tiny_lm):
    a = [g.token_ids for g in decoding.sample(tiny_lm, "Story:", seed=3, n=4, max_new_tokens=12)]
    b = [g.token_ids for g in decoding.sample(tiny_lm, "Story:", seed=3, n=4, max_new_tokens=12)]
    c = [g.token_ids for g in decoding.sample(tiny_lm, "Story:", seed=4, n=4, max_new_tokens=12)]
    assert a == b and a != c


def test_torch_generator_as_seed(tiny_lm):
    g1 = torch.Generator().manual_seed(9)
    g2 = torch.Generator().manual_seed(9)
    assert decoding.sample(tiny_lm, "Story:", seed=g1, max_new_tokens=8).token_ids == \
        decoding.sample(tiny_lm, "Story:", seed=g2, max_new_tokens=8).token_ids


def test_stop_strings(tiny_lm):
    free = decoding.greedy(tiny_lm, "Story:", max_new_tokens=30)
    if len(free.text) < 4:
        pytest.skip("random model stopped too early")
    stop = free.text[2:4]
    g = decoding.greedy(tiny_lm, "Story:", max_new_tokens=30, stop=stop)
    assert g.finish_reason == "stop" and stop in g.text and len(g.token_ids) <= len(free.token_ids)


@pytest.mark.parametrize("bad, match", [
    (dict(prompt=""), "empty"), (dict(prompt=[]), "empty"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
    (dict(prompt="Story:" + " The cat" * 200), "context"),
    (dict(prompt=[10**6]), "vocabulary"),
])
def test_bad_inputs_raise_clear_errors(tokenizer, bad, match):
    from conftest import random_llama
    lm = wb.LanguageModel(random_llama(tokenizer), tokenizer)
    if bad.get("prompt") == "":
        # this tokenizer starts every text with BOS, so "" is a valid (BOS-only) prompt;
        # a tokenizer without BOS must refuse it
        lm._adds_bos = False
    kw = {"prompt": "Story:", "max_new_tokens": 4, **bad}
    with pytest.raises(ValueError, match=match):
        decoding.greedy(lm, kw["prompt"], max_new_tokens=kw["max_new_tokens"])


def test_unknown_model_name_raises_clear_error():
    with pytest.raises(wb.ModelNotAvailable, match="embedded"):
        wb.load("tinyworld-does-not-exist")


@pytest.mark.serial
def test_missing_hub_model_fails_fast_offline(monkeypatch):
    import time
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(wb.ModelNotAvailable, match="hf download"):
        wb.load("some-org/model-that-is-not-cached")
    assert time.time() - t0 < 10


def test_local_path_model_loads(tmp_path, tokenizer):
    from conftest import random_llama
    m = random_llama(tokenizer, seed=1)
    m.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = wb.load(str(tmp_path), device="cpu")
    ids = lm.encode("Story:")
    with torch.no_grad():
        ref = m(input_ids=torch.tensor([ids])).logits[0, -1]
    assert torch.allclose(lm.next_logits("Story:")[0], ref, atol=1e-5)


def test_device_and_dtype_selection_without_a_gpu(monkeypatch):
    """cuda, then mps, then cpu; a Hub model on a GPU in bfloat16 (float16 where bf16 is not
    supported), embedded models in float32 everywhere.  No device is needed: the checks torch
    answers are replaced."""
    import torch

    from workbench.loading import default_dtype
    from workbench.models import pick_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda" and pick_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert default_dtype(torch.device("cuda"), embedded=False) == torch.bfloat16
    assert default_dtype(torch.device("cuda"), embedded=True) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert default_dtype(torch.device("cuda"), embedded=False) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"
    assert default_dtype(torch.device("cpu"), embedded=False) == torch.float32


class _Poisoned(torch.nn.Module):
    """A causal LM whose logits turn NaN once the sequence reaches ``at`` tokens."""

    def __init__(self, inner, at):
        super().__init__()
        self.inner, self.config, self.at = inner, inner.config, at

    def forward(self, input_ids, **kw):
        out = self.inner(input_ids=input_ids, **kw)
        cache = output_cache(out)
        seen = cache.get_seq_length()
        for j in range(input_ids.shape[1]):
            if seen - input_ids.shape[1] + j >= self.at:
                out.logits[:, j] = float("nan")
        return out


def test_non_finite_logits_stop_decoding_with_the_model_and_position(tiny_lm):
    lm = LanguageModel(_Poisoned(tiny_lm.model, at=6), tiny_lm.tokenizer, name="poisoned")
    prompt = [tiny_lm.bos_token_id, 5, 6]
    with pytest.raises(FloatingPointError, match=r"'poisoned'.*position 6 .*float32"):
        decoding.sample(lm, prompt, seed=0, max_new_tokens=10)
    with pytest.raises(FloatingPointError, match="position 6"):
        decoding.greedy(lm, prompt, max_new_tokens=10)
    assert len(decoding.greedy(lm, prompt, max_new_tokens=3).token_ids) == 3  # up to position 5
