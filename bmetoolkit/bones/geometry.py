"""Where each voxel lies in its bone: depth from the bone surface and from the joint.

Subchondral lesions are described by their distance from the **articular surface** (the
part of a bone's surface that faces another bone across a joint), so every bone voxel gets:

- ``surface_mm``: depth below its own bone's surface;
- ``articular_mm``: distance from its bone's articular surface: the surface voxels within
  ``articular_gap_mm`` of another bone of the mask (NaN when no other bone is that close,
  e.g. a single-bone mask);
- ``rim``: the bone's outermost voxel layer along the finer axes (cortex and partial
  volume with what lies outside; never analysed as marrow). Along thick slices the
  outermost slice holds marrow too: it stays, and
  :func:`partial_volume_band` keeps lesions from starting there.

Distances are Euclidean in millimetres on the voxel grid, computed on a grid coarsened to
about :data:`DEPTH_RESOLUTION_MM` in-plane for speed (each depth is within about half that of
the exact one), from the centre of a voxel to the nearest centre of a voxel outside, less
half a voxel of the finest axis: the outermost layer lies at depth 0 to half a voxel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.volume import Grid, grown_box, occupied_box

__all__ = [
    "DEPTH_RESOLUTION_MM",
    "BoneDepths",
    "bone_depths",
    "depth_factor",
    "partial_volume_band",
    "voxel_extent",
]

#: Finest grid (mm) the distances are computed on.
DEPTH_RESOLUTION_MM = 1.5
_FACES = ndimage.generate_binary_structure(3, 1)


def depth_factor(spacing: NDArray[np.floating]) -> NDArray[np.int64]:
    """Voxels per block of the grid the depths are computed on, along each axis.

    >>> depth_factor(np.array([0.4, 0.7, 3.0])).tolist()
    [3, 2, 1]
    """
    spacing = np.asarray(spacing, float)
    return np.maximum(1, np.floor(DEPTH_RESOLUTION_MM / spacing)).astype(int)


@dataclass(frozen=True)
class BoneDepths:
    """Per voxel of the study grid: depth from the surface and the joint; the outer layer.

    NaN outside bone (and ``articular_mm`` NaN in bones without a neighbour).
    """

    surface_mm: NDArray[np.float32]
    articular_mm: NDArray[np.float32]
    rim: NDArray[np.bool_]


def bone_depths(
    labels: NDArray[np.integer], spacing: NDArray[np.floating], *, articular_gap_mm: float
) -> BoneDepths:
    """Depth of every bone voxel below its bone's surface and its articular surface.

    Parameters
    ----------
    labels : ndarray of int
        Bone ids (0 outside bone) on the study grid.
    spacing : ndarray
        Voxel size (mm) along each array axis.
    articular_gap_mm : float
        Surface voxels closer than this to another bone are on the articular surface.

    Examples
    --------
    >>> labels = np.zeros((12, 1, 1), np.uint8)
    >>> labels[1:5], labels[7:11] = 1, 2  # two bones, 2 voxels apart
    >>> depths = bone_depths(labels, np.ones(3), articular_gap_mm=4.0)
    >>> depths.surface_mm[1:5, 0, 0].tolist(), depths.articular_mm[1:5, 0, 0].tolist()
    ([0.5, 1.5, 1.5, 0.5], [3.5, 2.5, 1.5, 0.5])
    """
    labels = np.asarray(labels)
    if labels.dtype == np.bool_:
        labels = labels.astype(np.uint8)
    spacing = np.asarray(spacing, float)
    factor = depth_factor(spacing)
    coarse = labels[tuple(slice(f // 2, None, f) for f in factor)]
    coarse_spacing = spacing * factor
    surface_c = np.full(coarse.shape, np.nan, np.float32)
    articular_c = np.full(coarse.shape, np.nan, np.float32)
    margin = np.ceil(articular_gap_mm / coarse_spacing).astype(int) + 1
    half = 0.5 * float(coarse_spacing.min())
    for number, found in enumerate(ndimage.find_objects(coarse), start=1):
        if found is None:
            continue
        # The bone's box with one voxel around it holds every voxel nearest to one of its
        # own (the layer around it is not the bone, and any voxel further out is further
        # away than the layer); other bones count within the articular gap around it.
        box = grown_box(found, 1, coarse.shape)
        own = coarse[box] == number
        depth = ndimage.distance_transform_edt(own, sampling=coarse_spacing) - half
        surface_c[box][own] = np.maximum(depth[own], 0)
        around = grown_box(found, margin, coarse.shape)
        other = coarse[around] > 0
        other &= coarse[around] != number
        if not other.any():
            continue
        outer = own & ~ndimage.binary_erosion(own, _FACES, border_value=1)
        inner = tuple(
            slice(b.start - a.start, b.stop - a.start) for b, a in zip(box, around, strict=True)
        )
        # Centres of facing surface voxels are one voxel further apart than the surfaces.
        joint = (
            outer & _within(other, articular_gap_mm + coarse_spacing.max(), coarse_spacing)[inner]
        )
        if joint.any():
            # The articular surface lies half a voxel beyond the joint voxels' centres.
            distance = ndimage.distance_transform_edt(~joint, sampling=coarse_spacing) + half
            articular_c[box][own] = distance[own]
    blocks = zip(labels.shape, factor, coarse.shape, strict=True)
    # each fine index's block (None: the axis is not coarsened, every index its own block)
    spread = [None if f == 1 else np.minimum(np.arange(n) // f, c - 1) for n, f, c in blocks]
    inside = labels > 0
    # Fine voxels of bone whose block's centre lies outside it are at the surface.
    surface_c[np.isnan(surface_c)] = 0.0
    surface = np.where(inside, _blocks_to_voxels(surface_c, spread), np.float32(np.nan))
    articular = np.where(inside, _blocks_to_voxels(articular_c, spread), np.float32(np.nan))
    fine_axes = [axis for axis, step in enumerate(spacing) if step <= 2 * spacing.min()]
    rim = _outer_layer(labels, fine_axes)
    return BoneDepths(surface_mm=surface, articular_mm=articular, rim=rim)


def _blocks_to_voxels(
    coarse: NDArray[np.float32], blocks: list[NDArray[np.int64] | None]
) -> NDArray[np.float32]:
    """Each fine voxel gets its block's value (``blocks``: the block of each index, per
    axis; None where each index is its own block); one axis at a time, faster than
    indexing all three at once."""
    out = coarse
    for axis, block in enumerate(blocks):
        if block is not None:
            out = np.take(out, block, axis=axis)
    return out


def _within(
    mask: NDArray[np.bool_], distance_mm: float, spacing: NDArray[np.floating]
) -> NDArray[np.bool_]:
    """Voxels within ``distance_mm`` of a voxel of ``mask`` (centre to centre, Euclidean).

    The distances are computed on the box of ``mask`` widened by that distance only:
    every voxel beyond it is further away along one axis alone.

    >>> mask = np.zeros((9, 1, 1), bool)
    >>> mask[1] = True
    >>> _within(mask, 2.5, np.ones(3))[:, 0, 0].astype(int).tolist()
    [1, 1, 1, 1, 0, 0, 0, 0, 0]
    """
    out = np.zeros(mask.shape, bool)
    occupied = occupied_box(mask)
    if any(s.start >= s.stop for s in occupied):
        return out
    reach = np.floor(distance_mm / np.asarray(spacing, float)).astype(int)
    box = grown_box(occupied, reach, mask.shape)
    out[box] = ndimage.distance_transform_edt(~mask[box], sampling=spacing) <= distance_mm
    return out


def _outer_layer(labels: NDArray[np.integer], axes: Iterable[int]) -> NDArray[np.bool_]:
    """Bone voxels with a neighbour of another label (or outside bone) along ``axes``."""
    rim = np.zeros(labels.shape, bool)
    for axis in axes:
        if labels.shape[axis] < 2:
            continue
        low = [slice(None)] * labels.ndim
        high = [slice(None)] * labels.ndim
        low[axis], high[axis] = slice(None, -1), slice(1, None)
        differs = labels[tuple(low)] != labels[tuple(high)]
        rim[tuple(low)] |= differs
        rim[tuple(high)] |= differs
    return rim & (labels > 0)


def voxel_extent(source: Grid, grid: Grid) -> NDArray[np.float64]:
    """The extent (mm) of one voxel of ``source`` along each axis of ``grid``.

    >>> thick = Grid((4, 4, 4), np.diag([1.0, 1.0, 3.0, 1.0]))
    >>> voxel_extent(thick, Grid((4, 4, 4), np.eye(4))).tolist()
    [1.0, 1.0, 3.0]
    """
    edges = source.direction * source.spacing  # columns: the voxel's edge vectors (world)
    return np.abs(grid.direction.T @ edges).sum(axis=1)


def partial_volume_band(
    bones: NDArray[np.integer] | NDArray[np.bool_],
    grid: Grid,
    source_grids: Iterable[Grid],
    *,
    edge_outside: bool = False,
) -> NDArray[np.bool_]:
    """Bone voxels whose signal on some image mixes in what lies outside their bone.

    An image acquired on its own grid (thick slices, another orientation) and resampled onto
    the study grid (linear interpolation between its voxels) carries, at each study voxel,
    the signal of the image's voxels up to one voxel away. Where these reach outside the
    bone (joint fluid, fat, cartilage), the marrow looks brighter or darker than it is: 10 %
    of joint fluid in a STIR voxel makes normal marrow look like edema. The band is where
    the box of twice any image's voxel (the reach of the interpolation), centred on the
    study voxel, is not all of the voxel's bone: up to a slice thickness deep where the
    surface runs along the slices, about a millimetre where it crosses them. A voxel of
    another bone in the box counts as outside: between two bones lies a joint (cartilage
    and joint fluid), however thin, so where a joint runs along thick slices the slices
    either side of it are mixed with it even when the masks touch. Beyond the edge of the
    study grid the masks say nothing, but an image on another grid, resampled, mixes in
    what lies there (it may reach beyond the T1's field of view: a joint, fluid): for such
    an image, what lies beyond the grid's edge counts as outside the bone. An image on the
    study grid's own voxels (the T1) mixes nothing from beyond its edge, but its last slice
    may hold the bone's surface (a side of the bone cut by a tight field of view), which
    the mask cannot show without the slice beyond: ``edge_outside`` counts the edge as
    outside the bone for every image (``Parameters.band_at_grid_edge``).

    Parameters
    ----------
    bones : ndarray of int or bool
        The bone labels (cortex included; 0 outside bone) on ``grid``; a boolean mask is
        one bone.
    grid : Grid
        The study grid.
    source_grids : iterable of Grid
        The grids the images were acquired on.
    edge_outside : bool
        Whether the grid's edge counts as outside the bone also for an image on the study
        grid's own voxels.

    Examples
    --------
    >>> bone = np.zeros((12, 3, 3), bool)  # the middle line of a bone 3 voxels wide
    >>> bone[2:10] = True
    >>> thick = Grid((4, 3, 3), np.diag([3.0, 1.0, 1.0, 1.0]))  # 3 mm along the first axis
    >>> partial_volume_band(bone, Grid(bone.shape, np.eye(4)), [thick])[:, 1, 1].astype(int)
    array([0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0])
    >>> finer = Grid((5, 3, 3), np.diag([2.5, 1.0, 1.0, 1.0]))  # reaches 2.5 mm: 3 voxels
    >>> partial_volume_band(bone, Grid(bone.shape, np.eye(4)), [finer])[:, 1, 1].astype(int)
    array([0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0])

    Two bones whose masks touch (a joint thinner than a voxel) are mixed at the joint too:

    >>> bones = np.zeros((12, 1, 1), np.uint8)
    >>> bones[1:6], bones[6:11] = 1, 2
    >>> one = Grid((12, 1, 1), np.diag([1.0, 1.0, 1.0, 1.0]))
    >>> partial_volume_band(bones, one, [one])[:, 0, 0].astype(int)
    array([0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0])

    A bone that reaches the edge of the grid: an image on the grid's own voxels adds nothing
    there, an image on another grid reaches beyond the edge:

    >>> edge = np.zeros((8, 3, 3), bool)
    >>> edge[3:] = True
    >>> grid = Grid(edge.shape, np.eye(4))
    >>> partial_volume_band(edge, grid, [grid])[:, 1, 1].astype(int)
    array([0, 0, 0, 1, 0, 0, 0, 0])
    >>> partial_volume_band(edge, grid, [grid], edge_outside=True)[:, 1, 1].astype(int)
    array([0, 0, 0, 1, 0, 0, 0, 1])
    >>> thicker = Grid((4, 3, 3), np.diag([2.0, 1.0, 1.0, 1.0]))
    >>> partial_volume_band(edge, grid, [thicker])[:, 1, 1].astype(int)
    array([0, 0, 0, 1, 1, 0, 1, 1])
    """
    labels = np.asarray(bones)
    band = np.zeros(labels.shape, bool)
    if not labels.any():
        return band
    box = grown_box(occupied_box(labels != 0), 1, labels.shape)
    labels = labels[box]
    inside = labels != 0
    # The interpolation reaches a source voxel's extent on either side, and the surface lies
    # up to a study voxel beyond the last bone voxel: a box of 2 * ceil(extent / spacing) + 1
    # study voxels. A box within another image's box adds nothing to that image's band.
    # Each image: its reach, and whether it reaches beyond the grid's edge (not on its voxels).
    reaches = {
        (
            tuple(np.ceil(voxel_extent(source, grid) / grid.spacing - 1e-6).astype(int)),
            edge_outside or not _on_voxels(source, grid),
        )
        for source in source_grids
    }
    for reach, beyond in reaches:
        if not any(reach) or any(
            (other, wider) != (reach, beyond)
            and (wider or not beyond)
            and all(o >= r for o, r in zip(other, reach, strict=True))
            for other, wider in reaches
        ):
            continue
        band[box] |= inside & ~_all_own(labels, np.array(reach), edge_outside=beyond)
    return band


def _on_voxels(source: Grid, grid: Grid, *, atol: float = 1e-3) -> bool:
    """Whether ``source``'s voxels are ``grid``'s (same axes and spacing, voxel centres on
    its voxel centres; ``grid`` may be a crop of ``source`` or the other way round).

    >>> grid = Grid((4, 4, 4), np.eye(4))
    >>> _on_voxels(Grid((9, 9, 9), np.eye(4) - np.eye(4, k=3) * 2), grid)
    True
    >>> _on_voxels(Grid((4, 4, 4), np.diag([1.0, 1.0, 2.0, 1.0])), grid)
    False
    """
    if not np.allclose(source.affine[:3, :3], grid.affine[:3, :3], rtol=0.0, atol=atol):
        return False
    offset = grid.world_to_voxel(source.affine[:3, 3])
    return bool(np.allclose(offset, np.round(offset), rtol=0.0, atol=atol))


def _all_own(
    labels: NDArray, reach: NDArray[np.integer], *, edge_outside: bool = False
) -> NDArray[np.bool_]:
    """Voxels whose box of ``reach`` voxels on either side along each axis holds only their
    own label. Beyond the array, its edge voxels stand for what lies there, or, with
    ``edge_outside``, another label. Shifts, one axis at a time: after an axis, a voxel is
    kept when every voxel of its window along that axis has its label and was kept along
    the axes before.

    >>> _all_own(np.array([[1, 1, 1, 0, 2, 2]]), np.array([0, 1])).astype(int)
    array([[1, 1, 0, 0, 0, 1]])
    >>> _all_own(np.array([[1, 1, 1, 0, 2, 2]]), np.array([0, 1]), edge_outside=True).astype(int)
    array([[0, 1, 0, 0, 0, 0]])
    """
    out = np.ones(labels.shape, bool)
    for axis, steps in enumerate(int(r) for r in reach):
        if steps <= 0:
            continue
        kept = out.copy()
        for step in range(1, min(steps, labels.shape[axis] - 1) + 1):
            low = [slice(None)] * labels.ndim
            high = [slice(None)] * labels.ndim
            low[axis], high[axis] = slice(None, -step), slice(step, None)
            low, high = tuple(low), tuple(high)
            same = labels[low] == labels[high]
            kept[low] &= same & out[high]
            kept[high] &= same & out[low]
        if edge_outside:  # the window of these voxels reaches beyond the array
            kept[(slice(None),) * axis + (slice(None, steps),)] = False
            kept[(slice(None),) * axis + (slice(-steps, None),)] = False
        out = kept
    return out
