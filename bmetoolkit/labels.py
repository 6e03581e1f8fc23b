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

from bmetoolkit.volume import Volume

__all__ = [
    "VERSE_LEVELS",
    "VertebraLabels",
    "level_name",
    "verse_id",
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
