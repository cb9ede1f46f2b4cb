"""Controlled generators: several models (or a scorer) in lock-step, one KV cache each."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from ..budget import Cost
from ..decoding import _adapter_list, choose_greedy, choose_sample, decode, is_batch
from ..models import CACHE_ARG, LanguageModel, cache_kwargs
from ..rng import make_generator
from ..trace import active
from .rules import (NEG_INF, _count, _label, _strength, contrastive_logits, dexperts_logits,
                    fudge_logits, poe_logits, rad_logits, top_candidates)


# -- the lock-step loop ------------------------------------------------------------------------
def _top(row, k=8):
    lp = torch.log_softmax(row.float(), -1)
    v, i = lp.topk(min(k, lp.shape[-1]))
    return [[int(a), float(b)] for a, b in zip(i, v) if b > NEG_INF]


def _check_models(models):
    lm = models[0]
    for m in models[1:]:
        if m.vocab_size != lm.vocab_size or len(m.tokenizer) != len(lm.tokenizer):
            raise ValueError(f"models must share one tokenizer: {m.name!r} has vocabulary "
                             f"{m.vocab_size}, {lm.name!r} has {lm.vocab_size}")


def _start(models, roles, prompts, n, max_new_tokens):
    """Validate, prefill every distinct model once; ``(unique (model, role) pairs, states by
    model id, counters by counter id)``."""
    if len(models) != len(roles):
        raise ValueError("give one role name per model")
    _check_models(models)
    for m in models:
        for p in prompts:
            m.prompt_ids(p, max_new_tokens)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    unique = []
    for m, r in zip(models, roles):
        if all(m is not u for u, _ in unique):
            unique.append((m, r))
    counters = {id(m.counter): (m.counter, m.counter.snapshot(), r) for m, r in unique}
    states = {id(m): m.prefill(prompts, n=n) for m, _ in unique}
    return unique, states, counters


class _Lockstep:
    """The other models of a lock-step run, as a stateful adapter of `decoding.decode`.

    Called with the target's logits, it advances its models by the last chosen token (EOS rows
    by padding, as the loop pads the target) and returns ``combine``'s logits for live rows
    (the target's for finished ones); it reports each step's components and rule fields to the
    trace, log q of every chosen token, and the cost of the models and scorer it ran."""

    def __init__(self, lm, order, roles, combine, others, external):
        self.lm, self.order, self.roles, self.combine = lm, order, roles, combine
        self.others = others                    # (model, its DecodeState) but the target
        mine = [m.counter for m, _ in self.others if m.counter is not lm.counter]
        self.snaps = {id(c): (c, c.snapshot()) for c in mine}
        self.external = external
        B = order[0].batch_size
        self.live, self.pending, self.extras = [True] * B, None, None
        self.q = [[] for _ in range(B)]
        self.scored = Cost()

    def __call__(self, logits):
        if self.pending is not None:
            for m, st in self.others:
                m.advance(st, self.pending)
        combined, self.extras, cost = self.combine(self.order, self.live)
        self.scored = self.scored + (cost or Cost())
        keep = torch.tensor(self.live, device=combined.device).view(-1, 1)
        return torch.where(keep, combined, logits)

    def observe(self, tokens, adapted) -> None:
        lq = torch.log_softmax(adapted.float(), -1).gather(1, tokens.view(-1, 1)).view(-1)
        toks = tokens.tolist()
        for r, live in enumerate(self.live):
            if live:
                self.q[r].append(float(lq[r]))
                self.live[r] = toks[r] != self.lm.eos_token_id
        self.pending = torch.tensor([x if ok else self.lm.pad_token_id
                                     for x, ok in zip(toks, self.live)], device=tokens.device)

    def trace_fields(self, r) -> dict:
        parts = {role: _top(st.logits[r]) for role, st in zip(self.roles, self.order)
                 if role not in self.external}
        return {"components": parts, **((self.extras or [{}] * len(self.live))[r] or {})}

    def spent(self) -> Cost:
        """What the other models computed since the loop began, and the scorer's bill."""
        return sum((c.since(snap) for c, snap in self.snaps.values()), self.scored)


def lockstep(models, roles, combine, prompt, seed=None, n: int | None = None,
             max_new_tokens: int = 64, adapters=None, greedy: bool = False,
             name: str = "control", external=()):
    """Decode with several models in lock-step; ``models[0]`` is the target p_theta.

    Every model keeps its own KV cache (a `DecodeState`); at each step ``combine(states, live)``
    (``states`` in the order of ``models``, ``live[r]`` whether row r is still generating)
    returns ``(logits, extras, cost)``: the combined next-token logits (B, V), per-row trace
    fields (or None) and the cost of any scorer it called outside these models (or None).
    ``adapters`` then reshape the logits; the token is sampled (the argmax with ``greedy``) and
    fed to every model.  The loop is `decoding.decode`'s, with the other models run by a
    stateful adapter.  The same model object given twice runs once.  The computed tokens of
    the roles in ``external`` (scorers) are booked as external tokens too (Table 5).
    """
    lm = models[0]
    k = 1 if n is None else _count("n", n)
    prompts = list(prompt) if is_batch(prompt) else [prompt]
    unique, states, counters = _start(models, roles, prompts, k, max_new_tokens)
    prefill = sum((c.since(snap) for c, snap, _ in counters.values()), Cost())
    order = [states[id(m)] for m in models]
    others = [(m, states[id(m)]) for m, _ in unique[1:]]
    combiner = _Lockstep(lm, order, roles, combine, others, external)
    chooser = choose_greedy if greedy else choose_sample
    out = decode(lm, order[0], chooser, max_new_tokens, [combiner] + _adapter_list(adapters),
                 generator=make_generator(seed, lm.device),
                 prompts=[p for p in prompts for _ in range(k)], source=name, trace_top=8)
    costs = {r: c.since(s) for c, s, r in counters.values()}
    for r in external:
        if r in costs:
            costs[r].external_tokens += costs[r].computed_tokens
            out[0].cost.external_tokens += costs[r].computed_tokens
    if combiner.scored != Cost():
        costs["scorer"] = combiner.scored
    out[0].cost = out[0].cost + prefill
    for g, q in zip(out, combiner.q):
        g.info = {"method": name, "q_logprobs": q[:len(g.token_ids)], "costs": costs}
    groups = [out[i:i + k] for i in range(0, len(out), k)]
    groups = [g[0] for g in groups] if n is None else groups
    return groups if is_batch(prompt) else groups[0]


def _logit_rule(rule):
    return lambda states, live: (rule(*[s.logits for s in states]), None, None)


# -- generators ---------------------------------------------------------------------------
def product_of_experts(lm, other, prompt, alpha: float = 1.0, **kw):
    """Sample from the token-level product of experts p_theta p_beta^alpha (eq. 48; eq. 22 with
    alpha = 1).  ``kw``: seed, n, max_new_tokens, adapters, greedy (see `lockstep`)."""
    alpha = _strength("alpha", alpha)
    return lockstep([lm, other], ("target", "other"),
                    _logit_rule(lambda s, o: poe_logits(s, o, alpha)), prompt,
                    name="product_of_experts", **kw)


def dexperts(lm, expert, anti_expert, prompt, alpha: float = 1.0, **kw):
    """DExperts: sample from p_theta (p+ / p-)^alpha, logits s_theta + alpha (s+ - s-), with an
    expert and an anti-expert of the attribute (a product of experts, eq. 48)."""
    alpha = _strength("alpha", alpha)
    return lockstep([lm, expert, anti_expert], ("target", "expert", "anti_expert"),
                    _logit_rule(lambda s, e, a: dexperts_logits(s, e, a, alpha)), prompt,
                    name="dexperts", **kw)


def proxy_tuning(lm, tuned, untuned, prompt, alpha: float = 1.0, **kw):
    """Proxy tuning: the DExperts rule with a small fine-tuned model and its untuned base,
    s_theta + alpha (s_tuned - s_untuned): the target moves as fine-tuning moved the small one."""
    alpha = _strength("alpha", alpha)
    return lockstep([lm, tuned, untuned], ("target", "tuned", "untuned"),
                    _logit_rule(lambda s, e, a: dexperts_logits(s, e, a, alpha)), prompt,
                    name="proxy_tuning", **kw)


def contrastive(lm, amateur, prompt, alpha: float = 0.1, beta: float = 1.0, **kw):
    """Contrastive decoding (eq. 49): choose by log p_theta - beta log p_amateur among the
    tokens with p_theta >= alpha max p_theta.  Li et al. search greedily (``greedy=True``);
    by default the score's softmax is sampled."""
    alpha = _strength("alpha", alpha, 0.0, 1.0)
    beta = _strength("beta", beta, 0.0)
    return lockstep([lm, amateur], ("expert", "amateur"),
                    _logit_rule(lambda s, a: contrastive_logits(s, a, alpha, beta)), prompt,
                    name="contrastive", **kw)


# -- classifier and reward guidance ------------------------------------------------------------
class _ReturnsCache(torch.nn.Module):
    """A causal token classifier that hands back its KV cache, so `LanguageModel` can run it."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.config = model, model.config

    def forward(self, input_ids, **kw):
        from transformers import DynamicCache
        cache = kw.pop(CACHE_ARG, None)
        cache = DynamicCache(config=self.config) if cache is None else cache
        out = self.inner(input_ids=input_ids, **cache_kwargs(cache), **kw)
        return SimpleNamespace(logits=out.logits, **cache_kwargs(cache))


@torch.no_grad()
def _decodes_with_a_cache(model) -> bool:
    """Whether ``model`` is causal and runs incrementally with a KV cache: its outputs on three
    tokens equal those of two tokens, then the third given the cache (a bidirectional encoder
    sees the third token from the first positions and fails; one that refuses a cache too).
    Probed once per model: the answer is kept on it."""
    known = getattr(model, "_wb_decodes_with_a_cache", None)
    if known is None:
        known = _probe_cache(model)
        model._wb_decodes_with_a_cache = known
    return known


@torch.no_grad()
def _probe_cache(model) -> bool:
    from transformers import DynamicCache
    device = next(model.parameters()).device
    ids = torch.arange(1, 4, device=device).remainder(model.config.vocab_size)[None]
    cache = DynamicCache(config=model.config)
    try:
        head = model(input_ids=ids[:, :2], use_cache=True, **cache_kwargs(cache)).logits
        tail = model(input_ids=ids[:, 2:], use_cache=True, **cache_kwargs(cache)).logits
    except (TypeError, ValueError):
        return False
    full = model(input_ids=ids).logits
    return torch.allclose(torch.cat([head, tail], 1).float(), full.float(), atol=1e-4)


def scorer_model(scorer, lm):
    """A `TokenScorer` as a `LanguageModel` whose logits (B, 1) are the classifier's, to run in
    lock-step with a KV cache; None when it cannot (not causal, or no cache; or
    another vocabulary)."""
    if not hasattr(scorer, "position_probs") or \
            scorer.tokenizer.get_vocab() != lm.tokenizer.get_vocab() or \
            not _decodes_with_a_cache(scorer.model):
        return None
    return LanguageModel(_ReturnsCache(scorer.model), scorer.tokenizer, name=scorer.name)


def candidate_scorer(scorer, lm, batch_size: int = 1024):
    """``seqs -> (values, Cost)`` re-scoring whole id sequences: a `TokenScorer`'s probability
    at the last position, or a callable on texts (``texts -> floats``, prompt included)."""
    if hasattr(scorer, "position_probs"):
        same = scorer.tokenizer.get_vocab() == lm.tokenizer.get_vocab()

        def score(seqs):
            rows = seqs if same else [lm.decode(s) for s in seqs]
            vals = [p[-1] for p in scorer.position_probs(rows, batch_size=batch_size)]
            n = sum(len(s) for s in (rows if same else [scorer.encode(r) for r in rows]))
            return vals, Cost(external_tokens=n, computed_tokens=n,
                              forward_passes=-(-len(seqs) // batch_size))
    elif callable(scorer):
        def score(seqs):
            vals = [float(v) for v in scorer([lm.decode(s) for s in seqs])]
            if len(vals) != len(seqs):
                raise ValueError(f"the scorer returned {len(vals)} values for {len(seqs)} texts")
            return vals, Cost(external_tokens=sum(len(s) for s in seqs))
    else:
        raise TypeError(f"scorer must be a TokenScorer or a callable texts -> floats, "
                        f"got {type(scorer).__name__}")
    return score


def _guided(lm, scorer, role, k, transform, rule, cache_scorer, prompt, name, kw):
    """Run ``rule(logits, candidates, transform(values))`` where values score each live row's
    top-k candidates v: the scorer's value of prefix + v (of the prefix itself for EOS).

    A causal `TokenScorer` runs in lock-step with its own KV cache: one pass over the k
    candidates per step (B k positions).  Otherwise (a callable, a non-causal classifier, or
    ``cache_scorer=False``) every candidate sequence is re-scored in full (B k t positions).
    """
    model = scorer_model(scorer, lm) if cache_scorer else None
    score = None if model is not None else candidate_scorer(scorer, lm)
    eos = lm.eos_token_id

    def combine(states, live):
        s = states[0].logits
        cand = top_candidates(s, k)
        rows = [r for r in range(s.shape[0]) if live[r]]
        if model is not None:
            state = states[1]
            branch = state.select([r for r in rows for _ in range(cand.shape[1])])
            model.advance(branch, cand[rows].reshape(-1))
            vals = torch.sigmoid(branch.logits[:, 0].float()).view(len(rows), -1)
            here = torch.sigmoid(state.logits[rows, 0].float()).view(-1, 1)
            vals, cost = torch.where(cand[rows] == eos, here, vals), None
        else:
            ids = states[0].ids
            vals, cost = score([ids[r] + ([c] if c != eos else [])
                                for r in rows for c in cand[r].tolist()])
            vals = torch.tensor(vals).view(len(rows), -1)
        values = torch.zeros(cand.shape, dtype=s.dtype, device=s.device)
        values[rows] = transform(vals.to(s.device, s.dtype))
        extras = None
        if active():
            extras = [{"candidates": [[int(c), float(v)] for c, v in zip(cand[r], values[r])]}
                      for r in range(s.shape[0])]
        return rule(s, cand, values), extras, cost

    models, roles = ([lm, model], ("target", role)) if model is not None else ([lm], ("target",))
    return lockstep(models, roles, combine, prompt, name=name, external=(role,), **kw)


def fudge(lm, classifier, prompt, beta: float = 1.0, k: int = 20, label: int = 1,
          cache_scorer: bool = True, **kw):
    """FUDGE-style classifier guidance (eq. 16): at each step score the k most probable next
    tokens v with a prefix classifier p(a | x, y_<t o v) in one batch and sample from
    q(v) ∝ p_theta(v) p(a | ...)^beta over them.

    ``classifier``: a `TokenScorer` (its probability at the last position; the text ending here
    for EOS) or a callable ``texts -> probabilities``; ``label=-1`` uses 1 - p, the opposite of
    a binary attribute.  beta = 0 is top-k sampling from p_theta.  A causal `TokenScorer` runs
    in lock-step with its own KV cache (``cache_scorer=False`` re-scores every candidate in full,
    same values, k t positions per row and step instead of k).
    """
    beta = _strength("beta", beta, 0.0)
    k = _count("k", k)
    sign = _label(label)
    flip = (lambda p: p) if sign == 1 else (lambda p: 1 - p)
    return _guided(lm, classifier, "classifier", k, flip,
                   lambda s, cand, p: fudge_logits(s, cand, p, beta), cache_scorer, prompt,
                   "fudge", kw)


def reward_augmented(lm, reward, prompt, beta: float = 1.0, k: int = 20,
                     cache_scorer: bool = True, **kw):
    """Reward-augmented decoding (eq. 21): sample from softmax(s^{1:k} + beta r^{1:k}), r the
    reward of the partial sequence y_<t o v for each of the top-k tokens v, all k in one batch.

    ``reward``: a `TokenScorer` (r = its probability at the last position) or any callable
    ``texts -> floats`` on prompt + continuation.  beta < 0 steers away from the reward;
    beta = 0 is top-k sampling from p_theta.  ``cache_scorer`` as in `fudge`.
    """
    beta = _strength("beta", beta)
    k = _count("k", k)
    return _guided(lm, reward, "reward", k, lambda r: r,
                   lambda s, cand, r: rad_logits(s, cand, r, beta), cache_scorer, prompt,
                   "reward_augmented", kw)
