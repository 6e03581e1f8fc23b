"""How thick the dark bone at the endplates and walls is on this scan, read from the images.

Vertebra masks (SPINEPS, TotalSegmentator, hand-drawn, the phantom's) hold the cortex and the
endplates: bone that is dark on every sequence. The marrow starts one voxel layer and
``cortex_mm`` inside the mask, but real endplates are 0.5-2.5 mm thick, domed, and smeared
over several voxels by partial volume across thick slices; what is left of them in the
"marrow" is dark on T1 *and* on STIR/T2, exactly the pattern of Modic type III.

:func:`shell_depths` measures the shell on the scan itself: over all bodies' marrow voxels,
the median of the brighter of the T1 and fluid ratios (dark bone is dark on both, any
lesion but sclerosis is bright on one) in 0.5 mm bins of depth below the nearer endplate,
and of depth from the walls. Marrow gets brighter with depth, so the bin medians are fitted
by a profile that never gets darker with depth (isotonic regression, each bin weighted by
its voxel count), and the shell ends where that profile reaches ``shell_ratio`` of normal
marrow (interpolated between the bins either side, so the depth moves smoothly with the
images). A small bin that happens to be bright in front of a large
dark one (a thin slab's few voxels at a depth the grid rarely samples) no longer ends the
shell early, so the same voxels under another affine give the same shell. A Modic III band
is a minority of all endplate columns, so it does not move the median; the depths are
capped at ``max_shell_mm``. Within those depths, the analysis leaves out of the marrow the
voxels that look like the shell (dark on both); a lesion bright on either stays.

Examples
--------
>>> import numpy as np
>>> depth = np.repeat(np.arange(0.25, 6, 0.5), 100)  # mm below the endplate
>>> brighter = np.where(depth < 1.5, 0.6, 1.0)  # 1.5 mm of dark bone left in the marrow
>>> shell_from_profile(depth, brighter, shell_ratio=0.8, max_shell_mm=4.0)
1.5
>>> few_bright = (depth < 0.5) & (np.arange(depth.size) % 3 == 0)  # 34 bright voxels
>>> shell_from_profile(depth[~(depth < 0.5) | few_bright],  # not 0.0: the dark bins outweigh
...                    np.where(depth < 0.5, 1.0, brighter)[~(depth < 0.5) | few_bright],
...                    shell_ratio=0.8, max_shell_mm=4.0)
1.46
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.vertebra import BodyGeometry

__all__ = ["BIN_MM", "isotonic_increasing", "shell_depths", "shell_from_profile"]

#: Width of the depth bins (mm).
BIN_MM = 0.5
#: Fewest voxels in a bin for its median to count.
MIN_BIN_VOXELS = 30
#: The endplate profile is read in the central columns: within this fraction of the body's
#: half-extent from its centre along AP and LR.
CENTRAL = 0.6


def shell_from_profile(
    depth_mm: NDArray[np.floating],
    brighter: NDArray[np.floating],
    *,
    shell_ratio: float,
    max_shell_mm: float,
) -> float:
    """Depth (mm) where the profile of the medians of ``brighter`` reaches ``shell_ratio``.

    Parameters
    ----------
    depth_mm : ndarray
        Depth of each voxel (mm) from the surface.
    brighter : ndarray
        The brighter of its T1 and fluid ratios (NaN ignored).
    shell_ratio : float
        Level of the median at which marrow begins.
    max_shell_mm : float
        Largest depth returned.
    """
    keep = np.isfinite(depth_mm) & np.isfinite(brighter)
    bins = np.floor(depth_mm[keep] / BIN_MM).astype(np.int64)
    values = brighter[keep]
    groups = _pooled_bins(bins, values, int(np.ceil(max_shell_mm / BIN_MM)))
    if not groups:
        return float(max_shell_mm)
    starts = [group[0] for group in groups]
    centres = [group[1] for group in groups]
    profile = isotonic_increasing([group[2] for group in groups], [group[3] for group in groups])
    reached = np.flatnonzero(profile >= shell_ratio)
    if not reached.size:
        return float(max_shell_mm)
    first = int(reached[0])
    if first == 0:
        return round(float(starts[0]), 2)
    # Where the profile, read at the bins' centres, crosses the level: a bin median a hair
    # either side of the level moves the depth a hair, not a whole bin (the first-bin rule
    # of before is the crossing halfway between the two centres).
    below, above = profile[first - 1], profile[first]
    share = (shell_ratio - below) / (above - below)
    centre = centres[first - 1] + share * (centres[first] - centres[first - 1])
    return round(float(centre), 2)


def _pooled_bins(
    bins: NDArray[np.int64], values: NDArray[np.floating], n_bins: int
) -> list[tuple[float, float, float, float]]:
    """The first ``n_bins`` depth bins, a bin with fewer than ``MIN_BIN_VOXELS`` voxels
    pooled with the bins after it until the group has that many (a few left at the end
    join the group before them).

    Returns ``(start, centre, median, count)`` per group; its start and centre (mm) are its
    bins' starts and centres weighted by their voxel counts. Pooled rather than dropped: a
    small bin that gains or loses a voxel under another affine (31 against 29 on the
    sample study's DICOM and NIfTI copies) then moves the shell a fraction of a bin, not
    from its own depth to the next full bin's (1.0 against 2.5 mm before).
    """
    inside = (bins >= 0) & (bins < n_bins)
    counts = np.bincount(bins[inside], minlength=n_bins)
    groups: list[list[int]] = []
    pending: list[int] = []
    for b in np.flatnonzero(counts):
        pending.append(int(b))
        if counts[pending].sum() >= MIN_BIN_VOXELS:
            groups.append(pending)
            pending = []
    if pending and groups:
        groups[-1] += pending
    pooled = []
    for group in groups:
        weights = counts[group].astype(np.float64)
        start = float(np.average(np.asarray(group) * BIN_MM, weights=weights))
        median = float(np.median(values[inside & np.isin(bins, group)]))
        pooled.append((start, start + BIN_MM / 2, median, float(weights.sum())))
    return pooled


def isotonic_increasing(values: list[float], weights: list[float]) -> NDArray[np.float64]:
    """The non-decreasing sequence closest to ``values`` in weighted least squares.

    Pool adjacent violators in one pass (Busing 2022, "Monotone regression: a simple and
    fast O(n) PAVA implementation", Algorithm 1, as ``scipy.optimize.isotonic_regression``
    runs it, with the same arithmetic in the same order, so the same numbers to the last
    bit). Here rather than scipy's because importing ``scipy.optimize`` costs a whole run
    0.13 s of CPU for a fit of a few dozen bins. A block's value is the weighted mean of
    its members; equal neighbours are pooled.

    >>> isotonic_increasing([1.0, 3.0, 2.0, 4.0], [1.0, 1.0, 3.0, 1.0]).tolist()
    [1.0, 2.25, 2.25, 4.0]
    """
    x = [float(v) for v in values]
    w = [float(v) for v in weights]
    means: list[float] = []  # the blocks so far: weighted mean, weight, end
    masses: list[float] = []
    ends: list[int] = []
    i = 0
    while i < len(x):
        mean, mass = x[i], w[i]
        if means and means[-1] >= mean:  # a violation: pool with the block before
            total = masses[-1] * means[-1] + mass * mean
            mass += masses.pop()
            means.pop()
            ends.pop()
            mean = total / mass
            while i < len(x) - 1 and mean >= x[i + 1]:  # take in the values after it
                i += 1
                total += w[i] * x[i]
                mass += w[i]
                mean = total / mass
            while means and means[-1] >= mean:  # and the blocks before it
                total += masses[-1] * means.pop()
                mass += masses.pop()
                ends.pop()
                mean = total / mass
        means.append(mean)
        masses.append(mass)
        ends.append(i + 1)
        i += 1
    return np.repeat(np.array(means, np.float64), np.diff([0, *ends]))


def shell_depths(
    bodies: list[BodyGeometry],
    t1_ratio: NDArray[np.floating],
    fluid_ratio: NDArray[np.floating],
    *,
    shell_ratio: float,
    max_shell_mm: float,
) -> dict[str, Any]:
    """Depth of the dark shell below the endplates and inside the walls, for this scan.

    Parameters
    ----------
    bodies : list of BodyGeometry
    t1_ratio, fluid_ratio : ndarray
        Ratio images on the study grid (NaN outside the marrow).
    shell_ratio, max_shell_mm : float
        See :func:`shell_from_profile`.

    Returns
    -------
    dict
        ``endplate_mm`` and ``wall_mm``: marrow starts that deep (mm) below the nearer
        endplate (far edge of the voxel) and beyond the body's outer voxel layer.
    """
    t1, fluid = np.asarray(t1_ratio).ravel(), np.asarray(fluid_ratio).ravel()
    endplate, wall, central, values = [], [], [], []
    for body in bodies:
        index = body.marrow_index
        endplate.append(body.nearest_depth[body.marrow])
        wall.append(body.inside_mm[body.marrow])
        ap = np.abs(body.ap[body.marrow] - body.ap_center_mm)
        lr = np.abs(body.lr[body.marrow])
        lr_half = float(np.abs(body.lr).max()) if body.lr.size else 0.0
        central.append((ap < CENTRAL * body.ap_half_mm) & (lr < CENTRAL * lr_half))
        values.append(np.fmax(t1[index], fluid[index]))
    if not values:
        return {"endplate_mm": 0.0, "wall_mm": 0.0}
    depth, inside, brighter = (np.concatenate(a) for a in (endplate, wall, values))
    options = {"shell_ratio": shell_ratio, "max_shell_mm": max_shell_mm}
    # Each profile away from the other surface, so that one shell does not hide the other:
    # the endplates' in the central columns, the walls' away from the endplates.
    away_from_walls = np.concatenate(central)
    away_from_endplates = depth > max_shell_mm + 2 * BIN_MM
    return {
        "endplate_mm": shell_from_profile(
            depth[away_from_walls], brighter[away_from_walls], **options
        ),
        "wall_mm": shell_from_profile(
            inside[away_from_endplates], brighter[away_from_endplates], **options
        ),
    }
