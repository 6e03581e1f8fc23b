"""Segments that do not fit the column of bodies: a disc, a shallow strip (STIR alone).

On a STIR (or fat-suppressed T2) read without a T1 or a T2, a degenerated disc (its nucleus
as dark as the annulus) reads like suppressed marrow and can become a segment of its own,
counted among the bodies (tuning seeds 61, 68, 89 and 162: a disc of 15-23 mL between two
bodies), so that every level below it would be named one off and its signal is read as
the marrow's. Each segment is checked against the other segments of the same scan along
the column (:func:`~.levels.body_shapes`, their mid-sagittal sections): a vertebral body
has a disc beyond each end. A segment lying right against the segment above it and the
segment below it (the central gap to each under :data:`TOUCH_FACTOR` times the column's
median disc, measured over the gaps that are there), under :data:`DISC_HEIGHT_FACTOR`
times the median segment's height, and whose neighbours are no further apart than two
consecutive bodies (:data:`SPAN_FACTOR`), is the disc space between two bodies, not a
body: it is dropped, with a note. The cranial-most and caudal-most segments are not
judged as discs (one neighbour only: at the upper edge :mod:`.edge_disc` reads it, and
at the lower end S2 lies against S1 without a disc, which the levels step reads). Every
reference is the scan's own (its segments' median height, depth and pitch, its discs'
median gap), never a millimetre figure of the phantom's.

A segment too shallow for a body is dropped too (:data:`SHALLOW_FACTOR` of the median
segment's mid-sagittal depth; tuning seed 64: a 15 mL strip of muscle below S1, 15 mm deep
among bodies 32 mm deep, counted as a ninth body), except the cranial-most segment.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.autoseg.checks import relabelled
from bmetoolkit.spine.autoseg.disc_ends import cut_at_end_lines
from bmetoolkit.spine.autoseg.levels import (
    BODY_WITH_DISC_FACTOR,
    MIDSAGITTAL_HALF_WIDTH_MM,
    BodyShape,
    _section_height,
    body_shapes,
)

__all__ = ["cut_touching_ends", "drop_unfit", "mid_sagittal_depths", "touching_ends"]

Labels = NDArray[np.int32]

#: The column is judged only with at least this many segments (a median needs them).
MIN_SEGMENTS = 4
#: A gap under this fraction of the column's median disc is no disc: the segments touch.
#: Lumbar discs are 8-15 mm at their centre and a degenerated one keeps a few mm; on the
#: tuning phantoms the gaps either side of a disc taken for a body were 0-1.2 mm, those of
#: the bodies around 7-15 mm.
TOUCH_FACTOR = 0.25
#: A segment touching both neighbours and under this fraction of the median segment's
#: height is a disc (tuning 60-99 and 160-199: the discs 0.61-0.75 of it; a body whose
#: neighbours took both its discs can be as short, seed 177's L5 0.68: see
#: :data:`SPAN_FACTOR`).
DISC_HEIGHT_FACTOR = 0.8
#: ... and whose neighbours' centroids lie under this many times the column's pitch (the
#: median distance between consecutive segments) apart: the segments either side of a
#: disc are consecutive vertebrae (one pitch apart; tuning: 1.07-1.16), while a body whose
#: neighbours took the discs either side of it has them two pitches apart (tuning seed
#: 177's L5: 1.92).
SPAN_FACTOR = 1.5
#: A segment other than the cranial-most under this fraction of the median segment's
#: mid-sagittal depth is no body. Adjacent vertebral bodies differ in depth by about a
#: tenth, and S1 and S2 are as deep as L5 or nearly; the cranial-most segment is left out
#: of the check (a thoracic body, or one cut by the image's edge or partly found: tuning
#: seed 84's T11, 0.62). Tuning 60-99 and 160-199: the other bodies 0.75 and up, a strip
#: of muscle below S1 (seed 64) 0.47.
SHALLOW_FACTOR = 0.65


def _column_gaps(shapes: list[BodyShape]) -> tuple[NDArray[np.float64], float]:
    """The central gap below each segment but the last (mm; NaN where not measured) and
    the median of the open ones, the column's median disc (0.0 when there is none)."""
    gaps = np.array([s.disc_below_mm for s in shapes[:-1]], dtype=np.float64)
    open_gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
    return gaps, float(np.median(open_gaps)) if open_gaps.size else 0.0


def mid_sagittal_depths(bodies: Labels, midline: float, spacing: NDArray) -> dict[int, float]:
    """Each segment's depth (mm) on its mid-sagittal section.

    The section is the union of the segment's sagittal slices within
    :data:`~.levels.MIDSAGITTAL_HALF_WIDTH_MM` of ``midline`` (its whole sagittal
    projection when none reaches it); the depth is the 90th percentile over its SI rows of
    each row's AP extent (as :func:`~.levels._section_height` reads the height).

    Examples
    --------
    >>> bodies = np.zeros((30, 20, 5), np.int32)
    >>> bodies[2:22, 2:8, 1:4], bodies[2:12, 12:18, 1:4] = 1, 2
    >>> mid_sagittal_depths(bodies, 2.0, np.ones(3))
    {1: 20.0, 2: 10.0}
    """
    half = MIDSAGITTAL_HALF_WIDTH_MM / float(spacing[2])
    k0, k1 = max(0, int(np.floor(midline - half))), int(np.ceil(midline + half)) + 1
    mid = bodies[:, :, k0:k1]
    along_rows = np.array([spacing[1], spacing[0]], dtype=np.float64)
    depths = {}
    for label in (int(x) for x in np.unique(bodies[bodies > 0])):
        section = (mid == label).any(axis=2)
        if not section.any():
            section = (bodies == label).any(axis=2)
        depths[label] = _section_height(section.T, along_rows)  # AP extents per SI row
    return depths


def drop_unfit(bodies: Labels, midline: float, spacing: NDArray) -> tuple[Labels, list[str]]:
    """Drop the segments that are a disc between two bodies or too shallow for a body.

    Parameters
    ----------
    bodies : ndarray of int32
        Segments labelled 1..n, canonical (AP, SI, LR) axes.
    midline : float
        Left-right index of the canal's midline.
    spacing : ndarray, shape (3,)
        Voxel size (mm).

    Returns
    -------
    bodies : ndarray of int32
        Relabelled 1..n.
    notes : list of str
        One per segment dropped.

    Examples
    --------
    >>> bodies = np.zeros((40, 200, 5), np.int32)
    >>> rows = [(170, 195), (135, 160), (120, 135), (95, 120), (60, 85), (25, 50)]
    >>> for k, (lo, hi) in enumerate(rows, start=1):  # bodies 25 mm tall, discs of 10 mm,
    ...     bodies[5:35, lo:hi, 1:4] = k  # and a 15 mm disc segment against two of them
    >>> kept, notes = drop_unfit(bodies, 2.0, np.ones(3))
    >>> int(kept.max()), len(notes)
    (5, 1)
    """
    shapes = body_shapes(bodies, midline, spacing)
    if len(shapes) < MIN_SEGMENTS:
        return bodies, []
    heights = np.array([s.height_mm for s in shapes])
    gaps, median_disc = _column_gaps(shapes)
    median_height = float(np.nanmedian(heights))
    centres = np.array([s.centroid_mm for s in shapes])
    pitch = float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1)))
    volume = float(np.prod(spacing)) / 1000
    dropped, notes = [], []
    depths = mid_sagittal_depths(bodies, midline, spacing)
    median_depth = float(np.median(list(depths.values())))
    for shape in shapes[1:]:
        if depths[shape.label] < SHALLOW_FACTOR * median_depth:
            dropped.append(shape.label)
            ml = float((bodies == shape.label).sum()) * volume
            notes.append(
                f"a {ml:.1f} mL segment {depths[shape.label]:.0f} mm deep (the median "
                f"segment {median_depth:.0f} mm) was dropped: too shallow for a vertebral body"
            )
    touching = TOUCH_FACTOR * median_disc
    for k in range(1, len(shapes) - 1):
        shape = shapes[k]
        if shape.label in dropped:
            continue
        above, below = gaps[k - 1], gaps[k]
        span = float(np.linalg.norm(centres[k + 1] - centres[k - 1]))
        if (
            np.isfinite(above)
            and np.isfinite(below)
            and max(above, below) < touching
            and shape.height_mm < DISC_HEIGHT_FACTOR * median_height
            and span < SPAN_FACTOR * pitch
        ):
            dropped.append(shape.label)
            ml = float((bodies == shape.label).sum()) * volume
            notes.append(
                f"a {ml:.1f} mL segment {shape.height_mm:.0f} mm tall (the median segment "
                f"{median_height:.0f} mm) lying against the segments above and below it "
                f"with no disc between them ({above:.1f} and {below:.1f} mm, the column's "
                f"median disc {median_disc:.1f} mm) was dropped: a disc, "
                "not a vertebral body"
            )
    if not dropped:
        return bodies, []
    kept = sorted(s.label for s in shapes if s.label not in dropped)
    return relabelled(bodies, kept), notes


#: Where two segments touch, the end of each that faces the other is cut at a dark line
#: when this share of the line's band is dark (the end cut of :mod:`.disc_ends` asks
#: 0.3 of any end; here the missing disc says one lies there).
FAINT_SHARE = 0.15
#: A central gap under this fraction of the median segment's height is no disc either,
#: whatever the column's median disc (a lumbar disc is about a third of its body's height,
#: a degenerated one a fifth). Where half the bodies took a disc the gaps left between
#: them are the column's "median disc" (tuning seeds 75, 99: 2.2-2.7 mm against discs of
#: 9-11 mm), and a gap of 0.7-0.8 mm did not count as touching.
TOUCH_HEIGHT_FACTOR = 0.1


def cut_touching_ends(
    bodies: Labels,
    image: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    disc_taken: bool = False,
) -> tuple[Labels, int]:
    """Cut the ends of two segments that touch at the fainter dark line of an endplate.

    Two consecutive vertebral bodies have a disc between them. Where two segments touch
    (central gap under :data:`TOUCH_FACTOR` times the column's median disc), one or both
    took the disc; the end of each facing the other is cut at the dark line near it as
    :func:`.disc_ends.cut_at_end_lines` cuts any end (the same search, the fatty marrow
    beyond a line kept, at least 0.55 of the body kept), with a line needing only
    :data:`FAINT_SHARE` of its band dark.

    Parameters
    ----------
    bodies : ndarray of int32
        Segments labelled 1..n, canonical (AP, SI, LR) axes.
    image : ndarray
        The image the bodies were read from.
    midline : float
        Left-right index of the canal's midline.
    spacing : ndarray, shape (3,)
        Voxel size (mm).
    disc_taken : bool, optional
        Also read as touching: a gap under :data:`TOUCH_HEIGHT_FACTOR` times the median
        segment's height, and both ends of a segment over
        :data:`~.levels.BODY_WITH_DISC_FACTOR` times that
        height (``suppressed_disc_taken``; see :func:`touching_ends`).

    Returns
    -------
    bodies : ndarray of int32
    cut : int
        How many segments lost an end.
    """
    shapes = body_shapes(bodies, midline, spacing)
    if len(shapes) < MIN_SEGMENTS:
        return bodies, 0
    gaps, median_disc = _column_gaps(shapes)
    if median_disc == 0:
        return bodies, 0
    ends = touching_ends(shapes, gaps, median_disc, disc_taken)
    if not ends:
        return bodies, 0
    return cut_at_end_lines(bodies, image, midline, spacing, ends, FAINT_SHARE)


def touching_ends(
    shapes: list[BodyShape],
    gaps: NDArray[np.float64],
    median_disc: float,
    disc_taken: bool = False,
) -> dict[int, tuple[str, ...]]:
    """The ends (``"top"``, ``"bottom"``) of each segment that lie where a disc is missing.

    A gap under :data:`TOUCH_FACTOR` times ``median_disc`` marks the facing ends of the two
    segments either side of it. With ``disc_taken`` a gap under
    :data:`TOUCH_HEIGHT_FACTOR` times the median segment's height does too (where half the
    bodies took a disc, the column's median disc is itself a gap left between two bodies),
    and a segment taller (mid-sagittal height) than :data:`~.levels.BODY_WITH_DISC_FACTOR`
    times that height has both ends marked: it holds a body and (most of) a disc, whether
    or not its neighbour beyond the disc was found (tuning seed 65: L5 with the disc above
    it, 1.66 of the median segment, its neighbour above lost; two bodies are split before,
    :mod:`.joined`, at 1.6 of the SI extent).

    Examples
    --------
    >>> from bmetoolkit.spine.autoseg.levels import BodyShape
    >>> def shape(label, height):
    ...     return BodyShape(label, np.zeros(3), 0.0, False, 0, (0, 0), height_mm=height)
    >>> shapes = [shape(1, 30.0), shape(2, 40.0), shape(3, 30.0), shape(4, 30.0)]
    >>> gaps = np.array([0.8, 2.5, 9.0])  # body 2 took the disc below body 1
    >>> touching_ends(shapes, gaps, 2.5)
    {}
    >>> touching_ends(shapes, gaps, 2.5, disc_taken=True)
    {1: ('bottom',), 2: ('top', 'bottom'), 3: ('top',)}
    """
    touching = TOUCH_FACTOR * median_disc
    heights = np.array([s.height_mm for s in shapes], dtype=np.float64)
    median_height = float(np.nanmedian(heights)) if np.isfinite(heights).any() else 0.0
    if disc_taken:
        touching = max(touching, TOUCH_HEIGHT_FACTOR * median_height)
    ends: dict[int, tuple[str, ...]] = {}
    for k, gap in enumerate(gaps):
        if np.isfinite(gap) and gap < touching:
            upper, lower = shapes[k].label, shapes[k + 1].label
            ends[upper] = (*ends.get(upper, ()), "bottom")
            ends[lower] = (*ends.get(lower, ()), "top")
    if disc_taken and median_height > 0:
        for shape in shapes:
            if shape.height_mm > BODY_WITH_DISC_FACTOR * median_height:
                ends[shape.label] = ("top", "bottom")
    return ends
