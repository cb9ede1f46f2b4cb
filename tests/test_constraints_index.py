"""The token index over TinyWorld's byte-level BPE vocabulary, and JSON schema -> regex."""
import json
import random
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from workbench.constraints import (int_range, json_constraint, mask_logits, regex_constraint,
                                   schema_to_regex, token_bytes)
from workbench.tinyworld.worlds import (RECORD_SCHEMA, record_text, sample_record,
                                        validate_record)

NESTED = {"type": "object", "properties": {
    "id": {"type": "integer", "minimum": -5, "maximum": 120},
    "ok": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b c"]},
             "minItems": 1, "maxItems": 2},
    "owner": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3},
                                               "n": {"type": "null"}},
              "required": ["name", "n"], "additionalProperties": False}},
    "required": ["id", "ok", "tags", "owner"], "additionalProperties": False}


def test_token_bytes_follow_the_byte_level_table(tokenizer):
    tb = token_bytes(tokenizer)
    assert tb[tokenizer.eos_token_id] == b"" and tb[tokenizer.bos_token_id] == b""
    assert tb[tokenizer.convert_tokens_to_ids("Ġtokenization")] == b" tokenization"
    assert tb[tokenizer.convert_tokens_to_ids("[CALC]")] == b"[CALC]"
    single = [b for b in tb if len(b) == 1]
    assert len(set(single)) == 256                      # every byte is a token
    for i in range(3, len(tb)):                         # decode agrees wherever it can
        assert tb[i].decode("utf-8", "replace") == tokenizer.decode([i])


def _brute_force_allowed(index, q):
    """Allowed tokens by running each token's bytes through the DFA one by one."""
    out = [v for v, b in enumerate(index.vocab.tokens) if b and index.dfa.step(q, b) >= 0]
    return out + ([index.eos] if index.is_accepting(q) else [])


@pytest.mark.parametrize("pattern", [r"(ab|cd)[0-9]{2}", r"[a-z ]{0,12}\.", r"(é|日本)+!?",
                                     r"\[CALC\][0-9]+[+*-][0-9]+\[/CALC\]"])
def test_index_equals_brute_force_along_random_walks(tokenizer, pattern):
    index = regex_constraint(pattern, tokenizer)
    rng = random.Random(0)
    for _ in range(3):
        q = index.start
        for _ in range(15):
            allowed = index.allowed(q).tolist()
            assert sorted(allowed) == sorted(_brute_force_allowed(index, q))
            tok = rng.choice(allowed)
            if tok == index.eos:
                assert index.is_accepting(q)
                break
            q = index.next_state(q, tok)


def test_mask_and_mask_logits(tokenizer):
    index = regex_constraint(r"(ab|cd)[0-9]{2}", tokenizer)
    m = index.mask(index.start, 800)
    assert m.shape == (800,) and m.dtype == torch.bool and not m[756:].any()
    assert {tokenizer.decode([i]) for i in torch.nonzero(m).view(-1).tolist()} == {"a", "ab", "c"}
    out = mask_logits(torch.zeros(1, 800), index, index.start)
    assert torch.isinf(out).sum() == 800 - 3
    with pytest.raises(ValueError, match="not allowed"):
        index.next_state(index.start, tokenizer.convert_tokens_to_ids("b"))


def test_distance_is_the_shortest_completion(tokenizer):
    index = regex_constraint(r"[a-z]{3,9}\.", tokenizer)
    q, steps = index.start, 0
    while not index.is_accepting(q):
        ids, nxt = index.successors(q)
        q = int(nxt[np.argmin(index.distance[nxt])])
        steps += 1
    assert steps == index.distance[index.start] >= 1
    assert index.distance[q] == 0


def test_record_schema_regex_accepts_records_and_rejects_others():
    rx = schema_to_regex(RECORD_SCHEMA)
    rng = random.Random(0)
    for _ in range(300):
        assert re.fullmatch(rx, record_text(sample_record(rng)))
    good = sample_record(rng)
    for bad in [dict(good, age=17), dict(good, age=100), dict(good, name="Bob"),
                dict(good, pets=["cat"] * 4), dict(good, member=1)]:
        assert not re.fullmatch(rx, json.dumps(bad))
    assert not re.fullmatch(rx, json.dumps(good, separators=(",", ":")))


def test_random_walks_through_the_record_index_validate(tokenizer):
    index = json_constraint(RECORD_SCHEMA, tokenizer)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q, toks = index.start, []
        while True:
            tok = int(rng.choice(index.allowed(q)))
            if tok == index.eos:
                break
            toks.append(tok)
            q = index.next_state(q, tok)
        text = b"".join(index.vocab.tokens[t] for t in toks).decode()
        assert validate_record(text) == (True, "valid"), text


def test_nested_schema(tokenizer):
    rx = schema_to_regex(NESTED)
    ok = {"id": -5, "ok": True, "tags": ["b c"], "owner": {"name": "ab\"", "n": None}}
    assert re.fullmatch(rx, json.dumps(ok))
    for bad in [dict(ok, id=121), dict(ok, tags=[]), dict(ok, tags=["a"] * 3),
                dict(ok, owner={"name": "abcd", "n": None})]:
        assert not re.fullmatch(rx, json.dumps(bad))
    assert json_constraint(NESTED, tokenizer).matches(json.dumps(ok))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(-3000, 3000)),
       st.one_of(st.none(), st.integers(-3000, 3000)))
def test_int_range_is_exact(lo, hi):
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    rx = re.compile(int_range(lo, hi))
    for x in list(range(-3100, 3100, 37)) + [lo or 0, hi or 0, (lo or 0) - 1, (hi or 0) + 1]:
        assert bool(rx.fullmatch(str(x))) == ((lo is None or x >= lo) and (hi is None or x <= hi))
    assert not rx.fullmatch("-0") and not rx.fullmatch("007")


@pytest.mark.parametrize("schema, message", [
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, "optional"),
    ({"type": "string", "pattern": "a+"}, "unsupported keyword"),
    ({"type": "object", "properties": {}, "additionalProperties": True}, "additionalProperties"),
    ({"anyOf": [{"type": "integer"}]}, "unsupported keyword"),
    ({"type": "tuple"}, "unsupported type"),
    ({"type": "integer", "minimum": 5, "maximum": 1}, "empty"),
    ({"type": "array"}, "items"),
    ({"enum": []}, "non-empty"),
    ("not a schema", "must be a dict"),
])
def test_invalid_schemas_raise(schema, message):
    with pytest.raises(ValueError, match=message):
        schema_to_regex(schema)
