"""A body from a fat-suppressed image alone ends at its endplates (autoseg/disc_ends.py).

Synthetic canonical arrays (anterior, superior, right): bodies 26 mm tall every 32 mm;
marrow and annulus alike (100), endplates dark (10). A body that took the disc above or
below it runs on past its dark endplate line; the part beyond is disc.
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.disc_ends import cut_at_end_lines

SPACING = np.array([1.0, 1.0, 3.0])
LOWS = (2, 34, 66, 98)  # each body's first (inferior) row


def _column() -> tuple[np.ndarray, np.ndarray]:
    """Four bodies (rows ``low`` .. ``low + 25``) over 5 slices, their endplates dark."""
    bodies = np.zeros((30, 132, 5), np.int32)
    image = np.full(bodies.shape, 100.0, np.float32)
    for k, low in enumerate(LOWS):
        bodies[5:25, low : low + 26] = k + 1
        image[5:25, low] = image[5:25, low + 25] = 10.0
    return bodies, image


def _rows(bodies: np.ndarray, label: int) -> tuple[int, int]:
    rows = np.flatnonzero((bodies == label).any(axis=(0, 2)))
    return int(rows[0]), int(rows[-1])


def test_the_disc_a_body_took_above_its_endplate_is_cut_off():
    bodies, image = _column()
    bodies[5:25, 92:98] = 3  # body 3 (rows 66-91) took the disc up to body 4
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 1
    assert _rows(out, 3) == (66, 91)  # the endplate row 91 stays with the body
    assert not (out[:, 92:98] > 0).any()  # on every slice, lateral ones too
    for label in (1, 2, 4):
        assert np.array_equal(out == label, bodies == label)


def test_the_disc_a_body_took_below_its_endplate_is_cut_off():
    bodies, image = _column()
    bodies[5:25, 60:66] = 3  # body 3 took the disc below it
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 1 and _rows(out, 3) == (66, 91)


def test_bodies_ending_at_their_endplates_are_left_as_they_are():
    bodies, image = _column()
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 0 and np.array_equal(out, bodies)


def test_a_dark_line_across_the_middle_of_a_body_is_not_an_endplate():
    bodies, image = _column()
    image[5:25, 79] = 10.0  # a fracture line halfway up body 3, beyond the end windows
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 0 and np.array_equal(out, bodies)


def test_without_a_dark_line_the_body_is_left_as_it_is():
    bodies, image = _column()
    bodies[5:25, 92:98] = 3
    image[5:25, 91] = 100.0  # the endplate lost to partial volume
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 0 and np.array_equal(out, bodies)


def test_the_rule_is_on_by_default_and_can_be_switched_off():
    assert AutosegParameters().suppressed_disc_ends is True
    assert AutosegParameters(suppressed_disc_ends=False).suppressed_disc_ends is False


def test_fatty_marrow_beyond_a_dark_band_is_not_cut_as_disc():
    bodies, image = _column()
    # a Modic II change along body 3's superior endplate: fatty marrow, dark on a STIR,
    # 7 rows deep; its dark band is a line, and what lies beyond it is the same fat
    image[5:25, 84:91] = 40.0
    image[5:25, 86] = 10.0
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 0 and np.array_equal(out == 3, bodies == 3)
    # the same band with a disc beyond (as bright as marrow) is cut there
    bodies[5:25, 92:98] = 3
    image[5:25, 84:91], image[5:25, 91] = 100.0, 10.0
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 1 and _rows(out, 3) == (66, 91)


def test_a_disc_beyond_the_line_is_cut_though_its_median_is_under_the_marrows():
    """Body 3 took the disc above it (rows 92-97): its annulus a little darker than the
    marrow (90 against 100), so the part beyond the endplate reads, by its median, like
    fatty marrow; but its nucleus (250) is brighter than any marrow, and fat is darker
    throughout: the disc is cut off (tuning seeds 91, 99, 177 from a STIR alone)."""
    bodies, image = _column()
    bodies[5:25, 92:98] = 3
    image[5:25, 92:98] = 90.0
    image[10:20, 93:97] = 250.0
    out, cut = cut_at_end_lines(bodies, image, 2.0, SPACING)
    assert cut == 1 and _rows(out, 3) == (66, 91)
    for label in (1, 2, 4):
        assert np.array_equal(out == label, bodies == label)
