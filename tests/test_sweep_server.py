"""scripts/sweep_compute.py --server URL --concurrency K: a slice of the sweep through a
scripted OpenAI-style server (tests/test_backends.py): the rows keep the local schema, a server
that fails mid-sweep stops it with a clear error and leaves valid JSON holding only the
finished problems, a rerun resumes without redoing them, and concurrency changes no row, nor
the order rows are stored in.  The same for scripts/sweep_refine.py, and local models' costs
under concurrency."""
import json

import pytest

from conftest import load_script
from test_backends import Scripted, scripted  # noqa: F401  (the fixture)
from workbench.paths import data_dir

FIELDS = {"method", "setting", "id", "answer", "correct", "output_tokens", "input_tokens",
          "external_tokens", "computed_tokens", "calls", "target_flops", "naive_tokens"}


@pytest.fixture(scope="module")
def sweep():
    needed = ["tinyworld", "tinyworld-draft", "tinyworld-verifier", "tinyworld-prm"]
    if not all((data_dir() / "models" / m / "config.json").exists() for m in needed):
        pytest.skip("needs the embedded models")
    return load_script("sweep_compute")


def _run(sweep, url, out, concurrency):
    sweep.main(["--only", "sample", "adaptive_vote", "--problems", "4", "--server", url,
                "--concurrency", str(concurrency), "--out", str(out)])


def _rows(out, order=True):
    rows = [{k: v for k, v in r.items() if k != "seconds"}
            for r in json.loads(out.read_text())["rows"]]
    return sorted(rows, key=lambda r: (r["method"], r["setting"], r["id"])) if order else rows


def test_server_sweep_stops_cleanly_and_resumes(sweep, scripted, tmp_path):  # noqa: F811
    out = tmp_path / "sweep.json"
    ids = [t["id"] for t in sweep.subset(4)]
    Scripted.ok_left, Scripted.fail_status = 2, 503  # the server breaks after two answers
    with pytest.raises(SystemExit, match=r"sweep stopped: .*/v1/completions answered HTTP "
                                         r"503.*\n2 finished problem runs are saved"):
        _run(sweep, scripted, out, 1)
    data = json.loads(out.read_text())  # valid JSON, only the finished problems
    assert [(r["method"], r["id"]) for r in data["rows"]] == [("sample", i) for i in ids[:2]]
    assert data["config"]["server"] == scripted and data["summary"][0]["problems"] == 2
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind

    Scripted.ok_left, Scripted.requests = None, []
    _run(sweep, scripted, out, 3)
    rows = _rows(out)
    assert all("seconds" in r for r in json.loads(out.read_text())["rows"])
    assert len(rows) == 2 * 4 and all(FIELDS <= set(r) <= FIELDS | {"samples"} for r in rows)
    prompts = {t["id"]: t["prompt"] for t in sweep.subset(4)}
    sample_prompts = [r["prompt"] for r in Scripted.requests if r["n"] == 1]
    assert sorted(sample_prompts) == sorted(prompts[i] for i in ids[2:])  # none redone
    assert {r["n"] for r in Scripted.requests} == {1, 4}  # adaptive_vote: batches of 4
    assert all(r["computed_tokens"] == 0 and r["calls"] >= 1 for r in rows)

    fresh = tmp_path / "fresh.json"
    _run(sweep, scripted, fresh, 1)
    assert _rows(fresh) == rows  # concurrency and resuming change no row
    assert _rows(fresh, False) == _rows(out, False)  # nor the order rows are stored in


def test_concurrency_needs_a_server(sweep, capsys):
    with pytest.raises(SystemExit):
        sweep.arguments("x", "out.json", 4, ["--concurrency", "4"], server=True)
    assert "--concurrency needs --server" in capsys.readouterr().err


# -- scripts/sweep_refine.py through the same server ----------------------------------------

def _refine(sweep_refine, url, out, concurrency):
    sweep_refine.main(["--only", "calculator", "--problems", "3", "--server", url,
                       "--concurrency", str(concurrency), "--out", str(out)])


def test_refine_sweep_through_a_server_stops_cleanly_and_resumes(sweep, scripted,  # noqa: F811
                                                                 tmp_path):
    mod = load_script("sweep_refine")
    out, tasks = tmp_path / "refine.json", mod.hard_tasks(3)
    Scripted.delay = 0.05  # answers arrive in a random order (each text tagged with its prompt)
    Scripted.ok_left, Scripted.fail_status = 6, 503
    with pytest.raises(SystemExit, match=r"(?s)sweep stopped: .*/v1/completions answered HTTP "
                                         r"503.*\n1 finished problem runs are saved"):
        _refine(mod, scripted, out, 1)
    data = json.loads(out.read_text())  # valid JSON: the first problem's rounds 0..ROUNDS
    assert [(r["id"], r["round"]) for r in data["rows"]] == [
        (tasks[0]["id"], k) for k in range(mod.ROUNDS + 1)]
    assert data["config"]["server"] == scripted and data["summary"] == mod.summarize(data["rows"])

    Scripted.ok_left, Scripted.requests = None, []
    _refine(mod, scripted, out, 3)
    asked = [r["prompt"] for r in Scripted.requests]
    assert not any(p.startswith(tasks[0]["prompt"]) for p in asked)  # not redone
    assert all(any(p.startswith(t["prompt"]) for p in asked) for t in tasks[1:])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["id"], r["round"]) for r in rows] == [
        (t["id"], k) for t in tasks for k in range(mod.ROUNDS + 1)]  # in problem order

    fresh = tmp_path / "fresh.json"
    _refine(mod, scripted, fresh, 1)
    assert json.loads(fresh.read_text())["rows"] == rows  # concurrency and resuming change no row


def test_local_methods_costs_do_not_depend_on_concurrency(sweep, scripted,  # noqa: F811
                                                          tmp_path):
    """A local model run in every problem's thread (the draft's greedy decoding) charges each
    problem its own forward passes (`workbench.models.Counter`), whatever runs beside it."""
    outs = [tmp_path / f"c{k}.json" for k in (1, 3)]
    for k, out in zip((1, 3), outs):
        sweep.main(["--only", "greedy (draft)", "--problems", "3", "--server", scripted,
                    "--concurrency", str(k), "--out", str(out)])
    rows = [_rows(out, False) for out in outs]
    assert rows[0] == rows[1] and len({r["computed_tokens"] for r in rows[0]}) == 3
