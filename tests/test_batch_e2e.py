"""Batch runs with the real analysis on small phantoms: every layout, the CLI, Dask."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from bmetoolkit.batch.pipeline import run_batch
from bmetoolkit.cli import main
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from tests.test_batch_support import foreground_command

analysis = pytest.importorskip("bmetoolkit.analysis", reason="bmetoolkit.analysis not present")
pytestmark = pytest.mark.slow  # real analyses in worker processes: `make test`, not test-fast

SEEDS = (1, 2, 3)
#: Copies of each phantom in the interrupted batch: enough subjects that the batch is still
#: running when its first subject is done (two workers, one subject each at a time).
COPIES = 2


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in ("duration_s", "status")} for r in rows]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``nifti/p<seed>/`` (images + truth) and ``dicom/p<seed>/`` for each seed."""
    root = tmp_path_factory.mktemp("phantoms")
    for seed in SEEDS:
        study = make_phantom(seed, config=PhantomConfig.small())
        study.write_nifti(root / "nifti" / f"p{seed}")
        study.write_dicom(root / "dicom" / f"p{seed}")
    return root


@pytest.fixture(scope="module")
def nifti_batch(phantoms: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The NIfTI phantoms through ``run_batch`` in two worker processes: (output, report)."""
    out = tmp_path_factory.mktemp("nifti_batch") / "out"
    return out, run_batch(phantoms / "nifti", out, jobs=2, progress=False)


def test_nifti_layout_equals_direct_analysis(phantoms: Path, nifti_batch) -> None:
    out, report = nifti_batch
    assert report.exit_code == 0, [o.error for o in report.outcomes]
    folder = phantoms / "nifti" / "p2"
    direct = analysis.analyze(
        folder / "t1.nii.gz",
        t2=folder / "t2.nii.gz",
        stir=folder / "stir.nii.gz",
        vertebrae=folder / "vertebrae.nii.gz",
    )
    row = next(r for r in read_csv(out / "subjects.csv") if r["subject"] == "p2")
    assert float(row["bme_volume_ml"]) == pytest.approx(direct.bme_volume_ml, abs=1e-4)
    assert int(row["n_endplates"]) == len(direct.endplates)
    modic = nib.load(out / "sub-p2" / "anat" / "sub-p2_desc-modic_dseg.nii.gz")
    assert np.array_equal(np.asarray(modic.dataobj), direct.modic_map.data)
    assert np.allclose(modic.affine, direct.modic_map.affine)
    endplates = [r for r in read_csv(out / "endplates.csv") if r["subject"] == "p2"]
    assert [r["modic_type"] for r in endplates] == list(direct.endplates["modic_type"])
    anat = out / "sub-p2" / "anat"
    vertebrae = (anat / "sub-p2_desc-vertebrae_dseg.tsv").read_text().splitlines()
    assert vertebrae[0].startswith("index\tname") and "\tL4\t" in "\n".join(vertebrae)
    assert len(vertebrae) - 1 == len(direct.to_dict()["labels"]["bodies"])  # this subject's
    lesions = (anat / "sub-p2_desc-lesions_dseg.tsv").read_text().splitlines()
    assert len(lesions) - 1 == len(direct.lesions)
    for stem in ("desc-bme", "desc-modic", "desc-vertebrae", "desc-lesions"):
        assert (anat / f"sub-p2_{stem}.ctbl").is_file()
        assert (anat / f"sub-p2_{stem}_itksnap.txt").is_file()


def test_dicom_layout_cli_with_a_corrupt_subject(phantoms: Path, tmp_path: Path) -> None:
    cohort = tmp_path / "dicom"
    shutil.copytree(phantoms / "dicom", cohort)
    (cohort / "broken").mkdir()
    (cohort / "broken" / "scan.dcm").write_bytes(b"not dicom at all")
    out = tmp_path / "out"
    assert main(["batch", str(cohort), str(out), "--dry-run"]) == 1  # one cannot be paired
    assert not out.exists()
    assert main(["batch", str(cohort), str(out), "--jobs", "2", "--no-progress"]) == 1
    failures = read_csv(out / "failures.csv")
    assert [(f["subject"], f["stage"]) for f in failures] == [("broken", "discover")]
    subjects = {r["subject"]: r for r in read_csv(out / "subjects.csv")}
    assert {s: r["status"] for s, r in subjects.items()} == {
        "broken": "failed",
        "p1": "ok",
        "p2": "ok",
        "p3": "ok",
    }
    manifest = json.loads((out / "sub-p1" / "sub-p1_manifest.json").read_text())
    assert len(manifest["inputs"]["t1"]["files"]) == 6  # the T1 series' slices
    assert any("STIR" in reason for reason in manifest["pairing"])
    # the rerun finds everything up to date: nothing analysed, still exit 1 for 'broken'
    assert main(["batch", str(cohort), str(out), "--no-progress"]) == 1
    assert {r["status"] for r in read_csv(out / "subjects.csv") if r["subject"] != "broken"} == {
        "unchanged"
    }


def _bids_cohort(phantoms: Path, root: Path) -> None:
    names = {"t1": "T1w", "t2": "T2w", "stir": "acq-stir_T2w"}
    units = {"sub-01": phantoms / "nifti" / "p1", "sub-02/ses-base": phantoms / "nifti" / "p2"}
    for unit, source in units.items():
        prefix = unit.replace("/", "_")
        anat = root / unit / "anat"
        anat.mkdir(parents=True)
        for role, suffix in names.items():
            shutil.copy(source / f"{role}.nii.gz", anat / f"{prefix}_{suffix}.nii.gz")
        labels = root / "derivatives" / "spineps" / unit / "anat"
        labels.mkdir(parents=True)
        shutil.copy(source / "vertebrae.nii.gz", labels / f"{prefix}_seg-vert_msk.nii.gz")
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "phantoms", "BIDSVersion": "1.9.0", "DatasetDOI": "10.0/x"})
    )


def test_bids_layout_with_derivative_labels(phantoms: Path, tmp_path: Path) -> None:
    root = tmp_path / "bids"
    _bids_cohort(phantoms, root)
    out = root / "derivatives" / "bmetoolkit"
    assert main(["batch", str(root), str(out), "--no-progress", "--qc"]) == 0
    anat = out / "sub-02" / "ses-base" / "anat"
    assert (anat / "sub-02_ses-base_desc-modic_dseg.nii.gz").is_file()
    page = (anat / "sub-02_ses-base_qc.html").read_text()
    assert "<img" in page and str(root.resolve()) not in page
    report = json.loads((anat / "sub-02_ses-base_report.json").read_text())
    assert report["labels"]["levels_known"] is True
    assert str(root.resolve()) not in json.dumps(report)  # input paths made relative
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["SourceDatasets"][0]["DOI"] == "10.0/x"
    rows = read_csv(out / "subjects.csv")
    assert [(r["subject"], r["session"]) for r in rows] == [("01", ""), ("02", "base")]


def test_dask_local_cluster_equals_local_run(phantoms: Path, nifti_batch, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    local_out, local = nifti_batch  # the local run (two worker processes)
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        remote = run_batch(phantoms / "nifti", tmp_path / "dask", scheduler=cluster, progress=False)
        address = cluster.scheduler_address
        cli = ["batch", str(phantoms / "nifti"), str(tmp_path / "cli"), "--scheduler", address]
        assert main([*cli, "--no-progress"]) == 0
    worker_pids = {o.worker_pid for o in remote.outcomes}
    assert local.exit_code == remote.exit_code == 0
    assert None not in worker_pids and os.getpid() not in worker_pids  # ran on the workers
    for other in ("dask", "cli"):
        for table in ("subjects.csv", "endplates.csv", "failures.csv"):
            assert without_timing(read_csv(local_out / table)) == without_timing(
                read_csv(tmp_path / other / table)
            )
        outputs = sorted(local_out.rglob("*.nii.gz"))
        assert len(outputs) == 4 * len(SEEDS)
        for path in outputs:
            twin = tmp_path / other / path.relative_to(local_out)
            assert np.array_equal(
                np.asarray(nib.load(path).dataobj), np.asarray(nib.load(twin).dataobj)
            )


@pytest.mark.parametrize(
    "send",
    [
        lambda pid: os.killpg(pid, signal.SIGINT),  # Ctrl-C reaches the whole process group
        lambda pid: os.kill(pid, signal.SIGTERM),  # kill PID of the batch alone
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_interrupted_cli_then_rerun(phantoms: Path, tmp_path: Path, send: Any) -> None:
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    for copy in range(COPIES):
        for seed in SEEDS:
            shutil.copytree(phantoms / "nifti" / f"p{seed}", cohort / f"c{copy}p{seed}")
    # SIGINT at its default in the batch whatever pytest inherited (see foreground_command)
    command = foreground_command("-m", "bmetoolkit", "batch", str(cohort), str(out), "-j", "2")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    # generous waits: on a loaded machine (load 10+ on 2 cores) the first subject and the
    # shutdown of two workers take minutes; the test is of what an interruption leaves
    deadline = time.monotonic() + 300
    while not list(out.glob("sub-*/sub-*_manifest.json")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    send(process.pid)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err.decode()
    assert b"Run the same command again" in err
    finished = list(out.glob("sub-*/sub-*_manifest.json"))
    assert 1 <= len(finished) < COPIES * len(SEEDS)
    assert sorted(p.name for p in out.glob("sub-*")) == sorted(p.parent.name for p in finished)
    assert main(["batch", str(cohort), str(out), "-j", "2", "--no-progress"]) == 0
    rows = read_csv(out / "subjects.csv")
    assert len(rows) == COPIES * len(SEEDS)
    assert [r["status"] for r in rows].count("unchanged") == len(finished)
    assert not [p for p in out.rglob(".*") if ".partial" in p.name or ".old-" in p.name]
