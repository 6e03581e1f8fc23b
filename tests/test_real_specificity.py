"""Specificity on real anatomy: SCT's healthy cervical T1w/T2 pair, automatic bodies.

The pair (Spinal Cord Toolbox test data, MIT; bundled in ``sample_data/spine``) is a healthy
subject. With no label map, the analysis finds the bodies itself; it must report no Modic
change and (near) no edema. Its T1w is a gradient echo on which the marrow is darker than
the discs, so Modic types cannot be read from it: the analysis must say so rather than
report "none" (or spurious type II from disc partial volume and noise).
"""

from __future__ import annotations

import json

import pytest

import bmetoolkit as bt
from bmetoolkit.data import datasets
from bmetoolkit.modic import NOT_ASSESSED

#: "Near no edema": less than one small lesion's worth (the minimum lesion is 0.05 mL).
NEAR_NO_EDEMA_ML = 0.1


@pytest.fixture(scope="module")
def cervical_result():
    paths = datasets.cervical_pair()
    return bt.analyze(paths["t1"], t2=paths["t2"])


def test_real_cervical_pair_bodies_found_automatically(cervical_result):
    assert cervical_result.vertebrae.convention == "automatic"
    assert len(cervical_result.bodies) == 3


def test_real_cervical_pair_has_near_no_edema(cervical_result):
    assert cervical_result.bme_volume_ml < NEAR_NO_EDEMA_ML
    assert not any(row["bme_volume_ml"] > 0 for row in cervical_result.lesion_rows)


def test_real_cervical_pair_reports_no_modic_change_and_says_why(cervical_result, tmp_path):
    assert cervical_result.modic_counts() == {}
    assert set(cervical_result.endplates["modic_type"]) == {NOT_ASSESSED}
    assert cervical_result.checks["modic_assessed"] is False
    assert any("brighter than the marrow" in note for note in cervical_result.notes)
    cervical_result.save(tmp_path, qc=True)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["modic_counts"] == {} and report["bme"]["volume_ml"] < NEAR_NO_EDEMA_ML
    assert "Modic types not assessed (see the notes)" in (tmp_path / "qc.html").read_text()
