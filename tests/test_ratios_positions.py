"""Marrow voxel positions for the reference equal the grid's own, value for value."""

from __future__ import annotations

import numpy as np

from bmetoolkit.ratios import voxel_positions
from bmetoolkit.volume import Grid


def test_voxel_positions_equal_voxel_to_world_on_oblique_anisotropic_grids():
    rng = np.random.default_rng(2)
    for _ in range(5):
        shape = tuple(int(n) for n in rng.integers(2, 60, 3))
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        affine = np.eye(4)
        affine[:3, :3] = rotation * rng.uniform(0.3, 5.0, 3)  # oblique, anisotropic
        affine[:3, 3] = rng.uniform(-200, 200, 3)
        grid = Grid(shape, affine)
        index = rng.choice(int(np.prod(shape)), size=500, replace=False)
        ijk = np.stack(np.unravel_index(index, shape), axis=1)
        assert np.array_equal(voxel_positions(affine, index, shape), grid.voxel_to_world(ijk))
