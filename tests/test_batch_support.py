"""Test doubles and cohort builders for the batch tests (no tests here).

``fake_analyze`` stands in for :func:`bmetoolkit.analysis.analyze` in the tests of the batch
machinery (discovery, manifest, resume, runner): it really loads the inputs (so corrupt files
fail as they would), derives its numbers from the voxel values (so changed inputs give changed
numbers) and writes every output of the analysis contract. It lives in an importable module so
spawned worker processes and Dask workers can unpickle it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bmetoolkit.batch.subject import run_subject
from bmetoolkit.io import as_volume, save_nifti, write_json, write_text
from bmetoolkit.volume import Volume

#: Python code that sets SIGINT back to its default, then becomes ``python <its arguments>``
#: (``os.execv``: the same process, pid and process group).
_AS_FOREGROUND = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)

#: Seconds ``fake_analyze`` sleeps (tests of interruption set it through the environment).
DELAY_VARIABLE = "BMETOOLKIT_TEST_FAKE_DELAY"
#: A folder where :func:`fake_analyze` notes (an empty file named by its process id) that a
#: worker has begun a subject, before its delay.
STARTED_VARIABLE = "BMETOOLKIT_TEST_FAKE_STARTED"


class FakeResult:
    """Shaped like ``AnalysisResult``: save(), to_dict(), endplates, lesions, bme_volume_ml."""

    def __init__(self, t1: Volume, sources: dict[str, str], params: Any) -> None:
        import pandas as pd

        self.t1 = t1
        self.bme_volume_ml = float(np.asarray(t1.data, dtype=np.float64).mean()) / 1000.0
        self.endplates = pd.DataFrame(
            {
                "level": ["L4", "L5"],
                "verse_id": [23, 24],
                "endplate": ["inferior", "superior"],
                "modic_type": ["I" if self.bme_volume_ml > 0.05 else "II", "none"],
                "volume_ml": [self.bme_volume_ml, 0.0],
                "height_pct": [30.0, float("nan")],
            }
        )
        self.lesions = pd.DataFrame({"lesion": [1], "volume_ml": [self.bme_volume_ml]})
        self.sources = sources
        self.params = params

    def to_dict(self) -> dict[str, Any]:
        return {
            "bme": {"volume_ml": self.bme_volume_ml, "lesions": []},
            "endplates": json.loads(self.endplates.to_json(orient="records")),
            "parameters": self.params.to_dict(),
            "inputs": self.sources,
            "PatientName": "Doe^Jane",
        }

    def save(
        self, out_dir: str | os.PathLike, names: dict[str, str] | None = None, **options: Any
    ) -> dict:
        folder = Path(out_dir)
        names = names or {}
        mask = Volume(
            (self.t1.data > self.t1.data.mean()).astype(np.uint8), self.t1.affine, kind="label"
        )
        written = {}
        for key in ("bme_mask", "modic_map", "vertebrae"):
            written[key] = save_nifti(mask, folder / names.get(key, f"{key}.nii.gz"))
        written["lesions"] = write_text(
            folder / names.get("lesions", "lesions.csv"), self.lesions.to_csv(index=False)
        )
        written["endplates"] = write_text(
            folder / names.get("endplates", "endplates.csv"), self.endplates.to_csv(index=False)
        )
        report = options.get("report") or self.to_dict()  # the batch passes it scrubbed
        written["report"] = write_json(folder / names.get("report", "report.json"), report)
        return written


def fake_analyze(
    t1: Any, t2: Any = None, stir: Any = None, vertebrae: Any = None, params: Any = None
) -> FakeResult:
    """Load the inputs like ``analyze`` does and return a :class:`FakeResult`."""
    delay = float(os.environ.get(DELAY_VARIABLE, "0"))
    if os.environ.get(STARTED_VARIABLE):
        (Path(os.environ[STARTED_VARIABLE]) / str(os.getpid())).touch()
    if delay:
        time.sleep(delay)
    volume = as_volume(t1)
    sources = {"t1": volume.source or ""}
    for role, image in (("t2", t2), ("stir", stir)):
        if image is not None:
            sources[role] = as_volume(image).source or ""
    if "boom" in (volume.source or ""):
        os._exit(3)  # a worker killed mid-subject (out of memory, segfault...)
    return FakeResult(volume, sources, params)


#: The batch worker with the stand-in analysis (picklable).
fake_worker = functools.partial(run_subject, analyze=fake_analyze)


def write_tiny_subject(folder: Path, seed: int, *, names: tuple[str, ...] = ("t1", "t2")) -> None:
    """``folder/<name>.nii.gz`` for each name: tiny volumes with seed-dependent values."""
    rng = np.random.default_rng(seed)
    for name in names:
        data = rng.integers(0, 200, size=(8, 8, 3)).astype(np.int16)
        save_nifti(Volume(data, np.diag([1.0, 1.0, 3.0, 1.0])), folder / f"{name}.nii.gz")


def tiny_cohort(root: Path, count: int) -> list[str]:
    """A NIfTI-layout cohort ``root/s<NN>/{t1,t2}.nii.gz``; returns the subject folder names."""
    labels = [f"s{i:02d}" for i in range(count)]
    for i, label in enumerate(labels):
        write_tiny_subject(root / label, seed=i)
    return labels


def visible_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` whose path has no hidden part."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def hidden_leftovers(folder: Path) -> list[Path]:
    """Temporary files or folders of the batch (``.partial``/``.old``) under ``folder``."""
    return sorted(p for p in folder.rglob(".*") if ".partial" in p.name or ".old-" in p.name)


def foreground_command(*arguments: str) -> list[str]:
    """``python ARGUMENTS`` with SIGINT at its default, as a terminal starts a foreground job.

    A program started in the background by a shell without job control (``make test &``, a
    script's ``command &``, some CI and agent runners) inherits SIGINT *ignored*, and so does
    every process it starts: Python then installs no ``KeyboardInterrupt`` handler, and a
    SIGINT sent to a batch started by such a pytest is ignored by the batch and its workers
    alike (the batch finishes and exits 0). A test that sends SIGINT starts its process
    with this, so it does not depend on how pytest itself was started.
    """
    return [sys.executable, "-c", _AS_FOREGROUND, *arguments]
