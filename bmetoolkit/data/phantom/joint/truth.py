"""Truth of a joint case: masks on the analysis grid, lesion rows and the per-bone table.

Masks come from the geometry, never from the rendered image: a voxel belongs to a bone, to
edema, a cyst or an island when at least half of its samples do (:mod:`.scan`). Lesion rows
are measured on a fine isotropic lattice around each lesion in the joint's frame, so their
volume does not depend on the acquisition; the per-bone table is counted on the analysis
grid, like the masks an analysis is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.joint.lesions import (
    EDEMA_KINDS,
    TRUTH_MEMBERSHIP,
    JointLesion,
    lesion_membership,
)
from bmetoolkit.data.phantom.joint.scan import Scene
from bmetoolkit.volume import Grid, Volume

__all__ = ["BONE_COLUMNS", "LESION_COLUMNS", "JointTruth", "bones_table", "lesion_rows", "masks"]

#: Depth (mm) beyond the subchondral plate within which a lesion still touches the surface.
TOUCH_TOLERANCE_MM = 1.0
#: Columns of the lesion rows and of the per-bone table.
LESION_COLUMNS = (
    "kind", "bone", "label", "site", "volume_ml", "centroid_ras_mm", "touches_articular_surface",
    "depth_mm",
)  # fmt: skip
BONE_COLUMNS = (
    "bone", "label", "bone_ml", "marrow_ml", "bme_ml", "bme_pct", "n_lesions", "cyst_ml",
    "island_ml",
)  # fmt: skip


@dataclass
class JointTruth:
    """Known truth of a joint phantom, on the analysis grid.

    Attributes
    ----------
    bones : Volume
        uint8 whole-bone labels (cortex included), ids 1..n.
    bone_names : dict of int to str
    marrow : Volume
        uint8 labels of each bone's marrow (cortex excluded), same ids.
    bme_mask, cyst_mask, islands_mask : Volume
        uint8 masks (1 inside).
    lesions : list of dict
        One row per lesion and distractor (:data:`LESION_COLUMNS` and more).
    bones_table : list of dict
        One row per bone (:data:`BONE_COLUMNS`).
    """

    bones: Volume
    bone_names: dict[int, str]
    marrow: Volume
    bme_mask: Volume
    cyst_mask: Volume
    islands_mask: Volume
    lesions: list[dict[str, Any]] = field(default_factory=list)
    bones_table: list[dict[str, Any]] = field(default_factory=list)

    @property
    def masks(self) -> dict[str, Volume]:
        """Every label volume by name."""
        return {
            "bones": self.bones,
            "marrow": self.marrow,
            "bme_mask": self.bme_mask,
            "cyst_mask": self.cyst_mask,
            "islands_mask": self.islands_mask,
        }


def masks(
    fractions: dict[str, NDArray[np.float32]], grid: Grid, bone_names: dict[int, str]
) -> dict[str, Volume]:
    """Label volumes from per-voxel sample fractions (at least half the voxel)."""

    def volume(data: NDArray, name: str) -> Volume:
        return Volume(data.astype(np.uint8), grid.affine, kind="label", source=f"phantom:{name}")

    stacked = np.stack([fractions[f"bone{label}"] for label in bone_names])
    best = np.argmax(stacked, axis=0)
    bones = np.where(stacked.max(axis=0) >= 0.5, np.array(list(bone_names))[best], 0)
    marrow = np.where(fractions["marrow"] >= 0.5, bones, 0)
    out = {"bones": volume(bones, "bones"), "marrow": volume(marrow, "marrow")}
    for name, key in (("bme_mask", "bme"), ("cyst_mask", "cyst"), ("islands_mask", "island")):
        out[name] = volume((fractions[key] >= 0.5) & (bones > 0), name)
    return out


def _fine_points(lesion: JointLesion, step_mm: float) -> NDArray[np.float32]:
    """Frame lattice points (N, 3) of step ``step_mm`` over the lesion's reach."""
    reach = lesion.reach_mm()
    axes = [
        np.arange(c - reach, c + reach + 1e-6, step_mm, dtype=np.float32) for c in lesion.centre_mm
    ]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _lesion_truth(
    scene: Scene, index: int, points: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """The true points of lesion ``index`` among ``points``, their depth and articular flag."""
    anatomy, lesion = scene.anatomy, scene.lesions[index]
    local = points[lesion_membership(lesion, points, scene.borders[index]) >= TRUTH_MEMBERSHIP]
    x, y, z = local[:, 0], local[:, 1], local[:, 2]
    depth = -anatomy.bone_distance(lesion.bone, x, y, z)
    keep = depth > anatomy.cortex_thickness(lesion.bone, x, y, z)
    beaten = {"edema": ("cyst",), "bruise": ("cyst",), "cyst": (), "island": (*EDEMA_KINDS, "cyst")}
    for other, border in zip(scene.lesions, scene.borders, strict=True):
        if other.kind in beaten[lesion.kind] and other.bone == lesion.bone:
            keep &= lesion_membership(other, local, border) < TRUTH_MEMBERSHIP
    return local[keep], depth[keep], anatomy.articular(lesion.bone, x[keep], y[keep], z[keep])


def _in_field(grid: Grid, world: list[float] | None) -> bool:
    if world is None:
        return False
    ijk = grid.world_to_voxel([world])[0]
    return bool(np.all((ijk > -0.5) & (ijk < np.asarray(grid.shape) - 0.5)))


def lesion_rows(scene: Scene, step_mm: float, grid: Grid) -> list[dict[str, Any]]:
    """One row per lesion: kind, bone, volume, centroid, contact with the articular surface.

    ``depth_mm`` is the least depth of the lesion below its bone's surface (0-plate when it
    reaches the subchondral plate); ``touches_articular_surface`` is true when the lesion
    reaches within :data:`TOUCH_TOLERANCE_MM` of the plate under cartilage;
    ``in_field_of_view`` whether its centroid lies inside ``grid`` (the analysis grid).
    """
    rows = []
    for index, lesion in enumerate(scene.lesions):
        points, depth, articular = _lesion_truth(scene, index, _fine_points(lesion, step_mm))
        reach = depth - scene.anatomy.cortex_thickness(lesion.bone, *points.T)
        touches = bool(np.any(articular & (reach <= TOUCH_TOLERANCE_MM + step_mm)))
        found = len(points) > 0
        centroid = (
            scene.anatomy.frame.to_world(points.mean(axis=0, dtype=np.float64))[0].round(2).tolist()
            if found
            else None
        )
        rows.append(
            {
                "kind": lesion.kind,
                "bone": lesion.bone_name,
                "label": lesion.bone,
                "site": lesion.site,
                "volume_ml": float(len(points) * step_mm**3 / 1000.0),
                "centroid_ras_mm": centroid,
                "touches_articular_surface": touches,
                "depth_mm": float(max(reach.min(), 0.0)) if found else None,
                "is_edema": lesion.kind in EDEMA_KINDS,
                "in_field_of_view": _in_field(grid, centroid),
                "ratios": dict(lesion.ratios),
                "margin_mm": lesion.margin_mm,
            }
        )
    return rows


def bones_table(
    volumes: dict[str, Volume], bone_names: dict[int, str], lesions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per bone: volumes (mL) on the analysis grid, edema lesions in its field."""
    ml = volumes["bones"].grid.voxel_volume_mm3 / 1000.0
    bones, marrow = volumes["bones"].data, volumes["marrow"].data
    rows = []
    for label, name in bone_names.items():
        inside = bones == label
        marrow_ml = float((marrow == label).sum() * ml)
        bme_ml = float((volumes["bme_mask"].data.astype(bool) & inside).sum() * ml)
        rows.append(
            {
                "bone": name,
                "label": label,
                "bone_ml": float(inside.sum() * ml),
                "marrow_ml": marrow_ml,
                "bme_ml": bme_ml,
                "bme_pct": 100.0 * bme_ml / marrow_ml if marrow_ml > 0 else 0.0,
                "n_lesions": sum(
                    1
                    for row in lesions
                    if row["is_edema"] and row["label"] == label and row["in_field_of_view"]
                ),
                "cyst_ml": float((volumes["cyst_mask"].data.astype(bool) & inside).sum() * ml),
                "island_ml": float((volumes["islands_mask"].data.astype(bool) & inside).sum() * ml),
            }
        )
    return rows
