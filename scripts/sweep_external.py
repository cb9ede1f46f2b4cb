"""The selector sweep behind chapter 10 (survey §5.1, §6.2 eqs. 50-51): how close do learned
judges come to the exact check when they pick one of N samples?

One pool of samples per held-out problem from the target; every sample is judged by the
outcome verifier, the process reward model (min over steps), the model's own mean per-token
log-probability, the verifier times p_theta (the mode of eq. 17's q*), and the exact
checker.  Accuracy-vs-N curves (mean over random subsets of the pool,
`workbench.meta.scaling.curve`) for best-of-N under each judge, majority vote, and votes
weighted by the verifier and by the model's own confidence go to
``data/results/external_selectors.json``.

    python scripts/sweep_external.py              # a few minutes on 2 CPU cores
    python scripts/sweep_external.py --from-pool  # the curves again from the stored pool
``tests/test_sweep_external.py`` re-samples and re-scores the first problems and checks them.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from workbench import scoring  # noqa: E402
from workbench.meta import TextOutput, scaling  # noqa: E402
from workbench.tinyworld.tasks import arithmetic_tasks, problem_set  # noqa: E402

OUT = ROOT / "data" / "results" / "external_selectors.json"
TEMPERATURE, POOL, PROBLEMS, SEED = 0.8, 32, "pool", 0
NS = (1, 2, 4, 8, 16, 32)
# curve name -> (scaling method, which scores it reads)
SELECTORS = {"pass@N (exact check)": ("oracle", None),
             "best-of-N: verifier": ("best_of_n", "verifier"),
             "best-of-N: verifier x p_theta (eq. 17)": ("best_of_n", "joint"),
             "best-of-N: PRM (min over steps)": ("best_of_n", "prm"),
             "best-of-N: log p per token": ("best_of_n", "logp_mean"),
             "majority vote": ("vote", None),
             "weighted vote: verifier": ("weighted", "verifier"),
             "weighted vote: model confidence": ("weighted", "confidence")}


def scores(row, key):
    """The scores a selector reads from a pool row; ``confidence`` is the model's own,
    exp(mean token log-prob) (`meta.sample_confidence`), from the stored ``logp_mean``."""
    if key == "confidence":
        return [math.exp(x) for x in row["logp_mean"]]
    return row[key or "verifier"]


def tasks_subset(n: int | None = None):
    """The first ``n`` problems (all when None) of the problem set ``PROBLEMS`` (the 104 of
    ``pool``: 8 from every cell of the test set)."""
    return problem_set(PROBLEMS)[:n]


def judge(pool, prm):
    """Add the PRM's, the mean log-probability's and p_theta x verifier's (`JointScorer`)
    scores to every pool row (in place)."""
    ps = scoring.ProcessScorer(prm, reduce="min")
    prompts = {t["id"]: t["prompt"] for t in arithmetic_tasks()}
    for row in pool:
        outs = [TextOutput(x) for x in row["texts"]]
        row["prm"] = [round(v, 5) for v in ps(prompts[row["id"]], outs)[0]]
        row["verifier"] = [round(v, 5) for v in row["scores"]]
        row["joint"] = [round(scoring.joint_log_score(lp, v), 4)
                        for lp, v in zip(row["logprobs"], row["scores"])]
        row["logp_mean"] = [round(lp / max(n, 1), 5)
                            for lp, n in zip(row["logprobs"], row["lengths"])]
    return pool


def make_pool(lm, verifier, prm, tasks, pool_size=POOL, seed=SEED):
    pool = scaling.sample_pool(lm, tasks, pool_size, TEMPERATURE, verifier, seed=seed,
                               max_new_tokens=160, keep_texts=True, progress=False)
    return judge(pool, prm)


def curves(pool, boots: int = 200) -> dict:
    out = {}
    for name, (method, key) in SELECTORS.items():
        rows = [dict(r, scores=scores(r, key)) for r in pool]
        out[name] = scaling.curve(rows, method, [n for n in NS if n <= len(pool[0]["answers"])],
                                  boots, seed=1)
    return out


def full_pool_hits(pool) -> dict:
    """Each selector's decision with the whole pool (N = the pool size), problem by problem:
    ``{name: [right?, ...]}`` in pool order, for paired comparisons (`workbench.stats.paired`)."""
    return {name: [bool(scaling.choose(method, r["answers"], scores(r, key), r["correct"]))
                   for r in pool]
            for name, (method, key) in SELECTORS.items()}


def rederive(path: Path):
    """The curves and full-pool decisions again from the stored pool and its judgements (after
    a change to a selection rule: samples and scores stay as they were)."""
    result = json.loads(path.read_text())
    result["curves"], result["full_pool"] = curves(result["pool"]), full_pool_hits(result["pool"])
    path.write_text(json.dumps(result))
    for name, c in result["curves"].items():
        print(f"{name:34s}", " ".join(f"{a:.3f}" for a in c["accuracy"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=None, help="the first N of the set")
    ap.add_argument("--pool", type=int, default=POOL)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--from-pool", action="store_true",
                    help="recompute the curves from the pool stored in --out (no sampling)")
    args = ap.parse_args()
    if args.from_pool:
        return rederive(Path(args.out))
    torch.set_num_threads(args.threads)
    t0 = time.time()
    lm = wb.load("tinyworld", device="cpu")
    verifier, prm = wb.load("tinyworld-verifier", device="cpu"), wb.load("tinyworld-prm",
                                                                          device="cpu")
    tasks = tasks_subset(args.problems)
    pool = make_pool(lm, verifier, prm, tasks, args.pool)
    result = {"meta": {"problems": len(tasks), "pool": args.pool, "temperature": TEMPERATURE,
                       "seed": SEED, "problem_set": PROBLEMS,
                       "seconds": round(time.time() - t0, 1)},
              "curves": curves(pool),
              "full_pool": full_pool_hits(pool),
              "pool": [{k: r[k] for k in ("id", "answer", "answers", "correct", "lengths",
                                          "verifier", "prm", "logp_mean", "joint")}
                       for r in pool]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result))
    for name, c in result["curves"].items():
        print(f"{name:34s}", " ".join(f"{a:.3f}" for a in c["accuracy"]))
    print(result["meta"])


if __name__ == "__main__":
    main()
