"""A canonical view of a sagittal study: axes (anterior, superior, right), spacing in mm.

The algorithm thinks in anatomical directions. A sagittal grid's voxel axes are close to
the anatomical ones (a few degrees of obliquity), so each voxel axis is matched to the
anatomical axis it is closest to and the arrays are transposed and flipped (no
interpolation). :meth:`CanonicalFrame.to_grid` maps a result back onto the study grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.volume import Grid

__all__ = ["CanonicalFrame"]

#: World (RAS+) axis index of each canonical axis: anterior (+y), superior (+z), right (+x).
_CANONICAL_WORLD_AXES = (1, 2, 0)


@dataclass(frozen=True)
class CanonicalFrame:
    """How to view a grid's arrays as (anterior, superior, right).

    Parameters
    ----------
    order : tuple of 3 ints
        Voxel axis of the grid shown as canonical axis 0, 1, 2.
    flip : tuple of 3 bools
        Whether the canonical axis runs against the grid's voxel axis.
    spacing : ndarray, shape (3,)
        Voxel size (mm) along the canonical axes.
    obliquity_deg : float
        Largest angle between a voxel axis and its anatomical axis.

    Examples
    --------
    >>> grid = Grid((30, 40, 5), np.diag([0.7, 0.8, 4.4, 1.0]))  # axes R, A, S
    >>> frame = CanonicalFrame.of(grid)
    >>> frame.order, frame.spacing.round(2).tolist()
    ((1, 2, 0), [0.8, 4.4, 0.7])
    >>> frame.view(np.zeros(grid.shape)).shape
    (40, 5, 30)
    """

    order: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    spacing: NDArray[np.float64]
    obliquity_deg: float

    @classmethod
    def of(cls, grid: Grid) -> CanonicalFrame:
        """The canonical frame of ``grid`` (refused when two axes map to one direction)."""
        direction = grid.direction
        order, flip, cosines = [], [], []
        for world_axis in _CANONICAL_WORLD_AXES:
            components = direction[world_axis]
            voxel_axis = int(np.argmax(np.abs(components)))
            order.append(voxel_axis)
            flip.append(bool(components[voxel_axis] < 0))
            cosines.append(abs(float(components[voxel_axis])))
        if len(set(order)) != 3:
            raise BmetoolkitError(
                f"cannot match the voxel axes of {grid} to anatomical directions",
                hint="automatic segmentation needs a (near-)sagittal, axial or coronal grid",
            )
        obliquity = float(np.degrees(np.arccos(np.clip(min(cosines), -1, 1))))
        spacing = grid.spacing[order]
        return cls(tuple(order), tuple(flip), spacing, obliquity)

    def view(self, data: NDArray) -> NDArray:
        """``data`` (on the grid) seen along (anterior, superior, right); a view, no copy."""
        out = np.transpose(data, self.order)
        index = tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)
        return out[index]

    def to_grid(self, data: NDArray) -> NDArray:
        """Inverse of :meth:`view`: canonical array back onto the grid's voxel axes."""
        index = tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)
        return np.ascontiguousarray(np.transpose(data[index], np.argsort(self.order)))
