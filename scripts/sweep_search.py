"""Step-level search against same-compute parallel baselines (survey §4.3, Table 5): chapter 08.

    python scripts/sweep_search.py                 # after sweep_compute.py: about 50 minutes
    python scripts/sweep_search.py --problems 4    # a quick look

Runs greedy decoding, majority voting and best-of-N (verifier) with N = 4 and 16 samples, and
step-level beam search and REBASE guided by the process reward model (the verifier on finished
solutions) with N_b * N_e = 4 and 16 expansions per step, particle filtering (N = 4 and 16
particles) and diverse verifier tree search (N = 4 and 16 steps per level, in N / M greedy
subtrees of M = 2 and 4; ``--only dvts`` computes just the missing DVTS rows, about 5 minutes
on 2 cores) under the same values, plus the beam guided by the exact step checker (a ceiling,
not a method), on the problems and with the settings of
``scripts/sweep_compute.py`` (the ``hard`` set; problem ``arith-NNN`` uses seed
``seed * 100_003 + NNN`` in every method).  The methods both sweeps run are taken from the
compute sweep's results file beside ``--out`` when it ran the same problem set, seed and
temperature (they are the same computation), so only the rest is computed here.  Per-problem rows (correctness, Table 5 cost)
and the summary go to ``data/results/step_search.json``; ``tests/test_sweep_search.py`` re-runs
a slice.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import sweep_compute as sc  # noqa: E402
from workbench import meta  # noqa: E402
from workbench.tasks import load as load_task  # noqa: E402
from workbench.tinyworld.tasks import problem_seed, problem_set  # noqa: E402

ARITH = load_task("tinyworld-arithmetic")

OUT = ROOT / "data" / "results" / "step_search.json"
SHARED = {"greedy": ["-"], "majority_vote": ["N=4", "N=16"],
          "best_of_n (verifier)": ["N=4", "N=16"],
          "stepwise_beam (PRM)": ["Nb=2, Ne=2", "Nb=4, Ne=4"],
          "rebase (PRM)": ["width=4", "width=16"]}


def methods(M) -> dict:
    """name -> {setting: fn(prompt, seed)}: the compute sweep's methods listed in `SHARED`,
    particle filtering and DVTS under the same values, and the beam guided by the exact step
    checker."""
    every = sc.methods(M)
    out = {name: {s: every[name][s] for s in settings} for name, settings in SHARED.items()}
    v_end = meta.terminal_value(meta.verifier_value(M.verifier), M.prm_value)
    out["particle_filter (PRM)"] = {f"N={n}": (lambda n: lambda p, s: meta.particle_filter(
        p, M.stepper(), v_end, particles=n, threshold=0.5, max_steps=10, seed=s))(n)
        for n in (4, 16)}
    out["dvts (PRM)"] = {f"N={n}, M={m}": (lambda n, m: lambda p, s: meta.dvts(
        p, M.stepper(), v_end, width=n, expansions=m, max_steps=10, seed=s))(n, m)
        for n, m in ((4, 2), (16, 4))}
    out["stepwise_beam (oracle value)"] = {
        f"Nb={b}, Ne={e}": (lambda b, e: lambda p, s: meta.stepwise_beam(
            p, M.stepper(), meta.oracle_value(ARITH), b, e, max_steps=10, seed=s))(b, e)
        for b, e in ((2, 2), (4, 4))}
    return out


PROBLEMS = "hard"      # the problem set (workbench.tinyworld.tasks.PROBLEM_SETS)


def tasks(n: int = 104) -> list:
    """The first ``n`` problems of the problem set ``PROBLEMS``."""
    return problem_set(PROBLEMS)[:n]


def shared_rows(seed: int, compute: Path = sc.OUT) -> dict:
    """(method, setting, id) -> the compute sweep's row (``compute``: its results file), for the
    methods in `SHARED`, when that sweep ran with the same seed, temperature and problem set
    (the same computation as here)."""
    stored = sc.load(compute)
    config = stored["config"]
    if (config.get("seed"), config.get("temperature"), config.get("problem_set")) != (
            seed, sc.TEMPERATURE, PROBLEMS):
        return {}
    return {(r["method"], r["setting"], r["id"]): r for r in stored["rows"]
            if r["setting"] in SHARED.get(r["method"], ())}


def run(n_problems: int, seed: int = 0, out: Path = OUT, only=None, redo=False) -> dict:
    todo_tasks, M = tasks(n_problems), sc.Models()
    data = sc.start(out, {"problems": [t["id"] for t in todo_tasks], "seed": seed,
                          "temperature": sc.TEMPERATURE, "problem_set": PROBLEMS,
                          "parameters": M.params}, only, redo)
    done = {(r["method"], r["setting"], r["id"]) for r in data["rows"]}
    copied = shared_rows(seed, Path(out).parent / sc.OUT.name)
    t0 = time.time()
    for name, settings in methods(M).items():
        if not sc.chosen(name, only):
            continue
        for setting, fn in settings.items():
            for t in tqdm(todo_tasks, desc=f"{name} {setting}"):
                key = (name, setting, t["id"])
                if key in done:
                    continue
                row = copied.get(key) or sc.run_one(fn, t, problem_seed(t, seed), M)
                data["rows"].append({**row, "method": name, "setting": setting,
                                     "n_ops": t["n_ops"], "digits": t["digits"]})
                if key not in copied:
                    sc.save(data, out)       # a computed row is kept as soon as it is done
    return sc.save(data, out, sc.summarize, t0)


def main():
    args = sc.arguments(__doc__, OUT, 104)
    data = run(args.problems, args.seed, Path(args.out), args.only, args.redo)
    for s in sorted(data["summary"], key=lambda s: (s["method"], s["output_tokens"])):
        print(f"{s['method']:>30} {s['setting']:>12}: acc {s['accuracy']:.3f}  "
              f"out {s['output_tokens']:7.0f}  total {s['total_tokens']:7.0f}")


if __name__ == "__main__":
    main()
