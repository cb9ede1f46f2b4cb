"""Chapters 06-11 on a learner's own model and task (issue 17): every code cell runs top to
bottom with ``MODEL`` set to a causal LM outside TinyWorld (its own tokenizer, built here and
loaded by path as a Hub model would be) and ``TASK`` set to GSM8K's format; chapter 09 also
with a code task, refined by execution feedback against each problem's own tests.  The claims
about TinyWorld's own target are checked only for TinyWorld (`TINYWORLD` in each chapter)."""
import pytest

from chapter_run import run_chapter, train_foreign
from workbench import tasks
from workbench.reward_models import LLMJudge
from workbench.tasks.base import Format

CHAPTERS = ["06_chained_metageneration", "07_parallel_metageneration", "08_step_level_search",
            "09_refinement", "10_external_information", "11_token_cost"]


@pytest.fixture(scope="module")
def gsm8k_model(tmp_path_factory):
    """Memorises the few-shot prompt of GSM8K's first local problem, a worked reply with the
    right answer, and a question of its own (as base models go on)."""
    task = tasks.load("gsm8k", source="local")
    p = task.problems[0]
    text = (task.few_shot(p) + f" Let me work it out step by step. The answer is {p.reference}."
            f"\n\nQuestion: {task.problems[1].question}\nAnswer: The answer is 3.\n\n")
    return str(train_foreign(tmp_path_factory.mktemp("gsm8k-gpt2"), text))


@pytest.fixture(scope="module")
def code_model(tmp_path_factory):
    """An instruct model (chat template) that memorises the chat prompt of HumanEval's first
    local problem and a fenced reply that passes its tests."""
    task = tasks.load("humaneval", source="local")
    p = task.problems[0]
    reply = "```python\n" + p.metadata["prompt"] + p.metadata["canonical_solution"] + "```"
    from transformers import PreTrainedTokenizerFast  # noqa: F401  (the template is Jinja)
    from chapter_run import CHAT_TEMPLATE
    import jinja2
    user = task.user_message(p)
    text = jinja2.Template(CHAT_TEMPLATE).render(
        messages=[{"role": "user", "content": user}], add_generation_prompt=True) + reply
    return str(train_foreign(tmp_path_factory.mktemp("code-gpt2"), text + "<|endoftext|>",
                             chat=True, steps=250))


@pytest.mark.tier
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_a_foreign_model_and_gsm8k(chapter, gsm8k_model, monkeypatch):
    ns = run_chapter(chapter, monkeypatch, MODEL=gsm8k_model, TASK="gsm8k")
    assert ns["lm"].model.name_or_path == gsm8k_model
    assert ns["task"].name == "gsm8k" and not ns["TINYWORLD"]
    assert isinstance(ns["fmt"], Format) and ns["fmt"].stop == ns["task"].stop
    if chapter == "06_chained_metageneration":   # thought cut at the marker, read by GSM8K
        task, cot = ns["task"], ns["cot"]
        assert set(ns["results"]) == {"direct answer", "chain-of-thought"}   # others: TinyWorld
        assert "The answer is" not in cot.info["thought"] and ns["fmt"].marker == "The answer is "
        assert cot.text.startswith(cot.info["thought"] + "The answer is ")
        assert ns["runs"]["direct answer"](ns["problem"]).text.startswith("The answer is ")
        assert list(ns["diffs"]) == ["chain-of-thought - direct answer"]   # paired, same problems
        assert ns["diffs"]["chain-of-thought - direct answer"].n == len(ns["problems"]) == 30
    if chapter == "09_refinement":   # the answer key graded each version with GSM8K's reader
        loop, task = ns["calc"], ns["task"]
        assert ns["extrinsic"] == "answer key (oracle)" and not ns["CODE"]
        answers = [task.extract(v) for v in loop.info["versions"]]
        assert all(a is None or isinstance(a, str) for a in answers)
        assert loop.info["feedback"][0]["done"] == task.check(ns["problem"], ns["y0"].text)
    if chapter in ("10_external_information", "11_token_cost"):
        # the learner's model judged as verifier and PRM, and Table 5's bill is its reading
        task, judge, prompt = ns["task"], ns["verifier"], ns["prompt"]
        assert isinstance(judge, LLMJudge) and ns["prm"] is judge and judge.lm is ns["lm"]
        assert prompt == task.prompt(task.problems[0], ns["lm"])
        r = ns["runs_t5"]["reranking"] if chapter.startswith("10") else \
            ns["runs"]["best-of-8 (verifier)"]
        texts = [c.text for c in r.candidates]
        assert r.scores == pytest.approx(judge.reply_scores(prompt, texts), abs=1e-6)
        assert r.cost.external_tokens == judge.reply_cost(prompt, texts).external_tokens > 0
    if chapter == "10_external_information":   # the exact check is GSM8K's answer key
        picks, problem = ns["picks"], ns["problem"]
        assert task.problem_of(prompt) == problem == task.problems[0]
        assert picks["exact check"].scores == [float(task.check(problem, c.text))
                                               for c in picks["exact check"].candidates]
        w = ns["runs_t5"]["weighted self-consistency"]     # voted with GSM8K's reader
        assert w.info["answers"] == [task.extract(task.cut(c.text)) for c in w.candidates]
        assert all(a is None or isinstance(a, str) for a in w.info["answers"])
        assert ns["rows"] == [] and ns["hits"] == {} and "calc_gain" not in ns  # [CALC]: TinyWorld's
        assert "slips" not in ns   # the slip test needs TinyWorld's verifier
    if chapter == "11_token_cost":   # voting with GSM8K's reader; refinement by the judge
        runs = ns["runs"]
        v = runs["majority vote N=8"]
        assert v.info["answers"] == [task.extract(task.cut(c.text)) for c in v.candidates]
        assert v.answer is None or isinstance(v.answer, str)
        assert set(runs) == {"greedy", "majority vote N=8", "best-of-8 (verifier)",
                             "beam 2x2 (PRM)", "refine (judge)"}
        assert runs["refine (judge)"].cost.external_tokens > 0
    if chapter == "07_parallel_metageneration":   # votes read by GSM8K's reader; the model judges
        task, judge, prompt, problem = ns["task"], ns["verifier"], ns["prompt"], ns["problem"]
        assert isinstance(judge, LLMJudge) and judge.lm is ns["lm"] and problem == task.problems[0]
        assert ns["correct"] == problem.reference                # the key as fmt.answer reads it
        for r in (ns["mv"], ns["wv"]):
            assert r.info["answers"] == [task.extract(task.cut(c.text)) for c in r.candidates]
            assert all(a is None or isinstance(a, str) for a in r.info["answers"])
        texts = [c.text for c in ns["bon"].candidates]
        assert ns["bon"].scores == pytest.approx(judge.reply_scores(prompt, texts), abs=1e-6)
        assert ns["bon"].cost.external_tokens == judge.reply_cost(prompt, texts).external_tokens
        assert ns["fmt"].answer(ns["mbr"].text) == ns["mv"].answer     # MBR(match) = voting
        assert ns["explorer"].answer_fn == ns["fmt"].answer and ns["explorer"].stop == task.stop
    if chapter == "08_step_level_search":   # the judge as PRM and verifier, no oracle column
        task, fmt, judge = ns["task"], ns["fmt"], ns["verifier"]
        assert isinstance(judge, LLMJudge) and ns["prm"] is judge and judge.lm is ns["lm"]
        assert list(ns["table"]) == ["logprob(mean)", "prm(last)", "verifier"]
        assert ns["oracle_beam"] is None and ns["beam"].cost.external_tokens > 0
        for r in ns["runs"].values():    # answers read by GSM8K's reader
            assert r.answer == fmt.answer(r.text) and (r.answer is None or isinstance(r.answer, str))
            for n in r.tree[1:]:         # the line that states the answer ends the solution:
                assert "Question:" not in n.step   # no search went on to a question of its own
                if n.terminal and n.step_obj is not None and n.step_obj.finish == "stop":
                    assert "The answer is" in n.step


@pytest.mark.tier
def test_refinement_chapter_runs_on_a_code_task(code_model, monkeypatch):
    ns = run_chapter("09_refinement", monkeypatch, MODEL=code_model, TASK="humaneval")
    task, problem = ns["task"], ns["problem"]
    assert task.name == "humaneval" and ns["fmt"].chat and ns["fmt"].stop == ()
    # the interpreter ran each first sample against *this* problem's unit tests: it accepts
    # exactly the programs the task's checker passes (the memorised one among them)
    assert [z.done for z in ns["fb"]] == [task.check(problem, d.text) for d in ns["draws"]]
    assert any(z.done for z in ns["fb"])
    assert all(z.text == task.feedback(problem, d.text) for z, d in zip(ns["fb"], ns["draws"]))
    # the loop's first feedback is that run's message on y(0); refining re-asked the model
    loop = ns["calc"]
    assert ns["extrinsic"] == "interpreter + tests (tool)"
    assert loop.info["feedback"][0]["text"] == task.feedback(problem, ns["y0"].text)
    assert loop.info["feedback"][0]["done"] or loop.info["refinements"] >= 1
    # pass@1 before / after: the memorised program passes problem 0's tests, and no program it
    # writes passes another problem's (each problem is checked with its own tests)
    before = ns["before"]
    assert len(before) == ns["N_PROBLEMS"] and all(len(b) == ns["SAMPLES"] for b in before)
    assert any(before[0]) and not any(any(b) for b in before[1:])
    assert abs(ns["pass1"](before) - sum(map(sum, before)) / (len(before) * ns["SAMPLES"])) < 1e-12
    assert set(ns["live"]) >= {"interpreter + tests (tool)", "no feedback (resample)"}
