"""S1 joined to the bone below it and the tissue around it on the T2 alone, cut back to S1.

Small synthetic columns (1 mm voxels): four bodies over 10 mm discs and, at the caudal
end, a tilted S1 inside a dark rim, joined to marrow-like tissue below and in front of it
into one segment too large for a body (the pelvis-and-bowel misses of session 23).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bmetoolkit.spine.autoseg.checks import drop_tall_at_lower_edge
from bmetoolkit.spine.autoseg.oversized import cut_back_caudal
from bmetoolkit.spine.autoseg.params import AutosegParameters

SPACING = np.ones(3)
SHAPE = (64, 200, 21)
MIDLINE = 10.0
SIDES = slice(3, 18)


def _column(tilt_deg: float = 20.0, rim: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments (four bodies, then S1 joined to tissue as label 5), the T2 and S1's mask."""
    bodies = np.zeros(SHAPE, np.int32)
    for label, top in enumerate((195, 160, 125, 90), start=1):
        bodies[10:40, top - 25 : top, SIDES] = label
    s1 = np.zeros(SHAPE, bool)
    slope = np.tan(np.radians(tilt_deg))
    for ap in range(10, 40):
        top = round(60 - (ap - 10) * slope)  # anterior-down
        s1[ap, top - 25 : top, SIDES] = True
    ring = np.zeros(SHAPE, bool)
    for k in range(SHAPE[2]):
        grown = s1[:, :, k]
        for _ in range(2):
            grown = grown | np.roll(grown, 1, 0) | np.roll(grown, -1, 0)
            grown = grown | np.roll(grown, 1, 1) | np.roll(grown, -1, 1)
        ring[:, :, k] = grown & ~s1[:, :, k]
    tissue = np.zeros(SHAPE, bool)
    tissue[4:60, 0:28, :] = True  # below S1, down to the image's lower edge
    tissue[40:60, 0:62, :] = True  # in front of it
    tissue &= ~s1 & ~ring
    image = np.full(SHAPE, 90.0)  # soft tissue: not dark
    image[bodies > 0] = 100.0
    image[s1 | tissue] = 100.0
    if rim:
        image[ring] = 20.0
    segment = s1 | tissue
    # Joined to S1 through the rim on a lateral slice (partial volume across the slab).
    segment[:, :, 3] |= ring[:, :, 3]
    bodies[segment] = 5
    return bodies, image, s1


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_s1_joined_to_bone_below_and_tissue_in_front_is_cut_back_to_s1():
    bodies, image, s1 = _column()
    params = AutosegParameters()
    out, notes = cut_back_caudal(bodies, image, MIDLINE, SPACING, params)
    assert len(notes) == 1 and "dark rim" in notes[0]
    assert _dice(out == 5, s1) > 0.9
    assert ((out == 5) & ~s1).sum() < 0.1 * s1.sum()  # the tissue below and in front is out
    for label in (1, 2, 3, 4):
        assert np.array_equal(out == label, bodies == label)


def test_without_a_dark_rim_the_segment_is_left_as_it_was():
    bodies, image, _ = _column(rim=False)
    out, notes = cut_back_caudal(bodies, image, MIDLINE, SPACING, AutosegParameters())
    assert notes == [] and np.array_equal(out, bodies)


def _s1_on_sacrum(
    line: float, noise: float = 3.0, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four bodies and S1 tilted 20 degrees, the lower sacrum continuing S1's columns below
    it down to the image's lower edge under a 2 mm S1-S2 line of signal ``line`` (the
    marrow 100, the cortex around S1 and the sacrum 20), all one segment (label 5) too
    tall for a body at the lower edge; the T2 with Gaussian noise of SD ``noise``."""
    bodies = np.zeros(SHAPE, np.int32)
    for label, top in enumerate((195, 160, 125, 90), start=1):
        bodies[10:40, top - 25 : top, SIDES] = label
    s1, below = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    slope = np.tan(np.radians(20.0))
    for ap in range(10, 40):
        top = round(60 - (ap - 10) * slope)  # anterior-down
        s1[ap, top - 25 : top, SIDES] = True
        below[ap, 0 : top - 27, SIDES] = True
    bone = s1 | below
    column = bone.copy()
    column[10:40, :, SIDES] |= np.cumsum(bone[10:40, ::-1, SIDES], axis=1)[:, ::-1] > 0
    grown = ndimage.binary_dilation(column, np.ones((5, 5, 1), bool))
    image = np.full(SHAPE, 90.0)  # soft tissue: not dark
    image[bodies > 0] = 100.0
    image[grown & ~column] = 20.0  # the cortex around S1 and the sacrum
    image[bone] = 100.0
    image[column & ~bone] = line  # the S1-S2 line between them
    bodies[column] = 5
    image += np.random.default_rng(seed).normal(0.0, noise, SHAPE)
    return bodies, image, s1


@pytest.mark.parametrize("seed", range(12))
def test_s1_joined_to_the_sacrum_through_a_faint_line_is_cut_at_the_line(seed: int):
    # The S1-S2 line at 0.8 of the marrow (over the 0.7 that makes a pixel dark), noise of
    # 3 % of the marrow: S1 and the bone below are one compartment of over twice a body's
    # area, unless the line is read against the marrow on both sides of it. Whatever the
    # noise's draw (the line's tilt is chosen among noisy candidates).
    bodies, image, s1 = _s1_on_sacrum(line=80.0, seed=seed)
    off = AutosegParameters(t2_s1_line=False)
    out, notes = cut_back_caudal(bodies, image, MIDLINE, SPACING, off)
    assert notes == [] and np.array_equal(out, bodies)
    out, notes = cut_back_caudal(bodies, image, MIDLINE, SPACING, AutosegParameters())
    assert len(notes) == 1
    assert _dice(out == 5, s1) > 0.85
    assert ((out == 5) & ~s1).sum() < 0.2 * s1.sum()  # the sacrum below is out
    for label in (1, 2, 3, 4):
        assert np.array_equal(out == label, bodies == label)


@pytest.mark.parametrize("seed", range(4))
def test_no_line_within_the_marrow_spread_leaves_the_segment_as_it_was(seed: int):
    # The line at 0.97 of the marrow, within the marrow's noise (SD 0.03): no line to cut at.
    bodies, image, _ = _s1_on_sacrum(line=97.0, seed=seed)
    out, notes = cut_back_caudal(bodies, image, MIDLINE, SPACING, AutosegParameters())
    assert notes == [] and np.array_equal(out, bodies)


def test_a_compartment_not_tilted_like_the_sacrum_is_no_s1():
    bodies, image, _ = _column(tilt_deg=0.0)
    out, notes = cut_back_caudal(bodies, image, MIDLINE, SPACING, AutosegParameters())
    assert notes == [] and np.array_equal(out, bodies)


def test_a_body_of_the_column_size_is_not_touched():
    bodies, image, s1 = _column()
    bodies[bodies == 5] = 0
    bodies[s1] = 5
    out, notes = cut_back_caudal(bodies, image, MIDLINE, SPACING, AutosegParameters())
    assert notes == [] and np.array_equal(out, bodies)


def _tilted_at_lower_edge(height: int) -> np.ndarray:
    """Four upright 20 mm bodies and a caudal one ``height`` mm tall along its columns,
    tilted 40 degrees, whose lowest corner reaches the image's lower edge."""
    bodies = np.zeros(SHAPE, np.int32)
    for label, top in enumerate((195, 165, 135, 105), start=1):
        bodies[10:40, top - 20 : top, SIDES] = label
    slope = np.tan(np.radians(40.0))
    for ap in range(10, 40):
        top = round(1 + height + (39 - ap) * slope)
        bodies[ap, top - height : top, SIDES] = 5
    return bodies


def test_a_tilted_s1_whose_corner_reaches_the_lower_edge_is_kept_along_its_columns():
    bodies = _tilted_at_lower_edge(22)  # SI extent about 47 mm, 2.3 times the others
    dropped, notes = drop_tall_at_lower_edge(bodies, SPACING)
    assert int(dropped.max()) == 4 and len(notes) == 1  # by its SI extent (as before)
    kept, notes = drop_tall_at_lower_edge(bodies, SPACING, None, MIDLINE, along_columns=True)
    assert notes == [] and np.array_equal(kept, bodies)


def test_a_segment_tall_along_its_columns_at_the_lower_edge_is_still_dropped():
    bodies = _tilted_at_lower_edge(40)  # 2 bodies tall along its columns
    out, notes = drop_tall_at_lower_edge(bodies, SPACING, None, MIDLINE, along_columns=True)
    assert int(out.max()) == 4 and len(notes) == 1
