"""The focal-spot rule of two bone-mask visits decided together (followup.joint_bones).

One block "bone" without a joint (so the spine's focal-spot rule applies: a round, faint
region up to ``focal_max_mm`` is a red-marrow island, not edema) on one 1 mm grid at both
visits. At the baseline an 18 x 18 x 10 mm lesion, too large for a spot; at the follow-up
it has shrunk to a 7 mm cube at 1.45 x normal marrow, which the rule alone leaves out, so
the lesion would be reported resolved while it is still seen.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import bmetoolkit as bt
from bmetoolkit.bones.analysis import analyze_bones
from bmetoolkit.followup.compare import compare
from bmetoolkit.volume import Volume

SHAPE = (48, 48, 30)
BONE = (slice(4, 44), slice(4, 44), slice(4, 26))
LARGE = (slice(14, 32), slice(14, 32), slice(10, 20))
SHRUNK = (slice(19, 26), slice(19, 26), slice(12, 19))


def _analyse(lesion: tuple[slice, ...], ratio: float, seed: int, **params):
    rng = np.random.default_rng(seed)
    bones = np.zeros(SHAPE, np.uint8)
    bones[BONE] = 1
    t1, stir = np.full(SHAPE, 450.0), np.full(SHAPE, 130.0)
    t1[bones > 0], stir[bones > 0] = 1000.0, 120.0
    t1[lesion], stir[lesion] = 750.0, 120.0 * ratio
    affine = np.eye(4)
    t1 = Volume(np.abs(t1 + rng.normal(0, 30, SHAPE)).astype(np.float32), affine, source="t1")
    noisy = np.abs(stir + rng.normal(0, 3.6, SHAPE)).astype(np.float32)
    return bt.analyze(
        t1, stir=Volume(noisy, affine, source="stir"),
        marrow=Volume(bones, affine, kind="label", source="bones"),
        params=params or None, verify_roles=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def visits():
    return _analyse(LARGE, 1.8, 1), _analyse(SHRUNK, 1.45, 2)


def _statuses(result) -> list[str]:
    return [row["status"] for row in result.lesion_rows]


def test_alone_the_shrunk_lesion_is_a_spot(visits):
    baseline, followup = visits
    shrunk = np.zeros(SHAPE, bool)
    shrunk[SHRUNK] = True
    assert baseline.bme_volume_ml > 2.5
    assert followup.bme_volume_ml == 0
    assert followup.band_stage.spots[shrunk].mean() > 0.8


def test_decided_together_the_shrunk_lesion_persists(visits):
    result = compare(*visits)
    total = result.change_rows[-1]
    assert total["bme_ml_followup"] > 0.25  # the 0.34 mL cube, cut at its half maximum
    assert _statuses(result) == ["persisting"]
    assert result.joint["followup"]["analysed_again"]
    assert not result.joint["baseline"]["analysed_again"]  # the baseline has no spot
    assert any("focal spots decided for both visits together" in n for n in result.notes)


def test_the_parameter_off_decides_the_spots_alone(visits):
    off = [replace(r, parameters=replace(r.parameters, spots_decided_jointly=False))
           for r in visits]  # fmt: skip
    result = compare(*off)
    assert result.change_rows[-1]["bme_ml_followup"] == 0
    assert _statuses(result) == ["resolved"]


def test_a_lesion_faded_to_under_half_its_contrast_stays_resolved(visits):
    bright = _analyse(LARGE, 2.6, 3)  # log contrast 0.96; the shrunk region's 0.37
    result = compare(bright, visits[1])
    assert result.change_rows[-1]["bme_ml_followup"] == 0
    assert _statuses(result) == ["resolved"]


def test_nothing_seen_elsewhere_gives_the_visits_own_analysis(visits):
    _, followup = visits
    again = analyze_bones(
        followup.study, followup.bones, followup.parameters,
        seen_elsewhere=np.zeros(followup.bme_mask.shape, bool),
    )  # fmt: skip
    assert np.array_equal(np.asarray(again.bme_mask.data), np.asarray(followup.bme_mask.data))
