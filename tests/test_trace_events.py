"""The event vocabulary (`workbench.trace.EVENTS`): every kind an algorithm emits is documented,
every documented kind is emitted, and every event has its kind's fields (conftest checks the
events of every trace opened in any test; the run below covers every kind at once)."""
import math
import re
from pathlib import Path

import pytest

import workbench as wb
from workbench import decoding, degeneration, meta
from workbench.trace import EVENTS, SCHEMA, load, problems
from workbench.backends import CompletionsGenerator
from workbench.budget import Cost
from workbench.constraints import compare_healing, generate as constrained
from workbench.constraints.generate import ConstraintAdapter
from workbench.constraints.lexical import lexical_beam_search
from workbench.control import generators as control
from workbench.efficiency import (PrefixCache, Request, continuous_batching, lookahead_decoding,
                                  speculative_decode, timed_greedy, tree_speculative_decoding)
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld.formats import ArithmeticDecomposer

from test_backends import scripted as scripted_server  # noqa: F401  (a pytest fixture)
from test_meta_parallel import discrete, scripted
from test_refine import bad_line, continuer, fixed
from test_search import ARITH, PROMPT, HashValue, LateOracle, noisy_solver
from test_search_adaptive import sequence

ROOT = Path(__file__).resolve().parent.parent
EMITTED = re.compile(r'(?:emit|\.log)\(\s*"(\w+)"(?:\s+if\s+\w+\s+else\s+"(\w+)")?')


def test_the_kinds_in_the_code_are_the_documented_ones():
    found = {k for f in (ROOT / "workbench").rglob("*.py")
             for m in EMITTED.finditer(f.read_text()) for k in m.groups() if k}
    assert found == set(EVENTS)


def test_problems_name_what_is_wrong():
    assert problems({"kind": "step", "t": 0, "row": 0, "token": 1, "logprob": -1.0,
                     "top": []}) == []
    assert problems({"kind": "nope"}) == ["unknown kind 'nope'"]
    assert problems({"kind": "choose", "i": 0, "prob": 0.5}) == \
        ["choose: missing ['index']", "choose: undocumented ['prob']"]


def _run_everything(target, draft, tiny_lm, url):
    """One call of every algorithm that emits events, all under one trace."""
    decoding.sample(target, "Story:", max_new_tokens=4, seed=0)
    control.dexperts(target, target, draft, "Review:", alpha=1.0, max_new_tokens=3, seed=0)
    constrained(tiny_lm, "Answer:", r"The answer is (yes|no)", seed=0, max_new_tokens=16)
    constrained(tiny_lm, "Story: An unnatural token", None, heal=True, seed=0, max_new_tokens=2)
    compare_healing(tiny_lm, "Story: An unnatural token", max_new_tokens=2)
    decoding.sample(tiny_lm, "Answer:", adapters=[ConstraintAdapter(r"(yes|no)", tiny_lm)],
                    max_new_tokens=4, seed=0)
    decoding.beam_search(target, "Story:", num_beams=2, max_new_tokens=4)
    decoding.exact_map(tiny_lm, "Story:", max_new_tokens=3, node_budget=2000)
    decoding.stochastic_beam_search(target, "Story:", k=2, max_new_tokens=3, seed=0)
    degeneration.contrastive_search(target, "Story:", top_k=3, max_new_tokens=3)
    degeneration.diverse_beam_search(target, "Story:", num_beams=4, num_groups=2,
                                     max_new_tokens=4)
    lexical_beam_search(target, "Story:", [["cat", "cats"]], num_beams=2, max_new_tokens=6)
    speculative_decode(target, draft, "Story:", k=3, max_new_tokens=24, seed=0)
    speculative_decode(target, tiny_lm, "Story:", k=3, max_new_tokens=8, seed=0)   # rejects
    lookahead_decoding(target, "Story: the cat sat. the cat", max_new_tokens=8, stop_at_eos=False)
    tree_speculative_decoding(target, draft, "Story:", branching=(2, 1), max_new_tokens=6, seed=0)
    timed_greedy(target, "Story:", 3)
    PrefixCache(target).prefill(["Story: the cat", "Story: the dog"])
    continuous_batching(target, [Request(0, "Story:", 3), Request(1, "Q: 1+2\n", 2, arrival=1)],
                        max_batch=2, num_blocks=8, block_size=4)
    meta.best_of_n("Q\n", scripted(["A: 4", "A: 5"]),
                   lambda p, outs: ([len(o.text) for o in outs], Cost()), 2)
    meta.majority_vote("Q\n", scripted(["A: 4", "A: 4", "A: 8"]), 3)
    meta.importance_resample("", discrete(["a", "b"], [0.5, 0.5]), lambda p, o: 0.0, 4, seed=0)
    meta.rejection_sample("", discrete(["a", "b"], [0.5, 0.5]),
                          lambda p, o: 0.0 if o.text == "a" else -math.inf, math.log(2),
                          num_samples=1, max_proposals=40, batch=4, seed=0)
    meta.universal_self_consistency("Q\n", scripted(["A: 4", "A: 8"]), fixed("2"), 2)
    meta.lever("Q\n", scripted(["print(4)", "print(8)"], [-1.0, -2.0]),
               lambda p, t, r: (0.5, Cost()), lambda p, t: t[6], 2)
    meta.adaptive_vote("Q\n", sequence(["A: 5"] * 12), max_n=12, stop="decided")
    meta.cascade("Q\n", sequence(["A: 5", "A: 6"] * 2), sequence(["A: 9"] * 4), n_cheap=4)
    meta.chain("abc", [(fixed("ABC"), "<{x}>")])
    meta.least_to_most("Q: 12+7*3-5\n", meta.LMGenerator(target, greedy=True, stop=("\n",)),
                       ArithmeticDecomposer())
    meta.tool_generate(target, ar.Problem("34+5*6-12").prompt(calc=True))
    meta.tree_of_thought(PROMPT, meta.TextStepper(noisy_solver(0.5)), LateOracle(),
                         search="dfs", expansions=3, threshold=0.5, seed=0)
    meta.rebase(PROMPT, meta.TextStepper(noisy_solver(0.4)), meta.oracle_value(ARITH), width=4,
                temperature=0.1, seed=2)
    meta.mcts(PROMPT, meta.TextStepper(noisy_solver(0.4)), HashValue(), iterations=4, width=2,
              seed=0)
    meta.particle_filter(PROMPT, meta.TextStepper(noisy_solver(0.4)), meta.oracle_value(ARITH),
                         particles=4, threshold=1.0, seed=0)
    meta.dvts(PROMPT, meta.TextStepper(noisy_solver(0.4)), HashValue(), width=4, expansions=2,
              seed=0)
    meta.refine(ar.Problem("12+7*3-5*2").prompt(), fixed(bad_line(1)),
                meta.step_feedback(ARITH), meta.regenerate_from_error(continuer()))
    meta.reflexion("Q\n", sequence(["A: 5", "A: 4"]), lambda p, y: (y == "A: 4", "wrong"),
                   fixed("check the sum"))
    CompletionsGenerator(url + "/v1", model="tiny", max_tokens=8).generate("x", 2, seed=3)


def test_every_kind_is_emitted_with_its_documented_fields(target, draft, tiny_lm,
                                                          scripted_server):  # noqa: F811
    with wb.trace() as t:
        _run_everything(target, draft, tiny_lm, scripted_server)
    assert [p for e in t.events for p in problems(e)] == []
    missing = set(EVENTS) - set(t.kinds())
    assert not missing, f"no algorithm above emitted {sorted(missing)}"


def test_a_saved_trace_loads_back_with_its_tokenizer(target, tmp_path):
    with wb.trace() as t:
        decoding.sample(target, "Story:", max_new_tokens=6, seed=0)
    path = t.save(tmp_path / "run.jsonl", target)
    back = load(path)
    assert back.events == t.events and back.meta["model"] == target.name
    assert back.meta["schema"] == SCHEMA and back.meta["workbench"] == wb.__version__
    ids = [e["token"] for e in back.of("step")]
    assert back.tokenizer.decode(ids) == target.tokenizer.decode(ids)


def test_loading_a_damaged_trace_says_what_is_wrong(target, tmp_path):
    with wb.trace() as t:
        decoding.sample(target, "Story:", max_new_tokens=3, seed=0)
    path = t.save(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="truncated"):
        load(tmp_path / "cut.jsonl")
    (tmp_path / "old.jsonl").write_text(lines[0].replace('"schema": 1', '"schema": 0') + "\n"
                                        + "\n".join(lines[1:]))
    with pytest.raises(ValueError, match="schema 0"):
        load(tmp_path / "old.jsonl")
    (tmp_path / "plain.jsonl").write_text(lines[1] + "\n")
    with pytest.raises(ValueError, match="not a saved trace"):
        load(tmp_path / "plain.jsonl")
