"""Segments that are not bodies: a strip along the column, a slab in a disc space."""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.spine.autoseg.checks import (
    drop_in_disc_spaces,
    drop_sharing_a_level,
    drop_too_tall,
    drop_without_room,
)
from bmetoolkit.spine.autoseg.levels import body_shapes
from bmetoolkit.spine.autoseg.params import AutosegParameters
from tests.helpers import record_calls, segment_small_phantom_without_t1

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


def _slab_beside_a_partial_body() -> tuple[np.ndarray, int]:
    """The column with body 3 found on its lower 12 mm only (its centroid moved down) and a
    slab 14 mm tall, a third of a body, in the disc space above it (label 7), and the
    slab's label."""
    bodies = _column()
    low = START + 2 * PITCH
    bodies[20:50, low + 12 : low + HEIGHT, 3:9] = 0
    disc = low + HEIGHT
    bodies[30:48, disc - 2 : disc + 12, 3:9] = 7
    return bodies, 7


def test_a_slab_between_bodies_one_pitch_apart_is_dropped_though_a_neighbour_is_partial():
    bodies, slab = _slab_beside_a_partial_body()
    assert drop_in_disc_spaces(bodies, SPACING)[1] == []  # 25 mm from body 3's centroid
    kept, notes = drop_without_room(bodies, SPACING)
    assert int(kept.max()) == 6 and not (kept[bodies == slab]).any()
    assert np.array_equal(kept > 0, (bodies > 0) & (bodies != slab))
    assert len(notes) == 1 and "no level fits between them" in notes[0]


def test_a_small_body_where_a_level_is_missing_and_split_halves_are_kept():
    """Between bodies two pitches apart a small segment is a body (a level would be
    missing without it); the two halves of a split body are each over half the mean of
    their neighbours."""
    bodies = _column()
    low = START + 3 * PITCH
    bodies[20:50, low : low + HEIGHT, 3:9] = 0
    bodies[30:42, low + 8 : low + 18, 3:9] = 4  # body 4 found as a small part of it
    assert drop_without_room(bodies, SPACING)[1] == []
    split = _column()
    split[20:50, low + 14 : low + HEIGHT, 3:9] = 7
    split[20:50, low + 12 : low + 14] = 0
    assert drop_without_room(split, SPACING)[1] == []


def test_tissue_wrapped_around_a_body_at_its_level_is_dropped():
    """A segment in front of body 4, 34 mm tall against its 26 mm, 26 of its rows body 4's."""
    bodies = _column()
    low = START + 3 * PITCH
    bodies[50:58, low - 4 : low + HEIGHT + 4, 3:9] = 7
    kept, notes = drop_sharing_a_level(bodies, SPACING)
    assert int(kept.max()) == 6 and np.array_equal(kept > 0, (bodies > 0) & (bodies != 7))
    assert len(notes) == 1 and "76% of its rows" in notes[0]


def test_a_body_beside_two_bodies_joined_is_kept():
    """Bodies 3 and 4 joined with the disc between them (62 mm tall, over 1.5 median
    segments): the smaller segment at body 4's level beside it is the body, kept."""
    bodies = _column()
    low = START + 2 * PITCH
    bodies[20:50, low : low + PITCH + HEIGHT, 3:9] = 3
    bodies[20:50, low + PITCH : low + PITCH + HEIGHT, 6:9] = 4  # body 4's right half apart
    kept, notes = drop_sharing_a_level(bodies, SPACING)
    assert notes == [] and np.array_equal(kept, bodies)


def test_a_body_sharing_rows_with_a_larger_segment_at_the_image_s_edge_is_kept():
    """A segment at the lower edge may be more than one body (the sacrum below S1 and the
    pelvis, tuning seed 13): a tilted S1 sharing most of its rows with it is kept."""
    bodies = _column()
    bodies[0:20, 0 : START + HEIGHT, :] = 7  # behind body 1, from the lower edge, larger
    kept, notes = drop_sharing_a_level(bodies, SPACING)
    assert notes == [] and np.array_equal(kept, bodies)


@pytest.mark.parametrize(
    "check, switch",
    [
        ("drop_without_room", "fluid_no_room_between"),
        ("drop_sharing_a_level", "fluid_one_per_level"),
    ],
)
@pytest.mark.parametrize("stir_alone", [True, False])
@pytest.mark.parametrize("on", [True, False])
def test_segment_bodies_runs_each_check_without_a_t1_by_its_switch(
    monkeypatch, check, switch, stir_alone, on
):
    calls = record_calls(monkeypatch, autoseg, check)
    segment_small_phantom_without_t1(stir_alone, AutosegParameters(**{switch: on}))
    assert len(calls) == (1 if on else 0)
