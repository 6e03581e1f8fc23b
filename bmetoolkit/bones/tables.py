"""The per-bone and per-lesion tables of an analysis with bone masks.

A bone's row gives its analysed marrow, the edema in it (mL and % of the marrow), the part
of the edema also dark on T1, the marrow left out as free fluid (cysts), its lesion count
and how much of its marrow looked normal (the reference confidence). A lesion's row gives
its bone, volume, place (centroid and bounding box in RAS mm), contrasts, and depth: from
the bone surface and from the articular surface (``subchondral`` when it reaches within
``subchondral_mm`` of the joint).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.bones.geometry import BoneDepths
from bmetoolkit.decision import DecisionLevels
from bmetoolkit.lesions import PLACE_AND_SIGNAL_COLUMNS, place_and_signal
from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.volume import Grid

__all__ = [
    "BONE_COLUMNS",
    "BONE_LESION_COLUMNS",
    "bone_lesion_table",
    "bone_table",
    "touches_border",
]

#: Columns of ``bones.csv``, in order.
BONE_COLUMNS = (
    "bone",
    "label",
    "marrow_ml",
    "bme_ml",
    "bme_pct",
    "bme_t1_dark_ml",
    "subchondral_bme_ml",
    "n_lesions",
    "largest_lesion_ml",
    "fluid_like_ml",
    "reference_confidence",
    "normal_fraction",
    "touches_border",
)
#: Columns of ``lesions.csv`` with bone masks, in order. Coordinates are RAS mm.
BONE_LESION_COLUMNS = (
    "lesion",
    "bone",
    "label",
    "finding",
    "volume_ml",
    "subchondral",
    "surface_distance_mm",
    "surface_depth_mm",
    "articular_distance_mm",
    "articular_depth_mm",
    *PLACE_AND_SIGNAL_COLUMNS,
)


def bone_lesion_table(
    lesions: NDArray[np.integer],
    n_lesions: int,
    *,
    bone_ids: NDArray[np.integer],
    names: Mapping[int, str],
    depths: BoneDepths,
    ratios: dict[str, NDArray[np.floating]],
    decisions: dict[str, NDArray[np.floating]],
    levels: DecisionLevels,
    t1_dark: NDArray[np.bool_],
    grid: Grid,
    subchondral_mm: float,
    origin: tuple[int, ...] = (0, 0, 0),
) -> list[dict[str, Any]]:
    """One row per lesion (see :data:`BONE_LESION_COLUMNS`), in lesion-number order.

    The arrays may be a box of the study grid: ``grid`` is the box's (world positions) and
    ``origin`` its first voxel on the study grid (``bbox_voxels`` are study-grid indices).

    ``surface_distance_mm`` / ``articular_distance_mm`` are the lesion's nearest approach to
    the bone / articular surface, ``surface_depth_mm`` / ``articular_depth_mm`` how far
    into the bone it reaches from them (None without an articular surface).
    """
    mm3 = grid.voxel_volume_mm3
    rows = []
    for number, box in enumerate(ndimage.find_objects(lesions, max_label=n_lesions), start=1):
        if box is None:
            continue
        inside = lesions[box] == number
        bone = int(np.bincount(bone_ids[box][inside]).argmax())
        surface = depths.surface_mm[box][inside]
        articular = depths.articular_mm[box][inside]
        near = _rounded(np.nanmin(articular)) if np.isfinite(articular).any() else None
        rows.append(
            {
                "lesion": number,
                "bone": names.get(bone, f"bone {bone}"),
                "label": bone,
                "finding": "BME",
                "volume_ml": round(float(inside.sum() * mm3 / MM3_PER_ML), 4),
                "subchondral": near is not None and near <= subchondral_mm,
                "surface_distance_mm": _rounded(np.nanmin(surface)),
                "surface_depth_mm": _rounded(np.nanmax(surface)),
                "articular_distance_mm": near,
                "articular_depth_mm": None if near is None else _rounded(np.nanmax(articular)),
                **place_and_signal(
                    box,
                    inside,
                    grid=grid,
                    ratios=ratios,
                    decisions=decisions,
                    levels=levels,
                    t1_dark=t1_dark,
                ),
            }
        )
        rows[-1]["bbox_voxels"] = ",".join(
            f"{s.start + o}:{s.stop + o}" for s, o in zip(box, origin, strict=True)
        )
    return rows


def bone_table(
    names: Mapping[int, str],
    *,
    bone_ids: NDArray[np.integer],
    marrow: NDArray[np.bool_],
    bme: NDArray[np.bool_],
    t1_dark: NDArray[np.bool_],
    fluid_like: NDArray[np.bool_],
    lesion_rows: list[dict[str, Any]],
    confidence: Mapping[str, Mapping[str, Any]],
    voxel_mm3: float,
    has_t1: bool = True,
    border: NDArray[np.bool_] | None = None,
) -> list[dict[str, Any]]:
    """One row per bone (see :data:`BONE_COLUMNS`), in id order.

    ``fluid_like`` is the marrow left out as free fluid (cysts; ``fluid_like_ml``); without
    a T1 (``has_t1`` False) the T1-dark volume is None (not measured). ``border`` (per id,
    :func:`touches_border`) says which bones reach the edge of the field of view, for
    arrays that are a part of it; by default the edges of ``bone_ids``.
    """
    size = max(names, default=0) + 1
    ids = np.asarray(bone_ids).ravel()

    def volume(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        counts = np.bincount(ids[np.asarray(mask).ravel()], minlength=size)[:size]
        return counts * voxel_mm3 / MM3_PER_ML

    marrow_ml, bme_ml, dark_ml = volume(marrow), volume(bme), volume(t1_dark)
    fluid_ml = volume(fluid_like)
    if border is None:
        border = touches_border(bone_ids, size)
    rows = []
    for number, name in names.items():
        mine = [row for row in lesion_rows if row["label"] == number]
        reference = confidence.get(name, {})
        rows.append(
            {
                "bone": name,
                "label": number,
                "marrow_ml": round(float(marrow_ml[number]), 3),
                "bme_ml": round(float(bme_ml[number]), 4),
                "bme_pct": round(100 * float(bme_ml[number] / marrow_ml[number]), 2)
                if marrow_ml[number]
                else None,
                "bme_t1_dark_ml": round(float(dark_ml[number]), 4) if has_t1 else None,
                "subchondral_bme_ml": round(
                    sum(row["volume_ml"] for row in mine if row["subchondral"]), 4
                ),
                "n_lesions": len(mine),
                "largest_lesion_ml": max((row["volume_ml"] for row in mine), default=0.0),
                "fluid_like_ml": round(float(fluid_ml[number]), 4),
                "reference_confidence": reference.get("confidence"),
                "normal_fraction": reference.get("normal_fraction"),
                "touches_border": bool(border[number]),
            }
        )
    return rows


def touches_border(bone_ids: NDArray[np.integer], size: int) -> NDArray[np.bool_]:
    """Per id below ``size``: whether the bone reaches a face of the field of view.

    >>> ids = np.zeros((4, 4, 4), np.uint8)
    >>> ids[0, 1, 1], ids[2, 2, 2] = 1, 2
    >>> touches_border(ids, 3).tolist()
    [False, True, False]
    """
    touches = np.zeros(size, bool)
    array = np.asarray(bone_ids)
    for axis in range(array.ndim):
        for end in (0, -1):
            face = np.take(array, end, axis=axis).ravel()
            touches[np.unique(face[face < size])] = True
    touches[0] = False
    return touches


def _rounded(value: float) -> float:
    return round(float(value), 1)
