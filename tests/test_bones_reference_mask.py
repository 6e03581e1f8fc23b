"""A reader's normal-marrow region (``reference_mask=``) with bone masks.

The scene of :mod:`tests.test_bones_rules`: two block bones facing each other across a
joint, marrow T1 1000 / STIR 120 with 3 % noise, and an edema sphere (T1 0.8 x, STIR 1.8 x)
in bone 1 against the joint.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit as bt
from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.volume import Volume
from tests.test_bones_rules import SHAPE, SPACING, _scene, _sphere

#: The edema: a sphere of 6 mm radius in bone 1 touching the joint.
EDEMA = _sphere((25.0, 28.0, 24.0), 6.0)


def _region(mask: np.ndarray, bones: Volume) -> Volume:
    return Volume(mask.astype(np.uint8), bones.affine, kind="label", source="normal.nii.gz")


def _analyze(t1, stir, bones, **kwargs):
    return bt.analyze(t1, stir=stir, marrow=bones, verify_roles=False, **kwargs)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def scene():
    return _scene((EDEMA, 0.8, 1.8))


def test_a_normal_region_in_the_other_bone_finds_the_same_edema(scene):
    t1, stir, bones = scene
    ids = np.asarray(bones.data)
    normal = (ids == 2) & (np.indices(SHAPE)[0] > 55)  # healthy marrow of bone 2
    own = _analyze(t1, stir, bones)
    given = _analyze(t1, stir, bones, reference_mask=_region(normal, bones))
    assert own.references["source"] == "marrow" and given.references["source"] == "mask"
    found = np.asarray(given.bme_mask.data, bool)
    assert given.bme_volume_ml > 0.5
    assert _dice(found, np.asarray(own.bme_mask.data, bool)) > 0.9
    # The ratios are to the reader's region: its marrow is 1 on both images.
    for name in ("t1", "stir"):
        ratio = np.asarray(given.ratios[name].data)[normal & (ids > 0)]
        assert np.nanmedian(ratio) == pytest.approx(1.0, abs=0.02), name


def test_the_reference_is_the_region_given_not_the_marrow(scene):
    # Drawn over the edema, the edema is "normal" and the rest of the marrow is STIR-dark
    # and T1-bright: nothing is edema, and the fatty marrow's STIR ratio is 1 / 1.8.
    t1, stir, bones = scene
    given = _analyze(t1, stir, bones, reference_mask=_region(EDEMA, bones))
    assert given.references["source"] == "mask"
    assert given.bme_volume_ml == 0
    fatty = (np.asarray(bones.data) == 2) & (np.indices(SHAPE)[0] > 55)
    stir_ratio = np.nanmedian(np.asarray(given.ratios["stir"].data)[fatty])
    assert stir_ratio == pytest.approx(1 / 1.8, rel=0.05)


def test_a_region_outside_the_bones_box_gives_the_whole_grids_results(scene, monkeypatch):
    # Only bone 1 is given; the normal region lies in bone 2, beyond the box the analysis
    # would take around bone 1 alone: the box must widen to it and change nothing.
    import bmetoolkit.bones.analysis as bone_analysis

    t1, stir, bones = scene
    ids = np.asarray(bones.data)
    femur = Volume((ids == 1).astype(np.uint8), bones.affine, kind="label", source="bones")
    normal = _region((ids == 2) & (np.indices(SHAPE)[0] > 60), bones)
    alone = bone_analysis.analysis_box(ids == 1, SPACING, [2.0, 6.0])
    assert alone[0].stop <= 60  # the region lies outside bone 1's own box
    cropped = _analyze(t1, stir, femur, reference_mask=normal)
    whole = tuple(slice(0, n) for n in SHAPE)
    monkeypatch.setattr(bone_analysis, "analysis_box", lambda *args: whole)
    full = _analyze(t1, stir, femur, reference_mask=normal)
    assert cropped.references["source"] == "mask" and cropped.bme_volume_ml > 0.5
    for name in ("bme_mask", "marrow", "lesion_labels"):
        assert np.array_equal(getattr(cropped, name).data, getattr(full, name).data), name
    assert np.array_equal(cropped.ratios["stir"].data, full.ratios["stir"].data, equal_nan=True)
    assert cropped.bone_rows == full.bone_rows and cropped.lesion_rows == full.lesion_rows


def test_a_region_too_small_is_refused_naming_the_file(scene):
    t1, stir, bones = scene
    tiny = np.zeros(SHAPE, bool)
    tiny[60, 30, 8] = True
    with pytest.raises(BmetoolkitError, match="reference mask covers 1 ") as info:
        _analyze(t1, stir, bones, reference_mask=_region(tiny, bones))
    assert "normal.nii.gz" in str(info.value)
