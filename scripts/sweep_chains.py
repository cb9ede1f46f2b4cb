"""Chapter 06's chains on the ``pool`` problem set (survey §4.1, §5.2).

    python scripts/sweep_chains.py                 # about 8 minutes on 2 CPU cores
    python scripts/sweep_chains.py --problems 8    # a quick look

Runs every chain of `workbench.experiments.chain_runs` (direct answer, chain-of-thought,
least-to-most, the calculator tool and the same format without it, a program run in the
sandbox, and the two-stage rewriting of problems written in words) on the same 104 held-out
problems (``workbench.tinyworld.tasks.problem_set("pool")``: 8 from each cell of the test set),
greedy throughout.  Per-problem rows (correct, tokens billed) and a summary go to
``data/results/chains.json`` (after every chain, so an interrupted sweep resumes);
``tests/test_sweep_chains.py`` re-runs a slice.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import sweep_compute as sc  # noqa: E402
from workbench.experiments import chains  # noqa: E402
from workbench.tinyworld.tasks import problem_set  # noqa: E402

OUT = ROOT / "data" / "results" / "chains.json"
PROBLEMS = "pool"


def setup(seed: int = 0):
    """The target, the arithmetic task, its format and the chains."""
    import workbench as wb
    lm = wb.load("tinyworld", device="cpu")
    task = wb.tasks.load("tinyworld-arithmetic")
    fmt = task.format(lm)
    return task, fmt, chains.chain_runs(lm, task, fmt, seed=seed)


def summarize(rows) -> list:
    groups = {}
    for r in rows:
        groups.setdefault(r["method"], []).append(r)
    return [{"method": name, "problems": len(rs),
             **dict(zip(("accuracy", "total_tokens"), chains.summary(rs)))}
            for name, rs in groups.items()]


def run(n_problems=None, seed: int = 0, out: Path = OUT, only=None, redo=False) -> dict:
    records = problem_set(PROBLEMS)[:n_problems]
    task, fmt, runs = setup(seed)
    problems = [task.problem(t["expression"]) for t in records]
    data = sc.start(out, {"problems": [t["id"] for t in records], "seed": seed,
                          "problem_set": PROBLEMS, "model": "tinyworld"}, only, redo)
    done = {(r["method"], r["id"]) for r in data["rows"]}
    t0 = time.time()
    for name, fn in runs.items():
        if not sc.chosen(name, only):
            continue
        todo = [(t, p) for t, p in zip(records, problems) if (name, t["id"]) not in done]
        graded = chains.evaluate({name: fn}, [p for _, p in todo], fmt.check, progress=True)
        data["rows"] += [{"method": name, "id": t["id"], **row}
                         for (t, _), row in zip(todo, graded[name])]
        sc.save(data, out, summarize)
    return sc.save(data, out, summarize, t0)


def main():
    args = sc.arguments(__doc__, OUT, 104)
    data = run(args.problems, args.seed, Path(args.out), args.only, args.redo)
    for s in data["summary"]:
        print(f"{s['method']:>28}: acc {s['accuracy']:.3f} over {s['problems']}  "
              f"tokens {s['total_tokens']:6.1f}")


if __name__ == "__main__":
    main()
