"""A disc and vertebral marrow below the caudal-most body on the fluid image: no sacrum.

Issue 16: levels from a STIR alone were named on 7 of 30 tuning cases cut above the sacrum
(session 29). The caudal-most segment, L4 over an L5 lost or left out at the image's edge,
was tilted like the sacrum and the marrow mask showed "bone right below" (the disc's
annulus, marrow-like on a STIR) or nothing of the lost L5. The fluid image itself shows the
disc below and the next vertebra's marrow below that disc.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.levels import (
    PROFILE_STEP_MM,
    BodyShape,
    assign_levels,
    body_shapes,
)

SPACING = np.array([0.7, 0.8, 4.4])
#: Tilts (deg) of T11 ... S1, cranial to caudal: the lumbosacral angle is the last step.
LORDOSIS = [-8.0, -6.0, -4.0, -1.0, 3.0, 8.0, 15.0, 27.0]


def _profile(*parts: tuple[float, float]) -> np.ndarray:
    """A fluid profile below a body: (length mm, signal over the body's marrow) pieces."""
    return np.concatenate([np.full(round(mm / PROFILE_STEP_MM), value) for mm, value in parts])


#: Below a lumbar body: 1 mm of its own marrow, the endplate, a 10 mm disc with a bright
#: nucleus, the next endplate, then the next body's marrow.
DISC = _profile((1, 1.0), (1, 0.3), (8, 3.0), (1, 0.3), (20, 1.0))
#: Below the phantom's S1: its cortex, then soft tissue brighter than suppressed marrow.
TISSUE = _profile((1, 1.0), (1, 0.3), (30, 2.5))
#: Below a real S1: a thin remnant of the S1-S2 disc, then S2's marrow.
REMNANT = _profile((1, 1.0), (2, 0.4), (25, 1.05))


def _column(below_last: np.ndarray | None, bottom: int = 60) -> list[BodyShape]:
    """T11 ... S1 35 mm apart, each with a disc below it on the fluid image, the
    caudal-most with ``below_last``."""
    n = len(LORDOSIS)
    return [
        BodyShape(
            label=i + 1,
            centroid_mm=np.array([50.0, (n - i) * 35.0, 30.0]),
            angle_deg=angle,
            touches_bottom=False,
            inferior_row=bottom + (n - 1 - i) * 40,
            ap_range=(20, 60),
            disc_below_mm=10.0 if i < n - 1 else float("nan"),
            fluid_below=None if i == 0 else (below_last if i == n - 1 else DISC),
        )
        for i, angle in enumerate(LORDOSIS)
    ]


def test_a_disc_and_marrow_below_the_caudal_body_is_no_sacrum():
    params = AutosegParameters()
    empty = np.zeros((80, 400, 10), bool)
    disc = assign_levels(_column(DISC), empty, SPACING, params)
    assert disc.anchor is None and set(disc.levels.values()) == {None}
    assert disc.evidence["disc_and_marrow_below_mm"] == 10.0
    assert disc.evidence["support"] is None
    for below in (TISSUE, REMNANT, None):
        named = assign_levels(_column(below), empty, SPACING, params)
        assert named.anchor == "sacrum (S1)", below
        assert named.evidence["disc_and_marrow_below_mm"] is None
    off = AutosegParameters(fluid_disc_below=False)
    assert assign_levels(_column(DISC), empty, SPACING, off).anchor == "sacrum (S1)"


def test_a_stretch_much_taller_than_the_discs_above_is_soft_tissue_not_a_disc():
    """Marrow-like signal 30 mm below the body (three times the discs above read the same
    way) is soft tissue, not the next vertebra."""
    params = AutosegParameters()
    empty = np.zeros((80, 400, 10), bool)
    far = _profile((1, 1.0), (1, 0.3), (29, 2.5), (10, 1.0))
    assert assign_levels(_column(far), empty, SPACING, params).anchor == "sacrum (S1)"
    # Read against discs as tall as it, the same stretch is a disc.
    tall = _profile((1, 1.0), (1, 0.3), (28, 3.0), (1, 0.3), (10, 1.0))
    shapes = [replace(s, fluid_below=tall) if s.fluid_below is DISC else s for s in _column(far)]
    assert assign_levels(shapes, empty, SPACING, params).anchor is None


def test_a_body_at_the_edge_is_not_left_out_below_a_body_with_a_disc_below_it():
    """Cut above the sacrum (tuning seed 87): L5 at the image's lower edge, L4 above it
    tilted like the sacrum, the disc's annulus read as bone right below it in the marrow
    mask. L5 was left out as S2 and L4 named S1; the disc below L4 on the fluid image now
    says L4 is no sacrum, and nothing is left out."""
    params = AutosegParameters()
    shapes = _column(DISC, bottom=80)
    edge = BodyShape(
        label=len(shapes) + 1,
        centroid_mm=np.array([50.0, 12.0, 30.0]),
        angle_deg=10.0,
        touches_bottom=True,
        inferior_row=0,
        ap_range=(20, 60),
    )
    shapes[-1] = replace(shapes[-1], disc_below_mm=10.0)
    marrow = np.zeros((80, 600, 10), bool)
    marrow[:, 60:78] = True  # the annulus right below L4 (its lowest row 80)
    before = assign_levels(
        [*shapes[:-1], replace(shapes[-1], fluid_below=None), edge], marrow, SPACING, params
    )
    assert before.anchor == "sacrum (S1)" and before.evidence["left_out_below_sacrum"] == [9]
    after = assign_levels([*shapes, edge], marrow, SPACING, params)
    assert after.anchor is None and after.evidence["left_out_below_sacrum"] == []
    assert len(after.levels) == 9


def test_the_fluid_below_a_body_is_read_along_the_column():
    """Three tilted bodies on a synthetic label map: below the caudal-most, a disc (bright)
    and a vertebra the segmentation missed (marrow on the fluid image, no label)."""
    shape = (60, 200, 5)
    bodies = np.zeros(shape, np.int32)
    fluid = np.full(shape, 2.5, np.float32)  # soft tissue
    rows = np.arange(shape[1])
    for label, top in ((1, 190), (2, 150), (3, 110), (None, 70)):
        for a in range(10, 40):
            shift = (a - 25) // 5  # tilted a little, anterior-down
            body = (rows <= top - shift) & (rows > top - 28 - shift)
            disc = (rows > top - shift) & (rows <= top + 10 - shift)
            fluid[a, disc, :] = 3.0 if top < 190 else fluid[a, disc, :]
            fluid[a, body, :] = 1.0
            if label is not None:
                bodies[a, body, :] = label
    shapes = body_shapes(bodies, 2.0, np.array([1.0, 1.0, 3.0]), fluid=fluid)
    assert [s.label for s in shapes] == [1, 2, 3] and shapes[0].fluid_below is None
    below = shapes[-1].fluid_below
    step = round(1.0 / PROFILE_STEP_MM)
    assert np.all(below[3 * step : 9 * step] == 3.0)  # the disc
    assert np.all(below[15 * step : 28 * step] == 1.0)  # the missed vertebra's marrow
    empty = np.zeros(shape, bool)
    result = assign_levels(shapes, empty, np.array([1.0, 1.0, 3.0]), AutosegParameters())
    assert result.evidence["disc_and_marrow_below_mm"] is not None
    assert 8.0 <= result.evidence["disc_and_marrow_below_mm"] <= 14.0
