"""Token healing (survey §3.5.1, Figure 3) with TinyWorld's tokenizer."""
import pytest

import workbench as wb
from workbench.constraints import (compare_healing, generate, heal_prompt, healing_candidates,
                                   template_tokens, vocabulary)


def test_the_template_forces_an_unnatural_boundary(tokenizer):
    ids = tokenizer("Story: An unnatural token", add_special_tokens=False)["input_ids"]
    assert [tokenizer.decode([i]) for i in ids[-2:]] == [" tok", "en"]
    whole = tokenizer(" tokenization", add_special_tokens=False)["input_ids"]
    assert len(whole) == 1


@pytest.mark.parametrize("prompt, removed, k", [("Story: An unnatural token", b" token", 2),
                                                ("Story: An unnatural tok", b" tok", 1),
                                                ("Story: The cat", b" cat", 1)])
def test_heal_prompt_rolls_back_to_a_token_prefix(tiny_lm, prompt, removed, k):
    ids = tiny_lm.encode(prompt)
    kept, got = heal_prompt(tiny_lm, ids)
    assert got == removed and kept == ids[:len(ids) - k]
    assert heal_prompt(tiny_lm, ids, max_rollback=0) == (ids, b"")
    assert heal_prompt(tiny_lm, [tiny_lm.bos_token_id]) == ([tiny_lm.bos_token_id], b"")


def test_candidates_come_from_the_prefix_tree(tokenizer):
    vocab = vocabulary(tokenizer)
    cands = healing_candidates(tokenizer, b" token")
    assert cands == sorted(v for v, b in enumerate(vocab.tokens) if b.startswith(b" token"))
    assert [tokenizer.decode([i]) for i in cands] == [" tokeniz", " tokenization"]


def test_figure_3_tokens_without_and_with_healing(tokenizer):
    t = template_tokens(tokenizer, "An unnatural token", "ization")
    assert t["removed"] == " token"
    assert t["without"][:4] == ["An", " unnatural", " tok", "en"] and len(t["without"]) > 4
    assert t["with"] == ["An", " unnatural", " tokenization"] == t["natural"]


def test_healed_generation_starts_with_the_removed_text(tiny_lm):
    with wb.trace() as t:
        g = generate(tiny_lm, "Story: An unnatural token", None, heal=True, seed=0,
                     max_new_tokens=4)
    first = tiny_lm.decode(g.token_ids[:1])
    assert first in (" tokeniz", " tokenization")
    assert g.info["healed"] == {"removed": " token", "rolled_back": 2}
    assert tiny_lm.decode(g.prompt_ids) + tiny_lm.decode(g.token_ids) == \
        "Story: An unnatural token" + g.text
    heal = t.of("heal")[0]
    assert heal["removed"] == " token" and set(heal["candidates"]) == set(
        healing_candidates(tiny_lm, b" token"))


def test_healing_with_a_regex_constraint(tiny_lm):
    for seed in range(3):
        g = generate(tiny_lm, "Story: An unnatural tok", r"enization\.", heal=True, seed=seed,
                     max_new_tokens=8)
        assert g.text == "enization."
        assert tiny_lm.decode(g.token_ids).startswith(" tok")


def test_compare_healing_reports_both_sides(tiny_lm):
    out = compare_healing(tiny_lm, "Story: An unnatural token", max_new_tokens=3)
    assert out["removed"] == " token"
    assert out["without"]["prompt_tokens"][-2:] == [" tok", "en"]
    assert out["with"]["prompt_tokens"][-1] == " unnatural"
    assert out["with"]["tokens"][0].startswith(" token")
    assert out["without"]["generation"].cost.forward_passes >= 1


@pytest.mark.skipif("tinyworld" not in wb.embedded_models(), reason="tinyworld not trained yet")
def test_trained_model_heals_figure_3(target):
    out = compare_healing(target, "Story: An unnatural token", max_new_tokens=4)
    assert out["with"]["tokens"][0] == " tokenization"
    healed = out["with"]["generation"]
    assert healed.text.startswith("ization")
