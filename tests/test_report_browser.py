"""The QC pages in a real browser: headless Chromium (Debian package) driven by Playwright.

The pages are those of a real batch (``run_batch(..., qc=True)``) over three small phantoms
and one subject that cannot be paired, and the QC page of a comparison of two visits, served
by ``http.server`` on 127.0.0.1. Checks: every image decodes (``naturalWidth > 0``), the
console shows no error and no script fails, the pages request nothing from elsewhere, every
table stays inside the page at 1000 px and at 400 px wide (a wide table scrolls in its own
box, the page never sideways), the index's counts are those of ``subjects.csv``, the index
table sorts on a header click, and every link resolves. Screenshots go to
``test_artifacts/report_browser/`` (gitignored) for a human to look at.

Needs the ``chromium`` Debian package (``apt-get install -y chromium``) and ``playwright``
from PyPI. Playwright's own browser download (``playwright install``) is neither needed nor
used: the system Chromium is launched through ``executable_path``.
"""

from __future__ import annotations

import csv
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmetoolkit import analyze
from bmetoolkit.batch.pipeline import run_batch
from bmetoolkit.data.phantom import Lesion, PhantomConfig, make_phantom
from bmetoolkit.data.phantom.followup import make_phantom_pair
from bmetoolkit.followup.compare import compare

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
#: Subjects of the batch (folder names; the batch names them ``sub-<folder>``).
SUBJECTS = {
    "01": [
        Lesion("L4", "modic1", endplate="inferior", height_frac=0.5, ap_width=0.9),
        Lesion("L1", "edema", height_frac=0.45, ap_width=0.5, lr_width=0.5),
    ],
    "02": "modic2",
    "03": [Lesion("L5", "modic1", endplate="superior", height_frac=0.25)],
}
KEYS = [f"sub-{name}" for name in SUBJECTS]
#: Window widths (CSS px) at which no table may leave the page: a laptop and a phone.
WIDTHS = (1000, 400)

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium on this machine: apt-get install -y chromium (Debian package)",
    ),
    pytest.mark.slow,  # a real batch and a browser: `make test`, not test-fast
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A batch output with QC pages: three analysed subjects and one failure."""
    cohort = tmp_path_factory.mktemp("cohort")
    for seed, (subject, lesions) in enumerate(SUBJECTS.items(), start=21):
        study = make_phantom(seed=seed, lesions=lesions, config=PhantomConfig.small())
        study.write_nifti(cohort / subject)
    (cohort / "04").mkdir()  # a T1 alone: cannot be paired
    shutil.copy(cohort / "01" / "t1.nii.gz", cohort / "04" / "t1.nii.gz")
    root = tmp_path_factory.mktemp("site")
    report = run_batch(cohort, root, jobs=1, qc=True, progress=False)
    assert [o.status for o in report.outcomes] == ["ok", "ok", "ok", "failed"]
    pair = make_phantom_pair(31, kind="random", small=True)
    visits = [
        analyze(visit.t1, stir=visit.stir, vertebrae=visit.truth.vertebrae)
        for visit in (pair.baseline, pair.followup)
    ]
    compare(*visits, out=root / "pair")  # the QC page of a comparison: pair/pair_qc.html
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


#: The QC page of a comparison of two visits, in the site.
PAIR_PAGE = "pair/pair_qc.html"


def _page_of(key: str) -> str:
    return f"{key}/anat/{key}_qc.html"


def test_subject_page_images_load_without_errors(watched):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = watched.open(_page_of("sub-01"))
    sizes = page.evaluate(
        "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    assert len(sizes) == 6  # T1 and STIR of three slices
    assert all(complete and width > 0 for _, complete, width in sizes), sizes
    assert "Modic" in page.inner_text("#summary")
    assert "L4" in page.inner_text("#findings-at")
    page.screenshot(path=str(ARTIFACTS / "subject_page.png"), full_page=True)
    watched.assert_clean()


#: Right edge of every table's own box and of the page, and the window width; every
#: <details> is opened first, so the folded tables are measured too.
_WIDTHS_SCRIPT = """() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  const boxes = Array.from(document.querySelectorAll("table")).map(t => {
    const box = t.closest(".table-wrap") || t;
    return [t.className || t.id || "table", box.getBoundingClientRect().right];
  });
  return {boxes: boxes, page: document.documentElement.scrollWidth, window: window.innerWidth};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", ["index.html", _page_of("sub-01"), PAIR_PAGE])
def test_every_table_stays_inside_the_page(watched, path: str, width: int):
    watched.page.set_viewport_size({"width": width, "height": 900})
    page = watched.open(path)
    measured = page.evaluate(_WIDTHS_SCRIPT)
    assert measured["window"] == width
    assert measured["page"] <= width, measured  # the page never scrolls sideways
    assert len(measured["boxes"]) >= 2
    outside = [(name, right) for name, right in measured["boxes"] if right > width + 0.5]
    assert outside == [], outside
    name = {"index.html": "index", PAIR_PAGE: "pair_page"}.get(path, "subject_page")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}_{width}px.png"), full_page=True)
    watched.assert_clean()


def _column(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#subjects tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent.trim())"
    )


def _headers(page) -> list[str]:
    return page.eval_on_selector_all("#subjects th", "hs => hs.map(h => h.textContent.trim())")


def test_index_counts_are_those_of_subjects_csv(watched, site: Path):
    page = watched.open("index.html")
    headers = _headers(page)
    with open(site / "subjects.csv", newline="") as handle:
        rows = {f"sub-{r['subject']}": r for r in csv.DictReader(handle) if r["status"] == "ok"}
    assert _column(page, 0) == KEYS == sorted(rows)
    columns = {
        "Lesions": "n_lesions",
        "Modic I": "modic_I",
        "Modic II": "modic_II",
        "Modic III": "modic_III",
        "Mixed Modic": "modic_mixed",
    }
    for header, column in columns.items():
        shown = _column(page, headers.index(header))
        assert shown == [rows[key][column] for key in KEYS], header
    volumes = _column(page, headers.index("BME volume (mL)"))
    for key, volume in zip(KEYS, volumes, strict=True):
        assert float(volume) == pytest.approx(float(rows[key]["bme_volume_ml"]), abs=1e-3)
    assert sum(int(rows[key]["n_modic"]) for key in KEYS) > 0  # the counts are not all zero
    with open(site / "endplates.csv", newline="") as handle:
        changed = [r for r in csv.DictReader(handle) if r["modic_type"] not in ("none", "")]
    places = dict(zip(KEYS, _column(page, headers.index("Findings at")), strict=True))
    for row in changed:  # every endplate with a Modic change is named at its level
        assert f"{row['level']} " in places[f"sub-{row['subject']}"], row
        assert row["modic_type"] in places[f"sub-{row['subject']}"], row
    assert page.evaluate("document.images.length") == len(KEYS)  # one thumbnail each
    page.wait_for_function(  # loaded lazily, once in view
        "Array.from(document.images).every(i => i.complete && i.naturalHeight > 0)",
        timeout=10_000,
    )
    watched.assert_clean()


def test_index_sorts_and_links_resolve(watched):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = watched.open("index.html")
    volume = _headers(page).index("BME volume (mL)")
    assert _column(page, 0) == KEYS
    page.click("#subjects th:has-text('BME volume')")
    ascending = [float(v) for v in _column(page, volume)]
    assert ascending == sorted(ascending)
    assert page.get_attribute(f"#subjects th:nth-child({volume + 1})", "aria-sort") == "ascending"
    page.click("#subjects th:has-text('BME volume')")
    descending = [float(v) for v in _column(page, volume)]
    assert descending == sorted(ascending, reverse=True)
    assert len(set(descending)) == 3  # the three subjects really differ, so the order is tested
    page.click("#subjects th:has-text('Subject')")
    assert _column(page, 0) == sorted(KEYS)
    page.click("#subjects th:has-text('Subject')")
    assert _column(page, 0) == sorted(KEYS, reverse=True)
    assert "sub-04" in page.inner_text("table.failures")
    page.screenshot(path=str(ARTIFACTS / "index_page.png"), full_page=True)
    hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.href)")
    assert len(hrefs) == len(SUBJECTS)
    for href in hrefs:
        response = page.goto(href, wait_until="load")
        assert response is not None and response.status == 200, href
        subject = href.rsplit("/", 1)[-1].removesuffix("_qc.html")
        assert page.inner_text("h1").startswith(subject)
        widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert widths and min(widths) > 0, (href, widths)
    watched.assert_clean()
