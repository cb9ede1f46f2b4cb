"""Lookahead decoding: greedy decoding with fewer sequential steps, no draft model (survey §7.2,
"Parallelization across time"; Fu et al. 2024, "Break the Sequential Dependency of LLM
Inference Using Lookahead Decoding").

Each step runs two branches from the same committed prefix: a *lookahead* branch that does one
Jacobi iteration on a window of guessed future tokens and collects n-grams from the guesses'
trajectory into a pool, and a *verification* branch that checks the pool's n-grams that start
with the last committed token, keeping the longest prefix that greedy decoding would produce.
"""
from __future__ import annotations

import random
import time

import torch

from .. import validate
from ..decoding import Generation
from ..models import DecodeState, LanguageModel
from ..trace import active, emit
from ..trace import source as tagged
from .kv import _seconds
from .speculative import greedy_verify_step


def lookahead_decoding(lm: LanguageModel, prompt, window: int = 4, ngram: int = 3,
                       max_candidates: int = 4, max_new_tokens: int = 128,
                       stop_at_eos: bool = True) -> Generation:
    """Greedy decoding (eq. 8) that can commit several tokens per sequential step (Fu et al.
    2024).  The tokens are exactly those of ``decoding.greedy(lm, prompt, max_new_tokens)``.

    Let y_1..y_t be the committed tokens (prompt and output), y_t the last one.

    - **Lookahead branch (Jacobi iteration).**  A window of W guesses g_{t+1..t+W} for the next
      positions is fed after y_t; one pass gives, at every position i, the fixed-point update

          y_i^{(j+1)} = argmax_v p_θ(v | y_<i^{(j)}, x),

      with y_<i^{(j)} the committed prefix followed by the current guesses.  The first update
      is exact (it is the greedy next token); iterating converges to the greedy continuation.
    - **n-gram pool.**  Each update y_i^{(j+1)} was predicted right after y_{i-1}^{(j)}, so the
      diagonals of the trajectory, (y_{i-n+1}^{(j-n+2)}, ..., y_{i-1}^{(j)}, y_i^{(j+1)}), are
      n-grams the model strings together; they go into a pool keyed by their first token (the
      last n-2 levels of the trajectory are kept for this).
    - **Verification.**  Up to ``max_candidates`` pooled n-grams whose first token is y_t (most
      recent first) are fed after y_t; with c the candidate's other n-1 tokens and
      o_k = argmax p_θ(. | y_≤t, c_≤k), the longest prefix with c_{k+1} = o_k is accepted and
      o_a (the bonus token) added: 1 to n tokens per step, each the greedy choice
      (`greedy_verify_step`, as in greedy speculative decoding).
    - The window moves to the new end: the updates for positions not committed stay as guesses,
      the rest is refilled with tokens drawn from the prompt (a fixed seed), as the paper
      initialises it.

    Simplified for reading, not for speed: the paper runs both branches, and n-1 levels of the
    window, in one forward pass with a special attention mask.  Here each step is one ordinary
    batched pass of 1 + (number of candidates) rows, ``[y_t] + window`` and ``[y_t] + c`` (right
    padded: a causal model never reads the padding), each on a copy of the prefix's KV cache;
    the row that won is kept and cropped to the committed tokens.  So a step is one forward
    pass, and ``info["steps"]`` counts every sequential target pass, the prompt's included
    (greedy decoding takes one per token); computed tokens count every row and padding.

    ``info``: ``steps``, ``accepted_per_step`` (tokens each step added to the output; the first
    step is the prompt's pass), ``tokens_per_step`` (output tokens / steps), ``pool_size``
    (n-grams in the pool at the end), ``forward_passes``, ``computed_tokens``, ``seconds`` and
    the parameters.  ``stop_at_eos=False`` ignores the end-of-sequence token.
    """
    window = validate.count("window", window)
    ngram = validate.count("ngram", ngram, lo=2)
    max_candidates = validate.count("max_candidates", max_candidates, lo=0)
    max_new_tokens = validate.count("max_new_tokens", max_new_tokens, lo=0)
    ids = lm.prompt_ids(prompt, max_new_tokens)
    eos = lm.eos_token_id if stop_at_eos else None
    snap, start = lm.counter.snapshot(), time.perf_counter()
    run = _Run(lm, ids, window, ngram, max_candidates, max_new_tokens, eos)
    with tagged("lookahead"):
        run.first_token()
        while len(run.out) < max_new_tokens and run.finish == "length":
            run.step()
    cost = lm.counter.since(snap)
    steps = len(run.accepted)
    info = {"steps": steps, "accepted_per_step": run.accepted,
            "tokens_per_step": len(run.out) / steps if steps else 0.0,
            "pool_size": sum(len(v) for v in run.pool.values()),
            "forward_passes": cost.forward_passes, "computed_tokens": cost.computed_tokens,
            "seconds": _seconds(start, lm.device), "window": window, "ngram": ngram,
            "max_candidates": max_candidates}
    return Generation.of(lm, prompt, ids, run.out, run.logprobs, run.finish, spent=cost,
                         info=info, end_logprob=run.end_logprob,
                         proposal_logprobs=[0.0] * len(run.out),    # greedy: deterministic
                         end_proposal_logprob=0.0 if run.finish == "eos" else None)


class _Run:
    """The state of one lookahead decoding run, advanced one step at a time.

    ``state`` holds the KV cache of every committed token but the last (``last``), which the
    next step feeds first.
    """

    def __init__(self, lm, ids, window, ngram, max_candidates, max_new_tokens, eos):
        self.lm, self.W, self.n, self.G = lm, window, ngram, max_candidates
        self.budget, self.eos = max_new_tokens, eos
        self.prompt, self.out, self.logprobs = list(ids), [], []
        self.finish, self.accepted, self.end_logprob = "length", [], None
        self.pool: dict = {}      # first token -> list of (n-1)-token continuations, newest first
        self.levels: list = []    # the trajectory's last n-2 inputs, each {position: token}
        self.filler = random.Random(0)
        self.guesses = [self._fill() for _ in range(window)]

    @property
    def t(self) -> int:
        """Number of committed tokens (prompt and output)."""
        return len(self.prompt) + len(self.out)

    def _fill(self) -> int:
        return self.filler.choice(self.prompt)

    def first_token(self) -> None:
        """Step 0: the prompt's pass, whose last logits give the first greedy token."""
        self.state = self.lm.prefill(self.prompt)
        logits = self.state.logits
        self.last = int(logits[0].argmax())
        self._commit([self.last], logits)

    def step(self) -> None:
        """One sequential step: a batched pass of the lookahead row and the candidates' rows,
        the longest verified candidate prefix and its bonus token committed, the pool and the
        window updated."""
        t, last = self.t, self.last   # y_t sits at position t - 1 (positions 0-based)
        candidates = [list(c) for c in self.pool.get(last, [])[:self.G]]
        rows = [self.guesses] + candidates
        logits, batch = _feed_rows(self.lm, self.state, last, rows)
        updates = logits[0, :self.W + 1].argmax(-1).tolist()   # updates for t..t+W
        self._collect(t, [last] + self.guesses, updates)
        row, verdict = _verify(logits, candidates)
        n_acc = verdict.n_accepted
        self.state = batch.select([row], inplace=True).crop(   # keep y_t and the accepted
            logits.shape[1] - 1 - n_acc, logits[row, n_acc:n_acc + 1])
        self.last = verdict.next_token
        added = self._commit(verdict.tokens, logits[row])
        self.guesses = self._next_window(t, updates)
        if active():
            emit("lookahead_step", step=len(self.accepted) - 1, window=rows[0],
                 candidates=candidates, accepted=n_acc, tokens=verdict.tokens[:added],
                 pool_size=sum(len(v) for v in self.pool.values()))

    def _commit(self, tokens, logits) -> int:
        """Append tokens (with their log-probabilities from ``logits`` (k, V), row k predicting
        token k) until EOS or the budget; record the step; return how many were added."""
        lps = torch.log_softmax(logits[:len(tokens)].float(), -1)
        added = 0
        for k, tok in enumerate(tokens):
            if len(self.out) >= self.budget:
                break
            if tok == self.eos:
                self.finish, self.end_logprob = "eos", float(lps[k, tok])
                break
            self.out.append(tok)
            self.logprobs.append(float(lps[k, tok]))
            added += 1
        self.accepted.append(added)
        return added

    def _collect(self, t, inputs, outputs) -> None:
        """Add the trajectory's diagonal n-grams ending in this pass's updates to the pool.

        ``inputs[k]`` sat at position t - 1 + k and ``outputs[k]`` is the update for position
        t + k.  The n-gram ending at position p takes position p - n + 1 from the oldest kept
        level, one position further from each newer level, p - 1 from this pass's inputs and
        p from its output."""
        level = {t - 1 + k: tok for k, tok in enumerate(inputs)}
        levels = self.levels + [level]
        for k, tok in enumerate(outputs):
            p = t + k
            path = [lv.get(p - len(levels) + i) for i, lv in enumerate(levels)]
            if len(levels) == self.n - 1 and None not in path:
                _remember(self.pool, path + [tok])
        self.levels = levels[-(self.n - 2):] if self.n > 2 else []

    def _next_window(self, t, outputs) -> list:
        """The Jacobi updates for the positions still uncommitted, refilled to W guesses."""
        guesses = [tok for k, tok in enumerate(outputs) if t + k >= self.t][:self.W]
        return guesses + [self._fill() for _ in range(self.W - len(guesses))]


def _feed_rows(lm: LanguageModel, state: DecodeState, last: int, rows: list):
    """One forward pass of the rows ``[last] + row`` after the single-row ``state``, each on its
    own copy of its cache (``state`` is used up).  Rows are right-padded to one length: a causal
    model never reads the padding.  Returns the logits (B, T, V) and the batch's state."""
    T = 1 + max(len(r) for r in rows)
    tokens = [[last] + r + [last] * (T - 1 - len(r)) for r in rows]
    batch = state.select([0] * len(rows), inplace=True)
    tok = torch.tensor(tokens, device=lm.device)
    pos = (state.positions.view(1, 1) + torch.arange(T, device=lm.device)).expand(len(rows), T)
    logits, batch.cache = lm.forward(tok, None, pos, batch.cache)
    batch.mask = torch.cat([batch.mask, torch.ones_like(tok)], dim=1)
    batch.positions = batch.positions + T
    for ids, row in zip(batch.ids, tokens):
        ids.extend(row)
    return logits, batch


def _verify(logits, candidates):
    """The candidate row (1-based; 0 is the lookahead row) with the longest verified prefix,
    and its `greedy_verify_step`; without candidates, the lookahead row's next token."""
    best_row, best = 0, greedy_verify_step(logits[0, :1], [])
    for r, cand in enumerate(candidates, start=1):
        verdict = greedy_verify_step(logits[r, :len(cand) + 1], cand)
        if verdict.n_accepted > best.n_accepted:
            best_row, best = r, verdict
    return best_row, best


def _remember(pool: dict, gram: list) -> None:
    """Put an n-gram in the pool under its first token, as the newest of its key."""
    key, cont = gram[0], tuple(gram[1:])
    conts = pool.setdefault(key, [])
    if cont in conts:
        conts.remove(cont)
    conts.insert(0, cont)
