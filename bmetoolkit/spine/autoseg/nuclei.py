"""Bodies cut at the discs whose bright nucleus shows, on a fat-suppressed image alone.

On a STIR (or fat-suppressed T2) the annulus and a degenerated disc's rim are
dark-intermediate like suppressed marrow, and the dark endplate between them, one voxel
thick and blurred across 3-5 mm slices, is lost in places: a body then runs on into the
annulus beyond its endplate, around the nucleus, and on the lateral slices (beside the
nucleus) across the whole disc (tuning seed 65 from a STIR alone: 50 mL of annulus in the
bodies). A healthy nucleus is bright on every fluid-sensitive image (water), so where one
shows between two bodies it marks the disc: it fills the disc's central height from
endplate to endplate. Here, on the mid-sagittal slab, bright pixels (above
:data:`NUCLEUS_FACTOR` times the bodies' own median signal) with a body within
:data:`SEARCH_MM` above and a *different* body within it below are the nuclei; each
nucleus' superior and inferior outline is fitted with a straight line (the endplates'
tilt), and the voxels of those two bodies between the two lines, on every slice and across
the bodies' whole depth, are taken out of them (the disc is a plate as wide as the bodies).
Each body keeps its largest connected part. A bright spot inside one body (edema, a
haemangioma) has the same body above and below it and is left alone; a degenerated disc
without a bright nucleus is not cut (its rim keeps the marrow mask apart or not, as before).

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.midline import MID_SLAB_MM

__all__ = ["cut_at_nuclei"]

Labels = NDArray[np.int32]

#: A nucleus is brighter than this many times the bodies' median signal (water against
#: suppressed fat; on the randomized phantoms' STIR the nuclei are 2.3-3.6 times the marrow,
#: edema 1.4-2 times).
NUCLEUS_FACTOR = 2.0
#: A nucleus pixel has a body within this distance (mm) above and another below it.
SEARCH_MM = 8.0
#: Nuclei smaller than this (mm^2, on the mid-sagittal slab) are noise or a vessel.
MIN_AREA_MM2 = 15.0
#: In-plane smoothing (mm) of the image before the threshold.
SMOOTH_MM = 0.75


def _first_label(sections: Labels, steps: int, direction: int) -> Labels:
    """Per pixel, the first body label met within ``steps`` rows along SI (0 if none)."""
    out = np.zeros_like(sections)
    for k in range(steps, 0, -1):  # nearer rows overwrite further ones
        shifted = np.zeros_like(sections)
        if direction > 0:
            shifted[:, :-k] = sections[:, k:]
        else:
            shifted[:, k:] = sections[:, :-k]
        out = np.where(shifted > 0, shifted, out)
    return out


def _outline_lines(
    component: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Straight lines (SI row as a polynomial in AP) through a component's top and bottom."""
    columns = np.flatnonzero(component.any(axis=1))
    if columns.size < 3:
        return None
    tops = np.array([np.flatnonzero(component[a]).max() for a in columns], float)
    bottoms = np.array([np.flatnonzero(component[a]).min() for a in columns], float)
    return np.polyfit(columns, tops, 1), np.polyfit(columns, bottoms, 1)


def cut_at_nuclei(
    bodies: Labels, image: NDArray[np.float32], midline: float, spacing: NDArray
) -> tuple[Labels, int]:
    """Take the disc plates out of the bodies where a bright nucleus shows between two.

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels, canonical (AP, SI, LR) axes.
    image : ndarray
        The fat-suppressed image the bodies were read from.
    midline : float
        Left-right index of the canal midline.
    spacing : ndarray, shape (3,)

    Returns
    -------
    bodies : ndarray of int32
    discs : int
        How many nuclei cut bodies.

    Examples
    --------
    >>> bodies = np.zeros((20, 30, 3), np.int32)
    >>> bodies[4:16, 2:15], bodies[4:16, 15:28] = 1, 2  # two bodies joined across a disc
    >>> image = np.ones(bodies.shape, np.float32)
    >>> image[8:12, 12:18] = 3.0  # the disc's bright nucleus, not in the bodies
    >>> bodies[8:12, 12:18] = 0
    >>> cut, discs = cut_at_nuclei(bodies, image, 1.0, np.ones(3))
    >>> discs, sorted(np.unique(cut[:, 12:18]).tolist())
    (1, [0])
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    lr = np.abs(np.arange(bodies.shape[2]) - midline) * float(spacing[2])
    mid = lr <= max(MID_SLAB_MM, 0.6 * float(spacing[2]))
    if int(bodies.max()) < 2 or not mid.any():
        return bodies, 0
    level = float(np.median(image[:, :, mid][bodies[:, :, mid] > 0]))
    sigma = np.array([SMOOTH_MM / s for s in spacing[:2]] + [0.0])
    smooth = ndimage.gaussian_filter(image[:, :, mid], sigma)
    bright = (smooth > NUCLEUS_FACTOR * level).any(axis=2)
    sections = bodies[:, :, mid].max(axis=2)
    steps = max(1, round(SEARCH_MM / float(spacing[1])))
    above, below = _first_label(sections, steps, 1), _first_label(sections, steps, -1)
    between = bright & (sections == 0) & (above > 0) & (below > 0) & (above != below)
    parts, n = ndimage.label(between)
    out, discs = bodies.copy(), 0
    pixel_mm2 = float(spacing[0] * spacing[1])
    for index in range(1, n + 1):
        component = parts == index
        if component.sum() * pixel_mm2 < MIN_AREA_MM2:
            continue
        lines = _outline_lines(component)
        if lines is None:
            continue
        upper, lower = _mode(above[component]), _mode(below[component])
        ap = np.arange(bodies.shape[0], dtype=float)
        top, bottom = np.polyval(lines[0], ap), np.polyval(lines[1], ap)
        si = np.arange(bodies.shape[1], dtype=float)
        plate = (si[None, :] >= bottom[:, None] - 0.5) & (si[None, :] <= top[:, None] + 0.5)
        pair_voxels = (out == upper) | (out == lower)
        cut = pair_voxels & plate[:, :, None]
        if cut.any():
            out[cut] = 0
            discs += 1
    return _largest_parts(out), discs


def _mode(values: NDArray[np.int32]) -> int:
    """The most frequent value."""
    found, counts = np.unique(values, return_counts=True)
    return int(found[np.argmax(counts)])


def _largest_parts(bodies: Labels) -> Labels:
    """Each body reduced to its largest connected part."""
    out = bodies.copy()
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        own = bodies[box] == label
        parts, n = ndimage.label(own)
        if n > 1:
            largest = int(np.argmax(np.bincount(parts.ravel())[1:])) + 1
            out[box][own & (parts != largest)] = 0
    return out
