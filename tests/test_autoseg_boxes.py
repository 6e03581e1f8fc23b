"""The automatic bodies' transforms run on boxes around what they act on
(bmetoolkit.spine.autoseg.bodies.box_around): the same result as on the whole column."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bmetoolkit.spine.autoseg.bodies import add_cortex, box_around, fill_to_endplate
from bmetoolkit.spine.autoseg.params import AutosegParameters

SPACING = np.array([0.8, 1.0, 4.0])


def _bodies() -> np.ndarray:
    """Two box-shaped bodies with a lesion bite, one touching the array's edge."""
    bodies = np.zeros((60, 80, 9), np.int32)
    bodies[20:40, 10:30, 2:7] = 1
    bodies[22:40, 38:60, 1:8] = 2
    bodies[0:10, 70:80, 0:3] = 3  # at the array's corner
    bodies[25:30, 29, 3:5] = 0  # a bite at the endplate
    return bodies


def test_box_around_grows_the_bounding_box_within_the_array():
    mask = np.zeros((10, 10, 4), bool)
    mask[2:4, 5:9, 1] = True
    assert box_around(mask, (1, 2, 3)) == (slice(1, 5), slice(3, 10), slice(0, 4))
    assert box_around(np.zeros((3, 3, 3), bool), (1, 1, 1)) is None


def test_add_cortex_on_the_bodies_box_equals_the_whole_array_transform():
    bodies, params = _bodies(), AutosegParameters(cortex_mm=1.5)
    far, nearest = ndimage.distance_transform_edt(
        bodies == 0, sampling=(SPACING[0], SPACING[1], 1e3), return_indices=True
    )
    expected = np.where((bodies == 0) & (far <= 1.5), bodies[tuple(nearest)], bodies)
    assert np.array_equal(add_cortex(bodies, SPACING, params), expected)


def test_fill_to_endplate_reaches_the_dark_endplate_across_the_bite():
    """The bitten columns of body 1 (row 29) are filled up to the first dark endplate voxel
    (row 30, within 2.5 mm); a dark plane 5 rows beyond body 2 is out of reach."""
    bodies = _bodies()
    dark = np.zeros(bodies.shape, bool)
    dark[25:30, 30:32, 3:5] = True  # the endplate cortex above the bite
    dark[20:40, 64, 1:8] = True  # 5 mm above body 2: out of reach
    out = fill_to_endplate(bodies, dark, SPACING, 2.5)
    assert (out[25:30, 29:31, 3:5] == 1).all()
    assert (out[25:30, 31, 3:5] == 0).all()
    assert (out[:, 64] == 0).all()
    assert np.array_equal(out[bodies > 0], bodies[bodies > 0])
    assert ((out > 0) & (bodies == 0)).sum() == 20


def test_the_midline_regrowth_transforms_equal_the_whole_array_distances():
    """The in-plane depth per slice equals one 3D transform with a huge left-right spacing,
    and the dilation by the ball equals the distance to the seeds thresholded."""
    from bmetoolkit.spine.autoseg.midline import _ball, _in_plane_depth

    rng = np.random.default_rng(0)
    mask = ndimage.binary_opening(rng.random((40, 50, 7)) > 0.3)
    expected = ndimage.distance_transform_edt(mask, sampling=(SPACING[0], SPACING[1], 1e3))
    assert np.array_equal(_in_plane_depth(mask, SPACING), expected)
    seeds = rng.random((40, 50, 7)) > 0.995
    far = ndimage.distance_transform_edt(~seeds, sampling=SPACING)
    within = ndimage.binary_dilation(seeds, structure=_ball(3.0, SPACING))
    assert np.array_equal(within, far <= 3.0)
