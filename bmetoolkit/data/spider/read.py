"""Read a SPIDER folder: its series and masks, the radiologists' per-disc gradings, levels.

Layout (as published; names checked against public users of the dataset)::

    overview.csv                 one row per series (new_file_name, subset, scanner...)
    radiological_gradings.csv    one row per patient x disc: Patient, IVD label, Modic,
                                 UP endplate, LOW endplate, Spondylolisthesis,
                                 Disc herniation, Disc narrowing, Disc bulging, Pfirrman grade
    images.zip -> images/<patient>_<t1|t2|t2_SPACE>.mha
    masks.zip  -> masks/<patient>_<t1|t2|t2_SPACE>.mha

Mask values: vertebrae ``1..n`` counted from the bottom (1 = L5, assuming five lumbar
vertebrae; a transitional anatomy shifts every name), ``100`` the spinal canal, discs
``201..`` counted from the bottom (201 = L5-S1). The sacrum has no vertebra label. The
gradings' ``IVD label`` uses the same count (1 = L5-S1). ``Modic`` is 0 (none), 1, 2 or 3.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bmetoolkit.errors import BmetoolkitError, InputNotFoundError
from bmetoolkit.modic import MODIC_TYPES as ANALYSIS_MODIC_TYPES

if TYPE_CHECKING:
    import pandas as pd

    from bmetoolkit.spine.labels import VertebraLabels
    from bmetoolkit.volume import Volume

__all__ = [
    "GRADING_COLUMNS",
    "MODIC_TYPES",
    "SPIDER_LEVELS",
    "SpiderCase",
    "disc_name",
    "find_cases",
    "modic_category",
    "read_gradings",
    "spider_level",
    "spider_vertebrae",
]

#: Modic categories of SPIDER's gradings, in confusion-matrix order: "none" and the types
#: of :data:`bmetoolkit.modic.MODIC_TYPES`.
MODIC_TYPES = ("none", *ANALYSIS_MODIC_TYPES)
#: Lowest labelled vertebra of a SPIDER mask and the levels above it (label 1, 2, ...).
SPIDER_LEVELS = ("L5", "L4", "L3", "L2", "L1", "T12", "T11", "T10", "T9", "T8", "T7", "T6")
#: The columns of ``radiological_gradings.csv`` that are read, by their meaning here.
GRADING_COLUMNS = {"patient": "Patient", "ivd_label": "IVD label", "modic": "Modic"}
_CASE_NAME = re.compile(r"^(?P<patient>\d+)_(?P<sequence>t1|t2|t2_SPACE)\.mha$")


@dataclass(frozen=True)
class SpiderCase:
    """One SPIDER series: patient, sequence, image and mask files."""

    patient: int
    sequence: str
    image: Path
    mask: Path


def find_cases(root: str | os.PathLike) -> list[SpiderCase]:
    """Every series under ``root/images`` that has its mask in ``root/masks``.

    Raises
    ------
    InputNotFoundError
        ``root/images`` is missing (not a SPIDER folder, or not extracted yet).
    """
    folder = Path(root)
    images = folder / "images"
    if not images.is_dir():
        raise InputNotFoundError(
            "has no images/ folder",
            path=folder,
            hint="download and extract SPIDER with `bmetoolkit spider fetch` (or unzip "
            "images.zip and masks.zip there)",
        )
    cases = []
    for path in sorted(images.iterdir()):
        match = _CASE_NAME.match(path.name)
        mask = folder / "masks" / path.name
        if match and mask.exists():
            cases.append(SpiderCase(int(match["patient"]), match["sequence"], path, mask))
    return sorted(cases, key=lambda c: (c.patient, c.sequence))


def spider_level(label: int) -> str:
    """Level name of a SPIDER vertebra label (1 = L5, counted upwards).

    >>> spider_level(1), spider_level(5), spider_level(6)
    ('L5', 'L1', 'T12')
    """
    if not 1 <= int(label) <= len(SPIDER_LEVELS):
        raise ValueError(f"SPIDER vertebra label {label} is outside 1..{len(SPIDER_LEVELS)}")
    return SPIDER_LEVELS[int(label) - 1]


def disc_name(ivd_label: int) -> tuple[str, str]:
    """(upper, lower) vertebra of a SPIDER disc label (1 = L5-S1).

    >>> disc_name(1), disc_name(2)
    (('L5', 'S1'), ('L4', 'L5'))
    """
    label = int(ivd_label)
    return spider_level(label), ("S1" if label == 1 else spider_level(label - 1))


def modic_category(value: Any) -> str:
    """A SPIDER Modic grade (0-3, I-III, a mixed type by its dominant one) as a category.

    >>> modic_category(2), modic_category("1.0"), modic_category("II/I"), modic_category("")
    ('II', 'I', 'II', 'none')
    """
    text = str(value).strip().upper()
    roman = {"0": "none", "1": "I", "2": "II", "3": "III", "": "none", "NONE": "none"}
    if text.endswith(".0"):
        text = text[:-2]
    primary = re.split(r"[/+,]", text)[0].strip()  # a mixed type counts as its dominant one
    category = roman.get(primary, primary)
    if category not in MODIC_TYPES:
        raise ValueError(f"unrecognised Modic grade {value!r}; expected 0-3 or I-III")
    return category


def read_gradings(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``radiological_gradings.csv`` as one row per patient and disc.

    Returns
    -------
    pandas.DataFrame
        ``patient``, ``ivd_label``, ``disc`` (``"L4-L5"``), ``upper_level``,
        ``lower_level``, ``modic_type`` (``'none'``, ``'I'``, ``'II'``, ``'III'``), then the
        original columns unchanged.
    """
    import pandas as pd

    source = Path(path)
    if not source.is_file():
        raise InputNotFoundError(
            "does not exist", path=source, hint="fetch SPIDER with `bmetoolkit spider fetch`"
        )
    raw = pd.read_csv(source)
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in GRADING_COLUMNS.values() if c not in raw.columns]
    if missing:
        raise BmetoolkitError(
            f"lacks the column(s) {missing}; it has {list(raw.columns)}",
            path=source,
            hint="is this SPIDER's radiological_gradings.csv?",
        )
    raw = raw[raw[GRADING_COLUMNS["ivd_label"]] >= 1].reset_index(drop=True)
    discs = [disc_name(v) for v in raw[GRADING_COLUMNS["ivd_label"]]]
    table = pd.DataFrame(
        {
            "patient": raw[GRADING_COLUMNS["patient"]].astype(int),
            "ivd_label": raw[GRADING_COLUMNS["ivd_label"]].astype(int),
            "disc": [f"{upper}-{lower}" for upper, lower in discs],
            "upper_level": [upper for upper, _ in discs],
            "lower_level": [lower for _, lower in discs],
            "modic_type": [modic_category(v) for v in raw[GRADING_COLUMNS["modic"]]],
        }
    )
    return pd.concat([table, raw], axis=1)


def spider_vertebrae(mask: Volume) -> VertebraLabels:
    """Vertebral labels of a SPIDER mask, renumbered to VerSe ids (1 = L5 -> 24, ...).

    Discs (201+) and the canal (100) are dropped. SPIDER segments whole vertebrae (body and
    posterior elements); the analysis finds the body within them.
    """
    from bmetoolkit.io import label_dtype
    from bmetoolkit.spine.labels import VertebraLabels, verse_id

    data = np.asarray(mask.data)
    bodies = np.zeros(data.shape, np.uint8)
    levels: dict[int, str | None] = {}
    present = sorted(int(v) for v in np.unique(data) if 1 <= v <= len(SPIDER_LEVELS))
    for label in reversed(present):  # cranial to caudal
        name = spider_level(label)
        bodies[data == label] = verse_id(name)
        levels[verse_id(name)] = name
    volume = mask.with_data(bodies.astype(label_dtype(bodies)), kind="label")
    return VertebraLabels(
        bodies=volume,
        levels=levels,
        convention="spider",
        provenance={"source": mask.source, "levels": "SPIDER label 1 = L5, counted upwards"},
    )
