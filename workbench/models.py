"""The language model p_theta (survey §2.2): logits, KV cache, scoring, token counting.

`LanguageModel` wraps any Hugging Face causal LM and its tokenizer.  It gives next-token logits
s_theta(. | y_<t, x) for batches of prefixes (left-padded, with explicit position ids so padding
never changes a result), incremental decoding with a KV cache (`DecodeState`) whose rows can be
repeated, selected and copied so that many continuations share one computed prefix, and the
log-probability of continuations given a prompt.  Every forward pass is counted: passes and token
positions actually computed (`LanguageModel.counter`).
"""
from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field

import torch
import transformers

from .budget import Cost

# -- the one compatibility point with transformers' cache API ---------------------------------
# transformers 5.24 renamed the KV cache argument and output field of every model from
# ``past_key_values`` to ``cache`` (the old name warns until it is removed in 5.40).  Everything
# in the workbench that hands a cache to a model, or reads one back, goes through these two.
_RELEASE = tuple(int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
CACHE_ARG = "cache" if _RELEASE >= (5, 24) else "past_key_values"


def cache_kwargs(cache) -> dict:
    """``{name: cache}`` for a model's forward, under this transformers release's name."""
    return {CACHE_ARG: cache}


def output_cache(out):
    """The KV cache a model's forward returned (``out.cache``, or ``out.past_key_values`` before
    transformers 5.24)."""
    return getattr(out, CACHE_ARG)


def pick_device(device=None) -> torch.device:
    """``device`` if given, else cuda, then mps, then cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Counter:
    """Running totals of the work a model did (``forward_passes``, ``computed_tokens``), kept per
    thread: `snapshot` and `since` count the calling thread's work only, so a cost measured in
    one thread stays right while other threads run the same model (a sweep's ``--concurrency``);
    the totals are every thread's."""

    def __init__(self):
        self._by_thread = {}  # thread id -> (forward passes, computed tokens)

    def add(self, passes: int, tokens: int) -> None:
        key = threading.get_ident()
        p, t = self._by_thread.get(key, (0, 0))
        self._by_thread[key] = (p + passes, t + tokens)

    @property
    def forward_passes(self) -> int:
        return sum(p for p, _ in list(self._by_thread.values()))

    @property
    def computed_tokens(self) -> int:
        return sum(t for _, t in list(self._by_thread.values()))

    def snapshot(self):
        return self._by_thread.get(threading.get_ident(), (0, 0))

    def since(self, snap) -> Cost:
        p, t = self.snapshot()
        return Cost(forward_passes=p - snap[0], computed_tokens=t - snap[1])


@dataclass
class DecodeState:
    """Rows being decoded together: their KV cache, attention mask, next positions, last logits.

    ``ids[i]`` holds every token of row ``i`` (prompt and generated, without padding).
    """
    lm: "LanguageModel"
    cache: object
    mask: torch.Tensor          # (B, L) 1 for real tokens, 0 for left padding
    positions: torch.Tensor     # (B,) position id of the next token
    logits: torch.Tensor        # (B, V) next-token logits
    ids: list = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        return self.mask.shape[0]

    def select(self, rows, inplace: bool = False) -> "DecodeState":
        """A state with the given rows (repeats allowed): beam reordering, branching.

        By default the cache is copied, so this state stays usable (tree search keeps parents
        alive); ``inplace=True`` reuses it (beam search, which drops the old rows).
        """
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.mask.device)
        cache = self.cache if inplace else copy.deepcopy(self.cache)
        cache.reorder_cache(idx)
        return DecodeState(self.lm, cache, self.mask[idx], self.positions[idx],
                           self.logits[idx], [list(self.ids[i]) for i in idx.tolist()])

    def repeat(self, n: int) -> "DecodeState":
        """Each row repeated ``n`` times (rows stay grouped): N samples share one prefix."""
        return self.select([i for i in range(self.batch_size) for _ in range(n)])

    def crop(self, n_tokens: int, logits: torch.Tensor | None = None) -> "DecodeState":
        """Drop the last ``n_tokens`` of every row in place, without a forward pass.

        ``logits`` (B, V) are the next-token logits after the kept tokens when the caller has
        them (speculative decoding reads them from its verification pass); without them the
        state has no logits until the next `LanguageModel.advance` (`LanguageModel.rewind`
        recomputes them with one pass).  Rows must not end in padding.
        """
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
            raise ValueError(f"n_tokens must be an integer >= 0, got {n_tokens!r}")
        if n_tokens > min(len(r) for r in self.ids):
            raise ValueError(f"n_tokens={n_tokens} is more than the shortest row holds")
        if n_tokens:
            self.cache.crop(-n_tokens)   # a negative count means "remove" in v4 and v5 alike
            self.mask = self.mask[:, :-n_tokens]
            self.positions = self.positions - n_tokens
            for row in self.ids:
                del row[-n_tokens:]
            self.logits = None
        if logits is not None:
            self.logits = logits.reshape(self.batch_size, -1)
        return self

    def cache_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in cache_tensors(self.cache))


def cache_tensors(cache) -> list:
    """Key and value tensors of a transformers cache, across library versions."""
    if hasattr(cache, "layers"):
        out = []
        for layer in cache.layers:
            for name in ("keys", "values"):
                t = getattr(layer, name, None)
                if t is not None:
                    out.append(t)
        return out
    return list(getattr(cache, "key_cache", [])) + list(getattr(cache, "value_cache", []))


class LanguageModel:
    """A causal LM with its tokenizer: ``lm.model`` and ``lm.tokenizer`` are the HF objects."""

    def __init__(self, model, tokenizer, name: str = "model", device=None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = next(model.parameters()).device if device is None else torch.device(device)
        self.counter = Counter()
        self.cache_factory = None   # () -> empty transformers cache; None: the library's default
        cfg = model.config
        self.vocab_size = cfg.vocab_size
        self.max_length = getattr(cfg, "max_position_embeddings", None) or 4096
        self.eos_token_id = tokenizer.eos_token_id
        self.bos_token_id = tokenizer.bos_token_id
        self.pad_token_id = (tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                             else self.eos_token_id)
        self._adds_bos = self.bos_token_id is not None and \
            tokenizer("a")["input_ids"][:1] == [self.bos_token_id]

    def __repr__(self):
        n = sum(p.numel() for p in self.model.parameters())
        return (f"LanguageModel({self.name!r}, {n / 1e6:.1f}M parameters, "
                f"vocab {self.vocab_size}, context {self.max_length}, {self.device})")

    # -- text <-> tokens -------------------------------------------------------------------
    def encode(self, text: str, bos: bool = True) -> list:
        """Token ids of ``text`` (with the BOS token first when the tokenizer uses one)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ([self.bos_token_id] if bos and self._adds_bos else []) + list(ids)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_strings(self, ids) -> list:
        """Each token as the text it stands for (``' cat'``, ``'\\n'``, ...)."""
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def prompt_ids(self, prompt, max_new_tokens: int = 0) -> list:
        """Validate a prompt (text or ids) and return its ids."""
        if isinstance(prompt, str):
            if prompt == "" and not self._adds_bos:
                raise ValueError("prompt is empty and this tokenizer has no BOS token to start from")
            ids = self.encode(prompt)
        else:
            ids = [int(i) for i in prompt]
            bad = [i for i in ids if not 0 <= i < self.vocab_size]
            if bad:
                raise ValueError(f"prompt contains token ids outside the vocabulary: {bad[:5]}")
        if not ids:
            raise ValueError("prompt is empty: give at least one token")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if len(ids) + max_new_tokens > self.max_length:
            raise ValueError(
                f"prompt has {len(ids)} tokens and max_new_tokens={max_new_tokens}: together more "
                f"than the model's context of {self.max_length} tokens; shorten the prompt")
        return ids

    # -- forward passes --------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, ids, mask=None, positions=None, cache=None, hidden: bool = False):
        """One counted forward pass: ``(logits (B, T, V), cache)``; ``hidden=True`` adds a third
        item, the last layer's hidden states (B, T, d) (HF's ``output_hidden_states``)."""
        ids = torch.as_tensor(ids, device=self.device)
        if cache is None and self.cache_factory is not None:
            cache = self.cache_factory()
        kw = {"use_cache": True, **cache_kwargs(cache),
              **({"output_hidden_states": True} if hidden else {}),
              **({} if mask is None else {"attention_mask": mask}),
              **({} if positions is None else {"position_ids": positions})}
        out = self.model(input_ids=ids, **kw)
        self.counter.add(1, int(ids.numel() if mask is None else mask[:, -ids.shape[1]:].sum()))
        logits, cache = out.logits.float(), output_cache(out)
        self._check_finite(logits, cache)
        return (logits, cache, out.hidden_states[-1].float()) if hidden else (logits, cache)

    def _check_finite(self, logits, cache) -> None:
        """Refuse NaN or +inf logits (a half-precision overflow, a broken checkpoint): every
        adapter and sampler downstream would pass them on silently.  -inf is a model's own mask
        and stays allowed."""
        bad = torch.isnan(logits) | torch.isposinf(logits)
        if not bad.any():
            return
        row, col = (int(i) for i in bad.any(-1).nonzero()[0])
        seen = cache.get_seq_length() if hasattr(cache, "get_seq_length") else logits.shape[1]
        raise FloatingPointError(
            f"model {self.name!r} returned non-finite logits (NaN or +inf) for row {row} at "
            f"sequence position {seen - logits.shape[1] + col} (forward pass "
            f"{self.counter.forward_passes}, dtype {next(self.model.parameters()).dtype}); in "
            f"half precision this is usually an overflow: load the model with "
            f"dtype=torch.float32")

    def _batch(self, rows):
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, n - len(r):] = torch.tensor(r)
            mask[i, n - len(r):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def prefill(self, prompts, n: int = 1) -> DecodeState:
        """Run the prompts once and return a state for decoding ``n`` continuations of each.

        The ``n`` copies of a prompt share its computed prefix: only ``len(prompt)`` positions
        are computed, however large ``n`` is.
        """
        rows = [self.prompt_ids(p) for p in _as_list(prompts)]
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if len(rows) == 1:
            ids = torch.tensor(rows, device=self.device)
            mask = torch.ones_like(ids)
            logits, cache = self.forward(ids)
            positions = torch.tensor([ids.shape[1]], device=self.device)
        else:
            ids, mask, pos = self._batch(rows)
            logits, cache = self.forward(ids, mask, pos)
            positions = pos[:, -1] + 1
        state = DecodeState(self, cache, mask, positions, logits[:, -1], [list(r) for r in rows])
        return state.repeat(n) if n > 1 else state

    def advance(self, state: DecodeState, tokens) -> DecodeState:
        """Append one token per row (a tensor or list of shape (B,)); updates ``state`` in place."""
        tok = torch.as_tensor(tokens, device=self.device).view(-1, 1)
        if tok.shape[0] != state.batch_size:
            raise ValueError(f"tokens must have one entry per row ({state.batch_size})")
        state.mask = torch.cat([state.mask, torch.ones_like(tok)], dim=1)
        full = bool(state.mask.all())
        logits, state.cache = self.forward(
            tok, None if full else state.mask, None if full else state.positions.view(-1, 1),
            state.cache)
        state.positions = state.positions + 1
        state.logits = logits[:, -1]
        for row, t in zip(state.ids, tok.view(-1).tolist()):
            row.append(t)
        return state

    def extend(self, state: DecodeState, tokens: list) -> torch.Tensor:
        """Append several tokens to a single-row state in one pass; returns their logits (T, V).

        ``logits[j]`` is the next-token distribution after ``tokens[j]`` (used to verify drafts).
        """
        if state.batch_size != 1:
            raise ValueError("extend works on a single-row state")
        tok = torch.tensor([list(tokens)], device=self.device)
        state.mask = torch.cat([state.mask, torch.ones_like(tok)], dim=1)
        pos = state.positions.view(1, 1) + torch.arange(tok.shape[1], device=self.device)
        mask = None if bool(state.mask.all()) else state.mask
        logits, state.cache = self.forward(tok, mask, pos, state.cache)
        state.positions = state.positions + tok.shape[1]
        state.logits = logits[:, -1]
        state.ids[0].extend(int(t) for t in tokens)
        return logits[0]

    def rewind(self, state: DecodeState, n_tokens: int) -> DecodeState:
        """Drop the last ``n_tokens`` of a state and recompute its logits with one pass (the
        last kept token is fed again); `DecodeState.crop` drops them without a pass."""
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
            raise ValueError(f"n_tokens must be an integer >= 0, got {n_tokens!r}")
        if n_tokens == 0:
            return state
        if n_tokens >= min(len(r) for r in state.ids):
            raise ValueError(f"n_tokens={n_tokens}: cannot rewind past the first token")
        last = [r[-n_tokens - 1] for r in state.ids]
        state.crop(n_tokens + 1)
        return self.advance(state, last)

    @torch.no_grad()
    def next_logits(self, prefixes) -> torch.Tensor:
        """Next-token logits s_theta(. | prefix) for each prefix (text or ids): shape (B, V)."""
        return self.prefill(prefixes).logits

    def next_logprobs(self, prefixes) -> torch.Tensor:
        return torch.log_softmax(self.next_logits(prefixes), dim=-1)

    # -- scoring ---------------------------------------------------------------------------
    @torch.no_grad()
    def token_logprobs(self, prompt, continuations, batch_size: int = 64) -> list:
        """log p_theta(c_t | prompt, c_<t) for every token of every continuation.

        ``continuations`` are texts (tokenized on their own, no BOS) or id lists.  The prompt is
        computed once and shared by all continuations.
        """
        p_ids = self.prompt_ids(prompt)
        conts = [self.encode(c, bos=False) if isinstance(c, str) else [int(t) for t in c]
                 for c in _as_list(continuations)]
        out = []
        for start in range(0, len(conts), batch_size):
            chunk = conts[start:start + batch_size]
            state = self.prefill(p_ids, n=len(chunk))
            first = torch.log_softmax(state.logits[0], -1)
            longest = max(len(c) for c in chunk)
            if longest == 0:
                out.extend([] for _ in chunk)
                continue
            n = max(longest - 1, 1)
            body = torch.full((len(chunk), n), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), n), dtype=torch.long)
            for i, c in enumerate(chunk):
                body[i, :max(len(c) - 1, 0)] = torch.tensor(c[:-1], dtype=torch.long)
                mask[i, :max(len(c) - 1, 0)] = 1
            full_mask = torch.cat([state.mask.cpu(), mask], 1).to(self.device)
            pos = state.positions.view(-1, 1).cpu() + torch.arange(n)
            logits, _ = self.forward(body.to(self.device), full_mask, pos.to(self.device),
                                     state.cache) if longest > 1 else (None, None)
            for i, c in enumerate(chunk):
                lps = [float(first[c[0]])] if c else []
                if len(c) > 1:
                    lp = torch.log_softmax(logits[i, : len(c) - 1], -1)
                    lps += lp.gather(1, torch.tensor(c[1:], device=lp.device).view(-1, 1)) \
                        .view(-1).tolist()
                out.append(lps)
        return out

    def score(self, prompt, continuations, batch_size: int = 64) -> list:
        """log p_theta(continuation | prompt) for each continuation (sum of token log-probs)."""
        return [sum(lps) for lps in self.token_logprobs(prompt, continuations, batch_size)]


def _as_list(x):
    if isinstance(x, str):
        return [x]
    x = list(x)
    if x and isinstance(x[0], int):  # a single id list
        return [x]
    return x
