"""Two visits of a comparison with their edema decided together (:mod:`.joint`).

The joint decision needs each visit's ratio images: an ``analyze`` output folder holds them
(``decision_images.npz``, read back by :mod:`bmetoolkit.followup.saved`); a folder written
without them (an older version) is analysed again from the inputs its report names (the same
images, labels and parameters: :mod:`bmetoolkit.followup.again`). Only when the rebuilt
decision stage gives exactly the visit's own edema mask, for both visits, is the joint
decision applied (a visit analysed by another version or with inputs that changed since is
decided alone, with a note); the Modic map, endplates and lesion table are then derived from
the joint edema by the analysis' own stage (:func:`bmetoolkit.analysis.edema_findings`).
Bone-mask visits (the any-bone path) have their partial-volume band decided together
(:mod:`bmetoolkit.followup.joint_bones`), the rest of their edema alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.analysis import edema_findings
from bmetoolkit.followup.again import analysis_of as _analysis_of
from bmetoolkit.followup.joint import (
    JointDecision,
    VisitDecision,
    decide_jointly,
    label_movers,
    own_edema,
    visit_decision,
)
from bmetoolkit.followup.joint_bones import joint_bone_visits
from bmetoolkit.followup.saved import saved_analysis
from bmetoolkit.followup.visit import Visit
from bmetoolkit.ratios import t1_dark_ml
from bmetoolkit.result import AnalysisResult
from bmetoolkit.volume import Volume

__all__ = ["downstream", "joint_visits"]


def _decision_of(visit: Visit) -> tuple[VisitDecision | None, NDArray[np.bool_], str]:
    """The visit's decision stage and its own edema, or None and why: from the analysis in
    hand, else from the folder's saved ratio images, else by analysing the visit again; each
    used only when it gives exactly the visit's own edema."""
    own = np.asarray(visit.maps["bme_mask"].data) > 0
    why = ""
    for source in (lambda: (saved_analysis(visit), ""), lambda: _analysis_of(visit)):
        result, why = source()
        if result is None:
            continue
        decision = visit_decision(result)
        if own.shape == decision.candidates.shape and np.array_equal(own_edema(decision), own):
            return decision, own, ""
        why = "analysing it again did not give its own edema (another version or inputs?)"
        if visit.result is not None:
            break  # the analysis in hand is the visit's own: nothing else to try
    return None, own, why or "its ratio images were not saved"


def downstream(visit: VisitDecision, marrow_bme: NDArray[np.bool_]) -> AnalysisResult:
    """The visit's analysis with ``marrow_bme`` as its marrow's edema (after the focal-spot
    decision): the wall layer, Modic map, endplates and lesions derived from it by the
    analysis' own stage (:func:`bmetoolkit.analysis.edema_findings`), on the visit's
    decision images and levels."""
    result, params = visit.result, visit.result.parameters
    grid = result.study.grid
    found = edema_findings(
        marrow_bme,
        decisions=visit.decisions,
        levels=visit.levels,
        bodies=result.bodies,
        body_labels=np.asarray(result.vertebrae.bodies.data),
        ratios={k: np.asarray(r.data) for k, r in result.ratios.items()},
        grid=grid,
        params=params,
        shell_mm=result.checks["dark_shell_mm"]["endplate_mm"],
        modic_assessed=bool(result.checks.get("modic_assessed", True)),
        layer_ratios=result.wall_layer_ratios if params.grow_into_wall else None,
    )
    affine = grid.affine
    return replace(
        result,
        bme_mask=Volume(found.bme.astype(np.uint8), affine, kind="label",
                        source="bme_mask (joint)"),
        modic_map=Volume(found.types, affine, kind="label", source="modic_map (joint)"),
        lesion_labels=Volume(found.lesion_numbers, affine, kind="label",
                             source="lesions (joint)"),
        endplate_rows=found.endplates,
        lesion_rows=found.lesions,
        bme_t1_dark_ml=t1_dark_ml(found.t1_dark, visit.voxel_mm3, has_t1="t1" in visit.decisions),
    )  # fmt: skip


def joint_visits(
    baseline: Visit, followup: Visit, registration: Any
) -> tuple[Visit, Visit, dict[str, Any] | None, list[str]]:
    """Both visits with their edema decided together, or as they were with a note.

    Returns
    -------
    baseline, followup : Visit
        With the joint edema, Modic map, endplates and lesions (each visit's own report
        otherwise unchanged).
    summary : dict or None
        :attr:`.joint.JointDecision.summary`; None when the visits were decided alone.
    notes : list of str
    """
    if baseline.anatomy != "spine" or followup.anatomy != "spine":
        return joint_bone_visits(baseline, followup, registration)
    decisions: list[VisitDecision] = []
    owns: list[NDArray[np.bool_]] = []
    for visit, label in ((baseline, "baseline"), (followup, "follow-up")):
        decision, own, why = _decision_of(visit)
        if decision is not None:
            decisions.append(decision)
            owns.append(own)
            continue
        return baseline, followup, None, [
            f"the visits' edema was decided for each visit alone, not together: the {label}'s "
            f"ratio images are needed and {why}"
        ]  # fmt: skip
    joint: JointDecision = decide_jointly(*decisions, *label_movers(baseline, followup,
                                                                    registration))  # fmt: skip
    visits = [
        visit
        if np.array_equal(bme, own)
        else visit.with_outputs(
            downstream(decision, marrow),
            ("bme", "lesions", "endplates", "modic_counts"),
            ("bme_mask", "modic_map", "lesion_labels"),
        )
        for visit, decision, bme, marrow, own in zip(
            (baseline, followup), decisions, joint.bme, joint.marrow_bme, owns, strict=True
        )
    ]  # a visit whose edema the other did not change keeps its own outputs
    visits = [
        replace(visit, bme_share=share) for visit, share in zip(visits, joint.shares, strict=True)
    ]  # the volumes compared: the lesions' edges weighted by their partial volume
    notes = []
    changed = {
        name: part for name, part in joint.summary.items()
        if part["own_ml"] != part["joint_ml"]
    }  # fmt: skip
    if changed:
        notes.append(
            "edema decided for both visits together (a region found at one visit re-examined "
            "at the other, focal spots decided once per lesion, faint regions without a "
            "fluid seed on the T1 of both visits): "
            + "; ".join(
                f"{name} {part['own_ml']:.2f} mL alone, {part['joint_ml']:.2f} mL together"
                for name, part in changed.items()
            )
        )
    return visits[0], visits[1], joint.summary, notes
