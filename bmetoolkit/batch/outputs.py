"""Names and tables of a batch output folder (a BIDS-derivatives dataset).

Layout::

    OUTPUT/dataset_description.json
    OUTPUT/subjects.csv, subjects.tsv       one row per subject (and session)
    OUTPUT/endplates.csv, endplates.tsv     one row per subject x endplate
    OUTPUT/bones.csv, bones.tsv             one row per subject x bone (bone masks)
    OUTPUT/failures.csv                     subject, session, stage, error_type, error
    OUTPUT/sub-<label>/[ses-<label>/]
        sub-<label>[_ses-<label>]_manifest.json
        anat/sub-<label>[_ses-<label>]_desc-bme_dseg.nii.gz (+ _dseg.tsv, .ctbl, _itksnap.txt),
             desc-modic_dseg, desc-vertebrae_dseg, desc-lesions_dseg (same tables),
             desc-lesions_bme.csv, desc-endplates_modic.csv, report.json
             with bone masks: desc-bones_dseg (the bones) and desc-bones_bme.csv (per bone)
             instead of desc-modic_dseg, desc-vertebrae_dseg and desc-endplates_modic.csv

Examples
--------
>>> output_names("sub-01")["modic_map"]
'sub-01_desc-modic_dseg.nii.gz'
>>> unit_parts("01", "2")
('sub-01', 'ses-2')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.bones.tables import BONE_COLUMNS
from bmetoolkit.io import write_json, write_text
from bmetoolkit.report.summary import COUNT_COLUMNS, summarise
from bmetoolkit.report.tables import table_text

__all__ = [
    "BONE_GROUP_COLUMNS",
    "INDEX_PAGE",
    "SUBJECT_COLUMNS",
    "dataset_description",
    "output_names",
    "table_text",
    "unit_parts",
    "write_group_tables",
]

#: Leading columns of ``subjects.csv``; ``modic_I`` ... count the endplates showing each
#: type, alone or mixed, ``modic_mixed`` those of more than one type
#: (:func:`bmetoolkit.report.summary.modic_counts`).
SUBJECT_COLUMNS = (
    "subject",
    "session",
    "status",
    "anatomy",
    "bme_volume_ml",
    "n_lesions",
    "n_bones",
    "n_endplates",
    "n_modic",
    "modic_assessed",
    *(f"modic_{name}" for name in COUNT_COLUMNS),
    "duration_s",
    "output",
    "error_type",
    "error",
)
FAILURE_COLUMNS = ("subject", "session", "stage", "error_type", "error")
#: Columns of ``bones.csv``: one row per subject x bone (:data:`~bmetoolkit.bones.tables.
#: BONE_COLUMNS` after the subject and session).
BONE_GROUP_COLUMNS = ("subject", "session", *BONE_COLUMNS)
#: The batch's QC index page in OUTPUT (``--qc``); each subject page links back to it.
INDEX_PAGE = "index.html"


def unit_parts(subject: str, session: str | None) -> tuple[str, ...]:
    """Folder parts of one subject (and session) below OUTPUT."""
    return (f"sub-{subject}", f"ses-{session}") if session else (f"sub-{subject}",)


def output_names(key: str) -> dict[str, str]:
    """BIDS file name of each analysis output of unit ``key`` (``sub-01_ses-1``)."""
    return {
        "bme_mask": f"{key}_desc-bme_dseg.nii.gz",
        "modic_map": f"{key}_desc-modic_dseg.nii.gz",
        "vertebrae": f"{key}_desc-vertebrae_dseg.nii.gz",
        "lesion_labels": f"{key}_desc-lesions_dseg.nii.gz",
        "lesions": f"{key}_desc-lesions_bme.csv",
        "endplates": f"{key}_desc-endplates_modic.csv",
        "bones": f"{key}_desc-bones_dseg.nii.gz",
        "bone_table": f"{key}_desc-bones_bme.csv",
        "decision_images": f"{key}_desc-decision_ratios.npz",
        "report": f"{key}_report.json",
        "qc": f"{key}_qc.html",
    }


def dataset_description(
    output: str | os.PathLike, input_root: str | os.PathLike, version: str, parameters: Mapping
) -> Path:
    """Write ``OUTPUT/dataset_description.json`` (BIDS derivatives).

    ``SourceDatasets`` names the input by its path relative to OUTPUT (no absolute path),
    plus its DOI and name when the input is a BIDS dataset that declares them.
    """
    source: dict[str, Any] = {
        "URL": Path(os.path.relpath(Path(input_root).resolve(), Path(output).resolve())).as_posix()
    }
    described = Path(input_root) / "dataset_description.json"
    if described.is_file():
        import json

        try:
            raw = json.loads(described.read_text(encoding="utf-8"))
        except ValueError:
            raw = {}
        if raw.get("DatasetDOI"):
            source["DOI"] = raw["DatasetDOI"]
        if raw.get("Name"):
            source["Name"] = raw["Name"]
    description = {
        "Name": "bmetoolkit: bone marrow edema and Modic changes",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "bmetoolkit",
                "Version": version,
                "Description": "bmetoolkit batch: BME masks, Modic type maps and "
                "per-endplate tables (spine), per-bone tables (bone masks)",
                "Parameters": dict(parameters),
            }
        ],
        "SourceDatasets": [source],
    }
    return write_json(Path(output) / "dataset_description.json", description)


def summary_of(result: Any, report: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per-subject figures of an analysis result: BME volume, lesion and Modic counts.

    Counted by :func:`bmetoolkit.report.summary.summarise` from the result's report
    (``report``, else ``result.to_dict()``), as the QC index counts them from the saved
    ``report.json``. With bone masks (``anatomy`` ``"bones"``) ``n_bones`` counts the bones
    analysed and the endplate and Modic figures are None (empty cells: not a spine).
    """
    summary = summarise(result.to_dict() if report is None else report)
    bones = summary["anatomy"] == "bones"
    spine = {key: summary[key] for key in ("n_endplates", "n_modic", "modic_assessed")}
    spine |= {f"modic_{name}": count for name, count in summary["modic_counts"].items()}
    return {
        "anatomy": summary["anatomy"],
        "bme_volume_ml": round(float(result.bme_volume_ml), 4),
        "n_lesions": summary["n_lesions"],
        "n_bones": summary["n_bones"],
        **(dict.fromkeys(spine) if bones else spine),
    }


def write_group_tables(output: str | os.PathLike, outcomes: Sequence[Any]) -> dict[str, Path]:
    """Write ``subjects.csv/.tsv``, ``endplates.csv/.tsv``, ``bones.csv/.tsv`` and
    ``failures.csv`` into OUTPUT.

    Parameters
    ----------
    output : path
        The batch output folder.
    outcomes : sequence of SubjectOutcome
        One per subject of the batch (done now, unchanged, or failed).
    """
    base = Path(output)
    subject_rows = [o.row() for o in outcomes]
    extra = sorted({k for r in subject_rows for k in r} - set(SUBJECT_COLUMNS))
    for row in subject_rows:  # a Modic type found in one subject counts 0 in the others
        if row["status"] != "failed" and row.get("anatomy", "spine") == "spine":
            row.update({k: row.get(k, 0) for k in extra if k.startswith("modic_")})
    subject_columns = [*SUBJECT_COLUMNS[:-3], *extra, *SUBJECT_COLUMNS[-3:]]
    endplate_rows = [
        {"subject": o.subject, "session": o.session} | dict(row)
        for o in outcomes
        for row in o.endplates
    ]
    endplate_columns = list(dict.fromkeys(k for r in endplate_rows for k in r)) or [
        "subject",
        "session",
    ]
    bone_rows = [
        {"subject": o.subject, "session": o.session} | dict(row)
        for o in outcomes
        for row in o.bones
    ]
    failure_rows = [o.row() | {"stage": o.stage} for o in outcomes if o.status == "failed"]
    written = {}
    for name, rows, columns in (
        ("subjects", subject_rows, subject_columns),
        ("endplates", endplate_rows, endplate_columns),
        ("bones", bone_rows, BONE_GROUP_COLUMNS),
    ):
        written[f"{name}_csv"] = write_text(base / f"{name}.csv", table_text(rows, columns))
        written[f"{name}_tsv"] = write_text(
            base / f"{name}.tsv", table_text(rows, columns, sep="\t")
        )
    written["failures_csv"] = write_text(
        base / "failures.csv", table_text(failure_rows, FAILURE_COLUMNS)
    )
    return written


def write_qc_index(output: str | os.PathLike, outcomes: Sequence[Any]) -> Path:
    """Write ``OUTPUT/index.html``: a sortable table of every subject's QC page, and failures.

    Subjects whose QC page exists (``--qc``) link to it, with its thumbnail; failed subjects
    are listed with the stage and the error. The counts are those of ``subjects.csv``.
    """
    import json

    from bmetoolkit.report.html import thumbnail_path, write_index_page

    base = Path(output)
    subjects, failures = [], []
    for outcome in outcomes:
        if outcome.status == "failed":
            failures.append(
                {
                    "subject": outcome.key,
                    "participant": outcome.subject,
                    "stage": outcome.stage,
                    "error": outcome.error,
                }
            )
            continue
        folder = base.joinpath(*unit_parts(outcome.subject, outcome.session), "anat")
        report_path = folder / output_names(outcome.key)["report"]
        page = folder / output_names(outcome.key)["qc"]
        if not (report_path.is_file() and page.is_file()):
            continue
        thumbnail = thumbnail_path(page)
        subjects.append(
            {
                "subject": outcome.key,
                "participant": outcome.subject,
                "page": page.relative_to(base).as_posix(),
                "thumbnail": thumbnail.relative_to(base).as_posix()
                if thumbnail.is_file()
                else None,
                "report": json.loads(report_path.read_text(encoding="utf-8")),
                "status": outcome.status,
            }
        )
    from bmetoolkit.batch.longitudinal import LONGITUDINAL_PAGE

    links = [(LONGITUDINAL_PAGE, "Follow-up visits: each subject's consecutive sessions "
              "compared")] if (base / LONGITUDINAL_PAGE).is_file() else []  # fmt: skip
    return write_index_page(base / INDEX_PAGE, subjects, failures, links=links)
