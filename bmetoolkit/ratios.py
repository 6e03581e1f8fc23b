"""Each image as a ratio to the subject's normal marrow, and the images decisions are made on.

Shared by every anatomy (vertebral bodies, or any bone given as a marrow mask): the marrow is
split into regions (bodies or bones), the normal-marrow reference is estimated from marrow
that is itself normal (:func:`bmetoolkit.reference.normal_marrow_reference`, one factor per
region on top of a smooth field), and the decision images are the ratios smoothed within the
marrow, with levels set by the scan's own normal-marrow SD (:mod:`bmetoolkit.decision`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.decision import (
    DecisionLevels,
    SmoothingWeights,
    decision_levels,
    normal_sd,
    smooth_within,
    smoothed_among,
)
from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.params import Parameters
from bmetoolkit.reference import MarrowReference, n4_corrected, normal_marrow_reference
from bmetoolkit.resample import values_at
from bmetoolkit.segment import Regions, boxed_regions, focal_spots, hysteresis
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume, box_to_grid_index

__all__ = [
    "NOISY_LOG_SPREAD",
    "coarse_seed_mask",
    "decision_images",
    "drop_focal_spots",
    "extent_seed_mask",
    "marrow_ratios",
    "ratios_at",
    "regions_summary",
    "shell_like",
    "spread_notes",
    "t1_dark_edema",
    "t1_dark_ml",
]

#: The T1 criterion reported when there is no T1.
NO_T1_CRITERION = "not applied (no T1)"
#: Normal marrow whose log signal spreads more than this (robust SD) around its reference
#: is too noisy or heterogeneous for reliable voxel decisions (the phantoms: 0.06-0.10).
NOISY_LOG_SPREAD = 0.3


def marrow_ratios(
    study: Study,
    marrow: NDArray[np.bool_],
    regions: NDArray[np.integer],
    names: Mapping[int, str],
    params: Parameters,
    user_normal: NDArray[np.bool_] | None = None,
    *,
    hint: str = "check that the marrow masks lie on the bones of this scan",
    box: tuple[slice, ...] | None = None,
    region_mm: float = 0.0,
) -> tuple[dict[str, NDArray[np.float32]], MarrowReference, NDArray[np.bool_]]:
    """Ratio images to normal marrow, the reference behind them and its normal voxels.

    Parameters
    ----------
    study : Study
        The images on one grid.
    marrow : ndarray of bool
        The marrow analysed.
    regions : ndarray of int
        Region number per voxel (a body or a bone: 1..n, 0 outside); each region gets its
        own factor on top of the field.
    names : mapping of int to str
        Region number -> name (the keys of the per-region factors).
    params : Parameters
        The reference's settings.
    user_normal : ndarray of bool, optional
        A reader's normal-marrow region; it may lie outside ``marrow``.
    hint : str
        What to check when no reference can be estimated.
    box : tuple of slice, optional
        The box of the study grid that ``marrow``, ``regions``, ``user_normal`` and the
        returned images cover (the whole grid by default). Each voxel's position and image
        value are those of its place on the study grid (integer offsets), so the numbers
        are the whole grid's to the last bit.
    region_mm : float
        The reference at a region's scale (``reference_region_mm``; 0: voxel by voxel
        only): its first fields fitted on the marrow averaged over this width (mm), and
        normal marrow normal so averaged too, within ``reference_region_z`` SDs (see
        :func:`bmetoolkit.reference.normal_marrow_reference`).

    Returns
    -------
    ratios : dict of str to ndarray
        Per image present (``"t1"``, ``"t2"``, ``"stir"``): the ratio to normal marrow,
        NaN outside the marrow and the user's region.
    reference : MarrowReference
    normal : ndarray of bool
        The voxels judged normal.
    """
    region = marrow if user_normal is None else marrow | user_normal
    index = np.flatnonzero(region)
    on_study = _on_study_grid(index, box, study)
    xyz = voxel_positions(study.grid.affine, on_study, study.grid.shape)
    region_of = np.asarray(regions).ravel()[index].astype(np.int32)
    images = {"t1": study.t1, "t2": study.t2, "stir": study.stir}
    values = {}
    for name, volume in images.items():
        if volume is None:
            continue
        values[name] = _image_at(volume, on_study, study.grid.spacing, marrow, params)
    try:
        reference = normal_marrow_reference(
            values,
            xyz,
            region_of,
            dict(names),
            degree=params.reference_degree if user_normal is None else params.reference_mask_degree,
            inlier_z=params.reference_inlier_z,
            per_body=params.reference_per_body,
            max_body_offset=params.max_body_offset,
            min_normal_fraction=params.min_normal_fraction,
            normal_mask=None if user_normal is None else user_normal.ravel()[index],
            region_mean=_region_mean(marrow, index, study.grid.spacing, region_mm),
            region_z=params.reference_region_z,
        )
    except ValueError as exc:
        raise BmetoolkitError(
            f"cannot estimate normal marrow: {exc}", path=study.base.source, hint=hint
        ) from None
    normal = np.zeros(region.size, bool)
    normal[index] = reference.normal
    ratios = {}
    for name, residual in reference.log_residual.items():
        ratio = np.full(region.size, np.nan, np.float32)
        ratio[index] = np.exp(residual)
        ratios[name] = ratio.reshape(region.shape)
    return ratios, reference, normal.reshape(region.shape)


def _region_mean(
    marrow: NDArray[np.bool_],
    index: NDArray[np.intp],
    spacing: NDArray[np.float64],
    width: float,
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]] | None:
    """Per marrow voxel (at flat ``index``): values -> their box average over ``width``
    mm within the marrow (None when ``width`` is 0)."""
    if width <= 0:
        return None
    weights = SmoothingWeights()

    def mean(values: NDArray[np.float64]) -> NDArray[np.float64]:
        image = np.full(marrow.size, np.nan, np.float32)
        image[index] = values
        smoothed = smooth_within(
            image.reshape(marrow.shape), spacing, width, weights=weights, within=marrow
        )
        return smoothed.ravel()[index].astype(np.float64)

    return mean


def voxel_positions(
    affine: NDArray[np.floating], index: NDArray[np.integer], shape: tuple[int, int, int]
) -> NDArray[np.float64]:
    """RAS positions (N x 3, mm) of the voxels at flat ``index`` of a grid of ``shape``:
    ``Grid.voxel_to_world`` of their indices, value for value, without the N x 3 index
    array. Each coordinate is the same sum of the same products, ``(i * a[r, 0] + j * a[r,
    1]) + k * a[r, 2] + a[r, 3]``: its first sum is looked up in a table of every (i, j)
    of the grid, its third product in one of every k (a tenth of the time of the products
    at every voxel).

    >>> from bmetoolkit.volume import Grid
    >>> grid = Grid((4, 5, 6), np.array([[0.9, 0.1, 0, -3], [0, 1.1, 0.2, 5], [0, 0, 3, 1],
    ...                                  [0, 0, 0, 1]]))
    >>> index = np.array([0, 7, 119])
    >>> ijk = np.stack(np.unravel_index(index, grid.shape), axis=1)
    >>> bool(np.array_equal(voxel_positions(grid.affine, index, grid.shape),
    ...                     grid.voxel_to_world(ijk)))
    True
    """
    affine = np.asarray(affine, np.float64)
    in_plane, k = np.divmod(np.asarray(index, np.int64), shape[2])  # in_plane = i * n_j + j
    xyz = np.empty((len(in_plane), 3), np.float64)
    for row in range(3):
        along = [np.arange(n, dtype=np.float64) * affine[row, axis] for axis, n in enumerate(shape)]
        first = (along[0][:, None] + along[1][None, :]).ravel()
        column = first[in_plane]
        column += along[2][k]
        column += affine[row, 3]
        xyz[:, row] = column
    return xyz


def ratios_at(
    study: Study,
    reference: MarrowReference,
    voxels: NDArray[np.bool_],
    regions: NDArray[np.integer],
    names: Mapping[int, str],
    params: Parameters,
    *,
    marrow: NDArray[np.bool_],
    box: tuple[slice, ...] | None = None,
) -> dict[str, NDArray[np.float32]]:
    """Ratio images to a fitted reference at ``voxels`` (NaN elsewhere), e.g. outside the
    ``marrow`` it was fitted on: each image over its field and its region's factor.

    ``marrow`` must be the mask :func:`marrow_ratios` was given: with
    ``reference_bias_correction`` the images are corrected with the same N4 field. ``box``
    as in :func:`marrow_ratios`.
    """
    index = np.flatnonzero(voxels)
    on_study = _on_study_grid(index, box, study)
    xyz = voxel_positions(study.grid.affine, on_study, study.grid.shape)
    region_of = np.asarray(regions).ravel()[index]
    images = {"t1": study.t1, "t2": study.t2, "stir": study.stir}
    ratios = {}
    for name, field in reference.fields.items():
        values = _image_at(images[name], on_study, study.grid.spacing, marrow, params)
        factors = np.ones(max(names, default=0) + 1)  # regions are numbered as in names
        for number, region in names.items():
            factors[number] = reference.body_factors.get(region, {}).get(name, 1.0)
        expected = np.exp(field.log_at(xyz)) * factors[region_of]
        ratio = np.full(voxels.size, np.nan, np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[index] = values / expected
        ratios[name] = ratio.reshape(voxels.shape)
    return ratios


def _smoothed_with_sd(
    ratio: NDArray[np.float32],
    marrow: NDArray[np.bool_],
    normal: NDArray[np.bool_],
    spacing: NDArray[np.float64],
    width_mm: float,
    weights: SmoothingWeights | None = None,
) -> tuple[NDArray[np.float32], float]:
    """The ratio smoothed within the marrow, and the SD of normal marrow smoothed among its
    own voxels (lesion edges do not widen it), at one width."""
    smoothed = smooth_within(ratio, spacing, width_mm, weights=weights, within=marrow)
    alone = smoothed_among(ratio, normal, spacing, width_mm, weights=weights)
    return smoothed, normal_sd(alone)


def decision_images(
    ratios: Mapping[str, NDArray[np.float32]],
    normal: NDArray[np.bool_],
    marrow: NDArray[np.bool_],
    spacing: NDArray[np.float64],
    fluid: str,
    params: Parameters,
) -> tuple[dict[str, NDArray[np.float32]], DecisionLevels]:
    """Ratios smoothed within the marrow, and the scan's levels from its normal marrow's SD.

    The SD is that of the normal voxels smoothed among themselves (lesion edges do not
    widen it).
    """
    decisions, sd = {}, {}
    weights = SmoothingWeights()  # the T1 and the fluid ratio share the marrow's weights
    for name, ratio in ratios.items():
        decisions[name], sd[name] = _smoothed_with_sd(
            ratio, marrow, normal, spacing, params.decision_smoothing_mm, weights
        )
    levels = decision_levels(sd, fluid=fluid, params=params)
    if "t1" not in ratios:
        levels = replace(levels, t1_criterion=NO_T1_CRITERION)
    return decisions, levels


def shell_like(
    ratios: Mapping[str, NDArray[np.float32]], fluid: str, params: Parameters
) -> NDArray[np.bool_]:
    """Voxels that look like cortex: darker than ``shell_ratio`` of normal marrow on the T1
    and on the fluid image (on the fluid image alone without a T1)."""
    brighter = ratios[fluid] if "t1" not in ratios else np.fmax(ratios["t1"], ratios[fluid])
    with np.errstate(invalid="ignore"):
        return brighter < params.shell_ratio


def t1_dark_edema(
    bme: NDArray[np.bool_], decisions: Mapping[str, NDArray[np.float32]], levels: DecisionLevels
) -> NDArray[np.bool_]:
    """The edema that is also dark on T1 (none without a T1)."""
    if "t1" not in decisions:
        return np.zeros(bme.shape, bool)
    with np.errstate(invalid="ignore"):
        return bme & (decisions["t1"] <= levels.t1_dark[0])


def spread_notes(reference: MarrowReference) -> tuple[dict[str, float], list[str]]:
    """The spread of normal marrow per sequence (log robust SD) and notes on noisy ones."""
    spreads = {name: round(field.spread, 3) for name, field in reference.fields.items()}
    notes = [
        f"normal marrow on {name.upper()} varies by about {100 * np.expm1(spread):.0f} % "
        "around its reference (noise or heterogeneous marrow): expect spurious small findings"
        for name, spread in spreads.items()
        if spread > NOISY_LOG_SPREAD
    ]
    return spreads, notes


def coarse_seed_mask(
    ratio: NDArray[np.float32],
    normal: NDArray[np.bool_],
    marrow: NDArray[np.bool_],
    spacing: NDArray[np.float64],
    *,
    width_mm: float,
    z: float,
    floor: float,
) -> tuple[NDArray[np.bool_], float]:
    """Voxels bright at a coarser scale: the ratio averaged over ``width_mm`` within the
    marrow, at ``z`` SDs of normal marrow averaged the same way (and at least ``floor``).

    Averaging over more voxels shrinks the noise, not a lesion larger than the box, so a
    faint but large lesion reaches the seed level at this scale though no single voxel of
    the finer decision image does. Returns the mask and its level (1.0 when disabled).
    """
    if width_mm <= 0:
        return np.zeros(marrow.shape, bool), 1.0
    coarse, sd = _smoothed_with_sd(ratio, marrow, normal, spacing, width_mm)
    level = max(float(np.exp(z * sd)), floor)
    with np.errstate(invalid="ignore"):
        return coarse >= level, level


def extent_seed_mask(
    decision: NDArray[np.floating],
    where: NDArray[np.bool_],
    started: NDArray[np.bool_],
    *,
    grow: float,
    factor: float,
    min_voxels: int,
) -> tuple[NDArray[np.bool_], int]:
    """Regions at the grow level too large for the scan's own mottle, that hold no seed.

    Normal marrow varies about its reference both ways (mottle, noise), and a patch of it
    above the grow level is as likely and as large as one below the mirrored level
    (``1 / grow``, the same distance on the log scale); edema only brightens the fluid
    image. So the largest region of ``where`` at or below the mirrored level is the size a
    bright region reaches by chance in this scan. A bright region (at or above ``grow``)
    more than ``factor`` times that size, and at least ``factor`` times ``min_voxels``, is a
    lesion however faint, and starts there when nothing in it (``started``) did yet: a
    large faint edema in mottled marrow, every voxel of which lies under the seed levels.
    Regions already seeded are left to the stages after (the whole of such a region as a
    seed would make its faint margin a lesion of its own). Face-connected regions. Returns
    the seeds and the size (voxels) a region had to exceed (0 when disabled).

    >>> decision = np.ones((1, 1, 12))
    >>> decision[0, 0, :2] = 0.8  # a dark patch of two voxels: the scan's chance size
    >>> decision[0, 0, 3:9] = 1.25  # a faint bright region of six
    >>> where = np.ones(decision.shape, bool)
    >>> none = np.zeros(decision.shape, bool)
    >>> seeds, size = extent_seed_mask(decision, where, none, grow=1.2, factor=2, min_voxels=1)
    >>> seeds[0, 0].astype(int).tolist(), size
    ([0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0], 4)
    >>> bool(extent_seed_mask(decision, where, none, grow=1.2, factor=3, min_voxels=1)[0].any())
    False
    """
    if factor <= 0:
        return np.zeros(where.shape, bool), 0
    with np.errstate(invalid="ignore"):
        bright = where & (decision >= grow)
        dark = where & (decision <= 1.0 / grow)
    _, dark_labels, dark_count = boxed_regions(dark)
    chance = int(np.bincount(dark_labels.ravel())[1:].max()) if dark_count else 0
    size = int(factor * max(chance, min_voxels))
    box, labels, count = boxed_regions(bright)
    if not count:
        return np.zeros(where.shape, bool), size
    large = np.bincount(labels.ravel(), minlength=count + 1) > size
    large[np.unique(labels[started[box]])] = False
    large[0] = False
    out = np.zeros(where.shape, bool)
    out[box] = large[labels]
    return out, size


def drop_focal_spots(
    bme: NDArray[np.bool_],
    fluid_decision: NDArray[np.floating],
    spacing: NDArray[np.floating],
    voxel_mm3: float,
    params: Parameters,
    *,
    sd: float,
    keep: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], dict[str, float | int], list[str]]:
    """The edema without its focal spots (:func:`bmetoolkit.segment.focal_spots`, ``sd``
    the scan's normal-marrow spread on the fluid image), what was left out (for
    ``checks.focal_spots``) and a note when anything was. Spots touching ``keep`` stay."""
    spots = focal_spots(bme, fluid_decision, spacing, params, sd)
    if keep is not None:
        spots &= ~hysteresis(spots, keep)
    summary = regions_summary(spots, voxel_mm3)
    count, volume_ml = summary["count"], summary["volume_ml"]
    notes = []
    if count:
        notes.append(
            f"{count} focal spot(s) of mildly fluid-bright marrow ({volume_ml:.2f} mL), round "
            f"and at most {params.focal_max_mm:g} mm across, are not counted as edema "
            "(islands of red marrow look like this); set focal_max_ratio to 0 to count them"
        )
    return bme & ~spots, summary, notes


def regions_summary(
    mask: NDArray[np.bool_], voxel_mm3: float, *, within: Regions | None = None
) -> dict[str, float | int]:
    """Number of regions and volume (mL) of ``mask`` (what a rule left out, for ``checks``).

    ``within``: regions of which ``mask`` is a union of whole ones (counted, not labelled).

    >>> regions_summary(np.array([[[1, 0, 1]]], bool), 500.0)
    {'count': 2, 'volume_ml': 1.0}
    """
    if within is not None:
        count = int(np.count_nonzero(within.holding(mask)))
    else:
        count = boxed_regions(mask)[2] if mask.any() else 0
    return {
        "count": int(count),
        "volume_ml": round(float(np.count_nonzero(mask)) * voxel_mm3 / MM3_PER_ML, 4),
    }


def t1_dark_ml(t1_dark: NDArray[np.bool_], voxel_mm3: float, *, has_t1: bool) -> float | None:
    """The volume (mL) of the edema also dark on T1; None without a T1 (not measured)."""
    if not has_t1:
        return None
    return round(float(np.count_nonzero(t1_dark)) * voxel_mm3 / MM3_PER_ML, 4)


def _on_study_grid(
    index: NDArray[np.intp], box: tuple[slice, ...] | None, study: Study
) -> NDArray[np.intp]:
    """Flat indices on the study grid of the voxels at flat ``index`` of ``box``."""
    if box is None:
        return index
    return box_to_grid_index(index, box, study.grid.shape)


def _image_at(
    volume: Volume,
    index: NDArray[np.integer],
    spacing: NDArray[np.float64],
    marrow: NDArray[np.bool_],
    params: Parameters,
) -> NDArray[np.float32]:
    """An image's values (float32) at flat ``index``, N4-corrected on ``marrow`` with
    ``reference_bias_correction``; otherwise read there alone (a resampled image is not
    resampled elsewhere)."""
    if params.reference_bias_correction:
        if marrow.shape != volume.shape:
            raise ValueError("reference_bias_correction corrects the whole grid: give no box")
        data = n4_corrected(np.asarray(volume.data, np.float32), spacing, marrow)
        return data.ravel()[index]
    return np.asarray(values_at(volume, index), np.float32)
