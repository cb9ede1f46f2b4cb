"""Token-tree speculative decoding (survey §7.2, "Parallelization across time"; SpecInfer, Miao
et al. 2024; Sequoia, Chen et al. 2024).

Chain speculative decoding (`speculative_decode`) bets on one drafted continuation: the first
rejection ends the round.  A token *tree* hedges: at every node the draft proposes several
children, the target scores every root-to-leaf path in one pass, and the round walks down the
tree as long as some child is accepted.  More tokens are verified per pass, so more are
accepted per round.  At each node the choice among the children is multi-step speculative
sampling (`multi_draft_step`), which keeps the output distributed exactly as the target's.
"""
from __future__ import annotations

import time

import torch

from .. import validate
from ..budget import Cost
from ..decoding import Generation, apply_adapters
from ..models import DecodeState, LanguageModel
from ..rng import make_generator
from ..trace import active, emit
from ..trace import source as tagged
from .kv import _seconds
from .speculative import _multinomial


def _residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(p - q, 0)): what p still owes after a draft from q was rejected."""
    r = (p - q).clamp_min(0)
    total = float(r.sum())
    return r / total if total > 0 else p     # total = 0 only when p == q (up to rounding)


def multi_draft_step(p: torch.Tensor, q: torch.Tensor, children, generator=None):
    """Multi-step speculative sampling at one tree node (SpecInfer, Miao et al. 2024, MSS).

    ``p`` (V,): the target's distribution at the node; ``q`` (V,): the draft's distribution the
    ``children`` c_1..c_m were drawn from *without replacement* (c_i ~ q_i, where q_1 = q and
    q_{i+1} is q_i with c_i removed and renormalised).  With p_1 = p, for i = 1..m:

        accept c_i  with probability  min(1, p_i(c_i) / q_i(c_i));
        else        p_{i+1} = norm(max(p_i - q_i, 0)),   q_{i+1} = norm(q_i with q_i(c_i) = 0).

    If every child is rejected, the token is drawn from p_{m+1}.  Each try is one step of
    ordinary speculative sampling with target p_i and draft q_i, whose output follows p_i;
    on rejection the rest of the procedure must produce p_{i+1} (the residual), and it does by
    the same argument one child later, so the token follows p exactly.  For m = 1 the
    acceptance probability is sum_v min(p(v), q(v)).

    Returns (token, index of the accepted child or None).
    """
    p, q = p.double(), q.double()
    for i, c in enumerate(children):
        u = float(torch.rand((), generator=generator, dtype=torch.float64,
                             device=generator.device if generator is not None else "cpu"))
        if u * float(q[c]) < float(p[c]):
            return int(c), i
        p = _residual(p, q)
        q = q.clone()
        q[c] = 0
        q = q / q.sum() if float(q.sum()) > 0 else q
    return _multinomial(p, generator), None


def greedy_tree_step(logits: torch.Tensor, children):
    """Greedy verification at a node: the target's argmax, and the index of the child that
    equals it (None when no child does: the argmax is emitted and the round ends)."""
    best = int(logits.argmax())
    return best, (list(children).index(best) if best in children else None)


def _draw_children(q: torch.Tensor, m: int, generator) -> list:
    """m distinct tokens from q, drawn one by one without replacement (fewer if q has fewer
    tokens with q > 0)."""
    q, out = q.double().clone(), []
    for _ in range(min(m, int((q > 0).sum()))):
        tok = _multinomial(q / q.sum(), generator)
        out.append(tok)
        q[tok] = 0
    return out


class _Tree:
    """A drafted token tree: node 0 is the root (the last committed token); node i > 0 holds
    ``tokens[i]`` with parent ``parents[i]``.  ``q[i]`` is the draft's distribution at node i
    (adapted probabilities, or logits for greedy) that its children were drawn from."""

    def __init__(self):
        self.tokens, self.parents, self.depth, self.q = [None], [-1], [0], {}
        self.children: dict = {0: []}

    def add(self, parent: int, token: int) -> int:
        self.tokens.append(token)
        self.parents.append(parent)
        self.depth.append(self.depth[parent] + 1)
        self.children[parent].append(len(self.tokens) - 1)
        self.children[len(self.tokens) - 1] = []
        return len(self.tokens) - 1

    def paths(self) -> list:
        """Each leaf's root-to-leaf path of node indices (root excluded)."""
        out = []
        for leaf in (i for i in range(len(self.tokens)) if not self.children[i] and i):
            path = [leaf]
            while self.parents[path[0]] > 0:
                path.insert(0, self.parents[path[0]])
            out.append(path)
        return out or [[]]


def _draft_tree(draft: LanguageModel, dstate: DecodeState, branching, adapters, greedy,
                generator) -> _Tree:
    """Grow the tree level by level: one batched draft pass per level below the first (each
    frontier node on its own copy of the draft's cache)."""
    tree, frontier, batch, logits = _Tree(), [0], dstate, dstate.logits
    for j, b in enumerate(branching):
        new, rows = [], []
        for r, node in enumerate(frontier):
            if greedy:
                tree.q[node] = logits[r]
                kids = logits[r].topk(min(b, logits.shape[-1])).indices.tolist()
            else:
                tree.q[node] = torch.softmax(apply_adapters(logits[r:r + 1], adapters), -1)[0]
                kids = _draw_children(tree.q[node], b, generator)
            for tok in kids:
                new.append(tree.add(node, tok))
                rows.append(r)
        frontier = new
        if j < len(branching) - 1:
            batch = batch.select(rows, inplace=batch is not dstate)
            logits = draft.advance(batch, [tree.tokens[n] for n in new]).logits
    return tree


def _verify_pass(target: LanguageModel, state: DecodeState, pending: list, rows: list,
                 hidden: bool = False):
    """One target pass of ``pending + row`` for every row (right padded; a causal model never
    reads the padding), each on its own copy of the cache (``state`` is used up).  Returns
    ``node_logits`` (B, 1 + D, V), entry [b, j] the target's logits after the row's first j
    tokens, and the batch's state.  Without tokens to feed, no pass is run.  ``hidden=True``
    (Medusa's heads read them; ``pending`` must not be empty) adds a third item, the last
    hidden states (B, 1 + D, d) at the same entries."""
    D = max(len(r) for r in rows)
    T = len(pending) + D
    if T == 0:
        return state.logits.view(1, 1, -1), state
    tokens = [pending + r + [(pending + r + [0])[0]] * (D - len(r)) for r in rows]
    batch = state.select([0] * len(rows), inplace=True)
    tok = torch.tensor(tokens, device=target.device)
    pos = (state.positions.view(1, 1) + torch.arange(T, device=target.device)).expand_as(tok)
    logits, batch.cache, *last = target.forward(tok, None, pos, batch.cache, hidden=hidden)
    batch.mask = torch.cat([batch.mask, torch.ones_like(tok)], dim=1)
    batch.positions = batch.positions + T
    for ids, row in zip(batch.ids, tokens):
        ids.extend(row)
    root = (logits[:, len(pending) - 1:len(pending)] if pending
            else state.logits.view(1, 1, -1).expand(len(rows), 1, -1))
    node_logits = torch.cat([root, logits[:, len(pending):]], dim=1)
    return (node_logits, batch, last[0][:, len(pending) - 1:]) if hidden else (node_logits, batch)


def _walk(tree: _Tree, paths, node_logits, adapters, greedy, generator):
    """Walk from the root: at each node the target's logits (from the row of a path through
    it) and the node's children give the next token; stop at the first token that is not a
    child.  Returns the accepted nodes, the tokens emitted and the (row, column) of the logits
    each was chosen from."""
    row_of = {n: b for b, path in enumerate(paths) for n in path}
    node, accepted, tokens, where = 0, [], [], []
    while True:
        b, j = row_of.get(node, 0), tree.depth[node]
        kids = tree.children[node]
        kid_tokens = [tree.tokens[k] for k in kids]
        if greedy:
            tok, i = greedy_tree_step(node_logits[b, j], kid_tokens)
        else:
            p = torch.softmax(apply_adapters(node_logits[b, j:j + 1], adapters).double(), -1)[0]
            q = tree.q.get(node, p)
            tok, i = multi_draft_step(p, q, kid_tokens, generator)
        tokens.append(tok)
        where.append((b, j))
        if i is None:
            return accepted, tokens, where
        node = kids[i]
        accepted.append(node)


def tree_speculative_decoding(target: LanguageModel, draft: LanguageModel, prompt,
                              branching=(2, 2, 1), max_new_tokens: int = 128, adapters=None,
                              seed=None, greedy: bool = False,
                              stop_at_eos: bool = True) -> Generation:
    """Speculative decoding with a token tree (SpecInfer, Miao et al. 2024; Sequoia, Chen et
    al. 2024).  The output follows softmax(adapters(target logits)) exactly (``greedy=True``:
    exactly ``decoding.greedy(target, ...)``'s tokens).

    Each round:

    1. **Draft a tree.**  The root is the last committed token; every node at level j gets
       ``branching[j]`` children: ``greedy``, the draft's top-``branching[j]`` tokens; else
       tokens drawn from the draft's adapted distribution q *without replacement* (as
       SpecInfer's multi-step speculative sampling expects).  One draft pass per level.
    2. **Verify in one target pass.**  SpecInfer feeds the whole tree as one row with a tree
       attention mask.  Simplified for reading: here each root-to-leaf path is its own row of
       one batched pass, on a copy of the target's KV cache (as lookahead decoding does); the
       row of the accepted path is kept and cropped.  Still one target pass per round.
    3. **Walk the tree.**  From the root, choose among a node's children with
       `multi_draft_step` (greedy: the child equal to the target's argmax, `greedy_tree_step`);
       follow an accepted child, and end the round with the first token that is not a child
       (the residual's, or the target's own at a leaf).  A round emits 1..len(branching) + 1
       tokens.

    Stateful adapters are refused.  ``info``: ``rounds`` (each: the tree's ``tokens`` and
    ``parents``, -1 meaning the root, the accepted ``path`` of node indices, the ``emitted``
    tokens), ``tokens_per_round``, ``target_passes`` and ``draft_passes`` (prompt passes
    included), ``tree_size`` (drafted nodes per round) and the costs.
    """
    branching = _check(target, draft, branching, adapters)
    adapters = [adapters] if callable(adapters) else list(adapters or ())
    max_new_tokens = validate.count("max_new_tokens", max_new_tokens, lo=0)
    ids = target.prompt_ids(prompt, max_new_tokens)
    draft.prompt_ids(prompt, max_new_tokens)
    dcount = None if draft.counter is target.counter else draft.counter
    snap, dsnap = target.counter.snapshot(), dcount.snapshot() if dcount else None
    start = time.perf_counter()
    run = _Run(target, draft, ids, branching, max_new_tokens, adapters,
               make_generator(seed, target.device), greedy, stop_at_eos)
    with tagged("tree_spec"):
        while len(run.out) < max_new_tokens and run.finish == "length":
            run.round()
    tcost = target.counter.since(snap)
    dcost = dcount.since(dsnap) if dcount else Cost()
    n = len(run.rounds)
    info = {"rounds": run.rounds, "branching": branching,
            "tokens_per_round": sum(len(r["emitted"]) for r in run.rounds) / n if n else 0.0,
            "mean_accepted": sum(len(r["path"]) for r in run.rounds) / n if n else 0.0,
            "target_passes": tcost.forward_passes, "draft_passes": dcost.forward_passes,
            "tree_size": [len(r["tokens"]) for r in run.rounds], "target_cost": tcost,
            "draft_cost": dcost, "seconds": _seconds(start, target.device)}
    return Generation.of(target, prompt, ids, run.out, run.logprobs, run.finish,
                         spent=tcost + dcost, info=info, end_logprob=run.end[0],
                         proposal_logprobs=run.glps, end_proposal_logprob=run.end[1])


def _check(target, draft, branching, adapters) -> tuple:
    if (not isinstance(branching, (tuple, list)) or not branching
            or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in branching)):
        raise ValueError(f"branching must be a non-empty tuple of positive ints, got "
                         f"{branching!r}")
    if target.vocab_size != draft.vocab_size:
        raise ValueError(f"draft vocabulary ({draft.vocab_size}) differs from the target's "
                         f"({target.vocab_size}): they must share a tokenizer")
    ads = [adapters] if callable(adapters) else list(adapters or ())
    if any(hasattr(a, "observe") for a in ads):
        raise ValueError("adapters must be stateless functions of the logits (no .observe)")
    return tuple(branching)


def record_round(rounds: list, tree: _Tree, accepted, tokens) -> None:
    """Append one round (the tree without its root, the accepted path, the emitted tokens) to
    ``rounds`` and trace it as a ``tree_spec_round`` event."""
    rd = {"tokens": tree.tokens[1:], "parents": [p - 1 for p in tree.parents[1:]],
          "path": [n - 1 for n in accepted], "emitted": tokens}
    rounds.append(rd)
    if active():
        emit("tree_spec_round", round=len(rounds) - 1, **rd)


class _Run:
    """One run, a round at a time.  The target's state holds every committed token but
    ``pending`` (the last round's final token), which the next verification pass feeds first;
    the draft's state is behind by ``dpending`` (the last round's emitted tokens)."""

    def __init__(self, target, draft, ids, branching, budget, adapters, gen, greedy, stop):
        self.target, self.draft, self.branching, self.budget = target, draft, branching, budget
        self.adapters, self.gen, self.greedy = adapters, gen, greedy
        self.eos = target.eos_token_id if stop else None
        self.state, self.dstate = target.prefill(ids), draft.prefill(ids)
        self.pending, self.dpending = [], []
        self.out, self.logprobs, self.glps, self.rounds = [], [], [], []
        self.finish, self.end = "length", (None, None)

    def round(self) -> None:
        """Draft a tree, verify it in one target pass, walk it, commit the emitted tokens."""
        depth = min(len(self.branching), self.budget - len(self.out) - 1)
        if depth and self.dpending:
            self.draft.extend(self.dstate, self.dpending)
            self.dpending = []
        tree = (_draft_tree(self.draft, self.dstate, self.branching[:depth], self.adapters,
                            self.greedy, self.gen) if depth else _Tree())
        paths = tree.paths()
        node_logits, batch = _verify_pass(self.target, self.state, self.pending,
                                          [[tree.tokens[n] for n in p] for p in paths])
        accepted, tokens, where = _walk(tree, paths, node_logits, self.adapters, self.greedy,
                                        self.gen)
        if batch is not self.state:   # keep the accepted path's row, drop its rejected tail
            b, j = where[-1]
            self.state = batch.select([b], inplace=True)
            self.state.crop(node_logits.shape[1] - 1 - j, node_logits[b, j])
        self.pending = [tokens[-1]]
        self.dpending += tokens
        self._commit(tokens, [node_logits[b, j] for b, j in where])
        record_round(self.rounds, tree, accepted, tokens)

    def _commit(self, tokens, rows) -> None:
        """Append the round's tokens with log p_θ and the adapted log-probability (0 for greedy)
        until EOS or the budget."""
        for tok, raw in zip(tokens, rows):
            if len(self.out) >= self.budget:
                break
            lp = float(torch.log_softmax(raw.float(), -1)[tok])
            lg = 0.0 if self.greedy else float(torch.log_softmax(
                apply_adapters(raw.view(1, -1), self.adapters).float(), -1)[0, tok])
            if tok == self.eos:
                self.finish, self.end = "eos", (lp, lg)
                return
            self.out.append(tok)
            self.logprobs.append(lp)
            self.glps.append(lg)
