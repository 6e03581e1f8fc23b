"""Comparing two visits: registration, quality, change table, lesion matching, outputs.

:func:`compare` returns a :class:`Comparison`; :meth:`Comparison.save` writes

========================== ====================================================================
``change.csv``              one row per region and a ``total`` row (:data:`.change.CHANGE_COLUMNS`)
``lesions_matched.csv``     one row per lesion or matched group (:data:`.match.MATCH_COLUMNS`)
``lesion_status.nii.gz``    on the baseline grid: 1 persisting, 2 new, 3 resolved, 4 uncertain
``followup_bme_on_baseline.nii.gz``  the follow-up's edema on the baseline grid
``pair_qc.html``            QC page: both visits side by side, lesions by status, the tables
                            (:mod:`.page`; ``pair_qc.png`` the images alone)
``report.json``             registration, quality, tables, notes, both visits' provenance,
                            parameters and versions (written last)
========================== ====================================================================

Every file is written under a temporary name and renamed; ``report.json`` is removed first
and written last, so a folder with a ``report.json`` holds a complete comparison.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bmetoolkit.errors import NoOverlapError, VisitMismatchError
from bmetoolkit.followup.change import CHANGE_COLUMNS, change_table
from bmetoolkit.followup.field import edema_outside_ml, seen_by_both
from bmetoolkit.followup.joint_visits import joint_visits
from bmetoolkit.followup.match import LESION_STATUS, MATCH_COLUMNS, match_lesions
from bmetoolkit.followup.page import change_lines, write_pair_page
from bmetoolkit.followup.quality import (
    AlignmentQuality,
    alignment_quality,
    check_alignment,
    shape_difference,
    texture_correlation,
)
from bmetoolkit.followup.register import Correspondence, Registration, register_visits
from bmetoolkit.followup.repeatability import BOUNDARY_SD_FACTOR, RC_FACTOR
from bmetoolkit.followup.signal import recheck_one_visit_lesions
from bmetoolkit.followup.visit import Visit, VisitInput, load_visit
from bmetoolkit.followup.warp import common_field, warp_labels
from bmetoolkit.volume import Volume

__all__ = ["COMPARE_FILES", "Comparison", "compare"]

#: File name of each output of :meth:`Comparison.save`.
COMPARE_FILES = {
    "change": "change.csv",
    "lesions": "lesions_matched.csv",
    "lesion_status": "lesion_status.nii.gz",
    "followup_bme": "followup_bme_on_baseline.nii.gz",
    "qc": "pair_qc.html",
    "report": "report.json",
}
#: Report format version of a comparison.
COMPARE_REPORT_VERSION = "1.0"


@dataclass(eq=False)
class Comparison:
    """Two visits compared (see :func:`compare`).

    Attributes
    ----------
    baseline, followup : Visit
    registration : Registration
    quality : AlignmentQuality
    change_rows : list of dict
        ``change.csv``.
    lesion_rows : list of dict
        ``lesions_matched.csv``.
    warped : dict of str to Volume
        The follow-up's label maps on the baseline grid.
    notes : list of str
    timings : dict of str to float
    joint : dict or None
        The joint decision of both visits' edema (:func:`.joint_visits.joint_visits`):
        per visit its edema alone and together; None when each visit was decided alone.
    """

    baseline: Visit
    followup: Visit
    registration: Registration
    quality: AlignmentQuality
    change_rows: list[dict[str, Any]]
    lesion_rows: list[dict[str, Any]]
    warped: dict[str, Volume]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    joint: dict[str, Any] | None = None

    @property
    def change(self) -> Any:
        """The change table (pandas DataFrame)."""
        return _frame(self.change_rows, CHANGE_COLUMNS)

    @property
    def lesions(self) -> Any:
        """The matched lesions (pandas DataFrame)."""
        return _frame(self.lesion_rows, MATCH_COLUMNS)

    def lesion_status(self) -> Volume:
        """Lesion status on the baseline grid (codes :data:`.match.LESION_STATUS`).

        Baseline lesions carry their status (persisting or resolved); the follow-up's new
        (or uncertain) lesions are painted where they lie, mapped onto the baseline grid.
        """
        base = np.asarray(self.baseline.maps["lesion_labels"].data)
        follow = np.asarray(self.warped["lesion_labels"].data)
        status = np.zeros(base.shape, np.uint8)
        for row in self.lesion_rows:
            code = LESION_STATUS[row["status"]]
            for number in filter(None, str(row["lesions_followup"]).split("+")):
                status[follow == int(number)] = code
            for number in filter(None, str(row["lesions_baseline"]).split("+")):
                status[base == int(number)] = code
        return self.baseline.maps["lesion_labels"].with_data(status, source="lesion status")

    def to_dict(self) -> dict[str, Any]:
        """The report: registration, quality, tables, notes, provenance."""
        from bmetoolkit.result import versions

        names = self.baseline.body_names
        return {
            "report_version": COMPARE_REPORT_VERSION,
            "baseline": _provenance(self.baseline),
            "followup": _provenance(self.followup),
            "registration": self.registration.to_dict(names),
            "quality": self.quality.to_dict(names),
            "repeatability": {
                "method": "RC = 2.77 x K x boundary volume per scan (docs/followup.md)",
                "rc_factor": RC_FACTOR,
                "boundary_sd_factor": BOUNDARY_SD_FACTOR,
            },
            "decision": {
                "joint": self.joint is not None,
                "method": "both visits decided together (docs/followup.md)"
                if self.joint is not None
                else "each visit decided alone",
                **({"visits": self.joint} if self.joint is not None else {}),
            },
            "field": {
                "compared": "where both visits imaged"
                if self.baseline.seen_by_other is not None
                else "each visit's whole field of view",
                "baseline_edema_outside_ml": edema_outside_ml(self.baseline),
                "followup_edema_outside_ml": edema_outside_ml(self.followup),
            },
            "change": self.change_rows,
            "lesions": self.lesion_rows,
            "notes": list(self.notes),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "versions": versions(),
        }

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write the outputs (see the module description) into ``out_dir``."""
        from bmetoolkit.io import save_nifti, write_json, write_text
        from bmetoolkit.report.tables import table_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {key: out / name for key, name in COMPARE_FILES.items()}
        files["report"].unlink(missing_ok=True)
        write_text(files["change"], table_text(self.change_rows, CHANGE_COLUMNS))
        write_text(files["lesions"], table_text(self.lesion_rows, MATCH_COLUMNS))
        save_nifti(self.lesion_status(), files["lesion_status"])
        save_nifti(self.warped["bme_mask"], files["followup_bme"])
        files["qc"], files["qc_png"] = write_pair_page(self, files["qc"])
        write_json(files["report"], self.to_dict())
        return files

    def summary(self) -> str:
        """A few lines for a terminal: total change, real changes, lesions, notes."""
        lines = change_lines(self.change_rows, self.lesion_rows)
        q = self.quality
        lines.append(
            f"registration: bone Dice {q.bone_dice:.2f}, mutual information "
            f"{q.mutual_information:.2f}, {q.bodies_compared} bodies compared"
        )
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns))


def _provenance(visit: Visit) -> dict[str, Any]:
    report = visit.report
    return {
        "source": visit.source,
        "bme_volume_ml": report.get("bme", {}).get("volume_ml"),
        "inputs": report.get("inputs", {}).get("images", {}),
        "grid": report.get("inputs", {}).get("grid", {}),
        "parameters": report.get("parameters", {}),
        "versions": report.get("versions", {}),
        "notes": report.get("notes", []),
    }


def _consistency_notes(baseline: Visit, followup: Visit) -> list[str]:
    """Notes when the visits were analysed by other versions or with other parameters."""
    notes = []
    versions_b = baseline.report.get("versions", {})
    versions_f = followup.report.get("versions", {})
    version_b, version_f = versions_b.get("bmetoolkit"), versions_f.get("bmetoolkit")
    code_b, code_f = versions_b.get("bmetoolkit_code"), versions_f.get("bmetoolkit_code")
    if version_b != version_f:
        notes.append(
            f"the visits were analysed by different bmetoolkit versions ({version_b} and "
            f"{version_f}): part of the change may come from the software; analyse both "
            "again with one version to be sure"
        )
    elif code_b != code_f:  # one version number, other code (an install between releases)
        codes = (
            f"code {code_b} and {code_f}"
            if code_b and code_f
            else "one report does not record its code's digest: an older bmetoolkit wrote it"
        )
        notes.append(
            f"the visits may have been analysed by different bmetoolkit code under one "
            f"version number ({version_b}; {codes}): part of the change may come from the "
            "software; analyse both again with one installation to be sure"
        )
    params_b = baseline.report.get("parameters", {})
    params_f = followup.report.get("parameters", {})
    differing = sorted(
        k for k in set(params_b) | set(params_f) if params_b.get(k) != params_f.get(k)
    )
    if differing:
        notes.append(
            "the visits were analysed with different parameters ("
            + ", ".join(differing)
            + "): part of the change may come from them"
        )
    return notes


def compare(
    baseline: VisitInput,
    followup: VisitInput,
    *,
    out: str | os.PathLike | None = None,
    check_subject: bool = True,
    joint: bool = True,
    partial_volume: bool = False,
    whole_fields: bool = False,
) -> Comparison:
    """Compare two visits of one subject: change per region, lesion by lesion, with its RC.

    Parameters
    ----------
    baseline, followup : path, AnalysisResult or mapping
        Each an ``analyze`` output folder, an :class:`~bmetoolkit.result.AnalysisResult`,
        a DICOM study folder, or the arguments of :func:`bmetoolkit.analyze` as a mapping
        (``{"t1": ..., "stir": ...}``); studies are analysed first.
    out : path, optional
        Write the outputs there (:meth:`Comparison.save`); studies analysed here are saved
        in ``out/baseline`` and ``out/followup``.
    check_subject : bool
        Refuse visits that do not look like one subject (bone overlap; marrow texture or bone
        shape; :mod:`bmetoolkit.followup.quality`). Visits without any common body are always
        refused.
    joint : bool
        Decide both visits' edema together (:mod:`bmetoolkit.followup.joint`): a region
        found at one visit is re-examined at the other, and a focal spot is decided once per
        lesion. False: each visit's own analysis, as ``analyze`` reported it.
    partial_volume : bool
        With ``joint``: the volumes compared weigh each lesion's edge voxels, and the layer
        around it, by their partial volume (:mod:`bmetoolkit.followup.partial_volume`).
        False (the default): voxels are counted, as ``analyze`` counts them; on 140 tuning
        phantom pairs the weighting changes the test-retest RC of the total above 1 mL
        (10.9 -> 10.0 %, the same 55 pairs) and the change error per body (0.143 -> 0.142
        mL median) by less than their noise (docs/log/followup.md, session 20).
    whole_fields : bool
        Compare each visit's whole edema, as its own analysis reports it. False (the
        default): each visit's edema only where the other visit imaged too
        (:mod:`bmetoolkit.followup.field`), so that a slab placed differently is not a
        change; ``change.csv`` notes the edema left out per region and in the total.

    Returns
    -------
    Comparison

    Raises
    ------
    NoOverlapError, VisitMismatchError
        The visits do not show the same anatomy (:mod:`bmetoolkit.followup.quality`).
    """
    clock = time.perf_counter()
    out_path = Path(out) if out is not None else None
    base = load_visit(baseline, label="baseline", save_to=_sub(out_path, "baseline"))
    follow = load_visit(followup, label="follow-up", save_to=_sub(out_path, "followup"))
    timings = {"load_s": time.perf_counter() - clock}
    _check_levels(base, follow)
    clock = time.perf_counter()
    registration = register_visits(base, follow)
    timings["registration_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    bodies_b = base.maps["vertebrae"]
    warped = warp_labels(  # the bodies for the quality; the other maps after the decision
        {"vertebrae": follow.maps["vertebrae"]}, bodies_b, registration.body_pairs,
        registration.body_transforms,
    )  # fmt: skip
    common = common_field(bodies_b.grid, follow.maps["vertebrae"].grid, registration.transform)
    ids_f = np.unique(np.asarray(follow.maps["vertebrae"].data))
    quality = alignment_quality(
        np.asarray(bodies_b.data), np.asarray(warped["vertebrae"].data), common,
        registration.body_pairs, int((ids_f > 0).sum()), registration.metric,
    )  # fmt: skip
    if base.t1 is not None and follow.t1 is not None:
        texture = texture_correlation(
            base.t1, follow.t1, bodies_b, registration.body_pairs, registration.body_transforms,
            (_lesion_map(base), _lesion_map(follow)),
        )  # fmt: skip
        quality.texture_correlation = float(np.median(list(texture.values()))) if texture else None
    quality.shape_difference = shape_difference(
        bodies_b, np.asarray(warped["vertebrae"].data), common,
        (base.centroids(), follow.centroids()), registration.body_pairs,
        chain=base.anatomy == "spine",
    )  # fmt: skip
    alignment_notes = check_alignment(
        quality, [base.source, follow.source], same_subject=check_subject
    )
    timings["quality_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    joint_summary, joint_notes = None, []
    if joint:
        base, follow, joint_summary, joint_notes = joint_visits(base, follow, registration)
        if not partial_volume:
            base, follow = replace(base, bme_share=None), replace(follow, bme_share=None)
    if not whole_fields:
        seen = seen_by_both(
            bodies_b, follow.maps["vertebrae"], registration.transform,
            registration.body_pairs, registration.body_transforms,
        )  # fmt: skip
        base, follow = (
            replace(v, seen_by_other=s) for v, s in zip((base, follow), seen, strict=True)
        )
    warped = warp_labels(
        follow.maps, bodies_b, registration.body_pairs, registration.body_transforms
    )
    timings["joint_decision_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pairing = Correspondence.of(registration, base.body_names, follow.body_names)
    changes = change_table(base, follow, pairing)
    warped_lesions = np.asarray(warped["lesion_labels"].data)
    lesions = match_lesions(base, follow, warped_lesions, pairing)
    recheck_one_visit_lesions(lesions, base, follow, warped_lesions, pairing)
    timings["comparison_s"] = time.perf_counter() - clock
    notes = base.notes + follow.notes + _consistency_notes(base, follow) + alignment_notes
    notes += joint_notes
    if registration.pairing not in ("labels", "names"):
        notes.append(
            "the follow-up's bodies were paired with the baseline's by their order along the "
            f"spine ({registration.pairing}), not by their level names (the images or the "
            "centroids contradicted them); the tables use the baseline's names"
        )
    result = Comparison(
        base, follow, registration, quality, changes, lesions, warped, notes, timings,
        joint_summary,
    )  # fmt: skip
    if out_path is not None:
        result.save(out_path)
    return result


def _lesion_map(visit: Visit) -> Volume | None:
    """The visit's lesions (edema or Modic) as one label map on its grid, or None."""
    maps = [visit.maps.get(name) for name in ("bme_mask", "modic_map")]
    maps = [m for m in maps if m is not None]
    if not maps:
        return None
    found = np.logical_or.reduce([np.asarray(m.data) > 0 for m in maps])
    return maps[0].with_data(found.astype(np.uint8))


def _check_levels(baseline: Visit, followup: Visit) -> None:
    """Refuse visits of two anatomies, or whose bodies carry known levels, none shared."""
    if baseline.anatomy != followup.anatomy:
        raise VisitMismatchError(
            f"the baseline was analysed as {_ANATOMY[baseline.anatomy]} and the follow-up as "
            f"{_ANATOMY[followup.anatomy]}: their regions cannot be compared",
            path=[baseline.source, followup.source],
            hint="analyse both visits the same way (both with --marrow bone masks, or both "
            "as spines)",
        )
    levels = [v.report.get("labels", {}) for v in (baseline, followup)]
    if all(lv.get("levels_known") for lv in levels):
        names = [set(lv.get("bodies", {}).values()) for lv in levels]
        if names[0] and names[1] and not names[0] & names[1]:
            raise NoOverlapError(
                f"no level is in both visits (baseline {', '.join(sorted(names[0]))}; "
                f"follow-up {', '.join(sorted(names[1]))})",
                path=[baseline.source, followup.source],
                hint="check that both visits show the same part of the spine",
            )


_ANATOMY = {"spine": "a spine (vertebral bodies)", "bones": "bones (--marrow bone masks)"}


def _sub(out: Path | None, name: str) -> Path | None:
    return None if out is None else out / name
