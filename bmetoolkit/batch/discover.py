"""Find the subjects of a cohort and what will be paired for each, with the reasons.

Three layouts (``layout="auto"`` picks one, see :func:`detect_layout`):

``bids``
    ``sub-<label>/[ses-<label>/]anat/`` with ``_T1w``, ``_T2w`` and the STIR as a ``_T2w``
    whose ``acq`` label names it (``acq-stir``, ``acq-tirm``), or a ``_STIR`` suffix. A T2w
    with a fat-suppression ``acq`` (``fs``, ``fatsat``, ``spair``, ``spir``) fills the STIR
    role when there is no STIR, as :func:`bmetoolkit.pairing.pair_series` does for DICOM.
    Repeated runs: the highest ``run`` is used. Vertebra label maps are looked up under
    ``derivatives/`` (or ``labels_root``): SPINEPS ``*_seg-vert_msk`` first, then a
    ``*_dseg`` whose ``desc`` names vertebrae, then a single ``*_dseg``.
``dicom``
    One folder per subject under INPUT, holding the DICOM files of one study (any depth),
    paired with :func:`bmetoolkit.pairing.pair_series`. When the series in each sub-folder
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
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bmetoolkit.batch.naming import bids_prefix, parse_bids_name, unique_labels
from bmetoolkit.io import NIFTI_SUFFIXES

__all__ = [
    "DEFAULT_PATTERN",
    "ROLE_NAMES",
    "InputImage",
    "Layout",
    "SubjectInputs",
    "detect_layout",
    "discover",
]

Layout = Literal["bids", "dicom", "nifti"]
Role = Literal["t1", "t2", "stir", "vertebrae"]
ROLES: tuple[Role, ...] = ("t1", "t2", "stir", "vertebrae")

#: Default ``{role}`` pattern of the ``nifti`` layout.
DEFAULT_PATTERN = "{subject}/{role}.nii.gz"
#: Names matched by ``{role}`` in a NIfTI pattern (case-insensitive).
ROLE_NAMES: dict[Role, tuple[str, ...]] = {
    "t1": ("t1", "t1w"),
    "t2": ("t2", "t2w"),
    "stir": ("stir", "tirm", "t2fs", "t2stir"),
    "vertebrae": ("vertebrae", "vert", "labels", "seg", "dseg", "seg-vert_msk"),
}
_STIR_ACQ = re.compile(r"stir|tirm", re.IGNORECASE)
_FATSAT_ACQ = re.compile(r"fs|fatsat|spair|spir", re.IGNORECASE)
_VERT_DESC = re.compile(r"vert", re.IGNORECASE)


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
    reasons : tuple of str
        Why each image was chosen or passed over.
    problem : str or None
        Why the subject cannot be analysed (it is then reported as failed at the
        ``discover`` stage).
    """

    subject: str
    session: str | None
    layout: Layout
    source: str
    t1: InputImage | None = None
    t2: InputImage | None = None
    stir: InputImage | None = None
    vertebrae: InputImage | None = None
    reasons: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def key(self) -> str:
        """``sub-<subject>[_ses-<session>]``: unique within a batch."""
        return bids_prefix(self.subject, self.session)

    def images(self) -> dict[str, InputImage]:
        """The images present, by role."""
        found = {role: getattr(self, role) for role in ROLES}
        return {role: image for role, image in found.items() if image is not None}


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
    if pattern is not None or _match_pattern(base, DEFAULT_PATTERN, limit=1):
        return "nifti"
    return "dicom"


def discover(
    root: str | os.PathLike,
    *,
    layout: Layout | Literal["auto"] = "auto",
    pattern: str | None = None,
    labels_root: str | os.PathLike | None = None,
    exclude: Sequence[str | os.PathLike] = (),
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

    Returns
    -------
    list of SubjectInputs
        Subjects that cannot be analysed carry a ``problem``.
    """
    base = Path(root)
    chosen = detect_layout(base, pattern=pattern) if layout == "auto" else layout
    skip = [Path(p).resolve() for p in exclude]
    if chosen == "bids":
        found = _discover_bids(base, Path(labels_root) if labels_root else None, skip)
    elif chosen == "nifti":
        found = _discover_nifti(base, pattern or DEFAULT_PATTERN, skip)
    else:
        found = _discover_dicom(base, skip)
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
                )
            final.append(u)
    return final


def _excluded(path: Path, skip: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == s or s in resolved.parents for s in skip)


# --------------------------------------------------------------------------- BIDS


def _discover_bids(
    root: Path, labels_root: Path | None, skip: Sequence[Path]
) -> list[SubjectInputs]:
    anat_dirs = sorted({*root.glob("sub-*/anat"), *root.glob("sub-*/ses-*/anat")})
    labels = _bids_label_maps(labels_root or root / "derivatives", skip)
    found = []
    for anat in anat_dirs:
        if not anat.is_dir() or _excluded(anat, skip):
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
                vertebrae=_nifti_image(label),
                reasons=(*unit.reasons, f"vertebrae: {label.name}"),
            )
        else:
            unit = replace(unit, reasons=(*unit.reasons, "vertebrae: no label map found"))
        found.append(unit)
    return found


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
        chosen[role] = _nifti_image(pick[1])
        reasons.append(f"{role}: {pick[1].name} ({pick[2]}){note}")
    problem = problem or _missing(chosen)
    return SubjectInputs(
        subject=subject,
        session=session,
        layout="bids",
        source=str(anat),
        reasons=tuple(reasons),
        problem=problem,
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


def _missing(chosen: dict[str, Any]) -> str | None:
    if "t1" not in chosen:
        return "no T1 image"
    if "t2" not in chosen and "stir" not in chosen:
        return "no T2 or STIR image"
    return None


def _bids_label_maps(folder: Path, skip: Sequence[Path]) -> dict[tuple[str, str | None], Path]:
    """The preferred vertebra label map of each (subject, session) under ``folder``."""
    if not folder.is_dir():
        return {}
    ranked: dict[tuple[str, str | None], list[tuple[int, str, Path]]] = defaultdict(list)
    for path in folder.rglob("sub-*"):
        if not path.name.lower().endswith(NIFTI_SUFFIXES) or _excluded(path, skip):
            continue
        name = parse_bids_name(path.name)
        if name is None:
            continue
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


def _nifti_image(path: Path) -> InputImage:
    return InputImage(path=str(path), files=(str(path),), description=path.name)


# --------------------------------------------------------------------------- NIfTI pattern


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    if "{subject}" not in pattern or "{role}" not in pattern:
        raise ValueError(
            f"pattern {pattern!r} needs {{subject}} and {{role}}, e.g. {DEFAULT_PATTERN!r}"
        )
    out = []
    for token in re.split(r"(\{subject\}|\{session\}|\{role\}|\*)", pattern):
        if token in ("{subject}", "{session}", "{role}"):
            out.append(f"(?P<{token[1:-1]}>[^/]+?)")
        elif token == "*":
            out.append("[^/]*")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out) + r"\Z")


def _role_of(text: str) -> Role | None:
    lowered = text.lower()
    for role, names in ROLE_NAMES.items():
        if lowered in names:
            return role
    return None


def _match_pattern(
    root: Path, pattern: str, *, limit: int | None = None
) -> list[tuple[dict, Path]]:
    regex = _pattern_regex(pattern)
    depth = pattern.count("/")
    matches = []
    for path in _files_at_depth(root, depth):
        match = regex.match(path.relative_to(root).as_posix())
        if match is None or _role_of(match.group("role")) is None:
            continue
        matches.append((match.groupdict(), path))
        if limit is not None and len(matches) >= limit:
            break
    return matches


def _files_at_depth(root: Path, depth: int) -> Iterable[Path]:
    paths = [root]
    for _ in range(depth):
        paths = [
            c
            for p in paths
            for c in sorted(p.iterdir())
            if c.is_dir() and not c.name.startswith(".")
        ]
    for p in paths:
        yield from (c for c in sorted(p.iterdir()) if c.is_file())


def _discover_nifti(root: Path, pattern: str, skip: Sequence[Path]) -> list[SubjectInputs]:
    units: dict[tuple[str, str | None], dict[Role, list[Path]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for groups, path in _match_pattern(root, pattern):
        if _excluded(path, skip):
            continue
        role = _role_of(groups["role"])
        assert role is not None
        units[(groups["subject"], groups.get("session"))][role].append(path)
    found = []
    for (subject, session), roles in units.items():
        chosen: dict[str, InputImage] = {}
        reasons, problem = [], None
        for role in ROLES:
            paths = roles.get(role, [])
            if len(paths) > 1:
                problem = f"{role}: {len(paths)} files match ({', '.join(p.name for p in paths)})"
            elif paths:
                chosen[role] = _nifti_image(paths[0])
                reasons.append(f"{role}: {paths[0].name} (pattern {pattern})")
            else:
                reasons.append(f"{role}: none found")
        found.append(
            SubjectInputs(
                subject=subject,
                session=session,
                layout="nifti",
                source=str(root / subject),
                reasons=tuple(reasons),
                problem=problem or _missing(chosen),
                **chosen,
            )
        )
    return found


# --------------------------------------------------------------------------- DICOM


def _discover_dicom(root: Path, skip: Sequence[Path]) -> list[SubjectInputs]:
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if _excluded(folder, skip) or folder.name == "derivatives":
            continue
        found.extend(_dicom_subject(folder))
    return found


def _dicom_subject(folder: Path) -> list[SubjectInputs]:
    from bmetoolkit.dicom import scan_dicom
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
    from bmetoolkit.pairing import pair_series

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
