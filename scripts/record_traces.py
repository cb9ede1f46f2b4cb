"""Record the trace shipped in ``data/traces/``: runs of the workbench's algorithms on a model
from outside TinyWorld, saved with `Trace.save` so that the widgets replay them without the model
(``wb.trace.load("data/traces/gpt2-local.jsonl")``; chapter 00 and docs/traces.md show how).

The model stands in for a learner's Hugging Face checkpoint: a small GPT-2 with its own
byte-level BPE vocabulary (not TinyWorld's), built here from a seed, saved with
``save_pretrained`` and loaded back by path with `workbench.load`, as a Hub model would be.  It
is untrained, so its text is noise; what the trace proves is the path (another tokenizer, another
architecture, a file that travels).

    python scripts/record_traces.py            # rewrites data/traces/gpt2-local.jsonl
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from workbench import adapters, decoding, meta, scoring  # noqa: E402
from workbench.constraints import compare_healing, generate as constrained  # noqa: E402
from workbench.efficiency import PrefixCache, speculative_decode, timed_greedy  # noqa: E402
from workbench.paths import data_dir  # noqa: E402

TEXT = ("The answer is yes. The answer is no. A story: the cat sat on the mat, and the dog "
        "ran to the park. Question: what is 12 + 7? Answer: 19.\n")
STREAM = ("A story: the cat sat", "A story: the dog ran", "Question: what is 12 + 7?",
          "A story: the cat ran")       # prompts served by a prefix cache of CAPACITY tokens
CAPACITY = 16
HEAL_PROMPT = "The answer is y"    # healing rolls back ' y' and writes ' yes'
OUT = data_dir() / "traces" / "gpt2-local.jsonl"


def build(path: Path, layers: int, seed: int) -> Path:
    """A GPT-2 (``layers`` layers, seeded) with a byte-level BPE trained on TEXT, saved at
    ``path`` with ``save_pretrained``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([TEXT] * 4, vocab_size=320, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32,
                                       n_layer=layers, n_head=2, bos_token_id=tok.eos_token_id,
                                       eos_token_id=tok.eos_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def models(root: Path) -> tuple:
    """(target, draft): two GPT-2s sharing one tokenizer, loaded by path like Hub models."""
    return (wb.load(str(build(root / "gpt2-local", layers=2, seed=0))),
            wb.load(str(build(root / "gpt2-local-draft", layers=1, seed=1))))


def record(lm, draft) -> tuple:
    """One run of each algorithm a view replays, all in one trace: (trace, results by name).
    Sampling runs twice, without and with an adapter (top-k, k = 3), for the stepper's and the
    distribution explorer's q; best-of-N twice on the same samples, with two judges (per-token
    log p first, then log p), for the selector's toggle; timed greedy decoding with and without
    the KV cache, for the cache view; a prefix cache serving STREAM, for the prefix stepper;
    a prompt generated without and with token healing, for the healing view."""
    sampler = meta.LMGenerator(lm, max_new_tokens=6)
    stepper = meta.LMStepper(lm, max_step_tokens=4)
    with wb.trace() as t:
        r = {"sample": decoding.sample(lm, "A story:", max_new_tokens=8, seed=0)}
        r["sample_top_k"] = decoding.sample(lm, "A story:", adapters=partial(adapters.top_k, k=3),
                                            max_new_tokens=8, seed=0)
        r["beam_search"] = decoding.beam_search(lm, "A story:", num_beams=2, max_new_tokens=5)
        r["constrained"] = constrained(lm, "Question:", r"The answer is (yes|no)\.", seed=0,
                                       max_new_tokens=24)
        r["healing"] = compare_healing(lm, HEAL_PROMPT, max_new_tokens=4)
        r["speculative"] = speculative_decode(lm, draft, "A story:", k=3, max_new_tokens=12,
                                              seed=0)
        r["timed_greedy"] = timed_greedy(lm, "A story:", 6)
        r["timed_recompute"] = timed_greedy(lm, "A story:", 6, use_cache=False)
        cache = PrefixCache(lm, max_tokens=CAPACITY)
        for prompt in STREAM:
            cache.prefill(prompt)
        r["majority_vote"] = meta.majority_vote("Question: what is 12 + 7?", sampler, 5, seed=0,
                           answer_fn=lambda text: text.strip()[:1] or None)
        r["best_of_n_per_token"] = meta.best_of_n("Question:", sampler,
                                                  scoring.LogProbScorer(per_token=True), 4, seed=0)
        r["best_of_n"] = meta.best_of_n("Question:", sampler, scoring.LogProbScorer(), 4, seed=0)
        r["rejection_sample"] = meta.rejection_sample(
            "A story:", sampler, lambda p, o: o.logprob - len(o.text) / 20, 0.0, num_samples=1,
            max_proposals=12, batch=4, seed=0)
        r["chain_of_thought"] = meta.chain_of_thought(
            "Question: what is 12 + 7?", sampler, sampler, marker="Answer:", seed=0)
        r["stepwise_beam"] = meta.stepwise_beam(
            "Question:", stepper, meta.logprob_value(), beam_size=2, expansions=2, max_steps=2,
            seed=0, answer_fn=lambda text: None)
        r["refine"] = meta.refine("Question:", sampler, _feedback, _refiner(sampler),
                                  max_iterations=2, seed=0)
    return t, r


def _feedback(prompt, versions, notes):
    """A scripted critic: asks for one rewrite, then accepts."""
    return meta.Feedback(done=len(versions) > 1, text="rewrite it" if len(versions) < 2
                         else "fine", first_error=0 if len(versions) < 2 else None)


def _refiner(generator):
    return lambda prompt, versions, notes, seed: meta.generate(generator, prompt, 1, seed)[0]


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        lm, draft = models(Path(tmp))
        t, _ = record(lm, draft)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t.save(args.out, lm)
    print(f"{args.out}: {len(t)} events {t.kinds()}, {args.out.stat().st_size / 1024:.0f} KiB")
    return args.out


if __name__ == "__main__":
    main()
