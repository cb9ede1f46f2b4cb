"""The outcome reward model: a sequence-classification head read at the last token."""
from __future__ import annotations

import torch

from ..budget import Cost
from .base import _chat, _Classifier, _text_config, _texts


# -- outcome reward model ---------------------------------------------------------------------

class OutcomeRewardModel(_Classifier):
    """v(x, y) from a sequence-classification head (an outcome reward model, ORM; Cobbe et al.
    2021), whose logits z = f(x, y) are read at the last token of the input:

        2+ labels:  v = softmax(z)[good_label]          (P(good | x, y); good_label=1 default)
        1 label:    v = z  (a raw reward, e.g. a Bradley-Terry reward model),
                    or v = sigmoid(z) with ``probability=True``.

    The input for a prompt and a reply is ``format(prompt, reply)``: by default ``prompt +
    reply``; with ``chat=True`` the tokenizer's chat template over the messages
    [user: prompt, assistant: reply]; or any ``format=f(prompt, reply) -> str`` given.
    ``score(texts)`` reads complete texts as they are.  Batches are right-padded; the head reads
    the last token that is not ``config.pad_token_id`` (set to the tokenizer's pad, else EOS,
    when missing), and a batch whose text ends with that id is padded with another id, so
    every text is read at its own last token.  Cost: the tokens of every input (external).
    """

    def __init__(self, model, tokenizer, name: str = "orm", good_label: int = 1,
                 probability: bool = False, chat: bool = False, format=None,
                 batch_size: int = 16):
        super().__init__(model, tokenizer, name, batch_size)
        self.num_labels = int(getattr(model.config, "num_labels", 0) or 0)
        if self.num_labels < 1:
            raise ValueError("model must be a sequence-classification model with num_labels >= 1")
        if self.num_labels >= 2 and (isinstance(good_label, bool) or not isinstance(good_label, int)
                                     or not 0 <= good_label < self.num_labels):
            raise ValueError(f"good_label must be an integer in 0..{self.num_labels - 1} for a "
                             f"head with {self.num_labels} labels, got {good_label!r}")
        if format is not None and not callable(format):
            raise TypeError(f"format must be a function (prompt, reply) -> str, got {format!r}")
        self.good_label, self.probability = good_label, bool(probability)
        self.chat, self._format = _chat(tokenizer, chat, False), format
        cfg = _text_config(model.config)
        if cfg.pad_token_id is None:   # batches of more than one text need it
            cfg.pad_token_id = self.pad_id

    def format(self, prompt: str, reply: str) -> str:
        """The model's input for a reply to a prompt."""
        if self._format is not None:
            return self._format(prompt, reply)
        if self.chat:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}],
                tokenize=False)
        return prompt + reply

    def _scores(self, inputs) -> list:
        rows, out = [self.encode(x) for x in inputs], []
        cfg = _text_config(self.model.config)
        for s in range(0, len(rows), self.batch_size):
            chunk = rows[s:s + self.batch_size]
            pad, ends = cfg.pad_token_id, {r[-1] for r in chunk}
            if pad in ends:   # the head would skip a real last token equal to the pad id
                pad = min(set(range(len(ends) + 1)) - ends)
            old, cfg.pad_token_id = cfg.pad_token_id, pad
            try:
                _, logits = self._run(chunk, pad)
            finally:
                cfg.pad_token_id = old
            logits = logits.float().cpu()
            if self.num_labels == 1:
                z = logits[:, 0]
                out += (torch.sigmoid(z) if self.probability else z).tolist()
            else:
                out += torch.softmax(logits, -1)[:, self.good_label].tolist()
        return out

    def score(self, texts):
        """v for each complete text (a single string gives a single float)."""
        if isinstance(texts, str):
            return self._scores([texts])[0]
        return self._scores(_texts(texts))

    def cost_of(self, texts) -> Cost:
        return self._cost(_texts(texts))

    def reply_scores(self, prompt: str, replies) -> list:
        """v(x, y) for each reply y to ``prompt``, on ``format(prompt, y)``."""
        return self._scores([self.format(prompt, r) for r in _texts(replies, "replies")])

    def reply_cost(self, prompt: str, replies) -> Cost:
        return self._cost([self.format(prompt, r) for r in _texts(replies, "replies")])
