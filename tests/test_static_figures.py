"""Static fallbacks and figure export (issue 22): every stored figure and widget reads without a
kernel, as GitHub and nbviewer show a notebook; `widgets.export.save_figure` writes PNG, SVG and
PDF in a print theme."""
import base64
import io
import json
from pathlib import Path

import nbformat
import plotly.graph_objects as go
import pytest
from browser_util import chromium_path

from widgets import export

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
needs_chromium = pytest.mark.skipif(not chromium_path(), reason="needs a Chromium for kaleido")


def _pngs(nb):
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if export.PLOTLY in data or export.WIDGET in data:
                yield data


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem[:2])
def test_every_figure_and_widget_has_a_static_image(path):
    from PIL import Image
    assert export.static_report(path) == []
    nb = json.loads(path.read_text(encoding="utf-8"))
    for data in _pngs(nb):
        pic = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
        assert pic.format == "PNG" and pic.width >= 500 and pic.height >= 100, pic.size
        if export.PLOTLY in data:   # drawn at the figure's own height
            assert pic.height == data[export.PLOTLY].get("layout", {}).get("height", 500)


def test_a_github_style_render_shows_an_image_for_every_figure_and_widget():
    """nbconvert with the display priority of a static viewer (no plotly, no widget manager):
    each figure and widget output becomes an <img>."""
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab")
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        shown = sum(1 for _ in _pngs(nb))
        for cell in nb.cells:   # what a static viewer keeps of each rich output
            for out in cell.get("outputs", []):
                out.get("data", {}).pop(export.PLOTLY, None)
                out.get("data", {}).pop(export.WIDGET, None)
        body, _ = exporter.from_notebook_node(nb)
        assert body.count("data:image/png;base64,") >= shown, path.stem


def test_widget_parts_walks_the_saved_state_in_display_order():
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_html",
                                                                  "IPY_MODEL_fig"]}},
        "html": {"model_name": "HTMLModel", "state": {"value": "<b>note</b>"}},
        "fig": {"model_name": "AnyModel", "state": {"_widget_data": [{"type": "bar",
                                                                      "y": [1, 2]}],
                                                    "_widget_layout": {"height": 300}}}}
    assert export.widget_parts(state, "box") == [
        ("html", "<b>note</b>"), ("figure", {"data": [{"type": "bar", "y": [1, 2]}],
                                             "layout": {"height": 300}})]
    state["fig"]["state"]["_widget_data"][0]["y"] = {"dtype": "float64", "shape": [2]}
    with pytest.raises(ValueError, match="numpy array"):
        export.widget_parts(state, "box")


def test_save_figure_refuses_bad_arguments_by_name(tmp_path):
    fig = go.Figure(go.Bar(y=[1, 2]))
    with pytest.raises(ValueError, match="format"):
        export.save_figure(fig, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="theme"):
        export.save_figure(fig, tmp_path / "x.png", theme="neon")
    with pytest.raises(ValueError, match="scale"):
        export.render(fig, scale=0)


def test_print_version_is_white_with_dark_text_and_keeps_the_data():
    fig = go.Figure(go.Bar(y=[1, 2], marker_color="#0072B2"))
    fig.update_layout(paper_bgcolor="rgba(0,0,0,0)", title="t")
    out = export.print_version(fig)
    assert out.layout.paper_bgcolor == out.layout.plot_bgcolor == "white"
    assert out.layout.font.color == "#222222" and out.layout.title.text == "t"
    assert out.data[0].marker.color == "#0072B2" and fig.layout.paper_bgcolor == "rgba(0,0,0,0)"


@pytest.mark.tier
@needs_chromium
def test_save_figure_writes_png_svg_and_pdf(tmp_path):
    from PIL import Image
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 3]))
    fig.update_layout(height=300)
    with export.renderer():
        png = export.save_figure(fig, tmp_path / "f.png", width=400)
        svg = export.save_figure(fig, tmp_path / "f.svg")
        pdf = export.save_figure(fig, tmp_path / "f", format="pdf")
    assert Image.open(png).size == (800, 600)          # scale 2
    assert Image.open(png).getpixel((2, 2))[:3] == (255, 255, 255)   # print theme: white
    assert svg.read_text().lstrip().startswith("<svg") and pdf.read_bytes()[:5] == b"%PDF-"


@pytest.mark.tier
@needs_chromium
def test_add_static_images_renders_figures_and_stacks_a_widgets_figures():
    from PIL import Image
    fig = go.Figure(go.Bar(y=[1, 2])).update_layout(height=300)
    state = {"box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_a",
                                                                      "IPY_MODEL_b"]}},
             "a": {"model_name": "AnyModel", "state": {"_widget_data": [{"type": "bar",
                                                                         "y": [1]}],
                                                       "_widget_layout": {"height": 200}}},
             "b": {"model_name": "AnyModel", "state": {"_widget_data": [{"type": "bar",
                                                                         "y": [2]}],
                                                       "_widget_layout": {"height": 250}}},
             "h": {"model_name": "HTMLModel", "state": {"value": "<i>only text</i>"}}}
    nb = {"metadata": {"widgets": {export.STATE: {"state": state}}}, "cells": [{"outputs": [
        {"data": {export.PLOTLY: fig.to_plotly_json()}},
        {"data": {export.WIDGET: {"model_id": "box"}}},
        {"data": {export.WIDGET: {"model_id": "h"}}}]}]}
    with export.renderer():
        counts = export.add_static_images(nb)
    assert counts == {"figures": 1, "widgets": 1, "html": 1}
    outs = nb["cells"][0]["outputs"]
    sizes = [Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"]))).size
             for o in outs[:2]]
    assert sizes == [(700, 300), (700, 450)]           # the widget's two figures, stacked
    assert outs[2]["data"]["text/html"] == "<i>only text</i>"


@pytest.mark.tier
@needs_chromium
def test_export_figures_writes_each_stored_figure_and_an_index(tmp_path):
    from conftest import load_script
    script = load_script("export_figures")
    chapter = CHAPTERS[0]
    figs = script.stored_figures(chapter)
    script.main(["00", "--formats", "png", "svg", "--out", str(tmp_path)])
    files = sorted(p.name for p in (tmp_path / chapter.stem).iterdir())
    assert files == sorted(f"fig{k:02d}.{x}" for k in range(1, len(figs) + 1)
                           for x in ("png", "svg"))
    index = (tmp_path / "index.md").read_text().splitlines()
    assert len(index) == 2 + len(figs) and script.title_of(figs[0]) in index[2]
