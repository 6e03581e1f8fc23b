"""The QC pages in a real browser: headless Chromium (Debian package) driven by Playwright.

Pages are served by ``http.server`` on 127.0.0.1. Checks: every image decodes
(``naturalWidth > 0``), the console shows no error and no script fails, the page requests
nothing but itself (self-contained), the index table sorts on a header click, and every link
resolves. Screenshots go to ``test_artifacts/report_browser/`` (gitignored) for a human to
look at.

Needs the ``chromium`` Debian package (``apt-get install -y chromium``) and ``playwright``
from PyPI. Playwright's own browser download (``playwright install``) is neither needed nor
used: the system Chromium is launched through ``executable_path``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmetoolkit.data.phantom import Lesion, PhantomConfig, make_phantom
from bmetoolkit.report import html as report_html
from tests.test_report_html import phantom_figures, phantom_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test_artifacts" / "report_browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SUBJECTS = {
    "sub-01": [
        Lesion("L4", "modic1/2", endplate="inferior", height_frac=0.4),
        Lesion("L1", "edema", height_frac=0.45, ap_width=0.5, lr_width=0.5),
    ],
    "sub-02": None,  # healthy
    "sub-03": [Lesion("L5", "modic1", endplate="superior", height_frac=0.25)],
}

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine: apt-get install -y chromium (Debian package)",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A batch output: three subject pages and the index, with one failure."""
    root = tmp_path_factory.mktemp("site")
    entries = []
    for seed, (subject, lesions) in enumerate(SUBJECTS.items(), start=21):
        study = make_phantom(seed=seed, lesions=lesions, config=PhantomConfig.small())
        report = phantom_report(study, notes=(f"phantom seed {seed}",))
        page = f"{subject}/qc.html"
        report_html.write_subject_page(
            root / page,
            report,
            subject=subject,
            figures=phantom_figures(study),
            index_href="../index.html",
        )
        entries.append({"subject": subject, "page": page, "report": report})
    failures = [{"subject": "sub-04", "stage": "pairing", "error": "no T1 <series> found"}]
    report_html.write_index_page(root / "index.html", entries, failures)
    return root


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class _Watched:
    """A page with its console errors, script errors and requested URLs recorded."""

    def __init__(self, browser, base_url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "response",
            lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
        )
        self.base_url = base_url

    def open(self, path: str):
        response = self.page.goto(f"{self.base_url}/{path}", wait_until="load")
        assert response is not None and response.ok, path
        return self.page

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        foreign = [u for u in self.requests if not u.startswith((self.base_url, "data:"))]
        assert foreign == [], foreign


@pytest.fixture
def watched(browser, base_url) -> Iterator[_Watched]:
    page = _Watched(browser, base_url)
    yield page
    page.page.close()


def test_subject_page_images_load_without_errors(watched):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = watched.open("sub-01/qc.html")
    sizes = page.evaluate(
        "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    assert len(sizes) == 2
    assert all(complete and width > 0 for _, complete, width in sizes), sizes
    assert "L4 inferior: Modic I/II" in page.inner_text("#summary")
    page.screenshot(path=str(ARTIFACTS / "subject_page.png"), full_page=True)
    page.click("text=all subjects")
    page.wait_for_load_state("load")
    assert page.url.endswith("/index.html")
    watched.assert_clean()


def _column(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#subjects tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent.trim())"
    )


def test_index_sorts_and_links_resolve(watched):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = watched.open("index.html")
    assert _column(page, 0) == list(SUBJECTS)
    page.click("#subjects th:has-text('BME volume')")
    ascending = [float(v) for v in _column(page, 2)]
    assert ascending == sorted(ascending) and ascending[0] == 0.0
    assert page.get_attribute("#subjects th:nth-child(3)", "aria-sort") == "ascending"
    page.click("#subjects th:has-text('BME volume')")
    descending = [float(v) for v in _column(page, 2)]
    assert descending == sorted(ascending, reverse=True)
    assert len(set(descending)) == 3  # the three subjects really differ, so the order is tested
    page.click("#subjects th:has-text('Subject')")
    assert _column(page, 0) == sorted(SUBJECTS)
    page.click("#subjects th:has-text('Subject')")
    assert _column(page, 0) == sorted(SUBJECTS, reverse=True)
    assert "sub-04" in page.inner_text("table.failures")
    page.screenshot(path=str(ARTIFACTS / "index_page.png"), full_page=True)
    hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.href)")
    assert len(hrefs) == len(SUBJECTS)
    for href in hrefs:
        response = page.goto(href, wait_until="load")
        assert response is not None and response.status == 200, href
        subject = href.rsplit("/", 2)[-2]
        assert page.inner_text("h1").startswith(subject)
        widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert widths and min(widths) > 0, (href, widths)
    watched.assert_clean()
