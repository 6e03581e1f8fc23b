"""Phantom pairs: one spine at two visits, each change kind, a rescan without change."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.data.phantom.anatomy import AnatomyConfig, build_spine
from bmetoolkit.data.phantom.followup import FATES, follow_lesions, make_phantom_pair
from bmetoolkit.data.phantom.lesions import Lesion
from bmetoolkit.data.phantom.randomize import draw_case


def test_retest_pair_has_no_change_but_a_new_acquisition():
    pair = make_phantom_pair(21, retest=True, small=True)
    assert all(row["bme_change_ml"] == 0 for row in pair.change_table())
    assert all(row["modic_baseline"] == row["modic_followup"] for row in pair.change_table())
    assert {row["fate"] for row in pair.fates} <= {"unchanged"}
    # a new grid and a moved patient: the images differ, the anatomy does not
    assert not np.allclose(pair.baseline.t1.affine, pair.followup.t1.affine)
    assert pair.baseline.t1.shape != pair.followup.t1.shape or not np.array_equal(
        pair.baseline.t1.data, pair.followup.t1.data
    )
    assert pair.baseline.truth.endplates == pair.followup.truth.endplates


def test_motion_maps_baseline_truth_onto_followup_truth():
    pair = make_phantom_pair(22, retest=True, small=True)
    before = [np.asarray(r["centroid_ras_mm"]) for r in pair.baseline.truth.lesions]
    after = [np.asarray(r["centroid_ras_mm"]) for r in pair.followup.truth.lesions]
    for b, a in zip(before, after, strict=True):
        moved = pair.motion[:3, :3] @ b + pair.motion[:3, 3]
        assert np.allclose(moved, a, atol=1e-2)
    assert np.linalg.norm(pair.motion[:3, 3]) > 1.0


def test_each_change_kind_is_in_the_true_change_table():
    baseline = [
        Lesion("L1", "modic1", endplate="inferior", height_frac=0.3),
        Lesion("L2", "edema", height_frac=0.35, ap_width=0.5, lr_width=0.5),
        Lesion("L3", "modic1", endplate="superior", height_frac=0.3),
        Lesion("L5", "edema", height_frac=0.3, ap_width=0.4, lr_width=0.4),
    ]
    followup = [
        Lesion("L1", "modic1", endplate="inferior", height_frac=0.5, ap_width=0.8),  # grown
        Lesion("L2", "edema", height_frac=0.2, ap_width=0.3, lr_width=0.3),  # shrunk
        Lesion("L3", "modic2", endplate="superior", height_frac=0.3),  # converted I -> II
        Lesion("L4", "edema", height_frac=0.3, ap_width=0.4, lr_width=0.4),  # new
    ]  # L5 resolved
    pair = make_phantom_pair(
        23, kind="random", small=True, baseline_lesions=baseline, followup_lesions=followup
    )
    rows = {row["region"]: row for row in pair.change_table()}
    assert rows["L1 body"]["bme_change_ml"] > 0  # grown
    assert rows["L2 body"]["bme_change_ml"] < 0  # shrunk
    transition = (rows["L3 superior"]["modic_baseline"], rows["L3 superior"]["modic_followup"])
    assert transition == ("I", "II")
    assert rows["L3 body"]["bme_ml_followup"] == 0  # type II is fat, not edema
    assert rows["L4 body"]["bme_ml_baseline"] == 0 < rows["L4 body"]["bme_ml_followup"]  # new
    assert rows["L5 body"]["bme_ml_followup"] == 0 < rows["L5 body"]["bme_ml_baseline"]


def test_drawn_fates_cover_every_kind_and_resolved_lesions_leave():
    kinds = set()
    for seed in range(30):
        draws = draw_case(seed, small=True)
        spine = build_spine(AnatomyConfig())
        after, fates = follow_lesions(np.random.default_rng(seed), spine, list(draws.lesions),
                                      spine.levels)  # fmt: skip
        kinds |= {row["fate"] for row in fates}
        for row, lesion in zip(fates, draws.lesions, strict=False):
            assert row["baseline_kind"] == lesion.kind
            if row["fate"] == "resolved":
                assert lesion not in after
            if row["fate"] == "converted":
                assert "modic1" in lesion.kind or lesion.kind == "modic2/1"
    assert kinds >= {"grown", "shrunk", "resolved", "converted", "new", "unchanged"}
    assert set(FATES) == {"grown", "shrunk", "resolved", "unchanged", "converted"}


def test_same_seed_same_pair():
    a = make_phantom_pair(24, small=True)
    b = make_phantom_pair(24, small=True)
    assert np.array_equal(a.followup.t1.data, b.followup.t1.data)
    assert np.allclose(a.motion, b.motion)
    assert a.fates == b.fates


@pytest.mark.parametrize("move", [True, False])
def test_move_false_keeps_one_scanner_space(move):
    pair = make_phantom_pair(25, small=True, retest=True, move=move)
    assert np.allclose(pair.motion, np.eye(4)) != move


def test_vary_changes_only_what_it_names():
    full = make_phantom_pair(21, retest=True, small=True)
    noise = make_phantom_pair(21, retest=True, small=True, vary=["noise"])
    grid = make_phantom_pair(21, retest=True, small=True, vary=("offset", "pixel"))
    tilt = make_phantom_pair(21, retest=True, small=True, vary={"tilt"})
    nothing = make_phantom_pair(21, retest=True, small=True, vary=())
    base = full.baseline.t1
    # noise only: the baseline's grid and position, new noise
    assert np.allclose(noise.followup.t1.affine, base.affine)
    assert np.array_equal(noise.motion, np.eye(4))
    assert not np.array_equal(noise.followup.t1.data, base.data)
    # nothing: the same acquisition again, the same images
    assert np.array_equal(nothing.followup.t1.data, base.data)
    # the grid alone: the full rescan's pixel size and field centre, the baseline's axes
    spacing = np.linalg.norm(grid.followup.t1.affine[:3, :3], axis=0)
    full_spacing = np.linalg.norm(full.followup.truth.masks["vertebrae"].affine[:3, :3], axis=0)
    assert np.allclose(spacing, full_spacing)
    axes = grid.followup.t1.affine[:3, :3] / spacing
    assert np.allclose(axes, base.affine[:3, :3] / np.linalg.norm(base.affine[:3, :3], axis=0))
    # tilt only: the baseline's pixel size, new axes
    tilt_axes = tilt.followup.t1.affine[:3, :3]
    assert np.allclose(
        np.linalg.norm(tilt_axes, axis=0), np.linalg.norm(base.affine[:3, :3], axis=0)
    )
    assert not np.allclose(tilt_axes, base.affine[:3, :3])
    # the drawn values are those of the full rescan: position alone moves the patient as it does
    position = make_phantom_pair(21, retest=True, small=True, vary=["position"])
    assert np.array_equal(position.motion, full.motion)
    with pytest.raises(ValueError, match="unknown acquisition changes"):
        make_phantom_pair(21, retest=True, small=True, vary=["shim"])
