"""The whole-run benchmark's realistic study with lesions (benchmarks/bench_run.py)."""

from __future__ import annotations

import json
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
