"""Exact shortcuts of the bone analysis: the free-fluid percentile from the highest values
only, and bone ids by counting, equal np.percentile and np.unique."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.bones.analysis import free_fluid_signal, high_percentile
from bmetoolkit.bones.labels import bone_ids


@pytest.mark.parametrize("seed", range(12))
def test_high_percentile_equals_np_percentile(seed):
    # float and integer images, many ties (quantised signal), background zeros and
    # negative values, large (the fast path) and small (all values) images, several q
    rng = np.random.default_rng(seed)
    shape = (60, 70, 12) if seed % 3 else (9, 8, 3)
    image = rng.gamma(2.0, 40.0, shape) - 10.0
    image[rng.random(shape) < 0.3] = 0.0
    if seed % 2:
        image = np.round(image / 7.0).astype(np.int16)  # ties
    else:
        image = image.astype(np.float32)
    positive = np.asarray(image[image > 0], np.float32)
    for q in (99.5, 97.0, 80.0, 50.0):
        expected = np.percentile(positive, q)
        assert high_percentile(image, positive.size, q) == expected  # exactly


def test_free_fluid_signal_without_signal():
    assert free_fluid_signal(np.zeros((4, 4, 2), np.float32)) is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
def test_bone_ids_equal_np_unique(dtype):
    # counted for small integer ids, sorted otherwise: the same ids, dtype and order
    rng = np.random.default_rng(7)
    labels = np.zeros((30, 40, 6), dtype)
    labels[5:20, 10:30, 1:5] = rng.choice([0, 3, 9, 200], size=(15, 20, 4))
    if dtype == np.int16:
        labels[0, 0, 0] = -4  # a negative id: not a bone id
    expected = np.unique(labels)
    expected = expected[expected > 0]
    ids = bone_ids(labels)
    assert ids.dtype == expected.dtype and np.array_equal(ids, expected)
    assert bone_ids(np.zeros((3, 3, 3), dtype)).size == 0
