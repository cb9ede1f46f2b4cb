"""Training loops for the TinyWorld zoo (CPU, seeded, resumable, with progress bars).

`train_lm` trains a Llama-architecture causal LM on a document stream; `train_scorer` trains a
token-classification head (verifier, process reward model, attribute classifier) on labelled
examples.  Both checkpoint to a run directory every few minutes and resume from it, and both save
a standard ``save_pretrained`` model (safetensors, float16 to keep ``data/`` small).
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm


@dataclass
class ModelSpec:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    num_key_value_heads: int | None = None
    max_position_embeddings: int = 1024

    def config(self, tokenizer, **extra):
        from transformers import LlamaConfig
        return LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads or self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings, tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, rope_theta=10000.0, **extra)


@dataclass
class TrainSpec:
    steps: int
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.1
    seed: int = 0
    checkpoint_minutes: float = 5.0
    bf16: bool = True   # bfloat16 autocast for matmuls (about 2x faster on AVX512-BF16 CPUs)


def _schedule(step, spec: TrainSpec):
    if step < spec.warmup:
        return (step + 1) / spec.warmup
    frac = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def _pad(rows, pad_id, label_pad=-100):
    n = max(len(r) for r in rows)
    n = (n + 7) // 8 * 8
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def _loop(model, spec: TrainSpec, run_dir: Path, batch_fn, loss_fn, desc: str):
    """Shared optimisation loop with checkpoint/resume; returns a log of (step, loss)."""
    torch.manual_seed(spec.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=spec.lr, betas=(0.9, 0.95))
    ckpt, start, log, elapsed = run_dir / "checkpoint.pt", 0, [], 0.0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, log, elapsed = state["step"], state["log"], state.get("elapsed", 0.0)
    model.train()
    t0, last_ckpt = time.time(), time.time()
    bar = tqdm(range(start, spec.steps), desc=desc, initial=start, total=spec.steps)
    running = None
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = spec.lr * _schedule(step, spec)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.bf16):
            loss = loss_fn(model, batch_fn(step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            log.append((step, round(running, 4)))
            bar.set_postfix(loss=f"{running:.3f}")
        if time.time() - last_ckpt > 60 * spec.checkpoint_minutes or step == spec.steps - 1:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                        "log": log, "elapsed": elapsed + time.time() - t0}, ckpt)
            last_ckpt = time.time()
    model.eval()
    total = elapsed + time.time() - t0
    return {"log": log, "train_seconds": round(total, 1), "steps": spec.steps}


def lm_batches(tokenizer, doc_fn, spec: TrainSpec, pool=16):
    """``step -> batch``: documents for a step are drawn deterministically and length-bucketed."""
    cache = {}

    def batch(step):
        block = step // pool
        if block not in cache:
            cache.clear()
            rows = []
            for k in range(spec.batch_size * pool):
                i = block * spec.batch_size * pool + k
                rows.append([tokenizer.bos_token_id] + tokenizer.encode(
                    doc_fn(i), add_special_tokens=False) + [tokenizer.eos_token_id])
            rows.sort(key=len)
            groups = [rows[j: j + spec.batch_size] for j in range(0, len(rows), spec.batch_size)]
            random.Random(spec.seed * 7919 + block).shuffle(groups)
            cache[block] = groups
        ids, mask = _pad(cache[block][step % pool], tokenizer.pad_token_id)
        labels = ids.masked_fill(mask == 0, -100)
        return ids, mask, labels

    return batch


def _lm_loss(model, batch):
    ids, mask, labels = batch
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def train_lm(spec: ModelSpec | None, train: TrainSpec, tokenizer, doc_fn, run_dir: Path,
             init_from: str | Path | None = None, desc="train"):
    """Train (or fine-tune ``init_from``) a causal LM on documents ``doc_fn(i)``."""
    from transformers import LlamaForCausalLM
    torch.manual_seed(train.seed)
    if init_from is not None:
        model = LlamaForCausalLM.from_pretrained(init_from, dtype=torch.float32)
    else:
        model = LlamaForCausalLM(spec.config(tokenizer))
    info = _loop(model, train, Path(run_dir), lm_batches(tokenizer, doc_fn, train), _lm_loss, desc)
    return model, info


def scorer_batches(examples, spec: TrainSpec, pad_id):
    """Examples are ``(token_ids, {position: label})``; labels in [0, 1] at chosen positions."""
    order = list(range(len(examples)))

    def batch(step):
        if not examples:
            raise ValueError("examples is empty: nothing to train the scorer on")
        per_epoch = max(1, len(examples) // spec.batch_size)
        epoch, k = divmod(step, per_epoch)
        rng = random.Random(spec.seed * 31 + epoch)
        perm = order[:]
        rng.shuffle(perm)
        chosen = [examples[i] for i in perm[k * spec.batch_size:(k + 1) * spec.batch_size]]
        ids, mask = _pad([ids for ids, _ in chosen], pad_id)
        target = torch.full(ids.shape, -1.0)
        for i, (_, labels) in enumerate(chosen):
            for pos, y in labels.items():
                target[i, pos] = float(y)
        return ids, mask, target

    return batch


def _scorer_loss(model, batch):
    ids, mask, target = batch
    logits = model(input_ids=ids, attention_mask=mask).logits[..., 0]
    keep = target >= 0
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], target[keep])


def train_scorer(train: TrainSpec, examples, init_from, run_dir: Path, pad_id, desc="scorer"):
    """A ``LlamaForTokenClassification`` (one logit per position) trained with BCE."""
    from transformers import LlamaForTokenClassification
    torch.manual_seed(train.seed)
    model = LlamaForTokenClassification.from_pretrained(init_from, num_labels=1,
                                                        dtype=torch.float32)
    info = _loop(model, train, Path(run_dir), scorer_batches(examples, train, pad_id),
                 _scorer_loss, desc)
    return model, info


def class_conditional_batches(examples, spec: TrainSpec, pool=8):
    """Examples are ``(token_ids without BOS, label 0/1)``; batches of similar length, seeded."""
    def batch(step):
        if not examples:
            raise ValueError("examples is empty: nothing to train the scorer on")
        rng = random.Random(7 * step + 1)   # batch k is a fixed draw; the init is pretrained
        idx = rng.sample(range(len(examples)), min(len(examples), spec.batch_size * pool))
        idx.sort(key=lambda i: len(examples[i][0]))
        g = rng.randrange(max(1, len(idx) // spec.batch_size))
        return [examples[i] for i in idx[g * spec.batch_size:(g + 1) * spec.batch_size]]
    return batch


def code_logprobs(model, chosen, codes, bos_id, pad_id):
    """log p(y_s | code, y_<s) for every token of every example, read after ``[BOS, code]``."""
    from ..scoring import logprobs_after_code
    ids, mask = _pad([[bos_id, c] + ids for (ids, _), c in zip(chosen, codes)], pad_id)
    return logprobs_after_code(model, ids, mask)


def class_conditional_loss(code_ids, prior_log_odds, lam, bos_id, pad_id):
    """GeDi's objective: (1 - lam) * LM loss under the example's own code + lam * the Bayes
    classifier's cross-entropy, whose logit is the prior log-odds plus the summed per-token
    log-ratio of the two codes (see `workbench.scoring.BayesScorer`)."""
    right, wrong = code_ids

    def loss(model, chosen):
        y = torch.tensor([float(lab) for _, lab in chosen])
        own = code_logprobs(model, chosen, [right if lab else wrong for _, lab in chosen],
                            bos_id, pad_id)
        lm = -own.sum() / sum(len(ids) for ids, _ in chosen)
        if lam == 0:
            return lm
        other = code_logprobs(model, chosen, [wrong if lab else right for _, lab in chosen],
                              bos_id, pad_id)
        logit = prior_log_odds + (2 * y - 1) * (own.sum(1) - other.sum(1))
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        return (1 - lam) * lm + lam * bce
    return loss


def train_class_conditional(train: TrainSpec, examples, init_from, run_dir: Path, tokenizer,
                            codes=("+", "-"), lam=0.5, desc="scorer"):
    """Fine-tune the causal LM ``init_from`` into a class-conditional LM p(y | code) used as a
    classifier by Bayes' rule; returns the model and its ``scorer.json`` spec."""
    from transformers import LlamaForCausalLM
    torch.manual_seed(train.seed)
    rate = sum(lab for _, lab in examples) / max(1, len(examples))
    if not 0 < rate < 1:
        raise ValueError("examples must contain both labels to train a classifier")
    prior = math.log(rate / (1 - rate))
    code_ids = [tokenizer.convert_tokens_to_ids(c) for c in codes]
    model = LlamaForCausalLM.from_pretrained(init_from, dtype=torch.float32)
    loss = class_conditional_loss(code_ids, prior, lam, tokenizer.bos_token_id,
                                  tokenizer.pad_token_id)
    info = _loop(model, train, Path(run_dir), class_conditional_batches(examples, train), loss,
                 desc)
    spec = {"kind": "class-conditional LM read by Bayes' rule",
            "codes": {"right": codes[0], "wrong": codes[1]}, "prior_log_odds": prior, "lam": lam}
    return model, info, spec


def save_model(model, tokenizer, out_dir: Path, card: str, info: dict):
    """``save_pretrained`` in float16 with the tokenizer, a model card and ``training.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(out_dir, safe_serialization=True)
    model.to(torch.float32)
    tokenizer.save_pretrained(out_dir)
    # a tokenizer loaded offline records local_files_only=true; the saved model must not
    tok_cfg = out_dir / "tokenizer_config.json"
    cfg = json.loads(tok_cfg.read_text())
    if cfg.get("local_files_only"):
        tok_cfg.write_text(json.dumps({**cfg, "local_files_only": False}, indent=2) + "\n")
    (out_dir / "README.md").write_text(card)
    (out_dir / "training.json").write_text(json.dumps(info, indent=1))


def spec_dict(spec) -> dict:
    return asdict(spec)
