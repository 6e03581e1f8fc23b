"""Edema volume from the partial volume at each lesion's edge.

A visit's analysis counts the voxels past each lesion's half maximum. A voxel on a lesion's
edge holds part lesion and part normal marrow, and its signal is their mix (the scanner
averages the signal over the voxel, across the slice thickness too), so counting it as 0 or
1 makes the volume jump by whole edge voxels when a rescan places the grid differently: on
4 mm slices, a slice's worth of a lesion's face.

For the change between visits, each voxel on a lesion's edge and in the layer of marrow
around it (face neighbours in its body) counts by its share of lesion::

    share = clip((ratio - 1) / (contrast - 1), 0, 1)

``ratio`` the voxel's fluid decision image (ratio to normal marrow), ``contrast`` the median
of the lesion's voxels wholly inside it (all six face neighbours in the edema; its peak, the
95th percentile, when it has none). Those inside voxels count 1, as do edema voxels without
a marrow ratio (the wall layer): noise in a lesion's core does not enter, and only the edge
is weighted. The average signal is linear in the tissue mix, so the weighted edge follows
the lesion's surface between voxels instead of rounding it to whole voxels.

Each visit's lesion takes its own contrast, as its half maximum takes its own peak. One
contrast for a finding seen at both visits (the larger of its two) was tried on the tuning
test-retest pairs and spread the totals more than counting (docs/followup.md): the level
of a lesion's core differs between two scans of it, and each visit's edge follows its own.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.segment import FACE_NEIGHBOURS, region_peaks
from bmetoolkit.volume import grown_box, occupied_box

__all__ = ["edema_shares", "lesion_contrasts"]


def lesion_contrasts(
    lesions: NDArray[np.integer],
    n: int,
    ratio: NDArray[np.floating],
    inside: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """Each lesion's contrast (index = number): the median ``ratio`` of its voxels in
    ``inside`` (those wholly inside the edema), or its peak
    (:func:`bmetoolkit.segment.region_peaks`) when it has none with a finite ratio.

    >>> lesions = np.array([[[1, 1, 1, 2]]])
    >>> inside = np.array([[[False, True, False, False]]])
    >>> ratio = np.array([[[2.0, 3.0, 2.2, 1.8]]])
    >>> lesion_contrasts(lesions, 2, ratio, inside).round(2).tolist()
    [nan, 3.0, 1.8]
    """
    out = region_peaks(lesions, n, ratio)
    core = np.where(inside & np.isfinite(ratio), lesions, 0)
    for number, box in enumerate(ndimage.find_objects(core, max_label=n), start=1):
        if box is not None:
            out[number] = float(np.median(ratio[box][core[box] == number]))
    return out


def edema_shares(
    bme: NDArray[np.bool_],
    lesions: NDArray[np.integer],
    ratio: NDArray[np.floating],
    bodies: NDArray[np.integer],
) -> NDArray[np.float32]:
    """Each voxel's share of edema (see the module description).

    Parameters
    ----------
    bme : ndarray of bool
        The visit's edema (the wall layer included).
    lesions : ndarray of int
        The marrow edema's lesions (numbers, 0 elsewhere), each within one body.
    ratio : ndarray
        The fluid decision image (NaN outside the marrow).
    bodies : ndarray of int
        Body labels: a lesion's surrounding layer stays in its body.

    Returns
    -------
    ndarray of float32
        1 inside the edema, the share on its lesions' edges and in the layer around them,
        0 elsewhere; the sum is the weighted volume in voxels. A lesion whose contrast is
        not above 1 counts its voxels whole.

    Examples
    --------
    >>> bme = np.zeros((3, 3, 7), bool)
    >>> bme[:, :, 2:5] = True  # a lesion 3 voxels thick at 3.0 x, a 2.0 x voxel beside it
    >>> ratio = np.ones((3, 3, 7))
    >>> ratio[:, :, 1:5] = [2.0, 3.0, 3.0, 3.0]
    >>> shares = edema_shares(bme, bme.astype(int), ratio, np.ones((3, 3, 7), int))
    >>> shares[1, 1].tolist()
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    shares = bme.astype(np.float32)
    if not (lesions > 0).any():
        return shares
    box = grown_box(occupied_box(lesions > 0), 1, bme.shape)
    inside, numbers, values = bme[box], lesions[box], ratio[box]
    interior = ndimage.binary_erosion(inside, FACE_NEIGHBOURS, border_value=0)
    contrast = lesion_contrasts(numbers, int(numbers.max()), values, interior)
    spread = ndimage.grey_dilation(numbers, footprint=FACE_NEIGHBOURS, mode="constant", cval=0)
    owner = np.where(numbers > 0, numbers, spread)
    body_of = np.zeros(len(contrast), np.int64)
    found = numbers > 0
    body_of[numbers[found]] = bodies[box][found]
    layer = (owner > 0) & ~inside & np.isfinite(values) & (bodies[box] == body_of[owner])
    edge = found & ~interior & np.isfinite(values)
    weighted = edge | layer
    level = contrast[owner[weighted]]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.clip((values[weighted] - 1) / (level - 1), 0, 1)
    whole = ~np.isfinite(level) | (level <= 1)
    share = np.where(whole, inside[weighted].astype(np.float64), share)
    part = shares[box]
    part[weighted] = share
    shares[box] = part
    return shares
