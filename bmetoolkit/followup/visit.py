"""One visit of a follow-up comparison: an analysis' outputs, loaded or computed.

A visit is given as an ``analyze`` output folder (``report.json`` and the label maps of
:data:`bmetoolkit.result.OUTPUT_FILES`), an :class:`~bmetoolkit.result.AnalysisResult`, a
DICOM study folder or a mapping of :func:`bmetoolkit.analyze` arguments (``{"t1": ...,
"stir": ..., "vertebrae": ...}``); the last two are analysed first. A batch output folder
(BIDS names) is read with the names of its files (``names``) and the cohort folder its
report's relative input paths start from (``input_root``).

A visit analysed with bone masks (``--marrow``; report ``anatomy`` ``"bones"``) is read the
same way: its bones take the place of the vertebral bodies (``maps["vertebrae"]`` holds the
bone labels, :attr:`Visit.body_names` the bone names), its lesions are placed by their bone
(``level``: the bone's name, no zone), and its Modic map is empty (no endplates).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmetoolkit.errors import BmetoolkitError, CorruptFileError, InputNotFoundError
from bmetoolkit.resample import ResampledVolume
from bmetoolkit.result import OUTPUT_FILES, AnalysisResult
from bmetoolkit.volume import Kind, Volume

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Visit", "VisitInput", "load_visit"]

#: Label maps a visit needs, by output key (spine; bone masks: ``bones`` for ``vertebrae``,
#: no ``modic_map``).
LABEL_MAPS = ("vertebrae", "bme_mask", "modic_map", "lesion_labels")
BONE_LABEL_MAPS = ("bones", "bme_mask", "lesion_labels")


@dataclass(eq=False)
class Visit:
    """What a comparison needs from one visit.

    Attributes
    ----------
    source : str
        The output folder, or what was analysed.
    report : dict
        The analysis report (``report.json``).
    maps : dict of str to Volume
        ``vertebrae`` (the vertebral bodies, or the bones with bone masks), ``bme_mask``,
        ``modic_map`` (empty with bone masks) and ``lesion_labels`` on the visit's T1 grid.
    t1 : Volume or None
        The T1 image (None when it cannot be found: registration then uses the bone masks).
    fluid : Volume or None
        The fluid-sensitive image (STIR, else T2), any grid, when it can be found.
    notes : list of str
        What a reader should know about how the visit was read.
    result : AnalysisResult, optional
        The analysis, when it was run (or given) in this call.
    inputs : dict of str to Volume
        The visit's other analysis inputs found from its report (``"t2"`` beside a STIR,
        ``"labels"``), for analysing it again (:mod:`bmetoolkit.followup.joint_visits`).
    bme_share : ndarray of float32, optional
        Each voxel's share of edema on the T1 grid, the lesions' edges weighted by their
        partial volume (:mod:`bmetoolkit.followup.partial_volume`): set when both visits'
        edema was decided together, and then the volumes compared; None otherwise (voxels
        are counted).
    decision_images : Path, optional
        The output folder's ``decision_images.npz`` (the ratio images the joint decision
        needs, :mod:`bmetoolkit.followup.saved`), when it has one.
    seen_by_other : ndarray of bool, optional
        The voxels of the T1 grid inside the other visit's field of view
        (:mod:`bmetoolkit.followup.field`): the edema volumes compared are those inside
        it; None: all of the visit's edema.
    """

    source: str
    report: dict[str, Any]
    maps: dict[str, Volume]
    t1: Volume | None
    notes: list[str] = field(default_factory=list)
    fluid: Volume | None = None
    result: AnalysisResult | None = None
    inputs: dict[str, Volume] = field(default_factory=dict)
    bme_share: NDArray[np.float32] | None = None
    decision_images: Path | None = None
    seen_by_other: NDArray[np.bool_] | None = None
    _centroids: dict[int, Any] | None = field(default=None, repr=False)

    @property
    def anatomy(self) -> str:
        """``"spine"`` or ``"bones"`` (analysed with bone masks)."""
        return str(self.report.get("anatomy") or "spine")

    @property
    def body_names(self) -> dict[int, str]:
        """Display name (level, or bone) of each body id of ``vertebrae``."""
        labels = self.report.get("labels", {})
        bodies = labels.get("bones" if self.anatomy == "bones" else "bodies", {})
        return {int(k): str(v) for k, v in bodies.items()}

    def centroids(self) -> dict[int, Any]:
        """World centroid (RAS mm) of each body (computed once)."""
        if self._centroids is None:
            from bmetoolkit.followup.register import body_centroids

            self._centroids = body_centroids(self.maps["vertebrae"])
        return self._centroids

    @property
    def lesions(self) -> list[dict[str, Any]]:
        """The lesion rows of the report (``centroid_ras_mm`` as a list); with bone masks
        ``level`` is the lesion's bone and ``zone`` is empty."""
        rows = list(self.report.get("lesions", []))
        if self.anatomy == "bones":
            rows = [dict(row) | {"level": row.get("bone"), "zone": ""} for row in rows]
        return rows

    @property
    def endplates(self) -> list[dict[str, Any]]:
        """The endplate rows of the report."""
        return list(self.report.get("endplates", []))

    def with_outputs(
        self, result: AnalysisResult, report_keys: tuple[str, ...], maps: tuple[str, ...]
    ) -> Visit:
        """This visit with ``result`` and its report tables ``report_keys`` (those it has)
        and its maps ``maps`` (attributes of :class:`~bmetoolkit.result.AnalysisResult`):
        the outputs a joint decision of both visits derived anew."""
        new = result.to_dict()
        report = dict(self.report) | {key: new[key] for key in report_keys if key in new}
        updated = dict(self.maps) | {name: getattr(result, name) for name in maps}
        return replace(self, report=report, maps=updated, result=result)


#: What a visit may be given as.
VisitInput = str | os.PathLike | AnalysisResult | Mapping[str, Any] | Visit


def load_visit(
    visit: VisitInput,
    *,
    label: str,
    save_to: Path | None = None,
    names: Mapping[str, str] | None = None,
    input_root: str | os.PathLike | None = None,
) -> Visit:
    """Read (or analyse) one visit.

    Parameters
    ----------
    visit : path, AnalysisResult, mapping or Visit
        An ``analyze`` output folder, an analysis result, a DICOM study folder, the
        arguments of :func:`bmetoolkit.analyze` as a mapping, or a visit already read.
    label : str
        ``"baseline"`` or ``"follow-up"``, for messages.
    save_to : Path, optional
        Where to save an analysis run here (so that nothing computed is lost).
    names : mapping, optional
        File name of each output (:data:`bmetoolkit.result.OUTPUT_FILES` keys) in an output
        folder written with other names (a batch's BIDS names).
    input_root : path, optional
        The folder relative input paths of the report start from (a batch's cohort folder:
        batch reports name their inputs relative to it).

    Raises
    ------
    InputNotFoundError
        The path does not exist.
    CorruptFileError
        An output folder whose ``report.json`` is missing (an interrupted analysis) or
        unreadable.
    """
    if isinstance(visit, Visit):
        return visit
    if isinstance(visit, AnalysisResult):
        return _from_result(visit, "analysis result", None)  # the caller has it already
    if isinstance(visit, Mapping):
        from bmetoolkit.analysis import analyze

        arguments = dict(visit)
        return _from_result(analyze(**arguments), str(arguments.get("t1")), save_to)
    folder = Path(visit)
    if not folder.exists():
        raise InputNotFoundError(
            f"the {label} does not exist",
            path=folder,
            hint="give an analyze output folder or a study (DICOM folder)",
        )
    files = OUTPUT_FILES | dict(names or {})
    if (folder / files["report"]).is_file():
        return _from_folder(folder, label, files, input_root)
    if (folder / files["bme_mask"]).exists():
        raise CorruptFileError(
            f"the {label} folder holds analysis outputs but no report.json: that analysis "
            "did not finish",
            path=folder,
            hint="run `bmetoolkit analyze` for this visit again",
        )
    from bmetoolkit.analysis import analyze

    return _from_result(analyze(folder), str(folder), save_to)


def _from_result(result: AnalysisResult, source: str, save_to: Path | None) -> Visit:
    report = result.to_dict()
    if save_to is not None:
        result.save(save_to)
        source = str(save_to)
    if result.anatomy == "bones":
        regions, modic = result.bones.labels, _empty_like(result.bme_mask)
    else:
        regions, modic = result.vertebrae.bodies, result.modic_map
    maps = {
        "vertebrae": regions,
        "bme_mask": result.bme_mask,
        "modic_map": modic,
        "lesion_labels": result.lesion_labels,
    }
    fluid = result.study.fluid  # as acquired, as a visit read from a folder has it
    if isinstance(fluid, ResampledVolume):
        fluid = fluid.acquired
    return Visit(source, report, maps, result.study.t1, [], result=result, fluid=fluid)


def _empty_like(volume: Volume) -> Volume:
    """An empty label map on ``volume``'s grid (the Modic map of a bone-mask analysis)."""
    import numpy as np

    return volume.with_data(np.zeros(volume.shape, np.uint8), source="no Modic map (bones)")


def _from_folder(
    folder: Path,
    label: str,
    files: Mapping[str, str],
    input_root: str | os.PathLike | None,
) -> Visit:
    from bmetoolkit.io import load

    report_path = folder / files["report"]
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptFileError(
            f"cannot read the {label}'s report ({exc})",
            path=report_path,
            hint="run `bmetoolkit analyze` for this visit again",
        ) from exc
    bones = report.get("anatomy") == "bones"
    maps = {}
    for key in BONE_LABEL_MAPS if bones else LABEL_MAPS:
        path = folder / files[key]
        if not path.exists():
            raise InputNotFoundError(
                f"the {label} folder has no {path.name}",
                path=folder,
                hint="give a complete `bmetoolkit analyze` output folder",
            )
        maps["vertebrae" if key == "bones" else key] = load(path, kind="label")
    if bones:
        maps["modic_map"] = _empty_like(maps["bme_mask"])
    t1, notes = _image_of(report, "t1", label, input_root, folder)
    if t1 is None:
        notes.append(
            f"the {label} T1 was not found: the visits were registered on their bone masks, "
            "which is less precise than on the images"
        )
    fluid_role = report.get("inputs", {}).get("fluid_image") or "stir"
    fluid, fluid_notes = _image_of(report, fluid_role, label, input_root, folder)
    if fluid is None:
        notes.append(
            f"the {label} fluid-sensitive image was not found: edema found at one visit only "
            "is not rechecked on the images"
        )
    others: dict[str, Volume] = {}
    roles: tuple[tuple[str, Kind], ...] = (
        ("t2", "intensity"),
        ("stir", "intensity"),
        ("labels", "label"),
    )
    for role, kind in roles:
        if role != fluid_role and role in report.get("inputs", {}).get("images", {}):
            volume, _ = _image_of(report, role, label, input_root, folder, kind=kind)
            if volume is not None:
                others[role] = volume
    visit = Visit(str(folder), report, maps, t1, notes + fluid_notes, fluid=fluid)
    visit.inputs = others
    saved = folder / files["decision_images"]
    visit.decision_images = saved if saved.is_file() else None
    return visit


def _image_of(
    report: Mapping[str, Any],
    role: str,
    label: str,
    root: str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
    *,
    kind: Kind = "intensity",
) -> tuple[Volume | None, list[str]]:
    """One of the visit's images from the paths its report names, or None and why.

    Relative paths lie below ``root`` (a batch's cohort folder); without one, the checksummed
    input files are relative to the report's own ``folder`` (as ``analyze`` writes them).
    The checksummed file is read first: it is the file the analysis read, found from the
    report wherever the command runs; the image's path as given to ``analyze`` (relative to
    the folder it ran in) is the fallback, so a compare run from another folder neither
    misses the images nor reads another subject's file of the same relative name.
    """
    from bmetoolkit.io import load

    def placed(path: Any, base: str | os.PathLike | None) -> str:
        text = str(path or "")
        if text and base is not None and not os.path.isabs(text):
            return os.path.normpath(os.path.join(os.fspath(base), text))
        return text

    inputs = report.get("inputs", {})
    source = placed(inputs.get("images", {}).get(role), root)
    files = [
        placed(entry.get("file"), root if root is not None else folder)
        for entry in inputs.get("sha256", {}).get(role, [])
    ]
    if files and files[0] and os.path.isfile(files[0]):
        source = files[0]  # a NIfTI file, or one file of a DICOM series naming the series
    if not source or not os.path.exists(source):
        return None, []
    try:
        return load(source, kind=kind), []
    except BmetoolkitError as exc:
        return None, [f"the {label} {role} image could not be read ({exc})"]
