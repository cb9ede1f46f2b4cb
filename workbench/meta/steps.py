"""States and actions for step-level search (survey §4.3).

A *state* s_t is the prompt x plus the steps so far y_<t; an *action* is the next step y_t, one
line of text produced by a *stepper*; the environment appends it.  Value functions v(s_t) are in
`workbench.meta.values`; the searches in `workbench.meta.search` and `workbench.meta.mcts`.

* Steppers: `LMStepper` samples steps from a `LanguageModel` and reuses the KV cache of every
  state (a `PrefixCache`: a child computes only its own tokens, never its parent's prefix);
  `TextStepper` wraps any generator (a black box, an `LMGenerator`) and cuts its outputs at the
  end of the first line.  Both report Table 5 costs: every generated step is one call whose
  input is prompt + steps so far.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

from .. import decoding
from ..budget import Cost
from ..rng import make_generator
from ..trace import instrumentation
from .base import generate

ANSWER_MARKER = "A:"


@dataclass
class Step:
    """One action: a line of text (with its final newline unless it ends the solution)."""
    text: str
    token_ids: list = field(default_factory=list)
    logprob: float | None = None
    finish: str = "stop"      # "stop" (end of line), "eos" or "length"
    terminal: bool = False    # the solution ends here (an answer line, EOS or a runaway step)

    @property
    def tokens(self) -> int:
        return len(self.token_ids) if self.token_ids else len(self.text.split())


@dataclass
class Partial:
    """What a value function sees: the steps so far, joined, and what is known about them."""
    text: str
    terminal: bool = False
    logprob: float | None = None   # log p_theta of all steps (None for black boxes)
    tokens: int = 0
    depth: int = 0


def is_terminal(text: str, finish: str, marker: str = ANSWER_MARKER) -> bool:
    """A step ends the solution when it states the answer (the task's marker anywhere in the
    line: TinyWorld's ``A: 28`` line, GSM8K's "... The answer is 18."), or when decoding ended
    for another reason than the newline (EOS, a runaway step)."""
    return finish != "stop" or marker in text


def _check_marker(marker):
    if not isinstance(marker, str) or not marker.strip():
        raise ValueError(f"answer_marker must be a non-empty string (the task's answer marker, "
                         f"e.g. 'A:' or 'The answer is'), got {marker!r}")


def _check_k(ks):
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in ks):
        raise ValueError(f"the number of expansions must be an integer >= 0, got {ks}")


class LMStepper:
    """Sample the next step (up to a newline) from a `LanguageModel`, reusing KV caches.

    Every state's tokens are stored in a `PrefixCache` when they are generated, so expanding a
    state computes one token (its last newline) plus the new steps, not the prompt and earlier
    steps again.  ``greedy=True`` takes the argmax instead of sampling; ``adapters`` reshape the
    logits as in `decoding.sample`.  ``max_cached_tokens`` bounds the cache (LRU eviction).
    The token-level ``step`` events of the decoding loop are left out of the trace unless
    ``token_events=True``.  A step containing ``answer_marker`` ends the solution (pass the
    task's, ``fmt.marker.strip()``: ``"A:"`` for TinyWorld, ``"The answer is"`` for GSM8K).
    """

    def __init__(self, lm, adapters=None, greedy: bool = False, max_step_tokens: int = 32,
                 max_cached_tokens: int = 16384, answer_marker: str = ANSWER_MARKER,
                 token_events: bool = False):
        if max_step_tokens < 1:
            raise ValueError(f"max_step_tokens must be >= 1, got {max_step_tokens}")
        _check_marker(answer_marker)
        self.lm, self.adapters, self.greedy = lm, adapters, greedy
        self.max_step_tokens, self.max_cached_tokens = max_step_tokens, max_cached_tokens
        self.marker, self.token_events = answer_marker, token_events
        self.cache, self._prompt = None, None

    def __repr__(self):
        return f"LMStepper({self.lm.name}, {'greedy' if self.greedy else 'sample'})"

    def start(self, prompt) -> None:
        """Begin a search on ``prompt``: a fresh prefix cache."""
        from ..efficiency.prefix import PrefixCache
        self.cache = PrefixCache(self.lm, self.max_cached_tokens)
        self._prompt = self.lm.prompt_ids(prompt)

    def ids(self, steps) -> list:
        return self._prompt + [t for s in steps for t in s.token_ids]

    def max_cost(self, prompt, states, ks, max_tokens: int | None = None) -> Cost:
        """An upper bound on what ``propose(prompt, states, ks)`` can spend."""
        m = max_tokens or self.max_step_tokens
        live = [(s, k) for s, k in zip(states, ks) if k]
        n_in = [len(self.ids(s)) for s, _ in live]
        rows = sum(k for _, k in live)
        return Cost(input_tokens=sum(n * k for n, (_, k) in zip(n_in, live)),
                    output_tokens=rows * m, calls=rows,
                    forward_passes=len(live) + m, computed_tokens=sum(n_in) + rows * m)

    def propose(self, prompt, states, ks, seed=None):
        """``ks[i]`` next steps for each state (a list of `Step`s); returns (steps, cost).
        All rows are decoded as one batch."""
        return self._decode(prompt, states, ks, seed, self.max_step_tokens, True)

    def rollout_cost(self, prompt, steps, max_steps: int) -> Cost:
        return self.max_cost(prompt, [steps], [1], max_steps * self.max_step_tokens)

    def rollout(self, prompt, steps, seed=None, max_steps: int = 10):
        """The rest of the solution in one call (up to ``max_steps`` steps' worth of tokens),
        as one multi-line `Step`; returns (step, cost)."""
        out, cost = self._decode(prompt, [steps], [1], seed,
                                 max_steps * self.max_step_tokens, False)
        return out[0][0], cost

    def _decode(self, prompt, states, ks, seed, m, stop):
        if self.cache is None:
            self.start(prompt)
        _check_k(ks)
        lm = self.lm
        live = [(i, s, k) for i, (s, k) in enumerate(zip(states, ks)) if k]
        out = [[] for _ in states]
        if not live:
            return out, Cost()
        prefixes = [self.ids(s) for _, s, _ in live]
        snap = lm.counter.snapshot()
        groups = [self.cache.prefill(p, n=k) for p, (_, _, k) in zip(prefixes, live)]
        state = groups[0] if len(groups) == 1 else _stack(lm, groups)
        chooser = decoding.choose_greedy if self.greedy else decoding.choose_sample
        owners = [j for j, (_, _, k) in enumerate(live) for _ in range(k)]
        with (nullcontext() if self.token_events else instrumentation(False)):
            gens = decoding.decode(lm, state, chooser, m, self.adapters,
                                   stop=["\n"] if stop else None,
                                   generator=make_generator(seed, lm.device), source="step")
        cost = lm.counter.since(snap)
        for r, (g, j) in enumerate(zip(gens, owners)):
            n_in = len(prefixes[j])
            fed = len(g.token_ids) - (g.finish_reason != "eos")
            if fed > 0 and g.finish_reason == "stop":   # store the state for its children
                self.cache.insert(state.ids[r][:n_in + fed], state.cache, row=r,
                                  offset=state.mask.shape[1] - len(state.ids[r]))
            terminal = not stop or is_terminal(g.text, g.finish_reason, self.marker)
            out[live[j][0]].append(Step(g.text, list(g.token_ids), g.logprob,
                                        g.finish_reason, terminal))
            cost = cost + Cost(input_tokens=n_in, output_tokens=len(g.token_ids), calls=1)
        return out, cost


def _stack(lm, states):
    """One left-padded batch from single-prefix states (each possibly repeated)."""
    import torch

    from ..efficiency.prefix import _left_pad, layer_pairs, make_cache
    from ..models import DecodeState
    width = max(s.mask.shape[1] for s in states)
    pairs = [layer_pairs(s.cache) for s in states]
    cache = make_cache([tuple(torch.cat([_left_pad(p[layer][j], width) for p in pairs])
                              for j in (0, 1)) for layer in range(len(pairs[0]))], lm)
    mask = torch.cat([torch.cat([s.mask.new_zeros(s.mask.shape[0], width - s.mask.shape[1]),
                                 s.mask], 1) for s in states])
    return DecodeState(lm, cache, mask, torch.cat([s.positions for s in states]),
                       torch.cat([s.logits for s in states]),
                       [list(r) for s in states for r in s.ids])


class TextStepper:
    """Steps from any generator (a black box, an `LMGenerator`, a meta-generator).

    The generator is called on ``prompt + steps so far`` and its output is cut after the first
    newline; each output is one call (Table 5).  No cache is shared across calls: this is the
    re-encoding baseline.  ``max_step_tokens`` is the bound a budget plans with: the generator
    must not produce more (e.g. ``LMGenerator(lm, stop="\\n", max_new_tokens=32)``).
    ``count_tokens`` measures prompts for the budget plan (default: whitespace words).
    """

    def __init__(self, generator, max_step_tokens: int = 32, count_tokens=None,
                 answer_marker: str = ANSWER_MARKER):
        _check_marker(answer_marker)
        self.generator, self.max_step_tokens = generator, max_step_tokens
        self.count = count_tokens or _default_counter(generator)
        self.marker = answer_marker

    def __repr__(self):
        return f"TextStepper({self.generator!r})"

    def start(self, prompt) -> None:
        pass

    @staticmethod
    def text(prompt, steps) -> str:
        return prompt + "".join(s.text for s in steps)

    def max_cost(self, prompt, states, ks, max_tokens: int | None = None) -> Cost:
        m = max_tokens or self.max_step_tokens
        rows = sum(ks)
        n_in = sum(self.count(self.text(prompt, s)) * k for s, k in zip(states, ks))
        return Cost(input_tokens=n_in, output_tokens=rows * m, calls=rows,
                    computed_tokens=n_in + rows * m, forward_passes=sum(ks) * (m + 1))

    def propose(self, prompt, states, ks, seed=None):
        from .base import _seeds
        _check_k(ks)
        out, cost = [[] for _ in states], Cost()
        seeds = [seed] if len(states) == 1 else _seeds(seed, len(states))
        for i, (s, k, sd) in enumerate(zip(states, ks, seeds)):
            if not k:
                continue
            for o in self._call(self.text(prompt, s), k, sd):
                cost = cost + o.cost
                text, finish = o.text, "eos"
                if "\n" in text:
                    text, finish = text[:text.index("\n") + 1], "stop"
                ids = list(getattr(o, "token_ids", []) or [])
                whole = len(text) == len(o.text)
                out[i].append(Step(text, ids if whole else [],
                                   getattr(o, "logprob", None) if whole else None, finish,
                                   is_terminal(text, finish, self.marker)))
        return out, cost

    def _call(self, text, k, seed):
        outs = generate(self.generator, text, k, seed)
        for o in outs:
            if o.cost.output_tokens > self.max_step_tokens:
                raise ValueError(f"the generator produced {o.cost.output_tokens} tokens, more "
                                 f"than max_step_tokens={self.max_step_tokens}: bound its output")
        return outs

    def rollout_cost(self, prompt, steps, max_steps: int) -> Cost:
        out = max_steps * self.max_step_tokens
        n_in = max_steps * (self.count(self.text(prompt, steps)) + out)
        return Cost(input_tokens=n_in, output_tokens=out, calls=max_steps,
                    computed_tokens=n_in + out, forward_passes=max_steps * (self.max_step_tokens + 1))

    def rollout(self, prompt, steps, seed=None, max_steps: int = 10):
        """Call the generator until the solution ends (an output without a final newline, or an
        answer line), at most ``max_steps`` times; returns (one multi-line `Step`, cost)."""
        from .base import _seeds
        text, cost, lps = "", Cost(), []
        for sd in _seeds(seed, max_steps):
            o = self._call(self.text(prompt, steps) + text, 1, sd)[0]
            text, cost = text + o.text, cost + o.cost
            lps.append(getattr(o, "logprob", None))
            last = text.rstrip("\n").split("\n")[-1]
            if not o.text.endswith("\n") or self.marker in last:
                break
        lp = None if any(x is None for x in lps) else sum(lps)
        return Step(text, [], lp, "eos", True), cost


def _default_counter(generator):
    lm = getattr(generator, "lm", None)
    if lm is not None:
        return lambda s: len(lm.encode(s))
    return lambda s: len(s.split())
