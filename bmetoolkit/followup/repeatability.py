"""Measurement error of a volume, from the scan's own geometry: the repeatability coefficient.

A change is real only when it exceeds the **repeatability coefficient** RC = 2.77 x the
within-subject SD of the volume (Bland-Altman; 2.77 = 1.96 x sqrt 2: 95 % of the
differences between two measurements of an unchanged volume lie within it).

Rescanning moves a segmented boundary by part of a voxel (a new grid, new partial volume,
new noise), so the within-subject SD of a volume grows with the number of voxel faces on its
boundary times the voxel volume: its **boundary volume**. A thin lesion on 4 mm slices has a
large one; a compact lesion on fine voxels a small one. So the RC is computed per scan and
per volume::

    RC = 2.77 x K x sqrt((B_baseline^2 + B_followup^2) / 2)

with B the boundary volume (mL) at each visit and K (:data:`BOUNDARY_SD_FACTOR`) the SD of
a volume per mL of boundary volume, measured on test-retest phantom pairs (the same
anatomy rescanned with a new position, grid and noise) on the tuning seeds only, by
``benchmarks/bench_followup.py --calibrate``; the held-out pairs check it.

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
    "RC_FACTOR",
    "boundary_volumes",
    "repeatability_coefficient",
]

#: RC = RC_FACTOR x within-subject SD.
RC_FACTOR = 2.77
#: Within-subject SD of a volume per mL of its boundary volume: 95 % of the test-retest
#: differences of every region, total and lesion lie within the RC it gives. Measured by
#: ``python benchmarks/bench_followup.py --calibrate --pairs 12`` and ``--calibrate --skip
#: 12 --pairs 12`` on the test-retest pairs of tuning seeds 0-23, compared as shipped (both
#: visits decided together): 0.321 from 160 differences, 2026-11-30 (docs/followup.md).
BOUNDARY_SD_FACTOR = 0.32


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


def repeatability_coefficient(
    boundary_baseline_ml: float | NDArray, boundary_followup_ml: float | NDArray
) -> float | NDArray:
    """RC (mL) of a change between two volumes with these boundary volumes.

    >>> round(repeatability_coefficient(1.0, 1.0), 4) == round(RC_FACTOR * BOUNDARY_SD_FACTOR, 4)
    True
    """
    b = np.asarray(boundary_baseline_ml, dtype=np.float64)
    f = np.asarray(boundary_followup_ml, dtype=np.float64)
    rc = RC_FACTOR * BOUNDARY_SD_FACTOR * np.sqrt((b * b + f * f) / 2)
    return float(rc) if rc.ndim == 0 else rc
