"""The follow-up benchmark's kept folders and ``--vary`` (benchmarks/bench_followup.py)."""

from __future__ import annotations

import pytest

from tests.helpers import benchmark_module


@pytest.fixture
def bench(monkeypatch):
    with benchmark_module(monkeypatch, "bench_followup") as module:
        yield module
        module.KEEP.clear()


def test_kept_visits_share_one_baseline_per_seed(bench, tmp_path):
    bench.KEEP.append(tmp_path)
    retest = bench._kept_folders("61 retest")
    varied = bench._kept_folders("61 retest noise")
    change = bench._kept_folders("61 pair")
    assert retest[0] == varied[0] == change[0] == tmp_path / "61-baseline"
    assert len({retest[1], varied[1], change[1]}) == 3
    assert varied[1] == tmp_path / "61-retest-noise" / "followup"


def _retest_row(baseline: float, followup: float) -> dict:
    return {"total_baseline": baseline, "total_followup": followup, "new_or_resolved": 0,
            "real_changes": 0, "differences": []}  # fmt: skip


def test_each_way_is_also_summarised_on_the_default_ways_pairs_above_1_ml(bench, capsys):
    # the weighted volumes of the second pair pass 1 mL where its counted ones do not: the
    # weighted summary counts it above 1 mL, and states the RC on the default's pair too
    cases = [
        {"seed": 1, "retest_counted": _retest_row(2.0, 2.1), "retest": _retest_row(2.1, 2.2),
         "retest_alone": _retest_row(2.0, 2.1), "seconds_retest": 1.0},
        {"seed": 2, "retest_counted": _retest_row(0.9, 0.95), "retest": _retest_row(1.0, 1.3),
         "retest_alone": _retest_row(0.9, 0.95), "seconds_retest": 1.0},
    ]  # fmt: skip
    bench._summary(cases, calibrate=True)
    weighted = capsys.readouterr().out.split("edges weighted by partial volume")[1]
    assert "mean volume above 1.0 mL (2)" in weighted
    line = next(x for x in weighted.splitlines() if "default volume (voxels counted)" in x)
    relative = 0.1 / 2.15  # the first pair's weighted difference over its weighted mean
    assert "(1): RC " + f"{100 * 2.77 * relative / 2**0.5:.1f} %" in line


def _case(seed: int, baseline: float, followup: float) -> dict:
    change = {"region": "L1 body", "true": 1.0, "measured": 1.1, "error_ml": 0.1,
              "within": True, "real": True}  # fmt: skip
    case = {"seed": seed, "seconds": 1.0, "seconds_retest": 1.0}
    for suffix in ("", "_counted", "_alone"):
        case |= {f"retest{suffix}": _retest_row(baseline, followup),
                 f"changes{suffix}": [change], f"transitions{suffix}": [1, 1]}  # fmt: skip
    return case


def test_saved_rows_of_two_runs_are_summarised_as_one_run(bench, tmp_path, capsys):
    import json

    first, second = _case(1, 2.0, 2.1), _case(2, 3.0, 2.7)
    refused = {"seed": 3, "pair": "retest", "refused": "two subjects"}
    (tmp_path / "a.json").write_text(json.dumps([first]))
    (tmp_path / "b.json").write_text(json.dumps([second, refused]))
    bench._summary([first, second], calibrate=False)
    expected = capsys.readouterr().out
    bench.summarise_saved([tmp_path / "a.json", tmp_path / "b.json"])
    out = capsys.readouterr().out
    assert out.startswith("2 pairs from 2 file(s); refused as two subjects: 1\n")
    assert out.split("\n", 1)[1] == expected
    assert "mean volume above 1.0 mL (2)" in out


def test_large_retest_differences_are_listed_with_their_part_in_the_true_veins(
    bench, tmp_path, capsys
):
    import json

    def veins(baseline: float, followup: float) -> dict:
        return {f"together_{name}": {"vein_ml": 0.5, "bme_in_vein_ml": ml}
                for name, ml in (("baseline", baseline), ("followup", followup))}  # fmt: skip

    steady, flicker = _case(1, 2.0, 2.1), _case(2, 1.5, 2.0)  # +5 % and +29 %
    steady["retest_veins"], flicker["retest_veins"] = veins(0.1, 0.1), veins(0.0, 0.4)
    rows = [{k: v for k, v in c.items() if not k.startswith(("changes", "transitions"))}
            for c in (steady, flicker)]  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(rows))  # --calibrate rows: no change pairs
    bench.summarise_saved([tmp_path / "a.json"])
    counted = capsys.readouterr().out.split("voxels counted (compare's default)")[1]
    assert "pairs differing by more than 15 % (1):" in counted
    assert "seed 2: mean 1.750 mL, difference +0.500 mL (+28.6 %)" in counted
    assert "of it in true vein voxels +0.400 mL (baseline 0.000, follow-up 0.400 mL)" in counted
    rest = [0.1 / 2.05, 0.1 / 1.75]  # the differences without the veins' part, relative
    rc = 2.77 * (sum(r * r for r in rest) / 2 / 2) ** 0.5
    assert f"veins taken out: {100 * rc:.1f} %" in counted
    assert "change error" not in counted


def test_each_change_error_is_read_against_its_own_allowance(bench):
    # 0.3 mL for a small change, 10 % of a large one: an error of 0.4 mL is over its
    # allowance on a 1 mL change (1.33) and within it on a 5 mL change (0.8)
    rows = [
        {"true": 1.0, "measured": 1.4},
        {"true": -5.0, "measured": -4.6},
        {"true": 0.0, "measured": 0.03},
    ]
    assert bench._allowed(1.0) == pytest.approx(0.3)
    assert bench._allowed(-5.0) == pytest.approx(0.5)
    assert bench._against_allowed(rows).startswith("median 0.800,")


def test_joint_pairs_are_analysed_with_the_parameters_given(bench, monkeypatch):
    # ``--param`` reaches each visit's analysis (e.g. the band decided alone, as before)
    from types import SimpleNamespace

    import bmetoolkit.data.phantom.joint.followup as joint_followup

    visit = SimpleNamespace(t1="t1", fluid="stir", truth=SimpleNamespace(bones="b", bone_names={}))
    monkeypatch.setattr(
        joint_followup, "make_joint_pair",
        lambda *a, **k: SimpleNamespace(baseline=visit, followup=visit),
    )  # fmt: skip
    seen = []

    class Stop(Exception):
        pass

    def analyze(*args, params=None, **kwargs):
        seen.append(params)
        raise Stop

    monkeypatch.setattr(bench, "analyze", analyze)
    params = bench.parameters(["band_decided_jointly=false"])
    with pytest.raises(Stop):
        bench._joint_case(40, 0, params)
    assert seen[0] is params and seen[0].band_decided_jointly is False
    with pytest.raises(Stop):
        bench._joint_case(40, 0)
    assert seen[1] is None
