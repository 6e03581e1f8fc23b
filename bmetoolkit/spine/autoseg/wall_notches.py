"""Notches along SI in a body's outline closed (T1 path, after the checks).

A vertebral body's outline is a closed cortical surface: in any one (AP, LR) column of
voxels the body runs along SI without a break, apart from the basivertebral foramen at the
middle of the posterior wall. Where the marrow mask left out a lesion's rim or a
partial-volume voxel at the wall, the outline found from it is notched: a column holds the
body above and below a gap of a voxel or a few. Such a notch puts marrow at the body's
surface, and the analysis reads a body's outermost voxel layer as partial volume with what
lies outside it (no edema starts there, no Modic change is attached through it), so on
tuning phantoms a Modic I change at an endplate corner whose outline was notched was read
as a central edema, smaller than drawn (tuning seed 300's T11). Closing each body along SI
over gaps of at most ``max_mm`` fills the notches; it never reaches past the body's ends
(a closing adds nothing beyond a body's first and last voxel of a column), and a body's
anterior waist, concave over most of its height, is far taller than a notch.
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
    out = bodies
    added = 0
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        # Every gap lies inside the body's box; padded so that the box's ends stay open.
        pad = ((0, 0), (gap, gap), (0, 0))
        mine = np.pad(bodies[box] == label, pad)
        closed = ndimage.binary_closing(mine, segment)[:, gap:-gap]
        take = closed & (bodies[box] == 0)
        if take.any():
            out = out.copy() if out is bodies else out
            out[box][take] = label
            added += int(take.sum())
    return out, added
