"""Vertebral bodies in the column in front of the canal: marrow, seeds, split, lesion fill.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.canal import Canal, band_distance
from bmetoolkit.spine.autoseg.endplate_reach import reach_steps
from bmetoolkit.spine.autoseg.geometry import (
    box_depth,
    consistent_angles,
    endplate_angles,
    hull_image,
    in_plane_distance,
)
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.volume import grown_box, occupied_box

__all__ = [
    "add_cortex",
    "body_column",
    "box_around",
    "cortex_mask",
    "drop_canal_fluid",
    "drop_small",
    "face_shell_axes",
    "fill_lesions",
    "fill_to_endplate",
    "fluid_marrow_mask",
    "grow_cortex",
    "marrow_mask",
    "near_canal",
    "shell_thickness_mm",
    "split_bodies",
]

Array = NDArray[np.float32]
Mask = NDArray[np.bool_]


#: A seed too deep to be a body is cut this many times the median depth of the seeds kept
#: anterior of its nearest voxel to the canal (adjacent bodies' depths differ by about 10 %).
RESCUE_DEPTH_FACTOR = 1.25
#: ... and a part of it is kept only when it reaches within this distance (mm) of the
#: canal's midline.
RESCUE_MIDLINE_MM = 3.0
#: Lateral slices whose section is smaller than this fraction of the body's largest one
#: (partial volume at the body's side) are filled within their convex hull only.
BOX_FILL_MIN_AREA = 0.5
#: Where the marrow reference is measured: this far (mm) in front of the canal, and this
#: close (mm) to its midline.
NEAR_CANAL_MM = 30.0
NEAR_MIDLINE_MM = 12.0
#: A row's marrow reference counts when it is at least this fraction of the column's overall
#: reference; the other rows (discs, beyond the spine) are interpolated.
REFERENCE_VALID_FRACTION = 0.85


def _odd(n: float) -> int:
    return max(1, round(n) | 1)


def box_around(mask: Mask, margin: tuple[int, int, int] | NDArray) -> tuple[slice, ...] | None:
    """Bounding box of ``mask`` grown by ``margin`` voxels per axis (within the array).

    None when ``mask`` is empty. A distance or nearest-voxel transform of ``mask`` (or of
    its complement) read within this box with ``margin`` at least 1 is that of the whole
    array inside it: every voxel of ``mask`` lies in the box, and the voxel of the margin
    nearest to a point beyond it is nearer than that point to any voxel inside.
    """
    box = occupied_box(mask)
    if box[0].start == box[0].stop:
        return None
    return grown_box(box, margin, mask.shape)


def _disk(radius_mm: float, spacing: NDArray) -> Mask:
    """An in-plane (AP x SI) elliptic structuring element of ``radius_mm``, one slice thick."""
    ra, rs = (max(0, int(np.floor(radius_mm / s + 0.5))) for s in spacing[:2])
    a = np.arange(-ra, ra + 1)[:, None] * spacing[0]
    s = np.arange(-rs, rs + 1)[None, :] * spacing[1]
    return (a * a + s * s <= radius_mm * radius_mm + 1e-9)[:, :, None]


def body_column(
    canal: Canal, shape: tuple[int, int, int], spacing: NDArray, params: AutosegParameters
) -> tuple[Mask, Array]:
    """Where bodies may lie (anterior of the canal, near its midline) and the AP distance map.

    Returns
    -------
    column : ndarray of bool, canonical shape
    distance : ndarray, shape (n_ap, n_si)
        Distance (mm) anterior of the CSF's anterior wall.
    """
    distance = band_distance(canal, shape, spacing)
    in_band = (distance >= params.band_posterior_mm) & (distance <= params.band_anterior_mm)
    lr = (np.arange(shape[2]) - canal.midline) * spacing[2]
    near_midline = np.abs(lr) <= params.band_half_width_mm
    return in_band[:, :, None] & near_midline[None, None, :], distance


def _row_reference(
    image: Array,
    where: Mask,
    spacing: NDArray,
    percentile: float,
    smooth_mm: float,
    dip_mm: float = 0.0,
) -> NDArray[np.float64]:
    """A per-SI-row intensity reference: a percentile over ``where``, smoothed along SI.

    Rows under :data:`REFERENCE_VALID_FRACTION` of the column's overall value are
    interpolated from the others (on a T1 or T2 such rows are discs, or soft tissue beyond
    the spine). With ``dip_mm`` (mm, along SI) such a row counts after all where the rows'
    profile, its short dips filled (a grey closing over ``dip_mm``, which lifts every dip
    narrower than ``dip_mm`` to the level of the rows on both sides of it), is itself under
    that fraction of the overall value, and the row within that fraction of the filled
    profile: a stretch of at least ``dip_mm`` darker as a whole, such as the marrow under
    the coil's weaker signal towards the image's edge, is followed, while a short dark
    stretch between brighter rows (an endplate, a disc darker than the marrow) is still set
    aside, and so is a darker row next to rows at the column's level.

    Examples
    --------
    >>> image = np.full((4, 120, 2), 10.0)
    >>> image[:, 80:] = 7.5  # the top rows: marrow under weaker signal
    >>> image[:, 40:43] = 5.0  # an endplate's dark line
    >>> where = np.ones(image.shape, bool)
    >>> _row_reference(image, where, np.ones(3), 50.0, 1.0)[[41, 100]].tolist()
    [10.0, 10.0]
    >>> _row_reference(image, where, np.ones(3), 50.0, 1.0, dip_mm=9.0)[[41, 100]].tolist()
    [10.0, 7.5]
    >>> image[:, 100:103] = 5.0  # an endplate in the darker stretch: still set aside
    >>> _row_reference(image, where, np.ones(3), 50.0, 1.0, dip_mm=9.0)[[101, 110]].tolist()
    [7.5, 7.5]
    """
    values = np.where(where, image, np.nan).transpose(1, 0, 2).reshape(image.shape[1], -1)
    counts = where.sum(axis=(0, 2))
    rows = np.flatnonzero(counts >= 5)
    if rows.size == 0:
        return np.full(image.shape[1], float(np.percentile(image, percentile)))
    per_row = _nan_percentile_rows(values[rows], percentile)
    # Rows through a disc or beyond the spine must not lower the reference to soft tissue:
    # only rows close to the typical value count, the others are interpolated.
    overall = float(np.percentile(image[where], percentile))
    valid = per_row >= REFERENCE_VALID_FRACTION * overall
    if dip_mm > 0:
        closed = ndimage.grey_closing(per_row, size=_odd(dip_mm / spacing[1]), mode="nearest")
        dim = closed < REFERENCE_VALID_FRACTION * overall
        valid |= dim & (per_row >= REFERENCE_VALID_FRACTION * closed)
    if valid.any():
        rows, per_row = rows[valid], per_row[valid]
    smoothed = ndimage.median_filter(per_row, size=_odd(smooth_mm / spacing[1]), mode="nearest")
    return np.interp(np.arange(image.shape[1]), rows, smoothed)


def _nan_percentile_rows(values: NDArray[np.floating], percentile: float) -> NDArray[np.floating]:
    """``np.nanpercentile(values, percentile, axis=1)`` for a Python ``float`` percentile
    and rows each holding a number, by one sort of all rows (NaN sort last) in place of
    NumPy's sort per row (``apply_along_axis``): the same numbers, interpolated between
    the neighbouring order statistics as NumPy's linear method does (in the values' type,
    where the weight, a Python float there, is cast to).

    >>> values = np.array([[1.0, np.nan, 4.0, 2.0], [3.0, 5.0, 8.0, 0.5]], np.float32)
    >>> _nan_percentile_rows(values, 40.0).tolist()
    [1.7999999523162842, 3.4000000953674316]
    >>> np.nanpercentile(values, 40.0, axis=1).tolist()
    [1.7999999523162842, 3.4000000953674316]
    """
    ordered = np.sort(values, axis=1)
    count = np.count_nonzero(~np.isnan(values), axis=1)
    virtual = (count - 1) * np.true_divide(percentile, 100)
    low = np.floor(virtual)
    last = virtual >= count - 1  # the largest value (NumPy's index -1 of the numbers)
    below = np.where(last, count - 1, low).astype(np.intp)[:, None]
    above = np.where(last, count - 1, low + 1).astype(np.intp)[:, None]
    a = np.take_along_axis(ordered, below, axis=1)[:, 0]
    b = np.take_along_axis(ordered, above, axis=1)[:, 0]
    gamma = virtual - low
    diff = b - a
    out = a + diff * gamma.astype(values.dtype)
    late = gamma >= 0.5
    out[late] = (b - diff * (1.0 - gamma).astype(values.dtype))[late]
    return out


def marrow_mask(
    t1: Array,
    t2: Array | None,
    column: Mask,
    distance: Array,
    midline: float,
    canal_rows: tuple[int, int],
    spacing: NDArray,
    params: AutosegParameters,
) -> Mask:
    """Marrow-like voxels of the column: bright on T1 against the local marrow reference.

    The reference is measured near the canal and the midline (where the bodies are) per SI
    row and smoothed over ``reference_smooth_mm``, so slow coil shading cancels. When a T2
    is given, voxels much brighter on T2 than marrow (fat) are left out.
    """
    near = near_canal(column, distance, midline, canal_rows, spacing)
    percentile, smooth = params.marrow_reference_percentile, params.reference_smooth_mm
    reference = _row_reference(t1, near, spacing, percentile, smooth)
    marrow = column & (t1 > params.marrow_t1_min * reference[None, :, None].astype(np.float32))
    if t2 is not None:
        t2_reference = _row_reference(t2, marrow & near, spacing, 50.0, smooth)
        marrow &= t2 < params.marrow_t2_max * t2_reference[None, :, None].astype(np.float32)
    return ndimage.binary_opening(marrow, structure=_disk(params.opening_mm, spacing))


def fluid_marrow_mask(
    image: Array,
    column: Mask,
    near: Mask,
    spacing: NDArray,
    params: AutosegParameters,
    percentile: float = 50.0,
    dip_mm: float = 0.0,
) -> Mask:
    """Marrow-like voxels of the column on a T2 or STIR alone (no T1).

    On a T2 the marrow is intermediate: healthy discs and CSF are brighter, degenerated
    discs, endplates, cortex and (on most scans) muscle darker; on a STIR the marrow is dark
    but the discs and CSF are still brighter. The bodies fill most of the strip just in front
    of the canal, so the median of that strip per SI row (smoothed over
    ``reference_smooth_mm``) is the marrow level; marrow lies in a band around it, from
    ``marrow_fluid_low`` to ``marrow_fluid_high`` times it, on the image smoothed by
    ``fluid_smooth_mm`` (mottled marrow), and above ``marrow_fluid_raw_low`` times it on
    the image as it is. An opening of ``opening_mm`` cuts thin bridges. ``near`` is where
    the reference is read (:func:`near_canal`); ``percentile`` of it is the marrow level
    (the median; lower on a fat-suppressed image alone, where the marrow is the darkest
    large tissue there and discs, muscle and the tissue in front are brighter); with
    ``dip_mm`` the rows darker than the column's level count unless they lie in a dip
    (:func:`_row_reference`).
    """
    smooth = ndimage.gaussian_filter(image, params.fluid_smooth_mm / spacing)
    reference = _marrow_level(smooth, near, spacing, percentile, params.reference_smooth_mm, dip_mm)
    low = params.marrow_fluid_low * reference
    # The unsmoothed image must pass the lower bound too: smoothing would blur the thin dark
    # cortex that separates a body from marrow-like tissue in front of it.
    high = params.marrow_fluid_high * reference
    raw_low = params.marrow_fluid_raw_low * reference
    marrow = column & (smooth > low) & (image > raw_low) & (smooth < high)
    return ndimage.binary_opening(marrow, structure=_disk(params.opening_mm, spacing))


def cortex_mask(
    image: Array,
    column: Mask,
    near: Mask,
    spacing: NDArray,
    params: AutosegParameters,
    percentile: float,
) -> Mask:
    """Voxels of the column dark enough to be cortical bone (a signal void on every contrast).

    Darker than ``cortex_dark_fraction`` of the marrow reference of ``image`` (the
    ``percentile`` per SI row over ``near``, as for the marrow). Discs, muscle and most
    lesions are brighter; the cortex, endplates and air are not.
    """
    reference = _marrow_level(image, near, spacing, percentile, params.reference_smooth_mm)
    return column & (image < params.cortex_dark_fraction * reference)


def _marrow_level(
    image: Array,
    near: Mask,
    spacing: NDArray,
    percentile: float,
    smooth_mm: float,
    dip_mm: float = 0.0,
) -> Array:
    """Per-row marrow reference of ``image`` over ``near``, shaped (1, n_si, 1)
    (``dip_mm``: see :func:`_row_reference`)."""
    reference = _row_reference(image, near, spacing, percentile, smooth_mm, dip_mm)
    return reference[None, :, None].astype(np.float32)


def grow_cortex(
    bodies: NDArray[np.int32],
    dark: Mask,
    spacing: NDArray,
    params: AutosegParameters,
    face_layer: bool = False,
) -> NDArray[np.int32]:
    """Grow each body, in the sagittal plane, through the dark shell around it.

    Up to ``cortex_max_mm`` beyond the marrow and its fixed shell, one in-plane voxel at a
    time and only through ``dark`` voxels, so a thick cortex and endplate (0.5-2.5 mm on
    real spines) is taken whole and a thin one is not padded with disc or soft tissue. The
    fixed shell is ``cortex_mm`` thick, or with ``face_layer`` (:func:`add_cortex` given the
    marrow) as thick as the face layer it took on coarse pixels
    (:func:`shell_thickness_mm`), so the whole shell stays within ``cortex_max_mm``.
    """
    shell = shell_thickness_mm(spacing, params.cortex_mm) if face_layer else params.cortex_mm
    steps = round((params.cortex_max_mm - shell) / float(spacing[:2].mean()))
    cross = ndimage.generate_binary_structure(2, 1)[:, :, None]
    out = bodies.copy()
    for _ in range(max(steps, 0)):
        grown = ndimage.grey_dilation(out, footprint=cross)
        new = (out == 0) & (grown > 0) & dark
        if not new.any():
            break
        out[new] = grown[new]
    return out


def near_canal(
    column: Mask,
    distance: Array,
    midline: float,
    canal_rows: tuple[int, int],
    spacing: NDArray,
) -> Mask:
    """The part of the column where bodies must be: just in front of the canal, mid-sagittal."""
    lr = np.abs(np.arange(column.shape[2]) - midline) * spacing[2]
    near = column & (distance <= NEAR_CANAL_MM)[:, :, None] & (lr <= NEAR_MIDLINE_MM)[None, None, :]
    near[:, : canal_rows[0]] = False
    near[:, canal_rows[1] + 1 :] = False
    return near


def split_bodies(
    marrow: Mask,
    distance: Array,
    front: NDArray[np.float64],
    spacing: NDArray,
    params: AutosegParameters,
    midline: float | None = None,
) -> NDArray[np.int32]:
    """Bodies as labels 1..n: eroded seeds, tall ones split, filtered, grown back.

    With ``midline`` (the canal's left-right index), seeds that cannot be one body (too
    deep or too far from the canal, or far larger than the others) are cut back to the
    column and checked again (:func:`_rescue_confined`): a body whose seed joins the
    tissue beside or in front of it keeps its part in line with the column instead of
    being lost (with the pelvis in view, S1 joined through its sides to sheets of
    marrow-bright tissue at the column's lateral edges, 69 mm deep, on tuning seeds 114,
    150 and 151 at 1 mm; on 152 joined to tissue in front into a 103 mL segment).

    Parameters
    ----------
    marrow : ndarray of bool
    distance : ndarray, shape (n_ap, n_si)
        Distance (mm) anterior of the canal (see :func:`body_column`).
    front : ndarray, shape (n_si,)
        The canal's anterior wall (AP index) per SI row; its slope gives the spine's axis.
    spacing : ndarray, shape (3,)
    params : AutosegParameters
    """
    seeds = ndimage.binary_erosion(marrow, structure=_disk(params.seed_erosion_mm, spacing))
    labels, n = ndimage.label(seeds)
    labels, n, eroded = _split_tall(labels, n, front, spacing, params)
    keep = _plausible(labels, n, distance, spacing, params, grown=eroded)
    if midline is not None:
        labels, n, eroded, keep = _rescue_confined(
            labels, n, eroded, keep, distance, front, midline, spacing, params
        )
    if not keep:
        return np.zeros(marrow.shape, np.int32)
    lookup = np.zeros(n + 1, np.int32)
    lookup[keep] = np.arange(1, len(keep) + 1)
    seeds = lookup[labels]
    reach = np.zeros(len(keep) + 1)
    reach[1:] = eroded[keep] + spacing[:2].max()
    # Only voxels within the largest reach of a seed change: the transform runs on a box.
    box = box_around(seeds > 0, [int(np.ceil(reach.max() / float(s))) + 1 for s in spacing])
    far, nearest = ndimage.distance_transform_edt(
        seeds[box] == 0, sampling=spacing, return_indices=True
    )
    inner = seeds[box][tuple(nearest)]
    inner[~marrow[box] | (far > reach[inner])] = 0
    grown = np.zeros(marrow.shape, np.int32)
    grown[box] = inner
    return grown


def _rescue_confined(
    labels: NDArray,
    n: int,
    eroded: NDArray[np.float64],
    keep: list[int],
    distance: Array,
    front: NDArray[np.float64],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
) -> tuple[NDArray, int, NDArray[np.float64], list[int]]:
    """Seeds that cannot be one body, cut back to the column and checked again.

    The seeds :func:`_plausible` rejected, and those kept but over ``large_body_factor``
    times the median kept seed's volume (as :func:`.checks.check_sizes` would drop the
    body), are cut at :data:`RESCUE_DEPTH_FACTOR` times the other seeds' median depth
    anterior of their nearest voxel to the canal and at their lateral walls
    (:func:`.checks.confine_laterally`); each part left is a seed of its own, tall ones
    split as in :func:`_split_tall`. A seed is replaced by its parts when one of them is
    plausible, else left as it was. Returns the labels, their count, the erosion depth
    per label and the labels kept.
    """
    from bmetoolkit.spine.autoseg.checks import confine_laterally  # checks imports lower_edge

    volumes = np.bincount(labels.ravel(), minlength=n + 1)
    present = np.flatnonzero(volumes)
    present = present[present > 0]
    typical = float(np.median(volumes[keep])) if len(keep) >= 3 else np.inf
    oversized = [label for label in keep if volumes[label] > params.large_body_factor * typical]
    retry = np.union1d(np.setdiff1d(present, keep), oversized).astype(int)
    reference = [label for label in keep if label not in oversized]
    if retry.size == 0 or not reference:
        return labels, n, eroded, keep
    lookup = np.zeros(n + 1, np.int32)
    lookup[retry] = retry
    confined = lookup[labels]
    depth_mm = RESCUE_DEPTH_FACTOR * float(
        np.median([far - near for near, far in (_reach(labels, k, distance) for k in reference)])
    )
    for label in retry:
        near = _reach(labels, int(label), distance)[0]
        confined[(confined == label) & (distance > near + depth_mm)[:, :, None]] = 0
    confined = confine_laterally(confined, midline, spacing, params, every_part=True)
    # Each part a seed of its own, numbered after the others; tall ones split again.
    parts, count = ndimage.label(confined > 0)
    parts[parts > 0] += n
    parts, count, deeper = _split_tall(parts, n + count, front, spacing, params)
    # A body crosses the midline: a part that does not is tissue beside the column.
    lr_mm = np.abs(np.arange(parts.shape[2]) - midline) * float(spacing[2])
    central = np.unique(parts[:, :, lr_mm <= RESCUE_MIDLINE_MM])
    rescued = [
        label
        for label in _plausible(parts, count, distance, spacing, params, grown=deeper)
        if label > n and label in central
    ]
    # Where each part came from (its voxels are its seed's), and that seed's erosion.
    origin = np.zeros(count + 1, np.int64)
    origin[parts[parts > 0]] = labels[parts > 0]
    deeper[n + 1 :] = np.maximum(deeper[n + 1 :], eroded[origin[n + 1 :]])
    replaced = np.unique(origin[rescued]) if rescued else np.zeros(0, np.int64)
    if replaced.size == 0:
        return labels, n, eroded, keep
    out = np.where(np.isin(labels, replaced), 0, labels)
    chosen = np.isin(parts, rescued)
    out[chosen] = parts[chosen]
    depth = deeper.copy()
    depth[: n + 1] = eroded
    kept = [label for label in keep if label not in replaced]
    return out, count, depth, sorted([*kept, *rescued])


def _reach(labels: NDArray, label: int, distance: Array) -> tuple[float, float]:
    """Nearest and farthest distance (mm) anterior of the canal of a label's voxels."""
    inside = (labels == label).any(axis=2)
    return float(distance[inside].min()), float(distance[inside].max())


def _extent_along_spine(
    component: Mask, offset: tuple[int, int], front: NDArray[np.float64], spacing: NDArray
) -> float:
    """Extent (mm, 5th-95th percentile) of a component along the local spine axis."""
    ap, si, _ = np.nonzero(component)
    ap, si = ap + offset[0], si + offset[1]
    row = int(np.clip(np.median(si), 1, front.size - 2))
    axis = np.array([(front[row + 1] - front[row - 1]) / 2 * spacing[0], spacing[1]])
    axis /= np.linalg.norm(axis)
    along = ap * spacing[0] * axis[0] + si * spacing[1] * axis[1]
    low, high = np.percentile(along, [5, 95])
    return float(high - low)


def _split_tall(
    labels: NDArray, n: int, front: NDArray[np.float64], spacing: NDArray, params: AutosegParameters
) -> tuple[NDArray, int, NDArray[np.float64]]:
    """Erode components taller than ``max_body_height_mm`` further until they split.

    Also returns how deep (mm) each label was eroded from the marrow: ``seed_erosion_mm``,
    plus the further erosion for the parts of a split, so that the checks on the distance
    to the canal and the regrowth allow for it (the part of S1 split from the sacral
    segments below it lies that much further from the canal than S1 itself).
    """
    out = labels.copy()
    next_label = n + 1
    extra: dict[int, float] = {}
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        component = labels[box] == label
        offset = (box[0].start, box[1].start)
        if _extent_along_spine(component, offset, front, spacing) <= params.max_body_height_mm:
            continue
        parts, count, radius = _erode_until_split(component, spacing, params)
        if count < 2:
            continue
        view = out[box]
        view[component] = 0
        for part in range(1, count + 1):
            view[parts == part] = label if part == 1 else next_label
            extra[label if part == 1 else next_label] = radius
            next_label += part > 1
    eroded = np.full(next_label, params.seed_erosion_mm)
    for label, radius in extra.items():
        eroded[label] += radius
    return out, next_label - 1, eroded


def _erode_until_split(
    component: Mask, spacing: NDArray, params: AutosegParameters
) -> tuple[NDArray, int, float]:
    """Erode by growing in-plane radii until at least two big parts remain (and the radius)."""
    step = float(spacing[:2].max())
    voxel = float(np.prod(spacing))
    radius = step
    while radius <= params.max_split_erosion_mm:
        eroded = ndimage.binary_erosion(component, structure=_disk(radius, spacing))
        parts, count = ndimage.label(eroded)
        if count >= 2:
            sizes = np.bincount(parts.ravel())[1:] * voxel
            big = np.flatnonzero(sizes >= params.min_body_volume_mm3 / 8) + 1
            if big.size >= 2:
                lookup = np.zeros(count + 1, np.int32)
                lookup[big] = np.arange(1, big.size + 1)
                return lookup[parts], int(big.size), radius
        radius += step
    return np.zeros(component.shape, np.int32), 0, 0.0


def _plausible(
    labels: NDArray,
    n: int,
    distance: Array,
    spacing: NDArray,
    params: AutosegParameters,
    grown: float | NDArray[np.float64],
) -> list[int]:
    """Labels of components big, tall and close enough to the canal to be bodies.

    ``grown``: how deep (mm) the components were eroded from the marrow, one value or one
    per label (index = label).
    """
    grown_by = np.broadcast_to(np.asarray(grown, dtype=np.float64), (n + 1,))
    if n == 0:
        return []
    volumes = np.bincount(labels.ravel(), minlength=n + 1) * float(np.prod(spacing))
    keep = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or volumes[label] < params.min_body_volume_mm3 * 0.5:
            continue
        height, gap, depth = component_shape(labels, box, label, distance, spacing, grown_by[label])
        if (
            height >= params.min_body_height_mm
            and gap <= params.max_posterior_gap_mm
            and depth <= params.max_body_depth_mm
        ):
            keep.append(label)
    return keep


def component_shape(
    labels: NDArray,
    box: tuple[slice, ...],
    label: int,
    distance: Array,
    spacing: NDArray,
    grown: float,
) -> tuple[float, float, float]:
    """A component's height (SI), gap behind it to the canal wall and depth (AP), in mm,
    allowing for ``grown`` mm of erosion: what :func:`_plausible` checks."""
    grown = float(grown)
    height = (box[1].stop - box[1].start) * spacing[1] + 2 * grown
    inside = (labels[box] == label).any(axis=2)
    gaps = distance[box[:2]][inside]
    gap, front = float(gaps.min()), float(gaps.max())
    return height, gap - grown, front - gap + 2 * grown


def fill_lesions(bodies: NDArray[np.int32], spacing: NDArray, params: AutosegParameters):
    """Fill each body's lesion bites and holes, slice by slice, leaving a shallow rim out.

    Dark-on-T1 lesions (Modic I/III, edema) next to an endplate bite into the marrow mask.
    In each sagittal slice, holes are filled, and voxels deeper than ``fill_rim_mm`` inside
    the section's convex hull or inside its box aligned with the endplates (which also
    holds a bitten corner or endplate) are added back. The rim is left out so concave
    endplates and the waist are not filled with disc or soft tissue.
    """
    out = bodies.copy()
    angles = _box_angles(bodies, spacing)
    for label, box in enumerate(ndimage.find_objects(bodies), start=1):
        if box is None:
            continue
        box = _padded(box, bodies.shape, spacing, params.fill_rim_mm + 2 * spacing[:2].max())
        own = bodies[box] == label
        areas = own.sum(axis=(0, 1))
        angle = angles[label - 1]
        for k in np.flatnonzero(areas >= 3):
            add, hull = _section_fill(own[:, :, k], spacing, params.fill_rim_mm, angle)
            if areas[k] < BOX_FILL_MIN_AREA * areas.max() or not np.isfinite(angle):
                add &= hull
            target = out[box[0], box[1], box[2].start + k]
            target[add & (target == 0)] = label
    return out


def _box_angles(bodies: NDArray[np.int32], spacing: NDArray) -> NDArray[np.float64]:
    """Inclination (deg) of each body's box: the endplate that agrees with the neighbours."""
    boxes = ndimage.find_objects(bodies)
    endplates = np.full((len(boxes), 2), np.nan)
    centre_si = np.full(len(boxes), np.nan)
    for index, box in enumerate(boxes):
        if box is not None:
            section = (bodies[box] == index + 1).any(axis=2)
            endplates[index] = endplate_angles(section, spacing)
            centre_si[index] = (box[1].start + box[1].stop) / 2
    order = np.argsort(-np.nan_to_num(centre_si, nan=-np.inf))
    return consistent_angles(endplates, order)


def _section_fill(
    section: Mask, spacing: NDArray, rim_mm: float, angle_deg: float
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Holes, plus hull and oriented-box interiors deeper than ``rim_mm``, of one section;
    and the section's convex hull."""
    hull = hull_image(section)
    depth = ndimage.distance_transform_edt(np.pad(hull, 1), sampling=spacing[:2])[1:-1, 1:-1]
    add = ndimage.binary_fill_holes(section) | (depth > rim_mm)
    if np.isfinite(angle_deg):
        add |= box_depth(section, spacing, angle_deg, section.shape) > rim_mm
    return add, hull


def _padded(
    box: tuple[slice, slice, slice], shape: tuple[int, ...], spacing: NDArray, margin_mm: float
) -> tuple[slice, slice, slice]:
    """``box`` grown in the sagittal plane by ``margin_mm``, within ``shape``."""
    grown = []
    for axis in (0, 1):
        pad = int(np.ceil(margin_mm / spacing[axis]))
        grown.append(slice(max(box[axis].start - pad, 0), min(box[axis].stop + pad, shape[axis])))
    return grown[0], grown[1], box[2]


def add_cortex(
    bodies: NDArray[np.int32],
    spacing: NDArray,
    params: AutosegParameters,
    marrow: Mask | None = None,
    dark: Mask | None = None,
) -> NDArray[np.int32]:
    """Grow every body by its cortical shell, ``cortex_mm`` thick, in the sagittal plane.

    A voxel outside the bodies joins the nearest body when its centre lies within
    ``cortex_mm`` of a body voxel's centre. With ``marrow`` (the marrow mask the bodies were
    grown from) and ``dark`` (cortex-dark voxels, :func:`cortex_mask`), on an in-plane axis
    whose pixel is coarser than the shell but at most twice as thick
    (:func:`face_shell_axes`), a body's face neighbour along it joins too when it is dark
    or the voxel beyond it is: the marrow ends about half a pixel beyond its last voxel
    centre, so that neighbour holds the cortex over at least half its width and straddles
    it, as the outermost layer of a label map does. On pixels of 1-2 mm (1.4 x 1.6 mm on
    the bundled sample study) no voxel centre lies within 1 mm and no shell was added at
    all. Where no dark voxel is that close the cortex is thin and already in the marrow's
    edge voxel (partial volume), and the neighbour is the tissue beyond: it stays out.
    Along SI only a ``marrow`` voxel's neighbour joins: where the body's edge is not marrow
    (a lesion filled up to its endplate) the endplate is in the body already, and one more
    voxel would be disc, which would put the body's surface one voxel beyond the lesion.
    On pixels no coarser than ``cortex_mm`` every face neighbour lies within it already,
    so nothing changes there.
    """
    if params.cortex_mm <= 0:
        return bodies
    # Only voxels within cortex_mm (or two voxels) of a body change, or decide: the
    # transforms run on the bodies' box.
    margin = [int(np.ceil(params.cortex_mm / float(s))) + 2 for s in spacing[:2]] + [0]
    box = box_around(bodies > 0, margin)
    if box is None:
        return bodies
    inner = bodies[box]
    far, nearest = in_plane_distance(inner == 0, spacing, return_indices=True)
    reach = far <= params.cortex_mm
    if marrow is not None and dark is not None:
        reach |= _face_layer(inner, marrow[box], dark[box], spacing, params.cortex_mm)
    out = bodies.copy()
    out[box] = np.where((inner == 0) & reach, inner[tuple(nearest)], inner)
    return out


def _face_layer(
    bodies: NDArray[np.int32], marrow: Mask, dark: Mask, spacing: NDArray, cortex_mm: float
) -> Mask:
    """The face neighbours :func:`add_cortex` adds on coarse pixels (see there)."""
    layer = np.zeros(bodies.shape, bool)
    for axis in face_shell_axes(spacing, cortex_mm):
        edge = bodies > 0 if axis == 0 else (bodies > 0) & marrow
        for step in (1, -1):
            face = _shifted(edge, step, axis) & (bodies == 0)
            layer |= face & (dark | _shifted(dark, -step, axis))
    return layer


def face_shell_axes(spacing: NDArray, cortex_mm: float) -> tuple[int, ...]:
    """In-plane axes (0 AP, 1 SI) along which :func:`add_cortex` takes the face neighbours.

    Those whose pixel is coarser than ``cortex_mm`` (no voxel centre within it) and at most
    twice it (the neighbour then holds the shell over at least half its width).
    """
    return tuple(a for a in (0, 1) if cortex_mm < float(spacing[a]) <= 2 * cortex_mm)


def shell_thickness_mm(spacing: NDArray, cortex_mm: float) -> float:
    """In-plane thickness (mm) of the shell :func:`add_cortex` adds, mean over AP and SI.

    ``cortex_mm``, or the pixel along an axis whose face neighbours it takes.
    """
    faces = face_shell_axes(spacing, cortex_mm)
    return float(np.mean([spacing[a] if a in faces else cortex_mm for a in (0, 1)]))


def drop_small(bodies: NDArray[np.int32], spacing: NDArray, params: AutosegParameters):
    """Remove bodies below ``min_body_volume_mm3`` and relabel 1..n."""
    n = int(bodies.max())
    if n == 0:
        return bodies
    volumes = np.bincount(bodies.ravel(), minlength=n + 1)[1:] * float(np.prod(spacing))
    keep = np.flatnonzero(volumes >= params.min_body_volume_mm3) + 1
    lookup = np.zeros(n + 1, np.int32)
    lookup[keep] = np.arange(1, keep.size + 1)
    return lookup[bodies]


def fill_to_endplate(
    bodies: NDArray[np.int32], dark: Mask, spacing: NDArray, reach_mm: float
) -> NDArray[np.int32]:
    """Extend each body along SI up to its endplate's dark cortex, across lesion signal.

    Modic I/III changes and edema next to an endplate are dark on T1 (and on a T2 some are
    as bright as a disc), so the marrow mask, and the body grown from it, stop short of the
    endplate wherever a lesion touches it, by the lesion's rim that the fill leaves out;
    the dark cortical endplate itself is then not reached by :func:`grow_cortex`, which
    only follows dark voxels. The endplate cortex is dark on every contrast whatever the
    lesion, so in each (AP, LR) column, from a body's superior and inferior edge, the first
    voxel within ``reach_mm`` along SI that is ``dark`` and lies outside every body is the
    endplate: the voxels up to it are added. A column whose nearest dark voxel is further
    (a disc is at least a few mm tall, so the next body's endplate is) gets nothing, so a
    body never crosses a disc of normal height.
    """
    steps = reach_steps(reach_mm, float(spacing[1]))
    # Bodies only grow along SI, at most ``steps`` rows: the work is done on their box.
    box = box_around(bodies > 0, (0, steps + 1, 0))
    if box is None:
        return bodies
    out = bodies.copy()
    out[box] = _filled_to_endplate(bodies[box], dark[box], steps)
    return out


def _filled_to_endplate(bodies: NDArray[np.int32], dark: Mask, steps: int) -> NDArray[np.int32]:
    """:func:`fill_to_endplate` on arrays holding the bodies and ``steps`` rows beyond."""
    free = bodies == 0
    passable, endplate = free & ~dark, free & dark
    out = bodies.copy()
    for direction in (1, -1):  # superior (+SI), then inferior
        # carried[k]: the label of the body k voxels back along SI, through passable voxels.
        carried, hits = [bodies], []
        for _ in range(steps):
            label = _shifted(carried[-1], direction)
            hits.append(np.where(endplate, label, 0))
            carried.append(np.where(passable, label, 0))
        # Back from each hit: the passable voxels on its way belong to the body too.
        chain = np.zeros(bodies.shape, bool)
        for k in range(steps, 0, -1):  # voxels k rows beyond the edge
            chain = (hits[k - 1] > 0) | (_shifted(chain, -direction) & (carried[k] > 0))
            take = chain & (out == 0)
            out[take] = np.maximum(hits[k - 1], carried[k])[take]
    return out


def _shifted(array: NDArray, direction: int, axis: int = 1) -> NDArray:
    """``array`` moved one voxel along ``axis`` (default SI) by ``direction``, zeros in."""
    out = np.zeros_like(array)
    source, target = [slice(None)] * array.ndim, [slice(None)] * array.ndim
    source[axis] = slice(None, -1) if direction > 0 else slice(1, None)
    target[axis] = slice(1, None) if direction > 0 else slice(None, -1)
    out[tuple(target)] = array[tuple(source)]
    return out


def drop_canal_fluid(
    bodies: NDArray[np.int32], image: Array, canal: Mask, fraction: float
) -> NDArray[np.int32]:
    """Leave out of the bodies the fluid that is open to the canal.

    Voxels brighter than ``fraction`` of the canal's median signal on ``image`` (the fluid
    image the canal was found on) and connected to the canal through such voxels are CSF
    partial-volumed into a posterior wall, epidural veins at its corners, or a basivertebral
    vein opening into the canal: not marrow. Marrow lesions are darker than CSF and
    separated from the canal by the dark posterior cortex, so they stay. ``fraction`` 0
    (or no canal) leaves the bodies as they are.
    """
    if fraction <= 0 or not canal.any():
        return bodies
    bright = image > np.float32(fraction * float(np.median(image[canal])))
    labels, _ = ndimage.label(bright | canal)
    open_ = np.isin(labels, np.unique(labels[canal])) & bright & (bodies > 0)
    if not open_.any():
        return bodies
    return np.where(open_, 0, bodies).astype(bodies.dtype)
