"""Knee anatomy: distal femur, proximal tibia and patella with the soft tissues around them.

Geometry lives in a knee frame (mm): ``x`` lateral, ``y`` anterior, ``z`` superior, with the
lowest point of the femoral condyles at ``z = 0``. The frame is scaled by the case's size,
mirrored for a left knee, rotated a little (flexion, rotation) and placed in RAS+ world space.
Every structure is a signed-distance solid (:mod:`.shapes`), evaluated at arbitrary points, so
partial volume and truth come from the same geometry at any resolution.

Bones (ids 1-3): femur (shaft, metaphyseal flare, two condyles with an intercondylar notch),
tibia (plateau, metaphysis, tuberosity, shaft) and patella. Each has a cortex (thicker along
the shafts, a thin subchondral plate at the joint), fatty marrow and, on its articular
surfaces, cartilage. Around them: joint fluid (a suprapatellar pouch of drawn size, a thin
layer around the condyles, the joint gap), menisci, Hoffa's and prefemoral fat pads, the
patellar and quadriceps tendons, popliteal fat and vessel, muscle and subcutaneous fat.

Examples
--------
>>> knee = KneeAnatomy()
>>> points = np.array([[0.0, -4.0, 120.0], [0.0, -4.0, -120.0], [200.0, 0.0, 0.0]])
>>> tissue, bone, _ = knee.classify(points)
>>> [JointTissue(t).name for t in tissue], bone.tolist()
(['MARROW', 'MARROW', 'AIR'], [1, 2, 0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.joint.anatomy import (
    AnatomyBase,
    JointFrame,
    JointTissue,
    paint_bones,
    smoothstep,
)
from bmetoolkit.data.phantom.joint.shapes import capped_cylinder, ellipsoid, segment, smooth_union

__all__ = ["CONDYLES", "KNEE_BONES", "KNEE_SITES", "KneeAnatomy"]

Array = NDArray[np.float32]


T = JointTissue
#: Bone names by label id.
KNEE_BONES: dict[int, str] = {1: "femur", 2: "tibia", 3: "patella"}
#: Centre and radii (knee frame at size 1, mm) of the femoral condyles' ellipsoids.
CONDYLES = {"medial": ((-21, -8, 24), (14, 31, 24)), "lateral": ((21, -6, 25), (13, 29, 25))}
#: Articular sites (for lesions) and the bone each lies on, and each site's weight per kind.
KNEE_SITES: dict[str, int] = {
    "medial femoral condyle": 1, "lateral femoral condyle": 1, "trochlea": 1,
    "medial tibial plateau": 2, "lateral tibial plateau": 2, "patella": 3,
}  # fmt: skip
KNEE_SITE_WEIGHTS: dict[str, dict[str, float]] = {
    "edema": {"medial femoral condyle": 0.3, "lateral femoral condyle": 0.12, "trochlea": 0.08,
              "medial tibial plateau": 0.28, "lateral tibial plateau": 0.1, "patella": 0.12},
    "bruise": {"medial femoral condyle": 0.1, "lateral femoral condyle": 0.4, "trochlea": 0.05,
               "medial tibial plateau": 0.1, "lateral tibial plateau": 0.35, "patella": 0.0},
    "cyst": {"medial femoral condyle": 0.25, "lateral femoral condyle": 0.15, "trochlea": 0.05,
             "medial tibial plateau": 0.3, "lateral tibial plateau": 0.15, "patella": 0.1},
}  # fmt: skip
#: Red-marrow islands (metaphyseal): heights of their centres (knee frame at size 1, mm; the
#: tibia's below its plateau) and the largest distance of the centre from the bone's axis.
ISLAND_HEIGHTS_MM: dict[int, tuple[float, float]] = {1: (40.0, 85.0), 2: (-60.0, -25.0)}
ISLAND_OFF_AXIS_MM = 12.0
#: Box (knee frame at size 1, mm) of the marrow mottle field.
MOTTLE_BOX_MM = ((-50.0, -50.0, -130.0), (50.0, 60.0, 150.0))
#: Distance beyond a bone (mm) within which its cartilage and the joint fluid are evaluated.
NEAR_MM = 12.0
#: Cortex thickening: from the subchondral plate to the shaft cortex over these heights (mm
#: above the femoral joint surface, below the tibial plateau).
FEMUR_SHAFT_CORTEX_Z = (45.0, 85.0)
TIBIA_SHAFT_CORTEX_DEPTH = (30.0, 70.0)


@dataclass(frozen=True)
class KneeAnatomy(AnatomyBase):
    """One knee's drawn anatomy.

    Parameters
    ----------
    size : float
        Scale of the whole knee (1 = an average adult knee, bone widths ~76 mm).
    cortex_mm, plate_mm : float
        Cortical thickness along the shafts and of the subchondral plate at the joint (mm).
    cartilage_mm : float
        Articular cartilage thickness (mm).
    joint_space_mm : float
        Gap between the femoral and tibial cartilage (mm), filled with fluid and menisci.
    effusion_mm : float
        Thickness of the suprapatellar fluid pouch (mm); 0.5-2 is physiological.
    fat_mm : float
        Subcutaneous fat thickness (mm).
    side : {'right', 'left'}
    flexion_deg, rotation_deg : float
        Rigid rotation of the knee about the world x axis and about z (degrees).
    origin_mm : tuple of 3 floats
        World position (RAS+ mm) of the knee frame's origin.
    """

    size: float = 1.0
    cortex_mm: float = 2.0
    plate_mm: float = 1.0
    cartilage_mm: float = 2.2
    joint_space_mm: float = 0.8
    effusion_mm: float = 2.0
    fat_mm: float = 8.0
    side: str = "right"
    flexion_deg: float = 0.0
    rotation_deg: float = 0.0
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    # --- frames ---------------------------------------------------------------------------

    @property
    def frame(self) -> JointFrame:
        """Placement of the knee frame in world space."""
        return JointFrame(
            (self.flexion_deg, 0.0, self.rotation_deg), self.origin_mm, self.side == "left"
        )

    def centre(self) -> NDArray[np.float64]:
        """World position of the joint's centre (the nominal field-of-view centre)."""
        return self.to_world([[0.0, -4.0, 10.0 * self.size]])[0]

    # --- layout (knee frame at size 1, mm) --------------------------------------------------

    @property
    def tibia_top(self) -> float:
        """Height of the tibial plateau's bone surface at size 1."""
        return -(2 * self.cartilage_mm + self.joint_space_mm) / self.size

    @property
    def patella_y(self) -> float:
        """AP position of the patella's centre at size 1."""
        return 34.0 + (2 * self.cartilage_mm + self.joint_space_mm) / self.size

    def bone_box(self, bone: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Knee-frame bounding box (low, high corners, mm) of a bone, at the drawn size."""
        zt, yp = self.tibia_top, self.patella_y
        boxes = {
            1: ((-40.0, -42.0, -1.0), (40.0, 30.0, 400.0)),
            2: ((-43.0, -34.0, -400.0), (43.0, 25.0, zt + 1.0)),
            3: ((-24.0, yp - 12.0, 21.0), (24.0, yp + 12.0, 63.0)),
        }
        low, high = boxes[bone]
        return tuple(v * self.size for v in low), tuple(v * self.size for v in high)  # type: ignore[return-value]

    # --- lesion sites -----------------------------------------------------------------------

    BONES: ClassVar[dict[int, str]] = KNEE_BONES
    SITE_WEIGHTS: ClassVar[dict[str, dict[str, float]]] = KNEE_SITE_WEIGHTS
    MOTTLE_BOX_MM = MOTTLE_BOX_MM
    NEAR_MM = NEAR_MM
    sites: ClassVar[dict[str, int]] = KNEE_SITES
    island_bones: ClassVar[tuple[int, ...]] = tuple(ISLAND_HEIGHTS_MM)

    def nominal_site(self, rng: np.random.Generator, site: str) -> NDArray[np.float64]:
        """A knee-frame point near the articular surface of a site (mm)."""
        zt, yp = self.tibia_top, self.patella_y
        if site.endswith("condyle"):
            centre, radii = CONDYLES["medial" if site.startswith("medial") else "lateral"]
            theta = np.deg2rad(rng.uniform(-35.0, 75.0))
            psi = np.deg2rad(rng.uniform(-20.0, 20.0))
            offset = (
                radii[0] * np.sin(psi),
                -radii[1] * np.sin(theta) * np.cos(psi),
                -radii[2] * np.cos(theta) * np.cos(psi),
            )
            point = np.asarray(centre) + np.asarray(offset)
        elif site == "trochlea":
            point = np.array([rng.uniform(-18, 18), 24.0, rng.uniform(32, 55)])
        elif site.endswith("plateau"):
            x = rng.uniform(8, 30) * (-1 if site.startswith("medial") else 1)
            point = np.array([x, rng.uniform(-22, 10), zt])
        else:
            point = np.array([rng.uniform(-14, 14), yp - 10, rng.uniform(32, 52)])
        return point * self.size

    def island_centre(self, rng: np.random.Generator, bone: int) -> tuple[NDArray, str]:
        """A metaphyseal point of the femur or tibia (knee frame, mm) and the site's name."""
        height = rng.uniform(*ISLAND_HEIGHTS_MM[bone]) + (self.tibia_top if bone == 2 else 0.0)
        angle = rng.uniform(0, 2 * np.pi)
        reach = rng.uniform(0.0, ISLAND_OFF_AXIS_MM)
        point = np.array([reach * np.cos(angle), -4 + reach * np.sin(angle), height]) * self.size
        return point, "femoral metaphysis" if bone == 1 else "tibial metaphysis"

    # --- solids -----------------------------------------------------------------------------

    def _bone_unit(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Signed distance to a bone at size 1 (points already divided by the size)."""
        if bone == 1:
            medial = ellipsoid(x, y, z, *CONDYLES["medial"])
            lateral = ellipsoid(x, y, z, *CONDYLES["lateral"])
            block = ellipsoid(x, y, z, (0, -3, 42), (38, 25, 36))
            flare = ellipsoid(x, y, z, (0, -4, 80), (24, 17, 45))
            shaft = capped_cylinder(x, y, z, (0, -4), (14, 13), (60, 400))
            distal = smooth_union(smooth_union(medial, lateral, 2.0), block, 6.0)
            return smooth_union(smooth_union(distal, flare, 10.0), shaft, 12.0)
        if bone == 2:
            zt = self.tibia_top
            plateau = capped_cylinder(x, y, z, (0, -6), (38, 25), (zt - 14, zt), 4.0)
            metaphysis = ellipsoid(x, y, z, (0, -5, zt - 26), (34, 23, 36))
            tuberosity = ellipsoid(x, y, z, (0, 12, zt - 30), (11, 8, 14))
            shaft = capped_cylinder(x, y, z, (0, -3), (14, 13), (-400, zt - 45))
            upper = smooth_union(smooth_union(plateau, metaphysis, 10.0), tuberosity, 6.0)
            return smooth_union(upper, shaft, 16.0)
        return ellipsoid(x, y, z, (0, self.patella_y, 42), (22, 10, 19))

    def articular(self, bone: int, x: Array, y: Array, z: Array) -> NDArray[np.bool_]:
        """Whether knee-frame points lie on (or under) a bone's cartilage-covered surface."""
        s = np.float32(self.size)
        x, y, z = x / s, y / s, z / s
        if bone == 1:
            return ((z < 30) & (np.abs(x) < 31)) | ((y > 8) & (z < 62) & (np.abs(x) < 30))
        if bone == 2:
            return (z > self.tibia_top - 3) & (np.abs(x) > 4)
        return y < self.patella_y - 3

    def cortex_thickness(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Cortical thickness (mm) at knee-frame points: plate near the joint, shaft beyond."""
        plate, shaft = np.float32(self.plate_mm), np.float32(self.cortex_mm)
        zs = z / np.float32(self.size)
        if bone == 1:
            return plate + (shaft - plate) * smoothstep(zs, *FEMUR_SHAFT_CORTEX_Z)
        if bone == 2:
            depth = np.float32(self.tibia_top) - zs
            return plate + (shaft - plate) * smoothstep(depth, *TIBIA_SHAFT_CORTEX_DEPTH)
        return np.full(z.shape, plate, np.float32)

    # --- classification ---------------------------------------------------------------------

    @staticmethod
    def _limb(u: Array, v: Array, w: Array) -> Array:
        """Approximate signed distance (size 1) to the skin: calf, knee and thigh widths."""
        thigh = smoothstep(w, 40.0, 160.0)
        calf = smoothstep(-w, 60.0, 160.0)
        rx = 58 + 14 * thigh - 4 * calf
        ry = 56 + 10 * thigh + 2 * calf
        k0 = np.sqrt((u / rx) ** 2 + ((v + 6 + 6 * calf) / ry) ** 2)
        return (k0 - 1) * np.minimum(rx, ry)

    def _soft_tissue(self, x: Array, y: Array, z: Array) -> NDArray[np.uint8]:
        """Air, fat, muscle, tendons, vessel and fat pads (everything but joint and bone)."""
        s = np.float32(self.size)
        u, v, w = x / s, y / s, z / s
        zt, yp = self.tibia_top, self.patella_y
        tissue = np.zeros(x.shape, np.uint8)
        limb = self._limb(u, v, w) * s
        tissue[limb < 0] = T.FAT
        knee_fat = ellipsoid(u, v, w, (0, 18, 5), (75, 42, 48)) < 0
        tissue[(limb < -np.float32(self.fat_mm)) & ~knee_fat] = T.MUSCLE
        fat = (
            (ellipsoid(u, v, w, (0, -42, 15), (16, 12, 45)) < 0)
            | (ellipsoid(u, v, w, (0, 17, 2), (24, 10, 14)) < 0)
            | (ellipsoid(u, v, w, (0, 16, 62), (20, 7, 22)) < 0)
        )
        tissue[fat & (limb < 0)] = T.FAT
        tissue[segment(u, v, w, (3, -40, -200), (3, -40, 200), 3.5) < 0] = T.VESSEL
        tendons = (segment(u, v, w, (0, yp - 2, 26), (0, 19, zt - 30), 3.0, 4.0) < 0) | (
            segment(u, v, w, (0, yp - 3, 58), (0, 30, 400), 4.0, 5.0) < 0
        )
        tissue[tendons] = T.TENDON
        return tissue

    def _joint(self, tissue: NDArray[np.uint8], x: Array, y: Array, z: Array, femur: Array) -> None:
        """Paint joint fluid and menisci (in place), evaluating only the points near them."""
        s = np.float32(self.size)
        zt, e = self.tibia_top, self.effusion_mm / self.size
        layer = np.float32(self.cartilage_mm + 0.3 * self.effusion_mm + 0.3)
        lining = np.float32(self.cartilage_mm + self.joint_space_mm + 0.5)
        near = np.flatnonzero((femur > 0) & (femur < max(layer, lining)))
        u, v, w = x[near] / s, y[near] / s, z[near] / s
        capsule = ellipsoid(u, v, w, (0, -4, 10), (45, 38, 24)) < 0
        rho = np.sqrt((u / 38) ** 2 + ((v + 6) / 25) ** 2)
        around = capsule & (femur[near] < layer)
        gap = (w > zt) & (rho < 1) & (femur[near] < lining)
        tissue[near[around | gap]] = T.FLUID
        pouch_box = (np.abs(x) < 24 * s) & (y > 17 * s) & (y < (19.5 + e) * s) & (z > 41 * s)
        box = np.flatnonzero(pouch_box & (z < 91 * s))
        u, v, w = x[box] / s, y[box] / s, z[box] / s
        tissue[box[ellipsoid(u, v, w, (0, 18 + e / 2, 66), (24, e / 2 + 0.5, 24)) < 0]] = T.FLUID
        band = np.flatnonzero((z > zt * s) & (z < (zt + 7) * s) & (np.abs(x) > 7 * s))
        u, v, w = x[band] / s, y[band] / s, z[band] / s
        rho = np.sqrt((u / 38) ** 2 + ((v + 6) / 25) ** 2)
        wedge = np.minimum((rho - 0.62) / 0.38 * 7.0, 7.0)
        meniscus = (
            (rho > 0.62) & (rho < 1.05) & (w < zt + wedge)
            & (femur[band] > np.float32(self.cartilage_mm))
        )  # fmt: skip
        tissue[band[meniscus]] = T.MENISCUS

    def classify_local(
        self, local: NDArray, soft: NDArray[np.uint8] | None = None
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
        """:meth:`classify` at knee-frame points (N, 3).

        ``soft``, when given, is :meth:`soft_tissue` at the points (e.g. evaluated once per
        voxel and shared by its samples, as soft tissue needs no partial volume).
        """
        points = np.asarray(local, np.float32)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        tissue = self._soft_tissue(x, y, z) if soft is None else soft.copy()
        distances = {bone: self.bone_distance(bone, x, y, z) for bone in KNEE_BONES}
        self._joint(tissue, x, y, z, distances[1])
        bone_id, depth = paint_bones(self, tissue, points, distances, self.cartilage_mm)
        return tissue, bone_id, depth
