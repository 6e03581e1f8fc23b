"""Bringing a volume onto another grid in physical space.

Resampling maps every voxel centre of the target grid to world (RAS+ mm) coordinates and
from there into the source grid, then interpolates: linearly for intensities, by nearest
neighbour for labels (never interpolated, integer dtype kept). No registration is done: the
images are assumed to be in the same scanner space, as the series of one DICOM study are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.volume import Grid, Volume

__all__ = [
    "ResampledVolume",
    "coverage_mask",
    "resample_at",
    "resample_to",
    "resample_with_coverage",
    "values_at",
    "voxel_mapping",
]

#: Voxels of a grid: a tuple of one slice per axis (a box, or every k-th voxel), or flat
#: indices (an integer array, as ``np.flatnonzero`` returns).
VoxelIndex = tuple[slice, ...] | NDArray[np.integer]


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
    data = _resampled_data(volume, grid, covered, fill_value)
    resampled = Volume(data, grid.affine, kind=volume.kind, source=volume.source, meta=volume.meta)
    return resampled, covered


def _interpolation(volume: Volume) -> tuple[NDArray, Any, int]:
    """The source array, output dtype and spline order :func:`resample_to` uses."""
    if volume.is_label:
        return volume.data, volume.data.dtype, 0
    return volume.data.astype(np.float32, copy=False), np.float32, 1


def _resampled_data(
    volume: Volume, grid: Grid, covered: NDArray[np.bool_], fill_value: float
) -> NDArray:
    """The voxels of ``volume`` on all of ``grid`` (``fill_value`` outside ``covered``)."""
    matrix, offset = voxel_mapping(volume.grid, grid)
    source, output, order = _interpolation(volume)
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
    return data


def resample_at(
    volume: Volume,
    grid: Grid,
    index: VoxelIndex,
    *,
    covered: NDArray[np.bool_] | None = None,
    fill_value: float = 0.0,
) -> NDArray:
    """The values :func:`resample_to` gives at some voxels of ``grid``, without the others.

    Each voxel's position in the source is computed as :func:`scipy.ndimage.affine_transform`
    computes it (``((i * m0 + j * m1) + k * m2) + offset`` per source axis, in float64) and
    interpolated by the same code (:func:`scipy.ndimage.map_coordinates`), so every value
    equals the whole grid's to the last bit.

    Parameters
    ----------
    volume : Volume
        The image to resample (interpolated as by :func:`resample_to`).
    grid : Grid
        The target grid.
    index : tuple of slices, or ndarray of int
        One slice per axis (a box of ``grid``, or every k-th voxel): the values come back
        with the box's shape; or flat indices into ``grid``: the values come back flat.
    covered : ndarray of bool, optional
        :func:`coverage_mask` of ``volume`` on ``grid`` (computed when not given).
    fill_value : float
        Value of voxels outside the source field of view.

    Examples
    --------
    >>> src = Volume(np.arange(27, dtype=np.float32).reshape(3, 3, 3), np.eye(4))
    >>> fine = Grid((6, 6, 6), np.diag([0.5, 0.5, 0.5, 1.0]))
    >>> whole = resample_to(src, fine).data
    >>> box = (slice(1, 4), slice(0, 6, 2), slice(5, 6))
    >>> bool(np.array_equal(resample_at(src, fine, box), whole[box]))
    True
    >>> bool(np.array_equal(resample_at(src, fine, np.array([0, 100])), whole.ravel()[[0, 100]]))
    True
    """
    if isinstance(index, tuple):
        axes = [np.arange(n)[s] for s, n in zip(index, grid.shape, strict=True)]
        ijk = np.ix_(*axes)
    else:
        ijk = np.unravel_index(np.asarray(index), grid.shape)
    if volume.grid.same_as(grid):
        return np.asarray(volume.data)[ijk]
    if covered is None:
        covered = coverage_mask(volume.grid, grid)
    matrix, offset = voxel_mapping(volume.grid, grid)
    i, j, k = (np.asarray(a, np.float64) for a in ijk)
    shape = np.broadcast_shapes(i.shape, j.shape, k.shape)
    coordinates = np.empty((3, *shape), np.float64)
    for axis in range(3):  # the sums in the order affine_transform's C loop adds them
        np.add(i * matrix[axis, 0], j * matrix[axis, 1], out=coordinates[axis])
        coordinates[axis] += k * matrix[axis, 2]
        coordinates[axis] += offset[axis]
    source, output, order = _interpolation(volume)
    values = ndimage.map_coordinates(
        source, coordinates, output=output, order=order, mode="nearest"
    )
    values[~covered[ijk]] = fill_value
    return values


class ResampledVolume(Volume):
    """A volume on another grid whose voxels are resampled when first read.

    ``data`` resamples the whole grid the first time it is read (:func:`resample_to`'s
    values); :func:`values_at` reads some voxels without doing so, so a run that looks
    only at the marrow never pays for the rest of the field of view. Copied or pickled it
    becomes a plain :class:`Volume`.

    Parameters
    ----------
    volume : Volume
        The image as acquired.
    grid : Grid
        The grid it is brought onto.
    covered : ndarray of bool
        Its :func:`coverage_mask` on ``grid``.
    fill_value : float
        Value of voxels outside its field of view.

    Examples
    --------
    >>> src = Volume(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    >>> fine = Grid((4, 4, 4), np.diag([0.5, 0.5, 0.5, 1.0]))
    >>> lazy = ResampledVolume(src, fine, coverage_mask(src.grid, fine))
    >>> lazy.shape, lazy.resolved
    ((4, 4, 4), False)
    >>> bool(np.array_equal(lazy.data, resample_to(src, fine).data)), lazy.resolved
    (True, True)
    """

    def __init__(
        self, volume: Volume, grid: Grid, covered: NDArray[np.bool_], fill_value: float = 0.0
    ) -> None:
        # the fields Volume's constructor sets, without its data (not resampled yet)
        object.__setattr__(self, "affine", grid.affine)
        object.__setattr__(self, "kind", volume.kind)
        object.__setattr__(self, "source", volume.source)
        object.__setattr__(self, "meta", dict(volume.meta))
        object.__setattr__(self, "grid", grid)  # Volume.grid's cached value
        object.__setattr__(self, "_acquired", volume)
        object.__setattr__(self, "_covered", covered)
        object.__setattr__(self, "_fill_value", fill_value)
        object.__setattr__(self, "_data", None)
        object.__setattr__(self, "_source", None)  # the acquired voxels as interpolated

    @property
    def data(self) -> NDArray[Any]:  # type: ignore[override]
        """The voxels on the whole grid (resampled on first read)."""
        if self._data is None:
            source = self._acquired if self._source is None else self._source
            data = _resampled_data(source, self.grid, self._covered, self._fill_value)
            object.__setattr__(self, "_data", data)
            object.__setattr__(self, "_source", None)  # no longer needed
        return self._data

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of voxels along i, j, k (without resampling)."""
        return self.grid.shape

    @property
    def resolved(self) -> bool:
        """Whether the whole grid has been resampled."""
        return self._data is not None

    @property
    def acquired(self) -> Volume:
        """The image as acquired, on its own grid (what this volume resamples)."""
        return self._acquired

    def at(self, index: VoxelIndex) -> NDArray:
        """The values at ``index`` (see :func:`resample_at`), resampled there alone unless
        the whole grid already is."""
        if self._data is not None:
            return self._data[index] if isinstance(index, tuple) else self._data.ravel()[index]
        if self._source is None:  # converted once (e.g. int16 to float32), not per call
            source = self._acquired.with_data(_interpolation(self._acquired)[0])
            object.__setattr__(self, "_source", source)
        return resample_at(
            self._source, self.grid, index, covered=self._covered, fill_value=self._fill_value
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Volume, (self.data, self.affine, self.kind, self.source, self.meta))

    def __repr__(self) -> str:
        return f"ResampledVolume(kind={self.kind!r}, {self.grid!r}, source={self.source!r})"


def values_at(volume: Volume, index: VoxelIndex) -> NDArray:
    """The values of ``volume`` at ``index`` (a tuple of slices, or flat indices), without
    resampling the rest of a :class:`ResampledVolume`.

    >>> vol = Volume(np.arange(8).reshape(2, 2, 2), np.eye(4))
    >>> values_at(vol, np.array([1, 7])).tolist(), values_at(vol, (slice(1, 2),) * 3).shape
    ([1, 7], (1, 1, 1))
    """
    if isinstance(volume, ResampledVolume):
        return volume.at(index)
    data = np.asarray(volume.data)
    return data[index] if isinstance(index, tuple) else data.ravel()[index]


#: Voxels per slab of :func:`coverage_mask` (about 256 kB of float64 coordinates).
_COVERAGE_SLAB = 32768


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
    inside = np.empty(target.shape, dtype=bool)
    i, j, k = (np.arange(n, dtype=np.float64) for n in target.shape)
    # Slabs across the first axis of about _COVERAGE_SLAB voxels, so the coordinates and
    # tests stay in the cache; each voxel's arithmetic is the same as on the whole grid.
    rows = max(1, _COVERAGE_SLAB // max(1, target.shape[1] * target.shape[2]))
    for first in range(0, target.shape[0], rows):
        slab = slice(first, first + rows)
        out = inside[slab]
        out[...] = True
        coordinate = np.empty(out.shape, dtype=np.float64)
        test = np.empty(out.shape, dtype=bool)
        for axis in range(3):
            # Source coordinate along `axis` is separable into a sum over target axes.
            plane = (
                offset[axis]
                + matrix[axis, 0] * i[slab, None, None]
                + matrix[axis, 1] * j[None, :, None]
            )
            np.add(plane, matrix[axis, 2] * k[None, None, :], out=coordinate)
            out &= np.greater_equal(coordinate, -0.5, out=test)
            out &= np.less(coordinate, upper[axis], out=test)
    return inside
