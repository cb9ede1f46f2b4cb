"""Measure the trained target on every cell of the held-out arithmetic pool (reporting only).

    python scripts/calibrate_test_set.py            # writes data/results/pool_by_cell.json

The graded test set (`workbench.tinyworld.tasks.TEST_CELLS`) is a choice of (operations, digits)
cells from the held-out pool.  It should be hard enough that greedy decoding is far from perfect
and that meta-generation (voting, best-of-N, search) has room to show its gains, and easy enough
that some sample is usually right (pass@16 high).  This script prints, per cell, greedy accuracy
(all 48 problems) and pass@16 / maj@16 / mean sample accuracy at temperature 1 (first 24), so the
choice in ``tasks.py`` is made on numbers that are committed with it.  Nothing here trains.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from workbench.tinyworld import arithmetic as ar  # noqa: E402
from workbench.tinyworld.evaluate import majority, solve  # noqa: E402
from workbench.tinyworld.tasks import arithmetic_pool  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--per-cell", type=int, default=24)
    ap.add_argument("--low", type=float, default=0.1, help="sample only cells with greedy >= low")
    ap.add_argument("--high", type=float, default=0.95, help="... and greedy <= high")
    ap.add_argument("--out", default=str(ROOT / "data" / "results" / "pool_by_cell.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    lm = wb.load("tinyworld")
    pool = list(arithmetic_pool())
    greedy = [g[0] for g in solve(lm, [t["prompt"] for t in pool], desc="greedy")]
    cells = {}
    for t, g in zip(pool, greedy):
        cells.setdefault((t["n_ops"], t["digits"]), []).append((t, ar.extract_answer(g) == t["answer"]))
    report = {}
    for (n, d), rows in sorted(cells.items()):
        g_all = round(float(np.mean([ok for _, ok in rows])), 3)
        if not args.low <= g_all <= args.high:  # far too easy or too hard: greedy is enough
            report[f"{n}x{d}"] = {"greedy_all": g_all}
            print(f"{n}x{d}", report[f"{n}x{d}"], flush=True)
            continue
        tasks = [t for t, _ in rows[:args.per_cell]]
        samples = solve(lm, [t["prompt"] for t in tasks], n=args.n, temperature=1.0,
                        seed=n * 10 + d, desc=f"{n} ops x {d} digits")
        hits = [[ar.extract_answer(s) == t["answer"] for s in ss] for t, ss in zip(tasks, samples)]
        maj = [majority([ar.extract_answer(s) for s in ss]) == t["answer"]
               for t, ss in zip(tasks, samples)]
        report[f"{n}x{d}"] = {
            "greedy_all": g_all,
            "greedy": round(float(np.mean([ok for _, ok in rows[:args.per_cell]])), 3),
            "pass": round(float(np.mean([any(h) for h in hits])), 3),
            "maj": round(float(np.mean(maj)), 3),
            "sample_acc": round(float(np.mean(hits)), 3)}
        print(f"{n}x{d}", report[f"{n}x{d}"], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"n": args.n, "temperature": 1.0, "cells": report},
                                         indent=1) + "\n")


if __name__ == "__main__":
    main()
