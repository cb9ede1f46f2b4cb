"""Headless Chromium for the tests (Debian's ``chromium`` driven by Playwright).

``scripts/setup_browser.sh`` installs both.  Without them the browser tests skip locally and
fail under CI (``CI=true``), so a missing install step cannot pass unnoticed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium_path():
    return os.environ.get("WORKBENCH_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")


def require_browser():
    """Skip (fail under CI) unless Playwright and a Chromium executable are installed."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    if not chromium_path():
        missing.append("a chromium executable (Debian package `chromium`)")
    if missing:
        msg = f"no browser: missing {' and '.join(missing)}; run scripts/setup_browser.sh"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(msg)
        pytest.skip(msg)


@contextmanager
def browser_context(width=1280, height=900, color_scheme="light"):
    """A Playwright browser context in a fresh Chromium profile (deleted afterwards)."""
    from playwright.sync_api import sync_playwright
    profile = tempfile.mkdtemp(prefix="wb-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=FLAGS,
                viewport={"width": width, "height": height}, color_scheme=color_scheme)
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def refuse_network(ctx) -> list:
    """Refuse every request of ``ctx`` that is not a local file (or data/blob/about URL); the
    returned list collects the refused URLs."""
    outside = []

    def guard(route):
        if route.request.url.startswith(("file:", "data:", "blob:", "about:")):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()
    ctx.route("**/*", guard)
    return outside


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under build/screenshots/ and print its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
