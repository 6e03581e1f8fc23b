"""Marrow on a fat-suppressed image alone (STIR or fat-suppressed T2, no T1 and no T2).

On such an image fatty marrow is suppressed: it is the darkest tissue of the column apart
from cortex, ligaments and degenerated discs. Muscle (psoas, crura, paraspinal muscle) and
the annulus are dark-intermediate too, close enough to the marrow that the band of
:func:`.bodies.fluid_marrow_mask` (set for a T2, around the median of the strip in front of
the canal, which holds discs and the tissue beside the bodies as well as marrow) takes
them in: on the randomized phantoms' STIR the strip median is 1.06-1.2 times the marrow's
own level and the muscle beside the bodies 1.17-1.28 times it, under the band's 1.35. Seen
on the mid-sagittal and lateral slices (tuning seeds 60 and 65): the bodies grow into the
muscle beside and in front of them, across the slices past their lateral walls.

Muscle on a STIR is brighter than fatty marrow in adults (its long T1 and T2 are not
suppressed); red marrow comes close to it but is not brighter. Here the marrow level is
read again on the first marrow mask only (per SI row, the median of the marrow-like voxels
near the canal, so the discs' nuclei, CSF and the tissue beyond the band no longer weigh on
it), and voxels whose signal, smoothed in-plane over ``suppressed_smooth_mm`` (the marrow's
mottling and noise average out over a few mm; the edge between two tissues stays where it
is, halfway up the step), is above ``suppressed_marrow_high`` times that level are left
out. Lesions brighter than marrow (edema, Modic I) were already outside the band; the
lesion fill puts them back inside each body's outline as before.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.bodies import _disk, _marrow_level
from bmetoolkit.spine.autoseg.disc_ends import cut_at_end_lines
from bmetoolkit.spine.autoseg.midline import mid_slab
from bmetoolkit.spine.autoseg.params import AutosegParameters

__all__ = [
    "cut_disc_ends_then_sections",
    "marrow_level",
    "no_brighter_than_marrow",
    "trim_bright_sections",
]

Mask = NDArray[np.bool_]


def marrow_level(
    marrow: Mask,
    image: NDArray[np.float32],
    near: Mask,
    spacing: NDArray,
    params: AutosegParameters,
) -> NDArray[np.float32]:
    """The marrow's own level per SI row, shaped (1, n_si, 1): the median of ``image`` over
    the marrow mask near the canal, smoothed along SI over ``reference_smooth_mm``."""
    return _marrow_level(image, marrow & near, spacing, 50.0, params.reference_smooth_mm)


def no_brighter_than_marrow(
    marrow: Mask,
    image: NDArray[np.float32],
    near: Mask,
    spacing: NDArray,
    params: AutosegParameters,
) -> Mask:
    """``marrow`` without the voxels brighter than the marrow itself on a fat-suppressed image.

    Parameters
    ----------
    marrow : ndarray of bool
        Marrow-like voxels of the column (:func:`.bodies.fluid_marrow_mask`).
    image : ndarray
        The fat-suppressed image the marrow was read from.
    near : ndarray of bool
        Where the marrow level is read (:func:`.bodies.near_canal`).
    spacing : ndarray, shape (3,)
    params : AutosegParameters
        ``suppressed_marrow_high`` (0 leaves ``marrow`` as it is) and
        ``suppressed_smooth_mm``.

    Returns
    -------
    ndarray of bool
        The marrow mask, opened again by ``opening_mm`` (thin bridges left by the cut).

    Examples
    --------
    >>> marrow = np.ones((20, 20, 3), bool)
    >>> image = np.ones((20, 20, 3), np.float32)
    >>> image[12:] = 1.5  # muscle in front of the marrow
    >>> kept = no_brighter_than_marrow(marrow, image, marrow, np.ones(3), AutosegParameters())
    >>> bool(kept[:10].all()), bool(kept[13:].any())
    (True, False)
    """
    if params.suppressed_marrow_high <= 0 or not (marrow & near).any():
        return marrow
    level = marrow_level(marrow, image, near, spacing, params)
    sigma = np.array([params.suppressed_smooth_mm / s for s in spacing[:2]] + [0.0])
    smooth = ndimage.gaussian_filter(image, sigma)
    kept = marrow & (smooth <= np.float32(params.suppressed_marrow_high) * level)
    return ndimage.binary_opening(kept, structure=_disk(params.opening_mm, spacing))


def trim_bright_sections(
    bodies: NDArray[np.int32],
    image: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    factor: float,
    step: float = 0.0,
) -> tuple[NDArray[np.int32], int]:
    """Cut each body at its first lateral slice brighter than its own marrow.

    A body's sagittal sections beyond :data:`.midline.MID_SLAB_MM` of the canal midline are
    walked outwards on each side; the first whose median signal is above ``factor`` times
    the median of the body's voxels within the mid-sagittal slab (its own marrow level) is
    beside the body's lateral wall (muscle, brighter than suppressed marrow), and it and
    every slice beyond it on that side are taken out of the body. A section is hundreds of
    voxels: its median is not moved by the marrow's mottling, and a lesion bright on the
    fluid image fills a lateral section only when it fills the body's side from endplate
    to endplate. Bodies with no voxel in the mid slab are left as they are.

    With ``step`` the body's outermost section on each side (the segment's last slice
    there) is also beside the wall when its median is above the body's own level and
    above the median of the section just inside it (towards the midline) by ``step``
    times that level: where a segment runs on past the lateral wall, its last slice holds
    little or none of the body and mostly the muscle beside it, and its signal steps up
    from the body's sections, while a body's own sections, walked outwards, stay at its
    marrow's level or darken (the lateral cortex takes a larger share of them). The step
    is read against the body's own sections, not only against a fixed ratio to its
    marrow, so muscle only a little brighter than suppressed marrow (under ``factor``
    times it) is still seen where it replaces the body. A section with more of the body
    beyond it is not cut by the step: the body goes on there, and a step up inside a body
    is its own marrow (a lesion, or the coil's shading across the slab).

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels, canonical (AP, SI, LR) axes.
    image : ndarray
        The fat-suppressed image the bodies were read from.
    midline : float
        Left-right index of the canal midline.
    spacing : ndarray, shape (3,)
    factor : float
        ``suppressed_section_factor``; 0 leaves the bodies as they are.
    step : float
        ``suppressed_section_step`` (a fraction of the body's own level); 0 reads only
        ``factor``.

    Returns
    -------
    bodies : ndarray of int32
    slices : int
        How many sections were taken out.

    Examples
    --------
    >>> bodies = np.zeros((10, 10, 9), np.int32)
    >>> bodies[2:8, 2:8, :] = 1
    >>> image = np.ones(bodies.shape, np.float32)
    >>> image[:, :, 7:] = 1.4  # muscle beside the body, on the two right-most slices
    >>> out, slices = trim_bright_sections(bodies, image, 4.0, np.array([1.0, 1.0, 3.0]), 1.15)
    >>> slices, np.flatnonzero(out.any(axis=(0, 1))).tolist()
    (2, [0, 1, 2, 3, 4, 5, 6])
    """
    if factor <= 0:
        return bodies, 0
    offsets = (np.arange(bodies.shape[2]) - midline) * float(spacing[2])
    mid = mid_slab(bodies.shape[2], midline, spacing)
    out, removed = bodies.copy(), 0
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        own = bodies[box] == label
        values = image[box]
        central = own & mid[box[2]][None, None, :]
        if not central.any():
            continue
        level = float(np.median(values[central]))
        slices = np.arange(box[2].start, box[2].stop)
        medians = {
            int(index): float(np.median(values[:, :, index - box[2].start][own_k]))
            for index in slices
            if (own_k := own[:, :, index - box[2].start]).any()
        }
        for side in (slices[offsets[slices] > 0], slices[offsets[slices] < 0][::-1]):
            # the segment's last section on this side (the farthest holding any of it)
            last = max((abs(offsets[i]) for i in side if int(i) in medians), default=None)
            for index in side:
                if mid[index] or int(index) not in medians:
                    continue
                median = medians[int(index)]
                inner = medians.get(int(index) - int(np.sign(offsets[index])))
                outermost = abs(offsets[index]) == last
                stepped = (
                    step > 0
                    and outermost
                    and inner is not None
                    and median > level
                    and median - inner > step * level
                )
                if median > factor * level or stepped:
                    beyond = side[np.searchsorted(np.abs(offsets[side]), abs(offsets[index])) :]
                    for far in beyond:
                        section = out[box[0], box[1], far]
                        removed += bool((section == label).any())
                        section[section == label] = 0
                    break
    return out, removed


def cut_disc_ends_then_sections(
    bodies: NDArray[np.int32],
    image: NDArray[np.float32],
    midline: float,
    spacing: NDArray,
    factor: float,
    again: bool = True,
    step: float = 0.0,
    whole_height: float = 0.0,
) -> tuple[NDArray[np.int32], int, int]:
    """Cut each body at its endplate lines, then its bright lateral sections once more.

    :func:`trim_bright_sections` reads a body's own marrow level as the median of its
    mid-sagittal voxels. A body that took a disc beyond its endplate holds the disc's
    annulus and nucleus there too, brighter than suppressed marrow, so its level was read
    high and the muscle beside its lateral wall passed under ``factor`` times it. Once the
    disc is cut off (:func:`.disc_ends.cut_at_end_lines`) the level is the marrow's, and
    with ``again`` the sections are walked once more against it (the same ``factor``;
    bodies no end was cut from give the same level and keep what they have).

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels, canonical (AP, SI, LR) axes, after :func:`trim_bright_sections`.
    image : ndarray
        The fat-suppressed image the bodies were read from.
    midline : float
        Left-right index of the canal midline.
    spacing : ndarray, shape (3,)
    factor : float
        ``suppressed_section_factor``; 0 skips the second walk.
    again : bool
        ``suppressed_sections_again``.
    step : float
        ``suppressed_section_step``, as in :func:`trim_bright_sections`.
    whole_height : float
        ``suppressed_ends_whole_height``, as in :func:`.disc_ends.cut_at_end_lines`.

    Returns
    -------
    bodies : ndarray of int32
    ends : int
        How many bodies lost an end.
    slices : int
        How many sections the second walk took out.
    """
    bodies, ends = cut_at_end_lines(bodies, image, midline, spacing, whole_height=whole_height)
    if not (again and ends):
        return bodies, ends, 0
    bodies, slices = trim_bright_sections(bodies, image, midline, spacing, factor, step)
    return bodies, ends, slices
