"""Value functions v(s_t) for step-level search (survey §4.3, Table 4).

A value function scores states - partial solutions, and finished ones - as
``value(prompt, partials) -> (values, cost)``, where each `Partial` holds the steps so far;
``cost_of(prompt, partials)`` says beforehand what scoring will cost, so that a search can keep
to its budget.  Scorers book external tokens (Table 5's C_s per scored state).

* `logprob_value`: log p_theta of the steps (gpt-f's value), or its per-token mean;
* `prm_value`: a process reward model's P(every step so far is correct);
* `verifier_value`: an outcome verifier read at the last token of the partial solution;
* `oracle_value`: a task's exact step checker (an upper bound, not a method);
* `terminal_value`: one value for finished solutions (e.g. the verifier), another before;
* `self_evaluation_value`: log p_theta of the steps mixed with a judge's confidence in each
  step (self-evaluation guided beam search: the judge is the policy model itself).
"""
from __future__ import annotations

import math

from ..budget import Cost
from ..scoring import ProcessScorer, verify, verify_cost



class Value:
    """A value function: ``value(prompt, partials) -> (values, cost)``; ``cost_of`` plans it."""
    name = "value"

    def __call__(self, prompt, partials):
        return [self.one(prompt, p) for p in partials], self.cost_of(prompt, partials)

    def cost_of(self, prompt, partials) -> Cost:
        return Cost()

    def __repr__(self):
        return self.name


class LogProbValue(Value):
    """v(s_t) = log p_theta(y_<=t | x) (``"sum"``, gpt-f), its per-token mean (``"mean"``), or
    exp of the mean, a number in (0, 1] (``"prob"``, for MCTS and REBASE)."""

    def __init__(self, kind: str = "sum"):
        if kind not in ("sum", "mean", "prob"):
            raise ValueError(f"kind must be 'sum', 'mean' or 'prob', got {kind!r}")
        self.kind, self.name = kind, f"logprob({kind})"

    def one(self, prompt, p):
        if p.logprob is None:
            raise ValueError("logprob_value needs steps with log-probabilities (an LM stepper "
                             "or a generator that returns them)")
        if self.kind == "sum":
            return p.logprob
        mean = p.logprob / max(p.tokens, 1)
        return mean if self.kind == "mean" else math.exp(mean)


class ProcessValue(Value):
    """v(s_t) from a process reward model (`scoring.ProcessScorer`): the PRM's probability that
    every step so far is correct, reduced over steps by ``reduce`` (min, last, prod, mean).
    The PRM is TinyWorld's `TokenScorer`, or anything with ``step_scores(prompt, texts)`` and
    ``step_cost`` (`workbench.reward_models`: Hub PRMs, an LLM judge).
    External cost: the tokens of prompt + steps, once per scored state (Table 5's C_s)."""

    def __init__(self, prm, reduce: str = "last"):
        self.scorer = ProcessScorer(prm, reduce)
        self.prm, self.name = prm, f"prm({reduce})"

    def __call__(self, prompt, partials):
        if not partials:
            return [], Cost()
        vals, cost = self.scorer(prompt, [_Text(p.text or "") for p in partials])
        return list(vals), cost

    def cost_of(self, prompt, partials) -> Cost:
        return self.scorer.cost_of(prompt, [p.text or "" for p in partials])


class _Text:
    def __init__(self, text):
        self.text = text


class VerifierValue(Value):
    """v(s_t) = an outcome verifier's probability that the solution will be correct, read at the
    last token of the partial solution (the TinyWorld verifier is trained with its label at every
    position after the prompt, so it predicts E[correct | s_t]).  A verifier with
    ``reply_scores(prompt, replies)`` / ``reply_cost`` (`workbench.reward_models`) gets the
    prompt apart, as in `scoring.VerifierScorer`."""

    def __init__(self, verifier):
        self.verifier, self.name = verifier, "verifier"

    def __call__(self, prompt, partials):
        if not partials:
            return [], Cost()
        return verify(self.verifier, prompt, [p.text for p in partials])

    def cost_of(self, prompt, partials) -> Cost:
        return verify_cost(self.verifier, prompt, [p.text for p in partials])


class OracleValue(Value):
    """The exact value from a task's checkers: 1 if every step so far is right (and, when
    finished, the answer too), else 0.  An upper bound no learned value reaches; never a fair
    baseline.  The task finds the problem from the prompt (`Task.problem_of`)."""
    name = "oracle"

    def __init__(self, task):
        self.task = task

    def one(self, prompt, p):
        problem = self.task.problem_of(prompt)
        steps_ok = self.task.step_check(problem, p.text).first_error is None
        if p.terminal:
            return float(self.task.check(problem, p.text) and steps_ok)
        return float(steps_ok)


class TerminalValue(Value):
    """``final`` for finished solutions (e.g. the outcome verifier), ``partial`` otherwise (e.g.
    the PRM): the verifier at terminal states."""

    def __init__(self, final: Value, partial: Value):
        self.final, self.partial = final, partial
        self.name = f"{final.name} at the end, {partial.name} before"

    def _split(self, partials):
        fin = [i for i, p in enumerate(partials) if p.terminal]
        part = [i for i, p in enumerate(partials) if not p.terminal]
        return fin, part

    def __call__(self, prompt, partials):
        fin, part = self._split(partials)
        out = [0.0] * len(partials)
        v1, c1 = self.final(prompt, [partials[i] for i in fin])
        v2, c2 = self.partial(prompt, [partials[i] for i in part])
        for i, v in zip(fin + part, list(v1) + list(v2)):
            out[i] = v
        return out, c1 + c2

    def cost_of(self, prompt, partials) -> Cost:
        fin, part = self._split(partials)
        return self.final.cost_of(prompt, [partials[i] for i in fin]) + \
            self.partial.cost_of(prompt, [partials[i] for i in part])


def logprob_value(kind: str = "sum") -> Value:
    return LogProbValue(kind)


def prm_value(prm, reduce: str = "last") -> Value:
    return ProcessValue(prm, reduce)


def verifier_value(verifier) -> Value:
    return VerifierValue(verifier)


def oracle_value(task) -> Value:
    return OracleValue(task)


def terminal_value(final: Value, partial: Value) -> Value:
    return TerminalValue(final, partial)


class SelfEvaluationValue(Value):
    """Self-evaluation guided search (Xie et al., 2023): each step s_k is weighted by the model's
    probability of it and by a judge's confidence C(s_k) that it is correct, combined as

        E(s_<=t) = prod_{k<=t} p_theta(s_k | x, s_<k)^lam * C(s_k)^(1 - lam),
        v(s_t) = log E = lam * log p_theta(s_<=t | x) + (1 - lam) * sum_{k<=t} log C(s_k).

    C(s_k) is the judge's step probability for the prefix ending at step k: ``step_scores`` of
    a `reward_models.LLMJudge` (the policy model asked "are the steps so far correct?", which
    makes it *self*-evaluation) or any PRM `ProcessValue` accepts.  lam = 1 is `logprob_value`;
    lam = 0 ranks by the judge alone.  External cost: the judge's, per scored state."""

    def __init__(self, judge, lam: float = 0.5):
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam <= 1:
            raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
        self.judge, self.lam = ProcessScorer(judge, "prod"), float(lam)
        self.name = f"self-evaluation(lam={self.lam:g})"

    def __call__(self, prompt, partials):
        if not partials:
            return [], Cost()
        if any(p.logprob is None for p in partials):
            raise ValueError("self_evaluation_value needs steps with log-probabilities (an LM "
                             "stepper or a generator that returns them)")
        steps = self.judge.step_scores(prompt, [p.text or "" for p in partials])
        vals = [self.lam * p.logprob + (1 - self.lam) * sum(math.log(max(c, 1e-300)) for c in cs)
                for p, cs in zip(partials, steps)]
        return vals, self.cost_of(prompt, partials)

    def cost_of(self, prompt, partials) -> Cost:
        return self.judge.cost_of(prompt, [p.text or "" for p in partials])


def self_evaluation_value(judge, lam: float = 0.5) -> Value:
    return SelfEvaluationValue(judge, lam)
