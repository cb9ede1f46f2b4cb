"""The task seam (issue 17): answer readers on the formats models actually produce, equivalence
checks, the committed problem sets, loading, prompts, and the import boundary."""
import ast
import json
import logging
import threading
from pathlib import Path

import pytest

from workbench import tasks
from workbench.paths import data_dir
from workbench.tasks import competition, gsm8k

GSM8K_READS = [  # reply -> reading (None: unreadable, never a wrong number)
    ("The answer is 1,200.", "1200"), ("A: 3.5", "3.5"), ("It costs $18.00.", "18"),
    ("She pays 18 dollars", "18"), ("They drive 18 km", "18"), ("-7", "-7"),
    ("The answer is -7.", "-7"), ("−7 degrees", "-7"), ("#### 18", "18"),
    ("So 9*2 = 18.\n#### 18", "18"), (r"The total is $\boxed{18}$.", "18"),
    ("**Answer:** 18", "18"), ("18.", "18"), ("The answer is 0.50.", "0.5"),
    ("The answer is $1,234,567.50", "1234567.5"), ("Answer: 25%", "25"),
    (r"\boxed{1{,}200}", "1200"), (r"\boxed{\$18.00}", "18"), (r"$\boxed{\frac{7}{2}}$", "3.5"),
    ("The answer is 5 + 3 = 8.", "8"), ("The answer is: **42**", "42"), ("-$7", "-7"),
    ("The answer is 18. Check: 18 * 2 = 36, so the answer is right.", "18"),
    ("First 12 apples, then 15 more; 27 in all", "27"),  # no marker: the last number
    ("The answer is 1/3.", "1/3"), ("10-3=7", "7"), ("The difference is 10 - 3", "3"), ("She ate 3/4 of the pie", "0.75"),
    ("It costs $ 18", "18"), ("Profit: $-7", "-7"), ("The answer is 4 - 11 = -7.", "-7"),
    ("The answer is eighteen.", None), ("I cannot tell.", None), ("", None),
    (r"\boxed{}", None), ("x5 y", None),
]


@pytest.mark.parametrize("reply,expected", GSM8K_READS)
def test_gsm8k_reader(reply, expected):
    assert gsm8k.read_number(reply) == expected


def test_gsm8k_equivalence_is_numeric():
    task = tasks.load("gsm8k", source="local")
    p = next(q for q in task.problems if q.reference == "2850")
    for reply in ("The answer is 2,850.", "#### 2850.00", "2850.0", r"\boxed{2{,}850}"):
        assert task.check(p, reply), reply
    for reply in ("The answer is 285.", "The answer is 2,851", "no idea"):
        assert not task.check(p, reply), reply
    assert gsm8k.same_number("18", "18.00") and not gsm8k.same_number("18", None)
    invented = "So 2850.\nThe answer is 2850.\n\nQuestion: Bob has 4 pens. The answer is 4."
    assert task.extract(invented) == "2850"  # a few-shot model's own next question is cut


MATH_READS = [
    (r"so the answer is $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
    (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"), (r"\boxed 5", "5"),
    (r"$\boxed 5$.", "5"), (r"\fbox{7}", "7"), (r"first \boxed{1}, finally \boxed{2}", "2"),
    (r"\boxed{\left( 1, 2 \right]}", "(1,2]"), (r"\boxed{\dfrac{3}{4}}", r"\frac{3}{4}"),
    ("Final Answer: The final answer is $\\dfrac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
    ("The answer is 12.", "12"), (r"\frac{1}{2}", r"\frac{1}{2}"), ("(1,2]", "(1,2]"),
    (r"The answer is \(\frac{1}{2}\).", r"\frac{1}{2}"), (r"\[ x = 2 \]", "x=2"),
    (r"\boxed{90^\circ}", "90"), (r"\boxed{10\%}", "10"), (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    (r"\boxed{\text{(C)}}", "(C)"), ("$2\\sqrt{3}$", r"2\sqrt{3}"), (r"\boxed{x^2 + 1}", "x^2+1"),
    (r"\boxed{[2,5) \cup (5,\infty)}", r"[2,5)\cup(5,\infty)"), (r"\boxed{-3, 3}", "-3,3"),
    ("I think it is 5", None), (r"\boxed{x^2+1", None), (r"\boxed{}", None), ("", None),
    ("We are done.\nSo 4", None),
]


@pytest.mark.parametrize("reply,expected", MATH_READS)
def test_math_reader(reply, expected):
    assert competition.read_answer(reply) == expected


# gold, answer, plain exact match, math-verify: where the two disagree, and where they agree
MATH_EQUIVALENCE = [
    (r"\frac{1}{2}", "0.5", False, True), (r"\frac{1}{2}", r"\dfrac12", False, True),
    (r"2\sqrt{3}", r"\sqrt{12}", False, True), ("(1,2]", r"x \in (1,2]", False, True),
    (r"\frac{\sqrt{3}}{2}", r"\sqrt{3}/2", False, True), ("x^2+2x+1", "(x+1)^2", False, True),
    ("-3, 3", "3, -3", False, True), ("6", "6.0", False, True),
    ("(1,2]", "(1, 2]", True, True), ("(1,2]", r"\left(1,2\right]", True, True),
    (r"\frac{1}{2}", r"\dfrac{1}{2}", True, True), ("(1,2]", "[1,2]", False, False),
    (r"\pi", "3.14159", False, False), ("5", r"\text{five}", False, False),
]


@pytest.mark.parametrize("gold,answer,exact,mv", MATH_EQUIVALENCE)
def test_math_equivalence_vs_exact_match(gold, answer, exact, mv):
    assert competition.exact_match(gold, answer) is exact
    assert competition.equivalent(gold, answer) is mv


def test_math_verify_off_the_main_thread(caplog):
    caplog.set_level(logging.DEBUG, logger="math_verify")
    out = []
    t = threading.Thread(target=lambda: out.append(
        [competition.equivalent(r"\frac{2}{3}", "4/6"), competition.equivalent("2", "3")]))
    t.start()
    t.join()
    assert out == [[True, False]]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_committed_problem_sets_are_right():
    from math_verify import parse
    g = tasks.load("gsm8k", source="local")
    assert len(g) >= 30 and all(g.check(p, p.metadata["answer"]) for p in g.problems)
    assert any("," in p.metadata["answer"].split("####")[1] for p in g.problems)
    assert {"-7", "0.75", "1.75"} <= {p.reference for p in g.problems}
    m = tasks.load("math", source="local")
    assert len(m) >= 30
    for p in m.problems:
        assert parse("\\boxed{" + p.reference + "}", parsing_timeout=5), p.reference
        assert m.check(p, p.metadata["solution"]) and m.check_exact(p, p.metadata["solution"])
        assert not m.check(p, r"\boxed{1000001}"), p.reference


def test_load_local_file_and_errors(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"question": "1+1?", "answer": "1+1=2\n#### 2"},
            {"question": "Owe 3?", "answer": "#### -3"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = tasks.load("gsm8k", path=path)
    assert task.source == str(path) and [p.reference for p in task.problems] == ["2", "-3"]
    assert task.problems[0].id == "gsm8k-0000" and task.check(task.problems[1], "It is -3.")
    (tmp_path / "list.json").write_text(json.dumps(rows))
    assert len(tasks.load("gsm8k", path=tmp_path / "list.json", limit=1)) == 1
    with pytest.raises(ValueError, match="name"):
        tasks.load("gsm9k")
    with pytest.raises(FileNotFoundError, match="path"):
        tasks.load("gsm8k", path=tmp_path / "missing.jsonl")
    with pytest.raises(RuntimeError, match="source='hub'"):
        tasks.load("gsm8k", source="hub")  # the tests run with HF_HUB_OFFLINE=1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "?", "answer": "no marker"}) + "\n")
    with pytest.raises(ValueError, match="####"):
        tasks.load("gsm8k", path=bad)


def test_offline_means_local(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert not tasks.hub_available()
    task = tasks.load("math")
    assert task.source.endswith("math.jsonl") and task.problems[0].metadata["level"]


class _LM:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer


def test_prompts_few_shot_and_chat_template():
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    plain = _LM(tok)
    g = tasks.load("gsm8k", source="local")
    p = g.problems[0]
    few = g.prompt(p, plain)
    assert few.count("Question:") == 5 and few.endswith(f"Question: {p.question}\nAnswer:")
    tok.chat_template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>"
                         "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    chat = g.prompt(p, _LM(tok))
    assert chat == f"<|user|>{g.instruction}{p.question}</s><|assistant|>"
    m = tasks.load("math", source="local")
    assert "\\boxed{}" in m.prompt(m.problems[0], _LM(tok))
    assert m.prompt(m.problems[0]).endswith("Solution:")  # no model: few-shot
    he = tasks.load("humaneval", source="local")
    assert he.prompt(he.problems[0]) == he.problems[0].question
    assert "```python" in he.prompt(he.problems[0], _LM(tok))


def test_steps_only_where_the_task_has_them():
    g = tasks.load("gsm8k", source="local")
    assert g.steps("a\nb") is None
    with pytest.raises(NotImplementedError, match="step checker"):
        g.check_step(g.problems[0], "", "1+1=2")


def test_generic_modules_do_not_import_tinyworld():
    root = Path(tasks.__file__).parent
    offenders = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                sep = "" if base.endswith(".") else "."
                names = [base] + [f"{base}{sep}{a.name}" for a in node.names]
            if any("tinyworld" in n or n in ("..prompts", "workbench.prompts") for n in names):
                offenders.append(path.name)
    assert set(offenders) == {"tinyworld.py"}


def test_a_failed_hub_load_falls_back_and_says_so(monkeypatch):
    """``source="auto"`` with the Hub reachable in principle but failing: the local problems
    stand in, and ``task.source`` (shown in its repr) says the Hub failed and why."""
    monkeypatch.setattr(tasks, "hub_available", lambda: True)

    def unreachable(name, split):
        raise ConnectionError("no route to huggingface.co")
    monkeypatch.setattr(tasks, "_hub_records", unreachable)
    task = tasks.load("gsm8k")
    assert "gsm8k.jsonl" in task.source and "openai/gsm8k failed" in task.source
    assert "ConnectionError: no route" in repr(task) and len(task) >= 30
