import random

import pytest
from hypothesis import given, settings, strategies as st

from workbench.tinyworld import arithmetic as ar


def test_evaluate_precedence():
    assert ar.evaluate("12+7*3-5") == 28
    assert ar.evaluate("2*3*4-1") == 23
    assert ar.evaluate("10-2-3") == 5


@pytest.mark.parametrize("bad", ["", "1+", "+1", "1++2", "1/2", "a+1"])
def test_bad_expressions(bad):
    with pytest.raises(ValueError, match="expr"):
        ar.evaluate(bad)


def test_solution_format_and_checkers():
    p = ar.Problem("12+7*3-5")
    assert p.solution() == "7*3=21, 12+21-5\n12+21=33, 33-5\n33-5=28\nA: 28"
    assert p.solution(calc=True).startswith("[CALC]7*3[/CALC]=21, 12+21-5\n")
    assert ar.check_answer(p, p.solution())
    chk = ar.check_steps(p, p.solution())
    assert chk.correct == [True, True, True] and chk.first_error is None and chk.complete


def test_step_checker_localises_first_error():
    p = ar.Problem("12+7*3-5")
    wrong = "7*3=21, 12+21-5\n12+21=32, 32-5\n32-5=27\nA: 27"
    chk = ar.check_steps(p, wrong)
    assert chk.correct == [True, False, False] and chk.first_error == 1
    assert "12+21 is 33" in chk.message
    chk = ar.check_steps(p, "12+7=19, 19*3-5\n")
    assert chk.first_error == 0 and "valid next operations: 7*3" in chk.message
    chk = ar.check_steps(p, "7*3=21, 12+21-6\n")
    assert "should be 12+21-5" in chk.message
    assert not ar.check_steps(p, "7*3=21, 12+21-5\n").complete


def test_calculator_tool():
    assert ar.calculator("7*3") == "=21"
    with pytest.raises(ValueError):
        ar.calculator("7*")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 8), st.integers(1, 3), st.booleans(),
       st.booleans())
def test_sampled_problems_solve_and_check_in_any_valid_order(seed, n_ops, digits, calc, shuffle):
    rng = random.Random(seed)
    p = ar.sample_problem(rng, n_ops, digits)
    assert p.n_ops == n_ops and p.digits <= digits
    assert 0 <= p.answer <= ar.MAX_VALUE
    sol = p.solution(calc, rng=rng if shuffle else None)
    assert ar.extract_answer(sol) == p.answer
    chk = ar.check_steps(p, sol)
    assert all(chk.correct) and chk.complete and len(chk.correct) == n_ops


def test_valid_reductions_respect_precedence_and_sign():
    items = ar.tokenize_expression("20-3+4*2+1")
    assert ar.valid_reductions(items) == [1, 5]          # 20-3 and 4*2; not 3+4, not 2+1
    assert ar.valid_reductions(ar.tokenize_expression("9-2-3")) == [1]   # not 9-(2-3)
    assert ar.valid_reductions(ar.tokenize_expression("1+2*3*4")) == [3, 5]
    assert ar.valid_reductions(ar.tokenize_expression("5+3-7")) == [1]  # 3-7 < 0


def test_every_valid_order_gives_the_answer():
    p = ar.Problem("12+7*3-5*2+8")
    seen = set()
    for seed in range(40):
        sol = p.solution(rng=random.Random(seed))
        seen.add(sol)
        assert ar.extract_answer(sol) == p.answer and ar.check_steps(p, sol).complete
    assert len(seen) >= 5  # several different solution paths occur


def test_heldout_set_is_graded_and_disjoint_from_training():
    from workbench.tinyworld.corpus import heldout_expressions, training_problem
    from workbench.tinyworld.tasks import arithmetic_pool, arithmetic_tasks
    tasks = arithmetic_tasks()
    assert len(tasks) >= 300
    cells = {(t["n_ops"], t["digits"]) for t in tasks}
    assert len(cells) >= 6
    assert {t["expression"] for t in tasks} <= {t["expression"] for t in arithmetic_pool()}
    rng = random.Random(0)
    held = heldout_expressions()
    assert all(training_problem(rng).expression not in held for _ in range(2000))


def test_committed_task_files_match_generator():
    from workbench.tinyworld.tasks import ALL, load_tasks
    for name, fn in ALL.items():
        assert load_tasks(name) == fn(), name


@pytest.mark.parametrize("slip", ar.SLIPS)
def test_slipped_solution_is_right_up_to_one_slip(slip):
    rng = random.Random(3)
    for _ in range(60):
        p = ar.sample_problem(rng, rng.randint(2, 7), rng.randint(1, 3))
        text = ar.slipped_solution(p, rng, slip)
        check = ar.check_steps(p, text)
        assert check.first_error is not None, text  # the slip is caught where it happens
        assert all(check.correct[:check.first_error]) and not check.correct[check.first_error]
        lines = ar.split_steps(text)
        assert len(lines) >= check.first_error + 1
        if slip == "result":  # the wrong value is written in the step's own result
            assert "is " in check.message and ", not " in check.message, check.message
    with pytest.raises(ValueError, match="slip"):
        ar.slipped_solution(p, rng, "typo")
