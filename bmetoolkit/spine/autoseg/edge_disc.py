"""Vertebral bodies are separated by discs: a top-edge segment right against the column is no body.

Without a T1 the marrow is read from the T2 (or STIR) against a per-row reference; at the
image's upper or lower edge, beyond the column's last disc, soft tissue whose signal is
close to the marrow's passes that threshold and becomes a segment that runs up to the edge.
Its in-plane outline does not tell it from a body on the T2 (a body's cortex there is as
thin and as blurred as the edge of the tissue: :mod:`.cortex_check` is for the T1 path),
and its own signal must not count (a vertebra can be all edema). Its place in the column
does: every vertebral body of the mobile spine is separated from the next by an
intervertebral disc (a degenerated disc keeps a few mm, and the central height measured
here includes both endplates' concavity), while such a segment lies right against the end
body, with little or no gap between them.

So the cranial-most segment, when it reaches the image's upper edge, is checked: the
central height of the gap between it and the segment below it (:func:`~.levels.disc_height`,
on their mid-sagittal sections) is compared with the median of the other discs between
consecutive segments; under ``factor`` times that median it is dropped, with a note. The
lower edge is left to the levels step: S1 has no disc below it (S2 and below are fused to
it), so there a segment right against the caudal-most body is what the sacrum looks like
(on tuning seed 205 dropping such a segment made the levels wrong). Comparing with
the scan's own discs keeps thin discs (a thoracolumbar column, coarse pixels) from
dropping anything.

With ``on_most_slices`` (a fat-suppressed image alone, ``AutosegParameters
.edge_disc_on_most_slices``) the gaps are read on the voxels each segment holds on over
half of the mid-sagittal slab's slices, as a reader sees the disc on the mid-sagittal
slices: a body below that reaches into the disc on one thick slice beside the midline
(partial volume of the annulus, tissue at a corner) leaves the disc showing on the others
(tuning seeds 200 and 223 from a STIR alone: the top body, cut by the upper edge, 93 % and
72 % of its segment in T11, had been dropped at a gap of 2.7 and 4.5 mm read on any slice,
11.4 and 12.1 mm on most, the other discs about 16 mm), while tissue lying against the top
body lies against it on most slices too (seed 175: 1.9 mm on any slice, 3.9 on most).

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.checks import LOWER_EDGE_MM, relabelled
from bmetoolkit.spine.autoseg.levels import body_shapes

__all__ = ["MIN_OTHER_DISCS", "column_discs", "drop_without_disc_at_top", "top_disc"]

#: The median of the other discs needs at least this many of them.
MIN_OTHER_DISCS = 2


def column_discs(
    bodies: NDArray[np.int32], midline: float, spacing: NDArray, on_most_slices: bool = False
) -> tuple[list[int], list[float]]:
    """Segments cranial to caudal and the central height (mm) of the gap below each.

    Parameters
    ----------
    bodies : ndarray of int32
        Segments labelled 1..n, canonical axes (anterior, superior, right).
    midline : float
        Left-right index of the canal's midline (the mid-sagittal plane).
    spacing : ndarray
        Voxel size (mm) along (AP, SI, LR).
    on_most_slices : bool, optional
        Read each gap on the pixels each segment holds on over half of the mid-sagittal
        slab's slices (``BodyShape.central_disc_below_mm``) instead of on any of them.

    Returns
    -------
    labels : list of int
        The labels present, by decreasing SI centroid (cranial first).
    discs : list of float
        ``discs[k]`` is the gap between ``labels[k]`` and ``labels[k + 1]`` on their
        mid-sagittal sections (``disc_below_mm`` of :func:`~.levels.body_shapes`: 0 where
        they touch, NaN when no line crosses both).

    Examples
    --------
    >>> import numpy as np
    >>> bodies = np.zeros((10, 40, 3), np.int32)
    >>> bodies[2:8, 2:12] = 2
    >>> bodies[2:8, 20:30] = 1
    >>> column_discs(bodies, 1.0, np.ones(3))
    ([1, 2], [8.0])
    """
    shapes = body_shapes(bodies, midline, spacing)
    discs = [s.central_disc_below_mm if on_most_slices else s.disc_below_mm for s in shapes]
    return [s.label for s in shapes], discs[:-1]


def top_disc(discs: list[float], nearest: int | None = None) -> tuple[float, float, int] | None:
    """The gap below the cranial-most segment and the median of the discs below it.

    ``discs`` as :func:`column_discs` returns them (cranial first). The median is that of
    every other disc, or with ``nearest`` of the ``nearest`` discs next below the gap only.
    Returns the gap (mm), that median (mm) and how many discs it was read on, or None when
    the gap is unread or fewer than :data:`MIN_OTHER_DISCS` discs below it are.

    >>> top_disc([2.0, 10.0, 12.0, 14.0]), top_disc([2.0, 6.0, 8.0, 14.0], nearest=2)
    ((2.0, 12.0, 3), (2.0, 7.0, 2))
    """
    if len(discs) < MIN_OTHER_DISCS + 1 or not np.isfinite(discs[0]):
        return None
    below = discs[1:] if nearest is None else discs[1 : 1 + nearest]
    others = [d for d in below if np.isfinite(d)]
    if len(others) < MIN_OTHER_DISCS:
        return None
    return float(discs[0]), float(np.median(others)), len(others)


def drop_without_disc_at_top(
    bodies: NDArray[np.int32],
    midline: float,
    spacing: NDArray,
    factor: float,
    core: NDArray[np.int32] | None = None,
    on_most_slices: bool = False,
    nearest: int | None = None,
) -> tuple[NDArray[np.int32], list[str]]:
    """Drop the cranial-most segment at the image's upper edge with no disc below it.

    The cranial-most segment (by centroid) reaching within :data:`~.checks.LOWER_EDGE_MM`
    of the upper edge is dropped, with a note, when the gap between it and the segment
    below it (:func:`column_discs`) is under ``factor`` (``AutosegParameters
    .edge_disc_factor``; 0 drops nothing) times the median of the other discs, which
    needs :data:`MIN_OTHER_DISCS` of them. The gaps are read on ``core`` when given (the
    same labels without the voxels the cortex steps grew: grown from both endplates
    through a disc's dark annulus, neighbours may meet), and with ``on_most_slices`` on
    the pixels each segment holds on most of the mid-sagittal slab's slices
    (:func:`column_discs`). With ``nearest`` the median is that of the ``nearest`` discs
    next below it only (discs grow thicker down the column: a thoracic disc at the top is
    read against its neighbours, not against lumbar discs). The lower edge is not checked:
    there S1 has no disc below it (S2 and below are fused to it), and the levels step
    reads that as its evidence for the sacrum. Returns the bodies relabelled 1..n and the
    note, if one was dropped.
    """
    labels, discs = column_discs(bodies if core is None else core, midline, spacing, on_most_slices)
    read = top_disc(discs, nearest)
    if factor <= 0 or read is None:
        return bodies, []
    top, (gap, median, count) = labels[0], read
    box = ndimage.find_objects(bodies)[top - 1]
    if box[1].stop < bodies.shape[1] - LOWER_EDGE_MM / float(spacing[1]):
        return bodies, []
    if gap >= factor * median:
        return bodies, []
    volume = float((bodies == top).sum() * np.prod(spacing)) / 1000
    which = "the other discs'" if nearest is None else f"the {count} discs below its"
    note = (
        f"a {volume:.1f} mL segment at the image's upper edge was dropped: no disc between "
        f"it and the body below it ({gap:.1f} mm, {which} median {median:.1f} mm): "
        "tissue beyond the end of the column, not a vertebral body"
    )
    return relabelled(bodies, [label for label in sorted(labels) if label != top]), [note]
