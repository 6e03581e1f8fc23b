"""The dark posterior wall band on the bodies' lateral slices (autoseg/posterior.py)."""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.posterior import trim_posterior_band

SPACING = np.array([1.0, 1.0, 3.0])  # canonical (anterior, superior, right); index 0 posterior
MIDLINE = 3.0  # slices 0-6; slice 3 is the midline, 2-4 within 3 mm, the rest lateral


def _scene(
    seed: int = 0, wall_t1: float = 40.0, behind_t1: float = 100.0
) -> tuple[np.ndarray, np.ndarray]:
    """One body (AP 20-44, SI 10-34) with, on the lateral slices, a 2-voxel dark wall (its
    posterior cortex) at AP 18-19 and marrow behind it (AP 12-17, a pedicle's base) taken
    into the body."""
    rng = np.random.default_rng(seed)
    t1 = 100.0 + rng.normal(0.0, 3.0, (60, 45, 7))
    bodies = np.zeros(t1.shape, np.int32)
    bodies[20:45, 10:35, :] = 1
    lateral = [0, 1, 5, 6]
    for k in lateral:
        bodies[12:20, 12:33, k] = 1
        t1[18:20, :, k] = wall_t1
        t1[12:18, :, k] = behind_t1
    return bodies, t1


def test_the_wall_and_the_tissue_behind_it_are_cut_on_lateral_slices() -> None:
    bodies, t1 = _scene()
    out = trim_posterior_band(bodies, t1, MIDLINE, SPACING)
    for k in (0, 1, 5, 6):
        assert not out[:20, :, k].any()  # wall and what lies behind it
        assert (out[21:45, 10:35, k] == 1).all()  # the body in front stays (its edge row: noise)
    np.testing.assert_array_equal(out[:, :, 2:5], bodies[:, :, 2:5])  # mid-sagittal slab


def test_nothing_is_cut_without_a_dark_wall() -> None:
    # Where the body's cortex does not show between it and the pedicle, nothing is cut (the
    # mid-sagittal outline of confine_laterally stays the only limit).
    bodies, t1 = _scene(wall_t1=98.0)
    np.testing.assert_array_equal(trim_posterior_band(bodies, t1, MIDLINE, SPACING), bodies)


def test_a_wall_with_nothing_behind_it_is_left() -> None:
    bodies, t1 = _scene()
    bodies[12:18, :, :] = 0  # only the dark wall layer in the section's back
    out = trim_posterior_band(bodies, t1, MIDLINE, SPACING)
    np.testing.assert_array_equal(out, bodies)


def test_an_endplate_lesion_on_lateral_slices_stays() -> None:
    # Modic I/III darken the T1 along an endplate: a band across the whole depth of a few
    # rows, not a wall down the posterior edge.
    rng = np.random.default_rng(1)
    t1 = 100.0 + rng.normal(0.0, 3.0, (60, 45, 7))
    bodies = np.zeros(t1.shape, np.int32)
    bodies[20:45, 10:35, :] = 1
    t1[20:45, 28:35, :] = 45.0  # superior endplate lesion, every slice
    t1[20:24, 10:35, 0] = 45.0  # and a posterior-corner strip on one lateral slice
    out = trim_posterior_band(bodies, t1, MIDLINE, SPACING)
    np.testing.assert_array_equal(out, bodies)


def test_the_threshold_follows_the_body_s_own_marrow() -> None:
    # The same scene at a tenth of the signal (another scanner's scale): the same cut.
    bodies, t1 = _scene()
    np.testing.assert_array_equal(
        trim_posterior_band(bodies, t1 / 10.0, MIDLINE, SPACING),
        trim_posterior_band(bodies, t1, MIDLINE, SPACING),
    )


def _calls_on_small_phantom(on: bool, stir_alone: bool = False) -> list[bool]:
    """One entry per call of :func:`trim_posterior_band` while the small phantom's bodies
    are segmented from its T2 (or STIR) alone with ``t2_posterior_band`` ``on``."""
    from unittest import mock

    import bmetoolkit.spine.autoseg as autoseg
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    from bmetoolkit.spine.autoseg import AutosegParameters, segment_bodies
    from bmetoolkit.spine.autoseg.frame import CanonicalFrame
    from bmetoolkit.study import Study

    phantom = make_phantom(seed=3, config=PhantomConfig.small())
    study = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)
    frame = CanonicalFrame.of(study.grid)
    image = frame.view(np.asarray((study.stir if stir_alone else study.t2).data))
    calls: list[bool] = []

    def spy(bodies, picture, midline, spacing):
        calls.append(True)
        return trim_posterior_band(bodies, picture, midline, spacing)

    params = AutosegParameters(t2_posterior_band=on)
    with mock.patch.object(autoseg, "trim_posterior_band", spy):
        if stir_alone:
            segment_bodies(None, image, frame.spacing, params=params, fat_suppressed=True)
        else:
            segment_bodies(None, image, frame.spacing, t2=image, params=params)
    return calls


def test_a_plain_t2_alone_cuts_the_posterior_band_too() -> None:
    """``t2_posterior_band`` (session 30): the band is cut on a plain T2 alone, not when off
    and not on a STIR alone (whose marrow is darker than the tissue behind the wall)."""
    assert _calls_on_small_phantom(True)
    assert not _calls_on_small_phantom(False)
    assert not _calls_on_small_phantom(True, stir_alone=True)
