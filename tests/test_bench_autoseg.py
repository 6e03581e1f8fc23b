"""How the automatic-bodies benchmark scores levels (benchmarks/bench_autoseg.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bmetoolkit.spine.labels import verse_id
from tests.helpers import benchmark_module


@pytest.fixture
def bench(monkeypatch):
    with benchmark_module(monkeypatch, "bench_autoseg") as module:
        yield module


def _column() -> np.ndarray:
    """T11, T12 and L1 as three 6-voxel-tall blocks along the first axis."""
    truth = np.zeros((20, 6, 6), dtype=np.uint8)
    for row, level in zip((1, 8, 14), ("T11", "T12", "L1"), strict=True):
        truth[row : row + 5, 1:5, 1:5] = verse_id(level)
    return truth


def _found(labels: np.ndarray, names: dict[str, str]) -> SimpleNamespace:
    levels = {verse_id(level): name for level, name in names.items()}
    return SimpleNamespace(bodies=SimpleNamespace(data=labels), levels=levels)


def test_a_missed_body_a_neighbour_reaches_into_does_not_make_the_levels_wrong(bench):
    truth = _column()
    found = np.where(truth == verse_id("T11"), 0, truth)
    found[5, 1:5, 1:5] = verse_id("T12")  # T12's segment takes T11's lowest row
    dice, right = bench.body_scores(_found(found, {"T12": "T12", "L1": "L1"}), truth)
    assert right
    assert dice["T11"] < 0.3 and dice["T12"] > 0.9


def test_a_body_named_as_another_level_makes_the_levels_wrong(bench):
    truth = _column()
    found = np.where(truth == verse_id("T11"), 0, truth)
    found[found == verse_id("L1")] = verse_id("L2")  # L1's body carries L2's id and name
    _, right = bench.body_scores(_found(found, {"T12": "T12", "L2": "L2"}), truth)
    assert not right
