"""The longitudinal tables of a batch with sessions: every subject's consecutive visits compared.

After the subjects are analysed, each subject with two or more analysed sessions has every
consecutive pair compared (:func:`bmetoolkit.followup.compare.compare`; sessions in natural
order of their labels, ``ses-2`` before ``ses-10``), and the batch writes::

    OUTPUT/longitudinal_sessions.csv, .tsv  one row per subject x session x level or bone
    OUTPUT/longitudinal_changes.csv, .tsv   one row per subject x consecutive pair x region
    OUTPUT/longitudinal.html                every pair: totals, real changes, QC page link
    OUTPUT/sub-<label>/compare/ses-<a>_to_ses-<b>/   each pair's comparison (change.csv,
                                            lesions_matched.csv, pair_qc.html, report.json)

A session whose analysis failed is left out (its neighbours are compared, with a note); a
pair that cannot be compared gets one row with its error and the other pairs go on. A
pair whose two sessions were both kept unchanged by this run and whose comparison is
complete (its ``report.json``, written last) is read back instead of compared again.
Every table is written under a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.batch.naming import inside
from bmetoolkit.batch.outputs import output_names, unit_parts
from bmetoolkit.followup.compare import COMPARE_FILES
from bmetoolkit.followup.longitudinal import (
    PAIR_COLUMNS,
    SESSION_COLUMNS,
    compare_sessions,
    session_rows,
)
from bmetoolkit.followup.visit import load_visit
from bmetoolkit.io import write_text
from bmetoolkit.report.tables import table_text

__all__ = ["LONGITUDINAL_PAGE", "session_order", "write_longitudinal"]

#: The page listing every compared pair (linked from the batch's ``index.html``).
LONGITUDINAL_PAGE = "longitudinal.html"
#: The tables' files in OUTPUT.
TABLE_FILES = tuple(
    f"longitudinal_{name}.{ext}" for name in ("sessions", "changes") for ext in ("csv", "tsv")
)
#: Folder of a subject's comparisons, below its ``sub-<label>`` folder.
COMPARE_FOLDER = "compare"


def session_order(label: str) -> tuple[Any, ...]:
    """Natural sort key of a session label: ``"2"`` before ``"10"``, ``"pre"`` by text.

    >>> sorted(["10", "2", "baseline"], key=session_order)
    ['2', '10', 'baseline']
    """
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label))


def _by_subject(outcomes: Sequence[Any]) -> dict[str, list[Any]]:
    """The outcomes of every subject with sessions, in session order."""
    subjects: dict[str, list[Any]] = {}
    for outcome in outcomes:
        if outcome.session:
            subjects.setdefault(outcome.subject, []).append(outcome)
    return {
        subject: sorted(units, key=lambda o: session_order(o.session))
        for subject, units in sorted(subjects.items())
        if len(units) > 1
    }


def _unit_folder(output: Path, outcome: Any) -> Path:
    return inside(output, *unit_parts(outcome.subject, outcome.session), "anat")


def _pair_folder(output: Path, subject: str, first: str, second: str) -> Path:
    return inside(output, f"sub-{subject}", COMPARE_FOLDER, f"ses-{first}_to_ses-{second}")


def _earlier_rows(folder: Path) -> list[dict[str, Any]] | None:
    try:
        report = json.loads((folder / COMPARE_FILES["report"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rows = report.get("change")
    return rows if isinstance(rows, list) and rows else None


def write_longitudinal(
    output: str | os.PathLike, outcomes: Sequence[Any], input_root: str | os.PathLike
) -> dict[str, Path]:
    """Compare every subject's consecutive sessions and write the longitudinal tables.

    Parameters
    ----------
    output : path
        The batch output folder.
    outcomes : sequence of SubjectOutcome
        One per subject and session of the batch.
    input_root : path
        The cohort folder (batch reports name their inputs relative to it: the T1 and fluid
        images are found there for the registration and the subject check).

    Returns
    -------
    dict of str to Path
        The tables and page written; empty when no subject has two sessions (tables of an
        earlier run are then removed: every group table describes this run's subjects).
    """
    base = Path(output)
    subjects = _by_subject(outcomes)
    if not subjects:  # like the other group tables, these describe this run's subjects
        for name in (*TABLE_FILES, LONGITUDINAL_PAGE):
            (base / name).unlink(missing_ok=True)
        return {}
    session_table: list[dict[str, Any]] = []
    pair_table: list[dict[str, Any]] = []
    for subject, units in subjects.items():
        analysed = [o for o in units if o.status != "failed"]
        failed = [o.session for o in units if o.status == "failed"]
        visits = []
        for outcome in analysed:
            folder = _unit_folder(base, outcome)
            names = output_names(outcome.key)
            try:
                visit = load_visit(folder, label=f"session {outcome.session}", names=names,
                                   input_root=input_root)  # fmt: skip
            except Exception as exc:  # its pairs' rows carry the error
                visits.append((outcome.session, exc))
                continue
            session_table += session_rows(subject, outcome.session, visit.report)
            visits.append((outcome.session, visit))
        unchanged = {o.session for o in analysed if o.status == "unchanged"}

        def out_of(first: str, second: str, subject: str = subject) -> Path:
            return _pair_folder(base, subject, first, second)

        def reuse(
            first: str, second: str, subject: str = subject, unchanged: set[str] = unchanged
        ) -> Any:
            if {first, second} <= unchanged:
                return _earlier_rows(_pair_folder(base, subject, first, second))
            return None

        rows = compare_sessions(subject, visits, out_of, reuse=reuse)
        note = (
            f"session(s) {', '.join(failed)} failed and were left out: consecutive analysed "
            "sessions compared"
            if failed
            else ""
        )
        for row in rows:
            if row.get("compare"):
                row["compare"] = Path(row["compare"]).relative_to(base).as_posix()
            if note:
                row["note"] = "; ".join(filter(None, [row.get("note") or "", note]))
        pair_table += rows
    written = {}
    for name, rows, columns in (
        ("longitudinal_sessions", session_table, SESSION_COLUMNS),
        ("longitudinal_changes", pair_table, PAIR_COLUMNS),
    ):
        written[f"{name}_csv"] = write_text(base / f"{name}.csv", table_text(rows, columns))
        written[f"{name}_tsv"] = write_text(
            base / f"{name}.tsv", table_text(rows, columns, sep="\t")
        )
    written["longitudinal_page"] = write_text(base / LONGITUDINAL_PAGE, _page(base, pair_table))
    return written


def _page(base: Path, rows: Sequence[dict[str, Any]]) -> str:
    """The follow-up page: one table row per pair (totals, real changes, its QC page)."""
    from bmetoolkit.report.html import asset, render_page

    pairs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        pairs.setdefault((row["subject"], row["from_session"], row["to_session"]), []).append(row)
    shown = []
    for (subject, first, second), group in pairs.items():
        total = next((r for r in group if r.get("region") == "total"), None)
        failed = group[0]["status"] == "failed"
        page = Path(group[0].get("compare") or "") / COMPARE_FILES["qc"]
        shown.append(
            {
                "subject": f"sub-{subject}",
                "first": f"ses-{first}",
                "second": f"ses-{second}",
                "error": f"{group[0]['error_type']}: {group[0]['error']}" if failed else None,
                "total": total or {},
                "real": [
                    str(r["region"]) for r in group if r.get("bme_change_real") and r is not total
                ],
                "page": page.as_posix()
                if group[0].get("compare") and (base / page).is_file()
                else None,
            }
        )
    return render_page(
        "longitudinal.html.j2",
        title="bmetoolkit: follow-up visits",
        script=asset("sort.js"),
        pairs=shown,
        failed=sum(p["error"] is not None for p in shown),
    )
