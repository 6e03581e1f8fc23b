"""Geometry of each vertebral body: marrow, its own axes, endplate surfaces, depth, height.

Every body gets a local frame from its shape: the **SI axis** is the direction of least
extent of its voxels (a lumbar body is lower than it is deep or wide; the sign points to the
head), unless that direction lies more than ``MAX_AXIS_TILT_DEG`` from the spine's course
through the body (the line between its neighbours' centroids): a body cut by a thin slab or
the field of view, or an automatic body of odd shape, can be narrower across than high, and
its endplates are never its side walls, so the spine's course is taken instead. An
**automatic** outline (``convention`` ``"automatic"``) between two neighbours is held closer
to the course, within ``AUTOMATIC_MAX_TILT_DEG``: such an outline lacks or holds a few mm
more on one side, which turns its least extent away from the true body's axis (4 degrees
in the median, 10-14 in the worst tenth, on the randomised phantoms' tuning seeds 0-29 and
60-99, 466 bodies between two neighbours), where the line between its neighbours'
centroids moves less; with the course taken beyond 5 degrees those bodies' axes are 2
degrees from the truth in the median and 5 in the worst tenth. At either end of the spine
that line reaches one neighbour only and the rule above is kept. The **AP
axis** is the patient's anterior direction made orthogonal to it, and LR completes the
frame. Voxels are binned into **columns** along SI (bins as fine as the grid allows in AP
and LR); in each column the superior and inferior **endplate surfaces** are the body's
outermost voxel edges, and a voxel's depth below an endplate is the distance from that
surface to the voxel's far edge along SI. The body **height** is the median distance between
the surfaces over the central columns (the height at the body's centre, as the height grades
use). **Marrow** is every body voxel deeper than ``cortex_mm`` beyond the body's outermost
voxel layer: that layer straddles the surface (partial volume with the disc, cortex or
muscle, however thick the voxel: 4 mm across sagittal slices) and is never marrow; the depth
is physical, so anisotropic grids erode correctly.

All arrays are per body voxel, in the order of :attr:`BodyGeometry.index` (flat indices into
the study grid), so measurements are vectorised per body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from scipy import ndimage

from bmetoolkit.concurrency import map_threads
from bmetoolkit.spine.labels import VertebraLabels, label_boxes
from bmetoolkit.volume import Grid, grown_box, occupied_box

__all__ = [
    "CENTRAL_FRACTION",
    "COARSE_SI_MM",
    "BodyGeometry",
    "body_geometries",
    "largest_si_extent",
    "on_grid",
]

#: Columns within this fraction of the half-extents (AP and LR) of the centre give the height.
CENTRAL_FRACTION = 0.3
#: Smallest column bin (mm).
MIN_BIN_MM = 0.5
#: Largest angle (degrees) between a body's SI axis and the spine's course through it (the
#: line between its neighbours' centroids). Wedged bodies, the lumbosacral junction and
#: scoliosis tilt an endplate by about 20 degrees at most against that line (true bodies of
#: the randomised phantoms: 19.5 at most, median 1.3); a shape axis further off is not an
#: endplate's normal (a body cut by a thin slab or an odd automatic outline).
MAX_AXIS_TILT_DEG = 30.0
#: Label conventions whose outlines are not trusted for a body's axis: between two
#: neighbours such a body's SI axis is held within ``AUTOMATIC_MAX_TILT_DEG`` of the spine's
#: course (see the module).
COURSE_AXIS_CONVENTIONS = frozenset({"automatic"})
#: Largest angle (degrees) between such a body's own axis and the spine's course: about as
#: far as a drawn body's axis lies from that line (the bundled sample's label map: 3-6
#: degrees between T12 and L5; true bodies of the randomised phantoms: median 1.3), so a
#: right outline up to 6 degrees off may be read along the course instead (1 degree more).
AUTOMATIC_MAX_TILT_DEG = 5.0
_RAS_ANTERIOR = np.array([0.0, 1.0, 0.0])
_RAS_SUPERIOR = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True, eq=False)
class BodyGeometry:
    """One vertebral body on the study grid.

    Attributes
    ----------
    body_id : int
        Its id in the vertebra label map (VerSe id when the level is known).
    name : str
        Level (``"L4"``) or ``"body N"``.
    level : str or None
        Level name when known.
    index : ndarray of intp
        Flat indices (C order) of the body's voxels in the study grid.
    marrow : ndarray of bool
        Per body voxel: part of the marrow (deeper than the cortex).
    inside_mm : ndarray of float32
        Per body voxel: depth (mm) beyond the body's outermost voxel layer (0 for that
        layer, which partial volume blurs with what lies outside).
    ap, lr, si : ndarray of float32
        Per body voxel: coordinates (mm) in the body frame, origin at the body centroid.
    depth_superior, depth_inferior : ndarray of float32
        Per body voxel: depth (mm) of the voxel's far edge below each endplate surface.
    column : ndarray of int64
        Per body voxel: its column (0 .. n_columns - 1).
    si_extent_mm : float
        Extent (mm) of one voxel along the body's SI axis.
    n_columns : int
        Number of columns, i.e. the endplate footprint in column bins.
    height_mm : float
        Body height at its centre (mm).
    ap_center_mm, ap_half_mm : float
        Centre and half-extent of the body along AP (mm, body frame).
    centroid_ras : ndarray
        Body centroid (RAS mm).
    axes : ndarray
        3 x 3, rows are the AP, LR and SI unit vectors (RAS).
    touches_border : bool
        True when the body reaches the edge of the field of view (it may be cut off).
    endplates : tuple of str
        Endplates facing a disc: ``("superior", "inferior")``, only ``("superior",)`` for S1.
    """

    body_id: int
    name: str
    level: str | None
    index: NDArray[np.intp]
    marrow: NDArray[np.bool_]
    inside_mm: NDArray[np.float32]
    ap: NDArray[np.float32]
    lr: NDArray[np.float32]
    si: NDArray[np.float32]
    depth_superior: NDArray[np.float32]
    depth_inferior: NDArray[np.float32]
    column: NDArray[np.int64]
    si_extent_mm: float
    n_columns: int
    height_mm: float
    ap_center_mm: float
    ap_half_mm: float
    centroid_ras: NDArray[np.float64]
    axes: NDArray[np.float64]
    touches_border: bool
    endplates: tuple[str, ...]

    def depth(self, endplate: str) -> NDArray[np.float32]:
        """Depth below ``"superior"`` or ``"inferior"`` endplate (mm), per body voxel."""
        return self.depth_superior if endplate == "superior" else self.depth_inferior

    @property
    def nearest_depth(self) -> NDArray[np.float32]:
        """Depth (mm) below the nearer endplate facing a disc, per body voxel."""
        if "inferior" in self.endplates:
            return np.minimum(self.depth_superior, self.depth_inferior)
        return self.depth_superior

    @property
    def marrow_index(self) -> NDArray[np.intp]:
        """Flat grid indices of the marrow voxels."""
        return self.index[self.marrow]


def body_geometries(vertebrae: VertebraLabels, *, cortex_mm: float) -> list[BodyGeometry]:
    """Geometry of every body of ``vertebrae``, cranial to caudal.

    An automatic label map's bodies (``vertebrae.convention`` in
    :data:`COURSE_AXIS_CONVENTIONS`) between two neighbours are held within
    :data:`AUTOMATIC_MAX_TILT_DEG` of the spine's course (see the module).

    Parameters
    ----------
    vertebrae : VertebraLabels
        Bodies on the study grid.
    cortex_mm : float
        Marrow starts this far (mm) inside the body surface.

    Examples
    --------
    >>> import numpy as np
    >>> from bmetoolkit.spine.labels import VertebraLabels
    >>> from bmetoolkit.volume import Volume
    >>> data = np.zeros((40, 40, 40), np.uint8)
    >>> data[5:35, 5:35, 10:30] = 23  # a 30 x 30 x 20 mm block, 1 mm voxels, RAS
    >>> labels = VertebraLabels(Volume(data, np.eye(4), kind="label"), {23: "L4"}, "verse")
    >>> (body,) = body_geometries(labels, cortex_mm=1.0)
    >>> body.name, round(body.height_mm, 1), body.n_columns
    ('L4', 20.0, 900)
    >>> float(body.depth_superior.max()), int(body.marrow.sum())
    (20.0, 10816)
    """
    grid = vertebrae.bodies.grid
    data = np.asarray(vertebrae.bodies.data)
    boxes = label_boxes(data, grid.spacing, cortex_mm)
    present = [(body_id, level) for body_id, level in vertebrae.levels.items() if body_id in boxes]
    courses = _spine_courses(
        [_centroid(data[boxes[body_id]] == body_id, boxes[body_id], grid) for body_id, _ in present]
    )
    automatic = vertebrae.convention in COURSE_AXIS_CONVENTIONS
    tilts = [
        AUTOMATIC_MAX_TILT_DEG if automatic and 0 < number < len(present) - 1 else MAX_AXIS_TILT_DEG
        for number in range(len(present))
    ]

    def geometry(item: tuple[int, str | None], course: NDArray | None, tilt: float) -> BodyGeometry:
        body_id, level = item
        region = boxes[body_id]
        endplates = ("superior",) if level == "S1" else ("superior", "inferior")
        return _geometry(
            body_id,
            vertebrae.name(body_id),
            level,
            data[region] == body_id,
            region,
            grid,
            cortex_mm,
            endplates,
            course,
            tilt,
        )

    # each body in a thread, in this order
    return map_threads(
        lambda item: geometry(*item), list(zip(present, courses, tilts, strict=True))
    )


#: Voxels longer than this (mm) along a body's SI axis are too coarse for endplate zones,
#: to measure the endplate's dark shell, or to tell where in the body a change lies.
COARSE_SI_MM = 2.0


def largest_si_extent(bodies: list[BodyGeometry]) -> float:
    """The longest extent (mm) of one voxel along any body's SI axis (0 without bodies)."""
    return max((body.si_extent_mm for body in bodies), default=0.0)


def on_grid(
    bodies: list[BodyGeometry],
    shape: tuple[int, ...],
    values: Callable[[BodyGeometry], ArrayLike],
    *,
    fill: float | bool,
    dtype: DTypeLike,
) -> NDArray:
    """A grid array holding ``values(body)`` at each body's voxels and ``fill`` elsewhere.

    >>> import numpy as np
    >>> from bmetoolkit.spine.labels import VertebraLabels
    >>> from bmetoolkit.volume import Volume
    >>> data = np.zeros((8, 8, 8), np.uint8)
    >>> data[2:6, 2:6, 2:6] = 20
    >>> bodies = body_geometries(
    ...     VertebraLabels(Volume(data, np.eye(4), kind="label"), {20: "L1"}, "verse"),
    ...     cortex_mm=0.5,
    ... )
    >>> int(on_grid(bodies, data.shape, lambda b: b.marrow, fill=False, dtype=bool).sum())
    8
    """
    out = np.full(int(np.prod(shape)), fill, dtype)
    for body in bodies:
        out[body.index] = values(body)
    return out.reshape(shape)


def _geometry(
    body_id: int,
    name: str,
    level: str | None,
    crop: NDArray[np.bool_],
    region: tuple[slice, ...],
    grid: Grid,
    cortex_mm: float,
    endplates: tuple[str, ...],
    course: NDArray[np.float64] | None = None,
    max_tilt_deg: float = MAX_AXIS_TILT_DEG,
) -> BodyGeometry:
    inside = _clearance(crop, grid.spacing)
    local = np.flatnonzero(crop)
    ijk_local = np.stack(np.unravel_index(local, crop.shape), axis=1)
    ijk = ijk_local + np.array([s.start for s in region])
    index = np.ravel_multi_index(tuple(ijk.T), grid.shape)
    world = grid.voxel_to_world(ijk)
    centroid = world.mean(axis=0)
    axes = _body_axes(world - centroid, course, max_tilt_deg)
    coords = ((world - centroid) @ axes.T).astype(np.float32)
    ap, lr, si = coords.T
    extent = _voxel_extent(grid, axes)
    column, n_columns = _columns(ap, lr, extent[:2])
    half_si = np.float32(extent[2] / 2)
    top = ndimage.maximum(si, column, index=np.arange(n_columns)) + half_si
    bottom = ndimage.minimum(si, column, index=np.arange(n_columns)) - half_si
    ap_low, ap_high = float(ap.min() - extent[0] / 2), float(ap.max() + extent[0] / 2)
    ap_center, ap_half = (ap_low + ap_high) / 2, (ap_high - ap_low) / 2
    lr_half = float(np.abs(lr).max() + extent[1] / 2)
    central = (np.abs(ap - ap_center) <= CENTRAL_FRACTION * ap_half) & (
        np.abs(lr) <= max(CENTRAL_FRACTION * lr_half, extent[1] / 2)
    )
    heights = (top - bottom)[np.unique(column[central])] if central.any() else top - bottom
    touches = bool(
        np.any(ijk.min(axis=0) == 0) or np.any(ijk.max(axis=0) == np.array(grid.shape) - 1)
    )
    return BodyGeometry(
        body_id=body_id,
        name=name,
        level=level,
        index=index,
        marrow=inside.ravel()[local] > cortex_mm,
        inside_mm=inside.ravel()[local].astype(np.float32),
        ap=ap,
        lr=lr,
        si=si,
        depth_superior=(np.asarray(top)[column] - si + half_si).astype(np.float32),
        depth_inferior=(si - np.asarray(bottom)[column] + half_si).astype(np.float32),
        column=column,
        si_extent_mm=float(extent[2]),
        n_columns=n_columns,
        height_mm=float(np.median(heights)),
        ap_center_mm=ap_center,
        ap_half_mm=ap_half,
        centroid_ras=centroid,
        axes=axes,
        touches_border=touches,
        endplates=endplates,
    )


def _clearance(mask: NDArray[np.bool_], spacing: NDArray[np.float64]) -> NDArray[np.float32]:
    """Depth (mm) of each voxel of ``mask`` beyond the mask's outermost voxel layer.

    The outermost layer (voxels with a face neighbour outside) gets 0: whatever the voxel
    size, it straddles the surface, e.g. a 4 mm sagittal slice at the side of a body holds
    both marrow and what lies beside the body. Deeper voxels get their distance (mm) to the
    nearest voxel of that layer. Along slices thicker than ``COARSE_SI_MM`` the edge of the
    array counts as outside: on a thin slab the first or last slice often holds a body's
    lateral wall in partial volume, and nothing beyond the field of view tells whether it
    does (a body cut there loses that slice of marrow). Along finer steps a voxel at the
    edge holds little of what lies beyond, and the edge is not a surface.

    Measured on the mask's box grown by one voxel: the nearest voxel outside the core of
    any core voxel lies in that box, so the depths are the whole array's.
    """
    box = grown_box(occupied_box(mask), 1, mask.shape)
    crop = np.asarray(mask[box], bool)
    # along thick slices the array's edge is a surface: a layer of background beyond it
    pad = [
        (int(s.start == 0), int(s.stop == n)) if step > COARSE_SI_MM else (0, 0)
        for s, n, step in zip(box, mask.shape, spacing, strict=True)
    ]
    inner = tuple(slice(a, a + n) for (a, _), n in zip(pad, crop.shape, strict=True))
    depth = np.zeros(mask.shape, np.float32)
    depth[box] = _clearance_in_box(np.pad(crop, pad), spacing)[inner]
    return depth


def _clearance_in_box(mask: NDArray[np.bool_], spacing: NDArray[np.float64]) -> NDArray[np.float32]:
    """:func:`_clearance` on an array holding the mask and a layer of background around it
    (or the array's edge, which does not count as background)."""
    core = ndimage.binary_erosion(
        mask, structure=ndimage.generate_binary_structure(3, 1), border_value=1
    )
    if not core.any():
        return np.zeros(mask.shape, np.float32)
    return np.where(core, ndimage.distance_transform_edt(core, sampling=spacing), 0).astype(
        np.float32
    )


def _centroid(crop: NDArray[np.bool_], region: tuple[slice, ...], grid: Grid) -> NDArray:
    """Centroid (RAS mm) of a body's voxels ``crop`` in the box ``region`` of ``grid``."""
    ijk = np.argwhere(crop).mean(axis=0) + np.array([s.start for s in region])
    return grid.voxel_to_world(ijk[None])[0]


def _spine_courses(centroids: list[NDArray]) -> list[NDArray[np.float64] | None]:
    """Per body (in spine order), the unit direction of the line between its neighbours'
    centroids (itself at either end of the spine); None for a lone body.

    >>> [c.round(2).tolist() for c in _spine_courses([np.zeros(3), np.array([0, 3.0, 4])])]
    [[0.0, -0.6, -0.8], [0.0, -0.6, -0.8]]
    """
    n = len(centroids)
    courses: list[NDArray[np.float64] | None] = []
    for i in range(n):
        step = np.asarray(centroids[max(i - 1, 0)] - centroids[min(i + 1, n - 1)], float)
        length = float(np.linalg.norm(step))
        courses.append(step / length if length > 0 else None)
    return courses


def _body_axes(
    points: NDArray[np.float64],
    course: NDArray[np.float64] | None = None,
    max_tilt_deg: float = MAX_AXIS_TILT_DEG,
) -> NDArray[np.float64]:
    """Rows AP, LR, SI (RAS unit vectors) of a body from its centred voxel positions.

    SI is the direction of least extent, or ``course`` (the spine's direction through the
    body, when known) when that direction lies more than ``max_tilt_deg`` from it.
    """
    _, vectors = np.linalg.eigh(points.T @ points)
    si = vectors[:, 0]  # least extent
    if course is not None and abs(si @ course) < np.cos(np.radians(max_tilt_deg)):
        si = course  # the shape is not a body's (cut by the slab, or an odd outline)
    if si @ _RAS_SUPERIOR < 0:
        si = -si
    ap = _RAS_ANTERIOR - (_RAS_ANTERIOR @ si) * si
    if np.linalg.norm(ap) < 0.5:  # body axis close to AP: the shape cannot be trusted
        si, ap = _RAS_SUPERIOR, _RAS_ANTERIOR
    ap = ap / np.linalg.norm(ap)
    lr = np.cross(si, ap)  # right-handed: AP x LR = SI
    return np.stack([ap, lr, si])


def _voxel_extent(grid: Grid, axes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Extent (mm) of one voxel along each body axis: the largest step of any grid axis."""
    steps = grid.direction * grid.spacing  # columns are the grid axes' steps in RAS
    projected = np.abs(axes @ steps)  # (body axis, grid axis)
    return np.maximum(projected.max(axis=1), MIN_BIN_MM)


def _columns(
    ap: NDArray[np.float32], lr: NDArray[np.float32], bins_mm: NDArray[np.float64]
) -> tuple[NDArray[np.int64], int]:
    """Column id of each voxel: its (AP, LR) bin, renumbered 0..n-1."""
    a = np.floor(ap / bins_mm[0] + 0.5).astype(np.int64)
    b = np.floor(lr / bins_mm[1] + 0.5).astype(np.int64)
    key = (a - a.min()) * (b.max() - b.min() + 1) + (b - b.min())
    _, column = np.unique(key, return_inverse=True)
    return column.astype(np.int64), int(column.max()) + 1
