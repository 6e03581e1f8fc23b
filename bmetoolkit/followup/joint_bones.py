"""The partial-volume band of two bone-mask visits decided together.

In a bone given as a mask, a lesion may not start in the partial-volume band (the
outermost thick slice, where an image's voxels reach outside the bone:
:func:`bmetoolkit.bones.geometry.partial_volume_band`) and is kept there only within an
image voxel's reach of its voxels outside it (:func:`bmetoolkit.bones.edges.band_near_own`);
a region lying wholly in the band is a partial-volume piece, not edema
(:func:`bmetoolkit.bones.spots.partial_volume_pieces`). The band is set by each visit's own
slice placement, so it moves between visits: a lesion lying in one visit's band is cut or
dropped there and kept at the other, although both scans show it (tuning joint phantom
pairs, docs/log/followup.md, session 38: a main cause of the joint pairs' change error).

Here each visit's edema outside its own band (the signal that is the bone's own) is brought
onto the other visit's grid through the comparison's registration, bone by bone
(:func:`bmetoolkit.followup.joint.label_movers`), and counts there as the lesion's own
voxels outside the band (the analysis' ``kept_elsewhere``): the other visit's band voxels
near it are kept, and a region holding some of it is no partial-volume piece. A visit is
analysed again that way only when the mask brought over reaches band edema its own
analysis dropped; it never gains edema its own analysis did not grow (the band rules only
remove), and a lesion one visit does not show stays decided by that visit's images.

Why this should hold on real scans: what one visit saw outside its band is the bone's own
signal; at the other visit the same marrow lies in the band only because the slices were
placed otherwise, and the band voxel there was bright enough to be grown by that visit's
own decision.

The focal-spot rule is decided together the same way (``spots_decided_jointly``), as the
spine's comparison does (:mod:`bmetoolkit.followup.joint`): a region one visit leaves out
as a focal spot (faint, small, away from the joint: a red-marrow island's look) is kept
there when it overlaps, brought onto its grid, a region of the other visit's edema that
shows the same finding (each median log fluid ratio at least half the other's); so such a
region is a spot only when it is one at both visits. A lesion that shrank under the rule's
size at the follow-up is then not reported resolved while it is still seen (tuning joint
pairs, session 38: rows 5 and 27); a lesion that faded to under half its contrast, or
faint marrow where a lesion resolved, is decided alone (session 46: pair 26).

A visit given as an output folder (its band and its edema before the band's rules are not
saved) is analysed again from the inputs its report names (:mod:`bmetoolkit.followup.again`)
and used only when that gives exactly the folder's own edema mask. Decided alone, with a
note: a folder whose images are not found or whose analysis again gives another edema
(inputs changed since, another version), visits analysed with a reference (normal-marrow)
mask, and visits analysed with ``band_decided_jointly`` off.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.bones.analysis import analyze_bones
from bmetoolkit.bones.edges import within_reach
from bmetoolkit.followup.again import analysis_of, same_edema
from bmetoolkit.followup.joint import label_movers, region_contrasts, same_finding
from bmetoolkit.followup.visit import Visit
from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.result import AnalysisResult

__all__ = ["ALONE_NOTE", "joint_bone_visits"]

#: The note of bone-mask visits decided alone by choice (``band_decided_jointly`` off).
ALONE_NOTE = (
    "bone-mask visits are decided alone (the joint decision of both visits is for the spine)"
)


def _band_jointly(visit: Visit) -> bool:
    """Whether the visit was analysed with ``band_decided_jointly`` on."""
    if visit.result is not None:
        return visit.result.parameters.band_decided_jointly
    return bool(visit.report.get("parameters", {}).get("band_decided_jointly", True))


def _analysis(visit: Visit, label: str) -> tuple[AnalysisResult | None, str]:
    """The visit's analysis with its band stage, or None and why its band cannot be decided
    with the other visit's: the analysis in hand, else (an output folder) the visit analysed
    again from its report's inputs when that gives exactly its own edema."""
    result, why = visit.result, ""
    references = visit.report.get("reference", {}) if result is None else result.references
    if references.get("source") == "mask":
        return None, (
            f"the {label}'s normal marrow was a reference mask (analysing it again with "
            "the other visit's edema would need that mask)"
        )
    if result is None:
        result, why = analysis_of(visit)
        if result is not None and not same_edema(visit, result):
            result = None
            why = (
                "analysing it again from the inputs its report names did not give its own "
                "edema (inputs changed since, or another version)"
            )
    if result is None or result.band_stage is None or result.bones is None:
        if visit.result is not None:
            return None, f"the {label}'s analysis has no partial-volume band stage"
        return None, (
            f"the {label} was given as an output folder (its partial-volume band and the "
            f"edema before the band's rules are not saved) and {why or 'it has no band'}"
        )
    return result, ""


def _ml(mask: NDArray[np.bool_], result: AnalysisResult) -> float:
    """The volume of ``mask`` (mL, 4 decimals) on ``result``'s study grid."""
    voxel = float(result.study.grid.voxel_volume_mm3)
    return round(float(np.count_nonzero(mask)) * voxel / MM3_PER_ML, 4)


def _spots_seen_again(
    result: AnalysisResult,
    spots: NDArray[np.bool_],
    other: AnalysisResult,
    other_edema: NDArray[np.bool_],
    mover: Any,
) -> NDArray[np.bool_] | None:
    """The regions ``result``'s focal-spot rule left out that show the other visit's
    finding: each overlaps, through the registration (``mover``: the other visit's label
    maps onto this visit's grid), a region of the other visit's edema whose median log
    fluid ratio it matches (:func:`~bmetoolkit.followup.joint.same_finding`, as the spine's
    joint decision: a lesion that faded to under half its contrast, or an island where a
    lesion resolved, is decided alone). None when there are no spots."""
    if not spots.any() or not other_edema.any():
        return None
    labels, count = ndimage.label(spots)
    contrasts = region_contrasts(labels, count, np.asarray(result.ratios[result.fluid].data))
    other_labels, other_count = ndimage.label(other_edema)
    other_fluid = np.asarray(other.ratios[other.fluid].data)
    other_contrasts = region_contrasts(other_labels, other_count, other_fluid)
    brought = np.asarray(mover(other_labels.astype(np.int32)))
    seen = np.zeros(spots.shape, bool)
    for number, part in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[part] == number
        over = np.unique(brought[part][region])
        over = over[over > 0]
        if over.size and same_finding(contrasts[number], float(other_contrasts[over].max())):
            seen[part] |= region
    return seen


def joint_bone_visits(
    baseline: Visit, followup: Visit, registration: Any
) -> tuple[Visit, Visit, dict[str, Any] | None, list[str]]:
    """Both bone-mask visits with their partial-volume band decided together (see the
    module description), or as they were with a note.

    Returns
    -------
    baseline, followup : Visit
        A visit analysed again carries that analysis' edema, lesions and bone table.
    summary : dict or None
        Per visit: its own edema (mL), the edema together (mL), the mask brought from the
        other visit (mL) and whether it was analysed again; None when decided alone.
    notes : list of str
    """
    visits = (baseline, followup)
    labels = ("baseline", "follow-up")
    if not all(_band_jointly(v) for v in visits):
        return baseline, followup, None, [ALONE_NOTE]
    results: list[AnalysisResult] = []
    for visit, label in zip(visits, labels, strict=True):
        result, why = _analysis(visit, label)
        if result is None:
            return baseline, followup, None, [
                f"the partial-volume band of each bone-mask visit was decided alone, not "
                f"together: {why}"
            ]  # fmt: skip
        results.append(result)
    stages = [r.band_stage for r in results]
    own = [np.asarray(r.bme_mask.data) > 0 for r in results]
    movers = label_movers(baseline, followup, registration)  # to follow-up, to baseline
    outside = [(own[v] & ~stages[v].band).astype(np.uint8) for v in (0, 1)]
    # each visit's edema outside its band, on the other visit's grid (0 outside paired bones)
    brought = [np.asarray(movers[1 - v](outside[1 - v])) > 0 for v in (0, 1)]
    # each visit's focal spots showing the other visit's finding (a spot only at both)
    seen: list[NDArray[np.bool_] | None] = [None, None]
    if all(r.parameters.spots_decided_jointly for r in results):
        seen = [
            _spots_seen_again(
                results[v], stages[v].spots, results[1 - v], own[1 - v], movers[1 - v]
            )
            for v in (0, 1)
        ]
    joint = list(visits)
    summary: dict[str, dict[str, Any]] = {}
    for v, name in ((0, "baseline"), (1, "followup")):
        stage, result = stages[v], results[v]
        reaches = within_reach(brought[v], stage.reach) & stage.dropped
        spots_seen = seen[v] is not None and bool(seen[v].any())
        together = own[v]
        if reaches.any() or spots_seen:
            again = analyze_bones(
                result.study, result.bones, result.parameters, kept_elsewhere=brought[v],
                seen_elsewhere=seen[v],
            )  # fmt: skip
            together = np.asarray(again.bme_mask.data) > 0
            if not np.array_equal(together, own[v]):
                joint[v] = visits[v].with_outputs(
                    again, ("bme", "lesions", "bones"), ("bme_mask", "lesion_labels")
                )
        summary[name] = {
            "own_ml": _ml(own[v], result),
            "joint_ml": _ml(together, result),
            "brought_ml": _ml(brought[v], result),
            "analysed_again": bool(reaches.any() or spots_seen),
        }
    notes = []
    changed = {n: part for n, part in summary.items() if part["own_ml"] != part["joint_ml"]}
    if changed:
        notes.append(
            "the partial-volume band (the outermost thick slice) and the focal spots decided "
            "for both visits together (band voxels near the other visit's edema outside its "
            "own band kept; a region a focal spot only where it is one at both visits): "
            + "; ".join(
                f"{name} {part['own_ml']:.2f} mL alone, {part['joint_ml']:.2f} mL together"
                for name, part in changed.items()
            )
        )
    return joint[0], joint[1], summary, notes
