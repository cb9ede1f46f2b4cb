"""Static HTML pages of the chapters (scripts/export_html.py): every plot there, no CDN.

Each chapter notebook (and the fixture tests/fixtures/sample.ipynb) is exported; the page must
hold one plot per stored plotly figure, plotly.js exactly once, and no script, stylesheet or
frame from outside the page.  A headless Chromium then opens every page with all network
requests blocked and counts the plots it actually drew.
"""
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from conftest import load_script
from browser_util import browser_context, refuse_network, require_browser, screenshot

pytestmark = pytest.mark.tier

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "fixtures" / "sample.ipynb"
export_html = load_script("export_html")

NOTEBOOKS = [SAMPLE] + export_html.chapters()


class _Refs(HTMLParser):
    """URLs a page loads: script src, stylesheet/icon href, frame/embed/img src."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "iframe", "embed", "img", "audio", "video", "source") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])


def external_refs(page: str) -> list:
    p = _Refs()
    p.feed(page)
    return [u for u in p.urls if u.startswith(("http:", "https:", "//", "ftp:"))]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """{notebook: exported page}; chapters go to build/html/, the fixture to a temp dir."""
    out = {}
    for nb in NOTEBOOKS:
        out[nb] = export_html.export(nb, tmp_path_factory.mktemp("html") if nb == SAMPLE
                                     else export_html.OUT)
    if len(NOTEBOOKS) > 1:
        export_html.write_index([out[nb] for nb in NOTEBOOKS[1:]])
    return out


def test_external_refs_are_found():
    page = ('<script src="https://cdn.example/x.js"></script><link rel="stylesheet" '
            'href="//cdn.example/a.css"><script>var s = "<script src=https://no>";</script>'
            '<img src="data:image/png;base64,AA">')
    assert external_refs(page) == ["https://cdn.example/x.js", "//cdn.example/a.css"]


def test_fixture_has_plots_and_widgets():
    nb = nbformat.read(SAMPLE, as_version=4)
    assert export_html.count_plots(nb) == 2
    assert sum(export_html.WIDGET in o.get("data", {}) for c in nb.cells
               for o in c.get("outputs", [])) == 2


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_page_has_every_plot_and_no_cdn(pages, nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    page = pages[nb_path].read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs
    assert page.count(get_plotlyjs()[:200]) == 1, "plotly.js must be inlined exactly once"
    assert page.count('class="plotly-graph-div"') == export_html.count_plots(nb)
    assert external_refs(page) == []
    assert "WBMATH" not in page, "an equation placeholder was left in the page"


def test_pages_draw_every_plot_offline(pages):
    """Chromium, with every non-file request refused, draws each page's plots."""
    require_browser()
    with browser_context() as ctx:
        outside = refuse_network(ctx)
        for nb_path, html_path in pages.items():
            expected = export_html.count_plots(nbformat.read(nb_path, as_version=4))
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html_path.as_uri(), wait_until="load", timeout=120_000)
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= "
                                   f"{expected}", timeout=60_000)
            drawn = page.locator(".js-plotly-plot .main-svg").count()
            assert page.locator(".js-plotly-plot").count() == expected, nb_path.name
            assert drawn >= expected, f"{nb_path.name}: {drawn} plot SVGs for {expected} plots"
            assert errors == [], f"{nb_path.name}: script errors {errors}"
            if nb_path != SAMPLE:
                screenshot(page, f"html_{nb_path.stem}")
            page.close()
        assert outside == [], f"pages tried to load {outside}"
