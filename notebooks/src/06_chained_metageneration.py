# %% [markdown]
# # 06 · Chained meta-generation: thoughts, decomposition, tools, rewriting
#
# {badges}
#
# **What you will learn**
# - that a chain of generator calls is itself a generator, y = f₃ ∘ f₂ ∘ f₁ (survey §4.1,
#   eqs. 24–26), and how to build one from any generators;
# - **chain-of-thought** as the two-step chain z ~ g(z | x), y ~ g(y | x, z) (eq. 27), and why
#   the intermediate z matters;
# - **problem decomposition** (least-to-most style): a decomposer and a solver;
# - **tools inside generation** (§5.2): a calculator whose result is spliced into the sequence
#   mid-decoding, and a program run in a sandbox;
# - **input rewriting** before generation, and what each chain costs.
#
# Runs in about 60 s on a 2-core CPU. Prerequisites: chapters 01–03.
#
# **Your own model and task.** `MODEL` takes any causal LM (a local directory or a Hub id) and
# `TASK` any task of `workbench.tasks` (`"gsm8k"`, `"math"`, or your own file, see
# `docs/real-models.md`). Chain-of-thought and direct answering run on every task; least-to-most,
# the calculator, the program format and the word rewriting use TinyWorld's parser and formats,
# and say so instead of running on another task.

# %%
# SETUP

# %%
MODEL = "tinyworld"   # or a local directory / HF causal-LM id
TASK = "tinyworld-arithmetic"   # or "gsm8k", "math", ... (workbench.tasks; see docs/real-models.md)
SEED = 0
PER_CELL = 2          # TinyWorld: problems per difficulty cell in the measurements below
N_PROBLEMS = 30       # another task: its first N_PROBLEMS problems

# %%
import numpy as np
import workbench as wb
from workbench import decoding, meta
from workbench.tinyworld import formats
from workbench.tinyworld.tasks import arithmetic_tasks
from workbench.tools import run_python
from widgets import chains as views

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # its parser, calculator and words exist only there
greedy = meta.LMGenerator(lm, greedy=True, stop=fmt.stop)
if TINYWORLD:
    held_out = [t for i, t in enumerate(arithmetic_tasks()) if i % 24 < PER_CELL]
    problems = [task.problem(t["expression"]) for t in held_out]
    print(len(problems), "held-out problems from",
          sorted({t["difficulty"] for t in held_out})[:3], "...")
else:
    problems = task.problems[:N_PROBLEMS]
    print(len(problems), "problems of", task)

# %% [markdown]
# ## Chain-of-thought: the thought z is what makes the answer possible
#
# The target was trained on worked solutions. Asked for the answer directly (`A: ` right after
# the question), it has to do all the arithmetic in one step; with the chain, it first writes
# the steps z, then reads the answer off them.

# %%
problem = task.problem("12+7*3-5") if TINYWORLD else problems[0]
reasoner = meta.LMGenerator(lm, greedy=True, stop=(fmt.marker.strip(),) + fmt.stop)
cot = meta.chain_of_thought(fmt.prompt(problem), reasoner, greedy, marker=fmt.marker, seed=SEED)
print(cot.text)

def direct_answer(p):
    """The answer asked for right away: the prompt, then the answer marker (no thought)."""
    g = decoding.greedy(lm, fmt.prompt(p) + fmt.marker, max_new_tokens=8)
    return meta.TextOutput(fmt.marker + g.text.split("\n")[0], g.cost)

print("\ndirect answer:", direct_answer(problem).text, "| correct:", problem.reference)

# %%
def accuracy(run, problems=problems):
    """Fraction correct and mean tokens billed (input + output + external) of a chain."""
    hits, tokens = [], []
    for p in problems:
        r = run(p)
        hits.append(fmt.check(p, r.text))
        tokens.append(r.cost.total_tokens)
    return float(np.mean(hits)), float(np.mean(tokens))

results = {}
results["direct answer"] = accuracy(direct_answer)
results["chain-of-thought"] = accuracy(lambda p: meta.chain_of_thought(
    fmt.prompt(p), reasoner, greedy, marker=fmt.marker, seed=SEED))
print({k: round(v[0], 3) for k, v in results.items()})

# %% [markdown]
# ## Decomposition: least-to-most
#
# Least-to-most prompting first decomposes a problem into sub-questions, then answers them in
# order, each answer feeding the next question. Here the decomposer is TinyWorld's arithmetic
# parser (a deterministic generator f₁, `formats.ArithmeticDecomposer`) and the solver is the
# model asked one-operation questions. On another task, the decomposer would be a prompted model
# that writes the sub-questions; `meta.least_to_most` takes any object with the same four methods.

# %%
if TINYWORLD:
    parser = formats.ArithmeticDecomposer()
    l2m = meta.least_to_most(fmt.prompt(problem), greedy, parser, seed=SEED)
    print(l2m.text, "\n", l2m.info)
    results["least-to-most"] = accuracy(lambda p: meta.least_to_most(fmt.prompt(p), greedy, parser))
else:
    print("least-to-most needs a decomposer for", task.name, "(TinyWorld's is its parser)")

# %% [markdown]
# ## A tool inside generation (§5.2)
#
# In the `Q (calc):` format the model writes each operation as a call, `[CALC]7*3[/CALC]`.
# `meta.tool_generate` stops decoding when a call closes, runs the calculator, appends its result
# (`=21`) to the sequence and continues from the same KV cache: the model only has to copy.

# %%
if TINYWORLD:
    calc_fmt = formats.arithmetic_format(lm, calc=True)
    calc = meta.tool_generate(lm, calc_fmt.prompt(problem))
    print(calc.text)
    print("tool calls:", calc.info["tool_calls"])
    results["calculator tool"] = accuracy(lambda p: meta.tool_generate(lm, calc_fmt.prompt(p)))
    results["calc format, no tool"] = accuracy(lambda p: decoding.greedy(
        lm, calc_fmt.prompt(p), max_new_tokens=200))
else:
    print("the [CALC] format is TinyWorld's; a Hub model would need a prompt that teaches it")

# %% [markdown]
# ## A program as the chain's middle step, run in a sandbox
#
# Program-aided solving: the model translates the problem into a straight-line Python program,
# and an interpreter computes the answer. Generated code is only ever executed by
# `workbench.tools.run_python`, a separate process with CPU, memory, output and process limits,
# no network and its own directory.

# %%
def program_aided(p):
    g = decoding.greedy(lm, f"Code: {p.question}\n", max_new_tokens=80)
    r = run_python(g.text, timeout=5)
    return meta.TextOutput(f"A: {r.stdout.strip()}" if r.ok else r.feedback, g.cost)

if TINYWORLD:
    code = decoding.greedy(lm, f"Code: {problem.question}\n", max_new_tokens=80).text
    print(code)
    print("sandbox says:", run_python(code).feedback)
    results["program + sandbox"] = accuracy(program_aided)
else:
    print("the `Code:` format is TinyWorld's; chapter 09 runs programs against a code task's tests")

# %% [markdown]
# ## Rewriting the input first
#
# Chains can also prepare the input. The model has never seen a problem in words, so asking it
# directly fails; a first call rewrites the words into the expression (`Words: ... Q: ...` is a
# format it knows), and a second call solves the rewritten problem (eq. 25 with two stages).

# %%
from workbench.tinyworld.worlds import expression_words
rewrite = meta.LMGenerator(lm, greedy=True, stop="\n", max_new_tokens=40)
stages = [(rewrite, "Words: {x}\nQ: "), (greedy, lambda x, y: f"Q: {y.strip()}\n")]
if TINYWORLD:
    words = expression_words(problem.question)
    two_step = meta.chain(words, stages)
    print(words, "->", two_step.candidates[0].text.strip(), "->", fmt.answer(two_step.text))
    small = [p for p, t in zip(problems, held_out) if t["n_ops"] <= 3 and t["digits"] <= 2]
    results["words, direct"] = accuracy(lambda p: decoding.greedy(
        lm, f"Q: {expression_words(p.question)}\n", max_new_tokens=200), small)
    results["words, rewrite then solve"] = accuracy(
        lambda p: meta.chain(expression_words(p.question), stages), small)
else:
    print("the `Words:` format is TinyWorld's: a GSM8K question is already in words")

# %% [markdown]
# ## All chains side by side
#
# Accuracy on the same held-out problems (the two "words" rows use the problems with at most
# three operations and two-digit numbers), and the tokens each chain billed per problem.

# %%
for k, (acc, tok) in results.items():
    print(f"{k:26s} accuracy {acc:.3f}   tokens/problem {tok:6.1f}")
views.chains_figure(results)

# %% [markdown]
# What to take away:
# - the **thought** z carries the computation: without it, accuracy collapses;
# - handing exact work to a **tool** (the calculator, or an interpreter running a program)
#   removes the model's arithmetic errors, at the price of a few external tokens;
# - **decomposition** turns a hard problem into easy ones the model solves reliably, at the
#   price of more calls (and prompt tokens);
# - **rewriting** turns an input the model cannot read into one it can.
#
# The stage-by-stage view of a chain, from its trace:

# %%
with wb.trace() as t:
    if TINYWORLD:
        meta.least_to_most(fmt.prompt(task.problem("34+5*6-12")), greedy, parser)
    else:
        meta.chain_of_thought(fmt.prompt(problem), reasoner, greedy, marker=fmt.marker)
views.stages_figure(t.events)

# %% [markdown]
# ## Exercises
#
# 1. Run the two-stage rewriting chain on `"twenty minus three times four"`. How many
#    generator calls did it make, and how many input tokens did it bill? Store them in
#    `calls` and `input_tokens`.
# 2. How many external tokens did the calculator add for `"12+7*3-5"`? Store it in
#    `calc_external`.
# 3. Which chain in the table had the highest accuracy? Store its name in `best_chain`.

# %%
run = meta.chain("twenty minus three times four", stages)
calls = run.cost.calls
input_tokens = run.cost.input_tokens
calc_external = calc.cost.external_tokens if TINYWORLD else None
best_chain = max(results, key=lambda k: results[k][0])

# %%
assert calls == len(run.candidates) == 2
assert input_tokens == sum(len(lm.encode(p)) for p in run.info["prompts"])
if TINYWORLD:
    assert calc_external == sum(len(lm.encode(c["result"], bos=False))
                                for c in calc.info["tool_calls"])
assert results[best_chain][0] == max(a for a, _ in results.values())
print("All three answers are right.")
