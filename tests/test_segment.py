"""BME segmentation: hysteresis, size filter, scan-adapted levels, T1 criterion, edges, NaN."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.decision import decision_levels
from bmetoolkit.params import Parameters
from bmetoolkit.segment import (
    Regions,
    focal_spots,
    grow_into_layer,
    hysteresis,
    label_lesions,
    region_medians,
    remove_small,
    segment_bme,
)

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


def levels_for(fluid="stir", t1_sd=0.0, fluid_sd=0.0, **changes):
    """Decision levels of a scan whose normal marrow has these SDs (0: the floors alone)."""
    return decision_levels(
        {"t1": t1_sd, fluid: fluid_sd}, fluid=fluid, params=PARAMS.replace(**changes)
    )


def segment(t1, fluid, levels, params=PARAMS):
    return segment_bme(t1, fluid, levels=levels, voxel_mm3=1.0, params=params)


def test_faint_edema_the_t1_shows_clearly_starts_a_lesion():
    """A faint lesion (STIR 1.3x, past the STIR grow floor 1.20, below its seed floor
    1.40) is found when its T1 is dark at the seed level (0.70) as a whole: two criteria
    at once. The grow level stays the STIR's: its rim at 1.16x is not part of it."""
    t1, fluid = normal_marrow()
    fluid[2:10, 2:10, 1:6] = 1.16  # rim, below the STIR grow floor
    fluid[3:9, 3:9, 2:5] = 1.3  # core
    t1[2:10, 2:10, 1:6] = 0.6
    assert segment(t1, fluid, levels_for("stir")).sum() == 6 * 6 * 3
    t1[2:10, 2:10, 1:6] = 0.75  # T1-dark at the grow level only: the STIR alone is too faint
    assert not segment(t1, fluid, levels_for("stir")).any()
    t1[4, 4, 3] = 0.5  # one dark voxel (mottled marrow) does not make the region dark
    assert not segment(t1, fluid, levels_for("stir")).any()
    t1[2:10, 2:10, 1:6] = 0.6
    assert not segment(t1, fluid, levels_for("stir", t1_criterion="ignored")).any()


def test_stir_and_t2_floors_differ():
    t1, fluid = normal_marrow()
    t1[3:9, 3:9, 2:5] = 0.6  # 108 voxels, T1 dark
    fluid[3:9, 3:9, 2:5] = 1.35  # past the T2 seed floor (1.30), below the STIR seed (1.40)
    assert segment(t1, fluid, levels_for("t2")).sum() == 108
    t1[3:9, 3:9, 2:5] = 0.75  # T1-dark, but not at the seed level: the STIR seed decides
    assert not segment(t1, fluid, levels_for("stir")).any()
    fluid[3:9, 3:9, 2:5] = 1.45  # past the STIR seed too
    assert segment(t1, fluid, levels_for("stir")).sum() == 108


def test_levels_follow_the_scan_noise():
    """The same 1.6x lesion is edema on a clean scan, not on one whose marrow spreads 0.15."""
    t1, fluid = normal_marrow()
    t1[3:9, 3:9, 2:5], fluid[3:9, 3:9, 2:5] = 0.9, 1.6
    assert segment(t1, fluid, levels_for(fluid_sd=0.03)).sum() == 108
    noisy = levels_for(fluid_sd=0.15)
    assert noisy.fluid_bright[1] > 1.6
    assert not segment(t1, fluid, noisy).any()


def test_t1_criterion_required_supporting_ignored():
    t1, fluid = normal_marrow()
    fluid[3:9, 3:9, 2:5] = 2.0  # fluid bright, T1 normal (1.0): not T1-dark
    fluid[15:21, 15:21, 2:5] = 2.0
    t1[15:21, 15:21, 2:5] = 0.6  # fluid bright and T1-dark
    fluid[3:9, 20:26, 2:5] = 2.0
    t1[3:9, 20:26, 2:5] = 1.3  # fluid bright and T1-bright (fat, haemangioma)
    required = segment(t1, fluid, levels_for(t1_criterion="required"))
    supporting = segment(t1, fluid, levels_for(t1_criterion="supporting"))
    ignored = segment(t1, fluid, levels_for(t1_criterion="ignored"))
    assert required.sum() == 108 and required[15:21, 15:21, 2:5].all()
    assert supporting.sum() == 216 and not supporting[3:9, 20:26, 2:5].any()
    assert ignored.sum() == 324
    assert segment(None, fluid, levels_for(t1_criterion="required")).sum() == 324  # no T1


def test_auto_t1_criterion_depends_on_fat_suppression():
    assert levels_for("stir").t1_criterion == "supporting"
    assert levels_for("t2").t1_criterion == "required"


def test_supporting_drops_a_region_whose_median_t1_is_bright():
    t1, fluid = normal_marrow()
    fluid[3:9, 3:9, 2:5] = 2.0
    t1[3:9, 3:9, 2:5] = 1.08  # below the T1-bright level per voxel, bright as a region
    assert not segment(t1, fluid, levels_for()).any()
    assert segment(t1, fluid, levels_for(), PARAMS.replace(edema_t1_max_ratio=1.1)).sum() == 108


def test_hysteresis_inside_segment_bme():
    t1, fluid = normal_marrow()
    fluid[3:9, 3:9, 2:5] = 1.3  # grow only (>= 1.2, below the 1.4 seed)
    assert not segment(t1, fluid, levels_for()).any()
    fluid[5, 5, 3] = 1.45  # one seed voxel: the whole region
    assert segment(t1, fluid, levels_for()).sum() == 108


def test_edge_at_half_maximum():
    """A strong lesion with a faint margin: the margin below half its contrast is left out."""
    t1, fluid = normal_marrow()
    fluid[3:9, 3:9, 2:5] = 1.5  # margin: past the grow level, below half of 4x
    fluid[4:8, 4:8, 3] = 4.0  # core, 16 voxels
    fluid[4:8, 4:8, 2] = 4.0  # 32 voxels in all
    mask = segment(t1, fluid, levels_for(), PARAMS.replace(min_lesion_mm3=0.0))
    assert mask.sum() == 32
    whole = segment(t1, fluid, levels_for(), PARAMS.replace(lesion_edge_fraction=0.0))
    assert whole.sum() == 108


def test_small_lesions_dropped_by_volume():
    t1, fluid = normal_marrow()
    t1[3:6, 3:6, 2:5], fluid[3:6, 3:6, 2:5] = 0.5, 3.0  # 27 voxels
    assert not segment(t1, fluid, levels_for()).any()
    assert segment_bme(t1, fluid, levels=levels_for(), voxel_mm3=2.0, params=PARAMS).sum() == 27


def test_nan_is_never_edema_and_does_not_connect():
    t1, fluid = normal_marrow()
    fluid[3:9, 3:20, 2:5] = 1.3  # grow only
    fluid[5, 4, 3] = 1.5  # seed at one end
    t1[:, 11, :] = np.nan  # a NaN wall (outside marrow) cuts the region in two
    fluid[6, 15, 3] = np.nan
    t1[7, 16, 3] = np.nan
    mask = segment(t1, fluid, levels_for(), PARAMS.replace(lesion_edge_fraction=0.0))
    assert not mask[np.isnan(t1) | np.isnan(fluid)].any()
    assert mask[3:9, 3:11, 2:5].all()  # the seeded half
    assert not mask[:, 12:, :].any()  # the half beyond the wall has no seed of its own
    nan = np.full((5, 5, 5), np.nan)
    assert not segment(nan, nan, levels_for("t2"), PARAMS.replace(min_lesion_mm3=0.0)).any()


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


# --- focal spots ------------------------------------------------------------------------------


def spot_scene(ratio: float, size_vox: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A mask holding one box region of ``size_vox`` voxels at ``ratio`` (fluid)."""
    mask = np.zeros((40, 40, 10), bool)
    fluid = np.ones(mask.shape, np.float32)
    box = tuple(slice(2, 2 + n) for n in size_vox)
    mask[box], fluid[box] = True, ratio
    return mask, fluid


@pytest.mark.parametrize(
    ("ratio", "size_vox", "spacing", "is_spot"),
    [
        (1.4, (10, 10, 3), (1.0, 1.0, 4.0), True),  # 10 x 10 x 12 mm, faint: an island
        (1.4, (20, 6, 2), (1.0, 1.0, 4.0), False),  # faint but 20 mm long: spreads
        (1.4, (12, 4, 3), (1.0, 1.0, 4.0), False),  # faint, small but flat: a band
        (1.4, (10, 10, 3), (1.0, 1.0, 6.0), False),  # same voxels, 18 mm across thick slices
        (1.8, (10, 10, 3), (1.0, 1.0, 4.0), False),  # small but bright: edema
        (1.45, (10, 10, 3), (1.0, 1.0, 4.0), True),  # just below the 1.5 default
    ],
)
def test_focal_spots_are_round_and_faint(ratio, size_vox, spacing, is_spot):
    mask, fluid = spot_scene(ratio, size_vox)
    spots = focal_spots(mask, fluid, np.array(spacing), PARAMS)
    assert spots.any() is np.bool_(is_spot)
    if is_spot:
        np.testing.assert_array_equal(spots, mask)


def test_focal_spots_use_the_peak_not_the_mean():
    """A few bright voxels do not make a spot edema; a bright core (a small edema) does."""
    mask, fluid = spot_scene(1.3, (10, 10, 3))
    fluid[5:8, 5:8, 3] = 2.5  # 9 of 300 voxels (3 %): the 95th percentile stays faint
    assert focal_spots(mask, fluid, np.array([1.0, 1.0, 4.0]), PARAMS).any()
    fluid[3:11, 3:11, 2:4] = 2.5  # 128 voxels bright: the peak is past 1.6
    assert not focal_spots(mask, fluid, np.array([1.0, 1.0, 4.0]), PARAMS).any()


def test_focal_spots_level_follows_the_scans_spread():
    """On a mottled or noisy scan an island's peak is brighter by as much as normal
    marrow's 95th percentile: 1.6 is a spot where normal marrow spreads by 0.1 (level
    1.5 * exp(1.645 * 0.1) = 1.77), not on a clean scan."""
    mask, fluid = spot_scene(1.6, (10, 10, 3))
    spacing = np.array([1.0, 1.0, 4.0])
    assert not focal_spots(mask, fluid, spacing, PARAMS, sd=0.02).any()
    assert focal_spots(mask, fluid, spacing, PARAMS, sd=0.1).any()


def test_focal_spots_disabled_and_empty():
    mask, fluid = spot_scene(1.4, (10, 10, 3))
    off = PARAMS.replace(focal_max_ratio=0.0)
    assert not focal_spots(mask, fluid, np.array([1.0, 1.0, 4.0]), off).any()
    empty = np.zeros_like(mask)
    assert not focal_spots(empty, fluid, np.array([1.0, 1.0, 4.0]), PARAMS).any()


def test_drop_focal_spots_keeps_spots_near_a_joint_and_says_what_it_dropped():
    from bmetoolkit.ratios import drop_focal_spots

    mask = np.zeros((40, 40, 10), bool)
    fluid = np.ones(mask.shape, np.float32)
    for start in (2, 25):  # two identical faint 10 x 10 x 12 mm spots
        mask[start : start + 10, 2:12, 2:5], fluid[start : start + 10, 2:12, 2:5] = True, 1.4
    near_joint = np.zeros_like(mask)
    near_joint[0:5] = True  # reaches the first spot only
    spacing = np.array([1.0, 1.0, 4.0])
    bme, summary, notes = drop_focal_spots(
        mask, fluid, spacing, 1.0, PARAMS, sd=0.05, keep=near_joint
    )
    assert bme[2:12].any() and not bme[25:35].any()
    assert summary == {"count": 1, "volume_ml": 0.3}
    assert len(notes) == 1 and "1 focal spot" in notes[0]
    bme, summary, notes = drop_focal_spots(mask, fluid, spacing, 1.0, PARAMS, sd=0.05)
    assert not bme.any() and summary["count"] == 2


def _lesion_beside_a_layer() -> tuple[np.ndarray, ...]:
    """A 3 x 3 x 3 lesion (peak 3.0) whose side touches a layer plane at x = 4."""
    mask = np.zeros((8, 8, 8), bool)
    mask[1:4, 2:5, 2:5] = True
    ratio = np.where(mask, 3.0, np.nan)
    layer = np.zeros(mask.shape, bool)
    layer[4, :, :] = True
    return mask, ratio, layer


@pytest.mark.parametrize(
    ("layer_value", "joins"),
    [(2.5, True), (2.0, True), (1.9, False), (np.nan, False)],
    ids=["bright", "at-half-maximum", "below-half-maximum", "nan"],
)
def test_grow_into_layer_takes_layer_voxels_as_bright_as_the_lesion_edge(layer_value, joins):
    mask, ratio, layer = _lesion_beside_a_layer()
    layer_ratio = np.where(layer, layer_value, np.nan)
    grown = grow_into_layer(mask, ratio, layer_ratio, layer, fraction=0.5, grow_level=1.2)
    added = grown & ~mask
    # only the 3 x 3 face touching the lesion may join, never the rest of the layer
    assert added.sum() == (9 if joins else 0)
    assert not (added & ~layer).any()
    assert (grown & mask).sum() == mask.sum()


def test_grow_into_layer_respects_the_grow_level_and_adjacency():
    mask, ratio, layer = _lesion_beside_a_layer()
    layer_ratio = np.where(layer, 2.5, np.nan)
    # the lesion's edge is 2.0 but the scan's grow level is higher
    high = grow_into_layer(mask, ratio, layer_ratio, layer, fraction=0.5, grow_level=2.6)
    assert (high == mask).all()
    # a layer one voxel away from the lesion is not reached
    far = np.zeros(mask.shape, bool)
    far[5, :, :] = True
    apart = grow_into_layer(
        mask, ratio, np.where(far, 2.5, np.nan), far, fraction=0.5, grow_level=1.2
    )
    assert (apart == mask).all()


def test_grow_into_layer_uses_each_regions_own_edge():
    mask, ratio, layer = _lesion_beside_a_layer()
    faint = np.zeros(mask.shape, bool)
    faint[5:8, 2:5, 2:5] = True  # a second, faint lesion on the other side of the layer
    ratio = np.where(faint, 1.6, ratio)
    layer_ratio = np.where(layer, 1.5, np.nan)
    grown = grow_into_layer(mask | faint, ratio, layer_ratio, layer, fraction=0.5, grow_level=1.2)
    # 1.5 passes the faint lesion's edge (1.3), not the bright one's (2.0)
    assert (grown & layer).sum() == 9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_region_medians_equal_np_median_per_region(dtype):
    # every region's median as np.median gives it (odd and even counts, NaNs and empty
    # regions): the vectorised medians decide the same as the per-region loop did
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 40, size=3000)
    values = rng.lognormal(0.0, 0.3, size=3000).astype(dtype)
    values[rng.random(3000) < 0.05] = np.nan
    values[labels == 7] = np.nan  # a region without a finite value
    medians = region_medians(labels, values, 41)  # region 40 is empty
    assert np.isnan(medians[0]) and np.isnan(medians[7]) and np.isnan(medians[40])
    for number in set(range(1, 40)) - {7}:
        region = values[labels == number]
        expected = float(np.median(region[np.isfinite(region)]))
        assert medians[number] == expected  # exactly, not approximately


def test_regions_kept_are_numbered_as_labelling_the_kept_mask():
    # a stage hands its regions on instead of labelling again: the kept regions must be
    # the same numbers on the same box as labelling the kept mask gives
    rng = np.random.default_rng(5)
    for trial in range(20):
        mask = rng.random((24, 30, 6)) < 0.3
        regions = Regions.of(mask)
        keep = rng.random(regions.count + 1) < (0.5 if trial else 0.0)  # one keeps none
        kept_mask, kept = regions.where(keep)
        again = Regions.of(kept_mask)
        assert kept.count == again.count
        assert kept.box == again.box
        assert np.array_equal(kept.labels, again.labels)
