"""Manifest fingerprints and the completeness check a rerun relies on."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bmetoolkit.batch.discover import discover
from bmetoolkit.batch.manifest import check_complete, fingerprint, manifest_name
from bmetoolkit.batch.subject import SubjectTask, run_subject
from bmetoolkit.provenance import running_version
from tests.test_batch_support import fake_analyze, tiny_cohort


def test_fingerprint_reuses_hash_only_when_size_and_mtime_match(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    first = fingerprint(path)
    forged = first | {"sha256": "0" * 64}
    assert fingerprint(path, previous=forged)["sha256"] == "0" * 64  # fast path: not read
    os.utime(path, ns=(5, 5))
    assert fingerprint(path, previous=forged)["sha256"] == first["sha256"]  # re-hashed
    path.write_bytes(b"abd")
    assert fingerprint(path, previous=first)["sha256"] != first["sha256"]


def _done(tmp_path: Path) -> tuple[SubjectTask, Path]:
    root = tmp_path / "in"
    tiny_cohort(root, 1)
    subject = discover(root)[0]
    version = running_version()  # the manifest records the running code's
    task = SubjectTask(subject, str(tmp_path / "out"), str(root), {"cortex_mm": 1.0}, version)
    assert run_subject(task, analyze=fake_analyze).status == "ok"
    return task, tmp_path / "out" / "sub-s00"


def _check(task: SubjectTask, folder: Path, **changes: object) -> str:
    options = {"parameters": task.parameters, "version": task.version, "options": task.options}
    return check_complete(folder, task.subject, task.input_root, **(options | changes))[1]


def test_check_complete_reasons(tmp_path: Path) -> None:
    task, folder = _done(tmp_path)
    assert _check(task, folder) == "complete"
    assert _check(task, folder, parameters={"cortex_mm": 2.0}) == "parameters changed"
    assert "version" in _check(task, folder, version="2.0")
    assert _check(task, folder, options={"keep_phi": True}) == "option keep_phi changed"
    assert _check(task, folder, options={"qc": True}) == "option qc changed"
    t2 = Path(task.subject.t2.path)
    t2.write_bytes(t2.read_bytes() + b"\0")
    assert _check(task, folder) == "inputs changed"


def test_truncated_output_or_manifest_is_incomplete(tmp_path: Path) -> None:
    task, folder = _done(tmp_path)
    manifest = json.loads((folder / manifest_name("sub-s00")).read_text())
    report = folder / manifest["outputs"]["report"]["path"]
    report.write_text(report.read_text()[:10])
    assert "missing or changed" in _check(task, folder)
    (folder / manifest_name("sub-s00")).write_text('{"manifest_version": 1, "outp')
    assert _check(task, folder) == "no complete output"
