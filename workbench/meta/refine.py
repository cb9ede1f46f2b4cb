"""Refinement (survey §4.4): an initial generator g0, an information source h and a refiner g,

    y(0) ~ g0(y | x),   z(t) ~ h(z | x, y(<t), z(<t)),   y(t) ~ g(y | x, y(<t), z(<=t))   (41-43)

run until h says the output is done, the refiner changes nothing, or ``max_iterations``.

Information sources (`Feedback` makers): *extrinsic* ones bring information the generator does
not have - a task's exact step checker (`step_feedback`), the calculator re-doing each written
operation (`calculator_feedback`), executing a program in the sandbox (`execution_feedback`),
a learned verifier (`verifier_feedback`), the answer key (`outcome_feedback`); the *intrinsic*
`self_feedback` asks the same model to redo its own steps (no new information, so it is expected
to help little, Huang et al. 2024).  Refiners: `regenerate_from_error` keeps the lines before
the first error that h localised and samples the rest again (with the tool's correction when
there is one); `corrector` rewrites the whole solution with a learned corrector (self-correction,
Welleck et al. 2023); `reask` asks the model again with its last version and h's message (e.g.
the failing tests of a code task: Self-Debugging); `resample` ignores the feedback (a baseline).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..budget import Cost
from ..trace import emit, source
from .base import MetaResult, _seeds, generate
from .parallel import default_answer
from ..validate import count


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
    count("max_iterations", max_iterations, lo=0)
    seeds = _seeds(seed, max_iterations + 1)
    with source("refine"):
        first = generate(initial, prompt, 1, seeds[0])[0]
        versions, notes, cost = [first], [], first.cost
        emit("version", it=0, text=first.text)
        stopped = "max_iterations"
        for t in range(1, max_iterations + 1):
            z = feedback(prompt, [v.text for v in versions], notes)
            notes.append(z)
            cost = cost + z.cost
            emit("feedback", it=t - 1, done=z.done, text=z.text, first_error=z.first_error,
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
            emit("version", it=t, text=y.text)
        final = versions[-1].text
        answer = answer_fn(final)
        emit("stop", reason=stopped, answer=answer)
    return MetaResult(final, cost, versions, None, len(versions) - 1, answer,
                      info={"versions": [v.text for v in versions],
                            "feedback": [z.as_dict() for z in notes], "stopped": stopped,
                            "refinements": len(versions) - 1})


def _lines(text: str) -> list:
    return text.split("\n")


def _count(text: str) -> int:
    return len(text.split())


# -- information sources h -----------------------------------------------------------------

def step_feedback(task, count_tokens=_count):
    """Extrinsic: the task's exact step checker (`Task.step_check`) localises the first wrong
    line (a step, or the answer line when every step is right but the answer is not).  The
    task finds the problem from the prompt (`Task.problem_of`)."""
    def h(prompt, versions, feedbacks):
        problem, text = task.problem_of(prompt), versions[-1]
        chk = task.step_check(problem, text)
        n_steps = len(task.steps(text))
        if chk.first_error is not None:
            k, msg = chk.first_error, chk.message
        elif not chk.complete:
            k, msg = n_steps, chk.message
        elif not task.check(problem, text):
            k, msg = n_steps, "the steps are right but the answer line is not"
        else:
            return Feedback(True, "correct", cost=Cost(external_tokens=1))
        return Feedback(False, msg, _line_index(text, task.steps(text), k), "",
                        Cost(external_tokens=count_tokens(msg)))
    return h


def _line_index(text: str, steps: list, k: int) -> int:
    """Line number of step ``k`` of ``text`` (``steps`` as the task splits them, one a line);
    for ``k`` past the last step, the first non-empty line after the steps (the answer
    line), else the line after them."""
    lines, at, j = _lines(text), [], 0
    for i, ln in enumerate(lines):
        if j < len(steps) and ln.strip() == steps[j].strip():
            at.append(i)
            j += 1
    if k < len(at):
        return at[k]
    after = at[-1] + 1 if at else 0
    rest = [i for i in range(after, len(lines)) if lines[i].strip()]
    return rest[0] if rest else after


def _answer_line(text: str) -> int:
    """Line number of the first ``A:`` line, else the number of non-empty lines."""
    lines = _lines(text)
    marked = [i for i, ln in enumerate(lines) if ln.strip().startswith("A:")]
    return marked[0] if marked else len([ln for ln in lines if ln.strip()])


CALC_LINE = re.compile(r"^\s*(?:\[CALC\])?(\d+)([+\-*])(\d+)(?:\[/CALC\])?=(-?\d+)")


def calculator_feedback(count_tokens=_count, answer_fn=default_answer):
    """Extrinsic: the calculator re-does the operation written on each line; the first line
    whose result is wrong is localised, and the correction ``a op b=<value>`` is given.  It
    cannot see a wrong choice of operation or a miscopied rest of the expression.
    ``answer_fn`` reads the stated answer, which must be the last result."""
    from ..tools.calculator import calculator

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
        ans = answer_fn(text)
        if ans is None or last is None or str(ans) != last:
            msg = "the answer line does not state the last result"
            return Feedback(False, msg, _answer_line(text),
                            "" if last is None else f"A: {last}",
                            Cost(external_tokens=calls + count_tokens(msg)))
        return Feedback(True, "every operation checks out", cost=Cost(external_tokens=calls))
    return h


def execution_feedback(expected="auto", timeout: float = 5.0, count_tokens=_count, task=None):
    """Extrinsic: run the program ONLY in the sandbox (`workbench.tools.run_python`); its output
    or error is the feedback.  An exception is localised to its line (from the traceback).

    With a code ``task`` (`workbench.tasks`: HumanEval, MBPP), the reply's program runs against
    *the prompt's problem's* unit tests (`Task.problem_of`, `CodeTask.run`), and the feedback is
    what failed.  Otherwise ``expected`` is the output to print (``"auto"``: the value of the
    arithmetic expression of a ``Code: <expression>`` prompt; None: only "runs without error");
    a wrong output is reported as a failing test would be."""
    from ..tools.sandbox import run_python

    def against_tests(prompt, text):
        problem = task.problem_of(prompt)
        res = task.run(problem, text)
        if res is None:
            msg = "no Python code found in the reply"
            return Feedback(False, msg, None, "", Cost(external_tokens=count_tokens(msg)))
        msg = task.feedback_of(res)
        return Feedback(res.ok, msg, None, "", Cost(external_tokens=count_tokens(msg)),
                        {"stdout": res.stdout.strip(), "stderr": res.stderr})

    def h(prompt, versions, feedbacks):
        if task is not None:
            return against_tests(prompt, versions[-1])
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
    from ..tools.calculator import calculate
    m = re.search(r"Code: ([0-9+\-*]+)\s*$", prompt)
    return calculate(m.group(1)) if m else None


def self_feedback(lm, count_tokens=None):
    """Intrinsic: the same model re-does each written operation ``Q: a op b`` (greedy) and the
    first line where it disagrees with itself is flagged, with its own result as the
    correction.  No information from outside p_theta: it mostly agrees with its own mistakes.
    The judge's tokens are input and output tokens of the model (Table 5, self-feedback)."""
    from .. import decoding
    from ..prompts import extract_answer

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
    from ..scoring import verify

    def h(prompt, versions, feedbacks):
        scores, cost = verify(verifier, prompt, versions[-1:])
        p = float(scores[0])
        return Feedback(p >= threshold, f"P(correct) = {p:.2f}", None, "", cost,
                        {"p_correct": p})
    return h


def outcome_feedback(task):
    """The answer key: done iff the task's checker accepts the output (z given at generation
    time, as in Welleck et al. 2023's self-correction).  An oracle: an upper bound, not a
    method.  The task finds the problem from the prompt (`Task.problem_of`)."""
    def h(prompt, versions, feedbacks):
        ok = task.check(task.problem_of(prompt), versions[-1])
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


def corrector(generator, template: str = "Fix: {question}\n{solution}\nBetter:\n", task=None):
    """A learned corrector p(y' | x, y) (self-correction, Welleck et al. 2023): rewrite the last
    version.  ``template`` builds its prompt from the question (with a ``task``, the question of
    the prompt's problem, `Task.problem_of`; else the prompt), the previous solution and the
    prompt."""
    def g(prompt, versions, feedbacks, seed=None):
        question = task.problem_of(prompt).question if task is not None else prompt.strip()
        text = template.format(question=question, solution=versions[-1].rstrip("\n"),
                               prompt=prompt)
        out = generate(generator, text, 1, seed)[0]
        return _Version(out.text, out.cost)
    return g


REASK_TEMPLATE = ("Feedback on your last reply: {feedback}\n"
                  "Write a corrected reply in the same format.")


def reask(generator, task=None, template: str = REASK_TEMPLATE):
    """Ask the model again, showing it its last version y(t) and h's message z(t) (Self-Refine,
    Madaan et al. 2023, with the feedback from any source; with a code task's failing tests,
    Self-Debugging, Chen et al. 2024).  It writes a whole new version:

        y(t+1) ~ g(y | x'),   x' = x + y(t) + "\\n\\n" + template(z(t)) + "\\n"      (a plain LM)
                              x' = chat[user: q, assistant: y(t), user: template(z(t))]   (chat)

    ``{feedback}`` in ``template`` is replaced by z(t).text.  The chat form is used when the
    generator's model (``generator.lm``) has a chat template; q is then what ``task`` asks of the
    prompt's problem (`Task.user_message` of `Task.problem_of`), so a ``task`` is needed."""
    if not isinstance(template, str) or "{feedback}" not in template:
        raise ValueError(f"template must be a string containing {{feedback}}, got {template!r}")
    tok = chat_tokenizer(generator, task, "re-ask")

    def g(prompt, versions, feedbacks, seed=None):
        said = template.replace("{feedback}", feedbacks[-1].text)
        text = (chat_turn(tok, task, prompt, versions[-1], said) if tok is not None
                else prompt + versions[-1] + "\n\n" + said + "\n")
        out = generate(generator, text, 1, seed)[0]
        return _Version(out.text, out.cost)
    return g


def chat_tokenizer(generator, task, doing: str):
    """The tokenizer of the generator's model when it has a chat template (the model is then
    asked in turns), else None; a chat model needs the ``task`` to rebuild its question."""
    tok = getattr(getattr(generator, "lm", None), "tokenizer", None)
    if tok is None or not getattr(tok, "chat_template", None):
        return None
    if task is None:
        raise ValueError(f"task: needed to {doing} a chat model (its question is rebuilt as a "
                         "chat turn with task.user_message)")
    return tok


def chat_turn(tok, task, prompt, reply: str, said: str) -> str:
    """[user: the task's question, assistant: ``reply``, user: ``said``] in the chat template,
    ready for the assistant's next turn."""
    return tok.apply_chat_template(
        [{"role": "user", "content": task.user_message(task.problem_of(prompt))},
         {"role": "assistant", "content": reply}, {"role": "user", "content": said}],
        tokenize=False, add_generation_prompt=True)


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
