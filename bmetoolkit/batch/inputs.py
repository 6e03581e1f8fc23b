"""What a batch knows about one subject before analysing it: its images by role.

:class:`SubjectInputs` is what discovery (:mod:`bmetoolkit.batch.discover`) returns for each
subject (and session) and what a worker receives; it is picklable and holds no open files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bmetoolkit.batch.naming import bids_prefix

__all__ = [
    "ROLES",
    "InputImage",
    "Layout",
    "Role",
    "SubjectInputs",
    "excluded",
    "marrow_image",
    "missing_problem",
    "nifti_image",
]

Layout = Literal["bids", "dicom", "nifti"]
Role = Literal["t1", "t2", "stir", "vertebrae", "marrow"]
ROLES: tuple[Role, ...] = ("t1", "t2", "stir", "vertebrae", "marrow")


@dataclass(frozen=True)
class InputImage:
    """One image of a subject: a NIfTI file, or a DICOM series inside a folder.

    Parameters
    ----------
    path : str
        The NIfTI file, or the folder holding the DICOM series.
    files : tuple of str
        Every file read for this image (fingerprinted in the manifest).
    series : str, optional
        SeriesInstanceUID of the DICOM series.
    description : str
        What it is, for listings (file name or series label).
    info : SeriesInfo, optional
        Header summary of the DICOM series, so a worker reads it without rescanning.
    """

    path: str
    files: tuple[str, ...]
    series: str | None = None
    description: str = ""
    info: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SubjectInputs:
    """The inputs of one subject (and session), or why it cannot be analysed.

    Parameters
    ----------
    subject : str
        Sanitised subject label (no ``sub-``).
    session : str or None
        Sanitised session label, None without sessions.
    layout : {'bids', 'dicom', 'nifti'}
    source : str
        The subject's folder or file as found (for messages only).
    t1, t2, stir, vertebrae : InputImage or None
        The images chosen for each role.
    marrow : InputImage or None
        Masks of any bones (:mod:`bmetoolkit.bones`); the subject is then analysed per bone,
        without spine concepts, and needs no T1. Its ``files`` include the table of names
        when one is used, so a changed table redoes the subject.
    marrow_labels : str or None
        Names of the ``marrow`` ids: a table file or a TotalSegmentator convention name
        (``bmetoolkit batch --marrow-labels``, or the ``..._dseg.tsv`` beside the mask); None
        lets the analysis look beside the mask.
    reasons : tuple of str
        Why each image was chosen or passed over.
    problem : str or None
        Why the subject cannot be analysed (it is then reported as failed at the
        ``discover`` stage).
    problem_type : str
        The type of the error behind ``problem`` (e.g. ``AmbiguousSeriesError``).
    allow_cross_study : bool
        Its series may come from different studies (asked for in the series choices).
    """

    subject: str
    session: str | None
    layout: Layout
    source: str
    t1: InputImage | None = None
    t2: InputImage | None = None
    stir: InputImage | None = None
    vertebrae: InputImage | None = None
    marrow: InputImage | None = None
    marrow_labels: str | None = None
    reasons: tuple[str, ...] = ()
    problem: str | None = None
    problem_type: str = ""
    allow_cross_study: bool = False

    @property
    def anatomy(self) -> str:
        """``"bones"`` when a bone mask is given, else ``"spine"``."""
        return "bones" if self.marrow is not None else "spine"

    @property
    def key(self) -> str:
        """``sub-<subject>[_ses-<session>]``: unique within a batch."""
        return bids_prefix(self.subject, self.session)

    def images(self) -> dict[str, InputImage]:
        """The images present, by role."""
        found = {role: getattr(self, role) for role in ROLES}
        return {role: image for role, image in found.items() if image is not None}


def nifti_image(path: Path) -> InputImage:
    """The :class:`InputImage` of one NIfTI file."""
    return InputImage(path=str(path), files=(str(path),), description=path.name)


def marrow_image(path: Path, table: str | Path | None = None) -> InputImage:
    """The :class:`InputImage` of a bone mask with its table of names.

    ``table`` is the table given for it; by default the ``<mask>.tsv`` or ``<mask>_dseg.tsv``
    beside it, which the analysis reads by itself. The table is one of the image's files, so
    the manifest notices when it changes.
    """
    from bmetoolkit.bones.labels import sidecar_table

    names = str(table) if table is not None else sidecar_table(str(path))
    files = (str(path), names) if names else (str(path),)
    description = f"{path.name} (names: {Path(names).name})" if names else path.name
    return InputImage(path=str(path), files=files, description=description)


def missing_problem(chosen: dict[str, Any]) -> str | None:
    """Why the roles found cannot be analysed, else None.

    A fluid image (T2 or STIR) is always needed; the T1 too, unless bone masks
    (``marrow``) are given, which are analysed from the fluid image alone when there is no T1.
    """
    if "t1" not in chosen and "marrow" not in chosen:
        return f"no T1 image: {_NO_T1}; {_LISTED}"
    if "t2" not in chosen and "stir" not in chosen:
        return f"no T2 or STIR image: {_NO_FLUID}; {_LISTED}"
    return None


_NO_T1 = "a spine needs a T1 (a subject with a bone mask is analysed without one)"
_NO_FLUID = "every subject needs a fluid-sensitive image (T2, STIR, or fat-suppressed T2 or PD)"
_LISTED = "--dry-run lists the files found for each role"


def excluded(path: Path, skip: Sequence[Path]) -> bool:
    """True when ``path`` lies in (or is) one of the resolved folders ``skip``."""
    resolved = path.resolve()
    return any(resolved == s or s in resolved.parents for s in skip)
