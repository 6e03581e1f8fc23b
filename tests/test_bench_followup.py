"""The follow-up benchmark's kept folders and ``--vary`` (benchmarks/bench_followup.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_followup

    yield bench_followup
    bench_followup.KEEP.clear()
    sys.modules.pop("bench_followup", None)


def test_kept_visits_share_one_baseline_per_seed(bench, tmp_path):
    bench.KEEP.append(tmp_path)
    retest = bench._kept_folders("61 retest")
    varied = bench._kept_folders("61 retest noise")
    change = bench._kept_folders("61 pair")
    assert retest[0] == varied[0] == change[0] == tmp_path / "61-baseline"
    assert len({retest[1], varied[1], change[1]}) == 3
    assert varied[1] == tmp_path / "61-retest-noise" / "followup"
