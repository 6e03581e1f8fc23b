"""The analysis in one call: vertebral bodies, marrow reference, BME, Modic, tables.

:func:`analyze` takes the images (paths or volumes) and vertebra labels, and returns an
:class:`~bmetoolkit.result.AnalysisResult`. The stages, each a pure function of arrays:

1. bodies from the labels in any convention (:func:`bmetoolkit.spine.labels.vertebral_bodies`),
   or found automatically when no labels are given;
2. geometry and marrow of each body (:mod:`bmetoolkit.spine.vertebra`);
3. ratios to the subject's normal marrow (:mod:`bmetoolkit.reference`);
4. bone marrow edema (:mod:`bmetoolkit.segment`);
5. Modic type per voxel and per endplate (:mod:`bmetoolkit.modic`);
6. the lesion table (:mod:`bmetoolkit.lesions`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import BmetoolkitError, MissingContrastError
from bmetoolkit.lesions import lesion_table
from bmetoolkit.modic import NOT_ASSESSED, endplate_table, modic_map
from bmetoolkit.params import Parameters
from bmetoolkit.reference import ReferenceField, fit_reference, n4_corrected, robust_location
from bmetoolkit.resample import resample_with_coverage
from bmetoolkit.result import AnalysisResult
from bmetoolkit.segment import label_lesions, segment_bme
from bmetoolkit.spine.labels import VertebraLabels, vertebral_bodies
from bmetoolkit.spine.t1_contrast import disc_to_marrow_ratio, marrow_darker_than_discs
from bmetoolkit.spine.vertebra import BodyGeometry, body_geometries, on_grid
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume

__all__ = ["analyze", "analyze_study"]

ImageInput = str | os.PathLike | Volume
#: Voxels longer than this (mm) along a body's SI axis are too coarse for endplate zones.
COARSE_SI_MM = 2.0
#: Normal marrow whose log signal spreads more than this (robust SD) around its reference
#: is too noisy or heterogeneous for reliable voxel decisions (the phantoms: 0.06-0.10).
NOISY_LOG_SPREAD = 0.3


def analyze(
    t1: ImageInput,
    t2: ImageInput | None = None,
    stir: ImageInput | None = None,
    vertebrae: ImageInput | VertebraLabels | None = None,
    params: Parameters | Mapping[str, Any] | str | os.PathLike | None = None,
    *,
    label_convention: str = "auto",
    t1_series: str | int | None = None,
    t2_series: str | int | None = None,
    stir_series: str | int | None = None,
    allow_cross_study: bool = False,
) -> AnalysisResult:
    """Find bone marrow edema and Modic changes in one subject's spine MRI.

    Parameters
    ----------
    t1 : path or Volume
        The T1-weighted image (NIfTI file, DICOM series folder or Volume); its grid is the
        grid of every output. A DICOM folder holding a whole study works too when ``t2``
        and ``stir`` are not given: the series are then paired automatically.
    t2, stir : path or Volume, optional
        T2-weighted and STIR (or fat-suppressed T2) images; at least one. STIR drives the
        fluid decision when present.
    vertebrae : path, Volume or VertebraLabels, optional
        Vertebra labels: VerSe/SPINEPS ids, TotalSegmentator classes or a binary mask.
        Without them the bodies are found automatically.
    params : Parameters, dict or path, optional
        Thresholds (a JSON file or dict may hold only some values); defaults otherwise.
    label_convention : str
        Convention of ``vertebrae`` (``"auto"``, ``"verse"``, ``"spineps"``,
        ``"totalsegmentator"``, ``"total_mr"``, ``"binary"``).
    t1_series, t2_series, stir_series : str or int, optional
        When ``t1`` is a DICOM study folder: the series to use (number, UID or
        description), for when the automatic pairing is ambiguous.
    allow_cross_study : bool
        Pair DICOM series of different studies (StudyInstanceUID); refused otherwise.

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    >>> phantom = make_phantom(seed=1, lesions="modic2", config=PhantomConfig.small())
    >>> result = analyze(phantom.t1, stir=phantom.stir, vertebrae=phantom.truth.vertebrae)
    >>> result.endplates.query("modic_type != 'none'")[["level", "endplate", "modic_type"]]
      level  endplate modic_type
    9    L3  inferior         II
    """
    params = _parameters(params)
    labels_input = None if isinstance(vertebrae, VertebraLabels) else vertebrae
    if t2 is None and stir is None and _is_folder(t1):
        study = Study.from_dicom(
            t1,
            t1=t1_series,
            t2=t2_series,
            stir=stir_series,
            labels=labels_input,
            allow_cross_study=allow_cross_study,
        )
    else:
        study = Study.from_images(
            t1, t2=t2, stir=stir, labels=labels_input, allow_cross_study=allow_cross_study
        )
    if isinstance(vertebrae, VertebraLabels):
        return analyze_study(study, vertebrae, params)
    return analyze_study(study, None, params, label_convention=label_convention)


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
) -> AnalysisResult:
    """Run the analysis on a :class:`Study` (images already on the T1 grid).

    ``vertebrae`` overrides the study's own labels; with neither, the bodies are found
    automatically. See :func:`analyze` for the parameters.
    """
    params = params or Parameters()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    labels = _vertebra_labels(study, vertebrae, label_convention, params)
    timings["labels_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    grid = study.grid
    bodies = body_geometries(labels, cortex_mm=params.cortex_mm)
    marrow = on_grid(bodies, grid.shape, lambda b: b.marrow, fill=False, dtype=bool)
    marrow &= study.analysable()
    ratios, references, per_body = _ratios(study, marrow, bodies, params)
    fluid = "stir" if study.stir is not None else "t2"
    voxel_mm3 = grid.voxel_volume_mm3
    bme = segment_bme(ratios["t1"], ratios[fluid], fluid=fluid, voxel_mm3=voxel_mm3, params=params)
    body_labels = np.asarray(labels.bodies.data)
    types, assignment = modic_map(
        bme,
        ratios["t1"],
        ratios[fluid],
        fluid=fluid,
        bodies=bodies,
        body_labels=body_labels,
        voxel_mm3=voxel_mm3,
        params=params,
    )
    checks, check_notes = _contrast_checks(study, body_labels, bodies, references)
    if not checks["modic_assessed"]:
        types[:] = 0
    endplates = endplate_table(bodies, types, assignment, voxel_mm3=voxel_mm3, params=params)
    if not checks["modic_assessed"]:
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
        ratios=ratios,
        grid=grid,
        params=params,
    )
    timings["analysis_s"] = time.perf_counter() - clock
    notes = list(study.notes) + list(labels.notes) + _body_notes(bodies, per_body, params)
    notes += check_notes
    affine = grid.affine
    return AnalysisResult(
        study=study,
        vertebrae=labels,
        bodies=bodies,
        marrow=Volume(marrow.astype(np.uint8), affine, kind="label", source="marrow"),
        ratios={
            name: Volume(r, affine, source=f"{name} ratio to normal marrow")
            for name, r in ratios.items()
        },
        bme_mask=Volume(bme.astype(np.uint8), affine, kind="label", source="bme_mask"),
        modic_map=Volume(types, affine, kind="label", source="modic_map"),
        lesion_labels=Volume(lesion_numbers, affine, kind="label", source="lesions"),
        endplate_rows=endplates,
        lesion_rows=lesions,
        references={name: ref.to_dict() for name, ref in references.items()},
        marrow_by_body=per_body,
        fluid=fluid,
        parameters=params,
        notes=tuple(notes),
        timings=timings,
        checks=checks,
    )


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
        return _automatic_labels(study)
    return vertebral_bodies(
        label_volume, convention=convention, body_opening_mm=params.body_opening_mm
    )


def _automatic_labels(study: Study) -> VertebraLabels:
    try:
        from bmetoolkit.spine.autoseg import find_vertebral_bodies
    except ImportError:
        raise MissingContrastError(
            "no vertebra labels were given and automatic vertebra segmentation is not "
            "available in this version",
            path=study.t1.source,
            hint="pass a vertebra label map (SPINEPS, TotalSegmentator, VerSe ids or a binary "
            "body mask): vertebrae=... or --vertebrae",
        ) from None
    return find_vertebral_bodies(study)


def _ratios(
    study: Study, marrow: NDArray[np.bool_], bodies: list[BodyGeometry], params: Parameters
) -> tuple[dict[str, NDArray[np.float32]], dict[str, ReferenceField], dict[str, dict]]:
    """Ratio images (NaN outside the marrow), their reference fields, per-body factors."""
    index = np.flatnonzero(marrow)
    ijk = np.stack(np.unravel_index(index, marrow.shape), axis=1)
    xyz = study.grid.voxel_to_world(ijk)
    images = {"t1": study.t1, "t2": study.t2, "stir": study.stir}
    ratios: dict[str, NDArray[np.float32]] = {}
    references: dict[str, ReferenceField] = {}
    factors: dict[str, dict[str, float]] = {body.name: {} for body in bodies}
    for name, volume in images.items():
        if volume is None:
            continue
        data = np.asarray(volume.data, np.float32)
        if params.reference_bias_correction:
            data = n4_corrected(data, study.grid.spacing, marrow)
        values = data.ravel()[index]
        try:
            reference = fit_reference(values, xyz, degree=params.reference_degree)
        except ValueError as exc:
            raise BmetoolkitError(
                f"cannot estimate normal marrow on the {name} image: {exc}",
                path=volume.source,
                hint="check that the vertebra labels lie on the vertebral bodies of this scan",
            ) from None
        ratio = np.full(marrow.size, np.nan, np.float32)
        ratio[index] = values / reference.at(xyz)
        if params.reference_per_body:
            for body in bodies:
                factor = _body_factor(ratio, body, params)
                ratio[body.index] /= factor
                factors[body.name][name] = round(factor, 4)
        ratios[name] = ratio.reshape(marrow.shape)
        references[name] = reference
    return ratios, references, factors


def _body_factor(ratio: NDArray[np.float32], body: BodyGeometry, params: Parameters) -> float:
    """Robust level of a body's central marrow relative to the field, within limits."""
    limit = params.central_fraction * body.height_mm
    central = (body.depth_superior > limit) & (body.depth_inferior > limit)
    values = ratio[body.index[central]]
    values = values[np.isfinite(values) & (values > 0)]
    if values.size < 20:
        return 1.0
    offset = robust_location(np.log(values))
    bound = np.log1p(params.max_body_offset)
    return float(np.exp(np.clip(offset, -bound, bound)))


def _contrast_checks(
    study: Study,
    body_labels: NDArray,
    bodies: list[BodyGeometry],
    references: Mapping[str, ReferenceField],
) -> tuple[dict[str, Any], list[str]]:
    """Whether the T1 can carry Modic types and how noisy the marrow is; notes to report."""
    ratio, evidence = disc_to_marrow_ratio(
        study.t1.data, body_labels, bodies, study.grid, study.analysable()
    )
    dark = marrow_darker_than_discs(ratio)
    notes = []
    if dark:
        notes.append(
            f"on this T1 the discs are {ratio:.1f} x brighter than the marrow (a spin-echo T1 "
            "shows fatty marrow brighter than the discs): Modic types are defined on spin-echo "
            "T1 and were not assessed; edema was, but check it in the QC figure"
        )
    spreads = {name: round(ref.spread, 3) for name, ref in references.items()}
    for name, spread in spreads.items():
        if spread > NOISY_LOG_SPREAD:
            notes.append(
                f"normal marrow on {name.upper()} varies by about {100 * np.expm1(spread):.0f} % "
                "around its reference (noise or heterogeneous marrow): expect spurious small "
                "findings"
            )
    checks = {
        "modic_assessed": not dark,
        "t1_disc_to_marrow": None if ratio is None else round(ratio, 3),
        "t1_disc_to_marrow_evidence": evidence,
        "marrow_log_spread": spreads,
    }
    return checks, notes


def _body_notes(
    bodies: list[BodyGeometry], factors: dict[str, dict[str, float]], params: Parameters
) -> list[str]:
    notes = []
    coarse = max((body.si_extent_mm for body in bodies), default=0.0)
    if coarse > COARSE_SI_MM:
        notes.append(
            f"voxels are {coarse:.1f} mm along the spine: too coarse to tell endplate zones "
            f"reliably (Modic zones and grades need about {COARSE_SI_MM:.0f} mm or finer)"
        )
    for body in bodies:
        if body.touches_border:
            notes.append(
                f"{body.name} reaches the edge of the field of view: its height and extent "
                "grades may be underestimated"
            )
        for name, factor in factors.get(body.name, {}).items():
            if abs(factor - 1) >= params.max_body_offset * 0.999:
                notes.append(
                    f"{body.name}: central marrow on {name.upper()} is {factor:.2f} x the "
                    "other bodies' (at the per-body limit): diffuse marrow change, or a poor "
                    "reference"
                )
    return notes
