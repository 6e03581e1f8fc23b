"""The S1-S2 line across the sacrum, read against the marrow on both sides of it.

On a T2 the sacrum below S1 is marrow-signal bone. What separates S1 from it is the
remnant of the S1-S2 disc and its two endplates, a line a few mm thick across the sacrum
about one body's height below S1's superior endplate. Across thick slices it is partial
volumed and may stay lighter than :data:`.lower_edge.DARK_FRACTION` of the marrow, the level
below which the marrow mask and the dark rim of :func:`.oversized.cut_back_caudal` call a
pixel dark (tuning seeds 171 and 195 of the pelvis-and-bowel family from a T2 alone: the
line at 0.72-0.83 of S1's marrow, S1 joined to the lower sacrum through it and lost). A
reader sees the line because it is darker than the marrow on both sides of it, whatever its
level against a fixed fraction: here it is a valley of the signal along the column's axis,
deeper than the marrow's own pixel-to-pixel spread on both sides allows.

All arrays are 2D sagittal sections indexed (anterior, superior); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.reference import MAD_TO_SD
from bmetoolkit.segment import region_medians
from bmetoolkit.spine.autoseg.lower_edge import ANGLES_DEG, HEIGHT_RANGE, MIN_SECTION_PIXELS

__all__ = ["valley_line"]

#: The profile's step along the line's normal (mm): an endplate is 0.5-1.5 mm thick and a
#: remnant disc 0-2 mm, so the line spans a few steps.
BIN_MM = 1.0
#: The line's half width (mm) beyond its darkest step: its shoulders (the endplates
#: blurred over a pixel or two) are neither line nor marrow and are left out of both.
LINE_HALF_MM = 1.5
#: The marrow on each side of the line is read over this far (mm) beyond its shoulders: a
#: sixth of a lumbar body's height, well inside S1 above and the sacrum below.
SIDE_MM = 5.0
#: A profile step is read from the middle of the section along the line (this fraction of
#: its extent), away from the anterior and posterior cortex and the tissue beside them.
CENTRAL_FRACTION = 0.5
#: A step holds at least this many pixels of the middle of the section to have a median ...
MIN_STEP_PIXELS = 3
#: ... and the marrow on each side of the line is read from at least this many steps.
MIN_SIDE_STEPS = 3
#: The line's median is darker than the marrow's median on both sides of it by at least
#: this many times the marrow's robust pixel spread there (1.4826 times the median absolute
#: deviation, both sides pooled): a line a reader sees, not a run of noisy pixels. Two
#: standard deviations, the usual "clearly outside the spread".
MIN_CONTRAST_SPREADS = 2.0


def valley_line(
    section: NDArray[np.bool_], image: NDArray, spacing: NDArray, body_height_mm: float
) -> NDArray[np.bool_] | None:
    """The pixels of a faint straight line across a sagittal section, about a body down.

    Parameters
    ----------
    section : ndarray of bool, shape (n_ap, n_si)
        The caudal segment on its mid-sagittal slice (S1 joined to the sacrum below it).
    image : ndarray, same shape
        The T2 on that slice.
    spacing : array_like, shape (2,)
        Pixel size (mm) along AP and SI.
    body_height_mm : float
        The median body's SI extent.

    Returns
    -------
    ndarray of bool or None
        The section's pixels on the line, or None where no line shows. For each inclination
        of :data:`.lower_edge.ANGLES_DEG` the section is read as a profile along the line's
        normal, in steps of :data:`BIN_MM` down from the section's top, each step the median
        of the middle :data:`CENTRAL_FRACTION` of the section along it. A step lying
        :data:`.lower_edge.HEIGHT_RANGE` times ``body_height_mm`` below the top, no brighter
        than its neighbours, is a line when its median lies under the marrow's median on
        both sides (:data:`SIDE_MM` beyond its shoulders, :data:`LINE_HALF_MM`) by at least
        :data:`MIN_CONTRAST_SPREADS` times the marrow's robust pixel spread there (none where
        that spread is 0); of all lines the deepest (the largest contrast) is kept, with its
        neighbouring steps darker than halfway between it and the marrow (within
        :data:`LINE_HALF_MM`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(100.0, 3.0, (30, 80))
    >>> image[:, 40:42] -= 20.0  # a faint line (0.8 of the marrow), 38 mm below the top
    >>> line = valley_line(np.ones((30, 80), bool), image, np.ones(2), 35.0)
    >>> rows = np.flatnonzero(line.any(axis=0))  # the line, read at a tilt within the noise
    >>> int(rows.min()) >= 38 and int(rows.max()) <= 43 and {40, 41} <= set(rows.tolist())
    True
    >>> valley_line(np.ones((30, 80), bool), rng.normal(100.0, 3.0, (30, 80)), np.ones(2), 35.0)
    """
    if section.sum() < MIN_SECTION_PIXELS:
        return None
    ap, si = np.nonzero(section)
    values = np.asarray(image, dtype=np.float64)[ap, si]
    gap = int(np.ceil(LINE_HALF_MM / BIN_MM - 1e-9))
    side = max(round(SIDE_MM / BIN_MM), 1)
    best: tuple[float, NDArray[np.bool_]] | None = None  # contrast, the line's pixels
    for angle in ANGLES_DEG:
        phi = -np.radians(angle)
        normal = -np.sin(phi) * ap * spacing[0] + np.cos(phi) * si * spacing[1]
        along = np.cos(phi) * ap * spacing[0] + np.sin(phi) * si * spacing[1]
        steps = np.floor((normal.max() - normal) / BIN_MM).astype(int)
        central = _central(along, steps)
        profile = _step_medians(values[central], steps[central], int(steps.max()) + 1)
        for step, level, spread, contrast in _valleys(
            profile, values, steps, central, gap, side, body_height_mm
        ):
            # No measurable spread (a flat or coarsely quantised marrow) judges no line.
            weak = not spread > 0 or contrast < MIN_CONTRAST_SPREADS * spread
            if weak or (best is not None and contrast <= best[0]):
                continue
            # The line's own steps: its neighbours darker than halfway to the marrow.
            half = (profile[step] + level) / 2
            near = np.arange(max(step - gap, 0), min(step + gap, profile.size - 1) + 1)
            dark = near[profile[near] < half]
            kept = dark[_run(dark, step)]
            best = (contrast, _members(kept, profile.size)[steps])
    if best is None:
        return None
    line = np.zeros(section.shape, bool)
    line[ap[best[1]], si[best[1]]] = True
    return line


def _central(along: NDArray, steps: NDArray[np.int_]) -> NDArray[np.bool_]:
    """Whether each pixel lies in the middle :data:`CENTRAL_FRACTION` of its step's extent."""
    n = int(steps.max()) + 1
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(low, steps, along)
    np.maximum.at(high, steps, along)
    empty = ~np.isfinite(low)  # steps no pixel falls in (never looked up)
    low[empty], high[empty] = 0.0, 0.0
    margin = (1 - CENTRAL_FRACTION) / 2 * (high - low)
    return (along >= (low + margin)[steps]) & (along <= (high - margin)[steps])


def _step_medians(values: NDArray, steps: NDArray[np.int_], n: int) -> NDArray[np.float64]:
    """The median of ``values`` per step (NaN under :data:`MIN_STEP_PIXELS` pixels).

    >>> _step_medians(np.array([1.0, 5.0, 3.0, 7.0]), np.array([0, 0, 0, 1]), 3).tolist()
    [3.0, nan, nan]
    """
    medians = region_medians(steps + 1, values, n)[1:]  # regions 1..n: steps 0..n-1
    medians[np.bincount(steps, minlength=n)[:n] < MIN_STEP_PIXELS] = np.nan
    return medians


def _valleys(
    profile: NDArray[np.float64],
    values: NDArray[np.float64],
    steps: NDArray[np.int_],
    central: NDArray[np.bool_],
    gap: int,
    side: int,
    body_height_mm: float,
) -> list[tuple[int, float, float, float]]:
    """Steps of ``profile`` no brighter than their neighbours within the height window.

    Returns ``(step, level, spread, contrast)`` per step: the lower of the marrow's medians
    on both sides, the pooled robust spread of the central pixels there and ``level``
    minus the step's median. A step without :data:`MIN_SIDE_STEPS` steps of marrow read on
    each side is left out.
    """
    found = []
    central_values, central_steps = values[central], steps[central]
    depth = (np.arange(profile.size) + 0.5) * BIN_MM
    window = (depth >= HEIGHT_RANGE[0] * body_height_mm) & (
        depth <= HEIGHT_RANGE[1] * body_height_mm
    )
    for step in np.flatnonzero(window[1:-1]) + 1:
        neighbours = profile[[step - 1, step + 1]]
        neighbours = neighbours[np.isfinite(neighbours)]  # a step of no pixels is no brighter
        if not np.isfinite(profile[step]) or (neighbours.size and profile[step] > neighbours.min()):
            continue
        above = np.arange(max(step - gap - side, 0), max(step - gap, 0))
        below = np.arange(step + gap + 1, min(step + gap + 1 + side, profile.size))
        sides = [s[np.isfinite(profile[s])] for s in (above, below)]
        if min(s.size for s in sides) < MIN_SIDE_STEPS:
            continue
        levels = [float(np.median(profile[s])) for s in sides]
        deviations = np.concatenate(
            [
                central_values[_members(s, profile.size)[central_steps]] - level
                for s, level in zip(sides, levels, strict=True)
            ]
        )
        spread = MAD_TO_SD * float(np.median(np.abs(deviations)))
        level = min(levels)
        found.append((int(step), level, spread, level - float(profile[step])))
    return found


def _members(indices: NDArray[np.int_], n: int) -> NDArray[np.bool_]:
    """A lookup of length ``n``, True at ``indices`` (``lookup[steps]`` is
    ``np.isin(steps, indices)`` without sorting every pixel's step).

    >>> _members(np.array([1, 3]), 5).tolist()
    [False, True, False, True, False]
    """
    lookup = np.zeros(n, bool)
    lookup[indices] = True
    return lookup


def _run(indices: NDArray[np.int_], step: int) -> NDArray[np.bool_]:
    """Which of the sorted ``indices`` form the unbroken run holding ``step``.

    >>> _run(np.array([3, 5, 6, 7]), 6).tolist()
    [False, True, True, True]
    """
    position = int(np.searchsorted(indices, step))
    gaps = np.flatnonzero(np.diff(indices) > 1)
    first = 0 if not (gaps < position).any() else int(gaps[gaps < position].max()) + 1
    later = gaps[gaps >= position]
    last = int(later.min()) if later.size else indices.size - 1
    index = np.arange(indices.size)
    return (index >= first) & (index <= last)
