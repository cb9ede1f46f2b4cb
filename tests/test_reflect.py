"""Self-Refine with a written critique and Reflexion (survey §4.4, eqs. 41-45; Table 5)."""
import pytest

import workbench as wb
from workbench import meta
from workbench.budget import Cost, table5
from workbench.meta import TextGenerator, TextOutput
from workbench.tasks import load as load_task

T_IN, T = 7, 5


class Fixed:
    """A scripted generator whose every call bills the same tokens: ``t_in`` read (plus the
    critique's ``t`` when the prompt shows one, as Table 5's refiner reads it) and ``t``
    written.  ``reply(prompt, k)`` gives the text of call k; prompts are recorded."""

    def __init__(self, reply, t_in=T_IN, t=T):
        self.reply, self.t_in, self.t, self.prompts = reply, t_in, t, []

    def generate(self, prompt, n=1, seed=None):
        self.prompts.append(prompt)
        text = self.reply(prompt, len(self.prompts) - 1)
        shown = self.t if "Feedback on your last reply" in prompt else 0
        return [TextOutput(text, Cost(input_tokens=self.t_in + shown, output_tokens=self.t,
                                      calls=1))]


def words(k, tag):
    return " ".join(f"{tag}{i}" for i in range(k))


def one_model(accept_after=None):
    """Initial answers, critiques and refinements of T words each; the critique of version
    ``accept_after`` (and later) opens with "No errors"."""
    latest = [-1]

    def reply(prompt, k):
        if prompt.endswith("Review:"):                 # a critique of the latest version
            if accept_after is not None and latest[0] >= accept_after:
                return "No errors. " + words(T - 2, "ok")
            return words(T, f"bad{k}_")
        latest[0] += 1                                 # a new version y(latest)
        return words(T - 1, "y") + f" v{latest[0]}"
    return Fixed(reply)


def test_self_refine_bills_table5s_self_feedback_row():
    """N_r = 3 refinements, never accepted: 1 + 3 + 3 calls, exactly Table 5's row."""
    g = one_model()
    r = meta.self_refine("Q: x\n", g, max_iterations=3)
    assert r.info["stopped"] == "max_iterations" and r.info["refinements"] == 3
    want = table5("refinement (self-feedback)", T_IN, T, n_r=3)
    assert (r.cost.input_tokens, r.cost.output_tokens, r.cost.external_tokens) == \
        (want.input_tokens, want.output_tokens, want.external_tokens) == (64, 35, 0)
    assert r.cost.calls == 7
    # the general refinement row is what the loop would bill if the critique were free
    general = table5("refinement", T_IN, T, n_r=3)
    assert r.cost.output_tokens - general.output_tokens == 3 * T


def test_an_accepting_critique_is_one_call_more_than_the_row():
    """Stopping because the critique accepts y(2): N_r = 2 refinements took 3 critiques."""
    r = meta.self_refine("Q: x\n", one_model(accept_after=2), max_iterations=3)
    assert r.info["stopped"] == "feedback: done" and r.info["refinements"] == 2
    row = table5("refinement (self-feedback)", T_IN, T, n_r=2)
    assert (r.cost.input_tokens - row.input_tokens, r.cost.output_tokens - row.output_tokens) \
        == (T_IN, T)
    assert (r.cost.input_tokens, r.cost.output_tokens, r.cost.calls) == (52, 30, 6)


def test_the_critique_sees_the_question_and_the_latest_version_and_the_refiner_the_critique():
    g = one_model(accept_after=1)
    r = meta.self_refine("Q: x\n", g, max_iterations=3)
    y0, crit, y1 = r.info["versions"][0], r.info["feedback"][0]["text"], r.info["versions"][1]
    assert g.prompts[1] == meta.reflect.CRITIQUE_TEMPLATE.replace("{prompt}", "Q: x\n") \
        .replace("{solution}", y0)
    assert g.prompts[2] == ("Q: x\n" + y0 + "\n\nFeedback on your last reply: " + crit
                            + "\nWrite a corrected reply in the same format.\n")
    assert g.prompts[3].endswith(y1 + "\n\n" + meta.reflect.CRITIQUE_TEMPLATE.split("\n\n")[1])
    assert r.info["feedback"][1]["done"] and r.text == y1
    assert r.info["feedback"][0]["cost"]["output_tokens"] == T     # the critique is output


def test_critique_feedback_stop_rules_and_errors():
    say = lambda text: TextGenerator(lambda p, s: text)
    assert meta.critique_feedback(say("  no ERRORS found"))("Q\n", ["A: 1"], []).done
    assert not meta.critique_feedback(say("Line 2 is wrong"))("Q\n", ["A: 1"], []).done
    h = meta.critique_feedback(say("LGTM"), done=lambda z: z == "LGTM")
    z = h("Q\n", ["A: 1"], [])
    assert z.done and z.text == "LGTM"
    assert (z.cost.input_tokens, z.cost.output_tokens, z.cost.external_tokens) == (23, 1, 0)
    with pytest.raises(ValueError, match="template"):
        meta.critique_feedback(say("x"), template="{prompt} only")
    with pytest.raises(ValueError, match="done"):
        meta.critique_feedback(say("x"), done="  ")


# -- Reflexion -------------------------------------------------------------------------------

def actor(prompts, right_when=lambda p: False):
    return TextGenerator(lambda p, s: prompts.append(p) or ("A: 4" if right_when(p) else "A: 5"))


def reflector(asked):
    return TextGenerator(lambda p, s: asked.append(p) or f"R{len(asked)}: add, do not multiply")


def is_four(prompt, text):
    return text == "A: 4", "expected 4, got " + text[3:]


def test_reflections_reach_the_next_prompt_and_the_attempt_passes():
    prompts, asked = [], []
    r = meta.reflexion("Q: 2+2\n", actor(prompts, lambda p: "R2:" in p), is_four,
                       reflector(asked), max_trials=4, memory=3)
    assert prompts[0] == "Q: 2+2\n"
    assert prompts[1] == ("Lessons from earlier attempts:\n- R1: add, do not multiply\n\n"
                          "Q: 2+2\n")
    assert "- R1: add, do not multiply\n- R2: add, do not multiply\n" in prompts[2]
    assert asked[0].startswith("Q: 2+2\nA: 5\n\nThis attempt failed: expected 4, got 5\n")
    assert r.info["stopped"] == "passed" and r.info["trials"] == 3 and r.text == "A: 4"
    assert r.scores == [0.0, 0.0, 1.0] and r.chosen == 2 and r.answer == 4
    assert r.info["prompts"] == prompts and len(r.info["reflections"]) == 2


def test_memory_keeps_only_the_last_reflections_and_the_last_failure_is_not_reflected_on():
    prompts, asked = [], []
    r = meta.reflexion("Q: 2+2\n", actor(prompts), is_four, reflector(asked), max_trials=5,
                       memory=2)
    assert r.info["stopped"] == "max_trials" and r.info["trials"] == 5 and len(asked) == 4
    assert r.info["memory"] == ["R3: add, do not multiply", "R4: add, do not multiply"]
    assert "R1:" in prompts[2] and "R2:" in prompts[2]
    assert "R1:" not in prompts[3] and "R2:" in prompts[3] and "R3:" in prompts[3]
    assert "R2:" not in prompts[4] and "R3:" in prompts[4] and "R4:" in prompts[4]
    assert r.text == "A: 5" and r.chosen == 4 and r.scores == [0.0] * 5


def test_reflexion_cost_is_attempts_reflections_and_the_evaluator():
    act = Fixed(lambda p, k: "A: 5", t_in=10, t=4)
    ref = Fixed(lambda p, k: "R", t_in=20, t=6)
    r = meta.reflexion("Q\n", act, is_four, ref, max_trials=3)
    # 3 attempts, 2 reflections, 3 messages of 4 words ("expected 4, got 5") as external
    assert r.cost == Cost(input_tokens=3 * 10 + 2 * 20, output_tokens=3 * 4 + 2 * 6,
                          external_tokens=3 * 4, calls=5)
    priced = lambda p, y: (False, "no", Cost(external_tokens=100))
    r = meta.reflexion("Q\n", act, priced, ref, max_trials=2)
    assert r.cost.external_tokens == 200 and r.cost.calls == 3


def test_reflexion_traces_its_trials():
    with wb.trace() as t:
        meta.reflexion("Q: 2+2\n", actor([], lambda p: "R1:" in p), is_four, reflector([]))
    assert [e["kind"] for e in t.events] == ["version", "feedback", "reflection", "version",
                                             "feedback", "stop"]
    assert {e["source"] for e in t.events} == {"reflexion"}
    assert t.of("reflection")[0]["memory"] == 1 and t.of("stop")[0]["reason"] == "passed"


@pytest.mark.parametrize("kw, name", [({"max_trials": 0}, "max_trials"), ({"memory": 0}, "memory"),
                                      ({"evaluate": "tests"}, "evaluate"),
                                      ({"reflect": 3}, "reflect"),
                                      ({"reflect_template": "{attempt}"}, "reflect_template"),
                                      ({"memory_template": "{prompt}"}, "memory_template")])
def test_reflexion_refuses_bad_arguments(kw, name):
    args = {"evaluate": is_four, "reflect": reflector([]), **kw}
    with pytest.raises(ValueError, match=name):
        meta.reflexion("Q\n", actor([]), **args)


def test_reflexion_on_a_humaneval_problem_with_its_unit_tests_in_the_sandbox():
    """A wrong program fails the problem's own tests (run in the sandbox); the reflection on
    the failure reaches the next prompt, and the program written after it passes."""
    he = load_task("humaneval", source="local")
    p = he.problems[0]
    prompt = he.prompt(p)
    wrong = "```python\n" + p.question + "    return 0\n```"
    right = "```python\n" + p.question + p.metadata["canonical_solution"] + "```"
    prompts, asked = [], []
    coder = TextGenerator(lambda x, s: prompts.append(x) or (right if "compare" in x else wrong))
    critic = TextGenerator(lambda x, s: asked.append(x) or "I returned a constant; compare "
                           "every pair of numbers against the threshold.")
    evaluate = meta.feedback_evaluator(meta.execution_feedback(task=he))
    r = meta.reflexion(prompt, coder, evaluate, critic, max_trials=3, answer_fn=he.extract)
    assert not r.info["passed"][0] and "AssertionError" in r.info["messages"][0]
    assert r.info["messages"][0] in asked[0] and wrong in asked[0]
    assert "compare every pair" in prompts[1] and prompts[1].endswith(prompt)
    assert r.info["stopped"] == "passed" and r.text == right and he.check(p, r.text)
    assert r.info["messages"][1] == "all tests passed"


def test_critique_of_a_chat_model_is_asked_in_turns():
    from conftest import chat_stub
    mbpp = load_task("mbpp", source="local")
    p = mbpp.problems[1]
    asked = []
    gen = TextGenerator(lambda x, s: asked.append(x) or "No errors.")
    gen.lm = chat_stub()
    h = meta.critique_feedback(gen, task=mbpp, feedback_turn="Review it.")
    z = h(mbpp.prompt(p, gen.lm), ["y0"], [])
    assert z.done and asked == [f"<|user|>{mbpp.user_message(p)}\n<|assistant|>y0\n"
                                f"<|user|>Review it.\n<|assistant|>"]
    with pytest.raises(ValueError, match="task: needed to ask for a critique from a chat model"):
        meta.critique_feedback(gen)
