"""BME reported inside the true basivertebral veins of a randomized phantom (benchmarks).

A basivertebral vein (:class:`bmetoolkit.data.phantom.texture.Vein`) is bright on fluid
images and not edema; the phantom keeps it as the truth mask ``"vein"``. These helpers count
what an analysis reports there: the BME volume inside the veins, the lesions (connected
findings) that reach into them with their zone and finding, and the veins the analysis
recognised as such (``checks["basivertebral_veins"]``, when it reports them).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["inside_veins_ml", "vein_line", "vein_row"]

#: Percentile of the worst decile of a figure where lower is better.
WORST_DECILE = 90.0


def vein_row(result: Any, truth: Any, voxel_ml: float) -> dict[str, Any]:
    """The vein figures of one analysed case (JSON-ready).

    Parameters
    ----------
    result : AnalysisResult
        On the grid of ``truth``'s masks.
    truth : PhantomTruth
    voxel_ml : float

    Returns
    -------
    dict
        ``vein_ml`` (true vein volume), ``bme_in_vein_ml``, ``vein_lesions`` (``"finding
        @level zone"`` of each lesion reaching into a vein), ``veins_recognised`` (count the
        analysis reports, None when it does not report them).
    """
    masks = getattr(truth, "masks", {})
    if "vein" not in masks:
        return {}
    vein = np.asarray(masks["vein"].data) > 0
    found = np.asarray(result.bme_mask.data) > 0
    numbers = np.asarray(result.lesion_labels.data)[vein & found]
    hit = {int(n) for n in np.unique(numbers[numbers > 0])}
    lesions = [
        f"{row['finding']}@{row['level']} {row['zone']}"
        for row in result.lesion_rows
        if int(row["lesion"]) in hit
    ]
    recognised = (getattr(result, "checks", None) or {}).get("basivertebral_veins")
    return {
        "vein_ml": round(float(vein.sum()) * voxel_ml, 4),
        "bme_in_vein_ml": round(float((vein & found).sum()) * voxel_ml, 4),
        "vein_lesions": lesions,
        "veins_recognised": None if recognised is None else int(recognised["count"]),
    }


def inside_veins_ml(bme: Any, truth: Any) -> dict[str, float]:
    """BME (a label Volume or array on the grid of ``truth``'s masks) inside the true veins.

    Returns
    -------
    dict
        ``vein_ml`` (true vein volume) and ``bme_in_vein_ml``; empty without a vein truth.

    >>> from types import SimpleNamespace
    >>> from bmetoolkit.volume import Volume
    >>> vein = np.zeros((4, 4, 4), np.uint8)
    >>> vein[1:3, 1:3, 1] = 1
    >>> truth = SimpleNamespace(masks={"vein": Volume(vein, np.diag([2.0, 2.0, 2.0, 1.0]))})
    >>> inside_veins_ml(vein[..., ::-1].copy() | vein, truth)
    {'vein_ml': 0.032, 'bme_in_vein_ml': 0.032}
    """
    masks = getattr(truth, "masks", {})
    if "vein" not in masks:
        return {}
    vein = np.asarray(masks["vein"].data) > 0
    found = np.asarray(getattr(bme, "data", bme)) > 0
    voxel_ml = masks["vein"].grid.voxel_volume_mm3 / 1000
    return {
        "vein_ml": round(float(vein.sum()) * voxel_ml, 4),
        "bme_in_vein_ml": round(float((vein & found).sum()) * voxel_ml, 4),
    }


def vein_line(rows: Sequence[dict[str, Any]]) -> str:
    """One summary line: BME inside the true veins over the cases that have one.

    >>> line = vein_line([
    ...     {"vein_ml": 0.2, "bme_in_vein_ml": 0.05, "vein_lesions": ["BME@L2 central"]},
    ...     {"vein_ml": 0.1, "bme_in_vein_ml": 0.0, "vein_lesions": []}])
    >>> line.split(" (")[0]
    'BME inside true basivertebral veins: 1 of 2 cases with a vein, 0.050 mL in 1 lesion(s)'
    """
    rows = [row for row in rows if row.get("vein_ml")]
    if not rows:
        return "BME inside true basivertebral veins: no case with a vein"
    inside = [row["bme_in_vein_ml"] for row in rows]
    lesions = sum(len(row["vein_lesions"]) for row in rows)
    share = 100 * sum(inside) / sum(row["vein_ml"] for row in rows)
    line = (
        f"BME inside true basivertebral veins: {sum(v > 0 for v in inside)} of {len(rows)} "
        f"cases with a vein, {sum(inside):.3f} mL in {lesions} lesion(s) (per case median "
        f"{statistics.median(inside):.3f} mL, worst decile "
        f"{float(np.percentile(inside, WORST_DECILE)):.3f} mL; {share:.1f} % of the vein volume)"
    )
    recognised = [row["veins_recognised"] for row in rows if row.get("veins_recognised")]
    if recognised:
        line += f"; veins recognised by the analysis: {sum(recognised)}"
    return line
