"""Deciding the edema of two visits together, so that a rescan does not change the decision.

Each visit's own analysis decides its edema alone: a lesion whose contrast sits near a
decision level is found at one visit and missed at the other, and a faint round region is
a focal spot at one visit and edema at the other, although the images show the same thing.
On test-retest phantom pairs this made most of the spread of the total volume in mL
(docs/followup.md). The joint decision re-decides both visits with the same rules
as :func:`bmetoolkit.analyze` (:func:`bmetoolkit.segment.segment_bme`, the scan's own
decision levels) and two links between them, after registration:

1. **Re-examined at the other visit** (hysteresis across visits): a candidate region of one
   visit (before the focal-spot decision) is brought onto the other visit's grid through
   its body's transform, and seeds the other visit's grow-level regions there. A region
   found that way is kept only when its median log contrast on the fluid image (its
   decision image) reaches :data:`REEXAMINED_CONTRAST` of the median log contrast of the
   region that seeded it: the other visit must show the lesion, not only noise above the
   grow level. A lesion that resolved leaves normal marrow (log contrast near 0) and stays
   resolved; one that faded to under half its contrast is reported resolved too.
2. **Focal spots decided once per finding**: regions of the two visits that overlap on the
   baseline grid and show the same finding (each visit's median log contrast at least
   :data:`REEXAMINED_CONTRAST` of the other's) are a focal spot (left out at both visits)
   only when they are one at both (:func:`bmetoolkit.segment.focal_spots`: round and
   faint); when one visit calls them edema, they are edema at both. A visit whose regions
   there were all added by re-examining the other visit's (1) does not decide: they are
   the other visit's finding seen again, so its decision holds at both (else a spot at
   one visit seeded a cut, flat echo at the other that was no spot, and made the spot
   edema at both: tuning retest pair 56). Other regions are
   decided alone, as by the analysis: a new lesion where a focal spot was stays new (the
   spot is not turned into baseline edema), a lesion that faded to a spot stays resolved.
   (Averaging the two visits' peaks instead would drop a lesion that faded between visits
   from the visit where it was edema: a change hidden.)
3. **Regions without a fluid seed decided on both visits' T1**: a fluid-bright region (grow
   level) holding no fluid seed is edema when its median T1 is at the T1-dark seed level
   (:func:`bmetoolkit.segment.grow_regions`). Where both visits have such a region at one
   place (overlapping on the baseline grid), the rule is applied once, to both regions'
   voxels together (each voxel's T1 relative to its own scan's seed level, weighted by its
   volume), and the regions are kept or left out at both: both visits see the same marrow,
   and a median near the level fell on either side with the noise of each scan.

Basivertebral veins (:mod:`bmetoolkit.veins`) are left out of each visit's edema after
the focal-spot decision, on that visit's own regions, as the analysis leaves them out; and
a vein recognised at one visit is also one at the other where a region there overlaps it
(brought through its body's transform) and is shaped like a vein (thin, at mid-height, no
deeper than a vein), whatever its LR centre and posterior end at that visit: on 4 mm
sagittal slices those move by a few mm between scans, and the vein flickered in and out
of the total (tuning test-retest pairs, docs/log/followup.md, session 22).
Everything downstream (Modic map, endplates, lesion table) is then computed from the joint
edema with the analysis' own functions, so a visit's joint outputs are what its analysis
would report with that edema. A visit's own analysis (``analyze``) is not changed.

Why this should hold on real scans: it changes only regions that one visit's images show
and the other's show at least half as strongly, i.e. what a reader comparing the two
visits side by side would call the same finding; a change larger than that (a lesion that
resolved, faded or appeared) is decided by each visit's own images as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.analysis import edema_candidates, edema_into_walls
from bmetoolkit.decision import DecisionLevels, smooth_within
from bmetoolkit.followup.partial_volume import edema_shares
from bmetoolkit.followup.warp import warp_labels
from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.result import AnalysisResult
from bmetoolkit.segment import boxed_regions, focal_spots, grow_masks, grow_regions
from bmetoolkit.veins import basivertebral_veins

__all__ = [
    "REEXAMINED_CONTRAST",
    "JointDecision",
    "VisitDecision",
    "decide_jointly",
    "label_movers",
    "own_edema",
    "own_marrow_edema",
    "region_contrasts",
    "same_finding",
    "visit_decision",
]

#: Share of the seeding region's median log contrast a region re-examined at the other
#: visit must show (as :data:`bmetoolkit.followup.signal.PERSISTING_CONTRAST`).
REEXAMINED_CONTRAST = 0.5


@dataclass(eq=False)
class VisitDecision:
    """One visit's decision stage, rebuilt from its analysis.

    Attributes
    ----------
    result : AnalysisResult
    decisions : dict of str to ndarray
        The decision images (ratios smoothed within the marrow), as the analysis made them.
    levels : DecisionLevels
        The scan's decision levels (from the report, exact).
    regions : ndarray of bool
        The grow-level regions holding a seed (the analysis' hysteresis, before edges).
    candidates : ndarray of bool
        Edema before the focal-spot decision (``regions`` cut at their half maximum, small
        ones and fatty ones dropped), as :func:`bmetoolkit.segment.segment_bme` gives it.
    """

    result: AnalysisResult
    decisions: dict[str, NDArray[np.float32]]
    levels: DecisionLevels
    regions: NDArray[np.bool_]
    candidates: NDArray[np.bool_]

    @property
    def fluid(self) -> NDArray[np.float32]:
        """The fluid decision image."""
        return self.decisions[self.levels.fluid]

    @property
    def t1(self) -> NDArray[np.float32] | None:
        """The T1 decision image (None without a T1)."""
        return self.decisions.get("t1")

    @property
    def voxel_mm3(self) -> float:
        """Volume of one voxel (mm³)."""
        return float(self.result.study.grid.voxel_volume_mm3)

    def grow_regions(self, seeds: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
        """The grow-level regions holding a seed-level voxel, or one of ``seeds``
        (:func:`bmetoolkit.segment.grow_regions`, as the analysis grows them)."""
        return grow_regions(self.t1, self.fluid, levels=self.levels, extra_seeds=seeds)

    def candidates_with(self, seeds: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
        """The edema before the focal-spot decision, with ``seeds`` seeding more grow-level
        regions (:func:`bmetoolkit.analysis.edema_candidates`, the analysis' own stage:
        regions cut at their half maximum, small and fatty ones dropped)."""
        return edema_candidates(
            self.decisions, self.levels, self.voxel_mm3, self.result.parameters,
            extra_seeds=seeds,
        )  # fmt: skip


def _levels(decision: Mapping[str, Any]) -> DecisionLevels:
    def pair(key: str) -> tuple[float, float]:
        return (float(decision[key]["grow"]), float(decision[key]["seed"]))

    return DecisionLevels(
        sd=dict(decision["normal_marrow_sd"]),
        fluid=str(decision["fluid"]),
        t1_criterion=str(decision["t1_criterion"]),
        fluid_bright=pair("fluid_bright"),
        fluid_dark=pair("fluid_dark"),
        t1_dark=pair("t1_dark"),
        t1_bright=pair("t1_bright"),
    )


def _labelled(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int32], int]:
    box, part, n = boxed_regions(mask)
    labels = np.zeros(mask.shape, np.int32)
    labels[box] = part
    return labels, n


def visit_decision(result: AnalysisResult) -> VisitDecision:
    """Rebuild a spine analysis' decision images, levels, regions and edema candidates."""
    params = result.parameters
    spacing = result.study.grid.spacing
    decisions = {
        name: smooth_within(np.asarray(ratio.data), spacing, params.decision_smoothing_mm)
        for name, ratio in result.ratios.items()
    }
    empty = np.zeros(result.bme_mask.shape, bool)
    visit = VisitDecision(result, decisions, _levels(result.decision), empty, empty)
    visit.regions = visit.grow_regions()
    visit.candidates = visit.candidates_with()
    return visit


def own_marrow_edema(visit: VisitDecision) -> NDArray[np.bool_]:
    """The visit's marrow edema decided alone: its candidates without focal spots and
    basivertebral veins, before growing into the bodies' walls (the analysis')."""
    labels, n = _labelled(visit.candidates)
    return _without_veins(visit, visit.candidates & ~_spots(labels, n, visit)[labels])


def _without_veins(visit: VisitDecision, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``mask`` without the regions the analysis takes for basivertebral veins
    (:mod:`bmetoolkit.veins`, decided on the visit's own edema as the analysis does)."""
    return mask & ~_veins(visit, mask)


def _veins(
    visit: VisitDecision, mask: NDArray[np.bool_], seen: NDArray[np.bool_] | None = None
) -> NDArray[np.bool_]:
    """The regions of ``mask`` that are basivertebral veins at this visit; ``seen``: the
    other visit's veins on this visit's grid (:func:`bmetoolkit.veins.basivertebral_veins`)."""
    result = visit.result
    affine = np.asarray(result.study.grid.affine, float)
    return basivertebral_veins(mask, result.bodies, affine[:3, :3], result.parameters, seen)


def own_edema(visit: VisitDecision) -> NDArray[np.bool_]:
    """The visit's edema decided alone (:func:`own_marrow_edema` grown into the bodies'
    walls): the analysis'."""
    return _into_walls(visit, own_marrow_edema(visit))


def _into_walls(visit: VisitDecision, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``mask`` grown into the bodies' outer layer as the analysis grew it
    (``grow_into_wall``, :func:`bmetoolkit.segment.grow_into_walls`)."""
    result = visit.result
    layer_ratios = result.wall_layer_ratios if result.parameters.grow_into_wall else None
    return edema_into_walls(mask, visit.fluid, layer_ratios, visit.levels, result.parameters)


@dataclass
class JointDecision:
    """The two visits' edema decided together (see the module description).

    Attributes
    ----------
    bme : tuple of 2 ndarrays of bool
        Baseline and follow-up edema, each on its own grid.
    marrow_bme : tuple of 2 ndarrays of bool
        The same within the marrow, before growing into the bodies' walls (what the
        analysis' later stages start from: :func:`bmetoolkit.analysis.edema_findings`).
    shares : tuple of 2 ndarrays of float32
        Each voxel's share of edema, its lesion's edge weighted by its partial volume
        (:func:`bmetoolkit.followup.partial_volume.edema_shares`): the volumes compared.
    summary : dict
        Per visit: its own edema (mL), the joint edema (mL), its weighted volume (mL, the
        sum of ``shares``), what was added by re-examining the other visit's regions (count,
        mL), regions whose focal-spot decision the other visit changed, and regions without
        a fluid seed whose decision the pooled T1 of both visits changed.
    """

    bme: tuple[NDArray[np.bool_], NDArray[np.bool_]]
    marrow_bme: tuple[NDArray[np.bool_], NDArray[np.bool_]]
    shares: tuple[NDArray[np.float32], NDArray[np.float32]]
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)


def _median_log(values: NDArray[np.floating]) -> float:
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.median(np.log(values))) if values.size else 0.0


def region_contrasts(
    labels: NDArray[np.integer], n: int, fluid: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Median log fluid ratio of each region (index = number)."""
    out = np.zeros(n + 1)
    for number, part in enumerate(ndimage.find_objects(labels, max_label=n), start=1):
        if part is not None:
            out[number] = _median_log(fluid[part][labels[part] == number])
    return out


def _reexamined(
    visit: VisitDecision, other_labels: NDArray[np.integer], other_contrast: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Grow-level regions of ``visit`` holding none of its own seeds but one of the other
    visit's lesions, kept when their lesion (cut at its half maximum) shows at least
    :data:`REEXAMINED_CONTRAST` of the seeding lesions' median log contrast; and their
    lesions (the regions as the analysis' edema stage cuts and filters them).

    ``other_labels``: the other visit's candidate lesions (numbers) on this visit's grid;
    ``other_contrast``: the median log fluid ratio of each (index = number).
    """
    seeds = other_labels > 0
    if not seeds.any():
        return np.zeros(seeds.shape, bool), np.zeros(seeds.shape, bool)
    extra = visit.grow_regions(seeds) & ~visit.regions
    if not extra.any():
        return extra, extra
    labels, n = _labelled(extra)
    # The edema stage works region by region, and the extra regions are whole regions of
    # the grow level: its output within them is theirs alone.
    finished = visit.candidates_with(seeds) & extra
    keep = np.zeros(n + 1, bool)
    for number, part in enumerate(ndimage.find_objects(labels), start=1):
        inside = labels[part] == number
        cut = inside & finished[part]
        seeded = np.unique(other_labels[part][inside])
        seeded = seeded[seeded > 0]
        if not cut.any() or not seeded.size:
            continue
        reference = float(np.max(other_contrast[seeded]))
        mine = _median_log(visit.fluid[part][cut])
        keep[number] = reference > 0 and mine >= REEXAMINED_CONTRAST * reference
    added = keep[labels]
    return added, finished & added


def _spots(labels: NDArray[np.integer], n: int, visit: VisitDecision) -> NDArray[np.bool_]:
    """Whether each region (index = number) is a focal spot when its visit is decided alone
    (:func:`bmetoolkit.segment.focal_spots`, the analysis' rule)."""
    params = visit.result.parameters
    sd = visit.levels.sd.get(visit.levels.fluid, 0.0)
    found = focal_spots(labels > 0, visit.fluid, visit.result.study.grid.spacing, params, sd)
    spot = np.zeros(n + 1, bool)
    spot[np.unique(labels[found])] = True
    spot[0] = False
    return spot


def _links(
    labels_b: NDArray[np.integer], labels_f: NDArray[np.integer], to_baseline: Any
) -> list[tuple[list[int], list[int]]]:
    """Groups of regions of the two visits that overlap on the baseline grid."""
    n_b, n_f = int(labels_b.max()), int(labels_f.max())
    moved = np.asarray(to_baseline(labels_f))
    both = (labels_b > 0) & (moved > 0)
    links = np.unique(np.stack([labels_b[both], moved[both]], axis=1), axis=0)
    return _groups(n_b, n_f, links)


def decide_jointly(
    baseline: VisitDecision,
    followup: VisitDecision,
    to_followup: Any,
    to_baseline: Any,
) -> JointDecision:
    """Decide both visits' edema together (see the module description).

    Parameters
    ----------
    baseline, followup : VisitDecision
    to_followup, to_baseline : callable
        Bring an integer label map of the baseline onto the follow-up grid, and of the
        follow-up onto the baseline grid (nearest neighbour, body by body; 0 outside the
        paired bodies).

    Returns
    -------
    JointDecision
    """
    visits = (baseline, followup)
    movers = (to_followup, to_baseline)  # visit v's labels onto the other visit's grid
    lesions = [_labelled(v.candidates) for v in visits]
    contrasts = [region_contrasts(*lesions[v], visits[v].fluid) for v in (0, 1)]
    reexamined = [
        _reexamined(visits[v], np.asarray(movers[1 - v](lesions[1 - v][0])), contrasts[1 - v])
        for v in (0, 1)
    ]
    added = [regions for regions, _ in reexamined]
    finished = [visits[v].candidates | reexamined[v][1] for v in (0, 1)]
    finished, t1_changed = _t1_decided_together(visits, finished, to_baseline)
    final = [_labelled(m) for m in finished]
    spots = [_spots(*final[v], visits[v]) for v in (0, 1)]  # each visit alone
    shown = [region_contrasts(*final[v], visits[v].fluid) for v in (0, 1)]
    own = [_own_regions(*final[v], added[v]) for v in (0, 1)]
    changed = [0, 0]
    for members in _links(final[0][0], final[1][0], to_baseline):
        if not (members[0] and members[1]):
            continue
        contrast = [float(np.max(shown[v][members[v]])) for v in (0, 1)]
        if not same_finding(*contrast):
            continue  # e.g. a new lesion where a focal spot was: each visit decides alone
        # a visit whose regions here are only those the other visit's lesions seeded does
        # not decide: its regions are that lesion's echo, the spot decision is the other's
        deciding = [v for v in (0, 1) if own[v][members[v]].any()] or [0, 1]
        decision = all(spots[v][members[v]].all() for v in deciding)
        for v in (0, 1):
            changed[v] += int(np.count_nonzero(spots[v][members[v]] != decision))
            spots[v][members[v]] = decision
    kept = [finished[v] & ~spots[v][final[v][0]] for v in (0, 1)]
    # a vein recognised at one visit is a vein at the other where a vein-shaped region
    # lies over it (its LR centre and posterior end move with the grid and the noise)
    alone = [_veins(visits[v], kept[v]) for v in (0, 1)]
    seen = [np.asarray(movers[1 - v](alone[1 - v].astype(np.int32))) > 0 for v in (0, 1)]
    marrow = [kept[v] & ~(alone[v] | _veins(visits[v], kept[v], seen[v])) for v in (0, 1)]
    bme = [_into_walls(visits[v], marrow[v]) for v in (0, 1)]
    shares = [
        edema_shares(
            bme[v],
            np.where(marrow[v], final[v][0], 0),
            visits[v].fluid,
            np.asarray(visits[v].result.vertebrae.bodies.data),
        )
        for v in (0, 1)
    ]
    summary = {}
    for v, name in ((0, "baseline"), (1, "followup")):
        ml = visits[v].voxel_mm3 / MM3_PER_ML
        summary[name] = {
            "own_ml": round(float(np.count_nonzero(visits[v].result.bme_mask.data)) * ml, 4),
            "joint_ml": round(float(np.count_nonzero(bme[v])) * ml, 4),
            "weighted_ml": round(float(shares[v].sum(dtype=np.float64)) * ml, 4),
            "reexamined_count": _count(added[v]),
            "reexamined_ml": round(float(np.count_nonzero(added[v])) * ml, 4),
            "spot_decisions_changed": changed[v],
            "t1_decisions_changed": t1_changed[v],
        }
    return JointDecision((bme[0], bme[1]), (marrow[0], marrow[1]), (shares[0], shares[1]), summary)


def _grow_level_regions(
    visit: VisitDecision,
) -> tuple[NDArray[np.int32], int, NDArray[np.bool_]]:
    """The visit's fluid-bright regions at the grow level (labelled, their number) and
    whether each holds a fluid seed (index = number): those without one are the regions
    :func:`bmetoolkit.segment.grow_regions` keeps or drops by their median T1 alone (with
    the T1 criterion ``supporting``; no regions otherwise)."""
    levels = visit.levels
    if visit.t1 is None or levels.t1_criterion != "supporting":
        return np.zeros(visit.fluid.shape, np.int32), 0, np.zeros(1, bool)
    weak, strong = grow_masks(visit.t1, visit.fluid, levels=levels)
    labels, n = _labelled(weak)
    seeded = np.zeros(n + 1, bool)
    seeded[np.unique(labels[strong])] = True
    seeded[0] = False
    return labels, n, seeded


def _t1_below_seed(
    samples: list[tuple[NDArray[np.floating], float, float]],
) -> bool:
    """Whether the pooled median T1 of regions seen at both visits is at the T1-dark seed
    level: the volume-weighted median of each voxel's log T1 ratio relative to its own
    scan's seed level. ``samples``: (T1 ratios, the scan's seed level, voxel volume).

    >>> _t1_below_seed([(np.array([0.6, 0.6, 0.8]), 0.7, 1.0), (np.array([0.8]), 0.7, 2.0)])
    False
    >>> _t1_below_seed([(np.array([0.6, 0.6, 0.8]), 0.7, 1.0), (np.array([0.8]), 0.7, 0.5)])
    True
    """
    values, weights = [], []
    for ratios, seed, voxel in samples:
        ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
        values.append(np.log(ratios) - np.log(seed))
        weights.append(np.full(ratios.size, voxel))
    value, weight = np.concatenate(values), np.concatenate(weights)
    if not value.size:
        return False
    order = np.argsort(value)
    cumulative = np.cumsum(weight[order])
    median = value[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])]
    return bool(median <= 0)


def _t1_decided_together(
    visits: tuple[VisitDecision, VisitDecision],
    finished: list[NDArray[np.bool_]],
    to_baseline: Any,
) -> tuple[list[NDArray[np.bool_]], list[int]]:
    """Regions without a fluid seed at both visits, at one place, kept or dropped at both
    by their T1 pooled over the two visits.

    A fluid-bright region (grow level) without a fluid seed is edema when its median T1 is
    at the T1-dark seed level (:func:`bmetoolkit.segment.grow_regions`). Both visits see the
    same marrow, so where each visit has such a region and they overlap on the baseline
    grid, the rule is applied once to both regions' voxels together (each voxel's T1 ratio
    relative to its own scan's seed level, weighted by its volume): a median near the level
    no longer falls on one side at one visit and on the other at the rescan. Kept, each
    region is cut as the analysis cuts a lesion (half maximum, size, T1); dropped, it is
    left out at both. A region with nothing fluid-bright at the other visit's place, and
    regions linked to one holding a fluid seed at either visit, are decided as before (a
    change is not hidden; a lesion one visit seeds is re-examined at the other). Returns
    the edema of both visits and, per visit, the regions whose decision differs from the
    visit's own.
    """
    regions = [_grow_level_regions(v) for v in visits]
    decided = [np.zeros(m.shape, bool) for m in finished]
    kept = [np.zeros(m.shape, bool) for m in finished]
    if not (regions[0][1] and regions[1][1]):
        return finished, [0, 0]
    for members in _links(regions[0][0], regions[1][0], to_baseline):
        if not (members[0] and members[1]):
            continue
        if any(regions[v][2][members[v]].any() for v in (0, 1)):
            continue  # a fluid seed at either visit: decided as before
        where = [np.isin(regions[v][0], members[v]) for v in (0, 1)]
        keep = _t1_below_seed(
            [(visits[v].t1[where[v]], visits[v].levels.t1_dark[1], visits[v].voxel_mm3)
             for v in (0, 1)]
        )  # fmt: skip
        for v in (0, 1):
            decided[v] |= where[v]
            if keep:
                kept[v] |= where[v]
    out, changed = [], []
    for v in (0, 1):
        cut = visits[v].candidates_with(kept[v]) & kept[v] if kept[v].any() else kept[v]
        joint = (finished[v] & ~decided[v]) | cut
        out.append(joint)
        own = visits[v].candidates & decided[v]  # as the visit decided alone
        changed.append(_count(own & ~joint) + _count(joint & decided[v] & ~own))
    return out, changed


def _own_regions(
    labels: NDArray[np.integer], n: int, added: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Whether each region (index = number) holds a voxel the visit found itself, not only
    voxels :func:`_reexamined` added from the other visit's lesions."""
    own = np.zeros(n + 1, bool)
    own[np.unique(labels[(labels > 0) & ~added])] = True
    own[0] = False
    return own


def same_finding(contrast_a: float, contrast_b: float) -> bool:
    """Whether two median log contrasts show one finding: both bright, each at least
    :data:`REEXAMINED_CONTRAST` of the other.

    >>> same_finding(0.35, 0.42), same_finding(0.35, 1.0), same_finding(0.0, 0.1)
    (True, False, False)
    """
    low, high = sorted((contrast_a, contrast_b))
    return low > 0 and low >= REEXAMINED_CONTRAST * high


def _count(mask: NDArray[np.bool_]) -> int:
    return int(boxed_regions(mask)[2]) if mask.any() else 0


def _groups(
    n_base: int, n_follow: int, links: NDArray[np.integer]
) -> list[tuple[list[int], list[int]]]:
    """Connected groups of regions (baseline numbers, follow-up numbers)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    size = n_base + n_follow
    if size == 0:
        return []
    links = np.asarray(links).reshape(-1, 2)
    graph = coo_matrix(
        (np.ones(len(links)), (links[:, 0] - 1, n_base + links[:, 1] - 1)), shape=(size, size)
    )
    _, component = connected_components(graph, directed=False)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for node, c in enumerate(component):
        side = 0 if node < n_base else 1
        number = node + 1 if side == 0 else node - n_base + 1
        groups.setdefault(int(c), ([], []))[side].append(number)
    return list(groups.values())


def label_movers(baseline: Any, followup: Any, registration: Any) -> tuple[Any, Any]:
    """Functions bringing a label map of one visit onto the other's grid, body by body.

    ``baseline``, ``followup``: :class:`~bmetoolkit.followup.visit.Visit`;
    ``registration``: their :class:`~bmetoolkit.followup.register.Registration`.
    Returns (baseline -> follow-up grid, follow-up -> baseline grid).
    """
    bodies_b, bodies_f = baseline.maps["vertebrae"], followup.maps["vertebrae"]
    pairs = registration.body_pairs
    transforms = registration.body_transforms
    back_pairs = {f: b for b, f in pairs.items()}
    back_transforms = {f: np.linalg.inv(transforms[b]) for b, f in pairs.items()}

    def to_followup(labels: NDArray[np.integer]) -> NDArray[np.integer]:
        maps = {"vertebrae": bodies_b, "labels": bodies_b.with_data(labels, source="labels")}
        return np.asarray(warp_labels(maps, bodies_f, back_pairs, back_transforms)["labels"].data)

    def to_baseline(labels: NDArray[np.integer]) -> NDArray[np.integer]:
        maps = {"vertebrae": bodies_f, "labels": bodies_f.with_data(labels, source="labels")}
        return np.asarray(warp_labels(maps, bodies_b, pairs, transforms)["labels"].data)

    return to_followup, to_baseline
