"""The change table: per region, the edema and Modic change between two visits, with its RC.

A **region** is a whole vertebral body (``"L4 body"``) or the half of a body next to one
endplate (``"L4 inferior"``: edema there, and the endplate's Modic type) on a spine, or a
bone's name on the any-bone path (no zone). Halves are split at the body's centre along the
spine, whatever the edema was typed: a Modic I change that the analysis calls central edema
at one visit still falls in the same region. Each visit's volumes come from its own
analysis; the follow-up's level names are replaced by those of the paired baseline bodies
(:mod:`bmetoolkit.followup.register`), so automatic level names that differ between visits
do not break the pairing.

Each row: BME volume at each visit, change (mL and % of baseline), its repeatability
coefficient (:mod:`bmetoolkit.followup.repeatability`) and whether the change exceeds it;
for an endplate also its Modic volume and type at each visit and the transition
(``"I -> II"``). A ``total`` row gives the edema volume of each visit. Unless the whole
fields are compared, each visit's volumes are those where the other visit imaged too
(:mod:`bmetoolkit.followup.field`): its edema voxels there, and an endplate's Modic volume
in the proportion of its half's Modic voxels there; a note gives what was left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.followup.field import edema_outside_ml
from bmetoolkit.followup.register import Correspondence
from bmetoolkit.followup.repeatability import boundary_volumes, repeatability_coefficient
from bmetoolkit.modic import MM3_PER_ML, NOT_ASSESSED
from bmetoolkit.volume import Volume, occupied_box

__all__ = ["CHANGE_COLUMNS", "RegionKey", "change_table", "region_key", "region_maps", "zone_of"]

RegionKey = tuple[str, str]

#: Columns of ``change.csv``, in order.
CHANGE_COLUMNS = (
    "region",
    "level",
    "zone",
    "bme_ml_baseline",
    "bme_ml_followup",
    "bme_change_ml",
    "bme_change_pct",
    "bme_rc_ml",
    "bme_change_real",
    "modic_baseline",
    "modic_followup",
    "modic_transition",
    "modic_ml_baseline",
    "modic_ml_followup",
    "modic_change_ml",
    "modic_rc_ml",
    "modic_change_real",
    "note",
)


def zone_of(zone: object) -> str:
    """Short zone name of a lesion or endplate: ``"superior"``, ``"inferior"``, ``"body"``,
    or ``""`` (a bone without zones).

    >>> zone_of("superior endplate"), zone_of("body"), zone_of(None)
    ('superior', 'body', '')
    """
    return str(zone or "").replace(" endplate", "")


def region_key(level: object, zone: object) -> RegionKey:
    """The key of a region: (level or bone name, short zone)."""
    return (str(level), zone_of(zone))


def region_name(key: RegionKey) -> str:
    """``"L4 inferior"``, or the bone's name alone."""
    return " ".join(part for part in key if part)


#: Zones of a region: a whole body (or bone), and the halves of a body by endplate.
ZONES = ("body", "superior", "inferior")


def _spine_axes(
    centres: Mapping[int, NDArray[np.float64]], ids: list[int]
) -> dict[int, NDArray[np.float64]]:
    """Superior direction of each body: along the line through its neighbours' centroids
    (the spine's own axis), world +z for a lone body."""
    order = sorted(ids, key=lambda body: -centres[body][2])
    axes = {}
    for n, body in enumerate(order):
        upper = centres[order[n - 1]] if n > 0 else centres[body]
        lower = centres[order[n + 1]] if n + 1 < len(order) else centres[body]
        axis = upper - lower
        norm = np.linalg.norm(axis)
        axes[body] = axis / norm if norm > 0 else np.array([0.0, 0.0, 1.0])
    return axes


def region_maps(
    visit: Any, rename: Mapping[str, str]
) -> dict[str, tuple[dict[RegionKey, int], NDArray]]:
    """Regions of every edema or Modic voxel of a visit: by whole body and by half.

    A voxel belongs to its body (zone ``"body"``), and to the endplate on its side of the
    body's centre along the spine (``"superior"``, ``"inferior"``). Without endplates (a
    bone), the zone is ``""`` and there are no halves.

    Returns
    -------
    dict
        ``"body"`` and ``"halves"``: each the region number of every key, and the region
        number per voxel (0 elsewhere).
    """
    bodies = visit.maps["vertebrae"]
    labels = np.asarray(bodies.data)
    found = (
        (np.asarray(visit.maps["bme_mask"].data) > 0)
        | (np.asarray(visit.maps["modic_map"].data) > 0)
    ) & (labels > 0)
    body = labels[found].astype(np.int64)
    with_endplates = bool(visit.endplates)
    out = {}
    for partition in ("body", "halves"):
        if not body.size or (partition == "halves" and not with_endplates):
            out[partition] = ({}, np.zeros(labels.shape, np.int32))
            continue
        if partition == "halves":
            zone = _halves(bodies, visit.centroids(), found, body)
        else:
            zone = np.zeros(len(body), np.int64)
        out[partition] = _numbered(visit, rename, labels.shape, found, body, zone, with_endplates)
    return out


def _halves(
    bodies: Volume,
    centres: Mapping[int, NDArray[np.float64]],
    found: NDArray[np.bool_],
    body: NDArray[np.int64],
) -> NDArray:
    """1 (superior) or 2 (inferior) per found voxel: its side of its body's centre."""
    axes = _spine_axes(centres, list(centres))
    lookup_c = np.zeros((int(body.max()) + 1, 3))
    lookup_u = np.zeros_like(lookup_c)
    for b in np.unique(body):
        lookup_c[b], lookup_u[b] = centres[int(b)], axes[int(b)]
    world = bodies.grid.voxel_to_world(np.argwhere(found))
    side = ((world - lookup_c[body]) * lookup_u[body]).sum(axis=1)
    return np.where(side > 0, 1, 2)


def _numbered(
    visit: Any,
    rename: Mapping[str, str],
    shape: tuple[int, ...],
    found: NDArray[np.bool_],
    body: NDArray[np.int64],
    zone: NDArray[np.int64],
    with_endplates: bool,
) -> tuple[dict[RegionKey, int], NDArray]:
    names = visit.body_names
    index: dict[RegionKey, int] = {}
    codes = np.zeros((int(body.max()) + 1, 3), np.int32)
    for b, z in sorted({(int(b), int(z)) for b, z in zip(body, zone, strict=True)}):
        name = names.get(b, str(b))
        key = (rename.get(name, name), ZONES[z] if with_endplates else "")
        codes[b, z] = index.setdefault(key, len(index) + 1)
    regions = np.zeros(shape, np.int32)
    regions[found] = codes[body, zone]
    return index, regions


def _volumes(visit: Any, rename: Mapping[str, str]) -> dict[str, dict[RegionKey, float]]:
    """Per region: BME and Modic volume (mL) and boundary volume (mL) of one visit, the
    edema outside the other visit's field of view (``bme_outside``, mL, weighted as the
    compared volumes are; not compared) and,
    where some of its Modic voxels lie outside, the share inside (``modic_seen``)."""
    voxel_mm3 = visit.maps["bme_mask"].grid.voxel_volume_mm3
    out: dict[str, dict[RegionKey, float]] = {
        f"{name}_{what}": {} for name in ("bme", "modic") for what in ("ml", "boundary")
    }
    out["bme_outside"], out["modic_seen"] = {}, {}
    seen = visit.seen_by_other
    share = visit.bme_share if seen is None or visit.bme_share is None else visit.bme_share * seen
    bme_all = np.asarray(visit.maps["bme_mask"].data) > 0
    bme = bme_all if seen is None else bme_all & seen
    modic_all = np.asarray(visit.maps["modic_map"].data) > 0
    modic = modic_all if seen is None else modic_all & seen
    for index, regions in region_maps(visit, rename).values():
        edema = np.where(bme_all, regions, 0)  # the layer's region: from all the edema
        for name, found in (("bme", bme), ("modic", modic)):
            inside = np.where(found, regions, 0)
            boundary = boundary_volumes(inside, voxel_mm3)
            counts = np.bincount(inside.ravel(), minlength=len(index) + 1)
            amounts = (
                counts
                if name == "modic" or share is None
                else _shared(edema, visit.bme_share, counts.size, within=seen)
            )
            for key, i in index.items():
                if counts[i]:
                    out[f"{name}_ml"][key] = round(amounts[i] * voxel_mm3 / MM3_PER_ML, 4)
                    out[f"{name}_boundary"][key] = float(boundary[i])
        if seen is not None:
            # the share of each region's Modic voxels the other visit imaged: the endplate's
            # Modic volume (its analysis's) is compared in that proportion
            size = len(index) + 1
            everywhere, kept = (_per_region(m, regions, size) for m in (modic_all, modic))
            hidden = (
                _per_region(bme_all & ~seen, regions, size)
                if visit.bme_share is None
                else _shared(edema, visit.bme_share, size, within=~seen)
            )
            for key, i in index.items():
                if everywhere[i] > kept[i]:
                    out["modic_seen"][key] = float(kept[i] / everywhere[i])
                if hidden[i]:
                    out["bme_outside"][key] = round(hidden[i] * voxel_mm3 / MM3_PER_ML, 4)
    total = float(bme.sum()) if share is None else float(share.sum(dtype=np.float64))
    out["total"] = {
        ("total", ""): round(total * voxel_mm3 / MM3_PER_ML, 4),
        ("boundary", ""): float(boundary_volumes(bme.astype(np.uint8), voxel_mm3)[1]),
    }
    outside = edema_outside_ml(visit)
    if outside is not None:
        out["total"][("outside", "")] = outside
    return out


def _per_region(mask: NDArray[np.bool_], regions: NDArray, size: int) -> NDArray[np.int64]:
    """Voxels of ``mask`` per region number (index = number, ``size`` entries)."""
    return np.bincount(np.where(mask, regions, 0).ravel(), minlength=size)


def _shared(
    regions: NDArray[np.integer],
    share: NDArray[np.floating],
    size: int,
    *,
    within: NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """Sum of ``share`` per region (index = number), each edema voxel's share to its own
    region and the share of the layer around the edema to the region next to it; only the
    voxels ``within`` (all when None) are summed.

    The layer's regions are found before ``within`` is applied, from all the edema in
    ``regions``: a layer voxel on one side of the other visit's field edge, next to edema on
    the other side, then belongs to that edema's region on either side, so that the parts
    summed within a mask and outside it add up to the region's whole.
    """
    from scipy import ndimage

    from bmetoolkit.segment import FACE_NEIGHBOURS

    box = occupied_box(share > 0)
    regions, share = regions[box], share[box]
    layer = (share > 0) & (regions == 0)
    if layer.any():
        spread = ndimage.grey_dilation(regions, footprint=FACE_NEIGHBOURS)
        regions = np.where(layer, spread, regions)
    if within is not None:
        share = np.where(within[box], share, 0)
    return np.bincount(regions.ravel(), weights=share.ravel().astype(np.float64), minlength=size)


def _endplates(visit: Any, rename: Mapping[str, str]) -> dict[RegionKey, dict[str, Any]]:
    return {
        region_key(rename.get(str(row["level"]), str(row["level"])), row["endplate"]): row
        for row in visit.endplates
    }


def _change(before: float, after: float, rc: float) -> dict[str, Any]:
    change = round(after - before, 4)
    return {
        "change_ml": change,
        "change_pct": round(100 * change / before, 1) if before > 0 else None,
        "rc_ml": round(rc, 4),
        "change_real": bool(abs(change) > rc),
    }


def _transition(before: object, after: object) -> str:
    if NOT_ASSESSED in (before, after):
        return NOT_ASSESSED
    if before is None or after is None:
        return ""
    return "unchanged" if before == after else f"{before} -> {after}"


def change_table(baseline: Any, followup: Any, pairing: Correspondence) -> list[dict[str, Any]]:
    """One row per region of either visit (see the module description), then ``total``.

    Regions of bodies not in both visits (``pairing.compared``) get a note and no change.
    """
    rename, compared = pairing.rename, pairing.compared
    vb, vf = _volumes(baseline, {}), _volumes(followup, rename)
    eb, ef = _endplates(baseline, {}), _endplates(followup, rename)
    keys = [*eb, *vb["bme_ml"], *vb["bme_outside"], *ef, *vf["bme_ml"], *vf["bme_outside"]]
    keys = list(dict.fromkeys(keys))
    rows = [_row(key, vb, vf, eb.get(key), ef.get(key), key[0] in compared) for key in keys]
    levels = {level: n for n, level in enumerate(dict.fromkeys(key[0] for key in keys))}
    zones = {"body": 0, "superior": 1, "inferior": 2}
    rows.sort(key=lambda row: (levels[row["level"]], zones.get(row["zone"], 3)))
    total_rc = repeatability_coefficient(
        vb["total"][("boundary", "")], vf["total"][("boundary", "")]
    )
    before, after = vb["total"][("total", "")], vf["total"][("total", "")]
    bme = _change(before, after, total_rc)
    rows.append(
        {
            "region": "total",
            "level": "",
            "zone": "",
            "bme_ml_baseline": before,
            "bme_ml_followup": after,
            **{f"bme_{k}": v for k, v in bme.items()},
            "note": _total_note(vb, vf),
        }
    )
    return rows


def _total_note(
    vb: dict[str, dict[RegionKey, float]], vf: dict[str, dict[RegionKey, float]]
) -> str:
    """What the total holds: each visit's whole edema, or its edema where both imaged."""
    outside = [v["total"].get(("outside", "")) for v in (vb, vf)]
    if outside == [None, None]:
        return "all bone marrow edema of each visit (both fields of view)"
    if not any(outside):
        return "all bone marrow edema of each visit, all of it where both visits imaged"
    return (
        "the bone marrow edema of each visit where both visits imaged; outside the other "
        f"visit's field of view and not compared: baseline {outside[0] or 0:.2f} mL, "
        f"follow-up {outside[1] or 0:.2f} mL"
    )


def _row(
    key: RegionKey,
    vb: dict[str, dict[RegionKey, float]],
    vf: dict[str, dict[RegionKey, float]],
    endplate_b: Mapping[str, Any] | None,
    endplate_f: Mapping[str, Any] | None,
    compared: bool,
) -> dict[str, Any]:
    row: dict[str, Any] = {"region": region_name(key), "level": key[0], "zone": key[1]}
    if not compared:
        return row | {"note": "this body is not in both visits' fields of view"}
    bme = [vb["bme_ml"].get(key, 0.0), vf["bme_ml"].get(key, 0.0)]
    rc = repeatability_coefficient(
        vb["bme_boundary"].get(key, 0.0), vf["bme_boundary"].get(key, 0.0)
    )
    row |= {"bme_ml_baseline": bme[0], "bme_ml_followup": bme[1]}
    row |= {f"bme_{k}": v for k, v in _change(bme[0], bme[1], rc).items()}
    notes = []
    if endplate_b is not None or endplate_f is not None:
        types = [e.get("modic_type") if e else None for e in (endplate_b, endplate_f)]
        whole = [float(e.get("volume_ml") or 0.0) if e else 0.0 for e in (endplate_b, endplate_f)]
        seen = [v["modic_seen"].get(key, 1.0) for v in (vb, vf)]
        modic = [round(ml * part, 4) for ml, part in zip(whole, seen, strict=True)]
        rc_modic = repeatability_coefficient(
            vb["modic_boundary"].get(key, 0.0), vf["modic_boundary"].get(key, 0.0)
        )
        row |= {
            "modic_baseline": types[0],
            "modic_followup": types[1],
            "modic_transition": _transition(*types),
            "modic_ml_baseline": modic[0],
            "modic_ml_followup": modic[1],
        }
        row |= {f"modic_{k}": v for k, v in _change(modic[0], modic[1], rc_modic).items()}
        if any(e and e.get("body_partly_outside") for e in (endplate_b, endplate_f)):
            common = ("outside", "") in vb["total"]
            notes.append(
                "body partly outside a field of view: "
                + ("the change is that of the part both visits imaged" if common
                   else "the change may be partial")
            )  # fmt: skip
        hidden_modic = [ml * (1.0 - part) for ml, part in zip(whole, seen, strict=True)]
        notes += _outside_notes("Modic change", hidden_modic)
    notes += _outside_notes("edema", [v["bme_outside"].get(key, 0.0) for v in (vb, vf)])
    row["note"] = "; ".join(notes)
    return row


def _outside_notes(what: str, hidden_ml: list[float]) -> list[str]:
    """A note per visit with some of its ``what`` outside the other visit's field of view."""
    visits = (("baseline", "follow-up"), ("follow-up", "baseline"))
    return [
        f"{ml:.2f} mL of the {visit}'s {what} here lies outside the {other}'s field of view "
        "and is not compared"
        for (visit, other), ml in zip(visits, hidden_ml, strict=True)
        if ml
    ]
