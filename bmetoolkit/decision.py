"""Decision images and decision levels adapted to each scan.

MRI intensities have no unit and every scan has its own noise and marrow texture, so a fixed
ratio such as "STIR at least 2x normal marrow" means something different on every scan. Here
every decision is made on the **ratio images smoothed within the marrow** (a box average of
about ``decision_smoothing_mm``, never mixing in voxels outside the marrow)
at a **level set by the scan's own normal marrow**: ``exp(z * sd)`` above normal (or
``exp(-z * sd)`` below), where ``sd`` is the robust SD of the smoothed log ratio of that
sequence's normal marrow. A noisy or mottled scan gets levels further from normal; a clean
one gets levels closer, but never closer than the minimum contrast ratios of
:class:`~bmetoolkit.params.Parameters` (the floors). Every level is in the report.

Examples
--------
>>> import numpy as np
>>> from bmetoolkit.params import Parameters
>>> levels = decision_levels({"t1": 0.05, "stir": 0.12}, fluid="stir", params=Parameters())
>>> round(levels.fluid_bright[0], 2), round(levels.fluid_bright[1], 2)  # grow, seed
(1.35, 1.62)
>>> round(levels.t1_dark[0], 2), levels.t1_criterion  # the 0.80 ceiling is nearer normal
(0.8, 'supporting')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.params import Parameters
from bmetoolkit.reference import robust_sd
from bmetoolkit.volume import occupied_box

__all__ = [
    "DecisionLevels",
    "SmoothingWeights",
    "decision_levels",
    "normal_sd",
    "smooth_within",
    "smoothed_among",
]


class SmoothingWeights:
    """The weight images of :func:`smooth_within`, kept for reuse across its calls.

    Every call smooths a ratio image and, to normalise it, the mask of its finite voxels;
    ratio images over the same marrow (the T1 and the fluid image) have the same mask, so
    its smoothed weight is computed once. Give one instance to the calls of one analysis
    (it holds a reference to each distinct mask and weight until it is dropped).

    >>> ratio = np.ones((5, 5, 1), np.float32)
    >>> weights = SmoothingWeights()
    >>> a = smooth_within(ratio, np.ones(3), 3.0, weights=weights)
    >>> b = smooth_within(2 * ratio, np.ones(3), 3.0, weights=weights)
    >>> weights.computed, weights.reused
    (1, 1)
    """

    def __init__(self) -> None:
        self._kept: list[tuple[tuple, NDArray[np.bool_], NDArray[np.float32]]] = []
        self.computed = 0
        self.reused = 0

    def weight(
        self,
        inside: NDArray[np.bool_],
        size: list[int],
        box: tuple[slice, ...],
        crops: list[tuple[slice, ...]] | None = None,
    ) -> NDArray[np.float32]:
        """The box average of ``inside`` (the finite voxels of ``box``, in the layout of
        :class:`_Sums`) over ``size``, on ``crops`` (see :func:`_box_average`)."""
        key = (tuple(size), tuple((s.start, s.stop) for s in box), inside.shape)
        for kept_key, kept_inside, weight in self._kept:
            if kept_key == key and np.array_equal(kept_inside, inside):
                self.reused += 1
                return weight
        weight = _box_average(inside.astype(np.float32), size, crops)
        self._kept.append((key, inside, weight))
        self.computed += 1
        return weight


def _box_average(
    values: NDArray[np.float32], size: list[int], crops: list[tuple[slice, ...]] | None = None
) -> NDArray[np.float32]:
    """The box average of ``values`` (zero padded) over ``size``; with ``crops`` (see
    :func:`_slab_crops`), computed on each crop alone and 0 elsewhere."""
    if crops is None:
        return ndimage.uniform_filter(values, size=size, mode="constant")
    out = np.zeros(values.shape, np.float32)
    for crop in crops:
        ndimage.uniform_filter(values[crop], size=size, output=out[crop], mode="constant")
    return out


def _slab_crops(inside: NDArray[np.bool_]) -> list[tuple[slice, ...]]:
    """Each slice across the first axis that holds a voxel of ``inside``, cropped to the
    box of its voxels.

    A box average that does not extend along the first axis reads each slice alone, and
    on a crop holding all of a slice's non-zero values it is the same, value for value,
    as on the whole slice: ``scipy.ndimage.uniform_filter`` adds the float32 values of a
    window in double precision (exactly) and the zeros outside the crop add nothing.

    >>> inside = np.zeros((2, 4, 5), bool)
    >>> inside[0, 1:3, 0] = inside[1, 0, 2:4] = True
    >>> [[(s.start, s.stop) for s in crop] for crop in _slab_crops(inside)]
    [[(0, 1), (1, 3), (0, 1)], [(1, 2), (0, 1), (2, 4)]]
    """
    rows, cols = inside.any(axis=2), inside.any(axis=1)
    crops = []
    for index, (row, col) in enumerate(zip(rows, cols, strict=True)):
        hit_rows, hit_cols = np.flatnonzero(row), np.flatnonzero(col)
        if hit_rows.size:
            crops.append(
                (
                    slice(index, index + 1),
                    slice(int(hit_rows[0]), int(hit_rows[-1]) + 1),
                    slice(int(hit_cols[0]), int(hit_cols[-1]) + 1),
                )
            )
    return crops


def smooth_within(
    ratio: NDArray[np.floating],
    spacing: NDArray[np.floating],
    width_mm: float,
    *,
    weights: SmoothingWeights | None = None,
    within: NDArray[np.bool_] | None = None,
) -> NDArray[np.float32]:
    """Box average of the ratio over about ``width_mm``, within the finite voxels.

    The average is linear, as partial volume mixes signals: a voxel between a fatty and a
    sclerotic region is neither. Voxels outside the marrow (NaN) neither contribute nor
    receive a value (normalised convolution), so the marrow edge is not darkened by the
    cortex. An axis whose voxels are coarser than half of ``width_mm`` is not smoothed.
    ``weights`` reuses the normalising weight of an earlier call over the same voxels (the
    same result, computed once). ``within`` restricts the marrow to these voxels (as if the
    ratio were NaN elsewhere, without that copy).

    >>> ratio = np.full((5, 5, 1), np.nan, np.float32)
    >>> ratio[1:4, 1:4, 0] = 1.0
    >>> ratio[2, 2, 0] = 10.0  # one bright voxel
    >>> out = smooth_within(ratio, np.array([1.0, 1.0, 4.0]), 3.0)
    >>> float(out[2, 2, 0]), float(out[1, 1, 0]), bool(np.isnan(out[0, 0, 0]))
    (2.0, 3.25, True)
    """
    ratio, finite, size = _finite_within(ratio, spacing, width_mm, within)
    if max(size) == 1 or not finite.any():
        return np.where(finite, ratio, np.float32(np.nan))
    sums = _normalised_sums(ratio, finite, size, weights)
    out = np.full(ratio.shape, np.nan, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[sums.box] = sums.in_box(
            np.where(sums.inside, sums.total / sums.weight, np.float32(np.nan))
        )
    return out


def smoothed_among(
    ratio: NDArray[np.floating],
    at: NDArray[np.bool_],
    spacing: NDArray[np.floating],
    width_mm: float,
    *,
    weights: SmoothingWeights | None = None,
) -> NDArray[np.float32]:
    """The values of ``smooth_within(ratio, ..., within=at)[at]`` (the ratio smoothed among
    the voxels of ``at`` alone, at those voxels; NaN where the ratio is not finite and
    positive), in an order of their own and without the whole image: enough for a
    statistic that ignores order, such as :func:`normal_sd` of normal marrow.

    >>> ratio = np.ones((4, 4, 1), np.float32)
    >>> at = np.zeros((4, 4, 1), bool)
    >>> at[:2, :2] = True
    >>> ratio[0, 0], ratio[0, 1] = 7.0, np.nan
    >>> sorted(smoothed_among(ratio, at, np.ones(3), 3.0).tolist())
    [3.0, 3.0, 3.0, nan]
    """
    ratio, finite, size = _finite_within(ratio, spacing, width_mm, at)
    if max(size) == 1 or not finite.any():
        return np.where(finite, ratio, np.float32(np.nan))[at]
    sums = _normalised_sums(ratio, finite, size, weights)
    values = sums.total[sums.inside] / sums.weight[sums.inside]
    missing = np.count_nonzero(at) - values.size  # voxels of ``at`` without a value
    return np.concatenate([values, np.full(missing, np.nan, np.float32)]) if missing else values


def _finite_within(
    ratio: NDArray[np.floating],
    spacing: NDArray[np.floating],
    width_mm: float,
    within: NDArray[np.bool_] | None,
) -> tuple[NDArray[np.float32], NDArray[np.bool_], list[int]]:
    """The ratio as float32, its voxels that take part (finite, positive, ``within``) and
    the box's size in voxels along each axis."""
    ratio = np.asarray(ratio, np.float32)
    size = [2 * int(width_mm / (2 * float(s))) + 1 if width_mm > 0 else 1 for s in spacing]
    finite = np.isfinite(ratio)
    finite &= ratio > 0
    if within is not None:
        finite &= within
    return ratio, finite, size


@dataclass(frozen=True)
class _Sums:
    """The box averages of :func:`_normalised_sums` on the box of the finite voxels.

    ``inside``, ``total`` and ``weight`` are on the box with the axis ``slab`` first (the
    box's own layout when ``slab`` is None): :meth:`in_box` gives an array of that layout
    in the box's.
    """

    box: tuple[slice, ...]
    slab: int | None
    inside: NDArray[np.bool_]
    total: NDArray[np.float32]
    weight: NDArray[np.float32]

    def in_box(self, values: NDArray) -> NDArray:
        """``values`` (this layout) as the box's axes (a view)."""
        return values if self.slab is None else np.moveaxis(values, 0, self.slab)


def _normalised_sums(
    ratio: NDArray[np.float32],
    finite: NDArray[np.bool_],
    size: list[int],
    weights: SmoothingWeights | None,
) -> _Sums:
    """The box average of the ratio over its ``finite`` voxels (0 elsewhere) and of their
    mask, on the box of the finite voxels.

    The box needs no margin: the average pads with zeros and the voxels around the box are
    zeros (not finite), so a margin changes no value inside the box. When the box does not
    extend along an axis (thick slices), the averages are computed slice by slice, each
    slice cropped to its own finite voxels (:func:`_slab_crops`): a bone fills about a
    third of its box but half of its slices' boxes. The slices are made contiguous first
    (the axis moved to the front): a slice of the box's own layout is scattered in memory,
    and would take longer than the whole box.
    """
    box = occupied_box(finite)
    inside = finite[box]
    flat = [axis for axis, n in enumerate(size) if n == 1]
    slab = max(flat, key=lambda axis: inside.shape[axis]) if flat and inside.ndim == 3 else None
    if slab is None:
        values = np.where(inside, ratio[box], np.float32(0.0))
        crops = None
    else:
        inside = np.ascontiguousarray(np.moveaxis(inside, slab, 0))
        size = [size[slab], *(n for axis, n in enumerate(size) if axis != slab)]
        values = np.zeros(inside.shape, np.float32)
        np.copyto(values, np.moveaxis(ratio[box], slab, 0), where=inside)
        crops = _slab_crops(inside)
    total = _box_average(values, size, crops)
    if weights is None:
        weight = _box_average(inside.astype(np.float32), size, crops)
    else:
        weight = weights.weight(inside, size, box, crops)
    return _Sums(box, slab, inside, total, weight)


def normal_sd(smoothed: NDArray[np.floating], normal: NDArray[np.bool_] | None = None) -> float:
    """Robust SD (scaled MAD) of the smoothed log ratio over normal marrow voxels (all of
    ``smoothed`` without ``normal``).

    >>> rng = np.random.default_rng(0)
    >>> ratio = np.exp(rng.normal(0, 0.1, 10000)).astype(np.float32)
    >>> round(normal_sd(ratio, np.ones(10000, bool)), 2)
    0.1
    """
    values = np.asarray(smoothed)
    values = np.log(values if normal is None else values[normal])
    values = values[np.isfinite(values)]
    if values.size < 20:
        return 0.0
    return robust_sd(values)


@dataclass(frozen=True)
class DecisionLevels:
    """Grow and seed levels (ratios to normal marrow) of every decision of one scan.

    Attributes
    ----------
    sd : dict of str to float
        Robust SD of the smoothed log ratio of normal marrow, per sequence.
    fluid : str
        ``"stir"`` or ``"t2"``: the fluid-sensitive image the decisions use.
    t1_criterion : str
        ``"required"``, ``"supporting"`` or ``"ignored"`` (``"auto"`` resolved).
    fluid_bright, fluid_dark, t1_dark, t1_bright : tuple of 2 floats
        (grow, seed) levels: bright means at or above, dark at or below.
    """

    sd: dict[str, float]
    fluid: str
    t1_criterion: str
    fluid_bright: tuple[float, float]
    fluid_dark: tuple[float, float]
    t1_dark: tuple[float, float]
    t1_bright: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """The levels for the report, exact (not rounded: ``compare`` rebuilds the decision
        from them, and a level rounded to 4 decimals moved a voxel across it)."""

        def pair(levels: tuple[float, float]) -> dict[str, float]:
            return {"grow": float(levels[0]), "seed": float(levels[1])}

        return {
            "normal_marrow_sd": {k: float(v) for k, v in self.sd.items()},
            "fluid": self.fluid,
            "t1_criterion": self.t1_criterion,
            "fluid_bright": pair(self.fluid_bright),
            "fluid_dark": pair(self.fluid_dark),
            "t1_dark": pair(self.t1_dark),
            "t1_bright": pair(self.t1_bright),
        }


def decision_levels(sd: dict[str, float], *, fluid: str, params: Parameters) -> DecisionLevels:
    """The decision levels of a scan from its normal-marrow SDs and the parameters.

    Parameters
    ----------
    sd : dict of str to float
        Robust SD of the smoothed log ratio of normal marrow per sequence (``"t1"`` and the
        fluid image; a missing one counts as 0, the floors alone).
    fluid : {'stir', 't2'}
        The fluid-sensitive image.
    params : Parameters
        ``grow_z``, ``seed_z``, ``t1_criterion`` and the minimum contrast ratios.
    """
    z = (params.grow_z, params.seed_z)
    t1_sd, fluid_sd = sd.get("t1", 0.0), sd.get(fluid, 0.0)
    if fluid == "stir":
        bright_floor = (params.stir_hyper_ratio, params.stir_hyper_seed_ratio)
    else:
        bright_floor = (params.t2_hyper_ratio, params.t2_hyper_seed_ratio)

    def above(spread: float, floor: tuple[float, float]) -> tuple[float, float]:
        return tuple(max(float(np.exp(k * spread)), f) for k, f in zip(z, floor, strict=True))

    def below(spread: float, ceiling: tuple[float, float]) -> tuple[float, float]:
        return tuple(min(float(np.exp(-k * spread)), c) for k, c in zip(z, ceiling, strict=True))

    return DecisionLevels(
        sd=dict(sd),
        fluid=fluid,
        t1_criterion=params.t1_role(fluid),
        fluid_bright=above(fluid_sd, bright_floor),
        fluid_dark=below(fluid_sd, (params.fluid_hypo_ratio, params.fluid_hypo_seed_ratio)),
        t1_dark=below(t1_sd, (params.t1_hypo_ratio, params.t1_hypo_seed_ratio)),
        t1_bright=above(t1_sd, (params.t1_hyper_ratio, params.t1_hyper_seed_ratio)),
    )
