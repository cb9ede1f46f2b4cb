"""Constrained decoding (survey §3.5): outputs that must follow a regex, a JSON schema, or
contain (or avoid) given words.

Structural constraints (§3.5.1), written from scratch:

    regex.parse          pattern -> syntax tree (and UTF-8 byte ranges for each character set)
    automata             Thompson NFA -> subset-construction DFA over bytes -> minimal DFA
    index.TokenIndex     per DFA state: the tokens that keep the output completable, EOS in
                         accepting states (computed once over the tokenizer's byte vocabulary)
    json_schema          a JSON-schema subset -> regex in json.dumps's layout
    generate             masked decoding with fast-forward of forced tokens and token healing
    healing              token healing (Lundberg, 2023; survey Figure 3) with a prefix tree
    library              the same masks from llguidance, the production library we compare to

Lexical constraints (§3.5.2): `BanWords`, `logit_bias` (adapters) and `lexical_beam_search`
(NeuroLogic-style beam search over a CNF of required words).

    from workbench import constraints as C
    c = C.json_constraint(RECORD_SCHEMA, lm)
    out = C.generate(lm, "JSON: ", c, seed=0)          # out.text validates, out.cost, out.info
"""
from .automata import DFA, compile_regex
from .generate import ConstraintAdapter, as_index, compare_healing, generate
from .healing import heal_prompt, healing_candidates, template_tokens
from .index import TokenIndex, json_constraint, mask_logits, regex_constraint
from .json_schema import int_range, schema_to_regex
from .lexical import BanWords, LexicalResult, lexical_beam_search, logit_bias, satisfied
from .regex import escape, parse
from .vocab import PrefixTree, Vocabulary, token_bytes, vocabulary

__all__ = ["DFA", "compile_regex", "ConstraintAdapter", "as_index", "generate",
           "compare_healing", "heal_prompt", "healing_candidates", "template_tokens",
           "TokenIndex", "json_constraint", "mask_logits", "regex_constraint", "int_range",
           "schema_to_regex", "BanWords", "LexicalResult", "lexical_beam_search", "logit_bias",
           "satisfied", "escape", "parse", "PrefixTree", "Vocabulary", "token_bytes",
           "vocabulary"]
