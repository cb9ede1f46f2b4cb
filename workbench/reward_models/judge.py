"""An LLM as a judge: p(yes) / (p(yes) + p(no)) of a causal LM asked whether a reply is right."""
from __future__ import annotations

import re

import torch

from ..budget import Cost
from .base import (JUDGE_TEMPLATE, STEP_JUDGE_TEMPLATE, step_spans, _chat, _check_batch_size,
                   _check_step_split, _texts)


# -- LLM as a judge ---------------------------------------------------------------------------

class LLMJudge:
    """A causal LM as a judge (LLM-as-a-judge, Zheng et al. 2023; read as a generative
    verifier's yes-probability, Zhang et al. 2024):

        v(x, y) = p(yes | J(x, y)) / (p(yes | J(x, y)) + p(no | J(x, y)))
                = sigmoid(s[yes] - s[no])

    where J(x, y) is ``template`` with ``{prompt}`` and ``{reply}`` filled in and s the LM's
    next-token logits after it.  When the tokenizer has a chat template (``chat=None``), J is
    the user message of a chat ending with the assistant's turn (the judge then usually answers
    "Yes" without a leading space: pass ``yes="Yes", no="No"``).  ``step_scores`` judges each
    prefix of steps (split on ``step_split``) with ``step_template`` ("are the steps so far
    correct?"), so the judge is a step value too: one forward pass per prefix.  The default
    templates read ``prompt + reply``, so ``score(prompt + reply)`` and ``reply_scores(prompt,
    [reply])`` judge the same text.  ``yes`` and ``no`` must each be one token.  Forward passes
    go through ``lm.next_logits`` (counted in ``lm.counter``); the cost is the judge prompts'
    tokens, booked as external tokens.
    """

    def __init__(self, lm, template: str = JUDGE_TEMPLATE, yes: str = " Yes", no: str = " No",
                 step_template: str = STEP_JUDGE_TEMPLATE, step_split: str = "\n", chat=None,
                 batch_size: int = 16):
        if not all(hasattr(lm, a) for a in ("next_logits", "encode", "tokenizer")):
            raise TypeError(f"lm must be a workbench LanguageModel (wb.load of a causal LM), "
                            f"got {type(lm).__name__}")
        for name, t in (("template", template), ("step_template", step_template)):
            if not isinstance(t, str) or "{reply}" not in t:
                raise ValueError(f"{name} must be a string containing {{reply}} (and usually "
                                 f"{{prompt}}), got {t!r}")
        _check_step_split(step_split)
        _check_batch_size(batch_size)
        self.lm, self.template, self.step_template = lm, template, step_template
        self.step_split, self.batch_size = step_split, batch_size
        self.yes_id, self.no_id = self._token(yes, "yes"), self._token(no, "no")
        if self.yes_id == self.no_id:
            raise ValueError(f"yes and no must be different tokens, got {yes!r} and {no!r}")
        self.chat = _chat(lm.tokenizer, chat, True)
        self.name, self.spent = f"judge({lm.name})", Cost()

    def __repr__(self):
        return f"LLMJudge({self.lm.name!r}, chat={self.chat})"

    def _token(self, s, name):
        if not isinstance(s, str) or not s:
            raise ValueError(f"{name} must be a non-empty string (one token), got {s!r}")
        ids = self.lm.encode(s, bos=False)
        if len(ids) != 1:
            raise ValueError(f"{name}={s!r} must be a single token of the judge's tokenizer, "
                             f"but it is {len(ids)} tokens: "
                             f"{self.lm.tokenizer.convert_ids_to_tokens(ids)}")
        return ids[0]

    def judge_prompt(self, prompt: str, reply: str, template: str | None = None) -> str:
        """The text the judge reads before its yes/no token."""
        fields = {"prompt": prompt, "reply": reply}
        text = re.sub(r"\{(prompt|reply)\}", lambda m: fields[m.group(1)],
                      self.template if template is None else template)
        if not self.chat:
            return text
        return self.lm.tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                     tokenize=False, add_generation_prompt=True)

    def _ids(self, text) -> list:
        bos = self.lm.tokenizer.bos_token
        if self.chat and bos and text.startswith(bos):   # lm.encode adds BOS itself
            text = text[len(bos):]
        return self.lm.encode(text)

    def _judge(self, texts) -> list:
        rows, out = [self._ids(t) for t in texts], []
        for s in range(0, len(rows), self.batch_size):
            chunk = rows[s:s + self.batch_size]
            lp = torch.log_softmax(self.lm.next_logits(chunk).float(), -1)
            self.spent = self.spent + Cost(external_tokens=sum(len(r) for r in chunk))
            y, n = lp[:, self.yes_id], lp[:, self.no_id]
            if bool((torch.isinf(y) & torch.isinf(n)).any()):
                raise FloatingPointError(f"the judge {self.lm.name!r} gives both the yes and the "
                                         f"no token probability 0")
            out += torch.sigmoid(y - n).cpu().tolist()
        return out

    def _cost(self, texts) -> Cost:
        return Cost(external_tokens=sum(len(self._ids(t)) for t in texts))

    def c_s(self, n_tokens) -> float:
        """Table 5's C_s: the tokens one judgement reads for ``n_tokens`` tokens of prompt and
        reply (as ``lm.encode`` counts them, BOS included), i.e. those plus the judge
        template's own.  A token merging across a seam can make a measured cost differ by one."""
        return n_tokens + len(self._ids(self.judge_prompt("", ""))) - len(self.lm.encode(""))

    def _prefixes(self, prompt, replies):
        out, counts = [], []
        for r in _texts(replies, "replies"):
            ends = [b for _, b in step_spans(r, self.step_split)] or [0]
            out += [self.judge_prompt(prompt, r[:e], self.step_template) for e in ends]
            counts.append(len(ends))
        return out, counts

    def score(self, texts):
        """v for complete texts (``{prompt}`` empty, ``{reply}`` the text)."""
        if isinstance(texts, str):
            return self._judge([self.judge_prompt("", texts)])[0]
        return self._judge([self.judge_prompt("", t) for t in _texts(texts)])

    def cost_of(self, texts) -> Cost:
        return self._cost([self.judge_prompt("", t) for t in _texts(texts)])

    def reply_scores(self, prompt: str, replies) -> list:
        return self._judge([self.judge_prompt(prompt, r) for r in _texts(replies, "replies")])

    def reply_cost(self, prompt: str, replies) -> Cost:
        return self._cost([self.judge_prompt(prompt, r) for r in _texts(replies, "replies")])

    def step_scores(self, prompt: str, replies) -> list:
        """v for every prefix of steps of each reply (the reply cut after step k, k = 1..K)."""
        texts, counts = self._prefixes(prompt, replies)
        flat, out, i = self._judge(texts), [], 0
        for n in counts:
            out.append(flat[i:i + n])
            i += n
        return out

    def step_cost(self, prompt: str, replies) -> Cost:
        return self._cost(self._prefixes(prompt, replies)[0])
