"""Every page of both renders served on 127.0.0.1 (as a web server would publish them; Quarto's
module scripts do not load from file:// URLs) and opened in a real browser (headless Chromium, no
network): no
JavaScript error, no request that leaves the site (in either render: Quarto's CDN scripts are
stripped and its theme's web font switched off), every plotly figure drawn (its SVG in the DOM),
no table wider than the content column outside a scroll box, and no legend over an axis's
labels.

Needs Chromium, its WebDriver (Debian ``chromium``, ``chromium-driver``; ``make test`` installs
them when it can) and selenium; skips with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.pipeline.test_notebooks import FIGURES as PER_PAGE

from research.config import Paths

FIGURES = sum(PER_PAGE.values())
"""Figures of the site with the small parameters."""

PAGE_CHECK = r"""
const column = document.querySelector('main.content, .rl-body, main') || document.body;
const box = column.getBoundingClientRect();
const figures = [...document.querySelectorAll('.plotly-graph-div')];
const drawn = figures.filter(f => f.querySelector('svg.main-svg')).length;
const wide = [];
for (const table of document.querySelectorAll('table')) {
  const r = table.getBoundingClientRect();
  if (r.width === 0 || r.right <= box.right + 1) continue;
  let el = table, scrolls = false;
  while (el && el !== column) {
    const style = getComputedStyle(el);
    if ((style.overflowX === 'auto' || style.overflowX === 'scroll')
        && el.getBoundingClientRect().right <= box.right + 1) { scrolls = true; break; }
    el = el.parentElement;
  }
  if (!scrolls) wide.push((table.textContent || '').trim().slice(0, 60));
}
const overlaps = [];
const meet = (a, b) => Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left))
  * Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
for (const f of figures) {
  const legend = f.querySelector('g.legend');
  if (!legend) continue;
  const lb = legend.getBoundingClientRect();
  const labels = '.xtick text, .ytick text, .g-xtitle text, .g-ytitle text';
  for (const label of f.querySelectorAll(labels)) {
    if (meet(lb, label.getBoundingClientRect()) > 4) {
      overlaps.push((f.querySelector('.gtitle') || {}).textContent || f.id);
      break;
    }
  }
}
const external = performance.getEntriesByType('resource').map(e => e.name)
  .filter(n => n.startsWith('http'));
return JSON.stringify({figures: figures.length, drawn, wide, overlaps, external,
                       width: box.width});
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(
            "Chromium or chromedriver not found (Debian: apt-get install chromium "
            "chromium-driver; make test installs them when run as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1300,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _errors(driver: Any) -> list[str]:
    """Console errors, except the browser's own favicon request."""
    return [
        str(entry.get("message", ""))
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE" and "favicon.ico" not in str(entry.get("message", ""))
    ]


@contextlib.contextmanager
def served(site: Path) -> Iterator[str]:
    """``site`` on a local HTTP server (a thread); yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True  # the browser keeps connections open: never wait for them
        block_on_close = False

    handler = functools.partial(Quiet, directory=str(site))
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _open(driver: Any, url: str, expected: int) -> dict[str, Any]:
    """Load ``url`` and wait (up to 30 s) until its ``expected`` figures are in the DOM and
    drawn; returns the page check (the last one, if they never were)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    results: list[dict[str, Any]] = []

    def drawn(d: Any) -> bool:
        results.append(json.loads(d.execute_script(PAGE_CHECK)))
        return bool(results[-1]["figures"] == results[-1]["drawn"] == expected)

    try:
        WebDriverWait(driver, 30, poll_frequency=0.25).until(drawn)
    except TimeoutException:
        pass  # the assertions on the last check say what is missing
    return results[-1]


def _check_site(driver: Any, site: Path) -> int:
    pages = [*sorted(site.glob("*.html")), *sorted((site / "executed").glob("*.html"))]
    assert len(pages) >= 10 and site / "glossary.html" in pages
    figures = 0
    with served(site) as base:
        for page in pages:
            expected = page.read_text(encoding="utf-8").count('class="plotly-graph-div"')
            name = page.relative_to(site).as_posix()
            figures += _check_page(driver, base, name, expected)
    return figures


def _check_page(driver: Any, base: str, name: str, expected: int) -> int:
    """Open one page (``expected`` figures in its HTML) and check it; returns the figures drawn."""
    driver.get_log("browser")  # drop what earlier pages logged
    result = _open(driver, base + name, expected)
    assert _errors(driver) == [], name
    assert result["figures"] == result["drawn"] == expected, (name, result)
    assert result["wide"] == [], (name, result["width"])
    assert result["overlaps"] == [], name
    hosts = {u.split("/")[2] for u in result["external"]} - {base.split("/")[2]}
    assert hosts == set(), (name, hosts)
    return int(result["drawn"])


def test_fallback_pages_in_a_real_browser(browser: Any, rendered: Paths) -> None:
    assert _check_site(browser, rendered.site) == FIGURES


def test_quarto_pages_in_a_real_browser(browser: Any, quarto_site: Path) -> None:
    assert _check_site(browser, quarto_site) == FIGURES


def test_plotly_draws_when_require_js_has_defined_amd(browser: Any, tmp_path: Path) -> None:
    """A page that loads require.js (Quarto's do when rendered without the lab's renderer,
    which strips it): plotly.js must still become ``window.Plotly`` (simulated with a
    ``define`` that swallows modules)."""
    import plotly.graph_objects as go

    from research.plotting.site import SiteRenderer, plotly_js_file, plotly_script_tag

    (tmp_path / "assets").mkdir()
    shutil.copy(plotly_js_file(), tmp_path / "assets" / "plotly.min.js")
    figure = SiteRenderer().to_mimebundle(go.Figure(go.Scatter(y=[1, 3, 2])).to_dict())
    page = tmp_path / "page.html"
    page.write_text(
        "<!DOCTYPE html><html><body><main>"
        "<script>window.define = function () { window.swallowed = true; };"
        "window.define.amd = {};</script>"
        f"{plotly_script_tag(depth=0)}{figure['text/html']}</main></body></html>"
    )
    with served(tmp_path) as base:
        result = _open(browser, base + page.name, 1)
    assert result["figures"] == result["drawn"] == 1
    assert browser.execute_script("return window.swallowed === undefined")
    assert browser.execute_script("return typeof window.define") == "function"  # put back
