"""Shared fixtures: tiny synthetic volumes and grids with known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.volume import Grid
from tests.helpers import SAGITTAL_PSR, ras_affine


@pytest.fixture
def oblique_t1_grid() -> Grid:
    """Sagittal, non-square pixels (0.7 x 0.9 mm), 4.4 mm slices, tilted 8 and 5 degrees."""
    affine = ras_affine(
        SAGITTAL_PSR,
        (0.7, 0.9, 4.4),
        rotations=(("z", 8.0), ("x", 5.0)),
        origin=(-20.0, 60.0, -80.0),
    )
    return Grid((90, 160, 10), affine)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
