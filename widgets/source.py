"""Look inside: the source of a package function, shown beside the equation it implements."""
from __future__ import annotations

import inspect
from pathlib import Path


def source_markdown(*objects) -> str:
    """Markdown with each object's location (``module.name``, file and line) and its source in a
    fenced ``python`` block, as `inspect` reads it from the installed package."""
    parts = []
    for obj in objects:
        target = inspect.unwrap(obj)
        if not (inspect.isfunction(target) or inspect.isclass(target) or inspect.ismethod(target)):
            raise TypeError(f"objects must be functions, methods or classes, got {obj!r}")
        lines, start = inspect.getsourcelines(target)
        path = Path(inspect.getsourcefile(target))
        roots = [i for i, part in enumerate(path.parts) if part in ("workbench", "widgets")]
        where = "/".join(path.parts[roots[-1]:]) if roots else path.name
        parts.append(f"`{target.__module__}.{target.__qualname__}` ({where}, line {start})\n\n"
                     f"```python\n{''.join(lines).rstrip()}\n```")
    if not parts:
        raise ValueError("objects: give at least one function or class to show")
    return "\n\n".join(parts)


def show_source(*objects):
    """Display the source of each function or class (a "look inside" cell): rendered Markdown with
    syntax highlighting in JupyterLab, Colab, exported HTML and on GitHub."""
    from IPython.display import Markdown, display
    display(Markdown(source_markdown(*objects)))
