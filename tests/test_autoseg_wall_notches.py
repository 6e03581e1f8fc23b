"""Notches along SI in a body's outline are closed; nothing else is added.

Small synthetic arrays on canonical axes (anterior, superior, right): fast, no phantom.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.wall_notches import close_si_notches

SPACING = np.array([1.0, 1.0, 4.0])


def _body_with_a_waist() -> np.ndarray:
    """One body (AP 5-24, SI rows 2-25) with a 1-voxel-deep anterior waist over rows 5-22
    (18 mm) and a second body above a 6-row disc. Axis 0 runs anterior, axis 1 superior."""
    bodies = np.zeros((30, 40, 3), np.int32)
    bodies[5:25, 2:26] = 1
    bodies[24, 5:23] = 0  # the anterior waist: concave over most of the height
    bodies[5:25, 32:38] = 2
    return bodies


def test_a_notch_of_a_few_voxels_is_filled_and_nothing_else_changes():
    bodies = _body_with_a_waist()
    notched = bodies.copy()
    notched[5, 23:26] = 0  # the posterior-superior corner's last 3 rows: the body's end
    notched[6:9, 24:26] = 0  # the top 2 rows of 3 x 3 columns: the body's end too
    notched[12, 10:14] = 0  # a 4-row gap (4 mm: the tallest filled)
    notched[20:23, 3:5] = 0  # a 2-row gap above the inferior endplate's row, 3 x 3 columns
    closed, added = close_si_notches(notched, SPACING, 4.0)
    expected = bodies.copy()
    expected[5, 23:26] = 0  # at the body's end: not between two of its voxels
    expected[6:9, 24:26] = 0
    assert (closed == expected).all()
    assert added == int((expected > 0).sum() - (notched > 0).sum())


def test_the_waist_a_disc_and_another_body_are_left_alone():
    bodies = _body_with_a_waist()
    closed, added = close_si_notches(bodies, SPACING, 4.0)
    assert added == 0 and (closed == bodies).all()  # the waist (18 rows), the disc (6 rows)
    # A gap of another body's voxels is not filled across.
    bodies[10, 12:14] = 2
    closed, _ = close_si_notches(bodies, SPACING, 4.0)
    assert (closed[10, 12:14] == 2).all()


@pytest.mark.parametrize(
    "column",
    [[1, 0, 2, 0, 1], [1, 2, 0, 0, 1], [1, 2, 0, 1, 2], [1, 0, 2, 2, 0, 1]],
)
def test_a_gap_holding_another_body_is_not_filled(column):
    bodies = np.array(column, np.int32).reshape(1, -1, 1)
    closed, added = close_si_notches(bodies, SPACING, 4.0)
    assert added == 0 and (closed == bodies).all()


def test_two_bodies_notches_in_one_column_are_each_filled():
    bodies = np.array([2, 0, 2, 1, 0, 0, 1], np.int32).reshape(1, -1, 1)
    closed, added = close_si_notches(bodies, SPACING, 4.0)
    assert closed.ravel().tolist() == [2, 2, 2, 1, 1, 1, 1] and added == 3


@pytest.mark.parametrize(("si_mm", "longest"), [(1.0, 4), (0.5, 8), (1.2, 3), (5.0, 0), (0.4, 10)])
def test_the_tallest_gap_filled_is_given_in_mm(si_mm, longest):
    for rows in range(1, 10):
        bodies = np.zeros((1, 30, 1), np.int32)
        bodies[0, :5] = 1
        bodies[0, 5 + rows :] = 1
        _, added = close_si_notches(bodies, np.array([1.0, si_mm, 4.0]), 4.0)
        assert added == (rows if rows <= longest else 0), rows


def test_a_gap_of_exactly_max_mm_is_filled_where_the_division_is_inexact():
    si_mm = 5 / 29  # 5.0 / si_mm is 28.999... in floating point
    bodies = np.zeros((1, 40, 1), np.int32)
    bodies[0, :5] = 1
    bodies[0, 34:] = 1  # 29 rows between: 5.0 mm
    assert close_si_notches(bodies, np.array([1.0, si_mm, 4.0]), 5.0)[1] == 29


def test_zero_turns_it_off():
    assert AutosegParameters().si_notch_mm == 4.0
    bodies = np.zeros((1, 10, 1), np.int32)
    bodies[0, [0, 2]] = 1
    assert close_si_notches(bodies, SPACING, 0.0)[1] == 0


def test_on_a_phantom_the_step_only_adds_voxels_and_the_levels_are_read_without_them():
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    from bmetoolkit.spine.autoseg import find_vertebral_bodies
    from bmetoolkit.study import Study

    phantom = make_phantom(seed=5, lesions="random", config=PhantomConfig.small())
    study = Study.from_images(phantom.t1, stir=phantom.stir)
    # The steps around it off, so that this one alone tells the two runs apart (and is the
    # first to keep the bodies the levels are read on).
    alone = {"t1_posterior_wall_cortex": False, "endplate_fill_min_voxels": 0}
    off = find_vertebral_bodies(study, AutosegParameters(si_notch_mm=0.0, **alone))
    on = find_vertebral_bodies(study, AutosegParameters(**alone))
    before, after = np.asarray(off.bodies.data), np.asarray(on.bodies.data)
    changed = before != after
    assert (before[changed] == 0).all()  # nothing taken away, no body relabelled
    added = on.provenance["t1_marrow_evidence"]["si_notches_filled"]
    assert added == int(changed.sum()) > 0
    assert "si_notches_filled" not in off.provenance["t1_marrow_evidence"]
    assert on.provenance["level_evidence"] == off.provenance["level_evidence"]
