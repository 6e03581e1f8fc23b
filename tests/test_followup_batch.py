"""A batch of a BIDS dataset with sessions: the longitudinal tables (issue 14, scope 4)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from bmetoolkit.batch.longitudinal import LONGITUDINAL_PAGE, session_order
from bmetoolkit.batch.pipeline import run_batch
from bmetoolkit.data.phantom.followup import make_phantom_pair
from bmetoolkit.data.phantom.lesions import Lesion
from bmetoolkit.followup import longitudinal
from bmetoolkit.followup.longitudinal import PAIR_COLUMNS, SESSION_COLUMNS, compare_sessions

BASELINE = [Lesion("L2", "edema", height_frac=0.5, ap_width=0.7, lr_width=0.7)]
FOLLOWUP = [Lesion("L2", "edema", height_frac=0.3, ap_width=0.5, lr_width=0.5)]
NAMES = {"t1": "T1w", "stir": "acq-stir_T2w"}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _session(root: Path, subject: str, session: str, study) -> None:
    """Write one visit of a phantom as BIDS, with its vertebrae as a derivative."""
    source = root / ".src" / f"{subject}_{session}"
    study.write_nifti(source)
    prefix = f"sub-{subject}_ses-{session}"
    anat = root / f"sub-{subject}" / f"ses-{session}" / "anat"
    anat.mkdir(parents=True)
    for role, suffix in NAMES.items():
        shutil.copy(source / f"{role}.nii.gz", anat / f"{prefix}_{suffix}.nii.gz")
    labels = root / "derivatives" / "spineps" / f"sub-{subject}" / f"ses-{session}" / "anat"
    labels.mkdir(parents=True)
    shutil.copy(source / "vertebrae.nii.gz", labels / f"{prefix}_seg-vert_msk.nii.gz")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sub-01: sessions 1, 2 (lesion shrunk) and 10 (a rescan of 2); sub-02: one session."""
    root = tmp_path_factory.mktemp("bids")
    pair = make_phantom_pair(
        31, kind="random", small=True, baseline_lesions=BASELINE, followup_lesions=FOLLOWUP
    )
    rescan = make_phantom_pair(
        31, kind="random", small=True, baseline_lesions=FOLLOWUP, retest=True
    )
    _session(root, "01", "1", pair.baseline)
    _session(root, "01", "2", pair.followup)
    _session(root, "01", "10", rescan.followup)
    _session(root, "02", "1", make_phantom_pair(32, kind="random", small=True).baseline)
    shutil.rmtree(root / ".src")
    return root


@pytest.fixture(scope="module")
def batch(cohort: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("out")
    report = run_batch(cohort, out, progress=False, qc=True)
    return report, out


def test_batch_writes_one_row_per_session_level_and_per_pair_region(batch):
    report, out = batch
    assert report.exit_code == 0
    sessions = _read(out / "longitudinal_sessions.csv")
    assert list(sessions[0]) == list(SESSION_COLUMNS)
    assert {(r["subject"], r["session"]) for r in sessions} == {("01", "1"), ("01", "2"),
                                                                ("01", "10")}  # fmt: skip
    changes = _read(out / "longitudinal_changes.csv")
    assert list(changes[0]) == list(PAIR_COLUMNS)
    pairs = {(r["from_session"], r["to_session"]) for r in changes}
    assert pairs == {("1", "2"), ("2", "10")}  # natural order; sub-02 has one session
    assert all(r["status"] == "ok" for r in changes)
    totals = {(r["from_session"], r["to_session"]): r for r in changes if r["region"] == "total"}
    assert float(totals[("1", "2")]["bme_change_ml"]) < 0  # the L2 edema shrank
    for row in changes:
        assert (out / row["compare"] / "report.json").is_file()  # each pair's comparison
    assert (out / "longitudinal_changes.tsv").is_file()
    assert set(report.tables) >= {"longitudinal_sessions_csv", "longitudinal_changes_csv"}


def test_batch_pairs_are_registered_on_the_t1_found_from_relative_paths(batch):
    _, out = batch
    compared = json.loads(
        (out / "sub-01" / "compare" / "ses-1_to_ses-2" / "report.json").read_text()
    )
    assert compared["registration"]["method"] == "T1 mutual information"


def test_index_page_links_the_longitudinal_page(batch):
    _, out = batch
    index = (out / "index.html").read_text()
    assert LONGITUDINAL_PAGE in index
    assert "4 subject-sessions (2 subjects) processed, 0 failed." in index  # rows are visits
    page = (out / LONGITUDINAL_PAGE).read_text()
    assert "ses-1 &rarr; ses-2" in page and "pair_qc.html" in page
    assert "Change (mL)" in page and "RC (mL)" in page  # a table with units, from a template


def test_rerun_reads_unchanged_pairs_back(batch, cohort, monkeypatch):
    _, out = batch
    before = (out / "longitudinal_changes.csv").read_text()

    def refuse(*args, **kwargs):
        raise AssertionError("an unchanged pair was compared again")

    monkeypatch.setattr("bmetoolkit.followup.compare.compare", refuse)
    run_batch(cohort, out, progress=False, qc=True)
    assert (out / "longitudinal_changes.csv").read_text() == before


def test_a_failed_pair_does_not_stop_the_others(monkeypatch, tmp_path):
    calls = []

    class Done:
        def __init__(self) -> None:
            self.change_rows = [{"region": "total", "bme_change_ml": 0.0}]

    def fake(first, second, out=None):
        calls.append((first, second))
        if first == "a":
            raise ValueError("broken file")
        return Done()

    monkeypatch.setattr("bmetoolkit.followup.compare.compare", fake)
    monkeypatch.setattr(longitudinal, "load_visit", lambda visit, label: visit)
    rows = compare_sessions("01", [("1", "a"), ("2", "b"), ("3", "c")])
    assert calls == [("a", "b"), ("b", "c")]
    assert rows[0]["status"] == "failed" and rows[0]["error"] == "broken file"
    assert rows[0]["error_type"] == "ValueError"
    assert rows[1] == {"subject": "01", "from_session": "2", "to_session": "3", "status": "ok",
                       "region": "total", "bme_change_ml": 0.0, "compare": ""}  # fmt: skip


def test_an_unreadable_session_fails_its_pairs_only():
    error = FileNotFoundError("gone")
    rows = compare_sessions("01", [("1", error), ("2", Path("/nonexistent/x"))])
    assert [r["status"] for r in rows] == ["failed"]
    assert rows[0]["error_type"] == "FileNotFoundError"


def test_session_order_is_natural():
    assert sorted(["10", "2", "1b", "1a"], key=session_order) == ["1a", "1b", "2", "10"]


def test_a_failed_session_is_left_out_and_its_neighbours_compared(batch, cohort):
    from bmetoolkit.batch.longitudinal import write_longitudinal
    from bmetoolkit.batch.subject import SubjectOutcome

    _, out = batch
    outcomes = [
        SubjectOutcome("01", "1", "ok"),
        SubjectOutcome("01", "2", "failed", stage="analyze", error="broken"),
        SubjectOutcome("01", "10", "ok"),
    ]
    tables = write_longitudinal(out, outcomes, cohort)
    changes = _read(tables["longitudinal_changes_csv"])
    assert {(r["from_session"], r["to_session"]) for r in changes} == {("1", "10")}
    assert all("session(s) 2 failed" in r["note"] for r in changes)
    assert {r["session"] for r in _read(tables["longitudinal_sessions_csv"])} == {"1", "10"}


def test_no_subject_with_two_sessions_removes_earlier_tables(tmp_path):
    from bmetoolkit.batch.longitudinal import TABLE_FILES, write_longitudinal
    from bmetoolkit.batch.subject import SubjectOutcome

    for name in TABLE_FILES:
        (tmp_path / name).write_text("old")
    assert write_longitudinal(tmp_path, [SubjectOutcome("01", "1", "ok")], tmp_path) == {}
    assert not any((tmp_path / name).exists() for name in TABLE_FILES)
