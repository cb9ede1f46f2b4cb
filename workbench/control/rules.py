"""Controlled-generation rules (survey §3.4, §5.1): pure functions of next-token logits.

Each returns logits whose softmax is the combined distribution: equal to the survey's formula up
to a constant per row, so softmax and argmax are exactly the formula's.  With the other model's
logits bound (``functools.partial``), a rule is an adapter: logits in, logits out.
"""
from __future__ import annotations

import math

import torch

from ..validate import count, number

NEG_INF = -float("inf")


# -- validation ---------------------------------------------------------------------------
def _strength(name, value, lo=-math.inf, hi=math.inf):
    return number(name, value, lo, hi)


_count = count


def _label(label):
    if label not in (1, -1) or isinstance(label, bool):
        raise ValueError(f"label must be +1 (the classifier's attribute) or -1 (its opposite), "
                         f"got {label!r}")
    return label


# -- rules: logits in, logits out ------------------------------------------------------------
def poe_logits(logits, other_logits, alpha: float = 1.0):
    """Token-level product of experts (eq. 48; eq. 22 is alpha = 1):
    p'(y_t) ∝ p_theta(y_t) p_beta(y_t)^alpha, i.e. logits s_theta + alpha s_beta."""
    return logits + _strength("alpha", alpha) * other_logits


def dexperts_logits(logits, expert_logits, anti_logits, alpha: float = 1.0):
    """DExperts (Liu et al., 2021a) and proxy tuning (Liu et al., 2024a), a product of experts
    (eq. 48) with the ratio of an expert and an anti-expert:
    q ∝ p_theta (p+ / p-)^alpha, i.e. logits s_theta + alpha (s+ - s-)."""
    return logits + _strength("alpha", alpha) * (expert_logits - anti_logits)


def contrastive_logits(expert_logits, amateur_logits, alpha: float = 0.1, beta: float = 1.0):
    """Contrastive decoding (Li et al., 2023a; eq. 49): the score
    log p_theta(y_t) - beta log p'_theta(y_t) on the plausible tokens
    V_head = {v : p_theta(v) >= alpha max_w p_theta(w)}, -inf elsewhere.

    beta = 1 is eq. 49; beta = 0 leaves the truncated expert; alpha = 0 keeps every token.
    """
    alpha = _strength("alpha", alpha, 0.0, 1.0)
    beta = _strength("beta", beta, 0.0)
    p = torch.softmax(expert_logits.float(), -1)
    plausible = p >= alpha * p.max(-1, keepdim=True).values
    score = expert_logits - beta * amateur_logits
    return score.masked_fill(~plausible, NEG_INF)


def top_candidates(logits, k: int):
    """The k most probable next tokens of each row, shape (B, k)."""
    return torch.topk(logits, min(_count("k", k), logits.shape[-1]), dim=-1).indices


def _on_candidates(logits, candidates, values):
    out = torch.full_like(logits, NEG_INF)
    return out.scatter(-1, candidates, logits.gather(-1, candidates) + values)


def fudge_logits(logits, candidates, attribute_probs, beta: float = 1.0):
    """FUDGE (Yang & Klein, 2021), eq. 16 one token at a time: on the top-k candidates v,
    q(v) ∝ p_theta(v | y_<t) p(a | y_<t, v)^beta with a prefix classifier; 0 elsewhere."""
    beta = _strength("beta", beta, 0.0)
    return _on_candidates(logits, candidates, beta * torch.log(attribute_probs.clamp_min(1e-30)))


def rad_logits(logits, candidates, rewards, beta: float = 1.0):
    """Reward-augmented decoding (Deng & Raffel, 2023), eq. 21:
    y_t ~ softmax(s_theta^{1:k} + beta r^{1:k}) on the top-k tokens, r the reward of y_<t o v."""
    return _on_candidates(logits, candidates, _strength("beta", beta) * rewards)
