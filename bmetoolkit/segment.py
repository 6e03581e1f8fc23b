"""Bone marrow edema: marrow that is bright on STIR (or T2) and, by default, not fat on T1.

Inputs are **decision images**: ratios to the subject's normal marrow (see
:mod:`bmetoolkit.reference`), smoothed within the marrow and NaN outside it (see
:mod:`bmetoolkit.decision`), with the scan's own :class:`~bmetoolkit.decision.DecisionLevels`.
STIR decides "fluid-bright" when the study has one (fat-suppressed images separate edema from
fat far better than plain T2), T2 otherwise. The T1 plays the role its criterion says:

- ``"required"``: the voxel is T1-dark as well (the classical definition; the default with
  a plain T2, on which fat is bright too);
- ``"supporting"``: the voxel is not T1-bright, and a region whose median T1 ratio is above
  ``edema_t1_max_ratio`` (fat, a haemangioma) is dropped; the T1-dark part is reported
  apart (the default with a STIR: readers outline much edema that is not T1-dark);
- ``"ignored"``: fluid-bright alone.

The mask is cleaned by **hysteresis**: the grow levels define candidate regions, and a region
is kept only when it holds a voxel past the seed levels too. Each region's edge is then
placed at its **half maximum** (``lesion_edge_fraction`` of its own contrast above normal,
where partial volume puts a lesion's boundary), or at the grow level when that is higher, so
that a strong lesion's faint margin does not inflate its volume. Regions smaller than
``min_lesion_mm3`` (physical volume, not voxels) are dropped. Lesions are the 3D connected
components (face neighbours) of the mask, never joined across two vertebral bodies.

Examples
--------
>>> import numpy as np
>>> from bmetoolkit.decision import decision_levels
>>> from bmetoolkit.params import Parameters
>>> levels = decision_levels({"t1": 0.05, "stir": 0.1}, fluid="stir", params=Parameters())
>>> t1 = np.ones((20, 20, 5), np.float32)
>>> stir = np.ones((20, 20, 5), np.float32)
>>> t1[5:12, 5:12, 1:4], stir[5:12, 5:12, 1:4] = 0.9, 2.0  # a 147 mm³ edema
>>> t1[15, 15, 2], stir[15, 15, 2] = 0.5, 3.0  # one noisy voxel
>>> mask = segment_bme(t1, stir, levels=levels, voxel_mm3=1.0, params=Parameters())
>>> int(mask.sum())
147
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.decision import DecisionLevels
from bmetoolkit.params import Parameters
from bmetoolkit.volume import grown_box, occupied_box

__all__ = [
    "FACE_NEIGHBOURS",
    "Regions",
    "boxed_regions",
    "focal_spots",
    "grow_into_layer",
    "grow_into_walls",
    "grow_masks",
    "grow_regions",
    "half_maximum",
    "hysteresis",
    "keep_regions",
    "label_lesions",
    "region_edges",
    "region_medians",
    "region_peaks",
    "regions_where",
    "remove_small",
    "segment_bme",
    "segment_bme_regions",
    "sized_regions",
]

#: Connectivity of lesions: voxels sharing a face.
FACE_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)


def boxed_regions(mask: NDArray[np.bool_]) -> tuple[tuple[slice, ...], NDArray[np.int32], int]:
    """Connected regions (face neighbours) of ``mask``, labelled within its occupied box.

    Returns the box, the labels of ``mask[box]`` and their number (labelling only the box
    is much faster than the whole grid: marrow fills a small part of it).

    >>> box, labels, n = boxed_regions(np.array([[[0, 1, 0, 1]]], bool))
    >>> box[2], labels.tolist(), n
    (slice(1, 4, None), [[[1, 0, 2]]], 2)
    """
    box = occupied_box(mask)
    labels, n = ndimage.label(mask[box], structure=FACE_NEIGHBOURS)
    return box, labels, n


@dataclass(frozen=True)
class Regions:
    """The connected regions of a mask as :func:`boxed_regions` labels them: the mask's
    occupied ``box``, the ``labels`` of its voxels there (1..``count``) and their number.

    Kept by a stage that labelled a mask so that the next stage, given the same mask, does
    not label it again (labelling a large mask is the costly part of most region rules).

    >>> regions = Regions.of(np.array([[[1, 0, 1, 1, 0, 1]]], bool))
    >>> regions.count, regions.labels.tolist()
    (3, [[[1, 0, 2, 2, 0, 3]]])
    >>> mask, kept = regions.where(np.array([False, True, False, True]))
    >>> mask.astype(int).tolist(), kept.box[2], kept.labels.tolist()
    ([[[1, 0, 0, 0, 0, 1]]], slice(0, 6, None), [[[1, 0, 0, 0, 0, 2]]])
    """

    shape: tuple[int, ...]
    box: tuple[slice, ...]
    labels: NDArray[np.int32]
    count: int

    @classmethod
    def of(cls, mask: NDArray[np.bool_]) -> Regions:
        """The regions of ``mask`` (face neighbours)."""
        box, labels, count = boxed_regions(mask)
        return cls(mask.shape, box, labels, count)

    def where(self, keep: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], Regions]:
        """The mask of the regions whose number ``keep`` marks (entry 0 ignored), and their
        :class:`Regions`: numbered as labelling that mask numbers them (in the order of
        their first voxel, as here; the box shrinks to theirs)."""
        keep = np.asarray(keep, bool).copy()
        keep[0] = False
        out = self.mask(keep)
        kept = out[self.box]
        numbers = np.cumsum(keep, dtype=np.int32)
        numbers[~keep] = 0
        inner = occupied_box(kept)
        box = tuple(
            slice(o.start + b.start, o.start + b.stop) for o, b in zip(self.box, inner, strict=True)
        )
        count = int(np.count_nonzero(keep))
        return out, Regions(self.shape, box, numbers[self.labels[inner]], count)

    def mask(self, keep: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """The mask of the regions whose number ``keep`` marks (entry 0 ignored)."""
        keep = np.asarray(keep, bool).copy()
        keep[0] = False
        out = np.zeros(self.shape, bool)
        out[self.box] = keep[self.labels]
        return out

    def holding(self, voxels: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Per region number (0..count): whether it holds one of ``voxels`` (whole grid)."""
        held = np.zeros(self.count + 1, bool)
        held[np.unique(self.labels[voxels[self.box]])] = True
        held[0] = False
        return held


def hysteresis(weak: NDArray[np.bool_], strong: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The connected regions of ``weak`` that contain at least one ``strong`` voxel.

    >>> weak = np.array([[[1, 1, 0, 1, 1]]], bool)
    >>> strong = np.array([[[0, 1, 0, 0, 0]]], bool)
    >>> hysteresis(weak, strong).astype(int).tolist()
    [[[1, 1, 0, 0, 0]]]
    """
    out = np.zeros(weak.shape, bool)
    box, labels, n = boxed_regions(weak)
    if n == 0:
        return out
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[strong[box] & weak[box]])] = True
    keep[0] = False
    out[box] = keep[labels]
    return out


def remove_small(mask: NDArray[np.bool_], *, voxel_mm3: float, min_mm3: float) -> NDArray[np.bool_]:
    """``mask`` without its connected regions smaller than ``min_mm3`` (mm³)."""
    out = np.zeros(mask.shape, bool)
    box, labels, n = boxed_regions(mask)
    if n == 0:
        return out
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * voxel_mm3
    keep = sizes >= min_mm3
    keep[0] = False
    out[box] = keep[labels]
    return out


def segment_bme(
    t1_ratio: NDArray[np.floating] | None,
    fluid_ratio: NDArray[np.floating],
    *,
    levels: DecisionLevels,
    voxel_mm3: float,
    params: Parameters,
    seedable: NDArray[np.bool_] | None = None,
    coarse_seeds: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """Bone marrow edema mask from T1 and fluid-sensitive decision images.

    Parameters
    ----------
    t1_ratio : ndarray or None
        T1 decision image (NaN outside the marrow); None when there is no T1 (the T1
        criterion is then ignored).
    fluid_ratio : ndarray
        STIR or T2 decision image (NaN is never edema).
    levels : DecisionLevels
        The scan's grow and seed levels and the T1 criterion.
    voxel_mm3 : float
        Volume of one voxel (mm³).
    params : Parameters
        ``min_lesion_mm3`` and ``edema_t1_max_ratio``.
    seedable : ndarray of bool, optional
        Where a lesion may start (seed); it may grow beyond. By default everywhere. Voxels
        whose signal mixes in what lies outside the bone are kept from seeding.
    coarse_seeds : ndarray of bool, optional
        More seeds, found at a coarser scale (a faint but large lesion stands out of the
        noise once averaged over more voxels; see :func:`coarse_seed_mask`).

    Returns
    -------
    ndarray of bool
    """
    return segment_bme_regions(
        t1_ratio, fluid_ratio, levels=levels, voxel_mm3=voxel_mm3, params=params,
        seedable=seedable, coarse_seeds=coarse_seeds,
    )[0]  # fmt: skip


def segment_bme_regions(
    t1_ratio: NDArray[np.floating] | None,
    fluid_ratio: NDArray[np.floating],
    *,
    levels: DecisionLevels,
    voxel_mm3: float,
    params: Parameters,
    seedable: NDArray[np.bool_] | None = None,
    coarse_seeds: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], Regions]:
    """:func:`segment_bme`'s mask and its :class:`Regions` (for the stages after it)."""
    regions = grow_regions(
        t1_ratio, fluid_ratio, levels=levels, seedable=seedable, extra_seeds=coarse_seeds
    )
    mask = half_maximum(regions, fluid_ratio, params.lesion_edge_fraction)
    supporting = t1_ratio is not None and levels.t1_criterion == "supporting"
    return sized_regions(
        mask, voxel_mm3=voxel_mm3, min_mm3=params.min_lesion_mm3,
        values=t1_ratio if supporting else None,
        accept=lambda median: median <= params.edema_t1_max_ratio,
    )  # fmt: skip


def sized_regions(
    mask: NDArray[np.bool_],
    *,
    voxel_mm3: float,
    min_mm3: float,
    values: NDArray[np.floating] | None = None,
    accept: Callable[[float], bool] | None = None,
) -> tuple[NDArray[np.bool_], Regions]:
    """``remove_small`` and then, with ``values``, ``keep_regions(..., values, accept)``
    (the median), labelling ``mask`` once; the mask kept and its :class:`Regions`.

    >>> mask = np.array([[[1, 1, 0, 1, 0, 1, 1]]], bool)
    >>> values = np.array([[[1.0, 1.0, 0, 1.0, 0, 2.0, 2.0]]])
    >>> kept, regions = sized_regions(mask, voxel_mm3=1.0, min_mm3=2.0, values=values,
    ...                               accept=lambda median: median < 1.5)
    >>> kept.astype(int).tolist(), regions.count
    ([[[1, 1, 0, 0, 0, 0, 0]]], 1)
    """
    regions = Regions.of(mask)
    if regions.count == 0:
        return np.zeros(mask.shape, bool), regions
    sizes = np.bincount(regions.labels.ravel(), minlength=regions.count + 1) * voxel_mm3
    keep = sizes >= min_mm3
    if values is not None and accept is not None:
        keep = _median_accepted(regions, values, accept, keep)
    return regions.where(keep)


def grow_regions(
    t1_ratio: NDArray[np.floating] | None,
    fluid_ratio: NDArray[np.floating],
    *,
    levels: DecisionLevels,
    seedable: NDArray[np.bool_] | None = None,
    extra_seeds: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """The grow-level regions of :func:`segment_bme` that hold a seed, before their edges.

    Fluid-bright at the grow level (and, per the T1 criterion, T1-dark or not T1-bright)
    regions holding a voxel past the seed levels, or one of ``extra_seeds`` at the grow
    level (coarse seeds; a lesion of another visit); seeds only where ``seedable``. With
    the T1 criterion ``supporting``, also a region whose median T1 ratio is at the T1-dark
    seed level (faint edema the T1 shows clearly; a red-marrow island is intermediate on
    T1, and a single dark voxel of mottled marrow starts nothing).
    """
    weak, strong = grow_masks(
        t1_ratio, fluid_ratio, levels=levels, seedable=seedable, extra_seeds=extra_seeds
    )
    if t1_ratio is None or levels.t1_criterion != "supporting":
        return hysteresis(weak, strong)
    regions = Regions.of(weak)  # labelled once for both criteria
    if regions.count == 0:
        return np.zeros(weak.shape, bool)
    keep = regions.holding(strong)  # holds a seed
    # a region without a fluid seed whose T1 is dark as a whole (its median at the T1
    # seed level): two criteria passed at once are evidence enough for a lesion
    medians = region_medians(regions.labels, t1_ratio[regions.box], regions.count)
    with np.errstate(invalid="ignore"):
        keep |= medians <= levels.t1_dark[1]
    return regions.mask(keep)


def grow_masks(
    t1_ratio: NDArray[np.floating] | None,
    fluid_ratio: NDArray[np.floating],
    *,
    levels: DecisionLevels,
    seedable: NDArray[np.bool_] | None = None,
    extra_seeds: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Where edema may grow and where it may start (the hysteresis masks of
    :func:`grow_regions`): fluid-bright at the grow level and, per the T1 criterion, T1-dark
    or not T1-bright; and past the seed levels (or one of ``extra_seeds`` at the grow
    level), only where ``seedable``."""
    with np.errstate(invalid="ignore"):
        weak = fluid_ratio >= levels.fluid_bright[0]
        strong = fluid_ratio >= levels.fluid_bright[1]
        if extra_seeds is not None:
            strong |= extra_seeds & weak
        if seedable is not None:
            strong &= seedable
        if t1_ratio is not None and levels.t1_criterion == "required":
            strong &= t1_ratio <= levels.t1_dark[1]
    allowed = _t1_lets_grow(t1_ratio, levels)
    if allowed is not None:
        weak &= allowed
    return weak, strong


def _t1_lets_grow(
    t1_ratio: NDArray[np.floating] | None, levels: DecisionLevels
) -> NDArray[np.bool_] | None:
    """Where the T1 criterion lets edema grow: T1-dark (grow level) when it is required, not
    T1-bright when it supports; None when it does not apply (ignored, or no T1)."""
    if t1_ratio is None or levels.t1_criterion not in ("required", "supporting"):
        return None
    with np.errstate(invalid="ignore"):
        if levels.t1_criterion == "required":
            return t1_ratio <= levels.t1_dark[0]
        return t1_ratio < levels.t1_bright[0]


#: Percentile of a region's ratios taken as its peak (robust to single noisy voxels).
PEAK_PERCENTILE = 95.0


#: A round region's shortest extent is at least this fraction of its longest; a band along
#: an endplate or an articular surface is flatter.
ROUND = 0.5
#: z of the 95th percentile of a normal distribution: a region's peak (its 95th percentile)
#: sits this many SDs of the scan's normal-marrow spread above its core.
PEAK_Z = 1.645


def focal_spots(
    mask: NDArray[np.bool_],
    fluid_ratio: NDArray[np.floating],
    spacing: NDArray[np.floating],
    params: Parameters,
    sd: float = 0.0,
) -> NDArray[np.bool_]:
    """The regions of ``mask`` that are focal spots, not edema: round and faint.

    A region is a focal spot when it is round (its extent along each grid axis, voxels
    times their size, at most ``params.focal_max_mm`` and at least half its longest: a
    band along an endplate or an articular surface is flatter) and its peak fluid ratio
    (95th percentile of the decision image) is below ``params.focal_max_ratio`` times the
    scan's own spread at that percentile (``exp(1.645 * sd)``, ``sd`` the robust SD of
    the smoothed log ratio of normal marrow): a red-marrow island is round, up to about
    1.5 cm, and at most mildly bright, and on a mottled or noisy scan its peak is brighter
    by as much as normal marrow's. ``focal_max_ratio`` 0 finds none.

    >>> mask = np.zeros((12, 12, 3), bool)
    >>> ratio = np.ones((12, 12, 3), np.float32)
    >>> mask[1:4, 1:4, :], ratio[1:4, 1:4, :] = True, 1.4  # 9 x 9 x 9 mm, faint
    >>> mask[6:9, 6:9, :], ratio[6:9, 6:9, :] = True, 2.5  # as small, but bright
    >>> mask[1:5, 10, :], ratio[1:5, 10, :] = True, 1.4  # faint, but 12 x 3 x 9 mm: flat
    >>> spots = focal_spots(mask, ratio, np.full(3, 3.0), Parameters())
    >>> int(spots.sum()), bool(spots[2, 2, 1]), bool(spots[7, 7, 1]), bool(spots[5, 10, 1])
    (27, True, False, False)
    """
    if params.focal_max_ratio <= 0 or not mask.any():
        return np.zeros(mask.shape, bool)
    size = np.asarray(spacing, float)
    level = params.focal_max_ratio * float(np.exp(PEAK_Z * sd))

    def is_spot(box: tuple[slice, ...], inside: NDArray[np.bool_]) -> bool:
        extent = np.asarray(inside.shape) * size
        if extent.max() > params.focal_max_mm or extent.min() < ROUND * extent.max():
            return False
        values = fluid_ratio[box][inside]
        values = values[np.isfinite(values)]
        return bool(values.size) and np.percentile(values, PEAK_PERCENTILE) < level

    return regions_where(mask, is_spot)


def half_maximum(
    mask: NDArray[np.bool_],
    ratio: NDArray[np.floating],
    fraction: float,
    *,
    peak_outside: NDArray[np.bool_] | None = None,
    regions: Regions | None = None,
) -> NDArray[np.bool_]:
    """Each region of ``mask`` cut at ``fraction`` of its own contrast above normal.

    A region's edge is where its ratio falls to ``1 + fraction * (peak - 1)``, ``peak``
    being its 95th percentile: with 0.5, the full width at half maximum, wherever the
    scan's noise put the grow level. A faint lesion keeps what passed the grow level; a
    strong one with an ill-defined margin is not inflated by the faint tail of its margin.
    With ``peak_outside``, the peak is measured on the region's voxels outside it (all of
    them when the region lies wholly inside), e.g. outside a bone's partial-volume band
    (:mod:`bmetoolkit.bones.edges`); those voxels still count where they reach the edge.
    ``regions`` are the mask's own (:class:`Regions`), when a stage before labelled it.

    >>> mask = np.ones((1, 1, 6), bool)
    >>> ratio = np.array([[[1.3, 2.0, 4.0, 4.0, 2.6, 1.5]]])
    >>> half_maximum(mask, ratio, 0.5).astype(int).tolist()
    [[[0, 0, 1, 1, 1, 0]]]
    """
    if fraction <= 0:
        return mask
    out = np.zeros(mask.shape, bool)
    regions = Regions.of(mask) if regions is None else regions
    outer, labels, n = regions.box, regions.labels, regions.count
    if n == 0:
        return out
    ratio = ratio[outer]
    exclude = None if peak_outside is None else peak_outside[outer]
    edge = region_edges(labels, n, ratio, fraction, exclude)
    with np.errstate(invalid="ignore"):
        out[outer] = (labels > 0) & (ratio >= edge[labels])
    return out


def region_peaks(
    labels: NDArray[np.integer],
    n: int,
    ratio: NDArray[np.floating],
    exclude: NDArray[np.bool_] | None = None,
    *,
    percentile: float = PEAK_PERCENTILE,
) -> NDArray[np.float64]:
    """Per region number (0..n): its peak, the ``percentile`` (95th) of ``ratio`` outside
    ``exclude`` (over the whole region when it lies wholly there); NaN for region 0 and
    numbers without a voxel or a finite value.

    >>> labels = np.array([[[1, 1, 0, 2]]])
    >>> region_peaks(labels, 2, np.array([[[1.5, 2.0, 1.0, np.nan]]])).round(3).tolist()
    [nan, 1.975, nan]
    """
    peaks = np.full(n + 1, np.nan)
    for number, box in enumerate(ndimage.find_objects(labels, max_label=n), start=1):
        if box is None:
            continue
        inside = labels[box] == number
        if exclude is not None:
            own = inside & ~exclude[box]
            inside = own if own.any() else inside
        values = ratio[box][inside]
        values = values[np.isfinite(values)]
        if values.size:
            peaks[number] = np.percentile(values, percentile)
    return peaks


def region_edges(
    labels: NDArray[np.int32],
    n: int,
    ratio: NDArray[np.floating],
    fraction: float,
    exclude: NDArray[np.bool_] | None = None,
    *,
    percentile: float = PEAK_PERCENTILE,
) -> NDArray[np.float64]:
    """Per region number (0..n): ``1 + fraction * (peak - 1)``, ``peak`` its
    :func:`region_peaks` (inf for region 0 and numbers without a voxel or a finite value)."""
    edge = 1 + fraction * (region_peaks(labels, n, ratio, exclude, percentile=percentile) - 1)
    return np.where(np.isnan(edge), np.inf, edge)


def grow_into_layer(
    mask: NDArray[np.bool_],
    fluid_ratio: NDArray[np.floating],
    layer_ratio: NDArray[np.floating],
    layer: NDArray[np.bool_],
    *,
    fraction: float,
    grow_level: float,
) -> NDArray[np.bool_]:
    """``mask`` with each region continued one voxel into the bone's outer ``layer``.

    The outermost voxel layer of a bone straddles its surface and is left out of the marrow
    (its signal mixes in cortex and what lies beside the bone), but edema reaching the wall
    fills part of it: on 4 mm sagittal slices the side slice of a vertebral body holds a
    sizeable part of a lesion that touches the lateral wall. A ``layer`` voxel that shares a
    face with a region joins it when its own ratio (``layer_ratio``, unsmoothed: decision
    images are smoothed within the marrow only) reaches the region's edge, ``1 + fraction *
    (peak - 1)`` (see :func:`half_maximum`; ``peak`` from ``fluid_ratio``; the lowest edge
    when it touches two regions), and ``grow_level``. Partial volume with darker cortex or
    tissue only lowers the ratio, so only voxels that are mostly lesion join.

    >>> mask = np.zeros((1, 1, 6), bool); mask[0, 0, 1:4] = True
    >>> ratio = np.array([[[np.nan, 2.0, 3.0, 3.0, np.nan, np.nan]]])
    >>> layer = np.zeros((1, 1, 6), bool); layer[0, 0, 4:] = True
    >>> layer_ratio = np.array([[[np.nan] * 4 + [2.5, 2.5]]])
    >>> grow_into_layer(mask, ratio, layer_ratio, layer, fraction=0.5,
    ...                 grow_level=1.2).astype(int).tolist()
    [[[0, 1, 1, 1, 1, 0]]]
    """
    if not mask.any() or not layer.any():
        return mask
    box = grown_box(occupied_box(mask), 1, mask.shape)
    labels, n = ndimage.label(mask[box], structure=FACE_NEIGHBOURS)
    edge = np.maximum(region_edges(labels, n, fluid_ratio[box], fraction), grow_level)
    edge[0] = np.inf
    # the lowest edge among each voxel's face neighbours' regions
    padded = np.pad(edge[labels], 1, constant_values=np.inf)
    lowest = np.full(labels.shape, np.inf)
    inner = [slice(1, -1)] * labels.ndim
    for axis in range(labels.ndim):
        for step in (-1, 1):
            view = list(inner)
            view[axis] = slice(1 + step, padded.shape[axis] - 1 + step)
            np.minimum(lowest, padded[tuple(view)], out=lowest)
    with np.errstate(invalid="ignore"):
        joins = layer[box] & (layer_ratio[box] >= lowest)
    out = mask.copy()
    out[box] |= joins
    return out


def outshone_from_outside(
    layer: NDArray[np.bool_], inside: NDArray[np.bool_], image: NDArray[np.floating]
) -> NDArray[np.bool_]:
    """``layer`` voxels that a voxel outside the bones (``~inside``) among their 26
    neighbours matches or outshines on ``image``.

    A surface voxel's signal mixes in what lies beside the bone. Where that is darker
    (cortex, muscle, fat on a STIR) a bright surface voxel is bright from within; where it
    is brighter (CSF behind a vertebral body, joint fluid, fat beside the bone on a T2
    without fat suppression) partial volume alone can make it bright, so it is no evidence
    of edema.

    >>> image = np.array([[[1.0, 3.0, 2.0, 2.5, 1.0]]])
    >>> inside = np.array([[[0, 1, 1, 1, 0]]], bool)
    >>> layer = np.array([[[0, 1, 0, 1, 0]]], bool)
    >>> outshone_from_outside(layer, inside, image).astype(int).tolist()
    [[[0, 0, 0, 0, 0]]]
    >>> image[0, 0, 4] = 2.5
    >>> outshone_from_outside(layer, inside, image).astype(int).tolist()
    [[[0, 0, 0, 1, 0]]]
    """
    out = np.zeros(layer.shape, bool)
    if not layer.any():
        return out
    box = grown_box(occupied_box(layer), 1, layer.shape)
    outside = np.where(inside[box], -np.inf, image[box].astype(np.float32))
    brightest_beside = ndimage.maximum_filter(outside, size=3, mode="constant", cval=-np.inf)
    out[box] = layer[box] & (brightest_beside >= image[box])
    return out


def grow_into_walls(
    mask: NDArray[np.bool_],
    fluid_ratio: NDArray[np.floating],
    layer_ratios: Mapping[str, NDArray[np.floating]],
    *,
    levels: DecisionLevels,
    fraction: float,
) -> NDArray[np.bool_]:
    """``mask`` grown into the bones' outer layer (:func:`grow_into_layer`) where the layer
    also passes the T1 criterion: T1-dark when it is required, not T1-bright when it
    supports.

    ``layer_ratios`` holds each image's ratio to normal marrow in the layer (NaN
    elsewhere; the layer is where the fluid image's ratio is finite).
    """
    layer = np.isfinite(layer_ratios[levels.fluid])
    allowed = _t1_lets_grow(layer_ratios.get("t1"), levels)
    if allowed is not None:
        layer &= allowed
    return grow_into_layer(
        mask,
        fluid_ratio,
        layer_ratios[levels.fluid],
        layer,
        fraction=fraction,
        grow_level=levels.fluid_bright[0],
    )


def keep_regions(
    mask: NDArray[np.bool_],
    values: NDArray[np.floating],
    accept: Callable[[float], bool],
    *,
    statistic: Callable[[NDArray], float] = np.median,
) -> NDArray[np.bool_]:
    """``mask`` without the connected regions whose ``statistic`` of ``values`` (the median
    by default) is not accepted.

    >>> mask = np.array([[[1, 1, 0, 1, 1]]], bool)
    >>> values = np.array([[[0.9, 1.0, 1.0, 1.3, 1.4]]])
    >>> keep_regions(mask, values, lambda m: m <= 1.05).astype(int).tolist()
    [[[1, 1, 0, 0, 0]]]
    """

    if statistic is np.median:  # all regions' medians at once
        regions = Regions.of(mask)
        if regions.count == 0:
            return np.zeros(mask.shape, bool)
        every = np.ones(regions.count + 1, bool)
        return regions.mask(_median_accepted(regions, values, accept, every))

    def accepted(box: tuple[slice, ...], inside: NDArray[np.bool_]) -> bool:
        region = values[box][inside]
        region = region[np.isfinite(region)]
        return bool(region.size) and bool(accept(float(statistic(region))))

    return regions_where(mask, accepted)


def _median_accepted(
    regions: Regions,
    values: NDArray[np.floating],
    accept: Callable[[float], bool],
    keep: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """``keep`` (per region number) with each kept region kept only where the median of
    its finite ``values`` exists and ``accept`` takes it."""
    medians = region_medians(regions.labels, np.asarray(values)[regions.box], regions.count)
    for number in np.flatnonzero(keep[1:]) + 1:
        median = float(medians[number])
        keep[number] = not np.isnan(median) and bool(accept(median))
    return keep


def region_medians(
    labels: NDArray[np.integer], values: NDArray[np.floating], n: int
) -> NDArray[np.float64]:
    """The median of ``values`` over each region ``1..n`` of ``labels`` (its finite
    values; NaN for a region without any), as ``np.median`` gives it, by one sort of all
    regions' values together instead of a pass over each region.

    Entry 0 (outside the regions) is NaN. As ``np.median``: the middle value, or the mean
    of the two middle values in the values' own precision.

    >>> labels = np.array([1, 1, 2, 2, 2, 0, 3])
    >>> values = np.array([4.0, 1.0, 3.0, 9.0, 1.0, 7.0, np.nan], np.float32)
    >>> region_medians(labels, values, 3).tolist()
    [nan, 2.5, 3.0, nan]
    """
    numbers = np.asarray(labels).ravel()
    values = np.asarray(values).ravel()
    chosen = numbers > 0
    chosen &= np.isfinite(values)
    numbers, values = numbers[chosen], values[chosen]
    order = np.lexsort((values, numbers))
    numbers, values = numbers[order], values[order]
    counts = np.bincount(numbers, minlength=n + 1)[: n + 1]
    starts = np.cumsum(counts) - counts
    medians = np.full(n + 1, np.nan)
    has = np.flatnonzero(counts)
    has = has[has > 0]
    low = values[starts[has] + (counts[has] - 1) // 2]
    high = values[starts[has] + counts[has] // 2]
    medians[has] = np.where(counts[has] % 2 == 1, low, (low + high) / 2)
    return medians


def regions_where(
    mask: NDArray[np.bool_],
    accept: Callable[[tuple[slice, ...], NDArray[np.bool_]], bool],
    *,
    regions: Regions | None = None,
) -> NDArray[np.bool_]:
    """``mask`` without the connected regions that ``accept(box, inside)`` refuses.

    ``box`` is the region's bounding box on the whole grid and ``inside`` the region's
    voxels within it, so ``array[box][inside]`` gives any array's values over the region.
    ``regions``: the mask's own (:class:`Regions`), when labelled before.

    >>> mask = np.array([[[1, 1, 0, 1]]], bool)
    >>> regions_where(mask, lambda box, inside: inside.sum() > 1).astype(int).tolist()
    [[[1, 1, 0, 0]]]
    """
    out = np.zeros(mask.shape, bool)
    regions = Regions.of(mask) if regions is None else regions
    outer, labels, n = regions.box, regions.labels, regions.count
    if n == 0:
        return out
    keep = np.zeros(n + 1, bool)
    for number, box in enumerate(ndimage.find_objects(labels), start=1):
        grid_box = tuple(
            slice(o.start + b.start, o.start + b.stop) for o, b in zip(outer, box, strict=True)
        )
        keep[number] = accept(grid_box, labels[box] == number)
    out[outer] = keep[labels]
    return out


def label_lesions(
    mask: NDArray[np.bool_], bodies: NDArray[np.integer]
) -> tuple[NDArray[np.int32], int]:
    """Number the connected lesions of ``mask`` (1..n), never across two bodies.

    Lesions are numbered in the order of their first voxel (C order), so the numbering is
    reproducible.

    >>> mask = np.ones((1, 1, 4), bool)
    >>> bodies = np.array([[[1, 1, 2, 2]]])
    >>> label_lesions(mask, bodies)[0].tolist()
    [[[1, 1, 2, 2]]]
    """
    # Only the mask's box holds lesions (C order within it is C order on the grid).
    out = np.zeros(mask.shape, np.int32)
    occupied = occupied_box(mask)
    if any(s.start >= s.stop for s in occupied):
        return out, 0
    mask, bodies = mask[occupied], np.asarray(bodies)[occupied]
    # Voxels of different bodies never share a label: label each body's part on its own.
    labels = np.zeros(mask.shape, np.int32)
    n = 0
    boxes = ndimage.find_objects(np.where(mask, bodies, 0))
    for body_id, box in enumerate(boxes, start=1):
        if box is None:
            continue
        part, count = ndimage.label(mask[box] & (bodies[box] == body_id), FACE_NEIGHBOURS)
        view = labels[box]
        view[part > 0] = part[part > 0] + n
        n += count
    if n == 0:
        return out, 0
    # First voxel of each lesion in C order: the first occurrence among the labelled voxels.
    flat = labels.ravel()
    where = np.flatnonzero(flat)
    _, first_at = np.unique(flat[where], return_index=True)
    first = where[first_at]
    order = np.zeros(n + 1, np.int32)
    order[1:][np.argsort(first)] = np.arange(1, n + 1)
    out[occupied] = order[labels]
    return out, n
