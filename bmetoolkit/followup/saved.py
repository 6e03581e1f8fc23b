"""A spine visit's decision stage read back from its ``analyze`` output folder.

The joint decision of two visits (:mod:`bmetoolkit.followup.joint`) needs each visit's ratio
images, levels, bodies and parameters. ``analyze`` saves the ratio images in
``decision_images.npz`` (:func:`bmetoolkit.result.save_decision_images`); with the report
and the saved label maps they give back what the decision stage of the analysis saw,
without analysing the visit again. A folder without that file (written by an older
version) is analysed again from its inputs (:mod:`bmetoolkit.followup.joint_visits`).

The :class:`~bmetoolkit.result.AnalysisResult` rebuilt here holds what the edema decision
and its later stages read (grid, bodies, ratio images, wall-layer ratios, levels, checks,
parameters, label maps); its study holds the ratio images on the study grid in place of
the scans (the scans are not needed), and its reference summaries are empty.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bmetoolkit.params import Parameters
from bmetoolkit.result import AnalysisResult, load_decision_images
from bmetoolkit.spine.labels import VertebraLabels
from bmetoolkit.spine.vertebra import body_geometries
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume

__all__ = ["saved_analysis"]


def saved_analysis(visit: Any) -> AnalysisResult | None:
    """The visit's spine analysis rebuilt from its output folder, or None when the folder
    holds no usable ``decision_images.npz`` (missing, another format or grid) or its
    report lacks what the decision needs.

    ``visit``: a :class:`~bmetoolkit.followup.visit.Visit` read from an output folder.
    """
    path = getattr(visit, "decision_images", None)
    bme = visit.maps["bme_mask"]
    if path is None or visit.anatomy != "spine":
        return None
    images = load_decision_images(path, bme.shape)
    report = visit.report
    fluid = report.get("inputs", {}).get("fluid_image")
    if images is None or fluid not in images.ratios or not report.get("decision_levels"):
        return None
    try:
        params = Parameters.from_dict(dict(report.get("parameters", {})))
    except (ValueError, TypeError):
        return None
    labels = report.get("labels", {})
    vertebrae = VertebraLabels(
        visit.maps["vertebrae"],
        {int(k): v for k, v in labels.get("bodies", {}).items()},
        str(labels.get("convention", "")),
        dict(labels.get("provenance", {})),
    )
    affine = bme.affine
    ratios = {
        name: Volume(values, affine, source=f"{name} ratio to normal marrow (saved)")
        for name, values in images.ratios.items()
    }
    study = Study(t1=ratios.get("t1"), **{fluid: ratios[fluid]})  # the grid; no scans needed
    return AnalysisResult(
        study=study,
        vertebrae=vertebrae,
        bodies=body_geometries(vertebrae, cortex_mm=params.cortex_mm),
        marrow=Volume(images.marrow.astype(np.uint8), affine, kind="label", source="marrow"),
        ratios=ratios,
        bme_mask=bme,
        modic_map=visit.maps["modic_map"],
        lesion_labels=visit.maps["lesion_labels"],
        endplate_rows=list(report.get("endplates", [])),
        lesion_rows=[],
        references={},
        marrow_by_body={},
        fluid=fluid,
        parameters=params,
        checks=dict(report.get("checks", {})),
        decision=dict(report["decision_levels"]),
        bme_t1_dark_ml=report.get("bme", {}).get("t1_dark_volume_ml"),
        wall_layer_ratios=images.wall_layer_ratios,
    )
