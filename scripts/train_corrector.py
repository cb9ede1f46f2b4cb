"""Train TinyWorld's learned corrector with the self-corrective loop (Welleck et al. 2023; §4.4).

    python scripts/train_corrector.py            # data/models/tinyworld-corrector (CPU, minutes)

The corrector p(y' | x, y) is the target model fine-tuned on documents

    Fix: <expression>
    <a solution y>
    Better:
    <a better solution y'>

built from the target's own samples on training problems (never the held-out ones): every
wrong sample is paired with the most similar correct sample of the same problem (else the
reference solution), and some correct samples with themselves (so that it learns to leave right
solutions alone).  A second round explores with the corrector itself: its corrections of wrong
samples become new pairs - (y, correction) when the correction is right, (correction, better)
when it is not - and training continues (the self-corrective loop).  The held-out evaluation
applies it once to the target's samples and compares with resampling; numbers go to
``metrics.json`` and the model card.
"""
from __future__ import annotations

import argparse
import difflib
import json
import random
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench import adapters, decoding  # noqa: E402
from workbench.tinyworld import arithmetic as ar  # noqa: E402
from workbench.tinyworld.corpus import heldout_expressions  # noqa: E402
from workbench.tinyworld.train import TrainSpec, save_model, train_lm  # noqa: E402

TEMPLATE = "Fix: {question}\n{solution}\nBetter:\n"


def correct(expr, text) -> bool:
    p = ar.Problem(expr)
    return ar.check_answer(p, text) and ar.check_steps(p, text).first_error is None


def sample_texts(lm, prompts, temperature, seed, n=1, desc=None):
    """n samples per prompt (batched), texts only."""
    out = []
    for k, s in enumerate(tqdm(range(0, len(prompts), 48), desc=desc, disable=desc is None)):
        gens = decoding.sample(lm, prompts[s:s + 48], seed=seed * 7919 + k, n=n,
                               adapters=[lambda x: adapters.temperature(x, temperature)],
                               max_new_tokens=140)
        out += [[g.text for g in gs] for gs in gens]
    return out


def greedy_texts(lm, prompts, desc=None):
    out = []
    for s in tqdm(range(0, len(prompts), 48), desc=desc, disable=desc is None):
        out += [g.text for g in decoding.greedy(lm, prompts[s:s + 48], max_new_tokens=140)]
    return out


def target_samples(lm, n_problems, per_problem, seed):
    """The target's own solutions (T=1) to training problems: zoo samples when available."""
    zoo = ROOT / "runs" / "zoo" / "samples" / "solutions.jsonl"
    if zoo.exists():
        rows = [json.loads(line) for line in open(zoo)]
        by = {}
        for r in rows:
            by.setdefault(r["expression"], []).append(r["text"])
        return list(by.items())[:n_problems], "zoo samples (T=0.7 and 1.0)"
    rng, held, probs = random.Random(seed), heldout_expressions(), []
    while len(probs) < n_problems:
        p = ar.sample_problem(rng, rng.randint(2, 5), rng.randint(1, 3))
        if p.expression not in held:
            probs.append(p)
    texts = sample_texts(lm, [p.prompt() for p in probs], 1.0, seed, per_problem, "samples")
    return [(p.expression, ts) for p, ts in zip(probs, texts)], "fresh samples (T=1.0)"


def pairs_from_samples(groups, keep_fraction, seed):
    """(question, y, y') pairs: wrong -> most similar correct sample (else the reference)."""
    rng, pairs = random.Random(seed), []
    for expr, texts in groups:
        good = [t for t in texts if correct(expr, t)]
        for t in texts:
            if not correct(expr, t):
                better = max(good, key=lambda g: difflib.SequenceMatcher(a=t, b=g).ratio()) \
                    if good else ar.Problem(expr).solution()
                pairs.append((expr, t, better))
            elif rng.random() < keep_fraction:
                pairs.append((expr, t, t))
    return pairs


def document(pair) -> str:
    expr, y, better = pair
    return TEMPLATE.format(question=expr, solution=y.rstrip("\n")) + better


def train(init, pairs, steps, seed, run_dir, desc):
    rng = random.Random(seed)
    docs = [document(p) for p in pairs]
    rng.shuffle(docs)
    spec = TrainSpec(steps=steps, batch_size=32, lr=5e-4, warmup=min(30, steps // 5 + 1),
                     seed=seed, checkpoint_minutes=3.0)
    return train_lm(None, spec, init.tokenizer, lambda i: docs[i % len(docs)], run_dir,
                    init_from=init.path, desc=desc), spec


class _Init:
    def __init__(self, path, tokenizer):
        self.path, self.tokenizer = path, tokenizer


def explore(corrector_lm, pairs, n, seed):
    """Round 2 pairs from the corrector's own corrections of wrong samples."""
    rng = random.Random(seed)
    wrong = [p for p in pairs if p[1] != p[2]]
    chosen = rng.sample(wrong, min(n, len(wrong)))
    prompts = [TEMPLATE.format(question=e, solution=y.rstrip("\n")) for e, y, _ in chosen]
    fixes = sample_texts(corrector_lm, prompts, 1.0, seed, 1, "explore")
    new, fixed = [], 0
    for (e, y, better), (fix,) in zip(chosen, fixes):
        if correct(e, fix):
            new.append((e, y, fix))
            fixed += 1
        else:
            new.append((e, fix, better))
    return new, fixed / max(1, len(chosen))


def evaluate(target, corrector_lm, verifier, n_problems, seed):
    """One correction of the target's T=1 samples on held-out problems, gated three ways."""
    from workbench.tinyworld.tasks import load_tasks
    tasks = [t for t in load_tasks("arithmetic") if t["n_ops"] >= 2][::2][:n_problems]
    first = [s[0] for s in sample_texts(target, [t["prompt"] for t in tasks], 1.0, seed, 1,
                                        "eval samples")]
    again = [s[0] for s in sample_texts(target, [t["prompt"] for t in tasks], 1.0, seed + 1, 1,
                                        "eval resamples")]
    fixes = greedy_texts(corrector_lm, [TEMPLATE.format(question=t["expression"],
                                                        solution=y.rstrip("\n"))
                                        for t, y in zip(tasks, first)], "eval corrections")
    ok0 = [correct(t["expression"], y) for t, y in zip(tasks, first)]
    ok1 = [correct(t["expression"], y) for t, y in zip(tasks, fixes)]
    okr = [correct(t["expression"], y) for t, y in zip(tasks, again)]
    n_wrong, n_right = ok0.count(False), ok0.count(True)
    m = {"problems": len(tasks), "sample_accuracy": sum(ok0) / len(tasks),
         "fixed_of_wrong": sum(b for a, b in zip(ok0, ok1) if not a) / max(1, n_wrong),
         "kept_of_correct": sum(b for a, b in zip(ok0, ok1) if a) / max(1, n_right),
         "resample_fixes_wrong": sum(b for a, b in zip(ok0, okr) if not a) / max(1, n_wrong),
         "accuracy_correct_always": sum(ok1) / len(tasks),
         "accuracy_correct_if_wrong_oracle": sum(b if not a else a for a, b in zip(ok0, ok1))
         / len(tasks),
         "accuracy_resample_if_wrong_oracle": sum(b if not a else a for a, b in zip(ok0, okr))
         / len(tasks)}
    if verifier is not None:
        p = verifier.score([t["prompt"] + y for t, y in zip(tasks, first)])
        gated = [b if q < 0.5 else a for a, b, q in zip(ok0, ok1, p)]
        m["accuracy_correct_if_verifier_below_0.5"] = sum(gated) / len(tasks)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}


def card(info, metrics) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    return f"""# tinyworld-corrector

A learned corrector p(y' | x, y) for TinyWorld arithmetic (self-correction, Welleck et al.
2023; survey §4.4): the target `tinyworld` fine-tuned on documents

```
Fix: <expression>
<a solution>
Better:
<a better solution>
```

## Training

Pairs from the target's own solutions to training problems ({info['source']}): each wrong
solution paired with the most similar correct one of the same problem (else the reference
solution), plus a share of correct solutions paired with themselves.  Round 1:
{info['pairs_0']} pairs, {info['steps'][0]} steps.  Round 2 (the self-corrective loop): the
round-1 corrector sampled corrections of {info['explored']} wrong samples
({info['explore_fix_rate']:.0%} of them right); each became a new pair, trained on with
{info['pairs_1'] - info['explored']} replayed round-1 pairs for {info['steps'][1]} more steps.
Batch 32, AdamW lr 5e-4, on a CPU in {info['train_seconds'] / 60:.1f} minutes (sampling
included; `scripts/train_corrector.py`).  Stored in float16 safetensors.

## Metrics (held-out problems, one greedy correction of the target's T=1 sample)

| metric | value |
|---|---|
{rows}

`fixed_of_wrong`: wrong samples the corrector turns right; `kept_of_correct`: right samples it
leaves right; `resample_fixes_wrong`: the baseline, a fresh T=1 target sample instead.
`accuracy_correct_if_*`: accuracy when the corrector is applied only where the gate says the
sample is wrong (the answer key, or the learned verifier).
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "models" / "tinyworld-corrector"))
    ap.add_argument("--problems", type=int, default=2400)
    ap.add_argument("--steps", type=int, nargs=2, default=[300, 150])
    ap.add_argument("--explore", type=int, default=320)
    ap.add_argument("--eval-problems", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true", help="continue runs/corrector checkpoints")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import workbench as wb
    from workbench.loading import resolve
    t0 = time.time()
    target = wb.load("tinyworld", device="cpu")
    run = ROOT / "runs" / "corrector"
    if run.exists() and not args.resume:    # checkpoints of an older target must not be reused
        import shutil
        shutil.rmtree(run)
    groups, source = target_samples(target, args.problems, 4, args.seed)
    pairs = pairs_from_samples(groups, keep_fraction=0.15, seed=args.seed)
    print(f"{len(pairs)} pairs from {len(groups)} problems ({source})")
    init = _Init(resolve("tinyworld")[0], target.tokenizer)
    (model, info0), spec0 = train(init, pairs, args.steps[0], args.seed, run / "round1",
                                  "corrector round 1")
    round1 = run / "round1_model"
    model.save_pretrained(round1)
    target.tokenizer.save_pretrained(round1)
    lm1 = wb.LanguageModel(model.eval(), target.tokenizer, "corrector-round1")
    new, rate = explore(lm1, pairs, args.explore, args.seed + 1)
    keep = random.Random(args.seed).sample(pairs, min(len(pairs), 3 * len(new)))
    (model, info1), spec1 = train(_Init(round1, target.tokenizer), new + keep, args.steps[1],
                                  args.seed + 1, run / "round2", "corrector round 2")
    corrector = wb.LanguageModel(model.eval(), target.tokenizer, "tinyworld-corrector")
    try:
        verifier = wb.load("tinyworld-verifier", device="cpu")
    except OSError:
        verifier = None
    metrics = evaluate(target, corrector, verifier, args.eval_problems, args.seed + 2)
    info = {"name": "tinyworld-corrector", "source": source, "pairs_0": len(pairs),
            "pairs_1": len(new) + len(keep), "explored": len(new), "explore_fix_rate": rate,
            "steps": args.steps, "train_seconds": round(time.time() - t0, 1),
            "loss_log": info0["log"] + info1["log"], "template": TEMPLATE,
            "train": {"round1": vars(spec0), "round2": vars(spec1)}}
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    out = Path(args.out)
    save_model(model, target.tokenizer, out, card(info, metrics), info)
    metrics["bytes"] = (out / "model.safetensors").stat().st_size
    if out.parent.resolve() == (ROOT / "data" / "models").resolve():   # an embedded model
        from workbench.tinyworld.evaluate import load_seconds
        metrics["load_seconds"] = round(min(load_seconds(out.name) for _ in range(3)), 3)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    (out / "README.md").write_text(card(info, metrics))
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
