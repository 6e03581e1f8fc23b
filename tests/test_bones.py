"""Bone marrow edema in any bone: masks and names, depths, the per-bone analysis and outputs.

The analysis tests use two block "bones" facing each other across a joint, drawn in world
space (so each image can have its own grid and plane), with fatty marrow, a dark cortex,
joint fluid, an edema sphere against the articular surface and, where asked, a fluid cyst.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

import bmetoolkit as bt
from bmetoolkit.bones.geometry import bone_depths
from bmetoolkit.bones.labels import MAX_BONES, bone_labels, read_label_table
from bmetoolkit.errors import BmetoolkitError, MarrowLabelError, NoOverlapError
from bmetoolkit.volume import Grid, Volume
from tests.helpers import ras_affine

CORONAL = ((1, 0, 0), (0, 0, 1), (0, 1, 0))  # i: right, j: superior, k: anterior
AXIAL = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
SAGITTAL = ((0, 1, 0), (0, 0, 1), (1, 0, 0))

#: Signals (T1, STIR) of each tissue; edema: STIR 2 x and T1 0.7 x normal marrow.
SIGNALS = {
    "background": (0.0, 0.0),
    "soft": (450.0, 260.0),
    "fluid": (150.0, 2400.0),
    "cortex": (80.0, 25.0),
    "marrow": (1000.0, 120.0),
    "edema": (700.0, 240.0),
    "cyst": (150.0, 2400.0),
}
EDEMA_CENTRE = np.array([6.0, 0.0, -7.0])  # in the lower bone, touching the joint
EDEMA_RADIUS = 7.0
CYST_CENTRE = np.array([-9.0, 3.0, 5.5])  # in the upper bone, under the joint
CYST_RADIUS = 3.5


def _tissues(xyz: np.ndarray, *, edema: bool, cyst: bool) -> tuple[np.ndarray, np.ndarray]:
    """Tissue names and bone ids (1 upper, 2 lower) at world points (N, 3)."""
    x, y, z = xyz.T
    inside_xy = (np.abs(x) < 22) & (np.abs(y) < 18)
    upper = inside_xy & (z > 2) & (z < 44)
    lower = inside_xy & (z < -2) & (z > -44)
    bone_id = np.where(upper, 1, np.where(lower, 2, 0))
    depth = np.minimum.reduce([22 - np.abs(x), 18 - np.abs(y), np.where(upper, z - 2, -2 - z)])
    tissue = np.full(len(xyz), "soft", dtype=object)
    tissue[(np.abs(z) <= 2) & inside_xy] = "fluid"
    tissue[bone_id > 0] = "marrow"
    tissue[(bone_id > 0) & (depth < 1.5)] = "cortex"
    marrow = (bone_id > 0) & (depth >= 1.5)
    if edema:
        tissue[marrow & (np.linalg.norm(xyz - EDEMA_CENTRE, axis=1) < EDEMA_RADIUS)] = "edema"
    if cyst:
        tissue[marrow & (np.linalg.norm(xyz - CYST_CENTRE, axis=1) < CYST_RADIUS)] = "cyst"
    tissue[np.abs(x) > 40] = "background"
    return tissue, bone_id


def _image(grid: Grid, role: int, rng: np.random.Generator, **lesions: bool) -> Volume:
    ijk = np.stack(np.indices(grid.shape), axis=-1).reshape(-1, 3)
    tissue, _ = _tissues(grid.voxel_to_world(ijk), **lesions)
    signal = np.array([SIGNALS[t][role] for t in tissue], np.float32)
    # A gentle coil shading and 3 % noise of normal marrow.
    shading = 1 + 0.002 * grid.voxel_to_world(ijk)[:, 0]
    noise = rng.normal(0, 0.03 * SIGNALS["marrow"][role], len(ijk))
    data = np.abs(signal * shading + noise).reshape(grid.shape)
    return Volume(data.astype(np.float32), grid.affine, source=f"{'t1' if role == 0 else 'stir'}")


def _truth(grid: Grid, **lesions: bool) -> tuple[np.ndarray, np.ndarray]:
    ijk = np.stack(np.indices(grid.shape), axis=-1).reshape(-1, 3)
    tissue, bone_id = _tissues(grid.voxel_to_world(ijk), **lesions)
    return (tissue == "edema").reshape(grid.shape), bone_id.reshape(grid.shape).astype(np.uint8)


def _grid(axes, spacing, shape, rotations=()) -> Grid:
    affine = ras_affine(axes, spacing, rotations=rotations)
    centre = affine[:3, :3] @ (np.array(shape) - 1) / 2
    affine[:3, 3] = -centre
    return Grid(shape, affine)


T1_GRID = _grid(CORONAL, (0.6, 0.6, 3.0), (120, 160, 14))
STIR_GRID = _grid(CORONAL, (0.7, 0.7, 3.5), (104, 138, 12), rotations=(("z", 4.0),))


def _study(rng, *, edema=True, cyst=False, t1_grid=T1_GRID, stir_grid=STIR_GRID):
    lesions = {"edema": edema, "cyst": cyst}
    t1 = _image(t1_grid, 0, rng, **lesions)
    stir = _image(stir_grid, 1, rng, **lesions)
    truth, bones = _truth(t1_grid, **lesions)
    return t1, stir, truth, Volume(bones, t1_grid.affine, kind="label", source="bones")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


# --- masks and names ---------------------------------------------------------------------


def _mask(values: list[tuple[tuple[slice, ...], int]], shape=(20, 20, 4)) -> Volume:
    data = np.zeros(shape, np.uint8)
    for box, value in values:
        data[box] = value
    return Volume(data, np.eye(4), kind="label", source="mask.nii.gz")


TWO = [((slice(0, 10),), 1), ((slice(10, 20),), 2)]


def test_names_from_each_kind_of_table(tmp_path):
    mask = _mask(TWO)
    dseg = tmp_path / "names_dseg.tsv"
    dseg.write_text("index\tname\tabbreviation\n1\tfemur\tFEM\n2\ttibia\tTIB\n")
    plain = tmp_path / "plain.tsv"
    plain.write_text("1\tfemur\n2\ttibia\n")
    headed = tmp_path / "headed.tsv"
    headed.write_text("label\tbone\n1\tfemur\n2\ttibia\n")
    as_json = tmp_path / "names.json"
    as_json.write_text(json.dumps({"femur": 1, "tibia": 2}))
    for table in (dseg, plain, headed, as_json, {"1": "femur", "2": "tibia"}):
        bones = bone_labels(mask, table=table)
        assert bones.names == {1: "femur", 2: "tibia"}, table


def test_unnamed_and_binary_masks_and_a_sidecar_table(tmp_path):
    assert bone_labels(_mask(TWO)).names == {1: "bone 1", 2: "bone 2"}
    assert bone_labels(_mask([((slice(None),), 1)])).names == {1: "bone"}
    path = tmp_path / "knee.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(_mask(TWO).data), np.eye(4)), path)
    (tmp_path / "knee.tsv").write_text("1\tfemur\n2\ttibia\n")
    bones = bone_labels(path)
    assert bones.names == {1: "femur", 2: "tibia"} and "knee.tsv" in bones.naming


def test_totalsegmentator_conventions_keep_only_bone_classes():
    mask = _mask([((slice(0, 10),), 75), ((slice(10, 15),), 88), ((slice(15, 20),), 5)])
    bones = bone_labels(mask, table="total")
    assert bones.names == {75: "femur_left"}
    assert "not bone" in " ".join(bones.notes)
    assert np.unique(bones.labels.data).tolist() == [0, 75]  # organs and muscles left out
    knee = _mask(TWO)
    assert bone_labels(knee, table="appendicular_bones_mr").names == {1: "patella", 2: "tibia"}
    with pytest.raises(MarrowLabelError, match="TotalSegmentator total_mr does not have"):
        bone_labels(_mask([((slice(0, 10),), 75)]), table="total_mr")


def test_a_folder_of_totalsegmentator_masks(tmp_path):
    for name, box in (("femur_left", slice(0, 8)), ("hip_left", slice(10, 20))):
        data = np.zeros((20, 20, 4), np.uint8)
        data[box] = 1
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / f"{name}.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((20, 20, 4), np.uint8), np.eye(4)), tmp_path / "liver.nii.gz")
    empty = np.zeros((20, 20, 4), np.uint8)  # TotalSegmentator writes absent classes empty
    nib.save(nib.Nifti1Image(empty, np.eye(4)), tmp_path / "femur_right.nii.gz")
    bones = bone_labels(tmp_path)
    assert sorted(bones.names.values()) == ["femur_left", "hip_left"]
    assert bones.naming == "TotalSegmentator file names"
    counts = {bones.names[i]: int(np.sum(bones.labels.data == i)) for i in bones.names}
    assert counts == {"femur_left": 8 * 20 * 4, "hip_left": 10 * 20 * 4}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"1": "femur"}, "does not list"),
        ("1\tfemur\n1\ttibia\n", "names id 1 twice"),
        ("1\tfemur\n2\tfemur\n", "to two ids"),
        ("1\tfemur\n2\n", "fewer than two columns"),
    ],
)
def test_bad_tables_are_refused_with_the_file_named(tmp_path, table, message):
    if isinstance(table, str):
        path = tmp_path / "names.tsv"
        path.write_text(table)
        table = path
    with pytest.raises(MarrowLabelError, match=message) as info:
        bone_labels(_mask(TWO), table=table)
    assert "mask.nii.gz" in str(info.value) or "names.tsv" in str(info.value)


def test_bad_masks_are_refused(tmp_path):
    probability = tmp_path / "prob.nii.gz"
    nib.save(nib.Nifti1Image(np.full((20, 20, 4), 0.3, np.float32), np.eye(4)), probability)
    with pytest.raises(MarrowLabelError, match=r"non-integer.*thresholded") as info:
        bone_labels(probability)
    assert "prob.nii.gz" in str(info.value)
    many = np.arange(20 * 20 * 4, dtype=np.uint16).reshape(20, 20, 4)
    with pytest.raises(MarrowLabelError, match=f"at most {MAX_BONES}"):
        bone_labels(Volume(many, np.eye(4), kind="label", source="many.nii.gz"))
    with pytest.raises(MarrowLabelError, match="no bone"):
        bone_labels(_mask([]))
    with pytest.raises(MarrowLabelError, match="neither a table"):
        bone_labels(_mask(TWO), table="no_such_convention")
    far_affine = np.eye(4)
    far_affine[:3, 3] = 500.0
    far = Grid((10, 10, 4), far_affine)
    with pytest.raises(NoOverlapError, match="field of view"):
        bone_labels(_mask(TWO), far)


def test_a_bone_too_small_on_the_grid_is_left_out_with_a_note():
    mask = _mask([((slice(0, 18),), 1), ((slice(19, 20), slice(0, 2), slice(0, 1)), 2)])
    bones = bone_labels(mask, Grid(mask.shape, mask.affine))
    assert bones.names == {1: "bone 1"}
    assert "bone 2 (id 2) has 2 voxels" in bones.notes[0]


def test_read_label_table_ignores_background():
    assert read_label_table({"0": "background", "3": "talus"}) == {3: "talus"}


# --- depths ------------------------------------------------------------------------------


def test_depths_are_millimetres_on_anisotropic_voxels():
    labels = np.zeros((40, 40, 12), np.uint8)
    labels[5:35, 5:35, 1:5] = 1
    labels[5:35, 5:35, 7:11] = 2  # 2 slices (6 mm) apart along the thick axis
    depths = bone_depths(labels, np.array([0.5, 0.5, 3.0]), articular_gap_mm=8.0)
    assert depths.rim[5, 20, 3] and not depths.rim[20, 20, 3]
    # Bone 1's articular surface is its top (slice 4): depth grows downwards by 3 mm/slice.
    column = depths.articular_mm[20, 20, 1:5]
    assert np.all(np.diff(column) < 0) and column[-1] == pytest.approx(1.5, abs=0.75)
    assert np.isnan(depths.surface_mm[0, 0, 0])
    single = bone_depths(labels == 1, np.array([0.5, 0.5, 3.0]), articular_gap_mm=8.0)
    assert np.all(np.isnan(single.articular_mm))  # one bone: no joint


# --- the analysis ------------------------------------------------------------------------


def test_edema_in_a_bone_mask_on_oblique_grids():
    rng = np.random.default_rng(5)
    t1, stir, truth, bones = _study(rng)
    result = bt.analyze(t1, stir=stir, marrow=bones, marrow_labels={1: "femur", 2: "tibia"})
    assert result.anatomy == "bones" and result.modic_map is None
    found = np.asarray(result.bme_mask.data, bool)
    assert _dice(found, truth) > 0.8
    rows = {row["bone"]: row for row in result.bone_rows}
    assert rows["femur"]["bme_ml"] < 0.05 * rows["tibia"]["bme_ml"]
    true_ml = truth.sum() * T1_GRID.voxel_volume_mm3 / 1000
    assert rows["tibia"]["bme_ml"] == pytest.approx(true_ml, rel=0.25)
    assert rows["tibia"]["bme_pct"] == pytest.approx(
        100 * rows["tibia"]["bme_ml"] / rows["tibia"]["marrow_ml"], abs=0.01
    )
    lesion = max(result.lesion_rows, key=lambda row: row["volume_ml"])
    assert lesion["bone"] == "tibia" and lesion["subchondral"]
    assert lesion["articular_distance_mm"] < 4
    assert lesion["centroid_z_mm"] == pytest.approx(-7, abs=3)  # RAS mm, not voxels


def test_a_cyst_is_not_edema_and_edema_beside_it_stays():
    rng = np.random.default_rng(6)
    t1, stir, truth, bones = _study(rng, cyst=True)
    result = bt.analyze(t1, stir=stir, marrow=bones)
    found = np.asarray(result.bme_mask.data, bool)
    ijk = np.stack(np.indices(T1_GRID.shape), axis=-1).reshape(-1, 3)
    near_cyst = np.linalg.norm(T1_GRID.voxel_to_world(ijk) - CYST_CENTRE, axis=1) < CYST_RADIUS + 2
    assert not found.ravel()[near_cyst].any()
    assert _dice(found, truth) > 0.8
    upper = next(row for row in result.bone_rows if row["label"] == 1)
    assert upper["fluid_like_ml"] > 0 and upper["n_lesions"] == 0
    assert any("free fluid" in note for note in result.notes)


def test_healthy_bones_have_no_edema():
    rng = np.random.default_rng(7)
    t1, stir, _, bones = _study(rng, edema=False)
    result = bt.analyze(t1, stir=stir, marrow=bones)
    assert result.bme_volume_ml == 0 and result.lesion_rows == []


@pytest.mark.parametrize("axes", [AXIAL, SAGITTAL], ids=["axial", "sagittal"])
def test_without_a_t1_in_other_planes(axes):
    rng = np.random.default_rng(8)
    grid = _grid(axes, (0.7, 0.7, 3.0), (104, 138, 30) if axes is AXIAL else (104, 138, 14))
    stir = _image(grid, 1, rng, edema=True, cyst=False)
    truth, bones = _truth(grid, edema=True, cyst=False)
    result = bt.analyze(None, stir=stir, marrow=Volume(bones, grid.affine, kind="label"))
    assert result.decision["t1_criterion"] == "not applied (no T1)"
    assert any("no T1 was given" in note for note in result.notes)
    assert _dice(np.asarray(result.bme_mask.data, bool), truth) > 0.75


def test_outputs_of_a_bone_analysis(tmp_path):
    rng = np.random.default_rng(9)
    t1, stir, _, bones = _study(rng)
    result = bt.analyze(t1, stir=stir, marrow=bones, marrow_labels={1: "femur", 2: "tibia"})
    files = result.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "bones.csv" in names and "bones.nii.gz" in names and "bones_dseg.tsv" in names
    assert "modic_map.nii.gz" not in names and "endplates.csv" not in names
    report = json.loads(files["report"].read_text())
    assert report["anatomy"] == "bones" and "endplates" not in report
    assert [row["bone"] for row in report["bones"]] == ["femur", "tibia"]
    assert report["labels"]["bones"] == {"1": "femur", "2": "tibia"}
    saved = nib.load(files["bones"])
    np.testing.assert_allclose(saved.affine, T1_GRID.affine, atol=1e-4)
    assert "tibia" in (tmp_path / "bones_dseg.tsv").read_text()
    assert "tibia" in result.summary() and "Modic" not in result.summary()


def test_vertebrae_and_marrow_together_are_refused():
    rng = np.random.default_rng(10)
    t1, stir, _, bones = _study(rng)
    with pytest.raises(BmetoolkitError, match="not both"):
        bt.analyze(t1, stir=stir, marrow=bones, vertebrae=bones)


# --- the command line and the QC page ----------------------------------------------------


def _write(volume: Volume, path) -> str:
    from bmetoolkit.io import save_nifti

    save_nifti(volume, path)
    return str(path)


@pytest.fixture(scope="module")
def knee_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("knee")
    t1, stir, _, bones = _study(np.random.default_rng(11))
    (folder / "names.tsv").write_text("index\tname\n1\tfemur\n2\ttibia\n")
    return {
        "t1": _write(t1, folder / "t1.nii.gz"),
        "stir": _write(stir, folder / "stir.nii.gz"),
        "marrow": _write(bones, folder / "bones.nii.gz"),
        "names": str(folder / "names.tsv"),
    }


def test_analyze_command_with_bone_masks_writes_the_bone_outputs_and_page(knee_files, tmp_path):
    from bmetoolkit.cli import main

    out = tmp_path / "out"
    argv = ["analyze", "--t1", knee_files["t1"], "--stir", knee_files["stir"]]
    argv += ["--marrow", knee_files["marrow"], "--marrow-labels", knee_files["names"]]
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / "bones.csv").read_text().splitlines()[1].startswith("femur,1,")
    page = (out / "qc.html").read_text()
    assert "Bones (2)" in page and "tibia" in page and "Modic changes" not in page
    assert 'id="bone-chart"' in page and "Coronal T1 and STIR" in page


def test_analyze_command_without_a_t1(knee_files, tmp_path, capsys):
    from bmetoolkit.cli import main

    out = tmp_path / "no_t1"
    argv = ["analyze", "--stir", knee_files["stir"], "--marrow", knee_files["marrow"]]
    assert main([*argv, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["decision_levels"]["t1_criterion"] == "not applied (no T1)"
    assert "STIR, slice" in (out / "qc.html").read_text()  # the fluid image shown alone
    # Without masks the spine path looks for vertebral bodies in the fluid image: a knee
    # has none, and the error says to pass labels.
    assert main(["analyze", "--stir", knee_files["stir"], "--out", str(tmp_path / "x")]) == 1
    assert "pass a vertebra label map" in capsys.readouterr().err
    both = ["--marrow", knee_files["marrow"], "--vertebrae", knee_files["marrow"]]
    assert main(["analyze", "--t1", knee_files["t1"], "--stir", knee_files["stir"], *both,
                 "--out", str(tmp_path / "y")]) == 2  # fmt: skip


def test_a_bad_bone_table_exits_1_naming_it(knee_files, tmp_path, capsys):
    from bmetoolkit.cli import main

    table = tmp_path / "names.tsv"
    table.write_text("1\tfemur\n")  # no name for id 2
    argv = ["analyze", "--t1", knee_files["t1"], "--stir", knee_files["stir"]]
    argv += ["--marrow", knee_files["marrow"], "--marrow-labels", str(table)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "names.tsv" in err and "does not list" in err


def test_maps_put_back_on_the_whole_grid_fill_everything_around_the_box(rng):
    from bmetoolkit.bones.crop import on_full_grid

    for _ in range(200):
        shape = tuple(int(n) for n in rng.integers(1, 7, 3))
        starts = [int(rng.integers(0, n)) for n in shape]
        box = tuple(
            slice(a, int(rng.integers(a, n + 1))) for a, n in zip(starts, shape, strict=True)
        )
        values = rng.random(tuple(s.stop - s.start for s in box)).astype(np.float32)
        for fill in (np.nan, 0):
            expected = np.full(shape, fill, np.float32)
            expected[box] = values
            assert np.array_equal(on_full_grid(values, box, shape, fill), expected, equal_nan=True)


def test_within_a_distance_is_the_whole_grids_distance_transform(rng):
    from scipy import ndimage

    from bmetoolkit.bones.geometry import _within

    spacing = np.array([1.3, 1.2, 3.4])
    for _ in range(20):
        mask = np.zeros((40, 30, 12), bool)
        corner = rng.integers(0, [35, 25, 10])
        mask[tuple(slice(c, c + int(rng.integers(1, 6))) for c in corner)] = True
        distance = float(rng.uniform(0.5, 15))
        expected = ndimage.distance_transform_edt(~mask, sampling=spacing) <= distance
        assert np.array_equal(_within(mask, distance, spacing), expected)
    assert not _within(np.zeros((4, 4, 4), bool), 3.0, spacing).any()
