"""The analysis in one call: vertebral bodies, marrow reference, BME, Modic, tables.

:func:`analyze` takes the images (paths or volumes) and vertebra labels, and returns an
:class:`~bmetoolkit.result.AnalysisResult`. The stages, each a pure function of arrays:

1. bodies from the labels in any convention (:func:`bmetoolkit.spine.labels.vertebral_bodies`),
   or found automatically when no labels are given;
2. geometry and marrow of each body (:mod:`bmetoolkit.spine.vertebra`);
3. ratios to the subject's normal marrow, estimated from marrow that is itself normal
   (:mod:`bmetoolkit.reference`);
4. the dark shell of endplates and cortex left in the marrow, measured on the scan and
   peeled (:mod:`bmetoolkit.spine.cortex`); decision images and levels adapted to the
   scan's noise (:mod:`bmetoolkit.decision`);
5. bone marrow edema (:mod:`bmetoolkit.segment`);
6. Modic type per voxel and per endplate (:mod:`bmetoolkit.modic`);
7. the lesion table (:mod:`bmetoolkit.lesions`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.bones.crop import analysis_box, on_full_grid
from bmetoolkit.decision import DecisionLevels
from bmetoolkit.errors import BmetoolkitError, MissingContrastError
from bmetoolkit.lesions import lesion_table
from bmetoolkit.modic import NOT_ASSESSED, endplate_table, modic_map
from bmetoolkit.params import Parameters
from bmetoolkit.ratios import (
    decision_images,
    drop_focal_spots,
    marrow_ratios,
    ratios_at,
    shell_like,
    spread_notes,
    t1_dark_edema,
    t1_dark_ml,
)
from bmetoolkit.reference import MarrowReference
from bmetoolkit.resample import resample_with_coverage, values_at
from bmetoolkit.result import AnalysisResult
from bmetoolkit.segment import (
    grow_into_walls,
    label_lesions,
    outshone_from_outside,
    segment_bme,
)
from bmetoolkit.spine.cortex import shell_depths
from bmetoolkit.spine.labels import VertebraLabels, vertebral_bodies
from bmetoolkit.spine.t1_contrast import disc_to_marrow_ratio, marrow_darker_than_discs
from bmetoolkit.spine.vertebra import (
    COARSE_SI_MM,
    BodyGeometry,
    body_geometries,
    largest_si_extent,
    on_grid,
)
from bmetoolkit.study import Study
from bmetoolkit.veins import drop_basivertebral_veins
from bmetoolkit.volume import Volume, grid_to_box_index, grown_box, occupied_box

__all__ = [
    "EdemaFindings",
    "analyze",
    "analyze_study",
    "edema_candidates",
    "edema_findings",
    "edema_into_walls",
]

ImageInput = str | os.PathLike | Volume
#: Fewest analysable voxels in a user's normal-marrow region.
MIN_REFERENCE_VOXELS = 50


def analyze(
    t1: ImageInput | None,
    t2: ImageInput | None = None,
    stir: ImageInput | None = None,
    vertebrae: ImageInput | VertebraLabels | None = None,
    params: Parameters | Mapping[str, Any] | str | os.PathLike | None = None,
    *,
    marrow: ImageInput | None = None,
    marrow_labels: str | os.PathLike | Mapping | None = None,
    reference_mask: ImageInput | None = None,
    label_convention: str = "auto",
    t1_series: str | int | None = None,
    t2_series: str | int | None = None,
    stir_series: str | int | None = None,
    allow_cross_study: bool = False,
    verify_roles: bool = True,
) -> AnalysisResult:
    """Find bone marrow edema, and in the spine Modic changes, in one subject's MRI.

    Parameters
    ----------
    t1 : path or Volume, optional
        The T1-weighted image (NIfTI file, DICOM series folder or Volume); its grid is the
        grid of every output. A DICOM folder holding a whole study works too when ``t2``
        and ``stir`` are not given: the series are then paired automatically. Without a T1
        (None) the fluid image gives the grid, edema is found from it alone and Modic types
        are not assessed.
    t2, stir : path or Volume, optional
        T2-weighted and STIR images; at least one. ``stir`` takes any fat-suppressed
        fluid-sensitive image (STIR/TIRM, fat-suppressed T2 or proton density, Dixon
        water), which drives the fluid decision when present.
    vertebrae : path, Volume or VertebraLabels, optional
        Vertebra labels: VerSe/SPINEPS ids, TotalSegmentator classes or a binary mask.
        Without them (and without ``marrow``) the bodies are found automatically.
    marrow : path or Volume, optional
        Masks of any bones (hip, knee, ankle, sacroiliac joints, shoulder...): a binary or
        multi-label map on any grid, or a folder of one mask per bone (TotalSegmentator's
        output folder). Edema is then measured per bone, without spine concepts (no
        levels, endplates or Modic types); see :mod:`bmetoolkit.bones`.
    marrow_labels : path, mapping or str, optional
        Names of the ``marrow`` ids: a BIDS ``dseg.tsv``, a two-column TSV, a JSON file, a
        mapping, or a TotalSegmentator task name (``"total"``, ``"total_mr"``,
        ``"appendicular_bones"``...). By default a table beside the mask, else ``bone``/
        ``bone 1..n``.
    params : Parameters, dict or path, optional
        Thresholds (a JSON file or dict may hold only some values); defaults otherwise.
    reference_mask : path or Volume, optional
        A region of normal marrow (any grid; resampled by nearest neighbour), as readers
        draw one for SPARCC-style scoring: the reference of every sequence is taken there
        instead of being estimated from the marrow itself.
    label_convention : str
        Convention of ``vertebrae`` (``"auto"``, ``"verse"``, ``"spineps"``,
        ``"totalsegmentator"``, ``"total_mr"``, ``"binary"``).
    t1_series, t2_series, stir_series : str or int, optional
        When ``t1`` is a DICOM study folder: the series to use (number, UID or
        description), for when the automatic pairing is ambiguous.
    allow_cross_study : bool
        Pair DICOM series of different studies (StudyInstanceUID); refused otherwise.
    verify_roles : bool
        Refuse images that do not look like their roles (:mod:`bmetoolkit.pairing.sanity`):
        the fluid image's brightest tissue bright on the "T1", fat suppressed on the "T1",
        a tissue outshining fat on it, or its marrow dark. Turn off only for images you
        know are right but unusual; a check that cannot judge (no fluid or fat in view)
        lets the pair through.

    Returns
    -------
    AnalysisResult

    Examples
    --------
    The bundled synthetic study (T1, STIR and its vertebra labels):

    >>> from bmetoolkit.data.datasets import phantom_sample
    >>> study = phantom_sample()
    >>> result = analyze(study["t1"], stir=study["stir"], vertebrae=study["vertebrae"])
    >>> result.endplates.query("modic_type != 'none'")[["level", "endplate", "modic_type"]]
       level  endplate modic_type
    2    T12  superior         II
    11    L4  inferior          I
    12    L5  superior          I
    13    L5  inferior       I/II
    14    S1  superior       I/II
    """
    params = _parameters(params)
    if marrow is not None and vertebrae is not None:
        raise BmetoolkitError(
            "both vertebra labels and bone masks were given",
            hint="give vertebrae=... for the spine (levels, endplates, Modic types) or "
            "marrow=... for any bone, not both",
            cli_hint="give --vertebrae for the spine or --marrow for any bone, not both",
        )
    labels_input = None if isinstance(vertebrae, VertebraLabels) else vertebrae
    if t2 is None and stir is None and _is_folder(t1):
        study = Study.from_dicom(
            t1,
            t1=t1_series,
            t2=t2_series,
            stir=stir_series,
            labels=labels_input,
            allow_cross_study=allow_cross_study,
            verify_roles=verify_roles,
        )
    else:
        study = Study.from_images(
            t1,
            t2=t2,
            stir=stir,
            labels=labels_input,
            allow_cross_study=allow_cross_study,
            verify_roles=verify_roles,
        )
    if marrow is not None:
        return analyze_study(
            study, params=params, marrow=marrow, marrow_labels=marrow_labels,
            reference_mask=reference_mask,
        )  # fmt: skip
    if isinstance(vertebrae, VertebraLabels):
        return analyze_study(study, vertebrae, params, reference_mask=reference_mask)
    return analyze_study(
        study, None, params, label_convention=label_convention, reference_mask=reference_mask
    )


def _is_folder(path: Any) -> bool:
    return isinstance(path, str | os.PathLike) and os.path.isdir(path)


def _parameters(params: Parameters | Mapping[str, Any] | str | os.PathLike | None) -> Parameters:
    if params is None:
        return Parameters()
    if isinstance(params, Parameters):
        return params
    if isinstance(params, Mapping):
        return Parameters.from_dict(dict(params))
    return Parameters.from_file(params)


def analyze_study(
    study: Study,
    vertebrae: ImageInput | VertebraLabels | None = None,
    params: Parameters | None = None,
    *,
    label_convention: str = "auto",
    reference_mask: ImageInput | None = None,
    marrow: ImageInput | None = None,
    marrow_labels: str | os.PathLike | Mapping | None = None,
) -> AnalysisResult:
    """Run the analysis on a :class:`Study` (images already on one grid).

    With ``marrow`` (bone masks) each bone is analysed for edema; otherwise the spine:
    ``vertebrae`` overrides the study's own labels, and with neither the bodies are found
    automatically. See :func:`analyze` for the parameters.
    """
    params = params or Parameters()
    if marrow is not None:
        from bmetoolkit.bones.analysis import analyze_bones
        from bmetoolkit.bones.labels import bone_labels

        clock = time.perf_counter()
        bones = bone_labels(marrow, study.grid, table=marrow_labels)
        loaded = {"labels_s": time.perf_counter() - clock}
        user_normal = _reference_region(reference_mask, study)
        return analyze_bones(study, bones, params, user_normal=user_normal, timings=loaded)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    labels = _vertebra_labels(study, vertebrae, label_convention, params)
    timings["labels_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    grid = study.grid
    all_bodies = body_geometries(labels, cortex_mm=params.cortex_mm)
    user_normal = _reference_region(reference_mask, study)
    # Every stage reads the bodies and a margin around them: work on that box of the grid.
    box = _spine_box(all_bodies, grid, user_normal, params)
    bodies = [_body_on_box(body, box, grid.shape) for body in all_bodies]
    shape = tuple(s.stop - s.start for s in box)
    if user_normal is not None:
        user_normal = user_normal[box]
    analysable = study.analysable()[box]
    marrow = on_grid(bodies, shape, lambda b: b.marrow, fill=False, dtype=bool)
    marrow &= analysable
    regions = np.zeros(shape, np.int32)
    for number, body in enumerate(bodies, start=1):
        regions.flat[body.index] = number
    names = {number: body.name for number, body in enumerate(bodies, start=1)}
    fitted_on = marrow.copy()  # the marrow the reference saw (peeled below)
    ratios, reference, normal = marrow_ratios(
        study,
        marrow,
        regions,
        names,
        params,
        user_normal,
        hint="check that the vertebra labels lie on the vertebral bodies of this scan",
        box=box,
    )
    fluid = "stir" if study.stir is not None else "t2"
    # The shell is measured on, and peeled off, the bodies fine enough along their own SI
    # axis: one body with an odd axis (an automatic body of odd outline) leaves the others'.
    peeled = _fine_along_si(bodies)
    shell = shell_depths(
        peeled,
        ratios.get("t1", ratios[fluid]),
        ratios[fluid],
        shell_ratio=params.shell_ratio,
        max_shell_mm=params.max_shell_mm,
    )
    _peel_shell(marrow, peeled, ratios, fluid, shell, params)
    decisions, levels = decision_images(ratios, normal, marrow, grid.spacing, fluid, params)
    ratios = _within_marrow(ratios, marrow, fitted_on, user_normal)
    voxel_mm3 = grid.voxel_volume_mm3
    bme = edema_candidates(decisions, levels, voxel_mm3, params)
    bme, spots, spot_notes = drop_focal_spots(
        bme, decisions[fluid], grid.spacing, voxel_mm3, params, sd=levels.sd.get(fluid, 0.0)
    )
    bme, veins, vein_notes = drop_basivertebral_veins(
        bme, bodies, grid.affine[:3, :3], voxel_mm3, params
    )
    body_labels = np.asarray(labels.bodies.data)
    layer_ratios = None
    if params.grow_into_wall:
        layer_ratios = _wall_layer_ratios(
            study, bodies, reference, regions, names, params, fitted_on, box, analysable
        )
    checks, check_notes = _contrast_checks(study, body_labels, all_bodies, reference, levels)
    checks["dark_shell_mm"] = shell
    checks["focal_spots"] = spots
    checks["basivertebral_veins"] = veins
    found = edema_findings(
        bme,
        decisions=decisions,
        levels=levels,
        bodies=bodies,
        body_labels=body_labels[box],
        ratios=ratios,
        grid=grid,
        params=params,
        shell_mm=shell["endplate_mm"],
        modic_assessed=checks["modic_assessed"],
        layer_ratios=layer_ratios,
        origin=tuple(s.start for s in box),
    )
    timings["analysis_s"] = time.perf_counter() - clock
    notes = list(study.notes) + list(labels.notes) + _body_notes(all_bodies, reference, params)
    notes += check_notes + spot_notes + vein_notes
    affine = grid.affine

    def whole(array: NDArray, fill: float = 0) -> NDArray:
        return on_full_grid(array, box, grid.shape, fill)

    if layer_ratios is not None:
        layer_ratios = {name: whole(r, np.nan) for name, r in layer_ratios.items()}
    return AnalysisResult(
        study=study,
        vertebrae=labels,
        bodies=all_bodies,
        marrow=Volume(whole(marrow.astype(np.uint8)), affine, kind="label", source="marrow"),
        ratios={
            name: Volume(whole(r, np.nan), affine, source=f"{name} ratio to normal marrow")
            for name, r in ratios.items()
        },
        bme_mask=Volume(whole(found.bme.astype(np.uint8)), affine, kind="label", source="bme_mask"),
        modic_map=Volume(whole(found.types), affine, kind="label", source="modic_map"),
        lesion_labels=Volume(whole(found.lesion_numbers), affine, kind="label", source="lesions"),
        endplate_rows=found.endplates,
        lesion_rows=found.lesions,
        references=reference.summary(),
        marrow_by_body={
            name: {"factors": reference.body_factors[name], **reference.body_confidence[name]}
            for name in reference.body_factors
        },
        fluid=fluid,
        decision=levels.to_dict(),
        bme_t1_dark_ml=t1_dark_ml(found.t1_dark, voxel_mm3, has_t1=study.t1 is not None),
        parameters=params,
        notes=tuple(notes),
        timings=timings,
        checks=checks,
        wall_layer_ratios=layer_ratios,
    )


def _spine_box(
    bodies: list[BodyGeometry],
    grid: Any,
    user_normal: NDArray[np.bool_] | None,
    params: Parameters,
) -> tuple[slice, ...]:
    """The box of the grid the spine analysis works on: the bodies (and the user's normal
    region) widened by what the stages read around them (:func:`bmetoolkit.bones.crop.
    analysis_box`). The whole grid with ``reference_bias_correction``, which corrects the
    images over the whole grid."""
    if params.reference_bias_correction or not bodies:
        return tuple(slice(0, n) for n in grid.shape)
    wanted = np.zeros(grid.shape, bool) if user_normal is None else user_normal.copy()
    for body in bodies:
        wanted.flat[body.index] = True
    reach = [params.decision_smoothing_mm, params.coarse_seed_mm]
    return analysis_box(wanted, grid.spacing, reach)


def _body_on_box(
    body: BodyGeometry, box: tuple[slice, ...], shape: tuple[int, ...]
) -> BodyGeometry:
    """``body`` with its voxels' flat indices on ``box`` of a grid of ``shape``."""
    if all(s.start == 0 and s.stop == n for s, n in zip(box, shape, strict=True)):
        return body
    return replace(body, index=grid_to_box_index(body.index, box, shape))


def edema_candidates(
    decisions: Mapping[str, NDArray[np.float32]],
    levels: DecisionLevels,
    voxel_mm3: float,
    params: Parameters,
    *,
    extra_seeds: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """The spine's edema before the focal-spot decision (:func:`bmetoolkit.segment.segment_bme`
    on the decision images and the scan's levels); ``extra_seeds`` seed more regions at the
    grow level (the follow-up's joint decision: a lesion of the other visit)."""
    return segment_bme(
        decisions.get("t1"),
        decisions[levels.fluid],
        levels=levels,
        voxel_mm3=voxel_mm3,
        params=params,
        coarse_seeds=extra_seeds,
    )


def edema_into_walls(
    bme: NDArray[np.bool_],
    fluid_decision: NDArray[np.floating],
    layer_ratios: Mapping[str, NDArray[np.floating]] | None,
    levels: DecisionLevels,
    params: Parameters,
) -> NDArray[np.bool_]:
    """The marrow's edema grown into the bodies' wall layer (``grow_into_wall``; unchanged
    without ``layer_ratios``)."""
    if layer_ratios is None:
        return bme
    return grow_into_walls(
        bme, fluid_decision, layer_ratios, levels=levels, fraction=params.lesion_edge_fraction
    )


class EdemaFindings(NamedTuple):
    """What the analysis derives from the spine's edema (:func:`edema_findings`)."""

    bme: NDArray[np.bool_]
    types: NDArray[np.uint8]
    assignment: NDArray[np.uint8]
    endplates: list[dict[str, Any]]
    lesion_numbers: NDArray[np.int32]
    lesions: list[dict[str, Any]]
    t1_dark: NDArray[np.bool_]


def edema_findings(
    marrow_bme: NDArray[np.bool_],
    *,
    decisions: Mapping[str, NDArray[np.float32]],
    levels: DecisionLevels,
    bodies: list[BodyGeometry],
    body_labels: NDArray,
    ratios: Mapping[str, NDArray[np.float32]],
    grid: Any,
    params: Parameters,
    shell_mm: float,
    modic_assessed: bool,
    layer_ratios: Mapping[str, NDArray[np.floating]] | None,
    origin: tuple[int, ...] = (0, 0, 0),
) -> EdemaFindings:
    """The stages after the edema decision: the edema grown into the walls, the Modic map,
    the endplate table and the lesions, from the marrow's edema ``marrow_bme`` (after the
    focal-spot decision). Used by :func:`analyze_study` and by the follow-up's joint
    decision (:mod:`bmetoolkit.followup.joint_visits`), so both derive them alike.

    The arrays (and ``bodies``' indices) may be a box of ``grid`` starting at voxel
    ``origin``: the lesions' positions and voxel boxes are then those on ``grid``."""
    fluid = decisions[levels.fluid]
    voxel_mm3 = grid.voxel_volume_mm3
    bme = edema_into_walls(marrow_bme, fluid, layer_ratios, levels, params)
    t1_dark = t1_dark_edema(bme, decisions, levels)
    # Without a T1 no voxel gets a Modic type (NaN is never dark or bright); the endplate
    # zones are still assigned, and the endplates say "not assessed".
    # Modic typing sees the marrow's edema only: the wall layer adds to the edema's volume,
    # never to what the edema is (a band along an endplate or not).
    # (the NaN image is built only without a T1: ``dict.get`` would build it every time)
    t1 = decisions["t1"] if "t1" in decisions else np.full(fluid.shape, np.nan, np.float32)
    types, assignment = modic_map(
        marrow_bme,
        t1,
        fluid,
        levels=levels,
        bodies=bodies,
        body_labels=body_labels,
        voxel_mm3=voxel_mm3,
        params=params,
        shell_mm=shell_mm,
    )
    if not modic_assessed:
        types[:] = 0
    endplates = endplate_table(bodies, types, assignment, voxel_mm3=voxel_mm3, params=params)
    if not modic_assessed:
        for row in endplates:
            row["modic_type"] = NOT_ASSESSED
    lesion_numbers, n_lesions = label_lesions(bme | (types > 0), body_labels)
    names = {b.body_id: (b.name, b.body_id if b.level else None) for b in bodies}
    lesions = lesion_table(
        lesion_numbers,
        n_lesions,
        bme=bme,
        types=types,
        assignment=assignment,
        body_labels=body_labels,
        body_names=names,
        ratios=dict(ratios),
        decisions=dict(decisions),
        levels=levels,
        t1_dark=t1_dark,
        grid=grid,
        params=params,
        origin=origin,
    )
    return EdemaFindings(bme, types, assignment, endplates, lesion_numbers, lesions, t1_dark)


def _vertebra_labels(
    study: Study,
    vertebrae: ImageInput | VertebraLabels | None,
    convention: str,
    params: Parameters,
) -> VertebraLabels:
    if isinstance(vertebrae, VertebraLabels):
        if not vertebrae.bodies.grid.same_as(study.grid):
            raise BmetoolkitError(
                "the VertebraLabels are not on the study (T1) grid",
                path=vertebrae.bodies.source,
                hint="pass the label map itself (path or Volume); it is resampled",
            )
        return vertebrae
    if vertebrae is not None:
        from bmetoolkit.io import as_volume

        source = as_volume(vertebrae, kind="label")
        label_volume, _ = resample_with_coverage(source, study.grid)
    elif study.labels is not None:
        label_volume = study.labels
    else:
        return _automatic_labels(study, params)
    return vertebral_bodies(
        label_volume, convention=convention, body_opening_mm=params.body_opening_mm
    )


def _automatic_labels(study: Study, params: Parameters) -> VertebraLabels:
    try:
        from bmetoolkit.spine.autoseg import find_vertebral_bodies
    except ImportError:
        raise MissingContrastError(
            "no vertebra labels were given and automatic vertebra segmentation is not "
            "available in this version",
            path=study.base.source,
            hint="pass a vertebra label map (SPINEPS, TotalSegmentator, VerSe ids or a binary "
            "body mask): vertebrae=... or --vertebrae",
        ) from None
    return find_vertebral_bodies(study, params=params.autoseg)


def _wall_layer_ratios(
    study: Study,
    bodies: list[BodyGeometry],
    reference: MarrowReference,
    regions: NDArray[np.int32],
    names: dict[int, str],
    params: Parameters,
    fitted_on: NDArray[np.bool_],
    box: tuple[slice, ...],
    analysable: NDArray[np.bool_],
) -> dict[str, NDArray[np.float32]]:
    """Ratios to normal marrow in the bodies' outer layer along their walls (not at the
    endplates, whose layer mixes in the disc) where nothing beside the body is as bright on
    the fluid image (CSF behind the body, fat on a T2): where ``grow_into_wall`` lets edema
    grow. ``fitted_on`` is the marrow the reference was estimated on; the arrays and the
    bodies' indices are on ``box`` of the study grid (``analysable`` its covered voxels)."""

    def wall_layer(body: BodyGeometry) -> NDArray[np.bool_]:
        return ~body.marrow & (body.nearest_depth > 2 * body.si_extent_mm)

    layer = on_grid(bodies, regions.shape, wall_layer, fill=False, dtype=bool)
    layer &= analysable
    if layer.any():  # on the part of the box outshone_from_outside works on
        part = grown_box(occupied_box(layer), 1, layer.shape)
        fluid = _read_around(study.fluid, layer, part, box)
        layer[part] &= ~outshone_from_outside(layer[part], regions[part] > 0, fluid)
    return ratios_at(study, reference, layer, regions, names, params, marrow=fitted_on, box=box)


def _read_around(
    image: Volume, layer: NDArray[np.bool_], part: tuple[slice, ...], box: tuple[slice, ...]
) -> NDArray[np.float32]:
    """``image`` on ``part`` of ``layer`` at the ``layer`` voxels and their 26 neighbours
    (all that :func:`~bmetoolkit.segment.outshone_from_outside` reads for the layer), 0
    elsewhere: a resampled image is resampled there only. ``layer`` covers ``box`` of the
    image's grid."""
    near = ndimage.binary_dilation(layer[part], structure=np.ones((3, 3, 3), bool))
    start = np.array([p.start + b.start for p, b in zip(part, box, strict=True)])[:, None]
    index = np.ravel_multi_index(tuple(np.array(np.nonzero(near)) + start), image.shape)
    values = np.zeros(near.shape, np.float32)
    values[near] = values_at(image, index)
    return values


def _within_marrow(
    ratios: dict[str, NDArray[np.float32]],
    marrow: NDArray[np.bool_],
    fitted_on: NDArray[np.bool_],
    user_normal: NDArray[np.bool_] | None,
) -> dict[str, NDArray[np.float32]]:
    """The ratio images of :func:`~bmetoolkit.ratios.marrow_ratios`, NaN outside ``marrow``
    (a part of the region they were computed on: ``fitted_on`` and the user's normal
    region), set in place.

    Those images are NaN outside that region already, so only the region's voxels that
    left the marrow are set: the values of ``np.where(marrow, ratio, nan)`` without a pass
    over the whole grid per image.

    >>> ratio = np.array([[[1.0, 2.0, np.nan, 4.0]]], np.float32)
    >>> fitted = np.array([[[True, True, False, True]]])
    >>> marrow = np.array([[[True, False, False, True]]])
    >>> _within_marrow({"t1": ratio}, marrow, fitted, None)["t1"].ravel().tolist()
    [1.0, nan, nan, 4.0]
    """
    region = fitted_on if user_normal is None else fitted_on | user_normal
    left = np.flatnonzero(region & ~marrow)
    out = {}
    for name, ratio in ratios.items():
        ratio = np.asarray(ratio, np.float32)
        np.put(ratio, left, np.nan)
        out[name] = ratio
    return out


def _fine_along_si(bodies: list[BodyGeometry]) -> list[BodyGeometry]:
    """The bodies whose voxels are at most ``COARSE_SI_MM`` long along their own SI axis.

    The dark shell below the endplates is one or two voxels deep; on voxels longer than
    that along a body's SI axis it cannot be told from the marrow's first voxel, so such a
    body is neither measured for the shell nor peeled. The decision is each body's own:
    every body of a sagittal scan with coarse slices but fine in-plane pixels is fine, every
    body of an axial stack of thick slices coarse, and one body whose axis is odd does not
    decide for the others.

    >>> from types import SimpleNamespace
    >>> odd = SimpleNamespace(name="T12", si_extent_mm=3.2)
    >>> [body.name for body in _fine_along_si([SimpleNamespace(name="L1", si_extent_mm=1.1), odd])]
    ['L1']
    """
    return [body for body in bodies if body.si_extent_mm <= COARSE_SI_MM]


def _peel_shell(
    marrow: NDArray[np.bool_],
    bodies: list[BodyGeometry],
    ratios: Mapping[str, NDArray[np.float32]],
    fluid: str,
    shell: dict[str, float],
    params: Parameters,
) -> None:
    """Take out of ``marrow`` (in place) the voxels within the scan's shell depth below the
    endplates or inside the walls that also look like the shell (dark on T1 and on the
    fluid image, :func:`~bmetoolkit.ratios.shell_like`).

    A lesion bright on either, right under the endplate, stays. Each body's voxels within
    the depth are tested alone (the test is voxel by voxel), without a grid-sized array.
    """
    flat = {name: np.asarray(ratio).reshape(-1) for name, ratio in ratios.items()}
    for body in bodies:
        within = (body.nearest_depth < shell["endplate_mm"]) | (body.inside_mm < shell["wall_mm"])
        index = body.index[within]
        dark = shell_like({name: ratio[index] for name, ratio in flat.items()}, fluid, params)
        np.put(marrow, index[dark], False)


def _reference_region(reference_mask: ImageInput | None, study: Study) -> NDArray[np.bool_] | None:
    """The user's normal-marrow region on the study grid, within the analysable marrow."""
    if reference_mask is None:
        return None
    from bmetoolkit.io import as_volume

    source = as_volume(reference_mask, kind="label")
    region, _ = resample_with_coverage(source, study.grid)
    inside = (np.asarray(region.data) > 0) & study.analysable()
    if np.count_nonzero(inside) < MIN_REFERENCE_VOXELS:
        raise BmetoolkitError(
            f"the reference mask covers {np.count_nonzero(inside)} analysable voxels on the "
            f"T1 grid (at least {MIN_REFERENCE_VOXELS} are needed)",
            path=source.source,
            hint="draw the normal-marrow region inside bone covered by every image",
        )
    return inside


def _contrast_checks(
    study: Study,
    body_labels: NDArray,
    bodies: list[BodyGeometry],
    reference: MarrowReference,
    levels: DecisionLevels,
) -> tuple[dict[str, Any], list[str]]:
    """Whether the T1 can carry Modic types and how noisy the marrow is; notes to report."""
    notes = []
    if study.t1 is None:
        ratio, evidence, dark = None, "no T1", False
        notes.append("no T1: Modic types need a T1 and were not assessed")
    else:
        ratio, evidence = disc_to_marrow_ratio(
            study.t1.data, body_labels, bodies, study.grid, study.analysable()
        )
        dark = marrow_darker_than_discs(ratio)
    if dark:
        notes.append(
            f"on this T1 the discs are {ratio:.1f} x brighter than the marrow (a spin-echo T1 "
            "shows fatty marrow brighter than the discs): Modic types are defined on spin-echo "
            "T1 and were not assessed; edema was, but check it in the QC figure"
        )
    spreads, noisy = spread_notes(reference)
    notes += noisy
    checks = {
        "modic_assessed": study.t1 is not None and not dark,
        "t1_disc_to_marrow": None if ratio is None else round(ratio, 3),
        "t1_disc_to_marrow_evidence": evidence,
        "marrow_log_spread": spreads,
        "t1_criterion": levels.t1_criterion,
        "role_evidence": {role: dict(m) for role, m in study.role_evidence.items()},
    }
    return checks, notes


def _body_notes(
    bodies: list[BodyGeometry], reference: MarrowReference, params: Parameters
) -> list[str]:
    """Notes on the bodies: coarse voxels, bodies cut by the field of view (one note for
    all of them), and bodies whose reference is weak or at the per-body limit."""
    notes = []
    coarse = largest_si_extent(bodies)
    if coarse > COARSE_SI_MM:
        notes.append(
            f"voxels are {coarse:.1f} mm along the spine: too coarse to tell endplate zones "
            f"reliably (Modic zones and grades need about {COARSE_SI_MM:.0f} mm or finer)"
        )
    cut = [body.name for body in bodies if body.touches_border]
    if cut:
        notes.append(
            f"{', '.join(cut)} reach{'es' if len(cut) == 1 else ''} the edge of the field of "
            f"view: {'its' if len(cut) == 1 else 'their'} height and extent grades may be "
            "underestimated"
        )
    for body in bodies:
        confidence = reference.body_confidence.get(body.name, {})
        if confidence.get("confidence") == "low":
            notes.append(
                f"{body.name}: only {100 * confidence['normal_fraction']:.0f} % of its marrow "
                "looks normal, so its reference is the other bodies' (low reference "
                "confidence): a diffuse marrow change, or a poor body mask"
            )
        for name, factor in reference.body_factors.get(body.name, {}).items():
            if abs(factor - 1) >= params.max_body_offset * 0.999:
                notes.append(
                    f"{body.name}: normal marrow on {name.upper()} is {factor:.2f} x the "
                    "other bodies' (at the per-body limit): diffuse marrow change, or a poor "
                    "reference"
                )
    return notes
