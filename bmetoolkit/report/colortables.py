"""Colour tables for the label maps bmetoolkit writes: 3D Slicer, ITK-SNAP and BIDS.

Each label map (``bme_mask``, ``modic_map``, ``vertebrae``, ``lesion_labels``) has one
:class:`LabelTable` per subject (:func:`subject_label_tables`: the fixed BME and Modic tables,
this subject's bodies and lesions); it is written as

- a 3D Slicer colour table (``.ctbl``): ``index name R G B A`` per line, 0-255, names without
  spaces (Slicer splits on white space);
- an ITK-SNAP label description file (``.txt``): ``IDX -R- -G- -B- -A-- VIS MSH "LABEL"``
  with alpha 0-1 and the usual comment header;
- a BIDS segmentation table (``*_dseg.tsv``): ``index``, ``name``, ``abbreviation`` and
  ``color`` (``#rrggbb``) columns.

Colours are colour-blind safe: the Okabe-Ito palette (Okabe & Ito 2008), whose eight colours
stay distinct under the common colour-vision deficiencies. Modic types get the three most
separable of them (type I vermillion, type II yellow, type III blue), and adjacent vertebrae
never share a colour. Writers are atomic (:func:`bmetoolkit.io.write_text`); readers parse
the files back.

Examples
--------
>>> table = LABEL_TABLES["modic_map"]
>>> [(e.index, e.abbreviation) for e in table.entries]
[(1, 'MC1'), (2, 'MC2'), (3, 'MC3')]
>>> print(slicer_ctbl_text(table).splitlines()[2])
0 background 0 0 0 0
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmetoolkit.io import write_text
from bmetoolkit.spine.labels import VERSE_LEVELS

__all__ = [
    "LABEL_TABLES",
    "OKABE_ITO",
    "LabelEntry",
    "LabelTable",
    "bone_label_table",
    "dseg_tsv_text",
    "itksnap_text",
    "read_dseg_tsv",
    "read_itksnap_labels",
    "read_slicer_ctbl",
    "slicer_ctbl_text",
    "subject_label_tables",
    "table_stem",
    "write_color_tables",
]

RGB = tuple[int, int, int]

#: The Okabe-Ito colour-blind-safe palette (black left out: it is the background).
OKABE_ITO: dict[str, RGB] = {
    "orange": (230, 159, 0),
    "sky_blue": (86, 180, 233),
    "bluish_green": (0, 158, 115),
    "yellow": (240, 228, 66),
    "blue": (0, 114, 178),
    "vermillion": (213, 94, 0),
    "reddish_purple": (204, 121, 167),
}


@dataclass(frozen=True)
class LabelEntry:
    """One label value of a map.

    Parameters
    ----------
    index : int
        Voxel value (> 0; 0 is the background of every map).
    name : str
        Human-readable name (``"Modic type I"``).
    abbreviation : str
        Short name without spaces (``"MC1"``, ``"L4"``).
    rgb : tuple of 3 ints
        Colour, each component 0-255.
    """

    index: int
    name: str
    abbreviation: str
    rgb: RGB

    @property
    def hex(self) -> str:
        """The colour as ``#rrggbb``."""
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


@dataclass(frozen=True)
class LabelTable:
    """The labels of one map, background excluded.

    Parameters
    ----------
    map_name : str
        Name of the label map (``"modic_map"``), used for file names.
    entries : tuple of LabelEntry
        The labels, in increasing index order.
    """

    map_name: str
    entries: tuple[LabelEntry, ...]

    def __post_init__(self) -> None:
        indices = [e.index for e in self.entries]
        if indices != sorted(set(indices)) or (indices and indices[0] < 1):
            raise ValueError(f"{self.map_name}: label indices must be unique, sorted and > 0")


def _vertebra_table() -> LabelTable:
    colours = list(OKABE_ITO.values())
    # Cranio-caudal order (T13 sits between T12 and L1), so neighbours differ in colour.
    ordered = sorted(VERSE_LEVELS.items(), key=lambda item: {28: 19.5}.get(item[0], item[0]))
    by_index = {
        index: LabelEntry(index, f"vertebra {name}", name, colours[position % len(colours)])
        for position, (index, name) in enumerate(ordered)
    }
    return LabelTable("vertebrae", tuple(by_index[i] for i in sorted(by_index)))


def bone_label_table(names: Mapping[int, str]) -> LabelTable:
    """The colour table of a bone mask (``bones``): the bones' ids and names.

    >>> [e.abbreviation for e in bone_label_table({2: "tibia", 1: "femur left"}).entries]
    ['femur_left', 'tibia']
    """
    colours = list(OKABE_ITO.values())
    entries = [
        LabelEntry(index, name, _no_spaces(name), colours[position % len(colours)])
        for position, (index, name) in enumerate(sorted(names.items()))
    ]
    return LabelTable("bones", tuple(entries))


#: Colour table of every label map bmetoolkit writes, by map name.
LABEL_TABLES: dict[str, LabelTable] = {
    "bme_mask": LabelTable(
        "bme_mask", (LabelEntry(1, "bone marrow edema", "BME", OKABE_ITO["orange"]),)
    ),
    "modic_map": LabelTable(
        "modic_map",
        (
            LabelEntry(1, "Modic type I", "MC1", OKABE_ITO["vermillion"]),
            LabelEntry(2, "Modic type II", "MC2", OKABE_ITO["yellow"]),
            LabelEntry(3, "Modic type III", "MC3", OKABE_ITO["blue"]),
        ),
    ),
    "vertebrae": _vertebra_table(),
}


def subject_label_tables(report: Mapping[str, Any]) -> dict[str, LabelTable]:
    """The :class:`LabelTable` of each label map of one subject, from its report.

    BME and Modic maps use the fixed tables of :data:`LABEL_TABLES`. The bones table lists
    the bones of an analysis with bone masks (``report["labels"]["bones"]``). The vertebrae
    table lists the bodies of this subject (``report["labels"]["bodies"]``): VerSe names when
    the levels are known, ``vertebral body N`` (cranial to caudal) when they are not. The
    lesion table lists this subject's lesion numbers with their finding and level.

    Examples
    --------
    >>> report = {"labels": {"bodies": {"20": "L1", "1": None}},
    ...           "lesions": [{"lesion": 1, "finding": "BME", "level": "L1"}]}
    >>> tables = subject_label_tables(report)
    >>> [(e.index, e.abbreviation) for e in tables["vertebrae"].entries]
    [(1, 'B2'), (20, 'L1')]
    >>> tables["lesion_labels"].entries[0].name
    'lesion 1: BME L1'
    """
    colours = list(OKABE_ITO.values())
    verse = {e.index: e for e in LABEL_TABLES["vertebrae"].entries}
    bodies = (report.get("labels") or {}).get("bodies")
    if bodies is None:
        vertebrae = LABEL_TABLES["vertebrae"]
    else:
        entries = []
        for position, (index, level) in enumerate(bodies.items(), start=1):
            number = int(index)
            if level is not None and number in verse and verse[number].abbreviation == level:
                entries.append(verse[number])
            else:
                colour = colours[position % len(colours)]
                entries.append(
                    LabelEntry(number, f"vertebral body {position}", f"B{position}", colour)
                )
        vertebrae = LabelTable("vertebrae", tuple(sorted(entries, key=lambda e: e.index)))
    lesions = []
    for row in report.get("lesions") or []:
        number = int(row["lesion"])
        place = ("finding", "level", "bone")
        where = " ".join(str(row.get(k)) for k in place if row.get(k))
        name = f"lesion {number}" + (f": {where}" if where else "")
        lesions.append(LabelEntry(number, name, f"lesion{number}", colours[number % len(colours)]))
    bones = (report.get("labels") or {}).get("bones") or {}
    return {
        "bme_mask": LABEL_TABLES["bme_mask"],
        "modic_map": LABEL_TABLES["modic_map"],
        "vertebrae": vertebrae,
        "bones": bone_label_table({int(k): v for k, v in bones.items()}),
        "lesion_labels": LabelTable("lesion_labels", tuple(sorted(lesions, key=lambda e: e.index))),
    }


def _no_spaces(name: str) -> str:
    return "_".join(name.split())


def slicer_ctbl_text(table: LabelTable) -> str:
    """The table as a 3D Slicer colour table (``index name R G B A``, background first)."""
    lines = [
        f"# Color table file {table.map_name}.ctbl (bmetoolkit)",
        f"# {len(table.entries) + 1} values",
        "0 background 0 0 0 0",
    ]
    lines += [
        f"{e.index} {_no_spaces(e.name)} {e.rgb[0]} {e.rgb[1]} {e.rgb[2]} 255"
        for e in table.entries
    ]
    return "\n".join(lines) + "\n"


_ITKSNAP_HEADER = """\
################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    MSH:   Label mesh visibility (0 or 1)
#  LABEL:   Label description
################################################
"""


def itksnap_text(table: LabelTable) -> str:
    """The table as an ITK-SNAP label description file (``Clear Label`` 0 first)."""
    rows = [(0, (0, 0, 0), 0, 0, 0, "Clear Label")]
    rows += [(e.index, e.rgb, 1, 1, 1, e.name) for e in table.entries]
    lines = [
        f'{index:5d} {r:5d} {g:4d} {b:4d} {alpha:8d} {vis:2d} {msh:2d}    "{name}"'
        for index, (r, g, b), alpha, vis, msh, name in rows
    ]
    return _ITKSNAP_HEADER + "\n".join(lines) + "\n"


def dseg_tsv_text(table: LabelTable) -> str:
    """The table as a BIDS ``*_dseg.tsv`` (``index``, ``name``, ``abbreviation``, ``color``)."""
    lines = ["index\tname\tabbreviation\tcolor"]
    lines += [f"{e.index}\t{e.name}\t{e.abbreviation}\t{e.hex}" for e in table.entries]
    return "\n".join(lines) + "\n"


def write_color_tables(
    table: LabelTable | str, folder: str | os.PathLike, *, stem: str | None = None
) -> dict[str, Path]:
    """Write the Slicer, ITK-SNAP and BIDS tables of one label map into ``folder``.

    Parameters
    ----------
    table : LabelTable or str
        The table, or the name of a map in :data:`LABEL_TABLES`.
    folder : str or os.PathLike
        Output folder (created when needed).
    stem : str, optional
        File name stem; the map name by default. For BIDS derivatives give the stem of the
        segmentation, e.g. ``"sub-01_desc-modic"``, to get ``sub-01_desc-modic_dseg.tsv``.

    Returns
    -------
    dict of str to Path
        ``"slicer"`` (``<stem>.ctbl``), ``"itksnap"`` (``<stem>_itksnap.txt``) and ``"bids"``
        (``<stem>_dseg.tsv``).

    Examples
    --------
    >>> import tempfile
    >>> paths = write_color_tables("bme_mask", tempfile.mkdtemp())
    >>> sorted(p.name for p in paths.values())
    ['bme_mask.ctbl', 'bme_mask_dseg.tsv', 'bme_mask_itksnap.txt']
    """
    if isinstance(table, str):
        try:
            table = LABEL_TABLES[table]
        except KeyError:
            raise ValueError(
                f"no colour table for {table!r}; known maps: {sorted(LABEL_TABLES)}"
            ) from None
    target = Path(folder)
    stem = stem or table.map_name
    return {
        "slicer": write_text(target / f"{stem}.ctbl", slicer_ctbl_text(table)),
        "itksnap": write_text(target / f"{stem}_itksnap.txt", itksnap_text(table)),
        "bids": write_text(target / f"{stem}_dseg.tsv", dseg_tsv_text(table)),
    }


def _content_lines(path: str | os.PathLike) -> list[str]:
    text = Path(path).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def read_slicer_ctbl(path: str | os.PathLike) -> dict[int, tuple[str, tuple[int, int, int, int]]]:
    """Parse a Slicer ``.ctbl`` into ``{index: (name, (R, G, B, A))}``."""
    entries = {}
    for line in _content_lines(path):
        index, name, *rgba = line.split()
        if len(rgba) != 4:
            raise ValueError(f"{path}: expected 'index name R G B A', got {line!r}")
        entries[int(index)] = (name, tuple(int(v) for v in rgba))
    return entries


def read_itksnap_labels(
    path: str | os.PathLike,
) -> dict[int, tuple[str, tuple[int, int, int], float, int, int]]:
    """Parse an ITK-SNAP label file into ``{index: (label, (R, G, B), alpha, vis, msh)}``."""
    entries = {}
    for line in _content_lines(path):
        fields = shlex.split(line)
        if len(fields) != 8:
            raise ValueError(f"{path}: expected 8 fields (IDX R G B A VIS MSH LABEL), got {line!r}")
        index, r, g, b, alpha, vis, msh, label = fields
        entries[int(index)] = (label, (int(r), int(g), int(b)), float(alpha), int(vis), int(msh))
    return entries


def read_dseg_tsv(path: str | os.PathLike) -> dict[int, dict[str, str]]:
    """Parse a BIDS ``*_dseg.tsv`` into ``{index: {column: value}}`` (index required)."""
    header, *rows = Path(path).read_text(encoding="utf-8").splitlines()
    columns = header.split("\t")
    if columns[:2] != ["index", "name"]:
        raise ValueError(f"{path}: a dseg.tsv starts with 'index' and 'name' columns")
    table = {}
    for row in rows:
        values = dict(zip(columns, row.split("\t"), strict=True))
        table[int(values["index"])] = values
    return table


def table_stem(nifti_name: str) -> str:
    """Stem of the colour tables of a ``*_dseg.nii.gz`` (``_dseg.tsv`` is appended to it).

    Examples
    --------
    >>> table_stem("sub-01_desc-modic_dseg.nii.gz")
    'sub-01_desc-modic'
    """
    return nifti_name.removesuffix(".gz").removesuffix(".nii").removesuffix("_dseg")
