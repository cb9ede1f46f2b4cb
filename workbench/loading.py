"""``wb.load``: embedded TinyWorld models by name, or any Hugging Face model id / local path."""
from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

import torch

from .models import LanguageModel, pick_device
from .paths import data_dir


class ModelNotAvailable(OSError):
    """The model cannot be found locally and cannot be downloaded from here."""


def embedded_models() -> list:
    """Names of the models shipped in ``data/models/`` (Hugging Face models: a config.json with
    a ``model_type``; Medusa heads, ``tinyworld-medusa``, are not one)."""
    root = data_dir() / "models"
    return sorted(p.name for p in root.iterdir() if _is_hf_model(p)) if root.exists() else []


def _is_hf_model(p: Path) -> bool:
    cfg = p / "config.json"
    return cfg.exists() and "model_type" in json.loads(cfg.read_text())


def resolve(name_or_path) -> tuple:
    """``(path_or_id, is_local)`` for an embedded name, a local directory or a Hub id."""
    s = str(name_or_path)
    if s in embedded_models():
        return str(data_dir() / "models" / s), True
    if s.startswith("tinyworld"):
        raise ModelNotAvailable(
            f"no embedded model {s!r} in {data_dir() / 'models'}; embedded models: "
            f"{embedded_models() or 'none (run scripts/train_zoo.py)'}")
    p = Path(s).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise ModelNotAvailable(f"{p} exists but has no config.json: not a saved HF model")
        return str(p), True
    return s, False


def _hub_reachable(timeout=3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _pretrained(cls, ident, is_local, **kw):
    """``cls.from_pretrained`` that fails fast with advice instead of hanging offline."""
    try:
        if is_local:  # small local models: no "Loading weights" progress bars in notebooks
            with _quiet():
                return cls.from_pretrained(ident, local_files_only=True, **kw)
        return cls.from_pretrained(ident, local_files_only=True, **kw)
    except OSError as err:
        if is_local:
            raise ModelNotAvailable(f"could not load {ident!r}: {err}") from err
        if not _hub_reachable():
            raise ModelNotAvailable(
                f"{ident!r} is not in the local Hugging Face cache and the Hub cannot be reached "
                f"from here. Download it where there is network (`hf download "
                f"{ident}`) and pass the local directory to wb.load, or use an embedded model: "
                f"{', '.join(embedded_models())}.") from err
    return cls.from_pretrained(ident, **kw)


@contextmanager
def _quiet():
    from transformers.utils import logging as hf_logging
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def default_dtype(device: torch.device, embedded: bool) -> torch.dtype:
    if device.type == "cuda" and not embedded:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load(name_or_path="tinyworld", device=None, dtype=None):
    """Load a model: an embedded name (``"tinyworld"``, ``"tinyworld-draft"``, ...), a local
    directory saved with ``save_pretrained``, or a Hugging Face Hub id.

    Causal LMs come back as a `LanguageModel`; token-classification heads (TinyWorld's
    attribute classifier) as a `workbench.scoring.TokenScorer`, sequence-classification heads
    (outcome reward models) as a `workbench.reward_models.OutcomeRewardModel` (its defaults;
    `workbench.reward_models.load_orm` takes its options), and a causal LM saved with a
    ``scorer.json`` (a class-conditional LM: TinyWorld's verifier and process reward model) as
    a `workbench.scoring.BayesScorer`.
    ``device`` defaults to cuda, then mps, then cpu; ``dtype`` to float32, or bfloat16 for a Hub
    model on a GPU.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    ident, is_local = resolve(name_or_path)
    embedded = is_local and str(ident).startswith(str(data_dir()))
    dev = pick_device(device)
    dtype = dtype or default_dtype(dev, embedded)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    config = _pretrained(AutoConfig, ident, is_local)
    tokenizer = _pretrained(AutoTokenizer, ident, is_local)
    name = Path(ident).name if is_local else ident
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        from transformers import AutoModelForTokenClassification

        from .scoring import TokenScorer
        model = _pretrained(AutoModelForTokenClassification, ident, is_local, dtype=dtype)
        return TokenScorer(model.to(dev), tokenizer, name=name)
    if any(a.endswith("ForSequenceClassification") for a in archs):
        from transformers import AutoModelForSequenceClassification

        from .reward_models import OutcomeRewardModel
        model = _pretrained(AutoModelForSequenceClassification, ident, is_local, dtype=dtype)
        return OutcomeRewardModel(model.to(dev), tokenizer, name=name)
    model = _pretrained(AutoModelForCausalLM, ident, is_local, dtype=dtype)
    scorer = Path(ident) / "scorer.json" if is_local else None
    if scorer is not None and scorer.exists():  # a class-conditional LM used as a classifier
        from .scoring import BayesScorer
        spec = json.loads(scorer.read_text())
        return BayesScorer(model.to(dev), tokenizer, spec["codes"], spec["prior_log_odds"],
                           name=name)
    return LanguageModel(model.to(dev), tokenizer, name=name)
