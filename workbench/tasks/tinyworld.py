"""TinyWorld's own tasks behind the `Task` interface: thin adapters over
`workbench.tinyworld.arithmetic` (answer and exact step checker), `workbench.tinyworld.worlds`
(record validator) and `workbench.tinyworld.formats` (bare / few-shot formats).

* ``tinyworld-arithmetic`` reads ``data/tasks/arithmetic.jsonl`` (``prompt``, ``answer``,
  ``expression``, ...).  `extract` reads the integer after the last ``A:`` (else after "answer
  is", `prompts.extract_answer`) in the text before the few-shot stop strings; a bare integer
  reads as itself.  `steps` are the solution's lines before the answer
  (`arithmetic.split_steps`); `check_step` is the exact checker `arithmetic.check_steps`.
* ``tinyworld-json`` reads ``data/tasks/json.jsonl`` (``prompt`` = ``JSON:\\n`` + a prefix of
  the record, ``answer``).  `record` reads the record: the first balanced ``{...}`` of the reply
  when it has one (it restates the whole record, perhaps in prose or a fence), else the first
  ``{...}`` of the prompt's prefix followed by the reply (a continuation: records have no
  nested braces, so a continuation has none).  `check` is `worlds.validate_record` plus "the
  record continues the prompt's prefix"; `extract` (no problem at hand) reads whole records only.
"""
from __future__ import annotations

import re

from .. import prompts
from ..tinyworld import arithmetic as ar
from ..tinyworld import formats
from ..tinyworld.worlds import JSON_PROMPT, validate_record
from .base import Format, Problem, StepCheck, Task

_INTEGER = re.compile(r"\s*-?\d+\s*")


def _plain(lm) -> bool:
    """No model, or one without a chat template: use `tinyworld.formats`' bare / few-shot
    formats."""
    tok = getattr(lm, "tokenizer", None)
    return lm is None or not getattr(tok, "chat_template", None)


class TinyWorldArithmetic(Task):
    name = "tinyworld-arithmetic"
    instruction = formats.ARITHMETIC_INSTRUCTION
    stop = prompts.STOP
    marker = "A: "

    @classmethod
    def from_record(cls, record: dict, index: int) -> Problem:
        expression = record.get("expression") or ar.problem_from_prompt(record["prompt"]).expression
        return Problem(str(record.get("id", f"arith-{index:03d}")), expression,
                       str(ar.evaluate(expression)), record)

    def few_shot(self, problem: Problem) -> str:
        return formats.arithmetic_format(None, shots=4).prompt(problem.question)

    def user_message(self, problem: Problem) -> str:
        return self.instruction + ar.Problem(problem.question).prompt()

    def prompt(self, problem: Problem, lm=None) -> str:
        """Bare ``Q: <expression>`` for a TinyWorld model (or no model), four worked examples
        for another plain LM, the chat template for an instruct model."""
        if lm is None:
            return ar.Problem(problem.question).prompt()
        if _plain(lm):
            return formats.arithmetic_format(lm).prompt(problem.question)
        return super().prompt(problem, lm)

    def extract(self, text: str):
        if _INTEGER.fullmatch(text):
            return str(int(text))
        found = formats.ArithmeticFormat(stop=self.stop).answer(text)
        return None if found is None else str(found)

    def check(self, problem: Problem, text: str) -> bool:
        return self.extract(text) == problem.reference

    def steps(self, text: str) -> list:
        return ar.split_steps(text)

    def check_step(self, problem: Problem, prefix: str, step: str) -> bool:
        """Whether ``step`` is a correct next line after the solution lines of ``prefix`` (False
        when the prefix already went wrong): `arithmetic.check_steps`."""
        k = len(ar.split_steps(prefix))
        text = (prefix.rstrip("\n") + "\n" if prefix.strip() else "") + step.strip()
        result = ar.check_steps(ar.Problem(problem.question), text)
        return k < len(result.correct) and result.correct[k]

    def step_check(self, problem: Problem, text: str) -> StepCheck:
        """`arithmetic.check_steps` (complete: the steps reduce the expression to one number)."""
        c = ar.check_steps(ar.Problem(problem.question), text)
        return StepCheck(c.correct, c.first_error, c.message, c.complete)

    def problem(self, key: str) -> Problem:
        """The problem with this ``id``, or the one asking this expression (made when the
        test set does not hold it)."""
        try:
            return super().problem(key)
        except KeyError:
            ar.tokenize_expression(key)   # ValueError naming the expression when it is none
            return self.from_record({"expression": key, "id": f"expr:{key}"}, 0)

    def problem_of(self, prompt: str) -> Problem:
        """The problem of the last ``Q: <expression>`` line of the prompt (any expression)."""
        found = formats.PROMPT_RE.findall(prompt)
        if not found:
            raise ValueError(f"prompt: asks no arithmetic question (no 'Q: <expression>' "
                             f"line): {prompt[-200:]!r}")
        return self.problem(found[-1])

    def format(self, lm=None):
        """Bare for a TinyWorld model, four worked examples for another plain LM
        (`formats.arithmetic_format`), the chat template for an instruct model."""
        if lm is None:
            return formats.ArithmeticFormat()
        if _plain(lm):
            return formats.arithmetic_format(lm)
        return Format(self, lm)


class TinyWorldJSON(Task):
    name = "tinyworld-json"
    instruction = formats.JSON_INSTRUCTION
    stop = prompts.STOP

    @classmethod
    def from_record(cls, record: dict, index: int) -> Problem:
        if not record["prompt"].startswith(JSON_PROMPT):
            raise ValueError(f"json record {index}: prompt must start with {JSON_PROMPT!r}")
        answer = record.get("answer", "")
        return Problem(str(record.get("id", f"json-{index:03d}")), record["prompt"],
                       answer[len(JSON_PROMPT):] if answer.startswith(JSON_PROMPT) else answer,
                       record)

    def _prefix(self, problem: Problem) -> str:
        return problem.question[len(JSON_PROMPT):]

    def few_shot(self, problem: Problem) -> str:
        return formats.json_format(None, shots=4).prompt(self._prefix(problem))

    def prompt(self, problem: Problem, lm=None) -> str:
        """``JSON:\\n`` + prefix for a TinyWorld model (or no model), example records for
        another plain LM, the chat template for an instruct model."""
        if lm is None:
            return problem.question
        if _plain(lm):
            return formats.json_format(lm).prompt(self._prefix(problem))
        return super().prompt(problem, lm)

    def record(self, problem: Problem, text: str):
        """The record a reply gives for ``problem`` (see the module docstring), or None."""
        whole = prompts.first_json_object(text)
        if whole is not None:
            return whole
        joined = self._prefix(problem) + text
        return prompts.first_json_object(joined) or (joined.strip() or None)

    def extract(self, text: str):
        """The first ``{...}`` of a reply that restates the whole record, else None (use
        `record` to join a continuation to its problem's prefix)."""
        return prompts.first_json_object(text)

    def check(self, problem: Problem, text: str) -> bool:
        rec = self.record(problem, text)
        return rec is not None and rec.startswith(self._prefix(problem).strip()) and \
            validate_record(rec)[0]
