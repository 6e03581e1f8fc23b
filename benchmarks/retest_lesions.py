"""Where a test-retest difference of the total comes from, lesion by lesion.

``bench_followup.py --retest-lesions --keep DIR`` (tuning seeds only). For each test-retest
pair whose visits' analyses are kept under ``DIR`` (``--keep``), both visits are decided
together as ``compare`` decides them (:func:`bmetoolkit.followup.joint.decide_jointly`), and
the joint edema's regions are linked across the visits as the joint decision links them
(overlap on the baseline grid). Per lesion found at both visits, at each visit:

- its volume (marrow, voxels counted), the 95th percentile of its grow-level region on the
  fluid decision image (the peak the analysis cuts it from) and its half-maximum edge;
- its body's reference factor on the fluid image and that factor's confidence (the
  report's ``reference`` ``marrow_by_body``), the median of the body's marrow away from
  any grow-level region (two voxels) on the fluid decision image (its normal level), and
  the scan's normal-marrow SD;
- the volume it would have cut at the other visit's edge, at the edge of both peaks
  averaged, and with the body's factor pooled over both visits (the geometric mean; each
  visit's ratios scaled by its own factor over the pooled one).

Per pair, the difference of the total (each visit's edema where both visits imaged, as
``compare``'s ``total`` row) is split into the lesions found at both visits (the part their
edge levels make, the mean of cutting each visit at the other's edge, and the rest: the
images at one level), the regions found at one visit only, and the wall layer. The summary
gives each part as an RC over the pairs above 1 mL (2.77 x the root mean square of the
part over the pair's mean total, divided by root 2) and the RC of the total with each
variant cut (:data:`VARIANTS`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.followup.field import seen_by_both
from bmetoolkit.followup.joint import _labelled, _links, decide_jointly, label_movers
from bmetoolkit.followup.joint_visits import _decision_of
from bmetoolkit.followup.register import register_visits
from bmetoolkit.followup.repeatability import RC_FACTOR
from bmetoolkit.followup.visit import load_visit
from bmetoolkit.segment import PEAK_PERCENTILE

__all__ = ["VARIANTS", "pair_row", "parts", "summarise", "variant_totals"]

FACE = ndimage.generate_binary_structure(3, 1)

#: The cuts of a lesion found at both visits compared with each visit's own.
VARIANTS = ("other", "averaged_peak", "pooled_factor")


def _level_volume(
    fluid: NDArray[np.floating], body: NDArray[np.bool_], lesion: NDArray[np.bool_], level: float
) -> int:
    """Voxels of the body's regions at ``fluid >= level`` that overlap ``lesion``."""
    with np.errstate(invalid="ignore"):
        above = body & (fluid >= level)
    labels, _ = ndimage.label(above, FACE)
    numbers = np.unique(labels[lesion & above])
    numbers = numbers[numbers > 0]
    return int(np.isin(labels, numbers).sum()) if numbers.size else 0


def _lesion_side(
    decision: Any, visit: Any, lesion: NDArray[np.bool_], grown: NDArray[np.int32],
    near: NDArray[np.bool_],
) -> tuple[dict[str, Any], Any]:  # fmt: skip
    """One visit's measures of a lesion found at both, and a function giving its volume
    (mL) cut at a level."""
    bodies = np.asarray(visit.maps["vertebrae"].data)
    ids, counts = np.unique(bodies[lesion], return_counts=True)
    body_id = int(ids[np.argmax(counts)])
    name = visit.body_names.get(body_id, str(body_id))
    body = bodies == body_id
    fluid = decision.fluid
    numbers = np.unique(grown[lesion])
    values = fluid[np.isin(grown, numbers[numbers > 0])]
    values = values[np.isfinite(values)]
    peak = float(np.percentile(values, PEAK_PERCENTILE))
    normal = body & np.isfinite(fluid) & ~near
    factor = visit.report.get("reference", {}).get("marrow_by_body", {}).get(name, {})
    grow = float(decision.levels.fluid_bright[0])
    box = ndimage.find_objects(body.astype(np.int8))[0]
    ml = decision.voxel_mm3 / 1000

    def volume(level: float) -> float:
        return _level_volume(fluid[box], body[box], lesion[box], max(level, grow)) * ml

    side = {
        "body": name,
        "ml": float(lesion.sum()) * ml,
        "peak": peak,
        "edge": 1 + 0.5 * (peak - 1),
        "factor": factor.get("factors", {}).get(decision.levels.fluid),
        "confidence": factor.get("confidence"),
        "normal": float(np.median(fluid[normal])) if normal.any() else None,
        "sd": float(decision.levels.sd.get(decision.levels.fluid, 0.0)),
        "slice_mm": round(float(max(visit.maps["bme_mask"].grid.spacing)), 2),
    }
    return side, volume


def pair_row(keep: Path, seed: int) -> dict[str, Any]:
    """The lesion-by-lesion measures of the kept test-retest pair of ``seed``."""
    visits = (
        load_visit(keep / f"{seed}-baseline", label="baseline"),
        load_visit(keep / f"{seed}-retest" / "followup", label="follow-up"),
    )
    registration = register_visits(*visits)
    decisions = [_decision_of(v)[0] for v in visits]
    if decisions[0] is None or decisions[1] is None:
        return {"seed": seed, "decided_alone": True}
    movers = label_movers(*visits, registration)
    joint = decide_jointly(decisions[0], decisions[1], *movers)
    seen = seen_by_both(
        visits[0].maps["vertebrae"], visits[1].maps["vertebrae"], registration.transform,
        registration.body_pairs, registration.body_transforms,
    )  # fmt: skip
    ml = [d.voxel_mm3 / 1000 for d in decisions]
    lesions = [_labelled(joint.marrow_bme[v]) for v in (0, 1)]
    grown, near = [], []
    for v in (0, 1):
        other = np.asarray(movers[1 - v](lesions[1 - v][0])) > 0
        regions = decisions[v].grow_regions(other)
        grown.append(ndimage.label(regions, FACE)[0])
        near.append(ndimage.binary_dilation(regions, FACE, iterations=2))
    rows: list[dict[str, Any]] = []
    for members in _links(lesions[0][0], lesions[1][0], movers[1]):
        if not (members[0] and members[1]):
            v = 0 if members[0] else 1
            volume = float(np.isin(lesions[v][0], members[v]).sum()) * ml[v]
            rows.append({"one_visit": ("baseline", "followup")[v], "ml": volume})
            continue
        sides, cuts = [], []
        for v in (0, 1):
            lesion = np.isin(lesions[v][0], members[v])
            side, cut = _lesion_side(decisions[v], visits[v], lesion, grown[v], near[v])
            sides.append(side)
            cuts.append(cut)
        rows.append(_both_row(sides, cuts))
    return {
        "seed": seed,
        "totals": [float((joint.bme[v] & seen[v]).sum()) * ml[v] for v in (0, 1)],
        "joint_ml": [float(joint.bme[v].sum()) * ml[v] for v in (0, 1)],
        "wall_ml": [float((joint.bme[v] & ~joint.marrow_bme[v]).sum()) * ml[v] for v in (0, 1)],
        "lesions": rows,
    }


def _both_row(sides: Sequence[Mapping[str, Any]], cuts: Sequence[Any]) -> dict[str, Any]:
    """A lesion found at both visits: each visit's measures and its variant volumes."""
    row: dict[str, Any] = {"both": True}
    for v, tag in ((0, "b"), (1, "f")):
        row |= {f"{k}_{tag}": value for k, value in sides[v].items()}
    peaks = [s["peak"] for s in sides]
    averaged = 1 + 0.5 * (0.5 * (peaks[0] + peaks[1]) - 1)
    factors = [float(s["factor"] or 1.0) for s in sides]
    pooled = float(np.sqrt(factors[0] * factors[1]))
    for v, tag in ((0, "b"), (1, "f")):
        row[f"other_{tag}"] = cuts[v](sides[1 - v]["edge"])
        row[f"averaged_peak_{tag}"] = cuts[v](averaged)
        # ratios scaled by g = own factor / pooled: cut at the half maximum of g x peak,
        # i.e. at that level / g on the visit's own ratios
        g = factors[v] / pooled
        row[f"pooled_factor_{tag}"] = cuts[v]((1 + 0.5 * (peaks[v] * g - 1)) / g)
    return row


def parts(pair: Mapping[str, Any]) -> dict[str, float]:
    """A pair's difference of the total (follow-up minus baseline, mL) and its parts: the
    lesions found at both visits (``both``), of it their edge levels' part (``edge``: the
    mean of cutting each visit at the other's edge) and the rest (``image``), the regions
    found at one visit only (``one_visit``) and the wall layer (``wall``).

    >>> split = parts({"totals": [2.0, 1.8], "wall_ml": [0.1, 0.1], "lesions": [
    ...     {"both": True, "ml_b": 1.5, "ml_f": 1.4, "other_b": 1.45, "other_f": 1.47},
    ...     {"one_visit": "baseline", "ml": 0.4}]})
    >>> [split[k] for k in ("difference", "both", "edge", "image", "one_visit", "wall")]
    [-0.2, -0.1, -0.06, -0.04, -0.4, 0.0]
    """
    both = [x for x in pair["lesions"] if x.get("both")]
    one = [x for x in pair["lesions"] if "one_visit" in x]
    change = sum(x["ml_f"] - x["ml_b"] for x in both)
    edge = sum(0.5 * ((x["ml_f"] - x["other_f"]) + (x["other_b"] - x["ml_b"])) for x in both)
    one_visit = sum(x["ml"] * (1 if x["one_visit"] == "followup" else -1) for x in one)
    values = {
        "difference": pair["totals"][1] - pair["totals"][0],
        "both": change,
        "edge": edge,
        "image": change - edge,
        "one_visit": one_visit,
        "wall": pair["wall_ml"][1] - pair["wall_ml"][0],
    }
    return {k: round(v, 6) for k, v in values.items()}


def variant_totals(pair: Mapping[str, Any], variant: str) -> list[float]:
    """The pair's totals with each lesion found at both visits cut by ``variant`` (one of
    :data:`VARIANTS`) instead of its own edge.

    >>> variant_totals({"totals": [2.0, 1.8], "lesions": [{"both": True, "ml_b": 1.5,
    ...     "ml_f": 1.4, "other_b": 1.45, "other_f": 1.47}]}, "other")
    [1.95, 1.87]
    """
    totals = list(pair["totals"])
    for x in pair["lesions"]:
        if x.get("both"):
            totals[0] += x[f"{variant}_b"] - x["ml_b"]
            totals[1] += x[f"{variant}_f"] - x["ml_f"]
    return [round(t, 6) for t in totals]


def _rc(relative: NDArray[np.floating]) -> float:
    return 100 * RC_FACTOR * float(np.sqrt(np.mean(relative**2) / 2))


def differences(lesions: Sequence[Mapping[str, Any]]) -> dict[str, NDArray[np.float64]]:
    """Per lesion found at both visits, follow-up against baseline: the log ratio of its
    volumes, of its peaks and of its body's factors, and the differences of its body's
    normal level and of the scan's SD.

    >>> d = differences([{"ml_b": 1.0, "ml_f": 1.1, "peak_b": 2.0, "peak_f": 2.2,
    ...     "factor_b": None, "factor_f": 1.0, "normal_b": 0.97, "normal_f": 0.98,
    ...     "sd_b": 0.05, "sd_f": 0.06}])
    >>> [round(float(v[0]), 3) for v in d.values()]
    [0.095, 0.095, 0.0, 0.01, 0.01]
    """

    def of(key: str, log: bool) -> NDArray[np.float64]:
        pairs = [(x[f"{key}_b"], x[f"{key}_f"]) for x in lesions]
        values = np.array([(np.nan if b is None else b, np.nan if f is None else f)
                           for b, f in pairs], float).reshape(-1, 2)  # fmt: skip
        if key == "factor":
            values = np.nan_to_num(values, nan=1.0)  # no factor: the field alone
        return np.log(values[:, 1] / values[:, 0]) if log else values[:, 1] - values[:, 0]

    return {
        "log volume": of("ml", True),
        "log peak": of("peak", True),
        "log factor": of("factor", True),
        "normal level": of("normal", False),
        "sd": of("sd", False),
    }


def _associations(lesions: Sequence[Mapping[str, Any]]) -> None:
    """Print how much each measure moved between the visits (root mean square) and its
    correlation with the log ratio of the lesion's volumes."""
    if len(lesions) < 3:
        return
    d = differences(lesions)
    volume = d.pop("log volume")
    print(f"\n{len(lesions)} lesions at both visits: root mean square of the log volume ratio "
          f"{np.sqrt(np.mean(volume**2)):.3f}")  # fmt: skip
    for name, values in d.items():
        ok = np.isfinite(values)
        r = np.corrcoef(values[ok], volume[ok])[0, 1] if values[ok].std() > 0 else 0.0
        print(f"  {name}: root mean square of its difference {np.sqrt(np.mean(values[ok]**2)):.4f}"
              f", correlation with the log volume ratio {r:+.2f}")  # fmt: skip


def summarise(pairs: Sequence[Mapping[str, Any]]) -> None:
    """Print the parts of the pairs above 1 mL, each variant's RC, and the lesions found at
    both visits of those pairs, largest difference first."""
    pairs = [p for p in pairs if "totals" in p]
    means = np.array([np.mean(p["totals"]) for p in pairs])
    above = [p for p, m in zip(pairs, means, strict=True) if m > 1.0]
    if not above:
        print("no test-retest pair above 1 mL")
        return
    mean = means[means > 1.0]
    split = [parts(p) for p in above]
    print(f"{len(pairs)} pairs, {len(above)} above 1 mL; RC over those, % of the mean total:")
    for name in split[0]:
        print(f"  {name}: {_rc(np.array([s[name] for s in split]) / mean):.1f} %")
    for variant in VARIANTS:
        totals = np.array([variant_totals(p, variant) for p in above])
        print(f"  total with the lesions at both visits cut at the {variant} edge: "
              f"{_rc((totals[:, 1] - totals[:, 0]) / mean):.1f} %")  # fmt: skip
    lesions = [(p["seed"], x) for p in above for x in p["lesions"] if x.get("both")]
    _associations([x for _, x in lesions])
    lesions.sort(key=lambda item: -abs(item[1]["ml_f"] - item[1]["ml_b"]))
    print("\nlesions at both visits (pairs above 1 mL), largest difference first:")
    for seed, x in lesions:
        print(json.dumps({"seed": seed, **{k: (round(v, 4) if isinstance(v, float) else v)
                                           for k, v in x.items() if k != "both"}}))  # fmt: skip
