"""Every stored chapter notebook is its source in notebooks/src, cell for cell, tags included
(a stale notebook, edited by hand or not rebuilt after its source changed, fails here); and the
cell-marker metadata of the sources parses as jupytext writes it."""
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
    def cells(nb_cells):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb_cells]
    assert cells(have) == cells(want)


SOURCE = """# %% [markdown]
# # Title

# %%
x = 1

# %% tags=["claim"]
assert x == 1

# %% tags=["solution"]
### BEGIN SOLUTION
y = 2
### END SOLUTION

# %% [markdown] tags=["solution", "other"]
# Your answer:
# <!-- BEGIN SOLUTION -->
# The teacher's.
# <!-- END SOLUTION -->
"""


def test_cell_markers_carry_tags():
    cells = load_script("build_notebooks").parse(SOURCE, "99_test")
    assert [(c.cell_type, c.metadata.get("tags")) for c in cells] == [
        ("markdown", None), ("code", None), ("code", ["claim"]), ("code", ["solution"]),
        ("markdown", ["solution", "other"])]
    assert cells[2].source == "assert x == 1"
    assert cells[4].source.startswith("Your answer:\n<!-- BEGIN SOLUTION -->")


@pytest.mark.parametrize("marker, error", [
    ('# %% tags=[claim]', "not JSON"),
    ('# %% claim', "key=JSON"),
    ('# %% tags="claim"', "list of strings"),
])
def test_bad_cell_markers_fail_with_the_line(marker, error):
    with pytest.raises(ValueError, match=error) as e:
        load_script("build_notebooks").parse("x = 0\n" + marker + "\ny = 1\n", "99_test")
    assert "99_test:2" in str(e.value)


@pytest.mark.parametrize("source, error", [
    ("# %%\n### BEGIN SOLUTION\ny = 1\n### END SOLUTION\n", "tagged"),
    ('# %% tags=["solution"]\ny = 1\n', "tagged"),
    ('# %% tags=["solution"]\n### BEGIN SOLUTION\ny = 1\n', "never closed"),
    ('# %% tags=["solution"]\ny = 1\n### END SOLUTION\n', "without"),
    ('# %% [markdown] tags=["solution"]\n# <!-- BEGIN SOLUTION -->\n# a\n', "never closed"),
])
def test_solution_regions_are_tagged_and_balanced(source, error):
    with pytest.raises(ValueError, match=error):
        load_script("build_notebooks").parse(source, "99_test")
