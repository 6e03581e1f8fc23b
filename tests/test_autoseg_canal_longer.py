"""The fluid-alone canal's lower cut extending the brightest tube (bmetoolkit.spine.autoseg.
canal, ``canal_longer_mm``): a canal running to the image's upper edge is not kept short of
its dimmer sacral part because it is already long."""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.canal import _brightest_tube
from bmetoolkit.spine.autoseg.params import AutosegParameters


def _canal_to_the_top() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tube bright over its upper 240 mm (to the image's top edge) and dimmer over the
    60 mm below (the sacral sac): 1.25 times longer as a whole, under ``LONGER_FACTOR``."""
    image = np.full((60, 300, 9), 100.0, np.float32)  # (AP, SI, LR), SI row 0 the lowest
    image[25:35, 60:, 3:6] = 1000.0
    # short bright tissue: the 95th percentile's cut lies above the sac
    image[45:55, 100:120, :] = 700.0
    image[25:35, :60, 3:6] = 400.0
    return image, np.ones(image.shape, bool), np.array([1.0, 1.0, 4.0])


def _rows(tube: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(tube.any(axis=(0, 2)))
    return int(rows[0]), int(rows[-1])


def test_lower_cut_extends_a_long_canal_by_enough_mm():
    image, tissue, spacing = _canal_to_the_top()
    tube = _brightest_tube(image, tissue, spacing, AutosegParameters(canal_longer_mm=50.0))
    assert _rows(tube) == (0, 299)


def test_without_the_rule_the_long_canal_stays_short_of_its_sacral_part():
    image, tissue, spacing = _canal_to_the_top()
    tube = _brightest_tube(image, tissue, spacing, AutosegParameters(canal_longer_mm=0.0))
    assert _rows(tube) == (60, 299)


def test_a_short_extension_does_not_replace_the_brighter_tube():
    image, tissue, spacing = _canal_to_the_top()
    image[25:35, :60, 3:6] = 100.0
    image[25:35, 40:60, 3:6] = 400.0  # 20 mm below: under 50 mm
    tube = _brightest_tube(image, tissue, spacing, AutosegParameters(canal_longer_mm=50.0))
    assert _rows(tube) == (60, 299)
