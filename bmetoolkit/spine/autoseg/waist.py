"""Tissue beyond a body's lateral wall on its lateral sections (fat-suppressed image alone).

From a STIR (or fat-suppressed T2) alone, each body's lateral sagittal sections held about
20 mL of muscle per study (tuning seeds 60-99 and 160-199: on each body's outermost section
per side about as much muscle as bone, the next section a quarter as much; two thirds of it
at the body's mid-height, within the body's front-to-back extent). A vertebral body is
waisted (its lateral wall concave from endplate to endplate, and in the axial plane a lumbar
body is kidney-shaped), so a sagittal section near its side is an hourglass: bone at the
flared endplate rims, the psoas and the crura in the concavity between them. The marrow
mask takes the section as a full rectangle: per voxel the muscle (on the phantoms 1.15 times
the body's mid-sagittal median) and the lateral marrow (0.95) overlap, and a row's or a
section's median mixes both (tried in session 23, not kept).

What separates them is the body's own cortical wall, dark on every sequence: on the lateral
section it is the dark outline of the hourglass (the wall cut obliquely). Along each
anterior-posterior row of a lateral section, walked inward from the section's anterior and
from its posterior end, the first voxel darker than ``dark`` times the body's own
mid-sagittal median (on the image smoothed in-plane over ``fluid_smooth_mm``) is the wall;
the voxels before it lie beyond the wall and are left out when they are, as a run, brighter
than the body's marrow (their median above ``bright`` times the same median: muscle, not
a fatty patch of marrow outside a dark spot). A row with no dark voxel within ``reach_mm``
of its end (the wall not seen) and a wall at the row's end (the section ends at the wall)
leave the row as it is, so a gap in the cortex or noise costs nothing but the cut there.
The mid-sagittal slab (:data:`.midline.MID_SLAB_MM` either side of the canal midline) is
never touched: there the rows end at the anterior and posterior walls and the tissue in
front is the checks' business. Afterwards each body keeps its largest connected part.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.checks import largest_part
from bmetoolkit.spine.autoseg.midline import mid_slab

__all__ = ["beyond_wall", "cut_beyond_walls"]

Labels = NDArray[np.int32]


def beyond_wall(
    section: NDArray[np.bool_],
    dark: NDArray[np.bool_],
    values: NDArray,
    bright: float,
    reach: int,
) -> NDArray[np.bool_]:
    """The voxels of a sagittal section lying beyond its dark wall along each AP row.

    Parameters
    ----------
    section : ndarray of bool, shape (n_ap, n_si)
        The body on one lateral sagittal slice.
    dark : ndarray of bool, same shape
        Voxels dark enough to be cortex.
    values : ndarray, same shape
        The image on that slice, relative to the body's marrow level (1 = marrow).
    bright : float
        A run before the wall is left out only when its median is above this.
    reach : int
        The wall is looked for within this many voxels of each row's end.

    Returns
    -------
    ndarray of bool
        The voxels to leave out.

    Examples
    --------
    >>> section = np.zeros((12, 1), bool)
    >>> section[1:11] = True
    >>> values = np.ones((12, 1))
    >>> values[8:11] = 1.2  # muscle in front of the wall at 7
    >>> values[7] = 0.5
    >>> beyond_wall(section, values < 0.8, values, 1.05, 6)[:, 0].nonzero()[0].tolist()
    [8, 9, 10]
    """
    out = np.zeros_like(section)
    for column in np.flatnonzero(section.any(axis=0)):
        rows = np.flatnonzero(section[:, column])
        for run in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1):
            for walk in (run[::-1], run):  # from the anterior end, from the posterior end
                hits = np.flatnonzero(dark[walk[:reach], column])
                if hits.size and hits[0] > 0:
                    part = walk[: hits[0]]
                    if float(np.median(values[part, column])) > bright:
                        out[part, column] = True
    return out


def cut_beyond_walls(
    bodies: Labels,
    image: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    dark: float,
    bright: float = 1.05,
    reach_mm: float = 8.0,
    smooth_mm: float = 0.75,
) -> tuple[Labels, int]:
    """Leave out of each body what lies beyond its dark wall on its lateral sections.

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels, canonical (AP, SI, LR) axes.
    image : ndarray
        The fat-suppressed image the bodies were read from.
    midline : float
        Left-right index of the canal midline.
    spacing : ndarray, shape (3,)
    dark : float
        ``suppressed_wall_dark``: the wall is darker than this times the body's
        mid-sagittal median; 0 leaves the bodies as they are.
    bright : float
        ``suppressed_wall_bright`` (see :func:`beyond_wall`).
    reach_mm : float
        ``suppressed_wall_reach_mm``: how far in from a row's end the wall is looked for.
    smooth_mm : float
        In-plane Gaussian sigma (mm) of the image the wall is read on (noise).

    Returns
    -------
    bodies : ndarray of int32
    voxels : int
        How many voxels were left out.

    Examples
    --------
    >>> bodies = np.zeros((20, 10, 9), np.int32)
    >>> bodies[2:18, 1:9, :] = 1
    >>> image = np.ones(bodies.shape, np.float32)
    >>> image[14, 3:7, 8] = 0.4  # the wall on the right-most slice, at the waist ...
    >>> image[15:18, 3:7, 8] = 1.3  # ... and muscle in front of it
    >>> out, n = cut_beyond_walls(bodies, image, 4.0, np.array([1.0, 1.0, 3.0]), 0.85, smooth_mm=0)
    >>> n, bool(out[15:18, 3:7, 8].any()), bool(out[15:18, 3:7, 7].all())
    (12, False, True)
    """
    if dark <= 0:
        return bodies, 0
    mid = mid_slab(bodies.shape[2], midline, spacing)
    sigma = [smooth_mm / float(s) for s in spacing[:2]] + [0.0]
    smooth = ndimage.gaussian_filter(image, sigma) if smooth_mm > 0 else image
    reach = max(1, round(reach_mm / float(spacing[0])))
    out, removed = bodies.copy(), 0
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        own = bodies[box] == label
        central = own & mid[box[2]][None, None, :]
        if not central.any():
            continue
        level = float(np.median(image[box][central]))
        if level <= 0:
            continue
        values, walls = image[box] / level, smooth[box] < dark * level
        gone = np.zeros_like(own)
        for k in range(own.shape[2]):
            if mid[box[2].start + k] or not own[:, :, k].any():
                continue
            gone[:, :, k] = beyond_wall(
                own[:, :, k], walls[:, :, k], values[:, :, k], bright, reach
            )
        if not gone.any():
            continue
        kept = largest_part(own & ~gone)
        sub = out[box]
        removed += int((own & ~kept).sum())
        sub[own & ~kept] = 0
    return out, removed
