"""Endplate tilts read on the image's cortex from a T2 alone too (issue 16, session 37;
``AutosegParameters.t2_endplate_window_mm``, wired in ``find_vertebral_bodies``).

From a plain T2 alone the levels stayed unknown on tuning cases whose S1 was found whole
enough and had the sacrum's support below it (seeds 96, 172, 185, 188 of 160-199 and
60-99): the lumbosacral angle read on the segments' outlines was 5-8 degrees or less
where the true S1 is tilted 12 degrees over L5. The cortex is dark on a T2 as on a STIR
(against the marrow and the disc's nucleus), so the tilt is read there, as
``suppressed_endplate_window_mm`` reads it from a STIR alone.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies
from bmetoolkit.spine.autoseg.geometry import endplate_angles, image_endplate_angles
from bmetoolkit.spine.autoseg.levels import assign_levels, body_shapes
from bmetoolkit.study import Study
from tests.helpers import NoT1Study, lordotic_column, record_calls

SPACING = np.array([1.0, 1.0, 3.0])
#: Tilts (deg, anterior-down) of L2 ... S1, cranial to caudal (the phantom's lordosis).
LORDOSIS = {"L2": -1.0, "L3": 3.0, "L4": 8.0, "L5": 15.0, "S1": 27.0}
BODY_MM, DEPTH_MM, DISC_MM = 24.0, 34.0, 10.0
#: A plain T2 (the phantom's signals x 100): intermediate marrow, dark cortex, a bright
#: nucleus in a darker annulus, and tissue around the sacrum as bright as the marrow.
MARROW, CORTEX, NUCLEUS, ANNULUS, TISSUE = 60.0, 8.0, 140.0, 35.0, 60.0


def _t2_column(joined: bool) -> tuple[np.ndarray, np.ndarray]:
    """Segments and a plain T2 of L2 ... S1 with discs (a nucleus in their central 60 %);
    with ``joined``, S1's segment holds tissue of the marrow's signal at its
    anterior-superior and posterior-inferior corners (no cortex there), so that its outline
    is flatter than its endplates (:func:`tests.helpers.lordotic_column`)."""
    signals = {"marrow": MARROW, "cortex": CORTEX, "background": TISSUE, "nucleus": NUCLEUS,
               "annulus": ANNULUS, "joined": MARROW}  # fmt: skip
    return lordotic_column(
        list(LORDOSIS.values()), signals=signals, disc_mm=DISC_MM, body_mm=BODY_MM,
        depth_mm=DEPTH_MM, joined=joined,
    )  # fmt: skip


def test_the_parameter_is_on_and_documented() -> None:
    assert AutosegParameters().t2_endplate_window_mm == 4.0
    assert "t2_endplate_window_mm" in (AutosegParameters.__doc__ or "")


def test_s1_joined_to_tissue_is_recognised_from_its_cortex_on_a_t2() -> None:
    segments, image = _t2_column(joined=True)
    params = AutosegParameters()
    below = np.zeros(segments.shape, bool)  # no bone below S1
    shapes = body_shapes(
        segments, 2.0, SPACING, fluid=image, endplate_window_mm=params.t2_endplate_window_mm
    )
    for shape, tilt in zip(shapes[:-1], LORDOSIS.values(), strict=False):
        assert shape.endplates_deg == pytest.approx((tilt, tilt), abs=2.5)
    found = assign_levels(shapes, below, SPACING, params)
    assert found.anchor == "sacrum (S1)"
    assert list(found.levels.values()) == list(LORDOSIS)
    assert found.evidence["lumbosacral_angle_deg"] == pytest.approx(12.0, abs=2.0)
    # On the outline (the window at 0) S1 reads no steeper than L5 by 8 degrees: no anchor.
    outline = body_shapes(segments, 2.0, SPACING, fluid=image)
    before = assign_levels(outline, below, SPACING, params)
    assert before.anchor is None
    assert before.evidence["lumbosacral_angle_deg"] < params.sacrum_min_angle_deg


def test_a_face_against_the_next_segment_is_read_on_its_outline() -> None:
    """L4's segment took the middle of the disc below it, down to 1 mm above L5's segment
    (as tuning seed 99, cut above the sacrum, whose L4 took its disc): the dark line beyond
    that face is L5's cortex, so with ``neighbour_faces_outline`` the face is read on the
    outline; its other face, and the faces with a disc's gap, are read on the image."""
    segments, image = _t2_column(joined=False)
    l4, l5 = 3, 4
    ap = np.arange(segments.shape[0])[:, None]
    top_of_l5 = np.where(segments[:, :, 2] == l5, np.arange(segments.shape[1]), -1).max(axis=1)
    bottom_of_l4 = np.where(segments[:, :, 2] == l4, np.arange(segments.shape[1]), 999).min(axis=1)
    si = np.arange(segments.shape[1])[None, :]
    tongue = (np.abs(ap - 45) <= 6) & (si > top_of_l5[:, None] + 1) & (si < bottom_of_l4[:, None])
    segments[tongue] = l4
    window = AutosegParameters().t2_endplate_window_mm
    read = body_shapes(
        segments, 2.0, SPACING, fluid=image, endplate_window_mm=window, neighbour_faces_outline=True
    )
    before = body_shapes(segments, 2.0, SPACING, fluid=image, endplate_window_mm=window)
    section = segments[:, :, 2] == l4
    assert read[l4 - 1].disc_below_mm < window  # the tongue reaches within the window of L5
    on_image = image_endplate_angles(section, image[:, :, 2], SPACING, window)
    assert read[l4 - 1].endplates_deg == pytest.approx(
        (on_image[0], endplate_angles(section, SPACING)[1])
    )
    assert before[l4 - 1].endplates_deg == pytest.approx(on_image)
    assert abs(read[l4 - 1].endplates_deg[1] - before[l4 - 1].endplates_deg[1]) > 5.0
    # L5's superior face lies within the window of L4's segment too; every other face is
    # read on the image as before.
    assert read[l5 - 1].endplates_deg[1] == pytest.approx(before[l5 - 1].endplates_deg[1])
    for k in (0, 1, 4):
        assert read[k].endplates_deg == pytest.approx(before[k].endplates_deg)


@pytest.fixture(scope="module")
def small_study() -> Study:
    phantom = make_phantom(seed=3, config=PhantomConfig.small())
    return Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)


@pytest.mark.parametrize(
    ("images", "params", "window"),
    [
        ("t2", AutosegParameters(), 4.0),
        ("t2", AutosegParameters(t2_endplate_window_mm=2.5), 2.5),
        ("t2", AutosegParameters(t2_endplate_window_mm=0.0), 0.0),
        ("stir", AutosegParameters(t2_endplate_window_mm=2.5), 4.0),
        ("t1", AutosegParameters(), 0.0),
    ],
)
def test_find_vertebral_bodies_reads_the_cortex_from_a_t2_alone(
    monkeypatch, small_study, images, params, window
) -> None:
    """Wired into :func:`find_vertebral_bodies`: the window is the T2's without a T1, the
    STIR's from a STIR alone, none with a T1."""
    calls = record_calls(monkeypatch, autoseg, "body_shapes")
    study = {
        "t2": NoT1Study(t2=small_study.t2, stir=None),
        "stir": NoT1Study(t2=None, stir=small_study.stir),
        "t1": small_study,
    }[images]
    find_vertebral_bodies(study, params)
    assert len(calls) == 1
    assert calls[0][1]["endplate_window_mm"] == window
    assert calls[0][1]["neighbour_faces_outline"] is (images == "t2")
