"""Every stored chapter notebook is its source in notebooks/src, cell for cell (a stale
notebook, edited by hand or not rebuilt after its source changed, fails here)."""
from pathlib import Path

import nbformat
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.py"))


def test_every_source_has_its_notebook_and_back():
    assert len(SOURCES) >= 14
    stored = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert stored == {p.stem for p in SOURCES}


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_cells_are_the_source_cells(src):
    want = load_script("build_notebooks").parse(src.read_text(), src.stem)
    have = nbformat.read(ROOT / "notebooks" / f"{src.stem}.ipynb", as_version=4).cells
    assert [(c.cell_type, c.source) for c in have] == [(c.cell_type, c.source) for c in want]
