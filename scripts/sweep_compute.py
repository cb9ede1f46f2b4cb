"""Compute-matched comparison of meta-generators on TinyWorld arithmetic (survey §6.2-6.4).

    python scripts/sweep_compute.py                 # everything missing, resumably
    python scripts/sweep_compute.py --only stepwise_beam mcts --problems 8
    python scripts/sweep_compute.py --only best_of_n mcts --redo   # after retraining a model
    python scripts/sweep_compute.py --only sample majority_vote --server http://127.0.0.1:8000 \
        --concurrency 16        # the target's samples from a server, 16 problems at a time

Every method runs on the same problems, the ``hard`` set of ``workbench.tinyworld.tasks``
(104 test problems with 3-6 operations on 2- or 3-digit numbers; problem ``arith-NNN`` uses seed
``seed * 100_003 + NNN`` in every method and every sweep, `problem_seed`), and every run's
correctness and Table 5 cost are stored per problem in ``data/results/compute_sweep.json``
(written atomically after every problem, so an interrupted sweep resumes where it stopped and
the file is valid JSON whenever it is read).  With ``--server URL`` the target's samples
(``Models.sampler``) and its greedy decoding (``Models.greedy``, temperature 0) come from an
OpenAI-compatible server serving the same model (e.g. ``transformers serve
data/models/tinyworld --continuous-batching``) and ``--concurrency K`` problems run at once;
the draft, the steppers and the scorers stay local, and a server's computed tokens are unknown
(0).  Greedy rows through a server have the local run's answers; their ``output_tokens`` count
the end-of-sequence token the server bills (local decoding does not: one more per answer that
ended), ``tests/test_sweep_serve.py`` checks both.  A server that fails stops the sweep with
its error after saving the problems that finished.  The summary
gives each (method, setting): accuracy and mean tokens per problem (generated, input + output +
external, computed) and forward FLOPs (the draft counted at its own size).
``tests/test_sweep_compute.py`` re-runs a slice and checks it matches.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench import adapters, meta, stats  # noqa: E402
from workbench.backends import (TRANSFORMERS_SERVE_SAMPLING, BackendError,  # noqa: E402
                                CompletionsGenerator)
from workbench.tasks import load as load_task  # noqa: E402
from workbench.tinyworld.tasks import problem_seed, problem_set  # noqa: E402

ARITH = load_task("tinyworld-arithmetic")

OUT = ROOT / "data" / "results" / "compute_sweep.json"
TEMPERATURE = 0.8
PROBLEMS = "hard"      # the problem set (workbench.tinyworld.tasks.PROBLEM_SETS)


def subset(n: int) -> list:
    """The first ``n`` problems of the sweep's problem set."""
    return problem_set(PROBLEMS)[:n]


class Models:
    """The embedded models and the generators, steppers and values built on them; with
    ``server`` (a URL), the target's sampler is that server's, ``concurrency`` requests at once."""

    def __init__(self, server: str | None = None, concurrency: int = 1):
        import workbench as wb
        self.target = wb.load("tinyworld", device="cpu")
        self.draft = wb.load("tinyworld-draft", device="cpu")
        self.verifier = wb.load("tinyworld-verifier", device="cpu")
        self.prm = wb.load("tinyworld-prm", device="cpu")
        try:
            self.corrector = wb.load("tinyworld-corrector", device="cpu")
        except OSError:
            self.corrector = None
        temp = [lambda x: adapters.temperature(x, TEMPERATURE)]
        self.sampler = Memo(meta.LMGenerator(self.target, adapters=temp, max_new_tokens=160)
                            if server is None else server_sampler(server, concurrency))
        self.greedy = (meta.LMGenerator(self.target, greedy=True, max_new_tokens=160)
                       if server is None else server_sampler(server, concurrency, greedy=True))
        self.draft_sampler = Memo(meta.LMGenerator(self.draft, adapters=temp, max_new_tokens=160))
        self.stepper = lambda: meta.LMStepper(self.target, adapters=temp, max_step_tokens=40)
        self.prm_value = meta.prm_value(self.prm, reduce="last")
        self.verifier_scorer = __import__("workbench.scoring", fromlist=["x"]).VerifierScorer(
            self.verifier)
        self.params = {m.name: sum(p.numel() for p in m.model.parameters())
                       for m in (self.target, self.draft)}


def server_sampler(url: str, concurrency: int, greedy: bool = False) -> CompletionsGenerator:
    """The target's sampler (temperature `TEMPERATURE`, up to 160 new tokens) on a server; with
    ``greedy``, its greedy decoder (temperature 0, no sampling flag: `transformers serve` and
    vLLM decode greedily)."""
    if greedy:
        return CompletionsGenerator(url, max_tokens=160, temperature=0, timeout=600,
                                    concurrency=concurrency)
    return CompletionsGenerator(url, max_tokens=160, temperature=TEMPERATURE, timeout=600,
                                concurrency=concurrency, extra=TRANSFORMERS_SERVE_SAMPLING)


class Memo:
    """A generator that remembers its outputs by (prompt, n, seed): methods that draw the same
    samples (best-of-N, voting, weighted voting at one N and seed) compute them once.  Each
    output keeps the cost it had when it was computed, so every method is charged in full."""

    def __init__(self, generator):
        self.generator, self.outputs = generator, {}
        self.lm = getattr(generator, "lm", None)

    def generate(self, prompt, n=1, seed=None):
        key = (prompt, n, seed)  # (threads may compute a key twice; both give the same)
        if key not in self.outputs:
            self.outputs[key] = self.generator.generate(prompt, n, seed)
        return list(self.outputs[key])


def methods(M: Models) -> dict:
    """name -> {setting: fn(prompt, seed) -> MetaResult}."""
    v_end = meta.terminal_value(meta.verifier_value(M.verifier), M.prm_value)
    out = {
        "greedy": {"-": lambda p, s: _single(M.greedy, p, s)},
        "sample": {"N=1": lambda p, s: _single(M.sampler, p, s)},
        "best_of_n (verifier)": {f"N={n}": (lambda n: lambda p, s: meta.best_of_n(
            p, M.sampler, M.verifier_scorer, n, seed=s))(n) for n in (4, 16)},
        "majority_vote": {f"N={n}": (lambda n: lambda p, s: meta.majority_vote(
            p, M.sampler, n, seed=s))(n) for n in (4, 16)},
        "greedy (draft)": {"-": lambda p, s: _on_draft(_single(meta.LMGenerator(
            M.draft, greedy=True, max_new_tokens=160), p, s))},
        "majority_vote (draft)": {f"N={n}": (lambda n: lambda p, s: _on_draft(meta.majority_vote(
            p, M.draft_sampler, n, seed=s)))(n) for n in (4, 16, 64)},
        "weighted_vote (verifier)": {f"N={n}": (lambda n: lambda p, s: meta.weighted_vote(
            p, M.sampler, M.verifier_scorer, n, seed=s))(n) for n in (4, 16)},
        "adaptive_vote": {f"max {n}, beta 0.95": (lambda n: lambda p, s: meta.adaptive_vote(
            p, M.sampler, max_n=n, batch=4, confidence=0.95, seed=s))(n) for n in (16,)},
        "cascade draft->target": {"4 draft, 4 target": lambda p, s: meta.cascade(
            p, M.draft_sampler, M.sampler, n_cheap=4, agreement=0.75, n_expensive=4, seed=s)},
        "stepwise_beam (PRM)": {f"Nb={b}, Ne={e}": (lambda b, e: lambda p, s: meta.stepwise_beam(
            p, M.stepper(), v_end, b, e, max_steps=10, seed=s))(b, e)
            for b, e in ((2, 2), (4, 4))},
        "rebase (PRM)": {f"width={w}": (lambda w: lambda p, s: meta.rebase(
            p, M.stepper(), v_end, width=w, temperature=0.1, max_steps=10, seed=s))(w)
            for w in (4, 16)},
        "mcts (PRM, verifier)": {f"{i} iterations": (lambda i: lambda p, s: meta.mcts(
            p, M.stepper(), M.prm_value, iterations=i, width=3, c_uct=1.0,
            reward=meta.verifier_value(M.verifier), max_depth=10, seed=s))(i) for i in (4, 12)},
        "refine (calculator)": {f"Nr<={n}": (lambda n: lambda p, s: meta.refine(
            p, M.sampler, meta.calculator_feedback(), meta.regenerate_from_error(M.sampler),
            max_iterations=n, seed=s))(n) for n in (1, 3)},
        "refine (self-feedback)": {f"Nr<={n}": (lambda n: lambda p, s: meta.refine(
            p, M.sampler, meta.self_feedback(M.target), meta.regenerate_from_error(M.sampler),
            max_iterations=n, seed=s))(n) for n in (3,)},
    }
    out["code (sample)"] = {"N=1": lambda p, s: _code(p, lambda q: _single(M.sampler, q, s))}
    for label, expected in (("error only", None), ("error or wrong output", "auto")):
        out[f"code refine (execution: {label})"] = {f"Nr<={n}": (
            lambda n, e: lambda p, s: _code(p, lambda q: meta.refine(
                q, M.sampler, meta.execution_feedback(expected=e),
                meta.regenerate_from_error(M.sampler), max_iterations=n,
                stop_when_unchanged=False, seed=s)))(n, expected)
            for n in (3,)}
    if M.corrector is not None:
        fixer = meta.LMGenerator(M.corrector, greedy=True, max_new_tokens=160)
        out["refine (corrector, verifier)"] = {f"Nr<={n}": (lambda n: lambda p, s: meta.refine(
            p, M.sampler, meta.verifier_feedback(M.verifier, 0.5),
            meta.corrector(fixer, task=ARITH), max_iterations=n, seed=s))(n) for n in (1, 2)}
    return out


def _code(prompt, solve):
    """Program-aided solving: ask for a ``Code:`` program and grade what it prints when run in
    the sandbox (grading is not charged to the method)."""
    from workbench.tools.sandbox import run_python
    r = solve(prompt.replace("Q: ", "Code: ", 1))
    res = run_python(r.text, timeout=5)
    out = res.stdout.strip()
    r.answer = int(out) if res.ok and out.lstrip("-").isdigit() else None
    return r


def _on_draft(r):
    """Mark a result computed entirely by the draft (its FLOPs are counted at the draft's size)."""
    r.info["cheap_cost"] = r.cost
    return r


def _single(gen, prompt, seed):
    out = meta.generate(gen, prompt, 1, seed)[0]
    return meta.MetaResult(out.text, out.cost, [out], answer=meta.default_answer(out.text))


def run_one(fn, task, seed, models: Models) -> dict:
    """Run a method on one problem: its correctness and Table 5 cost, and the forward FLOPs
    (2 x parameters per computed token: the draft's at its size, the scorers' external tokens
    at the target's, which they are fine-tuned from).  ``seconds`` is wall time on a shared CPU,
    near 0 when a `Memo` served the samples."""
    t0 = time.perf_counter()
    r = fn(task["prompt"], seed)
    sec = time.perf_counter() - t0
    c = r.cost
    d_comp = r.info["cheap_cost"].computed_tokens if "cheap_cost" in (r.info or {}) else 0
    flops = 2 * (models.params[models.target.name] * (c.computed_tokens - d_comp +
                                                      c.external_tokens) +
                 models.params[models.draft.name] * d_comp)
    kv = (r.info or {}).get("kv") or {}
    answer = r.answer if r.answer is not None else meta.default_answer(r.text)  # best-of-N
    return {"id": task["id"], "answer": answer, "correct": answer == task["answer"],
            "output_tokens": c.output_tokens, "input_tokens": c.input_tokens,
            "external_tokens": c.external_tokens, "computed_tokens": c.computed_tokens,
            "calls": c.calls, "target_flops": flops, "seconds": round(sec, 2),
            "naive_tokens": kv.get("naive_tokens"), **(
                {"routed": r.info["routed"]} if "routed" in (r.info or {}) else {}),
            **({"samples": r.info["samples"]} if "samples" in (r.info or {}) else {})}


def summarize(rows) -> list:
    groups = {}
    for r in rows:
        groups.setdefault((r["method"], r["setting"]), []).append(r)
    out = []
    for (m, s), rs in groups.items():
        n = len(rs)

        def mean(k, rs=rs, n=n):
            return sum(r[k] for r in rs) / n
        wilson = stats.accuracy([r["correct"] for r in rs])
        row = {"method": m, "setting": s, "problems": n, "accuracy": mean("correct"),
               "low": round(wilson.low, 4), "high": round(wilson.high, 4),
               "output_tokens": mean("output_tokens"),
               "total_tokens": mean("input_tokens") + mean("output_tokens") +
               mean("external_tokens"), "external_tokens": mean("external_tokens"),
               "computed_tokens": mean("computed_tokens"), "target_flops": mean("target_flops")}
        naive = [r["naive_tokens"] for r in rs if r.get("naive_tokens")]
        if naive:
            row["kv_ratio"] = sum(r["computed_tokens"] for r in rs) / sum(naive)
        if "routed" in rs[0]:
            row["routed"] = mean("routed")
        if "samples" in rs[0]:
            row["samples"] = mean("samples")
        out.append(row)
    return out


def load(path=OUT) -> dict:
    if Path(path).exists():
        return json.loads(Path(path).read_text())
    return {"config": {}, "rows": [], "summary": []}


def arguments(doc: str, out: Path, problems: int, argv=None, server: bool = False):
    """The command line every per-problem sweep shares (this one, sweep_search, sweep_refine,
    sweep_chains); ``server`` adds ``--server URL --concurrency K``."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    if server:
        ap.add_argument("--server", help="an OpenAI-compatible server serving the target")
        ap.add_argument("--concurrency", type=int, default=1,
                        help="problems run at once (with --server)")
    ap.add_argument("--problems", type=int, default=problems)
    ap.add_argument("--only", nargs="*", help="methods whose name starts with one of these")
    ap.add_argument("--redo", action="store_true",
                    help="drop the stored rows of the --only methods first (after retraining "
                         "a model they use)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(out))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.redo and not args.only:
        ap.error("--redo needs --only (which methods to recompute)")
    if server and args.concurrency < 1:
        ap.error(f"--concurrency must be >= 1, got {args.concurrency}")
    if server and args.concurrency > 1 and not args.server:
        ap.error("--concurrency needs --server (local models run one problem at a time)")
    torch.set_num_threads(args.threads)
    return args


def chosen(name: str, only) -> bool:
    return not only or any(name.startswith(o) for o in only)


def start(out, config: dict, only=None, redo: bool = False) -> dict:
    """The stored results with a new ``config``; with ``redo``, without the ``only`` rows."""
    data = load(out)
    data["config"] = config
    if redo:
        data["rows"] = [r for r in data["rows"] if not chosen(r["method"], only)]
    return data


def save(data: dict, out, summarize_rows=summarize, t0=None) -> dict:
    """Keep the configured problems' rows, summarise and write (after every problem too)."""
    data["rows"] = ordered(data["rows"], data["config"]["problems"])
    data["summary"] = summarize_rows(data["rows"])
    if t0 is not None:
        data["config"]["seconds"] = round(time.time() - t0, 1)
    write_json(out, data)
    return data


def ordered(rows, problems) -> list:
    """The rows of the configured ``problems``, grouped by (method, setting) in the order the
    groups first appear, each group in the problems' order (a stable sort: a problem's rows
    keep their order).  A concurrent sweep appends rows as problems finish; stored in this
    order they do not depend on that.  A sweep run start to end stores the order it always
    did; rows of one group that a resumed run split apart are brought together (a stored
    file re-saved changes in order only)."""
    place = {p: i for i, p in enumerate(problems)}
    rows = [r for r in rows if r["id"] in place]
    group = {}
    for r in rows:
        group.setdefault((r["method"], r.get("setting")), len(group))
    return sorted(rows, key=lambda r: (group[r["method"], r.get("setting")], place[r["id"]]))


@contextmanager
def stop_on_server_error(data: dict, out, summarize_rows=summarize):
    """A server error (`BackendError`) inside stops the sweep: the finished problems are saved
    and the program exits with the error and how to resume."""
    try:
        yield
    except BackendError as e:
        save(data, out, summarize_rows)
        runs = {(r["method"], r.get("setting"), r["id"]) for r in data["rows"]}
        raise SystemExit(f"sweep stopped: {e}\n{len(runs)} finished problem runs are saved "
                         f"in {out}; run the same command again to resume") from None


def write_json(path, data) -> None:
    """Write ``data`` as JSON atomically: a temporary file next to ``path``, then renamed over
    it, so a crash mid-write leaves the previous file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=0))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_problems(run, todo, concurrency: int, done) -> None:
    """``done(run(t))`` for every task, ``concurrency`` at a time (``done`` in this thread, in
    the order they finish).  A server error stops the sweep: the running problems finish, the
    waiting ones are dropped, and the first error is raised."""
    if concurrency == 1:
        for t in todo:
            done(run(t))
        return
    error = None
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(run, t) for t in todo]
        for f in as_completed(futures):
            try:
                done(f.result())
            except BackendError as e:
                error = error or e
                for g in futures:
                    g.cancel()
    if error is not None:
        raise error


def main(argv=None):
    args = arguments(__doc__, OUT, 104, argv, server=True)
    tasks = subset(args.problems)
    M = Models(args.server, args.concurrency)
    config = {"problems": [t["id"] for t in tasks], "seed": args.seed,
              "temperature": TEMPERATURE, "problem_set": PROBLEMS, "parameters": M.params}
    if args.server:
        config["server"] = args.server
    data = start(args.out, config, args.only, args.redo)
    with stop_on_server_error(data, args.out):
        sweep(M, tasks, data, args)
    save(data, args.out)
    for s in sorted(data["summary"], key=lambda s: s["output_tokens"]):
        print(f"{s['method']:>28} {s['setting']:>18}: acc {s['accuracy']:.3f}  "
              f"out {s['output_tokens']:7.0f}  total {s['total_tokens']:7.0f}  "
              f"computed {s['computed_tokens']:7.0f}" +
              (f"  kv {s['kv_ratio']:.2f}" if "kv_ratio" in s else ""))


def sweep(M: Models, tasks, data: dict, args) -> None:
    """Run every chosen (method, setting) on the problems it has no row for, saving each row
    as soon as it is computed."""
    done = {(r["method"], r["setting"], r["id"]) for r in data["rows"]}
    for name, settings in methods(M).items():
        if not chosen(name, args.only):
            continue
        for setting, fn in settings.items():
            todo = [t for t in tasks if (name, setting, t["id"]) not in done]
            if not todo:
                continue
            with tqdm(total=len(todo), desc=f"{name} {setting}") as bar:
                def keep(row, name=name, setting=setting, bar=bar):
                    data["rows"].append({"method": name, "setting": setting, **row})
                    save(data, args.out)
                    bar.update()
                run_problems(lambda t, fn=fn: run_one(fn, t, problem_seed(t, args.seed), M),
                             todo, args.concurrency, keep)


if __name__ == "__main__":
    main()
