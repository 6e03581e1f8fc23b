"""The top vertebra cut into its body by the image's upper edge (a STIR or a T2 alone).

(autoseg/cut_top.py; ``AutosegParameters.suppressed_cut_top`` and ``t2_cut_top``.)
Synthetic canonical arrays (anterior, superior, right) as in
``tests/test_autoseg_edge_disc.py``: a column of box bodies 26 mm tall, discs of 10 mm,
4 mm slices.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
import bmetoolkit.spine.autoseg.cut_top as cut_top
from bmetoolkit.spine.autoseg.checks import relabelled
from bmetoolkit.spine.autoseg.cut_top import (
    MAX_HEIGHT_SHARE,
    NEAREST_DISCS,
    WHOLE_BODY_MAX_SHARE,
    add_cut_top,
)
from bmetoolkit.spine.autoseg.params import AutosegParameters
from tests.helpers import record_calls, segment_small_phantom_without_t1
from tests.test_autoseg_edge_disc import DEPTH, FACTOR, HEIGHT, MIDLINE, SPACING, _column


def _sliver_lost(in_view: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column whose top body (1) has ``in_view`` mm inside the upper edge; the bodies
    found without it (relabelled 1..4), the marrow (every body) and the column."""
    column = _column(above=in_view - HEIGHT)
    bodies = relabelled(np.where(column == 1, 0, column), [2, 3, 4, 5])
    return bodies, column > 0, column


def test_the_sliver_above_a_disc_is_added_as_a_body():
    bodies, marrow, column = _sliver_lost()
    added, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR)
    assert len(notes) == 1 and "was added" in notes[0]
    assert int(added.max()) == 5
    assert np.array_equal(added == 5, column == 1)
    assert np.array_equal(added[added < 5], bodies[added < 5])


def test_the_sliver_s_disc_is_read_against_the_nearest_discs_below(monkeypatch):
    """Discs grow thicker down the column: the sliver's disc is compared with the
    :data:`NEAREST_DISCS` next below it (the edge-disc check's ``nearest``)."""
    calls = record_calls(monkeypatch, cut_top, "drop_without_disc_at_top")
    bodies, marrow, _ = _sliver_lost()
    add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR)
    assert len(calls) == 1 and calls[0][1] == {"nearest": NEAREST_DISCS}


def test_what_is_added_keeps_within_the_top_segment_s_reach_in_front_of_the_canal():
    """The column's curve moves the cut vertebra 8 mm backwards against the body below: the
    section it is read in holds 8 mm of marrow-like tissue in front of it. Given the
    canal's front per row, the part further in front than the body below reaches (plus
    2 mm) is left out; without it, the tissue is added with the vertebra."""
    bodies, marrow, column = _sliver_lost()
    rows = np.flatnonzero((column == 1).any(axis=(0, 2)))
    sliver = np.zeros_like(marrow)
    sliver[22 : 22 + DEPTH, rows[0] :, 1:8] = True  # the vertebra, 8 mm further back
    tissue = np.zeros_like(marrow)
    tissue[22 + DEPTH : 30 + DEPTH, rows[0] :, 1:8] = True  # in front of it
    marrow = (marrow & (column != 1)) | sliver | tissue
    front = np.full(bodies.shape[1], 28.0)  # the canal's front, just behind the bodies
    front[rows[0] :] = 20.0  # ... and 8 mm further back at the cut vertebra
    loose, _ = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR)
    assert (loose[tissue] == 5).all()
    added, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR, front=front)
    assert "was added" in notes[0]
    assert (added[sliver & (loose == 5)] == 5).all()
    # The body below reaches 30 + DEPTH - 1 - 28 = 33 mm in front of the canal: with the
    # 2 mm margin, 35 mm in front of the cut vertebra's canal front (20), AP 55 at most.
    ap = np.arange(tissue.shape[0])[:, None, None]
    assert (added[tissue & (ap <= 55)] == 5).all()
    assert (added[tissue & (ap > 55)] == 0).all() and (tissue & (ap > 55)).any()


def test_tissue_against_the_top_body_is_not_added():
    """Marrow-like tissue right above a whole top body, up to the edge: no disc."""
    column = _column()
    marrow = column > 0
    top = int(np.flatnonzero((column == 1).any(axis=(0, 2)))[-1])
    marrow[30 : 30 + DEPTH, top + 1 :, 1:8] = True
    added, notes = add_cut_top(column, marrow, MIDLINE, SPACING, FACTOR)
    assert len(notes) == 1 and "not added" in notes[0] and "no disc" in notes[0]
    assert np.array_equal(added, column)


def test_marrow_above_a_disc_up_to_a_whole_body_high_is_added():
    """16 of the body's 26 mm above a disc, over the section: a vertebra cut by the edge
    (from a STIR alone half a body was the limit until session 43; the share is a
    parameter)."""
    bodies, marrow, column = _sliver_lost(in_view=16)
    added, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR)
    assert MAX_HEIGHT_SHARE == 1.0
    assert len(notes) == 1 and "was added" in notes[0]
    assert np.array_equal(added == 5, column == 1)
    kept, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR, max_height_share=0.5)
    assert len(notes) == 1 and "too tall" in notes[0]
    assert np.array_equal(kept, bodies)


def test_marrow_taller_than_the_body_below_is_not_added():
    """Above a disc, over the section, but 30 mm up to the edge against a 26 mm body."""
    bodies, marrow, column = _sliver_lost()
    rows = np.flatnonzero((column == 1).any(axis=(0, 2)))
    taller = 30 - len(rows)
    marrow = np.pad(marrow, ((0, 0), (0, taller), (0, 0)), mode="edge")
    bodies = np.pad(bodies, ((0, 0), (0, taller), (0, 0)))
    added, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR)
    assert len(notes) == 1 and "too tall" in notes[0]
    assert np.array_equal(added, bodies)


def test_a_strip_narrower_than_the_section_is_not_added():
    """Above a disc but over a fifth of the body's depth only: no body's section."""
    bodies, marrow, column = _sliver_lost()
    marrow[column == 1] = False
    rows = np.flatnonzero((column == 1).any(axis=(0, 2)))
    marrow[30 : 30 + DEPTH // 5, rows[0] :, 1:8] = True
    added, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR)
    assert len(notes) == 1 and "too narrow" in notes[0]
    assert np.array_equal(added, bodies)


def _two_lost_joined(in_view: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column of six whose top body (1), ``in_view`` mm inside the upper edge, and the
    whole body below it (2) were both missed, their marrow joined across the disc by a
    strip on one lateral slice; the bodies found (relabelled 1..4), the marrow, the column."""
    column = _column(n=6, above=in_view - HEIGHT)
    bodies = relabelled(np.where(column <= 2, 0, column), [3, 4, 5, 6])
    marrow = column > 0
    rows = np.flatnonzero((column == 2).any(axis=(0, 2)))
    marrow[40:46, rows[-1] + 1 :, 1] = True  # the bridge through the disc, up to body 1
    return bodies, marrow, column


@pytest.mark.parametrize("share", [MAX_HEIGHT_SHARE, 0.5])
def test_a_whole_body_joined_to_the_sliver_above_it_is_split_at_their_disc(share):
    """The candidate is 1.6 bodies tall: the whole body below the disc inside it is added;
    the sliver above it is read again with the same share (16 mm of disc and sliver over
    a 26 mm body: kept, and too tall for a share of half a body)."""
    bodies, marrow, column = _two_lost_joined()
    added, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR, share)
    assert "was split at the disc" in notes[0]
    assert np.array_equal(added == 5, column == 2)  # the whole body, exactly
    assert np.array_equal(added[added < 5], bodies[added < 5])
    if share == MAX_HEIGHT_SHARE:
        assert len(notes) == 2 and "was added" in notes[1]
        assert np.array_equal((added == 6) & (column > 0), column == 1)
    else:
        assert len(notes) == 2 and "too tall" in notes[1] and int(added.max()) == 5


def test_a_tall_candidate_whose_part_below_the_disc_is_no_body_is_not_split():
    """The same with the disc below body 2 filled too: the run below the bridged disc is
    36 mm against a 26 mm body (over :data:`WHOLE_BODY_MAX_SHARE`), not one vertebra."""
    bodies, marrow, column = _two_lost_joined()
    rows = np.flatnonzero((column == 2).any(axis=(0, 2)))
    marrow[30 : 30 + DEPTH, rows[0] - HEIGHT : rows[0], 1:8] = True  # over the disc below
    added, notes = add_cut_top(bodies, marrow, MIDLINE, SPACING, FACTOR)
    assert 36 / HEIGHT > WHOLE_BODY_MAX_SHARE
    assert len(notes) == 1 and "too tall" in notes[0]
    assert np.array_equal(added, bodies)


def test_nothing_is_added_when_the_top_segment_reaches_the_edge():
    column = _column(above=-12)
    added, notes = add_cut_top(column, column > 0, MIDLINE, SPACING, FACTOR)
    assert notes == [] and np.array_equal(added, column)


@pytest.mark.parametrize("stir_alone", [True, False])
@pytest.mark.parametrize("on", [True, False])
def test_segment_bodies_reads_it_from_a_stir_or_a_plain_t2_alone(monkeypatch, stir_alone, on):
    """Wired into :func:`segment_bodies` without a T1, each path with its own switch."""
    calls = record_calls(monkeypatch, autoseg, "add_cut_top")
    params = AutosegParameters(
        suppressed_cut_top=on and stir_alone, t2_cut_top=on and not stir_alone
    )
    segment_small_phantom_without_t1(stir_alone, params)
    assert len(calls) == (1 if on else 0)
    # the other path's switch alone does not run it
    calls.clear()
    other = AutosegParameters(suppressed_cut_top=not stir_alone, t2_cut_top=stir_alone)
    segment_small_phantom_without_t1(stir_alone, other)
    assert calls == []


@pytest.mark.parametrize("reach", [True, False])
def test_segment_bodies_gives_the_canal_s_front_with_fluid_cut_top_reach(monkeypatch, reach):
    calls = record_calls(monkeypatch, autoseg, "add_cut_top")
    segment_small_phantom_without_t1(False, AutosegParameters(fluid_cut_top_reach=reach))
    assert len(calls) == 1
    front = calls[0][1]["front"]
    assert (front is not None) == reach
    if reach:
        assert front.ndim == 1 and front.size == calls[0][0][0].shape[1]  # one per SI row
