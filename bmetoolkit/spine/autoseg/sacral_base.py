"""The sacral base read on the marrow below the caudal-most body's disc.

The level naming anchors on S1. When S1 itself is not among the bodies (on the T2 alone it
can be joined to marrow-like tissue in front of or below it, and that segment is dropped),
the caudal-most body is L5: a well-formed disc lies below it, then bone. What tells that
bone from a lumbar body is the same as for S1 among the bodies: its superior surface (the
sacral base) is tilted markedly more, anterior-down, than the body above (the lumbosacral
angle); the L5-S1 disc is the most wedge-shaped of the spine. This module reads that
surface on the marrow mask (not on a segment), on the mid-sagittal slab: per AP column of
the body's central part, the first run of marrow rows below the body's own inferior
outline, and a robust line through them.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import theilslopes

__all__ = ["bone_surface_below"]

#: The surface is searched this far (mm) below the body's inferior outline, per column:
#: a disc with both endplates' concavity and the dark cortex on each side (the L5-S1 disc
#: is the tallest anteriorly, up to about 20 mm on the T2-alone marrow mask).
SEARCH_MM = 30.0
#: A pixel of the mid-sagittal slab is marrow when this share of its slices is.
SLAB_MARROW_SHARE = 0.5
#: The bone starts at the first run of marrow rows this long (mm).
BONE_RUN_MM = 3.0
#: Columns of the body's central part: this fraction of its AP extent is left out at each
#: end (its corners, the tissue at the disc's front and the canal behind).
CENTRAL_MARGIN = 0.2
#: At least this many columns must find the bone, and this share of the central ones.
MIN_COLUMNS = 5
MIN_COLUMN_SHARE = 0.6


def bone_surface_below(
    section: NDArray[np.bool_], slab_marrow: NDArray[np.bool_], spacing: NDArray
) -> tuple[float, float] | None:
    """Inclination (deg, anterior-down) of the bone's surface below a body, and its depth.

    Parameters
    ----------
    section : ndarray of bool, shape (n_ap, n_si)
        The body's mid-sagittal section.
    slab_marrow : ndarray of bool, shape (n_ap, n_si, n_lr)
        The marrow mask on the same mid-sagittal slab.
    spacing : array_like
        Pixel size (mm); the first two entries (AP, SI) are used.

    Returns
    -------
    (angle_deg, depth_mm) or None
        The Theil-Sen line through the top of the bone below each central column, and the
        median distance (mm) from the body's outline to it (the disc with its endplates).
        None when fewer than :data:`MIN_COLUMNS` (or :data:`MIN_COLUMN_SHARE` of the
        central columns) find a run of :data:`BONE_RUN_MM` of marrow within
        :data:`SEARCH_MM` below the body.

    Examples
    --------
    >>> section = np.zeros((30, 80), bool); section[5:25, 50:70] = True
    >>> marrow = np.zeros((30, 80, 3), bool)
    >>> for a in range(30):  # bone below a wedge-shaped disc, lower by 1 mm per 2 mm AP
    ...     marrow[a, : 40 - a // 2, :] = True
    >>> bone_surface_below(section, marrow, np.ones(3))
    (26.6, 18.0)
    """
    pixel = np.asarray(spacing, dtype=np.float64)[:2]
    columns = np.flatnonzero(section.any(axis=1))
    if columns.size == 0:
        return None
    margin = int(CENTRAL_MARGIN * (columns[-1] - columns[0] + 1))
    central = columns[(columns >= columns[0] + margin) & (columns <= columns[-1] - margin)]
    reach = round(SEARCH_MM / pixel[1])
    run = max(1, round(BONE_RUN_MM / pixel[1]))
    bony = slab_marrow.mean(axis=2) > SLAB_MARROW_SHARE
    tops = []
    for a in central:
        lowest = int(np.argmax(section[a]))
        below = bony[a, max(lowest - reach, 0) : lowest][::-1]  # from the body downwards
        if below.size < run:
            continue
        runs = np.convolve(below.astype(np.int32), np.ones(run, np.int32), "valid") >= run
        if runs.any():
            k = int(np.argmax(runs))
            tops.append((a, lowest - 1 - k, k + 1))
    if len(tops) < max(MIN_COLUMNS, MIN_COLUMN_SHARE * central.size):
        return None
    found = np.array(tops, dtype=np.float64)
    slope = theilslopes(found[:, 1] * pixel[1], found[:, 0] * pixel[0])[0]
    depth = float(np.median(found[:, 2])) * float(pixel[1])
    return round(float(-np.degrees(np.arctan(slope))), 1), round(depth, 1)
