"""Level evidence that holds when a body's outline is not its endplates (session 19)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.levels import OUTLINE_NOT_ENDPLATE_DEG, assign_levels
from tests.test_autoseg import LORDOSIS, SPACING, _shapes

PARAMS = AutosegParameters()
EMPTY = np.zeros((80, 400, 10), bool)


def _with_surfaces(surfaces: list[tuple[float, float]]):
    """The lordotic column of ``_shapes`` with each body's two surface inclinations."""
    shapes = _shapes([float(np.mean(pair)) for pair in surfaces])
    return [replace(s, endplates_deg=pair) for s, pair in zip(shapes, surfaces, strict=True)]


def _lordosis_surfaces() -> list[tuple[float, float]]:
    return [(angle, angle) for angle in LORDOSIS]


def test_s1_cut_flat_below_is_still_recognised_by_its_sacral_base():
    """S1's caudal outline where the segmentation stopped (flat, 0 degrees) is not an
    endplate: the mean of both surfaces (13.5) would hide the lumbosacral angle."""
    surfaces = _lordosis_surfaces()
    surfaces[-1] = (27.0, 0.0)
    result = assign_levels(_with_surfaces(surfaces), EMPTY, SPACING, PARAMS)
    assert result.anchor == "sacrum (S1)"
    assert result.evidence["lumbosacral_angle_deg"] == pytest.approx(12.0)
    assert list(result.levels.values())[-2:] == ["L5", "S1"]


def test_an_outline_agreeing_with_the_neighbours_is_no_sacrum():
    """A caudal L5 whose superior surface was bitten flat keeps the tilt of its inferior
    endplate, which agrees with L4 above: no lumbosacral angle, no anchor."""
    surfaces = _lordosis_surfaces()[:-1]
    surfaces[-1] = (-5.0, 15.0)  # the mean (5) against L4 (8) is no anchor either
    result = assign_levels(_with_surfaces(surfaces), EMPTY, SPACING, PARAMS)
    assert result.anchor is None
    assert result.evidence["lumbosacral_angle_deg"] == pytest.approx(7.0)


def test_a_wedge_shaped_l5_is_averaged_not_picked():
    """Surfaces a wedge apart (L5, 6 degrees) are both endplates: their mean is the tilt,
    so the lumbosacral angle is read against it, not against the closer one."""
    surfaces = _lordosis_surfaces()
    surfaces[-2] = (12.0, 18.0)
    assert 18.0 - 12.0 <= OUTLINE_NOT_ENDPLATE_DEG
    result = assign_levels(_with_surfaces(surfaces), EMPTY, SPACING, PARAMS)
    assert result.evidence["lumbosacral_angle_deg"] == pytest.approx(12.0)


def test_s1_with_its_sacral_base_bitten_is_read_on_the_column_s_trend():
    """S1's superior surface bitten by a lesion at its posterior-superior corner (tuning
    seed 69 on the T2 alone: 6.3 degrees against an inferior outline of 22.8). The body
    above (L5, 15) is closer to the bitten surface (8) than to the intact one (26), but the
    lordosis continued one level (L4 8 -> L5 15 -> 22) is closer to the intact one."""
    surfaces = _lordosis_surfaces()
    surfaces[-1] = (8.0, 26.0)
    result = assign_levels(_with_surfaces(surfaces), EMPTY, SPACING, PARAMS)
    assert result.anchor == "sacrum (S1)"
    assert result.evidence["lumbosacral_angle_deg"] == pytest.approx(11.0)
    assert list(result.levels.values())[-2:] == ["L5", "S1"]


def test_bodies_without_surface_angles_use_their_mean_angle():
    """Shapes built with a single angle (no surfaces measured) keep the old reading."""
    result = assign_levels(_shapes(LORDOSIS), EMPTY, SPACING, PARAMS)
    assert result.evidence["lumbosacral_angle_deg"] == pytest.approx(12.0)


@pytest.mark.parametrize("touches_top", [False, True])
def test_a_cranial_most_segment_of_two_bodies_is_left_out_and_the_rest_named(touches_top):
    """Two bodies joined at the top of the count (tuning seed 34 on the T2 alone: T11 joined
    to the front of T12) shift no level below them: the segment is left out, with a note,
    and the bodies below it are named from the sacrum."""
    shapes = [replace(s, height_mm=26.0) for s in _shapes(LORDOSIS)]
    shapes[0] = replace(shapes[0], height_mm=62.0, touches_top=touches_top)
    result = assign_levels(shapes, EMPTY, SPACING, PARAMS)
    assert result.anchor == "sacrum (S1)"
    assert result.evidence["left_out_at_top"] == [shapes[0].label]
    assert shapes[0].label not in result.levels
    assert list(result.levels.values()) == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert any("cranial-most segment is 2.4 times" in note for note in result.notes)


def test_two_bodies_joined_below_the_top_still_withhold_the_levels():
    shapes = [replace(s, height_mm=26.0) for s in _shapes(LORDOSIS)]
    shapes[1] = replace(shapes[1], height_mm=62.0)
    result = assign_levels(shapes, EMPTY, SPACING, PARAMS)
    assert result.anchor is None
    assert result.evidence["levels_withheld"] == "two bodies may be joined"
    assert result.evidence["left_out_at_top"] == []


def test_a_tall_top_segment_is_kept_when_no_sacrum_is_recognised():
    """Without levels nothing is counted, so the segment stays (bodies unchanged)."""
    shapes = [replace(s, height_mm=26.0) for s in _shapes(LORDOSIS[:-1])]
    shapes[0] = replace(shapes[0], height_mm=62.0)
    result = assign_levels(shapes, EMPTY, SPACING, PARAMS)
    assert result.anchor is None
    assert shapes[0].label in result.levels
