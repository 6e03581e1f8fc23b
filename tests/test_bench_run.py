"""The whole-run benchmark (benchmarks/bench_run.py): its realistic study with lesions, and
which checkout its commands run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_run():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_run
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bench_run


@pytest.mark.slow
def test_the_realistic_study_with_lesions_has_lesions_and_the_default_none(bench_run, tmp_path):
    files = bench_run._inputs("realistic", tmp_path / "random", "random")
    assert set(files) == {"t1", "t2", "stir", "vertebrae"}
    assert all(path.exists() for path in files.values())
    truth = json.loads((tmp_path / "random" / "nifti" / "lesions.json").read_text())
    assert len(truth) >= 3
    bench_run._inputs("realistic", tmp_path / "healthy")
    assert json.loads((tmp_path / "healthy" / "nifti" / "lesions.json").read_text()) == []


def test_a_checkouts_commands_import_that_checkout(bench_run, tmp_path):
    """Run from inside this repository (the working directory holds a ``bmetoolkit``), the
    environment of another checkout still runs that checkout's ``python -m bmetoolkit`` and
    ``python -c`` (the working directory is not put first on the path)."""
    other = tmp_path / "other"
    (other / "bmetoolkit").mkdir(parents=True)
    (other / "bmetoolkit" / "__init__.py").write_text("")
    (other / "bmetoolkit" / "__main__.py").write_text("print('other checkout')\n")
    env = bench_run._environment(tmp_path, other)
    repository = BENCHMARKS.parent
    assert (repository / "bmetoolkit" / "__main__.py").exists()

    def printed(*args: str) -> str:
        ran = subprocess.run(
            [sys.executable, *args], env=env, cwd=repository, capture_output=True, text=True
        )
        return ran.stdout.strip()

    assert printed("-m", "bmetoolkit") == "other checkout"
    found = printed("-c", "import bmetoolkit; print(bmetoolkit.__file__)")
    assert Path(found).parent == other / "bmetoolkit"


def test_the_bare_read_without_pydicom_reads_without_it(bench_run, tmp_path):
    """The second reference reads the files with nibabel and loads no pydicom; the bare read
    loads it (nibabel's optional import)."""
    import nibabel
    import numpy as np

    path = tmp_path / "small.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.ones((4, 4, 2), np.int16), np.eye(4)), path)
    probe = (
        "\nprint(sorted(name for name, module in sys.modules.items()"
        " if name.split('.')[0] == 'pydicom' and module is not None)[:1])"
    )
    loaded = {}
    for name, prefix in (("lean", bench_run._NO_PYDICOM), ("bare", "")):
        code = prefix + bench_run._BARE_READ + probe
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
        loaded[name] = done.stdout.strip()
    assert loaded == {"lean": "[]", "bare": "['pydicom']"}
