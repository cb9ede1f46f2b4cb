"""A generator over an OpenAI-compatible ``/v1/completions`` server (standard library only).

``CompletionsGenerator(base_url, model).generate(prompt, n, seed)`` returns ``n`` `TextOutput`s
(``.text``, ``.cost``, ``.logprob``), so it plugs into every meta-generator of `workbench.meta`
as the survey's black-box generator g(y | x).  HTTP goes through ``urllib`` (no dependency).

* Batching: the ``n`` samples are asked for in one request (``"n": n``); a server that ignores
  ``n`` (``transformers serve`` does) answers with fewer choices, and the rest are asked for one
  request each.  The generator remembers which kind of server it talks to.
* Seeds: with ``seed`` given, sample i gets the integer seed ``s_i`` derived from it, and a
  batched request sends ``s_0``; the same seed gives the same outputs on a deterministic server.
* Cost (Table 5): every output books the prompt's tokens as input and its own completion
  tokens as output, from the server's ``usage`` (split over the choices by their log-prob token
  counts, or evenly when the server gives none); each request counts one call.  A remote
  server's forward passes are unknown and stay 0.
* Log-probs: requested with ``"logprobs": 1``; ``.logprob`` is the sum of the sampled tokens'
  log-probabilities when the server returns them, else None.  vLLM returns log p_theta before
  temperature/top-p by default; other servers may differ.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from ..budget import Cost
from ..meta.base import TextOutput
from ..rng import split as _seeds
from ..trace import active, emit

# ``transformers serve`` decodes greedily unless the request's generation config samples.
TRANSFORMERS_SERVE_SAMPLING = {"generation_config": json.dumps({"do_sample": True})}


class BackendError(RuntimeError):
    """The server answered, but not with a usable completion."""


class ServerUnavailable(BackendError, ConnectionError):
    """No server answers at the address (refused, unknown host or timed out)."""


class ModelNotServed(BackendError, LookupError):
    """The server runs but does not serve the requested model."""


class CompletionsGenerator:
    """Sampling from a model behind an OpenAI-compatible completions endpoint.

    ``base_url`` is the server's root (``http://127.0.0.1:8000``; a trailing ``/v1`` is
    accepted).  ``model`` is the served model's name (None: the server's only/pinned model).
    ``extra`` adds fields to every request body (server-specific options, e.g.
    `TRANSFORMERS_SERVE_SAMPLING`, or vLLM's ``{"top_k": 50}``).  ``timeout`` is the seconds to
    wait for each answer.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", model: str | None = None,
                 max_tokens: int = 128, temperature: float = 1.0, top_p: float | None = None,
                 stop=None, logprobs: bool = True, timeout: float = 120.0,
                 api_key: str | None = None, extra: dict | None = None, name: str | None = None):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        root = base_url.rstrip("/")
        self.base_url = root[:-3] if root.endswith("/v1") else root
        self.model, self.max_tokens, self.temperature, self.top_p = (model, max_tokens,
                                                                     temperature, top_p)
        self.stop, self.logprobs, self.timeout, self.api_key = stop, logprobs, timeout, api_key
        self.extra = dict(extra or {})
        self.name = name or f"completions({model or self.base_url})"
        self.batches: bool | None = None  # does the server honour "n"? (None: not known yet)

    # -- the generator protocol ------------------------------------------------------------

    def generate(self, prompt: str, n: int = 1, seed=None) -> list:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        seeds = [None] * n if seed is None else [s % 2**31 for s in _seeds(seed, n)]
        outs = []
        if self.batches is not False:
            outs = self._complete(prompt, n, seeds[0])
            if n > 1:
                self.batches = len(outs) >= n
        while len(outs) < n:  # the server ignored "n": one request per remaining sample
            outs += self._complete(prompt, 1, seeds[len(outs)])[:1]
        return outs[:n]

    def __call__(self, prompt, seed=None):
        return self.generate(prompt, 1, seed)[0]

    def __repr__(self):
        return f"CompletionsGenerator({self.base_url!r}, model={self.model!r})"

    def models(self) -> list:
        """Names of the models the server lists at ``/v1/models`` ([] if it lists none)."""
        try:
            data = self._http("GET", "/v1/models")
        except BackendError:
            return []
        return [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]

    # -- one request -----------------------------------------------------------------------

    def _complete(self, prompt, n, seed) -> list:
        body = {"prompt": prompt, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "n": n}
        if self.model is not None:
            body["model"] = self.model
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.stop:
            body["stop"] = self.stop
        if self.logprobs:
            body["logprobs"] = 1
        if seed is not None:
            body["seed"] = seed
        body.update(self.extra)
        data = self._http("POST", "/v1/completions", body)
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        usage = data.get("usage")
        if not choices:
            raise BackendError(f"{self.base_url}/v1/completions returned no choices: {data}")
        if not usage or usage.get("prompt_tokens") is None:
            raise BackendError(f"{self.base_url}/v1/completions returned no token `usage`, so "
                               f"the cost cannot be counted: {data}")
        if active():
            emit("request", url=self.base_url, n=n, seed=seed, choices=len(choices),
                 prompt_tokens=usage["prompt_tokens"],
                 completion_tokens=usage.get("completion_tokens"))
        return self._outputs(choices, usage, seed)

    @staticmethod
    def _outputs(choices, usage, seed) -> list:
        lps = [(c.get("logprobs") or {}).get("token_logprobs") for c in choices]
        done = int(usage.get("completion_tokens") or 0)
        lens = [len(lp) if lp is not None else None for lp in lps]
        if None in lens or sum(lens) != done:  # no per-choice counts: split the total evenly
            lens = [done // len(choices) + (i < done % len(choices))
                    for i in range(len(choices))]
        outs = []
        for i, (c, lp, k) in enumerate(zip(choices, lps, lens)):
            cost = Cost(input_tokens=int(usage["prompt_tokens"]), output_tokens=k,
                        calls=int(i == 0))
            logprob = None if lp is None else float(sum(x for x in lp if x is not None))
            outs.append(TextOutput(c.get("text", ""), cost, logprob, info={
                "finish_reason": c.get("finish_reason"), "seed": seed,
                "tokens": (c.get("logprobs") or {}).get("tokens"), "token_logprobs": lp}))
        return outs

    def _http(self, method, path, body=None) -> dict:
        url = self.base_url + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise self._http_error(url, e.code, _detail(e.read())) from None
        except (socket.timeout, TimeoutError) as e:
            raise ServerUnavailable(f"no answer from {url} within timeout={self.timeout} s "
                                    f"({e}); the server is busy or stuck") from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise ServerUnavailable(f"no answer from {url} within timeout={self.timeout} s; "
                                        f"the server is busy or stuck") from None
            raise ServerUnavailable(
                f"no OpenAI-compatible server answers at {self.base_url} ({reason}); start one "
                f"(see docs/servers.md) or check base_url") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise BackendError(f"{url} did not answer with JSON: {raw[:200]!r}") from None

    def _http_error(self, url, status, detail) -> BackendError:
        named = self.model is not None and self.model in detail
        if (status in (400, 404) and named) or (status == 404 and "model" in detail.lower()):
            served = self.models()
            return ModelNotServed(f"the server at {self.base_url} does not serve model "
                                  f"{self.model!r} (HTTP {status}: {detail}); it serves "
                                  f"{served or 'models it does not list'}")
        if status == 404:
            return BackendError(f"{url} does not exist (HTTP 404: {detail}); is this an "
                                f"OpenAI-compatible server?")
        return BackendError(f"{url} answered HTTP {status}: {detail}")


def _detail(raw: bytes) -> str:
    """The error message of an OpenAI-style, vLLM, SGLang or FastAPI error body."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:300].decode(errors="replace")
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        for key in ("message", "detail", "error"):
            if key in data:
                return str(data[key])
    return str(data)[:300]
