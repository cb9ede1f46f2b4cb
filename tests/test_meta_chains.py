import pytest
import torch

from workbench import meta
from workbench.meta import TextGenerator
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld.formats import ArithmeticDecomposer


def solver_oracle():
    """A black-box solver that answers one-operation questions exactly."""
    def fn(prompt, seed):
        p = ar.problem_from_prompt(prompt)
        return p.solution()
    return TextGenerator(fn, "oracle-solver")


def test_chain_passes_outputs_along_with_format_and_callable_templates():
    upper = TextGenerator(lambda p, s: p.upper())
    rev = TextGenerator(lambda p, s: p[::-1])
    r = meta.chain("abc", [(upper, "<{x}>"), (rev, lambda x, y: y + "!")])
    assert [c.text for c in r.candidates] == ["<ABC>", "!>CBA<"]
    assert r.info["prompts"] == ["<abc>", "<ABC>!"] and r.cost.calls == 2


def test_chain_of_thought_splits_thought_and_answer():
    reasoner = TextGenerator(lambda p, s: "7*3=21, 12+21\n12+21=33\nA: 99")
    answerer = TextGenerator(lambda p, s: "33\n")
    r = meta.chain_of_thought("Q: 12+7*3\n", reasoner, answerer)
    assert r.info["thought"] == "7*3=21, 12+21\n12+21=33\n"
    assert r.text.endswith("A: 33") and ar.extract_answer(r.text) == 33


def test_least_to_most_asks_one_operation_at_a_time():
    asked = []
    base = solver_oracle()
    spy = TextGenerator(lambda p, s: asked.append(p) or base.fn(p, s))
    r = meta.least_to_most("Q: 12+7*3-5\n", spy, ArithmeticDecomposer())
    assert asked == ["Q: 7*3\n", "Q: 12+21\n", "Q: 33-5\n"]
    assert r.answer == 28 and ar.check_steps(ar.Problem("12+7*3-5"), r.text).complete


def test_tool_generate_refuses_a_prompt_beyond_the_context_by_name(tiny_lm):
    """A long few-shot prompt on a short-context model: a clear error, not an index error in
    the position embedding."""
    long_prompt = "Q (calc): " + "1+" * tiny_lm.max_length + "1\n"
    with pytest.raises(ValueError, match="context"):
        meta.tool_generate(tiny_lm, long_prompt)
    with pytest.raises(ValueError, match="max_new_tokens"):
        meta.tool_generate(tiny_lm, "Q (calc): 7*3\n", max_new_tokens=-1)


def test_tool_call_is_spliced_into_the_sequence(tiny_lm):
    """Force a random model to write a calculator call; the tool's result must be spliced in
    and decoding must continue from the same cache."""
    script = tiny_lm.encode("[CALC]7*3[/CALC]", bos=False) + tiny_lm.encode(", done", bos=False)
    result_ids = tiny_lm.encode("=21", bos=False)

    class Script:
        """An adapter that makes the model write the script (skipping the spliced result)."""
        def __init__(self):
            self.i = 0

        def __call__(self, logits):
            out = torch.full_like(logits, float("-inf"))
            out[..., script[self.i] if self.i < len(script) else tiny_lm.eos_token_id] = 0.0
            return out

        def observe(self, tokens, logits):
            self.i += 1

    g = meta.tool_generate(tiny_lm, "Q (calc): 7*3\n", adapters=[Script()])
    assert g.text == "[CALC]7*3[/CALC]=21, done" and g.finish_reason == "eos"
    assert g.info["tool_calls"] == [{"call": "7*3", "result": "=21"}]
    # a budget that ends inside the script is reported as such, not as a stop
    cut = meta.tool_generate(tiny_lm, "Q (calc): 7*3\n", adapters=[Script()], max_new_tokens=3)
    assert cut.finish_reason == "length" and len(cut.token_ids) == 3
    assert g.cost.external_tokens == len(result_ids)
    assert g.cost.output_tokens == len(script)
    # the continuation saw the spliced tokens: recompute its last logits from scratch
    full = tiny_lm.encode("Q (calc): 7*3\n") + g.token_ids
    assert len(full) == len(tiny_lm.encode("Q (calc): 7*3\n")) + len(script) + len(result_ids)
