"""Comparing two visits end to end on small phantom pairs: tables, outputs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bmetoolkit.analysis import analyze
from bmetoolkit.cli import main
from bmetoolkit.data.phantom.followup import make_phantom_pair, truth_visit
from bmetoolkit.data.phantom.lesions import Lesion
from bmetoolkit.errors import CorruptFileError, NoOverlapError, VisitMismatchError
from bmetoolkit.followup.change import CHANGE_COLUMNS
from bmetoolkit.followup.compare import COMPARE_FILES, compare
from bmetoolkit.followup.match import MATCH_COLUMNS
from bmetoolkit.followup.quality import MIN_TEXTURE_CORRELATION
from bmetoolkit.followup.register import body_centroids, rotation_deg
from bmetoolkit.followup.visit import load_visit
from tests.helpers import in_body, left_right_slices, slab_from_middle_of

BASELINE = [
    Lesion("L1", "edema", height_frac=0.45, ap_width=0.6, lr_width=0.6),
    Lesion("L3", "modic1", endplate="inferior", height_frac=0.4, ap_width=0.8),
]
FOLLOWUP = [
    Lesion("L3", "modic1", endplate="inferior", height_frac=0.4, ap_width=0.8),  # L1 resolved
    Lesion("L5", "edema", height_frac=0.45, ap_width=0.6, lr_width=0.6),  # new
]


def _analyse(study):
    return analyze(study.t1, stir=study.stir, vertebrae=study.truth.vertebrae)


@pytest.fixture(scope="module")
def pair():
    # veins=False: on these small grids (SI voxels over 2 mm) a basivertebral vein cannot be
    # told from edema by its thickness (bmetoolkit.veins leaves such bodies alone), and L1's
    # vein would be a persisting "edema" at the follow-up; rendered as before session 21.
    return make_phantom_pair(
        31,
        kind="random",
        small=True,
        baseline_lesions=BASELINE,
        followup_lesions=FOLLOWUP,
        veins=False,
    )


@pytest.fixture(scope="module")
def results(pair):
    return _analyse(pair.baseline), _analyse(pair.followup)


@pytest.fixture(scope="module")
def comparison(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    return compare(*results, out=out), out


def test_registration_recovers_the_patient_motion(pair, results, comparison):
    result, _ = comparison
    registration = result.registration
    truth = pair.motion
    centres = body_centroids(pair.baseline.truth.vertebrae)
    for body, centre in centres.items():
        found = registration.body_transforms.get(body, registration.transform)
        error = np.linalg.norm(found[:3, :3] @ centre + found[:3, 3] - truth[:3, :3] @ centre
                               - truth[:3, 3])  # fmt: skip
        assert error < 2.5, (body, error)  # 3-4 mm pixels on the small grids
    assert rotation_deg(np.linalg.inv(registration.transform) @ truth) < 2.0
    assert result.quality.bone_dice > 0.8
    assert result.quality.bodies_compared == 8


def test_change_rows_follow_the_truth(comparison):
    result, _ = comparison
    rows = {row["region"]: row for row in result.change_rows}
    assert result.joint is not None  # both visits' edema decided together
    # the L1 edema resolved: the baseline's lesion re-examined at the follow-up finds nothing
    assert rows["L1 body"]["bme_change_ml"] < 0 and rows["L1 body"]["bme_ml_followup"] == 0
    assert rows["L5 body"]["bme_change_ml"] > rows["L5 body"]["bme_ml_baseline"]
    # on 3-4 mm pixels nearly every voxel of a lesion is boundary: its RC is as large as it
    assert rows["L1 body"]["bme_rc_ml"] > 0.5 * rows["L1 body"]["bme_ml_baseline"]
    total = result.change_rows[-1]
    assert total["region"] == "total"
    # by default the volumes compared count voxels, as analyze does
    assert total["bme_ml_baseline"] == pytest.approx(result.joint["baseline"]["joint_ml"])
    assert result.joint["baseline"]["joint_ml"] == pytest.approx(
        result.baseline.report["bme"]["volume_ml"]
    )
    for row in result.change_rows:
        if row.get("bme_rc_ml") is not None:
            assert row["bme_rc_ml"] >= 0
            assert row["bme_change_real"] == (abs(row["bme_change_ml"]) > row["bme_rc_ml"])


def test_lesions_matched_by_status_on_truth_visits(pair):
    result = compare(truth_visit(pair.baseline), truth_visit(pair.followup))
    status = {(row["level"], row["status"]) for row in result.lesion_rows}
    # new and resolved lesions no larger than their RC (3-4 mm pixels) are "uncertain"
    one_visit = {"new", "resolved", "uncertain"}
    assert {level for level, s in status if s in one_visit} == {"L1", "L5"}
    assert ("L3", "persisting") in status and len(status) == 3
    rows = {row["level"]: row for row in result.lesion_rows}
    assert rows["L1"]["volume_ml_followup"] == 0 < rows["L1"]["volume_ml_baseline"]
    assert rows["L5"]["volume_ml_baseline"] == 0 < rows["L5"]["volume_ml_followup"]
    persisting = next(row for row in result.lesion_rows if row["status"] == "persisting")
    assert persisting["matched_by"] == "overlap"
    assert persisting["centroid_distance_mm"] < 4.0  # one 3-4 mm voxel on the small grids


def test_lesions_on_measured_visits_keep_their_volumes(comparison):
    result, _ = comparison
    l1 = [row for row in result.lesion_rows if row["level"] == "L1"]
    assert l1 and l1[0]["volume_ml_followup"] == 0 and l1[0]["status"] in ("resolved", "uncertain")
    for row in result.lesion_rows:
        assert row["change_ml"] == pytest.approx(
            row["volume_ml_followup"] - row["volume_ml_baseline"], abs=1e-3
        )
        if row["matched_by"] == "distance":
            assert row["centroid_distance_mm"] <= 10
        if row["status"] in ("new", "resolved"):
            assert max(row["volume_ml_baseline"], row["volume_ml_followup"]) > row["rc_ml"]


def test_outputs_written_with_report_last(comparison):
    _, out = comparison
    assert {p.name for p in out.iterdir()} >= set(COMPARE_FILES.values())
    header = (out / "change.csv").read_text().splitlines()[0].split(",")
    assert header == list(CHANGE_COLUMNS)
    assert (out / "lesions_matched.csv").read_text().splitlines()[0].split(",") == list(
        MATCH_COLUMNS
    )
    report = json.loads((out / "report.json").read_text())
    assert {"registration", "quality", "change", "lesions", "versions", "repeatability"} <= set(
        report
    )
    times = {name: (out / name).stat().st_mtime_ns for name in COMPARE_FILES.values()}
    assert times["report.json"] == max(times.values())
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_pair_qc_page_shows_both_visits(comparison):
    result, out = comparison
    page = (out / "pair_qc.html").read_text()
    assert "data:image/png;base64," in page and "Change per region" in page
    assert "Edema, baseline (mL)" in page and "RC (mL)" in page  # headers with units
    assert "bme_ml_baseline" not in page and "rc_ml" not in page  # no raw column names
    from markupsafe import escape

    assert str(escape(result.summary().splitlines()[0])) in page  # the total change, first
    from bmetoolkit.followup.page import pair_panels

    rgb = pair_panels(result)
    half = (rgb.shape[1] - 6) // 2
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    coloured = (rgb[..., 0] != rgb[..., 1]) | (rgb[..., 1] != rgb[..., 2])  # grey elsewhere
    assert coloured[:, :half].any() and coloured[:, half + 6 :].any()
    assert not np.array_equal(coloured[:, :half], coloured[:, half + 6 :])  # own lesions


def test_pair_page_escapes_what_it_shows(comparison):
    from dataclasses import replace

    from bmetoolkit.followup.page import pair_panels, render_pair_page

    result, _ = comparison
    shown = replace(result, notes=["<b>odd</b> note"])
    page = render_pair_page(shown, pair_panels(result))
    assert "&lt;b&gt;odd&lt;/b&gt; note" in page and "<b>odd</b>" not in page


def test_interrupted_compare_leaves_no_report(results, tmp_path, monkeypatch):
    from bmetoolkit.followup import compare as module

    def broken(self):
        raise RuntimeError("interrupted")

    (tmp_path / "report.json").write_text("{}")  # an earlier, complete run
    monkeypatch.setattr(module.Comparison, "lesion_status", broken)
    with pytest.raises(RuntimeError):
        compare(*results, out=tmp_path)
    assert not (tmp_path / "report.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_output_folders_and_cli(results, tmp_path, capsys):
    base, follow = tmp_path / "v1", tmp_path / "v2"
    results[0].save(base, qc=False)
    results[1].save(follow, qc=False)
    code = main(["compare", str(base), str(follow), "--out", str(tmp_path / "cmp")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "bone marrow edema" in printed and "lesions:" in printed
    report = json.loads((tmp_path / "cmp" / "report.json").read_text())
    # the phantom's T1 was built in memory: no file to read, registered on the bone masks
    assert report["registration"]["method"] == "bone masks"
    assert any("T1 was not found" in note for note in report["notes"])
    assert report["field"]["compared"] == "where both visits imaged"
    out = tmp_path / "whole"
    assert main(["compare", str(base), str(follow), "--out", str(out), "--whole-fields"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["field"] == {
        "compared": "each visit's whole field of view",
        "baseline_edema_outside_ml": None,
        "followup_edema_outside_ml": None,
    }


def test_different_parameters_are_allowed_with_a_note(pair, results):
    other = analyze(
        pair.followup.t1,
        stir=pair.followup.stir,
        vertebrae=pair.followup.truth.vertebrae,
        params={"grow_z": 2.6},
    )
    result = compare(results[0], other)
    assert any("different parameters (grow_z)" in note for note in result.notes)


def test_different_versions_are_allowed_with_a_note(results, tmp_path):
    folder = tmp_path / "old"
    results[1].save(folder, qc=False)
    report = json.loads((folder / "report.json").read_text())
    report["versions"]["bmetoolkit"] = "0.0.9"
    (folder / "report.json").write_text(json.dumps(report))
    result = compare(results[0], folder)
    assert any("different bmetoolkit versions" in note for note in result.notes)


def test_other_code_under_one_version_number_is_allowed_with_a_note(results, tmp_path):
    folder = tmp_path / "other-code"
    results[1].save(folder, qc=False)
    report = json.loads((folder / "report.json").read_text())
    assert report["versions"]["bmetoolkit_code"]
    assert not any("different bmetoolkit" in note for note in compare(results[0], folder).notes)
    report["versions"]["bmetoolkit_code"] = "0" * 12
    (folder / "report.json").write_text(json.dumps(report))
    result = compare(results[0], folder)
    assert any("different bmetoolkit code under one version number" in n for n in result.notes)
    del report["versions"]["bmetoolkit_code"]  # a report written before the digest
    (folder / "report.json").write_text(json.dumps(report))
    notes = compare(results[0], folder).notes
    assert any("does not record its code's digest" in note for note in notes)


def test_incomplete_output_folder_is_refused(results, tmp_path):
    folder = tmp_path / "half"
    results[0].save(folder, qc=False)
    (folder / "report.json").unlink()
    with pytest.raises(CorruptFileError, match="did not finish"):
        load_visit(folder, label="baseline")


def test_missing_t1_falls_back_to_bone_masks(results, tmp_path):
    folder = tmp_path / "v"
    results[0].save(folder, qc=False)
    visit = load_visit(folder, label="baseline")
    assert visit.t1 is None and "not found" in visit.notes[0]


def test_coarse_bodies_cannot_compare_texture_and_say_so(comparison):
    result, _ = comparison
    assert result.quality.texture_correlation is None  # too few voxels inside each body
    assert result.quality.shape_difference is None  # and too few for their shape
    assert any("rests on bone overlap alone" in note for note in result.notes)


def test_subject_check_can_be_skipped(results):
    result = compare(*results, check_subject=False)
    assert any("skipped on request" in note for note in result.notes)


@pytest.mark.slow
def test_different_subject_is_refused_on_realistic_grids():
    first = make_phantom_pair(5, kind="random", retest=True)
    second = make_phantom_pair(6, kind="random", retest=True)
    same = compare(_analyse(first.baseline), _analyse(first.followup))
    assert same.quality.texture_correlation > MIN_TEXTURE_CORRELATION
    with pytest.raises(VisitMismatchError, match="different subjects"):
        compare(_analyse(first.baseline), _analyse(second.followup))


def test_misnamed_follow_up_levels_are_paired_by_the_images(pair):
    baseline = truth_visit(pair.baseline)
    followup = truth_visit(pair.followup)
    bodies = followup.maps["vertebrae"]
    ids = np.asarray(bodies.data)
    renamed = np.where((ids > 0) & (ids < 25), ids + 1, ids).astype(ids.dtype)  # T11 -> T12..
    followup.maps["vertebrae"] = bodies.with_data(renamed)
    name = {18: "T11", 19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5",
            25: "L6", 26: "S1"}  # fmt: skip
    ids_of = {v: k for k, v in name.items()}
    followup.report["labels"]["bodies"] = {
        str(int(i)): name[int(i)] for i in np.unique(renamed) if i
    }
    for lesion in followup.report["lesions"]:  # the follow-up's analysis named them one lower
        old = ids_of[lesion["level"]]
        lesion["level"] = name[old + 1 if old < 25 else old]
    result = compare(baseline, followup)
    assert result.registration.pairing != "labels"
    assert all(f == b + 1 or b == f == 26 for b, f in result.registration.body_pairs.items())
    assert any("not by their level names" in note for note in result.notes)
    status = {(row["level"], row["status"]) for row in result.lesion_rows}
    assert ("L3", "persisting") in status  # the same lesion, under the baseline's name


def test_no_common_level_is_refused(results):
    follow = load_visit(results[1], label="follow-up")
    bodies = follow.maps["vertebrae"]
    cervical = np.where(bodies.data > 0, bodies.data.astype(np.int16) - 17, 0).astype(np.uint8)
    follow.maps["vertebrae"] = bodies.with_data(cervical)  # C1-C7...: no level in common
    follow.report["labels"]["bodies"] = {
        str(int(k) - 17): f"C{int(k) - 17}" for k in follow.report["labels"]["bodies"]
    }
    with pytest.raises(NoOverlapError, match="no level"):
        compare(results[0], follow)


def test_quality_without_common_bodies_is_no_overlap():
    from bmetoolkit.followup.quality import AlignmentQuality, check_alignment

    with pytest.raises(NoOverlapError):
        check_alignment(AlignmentQuality(0.0, 0.0, bodies_compared=0), ["a", "b"])


def test_missing_visit_path_is_a_typed_error(tmp_path):
    from bmetoolkit.errors import InputNotFoundError

    with pytest.raises(InputNotFoundError, match="baseline"):
        compare(tmp_path / "nope", tmp_path / "nope2")


def test_retest_truth_visits_have_no_change_and_no_new_lesion():
    pair = make_phantom_pair(33, kind="random", small=True, retest=True,
                             baseline_lesions=BASELINE)  # fmt: skip
    result = compare(truth_visit(pair.baseline), truth_visit(pair.followup))
    # a partial-volume speck may come and go (uncertain); nothing new or resolved
    assert {row["status"] for row in result.lesion_rows} <= {"persisting", "uncertain"}
    assert "persisting" in {row["status"] for row in result.lesion_rows}
    assert not any(row.get("bme_change_real") for row in result.change_rows)
    assert not any(row.get("modic_transition") not in (None, "", "unchanged")
                   for row in result.change_rows)  # fmt: skip


def test_each_change_kind_on_truth_visits():
    baseline = [*BASELINE, Lesion("L4", "modic1", endplate="superior", height_frac=0.3)]
    followup = [
        Lesion("L1", "edema", height_frac=0.25, ap_width=0.4, lr_width=0.4),  # shrunk
        Lesion("L3", "modic1", endplate="inferior", height_frac=0.55, ap_width=0.9),  # grown
        Lesion("L4", "modic2", endplate="superior", height_frac=0.3),  # I -> II
    ]
    pair = make_phantom_pair(34, kind="random", small=True, baseline_lesions=baseline,
                             followup_lesions=followup)  # fmt: skip
    result = compare(truth_visit(pair.baseline), truth_visit(pair.followup))
    rows = {row["region"]: row for row in result.change_rows}
    truth = {row["region"]: row for row in pair.change_table()}
    assert rows["L1 body"]["bme_change_ml"] < 0 < rows["L3 body"]["bme_change_ml"]
    assert rows["L4 superior"]["modic_transition"] == "I -> II"
    for region in ("L1 body", "L3 body", "L4 body"):
        # truth masks on 3-4 mm voxels against the fine-lattice truth: a loose agreement
        assert rows[region]["bme_change_ml"] == pytest.approx(
            truth[region]["bme_change_ml"], abs=max(0.6, 0.3 * abs(truth[region]["bme_change_ml"]))
        )


def test_compare_writes_studies_it_analyses(pair, tmp_path):
    base, follow = tmp_path / "b", tmp_path / "f"
    pair.baseline.write_nifti(base)
    pair.followup.write_nifti(follow)
    visits = [
        {"t1": str(p / "t1.nii.gz"), "stir": str(p / "stir.nii.gz"),
         "vertebrae": str(p / "vertebrae.nii.gz")}
        for p in (base, follow)
    ]  # fmt: skip
    result = compare(*visits, out=tmp_path / "out")
    assert (tmp_path / "out" / "baseline" / "report.json").exists()
    assert (tmp_path / "out" / "followup" / "report.json").exists()
    assert result.registration.method == "T1 mutual information"
    assert Path(result.baseline.source).name == "baseline"


def test_longitudinal_table_of_three_sessions(results, tmp_path):
    from bmetoolkit.followup.longitudinal import longitudinal_table

    folders = []
    for n, result in enumerate((results[0], results[1], results[1])):
        folders.append((f"ses-{n + 1}", tmp_path / f"ses-{n + 1}"))
        result.save(folders[-1][1], qc=False)
    sessions, changes = longitudinal_table({"sub-01": folders}, out_dir=tmp_path / "long")
    assert {row["session"] for row in sessions} == {"ses-1", "ses-2", "ses-3"}
    pairs = {(row["from_session"], row["to_session"]) for row in changes}
    assert pairs == {("ses-1", "ses-2"), ("ses-2", "ses-3")}
    second = [r for r in changes if r["from_session"] == "ses-2" and r["region"] == "total"]
    assert second[0]["bme_change_ml"] == 0  # the same analysis twice
    assert (tmp_path / "long" / "sub-01" / "ses-1_to_ses-2" / "report.json").exists()


@pytest.mark.slow
def test_a_visit_analysed_from_a_dicom_folder_finds_its_images_again(tmp_path, monkeypatch):
    """``analyze`` records the checksummed input files relative to its output folder; a
    visit read back from that folder, from another working folder, finds its T1 and STIR
    series in a folder holding several series."""

    dicom = Path(__file__).resolve().parents[1] / "sample_data" / "phantom" / "dicom"
    out = tmp_path / "visit"
    assert main(["analyze", str(dicom), "--out", str(out), "--no-qc"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert not any(
        Path(entry["file"]).is_absolute() for entries in report["inputs"]["sha256"].values()
        for entry in entries
    )  # fmt: skip
    elsewhere = tmp_path.joinpath(*"abcdefgh")
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    visit = load_visit(out, label="baseline")
    assert visit.t1 is not None and visit.fluid is not None
    assert visit.t1.meta.get("SeriesDescription") == "T1_TSE_SAG"
    assert visit.fluid.meta.get("SeriesDescription") == "STIR_SAG"
    assert visit.t1.grid.shape == visit.maps["bme_mask"].grid.shape
    assert not any("not found" in note for note in visit.notes)


def test_a_visit_analysed_from_relative_nifti_paths_finds_them_from_anywhere(tmp_path, monkeypatch):
    """``analyze --t1 in/t1.nii.gz`` run in one folder, the visit read back from another:
    its images are found from the report's checksummed files (relative to the output
    folder), not from the paths as typed (relative to where analyze ran), and a file of the
    same relative name where compare runs is not taken for them."""
    import shutil

    sample = Path(__file__).resolve().parents[1] / "sample_data" / "phantom" / "nifti"
    study = tmp_path / "study"
    (study / "in").mkdir(parents=True)
    for name in ("t1", "stir", "vertebrae"):
        shutil.copy(sample / f"{name}.nii.gz", study / "in" / f"{name}.nii.gz")
    monkeypatch.chdir(study)
    args = ["analyze", "--t1", "in/t1.nii.gz", "--stir", "in/stir.nii.gz", "--vertebrae",
            "in/vertebrae.nii.gz", "--out", "out", "--no-qc"]  # fmt: skip
    assert main(args) == 0
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "in").mkdir(parents=True)
    shutil.copy(sample / "stir.nii.gz", elsewhere / "in" / "t1.nii.gz")  # a decoy
    monkeypatch.chdir(elsewhere)
    visit = load_visit(study / "out", label="baseline")
    assert visit.t1 is not None and visit.fluid is not None
    assert Path(visit.t1.source).resolve() == (study / "in" / "t1.nii.gz").resolve()
    assert not any("not found" in note for note in visit.notes)


@pytest.fixture(scope="module")
def weighted(results):
    return compare(*results, partial_volume=True)


def test_the_change_table_weighs_the_edema_by_its_shares(weighted):
    # both visits decided together, with partial_volume: the volumes are the sums of the
    # edema shares (lesion edges weighted by their partial volume), the layer around a
    # lesion in its body's row
    result = weighted
    total = result.change_rows[-1]
    for visit, key in ((result.baseline, "bme_ml_baseline"), (result.followup, "bme_ml_followup")):
        assert visit.bme_share is not None
        ml = visit.maps["bme_mask"].grid.voxel_volume_mm3 / 1000
        assert total[key] == pytest.approx(float(visit.bme_share.sum()) * ml, abs=1e-3)
        assert total[key] != pytest.approx(
            float(np.count_nonzero(visit.maps["bme_mask"].data)) * ml, abs=1e-3
        )
        bodies = sum(row.get(key) or 0.0 for row in result.change_rows if row["zone"] == "body")
        assert bodies == pytest.approx(total[key], abs=2e-3)


def test_partial_volume_weighs_lesion_edges(weighted, comparison):
    counted, _ = comparison
    assert counted.baseline.bme_share is None and counted.followup.bme_share is None
    total = weighted.change_rows[-1]
    assert total["bme_ml_baseline"] == pytest.approx(weighted.joint["baseline"]["weighted_ml"])
    assert total["bme_ml_followup"] == pytest.approx(weighted.joint["followup"]["weighted_ml"])
    assert weighted.joint["baseline"]["joint_ml"] == pytest.approx(
        counted.joint["baseline"]["joint_ml"]
    )


def test_a_visit_in_memory_keeps_its_fluid_image_as_acquired(results):
    """As a visit read from its output folder does: the signal recheck measures one image."""
    from bmetoolkit.followup.visit import load_visit
    from bmetoolkit.resample import ResampledVolume

    fluid = results[0].study.fluid
    assert isinstance(fluid, ResampledVolume)  # the STIR on the T1 grid, resampled lazily
    visit = load_visit(results[0], label="baseline")
    assert visit.fluid is fluid.acquired and visit.fluid.grid.shape != fluid.grid.shape


def _retest_pair_with_l1_half_outside():
    """A test-retest phantom pair (truth as the analyses) whose follow-up slab begins
    halfway through L1's edema; returns (baseline, the cut follow-up, the whole follow-up)."""
    pair = make_phantom_pair(33, kind="random", small=True, retest=True,
                             baseline_lesions=BASELINE)  # fmt: skip
    base, follow = truth_visit(pair.baseline), truth_visit(pair.followup)
    narrower, _ = slab_from_middle_of(follow, in_body(follow, "bme_mask", "L1"))
    return base, narrower, follow


def test_a_slab_that_cuts_a_lesion_at_one_visit_is_not_a_change():
    base, narrower, follow = _retest_pair_with_l1_half_outside()
    cut = [row | {"body_partly_outside": True} for row in narrower.report["endplates"]]
    narrower.report = {**narrower.report, "endplates": cut}  # as an analysis says of them

    whole = {r["region"]: r for r in compare(base, narrower, whole_fields=True).change_rows}
    result = compare(base, narrower)
    rows = {r["region"]: r for r in result.change_rows}
    uncut = {r["region"]: r for r in compare(base, follow).change_rows}
    before = uncut["L1 body"]["bme_ml_baseline"]
    # each visit's whole edema: the part beyond the narrower slab reads as a loss
    assert whole["L1 body"]["bme_change_ml"] < -0.35 * before
    # compared where both visits imaged: no loss, and the note says what was left out
    assert abs(rows["L1 body"]["bme_change_ml"]) < 0.25 * before
    assert rows["L1 body"]["bme_ml_baseline"] < 0.8 * before
    assert "outside the follow-up's field of view" in rows["L1 body"]["note"]
    assert "where both visits imaged" in rows["total"]["note"]
    assert "the change is that of the part both visits imaged" in rows["L1 superior"]["note"]
    assert "the change may be partial" in whole["L1 superior"]["note"]
    field = result.to_dict()["field"]
    assert field["compared"] == "where both visits imaged"
    assert field["baseline_edema_outside_ml"] > 0.2 * before
    assert field["followup_edema_outside_ml"] == 0
    # visits that cover the same anatomy lose nothing to the common field
    assert uncut["L1 body"]["bme_ml_baseline"] == whole["L1 body"]["bme_ml_baseline"]
    assert "outside" not in uncut["L1 body"]["note"]


def test_the_edema_left_out_is_weighted_as_the_edema_compared():
    # With lesion edges weighted by partial volume, the edema outside the other visit's field
    # is summed in shares too: compared + left out = the visit's whole weighted volume.
    from dataclasses import replace

    base, narrower, _ = _retest_pair_with_l1_half_outside()

    def weighted(visit, share):
        found = np.asarray(visit.maps["bme_mask"].data) > 0
        return replace(visit, bme_share=np.where(found, share, 0).astype(np.float32))

    base, narrower = weighted(base, 0.5), weighted(narrower, 0.5)
    whole = compare(base, narrower, joint=False, whole_fields=True)
    result = compare(base, narrower, joint=False)
    ml = base.maps["bme_mask"].grid.voxel_volume_mm3 / 1000
    everything = float(base.bme_share.sum()) * ml
    outside = result.to_dict()["field"]["baseline_edema_outside_ml"]
    assert whole.change_rows[-1]["bme_ml_baseline"] == pytest.approx(everything, abs=1e-3)
    compared = result.change_rows[-1]["bme_ml_baseline"]
    assert compared + outside == pytest.approx(everything, abs=1e-3)
    assert outside > 0.2 * everything
    # per region too: the note gives the weighted part of L1's edema left out
    row = next(r for r in result.change_rows if r["region"] == "L1 body")
    whole_row = next(r for r in whole.change_rows if r["region"] == "L1 body")
    left_out = whole_row["bme_ml_baseline"] - row["bme_ml_baseline"]
    assert f"{left_out:.2f} mL of the baseline's edema here lies outside" in row["note"]


def test_the_layer_at_the_field_edge_is_counted_once_per_region():
    # The partial-volume layer around the edema (shares on voxels that are not edema) is
    # given to the region of the edema next to it, wherever the other visit's field edge
    # runs: per region, compared + left outside = the region's whole weighted volume.
    from dataclasses import replace

    from scipy import ndimage

    from bmetoolkit.followup.change import _volumes

    pair = make_phantom_pair(33, kind="random", small=True, retest=True,
                             baseline_lesions=BASELINE)  # fmt: skip
    visit = truth_visit(pair.baseline)
    edema = np.asarray(visit.maps["bme_mask"].data) > 0
    layer = ndimage.binary_dilation(edema) & ~edema
    share = np.where(edema, 0.75, np.where(layer, 0.25, 0)).astype(np.float32)
    axis, slices = left_right_slices(visit, in_body(visit, "bme_mask", "L1"))

    def edge_at(start):
        """Seen from slice ``start`` on; the layer voxels whose only edema neighbours lie on
        the other side of that edge."""
        seen = np.zeros(edema.shape, bool)
        seen[(slice(None),) * axis + (slice(int(start), None),)] = True
        near_in, near_out = (ndimage.binary_dilation(edema & side) for side in (seen, ~seen))
        return seen, layer & ((~seen & near_in & ~near_out) | (seen & near_out & ~near_in))

    # an edge through L1's edema with such layer voxels (the edema is cut where it narrows)
    seen = next((seen for seen, across in map(edge_at, slices[1:]) if across.any()), None)
    assert seen is not None
    whole = _volumes(replace(visit, bme_share=share), {})
    cut = _volumes(replace(visit, bme_share=share, seen_by_other=seen), {})
    assert cut["bme_outside"]
    for key, volume in whole["bme_ml"].items():
        parts = cut["bme_ml"].get(key, 0.0) + cut["bme_outside"].get(key, 0.0)
        assert parts == pytest.approx(volume, abs=2e-4), key
    total = cut["total"][("total", "")] + cut["total"][("outside", "")]
    assert total == pytest.approx(whole["total"][("total", "")], abs=2e-4)
