"""Arithmetic with worked steps: TinyWorld's problem-solving task.

A problem is an expression over non-negative integers with ``+``, ``-`` and ``*`` (usual
precedence, left to right within a level).  Its solution reduces one operation per line and
rewrites what is left, then states the answer::

    Q: 12+7*3-5
    7*3=21, 12+21-5
    12+21=33, 33-5
    33-5=28
    A: 28

In the *calculator* variant (prompt ``Q (calc): ...``) each operation is written as a tool call,
``[CALC]7*3[/CALC]=21, 12+21-5``: a decoder that executes the call splices in ``=21`` itself
(survey §5.2).  Everything here is exact: the answer checker, the step checker (which localises
the first wrong step) and the calculator are the ground truth the learned verifiers imitate.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from ..prompts import INTEGER

OPS = "+-*"
CALL_OPEN, CALL_CLOSE = "[CALC]", "[/CALC]"
ANSWER_RE = re.compile(r"A: " + INTEGER)
STEP_RE = re.compile(
    r"^(?:\[CALC\])?(\d+)([+\-*])(\d+)(?:\[/CALC\])?=(-?\d+)(?:, ([0-9+\-*]+))?$")
MAX_VALUE = 9999


def tokenize_expression(expr: str) -> list:
    """``"12+7*3"`` -> ``[12, '+', 7, '*', 3]``; raises ``ValueError`` on anything else."""
    parts = re.findall(r"\d+|[+\-*]|\S", expr.replace(" ", ""))
    out: list = []
    for i, p in enumerate(parts):
        want_number = i % 2 == 0
        if want_number and p.isdigit():
            out.append(int(p))
        elif not want_number and p in OPS:
            out.append(p)
        else:
            raise ValueError(f"expr: not an expression over + - * and integers: {expr!r}")
    if not out or isinstance(out[-1], str):
        raise ValueError(f"expr: not an expression over + - * and integers: {expr!r}")
    return out


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def next_reduction(items: list) -> int:
    """Index of the operator reduced next: the first ``*``, else the first ``+``/``-``."""
    ops = items[1::2]
    k = ops.index("*") if "*" in ops else 0
    return 2 * k + 1


def valid_reductions(items: list) -> list:
    """Operator positions whose reduction keeps the expression's value (and every number in
    0..9999): any product (associativity), or a sum/difference ``a op b`` whose operands belong
    to no product and whose ``a`` is added, not subtracted (``x-a+b`` may not become ``x-(a+b)``).
    Worked solutions may take any of them: several valid paths lead to one answer."""
    out = []
    for i in range(1, len(items), 2):
        before = items[i - 2] if i >= 2 else None
        after = items[i + 2] if i + 2 < len(items) else None
        if items[i] != "*" and ("*" in (before, after) or before == "-"):
            continue
        if 0 <= _apply(items[i - 1], items[i], items[i + 1]) <= MAX_VALUE:
            out.append(i)
    return out


def reduce_at(items: list, i: int) -> tuple:
    """Reduce the operator at position ``i``: returns ``(a, op, b, result, new_items)``."""
    a, op, b = items[i - 1], items[i], items[i + 1]
    r = _apply(a, op, b)
    return a, op, b, r, items[: i - 1] + [r] + items[i + 2:]


def reduce_once(items: list) -> tuple:
    """The canonical step (first product, else leftmost): ``(a, op, b, result, new_items)``."""
    return reduce_at(items, next_reduction(items))


def render(items: list) -> str:
    return "".join(str(x) for x in items)


def step_line(a, op, b, r, left: list, calc: bool = False) -> str:
    """One line of a worked solution: ``a op b=r, <what is left>`` (or a calculator call)."""
    call = f"{CALL_OPEN}{a}{op}{b}{CALL_CLOSE}" if calc else f"{a}{op}{b}"
    return f"{call}={r}" + (f", {render(left)}" if len(left) > 1 else "")


def evaluate(expr: str) -> int:
    """Exact value of an expression (precedence: ``*`` before ``+``/``-``)."""
    items = tokenize_expression(expr)
    while len(items) > 1:
        items = reduce_once(items)[4]
    return items[0]


def calculator(call: str) -> str:
    """The calculator tool: evaluates the text inside ``[CALC]...[/CALC]``; returns ``'=value'``."""
    return f"={evaluate(call)}"


@dataclass(frozen=True)
class Problem:
    expression: str
    answer: int = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "answer", evaluate(self.expression))

    @property
    def n_ops(self) -> int:
        return len(tokenize_expression(self.expression)) // 2

    @property
    def digits(self) -> int:
        return max(len(str(x)) for x in tokenize_expression(self.expression)[::2])

    def prompt(self, calc: bool = False) -> str:
        return f"Q (calc): {self.expression}\n" if calc else f"Q: {self.expression}\n"

    def steps(self, calc: bool = False, rng: random.Random | None = None) -> list:
        """The worked solution, one line per reduction (without the answer line): in the
        canonical order, or (with ``rng``) in a random valid order."""
        items, lines = tokenize_expression(self.expression), []
        while len(items) > 1:
            i = rng.choice(valid_reductions(items)) if rng else next_reduction(items)
            a, op, b, r, items = reduce_at(items, i)
            lines.append(step_line(a, op, b, r, items, calc))
        return lines

    def solution(self, calc: bool = False, rng: random.Random | None = None) -> str:
        """Text the model should produce after the prompt (ends with the answer line)."""
        return "".join(s + "\n" for s in self.steps(calc, rng)) + f"A: {self.answer}"


def sample_problem(rng: random.Random, n_ops: int, digits: int) -> Problem:
    """A random problem with ``n_ops`` operations and operands of up to ``digits`` digits.

    Multiplications keep one single-digit factor, and every intermediate value stays within
    0..9999, so that difficulty grows with ``n_ops`` and ``digits`` but stays learnable.
    """
    if not 1 <= n_ops <= 8:
        raise ValueError("n_ops must be in 1..8")
    if not 1 <= digits <= 3:
        raise ValueError("digits must be in 1..3")
    for _ in range(10_000):
        lo = 10 ** (digits - 1) if digits > 1 else 1
        nums = [rng.randint(1, 10 ** digits - 1) for _ in range(n_ops + 1)]
        nums[rng.randrange(len(nums))] = rng.randint(lo, 10 ** digits - 1)
        ops = [rng.choice(OPS) for _ in range(n_ops)]
        for k, op in enumerate(ops):  # one factor of every product is a single digit
            if op == "*" and nums[k + 1] > 9:
                nums[k + 1] = rng.randint(2, 9)
        items = [nums[0]]
        for op, b in zip(ops, nums[1:]):
            items += [op, b]
        if _well_behaved(items):
            return Problem(render(items))
    raise RuntimeError("could not sample a problem")  # pragma: no cover


def _well_behaved(items: list) -> bool:
    while len(items) > 1:
        i = next_reduction(items)
        if items[i] == "*" and min(items[i - 1], items[i + 1]) > 9:
            return False
        items = reduce_once(items)[4]
        if not 0 <= items[(i - 1)] <= MAX_VALUE:
            return False
    return True


PROMPT_RE = re.compile(r"Q(?: \(calc\))?: ([0-9+\-*]+)\s*$")


def problem_from_prompt(prompt: str) -> "Problem":
    """The problem a ``Q: <expression>\\n`` prompt asks (the last one in a few-shot prompt)."""
    last = prompt.rstrip("\n").split("\n")[-1]
    m = PROMPT_RE.match(last)
    if not m:
        raise ValueError(f"prompt does not end with an arithmetic question: {prompt!r}")
    return Problem(m.group(1))


def extract_answer(text: str):
    """The integer after the last ``A: `` marker (``1,200`` reads 1200), or ``None`` (also when
    that number is not an integer, as in ``A: 3.5``)."""
    found = ANSWER_RE.findall(text)
    return int(found[-1].replace(",", "")) if found else None


def check_answer(problem: Problem, text: str) -> bool:
    return extract_answer(text) == problem.answer


@dataclass
class StepCheck:
    """Result of checking a worked solution line by line against the exact reduction."""
    correct: list            # per step line: is this step (and every one before it) right
    first_error: int | None  # index of the first wrong step, None if all are right
    message: str             # human-readable feedback (used by refinement, §4.4)
    complete: bool           # the solution reached a single number


def split_steps(text: str) -> list:
    """Step lines of a solution text (everything before the answer line)."""
    lines = [ln.strip() for ln in text.split("\n")]
    return [ln for ln in lines if ln and not ln.startswith("A:")]


def check_steps(problem: Problem, text: str) -> StepCheck:
    """Exact process check: each step must perform a valid reduction correctly (any of the
    `valid_reductions`), and rewrite what is left."""
    items = tokenize_expression(problem.expression)
    correct, first, msg = [], None, "all steps are correct"
    for k, line in enumerate(split_steps(text)):
        ok = first is None
        if ok:
            ok, why, new = _check_line(items, line)
            if ok:
                items = new
            else:
                first, msg = k, f"step {k + 1} ({line!r}) is wrong: {why}"
        correct.append(ok)
    complete = first is None and len(items) == 1
    if first is None and not complete:
        msg = "the steps are correct but the solution is unfinished"
    return StepCheck(correct, first, msg, complete)


def _check_line(items: list, line: str) -> tuple:
    """``(ok, why, new_items)`` for one step line against the current expression."""
    m = STEP_RE.match(line)
    if len(items) == 1:
        return False, "the expression was already fully reduced", items
    if not m:
        return False, "it is not of the form a op b=c, rest", items
    got = (int(m.group(1)), m.group(2), int(m.group(3)))
    rest = m.group(5)
    options = [i for i in valid_reductions(items) if tuple(items[i - 1:i + 2]) == got]
    if not options:
        allowed = ", ".join(render(items[i - 1:i + 2]) for i in valid_reductions(items))
        return False, (f"{''.join(map(str, got))} cannot be done next here "
                       f"(valid next operations: {allowed})"), items
    a, op, b, r, _ = reduce_at(items, options[0])
    if int(m.group(4)) != r:
        return False, f"{a}{op}{b} is {r}, not {m.group(4)}", items
    for i in options:
        new = reduce_at(items, i)[4]
        if len(new) == 1:
            return (True, "", new) if rest is None else \
                (False, "nothing is left after the last operation", items)
        if rest == render(new):
            return True, "", new
    return False, f"what is left should be {render(reduce_at(items, options[0])[4])}, " \
                  f"not {rest}", items


SLIPS = ("result", "dropped", "miscopied")


def _nudge(n: int, rng: random.Random) -> int:
    """A plausible wrong value near ``n``: one digit changed, off by 1/10/100, or a digit lost or
    added."""
    s, kind = str(n), rng.random()
    if kind < 0.4:
        d = rng.randrange(len(s))
        m = int(s[:d] + str((int(s[d]) + rng.choice([1, 2, 8, 9])) % 10) + s[d + 1:])
    elif kind < 0.8:
        m = abs(n + rng.choice([-100, -10, -1, 1, 10, 100]))
    else:
        m = int(s[:-1] or "0") if rng.random() < 0.5 else int(s + str(rng.randrange(10)))
    return m if m != n else n + 1


def slipped_solution(problem: Problem, rng: random.Random, slip: str | None = None) -> str:
    """A worked solution with one slip of the kind the target makes, carried on consistently to
    a (usually wrong) answer: at a random step, a wrong ``result``, a term ``dropped`` from what
    is left, or a number ``miscopied``.  Everything before the slip is right, so a scorer that
    checks the steps can tell it from `Problem.solution`; one that only judges how hard the
    problem looks cannot."""
    slip = slip or rng.choice(SLIPS)
    if slip not in SLIPS:
        raise ValueError(f"slip must be one of {SLIPS}, got {slip!r}")
    items, lines = tokenize_expression(problem.expression), []
    at = rng.randrange(len(items) // 2)
    while len(items) > 1:
        i = rng.choice(valid_reductions(items) or [next_reduction(items)])
        a, op, b, r, new = reduce_at(items, i)
        if len(lines) == at:
            if slip == "result" or len(new) < 3:  # the result sits where ``a`` was
                r = _nudge(r, rng)
                new = new[:i - 1] + [r] + new[i:]
            elif slip == "dropped":
                j = rng.randrange(1, len(new), 2)
                new = new[:j] + new[j + 2:]
            else:
                j = rng.randrange(0, len(new), 2)
                new = new[:j] + [_nudge(new[j], rng)] + new[j + 1:]
        lines.append(step_line(a, op, b, r, new))
        items = new
    return "".join(s + "\n" for s in lines) + f"A: {items[0]}"
