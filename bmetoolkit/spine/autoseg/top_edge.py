"""The top body joined to the tissue above it, cut back instead of dropped.

Without a T1, the cranial-most segment reaching the image's upper edge can be the top body
(T11 on a lumbar scan) joined to the marrow-like tissue above, in front of and beside it
up to the edge; the upper-edge size check (:func:`.checks.drop_large_at_edges`) then drops
it whole and the top body is lost. This module cuts such a segment back: at the top
body's own superior endplate (the dark line about a body's height above the segment's
bottom, :func:`.lower_edge.cut_at_lower_endplate` on the image turned upside down), in
front no deeper than the body below it reaches in front of the canal, and laterally no
wider than that body (or, with ``smallest``, than the smallest of the whole bodies next
below it: the bodies grow down the column, and the body below may hold tissue itself); what is
left is kept when it is no larger than the size check allows a body at the edge. Anything
else is left as it was (and dropped by the check).

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.autoseg.checks import (
    LARGE_AT_EDGE_FACTOR,
    LOWER_EDGE_MM,
    _caudal_neighbour,
    _cut_by_edge,
    _si_extents,
    largest_part,
)
from bmetoolkit.spine.autoseg.lower_edge import _mid_slice, cut_at_lower_endplate

__all__ = ["MARGIN_MM", "cut_back_top", "reach_and_half_width", "rounded_front"]

Labels = NDArray[np.int32]

#: The cut-back body may reach this far (mm) beyond the body below it in front and at the
#: sides (adjacent bodies differ in depth and width by about 6 %, 2 mm on a 35 mm body).
MARGIN_MM = 2.0
#: With ``smallest``: the whole bodies next below the top one whose smallest depth and
#: width it is cut to (for a T11, T12 to L2: the nearest in size; the sacrum at the
#: column's foot, tilted, reaches less far in front of the canal than its depth).
NEAREST_BODIES = 3


def reach_and_half_width(
    body: NDArray[np.bool_], front: NDArray, midline: float
) -> tuple[float, float]:
    """How far (voxels) a body reaches in front of the canal's front on its mid-sagittal
    slice, and its half-width (voxels) from the midline."""
    k = _mid_slice(body, midline)
    ap, si = np.nonzero(body[:, :, k])
    lr = np.flatnonzero(body.any(axis=(0, 1)))
    return float(np.max(ap - front[si])), float(max(midline - lr[0], lr[-1] - midline))


def cut_back_top(
    bodies: Labels,
    image: NDArray,
    front: NDArray,
    midline: float,
    spacing: NDArray,
    smallest: bool = False,
    rounded: bool = False,
) -> tuple[Labels, list[str]]:
    """The cranial-most segment at the upper edge, too large for a body, cut back to one.

    Parameters
    ----------
    bodies : ndarray of int32
        Segments (labels 1..n) before :func:`.checks.drop_large_at_edges`.
    image : ndarray
        The image the marrow was read on, same shape.
    front : ndarray, shape (n_si,)
        The canal's front (AP index) per SI row.
    midline : float
        The canal's midline (LR index).
    spacing : ndarray, shape (3,)
    smallest : bool, optional
        The depth and half-width the cut keeps are the smallest of the
        :data:`NEAREST_BODIES` whole bodies next below
        (``AutosegParameters.t2_top_cut_smallest``), not the body below's.
    rounded : bool, optional
        The part kept is then cut to the front a body has (:func:`rounded_front`;
        ``AutosegParameters.t2_top_cut_rounded``); its largest connected part is kept.

    Returns
    -------
    bodies, notes
        ``bodies`` with that segment replaced by its cut-back part (same label) and a
        note, or unchanged with no note. The segment reaches within
        :data:`.checks.LOWER_EDGE_MM` of the upper edge and holds over
        :data:`.checks.LARGE_AT_EDGE_FACTOR` times the whole body nearest below it; it is
        cut at the dark line of its caudal body's superior endplate, at that body's reach
        in front of the canal's front and its half-width from the midline (with
        ``smallest``, the smallest reach and half-width of the whole bodies next below; each plus
        :data:`MARGIN_MM`); the largest connected part is kept when it no longer reaches
        the upper edge and is at most :data:`.checks.LARGE_AT_EDGE_FACTOR` times that body.
    """
    extents = _si_extents(bodies, spacing)
    rows = bodies.shape[1]
    cut = _cut_by_edge(extents, rows, spacing)
    whole = [label for label, at_edge in cut.items() if not at_edge]
    if len(whole) < 2:
        return bodies, []
    edge = LOWER_EDGE_MM / float(spacing[1])
    top = max(extents, key=lambda label: extents[label][1])
    if extents[top][1] < rows - edge or extents[top][0] <= edge:
        return bodies, []
    below = _caudal_neighbour(top, whole, extents)
    if below is None:
        return bodies, []
    volumes = np.bincount(bodies.ravel())
    if volumes[top] <= LARGE_AT_EDGE_FACTOR * volumes[below]:
        return bodies, []
    segment, reference = bodies == top, bodies == below
    height = float(np.median([extents[label][2] for label in whole]))
    flipped = cut_at_lower_endplate(segment[:, ::-1], image[:, ::-1], midline, spacing, height)
    if flipped is None:
        return bodies, []
    reach, half = reach_and_half_width(reference, front, midline)
    if smallest:  # the top body is no deeper and no wider than the bodies next below it
        nearest = sorted(whole, key=lambda label: -extents[label][1])[:NEAREST_BODIES]
        sizes = [reach_and_half_width(bodies == label, front, midline) for label in nearest]
        reach, half = (float(v) for v in np.min(sizes, axis=0))
    reach += MARGIN_MM / float(spacing[0])
    half += MARGIN_MM / float(spacing[2])
    in_front = np.arange(bodies.shape[0])[:, None] - front[None, :] <= reach
    beside = np.abs(np.arange(bodies.shape[2]) - midline) <= half
    kept = largest_part(flipped[:, ::-1] & in_front[:, :, None] & beside[None, None, :])
    if not kept.any():
        return bodies, []
    kept_rows = np.flatnonzero(kept.any(axis=(0, 2)))
    if kept_rows[-1] >= rows - edge or kept.sum() > LARGE_AT_EDGE_FACTOR * volumes[below]:
        return bodies, []
    boxed = int(kept.sum())
    if rounded:  # after the decision: only the outline of a body kept changes
        arc = largest_part(kept & rounded_front(kept.shape, front, midline, reach, half))
        kept = arc if arc.any() else kept
    out = np.where(segment, 0, bodies).astype(np.int32)
    out[kept] = top
    voxel = float(np.prod(spacing)) / 1000
    note = (
        f"a {volumes[top] * voxel:.0f} mL segment at the image's upper edge was cut back to "
        f"{kept.sum() * voxel:.0f} mL (whole body below it {volumes[below] * voxel:.0f} mL) at "
        "its caudal body's superior endplate and the depth and width of the body below: "
        "the top body joined to the tissue above and in front of it"
    )
    if int(kept.sum()) < boxed:
        note += f" ({(boxed - int(kept.sum())) * voxel:.1f} mL beyond a body's rounded front cut)"
    return out, [note]


def rounded_front(
    shape: tuple[int, ...], front: NDArray, midline: float, reach: float, half: float
) -> NDArray[np.bool_]:
    """The voxels inside a body's rounded front, for a body reaching ``reach`` voxels in front
    of the canal's ``front`` (per SI row) and ``half`` voxels either side of ``midline``.

    Behind the middle of that depth every voxel is inside (the posterior wall is flat and
    the pedicles meet the body at its posterolateral corners); in front of it, those
    inside the half-ellipse whose semi-axes are half the depth (AP) and ``half`` (LR): a
    vertebral body's front is an arc, so the corners of the box in front of it are the
    tissue beside it.

    Examples
    --------
    >>> inside = rounded_front((21, 1, 21), np.zeros(1), 10.0, 20.0, 10.0)
    >>> bool(inside[5, 0, 0]), bool(inside[15, 0, 10]), bool(inside[18, 0, 3])
    (True, True, False)
    """
    middle = reach / 2.0
    ahead = np.maximum(np.arange(shape[0])[:, None] - front[None, :] - middle, 0.0) / middle
    aside = (np.arange(shape[2]) - midline) / half
    return ahead[:, :, None] ** 2 + aside[None, None, :] ** 2 <= 1.0
