"""binder/ as repo2docker uses it: a fresh virtual environment built from binder/ only, in which
notebooks/00_welcome.ipynb runs without errors and draws what its stored outputs draw.

repo2docker installs ``binder/requirements.txt`` (the locked set, ``requirements-lock.txt``) and
then runs ``binder/postBuild``; this test
does the same in a new venv.  Where this machine has the CPU torch wheel locally (pip's
find-links, ``/opt/wheels`` here) the PyTorch index line is left out, as that index is not
reachable from here; everything else comes from the package index as on Binder.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
WELCOME = ROOT / "notebooks" / "00_welcome.ipynb"
RICH = ("application/vnd.plotly.v1+json", "application/vnd.jupyter.widget-view+json")

pytestmark = [pytest.mark.slow, pytest.mark.tier]


def _local_torch() -> bool:
    links = os.environ.get("PIP_FIND_LINKS", "/opt/wheels")
    return any(Path(d).glob("torch-2.13.0*.whl") for d in links.split() if Path(d).is_dir())


def _requirements(tmp: Path) -> Path:
    lines = [ln.replace("-r ../", f"-r {ROOT}/")
             for ln in (BINDER / "requirements.txt").read_text().splitlines()]
    if _local_torch():
        lines = [ln for ln in lines if "download.pytorch.org" not in ln]
    out = tmp / "requirements.txt"
    out.write_text("\n".join(lines) + "\n")
    return out


def _run(cmd, env, timeout, cwd=ROOT):
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def _kinds(nb):
    return [sorted(k for o in c.get("outputs", []) for k in o.get("data", {}) if k in RICH)
            for c in nb.cells if c.cell_type == "code"]


def test_binder_files():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    req = (BINDER / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in req
    assert re.search(r"^-r \.\./requirements-lock\.txt$", req, re.M)  # the tested set
    assert re.search(r"^torch==\d[^ ]*\+cpu$", (ROOT / "requirements-lock.txt").read_text(), re.M)
    assert os.access(BINDER / "postBuild", os.X_OK)


def test_welcome_runs_in_a_binder_environment(tmp_path):
    if not WELCOME.exists():
        pytest.skip("notebooks/00_welcome.ipynb is not built yet")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               HF_HUB_OFFLINE="1", JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([py, "-m", "pip", "install", "-q", "-r", _requirements(tmp_path)], env, 900)
    _run(["bash", BINDER / "postBuild"], env, 1200)
    # run the notebook in this environment's kernel, plus one cell that says where it ran
    nb = nbformat.read(WELCOME, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, sys, torch, workbench\n"
        "print(json.dumps({'prefix': sys.prefix, 'torch': torch.__version__, "
        "'cuda': torch.version.cuda, 'workbench': workbench.__file__}))"))
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    _run([py, "-c", "import sys, nbformat; from nbclient import NotebookClient\n"
          "nb = nbformat.read(sys.argv[1], 4)\n"
          "NotebookClient(nb, timeout=600, kernel_name='python3',"
          " resources={'metadata': {'path': sys.argv[3]}}).execute()\n"
          "nbformat.write(nb, sys.argv[2])", src, out, WELCOME.parent], env, 900)
    ran = nbformat.read(out, as_version=4)
    where = json.loads(ran.cells[-1].outputs[-1]["text"])
    assert Path(where["prefix"]).resolve() == venv.resolve()
    assert where["cuda"] is None, f"Binder got a CUDA build of torch {where['torch']}"
    assert Path(where["workbench"]).resolve().is_relative_to(ROOT / "workbench")
    errors = [o for c in ran.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert _kinds(ran)[:-1] == _kinds(nbformat.read(WELCOME, as_version=4))
