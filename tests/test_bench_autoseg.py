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


def test_a_block_above_a_missed_body_named_after_it_makes_the_levels_wrong(bench):
    truth = np.pad(_column(), ((6, 0), (0, 0), (0, 0)))  # room above T11 (rows 7-11)
    found = np.where(truth == verse_id("T11"), 0, truth)  # T11 missed
    block = np.zeros_like(found, dtype=bool)
    block[0:6, 1:5, 1:5] = block[7, 1:5, 1:5] = True  # tissue above, one row into T11
    as_t10 = _found(np.where(block, verse_id("T10"), found), {"T12": "T12", "L1": "L1"})
    as_t10.levels[verse_id("T10")] = "T10"  # the place of a T10, which this truth does not hold
    assert bench.body_scores(as_t10, truth)[1]
    # counted up from the sacrum past the missed T11
    as_t11 = _found(
        np.where(block, verse_id("T11"), found), {"T11": "T11", "T12": "T12", "L1": "L1"}
    )
    assert not bench.body_scores(as_t11, truth)[1]


def test_bodies_scored_on_the_covered_voxels_leave_out_what_the_image_does_not_show(bench):
    truth = _column()
    found = np.where(truth == verse_id("T11"), 0, truth)
    found[3:6, 1:5, 1:5] = verse_id("T11")  # T11 found only where the image shows it
    covered = np.ones(truth.shape, dtype=bool)
    covered[:3] = False  # the image's field of view starts at row 3
    names = {"T11": "T11", "T12": "T12", "L1": "L1"}
    as_scored, _ = bench.body_scores(_found(found, names), truth)
    on_covered, _ = bench.body_scores(_found(found, names), truth, covered)
    assert as_scored["T11"] == pytest.approx(2 * 48 / (48 + 80))
    assert on_covered["T11"] == pytest.approx(1.0)
    assert on_covered["T12"] == as_scored["T12"] == pytest.approx(1.0)
    nothing_of_t11 = covered & (truth != verse_id("T11"))
    assert "T11" not in bench.body_scores(_found(found, names), truth, nothing_of_t11)[0]


def test_a_body_of_tissue_outside_every_true_body_is_counted_as_false(bench):
    truth = _column()
    found = truth.copy()
    assert bench.false_bodies(found, truth) == 0
    found[:, :, 5] = 30  # a slab of tissue beside the column, taken for a body
    assert bench.false_bodies(found, truth) == 1
    found[1:6, 1:5, 1:5] = 0  # T11 missed: a missed body is not a false one
    assert bench.false_bodies(found, truth) == 1


def test_vertebra_above_reaches_the_phantom_its_cache_key_and_the_family_line(
    bench, monkeypatch, capsys
):
    keys = []
    monkeypatch.setattr(bench, "make_randomized_phantom", lambda seed, **options: options)
    monkeypatch.setattr(bench, "cached", lambda cache, key, build: keys.append(key) or build())
    monkeypatch.setitem(bench.OPTIONS, "vertebra_above", False)
    assert "vertebra_above" not in bench._randomized(3, False, None)  # off: as before
    monkeypatch.setitem(bench.OPTIONS, "vertebra_above", True)
    assert bench._randomized(3, False, None) == {"kind": "random", "real_anatomy": False,
                                                 "vertebra_above": True}  # fmt: skip
    assert keys[0].endswith("-3") and keys[1].endswith("-3-vertebra_above")
    row = {
        "seed": 3, "kind": "random", "shape": "4x4x4", "n_bodies": 1, "dice": {"T10": 0.9},
        "dice_covered": {"T10": 0.9}, "largest_ratio": 1.0, "false_bodies": 0,
        "sacrum_in_view": True, "levels": "right", "confidence": 0.5, "seconds": 1.0,
        "cpu_seconds": 1.0, "lesion_in": 0, "lesion_all": 0,
    }  # fmt: skip
    monkeypatch.setattr(bench, "_run_packed", lambda packed: row)
    monkeypatch.setitem(bench.OPTIONS, "vertebra_above", False)
    assert bench.main(["--seeds", "3"]) == 0  # drawn by default since session 42
    assert bench.OPTIONS["vertebra_above"] is True
    assert "1 tuning vertebra-above studies" in capsys.readouterr().out
    assert bench.main(["--no-vertebra-above", "--seeds", "3"]) == 0  # the family before
    assert bench.OPTIONS["vertebra_above"] is False
    assert "1 tuning studies" in capsys.readouterr().out


def test_where_lost_replaces_only_the_lateral_sections_it_names(monkeypatch):
    """``autoseg_where_lost.py``: a body found one section short on each side scores 1.0
    with the sections beyond it from the truth, and its outer sections alone mend nothing
    that is missing beyond them."""
    with benchmark_module(monkeypatch, "autoseg_where_lost") as module:
        truth = np.zeros((6, 6, 9), np.int32)
        truth[1:5, 1:5, 1:8] = verse_id("L3")
        found = np.zeros_like(truth)
        found[1:5, 1:5, 2:7] = 7  # sections 2-6 of the true 1-7
        (row,) = module.body_rows(found, truth)
    assert row["base"] == pytest.approx(2 * 5 / 12)
    assert row["beyond"] == row["lateral"] == 1.0
    assert row["outer"] == row["second"] == pytest.approx(row["base"])


def test_a_fluid_image_alone_is_read_on_its_own_grid_against_the_truth_there(bench):
    """Since session 43 a T2 or STIR alone is read on its own grid, as a study without a T1
    is; ``--on-t1-grid`` keeps the rows before: the image resampled onto the T1 grid, read
    only on the box it covers (as :meth:`Study.analysable` has a :class:`Study` read it)."""
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom

    phantom = make_phantom(seed=3, config=PhantomConfig.small())
    assert not phantom.stir.grid.same_as(phantom.t1.grid)  # the case the rows differ on
    study, truth, lesion, covered = bench._on_own_grid(phantom, "stir", cut=False)
    assert study.t1 is None and study.t2 is None and study.grid.same_as(phantom.stir.grid)
    expected = phantom.truth.grid_masks["stir"]["vertebrae"].data
    assert covered is None and np.array_equal(truth, expected)
    assert truth.shape == lesion.shape == phantom.stir.shape
    cut_study, cut_truth, _, _ = bench._on_own_grid(phantom, "stir", cut=True)
    assert (truth == verse_id("S1")).any() and not (cut_truth == verse_id("S1")).any()
    assert cut_truth.shape == cut_study.grid.shape and cut_truth.size < truth.size

    on_t1, t1_truth, _, t1_covered = bench._on_t1_grid(phantom, "stir", cut=False)
    assert on_t1.grid.same_as(phantom.t1.grid) and on_t1.t1 is None
    assert np.array_equal(t1_truth, phantom.truth.vertebrae.data)
    assert not t1_covered.all() and np.array_equal(on_t1.analysable(), t1_covered)


def test_the_analysis_rows_of_a_fluid_image_alone_score_on_its_own_grid(bench):
    """``--analysis --images stir`` (since session 44) scores the edema and the true bodies'
    analysis on the grid the image is read on, not the T1's."""
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom

    phantom = make_phantom(seed=3, config=PhantomConfig.small())
    study = bench._on_own_grid(phantom, "stir", cut=False)[0]
    truth = bench._truth_on_grid(phantom.truth, "stir")
    for mask in (truth.bme_mask, truth.vertebrae, truth.masks["modic_map"]):
        assert mask.grid.same_as(study.grid) and not mask.grid.same_as(phantom.t1.grid)
    assert truth.endplates is phantom.truth.endplates
    assert phantom.truth.bme_mask.grid.same_as(phantom.t1.grid)  # the phantom's own: as it was
