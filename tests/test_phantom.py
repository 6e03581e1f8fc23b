"""Tests of the synthetic spine phantom (bmetoolkit.data.phantom)."""

from __future__ import annotations

import functools
import importlib.util
import itertools

import numpy as np
import pytest

from bmetoolkit.data.phantom import (
    ENDPLATE_COLUMNS,
    Lesion,
    PhantomConfig,
    Tissue,
    make_phantom,
)
from bmetoolkit.data.phantom.lesions import PRESETS
from bmetoolkit.io import load

SMALL = PhantomConfig.small()
LUMBAR_IDS = {18, 19, 20, 21, 22, 23, 24, 26}

#: One large lesion of every kind, each in its own body, so the coarse grids hold pure voxels.
ALL_KINDS = [
    Lesion("L1", "haemangioma", height_frac=0.5, ap_width=0.5, lr_width=0.6),
    Lesion("L2", "edema", height_frac=0.55, ap_width=0.6, lr_width=0.7),
    Lesion("L3", "modic2", endplate="inferior", height_frac=0.45, ap_width=0.8, lr_width=0.8),
    Lesion("L4", "modic1", endplate="inferior", height_frac=0.45, ap_width=0.8, lr_width=0.8),
    Lesion("L5", "modic3", endplate="superior", height_frac=0.45, ap_width=0.8, lr_width=0.8),
]

DICOM_READY = (
    importlib.util.find_spec("bmetoolkit.dicom.write") is not None
    and importlib.util.find_spec("bmetoolkit.dicom.read") is not None
)
needs_dicom = pytest.mark.skipif(
    not DICOM_READY, reason="bmetoolkit.dicom.write / bmetoolkit.dicom.read not available yet"
)


@pytest.fixture(scope="module")
def kinds_study():
    return make_phantom(seed=5, lesions=ALL_KINDS, config=SMALL)


@pytest.fixture(scope="module")
def healthy_study():
    return make_phantom(seed=7, lesions=None, config=SMALL)


def _row(study, level, endplate):
    return next(
        r for r in study.truth.endplates if (r["level"], r["endplate"]) == (level, endplate)
    )


def _mean_signal(study, contrast, tissue):
    volume = study.contrasts[contrast]
    tissue_map = study.truth.grid_masks[contrast]["tissue"].data
    selected = volume.data[tissue_map == tissue].astype(np.float64)
    assert selected.size >= 5, f"too few pure {tissue.name} voxels on {contrast}"
    return float(selected.mean())


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_arrays_and_tables():
    first = make_phantom(seed=3, lesions="random", config=SMALL)
    second = make_phantom(seed=3, lesions="random", config=SMALL)
    for name in ("t1", "t2", "stir"):
        assert np.array_equal(first.contrasts[name].data, second.contrasts[name].data)
        assert np.array_equal(first.contrasts[name].affine, second.contrasts[name].affine)
    for name, mask in first.truth.masks.items():
        assert np.array_equal(mask.data, second.truth.masks[name].data)
    assert first.truth.endplates == second.truth.endplates
    assert first.truth.lesions == second.truth.lesions


def test_different_seeds_differ():
    first = make_phantom(seed=1, lesions="random", config=SMALL)
    second = make_phantom(seed=2, lesions="random", config=SMALL)
    assert not np.array_equal(first.t1.data, second.t1.data)
    assert [lesion.to_dict() for lesion in first.lesions] != [
        lesion.to_dict() for lesion in second.lesions
    ]


def test_lesions_do_not_change_the_noise_stream():
    healthy = make_phantom(seed=4, lesions=None, config=SMALL)
    sick = make_phantom(seed=4, lesions="modic1", config=SMALL)
    changed = healthy.t1.data != sick.t1.data
    lesion_voxels = sick.truth.grid_masks["t1"]["modic_map"].data > 0
    # Only voxels at or next to the lesions change; the rest are bit-identical.
    assert changed.any()
    assert changed.sum() < 4 * lesion_voxels.sum()


# --- signal patterns (DOMAIN.md) -------------------------------------------------------------


def test_t1_signal_pattern(kinds_study):
    marrow = _mean_signal(kinds_study, "t1", Tissue.MARROW)
    assert _mean_signal(kinds_study, "t1", Tissue.MODIC1) < marrow
    assert _mean_signal(kinds_study, "t1", Tissue.EDEMA) < marrow
    assert _mean_signal(kinds_study, "t1", Tissue.MODIC3) < marrow
    assert _mean_signal(kinds_study, "t1", Tissue.MODIC2) > marrow
    assert _mean_signal(kinds_study, "t1", Tissue.HAEMANGIOMA) > marrow


def test_t2_signal_pattern(kinds_study):
    marrow = _mean_signal(kinds_study, "t2", Tissue.MARROW)
    assert _mean_signal(kinds_study, "t2", Tissue.MODIC1) > marrow
    assert _mean_signal(kinds_study, "t2", Tissue.EDEMA) > marrow
    assert _mean_signal(kinds_study, "t2", Tissue.MODIC3) < marrow
    assert _mean_signal(kinds_study, "t2", Tissue.HAEMANGIOMA) > marrow


def test_stir_signal_pattern(kinds_study):
    marrow = _mean_signal(kinds_study, "stir", Tissue.MARROW)
    assert _mean_signal(kinds_study, "stir", Tissue.EDEMA) > 2 * marrow
    assert _mean_signal(kinds_study, "stir", Tissue.MODIC1) > 2 * marrow
    assert _mean_signal(kinds_study, "stir", Tissue.MODIC2) < marrow
    assert _mean_signal(kinds_study, "stir", Tissue.CSF) > marrow


def test_bme_mask_holds_edema_and_modic1_only(kinds_study):
    tissue = kinds_study.truth.tissue.data
    bme = kinds_study.truth.bme_mask.data.astype(bool)
    # A voxel can be mostly-but-not-half lesion (the rest split between marrow and cortex).
    assert bme[tissue == Tissue.EDEMA].mean() > 0.95
    assert bme[tissue == Tissue.MODIC1].mean() > 0.95
    for other in (Tissue.MODIC2, Tissue.MODIC3, Tissue.HAEMANGIOMA, Tissue.MARROW):
        assert not bme[tissue == other].any(), other.name


def test_modic_map_types_and_no_haemangioma(kinds_study):
    tissue = kinds_study.truth.tissue.data
    modic = kinds_study.truth.modic_map.data
    assert set(np.unique(modic)) == {0, 1, 2, 3}
    for value, kind in enumerate((Tissue.MODIC1, Tissue.MODIC2, Tissue.MODIC3), start=1):
        assert (modic[tissue == kind] == value).mean() > 0.95
        assert set(np.unique(modic[tissue == kind])) <= {0, value}
    assert not modic[tissue == Tissue.HAEMANGIOMA].any()
    assert not modic[tissue == Tissue.EDEMA].any()


# --- truth masks and tables ------------------------------------------------------------------


def test_truth_masks_are_integer_labels_on_the_t1_grid(kinds_study):
    for name, mask in kinds_study.truth.masks.items():
        assert mask.is_label, name
        assert np.issubdtype(mask.data.dtype, np.integer), name
        assert mask.grid.same_as(kinds_study.t1.grid), name
    for contrast, masks in kinds_study.truth.grid_masks.items():
        assert masks["bme_mask"].grid.same_as(kinds_study.contrasts[contrast].grid)
    assert set(np.unique(kinds_study.truth.vertebrae.data)) == LUMBAR_IDS | {0}


def test_vertebra_labels_run_cranial_to_caudal(kinds_study):
    labels = kinds_study.truth.vertebrae
    heights = []
    for verse_id in sorted(LUMBAR_IDS):
        ijk = np.argwhere(labels.data == verse_id).mean(axis=0)
        heights.append(labels.grid.voxel_to_world([ijk])[0, 2])
    assert all(a > b for a, b in itertools.pairwise(heights))


def test_healthy_preset_has_empty_truth(healthy_study):
    assert not healthy_study.truth.bme_mask.data.any()
    assert not healthy_study.truth.modic_map.data.any()
    rows = healthy_study.truth.endplates
    assert {r["modic_type"] for r in rows} == {"none"}
    # Two endplates per body, only the superior one for S1 (its caudal end is fused).
    assert len(rows) == 2 * 7 + 1
    assert all(list(r) == list(ENDPLATE_COLUMNS) for r in rows)
    assert healthy_study.truth.lesions == []


def test_every_lesion_kind_has_a_truth_row(kinds_study):
    rows = kinds_study.truth.lesions
    assert [r["kind"] for r in rows] == [lesion.kind for lesion in ALL_KINDS]
    assert all(r["volume_ml"] > 0 for r in rows)
    haemangioma = rows[0]
    assert haemangioma["bme_volume_ml"] == 0
    assert rows[1]["bme_volume_ml"] == pytest.approx(rows[1]["volume_ml"])
    assert _row(kinds_study, "L3", "inferior")["modic_type"] == "II"
    assert _row(kinds_study, "L4", "inferior")["modic_type"] == "I"
    assert _row(kinds_study, "L5", "superior")["modic_type"] == "III"
    assert _row(kinds_study, "L1", "inferior")["modic_type"] == "none"  # haemangioma


@pytest.mark.parametrize(
    ("height_frac", "grade"), [(0.15, "A"), (0.3, "B"), (0.45, "B"), (0.65, "C")]
)
def test_height_grade_follows_the_spec(height_frac, grade):
    lesion = Lesion("L4", "modic1", endplate="inferior", height_frac=height_frac)
    study = make_phantom(seed=0, lesions=[lesion], config=SMALL)
    row = _row(study, "L4", "inferior")
    assert row["height_grade"] == grade
    assert row["height_pct"] == pytest.approx(100 * height_frac, abs=1.5)


@pytest.mark.parametrize(("width", "grade"), [(0.4, "small"), (0.6, "medium"), (0.95, "large")])
def test_area_grade_follows_the_spec(width, grade):
    lesion = Lesion("L3", "modic2", endplate="superior", ap_width=width, lr_width=width)
    study = make_phantom(seed=0, lesions=[lesion], config=SMALL)
    row = _row(study, "L3", "superior")
    assert row["area_grade"] == grade
    # The footprint is an ellipse covering width² of the endplate (less the cortex rim).
    assert row["area_pct"] == pytest.approx(100 * min(width**2, 0.9), abs=8)


@pytest.mark.parametrize(
    ("ap_center", "location"), [(0.6, "anterior"), (0.0, "middle"), (-0.6, "posterior")]
)
def test_location_follows_the_spec(ap_center, location):
    lesion = Lesion("L5", "modic1", endplate="superior", ap_center=ap_center, ap_width=0.3)
    study = make_phantom(seed=0, lesions=[lesion], config=SMALL)
    assert _row(study, "L5", "superior")["location"] == location


@functools.cache
def preset_study(name: str):
    """``make_phantom(seed=0, lesions=name)`` (small), built once per preset for this module."""
    return make_phantom(seed=0, lesions=name, config=SMALL)


def test_mixed_lesions_list_the_dominant_type_first():
    study = preset_study("mixed")
    row = _row(study, "L4", "inferior")
    assert row["modic_type"] == "I/II"
    assert row["volume_ml_I"] > row["volume_ml_II"] > 0
    assert row["volume_ml"] == pytest.approx(row["volume_ml_I"] + row["volume_ml_II"], abs=1e-3)
    assert _row(study, "L2", "superior")["modic_type"] == "II/III"
    # Only the type I part of a mixed I/II lesion is edema.
    lesion_row = study.truth.lesions[0]
    assert 0 < lesion_row["bme_volume_ml"] < lesion_row["volume_ml"]


def test_table_volume_matches_mask_volume():
    lesion = Lesion("L3", "edema", height_frac=0.6, ap_width=0.7, lr_width=0.8)
    study = make_phantom(seed=0, lesions=[lesion], config=SMALL)
    mask_ml = study.truth.bme_mask.data.sum() * study.t1.grid.voxel_volume_mm3 / 1000
    assert mask_ml == pytest.approx(study.truth.lesions[0]["volume_ml"], rel=0.25)


@pytest.mark.slow
def test_fine_truth_matches_the_tables():
    study = preset_study("mixed")
    fine = study.fine_truth(0.5)
    voxel_ml = 0.5**3 / 1000
    bme_ml = sum(r["bme_volume_ml"] for r in study.truth.lesions)
    assert fine["bme_mask"].data.sum() * voxel_ml == pytest.approx(bme_ml, rel=0.03)
    modic_ml = sum(r["volume_ml"] for r in study.truth.endplates)
    assert (fine["modic_map"].data > 0).sum() * voxel_ml == pytest.approx(modic_ml, rel=0.03)
    assert fine["vertebrae"].grid.axcodes == ("R", "A", "S")


@pytest.mark.slow
def test_every_preset_builds():
    for name in PRESETS:
        study = preset_study(name)
        assert len(study.truth.lesions) == len(PRESETS[name])


def test_invalid_lesions_are_refused():
    with pytest.raises(ValueError, match="endplate"):
        Lesion("L4", "modic1")
    with pytest.raises(ValueError, match="away from the endplates"):
        Lesion("L4", "edema", endplate="inferior")
    with pytest.raises(ValueError, match="unknown lesion kind"):
        Lesion("L4", "modic4", endplate="inferior")
    with pytest.raises(ValueError, match="levels"):
        make_phantom(lesions=[Lesion("C5", "haemangioma")], config=SMALL)
    with pytest.raises(ValueError, match="no inferior endplate"):
        make_phantom(lesions=[Lesion("S1", "modic1", endplate="inferior")], config=SMALL)
    with pytest.raises(ValueError, match="unknown preset"):
        make_phantom(lesions="nonsense", config=SMALL)


# --- grids -----------------------------------------------------------------------------------


def test_each_contrast_has_its_own_grid(kinds_study):
    t1, t2, stir = kinds_study.t1.grid, kinds_study.t2.grid, kinds_study.stir.grid
    assert not t1.same_as(t2) and not t1.same_as(stir) and not t2.same_as(stir)
    for grid, spec in zip((t1, t2, stir), SMALL.grids.values(), strict=True):
        assert grid.shape == spec.shape
        assert np.allclose(grid.spacing, spec.spacing)
        assert grid.spacing[0] != grid.spacing[1]  # non-square pixels
        assert grid.axcodes == ("P", "I", "R")


def test_tilt_shows_in_the_affine(kinds_study):
    for name, volume in kinds_study.contrasts.items():
        normal = volume.grid.direction[:, 2]
        angle = np.degrees(np.arccos(abs(normal[0])))
        tilt = SMALL.grids[name].tilt_deg
        assert angle == pytest.approx(np.hypot(tilt[1], tilt[2]), abs=0.1), name
        assert angle > 1.0
    flat = SMALL.with_grid("t1", tilt_deg=(0.0, 0.0, 0.0))
    straight = make_phantom(seed=5, lesions=None, config=flat)
    assert np.allclose(straight.t1.grid.direction[:, 2], [1, 0, 0])


def test_slice_gap_and_thickness_in_meta(kinds_study):
    for name, volume in kinds_study.contrasts.items():
        spec = SMALL.grids[name]
        assert volume.meta["SliceThickness"] == spec.slice_thickness_mm
        assert volume.spacing[2] == pytest.approx(spec.slice_spacing_mm)
    assert kinds_study.stir.meta["InversionTime"] == pytest.approx(0.16)
    assert "IR" in kinds_study.stir.meta["ScanningSequence"]
    assert kinds_study.t1.meta["ScanningSequence"] == "SE"


def test_images_are_scanner_like_integers(kinds_study):
    for volume in kinds_study.contrasts.values():
        assert volume.data.dtype == np.uint16
        assert volume.kind == "intensity"
        assert volume.data.max() > 100


# --- writing ---------------------------------------------------------------------------------


def test_nifti_round_trip(kinds_study, tmp_path):
    written = kinds_study.write_nifti(tmp_path)
    for name, volume in kinds_study.contrasts.items():
        loaded = load(written[name])
        assert np.array_equal(loaded.data, volume.data)
        assert loaded.data.dtype == volume.data.dtype
        assert np.allclose(loaded.affine, volume.affine, atol=1e-4)
    for name, mask in kinds_study.truth.masks.items():
        loaded = load(written[name], kind="label")
        assert np.array_equal(loaded.data, mask.data)
        assert np.allclose(loaded.affine, mask.affine, atol=1e-4)
    text = written["endplates_csv"].read_text().splitlines()
    assert text[0].split(",") == list(ENDPLATE_COLUMNS)
    assert len(text) == 1 + len(kinds_study.truth.endplates)


@needs_dicom
def test_dicom_round_trip_equals_nifti(kinds_study, tmp_path):
    import pydicom

    from bmetoolkit.dicom.read import load_dicom, scan_dicom

    nifti = kinds_study.write_nifti(tmp_path / "nifti")
    files = kinds_study.write_dicom(tmp_path / "dicom")
    on_disk = sorted(p.name for p in (tmp_path / "dicom").iterdir())
    assert len(on_disk) == sum(v.shape[2] for v in kinds_study.contrasts.values())
    assert [p.name for p in files["t1"]] != sorted(p.name for p in files["t1"])  # shuffled
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in (tmp_path / "dicom").iterdir()]
    assert len({h.StudyInstanceUID for h in headers}) == 1
    assert len({h.FrameOfReferenceUID for h in headers}) == 1
    assert len({h.SeriesInstanceUID for h in headers}) == 3
    assert len(scan_dicom(tmp_path / "dicom")) == 3
    for name, number in (("t1", 2), ("t2", 3), ("stir", 4)):
        from_dicom = load_dicom(tmp_path / "dicom", series=number)
        from_nifti = load(nifti[name])
        assert np.array_equal(from_dicom.data, from_nifti.data), name
        assert np.allclose(from_dicom.affine, from_nifti.affine, atol=1e-4), name


@needs_dicom
def test_dicom_sagittal_oblique_non_square_case(tmp_path):
    """The geometry case most prone to bugs: oblique, non-square pixels, a slice gap."""
    from bmetoolkit.dicom.read import load_dicom

    config = SMALL.with_grid("t1", tilt_deg=(4.0, 3.0, 6.0), pixel_ap_mm=2.5, pixel_si_mm=3.3)
    study = make_phantom(seed=11, lesions="modic2", config=config)
    study.write_dicom(tmp_path)
    from_dicom = load_dicom(tmp_path, series="T1_TSE_SAG")
    assert np.array_equal(from_dicom.data, study.t1.data)
    assert np.allclose(from_dicom.affine, study.t1.affine, atol=1e-4)
    assert from_dicom.meta.get("SliceThickness") == pytest.approx(4.0)
