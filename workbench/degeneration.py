"""Decoding rules against the degeneration of MAP outputs (survey §3.1, "pitfalls of MAP
decoding"): greedy decoding and beam search fall into repetition loops, and the K beams of beam
search tend to be near-copies of one another.

- `contrastive_search` (Su et al., 2022): a greedy-like rule that trades the model's confidence
  for a penalty on hidden states too similar to the context's, which breaks loops;
- `diverse_beam_search` (Vijayakumar et al., 2018): beam search in groups, each group penalised
  for the tokens that earlier groups chose at the same step, so the groups part ways.

Both are token-level generators like those of `workbench.decoding`, which this module builds on
(and which never imports it back).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import trace as tr, validate
from .budget import Cost
from .decoding import (Generation, Node, _Beams, _beam_result, _can_improve,
                       _check_beam_args, _check_stop, _end_reason, _Finished, _merge_finished,
                       _next_live_beams, _record_step, _top_k_continuations)
from .models import LanguageModel


# -- contrastive search -------------------------------------------------------------------------
@dataclass
class _Context:
    """Contrastive search's running state: the next-token logits, the KV cache of the one
    sequence, and the last-layer hidden states h_j of every token so far (prompt included)."""
    logits: torch.Tensor
    cache: object
    hidden: torch.Tensor


def contrastive_search(lm: LanguageModel, prompt, top_k: int = 4, alpha: float = 0.6,
                       max_new_tokens: int = 64, eos: bool = True) -> Generation:
    """Contrastive search (Su et al., 2022, eq. 5; not contrastive *decoding*):

        y_t = argmax_{v in V^(k)}  (1 - alpha) * p_theta(v | y_<t, x)
                                   - alpha * max_{j < t} cos(h_v, h_j)

    V^(k) holds the ``top_k`` most probable next tokens; h_v is the model's last hidden state
    after the candidate v, h_j that of each earlier token (the prompt's included).  The second
    term, the *degeneration penalty*, is large for a token that would put the model back where
    it already was: the start of a loop.  alpha = 0, or top_k = 1, is greedy decoding (eq. 8).

    Each step feeds the k candidates as k rows of one forward pass on the shared KV cache
    (``lm.forward(..., hidden=True)``), keeps the chosen row's cache and drops the others.
    Emits one ``contrastive_step`` event per step; returns a `decoding.Generation` (logprobs
    under p_theta; a deterministic search, so its proposal log-probability is 0).
    """
    validate.count("top_k", top_k)
    alpha = validate.number("alpha", alpha, 0.0, 1.0)
    p_ids = lm.prompt_ids(prompt, max_new_tokens)
    eos_id = lm.eos_token_id if eos else None
    snap = lm.counter.snapshot()
    logits, cache, hidden = lm.forward([p_ids], hidden=True)
    ctx = _Context(logits[0, -1], cache, hidden[0])
    tokens, lps, reason, end_lp = [], [], "length", None
    with tr.source("contrastive_search"):
        for t in range(max_new_tokens):
            token, lp = _contrastive_step(lm, ctx, top_k, alpha, t)
            if token == eos_id:
                reason, end_lp = "eos", lp
                break
            tokens.append(token)
            lps.append(lp)
    return Generation.of(lm, prompt, p_ids, tokens, lps, reason, spent=lm.counter.since(snap),
                         info={"top_k": top_k, "alpha": alpha}, end_logprob=end_lp,
                         proposal_logprobs=[0.0] * len(tokens),   # deterministic
                         end_proposal_logprob=0.0 if reason == "eos" else None)


def degeneration_penalty(candidates: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """max_j cos(h_v, h_j) for each candidate's hidden state h_v (k, d) against the context's
    hidden states h_j (n, d): shape (k,)."""
    cos = torch.nn.functional.normalize(candidates, dim=-1) @ \
        torch.nn.functional.normalize(context, dim=-1).T
    return cos.max(-1).values


def _contrastive_step(lm, ctx: _Context, top_k, alpha, t):
    """Score the top-k candidates, feed them in one pass, keep the winner's row."""
    logp = torch.log_softmax(ctx.logits.float(), -1)
    probs, cand = logp.exp().topk(min(top_k, logp.shape[-1]))
    ctx.cache.reorder_cache(torch.zeros(len(cand), dtype=torch.long, device=cand.device))
    logits, ctx.cache, hidden = lm.forward(cand.view(-1, 1), cache=ctx.cache, hidden=True)
    penalty = degeneration_penalty(hidden[:, -1], ctx.hidden)
    score = (1 - alpha) * probs - alpha * penalty
    best = int(score.argmax())
    ctx.cache.reorder_cache(torch.tensor([best], device=cand.device))
    ctx.logits = logits[best, -1]
    ctx.hidden = torch.cat([ctx.hidden, hidden[best, -1:]])
    if tr.active():
        tr.emit("contrastive_step", t=t, candidates=cand.tolist(), probs=probs.tolist(),
                penalties=penalty.tolist(), token=int(cand[best]))
    return int(cand[best]), float(logp[cand[best]])


# -- diverse beam search ------------------------------------------------------------------------
@dataclass
class _Group:
    """One group of diverse beam search: its beams, finished set and tree, and the rows of the
    shared decoding state its beams occupy."""
    run: _Beams
    fin: _Finished
    tree: list
    rows: list
    live: bool = True

    @classmethod
    def start(cls, size, first_row):
        return cls(_Beams.start(size), _Finished.empty(size),
                   [Node(0, None, None, 0.0, 0.0, 0)], list(range(first_row, first_row + size)))


@dataclass
class DiverseBeamResult:
    """Diverse beam search output: one `decoding.BeamSearchResult` per group, in the order the
    groups were decoded.  ``hypotheses`` holds each group's best; the result behaves like the
    best-scoring of them for ``.text``, ``.token_ids``, ``.score``.  The shared cost is booked
    on the first group (``.cost`` is the whole search's)."""
    groups: list
    cost: Cost
    params: dict = field(default_factory=dict)

    @property
    def hypotheses(self) -> list:
        return [g.best for g in self.groups]

    @property
    def best(self):
        return max(self.hypotheses, key=lambda h: h.score)

    text = property(lambda self: self.best.text)
    token_ids = property(lambda self: self.best.token_ids)
    score = property(lambda self: self.best.score)

    def __repr__(self):
        return (f"DiverseBeamResult({len(self.groups)} groups, "
                f"texts={[h.text for h in self.hypotheses]!r})")


def diverse_beam_search(lm: LanguageModel, prompt, num_beams: int = 4, num_groups: int = 2,
                        diversity_penalty: float = 1.0, length_penalty: float = 1.0,
                        early_stopping=False, max_new_tokens: int = 32, stop=None,
                        eos: bool = True) -> DiverseBeamResult:
    """Diverse beam search (Vijayakumar et al., 2018) with Hamming diversity.

    The ``num_beams`` beams are split into G = ``num_groups`` groups of B' = num_beams / G.  At
    every step the groups are decoded in turn; group g ranks the extensions y_<t o v of its
    beams by

        Theta(y_<t o v) - lambda * sum_{h < g} [count of v among group h's tokens at step t]

    (lambda = ``diversity_penalty``), where Theta is the group's running score: the beam's
    log p_theta plus the penalties it paid at earlier steps (as in the paper's code and Hugging
    Face's).  Apart from the penalty, each group is a `decoding.beam_search` of width B' (the
    same phases: 2B' candidates, finished set, length penalty, stopping rule), so one group, or
    lambda = 0, is plain beam search.  All groups share one forward pass per step.

    The hypotheses' ``seq_logprob`` is their true log p_theta(y | x) (EOS included); ``score``
    and the trees' ``cum_logprob`` are the penalised objective the search ranked by.  Emits one
    ``diverse_step`` event per group and step (the groups' own ``beam_*`` events are muted:
    their node ids would collide).
    """
    _check_beam_args(num_beams, length_penalty, early_stopping, None)
    validate.count("num_groups", num_groups)
    if num_beams % num_groups:
        raise ValueError(f"num_groups must divide num_beams={num_beams}, got {num_groups}")
    lam = validate.number("diversity_penalty", diversity_penalty, lo=0.0)
    validate.count("max_new_tokens", max_new_tokens)
    stop, p_ids = _check_stop(stop), lm.prompt_ids(prompt, max_new_tokens)
    size, snap = num_beams // num_groups, lm.counter.snapshot()
    groups = [_Group.start(size, g * size) for g in range(num_groups)]
    state = lm.prefill(p_ids, n=num_beams)
    rules = dict(ends=dict(eos_id=lm.eos_token_id if eos else None,
                           max_len=len(p_ids) + max_new_tokens, stop=stop),
                 length_penalty=length_penalty, early_stopping=early_stopping,
                 max_new_tokens=max_new_tokens, prompt_len=len(p_ids))
    with tr.source("diverse_beam_search"):
        for t in range(max_new_tokens):
            rows, tokens = _diverse_step(lm, state.logits, groups, t, lam, **rules)
            if not rows:
                break
            state = state.select(rows, inplace=True)
            lm.advance(state, torch.tensor(tokens, device=lm.device))
    params = dict(num_beams=num_beams, num_groups=num_groups, diversity_penalty=lam,
                  length_penalty=length_penalty, early_stopping=early_stopping,
                  max_new_tokens=max_new_tokens)
    return _diverse_result(lm, prompt, p_ids, groups, snap, params, lam)


def _diverse_step(lm, logits, groups, t, lam, ends, length_penalty, early_stopping,
                  max_new_tokens, prompt_len):
    """Decode the live groups in turn; each is penalised by the tokens the earlier groups
    chose at this step.  Returns the state rows to continue and their next tokens."""
    counts = torch.zeros(logits.shape[-1])
    rows, tokens = [], []
    for g, grp in enumerate(groups):
        if not grp.live:
            continue
        with tr.instrumentation(False):     # beam_* events of several trees would collide
            cand = _top_k_continuations(logits[grp.rows].cpu(), grp.run, grp.tree, t,
                                        penalty=lam * counts)
        cand.reasons = [_end_reason(lm, grp.run.toks[b], v, prompt_len + t, **ends)
                        for b, v in zip(cand.src, cand.toks)]
        nxt = _next_live_beams(cand, len(grp.rows))
        with tr.instrumentation(False):     # beam_* events of several trees would collide
            grp.fin = _merge_finished(grp.fin, cand, grp.tree, grp.run, t, length_penalty,
                                      early_stopping)
            _record_step(cand, grp.tree, nxt)
        chosen = [cand.toks[j] for j in nxt]
        if tr.active():
            tr.emit("diverse_step", t=t, group=g, tokens=chosen,
                    penalties=[float(lam * counts[v]) for v in chosen],
                    scores=[float(cand.live_lp[j]) for j in nxt])
        counts += torch.bincount(torch.tensor(chosen), minlength=len(counts)).float()
        src_rows = [grp.rows[cand.src[j]] for j in nxt]
        grp.run = grp.run.advance(cand, nxt)
        grp.fin.improvable = grp.fin.improvable and _can_improve(
            grp.fin, grp.run, t + 1 if early_stopping != "never" or length_penalty <= 0.0
            else max_new_tokens, length_penalty)
        grp.live = grp.fin.improvable and not (bool(grp.fin.done.all()) and early_stopping is
                                               True) and any(r is None for r in cand.reasons)
        if grp.live:
            grp.rows = list(range(len(rows), len(rows) + len(nxt)))
            rows, tokens = rows + src_rows, tokens + chosen
    return rows, tokens


def _diverse_result(lm, prompt, p_ids, groups, snap, params, lam) -> DiverseBeamResult:
    """One BeamSearchResult per group (the cost on the first), true seq_logprobs."""
    results = []
    with tr.instrumentation(False):
        for g, grp in enumerate(groups):
            res = _beam_result(lm, prompt, p_ids, grp.tree, grp.fin, len(grp.fin.items), snap,
                               params)
            for h in res.hypotheses if g > 0 and lam > 0 else ():   # the penalised groups
                h.seq_logprob = h.logprob       # the tokens' and EOS's true log-probabilities
            res.cost = res.cost if g == 0 else Cost()
            results.append(res)
    return DiverseBeamResult(results, results[0].cost, params)


__all__ = ["contrastive_search", "degeneration_penalty", "diverse_beam_search",
           "DiverseBeamResult"]
