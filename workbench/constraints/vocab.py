"""The vocabulary as bytes, and a prefix tree over it (survey §3.5.1, "interfacing the parser
with a sub-word tokenizer").

A constraint is written over text, a model emits tokens.  To connect them every token needs the
exact bytes it adds to the output.  ``tokenizer.decode([id])`` is not that: a byte-level BPE
token may hold half of a UTF-8 character (it decodes to U+FFFD), and SentencePiece drops a
leading space.  `token_bytes` reads the bytes from the token's *vocabulary string* instead:

* byte-level BPE (GPT-2, Llama 3, TinyWorld) writes each byte as a printable character
  (``Ġ`` is the space byte 0x20); `bytes_to_unicode` is that table, inverted here;
* SentencePiece writes a space as ``▁`` and raw bytes as ``<0xHH>``;
* added tokens (``[CALC]``) stand for their literal text; special tokens (BOS, EOS, padding)
  stand for no text and are never allowed by a text constraint (EOS is handled apart).
"""
from __future__ import annotations

import json
import re

import numpy as np


def bytes_to_unicode() -> dict:
    """GPT-2's byte -> printable character table used by byte-level BPE vocabularies."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


_BYTE_OF = {c: b for b, c in bytes_to_unicode().items()}
_HEX_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _is_byte_level(tokenizer) -> bool:
    """Whether the tokenizer's decoder is (or contains) the byte-level one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    return '"ByteLevel"' in json.dumps(json.loads(backend.to_str()).get("decoder"))


def token_bytes(tokenizer) -> list:
    """The bytes each token id adds to the text (``b""`` for special tokens)."""
    n = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    added = {i: t for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    special = set(tokenizer.all_special_ids)
    byte_level = _is_byte_level(tokenizer)
    out = []
    for i, piece in enumerate(pieces):
        if i in special or piece is None:
            out.append(b"")
        elif i in added:
            out.append(added[i].content.encode("utf-8"))
        elif byte_level:
            out.append(bytes(_BYTE_OF[c] for c in piece) if all(c in _BYTE_OF for c in piece)
                       else piece.encode("utf-8"))
        elif _HEX_BYTE.fullmatch(piece):
            out.append(bytes([int(piece[3:5], 16)]))
        elif "▁" in piece:
            out.append(piece.replace("▁", " ").encode("utf-8"))
        else:
            out.append(tokenizer.convert_tokens_to_string([piece]).encode("utf-8"))
    return out


class Vocabulary:
    """Token bytes of a tokenizer, as a list and as a padded byte matrix, plus its prefix tree.

    ``matrix[i, :lengths[i]]`` are token ``i``'s bytes; tokens with no bytes (special tokens)
    have length 0 and are never allowed by a text constraint.
    """

    def __init__(self, tokenizer):
        self.tokens = token_bytes(tokenizer)
        self.size = len(self.tokens)
        self.eos = tokenizer.eos_token_id
        self.lengths = np.array([len(t) for t in self.tokens], dtype=np.int64)
        width = max(1, int(self.lengths.max()))
        self.matrix = np.zeros((self.size, width), dtype=np.int64)
        for i, t in enumerate(self.tokens):
            self.matrix[i, :len(t)] = list(t)
        self._tree = None

    @property
    def tree(self) -> "PrefixTree":
        if self._tree is None:
            self._tree = PrefixTree(self.tokens)
        return self._tree


class PrefixTree:
    """A trie over the tokens' bytes: node = dict(byte -> child), token ids stored at ``-1``.

    ``with_prefix(p)``: every token whose bytes start with ``p`` (the subtree under ``p``), the
    question token healing asks (Lundberg, 2023).
    """

    def __init__(self, tokens):
        self.root: dict = {}
        for i, t in enumerate(tokens):
            if not t:
                continue
            node = self.root
            for b in t:
                node = node.setdefault(b, {})
            node.setdefault(-1, []).append(i)

    def node(self, prefix: bytes):
        node = self.root
        for b in prefix:
            node = node.get(b)
            if node is None:
                return None
        return node

    def with_prefix(self, prefix: bytes) -> list:
        """Ids of all tokens whose bytes start with ``prefix`` (sorted)."""
        start = self.node(prefix)
        out, stack = [], [start] if start is not None else []
        while stack:
            node = stack.pop()
            for k, v in node.items():
                if k == -1:
                    out.extend(v)
                else:
                    stack.append(v)
        return sorted(out)

    def has_prefix(self, prefix: bytes) -> bool:
        """Whether some token starts with ``prefix``."""
        return self.node(prefix) is not None


_CACHE: dict = {}


def vocabulary(tokenizer) -> Vocabulary:
    """The (cached) `Vocabulary` of a tokenizer."""
    key = id(tokenizer)
    if key not in _CACHE or _CACHE[key][0] is not tokenizer:
        _CACHE[key] = (tokenizer, Vocabulary(tokenizer))
    return _CACHE[key][1]
