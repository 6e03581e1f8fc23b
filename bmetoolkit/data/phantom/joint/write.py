"""Writing a joint phantom: NIfTI images, bone labels with a BIDS ``dseg.tsv``, truth.

Layout (one folder)::

    t1.nii.gz t1.json                      the T1 (when rendered)
    <fluid>.nii.gz <fluid>.json            stir, t2fs or pdfs
    bones.nii.gz bones_dseg.tsv            whole-bone labels and their names (index, name)
    marrow.nii.gz                          marrow labels (same ids)
    bme_mask.nii.gz cyst_mask.nii.gz islands_mask.nii.gz
    lesions.json bones_truth.csv phantom.json

Every file appears under its name only once complete (:func:`bmetoolkit.io.atomic_write`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bmetoolkit.data.phantom.joint.truth import BONE_COLUMNS
from bmetoolkit.io import save_nifti, write_json, write_text
from bmetoolkit.volume import Volume

if TYPE_CHECKING:
    from bmetoolkit.data.phantom.joint.build import JointPhantom

__all__ = ["label_mapping", "write_joint_phantom"]


def label_mapping(
    bone_names: Mapping[int, str], label_ids: str | Mapping[str, int]
) -> dict[int, int]:
    """Phantom bone id -> written id (``"sequential"`` keeps 1..n).

    >>> label_mapping({1: "femur", 2: "tibia"}, {"femur": 25, "tibia": 26})
    {1: 25, 2: 26}
    """
    if isinstance(label_ids, str):
        if label_ids != "sequential":
            raise ValueError(f"label_ids must be 'sequential' or a dict, got {label_ids!r}")
        return {label: label for label in bone_names}
    missing = [name for name in bone_names.values() if name not in label_ids]
    ids = [int(label_ids[name]) for name in bone_names.values() if name in label_ids]
    if missing or len(set(ids)) != len(ids) or not all(1 <= i <= 255 for i in ids):
        raise ValueError(
            f"label_ids must give every bone ({list(bone_names.values())}) a distinct id in "
            f"1..255; got {dict(label_ids)}"
        )
    return {label: int(label_ids[name]) for label, name in bone_names.items()}


def _relabel(volume: Volume, mapping: dict[int, int]) -> Volume:
    lookup = np.zeros(256, np.uint8)
    for old, new in mapping.items():
        lookup[old] = new
    return volume.with_data(lookup[volume.data])


def _csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_joint_phantom(
    phantom: JointPhantom,
    folder: str | os.PathLike,
    *,
    label_ids: str | Mapping[str, int] = "sequential",
) -> dict[str, Path]:
    """Write images, bone labels (with ``bones_dseg.tsv``), truth masks and tables.

    Parameters
    ----------
    phantom : JointPhantom
    folder : path
    label_ids : 'sequential' or dict of str to int
        Ids of the written bone labels: 1..n, or by bone name (e.g. TotalSegmentator's).

    Returns
    -------
    dict of str to Path
        ``"t1"`` (when rendered), ``"fluid"``, ``"bones"``, ``"bones_dseg"``, ``"marrow"``,
        ``"bme_mask"``, ``"cyst_mask"``, ``"islands_mask"``, sidecars and tables.
    """
    target = Path(folder)
    truth = phantom.truth
    mapping = label_mapping(truth.bone_names, label_ids)
    written: dict[str, Path] = {}
    images = {"t1": ("t1", phantom.t1), "fluid": (phantom.fluid_kind, phantom.fluid)}
    for key, (stem, volume) in images.items():
        if volume is not None:
            written[key] = save_nifti(volume, target / f"{stem}.nii.gz")
            written[f"{key}_json"] = write_json(target / f"{stem}.json", volume.meta)
    for name, volume in truth.masks.items():
        relabelled = _relabel(volume, mapping) if name in ("bones", "marrow") else volume
        written[name] = save_nifti(relabelled, target / f"{name}.nii.gz")
    names = {mapping[label]: name for label, name in truth.bone_names.items()}
    dseg = "index\tname\n" + "".join(f"{i}\t{names[i]}\n" for i in sorted(names))
    written["bones_dseg"] = write_text(target / "bones_dseg.tsv", dseg)
    rows = [row | {"label": mapping[row["label"]]} for row in truth.bones_table]
    written["bones_truth_csv"] = write_text(target / "bones_truth.csv", _csv(rows, BONE_COLUMNS))
    lesions = [row | {"label": mapping[row["label"]]} for row in truth.lesions]
    written["lesions_json"] = write_json(target / "lesions.json", lesions)
    written["phantom_json"] = write_json(target / "phantom.json", phantom.provenance())
    return written
