"""Where the embedded world lives."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """``data/`` of the repository (or ``$WORKBENCH_DATA`` if set)."""
    env = os.environ.get("WORKBENCH_DATA")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "data"
