"""The randomised benchmark's summary lines (benchmarks/bench_randomized.py)."""

from __future__ import annotations

import doctest

import pytest

from tests.helpers import benchmark_module


@pytest.fixture
def bench(monkeypatch):
    with benchmark_module(monkeypatch, "bench_randomized") as module:
        yield module


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


@pytest.fixture
def vein_truth(monkeypatch):
    with benchmark_module(monkeypatch, "vein_truth") as module:
        yield module


def test_bme_inside_the_true_veins_is_counted_with_its_lesions(vein_truth):
    from types import SimpleNamespace

    import numpy as np

    assert doctest.testmod(vein_truth).failed == 0
    vein = np.zeros((4, 4, 2), np.uint8)
    vein[1:3, 1:3, 0] = 1  # 4 voxels of vein
    found = np.zeros_like(vein)
    found[2:4, 1:3, 0] = 1  # 2 of them reported, and 2 voxels outside
    lesions = found.astype(np.int32)
    result = SimpleNamespace(
        bme_mask=SimpleNamespace(data=found),
        lesion_labels=SimpleNamespace(data=lesions),
        lesion_rows=[{"lesion": 1, "finding": "BME", "level": "L2", "zone": "central"}],
        checks={"basivertebral_veins": {"count": 3, "volume_ml": 0.1}},
    )
    truth = SimpleNamespace(masks={"vein": SimpleNamespace(data=vein)})
    row = vein_truth.vein_row(result, truth, voxel_ml=0.5)
    assert row == {
        "vein_ml": 2.0,
        "bme_in_vein_ml": 1.0,
        "vein_lesions": ["BME@L2 central"],
        "veins_recognised": 3,
    }
    assert vein_truth.vein_row(result, SimpleNamespace(masks={}), voxel_ml=0.5) == {}
