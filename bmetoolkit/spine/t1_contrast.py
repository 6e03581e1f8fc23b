"""Does this T1 show fatty marrow brighter than the discs, as Modic typing assumes?

Modic types are defined on spin-echo T1 and T2: fatty (type II) marrow is bright on T1 and
the normal marrow is brighter than the discs. On some T1-weighted gradient-echo scans the
trabecular bone dephases the marrow signal: the bodies are darker than the discs, and a
bright rim of disc partial volume or noise would read as "T1 hyperintense". Such a T1
cannot carry a Modic type; the analysis checks it with the vertebra labels it already has.

The disc between two consecutive bodies is sampled around the midpoint of their centroids
(outside every body); the check compares its T1 with the marrow of those two bodies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.vertebra import BodyGeometry
from bmetoolkit.volume import Grid

__all__ = ["DISC_SAMPLE_RADIUS_MM", "disc_to_marrow_ratio", "marrow_darker_than_discs"]

#: Radius (mm) of the ball around the midpoint of two consecutive centroids sampled as disc
#: (at least the largest voxel size).
DISC_SAMPLE_RADIUS_MM = 3.0
#: Consecutive bodies further apart than this multiple of the median centroid spacing are
#: not neighbours (a body is missing between them): no disc is sampled.
NEIGHBOUR_FACTOR = 1.5


def disc_to_marrow_ratio(
    t1: NDArray,
    body_labels: NDArray,
    bodies: list[BodyGeometry],
    grid: Grid,
    where: NDArray[np.bool_] | None = None,
) -> tuple[float | None, dict[str, Any]]:
    """Median over neighbouring body pairs of (disc T1) / (their marrow's T1).

    Parameters
    ----------
    t1 : ndarray
        T1 intensities on ``grid``.
    body_labels : ndarray
        Body labels on ``grid`` (0 outside bodies).
    bodies : list of BodyGeometry
        The bodies, with their marrow voxels and centroids.
    grid : Grid
    where : ndarray of bool, optional
        Voxels that may be sampled (e.g. those every image covers).

    Returns
    -------
    ratio : float or None
        None when fewer than two neighbouring bodies have a disc to sample.
    evidence : dict
        The ratio of each pair, by pair name.
    """
    ordered = sorted(bodies, key=lambda b: -b.centroid_ras[2])
    centres = np.array([b.centroid_ras for b in ordered]).reshape(-1, 3)
    if len(ordered) < 2:
        return None, {"reason": "fewer than two bodies"}
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    allowed = where if where is not None else np.ones(grid.shape, bool)
    free = (np.asarray(body_labels) == 0) & allowed  # disc samples: outside every body
    flat_t1, flat_allowed = np.asarray(t1).ravel(), allowed.ravel()
    ratios: dict[str, float] = {}
    radius = max(DISC_SAMPLE_RADIUS_MM, float(grid.spacing.max()))  # a few voxels on coarse grids
    for k, step in enumerate(steps):
        if step > NEIGHBOUR_FACTOR * float(np.median(steps)):
            continue
        upper, lower = ordered[k], ordered[k + 1]
        disc = _ball(grid, (centres[k] + centres[k + 1]) / 2, radius)
        disc = disc[:, free[tuple(disc)]]
        marrow = np.concatenate([b.marrow_index for b in (upper, lower)])
        marrow = marrow[flat_allowed[marrow]]
        if disc.shape[1] < 5 or marrow.size < 5:
            continue
        level = float(np.median(flat_t1[marrow]))
        disc_level = float(np.median(np.asarray(t1)[tuple(disc)]))
        ratios[f"{upper.name}-{lower.name}"] = round(disc_level / max(level, 1e-6), 3)
    if not ratios:
        return None, {"reason": "no disc between neighbouring bodies could be sampled"}
    return float(np.median(list(ratios.values()))), {"disc_to_marrow_t1": ratios}


def _ball(grid: Grid, centre_ras: NDArray, radius_mm: float) -> NDArray[np.intp]:
    """Indices, shape (3, n), of the voxels of ``grid`` within ``radius_mm`` of ``centre_ras``."""
    centre = np.floor(grid.world_to_voxel(centre_ras[None, :])[0]).astype(int)
    reach = np.ceil(radius_mm / grid.spacing).astype(int) + 1
    low = np.clip(centre - reach, 0, np.array(grid.shape))
    high = np.clip(centre + reach + 1, 0, np.array(grid.shape))
    axes = [np.arange(a, b) for a, b in zip(low, high, strict=True)]
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    distance = np.linalg.norm(grid.voxel_to_world(ijk) - centre_ras, axis=1)
    return ijk[distance <= radius_mm].T


def marrow_darker_than_discs(ratio: float | None) -> bool:
    """Whether the discs are brighter than the marrow on T1 (the check fails).

    >>> marrow_darker_than_discs(0.6), marrow_darker_than_discs(3.9), marrow_darker_than_discs(None)
    (False, True, False)
    """
    return ratio is not None and ratio > 1.0
