"""Views of TinyWorld: the model's next-token distribution beside the exact p*, and the zoo."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go

from workbench.trace import as_events

from .style import BAD, GOOD, NEUTRAL, figure


def next_token_comparison(lm, text: str, grammar, top: int = 12) -> dict:
    """p_theta(. | text) and the exact p*(. | text) for a prefix of a TinyWorld grammar.

    Returns the union of both distributions' top tokens, with both probabilities, and the
    KL(p* || p_theta) of the whole next-token distribution.
    """
    from workbench.tinyworld.grammar import TokenGrammar
    ids = lm.encode(text)
    pstar = TokenGrammar(grammar, lm.tokenizer).next_token_distribution(ids)
    p = lm.next_logprobs([ids])[0].exp().numpy()
    toks = sorted(set(sorted(pstar, key=pstar.get, reverse=True)[:top])
                  | set(np.argsort(-p)[:top].tolist()), key=lambda t: -max(p[t], pstar.get(t, 0)))
    kl = sum(q * (np.log(q) - np.log(max(p[t], 1e-30))) for t, q in pstar.items())
    return {"tokens": [lm.tokenizer.decode([t]) if t != lm.eos_token_id else "</s>" for t in toks],
            "ids": toks, "p_model": [float(p[t]) for t in toks],
            "p_star": [float(pstar.get(t, 0.0)) for t in toks], "kl": float(kl), "text": text}


def next_token_figure(data: dict) -> go.Figure:
    """Grouped bars: the true p* and the model's p_theta for each candidate next token."""
    labels = [repr(t)[1:-1] for t in data["tokens"]]
    fig = figure(f"Next token after {data['text']!r}  (KL(p*||p_theta) = {data['kl']:.3f} nats)",
                 height=340, barmode="group", yaxis_title="probability")
    fig.add_bar(x=labels, y=data["p_star"], name="p* (true)", marker_color=NEUTRAL)
    fig.add_bar(x=labels, y=data["p_model"], name="p_theta (model)", marker_color=BAD)
    return fig


def zoo_rows(models_dir=None) -> list:
    """One row per embedded model: name, parameters, size, load time, headline metrics."""
    from workbench.paths import data_dir
    root = models_dir or data_dir() / "models"
    rows = []
    for d in sorted(p for p in root.iterdir() if (p / "metrics.json").exists()):
        m = json.loads((d / "metrics.json").read_text())
        rows.append({"model": d.name, "parameters (M)": round(m["parameters"] / 1e6, 2),
                     "MB": round(m["bytes"] / 1e6, 1), "load (s)": round(m["load_seconds"], 2),
                     "headline": _headline(d.name, m)})
    return rows


def _headline(name, m):
    if name == "tinyworld":
        a = m["arithmetic"]
        return (f"arithmetic greedy {a['greedy']:.0%}, pass@16 {a['best_pass@16']:.0%}, "
                f"maj@16 {a['best_maj@16']:.0%}, best-of-16 {a['best_bon@16']:.0%} "
                f"(x p_theta {a['best_bon_joint@16']:.0%}); "
                f"KL(p*||p) {m['grammar_kl_story']:.3f}")
    if name == "tinyworld-draft":
        return (f"agrees with target {m['greedy_agreement_with_target']:.0%}; "
                f"{m['target_over_draft_decode_time']:.1f}x faster per token")
    if name == "tinyworld-corrector":
        return (f"fixes {m['fixed_of_wrong']:.0%} of wrong samples (resampling "
                f"{m['resample_fixes_wrong']:.0%}), keeps {m['kept_of_correct']:.0%} of right ones")
    if name == "tinyworld-medusa":
        a = m["acceptance"]
        return (f"{len(m['heads']['top1'])} Medusa heads for the target: head 1 top-1 "
                f"{m['head1_top1']:.0%}; {a['mean']:.2f} tokens per target pass")
    if "within_problem_auroc_heldout_T1" in m:
        slips = m["slip_test_heldout"]
        return (f"AUROC {m['auroc_heldout_T1']:.3f} pooled, "
                f"{m['within_problem_auroc_heldout_T1']:.3f} within a problem; "
                f"vs one slip {min(slips.values()):.2f}-{max(slips.values()):.2f}")
    if "attribute_rate" in m:
        return f"attribute rate {m['attribute_rate']:.0%}"
    for k in ("auroc_heldout_T1", "step_auroc_heldout_T1", "auroc_full_review", "accuracy"):
        if k in m:
            return f"{k.replace('_', ' ')} {m[k]:.3f}"
    return ""


def zoo_table(rows=None) -> str:
    """The zoo as a plain-text table (stable under notebook regression tests)."""
    rows = rows if rows is not None else zoo_rows()
    cols = list(rows[0]) if rows else []
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in cols]
    line = lambda vals: "  ".join(str(v).ljust(w) for v, w in zip(vals, widths))
    return "\n".join([line(cols), line("-" * w for w in widths)] +
                     [line(r[c] for c in cols) for r in rows])



def trace_steps_figure(events: list, tokenizer, row: int = 0) -> go.Figure:
    """From a trace's ``step`` events: the probability of each chosen token (bars) and of the
    step's most likely token (markers) - where the sampler took a less likely path."""
    steps = [e for e in as_events(events) if e["kind"] == "step" and e.get("row", 0) == row]
    toks = [repr(tokenizer.decode([e["token"]]))[1:-1] for e in steps]
    chosen = [float(np.exp(e["logprob"])) for e in steps]
    best = [float(np.exp(e["top"][0][1])) for e in steps]
    x = [f"{i}:{t}" for i, t in enumerate(toks)]
    fig = figure("What the trace recorded at each step", height=320,
                 yaxis_title="probability", xaxis_title="step: chosen token")
    fig.add_bar(x=x, y=chosen, name="chosen token", marker_color=GOOD)
    fig.add_scatter(x=x, y=best, mode="markers", name="most likely token",
                    marker=dict(color=BAD, symbol="line-ew-open", size=14, line_width=2))
    return fig
