"""Sacroiliac joints: the sacrum and both ilia, with the soft tissues of the pelvis.

Geometry lives in a pelvis frame (mm): ``x`` to the patient's right, ``y`` anterior, ``z``
superior, origin at the middle of the sacrum. The sacrum is a tapered, rounded slab along its
long axis, tilted forward by the drawn sacral tilt (12-28 degrees from vertical), with a
sacral canal and four pairs of foramina (holes in the bone). Each ilium has a thick
juxta-articular part facing the sacrum's auricular surface across the joint (cartilage on
both sides and a thin fluid line in the synovial part, interosseous ligament beyond it), a
thin wing flaring laterally upwards and a pillar towards the acetabulum. Around them: pelvic
fat, rectum, iliac vessels, the dural sac above, muscle and subcutaneous fat.
Coronal-oblique acquisitions follow the sacrum's long axis.

Bone ids: 1 sacrum, 2 left ilium, 3 right ilium.

Examples
--------
>>> sij = SacroiliacAnatomy()
>>> points = np.array([[0.0, 5.0, 10.0], [55.0, 0.0, 20.0], [0.0, 0.0, 400.0]])
>>> tissue, bone, _ = sij.classify(points)
>>> [JointTissue(t).name for t in tissue], bone.tolist()
(['MARROW', 'MARROW', 'MUSCLE'], [1, 3, 0])
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
from bmetoolkit.data.phantom.joint.shapes import (
    capped_cylinder,
    ellipsoid,
    rounded_box,
    segment,
    smooth_union,
)

__all__ = ["SIJ_BONES", "SIJ_SITES", "SacroiliacAnatomy", "draw_sij_anatomy"]

Array = NDArray[np.float32]
T = JointTissue
Range = tuple[float, float]

#: Bone names by label id.
SIJ_BONES: dict[int, str] = {1: "sacrum", 2: "ilium_left", 3: "ilium_right"}
#: Articular sites and the bone of each; weights per kind (sacroiliitis favours the ilium).
SIJ_SITES: dict[str, int] = {
    "left sacral auricular surface": 1, "right sacral auricular surface": 1,
    "left iliac auricular surface": 2, "right iliac auricular surface": 3,
}  # fmt: skip
SIJ_SITE_WEIGHTS: dict[str, dict[str, float]] = {
    "edema": {"left sacral auricular surface": 0.2, "right sacral auricular surface": 0.2,
              "left iliac auricular surface": 0.3, "right iliac auricular surface": 0.3},
    "bruise": {"left sacral auricular surface": 0.3, "right sacral auricular surface": 0.3,
               "left iliac auricular surface": 0.2, "right iliac auricular surface": 0.2},
    "cyst": {"left sacral auricular surface": 0.25, "right sacral auricular surface": 0.25,
             "left iliac auricular surface": 0.25, "right iliac auricular surface": 0.25},
}  # fmt: skip
#: Sacrum along its long axis (mm from the origin, size 1): bottom and top; half-width and
#: half-thickness at the bottom and at the top.
SACRUM_A = (-60.0, 50.0)
SACRUM_HALF_WIDTH = (20.0, 50.0)
SACRUM_HALF_THICKNESS = (8.0, 18.0)
SACRUM_ROUNDING_MM = 4.0
#: The auricular (articular) part of the joint along the sacral axis.
AURICULAR_A = (-5.0, 48.0)
#: Juxta-articular ilium: thickness beside the joint (mm) and its rounding.
ILIUM_THICKNESS = 24.0
#: Foramina: positions along the sacral axis, lateral position (fraction of the half-width)
#: and radius (mm).
FORAMINA_A = (35.0, 18.0, 2.0, -14.0)
FORAMINA_X_FRACTION = 0.45
FORAMINA_RADIUS = 3.5
#: Radius of the sacral canal (mm).
CANAL_RADIUS = 3.5
#: Box (pelvis frame at size 1, mm) of the marrow mottle field.
MOTTLE_BOX_MM = ((-150.0, -70.0, -110.0), (150.0, 70.0, 130.0))
#: Distance beyond a bone (mm) within which cartilage and joint fluid are evaluated.
NEAR_MM = 10.0

# --- drawn ranges --------------------------------------------------------------------------
SIZE: Range = (0.9, 1.1)
SACRAL_TILT_DEG: Range = (12.0, 28.0)
CORTEX_MM: Range = (1.0, 3.0)
PLATE_MM: Range = (0.6, 1.4)
CARTILAGE_MM: Range = (1.0, 2.0)
JOINT_SPACE_MM: Range = (0.3, 1.2)
FAT_MM: Range = (10.0, 40.0)
TURN_DEG = 5.0
ORIGIN_MM = 10.0


def _tapered(value: Array, low: float, high: float, at: Range) -> Array:
    """Linear interpolation from ``at[0]`` (value = low) to ``at[1]`` (value = high)."""
    frac = (value - np.float32(low)) / np.float32(high - low)
    return np.float32(at[0]) + np.float32(at[1] - at[0]) * frac


@dataclass(frozen=True)
class SacroiliacAnatomy(AnatomyBase):
    """One pelvis's drawn anatomy around the sacroiliac joints.

    Parameters
    ----------
    size : float
        Scale of the whole pelvis.
    sacral_tilt_deg : float
        Forward tilt of the sacrum's long axis from vertical (degrees).
    cortex_mm, plate_mm : float
        Cortex of the iliac wings, and the thin plate of the sacrum and of the joint (mm).
    cartilage_mm : float
        Cartilage on each side of the joint (mm).
    joint_space_mm : float
        Fluid gap between the two cartilages (mm).
    fat_mm : float
        Subcutaneous fat (mm).
    rotation_deg : tuple of 3 floats
        Rigid rotation of the pelvis in the scanner (degrees about x, y, z).
    origin_mm : tuple of 3 floats
    """

    size: float = 1.0
    sacral_tilt_deg: float = 20.0
    cortex_mm: float = 2.0
    plate_mm: float = 1.0
    cartilage_mm: float = 1.5
    joint_space_mm: float = 0.6
    fat_mm: float = 20.0
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    BONES: ClassVar[dict[int, str]] = SIJ_BONES
    SITE_WEIGHTS: ClassVar[dict[str, dict[str, float]]] = SIJ_SITE_WEIGHTS
    MOTTLE_BOX_MM = MOTTLE_BOX_MM
    NEAR_MM = NEAR_MM
    BIAS_SPAN_MM = 200.0
    sites: ClassVar[dict[str, int]] = SIJ_SITES
    island_bones: ClassVar[tuple[int, ...]] = (1, 2, 3)

    @property
    def frame(self) -> JointFrame:
        """Placement of the pelvis frame in world space."""
        return JointFrame(self.rotation_deg, self.origin_mm)

    def centre(self) -> NDArray[np.float64]:
        """World position of the nominal field-of-view centre (the sacrum's middle)."""
        return self.frame.to_world([[0.0, 0.0, 5.0 * self.size]])[0]

    # --- sacral frame (size 1) ----------------------------------------------------------------

    @property
    def axis(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The sacrum's long axis (superior end forward) and its thickness axis (anterior)."""
        tau = np.deg2rad(self.sacral_tilt_deg)
        return np.array([0.0, np.sin(tau), np.cos(tau)]), np.array([0.0, np.cos(tau), -np.sin(tau)])

    def _along(self, y: Array, z: Array) -> tuple[Array, Array]:
        """Position along the sacral axis and across its thickness (size 1)."""
        long, thick = self.axis
        a = np.float32(long[1]) * y + np.float32(long[2]) * z
        t = np.float32(thick[1]) * y + np.float32(thick[2]) * z
        return a, t

    def _point(self, x: float, a: float, t: float) -> NDArray[np.float64]:
        """Frame point (size 1) from lateral position, sacral-axis position and depth."""
        long, thick = self.axis
        return np.array([x, 0.0, 0.0]) + a * long + t * thick

    @property
    def gap(self) -> float:
        """Distance between sacrum and ilium across the joint at size 1 (mm)."""
        return (2 * self.cartilage_mm + self.joint_space_mm) / self.size

    def _half_width(self, a: Array) -> Array:
        return _tapered(a, *SACRUM_A, SACRUM_HALF_WIDTH)

    def _half_thickness(self, a: Array) -> Array:
        return _tapered(a, *SACRUM_A, SACRUM_HALF_THICKNESS)

    # --- solids -------------------------------------------------------------------------------

    def _sacrum(self, x: Array, y: Array, z: Array) -> Array:
        a, t = self._along(y, z)
        slope = (SACRUM_HALF_WIDTH[1] - SACRUM_HALF_WIDTH[0]) / (SACRUM_A[1] - SACRUM_A[0])
        r = np.float32(SACRUM_ROUNDING_MM)
        dx = (np.abs(x) - self._half_width(a)) / np.float32(np.hypot(1.0, slope)) + r
        dt = np.abs(t) - self._half_thickness(a) + r
        da = np.maximum(np.float32(SACRUM_A[0]) - a, a - np.float32(SACRUM_A[1])) + r
        body = rounded_box(dx, dt, da, r)
        # a hole changes the distance only where the body is nearer than the hole's radius
        near = np.flatnonzero(body < max(FORAMINA_RADIUS, CANAL_RADIUS))
        u, v, w = x[near], y[near], z[near]
        holes = segment(u, v, w, self._point(0, -30, -5), self._point(0, 70, -11), CANAL_RADIUS)
        for position in FORAMINA_A:
            lateral = float(self._half_width(np.float32(position))) * FORAMINA_X_FRACTION
            for side in (-1, 1):
                hole = segment(
                    u, v, w, self._point(side * lateral, position, -25),
                    self._point(side * lateral, position, 25), FORAMINA_RADIUS,
                )  # fmt: skip
                holes = np.minimum(holes, hole)
        body[near] = np.maximum(body[near], -holes)
        return body

    def _ilium(self, side: int, x: Array, y: Array, z: Array) -> Array:
        """The ilium on ``side`` (+1 right, -1 left) at size 1."""
        u = x * np.float32(side)
        a, t = self._along(y, z)
        half = np.float32(ILIUM_THICKNESS / 2)
        centre = self._half_width(a) + np.float32(self.gap) + half
        r = np.float32(5.0)
        dx = np.abs(u - centre) - half + r
        dt = np.abs(t - 2) - (self._half_thickness(a) + 4) + r
        da = np.maximum(np.float32(AURICULAR_A[0] - 8) - a, a - np.float32(AURICULAR_A[1] + 4)) + r
        block = rounded_box(dx, dt, da, r)
        phi = np.deg2rad(35.0)
        cu, cv = u - 95, y + 5
        ur = cu * np.float32(np.cos(phi)) + cv * np.float32(np.sin(phi))
        vr = -cu * np.float32(np.sin(phi)) + cv * np.float32(np.cos(phi))
        wing = ellipsoid(ur, vr, z, (0, 0, 55), (42, 8, 42))
        pillar = ellipsoid(u, y, z, (70, 5, -45), (22, 26, 35))
        return smooth_union(smooth_union(block, wing, 10.0), pillar, 12.0)

    def bone_box(self, bone: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Frame bounding box (low, high corners, mm) of a bone, at the drawn size."""
        boxes = {
            1: ((-60.0, -70.0, -80.0), (60.0, 70.0, 75.0)),
            2: ((-145.0, -60.0, -90.0), (-15.0, 60.0, 105.0)),
            3: ((15.0, -60.0, -90.0), (145.0, 60.0, 105.0)),
        }
        low, high = boxes[bone]
        return tuple(v * self.size for v in low), tuple(v * self.size for v in high)

    def _bone_unit(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Signed distance to a bone at size 1 (points already divided by the size)."""
        return self._sacrum(x, y, z) if bone == 1 else self._ilium(2 * bone - 5, x, y, z)

    def articular(self, bone: int, x: Array, y: Array, z: Array) -> NDArray[np.bool_]:
        """Whether frame points face the joint (the auricular surfaces)."""
        s = np.float32(self.size)
        a, _ = self._along(y / s, z / s)
        lateral = np.abs(x / s) - self._half_width(a)
        within = (a > AURICULAR_A[0]) & (a < AURICULAR_A[1])
        if bone == 1:
            return within & (lateral > -8)
        return within & (lateral < np.float32(self.gap) + 8)

    def cortex_thickness(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Thin plate over the sacrum and by the joint; the wing's cortex away from it."""
        plate = np.float32(self.plate_mm)
        if bone == 1:
            return np.full(x.shape, plate, np.float32)
        s = np.float32(self.size)
        a, _ = self._along(y / s, z / s)
        away = np.abs(x / s) - self._half_width(a) - np.float32(self.gap)
        return plate + (np.float32(self.cortex_mm) - plate) * smoothstep(away, 12.0, 30.0)

    # --- lesion sites -------------------------------------------------------------------------

    def nominal_site(self, rng: np.random.Generator, site: str) -> NDArray[np.float64]:
        """A frame point near an auricular surface (mm)."""
        a = rng.uniform(AURICULAR_A[0] + 5, AURICULAR_A[1] - 5)
        half_t = float(self._half_thickness(np.float32(a)))
        t = rng.uniform(-0.6 * half_t, 0.6 * half_t)
        side = 1 if site.startswith("right") else -1
        lateral = float(self._half_width(np.float32(a)))
        if "iliac" in site:
            lateral += self.gap
        return self._point(side * lateral, a, t) * self.size

    def island_centre(self, rng: np.random.Generator, bone: int) -> tuple[NDArray, str]:
        """A point in the sacral body or the juxta-articular ilium (mm) and the site's name."""
        a = rng.uniform(5.0, 40.0)
        half_t = float(self._half_thickness(np.float32(a)))
        t = rng.uniform(-0.3 * half_t, 0.3 * half_t)
        if bone == 1:
            return self._point(rng.uniform(-15, 15), a, t) * self.size, "sacral body"
        lateral = float(self._half_width(np.float32(a))) + self.gap + ILIUM_THICKNESS / 2
        side = 1 if bone == 3 else -1
        return self._point(side * lateral, a, t) * self.size, "iliac bone"

    # --- classification -----------------------------------------------------------------------

    def _soft_tissue(self, x: Array, y: Array, z: Array) -> NDArray[np.uint8]:
        s = np.float32(self.size)
        u, v, w = x / s, y / s, z / s
        tissue = np.zeros(x.shape, np.uint8)
        body = s * capped_cylinder(u, v, w, (0, 10), (175, 125), (-1e4, 1e4))
        tissue[body < 0] = T.FAT
        tissue[body < -np.float32(self.fat_mm)] = T.MUSCLE
        tissue[ellipsoid(u, v, w, (0, 60, 10), (75, 45, 85)) < 0] = T.FAT
        tissue[ellipsoid(u, v, w, (0, 30, -40), (15, 12, 30)) < 0] = T.MUSCLE
        for side in (-1, 1):
            vessel = segment(u, v, w, (side * 40, 45, 90), (side * 75, 40, -80), 5.0)
            tissue[vessel < 0] = T.VESSEL
        dura = segment(u, v, w, self._point(0, 40, -9), self._point(0, 220, -12), 7.0)
        tissue[dura < 0] = T.FLUID
        return tissue

    def classify_local(
        self, local: NDArray, soft: NDArray[np.uint8] | None = None
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
        """:meth:`classify` at frame points (N, 3); ``soft`` as in the knee's."""
        points = np.asarray(local, np.float32)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        tissue = self._soft_tissue(x, y, z) if soft is None else soft.copy()
        distances = {bone: self.bone_distance(bone, x, y, z) for bone in SIJ_BONES}
        sacrum = distances[1]
        ilium = np.minimum(distances[2], distances[3])
        span = np.float32(self.gap * self.size + 0.5)
        gap = np.flatnonzero((sacrum > 0) & (ilium > 0) & (sacrum + ilium < span))
        tissue[gap] = T.TENDON
        cartilage = np.float32(self.cartilage_mm)
        line = (sacrum[gap] > cartilage) & (ilium[gap] > cartilage)
        line &= self.articular(1, x[gap], y[gap], z[gap])
        tissue[gap[line]] = T.FLUID
        bone_id, depth = paint_bones(self, tissue, points, distances, self.cartilage_mm)
        return tissue, bone_id, depth


def draw_sij_anatomy(rng: np.random.Generator) -> SacroiliacAnatomy:
    """A pelvis with every property drawn from its range."""

    def uniform(bounds: Range) -> float:
        return float(rng.uniform(*bounds))

    return SacroiliacAnatomy(
        size=uniform(SIZE),
        sacral_tilt_deg=uniform(SACRAL_TILT_DEG),
        cortex_mm=uniform(CORTEX_MM),
        plate_mm=uniform(PLATE_MM),
        cartilage_mm=uniform(CARTILAGE_MM),
        joint_space_mm=uniform(JOINT_SPACE_MM),
        fat_mm=uniform(FAT_MM),
        rotation_deg=tuple(uniform((-TURN_DEG, TURN_DEG)) for _ in range(3)),  # type: ignore[arg-type]
        origin_mm=tuple(uniform((-ORIGIN_MM, ORIGIN_MM)) for _ in range(3)),  # type: ignore[arg-type]
    )
