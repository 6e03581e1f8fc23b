"""Decision images and scan-adapted decision levels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bmetoolkit.decision import decision_levels, normal_sd, smooth_within, smoothed_among
from bmetoolkit.params import Parameters

PARAMS = Parameters()


def test_levels_rise_with_the_scan_spread_and_stop_at_the_floors():
    clean = decision_levels({"t1": 0.0, "stir": 0.0}, fluid="stir", params=PARAMS)
    assert clean.fluid_bright == (PARAMS.stir_hyper_ratio, PARAMS.stir_hyper_seed_ratio)
    assert clean.t1_dark == (PARAMS.t1_hypo_ratio, PARAMS.t1_hypo_seed_ratio)
    noisy = decision_levels({"t1": 0.1, "stir": 0.2}, fluid="stir", params=PARAMS)
    assert noisy.fluid_bright[0] == pytest.approx(np.exp(2.5 * 0.2))
    assert noisy.fluid_bright[1] == pytest.approx(np.exp(4.0 * 0.2))
    assert noisy.t1_dark[0] == pytest.approx(np.exp(-2.5 * 0.1))
    assert noisy.t1_bright[1] == pytest.approx(np.exp(4.0 * 0.1))
    assert noisy.fluid_dark[0] == pytest.approx(np.exp(-2.5 * 0.2))


def test_t2_uses_its_own_floors_and_levels_are_reported():
    levels = decision_levels({"t1": 0.01, "t2": 0.01}, fluid="t2", params=PARAMS)
    assert levels.fluid_bright == (PARAMS.t2_hyper_ratio, PARAMS.t2_hyper_seed_ratio)
    report = levels.to_dict()
    assert report["t1_criterion"] == "required" and report["fluid"] == "t2"
    assert report["fluid_bright"] == {"grow": 1.15, "seed": 1.3}
    assert report["normal_marrow_sd"] == {"t1": 0.01, "t2": 0.01}


def test_smoothing_reduces_noise_and_never_mixes_in_the_outside():
    rng = np.random.default_rng(0)
    ratio = np.exp(rng.normal(0, 0.2, (60, 60, 4))).astype(np.float32)
    ratio[:, :5, :] = np.nan  # outside the marrow
    spacing = np.array([0.7, 0.7, 4.0])
    smoothed = smooth_within(ratio, spacing, 2.0)  # 3 x 3 in-plane, no smoothing across slices
    inside = np.isfinite(ratio)
    assert np.isnan(smoothed[~inside]).all() and np.isfinite(smoothed[inside]).all()
    assert normal_sd(smoothed, inside) < 0.45 * normal_sd(ratio, inside)
    # slices 4 mm apart are not averaged together: a one-slice change stays in its slice
    ratio = np.ones((9, 9, 3), np.float32)
    ratio[:, :, 1] = 2.0
    assert np.allclose(smooth_within(ratio, spacing, 2.0)[:, :, 1], 2.0)
    assert np.allclose(smooth_within(ratio, spacing, 0.0), ratio)


def test_normal_sd_of_too_few_voxels_is_zero():
    assert normal_sd(np.ones(10, np.float32), np.ones(10, bool)) == 0.0


def test_smoothing_within_a_mask_or_at_some_voxels_gives_the_same_bits():
    # ``within`` and ``smoothed_among`` spare the NaN copy and the whole image: same values,
    # bit for bit (the bone analysis relies on it), as smoothing the whole array does
    # (``smoothed_among`` in an order of its own: compared sorted, NaN last).
    rng = np.random.default_rng(3)
    ratio = np.exp(rng.normal(0, 0.3, (40, 50, 6))).astype(np.float32)
    ratio[rng.random(ratio.shape) < 0.05] = np.nan
    marrow = np.zeros(ratio.shape, bool)
    marrow[5:35, 8:45, 1:5] = rng.random((30, 37, 4)) < 0.9
    spacing = np.array([0.5, 0.6, 3.0])
    masked = np.where(marrow, ratio, np.nan)
    for width in (2.0, 6.0, 0.0):
        expected = smooth_within(masked, spacing, width)
        assert np.array_equal(
            smooth_within(ratio, spacing, width, within=marrow), expected, equal_nan=True
        )
        assert np.array_equal(
            np.sort(smoothed_among(ratio, marrow, spacing, width)),
            np.sort(expected[marrow]),
            equal_nan=True,
        )
        # the box of the marrow needs no margin: the same bits as the whole array
        inside = np.isfinite(masked) & (masked > 0)
        size = [2 * int(width / (2 * step)) + 1 if width > 0 else 1 for step in spacing]
        total = ndimage.uniform_filter(np.where(inside, masked, 0).astype(np.float32), size)
        weight = ndimage.uniform_filter(inside.astype(np.float32), size)
        with np.errstate(invalid="ignore", divide="ignore"):
            whole = np.where(inside, total / weight, np.float32(np.nan))
        assert np.array_equal(whole, expected, equal_nan=True)


@pytest.mark.parametrize("seed", [0, 3])
def test_a_wider_seed_scale_starts_more_of_a_large_faint_region_in_mottled_marrow(seed):
    # Marrow mottled at 12 % over patches of a few mm, and a faint region (1.4 x) of
    # 30 x 30 x 24 mm: averaged over 15 mm the mottle shrinks more than over 6 mm and the
    # region does not, so the wider scale (``region_seed_mm``) seeds much more of it.
    from bmetoolkit.ratios import coarse_seed_mask

    rng = np.random.default_rng(seed)
    spacing, shape = np.array([1.0, 1.0, 3.0]), (90, 90, 14)
    mottle = ndimage.gaussian_filter(rng.normal(0, 1, shape), sigma=4.0 / spacing)
    ratio = np.exp(0.12 * mottle / mottle.std() + rng.normal(0, 0.03, shape))
    region = np.zeros(shape, bool)
    region[30:60, 30:60, 3:11] = True
    ratio = np.where(region, 1.4 * ratio, ratio).astype(np.float32)
    marrow = np.ones(shape, bool)

    def seeded(width_mm):
        mask, level = coarse_seed_mask(
            ratio, ~region, marrow, spacing, width_mm=width_mm, z=4.0, floor=1.2
        )
        return np.count_nonzero(mask & region), level

    (fine, fine_level), (wide, wide_level) = seeded(6.0), seeded(15.0)
    assert wide_level < fine_level  # the spread of 15 mm means is smaller
    assert wide > 2 * fine and wide > 0.2 * region.sum()
