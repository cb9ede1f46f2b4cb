"""Train Medusa heads for TinyWorld's target by self-distillation (Cai et al. 2024, Medusa-1).

The target stays frozen.  Its own greedy continuations of TinyWorld prompts are the data: with
h_t the target's last hidden state at position t of such a continuation, head k learns the
token k + 1 positions ahead,

    loss = sum_k  mean_t  -log p_k(y_{t+k+1} | h_t),

so that it guesses what greedy decoding will emit.  The hidden states are computed once (the
target does not change), then the heads train on them.  Writes ``--out`` (model.safetensors,
config.json, metrics.json, README.md with the held-out per-head accuracy and the acceptance
length of `efficiency.medusa_decoding`) and refreshes data/models/README.md.

    python scripts/train_medusa.py                      # data/models/tinyworld-medusa, ~1 min
    python scripts/train_medusa.py --smoke /tmp/medusa  # a few steps on a tiny set
"""
from __future__ import annotations

import argparse
import json
import random
import time

import torch
from tqdm.auto import tqdm

import workbench as wb
from workbench import decoding, stats
from workbench.efficiency.medusa import MedusaHeads, medusa_decoding
from workbench.paths import data_dir
from workbench.tinyworld.corpus import document

TRAIN_SEED, HELDOUT_SEED = 7, 8      # corpus seeds of the prompts (the zoo trained on seed 0/1)
TOPK = (3, 2, 1)                     # the tree the acceptance length is measured with


def prompts(lm, seed: int, n: int) -> list:
    """The first 2..12 tokens (the BOS included) of n TinyWorld documents."""
    rng = random.Random(seed)
    return [lm.encode(document(seed, i))[:rng.randint(2, 12)] for i in range(n)]


def continuations(lm, starts: list, new_tokens: int, chunk: int = 32) -> list:
    """Each prompt followed by the target's greedy continuation (EOS not special)."""
    out = []
    for i in range(0, len(starts), chunk):
        gens = decoding.greedy(lm, starts[i:i + chunk], new_tokens, eos=False)
        out += [s + g.token_ids for s, g in zip(starts[i:i + chunk], gens)]
    return out


def features(lm, starts: list, seqs: list, num_heads: int):
    """Hidden states h_t at the positions whose next token the target chose (t >= len(prompt)
    - 1) and the labels Y[:, k] = y_{t+k+2} (-100 past the end)."""
    hs, ys = [], []
    for start, seq in zip(starts, seqs):
        _, _, hid = lm.forward(torch.tensor([seq]), hidden=True)
        for t in range(len(start) - 1, len(seq) - 2):
            hs.append(hid[0, t])
            ys.append([seq[t + k + 2] if t + k + 2 < len(seq) else -100
                       for k in range(num_heads)])
    return torch.stack(hs), torch.tensor(ys)


def train(heads, H, Y, steps: int, batch: int, lr: float, seed: int) -> list:
    """AdamW on the summed cross-entropy of the heads; returns the loss per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(heads.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    heads.train()
    for _ in tqdm(range(steps), desc="medusa heads"):
        idx = torch.randint(len(H), (batch,), generator=gen)
        logits = heads(H[idx])                                     # (K, B, V)
        loss = sum(torch.nn.functional.cross_entropy(lg, Y[idx, k], ignore_index=-100)
                   for k, lg in enumerate(logits))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    heads.eval()
    return losses


@torch.no_grad()
def accuracy(heads, H, Y, k: int = 3) -> list:
    """Per head: (top-1, top-k) accuracy against the target's greedy token k + 1 ahead."""
    logits = heads(H)
    out = []
    for j in range(heads.num_heads):
        keep = Y[:, j] >= 0
        top = logits[j][keep].topk(k).indices
        y = Y[keep, j].view(-1, 1)
        out.append((float((top[:, :1] == y).float().mean()), float((top == y).any(1).float()
                                                                    .mean())))
    return out


def acceptance(lm, heads, starts: list, new_tokens: int) -> dict:
    """Tokens per target pass of medusa_decoding over held-out prompts, with a 95 % interval."""
    per = [medusa_decoding(lm, heads, s, topk=TOPK, max_new_tokens=new_tokens,
                           stop_at_eos=False).info["tokens_per_pass"] for s in starts]
    m = stats.mean_interval(per)
    return {"mean": m.mean, "low": m.low, "high": m.high, "n": len(per)}


def readme(name: str, cfg: dict, m: dict) -> str:
    rows = "\n".join(f"| {k + 1} | token t+{k + 2} | {a1:.3f} | {ak:.3f} |"
                     for k, (a1, ak) in enumerate(zip(m["heads"]["top1"], m["heads"]["top3"])))
    acc, t = m["acceptance"], m["training"]
    return f"""# {name}

Medusa heads (Cai et al. 2024) for `tinyworld`: {cfg['num_heads']} heads on the target's last
hidden state (size {cfg['hidden_size']}); head k predicts the token k positions after the one
the target's own LM head predicts. Each head is a residual block h + SiLU(W h + b) and a
linear map to the {cfg['vocab_size']}-token vocabulary, initialised from the target's LM
head (W = 0).
{m['parameters']} parameters, stored in float16 safetensors ({m['bytes'] / 1e6:.1f} MB). Load
with `workbench.efficiency.MedusaHeads.from_pretrained(path, target)`; decode with
`workbench.efficiency.medusa_decoding` (chapter 13).

## Training

Self-distillation with the target frozen (`scripts/train_medusa.py`): the target's greedy
continuations ({t['new_tokens']} tokens) of {t['train_prompts']} TinyWorld prompts (corpus seed
{TRAIN_SEED}), {t['train_positions']} positions; {t['steps']} AdamW steps of {t['batch']}
positions (lr {t['lr']}, cosine), seed {t['seed']}, {t['train_seconds']:.0f} s on a 2-core CPU
(hidden states {t['feature_seconds']:.0f} s).

## Metrics

Held out: greedy continuations of {t['heldout_prompts']} prompts of corpus seed {HELDOUT_SEED}
({t['heldout_positions']} positions). Accuracy against the token greedy decoding emits:

| head | predicts | top-1 | top-3 |
|---|---|---|---|
{rows}

Mean acceptance length (tokens emitted per target pass) of `medusa_decoding` with
topk={TOPK}, {t['new_tokens']} tokens from each of {acc['n']} held-out prompts:
{acc['mean']:.3f} (95 % bootstrap interval {acc['low']:.3f} to {acc['high']:.3f}); plain
greedy decoding emits 1.
"""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(data_dir() / "models" / "tinyworld-medusa"))
    ap.add_argument("--smoke", metavar="DIR", help="a tiny run written to DIR (a test)")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--train-prompts", type=int, default=384)
    ap.add_argument("--heldout-prompts", type=int, default=48)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    if a.smoke:
        a.out, a.train_prompts, a.heldout_prompts, a.new_tokens, a.steps, a.batch = \
            a.smoke, 4, 2, 8, 1, 16
    torch.set_num_threads(a.threads)
    wb.seed_everything(a.seed)
    lm = wb.load("tinyworld", device="cpu")
    heads = MedusaHeads.for_target(lm, a.heads)
    t0 = time.perf_counter()
    tr, ho = prompts(lm, TRAIN_SEED, a.train_prompts), prompts(lm, HELDOUT_SEED,
                                                                a.heldout_prompts)
    tr_seq, ho_seq = continuations(lm, tr, a.new_tokens), continuations(lm, ho, a.new_tokens)
    H, Y = features(lm, tr, tr_seq, a.heads)
    Hh, Yh = features(lm, ho, ho_seq, a.heads)
    t1 = time.perf_counter()
    losses = train(heads, H, Y, a.steps, a.batch, a.lr, a.seed)
    t2 = time.perf_counter()
    out = heads.save_pretrained(a.out)
    t3 = time.perf_counter()
    heads = MedusaHeads.from_pretrained(out, lm)      # measure what was written (float16)
    load = time.perf_counter() - t3
    acc = accuracy(heads, Hh, Yh)
    m = {"parameters": sum(p.numel() for p in heads.parameters()),
         "bytes": (out / "model.safetensors").stat().st_size, "load_seconds": round(load, 3),
         "mean_acceptance_length": acceptance(lm, heads, ho, a.new_tokens),
         "head1_top1": acc[0][0], "head1_top3": acc[0][1],
         "heads": {"top1": [x[0] for x in acc], "top3": [x[1] for x in acc]},
         "training": {"final_loss": sum(losses[-20:]) / len(losses[-20:]), "steps": a.steps,
                      "batch": a.batch, "lr": a.lr, "seed": a.seed, "new_tokens": a.new_tokens,
                      "train_prompts": a.train_prompts, "heldout_prompts": a.heldout_prompts,
                      "train_positions": len(H), "heldout_positions": len(Hh),
                      "feature_seconds": round(t1 - t0, 1),
                      "train_seconds": round(t2 - t1, 1)}}
    m["acceptance"] = m.pop("mean_acceptance_length")
    m["mean_acceptance_length"] = m["acceptance"]["mean"]
    (out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
    (out / "README.md").write_text(readme(out.name, heads.config(), m))
    if not a.smoke:
        from workbench.tinyworld.cards import write_index
        write_index()
    print(json.dumps({k: m[k] for k in ("heads", "acceptance", "training")}))
    return m


if __name__ == "__main__":
    main()
