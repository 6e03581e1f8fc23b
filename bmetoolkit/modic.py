"""Modic endplate changes: per-voxel pattern, endplate contact, per-endplate type and extent.

Per voxel, inside the marrow, on the decision images (smoothed ratios to normal marrow) at
the scan's own :class:`~bmetoolkit.decision.DecisionLevels` (DOMAIN.md "Signal patterns"):

- **type I** (edema): the bone marrow edema mask (fluid-bright, see :mod:`bmetoolkit.segment`);
- **type II** (fat): T1-bright and, with a STIR, fat-nulled (``<= stir_fat_max_ratio``),
  without one, T2 not dark;
- **type III** (sclerosis): T1-dark and T2/STIR-dark.

Type II and III regions are cleaned by hysteresis: a region must hold a voxel past the seed
levels that also lies deeper than ``modic_core_mm`` inside the body (a thin rim along the
cortex is partial volume of dark cortex and marrow, not sclerosis), be large
(``min_modic_mm3``) and clearly changed as a whole (its median ratio passes the grow level by
``region_median_margin``: a region of noise or mottled marrow that merely touches the level
is not). A changed region (all types together, edema included: a mixed change is one band)
is a Modic change only when it is a band along an endplate (:class:`EndplateBands`): it
reaches ``modic_min_depth_mm`` below where the marrow starts over a quarter of its columns,
counting no voxel of the wall layer (``modic_core_mm`` beyond the body's outermost voxel
layer, cortex in partial volume) as deep (thinner bands are normal fatty marrow; a band
mostly of edema needs only ``modic_min_edema_depth_mm``, as no fatty band is
fluid-bright), lies nearer an endplate
than a wall, covers ``modic_min_area_pct`` of the endplate (a focal fat spot does not), is
attached to the endplate along most of its footprint (``modic_min_attached``: edema centred
in a body that reaches an endplate somewhere is not), and comes within
``endplate_contact_mm`` of the endplate's first marrow voxels; it belongs to that endplate
(the nearer one when it reaches both, voxel by voxel). Other edema stays BME ("central"
zone), and a T1-bright region away from the endplates (a haemangioma, focal fat) is not
reported.

Per endplate, :func:`endplate_table` reports the type (the types making up at least
``mixed_min_fraction`` of the changed volume, largest first: ``"I"``, ``"II/I"``...), the
volume per type, the maximum height as % of the body height and its grade (A < 25 %,
B 25-50 %, C > 50 %), the endplate area % (small < 25 %, medium 25-<50 %, large >= 50 %)
and the location along AP (anterior or posterior when more than half of the change lies in
that third, else middle).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.decision import DecisionLevels
from bmetoolkit.params import AREA_GRADE_LIMITS_PCT, HEIGHT_GRADE_LIMITS_PCT, Parameters
from bmetoolkit.segment import (
    ROUND,
    hysteresis,
    keep_regions,
    label_lesions,
    regions_where,
    remove_small,
)
from bmetoolkit.spine.vertebra import COARSE_SI_MM, BodyGeometry, largest_si_extent, on_grid
from bmetoolkit.volume import occupied_box

__all__ = [
    "ENDPLATE_COLUMNS",
    "MODIC_NAMES",
    "MODIC_TYPES",
    "NOT_ASSESSED",
    "area_grade",
    "endplate_table",
    "height_grade",
    "modic_map",
    "type_string",
]

#: Modic map values and their names.
MODIC_NAMES = {1: "I", 2: "II", 3: "III"}
#: The Modic types, in report order; a mixed type joins them dominant first (``"II/I"``).
MODIC_TYPES = tuple(MODIC_NAMES.values())
#: Endplate assignment values in :func:`modic_map`'s second output.
SUPERIOR, INFERIOR = 1, 2
#: ``modic_type`` of every endplate when the T1 cannot carry Modic types (see
#: :mod:`bmetoolkit.spine.t1_contrast`): not a finding, and not "none" either.
NOT_ASSESSED = "not assessed"


def is_finding(modic_type: object) -> bool:
    """Whether an endplate's ``modic_type`` is a Modic change (not none, not assessed).

    >>> is_finding("I/II"), is_finding("none"), is_finding(NOT_ASSESSED), is_finding(None)
    (True, False, False, False)
    """
    return modic_type not in (None, "", "none", NOT_ASSESSED)


#: Columns of the per-endplate table, in order.
ENDPLATE_COLUMNS = (
    "level",
    "verse_id",
    "endplate",
    "modic_type",
    "volume_ml",
    "volume_ml_I",
    "volume_ml_II",
    "volume_ml_III",
    "height_pct",
    "height_grade",
    "area_pct",
    "area_grade",
    "location",
    "body_height_mm",
    "body_partly_outside",
)
MM3_PER_ML = 1000.0


def height_grade(height_pct: float) -> str | None:
    """Height grade: A < 25 %, B 25-50 %, C > 50 % of the body height; None without change.

    >>> height_grade(10.0), height_grade(25.0), height_grade(50.0), height_grade(50.1)
    ('A', 'B', 'B', 'C')
    """
    if height_pct <= 0:
        return None
    low, high = HEIGHT_GRADE_LIMITS_PCT
    return "A" if height_pct < low else ("B" if height_pct <= high else "C")


def area_grade(area_pct: float) -> str | None:
    """Endplate area grade: small < 25 %, medium 25-<50 %, large >= 50 %; None if 0.

    >>> area_grade(24.9), area_grade(25.0), area_grade(50.0), area_grade(0.0)
    ('small', 'medium', 'large', None)
    """
    if area_pct <= 0:
        return None
    low, high = AREA_GRADE_LIMITS_PCT
    return "small" if area_pct < low else ("medium" if area_pct < high else "large")


def type_string(volumes: dict[str, float], min_fraction: float) -> str:
    """Modic type of a change from its volume per type: dominant first, ``"none"`` if empty.

    >>> type_string({"I": 0.6, "II": 2.0, "III": 0.0}, 0.2)
    'II/I'
    >>> type_string({"I": 0.1, "II": 2.0, "III": 0.0}, 0.2)
    'II'
    >>> type_string({"I": 0.0, "II": 0.0, "III": 0.0}, 0.2)
    'none'
    """
    total = sum(volumes.values())
    if total <= 0:
        return "none"
    present = [(v, name) for name, v in volumes.items() if v >= min_fraction * total]
    return "/".join(name for _, name in sorted(present, key=lambda p: -p[0]))


#: A band's reach is the 75th percentile of its columns' deepest voxels: a Modic change is
#: often dome-shaped (thin at its edges), a fatty band is thin everywhere.
REACH_PERCENTILE = 75.0


class BodyFrame:
    """Each voxel's coordinates (mm) along its body's AP, LR and SI axes (NaN outside the
    bodies), computed on first use: few regions reach a test that needs them.

    >>> from bmetoolkit.spine.labels import VertebraLabels
    >>> from bmetoolkit.spine.vertebra import body_geometries
    >>> from bmetoolkit.volume import Volume
    >>> data = np.zeros((6, 6, 6), np.uint8)
    >>> data[1:5, 1:5, 1:5] = 20
    >>> labels = VertebraLabels(Volume(data, np.eye(4), kind="label"), {20: "L1"}, "verse")
    >>> frame = BodyFrame(body_geometries(labels, cortex_mm=0.5), data.shape)
    >>> [float(np.nanmax(axis) - np.nanmin(axis)) for axis in frame.coordinates]
    [3.0, 3.0, 3.0]
    """

    def __init__(self, bodies: list[BodyGeometry], shape: tuple[int, ...]) -> None:
        self._bodies, self._shape = bodies, shape

    @cached_property
    def coordinates(self) -> tuple[NDArray[np.float32], ...]:
        """The AP, LR and SI coordinate grids."""
        return tuple(
            on_grid(
                self._bodies,
                self._shape,
                lambda b, a=axis: getattr(b, a),
                fill=np.nan,
                dtype=np.float32,
            )
            for axis in ("ap", "lr", "si")
        )


@dataclass(frozen=True)
class EndplateBands:
    """What makes a changed region a Modic change: a band along an endplate.

    A region is a band when, over the endplate columns it covers, its typical reach below
    the endplate (the 75th percentile over its columns of the deepest voxel beyond the
    body's wall layer, ``wall_mm``) is at least
    ``min_depth_mm`` (``min_edema_depth_mm`` when at least half of it is ``edema``); when
    most of its voxels lie nearer an endplate than a wall of the body (``along``); when it
    covers at least ``min_area`` of its endplate's columns; and when it is attached to its
    endplate: in at least ``min_attached`` of its columns the shallowest voxel's ``depth``
    is at most ``attach_mm`` (edema centred in the body, e.g. around a fracture, that
    touches an endplate somewhere is not), and the median of its voxels'
    ``height_fraction`` is at most ``max_median_fraction``.

    Attributes
    ----------
    depth : ndarray
        Per voxel, depth (mm, far edge) below where the marrow starts under the nearer
        endplate (see :func:`_below_marrow_start`).
    along : ndarray of bool
        Per voxel, nearer an endplate than a wall.
    column : ndarray of int
        Per voxel, its endplate column, numbered across all bodies (-1 outside them).
    n_columns : ndarray of int
        Per voxel, the number of columns of its body's endplate.
    min_depth_mm, min_area : float
        Typical reach (mm) and endplate fraction a band needs.
    height_fraction : ndarray
        Per voxel, its depth below the nearer endplate as a fraction of the body height.
    max_median_fraction : float
        Largest median ``height_fraction`` of an anchored band.
    attach_mm, min_attached : float
        A column is attached when its shallowest voxel's ``depth`` is at most
        ``attach_mm``; a band has at least ``min_attached`` of its columns attached.
    edema : ndarray of bool
        The edema (type I) voxels.
    min_edema_depth_mm : float
        Typical reach a band mostly of ``edema`` needs.
    frame : BodyFrame or None
        Each voxel's coordinates along its body's axes; None skips the focal-spot test.
    core : ndarray of bool or None
        Voxels deeper than ``modic_core_mm`` beyond the body's outermost voxel layer; the
        others (the wall layer) do not carry a band's reach: there the marrow is mixed in
        one voxel with the dark cortex of the body's wall and what lies outside it, so a
        thin band along the endplate joined to a strip of the wall is not deep (see
        :meth:`_reach_depth`). None counts every voxel towards the reach.
    spot_mm : float
        A region mostly of fat or sclerosis (not ``edema``) whose voxel centres span at most
        this (mm) along every body axis, and along SI at least half
        (:data:`~bmetoolkit.segment.ROUND`) as far as along AP or LR, is a focal spot
        touching the endplate, not a band; 0 finds none.
    """

    depth: NDArray[np.floating]
    along: NDArray[np.bool_]
    column: NDArray[np.int64]
    n_columns: NDArray[np.int64]
    min_depth_mm: float
    min_area: float
    height_fraction: NDArray[np.floating]
    max_median_fraction: float
    attach_mm: float
    min_attached: float
    edema: NDArray[np.bool_]
    min_edema_depth_mm: float
    frame: BodyFrame | None = None
    spot_mm: float = 0.0
    core: NDArray[np.bool_] | None = None

    def keep(self, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """``mask`` without its connected regions that are not endplate bands."""
        return regions_where(mask, self._is_band)

    def _is_band(self, box: tuple[slice, ...], inside: NDArray[np.bool_]) -> bool:
        depth, column = self.depth[box][inside], self.column[box][inside]
        usable = np.isfinite(depth) & (column >= 0)
        if not usable.any() or self.along[box][inside].mean() < 0.5:
            return False
        if np.median(self.height_fraction[box][inside]) > self.max_median_fraction:
            return False
        order = np.argsort(column[usable], kind="stable")
        column, depth = column[usable][order], depth[usable][order]
        starts = np.flatnonzero(np.r_[True, np.diff(column) > 0])
        reach = np.maximum.reduceat(self._reach_depth(box, inside)[usable][order], starts)
        attached = np.mean(np.minimum.reduceat(depth, starts) <= self.attach_mm)
        if attached < self.min_attached:
            return False
        area = starts.size / float(self.n_columns[box][inside].max())
        typical = np.percentile(reach, REACH_PERCENTILE)
        if typical < self._min_depth(box, inside) or area < self.min_area:
            return False
        return not self._is_spot(box, inside)

    def _reach_depth(
        self, box: tuple[slice, ...], inside: NDArray[np.bool_]
    ) -> NDArray[np.floating]:
        """The region's ``depth`` where it counts towards its reach: 0 in the wall layer.

        A voxel outside ``core`` (at most ``modic_core_mm`` beyond the body's outermost
        layer) is partial volume of the wall's cortex (dark on every sequence, as
        sclerosis) and of what lies outside it (disc, ligaments, fat, vessels; more of it
        where the body outline is found automatically): the layer that cannot seed a type
        II or III region cannot make a band deep either.
        """
        depth = self.depth[box][inside]
        if self.core is None:
            return depth
        return np.where(self.core[box][inside], depth, np.float32(0))

    def _is_spot(self, box: tuple[slice, ...], inside: NDArray[np.bool_]) -> bool:
        """Whether a region of fat or sclerosis is a focal spot at the endplate: at most
        ``spot_mm`` along every axis of its body, and along SI at least half as long as
        along the endplate (focal fat is round and up to about 1.5 cm; a Modic change
        spreads along the endplate, a band is flat). A region mostly of edema is not tested
        here: the edema's own focal-spot rule (:func:`bmetoolkit.segment.focal_spots`)
        judges it by its contrast too, and small round Modic I changes are common."""
        if self.spot_mm <= 0 or self.frame is None or self.edema[box][inside].mean() >= 0.5:
            return False
        ap, lr, si = (float(np.ptp(axis[box][inside])) for axis in self.frame.coordinates)
        width = max(ap, lr)
        return max(width, si) <= self.spot_mm and si >= ROUND * width

    def _min_depth(self, box: tuple[slice, ...], inside: NDArray[np.bool_]) -> float:
        """The reach a region needs: less for a band mostly of edema, which no fatty band
        or thickened bone resembles."""
        if self.edema[box][inside].mean() >= 0.5:
            return self.min_edema_depth_mm
        return self.min_depth_mm


def _voxel_types(
    bme: NDArray[np.bool_],
    t1_ratio: NDArray[np.floating],
    fluid_ratio: NDArray[np.floating],
    deep: NDArray[np.bool_],
    bands: EndplateBands,
    voxel_mm3: float,
    levels: DecisionLevels,
    params: Parameters,
) -> NDArray[np.uint8]:
    """Per-voxel pattern: 1 type I (edema), 2 type II, 3 type III, 0 none.

    Type II and III regions must hold a ``deep`` voxel (see ``modic_core_mm``) and have a
    median ratio past their grow level by ``region_median_margin`` of its distance from
    normal. Every type, edema included, counts only in changed regions (all types
    together, as a mixed change is one band) that are endplate ``bands``; edema elsewhere
    stays bone marrow edema, not Modic type I.
    """
    margin = 1 + params.region_median_margin
    with np.errstate(invalid="ignore"):
        if levels.fluid == "stir":
            fatty = fluid_ratio <= params.stir_fat_max_ratio
        else:
            fatty = fluid_ratio > levels.fluid_dark[0]
        type2 = (t1_ratio >= levels.t1_bright[0]) & fatty
        seed2 = type2 & (t1_ratio >= levels.t1_bright[1])
        type3 = (t1_ratio <= levels.t1_dark[0]) & (fluid_ratio <= levels.fluid_dark[0])
        seed3 = (t1_ratio <= levels.t1_dark[1]) & (fluid_ratio <= levels.fluid_dark[1])
    keep = {"voxel_mm3": voxel_mm3, "min_mm3": params.min_modic_mm3}
    fat = remove_small(hysteresis(type2 & ~bme, seed2 & deep), **keep)
    fat = keep_regions(fat, t1_ratio, lambda m: np.log(m) >= margin * np.log(levels.t1_bright[0]))
    dark = remove_small(hysteresis(type3 & ~bme, seed3 & deep), **keep)
    dark = keep_regions(dark, t1_ratio, lambda m: np.log(m) <= margin * np.log(levels.t1_dark[0]))
    dark = keep_regions(
        dark, fluid_ratio, lambda m: np.log(m) <= margin * np.log(levels.fluid_dark[0])
    )
    types = np.zeros(bme.shape, np.uint8)
    types[fat], types[dark], types[bme] = 2, 3, 1
    types[~bands.keep(types > 0)] = 0
    return types


def _below_marrow_start(
    bodies: list[BodyGeometry], marrow: NDArray[np.bool_], shell_mm: float
) -> NDArray[np.float32]:
    """Per voxel, how far (mm, to its far edge) it lies below where the marrow starts under
    the nearer endplate: below the near edge of the body's shallowest marrow voxel, or the
    scan's dark shell (``shell_mm`` below the endplate surface) when that is deeper.

    That is where a Modic change can begin, whatever the endplate's thickness
    (:mod:`bmetoolkit.spine.cortex`).
    """
    flat = marrow.ravel()

    def below(body: BodyGeometry) -> NDArray[np.float32]:
        nearest = body.nearest_depth
        inside = flat[body.index]
        start = float(nearest[inside].min()) - body.si_extent_mm if inside.any() else 0.0
        return nearest - np.float32(max(start, shell_mm))

    return on_grid(bodies, marrow.shape, below, fill=np.inf, dtype=np.float32)


def _columns(
    bodies: list[BodyGeometry], shape: tuple[int, ...]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per voxel, its endplate column numbered across all bodies (-1 outside them), and the
    number of columns of its body."""
    first = np.cumsum([0] + [body.n_columns for body in bodies])
    number = {body.body_id: int(start) for body, start in zip(bodies, first, strict=False)}
    column = on_grid(bodies, shape, lambda b: b.column + number[b.body_id], fill=-1, dtype=np.int64)
    n_columns = on_grid(bodies, shape, lambda b: b.n_columns, fill=1, dtype=np.int64)
    return column, n_columns


def _depth_volumes(
    shape: tuple[int, ...], bodies: list[BodyGeometry]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Depth of each voxel's near edge below the endplates' rim voxels (inf outside bodies).

    That is the depth below the endplate surface minus two voxels along SI (the voxel's own
    extent and the rim layer, which is never marrow), so the first marrow voxel is at 0
    whatever the voxel size. A body without an inferior endplate (S1) has infinite
    inferior depth.
    """

    def rim(body: BodyGeometry) -> np.float32:
        return np.float32(2 * body.si_extent_mm)

    def inferior(body: BodyGeometry) -> NDArray[np.float32] | float:
        return body.depth_inferior - rim(body) if "inferior" in body.endplates else np.inf

    superior = on_grid(
        bodies, shape, lambda b: b.depth_superior - rim(b), fill=np.inf, dtype=np.float32
    )
    return superior, on_grid(bodies, shape, inferior, fill=np.inf, dtype=np.float32)


def modic_map(
    bme: NDArray[np.bool_],
    t1_ratio: NDArray[np.floating],
    fluid_ratio: NDArray[np.floating],
    *,
    levels: DecisionLevels,
    bodies: list[BodyGeometry],
    body_labels: NDArray[np.integer],
    voxel_mm3: float,
    params: Parameters,
    shell_mm: float = 0.0,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Modic type of every voxel and the endplate each Modic voxel belongs to.

    Parameters
    ----------
    bme : ndarray of bool
        Bone marrow edema mask (type I where it touches an endplate).
    t1_ratio, fluid_ratio : ndarray
        Decision images (smoothed ratios to normal marrow), NaN outside the marrow.
    levels : DecisionLevels
        The scan's decision levels (and which image ``fluid_ratio`` is).
    bodies : list of BodyGeometry
        Geometry of the vertebral bodies.
    body_labels : ndarray
        The body label map on the same grid.
    voxel_mm3 : float
        Volume of one voxel (mm³).
    params : Parameters
        Thresholds.
    shell_mm : float
        Depth (mm) of the scan's dark shell below the endplate surfaces
        (:func:`bmetoolkit.spine.cortex.shell_depths`): Modic bands are measured from there.

    Returns
    -------
    types : ndarray of uint8
        0 none, 1 type I, 2 type II, 3 type III.
    endplate : ndarray of uint8
        For Modic voxels, :data:`SUPERIOR` or :data:`INFERIOR`; 0 elsewhere.
    """
    superior, inferior = _depth_volumes(bme.shape, bodies)
    nearest = np.minimum(superior, inferior)
    wall = on_grid(bodies, bme.shape, lambda b: b.inside_mm, fill=0.0, dtype=np.float32)
    deep = wall > params.modic_core_mm
    si_mm = largest_si_extent(bodies)
    column, n_columns = _columns(bodies, bme.shape)
    bands = EndplateBands(
        depth=_below_marrow_start(bodies, np.isfinite(t1_ratio), shell_mm),
        along=nearest <= wall + 2 * si_mm,
        column=column,
        n_columns=n_columns,
        min_depth_mm=max(params.modic_min_depth_mm, si_mm),
        min_area=params.modic_min_area_pct / 100,
        height_fraction=on_grid(
            bodies,
            bme.shape,
            lambda b: b.nearest_depth / np.float32(b.height_mm),
            fill=np.inf,
            dtype=np.float32,
        ),
        # on voxels coarser than COARSE_SI_MM where in the body a region lies is not known
        max_median_fraction=params.modic_anchor_fraction if si_mm <= COARSE_SI_MM else np.inf,
        attach_mm=max(params.modic_attach_mm, 2 * si_mm),
        min_attached=params.modic_min_attached if si_mm <= COARSE_SI_MM else 0.0,
        edema=bme,
        min_edema_depth_mm=max(params.modic_min_edema_depth_mm, si_mm),
        frame=BodyFrame(bodies, bme.shape),
        spot_mm=params.modic_spot_mm,
        core=deep if params.modic_core_mm > 0 else None,
    )
    voxel_types = _voxel_types(bme, t1_ratio, fluid_ratio, deep, bands, voxel_mm3, levels, params)
    regions, n = label_lesions(voxel_types > 0, body_labels)
    types = np.zeros(bme.shape, np.uint8)
    endplate = np.zeros(bme.shape, np.uint8)
    if n == 0:
        return types, endplate
    index = np.arange(1, n + 1)
    reach = params.endplate_contact_mm
    box = occupied_box(regions > 0)
    touches_superior = np.asarray(ndimage.minimum(superior[box], regions[box], index)) <= reach
    touches_inferior = np.asarray(ndimage.minimum(inferior[box], regions[box], index)) <= reach
    modic_region = np.concatenate([[False], touches_superior | touches_inferior])[regions]
    types[modic_region] = voxel_types[modic_region]
    only_superior = np.concatenate([[False], touches_superior & ~touches_inferior])[regions]
    only_inferior = np.concatenate([[False], touches_inferior & ~touches_superior])[regions]
    nearer_superior = superior <= inferior
    endplate[modic_region] = np.where(nearer_superior[modic_region], SUPERIOR, INFERIOR)
    endplate[only_superior] = SUPERIOR
    endplate[only_inferior] = INFERIOR
    return types, endplate


def _location(ap: NDArray[np.float32], body: BodyGeometry) -> str:
    third = body.ap_half_mm / 3
    offset = ap - body.ap_center_mm
    if np.mean(offset > third) > 0.5:
        return "anterior"
    if np.mean(offset < -third) > 0.5:
        return "posterior"
    return "middle"


def endplate_row(
    body: BodyGeometry,
    endplate: str,
    types: NDArray[np.uint8],
    assignment: NDArray[np.uint8],
    *,
    voxel_mm3: float,
    params: Parameters,
) -> dict[str, Any]:
    """The table row of one endplate of one body (see :data:`ENDPLATE_COLUMNS`)."""
    code = SUPERIOR if endplate == "superior" else INFERIOR
    flat_types = types.ravel()[body.index]
    mine = (flat_types > 0) & (assignment.ravel()[body.index] == code)
    volumes = {
        name: float(np.count_nonzero(flat_types[mine] == value) * voxel_mm3 / MM3_PER_ML)
        for value, name in MODIC_NAMES.items()
    }
    row: dict[str, Any] = {
        "level": body.name,
        "verse_id": body.body_id if body.level is not None else None,
        "endplate": endplate,
        "modic_type": type_string(volumes, params.mixed_min_fraction),
        "volume_ml": round(sum(volumes.values()), 4),
        **{f"volume_ml_{name}": round(v, 4) for name, v in volumes.items()},
        "height_pct": 0.0,
        "height_grade": None,
        "area_pct": 0.0,
        "area_grade": None,
        "location": None,
        "body_height_mm": round(body.height_mm, 2),
        "body_partly_outside": body.touches_border,
    }
    if mine.any():
        height = 100 * float(body.depth(endplate)[mine].max()) / body.height_mm
        area = 100 * len(np.unique(body.column[mine])) / body.n_columns
        row.update(
            height_pct=round(height, 2),
            height_grade=height_grade(height),
            area_pct=round(area, 2),
            area_grade=area_grade(area),
            location=_location(body.ap[mine], body),
        )
    return row


def endplate_table(
    bodies: list[BodyGeometry],
    types: NDArray[np.uint8],
    assignment: NDArray[np.uint8],
    *,
    voxel_mm3: float,
    params: Parameters,
) -> list[dict[str, Any]]:
    """One row per endplate of every body, cranial to caudal (``"none"`` rows included)."""
    return [
        endplate_row(body, endplate, types, assignment, voxel_mm3=voxel_mm3, params=params)
        for body in bodies
        for endplate in body.endplates
    ]
