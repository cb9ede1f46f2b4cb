"""Scorers v(x, y) (survey Table 1): learned verifiers, process reward models, classifiers.

A `TokenScorer` wraps a token-classification model with one logit per position.  Its
probability at the last token of a text scores the whole text (an outcome verifier, §4.2.1);
its probabilities at the ends of steps score a partial solution step by step (a process reward
model, §4.3); at every prefix position it is a FUDGE-style attribute classifier p(a | y_<=t)
(§3.4, eq. 16).  Every call reports its cost as *external* tokens (Table 5).
"""
from __future__ import annotations

import torch

from .budget import Cost


class TokenScorer:
    def __init__(self, model, tokenizer, name="scorer"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = next(model.parameters()).device
        self.spent = Cost()

    def __repr__(self):
        n = sum(p.numel() for p in self.model.parameters())
        return f"TokenScorer({self.name!r}, {n / 1e6:.1f}M parameters)"

    def encode(self, text: str) -> list:
        return self.tokenizer(text)["input_ids"]

    @torch.no_grad()
    def position_probs(self, texts, batch_size: int = 64) -> list:
        """sigmoid(logit) at every token position of each text (BOS included)."""
        rows = [self.encode(t) if isinstance(t, str) else list(t) for t in texts]
        out = []
        pad = self.tokenizer.pad_token_id or 0
        for s in range(0, len(rows), batch_size):
            chunk = rows[s:s + batch_size]
            n = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), n), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), n), dtype=torch.long)
            for i, r in enumerate(chunk):
                ids[i, :len(r)] = torch.tensor(r)
                mask[i, :len(r)] = 1
            logits = self.model(input_ids=ids.to(self.device),
                                attention_mask=mask.to(self.device)).logits[..., 0]
            probs = torch.sigmoid(logits.float()).cpu()
            out += [probs[i, :len(r)].tolist() for i, r in enumerate(chunk)]
            self.spent = self.spent + Cost(external_tokens=int(mask.sum()))
        return out

    def score(self, texts, batch_size: int = 64) -> list:
        """Probability that each complete text is good (the value at its last token)."""
        single = isinstance(texts, str)
        probs = self.position_probs([texts] if single else list(texts), batch_size)
        vals = [p[-1] for p in probs]
        return vals[0] if single else vals

    def cost_of(self, texts) -> Cost:
        """External-token cost of scoring these texts once (Table 5's C_s per text)."""
        return Cost(external_tokens=sum(len(self.encode(t)) for t in texts))
