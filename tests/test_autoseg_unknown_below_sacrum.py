"""Segments left out below a sacrum are bodies again when the count from it fails.

Tuning seed 191 from a STIR alone (cut above the sacrum, session 34): L4 was missed, a
segment of soft tissue between L3 and L5 read 9.5 degrees over L3 and was taken for the
sacrum with the real L5 below it, at the image's lower edge, left out as S2; the gap above
that "sacrum" fits neither a disc nor a whole number of missing bodies, so the levels ended
unknown, but L5 stayed out of the output (its Dice 0.77 -> 0.05).
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies
from bmetoolkit.spine.autoseg.levels import (
    BodyShape,
    LevelAssignment,
    assign_levels,
    kept_below_unknown_sacrum,
)
from bmetoolkit.study import Study

SPACING = np.array([0.7, 0.8, 4.4])
BODY_MM, DISC_MM = 25.0, 10.0
EMPTY = np.zeros((80, 400, 10), bool)


def _column(gap_mm: float) -> list[BodyShape]:
    """T11 ... L3 (tilts of a lordosis), a segment tilted 10 degrees over L3 ``gap_mm``
    below it, and a segment at the image's lower edge right below that one (2 mm)."""
    tilts = [-8.0, -6.0, -4.0, -1.0, 3.0, 13.0, 14.0]
    heights = [BODY_MM] * 6 + [20.0]
    gaps = [DISC_MM] * 4 + [gap_mm, 2.0]
    bottoms, bottom = [], 0.0
    for k in range(len(tilts) - 1, -1, -1):  # caudal to cranial
        bottoms.insert(0, bottom)
        if k:
            bottom += heights[k] + gaps[k - 1]
    return [
        BodyShape(
            label=k + 1,
            centroid_mm=np.array([50.0, bottoms[k] + heights[k] / 2, 30.0]),
            angle_deg=tilts[k],
            touches_bottom=k == len(tilts) - 1,
            inferior_row=round(bottoms[k] / SPACING[1]),
            ap_range=(20, 60),
            disc_below_mm=gaps[k] if k < len(gaps) else float("nan"),
            height_mm=heights[k],
        )
        for k in range(len(tilts))
    ]


def _voxels(n: int) -> np.ndarray:
    """A label array with 100 voxels of each of segments 1..n."""
    return np.repeat(np.arange(n + 1), [0, *[100] * n])


def test_a_segment_left_out_below_a_sacrum_whose_count_fails_is_a_body_again():
    shapes = _column(DISC_MM + 0.5 * (BODY_MM + DISC_MM))  # half a level over the disc
    found = assign_levels(shapes, EMPTY, SPACING, AutosegParameters())
    # The level step's own reading, before the change: the tilted segment is the sacrum,
    # the one at the lower edge left out below it, the levels unknown.
    assert found.anchor is None
    assert found.evidence["is_sacrum"] and found.evidence["left_out_below_sacrum"] == [7]
    withheld = "a gap fits neither a disc nor a whole number of missing bodies"
    assert found.evidence["levels_withheld"] == withheld
    assert 7 not in found.levels
    kept = kept_below_unknown_sacrum(found, shapes, _voxels(7), AutosegParameters())
    assert list(kept.levels) == [1, 2, 3, 4, 5, 6, 7] and set(kept.levels.values()) == {None}
    assert kept.evidence["given_back_below_sacrum"] == [7]
    assert kept.evidence["left_out_below_sacrum"] == []
    assert not any("below the sacrum" in note for note in kept.notes)
    off = AutosegParameters(unknown_levels_keep_below_sacrum=False)
    assert kept_below_unknown_sacrum(found, shapes, _voxels(7), off) is found


def test_segments_below_a_sacrum_that_names_the_levels_stay_out():
    shapes = _column(DISC_MM)  # no level missing: the count stands
    found = assign_levels(shapes, EMPTY, SPACING, AutosegParameters())
    assert found.anchor == "sacrum (S1)" and found.levels[6] == "S1"
    assert found.evidence["left_out_below_sacrum"] == [7]
    assert kept_below_unknown_sacrum(found, shapes, _voxels(7), AutosegParameters()) is found


def test_a_segment_at_the_lower_edge_holding_tissue_beyond_a_body_stays_out():
    shapes = _column(DISC_MM + 0.5 * (BODY_MM + DISC_MM))
    found = assign_levels(shapes, EMPTY, SPACING, AutosegParameters())
    larger = np.repeat(np.arange(8), [0, *[100] * 6, 140])  # 1.4 times the segment above
    assert kept_below_unknown_sacrum(found, shapes, larger, AutosegParameters()) is found


@pytest.mark.parametrize("keep", [True, False])
def test_find_vertebral_bodies_keeps_them_in_its_output(monkeypatch, keep):
    """Wired into :func:`find_vertebral_bodies` on every path: a level step that leaves
    the caudal-most segment out below a sacrum and the levels unknown."""
    real = autoseg.assign_levels

    def failed_count(shapes, *args, **kwargs):
        named = real(shapes, *args, **kwargs)
        last = shapes[-1].label
        levels = {label: None for label in named.levels if label != last}
        return LevelAssignment(
            levels, None, 0.0, {"left_out_below_sacrum": [last]}, ["failed count"]
        )

    monkeypatch.setattr(autoseg, "assign_levels", failed_count)
    ph = make_phantom(seed=3, config=PhantomConfig.small())
    study = Study.from_images(ph.t1, t2=ph.t2, stir=ph.stir)
    params = AutosegParameters(unknown_levels_keep_below_sacrum=keep)
    out = find_vertebral_bodies(study, params)
    monkeypatch.setattr(autoseg, "assign_levels", real)
    every = find_vertebral_bodies(study, params)
    assert len(out.levels) == len(every.levels) - (0 if keep else 1)
    same = np.count_nonzero(out.bodies.data) == np.count_nonzero(every.bodies.data)
    assert bool(same) is keep
    assert set(out.levels.values()) == {None}
