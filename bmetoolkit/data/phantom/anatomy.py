"""Geometry of the synthetic lumbar spine: vertebral bodies, discs, canal, posterior elements.

Everything is analytic and expressed in world RAS+ millimetres. Each vertebra has a centre
on a lordotic curve in the mid-sagittal (y-z) plane and a local frame:

- ``u`` (SI axis, pointing superior, tangent to the curve),
- ``v`` (AP axis, pointing anterior, perpendicular to ``u`` in the sagittal plane),
- ``x`` (LR axis, world +x = Right).

Local coordinates of a point ``p`` are ``ap = (p - c)·v``, ``lr = p_x - c_x`` and
``si = (p - c)·u``. A body is an elliptic cylinder (AP semi-axis ``a``, LR semi-axis ``b``,
slightly waisted at mid-height) between two concave endplate surfaces
``si = ±(h/2 - dome·(1 - r²))``, with ``r`` the normalised in-plane radius.

Examples
--------
>>> spine = build_spine(AnatomyConfig())
>>> [v.level for v in spine.vertebrae]
['T11', 'T12', 'L1', 'L2', 'L3', 'L4', 'L5', 'S1']
>>> [v.verse_id for v in spine.vertebrae]
[18, 19, 20, 21, 22, 23, 24, 26]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_LEVELS",
    "N_TISSUES",
    "VERSE_IDS",
    "AnatomyConfig",
    "Spine",
    "Tissue",
    "Vertebra",
    "body_height_reference_mm",
    "build_spine",
    "endplate_depth",
]

Array = NDArray[np.float32]

#: VerSe vertebra ids (DOMAIN.md): C1-C7 1-7, T1-T12 8-19, L1-L5 20-24, L6 25, sacrum 26, T13 28.
VERSE_IDS: dict[str, int] = (
    {f"C{n}": n for n in range(1, 8)}
    | {f"T{n}": 7 + n for n in range(1, 13)}
    | {f"L{n}": 19 + n for n in range(1, 6)}
    | {"L6": 25, "S1": 26, "T13": 28}
)

#: Levels of the default phantom, cranial to caudal.
DEFAULT_LEVELS: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")


class Tissue(IntEnum):
    """Tissue classes of the phantom. Lesion classes replace marrow inside a body."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    VISCERA = 3
    CSF = 4
    CORD = 5
    EPIDURAL_FAT = 6
    POSTERIOR_BONE = 7
    ANNULUS = 8
    NUCLEUS = 9
    CORTEX = 10
    MARROW = 11
    MODIC1 = 12
    MODIC2 = 13
    MODIC3 = 14
    EDEMA = 15
    HAEMANGIOMA = 16


#: Number of tissue classes; a sample code is ``tissue + N_TISSUES * (vertebra_index + 1)``
#: for tissues of a vertebral body and plain ``tissue`` elsewhere.
N_TISSUES = len(Tissue)

#: Tissues making up a vertebral body (labelled with the VerSe id in the truth).
BODY_TISSUES = (
    Tissue.CORTEX,
    Tissue.MARROW,
    Tissue.MODIC1,
    Tissue.MODIC2,
    Tissue.MODIC3,
    Tissue.EDEMA,
    Tissue.HAEMANGIOMA,
)


@dataclass(frozen=True)
class AnatomyConfig:
    """Dimensions of the phantom spine (all lengths in mm, angles in degrees).

    Per-level tuples follow ``levels`` (cranial to caudal). ``disc_height_mm`` also has one
    entry per level: the disc above that level (the first one lies above the first level,
    under a virtual, unrendered vertebra).
    """

    levels: tuple[str, ...] = DEFAULT_LEVELS
    #: Body height at the rim, per level (mm).
    body_height_mm: tuple[float, ...] = (24.0, 25.0, 26.0, 27.0, 28.0, 28.0, 27.0, 30.0)
    #: Body AP semi-axis per level (mm).
    body_ap_radius_mm: tuple[float, ...] = (15.0, 15.5, 16.0, 17.0, 17.5, 18.0, 18.0, 19.0)
    #: Body LR semi-axis per level (mm).
    body_lr_radius_mm: tuple[float, ...] = (18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 23.0)
    #: Angle of each body's SI axis from world +z, positive towards anterior (deg). Lordosis.
    tilt_deg: tuple[float, ...] = (-8.0, -6.0, -4.0, -1.0, 3.0, 8.0, 15.0, 27.0)
    #: Disc height along the curve at the endplate centres (mm): T10/T11, T11/T12, ... L5/S1.
    disc_height_mm: tuple[float, ...] = (6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 11.0, 10.0)
    #: Depth of the concave endplate dome at its centre (mm).
    endplate_dome_mm: float = 1.8
    #: Thickness of the endplate (SI) and of the cortical shell (radial) (mm).
    endplate_thickness_mm: float = 1.0
    cortex_thickness_mm: float = 1.0
    #: Relative narrowing of the body at mid-height (waist), as a fraction of the radii.
    body_waist: float = 0.06
    #: Bony canal AP and LR semi-axes (mm), and thecal sac size as a fraction of it.
    canal_ap_radius_mm: float = 8.0
    canal_lr_radius_mm: float = 11.0
    thecal_sac_fraction: float = 0.8
    #: Spinal cord semi-axes (mm); the cord ends (conus) at mid-height of ``conus_level``.
    cord_ap_radius_mm: float = 4.0
    cord_lr_radius_mm: float = 5.0
    conus_level: str = "L1"
    #: Gap between the posterior body wall and the canal (posterior longitudinal ligament).
    ligament_gap_mm: float = 1.0
    #: Pedicle LR width (mm); lamina AP thickness (mm); spinous process AP length and
    #: LR half-width (mm).
    pedicle_width_mm: float = 7.0
    lamina_thickness_mm: float = 6.0
    spinous_length_mm: float = 28.0
    spinous_half_width_mm: float = 4.0
    #: Skin and fat: distance of the posterior skin behind the posterior body wall, and of the
    #: anterior skin in front of the anterior body wall (mm); subcutaneous fat thickness (mm).
    posterior_skin_depth_mm: float = 85.0
    anterior_skin_depth_mm: float = 180.0
    subcutaneous_fat_mm: float = 14.0
    #: Relative random jitter (standard deviation) of body heights and radii, per seed.
    size_jitter: float = 0.03
    #: Optional structures around the spine (absent at the defaults; the randomized
    #: "real anatomy" family draws them): aorta and inferior vena cava, flow voids (no
    #: signal) in front of the bodies, left and right of the midline, with their radius
    #: (mm; 0 = absent), LR offset (mm) and gap to the mean anterior body wall (mm).
    aorta_radius_mm: float = 0.0
    ivc_radius_mm: float = 0.0
    vessel_lr_offset_mm: float = 15.0
    vessel_gap_mm: float = 1.0
    #: Iliac wings: bone (posterior-element signal) lateral to the sacrum, from this LR
    #: distance (mm; 0 = absent) off the midline, ``iliac_thickness_mm`` thick, from the top
    #: of S1 down.
    iliac_lr_mm: float = 0.0
    iliac_thickness_mm: float = 12.0
    #: Bowel gas (no signal): spheres (anterior distance from the spine's centre line, LR,
    #: world SI, radius; mm) in front of the spine.
    bowel_gas: tuple[tuple[float, float, float, float], ...] = ()
    #: Psoas: the lateral muscles reach this far (mm) in front of the mean anterior body
    #: wall (0: they stop at its level, as at the defaults), against the bodies' sides.
    psoas_front_mm: float = 0.0
    #: The sacrum below S1 (S2 and down, absent at the defaults): marrow-signal bone
    #: continuing S1's axis for this length (mm; 0 = absent), tapering to half S1's depth,
    #: under a remnant disc ``sacral_disc_mm`` thick; not a vertebral body of the truth.
    lower_sacrum_mm: float = 0.0
    sacral_disc_mm: float = 1.0
    #: Pelvic bone with marrow signal (ilium and sacral alae against the sacrum), from
    #: this LR distance (mm; 0 = absent) off the midline outwards, from the top of S1 down
    #: to the image's lower edge, within ``pelvis_ap_mm`` of the spine's centre line.
    pelvis_lr_mm: float = 0.0
    pelvis_ap_mm: float = 40.0
    #: Fluid-filled bowel loops (CSF-like fluid in a viscera wall ``bowel_wall_mm`` thick):
    #: spheres (anterior distance from the spine's centre line, LR, world SI, radius; mm).
    bowel_loops: tuple[tuple[float, float, float, float], ...] = ()
    bowel_wall_mm: float = 2.5
    #: Render the vertebra above the first level (T10 above T11, absent at the defaults) as
    #: a healthy body of its own: marrow, cortex and endplates, canal and posterior elements
    #: as every other level has, labelled with its VerSe id in the truth. Its dimensions are
    #: those of the virtual ``above`` vertebra (the first level's), with the disc above it
    #: as thick as the disc under it. No lesion is drawn in it (it is not in ``levels``).
    render_above: bool = False


@dataclass(frozen=True)
class Vertebra:
    """One vertebra of the phantom with its local frame and dimensions (mm).

    ``rendered`` is False for the virtual vertebra above the first level, which only bounds
    the disc above it (True when :attr:`AnatomyConfig.render_above` renders it; its
    ``index`` is then the number of levels, so its sample codes follow the levels' own).
    """

    level: str
    verse_id: int
    index: int
    centre: NDArray[np.float64]
    tilt_rad: float
    height_mm: float
    ap_radius_mm: float
    lr_radius_mm: float
    dome_superior_mm: float
    dome_inferior_mm: float
    rendered: bool = True
    #: Relative narrowing of the radii at mid-height.
    waist: float = 0.0

    @property
    def u(self) -> NDArray[np.float64]:
        """Unit SI axis (superior) in RAS+."""
        return np.array([0.0, np.sin(self.tilt_rad), np.cos(self.tilt_rad)])

    @property
    def v(self) -> NDArray[np.float64]:
        """Unit AP axis (anterior) in RAS+."""
        return np.array([0.0, np.cos(self.tilt_rad), -np.sin(self.tilt_rad)])

    def local(self, x: Array, y: Array, z: Array) -> tuple[Array, Array, Array]:
        """World RAS+ mm coordinates to local ``(ap, lr, si)`` mm coordinates."""
        dx = x - np.float32(self.centre[0])
        dy = y - np.float32(self.centre[1])
        dz = z - np.float32(self.centre[2])
        s, c = np.float32(np.sin(self.tilt_rad)), np.float32(np.cos(self.tilt_rad))
        return dy * c - dz * s, dx, dy * s + dz * c

    def to_world(self, ap: NDArray, lr: NDArray, si: NDArray) -> NDArray[np.float64]:
        """Local ``(ap, lr, si)`` mm coordinates to world RAS+ mm, shape (N, 3)."""
        ap, lr, si = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (ap, lr, si))
        return (
            self.centre
            + ap[:, None] * self.v
            + lr[:, None] * np.array([1.0, 0.0, 0.0])
            + si[:, None] * self.u
        )

    def radius2(self, ap: Array, lr: Array, si: Array) -> Array:
        """Squared normalised in-plane radius (1 on the body surface), with the waist."""
        half = np.float32(self.height_mm / 2)
        t = np.clip(si / half, -1, 1)
        scale = 1 - np.float32(self.waist) * (1 - t * t)
        return (ap / (self.ap_radius_mm * scale)) ** 2 + (lr / (self.lr_radius_mm * scale)) ** 2

    def surfaces(self, r2: Array) -> tuple[Array, Array]:
        """Superior and inferior endplate surfaces ``si(r²)`` (mm) for a normalised radius."""
        flat = np.clip(1 - r2, 0, 1)
        half = np.float32(self.height_mm / 2)
        return (
            half - np.float32(self.dome_superior_mm) * flat,
            -half + np.float32(self.dome_inferior_mm) * flat,
        )


def endplate_depth(vertebra: Vertebra, ap: Array, lr: Array, si: Array, endplate: str) -> Array:
    """Depth (mm) below the given endplate surface, positive inside the body."""
    r2 = vertebra.radius2(ap, lr, si)
    top, bottom = vertebra.surfaces(r2)
    return top - si if endplate == "superior" else si - bottom


def body_height_reference_mm(vertebra: Vertebra) -> float:
    """Body height used for height grades: distance between the endplates at the centre (mm).

    >>> body_height_reference_mm(build_spine(AnatomyConfig()).vertebrae[0])
    20.4
    """
    return round(vertebra.height_mm - vertebra.dome_superior_mm - vertebra.dome_inferior_mm, 6)


@dataclass(frozen=True)
class Spine:
    """The vertebrae of the phantom plus the anatomy parameters they came from.

    ``above`` is the vertebra bounding the disc above the first level: virtual (unrendered)
    by default, a body of its own (e.g. T10) with :attr:`AnatomyConfig.render_above`, when
    ``beyond`` is the virtual vertebra bounding the disc above it in turn.
    """

    vertebrae: tuple[Vertebra, ...]
    above: Vertebra
    config: AnatomyConfig
    curve_z: NDArray[np.float64] = field(repr=False)
    curve_y: NDArray[np.float64] = field(repr=False)
    curve_tilt: NDArray[np.float64] = field(repr=False)
    beyond: Vertebra | None = None

    @property
    def bodies(self) -> tuple[Vertebra, ...]:
        """Every rendered vertebral body: the levels, then ``above`` when it is rendered."""
        return (*self.vertebrae, self.above) if self.above.rendered else self.vertebrae

    def vertebra(self, level: str) -> Vertebra:
        """The rendered vertebra at ``level`` (e.g. ``"L4"``, or ``"T10"`` when rendered)."""
        for vertebra in self.bodies:
            if vertebra.level == level:
                return vertebra
        raise KeyError(f"level {level!r} is not in the phantom (levels: {self.levels})")

    @property
    def levels(self) -> tuple[str, ...]:
        """Level names, cranial to caudal."""
        return tuple(v.level for v in self.vertebrae)

    def centre_of_field(self) -> NDArray[np.float64]:
        """A good field-of-view centre: middle of the spine, shifted posteriorly (mm)."""
        top = self.vertebrae[0].to_world([0.0], [0.0], [self.vertebrae[0].height_mm / 2])[0]
        low = self.vertebrae[-1].to_world([0.0], [0.0], [-self.vertebrae[-1].height_mm / 2])[0]
        centre = (top + low) / 2
        centre[1] -= FIELD_CENTRE_POSTERIOR_SHIFT_MM
        return centre

    def sagittal_frame(self, y: Array, z: Array) -> tuple[Array, Array]:
        """Approximate AP distance (mm) from the spine centre line, and its tilt (rad).

        Interpolates the centre line at world ``z``; enough to place skin, fat and muscle.
        """
        yc = np.interp(z, self.curve_z, self.curve_y).astype(np.float32)
        tilt = np.interp(z, self.curve_z, self.curve_tilt).astype(np.float32)
        return (y - yc) * np.cos(tilt), tilt


#: The field of view is centred this far behind the body centres, to include the canal,
#: posterior elements and back muscles (mm).
FIELD_CENTRE_POSTERIOR_SHIFT_MM = 30.0


def _jittered(values: tuple[float, ...], n: int, jitter: float, rng: np.random.Generator | None):
    base = np.asarray(values[:n], dtype=np.float64)
    if len(base) != n:
        raise ValueError(f"need {n} per-level values, got {len(values)}: {values}")
    if rng is None or jitter == 0:
        return base
    return base * (1 + jitter * rng.standard_normal(n))


def build_spine(config: AnatomyConfig, rng: np.random.Generator | None = None) -> Spine:
    """Stack the vertebrae of ``config`` along a lordotic curve.

    Parameters
    ----------
    config : AnatomyConfig
        Levels and dimensions.
    rng : numpy.random.Generator, optional
        When given, body sizes get a small random jitter (``config.size_jitter``).

    Returns
    -------
    Spine
        Vertebrae cranial to caudal; the world origin lies near the middle of the spine.
    """
    n = len(config.levels)
    for level in config.levels:
        if level not in VERSE_IDS:
            raise ValueError(f"unknown level {level!r}; use names such as 'L4' or 'S1'")
    heights = _jittered(config.body_height_mm, n, config.size_jitter, rng)
    ap_radii = _jittered(config.body_ap_radius_mm, n, config.size_jitter, rng)
    lr_radii = _jittered(config.body_lr_radius_mm, n, config.size_jitter, rng)
    tilts = np.deg2rad(_jittered(config.tilt_deg, n, 0.0, None))
    discs = _jittered(config.disc_height_mm, n, config.size_jitter, rng)
    dome = config.endplate_dome_mm

    def axis(t: float) -> NDArray[np.float64]:
        return np.array([0.0, np.sin(t), np.cos(t)])

    centres = [np.zeros(3)]
    for k in range(1, n):
        mid = axis(tilts[k - 1]) + axis(tilts[k])
        mid /= np.linalg.norm(mid)
        step = heights[k - 1] / 2 * axis(tilts[k - 1]) + discs[k] * mid
        centres.append(centres[-1] - step - heights[k] / 2 * axis(tilts[k]))
    middle = (centres[0] + centres[-1]) / 2
    vertebrae = []
    for k, level in enumerate(config.levels):
        last = k == n - 1 and level == "S1"
        vertebrae.append(
            Vertebra(
                level=level,
                verse_id=VERSE_IDS[level],
                index=k,
                centre=centres[k] - middle,
                tilt_rad=float(tilts[k]),
                height_mm=float(heights[k]),
                ap_radius_mm=float(ap_radii[k]),
                lr_radius_mm=float(lr_radii[k]),
                dome_superior_mm=dome,
                dome_inferior_mm=0.0 if last else dome,
                waist=config.body_waist,
            )
        )
    first = vertebrae[0]
    above_centre = (
        first.centre + (first.height_mm / 2 + discs[0]) * first.u + first.height_mm / 2 * first.u
    )
    rendered = config.render_above
    above_level = _level_above(config.levels[0]) if rendered else "above"
    above = Vertebra(
        level=above_level,
        verse_id=VERSE_IDS[above_level] if rendered else 0,
        index=n if rendered else -1,
        centre=above_centre,
        tilt_rad=first.tilt_rad,
        height_mm=first.height_mm,
        ap_radius_mm=first.ap_radius_mm,
        lr_radius_mm=first.lr_radius_mm,
        dome_superior_mm=dome,
        dome_inferior_mm=dome,
        rendered=rendered,
        waist=config.body_waist,
    )
    beyond = None
    if rendered:  # the virtual vertebra above it bounds its upper disc (as thick as its lower)
        beyond = replace(
            above,
            level="beyond",
            verse_id=0,
            index=-1,
            centre=above.centre + (above.height_mm + discs[0]) * above.u,
            rendered=False,
        )
    chain = [above, *vertebrae]
    curve_z = np.array([v.centre[2] for v in chain])
    order = np.argsort(curve_z)
    return Spine(
        vertebrae=tuple(vertebrae),
        above=above,
        config=config,
        curve_z=curve_z[order],
        curve_y=np.array([v.centre[1] for v in chain])[order],
        curve_tilt=np.array([v.tilt_rad for v in chain])[order],
        beyond=beyond,
    )


def _level_above(level: str) -> str:
    """The level right above ``level`` (``"T11"`` -> ``"T10"``), for a rendered ``above``.

    >>> _level_above("T11"), _level_above("L1")
    ('T10', 'T12')
    """
    names = {verse: name for name, verse in VERSE_IDS.items() if name not in ("L6", "T13")}
    verse = VERSE_IDS[level]
    if verse - 1 not in names:  # C1, or S1 (above it lies L5 or L6: name the levels)
        raise ValueError(f"no vertebra above {level!r} to render")
    return names[verse - 1]
