"""The chapters' Colab set-up cell and scripts/colab_setup.py, with Colab's module faked: the
install keeps Colab's torch, stays in the tested range, needs plotly >= 6, turns on the custom
widget manager, and a failed clone or install stops the notebook."""
import subprocess
import sys
import types

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from conftest import load_script

colab = load_script("colab_setup")
RANGES = {"torch": ("2.6", "2.13.0+cpu"), "transformers": ("5.0", "5.25.0"),
          "plotly": ("6.0", "7.1.0")}


def test_tested_ranges_come_from_pyproject_and_the_lock():
    ranges = colab.tested_ranges()
    assert set(ranges) == {"torch", "transformers", "plotly"}
    assert ranges["plotly"][0] == "6.0"           # FigureWidget is an anywidget from 6 on
    for low, locked in ranges.values():
        assert colab._release(low) <= colab._release(locked)


@pytest.mark.parametrize("have, want", [
    ({"torch": "2.9.0+cu126", "transformers": "5.10.1", "plotly": "6.5.0"},
     ["torch==2.9.0+cu126", "transformers==5.10.1", "plotly==6.5.0"]),       # all in range: kept
    ({"torch": "2.9.0+cu126", "transformers": "4.57.1", "plotly": "5.24.1"},
     ["torch==2.9.0+cu126", "transformers==5.25.0", "plotly==7.1.0"]),       # too old: locked
    ({"torch": "2.13.0", "transformers": "5.30.0", "plotly": None},
     ["torch==2.13.0", "transformers==5.25.0", "plotly==7.1.0"]),            # untested / missing
])
def test_plan_keeps_colabs_packages_inside_the_tested_range(have, want):
    assert colab.plan(have, RANGES) == want


def test_plan_refuses_a_torch_below_the_floor():
    with pytest.raises(RuntimeError, match="torch>=2.6"):
        colab.plan({"torch": "2.5.1", "transformers": "5.1.0", "plotly": "6.0.0"}, RANGES)


@pytest.fixture
def fake_colab(monkeypatch):
    calls = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("widgets"))
    google = types.ModuleType("google")
    google.colab = types.ModuleType("google.colab")
    google.colab.output = output
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google.colab)
    monkeypatch.chdir(colab.ROOT)
    return calls


def _run_cell(workbench_dir, runner, monkeypatch):
    """The stored set-up cell, through IPython's transformer, with /content/workbench moved."""
    src = load_script("build_notebooks").SETUP.format(repo="o/r")
    code = TransformerManager().transform_cell(src.replace("/content/workbench", str(workbench_dir)))
    monkeypatch.setattr(subprocess, "run", runner)
    magics = []
    ipy = types.SimpleNamespace(run_line_magic=lambda name, arg: magics.append((name, arg)))
    exec(code, {"get_ipython": lambda: ipy})
    return magics


def test_the_cell_clones_then_runs_the_setup_script(fake_colab, monkeypatch, tmp_path):
    ran = []
    magics = _run_cell(tmp_path / "wb", lambda cmd, check: ran.append((cmd, check)), monkeypatch)
    assert ran == [(["git", "clone", "-q", "--depth", "1", "https://github.com/o/r",
                     str(tmp_path / "wb")], True)]
    assert magics == [("run", f"{tmp_path / 'wb'}/scripts/colab_setup.py")]


def test_a_failed_clone_stops_the_notebook(fake_colab, monkeypatch, tmp_path):
    def fail(cmd, check):
        raise subprocess.CalledProcessError(128, cmd)
    with pytest.raises(subprocess.CalledProcessError):
        _run_cell(tmp_path / "wb", fail, monkeypatch)


def test_setup_installs_against_colabs_torch_and_enables_widgets(fake_colab, monkeypatch):
    ran = []
    monkeypatch.setattr(colab, "installed_versions", lambda names: {
        "torch": "2.9.0+cu126", "transformers": "4.57.1", "plotly": "5.24.1"})
    pins = colab.main(run=lambda cmd, check: ran.append((cmd, check)))
    assert pins[0] == "torch==2.9.0+cu126" and pins[2].startswith("plotly==")
    (cmd, check), = ran
    assert check is True and cmd[:3] == [sys.executable, "-m", "pip"] and "-c" in cmd
    assert (colab.ROOT / "build" / "colab-constraints.txt").read_text().split() == pins
    assert fake_colab == ["widgets"]


def test_a_failed_install_raises_before_the_widgets(fake_colab, monkeypatch):
    def fail(cmd, check):
        raise subprocess.CalledProcessError(1, cmd)
    with pytest.raises(subprocess.CalledProcessError):
        colab.main(run=fail)
    assert fake_colab == []
