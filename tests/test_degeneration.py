"""Contrastive search and diverse beam search (`workbench.degeneration`), and the repetition
measures of `workbench.measures`.

transformers no longer ships either algorithm in core (both moved to Hub ``custom_generate``
repositories), so the references are written here: contrastive search against a slow
brute-force search that recomputes every candidate's whole sequence without a cache, diverse
beam search against `decoding.beam_search` (itself tested against HF ``generate``) where the
two must agree, and against a brute-force step where they must not."""
import math

import numpy as np
import pytest
import torch

import workbench as wb
from workbench import decoding, degeneration as dg
from workbench.measures import distinct_n, loop_period, repeated_ngrams

PROMPTS = ["Story:", "Story: A", "Story: The little", "Story: An", "Story: The dragon",
           "Story: The girl found", "Review:", "Review: The service was"]


@pytest.fixture(scope="module")
def gpt2_lm(tokenizer):
    """A small randomly initialised GPT-2 (learned positions, LayerNorm, tied embeddings)."""
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=48, n_layer=2, n_head=4,
                     bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return wb.LanguageModel(GPT2LMHeadModel(cfg).eval(), tokenizer, name="random-gpt2")


# -- contrastive search ---------------------------------------------------------------------------
def brute_force_contrastive(lm, prompt, top_k, alpha, steps):
    """Su et al.'s rule, recomputing prefix + candidate from scratch (no cache) for every
    candidate, straight through the HF model."""
    ids = lm.encode(prompt)
    out = []
    with torch.no_grad():
        for _ in range(steps):
            probs = torch.softmax(lm.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
            p, cand = probs.topk(top_k)
            scores = []
            for pv, v in zip(p.tolist(), cand.tolist()):
                h = lm.model(input_ids=torch.tensor([ids + [v]]),
                             output_hidden_states=True).hidden_states[-1][0].float()
                cos = torch.nn.functional.cosine_similarity(h[-1:], h[:-1], dim=-1)
                scores.append((1 - alpha) * pv - alpha * float(cos.max()))
            best = cand[int(np.argmax(scores))].item()
            ids.append(best)
            out.append(best)
    return out


@pytest.mark.parametrize("which", ["tiny_lm", "gpt2_lm", "target"])
def test_contrastive_search_matches_the_brute_force_rule(which, request):
    lm = request.getfixturevalue(which)
    for prompt, k, alpha in (("Story:", 4, 0.6), ("Review: The", 6, 0.4)):
        got = dg.contrastive_search(lm, prompt, top_k=k, alpha=alpha, max_new_tokens=12,
                                    eos=False)
        assert got.token_ids == brute_force_contrastive(lm, prompt, k, alpha, 12)


def test_contrastive_search_differs_from_greedy_where_the_penalty_bites(target):
    greedy = decoding.greedy(target, "Story:", max_new_tokens=40, eos=False)
    cs = dg.contrastive_search(target, "Story:", top_k=4, alpha=0.6, max_new_tokens=40, eos=False)
    assert cs.token_ids != greedy.token_ids
    assert repeated_ngrams(cs.token_ids) < repeated_ngrams(greedy.token_ids)


@pytest.mark.parametrize("which", ["tiny_lm", "gpt2_lm", "target"])
def test_alpha_zero_or_one_candidate_is_greedy(which, request):
    lm = request.getfixturevalue(which)
    for prompt in ("Story:", "Review: The service was"):
        greedy = decoding.greedy(lm, prompt, max_new_tokens=20)
        for kw in (dict(top_k=5, alpha=0.0), dict(top_k=1, alpha=0.6)):
            out = dg.contrastive_search(lm, prompt, max_new_tokens=20, **kw)
            assert out.token_ids == greedy.token_ids and out.finish_reason == greedy.finish_reason
            assert out.text == greedy.text
            assert out.logprobs == pytest.approx(greedy.logprobs, abs=1e-5)


def test_contrastive_search_cost_and_events(target):
    snap = target.counter.snapshot()
    with wb.trace() as t:
        out = dg.contrastive_search(target, "Story:", top_k=3, alpha=0.5, max_new_tokens=10,
                                    eos=False)
    steps = t.of("contrastive_step")
    L = len(target.encode("Story:"))
    assert len(steps) == 10 and [e["token"] for e in steps] == out.token_ids
    assert all(len(e["candidates"]) == len(e["probs"]) == len(e["penalties"]) == 3
               for e in steps)
    assert all(e["probs"] == sorted(e["probs"], reverse=True) for e in steps)
    chosen = [(1 - 0.5) * p - 0.5 * c for e in steps
              for p, c, v in zip(e["probs"], e["penalties"], e["candidates"]) if v == e["token"]]
    best = [max((1 - 0.5) * p - 0.5 * c for p, c in zip(e["probs"], e["penalties"]))
            for e in steps]
    assert chosen == pytest.approx(best)
    assert out.cost.forward_passes == 11 == target.counter.since(snap).forward_passes
    assert out.cost.computed_tokens == L + 3 * 10
    assert (out.cost.input_tokens, out.cost.output_tokens, out.cost.calls) == (L, 10, 1)
    assert out.info == {"top_k": 3, "alpha": 0.5}


def test_contrastive_search_stops_at_eos(target):
    out = dg.contrastive_search(target, "Story:", top_k=4, alpha=0.6, max_new_tokens=40)
    assert out.finish_reason == "eos" and target.eos_token_id not in out.token_ids
    assert dg.contrastive_search(target, "Story:", max_new_tokens=0).token_ids == []


def test_degeneration_penalty_is_the_largest_cosine():
    g = torch.Generator().manual_seed(0)
    cands, ctx = torch.randn(3, 8, generator=g), torch.randn(5, 8, generator=g)
    want = [max(float(torch.dot(c, h) / (c.norm() * h.norm())) for h in ctx) for c in cands]
    assert dg.degeneration_penalty(cands, ctx).tolist() == pytest.approx(want, abs=1e-6)
    assert dg.degeneration_penalty(ctx[:1], ctx).item() == pytest.approx(1.0)


@pytest.mark.parametrize("kw, name", [(dict(alpha=-0.1), "alpha"), (dict(alpha=1.5), "alpha"),
                                      (dict(alpha=math.nan), "alpha"), (dict(top_k=0), "top_k"),
                                      (dict(top_k=2.0), "top_k"),
                                      (dict(max_new_tokens=-1), "max_new_tokens")])
def test_contrastive_search_refuses_bad_parameters(target, kw, name):
    with pytest.raises(ValueError, match=name):
        dg.contrastive_search(target, "Story:", **kw)


# -- diverse beam search --------------------------------------------------------------------------
def _same_search(a, b, tol=0.0):
    """Two BeamSearchResults with the same hypotheses and tree, and the same scores (within
    ``tol``: a forward pass over another number of rows rounds differently in float32)."""
    assert [h.token_ids for h in a.hypotheses] == [h.token_ids for h in b.hypotheses]
    assert [h.finish_reason for h in a.hypotheses] == [h.finish_reason for h in b.hypotheses]
    for key in ("score", "seq_logprob"):
        assert [getattr(h, key) for h in a.hypotheses] == pytest.approx(
            [getattr(h, key) for h in b.hypotheses], abs=tol, rel=0)
    pairs = [(n.as_dict(), m.as_dict()) for n, m in zip(a.tree, b.tree)]
    assert len(a.tree) == len(b.tree) and all(
        {k: v for k, v in n.items() if k not in ("logprob", "cum_logprob", "score")} ==
        {k: v for k, v in m.items() if k not in ("logprob", "cum_logprob", "score")}
        for n, m in pairs)
    for key in ("logprob", "cum_logprob"):
        assert [n[key] for n, _ in pairs] == pytest.approx([m[key] for _, m in pairs], abs=tol,
                                                          rel=0)


@pytest.mark.parametrize("kw", [dict(), dict(length_penalty=0.0), dict(early_stopping=True),
                                dict(early_stopping="never", length_penalty=2.0),
                                dict(eos=False, max_new_tokens=8)])
def test_one_group_is_beam_search(target, tiny_lm, kw):
    for lm, prompt in ((target, "Story:"), (target, "Review: The"), (tiny_lm, "Story:")):
        args = dict(num_beams=4, max_new_tokens=12) | kw
        one = dg.diverse_beam_search(lm, prompt, num_groups=1, diversity_penalty=3.0, **args)
        _same_search(one.groups[0], decoding.beam_search(lm, prompt, **args))


def test_no_penalty_makes_every_group_the_same_narrow_beam_search(target):
    """lambda = 0 with G groups is G copies of beam search of width B/G: the same tokens and
    trees; the scores agree to float32 rounding (one group alone is exact, above)."""
    for prompt in ("Story:", "Review:"):
        res = dg.diverse_beam_search(target, prompt, num_beams=6, num_groups=3,
                                     diversity_penalty=0.0, max_new_tokens=16)
        narrow = decoding.beam_search(target, prompt, num_beams=2, max_new_tokens=16)
        for group in res.groups:       # 6 rows per pass instead of 2: float32 rounding only
            _same_search(group, narrow, tol=1e-5)


@pytest.mark.parametrize("which, lam, moved", [("tiny_lm", 0.7, True), ("target", 0.05, False),
                                               ("target", 2.0, True)])
def test_one_step_of_penalised_selection_by_brute_force(which, lam, moved, request):
    """Steps 0 and 1 of 2 groups x 2 beams, recomputed token by token over the vocabulary."""
    lm, prompt = request.getfixturevalue(which), "Story: The"
    with wb.trace() as t:
        dg.diverse_beam_search(lm, prompt, num_beams=4, num_groups=2, diversity_penalty=lam,
                               max_new_tokens=4, eos=False)
    ev = {(e["t"], e["group"]): e for e in t.of("diverse_step")}
    p_ids = lm.encode(prompt)
    beams = {g: [([], 0.0)] for g in (0, 1)}          # (tokens, running score) per beam
    for step in (0, 1):
        counts = {}
        for g in (0, 1):
            scored = []
            for toks, score in beams[g]:
                lp = torch.log_softmax(lm.next_logits([p_ids + toks])[0].float(), -1).tolist()
                scored += [(score + lp[v] - lam * counts.get(v, 0), toks + [v])
                           for v in range(len(lp))]
            scored.sort(key=lambda s: -s[0])
            kept = scored[:2]
            assert ev[step, g]["tokens"] == [s[1][-1] for s in kept]
            assert ev[step, g]["scores"] == pytest.approx([s[0] for s in kept], abs=1e-4)
            assert ev[step, g]["penalties"] == pytest.approx(
                [lam * counts.get(s[1][-1], 0) for s in kept])
            for s in kept:
                counts[s[1][-1]] = counts.get(s[1][-1], 0) + 1
            beams[g] = [(s[1], s[0]) for s in kept]
    # both groups start from the prompt: without the penalty group 1 would copy group 0; a
    # small penalty is paid and does not move it, a large one moves it
    assert (ev[0, 1]["tokens"] != ev[0, 0]["tokens"]) == moved
    assert ev[0, 1]["penalties"] == pytest.approx([0.0, 0.0] if moved else [lam, lam])


def test_groups_part_ways_where_beams_do_not(target):
    """Distinct-2 of the 4 outputs per prompt: four groups of one beam against the 4 hypotheses
    of plain beam search, with the same number of beams."""
    diff, logp = [], []
    for prompt in PROMPTS:
        div = dg.diverse_beam_search(target, prompt, num_beams=4, num_groups=4,
                                     diversity_penalty=1.0, max_new_tokens=24)
        plain = decoding.beam_search(target, prompt, num_beams=4, max_new_tokens=24)
        diff.append(distinct_n([h.token_ids for h in div.hypotheses], 2)
                    - distinct_n([h.token_ids for h in plain.hypotheses], 2))
        logp.append(np.mean([h.seq_logprob for h in div.hypotheses])
                    - np.mean([h.seq_logprob for h in plain.hypotheses]))
        assert div.groups[0].best.token_ids == decoding.beam_search(
            target, prompt, num_beams=1, max_new_tokens=24).best.token_ids
    assert min(diff) >= 0 and np.mean(diff) > 0.15
    assert np.mean(logp) < 0          # the price: less probable outputs


def test_true_seq_logprob_and_cost(target):
    with wb.trace() as t:
        res = dg.diverse_beam_search(target, "Story:", num_beams=4, num_groups=2,
                                     diversity_penalty=2.0, max_new_tokens=16)
    for h in (h for g in res.groups for h in g.hypotheses):
        want = target.score("Story:", [h.token_ids + ([target.eos_token_id]
                                                      if h.finish_reason == "eos" else [])])[0]
        assert h.seq_logprob == pytest.approx(want, abs=1e-4)
    assert res.cost == res.groups[0].cost and res.groups[1].cost == wb.Cost()
    last = max(e["t"] for e in t.of("diverse_step"))   # every step but the last feeds one pass
    assert res.cost.forward_passes == 1 + last and last > 2
    assert res.cost.input_tokens == len(target.encode("Story:")) and res.cost.calls == 1
    assert res.text == max(res.hypotheses, key=lambda h: h.score).text


@pytest.mark.parametrize("kw, name", [(dict(num_groups=3), "num_groups"),
                                      (dict(num_groups=0), "num_groups"),
                                      (dict(diversity_penalty=-1.0), "diversity_penalty"),
                                      (dict(diversity_penalty=math.inf), "diversity_penalty"),
                                      (dict(num_beams=0), "num_beams"),
                                      (dict(max_new_tokens=0), "max_new_tokens")])
def test_diverse_beam_search_refuses_bad_parameters(target, kw, name):
    with pytest.raises(ValueError, match=name):
        dg.diverse_beam_search(target, "Story:", **kw)


# -- repetition measures --------------------------------------------------------------------------
def test_repeated_ngrams_is_rep_n():
    assert repeated_ngrams([1, 2, 3, 4, 5], 2) == 0.0
    assert repeated_ngrams([1, 2, 1, 2, 1, 2], 2) == pytest.approx(1 - 2 / 5)
    assert repeated_ngrams("the cat the cat", 1) == 0.5
    assert repeated_ngrams([1, 2], 4) == 0.0
    with pytest.raises(ValueError, match="n"):
        repeated_ngrams([1, 2, 3], 0)


def test_loop_period_finds_the_shortest_repeated_tail():
    assert loop_period([9, 1, 2, 3, 1, 2, 3, 1, 2, 3]) == 3
    assert loop_period([9, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1]) == 3  # cut mid-unit: still a loop
    assert loop_period([1, 2, 3, 1, 2, 3]) == 0                  # two repeats are not three
    assert loop_period([1, 2, 3, 1, 2, 3], min_repeats=2) == 3
    assert loop_period([5, 7, 7, 7]) == 1 and loop_period([1, 2, 3, 4]) == 0
    assert loop_period("a b a b a b") == 2
    with pytest.raises(ValueError, match="min_repeats"):
        loop_period([1, 1], min_repeats=1)


def test_greedy_loops_when_it_must_go_on_and_sampling_does_not(target):
    greedy = decoding.greedy(target, PROMPTS, max_new_tokens=48, eos=False)
    samples = decoding.sample(target, PROMPTS, max_new_tokens=48, eos=False, seed=0)
    assert all(loop_period(g.token_ids) > 0 for g in greedy)
    assert not any(loop_period(s.token_ids) > 0 for s in samples)
    assert np.mean([repeated_ngrams(g.token_ids) for g in greedy]) > 0.8
    with_eos = decoding.greedy(target, PROMPTS, max_new_tokens=48)
    assert all(g.finish_reason == "eos" and loop_period(g.token_ids) == 0 for g in with_eos)


def test_decoding_lists_the_rules_against_degeneration():
    """The issue's public names: decoding.contrastive_search and decoding.diverse_beam_search
    are degeneration's functions (importable from workbench.decoding too)."""
    import workbench as wb
    from workbench.decoding import contrastive_search, diverse_beam_search
    assert contrastive_search is wb.degeneration.contrastive_search
    assert diverse_beam_search is wb.degeneration.diverse_beam_search
