"""Per-case draws of the joint phantom: anatomy, lesions, contrasts, texture and acquisition.

Every property is drawn from broad ranges, each from its own random stream of the seed (so
changing the lesions does not move the noise, and a new stream never shifts old draws). The
spine phantom's ranges are reused where they describe the same thing (SNR, slice gaps,
mottle, bias, red-marrow island contrast: :mod:`bmetoolkit.data.phantom.randomize`).

Examples
--------
>>> draws = draw_joint_case(7, plane="coronal", lesions="none", small=True)
>>> draws.acquisitions["t1"].base, sorted({lesion.kind for lesion in draws.lesions})
('coronal', ['island'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.joint.acquisition import PLANES, Acquisition
from bmetoolkit.data.phantom.joint.anatomy import JointAnatomy, JointTissue
from bmetoolkit.data.phantom.joint.knee import KneeAnatomy
from bmetoolkit.data.phantom.joint.lesions import JointLesion, draw_lesion
from bmetoolkit.data.phantom.joint.signals import FLUID_KINDS, SIGNALS, TISSUE_JITTER
from bmetoolkit.data.phantom.joint.sij import SacroiliacAnatomy, draw_sij_anatomy
from bmetoolkit.data.phantom.randomize import (
    BIAS_AMPLITUDE,
    GAP_MM,
    GAP_PROBABILITY,
    MOTTLE_LENGTH_MM,
    MOTTLE_SD,
    SNR,
)

__all__ = [
    "HELD_OUT_SEEDS",
    "JOINTS",
    "TUNING_SEEDS",
    "JointDraws",
    "LesionRequest",
    "case_options",
    "draw_joint_case",
    "with_lesions",
]

Range = tuple[float, float]
#: Joints the phantom renders: a knee, or the sacroiliac joints.
JOINTS = ("knee", "sij")
#: :func:`case_options`: the base-5 digits that make a case healthy and leave out its T1.
HEALTHY_DIGIT = 2
NO_T1_DIGIT = 4
#: Seeds for tuning an analysis, and seeds kept for its held-out benchmark (disjoint).
TUNING_SEEDS: tuple[int, ...] = tuple(range(0, 1000))
HELD_OUT_SEEDS: tuple[int, ...] = tuple(range(5000, 6000))
#: Independent random streams of a case, in this order (new ones go at the end).
STREAMS = (
    "anatomy", "lesions", "contrast", "texture", "acquisition", "shading", "snr",
    "noise_t1", "noise_fluid", "storage", "choice",
)  # fmt: skip

# --- anatomy -------------------------------------------------------------------------------
SIZE: Range = (0.88, 1.12)
CORTEX_MM: Range = (1.0, 3.0)
PLATE_MM: Range = (0.6, 1.4)
CARTILAGE_MM: Range = (1.5, 3.0)
JOINT_SPACE_MM: Range = (0.3, 1.5)
#: Suprapatellar fluid: from physiological (0.5-2 mm) to a large effusion.
EFFUSION_MM: Range = (0.5, 12.0)
FAT_MM: Range = (4.0, 16.0)
FLEXION_DEG: Range = (-8.0, 8.0)
ROTATION_DEG: Range = (-10.0, 10.0)
ORIGIN_MM = 10.0

# --- lesions -------------------------------------------------------------------------------
#: Edema-like lesions of a ``"random"`` case (inclusive) and their kinds' weights.
N_EDEMA = (1, 3)
EDEMA_KIND_WEIGHTS = {"edema": 0.6, "bruise": 0.4}
#: Probability of a subchondral cyst in a ``"random"`` case.
CYST_PROBABILITY = 0.4
#: Red-marrow islands of a ``"random"`` and of a ``"none"`` (healthy) case (inclusive).
ISLANDS_RANDOM = (0, 3)
ISLANDS_HEALTHY = (1, 4)

# --- acquisition ---------------------------------------------------------------------------
#: In-plane field of view (mm) per joint.
FOV_MM: dict[str, Range] = {"knee": (140.0, 180.0), "sij": (240.0, 320.0)}
#: In-plane matrix along i, pixel size (mm) and the j pixel's aspect (j over i).
MATRIX = (256, 512)
PIXEL_MM: Range = (0.3, 0.8)
PIXEL_ASPECT: Range = (1.0, 1.3)
FOV_ASPECT: Range = (0.9, 1.1)
SLICE_THICKNESS_MM: Range = (2.5, 4.5)
SLICES = (20, 40)
#: Extent (mm) the slices should cover, per joint and base plane.
COVERAGE_MM: dict[str, dict[str, Range]] = {
    "knee": {"sagittal": (90.0, 130.0), "coronal": (80.0, 120.0), "axial": (90.0, 150.0)},
    "sij": {"sagittal": (150.0, 200.0), "coronal": (60.0, 100.0), "axial": (90.0, 140.0)},
}
#: Base plane of an oblique series: the knee's is sagittal (turned about SI, along the ACL),
#: the sacroiliac joints' coronal (tilted about LR, along the sacrum).
OBLIQUE_BASE = {"knee": "sagittal", "sij": "coronal"}
#: How far a coronal-oblique series may miss the sacrum's long axis (degrees).
SACRAL_AXIS_JITTER_DEG = 3.0
OFFSET_MM = 5.0
TILT_DEG = 4.0
#: Tilt of an oblique knee series away from sagittal (degrees).
OBLIQUE_DEG: Range = (10.0, 25.0)
#: ``small=True``: in-plane matrix along i and number of slices.
SMALL_MATRIX = 96
SMALL_SLICES = 16
#: Scanner scale (stored value of normal marrow) and offset, per role.
SCALE: dict[str, Range] = {"t1": (300.0, 2500.0), "fluid": (600.0, 4000.0)}
OFFSET_RANGE = (0, 40)
#: Coil sensitivity along the limb: Gaussian length (mm) and floor.
COIL_LENGTH_MM: Range = (90.0, 160.0)
COIL_FLOOR: Range = (0.3, 0.6)

#: A lesion request: a kind, a dict (``kind`` and optionally ``bone``, ``site``, ``touch``)
#: or a ready :class:`JointLesion`.
LesionRequest = str | dict | JointLesion


@dataclass(frozen=True)
class JointDraws:
    """Every draw of one joint case (see :func:`draw_joint_case`).

    Attributes
    ----------
    seed : int
    joint : str
    plane : str
    fluid : {'stir', 't2fs', 'pdfs'}
    small : bool
    anatomy : KneeAnatomy or SacroiliacAnatomy
    lesions : tuple of JointLesion
    signals : dict of str to dict of str to float
        Tissue signal per sequence (``"t1"`` and the fluid kind), relative to marrow units.
    mottle_sd : dict of str to float
    mottle_length_mm : float
    mottle_seed : int
    shading : dict
        ``amplitude``, ``direction``, ``coil_length_mm``, ``coil_floor``.
    snr : dict of str to float
        Normal marrow over noise SD, per role (``"t1"``, ``"fluid"``).
    acquisitions : dict of str to Acquisition
        Per role.
    scale, offset : dict of str to float
        Stored value of normal marrow and constant offset, per role.
    """

    seed: int
    joint: str
    plane: str
    fluid: str
    small: bool
    anatomy: KneeAnatomy | SacroiliacAnatomy
    lesions: tuple[JointLesion, ...]
    signals: dict[str, dict[str, float]]
    mottle_sd: dict[str, float]
    mottle_length_mm: float
    mottle_seed: int
    shading: dict[str, Any]
    snr: dict[str, float]
    acquisitions: dict[str, Acquisition]
    scale: dict[str, float]
    offset: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The draws as plain JSON-ready values."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["anatomy"] = {
            name: getattr(self.anatomy, name) for name in self.anatomy.__dataclass_fields__
        }
        values["lesions"] = [lesion.to_dict() for lesion in self.lesions]
        values["acquisitions"] = {role: a.to_dict() for role, a in self.acquisitions.items()}
        return values


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(c) for name, c in zip(STREAMS, children, strict=True)}


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(*bounds))


def _integers(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _knee_anatomy(rng: np.random.Generator) -> KneeAnatomy:
    return KneeAnatomy(
        size=_uniform(rng, SIZE),
        cortex_mm=_uniform(rng, CORTEX_MM),
        plate_mm=_uniform(rng, PLATE_MM),
        cartilage_mm=_uniform(rng, CARTILAGE_MM),
        joint_space_mm=_uniform(rng, JOINT_SPACE_MM),
        effusion_mm=_uniform(rng, EFFUSION_MM),
        fat_mm=_uniform(rng, FAT_MM),
        side="right" if rng.random() < 0.5 else "left",
        flexion_deg=_uniform(rng, FLEXION_DEG),
        rotation_deg=_uniform(rng, ROTATION_DEG),
        origin_mm=tuple(_uniform(rng, (-ORIGIN_MM, ORIGIN_MM)) for _ in range(3)),  # type: ignore[arg-type]
    )


def _bone_id(bone: int | str | None, names: dict[int, str]) -> int | None:
    if bone is None or isinstance(bone, int):
        return bone
    ids = {name: label for label, name in names.items()}
    if bone not in ids:
        raise ValueError(f"unknown bone {bone!r}; use one of {list(ids)}")
    return ids[bone]


def _requested(
    rng: np.random.Generator, anatomy: JointAnatomy, request: LesionRequest
) -> JointLesion:
    if isinstance(request, JointLesion):
        return request
    spec = {"kind": request} if isinstance(request, str) else dict(request)
    unknown = set(spec) - {"kind", "bone", "site", "touch"}
    if unknown or "kind" not in spec:
        raise ValueError(
            f"a lesion request needs 'kind' and may give 'bone', 'site', 'touch'; got {spec}"
        )
    return draw_lesion(
        rng,
        anatomy,
        spec["kind"],
        seed=int(rng.integers(2**31)),
        bone=_bone_id(spec.get("bone"), anatomy.bones),
        site=spec.get("site"),
        touch=spec.get("touch"),
    )


def _lesion_requests(rng: np.random.Generator, lesions: str) -> list[LesionRequest]:
    """The kinds of a ``"random"`` or ``"none"`` case."""
    if lesions == "none":
        return ["island"] * _integers(rng, ISLANDS_HEALTHY)
    kinds = list(EDEMA_KIND_WEIGHTS)
    weights = np.array(list(EDEMA_KIND_WEIGHTS.values()))
    requests: list[LesionRequest] = [
        kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        for _ in range(_integers(rng, N_EDEMA))
    ]
    if rng.random() < CYST_PROBABILITY:
        requests.append("cyst")
    return requests + ["island"] * _integers(rng, ISLANDS_RANDOM)


def _draw_lesions(
    rng: np.random.Generator, anatomy: JointAnatomy, lesions: str | Sequence[LesionRequest]
) -> tuple[JointLesion, ...]:
    if isinstance(lesions, str):
        if lesions not in ("random", "none"):
            raise ValueError(f"lesions must be 'random', 'none' or a list, got {lesions!r}")
        requests = _lesion_requests(rng, lesions)
    else:
        requests = list(lesions)
    return tuple(_requested(rng, anatomy, request) for request in requests)


def _signals(rng: np.random.Generator, sequences: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each sequence's tissue table, every tissue but marrow and air jittered."""
    tables = {}
    for sequence in sequences:
        table = {}
        for tissue, value in SIGNALS[sequence].items():
            fixed = tissue in (JointTissue.MARROW, JointTissue.AIR)
            jitter = 1.0 if fixed else _uniform(rng, (1 - TISSUE_JITTER, 1 + TISSUE_JITTER))
            table[tissue.name] = value * jitter
        tables[sequence] = table
    return tables


def _acquisition(
    rng: np.random.Generator, joint: str, plane: str, oblique: NDArray, small: bool
) -> Acquisition:
    base = OBLIQUE_BASE[joint] if plane == "oblique" else plane
    fov_i = _uniform(rng, FOV_MM[joint])
    fov_j = fov_i * _uniform(rng, FOV_ASPECT)
    n_i = int(np.clip(_integers(rng, MATRIX), fov_i / PIXEL_MM[1], fov_i / PIXEL_MM[0]))
    pixel_i = fov_i / n_i
    pixel_j = float(np.clip(pixel_i * _uniform(rng, PIXEL_ASPECT), *PIXEL_MM))
    thickness = _uniform(rng, SLICE_THICKNESS_MM)
    gap = _uniform(rng, GAP_MM) if rng.random() < GAP_PROBABILITY else 0.0
    coverage = _uniform(rng, COVERAGE_MM[joint][base])
    n_k = int(np.clip(round(coverage / (thickness + gap)), *SLICES))
    offset = tuple(_uniform(rng, (-OFFSET_MM, OFFSET_MM)) for _ in range(3))
    tilt = np.array([_uniform(rng, (-TILT_DEG, TILT_DEG)) for _ in range(3)])
    if plane == "oblique":
        tilt = oblique + (tilt if joint == "knee" else 0.0)
    if small:
        factor = n_i / SMALL_MATRIX
        pixel_i, pixel_j = pixel_i * factor, pixel_j * factor
        stretch = n_k / SMALL_SLICES
        thickness, gap, n_k = thickness * stretch, gap * stretch, SMALL_SLICES
    return Acquisition(
        plane=plane,
        base=base,
        shape=(round(fov_i / pixel_i), round(fov_j / pixel_j), n_k),
        pixel_mm=(pixel_i, pixel_j),
        slice_thickness_mm=thickness,
        slice_spacing_mm=thickness + gap,
        offset_mm=offset,  # type: ignore[arg-type]
        tilt_deg=tuple(float(v) for v in tilt),  # type: ignore[arg-type]
    )


def _oblique_tilt(rng: np.random.Generator, anatomy: JointAnatomy) -> NDArray[np.float64]:
    """Tilts (degrees about x, y, z) of an oblique series' base plane.

    Knee: sagittal turned 10-25 degrees either way about SI. Sacroiliac joints: coronal tilted
    about LR to contain the sacrum's long axis, missing it by up to
    :data:`SACRAL_AXIS_JITTER_DEG`.
    """
    turn = _uniform(rng, OBLIQUE_DEG) * (1 if rng.random() < 0.5 else -1)
    if isinstance(anatomy, SacroiliacAnatomy):
        long_axis = anatomy.frame.matrix @ anatomy.axis[0]
        tau = np.degrees(np.arctan2(long_axis[1], long_axis[2]))
        miss = _uniform(rng, (-SACRAL_AXIS_JITTER_DEG, SACRAL_AXIS_JITTER_DEG))
        return np.array([-tau + miss, 0.0, 0.0])
    return np.array([0.0, 0.0, turn])


def _shading(rng: np.random.Generator) -> dict[str, Any]:
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    return {
        "amplitude": _uniform(rng, BIAS_AMPLITUDE),
        "direction": tuple(float(v) for v in direction),
        "coil_length_mm": _uniform(rng, COIL_LENGTH_MM),
        "coil_floor": _uniform(rng, COIL_FLOOR),
    }


def draw_joint_case(
    seed: int,
    *,
    joint: str = "knee",
    plane: str = "sagittal",
    fluid: str = "stir",
    lesions: str | Sequence[LesionRequest] = "random",
    small: bool = False,
) -> JointDraws:
    """Every draw of a joint case.

    Parameters
    ----------
    seed : int
    joint : {'knee', 'sij'}
        A knee, or the sacroiliac joints.
    plane : {'sagittal', 'coronal', 'axial', 'oblique', 'random'}
        Plane of both series (``"random"``: drawn from the seed). Oblique: sagittal turned
        10-25 degrees about SI for the knee; coronal along the sacrum for the SIJ.
    fluid : {'stir', 't2fs', 'pdfs', 'random'}
        The fluid-sensitive sequence (``"random"``: drawn from the seed).
    lesions : 'random', 'none' or sequence
        ``"random"``: 1-3 edema or bruises, a cyst 40 % of the time, 0-3 red-marrow islands;
        ``"none"``: a healthy joint with 1-4 islands; or a list of kinds (``"edema"``...),
        dicts (``{"kind": "bruise", "bone": "tibia", "touch": False}``) or
        :class:`JointLesion` objects, drawn in that order.
    small : bool
        ~96 x 96 x 16 grids covering the same anatomy, for fast tests.

    Returns
    -------
    JointDraws
        Change fields with :func:`dataclasses.replace` to isolate an effect.
    """
    if joint not in JOINTS:
        raise ValueError(f"unknown joint {joint!r}; use one of {list(JOINTS)}")
    rngs = _streams(seed)
    choice = rngs["choice"]
    planes = PLANES if plane == "random" else (plane,)
    fluids = FLUID_KINDS if fluid == "random" else (fluid,)
    plane = planes[int(choice.integers(len(planes)))]
    fluid = fluids[int(choice.integers(len(fluids)))]
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}; use one of {[*PLANES, 'random']}")
    if fluid not in FLUID_KINDS:
        raise ValueError(f"unknown fluid sequence {fluid!r}; use one of {[*FLUID_KINDS, 'random']}")
    draw_anatomy = _knee_anatomy if joint == "knee" else draw_sij_anatomy
    anatomy = draw_anatomy(rngs["anatomy"])
    acquisition = rngs["acquisition"]
    oblique = _oblique_tilt(acquisition, anatomy)
    acquisitions = {
        role: _acquisition(acquisition, joint, plane, oblique, small) for role in ("t1", "fluid")
    }
    texture, storage, snr = rngs["texture"], rngs["storage"], rngs["snr"]
    return JointDraws(
        seed=seed,
        joint=joint,
        plane=plane,
        fluid=fluid,
        small=small,
        anatomy=anatomy,
        lesions=_draw_lesions(rngs["lesions"], anatomy, lesions),
        signals=_signals(rngs["contrast"], ("t1", fluid)),
        mottle_sd={sequence: _uniform(texture, MOTTLE_SD) for sequence in ("t1", fluid)},
        mottle_length_mm=_uniform(texture, MOTTLE_LENGTH_MM),
        mottle_seed=int(texture.integers(2**31)),
        shading=_shading(rngs["shading"]),
        snr={role: _uniform(snr, SNR) for role in ("t1", "fluid")},
        acquisitions=acquisitions,
        scale={role: _uniform(storage, SCALE[role]) for role in ("t1", "fluid")},
        offset={role: _integers(storage, OFFSET_RANGE) for role in ("t1", "fluid")},
    )


def case_options(seed: int) -> dict[str, Any]:
    """The options a benchmark uses for ``seed``: every combination in turn, by seed.

    The seed is read in mixed radix: the plane cycles fastest, then the fluid sequence, then
    healthy (``lesions="none"``, one in five) or not, then with or without a T1 (one in five
    without); each block of 300 seeds holds every combination equally often. Pass them on:
    ``make_joint_phantom(seed, joint=..., **case_options(seed))``.

    >>> case_options(0)
    {'plane': 'sagittal', 'fluid': 'stir', 'lesions': 'random', 'with_t1': True}
    >>> sum(case_options(s)["lesions"] == "none" for s in range(300))
    60
    """
    plane, rest = seed % len(PLANES), seed // len(PLANES)
    fluid, rest = rest % len(FLUID_KINDS), rest // len(FLUID_KINDS)
    healthy, rest = rest % 5 == HEALTHY_DIGIT, rest // 5
    return {
        "plane": PLANES[plane],
        "fluid": FLUID_KINDS[fluid],
        "lesions": "none" if healthy else "random",
        "with_t1": rest % 5 != NO_T1_DIGIT,
    }


def with_lesions(draws: JointDraws, lesions: Sequence[JointLesion]) -> JointDraws:
    """The same case with other lesions (every other draw kept)."""
    return replace(draws, lesions=tuple(lesions))
