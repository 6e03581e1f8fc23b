"""The field of view both visits imaged: the edema compared is the edema inside it.

Two scans of one spine rarely cover the same slab: a sagittal slab placed a few millimetres
further left at the follow-up ends inside a body the baseline showed whole, and the edema
beyond its last slice is not seen. Counted as it is, that part of a lesion would be a
change. So each visit's edema is compared only where the other visit imaged too: voxels
whose centre lies inside the other visit's field of view (:func:`.resample.coverage_mask`,
which reaches half a voxel beyond the outermost voxel centres), placed through the
registration, body by body where a body has its own transform (:mod:`.register`).

Only the volumes of ``change.csv`` are restricted (the edema voxel by voxel; an endplate's
Modic volume, which its analysis measured, in the proportion of its half's Modic voxels
inside, :mod:`.change`); lesions, Modic types and each visit's own outputs are as the
analysis found them, and the report gives each visit's edema outside the common field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.followup.warp import box_grid
from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.resample import coverage_mask
from bmetoolkit.volume import Grid, Volume

__all__ = ["edema_outside_ml", "seen_by_both"]


def seen_by_both(
    baseline_bodies: Volume,
    followup_bodies: Volume,
    transform: NDArray[np.float64],
    pairs: Mapping[int, int],
    transforms: Mapping[int, NDArray[np.float64]],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Each visit's voxels inside the other visit's field of view.

    Parameters
    ----------
    baseline_bodies, followup_bodies : Volume
        The visits' body (or bone) labels, each on its own grid.
    transform : ndarray
        The whole registration (baseline RAS -> follow-up RAS).
    pairs : dict of int to int
        Baseline body id -> follow-up body id.
    transforms : dict of int to ndarray
        Baseline body id -> that body's transform; its voxels (and those of its paired
        follow-up body) are placed with it, every other voxel with ``transform``.

    Returns
    -------
    tuple of ndarray of bool
        On the baseline grid, the voxels inside the follow-up's field of view; on the
        follow-up grid, those inside the baseline's.

    Examples
    --------
    A follow-up slab one voxel narrower on the left loses the baseline's first slice:

    >>> body = np.ones((4, 3, 3), np.uint8)
    >>> base = Volume(body, np.eye(4), kind="label")
    >>> shifted = np.eye(4)
    >>> shifted[0, 3] = 1.0
    >>> follow = Volume(body[1:], shifted, kind="label")
    >>> in_b, in_f = seen_by_both(base, follow, np.eye(4), {1: 1}, {1: np.eye(4)})
    >>> in_b[:, 0, 0].tolist(), in_f[:, 0, 0].tolist()
    ([False, True, True, True], [True, True, True])
    """
    inverse = {body: np.linalg.inv(t) for body, t in transforms.items()}
    in_baseline = _inside(
        baseline_bodies, followup_bodies.grid, np.linalg.inv(transform),
        {b: transforms[b] for b in pairs if b in transforms},
    )  # fmt: skip
    in_followup = _inside(
        followup_bodies, baseline_bodies.grid, transform,
        {f: inverse[b] for b, f in pairs.items() if b in inverse},
    )  # fmt: skip
    return in_baseline, in_followup


def _inside(
    bodies: Volume,
    other: Grid,
    other_here: NDArray[np.float64],
    own: Mapping[int, NDArray[np.float64]],
) -> NDArray[np.bool_]:
    """Voxels of ``bodies``' grid inside ``other``'s field of view.

    ``other_here`` maps the other visit's world into this one's; ``own`` gives, per body id
    of this grid, the transform of this world into the other's for that body (baseline ->
    follow-up for the baseline, its inverse for the follow-up).
    """
    grid = bodies.grid
    inside = coverage_mask(Grid(other.shape, other_here @ other.affine), grid)
    labels = np.asarray(bodies.data).astype(np.int32, copy=False)
    boxes = ndimage.find_objects(labels)
    for body, into_other in own.items():
        if body < 1 or body > len(boxes) or boxes[body - 1] is None:
            continue
        box = boxes[body - 1]
        placed = Grid(other.shape, np.linalg.inv(into_other) @ other.affine)
        mine = labels[box] == body
        inside[box] = np.where(mine, coverage_mask(placed, box_grid(grid, box)), inside[box])
    return inside


def edema_outside_ml(visit: Any) -> float | None:
    """The visit's edema outside the other visit's field of view (mL; not compared), or
    None when the visit's edema is compared whole (``seen_by_other`` not set).

    Measured as the compared volumes are: voxels counted, or, where the visit's edema is
    weighted by partial volume (``bme_share``), the shares summed, so that what is compared
    and what is left out add up to the visit's whole volume.
    """
    if visit.seen_by_other is None:
        return None
    bme = visit.maps["bme_mask"]
    unseen = ~visit.seen_by_other
    if visit.bme_share is None:
        hidden = float(np.count_nonzero((np.asarray(bme.data) > 0) & unseen))
    else:
        hidden = float(visit.bme_share[unseen].sum(dtype=np.float64))
    return round(hidden * bme.grid.voxel_volume_mm3 / MM3_PER_ML, 4)
