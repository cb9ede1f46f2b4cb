"""Task sets of TinyWorld (written to ``data/tasks/*.jsonl`` by ``scripts/build_world.py``).

Every record has ``prompt`` (the exact model input, without the BOS token) and ``answer``.
"""
from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path

from . import arithmetic as ar
from .worlds import JSON_PROMPT, record_text, review_grammar, sample_record, sentiment, story_grammar

HELDOUT_SEED = 1234
PER_CELL = 24          # problems per (n_ops, digits) cell of the held-out arithmetic set
OPS_RANGE = range(1, 6)
DIGITS_RANGE = range(1, 4)


@lru_cache(maxsize=None)
def _arithmetic():
    rng, seen, out = random.Random(HELDOUT_SEED), set(), []
    for n in OPS_RANGE:
        for d in DIGITS_RANGE:
            k = 0
            while k < PER_CELL:
                p = ar.sample_problem(rng, n, d)
                if p.expression in seen:
                    continue
                seen.add(p.expression)
                out.append({"id": f"arith-{len(out):03d}", "prompt": p.prompt(),
                            "answer": p.answer, "expression": p.expression,
                            "n_ops": n, "digits": d, "difficulty": f"{n} ops, {d} digits"})
                k += 1
    return tuple(out)


def arithmetic_tasks() -> list:
    """Held-out arithmetic problems: 5 x 3 difficulty cells of 24 problems (360 in all)."""
    return [dict(t) for t in _arithmetic()]


def grammar_tasks(n=100, seed=7) -> list:
    """Story prompts: a prefix of a p* sample (whole words) and the sample as answer."""
    g, rng, out = story_grammar(), random.Random(seed), []
    for i in range(n):
        text = g.sample(rng)
        words = text.split(" ")
        cut = rng.randint(0, min(3, len(words) - 1))
        out.append({"id": f"story-{i:03d}", "prompt": g.prompt + " ".join(words[:cut + 1]),
                    "answer": g.prompt + text})
    return out


def json_tasks(n=50, seed=11) -> list:
    rng, out = random.Random(seed), []
    for i in range(n):
        rec = record_text(sample_record(rng))
        cut = rng.choice([0, 0, rec.index(",") + 1])
        out.append({"id": f"json-{i:03d}", "prompt": JSON_PROMPT + rec[:cut],
                    "answer": JSON_PROMPT + rec})
    return out


def attribute_tasks(n=100, seed=13) -> list:
    """Review prompts with a reference continuation and its exact sentiment label."""
    g, rng, out = review_grammar(), random.Random(seed), []
    for i in range(n):
        text = g.sample(rng)
        words = text.split(" ")
        cut = rng.randint(0, 2)
        out.append({"id": f"review-{i:03d}", "prompt": g.prompt + " ".join(words[:cut + 1]),
                    "answer": g.prompt + text, "label": sentiment(text)})
    return out


ALL = {"arithmetic": arithmetic_tasks, "grammar": grammar_tasks, "json": json_tasks,
       "attribute": attribute_tasks}


def write_tasks(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    for name, fn in ALL.items():
        with open(directory / f"{name}.jsonl", "w") as f:
            for rec in fn():
                f.write(json.dumps(rec) + "\n")


def load_tasks(name: str, directory: Path | None = None) -> list:
    """Read a task set from ``data/tasks/<name>.jsonl``."""
    from ..paths import data_dir
    path = (directory or data_dir() / "tasks") / f"{name}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no task set {name!r} at {path}; known: {sorted(ALL)}")
    with open(path) as f:
        return [json.loads(line) for line in f]
