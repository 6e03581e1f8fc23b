"""The edema volume compared between visits: lesion edges weighted by their partial volume."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.followup.joint import decide_jointly
from bmetoolkit.followup.partial_volume import edema_shares
from bmetoolkit.segment import region_peaks
from tests.test_followup_joint import SHAPE, _same_grid, _visit


def _slab_fractions(start: float, stop: float, n: int) -> np.ndarray:
    """Share of each of ``n`` unit voxels along an axis covered by [start, stop)."""
    edges = np.arange(n + 1, dtype=float)
    return np.clip(np.minimum(edges[1:], stop) - np.maximum(edges[:-1], start), 0, 1)


@pytest.mark.parametrize("offset", [0.0, 0.2, 0.45, 0.7])
def test_a_lesion_edge_between_voxels_counts_by_its_share(offset):
    # a slab 3.6 voxels thick along the (thick-slice) axis, in a uniform 2.5 x lesion
    # profile: the half maximum counts 3 or 4 voxels with the grid's offset, the shares 3.6
    n = 12
    fractions = _slab_fractions(3 + offset, 6.6 + offset, n)
    ratio = (1 + 1.5 * fractions).reshape(1, 1, n)
    bme = ratio >= 1 + 0.5 * 1.5
    lesions, bodies = bme.astype(np.int32), np.ones(ratio.shape, np.int32)
    peaks = region_peaks(lesions, 1, np.where(bme, ratio, np.nan))
    shares = edema_shares(bme, lesions, ratio, bodies)
    assert peaks[1] == pytest.approx(2.5)  # no voxel wholly inside: the peak is the contrast
    assert float(shares.sum()) == pytest.approx(3.6, abs=1e-5)
    assert int(bme.sum()) in (3, 4)


def test_the_layer_around_a_lesion_stays_in_its_body():
    ratio = np.array([[[1.0, 1.5, 3.0, 3.0, 1.5, 1.5]]])
    bme = ratio >= 2.0
    bodies = np.array([[[1, 1, 1, 1, 1, 2]]])
    lesions = bme.astype(np.int32)
    shares = edema_shares(bme, lesions, ratio, bodies)
    assert shares.ravel().tolist() == [0.0, 0.25, 1.0, 1.0, 0.25, 0.0]


def test_the_contrast_is_the_level_of_the_voxels_wholly_inside():
    # a 5 x 5 x 5 lesion whose core is 3.0 x and whose outer voxels are 2.0 x (its edge
    # voxels' share of it: one half); beside it a 1.5 x layer (a quarter)
    ratio = np.ones((9, 9, 9))
    ratio[1:8, 1:8, 1:8] = 1.5
    ratio[2:7, 2:7, 2:7] = 2.0
    ratio[3:6, 3:6, 3:6] = 3.0
    bme = ratio >= 2.0
    shares = edema_shares(bme, bme.astype(int), ratio, np.ones(ratio.shape, int))
    assert float(shares.sum()) == pytest.approx(27 + 0.5 * 98 + 0.25 * 150)


def test_a_lesion_without_a_contrast_counts_whole():
    bme = np.zeros((1, 1, 5), bool)
    bme[0, 0, 1:4] = True
    ratio = np.where(bme, 0.9, 1.0)
    shares = edema_shares(bme, bme.astype(int), ratio, np.ones_like(ratio))
    assert shares.ravel().tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def _lesion_on_slices(start: float, stop: float, contrast: float) -> list:
    """Blocks of a 12 x 12 mm lesion spanning slices [start, stop), partial at its ends."""
    fractions = _slab_fractions(start, stop, SHAPE[2])
    return [
        ((slice(10, 22), slice(10, 22), slice(z, z + 1)), 1 + (contrast - 1) * f)
        for z, f in enumerate(fractions)
        if f > 0
    ]


def test_a_rescanned_lesion_keeps_its_weighted_volume():
    # the same lesion (12 x 12 mm, 2.4 slices thick, 2.2 x normal marrow) on two grids
    # offset by 0.45 slice: counted, its volume jumps by a slice; weighted, it stays
    base = _visit(_lesion_on_slices(2.5, 4.9, 2.2), seed=1)
    follow = _visit(_lesion_on_slices(2.05, 4.45, 2.2), seed=2)
    joint = decide_jointly(base, follow, _same_grid, _same_grid)
    counted = [int(m.sum()) / 144 for m in joint.bme]
    weighted = [float(s.sum()) / 144 for s in joint.shares]
    assert abs(counted[1] - counted[0]) >= 0.5  # slices
    assert weighted == pytest.approx([2.4, 2.4], abs=0.1)
    assert joint.summary["baseline"]["weighted_ml"] == pytest.approx(
        float(joint.shares[0].sum()) * 3.0 / 1000, abs=1e-4
    )


def test_a_new_lesion_is_weighted_at_its_visit_only():
    base = _visit([], seed=1)
    follow = _visit(_lesion_on_slices(2.0, 5.0, 2.0), seed=2)
    joint = decide_jointly(base, follow, _same_grid, _same_grid)
    assert not joint.shares[0].any()
    assert float(joint.shares[1].sum()) / 144 == pytest.approx(3.0, abs=0.1)
