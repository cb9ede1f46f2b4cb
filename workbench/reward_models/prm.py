"""Process reward models in the two common formats: a step tag read as a good or bad token,
and a two-label head read at a separator after each step."""
from __future__ import annotations

import torch

from ..budget import Cost
from ..scoring import REDUCERS
from .base import (QWEN_PRM_SYSTEM, single_token, split_steps, _chat, _check_choice,
                   _check_step_split, _Classifier, _texts)


# -- process reward models --------------------------------------------------------------------

class ProcessRewardModel(_Classifier):
    """A process reward model (PRM): P(step k is correct | x, y_<=k) for each step of a reply.

    ``kind="token"`` (Math-Shepherd; Wang et al. 2024, "Math-Shepherd: Verify and Reinforce
    LLMs Step-by-step without Human Annotations", checkpoint
    ``peiyi9979/math-shepherd-mistral-7b-prm``): a causal LM.  Each step is followed by the
    step tag, steps are joined by newlines, and the question comes first::

        "{prompt} {step_1} ки\\n{step_2} ки\\n...{step_K} ки"     (prompt right-stripped)

    and the probability of step k is softmax over the [good, bad] next-token logits ("+", "-")
    at the position of the k-th tag:  p_k = softmax(s[t_k, (good, bad)])[0].

    ``kind="head"`` (Qwen2.5-Math-PRM; Zhang et al. 2025, "The Lessons of Developing Process
    Reward Models in Mathematical Reasoning", checkpoint ``Qwen/Qwen2.5-Math-PRM-7B``, loaded by
    ``AutoModel(..., trust_remote_code=True)``): a model whose output logits are
    [batch, seq, 2] (any model whose output has ``.logits``, or a tuple whose first element is
    that tensor, e.g. ``AutoModelForTokenClassification`` with 2 labels).  Each step ends with
    the separator, inside the tokenizer's chat template when it has one::

        [system: QWEN_PRM_SYSTEM, user: prompt, assistant: "{step_1}<extra_0>...{step_K}<extra_0>"]

    (else ``prompt + step_1<extra_0>...step_K<extra_0>``), and p_k = softmax(z[t_k])[1] at the
    k-th separator.

    Steps: the reply split on ``step_split`` (default "\\n"; "\\n\\n" is common), stripped,
    empty ones dropped.  ``tag``, ``good``, ``bad`` and ``separator`` must each be one token of
    the tokenizer.  ``score`` / ``reply_scores`` reduce the step probabilities with ``reduce``
    (min, last, prod, mean).  ``format=f(prompt, steps) -> str`` replaces the input format (it
    must still put one tag or separator after each step).  Cost: the tokens of every input.
    """

    def __init__(self, model, tokenizer, kind: str = "token", name: str = "prm",
                 tag: str = "ки", good: str = "+", bad: str = "-",
                 separator: str = "<extra_0>", step_split: str = "\n", reduce: str = "min",
                 chat=None, system: str | None = QWEN_PRM_SYSTEM, format=None,
                 batch_size: int = 16):
        super().__init__(model, tokenizer, name, batch_size)
        _check_choice("kind", kind, ("token", "head"))
        _check_choice("reduce", reduce, tuple(REDUCERS))
        _check_step_split(step_split)
        if format is not None and not callable(format):
            raise TypeError(f"format must be a function (prompt, steps) -> str, got {format!r}")
        self.kind, self.step_split, self.reduce = kind, step_split, reduce
        self.system, self._format = system, format
        if kind == "token":
            self.tag, self.mark = tag, single_token(tokenizer, tag, "tag")
            self.good_id = single_token(tokenizer, good, "good")
            self.bad_id = single_token(tokenizer, bad, "bad")
            if self.good_id == self.bad_id:
                raise ValueError(f"good and bad must be different tokens, got {good!r} and {bad!r}")
            if chat:
                raise ValueError("chat applies to kind='head' only (Math-Shepherd's format is "
                                 "plain text)")
            self.chat = False
        else:
            self.separator, self.mark = separator, single_token(tokenizer, separator, "separator")
            self.chat = _chat(tokenizer, chat, True)

    def steps(self, reply: str) -> list:
        return split_steps(reply, self.step_split)

    def format(self, prompt: str, steps) -> str:
        """The model's input for the steps of a reply to a prompt (see the class docstring)."""
        if self._format is not None:
            return self._format(prompt, list(steps))
        if self.kind == "token":
            body = "\n".join(f"{s} {self.tag}" for s in steps)
            return f"{prompt.rstrip()} {body}" if prompt.strip() else body
        body = "".join(s + self.separator for s in steps)
        if not self.chat:
            return prompt + body
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": body}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        return self.tokenizer.apply_chat_template(messages, tokenize=False)

    def _inputs(self, prompt, replies):
        split = [self.steps(r) for r in _texts(replies, "replies")]
        return [self.format(prompt, s) for s in split], [len(s) for s in split]

    def step_scores(self, prompt: str, replies) -> list:
        """One probability per step of each reply (a list per reply)."""
        inputs, counts = self._inputs(prompt, replies)
        rows, out = [self.encode(x) for x in inputs], []
        for s in range(0, len(rows), self.batch_size):
            chunk = rows[s:s + self.batch_size]
            ids, logits = self._run(chunk, self.pad_id)
            if self.kind == "head" and logits.shape[-1] != 2:
                raise ValueError(f"a kind='head' PRM must output 2 logits per position "
                                 f"(bad, good), got {logits.shape[-1]}")
            for i, n in enumerate(counts[s:s + self.batch_size]):
                at = (ids[i, :len(chunk[i])] == self.mark).nonzero()[:, 0].to(logits.device)
                if len(at) != n:
                    mark = self.tag if self.kind == "token" else self.separator
                    raise ValueError(f"the PRM input has {len(at)} step marks {mark!r} for {n} "
                                     f"steps: the prompt or a step contains the mark, or the "
                                     f"format does not put one after each step")
                z = logits[i, at]
                if self.kind == "token":
                    z = z[:, [self.good_id, self.bad_id]]
                p = torch.softmax(z.float(), -1)[:, 0 if self.kind == "token" else 1]
                out.append(p.cpu().tolist())
        return out

    def step_cost(self, prompt: str, replies) -> Cost:
        return self._cost(self._inputs(prompt, replies)[0])

    def reply_scores(self, prompt: str, replies) -> list:
        """The step probabilities of each reply reduced by ``reduce``."""
        return [REDUCERS[self.reduce](s) for s in self.step_scores(prompt, replies)]

    def reply_cost(self, prompt: str, replies) -> Cost:
        return self.step_cost(prompt, replies)

    def score(self, texts):
        """Reduced step probabilities of complete texts (the whole text read as steps)."""
        if isinstance(texts, str):
            return self.reply_scores("", [texts])[0]
        return self.reply_scores("", texts)

    def cost_of(self, texts) -> Cost:
        return self.step_cost("", _texts(texts))
