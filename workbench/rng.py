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


def split(seed, n: int) -> list:
    """``n`` independent integer seeds derived from one (an int, a Generator or None): the one
    way the package gives each call, round or sample of an algorithm its own seed, so that the
    same ``seed`` reproduces every part of a run."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    g = make_generator(seed)
    return [int(x) for x in torch.randint(0, 2**62, (int(n),), generator=g)]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (for notebooks and scripts)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
