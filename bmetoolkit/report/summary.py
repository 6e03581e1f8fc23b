"""The at-a-glance figures of one subject, shared by the QC pages and the batch tables.

One function computes them from the report's rows, so the batch index, the subject page and
``subjects.csv`` cannot disagree: the lesion count is every lesion of the lesion table (edema
and Modic, ``n_lesions``), and an endplate counts in the column of each Modic type it shows,
alone or mixed (``"II/I"`` counts in ``II``, in ``I`` and in ``mixed``).

Examples
--------
>>> endplates = [{"level": "L4", "verse_id": 23, "endplate": "inferior", "modic_type": "II/I"},
...              {"level": "L5", "verse_id": 24, "endplate": "superior", "modic_type": "none"}]
>>> lesions = [{"level": "L3", "verse_id": 22, "zone": "central", "finding": "BME"}]
>>> figures = finding_figures(endplates, lesions)
>>> figures["modic_counts"], figures["n_lesions"], figures["n_modic"]
({'I': 1, 'II': 1, 'III': 0, 'mixed': 1}, 1, 1)
>>> [(where["level"], where["findings"]) for where in figures["findings_at"]]
[('L3', ['BME']), ('L4', ['inf II/I'])]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bmetoolkit.modic import MODIC_TYPES, NOT_ASSESSED, is_finding
from bmetoolkit.spine.labels import CRANIAL_RANK, verse_id

__all__ = ["COUNT_COLUMNS", "finding_figures", "modic_counts", "summarise", "type_parts"]

#: Keys of :func:`modic_counts`: one per Modic type, then endplates with more than one type.
COUNT_COLUMNS = (*MODIC_TYPES, "mixed")
#: Short names of the endplates in "findings at" lists.
_ENDPLATE_ABBREVIATIONS = {"superior": "sup", "inferior": "inf"}
#: Lesion zones at an endplate contain this word (``"inferior endplate"``); edema in any other
#: zone (``"central"``) is BME away from the endplates (see :mod:`bmetoolkit.lesions`).
_ENDPLATE_ZONE = "endplate"


def type_parts(modic_type: object) -> tuple[str, ...]:
    """The Modic types making up an endplate's ``modic_type``; empty when not a finding.

    >>> type_parts("II/I"), type_parts("none"), type_parts(NOT_ASSESSED)
    (('II', 'I'), (), ())
    """
    if not is_finding(modic_type):
        return ()
    return tuple(part for part in str(modic_type).split("/") if part in MODIC_TYPES)


def modic_counts(types: Iterable[object]) -> dict[str, int]:
    """Endplates showing each Modic type (alone or mixed), and endplates of mixed type.

    >>> modic_counts(["I", "II/I", "none", "III"])
    {'I': 2, 'II': 1, 'III': 1, 'mixed': 1}
    """
    counts = dict.fromkeys(COUNT_COLUMNS, 0)
    for modic_type in types:
        parts = type_parts(modic_type)
        for part in set(parts):
            counts[part] += 1
        counts["mixed"] += len(parts) > 1
    return counts


def _level_key(level: str, order: int) -> tuple[int, int]:
    """Cranial to caudal: named levels by their rank in the spine, others in table order."""
    try:
        return (0, CRANIAL_RANK[verse_id(level)])
    except ValueError:
        return (1, order)


def findings_at(
    endplates: Sequence[Mapping[str, Any]], lesions: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The levels (or bodies) with a finding, cranial to caudal, and what is found there.

    An endplate with a Modic change gives ``"inf II/I"``; a lesion away from the endplates
    (zone ``central``) gives ``"BME"`` (edema at an endplate is its Modic type I).
    """
    found: dict[str, list[str]] = {}
    keys: dict[str, tuple[int, int]] = {}
    rows = [
        (
            row,
            f"{_ENDPLATE_ABBREVIATIONS.get(str(row.get('endplate')), row.get('endplate'))} "
            f"{row.get('modic_type')}",
        )
        for row in endplates
        if is_finding(row.get("modic_type"))
    ]
    rows += [(row, "BME") for row in lesions if _ENDPLATE_ZONE not in str(row.get("zone"))]
    for order, (row, what) in enumerate(rows):
        level = str(row.get("level") or row.get("bone") or "unknown level")
        keys.setdefault(level, _level_key(level, order))
        if what not in found.setdefault(level, []):
            found[level].append(what)
    return [{"level": level, "findings": found[level]} for level in sorted(found, key=keys.get)]


def finding_figures(
    endplates: Sequence[Mapping[str, Any]], lesions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Counts and places of the findings, from the endplate and lesion rows of a report.

    Returns
    -------
    dict
        ``n_lesions`` (rows of the lesion table), ``n_endplates``, ``n_modic`` (endplates
        with any Modic change), ``modic_assessed``, ``modic_counts`` (:func:`modic_counts`)
        and ``findings_at`` (:func:`findings_at`).
    """
    types = [row.get("modic_type") for row in endplates]
    return {
        "n_lesions": len(lesions),
        "n_endplates": len(endplates),
        "n_modic": sum(is_finding(t) for t in types),
        "modic_assessed": NOT_ASSESSED not in types,
        "modic_counts": modic_counts(types),
        "findings_at": findings_at(endplates, lesions),
    }


def summarise(report: Mapping[str, Any]) -> dict[str, Any]:
    """The at-a-glance figures of a report dict shaped like the analysis ``report.json``.

    Returns
    -------
    dict
        :func:`finding_figures` of its ``endplates`` and ``lesions``, plus ``bme_volume_ml``
        (None when absent), ``bme_lesions`` (lesions holding edema), ``bme_locations``
        (``"L4 inferior endplate"``, or ``"tibia subchondral"`` with bone masks, per edema
        lesion), ``modic_endplates`` (``"L4 inferior: Modic I"`` ...), ``n_notes``,
        ``anatomy`` (``"spine"`` or ``"bones"``), ``n_bones`` (bones analysed; None for the
        spine) and ``bones_with_edema`` (``bone``, ``bme_ml``, ``bme_pct`` of each bone with
        edema, in the order of the bone table); ``modic_assessed`` also follows ``checks``.

    Examples
    --------
    >>> report = {"bme": {"volume_ml": 1.5, "lesions": [{"level": "L4", "zone": "central"}]},
    ...           "lesions": [{"level": "L4", "zone": "central", "finding": "BME"}],
    ...           "endplates": [{"level": "L4", "endplate": "inferior", "modic_type": "I"}]}
    >>> summary = summarise(report)
    >>> summary["n_lesions"], summary["modic_endplates"], summary["bme_locations"]
    (1, ['L4 inferior: Modic I'], ['L4 central'])
    """
    bme = report.get("bme") or {}
    endplates = list(report.get("endplates") or [])
    bme_lesions = list(bme.get("lesions") or [])
    lesions = list(report.get("lesions") or bme_lesions)
    figures = finding_figures(endplates, lesions)
    where = [
        " ".join(
            str(p)
            for p in (r.get("level") or r.get("bone"), r.get("zone"))
            + (("subchondral",) if r.get("subchondral") else ())
            if p
        )
        for r in bme_lesions
    ]
    assessed = (report.get("checks") or {}).get("modic_assessed", True)
    anatomy = report.get("anatomy", "spine")
    bones = list(report.get("bones") or [])
    return figures | {
        "anatomy": anatomy,
        "n_bones": len(bones) if anatomy == "bones" else None,
        "bones_with_edema": [
            {"bone": row.get("bone"), "bme_ml": row.get("bme_ml"), "bme_pct": row.get("bme_pct")}
            for row in bones
            if row.get("bme_ml")
        ],
        "bme_volume_ml": bme.get("volume_ml"),
        "bme_lesions": len(bme_lesions),
        "bme_locations": [w or "unknown level" for w in where],
        "modic_endplates": [
            f"{row.get('level', '?')} {row.get('endplate', '?')}: Modic {row.get('modic_type')}"
            for row in endplates
            if is_finding(row.get("modic_type"))
        ],
        "modic_assessed": bool(assessed and figures["modic_assessed"]),
        "n_notes": len(report.get("notes") or []),
    }
