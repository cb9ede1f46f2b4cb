"""One instrumentation mechanism for every algorithm in the workbench.

Algorithms call ``emit(kind, **fields)``.  With no active trace, ``emit`` returns at once; code
that would do work only to build an event's fields first checks ``active()``.  Inside

    with trace() as t:
        out = decoding.sample(lm, "Story:", seed=0)

every event is appended to ``t.events`` (and to every other trace open around it) as a plain,
JSON-serialisable dict: its ``kind``, a running index ``i``, the ``source`` (the algorithm that
emitted it) and the fields that `EVENTS` lists for that kind.  Tensors and NumPy values become
lists and numbers on the way in.  A trace saves to a JSON Lines file (`Trace.save`) with the
model's name and the tokenizer needed to show its tokens, and `load` reads it back, so a trace
recorded on one machine can be replayed in the widgets on another, without the model.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

SCHEMA = 1          # the version of EVENTS that saved traces are written with

_stack: list = []
_enabled = True


class Kind(NamedTuple):
    """What one event kind means, its fields (each always present) and its optional fields."""
    about: str
    fields: dict
    optional: dict = {}


_TOKEN = "the generated token's id"
_T = "token time: the 0-based position of the generated token"
_IT = "meta iteration of the search or refinement (0-based)"
_ROUND = "speculative round (0-based)"
_POS = "position of the token within the round's draft"
_CHECKED = {"round": _ROUND, "pos": _POS, "token": _TOKEN, "p": "p(token) under the target",
            "q": "q(token) under the draft"}
_PROPOSAL = {"text": "the proposal", "log_ratio": "log(target/(M·proposal))",
             "u": "the uniform draw"}

EVENTS: dict = {
    # -- token loops (§3): the time index is t ------------------------------------------------
    "step": Kind("one token chosen by the token loop (decoding.decode: sampling, greedy, "
                 "control.lockstep, constraints.generate)",
                 {"t": _T, "row": "batch row", "token": _TOKEN,
                  "logprob": "log p_θ(token | prefix) under the model, before any adapter",
                  "top": "the top [token, log-prob] pairs of p_θ, before any adapter"},
                 {"top_adapted": "the top pairs after the logits adapters",
                  "q_logprob": "log q(token | prefix) under the adapted distribution",
                  "components": "each model's top pairs, by role (controlled generation)",
                  "candidates": "[token, value] pairs a candidate rule scored (FUDGE, RAD)"}),
    "mask": Kind("the constraint's mask before a free choice (§3.4)",
                 {"t": _T, "row": "batch row", "state": "the automaton state",
                  "n_allowed": "how many tokens the mask allows"},
                 {"token": "the token then chosen (constraints.generate)",
                  "allowed": "a sample of the allowed token ids"}),
    "forced": Kind("a token written without a choice: the only one the constraint allows",
                   {"t": _T, "row": "batch row", "state": "the automaton state",
                    "token": _TOKEN}),
    "fast_forward": Kind("a run of forced tokens fed in one forward pass",
                         {"t": "token time of the run's first token", "tokens": "the run",
                          "passes_saved": "forward passes saved by feeding it at once"}),
    "healing_compare": Kind("one prompt generated without and with token healing "
                            "(constraints.compare_healing)",
                            {"prompt": "the prompt's text", "removed": "the text healing removed",
                             "rolled_back": "prompt tokens rolled back",
                             "without": "prompt_tokens, tokens (as text) and text, unhealed",
                             "with": "the same with healing"}),
    "heal": Kind("token healing rolled back the prompt's last token(s)",
                 {"removed": "the text removed from the prompt", "kept": "prompt tokens kept",
                  "candidates": "token ids allowed first (a sample)"}),
    "beam_expand": Kind("beam search scores the continuations of one beam (§3.1)",
                        {"t": _T, "node": "the beam's node in the result's tree",
                         "cum_logprob": "the beam's log p_θ so far",
                         "top": "its top [token, log-prob] continuations"}),
    "beam_step": Kind("the 2·num_beams best continuations become nodes; some are kept as beams",
                      {"t": _T, "nodes": "the new nodes", "parents": "each one's parent node",
                       "tokens": "each one's token", "logprobs": "log p_θ(token | parent)",
                       "cum_logprobs": "log p_θ of each sequence",
                       "kept": "the nodes kept as live beams (the others are pruned or end)"}),
    "beam_finish": Kind("a hypothesis finished (eos or length)",
                        {"t": _T, "node": "its node", "score": "length-normalised score",
                         "reason": "eos or length", "cum_logprob": "log p_θ of the sequence",
                         "length": "its length in tokens"}),
    "beam_done": Kind("beam search returns", {"returned": "the returned hypotheses' nodes, best "
                                              "first", "params": "the search's parameters"}),
    "sbs_step": Kind("stochastic beam search keeps the k candidates with the largest perturbed "
                     "log-probability",
                     {"t": _T, "tokens": "each kept candidate's last token (EOS for one that ended "
                      "with it; None: the empty sequence)", "gumbels": "their perturbed log-probabilities G",
                      "kappa": "the largest G dropped so far (the estimator's threshold)"}),
    "contrastive_step": Kind("contrastive search scores its top-k candidates (Su et al., 2022)",
                             {"t": _T, "candidates": "the top-k token ids, most probable first",
                              "probs": "p_θ(candidate | prefix) of each",
                              "penalties": "each one's degeneration penalty max_j cos(h_v, h_j)",
                              "token": "the token chosen"}),
    "diverse_step": Kind("one group of diverse beam search takes its step (Vijayakumar et al., "
                         "2018); groups step in turn",
                         {"t": _T, "group": "the group (0-based, in decoding order)",
                          "tokens": "the tokens of the group's beams kept",
                          "penalties": "the diversity penalty λ·count each of them paid",
                          "scores": "their running (penalised) scores"}),
    "lexical_select": Kind("lexically constrained beam search keeps one beam per bank",
                           {"t": _T, "beams": "[beam, token] pairs kept",
                            "banks": "their banks (constraint progress)",
                            "finished": "hypotheses finished so far"}),
    "map_expand": Kind("exact MAP search extends a prefix by one token",
                       {"t": _T, "token": _TOKEN, "cum_logprob": "log p_θ of the prefix"}),
    "map_finish": Kind("exact MAP search reached a complete sequence",
                       {"tokens": "the sequence", "seq_logprob": "its log p_θ",
                        "reason": "eos or length"}),
    # -- speculative decoding (§7): the time index is round -----------------------------------
    "draft": Kind("the draft model proposes tokens (emitted once the target has checked them)",
                  {"round": _ROUND, "tokens": "the drafted tokens", "q": "q(token) of each",
                   "p": "p(token) under the target, of each",
                   "beta": "each position's acceptance probability Σ min(p, q)"}),
    "accept": Kind("the target accepts a drafted token", _CHECKED),
    "reject": Kind("the target rejects a drafted token", _CHECKED),
    "resample": Kind("the token drawn from the residual max(0, p − q) after a rejection",
                     {"round": _ROUND, "pos": _POS, "token": _TOKEN}),
    "bonus": Kind("the target's own next token after every drafted token was accepted",
                  {"round": _ROUND, "pos": _POS, "token": _TOKEN}),
    "lookahead_step": Kind("one step of lookahead decoding (efficiency.lookahead_decoding): a "
                           "Jacobi update of the window and a check of pooled n-grams",
                           {"step": "the step (1-based: step 0 is the prompt's pass, which "
                            "gives the first token)",
                            "window": "the guessed tokens fed after the last committed token",
                            "candidates": "the pooled n-grams verified (each without its first "
                            "token, the last committed one)",
                            "accepted": "candidate tokens accepted (0: none matched)",
                            "tokens": "the tokens the step added to the output (accepted, then "
                            "the bonus token)",
                            "pool_size": "n-grams in the pool after the step"}),
    "tree_spec_round": Kind("one round of token-tree speculative decoding "
                            "(efficiency.tree_speculative_decoding; efficiency.medusa_decoding, "
                            "whose tree is the Medusa heads' guesses): a drafted tree, verified "
                            "in one target pass, and the path the target accepted",
                            {"round": _ROUND,
                             "tokens": "the tree's drafted tokens, in node order (the root, "
                             "the last committed token, is not listed)",
                             "parents": "each node's parent (an index into tokens; -1: the root)",
                             "path": "the accepted nodes, root to deepest (indices into tokens)",
                             "emitted": "the round's tokens: the accepted path's, then the one "
                             "the target chose itself (the output stops at EOS)"}),
    "batch_step": Kind("one engine step of a batching server (efficiency.continuous_batching, "
                       "efficiency.static_batching): admissions, one token per running "
                       "request, retirements",
                       {"step": "the engine step (0-based; requests arrive at steps)",
                        "admitted": "ids of the requests prefilled and added this step",
                        "finished": "ids of the requests that left the batch this step",
                        "batch": "rows in the step's decode pass (0: none)",
                        "waiting": "requests not yet admitted after the step",
                        "tokens": "[request id, token] chosen this step (EOS included)",
                        "blocks_used": "KV blocks allocated after the step (null: static "
                        "batching, which reserves up front)",
                        "reserved_tokens": "KV token slots reserved after the step"}),
    "kv_pass": Kind("one timed forward pass of greedy decoding (efficiency.timed_greedy): "
                    "what it computed and what the KV cache holds after it",
                    {"step": "the pass (0-based; with the cache, pass 0 is the prefill)",
                     "phase": "prefill, decode (with the cache) or recompute (without)",
                     "seconds": "its wall time on the recording machine",
                     "computed": "positions it computed",
                     "cache_tokens": "positions in the cache after it (0: no cache kept)",
                     "cache_bytes": "the cache's bytes after it", "token": _TOKEN,
                     "shape": "the model's layers, kv_heads, head_dim and the prompt_tokens"}),
    "prefix_lookup": Kind("a prefix cache serves one prompt (efficiency.PrefixCache.prefill): "
                          "what it reused, what it computed, the radix tree after",
                          {"cache": "which cache (a number per PrefixCache made)",
                           "prompt": "the prompt's token ids",
                           "reused": "leading tokens served from the tree",
                           "computed": "tokens the model computed for it",
                           "max_tokens": "the cache's capacity in tokens (null: unbounded)",
                           "tree": "the radix tree after it, depth first: [parent row (-1: "
                           "the root), tokens] per node, the root first"}),
    # -- candidate lists (§4.2): candidates are referred to by index --------------------------
    "candidate": Kind("one candidate of a parallel meta-generator",
                      {"index": "its index", "text": "its text",
                       "answer": "its extracted answer (or null)",
                       "score": "its score (or null)"}),
    "vote": Kind("one distinct answer's tally", {"answer": "the answer",
                                                 "weight": "its (weighted) vote count",
                                                 "winner": "whether it won"}),
    "choose": Kind("the candidate a parallel meta-generator returns",
                   {"index": "its index"},
                   {"score": "the score it won with (a probability for importance resampling)",
                    "answer": "the answer it carries (voting; lever: the execution result)",
                    "parsed": "whether the aggregator named it (universal self-consistency; "
                    "false: no response number in range was read, the fallback was returned)"}),
    "propose_accept": Kind("rejection sampling accepts a proposal", _PROPOSAL),
    "propose_reject": Kind("rejection sampling rejects a proposal", _PROPOSAL),
    "aggregate": Kind("a model aggregates the candidates (universal self-consistency)",
                      {"prompt": "the aggregator's prompt", "output": "its reply"}),
    "sample": Kind("adaptive voting drew another batch",
                   {"n": "samples so far", "votes": "answer -> count",
                    "confidence": "the stopping rule's confidence (or null)"}),
    "route": Kind("a cascade decides whether to call the expensive generator",
                  {"share": "the leading answer's share", "routed": "whether it routed",
                   "votes": "answer -> count"}),
    # -- chains (§4.1) and tools (§5.2) -------------------------------------------------------
    "stage": Kind("one generator call of a chain",
                  {"index": "the stage (0-based)", "prompt": "what it was given",
                   "output": "what it produced"},
                  {"question": "the sub-question asked (least-to-most)",
                   "answer": "the value read from the output (least-to-most)"}),
    "tool": Kind("a tool call spliced into decoding",
                 {"tool": "the tool", "call": "its input", "result": "its output"}),
    # -- step-level search (§4.3): the time index is it; nodes are ids in the result's tree ---
    "expand": Kind("a node gets children (new steps)",
                   {"it": _IT, "node": "the node expanded", "children": "the new nodes",
                    "steps": "their step texts", "copies": "identical samples merged in each",
                    "terminal": "whether each child is a finished solution"}),
    "score": Kind("a node is valued", {"it": _IT, "node": "the node", "value": "its value",
                                       "terminal": "whether it is a finished solution"}),
    "select": Kind("the nodes the search works on next",
                   {"it": _IT, "nodes": "the nodes"},
                   {"alloc": "expansions allocated to each (REBASE)",
                    "weights": "the allocation weights (REBASE)"}),
    "prune": Kind("a node is dropped", {"it": _IT, "node": "the node", "reason": "why"}),
    "backtrack": Kind("depth-first search goes back up",
                      {"it": _IT, "node": "the node left", "to": "the ancestor returned to",
                       "next": "the node visited next"}),
    "rollout": Kind("MCTS rolls a node out to a finished solution",
                    {"it": _IT, "node": "the node", "text": "the rollout's text",
                     "reward": "its reward"}),
    "backup": Kind("MCTS backs a reward up the path",
                   {"it": _IT, "nodes": "the path", "reward": "the reward",
                    "rewards": "each node's aggregated reward", "visits": "each node's visits"}),
    "pf_step": Kind("particle filtering weighs its particles after a step, and resamples them "
                    "when the effective sample size is low (Puri et al., 2025)",
                    {"it": _IT, "nodes": "each particle's node (after any resampling)",
                     "weights": "the normalised importance weights w_i / Σ w (after "
                     "resampling: all 1/N)",
                     "ess": "the effective sample size (Σ w)² / Σ w² before resampling",
                     "parents": "the particle each new particle was resampled from "
                     "(null: no resampling)"}),
    "dvts_subtree": Kind("one subtree of diverse verifier tree search has returned "
                         "(Beeching et al., 2024)",
                         {"index": "the subtree (0-based)",
                          "offset": "what its events' node ids add to become ids in the "
                          "result's joined tree",
                          "node": "its chosen solution's node in the joined tree",
                          "value": "that solution's value", "answer": "its answer"}),
    "done": Kind("the search returns", {"it": _IT, "node": "the chosen node",
                                        "text": "its text", "answer": "the answer read from it",
                                        "stopped": "why it stopped"}),
    # -- refinement (§4.4): the time index is it ----------------------------------------------
    "version": Kind("a version of the output", {"it": _IT, "text": "its text"}),
    "feedback": Kind("feedback on the latest version",
                     {"it": _IT, "done": "whether it accepts the version",
                      "text": "the feedback", "first_error": "the first wrong line (or null)",
                      "fix": "a suggested fix (or null)"}),
    "stop": Kind("refinement stops", {"reason": "why", "answer": "the final version's answer"}),
    "reflection": Kind("Reflexion: a verbal reflection on a failed attempt, kept in memory",
                       {"it": _IT, "text": "the reflection",
                        "memory": "reflections in memory after it (at most the bound)"}),
    # -- servers ------------------------------------------------------------------------------
    "request": Kind("one request to a completions server",
                    {"url": "the server", "n": "samples asked", "seed": "the seed sent",
                     "choices": "samples returned", "prompt_tokens": "billed prompt tokens",
                     "completion_tokens": "billed completion tokens (or null)"}),
}
_COMMON = {"kind", "i", "source"}


def problems(event: dict) -> list:
    """What is wrong with ``event`` against `EVENTS` (an empty list: nothing)."""
    kind = EVENTS.get(event.get("kind"))
    if kind is None:
        return [f"unknown kind {event.get('kind')!r}"]
    missing = set(kind.fields) - set(event)
    extra = set(event) - set(kind.fields) - set(kind.optional) - _COMMON
    return ([f"{event['kind']}: missing {sorted(missing)}"] if missing else []) + \
           ([f"{event['kind']}: undocumented {sorted(extra)}"] if extra else [])


def as_events(x) -> list:
    """The events of ``x``: a list of events, a `Trace` (recorded or loaded), or a result that
    carries its own trace (``.events``)."""
    if isinstance(x, list):
        return x
    if hasattr(x, "events"):
        return x.events
    raise TypeError(f"expected events, a Trace or a result with .events, got {type(x).__name__}")


def last_run(events: list, kinds, end: str) -> list:
    """The events of ``kinds`` that belong to the last complete run of one algorithm in
    ``events`` (a trace can hold several runs; each run's last event is of kind ``end``)."""
    mine = [e for e in events if e["kind"] in kinds]
    ends = [i for i, e in enumerate(mine) if e["kind"] == end]
    if not ends:
        return mine
    return mine[ends[-2] + 1 if len(ends) > 1 else 0:ends[-1] + 1]


def active() -> bool:
    """True when an event emitted now would be recorded."""
    return bool(_stack) and _enabled


def emit(kind: str, **fields) -> None:
    """Record an event in every active trace (no-op without one)."""
    if not _stack or not _enabled:
        return
    converted = {k: plain(v) for k, v in fields.items()}
    for t in _stack:
        t._record(kind, converted)


def plain(x: Any):
    """Convert tensors, arrays and numpy scalars into JSON-friendly Python values."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else (None if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if hasattr(x, "tolist"):  # torch tensors, numpy arrays and scalars
        return plain(x.tolist())
    if hasattr(x, "as_dict"):
        return plain(x.as_dict())
    return str(x)


class Trace:
    """A list of events plus helpers to query, save and load them.  ``meta`` holds what a saved
    trace was recorded with (model, schema, package version); ``tokenizer`` shows its tokens."""

    def __init__(self, max_events: int | None = None):
        self.events: list = []
        self.max_events = max_events
        self.dropped = 0
        self.meta: dict = {}
        self.tokenizer = None
        self._sources: list = []

    def _record(self, kind, fields):
        if self.max_events is not None and len(self.events) >= self.max_events:
            self.dropped += 1
            return
        ev = {"kind": kind, "i": len(self.events)}
        if self._sources:
            ev["source"] = self._sources[-1]
        ev.update(fields)
        self.events.append(ev)

    def __enter__(self):
        _stack.append(self)
        return self

    def __exit__(self, *exc):
        _stack.remove(self)
        return False

    def of(self, kind: str, source: str | None = None) -> list:
        """Events of one kind (optionally from one source)."""
        return [e for e in self.events
                if e["kind"] == kind and (source is None or e.get("source") == source)]

    def by(self, source: str) -> "Trace":
        """The events one algorithm emitted (its ``source``), as a trace with the same
        tokenizer and metadata: ``t.by("majority_vote")`` for a view of that run alone."""
        out = Trace()
        out.events = [e for e in self.events if e.get("source") == source]
        out.meta, out.tokenizer = dict(self.meta), self.tokenizer
        return out

    def kinds(self) -> dict:
        out: dict = {}
        for e in self.events:
            out[e["kind"]] = out.get(e["kind"], 0) + 1
        return out

    def to_json(self) -> str:
        return json.dumps(self.events)

    def save(self, path, lm=None) -> Path:
        """Write the trace as JSON Lines: a header (schema, package version, the model's name
        and its tokenizer when ``lm`` is given), then one event per line."""
        from . import __version__
        tok = getattr(lm, "tokenizer", None) or self.tokenizer
        backend = getattr(tok, "backend_tokenizer", None)
        header = {**self.meta, "schema": SCHEMA, "workbench": __version__,
                  "events": len(self.events), "dropped": self.dropped}
        if lm is not None:
            header["model"] = getattr(lm, "name", None)
        if backend is not None:
            header["tokenizer"] = json.loads(backend.to_str())
        path = Path(path)
        with path.open("w", encoding="utf-8") as f:
            f.write(json.dumps({"header": header}) + "\n")
            for e in self.events:
                f.write(json.dumps(e) + "\n")
        return path

    def __len__(self):
        return len(self.events)

    def __repr__(self):
        model = f"{self.meta['model']}, " if self.meta.get("model") else ""
        return f"Trace({model}{len(self.events)} events: {self.kinds()})"


def load(path) -> Trace:
    """Read a trace written by `Trace.save`; its ``tokenizer`` (a Hugging Face fast tokenizer)
    is rebuilt from the file, so no model is needed to show its tokens."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0]) if lines else {}
    if not isinstance(first, dict) or "header" not in first:
        raise ValueError(f"path {str(path)!r} is not a saved trace (no header line)")
    header = dict(first["header"])
    if header.get("schema") != SCHEMA:
        raise ValueError(f"path {str(path)!r} has event schema {header.get('schema')!r}; "
                         f"this workbench reads schema {SCHEMA}")
    t = Trace()
    t.events = [json.loads(line) for line in lines[1:] if line.strip()]
    if len(t.events) != header.get("events"):
        raise ValueError(f"path {str(path)!r} is truncated: {len(t.events)} events of "
                         f"{header.get('events')}")
    t.dropped = header.pop("dropped", 0)
    spec = header.pop("tokenizer", None)
    if spec is not None:
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast
        t.tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))
    t.meta = header
    return t


def trace(max_events: int | None = None) -> Trace:
    """Start recording: ``with wb.trace() as t: ...``.  ``wb.trace`` names this function, so it
    also carries the module's vocabulary and loader: ``wb.trace.EVENTS``, ``wb.trace.load``."""
    return Trace(max_events)


trace.EVENTS, trace.SCHEMA, trace.load, trace.problems = EVENTS, SCHEMA, load, problems


@contextmanager
def source(name: str):
    """Tag the events emitted inside with the algorithm's name (nested calls stack)."""
    pushed = [t for t in _stack]
    for t in pushed:
        t._sources.append(name)
    try:
        yield
    finally:
        for t in pushed:
            t._sources.pop()


@contextmanager
def instrumentation(enabled: bool):
    """Switch all instrumentation off (``False``) or on, e.g. to measure its overhead."""
    global _enabled
    old, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = old
