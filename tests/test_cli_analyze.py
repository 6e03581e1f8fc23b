"""``bmetoolkit analyze`` in-process: exit codes, outputs, errors that name the file."""

from __future__ import annotations

import functools
import json

import pytest

from bmetoolkit.cli import main
from bmetoolkit.data.phantom import PhantomConfig, make_phantom


@functools.cache
def written(tmp_root: str):
    from pathlib import Path

    study = make_phantom(seed=4, lesions="edema", config=PhantomConfig.small())
    root = Path(tmp_root)
    study.write_nifti(root / "nifti")
    study.write_dicom(root / "dicom")
    return root, study


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    return written(str(tmp_path_factory.mktemp("cli_analyze")))


def test_nifti_inputs_write_the_outputs(phantom_files, tmp_path, capsys):
    root, _ = phantom_files
    nifti = root / "nifti"
    code = main(
        [
            "analyze",
            "--t1", str(nifti / "t1.nii.gz"),
            "--t2", str(nifti / "t2.nii.gz"),
            "--stir", str(nifti / "stir.nii.gz"),
            "--vertebrae", str(nifti / "vertebrae.nii.gz"),
            "--out", str(tmp_path),
            "--no-qc",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "bone marrow edema:" in out and str(tmp_path) in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["bme"]["volume_ml"] > 0
    assert report["bme"]["lesions"][0]["level"] == "L2"
    assert any("coarse" in note for note in report["notes"])  # 3 mm pixels: zones unreliable
    assert report["inputs"]["fluid_image"] == "stir"
    assert not (tmp_path / "qc.html").exists()
    for name in ("bme_mask.nii.gz", "modic_map.nii.gz", "lesions.csv", "endplates.csv"):
        assert (tmp_path / name).is_file()


def test_dicom_study_folder_is_paired_and_matches_the_api(phantom_files, tmp_path, capsys):
    from bmetoolkit.analysis import analyze

    root, _ = phantom_files
    vertebrae = root / "nifti" / "vertebrae.nii.gz"
    args = ["analyze", str(root / "dicom"), "--vertebrae", str(vertebrae), "--json"]
    assert main([*args, "--out", str(tmp_path), "--subject", "P07 <baseline>"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = analyze(root / "dicom", vertebrae=vertebrae)
    assert printed["bme"]["volume_ml"] == expected.bme_volume_ml
    assert printed["endplates"] == json.loads(json.dumps(expected.endplate_rows))
    page = (tmp_path / "qc.html").read_text()  # named as asked, not after the folder
    assert "<h1>P07 &lt;baseline&gt; <small" in page and f"<h1>{tmp_path.name}" not in page


def test_series_choice_reaches_the_pairing(phantom_files, tmp_path):
    root, _ = phantom_files
    vertebrae = root / "nifti" / "vertebrae.nii.gz"
    code = main(
        ["analyze", str(root / "dicom"), "--t1-series", "2", "--stir-series", "4",
         "--vertebrae", str(vertebrae), "--out", str(tmp_path), "--no-qc"]
    )  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["inputs"]["fluid_image"] == "stir"


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "--out", "x"],  # neither a study nor --t1
        ["analyze", "--t1", "t1.nii.gz", "--out", "x"],  # T1 alone
        ["analyze", "--t1", "a", "--t2", "b", "--t1-series", "3", "--out", "x"],
        ["analyze", "study"],  # no --out
    ],
)
def test_usage_errors_exit_2(args, capsys):
    assert main(args) == 2


def test_missing_file_exits_1_naming_it(tmp_path, capsys):
    missing = tmp_path / "nope_t1.nii.gz"
    code = main(["analyze", "--t1", str(missing), "--t2", str(missing), "--out", str(tmp_path)])
    assert code == 1
    assert "nope_t1.nii.gz" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_bad_parameter_file_exits_1_naming_it(phantom_files, tmp_path, capsys):
    root, _ = phantom_files
    params = tmp_path / "params.json"
    params.write_text('{"min_lesion": 3}')
    nifti = root / "nifti"
    code = main(
        ["analyze", "--t1", str(nifti / "t1.nii.gz"), "--t2", str(nifti / "t2.nii.gz"),
         "--params", str(params), "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "params.json" in err and "min_lesion" in err
