"""Bodies without a T1: one seed per body from the mid-sagittal slab, grown back by watershed.

On a T2 the tissue in front of and beside the bodies (bowel, vessel walls, psoas) can have
the marrow's signal; only the thin dark cortex separates it from a body. In the slices near
the canal's midline that cortex meets the slice face-on and is seen; on the lateral slices
of a 3-5 mm slab it runs through the slice, is lost to partial volume, and the body's side
merges with the tissue beside it. Seeds labelled in 3D then join every body to that tissue
through the lateral slices, and the joined segment is dropped as too deep. Here:

1. the seeds (the marrow eroded by ``seed_erosion_mm``) are labelled within
   :data:`MID_SLAB_MM` of the canal midline only, so the bodies' seeds stay apart from the
   tissue in front where the wall is seen; tall seeds are split and implausible ones (too
   far from the canal, too deep) are kept as competitors;
2. every seed grows back into the marrow by a watershed on the distance to the marrow's
   edge (in the sagittal plane), so where a body and the tissue in front touch through a
   gap in the cortex the boundary falls at the narrowest point; voxels further than the
   erosion from any seed stay out (as :func:`.bodies.split_bodies`);
3. a body still joined to the tissue in front along its whole wall was dropped: the marrow
   no deeper than the bodies found (their anterior reach from the canal, interpolated along
   the spine, plus :data:`DEPTH_MARGIN_MM`) is segmented again, and a body found there is
   kept when it lies at a level no body found covers (:data:`SAME_LEVEL_FRACTION`) and
   is not cut by the field of view's upper or lower edge (tissue in front of the canal
   beyond the last body, with no disc beyond it to show it is bone).

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.segmentation import watershed

from bmetoolkit.spine.autoseg.bodies import (
    _disk,
    _plausible,
    _split_tall,
    box_around,
    component_shape,
)
from bmetoolkit.spine.autoseg.checks import (
    LOWER_EDGE_MM,
    SAME_LEVEL_FRACTION,
    cut_by_edge,
    largest_part,
    shared_fraction,
)
from bmetoolkit.spine.autoseg.params import AutosegParameters

__all__ = [
    "SlabSeeds",
    "add_at_empty_levels",
    "alone_at_level",
    "any_mid_slice_seed",
    "bodies_from_midline",
    "mid_slab",
    "mid_slice_seeds",
    "reach_of_bodies",
    "seed_mid_slab",
    "split_from_midline",
]

Mask = NDArray[np.bool_]
Labels = NDArray[np.int32]

#: Seeds are labelled within this distance (mm, left-right) of the canal midline.
MID_SLAB_MM = 6.0
#: Second pass: marrow up to this far (mm) in front of the found bodies' anterior reach.
DEPTH_MARGIN_MM = 2.0
#: A seed under the volume floor is kept when alone at its level (:func:`alone_at_level`)
#: and at least this fraction of the floor ...
ALONE_MIN_VOLUME_FRACTION = 0.25
#: ... and at least this fraction of the kept seeds' median depth (as
#: ``column_fit``'s shallow-segment check).
ALONE_DEPTH_FRACTION = 0.65
#: Percentile of a body's distance from the canal wall taken as its anterior reach.
REACH_PERCENTILE = 95.0


def mid_slab(n_lr: int, midline: float, spacing: NDArray) -> NDArray[np.bool_]:
    """Left-right slices within :data:`MID_SLAB_MM` of ``midline`` (at least the nearest)."""
    lr = np.abs(np.arange(n_lr) - midline) * float(spacing[2])
    return lr <= max(MID_SLAB_MM, 0.6 * float(spacing[2]))


def split_from_midline(
    marrow: Mask,
    distance: NDArray[np.float32],
    front: NDArray[np.float64],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    alone: bool = False,
    mid_slice: bool = False,
    seeded: SlabSeeds | None = None,
) -> Labels:
    """Bodies (labels 1..n) from mid-slab seeds grown back by watershed (steps 1-2 above).

    Parameters
    ----------
    marrow : ndarray of bool
        Marrow-like voxels of the column.
    distance : ndarray, shape (n_ap, n_si)
        Distance (mm) anterior of the canal's wall (:func:`.bodies.body_column`).
    front : ndarray, shape (n_si,)
        The canal's anterior wall (AP index) per SI row.
    midline : float
        Left-right index of the canal midline.
    spacing : ndarray, shape (3,)
    params : AutosegParameters
    alone : bool
        Also keep the seeds under the volume floor alone at their level
        (:func:`alone_at_level`; a fat-suppressed image alone).
    mid_slice : bool
        A seed far larger than the others is also read on the sagittal slice nearest the
        midline, where its body's part may stand apart (:func:`mid_slice_seeds`; a plain
        T2 alone, ``t2_mid_slice_seeds``).
    seeded : SlabSeeds, optional
        :func:`seed_mid_slab` of these same inputs, when the caller has it (the same
        marrow is read more than once from a plain T2 alone); else it is computed here.
    """
    seeds, labels, n, keep, added = _slab_seeds(
        marrow, distance, front, midline, spacing, params, mid_slice, seeded
    )
    if alone:
        keep = [*keep, *alone_at_level(labels, keep, distance, spacing, params)]
    if not keep:
        return np.zeros(marrow.shape, np.int32)
    # The transforms and the watershed run on boxes around the marrow and the seeds (the
    # same values as on the whole column: see :func:`.bodies.box_around`).
    box = box_around(marrow, (1, 1, 1))
    depth = _in_plane_depth(marrow[box], spacing)
    grown = np.zeros(labels.shape, labels.dtype)
    grown[box] = watershed(-depth, labels[box], mask=marrow[box])
    reach = params.seed_erosion_mm + float(spacing[:2].max())
    near = box_around(seeds, [int(np.ceil(reach / float(s))) + 1 for s in spacing])
    within = np.zeros(seeds.shape, bool)  # within ``reach`` (mm) of a seed voxel
    within[near] = ndimage.binary_dilation(seeds[near], structure=_ball(reach, spacing))
    grown[~within] = 0
    if added:
        grown = _within_reach(grown, labels, added, keep, distance, midline, spacing, reach)
    lookup = np.zeros(n + 1, np.int32)
    lookup[keep] = np.arange(1, len(keep) + 1)
    return lookup[grown]


def _within_reach(
    grown: Labels,
    seeds: Labels,
    added: list[int],
    keep: list[int],
    distance: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    seed_reach_mm: float,
) -> Labels:
    """The regions grown from the seeds ``added`` by :func:`mid_slice_seeds`, cut at the
    other bodies' anterior and posterior reach (:func:`reach_of_bodies`, each plus
    :data:`DEPTH_MARGIN_MM`), at the SI centres of the bodies above and below and at
    ``seed_reach_mm`` beyond the SI range of its seed (the erosion and a pixel, as a body
    grows back from its seed in :func:`.bodies.split_bodies`), each its largest connected
    part: such a seed lies in marrow joined to the tissue around the body, into which its
    watershed region runs where the other seeds do not compete (a body never reaches past
    its neighbours' middles)."""
    others = np.where(np.isin(grown, [label for label in keep if label not in added]), grown, 0)
    reach = reach_of_bodies(others, distance, midline, spacing)
    back = reach_of_bodies(others, distance, midline, spacing, 100.0 - REACH_PERCENTILE)
    if reach is None or back is None:
        return grown
    outside = (distance > (reach + DEPTH_MARGIN_MM)[None, :]) | (
        distance < (back - DEPTH_MARGIN_MM)[None, :]
    )
    beyond = outside[:, :, None]
    rows = np.arange(grown.shape[1])
    centres = [float(np.mean(np.flatnonzero((others == label).any(axis=(0, 2)))))
               for label in np.unique(others[others > 0])]  # fmt: skip
    out = grown.copy()
    for label in added:
        own = grown == label
        out[own] = 0
        if not own.any():
            continue
        middle = float(np.mean(np.flatnonzero(own.any(axis=(0, 2)))))
        below = max((c for c in centres if c < middle), default=-1.0)
        above = min((c for c in centres if c > middle), default=float(rows.size))
        seed_rows = np.flatnonzero((seeds == label).any(axis=(0, 2)))
        extra = seed_reach_mm / float(spacing[1])
        below = max(below, seed_rows[0] - extra - 1)
        above = min(above, seed_rows[-1] + extra + 1)
        between = ((rows > below) & (rows < above))[None, :, None]
        out[largest_part(own & ~beyond & between)] = label
    return out


@dataclass(frozen=True)
class SlabSeeds:
    """The seeds of the mid-sagittal slab (:func:`seed_mid_slab`; arrays read-only).

    Attributes
    ----------
    eroded : ndarray of bool
        The marrow eroded by ``seed_erosion_mm``.
    initial : ndarray of int32
        Its components within :data:`MID_SLAB_MM` of the midline, as first labelled.
    labels : ndarray of int32
        The same with the tall ones split (labels 1..n).
    n : int
    keep : tuple of int
        The labels kept (plausible bodies' seeds).
    """

    eroded: Mask
    initial: Labels
    labels: Labels
    n: int
    keep: tuple[int, ...]


def seed_mid_slab(
    marrow: Mask,
    distance: NDArray[np.float32],
    front: NDArray[np.float64],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
) -> SlabSeeds:
    """Step 1 above without the mid-slice seeds: the marrow eroded, its mid-slab seeds
    labelled, tall ones split (:func:`.bodies._split_tall`) and the plausible ones kept
    (:func:`.bodies._plausible`). Arguments as :func:`split_from_midline`."""
    seeds = ndimage.binary_erosion(marrow, structure=_disk(params.seed_erosion_mm, spacing))
    mid = mid_slab(marrow.shape[2], midline, spacing)
    initial, n = ndimage.label(seeds & mid[None, None, :])
    labels, n, _ = _split_tall(initial, n, front, spacing, params)
    keep = _plausible(labels, n, distance, spacing, params, grown=params.seed_erosion_mm)
    for array in (seeds, initial, labels):
        array.setflags(write=False)
    return SlabSeeds(seeds, initial, labels, n, tuple(keep))


def _slab_seeds(
    marrow: Mask,
    distance: NDArray[np.float32],
    front: NDArray[np.float64],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    mid_slice: bool,
    seeded: SlabSeeds | None = None,
) -> tuple[Mask, Labels, int, list[int], list[int]]:
    """The eroded marrow, the seeds of the mid-sagittal slab (tall ones split), their
    count, the labels kept and those :func:`mid_slice_seeds` added (with ``mid_slice``);
    from ``seeded`` (:func:`seed_mid_slab` of the same inputs) when given."""
    if seeded is None:
        seeded = seed_mid_slab(marrow, distance, front, midline, spacing, params)
    seeds, labels, n, keep = seeded.eroded, seeded.labels, seeded.n, list(seeded.keep)
    if not mid_slice:
        return seeds, labels, n, keep, []
    before = len(keep)
    labels, n, keep = mid_slice_seeds(
        labels, n, keep, seeded.initial, distance, midline, spacing, params
    )
    return seeds, labels, n, keep, keep[before:]


def any_mid_slice_seed(
    marrow: Mask,
    distance: NDArray[np.float32],
    front: NDArray[np.float64],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    bodies: Labels | None = None,
    seeded: SlabSeeds | None = None,
) -> bool:
    """Whether :func:`mid_slice_seeds` finds a seed in the mid-sagittal slab of ``marrow``
    (the caller then segments it again with them; without one that would change nothing),
    and with ``bodies`` (the segments kept) one at a level no whole segment of them covers
    (SI ranges overlapping by more than :data:`SAME_LEVEL_FRACTION` of the seed's; the only
    seeds whose bodies :func:`add_at_empty_levels` can add). ``seeded`` as in
    :func:`split_from_midline`."""
    _, labels, _, _, added = _slab_seeds(
        marrow, distance, front, midline, spacing, params, True, seeded
    )
    if bodies is None or not added:
        return bool(added)
    ranges = _whole_ranges(bodies, spacing)
    for label in added:
        if shared_fraction(*_si_range(labels, label), ranges) <= SAME_LEVEL_FRACTION:
            return True
    return False


def alone_at_level(
    labels: Labels,
    keep: list[int],
    distance: NDArray[np.float32],
    spacing: NDArray,
    params: AutosegParameters,
) -> list[int]:
    """Seeds under the volume floor kept as bodies: each alone at its level of the column.

    The mid-slab seed holds only the part of a body's eroded marrow within
    :data:`MID_SLAB_MM` of the midline; a basivertebral vein, a lesion band or mottled
    marrow there can leave it under the volume floor of :func:`.bodies._plausible` (set
    for seeds labelled in 3D), and the body is then lost although its neighbours are
    found. The floor is there to reject fragments, and a fragment shares its level with
    its body's seed. A seed passing every other check of :func:`.bodies._plausible`, at
    least :data:`ALONE_MIN_VOLUME_FRACTION` of the floor, whose SI range overlaps no kept
    seed's by more than :data:`SAME_LEVEL_FRACTION` and whose depth is at least
    :data:`ALONE_DEPTH_FRACTION` of the kept seeds' median depth (adjacent bodies differ
    in depth by about a tenth; a disc's posterior annulus or a strip of tissue is
    shallower) is kept; the largest first, each then covering its level. Needs at least
    two kept seeds (their median depth).
    """
    if len(keep) < 2:
        return []
    grown = params.seed_erosion_mm
    boxes = ndimage.find_objects(labels)
    depths = [
        component_shape(labels, boxes[label - 1], label, distance, spacing, grown)[2]
        for label in keep
    ]
    min_depth = ALONE_DEPTH_FRACTION * float(np.median(depths))
    volumes = np.bincount(labels.ravel(), minlength=len(boxes) + 1) * float(np.prod(spacing))
    floor = params.min_body_volume_mm3 * 0.5
    ranges = [(boxes[label - 1][1].start, boxes[label - 1][1].stop - 1) for label in keep]
    candidates = []
    for label, box in enumerate(boxes, start=1):
        if box is None or label in keep:
            continue
        if not ALONE_MIN_VOLUME_FRACTION * floor <= volumes[label] < floor:
            continue
        height, gap, depth = component_shape(labels, box, label, distance, spacing, grown)
        if (
            height >= params.min_body_height_mm
            and gap <= params.max_posterior_gap_mm
            and min_depth <= depth <= params.max_body_depth_mm
        ):
            candidates.append(label)
    added = []
    for label in sorted(candidates, key=lambda c: -volumes[c]):
        low, high = boxes[label - 1][1].start, boxes[label - 1][1].stop - 1
        if shared_fraction(low, high, ranges) <= SAME_LEVEL_FRACTION:
            added.append(label)
            ranges.append((low, high))
    return added


def mid_slice_seeds(
    labels: Labels,
    n: int,
    keep: list[int],
    initial: Labels,
    distance: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
) -> tuple[Labels, int, list[int]]:
    """Bodies inside a seed far larger than the others, read on the mid-sagittal slice.

    A body whose thin cortex is lost on one lateral slice of the slab (partial volume, a
    wall that bends between slices) joins, through that slice, the marrow-like tissue in
    front of, behind or above it: its seed becomes part of one large seed of that tissue
    and the body is lost with it (the size check drops the segment it grows into, and the
    further erosion of :func:`.bodies._split_tall` erodes the body's smaller part away). On
    the sagittal slice nearest the canal's midline the cortex meets the slice face-on and
    the body's eroded marrow stands apart. Each part, on that slice, of a seed (as labelled
    before that split, ``initial``) holding over ``large_body_factor`` times the median
    kept seed's voxels, outside the seeds kept at their ordinary size, is a new seed when
    it is shaped like a body's section (as :func:`.bodies._plausible`: height, gap behind it,
    depth, allowing for the erosion), holds at least ``small_body_fraction`` of the median
    kept seed's section on that slice, is not cut by the image's upper or lower edge
    (within :data:`.checks.LOWER_EDGE_MM` plus the erosion) and overlaps no kept seed's SI
    range by more than :data:`SAME_LEVEL_FRACTION` (one body per level). The new seed is
    the large seed's voxels of the slab over that part's footprint, connected to it and in
    no seed of ordinary size; the rest of the large seed stays and competes in the
    watershed as before. Needs three kept seeds of ordinary size.

    With ``t2_mid_slice_reach_mm`` above 0 the slices within that distance of the midline
    are read too, nearest first, after the nearest one (a basivertebral vein or a lesion
    band across the body on the midline slice can cut its section into pieces each too
    small for a body's, while beside it the section is whole); a level found on a nearer
    slice is not read again, and a part on a slice beside the midline must not cover more
    than :data:`SAME_LEVEL_FRACTION` of a kept seed's SI range either (a strip of tissue
    running past a body's level is no body's section).

    Returns
    -------
    labels, n, keep
        The labels with the new seeds numbered after ``n``, their count and the labels
        kept (the new ones added).
    """
    if len(keep) < 3:
        return labels, n, keep
    volumes = np.bincount(labels.ravel(), minlength=n + 1)
    limit = params.large_body_factor * float(np.median(volumes[keep]))
    ordinary = [label for label in keep if volumes[label] <= limit]
    before = np.bincount(initial.ravel())
    large = np.flatnonzero(before > limit)
    large = large[large > 0]
    if large.size == 0 or len(ordinary) < 3:
        return labels, n, keep
    boxes = ndimage.find_objects(labels)
    ranges = [(boxes[label - 1][1].start, boxes[label - 1][1].stop - 1) for label in ordinary]
    grown = params.seed_erosion_mm
    edge = (LOWER_EDGE_MM + grown) / float(spacing[1])
    rows = labels.shape[1]
    taken = np.isin(labels, ordinary)
    out, kept, first = labels, list(keep), n
    nearest = int(np.clip(round(midline), 0, labels.shape[2] - 1))
    for k in _slices_read(labels.shape[2], midline, spacing, params.t2_mid_slice_reach_mm):
        areas = [int((labels[:, :, k] == label).sum()) for label in ordinary]
        areas = [area for area in areas if area > 0]
        if not areas:
            continue
        min_area = params.small_body_fraction * float(np.median(areas))
        free = ~taken if out is labels else ~taken & (out <= first)
        parts, count = ndimage.label(np.isin(initial[:, :, k], large) & free[:, :, k])
        for part in range(1, count + 1):
            footprint = parts == part
            ap, si = np.nonzero(footprint)
            if ap.size < min_area or si.min() <= edge or si.max() >= rows - 1 - edge:
                continue
            height = (si.max() - si.min() + 1) * float(spacing[1]) + 2 * grown
            reach = distance[ap, si]
            gap, depth = float(reach.min()) - grown, float(reach.max() - reach.min()) + 2 * grown
            if not (
                height >= params.min_body_height_mm
                and gap <= params.max_posterior_gap_mm
                and depth <= params.max_body_depth_mm
            ):
                continue
            low, high = int(si.min()), int(si.max())
            if shared_fraction(low, high, ranges) > SAME_LEVEL_FRACTION:
                continue
            if k != nearest and _covers(low, high, ranges) > SAME_LEVEL_FRACTION:
                continue  # beside the midline: a strip across a body's level is no body
            source = int(initial[ap[0], si[0], k])
            pieces, _ = ndimage.label((initial == source) & free & footprint[:, :, None])
            own = np.isin(pieces, np.unique(pieces[:, :, k][footprint]))
            if out is labels:
                out = labels.copy()
            n += 1
            out[own] = n
            kept.append(n)
            ranges.append((low, high))
    return out, n, kept


def _covers(low: int, high: int, ranges: list[tuple[int, int]]) -> float:
    """The largest share of one of ``ranges`` that the SI rows ``low..high`` cover.

    >>> _covers(10, 40, [(0, 12), (15, 24)])
    1.0
    """
    shares = [(min(high, h) - max(low, lo) + 1) / (h - lo + 1) for lo, h in ranges]
    return max([0.0, *shares])


def _slices_read(n_lr: int, midline: float, spacing: NDArray, reach_mm: float) -> list[int]:
    """The sagittal slices :func:`mid_slice_seeds` reads: the one nearest ``midline``, then
    the others within ``reach_mm`` of it, nearest first (ties: the lower index first).

    >>> _slices_read(20, 9.6, np.array([1.0, 1.0, 1.0]), 2.0)
    [10, 9, 11, 8]
    """
    nearest = int(np.clip(round(midline), 0, n_lr - 1))
    offsets = np.abs(np.arange(n_lr) - midline) * float(spacing[2])
    within = [k for k in np.argsort(offsets, kind="stable") if offsets[k] <= reach_mm]
    return [nearest, *(int(k) for k in within if k != nearest)]


def _in_plane_depth(mask: Mask, spacing: NDArray) -> NDArray[np.float64]:
    """Distance (mm) of each voxel of ``mask`` to its edge within its sagittal slice."""
    depth = np.empty(mask.shape)
    for k in range(mask.shape[2]):  # per slice: a third less work than one 3D transform
        depth[:, :, k] = ndimage.distance_transform_edt(mask[:, :, k], sampling=spacing[:2])
    return depth


def _ball(radius_mm: float, spacing: NDArray) -> Mask:
    """The voxel offsets within ``radius_mm`` (an ellipsoid in voxels)."""
    reach = [int(np.ceil(radius_mm / float(s))) for s in spacing]
    offsets = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    squared = sum((o * float(s)) ** 2 for o, s in zip(offsets, spacing, strict=True))
    return np.sqrt(squared) <= radius_mm


def reach_of_bodies(
    bodies: Labels,
    distance: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    percentile: float = REACH_PERCENTILE,
) -> NDArray[np.float64] | None:
    """Per SI row, the bodies' anterior reach (mm from the canal wall), or None (< 2 bodies).

    Each body's reach is the ``percentile`` (:data:`REACH_PERCENTILE`) of its mid-slab
    voxels' distance from the canal wall, placed at its SI centre and interpolated (held
    constant beyond the first and last body); a low percentile gives the posterior wall.
    """
    mid = bodies[:, :, mid_slab(bodies.shape[2], midline, spacing)]
    centres, reach = [], []
    for label in range(1, int(bodies.max()) + 1):
        own = (mid == label).any(axis=2)
        if not own.any():
            continue
        ap, si = np.nonzero(own)
        centres.append(float(si.mean()))
        reach.append(float(np.percentile(distance[ap, si], percentile)))
    if len(centres) < 2:
        return None
    order = np.argsort(centres)
    return np.interp(
        np.arange(bodies.shape[1]), np.asarray(centres)[order], np.asarray(reach)[order]
    )


def _si_range(bodies: Labels, label: int) -> tuple[int, int]:
    rows = np.flatnonzero((bodies == label).any(axis=(0, 2)))
    return int(rows[0]), int(rows[-1])


def _whole_ranges(bodies: Labels, spacing: NDArray) -> list[tuple[int, int]]:
    """The SI ranges (rows, inclusive) of the segments the image's edges do not cut."""
    cut = cut_by_edge(bodies, spacing)
    return [_si_range(bodies, label) for label, at_edge in cut.items() if not at_edge]


def bodies_from_midline(
    marrow: Mask,
    distance: NDArray[np.float32],
    front: NDArray[np.float64],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    alone: bool = False,
    mid_slice: bool = False,
    seeded: SlabSeeds | None = None,
) -> Labels:
    """Bodies (labels 1..n): :func:`split_from_midline`, then the second pass (step 3);
    ``alone``, ``mid_slice`` and ``seeded`` (of ``marrow``) as there (the second pass
    reads no mid-slice seeds and seeds its own marrow)."""
    first = split_from_midline(
        marrow, distance, front, midline, spacing, params, alone, mid_slice, seeded
    )
    reach = reach_of_bodies(first, distance, midline, spacing)
    if reach is None:
        return first
    beyond = distance > (reach + DEPTH_MARGIN_MM)[None, :]
    taken = ndimage.binary_dilation(first > 0, structure=np.ones((3, 3, 1), bool))
    second = split_from_midline(
        marrow & ~beyond[:, :, None] & ~taken, distance, front, midline, spacing, params, alone
    )
    out = first.copy()
    n = int(first.max())
    ranges = [_si_range(first, label) for label in range(1, n + 1)]
    for label in range(1, int(second.max()) + 1):
        low, high = _si_range(second, label)
        if low == 0 or high == second.shape[1] - 1:
            continue  # cut by the field of view: no disc beyond it shows it is a body
        if shared_fraction(low, high, ranges) <= SAME_LEVEL_FRACTION:
            n += 1
            out[second == label] = n
    return out


def add_at_empty_levels(
    bodies: Labels,
    grown: Mask,
    other: Labels,
    other_grown: Mask,
    spacing: NDArray,
) -> tuple[Labels, Mask, int]:
    """The bodies, with the whole segments of another reading at the levels they leave empty.

    A segment of ``other`` (labels 1..n, after the size check) is added when the image's
    upper and lower edges do not cut it (:func:`.checks.cut_by_edge`; a segment at an edge
    is as often the tissue above the top body or below the sacrum), its SI range overlaps
    that of no whole segment of ``bodies`` by more than :data:`SAME_LEVEL_FRACTION` of its
    own (one body per level), and at least half of its voxels are in no segment of
    ``bodies``; it takes only those voxels.

    Parameters
    ----------
    bodies, other : ndarray of int32
        Segments (labels 1..n) of the reading chosen and of another one.
    grown, other_grown : ndarray of bool
        The voxels each reading's cortex steps grew (for :func:`.apart.keep_apart`).
    spacing : ndarray, shape (3,)

    Returns
    -------
    bodies, grown, added
        The segments with those added (numbered after the others), the grown voxels with
        theirs, and how many were added.
    """
    ranges = _whole_ranges(bodies, spacing)
    out, more, n, added = bodies, grown, int(bodies.max()), 0
    for label, at_edge in cut_by_edge(other, spacing).items():
        if at_edge:
            continue
        own = other == label
        low, high = _si_range(other, label)
        free = own & (out == 0)
        if shared_fraction(low, high, ranges) > SAME_LEVEL_FRACTION or 2 * free.sum() < own.sum():
            continue
        if out is bodies:
            out, more = bodies.copy(), grown.copy()
        n += 1
        added += 1
        out[free] = n
        more |= free & other_grown
        ranges.append((low, high))
    return out, more, added
