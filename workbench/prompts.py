"""Prompt formats for the chapters' tasks: TinyWorld's own models and any other causal LM.

TinyWorld's models were trained on the bare task formats (``Q: 12+7*3-5`` then worked steps and
``A: 28``; ``JSON:`` then one record), so for them the prompt is just the task.  A model from the
Hugging Face Hub has never seen these formats.  It gets a *few-shot* prompt instead: a one-line
instruction and ``shots`` solved examples in the same format (in-context learning, the simplest
chained meta-generator, survey §4.1), plus stop strings that end its answer before it invents
the next question.  The chapters call the same algorithms either way; only the format differs::

    fmt = prompts.arithmetic_format(lm)          # bare for TinyWorld, few-shot for a Hub model
    gen = meta.LMGenerator(lm, stop=fmt.stop)
    meta.majority_vote(fmt.prompt(problem), gen, 16, answer_fn=fmt.answer)

Answer extraction is shared: the integer after the last ``A:`` marker, else after a final
"answer is" for chatty models.  Problems are recovered from the prompt's last line
(`tinyworld.arithmetic.problem_from_prompt`), so checkers and oracles work with few-shot prompts.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from .tinyworld import arithmetic as ar
from .tinyworld.worlds import JSON_PROMPT, record_text, sample_record, validate_record

ARITHMETIC_INSTRUCTION = ("Solve each arithmetic problem step by step: do one operation per line "
                          "(usual precedence), rewrite what is left, then give the answer after "
                          "'A:'.\n\n")
JSON_INSTRUCTION = ("Write one JSON object per record with exactly the keys name, age (18-99), "
                    "city, pets (a list of at most 3) and member (true or false), on one line."
                    "\n\n")
STOP = ("\n\n", "\nQ:", "\nJSON:")
_LOOSE_RE = re.compile(r"answer is:?\s*\**\s*" + ar.INTEGER, re.IGNORECASE)


@lru_cache(maxsize=1)
def _tinyworld_vocab() -> dict:
    from transformers import AutoTokenizer

    from .paths import data_dir
    return AutoTokenizer.from_pretrained(data_dir() / "tokenizer").get_vocab()


def speaks_tinyworld(lm) -> bool:
    """True when ``lm`` uses TinyWorld's tokenizer (its models know the bare task formats)."""
    return lm.tokenizer.get_vocab() == _tinyworld_vocab()


def _shots(lm, shots):
    if shots is None:
        return 0 if speaks_tinyworld(lm) else 4
    if not isinstance(shots, int) or isinstance(shots, bool) or not 0 <= shots <= 16:
        raise ValueError(f"shots must be an integer in 0..16 (or None for automatic), got "
                         f"{shots!r}")
    return shots


def _cut(text: str, stop) -> str:
    """``text`` up to the first of the ``stop`` strings."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[:min(cuts)] if cuts else text


def extract_answer(text: str):
    """The integer answer of a TinyWorld-format solution: after the last ``A:``, else after
    "answer is"; None when neither states an integer (``1,200`` reads 1200; ``3.5`` reads None,
    never 3).  Other tasks' formats (``#### 18``, ``\\boxed{}``, decimals, units) are read by
    their `workbench.tasks` reader: pass ``answer_fn=task.extract``."""
    found = ar.extract_answer(text)
    if found is not None:
        return found
    loose = _LOOSE_RE.findall(text)
    return int(loose[-1].replace(",", "")) if loose else None


@dataclass(frozen=True)
class ArithmeticFormat:
    """How to ask an arithmetic problem: ``header`` (few-shot examples, '' for TinyWorld) + the
    question line; ``stop`` strings for generators; ``answer``/``check`` read the reply."""

    header: str = ""
    stop: tuple = ()
    calc: bool = False

    def prompt(self, problem) -> str:
        """The model input for a `Problem`, an expression string or a task record."""
        if isinstance(problem, dict):
            problem = problem.get("expression") or ar.problem_from_prompt(problem["prompt"])
        if isinstance(problem, str):
            problem = ar.Problem(problem)
        if not isinstance(problem, ar.Problem):
            raise TypeError(f"problem must be a Problem, an expression or a task dict, got "
                            f"{type(problem).__name__}")
        return self.header + problem.prompt(calc=self.calc)

    def answer(self, text: str):
        """The reply's answer; with stop strings, only the text before the first one counts (a
        few-shot model may go on with a question of its own)."""
        return extract_answer(_cut(text, self.stop))

    def check(self, problem, text: str) -> bool:
        return self.answer(text) == problem.answer


def arithmetic_format(lm, shots: int | None = None, calc: bool = False,
                      seed: int = 0) -> ArithmeticFormat:
    """The arithmetic format for ``lm``: bare for TinyWorld's tokenizer, else ``shots`` = 4
    worked examples (2-4 operations, seeded, canonical reduction order)."""
    k = _shots(lm, shots)
    if k == 0:
        return ArithmeticFormat(calc=calc)
    rng = random.Random(seed)
    examples = [ar.sample_problem(rng, 2 + i % 3, 1 + i % 2) for i in range(k)]
    header = ARITHMETIC_INSTRUCTION + "".join(
        p.prompt(calc=calc) + p.solution(calc=calc) + "\n\n" for p in examples)
    return ArithmeticFormat(header=header, stop=STOP, calc=calc)


def first_json_object(text: str):
    """The first balanced ``{...}`` of ``text`` (strings respected), or ``None``."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_str, esc = 0, False, False
    for i, ch in enumerate(text[start:], start):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return None


@dataclass(frozen=True)
class JsonFormat:
    """How to ask for a record: ``header`` + ``JSON:``; ``record`` extracts the object."""

    header: str = ""
    stop: tuple = ()

    def prompt(self, prefix: str = "") -> str:
        return self.header + JSON_PROMPT + prefix

    def record(self, text: str) -> str:
        """The record of a reply: the text before the first stop string; with a few-shot
        prompt, its first ``{...}`` (Hub models like to wrap records in prose or fences)."""
        text = _cut(text, self.stop).strip()
        return (first_json_object(text) or text) if self.header else text

    def valid(self, text: str) -> tuple:
        """``(ok, reason)`` of the first record in ``text`` against `RECORD_SCHEMA`."""
        return validate_record(self.record(text))


def json_format(lm, shots: int | None = None, seed: int = 0) -> JsonFormat:
    """The JSON-record format for ``lm``: bare for TinyWorld, else ``shots`` = 4 example records."""
    k = _shots(lm, shots)
    if k == 0:
        return JsonFormat()
    rng = random.Random(seed)
    header = JSON_INSTRUCTION + "".join(
        JSON_PROMPT + record_text(sample_record(rng)) + "\n\n" for _ in range(k))
    return JsonFormat(header=header, stop=STOP)

