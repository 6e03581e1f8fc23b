"""Measurement error of a volume, from the scan's own geometry: the repeatability coefficient.

A change is real only when it exceeds the **repeatability coefficient** RC = 2.77 x the
within-subject SD of the volume (Bland-Altman; 2.77 = 1.96 x sqrt 2: 95 % of the
differences between two measurements of an unchanged volume lie within it).

Rescanning moves a segmented boundary by part of a voxel (a new grid, new partial volume,
new noise), face by face, and the faces move largely independently: the variance of a
volume is the sum over its boundary's voxel faces of each face's variance, which scales with
the squared voxel volume. So a volume's **boundary variance** is its number of boundary
faces times the squared voxel volume (mL^2), and::

    RC = 2.77 x K x sqrt((U_baseline + U_followup) / 2)

with U the boundary variance at each visit and K (:data:`BOUNDARY_SD_FACTOR`, the SD of a
face's displacement in voxel volumes) measured on test-retest phantom pairs (the same
anatomy rescanned with a new position, grid and noise) on the tuning seeds only, by
``benchmarks/bench_followup.py --calibrate``; the held-out pairs check it. Boundary variances
add: the variance of a total is the sum of its regions', so a region and the total it belongs
to are judged alike (a model in which the SD grew with the boundary itself, rather than with
its square root, made a total's RC larger than the sum of its regions' changes could reach).
A thin lesion on 4 mm slices has many faces of large voxels, a compact one on fine voxels few
faces of small ones.

Modic volumes get their own factor (:data:`MODIC_SD_FACTOR`): between two scans of one spine
a band can change type (II against II/III) or cross the band rule's depth, which moves whole
regions, not faces.

Why not one figure for all scans: a fixed RC in mL would be too strict for fine 3D
acquisitions and too lenient for thick slices; a percentage fails for small lesions, whose
every voxel is boundary.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.volume import occupied_box

__all__ = [
    "BOUNDARY_SD_FACTOR",
    "MODIC_SD_FACTOR",
    "RC_FACTOR",
    "boundary_variance",
    "boundary_volumes",
    "repeatability_coefficient",
]

#: RC = RC_FACTOR x within-subject SD.
RC_FACTOR = 2.77
#: SD of an edema volume per square root of its boundary variance: 95 % of the test-retest
#: differences of every region, total and lesion of edema lie within the RC it gives.
#: Measured on the test-retest pairs of tuning seeds 0-15, 20-25, 27-33, 40-51, 59, 61, 92
#: and 95 (45 pairs, 241 differences; compared as shipped: both visits decided together,
#: voxels counted): 2.33, 2026-12-01 (``python benchmarks/bench_followup.py --calibrate``,
#: docs/followup.md). The 95th percentile of a heavy tail: 1.68 on 42 of those pairs.
BOUNDARY_SD_FACTOR = 2.3
#: The same for the Modic volume of an endplate, measured on the same pairs (39 differences):
#: 12.9. Between two scans of one spine a band can change type or cross the band rule's depth
#: as a whole, so a Modic volume's RC is far larger than an edema volume's.
MODIC_SD_FACTOR = 12.9


def boundary_volumes(labels: NDArray[np.integer], voxel_mm3: float) -> NDArray[np.float64]:
    """Boundary volume (mL) of every label 1..max: its voxel faces touching another label
    (or background) times the voxel volume; index 0 is unused.

    Examples
    --------
    >>> cube = np.zeros((4, 4, 4), np.uint8)
    >>> cube[1:3, 1:3, 1:3] = 1
    >>> boundary_volumes(cube, 1000.0).tolist()  # 24 faces of 1 mL voxels
    [0.0, 24.0]
    >>> boundary_volumes(np.zeros((2, 2, 2), np.uint8), 1.0).tolist()  # label 1 always there
    [0.0, 0.0]
    """
    data = np.asarray(labels)
    n = max(int(data.max()) + 1 if data.size else 1, 2)
    counts = np.zeros(n, dtype=np.int64)
    box = occupied_box(data > 0)
    data = data[tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)]
    for axis in range(data.ndim):
        padded = np.pad(data, [(1, 1) if a == axis else (0, 0) for a in range(data.ndim)])
        low = np.take(padded, np.arange(0, padded.shape[axis] - 1), axis=axis)
        high = np.take(padded, np.arange(1, padded.shape[axis]), axis=axis)
        differ = low != high
        counts += np.bincount(low[differ].ravel(), minlength=n)[:n]
        counts += np.bincount(high[differ].ravel(), minlength=n)[:n]
    counts[0] = 0
    return counts * voxel_mm3 / MM3_PER_ML


def boundary_variance(labels: NDArray[np.integer], voxel_mm3: float) -> NDArray[np.float64]:
    """Boundary variance (mL^2) of every label 1..max: its voxel faces touching another label
    (or background) times the squared voxel volume; index 0 is unused.

    The variance of the label's volume between two scans is ``BOUNDARY_SD_FACTOR ** 2``
    times it (see the module description).

    Examples
    --------
    >>> cube = np.zeros((4, 4, 4), np.uint8)
    >>> cube[1:3, 1:3, 1:3] = 1
    >>> boundary_variance(cube, 1000.0).tolist()  # 24 faces of 1 mL voxels
    [0.0, 24.0]
    >>> boundary_variance(cube, 500.0).tolist()  # half the voxel: a quarter of the variance
    [0.0, 6.0]
    """
    return boundary_volumes(labels, voxel_mm3) * (voxel_mm3 / MM3_PER_ML)


def repeatability_coefficient(
    variance_baseline: float | NDArray,
    variance_followup: float | NDArray,
    factor: float = BOUNDARY_SD_FACTOR,
) -> float | NDArray:
    """RC (mL) of a change between two volumes with these boundary variances (mL^2).

    ``factor`` is :data:`BOUNDARY_SD_FACTOR` for edema, :data:`MODIC_SD_FACTOR` for Modic
    volumes.

    Examples
    --------
    >>> round(repeatability_coefficient(1.0, 1.0), 4) == round(RC_FACTOR * BOUNDARY_SD_FACTOR, 4)
    True
    >>> whole = repeatability_coefficient(2.0, 2.0)  # a total of two regions of variance 1
    >>> bool(np.isclose(whole**2, 2 * repeatability_coefficient(1.0, 1.0) ** 2))
    True
    """
    b = np.asarray(variance_baseline, dtype=np.float64)
    f = np.asarray(variance_followup, dtype=np.float64)
    rc = RC_FACTOR * factor * np.sqrt((b + f) / 2)
    return float(rc) if rc.ndim == 0 else rc
