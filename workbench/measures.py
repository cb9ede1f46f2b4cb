"""Measurements for the token-level chapters (survey §2-§3.3).

- `position_logits`: the logits s_theta(. | y_<t, x) at every position of given continuations
  (teacher forcing, one batched forward pass per chunk).
- `sequence_logprob`: log g(y | x) of whole continuations under a token-level generator, i.e.
  under p_theta reshaped by sampling adapters: sum_t log softmax(q_t(s_theta))[y_t] (eqs. 11,
  13).  For ancestral sampling (no adapters) this is log p_theta(y | x).
- `distinct_n`: the share of distinct n-grams in a set of outputs (a diversity measure).
- `repeated_ngrams` / `loop_period`: the repetition trap of MAP decoding (§3.1) in one output:
  the share of its n-grams that repeat an earlier one, and whether it ends in a loop.
- `coin_flips` / `typical_set_mass`: the survey's coin example (§3.1) computed exactly: the most
  probable sequence of n flips of a biased coin versus the typical ones.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .decoding import _adapter_list, apply_adapters
from .validate import count


def _continuation_ids(lm, continuations) -> list:
    if isinstance(continuations, str) or (len(continuations) > 0
                                          and isinstance(continuations[0], (int, np.integer))):
        raise TypeError("continuations must be a list of texts or of token-id lists")
    return [lm.encode(c, bos=False) if isinstance(c, str) else [int(t) for t in c]
            for c in continuations]


@torch.no_grad()
def position_logits(lm, prompt, continuations, batch_size: int = 64) -> list:
    """For each continuation c (a text, tokenized on its own, or token ids), the (|c|, V) tensor
    of next-token logits s_theta(. | x, c_<t), t = 1..|c|: the distributions each token of c was
    chosen from.  Continuations are right-padded into batches of ``batch_size``; every forward
    pass goes through ``lm.forward`` and is counted."""
    p_ids = lm.prompt_ids(prompt)
    conts = _continuation_ids(lm, continuations)
    count("batch_size", batch_size)
    L0, out = len(p_ids), []
    for start in range(0, len(conts), batch_size):
        chunk = conts[start:start + batch_size]
        n = L0 + max(len(c) for c in chunk)
        ids = torch.full((len(chunk), n), lm.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), n), dtype=torch.long)
        for i, c in enumerate(chunk):
            row = p_ids + c
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, :len(row)] = 1
        logits, _ = lm.forward(ids.to(lm.device), mask.to(lm.device))
        for i, c in enumerate(chunk):
            out.append(logits[i, L0 - 1:L0 - 1 + len(c)].float().cpu())
    return out


def sequence_logprob(lm, prompt, continuations, adapters=None, batch_size: int = 64,
                     logits=None) -> np.ndarray:
    """log g(y | x) for each continuation y under the generator "sample through ``adapters``":
    sum_t log softmax(q_t(s_theta(. | y_<t, x)))[y_t]  (eq. 13; eq. 11 without adapters).

    Include the end-of-sequence token in y to score a complete output.  A token an adapter
    removed gives -inf: that generator can never produce y.  Stateful adapters (Mirostat) depend
    on the generator's own past draws and are refused.  ``logits``, the output of
    `position_logits` for the same continuations, saves the forward passes when the same
    outputs are scored under several generators.
    """
    ads = _adapter_list(adapters)
    if any(hasattr(a, "observe") for a in ads):
        raise TypeError("sequence_logprob needs stateless adapters (Mirostat is stateful)")
    conts = _continuation_ids(lm, continuations)
    if logits is None:
        logits = position_logits(lm, prompt, conts, batch_size)
    elif len(logits) != len(conts) or any(len(x) != len(c) for x, c in zip(logits, conts)):
        raise ValueError("logits must be position_logits(lm, prompt, continuations) for these "
                         "continuations")
    out = []
    for c, x in zip(conts, logits):
        if not c:
            out.append(0.0)
            continue
        lp = torch.log_softmax(apply_adapters(x, ads).double(), -1)
        out.append(float(lp.gather(1, torch.tensor(c).view(-1, 1)).sum()))
    return np.array(out)


def distinct_n(sequences, n: int = 2) -> float:
    """Distinct-n (Li et al., 2016): distinct n-grams / all n-grams, pooled over ``sequences``.

    A sequence is a list of tokens (ids, words...); a string is split into words.  1.0 means no
    n-gram repeats anywhere in the set; the value falls as outputs repeat each other.
    """
    count("n", n)
    grams = []
    for s in sequences:
        toks = _tokens(s)
        grams += [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _tokens(sequence) -> list:
    return sequence.split() if isinstance(sequence, str) else list(sequence)


def repeated_ngrams(sequence, n: int = 4) -> float:
    """rep-n (Welleck et al., 2020): the share of one sequence's n-grams that repeat an earlier
    n-gram of the same sequence, 1 - |distinct n-grams| / |n-grams|.  0.0 for a sequence with
    no repetition (or fewer than n tokens); it approaches 1 as the sequence loops.  A string is
    split into words."""
    count("n", n)
    toks = _tokens(sequence)
    grams = [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def loop_period(sequence, min_repeats: int = 3) -> int:
    """The shortest period p such that the sequence ends with a unit of p tokens repeated at
    least ``min_repeats`` times in a row (its last p * min_repeats tokens are periodic with
    period p): the output *ends in a loop*.  0 when it does not."""
    count("min_repeats", min_repeats, lo=2)
    toks = _tokens(sequence)
    for p in range(1, len(toks) // min_repeats + 1):
        tail = toks[len(toks) - p * min_repeats:]
        if all(tail[i] == tail[i - p] for i in range(p, len(tail))):
            return p
    return 0


def _check_coin(n, p):
    count("n", n)
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")


def coin_flips(n: int = 100, p: float = 0.51) -> dict:
    """Exact statistics of n flips of a coin with P(heads) = p (survey §3.1, Dieleman 2020).

    Every sequence with k heads has the same probability p^k (1-p)^(n-k); there are C(n, k) of
    them.  Returns, for k = 0..n, ``log_p_sequence`` (one such sequence) and ``log_p_count``
    (all of them together, the binomial); the entropy H (nats) of the n flips, which is minus
    the mean of log p(Y) for a random sequence Y, and ``logp_std``, its standard deviation;
    the most probable *sequence* (``mode_heads``, ``mode_logp``) and the probability that a
    random sequence is at least as probable as it (``p_as_likely_as_mode``); the most probable
    *number of heads* (``likeliest_count``) and its probability.
    """
    _check_coin(n, p)
    k = np.arange(n + 1)
    log_seq = k * math.log(p) + (n - k) * math.log1p(-p)
    log_comb = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                         for i in k])
    log_count = log_comb + log_seq
    h = -(p * math.log(p) + (1 - p) * math.log1p(-p))
    mode_k = int(np.argmax(log_seq))
    prob = np.exp(log_count)
    std = math.sqrt(float((prob * (log_seq + n * h) ** 2).sum()))
    at_least = float(prob[log_seq >= log_seq[mode_k] - 1e-9].sum())
    return {"n": int(n), "p": float(p), "k": k.tolist(), "log_p_sequence": log_seq.tolist(),
            "log_p_count": log_count.tolist(), "entropy": n * h, "logp_std": std,
            "mode_heads": mode_k, "mode_logp": float(log_seq[mode_k]),
            "p_as_likely_as_mode": at_least,
            "likeliest_count": int(np.argmax(log_count)),
            "p_likeliest_count": float(prob.max())}


def typical_set_mass(n: int, p: float, eps: float) -> float:
    """P(the n flips fall in the typical set): sequences whose log-probability per flip is
    within ``eps`` nats of minus the entropy per flip, | -log p(y) / n - H / n | <= eps."""
    c = coin_flips(n, p)
    h = c["entropy"] / n
    lp = np.array(c["log_p_sequence"])
    inside = np.abs(-lp / n - h) <= eps
    return float(np.exp(np.array(c["log_p_count"])[inside]).sum())


__all__ = ["position_logits", "sequence_logprob", "distinct_n", "repeated_ngrams",
           "loop_period", "coin_flips", "typical_set_mass"]
