import os
import sys
import warnings
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# one thread unless told otherwise: a second busy process on 2 cores makes OpenMP spin
torch.set_num_threads(int(os.environ.get("WORKBENCH_THREADS", "1")))

# the fixture notebook is input to the browser and export tests, not an nbval regression
# (no conftest.py in tests/fixtures: it would shadow this module for `from conftest import`)
collect_ignore = ["fixtures/sample.ipynb"]


OURS = tuple(str(Path(__file__).resolve().parent.parent / d) + os.sep for d in ("workbench", "widgets"))
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _ours(filename: str, frame) -> bool:
    """A deprecation is the workbench's when it is attributed (by the warning's stacklevel) to
    our code, or to the library function our code called: transformers' ``deprecate_kwarg``
    names ``torch.nn.Module.__call__``, the entry of our ``model(...)`` call.  A library warning
    about its own internals, deeper down (plotly validating its trace types), or raised while a
    library is imported, is third-party."""
    entry = None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(OURS):
            return filename.startswith(OURS) or (entry is not None and filename == entry)
        if name.startswith("<frozen importlib"):
            return False
        entry, frame = name, frame.f_back
    return False


@pytest.fixture(autouse=True)
def deprecations_from_our_code_are_errors():
    """A DeprecationWarning/FutureWarning raised by a call the workbench makes fails the test at
    the call (the project's own calls must use the current API of every library); third-party
    warnings, and tests calling a library directly, stay warnings."""
    shown = warnings.showwarning

    def check(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DEPRECATIONS) and _ours(filename, sys._getframe(1)):
            raise category(f"{message} (raised by the workbench's call: {filename}:{lineno})")
        return shown(message, category, filename, lineno, file, line)

    warnings.showwarning = check
    yield
    warnings.showwarning = shown


@pytest.fixture(autouse=True)
def events_have_their_documented_fields():
    """Every event of a documented kind that any trace records during a test has exactly the
    fields `workbench.trace.EVENTS` gives that kind (tests may emit kinds of their own)."""
    import importlib
    trace = importlib.import_module("workbench.trace")
    bad, record = [], trace.Trace._record

    def checked(self, kind, fields):
        if kind in trace.EVENTS:
            bad.extend(trace.problems({"kind": kind, **fields}))
        record(self, kind, fields)

    trace.Trace._record = checked
    yield
    trace.Trace._record = record
    assert not bad, f"events off their schema (workbench.trace.EVENTS): {sorted(set(bad))}"


# Tests that must run alone on the machine are marked `serial`: they assert on wall-clock time
# (the chapters that time code, also when the browser test runs them; the server's waits;
# load-time bounds) or they inspect machine-wide state (the sandbox suites watch the shared
# world-writable directories).  scripts/test.sh runs the rest on two workers, one file per
# worker, then these one at a time.
SERIAL_NOTEBOOKS = ("05_", "12_", "13_", "14_")
SERIAL_FILES = ("test_backends.py", "test_sweep_serve.py")


def _serial(item) -> bool:
    name = item.path.name
    if name in SERIAL_FILES or name.startswith("test_sandbox"):
        return True
    if item.path.suffix == ".ipynb":
        return name.startswith(SERIAL_NOTEBOOKS)
    path = getattr(getattr(item, "callspec", None), "params", {}).get("path")
    return name == "test_browser.py" and path is not None and path.name.startswith(SERIAL_NOTEBOOKS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _serial(item):
            item.add_marker(pytest.mark.serial)


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


def chat_stub():
    """A stand-in chat model: ``.tokenizer`` is TinyWorld's with a small chat template
    (``<|role|>content`` per turn), enough for code that builds chat prompts."""
    from transformers import AutoTokenizer

    from workbench.paths import data_dir
    tok = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n"
                         "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    return type("ChatLM", (), {"tokenizer": tok})()


def support(lm, prompt, ads, depth):
    """Every output of "sample through ``ads`` for at most ``depth`` tokens" that has g > 0
    (those that end on EOS include it): the whole support, for exact distribution tests."""
    import numpy as np
    from workbench import decoding
    p_ids = lm.prompt_ids(prompt)
    out, frontier = [], [[]]
    for _ in range(depth):
        nxt = []
        for pre in frontier:
            logits = decoding.apply_adapters(lm.next_logits([p_ids + pre]), ads)[0]
            for tok in np.flatnonzero(np.isfinite(logits.numpy())).tolist():
                (out if tok == lm.eos_token_id else nxt).append(pre + [tok])
        frontier = nxt
    return out + frontier


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
