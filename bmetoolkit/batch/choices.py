"""Per-subject series choices for DICOM batches: a TSV of subject -> series numbers.

When a subject's folder holds two series that could be the T1 (a repeat, a post-contrast
scan named like a native one...), automatic pairing stops and says so. A choices file
settles it for each such subject, as ``--t1-series`` does for one ``analyze``::

    subject   session  t1  t2  stir  allow_cross_study
    patient7           3   4   5
    patient9           12      14    yes

Columns: ``subject`` (the subject's folder name, with or without ``sub-``) and any of
``session``, ``t1``, ``t2``, ``stir`` (a SeriesNumber, SeriesInstanceUID or exact
SeriesDescription; empty: chosen automatically) and ``allow_cross_study`` (``yes`` to pair
series of different studies). Lines starting with ``#`` are comments.

Examples
--------
>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "choices.tsv"
>>> _ = path.write_text("subject\\tt1\\tstir\\nsub-07\\t3\\t5\\n")
>>> choices = read_series_choices(path)
>>> choices.get("07", None)
SeriesChoice(t1=3, t2=None, stir=5, allow_cross_study=False)
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "COLUMNS",
    "ChoicesFileError",
    "SeriesChoice",
    "SeriesChoices",
    "read_series_choices",
]

#: Columns a choices file may hold (``subject`` is required).
COLUMNS = ("subject", "session", "t1", "t2", "stir", "allow_cross_study")
_YES = {"yes", "y", "true", "1"}
_NO = {"", "no", "n", "false", "0"}


class ChoicesFileError(ValueError):
    """The series choices file cannot be used (exit code 2, like other usage errors)."""


@dataclass(frozen=True)
class SeriesChoice:
    """The series chosen for one subject (None: chosen automatically)."""

    t1: str | int | None = None
    t2: str | int | None = None
    stir: str | int | None = None
    allow_cross_study: bool = False


@dataclass
class SeriesChoices:
    """Choices by ``(subject, session)``; :meth:`get` matches labels with or without ``sub-``."""

    by_unit: dict[tuple[str, str | None], SeriesChoice] = field(default_factory=dict)
    used: set[tuple[str, str | None]] = field(default_factory=set)

    def get(self, subject: str, session: str | None = None) -> SeriesChoice | None:
        """The choice for ``subject`` (and ``session``), or None; remembers it was used."""
        for key in ((_bare(subject), session), (_bare(subject), None)):
            if key in self.by_unit:
                self.used.add(key)
                return self.by_unit[key]
        return None

    def unused(self) -> list[str]:
        """Subjects of the file that no discovered subject matched (likely typos)."""
        return sorted(
            subject + (f" (session {session})" if session else "")
            for subject, session in self.by_unit
            if (subject, session) not in self.used
        )


def _bare(label: str) -> str:
    return label[4:] if label.startswith("sub-") else label


def _series(value: str) -> str | int | None:
    text = value.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def read_series_choices(path: str | os.PathLike) -> SeriesChoices:
    """Read a choices TSV (see the module documentation).

    Raises
    ------
    ChoicesFileError
        Missing file or ``subject`` column, unknown columns, a subject listed twice, or an
        ``allow_cross_study`` value that is neither yes nor no; the message names the line.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChoicesFileError(f"series choices {source}: cannot be read ({exc})") from exc
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t")
    header = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in header if c not in COLUMNS]
    if "subject" not in header or unknown:
        raise ChoicesFileError(
            f"series choices {source}: the first line must name tab-separated columns among "
            f"{', '.join(COLUMNS)} with 'subject' required; found {header or 'nothing'}"
        )
    choices = SeriesChoices()
    for number, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        key = (_bare(row["subject"]), row.get("session") or None)
        if not key[0] or key in choices.by_unit:
            what = "has no subject" if not key[0] else f"lists {row['subject']} again"
            raise ChoicesFileError(f"series choices {source}, line {number}: {what}")
        allow = row.get("allow_cross_study", "").lower()
        if allow not in _YES | _NO:
            raise ChoicesFileError(
                f"series choices {source}, line {number}: allow_cross_study must be yes or "
                f"no, got {allow!r}"
            )
        choices.by_unit[key] = SeriesChoice(
            t1=_series(row.get("t1", "")),
            t2=_series(row.get("t2", "")),
            stir=_series(row.get("stir", "")),
            allow_cross_study=allow in _YES,
        )
    return choices
