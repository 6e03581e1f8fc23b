"""The top body joined to the tissue above and in front of it, cut back instead of dropped
(:mod:`bmetoolkit.spine.autoseg.top_edge`)."""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.checks import drop_large_at_edges
from bmetoolkit.spine.autoseg.top_edge import cut_back_top, rounded_front

SPACING = np.ones(3)
FRONT = 10.0  # the canal's front (AP index) on every row
MIDLINE = 20.0


def _column(endplate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three whole bodies and a top body joined to tissue above it (up to the upper edge)
    and in front of it; a dark line at the top body's superior endplate."""
    bodies = np.zeros((60, 160, 40), np.int32)
    for label, start in enumerate((5, 38, 71), start=1):
        bodies[11:41, start : start + 25, 8:33] = label
    bodies[11:41, 104:129, 8:33] = 4  # the top body
    bodies[11:56, 133:160, 8:33] = 4  # tissue above it, up to the upper edge
    bodies[41:56, 104:160, 8:33] = 4  # tissue in front of it, joining the two
    image = np.full(bodies.shape, 100.0)
    if endplate:
        image[:, 129:133, :] = 20.0
    return bodies, image, np.full(160, FRONT)


def test_top_body_joined_to_tissue_above_is_cut_back_to_a_body():
    bodies, image, front = _column()
    assert drop_large_at_edges(bodies, SPACING)[0].max() == 3  # dropped whole before
    out, notes = cut_back_top(bodies, image, front, MIDLINE, SPACING)
    top = out == 4
    assert len(notes) == 1 and "cut back" in notes[0]
    rows = np.flatnonzero(top.any(axis=(0, 2)))
    assert rows.min() == 104 and rows.max() <= 130  # at the superior endplate
    assert np.flatnonzero(top.any(axis=(1, 2))).max() <= 42  # the body below's depth + 2 mm
    assert top.sum() <= 1.3 * (bodies == 3).sum()
    kept, dropped = drop_large_at_edges(out, SPACING)
    assert kept.max() == 4 and not dropped


def test_without_a_dark_endplate_the_segment_is_left_as_it_was():
    bodies, image, front = _column(endplate=False)
    out, notes = cut_back_top(bodies, image, front, MIDLINE, SPACING)
    assert notes == [] and np.array_equal(out, bodies)


def test_a_top_segment_of_a_body_size_is_not_touched():
    bodies, image, front = _column()
    bodies[bodies == 4] = 0
    bodies[11:41, 104:160, 8:33] = 4  # a body cut by the upper edge, no tissue around it
    bodies[11:41, 129:160, 8:33] = 0
    bodies[11:41, 140:160, 8:33] = 4
    out, notes = cut_back_top(bodies, image, front, MIDLINE, SPACING)
    assert notes == [] and np.array_equal(out, bodies)


def _column_below_joined_to_tissue() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_column`, but the body below the top one holds tissue in front of and
    beside it too (deeper and wider than the bodies below it), and the top segment's tissue
    reaches below the top body, in front of the disc under it."""
    bodies, image, front = _column()
    bodies[bodies == 3] = 0
    bodies[11:49, 71:96, 5:36] = 3  # 8 mm deeper, 3 mm wider than bodies 1 and 2
    bodies[bodies == 4] = 0
    bodies[11:56, 98:160, 2:39] = 4  # the top body in tissue above, in front, beside, below
    return bodies, image, front


def test_top_body_cut_to_the_smallest_whole_body_below_it():
    bodies, image, front = _column_below_joined_to_tissue()
    volume_below = (bodies == 3).sum()
    # To the body below's depth and width, what is left is still too large: dropped.
    out, notes = cut_back_top(bodies, image, front, MIDLINE, SPACING)
    assert notes == [] and np.array_equal(out, bodies)
    out, notes = cut_back_top(bodies, image, front, MIDLINE, SPACING, smallest=True)
    top = out == 4
    assert len(notes) == 1 and "cut back" in notes[0]
    assert np.flatnonzero(top.any(axis=(1, 2))).max() <= 42  # bodies 1 and 2: 30 + 2 mm
    lr = np.flatnonzero(top.any(axis=(0, 1)))
    assert lr.min() >= 6 and lr.max() <= 34  # their half-width, 12 + 2 mm
    assert np.flatnonzero(top.any(axis=(0, 2))).max() <= 130  # at the superior endplate
    assert top.sum() <= 1.3 * volume_below
    assert np.array_equal(out == 3, bodies == 3)  # the other bodies as they were
    kept, dropped = drop_large_at_edges(out, SPACING)
    assert kept.max() == 4 and not dropped


def test_smallest_body_geometry_leaves_a_body_size_top_cut_as_before():
    bodies, image, front = _column()
    before, _ = cut_back_top(bodies, image, front, MIDLINE, SPACING)
    after, _ = cut_back_top(bodies, image, front, MIDLINE, SPACING, smallest=True)
    assert np.array_equal(before, after)  # every whole body as deep and wide: the same cut


def test_top_body_cut_to_the_bodies_next_below_it_not_to_a_shallow_sacrum():
    # Four whole bodies under the top one; the caudal-most, a tilted sacrum, reaches only
    # 15 mm in front of the canal on its mid-sagittal slice; the three next below the top
    # body reach 30 mm; the one right below it holds tissue in front (38 mm).
    bodies = np.zeros((60, 193, 40), np.int32)
    bodies[11:26, 5:30, 8:33] = 1  # the shallow sacrum
    for label, start in ((2, 38), (3, 71)):
        bodies[11:41, start : start + 25, 8:33] = label
    bodies[11:49, 104:129, 8:33] = 4  # the body below the top one, with tissue in front
    bodies[11:41, 137:162, 8:33] = 5  # the top body
    bodies[11:56, 166:193, 8:33] = 5  # tissue above it, up to the upper edge
    bodies[41:56, 137:193, 8:33] = 5  # tissue in front of it, joining the two
    image = np.full(bodies.shape, 100.0)
    image[:, 162:166, :] = 20.0  # the top body's superior endplate
    out, notes = cut_back_top(bodies, image, np.full(193, FRONT), MIDLINE, SPACING, smallest=True)
    top = out == 5
    assert len(notes) == 1 and "cut back" in notes[0]
    depth = np.flatnonzero(top.any(axis=(1, 2))).max()
    assert 40 <= depth <= 42  # bodies 2 and 3: 30 + 2 mm, not the sacrum's 15 + 2 mm


def test_top_body_kept_is_cut_to_a_bodys_rounded_front():
    bodies, image, front = _column()
    box, _ = cut_back_top(bodies, image, front, MIDLINE, SPACING)
    out, notes = cut_back_top(bodies, image, front, MIDLINE, SPACING, rounded=True)
    top, boxed = out == 4, box == 4
    assert len(notes) == 1 and "rounded front cut" in notes[0]
    assert np.all(top <= boxed)  # only voxels of the box's cut are taken away
    # In front of the middle of the depth it may reach (10 + 32 / 2), the corners of the box
    # are cut; behind it and along the midline in front, the box's cut is kept.
    row = 115
    assert boxed[40, row, 9] and not top[40, row, 9]  # an anterolateral corner
    assert top[40, row, 20] and top[12, row, 9]  # the front at the midline; a posterior corner
    assert np.array_equal(top[:26], boxed[:26])
    assert np.array_equal(out == 3, bodies == 3)  # the other bodies as they were


def test_rounded_front_keeps_no_segment_the_box_would_drop():
    bodies, image, front = _column()
    bodies[bodies == 4] = 0
    bodies[11:56, 100:160, 2:39] = 4  # the top body in tissue above, in front, beside, below
    # Cut to the bodies' depth and width, 1.43 times the body below: too large, dropped.
    # Its rounded part alone would be under 1.3 times, but the decision is the box's.
    limit = 1.3 * (bodies == 3).sum()
    rounded = rounded_front(bodies.shape, front, MIDLINE, 32.0, 14.0)
    assert ((bodies == 4) & rounded)[11:43, 100:129, 6:35].sum() < limit
    for kept in (False, True):
        out, notes = cut_back_top(bodies, image, front, MIDLINE, SPACING, rounded=kept)
        assert notes == [] and np.array_equal(out, bodies)
