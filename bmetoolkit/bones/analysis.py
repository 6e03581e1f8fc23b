"""Bone marrow edema in bones given as masks: the stages, each a function of arrays.

1. each bone's marrow: its mask on the study grid without the outermost voxel layer (cortex
   and partial volume with what lies outside);
2. ratios to the subject's normal marrow, one factor per bone on top of a smooth field
   (:mod:`bmetoolkit.ratios`);
3. cortex left in the mask (dark on the T1 and the fluid image within ``max_shell_mm`` of
   the surface) and **free fluid** (subchondral cysts: as bright as the scan's own joint
   fluid, see :func:`fluid_like`, with a margin for their blurred edge) leave the marrow
   (the edema around a cyst is given back from its margin after stage 5:
   :func:`bmetoolkit.bones.edges.edema_beside_cysts`);
4. edema: fluid-bright (and, with a T1, not T1-bright) at levels set by the scan's noise
   (:func:`bmetoolkit.segment.segment_bme`). A lesion may not start (seed) in the band
   where an image's voxels reach outside the bone
   (:func:`bmetoolkit.bones.geometry.partial_volume_band`: thick slices along a surface
   mix joint fluid into the marrow), but may grow into it, only within an image voxel's
   reach of its voxels outside the band; each region is cut at half its contrast measured
   outside that band, at half its 95th percentile (opt-in, ``lesion_core_reach_mm``: then
   at half the median of what that kept, within that reach) (:mod:`bmetoolkit.bones.edges`);
5. what is not edema (:mod:`bmetoolkit.bones.spots`): regions that are a lesion only within
   the band (partial volume), and faint regions not based on the subchondral bone (red
   marrow);
6. lesions per bone with their depth from the bone and articular surfaces, and one row per
   bone (:mod:`bmetoolkit.bones.tables`).

Every stage runs on the bones' box widened by what the stages read around it
(:mod:`bmetoolkit.bones.crop`); the outputs are on the whole study grid.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.bones.crop import analysis_box, cropped_study, on_full_grid
from bmetoolkit.bones.edges import (
    band_near_own,
    edema_beside_cysts,
    fainter_joined,
    half_maximum_of_core,
)
from bmetoolkit.bones.geometry import bone_depths, partial_volume_band, voxel_extent
from bmetoolkit.bones.labels import BoneLabels
from bmetoolkit.bones.spots import bone_focal_spots, partial_volume_pieces
from bmetoolkit.bones.tables import bone_lesion_table, bone_table, touches_border
from bmetoolkit.decision import smooth_within
from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.pairing.sanity import check_bone_roles
from bmetoolkit.params import Parameters
from bmetoolkit.ratios import (
    coarse_seed_mask,
    decision_images,
    extent_seed_mask,
    marrow_ratios,
    regions_summary,
    shell_like,
    spread_notes,
    t1_dark_edema,
    t1_dark_ml,
)
from bmetoolkit.result import AnalysisResult, BandStage
from bmetoolkit.segment import (
    Regions,
    boxed_regions,
    label_lesions,
    remove_small,
    segment_bme_regions,
    sized_regions,
)
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume

__all__ = [
    "FREE_FLUID_PERCENTILE",
    "MIN_FLUID_CONTRAST",
    "analyze_bones",
    "cyst_level",
    "cyst_margin_reach",
    "fluid_like",
    "free_fluid_signal",
]

#: The scan's free-fluid signal: this percentile of the fluid image over its field of view
#: (joint fluid, cysts, CSF and vessels are the brightest tissue on STIR and fat-suppressed
#: T2/PD).
FREE_FLUID_PERCENTILE = 99.5
#: Marrow at least this many times normal marrow on the fluid image is fluid whatever the
#: free fluid in view: on fat-suppressed images free fluid is typically 5-20 x normal
#: marrow, edema 1.3-2.3 x (real scans, see DOMAIN.md); when little fluid is in view (the
#: pelvis) the scan's own free-fluid level cannot be measured and this is the level.
MIN_FLUID_CONTRAST = 3.0
#: Smallest fluid-like region taken as a cyst, as a fraction of ``min_lesion_mm3``.
CYST_SIZE_FRACTION = 0.2


def analyze_bones(
    study: Study,
    bones: BoneLabels,
    params: Parameters,
    *,
    user_normal: NDArray[np.bool_] | None = None,
    timings: dict[str, float] | None = None,
    kept_elsewhere: NDArray[np.bool_] | None = None,
    seen_elsewhere: NDArray[np.bool_] | None = None,
) -> AnalysisResult:
    """Find bone marrow edema in each bone of ``bones`` (see :func:`bmetoolkit.analyze`).

    ``kept_elsewhere`` (on the study grid): voxels counted as a lesion's own voxels outside
    the partial-volume band although they lie in this scan's band (another visit's edema
    outside its own band, brought onto this grid: :mod:`bmetoolkit.followup.joint_bones`);
    band voxels near them are kept and a region holding some is no partial-volume piece
    (:func:`~bmetoolkit.bones.edges.band_near_own`,
    :func:`~bmetoolkit.bones.spots.partial_volume_pieces`). ``seen_elsewhere`` (on the
    study grid): where another visit shows the same finding as this scan
    (:mod:`bmetoolkit.followup.joint_bones`: this scan's focal spots that match that
    visit's edema); a region the focal-spot rule would leave out is kept when it holds some
    of it (that visit's lesion seen again: a spot only when it is one at both visits). Both
    only keep what the analysis grew: without them, the analysis of the scan alone.
    """
    timings = dict(timings or {})
    clock = time.perf_counter()
    full_ids = np.asarray(bones.labels.data)
    in_bone = full_ids > 0
    study = check_bone_roles(study, in_bone)  # the bones' marrow in the role check
    full_study, full_grid = study, study.grid
    # Every stage reads the bones and a margin around them: work on that box of the grid.
    wanted = in_bone if user_normal is None else in_bone | user_normal
    box = analysis_box(
        wanted,
        full_grid.spacing,
        [params.decision_smoothing_mm, params.coarse_seed_mm, params.region_seed_mm],
    )
    free_fluid = free_fluid_signal(study.fluid.data)
    study = cropped_study(study, box)
    if user_normal is not None:
        user_normal = user_normal[box]
    elsewhere = None if kept_elsewhere is None else np.asarray(kept_elsewhere, bool)[box]
    seen = None if seen_elsewhere is None else np.asarray(seen_elsewhere, bool)[box]
    grid = study.grid
    ids = full_ids[box]
    depths = bone_depths(ids, grid.spacing, articular_gap_mm=params.articular_gap_mm)
    bone = (ids > 0) & study.analysable()
    marrow = bone & ~depths.rim
    regions = np.zeros(ids.shape, np.int32)
    lookup = np.zeros(int(ids.max()) + 1, np.int32)
    lookup[list(bones.names)] = np.arange(1, len(bones.names) + 1)
    regions[marrow] = lookup[ids[marrow]]
    names = {n: name for n, name in enumerate(bones.names.values(), start=1)}
    ratios, reference, normal = marrow_ratios(
        study, marrow, regions, names, params, user_normal,
        hint="check that the bone masks lie on the bones of this scan",
        region_mm=params.reference_region_mm,
    )  # fmt: skip
    fluid = "stir" if study.stir is not None else "t2"
    with np.errstate(invalid="ignore"):
        cortex = shell_like(ratios, fluid, params) & (depths.surface_mm < params.max_shell_mm)
    source = study.source_grids.get(fluid)
    fluid_extent = None if source is None else voxel_extent(source, grid)
    cyst, margin, fluid_notes, fluid_level = fluid_like(
        study.fluid.data, ratios[fluid], marrow, normal, grid.spacing, grid.voxel_volume_mm3,
        params, fluid_extent, free_fluid=free_fluid,
    )  # fmt: skip
    margin &= ~cortex
    beside_cyst = (marrow & ~cortex & ~cyst) | margin  # the marrow, the cysts' margin with it
    raw_ratios = ratios
    marrow &= ~cortex & ~cyst
    decisions, levels = decision_images(ratios, normal, marrow, grid.spacing, fluid, params)
    ratios = {name: np.where(marrow, r, np.float32(np.nan)) for name, r in ratios.items()}
    voxel_mm3 = grid.voxel_volume_mm3
    mixed = partial_volume_band(
        ids, grid, study.source_grids.values(), edge_outside=params.band_at_grid_edge
    )
    coarse, coarse_level = coarse_seed_mask(
        ratios[fluid], normal, marrow, grid.spacing, width_mm=params.coarse_seed_mm,
        z=params.seed_z, floor=levels.fluid_bright[0],
    )  # fmt: skip
    wide, wide_level = coarse_seed_mask(  # the same at a region's scale (opt-in)
        ratios[fluid], normal, marrow, grid.spacing, width_mm=params.region_seed_mm,
        z=params.seed_z, floor=levels.fluid_bright[0],
    )  # fmt: skip
    coarse |= wide
    with np.errstate(invalid="ignore"):
        voxel_seeds = decisions[fluid] >= levels.fluid_bright[1]
    extent, extent_size = extent_seed_mask(  # a large faint region, none of it at a seed level
        decisions[fluid], marrow & ~mixed, coarse | voxel_seeds, grow=levels.fluid_bright[0],
        factor=params.extent_seed_factor, min_voxels=round(params.min_lesion_mm3 / voxel_mm3),
    )  # fmt: skip
    coarse |= extent
    with np.errstate(invalid="ignore"):
        # Faint evidence counts where edema occurs: near a joint (islands of red marrow,
        # as faint, lie in the metaphyses); a single-bone mask has no joint to go by.
        near_joint = depths.articular_mm <= params.coarse_seed_articular_mm
    joint = near_joint if np.isfinite(depths.articular_mm).any() else None
    if joint is not None:
        coarse &= joint
    # The regions uncut, then each cut at half its contrast outside the band (edges.py).
    # (each stage hands its regions to the next, which would otherwise label them again)
    bme, regions = segment_bme_regions(
        decisions.get("t1"), decisions[fluid], levels=levels, voxel_mm3=voxel_mm3,
        params=replace(params, lesion_edge_fraction=0.0), seedable=~mixed,
        coarse_seeds=coarse,
    )  # fmt: skip
    seeds = coarse | voxel_seeds
    grown = bme
    first, bme = half_maximum_of_core(
        grown, decisions[fluid], params.lesion_edge_fraction, mixed, grid.spacing,
        reach_mm=params.lesion_core_reach_mm, noise_sd=levels.sd.get(fluid, 0.0), regions=regions,
    )  # fmt: skip
    fainter = fainter_joined(  # parts far from the lesions without their margins
        grown, first, decisions[fluid], seeds & ~mixed, grid.spacing,
        reach_mm=params.fainter_joined_mm, fraction=params.lesion_edge_fraction,
        min_seed_mm3=params.min_lesion_mm3, band=mixed,
    )  # fmt: skip
    supporting = decisions.get("t1") is not None and levels.t1_criterion == "supporting"

    def sized(mask: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], Regions]:
        """Regions of at least ``min_lesion_mm3`` passing the T1 criterion."""
        return sized_regions(
            mask, voxel_mm3=voxel_mm3, min_mm3=params.min_lesion_mm3,
            values=decisions["t1"] if supporting else None,
            accept=lambda median: median <= params.edema_t1_max_ratio,
        )  # fmt: skip

    # each fainter lesion judged as a region of its own before it joins the brighter one
    fainter, _ = sized(fainter)
    bme |= fainter & ~bone_focal_spots(
        fainter, decisions[fluid], grid.spacing, params,
        sd=levels.sd.get(fluid, 0.0), articular_mm=depths.articular_mm,
    )  # fmt: skip
    reach = _image_reach(grid, study.source_grids.values())
    before_band = bme.copy()
    bme = band_near_own(bme, mixed, reach, elsewhere)
    bme, regions = sized(bme)
    pieces = partial_volume_pieces(
        bme, seeds, mixed, voxel_mm3=voxel_mm3, min_mm3=params.min_lesion_mm3, regions=regions,
        elsewhere=elsewhere,
    )  # fmt: skip
    band_dropped = before_band & ~(bme & ~pieces)
    _, rest = regions.where(~regions.holding(pieces))
    spots = bone_focal_spots(
        bme & ~pieces, decisions[fluid], grid.spacing, params,
        sd=levels.sd.get(fluid, 0.0), articular_mm=depths.articular_mm, regions=rest,
    )  # fmt: skip
    if seen is not None and spots.any():  # the other visit's lesion seen again: no spot
        found = Regions.of(spots)
        spots = found.mask(~found.holding(seen))
    bme &= ~pieces & ~spots
    # the edema around a cyst, in the margin left out with the cyst's blurred edge
    given = _edema_beside_cysts(
        bme, margin, raw_ratios, beside_cyst, grid.spacing, fluid=fluid, params=params,
        reach=np.maximum(reach, cyst_margin_reach(grid.spacing, params, fluid_extent)),
        fluid_level=cyst_level(fluid_level or 0.0, params),
    )  # fmt: skip
    if given is not None:
        given, beside = given
        bme |= given
        marrow |= given
        cyst &= ~given
        ratios = {n: np.where(given, raw_ratios[n], r) for n, r in ratios.items()}
        decisions = {n: np.where(given, beside[n], d) for n, d in decisions.items()}
    left_out = {
        "pieces": regions_summary(pieces, voxel_mm3, within=regions),
        "spots": regions_summary(spots, voxel_mm3, within=regions),
    }
    t1_dark = t1_dark_edema(bme, decisions, levels)
    lesion_numbers, n_lesions = label_lesions(bme, ids)
    lesions = bone_lesion_table(
        lesion_numbers,
        n_lesions,
        bone_ids=ids,
        names=bones.names,
        depths=depths,
        ratios=ratios,
        decisions=decisions,
        levels=levels,
        t1_dark=t1_dark,
        grid=grid,
        subchondral_mm=params.subchondral_mm,
        origin=tuple(s.start for s in box),
    )
    confidence = reference.body_confidence
    bone_rows = bone_table(
        bones.names,
        bone_ids=ids,
        marrow=marrow,
        bme=bme,
        t1_dark=t1_dark,
        fluid_like=cyst,
        lesion_rows=lesions,
        confidence=confidence,
        voxel_mm3=voxel_mm3,
        has_t1=study.t1 is not None,
        border=touches_border(full_ids, max(bones.names, default=0) + 1),
    )
    shape = full_grid.shape
    band_stage = BandStage(
        band=on_full_grid(mixed.view(np.uint8), box, shape) > 0,
        before=on_full_grid(before_band.view(np.uint8), box, shape) > 0,
        dropped=on_full_grid(band_dropped.view(np.uint8), box, shape) > 0,
        reach=reach,
        spots=on_full_grid(spots.view(np.uint8), box, shape) > 0,
    )
    marrow = on_full_grid(marrow.view(np.uint8), box, shape)
    bme = on_full_grid(bme.view(np.uint8), box, shape)
    lesion_numbers = on_full_grid(lesion_numbers, box, shape)
    ratios = {name: on_full_grid(r, box, shape, np.nan) for name, r in ratios.items()}
    timings["analysis_s"] = time.perf_counter() - clock
    spreads, noisy = spread_notes(reference)
    notes = [
        *study.notes, *bones.notes, *fluid_notes, *noisy, *_left_out_notes(left_out, params),
        *_bone_notes(bone_rows),
    ]  # fmt: skip
    affine = full_grid.affine
    return AnalysisResult(
        study=full_study,
        vertebrae=None,
        bodies=[],
        marrow=Volume(marrow, affine, kind="label", source="marrow"),
        ratios={
            name: Volume(r, affine, source=f"{name} ratio to normal marrow")
            for name, r in ratios.items()
        },
        bme_mask=Volume(bme, affine, kind="label", source="bme_mask"),
        modic_map=None,
        lesion_labels=Volume(lesion_numbers, affine, kind="label", source="lesions"),
        endplate_rows=[],
        lesion_rows=lesions,
        references=reference.summary(),
        marrow_by_body={
            name: {"factors": reference.body_factors[name], **confidence[name]}
            for name in reference.body_factors
        },
        fluid=fluid,
        decision=levels.to_dict()
        | {"coarse_seed": round(coarse_level, 4), "region_seed": round(wide_level, 4)}
        | {"extent_seed_ml": round(extent_size * voxel_mm3 / MM3_PER_ML, 4)},
        bme_t1_dark_ml=t1_dark_ml(t1_dark, voxel_mm3, has_t1=study.t1 is not None),
        parameters=params,
        notes=tuple(dict.fromkeys(notes)),
        timings=timings,
        checks={
            "marrow_log_spread": spreads,
            "t1_criterion": levels.t1_criterion,
            "free_fluid_ratio": fluid_level,
            "focal_spots": left_out["spots"],
            "partial_volume_pieces": left_out["pieces"],
            "role_evidence": {role: dict(m) for role, m in study.role_evidence.items()},
        },
        anatomy="bones",
        bones=bones,
        bone_rows=bone_rows,
        band_stage=band_stage,
    )


def fluid_like(
    fluid_image: NDArray,
    fluid_ratio: NDArray[np.floating],
    marrow: NDArray[np.bool_],
    normal: NDArray[np.bool_],
    spacing: NDArray[np.floating],
    voxel_mm3: float,
    params: Parameters,
    fluid_extent: NDArray[np.floating] | None = None,
    *,
    free_fluid: float | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], list[str], float | None]:
    """Marrow voxels as bright as free fluid (subchondral cysts), with a margin.

    The scan's free fluid is the :data:`FREE_FLUID_PERCENTILE` of the fluid image; as a
    ratio to normal marrow it is that over the median of the normal marrow's signal. A
    marrow region whose unsmoothed fluid ratio reaches ``cyst_fluid_fraction`` of it (and
    at least :data:`MIN_FLUID_CONTRAST`) is fluid; it leaves the marrow with a margin of the
    decision smoothing's half width on the axes the smoothing blurs (so its blurred edge is
    not taken for edema around it) and, along each axis, of the fluid image's own voxel
    (``fluid_extent``, mm: resampled from its grid, a cyst spreads that far). Edema next to
    a cyst stays. ``free_fluid`` is the scan's free-fluid signal when measured on more of
    the image than ``fluid_image`` (:func:`free_fluid_signal` of the whole field of view).

    Returns
    -------
    mask : ndarray of bool
    margin : ndarray of bool
        The part of ``mask`` that neither is as bright as fluid nor touches what is: the
        cysts' blurred edge, and the marrow beside them (edema around a cyst is given back
        from it by :func:`bmetoolkit.bones.edges.edema_beside_cysts`; a voxel touching the
        cyst mixes its fluid and stays with it).
    notes : list of str
    free_fluid_ratio : float or None
        The free fluid as a ratio to normal marrow (None when it could not be measured).
    """
    none = np.zeros(marrow.shape, bool)
    image = np.asarray(fluid_image, np.float32)
    free = free_fluid_signal(image) if free_fluid is None else free_fluid
    marrow_signal = image[normal & marrow]
    if free is None or marrow_signal.size == 0:
        return none, none, [], None
    median = float(np.median(marrow_signal, overwrite_input=True))  # a copy of its own
    contrast = free / max(median, 1e-6)
    level = cyst_level(contrast, params)
    notes = []
    if contrast < MIN_FLUID_CONTRAST:
        notes.append(
            f"little free fluid in view on the fluid image (its brightest tissue is "
            f"{contrast:.1f} x normal marrow): marrow at least {MIN_FLUID_CONTRAST:.0f} x "
            "normal marrow is taken as fluid (cysts); edema is rarely that bright"
        )
    with np.errstate(invalid="ignore"):
        bright = marrow & (fluid_ratio >= level)
    core = remove_small(
        bright, voxel_mm3=voxel_mm3, min_mm3=CYST_SIZE_FRACTION * params.min_lesion_mm3
    )
    if not core.any():
        return none, none, notes, round(contrast, 2)
    reach = cyst_margin_reach(spacing, params, fluid_extent)
    box, _, _ = boxed_regions(core)
    padded = tuple(
        slice(max(0, s.start - r), min(n, s.stop + r))
        for s, r, n in zip(box, reach, core.shape, strict=True)
    )
    grown, touching = none.copy(), none.copy()
    grown[padded] = ndimage.maximum_filter(core[padded], size=tuple(2 * reach + 1))
    grown &= marrow
    # the voxels touching the fluid-bright core mix it: they stay with the cyst
    touching[padded] = ndimage.maximum_filter(bright[padded], size=3)
    volume = float(np.count_nonzero(core)) * voxel_mm3 / MM3_PER_ML
    with_margin = float(np.count_nonzero(grown)) * voxel_mm3 / MM3_PER_ML
    notes.append(
        f"{volume:.2f} mL of marrow is as bright as free fluid (at least {level:.1f} x normal "
        f"marrow): cysts, not edema; with their blurred edge, {with_margin:.2f} mL "
        "(fluid_like_ml) is left out of the edema"
    )
    return grown, grown & ~touching, notes, round(contrast, 2)


def cyst_level(free_fluid_ratio: float, params: Parameters) -> float:
    """The fluid ratio from which marrow is fluid (a cyst): ``cyst_fluid_fraction`` of the
    scan's free fluid (as a ratio to normal marrow), at least :data:`MIN_FLUID_CONTRAST`.

    >>> cyst_level(8.0, Parameters()), cyst_level(2.0, Parameters())
    (4.8, 3.0)
    """
    return max(params.cyst_fluid_fraction * free_fluid_ratio, MIN_FLUID_CONTRAST)


def cyst_margin_reach(
    spacing: NDArray[np.floating], params: Parameters, fluid_extent: NDArray | None = None
) -> NDArray[np.int64]:
    """How far (voxels, per axis) a cyst's edge is blurred: by the fluid image's own voxels
    (``fluid_extent``, mm: resampled, up to one of its voxels away) and by the smoothing
    (half its width, on the axes it smooths).

    >>> cyst_margin_reach(np.array([0.5, 0.5, 4.0]), Parameters(), np.array([0.6, 0.6, 4.4]))
    array([2, 2, 2])
    """
    half = 0.5 * params.decision_smoothing_mm
    extent = np.zeros(3) if fluid_extent is None else np.asarray(fluid_extent, float)
    blur = np.maximum(np.where(spacing <= 2 * half, half, 0.0), extent)
    return np.ceil(blur / spacing - 1e-6).astype(np.int64)


def free_fluid_signal(fluid_image: NDArray) -> float | None:
    """The scan's free-fluid signal: the :data:`FREE_FLUID_PERCENTILE` of the fluid image
    where it has signal (None when it has none).

    >>> round(free_fluid_signal(np.arange(1001, dtype=np.float32)), 1)  # 0 is no signal
    995.0
    """
    image = np.asarray(fluid_image)
    count = int(np.count_nonzero(image > 0))
    if count == 0:
        return None
    return float(high_percentile(image, count, FREE_FLUID_PERCENTILE))


#: Every this many voxels are looked at to find where the highest values start.
PERCENTILE_SAMPLE_STEP = 97


def high_percentile(image: NDArray, count: int, q: float) -> np.float32:
    """``np.percentile`` of the positive values of ``image`` (as float32; ``count`` of
    them) at a high ``q``, from the highest values only.

    The percentile interpolates between two neighbouring values of the sorted values; at a
    high ``q`` both lie among the highest. These are found above a level taken from a
    sample of the image, and ``np.percentile`` runs on an array of the same length whose
    other values are all the least of them: the same sorted values from there up, so the
    same result, without sorting out millions of voxels that do not matter (a whole fluid
    image is millions of voxels). When the level leaves too few values (or ``q`` is not
    high), all the values are used.

    >>> image = np.random.default_rng(0).normal(100, 60, (100, 100, 10)).astype(np.float32)
    >>> positive = image[image > 0]
    >>> bool(high_percentile(image, positive.size, 99.5) == np.percentile(positive, 99.5))
    True
    """
    lower = int(np.floor(q / 100 * (count - 1)))  # the lower of the two sorted values read
    needed = count - lower + 1  # highest values holding both (and the maximum)
    sample = image.ravel()[::PERCENTILE_SAMPLE_STEP]
    sample = sample[sample > 0]
    if 4 * needed <= count and sample.size >= 100:
        rank = int((1 - min(1.0, 2 * needed / count)) * (sample.size - 1))
        level = np.partition(sample, rank)[rank]
        if level > 0:
            top = np.asarray(image[image >= level], np.float32)
            if top.size >= needed:
                values = np.empty(count, np.float32)
                values[: count - top.size] = top.min()
                values[count - top.size :] = top
                return np.percentile(values, q, overwrite_input=True)
    signal = np.asarray(image[image > 0], np.float32)  # a copy of its own: sorted in place
    return np.percentile(signal, q, overwrite_input=True)


def _edema_beside_cysts(
    bme: NDArray[np.bool_],
    margin: NDArray[np.bool_],
    ratios: dict[str, NDArray[np.float32]],
    marrow: NDArray[np.bool_],
    spacing: NDArray[np.float64],
    *,
    fluid: str,
    reach: NDArray[np.int64],
    fluid_level: float,
    params: Parameters,
) -> tuple[NDArray[np.bool_], dict[str, NDArray[np.float32]]] | None:
    """The margin voxels of cysts that are edema beside them (None when there are none),
    and the decision images of ``marrow`` with the cysts' margin, where they are read: the
    ratios smoothed among the marrow and the margin (not with the cyst), as the decision
    images are among the marrow (:func:`bmetoolkit.bones.edges.edema_beside_cysts`)."""
    if not (bme.any() and margin.any()):
        return None
    width = params.decision_smoothing_mm
    beside = {n: smooth_within(r, spacing, width, within=marrow) for n, r in ratios.items()}
    given = edema_beside_cysts(
        bme, margin, beside[fluid], params.lesion_edge_fraction, reach, fluid_level
    )
    return (given, beside) if given.any() else None


def _image_reach(grid: Grid, source_grids: Iterable[Grid]) -> NDArray[np.int64]:
    """How far (study voxels, per axis) any image's voxel reaches: its extent, rounded up."""
    reach = np.zeros(3, np.int64)
    for source in source_grids:
        extent = np.ceil(voxel_extent(source, grid) / grid.spacing - 1e-6).astype(np.int64)
        reach = np.maximum(reach, extent)
    return reach


def _left_out_notes(left_out: dict[str, dict], params: Parameters) -> list[str]:
    notes = []
    spots, pieces = left_out["spots"], left_out["pieces"]
    if spots["count"]:
        notes.append(
            f"{spots['count']} focal spot(s) of mildly fluid-bright marrow "
            f"({spots['volume_ml']:.2f} mL) not based on the subchondral bone are not counted "
            "as edema (islands of red marrow look like this); set focal_max_ratio to 0 to count "
            "them"
        )
    if pieces["count"]:
        notes.append(
            f"{pieces['count']} fluid-bright region(s) ({pieces['volume_ml']:.2f} mL) lie "
            "wholly where an image's voxels reach outside the bone (the outermost thick "
            "slice: partial volume with joint fluid or muscle) and are not counted as edema"
        )
    return notes


def _bone_notes(rows: list[dict]) -> list[str]:
    notes = []
    for row in rows:
        if row["touches_border"]:
            notes.append(
                f"{row['bone']} reaches the edge of the field of view: its marrow and edema "
                "volumes cover only the part in view"
            )
        if row["reference_confidence"] == "low":
            notes.append(
                f"{row['bone']}: only {100 * (row['normal_fraction'] or 0):.0f} % of its marrow "
                "looks normal, so its reference is the other bones' (low reference confidence): "
                "diffuse marrow change, or a poor mask"
            )
    return notes
