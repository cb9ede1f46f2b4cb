"""Generators as values (survey eq. 23): what meta-generators call and what they return.

A *generator* is anything with ``generate(prompt, n, seed) -> list of outputs``; an output has
``.text`` and ``.cost`` (and ``.logprob`` when the generator knows log p(y | x), else None;
``.proposal_logprob``, log g(y | x) of the distribution it sampled, when it knows that).
Every generator also has ``generate_batch(prompts, n, seed)`` (`Generator`; the module function
`generate_batch` calls it on any generator): prompt i gets the seed
``split(seed, len(prompts))[i]``, so a server backend may send the prompts concurrently and
still return what the loop returns.
`LMGenerator` wraps a token-level algorithm on a `LanguageModel` (its ``n`` samples share one
computed prompt); `TextGenerator` wraps a black box that only returns text (an API, a person, a
rule); `as_generator` turns any meta-generator function into a generator, so meta-generators
nest: g(. | x, {g_1, ..., g_G}, phi).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import decoding
from ..budget import Cost
from ..rng import split


@dataclass
class TextOutput:
    """An output of a black-box generator: text, optional log-probabilities, its cost.
    ``proposal_logprob`` is log g(y | x) of the distribution the output was drawn from (None
    when unknown, e.g. a server that reports p_theta before its temperature)."""
    text: str
    cost: Cost = field(default_factory=Cost)
    logprob: float | None = None
    info: dict = field(default_factory=dict)
    proposal_logprob: float | None = None


@dataclass
class MetaResult:
    """The output of a meta-generator: the chosen text, the total cost, and its internals."""
    text: str
    cost: Cost
    candidates: list = field(default_factory=list)
    scores: list | None = None
    chosen: int | None = None
    answer: Any = None
    votes: dict | None = None
    info: dict = field(default_factory=dict)
    logprob: float | None = None

    def __str__(self):
        return self.text

    def __repr__(self):
        extra = f", answer={self.answer!r}" if self.answer is not None else ""
        return (f"MetaResult(text={self.text!r}{extra}, candidates={len(self.candidates)}, "
                f"cost=({self.cost}))")


_seeds = split   # the package's one seed splitter (workbench.rng.split)


def batch_seeds(seed, k: int) -> list:
    """The seeds of ``k`` prompts in a batch: prompt i gets ``split(seed, k)[i]`` (all None
    without a seed), whatever order a backend computes them in."""
    return [None] * k if seed is None else _seeds(seed, k)


def generate_batch(generator, prompts, n: int = 1, seed=None) -> list:
    """``n`` outputs for each of ``prompts`` from any generator: its own ``generate_batch``
    (a server backend sends them concurrently), else one `generate` call per prompt."""
    if hasattr(generator, "generate_batch"):
        return generator.generate_batch(list(prompts), n, seed)
    if not hasattr(generator, "generate"):   # a plain fn(prompt, seed)
        generator = TextGenerator(generator)
    return Generator.generate_batch(generator, prompts, n, seed)   # the one loop


class Generator:
    """The shared part of the generator protocol: subclasses define ``generate(prompt, n,
    seed)``; calling gives one output, and ``generate_batch`` loops over the prompts."""

    def generate(self, prompt, n: int = 1, seed=None) -> list:
        raise NotImplementedError

    def generate_batch(self, prompts, n: int = 1, seed=None) -> list:
        """``n`` outputs per prompt, in the prompts' order (prompt i seeded by `batch_seeds`)."""
        prompts = list(prompts)
        return [self.generate(p, n, s) for p, s in zip(prompts, batch_seeds(seed, len(prompts)))]

    def __call__(self, prompt, seed=None):
        return self.generate(prompt, 1, seed)[0]


class LMGenerator(Generator):
    """Sampling (or greedy decoding) from a `LanguageModel` as a generator.

    ``generate(prompt, n, seed)`` draws ``n`` samples in one batch that shares the prompt's KV
    cache (computed once).  ``adapters`` are the sampling adapters of `workbench.adapters`.
    """

    def __init__(self, lm, adapters=None, greedy: bool = False, max_new_tokens: int = 200,
                 stop=None, name: str | None = None):
        self.lm, self.adapters, self.greedy = lm, adapters, greedy
        self.max_new_tokens, self.stop = max_new_tokens, stop
        self.name = name or (f"greedy({lm.name})" if greedy else f"sample({lm.name})")

    def generate(self, prompt, n: int = 1, seed=None) -> list:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.greedy:
            g = decoding.greedy(self.lm, prompt, max_new_tokens=self.max_new_tokens,
                                stop=self.stop, adapters=self.adapters)
            return [g] + [_copy_free(g) for _ in range(n - 1)]
        return decoding.sample(self.lm, prompt, adapters=self.adapters, seed=seed, n=n,
                               max_new_tokens=self.max_new_tokens, stop=self.stop)

    def __repr__(self):
        return f"LMGenerator({self.name})"


def _copy_free(g):
    """A repeat of a deterministic output: same text, and no new cost (it was not recomputed)."""
    from copy import copy
    c = copy(g)
    c.cost = Cost()
    return c


class TextGenerator(Generator):
    """A black-box generator from ``fn(prompt, seed) -> text`` (or ``(text, logprob)``, the
    log-probability of the distribution ``fn`` samples from: it is both the output's
    ``logprob`` and its ``proposal_logprob``).

    ``count_tokens`` measures prompt and output for the cost (default: whitespace words; pass a
    tokenizer's length function to count real tokens).
    """

    def __init__(self, fn: Callable, name: str = "black-box", count_tokens=None):
        self.fn, self.name = fn, name
        self.count = count_tokens or (lambda s: len(s.split()))

    def generate(self, prompt, n: int = 1, seed=None) -> list:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        outs = []
        for s in _seeds(seed, n):
            r = self.fn(prompt, s)
            text, lp = (r if isinstance(r, tuple) else (r, None))
            outs.append(TextOutput(text, Cost(input_tokens=self.count(prompt),
                                              output_tokens=self.count(text), calls=1), lp,
                                   proposal_logprob=lp))
        return outs

    def __repr__(self):
        return f"TextGenerator({self.name})"


class Replay(Generator):
    """A generator that hands out recorded outputs in order: a precomputed pool of samples
    replayed, each with the text and cost it was recorded with.  Sampling from the pool without
    replacement in its stored order is what a fresh run with the pool's seeds would have drawn,
    so a meta-generator run on a replay costs no model call.  ``seed`` is ignored (the order is
    the pool's); asking for more outputs than are left raises ``ValueError``.
    """

    def __init__(self, outputs, name: str = "replay"):
        self.outputs, self.name, self.used = list(outputs), name, 0

    def generate(self, prompt, n: int = 1, seed=None) -> list:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.used + n > len(self.outputs):
            raise ValueError(f"the replayed pool holds {len(self.outputs)} outputs; "
                             f"{self.used + n} were asked for")
        self.used += n
        return self.outputs[self.used - n:self.used]

    def __repr__(self):
        return f"Replay({self.name}, {self.used}/{len(self.outputs)} used)"


class FunctionGenerator(Generator):
    """A meta-generator function with fixed parameters, usable wherever a generator is."""

    def __init__(self, fn: Callable, name: str | None = None, **params):
        if "seed" in params:
            raise ValueError("seed is given per call, not fixed in as_generator")
        self.fn, self.params = fn, params
        self.name = name or fn.__name__
        self._takes_seed = "seed" in inspect.signature(fn).parameters

    def generate(self, prompt, n: int = 1, seed=None) -> list:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        def seeded(s):
            return {"seed": s} if self._takes_seed else {}
        return [self.fn(prompt, **self.params, **seeded(s)) for s in _seeds(seed, n)]

    def __repr__(self):
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


def as_generator(fn: Callable, name: str | None = None, **params) -> FunctionGenerator:
    """``as_generator(majority_vote, generator=g, n=8)``: a meta-generator as a generator."""
    return FunctionGenerator(fn, name, **params)


def generate(generator, prompt, n: int, seed=None) -> list:
    """Call any generator (object with ``generate``, or a plain ``fn(prompt, seed)``)."""
    if hasattr(generator, "generate"):
        return generator.generate(prompt, n, seed)
    return TextGenerator(generator).generate(prompt, n, seed)


def total_cost(outputs) -> Cost:
    return sum((o.cost for o in outputs), Cost())
