"""A vertebra cut by the upper edge of the field of view is still a body.

When the image's upper edge cuts the top vertebra a few mm into its body, the marrow of
that sliver is too thin for a mid-sagittal seed (the seeds are the marrow eroded by
``seed_erosion_mm``, and the array's edge erodes it as well): on the STIR-alone tuning
seeds 160, 172, 212 (and 229, 69, 99) the sliver's seed held 4 to 87 voxels and was
dropped under the volume and height floors, and no step adds it back. A reader still
calls it a body: below it lies a disc like the column's other discs, and above that disc
the marrow fills the section of the body below it, up to the edge.

So, from a fat-suppressed image alone (``AutosegParameters.suppressed_cut_top``), when the
cranial-most segment does not reach the image's upper edge, the marrow above it is read
within its section (the pixels it holds on its upper third, in the AP-LR plane, widened
by one pixel): the parts of it that reach the upper edge are the candidate. It is kept as
a body when

- from its lowest row up to the edge it is under :data:`MAX_HEIGHT_SHARE` of the top
  segment's height: the rule is for the sliver the seeds cannot see, not for a region
  tall enough for a seed that the other steps left out (tuning seed 196: 7 mL of tissue
  above T11, 0.89 of its height, above a 3.4 mm gap on most slices where the column's
  discs read 0-14 mm, had been added without it; the slivers read 0.18-0.45);

- its own section (the AP-LR pixels it holds on any row) covers at least
  :data:`SECTION_SHARE` of the top segment's section: a body cut by the edge shows its
  whole section on the rows it has, a strip of tissue or a vessel a fraction of it; and
- :func:`.edge_disc.drop_without_disc_at_top`, given the bodies with it, keeps it: the gap
  between it and the top segment, read on the pixels each holds on most of the
  mid-sagittal slab's slices, is at least ``factor`` times the median of the column's
  other discs (the same check, with the same factor, that drops tissue against the
  column's top). Tissue beyond the column's end lies against the top body with no disc
  between them (on the tuning seeds every marrow-like region above a whole top body
  reaching the edge did: 163, 164, 166, 170 ...), and is left out.

From a plain T2 alone (``AutosegParameters.t2_cut_top``) the same reading adds the top
vertebra when the candidate is up to a whole body's height (:data:`T2_MAX_HEIGHT_SHARE`
of the top segment's), not half of it: a vertebra cut by the edge shows less than a
whole body, and the body above is no taller than the one below it in the thoracolumbar
spine. There the top vertebra is lost by more than its seed: the second reading of the
marrow skips any segment the image's edge cuts, and on the tuning seeds of the phantom
family that draws T10 (``--vertebra-above``: the family where, as on every real spine, a
vertebra lies above T11) T10 was missed whole on 18 of 40 plain T2 studies (60-99, 7-27
mm of it in view) and the T2 with the pelvis in view 1 mm (90-119) had a worst decile of
0.007. On the bundled TPTBox T2 the sliver added is the top vertebra's body (Dice 0.56
against its SPINEPS body, 0.04 without it). On the phantom family without T10
(``--no-vertebra-above``), which draws tissue of the marrow's signal above the T10/T11
disc instead, the same rule adds that tissue as a body: a phantom artefact there
(``docs/autoseg.md``, *Without a T1*, step 11).

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.edge_disc import drop_without_disc_at_top

#: The candidate, from its lowest row up to the edge, must be under this share of the top
#: segment's height: a sliver too thin for a seed, not a region a seed would have found.
MAX_HEIGHT_SHARE = 0.5

#: From a plain T2 alone: up to a whole body's height (the body above is no taller).
T2_MAX_HEIGHT_SHARE = 1.0

#: Share of the top segment's section (AP-LR pixels of its upper third) that the
#: candidate's section must cover.
SECTION_SHARE = 0.5


def add_cut_top(
    bodies: NDArray[np.int32],
    marrow: NDArray[np.bool_],
    midline: float,
    spacing: NDArray,
    factor: float,
    max_height_share: float = MAX_HEIGHT_SHARE,
) -> tuple[NDArray[np.int32], list[str]]:
    """Add the sliver of a vertebra cut by the image's upper edge above the top segment.

    Parameters
    ----------
    bodies : ndarray of int32
        Segments labelled 1..n, canonical axes (anterior, superior, right).
    marrow : ndarray of bool
        The marrow mask the segments were read from, same shape.
    midline : float
        Left-right index of the canal's midline.
    spacing : ndarray
        Voxel size (mm) along (AP, SI, LR).
    factor : float
        ``AutosegParameters.edge_disc_factor``: the gap below the sliver must be at least
        this times the median of the column's other discs (0 adds nothing).
    max_height_share : float
        The candidate, from its lowest row up to the edge, must be under this share of
        the top segment's height (:data:`MAX_HEIGHT_SHARE` from a STIR alone,
        :data:`T2_MAX_HEIGHT_SHARE` from a plain T2 alone).

    Returns
    -------
    bodies : ndarray of int32
        The segments, the sliver added as label n + 1 when kept.
    notes : list of str
        One note per sliver considered (kept or not), with its figures.

    Examples
    --------
    >>> import numpy as np
    >>> bodies = np.zeros((6, 40, 6), np.int32)
    >>> marrow = np.zeros((6, 40, 6), bool)
    >>> add_cut_top(bodies, marrow, 3.0, np.ones(3), 0.35)[1]
    []
    """
    n = int(bodies.max())
    if n == 0 or factor <= 0:
        return bodies, []
    boxes = ndimage.find_objects(bodies)
    tops = {label: box[1].stop for label, box in enumerate(boxes, start=1) if box is not None}
    top = max(tops, key=lambda label: tops[label])
    last = bodies.shape[1]
    if tops[top] >= last:
        return bodies, []  # the top segment reaches the edge already
    box = boxes[top - 1]
    height = box[1].stop - box[1].start
    upper = bodies[:, box[1].stop - max(1, height // 3) : box[1].stop, :] == top
    section = upper.any(axis=1)
    around = ndimage.binary_dilation(section, structure=np.ones((3, 3), bool))
    start = tops[top]  # the rows above the top segment, up to the edge
    labels, count = ndimage.label(marrow[:, start:, :] & around[:, None, :])
    if count == 0:
        return bodies, []
    at_edge = np.unique(labels[:, -1, :])
    candidate = np.isin(labels, at_edge[at_edge > 0])
    if not candidate.any():
        return bodies, []
    rows = np.flatnonzero(candidate.any(axis=(0, 2)))
    tall = (last - start - rows[0]) / height  # from its lowest row up to the edge
    share = float((candidate.any(axis=1) & section).sum()) / float(section.sum())
    volume = float(candidate.sum() * np.prod(spacing)) / 1000
    what = (
        f"a {volume:.1f} mL sliver at the image's upper edge ({share:.0%} of the section of "
        f"the body below, {tall:.2f} of its height)"
    )
    if tall >= max_height_share:
        limit = f"at least {max_height_share:g} of the body below's height"
        return bodies, [f"{what} was not added: too tall ({limit})"]
    if share < SECTION_SHARE:
        return bodies, [f"{what} was not added: too narrow for a body"]
    trial = bodies.astype(np.int32)  # a copy
    upper_rows = trial[:, start:, :]
    upper_rows[candidate & (upper_rows == 0)] = n + 1
    checked, dropped = drop_without_disc_at_top(trial, midline, spacing, factor, None, True)
    if dropped or int(checked.max()) <= n:
        reason = dropped[0].split(": ", 1)[-1] if dropped else "not checked"
        return bodies, [f"{what} was not added: {reason}"]
    return trial, [f"{what} was added: a body cut by the field of view"]
