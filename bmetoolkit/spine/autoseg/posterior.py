"""Keep the posterior elements out of the bodies' lateral sections.

On a sagittal slice beside the midline a vertebral body's posterior wall is no further back
than at the midline, and behind it lie the pedicle's base and the foramen. Where that
tissue passes the marrow threshold, the seeds' regrowth and the lesion fill take it into
the body: the lateral confinement (:func:`.checks.confine_laterally`) allows the whole
mid-sagittal outline on every slice, so it stays. What marks it is a wall in the back of
the section, darker on T1 than the body's own marrow at the midline (the body's cortex,
oblique on a lateral slice), running down most of the section's height with tissue that is
not dark behind it: the wall and what lies behind it are cut. Lesions darken the T1 too,
but they run along an endplate (rows dark across most of the section's depth, which do not
count) and have no marrow behind them. Where a pedicle joins the body without a visible
cortex nothing is cut.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.reference import robust_sd
from bmetoolkit.spine.autoseg.bodies import BOX_FILL_MIN_AREA
from bmetoolkit.spine.autoseg.checks import MID_SAGITTAL_HALF_WIDTH_MM

__all__ = ["DARK_MADS", "MIN_BAND_ROWS", "trim_posterior_band"]

#: A voxel is darker than the body's own marrow below its mid-sagittal median minus this
#: many robust standard deviations (:func:`~bmetoolkit.reference.robust_sd`) of it: the
#: threshold follows each body's marrow and each scan's noise and mottling.
DARK_MADS = 3.0
#: A posterior band is cut only when it runs down at least this fraction of the section's
#: rows (a wall of tissue behind the body, not a spot at a corner).
MIN_BAND_ROWS = 0.5
#: Rows dark over more than this fraction of their depth are a lesion along an endplate
#: (or a partial-volumed endplate row), not tissue behind the wall: they stay.
MAX_ROW_FRACTION = 0.7
#: The tissue behind a wall, not dark, must be at least this deep (mm) on average over the
#: wall's rows: a partial-volumed posterior rim with a voxel of marrow behind it is no wall.
MIN_BEHIND_MM = 2.0


def trim_posterior_band(
    bodies: NDArray[np.int32], t1: NDArray, midline: float, spacing: NDArray
) -> NDArray[np.int32]:
    """Cut, on each body's lateral slices, a dark wall in its back and what lies behind it.

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels (canonical axes), marrow with the lesions filled, before the cortex.
    t1 : ndarray
        The T1 with the marrow bright (canonical axes).
    midline : float
        The canal's midline (index along the left-right axis).
    spacing : array_like, shape (3,)
        Voxel size (mm) along the canonical axes.

    Returns
    -------
    ndarray of int32
        The bodies with the bands removed (same labels). The slices within
        :data:`~.checks.MID_SAGITTAL_HALF_WIDTH_MM` of the midline, and sections under
        :data:`~.bodies.BOX_FILL_MIN_AREA` of the body's largest, are left as they are.
    """
    out = bodies.copy()
    lr_mm = np.abs(np.arange(bodies.shape[2]) - midline) * float(spacing[2])
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        own = bodies[box] == label
        mid = lr_mm[box[2]] <= MID_SAGITTAL_HALF_WIDTH_MM
        if not mid.any() or mid.all():
            continue
        # In-plane median: one noisy voxel does not break a band.
        image = ndimage.median_filter(np.asarray(t1[box], np.float32), size=(3, 3, 1))
        core = ndimage.binary_erosion(own[:, :, mid], np.ones((3, 3, 1), bool))
        values = image[:, :, mid][core]
        if values.size < 20:
            continue
        median = float(np.median(values))
        spread = robust_sd(values)
        # Sections smaller than half the largest are the body's partial-volumed side, grey
        # throughout: no wall can be told there.
        areas = own.sum(axis=(0, 1))
        lateral = ~mid & (areas >= BOX_FILL_MIN_AREA * areas.max())
        dark = image[:, :, lateral] < median - DARK_MADS * spread
        cut = np.zeros_like(own)
        behind = MIN_BEHIND_MM / float(spacing[0])
        cut[:, :, lateral] = _posterior_band(own[:, :, lateral], dark, behind)
        target = out[box]
        target[cut] = 0
    return out


def _posterior_band(
    sections: NDArray[np.bool_], dark: NDArray[np.bool_], behind: float
) -> NDArray[np.bool_]:
    """Per slice (axis 2), the section's voxels at and behind a dark wall near its back.

    ``sections`` and ``dark`` are (anterior, superior, slice); index 0 along the first axis is
    posterior; ``behind`` is the least mean depth (voxels) of the tissue behind a wall.
    See :func:`_wall_line`.
    """
    band = np.zeros_like(sections)
    for k in np.flatnonzero(sections.any(axis=(0, 1))):
        line = _wall_line(sections[:, :, k], dark[:, :, k] & sections[:, :, k], behind)
        if line is not None:
            ap = np.arange(sections.shape[0])[:, None]
            band[:, :, k] = sections[:, :, k] & (ap <= line[None, :])
    return band


def _wall_line(
    section: NDArray[np.bool_], dark: NDArray[np.bool_], behind_min: float
) -> NDArray | None:
    """The anterior edge (AP index per SI row) of a dark wall in a section's back, or None.

    A wall is a connected dark component behind the section's centroid whose rows that are
    dark over at most :data:`MAX_ROW_FRACTION` of the section's depth, with the component's
    anterior edge in the back half of the row's section, cover at least
    :data:`MIN_BAND_ROWS` of the section's rows, with section voxels not dark behind it
    (the tissue it separates from the body), ``behind_min`` voxels deep on average. Rows
    where the wall is missing or too deep take its median edge.
    """
    parts, n = ndimage.label(dark, np.ones((3, 3), bool))
    if n == 0:
        return None
    depth = section.sum(axis=0)
    rows = int((depth > 0).sum())
    ap = np.arange(section.shape[0])[:, None]
    centre = float(np.nonzero(section)[0].mean())
    best, best_rows = None, 0
    back = np.where(section, ap, section.shape[0]).min(axis=0)
    front = np.where(section, ap, -1).max(axis=0)
    for part in range(1, n + 1):
        wall = parts == part
        count = wall.sum(axis=0)
        edge = np.where(wall, ap, -1).max(axis=0)
        # A row counts when the wall stays in the back half of the row's section.
        usable = (count > 0) & (count <= MAX_ROW_FRACTION * depth) & (2 * edge < back + front)
        if usable.sum() < max(MIN_BAND_ROWS * rows, 2) or usable.sum() <= best_rows:
            continue
        if float(np.nonzero(wall)[0].mean()) >= centre:
            continue
        line = np.where(usable, edge, int(np.median(edge[usable])))
        behind = section & ~dark & (ap < line[None, :])
        if behind.sum() >= behind_min * usable.sum():
            best, best_rows = line, int(usable.sum())
    return best
