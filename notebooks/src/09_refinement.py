# %% [markdown]
# # 09 · Refinement: feedback, revision, and where the information comes from
#
# {badges}
#
# **What you will learn**
# - refinement as a loop of three generators (survey §4.4, eqs. 41–43): an initial generator
#   g₀, an information source h that returns feedback z, and a refiner g that writes a new
#   version from the old ones and the feedback;
# - the information sources and what each tells the refiner — *whether* the output is wrong,
#   *where*, and *how to fix it*: the calculator and the interpreter (environment feedback,
#   eqs. 46–47), the exact step checker, a learned verifier, the answer key, and the model's own
#   judgement (self-feedback, eq. 45);
# - refiners: regenerate from the first localised error, plain resampling as the baseline, and
#   a learned corrector p(y' | x, y) (self-correction, Welleck et al. 2023);
# - the survey's point, measured round by round: **extrinsic** feedback (a tool, an interpreter,
#   a checker) makes refinement work; **intrinsic** self-feedback adds no new information and
#   helps little (Huang et al., 2024);
# - what refinement costs (Table 5: T_in·(1+N_r) input, T·(1+N_r) output, N_r·C_z external).
#
# Runs in about 30 s on a 2-core CPU (the round-by-round sweep is precomputed by
# `scripts/sweep_refine.py`; a test re-runs a slice of it).
#
# **Your own model and task.** `MODEL` takes any causal LM (a local directory or a Hub id) and
# `TASK` any task of `workbench.tasks` (`"gsm8k"`, `"math"`, a code task `"humaneval"` or
# `"mbpp"`, or your own file, see `docs/real-models.md`). The loop, the answer key and the model
# as its own judge run on every task, and a code task gets the interpreter running each
# problem's own unit tests; the calculator, the exact step checker, TinyWorld's verifier and
# the trained corrector exist only for TinyWorld's arithmetic, and say so instead of running.

# %%
# SETUP

# %%
MODEL = "tinyworld"   # or a local directory / HF causal-LM id
TASK = "tinyworld-arithmetic"   # or "gsm8k", "math", ... (workbench.tasks; see docs/real-models.md)
SEED = 0
N_PROBLEMS = 5        # another task: its first N_PROBLEMS problems (the demo and the measurement)
SAMPLES = 2           # another task: first versions per problem in the measurement (pass@1)

# %%
import json
import numpy as np
from IPython.display import display
import workbench as wb
from workbench import adapters, meta
from workbench import reward_models as rm
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar
from widgets import refinement as views
from widgets.compute import pareto_figure

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # its calculator, checker, verifier, corrector
CODE = task.name in ("humaneval", "mbpp")          # a reply is a program, run against unit tests
if TINYWORLD:
    verifier = wb.load("tinyworld-verifier")
else:   # the model as its own judge: p(Yes) to "Is this solution correct?"
    try:
        judge = rm.LLMJudge(lm, yes="Yes", no="No") if fmt.chat else rm.LLMJudge(lm)
    except ValueError as e:   # its tokenizer has no one-token Yes / No
        judge = None
        print("no LLM judge from this model:", e)
sampler = meta.LMGenerator(lm, stop=fmt.stop, adapters=[lambda x: adapters.temperature(x, 0.8)],
                           max_new_tokens=160 if TINYWORLD else 512)

def said(p, text):
    """What a version says: its answer (a code task: whether its program passes p's tests)."""
    if CODE:
        return "passes its tests" if fmt.check(p, text) else "fails its tests"
    return fmt.answer(text)

pool = [task.problem("584*3+185+96-142*9")] if TINYWORLD else task.problems[:N_PROBLEMS]
for problem in pool:   # the first problem with a wrong sample among 8
    prompt = fmt.prompt(problem)
    draws = sampler.generate(prompt, 8, seed=SEED)
    wrong = [d for d in draws if not fmt.check(problem, d.text)]
    if wrong:
        break
print("answers of 8 samples:", [said(problem, d.text) for d in draws], "| correct:",
      "passes its tests" if CODE else problem.reference)
y0 = wrong[0] if wrong else draws[0]   # a wrong first version, when the model wrote one
if not wrong:
    print(f"every sample is right on the first {len(pool)} problems: h will accept y(0) at once")
print(prompt + y0.text)

# %% [markdown]
# ## What each information source says about the same wrong solution
#
# An information source h(z | x, y) looks at the latest version and returns feedback z: done or
# not, a message, the line where the solution goes wrong (when it can tell), and a correction
# (when it has one). Five sources on TinyWorld's wrong solution above; on another task, those
# that exist for it: the interpreter running the problem's own unit tests (a code task), the
# answer key, and the model as its own judge (`rm.LLMJudge(lm)`, intrinsic: the same p_θ).

# %%
if TINYWORLD:
    sources = {
        "calculator (tool)": meta.calculator_feedback(),
        "step checker (exact)": meta.step_feedback(task),
        "verifier (learned)": meta.verifier_feedback(verifier),
        "answer key (oracle)": meta.outcome_feedback(task),
        "self-feedback (intrinsic)": meta.self_feedback(lm),
    }
else:
    sources = {"interpreter + tests (tool)": meta.execution_feedback(task=task)} if CODE else {}
    sources["answer key (oracle)"] = meta.outcome_feedback(task)
    if judge is not None:
        sources["self-feedback (intrinsic)"] = meta.verifier_feedback(judge)
for name, h in sources.items():
    z = h(prompt, [y0.text], [])
    print(f"{name:26s} done={str(z.done):5s} line={str(z.first_error):4s} fix={z.fix!r:14s} "
          f"{z.text!r}\n{'':26s} cost: {z.cost}")

# %% [markdown]
# | source | extrinsic? | whether | where | how |
# |---|---|---|---|---|
# | calculator | yes: a tool redoes every written operation | ✓ (for arithmetic slips) | ✓ | ✓ the right result |
# | step checker | yes: the exact process check | ✓ | ✓ | – |
# | verifier | learned from labelled samples | a probability | – | – |
# | answer key | the label itself (Welleck et al.'s z) | ✓ | – | – |
# | self-feedback | no: the same p_θ redoes its operations | its own opinion | its own opinion | its own opinion |
#
# ## One refinement loop, version by version
#
# The refiner `regenerate_from_error` keeps the lines before the error h localised, appends the
# correction (if any) and lets the sampler write the rest (eq. 43). With the calculator as h:
# move the slider to step through the versions y(0), y(1), … (grey lines are kept, blue changed,
# orange new, red the line the feedback flagged, green a version h accepted).
#
# On another task h is the interpreter with the problem's tests (a code task) or else the answer
# key, and the refiner is `meta.reask`: the model is asked again, shown its last version and h's
# message (for a code task, what failed: Self-Debugging), and writes a whole new version.

# %%
start = meta.as_generator(lambda p: y0, "the wrong sample")     # g0: always this y(0)
regen = meta.regenerate_from_error(sampler)
if TINYWORLD:
    extrinsic, refiner = "calculator (tool)", regen
else:
    extrinsic = "interpreter + tests (tool)" if CODE else "answer key (oracle)"
    refiner = meta.reask(sampler, task=task)
calc = meta.refine(prompt, start, sources[extrinsic], refiner, max_iterations=3, seed=SEED,
                   answer_fn=fmt.answer)
print("stopped:", calc.info["stopped"], "| answer", said(problem, calc.text), "| cost:", calc.cost)
views.RefinementView(calc)

# %% [markdown]
# The same first version with self-feedback: the model re-does each of its operations in a fresh
# question `Q: a op b`, and flags the first line where it now disagrees with itself. (On another
# task: the model judges its whole reply, and its p(Yes) below ½ sends it back with `meta.reask`.)

# %%
self_h = meta.self_feedback(lm) if TINYWORLD else sources.get("self-feedback (intrinsic)")
if self_h is None:
    print("no self-feedback: it needs the model as its judge, rm.LLMJudge(lm, yes=..., no=...) "
          "with a one-token yes and no of its tokenizer")
else:
    self_fb = meta.refine(prompt, start, self_h, refiner, max_iterations=3, seed=SEED,
                          answer_fn=fmt.answer)
    print("stopped:", self_fb.info["stopped"], "| answer", said(problem, self_fb.text), "| cost:",
          self_fb.cost)
    display(views.refinement_figure(self_fb))

# %% [markdown]
# On TinyWorld, self-feedback finds the slips here: re-doing one operation in a fresh, short
# question is easier for the model than doing it inside a long chain, so its second opinion is
# sometimes right. But
# every opinion comes from the same p_θ: where it agrees with its own mistake nothing changes,
# and where it disagrees with a right step it breaks it. It also costs the most: the judge reads
# and writes every operation again (Table 5's self-feedback row, T + 2T·N_r output tokens). Only
# the sweep below can say which way the balance tips.
#
# ## A learned refiner: the corrector
#
# Instead of re-sampling from the error, the refiner can be a model trained to rewrite a
# solution, p(y' | x, y). `scripts/train_corrector.py` fine-tuned the target into
# `tinyworld-corrector` with the self-corrective loop (Welleck et al., 2023): round 1 pairs each
# wrong sample of the target with the most similar right sample of the same problem (and some
# right samples with themselves, so that it learns to leave them alone); round 2 adds the
# corrector's own corrections as new pairs. `meta.corrector(generator)` prompts it with
# `Fix: <question>`, the previous solution and `Better:`. It has no feedback of its own, so it
# needs a gate that decides *whether* to rewrite: the learned verifier (GLoRe-style), or, as an
# upper bound, the answer key. Both on the same y(0) (TinyWorld's corrector knows only TinyWorld's
# arithmetic):

# %%
if TINYWORLD:
    corrector = wb.load("tinyworld-corrector")
    fixer = meta.LMGenerator(corrector, greedy=True, max_new_tokens=160)
    gated = {gate: meta.refine(prompt, start, h, meta.corrector(fixer, task=task),
                               max_iterations=2, seed=SEED)
             for gate, h in (("verifier", meta.verifier_feedback(verifier, 0.5)),
                             ("answer key", meta.outcome_feedback(task)))}
    for gate, r in gated.items():
        print(f"gate: {gate:10s} stopped: {r.info['stopped']:15s} versions {len(r.candidates)}"
              f" | answer {r.answer} | cost: {r.cost}")
    learned = gated["answer key"]
    card = json.loads((data_dir() / "models" / "tinyworld-corrector" / "metrics.json").read_text())
    print(f"held-out, one greedy correction of a temperature-1 sample ({card['problems']} "
          f"problems): fixes {card['fixed_of_wrong']:.0%} of the wrong ones (a fresh sample "
          f"instead: {card['resample_fixes_wrong']:.0%}), keeps {card['kept_of_correct']:.0%} of "
          f"the right ones;\ncalled only where the answer key says wrong: accuracy "
          f"{card['sample_accuracy']:.0%} -> {card['accuracy_correct_if_wrong_oracle']:.0%} (a "
          f"fresh sample instead: {card['accuracy_resample_if_wrong_oracle']:.0%})")
    display(views.refinement_figure(learned))
else:
    print("tinyworld-corrector was trained on TinyWorld's arithmetic only; with a corrector of "
          "your own: meta.refine(prompt, start, meta.outcome_feedback(task), "
          "meta.corrector(meta.LMGenerator(its_lm, greedy=True), task=task))")

# %% [markdown]
# On TinyWorld, with the verifier as the gate nothing happens: it gives y(0) P(correct) = 0.54,
# just above its threshold, and lets it through — a learned gate's false pass. With the answer
# key as the gate the corrector runs (figure): it rewrote the solution in another order and got past the
# slip of y(0) (`1752+281=1033`), then made a new one in the last subtraction (855 instead of
# 755), and its second try changed nothing.
#
# On average the corrector learned the target's typical slips: on held-out problems it turns
# far more wrong samples into right ones than a fresh sample would (the self-corrective loop's claim, Welleck
# et al., 2023). It is not an oracle, though: it also rewrites some right solutions into wrong
# ones, so it is worth calling only where something says the solution is wrong. With the
# answer key as that gate (printed above) it beats resampling clearly; in the sweep below the
# gate is the learned verifier, which makes mistakes of its own.
#
# ## Environment feedback: programs and an interpreter (eqs. 46–47)
#
# In the `Code:` format the model writes a straight-line Python program; a program is only ever
# run in the sandbox (`workbench.tools.run_python`). At temperature 0.8 the target writes correct
# programs for these problems, so we sample at 1.5 to get broken ones. The interpreter is the
# environment: its error message (localised to a line by the traceback), or with a test the
# wrong output, is the feedback z; the refiner regenerates from the failing line at 0.8.
#
# On a code task (HumanEval, MBPP) the reply is the program and the test is the problem's own
# unit tests, `meta.execution_feedback(task=task)`: the source of the loop above. Its message on
# each of the 8 first samples is shown instead. (`Code:` is TinyWorld's format; on another task
# that is not code there is no program to run.)

# %%
if TINYWORLD:
    code_prompt = f"Code: {problem.question}\n"
    hot = meta.LMGenerator(lm, stop=fmt.stop, adapters=[lambda x: adapters.temperature(x, 1.5)],
                           max_new_tokens=160)
    programs = hot.generate(code_prompt, 8, seed=SEED)
    run = meta.execution_feedback()                       # errors, and output != expected value
    fb = [run(code_prompt, [p.text], []) for p in programs]
    for z in fb:
        print(z.text[:70])
    bad = next(p for p, z in zip(programs, fb) if not z.done and z.first_error is not None)
    code = meta.refine(code_prompt, meta.as_generator(lambda p: bad), run, regen,
                       max_iterations=3, seed=SEED)
    notes = code.info["feedback"] + [None]
    for t, v in enumerate(code.info["versions"]):
        print(f"--- y({t})  feedback: {notes[t]['text'] if notes[t] else '(not asked)'}\n{v}")
elif CODE:
    fb = [sources["interpreter + tests (tool)"](prompt, [d.text], []) for d in draws]
    for z in fb:
        print(z.text[:100])
else:
    print(f"{task.name} has no program to run: set TASK = 'humaneval' or 'mbpp' (each problem's "
          f"unit tests, meta.execution_feedback(task=task))")

# %% [markdown]
# ## The claim: extrinsic feedback helps, intrinsic feedback helps little
#
# TinyWorld's sweep: `scripts/sweep_refine.py` ran each loop for up to three rounds on the 24
# harder held-out problems of chapter 08 (4 or 5 operations, 2- or 3-digit numbers), the first version y(0)
# being the same sample at temperature 0.8 for every loop, and recorded accuracy and the tokens billed after every round k. "No feedback" resamples
# a fresh solution every round and keeps the last one: the baseline every refiner must beat.

# %%
sweep = json.loads((data_dir() / "results" / "refinement.json").read_text())
rows = sweep["summary"]
print(f"{len(sweep['config']['problems'])} problems, up to {sweep['config']['rounds']} rounds")
for m in dict.fromkeys(r["method"] for r in rows):
    line = sorted((r for r in rows if r["method"] == m), key=lambda r: r["round"])
    print(f"{m:32s}", "  ".join(f"k={r['round']}: {r['accuracy']:.3f} ({r['total_tokens']:4.0f} tok)"
                                for r in line))
pareto_figure(rows, "total_tokens",
              title="TinyWorld: accuracy after k = 0..3 refinement rounds vs tokens billed")

# %% [markdown]
# Accuracy only counts the net effect. How many wrong first versions did three rounds fix, and
# how many right ones did they break?

# %%
for m in dict.fromkeys(r["method"] for r in rows):
    end = {r["id"]: (r["correct"], r["changed"]) for r in sweep["rows"]
           if (r["method"], r["round"]) == (m, 3)}
    start = {r["id"]: r["correct"] for r in sweep["rows"] if (r["method"], r["round"]) == (m, 0)}
    fixed = sum(not start[i] and end[i][0] for i in end)
    broken = sum(start[i] and not end[i][0] for i in end)
    print(f"{m:32s} changed {sum(c for _, c in end.values()):2d}   fixed {fixed:2d}   broken {broken:2d}")

# %% [markdown]
# On another task the same comparison runs live on its first `N_PROBLEMS` problems, `SAMPLES`
# first versions each: the extrinsic source of the loop above, the model as its own judge, and
# resampling, each refining the same first versions for up to three rounds. For a code task the
# score is pass@1 (Chen et al.'s estimator, `tasks.pass_at_k`, with k = 1).

# %%
if TINYWORLD:
    print("TinyWorld: measured by the sweep above (scripts/sweep_refine.py)")
else:
    never_done = lambda p, versions, notes: meta.Feedback(False, "try again")
    loops = {extrinsic: (sources[extrinsic], refiner),
             "no feedback (resample)": (never_done, meta.resample(sampler))}
    if "self-feedback (intrinsic)" in sources:
        loops["self-feedback (intrinsic)"] = (sources["self-feedback (intrinsic)"], refiner)
    firsts = {p.id: sampler.generate(fmt.prompt(p), SAMPLES, seed=SEED) for p in pool}
    pass1 = lambda ok: np.mean([wb.tasks.pass_at_k(len(o), sum(o), 1) for o in ok])
    before = [[fmt.check(p, y.text) for y in firsts[p.id]] for p in pool]
    metric = "pass@1" if CODE else "accuracy"
    print(f"{len(pool)} problems x {SAMPLES} first versions: {metric} of y(0) {pass1(before):.3f}")
    live = {}
    for name, (h, g) in loops.items():
        live[name] = [[meta.refine(fmt.prompt(p), meta.as_generator(lambda x, y: y, y=y), h, g,
                                   max_iterations=3, seed=SEED, answer_fn=fmt.answer)
                       for y in firsts[p.id]] for p in pool]
        after = [[fmt.check(p, r.text) for r in rs] for p, rs in zip(pool, live[name])]
        pairs = [(b, a) for bs, as_ in zip(before, after) for b, a in zip(bs, as_)]
        tokens = np.mean([r.cost.total_tokens for rs in live[name] for r in rs])
        print(f"{name:32s} {metric} after refining {pass1(after):.3f}   "
              f"fixed {sum(a and not b for b, a in pairs):2d}   "
              f"broken {sum(b and not a for b, a in pairs):2d}   ({tokens:.0f} tok)")

# %% [markdown]
# What TinyWorld's sweep shows (the survey's "Does refinement work?", §4.4):
# - **Extrinsic feedback that knows where and how** works best: the calculator takes the first
#   versions from 46% to 79% correct in three rounds, breaking nothing, for about 100 more
#   tokens per problem — far less than resampling spends.
# - **Knowing where, but not how** (the exact step checker) also helps, more slowly: the refiner
#   re-samples the flagged line from the same prefix, and the model often repeats its slip.
# - **Knowing only whether** (the answer key, with a fresh sample each round) is best-of-k with
#   an oracle's stopping rule; it gains less than the localising sources.
# - The **learned verifier** says whether, noisily: its false alarms throw away right solutions
#   and its false passes keep wrong ones (Havrilla et al., 2024). It still gains a few points
#   (46% to 50%), and more with the **learned corrector** as the refiner (62%): the corrector
#   fixes more of what the verifier flags than resampling from the error does. Both are well
#   below the localising tools, and they bill the verifier's reading of every version.
# - **Intrinsic self-feedback** rewrites as many solutions as the calculator does, but fixes
#   about as many as it breaks: no new information, no net gain, for twice the calculator's
#   tokens (Huang et al., 2024). Resampling without any feedback is just another sample.
#
# ## Exercises
#
# 1. Make the second step of the reference solution of TinyWorld's problem
#    `ar.Problem("584*3+185+96-142*9")` wrong (add 1 to its result) and ask the calculator and
#    the step checker for feedback. Store the line each localises in `calc_line` and `step_line`.
# 2. The calculator only re-does the operation written on a line. For `ar.Problem("12+7*3-5")`,
#    a first step `12+7=19, 19*3-5` computes correctly but breaks the order of operations. Does
#    the calculator accept it? Does the step checker? Store `calc_done` and `step_done`.
# 3. From the sweep, how many accuracy points did three rounds add to the first version with
#    the calculator, and with self-feedback? Store `calc_gain` and `self_gain`.

# %%
arith = wb.tasks.load("tinyworld-arithmetic")   # the tools of exercises 1-2 exist only here
hard = ar.Problem("584*3+185+96-142*9")
lines = hard.solution().split("\n")
head, tail = lines[1].split("=", 1)
value, _, rest = tail.partition(",")
lines[1] = f"{head}={int(value) + 1}" + (f",{rest}" if rest else "")
wrong = "\n".join(lines)
calc_line = meta.calculator_feedback()(hard.prompt(), [wrong], []).first_error
step_line = meta.step_feedback(arith)(hard.prompt(), [wrong], []).first_error

easy = ar.Problem("12+7*3-5")
swapped = "12+7=19, 19*3-5\n19*3=57, 57-5\n57-5=52\nA: 52"
calc_done = meta.calculator_feedback()(easy.prompt(), [swapped], []).done
step_done = meta.step_feedback(arith)(easy.prompt(), [swapped], []).done

acc = {(r["method"], r["round"]): r["accuracy"] for r in rows}
calc_gain = acc["calculator (tool)", 3] - acc["calculator (tool)", 0]
self_gain = acc["self-feedback (intrinsic)", 3] - acc["self-feedback (intrinsic)", 0]

# %%
assert calc_line == step_line == 1
assert calc_done and not step_done
per = lambda m, k: np.mean([r["correct"] for r in sweep["rows"] if (r["method"], r["round"]) == (m, k)])
assert abs(calc_gain - (per("calculator (tool)", 3) - per("calculator (tool)", 0))) < 1e-12
assert abs(self_gain - (per("self-feedback (intrinsic)", 3) - per("self-feedback (intrinsic)", 0))) < 1e-12
print("All three answers are right.")
