"""Tokens per second of the workbench's decoding loop against Hugging Face ``generate``.

Both run the same model, prompt and settings in the same process, alternating, with the
end-of-sequence token ignored so that every run produces exactly ``--tokens`` tokens; the table
shows the median of ``--repeats`` runs and the ratio ours / HF (goals: >= 0.9 for greedy and
sampling, >= 0.8 for beam search).  It also times the distribution explorer's redraw (goal:
median <= 150 ms).

    .venv/bin/python scripts/bench_decoding.py --model tinyworld
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402
from workbench import adapters, decoding  # noqa: E402


def load(name: str):
    layers, d = (2, 64) if name == "random-small" else (8, 256)
    if name != "random-small":
        try:
            return wb.load(name, device="cpu"), name
        except wb.ModelNotAvailable as err:
            print(f"[{name} not available ({str(err)[:60]}...); using a random {layers}-layer "
                  f"Llama, d={d}, on the TinyWorld tokenizer]")
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from workbench.paths import data_dir
    tok = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=d, num_hidden_layers=layers,
                      num_attention_heads=8 if d > 64 else 4, intermediate_size=3 * d,
                      max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return (wb.LanguageModel(LlamaForCausalLM(cfg).eval(), tok, name=f"random-{layers}x{d}"),
            "random")


def timed(fn):
    """Tokens per second of CPU time (robust on a shared machine; see --wall)."""
    clock = time.perf_counter if WALL else time.process_time
    t0 = clock()
    n = fn()
    return n / (clock() - t0)


WALL = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tinyworld")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompt", default="Story: The little")
    ap.add_argument("--small", action="store_true",
                    help="a random 2-layer d=64 model instead (Python overhead dominates)")
    ap.add_argument("--wall", action="store_true",
                    help="time wall-clock seconds instead of this process's CPU seconds")
    args = ap.parse_args()
    global WALL
    WALL = args.wall or args.threads > 1 or torch.cuda.is_available()
    torch.set_num_threads(args.threads)
    lm, used = load("random-small" if args.small else args.model)
    ids = lm.encode(args.prompt)
    T = args.tokens
    x = torch.tensor([ids])
    mask = torch.ones_like(x)
    lm.model.generation_config.eos_token_id = None   # generate() would fill it in from here

    def hf(**kw):
        gc = copy.deepcopy(lm.model.generation_config)
        gc.update(pad_token_id=lm.pad_token_id, max_new_tokens=T, **kw)

        def run():                                  # no EOS: exactly T tokens
            out = lm.model.generate(x, attention_mask=mask, generation_config=gc)
            assert out.shape[1] == len(ids) + T
            return T * kw.get("num_beams", 1)
        return run

    sample_adapters = [partial(adapters.temperature, tau=0.8), partial(adapters.top_k, k=50)]
    rows = [
        ("greedy", lambda: len(decoding.greedy(lm, ids, T, eos=False).token_ids),
         hf(do_sample=False), 0.9),
        ("sample (t=0.8, top-k 50)",
         lambda: len(decoding.sample(lm, ids, sample_adapters, seed=0, max_new_tokens=T,
                                     eos=False).token_ids),
         hf(do_sample=True, temperature=0.8, top_k=50), 0.9),
        (f"beam search ({args.beams} beams)",
         lambda: args.beams * decoding.beam_search(lm, ids, args.beams, max_new_tokens=T,
                                                   eos=False).params["steps"],
         hf(do_sample=False, num_beams=args.beams), 0.8),
    ]
    print(f"model {lm.name} ({used}), {sum(p.numel() for p in lm.model.parameters()) / 1e6:.1f}M "
          f"parameters, {T} new tokens, {args.threads} thread(s), median of {args.repeats}")
    print(f"tokens per {'wall-clock' if WALL else 'CPU'} second; ratio: median over back-to-back "
          "pairs (order alternating) of ours / HF")
    print(f"{'':28s}{'ours tok/s':>12s}{'HF tok/s':>12s}{'ratio':>8s}{'goal':>7s}")
    ok = True
    for name, ours, ref, goal in rows:
        ours(), ref()                                   # warm-up
        a, b, r = [], [], []
        for i in range(args.repeats):
            if i % 2:
                b.append(timed(ref))
                a.append(timed(ours))
            else:
                a.append(timed(ours))
                b.append(timed(ref))
            r.append(a[-1] / b[-1])
        ratio = statistics.median(r)
        ok &= ratio >= goal
        print(f"{name:28s}{statistics.median(a):12.1f}{statistics.median(b):12.1f}{ratio:8.2f}"
              f"{goal:7.2f}")
    try:
        from widgets.distribution import redraw_times
        times = redraw_times(lm, args.prompt, n=15)
        print(f"distribution explorer redraw: median {1000 * statistics.median(times):.1f} ms "
              f"(goal <= 150 ms)")
    except ImportError as err:
        print(f"[distribution explorer not timed: {err}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
