"""What every joint anatomy provides: tissues, a placed frame, bones, sites and distances.

A joint anatomy (:class:`~.knee.KneeAnatomy`, :class:`~.sij.SacroiliacAnatomy`) lives in its
own frame (mm), rigidly placed in RAS+ world space by :class:`JointFrame`. The sampling,
lesion and truth code only uses the :class:`JointAnatomy` protocol, so a new joint is a new
module with one class.

Examples
--------
>>> frame = JointFrame(rotation_deg=(0.0, 0.0, 90.0), origin_mm=(1.0, 2.0, 3.0))
>>> frame.to_world([[1.0, 0.0, 0.0]]).round(6).tolist()
[[1.0, 3.0, 3.0]]
>>> frame.to_local(frame.to_world([[4.0, 5.0, 6.0]])).round(6).tolist()
[[4.0, 5.0, 6.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bmetoolkit.data.phantom.grids import rotation

__all__ = [
    "FAR",
    "AnatomyBase",
    "JointAnatomy",
    "JointFrame",
    "JointTissue",
    "paint_bones",
    "smoothstep",
]

Array = NDArray[np.float32]
#: Large positive distance for points outside a bone's bounding box.
FAR = np.float32(1e4)


class JointTissue(IntEnum):
    """Tissue classes of the joint phantoms (sample codes)."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    TENDON = 3
    MENISCUS = 4
    VESSEL = 5
    FLUID = 6
    CARTILAGE = 7
    CORTEX = 8
    MARROW = 9


def smoothstep(value: Array, low: float, high: float) -> Array:
    """0 below ``low``, 1 above ``high``, a smooth cubic between.

    >>> smoothstep(np.float32([0.0, 5.0, 10.0]), 0.0, 10.0).tolist()
    [0.0, 0.5, 1.0]
    """
    t = np.clip((value - np.float32(low)) / np.float32(high - low), 0, 1)
    return t * t * (3 - 2 * t)


@dataclass(frozen=True)
class JointFrame:
    """Rigid placement of an anatomy frame in world space (with an optional mirror in x).

    Parameters
    ----------
    rotation_deg : tuple of 3 floats
        Rotations about world x, then y, then z (degrees).
    origin_mm : tuple of 3 floats
        World position (RAS+ mm) of the frame's origin.
    mirror_x : bool
        Mirror the frame's x axis first (a left knee from a right one).
    """

    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mirror_x: bool = False

    @property
    def matrix(self) -> NDArray[np.float64]:
        """Frame axes (columns) in world space."""
        mirror = np.diag([-1.0 if self.mirror_x else 1.0, 1.0, 1.0])
        return rotation(self.rotation_deg) @ mirror

    def to_world(self, local: ArrayLike) -> NDArray[np.float64]:
        """Frame points (N, 3) in RAS+ world mm."""
        points = np.atleast_2d(np.asarray(local, np.float64))
        return points @ self.matrix.T + np.asarray(self.origin_mm)

    def to_local(self, world: ArrayLike) -> NDArray[np.float64]:
        """World points (N, 3) in the frame (mm); the inverse of :meth:`to_world`."""
        points = np.atleast_2d(np.asarray(world, np.float64)) - np.asarray(self.origin_mm)
        return points @ np.linalg.inv(self.matrix).T

    def voxel_to_local(self, affine: NDArray) -> tuple[NDArray, NDArray]:
        """Matrix and offset taking a grid's voxel indices to frame points (mm)."""
        inverse = np.linalg.inv(self.matrix)
        return inverse @ affine[:3, :3], inverse @ (affine[:3, 3] - np.asarray(self.origin_mm))


class JointAnatomy(Protocol):
    """The interface the sampling, lesion and truth code needs from a joint's anatomy."""

    size: float
    plate_mm: float

    @property
    def bones(self) -> dict[int, str]:
        """Bone names by label id (1..n)."""

    @property
    def frame(self) -> JointFrame:
        """Placement in world space."""

    @property
    def sites(self) -> dict[str, int]:
        """Articular lesion sites and the bone of each."""

    @property
    def island_bones(self) -> tuple[int, ...]:
        """Bones red-marrow islands may lie in."""

    @property
    def mottle_box(self) -> tuple[NDArray, NDArray]:
        """Frame box (low, high corners, mm) holding the marrow worth mottling."""

    def centre(self) -> NDArray[np.float64]:
        """World position of the nominal field-of-view centre."""

    def site_weights(self, kind: str) -> dict[str, float]:
        """Relative frequency of each site for a lesion kind."""

    def nominal_site(self, rng: np.random.Generator, site: str) -> NDArray[np.float64]:
        """A frame point near the articular surface of a site."""

    def island_centre(self, rng: np.random.Generator, bone: int) -> tuple[NDArray, str]:
        """A frame point in a bone's marrow for a red-marrow island, and the site's name."""

    def bone_distance(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Signed distance (mm, negative inside) to a bone at frame points."""

    def articular(self, bone: int, x: Array, y: Array, z: Array) -> NDArray[np.bool_]:
        """Whether frame points lie on or under a bone's cartilage-covered surface."""

    def cortex_thickness(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Cortical thickness (mm) of a bone at frame points."""

    def soft_tissue(self, local: NDArray) -> NDArray[np.uint8]:
        """Soft tissue codes at frame points (N, 3), ignoring joint and bones."""

    def classify_local(
        self, local: NDArray, soft: NDArray[np.uint8] | None = None
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
        """Tissue, bone id and depth below the nearest bone surface at frame points."""


def paint_bones(
    anatomy: JointAnatomy,
    tissue: NDArray[np.uint8],
    points: NDArray[np.float32],
    distances: dict[int, Array],
    cartilage_mm: float,
) -> tuple[NDArray[np.uint8], Array]:
    """Paint cartilage, cortex and marrow over ``tissue`` (in place) from bone distances.

    Cartilage covers each bone's articular surfaces (``cartilage_mm`` thick, outside the
    bone); inside a bone the outer ``cortex_thickness`` is cortex and the rest marrow.

    Returns
    -------
    bone : ndarray of uint8
        Bone id of cortex and marrow points, else 0.
    depth : ndarray of float32
        Depth (mm) below the surface of the nearest bone (negative outside every bone).
    """
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    for bone, distance in distances.items():
        shell = np.flatnonzero((distance >= 0) & (distance < np.float32(cartilage_mm)))
        covered = anatomy.articular(bone, x[shell], y[shell], z[shell])
        tissue[shell[covered]] = JointTissue.CARTILAGE
    bone_id = np.zeros(x.shape, np.uint8)
    depth = np.full(x.shape, -FAR, np.float32)
    for bone, distance in distances.items():
        inside = np.flatnonzero(distance < 0)
        tissue[inside] = JointTissue.CORTEX
        bone_id[inside] = bone
        thickness = anatomy.cortex_thickness(bone, x[inside], y[inside], z[inside])
        tissue[inside[-distance[inside] > thickness]] = JointTissue.MARROW
        depth = np.maximum(depth, -distance)
    return bone_id, depth


class AnatomyBase:
    """Shared behaviour of the joint anatomies (a mixin of their frozen dataclasses).

    A subclass sets :attr:`BONES`, :attr:`SITE_WEIGHTS`, :attr:`MOTTLE_BOX_MM` and
    :attr:`NEAR_MM`, has ``size`` and a ``frame``, and implements ``bone_box``,
    ``_bone_unit`` (signed distance at size 1) and ``_soft_tissue``.
    """

    #: Bone names by label id; site weights per lesion kind; the mottle field's box (frame
    #: at size 1, mm); how far beyond a bone's box (mm) its distance is still evaluated.
    BONES: ClassVar[dict[int, str]] = {}
    SITE_WEIGHTS: ClassVar[dict[str, dict[str, float]]] = {}
    MOTTLE_BOX_MM: ClassVar[tuple[tuple[float, float, float], tuple[float, float, float]]]
    NEAR_MM: ClassVar[float] = 10.0
    #: Extent (mm) over which the bias field grows by its amplitude.
    BIAS_SPAN_MM: ClassVar[float] = 100.0
    size: float
    frame: JointFrame

    @property
    def bones(self) -> dict[int, str]:
        """Bone names by label id."""
        return dict(self.BONES)

    @property
    def mottle_box(self) -> tuple[NDArray, NDArray]:
        """Frame box (low, high corners, mm) of the marrow mottle field."""
        low, high = self.MOTTLE_BOX_MM
        return np.asarray(low) * self.size, np.asarray(high) * self.size

    def site_weights(self, kind: str) -> dict[str, float]:
        """Relative frequency of each articular site for a lesion kind."""
        return dict(self.SITE_WEIGHTS[kind])

    def to_world(self, local: ArrayLike) -> NDArray[np.float64]:
        """Frame points (N, 3) in RAS+ world mm."""
        return self.frame.to_world(local)

    def to_local(self, world: ArrayLike) -> NDArray[np.float64]:
        """World points (N, 3) in the frame (mm); the inverse of :meth:`to_world`."""
        return self.frame.to_local(world)

    def bone_box(self, bone: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Frame bounding box (low, high corners, mm) of a bone, at the drawn size."""
        raise NotImplementedError

    def _bone_unit(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Signed distance to a bone at size 1 (points already divided by the size)."""
        raise NotImplementedError

    def _soft_tissue(self, x: Array, y: Array, z: Array) -> NDArray[np.uint8]:
        """Soft tissue codes at frame points."""
        raise NotImplementedError

    def bone_distance(self, bone: int, x: Array, y: Array, z: Array) -> Array:
        """Signed distance (mm, negative inside) to a bone at frame points (mm).

        Points outside the bone's box (plus :attr:`NEAR_MM`) get a large positive value.
        """
        s = np.float32(self.size)
        low, high = self.bone_box(bone)
        near = np.float32(self.NEAR_MM)
        inside = np.ones(x.shape, bool)
        for value, lo, hi in zip((x, y, z), low, high, strict=True):
            inside &= (value > lo - near) & (value < hi + near)
        out = np.full(x.shape, FAR, np.float32)
        if inside.any():
            out[inside] = s * self._bone_unit(bone, x[inside] / s, y[inside] / s, z[inside] / s)
        return out

    def soft_tissue(self, local: NDArray) -> NDArray[np.uint8]:
        """Soft tissue codes at frame points (N, 3), ignoring joint and bones."""
        points = np.asarray(local, np.float32)
        return self._soft_tissue(points[:, 0], points[:, 1], points[:, 2])

    def classify_local(
        self, local: NDArray, soft: NDArray[np.uint8] | None = None
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
        """Tissue, bone id and depth below the nearest bone surface at frame points."""
        raise NotImplementedError

    def classify(
        self, world: ArrayLike
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
        """Tissue, bone id and depth below the bone surface at world points (N, 3).

        Returns
        -------
        tissue : ndarray of uint8
            :class:`JointTissue` codes.
        bone : ndarray of uint8
            Bone id of cortex and marrow points, else 0.
        depth : ndarray of float32
            Depth (mm) below the surface of the nearest bone (negative outside every bone).
        """
        return self.classify_local(self.to_local(world))
