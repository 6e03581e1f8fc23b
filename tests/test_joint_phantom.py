"""Tests of the joint (knee) phantom: bmetoolkit.data.phantom.joint."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import nibabel as nib
import numpy as np
import pytest

from bmetoolkit.data.phantom.joint import (
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    JointPhantom,
    KneeAnatomy,
    draw_joint_case,
    make_joint_phantom,
    render_joint_case,
    write_joint_phantom,
)
from bmetoolkit.data.phantom.joint.acquisition import slice_normal
from bmetoolkit.data.phantom.joint.anatomy import JointTissue
from bmetoolkit.data.phantom.joint.lesions import EDEMA_RATIOS, JointLesion, draw_lesion
from bmetoolkit.data.phantom.joint.randomize import OBLIQUE_DEG, TILT_DEG
from bmetoolkit.data.phantom.joint.scan import Scene, _memberships, _signal
from bmetoolkit.data.phantom.joint.truth import lesion_rows
from bmetoolkit.data.phantom.randomize import RED_ISLAND_RATIOS

#: Axis codes of each plane's untilted grid, and the world axis its slices are normal to.
PLANE_AXCODES = {
    "sagittal": (("P", "I", "R"), 0),
    "coronal": (("L", "I", "P"), 1),
    "axial": (("L", "P", "S"), 2),
    "oblique": (("P", "I", "R"), 0),
}
#: Largest angle (degrees) three small tilts of up to TILT_DEG each can turn an axis by.
SMALL_TILT_DEG = TILT_DEG * np.sqrt(3) + 0.5


@cache
def phantom(seed: int = 2, **options) -> JointPhantom:
    """A small phantom, built once per set of options."""
    return make_joint_phantom(seed, small=True, **options)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(a @ b), 0, 1))))


@pytest.mark.parametrize("plane", list(PLANE_AXCODES))
def test_each_plane_has_its_acquisition_orientation(plane):
    ph = phantom(plane=plane)
    axcodes, normal_axis = PLANE_AXCODES[plane]
    for image in (ph.t1, ph.fluid):
        assert image.grid.axcodes == axcodes
        angle = _angle_deg(slice_normal(image.grid), np.eye(3)[normal_axis])
        if plane == "oblique":
            assert OBLIQUE_DEG[0] - SMALL_TILT_DEG <= angle <= OBLIQUE_DEG[1] + SMALL_TILT_DEG
        else:
            assert angle <= SMALL_TILT_DEG
    assert ph.draws.acquisitions["t1"].plane == plane
    assert ph.t1.meta["SeriesDescription"].startswith("T1_TSE_")


def test_oblique_grids_are_tilted_beyond_the_small_random_tilt():
    angles = [
        _angle_deg(slice_normal(draw_joint_case(seed, plane="oblique", small=True)
                                .acquisitions["t1"].grid(np.zeros(3))), np.eye(3)[0])
        for seed in range(20)
    ]  # fmt: skip
    assert min(angles) > OBLIQUE_DEG[0] - SMALL_TILT_DEG
    assert max(angles) > SMALL_TILT_DEG


def test_t1_and_fluid_grids_differ_and_are_anisotropic():
    ph = phantom()
    assert not ph.t1.grid.same_as(ph.fluid.grid)
    for image in (ph.t1, ph.fluid):
        spacing = image.spacing
        assert spacing[2] > 2 * max(spacing[:2])
        assert image.data.dtype == np.uint16
    assert ph.truth.bones.grid.same_as(ph.t1.grid)


def test_realistic_grid_sizes_are_drawn_from_the_stated_ranges():
    for seed in range(12):
        for acquisition in draw_joint_case(seed).acquisitions.values():
            n_i, n_j, n_k = acquisition.shape
            assert 0.3 - 1e-9 <= min(acquisition.pixel_mm) and max(acquisition.pixel_mm) <= 0.8
            assert 170 <= n_i <= 600 and 170 <= n_j <= 600 and 20 <= n_k <= 40
            assert 2.5 <= acquisition.slice_thickness_mm <= 4.5


def test_small_grids_are_about_96_by_96_by_16():
    ph = phantom()
    for image in (ph.t1, ph.fluid):
        assert image.shape[0] == 96 and 60 <= image.shape[1] <= 130 and image.shape[2] == 16


def test_truth_masks_lie_inside_their_bones_and_never_overlap():
    ph = phantom(3, lesions=("edema", "bruise", "cyst", "island", "island"))
    truth = ph.truth
    bones = truth.bones.data
    assert set(np.unique(bones)) == {0, 1, 2, 3}
    assert truth.bones.data.dtype == np.uint8
    bme, cyst, island = (m.data.astype(bool) for m in (truth.bme_mask, truth.cyst_mask,
                                                         truth.islands_mask))  # fmt: skip
    assert bme.any()
    for mask in (bme, cyst, island, truth.marrow.data > 0):
        assert np.all(bones[mask] > 0)
    assert np.array_equal(truth.marrow.data[truth.marrow.data > 0], bones[truth.marrow.data > 0])
    assert not (bme & cyst).any() and not (bme & island).any() and not (cyst & island).any()


def test_a_cyst_inside_edema_is_not_edema_and_is_fluid_bright():
    lesions = [
        {"kind": "edema", "site": "medial tibial plateau"},
        {"kind": "cyst", "site": "medial tibial plateau"},
    ]
    ph = make_joint_phantom(4, lesions=lesions, with_t1=False, small=True)
    cyst = ph.truth.cyst_mask.data.astype(bool)
    assert cyst.any()
    assert not (cyst & ph.truth.bme_mask.data.astype(bool)).any()
    rows = {row["kind"]: row for row in ph.truth.lesions}
    assert not rows["cyst"]["is_edema"] and rows["edema"]["is_edema"]
    normal = (ph.truth.marrow.data > 0) & ~ph.truth.bme_mask.data.astype(bool) & ~cyst
    fluid = ph.fluid.data.astype(float)
    assert np.median(fluid[cyst]) > 2 * np.median(fluid[normal])


def test_healthy_case_has_islands_only_and_an_empty_bme_mask():
    for seed in (5, 6):
        ph = phantom(seed, lesions="none")
        assert {row["kind"] for row in ph.truth.lesions} == {"island"}
        assert not ph.truth.bme_mask.data.any() and not ph.truth.cyst_mask.data.any()
        assert all(row["bme_ml"] == 0 and row["n_lesions"] == 0 for row in ph.truth.bones_table)


def test_edema_touches_the_articular_surface_and_a_deep_bruise_does_not():
    for seed in range(6):
        draws = draw_joint_case(
            seed, lesions=["edema", {"kind": "bruise", "touch": False}], small=True
        )
        scene = Scene.build(draws.anatomy, draws.lesions, mottle_sd={}, mottle_length_mm=3.0,
                            mottle_seed=0, step_mm=1.0)  # fmt: skip
        grid = draws.acquisitions["t1"].grid(draws.anatomy.centre())
        edema, bruise = lesion_rows(scene, 1.0, grid)
        assert edema["kind"] == "edema" and edema["touches_articular_surface"]
        assert edema["volume_ml"] > 0 and edema["depth_mm"] < 1.0
        assert bruise["kind"] == "bruise" and not bruise["touches_articular_surface"]
        assert bruise["depth_mm"] > 1.0


def test_lesion_rows_and_bone_table_agree_with_the_masks():
    ph = phantom(3, lesions=("edema", "bruise", "cyst", "island", "island"))
    ml = ph.analysis_grid.voxel_volume_mm3 / 1000
    table = {row["bone"]: row for row in ph.truth.bones_table}
    assert set(table) == {"femur", "tibia", "patella"}
    total_bme = ph.truth.bme_mask.data.sum() * ml
    assert sum(row["bme_ml"] for row in table.values()) == pytest.approx(total_bme)
    for row in table.values():
        assert 0 < row["marrow_ml"] < row["bone_ml"]
        assert row["bme_pct"] == pytest.approx(100 * row["bme_ml"] / row["marrow_ml"])
    for row in ph.truth.lesions:
        assert row["bone"] in table and row["volume_ml"] > 0
        assert len(row["centroid_ras_mm"]) == 3
    edema_rows = [r for r in ph.truth.lesions if r["is_edema"] and r["in_field_of_view"]]
    assert sum(row["n_lesions"] for row in table.values()) == len(edema_rows)


def test_truth_comes_from_the_geometry_not_the_image():
    draws = draw_joint_case(8, small=True)
    first = render_joint_case(draws)
    noisier = render_joint_case(replace(draws, snr={"t1": 5.0, "fluid": 5.0}))
    assert not np.array_equal(first.t1.data, noisier.t1.data)
    for name, mask in first.truth.masks.items():
        assert np.array_equal(mask.data, noisier.truth.masks[name].data), name


def test_same_seed_same_phantom_other_seed_other_phantom():
    a = phantom()  # seed 2, built once for the module
    b = make_joint_phantom(2, small=True)
    c = make_joint_phantom(10, small=True)
    assert np.array_equal(a.t1.data, b.t1.data) and np.array_equal(a.fluid.data, b.fluid.data)
    assert np.array_equal(a.truth.bme_mask.data, b.truth.bme_mask.data)
    assert a.truth.lesions == b.truth.lesions and a.draws.to_dict() == b.draws.to_dict()
    assert not np.array_equal(a.t1.affine, c.t1.affine)


def test_without_t1_the_truth_lives_on_the_fluid_grid():
    ph = phantom(fluid="pdfs", with_t1=False)
    assert ph.t1 is None and ph.fluid_kind == "pdfs"
    assert ph.truth.bones.grid.same_as(ph.fluid.grid)
    assert ph.fluid.meta["ScanOptions"] == "FS"


@pytest.mark.parametrize("fluid", ["stir", "t2fs", "pdfs"])
def test_fluid_kinds_have_their_headers(fluid):
    draws = draw_joint_case(1, fluid=fluid, small=True)
    assert draws.fluid == fluid and fluid in draws.signals
    signals = draws.signals[fluid]
    assert signals["FLUID"] > 3 * signals["MARROW"] > signals["FAT"]


def test_write_and_read_back_with_nibabel(tmp_path):
    ph = phantom()
    written = write_joint_phantom(ph, tmp_path)
    for key, volume in (("t1", ph.t1), ("fluid", ph.fluid), ("bones", ph.truth.bones),
                        ("bme_mask", ph.truth.bme_mask)):  # fmt: skip
        image = nib.load(written[key])
        np.testing.assert_allclose(image.affine, volume.affine, atol=1e-4)
        assert np.array_equal(np.asarray(image.dataobj), volume.data)
    assert written["fluid"].name == "stir.nii.gz"
    assert np.asarray(nib.load(written["bones"]).dataobj).dtype == np.uint8
    lines = written["bones_dseg"].read_text().splitlines()
    assert lines == ["index\tname", "1\tfemur", "2\ttibia", "3\tpatella"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_with_label_ids_by_name(tmp_path):
    ph = phantom()
    ids = {"femur": 25, "tibia": 26, "patella": 27}
    written = write_joint_phantom(ph, tmp_path, label_ids=ids)
    data = np.asarray(nib.load(written["bones"]).dataobj)
    assert set(np.unique(data)) == {0, 25, 26, 27}
    assert np.array_equal(data == 26, ph.truth.bones.data == 2)
    assert "26\ttibia" in written["bones_dseg"].read_text()
    with pytest.raises(ValueError, match="distinct id"):
        write_joint_phantom(ph, tmp_path / "bad", label_ids={"femur": 1, "tibia": 2})


def test_lesion_contrasts_are_drawn_from_realistic_ranges():
    rng = np.random.default_rng(0)
    knee = KneeAnatomy()
    for kind in ("edema", "bruise"):
        for _ in range(30):
            ratios = draw_lesion(rng, knee, kind, seed=0).ratios
            assert EDEMA_RATIOS["stir"][0] <= ratios["stir"] <= EDEMA_RATIOS["stir"][1]
            assert EDEMA_RATIOS["t1"][0] <= ratios["t1"] <= EDEMA_RATIOS["t1"][1]
            assert 1 < ratios["t2fs"] <= ratios["stir"] and 1 < ratios["pdfs"] <= ratios["stir"]
    island = draw_lesion(rng, knee, "island", seed=0)
    assert RED_ISLAND_RATIOS["fluid"][0] <= island.ratios["stir"] <= RED_ISLAND_RATIOS["fluid"][1]
    assert island.site.endswith("metaphysis")


def test_tuning_and_held_out_seeds_are_disjoint():
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"plane": "diagonal"}, "unknown plane"),
        ({"fluid": "flair"}, "unknown fluid"),
        ({"joint": "elbow"}, "unknown joint"),
        ({"lesions": "some"}, "lesions must be"),
        ({"lesions": [{"kind": "edema", "where": 1}]}, "lesion request"),
        ({"lesions": [{"kind": "edema", "bone": "fibula"}]}, "unknown bone"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        draw_joint_case(0, small=True, **options)


# --- sacroiliac joints ------------------------------------------------------------------------


def test_sij_phantom_has_sacrum_and_both_ilia():
    ph = phantom(12, joint="sij", plane="oblique", lesions=("edema", "island"))
    assert ph.truth.bone_names == {1: "sacrum", 2: "ilium_left", 3: "ilium_right"}
    assert set(np.unique(ph.truth.bones.data)) == {0, 1, 2, 3}
    assert ph.truth.bme_mask.data.any()
    assert np.all(ph.truth.bones.data[ph.truth.bme_mask.data > 0] > 0)
    edema = next(row for row in ph.truth.lesions if row["kind"] == "edema")
    assert edema["touches_articular_surface"] and edema["bone"] in ph.truth.bone_names.values()
    right = ph.draws.anatomy.frame.to_world([[60.0, 0.0, 20.0]])[0]
    label = ph.truth.bones.data[tuple(np.round(ph.analysis_grid.world_to_voxel([right])[0])
                                      .astype(int))]  # fmt: skip
    assert ph.truth.bone_names[int(label)] == "ilium_right"


def test_sij_coronal_oblique_slices_follow_the_sacrum():
    for seed in range(8):
        draws = draw_joint_case(seed, joint="sij", plane="oblique", small=True)
        anatomy = draws.anatomy
        long_axis = anatomy.frame.matrix @ anatomy.axis[0]
        for acquisition in draws.acquisitions.values():
            grid = acquisition.grid(anatomy.centre())
            assert acquisition.base == "coronal" and grid.axcodes[0] == "L"
            # the slices contain the sacrum's long axis, to within the drawn miss
            assert abs(float(slice_normal(grid) @ long_axis)) < np.sin(np.radians(3.5))
            assert _angle_deg(slice_normal(grid), np.eye(3)[1]) > 5.0


@pytest.mark.parametrize("joint", ["knee", "sij"])
def test_edema_in_the_truth_is_fluid_bright_in_the_image(joint):
    from scipy import ndimage

    ph = make_joint_phantom(
        21, joint=joint, lesions=("edema", "edema"), with_t1=False, fluid="stir", small=True
    )
    bme = ph.truth.bme_mask.data.astype(bool)
    marrow = ph.truth.marrow.data > 0
    shell = ndimage.binary_dilation(bme, iterations=3) & ~bme & marrow
    fluid = ph.fluid.data.astype(float)
    assert bme.sum() > 10 and shell.sum() > 10
    assert fluid[bme].mean() > 1.05 * fluid[shell].mean()
    # marrow is dark on the fluid image, joint fluid and edema are not
    assert np.median(fluid[marrow]) < np.percentile(fluid, 99)


@pytest.mark.parametrize("plane", ["sagittal", "coronal", "axial"])
def test_sij_planes_have_their_acquisition_orientation(plane):
    axcodes, normal_axis = PLANE_AXCODES[plane]
    draws = draw_joint_case(3, joint="sij", plane=plane, small=True)
    for acquisition in draws.acquisitions.values():
        grid = acquisition.grid(draws.anatomy.centre())
        assert grid.axcodes == axcodes
        assert _angle_deg(slice_normal(grid), np.eye(3)[normal_axis]) <= SMALL_TILT_DEG


def test_explicit_lesion_objects_are_rendered_as_given():
    lesion = draw_joint_case(30, lesions=["edema"], small=True).lesions[0]
    ph = make_joint_phantom(31, lesions=[lesion], small=True)
    assert ph.draws.lesions == (lesion,)
    row = ph.truth.lesions[0]
    assert row["kind"] == "edema" and row["site"] == lesion.site and row["volume_ml"] > 0


def test_case_options_cover_every_combination_of_plane_fluid_health_and_t1():
    from bmetoolkit.data.phantom.joint import FLUID_KINDS, PLANES, case_options

    combos = {tuple(case_options(seed).values()) for seed in HELD_OUT_SEEDS[:300]}
    assert len(combos) == len(PLANES) * len(FLUID_KINDS) * 2 * 2
    options = [case_options(seed) for seed in TUNING_SEEDS[:900]]
    assert sum(o["lesions"] == "none" for o in options) == 0.2 * len(options)
    assert sum(not o["with_t1"] for o in options) == 0.2 * len(options)
    assert case_options(5123) == case_options(5123)


def _island(ratio_fluid: float, ratio_t1: float) -> JointLesion:
    return JointLesion(
        kind="island", bone=1, site="femoral metaphysis", centre_mm=(0.0, 0.0, 0.0),
        axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), radii_mm=(5.0, 5.0, 5.0),
        margin_mm=1.0, ratios={"t1": ratio_t1, "stir": ratio_fluid},
    )  # fmt: skip


def test_overlapping_islands_take_the_strongest_contrast_not_the_product():
    # Real red marrow is no brighter where two patches meet: the signal stays within the
    # islands' own range (RED_ISLAND_RATIOS), where the product of 1.4 and 1.3 (1.82) is not.
    table = np.ones(len(JointTissue), np.float32)
    scene = Scene(KneeAnatomy(), (), (), None, {})
    tissue = np.full(4, JointTissue.MARROW)
    full = np.ones(3, np.float32)
    layers = [
        (_island(1.4, 0.8), np.array([0, 1, 2]), full),
        (_island(1.3, 0.9), np.array([1, 2, 3]), np.array([1.0, 0.5, 1.0], np.float32)),
    ]
    local = np.zeros((4, 3), np.float32)
    stir = _signal(scene, "stir", table, local, tissue, layers)
    np.testing.assert_allclose(stir, [1.4, 1.4, 1.4, 1.3], rtol=1e-6)
    t1 = _signal(scene, "t1", table, local, tissue, layers)
    np.testing.assert_allclose(t1, [0.8, 0.8, 0.8, 0.9], rtol=1e-6)
    # A weak part of a strong island gives way to a weaker island's core.
    layers[0] = (layers[0][0], layers[0][1], np.array([1.0, 1.0, 0.25], np.float32))
    stir = _signal(scene, "stir", table, local, tissue, layers)
    np.testing.assert_allclose(stir, [1.4, 1.4, 1.15, 1.3], rtol=1e-6)


def test_overlapping_drawn_islands_stay_within_the_brightest_island():
    # Two islands drawn in the femoral metaphysis, the second moved 3 mm from the first so
    # that their cores overlap, sampled on the knee's own marrow with their irregular borders.
    rng = np.random.default_rng(4)
    knee = KneeAnatomy()
    first = draw_lesion(rng, knee, "island", bone=1, seed=1)
    second = draw_lesion(rng, knee, "island", bone=1, seed=2)
    centre = np.asarray(first.centre_mm) + np.array([3.0, 0.0, 0.0])
    second = replace(second, centre_mm=tuple(float(v) for v in centre))
    scene = Scene.build(
        knee, (first, second), mottle_sd={}, mottle_length_mm=5.0, mottle_seed=0, step_mm=1.0
    )
    axes = [np.arange(-12.0, 12.5, 0.5) + c for c in first.centre_mm]
    local = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)
    tissue, bone, _ = knee.classify_local(local, knee.soft_tissue(local))
    layers = _memberships(scene, local, tissue, bone)
    assert len(layers) == 2
    both = np.intersect1d(*(where[weight >= 0.9] for _, where, weight in layers))
    assert both.size > 0  # the cores overlap
    table = np.ones(len(JointTissue), np.float32)
    stir = _signal(scene, "stir", table, local, tissue, layers)
    t1 = _signal(scene, "t1", table, local, tissue, layers)
    assert stir.max() <= max(first.ratios["stir"], second.ratios["stir"]) * (1 + 1e-6)
    assert t1.min() >= min(first.ratios["t1"], second.ratios["t1"]) * (1 - 1e-6)
    assert stir.max() <= RED_ISLAND_RATIOS["fluid"][1] * (1 + 1e-6)
