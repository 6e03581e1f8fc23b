"""The lesion table: every connected finding with its volume, place and signal.

A lesion is a connected region (face neighbours, within one body) of the union of the BME
mask and the Modic map. Its **zone** is the endplate its Modic voxels belong to
(``"superior endplate"`` / ``"inferior endplate"``), or ``"central"`` for edema away from the
endplates; its **finding** is ``"BME"`` or ``"Modic "`` + type (``"Modic I/II"``). Each
lesion carries its contrast on every sequence as a mean ratio to normal marrow and as a
robust z-score (how many normal-marrow SDs it departs from normal), and the part of its
edema that is also T1-dark.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.decision import DecisionLevels
from bmetoolkit.modic import MM3_PER_ML, MODIC_NAMES, SUPERIOR, type_string
from bmetoolkit.params import Parameters
from bmetoolkit.volume import Grid

__all__ = [
    "LESION_COLUMNS",
    "PLACE_AND_SIGNAL_COLUMNS",
    "coordinates",
    "lesion_signal",
    "lesion_table",
    "place_and_signal",
]

#: The columns every lesion table ends with, whatever the anatomy: place and signal.
#: Coordinates are RAS mm; the bounding box holds the lesion's voxel centres.
PLACE_AND_SIGNAL_COLUMNS = (
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "bbox_min_x_mm",
    "bbox_min_y_mm",
    "bbox_min_z_mm",
    "bbox_max_x_mm",
    "bbox_max_y_mm",
    "bbox_max_z_mm",
    "bbox_voxels",
    "t1_dark_volume_ml",
    "mean_t1_ratio",
    "mean_t2_ratio",
    "mean_stir_ratio",
    "t1_z",
    "t2_z",
    "stir_z",
)
#: Columns of the (spine) lesion table, in order.
LESION_COLUMNS = (
    "lesion",
    "level",
    "verse_id",
    "zone",
    "finding",
    "volume_ml",
    "bme_volume_ml",
    "volume_ml_I",
    "volume_ml_II",
    "volume_ml_III",
    *PLACE_AND_SIGNAL_COLUMNS,
)


def lesion_table(
    lesions: NDArray[np.integer],
    n_lesions: int,
    *,
    bme: NDArray[np.bool_],
    types: NDArray[np.uint8],
    assignment: NDArray[np.uint8],
    body_labels: NDArray[np.integer],
    body_names: dict[int, tuple[str, int | None]],
    ratios: dict[str, NDArray[np.floating]],
    decisions: dict[str, NDArray[np.floating]],
    levels: DecisionLevels,
    t1_dark: NDArray[np.bool_],
    grid: Grid,
    params: Parameters,
    origin: tuple[int, ...] = (0, 0, 0),
) -> list[dict[str, Any]]:
    """One row per lesion (see :data:`LESION_COLUMNS`), in lesion-number order.

    Parameters
    ----------
    lesions : ndarray of int
        Lesion numbers 1..n_lesions (0 elsewhere).
    n_lesions : int
        Number of lesions.
    bme, types, assignment : ndarray
        BME mask, Modic map and endplate assignment (see :func:`bmetoolkit.modic.modic_map`).
    body_labels : ndarray
        Body label map.
    body_names : dict
        Body id -> (display name, VerSe id or None).
    ratios : dict of str to ndarray
        Ratio images by contrast (``"t1"``, ``"t2"``, ``"stir"``); missing contrasts give
        empty cells.
    decisions : dict of str to ndarray
        The decision images (smoothed ratios), for each lesion's contrast as a z-score: the
        median of its log decision ratio over the SD of normal marrow (``levels.sd``).
    levels : DecisionLevels
        The scan's levels and normal-marrow SDs.
    t1_dark : ndarray of bool
        The edema that is also T1-dark.
    grid : Grid
        The study grid.
    params : Parameters
        For the mixed-type rule.
    origin : tuple of int
        Where the arrays start on the study grid when they are a box of it: world
        positions and ``bbox_voxels`` are the study grid's (integer offsets, exact).
    """
    mm3 = grid.voxel_volume_mm3
    rows = []
    for number, box in enumerate(ndimage.find_objects(lesions, max_label=n_lesions), start=1):
        if box is None:
            continue
        inside = lesions[box] == number
        body_id = int(np.bincount(body_labels[box][inside]).argmax())
        name, verse = body_names.get(body_id, (f"body id {body_id}", None))
        lesion_types = types[box][inside]
        volumes = {
            roman: float(np.count_nonzero(lesion_types == value) * mm3 / MM3_PER_ML)
            for value, roman in MODIC_NAMES.items()
        }
        modic = type_string(volumes, params.mixed_min_fraction)
        rows.append(
            {
                "lesion": number,
                "level": name,
                "verse_id": verse,
                "zone": _zone(assignment[box][inside]),
                "finding": "BME" if modic == "none" else f"Modic {modic}",
                "volume_ml": round(float(inside.sum() * mm3 / MM3_PER_ML), 4),
                "bme_volume_ml": round(
                    float(np.count_nonzero(bme[box][inside]) * mm3 / MM3_PER_ML), 4
                ),
                **{f"volume_ml_{roman}": round(v, 4) for roman, v in volumes.items()},
                **place_and_signal(
                    box,
                    inside,
                    grid=grid,
                    ratios=ratios,
                    decisions=decisions,
                    levels=levels,
                    t1_dark=t1_dark,
                    origin=origin,
                ),
            }
        )
    return rows


def _zone(assignment: NDArray[np.uint8]) -> str:
    endplate = assignment[assignment > 0]
    if endplate.size == 0:
        return "central"
    superior = np.count_nonzero(endplate == SUPERIOR)
    return "superior endplate" if superior * 2 >= endplate.size else "inferior endplate"


def place_and_signal(
    box: tuple[slice, ...],
    inside: NDArray[np.bool_],
    *,
    grid: Grid,
    ratios: dict[str, NDArray[np.floating]],
    decisions: dict[str, NDArray[np.floating]],
    levels: DecisionLevels,
    t1_dark: NDArray[np.bool_],
    origin: tuple[int, ...] = (0, 0, 0),
) -> dict[str, Any]:
    """The :data:`PLACE_AND_SIGNAL_COLUMNS` of a lesion (``box``: its bounding box on the
    arrays, ``inside``: its voxels within it; ``origin``: where the arrays start on
    ``grid``)."""
    ijk = np.argwhere(inside) + np.array([s.start + o for s, o in zip(box, origin, strict=True)])
    return {
        **coordinates(grid.voxel_to_world(ijk)),
        "bbox_voxels": ",".join(
            f"{s.start + o}:{s.stop + o}" for s, o in zip(box, origin, strict=True)
        ),
        **lesion_signal(
            box,
            inside,
            ratios=ratios,
            decisions=decisions,
            levels=levels,
            t1_dark=t1_dark,
            voxel_mm3=grid.voxel_volume_mm3,
        ),
    }


def lesion_signal(
    box: tuple[slice, ...],
    inside: NDArray[np.bool_],
    *,
    ratios: dict[str, NDArray[np.floating]],
    decisions: dict[str, NDArray[np.floating]],
    levels: DecisionLevels,
    t1_dark: NDArray[np.bool_],
    voxel_mm3: float,
) -> dict[str, float | None]:
    """A lesion's T1-dark volume, mean ratio and z-score on every sequence (None if absent).

    ``box`` is the lesion's bounding box on the grid and ``inside`` its voxels within it.
    """
    return {
        "t1_dark_volume_ml": round(
            float(np.count_nonzero(t1_dark[box][inside]) * voxel_mm3 / MM3_PER_ML), 4
        )
        if "t1" in decisions
        else None,
        **{
            f"mean_{name}_ratio": _mean(ratios.get(name), box, inside)
            for name in ("t1", "t2", "stir")
        },
        **{
            f"{name}_z": _z(decisions.get(name), levels.sd.get(name), box, inside)
            for name in ("t1", "t2", "stir")
        },
    }


def coordinates(world: NDArray[np.float64]) -> dict[str, float]:
    """Centroid and bounding box (RAS mm) of a lesion's voxel centres."""
    values = {}
    for name, point in (
        ("centroid", world.mean(axis=0)),
        ("bbox_min", world.min(axis=0)),
        ("bbox_max", world.max(axis=0)),
    ):
        values |= {f"{name}_{c}_mm": round(float(v), 2) for c, v in zip("xyz", point, strict=True)}
    return values


def _z(
    decision: NDArray[np.floating] | None,
    sd: float | None,
    box: tuple[slice, ...],
    inside: NDArray[np.bool_],
) -> float | None:
    """Median log decision ratio of a lesion over the SD of normal marrow (None without)."""
    if decision is None or not sd:
        return None
    values = np.log(decision[box][inside])
    values = values[np.isfinite(values)]
    return round(float(np.median(values)) / sd, 2) if values.size else None


def _mean(
    ratio: NDArray[np.floating] | None, box: tuple[slice, ...], inside: NDArray[np.bool_]
) -> float | None:
    if ratio is None:
        return None
    values = ratio[box][inside]
    values = values[np.isfinite(values)]
    return round(float(values.mean()), 3) if values.size else None
