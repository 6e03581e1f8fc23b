"""Lesions and distractors of the joint phantom, and their geometry.

Kinds (:data:`LESION_KINDS`):

- ``"edema"``: a subchondral bone marrow lesion (BML) under an articular surface, touching
  it, with an ill-defined, geographic border. Edema in the truth.
- ``"bruise"``: a bone bruise (contusion), larger, reticular and ill-defined, at the usual
  impact sites (lateral femoral condyle, posterior tibial plateau) or anywhere subchondral;
  touching the articular surface or a few millimetres under it. Edema in the truth.
- ``"cyst"``: a subchondral cyst: small, round, well defined, fluid signal. Not edema.
- ``"island"``: a red-marrow island: patchy, metaphyseal, mildly fluid-bright and T1-darker
  than fatty marrow. Not edema.

A lesion is an ellipsoid in the joint's frame whose first axis is the inward normal of the
articular surface at its site, with a soft membership (ramp ``margin_mm`` wide) and a border
pushed in and out by a smooth random field (``irregularity_mm``: out by at most one SD, in
by up to three, so holes and lobules stay inside an envelope). It lives only in the marrow
of its bone; it is true where its membership is at least one half.

Examples
--------
>>> from bmetoolkit.data.phantom.joint.knee import KneeAnatomy
>>> lesion = draw_lesion(np.random.default_rng(0), KneeAnatomy(), "cyst", seed=1)
>>> lesion.kind, lesion.margin_mm < 0.5, lesion.irregularity_mm
('cyst', True, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.joint.anatomy import JointAnatomy
from bmetoolkit.data.phantom.joint.fields import NoiseField
from bmetoolkit.data.phantom.joint.shapes import ellipsoid, transform
from bmetoolkit.data.phantom.randomize import RED_ISLAND_RATIOS

__all__ = [
    "EDEMA_KINDS",
    "LESION_KINDS",
    "JointLesion",
    "draw_lesion",
    "lesion_membership",
]

Range = tuple[float, float]
#: Every kind, and the kinds that are edema in the truth.
LESION_KINDS = ("edema", "bruise", "cyst", "island")
EDEMA_KINDS = ("edema", "bruise")
#: Membership at or above which a point belongs to a lesion.
TRUTH_MEMBERSHIP = 0.5

#: Size along the surface normal and along the surface (radii, mm), per kind.
NORMAL_RADIUS_MM: dict[str, Range] = {
    "edema": (4.0, 14.0), "bruise": (6.0, 16.0), "cyst": (2.0, 6.0), "island": (3.0, 8.0),
}  # fmt: skip
TANGENT_RADIUS_MM: dict[str, Range] = {
    "edema": (6.0, 18.0), "bruise": (10.0, 24.0), "cyst": (2.0, 6.0), "island": (3.0, 9.0),
}  # fmt: skip
#: Width of the membership ramp (mm): ill-defined lesions, a well-defined cyst.
MARGIN_MM: dict[str, Range] = {
    "edema": (1.0, 5.0), "bruise": (1.5, 5.0), "cyst": (0.2, 0.4), "island": (1.0, 2.5),
}  # fmt: skip
#: Border irregularity (fraction of the normal radius) and its correlation length (mm):
#: geographic edema, reticular bruises, patchy islands.
IRREGULARITY: dict[str, Range] = {
    "edema": (0.15, 0.35), "bruise": (0.35, 0.6), "cyst": (0.0, 0.0), "island": (0.2, 0.4),
}  # fmt: skip
IRREGULARITY_LENGTH_MM: dict[str, Range] = {
    "edema": (3.0, 6.0), "bruise": (1.5, 3.0), "cyst": (1.0, 1.0), "island": (1.5, 3.0),
}  # fmt: skip
#: The border moves outward by at most this many SD of its field times ``irregularity_mm``
#: and inward by at most ``BORDER_INWARD_SD`` (holes and lobules inside an envelope).
BORDER_OUTWARD_SD = 1.0
BORDER_INWARD_SD = 3.0
#: How deep the centre lies, as a fraction of the normal radius, for a lesion touching the
#: articular surface (the ellipsoid is cut by the bone surface).
TOUCHING_DEPTH: Range = (0.2, 0.7)
#: Extra depth (mm) under the subchondral plate of a bruise that does not touch the surface,
#: and of a cyst's rim.
DEEP_GAP_MM: Range = (2.0, 6.0)
CYST_GAP_MM: Range = (0.3, 1.5)
#: A deep bruise is at most this many times wider (along the surface) than deep; it is redrawn
#: up to ``DEEP_ATTEMPTS`` times, shrinking by ``DEEP_SHRINK`` each time, until its envelope
#: (checked at ``ENVELOPE_POINTS`` points) keeps ``DEEP_CLEARANCE_MM`` under the plate.
DEEP_TANGENT_FACTOR = 1.2
DEEP_ATTEMPTS = 40
DEEP_SHRINK = 0.95
DEEP_CLEARANCE_MM = 2.5
ENVELOPE_POINTS = 200
#: Probability that a bruise touches the articular surface.
BRUISE_TOUCH_PROBABILITY = 0.6
#: Lesion contrast relative to normal marrow: edema on STIR (readers' outlines: 1.3-2.3x,
#: DOMAIN.md) and on T1 (0.6-1.0x: often not T1-dark at all); a fat-suppressed T2 or PD shows
#: it as ``1 + f (stir - 1)`` with ``f`` drawn from :data:`FS_EDEMA_FACTOR`.
EDEMA_RATIOS: dict[str, Range] = {"t1": (0.6, 1.0), "stir": (1.3, 2.3)}
FS_EDEMA_FACTOR: Range = (0.7, 1.0)
#: Newton steps projecting a nominal site point onto the bone surface; gradient step (mm).
PROJECTION_STEPS = 6
GRADIENT_STEP_MM = 0.25


@dataclass(frozen=True)
class JointLesion:
    """One lesion or distractor (joint frame, mm).

    Parameters
    ----------
    kind : {'edema', 'bruise', 'cyst', 'island'}
    bone : int
        Label id of its bone (1 femur, 2 tibia, 3 patella).
    site : str
        Where it lies (an articular site, or ``"femoral metaphysis"``...).
    centre_mm : tuple of 3 floats
    axes : tuple of 3 tuples of 3 floats
        Unit axes of the ellipsoid (the first is the inward surface normal at the site).
    radii_mm : tuple of 3 floats
    margin_mm : float
        Width of the soft membership ramp.
    irregularity_mm : float
        Amplitude of the border's random displacement.
    irregularity_length_mm : float
        Correlation length of that displacement.
    noise_seed : int
    ratios : dict of str to float
        Signal relative to normal marrow per sequence (``"t1"``, ``"stir"``, ``"t2fs"``,
        ``"pdfs"``); a cyst takes the joint fluid's signal instead.
    bone_name : str
        The bone's name.
    """

    kind: str
    bone: int
    site: str
    centre_mm: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    radii_mm: tuple[float, float, float]
    margin_mm: float
    irregularity_mm: float = 0.0
    irregularity_length_mm: float = 2.0
    noise_seed: int = 0
    ratios: Mapping[str, float] = field(default_factory=dict)
    bone_name: str = ""

    def reach_mm(self) -> float:
        """Largest distance from the centre at which the lesion can hold."""
        return max(self.radii_mm) + self.margin_mm + BORDER_OUTWARD_SD * self.irregularity_mm

    def field(self, step_mm: float) -> NoiseField | None:
        """The border's random field (None for a regular lesion)."""
        if self.irregularity_mm <= 0:
            return None
        reach = self.reach_mm() + 2 * step_mm
        centre = np.asarray(self.centre_mm)
        return NoiseField(
            centre - reach,
            centre + reach,
            step_mm=step_mm,
            length_mm=self.irregularity_length_mm,
            seed=self.noise_seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self) | {"ratios": dict(self.ratios)}


def lesion_membership(
    lesion: JointLesion, local: NDArray, noise: NoiseField | None
) -> NDArray[np.float32]:
    """Soft membership (0-1) of frame points (N, 3) in a lesion's ellipsoid.

    Ignores the bone: callers keep it to their marrow.
    """
    axes = np.asarray(lesion.axes, np.float32)
    relative = transform(local, axes, -(axes @ np.asarray(lesion.centre_mm, np.float32)))
    zero = np.zeros(relative.shape[0], np.float32)
    distance = ellipsoid(relative[:, 0], relative[:, 1], relative[:, 2], (0, 0, 0), lesion.radii_mm)
    if noise is not None:
        push = np.clip(noise.at(local), -BORDER_INWARD_SD, BORDER_OUTWARD_SD)
        distance = distance - np.float32(lesion.irregularity_mm) * push
    ramp = max(lesion.margin_mm, 1e-3)
    return np.clip(np.float32(0.5) - distance / np.float32(ramp), 0, 1) + zero


# --- placement ----------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(*bounds))


def _gradient(anatomy: JointAnatomy, bone: int, point: NDArray) -> NDArray[np.float64]:
    h = GRADIENT_STEP_MM
    stencil = np.vstack([point + h * e for e in np.eye(3)] + [point - h * e for e in np.eye(3)])
    d = anatomy.bone_distance(bone, *(stencil[:, n].astype(np.float32) for n in range(3)))
    grad = (d[:3] - d[3:]).astype(np.float64) / (2 * h)
    return grad / max(float(np.linalg.norm(grad)), 1e-9)


def surface_point(
    anatomy: JointAnatomy, bone: int, point: NDArray
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Project a point onto a bone's surface; return it and the inward unit normal there."""
    p = np.asarray(point, np.float64)
    for _ in range(PROJECTION_STEPS):
        d = float(anatomy.bone_distance(bone, *(np.float32([v]) for v in p))[0])
        p = p - d * _gradient(anatomy, bone, p)
    return p, -_gradient(anatomy, bone, p)


def _frame(normal: NDArray, rng: np.random.Generator) -> tuple[tuple[float, float, float], ...]:
    """Orthonormal axes: the normal, then two tangents turned by a random angle."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    t1 = np.cross(normal, helper)
    t1 /= np.linalg.norm(t1)
    t2 = np.cross(normal, t1)
    angle = _uniform(rng, (0.0, np.pi))
    a, b = np.cos(angle) * t1 + np.sin(angle) * t2, -np.sin(angle) * t1 + np.cos(angle) * t2
    return tuple(tuple(float(v) for v in axis) for axis in (normal, a, b))  # type: ignore[return-value]


def _ratios(rng: np.random.Generator, kind: str) -> dict[str, float]:
    if kind in EDEMA_KINDS:
        stir = _uniform(rng, EDEMA_RATIOS["stir"])
        ratios = {"t1": _uniform(rng, EDEMA_RATIOS["t1"]), "stir": stir}
        for name in ("t2fs", "pdfs"):
            ratios[name] = 1 + _uniform(rng, FS_EDEMA_FACTOR) * (stir - 1)
        return ratios
    if kind == "island":
        fluid = _uniform(rng, RED_ISLAND_RATIOS["fluid"])
        return {"t1": _uniform(rng, RED_ISLAND_RATIOS["t1"]), "stir": fluid, "t2fs": fluid,
                "pdfs": fluid}  # fmt: skip
    return {}


def _shape(rng: np.random.Generator, kind: str) -> tuple[tuple[float, float, float], float, float]:
    normal = _uniform(rng, NORMAL_RADIUS_MM[kind])
    if kind == "cyst":
        radii = (normal, normal, normal)
    else:
        radii = (normal, *(_uniform(rng, TANGENT_RADIUS_MM[kind]) for _ in range(2)))
    margin = _uniform(rng, MARGIN_MM[kind])
    return radii, margin, _uniform(rng, IRREGULARITY[kind]) * normal  # type: ignore[return-value]


def _pick_site(
    rng: np.random.Generator, anatomy: JointAnatomy, kind: str, bone: int | None, site: str | None
) -> str:
    weights = {
        name: w
        for name, w in anatomy.site_weights(kind).items()
        if (bone is None or anatomy.sites[name] == bone) and (site is None or name == site)
    }
    if not weights:
        raise ValueError(f"no {kind} site in bone {bone} / site {site!r}")
    names = [name for name, w in weights.items() if w > 0] or list(weights)
    p = np.array([weights[name] for name in names]) + 1e-9
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _sphere(n: int) -> NDArray[np.float64]:
    """``n`` nearly even unit directions (Fibonacci sphere), shape (n, 3)."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azimuth = np.pi * (1 + 5**0.5) * k
    return np.stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1
    )


def _clear_inside(
    anatomy: JointAnatomy, bone: int, centre: NDArray, axes: tuple, radii: tuple, clearance: float
) -> bool:
    """Whether an ellipsoid lies inside ``bone`` at least ``clearance`` mm under its surface."""
    points = centre + (_sphere(ENVELOPE_POINTS) * np.asarray(radii)) @ np.asarray(axes)
    depth = -anatomy.bone_distance(bone, *(points[:, n].astype(np.float32) for n in range(3)))
    return bool(np.all(depth > clearance))


def _articular_placement(
    rng: np.random.Generator, anatomy: JointAnatomy, kind: str, bone: int | None, site: str | None,
    shape: tuple[tuple[float, float, float], float, float], deep: bool,
) -> tuple[str, NDArray, tuple, tuple[tuple[float, float, float], float, float]]:  # fmt: skip
    """Site, centre, axes and shape (radii, margin, irregularity) under an articular surface.

    A deep bruise is redrawn, a little smaller each time, until its envelope keeps
    :data:`DEEP_CLEARANCE_MM` under the subchondral plate everywhere.
    """
    base, margin, base_irregularity = shape
    radii, irregularity = base, base_irregularity
    for attempt in range(DEEP_ATTEMPTS if deep else 1):
        chosen = _pick_site(rng, anatomy, kind, bone, site)
        owner = anatomy.sites[chosen]
        surface, normal = surface_point(anatomy, owner, anatomy.nominal_site(rng, chosen))
        axes = _frame(normal, rng)
        if kind == "cyst":
            depth = anatomy.plate_mm + radii[0] + _uniform(rng, CYST_GAP_MM)
        elif deep:
            shrink = DEEP_SHRINK**attempt
            widest = DEEP_TANGENT_FACTOR * base[0]
            radii = tuple(min(r, widest) * shrink for r in base)  # type: ignore[assignment]
            irregularity = base_irregularity * shrink
            outward = margin / 2 + BORDER_OUTWARD_SD * irregularity
            depth = anatomy.plate_mm + radii[0] + outward + _uniform(rng, DEEP_GAP_MM)
            envelope = tuple(r + outward for r in radii)
            clearance = anatomy.plate_mm + DEEP_CLEARANCE_MM
            if _clear_inside(anatomy, owner, surface + depth * normal, axes, envelope, clearance):
                break
        else:
            depth = radii[0] * _uniform(rng, TOUCHING_DEPTH)
    return chosen, surface + depth * normal, axes, (radii, margin, irregularity)


def draw_lesion(
    rng: np.random.Generator,
    anatomy: JointAnatomy,
    kind: str,
    *,
    seed: int,
    bone: int | None = None,
    site: str | None = None,
    touch: bool | None = None,
) -> JointLesion:
    """Draw one lesion of ``kind`` (optionally in a given bone or site).

    Parameters
    ----------
    rng : numpy.random.Generator
    anatomy : JointAnatomy
    kind : {'edema', 'bruise', 'cyst', 'island'}
    seed : int
        Seed of the border's random field.
    bone : int, optional
        Restrict the site to this bone.
    site : str, optional
        One of ``anatomy.sites`` (not for islands).
    touch : bool, optional
        Bruises only: whether it touches the articular surface (drawn when None).
    """
    if kind not in LESION_KINDS:
        raise ValueError(f"unknown lesion kind {kind!r}; use one of {list(LESION_KINDS)}")
    radii, margin, irregularity = _shape(rng, kind)
    length = _uniform(rng, IRREGULARITY_LENGTH_MM[kind])
    ratios = _ratios(rng, kind)
    if kind == "island":
        choices = anatomy.island_bones
        if bone not in choices:
            bone = choices[int(rng.random() * len(choices))]
        centre, site = anatomy.island_centre(rng, bone)
        axes = _frame(np.array([0.0, 0.0, 1.0]), rng)
    else:
        touching = touch if touch is not None else rng.random() < BRUISE_TOUCH_PROBABILITY
        deep = kind == "bruise" and not touching
        site, centre, axes, (radii, margin, irregularity) = _articular_placement(
            rng, anatomy, kind, bone, site, (radii, margin, irregularity), deep
        )
        bone = anatomy.sites[site]
    return JointLesion(
        kind=kind,
        bone=int(bone),
        site=site,
        centre_mm=tuple(float(v) for v in centre),  # type: ignore[arg-type]
        axes=axes,
        radii_mm=radii,
        margin_mm=margin,
        irregularity_mm=irregularity,
        irregularity_length_mm=length,
        noise_seed=seed,
        ratios=ratios,
        bone_name=anatomy.bones[int(bone)],
    )
