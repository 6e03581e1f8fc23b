"""The disc below a top-edge segment read on most of the mid-sagittal slab's slices.

(autoseg/edge_disc.py, ``on_most_slices``; ``AutosegParameters.edge_disc_on_most_slices``,
a STIR alone.) Synthetic canonical label arrays (anterior, superior, right) as in
``tests/test_autoseg_edge_disc.py``: a column of box bodies 26 mm tall, discs of 10 mm,
4 mm slices; the slab within 6 mm of the midline holds five of them (indices 2-6).
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.spine.autoseg.edge_disc import column_discs, drop_without_disc_at_top
from bmetoolkit.spine.autoseg.params import AutosegParameters
from tests.helpers import record_calls, segment_small_phantom_without_t1
from tests.test_autoseg_edge_disc import DEPTH, FACTOR, HEIGHT, MIDLINE, PITCH, SPACING, _column


def _top_cut_with_a_reach(slices: slice) -> tuple[np.ndarray, np.ndarray]:
    """A column whose top body (1) the upper edge cuts, and the body below it (2)
    reaching up across the disc to 1 mm under it on ``slices`` (as tuning seed 200's T12
    on one slice of the slab); also the column without that reach."""
    column = _column(above=-12)
    bodies = column.copy()
    top = int(np.flatnonzero((column == 1).any(axis=(0, 2)))[0])
    bodies[30 : 30 + DEPTH, top - (PITCH - HEIGHT) : top - 1, slices] = 2
    return bodies, column


def test_a_reach_into_the_disc_on_one_slice_does_not_hide_the_disc():
    bodies, _ = _top_cut_with_a_reach(slice(4, 5))
    assert column_discs(bodies, MIDLINE, SPACING)[1][0] == pytest.approx(1.0)
    assert column_discs(bodies, MIDLINE, SPACING, on_most_slices=True)[1][0] == pytest.approx(
        PITCH - HEIGHT
    )
    dropped, notes = drop_without_disc_at_top(bodies, MIDLINE, SPACING, FACTOR)
    assert len(notes) == 1 and int(dropped.max()) == 4  # as before: the top body dropped
    kept, notes = drop_without_disc_at_top(bodies, MIDLINE, SPACING, FACTOR, on_most_slices=True)
    assert notes == []
    assert np.array_equal(kept, bodies)


def test_a_reach_on_most_slices_still_drops_the_top_segment():
    """On three of the five slab slices the segments lie against each other: no disc."""
    bodies, _ = _top_cut_with_a_reach(slice(2, 5))
    kept, notes = drop_without_disc_at_top(bodies, MIDLINE, SPACING, FACTOR, on_most_slices=True)
    assert len(notes) == 1 and "no disc" in notes[0]
    assert int(kept.max()) == 4


def test_tissue_against_the_top_body_is_dropped_on_most_slices_too():
    """Tissue right above the top body, up to the upper edge, on every slice."""
    column = _column()
    rows = np.flatnonzero(column.any(axis=(0, 2)))
    bodies = np.pad(column, ((0, 0), (0, 20), (0, 0)))
    bodies[26 : 26 + DEPTH + 8, rows[-1] + 1 :, 1:8] = 6
    kept, notes = drop_without_disc_at_top(bodies, MIDLINE, SPACING, FACTOR, on_most_slices=True)
    assert len(notes) == 1
    assert np.array_equal(kept > 0, np.pad(column, ((0, 0), (0, 20), (0, 0))) > 0)


@pytest.mark.parametrize("stir_alone", [True, False])
@pytest.mark.parametrize("on", [True, False])
def test_segment_bodies_reads_it_from_a_stir_alone_only(monkeypatch, stir_alone, on):
    """Wired into :func:`segment_bodies`: only without a T1 and a T2 and only when on."""
    calls = record_calls(monkeypatch, autoseg, "drop_without_disc_at_top")
    segment_small_phantom_without_t1(stir_alone, AutosegParameters(edge_disc_on_most_slices=on))
    seen = [a[5] if len(a) > 5 else k.get("on_most_slices", False) for a, k in calls]
    assert seen == [on and stir_alone]
