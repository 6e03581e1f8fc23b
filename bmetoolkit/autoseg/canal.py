"""The spinal canal (CSF column) and the band of tissue in front of it where bodies lie.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.autoseg.params import AutosegParameters
from bmetoolkit.errors import BmetoolkitError

__all__ = ["Canal", "find_canal", "normalise", "tissue_mask"]

Array = NDArray[np.float32]


@dataclass(frozen=True)
class Canal:
    """The CSF column, as its anterior wall per superior-inferior row.

    Attributes
    ----------
    front : ndarray, shape (n_si,)
        Anterior index (fractional, canonical axis 0) of the CSF's anterior wall at each SI
        row, interpolated over rows where no CSF was found.
    midline : float
        Left-right index (canonical axis 2) of the canal's midline.
    rows : tuple of 2 ints
        First and last SI rows where CSF was found.
    mask : ndarray of bool
        The CSF column.
    """

    front: NDArray[np.float64]
    midline: float
    rows: tuple[int, int]
    mask: NDArray[np.bool_]


def tissue_mask(image: Array, fraction: float) -> NDArray[np.bool_]:
    """Voxels brighter than ``fraction`` of the image's 99th percentile (not air)."""
    return image > fraction * float(np.percentile(image, 99))


def normalise(image: Array, tissue: NDArray[np.bool_]) -> Array:
    """``image`` divided by its median over ``tissue`` (a unit-free scale)."""
    scale = float(np.median(image[tissue])) if tissue.any() else 1.0
    return image / np.float32(max(scale, 1e-6))


def _csf_candidates(t1: Array | None, fluid: Array, params: AutosegParameters) -> NDArray[np.bool_]:
    """Bright on the fluid image and (with a T1) dark on T1."""
    if t1 is None:
        tissue = tissue_mask(fluid, params.tissue_fraction)
        return tissue & (normalise(fluid, tissue) > params.csf_fluid_min)
    tissue = tissue_mask(fluid, params.tissue_fraction) | tissue_mask(t1, params.tissue_fraction)
    t1n, fluidn = normalise(t1, tissue), normalise(fluid, tissue)
    ratio = fluidn / (t1n + np.float32(0.05))
    ratio_ref = float(np.median(ratio[tissue]))
    return tissue & (ratio > params.csf_ratio_min * ratio_ref) & (fluidn > params.csf_fluid_min)


def _canal_column(
    candidates: NDArray[np.bool_], fluid: Array, spacing: NDArray, min_length_mm: float
) -> NDArray[np.bool_]:
    """The brightest (median fluid signal) candidate component long enough to be the canal.

    Subcutaneous fat is long and bright on T2 too, but CSF is brighter; when no component
    is long enough, the longest one is returned (and refused by the caller).
    """
    labels, n = ndimage.label(candidates)
    if n == 0:
        return candidates
    index = np.arange(1, n + 1)
    boxes = ndimage.find_objects(labels)
    lengths = np.array([(b[1].stop - b[1].start) * spacing[1] for b in boxes])
    long_enough = lengths >= min_length_mm
    if not long_enough.any():
        return labels == int(np.argmax(lengths)) + 1
    brightness = np.asarray(ndimage.median(fluid, labels, index))
    best = int(np.argmax(np.where(long_enough, brightness, -np.inf))) + 1
    return labels == best


def find_canal(t1: Array, fluid: Array, spacing: NDArray, params: AutosegParameters) -> Canal:
    """Locate the CSF column: bright on the fluid image, dark on T1, long along SI.

    Raises
    ------
    BmetoolkitError
        No CSF column of at least ``canal_min_length_mm`` was found.
    """
    candidates = _csf_candidates(t1, fluid, params)
    column = _canal_column(candidates, fluid, spacing, params.canal_min_length_mm)
    si_rows = np.flatnonzero(column.any(axis=(0, 2)))
    length = (si_rows[-1] - si_rows[0] + 1) * spacing[1] if si_rows.size else 0.0
    if length < params.canal_min_length_mm:
        raise BmetoolkitError(
            f"no spinal canal found: the longest CSF-like column spans {length:.0f} mm "
            f"(at least {params.canal_min_length_mm:.0f} mm needed)",
            hint="automatic segmentation needs a sagittal T2 or STIR showing the thecal sac; "
            "pass a vertebra label map instead",
        )
    per_slice = column.sum(axis=(0, 1)).astype(np.float64)
    midline = float(np.average(np.arange(column.shape[2]), weights=per_slice))
    return Canal(
        _front(column, spacing, params), midline, (int(si_rows[0]), int(si_rows[-1])), column
    )


def _front(column: NDArray[np.bool_], spacing: NDArray, params: AutosegParameters):
    """Anterior wall of the CSF per SI row, smoothed and interpolated."""
    ap_index = np.arange(column.shape[0], dtype=np.float64)[:, None, None]
    anterior = np.where(column, ap_index, -1.0).max(axis=(0, 2))
    found = np.flatnonzero(anterior >= 0)
    size = max(1, round(params.canal_smooth_mm / spacing[1]) | 1)
    smoothed = ndimage.median_filter(anterior[found], size=size, mode="nearest")
    rows = np.arange(column.shape[1], dtype=np.float64)
    return np.interp(rows, found, smoothed)


def band_distance(canal: Canal, shape: tuple[int, int, int], spacing: NDArray) -> Array:
    """Distance (mm) anterior of the CSF's anterior wall, for every (AP, SI) position."""
    ap = np.arange(shape[0], dtype=np.float32)[:, None]
    return ((ap - canal.front[None, :].astype(np.float32)) * np.float32(spacing[0])).astype(
        np.float32
    )
