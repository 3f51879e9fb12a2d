"""The built site, opened in a real browser with the network cut off (`make browser-test`).

Serves ``_build/html`` on 127.0.0.1, opens every page in headless Chromium (Debian's
``chromium``, driven by Playwright from PyPI) with every non-local request aborted, and checks
what a reader on a train would see: math typeset, images loaded, no console error, the menu
opening at phone width, nothing wider than a phone's screen outside code and output boxes, no
figure shrunk so far that its 9-point labels fall below 9 px (``textbook_lm.plot``'s style), and
every internal link resolving. Screenshots of each page at 1280 and 390 px go to
``_build/screenshots`` (``SITE_SCREENSHOTS=0`` skips them).

The test runs when ``TEXTBOOK_LM_SITE`` names the built site (the Makefile sets it after
``make site``); otherwise, or without a browser, it skips and says how to get one.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

from textbook_lm import plot

SITE = os.environ.get("TEXTBOOK_LM_SITE")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(not SITE, reason="set TEXTBOOK_LM_SITE=_build/html after `make site` "
                                        "(or run `make browser-test`)"),
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `apt-get install chromium` (Debian) "
                                                "or set PATH to a chromium binary"),
]
PHONE, DESKTOP = 390, 1280


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.hrefs.append(a["src"])
        if tag == "link" and a.get("href") and "stylesheet" in (a.get("rel") or ""):
            self.hrefs.append(a["href"])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p


def _pages(root: Path) -> list[Path]:
    """Every page of the site, without redirects (the root index.html points to the intro)."""
    return sorted(p for p in root.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts
                  and 'http-equiv="Refresh"' not in p.read_text(encoding="utf-8", errors="replace")[:2000]
                  and 'http-equiv="refresh"' not in p.read_text(encoding="utf-8", errors="replace")[:2000])


@pytest.fixture(scope="module")
def site():
    root = Path(SITE).resolve()
    assert (root / "index.html").is_file(), f"{root} has no index.html: run `make site` first"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_every_internal_link_resolves(site):
    root, _ = site
    pages, broken, checked = _pages(root), [], 0
    for page in pages:
        for href in _parse(page).hrefs:
            url = urlparse(href)
            if url.scheme or href.startswith(("mailto:", "//", "javascript:")):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.is_file():
                broken.append(f"{page.relative_to(root)} -> {href}")
            elif url.fragment and target.suffix == ".html" and url.fragment not in _parse(target).ids:
                broken.append(f"{page.relative_to(root)} -> {href} (no such anchor)")
    print(f"{len(pages)} pages, {checked} internal links and resources")
    assert checked > 500 and not broken, broken[:20]


def _open(browser, base: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    outside, errors = [], []

    def route(r):
        if urlparse(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, outside, errors


_TYPESET = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const math = [...document.querySelectorAll('.math')];
  const raw = math.filter(e => !e.querySelector('mjx-container'));
  return [math.length, raw.length, raw.slice(0, 3).map(e => e.textContent.slice(0, 60))];
}"""
_IMAGES = """() => { const im = [...document.images];
  return [im.length, im.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)]; }"""
# Code cells whose lines are all <= 88 characters but that still scroll sideways.
_CODE_SCROLLS = """() => [...document.querySelectorAll('.cell_input pre')]
  .filter(p => Math.max(...p.innerText.split('\\n').map(l => l.length)) <= 88 && p.scrollWidth > p.clientWidth + 1)
  .map(p => p.innerText.split('\\n')[0].slice(0, 40))"""
# Figures (notebook outputs) the column shrinks so much that 9-point text drops below 9 px.
_SHRUNK = """(least) => [...document.querySelectorAll('.cell_output img')]
  .filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width / i.naturalWidth < least)
  .map(i => Math.round(100 * i.getBoundingClientRect().width / i.naturalWidth) + '% of '
            + i.naturalWidth + ' px')"""
# Elements that stick out to the right of a phone's screen, outside boxes that scroll by design.
_WIDE = """(w) => [...document.querySelectorAll('body *')].filter(e => {
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.right <= w + 1) return false;
  if (e.closest('pre, .highlight, .cell_output, .output, table, .MathJax, mjx-container, .math, '
                + '.bd-sidebar-primary, .bd-sidebar-secondary, .dropdown-menu, .search-button-field, '
                + '.pst-scrollable-table-container, .table-wrapper')) return false;
  for (let p = e.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (['auto', 'scroll', 'hidden'].includes(s.overflowX)) return false;
  }
  return true;
}).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def test_pages_in_a_browser_offline(site, browser):
    root, base = site
    shots = Path(os.environ.get("SITE_SCREENSHOTS_DIR", root.parent / "screenshots"))
    take = os.environ.get("SITE_SCREENSHOTS", "1") != "0"
    shots.mkdir(parents=True, exist_ok=True)
    totals = {"pages": 0, "math": 0, "images": 0}
    problems = []
    for path in _pages(root):
        rel = path.relative_to(root).as_posix()
        for width in (DESKTOP, PHONE):
            page, outside, errors = _open(browser, base, width)
            page.goto(base + rel, wait_until="load")
            n_math, n_raw, raw = page.evaluate(_TYPESET)
            n_img, broken = page.evaluate(_IMAGES)
            if width == DESKTOP:
                totals["pages"] += 1
                totals["math"] += n_math
                totals["images"] += n_img
            if n_raw:
                problems.append(f"{rel} @{width}: {n_raw} of {n_math} math elements not typeset, e.g. {raw}")
            if broken:
                problems.append(f"{rel} @{width}: images not loaded: {broken[:3]}")
            if errors:
                problems.append(f"{rel} @{width}: console errors: {errors[:3]}")
            if width == DESKTOP:
                shrunk = page.evaluate(_SHRUNK, plot.MIN_TEXT_PX / (9 * plot.DPI / 72))
                if shrunk:
                    problems.append(f"{rel}: figures shrunk below legibility: {shrunk[:4]}")
                scrolls = page.evaluate(_CODE_SCROLLS)
                if scrolls:
                    problems.append(f"{rel}: code of <= 88 characters a line scrolls sideways: {scrolls[:3]}")
            if width == PHONE:
                wide = page.evaluate(_WIDE, PHONE)
                doc = page.evaluate("() => document.documentElement.scrollWidth")
                if wide or doc > PHONE + 1:
                    problems.append(f"{rel} @{width}: page {doc} px wide; outside boxes: {wide}")
            if take:
                name = re.sub(r"[^\w.-]", "_", rel.removesuffix(".html"))
                page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=False)
            page.close()
    print(f"checked {totals['pages']} pages, {totals['math']} math elements, {totals['images']} images")
    assert totals["pages"] >= 10 and totals["math"] > 100
    assert not problems, "\n".join(problems[:30])


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_menu_opens(site, browser, width):
    root, base = site
    page, _, errors = _open(browser, base, width)
    page.goto(base + "book/01_ngrams.html", wait_until="load")
    sidebar = page.locator(".bd-sidebar-primary")
    link = sidebar.locator("a[href$='02_tokens.html']").first
    before = link.is_visible()
    if width == PHONE:
        assert not before                                  # the chapter list starts closed on a phone
    toggles = page.locator(".primary-toggle:visible")
    assert toggles.count() >= 1, "no visible menu button"
    toggles.first.click()
    page.wait_for_timeout(500)
    assert link.is_visible() != before, f"the menu button did not {'close' if before else 'open'} the chapter list"
    searches = page.locator("input[type=search]:visible, .search-button-field:visible")
    assert searches.count() <= 1, "more than one search bar"
    assert not errors, errors
    page.close()


@pytest.mark.parametrize("query, page_name", [("perplexity", "01_ngrams"), ("自注意力", "05_attention")])
def test_search_finds_pages_with_excerpts(site, browser, query, page_name):
    """Search, served as `make serve` serves it, finds English and Chinese terms and shows an
    excerpt of each hit (opened from file:// a browser blocks the excerpts)."""
    _, base = site
    page, _, errors = _open(browser, base, DESKTOP)
    page.goto(base + "search.html?q=" + query, wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=15000)
    page.wait_for_timeout(1500)                               # excerpts arrive one by one
    hits = page.locator("#search-results ul.search li")
    links = [hits.nth(i).locator("a").first.get_attribute("href") for i in range(hits.count())]
    assert any(page_name in (h or "") for h in links), (query, links)
    excerpts = page.locator("#search-results ul.search li p.context")
    assert excerpts.count() >= 1 and excerpts.first.inner_text().strip(), "hits without excerpts"
    assert not errors, errors
    page.close()
