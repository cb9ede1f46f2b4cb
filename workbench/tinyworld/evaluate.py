"""Measurements of the zoo against TinyWorld's exact ground truth (written to ``metrics.json``)."""
from __future__ import annotations

import random
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import adapters, decoding
from ..meta.parallel import plurality
from . import arithmetic as ar
from .grammar import TokenGrammar


def solve(lm, prompts, n=1, temperature=None, seed=0, batch_rows=64, max_new_tokens=200,
          desc=None, generations=False):
    """Greedy (temperature None) or sampled solutions: a list (per prompt) of lists of texts
    (of `decoding.Generation`s, with their log-probabilities, if ``generations``)."""
    out = []
    per = max(1, batch_rows // n)
    chunks = range(0, len(prompts), per)
    for k, s in enumerate(tqdm(chunks, desc=desc, disable=desc is None)):
        group = prompts[s:s + per]
        if temperature is None:
            gens = [[g] for g in decoding.greedy(lm, group, max_new_tokens=max_new_tokens)]
        else:
            gens = decoding.sample(lm, group, adapters=[lambda x: adapters.temperature(
                x, temperature)], seed=seed * 100_003 + k, n=n, max_new_tokens=max_new_tokens)
        out += [list(gs) if generations else [g.text for g in gs] for gs in gens]
    return out


def majority(answers):
    """Most common non-None answer (ties: first seen), or None: `meta.plurality`, the one
    vote counter."""
    return plurality(answers)


def arithmetic_report(lm, tasks, temperature=1.0, n=16, seed=0, verifier=None, progress=True):
    """Greedy accuracy, pass@n, maj@n, overall and per cell; with a verifier also best-of-n by
    its probability (``bon``, eq. 28) and by p_theta(y | x) times it (``bon_joint``, the mode
    of eq. 17's q*, `scoring.JointScorer`)."""
    from ..scoring import joint_log_score
    prompts = [t["prompt"] for t in tasks]
    greedy = [g[0] for g in solve(lm, prompts, desc="greedy" if progress else None)]
    gens = solve(lm, prompts, n=n, temperature=temperature, seed=seed,
                 desc=f"samples T={temperature}" if progress else None, generations=True)
    samples = [[g.text for g in gs] for gs in gens]
    rows = []
    for t, g, ss, gs in zip(tasks, greedy, samples, gens):
        answers = [ar.extract_answer(s) for s in ss]
        correct = [a == t["answer"] for a in answers]
        row = {"id": t["id"], "n_ops": t["n_ops"], "digits": t["digits"],
               "greedy": ar.extract_answer(g) == t["answer"], "pass": any(correct),
               "maj": majority(answers) == t["answer"], "sample_acc": float(np.mean(correct))}
        if verifier is not None:
            scores = verifier.score([t["prompt"] + s for s in ss])
            row["bon"] = correct[int(np.argmax(scores))]
            joint = [joint_log_score(g.logprob, p) for g, p in zip(gs, scores)]
            row["bon_joint"] = correct[int(np.argmax(joint))]
        rows.append(row)
    keys = ["greedy", "pass", "maj", "sample_acc"] + (
        ["bon", "bon_joint"] if verifier is not None else [])
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    cells = {}
    for r in rows:
        cells.setdefault(f"{r['n_ops']}x{r['digits']}", []).append(r)
    summary["by_cell"] = {c: {k: round(float(np.mean([r[k] for r in rs])), 3) for k in keys}
                          for c, rs in sorted(cells.items())}
    summary.update(temperature=temperature, n=n, problems=len(tasks),
                   **{f"{k}_bits": "".join("1" if r[k] else "0" for r in rows)
                      for k in ("greedy", "bon", "bon_joint") if k in keys})
    return summary, rows, samples


@torch.no_grad()
def grammar_kl(lm, grammar, n_texts=200, seed=0):
    """Mean per-token KL(p* || p_theta) over texts drawn from p* (exact p*, model's p_theta)."""
    tg = TokenGrammar(grammar, lm.tokenizer)
    rng = random.Random(seed)
    kls = []
    for _ in range(n_texts):
        text = grammar.prompt + grammar.sample(rng)
        ids = lm.encode(text) + [lm.eos_token_id]
        n_prompt = 1 + len(tg.prompt_ids)
        logits = lm.forward(torch.tensor([ids[:-1]]))[0][0]
        logp = torch.log_softmax(logits, -1)
        for pos in range(n_prompt, len(ids)):
            pstar = tg.next_token_distribution(ids[:pos])
            kls.append(sum(p * (np.log(p) - float(logp[pos - 1, t])) for t, p in pstar.items()))
    return float(np.mean(kls))


def decode_ms_per_token(lm, n_tokens=128, repeats=3):
    """Median wall time per generated token at batch 1 with the KV cache (greedy, no EOS stop)."""
    prompt = lm.encode("Story:")
    times = []
    for _ in range(repeats + 1):
        state = lm.prefill(prompt)
        t0 = time.perf_counter()
        for _ in range(n_tokens):
            lm.advance(state, state.logits.argmax(-1))
        times.append((time.perf_counter() - t0) / n_tokens * 1000)
    return float(np.median(times[1:]))


def auroc(scores, labels) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half)."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def within_problem_auroc(scores_by_problem, labels_by_problem) -> float:
    """Mean over problems of the AUROC among that problem's own solutions (problems whose
    solutions are all right or all wrong are skipped).  Best-of-N needs exactly this: a scorer
    can reach a high pooled AUROC by telling easy problems from hard ones while ranking the
    solutions of one problem no better than chance (0.5)."""
    per = [auroc(s, y) for s, y in zip(scores_by_problem, labels_by_problem)
           if 0 < sum(map(bool, y)) < len(y)]
    return float(np.mean(per)) if per else float("nan")


def slip_test(verifier, tasks, seed=0) -> dict:
    """Does a verifier check the steps?  For each task, a right worked solution and the same
    kind of solution with one slip (`arithmetic.slipped_solution`): the fraction of problems
    where the right one scores higher, per kind of slip (0.5 = blind to it, 1 = always
    catches it)."""
    rng, pairs = random.Random(seed), {}
    for slip in ar.SLIPS:
        texts, labels = [], []
        for t in tasks:
            p = ar.Problem(t["expression"])
            pair = [p.solution(rng=rng), ar.slipped_solution(p, rng, slip)]
            texts += [t["prompt"] + x for x in pair]
            labels.append([ar.check_answer(p, x) for x in pair])
        pairs[slip] = texts, labels
    # every distinct text of every kind of slip is scored once, in one batched call
    distinct = list(dict.fromkeys(x for texts, _ in pairs.values() for x in texts))
    score = dict(zip(distinct, verifier.score(distinct)))
    return {slip: within_problem_auroc([[score[x] for x in texts[k:k + 2]]
                                        for k in range(0, len(texts), 2)], labels)
            for slip, (texts, labels) in pairs.items()}


def step_positions(tokenizer, prompt: str, text: str) -> tuple:
    """Token ids of prompt+text and the index of the newline token that ends each step line."""
    ids = tokenizer(prompt + text)["input_ids"]
    n_prompt = len(tokenizer(prompt)["input_ids"])
    nl = [i for i in range(n_prompt, len(ids)) if tokenizer.decode([ids[i]]).endswith("\n")]
    return ids, nl


def verifier_report(verifier, prm, tasks, samples) -> dict:
    """AUROC of the outcome verifier (per solution) and of the PRM (per step) vs exact labels."""
    from .arithmetic import Problem, check_steps, extract_answer
    per_s, per_y, p_scores, p_labels = [], [], [], []   # verifier: per problem; PRM: per step
    for t, ss in zip(tasks, samples):
        texts = [t["prompt"] + s for s in ss]
        per_s.append(verifier.score(texts))
        per_y.append([extract_answer(s) == t["answer"] for s in ss])
        prob = Problem(t["expression"])
        probs = prm.position_probs(texts)
        for s, pr in zip(ss, probs):
            ids, nl = step_positions(prm.tokenizer, t["prompt"], s)
            chk = check_steps(prob, s)
            for k, pos in enumerate(nl[: len(chk.correct)]):
                p_scores.append(pr[pos])
                p_labels.append(chk.correct[k])
    v_labels = sum(per_y, [])
    return {"verifier_auroc": auroc(sum(per_s, []), v_labels),
            "prm_step_auroc": auroc(p_scores, p_labels),
            "verifier_within_problem_auroc": within_problem_auroc(per_s, per_y),
            "solutions": len(v_labels), "steps": len(p_labels),
            "correct_fraction": float(np.mean(v_labels))}


def json_validity(lm, n=200, temperature=1.0, seed=0) -> float:
    from .worlds import JSON_PROMPT, validate_record
    texts = solve(lm, [JSON_PROMPT] * (n // 20), n=20, temperature=temperature, seed=seed,
                  max_new_tokens=96)
    flat = [s for ss in texts for s in ss]
    return float(np.mean([validate_record(s)[0] for s in flat]))


def attribute_rate(lm, label: int, n=200, temperature=1.0, seed=0) -> dict:
    """Fraction of ``Review:`` samples whose exact sentiment is ``label`` (and grammatical)."""
    from .worlds import review_grammar, sentiment
    texts = solve(lm, [review_grammar().prompt] * (n // 20), n=20, temperature=temperature,
                  seed=seed, max_new_tokens=64)
    labels = [sentiment(s) for ss in texts for s in ss]
    return {"attribute_rate": float(np.mean([x == label for x in labels])),
            "grammatical": float(np.mean([x is not None for x in labels]))}


@torch.no_grad()
def next_token_agreement(target, draft, docs) -> float:
    """Fraction of corpus positions where the draft's argmax equals the target's argmax."""
    agree = total = 0
    for text in docs:
        ids = torch.tensor([target.encode(text)])
        a = target.forward(ids)[0][0].argmax(-1)
        b = draft.forward(ids)[0][0].argmax(-1)
        agree += int((a == b).sum())
        total += a.numel()
    return agree / total


def load_seconds(name) -> float:
    from .. import loading
    t0 = time.perf_counter()
    loading.load(name, device="cpu")
    return time.perf_counter() - t0
