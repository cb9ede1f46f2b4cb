"""Evaluate the zoo and write each model's ``metrics.json`` and model card (``README.md``)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from ..paths import data_dir
from . import evaluate as ev
from .corpus import document
from .tasks import arithmetic_tasks
from .worlds import review_grammar, sentiment, story_grammar

TEMPERATURES = (0.7, 1.0)
BY_TEMPERATURE = ("pass", "maj", "bon", "bon_joint", "sample_acc")
ARITHMETIC_KEY = (
    "Arithmetic: the 312 held-out problems (`data/tasks/arithmetic.jsonl`), 16 samples each "
    "(seed 0) at each temperature. `pass`: pass@16; `maj`: majority vote; `bon`: best-of-16 by "
    "the verifier's probability (eq. 28); `bon_joint`: best-of-16 by p_theta(y | x) x the "
    "verifier's probability, the mode of eq. 17's q* among the samples "
    "(`scoring.JointScorer`); `best_*`: the best temperature's.\n")
TARGETS = {  # the acceptance thresholds, checked again by tests/test_zoo.py
    "greedy accuracy in [0.35, 0.75]": lambda m: 0.35 <= m["arithmetic"]["greedy"] <= 0.75,
    "pass@16 >= 0.90 at some T <= 1": lambda m: m["arithmetic"]["best_pass@16"] >= 0.90,
    "maj@16 >= greedy + 0.05": lambda m: m["arithmetic"]["best_maj@16"]
    >= m["arithmetic"]["greedy"] + 0.05,
    # best-of-16 at the mode of q* ∝ p_theta(y|x) v(x,y) (eq. 17, `scoring.JointScorer`); the
    # verifier's argmax alone (eq. 28, "best_bon@16") is recorded beside it
    "best-of-16 (verifier x p_theta) >= greedy + 0.10": lambda m: m["arithmetic"][
        "best_bon_joint@16"] >= m["arithmetic"]["greedy"] + 0.10,
    "KL(p*||p_theta) < 0.15 nats/token": lambda m: m["grammar_kl_story"] < 0.15,
}


def _write(name, metrics, extra_md=""):
    d = data_dir() / "models" / name
    (d / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    info = json.loads((d / "training.json").read_text())
    (d / "README.md").write_text(card(name, info, metrics, extra_md))


def card(name, info, metrics, extra_md="") -> str:
    arch = info.get("architecture") or {}
    train = info.get("train") or {}
    lines = [f"# {name}", "", f"TinyWorld model: {info['description']}.", "",
             "## Architecture", "",
             f"`transformers` Llama ({_head(name)}): "
             f"hidden size {arch.get('hidden_size')}, {arch.get('num_hidden_layers')} layers, "
             f"{arch.get('num_attention_heads')} heads, MLP {arch.get('intermediate_size')}, "
             f"tied embeddings, RoPE, context {arch.get('max_position_embeddings')}; "
             f"{metrics.get('parameters', 0) / 1e6:.2f}M parameters, stored in float16 "
             f"safetensors ({metrics.get('bytes', 0) / 1e6:.1f} MB).", "",
             "## Training", "",
             f"{train.get('steps')} steps, batch {train.get('batch_size')} documents, AdamW "
             f"(lr {train.get('lr')}, warm-up {train.get('warmup')}, cosine to 10%, weight decay "
             f"0.1), seed {train.get('seed')}, on a 2-core CPU in "
             f"{(info.get('train_seconds') or 0) / 60:.1f} minutes "
             "(`scripts/train_zoo.py`).", ""]
    if info.get("mixture"):
        lines += ["Data: the TinyWorld corpus (`workbench/tinyworld/corpus.py`), documents mixed "
                  "as " + ", ".join(f"{k} {v:.0%}" for k, v in info["mixture"].items()) + ".", ""]
    if info.get("training_solutions"):
        lines += [f"Data: {info['training_solutions']} of the target's own solutions to training "
                  "problems of 1-7 operations (temperatures 0.7 and 1.0), labelled by the exact "
                  "checkers."]
        if info.get("training_examples", info["training_solutions"]) != info["training_solutions"]:
            lines[-1] += (f"  Cut at the newline ending each step into {info['training_examples']}"
                          " prefixes, each labelled right when every step so far is right.")
        lines += [""]
    scorer = data_dir() / "models" / name / "scorer.json"
    if scorer.exists():
        spec = json.loads(scorer.read_text())
        lines += ["How it scores: each training text is read after a class code "
                  f"(`{spec['codes']['right']}` right, `{spec['codes']['wrong']}` wrong), so the "
                  "LM models p(y | right) and p(y | wrong); then logit P(right | x, y) = log "
                  "pi/(1-pi) + sum_t [log p(y_t | right, y_<t) - log p(y_t | wrong, y_<t)], with "
                  f"prior log-odds log pi/(1-pi) = {spec['prior_log_odds']:.3f} (two forward "
                  "passes per text).  Objective (GeDi, Krause et al. 2021): (1 - lam) x LM "
                  "loss under the text's own code + lam x the cross-entropy of that "
                  f"classifier, lam = {spec['lam']}.", ""]
    lines += ["## Metrics", "", "Measured by `scripts/train_zoo.py --evaluate` "
              "(`workbench/tinyworld/cards.py`) from these weights:", "", "| metric | value |",
              "|---|---|"]
    for k, v in _flat(metrics):
        lines.append(f"| {k} | {v} |")
    return "\n".join(lines + ["", extra_md]) + "\n"


def _head(name) -> str:
    if (data_dir() / "models" / name / "scorer.json").exists():
        return ("LlamaForCausalLM, a class-conditional LM read as a classifier by Bayes' rule; "
                "class codes and prior odds in `scorer.json`, loaded as `scoring.BayesScorer`")
    if any(k in name for k in ("verifier", "prm", "classifier")):
        return "LlamaForTokenClassification, one logit per position"
    return "LlamaForCausalLM"


def _flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        elif k.endswith("_bits"):
            continue
        else:
            yield f"{prefix}{k}", (round(v, 4) if isinstance(v, float) else v)


def _size(name):
    d = data_dir() / "models" / name
    from .zoo import parameters
    return {"parameters": parameters(d), "bytes": (d / "model.safetensors").stat().st_size,
            "load_seconds": round(min(ev.load_seconds(name) for _ in range(3)), 3)}


def _arithmetic(target, verifier, tasks):
    """The target's held-out arithmetic at each temperature (greedy, pass/maj/best-of-16 by the
    verifier), and its samples by temperature."""
    arith, samples_by_t = {}, {}
    for t in TEMPERATURES:
        summary, _, samples = ev.arithmetic_report(target, tasks, temperature=t, n=16, seed=0,
                                                   verifier=verifier)
        arith[f"T={t}"] = summary
        samples_by_t[t] = samples
    last = arith[f"T={TEMPERATURES[-1]}"]
    return {"greedy": last["greedy"], **{f"best_{k}@16": max(a[k] for a in arith.values())
                                         for k in ("pass", "maj", "bon", "bon_joint")},
            "by_temperature": {k: {**{x: round(v[x], 4) for x in BY_TEMPERATURE},
                                   **{f"{x}_bits": v[f"{x}_bits"] for x in ("bon", "bon_joint")}}
                               for k, v in arith.items()},
            "greedy_by_cell": {c: v["greedy"] for c, v in last["by_cell"].items()},
            "greedy_correct_bits": last["greedy_bits"]}, samples_by_t


def _write_verifiers(verifier, prm, tasks, samples_t1):
    rep = ev.verifier_report(verifier, prm, tasks, samples_t1)
    _write("tinyworld-verifier", {**_size("tinyworld-verifier"),
                                  "auroc_heldout_T1": rep["verifier_auroc"],
                                  "within_problem_auroc_heldout_T1":
                                      rep["verifier_within_problem_auroc"],
                                  "slip_test_heldout": ev.slip_test(verifier, tasks),
                                  "solutions": rep["solutions"],
                                  "correct_fraction": rep["correct_fraction"]})
    _write("tinyworld-prm", {**_size("tinyworld-prm"), "step_auroc_heldout_T1":
                             rep["prm_step_auroc"], "steps": rep["steps"]})


def evaluate_verifiers():
    """Re-evaluate only what the verifier and PRM change (after retraining them): the target's
    best-of-16 and the scorers' AUROCs; the target's other metrics (timings included) are kept."""
    from ..loading import load
    target = load("tinyworld", device="cpu")
    verifier, prm = load("tinyworld-verifier", device="cpu"), load("tinyworld-prm", device="cpu")
    tasks = arithmetic_tasks()
    m_target = json.loads((data_dir() / "models" / "tinyworld" / "metrics.json").read_text())
    m_target["arithmetic"], samples_by_t = _arithmetic(target, verifier, tasks)
    m_target["targets_met"] = {k: bool(f(m_target)) for k, f in TARGETS.items()}
    _write("tinyworld", m_target, ARITHMETIC_KEY)
    _write_verifiers(verifier, prm, tasks, samples_by_t[1.0])
    write_index()


def evaluate_zoo():
    from ..loading import load
    target, draft = load("tinyworld", device="cpu"), load("tinyworld-draft", device="cpu")
    verifier, prm = load("tinyworld-verifier", device="cpu"), load("tinyworld-prm", device="cpu")
    tasks = arithmetic_tasks()
    arith, samples_by_t = _arithmetic(target, verifier, tasks)
    m_target = {
        **_size("tinyworld"),
        "arithmetic": arith,
        "grammar_kl_story": ev.grammar_kl(target, story_grammar(), 300),
        "grammar_kl_review": ev.grammar_kl(target, review_grammar(), 300),
        "json_valid_fraction_T1": ev.json_validity(target, 400),
        "decode_ms_per_token": ev.decode_ms_per_token(target),
    }
    m_target["targets_met"] = {k: bool(f(m_target)) for k, f in TARGETS.items()}
    _write("tinyworld", m_target, ARITHMETIC_KEY)

    docs = [document(777, i) for i in range(300)]
    m_draft = {**_size("tinyworld-draft"),
               "greedy_agreement_with_target": ev.next_token_agreement(target, draft, docs),
               "decode_ms_per_token": ev.decode_ms_per_token(draft),
               "grammar_kl_story": ev.grammar_kl(draft, story_grammar(), 200)}
    m_draft["target_over_draft_decode_time"] = m_target["decode_ms_per_token"] / \
        m_draft["decode_ms_per_token"]
    _write("tinyworld-draft", m_draft)

    for name, label in (("tinyworld-positive", 1), ("tinyworld-negative", -1)):
        _write(name, {**_size(name), **ev.attribute_rate(load(name, device="cpu"), label, 400)})

    clf = load("tinyworld-classifier", device="cpu")
    g, rng = review_grammar(), random.Random(99)
    texts = [g.sample(rng) for _ in range(600)]
    labels = [sentiment(t) == 1 for t in texts]
    probs = clf.position_probs([g.prompt + t for t in texts])
    n_prompt = len(clf.tokenizer(g.prompt)["input_ids"])
    mid = [p[min(len(p) - 1, n_prompt + 3)] for p in probs]
    _write("tinyworld-classifier", {
        **_size("tinyworld-classifier"), "auroc_full_review": ev.auroc([p[-1] for p in probs],
                                                                      labels),
        "accuracy_full_review": float(np.mean([(p[-1] > 0.5) == y for p, y in zip(probs, labels)])),
        "auroc_after_4_tokens": ev.auroc(mid, labels)})

    _write_verifiers(verifier, prm, tasks, samples_by_t[1.0])
    write_index()


def write_index():
    """``data/models/README.md``: one line per model with its headline metrics."""
    root = data_dir() / "models"
    rows = ["# The TinyWorld zoo", "", "| model | parameters | MB | load s | headline |",
            "|---|---|---|---|---|"]
    for d in sorted(p for p in root.iterdir() if (p / "metrics.json").exists()):
        m = json.loads((d / "metrics.json").read_text())
        head = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items()
                if not isinstance(v, dict) and k not in ("parameters", "bytes", "load_seconds")}
        rows.append(f"| [{d.name}]({d.name}/README.md) | {m['parameters'] / 1e6:.2f}M | "
                    f"{m['bytes'] / 1e6:.1f} | {m.get('load_seconds', '')} | {head} |")
    (root / "README.md").write_text("\n".join(rows) + "\n")
    return Path(root / "README.md")
