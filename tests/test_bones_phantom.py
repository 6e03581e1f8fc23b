"""The any-bone analysis on joint phantoms (:mod:`bmetoolkit.data.phantom.joint`).

Fast tests run on the small phantoms (about 1.5-2 mm pixels and 6-8 mm slices: coarse, so
they check the plumbing: planes, fluid images, masks and names); the slow ones on realistic
grids check what the analysis measures against the truth. Seeds are tuning seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit as bt
from bmetoolkit.data.phantom.joint import make_joint_phantom, write_joint_phantom
from bmetoolkit.metrics import dice
from bmetoolkit.volume import Volume

LESIONS = ["edema", "bruise", "cyst"]


def _analyze(phantom, **options):
    return bt.analyze(
        phantom.t1,
        stir=phantom.fluid,
        marrow=options.pop("marrow", phantom.truth.bones),
        marrow_labels=options.pop("marrow_labels", phantom.truth.bone_names),
        **options,
    )


def _masks(phantom, result):
    truth = np.asarray(phantom.truth.bme_mask.data, bool)
    found = np.asarray(result.bme_mask.data, bool)
    return truth, found


@pytest.mark.parametrize(
    ("plane", "fluid", "with_t1"),
    [
        ("sagittal", "stir", True),
        ("coronal", "pdfs", True),
        ("axial", "t2fs", True),
        ("oblique", "stir", True),
        ("coronal", "stir", False),
    ],
)
def test_each_plane_and_fluid_image_on_the_grid_of_the_truth(plane, fluid, with_t1):
    phantom = make_joint_phantom(2, plane=plane, fluid=fluid, with_t1=with_t1, lesions=LESIONS,
                                 small=True)  # fmt: skip
    result = _analyze(phantom)
    assert result.study.grid.same_as(phantom.truth.bones.grid)  # the T1's, else the fluid's
    assert result.study.base_role == ("t1" if with_t1 else "stir")
    assert result.anatomy == "bones" and [r["bone"] for r in result.bone_rows] == [
        "femur", "tibia", "patella",
    ]  # fmt: skip
    truth, found = _masks(phantom, result)
    assert found.any() and np.count_nonzero(found & truth) > 0
    edema = [row for row in phantom.truth.lesions if row["kind"] in ("edema", "bruise")]
    edema_bones = {row["bone"] for row in edema}
    assert {row["bone"] for row in result.lesion_rows} <= edema_bones
    criterion = result.decision["t1_criterion"]
    assert criterion == ("supporting" if with_t1 else "not applied (no T1)")


def test_a_binary_mask_measures_the_same_edema_as_the_labelled_bones():
    # The red-marrow rule differs by design between bones with a joint and a single bone
    # (docs/bones.md, step 7): here a faint lesion reaching deep into the femur is left out
    # as red marrow with the joint and kept without it, so the rule is off in both.
    phantom = make_joint_phantom(4, plane="coronal", lesions=LESIONS, small=True)
    params = {"focal_max_ratio": 0.0}
    labelled = _analyze(phantom, params=params)
    binary = (np.asarray(phantom.truth.bones.data) > 0).astype(np.uint8)
    mask = Volume(binary, phantom.truth.bones.affine, kind="label")
    merged = _analyze(phantom, marrow=mask, marrow_labels=None, params=params)
    assert [row["bone"] for row in merged.bone_rows] == ["bone"]
    assert merged.bone_rows[0]["marrow_ml"] == pytest.approx(
        sum(row["marrow_ml"] for row in labelled.bone_rows), rel=0.02
    )
    assert merged.bme_volume_ml == pytest.approx(labelled.bme_volume_ml, rel=0.3, abs=0.2)


def test_totalsegmentator_masks_named_by_their_files(tmp_path):
    """A folder of one mask per bone, as TotalSegmentator writes them, names the bones."""
    import nibabel as nib

    phantom = make_joint_phantom(5, plane="sagittal", lesions=LESIONS, small=True)
    ids = np.asarray(phantom.truth.bones.data)
    files = {"femur_left": 1, "tibia": 2, "patella": 3}
    for name, number in files.items():
        nib.save(
            nib.Nifti1Image((ids == number).astype(np.uint8), phantom.truth.bones.affine),
            tmp_path / f"{name}.nii.gz",
        )
    empty = nib.Nifti1Image(np.zeros_like(ids), phantom.truth.bones.affine)
    nib.save(empty, tmp_path / "liver.nii.gz")  # not a bone: left out
    result = _analyze(phantom, marrow=tmp_path, marrow_labels=None)
    assert sorted(row["bone"] for row in result.bone_rows) == ["femur_left", "patella", "tibia"]
    by_name = {row["bone"]: row["marrow_ml"] for row in result.bone_rows}
    reference = {row["bone"]: row["marrow_ml"] for row in _analyze(phantom).bone_rows}
    assert by_name["femur_left"] == pytest.approx(reference["femur"], rel=0.02)


def test_written_phantom_files_with_their_dseg_table(tmp_path):
    phantom = make_joint_phantom(6, plane="coronal", fluid="pdfs", lesions=LESIONS, small=True)
    ids = {"femur": 75, "tibia": 2, "patella": 1}
    files = write_joint_phantom(phantom, tmp_path, label_ids=ids)
    result = bt.analyze(
        str(files["t1"]), stir=str(files["fluid"]), marrow=str(files["bones"])
    )  # the bones_dseg.tsv beside the mask names them
    assert {row["label"]: row["bone"] for row in result.bone_rows} == {
        1: "patella", 2: "tibia", 75: "femur",
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("joint", "plane", "fluid", "with_t1"),
    [("knee", "coronal", "pdfs", True), ("sij", "oblique", "stir", True),
     ("knee", "sagittal", "stir", False)],
)  # fmt: skip
def test_realistic_joints_against_the_truth(joint, plane, fluid, with_t1):
    phantom = make_joint_phantom(21, joint=joint, plane=plane, fluid=fluid, with_t1=with_t1,
                                 lesions=["edema", "cyst"])  # fmt: skip
    result = _analyze(phantom)
    truth, found = _masks(phantom, result)
    cyst = np.asarray(phantom.truth.cyst_mask.data, bool)
    assert dice(found, truth) > 0.7
    assert np.count_nonzero(found) == pytest.approx(np.count_nonzero(truth), rel=0.3)
    assert not np.any(found & cyst)
    (lesion,) = [row for row in result.lesion_rows if row["volume_ml"] > 0.2]
    assert lesion["subchondral"] and lesion["articular_distance_mm"] < 3
