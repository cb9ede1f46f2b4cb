"""Refinement with extrinsic and intrinsic feedback, round by round (survey §4.4): chapter 09.

    python scripts/sweep_refine.py                 # about 10 minutes on 2 CPU cores
    python scripts/sweep_refine.py --problems 4    # a quick look

Every method is a refinement loop (eqs. 41-43) whose first version y(0) is a sample of the target
(temperature 0.8) and which runs up to ``ROUNDS`` refinements.  They differ in the information
source h: none (resample), the model's own check of its operations (intrinsic self-feedback),
the learned verifier (with the learned corrector as refiner too, when it is trained), the
calculator, the exact step checker, and the answer key (with resampling: an upper bound).  A
loop never stops because a refinement left the output unchanged, so the run with
``max_iterations = k`` is exactly the first k rounds of the run with ``ROUNDS`` (the seeds of
`meta.refine` are prefix-stable): one run gives the accuracy and the Table 5 cost after every
round k.  Problems and seeds are those of ``scripts/sweep_compute.py`` and
``scripts/sweep_search.py`` (the ``hard`` set; problem ``arith-NNN`` uses seed
``seed * 100_003 + NNN``).  Rows (per method, round and problem) and a summary go to
``data/results/refinement.json``; ``tests/test_sweep_refine.py`` re-runs a slice.

    python scripts/sweep_refine.py --server http://127.0.0.1:8000 --concurrency 16

takes the target's samples (first versions and refinements) from an OpenAI-compatible server
serving the same model, 16 problems at a time; feedback models, the verifier and the corrector
stay local, as in ``scripts/sweep_compute.py``.  A server that fails stops the sweep after
saving the finished problems; the same command resumes.
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
from sweep_search import PROBLEMS, tasks as hard_tasks  # noqa: E402
from workbench import meta, stats  # noqa: E402
from workbench.budget import Cost  # noqa: E402
from workbench.tasks import load as load_task  # noqa: E402
from workbench.tinyworld.tasks import problem_seed  # noqa: E402

ARITH = load_task("tinyworld-arithmetic")

OUT = ROOT / "data" / "results" / "refinement.json"
ROUNDS = 3


def try_again(prompt, versions, feedbacks):
    """h with no information: never done, nothing localised (the refiner starts over)."""
    return meta.Feedback(False, "try again")


def methods(M) -> dict:
    """name -> fn(prompt, seed, rounds) -> refine result."""
    s = M.sampler

    def loop(h, g):
        return lambda p, seed, rounds=ROUNDS: meta.refine(
            p, s, h, g, max_iterations=rounds, stop_when_unchanged=False, seed=seed)
    regen = meta.regenerate_from_error(s)
    out = {
        "no feedback (resample)": loop(try_again, meta.resample(s)),
        "self-feedback (intrinsic)": loop(meta.self_feedback(M.target), regen),
        "verifier (learned)": loop(meta.verifier_feedback(M.verifier, 0.5), regen),
        "calculator (tool)": loop(meta.calculator_feedback(), regen),
        "step checker (exact)": loop(meta.step_feedback(ARITH), regen),
        "answer key (oracle)": loop(meta.outcome_feedback(ARITH), meta.resample(s)),
    }
    if M.corrector is not None:
        fixer = meta.LMGenerator(M.corrector, greedy=True, max_new_tokens=160)
        out["corrector + verifier (learned)"] = loop(meta.verifier_feedback(M.verifier, 0.5),
                                                     meta.corrector(fixer, task=ARITH))
    return out


def rounds(result, answer: int, n: int = ROUNDS) -> list:
    """Correctness and cumulative Table 5 cost after each round k = 0..n of one loop: version
    min(k, last) and the feedback asked for before it (plus the final "done" feedback)."""
    versions, notes = result.candidates, result.info["feedback"]
    answers = [meta.default_answer(v.text) for v in versions]
    out = []
    for k in range(n + 1):
        v, f = min(k, len(versions) - 1), min(k, len(notes))
        cost = sum((x.cost for x in versions[:v + 1]), Cost()) + \
            sum((Cost(**z["cost"]) for z in notes[:f]), Cost())
        out.append({"round": k, "answer": answers[v], "correct": answers[v] == answer,
                    "changed": v > 0 and versions[v].text != versions[0].text,
                    "output_tokens": cost.output_tokens, "input_tokens": cost.input_tokens,
                    "external_tokens": cost.external_tokens,
                    "computed_tokens": cost.computed_tokens, "calls": cost.calls})
    return out


def run_task(fn, task, seed, n=ROUNDS):
    return rounds(fn(task["prompt"], seed, n), task["answer"], n)


def summarize(rows) -> list:
    groups = {}
    for r in rows:
        groups.setdefault((r["method"], r["round"]), []).append(r)
    out = []
    for (m, k), rs in groups.items():
        def mean(key, rs=rs):
            return sum(r[key] for r in rs) / len(rs)
        wilson = stats.accuracy([r["correct"] for r in rs])
        out.append({"method": m, "setting": f"k={k}", "round": k, "problems": len(rs),
                    "accuracy": mean("correct"), "low": round(wilson.low, 4),
                    "high": round(wilson.high, 4), "output_tokens": mean("output_tokens"),
                    "external_tokens": mean("external_tokens"),
                    "total_tokens": mean("input_tokens") + mean("output_tokens")
                    + mean("external_tokens"), "computed_tokens": mean("computed_tokens"),
                    "changed": mean("changed")})
    return out


def run(n_problems: int, seed: int = 0, out: Path = OUT, only=None, redo=False,
        server: str | None = None, concurrency: int = 1) -> dict:
    """Run the chosen methods on the problems they have no rows for, saving after every
    problem; with ``server``, the target's samples come from it, ``concurrency`` problems at
    once (`sweep_compute.run_problems`)."""
    tasks, M = hard_tasks(n_problems), sc.Models(server, concurrency)
    config = {"problems": [t["id"] for t in tasks], "seed": seed, "rounds": ROUNDS,
              "temperature": sc.TEMPERATURE, "problem_set": PROBLEMS,
              "corrector": M.corrector is not None}
    if server:
        config["server"] = server
    data = sc.start(out, config, only, redo)
    done = {(r["method"], r["id"]) for r in data["rows"]}
    t0 = time.time()
    with sc.stop_on_server_error(data, out, summarize):
        for name, fn in methods(M).items():
            todo = [t for t in tasks if (name, t["id"]) not in done]
            if not sc.chosen(name, only) or not todo:
                continue
            with tqdm(total=len(todo), desc=name) as bar:
                def keep(finished, name=name, bar=bar):
                    t, rows = finished
                    data["rows"] += [{"method": name, "id": t["id"], "n_ops": t["n_ops"],
                                      "digits": t["digits"], **r} for r in rows]
                    sc.save(data, out, summarize)
                    bar.update()
                sc.run_problems(lambda t, fn=fn: (t, run_task(fn, t, problem_seed(t, seed))),
                                todo, concurrency, keep)
    return sc.save(data, out, summarize, t0)


def main(argv=None):
    args = sc.arguments(__doc__, OUT, 104, argv, server=True)
    data = run(args.problems, args.seed, Path(args.out), args.only, args.redo, args.server,
               args.concurrency)
    for s in sorted(data["summary"], key=lambda s: (s["method"], s["round"])):
        print(f"{s['method']:>32} k={s['round']}: acc {s['accuracy']:.3f}  "
              f"out {s['output_tokens']:6.0f}  total {s['total_tokens']:6.0f}  "
              f"changed {s['changed']:.2f}")


if __name__ == "__main__":
    main()
