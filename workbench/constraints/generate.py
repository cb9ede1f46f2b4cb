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
from ..decoding import Generation, _adapter_list, choose_greedy, choose_sample, decode
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


def generate(lm, prompt, constraint=None, seed=None, max_new_tokens: int = 64,
             greedy: bool = False, adapters=None, fast_forward: bool = True,
             heal: bool = False, max_rollback: int | None = None,
             trace_allowed: int = 20) -> Generation:
    """Constrained decoding of one continuation of ``prompt`` (survey §3.5.1).

    ``constraint``: a `TokenIndex`, a regex, a JSON schema, or None (no structural constraint:
    plain decoding, or with ``heal=True`` only the healing constraint).  Masks are applied
    before ``adapters``.  With ``fast_forward`` forced tokens cost no pass of their own; with
    ``heal`` the prompt's last tokens are rolled back and the continuation must start with
    their text (`healing.heal_prompt`).  The loop is `decoding.decode`'s, with the constraint
    as its first adapter.  Emits ``mask``, ``forced``, ``fast_forward`` and ``heal`` events.
    """
    index = as_index(constraint, lm)
    ids = lm.prompt_ids(prompt, max_new_tokens)
    prompt_text = prompt if isinstance(prompt, str) else lm.decode(ids)
    removed, first = b"", None
    if heal:
        ids, removed = heal_prompt(lm, ids, max_rollback)
        index = _healed_index(index, removed, lm) if removed else index
        first = healing_candidates(lm, removed) if removed else None
    if index is not None and index.distance[index.start] > max_new_tokens:
        raise ValueError(f"the constraint needs at least {index.distance[index.start]} tokens to "
                         f"finish, but max_new_tokens={max_new_tokens}")
    mask = ConstraintAdapter(index, budget=max_new_tokens, first_ids=first, eos=lm.eos_token_id,
                             trace_allowed=trace_allowed)
    with source("constrained"):
        if heal:
            emit("heal", removed=removed.decode("utf-8", "replace"), kept=len(ids),
                 candidates=first[:trace_allowed] if first else [])
        snap = lm.counter.snapshot()
        state = lm.prefill([ids])
        prefill = lm.counter.since(snap)
        g = decode(lm, state, choose_greedy if greedy else choose_sample, max_new_tokens,
                   [mask] + _adapter_list(adapters), generator=make_generator(seed, lm.device),
                   prompts=[prompt_text], source="constrained", fast_forward=fast_forward)[0]
    g.cost = g.cost + prefill
    n = len(g.token_ids)
    q = mask.states[0] if mask.states else (index.start if index is not None else None)
    baseline = 1 + n - (g.finish_reason == "length" and n > 0)
    g.info = {"constraint": index.pattern if index is not None else None,
              "states": mask.states_seen[0] if mask.states_seen else [],
              "forced": mask.forced_seen[0] if mask.forced_seen else [],
              "final_state": q, "fast_forward": fast_forward,
              "accepted": index is None or index.is_accepting(q),
              "passes_saved": baseline - g.cost.forward_passes}
    if heal:
        g.info["healed"] = {"removed": removed.decode("utf-8", "replace"),
                            "rolled_back": len(lm.prompt_ids(prompt)) - len(ids)}
        healed_text = removed.decode("utf-8", "replace")
        if g.text.startswith(healed_text):
            g.text = g.text[len(healed_text):]
    return g


class ConstraintAdapter:
    """The constraint as an adapter of `decoding.decode` (one automaton state per row).

    ``decoding.sample(lm, prompt, adapters=[ConstraintAdapter(index)], seed=0)`` masks each
    row's logits to its state's allowed tokens; `observe` advances the states and records a
    ``mask`` event (a ``forced`` one for a token written without a choice).  With ``budget``
    (the run's max_new_tokens) tokens that could not finish within it are masked too, and
    `forced` names the one token a state allows, which the loop appends without a model pass
    (fast-forward).  ``first_ids`` limits the first token (token healing).  Make a fresh one
    per call.
    """

    def __init__(self, constraint, lm=None, budget: int | None = None, first_ids=None,
                 eos: int | None = None, trace_allowed: int = 20):
        self.index = as_index(constraint, lm)
        if self.index is None and first_ids is None and budget is None:
            raise ValueError("ConstraintAdapter needs a constraint")
        self.allowed_at = _Allowed(self.index, first_ids)
        self.budget, self.trace_allowed = budget, trace_allowed
        self.eos = self.index.eos if self.index is not None else eos
        self.states, self.live, self.t = None, None, 0   # automaton state per row; token time
        self.shown, self.width = {}, None
        self.states_seen, self.forced_seen = None, None  # per row, per token

    def _start(self, B):
        if self.states is None:
            start = self.index.start if self.index is not None else None
            self.states, self.live = [start] * B, [True] * B
            self.states_seen, self.forced_seen = [[] for _ in range(B)], [[] for _ in range(B)]

    def _allowed(self, q):
        """Ids allowed in state ``q`` within the budget (None: any token)."""
        return self.allowed_at.at(q, self.budget - self.t, self.t)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        self._start(logits.shape[0])
        out, self.shown, self.width = logits.clone(), {}, logits.shape[-1]
        for r, q in enumerate(self.states):
            if not self.live[r]:
                continue
            if self.budget is None:
                keep = self.index.mask(q, logits.shape[-1], logits.device)
            else:
                allowed = self.shown[r] = self._allowed(q)
                if allowed is None:
                    continue
                if len(allowed) == 0:
                    raise ValueError(f"no token is allowed at step {self.t} (state {q})")
                keep = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
                keep[torch.as_tensor(allowed, dtype=torch.long, device=logits.device)] = True
            out[r] = logits[r].masked_fill(~keep, float("-inf"))
        return out

    def forced(self):
        """The one token allowed next on a single live row (with a budget), else None."""
        self._start(1)
        if self.budget is None or not self.live[0]:
            return None
        allowed = self._allowed(self.states[0])
        return int(allowed[0]) if allowed is not None and len(allowed) == 1 else None

    def observe(self, tokens, adapted=None) -> None:
        toks = torch.as_tensor(tokens).view(-1).tolist()
        self._start(len(toks))
        for r, tok in enumerate(toks):
            q = self.states[r]
            if not self.live[r]:
                continue
            if active():
                self._emit(r, q, tok, forced=adapted is None)
            if tok == self.eos:
                self.live[r] = False
                continue
            self.states_seen[r].append(q)
            self.forced_seen[r].append(adapted is None)
            if self.index is not None:
                self.states[r] = self.index.next_state(q, tok)
        self.t += 1

    def _emit(self, r, q, tok, forced) -> None:
        if forced:
            emit("forced", t=self.t, row=r, state=q, token=tok)
            return
        if self.budget is None:
            emit("mask", t=self.t, row=r, state=q, token=tok,
                 n_allowed=int(self.index.mask(q, self.width).sum()))
            return
        allowed = self.shown.get(r)
        emit("mask", t=self.t, row=r, state=q, token=tok,
             n_allowed=self.width if allowed is None else len(allowed),
             allowed=None if allowed is None else allowed[:self.trace_allowed])


def compare_healing(lm, prompt: str, max_new_tokens: int = 8, greedy: bool = True, seed=0,
                    constraint=None) -> dict:
    """Generate from ``prompt`` without and with token healing; the tokens of both.

    Returns ``{"prompt", "removed", "rolled_back", "without": {...}, "with": {...}}``; each
    side holds the prompt tokens the model saw, the generated tokens and the text after
    ``prompt``.  Emits one ``healing_compare`` event with all of it but the generations.
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
    if active():
        with source("compare_healing"):
            emit("healing_compare", prompt=prompt, removed=out["removed"],
                 rolled_back=out["rolled_back"],
                 **{side: {k: out[side][k] for k in ("prompt_tokens", "tokens", "text")}
                    for side in ("without", "with")})
    return out
