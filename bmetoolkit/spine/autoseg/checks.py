"""Plausibility checks on the segmented bodies: stay in the column, size and shape per body.

A body is a short, roughly elliptic cylinder whose left-right half-width is below its depth
and whose sagittal outline changes little from the midline to its lateral walls. What grew
past that (across slices into the tissue beside the spine, psoas, vessels) is cut off; a
body far smaller than its neighbours (a disc or a partial-volume sliver) or far larger (two
bodies, or a body with the tissue in front of it) is dropped, with a note saying so.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.geometry import label_centroids
from bmetoolkit.spine.autoseg.levels import _section_height
from bmetoolkit.spine.autoseg.lower_edge import cut_at_lower_endplate
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.volume import grown_box

__all__ = [
    "SAME_LEVEL_FRACTION",
    "TOO_LARGE",
    "check_sizes",
    "confine_laterally",
    "cut_by_edge",
    "drop_in_disc_spaces",
    "drop_large_at_edges",
    "drop_off_midline",
    "drop_sharing_a_level",
    "drop_tall_at_lower_edge",
    "drop_too_tall",
    "drop_without_room",
    "end_segments",
    "largest_part",
    "relabelled",
    "si_extents",
]

Labels = NDArray[np.int32]

#: Words of the note of a segment dropped as too large (callers look for them).
TOO_LARGE = "larger than a vertebral body"
#: The body's mid-sagittal outline is read within this distance (mm) of the canal midline.
MID_SAGITTAL_HALF_WIDTH_MM = 3.0
#: A vertebral body crosses the midline: a segment none of whose voxels lies within this
#: distance (mm) of the canal's midline is tissue beside the spine (or a lateral piece at
#: the slab's edge), not a body.
OFF_MIDLINE_MM = 6.0
#: A segment reaching the image's lower edge more than this many times as tall (SI extent)
#: as the median body holds the caudal body with the tissue below it.
TALL_AT_EDGE_FACTOR = 1.6
#: ... reaching within this distance (mm) of the lower edge (the edge rows of an oblique
#: or resampled grid are often empty).
LOWER_EDGE_MM = 3.0
#: A segment reaching within :data:`LOWER_EDGE_MM` of the image's upper or lower edge holds
#: at most one whole body, cut by the edge; over this many times the volume of the largest
#: body not cut by an edge it holds tissue beyond its body (adjacent lumbar bodies differ
#: by about 10 % in volume; a body's neighbour at a cut edge is as large within 30 %).
LARGE_AT_EDGE_FACTOR = 1.3
#: ... provided its bounding box is also over this many times the largest such body's box
#: (each of the three extents of adjacent bodies within about 6 %): where marrow is lost in
#: the whole bodies (mottled marrow) their voxel count under-reads a body, their extent not.
LARGE_AT_EDGE_BOX_FACTOR = 1.2
#: A segment anywhere more than this many times as tall as the median body is taller than
#: two bodies and the disc between them (about 2.3 times a body): a strip of tissue along
#: the column, not one body.
TOO_TALL_FACTOR = 2.5
#: A segment under this fraction of the median body's volume ...
THIN_FACTOR = 0.5
#: ... whose centroid lies closer than this fraction of the bodies' pitch (median distance
#: between consecutive bodies) to the body above and to the body below it sits in the disc
#: space between them. A body split in two keeps one half at about 0.75 pitch from its
#: other neighbour.
DISC_SPACE_PITCH = 0.65
#: Two bodies whose centroids lie under this many pitches apart have no level between them
#: (one more body would put them two pitches apart).
NO_ROOM_PITCH = 1.5
#: A segment taller than this many times the median segment is not one body (two bodies
#: and the disc between them are about 2.3 times a body's height).
ONE_BODY_TALL_FACTOR = 1.5


def largest_part(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The largest connected part of ``mask`` (``mask`` itself when it is empty).

    >>> largest_part(np.array([[1, 0, 1, 1]], bool)).astype(int).tolist()
    [[0, 0, 1, 1]]
    """
    parts, n = ndimage.label(mask)
    if n == 0:
        return mask
    return parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))


def si_extents(
    bodies: NDArray[np.integer], spacing: NDArray
) -> tuple[list[tuple[slice, ...] | None], dict[int, float]]:
    """Each segment's bounding box (``ndimage.find_objects``) and its extent (mm) along SI,
    the second axis of the canonical arrays, for the labels present.

    >>> bodies = np.zeros((4, 10, 2), np.int32)
    >>> bodies[:, 2:6] = 1
    >>> si_extents(bodies, np.array([1.0, 0.5, 1.0]))[1]
    {1: 2.0}
    """
    boxes = ndimage.find_objects(bodies)
    extents = {
        label: (box[1].stop - box[1].start) * float(spacing[1])
        for label, box in enumerate(boxes, start=1)
        if box is not None
    }
    return boxes, extents


def _mid_outline(own: NDArray[np.bool_], centre: float, spacing: NDArray) -> NDArray[np.bool_]:
    """Union of the body's sections within ``MID_SAGITTAL_HALF_WIDTH_MM`` of ``centre``.

    Falls back on the largest section when the body does not reach the midline.
    """
    half = MID_SAGITTAL_HALF_WIDTH_MM / spacing[2]
    slices = np.arange(own.shape[2])
    near = np.abs(slices - centre) <= half
    outline = own[:, :, near].any(axis=2) if near.any() else np.zeros(own.shape[:2], bool)
    if not outline.any():
        outline = own[:, :, int(np.argmax(own.sum(axis=(0, 1))))]
    return outline


def confine_laterally(
    bodies: Labels,
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    every_part: bool = False,
) -> Labels:
    """Cut what each body grew beyond its lateral walls, slice by slice.

    A body's lateral sections must lie inside its mid-sagittal outline grown by
    ``lateral_margin_mm`` (a body is narrower, not deeper, at its sides), and no further
    from the canal midline than ``lateral_half_width_ratio`` times its mid-sagittal depth.
    Of what is left the largest connected part is kept, or with ``every_part`` every part
    (for the caller to tell them apart).
    """
    out = np.zeros_like(bodies)
    lr_mm = (np.arange(bodies.shape[2]) - midline) * spacing[2]
    grow = ndimage.generate_binary_structure(2, 1)
    margin = max(1, round(params.lateral_margin_mm / float(spacing[:2].min())))
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        # The body's box, with room in the sagittal plane for the outline's dilation.
        box = (*grown_box(box[:2], margin + 1, bodies.shape[:2]), box[2])
        own = bodies[box] == label
        outline = _mid_outline(own, midline - box[2].start, spacing)
        depth = float(np.ptp(np.flatnonzero(outline.any(axis=1))) + 1) * float(spacing[0])
        allowed = ndimage.binary_dilation(outline, grow, iterations=margin)
        wide = np.abs(lr_mm[box[2]]) <= params.lateral_half_width_ratio * depth
        kept = own & allowed[:, :, None] & wide[None, None, :]
        if not every_part:
            kept = largest_part(kept)
        out[box][kept] = label
    return out


def check_sizes(
    bodies: Labels,
    spacing: NDArray,
    params: AutosegParameters,
    ends_kept: bool = False,
    tall_kept: float = 0.0,
    tall_over_large: bool = False,
) -> tuple[Labels, list[str]]:
    """Drop bodies far smaller or larger than the median body, with a note for each.

    A body below ``small_body_fraction`` of the median volume is dropped unless it touches
    the field of view (a body cut by the field of view is legitimately small), or, with
    ``ends_kept``, unless it is the column's cranial-most or caudal-most segment (no body
    beyond it: not a disc or a sliver *between* two bodies, but the end body whose marrow
    the body next to it took across the disc; see :func:`end_segments`); one above
    ``large_body_factor`` times the median, or above ``max_body_volume_mm3``, is dropped
    (two bodies joined, or a body with the tissue in front of it: its BME and Modic
    readings would be wrong). With ``tall_kept`` above 0, a segment under the volume floor
    is kept when its SI extent is at least ``tall_kept`` times the median segment's and no
    segment above the floor shares more than :data:`SAME_LEVEL_FRACTION` of its SI rows: as
    tall as a body and alone at its level, it is a body narrowed by the tissue around it,
    not a disc (a third to a half of a body's height) or a sliver of a body beside its
    other part. With ``tall_over_large`` as well, the segments too large for a body (which
    this check drops: the tissue around the column, with or without bodies in it) neither
    cover such a segment's level nor count in the median segment's extent: a body joined
    to that tissue on the other slices stands apart from it only here. Bodies are
    relabelled 1..n.
    """
    n = int(bodies.max())
    if n == 0:
        return bodies, []
    voxel = float(np.prod(spacing))
    volumes = np.bincount(bodies.ravel(), minlength=n + 1)[1:] * voxel
    present = volumes > 0
    median = float(np.median(volumes[present])) if present.sum() >= 3 else float("nan")
    boxes = ndimage.find_objects(bodies)
    notes, keep = [], []
    ends = end_segments(boxes) if ends_kept else set()
    if tall_kept > 0 and np.isfinite(median):
        ceiling = np.inf
        if tall_over_large:  # what this check drops as too large covers no level
            ceiling = min(params.max_body_volume_mm3, params.large_body_factor * median)
        floor = params.small_body_fraction * median
        ends |= _tall_alone(boxes, volumes, floor, tall_kept, ceiling)
    for label, (volume, box) in enumerate(zip(volumes, boxes, strict=True), start=1):
        if box is None:
            continue
        at_edge = label in ends or any(
            s.start == 0 or s.stop == size for s, size in zip(box, bodies.shape, strict=True)
        )
        if np.isfinite(median) and volume < params.small_body_fraction * median and not at_edge:
            notes.append(
                f"a {volume / 1000:.1f} mL segment between the bodies (under "
                f"{params.small_body_fraction:.0%} of the median body, {median / 1000:.1f} mL) "
                "was dropped: a disc or a sliver of a body, not a whole body"
            )
            continue
        too_large = volume > params.max_body_volume_mm3 or (
            np.isfinite(median) and volume > params.large_body_factor * median
        )
        if too_large:
            notes.append(
                f"a {volume / 1000:.0f} mL segment was dropped: {TOO_LARGE} "
                f"(median body {median / 1000:.0f} mL, at most "
                f"{params.max_body_volume_mm3 / 1000:.0f} mL): bodies joined across a disc "
                "or with the tissue in front of them; check the QC figure or pass a label map"
            )
            continue
        keep.append(label)
    return relabelled(bodies, keep), notes


#: One body per level: a segment shares another's level when that one covers more than
#: this fraction of its SI rows (:func:`shared_fraction`; the second pass and the added
#: seeds of :mod:`.midline`, ``tall_kept`` of :func:`check_sizes`).
SAME_LEVEL_FRACTION = 0.5


def shared_fraction(low: int, high: int, ranges: list[tuple[int, int]]) -> float:
    """The largest share of the SI rows ``low..high`` (inclusive) that one of ``ranges``
    also covers (0 without ranges; compared with :data:`SAME_LEVEL_FRACTION`).

    >>> shared_fraction(10, 19, [(0, 12), (15, 40)])
    0.5
    """
    shared = max((min(high, h) - max(low, lo) + 1 for lo, h in ranges), default=0)
    return shared / (high - low + 1)


def _tall_alone(
    boxes: list[tuple[slice, ...] | None],
    volumes: NDArray,
    floor: float,
    fraction: float,
    ceiling: float = np.inf,
) -> set[int]:
    """Labels under the volume ``floor`` whose SI extent is at least ``fraction`` of the
    median segment's and whose SI rows no segment from the floor up to ``ceiling`` shares by
    more than :data:`SAME_LEVEL_FRACTION` (see :func:`check_sizes`); segments above
    ``ceiling`` (too large for a body) count neither there nor in the median."""
    rows = {
        label: (box[1].start, box[1].stop - 1)
        for label, box in enumerate(boxes, start=1)
        if box is not None and volumes[label - 1] <= ceiling
    }
    if not rows:
        return set()
    median = float(np.median([high - low + 1 for low, high in rows.values()]))
    large = [rows[label] for label in rows if volumes[label - 1] >= floor]
    return {
        label
        for label, (low, high) in rows.items()
        if volumes[label - 1] < floor
        and high - low + 1 >= fraction * median
        and shared_fraction(low, high, large) <= SAME_LEVEL_FRACTION
    }


def end_segments(boxes: list[tuple[slice, ...] | None]) -> set[int]:
    """Labels of the cranial-most and caudal-most segments, by the centre of their SI range.

    From a fat-suppressed image alone the bodies grow from mid-sagittal seeds through the
    discs' annulus, which is as dark as the marrow (:mod:`.midline`): a body can take the
    disc beyond it and part of the next body, whose own seed then grows into a fraction of
    it. Between two bodies such a small segment is a disc or a sliver; at the column's end
    there is no body beyond it, so it is the end body itself (tuning seeds 67 and 75 from a
    STIR alone: the top body, T11, grown to 9 of its 17-18 mL and dropped, while T12 held
    the disc between them and the bottom of T11). The checks after the size check (the
    disc spaces, the tissue above the top body with no disc between them, the column fit)
    still read it.

    Parameters
    ----------
    boxes : list of tuple of slices or None
        :func:`scipy.ndimage.find_objects` of the labels (canonical axes, SI second).

    Returns
    -------
    set of int
        The two end labels (one when a single segment is present; empty when none is).

    Examples
    --------
    >>> labels = np.zeros((4, 30, 2), np.int32)
    >>> labels[:, 2:8], labels[:, 12:18], labels[:, 22:26] = 1, 3, 2
    >>> sorted(end_segments(ndimage.find_objects(labels)))
    [1, 2]
    """
    centres = {
        label: 0.5 * (box[1].start + box[1].stop)
        for label, box in enumerate(boxes, start=1)
        if box is not None
    }
    if not centres:
        return set()
    return {min(centres, key=centres.__getitem__), max(centres, key=centres.__getitem__)}


def drop_off_midline(bodies: Labels, midline: float, spacing: NDArray) -> tuple[Labels, list[str]]:
    """Drop segments that do not reach within :data:`OFF_MIDLINE_MM` of the canal midline.

    Every vertebral body crosses the midline; a segment wholly to one side (on the T2
    alone, a lateral piece at the slab's edge beside S1 on tuning seed 16, which was then
    taken for the caudal-most body and hid the sacrum) is not one. Returns the bodies
    relabelled 1..n and a note per segment dropped.
    """
    n = int(bodies.max())
    if n == 0:
        return bodies, []
    lr_mm = np.abs(np.arange(bodies.shape[2]) - midline) * float(spacing[2])
    central = bodies[:, :, lr_mm <= OFF_MIDLINE_MM]
    crosses = np.zeros(n + 1, bool)
    crosses[np.unique(central[central > 0])] = True
    present = np.zeros(n + 1, bool)
    present[np.unique(bodies[bodies > 0])] = True
    dropped = np.flatnonzero(present & ~crosses)
    notes = [
        f"a segment lying wholly more than {OFF_MIDLINE_MM:.0f} mm beside the canal's "
        "midline was dropped: tissue beside the spine, not a vertebral body"
        for _ in dropped
    ]
    return relabelled(bodies, np.flatnonzero(present & crosses)), notes


def drop_tall_at_lower_edge(
    bodies: Labels,
    spacing: NDArray,
    image: NDArray | None = None,
    midline: float | None = None,
    along_columns: bool = False,
) -> tuple[Labels, list[str]]:
    """Cut or drop a segment that reaches the image's lower edge and is far taller than a body.

    On the T2 alone the tissue below the sacrum can have the marrow's signal; S1 joined to
    it down to the image's edge (tuning seed 5: 1.8 times the largest true body) is no body
    to measure lesions in. A segment over :data:`TALL_AT_EDGE_FACTOR` times the median SI
    extent of the bodies that reaches within :data:`LOWER_EDGE_MM` of the lower edge is cut
    at its caudal body's inferior endplate when ``image`` (and the canal's ``midline``) are
    given and the endplate shows on the mid-sagittal slab
    (:func:`.lower_edge.cut_at_lower_endplate`), the part below dropped; otherwise it is
    dropped whole. A note says which.

    With ``along_columns`` (and ``midline``; the plain T2 alone) a segment is tall when its
    mid-sagittal height, read along its columns as the level step reads it
    (``levels._section_height``), is over :data:`TALL_AT_EDGE_FACTOR` times the
    median body's: S1 is tilted 30-40 degrees, so its SI extent is up to 1.5 times its
    height, and a whole S1 whose corner reaches the edge (tuning seed 70 on the T2 alone,
    1.6 times the median extent) is no body joined to the tissue below it.
    """
    boxes, extents = si_extents(bodies, spacing)
    if len(extents) < 3:
        return bodies, []
    median = float(np.median(list(extents.values())))
    heights = extents
    if along_columns and midline is not None:
        heights = _column_heights(bodies, midline, spacing)
    typical = float(np.median(list(heights.values())))
    tall = [
        label
        for label, extent in extents.items()
        if boxes[label - 1][1].start * float(spacing[1]) <= LOWER_EDGE_MM
        and heights[label] > TALL_AT_EDGE_FACTOR * typical
    ]
    if not tall:
        return bodies, []
    bodies, notes, dropped = bodies.copy(), [], []
    for label in tall:
        kept = _cut_below_endplate(bodies == label, image, midline, spacing, median)
        if kept is None:
            dropped.append(label)
            notes.append(
                f"a segment at the image's lower edge {extents[label]:.0f} mm tall (median "
                f"body {median:.0f} mm) was dropped: a body joined to the tissue below it"
            )
            continue
        bodies[(bodies == label) & ~kept] = 0
        notes.append(
            f"a segment at the image's lower edge {extents[label]:.0f} mm tall (median body "
            f"{median:.0f} mm) was cut at the caudal body's inferior endplate: the tissue "
            "below it was dropped"
        )
    return relabelled(bodies, [label for label in extents if label not in dropped]), notes


def _column_heights(bodies: Labels, midline: float, spacing: NDArray) -> dict[int, float]:
    """Each segment's mid-sagittal height (mm) along its columns (the level step's)."""
    heights = {}
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        own = bodies[box] == label
        outline = _mid_outline(own, midline - box[2].start, spacing)
        heights[label] = _section_height(outline, spacing)
    return heights


def _cut_below_endplate(
    segment: NDArray[np.bool_],
    image: NDArray | None,
    midline: float | None,
    spacing: NDArray,
    median_mm: float,
) -> NDArray[np.bool_] | None:
    """The part of a tall lower-edge segment above its caudal body's inferior endplate.

    None when there is no image to read it on, no endplate is found, or what is left still
    reaches the lower edge or is still taller than :data:`TALL_AT_EDGE_FACTOR` bodies.
    """
    if image is None or midline is None:
        return None
    kept = cut_at_lower_endplate(segment, image, midline, spacing, median_mm)
    if kept is None:
        return None
    rows = np.flatnonzero(kept.any(axis=(0, 2)))
    if rows[0] * float(spacing[1]) <= LOWER_EDGE_MM:
        return None
    if (rows[-1] - rows[0] + 1) * float(spacing[1]) > TALL_AT_EDGE_FACTOR * median_mm:
        return None
    return kept


def relabelled(bodies: Labels, keep: list[int] | NDArray[np.integer]) -> Labels:
    """``bodies`` with only the labels in ``keep``, renumbered 1..n in their order.

    >>> relabelled(np.array([[[0, 3, 1, 2]]], np.int32), [1, 3]).tolist()
    [[[0, 2, 1, 0]]]
    """
    lookup = np.zeros(int(bodies.max()) + 1, np.int32)
    lookup[keep] = np.arange(1, len(keep) + 1)
    return lookup[bodies]


def _si_extents(bodies: Labels, spacing: NDArray) -> dict[int, tuple[int, int, float]]:
    """Lowest row, end row (exclusive) and SI extent (mm) of every label present."""
    return {
        label: (box[1].start, box[1].stop, (box[1].stop - box[1].start) * float(spacing[1]))
        for label, box in enumerate(ndimage.find_objects(bodies), start=1)
        if box is not None
    }


def _cut_by_edge(
    extents: dict[int, tuple[int, int, float]], rows: int, spacing: NDArray
) -> dict[int, bool]:
    """Per label of ``extents`` (:func:`_si_extents`): whether it reaches within
    :data:`LOWER_EDGE_MM` of the image's lower or upper edge (``rows`` along SI)."""
    edge = LOWER_EDGE_MM / float(spacing[1])
    return {
        label: start <= edge or stop >= rows - edge for label, (start, stop, _) in extents.items()
    }


def cut_by_edge(bodies: Labels, spacing: NDArray) -> dict[int, bool]:
    """Per label present: whether it reaches within :data:`LOWER_EDGE_MM` of the image's
    lower or upper edge (along SI, the second axis).

    >>> bodies = np.zeros((2, 20, 2), np.int32)
    >>> bodies[:, 1:6], bodies[:, 8:14] = 1, 2
    >>> cut_by_edge(bodies, np.ones(3))
    {1: True, 2: False}
    """
    return _cut_by_edge(_si_extents(bodies, spacing), bodies.shape[1], spacing)


def drop_too_tall(bodies: Labels, spacing: NDArray) -> tuple[Labels, list[str]]:
    """Drop segments more than :data:`TOO_TALL_FACTOR` times as tall as the median body.

    Such a segment spans more than two bodies with the disc between them. On the T2 alone
    (tuning seeds 26 and 46) it was a strip of tissue with the marrow's signal behind the
    bodies on two lateral slices, running 180 mm from the image's upper edge down past
    four bodies: ordered among the bodies by its centroid, it withheld every level as
    "two bodies joined". Returns the bodies relabelled 1..n and a note per segment dropped.
    """
    extents = _si_extents(bodies, spacing)
    if len(extents) < 3:
        return bodies, []
    median = float(np.median([extent for *_, extent in extents.values()]))
    dropped = [label for label, (*_, e) in extents.items() if e > TOO_TALL_FACTOR * median]
    if not dropped:
        return bodies, []
    notes = [
        f"a segment {extents[label][2]:.0f} mm tall (median body {median:.0f} mm) was "
        "dropped: taller than two bodies and their disc, a strip of tissue along the column"
        for label in dropped
    ]
    return relabelled(bodies, [label for label in extents if label not in dropped]), notes


def drop_in_disc_spaces(bodies: Labels, spacing: NDArray) -> tuple[Labels, list[str]]:
    """Drop thin segments lying in the disc space between two bodies.

    A segment under :data:`THIN_FACTOR` of the median body's volume, not cut by the
    image's upper or lower edge, whose centroid lies within :data:`DISC_SPACE_PITCH` of the
    bodies' pitch of both the body above and the body below it, is a disc (or marrow-like
    tissue at its rim) segmented as marrow: on the T2 alone (tuning seed 20) two such
    slabs, 13-15 mm tall between bodies 24-29 mm tall, were counted as bodies and every
    level above them named two too high (tuning seeds 82 and 118: one slab, 0.4 of the
    median body's volume but, tilted, 0.63 of its SI extent). Returns the bodies relabelled
    1..n and a note per segment dropped.
    """
    extents = _si_extents(bodies, spacing)
    if len(extents) < 4:
        return bodies, []
    labels = np.array(list(extents))
    centroids = label_centroids(bodies, labels) * spacing
    volumes = np.bincount(bodies.ravel())[labels].astype(np.float64)
    median = float(np.median([extent for *_, extent in extents.values()]))
    cut = _cut_by_edge(extents, bodies.shape[1], spacing)
    thin = np.array(
        [
            volume < THIN_FACTOR * np.median(volumes) and not cut[label]
            for label, volume in zip(labels, volumes, strict=True)
        ]
    )
    whole = centroids[~thin]
    if thin.sum() == 0 or whole.shape[0] < 3:
        return bodies, []
    whole = whole[np.argsort(whole[:, 1])]
    pitch = float(np.median(np.linalg.norm(np.diff(whole, axis=0), axis=1)))
    dropped = []
    for label, centre in zip(labels[thin], centroids[thin], strict=True):
        above, below = whole[whole[:, 1] > centre[1]], whole[whole[:, 1] <= centre[1]]
        if len(above) == 0 or len(below) == 0:
            continue
        near_above = float(np.linalg.norm(above[0] - centre))
        near_below = float(np.linalg.norm(below[-1] - centre))
        if max(near_above, near_below) < DISC_SPACE_PITCH * pitch:
            dropped.append(int(label))
    if not dropped:
        return bodies, []
    notes = [
        f"a segment {extents[label][2]:.0f} mm tall in the disc space between two bodies "
        f"(median body {median:.0f} mm) was dropped: a disc, not a vertebral body"
        for label in dropped
    ]
    return relabelled(bodies, [int(x) for x in labels if int(x) not in dropped]), notes


def drop_without_room(bodies: Labels, spacing: NDArray) -> tuple[Labels, list[str]]:
    """Drop a small segment between two bodies that have no level between them.

    A segment under :data:`THIN_FACTOR` of the mean volume of the two segments either side
    of it (by SI centroid), not cut by the image's upper or lower edge, is dropped when
    the nearest other segments above and below it lie under :data:`NO_ROOM_PITCH` of the
    bodies' pitch apart (the median distance between the centroids of consecutive other
    segments). :func:`drop_in_disc_spaces` reads its two distances to them instead, and
    a partial neighbour moves its centroid away: read on the T2 or STIR's own grid
    (``bench_autoseg.py`` since session 43) a slab of tissue in the L3/L4 disc space
    (tuning seeds 82 and 118, 6.2 and 10.1 mL, 0.37 and 0.42 of its neighbours, L4 found
    at half its volume on 82) stood 25 mm from one neighbour against 0.65 of a 36 mm
    pitch, or over half the median body's volume, where thoracic bodies lower that
    median, and took a level: every level above it was named one too high. Returns the
    bodies relabelled 1..n and a note per segment dropped.

    Examples
    --------
    >>> bodies = np.zeros((4, 120, 4), np.int32)
    >>> for label, low in enumerate((100, 70, 40, 10), start=1):
    ...     bodies[:, low : low + 20] = label
    >>> bodies[1:3, 33:37] = 5  # a slab in the disc between bodies 3 and 4
    >>> kept, notes = drop_without_room(bodies, np.ones(3))
    >>> int(kept.max()), notes[0].split(":")[0]
    (4, 'a 0.0 mL segment between two bodies 30 mm apart (pitch 30 mm) was dropped')
    """
    extents = _si_extents(bodies, spacing)
    if len(extents) < 4:
        return bodies, []
    labels = np.array(list(extents))
    centroids = label_centroids(bodies, labels) * spacing
    volumes = np.bincount(bodies.ravel())[labels].astype(np.float64)
    order = np.argsort(centroids[:, 1])  # caudal to cranial
    labels, centroids, volumes = labels[order], centroids[order], volumes[order]
    cut = _cut_by_edge(extents, bodies.shape[1], spacing)
    small = np.zeros(len(labels), bool)
    small[1:-1] = volumes[1:-1] < THIN_FACTOR * (volumes[:-2] + volumes[2:]) / 2
    small &= ~np.array([cut[int(label)] for label in labels])
    others = centroids[~small]
    if not small.any() or len(others) < 3:
        return bodies, []
    pitch = float(np.median(np.linalg.norm(np.diff(others, axis=0), axis=1)))
    dropped, notes = [], []
    for label, centre, volume in zip(labels[small], centroids[small], volumes[small], strict=True):
        above, below = others[others[:, 1] > centre[1]], others[others[:, 1] <= centre[1]]
        if len(above) == 0 or len(below) == 0:
            continue
        apart = float(np.linalg.norm(above[0] - below[-1]))
        if apart < NO_ROOM_PITCH * pitch:
            dropped.append(int(label))
            notes.append(
                f"a {volume * float(np.prod(spacing)) / 1000:.1f} mL segment between two "
                f"bodies {apart:.0f} mm apart (pitch {pitch:.0f} mm) was dropped: no level "
                "fits between them; a disc or tissue in its space, not a vertebral body"
            )
    if not dropped:
        return bodies, []
    return relabelled(bodies, [int(x) for x in sorted(labels) if int(x) not in dropped]), notes


def drop_sharing_a_level(bodies: Labels, spacing: NDArray) -> tuple[Labels, list[str]]:
    """Drop a segment whose level a larger segment holds (one body per level).

    A segment more than :data:`SAME_LEVEL_FRACTION` of whose SI rows a larger segment, no
    taller than :data:`ONE_BODY_TALL_FACTOR` times the median segment (one body, not two
    joined, which the smaller may be the body of: tuning seeds 95 and 97) and not cut by
    the image's upper or lower edge (there a segment may be more than a body: the sacrum
    below S1 and the pelvis, whose rows a tilted S1 shares, tuning seed 13), also covers
    lies at that segment's level: beside it or wrapped around it, not a vertebra of
    its own (adjacent bodies share a few rows where they tilt: L5 and S1 under a fifth of
    L5's rows on that case). Counted as a level it names every level above it
    one too high: on the T2 with the pelvis in view (tuning seed 103, read on its own
    grid) the top segment cut back to the body below's depth and width
    (:func:`.top_edge.cut_back_top`) kept 10 mL of tissue around T12, 70 % of its rows
    T12's. Returns the bodies relabelled 1..n and a note per segment dropped.

    Examples
    --------
    >>> bodies = np.zeros((30, 60, 4), np.int32)
    >>> bodies[10:20, 5:25] = 1
    >>> bodies[10:20, 35:55] = 2
    >>> bodies[22:26, 33:52] = 3  # beside body 2, at its level
    >>> kept, notes = drop_sharing_a_level(bodies, np.ones(3))
    >>> int(kept.max()), notes[0].split(":")[0]
    (2, 'a 0.3 mL segment at the level of a 0.8 mL one (89% of its rows) was dropped')
    """
    extents = _si_extents(bodies, spacing)
    if len(extents) < 2:
        return bodies, []
    volumes = np.bincount(bodies.ravel()) * float(np.prod(spacing)) / 1000
    tallest = ONE_BODY_TALL_FACTOR * float(np.median([mm for *_, mm in extents.values()]))
    cut = _cut_by_edge(extents, bodies.shape[1], spacing)
    dropped, notes = [], []
    for label, (low, high, _) in extents.items():
        shares = {
            other: shared_fraction(low, high - 1, [(other_low, other_high - 1)])
            for other, (other_low, other_high, mm) in extents.items()
            if volumes[other] > volumes[label] and mm <= tallest and not cut[other]
        }
        holder = max(shares, key=shares.__getitem__, default=None)
        if holder is not None and shares[holder] > SAME_LEVEL_FRACTION:
            dropped.append(label)
            notes.append(
                f"a {volumes[label]:.1f} mL segment at the level of a {volumes[holder]:.1f} "
                f"mL one ({shares[holder]:.0%} of its rows) was dropped: beside or around "
                "that body, not a vertebra of its own"
            )
    if not dropped:
        return bodies, []
    return relabelled(bodies, [label for label in sorted(extents) if label not in dropped]), notes


def drop_large_at_edges(bodies: Labels, spacing: NDArray) -> tuple[Labels, list[str]]:
    """Drop a segment at the image's upper or lower edge far larger than a whole body.

    A segment reaching within :data:`LOWER_EDGE_MM` of the upper or lower edge is a body
    cut by the field of view, so it holds at most one whole body; over
    :data:`LARGE_AT_EDGE_FACTOR` times the volume of the largest body that no edge cuts
    (at the lower edge) or of the whole body nearest below it (at the upper edge), it holds
    the tissue around its body. Vertebral bodies grow from one level to the next down to
    L5, so the cut top body (T10-T12 on a lumbar scan) is no larger than its caudal
    neighbour, while the largest whole body, S1 or L5, may hold twice its volume (tuning
    seeds 1, 2, 28 and 30 on the T2 alone: a top segment of tissue above T11, 1.4-2.3 times
    the body below it but under 1.3 times S1; S1 at the lower edge, by contrast, may be
    1.4 times L5). On the T2 alone (tuning seeds 72 and 73) the
    cranial-most segment was the top body with the marrow-like tissue above, in front of
    and beside it, up to the upper edge (1.8 times the largest true body, two thirds of
    it outside any body); on seed 75 (cut above the sacrum) L5 with the tissue in front of
    and beside it at the cut edge (2.25 times). Its bounding box must also exceed
    :data:`LARGE_AT_EDGE_BOX_FACTOR` times the largest such body's: on seed 59 the whole
    bodies held a fifth of their marrow (mottled marrow lost) and L5 at the cut edge, well
    segmented, was 3.4 times their largest in voxels but not in extent. Trimming the
    segment to a body's height does not help: the tissue lies beside the body too, so it
    is dropped, with a note. At least two bodies no edge cuts are needed for the
    reference. Returns the bodies relabelled 1..n and a note per segment dropped.
    """
    extents = _si_extents(bodies, spacing)
    edge = LOWER_EDGE_MM / float(spacing[1])
    at_edge = _cut_by_edge(extents, bodies.shape[1], spacing)
    volumes = np.bincount(bodies.ravel()) * float(np.prod(spacing))
    boxes = ndimage.find_objects(bodies)
    box_volumes = {
        label: float(np.prod([s.stop - s.start for s in boxes[label - 1]])) for label in extents
    }
    whole = [label for label, cut in at_edge.items() if not cut]
    if len(whole) < 2:
        return bodies, []
    largest = max(whole, key=lambda label: volumes[label])
    references = {
        label: largest
        if extents[label][0] <= edge
        else _caudal_neighbour(label, whole, extents) or largest
        for label, cut in at_edge.items()
        if cut
    }
    dropped = [
        label
        for label, reference in references.items()
        if volumes[label] > LARGE_AT_EDGE_FACTOR * volumes[reference]
        and box_volumes[label] > LARGE_AT_EDGE_BOX_FACTOR * box_volumes[reference]
    ]
    if not dropped:
        return bodies, []
    notes = [
        f"a {volumes[label] / 1000:.0f} mL segment at the image's "
        + (
            f"lower edge (largest body not cut by an edge {volumes[largest] / 1000:.0f} mL)"
            if extents[label][0] <= edge
            else f"upper edge (whole body below it {volumes[references[label]] / 1000:.0f} mL)"
        )
        + " was dropped: a body cut by the edge joined to the tissue around it"
        for label in dropped
    ]
    return relabelled(bodies, [label for label in extents if label not in dropped]), notes


def _caudal_neighbour(
    label: int, whole: list[int], extents: dict[int, tuple[int, int, float]]
) -> int | None:
    """The body of ``whole`` nearest below ``label`` (by the middle of their SI extents),
    None when none lies below it."""
    middle = {other: (extents[other][0] + extents[other][1]) / 2 for other in [label, *whole]}
    below = [other for other in whole if middle[other] < middle[label]]
    return max(below, key=middle.__getitem__) if below else None
