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
    total, final, done = {}, {}, []    # reward sums; rewards of finished nodes; solutions

    def uct(parent, c):
        if c.visits == 0:
            return (1, c.value if c.value is not None else 0.0, -c.id)
        return (0, c.reward + c_uct * math.sqrt(math.log(parent.visits) / c.visits), -c.id)

    def score_final(partial):
        if not S.affords(reward.cost_of(S.prompt, [partial])):
            S.stopped = "budget"
            return None
        (r,), cost = reward(S.prompt, [partial])
        S.charge(cost)
        return float(r)

    with source("mcts"):
        for it in range(iterations):
            S.it = it
            node, path = S.tree[0], [S.tree[0]]
            while node.children and not node.terminal:                  # 1. selection
                node = max((S.tree[c] for c in node.children), key=lambda c: uct(path[-1], c))
                path.append(node)
            S.log("select", nodes=[n.id for n in path])
            if not node.terminal and not node.children and node.depth < max_depth:
                kids = S.expand([node], [width])                        # 2. expansion
                if kids is None or not S.score(kids[0]):
                    break
                if kids[0]:
                    node = max(kids[0], key=lambda c: (c.value, -c.id))
                    path.append(node)
            if node.terminal:                                           # 3. simulation
                if node.id not in final:
                    r = node.value if reward is value else score_final(S.partial(node))
                    if r is None:
                        break
                    final[node.id] = r
                    done.append((S.text(node), r, node.id))
                r = final[node.id]
            elif rollout and node.depth < max_depth:
                step = S.rollout(node, max_depth - node.depth)
                if step is None:
                    break
                text = S.text(node) + step.text
                lp = None if step.logprob is None or node.cum_logprob is None else \
                    node.cum_logprob + step.logprob
                r = score_final(Partial(text, True, lp, node.tokens + step.tokens,
                                        node.depth + 1))
                if r is None:
                    break
                S.rollouts.append({"node": node.id, "text": step.text, "reward": r})
                S.log("rollout", node=node.id, text=step.text, reward=r)
                done.append((text, r, node.id))
            else:
                r = node.value
            for n in path:                                              # 4. backup
                n.visits += 1
                total[n.id] = total.get(n.id, 0.0) + r
                n.reward = total[n.id] / n.visits if aggregate == "mean" else \
                    max(r, n.reward if n.visits > 1 else -math.inf)
            S.log("backup", nodes=[n.id for n in path], reward=r,
                  rewards=[n.reward for n in path], visits=[n.visits for n in path])
        else:
            S.stopped = "iterations"
        chosen, text = _choose(S, done, select)
        return S.finish(chosen, done, answer_fn, {"aggregate": aggregate}, text=text)


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
