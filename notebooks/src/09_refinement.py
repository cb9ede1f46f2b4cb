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
# - Self-Refine (one model, three prompts, a written critique; eq. 44) and Reflexion (verbal
#   reflections on failed attempts kept in a bounded memory), and what self-feedback bills
#   (Table 5: T_in + (2T_in + T)·N_r input, T + 2T·N_r output);
# - the survey's point, measured round by round on 104 problems: **extrinsic** feedback (a
#   tool, a checker, the answer key) makes refinement work; **intrinsic** self-feedback adds no
#   new information and, like TinyWorld's learned verifier, gains nothing the data can resolve
#   (Huang et al., 2024);
# - what refinement costs (Table 5: T_in·(1+N_r) input, T·(1+N_r) output, N_r·C_z external).
#
# **Survey sections**: §4.4 (refinement, eqs. 41–47), §6.1 (token budget, Table 5).
# **Prerequisites**: chapters 01–03 (generators, sampling), 06 (tools and programs in a chain)
# and 07 (verifiers). **Student time**: about 75 minutes (reading, the widget, four exercises).
# Runs in about 55 s on a 2-core CPU (the round-by-round sweep is precomputed by
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
import json, math, re
import numpy as np
from IPython.display import display
import workbench as wb
from workbench import adapters, meta, stats
from workbench import reward_models as rm
from workbench.paths import data_dir
from workbench.tinyworld import arithmetic as ar, formats
from widgets import checks
from widgets import refinement as views
from widgets.compute import pareto_figure
from widgets.source import show_source

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # its calculator, checker, verifier, corrector
CODE = task.name in ("humaneval", "mbpp")          # a reply is a program, run against unit tests
SPEAKS = TINYWORLD and formats.speaks_tinyworld(lm)   # TinyWorld's own models: the claims below
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
# The demo problem and its first version y(0) were picked to have something to fix: one
# wrong sample, followed through every source and refiner below. One problem shows how the
# loop works, not how often it helps; the round-by-round sweep further down measures that.
#
# ## Refinement as a triple (g₀, h, g)
#
# A refinement algorithm (survey §4.4) is an initial generator $g_0$, an information source
# $h$ and a refiner $g$:
#
# $$y^{(0)} \sim g_0(y \mid x), \qquad (41)$$
#
# $$z^{(t)} \sim h(z \mid x, y^{(<t)}, z^{(<t)}), \qquad (42)$$
#
# $$y^{(t)} \sim g(y \mid x, y^{(<t)}, z^{(\le t)}). \qquad (43)$$
#
# It alternates feedback and revision until a **stopping rule** fires. In `meta.refine` that
# rule is: stop when h says the latest version is done, when the refiner returns the previous
# version unchanged, or after `max_iterations` = $N_r$ refinements. Look inside — the whole
# loop is the `for t` below:

# %%
show_source(meta.refine)

# %% [markdown]
# ## What each information source says about the same wrong solution
#
# An information source h(z | x, y) looks at the latest version and returns feedback z: done or
# not, a message, the line where the solution goes wrong (when it can tell), and a correction
# (when it has one). Five sources on TinyWorld's wrong solution above; on another task, those
# that exist for it: the interpreter running the problem's own unit tests (a code task), the
# answer key, and the model as its own judge (`rm.LLMJudge(lm)`, intrinsic: the same p_θ).
#
# Line numbers on this page count from 1, as the messages do. The package's
# `Feedback.first_error` is a 0-based Python index into the version's lines (the refiner
# slices `lines[:first_error]` with it), so the table prints `first_error + 1`.

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
said_by = {name: h(prompt, [y0.text], []) for name, h in sources.items()}
for name, z in said_by.items():
    line = "-" if z.first_error is None else z.first_error + 1     # 1-based, as the messages
    print(f"{name:26s} done={str(z.done):5s} line {line!s:2s} fix={z.fix!r:16s} "
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
# On this y(0), the printout matches the table: the calculator, the step checker and
# self-feedback all flag line 3 (`1752+281=1033`), and only the calculator and self-feedback
# give a correction; the answer key says "wrong" without saying where; and the verifier's
# P(correct) is just above ½, so it *accepts* this wrong solution — a learned source's false
# pass.

# %% tags=["claim"]
if SPEAKS:   # claims about TinyWorld's target and its sources on this y(0)
    z = said_by
    slip = [i for i, ln in enumerate(y0.text.split("\n")) if ln.startswith("1752+281=1033")]
    assert not fmt.check(problem, y0.text) and slip == [2], (y0.text, slip)
    for name in ("calculator (tool)", "step checker (exact)", "self-feedback (intrinsic)"):
        assert z[name].first_error == slip[0] and not z[name].done, (name, z[name])
    assert z["calculator (tool)"].fix == z["self-feedback (intrinsic)"].fix == "1752+281=2033"
    assert z["step checker (exact)"].fix == ""
    assert z["answer key (oracle)"].first_error is None and not z["answer key (oracle)"].done
    p = z["verifier (learned)"].info["p_correct"]
    assert z["verifier (learned)"].first_error is None and z["verifier (learned)"].done
    assert 0.5 <= p < 0.6, p          # "just above 1/2": a false pass
    print(f"line {slip[0] + 1} flagged by calculator, checker and self-feedback; "
          f"verifier P(correct) = {p:.3f} on a wrong solution")

# %% [markdown]
# Look inside two sources: the calculator (environment feedback: it knows *where* and *how*)
# and the answer key (it knows only *whether*). Note `Feedback(False, msg, i, ...)`: `i` is
# the 0-based line index, `msg` says `line {i + 1}`.

# %%
show_source(meta.calculator_feedback, meta.outcome_feedback)

# %% [markdown]
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
# Look inside the refiner: the kept lines are `lines[:k]`, with `k` the 0-based index of the
# flagged line, so the flagged line itself is the first one written again.

# %%
show_source(meta.regenerate_from_error)

# %% [markdown]
# ## Self-feedback (eq. 45)
#
# Self-feedback asks the same model for the feedback, through a feedback prompt:
#
# $$z^{(t)} \sim h_\theta\big(z \mid P_{\text{feedback}}(x, y^{(<t)}, z^{(<t)})\big). \qquad (45)$$
#
# Here the same first version with self-feedback: the model re-does each of its operations in
# a fresh question `Q: a op b`, and flags the first line where it now disagrees with itself.
# (On another task: the model judges its whole reply, and its p(Yes) below ½ sends it back with
# `meta.reask`.)

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
# On this problem, both loops end with the right answer, and self-feedback found the slip:
# re-doing one operation in a fresh, short question is easier for the model than doing it
# inside a long chain, so its second opinion is sometimes right. But every opinion comes from
# the same p_θ: where it agrees with its own mistake nothing changes, and where it disagrees
# with a right step it breaks it. It also costs more: its judge writes every operation again,
# so here its loop billed about twice the calculator loop's output tokens. One problem cannot
# say which way the balance tips; the sweep below measures it.
#
# What a loop bills (Table 5; $N_r$ refinements, $C_z$ the tokens of one round of external
# information):
#
# | algorithm | input | output | external |
# |---|---|---|---|
# | refinement (general) | $T_{\text{in}} \cdot (1 + N_r)$ | $T \cdot (1 + N_r)$ | $N_r \cdot C_z$ |
# | refinement (self-feedback) | $T_{\text{in}} + (2T_{\text{in}} + T) \cdot N_r$ | $T + 2T \cdot N_r$ | – |

# %% tags=["claim"]
if SPEAKS and self_h is not None:   # claims about TinyWorld's target on this problem
    assert fmt.check(problem, calc.text) and fmt.check(problem, self_fb.text), (
        calc.answer, self_fb.answer)
    ratio = self_fb.cost.output_tokens / calc.cost.output_tokens
    assert 1.5 <= ratio <= 3.0, ratio      # "about twice" the calculator loop's output tokens
    assert self_fb.cost.external_tokens == 0 < calc.cost.external_tokens
    print(f"both right; output tokens: self-feedback {self_fb.cost.output_tokens}, calculator "
          f"{calc.cost.output_tokens} (x{ratio:.2f})")

# %% [markdown]
# ## Self-Refine: the model writes the critique (eq. 44)
#
# Self-Refine (Madaan et al., 2023) needs only p_θ and three prompts: the task's prompt for
# y(0), a feedback prompt whose output is a *written critique* z(t) (eq. 45 above), and a refine
# prompt that shows the question, the last version and its critique:
#
# $$y^{(t)} \sim g_\theta\big(y \mid P_{\text{refine}}(x, y^{(<t)}, z^{(\le t)})\big). \qquad (44)$$
#
# `meta.self_refine` is `meta.refine` with `meta.critique_feedback(generator)` as h (it accepts
# a version when the critique opens with "No errors") and `meta.reask(generator)` as g, the
# refiner of the loop above: the only new piece is the feedback prompt. Both prompts show the
# latest version and critique only, not the whole history (a Markov form of eqs. 44–45).

# %%
show_source(meta.critique_feedback)

# %% [markdown]
# **Be warned: on TinyWorld the critiques are nonsense.** TinyWorld's models were never trained
# to review anything or to follow an instruction; after `Review:` the target writes whatever
# arithmetic-looking text comes next, never "No errors", so the loop runs all its rounds and
# the "refinements" are no better. With `MODEL` set to an instruction-tuned model of your own
# the critiques read as reviews, but they stay intrinsic: the same p_θ, no new information
# (the sweep above). What is exact whatever the critiques say is the **bill**: two calls per
# round, the critique billed as the model's own *output* tokens, nothing external.

# %%
sr = meta.self_refine(prompt, sampler, max_iterations=3, task=task, seed=SEED,
                      answer_fn=fmt.answer)
notes = sr.info["feedback"]
for t, v in enumerate(sr.candidates):
    print(f"y({t}): {said(problem, v.text)!s:16s} in={v.cost.input_tokens:4d} "
          f"out={v.cost.output_tokens:4d}")
    if t < len(notes):
        z = notes[t]
        print(f"  z({t}): in={z['cost']['input_tokens']:4d} out={z['cost']['output_tokens']:4d} "
              f"done={z['done']!s:5s} {z['text'][:60]!r}")
print("stopped:", sr.info["stopped"], "| refinements:", sr.info["refinements"], "| cost:", sr.cost)

# %% [markdown]
# Table 5's self-feedback row assumes every call reads $T_{\text{in}}$ tokens and writes $T$:
# a round is a critique ($T$ out) and a refinement ($T$ out) that also reads the critique
# ($T$ more in), so $N_r$ rounds bill $T_{\text{in}} + (2T_{\text{in}} + T) N_r$ input and
# $T + 2T N_r$ output tokens — $7T$ for 3 rounds, still less than best-of-8's $8T$. The real
# loop departs from it in three ways: a loop stopped by an accepting critique has critiqued its
# last version too ($N_r$ refinements, $N_r + 1$ critiques); its prompts are not one size (the
# critique prompt holds x and y(t), the refine prompt x, y(t) and z(t)); and critiques and
# versions are not all $T$ long. The cell below checks the accounting on the run above, and the
# row to the token on the same loop with a scripted generator whose calls all have y(0)'s size.
# (On TinyWorld the run above bills more input than the row at y(0)'s size: its critique and
# refine prompts carry y(t) and z(t).)

# %% tags=["claim"]
# any model: the bill is exactly the loop's calls, the critique is output, nothing is external
from workbench.budget import Cost, table5
crit = [z["cost"] for z in notes]
rejected = sr.info["stopped"] == "no change"       # a refinement billed, then not kept
assert sr.cost.calls == len(sr.candidates) + len(crit) + rejected
assert len(crit) == sr.info["refinements"] + (sr.info["stopped"] != "max_iterations")
assert sr.cost.external_tokens == 0
assert rejected or sr.cost.output_tokens == (sum(v.cost.output_tokens for v in sr.candidates)
                                             + sum(c["output_tokens"] for c in crit))
T_IN, T = sr.candidates[0].cost.input_tokens, sr.candidates[0].cost.output_tokens


def same_size(p):   # every call reads T_IN (a refinement also the critique's T) and writes T
    shown = T if "Feedback on your last reply" in p else 0
    return meta.TextOutput("y " * T, Cost(input_tokens=T_IN + shown, output_tokens=T, calls=1))


scripted = meta.self_refine(prompt, meta.as_generator(same_size), max_iterations=3,
                            stop_when_unchanged=False)
row = table5("refinement (self-feedback)", T_IN, T, n_r=3)
assert scripted.info["refinements"] == 3 and scripted.cost.calls == 7
assert (scripted.cost.input_tokens, scripted.cost.output_tokens,
        scripted.cost.external_tokens) == (row.input_tokens, row.output_tokens, 0)
if SPEAKS:   # TinyWorld's target here: prompts that carry y(t) and z(t) outgrow the row
    assert sr.cost.input_tokens > table5("refinement (self-feedback)", T_IN, T,
                                         n_r=sr.info["refinements"]).input_tokens, sr.cost
print(f"T_in = {T_IN}, T = {T}: Table 5 predicts in={row.input_tokens} out={row.output_tokens};"
      f" calls of that size bill in={scripted.cost.input_tokens} "
      f"out={scripted.cost.output_tokens}\nthe model's own run ({sr.info['refinements']} "
      f"refinements, {len(crit)} critiques) billed in={sr.cost.input_tokens} "
      f"out={sr.cost.output_tokens}")

# %% [markdown]
# ## Reflexion: verbal reflections kept in a memory
#
# Reflexion (Shinn et al., 2023) keeps the *verdict* outside the model — a task check, or a
# program's unit tests run in the sandbox — and asks the model only to **reflect** on each
# failure. The reflections are kept in a bounded memory M (the last k) that goes into the
# next attempt's prompt:
#
# $$y^{(j)} \sim g\big(y \mid x, M^{(j)}\big), \qquad (\text{ok}^{(j)}, m^{(j)}) =
#   \text{evaluate}(x, y^{(j)}),$$
#
# $$r^{(j)} \sim p_\theta\big(r \mid P_{\text{reflect}}(x, y^{(j)}, m^{(j)})\big), \qquad
#   M^{(j+1)} = \text{last}_k\big(M^{(j)}, r^{(j)}\big),$$
#
# until an attempt passes or after `max_trials` attempts (below: 3 attempts, a memory of k = 1,
# so a third attempt sees only the second reflection). The evaluator here is the extrinsic
# source of the loop above (TinyWorld: the calculator; a code task: the problem's tests; else
# the answer key), turned into `evaluate(x, y) -> (ok, message)` by `meta.feedback_evaluator`.

# %%
show_source(meta.reflexion)

# %%
rx = meta.reflexion(prompt, sampler, meta.feedback_evaluator(sources[extrinsic]), sampler,
                    max_trials=3, memory=1, seed=SEED, answer_fn=fmt.answer)
for j, y in enumerate(rx.candidates):
    print(f"attempt {j}: {said(problem, y.text)!s:16s} passed={rx.info['passed'][j]!s:5s} "
          f"{rx.info['messages'][j][:60]!r}")
    if j < len(rx.info["reflections"]):
        print(f"  reflection {j}: {rx.info['reflections'][j][:70]!r}")
print("stopped:", rx.info["stopped"], "| memory:", len(rx.info["memory"]), "| cost:", rx.cost)

# %% [markdown]
# On TinyWorld the reflections are arithmetic-looking continuations again, not reflections,
# and a memory written before the question is text the model never saw in training: whatever
# the next attempt gets right, it does not get from the memory. What Reflexion has that
# Self-Refine lacks is the extrinsic verdict: an attempt is accepted only when the calculator
# (or the tests, or the answer key) says so, never on the model's word. Its bill: the attempts
# and reflections are the model's input and output tokens, the evaluator's messages external
# ones (here their words, as for the sources above).

# %% tags=["claim"]
# any model: one call per attempt and per reflection; each reflection reaches the next prompt,
# and the memory holds only the last k = 1
assert rx.cost.calls == len(rx.candidates) + len(rx.info["reflections"])
assert len(rx.info["reflections"]) == len(rx.candidates) - 1   # none after the last attempt
assert rx.info["memory"] == rx.info["reflections"][-1:]
assert all(r in rx.info["prompts"][j + 1] for j, r in enumerate(rx.info["reflections"]))
print("reflexion's bill:", rx.cost)

# %% [markdown]
# ## A learned refiner: the corrector
#
# Instead of re-sampling from the error, the refiner can be a model trained to rewrite a
# solution, $p_\theta(y^{(t)} \mid x, y^{(t-1)}, z^{(t)})$. `scripts/train_corrector.py`
# fine-tuned the target into `tinyworld-corrector` with the self-corrective loop (Welleck et
# al., 2023): round 1 pairs each
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
    n = card["problems"]
    n_wrong = round(n * (1 - card["sample_accuracy"]))
    count = lambda frac, of: round(frac * of)          # the card's fractions, back to counts
    hits = lambda k, m: [True] * k + [False] * (m - k)
    fix, fresh = count(card["fixed_of_wrong"], n_wrong), count(card["resample_fixes_wrong"], n_wrong)
    kept = count(card["kept_of_correct"], n - n_wrong)
    gate_ok = count(card["accuracy_correct_if_wrong_oracle"], n)
    gate_fresh = count(card["accuracy_resample_if_wrong_oracle"], n)

    def newcombe(k1, n1, k2, n2):
        """95 % interval of p1 - p2 for two independent proportions (Newcombe's hybrid score
        interval, from the two Wilson intervals): conservative for the same problems."""
        a, b = stats.accuracy(hits(k1, n1)), stats.accuracy(hits(k2, n2))
        p1, p2 = k1 / n1, k2 / n2
        return (p1 - p2 - math.hypot(p1 - a.low, b.high - p2),
                p1 - p2 + math.hypot(a.high - p1, p2 - b.low))

    d_fix, d_gate = newcombe(fix, n_wrong, fresh, n_wrong), newcombe(gate_ok, n, gate_fresh, n)
    print(f"held-out card ({n} problems), one greedy correction of a temperature-1 sample:\n"
          f"  fixes {stats.accuracy(hits(fix, n_wrong))} of the wrong ones; a fresh sample "
          f"instead {stats.accuracy(hits(fresh, n_wrong))}; difference [{d_fix[0]:+.3f}, "
          f"{d_fix[1]:+.3f}]\n  keeps {stats.accuracy(hits(kept, n - n_wrong))} of the right ones\n"
          f"  called only where the answer key says wrong: accuracy {card['sample_accuracy']:.3f} "
          f"-> {gate_ok}/{n} = {gate_ok / n:.3f} (a fresh sample instead: {gate_fresh}/{n} = "
          f"{gate_fresh / n:.3f}); difference [{d_gate[0]:+.3f}, {d_gate[1]:+.3f}]")
    display(views.refinement_figure(learned))
else:
    print("tinyworld-corrector was trained on TinyWorld's arithmetic only; with a corrector of "
          "your own: meta.refine(prompt, start, meta.outcome_feedback(task), "
          "meta.corrector(meta.LMGenerator(its_lm, greedy=True), task=task))")

# %% [markdown]
# On TinyWorld, with the verifier as the gate nothing happens: it gives y(0) P(correct) just
# above its threshold of ½ and lets it through — the false pass seen above. With the answer
# key as the gate the corrector runs (figure): it rewrote the solution in another order and got
# past the slip of y(0) (`1752+281=1033`), then made a new one in the last subtraction (855
# instead of 755), and its second try changed nothing.
#
# On average (the model card's held-out measurement, printed above) the corrector learned the
# target's typical slips: it turns more wrong samples into right ones than a fresh sample
# would (the self-corrective loop's claim, Welleck et al., 2023), and the interval of the
# difference excludes 0. It is not an oracle, though: it also rewrites some right solutions
# into wrong ones (it keeps clearly fewer than all of them), so it is worth calling only where
# something says the solution is wrong. With the answer key as that gate it ends ahead of
# resampling, but by a margin the card's totals cannot resolve (the interval is computed as if
# the two were independent samples, which wastes the pairing; the card does not store
# per-problem results). In the sweep below the gate is the learned verifier, which makes
# mistakes of its own.

# %% tags=["claim"]
if SPEAKS:   # claims about TinyWorld's corrector: this y(0), and its model card
    v_gate, k_gate = gated["verifier"], gated["answer key"]
    assert v_gate.info["stopped"] == "feedback: done" and len(v_gate.candidates) == 1
    assert k_gate.info["stopped"] == "no change" and len(k_gate.candidates) == 2
    assert "1752+281=1033" not in k_gate.candidates[1].text
    assert (str(k_gate.answer), str(problem.reference)) == ("855", "755"), k_gate.answer
    for frac, k, m in ((card["fixed_of_wrong"], fix, n_wrong), (card["kept_of_correct"], kept,
                       n - n_wrong), (card["accuracy_correct_if_wrong_oracle"], gate_ok, n)):
        assert abs(frac - k / m) < 1e-3, (frac, k, m)          # the counts behind the card
    assert d_fix[0] > 0, d_fix                                  # more fixes than a fresh sample
    assert stats.accuracy(hits(kept, n - n_wrong)).high < 1     # breaks some right ones
    assert d_gate[0] <= 0 < d_gate[1], d_gate                   # not resolved from totals alone
    print(f"fixes minus a fresh sample's [{d_fix[0]:+.3f}, {d_fix[1]:+.3f}] excludes 0; gated "
          f"minus resampling [{d_gate[0]:+.3f}, {d_gate[1]:+.3f}] contains 0")

# %% [markdown]
# ## Environment feedback: programs and an interpreter (eqs. 46–47)
#
# When the feedback comes from an environment, the survey splits z into the environment's
# observation $\tilde{z}$ (here: what the interpreter prints or the error it raises) and
# optional feedback $\bar{z}$ generated about it:
#
# $$\bar{z}^{(t)} \sim h_\theta\big(\bar{z} \mid P_{\text{feedback}}(x, y^{(<t)},
#   \tilde{z}^{(\le t)}, \bar{z}^{(<t)})\big), \qquad (46)$$
#
# $$y^{(t)} \sim g_\theta\big(y \mid P_{\text{refine}}(x, y^{(<t)}, \tilde{z}^{(\le t)},
#   \bar{z}^{(\le t)})\big). \qquad (47)$$
#
# Here there is no $\bar{z}$: the observation itself is the feedback. In the `Code:` format the
# model writes a straight-line Python program; a program is only ever run in the sandbox
# (`workbench.tools.run_python`). At temperature 0.8 the target's programs for this problem
# all print the right value (below), so we sample at 1.5 to get broken ones. The interpreter
# is the environment: its error message (localised to a line by the traceback), or with a
# test the wrong output, is the feedback z; the refiner regenerates from the failing line at
# 0.8.
#
# On a code task (HumanEval, MBPP) the reply is the program and the test is the problem's own
# unit tests, `meta.execution_feedback(task=task)`: the source of the loop above. Its message on
# each of the 8 first samples is shown instead. (`Code:` is TinyWorld's format; on another task
# that is not code there is no program to run.)

# %%
if TINYWORLD:
    code_prompt = f"Code: {problem.question}\n"
    run = meta.execution_feedback()                       # errors, and output != expected value
    cool = sampler.generate(code_prompt, 8, seed=SEED)    # temperature 0.8
    cool_ok = sum(run(code_prompt, [p.text], []).done for p in cool)
    print(f"at temperature 0.8: {cool_ok} of {len(cool)} programs print the right value")
    hot = meta.LMGenerator(lm, stop=fmt.stop, adapters=[lambda x: adapters.temperature(x, 1.5)],
                           max_new_tokens=160)
    programs = hot.generate(code_prompt, 8, seed=SEED)
    fb = [run(code_prompt, [p.text], []) for p in programs]
    print("at temperature 1.5:")
    for z in fb:
        print(" ", z.text[:70])
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

# %% tags=["claim"]
if SPEAKS:   # this problem, TinyWorld's target: programs at 0.8 are right, at 1.5 some are not
    assert cool_ok == len(cool), cool_ok
    assert sum(not z.done for z in fb) >= 1 and code.info["feedback"][-1]["done"], fb
    print(f"0.8: {cool_ok}/{len(cool)} right; 1.5: {sum(not z.done for z in fb)} broken; "
          "the interpreter loop ends accepted")

# %% [markdown]
# ### Execution results for reranking, not refining: LEVER
#
# The interpreter's answer can also rank N programs instead of repairing one. LEVER (Ni et
# al., 2023; survey §4.2.1) runs every sampled program, r = E(y), and scores it by the model's
# probability times a verifier that reads the program *with its result*; programs that print
# the same result pool their probability:
#
# $$S(r) = \log \sum_{y:\, E(y) = r} p_\theta(y \mid x)\, P_v(\text{correct} \mid x, y, r), \qquad r^* = \arg\max_r S(r).$$
#
# LEVER trains P_v; TinyWorld has no model trained to judge a program beside its output, so a
# stand-in verifier shows the mechanics: it trusts a program that ran (0.9) and distrusts one
# that crashed (0.1). Eight programs at temperature 1.5, as above, each run only in the sandbox:

# %%
show_source(meta.lever)


def trusts_a_run(prompt, text, result):
    """A stand-in P_v: 0.9 for a program that printed something, 0.1 for one that failed."""
    failed = result.startswith(("exit status", "timed out", "no program"))
    return (0.1 if failed else 0.9), Cost()


if TINYWORLD:
    lever = meta.lever(code_prompt, hot, trusts_a_run, meta.sandbox_executor(), 8, seed=SEED)
    for c, r in zip(lever.candidates, lever.info["executions"]):
        print(f"log p {c.logprob:7.1f}   prints {r[:60]!r}")
    print("S(r):", {r[:30]: round(v, 2) for r, v in lever.info["results"].items()})
    print(f"LEVER's result: {lever.answer}   (correct: {problem.reference})")
else:
    print("LEVER needs programs: set TASK = 'humaneval' or 'mbpp' and pass "
          "meta.sandbox_executor(extract=...) and a verifier (meta.judge_verifier)")

# %% [markdown]
# Programs that print the same value pool their probability, so the result backed by most of
# the model's mass wins, and the crashed programs drop out. A program sampled several times
# counts once in the pool: the five programs that print 755 here are one program, drawn five
# times. On this problem the single most probable program prints the right value too: a
# verifier earns its keep when the model's favourite program is wrong, which is what LEVER
# trains one to catch.

# %% tags=["claim"]
if SPEAKS:   # this problem, TinyWorld's target: LEVER's pooled result is the right value
    best_r = max(lever.info["results"], key=lever.info["results"].get)
    assert lever.answer == best_r == str(problem.reference), lever.info["results"]
    same = {c.text for c, r in zip(lever.candidates, lever.info["executions"]) if r == best_r}
    assert lever.info["executions"].count(best_r) == 5 and len(same) == 1   # "one program"
    assert lever.cost == sum(
        (c.cost for c in lever.candidates), Cost())
    print(f"LEVER picks {best_r}, printed by {lever.info['executions'].count(best_r)} of 8 "
          "programs")

# %% [markdown]
# ## The claim: extrinsic feedback helps, intrinsic feedback helps little
#
# TinyWorld's sweep: `scripts/sweep_refine.py` ran each loop for up to three rounds on the 104
# problems of the `hard` set (3–6 operations on 2- or 3-digit numbers; chapter 00 lists the
# sets), the first version y(0) being the same sample at temperature 0.8 for every loop, and
# recorded accuracy and the tokens billed after every round k. "No feedback" resamples a fresh
# solution every round and keeps the last one: the baseline every refiner must beat. Accuracies
# come with their 95 % Wilson intervals; every loop starts from the same first versions, so a
# loop's gain is a paired comparison with round 0, and two loops are compared on the same
# problems (`stats.paired`: bootstrap interval and McNemar's test).

# %%
sweep = json.loads((data_dir() / "results" / "refinement.json").read_text())
rows = sweep["summary"]
last = sweep["config"]["rounds"]
methods_k = list(dict.fromkeys(r["method"] for r in rows))
print(f"{len(sweep['config']['problems'])} problems (the '{sweep['config']['problem_set']}' "
      f"set), up to {last} rounds")
for m in methods_k:
    line = sorted((r for r in rows if r["method"] == m), key=lambda r: r["round"])
    print(f"{m:32s}", "  ".join(f"k={r['round']}: {r['accuracy']:.3f} ({r['total_tokens']:4.0f} tok)"
                                for r in line))
pareto_figure(rows, "total_tokens", title=f"TinyWorld, {len(sweep['config']['problems'])} "
              f"problems: accuracy (95 % Wilson) after k = 0..{last} rounds vs tokens billed")

# %% [markdown]
# Accuracy only counts the net effect. How many wrong first versions did three rounds fix, and
# how many right ones did they break? And is the net change more than noise?

# %%
hits_k = stats.hits_by(sweep["rows"], "method", "round")
gain = {m: stats.paired(hits_k[m, last], hits_k[m, 0]) for m in methods_k}
versus = {m: stats.paired(hits_k[m, last], hits_k["no feedback (resample)", last])
          for m in methods_k if m != "no feedback (resample)"}
for m in methods_k:
    g = gain[m]
    print(f"{m:32s} k={last}: {stats.accuracy(hits_k[m, last])}")
    print(f"{'':32s}   fixed {g.a_only:2d}, broken {g.b_only:2d}: k={last} - k=0 "
          f"{g.diff:+.3f} [{g.low:+.3f}, {g.high:+.3f}] {'resolved' if g.resolved else 'NOT resolved'}")
print()
for m, d in versus.items():
    print(f"{m:32s} - resampling, both at k={last}: {d}{'' if d.resolved else '  (not resolved)'}")
noise = stats.paired(hits_k["no feedback (resample)", 1], hits_k["no feedback (resample)", 0])
print(f"\nresampling, k=1 - k=0 (nothing but a new sample): {noise}")

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
# What TinyWorld's sweep shows (the survey's "Does refinement work?", §4.4; the cell below
# checks every number quoted here):
# - **First, the noise.** Resampling without feedback changes 80 % of the solutions and ends
#   where it started (51 of 104 right at k = 0 and at k = 3: 12 fixed, 12 broken); after one
#   round it had dropped 9 points (42 of 104) with nothing but a new sample, a change McNemar's
#   test does not resolve. A few points either way is what "no information" looks like here.
# - **Extrinsic feedback works, and the data resolve it.** The calculator (where *and* how)
#   takes the first versions from 51 to 75 right (24 fixed, none broken), almost all of it in the
#   first round, for 202 tokens per problem — less than half of what resampling bills (492).
#   The exact step checker (where, not how) fixes 31 and breaks none (82 right), gaining round
#   after round as the refiner re-samples from the flagged line; its lead over the calculator
#   (+7 points) is *not* resolved. The answer key (only *whether*, with a fresh sample each
#   round: best-of-k with an oracle's stopping rule) fixes 18 (69 right) — resolved, and resolved
#   below the step checker, which also says where.
# - **Learned and intrinsic feedback do not, on these problems.** The learned verifier (9 fixed,
#   6 broken), the verifier with the learned corrector as refiner (8 fixed, 4 broken) and
#   intrinsic self-feedback (6 fixed, 5 broken) all end within noise of their start and of
#   resampling, while billing the verifier's reading of every version (716 and 817 tokens) or
#   the model's own check (402). Self-feedback brings no new information (Huang et al., 2024);
#   the verifier's false alarms throw away right solutions and its false passes keep wrong ones
#   (Havrilla et al., 2024).
#
# %% tags=["claim"]
if TINYWORLD and formats.speaks_tinyworld(lm):   # the claims above are TinyWorld's sweep
    right = lambda m, k: sum(hits_k[m, k])
    assert all(right(m, 0) == 51 for m in methods_k) and len(sweep["config"]["problems"]) == 104
    rs = "no feedback (resample)"
    assert (right(rs, last), gain[rs].a_only, gain[rs].b_only, right(rs, 1)) == (51, 12, 12, 42)
    assert not noise.resolved
    for m, n_right, fixed in (("calculator (tool)", 75, 24), ("step checker (exact)", 82, 31),
                              ("answer key (oracle)", 69, 18)):
        assert (right(m, last), gain[m].a_only, gain[m].b_only) == (n_right, fixed, 0), m
        assert gain[m].resolved and versus[m].resolved and versus[m].low > 0, m
    for m, fixed, broken in (("verifier (learned)", 9, 6),
                             ("corrector + verifier (learned)", 8, 4),
                             ("self-feedback (intrinsic)", 6, 5)):
        assert (gain[m].a_only, gain[m].b_only) == (fixed, broken), m
        assert not gain[m].resolved and not versus[m].resolved, m
    calc = "calculator (tool)"
    assert right(calc, 1) - right(calc, 0) >= 0.9 * (right(calc, last) - right(calc, 0))
    assert not stats.paired(hits_k["step checker (exact)", last], hits_k[calc, last]).resolved
    assert stats.paired(hits_k["step checker (exact)", last],
                        hits_k["answer key (oracle)", last]).resolved
    bill = {r["method"]: round(r["total_tokens"]) for r in rows if r["round"] == last}
    assert (bill[calc], bill[rs], bill["self-feedback (intrinsic)"]) == (202, 492, 402), bill
    assert (bill["verifier (learned)"], bill["corrector + verifier (learned)"]) == (716, 817), bill
    print("The claims hold.")
else:
    print("The claims above are about TinyWorld's target and its sweep.")

# %% [markdown]
# ## Key takeaways
#
# - Refinement is a triple $(g_0, h, g)$ (eqs. 41–43) with a stopping rule; what it can add
#   is bounded by what the information source h knows that the generator does not.
# - Sources differ in *whether*, *where* and *how*: a tool that re-does the work (calculator,
#   interpreter) localises the error and can correct it; an exact checker localises it; an
#   answer key or a verifier only says whether — and a learned verifier can be wrong.
# - Self-feedback (eq. 45) draws its opinion from the same p_θ: it can catch slips that are
#   easier to see in isolation, but it brings no new information and costs extra tokens
#   (Table 5's self-feedback row).
# - Count *fixed* and *broken* separately, on the same problems, and compare with a
#   resampling baseline: a net change of a few problems can be noise.
#
# ## Further reading
#
# - Welleck et al. (2024), *From Decoding to Meta-Generation*, §4.4 (refinement, eqs. 41–47,
#   "Does refinement work?") and §6.1 (Table 5).
# - Welleck et al. (2023), *Generating sequences by learning to self-correct* (a learned
#   corrector, trained by the self-corrective loop).
# - Madaan et al. (2023), *Self-Refine: iterative refinement with self-feedback*; Shinn et al.
#   (2023), *Reflexion: language agents with verbal reinforcement learning*.
# - Chen et al. (2024), *Teaching large language models to self-debug* (Self-Debugging: an
#   interpreter's feedback on code).
# - Huang et al. (2024), *Large language models cannot self-correct reasoning yet*; Tyen et al.
#   (2024), *LLMs cannot find reasoning errors, but can correct them given the error location*.
# - Havrilla et al. (2024), *GLoRe: when, where, and how to improve LLM reasoning via global and
#   local refinements* (a learned verifier as the gate, and its false positives).
#
# ## Exercises
#
# Each exercise has a cell for your answer and, under it, a **check cell** that says whether
# the answer is right or what to reconsider (the student notebooks of
# `scripts/student_notebooks.py` have the answer cells blank). Exercises 1–3 use TinyWorld's
# arithmetic tools whatever `TASK` is.
#
# **Exercise 1** (predict, then run). Take the reference solution of
# `ar.Problem("584*3+185+96-142*9")` (`.solution()`) and make its **second step** wrong: add 1
# to the result of the operation on that line. **Before running anything**, predict on which
# line each source will say the first error is. Then ask the calculator
# (`meta.calculator_feedback()`) and the step checker (`meta.step_feedback(arith)`) for
# feedback, and store the line each localises in `calc_line` and `step_line`, **counting lines
# from 1** as the messages do.

# %% tags=["solution"]
arith = wb.tasks.load("tinyworld-arithmetic")   # the tools of exercises 1-3 exist only here
hard = ar.Problem("584*3+185+96-142*9")
### BEGIN SOLUTION
lines = hard.solution().split("\n")
head, tail = lines[1].split("=", 1)
result, _, rest = tail.partition(",")
lines[1] = f"{head}={int(result) + 1}" + (f",{rest}" if rest else "")
broken = "\n".join(lines)
calc_line = meta.calculator_feedback()(hard.prompt(), [broken], []).first_error + 1
step_line = meta.step_feedback(arith)(hard.prompt(), [broken], []).first_error + 1
### END SOLUTION

# %% tags=["check"]
with checks.exercise(1):
    checks.answered(calc_line=calc_line, step_line=step_line)
    ref = hard.solution().split("\n")
    m = re.match(r"^(\d+[+\-*]\d+)=(-?\d+)(.*)$", ref[1])
    bad = "\n".join(ref[:1] + [f"{m.group(1)}={int(m.group(2)) + 1}{m.group(3)}"] + ref[2:])
    zc = meta.calculator_feedback()(hard.prompt(), [bad], [])
    zs = meta.step_feedback(arith)(hard.prompt(), [bad], [])
    for name, mine, z in (("calc_line", calc_line, zc), ("step_line", step_line, zs)):
        checks.expect(isinstance(mine, (int, np.integer)), f"{name} = {mine!r}: store a line "
                      "number (an int).")
        checks.expect(mine != z.first_error, f"{name} = {mine!r} is Feedback.first_error, a "
                      "0-based index; the exercise counts lines from 1, like the messages.")
        checks.expect(mine == z.first_error + 1, f"{name} = {mine!r}: the second step of the "
                      "solution is wrong and the steps before it are right; on which line, "
                      "counting from 1, does the first wrong line sit?")
    print("calculator:", zc.text, "| step checker:", zs.text)

# %% [markdown]
# **Exercise 2** (predict, then run). The calculator only re-does the operation written on a
# line. For `ar.Problem("12+7*3-5")`, a first step `12+7=19, 19*3-5` computes correctly but
# breaks the order of operations (`swapped` below). Predict, then check: does the calculator
# accept the solution? Does the step checker? Store `calc_done` and `step_done` (the
# feedback's `.done`), and in `step_flag` the line (counting from 1) the step checker flags,
# or `None` if it flags none.

# %% tags=["solution"]
easy = ar.Problem("12+7*3-5")
swapped = "12+7=19, 19*3-5\n19*3=57, 57-5\n57-5=52\nA: 52"
### BEGIN SOLUTION
calc_done = meta.calculator_feedback()(easy.prompt(), [swapped], []).done
z_step = meta.step_feedback(arith)(easy.prompt(), [swapped], [])
step_done = z_step.done
step_flag = None if z_step.first_error is None else z_step.first_error + 1
### END SOLUTION

# %% tags=["check"]
with checks.exercise(2):
    checks.answered(calc_done=calc_done, step_done=step_done, step_flag=step_flag)
    zc = meta.calculator_feedback()(easy.prompt(), [swapped], [])
    zs = meta.step_feedback(arith)(easy.prompt(), [swapped], [])
    checks.expect(bool(calc_done) == zc.done, f"calc_done = {calc_done!r}: the calculator "
                  "re-does 12+7, 19*3 and 57-5 as written. Are those results right?")
    checks.expect(bool(step_done) == zs.done, f"step_done = {step_done!r}: the step checker "
                  "compares each step with what the expression allows next. Which operation "
                  "must come first in 12+7*3-5?")
    want = None if zs.first_error is None else zs.first_error + 1
    checks.expect(step_flag != zs.first_error or want == zs.first_error, f"step_flag = "
                  f"{step_flag!r} is the 0-based index; count lines from 1.")
    checks.expect(step_flag == want, f"step_flag = {step_flag!r}: which is the first line "
                  "that does an operation the order of operations does not allow yet?")
    print("calculator:", zc.text, "| step checker:", zs.text)

# %% [markdown] tags=["solution"]
# *Think about it:* the calculator is an exact tool, yet it accepts a wrong solution here.
# What *kind* of error can a source that re-does each written operation never see, and which
# source in the table above would you pair it with to cover that gap? What would that cost?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* The calculator checks *local* arithmetic: each written `a op b = c`. It
# cannot see a wrong *choice* of operation (order of operations), a miscopied rest of the
# expression, or a plan that solves the wrong problem: every line it checks is locally right.
# The exact step checker sees these because it compares each step with the problem (it knows
# the expression), not only with itself. In general, a tool's feedback covers exactly what the
# tool verifies; a process check needs a model of the task. Pairing the calculator (where +
# how for slips) with a step-level check (where for plan errors) costs one more feedback call
# per round (a few external tokens here; a learned PRM would cost C_s per round and be
# imperfect). Tyen et al. (2024) make the related point that models correct errors well once
# told *where* they are.
# <!-- END SOLUTION -->

# %% [markdown]
# **Exercise 3** (implement it). Write the calculator's feedback, `my_calculator(prompt,
# versions, feedbacks)`: look at the latest version (`versions[-1]`), line by line; on a line
# of the form `a op b=c...` (`re.match(r"^\s*(\d+)([+\-*])(\d+)=(-?\d+)", line)`), re-do
# `a op b` (Python's `eval` is fine on two integers and one operator). At the first line whose
# written result `c` is wrong, return `meta.Feedback(False, message, i, fix)` with `i` the
# **0-based** line index (what the refiner slices with) and `fix` the corrected operation
# `"a op b=<right result>"`, e.g. `"1752+281=2033"`. If every operation checks out, return
# `meta.Feedback(True, "every operation checks out")` (the package's version also checks the
# answer line; leave that out).

# %% tags=["solution"]
def my_calculator(prompt, versions, feedbacks):
    ### BEGIN SOLUTION
    for i, line in enumerate(versions[-1].split("\n")):
        m = re.match(r"^\s*(\d+)([+\-*])(\d+)=(-?\d+)", line)
        if m is None:
            continue
        a, op, b, written = m.groups()
        right = eval(f"{a}{op}{b}")
        if str(right) != written:
            return meta.Feedback(False, f"line {i + 1}: {a}{op}{b} is {right}, not {written}", i,
                                 f"{a}{op}{b}={right}")
    return meta.Feedback(True, "every operation checks out")
    ### END SOLUTION

# %% tags=["check"]
with checks.exercise(3):
    def slip(text, k):   # the k-th operation line of text, its result off by one
        out = text.split("\n")
        m = re.match(r"^(\d+[+\-*]\d+)=(-?\d+)(.*)$", out[k])
        out[k] = f"{m.group(1)}={int(m.group(2)) - 1}{m.group(3)}"
        return "\n".join(out)
    hard_ref = ar.Problem("584*3+185+96-142*9").solution()
    easy_ref = ar.Problem("12+7*3-5").solution()
    texts = [hard_ref, slip(hard_ref, 0), slip(hard_ref, 3), easy_ref, slip(easy_ref, 2),
             "12+7=19, 19*3-5\n19*3=57, 57-5\n57-5=52\nA: 52"]
    if TINYWORLD:
        texts.append(y0.text)
    for text in texts:
        mine = my_calculator("Q: ...\n", [text], [])
        ref = meta.calculator_feedback()("Q: ...\n", [text], [])
        shown = text.replace("\n", " | ")
        checks.expect(isinstance(mine, meta.Feedback), f"my_calculator returned "
                      f"{type(mine).__name__}; return a meta.Feedback.")
        checks.expect(mine.done == ref.done, f"on {shown!r} your feedback says done="
                      f"{mine.done}: re-do every `a op b=c` line and compare with c.")
        checks.expect(ref.first_error is None or mine.first_error != ref.first_error + 1,
                      f"on {shown!r} first_error = {mine.first_error!r} counts from 1; "
                      "Feedback.first_error is the 0-based index the refiner slices with.")
        checks.expect(mine.first_error == ref.first_error, f"on {shown!r} first_error = "
                      f"{mine.first_error!r}: the index of the first line whose written "
                      "result is wrong (lines without an operation count too).")
        checks.expect(mine.fix == ref.fix or ref.done, f"on {shown!r} fix = {mine.fix!r}: "
                      "give the operation with its right result, `a op b=<value>`.")
    print(f"your calculator agrees with meta.calculator_feedback on {len(texts)} versions")

# %% [markdown]
# **Exercise 4** (how big is noise?). In the sweep, the "no feedback (resample)" loop draws a
# fresh solution every round from the *same* distribution, so its true accuracy is the same
# in every round: any change from round 0 to the last round is noise. From `sweep["rows"]`,
# compare that loop's last round with its round 0 problem by problem: store in
# `resample_fixed` the problems wrong at round 0 and right at the last round, in
# `resample_broken` the reverse, and in `resample_resolved` whether the paired 95 % interval
# of (last − round 0) excludes 0 (`stats.paired`; `stats.hits_by(sweep["rows"], "method",
# "round")` lists each loop's per-problem hits by round, in the same problem order).

# %% tags=["solution"]
### BEGIN SOLUTION
by_round = stats.hits_by(sweep["rows"], "method", "round")
last = max(r for m, r in by_round if m == "no feedback (resample)")
d = stats.paired(by_round["no feedback (resample)", last], by_round["no feedback (resample)", 0])
resample_fixed, resample_broken = d.a_only, d.b_only
resample_resolved = d.low > 0 or d.high < 0
### END SOLUTION

# %% tags=["check"]
with checks.exercise(4):
    checks.answered(resample_fixed=resample_fixed, resample_broken=resample_broken,
                    resample_resolved=resample_resolved)
    hits = stats.hits_by(sweep["rows"], "method", "round")
    k = max(r for m, r in hits if m == "no feedback (resample)")
    ref = stats.paired(hits["no feedback (resample)", k], hits["no feedback (resample)", 0])
    checks.expect((resample_fixed, resample_broken) != (ref.b_only, ref.a_only) or
                  ref.a_only == ref.b_only, "resample_fixed and resample_broken are swapped: "
                  "fixed = wrong at round 0, right at the last round.")
    checks.expect((resample_fixed, resample_broken) == (ref.a_only, ref.b_only),
                  f"resample_fixed = {resample_fixed!r}, resample_broken = {resample_broken!r}: "
                  f"compare round 0 with the last round ({k}) of the resample loop, problem by "
                  "problem.")
    checks.expect(isinstance(resample_resolved, (bool, np.bool_)), f"resample_resolved = "
                  f"{resample_resolved!r}: store True or False.")
    checks.expect(bool(resample_resolved) == (ref.low > 0 or ref.high < 0), f"resample_resolved "
                  f"= {resample_resolved!r}: is 0 inside the interval (low, high) of "
                  "stats.paired(last round, round 0)?")
    print(f"{ref.n} problems: fixed {ref.a_only}, broken {ref.b_only}; last - first "
          f"{ref.diff:+.3f} [{ref.low:+.3f}, {ref.high:+.3f}]")

# %% [markdown] tags=["solution"]
# *Think about it:* the resample loop moved by a few problems with nothing changed. Before you
# trust "loop A fixes more than loop B" on this sweep, what would you want to see?
# <!-- BEGIN SOLUTION -->
#
# *Teacher's note.* The resample baseline is a built-in noise gauge: every round is another
# draw from the same distribution, so its round-to-round moves show how much accuracy moves
# by chance on this many problems. A claimed difference between two loops should (1) be
# compared problem by problem (fixed vs broken, a paired interval or McNemar's test on the
# discordant problems), (2) be larger than the resample loop's own swings, and (3) hold on
# more problems or other seeds. Differences of one to three problems on a few dozen problems
# are not evidence; large, consistent ones (many fixed, none broken) can be.
# <!-- END SOLUTION -->
