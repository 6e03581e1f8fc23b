"""Phantom pairs: a follow-up visit (or a rescan) of the same spine, with the true change.

A pair is two renders of one spine (same anatomy, bone, marrow texture and contrast) that
differ in what a second visit changes:

- **lesions** (follow-up pairs only): each may grow, shrink, resolve, stay, or, for Modic
  type I (pure or mixed), convert to type II; a new lesion may appear (:data:`FATES`);
- **acquisition**: every grid gets a new offset, tilt and pixel size, and the image noise
  is new (:func:`~bmetoolkit.data.phantom.randomize.render_case`'s ``noise_seed``);
- **position**: the patient lies differently: the whole follow-up is moved by a rigid
  ``motion`` in scanner space (``follow-up RAS = motion @ baseline RAS``; a flexion of a
  few degrees about the left-right axis and a shift of up to :data:`MOTION_SHIFT_MM`).

A **test-retest** pair (``retest=True``) changes acquisition and position only: the true
change is zero everywhere. ``vary`` keeps all but some of the second visit's changes
(:data:`ACQUISITION_CHANGES`: the noise, the grids' offset, pixel size and tilt, the
patient's position), so a rescan's difference can be split into its sources.

:meth:`PhantomPair.change_table` gives the true change per region (an endplate, or a whole
body): bone marrow edema volume and Modic type at each visit. :data:`TUNING_PAIR_SEEDS` and
:data:`HELD_OUT_PAIR_SEEDS` are disjoint (each the randomised phantom's own tuning or
held-out seeds, so a pair's baseline is never a case looked at while choosing the analysis
defaults on the other side).

Examples
--------
>>> pair = make_phantom_pair(11, small=True)
>>> pair.baseline.t1.shape != pair.followup.t1.shape or pair.retest
True
>>> retest = make_phantom_pair(11, retest=True, small=True)
>>> all(row["bme_change_ml"] == 0 for row in retest.change_table())
True
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.anatomy import Spine, body_height_reference_mm
from bmetoolkit.data.phantom.build import PhantomStudy
from bmetoolkit.data.phantom.grids import GridSpec, rotation
from bmetoolkit.data.phantom.lesions import Lesion
from bmetoolkit.data.phantom.randomize import (
    ENDPLATE_CLEARANCE_MM,
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    CaseDraws,
    _blob,
    _endplate_lesion,
    _spine,
    case_kind,
    draw_case,
    render_case,
)
from bmetoolkit.data.phantom.texture import Texture
from bmetoolkit.data.phantom.truth import PhantomTruth, endplates_of
from bmetoolkit.volume import Volume

__all__ = [
    "ACQUISITION_CHANGES",
    "FATES",
    "HELD_OUT_PAIR_SEEDS",
    "TUNING_PAIR_SEEDS",
    "PhantomPair",
    "follow_lesions",
    "make_phantom_pair",
    "truth_visit",
]

Range = tuple[float, float]

#: What happens to a lesion between visits, with weights (``"converted"``: Modic I -> II,
#: drawn only for lesions with a type I part; otherwise its weight goes to ``"unchanged"``).
FATES: dict[str, float] = {
    "grown": 0.25,
    "shrunk": 0.25,
    "resolved": 0.15,
    "unchanged": 0.15,
    "converted": 0.2,
}
#: Size factors of a grown and of a shrunk lesion (depth/height and widths).
GROW_FACTOR: Range = (1.3, 1.7)
SHRINK_FACTOR: Range = (0.45, 0.75)
#: Probability that a new lesion (edema or Modic I) appears at the follow-up.
NEW_LESION_PROBABILITY = 0.5
#: Largest depth (fraction of body height) and width of a grown lesion.
MAX_HEIGHT_FRAC = 0.7
MAX_WIDTH = 0.95
#: Patient motion between visits: rotation (degrees) about x (flexion), y and z, and shift.
MOTION_ROTATION_DEG = (6.0, 3.0, 3.0)
MOTION_SHIFT_MM = 15.0
#: New acquisition per grid: offset (mm), tilt (degrees) and relative pixel size change.
GRID_OFFSET_MM = 3.0
GRID_TILT_DEG = 3.0
PIXEL_CHANGE = 0.08
#: What a second visit's acquisition changes (``make_phantom_pair(vary=...)``): the image
#: noise, each grid's offset, pixel size (and so matrix) and tilt, and the patient's position.
ACQUISITION_CHANGES: tuple[str, ...] = ("noise", "offset", "pixel", "tilt", "position")
#: Pairs for choosing the follow-up defaults, and pairs never looked at while choosing them.
TUNING_PAIR_SEEDS: tuple[int, ...] = TUNING_SEEDS
HELD_OUT_PAIR_SEEDS: tuple[int, ...] = HELD_OUT_SEEDS
#: Key mixed into a pair's seed for its own random stream (fates, grids, motion, noise).
_PAIR_KEY = 14


@dataclass
class PhantomPair:
    """Two visits of one phantom spine, with what changed between them.

    Attributes
    ----------
    baseline, followup : PhantomStudy
        The visits; each truth lies on its own T1 grid and in its own scanner space.
    motion : ndarray, shape (4, 4)
        Rigid transform of the patient between visits: a point at baseline RAS ``x`` lies at
        follow-up RAS ``motion @ x``.
    fates : list of dict
        Per lesion: ``level``, ``zone``, ``baseline_kind``, ``followup_kind`` (None when
        resolved or new) and ``fate`` (``"grown"``, ``"shrunk"``, ``"resolved"``,
        ``"unchanged"``, ``"converted"``, ``"new"``).
    retest : bool
        True for a test-retest pair (no change at all).
    """

    baseline: PhantomStudy
    followup: PhantomStudy
    motion: NDArray[np.float64]
    fates: list[dict[str, Any]]
    retest: bool

    def change_table(self) -> list[dict[str, Any]]:
        """True change per region (see :func:`true_regions`), baseline order.

        Returns
        -------
        list of dict
            ``region``, ``level``, ``zone``, ``bme_ml_baseline``, ``bme_ml_followup``,
            ``bme_change_ml``, ``modic_baseline``, ``modic_followup``.
        """
        before = true_regions(self.baseline.truth)
        after = true_regions(self.followup.truth)
        rows = []
        for key in dict.fromkeys([*before, *after]):
            b, f = before.get(key, _EMPTY), after.get(key, _EMPTY)
            rows.append(
                {
                    "region": " ".join(key),
                    "level": key[0],
                    "zone": key[1],
                    "bme_ml_baseline": b["bme_ml"],
                    "bme_ml_followup": f["bme_ml"],
                    "bme_change_ml": round(f["bme_ml"] - b["bme_ml"], 4),
                    "modic_baseline": b["modic"],
                    "modic_followup": f["modic"],
                }
            )
        return rows


_EMPTY = {"bme_ml": 0.0, "modic": None}


def true_regions(truth: PhantomTruth) -> dict[tuple[str, str], dict[str, Any]]:
    """BME volume (mL) and Modic type per region ``(level, zone)`` of a phantom's truth.

    Zones are ``"superior"`` and ``"inferior"`` (an endplate: its Modic type and the edema
    of its lesions) and ``"body"`` (all edema of a body, for bodies with edema at a visit).
    """
    regions: dict[tuple[str, str], dict[str, Any]] = {}
    for row in truth.endplates:
        regions[(row["level"], row["endplate"])] = {"bme_ml": 0.0, "modic": row["modic_type"]}
    for lesion in truth.lesions:
        for zone in {lesion["zone"], "body"}:
            entry = regions.setdefault((lesion["level"], zone), {"bme_ml": 0.0, "modic": None})
            entry["bme_ml"] = round(entry["bme_ml"] + lesion["bme_volume_ml"], 4)
    return regions


def _pair_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _PAIR_KEY]))


def _scaled(lesion: Lesion, factor: float, spine: Spine) -> Lesion:
    """``lesion`` with its depth/height and widths scaled by ``factor`` (kept inside the body)."""
    ceiling = MAX_HEIGHT_FRAC
    if lesion.endplate is None:
        height = body_height_reference_mm(spine.vertebra(lesion.level))
        ceiling = min(ceiling, 1 - abs(lesion.si_center) - 2 * ENDPLATE_CLEARANCE_MM / height)
    return replace(
        lesion,
        height_frac=float(np.clip(lesion.height_frac * factor, 0.05, max(ceiling, 0.06))),
        ap_width=float(min(lesion.ap_width * factor, MAX_WIDTH)),
        lr_width=float(min(lesion.lr_width * factor, MAX_WIDTH)),
    )


def _converted(lesion: Lesion) -> Lesion:
    """A Modic type I (or mixed I) lesion turned fatty: type II, same shape."""
    return replace(lesion, kind="modic2")


def _fate(rng: np.random.Generator, lesion: Lesion) -> str:
    weights = dict(FATES)
    if "modic1" not in lesion.kind and lesion.kind != "modic2/1":
        weights["unchanged"] += weights.pop("converted")
    names = list(weights)
    p = np.array(list(weights.values()))
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _new_lesion(
    rng: np.random.Generator, spine: Spine, lesions: list[Lesion], levels: tuple[str, ...]
) -> Lesion | None:
    """A new edema (in a body without lesions) or Modic I (at a free endplate)."""
    busy = {lesion.level for lesion in lesions}
    free = [lv for lv in levels if lv not in busy and lv != "S1"]
    if not free:
        return None
    level = free[int(rng.integers(len(free)))]
    vertebra = spine.vertebra(level)
    if rng.random() < 0.5:
        return _blob(rng, vertebra, "edema", (0.2, 0.45))
    endplate = endplates_of(spine, vertebra)[int(rng.integers(2))]
    return _endplate_lesion(rng, level, endplate, "modic1")


def follow_lesions(
    rng: np.random.Generator, spine: Spine, lesions: list[Lesion], levels: tuple[str, ...]
) -> tuple[list[Lesion], list[dict[str, Any]]]:
    """Draw the follow-up lesions: each baseline lesion's fate, and perhaps a new lesion.

    A haemangioma (a distractor) never changes.

    Returns
    -------
    lesions : list of Lesion
        The follow-up's lesions.
    fates : list of dict
        See :attr:`PhantomPair.fates`.
    """
    after: list[Lesion] = []
    fates = []
    for lesion in lesions:
        fate = "unchanged" if lesion.kind == "haemangioma" else _fate(rng, lesion)
        if fate == "grown":
            changed: Lesion | None = _scaled(lesion, rng.uniform(*GROW_FACTOR), spine)
        elif fate == "shrunk":
            changed = _scaled(lesion, rng.uniform(*SHRINK_FACTOR), spine)
        elif fate == "converted":
            changed = _converted(lesion)
        elif fate == "resolved":
            changed = None
        else:
            changed = lesion
        if changed is not None:
            after.append(changed)
        fates.append(_fate_row(lesion, changed, fate))
    if rng.random() < NEW_LESION_PROBABILITY:
        new = _new_lesion(rng, spine, [*lesions, *after], levels)
        if new is not None:
            after.append(new)
            fates.append(_fate_row(None, new, "new"))
    return after, fates


def _fate_row(before: Lesion | None, after: Lesion | None, fate: str) -> dict[str, Any]:
    either = before or after
    assert either is not None
    return {
        "level": either.level,
        "zone": "body" if either.endplate is None else either.endplate,
        "baseline_kind": before.kind if before else None,
        "followup_kind": after.kind if after else None,
        "fate": fate,
    }


def _new_grid(
    rng: np.random.Generator, spec: GridSpec, vary: frozenset[str] = frozenset(ACQUISITION_CHANGES)
) -> GridSpec:
    """The same protocol acquired again: new offset, tilt and (slightly) pixel size; only
    those named in ``vary`` (``"offset"``, ``"pixel"``, ``"tilt"``) are kept new. All are
    drawn either way, so a change kept has the value it has when all change."""
    scale = 1 + rng.uniform(-PIXEL_CHANGE, PIXEL_CHANGE)
    offset = [o + rng.uniform(-GRID_OFFSET_MM, GRID_OFFSET_MM) for o in spec.offset_mm]
    tilt = [t + rng.uniform(-GRID_TILT_DEG, GRID_TILT_DEG) for t in spec.tilt_deg]
    if "pixel" in vary:
        spec = replace(
            spec,
            n_ap=max(round(spec.n_ap / scale), 1),
            n_si=max(round(spec.n_si / scale), 1),
            pixel_ap_mm=spec.pixel_ap_mm * scale,
            pixel_si_mm=spec.pixel_si_mm * scale,
        )
    if "offset" in vary:
        spec = replace(spec, offset_mm=tuple(offset))
    if "tilt" in vary:
        spec = replace(spec, tilt_deg=tuple(tilt))
    return spec


def _motion(rng: np.random.Generator) -> NDArray[np.float64]:
    """A rigid patient motion: rotations about x, y, z and a shift, as a 4x4 RAS matrix."""
    angles = [rng.uniform(-a, a) for a in MOTION_ROTATION_DEG]
    shift = rng.uniform(-1, 1, 3)
    shift *= MOTION_SHIFT_MM * rng.uniform(0.3, 1.0) / max(np.linalg.norm(shift), 1e-9)
    motion = np.eye(4)
    motion[:3, :3] = rotation(angles)
    motion[:3, 3] = shift
    return motion


def _moved(volume: Volume, motion: NDArray[np.float64]) -> Volume:
    return Volume(
        volume.data, motion @ volume.affine, kind=volume.kind, source=volume.source,
        meta=volume.meta,
    )  # fmt: skip


def _move_study(study: PhantomStudy, motion: NDArray[np.float64]) -> PhantomStudy:
    """The study as seen after the patient moved by ``motion`` (images, masks, centroids)."""
    truth = study.truth
    lesions = []
    for row in truth.lesions:
        centroid = np.asarray(row["centroid_ras_mm"], dtype=np.float64)
        moved = motion[:3, :3] @ centroid + motion[:3, 3]
        lesions.append(row | {"centroid_ras_mm": [round(float(c), 3) for c in moved]})
    study.truth = PhantomTruth(
        masks={name: _moved(v, motion) for name, v in truth.masks.items()},
        endplates=truth.endplates,
        lesions=lesions,
        grid_masks={
            contrast: {name: _moved(v, motion) for name, v in masks.items()}
            for contrast, masks in truth.grid_masks.items()
        },
    )
    study.t1, study.t2, study.stir = (_moved(v, motion) for v in (study.t1, study.t2, study.stir))
    study.render_parameters["motion"] = np.round(motion, 6).tolist()
    return study


def make_phantom_pair(
    seed: int,
    *,
    retest: bool = False,
    kind: str | None = None,
    small: bool = False,
    baseline_lesions: list[Lesion] | None = None,
    followup_lesions: list[Lesion] | None = None,
    move: bool = True,
    textured: bool = True,
    vary: Collection[str] = ACQUISITION_CHANGES,
    veins: bool = True,
) -> PhantomPair:
    """Two visits of one randomised phantom spine (:mod:`.randomize`) and their true change.

    Parameters
    ----------
    seed : int
        The baseline is ``make_randomized_phantom(seed, kind=kind)``; the follow-up's fates,
        grids, motion and noise come from a stream of the same seed. Same arguments, same
        pair.
    retest : bool
        A test-retest pair: the same lesions, a new acquisition and position.
    kind : {'random', 'healthy', 'central_edema'}, optional
        The baseline's kind; by default the seed's own (:func:`.randomize.case_kind`).
    small : bool
        Coarse in-plane grids for fast tests.
    baseline_lesions, followup_lesions : list of Lesion, optional
        The lesions of a visit, chosen instead of drawn (``fates`` then says ``"chosen"``
        for the follow-up's).
    move : bool
        Move the patient between visits (a rigid motion); False keeps one scanner space.
    textured : bool
        False: marrow without texture (no fat spots, red-marrow islands, mottling or
        bands), as a smooth or fat-suppressed marrow shows.
    vary : collection of str
        What the second visit's acquisition changes, of :data:`ACQUISITION_CHANGES`
        (default all): ``"noise"`` new image noise (else the baseline's noise stream),
        ``"offset"``, ``"pixel"``, ``"tilt"`` of each grid, ``"position"`` the patient's
        motion (as ``move``). What changes takes the value it takes when all change, so a
        test-retest difference can be split into its sources.
    veins : bool
        False: no basivertebral veins (:class:`.texture.Vein`), as the randomised phantom
        rendered before session 21 (every other draw is the same).

    Returns
    -------
    PhantomPair
    """
    draws = draw_case(seed, kind=kind or case_kind(seed), small=small)
    if not textured:
        draws = replace(draws, texture=replace(Texture(), bias=draws.texture.bias))
    if not veins:
        draws = replace(draws, texture=replace(draws.texture, veins=()))
    if baseline_lesions is not None:
        draws = replace(draws, lesions=tuple(baseline_lesions))
    unknown = set(vary) - set(ACQUISITION_CHANGES)
    if unknown:
        raise ValueError(
            f"vary: unknown acquisition changes {sorted(unknown)}; choose among "
            f"{list(ACQUISITION_CHANGES)}"
        )
    changes = frozenset(vary)
    rng = _pair_rng(seed)
    spine = _spine(seed, draws.cortex_mm, draws.endplate_mm, draws.surroundings)
    lesions, fates = _followup_lesions(rng, spine, draws, retest, followup_lesions)
    grids = {role: _new_grid(rng, spec, changes) for role, spec in draws.grids.items()}
    motion = _motion(rng) if move else np.eye(4)  # drawn as before: the same noise stream
    if "position" not in changes:
        motion = np.eye(4)
    noise_seed = int(rng.integers(2**31))
    baseline = render_case(draws)
    second = replace(draws, lesions=tuple(lesions), grids=grids)
    followup = render_case(second, noise_seed=noise_seed if "noise" in changes else None)
    followup = _move_study(followup, motion)
    return PhantomPair(baseline, followup, motion, fates, retest)


def _followup_lesions(
    rng: np.random.Generator,
    spine: Spine,
    draws: CaseDraws,
    retest: bool,
    chosen: list[Lesion] | None,
) -> tuple[list[Lesion], list[dict[str, Any]]]:
    baseline = list(draws.lesions)
    if chosen is not None:
        return list(chosen), [_fate_row(None, lesion, "chosen") for lesion in chosen]
    if retest:
        return baseline, [_fate_row(lesion, lesion, "unchanged") for lesion in baseline]
    levels = spine.levels[1:] if draws.fov == "top_cut" else spine.levels
    return follow_lesions(rng, spine, baseline, levels)


def truth_visit(study: PhantomStudy, name: str = "visit") -> Any:
    """A visit (:class:`bmetoolkit.followup.visit.Visit`) whose analysis is the phantom's
    truth: the comparison alone, without the analysis' errors (tests, benchmarks).

    Lesions are the connected parts of edema or Modic voxels inside the bodies.
    """
    from scipy import ndimage

    from bmetoolkit.followup.visit import Visit

    masks = study.truth.masks
    bodies = np.asarray(masks["vertebrae"].data)
    found = (np.asarray(masks["bme_mask"].data) > 0) | (np.asarray(masks["modic_map"].data) > 0)
    numbers, n = ndimage.label(found & (bodies > 0))
    grid = masks["vertebrae"].grid
    levels = {v.verse_id: v.level for v in study.spine.vertebrae}
    lesions = []
    for number in range(1, n + 1):
        inside = numbers == number
        modic = np.asarray(masks["modic_map"].data)[inside]
        lesions.append({
            "lesion": number, "level": levels[int(np.bincount(bodies[inside]).argmax())],
            "zone": "central", "finding": "Modic" if modic.any() else "BME",
            "volume_ml": round(inside.sum() * grid.voxel_volume_mm3 / 1000, 4),
            "centroid_ras_mm": grid.voxel_to_world(np.argwhere(inside).mean(axis=0)).tolist(),
        })  # fmt: skip
    report = {
        "labels": {"levels_known": True, "bodies": {str(k): v for k, v in levels.items()}},
        "lesions": lesions,
        "endplates": [row | {"body_partly_outside": False} for row in study.truth.endplates],
        "bme": {"volume_ml": round(found.sum() * grid.voxel_volume_mm3 / 1000, 4)},
        "parameters": {}, "versions": {"bmetoolkit": "truth"},
    }  # fmt: skip
    maps = {
        "vertebrae": masks["vertebrae"],
        "bme_mask": masks["bme_mask"],
        "modic_map": masks["modic_map"],
        "lesion_labels": masks["vertebrae"].with_data(numbers.astype(np.uint16)),
    }
    return Visit(name, report, maps, study.t1)
