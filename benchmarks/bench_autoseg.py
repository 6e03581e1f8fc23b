"""Benchmark automatic vertebral bodies and levels on randomized phantoms (held-out seeds).

Usage::

    python benchmarks/bench_autoseg.py [--tuning] [--cases N] [--images t1|t2|stir]
                                       [--on-t1-grid] [--no-sacrum-every K] [--plain]
                                       [--real-anatomy] [--pelvis-bowel] [--resampled-1mm]
                                       [--no-vertebra-above]
                                       [--pixel-mm LOW-HIGH] [--cache DIR] [--jobs J]
                                       [--autoseg-param NAME=VALUE ...]

By default the held-out seeds of :mod:`bmetoolkit.data.phantom.randomize` (5000-5059, never
looked at while choosing the defaults; ``--tuning`` runs the tuning seeds 0-59 instead) are
rendered at their realistic size and segmented with :func:`find_vertebral_bodies`:

- ``--images t1`` (default): the T1 with the fluid image (STIR or fat-suppressed T2) and the T2;
- ``--images t2``: the T2 alone (no T1, as many lumbar protocols);
- ``--images stir``: the fluid image alone.

A T2 or STIR alone is read on its own grid, as a study without a T1 is, against the truth
the phantom renders on that grid (since session 43); ``--on-t1-grid`` resamples it onto the
T1 grid instead (the rows before: a study no user without a T1 has, its upper edge across
the T1 grid's rows on a tilted slab), read on the box it covers and also scored on the
voxels it covers. ``--analysis --images t2|stir`` reads the image the same way (on its own
grid since session 44, against the truth's edema and bodies on that grid).

Every ``--no-sacrum-every``-th case (default 4) is cut above the sacrum (the rows of the
grid read from the sacrum's highest voxel down are removed), to check that levels are never
named when the sacrum is not in view. ``--real-anatomy`` adds the aorta, vena cava, iliac
wings and bowel gas of :func:`~bmetoolkit.data.phantom.randomize.draw_case`;
``--pelvis-bowel`` the sacrum below S1, pelvic bone and fluid-filled bowel loops;
``--resampled-1mm`` resamples every image to 1 mm isotropic voxels (opt-in phantom
properties). T10 is rendered above T11 as a healthy body with its truth label (scored as
every true body: a T10 found is a body in the Dice), as every real spine has a vertebra
there; since session 42 by default (``--vertebra-above``, opt-in since session 37):
``--no-vertebra-above`` gives the family before, which draws a block of tissue of the
marrow's signal above the T10/T11 disc instead (a body found there counts as false).
``--pixel-mm LOW-HIGH`` (e.g. ``1.2-1.9``) draws
every case's in-plane pixels again, along AP uniformly from LOW to HIGH mm (SI: times the
case's own drawn aspect, clipped to the range), from a stream of the seed that no other draw
uses, each field of view kept (the matrix shrinks): coarse in-plane pixels such as those of
the bundled sample study (1.4 x 1.6 mm), which the default draws (0.5-1.2 mm) never reach;
it applies to ``--analysis`` too. ``--plain``
runs the plain phantom family (seeds 9001-9012) instead. ``--cache DIR`` keeps the rendered
randomized phantoms (pickles keyed by the generator's source, as in ``bench_randomized.py``)
so that runs with other ``--images`` reuse them; ``--jobs`` runs cases in parallel.
``--autoseg-param NAME=VALUE`` (repeatable) changes a field of :class:`AutosegParameters`,
e.g. ``dark_shell_max_mm=2.5`` (the opt-in dark shell); ``--param NAME=VALUE`` (repeatable,
with ``--analysis``) one of the analysis' :class:`Parameters`, e.g. ``vein_max_height_frac=0``.

Prints per case and overall: per-body Dice against the true VerSe bodies (median and worst
decile, pooled over bodies), the largest automatic body over the largest true body, levels
right / unknown / wrong on cases with the sacrum in view and named / not named on cases
without, the segmentation time (Study building and rendering not timed) and the share of the
true lesion voxels inside the automatic bodies.

Targets (issue 16): Dice median >= 0.90 and worst decile >= 0.80; no body > 1.5 x the largest
true body; levels right on >= 90 % of cases with the sacrum in view, never named without it;
< 3 s per ~400x400x16 study.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from phantom_cache import cached
from vein_truth import vein_line, vein_row

from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.data.phantom.randomize import (
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    CaseDraws,
    case_kind,
    draw_case,
    make_randomized_phantom,
    render_case,
)
from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies
from bmetoolkit.spine.labels import VertebraLabels, level_name, verse_id
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume

PLAIN_SEEDS = tuple(range(9001, 9013))
PLAIN_HEALTHY_SEED = 9001


@dataclass
class ImagesOnly:
    """A study seen without some of its images (the fields :func:`find_vertebral_bodies` reads).

    Stands in for a :class:`Study` without a T1 until every caller builds one directly.
    ``covered`` is where the images kept have data on ``grid`` (``Study.covered``): a T2 or
    STIR resampled onto the T1 grid may not reach its upper rows, and a :class:`Study`
    holding it there is read only on the box it covers (``Study.analysable``); without
    it every voxel counts as covered.
    """

    t1: Volume | None
    t2: Volume | None
    stir: Volume | None
    grid: Grid
    covered: np.ndarray | None = None

    @property
    def fluid(self) -> Volume:
        return self.stir if self.stir is not None else self.t2

    def analysable(self) -> np.ndarray:
        if self.covered is not None:
            return self.covered
        return np.ones(self.grid.shape, bool)


def body_scores(
    result: VertebraLabels, truth: np.ndarray, covered: np.ndarray | None = None
) -> tuple[dict[str, float], bool]:
    """Dice per true level, and whether every body found got its own VerSe id and name.

    A true body that was missed scores (about) Dice 0 but does not make the levels wrong; one
    found under another level's id or name does, and so does a segment named after a true
    body in view that it neither mostly lies in nor mostly holds. A true body counts as
    missed when the segment overlapping it most is mostly another true body (a neighbour
    reaching a few voxels into it), or mostly tissue holding little of it, so that segment's
    id says nothing about this body's level.

    With ``covered`` (the voxels the segmented image shows) the truth and the bodies are
    both read there only, as a reader tracing on that image would see them; a true body
    wholly outside is left out.
    """
    found = np.asarray(result.bodies.data)
    if covered is not None:
        found, truth = np.where(covered, found, 0), np.where(covered, truth, 0)
    dice, right = {}, True
    for verse in (int(v) for v in np.unique(truth[truth > 0])):
        true = truth == verse
        ids, counts = np.unique(found[true], return_counts=True)
        counts, ids = counts[ids > 0], ids[ids > 0]
        if ids.size == 0:
            dice[level_name(verse)] = 0.0
            continue
        best = int(ids[np.argmax(counts)])
        mask = found == best
        dice[level_name(verse)] = 2 * float((mask & true).sum()) / float(mask.sum() + true.sum())
        if _majority_level(truth[mask]) == verse and _holds(mask, true):
            right &= best == verse and result.levels.get(best) == level_name(verse)
    return dice, right and not _named_in_another_place(found, truth, result.levels)


def _holds(mask: np.ndarray, true: np.ndarray) -> bool:
    """Whether a segment mostly lies in a true body or holds most of it (else the body counts
    as missed, and the segment's name is not read as that body's)."""
    shared = float((mask & true).sum())
    return shared >= FALSE_BODY_SHARE * mask.sum() or shared >= 0.5 * true.sum()


def _verse_of_name(name: str) -> int | None:
    """The VerSe id a body's name gives (None for ``"body 3"`` and other unnamed bodies)."""
    try:
        return verse_id(name)
    except ValueError:
        return None


def _named_in_another_place(found: np.ndarray, truth: np.ndarray, levels: dict) -> bool:
    """Whether a body carries the name of a true body in view that it neither mostly lies in
    nor mostly holds.

    The per-level check reads each true body's best segment; a segment of tissue named after a
    true body that was missed (a block above a missed T11 counted as T11 from the sacrum)
    holds too little of it to be read there, yet its name is wrong.
    """
    for body, name in levels.items():
        verse = _verse_of_name(str(name))
        true = truth == verse if verse is not None else None
        if true is None or not true.any():
            continue  # unnamed, or a level the truth does not hold (T10 above the phantom's T11)
        mask = found == body
        if mask.any() and not _holds(mask, true):
            return True
    return False


def _majority_level(true_ids: np.ndarray) -> int:
    """The true body (VerSe id) holding most of a segment's voxels inside true bodies (0: none)."""
    inside = true_ids[true_ids > 0]
    return int(np.bincount(inside).argmax()) if inside.size else 0


#: A found body with less than this share of its voxels inside true bodies is a false body.
FALSE_BODY_SHARE = 0.3


def false_bodies(found: np.ndarray, truth: np.ndarray) -> int:
    """Automatic bodies with under :data:`FALSE_BODY_SHARE` of their voxels inside any true
    body: tissue taken for a body (the per-level Dice does not see them)."""
    inside = np.bincount(found[truth > 0].ravel(), minlength=int(found.max()) + 1)
    size = np.bincount(found.ravel(), minlength=int(found.max()) + 1)
    share = inside[1:] / np.maximum(size[1:], 1)
    return int(((size[1:] > 0) & (share < FALSE_BODY_SHARE)).sum())


def largest_ratio(found: np.ndarray, truth: np.ndarray) -> float:
    """Largest automatic body over the largest true body (voxel counts)."""
    biggest_found = np.bincount(found.ravel())[1:].max(initial=0)
    biggest_true = np.bincount(truth.ravel())[1:].max(initial=1)
    return float(biggest_found) / float(biggest_true)


def _cut_above_sacrum(grid: Grid, truth: np.ndarray) -> tuple[slice, ...] | None:
    """Voxel box of ``grid`` above the sacrum's highest voxel (None when no S1 in view)."""
    s1 = np.argwhere(truth == verse_id("S1"))
    if s1.size == 0:
        return None
    si_axis = int(np.argmax(np.abs(grid.direction[2])))
    box = [slice(None)] * 3
    if grid.direction[2, si_axis] > 0:
        box[si_axis] = slice(int(s1[:, si_axis].max()) + 1, None)
    else:
        box[si_axis] = slice(None, int(s1[:, si_axis].min()))
    return tuple(box)


def _cropped(volume: Volume | None, box: tuple[slice, ...]) -> Volume | None:
    if volume is None:
        return None
    start = np.array([s.start or 0 for s in box] + [1.0])
    affine = volume.affine.copy()
    affine[:3, 3] = (volume.affine @ start)[:3]
    return Volume(np.asarray(volume.data)[box], affine, kind=volume.kind, source=volume.source)


#: Phantom properties (``--pelvis-bowel``, ``--resampled-1mm``, ``--[no-]vertebra-above``),
#: set by :func:`main` (the vertebra above T11 drawn by default since session 42).
OPTIONS: dict[str, bool] = {
    "pelvis_and_bowel": False,
    "resampled_1mm": False,
    "vertebra_above": True,
}
#: :class:`AutosegParameters` fields changed by ``--autoseg-param``, set by :func:`main`.
AUTOSEG: dict[str, float] = {}
#: :class:`Parameters` fields of the analysis changed by ``--param`` (``--analysis``), set by
#: :func:`main`.
ANALYSIS: dict[str, Any] = {}
#: In-plane pixel range (mm) of ``--pixel-mm``, None for the drawn pixels; set by :func:`main`.
PIXEL_MM: list[tuple[float, float] | None] = [None]
#: Entropy added to a case's seed for the stream of ``--pixel-mm`` (no generator stream uses it).
PIXEL_STREAM = 16_016


def with_pixels(draws: CaseDraws, pixel_mm: tuple[float, float]) -> CaseDraws:
    """``draws`` with every grid's in-plane pixels drawn again from ``pixel_mm`` (AP, mm).

    The SI pixel is the AP one times the case's own drawn aspect (clipped to the range); the
    fields of view, slices, offsets and tilts stay, so the matrix shrinks or grows. A grid
    whose top was placed to cut the top body keeps its top edge. The pixels come from a
    stream of the seed that no draw of :func:`draw_case` uses, so the anatomy, lesions,
    contrasts and noise streams are the case's own.
    """
    rng = np.random.default_rng([draws.seed, PIXEL_STREAM])
    grids, pixels = {}, {}
    for role, spec in draws.grids.items():
        ap = float(rng.uniform(*pixel_mm))
        si = float(np.clip(ap * spec.pixel_si_mm / spec.pixel_ap_mm, *pixel_mm))
        n_ap = max(1, round(spec.n_ap * spec.pixel_ap_mm / ap))
        n_si = max(1, round(spec.n_si * spec.pixel_si_mm / si))
        offset = spec.offset_mm
        if draws.fov == "top_cut":  # keep the top edge where it cuts the top body
            shift = (spec.n_si - 1) / 2 * spec.pixel_si_mm - (n_si - 1) / 2 * si
            offset = (offset[0], offset[1], offset[2] + shift)
        grids[role] = replace(
            spec, n_ap=n_ap, n_si=n_si, pixel_ap_mm=ap, pixel_si_mm=si, offset_mm=offset
        )
        pixels[role] = (ap, si)
    return replace(draws, grids=grids, pixel_mm=pixels)


def _pixel_suffix() -> str:
    """The cache key's part for ``--pixel-mm`` (empty without it)."""
    pixel_mm = PIXEL_MM[0]
    return "" if pixel_mm is None else f"-pixel{pixel_mm[0]:g}-{pixel_mm[1]:g}"


def _randomized(seed: int, real_anatomy: bool, cache: Path | None, kind: str | None = None) -> Any:
    """The randomized phantom of a seed, from ``cache`` when it holds this generator's."""
    from bench_randomized import _generator_version

    options = {name: on for name, on in OPTIONS.items() if on}
    suffix = "".join(f"-{name}" for name in options) + _pixel_suffix()
    key = f"{_generator_version()}-{seed}{'-real' if real_anatomy else ''}{suffix}"
    kind = kind or case_kind(seed)
    pixel_mm = PIXEL_MM[0]
    if pixel_mm is None:
        return cached(
            cache,
            key,
            lambda: make_randomized_phantom(seed, kind=kind, real_anatomy=real_anatomy, **options),
        )
    draws = draw_case(seed, kind=kind, real_anatomy=real_anatomy, **options)
    return cached(cache, key, lambda: render_case(with_pixels(draws, pixel_mm)))


def run_case(
    seed: int,
    images: str,
    plain: bool,
    cut: bool,
    real_anatomy: bool = False,
    cache: Path | None = None,
    on_t1_grid: bool = False,
) -> dict[str, Any]:
    """Build (or load from ``cache``), segment and score one case."""
    if plain:
        kind = "healthy" if seed == PLAIN_HEALTHY_SEED else "random"
        phantom = make_phantom(seed, lesions=kind, config=PhantomConfig.realistic())
    else:
        kind = case_kind(seed)
        phantom = _randomized(seed, real_anatomy, cache)
    if images == "t1" or on_t1_grid:
        study, truth, lesion, covered = _on_t1_grid(phantom, images, cut)
    else:
        study, truth, lesion, covered = _on_own_grid(phantom, images, cut)
    start, cpu_start = time.perf_counter(), time.process_time()
    sacrum = bool((truth == verse_id("S1")).any())
    try:
        result = find_vertebral_bodies(study, AutosegParameters(**AUTOSEG))
    except BmetoolkitError as error:  # scored as every body missed, levels unknown
        return _failed(seed, kind, study, truth, sacrum, lesion, str(error))
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    dice, right = body_scores(result, truth)
    dice_covered = dice if covered is None else body_scores(result, truth, covered)[0]
    named = result.provenance["anchor"] is not None
    return {
        "seed": seed,
        "kind": kind,
        "shape": "x".join(map(str, study.grid.shape)),
        "n_bodies": len(result.levels),
        "dice": dice,
        "dice_covered": dice_covered,
        "largest_ratio": largest_ratio(np.asarray(result.bodies.data), truth),
        "false_bodies": false_bodies(np.asarray(result.bodies.data), truth),
        "sacrum_in_view": sacrum,
        "levels": ("unknown" if not named else "right" if right else "WRONG")
        if sacrum
        else ("NAMED" if named else "not named"),
        "confidence": result.provenance["level_confidence"],
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "lesion_in": int((np.asarray(result.bodies.data)[lesion] > 0).sum()),
        "lesion_all": int(lesion.sum()),
    }


def _truth_arrays(masks: dict[str, Volume]) -> tuple[np.ndarray, np.ndarray]:
    """The true bodies (VerSe ids) and lesion voxels (edema or a Modic change) of ``masks``."""
    lesion = (np.asarray(masks["modic_map"].data) > 0) | (np.asarray(masks["bme_mask"].data) > 0)
    return np.asarray(masks["vertebrae"].data), lesion


def _on_t1_grid(
    phantom: Any, images: str, cut: bool
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray | None]:
    """The study, true bodies, lesion voxels and covered voxels on the T1 grid.

    With ``images`` ``"t2"`` or ``"stir"`` that image alone, resampled onto the T1 grid
    (``--on-t1-grid``, the T2- and STIR-alone rows before session 43): a study no user
    without a T1 has, whose fluid image's upper edge may lie across the array's rows.
    """
    # The roles are known: the role check (which refuses some randomized draws, e.g. held-out
    # seed 5006) is not what is benchmarked here.
    full = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir, verify_roles=False)
    truth, lesion = _truth_arrays(phantom.truth.masks)
    volumes = {"t1": full.t1, "t2": full.t2, "stir": full.stir}
    box = _cut_above_sacrum(volumes["t1"].grid, truth) if cut else None
    if box is not None:
        volumes = {role: _cropped(v, box) for role, v in volumes.items()}
        truth, lesion = truth[box], lesion[box]
    if images == "t1":
        study = Study.from_images(
            volumes["t1"], t2=volumes["t2"], stir=volumes["stir"], verify_roles=False
        )
        return study, truth, lesion, None
    # The image (on the T1 grid here) may not cover every true voxel; the bodies are also
    # scored on the voxels it covers (``dice_covered``).
    covered = full.covered[images] if box is None else full.covered[images][box]
    alone = {role: volumes[role] if role == images else None for role in ("t1", "t2", "stir")}
    return ImagesOnly(**alone, grid=volumes["t1"].grid, covered=covered), truth, lesion, covered


def autoseg_changes(items: list[str]) -> dict[str, float]:
    """The :class:`AutosegParameters` fields ``--autoseg-param NAME=NUMBER`` changes.

    Raises
    ------
    TypeError, ValueError
        A name that is not a field, or a value that is not a number.
    """
    changes = {name: float(value) for name, value in (item.split("=", 1) for item in items)}
    AutosegParameters(**{**AUTOSEG, **changes})  # a name that is no field raises here
    return changes


def _truth_on_grid(truth: Any, images: str) -> Any:
    """``truth`` with its masks on the grid of ``images`` (``truth.grid_masks``): the
    edema, bodies and veins the analysis rows score on that grid."""
    return replace(truth, masks=truth.grid_masks[images])


def _on_own_grid(
    phantom: Any, images: str, cut: bool
) -> tuple[Study, np.ndarray, np.ndarray, None]:
    """A T2 or STIR alone on its own grid, as a study without a T1 is read, with the truth
    the phantom renders on that grid (``truth.grid_masks``)."""
    truth, lesion = _truth_arrays(phantom.truth.grid_masks[images])
    image = getattr(phantom, images)
    box = _cut_above_sacrum(image.grid, truth) if cut else None
    if box is not None:
        image, truth, lesion = _cropped(image, box), truth[box], lesion[box]
    return Study.from_images(None, **{images: image}, verify_roles=False), truth, lesion, None


def _failed(
    seed: int,
    kind: str,
    study: Any,
    truth: np.ndarray,
    sacrum: bool,
    lesion: np.ndarray,
    error: str,
) -> dict[str, Any]:
    """The row of a case where no body was found (an error was raised)."""
    print(f"seed {seed}: {error}")
    return {
        "seed": seed,
        "kind": kind,
        "shape": "x".join(map(str, study.grid.shape)),
        "n_bodies": 0,
        "dice": {level_name(int(v)): 0.0 for v in np.unique(truth[truth > 0])},
        "dice_covered": {level_name(int(v)): 0.0 for v in np.unique(truth[truth > 0])},
        "largest_ratio": 0.0,
        "false_bodies": 0,
        "sacrum_in_view": sacrum,
        "levels": "unknown" if sacrum else "not named",
        "confidence": 0.0,
        "seconds": float("nan"),
        "cpu_seconds": float("nan"),
        "lesion_in": 0,
        "lesion_all": int(lesion.sum()),
    }


def worst_decile(values: list[float]) -> float:
    """The 10th percentile (the value the worst tenth lies below)."""
    return float(np.percentile(values, 10)) if values else float("nan")


def _run_packed(packed: tuple) -> dict[str, Any]:
    """:func:`run_case` on ``(seed, cut, images, plain, real_anatomy, cache, on_t1_grid)``."""
    seed, cut, images, plain, real_anatomy, cache, on_t1_grid = packed
    return run_case(seed, images, plain, cut, real_anatomy, cache, on_t1_grid)


def _level_by_overlap(found: np.ndarray, truth: np.ndarray) -> dict[int, str]:
    """Each automatic body's true level: the true body holding most of its voxels."""
    names = {}
    for body in (int(v) for v in np.unique(found[found > 0])):
        ids, counts = np.unique(truth[found == body], return_counts=True)
        counts, ids = counts[ids > 0], ids[ids > 0]
        if ids.size:
            names[body] = level_name(int(ids[np.argmax(counts)]))
    return names


def run_analysis_case(
    seed: int, cache: Path | None = None, images: str = "t1", on_t1_grid: bool = False
) -> dict[str, Any]:
    """Analyse one randomized case with its automatic bodies and score it as
    ``bench_randomized.py`` does with the true ones (same study: T1 and the fluid image; with
    ``images`` ``"t2"`` or ``"stir"`` that image alone, as the path without a T1 sees it: no
    Modic types), read on its own grid against the phantom's truth on that grid (as
    the other rows since session 43), or resampled onto the T1 grid with ``on_t1_grid``.

    Endplates are matched to the truth twice: by the level names the automatic bodies carry
    (``type_accuracy``, as a user reads the table; unknown levels leave every endplate
    missing) and by overlap, each automatic body taking the level of the true body holding
    most of its voxels (``type_accuracy_overlap``: the Modic typing itself). Modic calls on
    healthy spines count every endplate of every automatic body.
    """
    from bench_randomized import _draw_summary

    from bmetoolkit.analysis import analyze_study
    from bmetoolkit.metrics import MISSING, dice, endplate_types, is_modic_call, volume_error
    from bmetoolkit.params import Parameters

    kind = case_kind(seed)
    # The phantom family of the other rows (T10 drawn by default; with every option off,
    # the same phantom and cache key as bench_randomized.build_phantom).
    phantom = _randomized(seed, False, cache)
    row: dict[str, Any] = {"seed": seed, "kind": kind}
    row |= _draw_summary(phantom.render_parameters["randomization"])
    truth = phantom.truth
    try:
        if images == "t1":
            study = Study.from_images(phantom.t1, stir=phantom.stir)
        elif on_t1_grid:
            full = Study.from_images(
                phantom.t1, t2=phantom.t2, stir=phantom.stir, verify_roles=False
            )
            study = Study.from_images(None, **{images: getattr(full, images)}, verify_roles=False)
        else:
            study = _on_own_grid(phantom, images, False)[0]
            truth = _truth_on_grid(truth, images)
        clock = time.perf_counter()
        labels = find_vertebral_bodies(study, AutosegParameters(**AUTOSEG))
        row["autoseg_seconds"] = time.perf_counter() - clock
        clock = time.perf_counter()
        params = Parameters.from_dict(ANALYSIS)
        result = analyze_study(study, labels, params)
        row["seconds"] = time.perf_counter() - clock
        with_truth = analyze_study(study, truth.vertebrae, params)
    except Exception as error:  # a benchmark reports a failing case and goes on
        row["error"] = f"{type(error).__name__}: {error}"
        return row
    found = np.asarray(result.bme_mask.data) > 0
    expected = np.asarray(truth.bme_mask.data) > 0
    has_edema = bool(expected.any())
    row["bme_dice"] = dice(found, expected) if has_edema else None
    row["bme_volume_error"] = volume_error(found, expected) if has_edema else None
    true_found = np.asarray(with_truth.bme_mask.data) > 0
    row["truth_bme_dice"] = dice(true_found, expected) if has_edema else None
    row["truth_bme_volume_error"] = volume_error(true_found, expected) if has_edema else None
    expected_types, true_types = endplate_types(
        truth.endplates, with_truth.endplates.to_dict("records")
    )
    row["truth_type_accuracy"] = float(
        np.mean([t == f for t, f in zip(expected_types, true_types, strict=True)])
    )
    row["truth_calls_any"] = sum(is_modic_call(f) for f in true_types)
    rows = result.endplates.to_dict("records")
    truth_types, found_types = endplate_types(truth.endplates, rows)
    row["truth_types"], row["found_types"] = truth_types, found_types
    row["type_accuracy"] = float(
        np.mean([t == f for t, f in zip(truth_types, found_types, strict=True)])
    )
    names = _level_by_overlap(np.asarray(labels.bodies.data), np.asarray(truth.vertebrae.data))
    ids = {labels.name(body): body for body in names}
    remapped = [r | {"level": names[ids[r["level"]]]} for r in rows if r["level"] in ids]
    _, by_overlap = endplate_types(truth.endplates, remapped)
    row["found_types_overlap"] = by_overlap
    row["type_accuracy_overlap"] = float(
        np.mean([t == f for t, f in zip(truth_types, by_overlap, strict=True)])
    )
    row["false_calls"] = sum(
        t == "none" and is_modic_call(f) for t, f in zip(truth_types, by_overlap, strict=True)
    )
    row["calls_any"] = sum(is_modic_call(r["modic_type"]) for r in rows)
    row["calls_outside"] = sum(
        is_modic_call(r["modic_type"]) for r in rows if r["level"] not in ids
    )
    row["missing"] = by_overlap.count(MISSING)
    row["levels_named"] = labels.provenance["anchor"] is not None
    voxel_ml = study.grid.voxel_volume_mm3 / 1000
    row["bme_found_ml"] = round(float(found.sum()) * voxel_ml, 3)
    row["veins"] = vein_row(result, truth, voxel_ml)
    row["truth_veins"] = vein_row(with_truth, truth, voxel_ml)
    return row


def _analysis_summary(rows: list[dict[str, Any]]) -> list[str]:
    """Median and worst decile of the analysis figures (as ``bench_randomized.py``)."""
    from bench_randomized import _figure

    done = [r for r in rows if "error" not in r]
    if not done:
        return [f"{len(rows)} cases, all failed"]
    edema = [r for r in done if r["bme_dice"] is not None]
    healthy = [r for r in done if r["kind"] == "healthy"]
    truth = [t for r in done for t in r["truth_types"]]
    by_name = [f for r in done for f in r["found_types"]]
    by_overlap = [f for r in done for f in r["found_types_overlap"]]

    def percent(name: str, values: list[float], higher_is_better: bool = True) -> str:
        return _figure(name, values, higher_is_better=higher_is_better, scale=100, fmt=".1f")

    return [
        f"{len(rows)} cases, {len(rows) - len(done)} failed, levels named on "
        f"{sum(r['levels_named'] for r in done)}",
        _figure(
            "BME Dice (cases with edema)", [r["bme_dice"] for r in edema], higher_is_better=True
        ),
        percent("BME volume error %", [r["bme_volume_error"] for r in edema], False),
        _figure(
            "with the true bodies: BME Dice",
            [r["truth_bme_dice"] for r in edema],
            higher_is_better=True,
        ),
        percent(
            "with the true bodies: BME volume error %",
            [r["truth_bme_volume_error"] for r in edema],
            False,
        ),
        percent(
            "with the true bodies: endplate type accuracy %",
            [r["truth_type_accuracy"] for r in done],
        ),
        f"with the true bodies: healthy spines with a Modic call "
        f"{sum(r['truth_calls_any'] > 0 for r in healthy)} of {len(healthy)}",
        percent("endplate type accuracy % (by level name)", [r["type_accuracy"] for r in done]),
        percent(
            "endplate type accuracy % (by overlap)", [r["type_accuracy_overlap"] for r in done]
        ),
        f"pooled over {len(truth)} endplates: type accuracy by name "
        f"{100 * np.mean([t == f for t, f in zip(truth, by_name, strict=True)]):.1f} %, by overlap "
        f"{100 * np.mean([t == f for t, f in zip(truth, by_overlap, strict=True)]):.1f} %",
        f"healthy spines with a Modic call: {sum(r['calls_any'] > 0 for r in healthy)} of "
        f"{len(healthy)} ({sum(r['calls_any'] for r in healthy)} endplates); Modic calls on "
        f"automatic bodies outside every true body: {sum(r['calls_outside'] for r in done)}",
        _figure(
            "BME found on healthy spines, mL",
            [r["bme_found_ml"] for r in healthy],
            higher_is_better=False,
        ),
        vein_line([r["veins"] for r in done]),
        "with the true bodies: " + vein_line([r["truth_veins"] for r in done]),
        _figure(
            "automatic bodies seconds",
            [r["autoseg_seconds"] for r in done],
            higher_is_better=False,
            fmt=".2f",
        ),
    ]


def _analysis_line(row: dict[str, Any]) -> str:
    """One case of ``--analysis``."""
    from bench_randomized import FLUID_NAMES

    if "error" in row:
        return f"seed {row['seed']} {row['kind']}: FAILED {row['error']}"
    bme = "-" if row["bme_dice"] is None else f"{row['bme_dice']:.3f}"
    err = "-" if row["bme_volume_error"] is None else f"{100 * row['bme_volume_error']:.1f}"
    return (
        f"seed {row['seed']} {row['kind']:13s} {FLUID_NAMES[row['fluid']]:5s}: BME Dice "
        f"{bme} vol err {err} %, type acc {100 * row['type_accuracy']:.1f} % (by overlap "
        f"{100 * row['type_accuracy_overlap']:.1f} %), false calls {row['false_calls']}, "
        f"calls {row['calls_any']} (outside true bodies {row['calls_outside']}), levels "
        f"{'named' if row['levels_named'] else 'unknown'}, bodies "
        f"{row['autoseg_seconds']:.2f} s"
    )


def main_analysis(
    seeds: list[int], cache: Path | None, jobs: int, images: str = "t1", on_t1_grid: bool = False
) -> int:
    """``--analysis``: the analysis with automatic bodies on randomized cases."""
    from bench_randomized import FLUID_NAMES

    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            rows = []
            more = [cache] * len(seeds), [images] * len(seeds), [on_t1_grid] * len(seeds)
            for row in pool.map(run_analysis_case, seeds, *more):
                rows.append(row)
                print(_analysis_line(row), flush=True)
    else:
        rows = []
        for seed in seeds:
            rows.append(run_analysis_case(seed, cache, images, on_t1_grid))
            print(_analysis_line(rows[-1]), flush=True)
    print("\n" + "\n".join(_analysis_summary(rows)))
    for fluid, name in FLUID_NAMES.items():
        if not any(r.get("fluid") == fluid for r in rows):
            continue
        print(f"\n== fluid image {name}")
        print("\n".join(_analysis_summary([r for r in rows if r.get("fluid") == fluid])))
    return 0


def _pixel_range(text: str) -> tuple[float, float]:
    """``--pixel-mm``'s ``LOW-HIGH`` (mm) as two floats, 0 < LOW <= HIGH."""
    try:
        low, high = (float(part) for part in text.split("-"))
    except ValueError:
        message = f"expected LOW-HIGH in mm, e.g. 1.2-1.9, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 < LOW <= HIGH, got {text!r}")
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning", action="store_true", help="tuning seeds 0-59")
    parser.add_argument("--plain", action="store_true", help="plain phantoms 9001-9012")
    parser.add_argument("--cases", type=int, default=None, help="first N seeds only")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--images", choices=("t1", "t2", "stir"), default="t1")
    parser.add_argument(
        "--on-t1-grid",
        action="store_true",
        help="with --images t2 or stir: that image resampled onto the T1 grid (the rows before "
        "session 43) instead of read on its own grid, as a study without a T1 is",
    )
    parser.add_argument("--no-sacrum-every", type=int, default=4)
    parser.add_argument(
        "--real-anatomy", action="store_true", help="add vessels, iliac wings and bowel gas"
    )
    parser.add_argument(
        "--pelvis-bowel", action="store_true", help="add the lower sacrum, pelvis and bowel loops"
    )
    parser.add_argument(
        "--resampled-1mm", action="store_true", help="images resampled to 1 mm isotropic"
    )
    parser.add_argument(
        "--vertebra-above",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="render T10 above T11 with its label (default; --no-vertebra-above: tissue there)",
    )
    parser.add_argument(
        "--pixel-mm",
        type=_pixel_range,
        default=None,
        metavar="LOW-HIGH",
        help="draw every case's in-plane pixels from LOW-HIGH mm, e.g. 1.2-1.9 (coarse pixels)",
    )
    parser.add_argument("--cache", type=Path, default=None, help="keep rendered phantoms here")
    parser.add_argument("--jobs", type=int, default=1, help="cases run in parallel")
    parser.add_argument(
        "--analysis",
        action="store_true",
        help="run the analysis with the automatic bodies (T1 + fluid image, every case whole; "
        "with --images t2 or stir: that image alone)",
    )
    parser.add_argument(
        "--autoseg-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an AutosegParameters field, e.g. dark_shell_max_mm=2.5",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --analysis: a Parameters field of the analysis, e.g. vein_max_height_frac=0",
    )
    args = parser.parse_args(argv)
    try:
        from bench_randomized import parameters

        ANALYSIS.update(parameters(args.param).to_dict() if args.param else {})
        AUTOSEG.update(autoseg_changes(args.autoseg_param))
    except (TypeError, ValueError) as error:
        parser.error(f"--autoseg-param takes NAME=NUMBER with an AutosegParameters field: {error}")
    OPTIONS.update(
        pelvis_and_bowel=args.pelvis_bowel,
        resampled_1mm=args.resampled_1mm,
        vertebra_above=args.vertebra_above,
    )
    PIXEL_MM[0] = args.pixel_mm
    seeds = args.seeds or list(
        PLAIN_SEEDS if args.plain else TUNING_SEEDS if args.tuning else HELD_OUT_SEEDS
    )
    seeds = seeds[: args.cases] if args.cases else seeds
    if args.analysis:
        return main_analysis(seeds, args.cache, args.jobs, args.images, args.on_t1_grid)
    every = args.no_sacrum_every
    cuts = [every > 0 and index % every == every - 1 for index in range(len(seeds))]
    common = [args.images, args.plain, args.real_anatomy, args.cache, args.on_t1_grid]
    case_args = [(seed, cut, *common) for seed, cut in zip(seeds, cuts, strict=True)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(_run_packed, case_args))
    else:
        rows = [_run_packed(packed) for packed in case_args]
    for seed, row in zip(seeds, rows, strict=True):
        dice = row["dice"]
        worst = min(dice, key=dice.get) if dice else "-"
        print(
            f"seed {seed} ({row['kind']:13s}) {row['shape']}: {row['n_bodies']} bodies, Dice "
            f"median {statistics.median(dice.values()):.3f} worst {dice.get(worst, 0):.3f} "
            f"({worst}), largest x{row['largest_ratio']:.2f}, sacrum "
            f"{'in view' if row['sacrum_in_view'] else 'cut off'}: levels {row['levels']} "
            f"(confidence {row['confidence']}), {row['seconds']:.2f} s "
            f"(CPU {row['cpu_seconds']:.2f} s){_covered_note(row)}"
            + (f"; false bodies {row['false_bodies']}" if row["false_bodies"] else ""),
            flush=True,
        )
    all_dice = [d for row in rows for d in row["dice"].values()]
    all_covered = [d for row in rows for d in row["dice_covered"].values()]
    with_sacrum = [row for row in rows if row["sacrum_in_view"]]
    without = [row for row in rows if not row["sacrum_in_view"]]
    times = [row["seconds"] for row in rows if np.isfinite(row["seconds"])]
    cpu = [row["cpu_seconds"] for row in rows if np.isfinite(row["cpu_seconds"])]
    lesion_in = sum(row["lesion_in"] for row in rows)
    lesion_all = sum(row["lesion_all"] for row in rows)
    tuning = args.tuning or max(seeds, default=0) < min(HELD_OUT_SEEDS)  # --seeds below them
    family = "plain" if args.plain else "tuning" if tuning else "held-out"
    family += " real-anatomy" if args.real_anatomy else ""
    family += " pelvis-bowel" if args.pelvis_bowel else ""
    family += " resampled-1mm" if args.resampled_1mm else ""
    family += " vertebra-above" if args.vertebra_above else ""
    family += f" pixels {args.pixel_mm[0]:g}-{args.pixel_mm[1]:g} mm" if args.pixel_mm else ""
    family += " on the T1 grid" if args.on_t1_grid and args.images != "t1" else ""
    print(
        f"\n{len(rows)} {family} studies (images: {args.images}), {len(all_dice)} bodies: "
        f"Dice median {statistics.median(all_dice):.3f}, worst decile "
        f"{worst_decile(all_dice):.3f}, worst {min(all_dice):.3f}; largest body "
        f"x{max(row['largest_ratio'] for row in rows):.2f} the largest true body; levels right "
        f"on {sum(r['levels'] == 'right' for r in with_sacrum)}/{len(with_sacrum)} with the "
        f"sacrum in view (unknown {sum(r['levels'] == 'unknown' for r in with_sacrum)}, wrong "
        f"{sum(r['levels'] == 'WRONG' for r in with_sacrum)}), named on "
        f"{sum(r['levels'] == 'NAMED' for r in without)}/{len(without)} without it; time "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s (CPU median "
        f"{statistics.median(cpu):.2f} s, max {max(cpu):.2f} s); lesion voxels "
        f"inside the bodies {100 * lesion_in / max(lesion_all, 1):.1f} %"
    )
    false = [row["false_bodies"] for row in rows]
    print(
        f"false bodies (under {FALSE_BODY_SHARE:.0%} of their voxels in any true body): "
        f"{sum(false)} on {sum(n > 0 for n in false)} of {len(rows)} studies"
    )
    if all_covered != all_dice:
        print(
            f"scored on the voxels the {args.images.upper()} covers, {len(all_covered)} bodies: "
            f"Dice median {statistics.median(all_covered):.3f}, worst decile "
            f"{worst_decile(all_covered):.3f} ({sum(bool(_covered_note(r)) for r in rows)} "
            f"studies differ by 0.001 or more)"
        )
    return 0


def _covered_note(row: dict[str, Any]) -> str:
    """A case line's ending: its bodies scored on the covered voxels, where that differs."""
    changed = {
        level: (row["dice"][level], value)
        for level, value in row["dice_covered"].items()
        if f"{row['dice'][level]:.3f}" != f"{value:.3f}"
    }
    gone = sorted(set(row["dice"]) - set(row["dice_covered"]))
    parts = [f"{level} {old:.3f} -> {new:.3f}" for level, (old, new) in changed.items()]
    parts += [f"{level} not in view" for level in gone]
    return "; on the covered voxels: " + ", ".join(parts) if parts else ""


if __name__ == "__main__":
    raise SystemExit(main())
