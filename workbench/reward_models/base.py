"""What the reward models share: step splitting, one-token checks, batching and the
``spent`` ledger of a classifier head, and `for_task` (a reward model shown the question)."""
from __future__ import annotations

import torch

from ..budget import Cost
from ..scoring import verify, verify_cost
from ..validate import count


QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
JUDGE_TEMPLATE = "{prompt}{reply}\n\nIs this solution correct? Answer Yes or No.\nAnswer:"
STEP_JUDGE_TEMPLATE = ("{prompt}{reply}\n\nAre the steps so far correct? Answer Yes or No.\n"
                       "Answer:")


# -- helpers ----------------------------------------------------------------------------------

def step_spans(text: str, step_split: str = "\n") -> list:
    """``(start, end)`` of each non-empty step of ``text`` (split on ``step_split``)."""
    spans, start = [], 0
    for piece in text.split(step_split):
        if piece.strip():
            spans.append((start, start + len(piece)))
        start += len(piece) + len(step_split)
    return spans


def split_steps(text: str, step_split: str = "\n") -> list:
    """The steps of a reply: split on ``step_split``, stripped, empty ones dropped; a reply with
    no step is one empty step."""
    return [text[a:b].strip() for a, b in step_spans(text, step_split)] or [""]


def single_token(tokenizer, token, name: str) -> int:
    """The id of ``token`` (a string that is one token of ``tokenizer``, or a token id)."""
    if isinstance(token, int) and not isinstance(token, bool):
        if 0 <= token < len(tokenizer):
            return token
        raise ValueError(f"{name} must be a token id below {len(tokenizer)}, got {token}")
    if not isinstance(token, str) or not token:
        raise ValueError(f"{name} must be a non-empty string (one token), got {token!r}")
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"{name}={token!r} must be a single token of the tokenizer, but it is "
                         f"{len(ids)} tokens: {tokenizer.convert_ids_to_tokens(ids)}")
    return ids[0]


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_step_split(step_split):
    if not isinstance(step_split, str) or not step_split:
        raise ValueError(f"step_split must be a non-empty string, got {step_split!r}")


def _check_batch_size(batch_size):
    count("batch_size", batch_size)


def _chat(tokenizer, chat, default: bool) -> bool:
    """Whether to use the tokenizer's chat template (``chat=None``: ``default`` if it has one)."""
    has = getattr(tokenizer, "chat_template", None) is not None
    if chat is None:
        return default and has
    if chat and not has:
        raise ValueError("chat=True but the tokenizer has no chat template")
    return bool(chat)


def _texts(texts, name="texts") -> list:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, got a single string")
    texts = list(texts)
    if any(not isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must be strings")
    return texts


def _logits(out) -> torch.Tensor:
    """A model's output logits: ``out.logits``, or the first element of a tuple."""
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, (tuple, list)) and out:
        logits = out[0]
    if not torch.is_tensor(logits):
        raise TypeError("the model's output has no .logits and is not a tuple whose first "
                        "element is the logits tensor")
    return logits


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _right_padded(rows, pad: int):
    """Right-padded ``(ids, mask)``: padding after the text never changes a causal model's
    positions or what the real tokens see."""
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


class _Classifier:
    """What the two Hub heads share: tokenizer, device, batching, the ``spent`` ledger."""

    def __init__(self, model, tokenizer, name, batch_size):
        _check_batch_size(batch_size)
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.device = next(model.parameters()).device
        self.batch_size = batch_size
        self.spent = Cost()
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    def __repr__(self):
        n = sum(p.numel() for p in self.model.parameters())
        return f"{type(self).__name__}({self.name!r}, {n / 1e6:.1f}M parameters)"

    def encode(self, text: str) -> list:
        """Token ids of a model input; special tokens (BOS) are added unless the text already
        starts with the BOS token (as chat templates write it)."""
        bos = self.tokenizer.bos_token
        add = not (bos and text.startswith(bos))
        ids = self.tokenizer(text, add_special_tokens=add)["input_ids"]
        if not ids:
            raise ValueError("an input to the reward model is empty (no tokens): give a "
                             "non-empty prompt or text")
        return list(ids)

    def _run(self, rows, pad: int):
        ids, mask = _right_padded(rows, pad)
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        self.spent = self.spent + Cost(external_tokens=int(mask.sum()))
        return ids, _logits(out)

    def _cost(self, inputs) -> Cost:
        return Cost(external_tokens=sum(len(self.encode(x)) for x in inputs))


class ForTask:
    """A reward model shown the *question* of the prompt's problem instead of the policy's
    whole prompt (``for_task(rm, task)``).  The policy's prompt may be a few-shot prompt or
    its own chat template; a reward model with a format of its own (a chat template, a judge
    template, Qwen's PRM chat) should wrap the bare question, not a chat inside a chat.  The
    problem is found with `Task.problem_of`; a reward model without ``reply_scores`` /
    ``step_scores`` gets question + reply as one text."""

    def __init__(self, scorer, task):
        self.scorer, self.task = scorer, task
        self.name = f"{getattr(scorer, 'name', type(scorer).__name__)} on {task.name} questions"

    def __repr__(self):
        return f"ForTask({self.scorer!r}, {self.task.name!r})"

    def question(self, prompt: str) -> str:
        return self.task.problem_of(prompt).question + "\n"

    def reply_scores(self, prompt: str, replies) -> list:
        return verify(self.scorer, self.question(prompt), list(replies))[0]

    def reply_cost(self, prompt: str, replies) -> Cost:
        return verify_cost(self.scorer, self.question(prompt), list(replies))

    def step_scores(self, prompt: str, replies) -> list:
        return self.scorer.step_scores(self.question(prompt), replies)

    def step_cost(self, prompt: str, replies) -> Cost:
        return self.scorer.step_cost(self.question(prompt), replies)


def for_task(scorer, task) -> ForTask:
    """``scorer`` reading the question of each prompt's problem (see `ForTask`)."""
    return ForTask(scorer, task)
