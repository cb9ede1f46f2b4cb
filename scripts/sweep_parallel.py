"""The parallel meta-generation sweep behind chapter 07 (survey §4.2, §6.2, Figure 6).

One pool of samples per (problem, temperature) from the target, scored by the verifier; then
accuracy-vs-N curves for best-of-N (verifier), majority vote, weighted vote and pass@N, the
limits of voting (eq. 35), the mass the verifier puts on correct answers, and the best
temperature at each N.  Results go to data/results/parallel_scaling.json (curves) and
data/results/parallel_pool.json (the pool, compact), so the notebook only draws.

    python scripts/sweep_parallel.py            # ~15 minutes on 2 CPU cores
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from workbench.meta import scaling  # noqa: E402
from workbench.tinyworld.tasks import arithmetic_tasks  # noqa: E402

TEMPERATURES = (0.5, 0.7, 1.0)
POOL = 64
NS = (1, 2, 4, 8, 16, 32, 64)
METHODS = ("oracle", "best_of_n", "vote", "weighted")


def tasks_subset(per_cell: int = 8):
    return [t for i, t in enumerate(arithmetic_tasks()) if i % 24 < per_cell]


def build(out_dir: Path, per_cell: int, pool_size: int, boots: int):
    lm, verifier = wb.load("tinyworld", device="cpu"), wb.load("tinyworld-verifier", device="cpu")
    tasks = tasks_subset(per_cell)
    pools, curves, t0 = {}, {}, time.time()
    for i, temp in enumerate(TEMPERATURES):
        pools[str(temp)] = scaling.sample_pool(lm, tasks, pool_size, temp, verifier, seed=i)
    for temp, pool in pools.items():
        ns = [n for n in NS if n <= pool_size]
        curves[temp] = {m: scaling.curve(pool, m, ns, boots, seed=1) for m in METHODS}
        curves[temp]["limits"] = {
            "vote": scaling.marginal_accuracy(pool), "weighted": scaling.marginal_accuracy(
                pool, True), "mass_on_correct": scaling.mass_on_correct(pool, False),
            "weighted_mass_on_correct": scaling.mass_on_correct(pool, True)}
    best_t = {}
    for n in [n for n in NS if n <= pool_size]:
        for m in ("oracle", "best_of_n", "vote"):
            acc = {t: curves[t][m]["accuracy"][curves[t][m]["n"].index(n)] for t in curves}
            best_t.setdefault(m, {})[str(n)] = max(acc, key=acc.get)
    meta = {"problems": len(tasks), "pool": pool_size, "temperatures": TEMPERATURES,
            "boots": boots, "seconds": round(time.time() - t0, 1), "model": "tinyworld",
            "verifier": "tinyworld-verifier", "per_cell": per_cell}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "parallel_scaling.json").write_text(json.dumps(
        {"meta": meta, "curves": curves, "best_temperature": best_t}, indent=1))
    compact = {t: [{k: (r[k] if k != "scores" else [round(x, 4) for x in r[k]])
                    for k in ("id", "answer", "answers", "scores", "lengths")} for r in p]
               for t, p in pools.items()}
    (out_dir / "parallel_pool.json").write_text(json.dumps({"meta": meta, "pools": compact}))
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-cell", type=int, default=8)
    ap.add_argument("--pool", type=int, default=POOL)
    ap.add_argument("--boots", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "data" / "results"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(build(Path(args.out), args.per_cell, args.pool, args.boots))


if __name__ == "__main__":
    main()
