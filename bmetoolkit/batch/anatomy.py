"""Which analysis each subject gets: the spine, or edema per bone in its bone masks.

Discovery finds a subject's images and, when there is one, its bone mask (role ``marrow``).
:func:`choose_anatomy` then decides, subject by subject:

``auto`` (the default)
    A subject with a bone mask is analysed per bone (:mod:`bmetoolkit.bones`; no T1 needed);
    one without keeps the spine analysis (with its vertebra labels, or found automatically).
``bones``
    Every subject needs a bone mask; one without fails at the ``discover`` stage.
``spine``
    Bone masks are ignored; every subject gets the spine analysis (which needs a T1).

``marrow_labels`` (``bmetoolkit batch --marrow-labels``) names the ids of every subject's
mask: one table file, or a TotalSegmentator convention (``total_mr``...). Without it each
mask's own ``..._dseg.tsv`` / ``.tsv`` beside it is used, else ``bone 1..n``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from bmetoolkit.batch.inputs import InputImage, SubjectInputs, marrow_image, missing_problem

__all__ = ["ANATOMIES", "Anatomy", "choose_anatomy", "marrow_labels_option"]

Anatomy = Literal["auto", "spine", "bones"]
ANATOMIES: tuple[Anatomy, ...] = ("auto", "spine", "bones")


def marrow_labels_option(value: str | os.PathLike | None) -> str | None:
    """The ``--marrow-labels`` value checked: a convention name or an absolute table path.

    Raises
    ------
    ValueError
        Neither a file nor a known TotalSegmentator convention.
    """
    if value is None:
        return None
    from bmetoolkit.bones.labels import CONVENTIONS

    text = os.fspath(value)
    if text in CONVENTIONS:
        return text
    path = Path(text)
    if path.is_file():
        return str(path.absolute())
    raise ValueError(
        f"--marrow-labels {text}: no such file, and not a known convention "
        f"({', '.join(CONVENTIONS)}); give a dseg.tsv, a two-column TSV or a JSON mapping"
    )


def choose_anatomy(
    subjects: Sequence[SubjectInputs],
    anatomy: Anatomy | str = "auto",
    marrow_labels: str | None = None,
) -> list[SubjectInputs]:
    """The subjects with the images their analysis uses, by the rules of this module.

    Parameters
    ----------
    subjects : sequence of SubjectInputs
        As discovered.
    anatomy : {'auto', 'spine', 'bones'}
    marrow_labels : str, optional
        A checked ``--marrow-labels`` value (:func:`marrow_labels_option`).

    Raises
    ------
    ValueError
        Unknown ``anatomy``.
    """
    if anatomy not in ANATOMIES:
        raise ValueError(f"unknown anatomy {anatomy!r}; choose {', '.join(ANATOMIES)}")
    return [_choose(s, anatomy, marrow_labels) for s in subjects]


def _choose(subject: SubjectInputs, anatomy: str, labels: str | None) -> SubjectInputs:
    if subject.marrow is None:
        if anatomy == "bones" and subject.problem is None:
            return replace(
                subject,
                problem="no bone mask (--anatomy bones); name it bones.nii.gz (NIfTI layout) "
                "or *_desc-bones_dseg.nii.gz in the derivatives (BIDS)",
                problem_type="MissingContrastError",
            )
        return subject
    if anatomy == "spine":
        unit = replace(
            subject,
            marrow=None,
            reasons=(*subject.reasons, "marrow: not used (--anatomy spine)"),
        )
        return _recheck(unit)
    unit = subject
    if unit.vertebrae is not None:
        unit = replace(
            unit,
            vertebrae=None,
            reasons=(
                *unit.reasons,
                f"vertebrae: {Path(unit.vertebrae.path).name} not used (a bone mask is given)",
            ),
        )
    if labels is not None:
        mask = Path(unit.marrow.path)
        if os.path.isfile(labels):
            image = marrow_image(mask, labels)
        else:  # a convention: no table file is read
            image = InputImage(str(mask), (str(mask),), description=f"{mask.name} ({labels})")
        unit = replace(
            unit,
            marrow=image,
            marrow_labels=labels,
            reasons=(*unit.reasons, f"marrow names: {Path(labels).name} (--marrow-labels)"),
        )
    return unit


def _recheck(unit: SubjectInputs) -> SubjectInputs:
    """Recompute a missing-image problem once the images have changed."""
    if unit.problem is not None and unit.problem_type != "MissingContrastError":
        return unit
    problem = missing_problem(unit.images())
    return replace(unit, problem=problem, problem_type="MissingContrastError")
