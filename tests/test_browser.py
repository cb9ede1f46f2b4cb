"""Every chapter in a real browser: JupyterLab on loopback, headless Chromium, "Run All".

For each notebook (the fixture tests/fixtures/sample.ipynb first, then notebooks/NN_*.ipynb, one
at a time, each in a fresh kernel) the test clears the stored outputs, restarts the kernel and
runs all cells, waits for the run to end, and then checks cell by cell that the browser drew as
many plotly figures and widget views as the stored notebook holds, with no error output and no
"Error displaying widget".  A screenshot of each notebook goes to build/screenshots/; the fixture
and the first chapter are also shown in the dark theme.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from browser_util import ROOT, browser_context, require_browser, screenshot
from serve_util import free_port, stop

PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
SAMPLE = ROOT / "tests" / "fixtures" / "sample.ipynb"
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# seconds per notebook; a chapter runs in 30-90 s alone, slower beside the other test worker
RUN_LIMIT = float(os.environ.get("WORKBENCH_BROWSER_RUN_LIMIT", "300"))
SETTINGS = {  # no news or update checks, no autosave, every cell in the DOM, light theme
    "docmanager-extension/plugin": {"autosave": False},
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "notebook-extension/tracker": {"windowingMode": "none"},
    "apputils-extension/themes": {"theme": "JupyterLab Light"},
}
WIDGET_ERRORS = ("Error displaying widget", "Error loading widget", "Error rendering")

pytestmark = [pytest.mark.slow, pytest.mark.tier]


# -- what the stored notebook says the browser must draw -----------------------------------

def _figure_widgets(state, model_id, seen=None) -> int:
    """Plots drawn inside a widget: FigureWidgets among its children (``IPY_MODEL_<id>``
    references), and plotly outputs captured by an ``Output`` widget."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in state:
        return 0
    seen.add(model_id)
    s = state[model_id].get("state", {})
    n = int(s.get("_anywidget_id", "").endswith("FigureWidget"))
    refs = re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(s.get("children", [])))
    for o in s.get("outputs", []) if isinstance(s.get("outputs"), list) else []:
        data = o.get("data", {}) if isinstance(o, dict) else {}
        n += PLOTLY in data
        refs += [data[WIDGET]["model_id"]] if WIDGET in data else []
    return n + sum(_figure_widgets(state, r, seen) for r in refs)


def expected(nb) -> list:
    """Per cell: (has source, plots, widget views, plots known exactly)."""
    state = (nb.metadata.get("widgets", {})
             .get("application/vnd.jupyter.widget-state+json", {}).get("state"))
    rows = []
    for c in nb.cells:
        outs = c.get("outputs", []) if c.cell_type == "code" else []
        plots = sum(PLOTLY in o.get("data", {}) for o in outs)
        views = [o["data"][WIDGET]["model_id"] for o in outs if WIDGET in o.get("data", {})]
        if state is not None:
            plots += sum(_figure_widgets(state, m) for m in views)
        rows.append((c.cell_type == "code" and bool(c.source.strip()), plots, len(views),
                     state is not None or not views))
    return rows


# -- JupyterLab ----------------------------------------------------------------------------

def _api(base, path, method="GET", body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def lab():
    """JupyterLab on 127.0.0.1 (no token: loopback only), its settings and checkpoints in a
    temp dir; autosave is off, so the notebooks on disk are never rewritten."""
    require_browser()
    tmp = Path(tempfile.mkdtemp(prefix="wb-lab-"))
    for name, value in SETTINGS.items():
        f = tmp / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTER_CONFIG_DIR=str(tmp / "config"),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    port = free_port()
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--IdentityProvider.token=", "--ServerApp.password=",
         "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={ROOT}",
         "--LabApp.news_url=None", f"--FileCheckpoints.checkpoint_dir={tmp / 'checkpoints'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited ({proc.returncode}): "
                            f"{(tmp / 'lab.log').read_text()[-2000:]}")
            try:
                _api(base, "/api/status")
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("JupyterLab did not answer within 180 s")
                time.sleep(1)
        print(f"JupyterLab at {base} (log {tmp / 'lab.log'})")
        yield base
    finally:
        stop(proc, 90)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    with browser_context() as ctx:
        yield ctx


def set_theme(page, theme):
    """Switch the JupyterLab theme from the Settings menu (the outputs stay)."""
    page.click(".lm-MenuBar-itemLabel:text-is('Settings')")
    page.click(".lm-Menu-itemLabel:text-is('Theme')")
    page.click(f".lm-Menu-itemLabel:text-is('{theme}')")
    page.wait_for_function(f"document.body.dataset.jpThemeName === '{theme}'", timeout=30_000)
    page.wait_for_timeout(1500)


def _wait_idle(page, timeout=180_000):
    """Wait until the status bar shows the notebook's kernel idle."""
    page.wait_for_function("() => (document.querySelector('#jp-main-statusbar') || {innerText: ''})"
                           ".innerText.includes('| Idle')", timeout=timeout)


def _menu(page, top, item):
    page.click(f".lm-MenuBar-itemLabel:text-is('{top}')")
    page.click(f".lm-Menu-itemLabel:text-is('{item}')")


# per DOM cell: prompt, plots, drawn plots (with an SVG), widget views, error outputs, text
_CELLS_JS = """() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell'))
  .map(c => {
    const outs = Array.from(c.querySelectorAll('.jp-OutputArea-output'));
    const isErr = o => o.dataset.mimeType === 'application/vnd.jupyter.stderr' &&
                       /Traceback \\(most recent call last\\)|^\\w*(Error|Exception)\\b/m.test(o.innerText);
    const prompt = c.querySelector('.jp-InputArea-prompt');
    return {prompt: prompt ? prompt.innerText.trim() : '',
            plots: c.querySelectorAll('.jp-OutputArea .js-plotly-plot').length,
            drawn: c.querySelectorAll('.jp-OutputArea .js-plotly-plot .main-svg').length,
            views: outs.filter(o => o.classList.contains('lm-Panel') && o.children.length).length,
            errors: outs.filter(isErr).map(o => o.innerText.slice(-300)),
            text: outs.map(o => o.innerText).join('\\n')};
  })"""


def run_in_lab(lab, page, path: Path) -> tuple:
    """Open ``path`` in JupyterLab, restart the kernel and run all cells; return
    (seconds, per-cell DOM facts) once every cell ran or the run stopped."""
    rel = path.relative_to(ROOT).as_posix()
    page.goto(f"{lab}/lab/tree/{rel}?reset", timeout=120_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)
    _wait_idle(page)
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _menu(page, "Kernel", "Restart Kernel…")
    page.click(".jp-Dialog .jp-mod-accept", timeout=30_000)
    page.wait_for_timeout(1000)
    _wait_idle(page)
    _menu(page, "Run", "Run All Cells")
    t0, quiet = time.time(), 0
    while True:
        page.wait_for_timeout(1000)
        cells = page.evaluate(_CELLS_JS)
        running = any(c["prompt"] == "[*]:" for c in cells)
        ran = sum(bool(re.match(r"\[\d+\]:", c["prompt"])) for c in cells)
        quiet = 0 if running else quiet + 1
        # done: nothing queued for 3 s after something ran (Run All stops at an error)
        if ran and quiet >= 3:
            break
        if not ran and quiet == 30:  # the run request was lost: ask again
            _menu(page, "Run", "Run All Cells")
        if time.time() - t0 > RUN_LIMIT:
            screenshot(page, f"timeout_{path.stem}")
            break
    seconds = time.time() - t0
    page.wait_for_timeout(1500)  # let the last figures draw
    return seconds, page.evaluate(_CELLS_JS)


def problems(nb, cells) -> list:
    """What differs between the stored notebook and what the browser shows."""
    rows = expected(nb)
    if len(rows) != len(cells):
        return [f"the page shows {len(cells)} cells, the notebook has {len(rows)}"]
    out = []
    for i, ((code, plots, views, exact), c) in enumerate(zip(rows, cells)):
        where = f"cell {i}"
        if code and not re.match(r"\[\d+\]:", c["prompt"]):
            out.append(f"{where} did not run (prompt {c['prompt']!r})")
        out += [f"{where} error output: {e}" for e in c["errors"]]
        out += [f"{where}: {m!r}" for m in WIDGET_ERRORS if m in c["text"]]
        if (c["plots"] != plots) if exact else (c["plots"] < plots):
            out.append(f"{where}: {c['plots']} plotly figures in the page, {plots} stored")
        if c["drawn"] < c["plots"]:
            out.append(f"{where}: {c['plots'] - c['drawn']} plotly figures were not drawn")
        if c["views"] != views:
            out.append(f"{where}: {c['views']} widget views in the page, {views} stored")
    return out


def full_screenshot(page, name):
    """Grow the viewport to the notebook's height so one screenshot holds every cell."""
    h = page.evaluate("() => { const s = document.querySelector('.jp-NotebookPanel "
                      ".jp-WindowedPanel-outer'); return s ? s.scrollHeight : 900 }")
    page.set_viewport_size({"width": 1280, "height": int(min(max(h + 200, 900), 16000))})
    page.wait_for_timeout(1000)
    path = screenshot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})
    return path


def slider_round_trip(page) -> list:
    """In the fixture, moving the slider must redraw the FigureWidget through the kernel."""
    cell = "document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[3]"
    ys = f"() => Array.from({cell}.querySelector('.js-plotly-plot').data[0].y)"
    before = page.evaluate(ys)
    page.locator(".jp-Cell").nth(3).locator(".noUi-handle").press("ArrowRight")
    try:
        page.wait_for_function(f"() => {cell}.querySelector('.js-plotly-plot').data[0].y[4]"
                               " === 64", timeout=30_000)
    except Exception:
        return [f"the slider did not redraw the FigureWidget: y = {page.evaluate(ys)}"
                f" (before {before}, expected [0, 1, 8, 27, 64])"]
    return [] if before == [0, 1, 4, 9, 16] else [f"FigureWidget started at y = {before}"]


def _shutdown_kernels(lab):
    for s in _api(lab, "/api/sessions") or []:
        _api(lab, f"/api/sessions/{s['id']}", "DELETE")


def check_notebook(lab, browser, path: Path, dark: bool):
    nb, stored = nbformat.read(path, as_version=4), path.read_bytes()
    page = browser.new_page()
    try:
        seconds, cells = run_in_lab(lab, page, path)
        found = problems(nb, cells) + (slider_round_trip(page) if path == SAMPLE else [])
        shot = full_screenshot(page, path.stem)
        if dark:
            set_theme(page, "JupyterLab Dark")
            full_screenshot(page, f"{path.stem}_dark")
            dark_cells = page.evaluate(_CELLS_JS)
            set_theme(page, "JupyterLab Light")
            found += [f"dark theme: {p}" for p in problems(nb, dark_cells)]
    finally:
        page.close()
        _shutdown_kernels(lab)
    print(f"{path.name}: ran in {seconds:.0f} s, {sum(c['plots'] for c in cells)} plots, "
          f"{sum(c['views'] for c in cells)} widget views; {shot}")
    assert not found, f"{path.name} in the browser:\n" + "\n".join(found)
    assert path.read_bytes() == stored, f"JupyterLab rewrote {path}"
    assert seconds <= RUN_LIMIT, f"{path.name} took {seconds:.0f} s (limit {RUN_LIMIT:.0f} s)"


# -- the tests -----------------------------------------------------------------------------

def test_fixture_expectations():
    rows = expected(nbformat.read(SAMPLE, as_version=4))
    assert [r[1:3] for r in rows if r[0]] == [(1, 0), (1, 0), (1, 1), (0, 1), (0, 0)]


def test_checker_catches_failures(lab, browser, tmp_path):
    """A notebook with a broken widget and an exception must be reported, not pass."""
    bad = ROOT / "build" / "browser" / "failing.ipynb"
    bad.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "from IPython.display import display\n"
        f"display({{'{WIDGET}': {{'model_id': 'no-such-model', 'version_major': 2, "
        "'version_minor': 0}}, raw=True)"),
        nbformat.v4.new_code_cell("1 / 0"), nbformat.v4.new_code_cell("print('never')")]
    nbformat.write(nb, bad)
    page = browser.new_page()
    try:
        _, cells = run_in_lab(lab, page, bad)
    finally:
        page.close()
        _shutdown_kernels(lab)
    found = "\n".join(problems(nb, cells))
    assert "cell 0: 'Error displaying widget'" in found
    assert "cell 1 error output" in found and "ZeroDivisionError" in found
    assert "cell 2 did not run" in found


@pytest.mark.parametrize("path", [SAMPLE] + CHAPTERS, ids=lambda p: p.stem)
def test_notebook_renders(lab, browser, path):
    check_notebook(lab, browser, path, dark=path in (SAMPLE, CHAPTERS[0] if CHAPTERS else None))


def test_a_chapter_presents_as_slides(lab, browser):
    """Presenter's mode: RISE (jupyterlab-rise) opens chapter 07 as reveal.js slides, one per
    ``##`` heading, the claim cells skipped; the arrow key moves to the next slide."""
    path = ROOT / "notebooks" / "07_parallel_metageneration.ipynb"
    nb = nbformat.read(path, as_version=4)
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert kinds[0] == "slide" and kinds.count("slide") >= 10
    assert all(k == "skip" for c, k in zip(nb.cells, kinds) if "claim" in c.metadata.get("tags", []))
    page = browser.new_page()
    page.goto(f"{lab}/rise/notebooks/{path.name}", wait_until="load", timeout=120_000)
    page.wait_for_function("document.querySelectorAll('.reveal .slides > section').length > 0",
                           timeout=120_000)
    slides = page.locator(".reveal .slides > section").count()
    assert slides == kinds.count("slide"), (slides, kinds.count("slide"))
    first = page.locator(".reveal .slides > section.present").inner_text(timeout=30_000)
    assert "Parallel meta-generation" in first
    page.locator(".reveal").click(position={"x": 5, "y": 5})   # keyboard focus on the deck
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('.reveal .slides > section.present') !== "
                           "document.querySelector('.reveal .slides > section')", timeout=30_000)
    second = page.locator(".reveal .slides > section.present").inner_text(timeout=30_000)
    assert second != first and "Generators are values" in second
    screenshot(page, "slides_07_parallel_metageneration")
    page.close()
