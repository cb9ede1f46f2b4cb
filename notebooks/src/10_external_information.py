# %% [markdown]
# # 10 · External information: verifiers, reward models, tools, environments
#
# {badges}
#
# **What you will learn**
# - what makes information *external*: a generator g(y | x; p_θ, φ) whose φ holds other
#   models, tools or an environment can know things p_θ does not (survey §5);
# - **scalar feedback models** (§5.1): an outcome verifier v_ψ(x, y) ∈ [0, 1] and a
#   **process reward model** that scores every step, used as the selector of best-of-N
#   (eq. 28) and weighted voting (eq. 34);
# - how far a **learned** judge is from a **perfect** one: best-of-N under each judge against
#   the exact check, q\*(y | x) of eqs. 50–51;
# - how a verifier built from a class-conditional LM reads a solution by **Bayes' rule**, each
#   token voting for "right" or "wrong";
# - why a judge with a good-looking AUROC can still pick badly: pooled vs **within-problem**
#   ranking, and a **slip test** that asks whether it checks the steps at all;
# - why best-of-N should pick the mode of **p_θ · v** (eq. 17's target) rather than the
#   verifier's argmax, and how that stops reward over-optimisation;
# - **tools** (§5.2): a calculator called mid-decoding that turns a weak model into a correct
#   one, and a **sandbox** whose observations (output, error) are feedback;
# - where all of this shows up in the bill: the *External* column of **Table 5**.
#
# Runs in about 45 s on a 2-core CPU (the selector sweep is precomputed by
# `scripts/sweep_external.py`; a test re-runs a slice of it).
#
# **Your own model and task.** `MODEL` takes any causal LM (a local directory or a Hub id) and
# `TASK` any task of `workbench.tasks` (`"gsm8k"`, `"math"`, or your own file, see
# `docs/real-models.md`). Off TinyWorld the verifier and the PRM are your model asked as a judge
# (`reward_models.LLMJudge(lm)`): the judges, best-of-N and Table 5's bill run on every task.
# TinyWorld's trained verifier and PRM, its exact step checker, its slip twins, its `[CALC]`
# and `Code:` formats exist only for its arithmetic; those sections say so instead of running,
# and the committed sweeps and cards they draw on are TinyWorld's.

# %%
# SETUP

# %%
MODEL = "tinyworld"   # or a local directory / HF causal-LM id
TASK = "tinyworld-arithmetic"   # or "gsm8k", "math", ... (workbench.tasks; see docs/real-models.md)
SEED = 0
PER_CELL = 2          # TinyWorld: problems per difficulty cell in the tool experiment (30 in all)

# %%
import json
import random
import numpy as np
import workbench as wb
from workbench import adapters, budget, decoding, meta, scoring
from workbench import reward_models as rm
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from workbench.tinyworld import evaluate as ev
from workbench.tinyworld import formats
from workbench.tinyworld.tasks import arithmetic_tasks
from workbench.tools import run_python
from widgets import compute, external, parallel

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # its checkers, formats, verifier and PRM
if TINYWORLD:
    draft = wb.load("tinyworld-draft")            # another, much smaller language model
    verifier = wb.load("tinyworld-verifier")      # outcome reward model v(x, y)
    prm = wb.load("tinyworld-prm")                # process reward model v(x, y_<=step)
else:   # TinyWorld's verifier and PRM know only its arithmetic: your model judges instead
    verifier = prm = rm.LLMJudge(lm)              # p(Yes) / (p(Yes) + p(No)), after each step too
for m in ((lm, draft) if TINYWORLD else (lm,)):
    print(f"{m.name:18s} {sum(p.numel() for p in m.model.parameters()) / 1e6:.2f}M parameters")
print(verifier, prm, sep="\n")

# %% [markdown]
# ## Four judges for the same candidates
#
# A meta-generator that selects among candidates needs a score v(x, y). TinyWorld offers four,
# and only three of them are available at test time (the last row combines two of them; a
# section below explains why):
#
# | judge | where its information comes from | external tokens per candidate |
# |---|---|---|
# | log p_θ(y \| x) per token | the generator itself | 0 (Table 5, "Best-of-N (log-p)") |
# | outcome verifier | a second model, trained on labelled solutions (Cobbe et al., 2021) | C_s = 2(T_in + T + 1): two passes |
# | process reward model | a second model, trained on step labels (Uesato et al., 2022) | C_s = 2(T_in + T + 1): two passes |
# | exact check | the answer key: q\*(y \| x) of eq. 50 | not available at test time |
# | verifier × p_θ(y \| x) | the verifier and the generator: the mode of eq. 17's q\* | the verifier's |
#
# Each is a `workbench.scoring` scorer, `scorer(prompt, outputs) -> (scores, cost)`. Off
# TinyWorld the verifier and PRM rows are your model as a judge (`rm.LLMJudge`): the same
# prompt and reply, then "Is this solution correct? Answer Yes or No." (for the PRM: "Are the
# steps so far correct?", asked after every step); its C_s is the tokens of that judge prompt.
# The exact check is the task's answer key (`scoring.oracle(task)`).

# %%
problem = task.problem("38*3-45+17") if TINYWORLD else task.problems[0]
prompt = fmt.prompt(problem)
sampler = meta.LMGenerator(lm, stop=fmt.stop, adapters=[lambda s: adapters.temperature(s, 0.8)],
                           max_new_tokens=160)
judges = {"log p per token": scoring.LogProbScorer(per_token=True),
          "verifier": scoring.VerifierScorer(verifier),
          "PRM (min)": scoring.ProcessScorer(prm, reduce="min"),
          "exact check": scoring.oracle(task),
          "verifier x p_theta": scoring.JointScorer(verifier)}
picks = {name: meta.best_of_n(prompt, sampler, j, n=12, seed=SEED) for name, j in judges.items()}
flags = [fmt.check(problem, c.text) for c in picks["verifier"].candidates]
print(f"{sum(flags)} of 12 samples are right (answer {problem.reference})")
for name, r in picks.items():
    print(f"{name:16s} picks {r.chosen:2d} -> {fmt.answer(r.text)}"
          f"   external tokens {r.cost.external_tokens}")

# %% [markdown]
# The same seed gives every judge the same 12 samples; only the choice differs. Move N and
# switch judges: the outlined bar is the pick, green bars are right answers.

# %%
explorer = external.SelectorExplorer(sampler, prompt, judges,
                                     check=lambda t: fmt.check(problem, t), seed=SEED,
                                     n=12)
explorer

# %% [markdown]
# ## Outcome vs process: what each model reads
#
# The verifier gives one number for the whole solution. The process reward model (PRM) gives
# one number per step, P(every step so far is right), read at the newline that ends the step;
# `ProcessScorer` reduces them (here with the minimum). The PRM is built like the verifier
# (the next sections show how): the target fine-tuned as a class-conditional LM, here on the
# 97,244 step prefixes of the same 24,000 solutions, each labelled right when every step so
# far is right. It ranks held-out steps at AUROC 0.87 (its card); a one-logit head trained
# on the same prefixes reached 0.84. Take a wrong sample and compare the PRM's step scores
# with the exact step checker (TinyWorld's arithmetic has one; on another task you see the
# judge's step scores alone):

# %%
wrong = next((c for c, ok in zip(picks["verifier"].candidates, flags) if not ok),
             picks["verifier"].candidates[0])
lines = [ln for ln in wrong.text.split("\n") if ln.strip()]
step_probs = judges["PRM (min)"].step_scores(prompt, [wrong.text])[0]
if TINYWORLD:
    check = task.step_check(problem, wrong.text)
    ok = check.correct + [fmt.check(problem, wrong.text)]
    k = min(len(lines), len(step_probs), len(ok))
    print(wrong.text, "\n\nexact checker:", check.message)
else:
    print(wrong.text, "\n\njudge after each step:", [round(v, 2) for v in step_probs],
          f"\nno exact step checker for {task.name} (only TinyWorld's arithmetic has one)")
(external.step_scores_figure(lines[:k], step_probs[:k], ok[:k],
                             verifier.score(prompt + wrong.text)) if TINYWORLD else None)

# %% [markdown]
# ## How far is a learned judge from a perfect one? (eqs. 50–51, §5.1)
#
# With the exact check, best-of-N is pass@N: it is right whenever *any* sample is right, and
# it keeps improving with N as long as the generator puts mass on correct solutions (eq. 51).
# A learned judge approximates q\*; the gap between its curve and pass@N is the price of
# learning the external signal instead of having it.
#
# The sweep (TinyWorld's target, verifier and PRM, committed by `scripts/sweep_external.py`,
# whatever `MODEL` and `TASK` are) drew 32 samples at temperature 0.8 for 52 held-out
# problems (2 to 5 operations), judged them all, and averaged each method over 200 random
# subsets of each size N.

# %%
sweep = json.loads((data_dir() / "results" / "external_selectors.json").read_text())
curves = sweep["curves"]
print(f"{sweep['meta']['problems']} problems, {sweep['meta']['pool']} samples each")
for name, c in curves.items():
    print(f"{name:40s}", " ".join(f"{a:.3f}" for a in c["accuracy"]))
parallel.scaling_figure(curves, methods=list(curves),
                        title="Best-of-N under each judge vs the exact check")

# %%
oracle = np.array(curves["pass@N (exact check)"]["accuracy"])
for name in ("best-of-N: verifier", "best-of-N: verifier x p_theta (eq. 17)",
             "best-of-N: PRM (min over steps)", "best-of-N: log p per token"):
    acc = np.array(curves[name]["accuracy"])
    print(f"{name:40s} gap to the exact check: N=1 {oracle[0] - acc[0]:.3f}, "
          f"N=32 {oracle[-1] - acc[-1]:.3f}; gain from N=1 to 32: {acc[-1] - acc[0]:+.3f}")

# %% [markdown]
# What the figure shows:
# - at N = 1 every selector is a single sample; the curves fan out as N grows;
# - the **exact check** keeps climbing (pass@N): the samples do contain right answers;
# - the **learned judges** capture only part of that headroom, and the outcome verifier's
#   best-of-N even *declines* after a few samples: the more candidates, the more wrong ones
#   the verifier happens to score highly. Selecting with the argmax of a learned score
#   exploits its errors (reward over-optimisation) — an exact signal cannot be exploited;
# - as an argmax, the verifier is the weakest selector here (0.46 at N = 32), below the
#   model's own per-token log-probability; as **weights** in a vote (eq. 34) it beats plain
#   voting (0.73 vs 0.69): the samples' agreement still counts, and the verifier only has to
#   tip the balance between answers, not to find the one right sample among 32;
# - the PRM, read at its weakest step, climbs to 0.73 without the verifier's decline;
# - the same verifier multiplied by the generator's probability p_θ(y | x) (a section below
#   explains why) is the best selector from N = 4 on and still climbing at N = 32 (0.75).
#
# ## How the verifier reads a solution: Bayes' rule, token by token
#
# This section and the next are about TinyWorld's verifier (they run when `TASK` is TinyWorld's
# arithmetic; an `LLMJudge` reads one yes/no token instead). Our verifier is not a classifier
# head on top of a network. It is the target LM fine-tuned on
# 24,000 of its own labelled solutions, each written after a class code — `+` before a right
# solution, `-` before a wrong one — so one network models both p(y | right) and
# p(y | wrong). Bayes' rule turns the two into the verifier's probability (a *generative*
# classifier, as in GeDi; `scoring.BayesScorer`):
#
# logit P(right | x, y) = log π/(1−π) + Σ_t [log p(y_t | right, y_<t) − log p(y_t | wrong, y_<t)]
#
# with π the share of right solutions in training. Every token casts a vote: positive where a
# right solution is likelier to write it, negative where a wrong one is. The verdict reuses the
# LM's own next-token prediction at every position — the part of the network that already does
# the arithmetic. To see it, take a right solution and the same solution with **one slip** in
# one step — a wrong result, a dropped term, a miscopied number (`ar.slipped_solution`) —
# carried on consistently to the end. Only a judge that checks the steps can tell them apart:

# %%
card = json.loads((data_dir() / "models" / "tinyworld-verifier" / "metrics.json").read_text())
tasks_all = arithmetic_tasks()

def twins(index, slip="result"):
    """A held-out problem's right solution and its one-slip twin (seeded)."""
    rng = random.Random(SEED)
    problem = ar.Problem(tasks_all[index]["expression"])
    right = problem.solution(rng=rng)
    return problem, {"right": right, "one slip": ar.slipped_solution(problem, rng, slip)}

rows = {}
if TINYWORLD:
    demo, pair = twins(0)
    for name, text in pair.items():
        full = demo.prompt() + text
        print(f"{name}: verifier {verifier.score(full):.3f}; exact checker: "
              f"{ar.check_steps(demo, text).message}\n{full}\n")
        tokens = [verifier.tokenizer.decode([i]) for i in verifier.encode(full)[1:]]
        rows[name] = (tokens, verifier.evidence([full])[0])
else:
    print("token-level evidence needs TinyWorld's class-conditional verifier (scoring.BayesScorer);"
          " an LLMJudge gives one p(Yes) per text")
(external.evidence_figure(rows, title="Each token's vote, log p(y_t | right) − log p(y_t | wrong)")
 if TINYWORLD else None)

# %% [markdown]
# Most votes are near zero: on most tokens the two classes agree. The problem line votes first
# (short problems with small numbers are more often solved right, so the prompt alone moves the
# odds), and then the slip casts a large negative vote exactly where it shows — the comma that
# ends `42` one digit early (about −2.6 nats) — and its consequence carried on adds more (the
# negative result `-3`, about −4.1).
#
# Evidence needs a contrast, though. A token that *neither* class expects carries none: here
# the slip is a result with an extra digit, a kind of error the target itself rarely makes, so
# its wrong solutions never taught the `-` class to expect it either:

# %%
if TINYWORLD:
    missed, pair = twins(39)
    texts = {name: missed.prompt() + text for name, text in pair.items()}
    ids = {name: verifier.encode(t) for name, t in texts.items()}
    k = next(i for i, (a, b) in enumerate(zip(ids["right"], ids["one slip"])) if a != b)
    for name, full in texts.items():
        vote = verifier.evidence([full])[0][k - 1]         # votes start after BOS
        print(f"{name}: verifier {verifier.score(full):.3f}; the first token where the two "
              f"differ, {verifier.tokenizer.decode([ids[name][k]])!r}, votes {vote:+.2f}\n{full}\n")
else:
    print("the slip twins are TinyWorld's (ar.slipped_solution), read by its verifier")

# %% [markdown]
# ## Measuring a judge the way it is used
#
# The verifier's card reports its AUROC over all held-out solutions: take a right and a wrong
# solution at random, and the right one scores higher that often. But "at random" hides a
# catch: a random right solution tends to come from an easy problem and a random wrong one
# from a hard problem, so a judge that only sees *how hard the question looks* already earns a
# high pooled AUROC. Best-of-N never compares across problems — all N candidates answer the
# same question — so what it needs is the AUROC **within one problem**, and, sharper still, the
# **slip test**: how often a right solution outscores its one-slip twin, for each kind of slip
# (0.5 = blind to it). The live test needs TinyWorld's verifier; the figure is its card:

# %%
if TINYWORLD:
    slips = ev.slip_test(verifier, tasks_all[::3], seed=SEED)   # 104 problems, live
    print("right scores above its one-slip twin (104 problems):",
          {k: round(v, 2) for k, v in slips.items()})
else:
    print("the live slip test needs TinyWorld's verifier and slip twins (workbench.tinyworld."
          "evaluate.slip_test); the card below is TinyWorld's verifier")
external.discrimination_figure({
    "any right vs any wrong (pooled AUROC)": card["auroc_heldout_T1"],
    "right vs wrong of one problem": card["within_problem_auroc_heldout_T1"],
    **{f"right vs one slip: {k}": v for k, v in card["slip_test_heldout"].items()}},
    title="The verifier on the held-out set (its card): which comparison it gets right")

# %% [markdown]
# Pooled over problems the verifier looks best; within a problem it is weaker; against a single
# slip it catches about seven in ten. The comparison that explains the design: an earlier
# verifier of this zoo was a one-logit head on the same target, trained on the same 24,000
# solutions for a similar CPU budget. It reached the same pooled AUROC (0.85) but only 0.66
# within a problem, and it was at chance on the slip test (0.50–0.55): it had learned *which
# problems the target tends to fail* — long ones, big numbers — which is exactly the part of q\*
# that best-of-N cannot use, and its best-of-16 (0.63 at T = 0.7) was below greedy decoding
# (0.705). Reading the solution through the LM's own predictions lifted the within-problem
# AUROC to 0.80 and best-of-16 to 0.75 (the target's card).
#
# It is still no exact check: majority voting over the same 16 samples reaches 0.79. Voting
# uses a signal the verifier does not have — agreement between independent samples — while
# the verifier misses the slips whose tokens neither class expects. Two lessons carry over to
# real systems: measure a judge **the way it will be used** (within a problem, against near
# misses; not pooled), and prefer an exact or executable check (the calculator below, tests
# for code) wherever one exists.
#
# ## Selecting the most probable right solution (eq. 17)
#
# Best-of-N with the verifier (eq. 28) returns the candidate the verifier is *most sure of*.
# That is not quite what §3.4 asks for. When the goal is a correct solution, the target is
# eq. 17, q\*(y | x) ∝ p_θ(y | x) · I[y is right]: the generator's own distribution, kept
# only on right solutions; eq. 30 reads best-of-N as a search for the mode of such a target.
# Put the verifier's probability in place of the indicator and the mode among the N
# candidates is
#
# argmax_n  log p_θ(y⁽ⁿ⁾ | x) + log v(x, y⁽ⁿ⁾)
#
# (`scoring.JointScorer`). It is also eq. 20 with the reward r = log v and β = 1: the
# generator's log-probability is the KL anchor that keeps the choice near p_θ, so a candidate
# the verifier over-rates *because it is unusual* loses to a usual one it rates nearly as
# well. It suits this verifier's blind spot: a slip it misses is mostly a token the sampler
# drew against the odds, so its log p_θ is low. And it costs nothing: the sampler reports
# log p_θ(y | x) for every candidate, and there is no weight to tune.
#
# TinyWorld's target's card (committed, whatever `MODEL` and `TASK` are) measures both
# selection rules on the same 16 samples of all 312 held-out problems; the last lines are the
# running problem:

# %%
arith = json.loads((data_dir() / "models" / "tinyworld" / "metrics.json").read_text())[
    "arithmetic"]                                      # the TinyWorld target's card
print(f"greedy {arith['greedy']:.3f}")
for temp, a in arith["by_temperature"].items():
    print(f"{temp}: majority vote {a['maj']:.3f}   best-of-16 by v {a['bon']:.3f}   "
          f"by p_theta x v {a['bon_joint']:.3f}   pass@16 {a['pass']:.3f}")
for name in ("verifier", "verifier x p_theta"):
    r = picks[name]
    print(f"running problem, {name:18s}: picks sample {r.chosen:2d} -> {fmt.answer(r.text)} "
          f"({'right' if flags[r.chosen] else 'wrong'})")
parallel.scaling_figure(curves, methods=["pass@N (exact check)", "majority vote",
                                         "best-of-N: verifier",
                                         "best-of-N: verifier x p_theta (eq. 17)"],
                        title="Best-of-N: the verifier's argmax vs the mode of p_θ · v")

# %% [markdown]
# One problem proves nothing either way: on TinyWorld's running problem the anchor *loses*. Its pick
# carries the slip 114 − 45 = 79 shown above, and the generator finds that slip more probable
# than the right step (log p −0.47 against −1.03 for the whole solution), while the verifier
# barely tells them apart (0.91 against 0.95). The verifier alone picked a right sample. Over
# the card's 312 problems the anchor turns the verifier from below majority voting into
# the best way to spend 16 samples: best-of-16 rises from 0.747 to 0.830 at T = 0.7 (voting
# 0.795, greedy 0.705) and from 0.667 to 0.824 at T = 1. In the selector sweep the verifier's
# argmax peaks at N = 8 and falls to 0.46 at N = 32, while the mode of p_θ · v keeps climbing
# to 0.75: the anchor is what stops the over-optimisation. The lesson is general: a learned
# verifier approximates the *indicator* in eq. 17, not the whole target, so select with the
# target — verifier **and** generator — rather than with the verifier alone.
#
# ## A tool inside generation (§5.2)
#
# Some things are better done outside the model. In the `Q (calc):` format the model writes
# each operation as `[CALC]7*3[/CALC]`; `meta.tool_generate` stops decoding when a call closes,
# runs the calculator, splices its result `=21` into the sequence and goes on from the same KV
# cache. The tool's tokens are booked as **external** tokens. TinyWorld's models learned this
# format; a Hub model would need a prompt or fine-tuning that teaches it a call syntax
# (`meta.tool_generate(lm, prompt, tools={...})` then splices any tool's result). Here is the
# small draft model, without and with the tool:

# %%
if TINYWORLD:
    p = ar.Problem("34+5*6-12")
    plain = decoding.greedy(draft, p.prompt(), max_new_tokens=160)   # the draft is TinyWorld's
    tool = meta.tool_generate(draft, p.prompt(calc=True))
    print("draft alone:\n" + plain.text, "\n\ndraft + calculator:\n" + tool.text)
    print("\ncorrect:", p.answer, "| tool calls:", tool.info["tool_calls"])
    print("cost with the tool:", tool.cost)
else:
    print("the [CALC] format is TinyWorld's (its models learned to call the calculator);",
          task.name, "has no calculator format")

# %% [markdown]
# Now on held-out problems (2 per difficulty cell), for the draft (0.6M parameters) and the
# target (5.3M): greedy worked solutions against the same models with the calculator.

# %%
def measure(name, run, problems):
    """Accuracy and mean Table 5 token counts of ``run(problem)`` over the problems."""
    outs = [run(p) for p in problems]
    row = {"name": name, "accuracy": float(np.mean(
        [fmt.check(p, o.text) for o, p in zip(outs, problems)]))}
    for f in compute.TOKEN_FIELDS:
        row[f] = float(np.mean([getattr(o.cost, f) for o in outs]))
    return row, outs

rows, runs = [], {}
if TINYWORLD:
    problems = [p for i, p in enumerate(task.problems) if i % 24 < PER_CELL]
    print(len(problems), "problems")
    for m in (draft, lm):
        for label, run in (
                ("alone", lambda p, m=m: decoding.greedy(
                    m, formats.arithmetic_format(m).prompt(p), max_new_tokens=160)),
                ("+ calculator", lambda p, m=m: meta.tool_generate(
                    m, formats.arithmetic_format(m, calc=True).prompt(p)))):
            row, runs[f"{m.name} {label}"] = measure(f"{m.name} {label}", run, problems)
            rows.append(row)
    for r in rows:
        print(f"{r['name']:28s} accuracy {r['accuracy']:.3f}   input {r['input_tokens']:5.1f}"
              f"   output {r['output_tokens']:5.1f}   external {r['external_tokens']:5.1f}")
else:
    print("the calculator experiment needs a model that writes [CALC] calls: TinyWorld's")
compute.cost_figure(rows, "A calculator makes the small model reliable") if TINYWORLD else None

# %% [markdown]
# The calculator removes the arithmetic errors, and the small draft's accuracy grows several
# times over; the target gains less, because it makes fewer arithmetic errors to begin with.
# What the tool cannot fix is the *plan*: in the example above the draft computed 34-12
# before 34+30, an order the problem does not allow, and the calculator faithfully evaluated
# the wrong operation. A tool supplies exact answers to the questions the model asks, not
# the right questions. Its answers cost a handful of external tokens per problem.
#
# ## An environment that answers: the sandbox (§5.2)
#
# Code gives natural observations. The model writes a program for the problem; the program
# runs **only** in `workbench.tools.run_python` (a separate, limited process). Its output or
# its error message is an observation from the environment; refinement (chapter 09) feeds it
# back as z, and a broken program is rejected without any learned judge. The `Code:` format
# is TinyWorld's; on a code task (`"humaneval"`, `"mbpp"`) chapter 09 runs each program
# against its problem's own tests (`meta.execution_feedback(task=task)`).

# %%
if TINYWORLD:
    program = decoding.greedy(lm, f"Code: {p.expression}\n", max_new_tokens=80).text
    print(program, "\n-> sandbox:", run_python(program).feedback)
    broken = program.replace("print(", "print(undefined + ", 1)
    h = meta.execution_feedback()
    z = h(f"Code: {p.expression}\n", [broken], [])
    print("\nobservation for a broken program:", z.text, "| done:", z.done, "| cost:", z.cost)
else:
    print("the `Code:` format is TinyWorld's; chapter 09 runs programs against a code task's tests")

# %% [markdown]
# ## The bill: Table 5's *External* column, measured
#
# Every result carries a `Cost`; scorers, reward models and tools book their tokens as
# external. `budget.table5` gives the survey's prediction from the mean input and output
# lengths and the scorer's C_s (`scorer.c_s(T_in + T)`: 2(T_in + T + 1) for the verifier and
# the PRM alike, since each reads the prompt and the output twice, once after each class
# code; a one-logit head would read them once). For the sequence-level methods the two agree
# exactly;
# step-level beam search scores partial solutions, so it spends *less* than Table 5's bound
# N_b N_e S C_s, which charges a full sequence per call. (Those are TinyWorld's verifier and
# PRM. A judge, `rm.LLMJudge`, reads its own prompt around the text, so its C_s is T_in + T
# plus that template; as a PRM it is asked once per step, re-reading the prompt each time, so
# a solution of K steps costs it up to K times Table 5's C_s.)

# %%
verify, prm_last = judges["verifier"], meta.prm_value(prm, reduce="last")
stepper = meta.LMStepper(lm, adapters=[lambda s: adapters.temperature(s, 0.8)],
                         max_step_tokens=40, answer_marker=fmt.marker.strip())
runs_t5 = {
    "best-of-n (log-p)": meta.best_of_n(prompt, sampler, judges["log p per token"], 8, seed=1),
    "reranking": meta.best_of_n(prompt, sampler, verify, 8, seed=1),
    "weighted self-consistency": meta.weighted_vote(prompt, sampler, judges["PRM (min)"], 8,
                                                    answer_fn=fmt.answer, seed=1),
    "step-level beam (scorer)": meta.stepwise_beam(prompt, stepper, prm_last, beam_size=2,
                                                   expansions=2, max_steps=8, seed=1),
}
t_in = len(lm.encode(prompt))
for name, r in runs_t5.items():
    if name.startswith("step"):          # S iterations; T the chosen solution's length
        S, T = max(n.depth for n in r.tree), r.tree[r.info["chosen_node"]].tokens
        pred = budget.table5(name, t_in, T, n_b=2, n_e=2, s=S, c_s=prm.c_s(t_in + T))
    else:
        t_mean = np.mean([len(c.token_ids) for c in r.candidates])
        judge = verifier if name == "reranking" else prm   # log-p: no external tokens
        pred = budget.table5(name, t_in, t_mean, n=len(r.candidates),
                             c_s=judge.c_s(t_in + t_mean))
    print(f"{name:26s} external: measured {r.cost.external_tokens:6d}   "
          f"Table 5 {pred.external_tokens:8.0f}")

# %% [markdown]
# ## Exercises
#
# 1. Predict, with `budget.table5`, the external tokens of best-of-8 with the verifier on the
#    running problem (`runs_t5["reranking"]`): use its candidates' mean length as T and the
#    verifier's C_s (`verifier.c_s`). Store the prediction in `predicted_external`.
# 2. From the sweep, what is the gap between pass@N and best-of-N with the verifier at N = 32?
#    Store it in `gap_32`. Which learned judge comes closest to the exact check at N = 8?
#    Store its curve name in `closest_judge`.
# 3. How many external tokens did the calculator book for the draft over all the problems?
#    Store it in `calc_tokens` (TinyWorld's arithmetic only; None on another task).
# 4. In the live slip test, which kind of slip does the verifier miss most often? Store its
#    name in `blindest_slip` (TinyWorld's arithmetic only; None on another task).

# %%
r = runs_t5["reranking"]
t_mean = np.mean([len(c.token_ids) for c in r.candidates])
predicted_external = budget.table5("reranking", t_in, t_mean, n=8,
                                   c_s=verifier.c_s(t_in + t_mean)).external_tokens
i32 = curves["pass@N (exact check)"]["n"].index(32)
gap_32 = (curves["pass@N (exact check)"]["accuracy"][i32]
          - curves["best-of-N: verifier"]["accuracy"][i32])
i8 = curves["pass@N (exact check)"]["n"].index(8)
closest_judge = max((k for k in curves if k.startswith("best-of-N") or "vote" in k),
                    key=lambda k: curves[k]["accuracy"][i8])
calc_tokens = (sum(o.cost.external_tokens for o in runs[f"{draft.name} + calculator"])
               if TINYWORLD else None)
blindest_slip = min(slips, key=slips.get) if TINYWORLD else None

# %%
assert abs(predicted_external - 8 * verifier.c_s(t_in + t_mean)) < 1e-9
if TINYWORLD:
    assert abs(predicted_external - 8 * 2 * (t_in + t_mean + 1)) < 1e-9
if formats.speaks_tinyworld(lm) or not TINYWORLD:   # the verifier reads in the model's tokens
    assert abs(predicted_external - r.cost.external_tokens) <= 0.02 * r.cost.external_tokens
assert abs(gap_32 - (oracle[-1] - curves["best-of-N: verifier"]["accuracy"][-1])) < 1e-12
learned = {k: c["accuracy"][i8] for k, c in curves.items() if not k.startswith("pass")}
assert learned[closest_judge] == max(learned.values())
if TINYWORLD:
    assert calc_tokens == sum(len(draft.encode(c["result"], bos=False))
                              for o in runs[f"{draft.name} + calculator"]
                              for c in o.info["tool_calls"])
    assert blindest_slip in ar.SLIPS and slips[blindest_slip] == min(slips.values())
print("All four answers are right.")
