"""Acquisition grids of joint series: sagittal, coronal, axial or oblique, anisotropic.

Voxel axes (RAS+ columns i, j, k) before any tilt, as a DICOM series of each plane stores
them: sagittal ``i`` posterior, ``j`` inferior, ``k`` right; coronal ``i`` left, ``j``
inferior, ``k`` posterior; axial ``i`` left, ``j`` posterior, ``k`` superior (each
right-handed). An oblique series is its base plane (sagittal for the knee, along the ACL;
coronal for the sacroiliac joints, along the sacrum) rotated by 10-25 degrees; every series
also carries a small random tilt and offset, and slices may be thinner than their spacing.

Examples
--------
>>> spec = Acquisition("coronal", "coronal", (64, 60, 20), (0.5, 0.6), 3.0, 3.5)
>>> grid = spec.grid(np.zeros(3))
>>> grid.axcodes, grid.spacing.round(2).tolist()
(('L', 'I', 'P'), [0.5, 0.6, 3.5])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bmetoolkit.data.phantom.grids import SAGITTAL_AXES, rotation, voxel_offsets
from bmetoolkit.volume import Grid

__all__ = ["PLANES", "PLANE_AXES", "Acquisition", "slice_normal"]

#: Acquisition planes.
PLANES = ("sagittal", "coronal", "axial", "oblique")
#: Voxel axis directions (columns i, j, k) of each untilted plane in RAS+.
PLANE_AXES: dict[str, NDArray[np.float64]] = {
    "sagittal": SAGITTAL_AXES,
    "coronal": np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]]).T,
    "axial": np.array([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]).T,
}


@dataclass(frozen=True)
class Acquisition:
    """Geometry of one series.

    Parameters
    ----------
    plane : {'sagittal', 'coronal', 'axial', 'oblique'}
        The plane asked for.
    base : {'sagittal', 'coronal', 'axial'}
        The untilted plane the grid's axes start from (an oblique series' base).
    shape : tuple of 3 ints
        Matrix size (i, j, k); ``k`` counts slices.
    pixel_mm : tuple of 2 floats
        In-plane pixel size along i and j (mm).
    slice_thickness_mm, slice_spacing_mm : float
        Spacing > thickness is a gap.
    offset_mm : tuple of 3 floats
        Shift of the field-of-view centre (RAS+ mm).
    tilt_deg : tuple of 3 floats
        Rotations (degrees) about world x, then y, then z, applied to the base axes.
    """

    plane: str
    base: str
    shape: tuple[int, int, int]
    pixel_mm: tuple[float, float]
    slice_thickness_mm: float
    slice_spacing_mm: float
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tilt_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.plane not in PLANES or self.base not in PLANE_AXES:
            raise ValueError(f"unknown plane {self.plane!r} / base {self.base!r}")
        if self.slice_thickness_mm > self.slice_spacing_mm + 1e-9:
            raise ValueError("slice thickness exceeds the slice spacing")

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing along i, j, k (mm)."""
        return (self.pixel_mm[0], self.pixel_mm[1], self.slice_spacing_mm)

    def direction(self) -> NDArray[np.float64]:
        """Unit voxel axes (columns) in RAS+."""
        return rotation(self.tilt_deg) @ PLANE_AXES[self.base]

    def grid(self, centre: ArrayLike) -> Grid:
        """The series' grid, centred on ``centre`` plus its offset."""
        linear = self.direction() * np.asarray(self.spacing)
        middle = (np.asarray(self.shape, np.float64) - 1) / 2
        affine = np.eye(4)
        affine[:3, :3] = linear
        affine[:3, 3] = (
            np.asarray(centre, np.float64) + np.asarray(self.offset_mm) - linear @ middle
        )
        return Grid(self.shape, affine)

    def sample_offsets(self, counts: tuple[int, int, int]) -> NDArray[np.float64]:
        """Sub-sample positions in a voxel (index units); through-slice over the thickness."""
        return voxel_offsets(counts, slice_fraction=self.slice_thickness_mm / self.slice_spacing_mm)

    def sample_cell(self, counts: tuple[int, int, int]) -> tuple[float, float, float]:
        """Size of each sub-sample's cell (index units) for :meth:`sample_offsets` ``counts``.

        >>> Acquisition("axial", "axial", (4, 4, 4), (1.0, 1.0), 3.0, 4.0).sample_cell((1, 1, 3))
        (1.0, 1.0, 0.25)
        """
        fraction = self.slice_thickness_mm / self.slice_spacing_mm
        return (1 / counts[0], 1 / counts[1], fraction / counts[2])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def slice_normal(grid: Grid) -> NDArray[np.float64]:
    """Unit normal of a grid's slices (its k axis) in RAS+.

    >>> slice_normal(Grid((2, 2, 2), np.diag([1.0, 1.0, 3.0, 1.0]))).tolist()
    [0.0, 0.0, 1.0]
    """
    return grid.direction[:, 2]
