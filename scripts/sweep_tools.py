"""The calculator experiment behind chapter 10 (survey §5.2): does a tool inside generation
help a small model and a larger one?

The draft (0.6M parameters) and the target (5.3M) each solve every problem of the ``test`` set
(all 312 test problems, 24 from each of the 13 cells) twice by greedy decoding: alone
(`decoding.greedy` on the bare worked-solution format) and with the calculator
(`meta.tool_generate` on the ``[CALC]`` format); `workbench.experiments.calculator` holds the
experiment, shared with the chapter.  Each run's correctness and Table 5 token
counts (input, output, external) are stored per problem in ``data/results/tool_use.json``,
written after every problem so an interrupted sweep resumes.  Greedy decoding needs no seed.

    python scripts/sweep_tools.py            # about 7 minutes on one CPU core

Chapter 10 reads the file and re-runs its first problems live; ``tests/test_sweep_external.py``
re-runs a slice and checks it matches.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from workbench.experiments import calculator  # noqa: E402

OUT = ROOT / "data" / "results" / "tool_use.json"
PROBLEMS = "test"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=None, help="the first N of the set")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = wb.tasks.load("tinyworld-arithmetic")
    models = [wb.load("tinyworld-draft", device="cpu"), wb.load("tinyworld", device="cpu")]
    out = Path(args.out)
    data = json.loads(out.read_text()) if out.exists() else {"rows": []}
    done = {(r["id"], r["model"], r["run"]) for r in data["rows"]}
    data["meta"] = {"problem_set": PROBLEMS, "decoding": "greedy",
                    "max_new_tokens": calculator.MAX_NEW_TOKENS,
                    "models": [m.name for m in models], "runs": list(calculator.RUNS)}
    for p in tqdm(calculator.problems(task, PROBLEMS, args.problems), desc="calculator sweep"):
        for lm in models:
            for run in calculator.RUNS:
                if (p.id, lm.name, run) not in done:
                    data["rows"].append(calculator.record(lm, task, p, run))
        data["meta"]["problems"] = len({r["id"] for r in data["rows"]})
        out.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
