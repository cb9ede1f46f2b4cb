"""Lexically constrained decoding (survey §3.5.2): banned words, logit bias, required words.

* `BanWords` and `logit_bias` are what inference APIs offer: adapters (logits -> logits, the
  interface of `workbench.adapters`) that forbid or discourage tokens.  `BanWords` forbids every
  tokenization of a word it knows (``"word"`` and ``" word"``): the last token of a banned
  sequence is set to -inf when the tokens before it were just generated (the semantics of
  Hugging Face's ``NoBadWordsLogitsProcessor``).
* `lexical_beam_search` *forces* words in, after NeuroLogic decoding (Lu et al., 2021): the
  constraint is a formula in conjunctive normal form, e.g. ``[["food", "foods"], ["table",
  "tables"]]`` for (food v foods) ^ (table v tables).  Beam search is modified in two places:
  candidates include, besides each beam's top tokens, the tokens that start or continue an
  unsatisfied word; and the beam is chosen bank by bank - candidates grouped by how many clauses
  they satisfy (then by partial progress), taking the best of each bank in turn, so that
  hypotheses making progress on the constraints are not crowded out by likelier ones.  EOS is
  allowed only once every clause holds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from ..budget import Budget, Cost
from ..trace import emit, source


def _tokenizer(x):
    return getattr(x, "tokenizer", x)


def word_sequences(lm_or_tokenizer, word: str) -> list:
    """The token sequences that write ``word``: on its own and after a space."""
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"words must be non-empty strings, got {word!r}")
    tok = _tokenizer(lm_or_tokenizer)
    seqs = {tuple(tok(w, add_special_tokens=False)["input_ids"]) for w in (word, " " + word)}
    return sorted(s for s in seqs if s)


class BanWords:
    """Adapter forbidding every known tokenization of some words (survey §3.5.2 ban lists).

    Call it on logits (B, V); `observe` (called by the decoding loops) records the tokens
    generated so far, so the last token of a multi-token word is banned only after its prefix.
    """

    def __init__(self, lm_or_tokenizer, words):
        if isinstance(words, str):
            words = [words]
        self.sequences = sorted({s for w in words for s in word_sequences(lm_or_tokenizer, w)})
        if not self.sequences:
            raise ValueError("words must name at least one word")
        self.history: list = []

    def banned(self, history) -> list:
        """Token ids banned after ``history`` (a list of ids)."""
        h = tuple(history)
        after = lambda s: len(s) == 1 or (len(h) >= len(s) - 1 and
                                          h[len(h) - len(s) + 1:] == s[:-1])
        return sorted({s[-1] for s in self.sequences if after(s)})

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        rows = logits.view(-1, logits.shape[-1]).clone()
        while len(self.history) < rows.shape[0]:
            self.history.append([])
        for r in range(rows.shape[0]):
            ids = self.banned(self.history[r])
            rows[r, ids] = float("-inf")
        return rows.view(logits.shape)

    def observe(self, tokens, adapted=None) -> None:
        for r, t in enumerate(torch.as_tensor(tokens).view(-1).tolist()):
            while len(self.history) <= r:
                self.history.append([])
            self.history[r].append(int(t))


def logit_bias(bias: dict):
    """Adapter adding ``bias[token_id]`` to each listed token's logit (an API's logit_bias).

    A bias of ``-inf`` bans the token; large positive values all but force it.
    """
    if not bias:
        raise ValueError("bias must map at least one token id to a number")
    ids = torch.tensor([int(k) for k in bias], dtype=torch.long)
    vals = torch.tensor([float(v) for v in bias.values()])

    def apply(logits: torch.Tensor) -> torch.Tensor:
        if int(ids.max()) >= logits.shape[-1] or int(ids.min()) < 0:
            raise ValueError(f"bias has token ids outside 0..{logits.shape[-1] - 1}")
        out = logits.clone()
        out[..., ids.to(out.device)] += vals.to(out.device, out.dtype)
        return out
    return apply


# -- required words: NeuroLogic-style constrained beam search ----------------------------------
def _check_clauses(clauses) -> list:
    if isinstance(clauses, str) or not clauses or any(isinstance(c, str) or not c
                                                      for c in clauses):
        raise ValueError("clauses must be a non-empty list of non-empty lists of words, e.g. "
                         "[['food', 'foods'], ['table', 'tables']]")
    return [[w for w in c] for c in clauses]


def satisfied(text: str, clauses) -> list:
    """For each clause, whether ``text`` contains one of its words as a whole word."""
    has = lambda w: re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", text) is not None
    return [any(has(w) for w in clause) for clause in clauses]


@dataclass
class Hypothesis:
    token_ids: list
    text: str
    logprob: float
    score: float
    satisfied: list
    finish_reason: str = "length"


@dataclass
class LexicalResult:
    """Hypotheses that satisfy every clause, best first (``text`` is the best one's)."""
    text: str
    hypotheses: list
    cost: Cost
    info: dict = field(default_factory=dict)


def lexical_beam_search(lm, prompt, clauses, num_beams: int = 4, max_new_tokens: int = 24,
                        length_penalty: float = 1.0, budget: Budget | None = None
                        ) -> LexicalResult:
    """NeuroLogic-style beam search for outputs satisfying a CNF of words (survey §3.5.2).

    Scores are log p_theta(y | x) / |y|^length_penalty.  Deterministic (no seed).  Stops when
    ``num_beams`` hypotheses have ended, at ``max_new_tokens``, or when ``budget`` (checked
    before every forward pass) cannot afford another pass; raises ValueError when no hypothesis
    satisfies every clause by then.

    The loop's phases: `_expand` (each beam's top tokens plus the tokens that start or
    continue an unsatisfied word, EOS once every clause holds), `_rank` (EOS candidates end as
    hypotheses, the rest get their bank), `_bank_select` (the beam, bank by bank), `_advance`
    (extend the beams and run the model, or stop); then `_close_live` and `_lexical_result`.
    """
    clauses = _check_clauses(clauses)
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    seqs = _clause_sequences(lm, clauses, max_new_tokens)
    ids = lm.prompt_ids(prompt, max_new_tokens)
    snap = lm.counter.snapshot()
    state = _prefill(lm, ids, budget)
    run = _Search(lm, clauses, seqs, num_beams, length_penalty)
    with source("lexical_beam_search"):
        for t in range(max_new_tokens):
            cands = _expand(run, torch.log_softmax(state.logits.float(), -1))
            chosen = _bank_select(_rank(run, cands), num_beams)
            emit("lexical_select", t=t, beams=[[b, v] for _, _, b, v, _ in chosen],
                 banks=[list(k) for k, *_ in chosen], finished=len(run.finished))
            state = _advance(run, state, chosen, t == max_new_tokens - 1, budget)
            if state is None:
                break
    _close_live(run)
    return _lexical_result(run, ids, snap, max_new_tokens, budget)


@dataclass
class _Search:
    """The state of one `lexical_beam_search`: its constraint, live beams and ended hypotheses."""
    lm: object
    clauses: list                 # the words, clause by clause
    seqs: list                    # their token sequences: seqs[clause][word] = [tuple, ...]
    num_beams: int
    length_penalty: float
    beams: list = field(default_factory=lambda: [([], 0.0)])   # (tokens, log-prob)
    finished: list = field(default_factory=list)               # ended Hypothesis objects
    steps: int = 0
    generated: int = 0
    stopped: str = "length"

    def norm(self, lp: float, n: int) -> float:
        """The score log p / |y|^length_penalty."""
        return lp / max(n, 1) ** self.length_penalty


def _clause_sequences(lm, clauses: list, max_new_tokens: int) -> list:
    """Each clause's words as token sequences; raises when some clause cannot fit in
    ``max_new_tokens``."""
    seqs = [[word_sequences(lm, w) for w in c] for c in clauses]
    need = max(min(len(s) for w in c for s in w) for c in seqs)
    if need > max_new_tokens:
        raise ValueError(f"the clauses need at least {need} tokens, max_new_tokens="
                         f"{max_new_tokens}")
    return seqs


def _prefill(lm, ids: list, budget):
    """Read the prompt (one forward pass, charged to ``budget``); raises when it can't pay."""
    prefill_cost = Cost(forward_passes=1, computed_tokens=len(ids))
    if budget is not None and not budget.affords(prefill_cost):
        raise ValueError(f"budget {budget.limits} cannot afford reading the prompt "
                         f"({len(ids)} tokens)")
    state = lm.prefill([ids])
    if budget is not None:
        budget.charge(prefill_cost)
    return state


def _expand(run: _Search, logp: torch.Tensor) -> dict:
    """The candidates {(beam, token): log-prob}: each beam's ``num_beams`` likeliest tokens,
    plus the next token of every word of a clause it does not satisfy yet; EOS only once the
    beam satisfies every clause."""
    lm, cands = run.lm, {}
    for b, (toks, lp) in enumerate(run.beams):
        done = satisfied(lm.decode(toks), run.clauses)
        pool = set(logp[b].topk(run.num_beams).indices.tolist())
        for ok, clause in zip(done, run.seqs):
            if not ok:
                pool |= {s[_progress(toks, s)] for word in clause for s in word}
        pool.discard(lm.eos_token_id)
        if all(done):                 # ending is a candidate once every clause holds
            pool.add(lm.eos_token_id)
        for v in pool:
            cands[(b, v)] = lp + float(logp[b, v])
    return cands


def _rank(run: _Search, cands: dict) -> list:
    """End the EOS candidates as hypotheses (into ``run.finished``); give each other candidate
    its bank key (clauses satisfied, longest partial word of an unsatisfied clause) and score:
    a list of (bank, score, beam, token, log-prob) for `_bank_select`."""
    lm, ranked = run.lm, []
    for (b, v), lp in cands.items():
        toks = run.beams[b][0] + ([] if v == lm.eos_token_id else [v])
        text = lm.decode(toks)
        sat = satisfied(text, run.clauses)
        if v == lm.eos_token_id:
            run.finished.append(Hypothesis(toks, text, lp, run.norm(lp, len(toks)), sat, "eos"))
            continue
        prog = max((_progress(toks, s) for c, ok in zip(run.seqs, sat) if not ok
                    for w in c for s in w), default=0)
        ranked.append(((sum(sat), prog), run.norm(lp, len(toks)), b, v, lp))
    return ranked


def _advance(run: _Search, state, chosen: list, last: bool, budget):
    """Count the step and extend the beams by the chosen tokens, then run the model on them
    (one forward pass, charged to ``budget``).  None when the search stops here: enough
    hypotheses ended (or nothing was chosen), the ``last`` step, or no budget for the pass."""
    run.steps += 1
    if len(run.finished) >= run.num_beams or not chosen:
        run.stopped = "finished"
        return None
    run.generated += len(chosen)
    run.beams = [(run.beams[b][0] + [v], lp) for _, _, b, v, lp in chosen]
    if last:
        return None
    step_cost = Cost(forward_passes=1, computed_tokens=len(chosen))
    if budget is not None and not budget.affords(step_cost):
        run.stopped = "budget"
        return None
    state = state.select([b for _, _, b, _, _ in chosen], inplace=True)
    run.lm.advance(state, [v for _, _, _, v, _ in chosen])
    if budget is not None:
        budget.charge(step_cost)
    return state


def _close_live(run: _Search) -> None:
    """Unless the search stopped on enough ended hypotheses, the live beams end too (at length
    or budget) and join ``run.finished``."""
    for toks, lp in (run.beams if run.stopped != "finished" else []):
        text = run.lm.decode(toks)
        run.finished.append(Hypothesis(toks, text, lp, run.norm(lp, len(toks)),
                                       satisfied(text, run.clauses)))


def _lexical_result(run: _Search, ids: list, snap, max_new_tokens: int, budget
                    ) -> LexicalResult:
    """The ended hypotheses satisfying every clause, best score first, and the bill; raises
    (naming the closest hypothesis) when none does."""
    good = sorted((h for h in run.finished if all(h.satisfied)), key=lambda h: -h.score)
    cost = run.lm.counter.since(snap) + Cost(input_tokens=len(ids), output_tokens=run.generated,
                                             calls=1)
    if not good:
        best = max(run.finished, key=lambda h: (sum(h.satisfied), h.score))
        raise ValueError(f"no hypothesis satisfied all {len(run.clauses)} clauses within "
                         f"{run.steps} steps (max_new_tokens={max_new_tokens}, budget={budget}); "
                         f"best: {best.text!r} satisfies {best.satisfied}")
    return LexicalResult(good[0].text, good, cost,
                         {"steps": run.steps, "clauses": run.clauses, "stopped": run.stopped})


def _progress(tokens: list, seq: tuple) -> int:
    """How many leading tokens of ``seq`` the hypothesis ends with (0..len(seq)-1)."""
    for j in range(min(len(seq) - 1, len(tokens)), 0, -1):
        if tuple(tokens[-j:]) == seq[:j]:
            return j
    return 0


def _bank_select(ranked: list, k: int) -> list:
    """Round-robin over banks (most satisfied clauses, then most progress, first)."""
    banks: dict = {}
    for item in sorted(ranked, key=lambda r: -r[1]):
        banks.setdefault(item[0], []).append(item)
    order = sorted(banks, reverse=True)
    chosen = []
    while len(chosen) < k and any(banks[o] for o in order):
        for o in order:
            if banks[o] and len(chosen) < k:
                chosen.append(banks[o].pop(0))
    return chosen
