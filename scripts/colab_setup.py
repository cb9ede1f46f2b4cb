"""Set up a Colab runtime for the chapters: run by each chapter's first cell, in the kernel
(``%run /content/workbench/scripts/colab_setup.py``), after the cell cloned the repository.

Colab comes with its own torch, transformers and plotly.  This installs the workbench *against
them* where they lie in the tested range (pyproject.toml's lower bound up to the locked version
in requirements-lock.txt), so nothing re-downloads a CUDA torch; a transformers outside that
range is replaced by the locked one; plotly is raised to >= 6 (a `FigureWidget` is an anywidget
only from 6 on).  Then it turns on Colab's custom widget manager, which anywidgets need.  Any
failure raises: a chapter must not go on in a half-installed runtime.
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tested_ranges(root: Path = ROOT) -> dict:
    """``{package: (lower bound, locked version)}`` for torch, transformers and plotly."""
    import tomllib
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    lows = dict(re.fullmatch(r"([A-Za-z0-9_.-]+)>=(\S+)", d).groups() for d in deps)
    lock = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (root / "requirements-lock.txt").read_text(), re.M))
    return {p: (lows[p], lock[p]) for p in ("torch", "transformers", "plotly")}


def _release(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:3])


def plan(installed: dict, ranges: dict) -> list:
    """Pip constraints for the install: keep each installed package inside its tested range,
    take the locked version of one outside it (or missing); torch is never replaced."""
    pins = []
    for pkg, (low, locked) in ranges.items():
        have = installed.get(pkg)
        if pkg == "torch":
            if have is None or _release(have) < _release(low):
                raise RuntimeError(f"this runtime has torch {have}; the workbench needs torch>={low}"
                                   " (Runtime > Change runtime type, or pip install -U torch)")
            pins.append(f"torch=={have}")
        elif have is not None and _release(low) <= _release(have) <= _release(locked):
            pins.append(f"{pkg}=={have}")
        else:
            pins.append(f"{pkg}=={locked}")
    return pins


def installed_versions(names) -> dict:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def main(root: Path = ROOT, run=subprocess.run) -> list:
    ranges = tested_ranges(root)
    pins = plan(installed_versions(ranges), ranges)
    constraints = root / "build" / "colab-constraints.txt"
    constraints.parent.mkdir(exist_ok=True)
    constraints.write_text("\n".join(pins) + "\n")
    run([sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints), "-e", str(root)],
        check=True)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    os.chdir(root / "notebooks")
    from google.colab import output     # only on Colab: this script runs nowhere else
    output.enable_custom_widget_manager()
    print("workbench installed with", ", ".join(pins))
    return pins


if __name__ == "__main__":
    main()
