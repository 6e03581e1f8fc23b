"""Domain-randomised phantoms: every property drawn per case from broad, realistic ranges.

The plain phantom (:func:`~bmetoolkit.data.phantom.make_phantom`) renders lesions with one
fixed contrast table. To validate an analysis without validating it on its own assumptions,
:func:`make_randomized_phantom` draws, per case and each from its own random stream:

- lesion contrast relative to normal marrow of the same sequence (:data:`LESION_RATIOS`)
  and ill-defined margins (:data:`LESION_MARGIN_MM`);
- marrow texture that is not in the truth: focal fat spots, red-marrow islands, smooth
  mottling and thin fatty bands along endplates (:mod:`.texture`);
- endplate and cortical bone thickness, degenerated dark discs;
- the fluid-sensitive image: a STIR or a fat-suppressed T2 (its own signal table and
  headers), about half the time;
- SNR per contrast, slice thickness and gap, in-plane pixel size, intensity storage
  (uint16, 8-bit or rescaled floats), a strong bias field, and partial fields of view (a
  thin slab, or the top body cut by the field of view).

The truth (BME mask, Modic map, vertebra labels, endplate table) stays exact: texture,
bands, dark discs and bias act on the signal only; lesions enter it however faint they are.

Case kinds (:data:`KINDS`): ``"random"`` (1-3 lesions of any kind), ``"healthy"`` (no
lesion, distractors only), ``"central_edema"`` (one edema away from the endplates over
30-60 % of one body's height, like a fracture) and ``"mixed_modic"`` (1-3 Modic changes of
type III or of two types: the bands a decision finds in fragments, for a sweep; no seed
has it as its own kind). :data:`TUNING_SEEDS` and
:data:`HELD_OUT_SEEDS` are disjoint; :func:`case_kind` gives each seed's kind (70 % random,
20 % healthy, 10 % central edema in every block of ten seeds).

Examples
--------
>>> study = make_randomized_phantom(3, kind="healthy", small=True)
>>> draws = study.render_parameters["randomization"]
>>> draws["kind"], [lesion["kind"] for lesion in draws["lesions"]]
('healthy', ['haemangioma'])
>>> int(study.truth.bme_mask.data.max()), int(study.truth.modic_map.data.max())
(0, 0)
>>> case_kind(HELD_OUT_SEEDS[9]), set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
('central_edema', set())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.anatomy import (
    AnatomyConfig,
    Spine,
    Tissue,
    Vertebra,
    body_height_reference_mm,
    build_spine,
)
from bmetoolkit.data.phantom.build import PhantomStudy, assemble_study
from bmetoolkit.data.phantom.config import PhantomConfig
from bmetoolkit.data.phantom.grids import GridSpec, subsample_offsets
from bmetoolkit.data.phantom.lesions import Lesion
from bmetoolkit.data.phantom.render import CONTRASTS, SIGNALS, ContrastSpec, acquisition_meta
from bmetoolkit.data.phantom.texture import (
    ROLES,
    Band,
    Bias,
    Spot,
    Texture,
    Vein,
    disc_names,
    render_effects,
    vein_mask,
)
from bmetoolkit.data.phantom.truth import endplates_of
from bmetoolkit.resample import resample_to
from bmetoolkit.volume import Grid, Volume

__all__ = [
    "HELD_OUT_SEEDS",
    "KINDS",
    "LESION_RATIOS",
    "TUNING_SEEDS",
    "CaseDraws",
    "case_kind",
    "draw_case",
    "make_randomized_phantom",
    "render_case",
]

T = Tissue
Range = tuple[float, float]

#: Kinds of case.
KINDS = ("random", "healthy", "central_edema", "mixed_modic")
#: Kind of each seed by ``seed % 10``: 70 % random, 20 % healthy, 10 % central edema.
KIND_PATTERN = ("random",) * 7 + ("healthy",) * 2 + ("central_edema",)
#: Seeds for choosing defaults, and seeds never looked at while choosing them (disjoint).
TUNING_SEEDS: tuple[int, ...] = tuple(range(0, 60))
HELD_OUT_SEEDS: tuple[int, ...] = tuple(range(5000, 5060))

#: Independent random streams of a case, spawned from its seed in this order (new streams
#: go at the end, so existing draws never shift).
STREAMS = (
    "anatomy", "bone", "lesions", "contrast", "texture", "mottle", "discs", "fluid",
    "acquisition", "fov", "storage", "bias", "snr", "noise_t1", "noise_t2", "noise_fluid",
    "surroundings", "pelvis", "veins", "above",
)  # fmt: skip

# --- lesions -------------------------------------------------------------------------------

#: Lesion signal relative to normal marrow of the same sequence, per role (``"fluid"`` is
#: the STIR or fat-suppressed T2): edema and Modic I dark-ish on T1 (up to iso) and bright
#: on fluid images; Modic II fatty; Modic III dark everywhere.
LESION_RATIOS: dict[str, dict[Tissue, Range]] = {
    "t1": {T.EDEMA: (0.45, 1.05), T.MODIC1: (0.45, 1.05), T.MODIC2: (1.1, 1.6),
           T.MODIC3: (0.3, 0.8)},
    "t2": {T.EDEMA: (1.1, 2.0), T.MODIC1: (1.1, 2.0), T.MODIC2: (0.9, 1.4),
           T.MODIC3: (0.3, 0.8)},
    "fluid": {T.EDEMA: (1.2, 3.5), T.MODIC1: (1.2, 3.5), T.MODIC2: (0.3, 0.9),
              T.MODIC3: (0.3, 0.8)},
}  # fmt: skip
#: Ill-defined margin of every lesion (mm), and the sharp one of a haemangioma.
LESION_MARGIN_MM: Range = (1.0, 6.0)
HAEMANGIOMA_MARGIN_MM: Range = (0.3, 0.6)
#: Lesions per ``"random"`` case (inclusive).
N_LESIONS = (1, 3)
#: Kinds drawn in ``"random"`` cases, with their weights ("edema" lies away from endplates).
RANDOM_KIND_WEIGHTS = {
    "modic1": 0.22, "modic2": 0.2, "modic3": 0.1, "modic1/2": 0.08, "modic2/1": 0.05,
    "modic2/3": 0.06, "modic3/2": 0.04, "edema": 0.25,
}  # fmt: skip
#: Lesion kinds and weights of a ``"mixed_modic"`` case: type III and mixed changes only.
MIXED_MODIC_WEIGHTS = {
    "modic3": 0.2, "modic1/2": 0.2, "modic2/1": 0.15, "modic2/3": 0.25, "modic3/2": 0.2,
}  # fmt: skip
#: Probability that an endplate lesion has a partner across its disc (counted as a lesion).
MIRROR_PROBABILITY = 0.5
#: Probability of a haemangioma distractor (not edema, not Modic) in any case.
HAEMANGIOMA_PROBABILITY = 0.3
#: Endplate lesions: depth (fraction of body height), AP/LR extent and centre (fractions).
ENDPLATE_HEIGHT: Range = (0.08, 0.6)
ENDPLATE_AP_WIDTH: Range = (0.25, 0.95)
ENDPLATE_LR_WIDTH: Range = (0.3, 0.95)
AP_CENTRE: Range = (-0.5, 0.5)
LR_CENTRE: Range = (-0.3, 0.3)
MIXED_MINOR_FRACTION: Range = (0.2, 0.45)
#: Lesions away from the endplates: SI extent (fraction of body height) of an edema in a
#: ``"random"`` case, of the ``"central_edema"`` case, and of a haemangioma; AP/LR extent.
EDEMA_HEIGHT: Range = (0.15, 0.5)
CENTRAL_EDEMA_HEIGHT: Range = (0.3, 0.6)
HAEMANGIOMA_HEIGHT: Range = (0.15, 0.35)
BLOB_WIDTH: Range = (0.3, 0.7)
BLOB_AP_CENTRE: Range = (-0.25, 0.25)
#: Least distance (mm) between a central lesion's true boundary and its body's endplates.
ENDPLATE_CLEARANCE_MM = 2.0

# --- texture and anatomy -------------------------------------------------------------------

#: Focal fat spots: count per case, diameter (mm) and signal per role.
FAT_SPOTS = (0, 15)
FAT_SPOT_DIAMETER_MM: Range = (2.0, 8.0)
FAT_SPOT_RATIOS: dict[str, Range] = {"t1": (1.2, 1.5), "t2": (1.05, 1.3), "fluid": (0.4, 0.8)}
#: Red-marrow islands: count per case, diameter (mm) and signal per role.
RED_ISLANDS = (0, 8)
RED_ISLAND_DIAMETER_MM: Range = (4.0, 12.0)
RED_ISLAND_RATIOS: dict[str, Range] = {"t1": (0.75, 0.95), "t2": (1.0, 1.2), "fluid": (1.1, 1.5)}
#: Where spot centres lie in a body: fractions of its AP and LR radii and of half its height.
SPOT_POSITION = (0.7, 0.7, 0.8)
#: Smooth mottling: relative SD per role and correlation length (mm).
MOTTLE_SD: Range = (0.03, 0.12)
MOTTLE_LENGTH_MM: Range = (2.0, 6.0)
#: Fatty bands along endplates: probability per endplate, thickness (mm, thinner than a
#: Modic change), reach along the endplate (squared normalised radius), signal per role.
BAND_PROBABILITY = 0.25
BAND_THICKNESS_MM: Range = (1.0, 2.5)
BAND_EXTENT: Range = (0.4, 1.0)
BAND_RATIOS: dict[str, Range] = {"t1": (1.2, 1.4), "t2": (1.0, 1.2), "fluid": (0.5, 0.8)}
#: Endplate and cortical shell thickness (mm).
BONE_THICKNESS_MM: Range = (0.5, 2.5)
#: Degenerated discs: probability per disc and nucleus signal relative to a healthy one.
DARK_DISC_PROBABILITY = 0.35
DARK_DISC_RATIO: Range = (0.3, 0.6)

#: Basivertebral veins (:class:`~.texture.Vein`, image only, never BME): probability per
#: body of a visible one, SI thickness and LR width (mm), how far forward from the posterior
#: wall (fraction of the AP depth), centre height (fraction of half the body height), the
#: probability of a Y split, where it splits (fraction of its length) and how far each
#: branch ends off the midline (mm), and blood signal relative to marrow per role.
VEIN_PROBABILITY = 0.8
VEIN_HEIGHT_MM: Range = (1.5, 4.0)
VEIN_WIDTH_MM: Range = (3.0, 8.0)
VEIN_DEPTH: Range = (0.25, 0.5)
VEIN_SI: Range = (-0.15, 0.15)
VEIN_SPLIT_PROBABILITY = 0.5
VEIN_SPLIT: Range = (0.3, 0.7)
VEIN_SPREAD_MM: Range = (3.0, 8.0)
VEIN_RATIOS: dict[str, Range] = {"t1": (0.6, 1.0), "t2": (1.3, 3.0), "fluid": (1.3, 3.0)}

# --- surroundings of the "real anatomy" family ---------------------------------------------

#: Probability and radius (mm) of the aorta and of the inferior vena cava (flow voids in front
#: of the bodies), their LR offset from the midline and gap to the bodies (mm).
AORTA_PROBABILITY, AORTA_RADIUS_MM = 0.85, (8.0, 13.0)
IVC_PROBABILITY, IVC_RADIUS_MM = 0.7, (7.0, 12.0)
VESSEL_LR_OFFSET_MM: Range = (8.0, 25.0)
VESSEL_GAP_MM: Range = (0.0, 3.0)
#: Probability of iliac wings beside the sacrum, their LR distance off the midline and
#: thickness (mm).
ILIAC_PROBABILITY = 0.8
ILIAC_LR_MM: Range = (30.0, 55.0)
ILIAC_THICKNESS_MM: Range = (8.0, 20.0)
#: Bowel gas: number of pockets (inclusive), radius (mm), anterior distance from the
#: spine's centre line (mm) and LR position (mm).
BOWEL_GAS_POCKETS = (0, 8)
BOWEL_GAS_RADIUS_MM: Range = (5.0, 25.0)
BOWEL_GAS_AP_MM: Range = (45.0, 140.0)
BOWEL_GAS_LR_MM: Range = (-70.0, 70.0)

#: Probability that the psoas reaches in front of the bodies' anterior walls (against
#: their sides, as in the lower lumbar spine), and how far (mm).
PSOAS_PROBABILITY = 0.7
PSOAS_FRONT_MM: Range = (5.0, 30.0)

#: Opt-in pelvis and bowel (``pelvis_and_bowel=True``): the sacrum below S1 (length, remnant
#: disc; mm), pelvic bone with marrow signal from this LR distance off the midline (mm, with
#: this probability), and fluid-filled bowel loops (count, radius, AP and LR position; mm).
LOWER_SACRUM_MM: Range = (30.0, 70.0)
SACRAL_DISC_MM: Range = (0.0, 2.0)
PELVIS_PROBABILITY = 0.8
PELVIS_LR_MM: Range = (22.0, 40.0)
PELVIS_AP_MM: Range = (25.0, 50.0)
BOWEL_LOOPS = (0, 10)
BOWEL_LOOP_RADIUS_MM: Range = (8.0, 25.0)
BOWEL_LOOP_AP_MM: Range = (35.0, 140.0)
BOWEL_LOOP_LR_MM: Range = (-70.0, 70.0)
BOWEL_WALL_MM: Range = (1.5, 4.0)
#: Opt-in vertebra above T11 (``vertebra_above=True``): T10 rendered as a healthy body with
#: the case's marrow, its texture drawn from its own stream: fat spots and red-marrow islands
#: (counts, inclusive: about the levels' mean per body), fatty bands, a basivertebral vein and
#: mottling as the levels have, and its own body-to-body signal variation (relative SD, as
#: :class:`~.render.ContrastSpec`'s ``marrow_variation``).
ABOVE_FAT_SPOTS = (0, 2)
ABOVE_RED_ISLANDS = (0, 1)
ABOVE_MARROW_VARIATION = 0.04
#: Opt-in resampled data (``resampled_1mm=True``): the images rendered on their drawn grids
#: are resampled (linear interpolation) onto voxels of this size (mm), isotropic, as 3-5 mm
#: slices resampled to 1 mm before they reach the user.
RESAMPLED_MM = 1.0

# --- acquisition ---------------------------------------------------------------------------

#: Probability that the fluid image is a fat-suppressed T2 rather than a STIR.
T2FS_PROBABILITY = 0.5
#: Signal-to-noise ratio of normal marrow per contrast.
SNR: Range = (8.0, 40.0)
#: Slice thickness (mm); probability of a gap and its width (mm).
SLICE_THICKNESS_MM: Range = (3.0, 5.0)
GAP_PROBABILITY = 0.5
GAP_MM: Range = (0.3, 1.0)
#: In-plane pixel size (mm) along AP; the SI pixel is it times ``PIXEL_ASPECT`` (clipped).
PIXEL_MM: Range = (0.5, 1.2)
PIXEL_ASPECT: Range = (0.9, 1.15)
#: Field of view (mm) along AP and SI, and the grids' offsets (mm) and tilts (degrees).
FOV_AP_MM: Range = (240.0, 300.0)
FOV_SI_MM: Range = (300.0, 340.0)
OFFSET_MM = 3.0
TILT_DEG = 3.0
#: Field-of-view modes and their weights; slices of a full and of a thin slab (inclusive).
FOV_WEIGHTS = {"full": 0.6, "thin_slab": 0.2, "top_cut": 0.2}
FULL_SLICES = (16, 22)
THIN_SLAB_SLICES = (12, 15)
#: Where the top of the field of view cuts the top body: fraction of its half height
#: around its centre.
TOP_CUT_POSITION: Range = (-0.5, 0.5)
#: Intensity storage and weights; 8-bit images map this percentile of the image to 255;
#: float images are the uint16 values times ``10 ** FLOAT_SCALE_LOG10``.
STORAGE_WEIGHTS = {"uint16": 0.5, "uint8": 0.25, "float32": 0.25}
UINT8_WINDOW_PERCENTILE: Range = (98.0, 99.9)
FLOAT_SCALE_LOG10: Range = (-3.0, 1.0)
#: Bias field: its maximum over its minimum across the spine is ``1 + amplitude``.
BIAS_AMPLITUDE: Range = (0.3, 0.6)
#: Coarse grids of ``small=True``: in-plane pixels this many times larger.
SMALL_PIXEL_FACTOR = 4.0
#: Samples per voxel of randomized grids: through the slice only (in-plane 1 x 1).
RANDOMIZED_SUPERSAMPLE = (1, 1, 3)

#: A fat-suppressed T2 (FSE with spectral fat saturation), relative to normal marrow = 0.3:
#: fat nulled less completely than by STIR, fluid bright. Lesion entries are replaced by the
#: drawn ratios.
T2FS_SIGNALS: dict[Tissue, float] = {
    T.AIR: 0.0, T.FAT: 0.12, T.MUSCLE: 0.4, T.VISCERA: 0.65, T.CSF: 2.0, T.CORD: 0.75,
    T.EPIDURAL_FAT: 0.12, T.POSTERIOR_BONE: 0.25, T.ANNULUS: 0.3, T.NUCLEUS: 1.3,
    T.CORTEX: 0.05, T.MARROW: 0.3, T.MODIC1: 1.0, T.MODIC2: 0.2, T.MODIC3: 0.15,
    T.EDEMA: 1.0, T.HAEMANGIOMA: 0.55,
}  # fmt: skip
#: Headers of the fat-suppressed T2 (BIDS names; ScanOptions FS = fat saturation).
T2FS_META: dict[str, Any] = acquisition_meta("T2_TSE_FS_SAG", repetition_s=3.5, echo_s=0.09) | {
    "ScanOptions": "FS"
}
#: Contrast slot of each role in a :class:`PhantomStudy` (the fluid image is ``stir``).
SLOTS = {"t1": "t1", "t2": "t2", "fluid": "stir"}


@dataclass(frozen=True)
class CaseDraws:
    """Every random draw of one randomized case (see :func:`draw_case`).

    Attributes
    ----------
    seed : int
    kind : str
    small : bool
    cortex_mm, endplate_mm : float
        Cortical shell and endplate thickness.
    lesion_ratios : dict of str to dict of str to float
        Lesion signal relative to normal marrow, per role and tissue name.
    lesions : tuple of Lesion
    texture : Texture
        Spots, bands, mottling, dark discs and bias (image only).
    fluid : {'stir', 't2fs'}
    snr : dict of str to float
        Per role.
    grids : dict of str to GridSpec
        The acquisition grid per role.
    pixel_mm : dict of str to tuple of 2 floats
        Drawn in-plane pixel size per role before ``small`` coarsening.
    fov : {'full', 'thin_slab', 'top_cut'}
    storage : {'uint16', 'uint8', 'float32'}
    uint8_percentile, float_scale : float
        How 8-bit and float images were made from the uint16 ones.
    surroundings : dict of str to Any
        :class:`AnatomyConfig` fields of the vessels, iliac wings, bowel gas and psoas (empty
        unless drawn with ``real_anatomy=True``), of the lower sacrum, pelvic bone and
        bowel loops (with ``pelvis_and_bowel=True``) and ``render_above`` (with
        ``vertebra_above=True``).
    resampled_mm : float
        Voxel size (mm) the rendered images and truth were resampled to (0: not resampled).
    """

    seed: int
    kind: str
    small: bool
    cortex_mm: float
    endplate_mm: float
    lesion_ratios: dict[str, dict[str, float]]
    lesions: tuple[Lesion, ...]
    texture: Texture
    fluid: str
    snr: dict[str, float]
    grids: dict[str, GridSpec]
    pixel_mm: dict[str, tuple[float, float]]
    fov: str
    storage: str
    uint8_percentile: float
    float_scale: float
    surroundings: dict[str, Any] = field(default_factory=dict)
    resampled_mm: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The draws as plain JSON-ready values."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if not self.resampled_mm:  # recorded only when used (older records stay as they were)
            del values["resampled_mm"]
        values["lesions"] = [lesion.to_dict() for lesion in self.lesions]
        values["texture"] = self.texture.to_dict()
        values["grids"] = {role: asdict(spec) for role, spec in self.grids.items()}
        return values


def case_kind(seed: int) -> str:
    """The kind of case a seed of :data:`TUNING_SEEDS` or :data:`HELD_OUT_SEEDS` is.

    >>> [case_kind(s) for s in (0, 7, 9)]
    ['random', 'healthy', 'central_edema']
    """
    return KIND_PATTERN[seed % len(KIND_PATTERN)]


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(*bounds))


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    return names[
        int(rng.choice(len(names), p=np.array(list(weights.values())) / sum(weights.values())))
    ]


def _spine(
    seed: int, cortex_mm: float, endplate_mm: float, surroundings: dict[str, Any] | None = None
) -> Spine:
    """The case's spine: default anatomy with the drawn bone, sizes from the anatomy stream."""
    anatomy = replace(
        AnatomyConfig(),
        cortex_thickness_mm=cortex_mm,
        endplate_thickness_mm=endplate_mm,
        **(surroundings or {}),
    )
    return build_spine(anatomy, _streams(seed)["anatomy"])


def _surroundings(rng: np.random.Generator, spine: Spine) -> dict[str, Any]:
    """Vessels, iliac wings, bowel gas and psoas of a "real anatomy" case (AnatomyConfig fields)."""
    drawn: dict[str, Any] = {
        "aorta_radius_mm": _uniform(rng, AORTA_RADIUS_MM)
        if rng.random() < AORTA_PROBABILITY
        else 0.0,
        "ivc_radius_mm": _uniform(rng, IVC_RADIUS_MM) if rng.random() < IVC_PROBABILITY else 0.0,
        "vessel_lr_offset_mm": _uniform(rng, VESSEL_LR_OFFSET_MM),
        "vessel_gap_mm": _uniform(rng, VESSEL_GAP_MM),
        "iliac_lr_mm": _uniform(rng, ILIAC_LR_MM) if rng.random() < ILIAC_PROBABILITY else 0.0,
        "iliac_thickness_mm": _uniform(rng, ILIAC_THICKNESS_MM),
    }
    z = [float(v.centre[2]) for v in spine.vertebrae]
    pockets = rng.integers(BOWEL_GAS_POCKETS[0], BOWEL_GAS_POCKETS[1] + 1)
    drawn["bowel_gas"] = tuple(
        (
            _uniform(rng, BOWEL_GAS_AP_MM),
            _uniform(rng, BOWEL_GAS_LR_MM),
            float(rng.uniform(min(z), max(z))),
            _uniform(rng, BOWEL_GAS_RADIUS_MM),
        )
        for _ in range(int(pockets))
    )
    # Drawn last, so the draws above stay what they were before the psoas was added.
    drawn["psoas_front_mm"] = (
        _uniform(rng, PSOAS_FRONT_MM) if rng.random() < PSOAS_PROBABILITY else 0.0
    )
    return drawn


def _pelvis_and_bowel(rng: np.random.Generator, spine: Spine) -> dict[str, Any]:
    """Lower sacrum, pelvic bone and bowel loops (AnatomyConfig fields), from their own stream."""
    z = [float(v.centre[2]) for v in spine.vertebrae]
    drawn: dict[str, Any] = {
        "lower_sacrum_mm": _uniform(rng, LOWER_SACRUM_MM),
        "sacral_disc_mm": _uniform(rng, SACRAL_DISC_MM),
        "pelvis_lr_mm": _uniform(rng, PELVIS_LR_MM) if rng.random() < PELVIS_PROBABILITY else 0.0,
        "pelvis_ap_mm": _uniform(rng, PELVIS_AP_MM),
        "bowel_wall_mm": _uniform(rng, BOWEL_WALL_MM),
    }
    loops = int(rng.integers(BOWEL_LOOPS[0], BOWEL_LOOPS[1] + 1))
    drawn["bowel_loops"] = tuple(
        (
            _uniform(rng, BOWEL_LOOP_AP_MM),
            _uniform(rng, BOWEL_LOOP_LR_MM),
            float(rng.uniform(min(z) - 40.0, max(z))),
            _uniform(rng, BOWEL_LOOP_RADIUS_MM),
        )
        for _ in range(loops)
    )
    return drawn


def _isotropic_grid(grid: Grid, mm: float) -> Grid:
    """A grid of ``mm`` isotropic voxels over ``grid``'s field of view, same orientation."""
    spacing = grid.spacing
    shape = tuple(
        max(1, round(n * float(s) / mm)) for n, s in zip(grid.shape, spacing, strict=True)
    )
    direction = grid.affine[:3, :3] / spacing
    affine = np.eye(4)
    affine[:3, :3] = direction * mm
    # The first voxel's corner stays where the original first voxel's corner was.
    corner = grid.affine[:3, 3] - direction @ (spacing / 2)
    affine[:3, 3] = corner + direction @ np.full(3, mm / 2)
    return Grid(shape, affine)


def _resampled_study(study: PhantomStudy, mm: float) -> PhantomStudy:
    """Every image resampled (linearly) onto ``mm`` isotropic voxels, the truth (nearest)
    onto the resampled T1 grid and each image's grid: data resampled from thick slices."""
    grids = {role: _isotropic_grid(getattr(study, role).grid, mm) for role in SLOTS.values()}
    for role, grid in grids.items():
        setattr(study, role, resample_to(getattr(study, role), grid))
    study.truth.masks = {
        name: resample_to(mask, grids["t1"]) for name, mask in study.truth.masks.items()
    }
    study.truth.grid_masks = {
        role: {name: resample_to(mask, grids[role]) for name, mask in masks.items()}
        for role, masks in study.truth.grid_masks.items()
    }
    return study


# --- lesion draws --------------------------------------------------------------------------


def _lesion_ratios(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    return {
        role: {tissue.name: _uniform(rng, bounds) for tissue, bounds in ranges.items()}
        for role, ranges in LESION_RATIOS.items()
    }


def _central_si(rng: np.random.Generator, vertebra: Vertebra, height_frac: float) -> float:
    """SI centre (fraction of half the body height) keeping a blob off the endplates."""
    height = body_height_reference_mm(vertebra)
    room = 1 - height_frac - 2 * ENDPLATE_CLEARANCE_MM / height
    return _uniform(rng, (-room, room)) if room > 0 else 0.0


def _blob(rng: np.random.Generator, vertebra: Vertebra, kind: str, heights: Range) -> Lesion:
    height_frac = _uniform(rng, heights)
    margins = HAEMANGIOMA_MARGIN_MM if kind == "haemangioma" else LESION_MARGIN_MM
    return Lesion(
        vertebra.level,
        kind,
        height_frac=height_frac,
        ap_width=_uniform(rng, BLOB_WIDTH),
        lr_width=_uniform(rng, BLOB_WIDTH),
        ap_center=_uniform(rng, BLOB_AP_CENTRE),
        lr_center=_uniform(rng, LR_CENTRE),
        si_center=_central_si(rng, vertebra, height_frac),
        margin_mm=_uniform(rng, margins),
    )


def _endplate_lesion(rng: np.random.Generator, level: str, endplate: str, kind: str) -> Lesion:
    return Lesion(
        level,
        kind,
        endplate=endplate,
        height_frac=_uniform(rng, ENDPLATE_HEIGHT),
        ap_width=_uniform(rng, ENDPLATE_AP_WIDTH),
        lr_width=_uniform(rng, ENDPLATE_LR_WIDTH),
        ap_center=_uniform(rng, AP_CENTRE),
        lr_center=_uniform(rng, LR_CENTRE),
        minor_fraction=_uniform(rng, MIXED_MINOR_FRACTION),
        margin_mm=_uniform(rng, LESION_MARGIN_MM),
    )


def _partner(spine: Spine, level: str, endplate: str) -> tuple[str, str] | None:
    """The endplate facing ``(level, endplate)`` across its disc."""
    k = spine.levels.index(level)
    if endplate == "inferior" and k + 1 < len(spine.levels):
        return spine.levels[k + 1], "superior"
    if endplate == "superior" and k > 0:
        return spine.levels[k - 1], "inferior"
    return None


def _random_lesions(
    rng: np.random.Generator,
    spine: Spine,
    levels: list[str],
    weights: dict[str, float] = RANDOM_KIND_WEIGHTS,
) -> list[Lesion]:
    """1-3 lesions of the kinds of ``weights`` at distinct places; blobs only in bodies
    without others."""
    target = int(rng.integers(N_LESIONS[0], N_LESIONS[1] + 1))
    lesions: list[Lesion] = []
    while len(lesions) < target:
        kind = _pick(rng, weights)
        used = {lesion.level for lesion in lesions if lesion.endplate is None}
        taken = {(lesion.level, lesion.endplate) for lesion in lesions}
        if kind == "edema":
            free = [lv for lv in levels if all(lesion.level != lv for lesion in lesions)]
            if free:
                level = free[int(rng.integers(len(free)))]
                lesions.append(_blob(rng, spine.vertebra(level), kind, EDEMA_HEIGHT))
            continue
        free_endplates = [
            (lv, ep)
            for lv in levels
            if lv not in used
            for ep in endplates_of(spine, spine.vertebra(lv))
            if (lv, ep) not in taken
        ]
        level, endplate = free_endplates[int(rng.integers(len(free_endplates)))]
        lesions.append(_endplate_lesion(rng, level, endplate, kind))
        partner = _partner(spine, level, endplate)
        if (
            len(lesions) < target
            and partner in free_endplates
            and rng.random() < MIRROR_PROBABILITY
        ):
            lesions.append(_endplate_lesion(rng, *partner, kind))
    return lesions


def _draw_lesions(rng: np.random.Generator, spine: Spine, kind: str, fov: str) -> list[Lesion]:
    """The lesions of a case; none in a body the field of view cuts."""
    levels = list(spine.levels[1:] if fov == "top_cut" else spine.levels)
    if kind == "random":
        lesions = _random_lesions(rng, spine, levels)
    elif kind == "mixed_modic":
        lesions = _random_lesions(rng, spine, levels, MIXED_MODIC_WEIGHTS)
    elif kind == "central_edema":
        candidates = [lv for lv in levels if lv != "S1"]
        level = candidates[int(rng.integers(len(candidates)))]
        lesions = [_blob(rng, spine.vertebra(level), "edema", CENTRAL_EDEMA_HEIGHT)]
    else:
        lesions = []
    free = [lv for lv in levels if all(lesion.level != lv for lesion in lesions)]
    if free and rng.random() < HAEMANGIOMA_PROBABILITY:
        level = free[int(rng.integers(len(free)))]
        lesions.append(_blob(rng, spine.vertebra(level), "haemangioma", HAEMANGIOMA_HEIGHT))
    return lesions


# --- texture draws -------------------------------------------------------------------------


def _spots(
    rng: np.random.Generator, vertebrae: Sequence[Vertebra], count: tuple[int, int],
    diameters: Range, ratios: dict[str, Range],
) -> list[Spot]:  # fmt: skip
    spots = []
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        vertebra = vertebrae[int(rng.integers(len(vertebrae)))]
        half = (vertebra.ap_radius_mm, vertebra.lr_radius_mm, vertebra.height_mm / 2)
        centre = tuple(
            _uniform(rng, (-f * h, f * h)) for f, h in zip(SPOT_POSITION, half, strict=True)
        )
        spots.append(
            Spot(
                vertebra.level,
                centre,  # type: ignore[arg-type]
                _uniform(rng, diameters),
                {role: _uniform(rng, ratios[role]) for role in ROLES},
            )
        )
    return spots


def _bands(
    rng: np.random.Generator, spine: Spine, vertebrae: Sequence[Vertebra] | None = None
) -> list[Band]:
    bands = []
    for vertebra in spine.vertebrae if vertebrae is None else vertebrae:
        for endplate in endplates_of(spine, vertebra):
            if rng.random() < BAND_PROBABILITY:
                bands.append(
                    Band(
                        vertebra.level,
                        endplate,
                        _uniform(rng, BAND_THICKNESS_MM),
                        _uniform(rng, BAND_EXTENT),
                        {role: _uniform(rng, BAND_RATIOS[role]) for role in ROLES},
                    )
                )
    return bands


def _veins(rng: np.random.Generator, vertebrae: Sequence[Vertebra]) -> list[Vein]:
    """A basivertebral vein in most bodies, each drawn on its own."""
    veins = []
    for vertebra in vertebrae:
        if rng.random() >= VEIN_PROBABILITY:
            continue
        split = _uniform(rng, VEIN_SPLIT) if rng.random() < VEIN_SPLIT_PROBABILITY else 1.0
        veins.append(
            Vein(
                vertebra.level,
                si_mm=_uniform(rng, VEIN_SI) * body_height_reference_mm(vertebra) / 2,
                height_mm=_uniform(rng, VEIN_HEIGHT_MM),
                width_mm=_uniform(rng, VEIN_WIDTH_MM),
                depth_frac=_uniform(rng, VEIN_DEPTH),
                split_frac=split,
                spread_mm=_uniform(rng, VEIN_SPREAD_MM),
                ratios={role: _uniform(rng, VEIN_RATIOS[role]) for role in ROLES},
            )
        )
    return veins


def _texture(rngs: dict[str, np.random.Generator], spine: Spine) -> Texture:
    rng = rngs["texture"]
    spots = _spots(rng, spine.vertebrae, FAT_SPOTS, FAT_SPOT_DIAMETER_MM, FAT_SPOT_RATIOS)
    spots += _spots(rng, spine.vertebrae, RED_ISLANDS, RED_ISLAND_DIAMETER_MM, RED_ISLAND_RATIOS)
    bands = _bands(rng, spine)
    mottle = rngs["mottle"]
    discs = rngs["discs"]
    dark = {
        name: _uniform(discs, DARK_DISC_RATIO)
        for name in disc_names(spine)
        if discs.random() < DARK_DISC_PROBABILITY
    }
    bias = rngs["bias"]
    direction = bias.standard_normal(3)
    direction /= np.linalg.norm(direction)
    return Texture(
        spots=tuple(spots),
        bands=tuple(bands),
        mottle_sd={role: _uniform(mottle, MOTTLE_SD) for role in ROLES},
        mottle_length_mm=_uniform(mottle, MOTTLE_LENGTH_MM),
        mottle_seed=int(mottle.integers(2**31)),
        dark_discs=dark,
        bias=Bias(_uniform(bias, BIAS_AMPLITUDE), tuple(float(v) for v in direction)),  # type: ignore[arg-type]
        veins=tuple(_veins(rngs["veins"], spine.vertebrae)),
    )


def _above_texture(rng: np.random.Generator, spine: Spine, texture: Texture) -> Texture:
    """``texture`` with the rendered ``above`` vertebra's (T10's) own, from its own stream:
    spots, bands, a vein, its mottling field's seed and its signal variation per role."""
    above = (spine.above,)
    spots = _spots(rng, above, ABOVE_FAT_SPOTS, FAT_SPOT_DIAMETER_MM, FAT_SPOT_RATIOS)
    spots += _spots(rng, above, ABOVE_RED_ISLANDS, RED_ISLAND_DIAMETER_MM, RED_ISLAND_RATIOS)
    bands = _bands(rng, spine, above)
    veins = _veins(rng, above)
    return replace(
        texture,
        spots=(*texture.spots, *spots),
        bands=(*texture.bands, *bands),
        veins=(*texture.veins, *veins),
        above_mottle_seed=int(rng.integers(2**31)),
        above_gain={
            role: 1 + ABOVE_MARROW_VARIATION * float(rng.standard_normal()) for role in ROLES
        },
    )


# --- acquisition draws ---------------------------------------------------------------------


def _grid(
    rng: np.random.Generator, fov: tuple[float, float], slices: tuple[int, int], small: bool
) -> tuple[GridSpec, tuple[float, float]]:
    """One contrast's grid and its drawn (AP, SI) pixel size."""
    pixel_ap = _uniform(rng, PIXEL_MM)
    pixel_si = float(np.clip(pixel_ap * _uniform(rng, PIXEL_ASPECT), *PIXEL_MM))
    thickness = _uniform(rng, SLICE_THICKNESS_MM)
    gap = _uniform(rng, GAP_MM) if rng.random() < GAP_PROBABILITY else 0.0
    n_slices = int(rng.integers(slices[0], slices[1] + 1))
    offset = tuple(_uniform(rng, (-OFFSET_MM, OFFSET_MM)) for _ in range(3))
    tilt = tuple(_uniform(rng, (-TILT_DEG, TILT_DEG)) for _ in range(3))
    factor = SMALL_PIXEL_FACTOR if small else 1.0
    spec = GridSpec(
        n_ap=round(fov[0] / (pixel_ap * factor)),
        n_si=round(fov[1] / (pixel_si * factor)),
        n_slices=n_slices,
        pixel_ap_mm=pixel_ap * factor,
        pixel_si_mm=pixel_si * factor,
        slice_thickness_mm=thickness,
        slice_spacing_mm=thickness + gap,
        offset_mm=offset,  # type: ignore[arg-type]
        tilt_deg=tilt,  # type: ignore[arg-type]
    )
    return spec, (pixel_ap, pixel_si)


def _cut_top(spec: GridSpec, spine: Spine, cut_z: float) -> GridSpec:
    """The grid shifted along SI so that the top of its field of view lies at ``cut_z``."""
    centre_z = float(spine.centre_of_field()[2])
    half = (spec.n_si - 1) / 2 * spec.pixel_si_mm
    x, y, z = spec.offset_mm
    return replace(spec, offset_mm=(x, y, cut_z - centre_z - half + z))


def _grids(
    rngs: dict[str, np.random.Generator], spine: Spine, fov: str, small: bool
) -> tuple[dict[str, GridSpec], dict[str, tuple[float, float]]]:
    rng = rngs["acquisition"]
    extent = (_uniform(rng, FOV_AP_MM), _uniform(rng, FOV_SI_MM))
    slices = THIN_SLAB_SLICES if fov == "thin_slab" else FULL_SLICES
    grids, pixels = {}, {}
    for role in ROLES:
        grids[role], pixels[role] = _grid(rng, extent, slices, small)
    if fov == "top_cut":
        top = spine.vertebrae[0]
        cut = top.to_world(
            [0.0], [0.0], [_uniform(rngs["fov"], TOP_CUT_POSITION) * top.height_mm / 2]
        )
        grids = {role: _cut_top(spec, spine, float(cut[0, 2])) for role, spec in grids.items()}
    return grids, pixels


# --- the case ------------------------------------------------------------------------------


def draw_case(
    seed: int,
    *,
    kind: str = "random",
    small: bool = False,
    real_anatomy: bool = False,
    pelvis_and_bowel: bool = False,
    resampled_1mm: bool = False,
    vertebra_above: bool = False,
) -> CaseDraws:
    """Every random draw of a case, each property from its own stream of ``seed``.

    Parameters
    ----------
    seed : int
    kind : {'random', 'healthy', 'central_edema', 'mixed_modic'}
    small : bool
        Coarse in-plane grids (pixels :data:`SMALL_PIXEL_FACTOR` times larger) for tests.
    real_anatomy : bool
        Also draw the surroundings that real spines show and the plain family lacks: aorta
        and vena cava against the bodies, iliac wings beside the sacrum, bowel gas, the
        psoas reaching in front of the bodies' sides (from their own stream; every other
        draw stays as without them).
    pelvis_and_bowel : bool
        Also draw the sacrum below S1 (S2 and down, marrow-signal bone that is not a
        vertebral body of the truth), pelvic bone with marrow signal beside it and
        fluid-filled bowel loops (from their own stream; every other draw stays as without
        them).
    resampled_1mm : bool
        The rendered images resampled (linearly) onto 1 mm isotropic voxels over the same
        fields of view, and the truth with them (nearest): data resampled from thick slices.
    vertebra_above : bool
        Also render the vertebra above T11 (T10, where the field of view reaches it) as a
        healthy body labelled 17 in the truth, with canal and posterior elements, its
        texture from its own stream (:func:`_above_texture`; every other draw stays as
        without it, lesions stay T11-S1).

    Returns
    -------
    CaseDraws
        Render it with :func:`render_case`; change fields with :func:`dataclasses.replace`
        to explain or isolate an effect.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {list(KINDS)}")
    rngs = _streams(seed)
    bone = rngs["bone"]
    cortex_mm, endplate_mm = _uniform(bone, BONE_THICKNESS_MM), _uniform(bone, BONE_THICKNESS_MM)
    spine = _spine(seed, cortex_mm, endplate_mm)
    fov = _pick(rngs["fov"], FOV_WEIGHTS)
    grids, pixels = _grids(rngs, spine, fov, small)
    surroundings = _surroundings(rngs["surroundings"], spine) if real_anatomy else {}
    if pelvis_and_bowel:
        surroundings |= _pelvis_and_bowel(rngs["pelvis"], spine)
    texture = _texture(rngs, spine)
    if vertebra_above:
        surroundings["render_above"] = True
        texture = _above_texture(
            rngs["above"], _spine(seed, cortex_mm, endplate_mm, surroundings), texture
        )
    storage = rngs["storage"]
    snr = rngs["snr"]
    return CaseDraws(
        seed=seed,
        kind=kind,
        small=small,
        cortex_mm=cortex_mm,
        endplate_mm=endplate_mm,
        lesion_ratios=_lesion_ratios(rngs["contrast"]),
        lesions=tuple(_draw_lesions(rngs["lesions"], spine, kind, fov)),
        texture=texture,
        fluid="t2fs" if rngs["fluid"].random() < T2FS_PROBABILITY else "stir",
        snr={role: _uniform(snr, SNR) for role in ROLES},
        grids=grids,
        pixel_mm=pixels,
        fov=fov,
        storage=_pick(storage, STORAGE_WEIGHTS),
        uint8_percentile=_uniform(storage, UINT8_WINDOW_PERCENTILE),
        float_scale=float(10 ** _uniform(storage, FLOAT_SCALE_LOG10)),
        surroundings=surroundings,
        resampled_mm=RESAMPLED_MM if resampled_1mm else 0.0,
    )


def _contrast(draws: CaseDraws, role: str) -> ContrastSpec:
    """The contrast spec of a role: its base table with the drawn lesion ratios and SNR."""
    if role == "fluid" and draws.fluid == "t2fs":
        base = replace(CONTRASTS["t2"], name="t2fs", meta=dict(T2FS_META))
        table = dict(T2FS_SIGNALS)
    else:
        base = CONTRASTS[SLOTS[role]]
        table = dict(SIGNALS[SLOTS[role]])
    marrow = table[T.MARROW]
    for name, ratio in draws.lesion_ratios[role].items():
        table[T[name]] = ratio * marrow
    return replace(base, snr=draws.snr[role], signals=table)


def _stored(volume: Volume, draws: CaseDraws) -> Volume:
    """The image as the drawn storage holds it: uint16, 8-bit (windowed) or scaled floats."""
    data = np.asarray(volume.data)
    stored: NDArray
    if draws.storage == "uint8":
        window = max(float(np.percentile(data, draws.uint8_percentile)), 1.0)
        stored = np.clip(np.rint(data * (255.0 / window)), 0, 255).astype(np.uint8)
    elif draws.storage == "float32":
        stored = data.astype(np.float32) * np.float32(draws.float_scale)
    else:
        return volume
    return Volume(stored, volume.affine, kind="intensity", source=volume.source, meta=volume.meta)


def _add_vein_truth(study: PhantomStudy, texture: Texture) -> None:
    """Add the ``"vein"`` truth mask (basivertebral veins outside the BME truth) on every
    grid: a mimic of edema that is not edema, so benchmarks can count BME reported in it."""
    for name, masks in study.truth.grid_masks.items():
        spec = study.config.grids[name]
        offsets = subsample_offsets(spec, study.config.supersample)
        vein = vein_mask(texture, study.spine, masks["vertebrae"].grid, offsets, masks["vertebrae"])
        outside_bme = np.asarray(masks["bme_mask"].data) == 0
        masks["vein"] = vein.with_data((np.asarray(vein.data) * outside_bme).astype(np.uint8))
    study.truth.masks["vein"] = study.truth.grid_masks["t1"]["vein"]


def render_case(draws: CaseDraws, *, noise_seed: int | None = None) -> PhantomStudy:
    """Build the phantom study of a set of draws (see :func:`draw_case`).

    The draws are recorded in ``study.render_parameters["randomization"]``. ``noise_seed``
    (default: the draws' seed) seeds the image noise only, e.g. for a rescan of one case.
    """
    rngs = _streams(draws.seed if noise_seed is None else noise_seed)
    spine = _spine(draws.seed, draws.cortex_mm, draws.endplate_mm, draws.surroundings)
    config = PhantomConfig(
        anatomy=spine.config,
        grids={SLOTS[role]: spec for role, spec in draws.grids.items()},
        contrasts={SLOTS[role]: _contrast(draws, role) for role in ROLES},
        supersample=RANDOMIZED_SUPERSAMPLE,
    )
    noise = {SLOTS[role]: rngs[f"noise_{role}"] for role in ROLES}
    tables = {role: config.contrasts[SLOTS[role]].table for role in ROLES}
    effects = render_effects(
        draws.texture,
        spine,
        [(SLOTS[role], role) for role in ROLES],
        marrow_over_cortex={
            role: table[T.MARROW] / table[T.CORTEX] for role, table in tables.items()
        },
    )
    study = assemble_study(draws.seed, spine, list(draws.lesions), config, noise, effects=effects)
    _add_vein_truth(study, draws.texture)
    if draws.resampled_mm:
        study = _resampled_study(study, draws.resampled_mm)
    study.t1, study.t2, study.stir = (_stored(v, draws) for v in (study.t1, study.t2, study.stir))
    study.render_parameters["randomization"] = draws.to_dict()
    return study


def make_randomized_phantom(
    seed: int,
    *,
    kind: str = "random",
    small: bool = False,
    real_anatomy: bool = False,
    pelvis_and_bowel: bool = False,
    resampled_1mm: bool = False,
    vertebra_above: bool = False,
) -> PhantomStudy:
    """A phantom study whose every property is drawn from broad, realistic ranges.

    Parameters
    ----------
    seed : int
        Same seed, kind and size: identical arrays and truth.
    kind : {'random', 'healthy', 'central_edema', 'mixed_modic'}
        1-3 lesions of any kind; no lesion (distractors only); one central edema over
        30-60 % of a body's height; or 1-3 Modic changes of type III or of two types.
    small : bool
        Coarse in-plane grids for fast tests.
    real_anatomy : bool
        Add vessels, iliac wings and bowel gas (see :func:`draw_case`).
    pelvis_and_bowel, resampled_1mm, vertebra_above : bool
        Add the lower sacrum, pelvic bone and bowel loops; render on 1 mm isotropic
        resampled grids; render T10 above T11 (see :func:`draw_case`).

    Returns
    -------
    PhantomStudy
        ``stir`` holds the fluid-sensitive image (a STIR or a fat-suppressed T2); the draws
        are in ``render_parameters["randomization"]``.
    """
    draws = draw_case(
        seed,
        kind=kind,
        small=small,
        real_anatomy=real_anatomy,
        pelvis_and_bowel=pelvis_and_bowel,
        resampled_1mm=resampled_1mm,
        vertebra_above=vertebra_above,
    )
    return render_case(draws)
