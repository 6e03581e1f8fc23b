"""Normal-marrow reference: MRI intensities as ratios to the subject's own normal marrow.

MRI has no units, and coil sensitivity makes the same tissue brighter near the coil. For
each image, bmetoolkit fits a smooth **reference field** to the logarithm of the marrow
intensities: a polynomial of degree ``reference_degree`` in the RAS coordinates (mm) of
the marrow voxels of all vertebral bodies, fitted by iteratively reweighted least squares
with Tukey's biweight. Lesions, a haemangioma or a few abnormal vertebrae are outliers of
that fit and get (near) zero weight, so they do not bias it; smooth coil shading, across
and within the bodies, is what the polynomial absorbs. A voxel's **ratio** is its intensity
divided by the field at its position: 1.0 is normal marrow, 0.5 half as bright.

Optionally (``reference_bias_correction``), SimpleITK's N4 bias field correction runs
first on the image.

Marrow fat, and so its signal, also differs from one vertebra to the next. With
``reference_per_body`` (the default) each body gets its own factor on top of the field,
limited to ``±max_body_offset``; :func:`normal_marrow_reference` estimates fields and factors
from the voxels that are normal on every sequence, so that lesions cannot bend them, and
says per body how much of its marrow was normal. The factors are kept in the report; one at
its limit flags a body whose whole marrow departs from the others.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> xyz = rng.uniform(-50, 50, size=(5000, 3))
>>> shading = np.exp(0.004 * xyz[:, 1])  # brighter anteriorly
>>> values = 300 * shading * rng.normal(1, 0.05, 5000)
>>> values[:500] *= 3  # 10 % lesion voxels, three times as bright
>>> field = fit_reference(values, xyz, degree=1)
>>> ratio = values / field.at(xyz)
>>> round(float(np.median(ratio[500:])), 2), round(float(np.median(ratio[:500])), 1)
(1.0, 3.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations_with_replacement
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MarrowReference",
    "ReferenceField",
    "fit_reference",
    "n4_corrected",
    "normal_marrow_reference",
]

#: Tukey biweight tuning constant (95 % efficiency for Gaussian residuals).
TUKEY_C = 4.685
#: Iterations of reweighted least squares.
IRLS_ITERATIONS = 10
#: Most voxels used in a fit (an even subsample of the marrow beyond that).
MAX_FIT_VOXELS = 10_000
#: MAD to standard deviation for Gaussian data.
MAD_TO_SD = 1.4826
#: Width of the shortest half of Gaussian data, in standard deviations.
SHORTH_WIDTH_SD = 1.349


@dataclass(frozen=True)
class ReferenceField:
    """A fitted normal-marrow reference: ``exp(polynomial(xyz))``.

    Attributes
    ----------
    coefficients : ndarray
        Polynomial coefficients of the log intensity, one per monomial.
    centre, scale : ndarray
        Coordinates are normalised as ``(xyz - centre) / scale`` before the polynomial.
    degree : int
        Polynomial degree.
    spread : float
        Robust standard deviation of the log ratio of the marrow around the field.
    n_voxels : int
        Voxels the fit used.
    """

    coefficients: NDArray[np.float64]
    centre: NDArray[np.float64]
    scale: float
    degree: int
    spread: float
    n_voxels: int

    def at(self, xyz: NDArray[np.floating]) -> NDArray[np.float64]:
        """Reference intensity at RAS positions ``xyz`` (N x 3, mm)."""
        return np.exp(self.log_at(xyz))

    def log_at(self, xyz: NDArray[np.floating]) -> NDArray[np.float64]:
        """Log reference intensity at RAS positions ``xyz`` (N x 3, mm)."""
        return MonomialsAt(xyz, self).log_fields([self])[0]

    def to_dict(self) -> dict[str, object]:
        """Summary for the report."""
        return {
            "degree": self.degree,
            "n_voxels": self.n_voxels,
            "log_spread": round(self.spread, 4),
            "level_at_centre": round(float(np.exp(self.coefficients[0])), 3),
        }


def robust_sd(values: NDArray[np.floating]) -> float:
    """Robust SD of ``values``: their median absolute deviation, scaled to a Gaussian's SD.

    >>> round(robust_sd(np.array([1.0, 2.0, 3.0, 4.0, 100.0])), 3)
    1.483
    """
    values = np.asarray(values)
    return MAD_TO_SD * float(np.median(np.abs(values - np.median(values))))


def _times(design: NDArray[np.float64], coefficients: NDArray[np.float64]) -> NDArray[np.float64]:
    """``design @ coefficients`` without BLAS threads (they spin under load: 10x slower)."""
    return np.einsum("ni,i->n", design, coefficients, optimize=False)


def _monomials(degree: int) -> list[tuple[int, ...]]:
    """The non-constant monomials of the three coordinates up to ``degree``, as the axes
    they multiply (the design's columns after the constant, in order).

    >>> _monomials(2)
    [(0,), (1,), (2,), (0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    """
    return [c for d in range(1, degree + 1) for c in combinations_with_replacement(range(3), d)]


def _fill_monomials(columns: NDArray[np.float64], xyz: NDArray[np.float64], degree: int) -> None:
    """Write each monomial of ``xyz``'s coordinates into its column of ``columns``."""
    _fill_monomials_of(columns, [np.ascontiguousarray(xyz[:, a]) for a in range(3)], degree)


def _fill_monomials_of(
    columns: NDArray[np.float64], axes: list[NDArray[np.float64]], degree: int
) -> None:
    """:func:`_fill_monomials` from the three coordinates apart (``axes``)."""
    for column, combo in zip(columns, _monomials(degree), strict=True):
        column[:] = axes[combo[0]]
        for a in combo[1:]:
            column *= axes[a]


def _design(xyz: NDArray[np.float64], degree: int) -> NDArray[np.float64]:
    """Monomials of the three coordinates up to ``degree`` (constant first), one row per
    position: the design matrix of a fit."""
    design = np.empty((len(xyz), 1 + len(_monomials(degree))))
    design[:, 0] = 1.0
    _fill_monomials(design.T[1:], xyz, degree)
    return design


class MonomialsAt:
    """Fields of one normalisation evaluated at fixed positions (one image's field and its
    refits, and the other images' fields fitted on the same voxels).

    A field is its constant plus its other coefficients times their monomials, added in
    order (the same value at the same position whichever caller evaluates it). The
    monomials are built and used a block of positions at a time (:data:`BLOCK`), so every
    pass over them stays in the processor's cache: several times faster than a design
    matrix of all positions, and without its memory.

    >>> field = ReferenceField(np.array([1.0, 0.5, 0.0, 0.0]), np.zeros(3), 10.0, 1, 0.1, 100)
    >>> at = MonomialsAt(np.array([[0.0, 0, 0], [10, 0, 0]]), field)
    >>> at.log_fields([field])[0].tolist()
    [1.0, 1.5]
    """

    #: Positions per block (the monomials of a block: about 1 MB at degree 3).
    BLOCK = 16384

    def __init__(self, xyz: NDArray[np.floating], field: ReferenceField) -> None:
        self.centre, self.scale, self.degree = field.centre, field.scale, field.degree
        self.xyz = np.asarray(xyz, float)
        self._rows = np.ascontiguousarray(self.xyz.T)  # each coordinate contiguous

    def fits(self, field: ReferenceField) -> bool:
        """Whether ``field`` has this normalisation (the same degree, centre and scale)."""
        return (
            field.degree == self.degree
            and field.scale == self.scale
            and np.array_equal(field.centre, self.centre)
        )

    def log_fields(self, fields: list[ReferenceField]) -> list[NDArray[np.float64]]:
        """The log of each field at the positions (every field must :meth:`fit`)."""
        if not all(self.fits(field) for field in fields):
            raise ValueError("a field has another degree or normalisation")
        size = len(self.xyz)
        # every field's sums side by side (one row each): the same products and sums per
        # position, in the same order, with one call per monomial for all fields
        outs = np.empty((len(fields), size))
        coefficients = np.array([field.coefficients for field in fields])[:, :, None]
        monomials = np.empty((len(_monomials(self.degree)), min(size, self.BLOCK)))
        terms = np.empty((len(fields), monomials.shape[1]))
        for start in range(0, size, self.BLOCK):
            stop = min(size, start + self.BLOCK)
            columns, product = monomials[:, : stop - start], terms[:, : stop - start]
            unit = (self._rows[:, start:stop] - self.centre[:, None]) / self.scale
            _fill_monomials_of(columns, list(unit), self.degree)
            total = outs[:, start:stop]
            total[:] = coefficients[:, 0]
            for column, coefficient in zip(
                columns, coefficients[:, 1:].transpose(1, 0, 2), strict=True
            ):
                np.multiply(column, coefficient, out=product)
                total += product
        return list(outs)


def fit_reference(
    values: NDArray[np.floating],
    xyz: NDArray[np.floating],
    *,
    degree: int = 2,
    start: ReferenceField | None = None,
    iterations: int = IRLS_ITERATIONS,
    select: NDArray[np.bool_] | None = None,
    max_sigma: float = np.inf,
) -> ReferenceField:
    """Fit a reference field to marrow intensities robustly.

    Parameters
    ----------
    values : ndarray
        Intensities of the marrow voxels (N).
    xyz : ndarray
        Their RAS positions (N x 3, mm).
    degree : int
        Polynomial degree (0 = one value for all).
    start : ReferenceField, optional
        A previous fit of the same degree to start from (a refit on fewer voxels).
    iterations : int
        Rounds of reweighting.
    select : ndarray of bool, optional
        Fit only these voxels (N): the same as passing ``values[select]`` and
        ``xyz[select]``, without copying all of them before the subsample.

    Returns
    -------
    ReferenceField

    Raises
    ------
    ValueError
        With fewer positive voxels than the polynomial has terms (times 10).
    """
    values = np.asarray(values)
    chosen = values > 0 if select is None else np.asarray(select, bool) & (values > 0)
    index = np.flatnonzero(chosen)
    index = index[:: max(1, len(index) // MAX_FIT_VOXELS)]  # subsample before copying
    values = values[index].astype(np.float64)
    xyz = np.asarray(xyz)[index].astype(np.float64)
    if start is not None and start.degree == degree:
        centre, scale = start.centre, start.scale
    else:
        centre = xyz.mean(axis=0) if len(xyz) else np.zeros(3)
        scale = float(np.abs(xyz - centre).max()) if len(xyz) else 1.0
    design = _design((xyz - centre) / max(scale, 1e-6), degree)
    if len(values) < 10 * design.shape[1]:
        raise ValueError(
            f"too few marrow voxels ({len(values)}) for a degree-{degree} reference field"
        )
    target = np.log(values)
    coefficients = np.zeros(design.shape[1])
    coefficients[0] = np.median(target)
    if start is not None and start.degree == degree:
        coefficients = start.coefficients.copy()
    for _ in range(iterations):
        residual = target - _times(design, coefficients)
        sigma = min(robust_sd(residual), max_sigma)
        u = residual / max(TUKEY_C * sigma, 1e-6)
        weight = np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
        weighted = design * weight[:, None]
        coefficients = np.linalg.solve(
            weighted.T @ design + 1e-9 * np.eye(design.shape[1]), weighted.T @ target
        )
    spread = robust_sd(target - _times(design, coefficients))
    return ReferenceField(coefficients, centre, max(scale, 1e-6), degree, spread, len(values))


def n4_corrected(
    image: NDArray[np.floating], spacing: NDArray[np.float64], mask: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """``image`` divided by the N4 bias field (SimpleITK) estimated inside ``mask``.

    The field is estimated on a copy shrunk along its fine, long axes (see
    :func:`_shrink_factor`) and applied at full resolution.
    """
    import SimpleITK as sitk

    data = np.asarray(image, np.float32)
    itk = sitk.GetImageFromArray(np.transpose(data, (2, 1, 0)))
    itk.SetSpacing([float(s) for s in spacing])
    itk_mask = sitk.GetImageFromArray(np.transpose(mask.astype(np.uint8), (2, 1, 0)))
    itk_mask.CopyInformation(itk)
    shrink = [_shrink_factor(n, s) for n, s in zip(data.shape, spacing, strict=True)]
    small = sitk.Shrink(itk, shrink)
    small_mask = sitk.Shrink(itk_mask, shrink)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([20, 20, 10])
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(itk)
    field = np.transpose(sitk.GetArrayFromImage(log_field), (2, 1, 0))
    return (data / np.exp(field)).astype(np.float32)


def _shrink_factor(size: int, spacing_mm: float) -> int:
    """How much N4 may shrink an axis: 4 for long fine ones, 2 for medium, else 1.

    >>> _shrink_factor(400, 0.8), _shrink_factor(96, 2.9), _shrink_factor(16, 4.4)
    (4, 2, 1)
    """
    if size >= 64 and spacing_mm <= 1.5:
        return 4
    return 2 if size >= 32 and spacing_mm <= 3.0 else 1


@dataclass(frozen=True)
class MarrowReference:
    """Normal marrow of one subject on every sequence, and how far to trust it.

    Attributes
    ----------
    fields : dict of str to ReferenceField
        The reference field of each sequence, fitted on normal marrow only.
    normal : ndarray of bool
        Per marrow voxel (in the order of the values given): normal on every sequence.
    log_residual : dict of str to ndarray
        Per sequence and marrow voxel: log intensity minus the log reference (the field and
        the body's factor); 0 is normal marrow.
    body_factors : dict
        Body name -> sequence -> factor on top of the field (1.0 without one).
    body_confidence : dict
        Body name -> ``{"normal_fraction", "confidence"}``: the fraction of the body's
        marrow that is normal on every sequence, and ``"high"`` (>= 0.7), ``"moderate"``
        or ``"low"`` (below ``min_normal_fraction``: the field alone is its reference).
    source : str
        ``"marrow"`` (estimated from the marrow itself) or ``"mask"`` (a user's region).
    """

    fields: dict[str, ReferenceField]
    normal: NDArray[np.bool_]
    log_residual: dict[str, NDArray[np.float64]]
    body_factors: dict[str, dict[str, float]]
    body_confidence: dict[str, dict[str, Any]]
    source: str

    def summary(self) -> dict[str, Any]:
        """The report's view: fields, normal voxels, per-body factors and confidence."""
        return {
            "source": self.source,
            "n_normal_voxels": int(self.normal.sum()),
            "normal_fraction": round(float(self.normal.mean()), 4) if self.normal.size else 0.0,
            "fields": {name: f.to_dict() for name, f in self.fields.items()},
        }


#: Rounds of the normal-marrow selection (select, locate each body, select again).
NORMAL_ROUNDS = 2
#: Reweighting rounds of each refit on normal voxels (it starts from the previous fit).
REFIT_ITERATIONS = 3
#: A body's reference confidence is "high" from this normal fraction of its marrow.
HIGH_CONFIDENCE_FRACTION = 0.7


def normal_marrow_reference(
    values: dict[str, NDArray[np.floating]],
    xyz: NDArray[np.floating],
    body_of: NDArray[np.integer],
    body_names: dict[int, str],
    *,
    degree: int,
    inlier_z: float,
    per_body: bool,
    max_body_offset: float,
    min_normal_fraction: float,
    normal_mask: NDArray[np.bool_] | None = None,
    region_mean: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None,
    region_z: float = 3.0,
) -> MarrowReference:
    """Estimate normal marrow from marrow voxels that are themselves normal.

    A first robust fit (:func:`fit_reference`) per sequence gives residuals and their robust
    SD. A voxel is **normal** when its residual lies within ``inlier_z`` SDs on *every*
    sequence (edema bright on STIR is left out of the T1 reference too). Each body's factor
    is then the median of its normal voxels only, found like a mean shift that
    starts at the field: the normal window follows the body's own level, so a body whose
    marrow is a little brighter keeps its marrow, while edema filling half a body lies
    outside the window from the first round and never pulls the factor. The fields are
    refitted on normal voxels. A body with less than ``min_normal_fraction`` normal marrow
    gets no factor (confidence ``"low"``).

    Parameters
    ----------
    values : dict of str to ndarray
        Intensities per sequence at the marrow voxels (N each).
    xyz : ndarray
        RAS positions of the marrow voxels (N x 3, mm).
    body_of : ndarray of int
        Body id of each marrow voxel (N).
    body_names : dict
        Body id -> name, for the per-body tables.
    degree, inlier_z, per_body, max_body_offset, min_normal_fraction
        See :class:`~bmetoolkit.params.Parameters`.
    normal_mask : ndarray of bool, optional
        A user's normal-marrow region (N, True inside): the reference is fitted there alone
        with ``degree`` (no per-body factors).
    region_mean : callable, optional
        Per-voxel values (N) -> their average over a region around each voxel within the
        marrow (N; NaN where none). With it the first fields are fitted to the region
        averages (:func:`_field_of_region_means`) and a normal voxel's region average must
        also lie within ``region_z`` robust SDs of normal marrow's averages on every
        sequence (:func:`_normal_at_region_scale`): a faint edema filling much of a bone
        then bends neither the fields nor the spread.
    region_z : float
        See ``region_mean``.

    Returns
    -------
    MarrowReference

    Raises
    ------
    ValueError
        When too few voxels are positive for a fit (see :func:`fit_reference`).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> xyz = rng.uniform(-40, 40, size=(6000, 3))
    >>> body_of = np.where(xyz[:, 2] > 0, 1, 2)
    >>> t1 = 500 * rng.normal(1, 0.05, 6000)
    >>> stir = 100 * rng.normal(1, 0.08, 6000)
    >>> edema = (body_of == 1) & (xyz[:, 2] > 20)  # half of body 1
    >>> t1[edema] *= 0.9; stir[edema] *= 2.0
    >>> ref = normal_marrow_reference(
    ...     {"t1": t1, "stir": stir}, xyz, body_of, {1: "L1", 2: "L2"}, degree=0,
    ...     inlier_z=2.5, per_body=True, max_body_offset=0.2, min_normal_fraction=0.4)
    >>> round(ref.body_factors["L1"]["stir"], 2), bool(ref.normal[edema].any())
    (1.0, False)
    """
    names = list(values)
    arrays = {name: np.asarray(values[name], np.float64) for name in names}
    positive = np.logical_and.reduce([a > 0 for a in arrays.values()])
    every = bool(positive.all())  # (the usual case: no copy with 1.0 where not positive)
    logs = {name: np.log(a if every else np.where(positive, a, 1.0)) for name, a in arrays.items()}
    body_ids, body_index, members = _body_members(body_of)
    factors = {body_names.get(b, str(b)): dict.fromkeys(names, 1.0) for b in body_ids}
    confidence: dict[str, dict[str, Any]] = {}
    if normal_mask is not None:
        normal = np.asarray(normal_mask, bool) & positive
        fields = {n: fit_reference(arrays[n], xyz, degree=degree, select=normal) for n in names}
        field_logs = _field_evaluator(fields, xyz)(fields)
        residual = {n: logs[n] - field_logs[n] for n in names}
        for b in body_ids:
            confidence[body_names.get(b, str(b))] = {
                "normal_fraction": None,
                "confidence": "user region",
            }
        return MarrowReference(fields, normal, residual, factors, confidence, "mask")

    averaged: dict[str, NDArray[np.float64]] = {}  # per sequence: log region averages
    if region_mean is None:
        fields = {n: fit_reference(arrays[n], xyz, degree=degree, select=positive) for n in names}
    else:
        averaged = {n: _log_region_means(arrays[n], positive, region_mean, members) for n in names}
        fields = {n: _field_of_region_means(averaged[n], logs[n], xyz, degree) for n in names}
    log_fields = _field_evaluator(fields, xyz)
    shift = {n: np.zeros(len(body_ids)) for n in names}  # per body: its log factor
    offset = {n: np.zeros(len(positive)) for n in names}  # per voxel: its body's
    bound = np.log1p(max_body_offset)
    for _ in range(NORMAL_ROUNDS):
        field_logs = log_fields(fields)
        residual = {n: logs[n] - field_logs[n] for n in names}
        normal = positive & np.logical_and.reduce(
            [np.abs(residual[n] - offset[n]) <= inlier_z * fields[n].spread for n in names]
        )
        if averaged:
            # the ratio averaged over the region: the averages over the smooth field
            region = {n: averaged[n] - field_logs[n] - offset[n] for n in names}
            normal &= _normal_at_region_scale(region, normal, region_z)
        fields = {n: _refit(fields[n], arrays[n], xyz, normal, degree) for n in names}
        if not per_body:
            continue
        for i, mine in enumerate(members):
            good = mine[normal[mine]]
            fraction = len(good) / max(len(mine), 1)
            enough = fraction >= min_normal_fraction and len(good) >= 20
            for n in names:
                median = 0.0
                if enough:
                    # the median of the voxels inside the normal window (the window itself
                    # already leaves the outliers out); the selection is a copy of its own,
                    # sorted in place
                    median = float(np.median(residual[n][good], overwrite_input=True))
                shift[n][i] = np.clip(median, -bound, bound)
        offset = {n: shift[n][body_index] for n in names}
    field_logs = log_fields(fields)
    residual = {n: logs[n] - field_logs[n] - offset[n] for n in names}
    for i, (b, mine) in enumerate(zip(body_ids, members, strict=True)):
        name = body_names.get(b, str(b))
        fraction = float(np.count_nonzero(normal[mine]) / max(len(mine), 1))
        level = (
            "high"
            if fraction >= HIGH_CONFIDENCE_FRACTION
            else "moderate"
            if fraction >= min_normal_fraction
            else "low"
        )
        confidence[name] = {"normal_fraction": round(fraction, 3), "confidence": level}
        if len(mine):
            factors[name] = {n: round(float(np.exp(shift[n][i])), 4) for n in names}
    return MarrowReference(fields, normal, residual, factors, confidence, "marrow")


#: Rounds of the trimmed location and spread of the region-scale residual.
REGION_ROUNDS = 3


def _normal_at_region_scale(
    region: dict[str, NDArray[np.float64]], normal: NDArray[np.bool_], z: float
) -> NDArray[np.bool_]:
    """Voxels whose neighbourhood is normal: their log ratio averaged over a region
    (``region``, per sequence; NaN where there is no average) within ``z`` robust SDs of
    normal marrow's own averages, on every sequence. The SD is re-estimated on the voxels
    kept (a trimmed estimate), so a large coherent region (a faint edema filling much of a
    bone) does not widen it."""
    keep = np.ones(len(normal), bool)
    # location and spread from an even subsample of the normal voxels (five fits' worth)
    sample = np.flatnonzero(normal)
    sample = sample[:: max(1, len(sample) // (5 * MAX_FIT_VOXELS))]
    for mean in region.values():
        values = mean[sample]
        values = values[np.isfinite(values)]
        if len(values) < 20:
            continue
        inside = values
        for _ in range(REGION_ROUNDS):
            centre = float(np.median(inside))
            spread = robust_sd(inside)
            inside = values[np.abs(values - centre) <= z * spread]
        with np.errstate(invalid="ignore"):
            keep &= ~np.isfinite(mean) | (np.abs(mean - centre) <= z * spread)
    return keep


def _log_region_means(
    values: NDArray[np.float64],
    positive: NDArray[np.bool_],
    region_mean: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    members: list[NDArray[np.intp]],
) -> NDArray[np.float64]:
    """The log of each voxel's ``region_mean`` of ``values`` (NaN where there is none),
    each body (bone) divided by its own median while averaged, so that an average near a
    joint does not mix two bones' marrow."""
    level = np.ones(len(values))
    for mine in members:
        good = mine[positive[mine]]
        if len(good):
            level[mine] = np.median(values[good])
    averaged = region_mean(np.where(positive, values / level, np.nan)) * level
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positive & (averaged > 0), np.log(averaged), np.nan)


def _field_of_region_means(
    log_means: NDArray[np.float64],
    logs: NDArray[np.float64],
    xyz: NDArray[np.floating],
    degree: int,
) -> ReferenceField:
    """A first field fitted to the marrow's region averages (``log_means``, NaN where
    none), at the level of its voxels, with their spread about it.

    Voxel by voxel, a faint edema filling half of a bone in mottled marrow is within the
    biweight's reach of normal marrow (the MAD scale is widened by the edema itself), so a
    polynomial bends towards it. Averaged over a region the mottle shrinks and the edema
    does not; the biweight's scale is then held to the spread of the densest half of the
    averages (:func:`_shorth_sd`), which a one-sided excess (edema only brightens the fluid
    image) does not widen as it widens the MAD about the median. Shading is smooth, so the
    averages keep it. The fit's shape is the averages', its level the voxels' own (their
    biweight location about it): fitted to the densest part of the averages alone, it sat
    about 2 % low on marrow whose bright tail is heavier than its dark one.
    """
    # an even subsample, as the fit takes (the level and spread need no more)
    usable = np.flatnonzero(np.isfinite(log_means) & np.isfinite(logs))
    usable = usable[:: max(1, len(usable) // MAX_FIT_VOXELS)]
    means, where = log_means[usable], np.asarray(xyz)[usable]
    field = fit_reference(np.exp(means), where, degree=degree, max_sigma=_shorth_sd(means))
    residual = logs[usable] - field.log_at(where)
    # the voxels' level about it: their biweight location (a degree-0 fit)
    shift = float(fit_reference(np.exp(residual), where, degree=0).coefficients[0])
    coefficients = field.coefficients.copy()
    coefficients[0] += shift
    return replace(field, coefficients=coefficients, spread=robust_sd(residual - shift))


def _shorth_sd(values: NDArray[np.float64]) -> float:
    """Robust SD from the shortest interval holding half of ``values`` (the *shorth*:
    1.349 SDs wide for Gaussian values); infinite for fewer than 20 values.

    >>> rng = np.random.default_rng(0)
    >>> normal = rng.normal(0, 0.05, 7500)
    >>> round(_shorth_sd(normal), 3)
    0.05
    >>> excess = np.concatenate([normal, rng.normal(0.4, 0.05, 2500)])  # a quarter brighter
    >>> round(_shorth_sd(excess), 3), round(robust_sd(excess), 3)
    (0.072, 0.079)
    """
    ordered = np.sort(values)
    half = len(ordered) // 2
    if half < 10:
        return np.inf
    return float(np.min(ordered[half:] - ordered[: len(ordered) - half])) / SHORTH_WIDTH_SD


def _body_members(
    body_of: NDArray[np.integer],
) -> tuple[list[int], NDArray[np.integer], list[NDArray[np.intp]]]:
    """The bodies of ``body_of`` (their ids, ascending), each voxel's body as an index into
    them and each body's voxel indices in ascending order.

    >>> ids, index, members = _body_members(np.array([7, 3, 7, 3, 3]))
    >>> ids, index.tolist(), [m.tolist() for m in members]
    ([3, 7], [1, 0, 1, 0, 0], [[1, 3, 4], [0, 2]])
    """
    body_of = np.asarray(body_of)
    if body_of.size and 0 <= body_of.min() and body_of.max() <= np.iinfo(np.uint16).max:
        # region numbers: counted and looked up directly (no sort of the voxels' ids)
        counts = np.bincount(body_of.astype(np.intp, copy=False))
        ids = np.flatnonzero(counts)
        counts = counts[ids]
        lookup = np.zeros(int(ids[-1]) + 1, np.min_scalar_type(max(len(ids) - 1, 0)))
        lookup[ids] = np.arange(len(ids))
        index = lookup[body_of]
    else:
        ids, index, counts = np.unique(body_of, return_inverse=True, return_counts=True)
        index = index.astype(np.min_scalar_type(max(len(ids) - 1, 0)))
    # a stable sort of small integers is a radix sort: one pass over the voxels
    order = np.argsort(index, kind="stable")
    stops = np.cumsum(counts)
    members = [order[a:b] for a, b in zip(stops - counts, stops, strict=True)]
    return [int(b) for b in ids], index, members


def _field_evaluator(
    fields: dict[str, ReferenceField], xyz: NDArray[np.floating]
) -> Callable[[dict[str, ReferenceField]], dict[str, NDArray[np.float64]]]:
    """``fields -> their logs at xyz`` (per name), evaluated together where they share
    the normalisation of ``fields`` (fields fitted on the same voxels, and their refits,
    do)."""
    monomials = MonomialsAt(xyz, next(iter(fields.values())))

    def log_fields(fields: dict[str, ReferenceField]) -> dict[str, NDArray[np.float64]]:
        shared = [name for name, field in fields.items() if monomials.fits(field)]
        logs = dict(zip(shared, monomials.log_fields([fields[n] for n in shared]), strict=True))
        return {n: logs[n] if n in logs else field.log_at(xyz) for n, field in fields.items()}

    return log_fields


def _refit(
    field: ReferenceField,
    values: NDArray[np.float64],
    xyz: NDArray[np.float64],
    normal: NDArray[np.bool_],
    degree: int,
) -> ReferenceField:
    """The field refitted on normal voxels; the previous one when they are too few."""
    try:
        return fit_reference(
            values, xyz, degree=degree, start=field, iterations=REFIT_ITERATIONS, select=normal
        )
    except ValueError:
        return field
