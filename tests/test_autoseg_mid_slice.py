"""A plain T2 alone: a body joined to the tissue around it through one lateral slice of the
mid-sagittal slab, read on the mid-sagittal slice; whole bodies of another reading added
at the levels the bodies kept leave empty (session 31).

Small synthetic canonical arrays (anterior, superior, right): each test builds the case the
rule is for and checks that the previous behaviour fails on it.
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.midline import (
    add_at_empty_levels,
    any_mid_slice_seed,
    bodies_from_midline,
    seed_mid_slab,
    split_from_midline,
)

PARAMS = AutosegParameters()
SPACING = np.array([1.0, 1.0, 4.0])  # 1 mm in plane, 4 mm slices
CANAL_WALL = 10
BODY_FRONT = 42  # the bodies are 32 mm deep
BODIES_SI = ((10, 36), (46, 72), (82, 108), (118, 144))  # 26 mm bodies, 10 mm discs
MIDLINE = 7.0  # the mid-sagittal slab is slices 6-8 (within 6 mm)


def _top_body_joined_on_one_slice() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four bodies and marrow-like tissue in front of them, the whole height of the image.

    The bodies' one-voxel anterior cortex is seen on the mid-sagittal slab (slices 6-8)
    and lost beyond it; the top body's is lost on slice 8 too (a wall bending between
    slices), so its seed joins the tissue's through that slice. Returns the marrow mask,
    the distance (mm) in front of the canal wall and the wall per row.
    """
    marrow = np.zeros((90, 160, 15), bool)
    for low, high in BODIES_SI:
        marrow[CANAL_WALL + 2 : BODY_FRONT, low:high, 1:14] = True
    marrow[BODY_FRONT:88, :, :] = True
    marrow[BODY_FRONT, :, 6:9] = False
    marrow[BODY_FRONT, 118:144, 8] = True  # the top body's wall is lost on slice 8
    distance = np.repeat(((np.arange(90) - CANAL_WALL) * SPACING[0])[:, None], 160, axis=1).astype(
        np.float32
    )
    return marrow, distance, np.full(160, float(CANAL_WALL))


def test_a_body_joined_through_one_slab_slice_is_found_on_the_mid_sagittal_slice():
    marrow, distance, front = _top_body_joined_on_one_slice()
    before = split_from_midline(marrow, distance, front, MIDLINE, SPACING, PARAMS)
    assert before.max() == 3  # the top body's seed is the tissue's: lost
    assert not before[20:40, 120:142, 7].any()
    assert any_mid_slice_seed(marrow, distance, front, MIDLINE, SPACING, PARAMS)
    bodies = split_from_midline(marrow, distance, front, MIDLINE, SPACING, PARAMS, mid_slice=True)
    assert bodies.max() == 4
    top = bodies[25, 130, 7]
    assert top > 0 and top not in (bodies[25, 23, 7], bodies[25, 95, 7])
    ap, si, _ = np.nonzero(bodies == top)
    # Within its own level and no further in front than the other bodies (+2 mm).
    assert 118 - 4 <= si.min() and si.max() < 144 + 4
    assert ap.max() <= BODY_FRONT + 2
    inside = marrow[CANAL_WALL + 2 : BODY_FRONT, 118:144, 7]  # the body's own marrow
    assert (bodies[CANAL_WALL + 2 : BODY_FRONT, 118:144, 7] == top).sum() > 0.8 * inside.sum()


def test_no_mid_slice_seed_where_every_body_stands_apart_or_at_the_image_edge():
    marrow, distance, front = _top_body_joined_on_one_slice()
    whole = marrow.copy()
    whole[BODY_FRONT, 118:144, 8] = False  # the top body's wall seen on the whole slab
    assert not any_mid_slice_seed(whole, distance, front, MIDLINE, SPACING, PARAMS)
    # The top body cut by the image's upper edge: its part is not read as a body.
    cut = marrow[:, :140]
    assert not any_mid_slice_seed(cut, distance[:, :140], front[:140], MIDLINE, SPACING, PARAMS)


def test_the_seeds_computed_once_read_as_each_call_seeds_them():
    """The mid-slab seeds seeded once by the caller (a plain T2 alone reads the same marrow
    up to three times) give each reading what it finds seeding the marrow itself, and
    cannot be changed by one reading under the next."""
    marrow, distance, front = _top_body_joined_on_one_slice()
    seeded = seed_mid_slab(marrow, distance, front, MIDLINE, SPACING, PARAMS)
    assert not seeded.labels.flags.writeable and not seeded.initial.flags.writeable
    assert len(seeded.keep) == 3  # the top body's seed is the tissue's
    for mid_slice in (False, True):
        alone = split_from_midline(
            marrow, distance, front, MIDLINE, SPACING, PARAMS, mid_slice=mid_slice
        )
        given = split_from_midline(
            marrow, distance, front, MIDLINE, SPACING, PARAMS, mid_slice=mid_slice, seeded=seeded
        )
        np.testing.assert_array_equal(given, alone)
        args = (marrow, distance, front, MIDLINE, SPACING, PARAMS)
        np.testing.assert_array_equal(
            bodies_from_midline(*args, mid_slice=mid_slice, seeded=seeded),
            bodies_from_midline(*args, mid_slice=mid_slice),
        )
    assert any_mid_slice_seed(marrow, distance, front, MIDLINE, SPACING, PARAMS, seeded=seeded)
    # Another marrow's seeds are not this marrow's: they are what a reading uses.
    whole = marrow.copy()
    whole[BODY_FRONT, 118:144, 8] = False
    other = seed_mid_slab(whole, distance, front, MIDLINE, SPACING, PARAMS)
    assert not any_mid_slice_seed(marrow, distance, front, MIDLINE, SPACING, PARAMS, seeded=other)


def _labels(*ranges: tuple[int, int], rows: int = 100) -> np.ndarray:
    out = np.zeros((6, rows, 4), np.int32)
    for label, (low, high) in enumerate(ranges, start=1):
        out[1:5, low:high, 1:3] = label
    return out


def test_whole_segments_of_another_reading_are_added_at_empty_levels_only():
    ones = np.ones(3)
    base = _labels((10, 30), (40, 60))
    # Another reading: a body at the empty level 70-90, one at a level the base holds,
    # one cut by the image's lower edge.
    other = np.zeros_like(base)
    other[1:5, 70:90, 1:3] = 1
    other[1:5, 42:58, 1:3] = 2
    other[1:5, 0:8, 1:3] = 3
    grown = np.zeros(base.shape, bool)
    merged, more, added = add_at_empty_levels(base, grown, other, other > 0, ones)
    assert added == 1
    assert set(np.unique(merged[:, 70:90])) == {0, 3}
    assert (merged[:, 0:8] == 0).all() and (merged[base > 0] == base[base > 0]).all()
    assert more[merged == 3].all() and not more[merged != 3].any()
