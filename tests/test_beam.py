"""Beam search (same tokens and scores as HF generate) and exact MAP search (vs brute force)."""
import itertools
import math

import pytest
import torch

import workbench as wb
from workbench import decoding

PROMPTS = ["Story: The little", "Q: 12+7*3-5\n", "Review:"]


def toy_lm(seed=0, scale=40.0):
    """A random Llama over an 8-token vocabulary (pad, BOS, EOS, a..e): EOS is frequent and
    every sequence can be enumerated."""
    from conftest import random_llama
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    words = ["<pad>", "<s>", "</s>", "a", "b", "c", "d", "e"]
    t = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t.decoder = decoders.WordPiece()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>")
    model = random_llama(tok, seed=seed, hidden=16, heads=2)
    with torch.no_grad():
        model.lm_head.weight.mul_(scale)
    return wb.LanguageModel(model, tok, name=f"toy-{seed}")


@pytest.fixture(scope="module")
def sharp_lm(tokenizer):
    """The TinyWorld-vocabulary random model with peaked next-token distributions."""
    from conftest import random_llama
    model = random_llama(tokenizer, seed=3)
    with torch.no_grad():
        model.lm_head.weight.mul_(30.0)
    return wb.LanguageModel(model, tokenizer, name="sharp")


@pytest.fixture(scope="module")
def toys():
    return [toy_lm(s) for s in range(3)]


def hf_beams(lm, ids, **kw):
    out = lm.model.generate(torch.tensor([ids]),
                            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                            do_sample=False, output_scores=True, return_dict_in_generate=True,
                            pad_token_id=lm.pad_token_id, **kw)
    res = []
    for i in range(out.sequences.shape[0]):
        n = int((out.beam_indices[i] != -1).sum())
        res.append((out.sequences[i, len(ids):len(ids) + n].tolist(),
                    float(out.sequences_scores[i])))
    return res


def ours_beams(lm, ids, **kw):
    r = decoding.beam_search(lm, ids, **kw)
    return r, [(h.token_ids + ([lm.eos_token_id] if h.finish_reason == "eos" else []), h.score)
               for h in r.hypotheses]


def assert_same(lm, ids, **kw):
    ref = hf_beams(lm, ids, num_beams=kw["num_beams"],
                   num_return_sequences=kw.get("num_return_sequences") or kw["num_beams"],
                   max_new_tokens=kw["max_new_tokens"], length_penalty=kw["length_penalty"],
                   early_stopping=kw["early_stopping"])
    r, got = ours_beams(lm, ids, **kw)
    assert [g[0] for g in got] == [x[0] for x in ref], kw
    assert [g[1] for g in got] == pytest.approx([x[1] for x in ref], rel=1e-5, abs=1e-5), kw
    return r


CASES = list(itertools.product([2, 4], [1.0, 0.0, -0.7, 2.0], [False, True, "never"]))


@pytest.mark.parametrize("num_beams, length_penalty, early_stopping", CASES)
def test_beam_search_equals_hf_generate(tiny_lm, sharp_lm, num_beams, length_penalty,
                                        early_stopping):
    for lm, prompt in [(tiny_lm, PROMPTS[0]), (sharp_lm, PROMPTS[1]), (sharp_lm, PROMPTS[2])]:
        assert_same(lm, lm.encode(prompt), num_beams=num_beams, length_penalty=length_penalty,
                    early_stopping=early_stopping, max_new_tokens=10)


@pytest.mark.parametrize("num_beams, length_penalty, early_stopping",
                         list(itertools.product([2, 3, 5], [1.0, -1.0, 3.0],
                                                [False, True, "never"])))
def test_beam_search_equals_hf_when_eos_is_frequent(toys, num_beams, length_penalty,
                                                    early_stopping):
    finished_early = 0
    for lm, ids in itertools.product(toys, [[1, 3], [1, 5, 4, 7]]):
        r = assert_same(lm, ids, num_beams=num_beams, length_penalty=length_penalty,
                        early_stopping=early_stopping, max_new_tokens=7)
        finished_early += any(h.finish_reason == "eos" for h in r.hypotheses)
    assert finished_early > 0


def test_num_return_sequences(sharp_lm, toys):
    for lm, ids in [(sharp_lm, sharp_lm.encode(PROMPTS[0])), (toys[1], [1, 4])]:
        r = assert_same(lm, ids, num_beams=4, num_return_sequences=2, length_penalty=1.0,
                        early_stopping=False, max_new_tokens=8)
        assert len(r.hypotheses) == 2
        scores = [h.score for h in r.hypotheses]
        assert scores == sorted(scores, reverse=True)


def test_hypothesis_scores_and_logprobs_are_consistent(toys):
    lm = toys[2]
    r = decoding.beam_search(lm, [1, 6], num_beams=3, length_penalty=0.8, max_new_tokens=6)
    for h in r.hypotheses:
        full = h.token_ids + ([lm.eos_token_id] if h.finish_reason == "eos" else [])
        assert h.length == len(full)
        assert h.score == pytest.approx(h.seq_logprob / len(full) ** 0.8, abs=1e-5)
        ref = lm.token_logprobs([1, 6], [full])[0]
        assert h.seq_logprob == pytest.approx(sum(ref), abs=1e-4)
        assert h.logprobs == pytest.approx(ref[:len(h.token_ids)], abs=1e-4)
        assert h.text == lm.decode(h.token_ids)


def test_tree_records_every_candidate(toys):
    lm = toys[0]
    with wb.trace() as t:
        r = decoding.beam_search(lm, [1, 3], num_beams=3, max_new_tokens=6)
    steps = r.params["steps"]
    assert len(r.tree) == 1 + 6 * steps            # the root + 2 * num_beams candidates a step
    assert {n.status for n in r.tree} <= {"kept", "pruned", "finished"}
    assert any(n.status == "pruned" for n in r.tree)
    for n in r.tree[1:]:
        parent = r.tree[n.parent]
        assert parent.id < n.id and parent.step == n.step - 1 and parent.status == "kept"
        assert n.cum_logprob == pytest.approx(parent.cum_logprob + n.logprob, abs=1e-4)
    for i, h in enumerate(r.hypotheses):
        node = r.tree[h.node]
        assert node.status == "finished" and node.rank == i and node.score == h.score
        toks = [r.tree[j].token for j in r.path(h.node)[1:]]
        assert toks[:len(h.token_ids)] == h.token_ids
    for step in range(1, steps):
        assert sum(n.status == "kept" for n in r.tree if n.step == step) == 3
    kinds = t.kinds()
    assert kinds["beam_step"] == steps and kinds["beam_done"] == 1
    kept = {n for e in t.of("beam_step") for n in e["kept"]}
    assert kept == {n.id for n in r.tree[1:] if n.status == "kept"}   # the root aside
    assert kinds["beam_finish"] >= 3
    assert kinds["beam_expand"] >= steps
    assert {e["node"] for e in t.of("beam_expand")} <= {n.id for n in r.tree if n.status == "kept"}


def test_beam_search_uses_the_kv_cache(sharp_lm):
    ids = sharp_lm.encode(PROMPTS[0])
    r = decoding.beam_search(sharp_lm, ids, num_beams=4, max_new_tokens=9)
    steps = r.params["steps"]
    assert r.cost.forward_passes == steps
    assert r.cost.computed_tokens == len(ids) + 4 * (steps - 1)
    assert r.cost.input_tokens == len(ids) and r.cost.calls == 1


def test_beam_search_stop_strings_and_max_tokens(sharp_lm):
    free = decoding.beam_search(sharp_lm, PROMPTS[0], num_beams=2, max_new_tokens=12)
    assert all(len(h.token_ids) <= 12 for h in free.hypotheses)
    assert max(n.step for n in free.tree) <= 12
    stop = free.text[1:3]
    r = decoding.beam_search(sharp_lm, PROMPTS[0], num_beams=2, max_new_tokens=12, stop=stop)

    def text(node_id):
        return sharp_lm.decode([r.tree[j].token for j in r.path(node_id)[1:]],
                               skip_special_tokens=False)
    stopped = [n for n in r.tree if n.reason == "stop"]
    assert stopped and all(stop in text(n.id) for n in stopped)
    assert not any(stop in text(n.id) for n in r.tree if n.status == "kept")


@pytest.mark.parametrize("kw, name", [
    (dict(num_beams=0), "num_beams"), (dict(length_penalty=float("nan")), "length_penalty"),
    (dict(early_stopping="sometimes"), "early_stopping"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
    (dict(max_new_tokens=0), "max_new_tokens"),
])
def test_beam_search_bad_arguments(tiny_lm, kw, name):
    with pytest.raises(ValueError, match=name):
        decoding.beam_search(tiny_lm, "Story:", **kw)


# -- exact MAP ----------------------------------------------------------------------------
def brute_force_map(lm, ids, T):
    """The most probable sequence ending in EOS within T tokens or of length T, by enumeration."""
    best, frontier = (-math.inf, None), [([], 0.0)]
    for depth in range(T):
        logp = lm.next_logprobs([ids + toks for toks, _ in frontier])
        new = []
        for (toks, lp), row in zip(frontier, logp.tolist()):
            for t, v in enumerate(row):
                if t == lm.eos_token_id or depth == T - 1:
                    best = max(best, (lp + v, toks + [t]), key=lambda x: x[0])
                else:
                    new.append((toks + [t], lp + v))
        frontier = new
    return best


@pytest.mark.parametrize("T", [1, 3, 4])
def test_exact_map_equals_brute_force(toys, T):
    beats_greedy = 0
    for lm, ids in itertools.product(toys, [[1, 3], [1, 7, 5]]):
        lp, toks = brute_force_map(lm, ids, T)
        r = decoding.exact_map(lm, ids, max_new_tokens=T)
        full = r.token_ids + ([lm.eos_token_id] if r.finish_reason == "eos" else [])
        assert r.optimal and r.seq_logprob == pytest.approx(lp, abs=1e-4)
        assert full == toks
        greedy = decoding.beam_search(lm, ids, num_beams=1, max_new_tokens=T)
        beam = decoding.beam_search(lm, ids, num_beams=3, length_penalty=0.0, max_new_tokens=T)
        assert r.seq_logprob >= max(greedy.best.seq_logprob, beam.best.seq_logprob) - 1e-5
        beats_greedy += r.seq_logprob > greedy.best.seq_logprob + 1e-4
    if T > 1:
        assert beats_greedy > 0          # the search finds sequences greedy decoding misses


def test_exact_map_budget(toys):
    lm = toys[2]
    full = decoding.exact_map(lm, [1, 3], max_new_tokens=8)
    assert full.optimal and full.nodes_expanded > 10
    with pytest.raises(decoding.SearchBudgetExceeded, match="node_budget") as err:
        decoding.exact_map(lm, [1, 3], max_new_tokens=8, node_budget=2)
    assert err.value.result.optimal is False and err.value.result.nodes_expanded == 2
    r = decoding.exact_map(lm, [1, 3], max_new_tokens=8, node_budget=2, raise_on_budget=False)
    assert not r.optimal and r.cost.forward_passes == 3
    assert full.seq_logprob >= r.seq_logprob
    with pytest.raises(ValueError, match="node_budget"):
        decoding.exact_map(lm, [1, 3], node_budget=-1)


def test_exact_map_on_an_untrained_model_is_the_empty_sequence(tiny_lm):
    """Stahlberg & Byrne's finding in miniature: with flat next-token distributions the single
    EOS token beats every longer sequence."""
    with wb.trace() as t:
        r = decoding.exact_map(tiny_lm, "Story:", max_new_tokens=3, node_budget=2000)
    assert r.optimal and r.token_ids == [] and r.finish_reason == "eos"
    first = tiny_lm.next_logprobs("Story:")[0]
    assert r.seq_logprob == pytest.approx(float(first[tiny_lm.eos_token_id]), abs=1e-5)
    assert r.nodes_expanded == int((first > first[tiny_lm.eos_token_id]).sum())
    assert t.kinds()["map_expand"] == r.nodes_expanded


def test_beam_search_equals_hf_on_the_embedded_model():
    try:
        lm = wb.load("tinyworld", device="cpu")
    except wb.ModelNotAvailable:
        pytest.skip("the embedded tinyworld model is not trained yet")
    for prompt, kw in [("Story: The", dict(num_beams=4, length_penalty=1.0, early_stopping=False)),
                       ("Review: The soup", dict(num_beams=3, length_penalty=0.0,
                                                 early_stopping=True)),
                       ("Q: 12+7*3-5\n", dict(num_beams=2, length_penalty=2.0,
                                              early_stopping="never"))]:
        assert_same(lm, lm.encode(prompt), max_new_tokens=24, **kw)
