"""A segment without a cortical rim is not a vertebral body (autoseg/cortex_check.py).

Synthetic canonical arrays (anterior, superior, right): a column of bodies, each a box of
marrow inside a dark cortical shell, discs between them, soft tissue around; the dark mask
is read from the T1 as :func:`bmetoolkit.spine.autoseg.bodies.cortex_mask` does (below 0.3
of the marrow).
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg.cortex_check import cortex_shares, drop_without_cortex
from tests.helpers import segments_outside

SPACING = np.array([1.0, 1.0, 4.0])
#: T1 of fatty marrow, edematous marrow, soft tissue, disc and cortical bone.
MARROW, EDEMA, TISSUE, DISC, CORTEX = 1.0, 0.45, 0.68, 0.5, 0.08
#: Body pitch, height, depth (mm) and the cortex (voxels).
PITCH, HEIGHT, DEPTH, SHELL = 36, 26, 32, 2
FACTOR = 0.2


def _column(n: int = 5, top_cut_mm: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` bodies bottom up every :data:`PITCH` mm and their T1; labels include the shell.

    The image ends ``top_cut_mm`` below the top body's upper endplate (0: a disc above it).
    """
    rows = (n - 1) * PITCH + HEIGHT + (8 if top_cut_mm == 0 else -top_cut_mm)
    bodies = np.zeros((90, rows, 9), np.int32)
    t1 = np.full(bodies.shape, TISSUE, np.float32)
    for k in range(n):
        low = 6 + k * PITCH
        box = (slice(30, 30 + DEPTH), slice(low, min(low + HEIGHT, rows)), slice(1, 8))
        bodies[box] = k + 1
        t1[box] = CORTEX
        top = rows if box[1].stop == rows else box[1].stop - SHELL  # no endplate at a cut
        inner = (slice(30 + SHELL, 30 + DEPTH - SHELL), slice(low + SHELL, top), box[2])
        t1[inner] = MARROW
        t1[30 : 30 + DEPTH, low + HEIGHT : low + PITCH, 1:8] = DISC
    return bodies, t1


def _dark(t1: np.ndarray) -> np.ndarray:
    return t1 < 0.3 * MARROW


def test_bodies_with_their_cortex_are_kept():
    bodies, t1 = _column()
    kept, notes = drop_without_cortex(bodies, _dark(t1), SPACING, FACTOR)
    assert notes == []
    assert np.array_equal(kept, bodies)
    shares = cortex_shares(bodies, _dark(t1))
    assert min(shares.values()) > 0.9, shares


def test_soft_tissue_at_the_upper_edge_in_line_with_the_column_is_dropped():
    """As on tuning seeds 126 and 184: tissue above the top disc up to the image's edge."""
    bodies, t1 = _column()
    top = bodies.shape[1]
    bodies = np.pad(bodies, ((0, 0), (0, 22), (0, 0)))
    t1 = np.pad(t1, ((0, 0), (0, 22), (0, 0)), constant_values=TISSUE)
    bodies[34 : 34 + 20, top + 2 :, 2:7] = 6  # the marrow threshold's segment, to the edge
    kept, notes = drop_without_cortex(bodies, _dark(t1), SPACING, FACTOR)
    assert int(kept.max()) == 5
    assert (kept[:, top:] == 0).all()
    assert np.array_equal(kept[:, :top], bodies[:, :top])
    assert len(notes) == 1 and "no cortical bone" in notes[0]


def test_a_body_whose_marrow_is_all_edema_is_kept():
    """Fracture or tumour: the marrow's signal is gone, its cortex is not."""
    bodies, t1 = _column()
    inside = (bodies == 3) & (t1 == MARROW)
    t1[inside] = EDEMA
    kept, notes = drop_without_cortex(bodies, _dark(t1), SPACING, FACTOR)
    assert notes == []
    assert np.array_equal(kept, bodies)


def test_a_body_cut_by_the_upper_edge_is_kept():
    """Its cut face shows no cortex; the outline the image shows does."""
    bodies, t1 = _column(top_cut_mm=14)
    assert (bodies[:, -1] == 5).any()
    shares = cortex_shares(bodies, _dark(t1))
    assert shares[5] > 0.9, shares
    kept, notes = drop_without_cortex(bodies, _dark(t1), SPACING, FACTOR)
    assert notes == [] and np.array_equal(kept, bodies)


@pytest.mark.parametrize("factor", [0.0, FACTOR])
def test_without_a_visible_cortex_nothing_is_dropped(factor: float):
    """Coarse pixels: the cortex shows on too few outline voxels to tell a rim from none."""
    bodies, t1 = _column()
    t1[t1 == CORTEX] = 0.5  # partial-volumed with the marrow and the disc
    dark = _dark(t1)
    dark[30, 6::PITCH, 4] = True  # a few dark voxels
    kept, notes = drop_without_cortex(bodies, dark, SPACING, factor)
    assert notes == [] and np.array_equal(kept, bodies)


def test_off_keeps_everything():
    bodies, t1 = _column()
    bodies[34:54, bodies.shape[1] - 2 :, 2:7] = 6
    kept, notes = drop_without_cortex(bodies, _dark(t1), SPACING, 0.0)
    assert notes == [] and np.array_equal(kept, bodies)


@pytest.mark.slow
def test_tissue_above_the_top_disc_is_no_body_on_a_randomized_phantom():
    """Tuning seed 126 (T1 + STIR, 0.7 mm pixels): the field of view ends 22 mm above the
    top disc, where the phantom has soft tissue and no vertebra. Without the check it was
    a ninth body (6 mL, outside every true body) that the analysis typed Modic I at both
    endplates; with it the eight true bodies are found, each inside its true body."""
    from bmetoolkit.data.phantom.randomize import case_kind, make_randomized_phantom
    from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies
    from bmetoolkit.study import Study

    phantom = make_randomized_phantom(126, kind=case_kind(126))
    study = Study.from_images(phantom.t1, stir=phantom.stir)
    truth = np.asarray(phantom.truth.vertebrae.data)

    def outside_truth(labels) -> list[int]:
        return segments_outside(np.asarray(labels.bodies.data), truth)

    before = find_vertebral_bodies(study, AutosegParameters(cortex_share_factor=0.0))
    assert len(outside_truth(before)) == 1
    after = find_vertebral_bodies(study)
    assert outside_truth(after) == []
    assert len(after.levels) == len(np.unique(truth[truth > 0])) == 8
    assert all(after.levels[verse] is not None for verse in after.levels)
    assert any("no cortical bone" in note for note in after.notes)
