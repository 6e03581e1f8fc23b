"""Per-subject manifest: input fingerprints, parameters, version and outputs.

A subject's manifest (``sub-<label>[_ses-<label>]_manifest.json``, written last into its
output folder) records what was read, with which parameters and software version, and what
was written. A rerun skips the subject when :func:`check_complete` finds the manifest, every
output it lists (with its size), and unchanged inputs and parameters.

Fingerprints are fast: a file whose size and modification time equal the recorded ones is
taken as unchanged without reading it; otherwise its SHA-256 is computed and compared, so a
file that was only touched (``touch``, copied with a new mtime) does not cause a redo.

Examples
--------
>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "a.txt"
>>> _ = path.write_text("abc")
>>> fp = fingerprint(path)
>>> fp["size"], fp["sha256"][:12]
(3, 'ba7816bf8f01')
>>> fingerprint(path, previous=fp) == fp
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmetoolkit.io import file_sha256

if TYPE_CHECKING:
    from bmetoolkit.batch.inputs import SubjectInputs

__all__ = [
    "MANIFEST_VERSION",
    "check_complete",
    "fingerprint",
    "input_fingerprints",
    "manifest_name",
    "read_manifest",
]

#: Format version of the manifest; a manifest of another version is not trusted.
MANIFEST_VERSION = 1


def manifest_name(key: str) -> str:
    """File name of the manifest of unit ``key`` (``sub-01_ses-1``)."""
    return f"{key}_manifest.json"


def fingerprint(path: str | os.PathLike, previous: Mapping[str, Any] | None = None) -> dict:
    """Size, modification time (ns) and SHA-256 of a file.

    Parameters
    ----------
    path : path
        The file.
    previous : mapping, optional
        Its recorded fingerprint: when size and mtime are unchanged its SHA-256 is reused
        instead of reading the file.
    """
    stat = os.stat(path)
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if (
        previous
        and previous.get("size") == stat.st_size
        and previous.get("mtime_ns") == stat.st_mtime_ns
        and previous.get("sha256")
    ):
        return record | {"sha256": previous["sha256"]}
    return record | {"sha256": file_sha256(path)}


def _relative(path: str, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def input_fingerprints(
    subject: SubjectInputs,
    root: str | os.PathLike,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fingerprint of every input file of ``subject``, by role.

    Paths are recorded relative to ``root`` (the cohort folder), never absolute.

    Returns
    -------
    dict
        ``{role: {"path": ..., "series": uid or None, "files": {relative path: fingerprint}}}``;
        the ``marrow`` entry also has ``labels`` when ``--marrow-labels`` named its ids.
    """
    base = Path(root)
    before = previous or {}
    result: dict[str, Any] = {}
    for role, image in subject.images().items():
        old_files = (before.get(role) or {}).get("files") or {}
        files = {}
        for file in sorted(image.files):
            relative = _relative(file, base)
            files[relative] = fingerprint(file, old_files.get(relative))
        result[role] = {
            "path": _relative(image.path, base),
            "series": image.series,
            "files": files,
        }
    labels, mask = subject.marrow_labels, subject.marrow
    if mask is not None and labels is not None:  # a convention, or the table's path
        result["marrow"]["labels"] = _relative(labels, base) if labels in mask.files else labels
    return result


def read_manifest(path: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest at ``path``; None when missing, unreadable or of another version."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        return None
    return manifest


def _same_inputs(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    def strip(inputs: Mapping[str, Any]) -> dict:
        return {
            role: (
                entry.get("path"),
                entry.get("series"),
                entry.get("labels"),
                {name: (fp["size"], fp["sha256"]) for name, fp in entry["files"].items()},
            )
            for role, entry in inputs.items()
        }

    try:
        return strip(recorded) == strip(current)
    except (KeyError, TypeError, AttributeError):
        return False


def check_complete(
    unit_dir: str | os.PathLike,
    subject: SubjectInputs,
    root: str | os.PathLike,
    *,
    parameters: Mapping[str, Any],
    version: str,
    options: Mapping[str, bool],
) -> tuple[dict[str, Any] | None, str]:
    """Whether the outputs in ``unit_dir`` are complete and up to date for ``subject``.

    Returns
    -------
    manifest : dict or None
        The manifest when the subject can be skipped, else None.
    reason : str
        Why it must be redone (``"no manifest"``, ``"parameters changed"``...) or
        ``"complete"``.
    """
    folder = Path(unit_dir)
    manifest = read_manifest(folder / manifest_name(subject.key))
    if manifest is None:
        return None, "no complete output"
    for entry in (manifest.get("outputs") or {}).values():
        target = folder / entry["path"]
        if not target.is_file() or target.stat().st_size != entry["size"]:
            return None, f"output {entry['path']} missing or changed"
    if manifest.get("version") != version:
        return None, f"bmetoolkit version changed ({manifest.get('version')} -> {version})"
    if manifest.get("parameters") != dict(parameters):
        return None, "parameters changed"
    recorded = manifest.get("options") or {}
    for name, value in options.items():
        if bool(recorded.get(name)) != bool(value):
            return None, f"option {name} changed"
    try:
        current = input_fingerprints(subject, root, manifest.get("inputs"))
    except OSError as exc:
        return None, f"input unreadable ({exc})"
    if not _same_inputs(manifest.get("inputs") or {}, current):
        return None, "inputs changed"
    return manifest, "complete"
