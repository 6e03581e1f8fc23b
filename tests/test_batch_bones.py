"""Batches of subjects with bone masks (issue 13): discovery, the analysis, group tables.

Discovery is checked on empty files (it reads no image); the analysis on small synthetic
knees (:func:`bmetoolkit.data.phantom.joint.make_joint_phantom`, written as ``t1.nii.gz``,
``stir.nii.gz`` / ``pdfs.nii.gz``, ``bones.nii.gz`` + ``bones_dseg.tsv`` and the truth
``marrow.nii.gz``), one subject at a time in this process (:func:`run_subject`); the whole
batch through worker processes and the CLI is the slow test at the end.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bmetoolkit.batch.anatomy import choose_anatomy
from bmetoolkit.batch.discover import discover
from bmetoolkit.batch.manifest import check_complete, input_fingerprints
from bmetoolkit.batch.outputs import BONE_GROUP_COLUMNS, write_group_tables, write_qc_index
from bmetoolkit.batch.pipeline import BatchUsageError, default_parameters, prepare
from bmetoolkit.batch.subject import SubjectTask, run_subject
from bmetoolkit.bones.tables import BONE_COLUMNS
from bmetoolkit.data.phantom.joint.build import make_joint_phantom
from bmetoolkit.data.phantom.joint.write import write_joint_phantom
from bmetoolkit.provenance import running_version

VERSION = running_version()  # what the batch itself records


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


# --- discovery ------------------------------------------------------------------------------


def test_nifti_layout_finds_bone_masks_and_needs_no_t1_with_them(tmp_path: Path) -> None:
    root = tmp_path / "in"
    # a joint phantom folder: the whole-bone mask and the truth marrow mask
    touch(*(root / "k1" / f"{n}.nii.gz" for n in ("t1", "stir", "bones", "marrow", "bme_mask")))
    (root / "k1" / "bones_dseg.tsv").write_text("index\tname\n1\tfemur\n")
    touch(root / "k2" / "pdfs.nii.gz", root / "k2" / "bone_mask.nii.gz")  # no T1, no table
    touch(root / "k3" / "stir.nii.gz")  # neither T1 nor bone mask
    found = {s.subject: s for s in discover(root)}
    k1, k2, k3 = found["k1"], found["k2"], found["k3"]
    assert k1.problem is None and k1.anatomy == "bones"
    assert Path(k1.marrow.path).name == "bones.nii.gz"  # whole bones, not the marrow
    assert [Path(f).name for f in k1.marrow.files] == ["bones.nii.gz", "bones_dseg.tsv"]
    assert any("preferred over marrow.nii.gz" in r for r in k1.reasons)
    assert k2.problem is None and k2.t1 is None and k2.anatomy == "bones"
    assert Path(k2.stir.path).name == "pdfs.nii.gz"  # a fat-suppressed PD is the fluid image
    assert k2.marrow.files == (k2.marrow.path,)
    assert k3.problem.startswith("no T1 image: ") and k3.anatomy == "spine"


def test_two_whole_bone_masks_are_ambiguous(tmp_path: Path) -> None:
    touch(*(tmp_path / "in" / "k1" / f"{n}.nii.gz" for n in ("stir", "bones", "bone_mask")))
    (unit,) = discover(tmp_path / "in")
    assert unit.problem_type == "AmbiguousSeriesError" and "marrow: 2 files" in unit.problem


def test_bids_layout_finds_a_desc_bones_dseg_with_its_table(tmp_path: Path) -> None:
    root = tmp_path / "bids"
    (root / "dataset_description.json").parent.mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "knees", "BIDSVersion": "1.9.0"}')
    touch(root / "sub-01" / "anat" / "sub-01_acq-stir_T2w.nii.gz")  # no T1
    masks = root / "derivatives" / "totalseg" / "sub-01" / "anat"
    touch(masks / "sub-01_desc-bones_dseg.nii.gz")
    (masks / "sub-01_desc-bones_dseg.tsv").write_text("index\tname\n1\tfemur\n2\ttibia\n")
    touch(
        root / "sub-02" / "anat" / "sub-02_T1w.nii.gz",
        root / "sub-02" / "anat" / "sub-02_T2w.nii.gz",
    )
    touch(root / "derivatives" / "spine" / "sub-02" / "anat" / "sub-02_seg-vert_msk.nii.gz")
    touch(
        root / "sub-03" / "anat" / "sub-03_T1w.nii.gz",
        root / "sub-03" / "anat" / "sub-03_T2w.nii.gz",
    )
    touch(masks.parents[1] / "sub-03" / "anat" / "sub-03_desc-bones_dseg.nii.gz")
    touch(masks.parents[1] / "sub-03" / "anat" / "sub-03_desc-marrow_dseg.nii.gz")
    touch(masks.parents[1] / "sub-03" / "anat" / "sub-03_desc-bones_mask.nii.gz")  # a dseg wins
    found = {s.subject: s for s in discover(root)}
    one, two, three = found["01"], found["02"], found["03"]
    assert one.problem is None and one.anatomy == "bones" and one.t1 is None
    assert [Path(f).name for f in one.marrow.files] == [
        "sub-01_desc-bones_dseg.nii.gz",
        "sub-01_desc-bones_dseg.tsv",
    ]
    assert two.anatomy == "spine" and Path(two.vertebrae.path).name.endswith("seg-vert_msk.nii.gz")
    assert any(r == "marrow: no bone mask found" for r in two.reasons)
    assert three.problem_type == "AmbiguousSeriesError" and "2 bone masks" in three.problem


def test_anatomy_option_and_marrow_labels(tmp_path: Path) -> None:
    root = tmp_path / "in"
    touch(*(root / "k1" / f"{n}.nii.gz" for n in ("stir", "bones", "vertebrae")))
    touch(*(root / "s1" / f"{n}.nii.gz" for n in ("t1", "t2")))
    out = tmp_path / "out"
    auto = {s.subject: s for s in prepare(root, out)}
    assert auto["k1"].anatomy == "bones" and auto["k1"].vertebrae is None  # mask wins
    assert any("vertebrae: vertebrae.nii.gz not used" in r for r in auto["k1"].reasons)
    assert auto["s1"].anatomy == "spine" and auto["s1"].problem is None
    spine = {s.subject: s for s in prepare(root, out, anatomy="spine")}
    assert spine["k1"].marrow is None and spine["k1"].problem.startswith("no T1 image: ")
    bones = {s.subject: s for s in prepare(root, out, anatomy="bones")}
    assert bones["k1"].problem is None
    assert bones["s1"].problem.startswith("no bone mask")
    named = {s.subject: s for s in prepare(root, out, marrow_labels="total_mr")}
    assert named["k1"].marrow_labels == "total_mr" and named["s1"].marrow_labels is None
    table = tmp_path / "names.tsv"
    table.write_text("1\tfemur\n")
    given = {s.subject: s for s in prepare(root, out, marrow_labels=table)}
    assert given["k1"].marrow.files[1] == str(table.absolute())
    fingerprints = input_fingerprints(named["k1"], root)
    assert fingerprints["marrow"]["labels"] == "total_mr"
    assert input_fingerprints(given["k1"], root)["marrow"]["labels"] == "../names.tsv"
    with pytest.raises(BatchUsageError, match="not a known convention"):
        prepare(root, out, marrow_labels="total_mri")
    with pytest.raises(ValueError, match="unknown anatomy"):
        choose_anatomy([], "knee")
    with pytest.raises(BatchUsageError, match="unknown anatomy"):
        prepare(root, out, anatomy="knee")


# --- the analysis, subject by subject ---------------------------------------------------------


@pytest.fixture(scope="module")
def knees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``k1`` (coronal, T1 + STIR), ``k2`` (axial, fat-suppressed PD, no T1), and k1's images
    with bad bone masks: ``bad`` a probability map, ``unnamed`` an id its table does not
    name, ``away`` a mask 1 m away from the images."""
    root = tmp_path_factory.mktemp("knees") / "in"
    write_joint_phantom(make_joint_phantom(1, plane="coronal", small=True), root / "k1")
    phantom = make_joint_phantom(2, plane="axial", fluid="pdfs", with_t1=False, small=True)
    write_joint_phantom(phantom, root / "k2")
    mask = nib.load(root / "k1" / "bones.nii.gz")
    ids = np.asarray(mask.dataobj)
    away = mask.affine.copy()
    away[:3, 3] += 1000.0
    bad_masks = {
        "bad": nib.Nifti1Image(((ids > 0) * 0.7).astype(np.float32), mask.affine),
        "unnamed": nib.Nifti1Image(np.where(ids == 3, 9, ids).astype(np.uint8), mask.affine),
        "away": nib.Nifti1Image(ids.astype(np.uint8), away),
    }
    for name, image in bad_masks.items():
        folder = root / name
        folder.mkdir()
        for file in ("t1.nii.gz", "stir.nii.gz", "bones_dseg.tsv"):
            shutil.copy(root / "k1" / file, folder / file)
        nib.save(image, folder / "bones.nii.gz")
    return root


def run_each(root: Path, out: Path, **options: object) -> list:
    parameters = default_parameters(None)
    return [
        run_subject(SubjectTask(s, str(out), str(root), parameters, VERSION, **options))
        for s in prepare(root, out)
    ]


@pytest.fixture(scope="module")
def analysed(knees: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("out")
    outcomes = run_each(knees, out, qc=True)
    write_group_tables(out, outcomes)
    write_qc_index(out, outcomes)
    return out, outcomes


def test_bone_subjects_are_analysed_per_bone_without_spine_outputs(analysed) -> None:
    out, outcomes = analysed
    status = {o.subject: (o.status, o.error_type) for o in outcomes}
    assert status["k1"] == ("ok", "") and status["k2"] == ("ok", "")
    anat = out / "sub-k2" / "anat"
    names = {p.name for p in anat.iterdir()}
    assert {"sub-k2_desc-bones_dseg.nii.gz", "sub-k2_desc-bones_bme.csv"} <= names
    assert "sub-k2_desc-bones_dseg.tsv" in names  # its colour table names the bones
    assert not any("modic" in n or "vertebrae" in n or "endplates" in n for n in names)
    report = json.loads((anat / "sub-k2_report.json").read_text())
    assert report["anatomy"] == "bones"
    assert report["bme"]["t1_criterion"] == "not applied (no T1)"
    assert report["labels"]["bones"] == {"1": "femur", "2": "tibia", "3": "patella"}
    manifest = json.loads((out / "sub-k2" / "sub-k2_manifest.json").read_text())
    assert set(manifest["inputs"]) == {"stir", "marrow"}
    assert set(manifest["inputs"]["marrow"]["files"]) == {"k2/bones.nii.gz", "k2/bones_dseg.tsv"}


def test_group_bones_table_has_one_row_per_subject_and_bone(analysed) -> None:
    out, _ = analysed
    rows = read_csv(out / "bones.csv")
    assert list(rows[0]) == list(BONE_GROUP_COLUMNS)
    assert BONE_GROUP_COLUMNS[2:] == BONE_COLUMNS
    assert [(r["subject"], r["bone"]) for r in rows] == [
        (k, bone) for k in ("k1", "k2") for bone in ("femur", "tibia", "patella")
    ]
    for key in ("k1", "k2"):  # the same rows as the subject's own bones table
        own = read_csv(out / f"sub-{key}" / "anat" / f"sub-{key}_desc-bones_bme.csv")
        assert [{k: v for k, v in r.items() if k not in ("subject", "session")}
                for r in rows if r["subject"] == key] == own  # fmt: skip
    subjects = {r["subject"]: r for r in read_csv(out / "subjects.csv")}
    k1 = subjects["k1"]
    assert k1["anatomy"] == "bones" and k1["n_bones"] == "3"
    own_rows = [r for r in rows if r["subject"] == "k1"]
    assert float(k1["bme_volume_ml"]) == pytest.approx(
        sum(float(r["bme_ml"]) for r in own_rows), abs=0.01
    )
    assert int(k1["n_lesions"]) == sum(int(r["n_lesions"]) for r in own_rows)
    assert all(k1[c] == "" for c in ("n_endplates", "n_modic", "modic_I", "modic_mixed"))
    assert read_csv(out / "endplates.csv") == []


BAD_MASKS = {"bad": "MarrowLabelError", "unnamed": "MarrowLabelError", "away": "NoOverlapError"}


def test_bad_masks_fail_their_subject_and_the_others_go_on(analysed) -> None:
    out, outcomes = analysed
    failed = {o.subject: o for o in outcomes if o.status == "failed"}
    assert {name: o.error_type for name, o in failed.items()} == BAD_MASKS
    for name, outcome in failed.items():
        assert outcome.stage == "analyze" and "bones.nii.gz" in outcome.error, outcome.error
        assert not (out / f"sub-{name}").exists()
    failures = {r["subject"]: r["error_type"] for r in read_csv(out / "failures.csv")}
    assert failures == BAD_MASKS
    assert {r["subject"] for r in read_csv(out / "bones.csv")} == {"k1", "k2"}


def test_index_shows_the_bones_with_edema(analysed) -> None:
    out, _ = analysed
    page = (out / "index.html").read_text()
    rows = {r["bone"]: r for r in read_csv(out / "bones.csv") if r["subject"] == "k1"}
    for bone, row in rows.items():
        shown = f"<b>{bone}</b> BME {float(row['bme_ml']):.2f}&nbsp;mL"
        assert (shown in page) == (float(row["bme_ml"]) > 0), bone
    assert "inf " not in page and "Modic not assessed" not in page
    assert all(name in page.split("Failures")[1] for name in BAD_MASKS)


def test_a_changed_table_of_names_redoes_the_subject(knees: Path, analysed) -> None:
    out, _ = analysed
    (subject,) = [s for s in prepare(knees, out) if s.subject == "k1"]
    options = {"keep_phi": False, "qc": True}
    parameters = default_parameters(None)
    check = (out / "sub-k1", subject, knees)
    assert check_complete(*check, parameters=parameters, version=VERSION, options=options)[0]
    table = knees / "k1" / "bones_dseg.tsv"
    text = table.read_text()
    try:
        table.write_text(text.replace("patella", "kneecap"))
        _, reason = check_complete(*check, parameters=parameters, version=VERSION, options=options)
        assert reason == "inputs changed"
    finally:
        table.write_text(text)


# --- the whole batch ------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_batch_of_knees_in_worker_processes(knees: Path, tmp_path: Path) -> None:
    from bmetoolkit.cli import main

    out = tmp_path / "out"
    code = main(["batch", str(knees), str(out), "--jobs", "2", "--qc", "--no-progress"])
    assert code == 1  # the bad mask
    subjects = {r["subject"]: r for r in read_csv(out / "subjects.csv")}
    assert {k: r["status"] for k, r in subjects.items()} == {
        **dict.fromkeys(BAD_MASKS, "failed"),
        "k1": "ok",
        "k2": "ok",
    }
    assert {k: subjects[k]["error_type"] for k in BAD_MASKS} == BAD_MASKS
    bones = (out / "bones.csv").read_text()
    assert len(read_csv(out / "bones.csv")) == 6
    # a rerun keeps the analysed subjects, and their bone rows come back from the manifests
    assert main(["batch", str(knees), str(out), "--no-progress", "--qc"]) == 1
    kept = {r["status"] for r in read_csv(out / "subjects.csv") if r["subject"] in ("k1", "k2")}
    assert kept == {"unchanged"}
    assert (out / "bones.csv").read_text() == bones


def test_bids_subject_with_a_bone_dseg_is_named_by_its_table(knees: Path, tmp_path: Path) -> None:
    """A BIDS fat-suppressed PD without T1 and a ``desc-bones_dseg`` with its ``_dseg.tsv``."""
    root = tmp_path / "bids"
    anat = root / "sub-02" / "anat"
    masks = root / "derivatives" / "masks" / "sub-02" / "anat"
    anat.mkdir(parents=True)
    masks.mkdir(parents=True)
    shutil.copy(knees / "k2" / "pdfs.nii.gz", anat / "sub-02_acq-pdfs_T2w.nii.gz")
    shutil.copy(knees / "k2" / "bones.nii.gz", masks / "sub-02_desc-bones_dseg.nii.gz")
    table = (knees / "k2" / "bones_dseg.tsv").read_text().replace("tibia", "tibia_left")
    (masks / "sub-02_desc-bones_dseg.tsv").write_text(table)
    (outcome,) = run_each(root, tmp_path / "out")
    assert outcome.status == "ok", outcome.error
    assert [row["bone"] for row in outcome.bones] == ["femur", "tibia_left", "patella"]


def test_marrow_labels_option_names_every_subject(knees: Path, tmp_path: Path) -> None:
    table = tmp_path / "names.json"
    table.write_text(json.dumps({"1": "femur", "2": "tibia", "3": "kneecap"}))
    subjects = prepare(knees, tmp_path / "out", marrow_labels=table)
    (k2,) = [s for s in subjects if s.subject == "k2"]
    parameters = default_parameters(None)
    outcome = run_subject(SubjectTask(k2, str(tmp_path / "out"), str(knees), parameters, VERSION))
    assert outcome.status == "ok", outcome.error
    assert [row["bone"] for row in outcome.bones] == ["femur", "tibia", "kneecap"]
