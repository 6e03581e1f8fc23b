"""How well two visits align, and the refusal when they are not the same anatomy.

Measured after registration (:mod:`bmetoolkit.followup.register`), on the baseline grid:

- the **mutual information** of the two T1 images (whole-spine fit);
- the **overlap** (Dice) of the two visits' bone masks, over the bodies both show and inside
  both fields of view, overall and per body;
- the **shape agreement** of the paired bodies: after each body is aligned on its own, the
  relative difference of their volumes within the common field (another subject's bodies
  differ in size and shape; one subject's do not, whatever the position or grid).

A comparison is refused (:class:`~bmetoolkit.errors.NoOverlapError`) when no body lies in
both fields of view, and (:class:`~bmetoolkit.errors.VisitMismatchError`) when the bone
masks overlap less than :data:`MIN_BONE_DICE` or the bodies disagree in shape more than
:data:`MAX_SHAPE_DIFFERENCE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import NoOverlapError, VisitMismatchError

__all__ = [
    "MAX_SHAPE_DIFFERENCE",
    "MIN_BONE_DICE",
    "AlignmentQuality",
    "alignment_quality",
    "check_alignment",
]

#: Least Dice of the two visits' bone masks for a comparison.
MIN_BONE_DICE = 0.7
#: Largest median relative difference of the paired bodies' volumes (in the common field).
MAX_SHAPE_DIFFERENCE = 0.15


@dataclass
class AlignmentQuality:
    """Registration quality (see the module description).

    Attributes
    ----------
    mutual_information : float
    bone_dice : float
        Dice of the bone masks over the paired bodies, inside both fields of view.
    body_dice : dict of int to float
        Per paired baseline body.
    shape_difference : float
        Median over paired bodies of |volume difference| / mean volume (common field).
    bodies_baseline, bodies_followup, bodies_compared : int
    common_field : float
        Fraction of the baseline bodies' voxels inside the follow-up's field of view.
    """

    mutual_information: float
    bone_dice: float
    body_dice: dict[int, float] = field(default_factory=dict)
    shape_difference: float = 0.0
    bodies_baseline: int = 0
    bodies_followup: int = 0
    bodies_compared: int = 0
    common_field: float = 0.0

    def to_dict(self, names: Mapping[int, str] | None = None) -> dict[str, Any]:
        """JSON-ready summary."""
        names = names or {}
        return {
            "mutual_information": round(self.mutual_information, 4),
            "bone_dice": round(self.bone_dice, 4),
            "body_dice": {names.get(b, str(b)): round(v, 4) for b, v in self.body_dice.items()},
            "shape_difference": round(self.shape_difference, 4),
            "bodies_baseline": self.bodies_baseline,
            "bodies_followup": self.bodies_followup,
            "bodies_compared": self.bodies_compared,
            "common_field": round(self.common_field, 4),
        }


def _dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 0.0


def alignment_quality(
    baseline_bodies: NDArray[np.integer],
    warped_bodies: NDArray[np.integer],
    common: NDArray[np.bool_],
    pairs: Mapping[int, int],
    followup_ids: int,
    mutual_information: float,
) -> AlignmentQuality:
    """Measure the alignment (see the module description).

    Parameters
    ----------
    baseline_bodies : ndarray
        Baseline body labels.
    warped_bodies : ndarray
        Follow-up bodies on the baseline grid, carrying the paired baseline ids.
    common : ndarray of bool
        Baseline voxels inside the follow-up's field of view.
    pairs : dict of int to int
        Paired bodies (baseline id -> follow-up id).
    followup_ids : int
        Number of follow-up bodies.
    mutual_information : float
    """
    ids = list(pairs)
    base = np.where(common, baseline_bodies, 0)
    follow = np.where(common, warped_bodies, 0)
    inside = np.isin(base, ids)
    all_bodies = int((baseline_bodies > 0).sum())
    per_body, differences = {}, []
    for body in ids:
        mine_b, mine_f = base == body, follow == body
        per_body[body] = _dice(mine_b, mine_f)
        size_b, size_f = int(mine_b.sum()), int(mine_f.sum())
        if size_b + size_f:
            differences.append(abs(size_b - size_f) / ((size_b + size_f) / 2))
    return AlignmentQuality(
        mutual_information=mutual_information,
        bone_dice=_dice(inside, np.isin(follow, ids)),
        body_dice=per_body,
        shape_difference=float(np.median(differences)) if differences else 1.0,
        bodies_baseline=len(np.unique(baseline_bodies[baseline_bodies > 0])),
        bodies_followup=followup_ids,
        bodies_compared=len(ids),
        common_field=float(((baseline_bodies > 0) & common).sum()) / all_bodies
        if all_bodies
        else 0.0,
    )


def check_alignment(quality: AlignmentQuality, paths: list[str]) -> None:
    """Refuse a comparison of visits that do not show the same anatomy.

    Raises
    ------
    NoOverlapError
        No body lies in both visits' fields of view.
    VisitMismatchError
        The bone masks overlap too little, or the bodies differ in shape.
    """
    advice = (
        "check that both visits are of the same subject and body region; the analysis "
        "of each visit is unaffected"
    )
    if quality.bodies_compared == 0 or quality.common_field == 0:
        raise NoOverlapError(
            "no vertebral body (or bone) lies in both visits' fields of view",
            path=paths,
            hint=advice,
        )
    if quality.bone_dice < MIN_BONE_DICE:
        raise VisitMismatchError(
            f"after registration the two visits' bone masks overlap with Dice "
            f"{quality.bone_dice:.2f} (at least {MIN_BONE_DICE} for the same anatomy): they do "
            "not show the same bones",
            path=paths,
            hint=advice,
        )
    if quality.shape_difference > MAX_SHAPE_DIFFERENCE:
        raise VisitMismatchError(
            f"the paired bodies differ in volume by {100 * quality.shape_difference:.0f} % "
            f"(median; one subject's differ by less than {100 * MAX_SHAPE_DIFFERENCE:.0f} %): "
            "these look like two different subjects",
            path=paths,
            hint=advice,
        )
