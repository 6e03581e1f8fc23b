"""A body at the image's edge that the size check drops, read again from another reading.

From a plain T2 alone the marrow is read several ways (seeds labelled in 3D, seeds of the
mid-sagittal slab, the marrow cut at the discs' anterior edges; see :mod:`.midline`), and
the reading with the most segments is kept. A segment the image's upper or lower edge cuts
holds at most one whole body; :func:`.checks.drop_large_at_edges` drops it when it is far
larger than a whole body (the cut body joined to the tissue around it). Another reading
may have kept that body apart from the tissue: on tuning seed 97 (cut above the sacrum) the
3D reading's L5 at the lower edge held 35 mL (18 % of it tissue) against a largest whole
body of 26 mL and was dropped, while the mid-slab reading's segment there held 28 mL, 98 %
of it L5. A reader would take the body where it is seen apart from the tissue: the segment
of another reading that the same edge cuts, lying mostly inside the segment dropped, is
put in its place when the same check, against the same bodies, keeps it.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.autoseg.checks import cut_by_edge, drop_large_at_edges

__all__ = ["INSIDE_FRACTION", "replace_dropped_at_edges"]

Mask = NDArray[np.bool_]
Labels = NDArray[np.int32]

#: A segment of another reading replaces a dropped edge segment only when at least this
#: fraction of its voxels lies inside the dropped segment (it is that segment's body, read
#: apart from the tissue, not a piece of tissue beside it).
INSIDE_FRACTION = 0.5


def replace_dropped_at_edges(
    before: Labels,
    after: Labels,
    grown: Mask,
    others: list[tuple[Labels, Mask]],
    spacing: NDArray,
) -> tuple[Labels, Mask, list[str]]:
    """The bodies with each edge segment :func:`.checks.drop_large_at_edges` dropped
    replaced by another reading's segment at that edge, when one passes the check.

    Parameters
    ----------
    before, after : ndarray of int32
        The segments before and after :func:`.checks.drop_large_at_edges` (labels 1..n).
    grown : ndarray of bool
        The voxels the kept reading's cortex steps grew (for :func:`.apart.keep_apart`).
    others : list of (ndarray of int32, ndarray of bool)
        The other readings' segments (labels 1..n, after their size check) and grown voxels.
    spacing : ndarray, shape (3,)
        Voxel size (mm).

    Returns
    -------
    bodies, grown, notes
        The segments (a replacement numbered after the others), the grown voxels with the
        replacement's, and a note per segment replaced.

    Notes
    -----
    A candidate is a segment of another reading that the image's upper or lower edge cuts
    (within :data:`.checks.LOWER_EDGE_MM`), with at least :data:`INSIDE_FRACTION` of its
    voxels inside one dropped segment; only its voxels outside the bodies kept are taken.
    It replaces the dropped segment when :func:`.checks.drop_large_at_edges`, run on the
    bodies kept with it added, keeps it and every body kept; of several, the largest.
    """
    dropped = (before > 0) & (after == 0)
    if not dropped.any():
        return after, grown, []
    out, more, notes = after, grown, []
    at_edges = [
        (other, other_grown, [label for label, cut in cut_by_edge(other, spacing).items() if cut])
        for other, other_grown in others
    ]
    for old in np.unique(before[dropped]):
        region = before == old
        best: tuple[int, Mask, Mask] | None = None
        for other, other_grown, labels in at_edges:
            for label in labels:
                own = other == label
                if int((own & region).sum()) < INSIDE_FRACTION * int(own.sum()):
                    continue
                free = own & (out == 0)
                if best is not None and int(free.sum()) <= best[0]:
                    continue
                trial = out.copy()
                n = int(out.max()) + 1
                trial[free] = n
                checked, dropped_again = drop_large_at_edges(trial, spacing)
                if dropped_again or int(checked.max()) != n:
                    continue
                best = (int(free.sum()), free, free & other_grown)
        if best is None:
            continue
        volume = best[0] * float(np.prod(spacing)) / 1000.0
        if out is after:
            out, more = after.copy(), grown.copy()
        out[best[1]] = int(out.max()) + 1
        more |= best[2]
        old_ml = int(region.sum()) * float(np.prod(spacing)) / 1000.0
        notes.append(
            f"the {old_ml:.0f} mL segment dropped at the image's edge was read again: another "
            f"reading of the marrow kept its body apart from the tissue ({volume:.0f} mL), "
            "which is kept in its place"
        )
    return out, more, notes
