"""The partial-volume band of two bone-mask visits decided together (followup.joint_bones).

One block "bone" on one T1 grid of 0.8 x 0.8 x 3 mm at both visits. A lesion lies along
the bone's surface at the end of the first axis (a slab 4 voxels deep) with a stalk
reaching deeper. At the baseline the STIR was acquired with 4 mm slices across that
surface: the slab lies in the partial-volume band and only its part near the stalk (within
an image voxel of the stalk's voxels outside the band) is kept. At the follow-up the STIR
is on the T1 grid: no band in the marrow, the whole lesion is kept. Decided together, the
baseline keeps the slab too.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import bmetoolkit as bt
from bmetoolkit.bones.analysis import analyze_bones
from bmetoolkit.followup.compare import compare
from bmetoolkit.followup.joint_bones import ALONE_NOTE
from bmetoolkit.followup.visit import load_visit
from bmetoolkit.volume import Volume

SPACING = np.array([0.8, 0.8, 3.0])
SHAPE = (60, 50, 16)
BONE = (slice(5, 45), slice(6, 44), slice(2, 14))
#: The baseline STIR's slices: this many T1 voxels (4 mm) along the first axis.
THICK = 5


def _lesion() -> np.ndarray:
    lesion = np.zeros(SHAPE, bool)
    lesion[40:44, 12:38, 6:10] = True  # along the surface (the bone ends at i 44)
    lesion[35:40, 22:27, 6:10] = True  # the stalk, deeper
    return lesion


def _visit(thick: bool, seed: int) -> tuple[Volume, Volume, Volume]:
    """T1, STIR (4 mm slices across the lesion's surface when ``thick``) and the bone."""
    rng = np.random.default_rng(seed)
    bones = np.zeros(SHAPE, np.uint8)
    bones[BONE] = 1
    t1, stir = np.full(SHAPE, 450.0), np.full(SHAPE, 130.0)
    t1[bones > 0], stir[bones > 0] = 1000.0, 120.0
    lesion = _lesion()
    t1[lesion], stir[lesion] = 700.0, 120.0 * 2.3
    affine = np.diag([*SPACING, 1.0])
    t1 = Volume(np.abs(t1 + rng.normal(0, 30, SHAPE)).astype(np.float32), affine, source="t1")
    if thick:  # each slice the mean of THICK T1 voxels along the first axis
        slices = stir.reshape(SHAPE[0] // THICK, THICK, *SHAPE[1:]).mean(axis=1)
        affine = affine.copy()
        affine[0, 0], affine[0, 3] = SPACING[0] * THICK, SPACING[0] * (THICK - 1) / 2
        stir = slices
    noisy = np.abs(stir + rng.normal(0, 3.6, stir.shape)).astype(np.float32)
    bones = Volume(bones, t1.affine, kind="label", source="bones")
    return t1, Volume(noisy, affine, source="stir"), bones


def _analyse(thick: bool, seed: int, **params):
    t1, stir, bones = _visit(thick, seed)
    return bt.analyze(t1, stir=stir, marrow=bones, params=params or None, verify_roles=False)


@pytest.fixture(scope="module")
def visits():
    return _analyse(True, 1), _analyse(False, 2)


@pytest.fixture(scope="module")
def together(visits):
    return compare(*visits)


def _bme(result) -> np.ndarray:
    return np.asarray(result.bme_mask.data) > 0


def test_each_visit_alone_cuts_the_lesion_in_its_band(visits):
    baseline, followup = visits
    lesion = _lesion()
    assert baseline.band_stage.band[lesion].mean() > 0.7  # the slab is in the baseline's band
    assert not followup.band_stage.band[lesion].any()
    assert (_bme(baseline) & lesion).sum() < 0.6 * lesion.sum()  # cut to the stalk's reach
    assert (_bme(followup) & lesion).sum() > 0.9 * lesion.sum()


def test_the_lesion_is_kept_at_both_visits_decided_together(visits, together):
    baseline, followup = visits
    lesion = _lesion()
    joint = np.asarray(together.baseline.maps["bme_mask"].data) > 0
    assert (joint & lesion).sum() > 0.9 * lesion.sum()
    total = together.change_rows[-1]
    assert total["region"] == "total"
    assert abs(total["bme_change_ml"]) < 0.1  # alone: the slab made a 0.5 mL change
    assert total["bme_ml_baseline"] > baseline.bme_volume_ml + 0.3
    assert total["bme_ml_followup"] == pytest.approx(followup.bme_volume_ml, abs=1e-3)
    summary = together.joint["baseline"]
    assert summary["analysed_again"] and summary["joint_ml"] > summary["own_ml"]
    assert not together.joint["followup"]["analysed_again"]
    own = f"baseline {summary['own_ml']:.2f} mL alone, {summary['joint_ml']:.2f} mL together"
    assert any(own in note for note in together.notes)
    # the lesion table and the bone table follow the joint edema
    bone = together.baseline.report["bones"][0]
    assert bone["bme_ml"] == pytest.approx(total["bme_ml_baseline"], abs=1e-3)


def test_no_edema_where_neither_visit_grew_it(visits, together):
    baseline, _ = visits
    joint = np.asarray(together.baseline.maps["bme_mask"].data) > 0
    # only band voxels the baseline's own decision grew are kept
    assert not (joint & ~(baseline.band_stage.before | _bme(baseline))).any()
    assert (joint & ~_lesion()).sum() < 0.1 * joint.sum()


def test_nothing_brought_over_gives_the_visits_own_analysis(visits):
    baseline, _ = visits
    again = analyze_bones(
        baseline.study, baseline.bones, baseline.parameters,
        kept_elsewhere=np.zeros(baseline.bme_mask.shape, bool),
    )  # fmt: skip
    assert np.array_equal(_bme(again), _bme(baseline))


def test_the_parameter_off_decides_each_visit_alone(visits):
    off = [replace(r, parameters=replace(r.parameters, band_decided_jointly=False))
           for r in visits]  # fmt: skip
    result = compare(*off)
    total = result.change_rows[-1]
    assert total["bme_ml_baseline"] == pytest.approx(visits[0].bme_volume_ml, abs=1e-3)
    assert result.joint is None and ALONE_NOTE in result.notes


def test_folders_and_reference_masks_are_decided_alone_with_a_note(visits, tmp_path):
    baseline, followup = visits
    baseline.save(tmp_path / "ses-1", qc=False)
    result = compare(tmp_path / "ses-1", followup)
    assert result.joint is None
    assert any("decided alone" in n and "output folder" in n for n in result.notes)
    t1, stir, bones = _visit(True, 1)
    normal = np.zeros(SHAPE, np.uint8)
    normal[10:25, 10:40, 4:12] = 1
    referenced = bt.analyze(t1, stir=stir, marrow=bones, verify_roles=False,
                            reference_mask=bones.with_data(normal))  # fmt: skip
    result = compare(referenced, followup)
    assert result.joint is None
    assert any("decided alone" in n and "reference mask" in n for n in result.notes)
    assert load_visit(referenced, label="baseline").result is referenced


# --- visits given as output folders: analysed again from the inputs their reports name ---


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Both visits analysed from files and written by the output writer: the results and
    their output folders."""
    from bmetoolkit.io import save_nifti

    root = tmp_path_factory.mktemp("bone_folders")
    results, outputs = [], []
    for session, (thick, seed) in enumerate(((True, 1), (False, 2)), start=1):
        inputs = root / f"ses-{session}"
        inputs.mkdir()
        paths = [
            save_nifti(v, inputs / f"{n}.nii.gz")
            for v, n in zip(_visit(thick, seed), ("t1", "stir", "bones"), strict=True)
        ]
        result = bt.analyze(paths[0], stir=paths[1], marrow=paths[2], verify_roles=False)
        result.save(inputs / "out", qc=False)
        results.append(result)
        outputs.append(inputs / "out")
    return results, outputs


def _with_stir(folder, tmp_path, stir) -> object:
    """A copy of the output ``folder`` whose report names ``stir`` (a path) as its STIR."""
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    report = json.loads((copy / "report.json").read_text())
    report["inputs"]["images"]["stir"] = str(stir)
    for entry in report["inputs"]["sha256"]["stir"]:
        entry["file"] = str(stir)
    (copy / "report.json").write_text(json.dumps(report))
    return copy


def test_folders_are_analysed_again_and_decided_together(folders):
    results, outputs = folders
    in_memory = compare(*results)
    from_folders = compare(*outputs)
    assert from_folders.joint is not None
    assert from_folders.joint["baseline"]["analysed_again"]
    for key in ("baseline", "followup"):
        assert from_folders.joint[key] == in_memory.joint[key]
        joint = [np.asarray(getattr(r, key).maps["bme_mask"].data) > 0
                 for r in (in_memory, from_folders)]  # fmt: skip
        assert np.array_equal(*joint)
    assert from_folders.change_rows[-1] == pytest.approx(in_memory.change_rows[-1])
    assert not any("decided alone" in n for n in from_folders.notes)


def test_a_folder_whose_input_changed_is_decided_alone(folders, tmp_path):
    from bmetoolkit.io import save_nifti

    _, outputs = folders
    _, stir, _ = _visit(False, 1)  # thin slices since: another band, another edema mask
    changed = _with_stir(outputs[0], tmp_path, save_nifti(stir, tmp_path / "stir.nii.gz"))
    result = compare(changed, outputs[1])
    assert result.joint is None
    assert any("decided alone" in n and "did not give its own edema" in n for n in result.notes)
    (tmp_path / "stir.nii.gz").unlink()  # removed: not analysed again
    result = compare(changed, outputs[1])
    assert result.joint is None
    assert any("decided alone" in n and "image was not found" in n for n in result.notes)
