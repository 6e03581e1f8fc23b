"""The automatic bodies on every real scan bundled in ``sample_data/``, on their QC pages.

Each real scan (SCT's cervical T1w + T2, SCT's lumbar 3D T2 and TPTBox's T2, the last two
without a T1) is analysed as a user would, with no label map: the toolkit finds the bodies.
The QC page outlines every body on the first panel of each slice; the page is rendered in
headless Chromium (Debian package, driven by Playwright as in ``test_report_browser.py``)
and its screenshot saved to ``test_artifacts/real_scans/`` (gitignored) for a human to look
at: the numbers alone do not show a body that grew into the tissue beside the spine.

Checks: every body found is named and outlined on the page, no body is larger than 1.5
times the median body (issue 16's plausibility bound, here against the scan's own bodies:
a body joined to the tissue around it, or two bodies joined across a disc, is larger), and
no two bodies share a voxel face (a disc lies between any two; before session 18 the bodies
of the SCT lumbar T2, grown through the discs' dark annulus from both endplates, shared
325 and 290 faces between the top three, and those of the cervical pair 41).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import bmetoolkit as bt
from bmetoolkit.data import datasets
from bmetoolkit.report import qc
from bmetoolkit.spine.autoseg.apart import touching_faces

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test_artifacts" / "real_scans"
#: Largest body volume over the median body volume of the same scan (issue 16: 1.5).
LARGEST_OVER_MEDIAN = 1.5

pytestmark = pytest.mark.slow  # three real analyses: `make test`, not test-fast


def _inputs(name: str) -> tuple[Path | None, dict[str, Path]]:
    if name == "sct_cervical_t1_t2":
        paths = datasets.cervical_pair()
        return paths["t1"], {"t2": paths["t2"]}
    if name == "sct_lumbar_t2":
        return None, {"t2": datasets.lumbar_t2()}
    return None, {"t2": datasets.tptbox_t2()["t2"]}


@pytest.fixture(scope="module", params=["sct_cervical_t1_t2", "sct_lumbar_t2", "tptbox_t2"])
def analysed(request, tmp_path_factory: pytest.TempPathFactory):
    t1, fluid = _inputs(request.param)
    result = bt.analyze(t1, **fluid)
    out = tmp_path_factory.mktemp(request.param)
    result.save(out, qc=True, subject=request.param)
    return request.param, result, out


def test_automatic_bodies_are_plausible_in_size(analysed):
    name, result, _ = analysed
    assert result.vertebrae.convention == "automatic"
    bodies = np.asarray(result.vertebrae.bodies.data)
    ids, counts = np.unique(bodies[bodies > 0], return_counts=True)
    assert len(ids) >= 2, name
    assert counts.max() <= LARGEST_OVER_MEDIAN * np.median(counts), (name, counts)


def test_no_two_bodies_touch(analysed):
    name, result, _ = analysed
    bodies = np.asarray(result.vertebrae.bodies.data)
    assert touching_faces(bodies) == 0, name


def test_every_body_is_named_and_outlined_on_the_page(analysed):
    name, result, _ = analysed
    figures = result.qc_figures(name)
    montage = figures.montage
    step = len(montage.contrasts)
    names = {body.name for body in result.bodies}
    shown = set()
    for panel in montage.panels[::step]:  # the first panel of each slice
        outline = np.all(panel.rgb == np.asarray(qc._OUTLINE_RGB, np.uint8), axis=2)
        assert outline.any(), (name, panel.position)
        shown |= {mark.name for mark in panel.levels}
    assert shown == names, (name, shown, names)


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine: apt-get install -y chromium (Debian package)",
)
def test_qc_page_renders_and_is_saved_for_a_human(analysed):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    name, _, out = analysed
    page_path = out / "qc.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1200})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_path.as_uri())
            widths = page.eval_on_selector_all(
                ".panel img", "imgs => imgs.map(i => i.naturalWidth)"
            )
            assert widths and all(w > 0 for w in widths), name  # every panel decodes
            assert "vertebral body" in page.inner_text(".legend")
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
            assert errors == [], errors
        finally:
            browser.close()
