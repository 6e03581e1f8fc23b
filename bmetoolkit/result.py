"""What an analysis returns, and the files it writes.

Output contract of :meth:`AnalysisResult.save` (all on the study grid, the T1's when there is
a T1, with its affine):

======================== ======================================================================
``bme_mask.nii.gz``      uint8, 1 = bone marrow edema
``modic_map.nii.gz``     uint8, 0 none, 1 Modic type I, 2 type II, 3 type III (spine)
``vertebrae.nii.gz``     the vertebral bodies used (VerSe ids; ``1..n`` when levels are unknown)
``bones.nii.gz``         with bone masks instead of vertebrae: the bones used (the mask's ids)
``lesions.nii.gz``       lesion numbers of ``lesions.csv``
``lesions.csv``          one row per lesion (:data:`bmetoolkit.lesions.LESION_COLUMNS`; with bone
                         masks :data:`bmetoolkit.bones.tables.BONE_LESION_COLUMNS`)
``endplates.csv``        one row per endplate (:data:`bmetoolkit.modic.ENDPLATE_COLUMNS`; spine)
``bones.csv``            one row per bone (:data:`bmetoolkit.bones.tables.BONE_COLUMNS`; bones)
``decision_images.npz``  spine: the ratio images inside the marrow and along the bodies' walls,
                         for deciding two visits together (``bmetoolkit compare``; see
                         :func:`load_decision_images`)
``report.json``          everything above in one document, with parameters, inputs, versions
======================== ======================================================================

With bone masks (``anatomy == "bones"``) there is no spine concept: no Modic map, endplates
or vertebrae; ``bones.nii.gz`` and ``bones.csv`` take their place.

With ``viewer_tables`` (default) each label map (:data:`LABEL_MAPS`) also gets this subject's
3D Slicer colour table (``<map>.ctbl``), ITK-SNAP label description (``<map>_itksnap.txt``)
and BIDS ``<map>_dseg.tsv`` (:mod:`bmetoolkit.report.colortables`): the vertebrae and lesion
tables list this subject's bodies (or bones) and lesions. With ``qc`` a self-contained HTML page
``qc.html`` with the QC figures (:mod:`bmetoolkit.report.qc`, :mod:`bmetoolkit.report.html`).

``bmetoolkit analyze``, ``bmetoolkit batch`` and the Python API write through this one
:meth:`AnalysisResult.save`; a batch only chooses BIDS file names, scrubs identity from the
report and adds its manifest and group tables.

Each file is written under a temporary name and renamed into place; ``report.json`` is
removed first and written last, so a folder with a ``report.json`` is complete.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.concurrency import map_threads
from bmetoolkit.lesions import LESION_COLUMNS
from bmetoolkit.modic import ENDPLATE_COLUMNS, is_finding
from bmetoolkit.params import Parameters
from bmetoolkit.provenance import code_digest
from bmetoolkit.spine.labels import VertebraLabels
from bmetoolkit.spine.vertebra import BodyGeometry
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume

if TYPE_CHECKING:  # the bone modules are imported by the analyses of bones only
    from bmetoolkit.bones.labels import BoneLabels

__all__ = [
    "LABEL_MAPS",
    "OUTPUT_FILES",
    "QC_PAGE",
    "AnalysisResult",
    "BandStage",
    "DecisionImages",
    "load_decision_images",
    "save_decision_images",
    "versions",
]

#: Default file name of each output.
OUTPUT_FILES: dict[str, str] = {
    "bme_mask": "bme_mask.nii.gz",
    "modic_map": "modic_map.nii.gz",
    "vertebrae": "vertebrae.nii.gz",
    "lesion_labels": "lesions.nii.gz",
    "lesions": "lesions.csv",
    "endplates": "endplates.csv",
    "bones": "bones.nii.gz",
    "bone_table": "bones.csv",
    "decision_images": "decision_images.npz",
    "report": "report.json",
}
#: The outputs of each anatomy.
ANATOMY_OUTPUTS: dict[str, tuple[str, ...]] = {
    "spine": (
        "bme_mask",
        "modic_map",
        "vertebrae",
        "lesion_labels",
        "lesions",
        "endplates",
        "decision_images",
    ),
    "bones": ("bme_mask", "bones", "lesion_labels", "lesions", "bone_table"),
}
#: Outputs that are label maps: each gets its colour tables (``viewer_tables``).
LABEL_MAPS = ("bme_mask", "modic_map", "vertebrae", "bones", "lesion_labels")
#: Default file name of the QC page (``save(qc=True)``).
QC_PAGE = "qc.html"
#: Report format version: bumped when a field changes meaning or disappears.
REPORT_VERSION = "1.0"


def versions() -> dict[str, str]:
    """Versions of bmetoolkit, Python and the libraries that shape the results, and the
    digest of bmetoolkit's code (``bmetoolkit_code``, :mod:`bmetoolkit.provenance`): between
    releases the version does not change with the code."""
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:
    """:func:`versions`, looked up once per process: a library already imported gives its
    ``__version__`` (the code that ran), the others their package metadata (read from disk,
    ~2 ms each)."""
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from bmetoolkit import __version__

    found = {
        "bmetoolkit": __version__,
        "bmetoolkit_code": code_digest(),
        "python": platform.python_version(),
    }
    for package, module in _LIBRARIES.items():
        running = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(running, str):
            found[package] = running
            continue
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


#: The libraries whose versions a report names: distribution name, module name.
_LIBRARIES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "nibabel": "nibabel",
    "pydicom": "pydicom",
    "SimpleITK": "SimpleITK",
    "scikit-image": "skimage",
}


@dataclass(eq=False)
class BandStage:
    """The partial-volume band of a bone-mask analysis and what its rules dropped
    (:mod:`bmetoolkit.bones.edges`, :mod:`bmetoolkit.bones.spots`), on the study grid.

    Attributes
    ----------
    band : ndarray of bool
        The band (:func:`bmetoolkit.bones.geometry.partial_volume_band`).
    before : ndarray of bool
        The edema before the band's rules (grown, cut at half maximum, fainter lesions
        joined).
    dropped : ndarray of bool
        What of ``before`` the band's rules (and the size rule after them) left out.
    reach : ndarray of int
        How far (study voxels, per axis) an image's voxel mixes the signal.
    spots : ndarray of bool
        The regions the focal-spot rule left out
        (:func:`bmetoolkit.bones.spots.bone_focal_spots`).
    """

    band: NDArray[np.bool_]
    before: NDArray[np.bool_]
    dropped: NDArray[np.bool_]
    reach: NDArray[np.int64]
    spots: NDArray[np.bool_]


@dataclass(eq=False)
class AnalysisResult:
    """Masks, tables and provenance of one analysis (see :func:`bmetoolkit.analyze`).

    Attributes
    ----------
    study : Study
        The images on the study grid.
    vertebrae : VertebraLabels or None
        The vertebral bodies used (None with bone masks).
    bodies : list of BodyGeometry
        Geometry of each body (empty with bone masks).
    marrow : Volume
        uint8 marrow mask (analysed voxels).
    ratios : dict of str to Volume
        Float32 ratio to normal marrow per contrast (NaN outside the marrow).
    bme_mask, modic_map, lesion_labels : Volume
        The label maps of the output contract (``modic_map`` None with bone masks).
    endplate_rows, lesion_rows : list of dict
        The tables as plain rows (see :attr:`endplates` and :attr:`lesions`).
    references : dict
        Summary of the normal-marrow reference: where it came from (the marrow itself or a
        user's region), how many voxels were normal, the fitted field per contrast.
    marrow_by_body : dict
        Per body: its factor on top of the field per contrast, the fraction of its marrow
        that is normal and the reference confidence (high, moderate, low).
    fluid : str
        ``"stir"`` or ``"t2"``: the image that decided "fluid-bright".
    parameters : Parameters
        The thresholds used.
    notes : tuple of str
        Decisions and warnings a reader should see.
    timings : dict
        Seconds spent on labels and on the analysis.
    checks : dict
        Whether the T1 could carry Modic types (``modic_assessed``: its marrow is brighter
        than the discs, see :mod:`bmetoolkit.spine.t1_contrast`) and the marrow's noise
        (``marrow_log_spread``). When Modic types were not assessed, every endplate's
        ``modic_type`` is ``"not assessed"``.
    decision : dict
        The scan's decision levels (see :class:`~bmetoolkit.decision.DecisionLevels`).
    bme_t1_dark_ml : float, optional
        The part of the edema that is also T1-dark (mL).
    anatomy : str
        ``"spine"`` (vertebral bodies, endplates, Modic types) or ``"bones"`` (any bone
        given as a marrow mask).
    bones : BoneLabels, optional
        With bone masks: the bones used and their names.
    bone_rows : list of dict
        With bone masks: one row per bone (see :attr:`bone_table`).
    wall_layer_ratios : dict of str to ndarray, optional
        In the spine: the ratios to normal marrow in the bodies' outer voxel layer along
        their walls (NaN elsewhere), into which edema grows (``grow_into_wall``; see
        :func:`bmetoolkit.segment.grow_into_walls`). Saved with the ratios in
        ``decision_images.npz``; the follow-up's joint decision grows its edema with them as
        the analysis did.
    band_stage : BandStage, optional
        With bone masks: the partial-volume band and the edema before and after its rules
        (not saved; the follow-up decides the band of two visits together with them,
        :mod:`bmetoolkit.followup.joint_bones`).
    """

    study: Study
    vertebrae: VertebraLabels | None
    bodies: list[BodyGeometry]
    marrow: Volume
    ratios: dict[str, Volume]
    bme_mask: Volume
    modic_map: Volume | None
    lesion_labels: Volume
    endplate_rows: list[dict[str, Any]]
    lesion_rows: list[dict[str, Any]]
    references: dict[str, Any]
    marrow_by_body: dict[str, Any]
    fluid: str
    parameters: Parameters
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)
    bme_t1_dark_ml: float | None = None
    anatomy: str = "spine"
    bones: BoneLabels | None = None
    bone_rows: list[dict[str, Any]] = field(default_factory=list)
    wall_layer_ratios: dict[str, NDArray[np.float32]] | None = field(default=None, repr=False)
    band_stage: BandStage | None = field(default=None, repr=False)

    @property
    def lesion_columns(self) -> tuple[str, ...]:
        """The columns of the lesion table of this anatomy."""
        if self.anatomy == "bones":
            from bmetoolkit.bones.tables import BONE_LESION_COLUMNS

            return BONE_LESION_COLUMNS
        return LESION_COLUMNS

    @property
    def bone_table(self) -> Any:
        """Per-bone table (pandas DataFrame, columns ``BONE_COLUMNS``; bone masks only)."""
        import pandas as pd

        from bmetoolkit.bones.tables import BONE_COLUMNS

        return pd.DataFrame(self.bone_rows, columns=list(BONE_COLUMNS))

    @property
    def endplates(self) -> Any:
        """Per-endplate table (pandas DataFrame, columns ``ENDPLATE_COLUMNS``)."""
        import pandas as pd

        return pd.DataFrame(self.endplate_rows, columns=list(ENDPLATE_COLUMNS))

    @property
    def lesions(self) -> Any:
        """Per-lesion table (pandas DataFrame, columns :attr:`lesion_columns`)."""
        import pandas as pd

        return pd.DataFrame(self.lesion_rows, columns=list(self.lesion_columns))

    @property
    def bme_volume_ml(self) -> float:
        """Total bone marrow edema volume (mL)."""
        voxels = int(np.count_nonzero(self.bme_mask.data))
        return round(voxels * self.study.grid.voxel_volume_mm3 / 1000.0, 4)

    def modic_counts(self) -> dict[str, int]:
        """Number of endplates per reported Modic type (``"none"`` excluded)."""
        counts: dict[str, int] = {}
        for row in self.endplate_rows:
            if is_finding(row["modic_type"]):
                counts[row["modic_type"]] = counts.get(row["modic_type"], 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The report: findings, tables, parameters, inputs, labels, versions, notes."""
        lesions = []
        for row in self.lesion_rows:
            lesions.append(
                {
                    **{k: v for k, v in row.items() if not k.startswith(("centroid_", "bbox_"))},
                    "centroid_ras_mm": [row[f"centroid_{c}_mm"] for c in "xyz"],
                    "bbox_ras_mm": [
                        [row[f"bbox_min_{c}_mm"] for c in "xyz"],
                        [row[f"bbox_max_{c}_mm"] for c in "xyz"],
                    ],
                    "bbox_voxels": row["bbox_voxels"],
                }
            )
        grid = self.study.grid
        edema = [lesion for lesion in lesions if lesion.get("bme_volume_ml", lesion["volume_ml"])]
        anatomy = (
            {"bones": [dict(row) for row in self.bone_rows]}
            if self.anatomy == "bones"
            else {"endplates": [dict(row) for row in self.endplate_rows]}
        )
        return {
            "report_version": REPORT_VERSION,
            "anatomy": self.anatomy,
            "bme": {
                "volume_ml": self.bme_volume_ml,
                "t1_dark_volume_ml": self.bme_t1_dark_ml,
                "t1_criterion": self.decision.get("t1_criterion"),
                "lesions": edema,
            },
            **anatomy,
            "lesions": lesions,
            **({"modic_counts": self.modic_counts()} if self.anatomy == "spine" else {}),
            "parameters": self.parameters.to_dict(),
            "inputs": {
                "images": dict(self.study.inputs),
                "sha256": {role: list(files) for role, files in self.study.checksums.items()},
                "coverage": {k: round(v, 4) for k, v in self.study.coverage.items()},
                "fluid_image": self.fluid,
                "grid": {
                    "shape": list(grid.shape),
                    "spacing_mm": [round(float(s), 4) for s in grid.spacing],
                    "orientation": "".join(grid.axcodes),
                    "affine": np.round(grid.affine, 6).tolist(),
                },
            },
            "labels": self._labels_dict(),
            "reference": {
                **self.references,
                ("marrow_by_bone" if self.anatomy == "bones" else "marrow_by_body"): (
                    self.marrow_by_body
                ),
            },
            "decision_levels": dict(self.decision),
            "checks": dict(self.checks),
            "notes": list(self.notes),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "versions": versions(),
        }

    def _labels_dict(self) -> dict[str, Any]:
        if self.bones is not None:
            return {
                "source": self.bones.source,
                "naming": self.bones.naming,
                "bones": {str(k): v for k, v in self.bones.names.items()},
            }
        return {
            "convention": self.vertebrae.convention,
            "levels_known": self.vertebrae.levels_known,
            "bodies": {str(k): v for k, v in self.vertebrae.levels.items()},
            "provenance": self.vertebrae.provenance,
        }

    def save(
        self,
        out_dir: str | os.PathLike,
        names: Mapping[str, str] | None = None,
        *,
        viewer_tables: bool = True,
        qc: bool = False,
        subject: str | None = None,
        report: Mapping[str, Any] | None = None,
        index_href: str | None = None,
    ) -> dict[str, Path]:
        """Write the output contract into ``out_dir`` (created if needed).

        This is the one writer of an analysis' files: ``bmetoolkit analyze``, ``bmetoolkit
        batch`` (BIDS ``names``, a ``report`` scrubbed of identity, a link to its index) and
        the Python API all call it.

        Parameters
        ----------
        out_dir : path
            Output folder.
        names : dict, optional
            File name per output key (:data:`OUTPUT_FILES` keys, and ``"qc"`` for the QC
            page) to override the defaults, e.g. BIDS names.
        viewer_tables : bool
            Also write this subject's colour tables for 3D Slicer, ITK-SNAP and BIDS beside
            each label map (:func:`bmetoolkit.report.colortables.subject_label_tables`).
        qc : bool
            Also write the QC page (``qc.html`` by default) with figures, and its thumbnail
            ``<page>_thumb.png`` (a fraction of a second).
        subject : str, optional
            Subject name for the QC page (the folder name by default).
        report : dict, optional
            The report to write and show (e.g. one scrubbed of identity); by default
            :meth:`to_dict` with the input files of ``inputs.sha256`` relative to
            ``out_dir``, so a shared report names no folder above the study.
        index_href : str, optional
            Link from the QC page back to an index page (a batch's ``index.html``).

        Returns
        -------
        dict of str to Path
            Where each output was written.
        """
        from bmetoolkit.io import save_nifti, write_json, write_text
        from bmetoolkit.report.tables import table_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        chosen = dict(names or {})
        qc_name = chosen.pop("qc", QC_PAGE)
        wanted = (*ANATOMY_OUTPUTS[self.anatomy], "report")
        files = {key: out / name for key, name in (OUTPUT_FILES | chosen).items() if key in wanted}
        files["report"].unlink(missing_ok=True)
        report = _files_relative(self.to_dict(), out) if report is None else dict(report)
        maps = {
            "bme_mask": self.bme_mask,
            "modic_map": self.modic_map,
            "vertebrae": None if self.vertebrae is None else self.vertebrae.bodies,
            "bones": None if self.bones is None else self.bones.labels,
            "lesion_labels": self.lesion_labels,
        }
        # the maps and the ratio images compressed side by side (threads: zlib releases the GIL)
        writes = [
            functools.partial(save_nifti, volume, files[key])
            for key, volume in maps.items()
            if key in files
        ]
        if "decision_images" in files:
            writes.append(functools.partial(save_decision_images, self, files["decision_images"]))
        map_threads(lambda write: write(), writes)
        tables = {
            "lesions": (self.lesion_rows, self.lesion_columns),
            "endplates": (self.endplate_rows, ENDPLATE_COLUMNS),
        }
        if "bone_table" in files:
            from bmetoolkit.bones.tables import BONE_COLUMNS

            tables["bone_table"] = (self.bone_rows, BONE_COLUMNS)
        for key, (rows, columns) in tables.items():
            if key in files:  # the csv module, without importing pandas
                write_text(files[key], table_text(rows, columns))
        if viewer_tables:
            files |= _write_viewer_tables(files, report)
        if qc:
            files["qc"] = self.write_qc_page(
                out / qc_name,
                subject=subject or out.name,
                report=report,
                index_href=index_href,
            )
        write_json(files["report"], report)
        return files

    def qc_figures(self, subject: str | None = None) -> Any:
        """The QC figures (``report.qc.QCFigures``): the sagittal montage and per-level
        volumes, or with bone masks the acquisition-plane montage and per-bone rows."""
        from bmetoolkit.report.qc import bone_figures, qc_figures

        image_name = self.study.base_role.upper()
        if self.anatomy == "bones":
            return bone_figures(
                self.study.base,
                self.study.fluid,
                self.bme_mask,
                self.bones.labels,
                self.bone_rows,
                image_name=image_name,
                fluid_name=self.fluid.upper(),
                subject=subject,
            )
        names = {body.body_id: body.name for body in self.bodies}
        return qc_figures(
            self.study.base,
            self.study.fluid,
            self.bme_mask,
            self.modic_map,
            self.vertebrae.bodies,
            names,
            fluid_name=self.fluid.upper(),
            image_name=image_name,
            subject=subject,
            show_modic=bool(self.checks.get("modic_assessed", True)),
        )

    def write_qc_page(
        self,
        path: str | os.PathLike,
        *,
        subject: str = "subject",
        report: Mapping[str, Any] | None = None,
        index_href: str | None = None,
    ) -> Path:
        """Write the self-contained QC page (figures, tables, parameters, notes).

        ``report`` is the report to show (e.g. one scrubbed of identity); by default
        :meth:`to_dict`. ``index_href`` links the page back to an index page.
        """
        from bmetoolkit.report.html import write_subject_page

        report = self.to_dict() if report is None else report
        return write_subject_page(
            path,
            report,
            subject=subject,
            figures=self.qc_figures(subject),
            index_href=index_href,
        )

    def summary(self) -> str:
        """A few lines for a terminal: BME volume, Modic endplates or bones, notes."""
        edema = [row for row in self.lesion_rows if row.get("bme_volume_ml", row["volume_ml"])]
        lines = [
            f"bone marrow edema: {self.bme_volume_ml:.2f} mL in {len(edema)} lesion(s)"
            if edema
            else "bone marrow edema: none found"
        ]
        if self.anatomy == "bones":
            for row in self.bone_rows:
                share = "" if row["bme_pct"] is None else f" ({row['bme_pct']:.1f} % of its marrow)"
                lines.append(
                    f"{row['bone']}: {row['bme_ml']:.2f} mL of edema{share}, "
                    f"{row['n_lesions']} lesion(s), marrow {row['marrow_ml']:.1f} mL"
                )
            lines += [f"note: {note}" for note in self.notes]
            return "\n".join(lines)
        changed = [r for r in self.endplate_rows if is_finding(r["modic_type"])]
        assessed = self.checks.get("modic_assessed", True)
        if not assessed:
            where = "without a T1" if self.study.t1 is None else "on this T1"
            lines.append(f"Modic changes: not assessed {where} (see the notes)")
        for row in changed:
            lines.append(
                f"{row['level']} {row['endplate']} endplate: Modic {row['modic_type']}, "
                f"{row['volume_ml']:.2f} mL, height {row['height_pct']:.0f} % "
                f"(grade {row['height_grade']}), area {row['area_pct']:.0f} % "
                f"({row['area_grade']}), {row['location']}"
            )
        if assessed and not changed:
            lines.append("Modic changes: none")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _files_relative(report: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``report`` with the files of ``inputs.sha256`` relative to ``folder`` (POSIX style;
    the file name alone when no relative path exists, e.g. another drive)."""

    def relative(path: str) -> str:
        try:
            return Path(os.path.relpath(path, folder)).as_posix()
        except ValueError:
            return os.path.basename(path)

    inputs = report.get("inputs") or {}
    if not inputs.get("sha256"):
        return report
    checksums = {
        role: [{**entry, "file": relative(entry["file"])} for entry in entries]
        for role, entries in inputs["sha256"].items()
    }
    return report | {"inputs": inputs | {"sha256": checksums}}


def _write_viewer_tables(files: Mapping[str, Path], report: Mapping[str, Any]) -> dict[str, Path]:
    """This subject's colour tables beside each label map: ``<key>_<kind>`` to path."""
    from bmetoolkit.report.colortables import subject_label_tables, table_stem, write_color_tables

    tables = subject_label_tables(report)
    written = {}
    for key in LABEL_MAPS:
        if key not in files:
            continue
        stem = table_stem(files[key].name)
        for kind, path in write_color_tables(tables[key], files[key].parent, stem=stem).items():
            written[f"{key}_{kind}"] = path
    return written


#: Format of ``decision_images.npz`` (bumped when its arrays change meaning).
DECISION_IMAGES_VERSION = 1


@dataclass(frozen=True)
class DecisionImages:
    """The ratio images of a spine analysis, as :func:`load_decision_images` reads them back.

    Attributes
    ----------
    marrow : ndarray of bool
        The analysed marrow (:attr:`AnalysisResult.marrow`).
    ratios : dict of str to ndarray of float32
        Ratio to normal marrow per contrast, NaN outside the marrow
        (:attr:`AnalysisResult.ratios`).
    wall_layer_ratios : dict of str to ndarray of float32, or None
        :attr:`AnalysisResult.wall_layer_ratios` (None when the analysis had none).
    """

    marrow: NDArray[np.bool_]
    ratios: dict[str, NDArray[np.float32]]
    wall_layer_ratios: dict[str, NDArray[np.float32]] | None


def save_decision_images(result: AnalysisResult, path: str | os.PathLike) -> Path:
    """Write a spine analysis' ratio images, exactly, to ``path`` (``.npz``, atomically).

    Kept are the values inside the marrow and in the bodies' wall layer only (a few percent
    of the grid: a small file, written in milliseconds), as flat indices and float32 values.
    The zip members carry a fixed date, so one analysis always writes the same bytes. They
    are deflated at level 1: as small as the default level's (within 1 %) in under half the
    time.
    """
    import io
    import zipfile

    from bmetoolkit.io import atomic_write

    marrow = np.asarray(result.marrow.data) > 0
    shape = marrow.shape
    arrays: dict[str, NDArray[Any]] = {
        "version": np.array([DECISION_IMAGES_VERSION], np.int32),
        "shape": np.array(shape, np.int64),
        "marrow_index": np.flatnonzero(marrow).astype(np.int64),
    }
    for name, ratio in result.ratios.items():
        arrays[f"ratio_{name}"] = np.asarray(ratio.data, np.float32).ravel()[arrays["marrow_index"]]
    layer = result.wall_layer_ratios
    if layer is not None:
        where = np.zeros(shape, bool)
        for values in layer.values():
            where |= np.isfinite(values)
        arrays["wall_index"] = np.flatnonzero(where).astype(np.int64)
        for name, values in layer.items():
            arrays[f"wall_{name}"] = np.asarray(values, np.float32).ravel()[arrays["wall_index"]]
    target = Path(path)
    with (
        atomic_write(target) as temporary,
        zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, buffer.getvalue(), compresslevel=1)
    return target


def load_decision_images(path: str | os.PathLike, shape: tuple[int, ...]) -> DecisionImages | None:
    """Read what :func:`save_decision_images` wrote; None when the file is missing, of
    another format version or not of a grid of ``shape`` (the caller then analyses the
    visit again)."""
    target = Path(path)
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
    except (OSError, ValueError, KeyError):
        return None
    saved_shape = tuple(int(n) for n in arrays.get("shape", ()))
    if arrays.get("version", np.zeros(1)).tolist() != [DECISION_IMAGES_VERSION]:
        return None
    if saved_shape != tuple(shape):
        return None

    def placed(index: NDArray[np.int64], values: NDArray[np.float32]) -> NDArray[np.float32]:
        full = np.full(int(np.prod(shape)), np.nan, np.float32)
        full[index] = values
        return full.reshape(shape)

    marrow = np.zeros(int(np.prod(shape)), bool)
    marrow[arrays["marrow_index"]] = True
    ratios = {
        name.removeprefix("ratio_"): placed(arrays["marrow_index"], values)
        for name, values in arrays.items()
        if name.startswith("ratio_")
    }
    layer = None
    if "wall_index" in arrays:
        layer = {
            name.removeprefix("wall_"): placed(arrays["wall_index"], values)
            for name, values in arrays.items()
            if name.startswith("wall_") and name != "wall_index"
        }
    return DecisionImages(marrow.reshape(shape), ratios, layer)
