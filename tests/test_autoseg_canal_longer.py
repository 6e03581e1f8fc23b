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


def test_an_extension_at_the_top_does_not_replace_the_brighter_tube():
    """Pelvis tuning seed 107 (no T10): the lower cut's tube ran 61 mm further up, its lower
    end where it was; taken by a length in mm, T11 was lost."""
    image = np.full((60, 300, 9), 100.0, np.float32)  # (AP, SI, LR), SI row 0 the lowest
    image[25:35, 20:240, 3:6] = 1000.0
    image[45:55, 100:120, :] = 700.0
    image[25:35, 240:, 3:6] = 400.0  # 60 mm above: 280 mm against 220, under 1.3 times
    tissue, spacing = np.ones(image.shape, bool), np.array([1.0, 1.0, 4.0])
    tube = _brightest_tube(image, tissue, spacing, AutosegParameters(canal_longer_mm=60.0))
    assert _rows(tube) == (20, 239)


def _sac_below_and_more_above(above: int) -> np.ndarray:
    """A 280-mm bright tube with a dimmer 60 mm below it and ``above`` mm above it."""
    image = np.full((60, 360, 9), 100.0, np.float32)  # (AP, SI, LR), SI row 0 the lowest
    image[25:35, 60:340, 3:6] = 1000.0
    image[45:55, 100:120, :] = 700.0
    image[25:35, :60, 3:6] = 400.0
    image[25:35, 340 : 340 + above, 3:6] = 400.0
    return image


def test_a_caudal_extension_whose_top_moved_is_not_taken_by_the_mm():
    image = _sac_below_and_more_above(15)  # 355 mm against 280: under 1.3 times
    tissue, spacing = np.ones(image.shape, bool), np.array([1.0, 1.0, 4.0])
    tube = _brightest_tube(image, tissue, spacing, AutosegParameters(canal_longer_mm=60.0))
    assert _rows(tube) == (60, 339)


def test_a_caudal_extension_whose_top_moved_a_little_is_taken():
    image = _sac_below_and_more_above(5)
    tissue, spacing = np.ones(image.shape, bool), np.array([1.0, 1.0, 4.0])
    tube = _brightest_tube(image, tissue, spacing, AutosegParameters(canal_longer_mm=60.0))
    assert _rows(tube) == (0, 344)


def test_the_sac_is_taken_by_default():
    image, tissue, spacing = _canal_to_the_top()
    assert _rows(_brightest_tube(image, tissue, spacing, AutosegParameters())) == (0, 299)
