"""DICOM layout: one folder per subject, paired by :func:`bmetoolkit.pairing.pair.pair_series`.

Series choices (:mod:`bmetoolkit.batch.choices`) settle ambiguous pairings per subject; a
subject that cannot be paired carries the error's type and a message whose advice is in
the batch's terms (a row of the choices file), never an option ``batch`` does not have.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.batch.choices import SeriesChoice, SeriesChoices
from bmetoolkit.batch.inputs import InputImage, SubjectInputs, excluded

__all__ = ["discover_dicom"]


_Problem = tuple[str, str]  # (error type, message)


def discover_dicom(
    root: Path, skip: Sequence[Path], choices: SeriesChoices | None = None
) -> list[SubjectInputs]:
    """One :class:`SubjectInputs` per folder under ``root`` (per study folder with sessions).

    ``derivatives``, hidden folders and the resolved folders ``skip`` are ignored.
    ``choices`` gives the series of subjects whose pairing is ambiguous.
    """
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if excluded(folder, skip) or folder.name == "derivatives":
            continue
        found.extend(_dicom_subject(folder, choices or SeriesChoices()))
    return found


def _dicom_subject(folder: Path, choices: SeriesChoices) -> list[SubjectInputs]:
    from bmetoolkit.dicom.read import scan_dicom
    from bmetoolkit.errors import BmetoolkitError

    try:
        series = scan_dicom(folder)
    except BmetoolkitError as exc:
        return [
            SubjectInputs(
                folder.name,
                None,
                "dicom",
                str(folder),
                problem=str(exc),
                problem_type=type(exc).__name__,
            )
        ]
    by_child: dict[str, list[Any]] = defaultdict(list)
    for info in series:
        relative = Path(info.files[0]).relative_to(folder).parts if info.files else ()
        by_child[relative[0] if len(relative) > 1 else ""].append(info)
    if len(by_child) > 1 and "" not in by_child:
        sessions = {
            child: _dicom_pair(folder / child, items, choices.get(folder.name, child), folder.name)
            for child, items in by_child.items()
        }
        if all(unit[0] is not None for unit in sessions.values()):
            return [_dicom_unit(folder, child, *sessions[child]) for child in sorted(sessions)]
    pair = _dicom_pair(folder, series, choices.get(folder.name), folder.name)
    return [_dicom_unit(folder, None, *pair)]


def _dicom_pair(
    folder: Path, series: list[Any], choice: SeriesChoice | None, subject: str
) -> tuple[Any, _Problem | None, bool]:
    """(Pairing, None, cross-study allowed) or (None, (error type, why not), False)."""
    from bmetoolkit.errors import BmetoolkitError, CrossStudyError
    from bmetoolkit.pairing.pair import pair_series

    choice = choice or SeriesChoice()
    try:
        pairing = pair_series(
            series,
            t1=choice.t1,
            t2=choice.t2,
            stir=choice.stir,
            allow_cross_study=choice.allow_cross_study,
        )
    except CrossStudyError as exc:
        return None, (type(exc).__name__, exc.with_hint(_cross_study_hint(subject))), False
    except BmetoolkitError as exc:
        return None, (type(exc).__name__, exc.with_hint(_choice_hint(subject))), False
    return pairing, None, choice.allow_cross_study


def _choice_hint(subject: str) -> str:
    return (
        "choose the series for this subject in a series choices file: `bmetoolkit batch "
        "INPUT OUTPUT --series-choices choices.tsv`, a tab-separated file with the columns "
        f"subject, t1, t2, stir and a row '{subject}<TAB>T1<TAB>T2<TAB>STIR' holding series "
        "numbers from the list above (leave a cell empty to choose automatically; see "
        "docs/batch.md)"
    )


def _cross_study_hint(subject: str) -> str:
    return (
        "put each study in its own subject folder; if they really are one patient's same "
        "session, allow it in a series choices file (`--series-choices choices.tsv`) with "
        f"the columns subject and allow_cross_study and a row '{subject}<TAB>yes'"
    )


def _dicom_unit(
    folder: Path,
    session: str | None,
    pairing: Any,
    problem: _Problem | None,
    allow_cross_study: bool = False,
) -> SubjectInputs:
    source = folder / session if session else folder
    if pairing is None:
        kind, text = problem or ("MissingContrastError", "cannot be paired")
        return SubjectInputs(
            folder.name, session, "dicom", str(source), problem=text, problem_type=kind
        )
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
        allow_cross_study=allow_cross_study,
        **chosen,
    )
