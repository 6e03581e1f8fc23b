"""Subject and session labels, BIDS file names, and paths that never leave the output folder.

Labels come from file names, folder names or user patterns, so they are untrusted: a label is
reduced to the BIDS label alphabet (ASCII letters and digits), which removes path separators,
``..``, drive letters and odd characters. :func:`inside` is the last line of defence: every
path the batch writes is checked to lie inside the output folder.

Examples
--------
>>> sanitize_label("../x"), sanitize_label("/abs/p 01"), sanitize_label("sub-01")
('x', 'absp01', '01')
>>> bids_prefix("01", None), bids_prefix("01", "2")
('sub-01', 'sub-01_ses-2')
>>> parse_bids_name("sub-01_ses-1_acq-stir_T2w.nii.gz")
BidsName(entities={'sub': '01', 'ses': '1', 'acq': 'stir'}, suffix='T2w', extension='.nii.gz')
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BidsName",
    "UnsafePathError",
    "bids_prefix",
    "inside",
    "parse_bids_name",
    "sanitize_label",
    "unique_labels",
]

#: Longest label kept (file systems limit names to 255 bytes; BIDS names hold several labels).
MAX_LABEL_LENGTH = 64

_ENTITY = re.compile(r"^([a-zA-Z0-9]+)-([a-zA-Z0-9]+)$")
_EXTENSIONS = (".nii.gz", ".nii", ".json", ".tsv", ".csv", ".mha", ".nrrd")


class UnsafePathError(ValueError):
    """A path the batch was about to write lies outside the output folder."""


def sanitize_label(raw: str, *, prefix: str | None = "sub") -> str:
    """Reduce ``raw`` to a BIDS label: ASCII letters and digits only.

    A leading ``sub-`` (or ``ses-`` with ``prefix="ses"``) is dropped first; accents are
    folded to ASCII; every other character (``/``, ``\\``, ``.``, ``-``, ``_``, spaces) is
    removed. The result is cut to :data:`MAX_LABEL_LENGTH` characters.

    Parameters
    ----------
    raw : str
        The label as found (file or folder name, DICOM tag, pattern match).
    prefix : str or None
        BIDS entity whose ``<prefix>-`` is stripped from the start of ``raw``.

    Returns
    -------
    str
        The label; ``""`` when nothing usable is left (the caller decides what to do).

    Examples
    --------
    >>> sanitize_label("..\\\\..\\\\Windows"), sanitize_label("Müller_03"), sanitize_label("...")
    ('Windows', 'Muller03', '')
    >>> sanitize_label("ses-pre", prefix="ses")
    'pre'
    """
    text = str(raw).strip()
    if prefix and text.lower().startswith(f"{prefix}-"):
        text = text[len(prefix) + 1 :]
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9]", "", text)[:MAX_LABEL_LENGTH]


def unique_labels(raws: Iterable[str], *, prefix: str | None = "sub") -> dict[str, str]:
    """Sanitised label of each raw label, made unique.

    Two raw labels that sanitise to the same text (``"a-1"`` and ``"a_1"``) both get a short
    hash of their raw text appended, so neither overwrites the other and the mapping does not
    depend on the order they were found in. A raw label with nothing usable becomes
    ``"x" + hash``.

    Examples
    --------
    >>> labels = unique_labels(["a-1", "a_1", "b"])
    >>> labels["b"], labels["a-1"] != labels["a_1"], labels["a-1"].startswith("a1")
    ('b', True, True)
    """
    raws = list(dict.fromkeys(raws))
    clean = {raw: sanitize_label(raw, prefix=prefix) for raw in raws}
    counts: dict[str, int] = {}
    for label in clean.values():
        counts[label] = counts.get(label, 0) + 1
    result = {}
    for raw, label in clean.items():
        if not label or counts[label] > 1:
            digest = hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:6]
            label = f"{label or 'x'}{digest}"
        result[raw] = label
    return result


def bids_prefix(subject: str, session: str | None) -> str:
    """``sub-<subject>[_ses-<session>]``, the start of every output file name."""
    return f"sub-{subject}" + (f"_ses-{session}" if session else "")


@dataclass(frozen=True)
class BidsName:
    """The parts of a BIDS file name: key-value entities in order, suffix and extension."""

    entities: dict[str, str]
    suffix: str
    extension: str

    def get(self, key: str) -> str | None:
        """Value of entity ``key``, or None."""
        return self.entities.get(key)


def parse_bids_name(name: str) -> BidsName | None:
    """Split a BIDS file name into entities, suffix and extension; None if it is not one.

    Examples
    --------
    >>> parse_bids_name("sub-01_T1w.nii").suffix
    'T1w'
    >>> parse_bids_name("t1.nii.gz") is None, parse_bids_name("sub-01_bad_T1w.nii") is None
    (True, True)
    """
    lowered = name.lower()
    extension = next((e for e in _EXTENSIONS if lowered.endswith(e)), "")
    if not extension:
        return None
    parts = name[: -len(extension)].split("_")
    if len(parts) < 2:
        return None
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        match = _ENTITY.match(part)
        if match is None:
            return None
        entities[match.group(1)] = match.group(2)
    if "sub" not in entities or not re.fullmatch(r"[a-zA-Z0-9]+", parts[-1]):
        return None
    return BidsName(entities=entities, suffix=parts[-1], extension=extension)


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root/parts...``, refused unless it resolves to a path inside ``root``.

    Raises
    ------
    UnsafePathError
        A part is absolute, holds ``..`` or a symbolic link leads out of ``root``.

    Examples
    --------
    >>> inside("/out", "sub-01", "anat").as_posix()
    '/out/sub-01/anat'
    >>> inside("/out", "../etc")
    Traceback (most recent call last):
    ...
    bmetoolkit.batch.naming.UnsafePathError: ../etc leads outside /out
    """
    base = Path(root)
    for part in parts:
        if os.path.isabs(part) or ".." in Path(part).parts:
            raise UnsafePathError(f"{part} leads outside {base}")
    candidate = base.joinpath(*parts)
    resolved_root = base.resolve()
    resolved = candidate.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise UnsafePathError(f"{Path(*parts)} leads outside {base}")
    return candidate
