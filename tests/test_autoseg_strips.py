"""Segments that are not bodies: a strip along the column, a slab in a disc space."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg.checks import drop_in_disc_spaces, drop_too_tall
from bmetoolkit.spine.autoseg.levels import body_shapes

SPACING = np.array([1.0, 1.0, 2.0])
#: Body pitch (mm), body height (mm) along SI, rows start above the lower edge.
PITCH, HEIGHT, START = 36, 26, 10


def _column(n: int = 6) -> np.ndarray:
    """``n`` bodies 26 mm tall every 36 mm (canonical AP, SI, LR), labels 1..n bottom up."""
    bodies = np.zeros((60, START + n * PITCH + 10, 12), np.int32)
    for k in range(n):
        low = START + k * PITCH
        bodies[20:50, low : low + HEIGHT, 3:9] = k + 1
    return bodies


def test_a_strip_along_the_column_is_dropped_and_bodies_are_kept():
    bodies = _column()
    strip = bodies.max() + 1
    bodies[12:18, 40:200, 8:10] = strip  # behind the bodies, 160 mm tall, to one side
    kept, notes = drop_too_tall(bodies, SPACING)
    assert int(kept.max()) == 6
    assert (kept[12:18, 40:200, 8:10] == 0).all()
    assert len(notes) == 1 and "160 mm tall" in notes[0]


@pytest.mark.parametrize("bodies_joined", [2, 3])
def test_two_bodies_joined_are_not_a_strip_but_three_are(bodies_joined: int):
    bodies = _column()
    low = START + PITCH
    bodies[20:50, low : low + (bodies_joined - 1) * PITCH + HEIGHT, 3:9] = 2  # joined
    bodies = np.unique(bodies, return_inverse=True)[1].reshape(bodies.shape).astype(np.int32)
    kept, notes = drop_too_tall(bodies, SPACING)
    assert (len(notes) == 1) == (bodies_joined == 3)
    assert int(kept.max()) == int(bodies.max()) - (bodies_joined == 3)


def test_a_thin_slab_in_a_disc_space_is_dropped():
    bodies = _column()
    disc = START + 2 * PITCH + HEIGHT  # the 10 mm disc space above body 3
    bodies[22:48, disc - 2 : disc + 12, 3:9] = 7  # 14 mm tall, overlapping both endplates
    kept, notes = drop_in_disc_spaces(bodies, SPACING)
    assert int(kept.max()) == 6
    assert (kept[22:48, disc + 1 : disc + 9] == 0).all()
    assert len(notes) == 1 and "disc space" in notes[0]


def test_a_body_split_in_two_halves_and_edge_bodies_are_kept():
    bodies = _column()
    low = START + 3 * PITCH  # body 4 split into two halves with a 2 mm gap
    bodies[20:50, low + 14 : low + HEIGHT] = 0
    bodies[20:50, low + 14 : low + HEIGHT, 3:9] = 7
    bodies[20:50, low + 12 : low + 14] = 0
    bodies[20:50, 0:8, 3:9] = 8  # a body cut by the image's lower edge (8 mm tall)
    kept, notes = drop_in_disc_spaces(bodies, SPACING)
    assert notes == []
    assert int(kept.max()) == 8


@pytest.mark.parametrize("rows_short, cut", [(0, True), (2, True), (8, False)])
def test_a_top_body_within_3_mm_of_the_upper_edge_counts_as_cut(rows_short: int, cut: bool):
    bodies = _column(4)
    top = bodies.shape[1] - rows_short
    bodies[20:50, START + 3 * PITCH :, 3:9] = 0
    bodies[20:50, START + 3 * PITCH : top, 3:9] = 4  # the top body up to the edge, or short
    shapes = body_shapes(bodies, 6.0, SPACING)
    assert shapes[0].label == 4
    assert shapes[0].touches_top == cut
    assert not any(s.touches_top for s in shapes[1:])
