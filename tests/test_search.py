"""Step-level search (survey §4.3): trees, values, Table 5 costs, budgets, KV reuse."""
import random
import zlib

import pytest

import workbench as wb
from workbench import meta
from workbench.budget import Budget, BudgetExceeded, Cost
from workbench.meta import TextGenerator, TextStepper
from workbench.tinyworld import arithmetic as ar
from workbench.tasks import load as load_task

ARITH = load_task("tinyworld-arithmetic")

PROMPT = "Q: 12+7*3-5*2\n"


def noisy_solver(p_error):
    """A black box that writes the next reduction of the expression left by the last step,
    getting its result wrong (too large by 1-3) with probability ``p_error``; errors carry on."""
    def fn(prompt, seed):
        rng = random.Random(seed)
        lines = prompt.split("\n")
        steps = [ln for ln in lines[1:] if ln]
        if steps and ", " not in steps[-1]:
            return f"A: {steps[-1].split('=')[1]}"
        items = ar.tokenize_expression(steps[-1].split(", ")[1] if steps else
                                       lines[0].split(": ")[1])
        i = ar.next_reduction(items)
        a, op, b, r, _ = ar.reduce_once(items)
        r += rng.randint(1, 3) if rng.random() < p_error else 0
        rest = items[:i - 1] + [r] + items[i + 2:]
        return f"{a}{op}{b}={r}" + (f", {ar.render(rest)}" if len(rest) > 1 else "") + "\n"
    return TextGenerator(fn, "noisy solver")


class HashValue(meta.Value):
    """A deterministic pseudo-random value in [0, 1) that costs C_s external tokens per state."""
    name = "hash"

    def __init__(self, c_s=5):
        self.c_s = c_s

    def one(self, prompt, p):
        return zlib.crc32(p.text.encode()) / 2**32

    def cost_of(self, prompt, partials):
        return Cost(external_tokens=self.c_s * len(partials))


def fixed_steps(t_s, n_steps):
    """Steps of exactly ``t_s`` words; the ``n_steps``-th is the answer line."""
    def fn(prompt, seed):
        depth = len([ln for ln in prompt.split("\n")[1:] if ln])
        words = [f"w{random.Random(seed).randint(0, 999)}"] + ["x"] * (t_s - 1)
        if depth == n_steps - 1:
            return "A: " + " ".join(words[:t_s - 1])
        return " ".join(words) + "\n"
    return TextGenerator(fn, "fixed")


def fixed_solutions(t_s, n_steps):
    step = fixed_steps(t_s, n_steps).fn

    def fn(prompt, seed):
        text = ""
        for k in range(n_steps):
            text += step(prompt + text, seed + k)
        return text
    return TextGenerator(fn, "fixed full")


@pytest.mark.parametrize("nb,ne,t_s,s", [(2, 3, 4, 3), (4, 4, 3, 5), (1, 5, 2, 2)])
def test_step_beam_costs_follow_table_5(nb, ne, t_s, s):
    """Output tokens T_s N_b N_e S = best-of-(N_b N_e)'s T N when T_s S = T; calls N_b N_e S;
    external N_b N_e S C_s (the scorer runs on every state)."""
    r = meta.stepwise_beam("Q: x\n", TextStepper(fixed_steps(t_s, s), max_step_tokens=t_s),
                           HashValue(7), beam_size=nb, expansions=ne, max_steps=s + 3,
                           dedupe=False, seed=0)
    assert r.cost.output_tokens == t_s * nb * ne * s
    assert r.cost.calls == nb * ne * s
    assert r.cost.external_tokens == nb * ne * s * 7
    bon = meta.best_of_n("Q: x\n", fixed_solutions(t_s, s), lambda p, o: ([0.0] * len(o), Cost()),
                         nb * ne, seed=0)
    assert bon.cost.output_tokens == r.cost.output_tokens
    assert r.text.count("\n") == s - 1 and r.text.split("\n")[-1].startswith("A:")


def test_beam_prunes_to_the_best_states_and_keeps_the_tree():
    r = meta.stepwise_beam(PROMPT, TextStepper(noisy_solver(0.4)), meta.oracle_value(ARITH),
                           beam_size=2, expansions=3, seed=3)
    tree = r.tree
    assert r.answer == ar.Problem("12+7*3-5*2").answer
    assert all(tree[i].status == "chosen" for i in r.path(r.info["chosen_node"]))
    for depth in range(1, max(n.depth for n in tree) + 1):
        level = [n for n in tree if n.depth == depth]
        kept = [n for n in level if n.status != "pruned"]
        pruned = [n for n in level if n.status == "pruned"]
        assert len(kept) <= 2
        if pruned and kept:
            assert min(n.value for n in kept) >= max(n.value for n in pruned)
    for n in tree[1:]:                  # every node's value is the exact step check
        prob = ar.Problem("12+7*3-5*2")
        assert n.value == float(ar.check_steps(prob, r.solution(n.id)).first_error is None
                                and (not n.terminal or ar.check_answer(prob, r.solution(n.id))))


def test_events_describe_the_whole_tree():
    with wb.trace() as t:
        r = meta.tree_of_thought(PROMPT, TextStepper(noisy_solver(0.5)), meta.oracle_value(ARITH),
                                 breadth=2, expansions=3, threshold=0.5, seed=1)
    expanded = {c for e in r.events if e["kind"] == "expand" for c in e["children"]}
    assert expanded == set(range(1, len(r.tree)))
    assert {e["node"] for e in r.events if e["kind"] == "prune"} == \
        {n.id for n in r.tree if n.status == "pruned"}
    assert [e["kind"] for e in t.events] == [e["kind"] for e in r.events]
    assert all(e.get("source") == "tree_of_thought" for e in t.events)
    assert all(n.value >= 0.5 for n in r.tree[1:] if n.status != "pruned")


class LateOracle(meta.Value):
    """The exact step check, one step late: a wrong step is only caught by its children."""
    name = "late oracle"

    def one(self, prompt, p):
        prob = ar.problem_from_prompt(prompt)
        if p.terminal:
            return float(ar.check_answer(prob, p.text))
        seen = "".join(p.text.splitlines(keepends=True)[:-1])
        return float(ar.check_steps(prob, seen).first_error is None)


def test_tot_dfs_backtracks_past_wrong_steps():
    r = meta.tree_of_thought(PROMPT, TextStepper(noisy_solver(0.5)), LateOracle(),
                             search="dfs", expansions=3, threshold=0.5, seed=0)
    kinds = [e["kind"] for e in r.events]
    assert "backtrack" in kinds and "prune" in kinds
    assert r.answer == ar.Problem("12+7*3-5*2").answer
    for e in r.events:
        if e["kind"] == "backtrack":   # from a dead end to a state that has a child left to try
            assert r.tree[e["next"]].parent == e["to"]
            assert all(r.tree[c].status == "pruned" for c in r.tree[e["node"]].children)


def test_tot_dfs_without_a_good_child_gives_up():
    r = meta.tree_of_thought(PROMPT, TextStepper(noisy_solver(1.0)), meta.oracle_value(ARITH),
                             search="dfs", expansions=2, threshold=0.5, seed=0)
    assert r.info["stopped"] == "exhausted" and r.answer is None


def test_best_first_pops_in_value_order():
    r = meta.best_first(PROMPT, TextStepper(noisy_solver(0.3)), HashValue(), expansions=2,
                        max_expansions=6, seed=0)
    popped = [e["nodes"][0] for e in r.events if e["kind"] == "select"]
    # each popped node was the best of those generated and not yet popped at that moment
    created = {c: e["it"] for e in r.events if e["kind"] == "expand" for c in e["children"]}
    for k, nid in enumerate(popped[1:], 1):
        waiting = [c for c, it in created.items() if it < k and c not in popped[:k]]
        assert r.tree[nid].value == max(r.tree[c].value for c in waiting)


def test_allocate_splits_the_width_exactly():
    assert meta.allocate(8, [1, 1]) == [4, 4]
    assert meta.allocate(5, [1, 1, 1]) == [2, 2, 1]
    assert meta.allocate(10, [0.7, 0.2, 0.1]) == [7, 2, 1]
    rng = random.Random(0)
    for _ in range(50):
        w = [rng.random() for _ in range(rng.randint(1, 6))]
        n = rng.randint(0, 20)
        a = meta.allocate(n, w)
        assert sum(a) == n and all(abs(x - n * wi / sum(w)) < 1 for x, wi in zip(a, w))
    with pytest.raises(ValueError):
        meta.allocate(3, [0, 0])


def test_rebase_allocates_by_softmax_and_finishes_width_solutions():
    r = meta.rebase(PROMPT, TextStepper(noisy_solver(0.4)), meta.oracle_value(ARITH), width=6,
                    temperature=0.1, seed=2, dedupe=False)
    finished = [n for n in r.tree if n.terminal]
    assert len(finished) == 6
    for e in r.events:
        if e["kind"] == "select":
            vals = [r.tree[n].value for n in e["nodes"]]
            assert sum(e["alloc"]) == 6 - len([n for n in finished if created(r, n.id) < e["it"]])
            for v, a in zip(vals, e["alloc"]):     # T = 0.1: the good states take (nearly) all
                if v == 0 and 1 in vals:
                    assert a == 0
    assert r.answer == ar.Problem("12+7*3-5*2").answer
    assert r.votes and max(r.votes, key=r.votes.get) == r.answer


def created(r, nid):
    return next(e["it"] for e in r.events if e["kind"] == "expand" and nid in e["children"])


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_mcts_visits_and_backups_add_up(aggregate):
    r = meta.mcts(PROMPT, TextStepper(noisy_solver(0.4)), HashValue(), iterations=12, width=2,
                  aggregate=aggregate, seed=0)
    tree, backups = r.tree, [e for e in r.events if e["kind"] == "backup"]
    assert tree[0].visits == len(backups) == 12
    for n in tree:
        ended = sum(e["nodes"][-1] == n.id for e in backups)
        assert n.visits == sum(tree[c].visits for c in n.children) + ended
        seen = [e["reward"] for e in backups if n.id in e["nodes"]]
        if seen:
            want = sum(seen) / len(seen) if aggregate == "mean" else max(seen)
            assert n.reward == pytest.approx(want)
    rollouts = [e for e in r.events if e["kind"] == "rollout"]
    assert rollouts and all(ro["text"].split("\n")[-1].startswith("A:") for ro in rollouts)
    best = max([ro["reward"] for ro in rollouts] + [n.value for n in tree if n.terminal])
    assert max(s for s in r.scores) == best == r.scores[r.chosen]


def test_mcts_uct_selects_unvisited_children_first():
    r = meta.mcts(PROMPT, TextStepper(noisy_solver(0.5)), HashValue(), iterations=6, width=3,
                  c_uct=0.0, rollout=False, dedupe=False, seed=5)
    paths = [e["nodes"] for e in r.events if e["kind"] == "backup"]
    first = r.tree[0].children
    assert len(first) == 3
    # the root's children are each visited once, best prior first, before any is revisited
    order = [p[1] for p in paths[:3]]
    assert order == sorted(first, key=lambda c: -r.tree[c].value)
    # then, with c_uct = 0, the child with the best mean reward is exploited
    q = {c: [e["reward"] for e in r.events if e["kind"] == "backup" and e["nodes"][1] == c
             and e["it"] < 3][0] for c in first}
    assert paths[3][1] == max(first, key=lambda c: q[c])


ALGOS = {
    "beam": lambda p, st, v, b, s: meta.stepwise_beam(p, st, v, 3, 3, budget=b, seed=s),
    "tot_bfs": lambda p, st, v, b, s: meta.tree_of_thought(p, st, v, breadth=2, budget=b, seed=s),
    "tot_dfs": lambda p, st, v, b, s: meta.tree_of_thought(p, st, v, "dfs", budget=b, seed=s),
    "best_first": lambda p, st, v, b, s: meta.best_first(p, st, v, budget=b, seed=s),
    "rebase": lambda p, st, v, b, s: meta.rebase(p, st, v, 8, budget=b, seed=s),
    "mcts": lambda p, st, v, b, s: meta.mcts(p, st, v, 20, budget=b, seed=s),
}


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_budgets_are_never_exceeded(algo):
    rng = random.Random(algo)
    for trial in range(12):
        field = ["output_tokens", "calls", "external_tokens", "total_tokens"][trial % 4]
        limit = rng.randint(1, 200)
        budget = Budget(**{field: limit})
        try:
            r = ALGOS[algo](PROMPT, TextStepper(noisy_solver(0.3), max_step_tokens=12),
                            HashValue(3), budget, trial)
        except BudgetExceeded:
            assert budget.spent.calls == 0      # raised only before anything was spent
            continue
        spent = r.cost.total_tokens if field == "total_tokens" else getattr(r.cost, field)
        assert spent <= limit and r.cost == budget.spent


def test_search_rejects_bad_parameters():
    st = TextStepper(noisy_solver(0.0))
    with pytest.raises(ValueError, match="beam_size"):
        meta.stepwise_beam(PROMPT, st, HashValue(), beam_size=0)
    with pytest.raises(ValueError, match="search"):
        meta.tree_of_thought(PROMPT, st, HashValue(), search="astar")
    with pytest.raises(ValueError, match="temperature"):
        meta.rebase(PROMPT, st, HashValue(), temperature=0)
    with pytest.raises(ValueError, match="aggregate"):
        meta.mcts(PROMPT, st, HashValue(), aggregate="median")
    with pytest.raises(ValueError, match="log-prob"):
        meta.stepwise_beam(PROMPT, st, meta.logprob_value())
    with pytest.raises(BudgetExceeded, match="single step"):
        meta.best_first(PROMPT, st, HashValue(), budget=Budget(calls=0))


def test_same_seed_same_tree():
    st = TextStepper(noisy_solver(0.5))
    a = meta.rebase(PROMPT, st, HashValue(), width=5, seed=11)
    b = meta.rebase(PROMPT, st, HashValue(), width=5, seed=11)
    c = meta.rebase(PROMPT, st, HashValue(), width=5, seed=12)
    assert [n.step for n in a.tree] == [n.step for n in b.tree]
    assert [n.step for n in a.tree] != [n.step for n in c.tree]


def test_a_step_that_states_the_answer_ends_the_solution():
    """The answer marker ends a solution wherever the step states it: TinyWorld's ``A:`` line,
    and a GSM8K reply's "... The answer is 14." at the end of a line of reasoning."""
    from workbench.meta.steps import is_terminal
    assert is_terminal("A: 28", "stop") and not is_terminal("12+7=19, 19-5\n", "stop")
    assert is_terminal("12+7=19\n", "eos") and is_terminal("12+7=19", "length")
    words = ["She pays 4 * 3 = 12 dollars.\n", "12 + 2 = 14 dollars. The answer is 14.\n",
             "\n", "Question: what next?\n"]
    reply = TextGenerator(lambda prompt, seed: words[prompt.count("\n") - 2], "gsm8k-like")
    task = load_task("gsm8k", source="local")
    p = task.problems[0]
    r = meta.stepwise_beam(f"Question: {p.question}\nAnswer:\n", TextStepper(
        reply, answer_marker="The answer is"), HashValue(), beam_size=1, expansions=1,
        answer_fn=task.extract)
    assert [n.step for n in r.tree[1:]] == words[:2] and r.tree[-1].terminal
    assert r.answer == "14" and task.check(p, r.text)
    for bad in ("", "  ", None):
        with pytest.raises(ValueError, match="answer_marker"):
            TextStepper(reply, answer_marker=bad)
