"""TinyWorld's task formats, as asked of TinyWorld's own models and of any other causal LM.

TinyWorld's models were trained on the bare task formats (``Q: 12+7*3-5`` then worked steps and
``A: 28``; ``JSON:`` then one record), so for them the prompt is just the task.  A model from the
Hugging Face Hub has never seen these formats.  It gets a *few-shot* prompt instead: a one-line
instruction and ``shots`` solved examples in the same format (in-context learning, the simplest
chained meta-generator, survey §4.1), plus stop strings that end its answer before it invents
the next question.  The chapters call the same algorithms either way; only the format differs::

    fmt = tasks.load("tinyworld-arithmetic").format(lm)   # = arithmetic_format(lm) for a plain LM
    gen = meta.LMGenerator(lm, stop=fmt.stop)
    meta.majority_vote(fmt.prompt(problem), gen, 16, answer_fn=fmt.answer)
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from ..prompts import STOP, cut, extract_answer, first_json_object
from . import arithmetic as ar
from .worlds import JSON_PROMPT, record_text, sample_record, validate_record

ARITHMETIC_INSTRUCTION = ("Solve each arithmetic problem step by step: do one operation per line "
                          "(usual precedence), rewrite what is left, then give the answer after "
                          "'A:'.\n\n")
JSON_INSTRUCTION = ("Write one JSON object per record with exactly the keys name, age (18-99), "
                    "city, pets (a list of at most 3) and member (true or false), on one line."
                    "\n\n")


@lru_cache(maxsize=1)
def _tinyworld_vocab() -> dict:
    from transformers import AutoTokenizer

    from ..paths import data_dir
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


def as_problem(problem) -> ar.Problem:
    """An `arithmetic.Problem` from one, an expression, a task record or a `tasks.Problem`."""
    if isinstance(problem, dict):
        problem = problem.get("expression") or ar.problem_from_prompt(problem["prompt"])
    elif hasattr(problem, "question") and hasattr(problem, "reference"):
        problem = problem.question
    if isinstance(problem, str):
        problem = ar.Problem(problem)
    if not isinstance(problem, ar.Problem):
        raise TypeError(f"problem must be a Problem, an expression or a task dict, got "
                        f"{type(problem).__name__}")
    return problem


@dataclass(frozen=True)
class ArithmeticFormat:
    """How to ask an arithmetic problem: ``header`` (few-shot examples, '' for TinyWorld) + the
    question line; ``stop`` strings for generators; ``answer``/``check`` read the reply."""

    header: str = ""
    stop: tuple = ()
    calc: bool = False
    marker = "A: "            # what a solution says right before its answer

    def prompt(self, problem) -> str:
        """The model input for a problem (see `as_problem`)."""
        return self.header + as_problem(problem).prompt(calc=self.calc)

    def answer(self, text: str):
        """The reply's answer; with stop strings, only the text before the first one counts (a
        few-shot model may go on with a question of its own)."""
        return extract_answer(cut(text, self.stop))

    def check(self, problem, text: str) -> bool:
        return self.answer(text) == as_problem(problem).answer


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
        text = cut(text, self.stop).strip()
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


PROMPT_RE = re.compile(r"Q(?: \(calc\))?: ([0-9+\-*]+)[ \t]*$", re.MULTILINE)


class ArithmeticDecomposer:
    """Least-to-most decomposition of an arithmetic problem (`meta.least_to_most`): the parser
    is the decomposer f_1.  It asks the one-operation sub-questions (``Q: a op b``) in the order
    the expression must be reduced and substitutes each answer before asking the next."""

    def start(self, prompt: str) -> list:
        return ar.tokenize_expression(ar.problem_from_prompt(prompt).expression)

    def question(self, items: list):
        """``(solver prompt, sub-question)`` for the next operation, or None when solved."""
        if len(items) == 1:
            return None
        i = ar.next_reduction(items)
        sub = f"{items[i - 1]}{items[i]}{items[i + 1]}"
        return f"Q: {sub}\n", sub

    def substitute(self, items: list, reply: str) -> tuple:
        """``(items, line, value)`` after the solver's reply (value None: no answer read)."""
        i = ar.next_reduction(items)
        sub = f"{items[i - 1]}{items[i]}{items[i + 1]}"
        value = ar.extract_answer(reply)
        if value is None:
            return items, f"{sub}=?", None
        items = items[: i - 1] + [value] + items[i + 2:]
        rest = f", {ar.render(items)}" if len(items) > 1 else ""
        return items, f"{sub}={value}{rest}", value

    def answer(self, items: list):
        return items[0] if len(items) == 1 else None
