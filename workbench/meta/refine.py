"""Refinement (survey §4.4): an initial generator g0, an information source h and a refiner g,

    y(0) ~ g0(y | x),   z(t) ~ h(z | x, y(<t), z(<t)),   y(t) ~ g(y | x, y(<t), z(<=t))   (41-43)

run until h says the output is done, the refiner changes nothing, or ``max_iterations``.

Information sources (`Feedback` makers): *extrinsic* ones bring information the generator does
not have - the exact step checker (`step_feedback`), the calculator re-doing each written
operation (`calculator_feedback`), executing a program in the sandbox (`execution_feedback`),
a learned verifier (`verifier_feedback`), the answer key (`outcome_feedback`); the *intrinsic*
`self_feedback` asks the same model to redo its own steps (no new information, so it is expected
to help little, Huang et al. 2024).  Refiners: `regenerate_from_error` keeps the lines before
the first error that h localised and samples the rest again (with the tool's correction when
there is one); `corrector` rewrites the whole solution with a learned corrector (self-correction,
Welleck et al. 2023); `resample` ignores the feedback (a baseline).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..budget import Cost
from ..trace import emit, source
from .base import MetaResult, _seeds, generate
from .parallel import default_answer


@dataclass
class Feedback:
    """z: whether the output is done, a message, and where it goes wrong (when known)."""
    done: bool
    text: str
    first_error: int | None = None   # index of the first wrong line of the output
    fix: str = ""                    # what that line should start with (a tool's correction)
    cost: Cost = field(default_factory=Cost)
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"done": self.done, "text": self.text, "first_error": self.first_error,
                "fix": self.fix, "cost": self.cost.as_dict()}


def refine(prompt, initial, feedback, refiner, max_iterations: int = 3,
           stop_when_unchanged: bool = True, answer_fn=default_answer, seed=None) -> MetaResult:
    """The refinement loop (eqs. 41-43).

    ``initial`` is a generator (g0); ``feedback(prompt, versions, feedbacks) -> Feedback`` is h;
    ``refiner(prompt, versions, feedbacks, seed) -> output`` is g (outputs have ``.text`` and
    ``.cost``).  Stops when the feedback says done, when a refinement returns the previous
    version unchanged, or after ``max_iterations`` refinements.  The result's text is the last
    version; ``candidates`` are all versions; ``info`` has the feedback and why it stopped.
    Costs follow Table 5: T_in (1 + N_r) input, T (1 + N_r) output, N_r C_z external.
    """
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) \
            or max_iterations < 0:
        raise ValueError(f"max_iterations must be an integer >= 0, got {max_iterations!r}")
    seeds = _seeds(seed, max_iterations + 1)
    with source("refine"):
        first = generate(initial, prompt, 1, seeds[0])[0]
        versions, notes, cost = [first], [], first.cost
        emit("version", t=0, text=first.text)
        stopped = "max_iterations"
        for t in range(1, max_iterations + 1):
            z = feedback(prompt, [v.text for v in versions], notes)
            notes.append(z)
            cost = cost + z.cost
            emit("feedback", t=t - 1, done=z.done, text=z.text, first_error=z.first_error,
                 fix=z.fix)
            if z.done:
                stopped = "feedback: done"
                break
            y = refiner(prompt, [v.text for v in versions], notes, seeds[t])
            cost = cost + y.cost
            if stop_when_unchanged and y.text == versions[-1].text:
                stopped = "no change"
                break
            versions.append(y)
            emit("version", t=t, text=y.text)
        emit("stop", reason=stopped)
    final = versions[-1].text
    return MetaResult(final, cost, versions, None, len(versions) - 1, answer_fn(final),
                      info={"versions": [v.text for v in versions],
                            "feedback": [z.as_dict() for z in notes], "stopped": stopped,
                            "refinements": len(versions) - 1})


def _lines(text: str) -> list:
    return text.split("\n")


def _count(text: str) -> int:
    return len(text.split())


# -- information sources h -----------------------------------------------------------------

def step_feedback(count_tokens=_count):
    """Extrinsic: TinyWorld's exact step checker localises the first wrong line (a step, or the
    answer line when every step is right but the answer is not)."""
    from ..tinyworld import arithmetic as ar

    def h(prompt, versions, feedbacks):
        prob, text = ar.problem_from_prompt(prompt), versions[-1]
        chk = ar.check_steps(prob, text)
        if chk.first_error is not None:
            k, msg = chk.first_error, chk.message
        elif not chk.complete:
            k, msg = len(ar.split_steps(text)), chk.message
        elif not ar.check_answer(prob, text):
            k, msg = len(ar.split_steps(text)), "the steps are right but the answer line is not"
        else:
            return Feedback(True, "correct", cost=Cost(external_tokens=1))
        return Feedback(False, msg, _line_index(text, k), "",
                        Cost(external_tokens=count_tokens(msg)))
    return h


def _line_index(text: str, step: int) -> int:
    """Line number of the ``step``-th non-empty, non-answer line (or of the answer line)."""
    seen = 0
    for i, ln in enumerate(_lines(text)):
        if ln.strip() and not ln.strip().startswith("A:"):
            if seen == step:
                return i
            seen += 1
    for i, ln in enumerate(_lines(text)):
        if ln.strip().startswith("A:"):
            return i
    return len([ln for ln in _lines(text) if ln.strip()])


CALC_LINE = re.compile(r"^\s*(?:\[CALC\])?(\d+)([+\-*])(\d+)(?:\[/CALC\])?=(-?\d+)")


def calculator_feedback(count_tokens=_count):
    """Extrinsic: the calculator re-does the operation written on each line; the first line
    whose result is wrong is localised, and the correction ``a op b=<value>`` is given.  It
    cannot see a wrong choice of operation or a miscopied rest of the expression."""
    from ..tinyworld.arithmetic import calculator, extract_answer

    def h(prompt, versions, feedbacks):
        text, last, calls = versions[-1], None, 0
        for i, ln in enumerate(_lines(text)):
            m = CALC_LINE.match(ln)
            if not m:
                continue
            call = f"{m.group(1)}{m.group(2)}{m.group(3)}"
            value = calculator(call)[1:]
            calls += 1
            if value != m.group(4):
                msg = f"line {i + 1}: {call} is {value}, not {m.group(4)}"
                return Feedback(False, msg, i, f"{call}={value}",
                                Cost(external_tokens=calls + count_tokens(msg)))
            last = value
        ans = extract_answer(text)
        if ans is None or last is None or str(ans) != last:
            msg = "the answer line does not state the last result"
            return Feedback(False, msg, _line_index(text, 10**9),
                            "" if last is None else f"A: {last}",
                            Cost(external_tokens=calls + count_tokens(msg)))
        return Feedback(True, "every operation checks out", cost=Cost(external_tokens=calls))
    return h


def execution_feedback(expected="auto", timeout: float = 5.0, count_tokens=_count):
    """Extrinsic: run the program ONLY in the sandbox (`workbench.tools.run_python`); its output
    or error is the feedback.  An exception is localised to its line (from the traceback);
    with ``expected`` (``"auto"``: the value of a ``Code: <expression>`` prompt; None: only
    "runs without error") a wrong output is reported too, as a failing test would be."""
    from ..tools.sandbox import run_python

    def h(prompt, versions, feedbacks):
        want = _expected(prompt) if expected == "auto" else expected
        res = run_python(versions[-1], timeout=timeout)
        out = res.stdout.strip()
        if not res.ok:
            lines = re.findall(r'File "main.py", line (\d+)', res.stderr)
            k = int(lines[-1]) - 1 if lines else None
            msg = res.feedback
            return Feedback(False, msg, k, "", Cost(external_tokens=count_tokens(msg)),
                            {"stdout": out, "stderr": res.stderr})
        if want is not None and out != str(want):
            msg = f"printed {out or 'nothing'}, expected {want}"
            return Feedback(False, msg, None, "", Cost(external_tokens=count_tokens(msg)),
                            {"stdout": out})
        return Feedback(True, f"printed {out}", cost=Cost(external_tokens=count_tokens(out)),
                        info={"stdout": out})
    return h


def _expected(prompt):
    from ..tinyworld.arithmetic import evaluate
    m = re.search(r"Code: ([0-9+\-*]+)\s*$", prompt)
    return evaluate(m.group(1)) if m else None


def self_feedback(lm, count_tokens=None):
    """Intrinsic: the same model re-does each written operation ``Q: a op b`` (greedy) and the
    first line where it disagrees with itself is flagged, with its own result as the
    correction.  No information from outside p_theta: it mostly agrees with its own mistakes.
    The judge's tokens are input and output tokens of the model (Table 5, self-feedback)."""
    from .. import decoding
    from ..tinyworld.arithmetic import extract_answer

    def h(prompt, versions, feedbacks):
        text = versions[-1]
        found = [(i, m) for i, ln in enumerate(_lines(text)) if (m := CALC_LINE.match(ln))]
        if not found:
            return Feedback(False, "no operation to check", None)
        qs = [f"Q: {m.group(1)}{m.group(2)}{m.group(3)}\n" for _, m in found]
        outs = decoding.greedy(lm, qs, max_new_tokens=24)
        cost = sum((o.cost for o in outs), Cost())
        for (i, m), o in zip(found, outs):
            own = extract_answer(o.text)
            if own is not None and str(own) != m.group(4):
                call = f"{m.group(1)}{m.group(2)}{m.group(3)}"
                return Feedback(False, f"line {i + 1}: I now get {call}={own}", i,
                                f"{call}={own}", cost)
        return Feedback(True, "I agree with every step", cost=cost)
    return h


def verifier_feedback(verifier, threshold: float = 0.5):
    """Extrinsic but learned (GLoRe-style): done when the outcome verifier's P(correct) reaches
    ``threshold``; it says *whether*, not *where*."""
    def h(prompt, versions, feedbacks):
        text = prompt + versions[-1]
        p = float(verifier.score([text])[0])
        return Feedback(p >= threshold, f"P(correct) = {p:.2f}", None, "",
                        verifier.cost_of([text]), {"p_correct": p})
    return h


def outcome_feedback(answer_fn=default_answer):
    """The answer key: done iff the answer is right (z given at generation time, as in
    Welleck et al. 2023's self-correction).  An oracle: an upper bound, not a method."""
    from ..tinyworld.arithmetic import problem_from_prompt

    def h(prompt, versions, feedbacks):
        ok = answer_fn(versions[-1]) == problem_from_prompt(prompt).answer
        return Feedback(ok, "correct" if ok else "wrong answer", cost=Cost(external_tokens=1))
    return h


# -- refiners g ----------------------------------------------------------------------------

def regenerate_from_error(generator):
    """Keep the lines before the first error h localised, add h's correction (if any), and let
    ``generator`` write the rest from there (everything again when nothing was localised)."""
    def g(prompt, versions, feedbacks, seed=None):
        z, lines = feedbacks[-1], _lines(versions[-1])
        k = z.first_error if z.first_error is not None else 0
        kept = "".join(ln + "\n" for ln in lines[:k])
        out = generate(generator, prompt + kept + z.fix, 1, seed)[0]
        return _Version(kept + z.fix + out.text, out.cost)
    return g


def corrector(generator, template: str = "Fix: {question}\n{solution}\nBetter:\n"):
    """A learned corrector p(y' | x, y) (self-correction, Welleck et al. 2023): rewrite the last
    version.  ``template`` builds its prompt from the question (the expression of a TinyWorld
    prompt, else the prompt) and the previous solution."""
    from ..tinyworld.arithmetic import problem_from_prompt

    def g(prompt, versions, feedbacks, seed=None):
        try:
            question = problem_from_prompt(prompt).expression
        except ValueError:
            question = prompt.strip()
        text = template.format(question=question, solution=versions[-1].rstrip("\n"),
                               prompt=prompt)
        out = generate(generator, text, 1, seed)[0]
        return _Version(out.text, out.cost)
    return g


def resample(generator):
    """Ignore the feedback and sample a fresh output (the baseline a refiner must beat)."""
    def g(prompt, versions, feedbacks, seed=None):
        out = generate(generator, prompt, 1, seed)[0]
        return _Version(out.text, out.cost)
    return g


@dataclass
class _Version:
    text: str
    cost: Cost = field(default_factory=Cost)
