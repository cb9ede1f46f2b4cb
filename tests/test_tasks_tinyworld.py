"""TinyWorld's tasks behind the task seam agree with TinyWorld's own exact checkers on its test
sets (answers, steps, records), and get the prompt format each kind of model needs."""
import json
import random

import pytest

from workbench import tasks
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld.worlds import validate_record


@pytest.fixture(scope="module")
def arith():
    return tasks.load("tinyworld-arithmetic")


@pytest.fixture(scope="module")
def records():
    return tasks.load("tinyworld-json")


def test_arithmetic_answers_agree_with_the_exact_checker(arith):
    lines = (data_dir() / "tasks" / "arithmetic.jsonl").read_text().splitlines()
    raw = [json.loads(line) for line in lines]
    assert len(arith) == len(raw) > 300
    rng, disagreements, wrong = random.Random(0), [], 0
    for p, rec in zip(arith.problems, raw):
        problem = ar.Problem(rec["expression"])
        assert p.reference == str(rec["answer"]) and p.id == rec["id"]
        for text in (problem.solution(), ar.slipped_solution(problem, rng)):
            if arith.check(p, text) != ar.check_answer(problem, text):
                disagreements.append((p.id, text))
            wrong += not ar.check_answer(problem, text)
    assert disagreements == [] and wrong > 100  # slips do make wrong answers


def test_arithmetic_steps_agree_with_the_exact_step_checker(arith):
    rng, checked = random.Random(1), 0
    for p in arith.problems[::4]:
        problem = ar.Problem(p.question)
        text = ar.slipped_solution(problem, rng)
        exact = ar.check_steps(problem, text).correct
        lines = arith.steps(text)
        assert lines == ar.split_steps(text)
        for k, line in enumerate(lines):
            prefix = "".join(s + "\n" for s in lines[:k])
            assert arith.check_step(p, prefix, line) == exact[k], (p.question, k, text)
            checked += 1
    assert checked > 200
    p = arith.problems[0]
    assert arith.check_step(p, "", ar.Problem(p.question).steps()[0])
    assert not arith.check_step(p, "", "1+1=3")


@pytest.mark.parametrize("reply,expected", [
    ("7*3=21, 12+21-5\nA: 28", "28"), ("A: -4", "-4"), ("28", "28"), (" 28\n", "28"),
    ("so the answer is 28", "28"), ("3+4=7\nA: 7\n\nQ: 8*2\n8*2=16\nA: 16", "7"),
    ("no answer", None), ("A: ", None),
])
def test_arithmetic_reader(arith, reply, expected):
    assert arith.extract(reply) == expected


class _Tok:
    chat_template = None

    def get_vocab(self):
        return {"a": 0}


class _LM:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer


def test_arithmetic_prompt_formats(arith):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    p = arith.problems[0]
    bare = f"Q: {p.question}\n"
    assert arith.prompt(p) == bare and arith.prompt(p, _LM(tok)) == bare  # TinyWorld model
    few = arith.prompt(p, _LM(_Tok()))                                    # another plain LM
    assert few.endswith(bare) and few.count("Q: ") == 5 and "A: " in few
    tok.chat_template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}"
    assert arith.prompt(p, _LM(tok)) == f"[user] {arith.instruction}{bare}"


def test_json_records_agree_with_the_validator(records):
    assert len(records) == 50
    for p in records.problems:
        prefix = p.question[len("JSON:\n"):]
        continuation = p.reference[len(prefix):]
        assert p.reference.startswith(prefix) and records.check(p, continuation)
        assert records.check(p, continuation + "\n\nJSON:\n{")  # stop at the next record
        for bad in (continuation.replace('"member"', '"memb"'),
                    continuation.replace('"age": ', '"age": 1'), continuation[:-1]):
            assert records.check(p, bad) == validate_record(prefix + bad)[0] is False
    p = records.problems[1]
    assert records.check(p, "Sure!\n\n```json\n" + p.reference + "\n```\nAnything else?")
    assert records.check(p, "```json\n" + p.reference + "\n```")
    assert records.extract("x " + p.reference + " y") == p.reference


def test_json_needs_the_prompts_prefix(records):
    p = next(q for q in records.problems if q.question != "JSON:\n")
    other = next(q for q in records.problems
                 if not q.reference.startswith(p.question[len("JSON:\n"):]))
    assert validate_record(other.reference)[0] and not records.check(p, other.reference)
    assert records.check(p, p.reference)  # a reply restating the whole record
    assert records.steps("{}") is None
    with pytest.raises(NotImplementedError):
        records.check_step(p, "", "{")
    assert records.prompt(p) == p.question
    assert records.prompt(p, _LM(_Tok())).endswith(p.question)
