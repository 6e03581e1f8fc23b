"""Two bodies joined across a disc, split at the endplate line (fat-suppressed image alone).

On a STIR (or fat-suppressed T2) the annulus and a degenerated disc are dark-intermediate
like suppressed marrow, and a body can run on through the disc into the next one: one
segment holds a body, the disc and part or all of the next body (tuning seeds 79, 87, 91
from a STIR alone: 1.7-2.4 times the largest true body). Vertebral bodies are about as
tall as each other along a lumbar spine (adjacent ones within about 10 %), so a segment
over :data:`TALL_FACTOR` times the median body's SI extent holds more than one. Near the
midline the endplate between them is still a straight dark line across the segment: the
line of :func:`.lower_edge.find_dark_line` (about a body's height below the segment's top,
any tilt) cuts it on every slice, and the largest connected parts above and below it
become two bodies when each is at least :data:`MIN_PART` of the median body's volume. A
segment with no such line is left as it is (the size checks judge it).

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.autoseg.checks import largest_part, si_extents
from bmetoolkit.spine.autoseg.lower_edge import cut_at_lower_endplate

__all__ = ["split_joined"]

Labels = NDArray[np.int32]

#: A segment taller (SI extent) than this many times the median body holds two.
TALL_FACTOR = 1.6
#: Each part of a split is at least this fraction of the median body's volume.
MIN_PART = 0.5


def split_joined(
    bodies: Labels, image: NDArray[np.float32], midline: float, spacing: NDArray
) -> tuple[Labels, list[str]]:
    """Split segments taller than :data:`TALL_FACTOR` bodies at their endplate line.

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels 1..n, canonical (AP, SI, LR) axes.
    image : ndarray
        The image the bodies were read from.
    midline : float
        Left-right index of the canal midline.
    spacing : ndarray, shape (3,)

    Returns
    -------
    bodies : ndarray of int32
        The split parts get new labels after ``n``.
    notes : list of str
        One per segment split.

    Examples
    --------
    >>> bodies = np.zeros((30, 100, 3), np.int32)
    >>> bodies[5:25, 62:88], bodies[5:25, 90:100] = 1, 3  # a body, one cut by the edge
    >>> bodies[5:25, 2:60] = 2  # two bodies and the disc between them
    >>> image = np.full(bodies.shape, 100.0)
    >>> image[5:25, 29:31] = 20.0  # the dark endplates across it
    >>> split, notes = split_joined(bodies, image, 1.0, np.ones(3))
    >>> int(split.max()), len(notes)
    (4, 1)
    """
    boxes, extents = si_extents(bodies, spacing)
    if len(extents) < 3:
        return bodies, []
    median = float(np.median(list(extents.values())))
    volumes = np.bincount(bodies.ravel(), minlength=len(boxes) + 1)
    median_volume = float(np.median([volumes[label] for label in extents]))
    out, notes, next_label = bodies.copy(), [], len(boxes) + 1
    for label, extent in extents.items():
        if extent <= TALL_FACTOR * median:
            continue
        segment = bodies == label
        upper = cut_at_lower_endplate(segment, image, midline, spacing, median)
        if upper is None:
            continue
        lower = largest_part(segment & ~upper)
        if min(upper.sum(), lower.sum()) < MIN_PART * median_volume:
            continue
        out[segment & ~upper & ~lower] = 0
        out[lower] = next_label
        next_label += 1
        notes.append(
            f"a segment {extent:.0f} mm tall (median body {median:.0f} mm) was split at the "
            "dark endplate line across it: two bodies joined across a disc"
        )
    return out, notes
