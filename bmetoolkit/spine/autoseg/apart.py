"""Neighbouring bodies kept apart: what a body grew into stops where another body begins.

Two vertebral bodies are always separated by a disc (or, fused, by bone no label map splits
either): no voxel of one body touches a voxel of another. The marrow masks keep them
apart, but the steps that grow each body past its marrow into the dark cortex around it
(:func:`~.bodies.add_cortex`, :func:`~.bodies.fill_to_endplate`,
:func:`~.bodies.grow_cortex`, :func:`~.shell.add_dark_shell`) follow dark signal, and at
the rim of a disc the annulus is as dark as cortical bone (on the real SCT lumbar T2,
0.07 of the marrow). Growing from both endplates, two bodies met across the annulus:
325 and 290 voxel faces between the top three bodies there.

Who owns a dark band joining two bodies cannot be read from its signal: where they meet,
the grown voxel further from its own marrow is given back (both when they are as far),
until no grown voxel touches another body, so the bodies stop one voxel apart halfway
across the band. The marrow itself (the bodies before growth) is never cut.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.geometry import in_plane_distance

__all__ = ["keep_apart", "touching_faces"]


def touching_faces(bodies: NDArray[np.int32]) -> int:
    """Number of voxel faces shared by two different bodies."""
    total = 0
    for axis in range(bodies.ndim):
        a = np.moveaxis(bodies, axis, 0)
        x, y = a[1:], a[:-1]
        total += int(((x > 0) & (y > 0) & (x != y)).sum())
    return total


def keep_apart(
    bodies: NDArray[np.int32], before: NDArray[np.int32], spacing: NDArray
) -> tuple[NDArray[np.int32], int]:
    """Give back the grown voxels through which bodies touch each other.

    Where a grown voxel shares a face with a voxel of another body, the one further from
    its body's marrow (the bodies before growth, in-plane distance) is given back, both
    when they are as far; repeated until no grown voxel touches another body. Where two
    bodies met halfway across a dark band, one voxel at the middle is given back.

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels after growth, canonical (AP, SI, LR) axes.
    before : ndarray of int32
        The same bodies before growth (same grid); their voxels are never removed.
    spacing : ndarray
        Voxel size (mm) along the axes.

    Returns
    -------
    bodies : ndarray of int32
        The bodies, no grown voxel sharing a face with another body.
    removed : int
        Voxels given back.
    """
    out = bodies.copy()
    grown = (out > 0) & (before == 0)
    if not (grown & _beaten(out, np.zeros(out.shape, np.float32))).any():
        return out, 0  # no grown voxel touches another body (most scans): no distances
    # on the bodies' box, which holds every marrow voxel a distance is measured to
    box = ndimage.find_objects(((out > 0) | (before > 0)).astype(np.int8))[0]
    depth = np.zeros(out.shape, np.float32)
    depth[box] = in_plane_distance(before[box] == 0, spacing)  # growth is in-plane
    removed = 0
    while True:
        drop = grown & _beaten(out, depth)
        if not drop.any():
            return out, removed
        out[drop] = 0
        grown &= ~drop
        removed += int(drop.sum())


def _beaten(bodies: NDArray[np.int32], depth: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Body voxels sharing a face with another body's voxel at most as deep as they are."""
    out = np.zeros(bodies.shape, bool)
    for axis in range(bodies.ndim):
        here = [slice(None)] * bodies.ndim
        there = [slice(None)] * bodies.ndim
        here[axis], there[axis] = slice(1, None), slice(None, -1)
        a, b = bodies[tuple(here)], bodies[tuple(there)]
        da, db = depth[tuple(here)], depth[tuple(there)]
        differ = (a > 0) & (b > 0) & (a != b)
        out[tuple(here)] |= differ & (da >= db)
        out[tuple(there)] |= differ & (db >= da)
    return out
