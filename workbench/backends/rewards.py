"""Scorers v(x, y) over reward models served by vLLM as pooling models (survey §4.2.1, §4.3).

``vllm serve <model> --runner pooling`` serves a sequence classifier at ``/classify`` and a
reward or process reward model at ``/pooling``.  The formats followed (vLLM 0.7 to 0.18;
``vllm/entrypoints/pooling/{classify,pooling}/protocol.py``, and the examples at
https://docs.vllm.ai/en/v0.15.0/examples/pooling/classify/ and
https://docs.vllm.ai/en/v0.18.1/examples/pooling/pooling/):

* request, both endpoints: ``{"model": name, "input": [text, ...]}`` (a batch of texts);
* ``/classify`` answer: ``{"data": [{"index": i, "label": ..., "probs": [p_0, ...],
  "num_classes": C}, ...], "usage": {"prompt_tokens": T, ...}}`` (newer builds name the list
  ``probabilities`` and add raw ``logits``: read too);
* ``/pooling`` answer: ``{"data": [{"index": i, "object": "pooling", "data": rows}, ...],
  "usage": ...}`` where ``rows`` is one vector (a sequence-pooled reward) or one vector per
  pooled token: every token (ALL pooling, reward models) or, with STEP pooling, one per step
  tag (``Qwen2ForProcessRewardModel``: tag ``<extra_0>``, rows softmax([bad, good]); a
  Math-Shepherd PRM with ``--pooler-config '{"pooling_type": "STEP", "step_tag_id": ID,
  "returned_token_ids": [GOOD_ID, BAD_ID]}'``: rows softmax([good, bad])).

``extra`` adds fields to every request body: e.g. ``{"task": "token_classify"}`` where a model
serves several pooling tasks (``/pooling`` without a ``task`` picks ``token_embed`` first, then
``token_classify``, in recent releases).  The answers are put back in input order by
``index``; batches of ``batch_size`` texts go out concurrently (at most ``concurrency`` in
flight) with `ServerClient`'s retries and errors.
Cost (Table 5): the tokens the server read (``usage.prompt_tokens``) as external tokens, as
the local scorers of `workbench.scoring` book them.
"""
from __future__ import annotations

import math
import threading

from ..budget import Cost
from ..reward_models.base import split_steps
from ..scoring import REDUCERS
from .completions import BackendError, ServerClient, _check_count

ENDPOINTS = {"classify": "/classify", "pooling": "/pooling"}


class _PooledScorer(ServerClient):
    """What the served scorers share: batching, the request, reading the answer back."""

    missing = ("the server has no such pooling endpoint; serve the reward model with "
               "`vllm serve <model> --runner pooling` (see docs/servers.md)")

    def __init__(self, base_url, model, endpoint, good, batch_size, timeout, api_key,
                 concurrency, retries, backoff, name, extra):
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be 'classify' or 'pooling', got {endpoint!r}")
        _check_count("good", good, 0)
        _check_count("batch_size", batch_size, 1)
        super().__init__(base_url, model, timeout, api_key, concurrency, retries, backoff)
        self.path, self.good, self.batch_size = ENDPOINTS[endpoint], good, batch_size
        self.extra = dict(extra or {})
        self.name = name or f"served-{endpoint}({model or self.base_url})"
        self._last = threading.local()  # this thread's last (inputs, cost), for *_cost

    def _scored(self, fn, prompt, replies) -> tuple:
        """``fn(prompt, replies)`` -> (values, cost), remembered (one call per thread) so that
        the cost asked for right after the values (`scoring.verify`, `ProcessScorer`) comes
        from that same answer."""
        replies = list(replies)
        out = fn(prompt, replies)
        self._last.key, self._last.cost = (fn.__name__, prompt, tuple(replies)), out[1]
        return out

    def _cost(self, fn, prompt, replies) -> Cost:
        """The cost of ``fn(prompt, replies)``: the remembered one when these inputs were just
        scored, else they are scored now (a server's token count is only known from its
        answer, so predicting a cost, as budgeted searches do, costs a request)."""
        replies = list(replies)
        if getattr(self._last, "key", None) == (fn.__name__, prompt, tuple(replies)):
            return self._last.cost
        return fn(prompt, replies)[1]

    def _pooled(self, inputs) -> tuple:
        """(the answer's rows for each input, in order; the external-token cost)."""
        chunks = [inputs[s:s + self.batch_size] for s in range(0, len(inputs), self.batch_size)]
        parts = self._concurrently(self._request, chunks)
        return [r for rows, _ in parts for r in rows], sum((c for _, c in parts), Cost())

    def _request(self, texts) -> tuple:
        body = {"input": texts, **({} if self.model is None else {"model": self.model}),
                **self.extra}
        data = self._http("POST", self.path, body)
        url = self.base_url + self.path
        items = data.get("data") if isinstance(data, dict) else None
        usage = (data.get("usage") or {}) if isinstance(data, dict) else {}
        indices = [_index(i) for i in items] if isinstance(items, list) else []
        if (not isinstance(items, list) or not all(isinstance(i, int) for i in indices)
                or sorted(indices) != list(range(len(texts)))):
            raise BackendError(f"{url} answered {len(texts)} inputs without one `data` item "
                               f"per input (indices 0..{len(texts) - 1}): {str(data)[:300]}")
        if usage.get("prompt_tokens") is None:
            raise BackendError(f"{url} returned no token `usage`, so the cost cannot be "
                               f"counted: {str(data)[:300]}")
        rows = [self._rows(i, url) for i in sorted(items, key=_index)]
        return rows, Cost(external_tokens=int(usage["prompt_tokens"]))

    def _rows(self, item, url) -> list:
        """The item's values as a list of vectors (one vector: a one-row list)."""
        if self.path == "/classify":
            vec = item.get("probs") or item.get("probabilities") or _softmax(item.get("logits"))
            rows = [vec]
        else:
            rows = item.get("data")
            rows = [rows] if isinstance(rows, list) and rows and _number(rows[0]) else rows
        if (not isinstance(rows, list) or not rows
                or any(not isinstance(r, list) or not r or not all(map(_number, r))
                       for r in rows)):
            raise BackendError(f"{url} answered an item without a list of numbers where "
                               f"vLLM's {self.path} format has one: {str(item)[:300]}")
        return rows

    def _pick(self, vec, url) -> float:
        """The ``good`` entry of a class vector (a one-value vector: that value)."""
        if len(vec) == 1:
            return float(vec[0])
        if self.good >= len(vec):
            raise BackendError(f"good={self.good} but {url} answered {len(vec)} values per "
                               f"row: give good= an index below {len(vec)}")
        return float(vec[self.good])


class ServerRewardScorer(_PooledScorer):
    """v(x, y) from an outcome reward model served by vLLM (an ORM, Cobbe et al. 2021):

        /classify:  v = softmax(z)[good]   (vLLM's ``probs``; a 1-label head: sigmoid(z))
        /pooling:   v = r[good] of the last pooled row r (a 1-value row: the raw reward r)

    read for input ``format(prompt, y)`` (default ``prompt + y``).  ``good`` is the label of a
    right reply (default 1, as in `workbench.reward_models.OutcomeRewardModel`).  The scorer
    interface of `workbench.scoring`: ``scorer(prompt, outputs) -> (scores, cost)``; and the
    verifier protocol of `workbench.reward_models` (``reply_scores`` / ``reply_cost``), so it
    serves as `meta.verifier_value`, `refine.verifier_feedback` or in `scoring.JointScorer`.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", model: str | None = None,
                 endpoint: str = "classify", good: int = 1, format=None, batch_size: int = 32,
                 timeout: float = 120.0, api_key: str | None = None, concurrency: int = 8,
                 retries: int = 3, backoff: float = 0.5, name: str | None = None,
                 extra: dict | None = None):
        if format is not None and not callable(format):
            raise TypeError(f"format must be a function (prompt, reply) -> str, got {format!r}")
        super().__init__(base_url, model, endpoint, good, batch_size, timeout, api_key,
                         concurrency, retries, backoff, name, extra)
        self.format = format or (lambda prompt, reply: prompt + reply)

    def __call__(self, prompt, outputs):
        replies = [o if isinstance(o, str) else o.text for o in outputs]
        return self.reply_scores_and_cost(prompt, replies)

    def reply_scores_and_cost(self, prompt: str, replies) -> tuple:
        """(v(x, y) for each reply y, the external-token cost)."""
        if not replies:
            return [], Cost()
        rows, cost = self._pooled([self.format(prompt, r) for r in replies])
        url = self.base_url + self.path
        return [self._pick(r[-1], url) for r in rows], cost

    # the verifier protocol of `workbench.reward_models` (`scoring.verify`): a served ORM as
    # `meta.verifier_value`, `refine.verifier_feedback`, `scoring.JointScorer`
    def reply_scores(self, prompt: str, replies) -> list:
        return self._scored(self.reply_scores_and_cost, prompt, replies)[0]

    def reply_cost(self, prompt: str, replies) -> Cost:
        return self._cost(self.reply_scores_and_cost, prompt, replies)


class ServerProcessScorer(_PooledScorer):
    """A process reward model served by vLLM with STEP pooling (Math-Shepherd, Wang et al.
    2024; Qwen2.5-Math-PRM, Zhang et al. 2025): the reply is split into steps (on
    ``step_split``, empty steps dropped), each step is followed by ``tag``, and the server
    answers one row per tag; p_k = row_k[good] is the probability that step k is right, and
    v = reduce(p_1..p_K) (min, last, prod, mean; `scoring.ProcessScorer`).

    Defaults follow Qwen2.5-Math-PRM (``tag="<extra_0>"``, ``good=1``); for Math-Shepherd give
    ``tag="ки"``, ``good=0``, ``joiner="\\n"`` and start the server with the STEP pooler config
    of the module docstring.  The input is ``prompt + joiner.join(step + tag ...)``, or
    ``format(prompt, steps)`` (which must put one tag after each step).  A Qwen PRM reads its
    chat template: give a ``format`` that writes it, as the server reads ``input`` as it is.
    Offers the PRM protocol of `workbench.reward_models` (``step_scores`` / ``step_cost``,
    ``reply_scores`` / ``reply_cost``): `scoring.ProcessScorer`, `meta.prm_value` and the
    verifier users take it.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", model: str | None = None,
                 tag: str = "<extra_0>", good: int = 1, step_split: str = "\n",
                 joiner: str = "", reduce: str = "min", format=None, batch_size: int = 32,
                 timeout: float = 120.0, api_key: str | None = None, concurrency: int = 8,
                 retries: int = 3, backoff: float = 0.5, name: str | None = None,
                 extra: dict | None = None):
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"tag must be a non-empty string, got {tag!r}")
        if not isinstance(step_split, str) or not step_split:
            raise ValueError(f"step_split must be a non-empty string, got {step_split!r}")
        if reduce not in REDUCERS:
            raise ValueError(f"reduce must be one of {', '.join(REDUCERS)}, got {reduce!r}")
        if format is not None and not callable(format):
            raise TypeError(f"format must be a function (prompt, steps) -> str, got {format!r}")
        super().__init__(base_url, model, "pooling", good, batch_size, timeout, api_key,
                         concurrency, retries, backoff, name, extra)
        self.tag, self.step_split, self.joiner, self.reduce = tag, step_split, joiner, reduce
        self._format = format

    def format(self, prompt: str, steps) -> str:
        if self._format is not None:
            return self._format(prompt, list(steps))
        return prompt + self.joiner.join(s + self.tag for s in steps)

    def step_scores_and_cost(self, prompt: str, replies) -> tuple:
        """(p_1..p_K for each reply, the external-token cost)."""
        split = [split_steps(r, self.step_split) for r in replies]
        if not split:
            return [], Cost()
        rows, cost = self._pooled([self.format(prompt, s) for s in split])
        url, out = self.base_url + self.path, []
        for steps, r in zip(split, rows):
            if len(r) != len(steps):
                raise BackendError(f"{url} answered {len(r)} step rows for {len(steps)} steps: "
                                   f"serve the PRM with STEP pooling on the tag {self.tag!r} "
                                   f"(see docs/servers.md), and keep the tag out of the "
                                   f"prompt and the steps")
            out.append([self._pick(v, url) for v in r])
        return out, cost

    def __call__(self, prompt, outputs):
        replies = [o if isinstance(o, str) else o.text for o in outputs]
        steps, cost = self.step_scores_and_cost(prompt, replies)
        return [REDUCERS[self.reduce](s) for s in steps], cost

    # the PRM protocol of `workbench.reward_models`: a served PRM as `scoring.ProcessScorer`,
    # `meta.prm_value` (step scores) and as a verifier (reduced scores)
    def step_scores(self, prompt: str, replies) -> list:
        return self._scored(self.step_scores_and_cost, prompt, replies)[0]

    def step_cost(self, prompt: str, replies) -> Cost:
        return self._cost(self.step_scores_and_cost, prompt, replies)

    def reply_scores(self, prompt: str, replies) -> list:
        return [REDUCERS[self.reduce](s) for s in self.step_scores(prompt, replies)]

    def reply_cost(self, prompt: str, replies) -> Cost:
        return self.step_cost(prompt, replies)


def _index(item):
    return item.get("index") if isinstance(item, dict) else None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _softmax(logits):
    if not isinstance(logits, list) or not logits or not all(map(_number, logits)):
        return None
    top = max(logits)
    exps = [math.exp(z - top) for z in logits]
    return [e / sum(exps) for e in exps]
