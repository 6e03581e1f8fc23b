"""Tests of the domain-randomised phantoms (bmetoolkit.data.phantom.randomize)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.data.phantom.anatomy import Tissue, body_height_reference_mm
from bmetoolkit.data.phantom.build import PhantomStudy
from bmetoolkit.data.phantom.randomize import (
    AORTA_RADIUS_MM,
    BAND_RATIOS,
    BAND_THICKNESS_MM,
    BIAS_AMPLITUDE,
    BONE_THICKNESS_MM,
    BOWEL_GAS_POCKETS,
    CENTRAL_EDEMA_HEIGHT,
    DARK_DISC_RATIO,
    FAT_SPOT_DIAMETER_MM,
    FAT_SPOT_RATIOS,
    FULL_SLICES,
    GAP_MM,
    HAEMANGIOMA_MARGIN_MM,
    HELD_OUT_SEEDS,
    ILIAC_LR_MM,
    LESION_MARGIN_MM,
    LESION_RATIOS,
    MIXED_MODIC_WEIGHTS,
    MOTTLE_LENGTH_MM,
    MOTTLE_SD,
    N_LESIONS,
    PIXEL_MM,
    RED_ISLAND_DIAMETER_MM,
    RED_ISLAND_RATIOS,
    SLICE_THICKNESS_MM,
    SNR,
    THIN_SLAB_SLICES,
    TUNING_SEEDS,
    VEIN_DEPTH,
    VEIN_HEIGHT_MM,
    VEIN_RATIOS,
    VEIN_SI,
    VEIN_SPLIT,
    VEIN_WIDTH_MM,
    CaseDraws,
    _spine,
    case_kind,
    draw_case,
    make_randomized_phantom,
    render_case,
)
from bmetoolkit.data.phantom.texture import ROLES, Band, Bias, Spot, Texture, Vein, disc_names
from bmetoolkit.data.phantom.truth import endplates_of

#: Seeds whose draws are checked against the stated ranges (draws only, nothing rendered).
DRAW_SEEDS = range(120)
#: A small seed set for rendered cases.
SEED = 11


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


#: Phantoms rendered by :func:`render_once`, by the draws they were rendered from.
_RENDERED: dict[str, PhantomStudy] = {}


def render_once(draws: CaseDraws) -> PhantomStudy:
    """``render_case(draws)``, rendered once per module for the same draws (the tests only
    read it)."""
    key = repr(draws)
    if key not in _RENDERED:
        _RENDERED[key] = render_case(draws)
    return _RENDERED[key]


def rendered(
    seed: int = SEED, kind: str = "random", *, plain_texture: bool = False, **changes
) -> PhantomStudy:
    """The small phantom of ``seed`` with ``changes`` to its draws (``plain_texture``: without
    texture), from :func:`render_once`."""
    draws = draw_case(seed, kind=kind, small=True)
    return render_once(
        replace(draws, **changes, **({"texture": Texture()} if plain_texture else {}))
    )


@pytest.fixture(scope="module")
def all_draws():
    return [draw_case(seed, kind=case_kind(seed), small=True).to_dict() for seed in DRAW_SEEDS]


def _truth_arrays(study):
    return {
        (contrast, name): mask.data
        for contrast, masks in study.truth.grid_masks.items()
        for name, mask in masks.items()
    }


def _busy_texture(draws) -> Texture:
    """Texture everywhere: a fat spot and an island per body, a band on every endplate."""
    lesion_levels = [lesion.level for lesion in draws.lesions]
    spine = render_once(draws).spine
    spots = []
    for vertebra in spine.vertebrae:
        if vertebra.level in lesion_levels:
            continue
        spots.append(
            Spot(vertebra.level, (3.0, 0.0, 2.0), 8.0, {"t1": 1.5, "t2": 1.3, "fluid": 0.4})
        )
        spots.append(
            Spot(vertebra.level, (-6.0, 0.0, -3.0), 12.0, {"t1": 0.75, "t2": 1.2, "fluid": 1.5})
        )
    bands = [
        Band(v.level, endplate, 2.5, 1.0, {"t1": 1.4, "t2": 1.2, "fluid": 0.5})
        for v in spine.vertebrae
        for endplate in endplates_of(spine, v)
    ]
    return Texture(
        spots=tuple(spots),
        bands=tuple(bands),
        mottle_sd=dict.fromkeys(ROLES, 0.12),
        mottle_length_mm=3.0,
        mottle_seed=5,
        dark_discs=dict.fromkeys(disc_names(spine), 0.3),
        bias=Bias(0.6, (0.0, 0.6, 0.8)),
    )


# --- determinism and seed sets ---------------------------------------------------------------


def test_same_seed_gives_identical_arrays_truth_and_draws():
    first = rendered()
    second = make_randomized_phantom(SEED, small=True)
    for name, volume in first.contrasts.items():
        assert np.array_equal(volume.data, second.contrasts[name].data), name
        assert volume.data.dtype == second.contrasts[name].data.dtype
        assert np.array_equal(volume.affine, second.contrasts[name].affine), name
    first_truth, second_truth = _truth_arrays(first), _truth_arrays(second)
    assert all(np.array_equal(first_truth[key], second_truth[key]) for key in first_truth)
    assert first.truth.endplates == second.truth.endplates
    assert first.render_parameters == second.render_parameters
    other = make_randomized_phantom(SEED + 1, small=True)
    assert other.render_parameters["randomization"] != first.render_parameters["randomization"]


def test_recorded_draws_are_the_drawn_ones():
    study = make_randomized_phantom(SEED, kind="central_edema", small=True)
    assert (
        study.render_parameters["randomization"]
        == draw_case(SEED, kind="central_edema", small=True).to_dict()
    )


def test_seed_sets_are_disjoint_and_share_the_kind_proportions():
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
    for seeds in (TUNING_SEEDS, HELD_OUT_SEEDS):
        counts = Counter(case_kind(seed) for seed in seeds)
        assert counts == {
            "random": 0.7 * len(seeds),
            "healthy": 0.2 * len(seeds),
            "central_edema": 0.1 * len(seeds),
        }


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        draw_case(0, kind="fracture")


# --- draws within the stated ranges -----------------------------------------------------------


def test_lesion_contrast_and_margins_within_ranges(all_draws):
    for draws in all_draws:
        for role, ratios in draws["lesion_ratios"].items():
            for tissue, value in ratios.items():
                assert _within(value, LESION_RATIOS[role][Tissue[tissue]]), (role, tissue, value)
        for lesion in draws["lesions"]:
            bounds = HAEMANGIOMA_MARGIN_MM if lesion["kind"] == "haemangioma" else LESION_MARGIN_MM
            assert _within(lesion["margin_mm"], bounds), lesion


def test_lesions_follow_the_kind(all_draws):
    for draws in all_draws:
        findings = [x for x in draws["lesions"] if x["kind"] != "haemangioma"]
        if draws["kind"] == "random":
            assert _within(len(findings), N_LESIONS), draws["lesions"]
        elif draws["kind"] == "healthy":
            assert findings == []
        else:
            assert [x["kind"] for x in findings] == ["edema"]
            assert _within(findings[0]["height_frac"], CENTRAL_EDEMA_HEIGHT)
    kinds = {x["kind"] for draws in all_draws for x in draws["lesions"]}
    assert {"modic1", "modic2", "modic3", "edema", "haemangioma"} <= kinds


def test_mixed_modic_cases_hold_type_iii_and_mixed_changes_only():
    """The sweep kind for the bands a decision finds in fragments; the seeds' own kinds and
    their draws do not change (the kind is never a seed's own)."""
    kinds = set()
    for seed in range(8):
        draws = draw_case(seed, kind="mixed_modic", small=True).to_dict()
        findings = [x for x in draws["lesions"] if x["kind"] != "haemangioma"]
        assert _within(len(findings), N_LESIONS), draws["lesions"]
        assert all(x["endplate"] in ("superior", "inferior") for x in findings)
        kinds |= {x["kind"] for x in findings}
    assert kinds <= set(MIXED_MODIC_WEIGHTS) and len(kinds) >= 3
    assert "mixed_modic" not in {case_kind(seed) for seed in range(100)}


def test_texture_draws_within_ranges(all_draws):
    for draws in all_draws:
        texture = draws["texture"]
        for spot in texture["spots"]:
            fat = _within(spot["diameter_mm"], FAT_SPOT_DIAMETER_MM) and all(
                _within(spot["ratios"][r], FAT_SPOT_RATIOS[r]) for r in ROLES
            )
            island = _within(spot["diameter_mm"], RED_ISLAND_DIAMETER_MM) and all(
                _within(spot["ratios"][r], RED_ISLAND_RATIOS[r]) for r in ROLES
            )
            assert fat or island, spot
        for band in texture["bands"]:
            assert _within(band["thickness_mm"], BAND_THICKNESS_MM)
            assert all(_within(band["ratios"][r], BAND_RATIOS[r]) for r in ROLES)
        assert all(_within(sd, MOTTLE_SD) for sd in texture["mottle_sd"].values())
        assert _within(texture["mottle_length_mm"], MOTTLE_LENGTH_MM)
        assert all(_within(v, DARK_DISC_RATIO) for v in texture["dark_discs"].values())
        assert _within(texture["bias"]["amplitude"], BIAS_AMPLITUDE)
        assert np.linalg.norm(texture["bias"]["direction"]) == pytest.approx(1.0)
        assert _within(draws["cortex_mm"], BONE_THICKNESS_MM)
        assert _within(draws["endplate_mm"], BONE_THICKNESS_MM)
    assert any(draws["texture"]["bands"] for draws in all_draws)
    assert any(draws["texture"]["dark_discs"] for draws in all_draws)


def test_acquisition_draws_within_ranges(all_draws):
    for draws in all_draws:
        assert all(_within(snr, SNR) for snr in draws["snr"].values())
        slices = THIN_SLAB_SLICES if draws["fov"] == "thin_slab" else FULL_SLICES
        for role, grid in draws["grids"].items():
            assert _within(grid["slice_thickness_mm"], SLICE_THICKNESS_MM)
            gap = grid["slice_spacing_mm"] - grid["slice_thickness_mm"]
            assert gap == 0 or _within(gap, GAP_MM)
            assert _within(grid["n_slices"], slices)
            assert all(_within(p, PIXEL_MM) for p in draws["pixel_mm"][role])
    seen = {name: {d[name] for d in all_draws} for name in ("fluid", "storage", "fov")}
    assert seen == {
        "fluid": {"stir", "t2fs"},
        "storage": {"uint16", "uint8", "float32"},
        "fov": {"full", "thin_slab", "top_cut"},
    }


# --- truth stays exact -------------------------------------------------------------------------


def test_texture_bands_dark_discs_and_bias_never_enter_the_truth():
    draws = draw_case(SEED, small=True)
    plain = rendered(plain_texture=True, storage="uint16")
    busy = render_case(replace(draws, texture=_busy_texture(draws), storage="uint16"))
    plain_truth, busy_truth = _truth_arrays(plain), _truth_arrays(busy)
    assert all(np.array_equal(plain_truth[key], busy_truth[key]) for key in plain_truth)
    assert plain.truth.endplates == busy.truth.endplates
    assert plain.truth.lesions == busy.truth.lesions
    for name in ("t1", "t2", "stir"):
        changed = plain.contrasts[name].data != busy.contrasts[name].data
        assert changed.mean() > 0.2, name  # the bias field touches most voxels


def test_texture_changes_marrow_signal_the_stated_way():
    draws = replace(draw_case(SEED, small=True), storage="uint16")
    texture = _busy_texture(draws)
    only_spots = replace(Texture(), spots=tuple(s for s in texture.spots if s.ratios["t1"] > 1))
    plain = rendered(plain_texture=True, storage="uint16")
    fatty = render_case(replace(draws, texture=only_spots))
    marrow = plain.truth.tissue.data == Tissue.MARROW
    t1 = fatty.t1.data[marrow].astype(float) - plain.t1.data[marrow].astype(float)
    assert t1.mean() > 0  # fat spots: brighter T1
    fluid_marrow = plain.truth.grid_masks["stir"]["tissue"].data == Tissue.MARROW
    fluid = fatty.stir.data[fluid_marrow].astype(float) - plain.stir.data[fluid_marrow].astype(
        float
    )
    assert fluid.mean() < 0  # ... darker once fat is suppressed


def test_a_faint_lesion_is_in_the_truth():
    draws = replace(draw_case(SEED, kind="central_edema", small=True), texture=Texture())
    lesion = replace(draws.lesions[0], margin_mm=LESION_MARGIN_MM[1])
    faint_ratios = {"t1": 1.05, "t2": 1.1, "fluid": 1.2}
    strong_ratios = {"t1": 0.45, "t2": 2.0, "fluid": 3.5}

    def with_edema(ratios: dict[str, float]):
        lesion_ratios = {
            role: values | {"EDEMA": ratios[role]} for role, values in draws.lesion_ratios.items()
        }
        return render_case(
            replace(draws, lesions=(lesion,), lesion_ratios=lesion_ratios, storage="uint16")
        )

    faint, strong = with_edema(faint_ratios), with_edema(strong_ratios)
    bme = faint.truth.grid_masks["stir"]["bme_mask"].data > 0
    assert bme.sum() > 5
    assert np.array_equal(faint.truth.bme_mask.data, strong.truth.bme_mask.data)
    assert faint.truth.lesions == strong.truth.lesions
    assert {row["modic_type"] for row in faint.truth.endplates} == {"none"}
    marrow = faint.truth.grid_masks["stir"]["tissue"].data == Tissue.MARROW

    def contrast(study) -> float:
        data = study.stir.data.astype(float)
        return float(data[bme].mean() / data[marrow].mean())

    assert 1.0 < contrast(faint) < contrast(strong)


def test_central_edema_stays_off_the_endplates():
    study = rendered(kind="central_edema")
    (row,) = [r for r in study.truth.lesions if r["kind"] == "edema"]
    assert row["zone"] == "body" and row["bme_volume_ml"] > 0
    assert {r["modic_type"] for r in study.truth.endplates} == {"none"}
    assert study.truth.bme_mask.data.any()


# --- storage, fluid image, field of view -----------------------------------------------------


def test_8_bit_and_float_storage():
    eight = rendered(storage="uint8")
    for name, volume in eight.contrasts.items():
        assert volume.data.dtype == np.uint8, name
        assert volume.data.max() == 255  # the window clips the brightest voxels
    floats = rendered(storage="float32", float_scale=0.01)
    plain = rendered(storage="uint16")
    assert floats.t1.data.dtype == np.float32
    assert np.allclose(floats.t1.data, plain.t1.data * 0.01, rtol=1e-6)


def test_fs_t2_is_classified_fluid_sensitive(tmp_path):
    from bmetoolkit.dicom.read import scan_dicom
    from bmetoolkit.pairing.contrast import classify_series

    for fluid, expected in (("t2fs", "T2"), ("stir", "STIR")):
        study = rendered(fluid=fluid, storage="uint16")
        study.write_dicom(tmp_path / fluid)
        calls = {info.number: classify_series(info) for info in scan_dicom(tmp_path / fluid)}
        assert (calls[2].contrast, calls[2].fat_suppressed) == ("T1", False)
        assert (calls[3].contrast, calls[3].fat_suppressed) == ("T2", False)
        assert (calls[4].contrast, calls[4].fat_suppressed) == (expected, True), calls[4].reasons
    fs_t2 = rendered(plain_texture=True, fluid="t2fs", storage="uint16")
    stir = rendered(plain_texture=True, fluid="stir", storage="uint16")
    fluid_csf = fs_t2.truth.grid_masks["stir"]["tissue"].data == Tissue.CSF
    assert fs_t2.stir.data[fluid_csf].mean() > 0  # rendered, with its own table
    assert not np.array_equal(fs_t2.stir.data, stir.stir.data)


def test_top_cut_field_of_view_cuts_the_top_body():
    cut = next(s for s in range(200) if draw_case(s, small=True).fov == "top_cut")
    study = make_randomized_phantom(cut, small=True)
    top = study.spine.vertebrae[0]
    labels = study.truth.vertebrae.data
    assert (labels[:, 0, :] == top.verse_id).any()  # the top row runs through the top body
    assert (labels == top.verse_id).sum() < (labels == study.spine.vertebrae[1].verse_id).sum()
    assert all(lesion.level != top.level for lesion in study.lesions)


def test_thin_slab_has_few_slices():
    slab = next(s for s in range(200) if draw_case(s, small=True).fov == "thin_slab")
    study = make_randomized_phantom(slab, small=True)
    for volume in study.contrasts.values():
        assert _within(volume.shape[2], THIN_SLAB_SLICES)


# --- the "real anatomy" family: vessels, iliac wings, bowel gas ------------------------------


def test_real_anatomy_adds_surroundings_without_moving_the_other_draws():
    plain, real = draw_case(3), draw_case(3, real_anatomy=True)
    assert plain.surroundings == {}
    assert replace(real, surroundings={}) == plain
    for seed in TUNING_SEEDS[:20]:
        drawn = draw_case(seed, real_anatomy=True).surroundings
        assert drawn["aorta_radius_mm"] == 0 or _within(drawn["aorta_radius_mm"], AORTA_RADIUS_MM)
        assert drawn["iliac_lr_mm"] == 0 or _within(drawn["iliac_lr_mm"], ILIAC_LR_MM)
        assert _within(len(drawn["bowel_gas"]), BOWEL_GAS_POCKETS)


def test_vessels_are_flow_voids_against_the_bodies_and_leave_the_truth_alone():
    seed = next(
        s for s in TUNING_SEEDS if draw_case(s, real_anatomy=True).surroundings["aorta_radius_mm"]
    )
    plain = make_randomized_phantom(seed, kind="healthy", small=True)
    real = make_randomized_phantom(seed, kind="healthy", small=True, real_anatomy=True)
    np.testing.assert_array_equal(real.truth.vertebrae.data, plain.truth.vertebrae.data)
    tissue_plain = np.asarray(plain.truth.masks["tissue"].data)
    tissue_real = np.asarray(real.truth.masks["tissue"].data)
    became_void = (tissue_real == Tissue.AIR) & (tissue_plain == Tissue.VISCERA)
    assert became_void.sum() > 100  # the vessels (and gas) in front of the spine
    t1_real, t1_plain = np.asarray(real.t1.data, float), np.asarray(plain.t1.data, float)
    assert t1_real[became_void].mean() < 0.3 * t1_plain[became_void].mean()


# --- basivertebral veins ---------------------------------------------------------------------


def test_vein_draws_within_ranges_in_most_bodies_but_not_all(all_draws):
    bodies = with_vein = 0
    splits = set()
    for draws in all_draws:
        veins = draws["texture"]["veins"]
        levels = [vein["level"] for vein in veins]
        assert len(levels) == len(set(levels))  # at most one per body
        spine = _spine(draws["seed"], draws["cortex_mm"], draws["endplate_mm"])
        assert set(levels) <= set(spine.levels)
        for vein in veins:
            half = body_height_reference_mm(spine.vertebra(vein["level"])) / 2
            assert _within(vein["si_mm"] / half, VEIN_SI)
            assert _within(vein["height_mm"], VEIN_HEIGHT_MM)
            assert _within(vein["width_mm"], VEIN_WIDTH_MM)
            assert _within(vein["depth_frac"], VEIN_DEPTH)
            assert vein["split_frac"] == 1.0 or _within(vein["split_frac"], VEIN_SPLIT)
            assert all(_within(vein["ratios"][r], VEIN_RATIOS[r]) for r in ROLES)
            splits.add(vein["split_frac"] < 1)
        bodies += len(spine.vertebrae)
        with_vein += len(veins)
    assert splits == {True, False}
    assert 0.6 < with_vein / bodies < 0.95  # most bodies, not all


def _vein_everywhere(draws: CaseDraws) -> Texture:
    """One strong, straight vein in every body without a lesion."""
    spine = render_once(draws).spine
    lesion_levels = {lesion.level for lesion in draws.lesions}
    veins = tuple(
        Vein(v.level, 0.0, 4.0, 7.0, 0.45, 1.0, 5.0, {"t1": 0.7, "t2": 2.5, "fluid": 2.5})
        for v in spine.vertebrae
        if v.level not in lesion_levels
    )
    return Texture(veins=veins)


@pytest.fixture(scope="module")
def vein_pair():
    """The full-size case of ``SEED`` without texture and with a vein in every free body."""
    draws = replace(draw_case(SEED), storage="uint16", fov="full")
    plain = render_case(replace(draws, texture=Texture()))
    veined = render_case(replace(draws, texture=_vein_everywhere(draws)))
    return plain, veined


def test_a_vein_is_in_its_own_truth_mask_inside_the_body_never_edema(vein_pair):
    plain, veined = vein_pair
    for name in ("t1", "t2", "stir"):
        masks = veined.truth.grid_masks[name]
        vein = masks["vein"].data > 0
        assert vein.sum() > 20, name
        assert (masks["vertebrae"].data[vein] > 0).all()
        assert not (masks["bme_mask"].data[vein] > 0).any()
        assert not plain.truth.grid_masks[name]["vein"].data.any()
        for key in ("bme_mask", "modic_map", "vertebrae", "tissue"):
            assert np.array_equal(masks[key].data, plain.truth.grid_masks[name][key].data)
    assert veined.truth.masks["vein"] is veined.truth.grid_masks["t1"]["vein"]


def test_a_vein_is_bright_on_fluid_images_not_on_t1_and_opens_through_the_wall(vein_pair):
    plain, veined = vein_pair
    for name, brighter in (("stir", True), ("t2", True), ("t1", False)):
        masks = veined.truth.grid_masks[name]
        vein = masks["vein"].data > 0
        change = veined.contrasts[name].data[vein].astype(float) / np.maximum(
            plain.contrasts[name].data[vein].astype(float), 1.0
        )
        assert (np.median(change) > 1.3) if brighter else (np.median(change) < 0.95), name
        wall = vein & (masks["tissue"].data == Tissue.CORTEX)
        assert wall.any(), name  # the posterior wall's opening is part of the vein
