"""Monte-Carlo tree search over steps (survey §4.3; RAP, Hao et al. 2023; AlphaLLM).

Each iteration (a *simulation*) runs four phases on the step tree:

1. selection: from the root, go to the child maximising UCT,
   Q(c) + c_uct * sqrt(ln N(parent) / N(c)) (unvisited children first, best prior first);
2. expansion: a leaf that is not finished gets ``width`` next steps, valued by v(s_t) (the
   prior), and the search moves to the best of them;
3. simulation: a *rollout* samples the rest of the solution from there (at most ``max_depth``
   steps in all) and scores the finished text with ``reward`` (or, with ``rollout=False``,
   uses v(s_t) of the leaf);
4. backup: the reward is added to every node on the path; Q is the mean of the rewards seen
   (``aggregate="mean"``, classic MCTS) or their maximum (``"max"``).

It stops after ``iterations`` simulations, at the budget, or when the tree is exhausted.  The
answer is the finished solution (a finished node or a rollout) with the highest reward
(``select="reward"``), or the one reached by following the most visited children
(``select="visits"``).
"""
from __future__ import annotations

import math

from ..trace import source
from .steps import Partial
from .tree import Search
from ..validate import count


def mcts(prompt, stepper, value, iterations: int = 16, c_uct: float = 1.0, width: int = 3,
         rollout: bool = True, reward=None, aggregate: str = "mean", max_depth: int = 10,
         select: str = "reward", budget=None, dedupe: bool = True, seed=None, answer_fn=None):
    """MCTS over steps (see the module docstring); ``reward`` defaults to ``value``."""
    for name, v in (("iterations", iterations), ("width", width), ("max_depth", max_depth)):
        count(name, v)
    if aggregate not in ("mean", "max"):
        raise ValueError(f"aggregate must be 'mean' or 'max', got {aggregate!r}")
    if select not in ("reward", "visits"):
        raise ValueError(f"select must be 'reward' or 'visits', got {select!r}")
    if not c_uct >= 0:
        raise ValueError(f"c_uct must be >= 0, got {c_uct}")
    reward = reward or value
    S = Search("mcts", prompt, stepper, value, budget, dedupe, seed,
               {"iterations": iterations, "c_uct": c_uct, "width": width, "rollout": rollout,
                "aggregate": aggregate, "max_depth": max_depth, "select": select,
                "reward": repr(reward)})
    run = _Simulations(S, value, reward, c_uct, width, rollout, aggregate, max_depth)
    with source("mcts"):
        for it in range(iterations):
            S.it = it
            path = run.select()                                         # 1. selection
            if not run.expand(path):                                    # 2. expansion
                break
            r = run.simulate(path[-1])                                  # 3. simulation
            if r is None:
                break
            run.backup(path, r)                                         # 4. backup
        else:
            S.stopped = "iterations"
        chosen, text = _choose(S, run.done, select)
        return S.finish(chosen, run.done, answer_fn, {"aggregate": aggregate}, text=text)


class _Simulations:
    """The four phases of one MCTS simulation on the search ``S``, and what they accumulate:
    reward sums per node, the rewards of finished nodes, the finished solutions (``done``)."""

    def __init__(self, S, value, reward, c_uct, width, rollout, aggregate, max_depth):
        self.S, self.value, self.reward, self.c_uct, self.width = S, value, reward, c_uct, width
        self.rollout, self.aggregate, self.max_depth = rollout, aggregate, max_depth
        self.total, self.final, self.done = {}, {}, []

    def uct(self, parent, c):
        """UCT of child ``c``: unvisited children first (best prior first), then
        Q(c) + c_uct sqrt(ln N(parent) / N(c)); ties to the older node."""
        if c.visits == 0:
            return (1, c.value if c.value is not None else 0.0, -c.id)
        return (0, c.reward + self.c_uct * math.sqrt(math.log(parent.visits) / c.visits), -c.id)

    def select(self) -> list:
        """From the root, follow the child of highest UCT to a leaf; the path."""
        S = self.S
        node, path = S.tree[0], [S.tree[0]]
        while node.children and not node.terminal:
            node = max((S.tree[c] for c in node.children), key=lambda c: self.uct(path[-1], c))
            path.append(node)
        S.log("select", nodes=[n.id for n in path])
        return path

    def expand(self, path) -> bool:
        """Give an unfinished leaf ``width`` valued children and step to the best (appended to
        ``path``); False when the budget or the tree ran out."""
        node = path[-1]
        if node.terminal or node.children or node.depth >= self.max_depth:
            return True
        kids = self.S.expand([node], [self.width])
        if kids is None or not self.S.score(kids[0]):
            return False
        if kids[0]:
            path.append(max(kids[0], key=lambda c: (c.value, -c.id)))
        return True

    def simulate(self, node):
        """The reward of ``node``: a finished node's own, a rollout's to the end, or the
        leaf's value v(s_t); None when the budget ran out."""
        S = self.S
        if node.terminal:
            if node.id not in self.final:
                r = node.value if self.reward is self.value else \
                    self.score_final(S.partial(node))
                if r is None:
                    return None
                self.final[node.id] = r
                self.done.append((S.text(node), r, node.id))
            return self.final[node.id]
        if not (self.rollout and node.depth < self.max_depth):
            return node.value
        step = S.rollout(node, self.max_depth - node.depth)
        if step is None:
            return None
        text = S.text(node) + step.text
        lp = None if step.logprob is None or node.cum_logprob is None else \
            node.cum_logprob + step.logprob
        r = self.score_final(Partial(text, True, lp, node.tokens + step.tokens, node.depth + 1))
        if r is None:
            return None
        S.rollouts.append({"node": node.id, "text": step.text, "reward": r})
        S.log("rollout", node=node.id, text=step.text, reward=r)
        self.done.append((text, r, node.id))
        return r

    def score_final(self, partial):
        """``reward`` of a finished text, charged to the budget (None: it does not fit)."""
        S = self.S
        if not S.affords(self.reward.cost_of(S.prompt, [partial])):
            S.stopped = "budget"
            return None
        (r,), cost = self.reward(S.prompt, [partial])
        S.charge(cost)
        return float(r)

    def backup(self, path, r) -> None:
        """Add ``r`` to every node on the path: Q the mean (or the maximum) of its rewards."""
        for n in path:
            n.visits += 1
            self.total[n.id] = self.total.get(n.id, 0.0) + r
            n.reward = self.total[n.id] / n.visits if self.aggregate == "mean" else \
                max(r, n.reward if n.visits > 1 else -math.inf)
        self.S.log("backup", nodes=[n.id for n in path], reward=r,
                   rewards=[n.reward for n in path], visits=[n.visits for n in path])


def _choose(S, done, select):
    """(node, text) of the answer; text None means the node's own (finished) text."""
    if not done:
        best = max(S.tree[1:], key=lambda n: (n.value or 0.0, -n.id), default=S.tree[0])
        return best, None
    if select == "visits":
        node = S.tree[0]
        while node.children and not node.terminal:
            node = max((S.tree[c] for c in node.children), key=lambda c: (c.visits, -c.id))
        below = _subtree(S, node.id)
        pool = [d for d in done if d[2] in below] or done
    else:
        pool = done
    text, _, nid = max(pool, key=lambda d: d[1])     # ties: the earliest
    node = S.tree[nid]
    return node, (None if node.terminal and text == S.text(node) else text)


def _subtree(S, nid) -> set:
    out, stack = set(), [nid]
    while stack:
        n = stack.pop()
        out.add(n)
        stack += S.tree[n].children
    return out
