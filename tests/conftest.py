import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# one thread unless told otherwise: a second busy process on 2 cores makes OpenMP spin
torch.set_num_threads(int(os.environ.get("WORKBENCH_THREADS", "1")))

# the fixture notebook is input to the browser and export tests, not an nbval regression
# (no conftest.py in tests/fixtures: it would shadow this module for `from conftest import`)
collect_ignore = ["fixtures/sample.ipynb"]


def load_script(name: str):
    """A module of ``scripts/`` (sweeps, notebook builder, exporter), imported by file path."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from workbench.paths import data_dir
    return AutoTokenizer.from_pretrained(data_dir() / "tokenizer")


def random_llama(tokenizer, seed=0, layers=2, hidden=64, heads=4, kv_heads=None, ctx=256):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                      intermediate_size=2 * hidden, max_position_embeddings=ctx,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def tiny_lm(tokenizer):
    """A small randomly initialised Llama over the TinyWorld tokenizer."""
    from workbench import LanguageModel
    return LanguageModel(random_llama(tokenizer), tokenizer, name="random-tiny")


@pytest.fixture(scope="session")
def target():
    import workbench as wb
    return wb.load("tinyworld")


@pytest.fixture(scope="session")
def draft():
    import workbench as wb
    return wb.load("tinyworld-draft")


def pytest_terminal_summary(terminalreporter):
    """List the browser tests' screenshots (tests/test_browser.py) at the end of the run."""
    from pathlib import Path
    shots = sorted((Path(__file__).resolve().parent.parent / "build" / "screenshots").glob("*.png"))
    if shots:
        terminalreporter.write_sep("-", f"{len(shots)} screenshots")
        for p in shots:
            terminalreporter.write_line(str(p))
