"""Token-level generators (survey §3): greedy, ancestral sampling with adapters, beam search,
exact MAP search.

Greedy decoding and sampling run one loop, `decode`: at every step the model gives logits
s_theta(. | y_<t, x), an optional chain of *adapters* q_t (eq. 13, Table 2) reshapes them, and a
*chooser* picks the next token (argmax for greedy, eq. 8; a draw from softmax(q_t(s_theta)) for
sampling, eqs. 12-13).  The loop uses the KV cache, stops at EOS, at ``max_new_tokens`` or at a
stop string, emits a ``step`` event per token, and returns `Generation` results: the text, the
tokens, their log-probabilities under p_theta and under the proposal g sampled, and the cost.

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
    """One generated continuation.

    Two sequence probabilities, both counting the end-of-sequence token when the output ended on
    it: ``logprob`` is log p_theta(y | x), the model's own (before any adapter), and
    ``proposal_logprob`` is log g(y | x) under the distribution the loop actually drew from (the
    adapters' q_t; 0 for greedy decoding, which is deterministic; None when the producer
    cannot know it, e.g. a server).  Rejection sampling and importance resampling need
    g; reranking by the model's belief needs p_theta.
    """
    text: str                 # the continuation's text (prompt excluded)
    token_ids: list           # its tokens
    logprobs: list            # log p_theta(y_t | y_<t, x) of each token, before any adapter
    prompt: str = ""
    prompt_ids: list = field(default_factory=list)
    finish_reason: str = "length"   # "eos", "stop" or "length"
    cost: Cost = field(default_factory=Cost)
    info: dict = field(default_factory=dict)
    end_logprob: float | None = None        # log p_theta(EOS | y, x) when it ended on EOS
    proposal_logprobs: list | None = None   # log g(y_t | y_<t, x) of each token (adapted)
    end_proposal_logprob: float | None = None   # log g(EOS | y, x) when it ended on EOS

    @property
    def logprob(self) -> float:
        """log p_theta(y | x): the tokens' log-probabilities, plus log p_theta(EOS | y, x) when
        the output ended on the end-of-sequence token."""
        return float(sum(self.logprobs)) + (self.end_logprob or 0.0)

    @property
    def proposal_logprob(self) -> float | None:
        """log g(y | x) under the adapted distribution actually sampled (EOS counted as in
        ``logprob``), or None when the producer did not record it."""
        if self.proposal_logprobs is None:
            return None
        return float(sum(self.proposal_logprobs)) + (self.end_proposal_logprob or 0.0)

    score = logprob

    @classmethod
    def of(cls, lm, prompt, prompt_ids, tokens, logprobs, finish_reason="length", spent=None,
           external_tokens=0, text=None, info=None, end_logprob=None, proposal_logprobs=None,
           end_proposal_logprob=None):
        """The one constructor of the token loops: the text decoded from ``tokens``, the
        prompt's text, and the bill of one call (Table 5: the prompt's input tokens, the
        generated output tokens, tool results as ``external_tokens``) plus what the models
        ``spent`` (forward passes, computed tokens).  An output that ended on EOS must bring
        ``end_logprob``, so that ``logprob`` is the whole sequence's."""
        if finish_reason == "eos" and end_logprob is None:
            raise ValueError("end_logprob is needed when finish_reason is 'eos'")
        bill = Cost(input_tokens=len(prompt_ids), output_tokens=len(tokens) - external_tokens,
                    external_tokens=external_tokens, calls=1)
        return cls(text=lm.decode(tokens) if text is None else text, token_ids=tokens,
                   logprobs=logprobs, prompt=prompt if isinstance(prompt, str) else
                   lm.decode(prompt_ids), prompt_ids=prompt_ids, finish_reason=finish_reason,
                   cost=bill + spent if spent is not None else bill, info=info or {},
                   end_logprob=end_logprob, proposal_logprobs=proposal_logprobs,
                   end_proposal_logprob=end_proposal_logprob)

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


def _chosen_proposal_logp(chooser, adapted, tok) -> list:
    """log g(y_t | y_<t, x) of each row's token ``tok`` under the distribution ``chooser`` draws
    from given the adapted logits: their softmax for sampling, a point mass (log g = 0 on the
    argmax) for greedy, None for other choosers."""
    if chooser is choose_sample:
        return torch.log_softmax(adapted.float(), -1).gather(1, tok.view(-1, 1)).view(-1).tolist()
    if chooser is choose_greedy:
        return [0.0] * len(tok)
    return [None] * len(tok)


class _Rows:
    """What the token loop has produced for each row: tokens, log p_theta, log g, the end."""

    def __init__(self, B):
        self.tokens, self.lps, self.glps = ([[] for _ in range(B)] for _ in range(3))
        self.end_lp, self.end_glp = [None] * B, [None] * B
        self.reasons, self.done = ["length"] * B, [False] * B

    def record(self, lm, toks, lps, glps, eos_id, stop) -> None:
        for r, ti in enumerate(toks):
            if self.done[r]:
                continue
            if ti == eos_id:
                self.reasons[r], self.done[r] = "eos", True
                self.end_lp[r], self.end_glp[r] = lps[r], glps[r]
                continue
            self.tokens[r].append(ti)
            self.lps[r].append(lps[r])
            self.glps[r].append(glps[r])
            if stop and _hit_stop(lm, self.tokens[r], stop):
                self.reasons[r], self.done[r] = "stop", True


class _Pending:
    """Forced tokens not fed to the model yet (a single-row state): a run of them is fed in one
    pass when the model is next needed, which also gives their log-probabilities."""

    def __init__(self):
        self.tokens, self.start = [], 0

    def add(self, token, index) -> None:
        if not self.tokens:
            self.start = index
        self.tokens.append(token)

    def feed(self, lm, state, rows) -> None:
        """One pass over the run; fills the log-probabilities of the tokens after each."""
        if not self.tokens:
            return
        lp = torch.log_softmax(lm.extend(state, self.tokens).float(), -1)
        lps, out = rows.lps[0], rows.tokens[0]
        for j in range(len(self.tokens)):
            k = self.start + j + 1
            if k < len(lps) and lps[k] is None:
                lps[k] = float(lp[j, out[k]])
        if len(self.tokens) > 1:
            tr.emit("fast_forward", t=self.start, tokens=list(self.tokens),
                    passes_saved=len(self.tokens) - 1)
        self.tokens = []


def _forced(forcers, rows, B) -> int | None:
    """The token every adapter's ``forced()`` says comes next on a single live row, or None."""
    if B != 1 or rows.done[0] or not forcers:
        return None
    said = {a.forced() for a in forcers} - {None}
    return said.pop() if len(said) == 1 else None


def decode(lm: LanguageModel, state: DecodeState, chooser, max_new_tokens: int = 128,
           adapters=None, stop=None, generator=None, prompts=None, source="decode",
           trace_top: int = 10, eos: bool = True, fast_forward: bool = True) -> list:
    """Run the token loop on every row of ``state``; returns one `Generation` per row, with the
    log-probabilities of its tokens under p_theta and under the proposal g actually sampled.

    Adapters reshape the logits in order (logits -> logits).  A stateful adapter may also
    define ``observe(tokens, adapted)`` (told each step's chosen tokens and the distribution
    they were drawn from; None for a forced token), ``trace_fields(row)`` (fields it adds to
    that row's ``step`` event), ``spent()`` (the `Cost` of the models it ran, added to the bill)
    and ``forced()`` (the one token it allows next, or None).  With ``fast_forward`` a forced
    token on a single-row state is appended without asking the model, and a run of them is fed
    in one pass (`constraints.generate`); `control.lockstep` runs its models as an adapter."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    stop = _check_stop(stop)
    snap = lm.counter.snapshot()
    B = state.batch_size
    prompt_lens = [len(r) for r in state.ids]
    rows, pending = _Rows(B), _Pending()
    adapters = _adapter_list(adapters)
    observers = [a for a in adapters if hasattr(a, "observe")]
    reporters = [a for a in adapters if hasattr(a, "trace_fields")]
    forcers = [a for a in adapters if hasattr(a, "forced")] if fast_forward else []
    eos_id = lm.eos_token_id if eos else None
    known_g = chooser is choose_sample or chooser is choose_greedy
    with tr.source(source):
        nxt = _forced(forcers, rows, B)
        for t in range(max_new_tokens):
            if nxt is not None:         # -- a forced token: no model pass of its own
                if nxt == eos_id:
                    pending.feed(lm, state, rows)
                tok = torch.tensor([nxt], device=state.logits.device)
                lp = [None if pending.tokens else
                      float(torch.log_softmax(state.logits[0].float(), -1)[nxt])]
                glp = [0.0]                          # a point mass
                for a in observers:
                    a.observe(tok, None)
            else:                       # -- a choice: feed what is pending, adapt, choose
                pending.feed(lm, state, rows)
                tok, lp, glp = _choose(state.logits, adapters, chooser, generator, rows, t,
                                       reporters, trace_top, observers)
            toks = tok.tolist()
            rows.record(lm, toks, lp, glp, eos_id, stop)
            if all(rows.done) or t == max_new_tokens - 1:
                break
            nxt = _forced(forcers, rows, B)
            if nxt is not None or pending.tokens:
                pending.add(toks[0], len(rows.tokens[0]) - 1)
            else:
                lm.advance(state, torch.tensor([lm.pad_token_id if d else x
                                                for d, x in zip(rows.done, toks)],
                                               device=tok.device) if any(rows.done) else tok)
        if any(x is None for x in rows.lps[0]):
            pending.feed(lm, state, rows)      # the last run's log-probabilities
    cost = lm.counter.since(snap)
    per_row_compute = Cost(forward_passes=cost.forward_passes,
                           computed_tokens=cost.computed_tokens)
    per_row_compute = sum((a.spent() for a in adapters if hasattr(a, "spent")), per_row_compute)
    # the batch's shared compute is booked once, on its first row
    return [Generation.of(lm, prompts[r] if prompts else None, state.ids[r][:prompt_lens[r]],
                          rows.tokens[r], rows.lps[r], rows.reasons[r],
                          spent=per_row_compute if r == 0 else None, end_logprob=rows.end_lp[r],
                          proposal_logprobs=rows.glps[r] if known_g else None,
                          end_proposal_logprob=rows.end_glp[r]) for r in range(B)]


def _choose(logits, adapters, chooser, generator, rows, t, reporters, trace_top, observers):
    """One free step: adapt the logits, choose, trace, tell the observers; returns the tokens,
    their log p_theta and their log g under the distribution chosen from."""
    logp = torch.log_softmax(logits.float(), -1)
    adapted = apply_adapters(logits, adapters) if adapters else logits
    if adapters:
        dead = (~torch.isfinite(adapted).any(-1)).tolist()      # rows left with no token
        empty = [r for r, d in enumerate(dead) if d and not rows.done[r]]
        if empty:
            raise ValueError(f"the adapters removed every allowed token at step {t} "
                             f"(row {empty[0]})")
    tok = chooser(adapted, generator)
    if tr.active():
        _emit_steps(t, tok.tolist(), rows.done, logits, logp, adapted if adapters else None,
                    reporters, trace_top)
    for a in observers:
        a.observe(tok, adapted)
    chosen_lp = logp.gather(1, tok.view(-1, 1)).view(-1).tolist()
    # log g(y_t) of each chosen token: p_theta's own when sampling p_theta unadapted, 0
    # under greedy's point mass, None when the chooser's distribution is not known
    chosen_glp = (chosen_lp if chooser is choose_sample and not adapters
                  else _chosen_proposal_logp(chooser, adapted, tok))
    return tok, chosen_lp, chosen_glp


def _emit_steps(t, toks, done, logits, logp, adapted, reporters, trace_top) -> None:
    """One ``step`` event per live row: the token, log p_theta and the top pairs before and
    (with adapters) after the adapters, with log q of the token and the adapters' own fields."""
    lq = None
    if adapted is not None:
        lq = torch.log_softmax(adapted.float(), -1).gather(
            1, torch.tensor(toks, device=adapted.device).view(-1, 1)).view(-1).tolist()
    for r in range(len(toks)):
        if done[r]:
            continue
        extra = {}
        for a in reporters:
            extra.update(a.trace_fields(r) or {})
        tr.emit("step", row=r, t=t, token=toks[r], logprob=float(logp[r, toks[r]]),
                top=_top(logits[r], trace_top),
                top_adapted=_top(adapted[r], trace_top) if adapted is not None else None,
                **({"q_logprob": lq[r]} if lq is not None else {}), **extra)


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

    ``seq_logprob`` is log p_theta of the whole sequence as the search accumulated it, the
    end-of-sequence token included when there is one (as in ``logprob``; ``logprobs`` leave
    EOS out, as in `decode`);
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
    B, L0 = num_beams, len(p_ids)
    run = _Beams.start(B)                       # HF: running_sequences
    fin = _Finished.empty(B)                    # HF: beam_scores, is_sent_finished
    tree = [Node(0, None, None, 0.0, 0.0, 0)]
    state, steps = lm.prefill(p_ids, n=B), 0
    ends = dict(eos_id=lm.eos_token_id if eos else None, max_len=L0 + max_new_tokens, stop=stop)
    with tr.source("beam_search"):
        while True:
            cand = _top_k_continuations(state.logits, run, tree, steps)
            cand.reasons = [_end_reason(lm, run.toks[b], t, L0 + steps, **ends)
                            for b, t in zip(cand.src, cand.toks)]
            nxt = _next_live_beams(cand, B)
            fin = _merge_finished(fin, cand, tree, run, steps, length_penalty, early_stopping)
            _record_step(cand, tree, nxt)
            run = run.advance(cand, nxt)
            steps += 1
            fin.improvable = fin.improvable and _can_improve(
                fin, run, steps if early_stopping != "never" or length_penalty <= 0.0
                else max_new_tokens, length_penalty)
            if not fin.improvable or (bool(fin.done.all()) and early_stopping is True) \
                    or all(r is not None for r in cand.reasons):
                break
            state = state.select([cand.src[j] for j in nxt], inplace=True)
            lm.advance(state, torch.tensor([cand.toks[j] for j in nxt], device=lm.device))
    return _beam_result(lm, prompt, p_ids, tree, fin, n_return, snap,
                        dict(num_beams=B, length_penalty=length_penalty,
                             early_stopping=early_stopping, max_new_tokens=max_new_tokens,
                             steps=steps))


@dataclass
class Finished:
    """A finished hypothesis: its node, tokens and their log-probs, why and at what length."""
    node: int
    tokens: list
    logprobs: list
    reason: str
    length: int


@dataclass
class _Beams:
    """The live beams: each one's node, tokens, token log-probs and cumulative log-prob."""
    nodes: list
    toks: list
    lps: list
    scores: torch.Tensor

    @classmethod
    def start(cls, B):
        scores = torch.zeros(B)
        scores[1:] = -1e9                       # only the first copy of the prompt is expanded
        return cls([0] * B, [[] for _ in range(B)], [[] for _ in range(B)], scores)

    def advance(self, cand, nxt) -> "_Beams":
        return _Beams([cand.first + j for j in nxt],
                      [self.toks[cand.src[j]] + [cand.toks[j]] for j in nxt],
                      [self.lps[cand.src[j]] + [cand.tok_lps[j]] for j in nxt], cand.live_lp[nxt])


@dataclass
class _Finished:
    """The finished set, best-first (HF: beam_scores, is_sent_finished), and whether a live
    beam can still beat it (HF: is_early_stop_heuristic_unsatisfied)."""
    scores: torch.Tensor
    done: torch.Tensor
    items: list
    improvable: bool = True

    @classmethod
    def empty(cls, B):
        return cls(torch.full((B,), -1e9), torch.zeros(B, dtype=torch.bool), [None] * B)


@dataclass
class _Candidates:
    """The 2 * num_beams best one-token continuations of the live beams."""
    src: list
    toks: list
    lp: torch.Tensor            # cumulative log-probs
    tok_lps: list
    first: int                  # the node id of the first candidate
    reasons: list = field(default_factory=list)   # why each ended (None: live)
    live_lp: torch.Tensor | None = None


def _top_k_continuations(logits, run: _Beams, tree, t: int, penalty=None) -> _Candidates:
    """Score every one-token extension by its cumulative log p (eq. 11), less a per-token
    ``penalty`` if given (diverse beam search); keep the best 2B (their ``tok_lps`` stay the
    true log p_theta(v | .))."""
    logp = torch.log_softmax(logits.float(), -1)
    B, V = logp.shape
    if tr.active():
        for b in range(B):
            if run.scores[b] > -1e8:
                tr.emit("beam_expand", t=t, node=run.nodes[b], cum_logprob=float(run.scores[b]),
                        top=_top(logits[b], 2 * B))
    score = logp if penalty is None else logp - penalty
    cand_lp, cand_idx = torch.topk((score + run.scores[:, None]).view(-1), 2 * B)
    return _Candidates((cand_idx // V).tolist(), (cand_idx % V).tolist(), cand_lp,
                       logp.view(-1)[cand_idx].tolist(), len(tree))


def _end_reason(lm, toks, t, cur_len, eos_id, max_len, stop):
    """Why the sequence ``toks + [t]`` ends ("eos", "length", "stop"), or None."""
    if t == eos_id:
        return "eos"
    if cur_len + 1 >= max_len:
        return "length"
    if stop and _hit_stop(lm, toks + [t], stop):
        return "stop"
    return None


def _next_live_beams(cand: _Candidates, B: int) -> list:
    """The best num_beams candidates that did not end."""
    hits = torch.tensor([r is not None for r in cand.reasons])
    cand.live_lp = cand.lp + hits.to(torch.float32) * -1.0e9
    return torch.topk(cand.live_lp, B)[1].tolist()


def _merge_finished(fin: _Finished, cand: _Candidates, tree, run: _Beams, t: int,
                    length_penalty, early_stopping) -> _Finished:
    """Move the candidates that ended among the first num_beams into the finished set, scored
    log p / |y| ** length_penalty, unless the set is closed (full with early_stopping=True,
    or no live beam can improve it)."""
    B = len(fin.items)
    just = torch.tensor([r is not None for r in cand.reasons]) & (torch.arange(2 * B) < B)
    length = t + 1
    f_lp = cand.lp / (length ** length_penalty)
    f_lp += float(bool(fin.done.all()) and early_stopping is True) * -1.0e9
    f_lp += float(not fin.improvable) * -1.0e9
    f_lp += (~just) * -1.0e9
    merged = torch.cat((fin.scores, f_lp))
    merged_done = torch.cat((fin.done, just))
    pick = torch.topk(merged, B)[1].tolist()
    for j in range(2 * B):
        tree.append(Node(cand.first + j, run.nodes[cand.src[j]], cand.toks[j], cand.tok_lps[j],
                         float(cand.lp[j]), t + 1, "pruned"))
    items = []
    for i in pick:
        j = i - B
        if i < B or not just[j]:
            items.append(fin.items[i] if i < B else None)
            continue
        b, node, reason = cand.src[j], tree[cand.first + j], cand.reasons[j]
        node.status, node.score, node.reason = "finished", float(merged[i]), reason
        keep = [cand.toks[j]] if reason != "eos" else []
        items.append(Finished(node.id, run.toks[b] + keep,
                              run.lps[b] + ([node.logprob] if keep else []), reason, length))
        if tr.active():
            tr.emit("beam_finish", t=t, node=node.id, score=node.score, reason=reason,
                    cum_logprob=node.cum_logprob, length=length)
    return _Finished(merged[pick], merged_done[pick], items, fin.improvable)


def _record_step(cand: _Candidates, tree, nxt) -> None:
    """Mark the kept candidates in the tree and emit the step."""
    kept = [cand.first + j for j in nxt if cand.reasons[j] is None]
    for n in kept:
        tree[n].status = "kept"
    if tr.active():
        K = len(cand.toks)
        tr.emit("beam_step", t=tree[cand.first].step - 1,
                nodes=list(range(cand.first, cand.first + K)),
                parents=[tree[cand.first + j].parent for j in range(K)], tokens=cand.toks,
                logprobs=cand.tok_lps, cum_logprobs=cand.lp.tolist(), kept=kept)


def _can_improve(fin: _Finished, run: _Beams, best_len: int, length_penalty) -> bool:
    """HF's stopping rule: can the best live beam, at the most favourable length, still beat
    the worst finished hypothesis?"""
    best_possible = run.scores[:1] / (best_len ** length_penalty)
    worst = torch.where(fin.done, torch.min(fin.scores), -1.0e9)
    return bool(torch.any(best_possible > worst))


def _beam_result(lm, prompt, p_ids, tree, fin: _Finished, n_return, snap, params):
    """The finished hypotheses best-first (ranked in the tree), the cost, the result."""
    cost = lm.counter.since(snap)
    hyps = []
    for item, score in zip(fin.items, fin.scores.tolist()):
        if item is None or len(hyps) == n_return:
            continue
        tree[item.node].rank = len(hyps)
        hyps.append(Hypothesis(
            text=lm.decode(item.tokens), token_ids=item.tokens, logprobs=item.logprobs,
            prompt=_text(lm, prompt), prompt_ids=p_ids, finish_reason=item.reason, score=score,
            seq_logprob=tree[item.node].cum_logprob, length=item.length, node=item.node,
            end_logprob=tree[item.node].logprob if item.reason == "eos" else None))
    cost = cost + Cost(input_tokens=len(p_ids), output_tokens=cost.computed_tokens - len(p_ids),
                       calls=1)
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
    search = _BranchAndBound(lm, lm.prefill(p_ids), lm.eos_token_id if eos else None,
                             max_new_tokens, node_budget)
    with tr.source("exact_map"):
        if max_new_tokens > 0:
            search.visit([], [], 0.0, search.logp())
        else:
            search.best_lp = 0.0
    cost = lm.counter.since(snap) + Cost(input_tokens=len(p_ids), output_tokens=search.expanded,
                                         calls=1)
    best = search.best
    res = MapResult(text=lm.decode(best.tokens), token_ids=best.tokens, logprobs=best.logprobs,
                    prompt=_text(lm, prompt), prompt_ids=p_ids, finish_reason=best.reason,
                    cost=cost, score=search.best_lp, seq_logprob=search.best_lp,
                    end_logprob=search.best_lp - math.fsum(best.logprobs)
                    if best.reason == "eos" else None, length=best.length, optimal=not search.out_of_budget,
                    nodes_expanded=search.expanded)
    if search.out_of_budget and raise_on_budget:
        raise SearchBudgetExceeded(
            f"exact_map used its node_budget of {node_budget} expansions before proving the "
            f"best sequence optimal (best so far: log p = {res.seq_logprob:.4f}, "
            f"{res.text!r}); raise node_budget, lower max_new_tokens, or pass "
            "raise_on_budget=False to get this unproven result", res)
    return res


class _BranchAndBound:
    """exact_map's search: the best complete sequence so far and the expansions used."""

    def __init__(self, lm, state, eos_id, max_new_tokens, node_budget):
        self.lm, self.state, self.eos_id = lm, state, eos_id
        self.max_new_tokens, self.node_budget = max_new_tokens, node_budget
        self.best, self.best_lp = Finished(-1, [], [], "length", 0), -math.inf
        self.expanded, self.out_of_budget = 0, False

    def logp(self):
        return torch.log_softmax(self.state.logits[0].float(), -1)

    def visit(self, toks, lps, cum, logp):
        """Score the sequence that ends here (prefix + EOS, no pass), then the children most
        probable first; cut every child whose prefix is no better than the best sequence."""
        depth = len(toks) + 1                       # the length of the children
        if self.eos_id is not None and cum + float(logp[self.eos_id]) > self.best_lp:
            self.record(toks, lps, cum + float(logp[self.eos_id]), "eos", depth)
        values, order = torch.sort(logp, descending=True)
        for v, t in zip(values.tolist(), order.tolist()):
            if t == self.eos_id:
                continue
            if cum + v <= self.best_lp:
                return                              # children are sorted: all the rest too
            if depth == self.max_new_tokens:
                return self.record(toks + [t], lps + [v], cum + v, "length", depth)
            if not self.expand(len(toks), t, cum + v):
                return
            self.visit(toks + [t], lps + [v], cum + v, self.logp())
            self.state.crop(1)                      # back to this node (logits unused)
            if self.out_of_budget:
                return

    def expand(self, t, token, total) -> bool:
        """One forward pass for the child ``token`` at time ``t``, if the budget allows."""
        if self.expanded >= self.node_budget:
            self.out_of_budget = True
            return False
        self.expanded += 1
        self.lm.advance(self.state, [token])
        if tr.active():
            tr.emit("map_expand", t=t, token=token, cum_logprob=total)
        return True

    def record(self, toks, lps, total, reason, length):
        self.best = Finished(-1, list(toks), list(lps), reason, length)   # no tree: node -1
        self.best_lp = total
        if tr.active():
            tr.emit("map_finish", tokens=list(toks), seq_logprob=total, reason=reason)


# -- sampling without replacement (Kool, van Hoof and Welling, 2019) ----------------------------
# The Gumbel-top-k trick: perturb every complete sequence's log-probability with independent
# Gumbel noise, G_y = log p_theta(y | x) + Gumbel(0, 1); the k largest G_y are k samples without
# replacement.  Stochastic beam search finds them without enumerating sequences: it perturbs
# prefixes top-down so that a prefix's G is the maximum of its completions' G, and keeps the k
# prefixes with the largest G at every step, which is then exact.

def truncated_gumbel(parent: torch.Tensor, phi: torch.Tensor, generator=None) -> torch.Tensor:
    """Perturbed log-probabilities of the children, conditioned on their maximum being the
    parent's (Kool et al., 2019, eq. 10 and appendix B).

    ``parent`` (B,) holds each row's perturbed value T; ``phi`` (B, V) the children's
    log-probabilities log p_theta(y_<t o y_t | x).  Draw G'_c = phi_c + Gumbel(0, 1), let
    Z = max_c G'_c, and shift every child so the maximum becomes T:

        G_c = -log(exp(-T) - exp(-Z) + exp(-G'_c)) = T - softplus(T - G'_c + log(1 - exp(G'_c - Z)))

    (the second form is the numerically stable one the paper gives).  Children with
    phi = -inf stay at -inf.
    """
    u = torch.rand(phi.shape, generator=generator, device=phi.device, dtype=torch.float64)
    g = phi.double() - torch.log(-torch.log(u.clamp_min(1e-300)))
    z = g.max(-1, keepdim=True).values
    a = (g - z).clamp_max(0.0)
    log1mexp = torch.where(a > -math.log(2), torch.log(-torch.expm1(a)),
                           torch.log1p(-torch.exp(a)))
    t = parent.double().view(-1, 1)
    out = t - torch.nn.functional.softplus(t - g + log1mexp)
    return torch.where(torch.isfinite(phi), out, torch.full_like(out, -math.inf))


@dataclass
class StochasticBeamResult:
    """k sequences sampled without replacement, best perturbed value first, and the threshold
    kappa (the (k+1)-th largest perturbed value over all sequences) their estimator needs."""
    samples: list                 # Generation, with info["gumbel"] and info["seq_logprob"]
    threshold: float
    cost: Cost = field(default_factory=Cost)

    def inclusion_probability(self, seq_logprob: float) -> float:
        """q_kappa(y) = P(G_y > kappa) = 1 - exp(-exp(log p(y) - kappa))."""
        if self.threshold == -math.inf:
            return 1.0
        return -math.expm1(-math.exp(seq_logprob - self.threshold))

    def estimate(self, f, normalize: bool = False) -> float:
        """E_{y ~ p_theta}[f(y)] ≈ Σ_i p(y_i) / q_kappa(y_i) · f(y_i) (Kool et al., 2019, eq. 12):
        unbiased; ``normalize`` divides by Σ_i p(y_i) / q_kappa(y_i) (lower variance, biased)."""
        w = [math.exp(s.info["seq_logprob"]) / self.inclusion_probability(s.info["seq_logprob"])
             for s in self.samples]
        total = sum(wi * float(f(s)) for wi, s in zip(w, self.samples))
        return total / sum(w) if normalize else total


def stochastic_beam_search(lm: LanguageModel, prompt, k: int = 4, max_new_tokens: int = 32,
                           seed=None, eos: bool = True) -> StochasticBeamResult:
    """Sample k distinct sequences without replacement from p_theta(y | x) (Kool et al., 2019).

    Every beam carries its log-probability phi and its perturbed value G (the prompt: phi = 0,
    G = 0).  Each step gives every child of a live beam G from `truncated_gumbel`, keeps the k
    candidates (children, and beams that already ended with EOS) with the largest G, and records
    the largest G it drops: their maximum over the steps is kappa, the (k+1)-th largest G of any
    complete sequence.  Sequences end with EOS or at ``max_new_tokens``.  Emits one ``sbs_step``
    event per step.
    """
    validate.count("k", k)
    p_ids = lm.prompt_ids(prompt, max_new_tokens)
    validate.count("max_new_tokens", max_new_tokens)
    gen = make_generator(seed, lm.device)
    snap = lm.counter.snapshot()
    eos_id = lm.eos_token_id if eos else None
    state = lm.prefill(p_ids)
    live = [([], [], 0.0, 0.0)]           # (tokens, token log-probs, phi, G) per state row
    done, kappa = [], -math.inf           # finished: (tokens, log-probs, phi, G, reason)
    with tr.source("stochastic_beam_search"):
        for t in range(max_new_tokens):
            cand, kappa = _sbs_step(state.logits, live, done, k, gen, eos_id, kappa,
                                last=t == max_new_tokens - 1)
            if tr.active():
                tr.emit("sbs_step", t=t, tokens=[eos_id if c[4] == "eos" else
                                                 (c[0][-1] if c[0] else None) for c in cand],
                        gumbels=[c[3] for c in cand], kappa=kappa)
            done = [c[:5] for c in cand if c[4] is not None]
            nxt = [c for c in cand if c[4] is None]
            if not nxt:
                break
            state = state.select([c[5] for c in nxt], inplace=True)
            lm.advance(state, torch.tensor([c[0][-1] for c in nxt], device=lm.device))
            live = [c[:4] for c in nxt]
    cost = lm.counter.since(snap)
    samples = [Generation(text=lm.decode(toks), token_ids=toks, logprobs=lps,
                          prompt=_text(lm, prompt), prompt_ids=p_ids, finish_reason=reason,
                          info={"gumbel": g, "seq_logprob": phi},
                          end_logprob=phi - math.fsum(lps) if reason == "eos" else None)
               for toks, lps, phi, g, reason, *_ in sorted(done, key=lambda c: -c[3])]
    cost = cost + Cost(input_tokens=len(p_ids), output_tokens=cost.computed_tokens - len(p_ids),
                       calls=1)
    return StochasticBeamResult(samples, kappa, cost)


def _sbs_step(logits, live, done, k, gen, eos_id, kappa, last):
    """One step: perturb the children of the live beams, keep the k best candidates (finished
    beams compete with their G), and raise kappa to the largest G dropped."""
    logp = torch.log_softmax(logits.double(), -1)
    phi = torch.tensor([b[2] for b in live], dtype=torch.float64, device=logp.device)
    parents = torch.tensor([b[3] for b in live], dtype=torch.float64, device=logp.device)
    g = truncated_gumbel(parents, phi[:, None] + logp, gen)
    flat = g.view(-1)
    top = torch.topk(flat, min(k + 1, flat.numel()))
    V = logp.shape[-1]
    cand = [c + (None,) for c in done]
    for val, idx in zip(top.values.tolist(), top.indices.tolist()):
        row, tok = divmod(idx, V)
        toks, lps, parent_phi, _ = live[row]
        lp = float(logp[row, tok])
        reason = "eos" if tok == eos_id else ("length" if last else None)
        keep = reason != "eos"              # EOS ends the sequence and is not one of its tokens
        cand.append((toks + [tok] * keep, lps + [lp] * keep, parent_phi + lp, val, reason, row))
    cand.sort(key=lambda c: -c[3])
    if len(cand) > k:
        kappa = max(kappa, cand[k][3])
    return cand[:k], kappa
