"""Bodies reach the endplate a lesion hides: the endplate fill counted from the body's
surface, and the line of the neighbouring columns' endplate.

Issue 16: on the bundled sample study (T1 1.4 x 1.6 x 4.4 mm) the bodies stopped short of
the endplate wherever a lesion reached it (no voxel between lesion and disc is
cortex-dark). Small synthetic arrays on canonical axes (anterior, superior, right).
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.bodies import fill_to_endplate
from bmetoolkit.spine.autoseg.endplate_line import extend_to_endplate_line
from bmetoolkit.spine.autoseg.endplate_reach import endplate_reach_mm

COARSE = np.array([1.4, 1.6, 4.4])


def _bitten_body(top: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A body (label 1, AP 5-24, SI 8-``top``) whose superior endplate cortex (row ``top``)
    is dark except over a lesion in AP columns 11-16, where the body stops two rows short."""
    bodies = np.zeros((30, 40, 3), np.int32)
    bodies[5:25, 8 : top + 1] = 1
    dark = np.zeros(bodies.shape, bool)
    dark[5:25, top] = dark[5:25, 8] = True
    bodies[11:17, top - 1 : top + 1] = 0  # the lesion's rim and the endplate: left out
    dark[11:17, top] = False
    return bodies, dark


def test_a_bitten_endplate_is_extended_to_its_neighbours_line():
    bodies, dark = _bitten_body()
    out = extend_to_endplate_line(bodies, dark, COARSE, 3.5, 15.0)
    assert (out[11:17, 19:21] == 1).all()
    assert np.array_equal(out[:, 21:], bodies[:, 21:])  # nothing beyond the endplate
    assert ((out > 0) & (bodies == 0)).sum() == 6 * 2 * 3


def test_the_line_follows_a_tilted_endplate_and_rounds_towards_the_body():
    bodies = np.zeros((30, 40, 1), np.int32)
    dark = np.zeros(bodies.shape, bool)
    for ap in range(5, 25):  # the superior surface rises one row every four columns
        top = 20 + (ap - 5) // 4
        bodies[ap, 8 : top + 1] = 1
        dark[ap, top] = True
    bodies[11:17, 19:] = 0  # a lesion: these columns stop at row 18
    dark[11:17] = False
    out = extend_to_endplate_line(bodies, dark, COARSE, 6.5, 15.0)  # up to four rows
    # between column 10 (row 21) and column 17 (row 23): the line, rounded down
    expected = {11: 21, 12: 21, 13: 21, 14: 22, 15: 22, 16: 22}
    for ap, top in expected.items():
        assert np.flatnonzero(out[ap, :, 0]).max() == top


def test_no_line_beyond_the_last_dark_edge():
    """A rounded corner (columns before the first dark edge) is not squared off."""
    bodies, dark = _bitten_body()
    bodies[5:8, 18:21] = 0  # the corner columns end lower, their edge not dark
    dark[5:8, 20] = False
    out = extend_to_endplate_line(bodies, dark, COARSE, 3.5, 15.0)
    assert np.array_equal(out[5:8], bodies[5:8])


def test_a_concave_endplate_with_dark_edges_is_left_alone():
    bodies = np.zeros((30, 40, 1), np.int32)
    dark = np.zeros(bodies.shape, bool)
    for ap in range(5, 25):  # the centre lies two rows deeper than the rims
        top = 20 - (2 if 10 <= ap < 20 else 0)
        bodies[ap, 8 : top + 1] = 1
        dark[ap, top] = True
    assert np.array_equal(extend_to_endplate_line(bodies, dark, COARSE, 5.0, 30.0), bodies)


def test_the_extension_is_bounded():
    """At most ``max_mm``, never into another body, nothing across a gap over
    ``max_gap_mm``, nothing with ``max_mm`` 0."""
    bodies, dark = _bitten_body()
    one_row = extend_to_endplate_line(bodies, dark, COARSE, 1.6, 15.0)
    assert (one_row[11:17, 19] == 1).all() and (one_row[11:17, 20] == 0).all()
    neighbour = bodies.copy()
    neighbour[11:17, 20] = 2  # another body's voxels there
    out = extend_to_endplate_line(neighbour, dark, COARSE, 3.5, 15.0)
    assert (out[11:17, 20] == 2).all()
    assert np.array_equal(extend_to_endplate_line(bodies, dark, COARSE, 3.5, 8.0), bodies)
    assert np.array_equal(extend_to_endplate_line(bodies, dark, COARSE, 0.0, 15.0), bodies)


def test_the_fill_reaches_two_voxels_on_coarse_pixels():
    """On 1.6 mm rows a 2.5 mm reach is one voxel: a lesion voxel before the dark endplate is
    not crossed; with the reach at least two voxels it is. A disc of normal height (five
    rows, 8 mm) is not crossed, and on pixels up to 1.25 mm the reach is unchanged."""
    bodies = np.zeros((10, 40, 1), np.int32)
    bodies[2:8, 5:15] = 1
    dark = np.zeros(bodies.shape, bool)
    dark[2:8, 16] = True  # the endplate, one lesion voxel (row 15) beyond the body
    dark[2:8, 22] = True  # the next body's endplate, a disc above
    assert endplate_reach_mm(COARSE, 2.5, 2) == 3.2
    assert endplate_reach_mm(np.array([0.9, 1.2, 4.0]), 2.5, 2) == 2.5
    assert endplate_reach_mm(COARSE, 2.5, 0) == 2.5
    assert endplate_reach_mm(COARSE, 0.0, 2) == 0.0
    one = fill_to_endplate(bodies, dark, COARSE, 2.5)
    two = fill_to_endplate(bodies, dark, COARSE, endplate_reach_mm(COARSE, 2.5, 2))
    assert np.array_equal(one, bodies)
    assert (two[2:8, 15:17] == 1).all() and (two[:, 17:] == 0).all()


def test_the_fill_crosses_a_two_voxel_lesion_rim_on_pixels_of_about_1_mm():
    """On 1.06 mm rows (tuning seed 52's L1) a lesion leaves two voxels before the dark
    endplate that are neither marrow nor cortex-dark (the rim the lesion fill leaves out and
    the voxel straddling the lesion and the cortex): 2.5 mm is two steps and stops short;
    the default reach of three voxels takes them and the endplate. Where the body's own
    endplate shows no dark voxel, neither a disc of normal height (8 rows, 8.5 mm) nor a
    thin one (5 rows beyond the edge) is crossed."""
    from bmetoolkit.spine.autoseg import AutosegParameters, _endplates_reached

    spacing = np.array([1.0, 1.06, 4.0])
    bodies = np.zeros((10, 40, 1), np.int32)
    bodies[2:8, 5:15] = 1
    dark = np.zeros(bodies.shape, bool)
    dark[2:8, 17] = True  # the endplate, beyond two lesion voxels (rows 15-16)
    dark[2:8, 25] = True  # the next body's endplate, a disc above
    assert np.array_equal(fill_to_endplate(bodies, dark, spacing, 2.5), bodies)
    assert endplate_reach_mm(spacing, 2.5, AutosegParameters().endplate_fill_min_voxels) == 3.18
    dark[7, 17] = False  # one column whose own endplate shows no dark voxel
    reached = _endplates_reached(bodies, dark, spacing, AutosegParameters())
    assert reached is not None
    assert (reached[2:7, 15:18] == 1).all() and (reached[:, 18:] == 0).all()
    assert (reached[7, 15:] == 0).all()  # the next endplate, 11 rows on, is out of reach
    assert np.array_equal(reached[:2], bodies[:2]) and np.array_equal(reached[8:], bodies[8:])
    dark[7, 19] = True  # a thin disc: the next body's endplate 5 rows (5.3 mm) beyond the edge
    crossed = _endplates_reached(bodies, dark, spacing, AutosegParameters())
    assert crossed is not None and (crossed[7, 15:] == 0).all()  # beyond three voxels
    two = AutosegParameters(endplate_fill_min_voxels=2)
    assert _endplates_reached(bodies, dark, spacing, two) is None  # 2.5 mm: nothing more
