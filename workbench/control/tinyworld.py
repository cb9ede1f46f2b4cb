"""Controlled generation in TinyWorld: the models' roles and the attribute/fluency trade-off."""
from __future__ import annotations

import math

from ..budget import Cost
from .generators import (contrastive, dexperts, fudge, product_of_experts, proxy_tuning,
                         reward_augmented)
from .rules import _label


# -- TinyWorld set-up ------------------------------------------------------------------------
MODEL_NAMES = {"target": "tinyworld", "draft": "tinyworld-draft",
               "positive": "tinyworld-positive", "negative": "tinyworld-negative",
               "classifier": "tinyworld-classifier"}
METHODS = ("fudge", "reward_augmented", "dexperts", "proxy_tuning", "product_of_experts",
           "contrastive")
ROLES = {"fudge": ("classifier",), "reward_augmented": ("classifier",),
         "dexperts": ("positive", "negative"), "proxy_tuning": ("positive", "negative", "draft"),
         "product_of_experts": ("positive", "negative"), "contrastive": ("draft",)}
STRENGTH_NAME = {"fudge": "beta", "reward_augmented": "beta", "dexperts": "alpha",
                 "proxy_tuning": "alpha", "product_of_experts": "alpha", "contrastive": "beta"}


def load_models(device=None) -> dict:
    """TinyWorld's controlled-generation models by role (see `MODEL_NAMES`)."""
    from ..loading import load
    return {role: load(name, device=device) for role, name in MODEL_NAMES.items()}


def steer(method: str, models: dict, prompt, strength: float, label: int = 1, k: int = 20,
          **kw):
    """Run ``method`` at ``strength`` towards sentiment ``label`` with TinyWorld's roles:
    fudge and reward_augmented use the classifier (RAD's reward is p(positive), beta signed by
    the label); dexperts the positive and negative experts; proxy_tuning the label's expert
    against the untuned draft; product_of_experts the label's expert; contrastive the draft as
    amateur (alpha = 0.1, strength = beta; it does not steer the attribute).
    """
    sign = _label(label)
    if method not in ROLES:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    missing = [r for r in ("target",) + ROLES[method] if r not in models]
    if missing:
        raise ValueError(f"{method} needs models for the roles {missing} (see MODEL_NAMES)")
    t = models["target"]
    pos, neg = (models.get("positive"), models.get("negative"))[::sign]
    if method == "fudge":
        return fudge(t, models["classifier"], prompt, beta=strength, k=k, label=sign, **kw)
    if method == "reward_augmented":
        return reward_augmented(t, models["classifier"], prompt, beta=sign * strength, k=k, **kw)
    if method == "dexperts":
        return dexperts(t, pos, neg, prompt, alpha=strength, **kw)
    if method == "proxy_tuning":
        return proxy_tuning(t, pos, models["draft"], prompt, alpha=strength, **kw)
    if method == "product_of_experts":
        return product_of_experts(t, pos, prompt, alpha=strength, **kw)
    return contrastive(t, models["draft"], prompt, alpha=0.1, beta=strength, **kw)


# -- the attribute / fluency trade-off -------------------------------------------------------
STRENGTHS = {"fudge": (0, 1, 2, 4, 8), "reward_augmented": (0, 2, 5, 10, 20),
             "dexperts": (0, 0.5, 1, 2, 4), "proxy_tuning": (0, 0.5, 1, 2, 4),
             "product_of_experts": (0, 0.5, 1, 2, 4), "contrastive": (0, 0.5, 1, 2)}
MAX_NEW_TOKENS = 48


def review_of(prompt: str, text: str) -> str:
    """The review the grammar and the oracle judge: prompt + text without ``Review:``."""
    from ..tinyworld.worlds import review_grammar
    head = review_grammar().prompt
    full = prompt + text
    if not full.startswith(head):
        raise ValueError(f"prompt must start with {head!r}, got {prompt!r}")
    return full[len(head):]


def measure(generations, labels) -> dict:
    """Attribute rate (the exact oracle agrees with the label; ungrammatical text fails) and
    fluency: the fraction of grammatical outputs, their mean true log p*, and the target's mean
    log p_theta(y | x) over all outputs and over the ungrammatical ones.  Diversity: the fraction
    of distinct outputs (prompt included) in ``distinct``.  Costs: forward passes
    of all models per pass of the target, positions computed and external tokens per generated
    token (EOS included in ``tokens``)."""
    from ..tinyworld.worlds import review_grammar, sentiment
    g = review_grammar()
    rows = []
    for gen, label in zip(generations, labels):
        review = review_of(gen.prompt, gen.text)
        rows.append((sentiment(review), g.log_p_star(review), gen.logprob, label))
    gram = [r for r in rows if r[0] is not None]
    bad = [r for r in rows if r[0] is None]
    cost = sum((x.cost for x in generations), Cost())
    steps = sum(len(x.token_ids) + (x.finish_reason == "eos") for x in generations)
    mean = lambda xs: float(sum(xs) / len(xs)) if xs else None  # noqa: E731
    return {"n": len(rows), "attribute_rate": mean([float(r[0] == r[3]) for r in rows]),
            "grammatical": len(gram) / len(rows), "logp_star": mean([r[1] for r in gram]),
            "distinct": len({g.prompt + g.text for g in generations}) / len(rows),
            "logp_target": mean([r[2] for r in rows]),
            "logp_target_ungrammatical": mean([r[2] for r in bad]),
            "tokens": steps / len(rows), "passes_per_step": _passes_per_step(generations),
            "computed_per_token": cost.computed_tokens / steps,
            "external_per_token": cost.external_tokens / steps}


def sample_records(generations, labels) -> list:
    """``{prompt, text, target, label, logp_star}`` per generation: ``label`` is the oracle's
    (+1, -1, or None when ungrammatical), ``target`` the label steered to."""
    from ..tinyworld.worlds import review_grammar, sentiment
    out = []
    for gen, label in zip(generations, labels):
        review = review_of(gen.prompt, gen.text)
        lp = review_grammar().log_p_star(review)
        out.append({"prompt": gen.prompt, "text": gen.text, "target": label,
                    "label": sentiment(review), "logp_star": lp if lp > -math.inf else None})
    return out


def load_tradeoff(path=None) -> dict:
    """The stored sweep (``data/results/control_tradeoff.json``, from scripts/sweep_control.py)."""
    import json

    from ..paths import data_dir
    return json.loads(open(path or data_dir() / "results" / "control_tradeoff.json").read())


def attribute_tasks(path=None) -> list:
    """The attribute task set (``data/tasks/attribute.jsonl``): prompt and sentiment label."""
    import json

    from ..paths import data_dir
    path = path or data_dir() / "tasks" / "attribute.jsonl"
    return [json.loads(line) for line in open(path) if line.strip()]


def run_point(models, method, strength, part="review", n=64, seed=0, tasks=None,
              max_new_tokens=MAX_NEW_TOKENS, k=20, keep=8) -> dict:
    """One point of the sweep: ``part="review"`` samples ``n`` continuations of ``Review:``
    steered positive; ``part="tasks"`` one continuation per attribute task, steered to its label
    (a batch per label).  Returns the `measure` metrics and the first ``keep`` samples."""
    kw = dict(seed=seed, max_new_tokens=max_new_tokens, k=k)
    if part == "review":
        gens = steer(method, models, "Review:", strength, 1, n=n, **kw)
        labels = [1] * len(gens)
    elif part == "tasks":
        gens, labels = [], []
        for label in (1, -1):
            prompts = [t["prompt"] for t in (tasks or attribute_tasks()) if t["label"] == label]
            gens += steer(method, models, prompts, strength, label, **kw)
            labels += [label] * len(prompts)
    else:
        raise ValueError(f'part must be "review" or "tasks", got {part!r}')
    pick = [i for lab in (1, -1) for i in [j for j, x in enumerate(labels) if x == lab]
            [:keep if part == "review" else keep // 2]]
    return {"method": method, "strength": strength, "part": part, **measure(gens, labels),
            "samples": sample_records([gens[i] for i in pick], [labels[i] for i in pick])}


def sweep(models, strengths=None, n=64, seed=0, parts=("review", "tasks"), progress=None,
          **kw) -> list:
    """`run_point` for every method and strength (the same seeds throughout, so each curve's
    points share their random numbers)."""
    strengths = strengths or STRENGTHS
    jobs = [(m, s, p) for p in parts for m, ss in strengths.items() for s in ss]
    out = []
    for m, s, p in (progress(jobs) if progress else jobs):
        out.append(run_point(models, m, s, p, n=n, seed=seed + (p == "tasks"), **kw))
    return out


def _passes_per_step(generations) -> float:
    """All models' forward passes per pass of the target (its role comes first), per batch."""
    batches = {id(g.info["costs"]): g.info["costs"] for g in generations}.values()
    return sum(sum(c.forward_passes for c in b.values()) / next(iter(b.values())).forward_passes
               for b in batches) / len(batches)
