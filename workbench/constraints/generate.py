"""Constrained generation with fast-forward and token healing (survey §3.5.1).

At every step the model's logits s_theta(. | y_<t, x) are masked to the tokens that keep the
output in the constraint's language (-inf elsewhere), optional adapters q_t reshape what is
left, and the next token is the argmax (eq. 4) or a draw (eq. 14): sampling from the
renormalised p_theta restricted to valid tokens.

**Template speedup ("fast-forward").**  When exactly one token is allowed it is appended without
asking the model.  Its log-probability is still needed for the result, but not before the next
*free* choice: a run of forced tokens is fed to the model in one `lm.extend` pass together with
the token chosen before it, whose logits serve both to report the run's log-probabilities and to
choose the next free token.  A template with k forced tokens in a row costs one pass instead of
k + 1; ``Generation.info["passes_saved"]`` counts the difference with token-by-token decoding.

**Budget.**  ``index.distance[q]`` tokens are needed to finish from state ``q``; a
``max_new_tokens`` below ``distance[start]`` raises ValueError, and at every step tokens that
could not finish within the remaining budget are masked too, so every output ends in an
accepting state.
"""
from __future__ import annotations

import numpy as np
import torch

from ..trace import active, emit, source
from ..decoding import (Generation, _chosen_proposal_logp, apply_adapters, choose_greedy,
                        choose_sample)
from ..rng import make_generator
from .healing import heal_prompt, healing_candidates, token_strings
from .index import TokenIndex, json_constraint, regex_constraint
from .regex import escape


def as_index(constraint, lm) -> TokenIndex | None:
    """A `TokenIndex` from an index, a regex string or a JSON-schema dict (None stays None)."""
    if constraint is None or isinstance(constraint, TokenIndex):
        return constraint
    if isinstance(constraint, str):
        return regex_constraint(constraint, lm)
    if isinstance(constraint, dict):
        return json_constraint(constraint, lm)
    raise TypeError("constraint must be a TokenIndex, a regex string, a JSON-schema dict or None,"
                    f" got {type(constraint).__name__}")


def _healed_index(index: TokenIndex | None, removed: bytes, lm) -> TokenIndex | None:
    """The constraint shifted by the healed text: the output must now start with it."""
    if index is None:
        return None
    try:
        text = removed.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("token healing removed part of a character; use heal=False with this "
                         "prompt and constraint") from None
    return regex_constraint(escape(text) + "(?:" + index.pattern + ")", lm)


class _Allowed:
    """The tokens allowed at one step: the index's, minus those too long for the budget."""

    def __init__(self, index, first_ids=None):
        self.index, self.first = index, first_ids

    def at(self, q, remaining: int, step: int):
        """Allowed ids in state ``q`` with ``remaining`` tokens left (None: any token)."""
        ix, ids = self.index, None
        if ix is not None:
            succ, nxt = ix.successors(q)
            ids = succ[ix.distance[nxt] <= remaining - 1]
            if ix.is_accepting(q) and ix.eos is not None:
                ids = np.append(ids, ix.eos)
        if step == 0 and self.first is not None:     # token healing: start with the removed text
            first = np.asarray(self.first)
            ids = first if ids is None else first[np.isin(first, ids)]
        return ids


def _choose(logits, allowed, adapters, chooser, generator, t) -> tuple:
    """Mask ``logits`` to ``allowed`` (None: all), apply the adapters, pick a token; returns it
    with its log-probability under the masked, adapted distribution drawn from (0 for greedy)."""
    masked = logits
    if allowed is not None:
        keep = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        keep[torch.as_tensor(allowed, dtype=torch.long, device=logits.device)] = True
        masked = logits.masked_fill(~keep, float("-inf"))
    adapted = apply_adapters(masked.unsqueeze(0), adapters)
    if not torch.isfinite(adapted).any():
        raise ValueError(f"the adapters removed every allowed token at step {t}")
    tok = chooser(adapted, generator)
    glp = _chosen_proposal_logp(chooser, adapted, tok)   # 0 for greedy's point mass
    return int(tok[0]), glp[0]


def generate(lm, prompt, constraint=None, seed=None, max_new_tokens: int = 64,
             greedy: bool = False, adapters=None, fast_forward: bool = True,
             heal: bool = False, max_rollback: int | None = None,
             trace_allowed: int = 20) -> Generation:
    """Constrained decoding of one continuation of ``prompt`` (survey §3.5.1).

    ``constraint``: a `TokenIndex`, a regex, a JSON schema, or None (no structural constraint:
    plain decoding, or with ``heal=True`` only the healing constraint).  Masks are applied
    before ``adapters``.  With ``fast_forward`` forced tokens cost no pass of their own; with
    ``heal`` the prompt's last tokens are rolled back and the continuation must start with
    their text (`healing.heal_prompt`).
    Emits ``mask``, ``forced``, ``fast_forward`` and ``heal`` events.
    """
    index = as_index(constraint, lm)
    ids = lm.prompt_ids(prompt, max_new_tokens)
    prompt_text = prompt if isinstance(prompt, str) else lm.decode(ids)
    removed, first = b"", None
    if heal:
        ids, removed = heal_prompt(lm, ids, max_rollback)
        index = _healed_index(index, removed, lm) if removed else index
        first = healing_candidates(lm, removed) if removed else None
    allowed_at = _Allowed(index, first)
    if index is not None and index.distance[index.start] > max_new_tokens:
        raise ValueError(f"the constraint needs at least {index.distance[index.start]} tokens to "
                         f"finish, but max_new_tokens={max_new_tokens}")
    gen = make_generator(seed, lm.device)
    chooser = choose_greedy if greedy else choose_sample
    adapters = list(adapters or ())
    snap = lm.counter.snapshot()
    out, lps, glps, forced, states, pending = [], [], [], [], [], []
    end_lp = end_glp = None
    finish = "length"
    q = index.start if index is not None else None

    with source("constrained"):
        if heal:
            emit("heal", removed=removed.decode("utf-8", "replace"), kept=len(ids),
                 candidates=first[:trace_allowed] if first else [])
        state = lm.prefill([ids])
        logits = state.logits[0]

        def feed(run, first_index):
            """One pass over ``run`` (tokens out[first_index:...]); fills their log-probs."""
            nonlocal logits
            step_logits = lm.extend(state, run)
            lp = torch.log_softmax(step_logits.float(), -1)
            for j in range(len(run)):
                k = first_index + j + 1
                if k < len(lps) and lps[k] is None:
                    lps[k] = float(lp[j, out[k]])
            logits = step_logits[-1]
            if len(run) > 1:
                emit("fast_forward", t=first_index, tokens=list(run), passes_saved=len(run) - 1)

        for t in range(max_new_tokens):
            allowed = allowed_at.at(q, max_new_tokens - t, t)
            if allowed is not None and len(allowed) == 0:
                raise ValueError(f"no token is allowed at step {t} (state {q})")
            is_forced = fast_forward and allowed is not None and len(allowed) == 1
            if is_forced:
                tok, glp = int(allowed[0]), 0.0
                emit("forced", t=t, row=0, state=q, token=tok)
            else:
                if pending:
                    feed(pending, len(out) - len(pending))
                    pending = []
                tok, glp = _choose(logits, allowed, adapters, chooser, gen, t)
                if active():
                    emit("mask", t=t, row=0, state=q, token=tok,
                         n_allowed=logits.shape[-1] if allowed is None else len(allowed),
                         allowed=None if allowed is None else allowed[:trace_allowed])
            for a in adapters:
                if hasattr(a, "observe"):
                    a.observe(torch.tensor([tok]), None)
            if tok == lm.eos_token_id:
                finish, end_glp = "eos", glp
                break
            lps.append(None if pending else float(torch.log_softmax(logits.float(), -1)[tok]))
            glps.append(glp)
            out.append(tok)
            forced.append(is_forced)
            states.append(q)
            pending.append(tok)
            if index is not None:
                q = index.next_state(q, tok)
        if finish == "eos" and pending:  # a forced EOS: p_theta(EOS) needs the last logits
            feed(pending, len(out) - len(pending))
        elif len(pending) > 1:          # the last run's log-probabilities need one more pass
            feed(pending[:-1], len(out) - len(pending))
        if finish == "eos":
            end_lp = float(torch.log_softmax(logits.float(), -1)[lm.eos_token_id])
    cost = lm.counter.since(snap)
    baseline = 1 + len(out) - (finish == "length" and len(out) > 0)
    info = {"constraint": index.pattern if index is not None else None, "states": states,
            "forced": forced, "final_state": q, "fast_forward": fast_forward,
            "accepted": index is None or index.is_accepting(q),
            "passes_saved": baseline - cost.forward_passes}
    if heal:
        info["healed"] = {"removed": removed.decode("utf-8", "replace"),
                          "rolled_back": len(lm.prompt_ids(prompt)) - len(ids)}
    text = lm.decode(out)
    healed_text = removed.decode("utf-8", "replace")
    if heal and text.startswith(healed_text):
        text = text[len(healed_text):]
    return Generation.of(lm, prompt_text, ids, out, lps, finish, spent=cost, text=text, info=info,
                         end_logprob=end_lp, proposal_logprobs=glps, end_proposal_logprob=end_glp)


class ConstraintAdapter:
    """The constraint as an adapter for the loops of `workbench.decoding` (one state per row).

    ``decoding.sample(lm, prompt, adapters=[ConstraintAdapter(index)], seed=0)`` masks each
    row's logits to its state's allowed tokens; `observe` advances the states.  It has neither
    fast-forward nor the budget check of `generate`; make a fresh one per call.
    """

    def __init__(self, constraint, lm=None):
        self.index = as_index(constraint, lm)
        if self.index is None:
            raise ValueError("ConstraintAdapter needs a constraint")
        self.states, self.t = None, 0       # one automaton state per row; token time

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.states is None:
            self.states = [self.index.start] * logits.shape[0]
        out = logits.clone()
        for r, q in enumerate(self.states):
            if q is not None:
                m = self.index.mask(q, logits.shape[-1], logits.device)
                out[r] = out[r].masked_fill(~m, float("-inf"))
                emit("mask", t=self.t, row=r, state=q, n_allowed=int(m.sum()))
        return out

    def observe(self, tokens, adapted=None) -> None:
        self.t += 1
        for r, t in enumerate(torch.as_tensor(tokens).view(-1).tolist()):
            q = self.states[r]
            if q is not None:
                self.states[r] = None if t == self.index.eos else self.index.next_state(q, t)


def compare_healing(lm, prompt: str, max_new_tokens: int = 8, greedy: bool = True, seed=0,
                    constraint=None) -> dict:
    """Generate from ``prompt`` without and with token healing; the tokens of both.

    Returns ``{"prompt", "removed", "rolled_back", "without": {...}, "with": {...}}``; each
    side holds the prompt tokens the model saw, the generated tokens and the text after
    ``prompt``.
    """
    out = {"prompt": prompt}
    for name, heal in (("without", False), ("with", True)):
        g = generate(lm, prompt, constraint, seed=seed, max_new_tokens=max_new_tokens,
                     greedy=greedy, heal=heal)
        out[name] = {"prompt_tokens": token_strings(lm, g.prompt_ids),
                     "tokens": token_strings(lm, g.token_ids), "text": g.text,
                     "logprob": g.logprob, "generation": g}
        if heal:
            out["removed"] = g.info["healed"]["removed"]
            out["rolled_back"] = g.info["healed"]["rolled_back"]
    return out
