"""From tissue samples to scanner-like images: signal, partial volume, shading, noise, scale.

Signals are relative to normal marrow of the same contrast (DOMAIN.md, "Signal patterns").
A voxel's signal is the mean of its samples' signals, which models partial volume across the
slice thickness and within the pixel. A smooth multiplicative coil sensitivity (posterior
spine coil), Rician noise and an arbitrary scanner scale and offset follow; values are
stored as ``uint16``, like a scanner stores them.

Examples
--------
>>> table = signal_table("t1", n_vertebrae=1)
>>> bool(table[Tissue.MODIC1] < table[Tissue.MARROW] < table[Tissue.MODIC2])
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.anatomy import BODY_TISSUES, N_TISSUES, Spine, Tissue
from bmetoolkit.data.phantom.scene import Samples, reduce_samples, voxel_centres
from bmetoolkit.volume import Grid

__all__ = [
    "CONTRASTS",
    "SIGNALS",
    "ContrastSpec",
    "RenderEffects",
    "acquisition_meta",
    "render",
    "signal_table",
]

T = Tissue

#: Signal of each tissue relative to normal marrow of the same contrast (marrow = 1 on T1).
SIGNALS: dict[str, dict[Tissue, float]] = {
    "t1": {
        T.AIR: 0.0, T.FAT: 1.4, T.MUSCLE: 0.45, T.VISCERA: 0.5, T.CSF: 0.3, T.CORD: 0.55,
        T.EPIDURAL_FAT: 1.3, T.POSTERIOR_BONE: 0.8, T.ANNULUS: 0.4, T.NUCLEUS: 0.5,
        T.CORTEX: 0.1, T.MARROW: 1.0, T.MODIC1: 0.55, T.MODIC2: 1.25, T.MODIC3: 0.35,
        T.EDEMA: 0.55, T.HAEMANGIOMA: 1.3,
    },
    "t2": {
        T.AIR: 0.0, T.FAT: 1.1, T.MUSCLE: 0.3, T.VISCERA: 0.6, T.CSF: 2.0, T.CORD: 0.7,
        T.EPIDURAL_FAT: 1.0, T.POSTERIOR_BONE: 0.5, T.ANNULUS: 0.35, T.NUCLEUS: 1.4,
        T.CORTEX: 0.08, T.MARROW: 0.6, T.MODIC1: 1.3, T.MODIC2: 0.8, T.MODIC3: 0.3,
        T.EDEMA: 1.3, T.HAEMANGIOMA: 1.3,
    },
    "stir": {
        T.AIR: 0.0, T.FAT: 0.1, T.MUSCLE: 0.35, T.VISCERA: 0.6, T.CSF: 1.6, T.CORD: 0.6,
        T.EPIDURAL_FAT: 0.1, T.POSTERIOR_BONE: 0.2, T.ANNULUS: 0.3, T.NUCLEUS: 1.0,
        T.CORTEX: 0.05, T.MARROW: 0.25, T.MODIC1: 1.0, T.MODIC2: 0.15, T.MODIC3: 0.15,
        T.EDEMA: 1.0, T.HAEMANGIOMA: 0.5,
    },
}  # fmt: skip


@dataclass(frozen=True)
class ContrastSpec:
    """Acquisition and image-formation parameters of one contrast.

    Parameters
    ----------
    name : {'t1', 't2', 'stir'}
        Key into :data:`SIGNALS`.
    snr : float
        Normal marrow signal over the noise standard deviation, before shading.
    scale_range : tuple of 2 floats
        Range of the random scanner scale: stored value of normal marrow (before shading).
    offset_range : tuple of 2 ints
        Range of the random scanner offset added to every voxel (stored units).
    marrow_variation : float
        Relative standard deviation of each body's marrow signal around the table value.
    meta : dict
        BIDS sidecar fields (seconds for times, degrees for angles, tesla for the field).
    signals : mapping of Tissue to float, optional
        Signal of every tissue relative to normal marrow; :data:`SIGNALS` ``[name]`` by
        default. Lets a contrast have its own table (a fat-suppressed T2, drawn lesion
        contrasts) without changing the defaults.
    """

    name: str
    snr: float
    scale_range: tuple[float, float]
    offset_range: tuple[int, int] = (0, 40)
    marrow_variation: float = 0.04
    meta: dict[str, Any] = field(default_factory=dict)
    signals: Mapping[Tissue, float] | None = None

    @property
    def table(self) -> Mapping[Tissue, float]:
        """The signal of each tissue for this contrast (``signals`` or the default table)."""
        return SIGNALS[self.name] if self.signals is None else self.signals


#: A per-sample gain: flat indices into :attr:`Samples.code` and the factor of each, applied
#: to the tissue signal before lesions are blended in (textures, per-disc signal).
SampleGain = Callable[[Samples], tuple[NDArray[np.intp], NDArray[np.float32]]]
#: A per-voxel multiplicative field on a grid (a bias field on top of the coil shading).
VoxelGain = Callable[[Grid], NDArray[np.float32]]


@dataclass(frozen=True)
class RenderEffects:
    """Optional image effects of one contrast that never enter the truth.

    Parameters
    ----------
    sample_gain : callable, optional
        ``sample_gain(samples) -> (flat_indices, factors)``: multiplies the tissue signal
        of those samples (marrow texture, a degenerated disc) before lesions are blended in,
        so a lesion's core keeps its own signal.
    voxel_gain : callable, optional
        ``voxel_gain(grid) -> field``: a multiplicative field of the grid's shape, applied
        with the coil sensitivity (a strong bias field).
    """

    sample_gain: SampleGain | None = None
    voxel_gain: VoxelGain | None = None


#: Field strength (tesla), flip angle of the refocusing pulses (degrees), manufacturer.
FIELD_STRENGTH_T = 1.5
REFOCUSING_FLIP_DEG = 150.0
MANUFACTURER = "bmetoolkit phantom"


def acquisition_meta(
    description: str,
    *,
    repetition_s: float,
    echo_s: float,
    inversion_s: float | None = None,
) -> dict[str, Any]:
    """BIDS sidecar fields of a turbo spin echo series (an inversion-recovery one with TI).

    >>> meta = acquisition_meta("STIR_SAG", repetition_s=4.0, echo_s=0.06, inversion_s=0.16)
    >>> print(meta["ScanningSequence"], meta["InversionTime"])
    SE\\IR 0.16
    """
    meta: dict[str, Any] = {
        "SeriesDescription": description,
        "ProtocolName": description,
        "ScanningSequence": "SE" if inversion_s is None else "SE\\IR",
        "SequenceVariant": "SK",
        "ScanOptions": "" if inversion_s is None else "IR",
        "RepetitionTime": repetition_s,
        "EchoTime": echo_s,
        "FlipAngle": REFOCUSING_FLIP_DEG,
        "MagneticFieldStrength": FIELD_STRENGTH_T,
        "Manufacturer": MANUFACTURER,
    }
    if inversion_s is not None:
        meta["InversionTime"] = inversion_s
    return meta


#: Default contrasts: T1 TSE, T2 TSE (no fat saturation) and STIR, as in a lumbar protocol;
#: times in seconds (BIDS units), STIR with the inversion time that nulls fat at 1.5 T.
CONTRASTS: dict[str, ContrastSpec] = {
    "t1": ContrastSpec(
        "t1",
        snr=25.0,
        scale_range=(300.0, 2500.0),
        meta=acquisition_meta("T1_TSE_SAG", repetition_s=0.55, echo_s=0.011),
    ),
    "t2": ContrastSpec(
        "t2",
        snr=20.0,
        scale_range=(400.0, 3000.0),
        meta=acquisition_meta("T2_TSE_SAG", repetition_s=3.5, echo_s=0.1),
    ),
    "stir": ContrastSpec(
        "stir",
        snr=12.0,
        scale_range=(600.0, 4000.0),
        meta=acquisition_meta("STIR_SAG", repetition_s=4.0, echo_s=0.06, inversion_s=0.16),
    ),
}

#: Coil sensitivity: posterior surface coil falling off with depth from the posterior skin,
#: ``floor + (1 - floor) * exp(-depth / length)``; plus a gentle SI ripple of the coil elements.
COIL_FALLOFF_MM = 90.0
COIL_FLOOR = 0.35
COIL_SI_RIPPLE = 0.08
COIL_SI_PERIOD_MM = 180.0
#: Maximum value stored (uint16).
STORED_MAX = np.iinfo(np.uint16).max


def signal_table(
    contrast: str,
    n_vertebrae: int,
    variation: NDArray[np.float64] | None = None,
    *,
    signals: Mapping[Tissue, float] | None = None,
) -> NDArray[np.float32]:
    """Signal of every sample code for one contrast.

    Parameters
    ----------
    contrast : {'t1', 't2', 'stir'}
    n_vertebrae : int
        Number of vertebral bodies (each has its own block of codes).
    variation : ndarray, shape (n_vertebrae,), optional
        Multiplicative factor of each body's signal (marrow and lesions alike).
    signals : mapping of Tissue to float, optional
        The tissue signals to use instead of ``SIGNALS[contrast]``.
    """
    signals = SIGNALS[contrast] if signals is None else signals
    base = np.array([signals[tissue] for tissue in Tissue], dtype=np.float32)
    table = np.tile(base, n_vertebrae + 1)
    if variation is not None:
        body = np.array([int(t) for t in BODY_TISSUES])
        for k, factor in enumerate(variation):
            table[body + N_TISSUES * (k + 1)] *= np.float32(factor)
    return table


def coil_sensitivity(spine: Spine, grid_xyz: tuple[NDArray, NDArray, NDArray]) -> NDArray:
    """Smooth multiplicative coil sensitivity at world points, 1 near the spine.

    Parameters
    ----------
    spine : Spine
    grid_xyz : tuple of 3 arrays
        World RAS+ coordinates (mm) of the voxel centres.
    """
    _, y, z = grid_xyz
    cfg = spine.config
    a_ref = float(np.mean([v.ap_radius_mm for v in spine.vertebrae]))
    ap, _ = spine.sagittal_frame(y, z)
    depth = np.maximum(ap + a_ref + cfg.posterior_skin_depth_mm, 0)
    depth_spine = cfg.posterior_skin_depth_mm + a_ref
    falloff = COIL_FLOOR + (1 - COIL_FLOOR) * np.exp(-depth / COIL_FALLOFF_MM)
    norm = COIL_FLOOR + (1 - COIL_FLOOR) * np.exp(-depth_spine / COIL_FALLOFF_MM)
    ripple = 1 + COIL_SI_RIPPLE * np.cos(2 * np.pi * z / COIL_SI_PERIOD_MM)
    return (falloff / norm * ripple).astype(np.float32)


def render(
    samples: Samples,
    spine: Spine,
    contrast: ContrastSpec,
    rng: np.random.Generator,
    *,
    effects: RenderEffects | None = None,
) -> tuple[NDArray[np.uint16], dict[str, float]]:
    """Render one contrast from tissue samples.

    Parameters
    ----------
    samples : Samples
        Tissue codes on the contrast's grid.
    spine : Spine
    contrast : ContrastSpec
    rng : numpy.random.Generator
        Source of the per-body variation, noise, scale and offset. A rendered ``above``
        vertebra (T10) draws nothing from it: its signal is the table's (times the
        ``effects``' gain), so the other draws stay what they are without it.
    effects : RenderEffects, optional
        Texture and bias applied to the image only (they draw nothing from ``rng``).

    Returns
    -------
    image : ndarray of uint16
    parameters : dict
        The random draws (scale, offset, noise sigma in stored units), for provenance.
    """
    n = len(spine.vertebrae)
    variation = 1 + contrast.marrow_variation * rng.standard_normal(n)
    if spine.above.rendered:  # its own variation (if any) is a sample gain: rng's draws stay
        variation = np.append(variation, 1.0)
    table = signal_table(contrast.name, len(variation), variation, signals=contrast.signals)
    signal = table[samples.code]
    if effects is not None and effects.sample_gain is not None:
        where, factor = effects.sample_gain(samples)
        signal.reshape(-1)[where] *= factor
    soft = samples.weight > 0
    signal[soft] += samples.weight[soft] * (table[samples.lesion[soft]] - signal[soft])
    clean = reduce_samples(np.add, signal) / np.float32(signal.shape[-1])

    clean *= coil_sensitivity(spine, voxel_centres(samples.grid))
    if effects is not None and effects.voxel_gain is not None:
        clean *= effects.voxel_gain(samples.grid)

    marrow = contrast.table[Tissue.MARROW]
    sigma = marrow / contrast.snr
    real = clean + sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary)

    scale = float(rng.uniform(*contrast.scale_range)) / marrow
    offset = int(rng.integers(contrast.offset_range[0], contrast.offset_range[1] + 1))
    stored = np.clip(np.rint(magnitude * scale) + offset, 0, STORED_MAX).astype(np.uint16)
    return stored, {"scale": scale, "offset": offset, "noise_sigma": sigma * scale}
