"""A vertebral body is enclosed in cortical bone: a segment whose outline shows none is not one.

Cortical bone gives no MR signal on any routine sequence, so every vertebral body is outlined
by a dark rim (walls and endplates), whatever its marrow holds: fatty, red, edematous,
fractured or infiltrated marrow all lie inside that shell. The body steps take it in
(:func:`~.bodies.add_cortex`, :func:`~.bodies.fill_to_endplate`, :func:`~.bodies.grow_cortex`),
so a body's outermost voxel layer is largely cortex-dark. A segment cut out of homogeneous
soft tissue by the marrow threshold (at the edge of the field of view above the top disc,
where the per-row marrow reference has no marrow to read) has no such rim: its outline is
the same tissue as its inside.

Only the outline the image shows counts: voxels on the image's upper or lower edge (a body
cut by the field of view has no cortex on its cut face) are not outline. The share is
compared with the other segments' so that coarse pixels or a thin cortex, which lower every
body's share alike, drop nothing.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.checks import relabelled

__all__ = ["MIN_MEDIAN_SHARE", "MIN_SEGMENTS", "cortex_shares", "drop_without_cortex"]

#: The median share needs at least this many segments.
MIN_SEGMENTS = 3
#: ... and must be at least this: the scan shows the bodies' cortex. On the randomized
#: phantoms (0.5-1.2 mm pixels) the median is 0.7-0.9; on 3 mm pixels (the small plain
#: phantom) 0.07, each body's share 0.02-0.13: too few voxels to tell a rim from none.
MIN_MEDIAN_SHARE = 0.3


def cortex_shares(bodies: NDArray[np.int32], dark: NDArray[np.bool_]) -> dict[int, float]:
    """Share of each segment's in-plane outline that is cortex-dark.

    Parameters
    ----------
    bodies : ndarray of int32
        Segments labelled 1..n, canonical axes (anterior, superior, right).
    dark : ndarray of bool
        Voxels dark enough to be cortical bone (:func:`~.bodies.cortex_mask`).

    Returns
    -------
    dict of int to float
        Per label present: the fraction of its outline voxels (those with a face neighbour
        outside it in the sagittal plane, not counting the image's upper and lower edge)
        that are ``dark``; NaN when it has no such voxel.

    Examples
    --------
    >>> import numpy as np
    >>> bodies = np.zeros((6, 6, 1), np.int32)
    >>> bodies[1:5, 1:5] = 1
    >>> dark = np.zeros(bodies.shape, bool)
    >>> dark[1, 1:5] = True
    >>> round(cortex_shares(bodies, dark)[1], 2)
    0.33
    """
    plane = ndimage.generate_binary_structure(3, 1)
    plane[:, :, 0] = plane[:, :, 2] = False  # neighbours in the sagittal plane only
    shares = {}
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        own = bodies[box] == label
        # Pad along AP with "outside" (an AP edge is tissue the image shows), along SI with
        # "inside" (beyond the upper or lower edge nothing is shown).
        padded = np.pad(own, ((1, 1), (1, 1), (0, 0)))
        if box[1].start == 0:  # the image's lower edge
            padded[:, 0] = padded[:, 1]
        if box[1].stop == bodies.shape[1]:  # its upper edge
            padded[:, -1] = padded[:, -2]
        inner = ndimage.binary_erosion(padded, plane)[1:-1, 1:-1]
        outline = own & ~inner
        shares[label] = float(dark[box][outline].mean()) if outline.any() else float("nan")
    return shares


def drop_without_cortex(
    bodies: NDArray[np.int32], dark: NDArray[np.bool_], spacing: NDArray, factor: float
) -> tuple[NDArray[np.int32], list[str]]:
    """Drop segments without a cortical rim, with a note for each.

    A segment whose outline (:func:`cortex_shares`) is cortex-dark on under ``factor``
    times the median segment's share (``AutosegParameters.cortex_share_factor``; 0 drops
    nothing) is soft tissue with the marrow's T1 signal, not a vertebral body. The
    marrow's signal plays no part: a body whose marrow is all edema, fracture or tumour
    keeps its cortex and stays. Needs :data:`MIN_SEGMENTS` segments whose median share is
    at least :data:`MIN_MEDIAN_SHARE` (else nothing is dropped); returns the bodies
    relabelled 1..n.
    """
    shares = cortex_shares(bodies, dark)
    known = [share for share in shares.values() if np.isfinite(share)]
    if factor <= 0 or len(known) < MIN_SEGMENTS:
        return bodies, []
    median = float(np.median(known))
    if median < MIN_MEDIAN_SHARE:
        return bodies, []
    dropped = [
        label for label, share in shares.items() if np.isfinite(share) and share < factor * median
    ]
    if not dropped:
        return bodies, []
    voxel_ml = float(np.prod(spacing)) / 1000
    volumes = np.bincount(bodies.ravel(), minlength=int(bodies.max()) + 1) * voxel_ml
    notes = [
        f"a {volumes[label]:.1f} mL segment was dropped: no cortical bone around it (dark on "
        f"{shares[label]:.0%} of its outline, the median segment {median:.0%}): soft tissue "
        "with the marrow's T1 signal, not a vertebral body"
        for label in dropped
    ]
    return relabelled(bodies, [label for label in shares if label not in dropped]), notes
