"""Smooth random fields of the joint phantom: marrow mottle, lesion edges and coil shading.

A :class:`NoiseField` is a unit-SD Gaussian random field on a lattice in the knee frame,
interpolated linearly at any point: it mottles the marrow (image only) and makes lesion
borders irregular (geographic edema, reticular bruises: geometry, so also in the truth).
:func:`shading` is the receive-coil sensitivity times a log-linear bias along a random
direction (image only).

Examples
--------
>>> field = NoiseField((0, 0, 0), (20, 20, 20), step_mm=1.0, length_mm=3.0, seed=1)
>>> values = field.at(np.random.default_rng(0).uniform(0, 20, (2000, 3)))
>>> bool(0.5 < values.std() < 1.5)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.data.phantom.grids import fine_grid

__all__ = ["NoiseField", "shading"]


class NoiseField:
    """A smooth unit-SD Gaussian random field over a box (knee frame, mm).

    Parameters
    ----------
    low, high : sequence of 3 floats
        Corners of the box; outside it the field keeps its edge values.
    step_mm : float
        Lattice step.
    length_mm : float
        Correlation length (SD of the Gaussian smoothing kernel, mm).
    seed : int
    """

    def __init__(
        self,
        low: Sequence[float],
        high: Sequence[float],
        *,
        step_mm: float,
        length_mm: float,
        seed: int,
    ) -> None:
        self.grid = fine_grid(np.vstack([low, high]), step_mm)
        noise = np.random.default_rng(seed).standard_normal(self.grid.shape, dtype=np.float32)
        smooth = ndimage.gaussian_filter(noise, length_mm / step_mm, mode="wrap")
        self.values = smooth / max(float(smooth.std()), 1e-12)

    def at(self, points: NDArray) -> NDArray[np.float32]:
        """Field values at knee-frame points (N, 3)."""
        step = np.float32(self.grid.spacing[0])
        ijk = (np.asarray(points, np.float32) - self.grid.affine[:3, 3].astype(np.float32)) / step
        return ndimage.map_coordinates(self.values, ijk.T, order=1, mode="nearest")


def shading(
    local: NDArray,
    *,
    amplitude: float,
    direction: Sequence[float],
    coil_length_mm: float,
    coil_floor: float,
    span_mm: float = 100.0,
) -> NDArray[np.float32]:
    """Multiplicative shading at knee-frame points (N, 3): 1 at the joint centre.

    The coil's sensitivity falls along the limb (``z``) as
    ``floor + (1 - floor) exp(-(z / length)^2)``; a bias field grows log-linearly along
    ``direction`` by ``1 + amplitude`` over ``span_mm`` (the size of the joint's bones).

    >>> float(shading(np.zeros((1, 3)), amplitude=0.5, direction=(1, 0, 0),
    ...               coil_length_mm=100.0, coil_floor=0.3)[0])
    1.0
    """
    z = local[:, 2]
    coil = coil_floor + (1 - coil_floor) * np.exp(-((z / coil_length_mm) ** 2))
    d = np.asarray(direction, np.float64)
    along = (local[:, 0] * d[0] + local[:, 1] * d[1] + local[:, 2] * d[2]) / span_mm
    return (coil * np.power(1 + amplitude, along)).astype(np.float32)
