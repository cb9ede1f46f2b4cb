"""Refinement with the model's own words (survey §4.4): Self-Refine and Reflexion.

*Self-Refine* (Madaan et al., 2023) is the loop of eqs. 41-43 with one model p_theta and three
prompts: the initial prompt, a feedback prompt whose output is a written critique (eq. 45), and
a refine prompt that shows the question, the last version and the critique (eq. 44; `reask`).
*Reflexion* (Shinn et al., 2023) keeps the verdict outside the model - a task check or unit
tests - and asks the model to *reflect* on each failure; the reflections are kept in a bounded
memory that goes into every later attempt's prompt.
"""
from __future__ import annotations

from ..budget import Cost
from ..prompts import fill
from ..trace import emit, source
from ..validate import count
from .base import MetaResult, _seeds, generate
from .parallel import default_answer
from .refine import Feedback, REASK_TEMPLATE, chat_tokenizer, chat_turn, reask, refine

CRITIQUE_TEMPLATE = ("{prompt}{solution}\n\nReview the reply above step by step. If it is "
                     "right, say \"No errors.\"; otherwise say what is wrong.\nReview:")


def _needs(name: str, template, *fields):
    missing = [f for f in fields if not isinstance(template, str) or "{" + f + "}" not in template]
    if missing:
        raise ValueError(f"{name} must be a string containing "
                         f"{', '.join('{' + f + '}' for f in missing)}, got {template!r}")


def _stop_rule(done):
    if callable(done):
        return done
    if isinstance(done, str) and done.strip():
        marker = done.strip().lower()
        return lambda text: text.strip().lower().startswith(marker)
    raise ValueError(f"done must be a non-empty string (the critique's opening that means "
                     f"'accept') or a predicate text -> bool, got {done!r}")


FEEDBACK_TURN = ("Review your reply. If it is right, say \"No errors.\"; otherwise say "
                 "what is wrong.")


def critique_feedback(generator, template: str = CRITIQUE_TEMPLATE, done="No errors",
                      task=None, feedback_turn: str = FEEDBACK_TURN, seed=None):
    """Intrinsic, written: the same model critiques its latest version (eq. 45),

        z(t) ~ h_theta(z | P_feedback(x, y(t)))

    with P_feedback = ``template`` filled with ``{prompt}`` (x) and ``{solution}`` (the latest
    version); only the latest version is shown, not the whole history.  The critique is
    ``Feedback.text``; it is ``done`` when it opens with the ``done`` marker (case and
    surrounding spaces ignored) or, for a callable ``done``, when ``done(critique)`` is true.
    Its cost is the generator's own: the prompt as input tokens and the critique as *output*
    tokens of p_theta, no external tokens (Table 5, self-feedback).  A chat model (one whose
    ``generator.lm`` tokenizer has a chat template) is asked in turns, as `reask` does:
    [user: the ``task``'s question, assistant: y(t), user: ``feedback_turn``].  ``seed`` (an int
    or None) seeds the critique of version t with a seed of its own."""
    _needs("template", template, "prompt", "solution")
    is_done = _stop_rule(done)
    tok = chat_tokenizer(generator, task, "ask for a critique from")

    def h(prompt, versions, feedbacks):
        text = (chat_turn(tok, task, prompt, versions[-1], feedback_turn) if tok is not None
                else fill(template, prompt=prompt, solution=versions[-1].rstrip("\n")))
        s = None if seed is None else _seeds(seed + len(versions), 1)[0]
        out = generate(generator, text, 1, s)[0]
        critique = out.text.strip()
        return Feedback(bool(is_done(critique)), critique, cost=out.cost)
    return h


def self_refine(prompt, generator, max_iterations: int = 3, done="No errors",
                critique_template: str = CRITIQUE_TEMPLATE, refine_template: str = REASK_TEMPLATE,
                task=None, stop_when_unchanged: bool = True, answer_fn=default_answer,
                seed=None) -> MetaResult:
    """Self-Refine (Madaan et al., 2023): one model, three prompts.

        y(0) ~ g0(y | x)                                        (41)
        z(t) ~ h_theta(z | P_feedback(x, y(<t), z(<t)))        (45, `critique_feedback`)
        y(t) ~ g_theta(y | P_refine(x, y(<t), z(<=t)))         (44, `reask`)

    i.e. ``refine(prompt, generator, critique_feedback(generator), reask(generator))``: stops
    when the critique says ``done``, when a refinement changes nothing, or after
    ``max_iterations`` refinements.

    Cost.  Table 5's self-feedback row, ``budget.table5("refinement (self-feedback)", T_in, T,
    n_r=N_r)``, predicts T_in + (2 T_in + T) N_r input and T + 2 T N_r output tokens, no
    external ones: each round is a critique and a refinement, each writing T tokens, and the
    refiner also reads the critique (the extra T).  The loop bills exactly that when every
    call reads T_in tokens (besides the critique it is shown) and writes T, and it stops at
    ``max_iterations`` without accepting.  Where the real loop departs from it:
    - a loop that ends because the critique accepts has critiqued its last version too: N_r
      refinements take N_r + 1 critiques (one more T_in in, T out);
    - prompts are not the same size: the critique prompt holds x and y(t), the refine prompt x,
      y(t) and z(t), so with real counts T_in is not one number (here they do not grow with the
      history: only the latest version and critique are shown, a Markov form of eqs. 44-45);
    - a refinement equal to the previous version stops the loop (``stop_when_unchanged``)
      after its call was billed, and critiques and versions are not all T tokens long.
    """
    h = critique_feedback(generator, critique_template, done, task,
                          seed=None if seed is None else _seeds(seed, 1)[0])
    g = reask(generator, task, refine_template)
    return refine(prompt, generator, h, g, max_iterations, stop_when_unchanged, answer_fn, seed)


REFLECT_TEMPLATE = ("{prompt}{attempt}\n\nThis attempt failed: {message}\nIn one or two "
                    "sentences, say why it failed and what to do differently next time.\n"
                    "Reflection:")
MEMORY_TEMPLATE = "Lessons from earlier attempts:\n{reflections}\n\n{prompt}"


def reflexion(prompt, generator, evaluate, reflect, max_trials: int = 4, memory: int = 3,
              reflect_template: str = REFLECT_TEMPLATE, memory_template: str = MEMORY_TEMPLATE,
              answer_fn=default_answer, count_tokens=None, seed=None) -> MetaResult:
    """Reflexion (Shinn et al., 2023): attempt, evaluate, reflect, remember, attempt again.

        y(k) ~ g(y | x, M(k)),   (ok(k), m(k)) = evaluate(x, y(k)),
        r(k) ~ p_theta(r | P_reflect(x, y(k), m(k))),   M(k+1) = last ``memory`` of M(k) + [r(k)]

    The evaluator is extrinsic (a task check, unit tests run in the sandbox):
    ``evaluate(prompt, text) -> (ok, message)``, or ``(ok, message, cost)``; without a cost its
    message is billed as external tokens (``count_tokens``, default whitespace words), as the
    environment sources of `refine` do.  On failure ``reflect`` (a generator: the actor's own
    model, or another) is prompted with ``reflect_template`` (``{prompt}``, ``{attempt}``,
    ``{message}``) and writes a verbal reflection r(k); the memory keeps the last ``memory``
    reflections, and attempt k+1 is prompted with ``memory_template`` (``{reflections}``, one
    ``- r`` a line, and ``{prompt}``).  Stops at the first attempt that passes ("passed") or
    after ``max_trials`` attempts ("max_trials"; the last failure is not reflected on).

    The result's text is the passing attempt, else the last; ``candidates`` are all attempts;
    ``scores`` 1.0 / 0.0 for pass / fail; ``info`` has the attempts, messages, every
    reflection, the final memory, the prompts the actor saw and why it stopped.  Cost: the
    attempts' and reflections' tokens plus the evaluator's."""
    count("max_trials", max_trials)
    count("memory", memory)
    if not callable(evaluate):
        raise ValueError(f"evaluate must be a callable (prompt, text) -> (ok, message), "
                         f"got {evaluate!r}")
    if not (callable(reflect) or hasattr(reflect, "generate")):
        raise ValueError(f"reflect must be a generator (or fn(prompt, seed)), got {reflect!r}")
    _needs("reflect_template", reflect_template, "attempt", "message")
    _needs("memory_template", memory_template, "reflections", "prompt")
    words = count_tokens or (lambda s: len(s.split()))
    seeds = _seeds(seed, 2 * max_trials)
    attempts, passed, messages, reflections, prompts = [], [], [], [], []
    kept: list = []
    cost, stopped = Cost(), "max_trials"
    with source("reflexion"):
        for k in range(max_trials):
            reflections_text = "\n".join(f"- {r}" for r in kept)
            x = fill(memory_template, reflections=reflections_text, prompt=prompt) if kept \
                else prompt
            prompts.append(x)
            y = generate(generator, x, 1, seeds[2 * k])[0]
            attempts.append(y)
            cost = cost + y.cost
            emit("version", it=k, text=y.text)
            verdict = evaluate(prompt, y.text)
            ok, message = bool(verdict[0]), str(verdict[1])
            cost = cost + (verdict[2] if len(verdict) > 2 else
                           Cost(external_tokens=words(message)))
            passed.append(ok)
            messages.append(message)
            emit("feedback", it=k, done=ok, text=message, first_error=None, fix=None)
            if ok:
                stopped = "passed"
                break
            if k == max_trials - 1:
                break
            asked = fill(reflect_template, prompt=prompt, attempt=y.text.rstrip("\n"),
                          message=message)
            r = generate(reflect, asked, 1, seeds[2 * k + 1])[0]
            cost = cost + r.cost
            reflections.append(r.text.strip())
            kept = (kept + [r.text.strip()])[-memory:]
            emit("reflection", it=k, text=r.text.strip(), memory=len(kept))
        chosen = len(attempts) - 1
        answer = answer_fn(attempts[chosen].text)
        emit("stop", reason=stopped, answer=answer)
    return MetaResult(attempts[chosen].text, cost, attempts, [float(p) for p in passed], chosen,
                      answer, info={"attempts": [a.text for a in attempts], "passed": passed,
                                    "messages": messages, "reflections": reflections,
                                    "memory": kept, "prompts": prompts, "stopped": stopped,
                                    "trials": len(attempts)})


def feedback_evaluator(feedback):
    """A refinement information source (``h(prompt, versions, feedbacks) -> Feedback``, e.g.
    ``execution_feedback(task=task)``, a problem's unit tests in the sandbox) as a Reflexion
    ``evaluate``: ``(z.done, z.text, z.cost)`` for the one attempt."""
    def evaluate(prompt, text):
        z = feedback(prompt, [text], [])
        return z.done, z.text, z.cost
    return evaluate
