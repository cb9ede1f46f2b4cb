"""Token-level generators (survey §3): greedy, ancestral sampling with adapters, beam search,
exact MAP search.

Greedy decoding and sampling run one loop, `decode`: at every step the model gives logits
s_theta(. | y_<t, x), an optional chain of *adapters* q_t (eq. 13, Table 2) reshapes them, and a
*chooser* picks the next token (argmax for greedy, eq. 8; a draw from softmax(q_t(s_theta)) for
sampling, eqs. 12-13).  The loop uses the KV cache, stops at EOS, at ``max_new_tokens`` or at a
stop string, emits a ``step`` event per token into the active trace, and returns `Generation`
results with the text, the tokens, the per-token log-probabilities under p_theta and the cost.

MAP decoding (eq. 7) has two searches besides greedy: `beam_search` (the same tokens and scores
as Hugging Face ``generate(num_beams=...)``, plus the whole search tree) and `exact_map`, exact
depth-first branch-and-bound (Stahlberg & Byrne, 2019) under a node budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from . import trace as tr, validate
from .budget import Cost
from .models import DecodeState, LanguageModel
from .rng import make_generator


@dataclass
class Generation:
    """One generated continuation."""
    text: str                 # the continuation's text (prompt excluded)
    token_ids: list           # its tokens
    logprobs: list            # log p_theta(y_t | y_<t, x) of each token, before any adapter
    prompt: str = ""
    prompt_ids: list = field(default_factory=list)
    finish_reason: str = "length"   # "eos", "stop" or "length"
    cost: Cost = field(default_factory=Cost)
    info: dict = field(default_factory=dict)

    @property
    def logprob(self) -> float:
        """log p_theta(y | x): the sum of the per-token log-probabilities."""
        return float(sum(self.logprobs))

    score = logprob

    def __str__(self):
        return self.text

    def __repr__(self):
        return (f"Generation(text={self.text!r}, tokens={len(self.token_ids)}, "
                f"logprob={self.logprob:.3f}, finish={self.finish_reason!r})")


def apply_adapters(logits: torch.Tensor, adapters) -> torch.Tensor:
    """Apply a chain of adapters q_t in order (each: logits -> logits)."""
    for a in adapters or ():
        logits = a(logits)
    return logits


def _adapter_list(adapters) -> list:
    """``None``, one callable (e.g. ``adapters.chain(...)``) or a list of callables."""
    if adapters is None:
        return []
    if callable(adapters):
        return [adapters]
    out = list(adapters)
    if not all(callable(a) for a in out):
        raise TypeError("adapters must be a callable logits -> logits or a list of them")
    return out


def choose_greedy(logits, generator=None):
    return logits.argmax(-1)


def choose_sample(logits, generator=None):
    probs = torch.softmax(logits.float(), -1)
    if generator is not None and generator.device != probs.device:  # e.g. mps with a cpu generator
        return torch.multinomial(probs.cpu(), 1, generator=generator).view(-1).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator).view(-1)


def _check_stop(stop):
    if stop is None:
        return []
    stop = [stop] if isinstance(stop, str) else list(stop)
    if any(not isinstance(s, str) or not s for s in stop):
        raise ValueError("stop must be a non-empty string or a list of non-empty strings")
    return stop


def _hit_stop(lm: LanguageModel, tokens: list, stop: list) -> bool:
    for s in stop:
        tail = lm.decode(tokens[-(len(s) + 1):], skip_special_tokens=False)
        if s in tail:
            return True
    return False


def _top(logits_row, k):
    lp = torch.log_softmax(logits_row.float(), -1)
    v, i = lp.topk(min(k, lp.shape[-1]))
    return [[int(a), float(b)] for a, b in zip(i, v)]


def decode(lm: LanguageModel, state: DecodeState, chooser, max_new_tokens: int = 128,
           adapters=None, stop=None, generator=None, prompts=None, source="decode",
           trace_top: int = 10, eos: bool = True) -> list:
    """Run the token loop on every row of ``state``; returns one `Generation` per row."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    stop = _check_stop(stop)
    snap = lm.counter.snapshot()
    B = state.batch_size
    prompt_lens = [len(r) for r in state.ids]
    out_tokens = [[] for _ in range(B)]
    out_lps = [[] for _ in range(B)]
    reasons = ["length"] * B
    done = [False] * B
    adapters = _adapter_list(adapters)
    observers = [a for a in adapters if hasattr(a, "observe")]
    eos_id = lm.eos_token_id if eos else None
    with tr.source(source):
        for t in range(max_new_tokens):
            logits = state.logits
            logp = torch.log_softmax(logits.float(), -1)
            adapted = apply_adapters(logits, adapters) if adapters else logits
            tok = chooser(adapted, generator)
            toks = tok.tolist()
            if tr.active():
                for r in range(B):
                    if not done[r]:
                        tr.emit("step", row=r, t=t, token=toks[r],
                                logprob=float(logp[r, toks[r]]), top=_top(logits[r], trace_top),
                                top_adapted=_top(adapted[r], trace_top) if adapters else None)
            for a in observers:
                a.observe(tok, adapted)
            chosen_lp = logp.gather(1, tok.view(-1, 1)).view(-1).tolist()
            for r in range(B):
                if done[r]:
                    continue
                ti = toks[r]
                if ti == eos_id:
                    reasons[r], done[r] = "eos", True
                    continue
                out_tokens[r].append(ti)
                out_lps[r].append(chosen_lp[r])
                if stop and _hit_stop(lm, out_tokens[r], stop):
                    reasons[r], done[r] = "stop", True
            if all(done) or t == max_new_tokens - 1:
                break
            if any(done):
                tok = torch.tensor([lm.pad_token_id if d else x for d, x in zip(done, toks)],
                                   device=tok.device)
            lm.advance(state, tok)
    cost = lm.counter.since(snap)
    per_row_compute = Cost(forward_passes=cost.forward_passes,
                           computed_tokens=cost.computed_tokens)
    results = []
    for r in range(B):
        c = Cost(input_tokens=prompt_lens[r], output_tokens=len(out_tokens[r]), calls=1)
        if r == 0:  # the batch's shared compute is booked once, on its first row
            c = c + per_row_compute
        p_ids = state.ids[r][:prompt_lens[r]]
        results.append(Generation(
            text=lm.decode(out_tokens[r]), token_ids=out_tokens[r], logprobs=out_lps[r],
            prompt=(prompts[r] if prompts else lm.decode(p_ids)), prompt_ids=p_ids,
            finish_reason=reasons[r], cost=c))
    return results


def is_batch(prompt) -> bool:
    """True for a list of prompts (texts or id lists), False for one prompt."""
    return not isinstance(prompt, str) and len(prompt) > 0 and not isinstance(prompt[0], int)


def _run(lm, prompt, n, chooser, max_new_tokens, adapters, stop, seed, source, eos=True):
    prompts = list(prompt) if is_batch(prompt) else [prompt]
    for p in prompts:
        lm.prompt_ids(p, max_new_tokens)
    adapters = _adapter_list(adapters)
    snap = lm.counter.snapshot()
    state = lm.prefill(prompts, n=n)
    prefill_cost = lm.counter.since(snap)
    gen = make_generator(seed, lm.device)
    texts = [p if isinstance(p, str) else lm.decode(p) for p in prompts for _ in range(n)]
    res = decode(lm, state, chooser, max_new_tokens, adapters, stop, gen, texts, source, eos=eos)
    res[0].cost = res[0].cost + prefill_cost
    return res


def greedy(lm: LanguageModel, prompt, max_new_tokens: int = 128, stop=None, adapters=None,
           eos: bool = True):
    """Greedy decoding (eq. 8): y_t = argmax_v s_theta(v | y_<t, x) at every step.

    ``prompt`` is a text or ids; a list of prompts is decoded as one batch (list returned).
    ``eos=False`` ignores the end-of-sequence token (e.g. to time a fixed number of tokens).
    """
    out = _run(lm, prompt, 1, choose_greedy, max_new_tokens, adapters, stop, 0, "greedy", eos)
    return out if is_batch(prompt) else out[0]


def sample(lm: LanguageModel, prompt, adapters=None, seed=None, max_new_tokens: int = 128,
           stop=None, n: int | None = None, eos: bool = True):
    """Ancestral sampling (eq. 12) through adapters (eq. 13): y_t ~ softmax(q_t(s_theta)).

    ``adapters`` is one logits -> logits callable or a list applied in order (see
    `workbench.adapters`).  With ``n`` set, returns a list of ``n`` samples that share one
    computed prompt; a list of prompts gives a list with one entry (a sample, or a list of
    ``n``) per prompt.  ``eos=False`` ignores the end-of-sequence token.
    """
    k = 1 if n is None else n
    if k < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = _run(lm, prompt, k, choose_sample, max_new_tokens, adapters, stop, seed, "sample", eos)
    groups = [out[i:i + k] for i in range(0, len(out), k)]
    groups = [g[0] for g in groups] if n is None else groups
    return groups if is_batch(prompt) else groups[0]


# -- MAP search ---------------------------------------------------------------------------
@dataclass
class Hypothesis(Generation):
    """A finished hypothesis of a search.

    ``seq_logprob`` is log p_theta of the whole sequence, the end-of-sequence token included when
    there is one (``logprob`` sums ``logprobs``, which, as in `decode`, leave EOS out);
    ``length`` counts the generated tokens, EOS included; ``score`` is what the search ranked
    by: seq_logprob / length ** length_penalty for beam search, seq_logprob for `exact_map`.
    """
    score: float = 0.0
    seq_logprob: float = 0.0
    length: int = 0
    node: int = -1

    def __repr__(self):
        return (f"Hypothesis(text={self.text!r}, score={self.score:.4f}, "
                f"seq_logprob={self.seq_logprob:.4f}, finish={self.finish_reason!r})")


@dataclass
class Node:
    """A node of a search tree: the sequence ending in ``token``, reached from ``parent``."""
    id: int
    parent: int | None
    token: int | None
    logprob: float        # log p_theta(token | parent's sequence)
    cum_logprob: float    # log p_theta(sequence | x), as accumulated by the search
    step: int             # number of generated tokens (0 for the root, the prompt)
    status: str = "kept"  # "kept" (a live beam), "pruned", or "finished" (ended: EOS/length/stop)
    score: float | None = None  # the finished hypothesis' score
    reason: str | None = None   # why a finished node ended: "eos", "length" or "stop"
    rank: int | None = None     # position among the returned hypotheses

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def tree_path(tree: list, node_id: int) -> list:
    """Node ids from the root to ``node_id`` in a tree stored as a list of nodes with
    ``.parent`` ids (beam search here, the step-level searches of `workbench.meta.tree`)."""
    out = []
    while node_id is not None:
        out.append(node_id)
        node_id = tree[node_id].parent
    return out[::-1]


@dataclass
class BeamSearchResult:
    """Beam search output: finished hypotheses best-first, and the whole search tree.

    Behaves like its best hypothesis for ``.text``, ``.token_ids``, ``.score``, ``.logprob``.
    """
    hypotheses: list
    tree: list            # Node objects; tree[i].id == i, tree[0] is the root (the prompt)
    cost: Cost
    prompt: str = ""
    prompt_ids: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    @property
    def best(self) -> Hypothesis:
        return self.hypotheses[0]

    text = property(lambda self: self.best.text)
    token_ids = property(lambda self: self.best.token_ids)
    logprobs = property(lambda self: self.best.logprobs)
    logprob = property(lambda self: self.best.logprob)
    score = property(lambda self: self.best.score)
    finish_reason = property(lambda self: self.best.finish_reason)

    def path(self, node_id: int) -> list:
        """Node ids from the root to ``node_id``."""
        return tree_path(self.tree, node_id)

    def __repr__(self):
        n = sum(nd.status == "pruned" for nd in self.tree)
        return (f"BeamSearchResult({len(self.hypotheses)} hypotheses, best={self.text!r}, "
                f"score={self.score:.4f}, {len(self.tree)} nodes, {n} pruned)")


def _check_beam_args(num_beams, length_penalty, early_stopping, num_return_sequences):
    validate.count("num_beams", num_beams)
    validate.number("length_penalty", length_penalty)
    if not (early_stopping is True or early_stopping is False or early_stopping == "never"):
        raise ValueError(f'early_stopping must be True, False or "never", got {early_stopping!r}')
    n = num_beams if num_return_sequences is None else num_return_sequences
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= num_beams:
        raise ValueError(f"num_return_sequences must be in [1, num_beams={num_beams}], got {n!r}")
    return n


def beam_search(lm: LanguageModel, prompt, num_beams: int = 4, length_penalty: float = 1.0,
                early_stopping=False, max_new_tokens: int = 32,
                num_return_sequences: int | None = None, stop=None,
                eos: bool = True) -> BeamSearchResult:
    """Beam search (survey §3.1), an approximation of MAP decoding (eq. 7).

    Keeps ``num_beams`` prefixes; each step scores every one-token extension by its cumulative
    log-probability log p_theta(y_<t o y_t | x) (eq. 11), takes the best 2 * num_beams, moves
    the ones that ended (EOS, ``max_new_tokens``, a stop string) among the first num_beams to the
    finished set with score  log p_theta(y | x) / |y| ** length_penalty  (|y| counts generated
    tokens, EOS included), and continues with the best num_beams that did not end.  The search
    stops as Hugging Face's does: ``early_stopping=True`` once num_beams hypotheses are finished;
    ``False`` once the best live beam, scored at its current length, cannot beat the worst
    finished one; ``"never"`` the same with the most favourable length (``max_new_tokens`` when
    length_penalty > 0); and always when every candidate has ended.

    Returns the finished hypotheses best-first (``num_return_sequences`` of them, default all
    num_beams) and the tree of every candidate considered, pruned ones included.  Emits
    ``beam_expand`` (a live beam is extended), ``beam_step`` (the candidates and the beams
    kept), ``beam_finish`` and ``beam_done`` events.  One prompt at a time; the prompt's KV
    cache is computed once and shared, and beams are reordered in place
    (``DecodeState.select(rows, inplace=True)``).  Note that HF
    runs greedy decoding for num_beams=1; here it is a beam of width one (which, unlike greedy,
    continues past an EOS unless ``early_stopping=True``).
    """
    n_return = _check_beam_args(num_beams, length_penalty, early_stopping, num_return_sequences)
    stop = _check_stop(stop)
    p_ids = lm.prompt_ids(prompt, max_new_tokens)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1 for beam search, got {max_new_tokens}")
    snap = lm.counter.snapshot()
    B, K = num_beams, 2 * num_beams
    L0, max_len = len(p_ids), len(p_ids) + max_new_tokens
    eos_id = lm.eos_token_id if eos else None
    state = lm.prefill(p_ids, n=B)
    tree = [Node(0, None, None, 0.0, 0.0, 0)]
    # per live beam: its node, tokens and token log-probs (HF: running_sequences)
    run_nodes, run_toks, run_lps = [0] * B, [[] for _ in range(B)], [[] for _ in range(B)]
    run_scores = torch.zeros(B)
    run_scores[1:] = -1e9                       # only the first copy of the prompt is expanded
    fin_scores = torch.full((B,), -1e9)         # HF: beam_scores, best-first
    fin_done = torch.zeros(B, dtype=torch.bool)  # HF: is_sent_finished
    fin_items = [None] * B                      # (node id, tokens, logprobs, reason, length)
    improvable = True                           # HF: is_early_stop_heuristic_unsatisfied
    top_mask = torch.arange(K) < B
    cur_len, steps = L0, 0
    with tr.source("beam_search"):
        while True:
            logp = torch.log_softmax(state.logits.float(), -1)
            V = logp.shape[-1]
            if tr.active():
                for b in range(B):
                    if run_scores[b] > -1e8:
                        tr.emit("beam_expand", t=steps, node=run_nodes[b],
                                cum_logprob=float(run_scores[b]), top=_top(state.logits[b], K))
            acc = (logp + run_scores[:, None]).view(-1)
            cand_lp, cand_idx = torch.topk(acc, K)
            src = (cand_idx // V).tolist()
            toks = (cand_idx % V).tolist()
            lps = cand_lp.tolist()
            tok_lps = logp.view(-1)[cand_idx].tolist()
            ended, reasons = [], []
            for j in range(K):
                b, t = src[j], toks[j]
                if t == eos_id:
                    ended.append(True), reasons.append("eos")
                elif cur_len + 1 >= max_len:
                    ended.append(True), reasons.append("length")
                elif stop and _hit_stop(lm, run_toks[b] + [t], stop):
                    ended.append(True), reasons.append("stop")
                else:
                    ended.append(False), reasons.append(None)
            hits = torch.tensor(ended)
            # the next live beams: the best num_beams candidates that did not end
            live_lp = cand_lp + hits.to(torch.float32) * -1.0e9
            nxt = torch.topk(live_lp, B)[1].tolist()
            # the finished set: merge the candidates that just ended among the first num_beams
            just = hits & top_mask
            length = cur_len + 1 - L0
            f_lp = cand_lp / (length ** length_penalty)
            full = bool(fin_done.all()) and early_stopping is True
            f_lp += float(full) * -1.0e9
            f_lp += float(not improvable) * -1.0e9
            f_lp += (~just) * -1.0e9
            merged = torch.cat((fin_scores, f_lp))
            merged_done = torch.cat((fin_done, just))
            pick = torch.topk(merged, B)[1].tolist()
            # record the candidates in the tree
            first = len(tree)
            for j in range(K):
                b, t = src[j], toks[j]
                tree.append(Node(first + j, run_nodes[b], t, tok_lps[j], lps[j], steps + 1,
                                 "pruned"))
            new_items = []
            for i in pick:
                if i < B:
                    new_items.append(fin_items[i])
                    continue
                j = i - B
                if not just[j]:
                    new_items.append(None)
                    continue
                b, node = src[j], tree[first + j]
                node.status, node.score, node.reason = "finished", float(merged[i]), reasons[j]
                keep_tok = reasons[j] != "eos"
                new_items.append((node.id, run_toks[b] + ([toks[j]] if keep_tok else []),
                                  run_lps[b] + ([node.logprob] if keep_tok else []), reasons[j],
                                  length))
                if tr.active():
                    tr.emit("beam_finish", t=steps, node=node.id, score=node.score,
                            reason=reasons[j], cum_logprob=node.cum_logprob, length=length)
            fin_scores, fin_done, fin_items = merged[pick], merged_done[pick], new_items
            for j in nxt:
                if not ended[j]:
                    tree[first + j].status = "kept"
            if tr.active():
                tr.emit("beam_step", t=steps, nodes=list(range(first, first + K)),
                        parents=[run_nodes[b] for b in src], tokens=toks, logprobs=tok_lps,
                        cum_logprobs=lps, kept=[first + j for j in nxt if not ended[j]])
            parents = [src[j] for j in nxt]
            run_nodes = [first + j for j in nxt]
            run_toks = [run_toks[src[j]] + [toks[j]] for j in nxt]
            run_lps = [run_lps[src[j]] + [tree[first + j].logprob] for j in nxt]
            run_scores = live_lp[nxt]
            cur_len += 1
            steps += 1
            # HF's stopping rule
            if early_stopping == "never" and length_penalty > 0.0:
                best_len = max_len - L0
            else:
                best_len = cur_len - L0
            best_possible = run_scores[:1] / (best_len ** length_penalty)
            worst = torch.where(fin_done, torch.min(fin_scores), -1.0e9)
            improvable = improvable and bool(torch.any(best_possible > worst))
            if not improvable or (bool(fin_done.all()) and early_stopping is True) \
                    or all(ended):
                break
            state = state.select(parents, inplace=True)
            lm.advance(state, torch.tensor([toks[j] for j in nxt], device=lm.device))
    cost = lm.counter.since(snap)
    hyps = []
    for item, score in zip(fin_items, fin_scores.tolist()):
        if item is None or len(hyps) == n_return:
            continue
        node_id, tokens, t_lps, reason, length = item
        tree[node_id].rank = len(hyps)
        hyps.append(Hypothesis(
            text=lm.decode(tokens), token_ids=tokens, logprobs=t_lps, prompt=_text(lm, prompt),
            prompt_ids=p_ids, finish_reason=reason, score=score,
            seq_logprob=tree[node_id].cum_logprob, length=length, node=node_id))
    cost = cost + Cost(input_tokens=L0, output_tokens=cost.computed_tokens - L0, calls=1)
    params = dict(num_beams=B, length_penalty=length_penalty, early_stopping=early_stopping,
                  max_new_tokens=max_new_tokens, steps=steps)
    if tr.active():
        with tr.source("beam_search"):
            tr.emit("beam_done", returned=[h.node for h in hyps], params=params)
    return BeamSearchResult(hyps, tree, cost, _text(lm, prompt), p_ids, params)


def _text(lm, prompt):
    return prompt if isinstance(prompt, str) else lm.decode(prompt)


class SearchBudgetExceeded(RuntimeError):
    """A search ran out of its node budget before proving its answer optimal.

    ``.result`` holds the best hypothesis found so far (``optimal=False``).
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


@dataclass
class MapResult(Hypothesis):
    """`exact_map` output: the best sequence found, whether it is proven optimal, the work."""
    optimal: bool = True
    nodes_expanded: int = 0


def _truncate(state: DecodeState, keep: int) -> None:
    """Drop the tokens of a single-row state after the first ``keep`` (no forward pass; the
    state's logits are left stale)."""
    drop = len(state.ids[0]) - keep
    if drop > 0:
        state.cache.crop(-drop)
        state.mask = state.mask[:, :-drop]
        state.positions = state.positions - drop
        del state.ids[0][keep:]


def exact_map(lm: LanguageModel, prompt, max_new_tokens: int = 16, node_budget: int = 10_000,
              eos: bool = True, raise_on_budget: bool = True) -> MapResult:
    """Exact MAP decoding (eq. 7) by depth-first branch-and-bound (Stahlberg & Byrne, 2019).

    Finds argmax_y log p_theta(y | x) over the sequences that end with EOS within
    ``max_new_tokens`` tokens or reach that length.  At every node the sequence that ends there
    (the prefix + EOS) is scored first, at no cost; then the children are visited most probable
    first.  Since log-probabilities only decrease as a prefix grows, a prefix whose
    log-probability is already <= the best complete sequence is cut with its whole subtree.
    When the search finishes it has proven its answer optimal.

    ``node_budget`` caps the nodes expanded (one forward pass of one token each).  When it runs
    out first, `SearchBudgetExceeded` is raised with the best sequence so far in ``.result``
    (or, with ``raise_on_budget=False``, that result is returned with ``optimal=False``).
    Emits ``map_expand`` and ``map_finish`` (a new best sequence) events.
    """
    p_ids = lm.prompt_ids(prompt, max_new_tokens)
    validate.count("node_budget", node_budget, lo=0)
    snap = lm.counter.snapshot()
    eos_id = lm.eos_token_id if eos else None
    state = lm.prefill(p_ids)
    L0 = len(p_ids)
    best = {"lp": -math.inf, "toks": [], "lps": [], "reason": "length", "len": 0}
    count = {"expanded": 0, "out_of_budget": False}

    def record(toks, lps, total, reason, length):
        best.update(lp=total, toks=list(toks), lps=list(lps), reason=reason, len=length)
        if tr.active():
            tr.emit("map_finish", tokens=list(toks), seq_logprob=total, reason=reason)

    def visit(toks, lps, cum, logp):
        depth = len(toks) + 1                       # the length of the children
        if eos_id is not None and cum + float(logp[eos_id]) > best["lp"]:
            record(toks, lps, cum + float(logp[eos_id]), "eos", depth)   # ends here: no pass
        values, order = torch.sort(logp, descending=True)
        for v, t in zip(values.tolist(), order.tolist()):
            if t == eos_id:
                continue
            total = cum + v
            if total <= best["lp"]:
                return                              # children are sorted: all the rest too
            if depth == max_new_tokens:
                record(toks + [t], lps + [v], total, "length", depth)
                return
            if count["expanded"] >= node_budget:
                count["out_of_budget"] = True
                return
            count["expanded"] += 1
            lm.advance(state, [t])
            if tr.active():
                tr.emit("map_expand", t=len(toks), token=t, cum_logprob=total)
            visit(toks + [t], lps + [v], total, torch.log_softmax(state.logits[0].float(), -1))
            _truncate(state, L0 + len(toks))
            if count["out_of_budget"]:
                return

    with tr.source("exact_map"):
        if max_new_tokens > 0:
            visit([], [], 0.0, torch.log_softmax(state.logits[0].float(), -1))
        else:
            best["lp"] = 0.0
    cost = lm.counter.since(snap) + Cost(input_tokens=L0, output_tokens=count["expanded"],
                                         calls=1)
    res = MapResult(text=lm.decode(best["toks"]), token_ids=best["toks"], logprobs=best["lps"],
                    prompt=_text(lm, prompt), prompt_ids=p_ids, finish_reason=best["reason"],
                    cost=cost, score=best["lp"], seq_logprob=best["lp"], length=best["len"],
                    optimal=not count["out_of_budget"], nodes_expanded=count["expanded"])
    if count["out_of_budget"] and raise_on_budget:
        raise SearchBudgetExceeded(
            f"exact_map used its node_budget of {node_budget} expansions before proving the "
            f"best sequence optimal (best so far: log p = {res.seq_logprob:.4f}, "
            f"{res.text!r}); raise node_budget, lower max_new_tokens, or pass "
            "raise_on_budget=False to get this unproven result", res)
    return res
