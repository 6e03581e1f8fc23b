"""Endplate tilts read on the image's cortex, not on the segment's outline (issue 16,
session 34; ``geometry.image_endplate_angles``, ``levels.body_shapes(...,
endplate_window_mm=)``, ``AutosegParameters.suppressed_endplate_window_mm``).

From a STIR alone the segments' outlines are not always the endplates (tuning seeds 161,
209: soft tissue joined to a corner of L5 or S1; 69: S1's promontory cut; 180, 188: half an
S1), and the lumbosacral angle read on them fell under ``sacrum_min_angle_deg`` while the
true S1 is tilted about 12 degrees over L5. A reader measures the endplates he sees: the
dark cortex between the marrow and the disc.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.geometry import endplate_angles, image_endplate_angles
from bmetoolkit.spine.autoseg.levels import assign_levels, body_shapes
from tests.helpers import lordotic_column

SPACING = np.array([1.0, 1.0, 3.0])
#: Tilts (deg, anterior-down) of L2 ... S1, cranial to caudal (the phantom's lordosis).
LORDOSIS = {"L2": -1.0, "L3": 3.0, "L4": 8.0, "L5": 15.0, "S1": 27.0}
BODY_MM, DEPTH_MM, DISC_MM = 24.0, 34.0, 10.0
MARROW, CORTEX, SOFT = 100.0, 20.0, 250.0  # a STIR: suppressed marrow, dark cortex, bright disc


def _column(
    joined: bool, disc_mm: float = DISC_MM, noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Segments and a STIR of L2 ... S1 (tilted rectangles with a 1 mm cortex, over discs and
    soft tissue as bright as a disc); with ``joined``, S1's segment holds soft tissue at its
    anterior-superior and posterior-inferior corners, as a segment joined to the tissue
    around it (no cortex there). Discs ``disc_mm`` thick at the column's centre; Gaussian
    noise of SD ``noise`` drawn from ``seed``."""
    return lordotic_column(
        list(LORDOSIS.values()), signals={"marrow": MARROW, "cortex": CORTEX, "background": SOFT},
        disc_mm=disc_mm, body_mm=BODY_MM, depth_mm=DEPTH_MM, joined=joined, noise=noise,
        seed=seed,
    )  # fmt: skip


def test_the_cortex_gives_the_endplate_s_tilt_where_the_outline_does_not():
    segments, image = _column(joined=True)
    s1 = segments[:, :, 2] == len(LORDOSIS)
    on_image = image_endplate_angles(s1, image[:, :, 2], SPACING, 4.0)
    assert on_image == pytest.approx((27.0, 27.0), abs=1.0)
    # the outline follows the joined tissue: both surfaces read far flatter
    assert max(endplate_angles(s1, SPACING)) < 15.0


def test_no_cortex_near_the_face_gives_no_angle():
    segments, _ = _column(joined=False)
    s1 = segments[:, :, 2] == len(LORDOSIS)
    flat = np.where(s1, MARROW, SOFT)  # marrow up to the face, no dark line anywhere
    assert np.isnan(image_endplate_angles(s1, flat, SPACING, 4.0)).all()


def test_s1_joined_to_soft_tissue_is_recognised_from_its_cortex():
    segments, image = _column(joined=True)
    params = AutosegParameters()
    below = np.zeros(segments.shape, bool)  # no bone below S1
    shapes = body_shapes(
        segments, 2.0, SPACING, fluid=image, endplate_window_mm=params.suppressed_endplate_window_mm
    )
    found = assign_levels(shapes, below, SPACING, params)
    assert found.anchor == "sacrum (S1)"
    assert list(found.levels.values()) == list(LORDOSIS)
    assert found.evidence["lumbosacral_angle_deg"] == pytest.approx(12.0, abs=2.0)
    # Before (the outline; also with the window at 0): S1 reads flatter than L5, no anchor.
    for outline in (
        body_shapes(segments, 2.0, SPACING, fluid=image),
        body_shapes(segments, 2.0, SPACING),
    ):
        before = assign_levels(outline, below, SPACING, params)
        assert before.anchor is None
        assert before.evidence["lumbosacral_angle_deg"] < params.sacrum_min_angle_deg


def test_whole_segments_read_their_own_tilts_on_the_image():
    segments, image = _column(joined=False)
    on_image = body_shapes(segments, 2.0, SPACING, fluid=image, endplate_window_mm=4.0)
    for shape, tilt in zip(on_image, LORDOSIS.values(), strict=True):
        assert shape.endplates_deg == pytest.approx((tilt, tilt), abs=2.5)


@pytest.mark.parametrize("seed", range(4))
def test_a_narrow_disc_does_not_lend_the_neighbour_s_cortex(seed: int):
    # Discs 4 mm thick (worn discs are common where there is edema), narrower than the
    # window on both sides of each face: the darkest pixel of the window may be the
    # neighbour's cortex across the disc; the dark run nearest the face is the body's own.
    segments, image = _column(joined=False, disc_mm=4.0, noise=5.0, seed=seed)
    on_image = body_shapes(segments, 2.0, SPACING, fluid=image, endplate_window_mm=4.0)
    for shape, tilt in zip(on_image, LORDOSIS.values(), strict=True):
        assert shape.endplates_deg == pytest.approx((tilt, tilt), abs=2.5)
