"""Competition mathematics in the formats of MATH (``problem``, ``solution`` with a final
``\\boxed{}``, ``level``, ``type``) and MATH-500 (also ``answer``, ``subject``, ``unique_id``).

The reader (`read_answer`) takes, in this order: the content of the **last** ``\\boxed{...}`` or
``\\fbox{...}`` (nested braces kept whole; a brace-less ``\\boxed 5`` too); else the statement
after a final "answer is" (Minerva's "The final answer is $x$. I hope it is correct.", or "the
answer is x." up to the end of the sentence); else the whole reply when it is a bare answer (one
line of mathematics, no prose words: what `extract` returns reads back as itself). Anything
else, a box that never closes included, reads None. The reading is `normalise`d for plain exact
match: spaces, ``\\left``/``\\right``, thin spaces, surrounding ``$``, a trailing period,
``^\\circ`` and ``\\%`` dropped, ``\\dfrac``/``\\tfrac`` written ``\\frac``, ``\\text{u}``
written ``u``.

Equivalence (`equivalent`) is decided by math-verify (``parse`` then ``verify``, gold first):
``\\frac{1}{2}`` = ``0.5`` = ``\\dfrac12``, ``2\\sqrt{3}`` = ``\\sqrt{12}``, intervals, sets and
equations compared as what they denote.  math-verify bounds its work with ``signal.alarm``,
which works only on the main thread; off the main thread we pass ``parsing_timeout=None`` and
``timeout_seconds=None`` and bound the work ourselves by refusing answers longer than
`MAX_CHARS` (they are compared exactly); math-verify's notice that it runs without a timeout is
filtered from its loggers, since that is what we ask for.
"""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

from .base import Problem, Task, last_boxed

MAX_CHARS = 300
_FINAL = re.compile(r"answer is:?\s*(?:\$(?P<math>[^$]+)\$|(?P<plain>[^\n]+?))\s*"
                    r"(?:\.\s|\.?$|\n)", re.IGNORECASE)
_PROSE = re.compile(r"[A-Za-z]{2,}")
_COMMANDS = re.compile(r"\\[A-Za-z]+|\\text\{[^}]*\}")


class _NoTimeoutNotice(logging.Filter):
    """Drops math-verify's notice that it runs without a timeout: off the main thread we ask
    for exactly that and bound the work by `MAX_CHARS` instead."""

    def filter(self, record):
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_NoTimeoutNotice())


def read_answer(text: str):
    """The final answer a solution states, normalised (see the module docstring), or None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    boxed = last_boxed(text)
    if boxed is None and ("\\boxed" in text or "\\fbox" in text):
        return None  # a box that never closes: unreadable, not a bare answer
    if boxed is None:
        found = list(_FINAL.finditer(text))
        if found:
            m = found[-1]
            boxed = m.group("math") or m.group("plain")
        elif "\n" not in text.strip() and not _PROSE.search(_COMMANDS.sub("", text)):
            boxed = text
    answer = normalise(boxed) if boxed is not None else ""
    return answer or None


def normalise(answer: str) -> str:
    """Plain normal form for exact match (no mathematics: ``0.5`` stays unlike ``\\frac12``)."""
    s = answer.strip().strip("$").strip()
    s = re.sub(r"^\\[(\[]\s*(.*?)\s*\\[)\]]$", r"\1", s)  # \( x \) and \[ x \]
    s = re.sub(r"\\text\{([^}]*)\}", r"\1", s)
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", s)
    s = re.sub(r"\\[,;:! ]", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("^\\circ", "").replace("^{\\circ}", "").replace("\\%", "").replace("%", "")
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


def exact_match(gold: str, answer: str) -> bool:
    return answer is not None and normalise(gold) == normalise(answer)


@lru_cache(maxsize=4096)
def _parsed(answer: str, main: bool):
    from math_verify import parse
    return parse("\\boxed{" + answer + "}", parsing_timeout=5 if main else None)


def equivalent(gold: str, answer: str) -> bool:
    """Whether ``answer`` denotes the same mathematics as ``gold`` (math-verify; exact match
    for answers too long to hand it).  Safe on any thread (see the module docstring)."""
    if answer is None:
        return False
    if exact_match(gold, answer):
        return True
    if max(len(gold), len(answer)) > MAX_CHARS:
        return False
    from math_verify import verify
    main = threading.current_thread() is threading.main_thread()
    g, a = _parsed(gold, main), _parsed(answer, main)
    return bool(g and a and verify(g, a, timeout_seconds=5 if main else None))


EXAMPLES = (
    ("What is $\\frac{3}{4} + \\frac{1}{6}$?",
     "A common denominator is 12: $\\frac{9}{12} + \\frac{2}{12} = \\frac{11}{12}$. "
     "The answer is $\\boxed{\\frac{11}{12}}$."),
    ("Solve $x^2 - 5x + 6 < 0$.",
     "The roots are 2 and 3, and the parabola opens upward, so $x \\in \\boxed{(2,3)}$."),
    ("Simplify $\\sqrt{50}$.", "$\\sqrt{50} = \\sqrt{25 \\cdot 2} = \\boxed{5\\sqrt{2}}$."),
)


class CompetitionMath(Task):
    """MATH / MATH-500: the reference is ``answer`` when present, else the last box of the
    ``solution``; `check` is math-verify equivalence."""

    name = "math"
    marker = "\\boxed{"        # "... so the answer is $\\boxed{3}$": the box holds the answer
    instruction = "Solve the problem. Put the final answer in \\boxed{}.\n\n"
    stop = ("\n\nProblem:",)

    @classmethod
    def from_record(cls, record: dict, index: int) -> Problem:
        ref = record.get("answer") or last_boxed(record.get("solution", ""))
        if not ref:
            raise ValueError(f"math record {index}: neither 'answer' nor a \\boxed{{}} in "
                             f"'solution'")
        meta = {k: v for k, v in record.items() if k != "problem"}
        pid = record.get("unique_id") or record.get("id") or f"math-{index:04d}"
        return Problem(str(pid), record["problem"], ref, meta)

    def few_shot(self, problem: Problem) -> str:
        shots = "".join(f"Problem: {q}\nSolution: {a}\n\n" for q, a in EXAMPLES)
        return shots + f"Problem: {problem.question}\nSolution:"

    def extract(self, text: str):
        """`read_answer` of the reply up to the first stop string."""
        return read_answer(self.cut(text))

    def check(self, problem: Problem, text: str) -> bool:
        return equivalent(problem.reference, self.extract(text))

    def check_exact(self, problem: Problem, text: str) -> bool:
        """Plain normalised exact match (the baseline math-verify is compared with)."""
        return exact_match(problem.reference, self.extract(text))
