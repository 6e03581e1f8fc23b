"""The spinal canal (CSF column) and the band of tissue in front of it where bodies lie.

All arrays are canonical (anterior, superior, right); see :mod:`.frame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.volume import grown_box, occupied_box

__all__ = ["Canal", "find_canal", "normalise", "outside_air", "tissue_mask"]

Array = NDArray[np.float32]

#: The canal's anterior wall is measured within this distance (mm) of its midline.
FRONT_HALF_WIDTH_MM = 4.0
#: Without a T1, CSF in front of the cord is at least this fraction of the tube's median
#: and forms a column at least this long (mm).
THIN_CSF_FRACTION = 0.5
THIN_CSF_MIN_LENGTH_MM = 20.0
#: A candidate tube at a lower cut replaces the brighter one when this many times longer.
LONGER_FACTOR = 1.3
#: ... or (``canal_longer_mm``) when it reaches that many mm further caudally with its
#: cranial end within this distance (mm) of the brighter tube's: the dimmer sacral sac
#: added below, not tissue above the canal's top.
CAUDAL_TOP_TOLERANCE_MM = 10.0
#: The cord (up to this AP diameter, mm) between two CSF runs is bridged when the canal's
#: anterior wall is read.
CORD_GAP_MM = 12.0
#: Without a T1, the canal's wall is continued beyond the rows with CSF along the slope of
#: its last stretch of this length (mm).
EXTRAPOLATE_FIT_MM = 30.0
#: Percentiles of the tissue's fluid signal at which the canal is sought without a T1.
FLUID_ONLY_PERCENTILES = (99.0, 98.0, 97.0, 95.0, 93.0, 90.0)
#: With a T1, a CSF-like component shorter (superior-inferior) than this fraction of the
#: longest one is not the canal (see :func:`_canal_column`).
MIN_LENGTH_FRACTION = 0.5
#: With a T1, the CSF column is continued through voxels with at least this fraction of
#: ``csf_ratio_min`` connected to it (see :func:`_continued`).
CONTINUED_RATIO_FRACTION = 0.6
#: Without a T1, a bright tube with air within this distance (mm) in front of or behind it
#: is subcutaneous fat under the skin, not the thecal sac: the canal lies behind the bodies
#: and in front of the posterior elements and back muscles, several centimetres from the
#: skin on either side.
SKIN_DISTANCE_MM = 20.0
#: ... when more than this fraction of the band of that depth around it is air.
SKIN_AIR_FRACTION = 0.1


@dataclass(frozen=True)
class Canal:
    """The CSF column, as its anterior wall per superior-inferior row.

    Attributes
    ----------
    front : ndarray, shape (n_si,)
        Anterior index (fractional, canonical axis 0) of the CSF's anterior wall at each SI
        row, interpolated over rows where no CSF was found.
    midline : float
        Left-right index (canonical axis 2) of the canal's midline.
    rows : tuple of 2 ints
        First and last SI rows where CSF was found.
    mask : ndarray of bool
        The CSF column.
    """

    front: NDArray[np.float64]
    midline: float
    rows: tuple[int, int]
    mask: NDArray[np.bool_]


def tissue_mask(image: Array, fraction: float) -> NDArray[np.bool_]:
    """Voxels brighter than ``fraction`` of the image's 99th percentile (not air)."""
    return image > fraction * float(np.percentile(image, 99))


def normalise(image: Array, tissue: NDArray[np.bool_]) -> Array:
    """``image`` divided by its median over ``tissue`` (a unit-free scale)."""
    scale = float(np.median(image[tissue])) if tissue.any() else 1.0
    return image / np.float32(max(scale, 1e-6))


def _csf_candidates(
    tissue: NDArray[np.bool_],
    ratio: Array,
    fluid: Array,
    params: AutosegParameters,
    ratio_fraction: float = 1.0,
) -> NDArray[np.bool_]:
    """Bright on the fluid image (``csf_fluid_min``) and bright on the fluid/T1 ``ratio``
    (``ratio_fraction`` times ``csf_ratio_min``, relative to the tissue's median ratio):
    CSF is bright on T2/STIR and dark on T1. None without tissue (a fluid image of 0)."""
    if not tissue.any():
        return np.zeros(tissue.shape, bool)
    fluidn = normalise(fluid, tissue)
    ratio_ref = float(np.median(ratio[tissue]))
    ratio_min = ratio_fraction * params.csf_ratio_min * ratio_ref
    return tissue & (ratio > ratio_min) & (fluidn > params.csf_fluid_min)


def _fluid_ratio(
    t1: Array, fluid: Array, params: AutosegParameters
) -> tuple[NDArray[np.bool_], Array]:
    """Tissue mask and the fluid/T1 ratio of the normalised images (CSF has the highest).

    Tissue is what either image shows above air, within what the fluid image covers: its
    voxels of exactly 0 are left out. Where a fluid image of a thinner or oblique slab was
    resampled onto the T1 grid beforehand, it is 0 over the rest of the T1 slab (wedges
    inside the covered box too); counted as tissue they made the fluid image's median 0 and
    every ratio meaningless (tuning seed 63 with the pelvis in view, 1 mm: 52 % zeros, the
    canal found in the back muscles, no body). A measured MR signal is not exactly 0 in
    tissue.
    """
    tissue = tissue_mask(fluid, params.tissue_fraction) | tissue_mask(t1, params.tissue_fraction)
    tissue &= fluid != 0
    return tissue, normalise(fluid, tissue) / (normalise(t1, tissue) + np.float32(0.05))


def _si_length(column: NDArray[np.bool_], spacing: NDArray) -> float:
    """Superior-inferior extent (mm) of a mask, 0 when empty."""
    rows = np.flatnonzero(column.any(axis=(0, 2)))
    return float((rows[-1] - rows[0] + 1) * spacing[1]) if rows.size else 0.0


def _canal_column(
    candidates: NDArray[np.bool_],
    fluid: Array,
    spacing: NDArray,
    min_length_mm: float,
    max_depth_mm: float = np.inf,
) -> NDArray[np.bool_]:
    """The brightest (median fluid signal) candidate component long enough to be the canal.

    Subcutaneous fat is long and bright on T2 too, but CSF is brighter; when no component
    is long enough, the longest one is returned (and refused by the caller). A component
    deeper (anterior-posterior, median over its SI rows) than ``max_depth_mm`` is not the
    thecal sac but tissue merged with it or beside it (on a fat-suppressed T2 with a strong
    bias field, tuning seed 58, the whole abdomen in front of the spine passed the CSF
    thresholds as one component 210 mm deep and the bodies were sought in front of its back
    wall); it is skipped, and when nothing is left the caller looks for the brightest tube
    instead. The width is not checked: on 1 mm isotropic data the CSF of the root sleeves
    and foramina widens the column left to right (the real SCT cervical pair: 42 mm, the
    whole field of view; 24 mm deep).

    Only the components at least :data:`MIN_LENGTH_FRACTION` as long as the longest one
    left compete on brightness: the thecal sac runs the length of the lumbar spine, while
    fluid elsewhere that passes the same thresholds (a fluid-filled bowel loop, the
    bladder, a cyst: bright on the fluid image, dark on T1) is about as tall as it is deep.
    With the pelvis and bowel in view (tuning seeds 60 and 85, 1 mm) a bowel loop 40 mm
    tall at the image's front edge was brighter than the 280 mm canal, whose partial-volumed
    rim lowers its median, and was taken for it: no body was found.
    """
    labels, n = ndimage.label(candidates)
    if n == 0:
        return candidates
    index = np.arange(1, n + 1)
    boxes = ndimage.find_objects(labels)
    lengths = np.array([(b[1].stop - b[1].start) * spacing[1] for b in boxes])
    long_enough = lengths >= min_length_mm
    if not long_enough.any():
        return labels == int(np.argmax(lengths)) + 1
    shaped = np.zeros(n, bool)
    for label in index[long_enough]:
        box = boxes[label - 1]
        shaped[label - 1] = _tube_widths(labels[box] == label, spacing)[1] <= max_depth_mm
    if not shaped.any():
        return np.zeros(candidates.shape, bool)
    competing = shaped & (lengths >= MIN_LENGTH_FRACTION * lengths[shaped].max())
    brightness = np.full(n, -np.inf)
    for label in index[competing]:  # per box: ndimage.median sorts the whole volume
        box = boxes[label - 1]
        brightness[label - 1] = np.median(fluid[box][labels[box] == label])
    best = int(np.argmax(brightness)) + 1
    return labels == best


def _tube_widths(component: NDArray[np.bool_], spacing: NDArray) -> tuple[float, float]:
    """Median left-right and anterior-posterior extent (mm) of a component per SI row."""
    lr = component.any(axis=0)
    ap = component.any(axis=2)
    rows = lr.any(axis=1)
    return (
        float(np.median(lr.sum(axis=1)[rows])) * float(spacing[2]),
        float(np.median(ap.sum(axis=0)[rows])) * float(spacing[0]),
    )


def _continued(
    column: NDArray[np.bool_], loose: NDArray[np.bool_], spacing: NDArray, max_depth_mm: float
) -> NDArray[np.bool_]:
    """The CSF column continued through CSF with a lower fluid/T1 ratio connected to it.

    Where the fluid image is clipped (an 8-bit window) or the CSF is partial-volumed around
    the cord, the CSF's fluid/T1 ratio falls below ``csf_ratio_min`` over long stretches
    (tuning seed 53: 1.8-2.4 times the tissue's above the conus, against 2.5): the column
    stopped there, its wall was held constant above and the bodies of T11-L1, 10-12 mm in
    front of it, were dropped as too far from the canal. The ``loose`` candidates (still as
    bright on the fluid image, with at least :data:`CONTINUED_RATIO_FRACTION` of the ratio)
    connected to the column are added, unless that makes the column deeper than
    ``max_depth_mm`` (merged with other fluid in front of or behind it).
    """
    if not column.any():
        return column
    labels, _ = ndimage.label(loose | column)
    grown = np.isin(labels, np.unique(labels[column]))
    box = ndimage.find_objects(grown.astype(np.uint8))[0]
    if _tube_widths(grown[box], spacing)[1] > max_depth_mm:
        return column
    return grown


def outside_air(tissue: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Air around the body: voxels that are not tissue, connected to the front or back face.

    Dark voxels inside the body (cortical bone, ligaments, flow voids) are enclosed by
    tissue and do not count; the air behind the back and in front of the abdomen reaches
    the image's anterior or posterior face.
    """
    labels, n = ndimage.label(~tissue)
    at_face = np.zeros(n + 1, bool)
    at_face[labels[0]] = True
    at_face[labels[-1]] = True
    at_face[0] = False
    return at_face[labels]


def _skin_reach(spacing: NDArray) -> int:
    """:data:`SKIN_DISTANCE_MM` in AP voxels (at least one)."""
    return max(1, round(SKIN_DISTANCE_MM / float(spacing[0])))


def _under_skin(component: NDArray[np.bool_], air: NDArray[np.bool_], spacing: NDArray) -> bool:
    """Whether the air around the body lies within :data:`SKIN_DISTANCE_MM` of ``component``.

    ``component`` and ``air`` (:func:`outside_air`) are cut to the component's SI and LR
    extent (the whole AP range): the band :data:`SKIN_DISTANCE_MM` in front of and behind
    it is air in more than :data:`SKIN_AIR_FRACTION` of its voxels for a fat sheet under
    the skin, and none for the thecal sac.
    """
    reach = _skin_reach(spacing)
    line = np.ones((2 * reach + 1, 1, 1), bool)
    band = ndimage.binary_dilation(component, line) & ~component
    return bool(band.any()) and float(air[band].mean()) > SKIN_AIR_FRACTION


def _brightest_tube(
    image: Array,
    tissue: NDArray[np.bool_],
    spacing: NDArray,
    params: AutosegParameters,
    skin_check: bool = False,
) -> NDArray[np.bool_]:
    """The CSF column as the longest tube of the brightest voxels of ``image``.

    ``image`` is the fluid image alone (no T1 to tell CSF from fat), or the fluid/T1 ratio
    when the fixed CSF thresholds found nothing (8-bit windows that clip the CSF, unusual
    contrast tables). Without a T1, fat (bright on fast spin-echo T2) competes with CSF. The
    image is cut at
    decreasing percentiles of its tissue (:data:`FLUID_ONLY_PERCENTILES`); at each cut the
    components at least ``canal_min_length_mm`` long and shaped like the thecal sac (per SI
    row at most ``canal_max_width_mm`` wide left to right, and between
    ``canal_min_depth_mm`` and ``canal_max_width_mm`` deep: subcutaneous fat is a thin
    sheet, a cut low enough to merge the canal with its surroundings makes a wide blob; a
    component spanning the slab from one side to the other is a sheet too) are candidates.
    The brightest cut's candidate wins unless a lower cut gives one
    :data:`LONGER_FACTOR` times longer (the CSF broken by nerve roots or partial volume at
    the brightest cut) or, with ``canal_longer_mm``, one reaching that much further
    caudally with the same top (the dimmer sacral sac; :func:`_replaces`). With
    ``skin_check`` (no T1), a candidate with air close in front of or behind it is fat
    under the skin and is skipped (:func:`_under_skin`). Returns an empty mask when none
    qualifies (the caller then refuses).
    """
    if not tissue.any():
        return np.zeros(image.shape, bool)
    cuts = np.percentile(image[tissue], FLUID_ONLY_PERCENTILES)
    best = np.zeros(image.shape, bool)
    best_box: tuple[slice, ...] | None = None
    air = outside_air(tissue) if skin_check else None
    reach = _skin_reach(spacing)
    for labels, parts, offset in _nested_labels(image, tissue, cuts, spacing, params):
        for label, part in enumerate(parts, start=1):
            if part is None:
                continue
            length = (part[1].stop - part[1].start) * float(spacing[1])
            if length < params.canal_min_length_mm:
                continue
            box = tuple(slice(s.start + o, s.stop + o) for s, o in zip(part, offset, strict=True))
            if best_box is not None and not _replaces(box[1], best_box[1], spacing, params):
                continue
            if box[2].start == 0 and box[2].stop == image.shape[2]:
                continue  # across the whole slab: a sheet (fat), not a tube
            component = labels[part] == label
            lr, ap = _tube_widths(component, spacing)
            if lr <= params.canal_max_width_mm and (
                params.canal_min_depth_mm <= ap <= params.canal_max_width_mm
            ):
                # the AP rows within reach of the component: the band and the air read
                # there are those of the whole AP range (nothing beyond reaches the band)
                rows = slice(max(box[0].start - reach, 0), box[0].stop + reach)
                whole_ap = (rows, box[1], box[2])
                if air is not None:
                    around = np.zeros(air[whole_ap].shape, bool)
                    start = box[0].start - rows.start
                    around[start : start + component.shape[0]] = component
                    if _under_skin(around, air[whole_ap], spacing):
                        continue
                best = np.zeros(image.shape, bool)
                best[box] = component
                best_box = box
    return best


def _replaces(rows: slice, best_rows: slice, spacing: NDArray, params: AutosegParameters) -> bool:
    """Whether a tube over SI ``rows`` at a lower cut replaces the best one, over ``best_rows``.

    Rows run caudal to cranial (canonical axis 1 is superior: ``start`` is the caudal end).
    It does when :data:`LONGER_FACTOR` times longer, or, with ``canal_longer_mm`` above 0,
    when its caudal end lies at least that many mm below the best tube's and its cranial end
    within :data:`CAUDAL_TOP_TOLERANCE_MM` of the best tube's: the dimmer sacral sac added
    below a canal that runs to the image's upper edge (as on every real spine), which a
    factor of the whole length would ask a third of that length of. Tissue taken on above
    the canal's top does not count (pelvis tuning seed 107: 61 mm more at the top, T11 lost).

    >>> spacing = np.array([1.0, 1.0, 4.0])
    >>> params = AutosegParameters(canal_longer_mm=60.0)
    >>> _replaces(slice(0, 300), slice(60, 300), spacing, params)  # the sac below: 60 mm
    True
    >>> _replaces(slice(60, 360), slice(60, 300), spacing, params)  # 60 mm more at the top
    False
    >>> _replaces(slice(0, 311), slice(60, 300), spacing, params)  # the top 11 mm higher
    False
    >>> _replaces(slice(0, 305), slice(60, 300), spacing, params)  # the top 5 mm higher
    True
    >>> _replaces(slice(0, 300), slice(60, 300), spacing, AutosegParameters(canal_longer_mm=0))
    False
    >>> _replaces(slice(60, 372), slice(60, 300), spacing, params)  # 1.3 times longer
    True
    """
    size = float(spacing[1])
    length = (rows.stop - rows.start) * size
    if length >= LONGER_FACTOR * (best_rows.stop - best_rows.start) * size:
        return True
    if params.canal_longer_mm <= 0:
        return False
    lower = (best_rows.start - rows.start) * size
    top_moved = abs(rows.stop - best_rows.stop) * size
    return lower >= params.canal_longer_mm and top_moved <= CAUDAL_TOP_TOLERANCE_MM


def _nested_labels(
    image: Array,
    tissue: NDArray[np.bool_],
    cuts: NDArray[np.float64],
    spacing: NDArray,
    params: AutosegParameters,
) -> list[tuple[NDArray[np.int32], list[tuple[slice, ...] | None], list[int]]]:
    """The components of ``tissue & (image > cut)`` per cut that may be candidates of
    :func:`_brightest_tube`: labels on a box of the grid, their boxes in it
    (``find_objects``) and the box's corner.

    A cut's components lie within those of every lower cut and are no longer (SI) than
    the one holding them: from the lowest cut up, each cut is labelled within the box of
    the next lower cut's components at least ``canal_min_length_mm`` long, its voxels
    outside those left out. The components kept are the whole grid's that may reach that
    length, numbered in the same raster order (a box's order is the whole grid's); the
    lowest cut is labelled on the whole grid.
    """
    out: dict[int, tuple[NDArray[np.int32], list[tuple[slice, ...] | None], list[int]]] = {}
    within: NDArray[np.bool_] = tissue
    where: tuple[slice, ...] = tuple(slice(0, n) for n in image.shape)
    for k in np.argsort(cuts, kind="stable"):
        labels = np.zeros(within.shape, np.int32)
        boxes: list[tuple[slice, ...] | None] = []
        if within.size:  # else no component of the lower cut is long enough
            labels, _ = ndimage.label(within & (image[where] > cuts[k]))
            boxes = ndimage.find_objects(labels)
        out[int(k)] = labels, boxes, [s.start for s in where]
        long = np.zeros(len(boxes) + 1, bool)
        long[1:] = [
            box is not None
            and (box[1].stop - box[1].start) * float(spacing[1]) >= params.canal_min_length_mm
            for box in boxes
        ]
        kept = long[labels]
        inner = occupied_box(kept)
        within = kept[inner]
        where = tuple(
            slice(w.start + i.start, w.start + i.stop) for w, i in zip(where, inner, strict=True)
        )
    return [out[k] for k in range(len(cuts))]


def _thin_csf_added(tube: NDArray[np.bool_], image: Array, spacing: NDArray) -> NDArray[np.bool_]:
    """The tube plus the CSF running in front of the cord, which the cord cuts off from it.

    Above the conus the cord splits the thecal sac's CSF into a posterior and an anterior
    column; on 4-5 mm sagittal slices the CSF beside the cord is partial-volumed and the two
    are not connected. Bright voxels (at least :data:`THIN_CSF_FRACTION` of the tube's
    median) within :data:`CORD_GAP_MM` in front of the tube, forming a column at least
    :data:`THIN_CSF_MIN_LENGTH_MM` long, are added (a disc's nucleus is bright too but only
    as tall as the disc). Without them the canal's wall would be read at the cord's back.
    """
    if not tube.any():
        return tube
    level = THIN_CSF_FRACTION * float(np.median(image[tube]))
    reach = max(1, round(CORD_GAP_MM / float(spacing[0])))
    line = np.zeros((2 * reach + 1, 1, 1), bool)
    line[reach:] = True  # shifts the tube anterior (towards higher AP indices)
    # Read on the tube's box widened by the reach along AP, which holds the whole band:
    # its components and their order are those of the whole array.
    near = grown_box(occupied_box(tube), (reach, 0, 0), tube.shape)
    front_band = ndimage.binary_dilation(tube[near], line) & ~tube[near]
    labels, _ = ndimage.label((image[near] > level) & front_band)
    out = tube.copy()
    inside = out[near]
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None and (box[1].stop - box[1].start) * spacing[1] >= THIN_CSF_MIN_LENGTH_MM:
            inside[box] |= labels[box] == label
    return out


def find_canal(
    t1: Array | None, fluid: Array, spacing: NDArray, params: AutosegParameters
) -> Canal:
    """Locate the CSF column: bright on the fluid image, dark on T1, long along SI.

    Without a T1 (``t1`` None) the CSF is the longest bright tube on the fluid image; with
    one, when the fixed thresholds find no column, the longest bright tube on the fluid/T1
    ratio (see :func:`_brightest_tube`).

    Raises
    ------
    BmetoolkitError
        No CSF column of at least ``canal_min_length_mm`` was found.
    """
    if t1 is None:
        tissue = tissue_mask(fluid, params.tissue_fraction)
        tube = _brightest_tube(fluid, tissue, spacing, params, skin_check=True)
        column = _thin_csf_added(tube, fluid, spacing)
    else:
        tissue, ratio = _fluid_ratio(t1, fluid, params)
        candidates = _csf_candidates(tissue, ratio, fluid, params)
        column = _canal_column(
            candidates, fluid, spacing, params.canal_min_length_mm, params.canal_max_width_mm
        )
        if _si_length(column, spacing) < params.canal_min_length_mm:
            column = _brightest_tube(ratio, tissue, spacing, params)
    si_rows = np.flatnonzero(column.any(axis=(0, 2)))
    length = _si_length(column, spacing)
    if length < params.canal_min_length_mm:
        raise BmetoolkitError(
            f"no spinal canal found: the longest CSF-like column spans {length:.0f} mm "
            f"(at least {params.canal_min_length_mm:.0f} mm needed)",
            hint="automatic segmentation needs a sagittal T2 or STIR showing the thecal sac; "
            "pass a vertebra label map instead",
        )
    per_slice = column.sum(axis=(0, 1)).astype(np.float64)
    midline = float(np.average(np.arange(column.shape[2]), weights=per_slice))
    if t1 is not None:
        # The wall is read on the column continued through CSF of a lower ratio; its rows
        # (where the marrow reference is measured, and the sac's end for the levels) stay
        # those of the CSF found by the thresholds: continued above the top body, the rows
        # took in the tissue there and lowered the reference (tuning seed 50: a "body" of
        # that tissue above T11).
        loose = _csf_candidates(tissue, ratio, fluid, params, CONTINUED_RATIO_FRACTION)
        column = _continued(column, loose, spacing, params.canal_max_width_mm)
    front = _front(column, midline, spacing, params, extrapolate=t1 is None)
    return Canal(front, midline, (int(si_rows[0]), int(si_rows[-1])), column)


def _front(
    column: NDArray[np.bool_],
    midline: float,
    spacing: NDArray,
    params: AutosegParameters,
    extrapolate: bool = False,
) -> NDArray[np.float64]:
    """Anterior wall of the CSF per SI row near the midline, smoothed and interpolated.

    Only the slices within ``FRONT_HALF_WIDTH_MM`` of the midline count: laterally the CSF
    runs out into the neural foramina (and, in the neck, next to the vertebral arteries),
    which lie further anterior than the canal's wall behind the bodies. Above the conus the
    cord splits the CSF into a posterior and an anterior run; gaps along AP up to
    :data:`CORD_GAP_MM` are closed first, so the front is the anterior CSF's wall, not the
    cord's back.
    """
    half = max(1, round(FRONT_HALF_WIDTH_MM / spacing[2]))
    centre = round(midline)
    slab = column[:, :, max(centre - half, 0) : centre + half + 1]
    reach = max(1, round(CORD_GAP_MM / spacing[0] / 2))
    slab = ndimage.binary_closing(
        np.pad(slab, ((reach, reach), (0, 0), (0, 0))), structure=np.ones((2 * reach + 1, 1, 1))
    )[reach:-reach]
    anterior = _run_front(slab)
    found = np.flatnonzero(anterior >= 0)
    size = max(1, round(params.canal_smooth_mm / spacing[1]) | 1)
    smoothed = ndimage.median_filter(anterior[found], size=size, mode="nearest")
    rows = np.arange(column.shape[1], dtype=np.float64)
    front = np.interp(rows, found, smoothed)
    if extrapolate:
        front = _extrapolated(front, found, spacing)
    return front


def _extrapolated(
    front: NDArray[np.float64], found: NDArray[np.intp], spacing: NDArray
) -> NDArray[np.float64]:
    """``front`` continued linearly beyond the rows with CSF, along the canal's last stretch.

    The thecal sac ends at S1-S2, above the bottom of the sacrum, which lies further back
    along the lordosis: a wall held constant below the sac's end cut S1's posterior part
    off (the tilt that names it was then lost). The slope is fitted over the last
    :data:`EXTRAPOLATE_FIT_MM` of rows at each end.
    """
    if found.size < 2:
        return front
    reach = max(2, round(EXTRAPOLATE_FIT_MM / float(spacing[1])))
    rows = np.arange(front.size, dtype=np.float64)
    out = front.copy()
    for end, beyond in ((found[:reach], rows < found[0]), (found[-reach:], rows > found[-1])):
        if end.size >= 2 and beyond.any():
            slope, offset = np.polyfit(end.astype(np.float64), front[end], 1)
            out[beyond] = slope * rows[beyond] + offset
    return out


def _run_front(slab: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per SI row, the anterior end of the CSF run through the row's median AP position.

    Following the run from the canal's centre (rather than taking the most anterior CSF
    voxel) ignores bright blobs touching the canal further anterior. -1 where the row
    holds no CSF.
    """
    n_ap, n_si, _ = slab.shape
    ap = np.arange(n_ap)[:, None, None]
    counts = slab.sum(axis=(0, 2))
    cumulative = np.cumsum(slab.sum(axis=2), axis=0)
    centre = np.argmax(cumulative >= (counts[None, :] + 1) // 2, axis=0)  # median AP per row
    inside = slab[centre, np.arange(n_si), :]  # (n_si, n_lr): the run holds the centre
    beyond = (~slab) & (ap > centre[None, :, None])
    end = np.where(beyond.any(axis=0), np.argmax(beyond, axis=0), n_ap) - 1.0
    end = np.where(inside & (counts[:, None] > 0), end, np.nan)
    with np.errstate(all="ignore"):
        front = np.nanmedian(np.where(np.isnan(end).all(axis=1, keepdims=True), -1.0, end), axis=1)
    return np.where(counts > 0, front, -1.0)


def band_distance(canal: Canal, shape: tuple[int, int, int], spacing: NDArray) -> Array:
    """Distance (mm) anterior of the CSF's anterior wall, for every (AP, SI) position."""
    ap = np.arange(shape[0], dtype=np.float32)[:, None]
    return ((ap - canal.front[None, :].astype(np.float32)) * np.float32(spacing[0])).astype(
        np.float32
    )
