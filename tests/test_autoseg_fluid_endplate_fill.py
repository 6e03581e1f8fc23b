"""From a T2 or STIR alone, each body carried along SI to its endplate's dark cortex
(session 44).

Edema is brighter than marrow on a T2 and on a fat-suppressed image, so the marrow mask of
the paths without a T1 leaves a lesion at an endplate out of its body, and the analysis on
the automatic bodies misses it. ``fluid_endplate_fill_mm`` runs the endplate fill again,
with that reach, after the checks on those paths.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.bodies import fill_to_endplate
from tests.helpers import record_calls, segment_small_phantom_without_t1

LONG = 8.0  # the reach measured (the step is opt-in: 0 by default)


def test_the_long_fill_is_opt_in():
    assert AutosegParameters().fluid_endplate_fill_mm == 0.0


@pytest.mark.parametrize("stir_alone", [True, False])
@pytest.mark.parametrize("reach", [LONG, 0.0])
def test_the_long_fill_runs_without_a_t1_when_switched_on(monkeypatch, stir_alone, reach):
    calls = record_calls(monkeypatch, autoseg, "fill_to_endplate")
    segment_small_phantom_without_t1(stir_alone, AutosegParameters(fluid_endplate_fill_mm=reach))
    long_fills = [args for args, _ in calls if args[3] == LONG]
    assert len(long_fills) == (1 if reach > 0 else 0)
    assert calls  # the fill before the checks (2.5 mm) runs either way


def test_a_bright_band_at_an_endplate_is_added_up_to_the_dark_cortex():
    """A body (canonical: anterior, superior, right) whose marrow stops 5 voxels short of
    its endplate's dark cortex (a lesion band between): the default reach takes the band;
    the 2.5 mm fill before the checks does not reach the cortex, so it adds nothing."""
    spacing = np.array([1.0, 1.0, 4.0])
    bodies = np.zeros((20, 40, 5), np.int32)
    bodies[5:15, 10:20, 1:4] = 1  # marrow up to row 19
    dark = np.zeros(bodies.shape, bool)
    dark[5:15, 25, 1:4] = True  # the endplate's cortex at row 25: a band in rows 20-24
    long = fill_to_endplate(bodies, dark, spacing, LONG)
    assert (long[5:15, 20:26, 1:4] == 1).all()
    assert (long[:, 26:] == 0).all()
    assert np.array_equal(fill_to_endplate(bodies, dark, spacing, 2.5), bodies)
