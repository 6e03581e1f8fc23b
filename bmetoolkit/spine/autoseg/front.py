"""The bodies' anterior wall read from the discs: no body reaches further forward than its discs.

Without a T1, the tissue in front of the bodies (bowel, vessels' walls, muscle) can have the
marrow's T2 signal, and the thin dark cortex of the anterior wall, blurred across 3-5 mm
slices, is then all that separates them; where it is lost, every body joins the tissue in
front into one comb-shaped segment, which the size checks drop. The discs do not have that
problem: a healthy nucleus is brighter and an annulus or degenerated disc darker than marrow,
so along a row through a disc the non-marrow run from the canal spans the disc's whole depth,
and where marrow-like signal resumes is the disc's anterior edge. A vertebral body's anterior
wall runs between the anterior edges of the discs above and below it (concave by a millimetre
or two), so marrow further forward than the line joining them, plus a margin, is not body.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["disc_fronts", "limit_to_disc_fronts"]

Mask = NDArray[np.bool_]

#: The mid-sagittal marrow is read within this distance (mm) of the canal midline.
MID_HALF_WIDTH_MM = 4.0
#: A row is a disc row when no marrow starts within this depth (mm) in front of the canal
#: (bodies start at the canal; discs are 25-50 mm deep).
DISC_MIN_DEPTH_MM = 12.0
#: Marrow "resumes" in front of a disc when this many mm in a row along AP are marrow-like.
RESUME_RUN_MM = 2.0
#: Disc rows separated by at most this many mm along SI belong to the same disc; a disc is
#: at least this tall (mm) to count.
DISC_JOIN_MM = 1.5
DISC_MIN_HEIGHT_MM = 2.0
#: Percentile of a disc's anterior edge over its rows (lesions next to an endplate can make
#: a few body rows look like disc rows with a shallower edge).
EDGE_PERCENTILE = 75.0
#: Marrow this far (mm) in front of the line joining the discs' anterior edges is kept (the
#: anterior wall bulges a little; partial volume).
FRONT_MARGIN_MM = 2.0


def disc_fronts(
    marrow: Mask, front: NDArray[np.float64], midline: float, rows: tuple[int, int], spacing
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """SI centre row and anterior-edge AP index of each disc seen in the mid-sagittal marrow.

    Parameters
    ----------
    marrow : ndarray of bool, shape (n_ap, n_si, n_lr)
        Marrow-like voxels of the column.
    front : ndarray, shape (n_si,)
        The canal's anterior wall (AP index) per SI row.
    midline : float
        Left-right index of the canal midline.
    rows : tuple of 2 ints
        First and last SI rows with CSF (discs are sought between them).
    spacing : array_like, shape (3,)

    Returns
    -------
    centres, edges : ndarray
        One entry per disc whose anterior edge was found (marrow-like signal resumes in
        front of it), in cranial-to-caudal index order.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    n_ap, n_si, n_lr = marrow.shape
    half = MID_HALF_WIDTH_MM / spacing[2]
    slab = np.abs(np.arange(n_lr) - midline) <= max(half, 0.5)
    if not slab.any():
        return np.empty(0), np.empty(0)
    mid = marrow[:, :, slab].mean(axis=2) >= 0.5
    run = max(1, round(RESUME_RUN_MM / spacing[0]))
    counts = np.concatenate([np.zeros((1, n_si), np.int32), np.cumsum(mid, axis=0)])
    ahead = np.minimum(np.arange(n_ap) + run, n_ap)
    resumes = (counts[ahead] - counts[:-1]) >= run  # mid[a : a + run] all marrow
    ap = np.arange(n_ap)[:, None]
    start = np.ceil(front)[None, :] + 1
    candidates = (resumes > 0) & (ap >= start)
    found = candidates.any(axis=0)
    first = np.where(found, np.argmax(candidates, axis=0), -1)
    depth_mm = (first - front) * spacing[0]
    si = np.arange(n_si)
    disc_row = found & (depth_mm >= DISC_MIN_DEPTH_MM) & (si >= rows[0]) & (si <= rows[1])
    join = max(1, round(DISC_JOIN_MM / spacing[1]))
    grouped, n = ndimage.label(ndimage.binary_closing(disc_row, np.ones(2 * join + 1)) & found)
    centres, edges = [], []
    for label in range(1, n + 1):
        members = np.flatnonzero((grouped == label) & disc_row)
        if members.size * spacing[1] < DISC_MIN_HEIGHT_MM:
            continue
        centres.append(float(members.mean()))
        edges.append(float(np.percentile(first[members], EDGE_PERCENTILE)))
    return np.asarray(centres), np.asarray(edges)


def limit_to_disc_fronts(
    marrow: Mask, front: NDArray[np.float64], midline: float, rows: tuple[int, int], spacing
) -> Mask:
    """``marrow`` without what lies in front of the line joining the discs' anterior edges.

    The line is interpolated along SI between disc centres and held constant beyond the
    first and last disc, plus ``FRONT_MARGIN_MM``. With fewer than two discs found the
    marrow is returned unchanged.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    centres, edges = disc_fronts(marrow, front, midline, rows, spacing)
    if centres.size < 2:
        return marrow
    limit = np.interp(np.arange(marrow.shape[1]), centres, edges) + FRONT_MARGIN_MM / spacing[0]
    beyond = np.arange(marrow.shape[0])[:, None] > limit[None, :]
    return marrow & ~beyond[:, :, None]
