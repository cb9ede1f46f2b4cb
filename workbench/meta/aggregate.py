"""Whole-response aggregation and execution-aware reranking (survey §4.2.1-4.2.2, §5.2).

`universal_self_consistency` (Chen et al., 2023) shows an LLM all N full responses and lets it
name the most consistent one, so it works where no answer can be extracted (free text, code).
`lever` (Ni et al., 2023) reranks sampled programs by p_theta(y | x) times a verifier's
P(correct | x, y, E(y)) that sees the program's execution result E(y), and sums that score over
the programs whose results agree.
"""
from __future__ import annotations

import math
import re

from ..prompts import fill
from ..trace import active, emit, source
from .base import MetaResult, generate, total_cost

USC_TEMPLATE = ("I have generated the following responses to the question: {prompt}\n\n"
                "{responses}\n\nEvaluate these responses. Select the most consistent response "
                "based on majority consensus.\nThe most consistent response is Response ")


def usc_prompt(prompt: str, texts, template: str = USC_TEMPLATE) -> str:
    """The aggregator's prompt: ``template`` with ``{prompt}`` and ``{responses}``, the N
    responses numbered from 1 in the order sampled ("Response 1: ...\\n\\nResponse 2: ..."); the
    prompt and each response are stripped of surrounding white space."""
    if not isinstance(template, str) or "{responses}" not in template:
        raise ValueError(f"template must be a string containing {{responses}}, got {template!r}")
    listed = "\n\n".join(f"Response {i}: {t.strip()}" for i, t in enumerate(texts, 1))
    return fill(template, prompt=prompt.strip(), responses=listed)


def parse_choice(reply: str, n: int):
    """The 1-based response number the aggregator wrote: the first integer in its reply, as a
    0-based index when it lies in 1..n, else None (no integer, or one out of range)."""
    m = re.search(r"\d+", reply)
    k = int(m.group()) if m else None
    return k - 1 if k is not None and 1 <= k <= n else None


def universal_self_consistency(prompt, generator, aggregator, n: int,
                               template: str = USC_TEMPLATE, seed=None,
                               on_unparsed: str = "first",
                               max_prompt_tokens: int | None = None,
                               count_tokens=None) -> MetaResult:
    """Universal self-consistency (Chen et al., 2023; survey §4.2.2): a transformation h that
    is itself an LLM reading the N full responses,

        y^(1..N) ~ g(. | x),   k = parse(a),   a ~ g_agg(. | T(x, y^(1), ..., y^(N))),
        y_hat = y^(k),

    where T is ``template`` listing the responses as "Response 1: ..." to "Response N: ..." and
    asking which is most consistent with the others; ``parse_choice`` reads the first integer
    the aggregator writes.  The full text of y^(k) is returned, so nothing needs an extractable
    answer.  When the reply holds no integer in 1..N, ``on_unparsed="first"`` returns
    response 1 (the first sample: what one sample without aggregation would give) and sets
    ``info["parsed"] = False``; ``on_unparsed="raise"`` raises ValueError instead.

    Cost (Table 5): the N generations, plus the aggregator's call, whose input is the whole
    prompt T (C_t: it reads every response) and whose output is its reply.
    ``max_prompt_tokens`` (with ``count_tokens``, default whitespace words) refuses, with a
    ValueError, a prompt T longer than the aggregator can read, before calling it.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if on_unparsed not in ("first", "raise"):
        raise ValueError(f"on_unparsed must be 'first' or 'raise', got {on_unparsed!r}")
    if max_prompt_tokens is not None and max_prompt_tokens < 1:
        raise ValueError(f"max_prompt_tokens must be >= 1 or None, got {max_prompt_tokens!r}")
    usc_prompt("", [], template)   # checks the template before anything is generated
    with source("universal_self_consistency"):
        cands = generate(generator, prompt, n, seed)
        agg_prompt = usc_prompt(prompt, [c.text for c in cands], template)
        if max_prompt_tokens is not None:
            count = count_tokens or (lambda s: len(s.split()))
            size = count(agg_prompt)
            if size > max_prompt_tokens:
                raise ValueError(f"the aggregator's prompt is {size} tokens, over "
                                 f"max_prompt_tokens={max_prompt_tokens}: use a smaller n or "
                                 f"shorter responses")
        agg = generate(aggregator, agg_prompt, 1, seed)[0]
        k = parse_choice(agg.text, len(cands))
        if k is None and on_unparsed == "raise":
            raise ValueError(f"the aggregator named no response in 1..{len(cands)}: "
                             f"{agg.text!r}")
        chosen = 0 if k is None else k
        if active():
            for i, c in enumerate(cands):
                emit("candidate", index=i, text=c.text, answer=None, score=None)
        emit("aggregate", prompt=agg_prompt, output=agg.text)
        emit("choose", index=chosen, parsed=k is not None)
    return MetaResult(cands[chosen].text, total_cost(cands) + agg.cost, cands, None, chosen,
                      info={"parsed": k is not None, "aggregator_prompt": agg_prompt,
                            "aggregator_output": agg.text, "aggregator_cost": agg.cost,
                            "fallback": None if k is not None else "first response"},
                      logprob=getattr(cands[chosen], "logprob", None))


# -- LEVER: reranking with execution results ------------------------------------------------

def sandbox_executor(timeout: float = 5.0, extract=None):
    """``execute(prompt, text) -> str`` for `lever`: run the program (``extract(text)`` if
    given, e.g. `workbench.tasks.code.extract_code`, else the text itself) ONLY in the sandbox
    (`workbench.tools.run_python`); the result is what it printed, stripped, or, when it
    failed, its error ("exit status 1: ZeroDivisionError: division by zero")."""
    from ..tools.sandbox import run_python

    def execute(prompt, text):
        code = extract(text) if extract is not None else text
        if code is None:
            return "no program found"
        return run_python(code, timeout=timeout).feedback
    return execute


LEVER_TEMPLATE = "{program}\n# execution result: {result}"


def judge_verifier(judge, template: str = LEVER_TEMPLATE):
    """``verifier(prompt, text, result) -> (P(correct), Cost)`` from a yes/no judge
    (`workbench.reward_models.LLMJudge`, or anything with ``reply_scores(prompt, replies)``
    and ``reply_cost(prompt, replies)``): the judge reads the prompt and, as the reply,
    ``template`` filled with the program and its execution result."""
    if not isinstance(template, str) or "{result}" not in template:
        raise ValueError(f"template must be a string containing {{result}}, got {template!r}")

    def verifier(prompt, text, result):
        reply = fill(template, program=text, result=result)
        return judge.reply_scores(prompt, [reply])[0], judge.reply_cost(prompt, [reply])
    return verifier


def _logsumexp(xs):
    top = max(xs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(x - top) for x in xs))


def lever(prompt, generator, verifier, execute, n: int, seed=None,
          aggregate: bool = True) -> MetaResult:
    """LEVER (Ni et al., 2023): rerank sampled programs with a verifier that sees their
    execution results (survey §4.2.1 reranking with §5.2's execution feedback).

    Each program y ~ g(. | x) is executed, r = E(y) = ``execute(prompt, y.text)``, and scored

        s(y) = log p_theta(y | x) + log P_v(correct | x, y, E(y)),

    with log p_theta from ``y.logprob`` (the model's own probability, not the proposal's) and
    ``verifier(prompt, text, result) -> (P_v, cost)``.  Without aggregation the program of
    largest s wins.  With ``aggregate=True`` programs that give the same result pool their
    joint probability,

        S(r) = log sum_{distinct y: E(y) = r} p_theta(y | x) P_v(correct | x, y, r),

    the result r* = argmax S wins, and its program of largest s is returned.  A program sampled
    twice is one program: it is counted once in S (summing probabilities over a set of distinct
    programs).  Ties go to the earliest candidate (result).  ``scores`` are the s(y);
    ``info["results"]`` maps each result to S(r).  Cost: the generations plus the verifier's.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not callable(verifier) or not callable(execute):
        raise TypeError("verifier and execute must be callables: verifier(prompt, text, "
                        "result) -> (prob, Cost), execute(prompt, text) -> str")
    with source("lever"):
        cands = generate(generator, prompt, n, seed)
        if any(getattr(c, "logprob", None) is None for c in cands):
            raise ValueError("lever needs log p_theta(y | x): the generator's outputs must "
                             "carry .logprob")
        cost, results, scores, probs = total_cost(cands), [], [], []
        for c in cands:
            r = execute(prompt, c.text)
            if not isinstance(r, str):
                raise TypeError(f"execute must return the execution result as a string, "
                                f"got {type(r).__name__}")
            p, v_cost = verifier(prompt, c.text, r)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"the verifier must return a probability in [0, 1], got {p}")
            cost = cost + v_cost
            results.append(r)
            probs.append(float(p))
            scores.append(c.logprob + (math.log(p) if p > 0 else -math.inf))
        pooled, seen = {}, set()
        for c, r, s in zip(cands, results, scores):
            if c.text not in seen:
                pooled.setdefault(r, []).append(s)
                seen.add(c.text)
        by_result = {r: _logsumexp(ss) for r, ss in pooled.items()}
        if aggregate:
            best_r = max(by_result, key=lambda r: by_result[r])   # first max: earliest result
            pool = [i for i, r in enumerate(results) if r == best_r]
        else:
            pool = range(len(cands))
        best = max(pool, key=lambda i: scores[i])
        if active():
            for i, c in enumerate(cands):
                emit("candidate", index=i, text=c.text, answer=results[i], score=scores[i])
        emit("choose", index=best, score=by_result[results[best]] if aggregate else scores[best],
             answer=results[best])
    return MetaResult(cands[best].text, cost, cands, scores, best, results[best],
                      info={"results": by_result, "executions": results,
                            "verifier_probs": probs, "aggregate": aggregate},
                      logprob=cands[best].logprob)
