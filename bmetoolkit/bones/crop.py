"""The part of the grid the bone analysis works on: the bones' box and its stages' reach.

A knee or a sacroiliac study is mostly soft tissue, fat and air: the bones fill about a third
of the grid's box. Every stage of the analysis reads only the bones' voxels and a margin
around them (the decision smoothing, the coarse seeds, the partial-volume band and the
depth grid), so it runs on the bones' box widened by that margin
(:func:`analysis_box`) and its outputs are put back on the whole grid (:func:`on_full_grid`).
The margin is wide enough for each stage to see what it sees on the whole grid, so the
results are those of the whole grid (world coordinates are computed from the box's own
affine, equal to rounding).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.bones.geometry import depth_factor
from bmetoolkit.resample import values_at
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume, occupied_box

__all__ = ["analysis_box", "cropped_grid", "cropped_study", "on_full_grid"]


def analysis_box(
    inside: NDArray[np.bool_], spacing: NDArray[np.floating], reach_mm: Iterable[float]
) -> tuple[slice, ...]:
    """The box of ``inside`` widened by what the analysis reads around it, per axis.

    The margin along an axis is the half width of the widest smoothing in ``reach_mm``
    (in voxels, as :func:`bmetoolkit.decision.smooth_within` counts them), one block of the
    depth grid (:func:`~bmetoolkit.bones.geometry.depth_factor`: its blocks start at
    multiples of the block size, so the box does too) and one voxel for the outer layer.

    >>> inside = np.zeros((40, 40, 10), bool)
    >>> inside[16:20, 12:30, 4:6] = True  # 6 mm smoothing: 6 + 3 + 1 voxels in-plane
    >>> analysis_box(inside, np.array([0.5, 0.5, 3.0]), [6.0])
    (slice(6, 30, None), slice(0, 40, None), slice(1, 9, None))
    """
    spacing = np.asarray(spacing, float)
    box = occupied_box(inside)
    if any(s.start >= s.stop for s in box):
        return tuple(slice(0, n) for n in inside.shape)
    widest = max([0.0, *reach_mm])
    factor = depth_factor(spacing)
    out = []
    for s, step, block, n in zip(box, spacing, factor, inside.shape, strict=True):
        margin = int(widest / (2 * step)) + int(block) + 1
        start = max(0, s.start - margin)
        start -= start % int(block)
        out.append(slice(start, min(n, s.stop + margin)))
    return tuple(out)


def cropped_grid(grid: Grid, box: tuple[slice, ...]) -> Grid:
    """The grid of ``box`` (same voxels, same world positions).

    >>> cropped_grid(Grid((8, 8, 8), np.eye(4)), (slice(2, 5),) * 3).voxel_to_world([[0, 0, 0]])
    array([[2., 2., 2.]])
    """
    start = np.array([s.start for s in box], float)
    affine = grid.affine.copy()
    affine[:3, 3] = grid.affine[:3, :3] @ start + grid.affine[:3, 3]
    return Grid(tuple(s.stop - s.start for s in box), affine)


def cropped_study(study: Study, box: tuple[slice, ...]) -> Study:
    """``study`` with its images and coverage masks cut to ``box`` (labels left out)."""
    affine = cropped_grid(study.grid, box).affine

    def cut(volume: Volume | None) -> Volume | None:
        if volume is None:
            return None
        return Volume(
            values_at(volume, box), affine, kind=volume.kind, source=volume.source,
            meta=volume.meta,
        )  # fmt: skip

    return Study(
        t1=cut(study.t1),
        t2=cut(study.t2),
        stir=cut(study.stir),
        coverage=study.coverage,
        covered={role: mask[box] for role, mask in study.covered.items()},
        inputs=study.inputs,
        notes=study.notes,
        checksums=study.checksums,
        role_evidence=study.role_evidence,
        source_grids=study.source_grids,
    )


def on_full_grid(
    array: NDArray, box: tuple[slice, ...], shape: tuple[int, ...], fill: float | bool = 0
) -> NDArray:
    """``array`` (the box's values) put back on the whole grid, ``fill`` elsewhere.

    >>> on_full_grid(np.ones((1, 2, 1), np.uint8), (slice(1, 2), slice(0, 2), slice(0, 1)),
    ...              (2, 2, 1)).ravel().tolist()
    [0, 0, 1, 1]
    >>> on_full_grid(np.ones((1, 1, 1)), (slice(1, 2), slice(0, 1), slice(1, 2)), (3, 2, 3),
    ...              np.nan)[:, :, 1].tolist()
    [[nan, nan], [1.0, nan], [nan, nan]]
    """
    if array.shape == tuple(shape):
        return array
    if fill == 0:  # zeros are allocated untouched (the system's zero pages)
        out = np.zeros(shape, array.dtype)
        out[box] = array
        return out
    out = np.empty(shape, array.dtype)
    out[box] = array
    lead: list[slice] = []  # each voxel outside the box is filled once
    for axis_box, n in zip(box, shape, strict=True):
        out[(*lead, slice(0, axis_box.start))] = fill
        out[(*lead, slice(axis_box.stop, n))] = fill
        lead.append(axis_box)
    return out
