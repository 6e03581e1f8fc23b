"""Find the subjects of a cohort and what will be paired for each, with the reasons.

Three layouts (``layout="auto"`` picks one, see :func:`detect_layout`):

``bids``
    ``sub-<label>/[ses-<label>/]anat/`` with ``_T1w``, ``_T2w`` and the STIR as a ``_T2w``
    whose ``acq`` label names it (``acq-stir``, ``acq-tirm``), or a ``_STIR`` suffix. A T2w
    with a fat-suppression ``acq`` (``fs``, ``fatsat``, ``spair``, ``spir``) fills the STIR
    role when there is no STIR, as :func:`bmetoolkit.pairing.pair.pair_series` does for DICOM.
    Repeated runs: the highest ``run`` is used. Vertebra label maps are looked up under
    ``derivatives/`` (or ``labels_root``): SPINEPS ``*_seg-vert_msk`` first, then a
    ``*_dseg`` whose ``desc`` names vertebrae, then a single ``*_dseg``.
``dicom``
    One folder per subject under INPUT, holding the DICOM files of one study (any depth),
    paired with :func:`bmetoolkit.pairing.pair.pair_series`. When the series in each sub-folder
    pair on their own (``subject/<study>/...``), each sub-folder is a session.
``nifti``
    Files matched by a pattern such as ``{subject}/{role}.nii.gz`` (the default, which is
    what ``bmetoolkit phantom`` writes) or ``{subject}_{session}_{role}.nii``: ``{role}``
    matches a name in :data:`ROLE_NAMES` (case-insensitive), ``*`` any text within one
    folder name.

Labels are sanitised with :func:`bmetoolkit.batch.naming.unique_labels`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from bmetoolkit.batch.choices import SeriesChoices
from bmetoolkit.batch.inputs import InputImage, Layout, SubjectInputs
from bmetoolkit.batch.layout_bids import discover_bids
from bmetoolkit.batch.layout_dicom import discover_dicom
from bmetoolkit.batch.layout_nifti import DEFAULT_PATTERN, ROLE_NAMES, discover_nifti, match_pattern
from bmetoolkit.batch.naming import unique_labels

__all__ = [
    "DEFAULT_PATTERN",
    "ROLE_NAMES",
    "InputImage",
    "Layout",
    "SubjectInputs",
    "detect_layout",
    "discover",
]


def detect_layout(root: str | os.PathLike, *, pattern: str | None = None) -> Layout:
    """Guess the layout of ``root``: ``bids``, then ``nifti``, else ``dicom``.

    ``bids`` when ``root`` holds ``dataset_description.json`` or ``sub-*`` folders with an
    ``anat`` folder; ``nifti`` when a pattern is given or the default pattern matches a
    file; ``dicom`` otherwise.
    """
    base = Path(root)
    if (base / "dataset_description.json").is_file() or any(
        p.is_dir() for p in [*base.glob("sub-*/anat"), *base.glob("sub-*/ses-*/anat")]
    ):
        return "bids"
    if pattern is not None or match_pattern(base, DEFAULT_PATTERN, limit=1):
        return "nifti"
    return "dicom"


def discover(
    root: str | os.PathLike,
    *,
    layout: Layout | Literal["auto"] = "auto",
    pattern: str | None = None,
    labels_root: str | os.PathLike | None = None,
    exclude: Sequence[str | os.PathLike] = (),
    choices: SeriesChoices | None = None,
) -> list[SubjectInputs]:
    """Every subject (and session) under ``root``, sorted by key.

    Parameters
    ----------
    root : path
        The cohort folder.
    layout : {'auto', 'bids', 'dicom', 'nifti'}
        How ``root`` is organised (module documentation).
    pattern : str, optional
        ``nifti`` layout: the file pattern (default :data:`DEFAULT_PATTERN`).
    labels_root : path, optional
        ``bids`` layout: where to look for vertebra label maps (default
        ``root/derivatives``).
    exclude : sequence of path
        Folders to ignore (the batch output, when it lies inside ``root``).
    choices : SeriesChoices, optional
        ``dicom`` layout: series chosen per subject (:mod:`bmetoolkit.batch.choices`).

    Returns
    -------
    list of SubjectInputs
        Subjects that cannot be analysed carry a ``problem``.
    """
    base = Path(root)
    chosen = detect_layout(base, pattern=pattern) if layout == "auto" else layout
    skip = [Path(p).resolve() for p in exclude]
    if chosen == "bids":
        found = discover_bids(base, Path(labels_root) if labels_root else None, skip)
    elif chosen == "nifti":
        found = discover_nifti(base, pattern or DEFAULT_PATTERN, skip)
    else:
        found = discover_dicom(base, skip, choices)
    return sorted(_unique(found), key=lambda s: s.key)


def _unique(found: list[SubjectInputs]) -> list[SubjectInputs]:
    """Sanitise subject and session labels so that no two units share a key."""
    subjects = unique_labels([s.subject for s in found])
    result = []
    for s in found:
        result.append(replace(s, subject=subjects[s.subject]))
    by_subject: dict[str, list[SubjectInputs]] = defaultdict(list)
    for s in result:
        by_subject[s.subject].append(s)
    final = []
    for units in by_subject.values():
        sessions = unique_labels([u.session or "" for u in units], prefix="ses")
        mixed = len(units) > 1 and any(u.session is None for u in units)
        for u in units:
            u = replace(u, session=sessions[u.session] if u.session else None)
            if mixed and u.session is None:  # its folder would hold the sessions' folders
                u = replace(
                    u,
                    problem="images both with and without a session; put these in a "
                    "ses-<label> folder too",
                    problem_type="AmbiguousSeriesError",
                )
            final.append(u)
    return final
