"""The task seam: one `Problem` record and one `Task` interface for every benchmark family.

A task turns a problem into a model input (`Task.prompt`), reads the answer a reply states
(`Task.extract`), and grades it (`Task.check`).  Families with worked steps also split a reply
into steps (`Task.steps`) and may check one step given the steps before it (`Task.check_step`).
This module knows no family: it must not import `workbench.tinyworld`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One problem: ``question`` (what is asked), ``reference`` (the answer, or the tests of a
    code task) and ``metadata`` (the source record's other fields)."""

    id: str
    question: str
    reference: str
    metadata: dict = field(default_factory=dict, compare=False, repr=False)


class Task:
    """Base of every task family; subclasses set ``name``, ``instruction`` and ``stop`` and
    implement `from_record`, `few_shot`, `extract` and `check`."""

    name = "task"
    instruction = ""          # said to an instruct model before the question
    stop: tuple = ()          # stop strings for a few-shot prompt
    marker = "The answer is "  # what a reply says right before its answer (chain-of-thought)

    def __init__(self, problems, source: str = ""):
        self.problems = list(problems)
        self.source = source

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}: {len(self.problems)} problems from " \
               f"{self.source or 'memory'}>"

    def __len__(self):
        return len(self.problems)

    @classmethod
    def from_record(cls, record: dict, index: int) -> Problem:
        raise NotImplementedError

    @classmethod
    def from_records(cls, records, source: str = "") -> "Task":
        return cls([cls.from_record(dict(r), i) for i, r in enumerate(records)], source)

    # -- model input ---------------------------------------------------------------------
    def few_shot(self, problem: Problem) -> str:
        """The input for a plain causal LM (worked examples, then the question)."""
        raise NotImplementedError

    def user_message(self, problem: Problem) -> str:
        """What an instruct model is asked (one user turn)."""
        return self.instruction + problem.question

    def prompt(self, problem: Problem, lm=None) -> str:
        """The model input for ``problem``: the chat template of ``lm``'s tokenizer when it has
        one (an instruct model), else the few-shot prompt (``lm`` may be None)."""
        tok = getattr(lm, "tokenizer", None)
        if tok is not None and getattr(tok, "chat_template", None):
            messages = [{"role": "user", "content": self.user_message(problem)}]
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.few_shot(problem)

    # -- reading and grading -------------------------------------------------------------
    def cut(self, text: str) -> str:
        """``text`` up to the first of the ``stop`` strings (a few-shot model may go on with a
        question, and an answer, of its own)."""
        ends = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        return text[:min(ends)] if ends else text

    def extract(self, text: str):
        """The answer ``text`` states, as a normalised string, or None."""
        raise NotImplementedError

    def check(self, problem: Problem, text: str) -> bool:
        """Whether the reply (or an answer as returned by `extract`) is right."""
        raise NotImplementedError

    def steps(self, text: str):
        """The reply's reasoning steps, or None where the task has no step format."""
        return None

    def check_step(self, problem: Problem, prefix: str, step: str) -> bool:
        raise NotImplementedError(f"task {self.name!r} has no step checker; only "
                                  f"'tinyworld-arithmetic' checks steps exactly")

    def step_check(self, problem: Problem, text: str) -> "StepCheck":
        """Every step of ``text`` checked in order with `check_step` (the first wrong one and
        all after it are wrong); complete when all are right and the reply states an answer."""
        steps = self.steps(text)
        if steps is None:
            raise NotImplementedError(f"task {self.name!r} has no steps to check")
        correct, first = [], None
        for k, step in enumerate(steps):
            ok = first is None and self.check_step(problem, "\n".join(steps[:k]), step)
            if not ok and first is None:
                first = k
            correct.append(ok)
        answered = self.extract(text) is not None
        if first is not None:
            message = f"step {first + 1} ({steps[first]!r}) is wrong"
        elif not answered:
            message = "the steps are correct but the solution is unfinished"
        else:
            message = "all steps are correct"
        return StepCheck(correct, first, message, first is None and answered)

    # -- finding a problem -----------------------------------------------------------------
    def problem(self, key: str) -> Problem:
        """The problem whose ``id`` or ``question`` is ``key``."""
        for p in self.problems:
            if key in (p.id, p.question):
                return p
        raise KeyError(f"key: task {self.name!r} has no problem with id or question {key!r}")

    def problem_of(self, prompt: str) -> Problem:
        """The problem a prompt made by `prompt` asks: the one whose question occurs last in it
        (a few-shot prompt's worked examples come before the question).  Checkers and oracles
        that see only the prompt (`scoring.oracle`, `meta.oracle_value`, refinement's feedback)
        find their problem this way."""
        cache = self.__dict__.setdefault("_problem_of", {})
        if prompt not in cache:
            best, where = None, (-1, 0)
            for p in self.problems:
                at = prompt.rfind(p.question) if p.question else -1
                if at >= 0 and (at + len(p.question), len(p.question)) > where:
                    best, where = p, (at + len(p.question), len(p.question))
            if best is None:
                raise ValueError(f"prompt: asks none of the {len(self.problems)} problems of "
                                 f"task {self.name!r}: {prompt[-200:]!r}")
            cache[prompt] = best
        return cache[prompt]

    def format(self, lm=None) -> "Format":
        """This task as asked of ``lm``: prompt, stop strings and answer reader together."""
        return Format(self, lm)


@dataclass(frozen=True)
class StepCheck:
    """A solution checked step by step."""
    correct: list            # per step: is this step (and every one before it) right
    first_error: int | None  # index of the first wrong step, None if all are right
    message: str             # what is wrong, in words (feedback for refinement, §4.4)
    complete: bool           # every step right and an answer stated


@dataclass(frozen=True)
class Format:
    """A task as asked of one model (``task.format(lm)``).  A plain LM gets the few-shot
    prompt and the task's stop strings (it would go on with a question of its own); an instruct
    model gets its chat template and no stop strings (its reply ends at end-of-turn)."""
    task: Task
    lm: object = None

    @property
    def chat(self) -> bool:
        tok = getattr(self.lm, "tokenizer", None)
        return tok is not None and bool(getattr(tok, "chat_template", None))

    @property
    def stop(self) -> tuple:
        return () if self.chat else tuple(self.task.stop)

    @property
    def marker(self):
        return self.task.marker

    def prompt(self, problem: Problem) -> str:
        return self.task.prompt(problem, self.lm)

    def answer(self, text: str):
        """The answer the reply states (the text after a stop string does not count)."""
        return self.task.extract(self.task.cut(text) if self.stop else text)

    def check(self, problem: Problem, text: str) -> bool:
        return self.task.check(problem, self.task.cut(text) if self.stop else text)


def read_records(path) -> list:
    """Records of a local file: JSON Lines (one object a line) or JSON (a list of objects)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no file at {path}")
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError(f"path: {path} must hold a JSON list of records")
        return data
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def braced(text: str, start: int):
    """``(content, end)`` of the balanced ``{...}`` opening at ``text[start]``, or None."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    return None


def last_boxed(text: str):
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces kept whole), or
    of a brace-less ``\\boxed 5`` (up to the next space or ``$``); None when there is none or
    its braces never close."""
    starts = [i for key in ("\\boxed", "\\fbox") for i in _find_all(text, key)]
    if not starts:
        return None
    return box_at(text, max(starts))


def box_at(text: str, i: int):
    """Content of the ``\\boxed``/``\\fbox`` command starting at ``text[i]`` (see
    `last_boxed`), or None."""
    j = i + (6 if text.startswith("\\boxed", i) else 5)
    rest = text[j:]
    if rest.startswith("{"):
        found = braced(text, j)
        return found[0] if found else None
    if rest[:1] == " ":
        word = rest.strip().split(" ")[0].split("$")[0]
        return word or None
    return None


def _find_all(text: str, key: str):
    i = text.find(key)
    while i >= 0:
        yield i
        i = text.find(key, i + 1)
