"""The TinyWorld model zoo: what each model is, how it is trained, and its card.

``scripts/train_zoo.py`` runs the stages in order; every stage is skipped when its model exists,
and every training loop resumes from ``runs/zoo/<name>/checkpoint.pt``.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

from ..paths import data_dir
from . import arithmetic as ar
from .corpus import MIXTURE, document
from .train import (ModelSpec, TrainSpec, save_model, train_class_conditional, train_lm,
                    train_scorer)
from .worlds import review_grammar, sentiment

TARGET = ModelSpec(hidden_size=256, num_hidden_layers=6, num_attention_heads=8,
                   intermediate_size=768)
DRAFT = ModelSpec(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=512)
PLAN = {
    "tinyworld": TrainSpec(steps=6000, batch_size=64, lr=2e-3, warmup=300, seed=0),
    "tinyworld-draft": TrainSpec(steps=3000, batch_size=64, lr=3e-3, warmup=200, seed=1),
    "tinyworld-positive": TrainSpec(steps=300, batch_size=32, lr=1e-3, warmup=30, seed=2),
    "tinyworld-negative": TrainSpec(steps=300, batch_size=32, lr=1e-3, warmup=30, seed=3),
    "tinyworld-classifier": TrainSpec(steps=400, batch_size=32, lr=1e-3, warmup=40, seed=4),
    "tinyworld-verifier": TrainSpec(steps=900, batch_size=32, lr=3e-4, warmup=60, seed=7),
    "tinyworld-prm": TrainSpec(steps=900, batch_size=32, lr=3e-4, warmup=60, seed=8),
}
# The verifier's training problems span the held-out set's range (1-7 operations, 1-3 digits):
# a verifier trained on 1-5 operations only reached AUROC 0.84 on the 7-operation test set.
SAMPLE_PROBLEMS, SAMPLE_TEMPS, SAMPLE_OPS = 3000, (0.7, 1.0), (1, 7)
SAMPLES_PER_TEMP = 4
# The verifier and the PRM are class-conditional LMs read by Bayes' rule; GeDi's mix of the LM
# loss and the classifier loss (0 = two plain LMs).  A one-logit head on the same data and budget
# ranked one problem's solutions at 0.66 AUROC and was blind to single slips (chapter 10); as a
# PRM it reached step AUROC 0.84 where the class-conditional PRM reaches 0.87.
VERIFIER_LAMBDA = 0.5
DESCRIPTIONS = {
    "tinyworld": "the target model p_theta, trained on the whole TinyWorld corpus",
    "tinyworld-draft": "a much cheaper model on the same tokenizer and corpus (speculative "
                       "decoding's draft, contrastive decoding's amateur)",
    "tinyworld-positive": "expert for positive reviews (DExperts / proxy tuning), fine-tuned "
                          "from the draft on positive reviews only",
    "tinyworld-negative": "anti-expert: fine-tuned from the draft on negative reviews only",
    "tinyworld-classifier": "prefix attribute classifier p(positive | y_<=t) for FUDGE-style "
                            "guidance, fine-tuned from the draft",
    "tinyworld-verifier": "outcome reward model: probability that a complete arithmetic solution "
                          "is correct, by Bayes' rule from a class-conditional LM (the target "
                          "fine-tuned on its own samples, each after a code for right or wrong)",
    "tinyworld-prm": "process reward model: probability that every step so far is correct, by "
                     "Bayes' rule from a class-conditional LM trained on the target's step "
                     "prefixes (read at the newline ending each step)",
}


def models_dir() -> Path:
    return data_dir() / "models"


def run_dir(name) -> Path:
    return Path("runs/zoo") / name


def review_docs(label: int, seed: int):
    """``i -> review document`` whose exact sentiment is ``label``."""
    g = review_grammar()

    def doc(i):
        rng = random.Random(seed * 1_000_003 + i)
        while True:
            text = g.sample(rng)
            if sentiment(text) == label:
                return g.prompt + text
    return doc


def train_language_models(tokenizer, names=("tinyworld", "tinyworld-draft")):
    info = {}
    for name in names:
        if (models_dir() / name / "config.json").exists():
            continue
        spec = TARGET if name == "tinyworld" else DRAFT
        t0 = time.time()
        model, info[name] = train_lm(spec, PLAN[name], tokenizer,
                                     lambda i: document(PLAN[name].seed, i), run_dir(name),
                                     desc=name)
        info[name]["wall_seconds"] = round(time.time() - t0, 1)
        save_model(model, tokenizer, models_dir() / name, "", _info(name, info[name], spec))
    return info


def train_experts(tokenizer):
    for name, label in (("tinyworld-positive", 1), ("tinyworld-negative", -1)):
        if (models_dir() / name / "config.json").exists():
            continue
        model, info = train_lm(None, PLAN[name], tokenizer, review_docs(label, PLAN[name].seed),
                               run_dir(name), init_from=models_dir() / "tinyworld-draft",
                               desc=name)
        save_model(model, tokenizer, models_dir() / name, "", _info(name, info, DRAFT))


def classifier_examples(tokenizer, n=12_000, seed=21):
    """Reviews from p*, labelled at every position after the prompt with the final sentiment."""
    g, rng, out = review_grammar(), random.Random(seed), []
    n_prompt = len(tokenizer(g.prompt)["input_ids"])
    for _ in range(n):
        text = g.sample(rng)
        ids = tokenizer(g.prompt + text)["input_ids"]
        y = 1.0 if sentiment(text) == 1 else 0.0
        out.append((ids, {p: y for p in range(n_prompt - 1, len(ids))}))
    return out


def train_classifier(tokenizer):
    name = "tinyworld-classifier"
    if (models_dir() / name / "config.json").exists():
        return
    model, info = train_scorer(PLAN[name], classifier_examples(tokenizer),
                               models_dir() / "tinyworld-draft", run_dir(name),
                               tokenizer.pad_token_id, desc=name)
    save_model(model, tokenizer, models_dir() / name, "", _info(name, info, DRAFT))


def sample_solutions(path: Path, seed=31):
    """The target's own solutions to training problems (the verifier's and PRM's data)."""
    if path.exists():
        return [json.loads(line) for line in open(path)]
    from ..loading import load
    from .corpus import heldout_expressions
    from .evaluate import solve
    lm = load("tinyworld", device="cpu")
    rng, probs, seen = random.Random(seed), [], set(heldout_expressions())
    while len(probs) < SAMPLE_PROBLEMS:
        p = ar.sample_problem(rng, rng.randint(*SAMPLE_OPS), rng.randint(1, 3))
        if p.expression not in seen:
            seen.add(p.expression)
            probs.append(p)
    rows = []
    for k, temp in enumerate(SAMPLE_TEMPS):
        texts = solve(lm, [p.prompt() for p in probs], n=SAMPLES_PER_TEMP, temperature=temp,
                      seed=seed + k, desc=f"target samples T={temp}")
        for p, ss in zip(probs, texts):
            rows += [{"expression": p.expression, "prompt": p.prompt(), "text": s,
                      "temperature": temp} for s in ss]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows


def process_examples(tokenizer, rows):
    """The PRM's examples: ``(prompt + solution up to the newline ending step k, without BOS,
    every step up to k right)``, one per step, for a class-conditional LM
    (`train.train_class_conditional`)."""
    from .evaluate import step_positions
    out = []
    for r in rows:
        ids, nl = step_positions(tokenizer, r["prompt"], r["text"])
        chk = ar.check_steps(ar.Problem(r["expression"]), r["text"])
        out += [(ids[1:pos + 1], int(ok)) for pos, ok in zip(nl, chk.correct)]
    return out


def outcome_examples(tokenizer, rows):
    """The verifier's examples: ``(prompt + solution + EOS without BOS, final answer right)``
    for a class-conditional LM (`train.train_class_conditional`)."""
    return [(tokenizer(r["prompt"] + r["text"])["input_ids"][1:] + [tokenizer.eos_token_id],
             int(ar.check_answer(ar.Problem(r["expression"]), r["text"]))) for r in rows]


def train_verifiers(tokenizer, names=("tinyworld-verifier", "tinyworld-prm")):
    rows = None
    for name in ("tinyworld-verifier", "tinyworld-prm"):
        if name not in names or (models_dir() / name / "config.json").exists():
            continue
        rows = rows or sample_solutions(run_dir("samples") / "solutions.jsonl")
        examples = (outcome_examples if name == "tinyworld-verifier" else process_examples)(
            tokenizer, rows)
        model, info, scorer = train_class_conditional(
            PLAN[name], examples, models_dir() / "tinyworld", run_dir(name), tokenizer,
            lam=VERIFIER_LAMBDA, desc=name)
        info["training_solutions"], info["training_examples"] = len(rows), len(examples)
        save_model(model, tokenizer, models_dir() / name, "", _info(name, info, TARGET))
        (models_dir() / name / "scorer.json").write_text(json.dumps(scorer, indent=1))


def _info(name, info, spec):
    return {"name": name, "description": DESCRIPTIONS[name], "architecture": spec_dict(spec),
            "train": {k: v for k, v in vars(PLAN[name]).items()},
            "train_seconds": info.get("train_seconds"), "loss_log": info.get("log"),
            "mixture": MIXTURE if name in ("tinyworld", "tinyworld-draft") else None,
            **{k: v for k, v in info.items() if k not in ("log", "train_seconds", "steps")}}


def spec_dict(spec):
    return dict(vars(spec)) if spec is not None else None


def parameters(path: Path) -> int:
    """Number of parameters stored in a model directory's safetensors file."""
    import math

    from safetensors import safe_open
    with safe_open(path / "model.safetensors", "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
