"""Scorers v(x, y) (survey Table 1): learned verifiers, process reward models, classifiers.

A `TokenScorer` wraps a token-classification model with one logit per position.  Its
probability at the last token of a text scores the whole text (an outcome verifier, §4.2.1);
its probabilities at the ends of steps score a partial solution step by step (a process reward
model, §4.3); at every prefix position it is a FUDGE-style attribute classifier p(a | y_<=t)
(§3.4, eq. 16).  A `BayesScorer` offers the same interface from a class-conditional LM read
by Bayes' rule (TinyWorld's verifier and PRM, §4.2.1, §4.3, §5.1): each token votes with the
log-ratio of its probability under "right" and "wrong".  Every call reports its cost as
*external* tokens (Table 5).
"""
from __future__ import annotations

import math

import torch

from .budget import Cost


class TokenScorer:
    def __init__(self, model, tokenizer, name="scorer"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = next(model.parameters()).device
        self.spent = Cost()

    def __repr__(self):
        n = sum(p.numel() for p in self.model.parameters())
        return f"TokenScorer({self.name!r}, {n / 1e6:.1f}M parameters)"

    def encode(self, text: str) -> list:
        return self.tokenizer(text)["input_ids"]

    @torch.no_grad()
    def position_probs(self, texts, batch_size: int = 64) -> list:
        """sigmoid(logit) at every token position of each text (BOS included)."""
        rows = [self.encode(t) if isinstance(t, str) else list(t) for t in texts]
        out = [None] * len(rows)
        for idx in _by_length(rows, batch_size):
            chunk = [rows[i] for i in idx]
            ids, mask = self._padded(chunk)
            logits = self.model(input_ids=ids.to(self.device),
                                attention_mask=mask.to(self.device)).logits[..., 0]
            probs = torch.sigmoid(logits.float()).cpu()
            for j, (i, r) in enumerate(zip(idx, chunk)):
                out[i] = probs[j, :len(r)].tolist()
            self.spent = self.spent + Cost(external_tokens=int(mask.sum()))
        return out

    def _padded(self, rows):
        """Right-padded ``(ids, mask)`` tensors for token-id rows."""
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        return ids, mask

    def score(self, texts, batch_size: int = 64) -> list:
        """Probability that each complete text is good (the value at its last token)."""
        single = isinstance(texts, str)
        probs = self.position_probs([texts] if single else list(texts), batch_size)
        vals = [p[-1] for p in probs]
        return vals[0] if single else vals

    def c_s(self, n_tokens) -> float:
        """Table 5's C_s: external tokens to score one sequence of ``n_tokens`` tokens."""
        return n_tokens

    def cost_of(self, texts) -> Cost:
        """External-token cost of scoring these texts once (C_s per text)."""
        return Cost(external_tokens=sum(self.c_s(len(self.encode(t))) for t in texts))


def _by_length(rows, batch_size: int):
    """Index batches of ``rows`` in order of length, so that a batch pads little (a random mix
    of 40- and 200-token texts pads most rows to 200); callers put the results back in place."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


def logprobs_after_code(model, ids, mask):
    """log p(y_s | code, y_<s) for rows ``[BOS, code, y_1, ...]`` (right-padded): one value per
    y_s, zero at padding."""
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    lp = torch.log_softmax(logits[:, 1:-1], -1).gather(-1, ids[:, 2:, None])[..., 0]
    return lp * mask[:, 2:]


class BayesScorer(TokenScorer):
    """A scorer built from a class-conditional LM by Bayes' rule (a *generative* classifier,
    as in GeDi, Krause et al. 2021).

    The LM reads a class code right after BOS (``codes["right"]`` or ``codes["wrong"]``) and then
    the text, so it models p(y | right) and p(y | wrong).  With the prior odds pi/(1-pi) of the
    training data, the probability that the prefix y_<=t belongs to a right solution is

        logit P(right | y_<=t) = log pi/(1-pi) + sum_{s<=t} [log p(y_s | right, y_<s)
                                                             - log p(y_s | wrong, y_<s)].

    Each text costs two forward passes (one per code), counted as external tokens.  Unlike a
    one-logit head, the verdict reuses the LM's own next-token prediction at every position, so
    a written result the "right" LM would not have written lowers the score where it happens.
    """

    def __init__(self, model, tokenizer, codes: dict, prior_log_odds: float, name="scorer"):
        super().__init__(model, tokenizer, name)
        ids = {}
        for k in ("right", "wrong"):
            code = codes.get(k) if isinstance(codes, dict) else None
            i = tokenizer.convert_tokens_to_ids(code) if isinstance(code, str) else None
            if (i is None or i == tokenizer.unk_token_id
                    or tokenizer.convert_ids_to_tokens(i) != code):
                raise ValueError(f"codes[{k!r}] must be a single token of the tokenizer's "
                                 f"vocabulary, got {code!r}")
            ids[k] = i
        if ids["right"] == ids["wrong"]:
            raise ValueError("codes['right'] and codes['wrong'] must be different tokens")
        self.code_ids, self.prior_log_odds = (ids["right"], ids["wrong"]), float(prior_log_odds)

    def __repr__(self):
        n = sum(p.numel() for p in self.model.parameters())
        return f"BayesScorer({self.name!r}, {n / 1e6:.1f}M parameters, class-conditional LM)"

    def _rows(self, texts):
        rows = [self.encode(t) if isinstance(t, str) else list(t) for t in texts]
        bos = self.tokenizer.bos_token_id
        if any(not r or r[0] != bos for r in rows):
            raise ValueError("texts must start with the tokenizer's BOS token")
        return rows

    @torch.no_grad()
    def evidence(self, texts, batch_size: int = 64) -> list:
        """Each token's vote, log p(y_s | right, y_<s) - log p(y_s | wrong, y_<s), for every
        token of each text after BOS (negative where a wrong solution would rather write it)."""
        rows = self._rows(texts)
        out = [None] * len(rows)
        for idx in _by_length(rows, batch_size):
            chunk = [rows[i] for i in idx]
            # both class codes in one batch: rows [right..., wrong...]
            ids, mask = self._padded([[r[0], code] + r[1:] for code in self.code_ids
                                      for r in chunk])
            logp = logprobs_after_code(self.model, ids.to(self.device), mask.to(self.device))
            self.spent = self.spent + Cost(external_tokens=int(mask.sum()))
            diff = (logp[:len(chunk)] - logp[len(chunk):]).cpu()
            for j, (i, r) in enumerate(zip(idx, chunk)):
                out[i] = diff[j, :len(r) - 1].tolist()
        return out

    def position_probs(self, texts, batch_size: int = 64) -> list:
        """P(right | y_<=t) at every token position of each text (at BOS: the prior)."""
        out = []
        for e in self.evidence(texts, batch_size):
            log_odds = torch.cumsum(torch.tensor([self.prior_log_odds] + e, dtype=torch.float64),
                                    0)
            out.append(torch.sigmoid(log_odds).tolist())
        return out

    def c_s(self, n_tokens) -> float:
        """Two passes (one per class code) over the text and its code token."""
        return 2 * (n_tokens + 1)


# -- scorers v(x, y) for meta-generators: (prompt, outputs) -> (scores, cost) -----------------

class LogProbScorer:
    """v(y) = log p_theta(y | x) (optionally per token), from the generator's own log-probs.

    Costs nothing extra (Table 5, "Best-of-N (log-p)"); outputs without a log-probability are
    re-scored with ``lm`` if one is given (counted as external tokens).
    """

    def __init__(self, lm=None, per_token: bool = False):
        self.lm, self.per_token = lm, per_token

    def __call__(self, prompt, outputs):
        scores, cost = [], Cost()
        for o in outputs:
            lp, n = getattr(o, "logprob", None), len(getattr(o, "token_ids", []) or [])
            if lp is None:
                if self.lm is None:
                    raise ValueError("an output has no log-probability; give LogProbScorer(lm)")
                lps = self.lm.token_logprobs(prompt, [o.text])[0]
                lp, n = sum(lps), len(lps)
                cost = cost + Cost(external_tokens=len(self.lm.encode(prompt)) + n)
            scores.append(lp / max(n, 1) if self.per_token else lp)
        return scores, cost


class VerifierScorer:
    """v(x, y) = P(correct | x, y) from a learned outcome verifier (a `TokenScorer`, or any
    object with ``score(texts)`` and ``cost_of(texts)``, e.g. `workbench.reward_models`).

    The verifier reads prompt + output; one that has ``reply_scores(prompt, replies)`` and
    ``reply_cost(prompt, replies)`` gets the prompt apart, to put it in its own input format.
    External cost C_s = tokens of prompt + output per scored sequence (Table 5).
    """

    def __init__(self, verifier: TokenScorer):
        self.verifier = verifier

    def __call__(self, prompt, outputs):
        return verify(self.verifier, prompt, [o.text for o in outputs])


def verify(verifier, prompt: str, replies) -> tuple:
    """``(scores, cost)`` of an outcome verifier on replies to ``prompt``: its ``reply_scores``
    / ``reply_cost`` when it has them (it puts the prompt in its own input format), else
    ``score`` / ``cost_of`` of prompt + reply.  Shared by every user of a verifier."""
    if hasattr(verifier, "reply_scores"):
        return list(verifier.reply_scores(prompt, replies)), verifier.reply_cost(prompt, replies)
    texts = [prompt + r for r in replies]
    return list(verifier.score(texts)), verifier.cost_of(texts)


def verify_cost(verifier, prompt: str, replies) -> Cost:
    """What `verify` will cost, without running the verifier."""
    if hasattr(verifier, "reply_cost"):
        return verifier.reply_cost(prompt, replies)
    return verifier.cost_of([prompt + r for r in replies])


class JointScorer:
    """v(x, y) = log p_theta(y | x) + log P(right | x, y): the log of eq. 17's target
    q*(y | x) ∝ p_theta(y | x) I[y right], with a learned verifier's probability in place of
    the indicator.  Best-of-N with this score returns the candidate at the mode of that target
    among the N: the most probable solution that is right, not the one the verifier is most
    sure of.  This is the workbench's selector, not the survey's prescription (eq. 30 reads
    best-of-N as approximating argmax q* for a target q* ∝ v*, with no p_theta factor, and
    §3.4 asks to *sample* eq. 17's target); it is eq. 20 with r = log v and beta = 1, designed
    after best-of-N by the verifier alone fell short on TinyWorld.  The generator's
    log-probability acts as the KL anchor of eqs. 19-20, so candidates the verifier
    over-rates because they are unusual lose to usual ones it rates nearly as well.

    Costs the verifier's C_s; the log-probability is free when the generator reports it (else
    ``lm`` re-scores the output, as in `LogProbScorer`).
    """

    def __init__(self, verifier: TokenScorer, lm=None):
        self.verifier, self.logprob = VerifierScorer(verifier), LogProbScorer(lm)

    def __call__(self, prompt, outputs):
        lps, lp_cost = self.logprob(prompt, outputs)
        probs, v_cost = self.verifier(prompt, outputs)
        return [joint_log_score(lp, p) for lp, p in zip(lps, probs)], lp_cost + v_cost


def joint_log_score(logprob: float, prob: float) -> float:
    """log p_theta(y | x) + log v(x, y) (`JointScorer`); a probability that underflowed to 0
    still ranks below every positive one."""
    return logprob + math.log(max(prob, 1e-300))


# how a process reward model's step probabilities become one score for the whole reply
REDUCERS = {"min": min, "last": lambda s: s[-1], "mean": lambda s: sum(s) / len(s),
            "prod": math.prod}


class ProcessScorer:
    """A process reward model over steps: v = min / last / product of the step probabilities.

    A PRM with ``step_scores(prompt, texts)`` (and ``step_cost``: `workbench.reward_models`)
    gives its own step probabilities.  Otherwise the PRM is a `TokenScorer` (TinyWorld's):
    steps end at newlines; its probability is read at each step's final newline token (and
    at the end of the text for an unfinished last step).
    """

    def __init__(self, prm: TokenScorer, reduce: str = "min"):
        if reduce not in REDUCERS:
            raise ValueError(f"reduce must be 'min', 'last', 'prod' or 'mean', got {reduce!r}")
        self.prm, self.reduce = prm, reduce

    def step_scores(self, prompt, texts) -> list:
        if hasattr(self.prm, "step_scores"):
            return self.prm.step_scores(prompt, list(texts))
        rows = [self.prm.encode(prompt + t) for t in texts]
        probs = self.prm.position_probs(rows)
        n_prompt = len(self.prm.encode(prompt))
        out = []
        for ids, p in zip(rows, probs):
            ends = [i for i in range(n_prompt, len(ids))
                    if self.prm.tokenizer.decode([ids[i]]).endswith("\n")]
            if not ends or ends[-1] != len(ids) - 1:
                ends.append(len(ids) - 1)
            out.append([p[i] for i in ends])
        return out

    def __call__(self, prompt, outputs):
        texts = [o.text for o in outputs]
        steps = self.step_scores(prompt, texts)
        return [REDUCERS[self.reduce](s) for s in steps], self.cost_of(prompt, texts)

    def cost_of(self, prompt, texts) -> Cost:
        """External cost of scoring these continuations of ``prompt``."""
        if hasattr(self.prm, "step_scores"):
            return self.prm.step_cost(prompt, list(texts))
        return self.prm.cost_of([prompt + t for t in texts])


class OracleScorer:
    """The exact check (1.0 if correct, else 0.0): an upper bound no real verifier reaches."""

    def __init__(self, check):
        self.check = check

    def __call__(self, prompt, outputs):
        return [float(self.check(prompt, o.text)) for o in outputs], Cost()


def oracle(task):
    """`OracleScorer` from a task's checker: the problem is found from the prompt
    (`Task.problem_of`), the reply graded by `Task.check`."""
    return OracleScorer(lambda prompt, text: task.check(task.problem_of(prompt), text))
