"""Fluid open to the canal stays out of the bodies (no T1)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.bodies import drop_canal_fluid
from bmetoolkit.spine.autoseg.checks import drop_off_midline
from bmetoolkit.spine.autoseg.levels import assign_levels
from tests.test_autoseg import LORDOSIS, _shapes
from tests.test_autoseg import SPACING as LEVEL_SPACING

SPACING = np.array([1.0, 1.0, 1.0])


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canal (AP 10-19), dark posterior wall (20), body (21-49) over SI 10-39, LR 0-19."""
    image = np.full((60, 50, 20), 40.0, np.float32)
    canal = np.zeros(image.shape, bool)
    canal[10:20] = True
    image[canal] = 200.0
    bodies = np.zeros(image.shape, np.int32)
    bodies[20:50, 10:40] = 1
    image[21:50, 10:40] = 90.0
    image[20, 10:40] = 15.0  # the posterior cortex
    return image, canal, bodies


def test_fluid_open_to_the_canal_leaves_the_body():
    image, canal, bodies = _scene()
    image[20:24, 12:15, 5:8] = 180.0  # CSF through the wall into the corner: open
    image[30:34, 25:28, 5:8] = 180.0  # a lesion as bright, behind the intact cortex
    out = drop_canal_fluid(bodies, image, canal, 0.7)
    assert not out[20:24, 12:15, 5:8].any()
    assert (out[30:34, 25:28, 5:8] == 1).all()
    assert (out > 0).sum() == (bodies > 0).sum() - 4 * 3 * 3


def test_fluid_darker_than_the_fraction_or_the_rule_off_stays():
    image, canal, bodies = _scene()
    image[20:24, 12:15, 5:8] = 130.0  # edema-bright (under 0.7 x 200) at the wall
    assert (drop_canal_fluid(bodies, image, canal, 0.7) == bodies).all()
    image[20:24, 12:15, 5:8] = 180.0
    assert (drop_canal_fluid(bodies, image, canal, 0.0) == bodies).all()


# --- the T2-alone level evidence (tuning seeds 12 and 16) --------------------------------------


@pytest.mark.parametrize("touches_top", [False, True])
def test_a_tall_top_segment_does_not_withhold_the_levels(touches_top):
    """The count upwards from the sacrum ends at the cranial-most body: its height cannot
    shift the levels below it (since session 19 it is left out whether or not the image's
    upper edge cuts it; see tests/test_autoseg_level_evidence.py)."""
    empty = np.zeros((80, 400, 10), bool)
    shapes = [replace(s, height_mm=26.0) for s in _shapes(LORDOSIS)]
    shapes[0] = replace(shapes[0], height_mm=70.0, touches_top=touches_top)
    result = assign_levels(shapes, empty, LEVEL_SPACING, AutosegParameters())
    assert result.evidence["is_sacrum"]
    assert result.anchor == "sacrum (S1)"
    assert list(result.levels.values())[-1] == "S1"


def test_a_segment_wholly_beside_the_midline_is_dropped():
    bodies = np.zeros((40, 60, 30), np.int32)
    bodies[10:30, 5:20, 8:22] = 1  # across the midline (slice 15)
    bodies[10:30, 25:40, 10:20] = 2
    bodies[10:30, 45:55, 24:30] = 3  # slices 24-29: 9 mm and more to the side
    kept, notes = drop_off_midline(bodies, 15.0, SPACING)
    assert set(np.unique(kept)) == {0, 1, 2}
    assert (kept[10:30, 45:55, 24:30] == 0).all()
    assert len(notes) == 1 and "beside the canal's midline" in notes[0]
