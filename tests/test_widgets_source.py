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
