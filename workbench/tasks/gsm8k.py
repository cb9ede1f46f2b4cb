"""Grade-school word problems in GSM8K's format (``question``; ``answer`` = worked solution
ending ``#### <number>``).

The reader (`read_number`) looks for explicit answer markers: ``#### 18``, ``\\boxed{18}``,
``\\fbox{18}``, "the answer is 18", "Answer: 18" / "**Answer:** 18", or a line ``A: 18``.  It
reads the first number a marker introduces, taking the **last marker that introduces one**
("The answer is 18. So the answer is right." reads 18).  A marker introduces the content of its
box, the rest of a ``####`` line, or the clause after "answer is"/"Answer:" up to the end of the
sentence, and after that clause's last ``=`` ("The answer is 5 + 3 = 8." reads 8).  When there
are markers but none introduces a number ("The answer is eighteen.") it reads None, never a
number from elsewhere.  Without any marker it falls back to the **last number** of the text, as
lm-eval-harness's GSM8K "flexible-extract" filter does (its regex with group_select=-1).

Numbers may carry thousands commas (``1,200``; LaTeX ``1{,}200``), decimals (``3.5``), a sign
attached to them (``-7``, ``−7``, ``-$7``; not the ``-`` of ``10 - 3``), currency (``$18.00``,
``\\$18``), a percent sign or unit words after them; fractions ``a/b`` and ``\\frac{a}{b}`` are
read as their value.  The reading is normalised (``"1,200.50"`` -> ``"1200.5"``, ``"18.00"`` ->
``"18"``, ``"7/2"`` -> ``"3.5"``, ``"1/3"`` stays ``"1/3"``), and equality is numeric (18 ==
18.0 == 18.00).  Known misreadings: clock times (``3:30``) and dates (``3/4/2020``) are read as
numbers when there is no marker.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from .base import Problem, Task, box_at

_NUM = (r"(?<![\w.)])(?P<sign>[-−])?(?:\$\s?)?(?P<sign2>-)?"  # a sign sticks to the number
        r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?(?!\d|,\d)"
        r"(?:\s?/\s?(?P<den>\d+)(?![\d.]))?")
NUMBER_RE = re.compile(_NUM)
MARKER_RE = re.compile(r"####|\\boxed\b|\\fbox\b|\banswer\s*(?:is\b|:|=)|^\s*A:",
                       re.IGNORECASE | re.MULTILINE)
_CLAUSE_END = re.compile(r"\n|\.(?:\s|$)|;")
_FRAC = re.compile(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}")
_LATEX_NOISE = re.compile(r"\\text\{[^}]*\}|\\[,;!]|\\\$|\{,\}|\\%")


def _value(m) -> Fraction:
    value = Fraction(Decimal(m.group("int").replace(",", "") + (m.group("dec") or "")))
    if m.group("den"):
        if int(m.group("den")) == 0:
            raise ZeroDivisionError
        value /= int(m.group("den"))
    return -value if m.group("sign") or m.group("sign2") else value


def normalise(value: Fraction) -> str:
    """``Fraction`` -> the plain decimal string (``"1200"``, ``"3.5"``), or ``"p/q"``."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".")


def _numbers(text: str) -> list:
    text = _FRAC.sub(r"\1/\2", _LATEX_NOISE.sub(lambda m: "" if m.group(0) != "\\$" else "$",
                                                 text))
    out = []
    for m in NUMBER_RE.finditer(text):
        try:
            out.append(_value(m))
        except (ZeroDivisionError, InvalidOperation):
            out.append(None)
    return out


def read_number(text: str):
    """The number a reply states, normalised (see the module docstring), or None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    markers = list(MARKER_RE.finditer(text))
    if not markers:
        found = _numbers(text)
        return normalise(found[-1]) if found and found[-1] is not None else None
    for m in reversed(markers):  # the last marker that states a number
        found = _numbers(_clause(text, m))
        if found:
            return normalise(found[0]) if found[0] is not None else None
    return None


def _clause(text: str, m) -> str:
    """The text a marker introduces: the box's content, the rest of a ``####`` line, or the
    sentence after "answer is"/"Answer:" (after its last ``=``)."""
    if m.group(0).lower() in ("\\boxed", "\\fbox"):
        return box_at(text, m.start()) or ""
    rest = text[m.end():]
    if m.group(0) == "####":
        return rest.split("\n")[0]
    end = _CLAUSE_END.search(rest)
    return (rest[:end.start()] if end else rest).split("=")[-1]


def same_number(a: str, b: str) -> bool:
    """Numeric equality of two normalised readings (None equals nothing)."""
    if a is None or b is None:
        return False
    return Fraction(a) == Fraction(b)


EXAMPLES = (
    ("A baker makes 24 rolls and sells 3 bags of 5 rolls. How many rolls are left?",
     "The bags hold 3 * 5 = 15 rolls. 24 - 15 = 9 rolls are left. The answer is 9."),
    ("Mia saves $2.50 a day for 6 days. How much has she saved?",
     "She saves 2.50 * 6 = 15 dollars. The answer is 15."),
    ("A tank holds 1,200 litres and loses 150 litres a week. How much is left after 4 weeks?",
     "It loses 150 * 4 = 600 litres, so 1200 - 600 = 600 are left. The answer is 600."),
    ("The temperature was 4 degrees and fell by 11 degrees. What is it now?",
     "4 - 11 = -7 degrees. The answer is -7."),
)


class GSM8K(Task):
    """GSM8K: exact numeric answers after ``####`` in the reference solution."""

    name = "gsm8k"
    instruction = ("Solve the problem step by step, then end with 'The answer is N.' where N "
                   "is a number.\n\n")
    stop = ("\n\nQuestion:", "\nQuestion:")

    @classmethod
    def from_record(cls, record: dict, index: int) -> Problem:
        answer = record["answer"]
        if "####" not in answer:
            raise ValueError(f"gsm8k record {index}: answer has no '#### <number>' line")
        ref = read_number(answer[answer.rindex("####"):])
        if ref is None:
            raise ValueError(f"gsm8k record {index}: no number after '####'")
        meta = {k: v for k, v in record.items() if k != "question"}
        return Problem(str(record.get("id", f"gsm8k-{index:04d}")), record["question"], ref,
                       meta)

    def few_shot(self, problem: Problem) -> str:
        shots = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in EXAMPLES)
        return shots + f"Question: {problem.question}\nAnswer:"

    def extract(self, text: str):
        """`read_number` of the reply up to the first stop string."""
        return read_number(self.cut(text))

    def check(self, problem: Problem, text: str) -> bool:
        return same_number(self.extract(text), problem.reference)
