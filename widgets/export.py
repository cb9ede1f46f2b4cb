"""Figures to keep: any figure the chapters draw as PNG, SVG or PDF, and static images of the
figures and widgets stored in a notebook (for GitHub, nbviewer, Colab before a run, exported
pages).

    from widgets.export import save_figure
    save_figure(fig, "beam.pdf")                    # print theme: white, dark text
    save_figure(fig, "beam.png", theme="as shown")  # the notebook's own look

Rendering goes through plotly's exporter, kaleido, which drives an installed Chromium (Debian's
``chromium``, or one fetched once with ``kaleido.get_chrome_sync()``); nothing is loaded from the
network while rendering.  ``pip install 'metagen-workbench[export]'`` installs it.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import re
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from .style import PALETTE

FORMATS = ("png", "svg", "pdf")
THEMES = ("print", "as shown")
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"

WEB_IMAGE = re.compile(r"!\[([^\]]*)\]\((?:https?:)?//[^)]*\)")  # badges: keep the alt text
_INK, _RULE = "#222222", "#d9d9d9"
pio.templates["workbench_print"] = go.layout.Template(layout=go.Layout(
    paper_bgcolor="white", plot_bgcolor="white", font=dict(color=_INK, size=13),
    colorway=PALETTE, legend=dict(bgcolor="rgba(255,255,255,0.8)"),
    xaxis=dict(gridcolor=_RULE, zerolinecolor=_RULE, linecolor="#888888"),
    yaxis=dict(gridcolor=_RULE, zerolinecolor=_RULE, linecolor="#888888")))


def _kaleido():
    try:
        import kaleido
    except ImportError:
        raise ImportError("saving figures needs kaleido: pip install 'metagen-workbench[export]' "
                          "(it drives an installed Chromium)") from None
    return kaleido


def print_version(fig) -> go.Figure:
    """A copy of ``fig`` for paper and projectors: white background, dark text, the same
    colours (the notebook's transparent background and mid-grey text wash out in print)."""
    out = go.Figure(fig)
    out.update_layout(template="plotly_white+workbench_print", paper_bgcolor="white",
                      plot_bgcolor="white", font_color=_INK)
    return out


def render(fig, format: str = "png", width: int | None = None, height: int | None = None,
           scale: float = 1.0) -> bytes:
    """The image of ``fig`` (a figure or its dict) as bytes; width and height default to the
    figure's own (else plotly's 700 x 500)."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    d = go.Figure(fig).to_dict()
    layout = d.get("layout", {})
    opts = dict(format=format, width=width or layout.get("width") or 700,
                height=height or layout.get("height") or 500, scale=scale)
    return _kaleido().calc_fig_sync(d, opts=opts)


def save_figure(fig, path, format: str | None = None, width: int | None = None,
                height: int | None = None, scale: float = 2.0, theme: str = "print") -> Path:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF (``format``, else the path's suffix).

    ``theme="print"`` (default) uses `print_version`; ``"as shown"`` keeps the notebook's
    look.  ``scale`` multiplies the pixels of a PNG (2: sharp on slides)."""
    path = Path(path)
    format = format or path.suffix.lstrip(".").lower()
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} (or the path's suffix), got "
                         f"{format!r}")
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {THEMES}, got {theme!r}")
    fig = print_version(fig) if theme == "print" else go.Figure(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render(fig, format, width, height, scale))
    return path


@contextlib.contextmanager
def renderer():
    """Keep one Chromium running for many renders (about 1 s each instead of 5)."""
    k = _kaleido()
    k.start_sync_server(silence_warnings=True)
    try:
        yield
    finally:
        k.stop_sync_server(silence_warnings=True)


# -- static images in stored notebooks ------------------------------------------------------

def without_web_images(markdown: str) -> str:
    """Markdown with images from the web (the Colab and Binder badges) replaced by their alt
    text, so a static page loads nothing from outside."""
    return WEB_IMAGE.sub(lambda m: m.group(1) or "image", markdown)


def widget_still(data: dict) -> str:
    """An ``<img>`` of a widget output's static image (its initial state), or "" if the build
    made none."""
    if "image/png" not in data:
        return ""
    return (f'<img alt="the widget in its initial state" src="data:image/png;base64,'
            f'{data["image/png"]}"><br>')


def plotly_view(fig: dict, div_id: str, height: str = "450px") -> str:
    """A stored plotly figure as an HTML view (a ``Plotly.newPlot`` call); the page must load
    plotly.js once itself."""
    fig = dict(fig)
    return pio.to_html(fig, config=fig.pop("config", None), include_plotlyjs=False,
                       full_html=False, div_id=div_id, validate=False, default_height=height)


def widget_parts(state: dict, model_id: str) -> list:
    """The figures (plotly FigureWidgets, as dicts) and HTML texts a saved widget shows, in
    display order, found by walking its children in the notebook's saved widget state."""
    parts, todo, seen = [], [model_id], set()
    while todo:
        mid = todo.pop(0)
        if mid in seen or mid not in state:
            continue
        seen.add(mid)
        s = state[mid].get("state", {})
        if "_widget_data" in s and "_widget_layout" in s:
            fig = {"data": s["_widget_data"], "layout": s["_widget_layout"]}
            if '"dtype"' in json.dumps(fig):   # a numpy array went out as a binary buffer
                raise ValueError(f"widget {model_id}: a FigureWidget holds a numpy array, whose "
                                 "binary buffer the saved widget state drops; give it lists")
            parts.append(("figure", fig))
        elif state[mid].get("model_name") == "HTMLModel" and s.get("value"):
            parts.append(("html", s["value"]))
        kids = [c[len("IPY_MODEL_"):] for c in s.get("children", []) if isinstance(c, str)]
        todo[:0] = kids
    return parts


def stack_png(images: list) -> bytes:
    """PNG images one above the other (transparent where they are), as one PNG."""
    from PIL import Image
    pics = [Image.open(io.BytesIO(b)).convert("RGBA") for b in images]
    out = Image.new("RGBA", (max(p.width for p in pics), sum(p.height for p in pics)))
    y = 0
    for p in pics:
        out.alpha_composite(p, (0, y))
        y += p.height
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()


def compact_png(png: bytes) -> bytes:
    """The same picture with at most 256 colours (alpha kept): a quarter of the bytes for
    these flat-coloured charts, which keeps the stored notebooks small."""
    from PIL import Image
    pic = Image.open(io.BytesIO(png)).convert("RGBA")
    buf = io.BytesIO()
    pic.quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def add_static_images(nb) -> dict:
    """Give every stored plotly figure and every widget that shows figures an ``image/png`` of
    what it shows (a widget: its figures' initial state, stacked), so the notebook reads
    without a kernel.  A widget that shows only HTML gets that HTML as ``text/html``.  Returns
    counts ``{"figures", "widgets", "html"}``.  Call inside `renderer()` for speed."""
    state = nb.get("metadata", {}).get("widgets", {}).get(STATE, {}).get("state", {})
    counts = {"figures": 0, "widgets": 0, "html": 0}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY in data:
                data["image/png"] = _b64(compact_png(render(data[PLOTLY])))
                counts["figures"] += 1
            elif WIDGET in data:
                parts = widget_parts(state, data[WIDGET]["model_id"])
                figs = [p for kind, p in parts if kind == "figure"]
                if figs:
                    data["image/png"] = _b64(compact_png(stack_png([render(f) for f in figs])))
                    counts["widgets"] += 1
                elif parts:
                    data["text/html"] = "\n".join(p for _, p in parts)
                    counts["html"] += 1
    return counts


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def static_report(path) -> list:
    """Outputs of a stored notebook that would show nothing without a kernel: a figure or a
    widget with no ``image/png`` or ``text/html`` beside it.  Empty when it reads statically."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if (PLOTLY in data or WIDGET in data) and not (
                    "image/png" in data or "text/html" in data):
                missing.append(f"cell {i}: {'figure' if PLOTLY in data else 'widget'}")
    return missing
