"""Fluid-bright regions of a bone that are not edema: partial-volume pieces and faint spots.

Two rules, each with its reason:

1. **Partial volume at the bone's edge.** Where an image's voxels reach outside the bone
   (:func:`~bmetoolkit.bones.geometry.partial_volume_band`: the outermost thick slice of a
   bone, a surface running along the slices), the marrow's signal mixes in joint fluid,
   muscle or fat and looks like edema (bright on the fluid image, dark on the T1). A lesion
   may not *start* there (:func:`bmetoolkit.segment.segment_bme`), but the half-maximum cut
   can leave a piece of a region in the band with little or nothing outside it. The evidence
   for a lesion must come from voxels whose signal is the bone's own: each region keeps
   only if its part outside the band, grown from a seed (the fluid seed level or a coarse
   seed), is a lesion by itself (at least ``min_lesion_mm3``); what lies in the band counts
   as that lesion's extension (:func:`partial_volume_pieces`).
2. **Red marrow, not based on the subchondral bone.** Edema of the joints that readers
   score is subchondral: osteoarthritic bone marrow lesions, bone bruises and sacroiliitis
   are based on the subchondral bone under the articular surface and fade away from it.
   Islands of red marrow lie in the metaphyses and, in the pelvis, anywhere in the sacrum
   and the ilium, juxta-articular ones included (a known mimic of sacroiliitis: an island
   in the middle of the ilium abuts the subchondral bone with its edge); they are only
   mildly fluid-bright and up to a few centimetres across, round or flame-shaped. So in
   bones with a joint, a *faint* region (its median fluid ratio below
   ``focal_max_ratio``: the typical voxel of a red-marrow island is at most that bright,
   and the median, unlike the region's peak, is not raised by the scan's noise and
   mottle) at most :data:`SPOT_SIZE_FACTOR` times ``focal_max_mm`` along each axis, less
   than :data:`SUBCHONDRAL_SHARE` of which lies within ``subchondral_mm`` of an articular
   surface, nor within ``spot_base_fraction`` of its own extent (a large faint dome
   seated on the surface has most of its volume there, an island touching the surface
   with its edge does not), is not edema, whatever its shape. A brighter or larger
   region stays, and so does a faint one based on the subchondral bone. Without a joint in
   the mask (a single bone) the spine's rule applies: round faint spots up to
   ``focal_max_mm`` (:func:`bmetoolkit.segment.focal_spots`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.params import Parameters
from bmetoolkit.segment import Regions, focal_spots, hysteresis, regions_where, remove_small

__all__ = [
    "SPOT_SIZE_FACTOR",
    "SUBCHONDRAL_SHARE",
    "bone_focal_spots",
    "partial_volume_pieces",
]

#: In bones with a joint, a faint region not based on the subchondral bone is red marrow up to
#: this many times ``focal_max_mm`` along each axis (red marrow patches reach 2-3 cm).
SPOT_SIZE_FACTOR = 2.0
#: A faint region is based on the subchondral bone (edema) when at least this share of it
#: lies within ``subchondral_mm`` of an articular surface: most of it.
SUBCHONDRAL_SHARE = 0.5


def partial_volume_pieces(
    bme: NDArray[np.bool_],
    seeds: NDArray[np.bool_],
    band: NDArray[np.bool_],
    *,
    voxel_mm3: float,
    min_mm3: float,
    regions: Regions | None = None,
    elsewhere: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """The regions of ``bme`` whose part outside ``band``, grown from ``seeds``, is smaller
    than ``min_mm3`` (mm³) (``regions``: those of ``bme``, when labelled before), and that
    hold none of ``elsewhere`` (voxels counted as a lesion's own outside the band: the other
    visit's edema outside its band, :mod:`bmetoolkit.followup.joint_bones`).

    >>> bme = np.array([[[1, 1, 1, 0, 1, 1, 1]]], bool)
    >>> seeds = np.array([[[1, 0, 0, 0, 1, 0, 0]]], bool)
    >>> band = np.array([[[0, 0, 1, 0, 0, 1, 1]]], bool)  # 2 voxels out of it, then 1
    >>> partial_volume_pieces(bme, seeds, band, voxel_mm3=1.0, min_mm3=2.0).astype(int)
    array([[[0, 0, 0, 0, 1, 1, 1]]])
    >>> elsewhere = np.array([[[0, 0, 0, 0, 0, 1, 0]]], bool)  # the other visit's lesion
    >>> partial_volume_pieces(bme, seeds, band, voxel_mm3=1.0, min_mm3=2.0,
    ...                       elsewhere=elsewhere).astype(int)
    array([[[0, 0, 0, 0, 0, 0, 0]]])
    """
    core = remove_small(hysteresis(bme & ~band, seeds), voxel_mm3=voxel_mm3, min_mm3=min_mm3)
    if elsewhere is not None:
        core = core | (np.asarray(elsewhere, bool) & bme)
    if regions is None:
        return bme & ~hysteresis(bme, core)
    return regions.mask(~regions.holding(core))


def bone_focal_spots(
    bme: NDArray[np.bool_],
    fluid_decision: NDArray[np.floating],
    spacing: NDArray[np.floating],
    params: Parameters,
    *,
    sd: float,
    articular_mm: NDArray[np.floating],
    regions: Regions | None = None,
) -> NDArray[np.bool_]:
    """The faint regions of ``bme`` that are not edema in bones (the module's rule 2).

    Parameters
    ----------
    bme : ndarray of bool
        The edema found.
    fluid_decision : ndarray
        The fluid decision image.
    spacing : ndarray
        Voxel size (mm).
    params : Parameters
        ``focal_max_mm``, ``focal_max_ratio`` and ``subchondral_mm``.
    sd : float
        The scan's normal-marrow spread on the fluid image (robust SD of the log ratio;
        used by the single-bone rule).
    articular_mm : ndarray
        Distance of each bone voxel from its bone's articular surface (NaN without one).
    regions : Regions, optional
        The regions of ``bme``, when labelled before.

    Examples
    --------
    >>> from bmetoolkit.params import Parameters
    >>> bme = np.zeros((40, 1, 1), bool)
    >>> ratio = np.full((40, 1, 1), 1.4, np.float32)
    >>> bme[1:4], bme[5:8], bme[20:36] = True, True, True  # 6, 6 and 32 mm x 10 x 10 mm
    >>> bme[9:14] = True  # 10 mm, 2 of its 5 voxels within 5 mm of the joint (at 8 mm)
    >>> articular = np.arange(40, dtype=np.float32).reshape(40, 1, 1) * 2.0
    >>> articular[9:14] = [[[4.0]], [[5.0]], [[6.0]], [[7.0]], [[8.0]]]
    >>> spots = bone_focal_spots(bme, ratio, np.array([2.0, 10.0, 10.0]), Parameters(),
    ...                          sd=0.0, articular_mm=articular)
    >>> # subchondral: edema; 10-14 mm from the joint: a spot; its edge near the joint: a
    >>> # spot; 32 mm long: too large
    >>> [bool(spots[box].all()) for box in (slice(1, 4), slice(5, 8), slice(9, 14))]
    [False, True, True]
    >>> bool(spots[20:36].any())
    False
    """
    joints = np.isfinite(articular_mm)
    if not joints.any() or params.focal_max_ratio <= 0:
        return focal_spots(bme, fluid_decision, spacing, params, sd)
    largest = SPOT_SIZE_FACTOR * params.focal_max_mm
    size = np.asarray(spacing, float)

    def red_marrow(box: tuple[slice, ...], inside: NDArray[np.bool_]) -> bool:
        extent = float((np.asarray(inside.shape) * size).max())  # its longest side (mm)
        if extent > largest:
            return False
        values = fluid_decision[box][inside]
        values = values[np.isfinite(values)]
        if not values.size or np.median(values) >= params.focal_max_ratio:
            return False
        reach = max(params.subchondral_mm, params.spot_base_fraction * extent)
        with np.errstate(invalid="ignore"):
            subchondral = articular_mm[box][inside] <= reach
        return bool(np.mean(subchondral) < SUBCHONDRAL_SHARE)

    return regions_where(bme, red_marrow, regions=regions)
