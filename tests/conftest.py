"""Shared fixtures: tiny synthetic volumes and grids with known geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bmetoolkit.volume import Grid, Volume

#: The public DICOM reference series (CI always has ../shared beside the project).
SHARED_DICOM = Path(__file__).resolve().parents[1].parent / "shared" / "sample_data" / "dicom"


def rotation(axis: str, degrees: float) -> np.ndarray:
    """3x3 rotation about the x, y or z axis."""
    angle = np.radians(degrees)
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}[axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def make_affine(spacing, *, rotations=(), origin=(0.0, 0.0, 0.0), axes=None) -> np.ndarray:
    """Affine with the given voxel spacing, base axis directions, rotations and origin."""
    direction = np.eye(3) if axes is None else np.asarray(axes, dtype=float)
    for axis, degrees in rotations:
        direction = rotation(axis, degrees) @ direction
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(spacing, dtype=float)
    affine[:3, 3] = origin
    return affine


#: Sagittal voxel axes as a scanner stores them: i -> posterior, j -> superior, k -> right.
SAGITTAL_PSR = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.fixture
def oblique_t1_grid() -> Grid:
    """Sagittal, non-square pixels (0.7 x 0.9 mm), 4.4 mm slices, tilted 8 and 5 degrees."""
    affine = make_affine(
        (0.7, 0.9, 4.4),
        rotations=(("z", 8.0), ("x", 5.0)),
        origin=(-20.0, 60.0, -80.0),
        axes=SAGITTAL_PSR,
    )
    return Grid((90, 160, 10), affine)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def linear_field(grid: Grid, coefficients=(0.5, -1.25, 2.0), constant=100.0) -> np.ndarray:
    """Values a.x + b.y + c.z + d of a linear function of world position at each voxel centre."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), axis=-1)
    world = grid.voxel_to_world(ijk.reshape(-1, 3))
    values = world @ np.asarray(coefficients) + constant
    return values.reshape(grid.shape).astype(np.float32)


def volume_on(grid: Grid, data=None, **kwargs) -> Volume:
    data = np.zeros(grid.shape, np.float32) if data is None else data
    return Volume(data, grid.affine, **kwargs)
