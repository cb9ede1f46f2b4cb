"""The same constraints through a production library: llguidance (Microsoft, guidance-ai).

Why llguidance, of the three libraries considered (all install as wheels here):

* **Correct masks with byte-level BPE.**  It reads each token's bytes from the Hugging Face
  tokenizer itself (partial UTF-8 tokens included) and computes masks with an exact lexer over
  bytes, so its masks can be compared with ours token for token (`tests/test_constraints_
  library.py` does, along sampled paths).  Its JSON compiler honours ``minimum``/``maximum``,
  ``enum``, ``maxItems``, property order and exact separators.  outlines-core 0.2 builds the
  same kind of regex index as ours, but its JSON-schema compiler drops integer bounds (``age``
  becomes ``-?(0|[1-9][0-9]*)``), so its samples would fail ``validate_record``.
* **Maintenance.**  Actively maintained and used in production by vLLM, SGLang, llama.cpp and
  Guidance; the `LLMatcher` API has been stable since 0.7 (semantic versioning, 1.x now).
* **Install size.**  One 3 MB abi3 wheel with no Python dependencies.  xgrammar needs torch,
  transformers, pydantic, triton and apache-tvm-ffi (hundreds of MB); outlines-core is 2 MB.
* **API stability.**  A grammar string in, a bitmask out (`compute_bitmask`, `consume_token`,
  `is_accepting`); errors are reported, never raised mid-generation.

One behaviour differs by design: when the grammar forces a run of bytes, llguidance by default
allows only the *canonical* tokenization of those bytes (``'{"'`` but not ``'{'``), which
avoids unnatural token boundaries - the problem token healing also addresses (survey Figure 3).
Our index allows every token that keeps the output valid, so for a like-for-like comparison
`LibraryMatcher` turns that off with the grammar option ``no_forcing``.
"""
from __future__ import annotations

import json

import numpy as np

_TOKENIZERS: dict = {}


def _ll_tokenizer(tokenizer):
    import llguidance.hf
    key = id(tokenizer)
    if key not in _TOKENIZERS or _TOKENIZERS[key][0] is not tokenizer:
        _TOKENIZERS[key] = (tokenizer, llguidance.hf.from_tokenizer(tokenizer))
    return _TOKENIZERS[key][1]


def lark_grammar(regex: str | None = None, schema: dict | None = None,
                 canonical_forcing: bool = False) -> str:
    """An llguidance (Lark) grammar for a regex or a JSON schema in ``json.dumps`` layout."""
    if (regex is None) == (schema is None):
        raise ValueError("give exactly one of regex and schema")
    head = "" if canonical_forcing else '%llguidance {"no_forcing": true}\n'
    if regex is not None:
        return head + "start: /" + regex.replace("/", "\\/") + "/\n"
    schema = dict(schema, **{"x-guidance": {"whitespace_flexible": False,
                                            "item_separator": ", ", "key_separator": ": "}})
    return head + "start: %json " + json.dumps(schema) + "\n"


class LibraryMatcher:
    """llguidance's matcher for one generation: ``mask()``, ``consume(token)``, ``is_accepting()``.

    ``mask()`` is a boolean array over the vocabulary with EOS set in accepting states, the
    same convention as `TokenIndex.mask`.
    """

    def __init__(self, lm_or_tokenizer, regex: str | None = None, schema: dict | None = None,
                 canonical_forcing: bool = False):
        import llguidance
        tokenizer = getattr(lm_or_tokenizer, "tokenizer", lm_or_tokenizer)
        self.ll_tokenizer = _ll_tokenizer(tokenizer)
        self.vocab_size = self.ll_tokenizer.vocab_size
        grammar = llguidance.LLMatcher.grammar_from_lark(
            lark_grammar(regex, schema, canonical_forcing))
        self.matcher = llguidance.LLMatcher(self.ll_tokenizer, grammar, log_level=0)
        if self.matcher.is_error():
            raise ValueError(f"llguidance rejected the constraint: {self.matcher.get_error()}")

    def bitmask(self) -> bytes:
        """The raw 32-bit-word bitmask (what a serving engine would use)."""
        return self.matcher.compute_bitmask()

    def mask(self) -> np.ndarray:
        words = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        return np.unpackbits(words, bitorder="little")[:self.vocab_size].astype(bool)

    def allowed(self) -> np.ndarray:
        return np.nonzero(self.mask())[0]

    def consume(self, token: int) -> None:
        if not self.matcher.consume_token(int(token)):
            raise ValueError(f"llguidance refused token {token}: {self.matcher.get_error()}")

    def is_accepting(self) -> bool:
        return self.matcher.is_accepting()
