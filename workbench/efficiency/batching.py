"""Continuous batching with a paged KV cache (survey §7.3; Orca, Yu et al. 2022; vLLM and
PagedAttention, Kwon et al. 2023).

A server decodes many requests at once.  *Static batching* takes B requests, pads them to the
longest, and runs the batch until its longest output is done: a short request waits for the
long ones, new arrivals wait for the whole batch, and each row reserves memory for the longest
prompt plus the largest output budget.  *Continuous* (iteration-level) batching schedules at
every decoding step instead: finished requests leave the batch at once and waiting ones join it,
so the batch stays full.  A *paged* KV cache gives each request a block table of fixed-size
blocks, allocated as its sequence grows, so memory is reserved for tokens that exist (plus less
than one block per request), not for the worst case.

    reqs = [Request(i, prompt, max_new_tokens=n, arrival=a) for ...]
    out = continuous_batching(lm, reqs, max_batch=4, num_blocks=32, block_size=4)
    out.generations[0].token_ids == decoding.greedy(lm, reqs[0].prompt, n).token_ids
    static_batching(lm, reqs, batch_size=4).summary()    # steps, latency, memory, passes

`simulate_serving` replays a workload (arrival, prompt length, output length) under a per-step
cost model, without a model, for latency-vs-throughput curves over arrival rates.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch

from .. import validate
from ..budget import Cost
from ..decoding import Generation
from ..models import DecodeState, LanguageModel
from ..trace import active, emit
from ..trace import source as tagged
from .prefix import layer_pairs, make_cache


# -- the paged KV allocator -------------------------------------------------------------------
class PagedKVAllocator:
    """A pool of ``num_blocks`` KV blocks of ``block_size`` tokens each, and one block table
    (a list of physical block ids, in sequence order) per request (Kwon et al. 2023, §4.2).

    A sequence of n tokens holds blocks(n) = ceil(n / block_size) blocks; `grow` allocates the
    missing ones from the free list as it lengthens, `free` returns them all.  The blocks of a
    table need not be contiguous: any free block will do, which is why paging has no external
    fragmentation.  Its waste is internal, in each request's last block:

        reserved_tokens = block_size · used_blocks,   fragmentation = reserved − used tokens,

    less than ``block_size`` per request.
    """

    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks = validate.count("num_blocks", num_blocks)
        self.block_size = validate.count("block_size", block_size)
        self._free = list(range(self.num_blocks - 1, -1, -1))   # pop() hands out 0, 1, 2, ...
        self.tables: dict = {}     # request id -> [physical block ids]
        self.lengths: dict = {}    # request id -> tokens stored

    def blocks_for(self, tokens: int) -> int:
        """ceil(tokens / block_size): the blocks a sequence of ``tokens`` tokens occupies."""
        tokens = validate.count("tokens", tokens, lo=0)
        return -(-tokens // self.block_size)

    @property
    def free_blocks(self) -> int:
        return len(self._free)

    @property
    def used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    @property
    def reserved_tokens(self) -> int:
        """block_size · used_blocks: the token slots the allocated blocks hold."""
        return self.block_size * self.used_blocks

    @property
    def used_tokens(self) -> int:
        return sum(self.lengths.values())

    @property
    def fragmentation(self) -> int:
        """Internal fragmentation: reserved − used tokens (the unused tail of last blocks)."""
        return self.reserved_tokens - self.used_tokens

    def grow(self, request_id, tokens: int) -> list:
        """Make ``request_id``'s table hold ``tokens`` tokens: append blocks(tokens) − |table|
        free blocks.  Returns the table.  Raises ``MemoryError`` if the pool runs dry (the
        engine checks `free_blocks` first and never lets that happen)."""
        table = self.tables.setdefault(request_id, [])
        need = self.blocks_for(tokens) - len(table)
        if need > len(self._free):
            raise MemoryError(f"request {request_id!r} needs {need} more blocks, "
                              f"{len(self._free)} are free")
        table.extend(self._free.pop() for _ in range(max(need, 0)))
        self.lengths[request_id] = max(tokens, self.lengths.get(request_id, 0))
        return table

    def free(self, request_id) -> int:
        """Return all of ``request_id``'s blocks to the pool; returns how many."""
        if request_id not in self.tables:
            raise ValueError(f"request_id {request_id!r} holds no blocks")
        table = self.tables.pop(request_id)
        self.lengths.pop(request_id)
        self._free.extend(reversed(table))
        return len(table)


def padded_reservation(prompt_lens, max_new_tokens) -> int:
    """The KV memory, in tokens, a padded static batch reserves: every row holds the longest
    prompt plus the largest output budget,

        B · (max_i |x_i| + max_i n_i).

    ``max_new_tokens`` is one budget for all rows or one per row."""
    lens = [validate.count("prompt_lens", n) for n in prompt_lens]
    if not lens:
        raise ValueError("prompt_lens must not be empty")
    news = [max_new_tokens] * len(lens) if isinstance(max_new_tokens, int) else \
        list(max_new_tokens)
    if len(news) != len(lens):
        raise ValueError("max_new_tokens must be one number or one per prompt")
    news = [validate.count("max_new_tokens", n, lo=0) for n in news]
    return len(lens) * (max(lens) + max(news))


# -- requests and results ---------------------------------------------------------------------
@dataclass
class Request:
    """One request to the server: its ``prompt`` (text or ids), its output budget, and the
    engine step at which it arrives."""
    id: object
    prompt: object
    max_new_tokens: int = 16
    arrival: int = 0


@dataclass
class StepRecord:
    """What one engine step did.  ``batch``: rows in its decode pass (0: none);
    ``blocks_used`` is None for static batching, which reserves ``reserved_tokens`` up front."""
    step: int
    admitted: list
    finished: list
    batch: int
    waiting: int
    blocks_used: int | None
    reserved_tokens: int
    used_tokens: int
    forward_passes: int


@dataclass
class ServingResult:
    """A batching engine's run: ``generations`` in request order (each one's ``info`` holds its
    ``arrival``, ``first_token_step``, ``finish_step``, ``ttft`` and ``latency`` in steps),
    one `StepRecord` per engine step, and the engine's total ``cost``."""
    scheduler: str
    generations: list
    steps: list
    cost: Cost = field(default_factory=Cost)

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def latencies(self) -> list:
        return [g.info["latency"] for g in self.generations]

    @property
    def mean_latency(self) -> float:
        return sum(self.latencies) / len(self.latencies)

    @property
    def mean_ttft(self) -> float:
        return sum(g.info["ttft"] for g in self.generations) / len(self.generations)

    @property
    def peak_reserved_tokens(self) -> int:
        return max(s.reserved_tokens for s in self.steps)

    def summary(self) -> dict:
        return {"scheduler": self.scheduler, "steps": self.num_steps,
                "mean_latency": self.mean_latency, "mean_ttft": self.mean_ttft,
                "peak_reserved_tokens": self.peak_reserved_tokens,
                "forward_passes": self.cost.forward_passes,
                "computed_tokens": self.cost.computed_tokens}


class _Row:
    """One running request: its prompt ids and what greedy decoding has produced so far."""

    def __init__(self, index: int, req: Request, ids: list):
        self.index, self.req, self.ids = index, req, ids
        self.tokens, self.logprobs = [], []
        self.finish, self.end_logprob = None, None
        self.first_step = self.finish_step = None

    @property
    def length(self) -> int:
        """Tokens of the sequence so far (prompt and chosen tokens, EOS excluded)."""
        return len(self.ids) + len(self.tokens)


# -- the engine -------------------------------------------------------------------------------
def _check_requests(lm: LanguageModel, requests) -> list:
    requests = list(requests)
    if not requests:
        raise ValueError("requests must not be empty")
    ids = [r.id for r in requests]
    if len(set(map(repr, ids))) != len(ids):
        raise ValueError(f"requests must have distinct ids, got {ids}")
    prompts = []
    for r in requests:
        validate.count("max_new_tokens", r.max_new_tokens)
        validate.count("arrival", r.arrival, lo=0)
        prompts.append(lm.prompt_ids(r.prompt, r.max_new_tokens))
    return [(i, r, p) for i, (r, p) in enumerate(zip(requests, prompts))]


def _cat_left_padded(parts: list, dim: int) -> torch.Tensor:
    """Concatenate tensors on dim 0 after left-padding each with zeros along ``dim`` to the
    longest."""
    n = max(t.shape[dim] for t in parts)
    out = []
    for t in parts:
        shape = list(t.shape)
        shape[dim] = n - t.shape[dim]
        out.append(torch.cat([t.new_zeros(shape), t], dim=dim))
    return torch.cat(out, dim=0)


def merge_states(lm: LanguageModel, states: list) -> DecodeState:
    """One left-padded `DecodeState` with the rows of ``states`` in order, no forward pass.

    Each row keeps its own keys and values and position ids; rows shorter than the longest get
    zero keys and values on the left, masked out (mask 0), so attention never reads them.  The
    columns that are padding in every row are dropped.  Used to add newly prefilled requests to
    the running batch, and to trim the batch when its longest rows have left.
    """
    states = [s for s in states if s is not None]
    mask = _cat_left_padded([s.mask for s in states], 1)
    start = int(mask.any(0).nonzero()[0]) if mask.any() else 0
    pairs = [(_cat_left_padded([layer_pairs(s.cache)[i][0] for s in states], 2)[:, :, start:],
              _cat_left_padded([layer_pairs(s.cache)[i][1] for s in states], 2)[:, :, start:])
             for i in range(len(layer_pairs(states[0].cache)))]
    return DecodeState(lm, make_cache(pairs, lm), mask[:, start:],
                       torch.cat([s.positions for s in states]),
                       torch.cat([s.logits for s in states]),
                       [list(r) for s in states for r in s.ids])


class _Engine:
    """The engine loop shared by both schedulers; they differ in `_admit` and `_retire`.

    Every step runs four phases: admit (prefill the newcomers in one pass and merge them into
    the batch), choose (each unfinished row takes argmax of its logits, eq. 8), retire (rows
    that chose EOS or reached their budget leave; their blocks are freed) and decode (one
    batched `LanguageModel.advance` pass feeds every remaining row its chosen token).
    """

    def __init__(self, lm, requests, max_batch, eos, allocator=None):
        self.lm, self.max_batch, self.allocator = lm, max_batch, allocator
        self.eos = lm.eos_token_id if eos else None
        self.waiting = sorted(requests, key=lambda t: (t[1].arrival, t[0]))
        self.rows: list = []
        self.done: dict = {}
        self.state: DecodeState | None = None
        self.records: list = []
        self.reserved = 0          # static batching: the padded reservation of the batch

    def run(self) -> None:
        step = 0
        while self.waiting or self.rows:
            self.step(step)
            step += 1

    def step(self, s: int) -> None:
        snap = self.lm.counter.snapshot()
        admitted = self._admit(s)
        if admitted:
            self._prefill(admitted, s)
        chosen = self._choose()
        finished = self._retire(s)
        self._account()
        batch = self._decode()
        self._record(s, admitted, finished, batch, chosen, self.lm.counter.since(snap))

    def _prefill(self, admitted: list, s: int) -> None:
        """One batched pass over the newcomers' prompts (left padded), then merged in."""
        new = self.lm.prefill([row.ids for row in admitted])
        self.state = merge_states(self.lm, [self.state, new]) if self.state else new
        for row in admitted:
            row.first_step = s
        self.rows.extend(admitted)

    def _choose(self) -> list:
        """Greedy choice (eq. 8) for every unfinished row: y_t = argmax_v s_θ(v | y_<t, x)."""
        if not self.rows:
            return []
        logp = torch.log_softmax(self.state.logits.float(), -1)
        toks = self.state.logits.argmax(-1).tolist()
        chosen = []
        for r, row in enumerate(self.rows):
            if row.finish is not None:
                continue
            tok, lp = toks[r], float(logp[r, toks[r]])
            chosen.append([row.req.id, tok])
            if tok == self.eos:
                row.finish, row.end_logprob = "eos", lp
                continue
            row.tokens.append(tok)
            row.logprobs.append(lp)
            if len(row.tokens) == row.req.max_new_tokens:
                row.finish = "length"
        return chosen

    def _leave(self, keep: list, s: int) -> list:
        """Drop the rows not in ``keep`` (indices) from the batch; returns the leavers' ids."""
        gone = [row for i, row in enumerate(self.rows) if i not in keep]
        for row in gone:
            row.finish_step = s
            self.done[row.index] = row
        if gone:
            self.rows = [self.rows[i] for i in keep]
            self.state = merge_states(self.lm, [self.state.select(keep, inplace=True)]) \
                if keep else None
        return [row.req.id for row in gone]

    def _account(self) -> None:
        """Memory bookkeeping after a step's choices (continuous: the allocator's tables)."""

    def _decode(self) -> int:
        """One batched pass: every row of the batch is fed its last token (a finished row that
        stays, in static batching, is fed padding).  Returns the rows in the pass."""
        if not self.rows:
            return 0
        feed = [self.lm.pad_token_id if row.finish else row.tokens[-1] for row in self.rows]
        self.lm.advance(self.state, feed)
        return len(self.rows)

    def _record(self, s, admitted, finished, batch, chosen, cost) -> None:
        alloc = self.allocator
        rec = StepRecord(step=s, admitted=[row.req.id for row in admitted], finished=finished,
                         batch=batch, waiting=len(self.waiting),
                         blocks_used=alloc.used_blocks if alloc else None,
                         reserved_tokens=alloc.reserved_tokens if alloc else self.reserved,
                         used_tokens=sum(row.length for row in self.rows),
                         forward_passes=cost.forward_passes)
        self.records.append(rec)
        if active():
            emit("batch_step", step=s, admitted=rec.admitted, finished=finished, batch=batch,
                 waiting=rec.waiting, tokens=chosen, blocks_used=rec.blocks_used,
                 reserved_tokens=rec.reserved_tokens)


class _Continuous(_Engine):
    """Iteration-level scheduling (Orca) over a paged KV cache (vLLM)."""

    def _admit(self, s: int) -> list:
        """First come, first served: the oldest waiting request joins while it has arrived
        (arrival ≤ s), the batch has room (|batch| < max_batch) and its worst case fits,

            Σ_running blocks(|x_j| + n_j) + blocks(|x_i| + n_i) ≤ num_blocks,

        else it and everyone behind it wait.  Its prompt's blocks are allocated now, the rest
        on demand as it grows, so ``blocks_used`` shows the real use."""
        out, alloc = [], self.allocator
        while self.waiting and len(self.rows) + len(out) < self.max_batch:
            i, req, ids = self.waiting[0]
            if req.arrival > s or self._worst(out) + self._worst_of(req, ids) > alloc.num_blocks:
                break
            self.waiting.pop(0)
            alloc.grow(req.id, len(ids))
            out.append(_Row(i, req, ids))
        return out

    def _worst_of(self, req, ids) -> int:
        return self.allocator.blocks_for(len(ids) + req.max_new_tokens)

    def _worst(self, extra=()) -> int:
        return sum(self._worst_of(row.req, row.ids) for row in [*self.rows, *extra])

    def _retire(self, s: int) -> list:
        """Rows that chose EOS or reached their budget leave now; their blocks are freed."""
        gone = [row.req.id for row in self.rows if row.finish is not None]
        for rid in gone:
            self.allocator.free(rid)
        return self._leave([i for i, row in enumerate(self.rows) if row.finish is None], s)

    def _account(self) -> None:
        """Each running row's table grows to blocks(|x| + |y|) blocks."""
        for row in self.rows:
            self.allocator.grow(row.req.id, row.length)


class _Static(_Engine):
    """Request-level scheduling: a fixed batch, padded, runs until its last row is done."""

    def _admit(self, s: int) -> list:
        """When the batch is empty, the next ``max_batch`` requests in arrival order start
        together once the last of them has arrived; they reserve B · (max |x| + max n)."""
        group = self.waiting[:self.max_batch]
        if self.rows or not group or group[-1][1].arrival > s:
            return []
        del self.waiting[:len(group)]
        self.reserved = padded_reservation([len(ids) for _, _, ids in group],
                                           [req.max_new_tokens for _, req, _ in group])
        return [_Row(i, req, ids) for i, req, ids in group]

    def _retire(self, s: int) -> list:
        """Nobody leaves until every row is done; then the whole batch does."""
        if any(row.finish is None for row in self.rows):
            return []
        self.reserved = 0
        return self._leave([], s)


def _results(lm, engine: _Engine, requests: list, scheduler: str, snap) -> ServingResult:
    """`Generation`s in request order; the engine's shared compute is booked on the first."""
    cost = lm.counter.since(snap)
    gens = []
    for i, req, ids in requests:
        row = engine.done[i]
        info = {"arrival": req.arrival, "first_token_step": row.first_step,
                "finish_step": row.finish_step, "ttft": row.first_step + 1 - req.arrival,
                "latency": row.finish_step + 1 - req.arrival, "request": req.id}
        gens.append(Generation.of(
            lm, req.prompt, ids, row.tokens, row.logprobs, row.finish,
            spent=cost if i == 0 else None, info=info, end_logprob=row.end_logprob,
            proposal_logprobs=[0.0] * len(row.tokens),     # greedy: deterministic
            end_proposal_logprob=0.0 if row.finish == "eos" else None))
    return ServingResult(scheduler, gens, engine.records, cost)


def continuous_batching(lm: LanguageModel, requests, max_batch: int = 8, num_blocks: int = 64,
                        block_size: int = 16, eos: bool = True) -> ServingResult:
    """Serve ``requests`` with greedy decoding (eq. 8) under continuous batching (Orca,
    iteration-level scheduling) and a paged KV allocator (vLLM).  Every request's tokens are
    exactly ``decoding.greedy(lm, req.prompt, req.max_new_tokens)``'s.

    Engine step s: (a) **admit** arrived requests, oldest first, while |batch| < ``max_batch``
    and the allocator can hold their worst case (see `_Continuous._admit`): their prompts are
    prefilled in one left-padded pass and their caches merged into the batch; (b) every row
    **chooses** its token, argmax_v s_θ(v | y_<t, x); (c) rows that chose EOS or hit
    ``max_new_tokens`` **retire** and free their blocks, the others' block tables grow to
    ceil((|x| + |y|) / block_size); (d) one batched **decode** pass feeds the rest their token.

    Simplified for reading: the model runs on an ordinary left-padded transformers cache (rows
    merged and trimmed with `merge_states`); the `PagedKVAllocator` is the memory accounting
    that a paged attention kernel would follow.  vLLM admits on the prompt's blocks and
    preempts a request when the pool runs dry; this engine never preempts: it admits a request
    only when its worst case fits beside the running ones' (else it waits), and allocates
    blocks on demand.  Orca also fuses the prefill into the decode pass (selective batching);
    here a step with admissions is two passes, counted in ``cost`` and each `StepRecord`.

    Returns a `ServingResult`: generations in request order with ``info`` ``ttft`` =
    first_token_step + 1 − arrival and ``latency`` = finish_step + 1 − arrival (engine steps),
    and per-step records (batch size, blocks used, reserved and used tokens, passes).
    ``eos=False`` ignores the end-of-sequence token.
    """
    max_batch = validate.count("max_batch", max_batch)
    alloc = PagedKVAllocator(num_blocks, block_size)
    reqs = _check_requests(lm, requests)
    for _, req, ids in reqs:
        if alloc.blocks_for(len(ids) + req.max_new_tokens) > alloc.num_blocks:
            raise ValueError(
                f"num_blocks={num_blocks} is too few for request {req.id!r}: its "
                f"{len(ids)} prompt tokens and max_new_tokens={req.max_new_tokens} need "
                f"{alloc.blocks_for(len(ids) + req.max_new_tokens)} blocks of {block_size}")
    snap = lm.counter.snapshot()
    engine = _Continuous(lm, reqs, max_batch, eos, alloc)
    with tagged("continuous_batching"):
        engine.run()
    return _results(lm, engine, reqs, "continuous", snap)


def static_batching(lm: LanguageModel, requests, batch_size: int = 8,
                    eos: bool = True) -> ServingResult:
    """The baseline: serve ``requests`` in arrival order in fixed batches of ``batch_size``,
    greedy decoding (eq. 8), same tokens as ``decoding.greedy``.

    A batch starts when the previous one has finished and its last member has arrived; it is
    prefilled in one left-padded pass, then decoded one batched pass per step until every row
    has ended (rows that ended are fed padding, as in `decoding.decode`); its requests all
    return at its last step.  It reserves B · (max |x| + max n) tokens of KV memory
    (`padded_reservation`) for its whole run.  Returns a `ServingResult` like
    `continuous_batching`'s (``blocks_used`` None).
    """
    batch_size = validate.count("batch_size", batch_size)
    reqs = _check_requests(lm, requests)
    snap = lm.counter.snapshot()
    engine = _Static(lm, reqs, batch_size, eos)
    with tagged("static_batching"):
        engine.run()
    return _results(lm, engine, reqs, "static", snap)


# -- serving without a model: latency vs throughput -------------------------------------------
def poisson_workload(n: int, rate: float, prompt_lens=(4, 32), output_lens=(4, 64),
                     seed: int = 0) -> list:
    """``n`` requests (arrival, prompt_len, output_len): exponential inter-arrival times of
    mean 1/rate (a Poisson process of ``rate`` requests per time unit), lengths uniform in the
    inclusive ranges.  Deterministic given ``seed``."""
    n = validate.count("n", n)
    rate = validate.number("rate", rate, lo=1e-12)
    rng, t, out = random.Random(seed), 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append((t, rng.randint(*prompt_lens), rng.randint(*output_lens)))
    return out


def _step_cost(tokens: int, a: float, b: float) -> float:
    """The cost model of one engine step: a + b · tokens computed (a: reading the weights,
    b: per-token compute)."""
    return a + b * tokens


def _simulate_continuous(work, max_batch, a, b):
    """Event loop of continuous batching: each step admits arrived requests (up to
    ``max_batch`` running; their prefill computes |x| tokens and gives their first token) and
    decodes one token for every running row; returns (start, finish) per request."""
    order = sorted(range(len(work)), key=lambda i: (work[i][0], i))
    t, running, finish, left = 0.0, {}, [None] * len(work), order
    while left or running:
        if not running and work[left[0]][0] > t:
            t = work[left[0]][0]                      # idle until the next arrival
        new = []
        while left and len(running) + len(new) < max_batch and work[left[0]][0] <= t:
            new.append(left.pop(0))
        tokens = sum(work[i][1] for i in new) + len(running)
        t += _step_cost(tokens, a, b)
        for i in running:
            running[i] -= 1
        running.update({i: work[i][2] - 1 for i in new})
        for i in [i for i, n in running.items() if n == 0]:
            finish[i] = t
            del running[i]
    return finish


def _simulate_static(work, max_batch, a, b):
    """Static batching: batches of ``max_batch`` in arrival order, each starting when the
    previous has finished and its last member arrived; its prefill computes B · max |x|
    tokens, then max n − 1 decode steps of B rows each; all finish together."""
    order = sorted(range(len(work)), key=lambda i: (work[i][0], i))
    t, finish = 0.0, [None] * len(work)
    for k in range(0, len(order), max_batch):
        group = order[k:k + max_batch]
        t = max(t, max(work[i][0] for i in group))
        B, steps = len(group), max(work[i][2] for i in group)
        t += _step_cost(B * max(work[i][1] for i in group), a, b)
        t += (steps - 1) * _step_cost(B, a, b)
        for i in group:
            finish[i] = t
    return finish


def simulate_serving(workload, scheduler: str = "continuous", max_batch: int = 8,
                     a: float = 1.0, b: float = 0.01) -> dict:
    """Serve ``workload`` [(arrival, prompt_len, output_len), ...] under ``scheduler``
    ("continuous" or "static") with the step cost model a + b · tokens computed, without a
    model.  Returns ``mean_latency`` (mean of finish − arrival), ``p90_latency``,
    ``throughput`` = Σ output tokens / (last finish − first arrival) and ``makespan``."""
    if scheduler not in ("continuous", "static"):
        raise ValueError(f"scheduler must be 'continuous' or 'static', got {scheduler!r}")
    max_batch = validate.count("max_batch", max_batch)
    a, b = validate.number("a", a, lo=0), validate.number("b", b, lo=0)
    work = [(validate.number("arrival", w[0], lo=0), validate.count("prompt_len", w[1]),
             validate.count("output_len", w[2])) for w in workload]
    if not work:
        raise ValueError("workload must not be empty")
    sim = _simulate_continuous if scheduler == "continuous" else _simulate_static
    finish = sim(work, max_batch, a, b)
    lat = sorted(f - w[0] for f, w in zip(finish, work))
    span = max(finish) - min(w[0] for w in work)
    return {"scheduler": scheduler, "mean_latency": sum(lat) / len(lat),
            "p90_latency": lat[min(len(lat) - 1, math.ceil(0.9 * len(lat)) - 1)],
            "throughput": sum(w[2] for w in work) / span, "makespan": span}


def serving_curve(rates, n: int = 200, max_batch: int = 8, a: float = 1.0, b: float = 0.01,
                  prompt_lens=(4, 32), output_lens=(4, 64), seed: int = 0) -> list:
    """Latency and throughput of static vs continuous batching over arrival ``rates``: one
    row per (rate, scheduler), both schedulers on the same `poisson_workload`."""
    rows = []
    for rate in rates:
        work = poisson_workload(n, rate, prompt_lens, output_lens, seed)
        for scheduler in ("static", "continuous"):
            rows.append({"rate": rate, **simulate_serving(work, scheduler, max_batch, a, b)})
    return rows
