"""Loading reward models from a local directory or the Hub, found like ``wb.load``."""
from __future__ import annotations

from pathlib import Path

import torch

from .base import _check_choice
from .orm import OutcomeRewardModel
from .prm import ProcessRewardModel


# -- loaders ----------------------------------------------------------------------------------

def _load(pick_class, name_or_path, device, dtype, trust_remote_code):
    """``(model, tokenizer, name)``: ``pick_class(config)`` chooses the Auto class."""
    from transformers import AutoConfig, AutoTokenizer

    from ..loading import _pretrained, default_dtype, resolve
    from ..models import pick_device
    from ..paths import data_dir
    ident, is_local = resolve(name_or_path)
    dev = pick_device(device)
    dtype = dtype or default_dtype(dev, is_local and str(ident).startswith(str(data_dir())))
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    remote = {"trust_remote_code": True} if trust_remote_code else {}
    config = _pretrained(AutoConfig, ident, is_local, **remote)
    tokenizer = _pretrained(AutoTokenizer, ident, is_local, **remote)
    model = _pretrained(pick_class(config), ident, is_local, dtype=dtype, **remote)
    return model.to(dev), tokenizer, Path(ident).name if is_local else ident


def load_orm(name_or_path, device=None, dtype=None, trust_remote_code: bool = False,
             **kw) -> OutcomeRewardModel:
    """An `OutcomeRewardModel` from a local directory or a Hub id (a sequence-classification
    checkpoint), found like ``wb.load`` (no network call when offline).  ``kw`` go to
    `OutcomeRewardModel` (``good_label``, ``probability``, ``chat``, ``format``...)."""
    from transformers import AutoModelForSequenceClassification
    model, tok, name = _load(lambda config: AutoModelForSequenceClassification, name_or_path,
                             device, dtype, trust_remote_code)
    return OutcomeRewardModel(model, tok, name=kw.pop("name", name), **kw)


def _head_class(config):
    from transformers import AutoModel, AutoModelForTokenClassification
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        return AutoModelForTokenClassification
    return AutoModel   # e.g. Qwen2ForProcessRewardModel through its remote code


def load_prm(name_or_path, kind: str = "token", device=None, dtype=None,
             trust_remote_code: bool = False, **kw) -> ProcessRewardModel:
    """A `ProcessRewardModel` from a local directory or a Hub id, found like ``wb.load``:
    ``kind="token"`` loads a causal LM (Math-Shepherd), ``kind="head"`` a token-classification
    model, or ``AutoModel`` for other architectures (Qwen2.5-Math-PRM needs
    ``trust_remote_code=True``).  ``kw`` go to `ProcessRewardModel`."""
    from transformers import AutoModelForCausalLM
    _check_choice("kind", kind, ("token", "head"))
    pick = (lambda config: AutoModelForCausalLM) if kind == "token" else _head_class
    model, tok, name = _load(pick, name_or_path, device, dtype, trust_remote_code)
    return ProcessRewardModel(model, tok, kind=kind, name=kw.pop("name", name), **kw)
