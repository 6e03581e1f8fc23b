"""Lesion by lesion: which lesions persist, which are new, which resolved.

The follow-up's lesion map is brought onto the baseline grid body by body
(:func:`bmetoolkit.followup.warp.warp_labels`). Lesions that overlap there are the same
lesion (a lesion that split or merged gives one row with several numbers); a lesion without
overlap whose centroid lies within :data:`MATCH_DISTANCE_MM` of one of the other visit in
the same body also persists (it moved or shrank away from its old voxels). The rest are
**new** (follow-up only) or **resolved** (baseline only), or **uncertain** when the lesion is
no larger than its own repeatability coefficient
(:mod:`bmetoolkit.followup.repeatability`): a finding that size comes and goes with a
rescan alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bmetoolkit.followup.register import Correspondence
from bmetoolkit.followup.repeatability import boundary_volumes, repeatability_coefficient

__all__ = ["LESION_STATUS", "MATCH_COLUMNS", "MATCH_DISTANCE_MM", "match_lesions"]

#: Lesions of two visits in one body with centroids this close (mm) are the same lesion.
MATCH_DISTANCE_MM = 10.0
#: Status values and their codes in ``lesion_status.nii.gz``.
LESION_STATUS = {"persisting": 1, "new": 2, "resolved": 3, "uncertain": 4}
#: Columns of ``lesions_matched.csv``.
MATCH_COLUMNS = (
    "status",
    "level",
    "zone",
    "lesions_baseline",
    "lesions_followup",
    "finding_baseline",
    "finding_followup",
    "volume_ml_baseline",
    "volume_ml_followup",
    "change_ml",
    "rc_ml",
    "centroid_distance_mm",
    "matched_by",
    "contrast_baseline",
    "contrast_followup",
)


def _overlaps(base: NDArray[np.integer], follow: NDArray[np.integer]) -> set[tuple[int, int]]:
    both = (base > 0) & (follow > 0)
    pairs = np.unique(np.stack([base[both], follow[both]], axis=1), axis=0)
    return {(int(a), int(b)) for a, b in pairs}


def _centroid(rows: list[Mapping[str, Any]]) -> NDArray[np.float64]:
    weights = np.array([float(r["volume_ml"]) for r in rows])
    points = np.array([r["centroid_ras_mm"] for r in rows], dtype=np.float64)
    return (points * weights[:, None]).sum(axis=0) / max(weights.sum(), 1e-12)


def match_lesions(
    baseline: Any, followup: Any, warped_lesions: NDArray[np.integer], pairing: Correspondence
) -> list[dict[str, Any]]:
    """Match the lesions of two visits (see the module description).

    ``warped_lesions`` are the follow-up's lesion numbers on the baseline grid; lesions of
    bodies not in both visits (``pairing.compared``) are left out.

    Returns
    -------
    list of dict
        Rows with :data:`MATCH_COLUMNS`.
    """
    rename, compared = pairing.rename, pairing.compared
    rows_b = {int(r["lesion"]): r for r in baseline.lesions if str(r["level"]) in compared}
    rows_f = {}
    for row in followup.lesions:
        level = rename.get(str(row["level"]), str(row["level"]))
        if level not in compared:
            continue
        point = np.append(np.asarray(row["centroid_ras_mm"], dtype=np.float64), 1.0)
        moved = np.linalg.solve(pairing.transforms[level], point)[:3]
        rows_f[int(row["lesion"])] = dict(row) | {"level": level, "centroid_ras_mm": moved}
    overlapping = _overlaps(np.asarray(baseline.maps["lesion_labels"].data), warped_lesions)
    overlapping = {(a, b) for a, b in overlapping if a in rows_b and b in rows_f}
    edges = overlapping | _near(rows_b, rows_f, overlapping)
    rc_b = _lesion_boundaries(baseline)
    rc_f = _lesion_boundaries(followup)
    groups = _groups(list(rows_b), list(rows_f), edges)
    out = [
        _match_row(
            [rows_b[a] for a in members_b], [rows_f[b] for b in members_f],
            sum(rc_b.get(a, 0.0) for a in members_b), sum(rc_f.get(b, 0.0) for b in members_f),
            any((a, b) in overlapping for a in members_b for b in members_f),
        )
        for members_b, members_f in groups
    ]  # fmt: skip
    return sorted(out, key=lambda r: (str(r["level"]), str(r["lesions_baseline"])))


def _near(
    rows_b: Mapping[int, Mapping[str, Any]],
    rows_f: Mapping[int, Mapping[str, Any]],
    edges: set[tuple[int, int]],
) -> set[tuple[int, int]]:
    """Pairs without overlap, in one body, with centroids within :data:`MATCH_DISTANCE_MM`."""
    linked_b = {a for a, _ in edges}
    linked_f = {b for _, b in edges}
    near = set()
    for a, row_b in rows_b.items():
        if a in linked_b:
            continue
        for b, row_f in rows_f.items():
            if b in linked_f or row_f["level"] != row_b["level"]:
                continue
            distance = np.linalg.norm(
                np.asarray(row_b["centroid_ras_mm"]) - row_f["centroid_ras_mm"]
            )
            if distance <= MATCH_DISTANCE_MM:
                near.add((a, b))
    return near


def _lesion_boundaries(visit: Any) -> dict[int, float]:
    labels = np.asarray(visit.maps["lesion_labels"].data)
    boundary = boundary_volumes(labels, visit.maps["lesion_labels"].grid.voxel_volume_mm3)
    return {n: float(v) for n, v in enumerate(boundary) if n > 0}


def _groups(
    base: list[int], follow: list[int], edges: set[tuple[int, int]]
) -> list[tuple[list[int], list[int]]]:
    """Connected groups of lesions (baseline numbers, follow-up numbers)."""
    nodes = [("b", a) for a in base] + [("f", b) for b in follow]
    where = {node: n for n, node in enumerate(nodes)}
    if not nodes:
        return []
    i = [where[("b", a)] for a, _ in edges]
    j = [where[("f", b)] for _, b in edges]
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(nodes), len(nodes)))
    _, component = connected_components(graph, directed=False)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for node, c in zip(nodes, component, strict=True):
        side, number = node
        groups.setdefault(int(c), ([], []))[0 if side == "b" else 1].append(number)
    return list(groups.values())


def _joined(rows: list[Mapping[str, Any]], key: str) -> str:
    return "+".join(dict.fromkeys(str(r[key]) for r in rows))


def _match_row(
    rows_b: list[Mapping[str, Any]],
    rows_f: list[Mapping[str, Any]],
    boundary_b: float,
    boundary_f: float,
    overlapping: bool,
) -> dict[str, Any]:
    volume_b = round(sum(float(r["volume_ml"]) for r in rows_b), 4)
    volume_f = round(sum(float(r["volume_ml"]) for r in rows_f), 4)
    rc = repeatability_coefficient(boundary_b, boundary_f)
    if rows_b and rows_f:
        status = "persisting"
        distance = round(float(np.linalg.norm(_centroid(rows_b) - _centroid(rows_f))), 2)
    else:
        present = volume_b or volume_f
        status = ("resolved" if rows_b else "new") if present > rc else "uncertain"
        distance = None
    first = (rows_b or rows_f)[0]
    return {
        "status": status,
        "level": first["level"],
        "zone": _joined(rows_b or rows_f, "zone"),
        "lesions_baseline": _joined(rows_b, "lesion") if rows_b else "",
        "lesions_followup": _joined(rows_f, "lesion") if rows_f else "",
        "finding_baseline": _joined(rows_b, "finding") if rows_b else "",
        "finding_followup": _joined(rows_f, "finding") if rows_f else "",
        "volume_ml_baseline": volume_b,
        "volume_ml_followup": volume_f,
        "change_ml": round(volume_f - volume_b, 4),
        "rc_ml": round(rc, 4),
        "centroid_distance_mm": distance,
        "matched_by": ("overlap" if overlapping else "distance") if status == "persisting" else "",
    }
