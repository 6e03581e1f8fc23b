"""SPIDER-layout folders built from phantom studies: the SPIDER pipeline without the data.

Used by ``tests/test_spider.py`` and ``benchmarks/validate_spider.py --phantom-folder``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bmetoolkit.data.spider import MODIC_TYPES, SPIDER_LEVELS, disc_predictions

if TYPE_CHECKING:
    from bmetoolkit.volume import Volume

__all__ = ["spider_mask_from_verse", "write_gradings", "write_mha", "write_phantom_case"]


def write_mha(volume: Volume, path: str | os.PathLike) -> Path:
    """Write a volume as an ITK MetaImage (``.mha``; RAS+ affine converted to ITK's LPS+)."""
    import SimpleITK as sitk

    from bmetoolkit.io import atomic_write
    from bmetoolkit.volume import LPS_TO_RAS

    affine = LPS_TO_RAS @ volume.affine
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(volume.data).T))
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (affine[:3, :3] / spacing).ravel()])
    image.SetOrigin([float(v) for v in affine[:3, 3]])
    target = Path(path)
    with atomic_write(target) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=True)
    return target


def spider_mask_from_verse(vertebrae: Volume) -> Volume:
    """A SPIDER-numbered mask (1 = L5 upwards) from VerSe ids; the sacrum is left out."""
    from bmetoolkit.spine.labels import VERSE_LEVELS

    data = np.asarray(vertebrae.data)
    out = np.zeros(data.shape, np.int16)
    for label, name in enumerate(SPIDER_LEVELS, start=1):
        ids = [i for i, n in VERSE_LEVELS.items() if n == name]
        out[np.isin(data, ids)] = label
    return vertebrae.with_data(out, kind="label")


def write_phantom_case(study: Any, root: str | os.PathLike, patient: int) -> list[dict[str, Any]]:
    """Write a phantom study into ``root`` in SPIDER's layout; return its gradings rows.

    Images ``images/<patient>_t1.mha`` and ``_t2.mha``, masks of each grid in ``masks/``
    (vertebrae only, SPIDER numbering). The gradings rows (SPIDER's columns) give each disc
    the type of its two endplates in the phantom's truth, by :func:`disc_predictions`'s
    rule; append them to ``radiological_gradings.csv`` (see :func:`write_gradings`).
    """
    import pandas as pd

    folder = Path(root)
    for name, image in (("t1", study.t1), ("t2", study.t2)):
        write_mha(image, folder / "images" / f"{patient}_{name}.mha")
        mask = spider_mask_from_verse(study.truth.grid_masks[name]["vertebrae"])
        write_mha(mask, folder / "masks" / f"{patient}_{name}.mha")
    discs = disc_predictions(pd.DataFrame(study.truth.endplates))
    rows = []
    for disc in discs.itertuples():
        if disc.upper_level not in SPIDER_LEVELS:
            continue
        code = MODIC_TYPES.index(disc.predicted)
        rows.append(
            {"Patient": patient, "IVD label": SPIDER_LEVELS.index(disc.upper_level) + 1,
             "Modic": code, "UP endplate": 0, "LOW endplate": 0, "Spondylolisthesis": 0,
             "Disc herniation": 0, "Disc narrowing": 0, "Disc bulging": 0, "Pfirrman grade": 1}
        )  # fmt: skip
    return rows


def write_gradings(rows: Sequence[Mapping[str, Any]], root: str | os.PathLike) -> Path:
    """Write gradings rows as ``root/radiological_gradings.csv`` (atomically)."""
    import pandas as pd

    from bmetoolkit.io import write_text

    return write_text(
        Path(root) / "radiological_gradings.csv", pd.DataFrame(list(rows)).to_csv(index=False)
    )
