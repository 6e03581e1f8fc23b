"""Is the marrow brighter or darker than the discs on this T1?

On a spin-echo T1 the fatty marrow of the bodies is bright and the discs are dark. On some
T1-weighted gradient-echo scans (e.g. Spinal Cord Toolbox's cervical ``t1w``) it is the
other way round: trabecular bone dephases the signal, the bodies are dark and the discs
bright. The bodies are the long segments of the spine and the discs the short ones, so the
polarity is read from a profile of T1 along the spine just in front of the canal: the
intensity phase (above or below the profile's mid level) that forms the longer runs is the
marrow.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.canal import Canal, band_distance

__all__ = ["BRIGHT", "DARK", "disc_contrast", "invert", "marrow_polarity", "spine_profile"]

#: Marrow brighter than the discs on T1 (spin echo) or darker (some gradient echoes).
BRIGHT = "bright"
DARK = "dark"
#: The profile samples this strip: from STRIP_MM[0] to STRIP_MM[1] anterior of the canal's
#: anterior wall (inside the bodies and discs of every spine region), within
#: STRIP_HALF_WIDTH_MM of the canal's midline.
STRIP_MM = (2.0, 12.0)
STRIP_HALF_WIDTH_MM = 5.0
#: The profile's mid level lies halfway between these percentiles of the profile.
LEVEL_PERCENTILES = (10.0, 90.0)
#: Rows of the strip above this percentile of the fluid profile are disc rows.
DISC_ROW_PERCENTILE = 80.0
#: Both profiles are taken relative to their running median over this length (mm).
SHADING_MM = 60.0
#: Disc rows brighter or darker on T1 than body rows by this factor decide the polarity.
CLEAR_CONTRAST = 1.15


def spine_profile(t1: NDArray, canal: Canal, spacing: NDArray) -> NDArray[np.float64]:
    """Median T1 per superior-inferior row of the strip in front of the canal (NaN: none).

    Rows outside the canal's extent are NaN too.
    """
    distance = band_distance(canal, t1.shape, spacing)
    lr = np.abs(np.arange(t1.shape[2]) - canal.midline) * spacing[2]
    strip = ((distance >= STRIP_MM[0]) & (distance <= STRIP_MM[1]))[:, :, None] & (
        lr <= STRIP_HALF_WIDTH_MM
    )[None, None, :]
    box = ndimage.find_objects(strip.astype(np.uint8))
    if not box or box[0] is None:
        return np.full(t1.shape[1], np.nan)
    ap_box, lr_box = box[0][0], box[0][2]  # only the strip's bounding box is read
    sub = np.where(strip[ap_box, :, lr_box], t1[ap_box, :, lr_box], np.nan)
    values = sub.transpose(1, 0, 2).reshape(t1.shape[1], -1)
    profile = np.full(t1.shape[1], np.nan)
    first, last = canal.rows
    rows = np.arange(first, last + 1)
    rows = rows[strip[:, rows].any(axis=(0, 2))]
    if rows.size:
        profile[rows] = np.nanmedian(values[rows], axis=1)
    return profile


def _interior_runs(above: NDArray[np.bool_]) -> tuple[list[int], list[int]]:
    """Lengths of the runs above and below the mid level that do not touch the profile's ends."""
    labels_above, n_above = ndimage.label(above)
    labels_below, n_below = ndimage.label(~above)
    runs: tuple[list[int], list[int]] = ([], [])
    for side, (labels, n) in enumerate([(labels_above, n_above), (labels_below, n_below)]):
        for box in ndimage.find_objects(labels)[:n]:
            start, stop = box[0].start, box[0].stop
            if start > 0 and stop < above.size:
                runs[side].append(stop - start)
    return runs


def disc_contrast(t1: NDArray, fluid: NDArray, canal: Canal, spacing: NDArray) -> float | None:
    """T1 of the disc rows over T1 of the body rows, with the discs found on the fluid image.

    Along the strip in front of the canal, the rows brightest on the fluid image (the upper
    :data:`DISC_ROW_PERCENTILE` of its profile: disc nuclei; marrow is darker on STIR, fat
    suppressed T2 and T2) are disc rows, the darker half body rows. Above 1 the discs are
    brighter than the marrow on this T1 (dark marrow). Both profiles are divided by their
    running median over :data:`SHADING_MM` first. None when there are too few rows.
    """
    t1_profile = spine_profile(t1, canal, spacing)
    fluid_profile = spine_profile(fluid, canal, spacing)
    valid = np.isfinite(t1_profile) & np.isfinite(fluid_profile)
    if valid.sum() < 10:
        return None
    # Relative to their running medians, so shading along the spine (which both images may
    # share) does not pass for contrast.
    size = max(3, round(SHADING_MM / float(spacing[1])) | 1)
    t1_values, fluid_values = (
        values / np.maximum(ndimage.median_filter(values, size=size, mode="nearest"), 1e-6)
        for values in (t1_profile[valid], fluid_profile[valid])
    )
    disc = fluid_values >= np.percentile(fluid_values, DISC_ROW_PERCENTILE)
    body = fluid_values <= np.percentile(fluid_values, 50.0)
    marrow = float(np.median(t1_values[body]))
    return float(np.median(t1_values[disc])) / marrow if marrow > 0 else None


def marrow_polarity(
    t1: NDArray, canal: Canal, spacing: NDArray, fluid: NDArray | None = None
) -> tuple[str, dict[str, Any]]:
    """Whether the bodies' marrow is :data:`BRIGHT` or :data:`DARK` on ``t1``.

    With a ``fluid`` image, the discs are read from it (:func:`disc_contrast`) and the T1
    of disc rows against body rows decides when it differs by more than
    :data:`CLEAR_CONTRAST` either way; otherwise (and without ``fluid``) the run lengths
    decide, as below.

    Returns
    -------
    polarity : str
        :data:`BRIGHT` unless the runs below the profile's mid level (over at least two
        of them on each side) are clearly the longer ones; :data:`BRIGHT` too when the
        profile shows no alternation to judge from (the usual spin-echo T1).
    evidence : dict
        Median run lengths (mm) above and below the mid level and the number of runs.

    Examples
    --------
    >>> spine = np.tile(np.r_[np.full(20, 100.0), np.full(5, 400.0)], 4)  # dark bodies
    >>> t1 = np.broadcast_to(spine[None, :, None], (30, spine.size, 11)).copy()
    >>> canal = Canal(np.full(spine.size, 5.0), 5.0, (0, spine.size - 1), t1 > 0)
    >>> marrow_polarity(t1, canal, np.ones(3))[0]
    'dark'
    """
    contrast = None if fluid is None else disc_contrast(t1, fluid, canal, spacing)
    if contrast is not None and abs(np.log(contrast)) > np.log(CLEAR_CONTRAST):
        polarity = DARK if contrast > 1 else BRIGHT
        return polarity, {"disc_to_marrow_t1": round(contrast, 2), "read_from": "fluid discs"}
    profile = spine_profile(t1, canal, spacing)
    valid = profile[np.isfinite(profile)]
    if valid.size < 5:
        return BRIGHT, {"reason": "too few rows in front of the canal"}
    low, high = np.percentile(valid, LEVEL_PERCENTILES)
    above_runs, below_runs = _interior_runs(valid > (low + high) / 2)
    evidence: dict[str, Any] = {
        "runs_above": len(above_runs),
        "runs_below": len(below_runs),
        "median_run_above_mm": _median_mm(above_runs, spacing[1]),
        "median_run_below_mm": _median_mm(below_runs, spacing[1]),
        "disc_to_marrow_t1": None if contrast is None else round(contrast, 2),
        "read_from": "run lengths",
    }
    if len(above_runs) < 2 or len(below_runs) < 2:
        evidence["reason"] = "no alternation of bodies and discs along the spine"
        return BRIGHT, evidence
    dark = np.median(below_runs) > np.median(above_runs)
    return (DARK if dark else BRIGHT), evidence


def _median_mm(runs: list[int], step_mm: float) -> float | None:
    return round(float(np.median(runs)) * float(step_mm), 1) if runs else None


def invert(
    t1: NDArray, near: NDArray[np.bool_], percentile: float, floor: float
) -> NDArray[np.float32]:
    """A dark-marrow T1 turned bright: ``ref**2 / t1`` with ``ref`` its marrow level.

    ``ref`` is the ``100 - percentile`` percentile of ``t1`` over ``near`` (the region
    where bodies lie), so the inverted marrow sits at the ``percentile`` of the inverted
    image, as bright marrow does on a spin-echo T1, and relative thresholds carry over.
    Voxels darker than ``floor`` times ``ref`` (air, noise) become 0.

    Examples
    --------
    >>> t1 = np.array([[[100.0], [400.0], [10.0]]])
    >>> invert(t1, t1 > 50, 50.0, 0.3).ravel().astype(int).tolist()
    [625, 156, 0]
    """
    ref = float(np.percentile(t1[near], 100.0 - percentile)) if near.any() else 1.0
    ref = max(ref, 1e-6)
    safe = np.maximum(t1, np.float32(1e-6))
    return np.where(t1 > floor * ref, ref * ref / safe, 0.0).astype(np.float32)
