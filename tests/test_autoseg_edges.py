"""A segment at the image's upper or lower edge larger than a whole body is not a body."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg.checks import LARGE_AT_EDGE_FACTOR, drop_large_at_edges

SPACING = np.array([1.0, 1.0, 2.0])
#: Body pitch (mm), body height (mm) along SI, depth (mm) along AP.
PITCH, HEIGHT, DEPTH = 36, 26, 30


def _column(n: int = 6) -> np.ndarray:
    """``n`` bodies every 36 mm from the lower edge up to the upper edge (AP, SI, LR).

    Labels 1..n bottom up; body 1 is cut by the lower edge (its lower 10 mm outside the
    image), body ``n`` reaches the upper edge (cut there).
    """
    rows = (n - 1) * PITCH + HEIGHT - 10
    bodies = np.zeros((80, rows, 14), np.int32)
    for k in range(n):
        low = k * PITCH - 10
        bodies[20 : 20 + DEPTH, max(low, 0) : min(low + HEIGHT, rows), 4:10] = k + 1
    return bodies


def test_bodies_cut_by_the_edges_are_kept():
    bodies = _column()
    kept, notes = drop_large_at_edges(bodies, SPACING)
    assert notes == []
    assert np.array_equal(kept, bodies)


def test_the_top_body_with_the_tissue_above_and_in_front_is_dropped():
    bodies = _column()
    top = bodies.shape[1] - HEIGHT
    bodies[10 : 20 + DEPTH + 10, top - 6 :, 2:12] = 6  # tissue around the top body, to the edge
    kept, notes = drop_large_at_edges(bodies, SPACING)
    assert int(kept.max()) == 5
    assert (kept[:, top:] == 0).all()
    assert np.array_equal(kept[bodies < 6], bodies[bodies < 6])
    assert len(notes) == 1 and "upper edge" in notes[0]


def test_the_lowest_body_with_the_tissue_beside_it_at_a_cut_edge_is_dropped():
    bodies = _column()
    bodies[10 : 20 + DEPTH + 15, : HEIGHT - 10, 0:14] = 1  # as tall as before, far wider
    kept, notes = drop_large_at_edges(bodies, SPACING)
    assert int(kept.max()) == 5
    assert (kept[:, : HEIGHT - 10] == 0).all()
    assert len(notes) == 1 and "lower edge" in notes[0]


@pytest.mark.parametrize("factor, dropped", [(0.95, False), (1.05, True)])
def test_at_the_lower_edge_the_limit_is_relative_to_the_largest_body_no_edge_cuts(
    factor: float, dropped: bool
):
    bodies = _column()
    bodies[20 : 20 + DEPTH, 3 * PITCH - 10 : 3 * PITCH - 10 + HEIGHT, 2:12] = 4  # body 4 larger
    largest = int((bodies == 4).sum())
    bodies[bodies == 1] = 0
    target = round(factor * LARGE_AT_EDGE_FACTOR * largest)
    rows = -(-target // (60 * 14))  # rows of a 60 x 14 section that hold ``target``
    bodies[10:70, :rows, 0:14] = 1  # a segment at the lower edge, over twice body 2
    kept, notes = drop_large_at_edges(bodies, SPACING)
    assert (len(notes) == 1) == dropped
    assert int(kept.max()) == 6 - dropped
    assert not dropped or "lower edge" in notes[0]


@pytest.mark.parametrize("factor, dropped", [(0.95, False), (1.05, True)])
def test_at_the_upper_edge_the_limit_is_relative_to_the_body_below_it(factor: float, dropped: bool):
    bodies = _column()
    bodies[20 : 20 + DEPTH, PITCH - 10 : PITCH - 10 + HEIGHT, 2:12] = 2  # body 2 larger
    below = int((bodies == 5).sum())
    top = bodies.shape[1]
    bodies[bodies == 6] = 0
    target = round(factor * LARGE_AT_EDGE_FACTOR * below)
    rows = -(-target // (DEPTH * 10))  # rows of a 30 x 10 section that hold ``target``
    bodies[20 : 20 + DEPTH, top - rows :, 2:12] = 6  # a segment at the upper edge
    assert int((bodies == 6).sum()) < int((bodies == 2).sum())  # smaller than the largest
    kept, notes = drop_large_at_edges(bodies, SPACING)
    assert (len(notes) == 1) == dropped
    assert int(kept.max()) == 6 - dropped
    assert not dropped or "upper edge" in notes[0]


def test_a_large_segment_no_edge_cuts_is_left_to_the_other_checks():
    bodies = _column()
    mid = 2 * PITCH - 10
    bodies[10 : 20 + DEPTH + 10, mid : mid + HEIGHT, 2:12] = 3  # body 3, no edge, 2x
    kept, notes = drop_large_at_edges(bodies, SPACING)
    assert notes == []
    assert int(kept.max()) == 6


def test_a_whole_edge_body_is_kept_when_the_other_bodies_lost_marrow():
    bodies = _column()
    holes = np.zeros(bodies.shape, bool)
    holes[::2, ::2] = True  # the whole bodies keep a quarter of their voxels
    middle = (bodies > 1) & (bodies < 6)
    bodies[middle & ~holes] = 0
    kept, notes = drop_large_at_edges(bodies, SPACING)
    assert notes == []  # body 1 holds over twice their voxels, but is no larger
    assert np.array_equal(kept, bodies)
