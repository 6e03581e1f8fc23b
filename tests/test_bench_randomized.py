"""The randomised benchmark's summary lines (benchmarks/bench_randomized.py)."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_randomized

    yield bench_randomized
    sys.modules.pop("bench_randomized", None)


def test_the_benchmarks_doctests_pass(bench):
    assert doctest.testmod(bench).failed == 0


def test_missed_endplates_are_counted_by_their_true_height_grade(bench):
    rows = [
        {"truth_types": ["I", "II", "none", "I/II"], "found_types": ["none", "missing", "II", "I"],
         "truth_height_grades": ["A", "B", None, "B"]},
        {"truth_types": ["III"], "found_types": ["none"]},  # rows of an older run: no grades
    ]  # fmt: skip
    line = bench.missed_by_height_grade(rows)
    assert line == "missed lesion endplates by true height grade: A 1 of 1, B 1 of 2, C 0 of 0"
