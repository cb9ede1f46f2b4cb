import math
import random

import numpy as np
import pytest

from workbench.tinyworld.grammar import TokenGrammar
from workbench.tinyworld.worlds import (review_grammar, sentiment, story_grammar,
                                        validate_record, record_text, sample_record)

GRAMMARS = [story_grammar, review_grammar]


@pytest.mark.parametrize("make", GRAMMARS)
def test_exact_probabilities_agree_in_text_and_token_space(make, tokenizer):
    g = make()
    tg = TokenGrammar(g, tokenizer)
    rng = random.Random(0)
    for _ in range(40):
        text = g.prompt + g.sample(rng)
        ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
        # chain rule over exact next-token distributions
        chain = sum(math.log(tg.next_token_distribution(ids[:k])[ids[k]])
                    for k in range(1 + len(tg.prompt_ids), len(ids)))
        assert chain == pytest.approx(g.log_p_star(text[len(g.prompt):]), abs=1e-9)
        assert tg.log_p_star_tokens(ids) == pytest.approx(chain, abs=1e-9)


@pytest.mark.parametrize("make", GRAMMARS)
def test_prefix_probabilities_are_consistent(make, tokenizer):
    g = make()
    tg = TokenGrammar(g, tokenizer)
    rng = random.Random(1)
    text = g.prompt + g.sample(rng)
    ids = tokenizer(text)["input_ids"]
    for k in range(1 + len(tg.prompt_ids), len(ids)):
        dist = tg.next_token_distribution(ids[:k])
        assert sum(dist.values()) == pytest.approx(1.0)
        base = tg.prefix_probability(ids[:k])
        for t, p in dist.items():
            if t != tokenizer.eos_token_id:
                assert tg.prefix_probability(ids[:k] + [t]) == pytest.approx(base * p, rel=1e-9)


def test_non_canonical_prefix_has_zero_probability(tokenizer):
    g = story_grammar()
    tg = TokenGrammar(g, tokenizer)
    ids = tokenizer("Story: The")["input_ids"]
    # spell " cat" as single characters: a token sequence the tokenizer never produces
    spelled = ids + [tokenizer.convert_tokens_to_ids(c) for c in ["Ġ", "c", "a", "t"]]
    assert tg.prefix_probability(spelled) == 0.0
    with pytest.raises(ValueError, match="p\\* of this token prefix is 0"):
        tg.next_token_distribution(spelled)
    with pytest.raises(ValueError, match="prompt"):
        tg.next_token_distribution(tokenizer("Review: The")["input_ids"])


@pytest.mark.parametrize("make", GRAMMARS)
def test_mode_entropy_and_sampling_agree(make):
    g = make()
    mode, lp = g.mode()
    assert g.log_p_star(mode) == pytest.approx(lp)
    rng = random.Random(2)
    samples = [g.sample(rng) for _ in range(4000)]
    lps = np.array([g.log_p_star(s) for s in samples])
    assert lps.max() <= lp + 1e-12
    # Monte Carlo entropy within 4 standard errors of the exact value
    assert abs(-lps.mean() - g.entropy()) < 4 * lps.std() / math.sqrt(len(lps))
    lens = [len(g.parse(s)[0][0]) for s in samples]
    assert abs(np.mean(lens) - g.expected_length()) < 4 * np.std(lens) / math.sqrt(len(lens))
    # the mode is atypical: far more probable than a typical text
    assert lp > -g.entropy() + 5


def test_ungrammatical_text_has_zero_probability():
    assert story_grammar().p_star(" The cat cat.") == 0.0
    assert story_grammar().p_star(" The cat slept.") > 0


@pytest.mark.parametrize("text, label", [
    (" The soup was great.", 1), (" The soup was not great.", -1),
    (" The soup was great but the staff was rude.", -1),
    (" The soup was great and the staff was rude and the view was lovely.", 1),
    (" The staff was very slow.", -1), (" The soup was purple.", None),
])
def test_sentiment_oracle(text, label):
    assert sentiment(text) == label


def test_records_validate():
    rng = random.Random(0)
    for _ in range(50):
        assert validate_record(record_text(sample_record(rng)))[0]
    assert not validate_record('{"name": "Ada"}')[0]
    assert not validate_record('{"name": "Ada", "age": 5, "city": "Paris", "pets": [], '
                               '"member": true}')[0]
    assert not validate_record("{")[0]
