"""A body's anterior and posterior wall read as a faint dark line, the tissue beyond it cut.

On a T2 the tissue in front of and behind the bodies (the anterior longitudinal ligament's
surroundings, vessels, bowel, the epidural space) can have the marrow's signal. Where the
cortex is thin (under a millimetre) and the slices are thick, the wall is partial volumed
to a faint line, 0.75-0.86 of the marrow, lighter than the 0.7 that makes a voxel dark for
the marrow mask, and the body's segment runs through it into the tissue beyond: on the
tuning seeds of the pelvis-and-bowel family from a T2 alone (150, 166, 168, 177, 195) every
body of such a case comes out 1.3-1.9 times its true volume, the excess a layer of 2-5 mm
outside its walls. A reader sees the wall because it is darker than the marrow inside it
and than the tissue outside it, whatever its level against a fixed fraction. Here, along
each anterior-posterior line through a body's wall, the wall is a voxel darker than the
segment's signal on both sides of it (read within the segment) by at least the body's own
robust pixel spread; where most of the neighbouring lines agree, what lies beyond it is
cut. Only the walls are read, not the endplates: a line crosses a wall only where the
segment's face runs within 45 degrees of the column's axis.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.reference import robust_sd

__all__ = [
    "agreeing_share",
    "canal_sections",
    "cut_beyond_wall_cortex",
    "neighbourhood_lines",
    "wall_cut_depths",
]

Labels = NDArray[np.int32]

#: The wall is looked for this far (mm) inside the segment's anterior or posterior face: a
#: quarter of a lumbar body's depth, more than the 2-5 mm of tissue a segment took beyond a
#: thin cortex.
REACH_MM = 8.0
#: The marrow inside the wall and the tissue outside it are each read over up to this
#: far (mm) beyond the wall's shoulder (its neighbouring voxel on that side).
SIDE_MM = 3.0
#: The wall is darker than both sides by at least this many times the body's robust pixel
#: spread (1.4826 times the median absolute deviation of its voxels: the scan's own noise
#: and texture). One spread (two, as for the S1-S2 line, left most walls of the tuning
#: cases uncut): the agreement of the neighbouring lines (:data:`AGREEMENT_MM`) stands
#: in for a stricter contrast.
MIN_CONTRAST_SPREADS = 1.0
#: With a T1, the posterior wall is read on the sagittal sections where the CSF column holds
#: at least this share of the voxels it holds on its fullest section (beside the canal the
#: body's posterior face meets the pedicles, and on thick sections a rounded lateral wall
#: draws dark partial-volume bands along SI inside the body).
CANAL_SECTION_SHARE = 0.5
#: Each line is read as the median profile of the lines around it within this square of
#: the face (mm, superior-inferior by left-right, itself in the middle: 5 x 5 lines at 1 mm
#: voxels; :func:`neighbourhood_lines`), and its cut is the median of their cuts, kept only
#: where more than half of them lie within a voxel of it: a wall is a surface, a dark voxel
#: on a few lines is noise or texture (with 3 x 3 lines at 1 mm, white noise of the
#: marrow's spread gave patches of 2-4 lines cut in the unit tests' bodies without a wall;
#: with 5 x 5, none). In mm, not lines (session 41): on 3-5 mm sagittal sections five
#: sections span 15-25 mm of a body's rounded front, where the wall lies at depths a few
#: voxels apart, and their median profile lost it (tuning seed 168: anterior walls 0.55-0.75
#: of the marrow left uncut on most lines).
AGREEMENT_MM = 5.0
AGREEMENT_LINES = 13


def canal_sections(canal: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The sagittal sections (canonical axis 2) where the CSF column ``canal`` holds at least
    :data:`CANAL_SECTION_SHARE` of the voxels it holds on its fullest section.

    >>> canal = np.zeros((4, 3, 5), bool)
    >>> canal[:, :, 1:4] = True
    >>> canal[0, :, 1] = False
    >>> canal_sections(canal).tolist()
    [False, True, True, True, False]
    """
    counts = np.asarray(canal, bool).sum(axis=(0, 1))
    return (counts > 0) & (counts >= CANAL_SECTION_SHARE * counts.max(initial=0))


def neighbourhood_lines(spacing: NDArray) -> tuple[int, int]:
    """The lines (superior-inferior, left-right) of a line's neighbourhood on its face.

    Each the odd count nearest to :data:`AGREEMENT_MM` in voxels, at least one; where that
    holds fewer than :data:`AGREEMENT_LINES` lines (thick sections), more superior-inferior
    lines (along the wall on one section) up to that many.

    >>> neighbourhood_lines(np.ones(3)), neighbourhood_lines(np.array([0.9, 1.1, 4.0]))
    ((5, 5), (13, 1))
    """
    si, lr = (max(2 * round((AGREEMENT_MM / float(size) - 1) / 2) + 1, 1) for size in spacing[1:3])
    along = -(-AGREEMENT_LINES // lr)  # ceil
    return max(si, along + 1 - along % 2), lr


def agreeing_share(depths: NDArray, value: int, sizes: tuple[int, int]) -> NDArray[np.float64]:
    """Per line, the share of the ``sizes`` lines around it (lines beyond the grid count as
    none) whose depth (0: none found) lies within a voxel of ``value``.

    >>> depths = np.array([[3, 3, 0], [4, 3, 9]])
    >>> agreeing_share(depths, 3, (1, 3))[0].round(2).tolist()
    [0.67, 0.67, 0.33]
    """
    near = (depths > 0) & (np.abs(depths - value) <= 1)
    return ndimage.uniform_filter(near.astype(float), sizes, mode="constant")


def wall_cut_depths(
    segment: NDArray[np.bool_], image: NDArray, spacing: NDArray, spread: float, sign: int
) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """Per (SI, LR) line, the segment's face on one side and the wall's depth inside it.

    Parameters
    ----------
    segment : ndarray of bool, shape (n_ap, n_si, n_lr)
        One body's voxels.
    image : ndarray, same shape
        The T2.
    spacing : array_like, shape (3,)
        Voxel size (mm) along AP, SI, LR.
    spread : float
        The body's robust pixel spread.
    sign : {1, -1}
        1 for the anterior face (largest AP index), -1 for the posterior one.

    Returns
    -------
    face, depth : ndarray of int, shape (n_si, n_lr)
        The face's AP index per line (-1 where the line misses the segment) and the wall's
        depth inside it in voxels, agreed over the neighbouring lines (0: nothing cut).
        Each line's profile is the step-by-step median of the lines around it within the
        :data:`AGREEMENT_MM` square (:func:`neighbourhood_lines`). On it the wall is the
        voxel ``k`` voxels inside the face (``k`` from 2 up to :data:`REACH_MM`) no
        brighter than its two neighbours along the line whose value lies under the median
        of the segment's voxels outside its outer neighbour and the median of up to
        :data:`SIDE_MM` inside its inner neighbour by at least
        :data:`MIN_CONTRAST_SPREADS` times ``spread`` (the deepest valley by contrast); it
        is read only where the face moves by at most one voxel's SI height per SI row on
        both sides (a wall, not an endplate). The line's depth is the median of those of
        the lines around it, kept where more than half of them lie within a voxel of it.

    Examples
    --------
    >>> image = np.full((20, 5, 5), 100.0)
    >>> image[12] = 80.0  # a faint anterior cortex, tissue of the marrow's signal beyond it
    >>> segment = np.zeros((20, 5, 5), bool)
    >>> segment[2:16] = True  # the segment runs 3 voxels past the cortex
    >>> face, depth = wall_cut_depths(segment, image, np.ones(3), 5.0, 1)
    >>> int(face[2, 2]), int(depth[2, 2])
    (15, 3)
    """
    n_ap = segment.shape[0]
    index = np.arange(n_ap)[:, None, None]
    has = segment.any(axis=0)
    if sign > 0:
        face = np.where(has, np.max(np.where(segment, index, -1), axis=0), -1)
    else:
        face = np.where(has, np.min(np.where(segment, index, n_ap), axis=0), -1)
    depth = np.zeros(has.shape, int)
    if not has.any() or not spread > 0:
        return face, depth
    si, lr = np.nonzero(has)
    edge = face[si, lr]
    reach = max(round(REACH_MM / float(spacing[0])), 2)
    side = max(round(SIDE_MM / float(spacing[0])), 1)
    steps = np.arange(reach + side + 2)
    ap = edge[:, None] - sign * steps[None, :]
    inside = (ap >= 0) & (ap < n_ap)
    ap = np.clip(ap, 0, n_ap - 1)
    inside &= segment[ap, si[:, None], lr[:, None]]
    read = np.asarray(image, dtype=np.float64)[ap, si[:, None], lr[:, None]]
    sizes = neighbourhood_lines(spacing)
    values = _neighbourhood_medians(np.where(inside, read, np.nan), si, lr, has.shape, sizes)
    best, contrast_best = np.zeros(si.size, int), np.zeros(si.size)
    with warnings.catch_warnings():  # a comparison with NaN (an empty side): no valley
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(2, reach + 1):
            value = values[:, k]
            outer = _nan_median(values[:, : k - 1], 1)
            inner = _nan_median(values[:, k + 2 : k + 2 + side], 1)
            neighbours = np.nanmin(values[:, [k - 1, k + 1]], axis=1)
            contrast = np.fmin(outer, inner) - value
            valley = (value <= neighbours) & (contrast >= MIN_CONTRAST_SPREADS * spread)
            better = valley & np.isfinite(contrast) & (contrast > contrast_best)
            best[better], contrast_best[better] = k, contrast[better]
    # A wall: the face moves by at most a row's height per row, above and below the line.
    rise = float(spacing[1]) / float(spacing[0])
    faces = np.where(has, face, np.nan).astype(np.float64)
    above, below = np.full_like(faces, np.nan), np.full_like(faces, np.nan)
    above[:-1], below[1:] = faces[1:], faces[:-1]
    with np.errstate(invalid="ignore"):
        wall = (np.abs(above - faces) <= rise) & (np.abs(below - faces) <= rise)
    best[~wall[si, lr]] = 0
    found = np.zeros(has.shape)
    found[si, lr] = best
    agreed = ndimage.median_filter(found, size=sizes)
    # ... held by more than half of the neighbourhood's lines, each within a voxel of it.
    support = np.zeros(has.shape)
    for value in np.unique(agreed[agreed > 0]):
        share = agreeing_share(found, value, sizes)
        support[agreed == value] = share[agreed == value]
    agreed[support < 0.5] = 0
    depth[si, lr] = agreed[si, lr].astype(int)
    return face, depth


def _neighbourhood_medians(
    values: NDArray[np.float64],
    si: NDArray[np.int_],
    lr: NDArray[np.int_],
    shape: tuple,
    sizes: tuple[int, int],
) -> NDArray[np.float64]:
    """Each line's profile (steps inward from the face) as the median, step by step, of the
    profiles of the ``sizes`` (superior-inferior, left-right) lines around it (NaN where the
    line's own step is outside the segment).

    >>> values = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    >>> si, lr = np.array([0, 1, 2]), np.zeros(3, int)
    >>> _neighbourhood_medians(values, si, lr, (3, 1), (5, 5)).tolist()
    [[3.0, 4.0], [3.0, nan], [3.0, 4.0]]
    """
    h_si, h_lr = sizes[0] // 2, sizes[1] // 2
    grid = np.full((*shape, values.shape[1]), np.nan)
    grid[si, lr] = values
    padded = np.pad(grid, ((h_si, h_si), (h_lr, h_lr), (0, 0)), constant_values=np.nan)
    n_si, n_lr = shape
    stack = np.stack(
        [padded[i : i + n_si, j : j + n_lr] for i in range(sizes[0]) for j in range(sizes[1])]
    )
    medians = _nan_median(stack[:, si, lr], 0)
    return np.where(np.isfinite(values), medians, np.nan)


def _nan_median(values: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """``np.nanmedian`` along ``axis`` (NaN where all are NaN), by one sort (NaN sort last).

    >>> _nan_median(np.array([[1.0, np.nan, 4.0], [np.nan, np.nan, np.nan], [3.0, 2.0, 8.0]]), 1)
    array([2.5, nan, 3. ])
    """
    if values.shape[axis] == 0:
        return np.full(np.delete(values.shape, axis), np.nan)
    ordered = np.sort(values, axis=axis)
    count = np.isfinite(ordered).sum(axis=axis, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=axis)
    high = np.take_along_axis(ordered, count // 2, axis=axis)  # count // 2 < size unless 0
    median = np.where(count > 0, (low + high) / 2, np.nan)
    return np.squeeze(median, axis=axis)


def cut_beyond_wall_cortex(
    bodies: Labels,
    image: NDArray,
    spacing: NDArray,
    signs: tuple[int, ...] = (1, -1),
    sections: NDArray[np.bool_] | None = None,
) -> tuple[Labels, dict[str, int]]:
    """Each body cut at its anterior and posterior wall where a faint cortex shows inside it.

    Parameters
    ----------
    bodies : ndarray of int32
        The bodies (labels 1..n).
    image : ndarray, same shape
        The image the marrow was read on, the cortex darker than the marrow (a plain T2, or
        a T1 whose marrow is bright).
    spacing : array_like, shape (3,)
    signs : tuple of int
        The faces read: 1 anterior, -1 posterior (both by default).
    sections : ndarray of bool, shape (n_lr,), optional
        The sagittal sections whose lines may be cut (every one by default).

    Returns
    -------
    bodies, evidence
        The bodies with the voxels beyond each wall the image shows removed (the wall's
        own voxel kept: the truth and a reader's outline hold the cortex), and
        ``{"bodies_cut": ..., "voxels_removed": ...}``. Per body, per face,
        :func:`wall_cut_depths` with the body's robust pixel spread (1.4826 times the
        median absolute deviation of its voxels); the anterior face is cut first, the
        posterior one read on what is left.

    Examples
    --------
    >>> image = np.full((20, 5, 5), 100.0)
    >>> image[12] = 80.0
    >>> image[2:12] += np.tile([3.0, -3.0], 5)[:, None, None]  # the marrow's texture
    >>> bodies = np.zeros((20, 5, 5), np.int32)
    >>> bodies[2:16] = 1
    >>> out, evidence = cut_beyond_wall_cortex(bodies, image, np.ones(3))
    >>> int(np.flatnonzero(out[:, 2, 2]).max()), evidence["bodies_cut"]
    (12, 1)
    """
    out = bodies.copy()
    image = np.asarray(image, dtype=np.float64)
    cut_bodies, removed = 0, 0
    # Lines beside the body the neighbourhoods read (empty), per axis (SI, LR).
    margins = [lines // 2 for lines in neighbourhood_lines(np.asarray(spacing))]
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        # The body's box, widened in SI and LR by the neighbourhoods' reach (as on the
        # whole array: the lines there hold no segment), up to the array's edges.
        box = (
            box[0],
            *(_widened(box[axis], margins[axis - 1], bodies.shape[axis]) for axis in (1, 2)),
        )
        segment = out[box] == label
        spread = robust_sd(image[box][segment])
        before = int(segment.sum())
        index = np.arange(segment.shape[0])[:, None, None]
        for sign in signs:
            face, depth = wall_cut_depths(segment, image[box], spacing, spread, sign)
            if sections is not None:
                depth[:, ~sections[box[2]]] = 0
            if not depth.any():
                continue
            limit = np.where(depth > 0, face - sign * depth, face)
            segment &= (sign * (index - limit[None])) <= 0
        gone = before - int(segment.sum())
        if gone:
            cut_bodies += 1
            removed += gone
            view = out[box]
            view[(view == label) & ~segment] = 0
    return out, {"bodies_cut": cut_bodies, "voxels_removed": removed}


def _widened(part: slice, margin: int, size: int) -> slice:
    """``part`` widened by ``margin`` on both sides, within ``0..size``.

    >>> _widened(slice(1, 5), 2, 6)
    slice(0, 6, None)
    """
    return slice(max(part.start - margin, 0), min(part.stop + margin, size))
