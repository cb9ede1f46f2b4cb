"""The search tree shared by the step-level searches (survey §4.3) and their bookkeeping.

`Search` is the engine every algorithm drives: it expands states with a stepper (one batch per
iteration), scores them with a value function, keeps the whole tree (`Node`), checks a `Budget`
before every spend (it shrinks or stops a request rather than exceed it), adds up the Table 5
cost, and records events (``expand``, ``score``, ``select``, ``prune``, ``backtrack``,
``rollout``, ``backup``, ``done``; see `workbench.trace.EVENTS`) in its own trace, which the
result carries (``result.trace``), and in every trace open around it, so a widget can replay
the search from the result or from a saved trace.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..budget import BudgetExceeded, Cost
from ..trace import Trace, emit, plain
from .base import MetaResult, TextOutput, _seeds
from .steps import Partial


@dataclass
class Node:
    """A state: the steps on the path from the root; ``step`` is the action that led here."""
    id: int
    parent: int | None
    step: str = ""
    depth: int = 0
    terminal: bool = False
    logprob: float | None = None       # log p(step | parent state)
    cum_logprob: float | None = 0.0    # log p(steps so far | x)
    tokens: int = 0                    # step tokens so far
    value: float | None = None
    visits: int = 0
    reward: float = 0.0                # MCTS: aggregated backed-up reward
    status: str = "frontier"           # frontier, expanded, pruned, terminal, chosen
    children: list = field(default_factory=list)
    iteration: int = 0                 # the iteration that created it
    copies: int = 1                    # identical sibling samples merged into this node
    step_obj: object = None

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "step_obj"}
        d["children"] = list(self.children)
        return plain(d)


@dataclass
class SearchResult(MetaResult):
    """A `MetaResult` with the search tree (``tree[0]`` is the root) and the search's own trace
    (``trace``; ``events`` are its events)."""
    tree: list = field(default_factory=list)
    trace: Trace = field(default_factory=Trace)

    @property
    def events(self) -> list:
        return self.trace.events

    def path(self, node_id: int) -> list:
        """Node ids from the root to ``node_id``."""
        from ..decoding import tree_path
        return tree_path(self.tree, node_id)

    def solution(self, node_id: int) -> str:
        return "".join(self.tree[i].step for i in self.path(node_id))

    def __repr__(self):
        pruned = sum(n.status == "pruned" for n in self.tree)
        return (f"SearchResult({self.info.get('method')}: text={self.text!r}, "
                f"answer={self.answer!r}, {len(self.tree)} nodes, {pruned} pruned, "
                f"cost=({self.cost}))")


class Search:
    """The tree, the budget, the cost and the event log of one search run."""

    def __init__(self, method, prompt, stepper, value, budget=None, dedupe=True, seed=None,
                 params=None):
        self.method, self.prompt, self.stepper, self.value = method, prompt, stepper, value
        self.budget, self.dedupe, self.params = budget, dedupe, params or {}
        self.tree = [Node(0, None, status="frontier")]
        self.trace, self.it, self.cost, self.stopped = Trace(), 0, Cost(), None
        self.trace._sources.append(method)
        self.gen_cost = Cost()
        self.rollouts = []                  # MCTS rollouts: {"node", "text", "reward"}
        self._rng = np.random.default_rng(_seeds(seed, 1)[0])
        stepper.start(prompt)

    # -- events ----------------------------------------------------------------------------
    def log(self, kind, **fields):
        with self.trace:                    # recorded here and in every trace open around it
            emit(kind, it=self.it, **fields)

    def next_seed(self) -> int:
        return int(self._rng.integers(2**62))

    # -- the tree --------------------------------------------------------------------------
    def steps(self, node) -> list:
        out = []
        while node.parent is not None:
            out.append(node.step_obj)
            node = self.tree[node.parent]
        return out[::-1]

    def text(self, node) -> str:
        return "".join(s.text for s in self.steps(node))

    def partial(self, node) -> Partial:
        return Partial(self.text(node), node.terminal, node.cum_logprob, node.tokens, node.depth)

    # -- spending --------------------------------------------------------------------------
    def affords(self, cost: Cost) -> bool:
        return self.budget is None or self.budget.affords(cost)

    def charge(self, cost: Cost, generation: bool = False):
        if self.budget is not None:
            self.budget.charge(cost)
        self.cost = self.cost + cost
        if generation:
            self.gen_cost = self.gen_cost + cost

    def rollout(self, node, max_steps: int):
        """The rest of the solution from ``node`` (one stepper rollout); None at the budget."""
        steps = self.steps(node)
        if not self.affords(self.stepper.rollout_cost(self.prompt, steps, max_steps)):
            self.stopped = "budget"
            return None
        step, cost = self.stepper.rollout(self.prompt, steps, self.next_seed(), max_steps)
        self.charge(cost, generation=True)
        return step

    def expand(self, nodes, ks):
        """Generate ``ks[i]`` children of ``nodes[i]`` in one batch; returns the new nodes per
        parent.  Requests the budget cannot cover are shrunk (last parents first); returns None
        when nothing at all can be afforded (``self.stopped = "budget"``)."""
        states = [self.steps(n) for n in nodes]
        ks = list(ks)
        while sum(ks) and not self.affords(self.stepper.max_cost(self.prompt, states, ks)):
            i = max(j for j, k in enumerate(ks) if k)
            ks[i] -= 1
        if not sum(ks):
            if len(self.tree) == 1:
                raise BudgetExceeded(f"the budget {self.budget.limits} cannot pay for a single "
                                     f"step of {self.method} (spent so far: {self.budget.spent})")
            self.stopped = "budget"
            return None
        steps, cost = self.stepper.propose(self.prompt, states, ks, self.next_seed())
        self.charge(cost, generation=True)
        out = []
        for node, new in zip(nodes, steps):
            kids = []
            for s in new:
                twin = next((c for c in kids if c.step == s.text), None) if self.dedupe else None
                if twin is not None:
                    twin.copies += 1
                    continue
                lp = s.logprob
                cum = None if lp is None or node.cum_logprob is None else node.cum_logprob + lp
                child = Node(len(self.tree), node.id, s.text, node.depth + 1, s.terminal, lp, cum,
                             node.tokens + s.tokens, iteration=self.it,
                             status="terminal" if s.terminal else "frontier", step_obj=s)
                self.tree.append(child)
                node.children.append(child.id)
                kids.append(child)
            if new:
                node.status = "expanded" if node.status != "chosen" else node.status
                self.log("expand", node=node.id, children=[c.id for c in kids],
                         steps=[c.step for c in kids], copies=[c.copies for c in kids],
                         terminal=[c.terminal for c in kids])
            out.append(kids)
        return out

    def score(self, nodes) -> bool:
        """Value every node (skipping scored ones); False if the budget cannot pay for it."""
        todo = [n for n in nodes if n.value is None]
        if not todo:
            return True
        partials = [self.partial(n) for n in todo]
        if not self.affords(self.value.cost_of(self.prompt, partials)):
            self.stopped = "budget"
            return False
        vals, cost = self.value(self.prompt, partials)
        self.charge(cost)
        for n, v in zip(todo, vals):
            n.value = float(v)
            self.log("score", node=n.id, value=n.value, terminal=n.terminal)
        return True

    def prune(self, node, reason: str):
        if node.status in ("frontier", "terminal", "expanded"):
            node.status = "pruned"
            self.log("prune", node=node.id, reason=reason)

    # -- the result ------------------------------------------------------------------------
    def finish(self, chosen, candidates=None, answer_fn=None, extra=None,
               text=None) -> SearchResult:
        """Mark the path to the ``chosen`` node and build the result.  ``candidates`` are the
        finished solutions considered (nodes, or ``(text, value, node id)`` for rollouts);
        ``text`` overrides the chosen node's text (a rollout that continued from it)."""
        from .parallel import default_answer
        answer_fn = answer_fn or default_answer
        node = chosen
        while node is not None:
            node.status = "chosen"
            node = self.tree[node.parent] if node.parent is not None else None
        text = self.text(chosen) if text is None else text
        cands, scores = [], []
        for c in candidates or []:
            if isinstance(c, Node):
                cands.append(TextOutput(self.text(c), Cost(), None, {"node": c.id}))
                scores.append(c.value)
            else:
                cands.append(TextOutput(c[0], Cost(), None, {"rollout_of": c[2]}))
                scores.append(c[1])
        chosen_idx = next((i for i, c in enumerate(cands) if c.text == text), None)
        computed = self.gen_cost.computed_tokens
        naive = self.gen_cost.input_tokens + self.gen_cost.output_tokens
        info = {"method": self.method, "params": self.params, "value": repr(self.value),
                "stopped": self.stopped or "done", "iterations": self.it,
                "nodes": len(self.tree), "chosen_node": chosen.id, "rollouts": self.rollouts,
                "kv": {"computed_tokens": computed, "naive_tokens": naive,
                       "ratio": computed / naive if naive else None},
                **(extra or {})}
        answer = answer_fn(text)
        self.log("done", node=info["chosen_node"], text=text, answer=answer,
                 stopped=info["stopped"])
        return SearchResult(text, self.cost, cands, scores, chosen_idx,
                            answer, info=info, tree=self.tree,
                            trace=self.trace)
