"""Efficient generation (survey §7), measured: prints ratios from one run on this machine.

    python scripts/bench_efficiency.py                          # tinyworld + tinyworld-draft
    python scripts/bench_efficiency.py TARGET DRAFT --quick     # any two models, smaller sizes
    python scripts/bench_efficiency.py --json data/results/efficiency.json

Falls back to randomly initialised models of the same shapes while the embedded ones are absent
(the draft is then the target's first layer, so that greedy drafts sometimes agree).  Timings
need a quiet machine; every ratio compares runs made in the same process.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workbench as wb  # noqa: E402
from workbench import adapters, decoding  # noqa: E402
from workbench import efficiency as eff  # noqa: E402
from workbench.tinyworld import arithmetic as ar  # noqa: E402
from workbench.tinyworld.corpus import document  # noqa: E402
from workbench.tinyworld.tasks import load_tasks  # noqa: E402


def load_pair(target_name, draft_name):
    try:
        target = wb.load(target_name, device="cpu")
        draft = wb.load(draft_name, device="cpu")
        return target, draft, "trained"
    except wb.ModelNotAvailable as err:
        print(f"[fallback] {err}\n[fallback] using random models of the embedded shapes")
    from transformers import AutoTokenizer, LlamaForCausalLM

    from workbench.paths import data_dir
    from workbench.tinyworld.zoo import TARGET
    tok = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    torch.manual_seed(0)
    target = wb.LanguageModel(LlamaForCausalLM(TARGET.config(tok)).eval(), tok, "random-target")
    return target, eff.truncated_draft(target, 1), "random"


def clock(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def arithmetic_prompts(n, min_ops=4):
    """Task prompts with long expressions: their worked steps copy the expression's tail."""
    tasks = [t for t in load_tasks("arithmetic") if t["n_ops"] >= min_ops]
    tasks.sort(key=lambda t: (-t["n_ops"], -t["digits"], t["id"]))
    return [t["prompt"] for t in tasks[:n]]


def few_shot_header(n=4):
    docs = [d for d in (document(7, i) for i in range(400)) if d.startswith("Q: ")]
    return "".join(d + "\n" for d in docs[:n])


def bench_kv(lm, tokens):
    a_sec, a = clock(lambda: eff.timed_greedy(lm, "Story:", tokens, use_cache=True))
    b_sec, b = clock(lambda: eff.timed_greedy(lm, "Story:", tokens, use_cache=False))
    q = max(1, tokens // 8)

    def ms(g, part):
        return 1000 * sum(e["seconds"] for e in part(g.info["timeline"])) / q
    return {"tokens": tokens, "same_tokens": a.token_ids == b.token_ids,
            "cache_seconds": a_sec, "no_cache_seconds": b_sec, "speedup": b_sec / a_sec,
            "cache_ms_first": ms(a, lambda t: t[1:q + 1]), "cache_ms_last": ms(a, lambda t: t[-q:]),
            "no_cache_ms_first": ms(b, lambda t: t[1:q + 1]),
            "no_cache_ms_last": ms(b, lambda t: t[-q:]),
            "cache_bytes": a.info["timeline"][-1]["cache_bytes"],
            "formula_bytes": eff.kv_cache_bytes(lm.model.config, len(lm.encode("Story:")) +
                                                tokens - 1)}


def bench_speculative(target, draft, prompts, ks, greedy, max_new_tokens, temperature=1.0):
    adapt = [] if greedy else [lambda x: adapters.temperature(x, temperature)]

    def baseline():
        return [decoding.greedy(target, p, max_new_tokens=max_new_tokens) if greedy else
                decoding.sample(target, p, adapters=adapt, seed=i, max_new_tokens=max_new_tokens)
                for i, p in enumerate(prompts)]
    base_sec, base = clock(baseline)
    base_ms = 1000 * base_sec / sum(len(g.token_ids) for g in base)
    rows = []
    for k in ks:
        sec, outs = clock(lambda: [eff.speculative_decode(
            target, draft, p, k=k, max_new_tokens=max_new_tokens, adapters=adapt, seed=i,
            greedy=greedy) for i, p in enumerate(prompts)])
        rounds = [r for o in outs for r in o.info["rounds"]]
        s = eff.summarize(rounds, k)
        ms = 1000 * sec / sum(len(o.token_ids) for o in outs)
        rows.append({"k": k, "greedy": greedy, "alpha": s["acceptance_rate"],
                     "mean_beta": s["mean_beta"], "tokens_per_round": s["tokens_per_round"],
                     "expected_tokens_per_round": s["expected_tokens_per_round"],
                     "accepted_hist": [sum(r["accepted"] == n for r in rounds if r["drafted"])
                                       for n in range(k + 1)],
                     "ms_per_token": ms, "baseline_ms_per_token": base_ms,
                     "speedup": base_ms / ms,
                     "same_as_target": ([o.token_ids for o in outs] ==
                                        [g.token_ids for g in base]) if greedy else None})
    return rows


def bench_rollback(target, draft, prompts, k, max_new_tokens):
    out = {}
    for mode in ("crop", "rewind"):
        sec, outs = clock(lambda: [eff.speculative_decode(
            target, draft, p, k=k, max_new_tokens=max_new_tokens, seed=i, rollback=mode)
            for i, p in enumerate(prompts)])
        out[mode] = {"seconds": sec, "target_passes": sum(o.info["target_cost"].forward_passes
                                                          for o in outs)}
    out["speedup"] = out["rewind"]["seconds"] / out["crop"]["seconds"]
    return out


def bench_lookup(target, prompts, k, max_new_tokens):
    base_sec, base = clock(lambda: [decoding.greedy(target, p, max_new_tokens=max_new_tokens)
                                    for p in prompts])
    sec, outs = clock(lambda: [eff.prompt_lookup_decode(target, p, k=k, greedy=True,
                                                        max_new_tokens=max_new_tokens)
                               for p in prompts])
    rounds = [r for o in outs for r in o.info["rounds"]]
    s = eff.summarize(rounds, k)
    return {"k": k, "speedup": base_sec / sec, "alpha": s["acceptance_rate"],
            "tokens_per_round": len([t for o in outs for t in o.token_ids]) / len(rounds),
            "same_as_target": [o.token_ids for o in outs] == [g.token_ids for g in base],
            "target_passes": sum(o.cost.forward_passes for o in outs),
            "baseline_passes": sum(g.cost.forward_passes for g in base)}


def bench_prefix(lm, header, questions, n, max_new_tokens):
    prompt = header + questions[0]
    shared_sec, _ = clock(lambda: decoding.sample(lm, prompt, n=n, seed=0,
                                                  max_new_tokens=max_new_tokens))
    unshared_sec, _ = clock(lambda: decoding.sample(lm, [prompt] * n, seed=0,
                                                    max_new_tokens=max_new_tokens))
    prompts = [header + q for q in questions]
    plain_sec, plain = clock(lambda: lm.prefill(prompts))
    pc = eff.PrefixCache(lm)
    cached_sec, state = clock(lambda: pc.prefill(prompts))
    return {"samples": n, "prompt_tokens": len(lm.encode(prompt)), "speedup": unshared_sec /
            shared_sec, "shared_seconds": shared_sec, "unshared_seconds": unshared_sec,
            "prefix_cache": pc.stats(), "prefix_cache_prefill_speedup": plain_sec / cached_sec,
            "max_logit_diff": float((plain.logits - state.logits).abs().max())}


def bench_cache_kinds(lm, prompt, batch=16, tokens=32):
    """ms per decoding step at this batch: transformers' DynamicCache vs the growing cache."""
    out = {}
    for name in ("dynamic", "growing"):
        eff.use_growing_cache(lm, name == "growing")
        out[f"{name}_ms"] = eff.ms_per_token(lm, prompt, tokens=tokens, repeats=1, batch=batch)
    out["speedup"] = out["dynamic_ms"] / out["growing_ms"]
    return out | {"batch": batch, "prompt_tokens": len(lm.encode(prompt))}


def bench_variants(lm):
    rows = eff.attention_variants(lm, tokens=lm.max_length)
    long_prompt = ("Story:" + " The cat sat." * 150)
    ids = lm.encode(long_prompt)[: lm.max_length // 2]
    for r in rows:
        v = eff.with_kv_heads(lm, r["kv_heads"])
        v.cache_factory = lm.cache_factory
        r["ms_per_token_at_half_context"] = eff.ms_per_token(v, ids, tokens=32, repeats=2)
    return rows


def bench_kernels(lm, texts, quick):
    q = eff.quantize_int8(lm)
    eager = eff.with_attention(lm, "eager")
    ids = lm.encode(" ".join(texts))[: lm.max_length // 2]
    out = {"fp32_ms": eff.ms_per_token(lm), "int8_ms": eff.ms_per_token(q),
           "int8_vs_fp32": eff.agreement(lm, q, texts),
           "weight_bytes": {"fp32": eff.weight_bytes(lm), "int8": eff.weight_bytes(q)},
           "sdpa_ms": eff.ms_per_token(lm, ids, tokens=32),
           "eager_ms": eff.ms_per_token(eager, ids, tokens=32),
           "eager_vs_sdpa": eff.agreement(lm, eager, texts[:3])}
    if not quick:
        tasks = [t for t in load_tasks("arithmetic")][:40]
        for name, m in (("fp32", lm), ("int8", q)):
            outs = decoding.greedy(m, [t["prompt"] for t in tasks], max_new_tokens=96)
            out[f"{name}_accuracy"] = sum(ar.extract_answer(g.text) == t["answer"]
                                          for g, t in zip(outs, tasks)) / len(tasks)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", default="tinyworld")
    ap.add_argument("draft", nargs="?", default="tinyworld-draft")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write every measurement to this file")
    ap.add_argument("--cache", choices=("growing", "dynamic"), default="growing",
                    help="KV cache kind: in-place growing (default) or transformers' DynamicCache")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    target, draft, kind = load_pair(args.target, args.draft)
    res = {"models": kind, "target": target.name, "draft": draft.name, "threads": args.threads,
           "cache": args.cache}
    res["cache_kinds"] = bench_cache_kinds(target, few_shot_header(4))
    for lm in (target, draft):
        eff.use_growing_cache(lm, args.cache == "growing")
    print(f"target {target}\ndraft  {draft}\nthreads {args.threads}, models {kind}, "
          f"{args.cache} KV cache\n")
    print("growing vs DynamicCache:", res["cache_kinds"])
    quick = args.quick
    gen_tokens = 64 if quick else 512
    prompts = arithmetic_prompts(2 if quick else 8)
    new = 48 if quick else 128
    ks = (2, 4) if quick else (1, 2, 3, 4, 6, 8)
    texts = [document(3, i) for i in range(6 if quick else 24)]
    t0 = time.perf_counter()
    res["kv"] = kv = bench_kv(target, min(gen_tokens, target.max_length - 8))
    print("KV cache:", {k: round(v, 3) if isinstance(v, float) else v for k, v in kv.items()})
    res["draft_ms"], res["target_ms"] = eff.ms_per_token(draft), eff.ms_per_token(target)
    res["speculative_greedy"] = bench_speculative(target, draft, prompts, ks, True, new)
    res["speculative_sampled"] = bench_speculative(target, draft, prompts, ks, False, new)
    best_k = max(res["speculative_sampled"], key=lambda r: r["speedup"])["k"]
    res["rollback"] = bench_rollback(target, draft, prompts, best_k, new)
    for name in ("speculative_greedy", "speculative_sampled"):
        print(f"\n{name} (c = draft/target = {res['draft_ms'] / res['target_ms']:.3f})")
        print("  k  alpha  tokens/round  closed form  speedup  same tokens as target")
        for r in res[name]:
            print(f"  {r['k']}  {r['alpha']:.3f}  {r['tokens_per_round']:.2f}          "
                  f"{r['expected_tokens_per_round']:.2f}         {r['speedup']:.2f}x    "
                  f"{'' if r['same_as_target'] is None else r['same_as_target']}")
    print("rollback crop vs rewind:", res["rollback"])
    res["prompt_lookup"] = bench_lookup(target, prompts, 8, new)
    print("prompt lookup:", res["prompt_lookup"])
    header = few_shot_header(4)
    questions = [f"Q: {t.split('Q: ')[1]}" for t in arithmetic_prompts(16, min_ops=1)]
    res["prefix"] = bench_prefix(target, header, questions, 16, 32 if quick else 64)
    print("prefix sharing:", res["prefix"])
    res["throughput"] = eff.throughput(target, "Story:", (1, 4, 16) if quick else (1, 4, 16, 64),
                                       max_new_tokens=16 if quick else 32)
    print("throughput:", [(r["batch"], round(r["tokens_per_second"])) for r in res["throughput"]])
    res["variants"] = bench_variants(target)
    print("MHA/GQA/MQA:", res["variants"])
    cpu = eff.measure_cpu()
    res["roofline"] = {hw.name: eff.roofline_table(target.model.config, hw, bytes_per_param=bpp)
                       for hw, bpp in ((eff.H100, 2), (cpu, 4))}
    res["roofline_llama2_7b_h100"] = eff.roofline_table(eff.LLAMA2_7B, eff.H100)
    for name, rows in list(res["roofline"].items()) + [("Llama-2-7B on H100",
                                                        res["roofline_llama2_7b_h100"])]:
        print(f"roofline {name}:", [(r["case"], round(r["intensity"], 1), r["bound"])
                                    for r in rows])
    res["kernels"] = bench_kernels(target, texts, quick or kind == "random")
    print("int8 / attention:", res["kernels"])
    res["seconds"] = time.perf_counter() - t0
    spec = max(res["speculative_sampled"], key=lambda r: r["speedup"])
    spec_g = max(res["speculative_greedy"], key=lambda r: r["speedup"])
    checks = [
        (f"KV cache vs none, {kv['tokens']} tokens", kv["speedup"], 5.0),
        (f"speculative sampling, draft, k={spec['k']} (alpha {spec['alpha']:.2f})",
         spec["speedup"], 1.5),
        (f"speculative greedy, draft, k={spec_g['k']} (alpha {spec_g['alpha']:.2f})",
         spec_g["speedup"], 1.5),
        ("prompt lookup, copying task (greedy, k=8)", res["prompt_lookup"]["speedup"], 1.5),
        ("prefix sharing, 16 samples", res["prefix"]["speedup"], 2.0),
        ("crop vs rewind rollback", res["rollback"]["speedup"], None),
        (f"growing vs DynamicCache, decode at batch {res['cache_kinds']['batch']}",
         res["cache_kinds"]["speedup"], None),
        ("int8 vs fp32 decode", res["kernels"]["fp32_ms"] / res["kernels"]["int8_ms"], None),
        ("sdpa vs eager decode", res["kernels"]["eager_ms"] / res["kernels"]["sdpa_ms"], None),
    ]
    print(f"\n{'measurement':58s} {'ratio':>7s} {'needed':>7s}")
    for name, ratio, need in checks:
        verdict = "" if need is None else ("ok" if ratio >= need else "BELOW")
        print(f"{name:58s} {ratio:6.2f}x {'' if need is None else f'{need:.1f}x':>7s} {verdict}")
    print(f"({res['seconds']:.0f} s; models: {kind})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(wb.tracing.plain(res), indent=1))
    return res


if __name__ == "__main__":
    main()
