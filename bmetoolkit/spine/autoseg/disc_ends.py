"""A body's end cut off at its endplate line: the disc it took (fat-suppressed image alone).

On a STIR (or fat-suppressed T2) the annulus is dark-intermediate like suppressed marrow,
and the thin endplates between a body and its discs are lost to partial volume across
thick slices. The marrow mask then holds each body and the annulus above or below it; the
seeds are split at the bright nucleus, so each body grows through the annulus up to the
nucleus and the lesion fill puts the nucleus inside it (tuning seeds 60-99 from a STIR
alone: bodies taking half a disc or a whole one, 4-12 mL of annulus and nucleus each; on
the mid-sagittal slice the body's own endplates still show as straight dark lines across
the segment, with the disc beyond them).

Vertebral bodies end at their endplates, and a disc's tissue never belongs to a body. Near
each end of a body, within :data:`END_WINDOW` of the segment's height along the line's
normal, the dark line crossing the segment (the search of :func:`.lower_edge.find_dark_line`:
the band :data:`.lower_edge.LINE_BAND_MM` thick, any tilt in
:data:`.lower_edge.ANGLES_DEG`, with the largest share of pixels darker than
:data:`.lower_edge.DARK_FRACTION` of the section's median that have the segment
:data:`.lower_edge.CROSSING_MM` away on both sides) is the endplate, and what lies beyond
it is disc. A body whose end is its endplate has nothing beyond the line (the crossing
test fails there) and is left as it is; so is a body where no line shows, and one the cut
would leave under :data:`MIN_KEPT` of its voxels. Every level is the section's own, so the
rule does not depend on the scanner's scale; the image's signal decides nothing else.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.autoseg.checks import largest_part, si_extents
from bmetoolkit.spine.autoseg.geometry import hull_image
from bmetoolkit.spine.autoseg.levels import BODY_WITH_DISC_FACTOR
from bmetoolkit.spine.autoseg.lower_edge import (
    ANGLES_DEG,
    DARK_FRACTION,
    MIN_DARK_SHARE,
    MIN_SECTION_PIXELS,
    _between,
    _mid_slice,
    darkest_band,
)

__all__ = ["cut_at_end_lines", "end_lines"]

Labels = NDArray[np.int32]
#: A line is searched within this fraction of the section's height from each end (a disc
#: is about a third of a body's height; a line further in would cut the body).
END_WINDOW = 0.4
#: A cut keeps at least this fraction of the body's voxels, or the body is left as it is.
MIN_KEPT = 0.55
#: What lies beyond a line is fatty marrow only when this percentile of it, too, is under
#: the section's: fat is darker throughout, while a disc beyond holds its nucleus, brighter
#: than marrow, even where the annulus and the dark endplates pull its median under the
#: marrow's (tuning seeds 91, 99 and 177 from a STIR alone: a whole disc left in the body,
#: 0.89-0.99 of the section's median beyond the line, its 90th percentile 1.01-1.04).
BRIGHT_TAIL_PERCENTILE = 90.0
#: Line: (angle_deg, offset_mm) of ``-sin(phi) * ap + cos(phi) * si = offset``.
Line = tuple[float, float]


def end_lines(
    section: NDArray[np.bool_],
    image: NDArray,
    spacing: NDArray,
    body_height_mm: float,
    min_share: float = MIN_DARK_SHARE,
) -> dict[str, Line | None]:
    """The dark line crossing a sagittal section near its superior and inferior ends.

    Parameters
    ----------
    section : ndarray of bool, shape (n_ap, n_si)
        The body on its mid-sagittal slice.
    image : ndarray, same shape
        The image on that slice.
    spacing : array_like, shape (2,)
        Pixel size (mm) along AP and SI.
    body_height_mm : float
        The median body's SI extent (a line is at least :data:`.lower_edge.MIN_LINE_LENGTH`
        times it long).
    min_share : float, optional
        The share of a band's pixels that must be dark for it to be a line
        (:data:`.lower_edge.MIN_DARK_SHARE` by default).

    Returns
    -------
    dict
        ``"top"`` and ``"bottom"``: ``(angle_deg, offset_mm)`` of the line (``phi =
        -radians(angle)``, positions in mm, ``offset`` the median of its dark pixels along
        the normal), or None where no band reaches :data:`.lower_edge.MIN_DARK_SHARE`.

    Examples
    --------
    >>> section = np.zeros((30, 50), bool)
    >>> section[5:25, 5:45] = True  # a body (rows 5-34) and the disc it took (35-44)
    >>> image = np.full(section.shape, 100.0)
    >>> image[5:25, 35] = 10.0  # its superior endplate
    >>> lines = end_lines(section, image, np.ones(2), 30.0)
    >>> lines["top"], lines["bottom"]
    ((0.0, 35.0), None)
    """
    found: dict[str, tuple[float, float, float] | None] = {"top": None, "bottom": None}
    if section.sum() < MIN_SECTION_PIXELS:
        return {"top": None, "bottom": None}
    hull = hull_image(section)
    ap, si = np.nonzero(hull)
    dark = image[ap, si] < DARK_FRACTION * float(np.median(image[section]))
    area = float(spacing[0] * spacing[1])
    for angle in sorted(ANGLES_DEG, key=abs):  # ties go to the least tilted line
        phi = -np.radians(angle)
        normal = -np.sin(phi) * ap * spacing[0] + np.cos(phi) * si * spacing[1]
        height = float(normal.max() - normal.min())
        crossing = dark.copy()
        crossing[crossing] = _between(section, ap[crossing], si[crossing], phi, spacing)
        for end, depth in (("top", normal.max() - normal), ("bottom", normal - normal.min())):
            inside = depth <= END_WINDOW * height
            share, centre = darkest_band(normal, depth, inside, crossing, area, body_height_mm)
            best = found[end]
            if share >= min_share and (best is None or share > best[0]):
                found[end] = (share, float(angle), centre)
    return {end: None if f is None else (f[1], f[2]) for end, f in found.items()}


def cut_at_end_lines(
    bodies: Labels,
    image: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    ends: dict[int, tuple[str, ...]] | None = None,
    min_share: float = MIN_DARK_SHARE,
    whole_height: float = 0.0,
) -> tuple[Labels, int]:
    """Cut off what lies beyond each body's endplate lines (:func:`end_lines`).

    The lines are read on the body's sagittal slice nearest the canal's ``midline``; the
    body is cut along them on every slice (planes perpendicular to the sagittal plane),
    keeping the line's own pixels (the endplate), and its largest connected part is kept.
    A cut that keeps under :data:`MIN_KEPT` of the segment is not made (a line inside the
    body), unless ``whole_height`` is set, the segment is taller than
    :data:`.levels.BODY_WITH_DISC_FACTOR` times the median segment's SI extent (a body with
    its disc, or with both) and what the cut keeps is at least ``whole_height`` times that
    median extent tall: a whole body is left, and what goes is its discs.

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels, canonical (AP, SI, LR) axes.
    image : ndarray
        The image the bodies were read from.
    midline : float
        Left-right index of the canal midline.
    spacing : ndarray, shape (3,)
    ends : dict, optional
        Only these ends (``"top"``, ``"bottom"``) of these labels are read; every end of
        every body by default.
    min_share : float, optional
        See :func:`end_lines`.
    whole_height : float, optional
        ``suppressed_ends_whole_height`` (a fraction of the median segment's SI extent);
        0 keeps :data:`MIN_KEPT` for every segment.

    Returns
    -------
    bodies : ndarray of int32
    cut : int
        How many bodies lost an end.

    Examples
    --------
    >>> bodies = np.zeros((30, 130, 3), np.int32)
    >>> bodies[5:25, 2:32], bodies[5:25, 40:80], bodies[5:25, 90:120] = 1, 2, 3
    >>> image = np.full(bodies.shape, 100.0)
    >>> image[5:25, 70] = 10.0  # body 2's superior endplate: rows 71-79 are disc
    >>> out, cut = cut_at_end_lines(bodies, image, 1.0, np.ones(3))
    >>> cut, np.flatnonzero((out == 2).any(axis=(0, 2)))[[0, -1]].tolist()
    (1, [40, 70])
    """
    boxes, extents = si_extents(bodies, spacing)
    if len(extents) < 3:
        return bodies, 0
    body_height = float(np.median(list(extents.values())))
    half = 0.5 * float(spacing[1])
    out, cut = bodies.copy(), 0
    for label in extents:
        if ends is not None and label not in ends:
            continue
        box = boxes[label - 1]
        segment = bodies[box] == label
        k = _mid_slice(segment, midline - box[2].start)
        lines = end_lines(
            segment[:, :, k], image[box][:, :, k], spacing[:2], body_height, min_share
        )
        if ends is not None:
            lines = {end: line for end, line in lines.items() if end in ends[label]}
        # Positions (mm) in the box, as the lines were read.
        ap = np.arange(segment.shape[0])[:, None] * float(spacing[0])
        si = np.arange(segment.shape[1])[None, :] * float(spacing[1])
        keep = np.ones(segment.shape[:2], bool)
        section, signal = segment[:, :, k], image[box][:, :, k]
        for end, line in lines.items():
            if line is None:
                continue
            phi = -np.radians(line[0])
            normal = -np.sin(phi) * ap + np.cos(phi) * si
            # The endplate's own pixels stay with the body.
            side = normal <= line[1] + half if end == "top" else normal >= line[1] - half
            if _fatty_beyond(section & ~side, section, signal):
                continue  # darker than the marrow beyond the line: fatty marrow, not disc
            keep &= side
        if keep.all():
            continue
        kept = largest_part(segment & keep[:, :, None])
        if not kept.any():
            continue
        if kept.sum() < MIN_KEPT * segment.sum() and not _whole_body_left(
            kept, extents[label], body_height, float(spacing[1]), whole_height
        ):
            continue
        out[box][segment & ~kept] = 0
        cut += 1
    return out, cut


def _whole_body_left(
    kept: NDArray[np.bool_],
    extent_mm: float,
    body_height_mm: float,
    pixel_si_mm: float,
    whole_height: float,
) -> bool:
    """Whether a cut that keeps under :data:`MIN_KEPT` of a tall segment leaves a whole body.

    A segment taller than :data:`.levels.BODY_WITH_DISC_FACTOR` times the median segment
    holds a body and a disc (1.3-1.4 times), or a body with both its discs (about 1.7
    times: tuning seed 67's T12 from a STIR alone, 47.7 mm against a median of 29.2 mm,
    1.87 times its true body's voxels); cut at both endplate lines it keeps about half its
    voxels, and that half is the body when it is as tall as a body of this column
    (``whole_height`` times the median extent).

    >>> kept = np.zeros((4, 40, 2), bool); kept[:, 10:34] = True  # 24 rows of 1 mm
    >>> _whole_body_left(kept, 48.0, 30.0, 1.0, 0.7), _whole_body_left(kept, 36.0, 30.0, 1.0, 0.7)
    (True, False)
    """
    if whole_height <= 0 or not extent_mm > BODY_WITH_DISC_FACTOR * body_height_mm:
        return False
    rows = np.flatnonzero(kept.any(axis=(0, 2)))
    if rows.size == 0:
        return False
    return bool((rows[-1] - rows[0] + 1) * pixel_si_mm >= whole_height * body_height_mm)


def _fatty_beyond(beyond: NDArray[np.bool_], section: NDArray[np.bool_], image: NDArray) -> bool:
    """Whether what lies beyond a line is darker than the section's marrow, throughout.

    A disc's annulus is about as bright as suppressed marrow and its nucleus brighter; fatty
    marrow (a Modic II change, a fatty band at the endplate) is darker on a fat-suppressed
    image, and its dark band is itself a line. So the part beyond a line whose median and
    whose :data:`BRIGHT_TAIL_PERCENTILE` percentile are both under the section's is marrow,
    and is kept; a part with a bright tail (a nucleus) is disc, whatever its median.

    Examples
    --------
    >>> section = np.ones((10, 10), bool)
    >>> image = np.full(section.shape, 100.0)
    >>> image[:, 7:] = 90.0  # annulus a little darker than the marrow ...
    >>> beyond = np.zeros_like(section)
    >>> beyond[:, 7:] = True
    >>> bool(_fatty_beyond(beyond, section, image))
    True
    >>> image[3:7, 8] = 250.0  # ... with its bright nucleus: a disc
    >>> bool(_fatty_beyond(beyond, section, image))
    False
    """
    if not beyond.any():
        return False
    inside, outside = image[section], image[beyond]
    if np.percentile(outside, BRIGHT_TAIL_PERCENTILE) > np.percentile(
        inside, BRIGHT_TAIL_PERCENTILE
    ):
        return False
    return bool(np.median(outside) < np.median(inside))
