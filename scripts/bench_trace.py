"""Overhead of tracing, measured in one run: the same sampling run (a) with instrumentation
switched off, (b) with the hooks live but no active trace, (c) inside an active trace.

    python scripts/bench_trace.py [--model tinyworld] [--tokens 128] [--repeats 7]

Prints the median time of each condition and the ratios (b)/(a) and (c)/(a).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workbench as wb  # noqa: E402
from workbench import decoding  # noqa: E402
from workbench.trace import instrumentation  # noqa: E402


def run(lm, tokens, seed):
    return decoding.sample(lm, "Story:", seed=seed, max_new_tokens=tokens, n=4)


def measure(lm, tokens, repeats):
    conds = {"off": lambda: instrumentation(False), "inactive": lambda: _null(),
             "active": lambda: wb.trace()}
    times = {k: [] for k in conds}
    for r in range(repeats + 1):
        for name, ctx in conds.items():   # interleaved, so drift hits all three alike
            with ctx():
                t0 = time.perf_counter()
                run(lm, tokens, seed=r)
                dt = time.perf_counter() - t0
            if r:  # the first round warms up
                times[name].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tinyworld")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = wb.load(args.model, device="cpu")
    m = measure(lm, args.tokens, args.repeats)
    print(f"model {lm.name}, 4 samples x {args.tokens} tokens, median of {args.repeats}")
    for k, v in m.items():
        print(f"  {k:9s} {v * 1000:8.1f} ms")
    print(f"ratio inactive/off = {m['inactive'] / m['off']:.3f}")
    print(f"ratio active/off   = {m['active'] / m['off']:.3f}")


if __name__ == "__main__":
    main()
