"""The contrast a file's name states (BIDS suffix or loose name), without the header rules.

Kept apart from :mod:`bmetoolkit.pairing.contrast` (the header rules and their ~30
keyword patterns): checking the names of the images given to ``analyze`` needs only this,
and importing it compiles one pattern.
"""

from __future__ import annotations

import os
import re
from os import PathLike
from pathlib import Path
from typing import Literal

__all__ = ["STIR_WORD", "Contrast", "contrast_from_name", "strip_image_suffix"]

Contrast = Literal["T1", "T2", "STIR", "other"]

#: ``stir`` or ``tirm`` starting a word, maybe glued to a plane or T2 prefix (``sagSTIR``,
#: ``t2stir``) and running into letters but not into a number; lower-case text.
STIR_WORD = re.compile(r"(?<![a-z0-9])(?:sag|ax|cor|tra|s|t2|t2w)?(?P<kw>stir|tirm)(?![0-9])")

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".json", ".img", ".hdr")
_LOOSE_NAMES: dict[str, Contrast] = {
    "t1": "T1",
    "t1w": "T1",
    "t2": "T2",
    "t2w": "T2",
    "stir": "STIR",
}


def strip_image_suffix(name: str) -> str:
    """``name`` without its image file suffix (any case).

    >>> strip_image_suffix("sub-01_T1w.NII.GZ")
    'sub-01_T1w'
    """
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def contrast_from_name(path: str | PathLike[str]) -> Contrast | None:
    """Contrast named by a file's BIDS suffix or loose name, or None when it names none.

    BIDS: a ``acq-`` label naming STIR (``acq-stir``, ``acq-sagSTIR``, ``acq-tirm``, any case)
    or a ``_STIR`` suffix gives STIR; otherwise ``_T1w`` gives T1 and ``_T2w`` T2. Loose
    names: the last ``_``/``-``-separated part of the name being ``t1``, ``t1w``, ``t2``,
    ``t2w`` or ``stir`` (any case), e.g. ``t1.nii.gz`` or ``case7-stir.nii.gz``. Other
    suffixes (``_FLAIR``, ``_T2starw``, ``_dwi``) give None.

    Parameters
    ----------
    path : str or os.PathLike
        File name or path (``.nii``, ``.nii.gz``, ``.mha``, ``.nrrd``, ``.json`` ...).

    Returns
    -------
    {'T1', 'T2', 'STIR'} or None

    Examples
    --------
    >>> contrast_from_name("sub-01_ses-1_acq-stir_T2w.nii.gz")
    'STIR'
    >>> contrast_from_name("sub-01_T1w.nii.gz")
    'T1'
    >>> contrast_from_name("data/t2.nii.gz")
    'T2'
    >>> contrast_from_name("sub-01_FLAIR.nii.gz") is None
    True
    """
    stem = strip_image_suffix(Path(os.fspath(path)).name)
    lower = stem.lower()
    for entity in lower.split("_"):
        if entity.startswith("acq-") and STIR_WORD.search(entity[4:]):
            return "STIR"
    last = re.split(r"[_-]", lower)[-1]
    return _LOOSE_NAMES.get(last)
