"""Notches along SI in a body's outline closed (T1 path, after the checks).

A vertebral body's outline is a closed cortical surface: in any one (AP, LR) column of
voxels the body runs along SI without a break, apart from the basivertebral foramen at the
middle of the posterior wall. Where the marrow mask left out a partial-volume voxel at the
wall or a lesion's rim, the outline found from it is notched: a column holds the body above
and below a gap of a voxel or a few. Such a notch puts marrow on the body's surface, which
the analysis reads as the outermost voxel layer, partial volume with what lies outside it
(no edema starts there, no Modic change is attached through it). Closing each body along SI
over gaps of at most ``max_mm`` fills the notches; it never reaches past the body's ends
(a closing adds nothing beyond a body's first and last voxel of a column), never runs
through another body, and a body's anterior waist, concave over most of its height, is far
taller than a notch. A basivertebral foramen no taller than ``max_mm`` is filled too (on the
real SCT cervical T1, 28 voxels); the analysis tells a vein inside a body from edema.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["close_si_notches"]


def close_si_notches(
    bodies: NDArray[np.int32], spacing: NDArray, max_mm: float
) -> tuple[NDArray[np.int32], int]:
    """Each body's gaps along SI of at most ``max_mm`` filled, through unlabelled voxels.

    Parameters
    ----------
    bodies : ndarray of int32
        Labelled bodies (AP, SI, LR).
    spacing : ndarray
        Voxel size (mm) along AP, SI, LR.
    max_mm : float
        The tallest gap (mm, its voxels' summed extent) filled; 0 or less than one voxel
        fills none.

    Returns
    -------
    bodies : ndarray of int32
        The bodies with their notches filled (a new array when any is).
    added : int
        Voxels added.

    Examples
    --------
    A column with a two-voxel notch, another with a five-voxel one (1 mm along SI):

    >>> bodies = np.zeros((2, 9, 1), np.int32)
    >>> bodies[0, [0, 1, 4, 5], 0] = 1
    >>> bodies[1, [1, 7], 0] = 1
    >>> closed, added = close_si_notches(bodies, np.array([1.0, 1.0, 4.0]), 3.0)
    >>> closed[:, :, 0].tolist(), added
    ([[1, 1, 1, 1, 1, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 1, 0]], 2)
    """
    gap = int(np.floor(max_mm / float(spacing[1]) + 1e-9))
    if gap < 1 or not bodies.any():
        return bodies, 0
    segment = np.ones((1, gap + 1, 1), bool)  # a closing fills runs shorter than it
    along_si = np.zeros((3, 3, 3), bool)
    along_si[1, :, 1] = True
    out = bodies.copy()
    added = 0
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        # Every gap lies inside the body's box; padded so that the box's ends stay open.
        pad = ((0, 0), (gap, gap), (0, 0))
        mine = bodies[box] == label
        closed = ndimage.binary_closing(np.pad(mine, pad), segment)[:, gap:-gap]
        # Each gap is a run along SI; a run holding another body's voxel is not a notch.
        runs, n_runs = ndimage.label(closed & ~mine, along_si)
        if not n_runs:
            continue
        crossed = np.unique(runs[(bodies[box] != 0) & (runs > 0)])
        take = (runs > 0) & ~np.isin(runs, crossed) & (out[box] == 0)
        out[box][take] = label
        added += int(take.sum())
    return (out, added) if added else (bodies, 0)
