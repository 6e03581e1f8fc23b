"""Batch runs end to end with the stand-in analysis: outputs, failures, resume, kills, PHI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bmetoolkit.batch.discover import discover
from bmetoolkit.batch.pipeline import BatchUsageError, run_batch
from bmetoolkit.batch.subject import SubjectTask, publish, run_subject
from tests.test_batch_support import (
    DELAY_VARIABLE,
    STARTED_VARIABLE,
    fake_analyze,
    fake_worker,
    foreground_command,
    hidden_leftovers,
    tiny_cohort,
    visible_files,
    write_tiny_subject,
)

ROOT = Path(__file__).resolve().parents[1]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    tiny_cohort(tmp_path / "in", 4)
    return tmp_path / "in"


@pytest.mark.slow
def test_outputs_tables_and_bids_names(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_batch(cohort, out, jobs=2, worker=fake_worker, progress=False)
    assert report.exit_code == 0 and report.count("ok") == 4
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "bmetoolkit"
    assert description["SourceDatasets"] == [{"URL": "../in"}]
    anat = out / "sub-s00" / "anat"
    for name in ("desc-bme", "desc-modic", "desc-vertebrae"):  # the colour tables beside
        # them come from AnalysisResult.save: tests/test_batch_same_outputs.py
        assert (anat / f"sub-s00_{name}_dseg.nii.gz").is_file()
    assert (anat / "sub-s00_report.json").is_file()
    manifest = json.loads((out / "sub-s00" / "sub-s00_manifest.json").read_text())
    assert set(manifest["inputs"]) == {"t1", "t2"}
    assert manifest["inputs"]["t1"]["path"] == "s00/t1.nii.gz"  # relative, never absolute
    subjects = read_csv(out / "subjects.csv")
    assert [r["subject"] for r in subjects] == ["s00", "s01", "s02", "s03"]
    assert {r["status"] for r in subjects} == {"ok"}
    assert float(subjects[0]["bme_volume_ml"]) > 0
    for name in ("subjects", "endplates"):  # the TSV holds the same table as the CSV
        with open(out / f"{name}.tsv", newline="") as handle:
            assert list(csv.DictReader(handle, delimiter="\t")) == read_csv(out / f"{name}.csv")
    endplates = read_csv(out / "endplates.csv")
    assert len(endplates) == 8 and endplates[0]["subject"] == "s00"
    assert read_csv(out / "failures.csv") == []
    assert hidden_leftovers(out) == []


@pytest.mark.slow
def test_corrupt_subject_fails_alone(cohort: Path, tmp_path: Path) -> None:
    (cohort / "s01" / "t1.nii.gz").write_bytes(b"\x1f\x8b\x08not really gzip")
    (cohort / "s03" / "t2.nii.gz").unlink()  # no fluid-sensitive image: fails at discovery
    out = tmp_path / "out"
    report = run_batch(cohort, out, jobs=2, worker=fake_worker, progress=False)
    assert report.exit_code == 1
    failures = {r["subject"]: r for r in read_csv(out / "failures.csv")}
    assert set(failures) == {"s01", "s03"}
    assert failures["s01"]["stage"] == "analyze" and "CorruptFileError" in failures["s01"]["error"]
    # the file is named relative to the cohort folder, as in the reports (no --keep-phi)
    assert "s01/t1.nii.gz" in failures["s01"]["error"]
    assert str(cohort.resolve()) not in failures["s01"]["error"]
    assert str(cohort) not in failures["s01"]["error"]
    assert failures["s03"]["stage"] == "discover" and "T2 or STIR" in failures["s03"]["error"]
    assert (out / "sub-s00" / "sub-s00_manifest.json").is_file()
    assert (out / "sub-s02" / "sub-s02_manifest.json").is_file()
    assert not (out / "sub-s01").exists() and hidden_leftovers(out) == []
    statuses = {r["subject"]: r["status"] for r in read_csv(out / "subjects.csv")}
    assert statuses == {"s00": "ok", "s01": "failed", "s02": "ok", "s03": "failed"}


@pytest.mark.slow
def test_rerun_skips_then_redoes_what_changed(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_batch(cohort, out, worker=fake_worker, progress=False)
    before = {p: p.stat().st_mtime_ns for p in visible_files(out / "sub-s00")}
    again = run_batch(cohort, out, worker=fake_worker, progress=False)
    assert again.count("unchanged") == 4 and again.exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in visible_files(out / "sub-s00")} == before
    assert [o.summary for o in again.outcomes] == [o.summary for o in first.outcomes]
    # only touched: same content, so still unchanged (hash compared when mtime differs)
    os.utime(cohort / "s00" / "t1.nii.gz", ns=(1, 1))
    assert run_batch(cohort, out, worker=fake_worker, progress=False).count("unchanged") == 4
    # new content for one subject: that subject only is redone
    write_tiny_subject(cohort / "s02", seed=99, names=("t1",))
    third = run_batch(cohort, out, worker=fake_worker, progress=False)
    assert [o.status for o in third.outcomes] == ["unchanged", "unchanged", "ok", "unchanged"]
    assert third.outcomes[2].summary != first.outcomes[2].summary
    # parameters changed: everything is redone
    changed = run_batch(
        cohort, out, worker=fake_worker, progress=False, parameters={"min_lesion_mm3": 80.0}
    )
    assert changed.count("ok") == 4
    # an output deleted: that subject is redone
    next((out / "sub-s01" / "anat").glob("*_desc-modic_dseg.nii.gz")).unlink()
    params = {"min_lesion_mm3": 80.0}
    redo = run_batch(cohort, out, worker=fake_worker, progress=False, parameters=params)
    assert [o.status for o in redo.outcomes] == ["unchanged", "ok", "unchanged", "unchanged"]
    forced = run_batch(
        cohort, out, worker=fake_worker, progress=False, parameters=params, force=True
    )
    assert forced.count("ok") == 4 and hidden_leftovers(out) == []
    assert len(read_csv(out / "subjects.csv")) == 4


def test_a_rerun_by_other_code_of_the_same_version_redoes_every_subject(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between releases the version number stays (``0.1.0.dev0``) while the code changes:
    the manifest records the code's digest with it, so results of the old code are not
    taken for up to date (they were, silently, before session 46)."""
    from bmetoolkit import provenance

    out = tmp_path / "out"
    run_batch(cohort, out, worker=fake_worker, progress=False)
    manifest = json.loads(next((out / "sub-s00").glob("*_manifest.json")).read_text())
    assert manifest["version"] == provenance.running_version()
    assert "+code." in manifest["version"]
    assert run_batch(cohort, out, worker=fake_worker, progress=False).count("unchanged") == 4
    monkeypatch.setattr(provenance, "code_digest", lambda: "0" * provenance.DIGEST_DIGITS)
    again = run_batch(cohort, out, worker=fake_worker, progress=False)
    assert again.count("ok") == 4


def test_a_worker_running_other_code_records_its_own(cohort: Path, tmp_path: Path) -> None:
    """A Dask worker may hold another install than the batch's client: the manifest names
    the code that ran, so the client never takes those outputs for its own code's."""
    from bmetoolkit.batch.manifest import check_complete
    from bmetoolkit.provenance import running_version

    subject = discover(cohort)[0]
    client = "0.1.0.dev0+code.000000000000"
    task = SubjectTask(subject, str(tmp_path / "out"), str(cohort), {}, client)
    assert run_subject(task, analyze=fake_analyze).status == "ok"
    folder = tmp_path / "out" / "sub-s00"
    manifest = json.loads(next(folder.glob("*_manifest.json")).read_text())
    assert manifest["version"] == running_version() != client
    options = {"parameters": {}, "options": task.options}
    assert (
        "version changed"
        in check_complete(folder, subject, str(cohort), version=client, **options)[1]
    )
    assert run_subject(task, analyze=fake_analyze).status == "ok"  # redone, not unchanged


@pytest.mark.slow
def test_killed_worker_fails_only_its_subject(cohort: Path, tmp_path: Path) -> None:
    write_tiny_subject(cohort / "boom", seed=5)
    report = run_batch(cohort, tmp_path / "out", jobs=2, worker=fake_worker, progress=False)
    by_subject = {o.subject: o for o in report.outcomes}
    assert by_subject["boom"].status == "failed" and by_subject["boom"].stage == "worker"
    others = {s: (o.status, o.stage, o.error) for s, o in by_subject.items() if s != "boom"}
    assert all(status == "ok" for status, _, _ in others.values()), others
    assert report.exit_code == 1 and hidden_leftovers(tmp_path / "out") == []


def worker_beside_a_killed_one(task: SubjectTask) -> Any:
    """``fake_worker``, after leaving the hidden folder of a neighbour killed mid-write (as a
    worker that dies takes the subjects in flight beside it down)."""
    (Path(task.output) / f".sub-{task.subject.subject}x.partial-0123456789ab").mkdir()
    return fake_worker(task)


def test_hidden_folders_of_subjects_killed_mid_write_go_by_the_end(
    cohort: Path, tmp_path: Path
) -> None:
    report = run_batch(cohort, tmp_path / "out", worker=worker_beside_a_killed_one, progress=False)
    assert report.exit_code == 0 and report.count("ok") == len(report.outcomes)
    assert hidden_leftovers(tmp_path / "out") == []


@pytest.mark.slow  # batches in worker processes
def test_path_traversal_labels_never_leave_output(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for name in ("..", "a-1", "a_1", "Müller 03"):
        write_tiny_subject(root / "x" / name, seed=1)
    subjects = discover(root, pattern="x/{subject}/{role}.nii.gz")
    labels = sorted(s.subject for s in subjects)
    assert "Muller03" in labels and len(set(labels)) == 3  # ".." matches no folder name
    a_labels = [label for label in labels if label.startswith("a1")]
    assert len(a_labels) == 2  # a-1 and a_1 kept apart
    out = tmp_path / "out"
    evil = replace(subjects[0], subject="../../evil")
    report = run_batch(root, out, worker=fake_worker, progress=False, subjects=[*subjects, evil])
    failed = [o for o in report.outcomes if o.status == "failed"]
    assert (
        len(failed) == 1 and failed[0].stage == "output" and "not a BIDS label" in failed[0].error
    )
    assert not (tmp_path / "evil").exists()
    for path in tmp_path.rglob("*"):
        assert path.is_relative_to(root) or path.is_relative_to(out)


@pytest.mark.slow  # batches in worker processes
def test_phi_is_scrubbed_unless_kept(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(cohort, out, worker=fake_worker, progress=False)
    report = (out / "sub-s00" / "anat" / "sub-s00_report.json").read_text()
    assert "Doe^Jane" not in report and str(cohort.resolve()) not in report
    assert json.loads(report)["inputs"]["t1"] == "s00/t1.nii.gz"
    run_batch(cohort, out, worker=fake_worker, progress=False, keep_phi=True)
    kept = (out / "sub-s00" / "anat" / "sub-s00_report.json").read_text()
    assert "Doe^Jane" in kept


@pytest.mark.slow  # batches in worker processes
def test_failure_keeps_absolute_paths_with_keep_phi(cohort: Path, tmp_path: Path) -> None:
    (cohort / "s01" / "t1.nii.gz").write_bytes(b"\x1f\x8b\x08not really gzip")
    out = tmp_path / "out"
    run_batch(cohort, out, worker=fake_worker, progress=False, keep_phi=True)
    (failure,) = read_csv(out / "failures.csv")
    assert str((cohort / "s01" / "t1.nii.gz").resolve()) in failure["error"]


def test_publish_replaces_complete_folder(tmp_path: Path) -> None:
    final, new = tmp_path / "sub-1", tmp_path / ".sub-1.partial-x"
    final.mkdir()
    (final / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    publish(new, final)
    assert [p.name for p in tmp_path.iterdir()] == ["sub-1"]
    assert [p.name for p in final.iterdir()] == ["new.txt"]


def test_run_subject_failure_leaves_nothing(cohort: Path, tmp_path: Path) -> None:
    subject = discover(cohort)[0]
    out = tmp_path / "out"
    task = SubjectTask(subject, str(out), str(cohort), {}, "0")

    def broken(*args: object, **kwargs: object) -> object:
        result = fake_analyze(*args, **kwargs)
        original = result.save

        def save(folder: Path, names: dict | None = None, **options: object) -> dict:
            original(folder, names)  # every file written, then a failure before the manifest
            raise ZeroDivisionError("disk full")

        result.save = save
        return result

    outcome = run_subject(task, analyze=broken)
    assert outcome.status == "failed" and outcome.stage == "save"
    assert "ZeroDivisionError" in outcome.error
    assert visible_files(out) == [] and hidden_leftovers(out) == []


def test_usage_errors(cohort: Path, tmp_path: Path) -> None:
    with pytest.raises(BatchUsageError, match="differ"):
        run_batch(cohort, cohort, worker=fake_worker)
    with pytest.raises(BatchUsageError, match="inside OUTPUT"):
        run_batch(cohort, cohort.parent, worker=fake_worker)
    with pytest.raises(BatchUsageError, match="jobs"):
        run_batch(cohort, tmp_path / "o", jobs=0, worker=fake_worker)
    with pytest.raises(BatchUsageError, match="unknown parameter"):
        run_batch(cohort, tmp_path / "o", parameters={"nope": 1}, worker=fake_worker)
    with pytest.raises(BatchUsageError, match="role"):
        run_batch(cohort, tmp_path / "o", pattern="{subject}.nii", worker=fake_worker)


@pytest.mark.slow  # batches in worker processes
def test_output_inside_input_is_not_discovered(cohort: Path) -> None:
    out = cohort / "derivatives" / "bmetoolkit"
    report = run_batch(cohort, out, worker=fake_worker, progress=False)
    assert len(report.outcomes) == 4
    assert len(run_batch(cohort, out, worker=fake_worker, progress=False).outcomes) == 4


_SCRIPT = """
import sys
from bmetoolkit.batch.pipeline import run_batch
from tests.test_batch_support import fake_worker
report = run_batch(sys.argv[1], sys.argv[2], jobs=2, worker=fake_worker, progress=False)
sys.exit(report.exit_code)
"""


def _wait_for_first_subject(out: Path, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(out.glob("sub-*/sub-*_manifest.json")):
            return
        assert process.poll() is None, "the batch ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError("no subject finished in time")


@pytest.mark.slow
def test_killed_batch_resumes_cleanly(tmp_path: Path) -> None:
    """kill -9 of the batch and its workers mid-run (SIGINT through the CLI: test_batch_e2e)."""
    root, out = tmp_path / "in", tmp_path / "out"
    labels = tiny_cohort(root, 10)
    env = os.environ | {DELAY_VARIABLE: "0.4", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(root), str(out)],
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its own process group: the kill reaches the workers too
    )
    try:
        _wait_for_first_subject(out, process)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    finished = sorted(p.parent.name for p in out.glob("sub-*/sub-*_manifest.json"))
    assert 1 <= len(finished) < len(labels), finished
    for folder in out.glob("sub-*"):  # every visible subject folder is complete
        assert (folder / f"{folder.name}_manifest.json").is_file()
    report = run_batch(root, out, jobs=2, worker=fake_worker, progress=False)
    assert report.exit_code == 0
    assert [o.status == "unchanged" for o in report.outcomes].count(True) == len(finished)
    assert sorted(p.name for p in out.glob("sub-*")) == [f"sub-{s}" for s in labels]
    assert hidden_leftovers(out) == []
    assert len(read_csv(out / "subjects.csv")) == len(labels)


def test_parameters_reach_each_subject_analysis(cohort: Path, tmp_path: Path) -> None:
    """``--params`` (here inline JSON with an autoseg value) reaches every subject's analyze."""
    import dataclasses

    from bmetoolkit.batch.pipeline import default_parameters
    from bmetoolkit.params import Parameters
    from bmetoolkit.spine.autoseg import AutosegParameters

    defaults = AutosegParameters()
    field = next(
        f for f in dataclasses.fields(defaults) if isinstance(getattr(defaults, f.name), float)
    )
    value = getattr(defaults, field.name) + 0.25
    given = Parameters.from_argument(f'{{"grow_z": 2.0, "autoseg": {{"{field.name}": {value}}}}}')
    task = SubjectTask(discover(cohort)[0], str(tmp_path / "out"), str(cohort),
                       default_parameters(given.to_dict()), "0")  # fmt: skip
    seen = []

    def analyze(*args: object, params: Parameters, **kwargs: object) -> object:
        seen.append(params)
        return fake_analyze(*args, params=params, **kwargs)

    assert run_subject(task, analyze=analyze).status == "ok"
    assert seen == [given] and getattr(seen[0].autoseg, field.name) == value


@pytest.mark.slow
def test_a_rerun_without_qc_removes_the_index_of_the_qc_run(cohort: Path, tmp_path: Path) -> None:
    # every subject is redone without its QC page (--qc is part of the fingerprint), so an
    # index.html left by the --qc run would link to pages that are gone
    out = tmp_path / "out"
    with_qc = run_batch(cohort, out, worker=fake_worker, progress=False, qc=True)
    assert with_qc.tables["qc_index"] == out / "index.html" and (out / "index.html").is_file()
    without = run_batch(cohort, out, worker=fake_worker, progress=False)
    assert without.count("ok") == 4 and "qc_index" not in without.tables
    assert not (out / "index.html").exists()
    assert (out / "subjects.csv").is_file()


def test_a_role_check_refusal_says_what_to_do_in_batch_terms(cohort: Path, tmp_path: Path) -> None:
    # the batch has neither --no-role-check nor verify_roles: its advice must not name them
    from bmetoolkit.errors import ContrastMismatchError

    subject = discover(cohort)[0]
    task = SubjectTask(subject, str(tmp_path / "out"), str(cohort), {}, "0")

    def refused(*args: object, **kwargs: object) -> object:
        raise ContrastMismatchError(
            "the image given as T1 does not look like a T1 next to the STIR",
            path=["t1.nii.gz", "stir.nii.gz"],
            hint="give the T1 as the T1; if you are sure of the roles, pass verify_roles=False",
            cli_hint="give the T1 as the T1; if you are sure of the roles, add --no-role-check",
        )

    outcome = run_subject(task, analyze=refused)
    assert outcome.status == "failed" and outcome.error_type == "ContrastMismatchError"
    assert outcome.error.startswith(
        "ContrastMismatchError: t1.nii.gz and stir.nii.gz: the image given as T1 does not"
    )
    assert "verify_roles" not in outcome.error
    assert "name each file for its role" in outcome.error
    assert "analyse this subject alone with `bmetoolkit analyze ... --no-role-check`" in (
        outcome.error
    )


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.parametrize(
    "send",
    [
        lambda pid: os.kill(pid, signal.SIGINT),  # the batch alone (as SIGTERM to the CLI)
        lambda pid: os.killpg(pid, signal.SIGINT),  # Ctrl-C, or a Jupyter kernel interrupt
    ],
    ids=["batch-alone", "process-group"],
)
def test_an_interrupt_stops_running_subjects_at_once(tmp_path: Path, send: Any) -> None:
    """A KeyboardInterrupt in the batch stops its workers; it does not wait for the subjects
    in flight (each would take 120 s here), no worker outlives the batch, and nothing visible
    is left half written. Workers ignore SIGINT: a Ctrl-C to the whole process group (a
    terminal, Jupyter's interrupt) must stop them through the batch too."""
    root, out, started = tmp_path / "in", tmp_path / "out", tmp_path / "started"
    tiny_cohort(root, 4)
    started.mkdir()
    env = os.environ | {
        DELAY_VARIABLE: "120",
        STARTED_VARIABLE: str(started),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        foreground_command("-c", _SCRIPT, str(root), str(out)),
        env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # spawning two workers takes minutes at load 10+
        while len(workers := [int(p.name) for p in started.iterdir()]) < 2:
            assert process.poll() is None and time.monotonic() < deadline, "no two subjects"
            time.sleep(0.05)
        send(process.pid)  # both workers are inside their first subject
        process.communicate(timeout=60)  # the subjects would end 120 s after they began
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("the interrupted batch waited for its running subjects")
    assert process.returncode != 0
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived the batch"
    assert not list(out.glob("sub-*"))  # nothing visible: only hidden temporaries, if any
