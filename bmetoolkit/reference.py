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
``reference_per_body`` (the default) each body gets its own factor on top of the field: the
biweight location of its central marrow's log ratio (the marrow away from both endplates,
where Modic changes are not), limited to ``±max_body_offset``. The factors are kept in the
report; one at its limit flags a body whose whole marrow departs from the others.

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

from dataclasses import dataclass
from itertools import combinations_with_replacement

import numpy as np
from numpy.typing import NDArray

__all__ = ["ReferenceField", "fit_reference", "n4_corrected", "robust_location"]

#: Tukey biweight tuning constant (95 % efficiency for Gaussian residuals).
TUKEY_C = 4.685
#: Iterations of reweighted least squares.
IRLS_ITERATIONS = 10
#: Most voxels used in a fit (an even subsample of the marrow beyond that).
MAX_FIT_VOXELS = 20_000
#: MAD to standard deviation for Gaussian data.
MAD_TO_SD = 1.4826


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
        design = _design((np.asarray(xyz, float) - self.centre) / self.scale, self.degree)
        return np.exp(_times(design, self.coefficients))

    def to_dict(self) -> dict[str, object]:
        """Summary for the report."""
        return {
            "degree": self.degree,
            "n_voxels": self.n_voxels,
            "log_spread": round(self.spread, 4),
            "level_at_centre": round(float(np.exp(self.coefficients[0])), 3),
        }


def _times(design: NDArray[np.float64], coefficients: NDArray[np.float64]) -> NDArray[np.float64]:
    """``design @ coefficients`` without BLAS threads (they spin under load: 10x slower)."""
    return np.einsum("ni,i->n", design, coefficients, optimize=False)


def _design(xyz: NDArray[np.float64], degree: int) -> NDArray[np.float64]:
    """Monomials of the three coordinates up to ``degree`` (constant first)."""
    columns = [np.ones(len(xyz))]
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(3), d):
            columns.append(np.prod(xyz[:, list(combo)], axis=1))
    return np.stack(columns, axis=1)


def fit_reference(
    values: NDArray[np.floating], xyz: NDArray[np.floating], *, degree: int = 2
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

    Returns
    -------
    ReferenceField

    Raises
    ------
    ValueError
        With fewer positive voxels than the polynomial has terms (times 10).
    """
    values = np.asarray(values, np.float64)
    xyz = np.asarray(xyz, np.float64)
    positive = values > 0
    values, xyz = values[positive], xyz[positive]
    step = max(1, len(values) // MAX_FIT_VOXELS)
    values, xyz = values[::step], xyz[::step]
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
    for _ in range(IRLS_ITERATIONS):
        residual = target - _times(design, coefficients)
        sigma = MAD_TO_SD * np.median(np.abs(residual - np.median(residual)))
        u = residual / max(TUKEY_C * sigma, 1e-6)
        weight = np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
        normal = np.einsum("ni,n,nj->ij", design, weight, design, optimize=False)
        coefficients = np.linalg.solve(
            normal + 1e-9 * np.eye(design.shape[1]), np.einsum("ni,n->i", design, weight * target)
        )
    residual = target - _times(design, coefficients)
    spread = MAD_TO_SD * float(np.median(np.abs(residual - np.median(residual))))
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


def robust_location(values: NDArray[np.floating]) -> float:
    """Tukey biweight location of ``values``: a mean that ignores outliers.

    >>> robust_location(np.array([0.0, 0.1, -0.1, 0.05, -0.05, 3.0, 3.1]))
    0.0
    """
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return 0.0
    location = float(np.median(values))
    for _ in range(IRLS_ITERATIONS):
        residual = values - location
        sigma = MAD_TO_SD * float(np.median(np.abs(residual)))
        if sigma <= 0:
            break
        u = residual / (TUKEY_C * sigma)
        weight = np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
        location = float(np.sum(weight * values) / np.sum(weight))
    return round(location, 12)
