"""Code generation in the formats of HumanEval (``task_id``, ``prompt``, ``canonical_solution``,
``test`` defining ``check(candidate)``, ``entry_point``) and MBPP (``task_id``, ``text``,
``code``, ``test_list`` of ``assert`` lines, ``test_setup_code``).

`extract_code` reads a reply's program: the last fenced block (```python, ```py or a bare ```;
an unclosed fence at the end counts) that defines a function, else the last fenced block, else
the whole reply as bare code (up to a stray fence). For HumanEval, a program that defines the
entry point is run after the prompt (so the prompt's imports and helpers exist and the reply's
definition wins); one that does not is a *completion* of the prompt's function body, cut at the
first top-level ``def``/``class``/``if``/``print``/``#`` line (Codex's stop sequences) and
appended to it. The program then runs with *that problem's* tests in
`workbench.tools.sandbox.run_python`; it passes when every test passes. `pass_at_k` is the
unbiased estimator of Chen et al. (2021).
"""
from __future__ import annotations

import re

from ..tools.sandbox import run_python
from .base import Problem, Task

FENCE_RE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)(?:```|\Z)", re.DOTALL)
COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#")


def extract_code(text: str):
    """The program a reply contains (see the module docstring), or None when it is empty."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    blocks = [m.group("body") for m in FENCE_RE.finditer(text)
              if m.group("lang").lower() in ("", "python", "py", "python3")]
    if blocks:
        defining = [b for b in blocks if re.search(r"^\s*def \w", b, re.MULTILINE)]
        code = (defining or blocks)[-1]
    else:
        code = text.split("```")[0]  # a bare reply may end with the closing fence
    return code if code.strip() else None


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn without replacement from ``n``, of
    which ``c`` are correct, is correct: ``1 - C(n-c, k) / C(n, k)``, as the stable product
    ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (Chen et al., 2021)."""
    for name, v in (("n", n), ("c", c), ("k", k)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    if c > n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    p = 1.0
    for i in range(n - c + 1, n + 1):
        p *= 1.0 - k / i
    return 1.0 - p


def failure_summary(result) -> str:
    """A short description of a failed sandbox run: the failing line of ``main.py`` and the
    error (the last line of the traceback), or the limit that stopped it."""
    if result.error in ("timeout", "cpu limit"):
        return f"timed out ({result.error}; an endless loop?)"
    lines = result.stderr.rstrip().split("\n")
    where = [i for i, ln in enumerate(lines) if ln.strip().startswith('File "main.py"')]
    error = lines[-1].strip() if lines and lines[-1].strip() else str(result.error)
    if where and where[-1] + 1 < len(lines) - 1:
        source = lines[where[-1] + 1].strip()
        number = re.search(r"line (\d+)", lines[where[-1]])
        at = f" at line {number.group(1)}" if number else ""
        return f"failed{at}: `{source}` -> {error}"[:400]
    return f"failed: {error}"[:400]


class CodeTask(Task):
    """Shared by HumanEval and MBPP: ``reference`` is the test code appended to the program."""

    stop = ("```",)
    marker = None             # a program states no answer of its own
    timeout = 10.0            # wall-clock seconds per run of a program with its tests
    cpu_seconds = 5

    def program(self, problem: Problem, text: str):
        raise NotImplementedError

    def extract(self, text: str):
        """The reply's program (see `extract_code`), or None."""
        return extract_code(text)

    def run(self, problem: Problem, text: str):
        """The sandbox result of the reply's program with the problem's tests, or None when
        the reply holds no program."""
        program = self.program(problem, text)
        if program is None:
            return None
        return run_python(program + "\n\n" + problem.reference + "\n", timeout=self.timeout,
                          cpu_seconds=self.cpu_seconds)

    def check(self, problem: Problem, text: str) -> bool:
        result = self.run(problem, text)
        return result is not None and result.ok

    def feedback(self, problem: Problem, text: str) -> str:
        """Execution feedback for refinement: "all tests passed", or what failed."""
        result = self.run(problem, text)
        if result is None:
            return "no Python code found in the reply"
        return self.feedback_of(result)

    @staticmethod
    def feedback_of(result) -> str:
        """"all tests passed", or what failed, for a sandbox result of `run`."""
        return "all tests passed" if result.ok else failure_summary(result)


class HumanEval(CodeTask):
    name = "humaneval"
    instruction = ("Complete the following Python function. Reply with the whole function in "
                   "a ```python block.\n\n")

    @classmethod
    def from_record(cls, record: dict, index: int) -> Problem:
        entry = record["entry_point"]
        tests = record["test"] + f"\n\ncheck({entry})"
        meta = {k: v for k, v in record.items() if k != "test"}
        return Problem(str(record.get("task_id", f"humaneval-{index}")), record["prompt"],
                       tests, meta)

    def few_shot(self, problem: Problem) -> str:
        return problem.question  # a plain LM continues the function body

    def user_message(self, problem: Problem) -> str:
        return self.instruction + "```python\n" + problem.question + "```"

    def program(self, problem: Problem, text: str):
        code = extract_code(text)
        if code is None:
            return None
        prompt = problem.question
        if re.search(rf"^\s*def {re.escape(problem.metadata['entry_point'])}\s*\(", code,
                     re.MULTILINE):
            return prompt + "\n\n" + code
        cuts = [i for i in (code.find(s) for s in COMPLETION_STOPS) if i >= 0]
        return prompt + (code[:min(cuts)] if cuts else code)


class MBPP(CodeTask):
    name = "mbpp"
    instruction = "You are an expert Python programmer, and here is your task: "

    @classmethod
    def from_record(cls, record: dict, index: int) -> Problem:
        tests = "\n".join([record.get("test_setup_code") or ""] + list(record["test_list"]))
        meta = {k: v for k, v in record.items() if k != "text"}
        return Problem(str(record.get("task_id", f"mbpp-{index}")), record["text"],
                       tests.strip(), meta)

    def _ask(self, problem: Problem) -> str:
        tests = "\n".join(problem.metadata["test_list"])
        return (self.instruction + problem.question + " Your code should pass these tests:\n\n"
                + tests + "\n")

    def few_shot(self, problem: Problem) -> str:
        return self._ask(problem) + "```python\n"

    def user_message(self, problem: Problem) -> str:
        return self._ask(problem) + "Reply with the code in a ```python block."

    def program(self, problem: Problem, text: str):
        return extract_code(text)
