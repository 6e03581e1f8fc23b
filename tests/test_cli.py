"""The command line, run in-process through ``main(argv)``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bmetoolkit.cli import main
from bmetoolkit.io import load
from bmetoolkit.volume import Volume
from tests.helpers import SAGITTAL_PSR, assert_same_in_world, ras_affine

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "spine"


def test_version(capsys):
    from bmetoolkit.provenance import running_version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bmetoolkit {running_version()}"


def test_usage_error_exits_2(capsys):
    assert main(["info"]) == 2
    assert main(["no-such-command"]) == 2


def test_info_on_missing_path_names_it(tmp_path, capsys):
    assert main(["info", str(tmp_path / "absent")]) == 1
    assert "absent: does not exist" in capsys.readouterr().err


def test_info_lists_nifti_files_of_a_folder_with_contrast_from_name(capsys):
    assert main(["info", str(SAMPLE / "sct_testing_data"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["series"]
    by_name = {row["description"]: row for row in rows}
    assert by_name["t1w"]["contrast"] == "T1"
    assert by_name["t2"]["contrast"] == "T2"
    assert by_name["t2"]["plane"] == "sagittal"  # stored PSR: slices along x
    assert by_name["t1w"]["matrix"] == "42x76"


def test_info_on_nifti_files_says_how_to_give_them_on_the_command_line(capsys):
    assert main(["info", str(SAMPLE / "sct_testing_data")]) == 0
    out = capsys.readouterr().out
    assert "NIfTI files are not paired automatically: give each its role, " in out
    assert "`bmetoolkit analyze --t1 FILE --t2 FILE --stir FILE --out DIR`" in out


def _dicom_study(folder: Path) -> dict[str, Volume]:
    """Two sagittal series (T1, T2) and an axial one written into one folder."""
    from bmetoolkit.dicom.write import write_dicom_series

    rng = np.random.default_rng(0)
    sagittal = ras_affine(SAGITTAL_PSR, (0.8, 0.9, 4.0), rotations=(("z", 6.0),))
    axial = ras_affine(np.eye(3), (0.9, 0.9, 5.0), origin=(-20.0, -20.0, -10.0))
    specs = {
        "t1": (sagittal, 2, "t1_tse_sag", {"RepetitionTime": 0.6, "EchoTime": 0.012}),
        "t2": (sagittal, 3, "t2_tse_sag", {"RepetitionTime": 3.5, "EchoTime": 0.1}),
        "ax": (axial, 4, "t2_tse_tra", {"RepetitionTime": 4.0, "EchoTime": 0.1}),
    }
    volumes = {}
    for role, (affine, number, description, meta) in specs.items():
        data = rng.integers(0, 3000, size=(24, 20, 6)).astype(np.int16)
        volume = Volume(data, affine, meta=meta)
        write_dicom_series(
            volume,
            folder,
            series_number=number,
            series_description=description,
            meta=meta | {"ScanningSequence": "SE"},
            study_instance_uid="1.2.3.4",
            frame_of_reference_uid="1.2.3.4.5",
            seed=number,
        )
        volumes[role] = volume
    return volumes


def test_info_on_dicom_study_shows_contrasts_and_pairing(tmp_path, capsys):
    _dicom_study(tmp_path / "study")
    assert main(["info", str(tmp_path / "study"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["number"]: row for row in report["series"]}
    assert [rows[n]["contrast"] for n in (2, 3)] == ["T1", "T2"]
    assert rows[2]["paired_as"] == "T1" and rows[3]["paired_as"] == "T2"
    assert rows[4]["plane"] == "axial" and rows[4]["paired_as"] == ""
    assert rows[2]["slices"] == 6 and rows[2]["spacing_mm"] == "0.8x0.9x4"
    assert main(["info", str(tmp_path / "study")]) == 0
    table = capsys.readouterr().out
    assert "t1_tse_sag" in table and "pairing:" in table


def test_convert_writes_one_nifti_and_sidecar_per_series(tmp_path, capsys):
    volumes = _dicom_study(tmp_path / "study")
    assert main(["convert", str(tmp_path / "study"), str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "002_t1_tse_sag.json",
        "002_t1_tse_sag.nii.gz",
        "003_t2_tse_sag.json",
        "003_t2_tse_sag.nii.gz",
        "004_t2_tse_tra.json",
        "004_t2_tse_tra.nii.gz",
    ]
    converted = load(tmp_path / "out" / "002_t1_tse_sag.nii.gz")
    # The reader may order the slice axis along the DICOM normal: compare in world space.
    assert_same_in_world(converted.data, converted.affine, volumes["t1"].data, volumes["t1"].affine)
    sidecar = json.loads((tmp_path / "out" / "002_t1_tse_sag.json").read_text())
    assert sidecar["RepetitionTime"] == pytest.approx(0.6)
    assert sidecar["BmetoolkitContrast"] == "T1"
    assert not any(key.startswith("Patient") for key in sidecar)


def test_convert_reports_a_bad_series_and_converts_the_rest(tmp_path, capsys):
    from bmetoolkit.dicom.read import scan_dicom

    _dicom_study(tmp_path / "study")
    axial = next(s for s in scan_dicom(tmp_path / "study") if s.number == 4)
    for path in axial.files[1:]:  # leave the axial series with a single slice
        Path(path).unlink()
    assert main(["convert", str(tmp_path / "study"), str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "skipped #4" in captured.err
    assert "converted 2 of 3 series" in captured.out
    assert len(list((tmp_path / "out").glob("*.nii.gz"))) == 2


def test_phantom_command_writes_dicom_and_nifti_that_agree(tmp_path, capsys):
    assert (
        main(["phantom", str(tmp_path), "--seed", "3", "--lesions", "modic1", "--size", "small"])
        == 0
    )
    assert "L4 inferior: Modic I" in capsys.readouterr().out
    from bmetoolkit.study import Study

    study = Study.from_dicom(tmp_path / "dicom")
    assert study.t1.meta["SeriesDescription"] == "T1_TSE_SAG"
    assert study.stir is not None and study.t2 is not None
    t1_nifti = load(tmp_path / "nifti" / "t1.nii.gz")
    assert_same_in_world(study.t1.data, study.t1.affine, t1_nifti.data, t1_nifti.affine)


def test_phantom_command_refuses_unknown_preset(tmp_path, capsys):
    assert main(["phantom", str(tmp_path), "--lesions", "modic9"]) == 2
    assert "unknown --lesions 'modic9'" in capsys.readouterr().err
