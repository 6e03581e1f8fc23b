"""Signed distance functions of simple solids, vectorised over points (mm, negative inside).

The knee's bones and soft tissues are unions of these solids. Ellipsoid and ellipse
distances use the first-order approximation ``k0 (k0 - 1) / k1`` (exact on spheres, close to
the surface elsewhere), which is what thin shells (cortex, cartilage) need.

Examples
--------
>>> x, y, z = (np.array([0.0, 12.0], np.float32),) * 3
>>> ellipsoid(x, y * 0, z * 0, (0, 0, 0), (10, 10, 10)).round(3).tolist()
[-10.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "capped_cylinder",
    "ellipsoid",
    "rounded_box",
    "segment",
    "smooth_union",
    "transform",
]

Array = NDArray[np.float32]
Vec3 = Sequence[float]


def _ellipse_distance(parts: Sequence[Array], radii: Sequence[float]) -> Array:
    """Approximate signed distance to an ellipse or ellipsoid centred at the origin."""
    k0 = np.sqrt(sum((p / np.float32(r)) ** 2 for p, r in zip(parts, radii, strict=True)))
    k1 = np.sqrt(sum((p / np.float32(r * r)) ** 2 for p, r in zip(parts, radii, strict=True)))
    ratio = np.where(k1 > 1e-6, k0 / np.maximum(k1, np.float32(1e-6)), np.float32(min(radii)))
    return (k0 - 1) * ratio


def ellipsoid(x: Array, y: Array, z: Array, centre: Vec3, radii: Vec3) -> Array:
    """Signed distance (mm) to an axis-aligned ellipsoid."""
    return _ellipse_distance((x - centre[0], y - centre[1], z - centre[2]), radii)


def capped_cylinder(
    x: Array,
    y: Array,
    z: Array,
    centre_xy: tuple[float, float],
    radii_xy: tuple[float, float],
    z_range: tuple[float, float],
    rounding_mm: float = 0.0,
) -> Array:
    """Signed distance to an elliptic cylinder along z between ``z_range``, edges rounded.

    >>> p = np.array([0.0], np.float32)
    >>> float(capped_cylinder(p, p, p + 12, (0, 0), (5, 5), (-10, 10))[0])
    2.0
    """
    across = _ellipse_distance((x - centre_xy[0], y - centre_xy[1]), radii_xy)
    along = np.maximum(z_range[0] - z, z - z_range[1])
    r = np.float32(rounding_mm)
    qa, qb = across + r, along + r
    outside = np.sqrt(np.maximum(qa, 0) ** 2 + np.maximum(qb, 0) ** 2)
    return outside + np.minimum(np.maximum(qa, qb), 0) - r


def rounded_box(dx: Array, dy: Array, dz: Array, rounding_mm: float) -> Array:
    """Signed distance to a box with rounded edges from the three per-axis excesses.

    ``dx``, ``dy``, ``dz`` are, per axis, the distance beyond the box's half-extent plus the
    rounding (so a tapered or curved box only changes how they are computed).

    >>> p = np.float32([3.0])
    >>> float(rounded_box(p + 1, p * 0 - 5, p * 0 - 5, 1.0)[0])
    3.0
    """
    r = np.float32(rounding_mm)
    outside = np.sqrt(np.maximum(dx, 0) ** 2 + np.maximum(dy, 0) ** 2 + np.maximum(dz, 0) ** 2)
    return outside + np.minimum(np.maximum(np.maximum(dx, dy), dz), 0) - r


def segment(
    x: Array, y: Array, z: Array, start: Vec3, end: Vec3, radius: float, flatten_x: float = 1.0
) -> Array:
    """Signed distance to a capsule around the segment ``start``-``end``.

    ``flatten_x`` > 1 widens the capsule along x by that factor (a flat tendon).

    >>> p = np.array([0.0], np.float32)
    >>> float(segment(p, p + 5, p, (0, 0, -10), (0, 0, 10), 2.0)[0])
    3.0
    """
    f = np.float32(flatten_x)
    a = np.array([start[0] / f, start[1], start[2]], np.float32)
    d = np.array([(end[0] - start[0]) / f, end[1] - start[1], end[2] - start[2]], np.float32)
    px, py, pz = x / f - a[0], y - a[1], z - a[2]
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / np.float32(d @ d), 0, 1)
    return np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2) - np.float32(
        radius
    )


def smooth_union(a: Array, b: Array, k_mm: float) -> Array:
    """Union of two solids with a fillet of about ``k_mm`` where they meet.

    >>> float(smooth_union(np.float32(1.0), np.float32(5.0), 1.0))
    1.0
    """
    k = np.float32(k_mm)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def transform(points: NDArray, matrix: NDArray, offset: NDArray) -> Array:
    """``points @ matrix.T + offset`` for points (N, 3), in float32, column by column.

    Written out instead of a matrix product: a (N, 3) x (3, 3) product goes through BLAS,
    whose threads only contend on a busy machine.

    >>> transform(np.ones((1, 3)), np.eye(3) * 2, np.array([0.0, 1.0, 0.0])).tolist()
    [[2.0, 3.0, 2.0]]
    """
    p = np.asarray(points, np.float32)
    m = np.asarray(matrix, np.float32)
    out = np.empty(p.shape, np.float32)
    for row in range(3):
        out[:, row] = m[row, 0] * p[:, 0] + m[row, 1] * p[:, 1] + m[row, 2] * p[:, 2] + offset[row]
    return out
