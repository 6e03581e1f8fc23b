"""Is a lesion found at one visit only also visible, unsegmented, at the other?

A lesion may be found at one visit and missed at the other although the images show it at
both (its contrast sits near a decision level, a rescan tips it over). Before a lesion is
reported **new** or **resolved**, its signal is measured at both visits in the same place
(the lesion's voxels on the baseline grid, each visit's image brought there through the
body's transform): the **contrast** is the median of the image in the lesion over the
median of the body's other marrow. Edema is judged on the fluid-sensitive image (STIR or
T2), a Modic II or III change on the T1. When the other visit shows at least
:data:`PERSISTING_CONTRAST` of the log contrast, in the same direction, the lesion is
**uncertain** (present at both visits, segmented at one), not new or resolved.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.followup.register import Correspondence
from bmetoolkit.followup.warp import box_grid, moved
from bmetoolkit.resample import resample_to
from bmetoolkit.volume import Volume, grown_box, occupied_box

__all__ = ["PERSISTING_CONTRAST", "recheck_one_visit_lesions"]

#: Share of the detecting visit's log contrast the other visit must show.
PERSISTING_CONTRAST = 0.5
#: Margin (voxels) of the box around a body.
_MARGIN = (2, 2, 1)


def _contrast(image: NDArray[np.float64], region: NDArray[np.bool_], marrow: NDArray) -> float:
    inside, normal = image[region], image[marrow]
    inside, normal = inside[np.isfinite(inside)], normal[np.isfinite(normal)]
    if not inside.size or not normal.size or np.median(normal) <= 0:
        return float("nan")
    return float(np.median(inside) / np.median(normal))


def _is_edema(findings: str) -> bool:
    """Whether lesion findings (``"BME"``, ``"Modic II/I"``, joined by ``+``) hold edema.

    >>> _is_edema("Modic III+"), _is_edema("+Modic II/I"), _is_edema("BME")
    (False, True, True)
    """
    for finding in filter(None, findings.split("+")):
        if finding == "BME" or "I" in finding.removeprefix("Modic ").split("/"):
            return True
    return False


def _image_of(visit: Any, fluid: bool) -> Volume | None:
    return visit.fluid if fluid else visit.t1


def recheck_one_visit_lesions(
    rows: list[dict[str, Any]],
    baseline: Any,
    followup: Any,
    warped_lesions: NDArray[np.integer],
    pairing: Correspondence,
) -> None:
    """Measure each new or resolved lesion's contrast at both visits (in place).

    Adds ``contrast_baseline`` and ``contrast_followup`` to those rows and turns the status
    to ``"uncertain"`` when the other visit shows the lesion too (see the module).

    Parameters
    ----------
    rows : list of dict
        ``lesions_matched.csv`` rows.
    baseline, followup : Visit
        With ``t1`` and ``fluid`` images where they could be read.
    warped_lesions : ndarray
        The follow-up's lesion numbers on the baseline grid.
    pairing : Correspondence
        Body ids and transforms by baseline level.
    """
    body_ids, transforms = pairing.ids, pairing.transforms
    lesions_b = np.asarray(baseline.maps["lesion_labels"].data)
    bodies = np.asarray(baseline.maps["vertebrae"].data)
    grid = baseline.maps["vertebrae"].grid
    any_lesion = (lesions_b > 0) | (warped_lesions > 0)
    for row in rows:
        if row["status"] not in ("new", "resolved") or row["level"] not in body_ids:
            continue
        edema = _is_edema(f"{row['finding_baseline']}+{row['finding_followup']}")
        images = (_image_of(baseline, edema), _image_of(followup, edema))
        if images[0] is None or images[1] is None:
            continue
        numbers = row["lesions_baseline"] or row["lesions_followup"]
        source = lesions_b if row["status"] == "resolved" else warped_lesions
        region = np.isin(source, [int(n) for n in str(numbers).split("+")])
        body = bodies == body_ids[row["level"]]
        box = grown_box(occupied_box(body), _MARGIN, bodies.shape)
        marrow = ndimage.binary_erosion(body[box], np.ones((3, 3, 1), bool)) & ~any_lesion[box]
        target = box_grid(grid, box)
        level_transform = transforms[row["level"]]
        values = [
            np.asarray(resample_to(images[0], target, fill_value=np.nan).data, np.float64),
            np.asarray(
                resample_to(moved(images[1], level_transform), target, fill_value=np.nan).data,
                np.float64,
            ),
        ]
        contrasts = [_contrast(v, region[box], marrow) for v in values]
        row["contrast_baseline"], row["contrast_followup"] = (round(c, 3) for c in contrasts)
        seen, other = (contrasts[0], contrasts[1]) if row["status"] == "resolved" else (
            contrasts[1], contrasts[0],
        )  # fmt: skip
        if not (np.isfinite(seen) and np.isfinite(other)) or seen <= 0 or other <= 0:
            continue
        log_seen, log_other = np.log(seen), np.log(other)
        if log_seen * log_other > 0 and abs(log_other) >= PERSISTING_CONTRAST * abs(log_seen):
            row["status"] = "uncertain"
