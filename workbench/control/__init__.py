"""Controlled generation (survey §3.4) and generation with several models (§5.1).

Each method re-weights the target's next-token distribution at every step with information from
outside p_theta: another language model, an attribute classifier or a reward.  Two layers:

* **rules**: pure functions of logits (``*_logits``), each the survey equation it implements.
  They return logits whose softmax is the combined distribution (equal to the formula up to a
  constant per row, so softmax and argmax are exactly the formula's).  With the other model's
  logits bound (``functools.partial``) a rule is an adapter: logits in, logits out.
* **generators**: `product_of_experts`, `dexperts`, `proxy_tuning`, `contrastive`, `fudge`,
  `reward_augmented`.  Prompt in, `workbench.decoding.Generation` out.  They run every model in
  lock-step (`lockstep`), each with its own KV cache, so a token costs one forward pass per model,
  plus one batched pass of the classifier or reward over the k candidates (FUDGE, RAD).  ``.cost``
  counts every model's passes; ``.info["costs"]`` splits them by role.  Each step emits a
  ``step`` event with the chosen token, the combined top tokens (``top``) and each model's
  (``components``).

Modules: `rules` (the pure rules), `generators` (the lock-step loop and the generators),
`tinyworld` (which TinyWorld model plays which role, `steer`, and the attribute/fluency sweep).
"""
from .generators import (candidate_scorer, contrastive, dexperts, fudge, lockstep,
                         product_of_experts, proxy_tuning, reward_augmented)
from .rules import (contrastive_logits, dexperts_logits, fudge_logits, poe_logits, rad_logits,
                    top_candidates)
from .tinyworld import METHODS, MODEL_NAMES, STRENGTH_NAME, load_models, steer

__all__ = ["poe_logits", "dexperts_logits", "contrastive_logits", "top_candidates",
           "fudge_logits", "rad_logits", "lockstep", "product_of_experts", "dexperts",
           "proxy_tuning", "contrastive", "fudge", "reward_augmented", "candidate_scorer",
           "steer", "load_models", "METHODS", "MODEL_NAMES", "STRENGTH_NAME"]
