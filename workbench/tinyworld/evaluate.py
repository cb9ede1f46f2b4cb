"""Measurements of the zoo against TinyWorld's exact ground truth (written to ``metrics.json``)."""
from __future__ import annotations

import random
import time
from collections import Counter

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import adapters, decoding
from . import arithmetic as ar
from .grammar import TokenGrammar


def solve(lm, prompts, n=1, temperature=None, seed=0, batch_rows=64, max_new_tokens=128,
          desc=None):
    """Greedy (temperature None) or sampled solutions: a list (per prompt) of lists of texts."""
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
        out += [[g.text for g in gs] for gs in gens]
    return out


def majority(answers):
    """Most common non-None answer (ties: first seen), or None."""
    valid = [a for a in answers if a is not None]
    return Counter(valid).most_common(1)[0][0] if valid else None


def arithmetic_report(lm, tasks, temperature=1.0, n=16, seed=0, verifier=None, progress=True):
    """Greedy accuracy, pass@n, maj@n (and best-of-n by a verifier), overall and per cell."""
    prompts = [t["prompt"] for t in tasks]
    greedy = [g[0] for g in solve(lm, prompts, desc="greedy" if progress else None)]
    samples = solve(lm, prompts, n=n, temperature=temperature, seed=seed,
                    desc=f"samples T={temperature}" if progress else None)
    rows = []
    for t, g, ss in zip(tasks, greedy, samples):
        answers = [ar.extract_answer(s) for s in ss]
        correct = [a == t["answer"] for a in answers]
        row = {"id": t["id"], "n_ops": t["n_ops"], "digits": t["digits"],
               "greedy": ar.extract_answer(g) == t["answer"], "pass": any(correct),
               "maj": majority(answers) == t["answer"], "sample_acc": float(np.mean(correct))}
        if verifier is not None:
            scores = verifier.score([t["prompt"] + s for s in ss])
            row["bon"] = correct[int(np.argmax(scores))]
        rows.append(row)
    keys = ["greedy", "pass", "maj", "sample_acc"] + (["bon"] if verifier is not None else [])
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    cells = {}
    for r in rows:
        cells.setdefault(f"{r['n_ops']}x{r['digits']}", []).append(r)
    summary["by_cell"] = {c: {k: round(float(np.mean([r[k] for r in rs])), 3) for k in keys}
                          for c, rs in sorted(cells.items())}
    summary.update(temperature=temperature, n=n, problems=len(tasks))
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
