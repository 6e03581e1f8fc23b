"""Where a lesion in a bone ends: at half its own contrast, measured on the bone's own signal.

:func:`bmetoolkit.segment.half_maximum` places each region's edge at half its contrast
above normal marrow, the contrast being its peak (95th percentile). In a bone the region may
reach into the partial-volume band (:func:`~bmetoolkit.bones.geometry.partial_volume_band`:
the outermost thick slice, a surface along the slices), where joint fluid mixed into the
marrow is 3-5 x normal marrow: a lesion of 1.8 x joined there to such a rim takes the rim's
peak, its half maximum rises above the lesion itself, and the lesion is cut away while the
rim stays. So here the peak is measured on the region's voxels outside the band (the signal
that is the bone's own); the band's voxels still count where they reach that edge.

And a band voxel is part of a lesion only within an image voxel's reach of the lesion's
voxels outside the band (:func:`band_near_own`): its signal mixes the images' voxels up to
that far, so beyond it nothing of the lesion is in its signal, and its brightness is joint
fluid or muscle mixed in. Without this, the band (the outermost thick slice, as wide as the
bone) grows a lesion or a red-marrow island into a sheet along the bone's surface: larger,
brighter and wider than the lesion it was grown from.

A cyst's margin (:func:`bmetoolkit.bones.analysis.fluid_like`: the marrow within an image
voxel of a fluid-bright cyst, left out so that the cyst's blurred edge is not taken for
edema) holds the edema around the cyst as well, when there is some: subchondral cysts sit
in bone marrow lesions. The lesions found beside the margin grow into it through its voxels
within their own range (:func:`edema_beside_cysts`): from their edge (edema mixed with
normal marrow falls below it) to nearer their peak than the fluid level (a voxel mixing the
lesion and the cyst is edema while its signal is more the lesion's than the fluid's: free
fluid is 5-20 x normal marrow, edema 1.3-2.3 x). The voxels touching the cyst's
fluid-bright core are not in the margin: they stay with the cyst.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, special

from bmetoolkit.segment import PEAK_PERCENTILE, Regions, half_maximum, region_edges, region_peaks
from bmetoolkit.volume import grown_box, occupied_box

#: The percentile of a lesion's ratios (outside the band, within the first half-maximum
#: cut) read as its contrast by :func:`half_maximum_of_core`: the median, the plateau's
#: level where the noise scatters about it.
CORE_PERCENTILE = 50.0
#: The normal quantile of the peak's percentile (about 1.645 for the 95th): how many noise
#: SDs the noise lifts a plateau's peak above the plateau.
PEAK_Z = float(special.ndtri(PEAK_PERCENTILE / 100))

__all__ = [
    "CORE_PERCENTILE",
    "PEAK_Z",
    "band_near_own",
    "edema_beside_cysts",
    "fainter_joined",
    "half_maximum_of_core",
    "half_maximum_outside",
    "within_reach",
]


def half_maximum_outside(
    mask: NDArray[np.bool_],
    ratio: NDArray[np.floating],
    fraction: float,
    band: NDArray[np.bool_],
    *,
    regions: Regions | None = None,
) -> NDArray[np.bool_]:
    """Each region of ``mask`` cut at ``fraction`` of its contrast outside ``band``
    (``regions``: the mask's own, when labelled before).

    The edge is ``1 + fraction * (peak - 1)``, ``peak`` the 95th percentile of the region's
    ratios outside ``band`` (of all its ratios when it lies wholly in the band).

    >>> mask = np.ones((1, 1, 7), bool)
    >>> ratio = np.array([[[1.3, 1.8, 1.8, 1.8, 1.6, 4.0, 4.0]]])
    >>> band = np.array([[[0, 0, 0, 0, 0, 1, 1]]], bool)  # joint fluid mixed in at the edge
    >>> half_maximum_outside(mask, ratio, 0.5, band).astype(int).tolist()
    [[[0, 1, 1, 1, 1, 1, 1]]]
    """
    return half_maximum(mask, ratio, fraction, peak_outside=band, regions=regions)


def half_maximum_of_core(
    mask: NDArray[np.bool_],
    ratio: NDArray[np.floating],
    fraction: float,
    band: NDArray[np.bool_],
    spacing: NDArray[np.floating],
    *,
    reach_mm: float,
    noise_sd: float,
    regions: Regions | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Each region of ``mask`` cut at ``fraction`` of the contrast of the lesion it holds:
    the first pass's cut and the final one.

    Two passes. The first is :func:`half_maximum_outside`: the edge at ``fraction`` of the
    region's peak, its 95th percentile. That edge separates the lesion from the mottle
    joined to it at the grow level, but on a noisy plateau the 95th percentile lies above
    the plateau (by about 1.6 noise SDs), and the edge above the lesion's own half maximum.
    The second reads the lesion's contrast on what the first kept, as its median outside
    ``band`` (the plateau, where the noise scatters about the level rather than above it),
    never below the peak lowered by the share the noise explains (``peak * exp(-z *
    noise_sd)``, ``z`` the 95th percentile's: a median lower than that is not the plateau
    but fainter content the first pass holds with it, a ramp, mottle or a fainter lesion),
    and moves the edge down to ``fraction`` of that: the voxels of the region at least that
    bright, connected to what the first pass kept and within ``reach_mm`` of it (a bound on
    how far the edge moves), outside ``band``: there the signal mixes in what lies beside
    the bone (joint fluid, cartilage), a voxel at half the lesion's contrast may be half
    fluid, and the first edge holds. The second edge never lies above the first.
    ``reach_mm`` or ``noise_sd`` 0: the first pass alone (both masks the same). The first
    pass's cut is what :func:`fainter_joined` measures its distances from.

    ``noise_sd``: the scan's robust SD of normal marrow's log ratio on the decision image
    (noise and mottle, :class:`bmetoolkit.decision.DecisionLevels`).

    A plateau of 2.0 with two noise spikes: the 95th percentile (2.55) puts the first edge
    at 1.77, above the plateau's half maximum (1.5); the second reaches it within 1 mm:

    >>> ratio = np.array([[[1.2, 1.3, 1.5, 1.7, 2.0, 2.6, 2.0, 2.5, 2.0, 1.7, 1.5, 1.3]]])
    >>> mask, band, one = ratio >= 1.2, np.zeros(ratio.shape, bool), np.ones(3)
    >>> first, cut = half_maximum_of_core(mask, ratio, 0.5, band, one, reach_mm=1,
    ...                                   noise_sd=0.15)
    >>> first.astype(int).tolist(), cut.astype(int).tolist()
    ([[[0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0]]], [[[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0]]])
    >>> half_maximum_of_core(mask, ratio, 0.5, band, one, reach_mm=9,
    ...                      noise_sd=0.15)[1].astype(int).tolist()
    [[[0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]]]

    On a scan with less noise the spikes are not noise: the edge moves less.

    >>> half_maximum_of_core(mask, ratio, 0.5, band, one, reach_mm=9,
    ...                      noise_sd=0.05)[1].astype(int).tolist()
    [[[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0]]]
    """
    regions = Regions.of(mask) if regions is None else regions
    out = half_maximum_outside(mask, ratio, fraction, band, regions=regions)
    if fraction <= 0 or reach_mm <= 0 or noise_sd <= 0 or not out.any():
        return out, out.copy()
    box, labels, n = regions.box, regions.labels, regions.count
    values, exclude, first = ratio[box], band[box], out[box]
    peak = region_peaks(labels, n, values, exclude)
    edge = 1 + fraction * (peak - 1)  # the first pass's edges
    core = region_edges(
        np.where(first, labels, 0), n, values, fraction, exclude, percentile=CORE_PERCENTILE
    )
    lowest = 1 + fraction * (peak * np.exp(-PEAK_Z * noise_sd) - 1)
    second = np.minimum(np.maximum(core, lowest), edge)
    with np.errstate(invalid="ignore"):
        lower = (labels > 0) & ~exclude & (values >= second[labels])
    near = ndimage.distance_transform_edt(~first, sampling=np.asarray(spacing, float)) <= reach_mm
    cut = np.zeros(mask.shape, bool)
    cut[box] = ndimage.binary_propagation(first, mask=first | (lower & near))
    return out, cut


def within_reach(mask: NDArray[np.bool_], reach: NDArray[np.integer]) -> NDArray[np.bool_]:
    """The voxels within ``reach`` (voxels, per axis) of a voxel of ``mask`` (a box about
    ``mask`` filtered; all False for an empty mask).

    >>> within_reach(np.array([[[0, 0, 1, 0, 0, 0]]], bool), np.array([0, 0, 1])).astype(int)
    array([[[0, 1, 1, 1, 0, 0]]])
    """
    near = np.zeros(mask.shape, bool)
    if mask.any():
        reach = np.asarray(reach, int)
        box = grown_box(occupied_box(mask), reach, mask.shape)
        near[box] = ndimage.maximum_filter(mask[box], size=tuple(2 * reach + 1))
    return near


def band_near_own(
    mask: NDArray[np.bool_],
    band: NDArray[np.bool_],
    reach: NDArray[np.integer],
    elsewhere: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """``mask`` without its ``band`` voxels farther than ``reach`` (voxels, per axis) from
    every voxel of their region outside ``band``.

    ``reach``: how far (study voxels) an image's voxel mixes the signal, per axis (the
    interpolation's reach, as for :func:`~bmetoolkit.bones.geometry.partial_volume_band`).
    A region wholly in the band is left whole (it is no lesion's extension: a
    partial-volume piece, :func:`~bmetoolkit.bones.spots.partial_volume_pieces`).

    ``elsewhere``: voxels that count as the lesion's own voxels outside the band although
    they lie in this scan's band (the other visit's edema outside *its* band, brought onto
    this grid: :mod:`bmetoolkit.followup.joint_bones`): band voxels of ``mask`` near them
    are kept as well (nothing outside ``mask`` is added), and a region holding some of them
    is judged as a lesion's extension, not left whole.

    >>> mask = np.array([[[1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1]]], bool)
    >>> band = np.array([[[0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1]]], bool)
    >>> band_near_own(mask, band, np.array([0, 0, 1])).astype(int).tolist()
    [[[1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1]]]

    The other visit saw the lesion outside its band at the fourth voxel:

    >>> elsewhere = np.array([[[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]]], bool)
    >>> band_near_own(mask, band, np.array([0, 0, 1]), elsewhere).astype(int).tolist()
    [[[1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1]]]
    """
    banded = mask & band
    if not banded.any():
        return mask
    own = mask & ~band
    anchors = own if elsewhere is None else own | np.asarray(elsewhere, bool)
    near = within_reach(anchors, reach)
    if not (banded & ~near).any():
        return mask
    regions = Regions.of(mask)
    wholly_in_band = regions.mask(~regions.holding(anchors))
    return own | (banded & near) | wholly_in_band


def edema_beside_cysts(
    bme: NDArray[np.bool_],
    margin: NDArray[np.bool_],
    ratio: NDArray[np.floating],
    fraction: float,
    reach: NDArray[np.integer],
    fluid_level: float,
) -> NDArray[np.bool_]:
    """The voxels of a cyst's ``margin`` that are edema of the regions of ``bme`` beside it.

    The regions within ``reach`` (voxels, per axis: how far the margin reaches from the
    cyst) of the margin grow into it through its voxels whose ``ratio`` lies within their
    range: at least their lowest edge (``1 + fraction * (peak - 1)``, ``peak`` a region's
    95th percentile of ``ratio``, as :func:`bmetoolkit.segment.half_maximum` cuts it) and
    nearer their highest peak than ``fluid_level`` (the ratio from which marrow is fluid, a
    cyst's core): a voxel that mixes edema and the cyst's fluid is edema while its signal is
    more the edema's than the fluid's.

    >>> bme = np.array([[[1, 1, 1, 0, 0, 0, 0, 0, 0, 0]]], bool)
    >>> margin = np.array([[[0, 0, 0, 1, 1, 1, 0, 0, 1, 1]]], bool)  # cyst at 6-7
    >>> ratio = np.array([[[1.8, 1.8, 1.8, 1.7, 2.6, 3.5, 6.0, 6.0, 1.7, 1.0]]])
    >>> reach = np.array([0, 0, 1])
    >>> edema_beside_cysts(bme, margin, ratio, 0.5, reach, 4.0).astype(int).tolist()
    [[[0, 0, 0, 1, 1, 0, 0, 0, 0, 0]]]
    """
    out = np.zeros(bme.shape, bool)
    if not (bme.any() and margin.any()):
        return out
    regions = Regions.of(bme)
    reach = np.asarray(reach, int)
    box = grown_box(occupied_box(margin), reach, bme.shape)
    labels = np.zeros(bme.shape, np.int32)
    labels[regions.box] = regions.labels
    beside = np.unique(ndimage.grey_dilation(labels[box], size=tuple(2 * reach + 1))[margin[box]])
    beside = beside[beside > 0]
    if not beside.size:
        return out
    peaks = region_peaks(regions.labels, regions.count, ratio[regions.box])[beside]
    low, high = 1 + fraction * (peaks.min() - 1), 0.5 * (peaks.max() + fluid_level)
    with np.errstate(invalid="ignore"):
        inside = margin[box] & (ratio[box] >= low) & (ratio[box] <= high)
    grown = ndimage.binary_propagation(bme[box], mask=inside | bme[box])
    out[box] = grown & inside
    return out


def fainter_joined(
    grown: NDArray[np.bool_],
    cut: NDArray[np.bool_],
    ratio: NDArray[np.floating],
    seeds: NDArray[np.bool_],
    spacing: NDArray[np.floating],
    *,
    reach_mm: float,
    fraction: float,
    min_seed_mm3: float = 0.0,
    band: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """The fainter lesions that half their brighter neighbour's contrast cut away.

    ``grown`` holds the regions before their edges and ``cut`` the same after
    :func:`half_maximum_outside`. A grow-level region may join two lesions: a bright edema
    and a fainter bruise or edema beside it. Its edge, at half the bright one's peak, lies
    above the fainter lesion, which is cut away whole though it would be a lesion of its
    own were it not touching. So a part cut away that holds seeds of its own (``seeds``, at
    least ``min_seed_mm3`` of them: a lesion's worth, not a speck of mottle) farther than
    ``reach_mm`` from what was kept (the coarse seed's averaging width: a seed nearer may
    be lifted by the bright lesion's own signal) is returned: the voxels of the
    cut-away part within ``reach_mm`` of its voxels that far out, cut at half their own
    contrast (peak outside ``band``). The ring of the bright lesion's margin elsewhere,
    nearer than ``reach_mm`` all round, is not. The caller judges each part as it would a
    region of its own (size, red marrow) before joining it to ``cut``.

    >>> ratio = np.array([[[1.0, 1.9, 2.0, 1.9, 1.35, 1.3, 1.35, 1.3, 1.3, 1.0]]])
    >>> grown = ratio > 1.2
    >>> cut = half_maximum_outside(grown, ratio, 0.5, np.zeros(ratio.shape, bool))
    >>> cut.astype(int).tolist()
    [[[0, 1, 1, 1, 0, 0, 0, 0, 0, 0]]]
    >>> parts = fainter_joined(grown, cut, ratio, ratio >= 1.3, np.array([1.0, 1.0, 1.0]),
    ...                        reach_mm=2.0, fraction=0.5)
    >>> parts.astype(int).tolist()
    [[[0, 0, 0, 0, 1, 1, 1, 1, 1, 0]]]
    >>> fainter_joined(grown, cut, ratio, ratio >= 1.3, np.array([1.0, 1.0, 1.0]),
    ...                reach_mm=2.0, fraction=0.5, min_seed_mm3=4.0).any()  # 3 mm³ far out
    np.False_
    """
    out = np.zeros(cut.shape, bool)
    spacing = np.asarray(spacing, float)
    least = max(min_seed_mm3, np.finfo(float).tiny) / np.prod(spacing)  # voxels
    rest = grown & ~cut
    if reach_mm <= 0 or np.count_nonzero(rest & seeds) < least:
        return out
    parts = Regions.of(rest)
    # the parts holding seeds, and what was kept within reach of them
    pad = np.ceil(reach_mm / spacing).astype(int) + 1
    box = grown_box(occupied_box(parts.mask(parts.holding(seeds))), pad, cut.shape)
    if not cut[box].any():
        return out
    far = np.zeros(cut.shape, bool)
    far[box] = ndimage.distance_transform_edt(~cut[box], sampling=spacing) > reach_mm
    counts = np.bincount(parts.labels[(seeds & far)[parts.box]], minlength=parts.count + 1)
    own = parts.mask(counts >= least)[box]  # entry 0 (outside the parts) ignored
    far = far[box]
    core = own & far
    if not core.any():
        return out
    near = ndimage.distance_transform_edt(~core, sampling=spacing) <= reach_mm
    exclude = None if band is None else band[box]
    out[box] = half_maximum(own & near, ratio[box], fraction, peak_outside=exclude)
    return out
