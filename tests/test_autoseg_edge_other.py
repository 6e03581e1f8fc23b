"""A plain T2 alone (session 32): an edge segment the size check drops, replaced by the
body another reading of the marrow kept apart from the tissue; a segment as tall as a body,
alone at its level, kept under the volume floor in the reading of the mid-sagittal slice.

Small synthetic canonical label arrays (anterior, superior, right): each test builds the
case the rule is for and checks that the previous behaviour fails on it.
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.checks import check_sizes, drop_large_at_edges
from bmetoolkit.spine.autoseg.edge_other import replace_dropped_at_edges

SPACING = np.ones(3)
PARAMS = AutosegParameters()


def _column(rows: int = 130) -> np.ndarray:
    """Three whole bodies (20 x 20 x 10 voxels, 10-voxel discs) above a lower-edge segment
    holding a body of the same size and, in front of it, as much tissue again."""
    bodies = np.zeros((60, rows, 12), np.int32)
    for label, low in enumerate((40, 70, 100), start=2):
        bodies[5:25, low : low + 20, 1:11] = label
    bodies[5:25, 0:20, 1:11] = 1  # the body at the lower edge
    bodies[25:50, 0:22, 0:12] = 1  # the tissue joined to it in front
    return bodies


def test_an_edge_segment_dropped_is_replaced_by_another_readings_body():
    before = _column()
    after, notes = drop_large_at_edges(before, SPACING)
    assert notes and not (after[15, 5, 5] > 0)  # the body at the edge is lost
    other = np.zeros_like(before)
    other[5:25, 0:20, 1:11] = 1  # another reading kept the body apart from the tissue
    other[5:25, 40:60, 1:11] = 2
    grown = np.zeros(before.shape, bool)
    out, more, replaced = replace_dropped_at_edges(
        before, after, grown, [(other, grown.copy())], SPACING
    )
    assert replaced and out.max() == 4
    body = out[15, 5, 5]
    assert body > 0 and (out == body).sum() == 20 * 20 * 10
    assert not out[30:50, 0:20].any()  # the tissue stays out
    assert not more.any()


def test_no_replacement_from_tissue_beside_or_a_segment_the_check_drops_again():
    before = _column()
    after, _ = drop_large_at_edges(before, SPACING)
    grown = np.zeros(before.shape, bool)
    # Another reading's segment at the edge lying outside the dropped one: not its body.
    beside = np.zeros_like(before)
    beside[52:60, 0:20, 1:11] = 1
    out, _, notes = replace_dropped_at_edges(before, after, grown, [(beside, grown)], SPACING)
    assert not notes and (out == after).all()
    # Another reading joined the body to the tissue too: dropped again by the same check.
    joined = np.where(before == 1, 1, 0).astype(np.int32)
    out, _, notes = replace_dropped_at_edges(before, after, grown, [(joined, grown)], SPACING)
    assert not notes and (out == after).all()


def _with_small(height: int) -> np.ndarray:
    """Four bodies 20 voxels tall (20 x 20 x 10) and, at an empty level between the second
    and third, a segment 6 x 6 in section and ``height`` rows tall (0.18 of their volume at
    20 rows)."""
    bodies = np.zeros((40, 160, 12), np.int32)
    for label, low in enumerate((5, 35, 95, 125), start=1):
        bodies[5:25, low : low + 20, 1:11] = label
    bodies[10:16, 65 : 65 + height, 3:9] = 5
    return bodies


def test_a_segment_as_tall_as_a_body_alone_at_its_level_is_kept_under_the_floor():
    bodies = _with_small(20)
    dropped, notes = check_sizes(bodies, SPACING, PARAMS)
    assert dropped.max() == 4 and notes  # under the floor: dropped without the rule
    kept, notes = check_sizes(bodies, SPACING, PARAMS, tall_kept=0.8)
    assert kept.max() == 5 and not notes
    # A disc-like slab (8 rows, 0.4 of a body's height) is still dropped.
    slab, notes = check_sizes(_with_small(8), SPACING, PARAMS, tall_kept=0.8)
    assert slab.max() == 4 and notes
    # As tall, but at a body's level (beside its other part): a sliver, dropped.
    beside = _with_small(20)
    beside[beside == 5] = 0
    beside[30:36, 35:55, 3:9] = 5
    out, notes = check_sizes(beside, SPACING, PARAMS, tall_kept=0.8)
    assert out.max() == 4 and notes
