"""A longitudinal group table from per-session analyses (e.g. BIDS ``ses-*``).

:func:`longitudinal_table` takes each subject's sessions (``analyze`` output folders or
visits already read, in time order), compares every consecutive pair
(:func:`bmetoolkit.followup.compare.compare`) and returns two tables:

- **sessions** (:data:`SESSION_COLUMNS`): one row per subject x session x level (edema
  volume of the body, and the Modic type of each endplate) or bone (its edema volume), read
  from each session's report;
- **changes** (:data:`PAIR_COLUMNS`): one row per subject x consecutive pair of sessions x
  region, the rows of the pair's ``change.csv`` (with the repeatability coefficient and
  whether the change is real), after the pair's ``status`` (``ok``, ``failed``).

A pair that cannot be compared (other anatomy, no overlap, an unreadable file, any error)
gets one row with its error and the next pairs are still compared, so the table covers
every subject.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.followup.change import CHANGE_COLUMNS
from bmetoolkit.followup.visit import Visit, VisitInput, load_visit

__all__ = [
    "PAIR_COLUMNS",
    "SESSION_COLUMNS",
    "compare_sessions",
    "longitudinal_table",
    "session_rows",
]

#: Columns of the per-session table (``level``: the vertebral level, or the bone).
SESSION_COLUMNS = (
    "subject",
    "session",
    "anatomy",
    "level",
    "bme_ml",
    "modic_superior",
    "modic_inferior",
)
#: Columns of the per-pair table: the pair, then ``change.csv``'s columns, then the error.
PAIR_COLUMNS = (
    "subject",
    "from_session",
    "to_session",
    "status",
    *CHANGE_COLUMNS,
    "compare",
    "error_type",
    "error",
)


def session_rows(subject: str, session: str, report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per level (edema volume, Modic type per endplate) or bone of one session.

    >>> report = {"lesions": [{"level": "L4", "bme_volume_ml": 1.5}],
    ...           "endplates": [{"level": "L4", "endplate": "inferior", "modic_type": "I"}]}
    >>> session_rows("sub-01", "ses-1", report)[0]["bme_ml"]
    1.5
    >>> session_rows("01", "1", {"anatomy": "bones", "bones": [{"bone": "femur", "bme_ml": 2.0}]})
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'subject': '01', 'session': '1', 'anatomy': 'bones', 'level': 'femur', 'bme_ml': 2.0,
      'modic_superior': None, 'modic_inferior': None}]
    """
    anatomy = str(report.get("anatomy") or "spine")
    if anatomy == "bones":
        return [
            _empty(subject, session, anatomy, str(row["bone"]))
            | {"bme_ml": round(float(row.get("bme_ml") or 0.0), 4)}
            for row in report.get("bones", [])
        ]
    rows: dict[str, dict[str, Any]] = {}
    for endplate in report.get("endplates", []):
        level = endplate["level"]
        row = rows.setdefault(level, _empty(subject, session, anatomy, level))
        row[f"modic_{endplate['endplate']}"] = endplate["modic_type"]
    for lesion in report.get("lesions", []):
        level = lesion["level"]
        row = rows.setdefault(level, _empty(subject, session, anatomy, level))
        row["bme_ml"] = round(row["bme_ml"] + float(lesion.get("bme_volume_ml") or 0.0), 4)
    return list(rows.values())


def _empty(subject: str, session: str, anatomy: str, level: str) -> dict[str, Any]:
    return {"subject": subject, "session": session, "anatomy": anatomy, "level": level,
            "bme_ml": 0.0, "modic_superior": None, "modic_inferior": None}  # fmt: skip


def compare_sessions(
    subject: str,
    visits: Sequence[tuple[str, VisitInput | Exception]],
    out_of: Callable[[str, str], Path | None] | None = None,
    *,
    reuse: Callable[[str, str], list[dict[str, Any]] | None] | None = None,
) -> list[dict[str, Any]]:
    """Compare each consecutive pair of one subject's sessions; the rows of every pair.

    Parameters
    ----------
    subject : str
    visits : sequence of (str, visit)
        ``(session, visit)`` in time order; a visit is anything
        :func:`bmetoolkit.followup.visit.load_visit` reads (read once, used by both its
        pairs), or the exception reading it raised (its pairs fail with it).
    out_of : callable, optional
        ``out_of(first, second)``: where to write that pair's comparison (None: nowhere).
    reuse : callable, optional
        ``reuse(first, second)``: that pair's change rows from an earlier run, or None to
        compare it now.

    Returns
    -------
    list of dict
        :data:`PAIR_COLUMNS` rows; a failed pair is one row with ``status`` ``failed`` and
        its error, and does not stop the others.
    """
    from bmetoolkit.followup.compare import compare

    loaded: dict[str, Visit | Exception] = {}

    def visit_of(session: str, visit: VisitInput | Exception) -> Visit:
        if isinstance(visit, Exception):
            raise visit
        if session not in loaded:
            try:
                loaded[session] = load_visit(visit, label=f"session {session}")
            except Exception as exc:  # recorded in the pair's row
                loaded[session] = exc
        found = loaded[session]
        if isinstance(found, Exception):
            raise found
        return found

    rows: list[dict[str, Any]] = []
    for (first, visit_a), (second, visit_b) in itertools.pairwise(visits):
        pair = {"subject": subject, "from_session": first, "to_session": second}
        out = out_of(first, second) if out_of is not None else None
        where = {"compare": str(out) if out is not None else ""}
        earlier = reuse(first, second) if reuse is not None else None
        if earlier is not None:
            rows += [pair | {"status": "ok"} | row | where for row in earlier]
            continue
        try:
            result = compare(visit_of(first, visit_a), visit_of(second, visit_b), out=out)
        except Exception as exc:  # one pair never stops the others
            rows.append(
                pair | {"status": "failed", "error_type": type(exc).__name__,
                        "error": str(exc)} | where
            )  # fmt: skip
            continue
        rows += [pair | {"status": "ok"} | row | where for row in result.change_rows]
    return rows


def longitudinal_table(
    sessions: Mapping[str, Sequence[tuple[str, VisitInput]]],
    out_dir: str | os.PathLike | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Session and change tables of a cohort (see the module description).

    Parameters
    ----------
    sessions : dict of str to list of (str, visit)
        Per subject, its ``(session, analyze output folder or visit)`` in time order.
    out_dir : path, optional
        Where to write each pair's comparison (``<out_dir>/<subject>/<ses1>_to_<ses2>``).

    Returns
    -------
    session_table, change_table : list of dict
        :data:`SESSION_COLUMNS` and :data:`PAIR_COLUMNS` rows.
    """
    session_table: list[dict[str, Any]] = []
    change_table: list[dict[str, Any]] = []
    for subject, visits in sessions.items():
        read: list[tuple[str, VisitInput | Exception]] = []
        for session, visit in visits:
            try:
                visit = load_visit(visit, label=f"session {session}")
            except Exception as exc:  # its pairs' rows carry the error
                read.append((session, exc))
                continue
            session_table += session_rows(subject, session, visit.report)
            read.append((session, visit))

        def out_of(first: str, second: str, subject: str = subject) -> Path | None:
            return None if out_dir is None else Path(out_dir) / subject / f"{first}_to_{second}"

        change_table += compare_sessions(subject, read, out_of)
    return session_table, change_table
