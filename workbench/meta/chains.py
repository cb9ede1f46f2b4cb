"""Chained meta-generators (survey §4.1) and tools inside generation (§5.2).

A chain feeds one generator's output into the next one's prompt, y = f_3 o f_2 o f_1 (eqs.
24-26); chain-of-thought is the two-step chain z ~ g(z | x), y ~ g(y | x, z) (eq. 27).
"""
from __future__ import annotations

from ..trace import emit, source
from ..budget import Cost
from .base import MetaResult, _seeds, generate


def chain(prompt, stages, seed=None) -> MetaResult:
    """Run ``stages`` in order (eq. 25): each is ``(generator, template)``, where the template
    builds the stage's prompt from the original input ``x`` and the previous output ``y``:
    a format string (``"Q: {y}"``) or a function ``(x, y) -> prompt``.  The result's
    candidates are the stages' outputs; ``info["prompts"]`` the prompts they saw."""
    if not stages:
        raise ValueError("stages must not be empty")
    outs, prompts, cost = [], [], Cost()
    with source("chain"):
        for k, ((gen, template), s) in enumerate(zip(stages, _seeds(seed, len(stages)))):
            y = outs[-1].text if outs else prompt
            current = template(prompt, y) if callable(template) else template.format(x=prompt, y=y)
            out = generate(gen, current, 1, s)[0]
            emit("stage", index=k, prompt=current, output=out.text)
            outs.append(out)
            prompts.append(current)
            cost = cost + out.cost
    return MetaResult(outs[-1].text, cost, outs, info={"prompts": prompts})


def chain_of_thought(prompt, reasoner, answerer, marker: str = "A: ", seed=None) -> MetaResult:
    """Chain-of-thought (eq. 27): z ~ g(z | x) with the ``reasoner`` (cut where it starts to
    state the answer: at ``marker``, trailing spaces aside, so a reasoner that stops at
    ``"A:"`` works), then y ~ g(y | x, z) with the ``answerer`` on ``x + z + marker``."""
    if not isinstance(marker, str) or not marker.strip():
        raise ValueError(f"marker must be a non-empty string, got {marker!r}")
    s1, s2 = _seeds(seed, 2)
    with source("chain_of_thought"):
        z = generate(reasoner, prompt, 1, s1)[0]
        thought = z.text.split(marker.rstrip())[0]
        if thought and not thought.endswith("\n"):
            thought += "\n"
        y = generate(answerer, prompt + thought + marker, 1, s2)[0]
        answer = y.text.split("\n")[0]
        emit("stage", index=0, prompt=prompt, output=thought)
        emit("stage", index=1, prompt=prompt + thought + marker, output=answer)
    return MetaResult(thought + marker + answer, z.cost + y.cost, [z, y],
                      info={"thought": thought, "answer_text": answer})


def least_to_most(prompt, solver, decomposer, seed=None, max_questions: int = 32) -> MetaResult:
    """Problem decomposition (least-to-most, Zhou et al. 2023; survey §4.1).

    The ``decomposer`` (f_1) splits the problem into sub-questions in the order they must be
    answered; the ``solver`` generator answers each, and its answer is substituted before the
    next sub-question is asked.  A decomposer has ``start(prompt) -> state``, ``question(state)
    -> (solver prompt, sub-question) or None`` (None: solved), ``substitute(state, reply) ->
    (state, line, value)`` (value None: the reply gave no answer, and the chain stops) and
    ``answer(state)``.  TinyWorld's parser is one (`tinyworld.formats.ArithmeticDecomposer`);
    a prompted LM that writes sub-questions is another.
    """
    state = decomposer.start(prompt)
    outs, lines, cost = [], [], Cost()
    with source("least_to_most"):
        for s in _seeds(seed, max_questions):
            asked = decomposer.question(state)
            if asked is None:
                break
            solver_prompt, sub = asked
            out = generate(solver, solver_prompt, 1, s)[0]
            state, line, value = decomposer.substitute(state, out.text)
            emit("stage", index=len(outs), prompt=solver_prompt, question=sub, output=out.text,
                 answer=value)
            outs.append(out)
            cost = cost + out.cost
            lines.append(line)
            if value is None:
                break
    final = decomposer.answer(state)
    text = "".join(ln + "\n" for ln in lines) + (f"A: {final}" if final is not None else "")
    return MetaResult(text, cost, outs, answer=final, info={"sub_questions": len(outs)})


def tool_generate(lm, prompt, tools=None, seed=None, greedy: bool = True, adapters=None,
                  max_new_tokens: int = 160, max_calls: int = 16):
    """Generation with tool calls spliced in mid-decoding (§5.2).

    Decoding stops when the model closes a call (``[/CALC]``); the tool runs on the call's
    text, its result (``=21``) is appended to the sequence, and decoding continues from the
    same KV cache.  The model never has to produce the result itself.  Tool output tokens are
    booked as external tokens.
    """
    from .. import decoding
    from ..rng import make_generator
    from ..tools.calculator import calculator
    tools = tools or {"CALC": calculator}
    close = {f"[/{name}]": (f"[{name}]", fn) for name, fn in tools.items()}
    gen = make_generator(seed, lm.device)
    chooser = decoding.choose_greedy if greedy else decoding.choose_sample
    lm.prompt_ids(prompt, max_new_tokens)   # clear errors for a bad or too long prompt
    snap = lm.counter.snapshot()
    state = lm.prefill(prompt)
    n_prompt = len(state.ids[0])
    text, logprobs, tokens, calls, ext, finish = "", [], [], [], 0, "length"
    g_logprobs, end = [], (None, None)
    with source("tool_generate"):
        while len(tokens) < max_new_tokens:
            g = decoding.decode(lm, state, chooser, max_new_tokens - len(tokens), adapters,
                                stop=list(close), generator=gen, source="tool_generate")[0]
            finish = g.finish_reason
            tokens += g.token_ids
            logprobs += g.logprobs
            g_logprobs += g.proposal_logprobs
            end = (g.end_logprob, g.end_proposal_logprob)
            text += g.text
            hit = next((c for c in close if text.endswith(c)), None)
            if g.finish_reason != "stop" or hit is None or len(calls) >= max_calls:
                break
            open_tag, fn = close[hit]
            call = text[text.rfind(open_tag) + len(open_tag): -len(hit)]
            try:
                result = fn(call)
            except ValueError as err:
                result = f"=error({err})"
            ids = lm.encode(result, bos=False)
            emit("tool", tool=open_tag.strip("[]"), call=call, result=result)
            calls.append({"call": call, "result": result})
            ext += len(ids)
            # decode stopped before feeding its last token: feed it with the tool's result
            lm.extend(state, [g.token_ids[-1]] + ids)
            text += result
            tokens += ids
            logprobs += [0.0] * len(ids)         # a tool's tokens are given, not drawn
            g_logprobs += [0.0] * len(ids)
            finish = "length"       # decoding goes on, unless the result used up the budget
    return decoding.Generation.of(lm, prompt, state.ids[0][:n_prompt], tokens, logprobs, finish,
                                  spent=lm.counter.since(snap), external_tokens=ext, text=text,
                                  info={"tool_calls": calls}, end_logprob=end[0],
                                  proposal_logprobs=g_logprobs, end_proposal_logprob=end[1])
