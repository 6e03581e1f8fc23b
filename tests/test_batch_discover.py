"""Discovery of BIDS, NIfTI-pattern and DICOM layouts; label sanitising."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmetoolkit.batch.discover import detect_layout, discover
from bmetoolkit.batch.naming import (
    UnsafePathError,
    inside,
    parse_bids_name,
    sanitize_label,
    unique_labels,
)
from tests.test_batch_support import write_tiny_subject


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def by_key(subjects: list) -> dict:
    return {s.key: s for s in subjects}


def test_bids_roles_sessions_runs_and_labels(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "dataset_description.json",
        "sub-01/anat/sub-01_T1w.nii.gz",
        "sub-01/anat/sub-01_T2w.nii.gz",
        "sub-01/anat/sub-01_acq-stir_T2w.nii.gz",
        "sub-01/anat/sub-01_acq-fs_T2w.nii.gz",  # passed over: a true STIR exists
        "sub-01/anat/sub-01_T1w.json",
        "sub-02/ses-a/anat/sub-02_ses-a_run-1_T1w.nii.gz",
        "sub-02/ses-a/anat/sub-02_ses-a_run-2_T1w.nii.gz",
        "sub-02/ses-a/anat/sub-02_ses-a_acq-spair_T2w.nii",
        "sub-02/ses-b/anat/sub-02_ses-b_T1w.nii.gz",
        "sub-02/ses-b/anat/sub-02_ses-b_T2w.nii.gz",
        "sub-03/anat/sub-03_T1w.nii.gz",
        "sub-04/anat/sub-04_acq-a_T1w.nii.gz",
        "sub-04/anat/sub-04_acq-b_T1w.nii.gz",
        "sub-04/anat/sub-04_T2w.nii.gz",
        "sub-05/anat/sub-05_T1w.nii.gz",
        "sub-05/anat/sub-05_T2w.nii.gz",
        "sub-05/ses-x/anat/sub-05_ses-x_T1w.nii.gz",
        "sub-05/ses-x/anat/sub-05_ses-x_T2w.nii.gz",
        "derivatives/spineps/sub-01/anat/sub-01_mod-T2w_seg-vert_msk.nii.gz",
        "derivatives/spineps/sub-01/anat/sub-01_mod-T2w_seg-spine_msk.nii.gz",
        "derivatives/other/sub-02/ses-b/anat/sub-02_ses-b_desc-vertebrae_dseg.nii.gz",
        "derivatives/other/sub-02/ses-b/anat/sub-02_ses-b_desc-muscle_dseg.nii.gz",
    )
    assert detect_layout(tmp_path) == "bids"
    found = by_key(discover(tmp_path))
    assert sorted(found) == [
        "sub-01",
        "sub-02_ses-a",
        "sub-02_ses-b",
        "sub-03",
        "sub-04",
        "sub-05",
        "sub-05_ses-x",
    ]
    assert "with and without a session" in found["sub-05"].problem  # would hold ses-x
    assert found["sub-05_ses-x"].problem is None
    one = found["sub-01"]
    assert one.problem is None
    assert Path(one.t1.path).name == "sub-01_T1w.nii.gz"
    assert Path(one.t2.path).name == "sub-01_T2w.nii.gz"
    assert Path(one.stir.path).name == "sub-01_acq-stir_T2w.nii.gz"
    assert Path(one.vertebrae.path).name == "sub-01_mod-T2w_seg-vert_msk.nii.gz"
    two_a = found["sub-02_ses-a"]
    assert Path(two_a.t1.path).name == "sub-02_ses-a_run-2_T1w.nii.gz"
    assert any("highest of 2 runs" in r for r in two_a.reasons)
    assert "fat-suppressed" in " ".join(two_a.reasons) and two_a.t2 is None
    assert two_a.vertebrae is None
    assert Path(found["sub-02_ses-b"].vertebrae.path).name.endswith("desc-vertebrae_dseg.nii.gz")
    assert found["sub-03"].problem.startswith("no T2 or STIR image: ")
    assert "2 candidates" in found["sub-04"].problem


def test_nifti_pattern_with_sessions(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "p01_pre_T1.nii.gz",
        "p01_pre_STIR.nii.gz",
        "p01_post_T1.nii.gz",
        "p01_post_T2.nii.gz",
        "p01_post_seg.nii.gz",
        "p02_pre_t1w.nii.gz",
        "notes_x_readme.nii.gz",
    )
    found = by_key(discover(tmp_path, pattern="{subject}_{session}_{role}.nii.gz"))
    assert sorted(found) == ["sub-p01_ses-post", "sub-p01_ses-pre", "sub-p02_ses-pre"]
    assert found["sub-p01_ses-post"].vertebrae is not None
    assert found["sub-p01_ses-pre"].stir is not None and found["sub-p01_ses-pre"].problem is None
    assert found["sub-p02_ses-pre"].problem.startswith("no T2 or STIR image: ")


def test_default_pattern_and_wildcards(tmp_path: Path) -> None:
    write_tiny_subject(tmp_path / "a", seed=0)
    touch(tmp_path, "b/t1.nii.gz", "b/stir.nii.gz", "b/bme_mask.nii.gz")
    assert detect_layout(tmp_path) == "nifti"
    found = by_key(discover(tmp_path))
    assert sorted(found) == ["sub-a", "sub-b"] and found["sub-b"].t2 is None
    touch(tmp_path / "deep", "c/scans/x_t1.nii", "c/scans/x_t2.nii")
    assert [s.key for s in discover(tmp_path / "deep", pattern="{subject}/*/*_{role}.nii")] == [
        "sub-c"
    ]
    with pytest.raises(ValueError, match="role"):
        discover(tmp_path, pattern="{subject}.nii.gz")


def test_dicom_tree_subjects_and_sessions(tmp_path: Path) -> None:
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom

    for seed, folder in ((4, "patient A"), (5, "p2/2019"), (6, "p2/2021")):  # own UIDs each
        make_phantom(seed, config=PhantomConfig.small()).write_dicom(tmp_path / folder)
    touch(tmp_path, "empty/readme.txt")
    assert detect_layout(tmp_path) == "dicom"
    found = by_key(discover(tmp_path))
    assert sorted(found) == ["sub-empty", "sub-p2_ses-2019", "sub-p2_ses-2021", "sub-patientA"]
    single = found["sub-patientA"]
    assert single.problem is None and single.session is None
    assert single.t1.series and len(single.t1.files) == 6
    assert {single.t1.series, single.t2.series, single.stir.series} == {
        single.t1.info.uid,
        single.t2.info.uid,
        single.stir.info.uid,
    }
    assert any("detected as STIR" in r for r in single.reasons)
    assert Path(found["sub-p2_ses-2021"].t1.files[0]).parent.name == "2021"
    assert found["sub-empty"].problem


def test_sanitising() -> None:
    assert sanitize_label("../../etc/passwd") == "etcpasswd"
    assert sanitize_label("C:\\Users\\x") == "CUsersx"
    assert sanitize_label("sub-../x") == "x"
    assert sanitize_label("ä" * 100) == "a" * 64
    labels = unique_labels(["P-1", "P_1", "", "ok"])
    assert labels["ok"] == "ok" and labels[""].startswith("x")
    assert labels["P-1"] != labels["P_1"] and len(set(labels.values())) == 4
    assert all(label.isalnum() for label in labels.values())


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    assert inside(tmp_path, "sub-1", "anat") == tmp_path / "sub-1" / "anat"
    for bad in ("../x", "/etc", "a/../../b"):
        with pytest.raises(UnsafePathError):
            inside(tmp_path, bad)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(UnsafePathError):
        inside(tmp_path, "link", "x")


def test_parse_bids_name() -> None:
    name = parse_bids_name("sub-01_ses-2_run-3_acq-stir_T2w.nii.gz")
    assert name.entities == {"sub": "01", "ses": "2", "run": "3", "acq": "stir"}
    assert name.suffix == "T2w" and name.extension == ".nii.gz"
    assert parse_bids_name("sub-01_T1w.txt") is None
    assert parse_bids_name("T1w.nii.gz") is None


def test_a_subject_without_a_role_is_told_what_is_needed() -> None:
    from bmetoolkit.batch.inputs import missing_problem

    no_t1 = missing_problem({"stir": "stir.nii.gz"})
    assert no_t1 is not None and no_t1.startswith("no T1 image: a spine needs a T1")
    assert "bone mask" in no_t1 and "--dry-run lists the files found" in no_t1
    no_fluid = missing_problem({"t1": "t1.nii.gz"})
    assert no_fluid is not None and "needs a fluid-sensitive image" in no_fluid
    assert missing_problem({"stir": "stir.nii.gz", "marrow": "bones.nii.gz"}) is None
