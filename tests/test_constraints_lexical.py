"""Lexical constraints: ban lists and logit bias (against Hugging Face), NeuroLogic beam search."""
import pytest
import torch
from transformers.generation.logits_process import (NoBadWordsLogitsProcessor,
                                                     SequenceBiasLogitsProcessor)

import workbench as wb
from workbench.constraints import BanWords, lexical_beam_search, logit_bias, satisfied
from workbench.decoding import sample

CLAUSES = [["food", "foods"], ["table", "tables"]]


def test_ban_words_matches_hugging_face(tiny_lm):
    ban = BanWords(tiny_lm, ["table", "cat", "unnatural"])
    hf = NoBadWordsLogitsProcessor([list(s) for s in ban.sequences],
                                   eos_token_id=tiny_lm.eos_token_id)
    g = torch.Generator().manual_seed(0)
    multi = next(s for s in ban.sequences if len(s) > 1)
    for history in ([], list(multi[:-1]), [5, 6] + list(multi[:-1]), [7, 8, 9]):
        logits = torch.randn(1, tiny_lm.vocab_size, generator=g)
        ban.history = [list(history)]
        ours = ban(logits)
        ref = hf(torch.tensor([[1] + history]), logits.clone())
        assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    assert torch.isinf(ban(logits)).sum() >= 1


def test_banned_sequences_never_appear_in_samples(tiny_lm):
    for seed in range(3):
        ban = BanWords(tiny_lm, ["the", "cat"])
        g = sample(tiny_lm, "Story:", adapters=[ban], seed=seed, max_new_tokens=40)
        for s in ban.sequences:
            n = len(s)
            assert all(tuple(g.token_ids[i:i + n]) != s for i in range(len(g.token_ids)))


def test_logit_bias_matches_hugging_face(tiny_lm):
    bias = {5: 2.0, 17: -3.5, 300: float("-inf")}
    logits = torch.randn(2, tiny_lm.vocab_size, generator=torch.Generator().manual_seed(1))
    ref = SequenceBiasLogitsProcessor([[[k], v] for k, v in bias.items()])(
        torch.tensor([[1, 2], [1, 3]]), logits.clone())
    assert torch.equal(logit_bias(bias)(logits), ref)
    with pytest.raises(ValueError, match="outside"):
        logit_bias({10_000: 1.0})(logits)
    with pytest.raises(ValueError):
        logit_bias({})


def test_satisfied_checks_whole_words():
    assert satisfied("the food was on the tables.", CLAUSES) == [True, True]
    assert satisfied("seafood at a timetable", CLAUSES) == [False, False]
    assert satisfied("Foods", [["foods"]]) == [False]


def test_lexical_beam_search_returns_satisfying_hypotheses(tiny_lm):
    with wb.trace() as t:
        r = lexical_beam_search(tiny_lm, "Story:", CLAUSES, num_beams=4, max_new_tokens=20)
    assert r.hypotheses and all(all(satisfied(h.text, CLAUSES)) for h in r.hypotheses)
    assert r.text == r.hypotheses[0].text
    assert [h.score for h in r.hypotheses] == sorted((h.score for h in r.hypotheses),
                                                    reverse=True)
    assert r.cost.forward_passes == r.info["steps"] and r.cost.input_tokens > 0
    assert t.of("lexical_select", "lexical_beam_search")
    # plain sampling from the same model essentially never writes both words
    plain = [sample(tiny_lm, "Story:", seed=s, max_new_tokens=20).text for s in range(5)]
    assert not any(all(satisfied(p, CLAUSES)) for p in plain)


def test_lexical_budget_and_errors(tiny_lm):
    with pytest.raises(ValueError, match="no hypothesis satisfied"):
        lexical_beam_search(tiny_lm, "Story:", CLAUSES, budget=wb.Budget(forward_passes=3))
    budget = wb.Budget(forward_passes=30)
    r = lexical_beam_search(tiny_lm, "Story:", CLAUSES, budget=budget, max_new_tokens=40)
    assert budget.spent.forward_passes <= 30 and r.hypotheses
    with pytest.raises(ValueError, match="at least"):
        lexical_beam_search(tiny_lm, "Story:", [["table"]], max_new_tokens=2)
    for bad in ([], [[]], "food", [["food", ""]]):
        with pytest.raises(ValueError):
            lexical_beam_search(tiny_lm, "Story:", bad)
