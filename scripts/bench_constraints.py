"""Benchmark: our regex/JSON token index against llguidance, measured in the same run.

For each constraint: index build time (ours: regex -> DFA -> token index; llguidance: tokenizer
wrapper + grammar compilation), then the time per generated token to get the allowed-token
mask and advance the state, along the same random token paths for both.  Ours is a lookup in
the precomputed index ("cached"; "first use" includes building the mask tensor of a state);
llguidance computes each mask on the fly.  Finally the template speedup of fast-forward:
forward passes of constrained JSON generation with and without it (a random 2-layer model).

    .venv/bin/python scripts/bench_constraints.py [--paths 20] [--model tinyworld]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from workbench.constraints import generate, json_constraint, regex_constraint
from workbench.constraints.library import LibraryMatcher, _ll_tokenizer
from workbench.paths import data_dir
from workbench.tinyworld.worlds import JSON_PROMPT, RECORD_SCHEMA

CONSTRAINTS = [("regex: phone", {"regex": r"\(?[0-9]{3}\)? ?[0-9]{3}-[0-9]{4}"}),
               ("regex: sentence", {"regex": r"[A-Z][a-z]+( [a-z]+){2,12}\."}),
               ("json: RECORD_SCHEMA", {"schema": RECORD_SCHEMA})]


def paths(index, n, seed, max_len=200):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q, toks = index.start, []
        while len(toks) < max_len:
            tok = int(rng.choice(index.allowed(q)))
            toks.append(tok)
            if tok == index.eos:
                break
            q = index.next_state(q, tok)
        out.append(toks)
    return out


def time_ours(index, walks):
    t0 = time.perf_counter()
    for toks in walks:
        q = index.start
        for tok in toks:
            index.mask(q)
            if tok != index.eos:
                q = index.next_state(q, tok)
    return time.perf_counter() - t0


def time_library(tokenizer, spec, walks):
    matchers = [LibraryMatcher(tokenizer, **spec) for _ in walks]    # created before timing
    t0 = time.perf_counter()
    for toks, lib in zip(walks, matchers):
        for tok in toks:
            lib.bitmask()
            lib.consume(tok)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    t0 = time.perf_counter()
    _ll_tokenizer(tokenizer)
    ll_tok = time.perf_counter() - t0
    print(f"vocabulary: {len(tokenizer)} tokens; llguidance tokenizer wrapper: "
          f"{ll_tok * 1e3:.1f} ms (once per tokenizer)\n")
    print(f"{'constraint':22} {'states':>6} {'build ours':>11} {'build lib':>10} "
          f"{'tokens':>7} {'ours first':>11} {'ours cached':>12} {'llguidance':>11} "
          f"{'lib/ours':>9}")
    for name, spec in CONSTRAINTS:
        t0 = time.perf_counter()
        index = (regex_constraint(spec["regex"], tokenizer) if "regex" in spec
                 else json_constraint(spec["schema"], tokenizer))
        build_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        LibraryMatcher(tokenizer, **spec)
        build_lib = time.perf_counter() - t0
        walks = paths(index, args.paths, args.seed)
        n = sum(len(w) for w in walks)
        first = time_ours(index, walks)            # builds each state's mask tensor once
        cached = min(time_ours(index, walks) for _ in range(3))
        lib = min(time_library(tokenizer, spec, walks) for _ in range(3))
        print(f"{name:22} {index.n_states:>6} {build_ours * 1e3:>8.1f} ms "
              f"{build_lib * 1e3:>7.1f} ms"
              f" {n:>7} {first / n * 1e6:>8.1f} us {cached / n * 1e6:>9.1f} us "
              f"{lib / n * 1e6:>8.1f} us {lib / cached:>8.1f}x")
    fast_forward_passes(tokenizer, args.seed)


def fast_forward_passes(tokenizer, seed):
    """The template speedup (survey §3.5.1): passes per JSON record with and without it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from workbench import LanguageModel
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=128, max_position_embeddings=256)
    lm = LanguageModel(LlamaForCausalLM(cfg).eval(), tokenizer, name="random-tiny")
    index = json_constraint(RECORD_SCHEMA, lm)
    print("\nfast-forward on RECORD_SCHEMA (random 2-layer model, 5 samples each):")
    for ff in (False, True):
        t0 = time.perf_counter()
        gens = [generate(lm, JSON_PROMPT, index, seed=s, max_new_tokens=120, fast_forward=ff)
                for s in range(seed, seed + 5)]
        dt = time.perf_counter() - t0
        toks = sum(len(g.token_ids) for g in gens)
        passes = sum(g.cost.forward_passes for g in gens)
        saved = sum(g.info["passes_saved"] for g in gens)
        print(f"  fast_forward={ff!s:5}  tokens {toks:4}  forward passes {passes:4} "
              f"({passes / toks:.2f} per token)  passes saved {saved:4}  "
              f"{dt / toks * 1e3:.2f} ms/token")


if __name__ == "__main__":
    main()
