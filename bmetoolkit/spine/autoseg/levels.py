"""Naming the bodies: order them cranial to caudal and anchor on the sacrum.

The sacrum (S1) is the caudal-most body when it is tilted markedly more (anterior-down)
than the body above it (the lumbosacral angle) and the field of view goes on below it
without showing another body (when the image ends right below it, a lumbar body cut off
from its neighbours cannot be ruled out, and the levels stay unknown). Levels are then
counted upwards: L5, L4, ... assuming five lumbar and twelve thoracic vertebrae.

A lumbosacral transitional vertebra breaks that count: a lumbarised S1 makes six
lumbar-type bodies, a sacralised L5 four. Body shape alone cannot tell them from the usual
anatomy on a lumbar field of view (readers need a whole-spine localiser), but two of their
signs on sagittal images are measured here and flagged: a rudimentary (narrow) disc between
the sacrum and the body above, and a well-formed disc with more bone below a sacrum-tilted
caudal body (a lumbarised S1 over the rest of the sacrum).

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.geometry import (
    body_angle,
    consistent_angles,
    endplate_angles,
    image_endplate_angles,
    label_centroids,
)
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.spine.labels import level_name, verse_id

__all__ = [
    "BODY_WITH_DISC_FACTOR",
    "BodyShape",
    "LevelAssignment",
    "assign_levels",
    "body_shapes",
    "disc_height",
    "given_back_below_sacrum",
    "kept_below_unknown_sacrum",
    "typical_disc_mm",
    "with_given_back",
    "withheld",
]

#: Cranial-to-caudal VerSe ids above the sacrum under the usual anatomy (L5 first).
_ABOVE_SACRUM = [verse_id(name) for name in ("L5", "L4", "L3", "L2", "L1")] + list(
    range(verse_id("T12"), 0, -1)
)
#: The search for bone below the caudal-most body starts this far below it (mm); a row
#: is bony when more than this fraction of it is marrow; bone needs this many mm of rows.
BELOW_START_MM = 2.0
BONE_ROW_FRACTION = 0.3
BONE_MIN_MM = 3.0
#: Mid-sagittal half-width (mm) where endplate angles and disc heights are measured.
MIDSAGITTAL_HALF_WIDTH_MM = 6.0
#: Disc heights are measured within this distance (mm) of the line joining the centres of
#: the two bodies' mid-sagittal sections.
DISC_CENTRAL_RADIUS_MM = 5.0
#: The disc above the sacrum is compared with the median of up to this many discs above it.
DISCS_COMPARED = 3
#: Below a caudal body tilted like the sacrum, a gap (mm) this tall before more bone is a
#: well-formed disc (a lumbarised S1 over the rest of the sacrum); the S1-S2 remnant of
#: the usual sacrum is thinner or absent.
LUMBARISED_DISC_MIN_MM = 5.0
#: The thecal sac ending in view counts for the sacrum when it ends at least this far (mm)
#: above the image's lower edge, within this distance (mm, about a body's height) of the
#: caudal body's lowest row.
SAC_END_MARGIN_MM = 5.0
SAC_BODY_HEIGHT_MM = 30.0
#: Fewer bodies than this cannot show the lumbosacral angle against a column: no anchor.
MIN_BODIES_FOR_LEVELS = 3
#: A body more than this many times as tall as the median body holds two bodies joined
#: across a disc (lumbar bodies differ in height by about 20 %, a tilted S1 section by
#: about 30 %); counting upwards across it would name every level above it wrongly.
JOINED_HEIGHT_FACTOR = 1.6
#: A body whose top lies within this distance (mm) of the image's upper edge is cut by it
#: (the edge rows of an oblique or resampled grid are often empty; tuning seed 30 on the
#: T2 alone: the tissue above the top body ended 2 rows, 1.8 mm, short of the edge).
TOP_EDGE_MM = 3.0
#: At most this many segments below the sacrum (S2 and below, segmented on their own) are
#: left out to find S1 above them.
MAX_SEGMENTS_BELOW_SACRUM = 2
#: A segment this many times its neighbours (height or voxels) holds more than a body:
#: adjacent lumbar bodies differ by about a tenth and a disc is a third of a body or less,
#: so a body with its disc (or the tissue beyond it) is 1.3-1.4 times its neighbour, two
#: bodies 2.3 (:mod:`.column_fit` cuts such a segment at its ends; a segment given back
#: below a withheld sacrum, :func:`given_back_below_sacrum`, must not be one).
BODY_WITH_DISC_FACTOR = 1.3
#: A body's two surfaces (mid-sagittal) further apart than this (deg) are not both
#: endplates: one is where the segmentation stopped (S1's caudal outline at the image's
#: edge, at a cut or at tissue joined to it; a body's face bitten off). Its tilt is then the
#: surface that agrees with its neighbours. Lumbar bodies are wedge-shaped by a few degrees
#: (L5 the most, about 5-10), and whole bodies of the tuning phantoms measure 8.4 (T1) and
#: 10.4 (T2 alone) degrees apart at the 99th percentile; closer surfaces are averaged.
OUTLINE_NOT_ENDPLATE_DEG = 12.0
#: A gap between two segments is a disc when it is at most this many times the median of
#: the discs above them (adjacent lumbar discs differ by a few mm).
DISC_LIKE_FACTOR = 1.5
#: Confidence factor of each kind of evidence below the sacrum.
SUPPORT_WEIGHTS = {
    "no bone below": 1.0,
    "sacral segments right below": 0.9,
    "thecal sac ends at it": 0.8,
}
#: Lines across the disc (each side of the centre line, within ``DISC_CENTRAL_RADIUS_MM``)
#: and the sampling step along them (mm) for :func:`disc_height`.
DISC_LINES = 5
DISC_STEP_MM = 0.1
#: The level confidence is multiplied by this when a level missing in a gap was counted
#: (:func:`_missing_levels`): the count rests on the gap's height, not on a body seen.
MISSING_LEVEL_CONFIDENCE = 0.75
#: Sampling step (mm) of :func:`fluid_below` along the column.
PROFILE_STEP_MM = 0.25


@dataclass(frozen=True)
class BodyShape:
    """What the level naming needs to know about one body (canonical mm)."""

    label: int
    centroid_mm: NDArray[np.float64]
    angle_deg: float
    touches_bottom: bool
    inferior_row: int
    ap_range: tuple[int, int]
    #: Central height (mm) of the gap to the next body caudally (NaN for the caudal-most).
    disc_below_mm: float = float("nan")
    #: Height (mm) of the mid-sagittal section: the 90th percentile over its AP columns of
    #: the SI extent of each column.
    height_mm: float = float("nan")
    #: Whether the body reaches within ``TOP_EDGE_MM`` of the image's upper edge (cut by
    #: the field of view).
    touches_top: bool = False
    #: Inclinations (deg, anterior-down) of the superior and inferior surfaces of the
    #: mid-sagittal section (``angle_deg`` is their mean).
    endplates_deg: tuple[float, float] = (float("nan"), float("nan"))
    #: The fluid image (STIR, fat-suppressed T2 or T2) along the column below the body,
    #: over its own marrow's signal (:func:`fluid_below`); None when no fluid image was given
    #: or no line leaves the body. One value every :data:`PROFILE_STEP_MM`, NaN past the
    #: image's edge.
    fluid_below: NDArray[np.float64] | None = None
    #: Height (mm) of the body where it lies on most of the mid-sagittal slab's slices
    #: (:func:`_section_height` of the voxels on over half of them): a segment reaching
    #: past its endplate on one slice of the slab (a disc's annulus, tissue at a corner)
    #: is not taller there.
    central_height_mm: float = float("nan")
    #: Central height (mm) of the gap to the next body caudally read as ``disc_below_mm``
    #: but on both bodies' voxels on most of the mid-sagittal slab's slices (where a body
    #: has none, on any of them): a body reaching into the disc on one slice of the slab
    #: does not close it (:func:`.edge_disc.column_discs`). NaN for the caudal-most.
    central_disc_below_mm: float = float("nan")


@dataclass
class LevelAssignment:
    """Level of each body label, with the anchor, a confidence and notes."""

    levels: dict[int, str | None]
    anchor: str | None
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def body_shapes(
    bodies: NDArray[np.int32],
    midline: float,
    spacing: NDArray,
    fluid: NDArray | None = None,
    endplate_window_mm: float = 0.0,
    neighbour_faces_outline: bool = False,
) -> list[BodyShape]:
    """Centroid, endplate angle, extent and disc below of every body, cranial to caudal.

    With ``fluid`` (the fluid image on the same canonical grid as ``bodies``) each body
    below the cranial-most also gets the signal below it along the column
    (``BodyShape.fluid_below``, :func:`fluid_below`), read on the mid-sagittal slab's
    median. With ``fluid`` and ``endplate_window_mm`` over 0 (a fat-suppressed image alone,
    ``AutosegParameters.suppressed_endplate_window_mm``) each surface's inclination
    (``BodyShape.endplates_deg``) is read on that slab, from the endplate's dark cortex
    within that distance of the section's face
    (:func:`.geometry.image_endplate_angles`), and from the section's outline where no
    cortex shows. With ``neighbour_faces_outline`` (a T2 alone,
    ``AutosegParameters.t2_endplate_window_mm``) a face closer than that distance to the
    next segment (the central gap between their mid-sagittal sections,
    :func:`disc_height`) is read on its outline: the dark line beyond it may be the
    neighbour's endplate (a segment that took the disc below it reaches the next body, and
    the window beyond its face then holds that body's cortex, not its own).
    """
    n = int(bodies.max())
    index = np.arange(1, n + 1)
    centroids = label_centroids(bodies, index)
    half = MIDSAGITTAL_HALF_WIDTH_MM / spacing[2]
    k0, k1 = max(0, int(np.floor(midline - half))), int(np.ceil(midline + half)) + 1
    mid = bodies[:, :, k0:k1]
    found = []
    for label, box, centroid in zip(index, ndimage.find_objects(bodies), centroids, strict=True):
        if box is None:
            continue
        on = (mid == label).sum(axis=2)
        section = on > 0
        if not section.any():
            section = (bodies == label).any(axis=2)
        most = on * 2 > mid.shape[2]
        found.append((label, box, centroid, section, most if most.any() else section))
    found.sort(key=lambda item: -item[2][1])
    top_row = bodies.shape[1] - round(TOP_EDGE_MM / float(spacing[1]))
    slab = None if fluid is None else np.median(np.asarray(fluid)[:, :, k0:k1], axis=2)
    shapes = []
    for k, (label, box, centroid, section, most) in enumerate(found):
        below, below_most = found[k + 1][3:] if k + 1 < len(found) else (None, None)
        disc = np.nan if below is None else disc_height(section, below, spacing)
        central_disc = disc  # read again only where the sections differ
        if below is not None and not (
            np.array_equal(most, section) and np.array_equal(below_most, below)
        ):
            central_disc = disc_height(most, below_most, spacing)
        profile = None
        if slab is not None and k > 0:
            profile = fluid_below(found[k - 1][3], section, slab, spacing)
        faces = (True, True)  # each face read on the image (where the window allows)
        if neighbour_faces_outline:
            above = shapes[-1].disc_below_mm if shapes else np.nan
            faces = (not above < endplate_window_mm, not disc < endplate_window_mm)
        surfaces = _surface_angles(section, slab, spacing, endplate_window_mm, faces)
        shapes.append(
            BodyShape(
                label=int(label),
                centroid_mm=centroid * spacing,
                angle_deg=body_angle(section, spacing),
                touches_bottom=box[1].start == 0,
                inferior_row=int(box[1].start),
                ap_range=(int(box[0].start), int(box[0].stop)),
                disc_below_mm=disc,
                height_mm=_section_height(section, spacing),
                touches_top=box[1].stop >= top_row,
                endplates_deg=surfaces,
                fluid_below=profile,
                central_height_mm=_section_height(most, spacing),
                central_disc_below_mm=central_disc,
            )
        )
    return shapes


def _surface_angles(
    section: NDArray[np.bool_],
    slab: NDArray | None,
    spacing: NDArray,
    window_mm: float,
    faces: tuple[bool, bool] = (True, True),
) -> tuple[float, float]:
    """A section's two surface inclinations (:class:`BodyShape` ``endplates_deg``): read on
    the image's cortex where ``slab`` and ``window_mm`` allow, the face is one of ``faces``
    (superior, inferior) and the cortex shows (:func:`.geometry.image_endplate_angles`),
    from the outline otherwise (only then computed: :func:`.geometry.endplate_angles`)."""
    seen = (np.nan, np.nan)
    if slab is not None and window_mm > 0 and any(faces):
        read = image_endplate_angles(section, slab, spacing, window_mm)
        seen = tuple(a if on else np.nan for a, on in zip(read, faces, strict=True))
    if np.isfinite(seen).all():
        return float(seen[0]), float(seen[1])
    outline = endplate_angles(section, spacing)
    superior, inferior = (
        on_image if np.isfinite(on_image) else drawn
        for on_image, drawn in zip(seen, outline, strict=True)
    )
    return float(superior), float(inferior)


def fluid_below(
    upper: NDArray[np.bool_], section: NDArray[np.bool_], image: NDArray, spacing: NDArray
) -> NDArray[np.float64] | None:
    """The image along the column below a body, over the body's own median signal.

    The column's direction is the line from the centre of the body above (``upper``) to the
    centre of the body (``section``), the axis the disc below it and the next vertebra
    follow. Lines parallel to it, the centre line and ``DISC_LINES`` each side within
    ``DISC_CENTRAL_RADIUS_MM`` (the disc's nucleus, not its annulus), are followed from the
    body's centre; each is sampled every :data:`PROFILE_STEP_MM` (nearest voxel) from where
    it leaves the body for one pitch (the distance between the two centres: a disc and
    most of the next body), and the median over the lines is returned, divided by the
    median of ``image`` over the section (the body's own marrow on this image). NaN past
    the image's edge; None when no line leaves the body.

    Parameters
    ----------
    upper, section : ndarray of bool, shape (n_ap, n_si)
        Mid-sagittal sections of the body above and of the body, canonical axes.
    image : ndarray, shape (n_ap, n_si)
        The fluid image on the same section (the mid-sagittal slab's median).
    spacing : array_like
        Pixel size (mm); the first two entries (AP, SI) are used.

    Examples
    --------
    >>> upper = np.zeros((10, 60), bool); upper[2:8, 45:55] = True
    >>> body = np.zeros((10, 60), bool); body[2:8, 25:35] = True
    >>> image = np.ones((10, 60)); image[:, 15:25] = 3.0  # a bright disc below the body
    >>> below = fluid_below(upper, body, image, np.array([1.0, 1.0]))
    >>> float(below[0]), float(below[-1]), below.size  # the disc, then marrow again
    (3.0, 1.0, 80)
    """
    pixel = np.asarray(spacing, dtype=np.float64)[:2]
    if not upper.any() or not section.any():
        return None
    centres = [np.column_stack(np.nonzero(x)).mean(axis=0) * pixel for x in (upper, section)]
    pitch = float(np.linalg.norm(centres[1] - centres[0]))
    if not pitch > 0:
        return None
    axis = (centres[1] - centres[0]) / pitch
    normal = np.array([-axis[1], axis[0]])
    offsets = np.linspace(-DISC_CENTRAL_RADIUS_MM, DISC_CENTRAL_RADIUS_MM, 2 * DISC_LINES + 1)
    n = round(pitch / PROFILE_STEP_MM)
    steps = np.arange(0.0, 2.0 * pitch, PROFILE_STEP_MM)
    points = centres[1] + offsets[:, None, None] * normal + steps[None, :, None] * axis
    index = np.floor(points / pixel + 0.5).astype(np.intp)
    valid = np.all((index >= 0) & (index < np.array(section.shape)), axis=2)
    index = np.where(valid[..., None], index, 0)
    inside = valid & section[index[..., 0], index[..., 1]]
    values = np.where(valid, np.asarray(image, np.float64)[index[..., 0], index[..., 1]], np.nan)
    rows = []
    for line in range(offsets.size):
        if not inside[line].any():
            continue
        leave = int(np.flatnonzero(inside[line])[-1]) + 1
        row = np.full(n, np.nan)
        part = values[line, leave : leave + n]
        row[: part.size] = part
        rows.append(row)
    own = float(np.median(np.asarray(image, np.float64)[section]))
    if not rows or not own > 0:
        return None
    lines = np.array(rows)
    seen = np.isfinite(lines).any(axis=0)
    profile = np.full(n, np.nan)
    profile[seen] = np.nanmedian(lines[:, seen], axis=0) / own
    return profile


def _section_height(section: NDArray[np.bool_], spacing: NDArray) -> float:
    """Height (mm) of a sagittal section: 90th percentile of its columns' SI extents."""
    columns = section.any(axis=1)
    if not columns.any():
        return float("nan")
    rows = np.arange(section.shape[1])
    top = np.where(section, rows[None, :], -1).max(axis=1)[columns]
    bottom = np.where(section, rows[None, :], section.shape[1]).min(axis=1)[columns]
    return float(np.percentile(top - bottom + 1, 90)) * float(spacing[1])


def disc_height(upper: NDArray[np.bool_], lower: NDArray[np.bool_], spacing: NDArray) -> float:
    """Central height (mm) of the gap between two bodies' sagittal sections.

    The gap is read along lines parallel to the line joining the sections' centres, the
    centre line and ``DISC_LINES`` each side of it within ``DISC_CENTRAL_RADIUS_MM``,
    sampled every ``DISC_STEP_MM`` with the nearest voxel: from the last point in the
    upper body to the first in the lower one, so voxel edges bound it whatever the tilt.
    The median over the lines is returned (0 where the bodies touch).

    Parameters
    ----------
    upper, lower : ndarray of bool, shape (n_ap, n_si)
        Sagittal sections of the cranial and the caudal body, canonical (anterior,
        superior) axes.
    spacing : array_like
        Pixel size (mm); the first two entries (AP, SI) are used.

    Returns
    -------
    float
        NaN when the sections share a centre or no line crosses both.

    Examples
    --------
    >>> upper = np.zeros((20, 40), bool); upper[5:15, 25:35] = True
    >>> lower = np.zeros((20, 40), bool); lower[5:15, 5:17] = True
    >>> disc_height(upper, lower, np.array([1.0, 0.5]))
    4.0
    """
    pixel = np.asarray(spacing, dtype=np.float64)[:2]
    centres = [np.column_stack(np.nonzero(x)).mean(axis=0) * pixel for x in (upper, lower)]
    length = float(np.linalg.norm(centres[1] - centres[0]))
    if not length > 0:
        return float("nan")
    axis = (centres[1] - centres[0]) / length
    normal = np.array([-axis[1], axis[0]])
    offsets = np.linspace(-DISC_CENTRAL_RADIUS_MM, DISC_CENTRAL_RADIUS_MM, 2 * DISC_LINES + 1)
    steps = np.arange(0.0, length, DISC_STEP_MM)
    points = centres[0] + offsets[:, None, None] * normal + steps[None, :, None] * axis
    index = np.floor(points / pixel + 0.5).astype(np.intp)
    valid = np.all((index >= 0) & (index < np.array(upper.shape)), axis=2)
    index = np.where(valid[..., None], index, 0)
    in_upper = valid & upper[index[..., 0], index[..., 1]]
    in_lower = valid & lower[index[..., 0], index[..., 1]]
    n = steps.size
    first_lower = np.where(in_lower.any(axis=1), np.argmax(in_lower, axis=1), n)
    before = in_upper & (np.arange(n)[None, :] < first_lower[:, None])
    last_upper = np.where(before.any(axis=1), n - 1 - np.argmax(before[:, ::-1], axis=1), -1)
    crossed = (first_lower < n) & (last_upper >= 0)
    if not crossed.any():
        return float("nan")
    gaps = (first_lower[crossed] - last_upper[crossed] - 1) * DISC_STEP_MM
    return round(float(np.median(gaps)), 2)


def _bone_below(
    shape: BodyShape, marrow_like: NDArray[np.bool_], spacing: NDArray, params: AutosegParameters
) -> tuple[bool | None, float | None]:
    """Whether marrow-like bone follows below the body, and how far below it starts (mm).

    Looks from 2 mm to ``disc_search_mm`` below the body's lowest row, over the central
    60 % of its AP extent: bone is there when rows mostly made of marrow span 3 mm. The
    distance is from the body's lowest row to the nearest such row (the disc between
    them). ``(None, None)`` when the image ends too soon below the body.
    """
    reach = round(params.disc_search_mm / spacing[1])
    start = shape.inferior_row - round(BELOW_START_MM / spacing[1])
    if start - max(start - reach, 0) < reach / 2:
        return None, None
    a0, a1 = shape.ap_range
    margin = (a1 - a0) // 5
    region = marrow_like[a0 + margin : a1 - margin, max(start - reach, 0) : start]
    if region.size == 0:
        return None, None
    bony_rows = region.mean(axis=(0, 2)) > BONE_ROW_FRACTION
    if bony_rows.sum() * spacing[1] < BONE_MIN_MM:
        return False, None
    nearest = int(np.flatnonzero(bony_rows)[-1])  # rows run caudal to cranial
    gap_rows = bony_rows.size - 1 - nearest
    return True, round(float(gap_rows * spacing[1] + BELOW_START_MM), 1)


def _below_sacrum_note(peeled: int, at_edge: bool) -> str:
    """The note for ``peeled`` segments left out below the sacrum."""
    if at_edge:
        return (
            "the segment at the lower edge of the image lies below the sacrum (S2 and "
            "below): it is not a vertebral body and is left out"
        )
    return (
        f"{peeled} segment(s) joined to the sacrum without a disc lie below it "
        "(S2 and below): not vertebral bodies, left out"
    )


#: Every note :func:`assign_levels` gives for segments it leaves out below the sacrum.
_BELOW_SACRUM_NOTES = frozenset(
    _below_sacrum_note(peeled, at_edge)
    for peeled in range(1, MAX_SEGMENTS_BELOW_SACRUM + 1)
    for at_edge in (True, False)
)


def withheld(
    assignment: LevelAssignment, why: str, note: str, given_back: Sequence[int] = ()
) -> LevelAssignment:
    """``assignment`` with every level unknown (numbered 1..n), ``why`` in its evidence
    (``levels_withheld``) and ``note`` added; unchanged when nothing was named.

    ``given_back``: segments the level step left out below the sacrum that are bodies again
    (numbered after the others, caudal-most; :func:`given_back_below_sacrum`): they were left
    out on the sacrum the levels are withheld for. Its notes go when all of them come back.

    Examples
    --------
    >>> named = LevelAssignment({1: "L5", 2: "S1"}, "sacrum (S1)", 0.8, {}, [])
    >>> out = withheld(named, "a STIR alone", "levels not named")
    >>> out.levels, out.anchor, out.confidence, out.evidence, out.notes
    ({1: None, 2: None}, None, 0.0, {'levels_withheld': 'a STIR alone'}, ['levels not named'])
    >>> peeled = LevelAssignment({1: "L5", 2: "S1"}, "sacrum (S1)", 0.8,
    ...                          {"left_out_below_sacrum": [3]}, [_below_sacrum_note(1, True)])
    >>> out = withheld(peeled, "a STIR alone", "levels not named", given_back=[3])
    >>> out.levels, out.evidence["given_back_below_sacrum"], out.notes
    ({1: None, 2: None, 3: None}, [3], ['levels not named'])
    """
    if assignment.anchor is None:
        return assignment
    unknown = LevelAssignment(
        dict.fromkeys(assignment.levels),
        None,
        0.0,
        {**assignment.evidence, "levels_withheld": why},
        list(assignment.notes),
    )
    back = with_given_back(unknown, given_back)
    return LevelAssignment(back.levels, None, 0.0, back.evidence, [*back.notes, note])


def with_given_back(assignment: LevelAssignment, labels: Sequence[int]) -> LevelAssignment:
    """``assignment`` with the segments ``labels``, left out below the sacrum, counted
    again as bodies (level unknown, after the others) and named in its evidence
    (``given_back_below_sacrum``); the notes on segments left out below the sacrum go when
    all of them come back. Unchanged when ``labels`` is empty; only for an assignment whose
    levels are unknown (no anchor).

    Examples
    --------
    >>> peeled = LevelAssignment({1: None, 2: None}, None, 0.0,
    ...                          {"left_out_below_sacrum": [3]}, [_below_sacrum_note(1, True)])
    >>> out = with_given_back(peeled, [3])
    >>> out.levels, out.evidence["left_out_below_sacrum"], out.notes
    ({1: None, 2: None, 3: None}, [], [])
    >>> with_given_back(peeled, []) is peeled
    True
    """
    if not labels:
        return assignment
    if assignment.anchor is not None:
        raise ValueError("segments are given back only when the levels are unknown")
    evidence = dict(assignment.evidence)
    notes = list(assignment.notes)
    left_out = [n for n in evidence.get("left_out_below_sacrum", []) if n not in labels]
    evidence |= {"left_out_below_sacrum": left_out, "given_back_below_sacrum": [*labels]}
    if not left_out:
        notes = [n for n in notes if n not in _BELOW_SACRUM_NOTES]
    levels = dict.fromkeys([*assignment.levels, *labels])
    return LevelAssignment(levels, None, 0.0, evidence, notes)


def given_back_below_sacrum(
    assignment: LevelAssignment, shapes: list[BodyShape], bodies: NDArray[np.integer]
) -> list[int]:
    """The segments ``assignment`` left out below the sacrum that are bodies once its levels
    are withheld or left unknown (cranial to caudal).

    The sacrum those segments were left out below is evidence too weak to name levels on:
    a STIR alone (marrow, muscle and discs look alike), or a count from it that fails (a
    body may be missing above it, or two joined: the segment read as S1 was read against
    whichever segment lies above it, and the tilt step across a gap that may hold a level
    is not the lumbosacral angle). So they are bodies, except one at the image's lower
    edge over :data:`BODY_WITH_DISC_FACTOR` times the voxels of the segment above it (in
    ``bodies``): it holds tissue beyond a body.

    Examples
    --------
    >>> def shape(label, bottom=False):
    ...     return BodyShape(label, np.zeros(3), 0.0, bottom, 0, (0, 0))
    >>> bodies = np.repeat(np.arange(4), [0, 10, 10, 11])  # segment 3: 1.1 times segment 2
    >>> out = LevelAssignment({1: "L4", 2: "L5"}, "sacrum (S1)", 0.7,
    ...                       {"left_out_below_sacrum": [3]})
    >>> given_back_below_sacrum(out, [shape(1), shape(2), shape(3, bottom=True)], bodies)
    [3]
    >>> bodies = np.repeat(np.arange(4), [0, 10, 10, 14])  # 1.4 times: tissue beyond
    >>> given_back_below_sacrum(out, [shape(1), shape(2), shape(3, bottom=True)], bodies)
    []
    """
    left_out = set(assignment.evidence.get("left_out_below_sacrum", []))
    if not left_out:
        return []
    counts = np.bincount(np.asarray(bodies).ravel(), minlength=max(s.label for s in shapes) + 1)
    back = []
    for above, shape in zip([None, *shapes[:-1]], shapes, strict=True):
        if shape.label not in left_out:
            continue
        at_edge = above is not None and shape.touches_bottom
        if not (at_edge and counts[shape.label] > BODY_WITH_DISC_FACTOR * counts[above.label]):
            back.append(shape.label)
    return back


def kept_below_unknown_sacrum(
    assignment: LevelAssignment,
    shapes: list[BodyShape],
    bodies: NDArray[np.integer],
    params: AutosegParameters,
) -> LevelAssignment:
    """``assignment`` with the segments left out below the sacrum counted as bodies again
    when its levels are unknown (the count from the sacrum failed), as
    :func:`given_back_below_sacrum` chooses them; unchanged when the levels are named or
    ``params.unknown_levels_keep_below_sacrum`` is False.

    A segment is left out below the sacrum on the strength of the sacrum test; when the
    count upwards from it then fails (a gap that fits neither a disc nor a whole number of
    missing bodies, a body that may be missing, two bodies that may be joined), the segment
    read as S1 was read against whichever segment lies above it, and across a gap that may
    hold a level the step in tilt is not the lumbosacral angle: what lies below it may be L5.

    Examples
    --------
    >>> def shape(label, bottom=False):
    ...     return BodyShape(label, np.zeros(3), 0.0, bottom, 0, (0, 0))
    >>> shapes = [shape(1), shape(2), shape(3, bottom=True)]
    >>> bodies = np.repeat(np.arange(4), [0, 10, 10, 10])
    >>> unknown = LevelAssignment({1: None, 2: None}, None, 0.0,
    ...                           {"left_out_below_sacrum": [3]})
    >>> list(kept_below_unknown_sacrum(unknown, shapes, bodies, AutosegParameters()).levels)
    [1, 2, 3]
    >>> off = AutosegParameters(unknown_levels_keep_below_sacrum=False)
    >>> list(kept_below_unknown_sacrum(unknown, shapes, bodies, off).levels)
    [1, 2]
    """
    if assignment.anchor is not None or not params.unknown_levels_keep_below_sacrum:
        return assignment
    return with_given_back(assignment, given_back_below_sacrum(assignment, shapes, bodies))


def assign_levels(
    shapes: list[BodyShape],
    marrow_like: NDArray[np.bool_],
    spacing: NDArray,
    params: AutosegParameters,
    canal_end_row: int | None = None,
) -> LevelAssignment:
    """Name the bodies by anchoring on the sacrum; ``None`` levels when it is not seen.

    ``canal_end_row`` is the caudal-most SI row of the CSF column (where the thecal sac
    ends), one piece of evidence for the sacrum (see :func:`_sacrum_evidence`).
    """
    notes: list[str] = []
    if not shapes:
        notes.append(
            "no vertebral body found: marrow and discs in front of the spinal canal could not "
            "be told apart on the T1 (check the series, or pass a label map)"
        )
        return LevelAssignment({}, None, 0.0, {"n_bodies": 0}, notes)
    evidence: dict[str, Any] = {"n_bodies": len(shapes)}
    sacrum = _sacrum_evidence(shapes, marrow_like, spacing, params, canal_end_row)
    below_sacrum: list[BodyShape] = []
    lowest = sacrum  # the evidence of the caudal-most segment still counted
    for peeled in range(1, MAX_SEGMENTS_BELOW_SACRUM + 1):
        if sacrum["is_sacrum"] or len(shapes) - peeled < MIN_BODIES_FOR_LEVELS:
            break
        # Segments below the sacrum (S2 and below): cut by the image's lower edge, or
        # joined to S1 without a well-formed disc (bone right below it).
        above = _sacrum_evidence(shapes[:-peeled], marrow_like, spacing, params, canal_end_row)
        at_edge = peeled == 1 and shapes[-1].touches_bottom
        joined = above["support"] == "sacral segments right below"
        apart = _vertebra_below(shapes[:-peeled], lowest)
        lowest = above
        if apart is not None:
            evidence["not_below_sacrum"] = apart
            break
        if above["is_sacrum"] and (at_edge or joined):
            sacrum, below_sacrum, shapes = above, shapes[-peeled:], shapes[:-peeled]
            notes.append(_below_sacrum_note(peeled, at_edge))
    above_count: list[BodyShape] = []
    top_ratio = _joined_top_ratio(shapes) if sacrum["is_sacrum"] else None
    evidence["top_segment_ratio"] = _rounded(top_ratio)
    if top_ratio is not None and top_ratio > JOINED_HEIGHT_FACTOR:
        above_count, shapes = shapes[:1], shapes[1:]
        notes.append(
            f"the cranial-most segment is {top_ratio:.1f} times as tall as the median body: "
            "two bodies joined across a disc (or a body with the tissue above it), not one "
            "body; it is left out and the count from the sacrum ends below it"
        )
    counted = _missing_levels(shapes, params)
    missing = counted.counts if counted.counts is not None else [0] * (len(shapes) - 1)
    evidence["gap_levels"] = counted.ratios
    gap = _largest_gap(shapes, missing)  # the segments below the sacrum left out
    evidence["largest_gap_ratio"] = gap
    if gap is not None and gap > params.gap_factor:
        notes.insert(
            0,
            f"two consecutive bodies are {gap:.1f} times the median spacing apart: a body may "
            "be missing, so levels above the gap may be off",
        )
    evidence["disc_heights_mm"] = [_rounded(s.disc_below_mm) for s in shapes[:-1]]
    ratio = _lumbosacral_disc_ratio(shapes)
    evidence["lumbosacral_disc_ratio"] = _rounded(ratio)
    evidence |= sacrum
    evidence["left_out_below_sacrum"] = [s.label for s in below_sacrum]
    evidence["left_out_at_top"] = [s.label for s in above_count]
    unknown = {s.label: None for s in shapes}
    if not sacrum["is_sacrum"]:
        notes.append(
            "no level anchor (sacrum) recognised in the field of view: bodies are numbered "
            "1..n from cranial to caudal and their levels are unknown"
        )
        disc_below = sacrum.get("gap_to_bone_below_mm")
        if sacrum.get("tilted_like_sacrum") and (disc_below or 0.0) >= LUMBARISED_DISC_MIN_MM:
            notes.append(
                f"the caudal-most body is tilted like the sacrum, but a {disc_below:.0f} mm "
                "disc and more bone follow below it: it may be a lumbarised S1 (six "
                "lumbar-type bodies) above the rest of the sacrum, or a lumbar body; "
                "confirm the levels on a whole-spine localiser"
            )
        return LevelAssignment(unknown, None, 0.0, evidence, notes)
    if counted.counts is None:
        return _left_unknown(
            unknown,
            evidence,
            notes,
            f"a gap between two bodies ({counted.ambiguous_mm:.0f} mm) is neither the scan's "
            "disc nor that disc with a whole number of missing bodies and their discs: how "
            "many levels are missing there cannot be told, so levels are left unknown",
            "a gap fits neither a disc nor a whole number of missing bodies",
        )
    if gap is not None and gap > params.gap_factor:
        return _left_unknown(
            unknown,
            evidence,
            notes,
            "the sacrum was recognised, but with a body missing between it and the top of the "
            "field of view the count upwards would be off: levels are left unknown",
            "a body may be missing",
        )
    joined = _tallest_ratio(shapes, central=params.joined_height_on_most_slices)
    evidence["tallest_body_ratio"] = _rounded(joined)
    if joined is not None and joined > JOINED_HEIGHT_FACTOR:
        return _left_unknown(
            unknown,
            evidence,
            notes,
            f"one body is {joined:.1f} times as tall as the median body: two bodies joined "
            "across a disc, so the count upwards from the sacrum would be off: levels are "
            "left unknown",
            "two bodies may be joined",
        )
    # Each body's place above the sacrum: the bodies below it and the levels missing in the
    # gaps below it.
    places = [len(shapes) - 1 - i + sum(missing[i:]) for i in range(len(shapes))]
    if places[0] > len(_ABOVE_SACRUM):
        notes.append(f"{len(shapes)} bodies found: more than the spine has above the sacrum")
        return LevelAssignment(unknown, None, 0.0, evidence, notes)
    names = ["S1", *(level_name(i) for i in _ABOVE_SACRUM)]
    levels = {s.label: names[place] for s, place in zip(shapes, places, strict=True)}
    skipped = [
        names[place]
        for k in range(len(shapes) - 1)
        for place in range(places[k + 1] + 1, places[k])
    ]
    evidence["missing_levels"] = skipped
    if skipped:
        notes.append(
            f"no body was found at {', '.join(skipped)}: the gap there is as tall as the "
            "scan's disc plus a body and a disc for each level missing, so the count from "
            "the sacrum steps over it (check that level on the images)"
        )
    if len(shapes) > 6:
        notes.append(
            "levels above L5 assume five lumbar vertebrae; a transitional L6 or T13 would "
            "shift them (count from C2 on a whole-spine scan to confirm)"
        )
    confidence = _confidence(sacrum, gap, params)
    if skipped:
        confidence = round(confidence * MISSING_LEVEL_CONFIDENCE, 2)
    if ratio is not None and ratio < params.transitional_disc_ratio:
        notes.append(
            f"the disc above the sacrum is {ratio:.2f} times the height of the discs above "
            "it: a rudimentary disc, as at a lumbosacral transitional vertebra (sacralised "
            "L5, or lumbarised S1 with six lumbar-type bodies), or a collapsed one; with a "
            "transitional vertebra every level is off by one (confirm on a whole-spine "
            "localiser)"
        )
        confidence = round(confidence * 0.5, 2)
    return LevelAssignment(levels, "sacrum (S1)", confidence, evidence, notes)


def _vertebra_below(shapes: list[BodyShape], below: dict[str, Any]) -> str | None:
    """Why the segment right below the caudal-most of ``shapes`` is no sacral segment, or None.

    The search for S1 above segments left out below it (S2 and below) must not pass over
    a vertebra: S2 is fused to S1, with at most a rudimentary disc between them. The
    segment below is S1 itself, and the caudal-most of ``shapes`` not S1, when a disc lies
    between them, a gap at least ``LUMBARISED_DISC_MIN_MM`` tall and no taller than
    :data:`DISC_LIKE_FACTOR` times the median of the discs above (a gap that much taller
    is soft tissue between S1 and marrow-like tissue below it, not a disc), and the segment
    below is tilted like the sacrum against them (``below``: its
    :func:`_sacrum_evidence` as the caudal-most segment); only S1's support below is then
    missing, where the image ends (T2 alone, tuning seed 81: S1 over an 11.9 mm disc,
    12 degrees over L5, left out as joined to the sacrum, and L5 named S1).
    """
    gap = shapes[-1].disc_below_mm
    typical = typical_disc_mm(shapes[:-1])
    if not np.isfinite(gap) or gap < LUMBARISED_DISC_MIN_MM or typical is None:
        return None
    if gap > DISC_LIKE_FACTOR * typical or not below.get("tilted_like_sacrum"):
        return None
    return f"a {gap:.0f} mm disc above the segment below, which is tilted like the sacrum: S1"


def _lumbosacral_disc_ratio(shapes: list[BodyShape]) -> float | None:
    """Central height of the disc above the caudal body over the median of those above it."""
    if len(shapes) < 2 or not np.isfinite(shapes[-2].disc_below_mm):
        return None
    typical = typical_disc_mm(shapes[:-2])
    if typical is None:
        return None
    return float(max(shapes[-2].disc_below_mm, 0.0) / typical)


def typical_disc_mm(shapes: list[BodyShape]) -> float | None:
    """The median central height (mm) of the discs below the last :data:`DISCS_COMPARED`
    of ``shapes`` (those measured, over 0 mm), or None when there is none.

    >>> from types import SimpleNamespace as Shape
    >>> typical_disc_mm([Shape(disc_below_mm=d) for d in (20.0, 9.0, float("nan"), 11.0)])
    10.0
    """
    discs = np.array([s.disc_below_mm for s in shapes[-DISCS_COMPARED:]], dtype=np.float64)
    discs = discs[np.isfinite(discs) & (discs > 0)]
    return float(np.median(discs)) if discs.size else None


def _rounded(value: float | None) -> float | None:
    """``value`` rounded to 0.01 for the report, None when missing or not finite."""
    return None if value is None or not np.isfinite(value) else round(float(value), 2)


def _tallest_ratio(shapes: list[BodyShape], central: bool = False) -> float | None:
    """Height of the tallest body over the median body height (None under 3 bodies).

    The cranial-most body is left out when the image's upper edge cuts it: its height is
    not its own, and the count upwards from the sacrum ends at it, so it cannot shift the
    levels below it (on the T2 alone, tissue in front of the canal above the top body
    joined it up to the edge: tuning seed 12, every level withheld).

    ``central``: each body's height where it lies on most of the mid-sagittal slab's
    slices (``BodyShape.central_height_mm``, where known), not on any of them: two bodies
    joined across a disc are joined on the mid-sagittal slices a reader looks at, while a
    segment that reaches into its discs on one slice of the slab only (tuning seed 220
    from a STIR alone: L3 into both its discs' anterior annulus on a slice beside the
    midline, 1.84 times the median on any slice, 1.24 on most) holds one body.
    """
    if shapes and shapes[0].touches_top:
        shapes = shapes[1:]
    heights = np.array(
        [
            s.central_height_mm if central and np.isfinite(s.central_height_mm) else s.height_mm
            for s in shapes
        ],
        dtype=np.float64,
    )
    heights = heights[np.isfinite(heights)]
    if heights.size < 3:
        return None
    return float(heights.max() / np.median(heights))


def _left_unknown(
    unknown: dict[int, str | None],
    evidence: dict[str, Any],
    notes: list[str],
    note: str,
    reason: str,
) -> LevelAssignment:
    """Levels left unknown with the sacrum recognised: ``note`` for the reader, ``reason``
    in ``evidence["levels_withheld"]``."""
    notes.append(note)
    evidence["levels_withheld"] = reason
    return LevelAssignment(unknown, None, 0.0, evidence, notes)


def _joined_top_ratio(shapes: list[BodyShape]) -> float | None:
    """Height of the cranial-most body over the median body height (None under 4 bodies).

    The count upwards from the sacrum ends at the cranial-most body, so when it holds two
    bodies joined across a disc (or a body and the tissue above it) no level below it is
    shifted: it is left out rather than named, and the levels below it stand (T2 alone,
    tuning seed 34: T11 joined to the front of T12, 2.4 times a body's height, withheld
    every level of the seven bodies below it).
    """
    heights = np.array([s.height_mm for s in shapes], dtype=np.float64)
    if heights.size <= MIN_BODIES_FOR_LEVELS or not np.isfinite(heights).all():
        return None
    return float(heights[0] / np.median(heights))


def _largest_gap(shapes: list[BodyShape], missing: Sequence[int] | None = None) -> float | None:
    """The largest step between consecutive body centres over the median step, each step
    divided by the levels it spans (one, plus the levels ``missing`` counted in that gap by
    :func:`_missing_levels`); None under 3 bodies."""
    if len(shapes) < 3:
        return None
    centres = np.array([s.centroid_mm for s in shapes])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    spans = 1.0 + np.asarray(missing if missing is not None else [0] * steps.size, np.float64)
    steps = steps / spans
    return float(steps.max() / np.median(steps))


@dataclass(frozen=True)
class MissingLevels:
    """Levels missing in each gap between consecutive bodies (:func:`_missing_levels`)."""

    #: Levels missing in each gap, cranial to caudal; None when a gap is ambiguous.
    counts: list[int] | None
    #: Each gap's excess over the scan's disc in levels (body plus disc), rounded to 0.01.
    ratios: list[float | None]
    #: Central height (mm) of the first ambiguous gap (NaN when none).
    ambiguous_mm: float = float("nan")


def _missing_levels(shapes: list[BodyShape], params: AutosegParameters) -> MissingLevels:
    """How many levels each gap between consecutive bodies steps over, from the scan's own
    bodies and discs.

    A reader counting levels counts discs and bodies: a gap between two segments as tall
    as the scan's disc holds no level; one as tall as a disc, a body and another disc holds
    one (the body the segmentation missed), and so on. The excess of the gap's central
    height (``BodyShape.disc_below_mm``) over the scan's disc (the median central gap), in
    units of one level (the median body height, ``BodyShape.height_mm``, plus that disc),
    is rounded to the number of missing levels when it lies within
    ``params.missing_level_tolerance`` of a whole number, or, above a whole number of
    one or more levels, ``params.missing_body_tolerance`` of it (neighbours that took
    part of a missed body make its gap shorter, never taller); a gap in between (a half-found
    body, or a missing body its neighbours took part of) makes the whole count ambiguous
    (``counts`` None). Every count is 0 with ``params.count_missing_levels`` False or
    under 3 bodies.

    Examples
    --------
    >>> from types import SimpleNamespace as Shape
    >>> body = lambda gap: Shape(disc_below_mm=gap, height_mm=25.0)
    >>> shapes = [body(10.0), body(45.0), body(11.0), body(float("nan"))]
    >>> found = _missing_levels(shapes, AutosegParameters())
    >>> found.counts, found.ratios
    ([0, 1, 0], [-0.03, 0.94, 0.0])
    >>> half = [body(10.0), body(30.0), body(11.0), body(12.0)]  # half a level over the disc
    >>> _missing_levels(half, AutosegParameters()).counts is None
    True
    """
    gaps = np.array([s.disc_below_mm for s in shapes[:-1]], dtype=np.float64)
    heights = np.array([s.height_mm for s in shapes], dtype=np.float64)
    known = gaps[np.isfinite(gaps)]
    heights = heights[np.isfinite(heights)]
    zeros = [0] * gaps.size
    if not params.count_missing_levels or len(shapes) < MIN_BODIES_FOR_LEVELS or not known.size:
        return MissingLevels(zeros, [None] * gaps.size)
    disc = float(np.median(np.maximum(known, 0.0)))
    level = float(np.median(heights)) + disc if heights.size else float("nan")
    if not level > 0:
        return MissingLevels(zeros, [None] * gaps.size)
    excess = (gaps - disc) / level
    ratios = [_rounded(r) for r in excess]
    counts, ambiguous = [], float("nan")
    for gap, ratio in zip(gaps, excess, strict=True):
        whole = max(0, round(float(ratio))) if np.isfinite(ratio) else 0
        # Over a whole count a gap holds more than its missing bodies: a tighter tolerance.
        over = whole > 0 and ratio > whole
        tolerance = params.missing_body_tolerance if over else params.missing_level_tolerance
        if np.isfinite(ratio) and ratio > 0 and abs(ratio - whole) > tolerance:
            if not np.isfinite(ambiguous):
                ambiguous = float(gap)
        counts.append(whole)
    return MissingLevels(None if np.isfinite(ambiguous) else counts, ratios, ambiguous)


def _sacrum_evidence(
    shapes: list[BodyShape],
    marrow_like: NDArray[np.bool_],
    spacing: NDArray,
    params: AutosegParameters,
    canal_end_row: int | None = None,
) -> dict[str, Any]:
    """Is the caudal-most body the sacrum (S1)? The evidence, and the verdict.

    It must be tilted like the sacrum (the lumbosacral angle: at least
    ``sacrum_min_angle_deg`` more anterior-down than the body above), and what lies below
    it must fit the sacrum:

    - no more marrow-bright bone (the field of view shows the soft tissue below), or
    - bone right below it, without a well-formed disc in between (the sacral segments S2
      and below under S1; a disc of ``LUMBARISED_DISC_MIN_MM`` or more with bone below
      means a lumbar body, or a lumbarised S1, and the levels stay unknown), or
    - the image ends right below it, but the thecal sac (the CSF column) ends in view, at
      most one body height below the body's top: the sac ends at S1-S2 in most adults, so
      a lumbar body cut off from the sacrum by the field of view shows the CSF running on
      to the image's edge.
    """
    if len(shapes) < MIN_BODIES_FOR_LEVELS:
        return {"is_sacrum": False, "reason": f"fewer than {MIN_BODIES_FOR_LEVELS} bodies"}
    last = shapes[-1]
    angles = _consistent_tilts(shapes)
    jump = angles[-1] - angles[-2]
    below, gap_below = _bone_below(last, marrow_like, spacing, params)
    tilted = bool(np.isfinite(jump) and jump >= params.sacrum_min_angle_deg)
    sac_ends = _sac_ends_at(last, canal_end_row, spacing)
    disc = _disc_and_marrow_below(shapes, params)
    if disc is not None:
        support = None  # a vertebra below: whatever the marrow mask showed, no sacrum
    elif below is False:
        support = "no bone below"
    elif below and gap_below is not None and gap_below < LUMBARISED_DISC_MIN_MM:
        support = "sacral segments right below"
    elif below is None and sac_ends:
        support = "thecal sac ends at it"
    else:
        support = None
    return {
        "is_sacrum": tilted and support is not None and not last.touches_bottom,
        "support": support,
        "lumbosacral_angle_deg": round(float(jump), 1) if np.isfinite(jump) else None,
        "bone_below": below,
        "gap_to_bone_below_mm": gap_below,
        "thecal_sac_ends_at_it": sac_ends,
        "disc_and_marrow_below_mm": disc,
        "caudal_body_truncated": last.touches_bottom,
        "tilted_like_sacrum": tilted,
    }


def _disc_and_marrow_below(shapes: list[BodyShape], params: AutosegParameters) -> float | None:
    """Height (mm) of a disc the fluid image shows below the caudal-most of ``shapes``
    with vertebral marrow below it, or None.

    The stretch between the body's marrow and the next marrow along the column
    (:func:`_fluid_band`) is a disc when it is at least ``LUMBARISED_DISC_MIN_MM`` tall (the
    S1-S2 remnant under the sacrum is thinner or absent) and at most ``DISC_LIKE_FACTOR``
    times the scan's own discs (a taller stretch is soft tissue, not a disc). The scan's
    discs are the (up to ``DISCS_COMPARED``) discs above it, measured both ways, and the
    larger of the two medians counts: the central gaps between the segments
    (:func:`typical_disc_mm`; short where bodies took part of their discs) and the same
    stretch on the fluid image below the bodies above (short where a faint disc has the
    marrow's signal and only its endplates show). Off with ``params.fluid_disc_below``
    False.
    """
    if not params.fluid_disc_below or not shapes:
        return None
    height = _fluid_band(shapes[-1].fluid_below, params)
    if height is None or height < LUMBARISED_DISC_MIN_MM:
        return None
    above = [_fluid_band(s.fluid_below, params) for s in shapes[-1 - DISCS_COMPARED : -1]]
    on_fluid = [h for h in above if h is not None]
    typical = [typical_disc_mm(shapes[:-1]), float(np.median(on_fluid)) if on_fluid else None]
    known = [t for t in typical if t is not None]
    if known and height > DISC_LIKE_FACTOR * max(known):
        return None
    return round(height, 1)


def _fluid_band(profile: NDArray[np.float64] | None, params: AutosegParameters) -> float | None:
    """Length (mm) of the stretch along ``profile`` (:func:`fluid_below`) from its first
    sample outside the marrow band (``marrow_fluid_low`` to ``marrow_fluid_high`` times the
    body's own marrow: the endplate's cortex, a bright nucleus, a dark degenerated disc) to
    the first run of ``BONE_MIN_MM`` back inside it (the next body's marrow), or None when
    the marrow does not come back before the image's edge or the profile's end.

    Examples
    --------
    >>> params = AutosegParameters()
    >>> disc = np.r_[np.ones(8), np.full(40, 3.0), np.ones(40)]  # 2 mm, a 10 mm disc, marrow
    >>> _fluid_band(disc, params)
    10.0
    >>> _fluid_band(np.r_[np.ones(8), np.full(80, 2.5)], params) is None  # soft tissue
    True
    """
    if profile is None:
        return None
    inside = (profile >= params.marrow_fluid_low) & (profile <= params.marrow_fluid_high)
    seen = np.isfinite(profile)
    end = profile.size if seen.all() else int(np.argmin(seen))  # the image's edge
    outside = np.flatnonzero(~inside[:end])
    if outside.size == 0:
        return None
    run = max(1, round(BONE_MIN_MM / PROFILE_STEP_MM))
    start = int(outside[0])
    marrow = np.convolve(inside[:end].astype(np.int64), np.ones(run, np.int64), "valid") == run
    back = np.flatnonzero(marrow[start:])
    return None if back.size == 0 else float(back[0]) * PROFILE_STEP_MM


def _consistent_tilts(shapes: list[BodyShape]) -> NDArray[np.float64]:
    """Tilt (deg) of each body: the mean of its two surfaces, or the one that agrees with
    its neighbours when they are more than ``OUTLINE_NOT_ENDPLATE_DEG`` apart.

    The choice is :func:`.geometry.consistent_angles` (as for the lesion fill), except
    for the caudal-most body (the one the sacrum test reads), which has only the body above
    as a neighbour: its surface is the one closer to the tilt of the body above plus the
    step between the two bodies above it (the lordosis continued one level). S1 has no
    free inferior endplate (it is fused to S2): its caudal outline is where the
    segmentation stopped (the image's edge, the cut below it or marrow-like tissue joined
    to it), and a body's surface bitten by a lesion or cut at the discs' fronts is tilted
    by that, not by the spine. The neighbours are those of ``shapes`` (the segments below
    the sacrum left out are not). Shapes without surface angles use ``angle_deg``.
    """
    ends = np.array(
        [
            s.endplates_deg if np.isfinite(s.endplates_deg).any() else (s.angle_deg,) * 2
            for s in shapes
        ],
        dtype=np.float64,
    ).reshape(-1, 2)
    # Surfaces no further apart than a wedge-shaped body's are averaged (both kept as the
    # mean, so that the choice below leaves them alone).
    wedge = np.abs(ends[:, 0] - ends[:, 1]) <= OUTLINE_NOT_ENDPLATE_DEG
    ends[wedge] = ends[wedge].mean(axis=1, keepdims=True)
    tilts = consistent_angles(ends, np.arange(len(shapes)))
    # The caudal-most body has one neighbour, the body above, whose tilt is the lordosis
    # one level short: the column's trend continued one level down is what its tilt is
    # compared with instead (the lordosis grows steadily from level to level; the body
    # above alone would favour the surface that hides the lumbosacral angle).
    last = ends[-1]
    if len(shapes) >= 3 and not wedge[-1] and np.isfinite(last).all():
        if np.isfinite(tilts[-3:-1]).all():
            expected = 2.0 * tilts[-2] - tilts[-3]
            tilts[-1] = last[int(np.argmin(np.abs(last - expected)))]
    return tilts


def _sac_ends_at(shape: BodyShape, canal_end_row: int | None, spacing: NDArray) -> bool:
    """Whether the CSF column ends in view, between the body's bottom margin and its top."""
    if canal_end_row is None or canal_end_row < round(SAC_END_MARGIN_MM / spacing[1]):
        return False
    height_rows = round(SAC_BODY_HEIGHT_MM / spacing[1])
    return shape.inferior_row - height_rows <= canal_end_row <= shape.inferior_row + height_rows


def _confidence(sacrum: dict[str, Any], gap: float | None, params: AutosegParameters) -> float:
    """0-1: 0.6 at the angle threshold, 1 at twice it, times the weight of what lies below
    the sacrum (:data:`SUPPORT_WEIGHTS`); halved when a body may be missing."""
    margin = (sacrum["lumbosacral_angle_deg"] - params.sacrum_min_angle_deg) / max(
        params.sacrum_min_angle_deg, 1e-6
    )
    score = (0.6 + 0.4 * float(np.clip(margin, 0, 1))) * SUPPORT_WEIGHTS[sacrum["support"]]
    if gap is not None and gap > params.gap_factor:
        score *= 0.5
    return round(score, 2)
