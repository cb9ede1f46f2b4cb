"""The text worlds of TinyWorld: stories, reviews (with an exact sentiment oracle), JSON records.

Stories and reviews are `Grammar` automata, so their true probability p* is exact.  Word weights
follow a Zipf-like law, so the distributions are skewed like natural text: the most probable
story is short and dull, while typical ones are longer (survey §2, §3.1).
"""
from __future__ import annotations

import json
import random
from functools import lru_cache

from .grammar import STOP, Grammar


def zipf(words, total=1.0, s=0.8):
    w = [1 / (r + 1) ** s for r in range(len(words))]
    z = sum(w)
    return [(x, total * v / z) for x, v in zip(words, w)]


SUBJECTS_C = ["cat", "dog", "girl", "boy", "bird", "fox", "robot", "dragon", "kitten", "rabbit",
              "wizard", "princess", "teacher", "tokenization"]
SUBJECTS_V = ["owl", "elephant", "ant"]
OBJECTS_C = ["ball", "book", "cake", "hat", "box", "cat", "dog", "bird", "star", "kitten"]
OBJECTS_V = ["apple", "egg", "owl", "umbrella"]
ADJ_C = ["little", "big", "red", "happy", "brave", "sleepy", "tiny", "clever", "kind"]
ADJ_V = ["old", "angry", "orange", "unnatural"]
VERBS_T = ["found", "saw", "liked", "chased", "helped", "painted", "followed", "lost"]
VERBS_I = ["slept", "smiled", "ran", "danced", "laughed", "sang", "jumped", "cried"]
ADVERBS = ["quietly", "happily", "again", "today"]
PLACES = ["park", "garden", "forest", "house", "river", "kitchen"]


@lru_cache(maxsize=None)
def story_grammar() -> Grammar:
    """Short stories of one or more sentences, e.g. ``" The little cat found a ball."``."""
    g = Grammar("stories", "Story:", "S")

    def det_np(state, caps, nouns_c, nouns_v, after):
        d = (lambda w: " " + w.capitalize()) if caps else (lambda w: " " + w)
        g.add(state, [(d("the"), state + "_the", 0.55), (d("a"), state + "_a", 0.3),
                      (d("an"), state + "_an", 0.15)])
        both = [(" " + w, state + "_n", p) for w, p in zipf(ADJ_C + ADJ_V, 0.3)]
        g.add(state + "_the", both + [(" " + w, after, p)
                                     for w, p in zipf(nouns_c + nouns_v, 0.7)])
        g.add(state + "_a", [(" " + w, state + "_nc", p) for w, p in zipf(ADJ_C, 0.3)]
              + [(" " + w, after, p) for w, p in zipf(nouns_c, 0.7)])
        g.add(state + "_an", [(" " + w, state + "_n", p) for w, p in zipf(ADJ_V, 0.4)]
              + [(" " + w, after, p) for w, p in zipf(nouns_v, 0.6)])
        g.add(state + "_n", [(" " + w, after, p) for w, p in zipf(nouns_c + nouns_v)])
        g.add(state + "_nc", [(" " + w, after, p) for w, p in zipf(nouns_c)])

    det_np("S", True, SUBJECTS_C, SUBJECTS_V, "VP")
    g.add("VP", [(" " + w, "O", p) for w, p in zipf(VERBS_T, 0.55)]
          + [(" " + w, "AI", p) for w, p in zipf(VERBS_I, 0.45)])
    det_np("O", False, OBJECTS_C, OBJECTS_V, "AO")
    g.add("AI", [(".", "END", 0.6), (" in", "PP", 0.15)]
          + [(" " + w, "DOT", p) for w, p in zipf(ADVERBS, 0.25)])
    g.add("AO", [(".", "END", 0.75), (" in", "PP", 0.25)])
    g.add("PP", [(" the", "PL", 1.0)])
    g.add("PL", [(" " + w, "DOT", p) for w, p in zipf(PLACES)])
    g.add("DOT", [(".", "END", 1.0)])
    g.add("END", [(STOP, None, 0.55), (" The", "S_the", 0.25), (" A", "S_a", 0.13),
                  (" An", "S_an", 0.07)])
    g.validate()
    return g


POSITIVE = ["great", "delicious", "friendly", "lovely", "perfect", "fresh", "cozy"]
NEGATIVE = ["awful", "cold", "rude", "bland", "terrible", "slow", "noisy"]
ASPECTS = ["soup", "pizza", "service", "staff", "room", "music", "price", "view", "coffee", "bread"]


@lru_cache(maxsize=None)
def review_grammar() -> Grammar:
    """Restaurant reviews of one to a few clauses; sentiment is decided by `sentiment`."""
    g = Grammar("reviews", "Review:", "R")
    g.add("R", [(" The", "AS", 1.0)])
    g.add("R2", [(" the", "AS", 1.0)])
    g.add("AS", [(" " + w, "WAS", p) for w, p in zipf(ASPECTS)])
    g.add("WAS", [(" was", "ADJ", 1.0)])
    adjs = lambda t: zipf(POSITIVE, t / 2) + zipf(NEGATIVE, t / 2)
    g.add("ADJ", [(" not", "ADJ2", 0.2), (" very", "ADJ2", 0.15)]
          + [(" " + w, "CE", p) for w, p in adjs(0.65)])
    g.add("ADJ2", [(" " + w, "CE", p) for w, p in adjs(1.0)])
    g.add("CE", [(".", "END", 0.6), (" and", "R2", 0.25), (" but", "R2", 0.15)])
    g.add("END", [(STOP, None, 0.75), (" The", "AS", 0.25)])
    g.validate()
    return g


def sentiment(text: str) -> int | None:
    """Exact attribute oracle: +1 positive, -1 negative, None if not a review of the grammar.

    Each clause "the X was [not|very] ADJ" scores +-1 (negated by "not"); the review is positive
    when the sum is positive; a tie goes to the last clause ("... but the staff was rude").
    """
    if review_grammar().log_p_star(text) == float("-inf"):
        return None
    words = text.replace(".", " ").split()
    scores = []
    for i, w in enumerate(words):
        if w in POSITIVE or w in NEGATIVE:
            s = 1 if w in POSITIVE else -1
            scores.append(-s if words[i - 1] == "not" else s)
    total = sum(scores)
    return (1 if total > 0 else -1) if total else scores[-1]


# -- JSON records ----------------------------------------------------------------------------
NAMES = ["Ada", "Alan", "Grace", "Linus", "Marie", "Nikola", "Emmy", "Kurt", "Rosa", "Niels"]
CITIES = ["Paris", "Berlin", "London", "Rome", "Oslo", "Tokyo", "Lima", "Cairo"]
PETS = ["cat", "dog", "fish", "bird", "owl"]

RECORD_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": NAMES},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "city": {"type": "string", "enum": CITIES},
        "pets": {"type": "array", "items": {"type": "string", "enum": PETS}, "maxItems": 3},
        "member": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "pets", "member"],
    "additionalProperties": False,
}
JSON_PROMPT = "JSON:\n"


def sample_record(rng: random.Random) -> dict:
    return {"name": rng.choice(NAMES), "age": rng.randint(18, 99), "city": rng.choice(CITIES),
            "pets": rng.sample(PETS, rng.choice([0, 1, 1, 2, 2, 3])), "member": rng.random() < 0.5}


def record_text(record: dict) -> str:
    return json.dumps(record)


def validate_record(text: str) -> tuple:
    """``(ok, reason)``: parses as JSON and follows `RECORD_SCHEMA` exactly."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        return False, f"not JSON: {e}"
    if not isinstance(obj, dict):
        return False, "not an object"
    props = RECORD_SCHEMA["properties"]
    if set(obj) != set(props):
        return False, f"keys {sorted(obj)} differ from {sorted(props)}"
    if obj["name"] not in NAMES or obj["city"] not in CITIES:
        return False, "unknown name or city"
    if type(obj["age"]) is not int or not 18 <= obj["age"] <= 99:
        return False, "age is not an integer in 18..99"
    pets = obj["pets"]
    if not isinstance(pets, list) or len(pets) > 3 or any(p not in PETS for p in pets):
        return False, "pets is not a list of at most 3 known pets"
    if type(obj["member"]) is not bool:
        return False, "member is not a boolean"
    return True, "valid"


# -- number words (for the input-rewriting chain) --------------------------------------------
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
OP_WORDS = {"+": "plus", "-": "minus", "*": "times"}


def number_words(n: int) -> str:
    if not 0 <= n <= 999:
        raise ValueError("n must be in 0..999")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))


def expression_words(expr: str) -> str:
    from .arithmetic import tokenize_expression
    return " ".join(OP_WORDS[x] if isinstance(x, str) else number_words(x)
                    for x in tokenize_expression(expr))
