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
  segment's height: a vertebra cut by the edge shows less than a whole body, and the body
  above is no taller than the one below it in the thoracolumbar spine (half a body from
  a STIR until session 43, set against 7 mL of tissue above T11, 0.89 of its height, on
  tuning seed 196 of the phantom family that draws such tissue where a real spine has
  T10; on the family that draws T10, read on the STIR's own grid, a whole body's height
  found 7 top bodies more on 140 tuning studies and no false one);

- its own section (the AP-LR pixels it holds on any row) covers at least
  :data:`SECTION_SHARE` of the top segment's section: a body cut by the edge shows its
  whole section on the rows it has, a strip of tissue or a vessel a fraction of it; and
- :func:`.edge_disc.drop_without_disc_at_top`, given the bodies with it, keeps it: the gap
  between it and the top segment, read on the pixels each holds on most of the
  mid-sagittal slab's slices, is at least ``factor`` times the median of the
  :data:`NEAREST_DISCS` discs next below it (the same check, with the same factor, that
  drops tissue against the column's top, which reads all the column's other discs; since
  session 43 the nearest only: discs grow thicker down the column, and a thoracic disc at
  the top read against lumbar ones refused tuning seeds 62's and 114's T10). Tissue
  beyond the column's end lies against the top body with no disc between them (on the
  tuning seeds every marrow-like region above a whole top body reaching the edge did:
  163, 164, 166, 170 ...), and is left out.

A candidate taller than that may be a whole vertebra and the sliver above it, their
marrow joined across a thin disc: it is split at the disc inside it, the whole body below
added and the sliver above read again (:func:`_split_below_disc`, since session 43).

From a plain T2 alone (``AutosegParameters.t2_cut_top``) the same reading adds the top
vertebra. There the top vertebra is lost by more than its seed: the second reading of the
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

import itertools

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.edge_disc import column_discs, drop_without_disc_at_top, top_disc
from bmetoolkit.spine.autoseg.top_edge import MARGIN_MM, reach_and_half_width

#: The candidate, from its lowest row up to the edge, must be under this share of the top
#: segment's height: up to a whole body (the body above is no taller than the one below).
MAX_HEIGHT_SHARE = 1.0

#: Share of the top segment's section (AP-LR pixels of its upper third) that the
#: candidate's section must cover.
SECTION_SHARE = 0.5

#: A row of a candidate too tall for a sliver is part of a body when its pixels inside the
#: section are at least this share of the candidate's fullest rows (their 90th percentile);
#: the rows between two such runs are a disc.
DISC_AREA_SHARE = 0.5

#: The whole body below such a disc is at most this share of the top segment's height (the
#: body above is no taller than the one below; the slack is the disc's tilted rows).
WHOLE_BODY_MAX_SHARE = 1.25

#: ... and at least this share of it (a body, not a strip of an endplate).
WHOLE_BODY_MIN_SHARE = 0.5

#: The disc below the candidate is read against the median of this many discs next below
#: it: discs grow thicker down the column, and the top of a lumbar scan is thoracic.
NEAREST_DISCS = 3


def add_cut_top(
    bodies: NDArray[np.int32],
    marrow: NDArray[np.bool_],
    midline: float,
    spacing: NDArray,
    factor: float,
    max_height_share: float = MAX_HEIGHT_SHARE,
    front: NDArray | None = None,
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
        the top segment's height (:data:`MAX_HEIGHT_SHARE`).
    front : ndarray, shape (n_si,), optional
        The canal's front (AP index) per SI row. When given, what is added keeps only the
        voxels within the top segment's reach in front of the canal (plus
        :data:`.top_edge.MARGIN_MM`): the column's curve moves the vertebrae above
        backwards against the top segment, whose section then holds the tissue in front
        of them (tuning seed 73, a plain T2: T10 added half tissue).

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
        split = _split_below_disc(
            bodies, top, candidate, section, start, height, midline, spacing, factor, front
        )
        if split is not None:  # a whole body, then the sliver above it read again
            trial, cut_mm = split
            more = add_cut_top(trial, marrow, midline, spacing, factor, max_height_share, front)
            added = (
                f"{what} was split at the disc {cut_mm:.0f} mm above its lowest row: the part "
                "below added, a whole body below the edge"
            )
            return more[0], [added, *more[1]]
        limit = f"at least {max_height_share:g} of the body below's height"
        return bodies, [f"{what} was not added: too tall ({limit})"]
    if share < SECTION_SHARE:
        return bodies, [f"{what} was not added: too narrow for a body"]
    trial = _with_part_added(bodies, candidate, top, start, front, midline, spacing)
    checked, dropped = drop_without_disc_at_top(
        trial, midline, spacing, factor, None, True, nearest=NEAREST_DISCS
    )
    if dropped or int(checked.max()) <= n:
        reason = dropped[0].split(": ", 1)[-1] if dropped else "not checked"
        return bodies, [f"{what} was not added: {reason}"]
    return trial, [f"{what} was added: a body cut by the field of view"]


def _split_below_disc(
    bodies: NDArray[np.int32],
    top: int,
    candidate: NDArray[np.bool_],
    section: NDArray[np.bool_],
    start: int,
    height: int,
    midline: float,
    spacing: NDArray,
    factor: float,
    front: NDArray | None = None,
) -> tuple[NDArray[np.int32], float] | None:
    """The bodies with the part of a tall candidate below a disc inside it added, or None.

    A candidate too tall for a sliver may be a whole vertebra and the sliver above it,
    joined across a thin disc that the marrow mask bridges (on the tuning seeds of the
    T10 family: T11 and the T10 above it missed together, the candidate 1.0-1.9 times the
    body below's height). Read row by row on the pixels it holds inside the section, a
    disc is a run of rows under :data:`DISC_AREA_SHARE` of its fullest rows with body
    rows above and below it, cut at its emptiest row. The first run of body rows, from
    the candidate's lowest rows up, whose rows up to the next such cut are from
    :data:`WHOLE_BODY_MIN_SHARE` to :data:`WHOLE_BODY_MAX_SHARE` of the top segment's
    height is added, from the cut below it (a shorter run below it is the top segment's
    own rows, left out), when it covers :data:`SECTION_SHARE` of its section and the gap
    between it and the top segment is a disc by the check of
    :func:`.edge_disc.drop_without_disc_at_top` (at least ``factor`` times the median of
    the column's other discs; read against the :data:`NEAREST_DISCS` next below it, as the
    sliver is, it passed a false body on STIR tuning seed 183).

    ``top`` is the top segment's label; with ``front`` the part keeps only the voxels
    within its reach in front of the canal (see :func:`add_cut_top`).

    Returns
    -------
    tuple or None
        The bodies with the part added as label n + 1, and the cut's height (mm) above the
        candidate's lowest row.
    """
    area = (candidate & section[:, None, :]).sum(axis=(0, 2)).astype(float)
    filled = area[area > 0]
    if filled.size == 0:
        return None
    body_rows = area >= DISC_AREA_SHARE * float(np.percentile(filled, 90))
    runs, _ = ndimage.label(body_rows)
    spans = ndimage.find_objects(runs)
    bottom = 0
    for run, after in itertools.pairwise(spans):
        first, valley = run[0].start, slice(run[0].stop, after[0].start)
        cut = valley.start + int(np.argmin(area[valley]))
        if WHOLE_BODY_MIN_SHARE * height <= cut - first <= WHOLE_BODY_MAX_SHARE * height:
            break
        bottom = cut  # a run too short (the top segment's own rows) or too tall
    else:
        return None  # no run of body rows below a disc is a whole body
    lower = candidate.copy()
    lower[:, :bottom, :] = False
    lower[:, cut:, :] = False
    if (lower.any(axis=1) & section).sum() < SECTION_SHARE * section.sum():
        return None
    n = int(bodies.max())
    trial = _with_part_added(bodies, lower, top, start, front, midline, spacing)
    labels, discs = column_discs(trial, midline, spacing, True)
    read = top_disc(discs)
    if labels[0] != n + 1 or read is None or read[0] < factor * read[1]:
        return None
    return trial, float(cut * spacing[1])


def _with_part_added(
    bodies: NDArray[np.int32],
    part: NDArray[np.bool_],
    top: int,
    start: int,
    front: NDArray | None,
    midline: float,
    spacing: NDArray,
) -> NDArray[np.int32]:
    """A copy of ``bodies`` with ``part`` (the rows from ``start`` up) added as label n + 1
    where no segment is, without the voxels further in front of the canal's ``front`` than
    the top segment ``top`` reaches (plus :data:`.top_edge.MARGIN_MM`; all of ``part``
    without ``front``)."""
    if front is not None:
        reach = reach_and_half_width(bodies == top, front, midline)[0]
        depth = np.arange(part.shape[0])[:, None] - front[None, start:]
        part = part & (depth <= reach + MARGIN_MM / float(spacing[0]))[:, :, None]
    trial = bodies.astype(np.int32)  # a copy
    upper_rows = trial[:, start:, :]
    upper_rows[part & (upper_rows == 0)] = int(bodies.max()) + 1
    return trial
