"""The "look inside" cells: `widgets.source` shows a package function's own source."""
import inspect

import pytest

from widgets.source import source_markdown
from workbench import decoding, meta


def test_source_markdown_is_the_functions_own_source_with_its_location():
    md = source_markdown(meta.majority_vote, decoding.greedy)
    assert "`workbench.meta.parallel.majority_vote` (workbench/meta/parallel.py, line " in md
    assert "(workbench/decoding.py, line " in md
    assert inspect.getsource(meta.majority_vote).rstrip() in md
    assert md.count("```python") == 2


def test_bad_objects_are_named():
    with pytest.raises(TypeError, match="objects"):
        source_markdown("majority_vote")
    with pytest.raises(ValueError, match="objects"):
        source_markdown()


def test_stored_look_inside_cells_show_the_current_source():
    """Every look-inside output stored in a chapter is what `source_markdown` renders from the
    package now (source and line): a function edited or moved by a change above it fails here,
    in seconds, naming the chapter to rebuild, before nbval finds it in the whole chapter."""
    import re
    from pathlib import Path

    import nbformat

    header = re.compile(r"^`([\w.]+)` \([\w/.]+, line \d+\)$", re.M)
    stale = []
    for path in sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or not cell.source.startswith("show_source("):
                continue
            stored = "".join(o.get("data", {}).get("text/markdown", "") for o in cell.outputs)
            for name in header.findall(stored):
                obj, parts = _module_of(name), name.split(".")
                for attr in parts[len(obj.__name__.split(".")):]:
                    obj = getattr(obj, attr)
                if source_markdown(obj) not in stored:
                    stale.append(f"{path.stem}: {name}")
    assert not stale, "rebuild these chapters (scripts/build_notebooks.py): " + ", ".join(stale)


def _module_of(dotted: str):
    """The longest importable module prefix of ``dotted`` (the rest are attributes)."""
    import importlib
    parts = dotted.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            return importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
    raise ImportError(dotted)
