"""Writing a phantom study: NIfTI images + truth, or one DICOM folder holding all series.

NIfTI layout (one folder)::

    t1.nii.gz  t2.nii.gz  stir.nii.gz      images (uint16), with t1.json ... BIDS sidecars
    bme_mask.nii.gz  modic_map.nii.gz  vertebrae.nii.gz  tissue.nii.gz   truth on the T1 grid
    t2_bme_mask.nii.gz ... stir_tissue.nii.gz                            same on the T2/STIR grids
    endplates.csv  endplates.json  lesions.json  phantom.json (provenance)

DICOM layout: the three series (numbers 2, 3, 4) as single-frame files with shuffled names,
all in one folder, sharing one StudyInstanceUID and FrameOfReferenceUID. Stored voxel values
are the NIfTI ones, unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bmetoolkit.io import save_nifti, write_json, write_text

if TYPE_CHECKING:
    from bmetoolkit.data.phantom.build import PhantomStudy

__all__ = ["SERIES_NUMBERS", "study_uids", "write_dicom", "write_nifti"]

#: DICOM SeriesNumber of each contrast.
SERIES_NUMBERS = {"t1": 2, "t2": 3, "stir": 4}
#: Root under which the phantom's deterministic UIDs are made (pydicom's root).
_UID_TAG = "bmetoolkit-phantom"


def write_nifti(study: PhantomStudy, folder: str | os.PathLike) -> dict[str, Path]:
    """Write images, sidecars, truth masks and tables of ``study`` into ``folder``.

    Returns
    -------
    dict of str to Path
        Every file written, by a short name (``"t1"``, ``"bme_mask"``, ``"endplates_csv"``...).
    """
    target = Path(folder)
    written: dict[str, Path] = {}
    for name, volume in study.contrasts.items():
        written[name] = save_nifti(volume, target / f"{name}.nii.gz")
        written[f"{name}_json"] = write_json(target / f"{name}.json", volume.meta)
    for name, mask in study.truth.masks.items():
        written[name] = save_nifti(mask, target / f"{name}.nii.gz")
    for contrast, masks in study.truth.grid_masks.items():
        if contrast == "t1":
            continue
        for name, mask in masks.items():
            key = f"{contrast}_{name}"
            written[key] = save_nifti(mask, target / f"{key}.nii.gz")
    written["endplates_csv"] = write_text(target / "endplates.csv", study.truth.endplates_csv())
    written["endplates_json"] = write_json(target / "endplates.json", study.truth.endplates)
    written["lesions_json"] = write_json(target / "lesions.json", study.truth.lesions)
    written["phantom_json"] = write_json(target / "phantom.json", study.provenance())
    return written


def study_uids(seed: int) -> dict[str, str]:
    """Deterministic StudyInstanceUID, FrameOfReferenceUID and SeriesInstanceUIDs of a seed.

    >>> study_uids(3) == study_uids(3), study_uids(3)["study"] != study_uids(4)["study"]
    (True, True)
    """
    from pydicom.uid import generate_uid

    names = ("study", "frame", *SERIES_NUMBERS)
    return {name: generate_uid(entropy_srcs=[_UID_TAG, str(seed), name]) for name in names}


def write_dicom(study: PhantomStudy, folder: str | os.PathLike) -> dict[str, list[Path]]:
    """Write the T1, T2 and STIR series of ``study`` into one DICOM folder.

    Needs :mod:`bmetoolkit.dicom.write`. File names are shuffled (deterministically for the
    seed), so readers must sort slices by geometry.

    Returns
    -------
    dict of str to list of Path
        Files of each contrast, in slice order.
    """
    from bmetoolkit.dicom.write import write_dicom_series

    uids = study_uids(study.seed)
    written: dict[str, list[Path]] = {}
    for name, volume in study.contrasts.items():
        written[name] = write_dicom_series(
            volume,
            folder,
            series_number=SERIES_NUMBERS[name],
            series_description=volume.meta["SeriesDescription"],
            meta=volume.meta,
            study_instance_uid=uids["study"],
            frame_of_reference_uid=uids["frame"],
            series_instance_uid=uids[name],
            shuffle_names=True,
            seed=study.seed,
        )
    return written
