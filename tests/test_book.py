"""The book site (issue 22): built by one command from the stored notebooks, it shows every
chapter with its equations, figures and widget images, searches, and loads nothing from the
network (headless Chromium with every non-file request refused)."""
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
from browser_util import browser_context, refuse_network, require_browser, screenshot
from conftest import load_script

pytestmark = pytest.mark.tier

book = load_script("build_book")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book") / "book"
    index = book.build(out)
    return out, index


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.loads = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.loads.append(a["src"])
        if tag == "link" and a.get("href"):
            self.loads.append(a["href"])


def _parse(path):
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_every_chapter_has_a_page_under_its_survey_part(site):
    out, index = site
    text = index.read_text(encoding="utf-8")
    for caption, prefixes in book.PARTS:
        assert caption.replace("&", "&amp;") in text, caption
    for path in book.chapters():
        assert (out / "chapters" / f"{path.stem}.html").is_file(), path.stem
        assert f'href="chapters/{path.stem}.html"' in text, path.stem


def test_pages_load_only_local_files_and_internal_links_resolve(site):
    out, _ = site
    pages = sorted(out.rglob("*.html"))
    assert len(pages) >= len(book.chapters()) + 2
    for page in pages:
        parsed = _parse(page)
        for src in parsed.loads:
            assert not re.match(r"(https?:)?//", src), f"{page.name} loads {src}"
        for href in parsed.links:
            url = urlparse(href)
            if url.scheme or href.startswith("#") or not url.path:
                continue   # external links in the prose are links, not loads; anchors
            target = (page.parent / unquote(url.path)).resolve()
            assert target.exists(), f"{page.relative_to(out)} links to missing {href}"


def test_the_site_renders_offline_equations_figures_and_search(site):
    require_browser()
    out, index = site
    with browser_context() as ctx:
        outside = refuse_network(ctx)
        for path in book.chapters():
            nb = nbformat.read(path, as_version=4)
            plots = sum(book.PLOTLY in o.get("data", {}) for c in nb.cells
                        for o in c.get("outputs", []))
            widgets = sum(book.WIDGET in o.get("data", {}) for c in nb.cells
                          for o in c.get("outputs", []))
            maths = sum(c.source.count("$$") // 2 for c in nb.cells if c.cell_type == "markdown")
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((out / "chapters" / f"{path.stem}.html").as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg')"
                                   f".length >= {plots}", timeout=60_000)
            if maths:
                page.wait_for_function("document.querySelectorAll('mjx-container').length > 0",
                                       timeout=60_000)
                assert page.locator("mjx-container[display='true']").count() >= maths, path.stem
            assert page.locator("img[alt='the widget in its initial state']").count() == widgets
            assert page.evaluate("Array.from(document.images).every(i => i.complete && "
                                 "i.naturalWidth > 0)"), f"{path.stem}: a broken image"
            assert errors == [], f"{path.stem}: script errors {errors}"
            if path.stem.startswith("07"):
                screenshot(page, "book_07_parallel_metageneration")
            page.close()
        page = ctx.new_page()
        page.goto(index.with_name("search.html").as_uri() + "?q=speculative")
        page.wait_for_function("document.querySelectorAll('#search-results li').length > 0",
                               timeout=60_000)
        hits = page.locator("#search-results li a").all_inner_texts()
        assert "speculative decoding" in hits[0].lower(), hits   # chapter 13 ranks first
        page.close()
        assert outside == [], f"requests left the machine: {outside[:5]}"


def test_prepare_turns_figures_into_views_and_widgets_into_images():
    path = Path(book.ROOT) / "tests" / "fixtures" / "sample.ipynb"
    nb = book.prepare(nbformat.read(path, as_version=4))
    datas = [o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])]
    assert not any(book.PLOTLY in d or book.WIDGET in d for d in datas)
    assert sum("Plotly.newPlot" in d.get("text/html", "") for d in datas) == 2
    assert sum(book.NOTE in d.get("text/html", "") for d in datas) == 2
    assert "widgets" not in nb.metadata
