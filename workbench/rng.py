"""Seeds: one ``seed`` argument controls every random choice in the package."""
from __future__ import annotations

import random

import numpy as np
import torch


def make_generator(seed=None, device="cpu") -> torch.Generator:
    """A torch Generator from an int seed (or the Generator itself; None draws a fresh seed)."""
    if isinstance(seed, torch.Generator):
        return seed
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    g = torch.Generator(device=torch.device(device).type if torch.device(device).type != "mps"
                        else "cpu")
    g.manual_seed(int(seed) if seed is not None else random.SystemRandom().randrange(2**63))
    return g


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (for notebooks and scripts)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
