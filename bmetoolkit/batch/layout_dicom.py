"""DICOM layout: one folder per subject, paired by :func:`bmetoolkit.pairing.pair.pair_series`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.batch.inputs import InputImage, SubjectInputs, excluded

__all__ = ["discover_dicom"]


def discover_dicom(root: Path, skip: Sequence[Path]) -> list[SubjectInputs]:
    """One :class:`SubjectInputs` per folder under ``root`` (per study folder with sessions).

    ``derivatives``, hidden folders and the resolved folders ``skip`` are ignored.
    """
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if excluded(folder, skip) or folder.name == "derivatives":
            continue
        found.extend(_dicom_subject(folder))
    return found


def _dicom_subject(folder: Path) -> list[SubjectInputs]:
    from bmetoolkit.dicom.read import scan_dicom
    from bmetoolkit.errors import BmetoolkitError

    try:
        series = scan_dicom(folder)
    except BmetoolkitError as exc:
        return [SubjectInputs(folder.name, None, "dicom", str(folder), problem=str(exc))]
    by_child: dict[str, list[Any]] = defaultdict(list)
    for info in series:
        relative = Path(info.files[0]).relative_to(folder).parts if info.files else ()
        by_child[relative[0] if len(relative) > 1 else ""].append(info)
    if len(by_child) > 1 and "" not in by_child:
        sessions = {child: _dicom_pair(folder / child, items) for child, items in by_child.items()}
        if all(unit[0] is not None for unit in sessions.values()):
            return [_dicom_unit(folder, child, *sessions[child]) for child in sorted(sessions)]
    return [_dicom_unit(folder, None, *_dicom_pair(folder, series))]


def _dicom_pair(folder: Path, series: list[Any]) -> tuple[Any, str | None]:
    """(Pairing, None) or (None, why not)."""
    from bmetoolkit.errors import BmetoolkitError
    from bmetoolkit.pairing.pair import pair_series

    try:
        return pair_series(series), None
    except BmetoolkitError as exc:
        return None, str(exc)


def _dicom_unit(
    folder: Path, session: str | None, pairing: Any, problem: str | None
) -> SubjectInputs:
    source = folder / session if session else folder
    if pairing is None:
        return SubjectInputs(folder.name, session, "dicom", str(source), problem=problem)
    chosen = {}
    for role in ("t1", "t2", "stir"):
        info = getattr(pairing, role)
        if info is not None:
            chosen[role] = InputImage(
                path=str(source),
                files=tuple(info.files),
                series=info.uid,
                description=info.label,
                info=info,
            )
    return SubjectInputs(
        subject=folder.name,
        session=session,
        layout="dicom",
        source=str(source),
        reasons=tuple(pairing.reasons),
        **chosen,
    )
