"""BME segmentation: hysteresis, physical size filter, STIR vs T2, NaN, lesion numbering."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.params import Parameters
from bmetoolkit.segment import hysteresis, label_lesions, remove_small, segment_bme

PARAMS = Parameters()


def normal_marrow(shape=(30, 30, 8)) -> tuple[np.ndarray, np.ndarray]:
    return np.ones(shape, np.float32), np.ones(shape, np.float32)


# --- hysteresis ------------------------------------------------------------------------------


def test_hysteresis_keeps_regions_holding_a_seed():
    weak = np.zeros((10, 10, 3), bool)
    weak[1:4, 1:4, 1] = True  # region A
    weak[6:9, 6:9, 1] = True  # region B
    strong = np.zeros_like(weak)
    strong[2, 2, 1] = True  # inside A
    strong[0, 9, 0] = True  # a strong voxel outside weak seeds nothing
    out = hysteresis(weak, strong)
    np.testing.assert_array_equal(out, weak & (np.arange(10)[:, None, None] < 5))
    assert out.dtype == bool


def test_hysteresis_face_connectivity_only():
    weak = np.zeros((4, 4, 1), bool)
    weak[0, 0, 0] = weak[1, 1, 0] = True  # diagonal neighbours: two regions
    strong = np.zeros_like(weak)
    strong[0, 0, 0] = True
    assert hysteresis(weak, strong).sum() == 1
    weak[0, 1, 0] = True  # a face bridge joins them
    assert hysteresis(weak, strong).sum() == 3


def test_hysteresis_empty():
    empty = np.zeros((3, 3, 3), bool)
    assert not hysteresis(empty, ~empty).any()


# --- remove_small ----------------------------------------------------------------------------


def cube_blob(voxel_mm: float, side_mm: float = 4.0) -> np.ndarray:
    """A side_mm cube on an isotropic grid of voxel_mm voxels, plus the grid shape margin."""
    n = round(side_mm / voxel_mm)
    mask = np.zeros((n + 4, n + 4, n + 4), bool)
    mask[2 : 2 + n, 2 : 2 + n, 2 : 2 + n] = True
    return mask


@pytest.mark.parametrize(("min_mm3", "kept"), [(50.0, True), (64.0, True), (70.0, False)])
def test_remove_small_uses_physical_volume(min_mm3, kept):
    """The same 64 mm³ cube: 64 voxels of 1 mm³ or 8 voxels of 8 mm³, same decision."""
    fine, coarse = cube_blob(1.0), cube_blob(2.0)
    assert fine.sum() == 64 and coarse.sum() == 8
    assert remove_small(fine, voxel_mm3=1.0, min_mm3=min_mm3).any() is np.bool_(kept)
    assert remove_small(coarse, voxel_mm3=8.0, min_mm3=min_mm3).any() is np.bool_(kept)


def test_remove_small_on_anisotropic_voxels():
    """0.5 x 0.5 x 4 mm voxels (1 mm³): a 50-voxel blob is 50 mm³."""
    mask = np.zeros((20, 20, 5), bool)
    mask[2:7, 2:12, 2] = True  # 50 voxels
    mask[15:17, 15:17, 1:3] = True  # 8 voxels
    out = remove_small(mask, voxel_mm3=0.5 * 0.5 * 4.0, min_mm3=50.0)
    assert out.sum() == 50 and out[2:7, 2:12, 2].all()
    assert not remove_small(mask, voxel_mm3=0.9, min_mm3=50.0).any()


# --- segment_bme -----------------------------------------------------------------------------


def test_stir_and_t2_thresholds_differ():
    t1, fluid = normal_marrow()
    t1[3:9, 3:9, 2:5] = 0.6  # 108 voxels, T1 hypo past the seed threshold
    fluid[3:9, 3:9, 2:5] = 1.6  # past the T2 seed (1.5), below the STIR grow threshold (2.0)
    as_t2 = segment_bme(t1, fluid, fluid="t2", voxel_mm3=1.0, params=PARAMS)
    as_stir = segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS)
    assert as_t2.sum() == 108 and not as_stir.any()
    fluid[3:9, 3:9, 2:5] = 2.6  # past the STIR seed too
    assert segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS).sum() == 108


def test_needs_both_t1_hypo_and_fluid_hyper():
    t1, fluid = normal_marrow()
    t1[3:9, 3:9, 2:5] = 0.5  # T1 dark only (e.g. sclerosis)
    fluid[15:21, 15:21, 2:5] = 3.0  # fluid bright only (e.g. haemangioma on STIR)
    assert not segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS).any()


def test_hysteresis_inside_segment_bme():
    t1, fluid = normal_marrow()
    t1[3:9, 3:9, 2:5] = 0.78  # grow only (<= 0.8, above the 0.7 seed)
    fluid[3:9, 3:9, 2:5] = 3.0
    assert not segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS).any()
    t1[5, 5, 3] = 0.65  # one seed voxel: the whole region
    assert segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS).sum() == 108


def test_thresholds_are_inclusive_and_follow_params():
    t1, fluid = normal_marrow()
    t1[3:9, 3:9, 2:5] = 0.8  # exactly the grow threshold
    fluid[3:9, 3:9, 2:5] = 2.0
    t1[5, 5, 3], fluid[5, 5, 3] = 0.7, 2.5  # exactly the seed thresholds
    assert segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS).sum() == 108
    # a grow threshold just below 0.8 leaves only the seed voxel
    stricter = PARAMS.replace(t1_hypo_ratio=0.79, min_lesion_mm3=0.0)
    assert segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=stricter).sum() == 1


def test_small_lesions_dropped_by_volume():
    t1, fluid = normal_marrow()
    t1[3:6, 3:6, 2:5], fluid[3:6, 3:6, 2:5] = 0.5, 3.0  # 27 voxels
    assert not segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS).any()
    assert segment_bme(t1, fluid, fluid="stir", voxel_mm3=2.0, params=PARAMS).sum() == 27


def test_nan_is_never_edema_and_does_not_connect():
    t1, fluid = normal_marrow()
    t1[3:9, 3:20, 2:5], fluid[3:9, 3:20, 2:5] = 0.75, 3.0  # grow only
    t1[5, 4, 3] = 0.5  # seed at one end
    t1[:, 11, :] = np.nan  # a NaN wall (outside marrow) cuts the region in two
    fluid[6, 15, 3] = np.nan
    t1[7, 16, 3] = np.nan
    mask = segment_bme(t1, fluid, fluid="stir", voxel_mm3=1.0, params=PARAMS)
    assert not mask[np.isnan(t1) | np.isnan(fluid)].any()
    assert mask[3:9, 3:11, 2:5].all()  # the seeded half
    assert not mask[:, 12:, :].any()  # the half beyond the wall has no seed of its own
    all_nan = segment_bme(
        np.full((5, 5, 5), np.nan),
        np.full((5, 5, 5), np.nan),
        fluid="t2",
        voxel_mm3=1.0,
        params=PARAMS.replace(min_lesion_mm3=0.0),
    )
    assert not all_nan.any()


# --- label_lesions ---------------------------------------------------------------------------


def test_lesions_never_join_two_bodies():
    bodies = np.zeros((10, 10, 4), np.uint8)
    bodies[:, :5, :] = 7
    bodies[:, 5:, :] = 3
    mask = np.zeros(bodies.shape, bool)
    mask[2:6, 3:8, 1:3] = True  # one connected blob across the boundary
    labels, n = label_lesions(mask, bodies)
    assert n == 2
    assert labels.dtype == np.int32
    assert set(np.unique(labels[mask])) == {1, 2}
    for number in (1, 2):
        assert len(np.unique(bodies[labels == number])) == 1
    np.testing.assert_array_equal(labels > 0, mask)


def test_lesion_numbers_follow_first_voxel_not_body_id():
    bodies = np.zeros((10, 10, 4), np.uint8)
    bodies[:5] = 9  # first in C order, highest id
    bodies[5:] = 2
    mask = np.zeros(bodies.shape, bool)
    mask[1, 1, 1] = mask[1, 2, 1] = True  # body 9, first voxel (1, 1, 1)
    mask[3, 6, 2] = True  # body 9, second
    mask[6, 0, 0] = mask[6, 0, 1] = True  # body 2, third in C order
    labels, n = label_lesions(mask, bodies)
    assert n == 3
    assert labels[1, 1, 1] == 1 and labels[1, 2, 1] == 1
    assert labels[3, 6, 2] == 2
    assert labels[6, 0, 0] == 3
    # swapping body ids changes nothing
    swapped = np.where(bodies == 9, 2, 9).astype(np.uint8)
    np.testing.assert_array_equal(label_lesions(mask, swapped)[0], labels)
    # and the result is reproducible
    np.testing.assert_array_equal(label_lesions(mask, bodies)[0], labels)


def test_label_lesions_empty():
    labels, n = label_lesions(np.zeros((4, 4, 4), bool), np.ones((4, 4, 4), np.uint8))
    assert n == 0 and not labels.any()
