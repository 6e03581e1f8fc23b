"""Acquisition grids: one sagittal voxel grid per contrast, each with its own geometry.

Voxel axes before any tilt: ``i`` runs anterior to posterior, ``j`` superior to inferior
(the in-plane axes of a sagittal image) and ``k`` left to right (the slice normal), which is
right-handed, as a DICOM series of sagittal slices is. A grid can have non-square pixels,
slices thinner than their spacing (a gap), a small offset of its centre and an oblique tilt.

Examples
--------
>>> spec = GridSpec(n_ap=40, n_si=50, n_slices=6, pixel_ap_mm=0.7, pixel_si_mm=0.8,
...                 slice_thickness_mm=4.0, slice_spacing_mm=4.4)
>>> grid = make_grid(spec, np.zeros(3))
>>> grid.shape, grid.spacing.round(3).tolist()
((40, 50, 6), [0.7, 0.8, 4.4])
>>> grid.axcodes
('P', 'I', 'R')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bmetoolkit.volume import Grid

__all__ = [
    "GridSpec",
    "fine_grid",
    "make_grid",
    "rotation",
    "subsample_offsets",
    "voxel_offsets",
]

#: Voxel axis directions (columns) of an untilted sagittal grid in RAS+: i = posterior,
#: j = inferior, k = right.
SAGITTAL_AXES = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class GridSpec:
    """Geometry of one sagittal acquisition.

    Parameters
    ----------
    n_ap, n_si, n_slices : int
        Matrix size along i (AP), j (SI) and k (slices, LR).
    pixel_ap_mm, pixel_si_mm : float
        In-plane pixel size (mm); may differ (non-square pixels).
    slice_thickness_mm, slice_spacing_mm : float
        Slice thickness and centre-to-centre spacing (mm); spacing > thickness is a gap.
    offset_mm : tuple of 3 floats
        Shift of the field-of-view centre from the phantom's nominal centre, RAS+ (mm).
    tilt_deg : tuple of 3 floats
        Rotations (degrees) about world x (in-plane rotation of the sagittal image), y
        (slice normal tilted towards SI) and z (slice normal tilted towards AP).
    """

    n_ap: int
    n_si: int
    n_slices: int
    pixel_ap_mm: float
    pixel_si_mm: float
    slice_thickness_mm: float
    slice_spacing_mm: float
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tilt_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if min(self.n_ap, self.n_si, self.n_slices) < 1:
            raise ValueError(f"grid sizes must be positive, got {self.shape}")
        if self.slice_thickness_mm > self.slice_spacing_mm + 1e-9:
            raise ValueError(
                f"slice thickness {self.slice_thickness_mm} mm exceeds the spacing "
                f"{self.slice_spacing_mm} mm; overlapping slices are not modelled"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Matrix size (i, j, k)."""
        return (self.n_ap, self.n_si, self.n_slices)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing along i, j, k (mm)."""
        return (self.pixel_ap_mm, self.pixel_si_mm, self.slice_spacing_mm)


def rotation(tilt_deg: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrix for rotations (degrees) about world x, then y, then z.

    >>> np.allclose(rotation([0, 0, 0]), np.eye(3))
    True
    """
    ax, ay, az = np.deg2rad(np.asarray(tilt_deg, dtype=np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def make_grid(spec: GridSpec, centre: ArrayLike) -> Grid:
    """The :class:`~bmetoolkit.volume.Grid` of ``spec`` centred on ``centre`` + its offset.

    Parameters
    ----------
    spec : GridSpec
    centre : array_like, shape (3,)
        Nominal field-of-view centre, RAS+ mm.
    """
    direction = rotation(spec.tilt_deg) @ SAGITTAL_AXES
    linear = direction * np.asarray(spec.spacing)
    middle = (np.asarray(spec.shape, dtype=np.float64) - 1) / 2
    target = np.asarray(centre, dtype=np.float64) + np.asarray(spec.offset_mm)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = target - linear @ middle
    return Grid(spec.shape, affine)


def subsample_offsets(spec: GridSpec, counts: tuple[int, int, int]) -> NDArray[np.float64]:
    """Sub-sample positions inside a voxel, in voxel-index units, shape (n, 3).

    In-plane samples spread evenly over the pixel; through-slice samples over the slice
    thickness (not the spacing), so a slice gap is left unsampled.

    >>> spec = GridSpec(4, 4, 2, 1.0, 1.0, 2.0, 4.0)
    >>> subsample_offsets(spec, (1, 1, 2))[:, 2].tolist()
    [-0.125, 0.125]
    """
    return voxel_offsets(counts, slice_fraction=spec.slice_thickness_mm / spec.slice_spacing_mm)


def voxel_offsets(
    counts: tuple[int, int, int], *, slice_fraction: float = 1.0
) -> NDArray[np.float64]:
    """Evenly spread sub-sample positions in a voxel (index units), shape (n, 3).

    ``slice_fraction`` shrinks the spread along k (slice thickness over spacing).

    >>> voxel_offsets((2, 1, 1)).tolist()
    [[-0.25, 0.0, 0.0], [0.25, 0.0, 0.0]]
    """
    if len(counts) != 3 or min(counts) < 1:
        raise ValueError(f"sub-sample counts must be 3 positive numbers, got {counts}")
    axes = [((np.arange(n) + 0.5) / n - 0.5) for n in counts]
    axes[2] = axes[2] * slice_fraction
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def fine_grid(corners: ArrayLike, spacing_mm: float) -> Grid:
    """An axis-aligned isotropic RAS+ grid covering the world points ``corners`` (N, 3).

    >>> fine_grid([[0, 0, 0], [10, 4, 2]], 1.0).shape
    (11, 5, 3)
    """
    points = np.asarray(corners, dtype=np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    shape = tuple(int(n) for n in np.floor((high - low) / spacing_mm + 1e-9).astype(int) + 1)
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    affine[:3, 3] = low
    return Grid(shape, affine)
