"""NIfTI layout: files matched by a pattern such as ``{subject}/{role}.nii.gz``."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from bmetoolkit.batch.inputs import (
    ROLES,
    InputImage,
    Role,
    SubjectInputs,
    excluded,
    marrow_image,
    missing_problem,
    nifti_image,
)

__all__ = ["DEFAULT_PATTERN", "ROLE_NAMES", "discover_nifti", "match_pattern"]

#: Default ``{role}`` pattern of the ``nifti`` layout.
DEFAULT_PATTERN = "{subject}/{role}.nii.gz"
#: Names matched by ``{role}`` in a NIfTI pattern (case-insensitive).
ROLE_NAMES: dict[Role, tuple[str, ...]] = {
    "t1": ("t1", "t1w"),
    "t2": ("t2", "t2w"),
    "stir": ("stir", "tirm", "t2fs", "t2stir", "pdfs"),
    "vertebrae": ("vertebrae", "vert", "labels", "seg", "dseg", "seg-vert_msk"),
    "marrow": ("bones", "bone_mask", "bones_mask", "marrow", "marrow_mask"),
}
#: Bone masks are whole bones (cortex included, see docs/bones.md): when a subject has both a
#: ``bones`` and a ``marrow`` file (as a joint phantom folder does), the whole-bone one is used.
_WHOLE_BONE_NAMES = ("bones", "bone_mask", "bones_mask")


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


def match_pattern(root: Path, pattern: str, *, limit: int | None = None) -> list[tuple[dict, Path]]:
    """(named groups, path) of every file under ``root`` that ``pattern`` matches.

    Only files whose ``{role}`` is one of :data:`ROLE_NAMES` count; ``limit`` stops early.

    Raises
    ------
    ValueError
        The pattern lacks ``{subject}`` or ``{role}``.
    """
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


def _whole_bones_first(paths: list[Path], words: dict[Path, str]) -> tuple[list[Path], str]:
    """The whole-bone masks among several bone masks of one subject (by the ``{role}`` word
    each matched), when there are some; and a note naming those passed over."""
    whole = [p for p in paths if words[p] in _WHOLE_BONE_NAMES]
    if len(paths) < 2 or not whole or len(whole) == len(paths):
        return paths, ""
    passed = ", ".join(p.name for p in paths if p not in whole)
    return whole, f"; whole-bone mask preferred over {passed}"


def discover_nifti(root: Path, pattern: str, skip: Sequence[Path]) -> list[SubjectInputs]:
    """One :class:`SubjectInputs` per (subject, session) that ``pattern`` finds under ``root``."""
    units: dict[tuple[str, str | None], dict[Role, list[Path]]] = defaultdict(
        lambda: defaultdict(list)
    )
    words: dict[Path, str] = {}
    for groups, path in match_pattern(root, pattern):
        if excluded(path, skip):
            continue
        role = _role_of(groups["role"])
        assert role is not None
        units[(groups["subject"], groups.get("session"))][role].append(path)
        words[path] = groups["role"].lower()
    found = []
    for (subject, session), roles in units.items():
        chosen: dict[str, InputImage] = {}
        reasons, problem = [], None
        for role in ROLES:
            paths, note = roles.get(role, []), ""
            if role == "marrow":
                paths, note = _whole_bones_first(paths, words)
            if len(paths) > 1:
                problem = f"{role}: {len(paths)} files match ({', '.join(p.name for p in paths)})"
            elif paths:
                make = marrow_image if role == "marrow" else nifti_image
                chosen[role] = make(paths[0])
                reasons.append(f"{role}: {paths[0].name} (pattern {pattern}){note}")
            else:
                reasons.append(f"{role}: none found")
        found.append(
            SubjectInputs(
                subject=subject,
                session=session,
                layout="nifti",
                source=str(root / subject),
                reasons=tuple(reasons),
                problem=problem or missing_problem(chosen),
                problem_type="AmbiguousSeriesError" if problem else "MissingContrastError",
                **chosen,
            )
        )
    return found
