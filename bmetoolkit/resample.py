"""Bringing a volume onto another grid in physical space.

Resampling maps every voxel centre of the target grid to world (RAS+ mm) coordinates and
from there into the source grid, then interpolates: linearly for intensities, by nearest
neighbour for labels (never interpolated, integer dtype kept). No registration is done: the
images are assumed to be in the same scanner space, as the series of one DICOM study are.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.volume import Grid, Volume

__all__ = ["coverage_mask", "resample_to", "resample_with_coverage", "voxel_mapping"]


def voxel_mapping(source: Grid, target: Grid) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Matrix and offset taking target voxel indices to source voxel indices.

    Returns
    -------
    matrix : ndarray, shape (3, 3)
    offset : ndarray, shape (3,)
        ``source_index = matrix @ target_index + offset``.
    """
    composed = np.linalg.inv(source.affine) @ target.affine
    return composed[:3, :3], composed[:3, 3]


def resample_to(volume: Volume, grid: Grid, *, fill_value: float = 0.0) -> Volume:
    """Resample ``volume`` onto ``grid`` in physical space.

    Parameters
    ----------
    volume : Volume
        Intensities are interpolated linearly and returned as float32; labels are taken
        from the nearest voxel and keep their integer dtype.
    grid : Grid
        Target grid.
    fill_value : float
        Value of target voxels outside the source field of view.

    Returns
    -------
    Volume
        On ``grid``, with the source and meta of ``volume``. If ``volume`` already lies on
        ``grid`` it is returned unchanged.

    Examples
    --------
    >>> src = Volume(np.arange(8, dtype=np.uint8).reshape(2, 2, 2), np.eye(4), kind="label")
    >>> fine = Grid((4, 4, 4), np.diag([0.5, 0.5, 0.5, 1.0]))
    >>> out = resample_to(src, fine)
    >>> out.data.dtype.name, out.shape
    ('uint8', (4, 4, 4))
    """
    return resample_with_coverage(volume, grid, fill_value=fill_value)[0]


def resample_with_coverage(
    volume: Volume, grid: Grid, *, fill_value: float = 0.0
) -> tuple[Volume, NDArray[np.bool_]]:
    """Like :func:`resample_to`, also returning the :func:`coverage_mask` it used.

    Returns
    -------
    resampled : Volume
        ``volume`` on ``grid`` (``volume`` itself when it already lies there).
    covered : ndarray of bool, shape ``grid.shape``
        Voxels of ``grid`` inside the field of view of ``volume``.
    """
    if volume.grid.same_as(grid):
        return volume, np.ones(grid.shape, dtype=bool)
    covered = coverage_mask(volume.grid, grid)
    matrix, offset = voxel_mapping(volume.grid, grid)
    if volume.is_label:
        source, output, order = volume.data, volume.data.dtype, 0
    else:
        source, output, order = volume.data.astype(np.float32, copy=False), np.float32, 1
    # Within half a voxel of the outermost voxel centres the image still has data (the voxel
    # reaches there): extend by the edge value, then blank what lies outside the field of view.
    data = ndimage.affine_transform(
        source,
        matrix,
        offset=offset,
        output_shape=grid.shape,
        output=output,
        order=order,
        mode="nearest",
    )
    data[~covered] = fill_value
    resampled = Volume(data, grid.affine, kind=volume.kind, source=volume.source, meta=volume.meta)
    return resampled, covered


def coverage_mask(source: Grid, target: Grid) -> NDArray[np.bool_]:
    """Voxels of ``target`` whose centres lie inside the field of view of ``source``.

    The field of view reaches half a voxel beyond the outermost voxel centres.

    Examples
    --------
    >>> small = Grid((2, 2, 2), np.eye(4))
    >>> big = Grid((4, 2, 2), np.eye(4))
    >>> coverage_mask(small, big)[:, 0, 0].tolist()
    [True, True, False, False]
    """
    matrix, offset = voxel_mapping(source, target)
    upper = np.asarray(source.shape, dtype=np.float64) - 0.5
    inside = np.ones(target.shape, dtype=bool)
    # one buffer for the coordinate and one for the tests, reused along the three axes
    coordinate = np.empty(target.shape, dtype=np.float64)
    test = np.empty(target.shape, dtype=bool)
    i, j, k = (np.arange(n, dtype=np.float64) for n in target.shape)
    for axis in range(3):
        # Source coordinate along `axis` is separable into a sum over target axes.
        plane = (
            offset[axis] + matrix[axis, 0] * i[:, None, None] + matrix[axis, 1] * j[None, :, None]
        )
        np.add(plane, matrix[axis, 2] * k[None, None, :], out=coordinate)
        inside &= np.greater_equal(coordinate, -0.5, out=test)
        inside &= np.less(coordinate, upper[axis], out=test)
    return inside
