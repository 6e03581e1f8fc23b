"""S1 joined to the tissue around it, cut back to S1 from a STIR alone.

(``AutosegParameters.suppressed_caudal_cut``: :func:`.oversized.cut_back_caudal`, the
plain T2 alone's cut, read on a fat-suppressed image alone.) The synthetic column of
``tests/test_autoseg_oversized.py`` with a STIR's contrasts: suppressed marrow darker than
the soft tissue around it, the cortical rim darker still; and the cut wired into
:func:`segment_bodies` from a STIR alone only when the parameter is on.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.spine.autoseg.oversized import cut_back_caudal
from bmetoolkit.spine.autoseg.params import AutosegParameters
from tests.helpers import record_calls, segment_small_phantom_without_t1
from tests.test_autoseg_oversized import MIDLINE, SPACING, _column, _dice


def test_s1_joined_to_tissue_is_cut_back_on_a_stir():
    bodies, t2, s1 = _column()
    stir = np.where(t2 == 100.0, 40.0, np.where(t2 == 90.0, 75.0, 8.0))  # marrow, tissue, rim
    # The tissue joined to S1 passed the marrow threshold: a little brighter than marrow.
    stir[(bodies == 5) & ~s1 & (t2 == 100.0)] = 46.0
    out, notes = cut_back_caudal(bodies, stir, MIDLINE, SPACING, AutosegParameters())
    assert len(notes) == 1
    assert _dice(out == 5, s1) > 0.9


@pytest.mark.parametrize("stir_alone", [True, False])
@pytest.mark.parametrize("on", [True, False])
def test_segment_bodies_cuts_the_caudal_segment_from_a_stir_alone_when_on(
    monkeypatch, stir_alone, on
):
    """From a STIR alone the cut is read only with ``suppressed_caudal_cut``; a STIR with a
    T2 (the T2 path, which reads the T2) is not affected by it."""
    calls = record_calls(monkeypatch, autoseg, "cut_back_caudal")
    params = AutosegParameters(suppressed_caudal_cut=on)
    stir, t2 = segment_small_phantom_without_t1(stir_alone, params)
    images = [args[1] for args, _ in calls]
    if stir_alone and not on:
        assert images == []
    else:
        assert images  # the STIR alone with the cut on, or the T2 path's own cut
        expected = stir if stir_alone else t2  # the image the bodies are read from
        assert all(np.shares_memory(image, expected) for image in images)
