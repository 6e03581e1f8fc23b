"""Marrow masks of any bone, and their names.

A user brings bone masks as one label map (binary, or one id per bone) or as a folder of
one mask file per bone (what TotalSegmentator writes by default); :func:`bone_labels` puts
them on the study grid (nearest neighbour) and names every bone:

1. from a **table**: a BIDS ``dseg.tsv`` (columns ``index`` and ``name``), a two-column TSV
   (id, name; a header row is optional) or a JSON mapping (``{"1": "femur"}``, or
   ``{"femur": 1}``); a table beside the mask (``mask.tsv`` or ``mask_dseg.tsv`` for
   ``mask.nii.gz``) is used when none is given;
2. from a **convention**: the bone classes of TotalSegmentator's tasks (``total``,
   ``total_mr``, ``appendicular_bones``, ``appendicular_bones_mr``, ``vertebrae_mr``);
   classes that are not bone (organs, muscles, vessels) are left out of the marrow;
3. from the **file names** of a folder of masks (TotalSegmentator's ``femur_left.nii.gz``...:
   when some are bone classes, only those are kept);
4. otherwise ``bone`` for a binary mask and ``bone 1..n`` for a multi-label one.

An id the table or convention does not know is refused (:class:`MarrowLabelError`), as are
probability maps, more than :data:`MAX_BONES` bones, and tables that give one id or one name
twice.

Examples
--------
>>> import numpy as np
>>> from bmetoolkit.volume import Volume
>>> mask = np.zeros((10, 10, 2), np.uint8)
>>> mask[:5], mask[5:] = 36, 48  # total_mr: femur_left and iliopsoas_left
>>> bones = bone_labels(Volume(mask, np.eye(4), kind="label"), table="total_mr")
>>> bones.names, bones.naming
({36: 'femur_left'}, 'TotalSegmentator total_mr')
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import BmetoolkitError, MarrowLabelError, NoOverlapError
from bmetoolkit.volume import Grid, Volume, occupied_box

__all__ = [
    "CONVENTIONS",
    "MAX_BONES",
    "BoneLabels",
    "bone_ids",
    "bone_labels",
    "read_label_table",
    "sidecar_table",
]

#: Most bones one mask may hold (uint8 ids).
MAX_BONES = 255
#: Fewest voxels a bone needs on the study grid to be analysed.
MIN_BONE_VOXELS = 50
_MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def _sided(first: int, *names: str) -> dict[int, str]:
    """Consecutive ids for ``name_left, name_right`` of each name."""
    sides = [f"{name}_{side}" for name in names for side in ("left", "right")]
    return dict(enumerate(sides, start=first))


_VERTEBRAE_S1_TO_C1 = [
    "vertebrae_S1",
    *(f"vertebrae_L{n}" for n in range(5, 0, -1)),
    *(f"vertebrae_T{n}" for n in range(12, 0, -1)),
    *(f"vertebrae_C{n}" for n in range(7, 0, -1)),
]
_TOTAL_BONES = {
    25: "sacrum",
    **dict(enumerate(_VERTEBRAE_S1_TO_C1, start=26)),
    **_sided(69, "humerus", "scapula", "clavicula", "femur", "hip"),
    91: "skull",
    **{92 + n: f"rib_left_{n + 1}" for n in range(12)},
    **{104 + n: f"rib_right_{n + 1}" for n in range(12)},
    116: "sternum",
}
_APPENDICULAR = ["patella", "tibia", "fibula", "tarsal", "metatarsal", "phalanges_feet"]
_APPENDICULAR += ["ulna", "radius", "carpal", "metacarpal", "phalanges_hand"]

#: Bone classes (id -> name) of TotalSegmentator tasks, and how many ids each task has (ids
#: up to that count that are not listed are other tissues, left out of the marrow).
CONVENTIONS: dict[str, tuple[dict[int, str], int]] = {
    "total": (_TOTAL_BONES, 117),
    "total_mr": (
        {18: "sacrum", 19: "vertebrae", **_sided(30, "humerus", "scapula", "clavicula")}
        | _sided(36, "femur", "hip"),
        50,
    ),
    "appendicular_bones": (dict(enumerate(_APPENDICULAR, start=1)), 11),
    "appendicular_bones_mr": (dict(enumerate(_APPENDICULAR[:8], start=1)), 8),
    "vertebrae_mr": (
        {1: "sacrum", **dict(enumerate(_VERTEBRAE_S1_TO_C1[1:], start=2))},
        25,
    ),
}
_KNOWN_BONE_NAMES = {name for bones, _ in CONVENTIONS.values() for name in bones.values()}


@dataclass(frozen=True)
class BoneLabels:
    """Bone masks on the study grid, with a name per bone.

    Attributes
    ----------
    labels : Volume
        Label map on the study grid: the user's ids, 0 outside bone (ids of other tissues
        of a convention are 0 too).
    names : dict of int to str
        Id -> bone name, in id order, for every bone present on the grid.
    naming : str
        Where the names came from (a table file, a convention, file names, none).
    notes : tuple of str
        Bones left out and why.
    """

    labels: Volume
    names: dict[int, str]
    naming: str
    notes: tuple[str, ...] = ()

    @property
    def source(self) -> str | None:
        """The mask file or folder."""
        return self.labels.source


def bone_labels(
    mask: str | os.PathLike | Volume,
    grid: Grid | None = None,
    *,
    table: str | os.PathLike | Mapping | None = None,
) -> BoneLabels:
    """Load bone masks, put them on ``grid`` and name each bone.

    Parameters
    ----------
    mask : path or Volume
        A label map (NIfTI, NRRD, DICOM SEG-free label image; binary or one id per bone,
        on any grid) or a folder holding one mask file per bone.
    grid : Grid, optional
        The study grid; the mask's own grid when omitted.
    table : path, mapping or str, optional
        Names of the ids: a ``dseg.tsv``/TSV/JSON file, a mapping, or a convention name
        (:data:`CONVENTIONS`).

    Returns
    -------
    BoneLabels

    Raises
    ------
    MarrowLabelError
        A probability map, more than :data:`MAX_BONES` bones, an id the names do not know,
        a table naming an id or a bone twice, no bone left on the grid.
    NoOverlapError
        No bone voxel lies in the images' field of view.
    """
    if isinstance(mask, str | os.PathLike) and Path(mask).is_dir():
        volume, names, naming, notes = _from_folder(Path(mask), grid)
        if table is not None:
            notes = [*notes, "a folder of masks is named by its file names: the table of "
                     "names given was not used"]  # fmt: skip
    else:
        volume = _label_volume(mask)
        names, naming, notes = _names(volume, table)
    source = volume.source or "bone mask"
    if grid is not None and not volume.grid.same_as(grid):
        from bmetoolkit.resample import resample_with_coverage

        volume, _ = resample_with_coverage(volume, grid)
    data = np.asarray(volume.data)
    size = max(int(data.max(initial=0)), *names) + 1
    bones = occupied_box(data > 0)  # the counts of the ids (not of 0) on the bones' box
    counts = np.bincount(data[bones].ravel(), minlength=size)
    present, notes = {}, list(notes)
    for number, name in names.items():
        if counts[number] >= MIN_BONE_VOXELS:
            present[number] = name
        elif counts[number] or grid is not None:
            notes.append(
                f"{name} (id {number}) has {counts[number]} voxels in the images' field of "
                f"view (at least {MIN_BONE_VOXELS} are needed): not analysed"
            )
    if not present:
        raise NoOverlapError(
            "no bone of the mask lies in the images' field of view (or every bone is under "
            f"{MIN_BONE_VOXELS} voxels there)",
            path=source,
            hint="check that the mask belongs to this scan (same subject and session, "
            "exported with its scanner coordinates)",
        )
    if set(present) != {int(i) for i in np.flatnonzero(counts[1:]) + 1}:
        keep = np.zeros(size, data.dtype)
        keep[list(present)] = list(present)
        data = keep[data]
    return BoneLabels(
        labels=Volume(data, volume.affine, kind="label", source=source),
        names=present,
        naming=naming,
        notes=tuple(notes),
    )


def bone_ids(labels: NDArray) -> NDArray:
    """The non-zero ids of a label array, sorted (as :func:`numpy.unique`, on the box of its
    non-zero voxels: bones fill a small part of a scan).

    >>> bone_ids(np.array([[0, 3, 0], [1, 3, 0]], np.uint8)).tolist()
    [1, 3]
    """
    data = np.asarray(labels)
    values = data[occupied_box(data != 0)]
    small = values.dtype.kind in "ui" and values.dtype.itemsize <= 2
    if small and values.size and (values.dtype.kind == "u" or values.min() >= 0):
        # small non-negative ids: counted, not sorted (the same ids, in order)
        ids = np.flatnonzero(np.bincount(values.ravel())).astype(values.dtype)
    else:
        ids = np.unique(values)
    return ids[ids > 0]


def _label_volume(mask: str | os.PathLike | Volume) -> Volume:
    from bmetoolkit.io import as_volume

    try:
        if isinstance(mask, Volume) and mask.kind != "label":
            raise MarrowLabelError(
                "was given as a bone mask but is an intensity image",
                path=mask.source,
                hint="pass a label map (Volume(..., kind='label'))",
            )
        volume = as_volume(mask, kind="label")
    except MarrowLabelError:
        raise
    except BmetoolkitError as exc:
        if "non-integer" not in exc.message:
            raise
        raise MarrowLabelError(
            "holds non-integer values: a bone mask needs one integer id per voxel",
            path=exc.paths or None,
            hint="a probability map must be thresholded first (e.g. mask = prob >= 0.5)",
        ) from None
    data = np.asarray(volume.data)
    if data.dtype == np.bool_:
        volume = volume.with_data(data.astype(np.uint8), kind="label")
    elif data.size and data.min() < 0:
        raise MarrowLabelError(
            "holds negative ids",
            path=volume.source,
            hint="bone ids are positive integers (0 outside bone)",
        )
    ids = bone_ids(volume.data)
    if ids.size > MAX_BONES:
        raise MarrowLabelError(
            f"holds {ids.size} labels; at most {MAX_BONES} bones can be analysed at once",
            path=volume.source,
            hint="is this an intensity image given as the mask? Otherwise keep only the "
            "bones to analyse",
        )
    if ids.size == 0:
        raise MarrowLabelError(
            "holds no bone (every voxel is 0)", path=volume.source, hint="pass a non-empty mask"
        )
    return volume


def _names(volume: Volume, table: str | os.PathLike | Mapping | None) -> tuple:
    """Id -> name for the ids of ``volume``, where the names came from, and notes."""
    ids = [int(i) for i in bone_ids(volume.data)]
    notes: list[str] = []
    if table is None:
        table = sidecar_table(volume.source)
    if isinstance(table, str) and table in CONVENTIONS:
        bones, n_classes = CONVENTIONS[table]
        unknown = [i for i in ids if i > n_classes]
        if unknown:
            raise MarrowLabelError(
                f"holds ids {_listed(unknown)}, which TotalSegmentator {table} does not have "
                f"(its classes are 1-{n_classes})",
                path=volume.source,
                hint="name the convention the mask was made with, or give a table of names",
            )
        others = [i for i in ids if i not in bones]
        if others:
            notes.append(
                f"{len(others)} classes of the mask are not bone in TotalSegmentator {table} "
                f"(ids {_listed(others)}): left out of the marrow"
            )
        return {i: bones[i] for i in ids if i in bones}, f"TotalSegmentator {table}", notes
    if table is not None:
        names = read_label_table(table)
        unknown = [i for i in ids if i not in names]
        if unknown:
            raise MarrowLabelError(
                f"holds ids {_listed(unknown)}, which the table of names does not list",
                path=[p for p in (volume.source, _table_path(table)) if p],
                hint="add them to the table, or remove them from the mask",
            )
        where = _table_path(table) or "the given mapping"
        return {i: names[i] for i in ids}, f"table {where}", notes
    if ids == [1]:
        return {1: "bone"}, "binary mask", notes
    return {i: f"bone {i}" for i in ids}, "unnamed ids", notes


def read_label_table(table: str | os.PathLike | Mapping) -> dict[int, str]:
    """Id -> name from a BIDS ``dseg.tsv``, a two-column TSV, a JSON file or a mapping.

    Id 0 (background) is ignored.

    Raises
    ------
    MarrowLabelError
        The file cannot be read as a table of names, or names an id or a bone twice.

    Examples
    --------
    >>> read_label_table({"1": "femur", "2": "tibia"})
    {1: 'femur', 2: 'tibia'}
    >>> read_label_table({"femur": 1, "tibia": 2})
    {1: 'femur', 2: 'tibia'}
    """
    path = _table_path(table)
    if isinstance(table, Mapping):
        pairs = list(table.items())
    elif str(path).lower().endswith(".json"):
        pairs = _json_pairs(Path(path))
    else:
        pairs = _tsv_pairs(Path(path))
    names: dict[int, str] = {}
    for key, value in pairs:
        number, name = _id_and_name(key, value, path)
        if number == 0:
            continue
        if number in names:
            raise MarrowLabelError(
                f"names id {number} twice ({names[number]!r} and {name!r})",
                path=path,
                hint="give each id one name",
            )
        if name in names.values():
            raise MarrowLabelError(
                f"gives the name {name!r} to two ids",
                path=path,
                hint="give each bone its own name (e.g. femur_left, femur_right)",
            )
        names[number] = name
    if not names:
        raise MarrowLabelError("names no bone", path=path, hint="list id and name per bone")
    return names


def _table_path(table: str | os.PathLike | Mapping) -> str | None:
    if isinstance(table, Mapping):
        return None
    path = Path(table)
    if not path.is_file():
        raise MarrowLabelError(
            f"is neither a table of names nor a known convention ({', '.join(CONVENTIONS)})",
            path=path,
            hint="give a dseg.tsv, a two-column TSV or a JSON mapping of id to name",
        )
    return os.fspath(path)


def _json_pairs(path: Path) -> list[tuple[object, object]]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MarrowLabelError(
            f"cannot be read as JSON ({exc})", path=path, hint="give a mapping of id to name"
        ) from None
    if not isinstance(content, dict):
        raise MarrowLabelError(
            "holds no JSON object", path=path, hint='give a mapping: {"1": "femur"}'
        )
    return list(content.items())


def _tsv_pairs(path: Path) -> list[tuple[object, object]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle, delimiter="\t") if any(row)]
    except (OSError, UnicodeDecodeError) as exc:
        raise MarrowLabelError(
            f"cannot be read ({exc})", path=path, hint="give a tab-separated table"
        ) from None
    if not rows:
        raise MarrowLabelError("is empty", path=path, hint="list id and name per bone")
    header = [cell.strip().lower() for cell in rows[0]]
    if "index" in header and "name" in header:
        first, second = header.index("index"), header.index("name")
        rows = rows[1:]
    else:
        first, second = 0, 1
        if not _is_integer(rows[0][0]):
            rows = rows[1:]
    pairs = []
    for row in rows:
        if len(row) <= max(first, second):
            raise MarrowLabelError(
                f"has a row with fewer than two columns: {row}",
                path=path,
                hint="separate id and name with a tab",
            )
        pairs.append((row[first].strip(), row[second].strip()))
    return pairs


def _id_and_name(key: object, value: object, path: str | None) -> tuple[int, str]:
    if _is_integer(key) and isinstance(value, str):
        return int(str(key)), value.strip()
    if isinstance(key, str) and _is_integer(value):
        return int(str(value)), key.strip()
    raise MarrowLabelError(
        f"pairs {key!r} with {value!r}: each entry needs an integer id and a name",
        path=path,
        hint='e.g. 1<TAB>femur, or {"1": "femur"}',
    )


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().isdigit()


def sidecar_table(source: str | None) -> str | None:
    """A table of names beside the mask file (``mask.tsv`` or ``mask_dseg.tsv``)."""
    if not source or not os.path.isfile(source):
        return None
    stem = _stem(Path(source))
    for candidate in (f"{stem}.tsv", f"{stem}_dseg.tsv"):
        path = Path(source).with_name(candidate)
        if path.is_file():
            return os.fspath(path)
    return None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _MASK_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _from_folder(folder: Path, grid: Grid | None) -> tuple:
    """One mask per file: ids 1..n in name order, named by the file names."""
    from bmetoolkit.io import load
    from bmetoolkit.resample import resample_with_coverage

    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(_MASK_SUFFIXES)
    )
    if not files:
        raise MarrowLabelError(
            "holds no mask file (.nii.gz, .nii, .nrrd, .mha)",
            path=folder,
            hint="give a folder of one mask per bone, or one label map",
        )
    notes = []
    known = [p for p in files if _stem(p) in _KNOWN_BONE_NAMES]
    if known:
        if len(known) < len(files):
            others = len(files) - len(known)
            notes.append(
                f"{others} mask file{'s' * (others != 1)} of {folder} "
                f"{'are' if others != 1 else 'is'} not a TotalSegmentator bone class: left "
                "out of the marrow"
            )
        files = known
    if len(files) > MAX_BONES:
        raise MarrowLabelError(
            f"holds {len(files)} masks; at most {MAX_BONES} bones can be analysed at once",
            path=folder,
            hint="keep only the bones to analyse",
        )
    target = grid
    data = None
    names: dict[int, str] = {}
    affine = None
    for path in files:
        volume = load(path, kind="label")
        if not np.any(np.asarray(volume.data)):  # TotalSegmentator writes empty masks too
            continue
        volume = _label_volume(volume)
        number = len(names) + 1
        if target is None:
            target = volume.grid
        if not volume.grid.same_as(target):
            volume, _ = resample_with_coverage(volume, target)
        if data is None:
            data, affine = np.zeros(target.shape, np.uint8), target.affine
        data[np.asarray(volume.data) > 0] = number
        names[number] = _stem(path)
    if data is None:
        raise MarrowLabelError(
            "holds only empty masks", path=folder, hint="give at least one non-empty bone mask"
        )
    naming = "TotalSegmentator file names" if known else "file names"
    return Volume(data, affine, kind="label", source=os.fspath(folder)), names, naming, notes


def _listed(ids: list[int], most: int = 8) -> str:
    shown = ", ".join(str(i) for i in ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")
