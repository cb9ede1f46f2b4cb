"""Token-level generators (survey §3): greedy decoding and ancestral sampling with adapters.

All of them run one loop, `decode`: at every step the model gives logits s_theta(. | y_<t, x),
an optional chain of *adapters* q_t (Table 2) reshapes them, and a *chooser* picks the next
token (argmax for greedy, eq. 4; a draw from softmax(q_t(s_theta)) for sampling, eq. 14).  The
loop uses the KV cache, stops at EOS, at ``max_new_tokens`` or at a stop string, emits a
``step`` event per token into the active trace, and returns `Generation` results with the text,
the tokens, the per-token log-probabilities under p_theta and the cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import trace as tr
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
    done = torch.zeros(B, dtype=torch.bool, device=lm.device)
    adapters = list(adapters or ())
    with tr.source(source):
        for t in range(max_new_tokens):
            logits = state.logits
            logp = torch.log_softmax(logits.float(), -1)
            adapted = apply_adapters(logits, adapters)
            tok = chooser(adapted, generator)
            if tr.active():
                for r in range(B):
                    if not done[r]:
                        tr.emit("step", row=r, t=t, token=int(tok[r]),
                                logprob=float(logp[r, tok[r]]), top=_top(logits[r], trace_top),
                                top_adapted=_top(adapted[r], trace_top) if adapters else None)
            for a in adapters:
                if hasattr(a, "observe"):
                    a.observe(tok, adapted)
            chosen_lp = logp.gather(1, tok.view(-1, 1)).view(-1).tolist()
            for r in range(B):
                if done[r]:
                    continue
                ti = int(tok[r])
                if eos and ti == lm.eos_token_id:
                    reasons[r], done[r] = "eos", True
                    continue
                out_tokens[r].append(ti)
                out_lps[r].append(chosen_lp[r])
                if stop and _hit_stop(lm, out_tokens[r], stop):
                    reasons[r], done[r] = "stop", True
            if bool(done.all()) or t == max_new_tokens - 1:
                break
            tok = torch.where(done, torch.full_like(tok, lm.pad_token_id), tok)
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


def _run(lm, prompt, n, chooser, max_new_tokens, adapters, stop, seed, source):
    prompts = list(prompt) if is_batch(prompt) else [prompt]
    for p in prompts:
        lm.prompt_ids(p, max_new_tokens)
    snap = lm.counter.snapshot()
    state = lm.prefill(prompts, n=n)
    prefill_cost = lm.counter.since(snap)
    gen = make_generator(seed, lm.device)
    texts = [p if isinstance(p, str) else lm.decode(p) for p in prompts for _ in range(n)]
    res = decode(lm, state, chooser, max_new_tokens, adapters, stop, gen, texts, source)
    res[0].cost = res[0].cost + prefill_cost
    return res


def greedy(lm: LanguageModel, prompt, max_new_tokens: int = 128, stop=None, adapters=None):
    """Greedy decoding (eq. 4): y_t = argmax_v s_theta(v | y_<t, x) at every step.

    ``prompt`` is a text or ids; a list of prompts is decoded as one batch (list returned).
    """
    out = _run(lm, prompt, 1, choose_greedy, max_new_tokens, adapters, stop, 0, "greedy")
    return out if is_batch(prompt) else out[0]


def sample(lm: LanguageModel, prompt, adapters=None, seed=None, max_new_tokens: int = 128,
           stop=None, n: int | None = None):
    """Ancestral sampling (eq. 14): y_t ~ softmax(q_t(s_theta(. | y_<t, x))).

    ``adapters`` is a chain of logits -> logits functions (see `workbench.adapters`), applied in
    order.  With ``n`` set, returns a list of ``n`` samples that share one computed prompt; a
    list of prompts gives a list with one entry (a sample, or a list of ``n``) per prompt.
    """
    k = 1 if n is None else n
    if k < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = _run(lm, prompt, k, choose_sample, max_new_tokens, adapters, stop, seed, "sample")
    groups = [out[i:i + k] for i in range(0, len(out), k)]
    groups = [g[0] for g in groups] if n is None else groups
    return groups if is_batch(prompt) else groups[0]
