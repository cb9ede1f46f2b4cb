"""The parallel meta-generation sweep behind chapter 07 (survey §4.2, §6.2, Figure 6).

One pool of samples per (problem, temperature) from the target, scored by the verifier; then
accuracy-vs-N curves for best-of-N (by the verifier, and by p_theta x verifier), majority
vote, weighted vote and pass@N, the limits of voting (eq. 35), the mass the verifier puts on
correct answers, and the best temperature at each N.  Results go to
data/results/parallel_scaling.json (curves) and data/results/parallel_pool.json (the pool,
compact), so the notebook only draws.

    python scripts/sweep_parallel.py              # ~20 minutes on 2 CPU cores
    python scripts/sweep_parallel.py --from-pool  # the curves again from the stored pool
``tests/test_sweep_parallel.py`` re-samples the first problem and re-derives the curves.
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
from workbench import scoring  # noqa: E402
from workbench.meta import scaling  # noqa: E402
from workbench.tinyworld.tasks import arithmetic_tasks  # noqa: E402

TEMPERATURES = (0.5, 0.7, 1.0)
POOL = 64
NS = (1, 2, 4, 8, 16, 32, 64)
METHODS = ("oracle", "best_of_n", "vote", "weighted")


def tasks_subset(per_cell: int = 8):
    return [t for i, t in enumerate(arithmetic_tasks()) if i % 24 < per_cell]


def compact(pool) -> list:
    """The pool as stored: scores rounded, and each sample's log p_theta(y | x) + log v(x, y)
    (`scoring.JointScorer`, the mode of eq. 17's q*)."""
    return [{"id": r["id"], "answer": r["answer"], "answers": r["answers"],
             "correct": r["correct"], "lengths": r["lengths"],
             "scores": [round(v, 4) for v in r["scores"]],
             "joint": [round(scoring.joint_log_score(lp, v), 4)
                       for lp, v in zip(r["logprobs"], r["scores"])]} for r in pool]


def pool_curves(pool, ns, boots: int) -> dict:
    """Every method's curve on one stored pool, and the limits of (weighted) voting."""
    out = {m: scaling.curve(pool, m, ns, boots, seed=1) for m in METHODS}
    out["best_of_n_joint"] = scaling.curve([dict(r, scores=r["joint"]) for r in pool],
                                           "best_of_n", ns, boots, seed=1)
    out["limits"] = {
        "vote": scaling.marginal_accuracy(pool), "weighted": scaling.marginal_accuracy(
            pool, True), "mass_on_correct": scaling.mass_on_correct(pool, False),
        "weighted_mass_on_correct": scaling.mass_on_correct(pool, True)}
    return out


def build(out_dir: Path, per_cell: int, pool_size: int, boots: int):
    lm, verifier = wb.load("tinyworld", device="cpu"), wb.load("tinyworld-verifier", device="cpu")
    tasks = tasks_subset(per_cell)
    pools, t0 = {}, time.time()
    for i, temp in enumerate(TEMPERATURES):
        pools[str(temp)] = compact(scaling.sample_pool(lm, tasks, pool_size, temp, verifier,
                                                       seed=i))
    meta = {"problems": len(tasks), "pool": pool_size, "temperatures": TEMPERATURES,
            "boots": boots, "seconds": round(time.time() - t0, 1), "model": "tinyworld",
            "verifier": "tinyworld-verifier", "per_cell": per_cell}
    return write(out_dir, pools, meta)


def rederive(out_dir: Path, boots: int):
    """Recompute the curves from the stored pool, without sampling again (after a change to a
    selection rule: the samples and their scores stay as they were)."""
    stored = json.loads((out_dir / "parallel_pool.json").read_text())
    return write(out_dir, stored["pools"], dict(stored["meta"], boots=boots))


def write(out_dir: Path, pools: dict, meta: dict):
    """Curves of every method at every temperature from the pools; both files written."""
    ns = [n for n in NS if n <= meta["pool"]]
    curves = {temp: pool_curves(pool, ns, meta["boots"]) for temp, pool in pools.items()}
    best_t = {}
    for n in ns:
        for m in ("oracle", "best_of_n", "vote"):
            acc = {t: curves[t][m]["accuracy"][curves[t][m]["n"].index(n)] for t in curves}
            best_t.setdefault(m, {})[str(n)] = max(acc, key=acc.get)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "parallel_scaling.json").write_text(json.dumps(
        {"meta": meta, "curves": curves, "best_temperature": best_t}, indent=1))
    (out_dir / "parallel_pool.json").write_text(json.dumps({"meta": meta, "pools": pools}))
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-cell", type=int, default=8)
    ap.add_argument("--pool", type=int, default=POOL)
    ap.add_argument("--boots", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "data" / "results"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--from-pool", action="store_true",
                    help="recompute the curves from the stored pool (no sampling)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.from_pool:
        print(rederive(Path(args.out), args.boots))
    else:
        print(build(Path(args.out), args.per_cell, args.pool, args.boots))


if __name__ == "__main__":
    main()
