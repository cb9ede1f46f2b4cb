"""Prompt formats for models outside TinyWorld (issue 9): few-shot prompts, stop strings and
answer extraction, proven on a causal LM with its own tokenizer, built here and loaded by path
as a Hub model would be."""
import pytest

import workbench as wb
from chapter_run import run_chapter, train_foreign
from workbench import meta, prompts
from workbench.tinyworld import formats
from workbench.tinyworld import arithmetic as ar

QUESTION, NEXT = ar.Problem("3+4"), ar.Problem("8*2")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A GPT-2 with a freshly trained byte-level BPE (not TinyWorld's vocabulary), saved with
    save_pretrained and loaded by path.  It memorises one text: the few-shot prompt for 3+4, its
    solution, then a question of its own (8*2) with a different answer, as base models do."""
    fmt = formats.arithmetic_format(wb.load("tinyworld"), shots=4)
    text = (fmt.prompt(QUESTION) + QUESTION.solution() + "\n\n" + NEXT.prompt() + NEXT.solution()
            + "\n\n")
    path = train_foreign(tmp_path_factory.mktemp("foreign-gpt2"), text)
    return wb.load(str(path), device="cpu")


def test_tinyworld_models_get_the_bare_formats(target, draft):
    problem = ar.Problem("12+7*3-5")
    for lm in (target, draft):
        fmt = formats.arithmetic_format(lm)
        assert formats.speaks_tinyworld(lm)
        assert fmt.prompt(problem) == problem.prompt() and fmt.stop == ()
        assert formats.arithmetic_format(lm, calc=True).prompt("2+3") == "Q (calc): 2+3\n"
        assert formats.json_format(lm).prompt() == "JSON:\n"


def test_few_shot_prompt_for_a_model_loaded_by_path(foreign):
    assert not formats.speaks_tinyworld(foreign)
    fmt = formats.arithmetic_format(foreign)
    problem = ar.Problem("34+5*6-12")
    text = fmt.prompt(problem)
    assert text.startswith(formats.ARITHMETIC_INSTRUCTION) and text.endswith(problem.prompt())
    assert text.count("\nA: ") == 4 and fmt.stop            # four worked examples, stop strings
    assert ar.problem_from_prompt(text) == problem           # checkers and oracles still work
    for block in text[len(formats.ARITHMETIC_INSTRUCTION):].split("\n\n")[:-1]:
        q, _, solution = block.partition("\n")
        assert ar.check_answer(ar.problem_from_prompt(q + "\n"), solution)
        assert all(ar.check_steps(ar.problem_from_prompt(q + "\n"), solution).correct)
    assert formats.arithmetic_format(foreign, shots=2).prompt(problem).count("\nA: ") == 2
    assert formats.arithmetic_format(foreign, seed=1).prompt(problem) != text


def test_voting_end_to_end_with_a_model_loaded_by_path(foreign):
    """Sampling stops at the end of the model's own answer and the answers are read off; without
    the stop strings the model goes on with its own question and a naive reader is fooled."""
    fmt = formats.arithmetic_format(foreign)
    gen = meta.LMGenerator(foreign, stop=fmt.stop, max_new_tokens=60)
    res = meta.majority_vote(fmt.prompt(QUESTION), gen, 8, seed=0)
    texts = [c.text for c in res.candidates]
    assert sum(t == QUESTION.solution() + "\n\n" for t in texts) >= 6, texts   # T = 1 noise
    assert [c.finish_reason for c in res.candidates] == ["stop"] * 8
    assert all(t.endswith(fmt.stop) for t in texts)
    assert res.answer == QUESTION.answer == 7
    assert res.cost.output_tokens == sum(len(c.token_ids) for c in res.candidates)
    ramble = meta.LMGenerator(foreign, greedy=True, max_new_tokens=60)(fmt.prompt(QUESTION))
    assert NEXT.prompt() in ramble.text                   # it invents the next question...
    assert ar.extract_answer(ramble.text) == NEXT.answer  # ...whose answer a naive reader takes
    assert fmt.answer(ramble.text) == QUESTION.answer     # the format reads only its own


def test_answer_extraction_reads_only_the_models_own_answer():
    fmt = formats.ArithmeticFormat(header="x", stop=prompts.STOP)
    assert fmt.answer("3+4=7\nA: 7\n\nQ: 1+1\n1+1=2\nA: 2") == 7
    assert fmt.answer("Let me think. The answer is **-12**.") == -12
    assert fmt.answer("no number here") is None
    assert formats.ArithmeticFormat().answer("1+1=2\nA: 2\nA: 3") == 3   # bare: last marker


@pytest.mark.parametrize("reply, answer", [
    ("3+4\nA: 7", 7), ("A: -12", -12), ("A: 28.", 28), ("So the answer is 42", 42),
    ("The answer is **15**", 15), ("The answer is 1,200.", 1200), ("A: 1,234,567", 1234567),
    # not an integer answer, or another task's format: None, never a wrong number
    ("A: 3.5", None), ("the answer is 3.5 apples", None), ("A: 12,3", None),
    ("#### 18", None), ("\\boxed{\\frac{1}{2}}", None), ("no answer here", None),
    # an expression or a fraction after "the answer is" states no integer at its first number
    ("The answer is 5 + 3 = 8.", None), ("The answer is 1/3.", None),
    ("The answer is 4 - 11 = -7.", None), ("The answer is 6 * 7", None),
    ("The answer is 3 5", None), ("The answer is 18. Check: 18 * 2 = 36", 18),
    ("The answer is: **42**", 42), ("The answer is 12 apples", 12)])
def test_the_default_reader_is_never_silently_wrong(reply, answer):
    assert prompts.extract_answer(reply) == answer
    assert meta.parallel.default_answer(reply) == answer


def test_json_format_for_a_model_loaded_by_path(foreign):
    fmt = formats.json_format(foreign)
    text = fmt.prompt()
    assert text.endswith("JSON:\n") and text.count("JSON:\n") == 5
    for line in text.splitlines():
        if line.startswith("{"):
            assert fmt.valid(line) == (True, "valid")
    fenced = '```json\n{"name": "Ada", "age": 36, "city": "Paris", "pets": [], "member": true}```'
    assert fmt.valid(fenced)[0] and not formats.json_format(foreign, shots=0).valid(fenced)[0]
    assert fmt.valid("no record")[0] is False
    assert prompts.first_json_object('say {"a": "}{", "b": {"c": 1}} end') == \
        '{"a": "}{", "b": {"c": 1}}'


@pytest.mark.parametrize("bad", [-1, 17, 2.5, True, "4"])
def test_bad_shots_are_rejected_by_name(foreign, bad):
    with pytest.raises(ValueError, match="shots"):
        formats.arithmetic_format(foreign, shots=bad)


def test_bad_problem_is_rejected_by_name(target):
    with pytest.raises(TypeError, match="problem"):
        formats.arithmetic_format(target).prompt(42)


@pytest.mark.parametrize("chapter", ["06_chained_metageneration", "07_parallel_metageneration",
                                     "08_step_level_search", "09_refinement",
                                     "10_external_information", "11_token_cost"])
@pytest.mark.tier
def test_arithmetic_chapters_run_top_to_bottom_on_a_model_loaded_by_path(foreign, monkeypatch,
                                                                          chapter):
    """The Colab path with a Hub model, offline: a chapter's cells run with ``MODEL`` set to
    the foreign model's directory (few-shot prompts, its own tokenizer), exercises included
    (their claims about TinyWorld's own target are checked only for TinyWorld's models).
    Chapter 07's JSON rejection sampling gets no valid record from this memoriser and says so
    (BudgetExceeded, printed) instead of stopping the chapter."""
    # eight problems run every cell (the measured claims are about TinyWorld's own target)
    fewer = {"N_PROBLEMS": 8} if chapter == "06_chained_metageneration" else {}
    ns = run_chapter(chapter, monkeypatch, MODEL=foreign.model.name_or_path, **fewer)
    assert ns["lm"].model.name_or_path == foreign.model.name_or_path
    assert ns["fmt"].header.count("\nA: ") == 4 and ns["fmt"].stop == prompts.STOP
