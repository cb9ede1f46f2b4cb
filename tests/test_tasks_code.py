"""Code tasks (issue 17): program extraction from replies, execution against each problem's own
tests in the sandbox, execution feedback, and the unbiased pass@k estimator."""
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from math import comb

import pytest

from workbench import tasks
from workbench.tasks.code import extract_code, pass_at_k

BODY = "def f(x):\n    return x + 1\n"
CODE_READS = [  # reply -> program (None: no program)
    ("```python\n" + BODY + "```", BODY),
    ("Here it is:\n```python\n" + BODY + "```\nIt adds one.", BODY),
    ("```py\n" + BODY + "```", BODY), ("```\n" + BODY + "```", BODY),
    ("```Python\n" + BODY + "```", BODY), ("```python3\n" + BODY + "```", BODY),
    ("```python\n" + BODY, BODY),  # unclosed at the end (a stop string ate it)
    (BODY, BODY), (BODY + "```", BODY),  # bare code, a stray closing fence
    ("```python\nprint(1)\n```\nthen\n```python\n" + BODY + "```", BODY),  # the one with a def
    ("```python\n" + BODY + "```\nUsage:\n```python\nprint(f(1))\n```", BODY),
    ("```python\nx = 1\n```\n```python\ny = 2\n```", "y = 2\n"),  # no def: the last block
    ("```text\nnot code\n```", None),  # only a non-Python block: no program
    ("```python\n```", None), ("", None), ("   \n", None),
    ("<think>add one</think>\n```python\n" + BODY + "```", BODY),
    ("```python\nimport math\n\n" + BODY + "```", "import math\n\n" + BODY),
    ("```python\n" + BODY + "```\nTests:\n```python\nassert f(1) == 2\n```", BODY),
    ("```python\ndef f(x):\n    return x\n```\nFixed:\n```python\n" + BODY + "```", BODY),
    ("```python title=f.py\n" + BODY + "```", BODY),
    ("```python\r\n" + BODY.replace("\n", "\r\n") + "```", BODY.replace("\n", "\r\n")),
    ("```javascript\nfunction f(x) {}\n```\n```python\n" + BODY + "```", BODY),
    ("def f(x):\n    return x + 1", "def f(x):\n    return x + 1"),
    ("```json\n{}\n```", None),
]


@pytest.mark.parametrize("reply,expected", CODE_READS)
def test_extract_code(reply, expected):
    assert extract_code(reply) == expected


@pytest.fixture(scope="module")
def humaneval():
    return tasks.load("humaneval", source="local")


@pytest.fixture(scope="module")
def mbpp():
    return tasks.load("mbpp", source="local")


def test_humaneval_reply_formats(humaneval):
    p = next(q for q in humaneval.problems if q.metadata["entry_point"] == "primes_below")
    body = p.metadata["canonical_solution"]
    whole = "def primes_below(n):\n    return [k for k in range(2, n) if is_prime(k)]\n"
    replies = {
        "completion": (body, True),
        "completion then junk": (body + "\n\ndef unrelated(:\n", True),  # cut at top-level def
        "completion then a print": (body + "\nprint(primes_below(3))\n", True),
        "whole function, fenced": ("Sure!\n```python\n" + whole + "```", True),
        "whole function using the prompt's helper": (whole, True),
        "wrong completion": ("    return [2, 3]\n", False),
        "wrong whole function": ("```python\ndef primes_below(n):\n    return []\n```", False),
        "syntax error": ("```python\ndef primes_below(n)\n    return 1\n```", False),
        "no code": ("", False),
    }
    for name, (reply, ok) in replies.items():
        assert humaneval.check(p, reply) is ok, name


def test_mbpp_runs_that_problems_tests(mbpp):
    leap = next(p for p in mbpp.problems if "leap" in p.question)
    square = next(p for p in mbpp.problems if "perfect square" in p.question)
    good = ("```python\ndef is_leap(y):\n"
            "    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)\n```")
    assert mbpp.check(leap, good)
    assert not mbpp.check(square, good)  # right code, another problem's tests
    assert not mbpp.check(leap, "def is_leap(y):\n    return y % 4 == 0\n")  # 1900 fails
    assert mbpp.check(square, square.metadata["code"])  # `import math` inside the program


def test_feedback(humaneval, mbpp):
    leap = next(p for p in mbpp.problems if "leap" in p.question)
    assert mbpp.feedback(leap, "```python\n" + leap.metadata["code"] + "\n```") == \
        "all tests passed"
    fb = mbpp.feedback(leap, "def is_leap(y):\n    return y % 4 == 0\n")
    assert fb.startswith("failed at line") and "is_leap(1900) == False" in fb
    assert fb.endswith("AssertionError")
    assert "NameError" in mbpp.feedback(leap, "def leap(y):\n    return True\n")
    assert mbpp.feedback(leap, "") == "no Python code found in the reply"
    p = humaneval.problems[0]
    assert "ZeroDivisionError" in humaneval.feedback(p, "    return 1 // 0\n")
    assert "SyntaxError" in humaneval.feedback(p, "```python\ndef add_digits(n)\n```")
    quick = tasks.load("humaneval", source="local", limit=1)
    quick.cpu_seconds, quick.timeout = 1, 3.0
    assert quick.feedback(p, "    while True:\n        pass\n").startswith("timed out")


def _verify(task, p):
    good = p.metadata.get("canonical_solution") or p.metadata.get("code")
    bad = "    return None\n" if task.name == "humaneval" else "def nothing():\n    pass\n"
    return task.check(p, good), task.check(p, bad)


def test_every_committed_code_reference(humaneval, mbpp):
    """Each canonical solution passes its own tests in the sandbox; a wrong one fails."""
    assert len(humaneval) >= 30 and len(mbpp) >= 30
    jobs = [(t, p) for t in (humaneval, mbpp) for p in t.problems]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: _verify(*job), jobs))
    assert [p.id for (t, p), r in zip(jobs, results) if r != (True, False)] == []
    assert any(p.metadata["test_setup_code"] for p in mbpp.problems)
    assert any(p.question.count("def ") > 1 for p in humaneval.problems)  # prompt helpers


def _brute_pass_at_k(n, c, k):
    draws = list(combinations(range(n), k))  # samples 0..c-1 are the correct ones
    return sum(any(i < c for i in d) for d in draws) / len(draws)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            exact = 1 - comb(n - c, k) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12)
            assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_edges_and_large_n():
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(2000, 1, 1000) == pytest.approx(0.5)  # C(n, k) overflows a float here
    for args in ((5, 6, 1), (5, 2, 0), (5, 2, 6), (-1, 0, 1), (5, 2.0, 1)):
        with pytest.raises(ValueError):
            pass_at_k(*args)
