"""Basivertebral veins: fluid-bright marrow that is blood in a channel, not edema.

Every vertebral body holds a basivertebral vein: slow-flowing blood that enters through a
foramen in the midline of the posterior wall at the body's mid-height and runs forward
(often Y-shaped) for a third to a half of the body's depth, a few mm tall. It is bright on
STIR, fat-suppressed T2 and T2 and iso- to hypointense on T1: on the ratios alone it is
edema, and readers ignore it by where it lies and how it is shaped, not by its signal.

A connected edema region (face neighbours) is recognised as a basivertebral vein when all
of these hold in its body's own frame (:class:`~bmetoolkit.spine.vertebra.BodyGeometry`):

- **thin in SI**: its extent along the body's SI axis (voxel edges) is at most
  ``params.vein_max_height_frac`` of the body's height, and its extent along AP at least
  :data:`MIN_ELONGATION` times that (a channel running forward, not a blob);
- **at mid-height, away from both endplates**: every voxel lies at least
  :data:`ENDPLATE_CLEARANCE` of the body's height from either endplate (measured from the
  body's centroid along its SI axis; for a body whose superior or inferior end the image
  cuts, from its uncut endplate, with the height of the nearest whole body:
  :func:`body_frames`);
- **from the posterior wall forward**: its posterior end lies within :data:`WALL_MM` (or one
  voxel, if coarser) of the posterior edge of the body's marrow at its height and side, and
  its anterior end no further than :data:`MAX_DEPTH` of the body's AP depth from that edge.
  That edge is the more anterior of the edge at the region's height and the wall elsewhere
  (the median, over the body's other SI rows, of each row's posterior marrow edge, over the
  region's LR range): the vein enters through a foramen in the posterior cortex, and an
  outline that bulges through the opening (an automatic body whose marrow mask ran on into
  the epidural fat there) puts the edge at the vein's height a few mm behind the wall;
- **in the midline**: its centre lies within :data:`MIDLINE_FRACTION` of the body's LR
  half-width (or half a voxel) of the body's centre.

Every measure is relative to the body (its height, depth and width) or to the voxel, and
the signal decision stays the scan's own (the region already passed the edema decision on
this scan's normal-marrow distribution): no fixed contrast ratio enters. Central edema and
fractures fill more of the body's height, endplate edema touches an endplate, and
posterior-wall edema that is not a thin forward channel from the midline is kept. Bodies
whose voxels are coarser than :data:`~bmetoolkit.spine.vertebra.COARSE_SI_MM` along SI cannot
show a vein's thickness and are left alone, and so are bodies cut by the image when no
whole body gives their height (a note says so).

A recognised vein is left out of the edema (and of Modic type I) and reported apart, as
focal spots are (``checks.basivertebral_veins`` and a note).

Examples
--------
>>> import numpy as np
>>> from bmetoolkit.spine.labels import VertebraLabels
>>> from bmetoolkit.spine.vertebra import body_geometries
>>> from bmetoolkit.volume import Volume
>>> data = np.zeros((50, 40, 36), np.uint8)  # x: LR, y: AP (anterior +), z: SI (1 mm, RAS)
>>> data[5:45, 5:35, 5:31] = 22  # a 40 x 30 x 26 mm body
>>> (body,) = body_geometries(
...     VertebraLabels(Volume(data, np.eye(4), kind="label"), {22: "L3"}, "verse"), cortex_mm=1.0
... )
>>> bme = np.zeros(data.shape, bool)
>>> bme[22:28, 7:18, 17:20] = True  # 3 mm tall, from the posterior wall 11 mm forward
>>> bme[10:20, 20:30, 8:22] = True  # an edema 14 mm tall
>>> kept, summary, notes = drop_basivertebral_veins(bme, [body], np.eye(3), 1.0, Parameters())
>>> summary, bool(kept[24, 10, 18]), bool(kept[15, 25, 15])
({'count': 1, 'volume_ml': 0.198}, False, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.params import Parameters
from bmetoolkit.ratios import regions_summary
from bmetoolkit.segment import FACE_NEIGHBOURS
from bmetoolkit.spine.vertebra import CENTRAL_FRACTION, COARSE_SI_MM, BodyGeometry

__all__ = [
    "CUT_OFFSET",
    "ENDPLATE_CLEARANCE",
    "MAX_DEPTH",
    "MIDLINE_FRACTION",
    "MIN_ELONGATION",
    "WALL_MM",
    "VeinFrame",
    "basivertebral_veins",
    "body_frames",
    "cut_end",
    "drop_basivertebral_veins",
]

#: A vein runs forward: its AP extent is at least this many times its SI extent (on real
#: sagittal T2 often only its foramen shows, a bright notch in the posterior wall about as
#: long as it is tall; a tall blob at the wall is not a vein).
MIN_ELONGATION = 1.0
#: Every voxel of a vein lies within ``0.5 - ENDPLATE_CLEARANCE`` of the body height of the
#: body's centroid along SI, i.e. at least this fraction of the height from either endplate
#: (the vein runs at 40-60 % of the height; the rest is room for tilt and blur). Measured
#: from the centroid, not per column: at the body's rim the columns are short and their
#: endplate surfaces follow the outline, not the endplates.
ENDPLATE_CLEARANCE = 0.2
#: A vein's posterior end lies within this (mm) of the posterior edge of the marrow.
WALL_MM = 3.0
#: A vein's anterior end lies at most this fraction of the body's AP depth from that edge
#: (the vein reaches a third to a half of the depth; the rest is room for its Y branches).
MAX_DEPTH = 0.6
#: A vein's LR centre lies within this fraction of the body's LR half-width of its centre
#: (or within half a voxel: a midline channel seen on thick sagittal slices).
MIDLINE_FRACTION = 0.15
#: Marrow within this fraction of the body height of a region's SI centre gives the
#: posterior edge of the marrow at its height.
EDGE_BAND = 0.1
#: A body's voxels on the edge of the image lie, on average, beyond this fraction of its
#: visible SI extent from its centroid when the image cuts across its superior or inferior
#: end (about half of it: the cut face is that end); a cut at its side puts them about 0.
CUT_OFFSET = 0.25


@dataclass(frozen=True)
class VeinFrame:
    """What a body's vein is judged against.

    Attributes
    ----------
    height_mm : float
        The body's height (mm).
    mid_si : float
        Its mid-height: SI coordinate (mm) in the body frame (0, the centroid, for a whole
        body).
    cut : str or None
        ``"superior"`` or ``"inferior"`` when the edge of the image cuts that end of the
        body (its measured height is then not its height), else None.
    known : bool
        False when the body is cut and no whole body in the image gives its height: its
        mid-height is not known, and no vein is recognised in it.
    """

    height_mm: float
    mid_si: float = 0.0
    cut: str | None = None
    known: bool = True


def cut_end(body: BodyGeometry, shape: tuple[int, ...]) -> str | None:
    """Which end of ``body`` along its SI axis the edge of the image cuts, if any.

    Parameters
    ----------
    body : BodyGeometry
    shape : tuple of int
        The grid the body's flat indices refer to.

    Returns
    -------
    str or None
        ``"superior"`` or ``"inferior"`` when the body's voxels on the edge of the grid lie,
        on average, beyond a quarter of its visible SI extent from its centroid on that
        side (a cut across the body); None when the body does not reach the edge or
        reaches it at a side (a sagittal slab or field of view cutting it in LR or AP
        leaves its height whole).
    """
    if not body.touches_border:
        return None
    ijk = np.stack(np.unravel_index(body.index, shape), axis=1)
    edge = np.any((ijk == 0) | (ijk == np.asarray(shape) - 1), axis=1)
    if not edge.any():
        return None
    position = float(body.si[edge].mean())
    span = float(body.si.max() - body.si.min())
    if position > CUT_OFFSET * span:
        return "superior"
    if position < -CUT_OFFSET * span:
        return "inferior"
    return None


def body_frames(bodies: Sequence[BodyGeometry], shape: tuple[int, ...]) -> list[VeinFrame]:
    """Per body, the height and mid-height its vein is judged against.

    A whole body: its own height, mid-height at its centroid. A body whose superior or
    inferior end the image cuts (:func:`cut_end`; the endplate table's
    ``body_partly_outside``): the measured height is only what is left in the image, so
    its height is taken as the larger of that and the height of the nearest whole body
    (centroid distance; neighbouring bodies differ by a few mm), and its mid-height lies
    half that height from its uncut endplate (the median surface of its central columns,
    as the height is measured). With no whole body in the image, its mid-height is not
    known (``known`` False): no guess is made.

    Parameters
    ----------
    bodies : sequence of BodyGeometry
    shape : tuple of int
        The grid the bodies' flat indices refer to.

    Returns
    -------
    list of VeinFrame
        In the order of ``bodies``.
    """
    cuts = [cut_end(body, shape) for body in bodies]
    whole = [
        body
        for body, cut in zip(bodies, cuts, strict=True)
        if cut is None and body.height_mm > 0 and body.si_extent_mm <= COARSE_SI_MM
    ]
    frames = []
    for body, cut in zip(bodies, cuts, strict=True):
        if cut is None:
            frames.append(VeinFrame(body.height_mm))
            continue
        if not whole:
            frames.append(VeinFrame(body.height_mm, cut=cut, known=False))
            continue
        nearest = min(
            whole, key=lambda other: np.linalg.norm(other.centroid_ras - body.centroid_ras)
        )
        height = max(body.height_mm, nearest.height_mm)
        half_si = body.si_extent_mm / 2
        lr_half = float(np.abs(body.lr).max())
        central = (np.abs(body.ap - body.ap_center_mm) <= CENTRAL_FRACTION * body.ap_half_mm) & (
            np.abs(body.lr) <= CENTRAL_FRACTION * lr_half
        )
        if not central.any():
            central = np.ones(body.si.shape, bool)
        if cut == "superior":
            uncut = float(np.median((body.si - body.depth_inferior)[central])) + half_si
            mid = uncut + height / 2
        else:
            uncut = float(np.median((body.si + body.depth_superior)[central])) - half_si
            mid = uncut - height / 2
        frames.append(VeinFrame(height, mid, cut))
    return frames


def basivertebral_veins(
    bme: NDArray[np.bool_],
    bodies: Sequence[BodyGeometry],
    voxel_axes: NDArray[np.floating],
    params: Parameters,
    seen: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """The regions of ``bme`` that are basivertebral veins (see the module).

    Parameters
    ----------
    bme : ndarray of bool
        Edema on the grid the bodies' flat indices refer to.
    bodies : sequence of BodyGeometry
    voxel_axes : ndarray, shape (3, 3)
        The grid's voxel edges in RAS mm (columns: one voxel step along each grid axis; the
        affine's upper-left block).
    params : Parameters
        ``vein_max_height_frac`` (0 finds none).
    seen : ndarray of bool, optional
        Veins recognised on another scan of the same spine, brought onto this grid (the
        follow-up's joint decision, :mod:`bmetoolkit.followup.joint`). A whole region in
        one body that overlaps them is a vein when it is shaped like one here (thin,
        running forward, at mid-height, no deeper than a vein), wherever this scan puts its
        LR centre and posterior end: on 4 mm sagittal slices a vein's centre moves by up to
        half a slice, and its detected posterior end by a few mm, from one scan to the next,
        and the other scan saw it in the midline at the wall.

    Returns
    -------
    ndarray of bool
        The union of the regions recognised as veins.
    """
    veins = np.zeros(bme.shape, bool)
    if params.vein_max_height_frac <= 0 or not bme.any():
        return veins
    from scipy import ndimage

    labels, _ = ndimage.label(bme, structure=FACE_NEIGHBOURS)
    flat = labels.reshape(-1)
    sizes = np.bincount(flat)
    out = veins.reshape(-1)
    placed = None if seen is None else np.asarray(seen, bool).reshape(-1)
    frames = body_frames(bodies, bme.shape)
    for body, frame in zip(bodies, frames, strict=True):
        if body.si_extent_mm > COARSE_SI_MM or frame.height_mm <= 0 or not frame.known:
            continue
        numbers = flat[body.index]
        for number in np.unique(numbers[numbers > 0]):
            own = numbers == number
            if sizes[number] != np.count_nonzero(own):
                continue  # a region reaching beyond this body is not its vein
            elsewhere = placed is not None and bool(placed[body.index[own]].any())
            if _is_vein(body, frame, own, voxel_axes, params, elsewhere):
                out[body.index[own]] = True
    return veins


def _is_vein(
    body: BodyGeometry,
    frame: VeinFrame,
    own: NDArray[np.bool_],
    voxel_axes: NDArray[np.floating],
    params: Parameters,
    seen: bool = False,
) -> bool:
    """Whether the body voxels ``own`` (one region) are shaped and placed like its vein,
    judged against ``frame`` (the body's height and mid-height); ``seen``: another scan
    recognised the vein there, so its LR centre and posterior end are not tested (its
    thinness, height in the body and depth are)."""
    height = frame.height_mm
    ap, lr, si = body.ap[own], body.lr[own], body.si[own]
    voxel_ap, voxel_lr = np.abs(body.axes[:2] @ np.asarray(voxel_axes, float)).sum(axis=1)
    thickness = float(si.max() - si.min()) + body.si_extent_mm
    length = float(ap.max() - ap.min()) + float(voxel_ap)
    if thickness > params.vein_max_height_frac * height or length < MIN_ELONGATION * thickness:
        return False
    middle = (0.5 - ENDPLATE_CLEARANCE) * height
    if float(np.abs(si - frame.mid_si).max()) > middle:
        return False
    half_width = float(np.abs(body.lr).max())
    off = abs(float(lr.mean())) > max(MIDLINE_FRACTION * half_width, float(voxel_lr) / 2)
    if off and not seen:
        return False
    # The body's marrow over the region's LR range: the wall is read on it.
    side = body.marrow & (body.lr >= lr.min() - voxel_lr / 2) & (body.lr <= lr.max() + voxel_lr / 2)
    near = side & (np.abs(body.si - float(si.mean())) <= EDGE_BAND * height)
    if not near.any():
        return False
    edge = float(body.ap[near].min())
    elsewhere = _wall_elsewhere(body, side, si)
    if elsewhere is not None:  # an outline bulging through the vein's foramen
        edge = max(edge, elsewhere)
    if float(ap.min()) - edge > max(WALL_MM, float(voxel_ap)) and not seen:
        return False
    depth = 2 * body.ap_half_mm
    return float(ap.max()) - edge <= MAX_DEPTH * depth


def _wall_elsewhere(
    body: BodyGeometry, side: NDArray[np.bool_], si: NDArray[np.floating]
) -> float | None:
    """The posterior edge (AP, mm) of the body voxels ``side``: the median, over the body's
    SI rows outside the region's SI extent ``si``, of each row's most posterior voxel
    (None when no such row holds one)."""
    step = max(body.si_extent_mm, 1e-6)
    rows = np.round(body.si[side] / step).astype(np.int64)
    if rows.size == 0:
        return None
    first = int(rows.min())
    edges = np.full(int(rows.max()) - first + 1, np.inf)
    np.minimum.at(edges, rows - first, body.ap[side].astype(np.float64))
    own = np.arange(edges.size) + first
    outside = (own < np.round(float(si.min()) / step)) | (own > np.round(float(si.max()) / step))
    kept = edges[np.isfinite(edges) & outside]
    return float(np.median(kept)) if kept.size else None


def drop_basivertebral_veins(
    bme: NDArray[np.bool_],
    bodies: Sequence[BodyGeometry],
    voxel_axes: NDArray[np.floating],
    voxel_mm3: float,
    params: Parameters,
) -> tuple[NDArray[np.bool_], dict[str, float | int], list[str]]:
    """The edema without its basivertebral veins, what was left out (for
    ``checks.basivertebral_veins``) and a note when anything was."""
    veins = basivertebral_veins(bme, bodies, voxel_axes, params)
    summary = regions_summary(veins, voxel_mm3)
    notes = []
    if params.vein_max_height_frac > 0:
        flat = bme.reshape(-1)
        hidden = [
            body.name
            for body, frame in zip(bodies, body_frames(bodies, bme.shape), strict=True)
            if not frame.known and body.si_extent_mm <= COARSE_SI_MM and flat[body.index].any()
        ]
        if hidden:
            notes.append(
                f"{', '.join(hidden)}: cut by the edge of the image, and no whole body in it "
                "gives the height: the mid-height is not known, so a basivertebral vein there "
                "cannot be told from edema and is counted as edema"
            )
    if summary["count"]:
        notes.append(
            f"{summary['count']} thin fluid-bright channel(s) ({summary['volume_ml']:.2f} mL) "
            "running forward from the midline of a body's posterior wall at mid-height are "
            "basivertebral veins, not edema, and are not counted; set vein_max_height_frac "
            "to 0 to count them"
        )
    return bme & ~veins, summary, notes
