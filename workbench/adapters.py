"""Sampling adapters q_t (survey §3.3, eq. 13, Table 2): logits in, logits out.

An adapter is a function ``f(logits, **params)`` over logits of shape ``(..., V)``.  It returns new
logits (the input is never modified) with ``-inf`` for every token it removes; sampling then draws
from softmax of the result.  Where Hugging Face has a processor of the same name the result is
*identical* to it, ties, ``-inf`` entries and ``min_tokens_to_keep`` included.

Configure an adapter with `functools.partial` and compose several with a list (applied in order)
or `chain`::

    from functools import partial
    from workbench import adapters, decoding
    decoding.sample(lm, "Story:", seed=0, adapters=[partial(adapters.top_k, k=20),
                                                    partial(adapters.temperature, tau=0.7)])
    q = adapters.chain(partial(adapters.top_p, p=0.9), adapters.Mirostat(tau=3.0))
    q(logits)

Stateful adapters (`Mirostat`) are objects with ``__call__(logits)`` and ``observe(tokens,
adapted_logits)``; the decoding loop calls ``observe`` after every step.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .validate import count, number

NEG_INF = -float("inf")


# -- validation ---------------------------------------------------------------------------
def _number(name, value):
    return number(name, value, finite=False)


def _interval(name, value, lo, hi, lo_open, hi_open):
    v = _number(name, value)
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}"
                         f"{')' if hi_open else ']'}, got {value}")
    return v


_count = count


def _rows(logits):
    """``(..., V)`` -> ``(N, V)`` view and a function restoring the shape."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() == 0:
        raise ValueError("logits must have a vocabulary dimension")
    shape = logits.shape
    return logits.reshape(-1, shape[-1]), (lambda x: x.reshape(shape))


def _keep_top(remove, scores, n):
    """Never remove the ``n`` highest-scoring tokens: ``remove & (score < n-th best)``."""
    n = min(n, scores.shape[-1])
    return remove & (scores < torch.topk(scores, n)[0][..., -1, None])


# -- Table 2 adapters ---------------------------------------------------------------------
def temperature(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Temperature (eq. 14): q_t ∝ exp(s_theta / tau).

    tau -> 0 approaches greedy decoding, tau = 1 is ancestral sampling, tau > 1 flattens the
    distribution towards uniform.
    """
    tau = _number("tau", tau)
    if not (0 < tau < math.inf):
        raise ValueError(f"tau must be > 0 and finite, got {tau}")
    return logits / tau


def top_k(logits: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Top-k truncation (Fan et al., 2018; Table 2, eq. 13): keep the k most probable tokens.

    Tokens tied with the k-th logit are all kept.
    """
    k = max(_count("k", k), _count("min_tokens_to_keep", min_tokens_to_keep))
    x, back = _rows(logits)
    k = min(k, x.shape[-1])
    return back(x.masked_fill(x < torch.topk(x, k)[0][..., -1, None], NEG_INF))


def top_p(logits: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus truncation (Holtzman et al., 2020; Table 2, eq. 13).

    Keeps the smallest set of most probable tokens whose total probability is >= p: sorting
    ascending, a token is removed while the cumulative probability up to it is <= 1 - p, so the
    token that crosses the threshold is kept.
    """
    p = _interval("p", p, 0.0, 1.0, True, False)
    n = _count("min_tokens_to_keep", min_tokens_to_keep)
    x, back = _rows(logits)
    sorted_logits, order = torch.sort(x, descending=False)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cum <= (1 - p)
    remove_sorted[..., -n:] = False
    remove = remove_sorted.scatter(1, order, remove_sorted)
    return back(x.masked_fill(remove, NEG_INF))


def min_p(logits: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Min-p truncation (Nguyen et al., 2024): keep tokens with prob >= p * max prob (eq. 13)."""
    p = _interval("p", p, 0.0, 1.0, False, False)
    n = _count("min_tokens_to_keep", min_tokens_to_keep)
    x, back = _rows(logits)
    probs = torch.softmax(x, dim=-1)
    remove = probs < p * probs.amax(dim=-1, keepdim=True)
    remove.scatter_(-1, torch.topk(probs, min(n, probs.shape[-1]), dim=-1).indices, False)
    return back(x.masked_fill(remove, NEG_INF))


def typical(logits: torch.Tensor, mass: float = 0.9, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Locally typical truncation (Meister et al., 2023b; Table 2 "Truncation (entropy)").

    Ranks tokens by |-log p(v) - H(p)|, the distance of their surprise from the entropy, and keeps
    the closest ones until their total probability reaches ``mass``.
    """
    mass = _interval("mass", mass, 0.0, 1.0, True, True)
    n = _count("min_tokens_to_keep", min_tokens_to_keep)
    x, back = _rows(logits)
    logp = torch.nn.functional.log_softmax(x, dim=-1)
    ent = -(logp * torch.exp(logp)).nansum(-1, keepdim=True)
    dist = torch.abs(-logp - ent)
    sorted_dist, order = torch.sort(dist, descending=False)
    cum = x.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
    last = (cum < mass).sum(dim=1).clamp_(max=sorted_dist.shape[-1] - 1)
    remove_sorted = sorted_dist > sorted_dist.gather(1, last.view(-1, 1))
    remove_sorted[..., :n] = False
    remove = remove_sorted.scatter(1, order, remove_sorted)
    return back(x.masked_fill(remove, NEG_INF))


def epsilon(logits: torch.Tensor, eps: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Epsilon truncation (Hewitt et al., 2022; Table 2 "Truncation (probability)").

    Keeps tokens with probability >= eps (and at least the ``min_tokens_to_keep`` best).
    """
    eps = _interval("eps", eps, 0.0, 1.0, True, True)
    n = _count("min_tokens_to_keep", min_tokens_to_keep)
    x, back = _rows(logits)
    remove = _keep_top(x.softmax(dim=-1) < eps, x, n)
    return back(x.masked_fill(remove, NEG_INF))


def eta(logits: torch.Tensor, eps: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Eta truncation (Hewitt et al., 2022; Table 2 "Truncation (prob. and entropy)").

    Keeps tokens with probability >= eta = min(eps, sqrt(eps) * exp(-H(p))): the cut-off falls
    when the distribution is spread out (high entropy).
    """
    eps = _interval("eps", eps, 0.0, 1.0, True, True)
    n = _count("min_tokens_to_keep", min_tokens_to_keep)
    x, back = _rows(logits)
    e = torch.tensor(eps, device=x.device)
    ent = torch.distributions.Categorical(logits=x).entropy()
    cut = torch.min(e, torch.sqrt(e) * torch.exp(-ent))[..., None]
    remove = _keep_top(x.softmax(dim=-1) < cut, x, n)
    return back(x.masked_fill(remove, NEG_INF))


class Mirostat:
    """Mirostat 2.0 (Basu et al., 2021; Table 2 "Target perplexity", adaptive truncation).

    Keeps the tokens whose surprise -log2 p(v) is at most mu, a per-row threshold that starts at
    2 * tau.  After each sampled token y, ``observe`` moves it towards the target surprise tau
    (bits), mu <- mu - lr * (-log2 p(y) - tau), where p is the distribution this adapter received
    (as in the authors' code; llama.cpp uses the renormalised truncated distribution instead).
    Over a generation the average surprise approaches tau, i.e. perplexity 2**tau.

    State lives in the object: use a fresh one (or call `reset`) for every generation.
    """

    def __init__(self, tau: float = 3.0, lr: float = 0.1):
        self.tau = _number("tau", tau)
        if not (0 < self.tau < math.inf):
            raise ValueError(f"tau must be > 0 and finite, got {tau}")
        self.lr = _number("lr", lr)
        if not (0 < self.lr < math.inf):
            raise ValueError(f"lr must be > 0 and finite, got {lr}")
        self.reset()

    def reset(self):
        self.mu = None          # (N,) current thresholds in bits
        self.surprises = []     # observed surprises, one (N,) list per step
        self._logp = None

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        x, back = _rows(logits)
        dtype = torch.float32 if x.device.type == "mps" else torch.float64
        if self.mu is None:
            self.mu = torch.full((x.shape[0],), 2 * self.tau, dtype=dtype, device=x.device)
        elif self.mu.shape[0] != x.shape[0]:
            raise ValueError(f"this Mirostat adapter tracks {self.mu.shape[0]} rows but got "
                             f"{x.shape[0]}; call reset() or use a new Mirostat per generation")
        logp = torch.log_softmax(x.to(dtype), dim=-1)
        self._logp = logp
        surprise = -logp / math.log(2)
        remove = surprise > self.mu[:, None]
        remove &= logp < logp.amax(-1, keepdim=True)   # always keep the most probable token
        return back(x.masked_fill(remove, NEG_INF))

    def observe(self, tokens, adapted_logits=None):
        """Update mu from the tokens just sampled (one per row)."""
        if self._logp is None:
            raise ValueError("observe() called before the adapter saw any logits")
        tok = torch.as_tensor(tokens, device=self._logp.device).view(-1, 1)
        s = -self._logp.gather(1, tok).view(-1) / math.log(2)
        self.surprises.append(s.tolist())
        self.mu = self.mu - self.lr * (s - self.tau)

    def __repr__(self):
        return f"Mirostat(tau={_short(self.tau)}, lr={_short(self.lr)})"


def mirostat(tau: float = 3.0, lr: float = 0.1) -> Mirostat:
    """A fresh `Mirostat` adapter (target surprise ``tau`` bits, learning rate ``lr``)."""
    return Mirostat(tau, lr)


class MirostatV1(Mirostat):
    """Mirostat as in the paper (Basu et al., 2021, Algorithm 1): top-k with k from a Zipf fit.

    From the m + 1 most probable tokens (p_1 >= p_2 >= ...) it estimates the Zipf exponent

        s^ = sum_i t_i b_i / sum_i t_i^2,   t_i = log((i + 1) / i),  b_i = log(p_i / p_{i+1}),

    (least squares for log p_i = -s log i + c, i = 1..m) and keeps the top

        k = round(((e^ 2^mu) / (1 - N^(-e^)))^(1 / s^)) + 1,   e^ = s^ - 1,   N = |vocabulary|,

    tokens (the authors' code adds the 1), the k for which a Zipf distribution with exponent s^
    has surprise mu.  mu starts at 2 tau and follows the same feedback as `Mirostat` (2.0):
    mu <- mu - lr (-log2 p(y) - tau), with p the distribution this adapter received.
    """

    def __init__(self, tau: float = 3.0, lr: float = 0.1, m: int = 100):
        super().__init__(tau, lr)
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"m must be an integer >= 1, got {m!r}")
        self.m = m
        self.k = []             # the k chosen at each step, one (N,) list per call

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        x, back = _rows(logits)
        super().__call__(x)                       # mu's set-up and p, as in Mirostat 2.0
        logp, V = self._logp, x.shape[-1]
        top = torch.topk(logp, min(self.m + 1, V), dim=-1).values
        s_hat = zipf_exponent(top)
        k = _zipf_k(s_hat, self.mu, V)
        self.k.append(k.tolist())
        rank = torch.argsort(torch.argsort(logp, dim=-1, descending=True), dim=-1)
        return back(x.masked_fill(rank >= k[:, None], NEG_INF))

    def __repr__(self):
        return f"MirostatV1(tau={_short(self.tau)}, lr={_short(self.lr)}, m={self.m})"


def zipf_exponent(top_logp: torch.Tensor) -> torch.Tensor:
    """Mirostat's least-squares Zipf exponent s^ from the sorted top log-probabilities (N, m+1)."""
    i = torch.arange(1, top_logp.shape[-1], dtype=top_logp.dtype, device=top_logp.device)
    t = torch.log((i + 1) / i)
    b = top_logp[..., :-1] - top_logp[..., 1:]
    return (t * b).sum(-1) / (t * t).sum().clamp_min(1e-300)


def _zipf_k(s_hat, mu, V: int) -> torch.Tensor:
    """k = round(((e 2^mu) / (1 - V^-e))^(1/s)) + 1 with e = s - 1, in [1, V] (e -> 0: the
    limit 1 / ln V of e / (1 - V^-e); s = 0, a flat top: every token)."""
    e = s_hat - 1
    small = e.abs() < 1e-9
    e_safe = torch.where(small, torch.ones_like(e), e)
    ratio = torch.where(small, torch.full_like(e, 1 / math.log(V)),
                        e_safe / -torch.expm1(-e_safe * math.log(V)))
    k = torch.exp((torch.log(ratio) + mu * math.log(2)) / s_hat.clamp_min(1e-12))
    k = torch.where(s_hat > 0, torch.round(k.clamp(max=float(V))) + 1, torch.full_like(k, V))
    return k.clamp(1, V).long()


# -- basis-aware truncation ---------------------------------------------------------------
_basis_cache: dict = {}
_LP_METHODS = [("highs-ds", {"presolve": False}), ("highs-ds", {}), ("highs-ipm", {})]


def _basis(embedding) -> np.ndarray:
    """Orthonormal basis (V, r) of span([W, 1]): W^T p = W^T p_hat and sum p = 1 together."""
    if hasattr(embedding, "model"):           # a LanguageModel
        embedding = embedding.model
    if hasattr(embedding, "get_output_embeddings"):
        head = embedding.get_output_embeddings()
        if getattr(head, "bias", None) is not None:
            raise ValueError("bat needs an output layer without bias (logits = W h)")
        embedding = head.weight
    if not isinstance(embedding, torch.Tensor) or embedding.dim() != 2:
        raise ValueError("embedding must be the (V, d) output embedding matrix, a model or a "
                         "LanguageModel")
    # Cached for the last matrix seen, holding a reference to it: a key made of the storage
    # address would match a new matrix allocated where a freed one was (a stale basis).
    version = getattr(embedding, "_version", 0)
    if _basis_cache.get("matrix") is not embedding or _basis_cache.get("version") != version:
        w = embedding.detach().double().cpu().numpy()
        a = np.concatenate([w, np.ones((w.shape[0], 1))], axis=1)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        _basis_cache.update(matrix=embedding, version=version, basis=u[:, s > s[0] * 1e-10])
    return _basis_cache["basis"]


def bat_row(probs: np.ndarray, basis: np.ndarray, eps: float, max_candidates=None,
            tol: float = 1e-6):
    """Basis-aware truncation of one distribution: ``(keep mask, number of LPs solved)``.

    A token with probability < eps is kept only if *every* distribution p that the model could be
    approximating must give it mass: p >= 0, p_j <= p_hat_j / (1 - eps) and W^T p = W^T p_hat,
    sum p = 1 (the softmax bottleneck: with logits W h, a cross-entropy optimum only pins down
    W^T p).  Writing p = p_hat * u, token i is kept iff  min u_i > tol  over that polytope.

    Numerics: the LP is posed in u - 1 (so p_hat is the point 0) with orthonormalised equality
    rows; HiGHS ignores coefficients below 1e-9, which can only remove more tokens.  Every
    solution also removes the other candidates it sets to zero, so a first LP minimising the sum
    over all candidates decides most tokens at once and few single-token LPs remain.
    """
    from scipy.optimize import linprog
    keep = probs >= eps
    keep[int(np.argmax(probs))] = True                 # as min_tokens_to_keep=1 elsewhere
    live = np.flatnonzero(probs > 0)
    cand = np.flatnonzero((probs > 0) & ~keep)
    cand = cand[np.argsort(-probs[cand], kind="stable")][:max_candidates]
    if cand.size == 0:
        return keep, 0
    u_, s, _ = np.linalg.svd(probs[live, None] * basis[live], full_matrices=False)
    a_eq = u_[:, s > s[0] * 1e-12].T
    upper = 1.0 / max(1.0 - eps, 1e-10)
    pos = np.full(probs.shape[0], -1)
    pos[live] = np.arange(live.size)
    n_lp = 0

    def solve(targets):
        nonlocal n_lp
        c = np.zeros(live.size)
        c[pos[targets]] = 1.0
        for method, options in _LP_METHODS:            # fast first, robust if it struggles
            n_lp += 1
            res = linprog(c, A_eq=a_eq, b_eq=np.zeros(a_eq.shape[0]),
                          bounds=(-1.0, upper - 1.0), method=method, options=options)
            if res.status == 0:
                return 1.0 + res.x
        raise RuntimeError(f"bat: the linear program failed ({res.message}); p_hat itself is "
                           "feasible, so this is numerical: try a larger eps")

    pending = cand
    while pending.size:                                # joint LPs: drop all tokens set to zero
        u = solve(pending)
        alive = u[pos[pending]] > tol
        if alive.all():
            break
        pending = pending[alive]
    while pending.size:                                # the rest: one LP each
        t, pending = pending[0], pending[1:]
        u = solve(np.array([t]))
        keep[t] = keep[t] or bool(u[pos[t]] > tol)
        pending = pending[u[pos[pending]] > tol]       # zeroed here too: removable
    return keep, n_lp


def bat(logits: torch.Tensor, eps: float, embedding, max_candidates: int | None = None,
        tol: float = 1e-6) -> torch.Tensor:
    """Basis-aware threshold truncation, BAT (Finlayson et al., 2024a; Table 2 "Truncation
    (linear program)", extrinsic LP solver).

    Like `epsilon`, tokens with probability >= eps are kept; a token below eps is also kept when
    the linear program of `bat_row` proves that the true distribution must give it mass, given
    the model's output embedding matrix W (``embedding``: the (V, d) matrix, the HF model or the
    `LanguageModel`).  Solved with ``scipy.optimize.linprog`` (HiGHS).

    Cost: one joint LP, then one LP per token the joint LPs could not remove, each with up to V
    variables and rank([W, 1]) <= d + 1 equality constraints.  Measured on random models over
    the TinyWorld vocabulary (V = 756) with peaked distributions: 100-230 LPs, 2-7 s per
    distribution at d = 64 and 20-40 s at d = 256 on one CPU core, against microseconds for the
    other adapters; so it suits inspecting single steps (and short generations) rather than
    long sampling runs.  ``max_candidates`` limits the LPs to the most probable tokens below
    eps (the others are removed, as epsilon truncation would).
    """
    eps = _interval("eps", eps, 0.0, 1.0, True, True)
    if max_candidates is not None:
        max_candidates = _count("max_candidates", max_candidates, 0)
    basis = _basis(embedding)
    x, back = _rows(logits)
    if basis.shape[0] != x.shape[-1]:
        raise ValueError(f"embedding has {basis.shape[0]} rows but logits have {x.shape[-1]} "
                         "entries: pass the output embedding of the model that gave the logits")
    probs = torch.softmax(x.double(), dim=-1).cpu().numpy()
    keep = np.stack([bat_row(p, basis, eps, max_candidates, tol)[0] for p in probs])
    remove = torch.from_numpy(~keep).to(x.device)
    return back(x.masked_fill(remove, NEG_INF))


# -- composition --------------------------------------------------------------------------
class Chain:
    """Several adapters applied in order; forwards ``observe`` to the stateful ones."""

    def __init__(self, adapters):
        self.adapters = []
        for a in adapters:
            if isinstance(a, Chain):
                self.adapters.extend(a.adapters)
            elif isinstance(a, (list, tuple)):
                self.adapters.extend(Chain(a).adapters)
            elif callable(a):
                self.adapters.append(a)
            else:
                raise TypeError(f"adapters must be callables logits -> logits, got {a!r}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        for a in self.adapters:
            logits = a(logits)
        return logits

    def observe(self, tokens, adapted_logits=None):
        for a in self.adapters:
            if hasattr(a, "observe"):
                a.observe(tokens, adapted_logits)

    def __len__(self):
        return len(self.adapters)

    def __repr__(self):
        return f"chain({', '.join(map(describe, self.adapters))})"


def chain(*adapters) -> Chain:
    """Compose adapters (callables, lists of them or chains): ``chain(a, b)(s) == b(a(s))``."""
    return Chain(adapters)


def describe(adapter) -> str:
    """A short label: ``top_k(k=20)`` for ``partial(top_k, k=20)``."""
    func = getattr(adapter, "func", None)
    if func is not None:
        kw = ", ".join(f"{k}={_short(v)}" for k, v in adapter.keywords.items()
                       if k != "embedding")
        return f"{getattr(func, '__name__', func)}({kw})"
    return getattr(adapter, "__name__", None) or repr(adapter)


def _short(value) -> str:
    """A parameter as a reader wants it: 0.9, not a slider's 0.9000000000000001."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def kept(adapted: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the tokens an adapter kept (finite logits)."""
    return torch.isfinite(adapted)


__all__ = ["temperature", "top_k", "top_p", "min_p", "typical", "epsilon", "eta", "Mirostat",
           "mirostat", "bat", "bat_row", "chain", "Chain", "describe", "kept"]
