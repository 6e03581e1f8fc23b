"""The caudal body joined to the tissue below it, cut off at its lower endplate.

Without a T1 the tissue below the sacrum can have the marrow's signal on the T2; the
caudal body (S1) is then joined to it down to the image's lower edge through the lateral
slices, where its thin inferior endplate is lost to partial volume across thick slices.
Near the midline the endplate is still a straight dark line across the segment. This
module finds that line on the sagittal slice nearest the canal's midline, at about a body's
height below the segment's top, whatever its tilt, and keeps what lies above it.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.geometry import hull_image

__all__ = ["cut_at_lower_endplate", "find_dark_line"]

#: A pixel of the line is darker than this fraction of the section's median signal (the
#: ``marrow_fluid_low`` of the marrow mask: what is darker is not marrow).
DARK_FRACTION = 0.7
#: The line lies between these multiples of the median body's SI extent below the
#: segment's superior surface.
HEIGHT_RANGE = (0.5, 1.5)
#: Inclinations (deg, anterior-down) searched for the endplate: from a kyphotic tilt to
#: the steepest sacral tilt.
ANGLES_DEG = np.arange(-20.0, 72.0, 2.0)
#: Thickness (mm) of the band in which the line's dark pixels are counted (an endplate
#: one voxel thick, tilted, spreads over about two voxels along its normal).
LINE_BAND_MM = 2.0
#: A pixel of the line has the segment this far (mm) away on both sides along the line's
#: normal: the line crosses the segment (an endplate between a body and what lies below
#: it), it does not run along its edge (the dark tissue behind or in front of it).
CROSSING_MM = 3.0
#: The section along the line is at least this fraction of the median body's height long
#: (a body is about as deep as it is tall; the line crosses its whole inferior endplate).
MIN_LINE_LENGTH = 0.5
#: ... and at least this share of it is dark (an endplate one voxel thick partial-volumed
#: across a thick slice is dark in places; marrow is dark in a few noisy pixels).
MIN_DARK_SHARE = 0.3


#: A section of fewer pixels is too small to hold a body and a line.
MIN_SECTION_PIXELS = 10


def _mid_slice(segment: NDArray[np.bool_], midline: float) -> int:
    """The sagittal slice nearest the canal's midline that holds part of ``segment``."""
    present = np.flatnonzero(segment.any(axis=(0, 1)))
    return int(present[np.argmin(np.abs(present - midline))])


def find_dark_line(
    section: NDArray[np.bool_], image: NDArray, spacing: NDArray, body_height_mm: float
) -> tuple[float, float] | None:
    """The darkest straight line across a sagittal section, about a body's height down.

    Parameters
    ----------
    section : ndarray of bool, shape (n_ap, n_si)
        The segment on its mid-sagittal slice.
    image : ndarray, same shape
        The image on that slice.
    spacing : array_like, shape (2,)
        Pixel size (mm) along AP and SI.
    body_height_mm : float
        The median body's SI extent.

    Returns
    -------
    (angle_deg, offset_mm) or None
        The line ``-sin(phi) * ap + cos(phi) * si = offset`` (``phi = -radians(angle)``,
        positions in mm; angle anterior-down as in :mod:`.geometry`; ``offset`` half a
        pixel above the median of its dark pixels, so a cut there leaves them out). Over
        the angles :data:`ANGLES_DEG` and bands :data:`LINE_BAND_MM` thick lying
        :data:`HEIGHT_RANGE` times ``body_height_mm`` below the section's top along their
        normal, it is the band with the largest share of the section's convex hull darker
        than :data:`DARK_FRACTION` of the section's median signal and crossing it
        (:func:`_between`). None when that share is under :data:`MIN_DARK_SHARE` or the
        section along the band is shorter than :data:`MIN_LINE_LENGTH` times
        ``body_height_mm``, or the section has fewer than :data:`MIN_SECTION_PIXELS`.
    """
    if section.sum() < MIN_SECTION_PIXELS:
        return None
    hull = hull_image(section)
    ap, si = np.nonzero(hull)
    dark = image[ap, si] < DARK_FRACTION * float(np.median(image[section]))
    area = float(spacing[0] * spacing[1])
    best: tuple[float, float, float] | None = None
    for angle in ANGLES_DEG:
        phi = -np.radians(angle)
        normal = -np.sin(phi) * ap * spacing[0] + np.cos(phi) * si * spacing[1]
        depth = normal.max() - normal
        inside = (depth >= HEIGHT_RANGE[0] * body_height_mm) & (
            depth <= HEIGHT_RANGE[1] * body_height_mm
        )
        if not inside.any():
            continue
        on_line = inside & dark
        on_line[on_line] = _between(section, ap[on_line], si[on_line], phi, spacing)
        share, centre = darkest_band(normal, depth, inside, on_line, area, body_height_mm)
        if share > 0 and (best is None or share > best[0]):
            best = (share, float(angle), centre + 0.5 * float(spacing[1]))
    if best is None or best[0] < MIN_DARK_SHARE:
        return None
    return best[1], best[2]


def darkest_band(
    normal: NDArray,
    depth: NDArray,
    inside: NDArray[np.bool_],
    on_line: NDArray[np.bool_],
    area: float,
    body_height_mm: float,
) -> tuple[float, float]:
    """The band of pixels along a line's normal with the largest share of line pixels.

    Pixels (of a section's convex hull) are put in bands :data:`LINE_BAND_MM` thick by
    their ``depth`` along the normal; within the window ``inside``, each band's share of
    ``on_line`` pixels (dark, crossing the section) is taken, 0 for a band shorter than
    :data:`MIN_LINE_LENGTH` times ``body_height_mm`` (``area``: one pixel's, mm2).

    Returns
    -------
    (share, centre_mm)
        The largest share and the median ``normal`` of that band's line pixels (NaN when
        the share is 0).
    """
    bins = np.floor(depth / LINE_BAND_MM).astype(int)
    total = np.bincount(bins[inside], minlength=bins.max() + 1)
    hits = np.bincount(bins[inside & on_line], minlength=bins.max() + 1)
    share = hits / np.maximum(total, 1)
    share[total * area / LINE_BAND_MM < MIN_LINE_LENGTH * body_height_mm] = 0.0
    k = int(np.argmax(share))
    if share[k] <= 0:
        return 0.0, float("nan")
    return float(share[k]), float(np.median(normal[inside & on_line & (bins == k)]))


def _between(
    section: NDArray[np.bool_], ap: NDArray, si: NDArray, phi: float, spacing: NDArray
) -> NDArray[np.bool_]:
    """Whether each pixel ``(ap, si)`` has the section :data:`CROSSING_MM` away on both sides
    along the normal of a line at ``phi`` (rad): it lies on a line crossing the section,
    not along its edge."""
    step = CROSSING_MM * np.array([-np.sin(phi) / spacing[0], np.cos(phi) / spacing[1]])
    shape = np.array(section.shape)[:, None]
    sides = []
    for sign in (1, -1):
        at = np.rint(np.vstack([ap, si]) + sign * step[:, None]).astype(int)
        fits = ((at >= 0) & (at < shape)).all(axis=0)
        at = np.where(fits, at, 0)
        sides.append(fits & section[at[0], at[1]])
    return sides[0] & sides[1]


def cut_at_lower_endplate(
    segment: NDArray[np.bool_],
    image: NDArray,
    midline: float,
    spacing: NDArray,
    body_height_mm: float,
) -> NDArray[np.bool_] | None:
    """The part of ``segment`` above its caudal body's inferior endplate, or None.

    The endplate is the dark line of :func:`find_dark_line` on the segment's sagittal slice
    nearest the canal's ``midline``; the segment is cut along it on every slice (a plane
    perpendicular to the sagittal plane) and its largest connected part above is returned.
    None when no such line is found (the segment is then no body to keep).

    Examples
    --------
    >>> image = np.full((30, 60, 3), 100.0)
    >>> image[5:25, 20, :] = 20.0  # a dark endplate 20 rows above the lower edge
    >>> segment = np.zeros(image.shape, bool)
    >>> segment[5:25, 0:45, :] = True
    >>> segment[5:25, 20, :] = False
    >>> segment[5:25, 20, 2] = True  # joined through a lateral slice
    >>> kept = cut_at_lower_endplate(segment, image, 1.0, np.ones(3), 20.0)
    >>> int(np.flatnonzero(kept.any(axis=(0, 2))).min())
    21
    """
    k = _mid_slice(segment, midline)
    line = find_dark_line(segment[:, :, k], image[:, :, k], spacing[:2], body_height_mm)
    if line is None:
        return None
    angle, offset = line
    phi = -np.radians(angle)
    ap = np.arange(segment.shape[0])[:, None] * float(spacing[0])
    si = np.arange(segment.shape[1])[None, :] * float(spacing[1])
    above = (-np.sin(phi) * ap + np.cos(phi) * si) > offset
    labels, n = ndimage.label(segment & above[:, :, None])
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(np.argmax(sizes))
