# %% [markdown]
# # 07 · Parallel meta-generation: best-of-N, voting, MBR, rejection sampling
#
# {badges}
#
# **What you will learn**
# - how a *meta-generator* calls a generator N times and then **reranks** (best-of-N, noisy
#   channel) or **transforms** (majority vote, weighted vote, MBR, LLM aggregation) the N-best
#   list (survey §4.2, eqs. 28–38);
# - that **MBR with a match utility is voting** (eq. 38), checked numerically;
# - how **rejection sampling** draws exactly from a target distribution, with acceptance rate
#   Z/M (§4.2.3), and what the **best-of-N policy** does to the distribution (eq. 39);
# - what each method **costs** in tokens (Table 5, §6.1) and how accuracy **scales with N**
#   (§6.2, Figure 6), measured in TinyWorld.
#
# Runs in about 60 s on a 2-core CPU (the scaling sweep is precomputed by
# `scripts/sweep_parallel.py`; a test re-runs a slice of it).
#
# **Your own model and task.** `MODEL` takes any causal LM (a local directory or a Hub id) and
# `TASK` any task of `workbench.tasks` (`"gsm8k"`, `"math"`, or your own file, see
# `docs/real-models.md`). Best-of-N, voting and MBR run on any task, with its own answer reader;
# off TinyWorld the verifier is your model asked as a judge (`rm.LLMJudge`), since TinyWorld's
# only knows its arithmetic. Rejection sampling and the best-of-N policy use TinyWorld's story
# grammar and JSON records with any model; the scaling sweep is TinyWorld's.

# %%
# SETUP

# %%
MODEL = "tinyworld"   # or a local directory / HF causal-LM id
TASK = "tinyworld-arithmetic"   # or "gsm8k", "math", ... (workbench.tasks; see docs/real-models.md)
SEED = 0

# %%
import json, math
import numpy as np
import workbench as wb
from workbench import adapters, meta, scoring
from workbench import reward_models as rm
from workbench.budget import BudgetExceeded
from workbench.paths import data_dir
from workbench.tinyworld import formats
from widgets import parallel as views

wb.seed_everything(SEED)
lm = wb.load(MODEL)
task = wb.tasks.load(TASK)
fmt = task.format(lm)   # bare for TinyWorld's models; few-shot or the chat template for others
TINYWORLD = task.name == "tinyworld-arithmetic"   # TinyWorld's verifier knows only its arithmetic
verifier = wb.load("tinyworld-verifier") if TINYWORLD else rm.LLMJudge(lm)   # else: your model judges
problem = task.problem("85-29+7*6") if TINYWORLD else task.problems[0]
prompt = fmt.prompt(problem)
# the right answer as fmt.answer reads one (TinyWorld's bare format reads it after "A: ")
correct = fmt.answer(fmt.marker + problem.reference if TINYWORLD else problem.reference)
print(prompt + "(correct answer:", problem.reference, ")")

# %% [markdown]
# ## Generators are values
#
# A meta-generator g(· | x, {g_1 … g_G}, φ) (eq. 23) takes generators as arguments. Here the
# sub-generator is ancestral sampling from the target at temperature 0.8 — but it could be any
# generator: beam search, a black-box API, or another meta-generator.

# %%
sampler = meta.LMGenerator(lm, adapters=[lambda s: adapters.temperature(s, 0.8)], stop=fmt.stop)
v = scoring.VerifierScorer(verifier)
bon = meta.best_of_n(prompt, sampler, v, n=12, seed=SEED)
flags = [fmt.check(problem, c.text) for c in bon.candidates]
print("answers:", [fmt.answer(c.text) for c in bon.candidates])
print("chosen:", bon.chosen, "->", fmt.answer(bon.text), "| cost:", bon.cost)
views.best_of_n_figure(bon, flags)

# %% [markdown]
# **Best-of-N** (Definition 5, eq. 28) keeps the candidate the scorer v likes most; here v is
# the learned verifier `tinyworld-verifier`, which estimates P(correct | x, y) (off TinyWorld:
# your model's p(Yes) when asked whether the solution is correct). Green bars are candidates
# that are really correct (the task's checker knows).
#
# **Majority voting** (eqs. 32–33) ignores scores and counts final answers; **weighted voting**
# (eq. 34) sums the verifier's scores per answer. Move the sliders: the widget re-samples and
# re-votes.

# %%
explorer = views.VotingExplorer(lm, prompt, correct=correct, scorer=v, seed=SEED,
                                stop=fmt.stop, answer_fn=fmt.answer)
explorer

# %%
mv = meta.majority_vote(prompt, sampler, n=16, seed=SEED, answer_fn=fmt.answer)
wv = meta.weighted_vote(prompt, sampler, v, n=16, seed=SEED, answer_fn=fmt.answer)
print("majority vote :", mv.answer, dict(mv.votes))
print("weighted vote :", wv.answer, {a: round(w, 2) for a, w in wv.votes.items()})
views.vote_figure(wv, correct=correct, title="Weighted vote over the same 16 samples")

# %% [markdown]
# ## MBR generalises voting (eq. 38)
#
# Minimum Bayes risk picks the hypothesis with the highest expected utility against an evidence
# set (eq. 37). With the utility u(y, y') = 𝟙[answer(y) = answer(y')] it *is* majority voting;
# weighting the evidence by v(y) gives weighted voting. Same samples, same winners:

# %%
same = meta.TextGenerator(lambda p, s, it=iter([c.text for c in mv.candidates]): next(it))
mbr = meta.mbr(prompt, same, meta.answer_match(fmt.answer), n=16)
print("MBR with a match utility:", fmt.answer(mbr.text), "| majority vote:", mv.answer)

# %% [markdown]
# ## Rejection sampling: exact samples from a target distribution
#
# To sample from q\*(y) ∝ q̃(y) when we can only sample from g, draw y ~ g and accept with
# probability q̃(y) / (M g(y)), where M g ≥ q̃ everywhere (Figure 5). The acceptance rate is Z/M,
# with Z the normaliser of q̃. TinyWorld's grammar knows Z exactly: take the true story
# distribution p\* as g and double the weight of every story with a dragon in it, so M = 2 and
# Z = 1 + P\*(dragon).

# %%
from workbench.tinyworld.worlds import story_grammar
import random
grammar = story_grammar()
p_star_gen = meta.TextGenerator(lambda p, s: (lambda t: (t, grammar.log_p_star(t)))(
    grammar.sample(random.Random(s))), "p*")
log_target = lambda x, o: o.logprob + (math.log(2) if " dragon" in o.text else 0.0)
with wb.trace() as t:
    rs = meta.rejection_sample("", p_star_gen, log_target, math.log(2), num_samples=200,
                               max_proposals=2000, batch=50, seed=SEED)
z = 1 + grammar.prob_contains(" dragon")
print(f"acceptance rate {rs.info['acceptance_rate']:.3f}  vs  Z/M = {z / 2:.3f}")
print(f"dragons among accepted: {np.mean([' dragon' in c.text for c in rs.candidates]):.3f}"
      f"  vs  exact {2 * (z - 1) / z:.3f}")
views.rejection_figure(t.events[:120], math.log(2))

# %% [markdown]
# The survey's own example: sampling **valid JSON** from the model (TinyWorld's records, asked
# of any model: bare for TinyWorld's, few-shot for others). Here q̃ = p_θ · 𝟙[valid] and
# g = p_θ, so M = 1 and a proposal is accepted exactly when it is valid. The acceptance rate is
# the model's validity rate; the tokens spent on rejected proposals are the price of exactness
# (chapter 05 compares this with constrained decoding). A model that almost never writes a
# valid record exhausts the proposal budget, and rejection sampling says so.

# %%
json_fmt = formats.json_format(lm)   # bare 'JSON:' for TinyWorld's models, few-shot otherwise
json_gen = meta.LMGenerator(lm, max_new_tokens=80, stop=json_fmt.stop)
try:
    js = meta.rejection_sample(json_fmt.prompt(), json_gen, meta.filter_target(
        lambda s: json_fmt.valid(s)[0]), 0.0, num_samples=10, max_proposals=200, seed=SEED)
    print(f"{js.info['accepted']} valid records from {js.info['proposals']} proposals "
          f"(acceptance {js.info['acceptance_rate']:.2f}); output tokens spent: {js.cost.output_tokens}")
    print(js.text)
except BudgetExceeded as e:   # this model (almost) never writes a valid record
    print("rejection sampling gave up:", e)

# %% [markdown]
# ## The best-of-N policy moves away from the model (eq. 39)
#
# Best-of-N with a stochastic generator is itself a generator, π_BoN. Its KL divergence from the
# base model is often quoted as log N − (N−1)/N. On a small output space we can compute π_BoN
# exactly: the model's next token after `"Story: The"`, rewarded by the exact p\*.

# %%
from workbench.tinyworld.grammar import TokenGrammar
ids = lm.encode("Story: The")
p = lm.next_logprobs([ids])[0].exp().double().numpy()
p /= p.sum()
pstar = TokenGrammar(grammar, lm.tokenizer).next_token_vector(ids, lm.vocab_size)
reward = pstar + 1e-9 * np.arange(len(p))        # distinct rewards: higher p* is better
ns = [1, 2, 4, 8, 16, 32, 64, 128]
exact = [meta.kl_divergence(meta.bon_policy(p, reward, n), p) for n in ns]
bound = [meta.bon_kl_bound(n) for n in ns]
print("exact KL:", [round(k, 3) for k in exact])
views.kl_figure(ns, exact, bound)

# %% [markdown]
# The analytical expression is an **upper bound** (Beirami et al., 2024): once the best outputs
# carry most of the mass, more samples cannot move the policy further.
#
# ## What it costs (Table 5)
#
# Every result carries its cost. For N samples of T_in prompt tokens and T_i output tokens:
# best-of-N with log-probabilities costs T_in·N input and ΣT_i output tokens and nothing
# external; a sequence scorer adds C_s external tokens per candidate (T_in + T_i for a model
# that reads prompt and output once; TinyWorld's verifier reads them twice, once per class
# code, so 2(T_in + T_i + 1); a judge reads its question around them); voting adds nothing.
# Because the N samples share one prompt, the tokens actually **computed** are fewer than the
# tokens billed.

# %%
t_in = len(lm.encode(prompt))
for name, r in [("best-of-N (verifier)", bon), ("majority vote", mv), ("weighted vote", wv)]:
    out = sum(len(c.token_ids) for c in r.candidates)
    n = len(r.candidates)
    print(f"{name:22s} input {r.cost.input_tokens:4d} = {t_in}*{n}   output {r.cost.output_tokens:4d}"
          f" = {out}   external {r.cost.external_tokens:4d}   computed {r.cost.computed_tokens}")

# %% [markdown]
# ## Scaling the number of samples (§6.2)
#
# TinyWorld's sweep drew 64 samples at each of three temperatures for 104 held-out problems (8 per
# difficulty cell) and scored them with the verifier; accuracies at each N are averages over
# 200 random subsets of the pool, with standard errors over problems.

# %%
sweep = json.loads((data_dir() / "results" / "parallel_scaling.json").read_text())
T = "0.7"
c = sweep["curves"][T]
print(f"{sweep['meta']['problems']} problems, pool {sweep['meta']['pool']} samples/problem")
methods = ("oracle", "best_of_n", "best_of_n_joint", "vote", "weighted")
for m in methods:
    print(f"{m:16s}", " ".join(f"{a:.3f}" for a in c[m]["accuracy"]))
views.scaling_figure({m: c[m] for m in methods},
                     title=f"TinyWorld: accuracy vs N at temperature {T}",
                     limits={"voting limit (eq. 35)": c["limits"]["vote"]})

# %% [markdown]
# What the curves show (compare Figure 6 of the survey):
# - **pass@N** (an oracle picks any correct sample) keeps rising: the generator does put mass
#   on correct solutions.
# - **Majority vote** climbs and flattens towards its limit, the accuracy of the answer with
#   the largest marginal probability (eq. 35, dashed line).
# - **Best-of-N** with the verifier rises for a few samples and then falls: the more candidates,
#   the more wrong ones among them that the verifier happens to score highly (reward
#   over-optimisation, §4.2.3). A learned scorer's argmax exploits its errors.
# - **Best-of-N by p_θ · verifier** picks the candidate at the mode of eq. 17's target,
#   q\* ∝ p_θ(y | x) · v(x, y), instead of the verifier's argmax (chapter 10 derives it). The
#   generator's probability anchors the choice: the curve climbs instead of falling, leads
#   every method up to N = 16 (0.84 against voting's 0.80) and flattens near the voting
#   limits beyond.
# - **Weighted voting** (eq. 34) is more robust: the samples' agreement still counts. It beats
#   plain voting when the verifier puts more mass on correct answers than the model alone does
#   (Wu et al., 2024), as it does here:

# %%
lim = c["limits"]
print(f"share of mass on correct answers: model {lim['mass_on_correct']:.3f}, "
      f"verifier-weighted {lim['weighted_mass_on_correct']:.3f}")
print(f"limits: voting {lim['vote']:.3f}, weighted voting {lim['weighted']:.3f}")
print("best temperature at each N (pass@N):", sweep["best_temperature"]["oracle"])

# %% [markdown]
# The best temperature for pass@N grows with N (Chen et al., 2021; §6.5): with few samples you
# want the single most likely solution, with many you want diversity.
#
# ## Exercises
#
# 1. Use `meta.majority_vote` with `n=1`. Which Table-5 cost field is then equal to the prompt
#    length? Store its name in `field_equal_to_prompt`.
# 2. Compute the exact KL between the best-of-4 policy and p for p = (0.5, 0.3, 0.2) and
#    rewards (1, 2, 3). Store it in `kl_4`.
# 3. In the rejection-sampling experiment, what acceptance rate would M = 4 give? Store the
#    exact value in `rate_m4`.

# %%
field_equal_to_prompt = "input_tokens"
kl_4 = meta.kl_divergence(meta.bon_policy([0.5, 0.3, 0.2], [1, 2, 3], 4), [0.5, 0.3, 0.2])
rate_m4 = (1 + grammar.prob_contains(" dragon")) / 4

# %%
one = meta.majority_vote(prompt, sampler, n=1, seed=SEED)
assert getattr(one.cost, field_equal_to_prompt) == len(lm.encode(prompt))
pi = [1 - 0.8 ** 4, 0.8 ** 4 - 0.5 ** 4, 0.5 ** 4]
assert abs(kl_4 - sum(a * math.log(a / b) for a, b in zip(pi, [0.2, 0.3, 0.5]))) < 1e-9
assert abs(rate_m4 - z / 4) < 1e-12
print("All three answers are right.")
