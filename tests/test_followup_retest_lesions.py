"""A test-retest difference of the total, lesion by lesion (benchmarks/retest_lesions.py,
``bench_followup.py --retest-lesions``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.helpers import benchmark_module


@pytest.fixture
def lesions(monkeypatch):
    with benchmark_module(monkeypatch, "retest_lesions") as module:
        yield module


def _pair(one_visit_ml: float = 0.0) -> dict:
    """A pair of 2.0 / 1.8 mL: one lesion at both visits (1.5 / 1.4 mL; cut at the other
    visit's edge 1.45 / 1.47 mL), the rest at both alike but ``one_visit_ml`` at the
    baseline only."""
    rows = [{"both": True, "ml_b": 1.5, "ml_f": 1.4, "other_b": 1.45, "other_f": 1.47,
             "averaged_peak_b": 1.48, "averaged_peak_f": 1.43, "pooled_factor_b": 1.5,
             "pooled_factor_f": 1.4}]  # fmt: skip
    if one_visit_ml:
        rows.append({"one_visit": "baseline", "ml": one_visit_ml})
    return {"seed": 1, "totals": [2.0 + one_visit_ml, 1.8], "wall_ml": [0.1, 0.12],
            "lesions": rows}  # fmt: skip


def test_the_difference_is_split_into_its_parts(lesions):
    split = lesions.parts(_pair(one_visit_ml=0.3))
    assert split["difference"] == pytest.approx(-0.5)
    assert split["both"] == pytest.approx(-0.1)
    # each visit cut at the other's edge: the baseline loses 0.05, the rescan gains 0.07
    assert split["edge"] == pytest.approx(-0.06)
    assert split["image"] == pytest.approx(-0.04)
    assert split["one_visit"] == pytest.approx(-0.3)
    assert split["wall"] == pytest.approx(0.02)


def test_a_variant_replaces_only_the_lesions_at_both_visits(lesions):
    pair = _pair(one_visit_ml=0.3)
    assert lesions.variant_totals(pair, "averaged_peak") == pytest.approx([2.28, 1.83])
    assert lesions.variant_totals(pair, "pooled_factor") == pytest.approx(pair["totals"])


def test_the_pooled_factor_cuts_each_visit_at_its_scaled_half_maximum(lesions):
    # factors 1.0 and 1.21 pool to 1.1: the baseline's ratios scaled by 1 / 1.1, the
    # rescan's by 1.1; a peak of 3 then sits at 3 / 1.1 and 3.3, and each visit is cut at
    # its scaled half maximum read back on its own ratios
    sides = [{"peak": 3.0, "edge": 2.0, "factor": f} for f in (1.0, 1.21)]
    cuts = [lambda level: level, lambda level: level]
    row = lesions._both_row(sides, cuts)
    g = [1 / 1.1, 1.1]
    for v, tag in ((0, "b"), (1, "f")):
        assert row[f"pooled_factor_{tag}"] == pytest.approx((1 + 0.5 * (3.0 * g[v] - 1)) / g[v])
        assert row[f"other_{tag}"] == 2.0 and row[f"averaged_peak_{tag}"] == 2.0


def test_equal_factors_leave_each_visit_at_its_own_edge(lesions):
    sides = [{"peak": p, "edge": 1 + 0.5 * (p - 1), "factor": 0.95} for p in (2.2, 2.6)]
    row = lesions._both_row(sides, [lambda level: level, lambda level: level])
    assert row["pooled_factor_b"] == pytest.approx(1.6)
    assert row["pooled_factor_f"] == pytest.approx(1.8)
    assert row["averaged_peak_b"] == row["averaged_peak_f"] == pytest.approx(1.7)


def test_a_level_volume_counts_the_regions_at_the_level_that_touch_the_lesion(lesions):
    fluid = np.ones((1, 12, 1))
    fluid[0, 2:5, 0] = [1.5, 2.0, 1.5]  # the lesion, its core at 2.0
    fluid[0, 7:10, 0] = 1.8  # another region in the body
    body = np.ones(fluid.shape, bool)
    lesion = np.zeros(fluid.shape, bool)
    lesion[0, 3, 0] = True
    assert lesions._level_volume(fluid, body, lesion, 1.4) == 3
    assert lesions._level_volume(fluid, body, lesion, 1.9) == 1
    assert lesions._level_volume(fluid, body, lesion, 2.1) == 0


def test_held_out_pairs_are_not_looked_into(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["bench_followup.py", "--retest-lesions", "--keep",
                                      str(tmp_path)])  # fmt: skip
    with benchmark_module(monkeypatch, "bench_followup") as bench_followup:
        try:
            with pytest.raises(SystemExit, match="tuning seeds"):
                bench_followup.main()
        finally:
            bench_followup.KEEP.clear()


def test_differences_between_visits_are_follow_up_against_baseline(lesions):
    rows = [
        {"ml_b": 2.0, "ml_f": 1.0, "peak_b": 3.0, "peak_f": 1.5, "factor_b": 1.1,
         "factor_f": None, "normal_b": 0.98, "normal_f": 0.95, "sd_b": 0.07, "sd_f": 0.05},
    ]  # fmt: skip
    d = lesions.differences(rows)
    assert d["log volume"][0] == pytest.approx(np.log(0.5))
    assert d["log peak"][0] == pytest.approx(np.log(0.5))
    assert d["log factor"][0] == pytest.approx(np.log(1 / 1.1))  # no factor: 1.0
    assert d["normal level"][0] == pytest.approx(-0.03)
    assert d["sd"][0] == pytest.approx(-0.02)
