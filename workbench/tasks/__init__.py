"""Benchmark tasks behind one interface (`Task`, `Problem`), loaded by name::

    from workbench import tasks
    task = tasks.load("gsm8k")          # "math", "humaneval", "mbpp",
                                        # "tinyworld-arithmetic", "tinyworld-json"
    p = task.problems[0]
    reply = ...                         # generate from task.prompt(p, lm)
    task.extract(reply), task.check(p, reply)

Where the problems come from (``source``): ``"local"`` reads ``data/tasks/<name>.jsonl`` (small
problem sets written for this project in each dataset's own field format) or the file at
``path`` (JSON Lines, or a JSON list); ``"hub"`` loads the Hugging Face dataset with the
``datasets`` library; ``"auto"`` (default) uses the Hub when ``datasets`` is installed and
neither ``HF_HUB_OFFLINE`` nor ``HF_DATASETS_OFFLINE`` is set, and the local file otherwise
(or when the Hub fails).  ``task.source`` says which was used.  TinyWorld's tasks are always
local (``tasks/tinyworld.py``, imported only when asked for).
"""
from __future__ import annotations

import importlib
import importlib.util
import os

from .base import Problem, Task, read_records
from .code import pass_at_k

__all__ = ["Problem", "Task", "load", "pass_at_k", "NAMES", "hub_available"]

# name -> (module, class, Hub dataset (repo, config, split) or None)
FAMILIES = {
    "gsm8k": ("gsm8k", "GSM8K", ("openai/gsm8k", "main", "test")),
    "math": ("competition", "CompetitionMath", ("HuggingFaceH4/MATH-500", None, "test")),
    "humaneval": ("code", "HumanEval", ("openai/openai_humaneval", None, "test")),
    "mbpp": ("code", "MBPP", ("google-research-datasets/mbpp", "full", "test")),
    "tinyworld-arithmetic": ("tinyworld", "TinyWorldArithmetic", None),
    "tinyworld-json": ("tinyworld", "TinyWorldJSON", None),
}
NAMES = tuple(FAMILIES)
_LOCAL = {"tinyworld-arithmetic": "arithmetic", "tinyworld-json": "json"}
_OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_available() -> bool:
    """``datasets`` is installed and no offline variable is set (no network call is made)."""
    offline = any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
                  for v in _OFFLINE)
    return not offline and importlib.util.find_spec("datasets") is not None


def _hub_records(name: str, split: str | None) -> list:
    repo, config, default_split = FAMILIES[name][2]
    import datasets
    return list(datasets.load_dataset(repo, config, split=split or default_split))


def load(name: str, path=None, source: str = "auto", split: str | None = None,
         limit: int | None = None) -> Task:
    """The task ``name`` (one of `NAMES`) with its problems (see the module docstring for
    ``source``); ``path`` reads a local file instead; ``split`` picks the Hub split (default
    ``test``); ``limit`` keeps the first problems only."""
    if name not in FAMILIES:
        raise ValueError(f"name: unknown task {name!r}; known: {', '.join(NAMES)}")
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub', got {source!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    module, cls_name, hub = FAMILIES[name]
    cls = getattr(importlib.import_module(f"{__name__}.{module}"), cls_name)
    records, where, failed = None, None, ""
    if path is None and source == "hub":
        if hub is None:
            raise ValueError(f"source='hub': task {name!r} has no Hub dataset; use "
                             f"source='local'")
        if not hub_available():
            raise RuntimeError(f"source='hub' needs the `datasets` library and no "
                               f"{' / '.join(_OFFLINE)} set; use source='local' for the "
                               f"problems in data/tasks/ or path=... for your own file")
        records, where = _hub_records(name, split), f"hub:{hub[0]}"
    elif path is None and source == "auto" and hub is not None and hub_available():
        try:
            records, where = _hub_records(name, split), f"hub:{hub[0]}"
        except Exception as err:  # no network, dataset gone: the local problems stand in,
            records, failed = None, f"{type(err).__name__}: {err}"[:200]   # and say so
    if records is None:
        if path is None:
            from ..paths import data_dir
            path = data_dir() / "tasks" / f"{_LOCAL.get(name, name)}.jsonl"
        records, where = read_records(path), str(path)
        if failed:
            where += f" (the Hub dataset {hub[0]} failed to load: {failed})"
    return cls.from_records(records[:limit] if limit else records, where)
