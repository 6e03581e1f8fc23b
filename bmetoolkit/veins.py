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
  body's centroid along its SI axis);
- **from the posterior wall forward**: its posterior end lies within :data:`WALL_MM` (or one
  voxel, if coarser) of the posterior edge of the body's marrow at its height and side, and
  its anterior end no further than :data:`MAX_DEPTH` of the body's AP depth from that edge;
- **in the midline**: its centre lies within :data:`MIDLINE_FRACTION` of the body's LR
  half-width (or half a voxel) of the body's centre.

Every measure is relative to the body (its height, depth and width) or to the voxel, and
the signal decision stays the scan's own (the region already passed the edema decision on
this scan's normal-marrow distribution): no fixed contrast ratio enters. Central edema and
fractures fill more of the body's height, endplate edema touches an endplate, and
posterior-wall edema that is not a thin forward channel from the midline is kept. Bodies
whose voxels are coarser than :data:`~bmetoolkit.spine.vertebra.COARSE_SI_MM` along SI cannot
show a vein's thickness and are left alone.

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

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.params import Parameters
from bmetoolkit.ratios import regions_summary
from bmetoolkit.segment import FACE_NEIGHBOURS
from bmetoolkit.spine.vertebra import COARSE_SI_MM, BodyGeometry

__all__ = [
    "ENDPLATE_CLEARANCE",
    "MAX_DEPTH",
    "MIDLINE_FRACTION",
    "MIN_ELONGATION",
    "WALL_MM",
    "basivertebral_veins",
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
    for body in bodies:
        if body.si_extent_mm > COARSE_SI_MM or body.height_mm <= 0:
            continue
        numbers = flat[body.index]
        for number in np.unique(numbers[numbers > 0]):
            own = numbers == number
            if sizes[number] != np.count_nonzero(own):
                continue  # a region reaching beyond this body is not its vein
            elsewhere = placed is not None and bool(placed[body.index[own]].any())
            if _is_vein(body, own, voxel_axes, params, elsewhere):
                out[body.index[own]] = True
    return veins


def _is_vein(
    body: BodyGeometry,
    own: NDArray[np.bool_],
    voxel_axes: NDArray[np.floating],
    params: Parameters,
    seen: bool = False,
) -> bool:
    """Whether the body voxels ``own`` (one region) are shaped and placed like its vein;
    ``seen``: another scan recognised the vein there, so its LR centre and posterior end
    are not tested (its thinness, height in the body and depth are)."""
    height = body.height_mm
    ap, lr, si = body.ap[own], body.lr[own], body.si[own]
    voxel_ap, voxel_lr = np.abs(body.axes[:2] @ np.asarray(voxel_axes, float)).sum(axis=1)
    thickness = float(si.max() - si.min()) + body.si_extent_mm
    length = float(ap.max() - ap.min()) + float(voxel_ap)
    if thickness > params.vein_max_height_frac * height or length < MIN_ELONGATION * thickness:
        return False
    middle = (0.5 - ENDPLATE_CLEARANCE) * height
    if float(np.abs(si).max()) > middle:
        return False
    half_width = float(np.abs(body.lr).max())
    off = abs(float(lr.mean())) > max(MIDLINE_FRACTION * half_width, float(voxel_lr) / 2)
    if off and not seen:
        return False
    centre = float(si.mean())
    near = (
        body.marrow
        & (np.abs(body.si - centre) <= EDGE_BAND * height)
        & (body.lr >= lr.min() - voxel_lr / 2)
        & (body.lr <= lr.max() + voxel_lr / 2)
    )
    if not near.any():
        return False
    edge = float(body.ap[near].min())
    if float(ap.min()) - edge > max(WALL_MM, float(voxel_ap)) and not seen:
        return False
    depth = 2 * body.ap_half_mm
    return float(ap.max()) - edge <= MAX_DEPTH * depth


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
    if summary["count"]:
        notes.append(
            f"{summary['count']} thin fluid-bright channel(s) ({summary['volume_ml']:.2f} mL) "
            "running forward from the midline of a body's posterior wall at mid-height are "
            "basivertebral veins, not edema, and are not counted; set vein_max_height_frac "
            "to 0 to count them"
        )
    return bme & ~veins, summary, notes
