"""From a fat-suppressed image alone, a disc between two bodies is dropped, and two bodies
that touch are cut at a faint endplate (autoseg/column_fit.py).

Synthetic canonical label arrays (anterior, superior, right), 1 mm voxels, the canal's
midline at slice 4 of 9: a lumbar-like column of bodies 25 mm tall and 30 mm deep with
discs of 10 mm between them, cranial to caudal. A degenerated disc taken for a body on a
STIR is as wide and as deep as the bodies and lies against both of them.
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.checks import drop_in_disc_spaces
from bmetoolkit.spine.autoseg.column_fit import cut_touching_ends, drop_unfit, mid_sagittal_depths
from bmetoolkit.spine.autoseg.disc_ends import cut_at_end_lines

SPACING = np.ones(3)
MIDLINE = 4.0


def _column(rows: list[tuple[int, int]], depth: int = 30) -> np.ndarray:
    """Segments 1..n over the SI rows given (cranial first), each ``depth`` deep."""
    bodies = np.zeros((40, 260, 9), np.int32)
    for label, (lo, hi) in enumerate(rows, start=1):
        bodies[5 : 5 + depth, lo:hi, 1:8] = label
    return bodies


# Six bodies 25 mm tall, 10 mm discs (pitch 35 mm), the cranial-most at the top.
BODIES = [(225, 250), (190, 215), (155, 180), (120, 145), (85, 110), (50, 75)]


def test_a_disc_against_both_its_bodies_is_dropped():
    """A 17 mm disc segment between two bodies with no gap to either (the bodies' own
    discs are 10 mm): dropped, with a note. The older disc-space check keeps it: it is 0.68
    of the median body's volume, over the 0.5 that check asks for a thin slab."""
    rows = [(225, 250), (190, 215), (155, 180), (138, 155), (113, 138), (78, 103)]
    bodies = _column(rows)
    assert int(drop_in_disc_spaces(bodies, SPACING)[0].max()) == 6  # kept by the old check
    kept, notes = drop_unfit(bodies, MIDLINE, SPACING)
    assert int(kept.max()) == 5 and len(notes) == 1 and "a disc" in notes[0]
    assert not kept[:, 138:155].any()  # the disc segment is gone
    assert np.array_equal(kept > 0, (bodies > 0) & (bodies != 4))


def test_a_short_body_with_its_discs_is_kept():
    """A body as short as that disc segment but with a disc above and below it is a body
    (a wedge-shaped or partly segmented one): kept."""
    rows = [*BODIES[:3], (128, 145), *BODIES[4:]]
    bodies = _column(rows)
    kept, notes = drop_unfit(bodies, MIDLINE, SPACING)
    assert notes == [] and np.array_equal(kept, bodies)


def test_a_body_whose_neighbours_took_both_its_discs_is_kept():
    """The segments above and below a short body reach down and up to it (each took the
    disc between them): it touches both, but they are two pitches apart, not one, so it is
    a vertebra of its own (tuning seed 177's L5)."""
    rows = [(225, 250), (190, 215), (145, 180), (127, 145), (85, 127), (50, 75)]
    bodies = _column(rows)
    kept, notes = drop_unfit(bodies, MIDLINE, SPACING)
    assert notes == [] and np.array_equal(kept, bodies)
    # The same short segment between two bodies one pitch apart is the disc between them.
    rows = [(225, 250), (190, 215), (145, 180), (127, 145), (100, 127), (65, 90)]
    assert len(drop_unfit(_column(rows), MIDLINE, SPACING)[1]) == 1


def test_the_end_segments_are_not_judged_as_discs():
    """The caudal-most segment lying against the body above it (S2 against S1 has no
    disc) is left to the levels step."""
    rows = [*BODIES[:5], (35, 50)]
    bodies = _column(rows)
    kept, notes = drop_unfit(bodies, MIDLINE, SPACING)
    assert notes == [] and np.array_equal(kept, bodies)


def test_a_segment_too_shallow_for_a_body_is_dropped():
    """A strip 15 mm deep below the caudal-most body among bodies 30 mm deep (muscle below
    S1 on tuning seed 64) is dropped; a body 24 mm deep (0.8) is kept, and so is a shallow
    cranial-most segment (a thoracic body, or one the image's edge cuts)."""
    bodies = _column(BODIES)
    bodies[bodies == 6] = 0
    bodies[5:20, 50:75, 1:8] = 6  # the strip
    bodies[29:35, 85:110, 1:8] = 0  # body 5 only 24 mm deep
    bodies[20:35, 225:250, 1:8] = 0  # body 1 only 15 mm deep
    depths = mid_sagittal_depths(bodies, MIDLINE, SPACING)
    assert depths[6] == depths[1] == 15.0 and depths[5] == 24.0
    kept, notes = drop_unfit(bodies, MIDLINE, SPACING)
    assert int(kept.max()) == 5 and len(notes) == 1 and "too shallow" in notes[0]
    assert np.array_equal(kept > 0, (bodies > 0) & (bodies != 6))


def test_too_few_segments_are_left_alone():
    """With three segments there is no column to compare with."""
    bodies = _column([(190, 215), (172, 190), (147, 172)])
    kept, notes = drop_unfit(bodies, MIDLINE, SPACING)
    assert notes == [] and np.array_equal(kept, bodies)


def _touching_column() -> tuple[np.ndarray, np.ndarray]:
    """Five bodies (SI rows 150-175, 115-140, 80-105, 45-70, 10-35) with 10 mm discs;
    body 2 took the disc below it down to body 3 (rows 105-115), and its inferior endplate
    (row 115) is dark in only 8 of its 20 pixels across: a faint line. Body 4 has as faint
    a dark row near its inferior end (row 50) and discs either side."""
    bodies = _column([(150, 175), (105, 140), (80, 105), (45, 70), (10, 35)], depth=20)
    rng = np.random.default_rng(3)
    image = (1.0 + rng.normal(0.0, 0.02, bodies.shape)).astype(np.float32)
    faint = np.arange(5, 25, 20 // 8)[:8]  # 8 of the 20 AP pixels
    image[faint, 115, :] = 0.3
    image[faint, 50, :] = 0.3
    return bodies, image


def test_two_bodies_that_touch_are_cut_at_a_faint_endplate():
    """The end cut of any body needs 0.3 of the line's band dark and leaves body 2 with the
    disc; where two segments touch the missing disc says one lies there, and the faint
    line (0.2 of the band) is enough. Body 4's faint line, with its discs in place, is not
    read; body 3 (no line near its top) is left as it is."""
    bodies, image = _touching_column()
    old, cut = cut_at_end_lines(bodies, image, MIDLINE, SPACING)
    assert cut == 0 and np.array_equal(old, bodies)
    out, cut = cut_touching_ends(bodies, image, MIDLINE, SPACING)
    assert cut == 1
    rows = np.flatnonzero((out == 2).any(axis=(0, 2)))
    assert rows[0] == 115 and rows[-1] == 139  # the endplate stays, the disc is gone
    for label in (1, 3, 4, 5):
        assert np.array_equal(out == label, bodies == label)


def _faint_line(bodies: np.ndarray, row: int) -> np.ndarray:
    """A noisy image of marrow 1.0 with a dark row (0.3) in 8 of 20 AP pixels at ``row``."""
    rng = np.random.default_rng(5)
    image = (1.0 + rng.normal(0.0, 0.02, bodies.shape)).astype(np.float32)
    image[np.arange(5, 25, 2)[:8], row, :] = 0.3
    return image


def test_touching_read_against_the_bodies_height_when_discs_were_taken():
    """Bodies 25 mm tall; body 2 took the disc below it down to 1 mm from body 3 (its
    endplate, a faint line, at row 115), and bodies 1 and 4 lie 2 mm from their
    neighbours: the column's median disc is 2 mm, so the 1 mm gap was not read as two
    segments touching (tuning seeds 75 and 99). Under a tenth of the median segment's
    height (2.5 mm) it is: body 2 loses the disc and keeps its endplate; the others, with
    no line near their ends, stay."""
    bodies = _column([(142, 167), (106, 140), (80, 105), (47, 78), (10, 35)], depth=20)
    image = _faint_line(bodies, 115)
    old, cut = cut_touching_ends(bodies, image, MIDLINE, SPACING)
    assert cut == 0 and np.array_equal(old, bodies)
    out, cut = cut_touching_ends(bodies, image, MIDLINE, SPACING, disc_taken=True)
    assert cut == 1
    rows = np.flatnonzero((out == 2).any(axis=(0, 2)))
    assert rows[0] == 115 and rows[-1] == 139
    for label in (1, 3, 4, 5):
        assert np.array_equal(out == label, bodies == label)


def test_a_segment_a_disc_taller_than_the_others_is_cut_at_its_faint_endplate():
    """Body 3 took the disc above it (rows 110-119; its superior endplate, a faint line,
    at row 110) and the body beyond that disc was lost (a 45 mm gap): no segment touches
    it, but at 1.4 times the median segment's height it holds a body and a disc (tuning
    seed 65's L5). The disc is cut off; the bodies of ordinary height are not read."""
    bodies = _column([(200, 225), (165, 190), (85, 120), (50, 75), (15, 40)], depth=20)
    image = _faint_line(bodies, 110)
    image[np.arange(5, 25, 2)[:8], 205, :] = 0.3  # a faint dark row inside body 1
    old, cut = cut_touching_ends(bodies, image, MIDLINE, SPACING)
    assert cut == 0 and np.array_equal(old, bodies)
    out, cut = cut_touching_ends(bodies, image, MIDLINE, SPACING, disc_taken=True)
    assert cut == 1
    rows = np.flatnonzero((out == 3).any(axis=(0, 2)))
    assert rows[0] == 85 and rows[-1] == 110
    for label in (1, 2, 4, 5):
        assert np.array_equal(out == label, bodies == label)
