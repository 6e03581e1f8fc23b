"""A visit given as an ``analyze`` output folder, analysed again from its inputs.

An output folder holds the analysis' maps and report, not the stages the follow-up's joint
decisions need (the spine's ratio images before ``decision_images.npz``, a bone-mask
visit's partial-volume band and its edema before the band's rules). Those are rebuilt by
analysing the visit again from what its report names: the T1 and fluid-sensitive images
(and a T2 beside a STIR), the labels it was analysed with (the spine: its label image, else
the saved vertebral bodies; bone masks: the saved bone map with the report's bone names)
and the report's parameters. The caller uses the result only when it gives exactly the
folder's own edema mask (:func:`same_edema`): a visit whose inputs changed since, or that
another version analysed, is decided alone.

A reference (normal-marrow) mask is not named by the report: a visit analysed with one
cannot be analysed again the same way (:func:`analysis_of` refuses it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bmetoolkit.analysis import analyze
from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.followup.visit import Visit
from bmetoolkit.params import Parameters
from bmetoolkit.result import AnalysisResult

__all__ = ["analysis_of", "same_edema"]


def analysis_of(visit: Visit) -> tuple[AnalysisResult | None, str]:
    """The visit's analysis: the one in hand, else run again from its report's inputs.

    Returns
    -------
    result : AnalysisResult or None
        None when the visit cannot be analysed again.
    why : str
        Why not ('' with a result), to end a note ("... and {why}").
    """
    if visit.result is not None:
        return visit.result, ""
    if visit.t1 is None or visit.fluid is None:
        return None, "its T1 or fluid-sensitive image was not found"
    report = visit.report
    if report.get("reference", {}).get("source") == "mask":
        return None, "it was analysed with a reference mask, which its report does not name"
    fluid = report.get("inputs", {}).get("fluid_image") or "stir"
    images: dict[str, Any] = {"t1": visit.t1, fluid: visit.fluid} | dict(visit.inputs)
    labels = images.pop("labels", None)
    if visit.anatomy == "bones":
        # the bone map saved is the mask as analysed (on the T1 grid, absent bones left out)
        where: dict[str, Any] = {"marrow": visit.maps["vertebrae"],
                                 "marrow_labels": visit.body_names}  # fmt: skip
    else:
        where = {"vertebrae": labels if labels is not None else visit.maps["vertebrae"]}
    try:
        params = Parameters.from_dict(dict(report.get("parameters", {})))
        result = analyze(
            images.pop("t1"), images.pop("t2", None), images.pop("stir", None),
            params=params, verify_roles=False, **where,
        )  # fmt: skip
    except (BmetoolkitError, ValueError, TypeError) as exc:
        return None, f"analysing it again failed ({exc})"
    return result, ""


def same_edema(visit: Visit, result: AnalysisResult) -> bool:
    """Whether ``result``'s edema mask is exactly the visit's own (same grid, same voxels)."""
    own = np.asarray(visit.maps["bme_mask"].data) > 0
    again = np.asarray(result.bme_mask.data) > 0
    return own.shape == again.shape and bool(np.array_equal(own, again))
