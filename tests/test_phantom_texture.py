"""Overlapping texture features of the randomised phantoms (``phantom/texture.py``).

A sample of marrow is one tissue, fatty or red marrow, however many fat spots, fatty bands
or red-marrow islands reach it: where they overlap the signal stays within the features' own
contrasts, never their product (which went up to 2.1 x on the fluid image and 2.6 x on T1
over tuning seeds 0-59 before session 18).
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.data.phantom.anatomy import AnatomyConfig, build_spine
from bmetoolkit.data.phantom.grids import fine_grid
from bmetoolkit.data.phantom.randomize import (
    BAND_RATIOS,
    FAT_SPOT_RATIOS,
    RED_ISLAND_RATIOS,
    _spine,
    draw_case,
)
from bmetoolkit.data.phantom.scene import label_samples
from bmetoolkit.data.phantom.texture import ROLES, Band, Spot, Texture, render_effects

#: No mottling: the spots' and bands' factors alone.
FLAT = dict.fromkeys(ROLES, 0.0)
LEVEL = "L2"
ISLAND_A = {"t1": 0.8, "t2": 1.2, "fluid": 1.4}
ISLAND_B = {"t1": 0.9, "t2": 1.1, "fluid": 1.3}
FAT_A = {"t1": 1.5, "t2": 1.3, "fluid": 0.4}
FAT_B = {"t1": 1.3, "t2": 1.1, "fluid": 0.6}


@pytest.fixture(scope="module")
def body():
    """The default spine and 0.5 mm samples (one per voxel) over its L2 body."""
    spine = build_spine(AnatomyConfig())
    vertebra = spine.vertebra(LEVEL)
    a, b, h = vertebra.ap_radius_mm, vertebra.lr_radius_mm, vertebra.height_mm / 2
    mesh = np.meshgrid((-a, a), (-b, b), (-h, h), indexing="ij")
    grid = fine_grid(vertebra.to_world(*(m.ravel() for m in mesh)), 0.5)
    samples = label_samples(spine, [], grid, np.zeros((1, 3)))
    return spine, samples


def _gain(body, spots=(), bands=()) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per role: the local (ap, lr, si) points of the body's marrow samples and their factor."""
    spine, samples = body
    texture = Texture(spots=tuple(spots), bands=tuple(bands), mottle_sd=FLAT)
    effects = render_effects(texture, spine, [(role, role) for role in ROLES])
    out = {}
    for role in ROLES:
        where, factor = effects[role].sample_gain(samples)
        i, j, k, _ = np.unravel_index(where, samples.code.shape)
        world = samples.grid.voxel_to_world(np.stack([i, j, k], axis=1).astype(np.float64))
        local = np.stack(spine.vertebra(LEVEL).local(*world.T), axis=1)
        out[role] = local, factor
    return out


def _near(local: np.ndarray, centre, radius: float) -> np.ndarray:
    return np.linalg.norm(local - np.asarray(centre), axis=1) <= radius


def test_overlapping_red_islands_take_the_strongest_contrast_not_the_product(body):
    first = Spot(LEVEL, (0.0, 0.0, 0.0), 10.0, ISLAND_A)
    second = Spot(LEVEL, (3.0, 0.0, 0.0), 10.0, ISLAND_B)
    gain = _gain(body, [first, second])
    for role, bound in (("fluid", max), ("t2", max)):
        local, factor = gain[role]
        assert factor.max() == pytest.approx(bound(ISLAND_A[role], ISLAND_B[role]), rel=1e-6)
        both = _near(local, (1.5, 0.0, 0.0), 2.0)  # the cores overlap here
        assert np.allclose(factor[both], ISLAND_A[role], rtol=1e-6), role
    local, t1 = gain["t1"]
    assert t1.min() == pytest.approx(0.8, rel=1e-6)  # the product would be 0.72
    # Past the first island's core, the second island's own core holds.
    second_only = _near(local, (6.5, 0.0, 0.0), 0.5)
    assert np.allclose(gain["fluid"][1][second_only], ISLAND_B["fluid"], rtol=1e-6)


def test_overlapping_fat_spots_and_a_fatty_band_take_the_fattiest(body):
    spine, _ = body
    vertebra = spine.vertebra(LEVEL)
    # A fat spot sitting on the superior endplate's fatty band, another fat spot overlapping it.
    top = vertebra.height_mm / 2 - spine.config.endplate_thickness_mm - 2.0
    band = Band(LEVEL, "superior", 2.5, 1.0, {"t1": 1.4, "t2": 1.2, "fluid": 0.5})
    spots = [Spot(LEVEL, (0.0, 0.0, top), 8.0, FAT_A), Spot(LEVEL, (2.0, 0.0, top), 8.0, FAT_B)]
    gain = _gain(body, spots, [band])
    for role in ROLES:
        ratios = [FAT_A[role], FAT_B[role], band.ratios[role]]
        _, factor = gain[role]
        assert factor.min() >= min([*ratios, 1.0]) * (1 - 1e-6), role
        assert factor.max() <= max([*ratios, 1.0]) * (1 + 1e-6), role
    local, t1 = gain["t1"]
    assert np.allclose(t1[_near(local, (1.0, 0.0, top), 1.5)], FAT_A["t1"], rtol=1e-6)


def test_a_fat_spot_over_a_red_island_shows_as_fat_and_the_island_around_it(body):
    island = Spot(LEVEL, (0.0, 0.0, 0.0), 12.0, ISLAND_A)
    fat = Spot(LEVEL, (0.0, 0.0, 0.0), 4.0, FAT_A)
    gain = _gain(body, [island, fat])
    for role in ROLES:
        local, factor = gain[role]
        inner = _near(local, (0.0, 0.0, 0.0), 1.0)  # both full: fat holds
        assert np.allclose(factor[inner], FAT_A[role], rtol=1e-6), role
        ring = _near(local, (0.0, 0.0, 0.0), 5.0) & ~_near(local, (0.0, 0.0, 0.0), 3.0)
        assert np.allclose(factor[ring], ISLAND_A[role], rtol=1e-6), role
        # Fat and red marrow never cancel into normal marrow, nor multiply.
        reached = _near(local, (0.0, 0.0, 0.0), 5.0)
        assert np.all(np.abs(factor[reached] - 1) > 0.05), role


def test_a_lone_feature_keeps_its_drawn_factor(body):
    island = Spot(LEVEL, (0.0, 0.0, 0.0), 10.0, ISLAND_A)
    local, factor = _gain(body, [island])["fluid"]
    core = _near(local, (0.0, 0.0, 0.0), 4.0)
    rim = _near(local, (0.0, 0.0, 0.0), 5.0) & ~_near(local, (0.0, 0.0, 0.0), 4.9)
    assert np.allclose(factor[core], 1.4, rtol=1e-6)
    assert np.all((factor[rim] > 1.0) & (factor[rim] < 1.4))  # soft rim, as before


@pytest.mark.parametrize("seed", [15, 17, 32])
def test_drawn_textures_stay_within_their_drawn_ranges(seed):
    """Tuning seeds whose drawn spots overlap (islands on 15 and 17; on 32 several fat spots,
    2.6 x on T1 as a product) stay within the features' ranges, at the points of 0.5 mm
    grids over their bodies."""
    draws = draw_case(seed)
    spine = _spine(seed, draws.cortex_mm, draws.endplate_mm, draws.surroundings)
    texture = Texture(spots=draws.texture.spots, bands=draws.texture.bands, mottle_sd=FLAT)
    effects = render_effects(texture, spine, [(role, role) for role in ROLES])
    ranges = (FAT_SPOT_RATIOS, RED_ISLAND_RATIOS, BAND_RATIOS)
    levels = {spot.level for spot in texture.spots}
    for level in levels:
        vertebra = spine.vertebra(level)
        a, b, h = vertebra.ap_radius_mm, vertebra.lr_radius_mm, vertebra.height_mm / 2
        mesh = np.meshgrid((-a, a), (-b, b), (-h, h), indexing="ij")
        grid = fine_grid(vertebra.to_world(*(m.ravel() for m in mesh)), 0.5)
        samples = label_samples(spine, [], grid, np.zeros((1, 3)))
        for role in ROLES:
            _, factor = effects[role].sample_gain(samples)
            low = min(min(r[role][0] for r in ranges), 1.0)
            high = max(max(r[role][1] for r in ranges), 1.0)
            assert low * (1 - 1e-6) <= factor.min(), (level, role)
            assert factor.max() <= high * (1 + 1e-6), (level, role)
