"""Rigid registration of a follow-up visit to its baseline, then per vertebral body.

Transforms map **baseline RAS mm to follow-up RAS mm** (``x_followup = T @ x_baseline``),
as a 4x4 matrix: a follow-up volume with affine ``inv(T) @ affine`` lies in baseline space.

1. **Start**: the bodies of the two visits are paired by their labels (bones on the
   any-bone path: always by their names), or by a shift of one
   or two places along the spine (automatic level names may differ between visits), and a
   rigid fit of their centroids (Kabsch; centroids along a line, as the sacrum between the
   two ilia, only turn that line) gives the starting transform, so a patient lying
   2 cm and 10 degrees apart needs no search. A chain of similar bodies fits a shifted
   pairing about as well as the right one; among the pairings that fit, the one whose start
   gives the highest mutual information of the T1 images is kept.
2. **Whole spine**: SimpleITK rigid registration (Euler 3D) of the follow-up T1 to the
   baseline T1, Mattes mutual information sampled around the baseline bodies (without a T1,
   the two bone masks, smoothed, by mean squares).
3. **Per body** (or bone), where the spine moved (a body's centroid lies more than :data:`MOVED_MM`
   from where the whole-spine transform puts it): the same, started from the whole-spine
   transform, around that body; kept only where it improves that body's metric and stays within
   :data:`MAX_BODY_SHIFT_MM` and :data:`MAX_BODY_ROTATION_DEG` of the whole-spine transform
   (the spine bends a little between visits; a body does not jump).

Sampling uses a fixed seed: the same inputs give the same transforms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.volume import Volume

__all__ = [
    "Correspondence",
    "Registration",
    "body_centroids",
    "candidate_pairings",
    "kabsch",
    "pair_bodies",
    "register_visits",
    "rotation_deg",
]

Matrix = NDArray[np.float64]

#: Centroid fit (RMS, mm) under which the bodies' own labels are trusted for the start.
LABEL_PAIRING_RMS_MM = 6.0
#: Registration grids: isotropic spacing (mm; the baseline's finest spacing when coarser);
#: margin (mm) around the body centroids for
#: the whole spine and for one body.
WORK_SPACING_MM = 2.0
#: Voxels of that grid dropped along the edge of the fixed image's field of view.
FIELD_EDGE_VOXELS = 2
WHOLE_MARGIN_MM = 35.0
BODY_MARGIN_MM = 28.0
#: Fraction of the masked voxels sampled by the metric, and the sampling seed.
SAMPLING_FRACTION = 0.05
SAMPLING_SEED = 14
#: A body whose centroid lies this far (mm) from where the whole-spine transform puts it
#: moved on its own (the spine bent, or a field of view cuts it): it gets its own fit.
MOVED_MM = 1.5
#: Largest departure of a body's own transform from the whole-spine one.
MAX_BODY_SHIFT_MM = 8.0
MAX_BODY_ROTATION_DEG = 10.0
#: Histogram bins of the mutual information.
MI_BINS = 32
#: Centroids whose spread across their main axis is under this (RMS, mm) lie on a line: a
#: rotation about that line cannot be read from them (the sacrum between the two ilia, or
#: a few bodies of a straight spine), so the start turns only the line itself.
COLLINEAR_MM = 5.0


@dataclass
class Registration:
    """How the follow-up maps onto the baseline.

    Attributes
    ----------
    transform : ndarray (4, 4)
        Whole spine, baseline RAS -> follow-up RAS.
    body_transforms : dict of int to ndarray
        Per baseline body id: the transform used for it (its own, or the whole-spine one).
    body_pairs : dict of int to int
        Baseline body id -> follow-up body id.
    method : str
        ``"T1 mutual information"`` or ``"bone masks"``.
    metric : float
        Mutual information of the whole-spine fit (higher is better; bits-like units of
        SimpleITK's Mattes metric, negated), or the negated mean square of the masks.
    refined : list of int
        Baseline bodies whose own transform was kept.
    body_shift_mm : dict of int to float
        How far each body's own transform moves its centroid from the whole-spine one.
    pairing : str
        How the bodies were paired at the start.
    """

    transform: Matrix
    body_transforms: dict[int, Matrix]
    body_pairs: dict[int, int]
    method: str
    metric: float
    refined: list[int] = field(default_factory=list)
    body_shift_mm: dict[int, float] = field(default_factory=dict)
    pairing: str = "labels"

    def to_dict(self, names: dict[int, str] | None = None) -> dict[str, Any]:
        """JSON-ready summary (matrices rounded to 1e-6)."""
        names = names or {}

        def name(body: int) -> str:
            return names.get(body, str(body))

        return {
            "method": self.method,
            "metric": round(self.metric, 5),
            "pairing": self.pairing,
            "transform_baseline_to_followup_ras": np.round(self.transform, 6).tolist(),
            "rotation_deg": round(rotation_deg(self.transform), 3),
            "translation_mm": np.round(self.transform[:3, 3], 3).tolist(),
            "body_pairs": {name(b): f for b, f in self.body_pairs.items()},
            "bodies_refined": [name(b) for b in self.refined],
            "body_shift_mm": {name(b): round(v, 3) for b, v in self.body_shift_mm.items()},
        }


@dataclass(frozen=True)
class Correspondence:
    """The paired bodies of two visits, by the baseline's level names.

    Attributes
    ----------
    rename : dict of str to str
        Follow-up level name -> baseline level name of the paired body.
    compared : frozenset of str
        Baseline level names in both visits.
    ids : dict of str to int
        Baseline level name -> baseline body id.
    transforms : dict of str to ndarray
        Baseline level name -> the body's transform (baseline RAS -> follow-up RAS).
    """

    rename: dict[str, str]
    compared: frozenset[str]
    ids: dict[str, int]
    transforms: dict[str, Matrix]

    @classmethod
    def of(
        cls, registration: Registration, names_b: dict[int, str], names_f: dict[int, str]
    ) -> Correspondence:
        """The correspondence of a registration, with each visit's body names."""
        pairs = registration.body_pairs
        level = {b: names_b.get(b, str(b)) for b in pairs}
        return cls(
            rename={names_f.get(f, str(f)): level[b] for b, f in pairs.items()},
            compared=frozenset(level.values()),
            ids={name: b for b, name in level.items()},
            transforms={level[b]: registration.body_transforms[b] for b in pairs},
        )


def rotation_deg(transform: Matrix) -> float:
    """Rotation angle (degrees) of a rigid 4x4 transform (or of its 3x3 rotation).

    >>> rotation_deg(np.eye(4))
    0.0
    """
    cosine = (np.trace(transform[:3, :3]) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def body_centroids(bodies: Volume) -> dict[int, NDArray[np.float64]]:
    """World (RAS mm) centroid of each labelled body."""
    data = np.asarray(bodies.data).ravel()
    counts = np.bincount(data)
    ids = [int(i) for i in np.flatnonzero(counts) if i != 0]
    if not ids:
        return {}
    shape = bodies.shape
    sums = []
    for axis in range(3):
        index = np.arange(shape[axis], dtype=np.float64).reshape(
            [-1 if a == axis else 1 for a in range(3)]
        )
        weights = np.broadcast_to(index, shape).ravel()
        sums.append(np.bincount(data, weights=weights, minlength=len(counts)))
    centres = np.stack(sums, axis=1)[ids] / counts[ids, None]
    world = bodies.grid.voxel_to_world(centres)
    return {body: world[n] for n, body in enumerate(ids)}


def kabsch(source: NDArray[np.float64], target: NDArray[np.float64]) -> tuple[Matrix, float]:
    """The rigid 4x4 transform taking points ``source`` (N, 3) closest to ``target``, and the
    RMS residual (mm). Points along a line (:data:`COLLINEAR_MM`) give no rotation about it:
    only the line is turned (:func:`_line_turn`).

    >>> pts = np.array([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    >>> transform, rms = kabsch(pts, pts + [1.0, 2.0, 3.0])
    >>> np.round(transform[:3, 3], 6).tolist(), round(rms, 6)
    ([1.0, 2.0, 3.0], 0.0)
    """
    a, b = np.asarray(source, np.float64), np.asarray(target, np.float64)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    spread = np.linalg.svd(a - ca, compute_uv=False)
    if spread.size < 2 or spread[1] / np.sqrt(len(a)) < COLLINEAR_MM:
        rot = _line_turn(a - ca, b - cb)
    else:
        u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
        d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
        rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    transform = np.eye(4)
    transform[:3, :3] = rot
    transform[:3, 3] = cb - rot @ ca
    moved = a @ rot.T + transform[:3, 3]
    return transform, float(np.sqrt(np.mean(np.sum((moved - b) ** 2, axis=1))))


def _line_turn(source: NDArray[np.float64], target: NDArray[np.float64]) -> Matrix:
    """The smallest rotation taking the main axis of the centred points ``source`` onto
    that of ``target`` (points along a line tell no rotation about it).

    >>> line = np.array([[-1.0, 0, 0], [0, 0, 0], [1, 0, 0]]) * 60
    >>> turned = line @ np.array([[0.996, -0.087, 0], [0.087, 0.996, 0], [0, 0, 1]]).T
    >>> round(rotation_deg(_line_turn(line, turned)), 1)
    5.0
    """
    axes = [np.linalg.svd(points, full_matrices=False)[2][0] for points in (source, target)]
    along, onto = axes
    if np.sum((source @ along) * (target @ onto)) < 0:  # the same end first
        onto = -onto
    axis, cosine = np.cross(along, onto), float(np.clip(along @ onto, -1.0, 1.0))
    sine = float(np.linalg.norm(axis))
    if sine < 1e-9:
        return np.eye(3)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + cross + cross @ cross * (1 - cosine) / sine**2


def candidate_pairings(
    baseline: dict[int, NDArray[np.float64]], followup: dict[int, NDArray[np.float64]]
) -> list[tuple[dict[int, int], Matrix, float, str]]:
    """Ways to pair the bodies of two visits, each with the rigid fit of its centroids.

    By label first, then by shifts of one or two places along the spine (label order):
    automatic level names may differ by one between visits while the bodies are the same.
    A spine is a chain of similar bodies, so a shifted pairing can fit the centroids as well
    as the right one (as a shift of the patient by one level): the images decide
    (:func:`register_visits`).

    Returns
    -------
    list of (pairs, transform, rms_mm, how)
        ``pairs`` baseline body id -> follow-up body id; ``transform`` the rigid fit
        (baseline -> follow-up; a translation with fewer than three pairs, RMS infinite);
        ``how`` is ``"labels"`` or ``"shifted by N"``.
    """
    by_label = {b: b for b in sorted(set(baseline) & set(followup))}
    candidates = [(*_fit(by_label, baseline, followup), "labels")]
    order_b, order_f = sorted(baseline), sorted(followup)
    for shift in (-2, -1, 0, 1, 2):
        pairs = {
            b: order_f[i + shift] for i, b in enumerate(order_b) if 0 <= i + shift < len(order_f)
        }
        if len(pairs) >= 3 and pairs != by_label:
            offsets = {f - b for b, f in pairs.items()}
            how = f"shifted by {offsets.pop():+d}" if len(offsets) == 1 else "by order"
            candidates.append((*_fit(pairs, baseline, followup), how))
    return candidates


def pair_bodies(
    baseline: dict[int, NDArray[np.float64]], followup: dict[int, NDArray[np.float64]]
) -> tuple[dict[int, int], Matrix, str]:
    """Pair the bodies of two visits from their centroids alone (no image).

    By label when that fits (RMS below :data:`LABEL_PAIRING_RMS_MM`), else the candidate
    (:func:`candidate_pairings`) that fits best.

    Returns
    -------
    pairs, transform, how
        See :func:`candidate_pairings`.
    """
    candidates = candidate_pairings(baseline, followup)
    pairs, transform, rms, how = candidates[0]
    if len(pairs) >= 3 and rms <= LABEL_PAIRING_RMS_MM:
        return pairs, transform, how
    best = min(candidates, key=lambda c: (len(c[0]) < 3, c[2]))
    return best[0], best[1], best[3]


def _fit(
    pairs: dict[int, int],
    baseline: dict[int, NDArray[np.float64]],
    followup: dict[int, NDArray[np.float64]],
) -> tuple[dict[int, int], Matrix, float]:
    if not pairs:
        return pairs, np.eye(4), np.inf
    a = np.array([baseline[b] for b in pairs])
    b = np.array([followup[f] for f in pairs.values()])
    if len(pairs) < 3:
        transform = np.eye(4)
        transform[:3, 3] = (b - a).mean(axis=0)
        return pairs, transform, np.inf
    transform, rms = kabsch(a, b)
    return pairs, transform, rms


# --- SimpleITK ----------------------------------------------------------------------------


def _sitk_image(data: NDArray[Any], affine: Matrix) -> Any:
    """A SimpleITK image of ``data`` (i, j, k) whose physical space is the volume's RAS mm."""
    import SimpleITK as sitk

    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0))))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in affine[:3, 3]])
    image.SetDirection([float(v) for v in (affine[:3, :3] / spacing).ravel()])
    return image


def _as_matrix(transform: Any) -> Matrix:
    """4x4 matrix of a SimpleITK Euler3DTransform."""
    rot = np.array(transform.GetMatrix()).reshape(3, 3)
    centre = np.array(transform.GetCenter())
    matrix = np.eye(4)
    matrix[:3, :3] = rot
    matrix[:3, 3] = np.array(transform.GetTranslation()) + centre - rot @ centre
    return matrix


def _euler(matrix: Matrix, centre: NDArray[np.float64]) -> Any:
    import SimpleITK as sitk

    transform = sitk.Euler3DTransform()
    transform.SetCenter([float(v) for v in centre])
    transform.SetMatrix([float(v) for v in matrix[:3, :3].ravel()])
    rot = matrix[:3, :3]
    transform.SetTranslation([float(v) for v in matrix[:3, 3] + rot @ centre - centre])
    return transform


@dataclass
class _Pair:
    """The two images registered (native SimpleITK images) and the metric."""

    fixed: Any
    moving: Any
    metric: str


def _images(baseline: Any, followup: Any) -> _Pair:
    """T1 images when both visits have one, else their smoothed bone masks."""
    if baseline.t1 is not None and followup.t1 is not None:
        return _Pair(
            _sitk_image(np.asarray(baseline.t1.data, np.float32), baseline.t1.affine),
            _sitk_image(np.asarray(followup.t1.data, np.float32), followup.t1.affine),
            "mi",
        )
    return _Pair(_smooth_mask(baseline.maps["vertebrae"]), _smooth_mask(followup.maps["vertebrae"]),
                 "squares")  # fmt: skip


def _smooth_mask(bodies: Volume) -> Any:
    sigma = 2.0 / bodies.spacing
    data = ndimage.gaussian_filter((np.asarray(bodies.data) > 0).astype(np.float32), sigma)
    return _sitk_image(data, bodies.affine)


def _axis_aligned(
    image: Any, points: NDArray[np.float64], margin_mm: float, spacing_mm: float
) -> tuple[Any, Any]:
    """``image`` resampled (linearly) on an axis-aligned RAS grid of ``spacing_mm`` around
    ``points`` (N, 3) plus ``margin_mm``, and the mask of its field of view there.

    The fixed image is registered on such a grid (isotropic, unrotated, cropped to the
    spine), sampled only inside its own field of view: the edges of a field of view are
    strong features that are not anatomy (they pulled the fit 3 mm off in tests).
    """
    import SimpleITK as sitk

    low = points.min(axis=0) - margin_mm
    high = points.max(axis=0) + margin_mm
    size = [int(np.ceil((h - lo) / spacing_mm)) + 1 for lo, h in zip(low, high, strict=True)]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetOrigin([float(v) for v in low])
    reference.SetSpacing([spacing_mm] * 3)
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0)
    ones = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(image)
    field = sitk.Resample(ones, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return resampled, sitk.BinaryErode(field, [FIELD_EDGE_VOXELS] * 3)


def _register(fixed: tuple[Any, Any], moving: Any, metric: str, start: Matrix,
              centre: NDArray[np.float64], *, iterations: int = 100, compare: bool = True,
              ) -> tuple[Matrix, float, float]:  # fmt: skip
    """Rigid registration from ``start``; the transform, the final and (with ``compare``)
    the starting metric (else NaN).

    ``fixed`` is an image and the mask of where to sample it (:func:`_axis_aligned`).
    """
    method = _method(fixed[1], metric)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=0.01, numberOfIterations=iterations,
        relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6,
    )  # fmt: skip
    method.SetOptimizerScalesFromPhysicalShift()
    transform = _euler(start, centre)
    method.SetInitialTransform(transform, inPlace=True)
    before = -float(method.MetricEvaluate(fixed[0], moving)) if compare else float("nan")
    method.Execute(fixed[0], moving)
    after = -float(method.MetricEvaluate(fixed[0], moving))
    return _as_matrix(transform), after, before


def _metric_at(fixed: tuple[Any, Any], moving: Any, metric: str, transform: Matrix,
               centre: NDArray[np.float64]) -> float:  # fmt: skip
    """The metric (higher is better) of ``transform``, without optimising."""
    method = _method(fixed[1], metric)
    method.SetInitialTransform(_euler(transform, centre))
    return -float(method.MetricEvaluate(fixed[0], moving))


def _method(mask: Any, metric: str) -> Any:
    """A SimpleITK registration method with the metric, sampling and interpolation used."""
    import SimpleITK as sitk

    method = sitk.ImageRegistrationMethod()
    if metric == "mi":
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=MI_BINS)
    else:
        method.SetMetricAsMeanSquares()
    method.SetMetricFixedMask(mask)
    method.SetMetricUseMovingImageGradientFilter(False)  # gradients at the samples only
    method.SetMetricUseFixedImageGradientFilter(False)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(SAMPLING_FRACTION, SAMPLING_SEED)
    method.SetInterpolator(sitk.sitkLinear)
    return method


def register_visits(baseline: Any, followup: Any) -> Registration:
    """Register the follow-up visit to the baseline (see the module description).

    Parameters
    ----------
    baseline, followup : Visit
        Each with ``maps["vertebrae"]`` and, when found, ``t1``.

    Returns
    -------
    Registration
    """
    centres_b = baseline.centroids()
    centres_f = followup.centroids()
    bones = "bones" in (getattr(baseline, "anatomy", "spine"), getattr(followup, "anatomy", ""))
    if bones:  # named bones are paired by name: they are no chain of similar bodies
        by_name = {name: f for f, name in followup.body_names.items() if f in centres_f}
        named = {b: by_name[name] for b, name in baseline.body_names.items()
                 if b in centres_b and name in by_name}  # fmt: skip
        pairs, start, _ = _fit(named, centres_b, centres_f)
        how = "names"
    else:
        pairs, start, how = pair_bodies(centres_b, centres_f)
    images = _images(baseline, followup)
    moving = images.moving
    spacing = max(WORK_SPACING_MM, min(images.fixed.GetSpacing()))
    everything = np.array(list(centres_b.values())) if centres_b else np.zeros((1, 3))
    if images.metric == "mi" and not bones:
        plausible = [c for c in candidate_pairings(centres_b, centres_f)
                     if len(c[0]) >= 3 and c[2] <= LABEL_PAIRING_RMS_MM]  # fmt: skip
        if len(plausible) > 1:  # a chain of similar bodies: let the images choose
            crop = _axis_aligned(images.fixed, everything, WHOLE_MARGIN_MM, spacing)
            centre = everything.mean(axis=0)
            pairs, start, _, how = max(
                plausible, key=lambda c: _metric_at(crop, moving, images.metric, c[1], centre)
            )
    paired = list(pairs) or list(centres_b)
    points_b = np.array([centres_b[b] for b in paired]) if paired else np.zeros((1, 3))
    fixed = _axis_aligned(images.fixed, points_b, WHOLE_MARGIN_MM, spacing)
    whole, metric, _ = _register(
        fixed, moving, images.metric, start, points_b.mean(axis=0), compare=False
    )
    per_body: dict[int, Matrix] = {}
    refined: list[int] = []
    shifts: dict[int, float] = {}
    for body, other in pairs.items():
        centre = centres_b[body]
        per_body[body], shifts[body] = whole, 0.0
        if np.linalg.norm(whole[:3, :3] @ centre + whole[:3, 3] - centres_f[other]) < MOVED_MM:
            continue  # the body moved with the spine
        own, after, before = _register(
            _axis_aligned(images.fixed, centre[None], BODY_MARGIN_MM, spacing), moving,
            images.metric,
            whole, centre, iterations=50,
        )  # fmt: skip
        relative = np.linalg.inv(whole) @ own
        shift = float(np.linalg.norm((own - whole)[:3, :3] @ centre + (own - whole)[:3, 3]))
        plausible = shift <= MAX_BODY_SHIFT_MM and rotation_deg(relative) <= MAX_BODY_ROTATION_DEG
        if after > before and plausible:
            per_body[body], shifts[body] = own, shift
            refined.append(body)
    return Registration(
        transform=whole,
        body_transforms=per_body,
        body_pairs=pairs,
        method="T1 mutual information" if images.metric == "mi" else "bone masks",
        metric=metric,
        refined=refined,
        body_shift_mm=shifts,
        pairing=how,
    )
