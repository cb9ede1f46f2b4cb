"""Medusa: extra decoding heads draft a token tree for the target itself (survey §7.2,
"Parallelization across time"; Cai et al. 2024).

Speculative decoding needs a draft model.  Medusa needs none: K small heads sit on the
target's last hidden state h_t, and head k guesses the token k + 1 steps ahead,

    p_k(. | h_t) = softmax(W_k^out (h_t + SiLU(W_k h_t + b_k))),    k = 1..K,

next to the target's own LM head, which gives the token 1 step ahead.  The heads' top-k guesses
form a token tree that one target pass verifies (`tree_spec`'s `_verify_pass` and `_walk`), and
the same pass gives the hidden state the heads read for the next round.  The heads are trained
with the target frozen (`scripts/train_medusa.py`, self-distillation).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .. import validate
from ..budget import Cost
from ..decoding import Generation
from ..models import DecodeState, LanguageModel
from ..trace import source as tagged
from .kv import _seconds
from .tree_spec import _Tree, _verify_pass, _walk, record_round

FORMAT = "medusa-heads"


class MedusaHeads(torch.nn.Module):
    """K Medusa heads over a target's hidden states (size d) and vocabulary (size V).

    Head k (k = 1..K) is a residual block and a linear map to the vocabulary,
    logits_k = W_k^out (h + SiLU(W_k h + b_k)); it predicts the token k + 1 positions after the
    one h was computed at.  `for_target` starts every W_k at 0 (the block is the identity) and
    every W_k^out at the target's LM head, so an untrained head guesses the next token.
    """

    def __init__(self, hidden_size: int, vocab_size: int, num_heads: int,
                 target: str = "tinyworld"):
        super().__init__()
        for name, v in (("hidden_size", hidden_size), ("vocab_size", vocab_size),
                        ("num_heads", num_heads)):
            validate.count(name, v, lo=1)
        self.hidden_size, self.vocab_size, self.num_heads = hidden_size, vocab_size, num_heads
        self.target = target
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(hidden_size, hidden_size)
                                          for _ in range(num_heads))
        self.out = torch.nn.ModuleList(torch.nn.Linear(hidden_size, vocab_size, bias=False)
                                       for _ in range(num_heads))

    @classmethod
    def for_target(cls, target: LanguageModel, num_heads: int = 4) -> "MedusaHeads":
        """Heads for ``target``: residual blocks at 0, output layers copied from its LM head."""
        heads = cls(target.model.config.hidden_size, target.vocab_size, num_heads, target.name)
        lm_head = target.model.get_output_embeddings().weight.detach().float()
        with torch.no_grad():
            for block, out in zip(heads.blocks, heads.out):
                block.weight.zero_()
                block.bias.zero_()
                out.weight.copy_(lm_head)
        return heads.to(target.device)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of every head: h (..., d) -> (K, ..., V)."""
        h = h.to(self.out[0].weight.dtype)
        return torch.stack([out(h + torch.nn.functional.silu(block(h)))
                            for block, out in zip(self.blocks, self.out)])

    def config(self) -> dict:
        return {"format": FORMAT, "hidden_size": self.hidden_size,
                "vocab_size": self.vocab_size, "num_heads": self.num_heads,
                "target": self.target}

    def save_pretrained(self, path, dtype=torch.float16) -> Path:
        """``path``/model.safetensors (weights, float16 by default) and ``path``/config.json."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().to("cpu", dtype).contiguous()
                   for k, v in self.state_dict().items()}, str(path / "model.safetensors"))
        (path / "config.json").write_text(json.dumps(self.config(), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path, target: LanguageModel | None = None) -> "MedusaHeads":
        """Heads saved by `save_pretrained`; with ``target``, checked against its sizes and moved
        to its device (float32)."""
        path = Path(path)
        files = [path / "config.json", path / "model.safetensors"]
        if not all(f.is_file() for f in files):
            raise ValueError(f"path {str(path)!r} holds no Medusa heads (it needs config.json "
                             f"and model.safetensors, as save_pretrained writes them)")
        cfg = json.loads(files[0].read_text())
        if cfg.get("format") != FORMAT:
            raise ValueError(f"path {str(path)!r}: config.json is not a {FORMAT!r} config")
        heads = cls(cfg["hidden_size"], cfg["vocab_size"], cfg["num_heads"],
                    cfg.get("target", "?"))
        weights = load_file(str(files[1]))
        want = {k: tuple(v.shape) for k, v in heads.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in weights.items()}
        if want != got:
            raise ValueError(f"path {str(path)!r}: model.safetensors does not match config.json "
                             f"(expected {want}, found {got})")
        heads.load_state_dict({k: v.float() for k, v in weights.items()})
        if target is not None:
            check_heads(target, heads)
            heads = heads.to(target.device)
        return heads.eval()


def check_heads(target: LanguageModel, heads) -> None:
    """Refuse heads built for another hidden size or vocabulary than ``target``'s."""
    if not isinstance(heads, MedusaHeads):
        raise ValueError(f"heads must be MedusaHeads, got {type(heads).__name__}")
    d = target.model.config.hidden_size
    if (heads.hidden_size, heads.vocab_size) != (d, target.vocab_size):
        raise ValueError(f"heads were built for hidden size {heads.hidden_size} and vocabulary "
                         f"{heads.vocab_size} (target {heads.target!r}); this target has "
                         f"{d} and {target.vocab_size}")


def _check_topk(topk, heads) -> tuple:
    if (not isinstance(topk, (tuple, list)) or not topk
            or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in topk)):
        raise ValueError(f"topk must be a non-empty tuple of positive ints, got {topk!r}")
    if len(topk) > heads.num_heads:
        raise ValueError(f"topk has {len(topk)} levels but the heads predict only "
                         f"{heads.num_heads} tokens ahead")
    return tuple(topk)


def candidate_tree(head_logits: torch.Tensor, topk) -> _Tree:
    """The Cartesian-product tree: every node at level j gets head j's top-``topk[j]``
    tokens as children (``head_logits`` (K, V) from one hidden state).  Levels 1..len(topk)
    hold prod(topk[:j]) nodes each."""
    tree, frontier = _Tree(), [0]
    for j, k in enumerate(topk):
        tree.q.update({node: head_logits[j] for node in frontier})
        kids = head_logits[j].topk(min(k, head_logits.shape[-1])).indices.tolist()
        frontier = [tree.add(node, tok) for node in frontier for tok in kids]
    return tree


def medusa_decoding(target: LanguageModel, heads: MedusaHeads, prompt, topk=(3, 2, 1),
                    max_new_tokens: int = 128, stop_at_eos: bool = True) -> Generation:
    """Medusa decoding with greedy acceptance (Cai et al. 2024): exactly the tokens of
    ``decoding.greedy(target, ...)``, in fewer target passes.

    The prompt's pass gives the first token y_1 = argmax s_theta(. | x) and the hidden state h
    it was read from.  Each round, with y the last committed token (the target's own choice):

    1. **Guess.**  Head k's top-``topk[k-1]`` tokens from h are the candidates for the token k
       steps after y; the candidate tree is their Cartesian product (root y, level k the
       guesses of head k), prod(topk[:k]) nodes at level k.
    2. **Verify in one target pass** (`tree_spec._verify_pass`, one row per root-to-leaf
       path), which gives the target's logits and hidden state at every node.
    3. **Walk** (`tree_spec._walk`, greedy): from the root, follow the child equal to the
       target's argmax a = argmax s_theta(. | prefix, path); the first a that is no child is
       emitted too, and ends the round.  The next round's h is the hidden state a was read
       from.  A round emits 1..len(topk) + 1 tokens.

    Exactness cannot depend on the heads: every emitted token is the target's argmax after
    the tokens before it; good heads only make rounds longer.  ``info``: ``rounds`` (as
    `tree_speculative_decoding`'s), ``tokens_per_pass`` (tokens emitted per target pass
    after the prompt's: the mean acceptance length), ``mean_accepted`` (head guesses accepted
    per round), ``target_passes`` (the prompt's included), ``tree_size``, ``head_calls``
    (one per round: all K heads on one hidden vector) and ``head_flop_ratio`` (the heads'
    multiply-adds per call over the target's per token, ~K (d^2 + d V) / parameters).  The
    Generation's cost is the target's passes plus the heads', booked as
    ``Cost(computed_tokens=head_calls)``: heads are no model pass.
    """
    check_heads(target, heads)
    topk = _check_topk(topk, heads)
    max_new_tokens = validate.count("max_new_tokens", max_new_tokens, lo=0)
    ids = target.prompt_ids(prompt, max_new_tokens)
    snap, start = target.counter.snapshot(), time.perf_counter()
    run = _Run(target, heads, ids, topk, max_new_tokens, stop_at_eos)
    with tagged("medusa"):
        while len(run.out) < max_new_tokens and run.finish == "length":
            run.round()
    tcost = target.counter.since(snap)
    hcost = Cost(computed_tokens=run.head_calls)
    n = len(run.rounds)
    emitted = sum(len(r["emitted"]) for r in run.rounds)
    info = {"rounds": run.rounds, "topk": topk,
            "tokens_per_pass": emitted / n if n else 0.0,
            "mean_accepted": sum(len(r["path"]) for r in run.rounds) / n if n else 0.0,
            "target_passes": tcost.forward_passes, "tree_size": [len(r["tokens"])
                                                                 for r in run.rounds],
            "head_calls": run.head_calls, "head_flop_ratio": _flop_ratio(target, heads),
            "target_cost": tcost, "head_cost": hcost,
            "seconds": _seconds(start, target.device)}
    return Generation.of(target, prompt, ids, run.out, run.logprobs, run.finish,
                         spent=tcost + hcost, info=info, end_logprob=run.end_logprob,
                         proposal_logprobs=[0.0] * len(run.out),
                         end_proposal_logprob=0.0 if run.finish == "eos" else None)


def _flop_ratio(target, heads) -> float:
    d, V = heads.hidden_size, heads.vocab_size
    return heads.num_heads * (d * d + d * V) / sum(p.numel() for p in target.model.parameters())


class _Run:
    """One run, a round at a time.  The target's state holds every committed token but
    ``pending`` (the last committed one, the tree's root); ``h`` is the hidden state its
    logits came from."""

    def __init__(self, target, heads, ids, topk, budget, stop):
        self.target, self.heads, self.topk, self.budget = target, heads, topk, budget
        self.eos = target.eos_token_id if stop else None
        self.out, self.logprobs, self.rounds = [], [], []
        self.finish, self.end_logprob, self.head_calls = "length", None, 0
        if budget:
            self._prefill(ids)

    def _prefill(self, ids) -> None:
        """The prompt's pass, with its hidden states; commits the first token."""
        tok = torch.tensor([ids], device=self.target.device)
        logits, cache, hid = self.target.forward(tok, hidden=True)
        self.state = DecodeState(self.target, cache, torch.ones_like(tok),
                                 torch.tensor([len(ids)], device=self.target.device),
                                 logits[:, -1], [list(ids)])
        self.h = hid[0, -1]
        first = int(logits[0, -1].argmax())
        self.pending = [first]
        self._commit([first], [logits[0, -1]])

    def round(self) -> None:
        """Guess a tree with the heads, verify it in one target pass, walk it, commit."""
        depth = min(len(self.topk), self.budget - len(self.out) - 1)
        if depth:
            with torch.no_grad():
                head_logits = self.heads(self.h)
            self.head_calls += 1
            tree = candidate_tree(head_logits, self.topk[:depth])
        else:
            tree = _Tree()
        paths = tree.paths()
        node_logits, batch, node_hidden = _verify_pass(
            self.target, self.state, self.pending,
            [[tree.tokens[n] for n in p] for p in paths], hidden=True)
        accepted, tokens, where = _walk(tree, paths, node_logits, [], True, None)
        b, j = where[-1]
        self.state = batch.select([b], inplace=True)
        self.state.crop(node_logits.shape[1] - 1 - j, node_logits[b, j])
        self.h, self.pending = node_hidden[b, j], [tokens[-1]]
        self._commit(tokens, [node_logits[b, j] for b, j in where])
        record_round(self.rounds, tree, accepted, tokens)

    def _commit(self, tokens, rows) -> None:
        """Append tokens with log p_theta until EOS or the budget."""
        for tok, raw in zip(tokens, rows):
            if len(self.out) >= self.budget:
                break
            lp = float(torch.log_softmax(raw.float(), -1)[tok])
            if tok == self.eos:
                self.finish, self.end_logprob = "eos", lp
                return
            self.out.append(tok)
            self.logprobs.append(lp)
