"""A real `transformers serve` process for the tests (tests/test_backends.py,
tests/test_sweep_serve.py), and the batch sizes its continuous-batching log reveals."""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from workbench.paths import data_dir

# Continuous batching writes a debug line per request when it leaves the scheduler
# (generation/continuous_batching/requests.py, `log_end_of_request`) to the stdlib logger
# "ContinuousBatchingLogger" (its own handler stamps the time), which no CLI flag or
# TRANSFORMERS_VERBOSITY reaches and which runs in the model's spawned process: a sitecustomize
# module (on PYTHONPATH, so every process of the server imports it) sets it to debug.
LOG_BATCHES = 'import logging\nlogging.getLogger("ContinuousBatchingLogger").setLevel("DEBUG")\n'
FINISHED = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ContinuousBatchingLogger - DEBUG"
                      r" - Request (\S+) finished: "
                      r"prefill_len = (\d+) decode_len = (\d+) start_time = ([\d.e-]+) "
                      r"end_time = ([\d.e-]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_model(tmp_path_factory) -> Path:
    """data/models/tinyworld, or a random 2-layer Llama saved with the TinyWorld tokenizer."""
    target = data_dir() / "models" / "tinyworld"
    if (target / "config.json").exists():
        return target
    from transformers import AutoTokenizer

    from conftest import random_llama
    path = tmp_path_factory.mktemp("random-llama")
    tok = AutoTokenizer.from_pretrained(data_dir() / "tokenizer")
    random_llama(tok, seed=1).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@contextmanager
def serving(tmp_path_factory, *flags, log_batches=False):
    """A `transformers serve` process on 127.0.0.1 serving the model offline (with extra CLI
    ``flags``; ``log_batches``: its continuous batching's per-request lines, `batch_sizes`);
    yields (base URL, model path, port, log file) and stops it after."""
    for mod in ("fastapi", "uvicorn", "openai"):
        try:
            __import__(mod)
        except ImportError:
            pytest.fail(f"`transformers serve` needs {mod}: run scripts/setup.sh (test extras)")
    path = served_model(tmp_path_factory)
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if log_batches:
        site = tmp_path_factory.mktemp("sitecustomize")
        (site / "sitecustomize.py").write_text(LOG_BATCHES)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    with open(log, "w") as out:
        proc = subprocess.Popen([str(cli), "serve", str(path), "--host", "127.0.0.1", "--port",
                                 str(port), "--device", "cpu", "--log-level", "warning", *flags],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 420  # imports are slow on a busy 2-core machine
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited ({proc.returncode}): "
                            f"{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"transformers serve not up in 420 s: {log.read_text()[-3000:]}")
            time.sleep(2)
        yield base, path, port, log
    finally:
        stop(proc, 30)
    assert proc.poll() is not None


def stop(proc, grace: float) -> None:
    """Terminate a server process, killing it if it has not exited after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def batch_sizes(log_text: str) -> dict:
    """How many requests the server's continuous-batching scheduler held at once, from its
    per-request lines (``FINISHED``): each request was in the scheduler from its end time stamp
    minus (end_time - start_time) to that stamp (ms precision).  ``mean`` is weighted by time
    over the busy time (the batch a decoding step saw on average), ``max`` the most at once,
    ``requests`` how many lines were read."""
    events = []
    for stamp, _, _, _, start, end in FINISHED.findall(log_text):
        t1 = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        events += [(t1 - (float(end) - float(start)), 1), (t1, -1)]
    if not events:
        raise ValueError("no 'Request ... finished' lines: was the server started with "
                         "serving(..., '--continuous-batching', log_batches=True)?")
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    held, peak, area, busy, last = 0, 0, 0.0, 0.0, None
    for t, step in events:
        if held and last is not None:
            area, busy = area + held * (t - last), busy + (t - last)
        held, last = held + step, t
        peak = max(peak, held)
    return {"mean": area / busy if busy else float(peak), "max": peak,
            "requests": len(events) // 2}
