"""Per-subject series choices in a DICOM batch; errors by type; only real options advised."""

from __future__ import annotations

import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from bmetoolkit.batch.choices import ChoicesFileError, read_series_choices
from bmetoolkit.batch.pipeline import BatchUsageError, prepare, run_batch
from bmetoolkit.cli import get_parser, main
from bmetoolkit.dicom.write import write_dicom_series
from bmetoolkit.volume import Volume
from tests.fuzz.corpus import make_seeds
from tests.test_batch_runner import read_csv


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("choices_seeds"))


def _cohort(seeds, root):
    """``clear`` pairs automatically; ``repeat`` holds a second T1 (series 12)."""
    for name in ("clear", "repeat"):
        shutil.copytree(seeds.dicom, root / name)
    t1 = nib.load(seeds.nifti / "t1.nii.gz")
    repeat = Volume(np.asarray(t1.dataobj)[::-1].copy(), t1.affine)  # a second sagittal T1
    write_dicom_series(repeat, root / "repeat", series_number=12, series_description="T1_TSE_SAG")
    return root


def _batch_options() -> set[str]:
    parser = get_parser()
    batch = parser._subparsers._group_actions[0].choices["batch"]  # argparse keeps them here
    return {option for action in batch._actions for option in action.option_strings}


def test_ambiguous_subject_fails_by_type_with_advice_batch_has(seeds, tmp_path):
    root = _cohort(seeds, tmp_path / "in")
    subjects = {s.subject: s for s in prepare(root, tmp_path / "out", layout="dicom")}
    repeat = subjects["repeat"]
    assert subjects["clear"].problem is None and subjects["clear"].problem_type == ""
    assert repeat.problem_type == "AmbiguousSeriesError"
    suggested = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", repeat.problem))
    assert suggested and suggested <= _batch_options()  # e.g. never --t1-series
    assert "#12" in repeat.problem and "'repeat<TAB>T1<TAB>T2<TAB>STIR'" in repeat.problem


def test_failures_csv_records_the_error_type(seeds, tmp_path):
    root = _cohort(seeds, tmp_path / "in")
    shutil.rmtree(root / "clear")
    report = run_batch(root, tmp_path / "out", layout="dicom")
    (row,) = read_csv(tmp_path / "out" / "failures.csv")
    assert row["error_type"] == "AmbiguousSeriesError" and row["stage"] == "discover"
    assert row["error"].startswith("AmbiguousSeriesError: ")
    assert report.outcomes[0].error_type == "AmbiguousSeriesError"


def test_series_choices_settle_the_pairing(seeds, tmp_path):
    root = _cohort(seeds, tmp_path / "in")
    choices = tmp_path / "choices.tsv"
    choices.write_text("# series per subject\nsubject\tt1\tt2\tstir\nsub-repeat\t2\t\t4\n")
    subjects = {
        s.subject: s
        for s in prepare(root, tmp_path / "out", layout="dicom", series_choices=choices)
    }
    repeat = subjects["repeat"]
    assert repeat.problem is None and repeat.t1.info.number == 2 and repeat.stir.info.number == 4
    assert any("chosen explicitly" in reason for reason in repeat.reasons)


def test_choices_for_unknown_subjects_and_bad_files_are_usage_errors(seeds, tmp_path, capsys):
    root = _cohort(seeds, tmp_path / "in")
    choices = tmp_path / "choices.tsv"
    choices.write_text("subject\tt1\nrepaet\t2\n")
    with pytest.raises(BatchUsageError, match="repaet"):
        prepare(root, tmp_path / "out", layout="dicom", series_choices=choices)
    choices.write_text("patient\tt1\nrepeat\t2\n")
    with pytest.raises(ChoicesFileError, match="'subject' required"):
        read_series_choices(choices)
    choices.write_text("subject\tallow_cross_study\nrepeat\tmaybe\n")
    with pytest.raises(ChoicesFileError, match="line 2"):
        read_series_choices(choices)
    code = main(["batch", str(root), str(tmp_path / "out"), "--series-choices", str(choices)])
    assert code == 2 and "allow_cross_study must be yes or no" in capsys.readouterr().err
