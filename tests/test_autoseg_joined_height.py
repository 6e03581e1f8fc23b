"""Two bodies joined across a disc are told by the height on most mid-sagittal slices.

Tuning seed 220 from a STIR alone (session 34): every body found, but L3's segment reached
into the anterior annulus of both its discs on one slice beside the midline; its height on
any slice of the mid-sagittal slab was 1.84 times the median body's, over
``JOINED_HEIGHT_FACTOR`` (1.6), and every level was withheld ("two bodies may be joined").
On most of the slab's slices it is 1.24 times.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.levels import assign_levels, body_shapes
from tests.test_autoseg import LORDOSIS, SPACING, _shapes

EMPTY = np.zeros((80, 400, 10), bool)


def test_a_segment_reaching_into_its_discs_on_one_slice_is_not_taller_on_most():
    """Rows run caudal to cranial; five slices of 4.4 mm make the slab around slice 2."""
    bodies = np.zeros((40, 200, 5), np.int32)
    bodies[10:30, 10:40] = 1  # one body, 30 rows (24 mm)
    bodies[10:30, 50:80] = 2
    bodies[10:30, 42:88, 1] = 2  # into both its discs on one slice
    bodies[10:30, 100:170] = 3  # two bodies joined across a disc on every slice
    shapes = {s.label: s for s in body_shapes(bodies, 2.0, SPACING)}
    assert shapes[1].central_height_mm == pytest.approx(shapes[1].height_mm)
    assert shapes[2].height_mm == pytest.approx(46 * SPACING[1], abs=1.0)
    assert shapes[2].central_height_mm == pytest.approx(30 * SPACING[1], abs=1.0)
    assert shapes[3].central_height_mm == pytest.approx(shapes[3].height_mm)


def test_the_levels_are_named_when_the_tall_reading_is_on_one_slice_only():
    shapes = [replace(s, height_mm=26.0, central_height_mm=26.0) for s in _shapes(LORDOSIS)]
    shapes[4] = replace(shapes[4], height_mm=48.0, central_height_mm=32.0)
    named = assign_levels(shapes, EMPTY, SPACING, AutosegParameters())
    assert named.anchor == "sacrum (S1)"
    assert named.evidence["tallest_body_ratio"] == pytest.approx(32.0 / 26.0, abs=0.01)
    assert list(named.levels.values()) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    # Before (any slice): 1.85 times the median, every level withheld.
    off = AutosegParameters(joined_height_on_most_slices=False)
    withheld = assign_levels(shapes, EMPTY, SPACING, off)
    assert withheld.anchor is None
    assert withheld.evidence["levels_withheld"] == "two bodies may be joined"


def test_two_bodies_joined_on_most_slices_still_withhold_the_levels():
    shapes = [replace(s, height_mm=26.0, central_height_mm=26.0) for s in _shapes(LORDOSIS)]
    shapes[4] = replace(shapes[4], height_mm=62.0, central_height_mm=60.0)
    result = assign_levels(shapes, EMPTY, SPACING, AutosegParameters())
    assert result.anchor is None
    assert result.evidence["levels_withheld"] == "two bodies may be joined"
