"""Geometry of a body's sagittal section: endplate inclination and an oriented box.

Sections are 2D boolean arrays indexed (anterior, superior) with pixel ``spacing`` (mm).
Angles are in degrees, positive when the anterior end is lower (anterior-down), as the
lordotic lumbar and sacral endplates are.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

__all__ = [
    "body_angle",
    "box_depth",
    "consistent_angles",
    "endplate_angles",
    "hull_image",
    "image_endplate_angles",
    "in_plane_distance",
    "label_centroids",
    "surface_angle",
    "theil_sen_slope",
]

#: Part of the section's extent along the endplate (centred) used to fit the endplate.
ENDPLATE_FIT_FRACTION = 0.7
#: Rounds of the endplate line fit, and its bin width along the endplate (mm).
ENDPLATE_FIT_ITERATIONS = 3
ENDPLATE_BIN_MM = 1.0
#: Endplates of one body closer than this (deg) count as parallel (their mean is used).
PARALLEL_TOLERANCE_DEG = 4.0
#: Percentiles of the section's extent that bound the oriented box (ignores stray pixels).
BOX_PERCENTILES = (1.0, 99.0)
#: An endplate's cortex on a fat-suppressed image is darker than this fraction of the body's
#: own median signal (``marrow_fluid_low`` of the marrow mask, ``lower_edge.DARK_FRACTION``:
#: what is darker is not marrow).
CORTEX_DARK_FRACTION = 0.7
#: An endplate read on the image needs its cortex in at least this share of the columns
#: it is read on, and in at least :data:`MIN_CORTEX_COLUMNS` of them.
MIN_CORTEX_SHARE = 0.5
MIN_CORTEX_COLUMNS = 5


#: The slice thickness given to the transforms of :func:`in_plane_distance`'s callers (mm):
#: far more than any in-plane distance, so a voxel's nearest feature lies in its own slice.
IN_PLANE_SLICE_MM = 1e3


def in_plane_distance(
    background: NDArray[np.bool_], spacing: NDArray, return_indices: bool = False
) -> NDArray[np.float64] | tuple[NDArray[np.float64], NDArray[np.int32]]:
    """In-plane distance (mm) of each voxel to the nearest False voxel of its sagittal slice.

    The numbers (and nearest-voxel indices) of ``ndimage.distance_transform_edt(background,
    sampling=(spacing[0], spacing[1], IN_PLANE_SLICE_MM), return_indices=...)``, computed
    one slice at a time: the 3D transform first computes each slice's 2D transform (AP x
    SI), then per AP x SI position keeps the nearest of the slices' features along LR,
    which is the voxel's own slice's whenever that slice has a False voxel (every
    in-plane distance is far below :data:`IN_PLANE_SLICE_MM`). The pass along LR, a third
    of the work, is left out; the 3D transform runs as before when a slice has no False
    voxel (its voxels' nearest feature lies in another slice).

    Parameters
    ----------
    background : ndarray of bool, 3D (AP, SI, LR)
        Distances are measured to its False voxels.
    spacing : array_like
        Voxel size (mm); the first two are used.
    return_indices : bool
        Also return the nearest False voxel's indices, shape ``(3, *background.shape)``.

    Returns
    -------
    distance : ndarray of float64
    indices : ndarray of int32, only with ``return_indices``
    """
    background = np.asarray(background, dtype=bool)
    sampling = (float(spacing[0]), float(spacing[1]))
    if background.ndim != 3 or not (~background).any(axis=(0, 1)).all():
        return ndimage.distance_transform_edt(
            background, sampling=(*sampling, IN_PLANE_SLICE_MM), return_indices=return_indices
        )
    distance = np.empty(background.shape)
    if not return_indices:
        for k in range(background.shape[2]):
            distance[:, :, k] = ndimage.distance_transform_edt(
                background[:, :, k], sampling=sampling
            )
        return distance
    indices = np.empty((3, *background.shape), np.int32)
    indices[2] = np.arange(background.shape[2])
    for k in range(background.shape[2]):
        distance[:, :, k], (indices[0, :, :, k], indices[1, :, :, k]) = (
            ndimage.distance_transform_edt(
                background[:, :, k], sampling=sampling, return_indices=True
            )
        )
    return distance, indices


def label_centroids(labels: NDArray[np.integer], index: NDArray[np.integer]) -> NDArray[np.float64]:
    """Voxel-index centroid of each label of ``index`` in ``labels``, one row per label.

    The same numbers as ``np.array(ndimage.center_of_mass(labels > 0, labels, index))``
    (NaN for a label with no voxel), read from the labelled voxels alone instead of from
    four weighted passes over the whole array: each coordinate sum is a sum of integers,
    exact in float64 in any order, divided by the label's voxel count as scipy divides it.

    Parameters
    ----------
    labels : ndarray of int
        Label array (non-negative), any number of dimensions.
    index : array_like of int
        Labels (>= 1) whose centroids are returned.

    Returns
    -------
    ndarray, shape (len(index), labels.ndim)
    """
    index = np.asarray(index, dtype=np.intp).reshape(-1)
    where = np.nonzero(labels)
    found = labels[where]
    size = max(int(found.max(initial=0)), int(index.max(initial=0))) + 1
    counts = np.bincount(found, minlength=size).astype(np.float64)[index]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack(
            [np.bincount(found, weights=axis, minlength=size)[index] / counts for axis in where],
            axis=1,
        ).reshape(len(index), labels.ndim)


def surface_angle(section: NDArray[np.bool_], spacing: NDArray) -> float:
    """Inclination (deg, anterior-down) of the superior surface of a 2D section.

    The section's convex hull is measured, so the line runs from corner to corner as a
    reader measures it, whatever a lesion bit out of the endplate between the corners.
    The top of the hull is fitted with a robust (Theil-Sen) line in a frame turned to the
    current estimate, a few times: in the image frame the top of a tilted body also runs
    over part of its posterior wall, which would flatten the fit. NaN for a section too
    small to measure.
    """
    if section.sum() < 10:
        return float("nan")
    hull = _hull_points(section) * spacing[:2]
    angle = 0.0  # of the endplate from the AP axis, counter-clockwise (superior) positive
    for _ in range(ENDPLATE_FIT_ITERATIONS):
        top, keep = _tops(hull, angle)
        if keep.sum() < 3:
            return float("nan")
        slope = theil_sen_slope(np.flatnonzero(keep) * ENDPLATE_BIN_MM, top[keep])
        angle += float(np.arctan(slope))
    return float(-np.degrees(angle))


def theil_sen_slope(x: NDArray, y: NDArray) -> float:
    """The Theil-Sen slope of ``y`` on ``x``: the median of the slopes between all pairs of
    points with different ``x`` (``scipy.stats.theilslopes``' slope, without its
    confidence interval, which is not used here and costs most of its time).

    Examples
    --------
    >>> theil_sen_slope(np.arange(5.0), np.array([0.0, 1.0, 2.0, 30.0, 4.0]))
    1.0
    """
    dx = np.subtract.outer(x, x).astype(float)
    dy = np.subtract.outer(y, y).astype(float)
    pairs = dx > 0
    return float(np.median(dy[pairs] / dx[pairs]))


def hull_image(section: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``convex_hull_image(section)``, the hull found within the section's bounding box.

    The same pixels: the hull of a mask lies within the box of its pixels (its corners lie
    half a pixel beyond the outermost pixel centres), and its corners, on exact
    half-integers, move by the box's integer offset; only the grid the pixels are tested
    on is smaller.
    """
    if not section.any():
        return convex_hull_image(section)  # empty, with skimage's warning
    rows = np.flatnonzero(section.any(axis=1))
    cols = np.flatnonzero(section.any(axis=0))
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    hull = np.zeros(section.shape, bool)
    hull[box] = convex_hull_image(section[box])
    return hull


def _hull_points(section: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Pixel indices of the section's convex hull, the hull found within the section's
    bounding box (a body's section is a small part of the slice it is read from)."""
    rows = np.flatnonzero(section.any(axis=1))
    cols = np.flatnonzero(section.any(axis=0))
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    origin = np.array([rows[0], cols[0]])
    return np.column_stack(np.nonzero(convex_hull_image(section[box]))) + origin


def _tops(points: NDArray, angle: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Highest point per bin along the line at ``angle`` (rad), and the central bins."""
    along = points @ np.array([np.cos(angle), np.sin(angle)])
    normal = points @ np.array([-np.sin(angle), np.cos(angle)])
    bins = ((along - along.min()) // ENDPLATE_BIN_MM).astype(int)
    top = np.full(bins.max() + 1, -np.inf)
    np.maximum.at(top, bins, normal)
    index = np.arange(top.size)
    lo, hi = np.percentile(
        index, [50 * (1 - ENDPLATE_FIT_FRACTION), 50 * (1 + ENDPLATE_FIT_FRACTION)]
    )
    return top, (index >= lo) & (index <= hi) & np.isfinite(top)


def endplate_angles(section: NDArray[np.bool_], spacing: NDArray) -> tuple[float, float]:
    """Inclinations (deg, anterior-down) of a section's superior and inferior surfaces."""
    return surface_angle(section, spacing), -surface_angle(section[:, ::-1], spacing)


def image_endplate_angles(
    section: NDArray[np.bool_], image: NDArray, spacing: NDArray, window_mm: float
) -> tuple[float, float]:
    """Inclinations (deg, anterior-down) of a body's two endplates read on the image.

    On a fat-suppressed image (STIR) the endplate's cortex is a dark line between the
    suppressed marrow and the disc (the nucleus bright, the annulus about as dark as the
    marrow). In each AP column of the central :data:`ENDPLATE_FIT_FRACTION` of the section,
    the run of pixels darker than :data:`CORTEX_DARK_FRACTION` of the section's median
    signal nearest the section's face within ``window_mm`` (inside and outside it, along
    SI; inside first at equal distance) is the endplate there, at its darkest pixel (not
    the darkest pixel of the window: across a disc thinner than the window the
    neighbour's cortex lies in it too); a robust line (:func:`theil_sen_slope`) through those
    pixels is the endplate. A reader measures the endplate he sees, not a drawn outline:
    where the segment took tissue beyond its endplate or stopped short of it, its outline
    is tilted by that, while the cortex stays where the bone ends, and columns with no
    cortex near the face (soft tissue joined at a corner) give nothing.

    Parameters
    ----------
    section : ndarray of bool, shape (n_ap, n_si)
        The body on the mid-sagittal slab, canonical (anterior, superior) axes.
    image : ndarray, same shape
        The fat-suppressed image on that slab.
    spacing : array_like
        Pixel size (mm); the first two entries (AP, SI) are used.
    window_mm : float
        How far (mm) from the section's face, on both sides, the cortex is searched.

    Returns
    -------
    (superior, inferior) : tuple of float
        NaN for an endplate whose cortex shows in fewer than :data:`MIN_CORTEX_SHARE` of
        the columns (or :data:`MIN_CORTEX_COLUMNS`): no clear endplate on the image.

    Examples
    --------
    A body 20 pixels deep whose cortex is tilted 1 pixel in 4 (14 degrees, anterior-down)
    while its segment is a flat box that took part of the disc above:

    >>> image = np.full((30, 40), 100.0)
    >>> ap = np.arange(5, 25)
    >>> image[ap, 30 - ap // 4] = 20.0  # the superior cortex
    >>> image[ap, 10 - ap // 4] = 20.0  # the inferior cortex
    >>> section = np.zeros((30, 40), bool)
    >>> section[5:25, 6:30] = True
    >>> [round(a, 1) for a in image_endplate_angles(section, image, np.ones(2), 6.0)]
    [14.0, 14.0]
    """
    spacing = np.asarray(spacing, dtype=np.float64)[:2]
    image = np.asarray(image, dtype=np.float64)
    columns = np.flatnonzero(section.any(axis=1))
    if columns.size < MIN_CORTEX_COLUMNS:
        return float("nan"), float("nan")
    rows = np.arange(section.shape[1])
    tops = np.where(section[columns], rows, -1).max(axis=1)
    bottoms = np.where(section[columns], rows, section.shape[1]).min(axis=1)
    points = np.column_stack(np.nonzero(section)) * spacing  # (AP, SI) mm
    threshold = CORTEX_DARK_FRACTION * float(np.median(image[section]))
    angles = []
    for superior, face in ((True, tops), (False, bottoms)):
        angle = 0.0  # deg, anterior-down
        for _ in range(ENDPLATE_FIT_ITERATIONS):
            ap, si, central = _cortex_points(
                columns, face, superior, points, image, threshold, spacing, window_mm, angle
            )
            keep = central & np.isfinite(si)
            if keep.sum() < max(MIN_CORTEX_COLUMNS, MIN_CORTEX_SHARE * central.sum()):
                angle = float("nan")
                break
            slope = theil_sen_slope(ap[keep], si[keep])
            angle = float(-np.degrees(np.arctan(slope)))
        angles.append(angle)
    return angles[0], angles[1]


def _cortex_points(
    columns: NDArray[np.int64],
    face: NDArray[np.int64],
    superior: bool,
    points: NDArray[np.float64],
    image: NDArray[np.float64],
    threshold: float,
    spacing: NDArray[np.float64],
    window_mm: float,
    angle_deg: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """The cortex near one face of a section, per AP column (:func:`image_endplate_angles`).

    ``points`` are the section's pixels in mm (AP, SI) and ``threshold`` the level under
    which a pixel of ``image`` is cortex-dark. Returns the columns' AP positions (mm), the
    cortex's SI position in each (mm, sub-pixel: the darkest pixel of the run of dark
    pixels nearest the face, ``superior`` or inferior, within ``window_mm`` of it; NaN
    where there is none) and whether the column's face point lies in the central
    :data:`ENDPLATE_FIT_FRACTION` of the section's extent along a line at ``angle_deg``
    (the endplate as estimated so far: the columns beyond its corners, where the face is a
    wall, and a concave endplate's uneven halves are left out).
    """
    phi = -np.radians(angle_deg)
    direction = np.array([np.cos(phi), np.sin(phi)])
    lo, hi = np.percentile(
        points @ direction, [50 * (1 - ENDPLATE_FIT_FRACTION), 50 * (1 + ENDPLATE_FIT_FRACTION)]
    )
    along = columns * spacing[0] * direction[0] + face * spacing[1] * direction[1]
    central = (along >= lo) & (along <= hi)
    n_si = image.shape[1]
    reach = int(np.ceil(window_mm / spacing[1]))
    steps = np.arange(-reach, reach + 1)
    at = face[:, None] + steps[None, :]
    inside = (at >= 0) & (at < n_si)
    values = np.where(inside, image[columns[:, None], np.clip(at, 0, n_si - 1)], np.inf)
    dark = values < threshold
    # The dark run nearest the face (inward first at equal distance), not the darkest pixel
    # of the window: across a disc thinner than the window the neighbour's cortex is there
    # too. Within that run its darkest pixel.
    outward = np.sign(steps) == (1 if superior else -1)
    nearest = np.argmin(np.where(dark, np.abs(steps) + 0.5 * outward, np.inf), axis=1)
    picked = np.arange(columns.size)
    run = np.cumsum(~dark, axis=1)  # pixels of one dark run share the count before them
    in_run = dark & (run == run[picked, nearest][:, None])
    darkest = np.argmin(np.where(in_run, values, np.inf), axis=1)
    clear = dark[picked, nearest]
    # sub-pixel: the vertex of the parabola through the darkest pixel and its two
    # neighbours (a cortex two pixels thick flips its darkest pixel from column to column)
    side = np.clip(darkest, 1, steps.size - 2)
    before, here, after = (values[picked, side + k] for k in (-1, 0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):  # columns off the image: not clear
        curve = before - 2.0 * here + after
        shift = np.where(np.isfinite(curve) & (curve > 0), 0.5 * (before - after) / curve, 0.0)
    row = np.where(
        side == darkest, at[picked, side] + np.clip(shift, -0.5, 0.5), at[picked, darkest]
    )
    si = np.where(clear, row * spacing[1], np.nan)
    return columns * spacing[0], si, central


def body_angle(section: NDArray[np.bool_], spacing: NDArray) -> float:
    """Mean inclination (deg, anterior-down) of a section's superior and inferior surfaces.

    Averaging both endplates halves the effect of a lesion that deforms one of them.
    """
    angles = np.array(endplate_angles(section, spacing))
    return float(angles[np.isfinite(angles)].mean()) if np.isfinite(angles).any() else np.nan


def consistent_angles(
    endplates: NDArray[np.float64], order: NDArray[np.int_]
) -> NDArray[np.float64]:
    """One inclination per body, from the endplate that agrees with its neighbours.

    Parameters
    ----------
    endplates : ndarray, shape (n, 2)
        Superior and inferior inclination (deg) of each body.
    order : ndarray of int, shape (n,)
        Indices of the bodies from cranial to caudal.

    Returns
    -------
    ndarray, shape (n,)
        The mean of both endplates when they are near parallel; else the endplate closer
        to the median of the neighbours' endplates (the lordosis changes slowly from one
        level to the next, a lesion biting one endplate does not).

    Examples
    --------
    >>> ends = np.array([[-8.0, -8.5], [15.0, -6.0], [-4.0, -3.5]])
    >>> consistent_angles(ends, np.array([0, 1, 2])).round(2).tolist()
    [-8.25, -6.0, -3.75]
    """
    finite = np.isfinite(endplates)
    counts = finite.sum(axis=1)
    # the mean of the finite endplates (NaN for a body with none, without a warning)
    out = np.where(counts > 0, np.where(finite, endplates, 0).sum(axis=1), np.nan)
    out = out / np.maximum(counts, 1)
    for position, body in enumerate(order):
        superior, inferior = endplates[body]
        if not np.isfinite([superior, inferior]).all():
            continue
        if abs(superior - inferior) <= PARALLEL_TOLERANCE_DEG:
            continue
        neighbours = order[max(position - 1, 0) : position + 2]
        values = endplates[neighbours[neighbours != body]].ravel()
        values = values[np.isfinite(values)]
        if values.size:
            expected = float(np.median(values))
            out[body] = (
                superior if abs(superior - expected) < abs(inferior - expected) else inferior
            )
    return out


def box_depth(
    section: NDArray[np.bool_], spacing: NDArray, angle_deg: float, shape: tuple[int, int]
) -> NDArray[np.float64]:
    """Depth (mm) inside the section's bounding box turned by ``angle_deg``, on ``shape``.

    The box is aligned with the body's endplates and bounds the section along and across
    them; positive inside, negative outside. A lesion that bites a corner or a whole
    endplate out of the marrow lies inside the box of what is left.

    Examples
    --------
    >>> square = np.zeros((10, 10), bool)
    >>> square[2:8, 2:8] = True
    >>> depth = box_depth(square, np.array([1.0, 1.0]), 0.0, (10, 10))
    >>> float(depth[5, 5]), bool(depth[0, 0] < 0)
    (2.0, True)
    """
    phi = -np.radians(angle_deg)
    along_axis = np.array([np.cos(phi), np.sin(phi)])
    normal_axis = np.array([-np.sin(phi), np.cos(phi)])
    ap, si = np.nonzero(section)
    points = np.column_stack([ap * spacing[0], si * spacing[1]])
    along, normal = points @ along_axis, points @ normal_axis
    a_lo, a_hi = np.percentile(along, BOX_PERCENTILES)
    n_lo, n_hi = np.percentile(normal, BOX_PERCENTILES)
    grid_ap, grid_si = np.meshgrid(
        np.arange(shape[0]) * spacing[0], np.arange(shape[1]) * spacing[1], indexing="ij"
    )
    grid_along = grid_ap * along_axis[0] + grid_si * along_axis[1]
    grid_normal = grid_ap * normal_axis[0] + grid_si * normal_axis[1]
    return np.minimum.reduce(
        [grid_along - a_lo, a_hi - grid_along, grid_normal - n_lo, n_hi - grid_normal]
    )
