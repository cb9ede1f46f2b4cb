"""Token healing (Lundberg, 2023; survey §3.5.1 and Figure 3).

A prompt that ends inside a word forces a token boundary the model rarely saw in training:
TinyWorld's tokenizer writes " tokenization" as one token, but the template "... An unnatural
token" ends in " tok" + "en", and a model continuing from there must spell the rest as
"iz" + "ation".  Token healing rolls the prompt back by its last token(s) and constrains the
next token to *start with* the removed text, looked up in a prefix tree over the vocabulary;
the model can then choose " tokenization" itself.

`heal_prompt` chooses how far to roll back: the longest run of final tokens whose text is still
the prefix of some vocabulary token (" tok" + "en" -> " token", a prefix of " tokenization";
adding " unnatural" would not be).  Rolling back one token is always possible: a token is a
prefix of itself.
"""
from __future__ import annotations

from .vocab import vocabulary


def _tokenizer(x):
    return getattr(x, "tokenizer", x)


def heal_prompt(lm_or_tokenizer, prompt_ids, max_rollback: int | None = None):
    """``(kept_ids, removed_bytes)``: the prompt without its last tokens, and their bytes.

    Tokens are removed from the end while the removed bytes stay a prefix of some vocabulary
    token (at most ``max_rollback``, never the first token or a special one such as BOS).
    """
    vocab = vocabulary(_tokenizer(lm_or_tokenizer))
    ids = [int(i) for i in prompt_ids]
    if max_rollback is not None and max_rollback < 0:
        raise ValueError(f"max_rollback must be >= 0, got {max_rollback}")
    limit = len(ids) - 1 if max_rollback is None else min(max_rollback, len(ids) - 1)
    removed, k = b"", 0
    while k < limit:
        piece = vocab.tokens[ids[-(k + 1)]]
        if not piece or not vocab.tree.has_prefix(piece + removed):
            break
        removed, k = piece + removed, k + 1
    return ids[:len(ids) - k], removed


def healing_candidates(lm_or_tokenizer, removed: bytes) -> list:
    """Token ids whose bytes start with ``removed``: the only tokens allowed first."""
    return vocabulary(_tokenizer(lm_or_tokenizer)).tree.with_prefix(removed)


def token_strings(lm_or_tokenizer, ids) -> list:
    """Each token's text (bytes decoded leniently, so a split character shows as U+FFFD)."""
    vocab = vocabulary(_tokenizer(lm_or_tokenizer))
    return [vocab.tokens[int(i)].decode("utf-8", "replace") for i in ids]


def template_tokens(lm_or_tokenizer, template: str, completion: str) -> dict:
    """Survey Figure 3 without a model: how ``template + completion`` is split into tokens.

    ``without``: the template tokenized on its own, then the completion (the boundary the
    template forces); ``with``: healing rolls the template back and the removed text is
    tokenized together with the completion (what a healed model can produce).
    """
    tok = _tokenizer(lm_or_tokenizer)
    encode = lambda s: tok(s, add_special_tokens=False)["input_ids"] if s else []
    t_ids = encode(template)
    kept, removed = heal_prompt(tok, t_ids)
    rest = removed.decode("utf-8", "replace") + completion
    return {"template": template, "completion": completion,
            "removed": removed.decode("utf-8", "replace"), "kept": len(kept),
            "rolled_back": len(t_ids) - len(kept),
            "without": token_strings(tok, t_ids + encode(completion)),
            "with": token_strings(tok, kept + encode(rest)),
            "natural": token_strings(tok, encode(template + completion))}
