"""BIDS layout: ``sub-<label>/[ses-<label>/]anat/`` read by the BIDS naming rules.

No pybids: :func:`bmetoolkit.batch.naming.parse_bids_name` splits the names. The role rules
are in :mod:`bmetoolkit.batch.discover`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bmetoolkit.batch.inputs import (
    InputImage,
    Role,
    SubjectInputs,
    excluded,
    marrow_image,
    missing_problem,
    nifti_image,
)
from bmetoolkit.batch.naming import parse_bids_name
from bmetoolkit.io import NIFTI_SUFFIXES

__all__ = ["discover_bids"]

_STIR_ACQ = re.compile(r"stir|tirm", re.IGNORECASE)
_FATSAT_ACQ = re.compile(r"fs|fatsat|spair|spir", re.IGNORECASE)
_VERT_DESC = re.compile(r"vert", re.IGNORECASE)
#: ``desc`` of a bone mask in the derivatives: ``desc-bones_dseg``, ``desc-bonemask_mask``...
_BONE_DESC = re.compile(r"bone|marrow", re.IGNORECASE)


def discover_bids(
    root: Path, labels_root: Path | None, skip: Sequence[Path]
) -> list[SubjectInputs]:
    """One :class:`SubjectInputs` per ``anat`` folder of a BIDS dataset.

    Parameters
    ----------
    root : Path
        The dataset.
    labels_root : Path or None
        Where to look for vertebra label maps (default ``root/derivatives``).
    skip : sequence of Path
        Resolved folders to ignore (the batch output).
    """
    anat_dirs = sorted({*root.glob("sub-*/anat"), *root.glob("sub-*/ses-*/anat")})
    labels = _bids_label_maps(labels_root or root / "derivatives", skip)
    bones = _bids_bone_masks(labels_root or root / "derivatives", skip)
    found = []
    for anat in anat_dirs:
        if not anat.is_dir() or excluded(anat, skip):
            continue
        subject_dir = anat.parent if anat.parent.name.startswith("sub-") else anat.parent.parent
        session = anat.parent.name[4:] if anat.parent.name.startswith("ses-") else None
        subject = subject_dir.name[4:]
        images = [p for p in sorted(anat.iterdir()) if p.name.lower().endswith(NIFTI_SUFFIXES)]
        unit = _bids_unit(subject, session, anat, images)
        label = labels.get((subject, session))
        if label is not None:
            unit = replace(
                unit,
                vertebrae=nifti_image(label),
                reasons=(*unit.reasons, f"vertebrae: {label.name}"),
            )
        else:
            unit = replace(unit, reasons=(*unit.reasons, "vertebrae: no label map found"))
        found.append(_with_bone_mask(unit, bones.get((subject, session), [])))
    return found


def _with_bone_mask(unit: SubjectInputs, masks: list[Path]) -> SubjectInputs:
    """``unit`` with its bone mask from the derivatives (none, one, or an ambiguity)."""
    if not masks:
        return replace(unit, reasons=(*unit.reasons, "marrow: no bone mask found"))
    if len(masks) > 1:
        names = ", ".join(p.name for p in masks)
        return replace(
            unit,
            problem=f"marrow: {len(masks)} bone masks ({names}); keep one or rename the others",
            problem_type="AmbiguousSeriesError",
        )
    image = marrow_image(masks[0])
    chosen = {**unit.images(), "marrow": image}
    problem, problem_type = unit.problem, unit.problem_type
    if problem is not None and problem_type == "MissingContrastError":
        problem = missing_problem(chosen)  # a bone mask makes the T1 optional
    return replace(
        unit,
        marrow=image,
        problem=problem,
        reasons=(*unit.reasons, f"marrow: {image.description}"),
    )


def _bids_role(name: Any) -> tuple[Role | None, str]:
    acq = name.get("acq") or ""
    if name.suffix == "T1w":
        return "t1", "T1w"
    if name.suffix == "STIR" or (name.suffix == "T2w" and _STIR_ACQ.search(acq)):
        return "stir", f"STIR ({name.suffix}, acq-{acq})" if acq else "STIR"
    if name.suffix == "T2w" and acq and _FATSAT_ACQ.search(acq):
        return "stir", f"fat-suppressed T2w (acq-{acq})"
    if name.suffix == "T2w":
        return "t2", "T2w"
    return None, ""


def _bids_unit(subject: str, session: str | None, anat: Path, images: list[Path]) -> SubjectInputs:
    candidates: dict[Role, list[tuple[Any, Path, str]]] = defaultdict(list)
    for path in images:
        name = parse_bids_name(path.name)
        if name is None:
            continue
        role, what = _bids_role(name)
        if role is not None:
            candidates[role].append((name, path, what))
    # a true STIR beats a fat-suppressed T2 in the STIR role
    true_stir = [c for c in candidates["stir"] if c[2].startswith("STIR")]
    if true_stir:
        candidates["stir"] = true_stir
    chosen: dict[str, InputImage] = {}
    reasons: list[str] = []
    problem = None
    for role in ("t1", "t2", "stir"):
        pool = candidates.get(role, [])
        if not pool:
            reasons.append(f"{role}: none found")
            continue
        pick, note = _pick_run(pool)
        if pick is None:
            problem = f"{role}: {note}"
            continue
        chosen[role] = nifti_image(pick[1])
        reasons.append(f"{role}: {pick[1].name} ({pick[2]}){note}")
    problem_type = "AmbiguousSeriesError" if problem else "MissingContrastError"
    problem = problem or missing_problem(chosen)
    return SubjectInputs(
        subject=subject,
        session=session,
        layout="bids",
        source=str(anat),
        reasons=tuple(reasons),
        problem=problem,
        problem_type=problem_type,
        **chosen,
    )


def _pick_run(pool: list[tuple[Any, Path, str]]) -> tuple[tuple[Any, Path, str] | None, str]:
    """The one candidate, or the highest run when they differ only in ``run``."""
    if len(pool) == 1:
        return pool[0], ""

    def without_run(item: tuple[Any, Path, str]) -> tuple:
        entities = {k: v for k, v in item[0].entities.items() if k != "run"}
        return tuple(sorted(entities.items())), item[0].suffix

    if len({without_run(c) for c in pool}) == 1 and all(c[0].get("run") for c in pool):
        best = max(pool, key=lambda c: int(re.sub(r"\D", "", c[0].get("run")) or 0))
        return best, f"; highest of {len(pool)} runs"
    names = ", ".join(c[1].name for c in pool)
    return None, f"{len(pool)} candidates ({names}); keep one or rename the others"


def _derivative_images(folder: Path, skip: Sequence[Path]) -> Iterator[tuple[Any, Path]]:
    """(parsed BIDS name, path) of every BIDS-named NIfTI file under ``folder``."""
    if not folder.is_dir():
        return
    for path in folder.rglob("sub-*"):
        if not path.name.lower().endswith(NIFTI_SUFFIXES) or excluded(path, skip):
            continue
        name = parse_bids_name(path.name)
        if name is not None:
            yield name, path


def _bids_label_maps(folder: Path, skip: Sequence[Path]) -> dict[tuple[str, str | None], Path]:
    """The preferred vertebra label map of each (subject, session) under ``folder``."""
    ranked: dict[tuple[str, str | None], list[tuple[int, str, Path]]] = defaultdict(list)
    for name, path in _derivative_images(folder, skip):
        if name.suffix == "msk" and name.get("seg") == "vert":
            rank = 0
        elif name.suffix == "dseg" and _VERT_DESC.search(name.get("desc") or ""):
            rank = 1
        elif name.suffix == "dseg" and not name.get("desc"):
            rank = 2
        else:
            continue
        ranked[(name.get("sub"), name.get("ses"))].append((rank, path.name, path))
    best = {}
    for key, options in ranked.items():
        options.sort()
        if len(options) == 1 or options[0][0] < options[1][0]:
            best[key] = options[0][2]
    return best


def _bids_bone_masks(folder: Path, skip: Sequence[Path]) -> dict[tuple[str, str | None], list]:
    """The bone masks of each (subject, session) under ``folder``.

    A ``*_dseg`` or ``*_mask`` whose ``desc`` names bones or marrow (``desc-bones_dseg``);
    a ``dseg`` is preferred over a ``mask`` of the same subject. More than one left is an
    ambiguity the subject reports.
    """
    ranked: dict[tuple[str, str | None], list[tuple[int, str, Path]]] = defaultdict(list)
    for name, path in _derivative_images(folder, skip):
        if name.suffix in ("dseg", "mask") and _BONE_DESC.search(name.get("desc") or ""):
            rank = 0 if name.suffix == "dseg" else 1
            ranked[(name.get("sub"), name.get("ses"))].append((rank, path.name, path))
    return {
        key: [path for rank, _, path in sorted(options) if rank == min(options)[0]]
        for key, options in ranked.items()
    }
