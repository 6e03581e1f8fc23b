"""Vertebra label conventions: VerSe / SPINEPS ids, TotalSegmentator classes, binary masks.

Whatever the user brings, the analysis works on one :class:`VertebraLabels`: a label volume
on the study grid with one positive id per vertebral body, and the level of each id when it is
known. Ids are VerSe ids (``1``-``7`` C1-C7, ``8``-``19`` T1-T12, ``20``-``24`` L1-L5,
``25`` L6, ``26`` sacrum/S1, ``28`` T13) when the levels are known; when they are not (a
binary mask, or automatic segmentation without a visible anchor) ids are ``1..n`` from
cranial to caudal and every level is ``None``.

Examples
--------
>>> level_name(24), level_name(26), verse_id("T12")
('L5', 'S1', 19)
>>> [level_name(i) for i in (1, 8, 25, 28)]
['C1', 'T1', 'L6', 'T13']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.concurrency import map_threads
from bmetoolkit.errors import BmetoolkitError, EmptyInputError
from bmetoolkit.volume import Grid, Volume, grown_box, occupied_box

__all__ = [
    "CONVENTIONS",
    "VERSE_LEVELS",
    "VertebraLabels",
    "detect_convention",
    "label_boxes",
    "level_name",
    "totalseg_to_verse",
    "verse_id",
    "vertebral_bodies",
]

#: VerSe id of every vertebra, cranial to caudal (SPINEPS instance masks use the same ids).
VERSE_LEVELS: dict[int, str] = {
    **{i: f"C{i}" for i in range(1, 8)},
    **{i + 7: f"T{i}" for i in range(1, 13)},
    28: "T13",
    **{i + 19: f"L{i}" for i in range(1, 7)},
    26: "S1",
}

_LEVEL_IDS = {name: number for number, name in VERSE_LEVELS.items()}
#: Position of each VerSe id from the head down (T13, id 28, lies between T12 and L1).
CRANIAL_RANK = {number: rank for rank, number in enumerate(VERSE_LEVELS)}


def level_name(verse: int) -> str:
    """Level name (``"L4"``) of a VerSe id; ``ValueError`` for an id that is not a vertebra."""
    try:
        return VERSE_LEVELS[int(verse)]
    except KeyError:
        raise ValueError(
            f"{verse} is not a VerSe vertebra id (1-26 or 28); discs (100+id) and endplates "
            "(200+id) are not vertebrae"
        ) from None


def verse_id(level: str) -> int:
    """VerSe id of a level name (``"L4"`` -> 23); accepts ``"sacrum"`` for S1."""
    key = "S1" if level.strip().lower() == "sacrum" else level.strip().upper()
    try:
        return _LEVEL_IDS[key]
    except KeyError:
        raise ValueError(
            f"unknown vertebra level {level!r}; expected e.g. 'C2', 'T12', 'L5', 'S1'"
        ) from None


@dataclass(frozen=True)
class VertebraLabels:
    """Vertebral bodies on the study grid, with their levels when known.

    Parameters
    ----------
    bodies : Volume
        Label volume (integer dtype) on the study grid: one positive id per vertebral body,
        0 elsewhere. Posterior elements are not part of a body.
    levels : dict of int to str or None
        Level name of every id present in ``bodies`` (``"L4"``), or None when unknown.
    convention : str
        Where the labels came from: ``"verse"``, ``"spineps"``, ``"totalsegmentator"``,
        ``"total_mr"``, ``"binary"`` or ``"automatic"``.
    provenance : dict
        How bodies and levels were obtained: method, level anchor and confidence, anything
        a reader of the report should know. Saved in the report.
    notes : tuple of str
        Warnings for the report (e.g. an unusual count of lumbar bodies).
    """

    bodies: Volume
    levels: dict[int, str | None]
    convention: str
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.bodies.is_label:
            raise TypeError("VertebraLabels.bodies must be a label volume")

    @property
    def ids(self) -> list[int]:
        """Body ids, cranial to caudal as listed in :attr:`levels`."""
        return list(self.levels)

    @property
    def levels_known(self) -> bool:
        """True when every body has a level name."""
        return bool(self.levels) and all(v is not None for v in self.levels.values())

    def name(self, body_id: int) -> str:
        """Display name of a body: its level, else ``"body N"`` (N = position from the top)."""
        level = self.levels.get(body_id)
        if level is not None:
            return level
        return f"body {self.ids.index(body_id) + 1}"


# --- conventions -----------------------------------------------------------------------------

#: Label conventions :func:`vertebral_bodies` understands (``"auto"`` picks one).
CONVENTIONS = ("verse", "spineps", "totalsegmentator", "total_mr", "binary")

#: SPINEPS instance masks: disc below vertebra ``id`` is ``DISC_OFFSET + id``, its endplates
#: ``ENDPLATE_OFFSET + id``.
DISC_OFFSET, ENDPLATE_OFFSET = 100, 200
#: TotalSegmentator ``total_mr``: sacrum and all vertebrae merged into one class.
TOTAL_MR_SACRUM, TOTAL_MR_VERTEBRAE = 18, 19
#: Connected pieces of a merged vertebra mask smaller than this (mm³) are not bodies.
MIN_BODY_MM3 = 500.0
#: TotalSegmentator ``vertebrae_mr``: class 1 is the sacrum, 2 L5, 3 L4, ... 25 C1.
TOTALSEG_SACRUM = 1
_TOTALSEG_MAX = 25


def totalseg_to_verse(class_id: int) -> int:
    """VerSe id of a TotalSegmentator ``vertebrae_mr`` class (1 sacrum, 2 L5 ... 25 C1).

    >>> totalseg_to_verse(1), totalseg_to_verse(2), totalseg_to_verse(25)
    (26, 24, 1)
    """
    if class_id == TOTALSEG_SACRUM:
        return verse_id("S1")
    if 2 <= class_id <= _TOTALSEG_MAX:
        return 26 - class_id
    raise ValueError(f"{class_id} is not a TotalSegmentator vertebrae_mr class (1-25)")


def _cranial_position(data: NDArray[np.integer], grid: Grid, ids: list[int]) -> dict[int, float]:
    """Mean world S coordinate (mm) of each id: larger is more cranial."""
    flat = data.ravel()
    keep = np.isin(flat, ids)
    ijk = np.stack(np.unravel_index(np.flatnonzero(keep), data.shape), axis=1)
    z = grid.voxel_to_world(ijk)[:, 2]
    values = flat[keep]
    sums = np.bincount(values, weights=z, minlength=max(ids) + 1)
    counts = np.bincount(values, minlength=max(ids) + 1)
    return {i: float(sums[i] / counts[i]) for i in ids}


def detect_convention(labels: Volume) -> str:
    """Guess the label convention of a vertebra label map.

    - only the value 1 (or a boolean map): ``"binary"``;
    - any value from 100 up (discs, endplates): ``"spineps"``;
    - otherwise the ids' order along the body axis decides: VerSe ids grow towards the feet,
      TotalSegmentator ``vertebrae_mr`` classes towards the head.

    Raises
    ------
    BmetoolkitError
        When the order cannot decide (a single vertebra, or no consistent order).
    """
    data = np.asarray(labels.data)
    values = [int(v) for v in np.unique(data[data > 0])]
    if not values:
        raise EmptyInputError(
            "the vertebra label map is empty", path=labels.source, hint="check the labels file"
        )
    if values in ([1], [255]):
        return "binary"
    if max(values) >= DISC_OFFSET and any(v in VERSE_LEVELS for v in values):
        return "spineps"
    if max(values) >= DISC_OFFSET:
        raise EmptyInputError(
            f"no vertebral body in the label map: values {values} are all 100 or more "
            "(SPINEPS discs and endplates), no vertebra id (1-28)",
            path=labels.source,
            hint="a binary body mask should hold 0 and 1; SPINEPS maps hold vertebra ids too",
        )
    if len(values) < 2:
        raise BmetoolkitError(
            f"cannot tell the label convention from a single label ({values[0]})",
            path=labels.source,
            hint="name it: convention='verse' or 'totalsegmentator' (CLI --label-convention)",
        )
    height = _cranial_position(labels.data, labels.grid, values)
    ordered = sorted(values, key=lambda v: -height[v])  # cranial first
    if ordered == sorted(values, key=lambda v: CRANIAL_RANK.get(v, v)):
        return "verse"
    if ordered == sorted(values, reverse=True) and max(values) <= _TOTALSEG_MAX:
        return "totalsegmentator"
    raise BmetoolkitError(
        f"labels {values} are neither in VerSe order (ids growing towards the feet) nor in "
        "TotalSegmentator vertebrae_mr order",
        path=labels.source,
        hint="name the convention (CLI --label-convention) or check the label map",
    )


def vertebral_bodies(
    labels: Volume, *, convention: str = "auto", body_opening_mm: float = 5.0
) -> VertebraLabels:
    """Vertebral bodies with VerSe ids from a label map in any supported convention.

    Parameters
    ----------
    labels : Volume
        Label map on the study grid: VerSe or SPINEPS instance ids, TotalSegmentator
        ``vertebrae_mr`` or ``total_mr`` classes, or a binary mask.
    convention : str
        One of :data:`CONVENTIONS`, or ``"auto"`` (see :func:`detect_convention`;
        ``total_mr`` is never guessed, its ids collide with VerSe's).
    body_opening_mm : float
        Radius (mm) of the opening that cuts posterior elements (pedicles, laminae,
        processes) off the bodies when the labels cover whole vertebrae.

    Returns
    -------
    VertebraLabels
        Bodies only, one VerSe id each (ids ``1..n`` cranial to caudal with unknown levels
        for binary and ``total_mr`` maps).

    Examples
    --------
    >>> import numpy as np
    >>> data = np.zeros((40, 40, 30), np.uint8)
    >>> data[10:30, 10:30, 2:10], data[10:30, 10:30, 14:22] = 2, 3  # TotalSegmentator L5, L4
    >>> found = vertebral_bodies(Volume(data, np.eye(4), kind="label"))
    >>> found.convention, found.levels
    ('totalsegmentator', {23: 'L4', 24: 'L5'})
    """
    if convention == "auto":
        convention = detect_convention(labels)
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown label convention {convention!r}; use one of {CONVENTIONS}")
    data = np.asarray(labels.data)
    notes: list[str] = []
    if convention in ("binary", "total_mr"):
        bodies, levels, provenance = _instances(data, labels.grid, convention, body_opening_mm)
        if not levels:
            raise EmptyInputError(
                "no vertebral body in the label map", path=labels.source, hint="check the labels"
            )
        if any(v is None for v in levels.values()):
            notes.append(
                f"{convention} label map: vertebral levels are unknown; bodies are numbered "
                "from the top of the field of view"
            )
    else:
        verse = _to_verse(data, convention)
        bodies = np.zeros(data.shape, np.uint8)
        boxes = label_boxes(verse, labels.grid.spacing, body_opening_mm)
        spacing = labels.grid.spacing
        found = map_threads(  # each body in a thread (disjoint voxels: any order gives the same)
            lambda item: _body_only(verse[item[1]] == item[0], spacing, body_opening_mm),
            boxes.items(),
        )
        for (body_id, region), body in zip(boxes.items(), found, strict=True):
            bodies[region][body] = body_id
        present = [int(v) for v in np.unique(bodies[bodies > 0])]
        if not present:
            raise EmptyInputError(
                f"no vertebral body in the label map ({convention} ids)",
                path=labels.source,
                hint="check the labels or name another --label-convention",
            )
        order = _cranial_position(bodies, labels.grid, present)
        levels = {i: level_name(i) for i in sorted(order, key=lambda i: -order[i])}
        provenance = {"levels": f"from the {convention} label ids"}
    provenance = {"convention": convention, "source": str(labels.source), **provenance}
    volume = labels.with_data(bodies, kind="label")
    return VertebraLabels(volume, levels, convention, provenance, tuple(notes))


def _to_verse(data: NDArray[np.integer], convention: str) -> NDArray[np.uint8]:
    """VerSe ids of each voxel (0 for discs, other structures and background)."""
    lookup = np.zeros(max(int(data.max()), ENDPLATE_OFFSET + 30) + 1, np.uint8)
    if convention in ("verse", "spineps"):
        for number in VERSE_LEVELS:
            lookup[number] = number
            if convention == "spineps":
                lookup[ENDPLATE_OFFSET + number] = number  # endplates belong to the body
    elif convention == "totalsegmentator":
        for class_id in range(1, _TOTALSEG_MAX + 1):
            lookup[class_id] = totalseg_to_verse(class_id)
    return lookup[data]


def label_boxes(
    labels: NDArray[np.integer], spacing: NDArray[np.float64], margin_mm: float
) -> dict[int, tuple[slice, ...]]:
    """Bounding box of every positive label, grown by ``margin_mm`` (at least one voxel).

    One pass over the array (``scipy.ndimage.find_objects``), however many labels.

    >>> label_boxes(np.array([[[0, 3, 3, 0, 0]]]), np.ones(3), 0.5)
    {3: (slice(0, 1, None), slice(0, 1, None), slice(0, 5, None))}
    """
    pad = np.maximum(np.ceil(margin_mm / spacing).astype(int), 1) + 1
    boxes = {}
    for value, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None:
            boxes[value] = tuple(
                slice(max(s.start - int(p), 0), min(s.stop + int(p), n))
                for s, p, n in zip(box, pad, labels.shape, strict=True)
            )
    return boxes


def _body_only(
    mask: NDArray[np.bool_],
    spacing: NDArray[np.float64],
    radius_mm: float,
    *,
    keep_all: bool = False,
) -> NDArray[np.bool_]:
    """The bulky part of a vertebra mask: posterior elements and pedicles cut off.

    An opening by a ball of ``radius_mm`` keeps what is thick (the body); what it removed
    is put back when it stays within ``radius_mm`` plus the grid's largest voxel side of the
    kept part (the body's rounded rim), and dropped when it reaches further (posterior
    elements, reached via the pedicles: 20 mm or more behind the body). The voxel side
    matters on thick slices: on 4 mm sagittal slices the rim of a body's outermost slice
    lies up to about one slice beyond the ball's reach, and with ``radius_mm`` alone it was
    kept or dropped by where the slices happened to fall (10 % of a body's volume between
    two scans of one spine). ``keep_all`` keeps every opened component (several bodies),
    not only the largest.

    The work is done on the mask's box grown by one voxel: each distance it measures at the
    mask's voxels is to a voxel in that box (the nearest background voxel of a mask voxel
    lies in it, the kept part lies in the mask), so the result is the whole array's, at a
    fraction of the cost.

    >>> mask = np.zeros((30, 30, 12), bool)
    >>> mask[8:22, 8:22, 3:9] = True  # a body
    >>> mask[14:16, 22:29, 5:7] = True  # a process 2 voxels thick
    >>> body = _body_only(mask, np.ones(3), 2.0)
    >>> bool(body[9:21, 9:21, 4:8].all()), bool(body[:, 24:].any())
    (True, False)
    """
    box = grown_box(occupied_box(mask), 1, mask.shape)
    body = np.zeros(mask.shape, bool)
    body[box] = _body_in_box(np.asarray(mask[box], bool), spacing, radius_mm, keep_all=keep_all)
    return body


def _body_in_box(
    mask: NDArray[np.bool_], spacing: NDArray[np.float64], radius_mm: float, *, keep_all: bool
) -> NDArray[np.bool_]:
    """:func:`_body_only` on an array holding the mask and a layer of background around it
    (or the array's edge)."""
    eroded = ndimage.distance_transform_edt(mask, sampling=spacing) > radius_mm
    if not eroded.any():
        return mask.copy()
    opened = ndimage.distance_transform_edt(~eroded, sampling=spacing) <= radius_mm
    opened &= mask
    components, n = ndimage.label(opened)
    if n == 0:
        return mask.copy()
    sizes = np.bincount(components.ravel(), minlength=n + 1)[1:]
    if keep_all:
        main = np.isin(components, np.flatnonzero(sizes >= 0.2 * sizes.max()) + 1)
    else:
        main = components == int(np.argmax(sizes)) + 1
    removed, n_removed = ndimage.label(mask & ~main)
    if n_removed == 0:
        return main
    reach = ndimage.distance_transform_edt(~main, sampling=spacing)
    furthest = ndimage.maximum(reach, removed, index=np.arange(1, n_removed + 1))
    rim = np.flatnonzero(np.asarray(furthest) <= radius_mm + float(np.max(spacing)) + 1e-6) + 1
    return main | np.isin(removed, rim)


def _instances(
    data: NDArray[np.integer], grid: Grid, convention: str, radius_mm: float
) -> tuple[NDArray[np.uint8], dict[int, str | None], dict[str, Any]]:
    """Split a merged vertebra mask into bodies, numbered cranial to caudal."""
    if convention == "total_mr":
        column = data == TOTAL_MR_VERTEBRAE
        sacrum = data == TOTAL_MR_SACRUM
    else:
        column, sacrum = data > 0, np.zeros(data.shape, bool)
    bodies, n = ndimage.label(_body_only(column, grid.spacing, radius_mm, keep_all=True))
    sizes = np.bincount(bodies.ravel(), minlength=n + 1) * grid.voxel_volume_mm3
    fragments = np.flatnonzero(sizes < MIN_BODY_MM3)
    if fragments.size:
        bodies, n = ndimage.label(np.isin(bodies, fragments, invert=True) & (bodies > 0))
    ids = list(range(1, n + 1))
    height = _cranial_position(bodies, grid, ids) if ids else {}
    ordered = sorted(ids, key=lambda i: -height[i])
    result = np.zeros(data.shape, np.uint8)
    for new_id, old_id in enumerate(ordered, start=1):
        result[bodies == old_id] = new_id
    levels: dict[int, str | None] = {i: None for i in range(1, n + 1)}
    provenance: dict[str, Any] = {"levels": "unknown", "bodies": "connected components"}
    if sacrum.any() and n:
        # Name upwards from the sacrum, assuming five lumbar vertebrae.
        first = verse_id("L5") - n + 1
        if first >= 1:
            relabel = np.zeros(n + 1, np.uint8)
            relabel[1:] = np.arange(first, first + n)
            result = relabel[result]
            levels = {first + i - 1: level_name(first + i - 1) for i in range(1, n + 1)}
            sacrum_body = _body_only(sacrum, grid.spacing, radius_mm)
            result[sacrum_body & (result == 0)] = verse_id("S1")
            levels[verse_id("S1")] = "S1"
            provenance["levels"] = (
                "counted upwards from the sacrum, assuming 5 lumbar and 12 thoracic vertebrae"
            )
    return result, levels, provenance
