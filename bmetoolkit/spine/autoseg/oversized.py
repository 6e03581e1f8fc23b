"""The caudal segment too large for a body, cut back to S1 where the T2 shows S1's own outline.

Without a T1, with the pelvis in view, S1's segment holds the sacral bone below it (down
to the image's lower edge) and tissue in front of or beside it: too large for a body, it
is dropped by the size check and the sacrum is lost. This module cuts such a segment back
to the column (the other bodies' depth in front of it, its lateral walls) and at S1's own
inferior endplate (the dark line across it about a body's height below its top,
:func:`.lower_edge.cut_at_lower_endplate`), and keeps what is left only when that shows
its own evidence of being S1: a body's size, a disc above it like the column's other discs,
and the sacrum's tilt against the body above. Anything else is left as it was (and dropped
by the size check): a part without that evidence is no body to count from.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.checks import (
    LOWER_EDGE_MM,
    TALL_AT_EDGE_FACTOR,
    confine_laterally,
    drop_in_disc_spaces,
    largest_part,
    relabelled,
    si_extents,
)
from bmetoolkit.spine.autoseg.geometry import label_centroids
from bmetoolkit.spine.autoseg.levels import (
    DISC_LIKE_FACTOR,
    JOINED_HEIGHT_FACTOR,
    _consistent_tilts,
    body_shapes,
    typical_disc_mm,
)
from bmetoolkit.spine.autoseg.lower_edge import DARK_FRACTION, _mid_slice
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.spine.autoseg.sacral_line import valley_line

__all__ = ["cut_back_caudal"]

Labels = NDArray[np.int32]

#: The compartment inside the caudal body's dark rim is opened by a disk of this radius
#: (mm): a gap of a pixel or two in the rim (partial volume) does not join it to the
#: tissue around it.
OPEN_MM = 1.5
#: The compartment's area on the mid-sagittal slice lies in this range of the median of
#: the other bodies' sections there (lumbar bodies differ by about 20 %, S1 a little more).
AREA_RANGE = (0.5, 1.6)
#: The rim is read in a ring this wide (mm) outside the compartment (cortex and endplate
#: are 1-2 mm thick, blurred over a pixel or two) ...
RING_MM = 2.0
#: ... of which at least this share is darker than the section's marrow
#: (:data:`.lower_edge.DARK_FRACTION`): a bone's cortical rim, not the edge of tissue.
MIN_RIM_SHARE = 0.5
#: The gap above it is at least this fraction of the median disc above (a disc, not two
#: pieces of one bone) ...; at most :data:`.levels.DISC_LIKE_FACTOR` times it.
DISC_MIN_FACTOR = 0.5
#: At least this many bodies besides the segment set its scale.
MIN_REFERENCE = 3


def cut_back_caudal(
    bodies: Labels,
    image: NDArray,
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    grown: NDArray[np.bool_] | None = None,
) -> tuple[Labels, list[str]]:
    """The caudal-most segment, too large for a body, cut back to S1 when it shows S1.

    Parameters
    ----------
    bodies : ndarray of int32
        Segments (labels 1..n) before the size check (:func:`.checks.check_sizes`).
    image : ndarray
        The T2 the marrow was read on, same shape.
    midline : float
        The canal's midline (left-right index).
    spacing : ndarray, shape (3,)
    params : AutosegParameters
    grown : ndarray of bool, optional
        The voxels the cortex steps grew: the gaps between bodies (discs) are read without
        them (grown from both endplates through a disc's dark annulus, neighbours may meet).

    Returns
    -------
    bodies, notes
        ``bodies`` with that segment replaced by its cut-back part (same label), and a note,
        or unchanged with no note. The segment is the caudal-most by centroid and too large
        by the size check's rule (over ``large_body_factor`` times the median volume, or over
        ``max_body_volume_mm3``). Its part is kept when (1) it is no larger than that rule
        allows and no taller (mid-sagittal height, as the level step reads it) than
        :data:`.levels.JOINED_HEIGHT_FACTOR` times the median body, (2) the gap
        above it on the mid-sagittal sections is a disc (:data:`DISC_MIN_FACTOR` to
        :data:`.levels.DISC_LIKE_FACTOR` times the median of up to three discs above) and
        (3) it is tilted like the sacrum against the body above (``sacrum_min_angle_deg``,
        the tilts the level step reads).
    """
    n = int(bodies.max())
    if n < MIN_REFERENCE + 1:
        return bodies, []
    volumes = np.bincount(bodies.ravel(), minlength=n + 1)[1:] * float(np.prod(spacing))
    present = np.flatnonzero(volumes > 0) + 1
    median = float(np.median(volumes[present - 1]))
    limit = min(params.max_body_volume_mm3, params.large_body_factor * median)
    centroids = label_centroids(bodies, present)
    rows = {int(k): float(c[1]) for k, c in zip(present, centroids, strict=True)}
    boxes, extents = si_extents(bodies, spacing)
    height = float(np.median(list(extents.values())))
    edge = LOWER_EDGE_MM / float(spacing[1])
    tall = {
        k
        for k in present
        if boxes[k - 1][1].start <= edge and extents[int(k)] > TALL_AT_EDGE_FACTOR * height
    }
    oversized = [k for k in present if volumes[k - 1] > limit or k in tall]
    if not oversized:
        return bodies, []
    caudal = int(min(oversized, key=rows.get))
    reference = [int(k) for k in present if k not in oversized and rows[k] > rows[caudal]]
    if len(reference) < MIN_REFERENCE:
        return bodies, []
    reference_height = float(np.median([extents[k] for k in reference]))
    part = _cut_back(bodies, caudal, reference, image, midline, spacing, params, reference_height)
    if part is None:
        return bodies, []
    volume = float(part.sum() * np.prod(spacing))
    if volume > limit:
        return bodies, []
    core = bodies if grown is None else np.where(grown, 0, bodies)
    why = _not_s1(core, part & (core == caudal), caudal, reference, midline, spacing, params)
    if why is not None:
        return bodies, []
    out = np.where(bodies == caudal, 0, bodies)
    out[part] = caudal
    note = (
        f"a {volumes[caudal - 1] / 1000:.0f} mL segment at the column's caudal end was cut "
        f"back to {volume / 1000:.0f} mL, the compartment its caudal body's dark rim encloses "
        "on the T2: a body the size of the others, below a disc and tilted like the sacrum "
        "(S1 joined to the bone below it and the tissue around it)"
    )
    return out.astype(np.int32), [note]


def _cut_back(
    bodies: Labels,
    label: int,
    reference: list[int],
    image: NDArray,
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    body_height_mm: float,
) -> NDArray[np.bool_] | None:
    """The segment cut back to the compartment its caudal body's dark rim encloses.

    On the sagittal slice nearest the canal's ``midline``, the segment's pixels darker than
    :data:`.lower_edge.DARK_FRACTION` of its median signal (cortex, endplates) are left
    out, the rest opened by :data:`OPEN_MM` (a gap of a pixel or two in the rim), and the
    parts with a body's area (:data:`AREA_RANGE` times the median of the other bodies'
    sections on that slice) with at least :data:`MIN_RIM_SHARE` of the ring :data:`RING_MM`
    outside them dark have a rim; the cranial-most of them (S1, not the sacral segments
    below it, which have rims too), grown back to the open
    pixels it was opened from, sets the outline: the segment is kept inside it (grown by
    ``lateral_margin_mm``) on every slice, then cut at its lateral walls
    (:func:`.checks.confine_laterally`); the largest connected part is returned. None when
    no part has such a rim. With ``t2_s1_line``, a faint line across the section about a
    body's height (``body_height_mm``, the reference bodies' median SI extent) below its
    top, darker than the marrow on both sides of it (:func:`.sacral_line.valley_line`: the
    S1-S2 line), is part of the rim too, wherever it lies against that fraction.
    """
    segment = bodies == label
    k = _mid_slice(segment, midline)
    section, plane = segment[:, :, k], image[:, :, k]
    pixel = np.asarray(spacing[:2], dtype=np.float64)
    areas = [float((bodies[:, :, k] == r).sum()) for r in reference]
    areas = [a for a in areas if a > 0]
    if not areas:
        return None
    typical = float(np.median(areas))
    dark = plane < DARK_FRACTION * float(np.median(plane[section]))
    if params.t2_s1_line:
        line = valley_line(section, plane, pixel, body_height_mm)
        if line is not None:
            dark = dark | line
    light = section & ~dark
    opened = ndimage.binary_opening(light, _disk(OPEN_MM, pixel))
    parts = ndimage.label(opened)[0]
    ring_disk = _disk(RING_MM, pixel)
    best, best_row = None, -np.inf
    for index, box in enumerate(ndimage.find_objects(parts), start=1):
        if box is None:
            continue
        part = parts == index
        if not AREA_RANGE[0] * typical <= part.sum() <= AREA_RANGE[1] * typical:
            continue
        ring = ndimage.binary_dilation(part, ring_disk) & ~part
        share = float(dark[ring].mean()) if ring.any() else 0.0
        row = float(np.nonzero(part)[1].mean())
        if share >= MIN_RIM_SHARE and row > best_row:
            best, best_row = part, row
    if best is None:
        return None
    best = largest_part(ndimage.binary_dilation(best, _disk(OPEN_MM, pixel)) & light)
    margin = max(1, round(params.lateral_margin_mm / float(pixel.min())))
    outline = ndimage.binary_dilation(best, iterations=margin)
    kept = segment & outline[:, :, None]
    kept = largest_part(confine_laterally(kept.astype(np.int32), midline, spacing, params) > 0)
    return kept if kept.any() else None


def _disk(radius_mm: float, pixel: NDArray) -> NDArray[np.bool_]:
    """A disk of ``radius_mm`` on pixels of ``pixel`` mm (AP, SI)."""
    half = np.maximum(np.floor(radius_mm / pixel).astype(int), 0)
    ap, si = np.ogrid[-half[0] : half[0] + 1, -half[1] : half[1] + 1]
    return (ap * pixel[0]) ** 2 + (si * pixel[1]) ** 2 <= radius_mm**2 + 1e-9


def _not_s1(
    bodies: Labels,
    part: NDArray[np.bool_],
    label: int,
    reference: list[int],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
) -> str | None:
    """Why the cut-back part is not S1 below the reference bodies, or None.

    Read as the level step reads the bodies (:func:`.levels.body_shapes`), on the
    reference bodies without the slabs :func:`.checks.drop_in_disc_spaces` drops.
    """
    trial = np.where(np.isin(bodies, reference), bodies, 0)
    trial[part] = label
    trial = relabelled(trial, sorted([*reference, label]))  # 1..n: no empty label
    # Slabs in the disc spaces (dropped by the T2 path's later check) are no bodies to
    # read the discs between.
    trial = drop_in_disc_spaces(trial, spacing)[0]
    own = np.bincount(trial[part], minlength=int(trial.max()) + 1)
    own[0] = 0
    if not own.any():
        return "dropped as a slab in a disc space"
    shapes = body_shapes(trial, midline, spacing)
    if shapes[-1].label != int(np.argmax(own)):
        return "not the caudal-most segment"
    heights = np.array([s.height_mm for s in shapes[:-1]], dtype=np.float64)
    if not shapes[-1].height_mm <= JOINED_HEIGHT_FACTOR * float(np.nanmedian(heights)):
        return f"{shapes[-1].height_mm:.0f} mm tall, bodies {np.nanmedian(heights):.0f} mm"
    typical = typical_disc_mm(shapes[:-2])
    gap = shapes[-2].disc_below_mm
    if typical is None or not np.isfinite(gap):
        return "no discs to compare"
    if not DISC_MIN_FACTOR * typical <= gap <= DISC_LIKE_FACTOR * typical:
        return f"a {gap:.1f} mm gap above it, discs {typical:.1f} mm"
    tilts = _consistent_tilts(shapes)
    jump = tilts[-1] - tilts[-2]
    if not (np.isfinite(jump) and jump >= params.sacrum_min_angle_deg):
        return f"tilted {jump:.1f} deg against the body above"
    return None
