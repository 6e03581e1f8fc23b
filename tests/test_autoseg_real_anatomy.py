"""The real-anatomy phantom option used by the autoseg benchmark: the psoas against the bodies."""

from __future__ import annotations

import numpy as np

from bmetoolkit.data.phantom import Tissue
from bmetoolkit.data.phantom.anatomy import AnatomyConfig
from bmetoolkit.data.phantom.randomize import (
    PSOAS_FRONT_MM,
    TUNING_SEEDS,
    draw_case,
    make_randomized_phantom,
)


def test_psoas_is_drawn_only_with_real_anatomy_and_within_its_range():
    assert AnatomyConfig().psoas_front_mm == 0.0
    assert draw_case(3).surroundings == {}
    fronts = [
        draw_case(s, real_anatomy=True).surroundings["psoas_front_mm"] for s in TUNING_SEEDS[:20]
    ]
    drawn = [f for f in fronts if f > 0]
    assert drawn and len(drawn) < len(fronts)  # present in most cases, not in all
    assert all(PSOAS_FRONT_MM[0] <= f <= PSOAS_FRONT_MM[1] for f in drawn)


def test_psoas_reaches_in_front_of_the_bodies_and_leaves_the_truth_alone():
    seed = next(
        s for s in TUNING_SEEDS if draw_case(s, real_anatomy=True).surroundings["psoas_front_mm"]
    )
    plain = make_randomized_phantom(seed, kind="healthy", small=True)
    real = make_randomized_phantom(seed, kind="healthy", small=True, real_anatomy=True)
    np.testing.assert_array_equal(real.truth.vertebrae.data, plain.truth.vertebrae.data)
    tissue_plain = np.asarray(plain.truth.masks["tissue"].data)
    tissue_real = np.asarray(real.truth.masks["tissue"].data)
    became_muscle = (tissue_real == Tissue.MUSCLE) & (tissue_plain == Tissue.VISCERA)
    assert became_muscle.sum() > 50
