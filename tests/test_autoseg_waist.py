"""From a fat-suppressed image alone, a body stops at its dark lateral wall (autoseg/waist.py).

Synthetic canonical arrays (anterior, superior, right): one body over 11 slices of 3 mm
(midline at slice 5), marrow 1.0. On its outermost slices the true section is an hourglass
(the body's waist): the dark cortex (0.4) runs as the hourglass' outline, with muscle
(1.2, under the 1.15-times-median cut of a whole section) in the concavity at mid-height.
The marrow mask took the full rectangle there.
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.spine.autoseg.suppressed import trim_bright_sections
from bmetoolkit.spine.autoseg.waist import cut_beyond_walls

SPACING = np.array([1.0, 1.0, 3.0])
PARAMS = AutosegParameters()
LATERAL = (0, 10)  # the outermost slices
WAIST = slice(10, 20)  # the rows at mid-height


def _waisted_body(muscle: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """The body's labels (a full box) and the image (an hourglass on the lateral slices)."""
    bodies = np.zeros((30, 30, 11), np.int32)
    bodies[5:25, 5:25, :] = 1
    rng = np.random.default_rng(2)
    image = (1.0 + rng.normal(0.0, 0.04, bodies.shape)).astype(np.float32)
    for k in LATERAL:
        image[5:10, WAIST, k] = muscle  # in front of the waist
        image[20:25, WAIST, k] = muscle  # behind it
        image[10, WAIST, k] = image[19, WAIST, k] = 0.4  # the wall
    return bodies, image


def _cut(bodies: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, int]:
    return cut_beyond_walls(
        bodies,
        image,
        5.0,
        SPACING,
        PARAMS.suppressed_wall_dark,
        PARAMS.suppressed_wall_bright,
        PARAMS.suppressed_wall_reach_mm,
        PARAMS.fluid_smooth_mm,
    )


def test_the_muscle_beyond_the_wall_at_the_waist_is_left_out():
    """The section-median cut of session 22 keeps these sections (their median is the
    marrow's); the wall rule takes out the muscle in front of and behind the waist."""
    bodies, image = _waisted_body()
    assert trim_bright_sections(bodies, image, 5.0, SPACING, 1.15)[1] == 0  # the old rule
    out, removed = _cut(bodies, image)
    assert removed == 2 * 2 * 5 * 10
    for k in LATERAL:
        assert not out[5:10, WAIST, k].any() and not out[20:25, WAIST, k].any()
        assert out[10:20, WAIST, k].all()  # the wall and the marrow between stay
        assert out[5:25, 5:10, k].all() and out[5:25, 20:25, k].all()  # the flared ends
    assert np.array_equal(out[:, :, 1:10], bodies[:, :, 1:10])


def test_marrow_before_a_dark_spot_is_kept():
    """A dark spot inside the marrow (a sclerotic island, noise) is found as a 'wall', but
    the marrow before it is not brighter than the body's own level: it stays."""
    bodies, image = _waisted_body()
    image[:] = 1.0
    image[8, 14, 0] = 0.3
    out, removed = _cut(bodies, image)
    assert removed == 0 and np.array_equal(out, bodies)


def test_a_row_whose_wall_is_not_seen_is_left_as_it_is():
    """Where the cortex is lost (partial volume, a gap), nothing tells muscle from marrow
    along that row from that end: it is kept; the other end and the other rows are cut."""
    bodies, image = _waisted_body()
    image[19, 12, 10] = 1.0  # a gap in the anterior wall of one row
    out, removed = _cut(bodies, image)
    assert out[20:25, 12, 10].all()  # in front of the gap: kept
    assert not out[5:10, 12, 10].any()  # behind the posterior wall of the same row: cut
    assert removed == 2 * 2 * 5 * 10 - 5


def test_the_mid_sagittal_slab_is_never_cut():
    bodies, image = _waisted_body()
    image[5:10, WAIST, 5] = 1.3  # muscle-like signal in front of a dark line at the midline
    image[10, WAIST, 5] = 0.3
    out, _ = _cut(bodies, image)
    assert out[:, :, 5].astype(bool).sum() == bodies[:, :, 5].astype(bool).sum()


def test_switched_off_the_bodies_are_unchanged():
    bodies, image = _waisted_body()
    out, removed = cut_beyond_walls(bodies, image, 5.0, SPACING, 0.0)
    assert removed == 0 and np.array_equal(out, bodies)
    assert AutosegParameters().suppressed_wall_dark > 0  # on by default
