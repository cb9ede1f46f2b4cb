"""Attribute vs fluency as the control strength grows (survey §3.4, §5.1), in TinyWorld.

    python scripts/sweep_control.py            # writes data/results/control_tradeoff.json
    python scripts/sweep_control.py --n 16 --out /tmp/control.json --methods fudge dexperts

For every method and strength: ``--n`` continuations of ``Review:`` steered positive, and one
continuation of each attribute task (data/tasks/attribute.jsonl) steered to its label.  The
attribute rate uses the exact sentiment oracle; fluency is the fraction of grammatical outputs,
their true log p* under the review grammar, and the target's log p_theta.  Seeded: every point
uses the same seeds, so a strength of 0 is the same plain sample for every logit rule, and
re-running gives the same file.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.control import tinyworld as tw  # noqa: E402
from workbench.paths import data_dir  # noqa: E402

OUT = data_dir() / "results" / "control_tradeoff.json"


def table(points) -> str:
    lines = [f"{'method':20} {'strength':>8} {'part':6} {'attribute':>9} {'grammatical':>11} "
             f"{'log p*':>7} {'log p_theta':>11} {'passes/step':>11} {'ext/token':>9}"]
    for p in points:
        lp = "   -   " if p["logp_star"] is None else f"{p['logp_star']:7.2f}"
        lines.append(f"{p['method']:20} {p['strength']:8g} {p['part']:6} "
                     f"{p['attribute_rate']:9.3f} {p['grammatical']:11.3f} {lp} "
                     f"{p['logp_target']:11.2f} {p['passes_per_step']:11.2f} "
                     f"{p['external_per_token']:9.1f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="Review: samples per point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=20, help="candidates per step (FUDGE, RAD)")
    ap.add_argument("--max-new-tokens", type=int, default=tw.MAX_NEW_TOKENS)
    ap.add_argument("--methods", nargs="+", choices=list(tw.STRENGTHS), default=list(tw.STRENGTHS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = tw.load_models(device="cpu")
    strengths = {m: tw.STRENGTHS[m] for m in args.methods}
    t0 = time.perf_counter()
    points = tw.sweep(models, strengths, n=args.n, seed=args.seed, k=args.k,
                      max_new_tokens=args.max_new_tokens,
                      progress=lambda jobs: tqdm(jobs, desc="control sweep"))
    seconds = time.perf_counter() - t0
    print(table(points))
    result = {"survey": "§3.4 (eqs. 16, 21, 22), §5.1 (eqs. 48, 49)",
              "description": __doc__.split("\n\n")[2].replace("\n", " "),
              "seed": args.seed, "n": args.n, "k": args.k, "max_new_tokens": args.max_new_tokens,
              "models": tw.MODEL_NAMES, "strength_name": tw.STRENGTH_NAME,
              "strengths": strengths, "tasks": len(tw.attribute_tasks()),
              "threads": args.threads, "seconds": round(seconds, 1), "points": points}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
