"""Opt-in properties of the randomized phantom for the automatic bodies (issue 16).

The lower sacrum, pelvic bone and bowel loops (``pelvis_and_bowel``) and 1 mm isotropic
resampled data (``resampled_1mm``) are drawn only when asked for: every other draw, and so
the images of existing seeds, stay as they were.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.data.phantom.anatomy import Tissue
from bmetoolkit.data.phantom.randomize import draw_case, make_randomized_phantom

SEED = 3


@pytest.fixture(scope="module")
def plain():
    return make_randomized_phantom(SEED, small=True)


@pytest.fixture(scope="module")
def pelvis():
    return make_randomized_phantom(SEED, small=True, pelvis_and_bowel=True)


def test_the_options_leave_every_other_draw_as_it_was():
    base = draw_case(SEED, small=True).to_dict()
    extra = draw_case(SEED, small=True, pelvis_and_bowel=True, resampled_1mm=True).to_dict()
    assert "resampled_mm" not in base and extra["resampled_mm"] == 1.0
    assert set(extra["surroundings"]) >= {"lower_sacrum_mm", "pelvis_lr_mm", "bowel_loops"}
    for name in base:
        if name != "surroundings":
            assert extra[name] == base[name], name


def test_lower_sacrum_and_bowel_are_drawn_but_are_not_bodies(plain, pelvis):
    truth = np.asarray(pelvis.truth.vertebrae.data)
    assert np.array_equal(truth, np.asarray(plain.truth.vertebrae.data))
    tissue = np.asarray(pelvis.truth.masks["tissue"].data)
    before = np.asarray(plain.truth.masks["tissue"].data)
    marrow_outside = (tissue == Tissue.MARROW) & (truth == 0)
    assert marrow_outside.sum() > 100
    assert ((before == Tissue.MARROW) & (truth == 0)).sum() == 0
    drawn = pelvis.render_parameters["randomization"]["surroundings"]
    if drawn["bowel_loops"]:
        assert (tissue == Tissue.CSF).sum() > (before == Tissue.CSF).sum()


def test_resampled_data_are_on_1_mm_isotropic_voxels_with_the_truth():
    study = make_randomized_phantom(SEED, small=True, resampled_1mm=True)
    for volume in (study.t1, study.t2, study.stir, study.truth.vertebrae):
        assert np.allclose(volume.grid.spacing, 1.0)
    assert study.truth.vertebrae.grid.shape == study.t1.grid.shape
    assert set(np.unique(study.truth.vertebrae.data)) >= {20, 24, 26}  # L1, L5, S1
