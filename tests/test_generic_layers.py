"""The generic layers know no world: nothing in `meta`, `scoring`, `prompts`, `tools`,
`decoding`, `degeneration`, `efficiency` or `reward_models` imports `workbench.tinyworld`, at module level or inside a function,
and importing them does not load it.  TinyWorld is reached only through the task seam
(`workbench.tasks`) and the chapters."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "workbench"
GENERIC = ["meta", "scoring.py", "prompts.py", "tools", "decoding.py", "degeneration.py",
           "efficiency",
           "reward_models",
           "tasks/base.py", "tasks/__init__.py", "tasks/gsm8k.py", "tasks/competition.py",
           "tasks/code.py"]


def _files():
    for name in GENERIC:
        path = PKG / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def imported(path: Path, root: Path = ROOT) -> set:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    parts = path.relative_to(root).with_suffix("").parts
    package = parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def test_the_check_sees_relative_and_function_level_imports(tmp_path):
    fake = tmp_path / "workbench" / "meta" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("import os\n\ndef f():\n    from ..tinyworld import arithmetic\n"
                    "    from .. import tinyworld\n    from .base import generate\n")
    names = imported(fake, tmp_path)
    assert {"workbench.tinyworld.arithmetic", "workbench.tinyworld",
            "workbench.meta.base.generate", "os"} <= names


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.relative_to(PKG)))
def test_generic_module_imports_no_tinyworld(path):
    bad = sorted(n for n in imported(path) if n == "workbench.tinyworld"
                 or n.startswith("workbench.tinyworld."))
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_the_generic_layers_loads_no_tinyworld():
    code = ("import sys; import workbench.meta, workbench.scoring, workbench.prompts, "
            "workbench.tools, workbench.decoding, workbench.efficiency, workbench.tasks, "
            "workbench.reward_models; "
            "from workbench import tasks; tasks.load('gsm8k', source='local'); "
            "print(sorted(m for m in sys.modules if m.startswith('workbench.tinyworld')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert out.stdout.strip() == "[]", out.stdout


def test_no_module_imports_itself_back():
    """No import cycle between the package's modules, counting imports inside functions (a
    package's ``__init__`` re-exports aside): e.g. constraints.generate -> healing, never back."""
    name = lambda p: ".".join(p.relative_to(ROOT).with_suffix("").parts)  # noqa: E731
    mods = {name(p): p for p in PKG.rglob("*.py") if p.name != "__init__.py"}
    graph = {m: {n for n in imported(p) if n in mods and n != m} for m, p in mods.items()}
    done, cycles = set(), []

    def visit(m, path):
        for n in graph[m]:
            if n in path:
                cycles.append(path[path.index(n):] + [n])
            elif n not in done:
                visit(n, path + [n])
        done.add(m)

    for m in sorted(graph):
        if m not in done:
            visit(m, [m])
    assert cycles == []
