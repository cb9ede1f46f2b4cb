"""A generator over an OpenAI-compatible ``/v1/completions`` server, concurrent over ``httpx``.

``CompletionsGenerator(base_url, model).generate(prompt, n, seed)`` returns ``n`` `TextOutput`s
(``.text``, ``.cost``, ``.logprob``), so it plugs into every meta-generator of `workbench.meta`
as the survey's black-box generator g(y | x).  ``generate_batch(prompts, n, seed)`` sends the
prompts' requests concurrently (at most ``concurrency`` in flight) and returns their outputs in
the prompts' order.

* Batching: the ``n`` samples are asked for in one request (``"n": n``); a server that ignores
  ``n`` (``transformers serve`` does) answers with fewer choices, and the rest are asked for one
  request each.  The generator remembers which kind of server it talks to.
* Seeds: with ``seed`` given, sample i gets the integer seed ``s_i`` derived from it, and a
  batched request sends ``s_0``; the same seed gives the same outputs on a deterministic server.
  In ``generate_batch`` prompt i gets ``workbench.rng.split(seed, len(prompts))[i]``, so the
  outputs do not depend on how the concurrent requests interleave.
* Retries: HTTP 429, 5xx and dropped connections are retried ``retries`` times, waiting
  ``backoff * 2**k`` seconds (or the server's ``Retry-After``) before retry k; other 4xx
  answers, refused connections and timeouts (``timeout`` seconds per request) are not.
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
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import httpx

from ..budget import Cost
from ..meta.base import Generator, TextOutput, batch_seeds
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


RETRY_STATUS = (429, 500, 502, 503, 504)  # answers worth asking again (rate limit, overload)


class ServerClient:
    """The HTTP plumbing shared by this package's generators and scorers: one ``httpx`` client
    per object, at most ``concurrency`` requests in flight (over all threads sharing it), 429/5xx
    answers and dropped connections retried ``retries`` times after ``backoff * 2**k`` seconds
    (or the server's ``Retry-After``), and errors that name the URL (`BackendError`,
    `ServerUnavailable`, `ModelNotServed`).  ``base_url`` is the server's root (a trailing
    ``/v1`` is accepted); ``model`` the served model's name (None: the server's only one)."""

    missing = "is this an OpenAI-compatible server?"  # the hint of a 404 answer

    def __init__(self, base_url: str, model: str | None, timeout: float,
                 api_key: str | None, concurrency: int, retries: int, backoff: float):
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        _check_count("concurrency", concurrency, 1)
        _check_count("retries", retries, 0)
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
        root = base_url.rstrip("/")
        self.base_url = root[:-3] if root.endswith("/v1") else root
        self.model, self.timeout, self.api_key = model, timeout, api_key
        self.concurrency, self.retries, self.backoff = concurrency, retries, backoff
        self._slots = threading.BoundedSemaphore(concurrency)
        self._client = None
        self._lock = threading.Lock()

    def __repr__(self):
        return f"{type(self).__name__}({self.base_url!r}, model={self.model!r})"

    def models(self) -> list:
        """Names of the models the server lists at ``/v1/models`` ([] if it lists none)."""
        try:
            data = self._http("GET", "/v1/models", retries=0)
        except BackendError:
            return []
        return [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]

    def close(self) -> None:
        """Close the HTTP connections (a later request opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _concurrently(self, fn, jobs) -> list:
        """``[fn(job) for job in jobs]`` on up to ``concurrency`` threads, in the jobs' order;
        the first failing job's error (in that order) is raised, after the others settle."""
        if len(jobs) <= 1 or self.concurrency == 1:
            return [fn(job) for job in jobs]
        with ThreadPoolExecutor(min(self.concurrency, len(jobs))) as pool:
            futures = [pool.submit(fn, job) for job in jobs]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    # -- HTTP ------------------------------------------------------------------------------

    def _http_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Accept": "application/json"}
                if self.api_key:
                    headers["Authorization"] = f"Bearer {self.api_key}"
                self._client = httpx.Client(
                    headers=headers, timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(max_connections=None,
                                        max_keepalive_connections=self.concurrency))
                weakref.finalize(self, self._client.close)  # no open sockets left behind
            return self._client

    def _http(self, method, path, body=None, retries=None) -> dict:
        """One request, retried on 429/5xx and dropped connections; the answer's JSON."""
        url = self.base_url + path
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                with self._slots:
                    r = self._http_client().request(method, url, json=body)
            except httpx.TimeoutException as e:
                raise ServerUnavailable(f"no answer from {url} within timeout={self.timeout} s "
                                        f"({type(e).__name__}); the server is busy or "
                                        f"stuck") from None
            except httpx.ConnectError as e:
                raise ServerUnavailable(
                    f"no OpenAI-compatible server answers at {self.base_url} ({e}); start one "
                    f"(see docs/servers.md) or check base_url") from None
            except httpx.TransportError as e:  # reset or closed mid-request
                if last:
                    raise ServerUnavailable(f"the connection to {url} broke {attempt + 1} "
                                            f"times ({type(e).__name__}: {e})") from None
                self._wait(attempt, None)
                continue
            if r.status_code in RETRY_STATUS and not last:
                self._wait(attempt, r.headers.get("Retry-After"))
                continue
            if r.status_code >= 400:
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                raise self._http_error(url, r.status_code, _detail(r.content) + tries)
            try:
                return r.json()
            except ValueError:
                raise BackendError(f"{url} did not answer with JSON: {r.content[:200]!r}") \
                    from None

    def _wait(self, attempt, retry_after) -> None:
        """Sleep before retry ``attempt + 1``: the server's Retry-After (up to 60 s) when it
        gives one in seconds, else ``backoff * 2**attempt``."""
        try:
            delay = min(float(retry_after), 60.0)
        except (TypeError, ValueError):
            delay = self.backoff * 2 ** attempt
        time.sleep(max(delay, 0.0))

    def _http_error(self, url, status, detail) -> BackendError:
        named = self.model is not None and self.model in detail
        if (status in (400, 404) and named) or (status == 404 and "model" in detail.lower()):
            served = self.models()
            return ModelNotServed(f"the server at {self.base_url} does not serve model "
                                  f"{self.model!r} (HTTP {status}: {detail}); it serves "
                                  f"{served or 'models it does not list'}")
        if status == 404:
            return BackendError(f"{url} does not exist (HTTP 404: {detail}); {self.missing}")
        return BackendError(f"{url} answered HTTP {status}: {detail}")



class CompletionsGenerator(ServerClient, Generator):
    """Sampling from a model behind an OpenAI-compatible completions endpoint.

    ``base_url`` is the server's root (``http://127.0.0.1:8000``; a trailing ``/v1`` is
    accepted).  ``model`` is the served model's name (None: the server's only/pinned model).
    ``extra`` adds fields to every request body (server-specific options, e.g.
    `TRANSFORMERS_SERVE_SAMPLING`, or vLLM's ``{"top_k": 50}``).  ``timeout`` is the seconds to
    wait for each answer; ``concurrency`` caps the requests in flight at once (over all threads
    sharing the generator); ``retries`` and ``backoff`` set how 429/5xx answers and dropped
    connections are retried (`ServerClient`).
    """

    path = "/v1/completions"

    def __init__(self, base_url: str = "http://127.0.0.1:8000", model: str | None = None,
                 max_tokens: int = 128, temperature: float = 1.0, top_p: float | None = None,
                 stop=None, logprobs: bool = True, timeout: float = 120.0,
                 api_key: str | None = None, extra: dict | None = None, name: str | None = None,
                 concurrency: int = 8, retries: int = 3, backoff: float = 0.5):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        super().__init__(base_url, model, timeout, api_key, concurrency, retries, backoff)
        self.max_tokens, self.temperature, self.top_p = max_tokens, temperature, top_p
        self.stop, self.logprobs = stop, logprobs
        self.extra = dict(extra or {})
        self.name = name or f"{type(self).__name__.replace('Generator', '').lower()}" \
                            f"({model or self.base_url})"
        self.batches: bool | None = None  # does the server honour "n"? (None: not known yet)

    # -- the generator protocol ------------------------------------------------------------

    def generate(self, prompt, n: int = 1, seed=None) -> list:
        self._check(prompt, n)
        seeds = self._sample_seeds(seed, n)
        outs = []
        if self.batches is not False:
            outs = self._complete(prompt, n, seeds[0])
            if n > 1:
                self.batches = len(outs) >= n
        while len(outs) < n:  # the server ignored "n": one request per remaining sample
            outs += self._complete(prompt, 1, seeds[len(outs)])[:1]
        return outs[:n]

    def generate_batch(self, prompts, n: int = 1, seed=None) -> list:
        """``n`` outputs for each prompt, requested concurrently (at most ``concurrency`` in
        flight); the result lists follow the prompts' order whatever order the answers arrive
        in, and equal ``[generate(p, n, s) for p, s in zip(prompts, batch_seeds(seed, k))]``."""
        prompts = list(prompts)
        for p in prompts:
            self._check(p, n)
        seeds = batch_seeds(seed, len(prompts))
        if self.batches is False and n > 1:  # one request per sample: fan the samples out
            jobs = [(p, s) for p, s in zip(prompts, seeds)
                    for s in self._sample_seeds(s, n)]
            flat = self._concurrently(lambda job: self._complete(job[0], 1, job[1])[:1], jobs)
            return [sum(flat[i * n:(i + 1) * n], []) for i in range(len(prompts))]
        return self._concurrently(lambda job: self.generate(job[0], n, job[1]),
                                  list(zip(prompts, seeds)))

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _check(prompt, n):
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")

    @staticmethod
    def _sample_seeds(seed, n) -> list:
        return [None] * n if seed is None else [s % 2**31 for s in _seeds(seed, n)]

    # -- one request -----------------------------------------------------------------------

    def _body(self, prompt, n, seed) -> dict:
        """The request body: the prompt plus the sampling fields every OpenAI server reads."""
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
        return body

    def _complete(self, prompt, n, seed) -> list:
        data = self._http("POST", self.path, self._body(prompt, n, seed))
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        usage = data.get("usage")
        if not choices:
            raise BackendError(f"{self.base_url}{self.path} returned no choices: {data}")
        if not usage or usage.get("prompt_tokens") is None:
            raise BackendError(f"{self.base_url}{self.path} returned no token `usage`, so "
                               f"the cost cannot be counted: {data}")
        if active():
            emit("request", url=self.base_url, n=n, seed=seed, choices=len(choices),
                 prompt_tokens=usage["prompt_tokens"],
                 completion_tokens=usage.get("completion_tokens"))
        return self._outputs(choices, usage, seed)

    @staticmethod
    def _text(choice) -> str:
        return choice.get("text", "")

    @staticmethod
    def _token_logprobs(choice):
        """(tokens, their log-probs) of a choice, or (None, None) when the server sent none."""
        lp = choice.get("logprobs") or {}
        return lp.get("tokens"), lp.get("token_logprobs")

    def _outputs(self, choices, usage, seed) -> list:
        toks, lps = zip(*(self._token_logprobs(c) for c in choices))
        done = int(usage.get("completion_tokens") or 0)
        lens = [len(lp) if lp is not None else None for lp in lps]
        if None in lens or sum(lens) != done:  # no per-choice counts: split the total evenly
            lens = [done // len(choices) + (i < done % len(choices))
                    for i in range(len(choices))]
        outs = []
        for i, (c, tk, lp, k) in enumerate(zip(choices, toks, lps, lens)):
            cost = Cost(input_tokens=int(usage["prompt_tokens"]), output_tokens=k,
                        calls=int(i == 0))
            logprob = None if lp is None else float(sum(x for x in lp if x is not None))
            outs.append(TextOutput(self._text(c), cost, logprob, info={
                "finish_reason": c.get("finish_reason"), "seed": seed,
                "tokens": tk, "token_logprobs": lp}))
        return outs


def _check_count(name, value, least) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


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


class ChatGenerator(CompletionsGenerator):
    """`CompletionsGenerator` over ``/v1/chat/completions``: the prompt is sent as one user
    message (after ``system``, when given) and the server applies the model's chat template.
    Batching, seeds, concurrency, retries and costs are the completions generator's; log-probs
    are read from the chat format (``logprobs.content[i].logprob``)."""

    path = "/v1/chat/completions"

    def __init__(self, base_url: str = "http://127.0.0.1:8000", model: str | None = None,
                 system: str | None = None, **kw):
        super().__init__(base_url, model, **kw)
        self.system = system

    def messages(self, prompt: str) -> list:
        """The chat messages a prompt is sent as."""
        first = [{"role": "system", "content": self.system}] if self.system else []
        return first + [{"role": "user", "content": prompt}]

    def _body(self, prompt, n, seed) -> dict:
        body = super()._body(prompt, n, seed)
        del body["prompt"]
        body["messages"] = self.messages(prompt)
        if self.logprobs:
            body["logprobs"] = True
        return body

    @staticmethod
    def _text(choice) -> str:
        return (choice.get("message") or {}).get("content") or ""

    @staticmethod
    def _token_logprobs(choice):
        content = (choice.get("logprobs") or {}).get("content")
        if content is None:
            return None, None
        return [t.get("token") for t in content], [t.get("logprob") for t in content]


class ServerLogProbScorer:
    """v(x, y) = log p_theta(y | x) computed by the server: the scorer interface of
    `workbench.scoring` (``scorer(prompt, outputs) -> (scores, cost)``) over a completions
    server that returns prompt log-probs (``"echo": true`` with ``"logprobs"``, as vLLM does).

    Each output's text is sent after the prompt, and the log-probs of the tokens that start
    inside the text are summed (a token straddling the prompt/text boundary counts for the
    prompt).  The requests go out concurrently; their tokens are booked as external tokens
    (Table 5).  A server without prompt log-probs (``transformers serve``) gets a
    `BackendError` that says so.
    """

    def __init__(self, generator: CompletionsGenerator, per_token: bool = False):
        if not isinstance(generator, CompletionsGenerator) or isinstance(generator,
                                                                         ChatGenerator):
            raise TypeError("ServerLogProbScorer needs a CompletionsGenerator (prompt "
                            f"log-probs come from /v1/completions), got {generator!r}")
        self.generator, self.per_token = generator, per_token

    def __call__(self, prompt, outputs):
        texts = [o if isinstance(o, str) else o.text for o in outputs]
        parts = self.generator._concurrently(lambda t: self.logprob(prompt, t), texts)
        cost = sum((Cost(external_tokens=k) for _, _, k in parts), Cost())
        scores = [lp / max(n, 1) if self.per_token else lp for lp, n, _ in parts]
        return scores, cost

    def logprob(self, prompt: str, text: str) -> tuple:
        """(log p(text | prompt), the text's token count, the tokens the server read)."""
        g = self.generator
        body = g._body(prompt + text, 1, None)
        body.update(echo=True, max_tokens=1, temperature=0.0, logprobs=1)
        try:
            data = g._http("POST", g.path, body)
        except (ServerUnavailable, ModelNotServed):
            raise
        except BackendError as e:  # e.g. a server that refuses the "echo" field
            raise self._unsupported(f" ({e})") from None
        lp = ((data.get("choices") or [{}])[0].get("logprobs") or {})
        offsets, values = lp.get("text_offset"), lp.get("token_logprobs")
        if not offsets or not values or len(offsets) != len(values):
            raise self._unsupported("")
        start, end = len(prompt), len(prompt) + len(text)
        mine = [v for o, v in zip(offsets, values) if start <= o < end and v is not None]
        read = int((data.get("usage") or {}).get("prompt_tokens") or len(offsets))
        return float(sum(mine)), len(mine), read

    def _unsupported(self, why: str) -> BackendError:
        return BackendError(
            f"the server at {self.generator.base_url} returns no prompt log-probs (a completions "
            f"request with echo + logprobs, as vLLM answers it){why}; score with a local copy "
            f"of the model instead: scoring.LogProbScorer(lm)")
