"""Reward models from the Hugging Face Hub behind the workbench's scorer interfaces (survey
§4.2.1, §4.3, §5.1).

Three kinds of learned judges of a reply y to a prompt x, each usable as a verifier
(`scoring.VerifierScorer`, `scoring.JointScorer`, `meta.values.verifier_value`,
`meta.refine.verifier_feedback`) and as a step value (`scoring.ProcessScorer`,
`meta.values.prm_value`):

* `OutcomeRewardModel` - a sequence-classification head read at the last token (an ORM,
  Cobbe et al. 2021);
* `ProcessRewardModel` - one probability per step, in the two common formats: a causal LM
  that predicts "+" or "-" after a step tag (Math-Shepherd, Wang et al. 2024) or a two-label
  head read at a separator token after each step (Qwen2.5-Math-PRM, Zhang et al. 2025);
* `LLMJudge` - any causal LM asked "is this correct?", read as p(yes) / (p(yes) + p(no)) of its
  next token (LLM-as-a-judge, Zheng et al. 2023; the yes-probability of a generative verifier,
  Zhang et al. 2024).

Every one of them offers

* ``score(texts)`` / ``cost_of(texts)`` for complete texts (prompt and reply concatenated, as
  the workbench's verifiers are called);
* ``reply_scores(prompt, replies)`` / ``reply_cost(prompt, replies)``: the same with the prompt
  known, so the model's own input format (a chat template, a judge template) can put it in its
  place; `scoring.VerifierScorer` and `meta.values.verifier_value` use these when present;
* ``step_scores(prompt, replies)`` / ``step_cost(prompt, replies)``: one probability per step
  of each reply (steps: the reply split on ``step_split``, empty steps dropped; a reply with no
  step is read as one empty step, so every reply gets a score); `scoring.ProcessScorer` and
  `meta.values.prm_value` use these when present.

Costs are *external* tokens (Table 5): the tokens of every input the reward model reads; each
object adds what it actually spent to its ``spent``.  Load Hub checkpoints (or local
directories) with `load_orm` and `load_prm`; ``wb.load`` returns an `OutcomeRewardModel` for a
``*ForSequenceClassification`` checkpoint.  This module is generic: it knows nothing of
TinyWorld.
"""
from .base import (JUDGE_TEMPLATE, QWEN_PRM_SYSTEM, STEP_JUDGE_TEMPLATE, ForTask, for_task,
                   single_token, split_steps, step_spans)
from .judge import LLMJudge
from .load import load_orm, load_prm
from .orm import OutcomeRewardModel
from .prm import ProcessRewardModel

__all__ = ["OutcomeRewardModel", "ProcessRewardModel", "LLMJudge", "ForTask", "for_task",
           "load_orm", "load_prm", "split_steps", "step_spans", "single_token",
           "JUDGE_TEMPLATE", "STEP_JUDGE_TEMPLATE", "QWEN_PRM_SYSTEM"]
