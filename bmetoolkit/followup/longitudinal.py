"""A longitudinal group table from per-session analyses (e.g. BIDS ``ses-*``).

:func:`longitudinal_table` takes each subject's sessions (``analyze`` output folders, in
time order), compares every consecutive pair (:func:`bmetoolkit.followup.compare.compare`)
and returns two tables:

- **sessions**: one row per subject x session x level (edema volume of the body, and the
  Modic type of each endplate), read from each session's ``report.json``;
- **changes**: one row per subject x consecutive pair of sessions x region, the rows of
  the pair's ``change.csv`` (with the repeatability coefficient and whether the change is
  real).

A pair that cannot be compared (other anatomy, no overlap) gets one row with its error, so
the table still covers every subject.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.errors import BmetoolkitError

__all__ = ["SESSION_COLUMNS", "longitudinal_table", "session_rows"]

#: Columns of the per-session table.
SESSION_COLUMNS = ("subject", "session", "level", "bme_ml", "modic_superior", "modic_inferior")


def session_rows(subject: str, session: str, report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per level of one session's report (edema volume, Modic type per endplate).

    >>> report = {"lesions": [{"level": "L4", "bme_volume_ml": 1.5}],
    ...           "endplates": [{"level": "L4", "endplate": "inferior", "modic_type": "I"}]}
    >>> session_rows("sub-01", "ses-1", report)[0]["bme_ml"]
    1.5
    """
    rows: dict[str, dict[str, Any]] = {}
    for endplate in report.get("endplates", []):
        row = rows.setdefault(endplate["level"], _empty(subject, session, endplate["level"]))
        row[f"modic_{endplate['endplate']}"] = endplate["modic_type"]
    for lesion in report.get("lesions", []):
        row = rows.setdefault(lesion["level"], _empty(subject, session, lesion["level"]))
        row["bme_ml"] = round(row["bme_ml"] + float(lesion.get("bme_volume_ml") or 0.0), 4)
    return list(rows.values())


def _empty(subject: str, session: str, level: str) -> dict[str, Any]:
    return {"subject": subject, "session": session, "level": level, "bme_ml": 0.0,
            "modic_superior": None, "modic_inferior": None}  # fmt: skip


def longitudinal_table(
    sessions: Mapping[str, Sequence[tuple[str, str | os.PathLike]]],
    out_dir: str | os.PathLike | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Session and change tables of a cohort (see the module description).

    Parameters
    ----------
    sessions : dict of str to list of (str, path)
        Per subject, its ``(session, analyze output folder)`` in time order.
    out_dir : path, optional
        Where to write each pair's comparison (``<out_dir>/<subject>/<ses1>_to_<ses2>``).

    Returns
    -------
    session_table, change_table : list of dict
    """
    from bmetoolkit.followup.compare import compare

    session_table: list[dict[str, Any]] = []
    change_table: list[dict[str, Any]] = []
    for subject, visits in sessions.items():
        for session, folder in visits:
            report = json.loads((Path(folder) / "report.json").read_text(encoding="utf-8"))
            session_table += session_rows(subject, session, report)
        for (first, folder_a), (second, folder_b) in itertools.pairwise(visits):
            pair = {"subject": subject, "from_session": first, "to_session": second}
            out = None if out_dir is None else Path(out_dir) / subject / f"{first}_to_{second}"
            try:
                result = compare(folder_a, folder_b, out=out)
            except BmetoolkitError as exc:
                change_table.append(pair | {"error": f"{type(exc).__name__}: {exc}"})
                continue
            change_table += [pair | row for row in result.change_rows]
    return session_table, change_table
