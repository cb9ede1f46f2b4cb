"""Speculative decoding: draft-then-verify (survey §7.2, "Parallelization across time").

A cheap drafter proposes k tokens; the target computes p for all k+1 positions in one forward
pass; a modified rejection sampler keeps a prefix of the draft and adds one token of its own, so
every round emits 1..k+1 tokens distributed exactly as the target's ancestral sampling (eq. 14)
(Leviathan et al. 2023; Chen et al. 2023).  Drafted token d with draft probability q(d) is kept
with probability min(1, p(d)/q(d)) (so a token with q > p is *rejected* with probability
1 - p/q); the first rejected position is resampled from norm(max(p - q, 0)); when all k are kept
a bonus token is drawn from the last p.  Drafters: a smaller model (`ModelDrafter`) or copying
n-grams from the prompt and output (`PromptLookupDrafter`, prompt lookup decoding).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from ..budget import Cost
from ..decoding import Generation, apply_adapters
from ..models import LanguageModel
from ..rng import make_generator
from ..trace import active, emit
from ..trace import source as tagged
from .kv import _seconds


@dataclass
class SpecStep:
    """What one verification did: ``tokens`` = accepted draft tokens, then the next token."""
    tokens: list
    n_accepted: int
    kind: str        # "bonus" (all k kept), "resample" (n_accepted rejected), "plain" (k=0)
    p_draft: list    # target probability p(d_i) of each drafted token
    q_draft: list    # draft probability q(d_i) (1.0 for a deterministic drafter)

    @property
    def next_token(self) -> int:
        return self.tokens[-1]

    @property
    def accept_probs(self) -> list:
        """min(1, p(d_i) / q(d_i)) for each drafted token."""
        return [min(1.0, p / q) if q > 0 else 1.0 for p, q in zip(self.p_draft, self.q_draft)]


def _multinomial(weights, generator):
    if generator is not None and generator.device != weights.device:
        return int(torch.multinomial(weights.cpu(), 1, generator=generator))
    return int(torch.multinomial(weights, 1, generator=generator))


def speculative_sampling_step(p: torch.Tensor, q, draft_tokens, generator=None) -> SpecStep:
    """The accept/reject step of speculative sampling (Leviathan et al. 2023, Algorithm 1).

    ``p`` (k+1, V): target probabilities at the k drafted positions and the one after them;
    ``q`` (k, V): the draft's probabilities the tokens were drawn from, or None for a
    deterministic drafter (q = one-hot on the drafted token); ``draft_tokens``: the k tokens.
    Keep d_i while u_i < p_i(d_i) / q_i(d_i) (u_i ~ U[0, 1)); at the first rejection draw the
    next token from norm(max(p_i - q_i, 0)), else the bonus token from p_k.  The emitted tokens
    are distributed exactly as sampling from p, position by position.
    """
    d = torch.as_tensor(list(draft_tokens), dtype=torch.long, device=p.device)
    k = d.numel()
    if p.dim() != 2 or p.shape[0] != k + 1:
        raise ValueError(f"p must have shape (k+1, V) = ({k + 1}, V), got {tuple(p.shape)}")
    if q is not None and tuple(q.shape) != (k, p.shape[1]):
        raise ValueError(f"q must have shape (k, V) = ({k}, {p.shape[1]}), got {tuple(q.shape)}")
    if k == 0:
        return SpecStep([_multinomial(p[0], generator)], 0, "plain", [], [])
    pos = torch.arange(k, device=p.device)
    pd = p[pos, d]
    qd = q[pos, d] if q is not None else torch.ones_like(pd)
    u = torch.rand(k, generator=generator, dtype=p.dtype,
                   device=generator.device if generator is not None else p.device).to(p.device)
    n = int((u * qd < pd).int().cumprod(0).sum())
    if n < k:
        if q is not None:
            residual = (p[n] - q[n]).clamp_min(0)
        else:
            residual = p[n].clone()
            residual[d[n]] = 0
        if not float(residual.sum()) > 0:   # only through rounding when p[n] == q[n]
            residual = p[n]
        nxt, kind = _multinomial(residual, generator), "resample"
    else:
        nxt, kind = _multinomial(p[k], generator), "bonus"
    return SpecStep(d[:n].tolist() + [nxt], n, kind, pd.tolist(), qd.tolist())


def greedy_verify_step(p: torch.Tensor, draft_tokens) -> SpecStep:
    """Greedy speculative decoding: keep drafted tokens while they equal argmax p_i, then emit
    argmax p_n.  The output is exactly the target's greedy decoding (eq. 4).  It is the sampling
    step with p and q replaced by one-hot distributions on the argmax and the drafted token.
    ``p`` may be probabilities or logits (k+1, V)."""
    d = list(draft_tokens)
    if p.dim() != 2 or p.shape[0] != len(d) + 1:
        raise ValueError(f"p must have shape (k+1, V) = ({len(d) + 1}, V), got {tuple(p.shape)}")
    best = p.argmax(-1).tolist()
    n = 0
    while n < len(d) and d[n] == best[n]:
        n += 1
    kind = "plain" if not d else ("bonus" if n == len(d) else "resample")
    return SpecStep(d[:n] + [best[n]], n, kind, [float(a == b) for a, b in zip(d, best)],
                    [1.0] * len(d))


class ModelDrafter:
    """Drafts k tokens with a small model q, keeping its KV cache in step with the output.

    Each round first feeds the tokens the target emitted since the last round (one pass), then
    drafts one token per pass; rejected drafts are cropped from its cache without recomputation.
    """

    def __init__(self, lm: LanguageModel):
        self.lm = lm

    def start(self, ids):
        self.state, self.pending, self.rows = self.lm.prefill(list(ids)), [], None

    def propose(self, k, adapters, greedy, generator):
        lm, state = self.lm, self.state
        if k == 0:
            return [], None
        if self.pending:
            lm.extend(state, self.pending)
            self.pending = []
        rows, probs, tokens = [], [], []
        for i in range(k):
            logits = state.logits
            rows.append(logits)
            if greedy:
                tok = logits.argmax(-1)
            else:
                q = torch.softmax(apply_adapters(logits, adapters), -1)
                probs.append(q)
                tok = torch.tensor([_multinomial(q[0], generator)], device=lm.device)
            tokens.append(int(tok))
            if i < k - 1:
                lm.advance(state, tok)
        self.rows = torch.cat(rows)
        return tokens, (None if greedy else torch.cat(probs))

    def update(self, step: SpecStep, drafted):
        k, n = len(drafted), step.n_accepted
        if k and n < k:   # the state holds d_1..d_{k-1}; keep d_1..d_n
            self.state.crop(k - 1 - n, self.rows[n:n + 1])
            self.pending.append(step.next_token)
        else:
            self.pending += drafted[-1:] + [step.next_token]

    def counter(self):
        return self.lm.counter


class PromptLookupDrafter:
    """Drafts by copying (prompt lookup decoding, Saxena 2023; copying spans of the input is
    the idea of Yang et al. 2023, "Inference with Reference"): find the latest earlier
    occurrence of the last n tokens (n = max_ngram down to min_ngram) in prompt + output and
    propose the k tokens that followed it.  No model, no forward passes."""

    def __init__(self, max_ngram: int = 3, min_ngram: int = 1):
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
        self.max_ngram, self.min_ngram = max_ngram, min_ngram

    def start(self, ids):
        self.ids, self.index = [], {}
        self._add(list(ids))

    def _add(self, tokens):
        for t in tokens:
            self.ids.append(int(t))
            j = len(self.ids) - 2   # n-grams ending before the last token can be looked up
            for n in range(self.min_ngram, self.max_ngram + 1):
                if j - n + 1 >= 0:
                    self.index[tuple(self.ids[j - n + 1:j + 1])] = j

    def propose(self, k, adapters, greedy, generator):
        if k == 0:
            return [], None
        L = len(self.ids)
        for n in range(min(self.max_ngram, L), self.min_ngram - 1, -1):
            j = self.index.get(tuple(self.ids[L - n:]))
            if j is not None:
                return self.ids[j + 1:j + 1 + k], None
        return [], None

    def update(self, step: SpecStep, drafted):
        self._add(step.tokens)

    def counter(self):
        return None


def truncated_draft(lm: LanguageModel, layers: int) -> LanguageModel:
    """A draft made of the target's first ``layers`` layers, its final norm and its head (early
    exit, as in self-speculative decoding; Zhang et al. 2023, Elhoushi et al. 2024).  Needs no
    training; weights are copied, so the draft's cache is separate from the target's."""
    n = lm.model.config.num_hidden_layers
    if not isinstance(layers, int) or not 1 <= layers <= n:
        raise ValueError(f"layers must be in [1, {n}], got {layers!r}")
    cfg = copy.deepcopy(lm.model.config)
    cfg.num_hidden_layers = layers
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = cfg.layer_types[:layers]
    model = type(lm.model)(cfg).to(device=lm.device, dtype=lm.model.dtype).eval()
    missing = model.load_state_dict(lm.model.state_dict(), strict=False).missing_keys
    if missing:
        raise ValueError(f"cannot truncate {type(lm.model).__name__}: missing {missing[:3]}")
    out = LanguageModel(model, lm.tokenizer, name=f"{lm.name}-first{layers}")
    out.cache_factory = lm.cache_factory
    return out


def expected_tokens_per_round(alpha: float, k: int) -> float:
    """E[accepted + 1] = (1 - alpha^(k+1)) / (1 - alpha) for i.i.d. acceptance rate alpha
    (Leviathan et al. 2023, eq. 1)."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return float(k + 1) if alpha == 1 else (1 - alpha ** (k + 1)) / (1 - alpha)


def expected_speedup(alpha: float, k: int, c: float) -> float:
    """Walltime improvement (1 - alpha^(k+1)) / ((1 - alpha)(k c + 1)), with c the cost of a
    draft pass relative to a target pass (Leviathan et al. 2023, Theorem 3.8)."""
    return expected_tokens_per_round(alpha, k) / (k * c + 1)


def accepted_length_distribution(alpha: float, k: int) -> list:
    """P(n accepted) for n = 0..k: alpha^n (1 - alpha) for n < k, alpha^k for n = k."""
    return [alpha ** n * (1 - alpha) for n in range(k)] + [alpha ** k]


def _speculate(target: LanguageModel, drafter, prompt, k, max_new_tokens, adapters, seed,
               greedy, stop_at_eos, rollback, source) -> Generation:
    """The rounds of speculative decoding, as named phases: draft, score the draft in one
    target pass, accept or reject, roll the rejected positions back, append what was kept."""
    adapters = _check_speculate(k, rollback, adapters)
    ids = target.prompt_ids(prompt, max_new_tokens)
    gen = make_generator(seed, target.device)
    dcount = drafter.counter()
    dcount = None if dcount is target.counter else dcount
    snap, dsnap = target.counter.snapshot(), dcount.snapshot() if dcount else None
    start = time.perf_counter()
    state, pending = target.prefill(ids), []
    drafter.start(ids)
    out = _Output(target.eos_token_id if stop_at_eos else None)
    with tagged(source):
        while len(out.tokens) < max_new_tokens and out.finish == "length":
            drafted, q = drafter.propose(min(k, max_new_tokens - len(out.tokens) - 1), adapters,
                                         greedy, gen)                     # 1. draft
            raw = _score(target, state, pending, drafted)                 # 2. one target pass
            step, beta = _verify(raw, q, drafted, greedy, adapters, gen)  # 3. accept / reject
            if step.n_accepted < len(drafted):                            # 4. roll back
                if rollback == "crop":
                    state.crop(len(drafted) - step.n_accepted,
                               raw[step.n_accepted:step.n_accepted + 1])
                else:
                    target.rewind(state, len(drafted) - step.n_accepted)
            pending = [step.next_token]
            drafter.update(step, drafted)
            out.append(step, raw, greedy, adapters)                       # 5. keep
            out.rounds.append({"drafted": drafted, "accepted": step.n_accepted,
                               "next": step.next_token, "kind": step.kind, "p": step.p_draft,
                               "q": step.q_draft, "beta": beta})
            if active():
                _emit_round(len(out.rounds) - 1, step, drafted, beta)
    seconds = _seconds(start, target.device)
    tcost = target.counter.since(snap)
    dcost = dcount.since(dsnap) if dcount else Cost()
    return Generation.of(target, prompt, ids, out.tokens, out.logprobs, out.finish,
                         spent=tcost + dcost,
                         info=summarize(out.rounds, k) | {"seconds": seconds, "target_cost": tcost,
                                                          "draft_cost": dcost,
                                                          "rollback": rollback},
                         end_logprob=out.end[0], proposal_logprobs=out.glps,
                         end_proposal_logprob=out.end[1])


def _check_speculate(k, rollback, adapters) -> list:
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    if rollback not in ("crop", "rewind"):
        raise ValueError(f"rollback must be 'crop' or 'rewind', got {rollback!r}")
    adapters = [adapters] if callable(adapters) else list(adapters or ())
    if any(hasattr(a, "observe") for a in adapters):
        raise ValueError("adapters must be stateless functions of the logits (no .observe)")
    return adapters


def _score(target, state, pending, drafted) -> torch.Tensor:
    """The target's logits before each drafted token and after the last (k + 1, V): the
    pending token and the draft are fed in one pass (`LanguageModel.extend`)."""
    last = state.logits
    rows = target.extend(state, pending + drafted) if pending or drafted else last[:0]
    return torch.cat([last, rows])[len(pending):len(pending) + len(drafted) + 1]


def _verify(raw, q, drafted, greedy, adapters, gen) -> tuple:
    """The accept/reject step and beta, each tested position's acceptance probability
    sum_v min(p, q) (none for greedy verification)."""
    if greedy:
        return greedy_verify_step(raw, drafted), []
    p = torch.softmax(apply_adapters(raw, adapters), -1)
    step = speculative_sampling_step(p, q, drafted, gen)
    tested = min(step.n_accepted + 1, len(drafted))
    beta = (torch.minimum(p[:tested], q[:tested]).sum(-1).tolist()
            if q is not None else step.p_draft[:tested])
    return step, beta


class _Output:
    """The tokens kept so far, their log p_theta and log g, the rounds, and how it ended."""

    def __init__(self, eos):
        self.eos, self.tokens, self.logprobs, self.glps, self.rounds = eos, [], [], [], []
        self.finish, self.end = "length", (None, None)

    def append(self, step, raw, greedy, adapters) -> None:
        """Keep a round's tokens (up to EOS) with their log-probabilities: under p_theta, and
        under the target's adapted distribution the output follows (a point mass for greedy)."""
        n = step.n_accepted
        chosen = torch.tensor(step.tokens, device=raw.device).view(-1, 1)
        lps = torch.log_softmax(raw[:n + 1], -1).gather(1, chosen).view(-1).tolist()
        gs = [0.0] * len(lps) if greedy else torch.log_softmax(
            apply_adapters(raw[:n + 1], adapters).float(), -1).gather(1, chosen).view(-1).tolist()
        for tok, lp, lg in zip(step.tokens, lps, gs):
            if tok == self.eos:
                self.finish, self.end = "eos", (lp, lg)
                break
            self.tokens.append(tok)
            self.logprobs.append(lp)
            self.glps.append(lg)


def _emit_round(r, step, drafted, beta):
    n = step.n_accepted
    if drafted:
        emit("draft", round=r, tokens=drafted, q=step.q_draft, p=step.p_draft, beta=beta)
    for i in range(n):
        emit("accept", round=r, pos=i, token=drafted[i], p=step.p_draft[i], q=step.q_draft[i])
    if n < len(drafted):
        emit("reject", round=r, pos=n, token=drafted[n], p=step.p_draft[n], q=step.q_draft[n])
        emit("resample", round=r, pos=n, token=step.next_token)
    else:   # every drafted token accepted (or none drafted): the target's own next token
        emit("bonus", round=r, pos=n, token=step.next_token)


ROUND_KINDS = ("draft", "accept", "reject", "resample", "bonus")


def rounds_from_events(events: list) -> list:
    """The rounds of the last speculative run in ``events`` (a recorded or loaded trace), in the
    shape of ``info["rounds"]``: drafted tokens, how many were accepted, the token the target
    added (``next``, ``kind`` bonus or resample) and the draft's p and q."""
    mine = [e for e in events if e["kind"] in ROUND_KINDS]
    starts = [i for i, e in enumerate(mine) if e["round"] == 0 and (i == 0 or mine[i - 1]["round"])]
    rounds: dict = {}
    for e in mine[starts[-1] if starts else 0:]:
        rd = rounds.setdefault(e["round"], {"drafted": [], "accepted": 0, "next": None,
                                            "kind": None, "p": [], "q": [], "beta": []})
        if e["kind"] == "draft":
            rd.update(drafted=e["tokens"], p=e["p"], q=e["q"], beta=e["beta"])
        elif e["kind"] == "accept":
            rd["accepted"] += 1
        elif e["kind"] in ("resample", "bonus"):
            rd["next"], rd["kind"] = e["token"], e["kind"]
    return [rounds[r] for r in sorted(rounds)]


def summarize(rounds: list, k: int) -> dict:
    """Acceptance statistics of a run: alpha = accepted / tested draft positions (the i.i.d.
    acceptance-rate estimate), mean accepted per drafting round, tokens per round, and the
    closed form (1 - alpha^(k+1)) / (1 - alpha) at this alpha."""
    drafting = [r for r in rounds if r["drafted"]]
    accepted = sum(r["accepted"] for r in drafting)
    tested = accepted + sum(r["accepted"] < len(r["drafted"]) for r in drafting)
    alpha = accepted / tested if tested else 0.0
    betas = [b for r in drafting for b in r["beta"]]
    mean_k = (sum(len(r["drafted"]) for r in drafting) / len(drafting)) if drafting else 0
    return {"k": k, "rounds": rounds, "drafted": sum(len(r["drafted"]) for r in drafting),
            "accepted": accepted, "acceptance_rate": alpha,
            "mean_beta": sum(betas) / len(betas) if betas else None,
            "mean_accepted": accepted / len(drafting) if drafting else 0.0,
            "tokens_per_round": (sum(r["accepted"] + 1 for r in drafting) / len(drafting)
                                 if drafting else 1.0),
            "expected_tokens_per_round": expected_tokens_per_round(alpha, round(mean_k)),
            "drafting_rounds": len(drafting)}


def speculative_decode(target: LanguageModel, draft: LanguageModel, prompt, k: int = 4,
                       max_new_tokens: int = 128, adapters=None, seed=None, greedy: bool = False,
                       stop_at_eos: bool = True, rollback: str = "crop") -> Generation:
    """Speculative sampling with a draft model (§7.2; Leviathan et al. 2023, Chen et al. 2023).

    Each round: the draft samples k tokens from q = softmax(adapters(draft logits)); the target
    scores ``[pending token] + draft`` in one pass (`LanguageModel.extend`); the accept/reject
    step (`speculative_sampling_step`) keeps n of them and adds one, and the rejected positions
    are dropped from both caches (``rollback="crop"``: cache crop, no extra pass;
    ``"rewind"``: `LanguageModel.rewind`, one extra target pass per rejection).  ``adapters``
    (e.g. temperature) are applied identically to p and q, so the output follows
    softmax(adapters(target logits)).  ``greedy=True`` gives the target's greedy output.
    ``info`` holds every round (drafted, accepted, next, kind) and the acceptance statistics.
    """
    if target.vocab_size != draft.vocab_size:
        raise ValueError(f"draft vocabulary ({draft.vocab_size}) differs from the target's "
                         f"({target.vocab_size}): they must share a tokenizer")
    draft.prompt_ids(prompt, max_new_tokens)
    return _speculate(target, ModelDrafter(draft), prompt, k, max_new_tokens, adapters, seed,
                      greedy, stop_at_eos, rollback, "speculative")


def prompt_lookup_decode(target: LanguageModel, prompt, k: int = 8, max_ngram: int = 3,
                         max_new_tokens: int = 128, adapters=None, seed=None,
                         greedy: bool = False, stop_at_eos: bool = True) -> Generation:
    """Speculative decoding whose drafts are copied n-grams (prompt lookup decoding).

    The draft is deterministic (q one-hot), so a drafted token is kept with probability p(d),
    and on rejection the next token is drawn from p with d removed; the output still follows
    the target exactly.  Rounds without a match are plain target steps.
    """
    return _speculate(target, PromptLookupDrafter(max_ngram), prompt, k, max_new_tokens,
                      adapters, seed, greedy, stop_at_eos, "crop", "prompt_lookup")
