"""Universal self-consistency and LEVER (workbench.meta.aggregate), with scripted generators."""
import math

import pytest

import workbench as wb
from test_meta_parallel import scripted
from workbench import meta
from workbench.budget import Cost
from workbench.meta import TextGenerator

RESPONSES = ["The cat sat on the mat.", "A cat sat on a mat.", "Dogs bark at night."]


def recording(reply):
    """An aggregator that writes ``reply`` and records the prompts it was shown."""
    seen = []
    return TextGenerator(lambda prompt, seed: seen.append(prompt) or reply), seen


# -- universal self-consistency -------------------------------------------------------------

def test_usc_shows_every_full_response_numbered_in_order():
    agg, seen = recording("2")
    meta.universal_self_consistency("Describe the scene.", scripted(RESPONSES), agg, 3)
    assert len(seen) == 1
    shown = seen[0]
    assert "Describe the scene." in shown
    assert shown.endswith("The most consistent response is Response ")
    where = [shown.index(f"Response {i}: {t}") for i, t in enumerate(RESPONSES, 1)]
    assert where == sorted(where)
    assert "Response 4" not in shown
    assert meta.usc_prompt("Q\n", [" a\n", "b"], "{prompt}|{responses}") == \
        "Q|Response 1: a\n\nResponse 2: b"


@pytest.mark.parametrize("reply, index", [("2", 1), (" 3.\nBecause", 2), ("1 of them", 0),
                                          ("Response 2, clearly", 1)])
def test_usc_returns_the_full_text_of_the_named_response(reply, index):
    agg, _ = recording(reply)
    r = meta.universal_self_consistency("x", scripted(RESPONSES), agg, 3)
    assert r.chosen == index and r.text == RESPONSES[index]
    assert r.info["parsed"] is True and r.info["fallback"] is None


@pytest.mark.parametrize("reply", ["4", "0", "none of them", "", "17 and 2"])
def test_usc_out_of_range_or_missing_index_takes_the_flagged_fallback(reply):
    agg, _ = recording(reply)
    r = meta.universal_self_consistency("x", scripted(RESPONSES), agg, 3)
    assert r.chosen == 0 and r.text == RESPONSES[0]   # documented: the first response
    assert r.info["parsed"] is False and r.info["fallback"] == "first response"
    assert r.info["aggregator_output"] == reply
    with pytest.raises(ValueError, match="named no response in 1..3"):
        meta.universal_self_consistency("x", scripted(RESPONSES), recording(reply)[0], 3,
                                        on_unparsed="raise")


def test_usc_cost_is_the_generations_plus_the_aggregators_input_and_output():
    agg, seen = recording("2 is most consistent")
    r = meta.universal_self_consistency("Describe the scene.", scripted(RESPONSES), agg, 3)
    gen_in = 3 * len("Describe the scene.".split())
    gen_out = sum(len(t.split()) for t in RESPONSES)
    agg_in = len(seen[0].split())          # the aggregator reads every response: C_t
    assert agg_in > gen_out
    assert r.cost == Cost(input_tokens=gen_in + agg_in, output_tokens=gen_out + 4, calls=4)
    assert r.info["aggregator_cost"] == Cost(input_tokens=agg_in, output_tokens=4, calls=1)


def test_usc_traces_candidates_the_aggregation_and_the_choice():
    with wb.trace() as t:
        meta.universal_self_consistency("x", scripted(RESPONSES), recording("9")[0], 3)
    kinds = [e["kind"] for e in t.events]
    assert kinds == ["candidate"] * 3 + ["aggregate", "choose"]
    assert t.events[-1]["index"] == 0 and t.events[-1]["parsed"] is False


def test_usc_max_prompt_tokens_refuses_a_prompt_too_long():
    agg, seen = recording("1")
    with pytest.raises(ValueError, match="over max_prompt_tokens=10"):
        meta.universal_self_consistency("x", scripted(RESPONSES), agg, 3, max_prompt_tokens=10)
    assert seen == []                       # refused before the aggregator was called
    r = meta.universal_self_consistency("x", scripted(RESPONSES), agg, 3,
                                        max_prompt_tokens=10, count_tokens=lambda s: 10)
    assert r.info["parsed"]


def test_usc_argument_errors():
    gen, agg = scripted(RESPONSES), recording("1")[0]
    with pytest.raises(ValueError, match="n must be"):
        meta.universal_self_consistency("x", gen, agg, 0)
    with pytest.raises(ValueError, match="template must"):
        meta.universal_self_consistency("x", gen, agg, 2, template="no slot")
    with pytest.raises(ValueError, match="on_unparsed"):
        meta.universal_self_consistency("x", gen, agg, 2, on_unparsed="random")
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        meta.universal_self_consistency("x", gen, agg, 2, max_prompt_tokens=0)


def test_parse_choice():
    assert [meta.parse_choice(s, 3) for s in ["1", "3", "4", "x", "", "02"]] == \
        [0, 2, None, None, None, 1]


# -- LEVER ----------------------------------------------------------------------------------

PROGRAMS = ["print(6)", "print(2*3)", "print(7)", "print(1/0)"]
LOGPROBS = [-1.0, -1.5, -0.5, -2.0]
RESULTS = {"print(6)": "6", "print(2*3)": "6", "print(7)": "7", "print(1/0)": "error",
           "print(3+3)": "6"}
PV = {"print(6)": 0.5, "print(2*3)": 0.5, "print(7)": 0.6, "print(1/0)": 0.9, "print(3+3)": 0.5}


def scripted_verifier(table=PV):
    calls = []

    def verifier(prompt, text, result):
        calls.append((text, result))
        return table[text], Cost(external_tokens=len(text) + len(result))
    return verifier, calls


def run_lever(aggregate, programs=PROGRAMS, logprobs=LOGPROBS):
    verifier, calls = scripted_verifier()
    r = meta.lever("x", scripted(programs, logprobs), verifier,
                   lambda p, t: RESULTS[t], len(programs), aggregate=aggregate)
    return r, calls


def test_lever_scores_are_log_p_theta_plus_log_verifier():
    r, calls = run_lever(aggregate=False)
    want = [lp + math.log(PV[t]) for t, lp in zip(PROGRAMS, LOGPROBS)]
    assert r.scores == pytest.approx(want)
    assert calls == [(t, RESULTS[t]) for t in PROGRAMS]      # the verifier saw each result
    # alone, print(7) has the best joint score: e^-0.5 * 0.6 = 0.364 > e^-1 * 0.5 = 0.184
    assert r.chosen == 2 and r.answer == "7"


def test_lever_aggregation_by_equal_result_changes_the_choice():
    r, _ = run_lever(aggregate=True)
    six = math.log(math.exp(-1.0) * 0.5 + math.exp(-1.5) * 0.5)     # 0.296 < 0.364 ...
    seven = -0.5 + math.log(0.6)
    assert r.info["results"]["6"] == pytest.approx(six)
    assert r.info["results"]["7"] == pytest.approx(seven)
    assert r.info["results"]["error"] == pytest.approx(-2.0 + math.log(0.9))
    assert six < seven                                                  # ... so no change yet
    assert r.chosen == 2
    # one more program printing 6 tips the pooled score: 6 wins, its best program returned
    r, _ = run_lever(True, PROGRAMS + ["print(3+3)"], LOGPROBS + [-1.2])
    assert r.answer == "6" and r.chosen == 0 and r.text == "print(6)"
    r, _ = run_lever(False, PROGRAMS + ["print(3+3)"], LOGPROBS + [-1.2])
    assert r.answer == "7" and r.chosen == 2                            # aggregate=False: no



def test_lever_counts_a_repeated_program_once_and_adds_the_cost():
    r, calls = run_lever(True, ["print(6)", "print(6)", "print(7)"], [-1.0, -1.0, -0.5])
    assert r.info["results"]["6"] == pytest.approx(-1.0 + math.log(0.5))   # not twice
    assert r.answer == "7"
    gen = Cost(input_tokens=3, output_tokens=3, calls=3)
    ext = sum(len(t) + len(RESULTS[t]) for t in ["print(6)", "print(6)", "print(7)"])
    assert r.cost == gen + Cost(external_tokens=ext) and len(calls) == 3


def test_lever_argument_errors():
    verifier, _ = scripted_verifier()
    ex = lambda p, t: RESULTS[t]
    with pytest.raises(ValueError, match="n must be"):
        meta.lever("x", scripted(PROGRAMS, LOGPROBS), verifier, ex, 0)
    with pytest.raises(ValueError, match=r"\.logprob"):
        meta.lever("x", scripted(PROGRAMS), verifier, ex, 2)
    with pytest.raises(ValueError, match="probability in"):
        meta.lever("x", scripted(PROGRAMS, LOGPROBS), lambda p, t, r: (1.5, Cost()), ex, 2)
    with pytest.raises(TypeError, match="execution result as a string"):
        meta.lever("x", scripted(PROGRAMS, LOGPROBS), verifier, lambda p, t: 6, 2)
    with pytest.raises(TypeError, match="callables"):
        meta.lever("x", scripted(PROGRAMS, LOGPROBS), verifier, None, 2)


class FakeJudge:
    """reply_scores/reply_cost like LLMJudge's: P(yes) = 0.8 if the result is 6."""
    def reply_scores(self, prompt, replies):
        return [0.8 if r.endswith("result: 6") else 0.1 for r in replies]

    def reply_cost(self, prompt, replies):
        return Cost(external_tokens=sum(len(r.split()) for r in replies))


def test_lever_executes_programs_in_the_sandbox():
    programs = ["print(2*3)", "print(7)", "x = 1/0"]
    r = meta.lever("Print six.", scripted(programs, [-1.0, -0.2, -0.1]),
                   meta.judge_verifier(FakeJudge()), meta.sandbox_executor(), 3)
    out = r.info["executions"]
    assert out[:2] == ["6", "7"]
    assert out[2].startswith("exit status 1") and "ZeroDivisionError" in out[2]
    assert r.info["verifier_probs"] == [0.8, 0.1, 0.1]
    assert r.text == "print(2*3)" and r.answer == "6"
    # the judge read each program with its execution result: 5 + 5 + (4 + error words) words
    assert r.cost.external_tokens == sum(len(f"{p}\n# execution result: {o}".split())
                                         for p, o in zip(programs, out))


def test_usc_on_a_model_bills_the_aggregator_prompt_in_its_own_tokens(tiny_lm):
    sampler = meta.LMGenerator(tiny_lm, max_new_tokens=5)
    aggregator = meta.LMGenerator(tiny_lm, greedy=True, max_new_tokens=3)
    r = meta.universal_self_consistency("Q: 1+2\n", sampler, aggregator, 3, seed=0)
    c_t = r.info["aggregator_cost"]
    assert c_t.input_tokens == len(tiny_lm.encode(r.info["aggregator_prompt"]))
    assert 1 <= c_t.output_tokens <= 3                    # its reply, max_new_tokens=3
    assert r.cost == sum((c.cost for c in r.candidates), Cost()) + c_t
    assert r.info["parsed"] == (meta.parse_choice(r.info["aggregator_output"], 3) is not None)
    assert r.text == r.candidates[r.chosen].text
