"""Our token masks equal llguidance's, step by step along sampled paths (EOS included).

Regexes here avoid ``\\d \\w \\s``: ours are ASCII classes (as in Outlines and in Python's
``re.ASCII``), llguidance's follow Rust's Unicode classes, a dialect difference, not a mask bug.
"""
import numpy as np
import pytest

from workbench.constraints import json_constraint, regex_constraint

pytest.importorskip("llguidance")
from workbench.constraints.library import LibraryMatcher, lark_grammar  # noqa: E402

from test_constraints_index import NESTED  # noqa: E402
from workbench.tinyworld.worlds import RECORD_SCHEMA  # noqa: E402

REGEXES = [r"(ab|cd)[0-9]{2}", r"\(?[0-9]{3}\)? ?[0-9]{3}-[0-9]{4}", r"[a-z ]{0,30}\.",
           r".{0,5}x", r"[^a-c]+z", r"(é|日本)+!?", r"[A-Z][a-z]+( [A-Z][a-z]+)*",
           r"\[CALC\][0-9]+[+*-][0-9]+\[/CALC\]", r"(yes|no)"]


def _compare_along_walks(index, make_library, seeds=range(4), steps=120):
    """Random walks (uniform over our allowed tokens, EOS included); returns how many ended."""
    ended = 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        lib, q = make_library(), index.start
        for _ in range(steps):
            ours = np.zeros(lib.vocab_size, dtype=bool)
            ours[index.allowed(q)] = True
            theirs = lib.mask()
            diff = np.nonzero(ours != theirs)[0]
            assert diff.size == 0, f"masks differ in state {q} on tokens {diff[:10].tolist()}"
            assert ours[index.eos] == index.is_accepting(q) == lib.is_accepting()
            tok = int(rng.choice(index.allowed(q)))
            lib.consume(tok)
            if tok == index.eos:
                ended += 1
                assert lib.matcher.is_stopped()
                break
            q = index.next_state(q, tok)
    return ended


@pytest.mark.parametrize("pattern", REGEXES)
def test_regex_masks_equal_llguidance(tokenizer, pattern):
    index = regex_constraint(pattern, tokenizer)
    _compare_along_walks(index, lambda: LibraryMatcher(tokenizer, regex=pattern))


@pytest.mark.parametrize("schema", [RECORD_SCHEMA, NESTED], ids=["record", "nested"])
def test_json_schema_masks_equal_llguidance(tokenizer, schema):
    index = json_constraint(schema, tokenizer)
    ended = _compare_along_walks(index, lambda: LibraryMatcher(tokenizer, schema=schema),
                                 steps=400)
    assert ended == 4


def test_library_errors_and_grammar(tokenizer):
    with pytest.raises(ValueError, match="llguidance rejected"):
        LibraryMatcher(tokenizer, regex="(ab")
    with pytest.raises(ValueError, match="exactly one"):
        lark_grammar()
    lib = LibraryMatcher(tokenizer, regex="ab")
    with pytest.raises(ValueError, match="refused"):
        lib.consume(tokenizer.convert_tokens_to_ids("z"))


def test_canonical_forcing_is_what_differs_by_default(tokenizer):
    forced = LibraryMatcher(tokenizer, schema=RECORD_SCHEMA, canonical_forcing=True)
    free = LibraryMatcher(tokenizer, schema=RECORD_SCHEMA)
    names = lambda lib: sorted(tokenizer.decode([i]) for i in lib.allowed())
    assert names(forced) == ['{"'] and names(free) == ["{", '{"']
