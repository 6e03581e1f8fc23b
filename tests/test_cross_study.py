"""Study and frame-of-reference identifiers read from real DICOM headers drive the pairing.

The sample phantom study is copied and the T1's files rewritten with pydicom to belong to
another study (or frame of reference), as in a folder holding two examinations; the reader
must find that out from the files themselves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest

from bmetoolkit.cli import main
from bmetoolkit.dicom.read import scan_dicom
from bmetoolkit.errors import CrossStudyError
from bmetoolkit.pairing.pair import pair_series
from bmetoolkit.study import Study
from tests.fuzz.corpus import make_seeds

OTHER_STUDY = "1.2.826.0.1.3680043.8.498.111"
OTHER_FRAME = "1.2.826.0.1.3680043.8.498.222"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "sample_data" / "dicom"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("cross_seeds"))


def _study_with_t1_moved(seeds, folder: Path, **tags: str) -> Path:
    shutil.copytree(seeds.dicom, folder)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        if "T1" in str(ds.SeriesDescription):
            for keyword, value in tags.items():
                setattr(ds, keyword, value)
            ds.save_as(path)
    return folder


def test_identifiers_are_read_from_the_headers(seeds):
    series = scan_dicom(seeds.dicom)
    studies = {s.identifiers["StudyInstanceUID"] for s in series}
    frames = {s.identifiers["FrameOfReferenceUID"] for s in series}
    assert len(series) == 3 and len(studies) == 1 and len(frames) == 1
    assert all("StudyInstanceUID" not in s.meta for s in series)  # never in sidecar meta


@pytest.mark.reference
@pytest.mark.skipif(not REFERENCE.is_dir(), reason="needs ../shared/sample_data/dicom")
def test_identifiers_of_a_scanner_series():
    (series,) = scan_dicom(REFERENCE / "dcm_qa_sag")
    assert series.identifiers["StudyInstanceUID"].startswith("1.")
    assert series.identifiers["FrameOfReferenceUID"].startswith("1.")


def test_t1_of_another_study_is_refused_then_allowed(seeds, tmp_path):
    folder = _study_with_t1_moved(seeds, tmp_path / "dicom", StudyInstanceUID=OTHER_STUDY)
    series = scan_dicom(folder)
    with pytest.raises(CrossStudyError, match="pairing across studies is refused"):
        pair_series(series)
    with pytest.raises(CrossStudyError):
        Study.from_dicom(folder)
    study = Study.from_dicom(folder, allow_cross_study=True)
    assert any("different study" in note for note in study.notes)


def test_cli_refuses_cross_study_pairing_with_a_real_option(seeds, tmp_path, capsys):
    folder = _study_with_t1_moved(seeds, tmp_path / "dicom", StudyInstanceUID=OTHER_STUDY)
    out = tmp_path / "out"
    assert main(["analyze", str(folder), "--out", str(out), "--no-qc"]) == 1
    err = capsys.readouterr().err
    assert "pairing across studies is refused" in err and "--allow-cross-study" in err
    assert "allow_cross_study=True" not in err and not out.exists()
    code = main(["analyze", str(folder), "--allow-cross-study", "--out", str(out), "--no-qc"])
    assert code == 0
    report = (out / "report.json").read_text()
    assert OTHER_STUDY not in report  # identifiers never reach the outputs
    assert "different study than the T1" in report


def test_other_frame_of_reference_gets_a_note(seeds, tmp_path):
    folder = _study_with_t1_moved(seeds, tmp_path / "dicom", FrameOfReferenceUID=OTHER_FRAME)
    study = Study.from_dicom(folder)
    assert any("frame of reference" in note for note in study.notes)


def test_convert_sidecars_keep_identifiers_out(seeds, tmp_path):
    assert main(["convert", str(seeds.dicom), str(tmp_path)]) == 0
    for sidecar in tmp_path.glob("*.json"):
        values = json.loads(sidecar.read_text())
        assert not {"StudyInstanceUID", "PairingIdentifiers", "SourceFiles"} & set(values)
