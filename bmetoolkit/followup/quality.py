"""How well two visits align, and the refusal when they are not the same anatomy.

Measured after registration (:mod:`bmetoolkit.followup.register`), on the baseline grid:

- the **mutual information** of the two T1 images (whole-spine fit);
- the **overlap** (Dice) of the two visits' bone masks, over the bodies both show and inside
  both fields of view, overall and per body;
- the **shape agreement** of the paired bodies: the difference of each pair's volumes
  (within the common field) over its boundary volume (voxel faces on its surface times the
  voxel volume), median over bodies; reported only: with the analysis' own body masks one
  subject rescanned gave up to 0.13 (tuning seed 11: 0.057), too close to two subjects;
- the **marrow texture correlation** (:func:`texture_correlation`): fat spots, red-marrow
  islands and mottling are a subject's own; the T1 inside each body, seen at both visits,
  correlates for one subject and not for two;
- the **bone shape difference** (:func:`shape_difference`): a subject's bones keep their
  size and proportions between visits, and a spine the distances between its bodies; the
  median relative difference of each paired body's extents (moments of its mask along its
  three principal axes, both visits on the baseline grid inside the common field) and of the
  distances between neighbouring body centroids (spine only; a bent spine keeps them).

A comparison is refused (:class:`~bmetoolkit.errors.NoOverlapError`) when no body lies in
both fields of view, and (:class:`~bmetoolkit.errors.VisitMismatchError`) when the bone
masks overlap less than :data:`MIN_BONE_DICE`, or when neither the marrow texture
(correlation at least :data:`MIN_TEXTURE_CORRELATION`) nor the bone shape (difference at
most :data:`MAX_SHAPE_DIFFERENCE`) shows one subject: marrow without texture (a smooth
marrow, a fat-suppressed or coarse image) is recognised by its bones' shape, and a bone
that changed shape (a fracture) by its marrow texture. Skipped on request.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.errors import NoOverlapError, VisitMismatchError
from bmetoolkit.followup.repeatability import boundary_volumes
from bmetoolkit.followup.warp import box_grid, moved
from bmetoolkit.resample import resample_to
from bmetoolkit.volume import Volume, occupied_box

__all__ = [
    "MAX_SHAPE_DIFFERENCE",
    "MIN_BONE_DICE",
    "MIN_TEXTURE_CORRELATION",
    "AlignmentQuality",
    "alignment_quality",
    "check_alignment",
]

#: Least Dice of the two visits' bone masks for a comparison.
MIN_BONE_DICE = 0.7
#: Least median correlation of the two visits' marrow texture (:func:`texture_correlation`)
#: for one subject: the midpoint between one subject and two on tuning seeds 20-33 and 40-53
#: of the randomised phantom (realistic grids, each visit analysed with the phantom's labels;
#: ``benchmarks/bench_followup.py --tuning --keep DIR``, then the folders compared): one
#: subject (54 change and test-retest pairs) 0.45-0.99, two subjects (28 pairs: each seed's
#: baseline with the next seed's follow-up) -0.12-0.32. Before the smoothing and the lesions
#: left out (threshold 0.25, from tuning pairs 10, 11, 13, 15): one subject 0.09-0.93, two
#: -0.08-0.21 on the same pairs.
MIN_TEXTURE_CORRELATION = 0.38
#: Largest bone shape difference (:func:`shape_difference`) of one subject: the midpoint
#: (log scale) between one subject and two on tuning seeds 0-4 of the randomised phantom
#: (realistic grids, the phantom's body masks, marrow without texture;
#: ``benchmarks/bench_followup.py --subject-check --tuning --pairs 5``): one subject
#: (follow-up and test-retest pairs) 0.0031-0.0062, two subjects 0.0128-0.0323 (bodies
#: whose sizes differ by only 3 % SD per dimension; people differ more).
MAX_SHAPE_DIFFERENCE = 0.009
#: Fewest voxels of a body for its shape to be measured (coarser bodies: moments of a
#: few hundred voxels differ between two scans of one body as much as between subjects).
MIN_SHAPE_VOXELS = 2000
#: Fewest marrow voxels of a body for its texture correlation, and how far inside its
#: surface they lie (mm).
MIN_TEXTURE_VOXELS = 200
TEXTURE_INSET_MM = 2.0
#: Gaussian smoothing (SD, mm) of both visits' T1 inside each body before the texture is
#: correlated: image noise is new at every scan and varies from voxel to voxel, the marrow's
#: texture (fat spots, red-marrow islands, a few millimetres and larger) is the subject's;
#: averaging over a millimetre keeps the texture and takes most of the noise. Without it,
#: tuning pair 26 (4.5 mm slices tilted about 6 degrees between visits, registered within
#: 0.3 mm) correlated 0.21 as one subject and was refused; with it 0.58.
TEXTURE_SMOOTHING_MM = 1.0


@dataclass
class AlignmentQuality:
    """Registration quality (see the module description).

    Attributes
    ----------
    mutual_information : float
    bone_dice : float
        Dice of the bone masks over the paired bodies, inside both fields of view.
    body_dice : dict of int to float
        Per paired baseline body.
    shape_ratio : float
        Median over paired bodies of |volume difference| / boundary volume (common field).
    boundary_fraction : float
        Median over paired bodies of boundary volume / volume.
    bodies_baseline, bodies_followup, bodies_compared : int
    common_field : float
        Fraction of the baseline bodies' voxels inside the follow-up's field of view.
    """

    mutual_information: float
    bone_dice: float
    body_dice: dict[int, float] = field(default_factory=dict)
    shape_ratio: float = 0.0
    boundary_fraction: float = 0.0
    bodies_baseline: int = 0
    bodies_followup: int = 0
    bodies_compared: int = 0
    common_field: float = 0.0
    texture_correlation: float | None = None
    shape_difference: float | None = None

    def to_dict(self, names: Mapping[int, str] | None = None) -> dict[str, Any]:
        """JSON-ready summary."""
        names = names or {}
        return {
            "mutual_information": round(self.mutual_information, 4),
            "bone_dice": round(self.bone_dice, 4),
            "body_dice": {names.get(b, str(b)): round(v, 4) for b, v in self.body_dice.items()},
            "shape_ratio": round(self.shape_ratio, 4),
            "boundary_fraction": round(self.boundary_fraction, 4),
            "bodies_baseline": self.bodies_baseline,
            "bodies_followup": self.bodies_followup,
            "bodies_compared": self.bodies_compared,
            "common_field": round(self.common_field, 4),
            "texture_correlation": None
            if self.texture_correlation is None
            else round(self.texture_correlation, 4),
            "shape_difference": None
            if self.shape_difference is None
            else round(self.shape_difference, 5),
        }


def _dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 0.0


def alignment_quality(
    baseline_bodies: NDArray[np.integer],
    warped_bodies: NDArray[np.integer],
    common: NDArray[np.bool_],
    pairs: Mapping[int, int],
    followup_ids: int,
    mutual_information: float,
) -> AlignmentQuality:
    """Measure the alignment (see the module description).

    Parameters
    ----------
    baseline_bodies : ndarray
        Baseline body labels.
    warped_bodies : ndarray
        Follow-up bodies on the baseline grid, carrying the paired baseline ids.
    common : ndarray of bool
        Baseline voxels inside the follow-up's field of view.
    pairs : dict of int to int
        Paired bodies (baseline id -> follow-up id).
    followup_ids : int
        Number of follow-up bodies.
    mutual_information : float
    """
    ids = list(pairs)
    base = np.where(common, baseline_bodies, 0)
    follow = np.where(common, warped_bodies, 0)
    inside = np.isin(base, ids)
    all_bodies = int((baseline_bodies > 0).sum())
    sizes_b = np.bincount(base.ravel(), minlength=256)
    sizes_f = np.bincount(follow.ravel(), minlength=256)
    surface_b = boundary_volumes(base, 1.0)
    surface_f = boundary_volumes(follow, 1.0)
    per_body, ratios, fractions = {}, [], []
    for body in ids:
        per_body[body] = _dice(base == body, follow == body)
        surface = np.sqrt((_at(surface_b, body) ** 2 + _at(surface_f, body) ** 2) / 2)
        if surface > 0:
            ratios.append(abs(int(sizes_b[body]) - int(sizes_f[body])) / (surface * 1000))
            fractions.append(surface * 1000 / max((sizes_b[body] + sizes_f[body]) / 2, 1))
    return AlignmentQuality(
        mutual_information=mutual_information,
        bone_dice=_dice(inside, np.isin(follow, ids)),
        body_dice=per_body,
        shape_ratio=float(np.median(ratios)) if ratios else 0.0,
        boundary_fraction=float(np.median(fractions)) if fractions else 1.0,
        bodies_baseline=len(np.unique(baseline_bodies[baseline_bodies > 0])),
        bodies_followup=followup_ids,
        bodies_compared=len(ids),
        common_field=float(((baseline_bodies > 0) & common).sum()) / all_bodies
        if all_bodies
        else 0.0,
    )


def _at_count(values: NDArray[np.int64], index: int) -> int:
    return int(values[index]) if index < len(values) else 0


def _at(values: NDArray[np.float64], index: int) -> float:
    return float(values[index]) if index < len(values) else 0.0


def check_alignment(
    quality: AlignmentQuality, paths: list[str], *, same_subject: bool = True
) -> list[str]:
    """Refuse a comparison of visits that do not show the same anatomy.

    Parameters
    ----------
    quality : AlignmentQuality
    paths : list of str
        The visits, for the message.
    same_subject : bool
        Check that both visits are of one subject (bone overlap, marrow texture); False
        skips it (a note says so), e.g. for marrow without texture.

    Returns
    -------
    list of str
        Notes.

    Raises
    ------
    NoOverlapError
        No body lies in both visits' fields of view.
    VisitMismatchError
        The bone masks overlap too little, or neither the marrow texture nor the bone shape
        shows one subject.
    """
    advice = (
        "check that both visits are of the same subject and body region; the analysis "
        "of each visit is unaffected"
    )
    if quality.bodies_compared == 0 or quality.common_field == 0:
        raise NoOverlapError(
            "no vertebral body (or bone) lies in both visits' fields of view",
            path=paths,
            hint=advice,
        )
    if not same_subject:
        return ["the check that both visits are of one subject was skipped on request"]
    if quality.bone_dice < MIN_BONE_DICE:
        raise VisitMismatchError(
            f"after registration the two visits' bone masks overlap with Dice "
            f"{quality.bone_dice:.2f} (at least {MIN_BONE_DICE} for the same anatomy): they do "
            "not show the same bones",
            path=paths,
            hint=advice,
        )
    texture, shape = quality.texture_correlation, quality.shape_difference
    same_texture = texture is not None and texture >= MIN_TEXTURE_CORRELATION
    same_shape = shape is not None and shape <= MAX_SHAPE_DIFFERENCE
    if same_texture or same_shape:
        if same_texture or texture is None:
            return []
        return [
            f"the marrow texture of the two visits does not correlate (median r = "
            f"{texture:.2f}; marrow without texture, or a fat-suppressed or coarse image), but "
            f"their bones have one shape (difference {shape:.4f}, one subject up to "
            f"{MAX_SHAPE_DIFFERENCE}): taken as one subject"
        ]
    if texture is None and shape is None:
        return [
            "neither the marrow texture nor the bone shape could be compared (no T1, or "
            "bodies too small): the check that both visits are of one subject rests on bone "
            "overlap alone"
        ]
    found = []
    if texture is not None:
        found.append(f"the marrow texture does not correlate (median r = {texture:.2f}; one "
                     f"subject rescanned: above {MIN_TEXTURE_CORRELATION})")  # fmt: skip
    if shape is not None:
        found.append(f"the bones differ in shape (difference {shape:.4f}; one subject "
                     f"rescanned: up to {MAX_SHAPE_DIFFERENCE})")  # fmt: skip
    raise VisitMismatchError(
        " and ".join(found) + ": these look like two different subjects",
        path=paths,
        hint=advice + "; if you are sure, compare with check_subject=False (--no-subject-check)",
    )


def _label_extents(
    labels: NDArray[np.integer], common: NDArray[np.bool_], grid: Any
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Voxel count and principal extents (mm; square roots of the eigenvalues of the voxel
    positions' covariance, ascending) of every label inside ``common``, in one pass.

    The covariance is taken over voxel indices and mapped to millimetres by the grid's
    linear part (``L C L^T``): exact for an affine grid, oblique and anisotropic ones too.
    """
    where = np.nonzero((labels > 0) & common)
    ids = np.asarray(labels[where], np.int64)
    n = int(ids.max()) + 1 if ids.size else 1
    counts = np.bincount(ids, minlength=n)
    safe = np.maximum(counts, 1)
    index = [np.asarray(w, np.float64) - (w.mean() if len(w) else 0.0) for w in where]
    mean = np.stack([np.bincount(ids, v, minlength=n) for v in index], axis=1) / safe[:, None]
    products = [index[a] * index[b] for a in range(3) for b in range(3)]
    second = np.stack([np.bincount(ids, v, minlength=n) for v in products], axis=1)
    covariance = second.reshape(n, 3, 3) / safe[:, None, None]
    covariance -= mean[:, :, None] * mean[:, None, :]
    linear = grid.affine[:3, :3]
    world = linear @ covariance @ linear.T
    return counts, np.sqrt(np.clip(np.linalg.eigvalsh(world), 0.0, None))


def shape_difference(
    baseline_bodies: Volume,
    warped_bodies: NDArray[np.integer],
    common: NDArray[np.bool_],
    centres: tuple[Mapping[int, NDArray[np.float64]], Mapping[int, NDArray[np.float64]]],
    pairs: Mapping[int, int],
    *,
    chain: bool,
) -> float | None:
    """Median relative difference of the two visits' bone shapes (see the module description).

    Parameters
    ----------
    baseline_bodies : Volume
        Baseline body (or bone) labels.
    warped_bodies : ndarray
        The follow-up's, on the baseline grid, carrying the paired baseline ids.
    common : ndarray of bool
        Baseline voxels inside the follow-up's field of view.
    centres : (dict, dict)
        Each visit's body centroids in its own space (baseline ids, follow-up ids).
    pairs : dict of int to int
        Baseline id -> follow-up id.
    chain : bool
        The bodies form a spine (ids in order): neighbouring centroid distances count too.

    Returns
    -------
    float or None
        None when no body is large enough to be measured.
    """
    labels = np.asarray(baseline_bodies.data)
    grid = baseline_bodies.grid
    counts_b, sizes_b = _label_extents(labels, common, grid)
    counts_f, sizes_f = _label_extents(warped_bodies, common, grid)
    totals_b = np.bincount(labels.ravel().astype(np.int64))
    totals_f = np.bincount(np.asarray(warped_bodies).ravel().astype(np.int64))
    differences: list[float] = []
    whole = []
    for body in sorted(pairs):
        n_b, n_f = _at_count(counts_b, body), _at_count(counts_f, body)
        if min(n_b, n_f) < MIN_SHAPE_VOXELS:
            continue
        size_b, size_f = sizes_b[body], sizes_f[body]
        differences += list(np.abs(size_b - size_f) / np.maximum((size_b + size_f) / 2, 1e-6))
        if n_b == _at_count(totals_b, body) and n_f == _at_count(totals_f, body):
            whole.append(body)  # not cut by either field of view: true centroids
    if chain:
        centres_b, centres_f = centres
        for first, second in itertools.pairwise(whole):
            d_b = np.linalg.norm(centres_b[first] - centres_b[second])
            d_f = np.linalg.norm(centres_f[pairs[first]] - centres_f[pairs[second]])
            differences.append(float(abs(d_b - d_f) / max((d_b + d_f) / 2, 1e-6)))
    return float(np.median(differences)) if differences else None


def _detrended(values: NDArray[np.float64], ijk: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` minus their least-squares linear trend over the voxel positions."""
    design = np.column_stack([np.ones(len(ijk)), ijk])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def _lesions_within(
    lesions: tuple[Volume | None, Volume | None],
    box: tuple[slice, ...],
    grid: Any,
    transform: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Voxels of ``box`` (on ``grid``) in either visit's lesions or next to them."""
    found = np.zeros(grid.shape, bool)
    baseline, followup = lesions
    if baseline is not None:
        found |= np.asarray(baseline.data)[box] > 0
    if followup is not None:
        found |= np.asarray(resample_to(moved(followup, transform), grid).data) > 0
    return ndimage.binary_dilation(found) if found.any() else found


def _smoothed_within(
    values: NDArray[np.floating], inside: NDArray[np.bool_], sigma: list[float]
) -> NDArray[np.float64]:
    """``values`` inside ``inside`` smoothed by a Gaussian (SD ``sigma`` voxels per axis)
    over the voxels inside only (normalised convolution: the cortex and the outside do not
    enter), at the voxels inside."""
    weight = ndimage.gaussian_filter(inside.astype(np.float64), sigma)
    total = ndimage.gaussian_filter(np.where(inside, np.asarray(values, np.float64), 0.0), sigma)
    return (total / np.maximum(weight, 1e-9))[inside]


def texture_correlation(
    baseline_t1: Volume,
    followup_t1: Volume,
    baseline_bodies: Volume,
    pairs: Mapping[int, int],
    transforms: Mapping[int, NDArray[np.float64]],
    lesions: tuple[Volume | None, Volume | None] = (None, None),
) -> dict[int, float]:
    """Correlation of the two visits' T1 marrow texture, per paired baseline body.

    Inside each body (:data:`TEXTURE_INSET_MM` in from its surface, at least one voxel
    along every axis: partial volume of the cortex is shared by every spine), the follow-up
    T1 is brought onto the baseline grid through the body's transform, both are smoothed
    within the body by :data:`TEXTURE_SMOOTHING_MM` (each scan's noise is its own) and
    detrended (a linear fit absorbs shading and scaling); the Pearson correlation of what is left is
    the marrow's texture (fat spots, red-marrow islands, mottling) seen twice, or noise
    against another subject's texture. ``lesions``: each visit's lesion map (edema and
    Modic, on its own grid); the voxels of either visit's lesions and the voxel around them
    are left out: findings are not the subject's texture, and two subjects with lesions at
    the same endplates correlated there (tuning seeds 49 and 50: 0.32 with them).
    """
    labels = np.asarray(baseline_bodies.data)
    size = tuple(2 * np.ceil(TEXTURE_INSET_MM / baseline_bodies.spacing).astype(int) + 1)
    out = {}
    for body in pairs:
        mask = ndimage.minimum_filter(labels == body, size=size)
        if mask.sum() < MIN_TEXTURE_VOXELS:
            continue
        box = occupied_box(mask)
        grid = box_grid(baseline_bodies.grid, box)
        follow = resample_to(moved(followup_t1, transforms[body]), grid)
        inside = mask[box] & ~_lesions_within(lesions, box, grid, transforms[body])
        if inside.sum() < MIN_TEXTURE_VOXELS:
            continue
        ijk = np.argwhere(inside).astype(np.float64)
        sigma = [TEXTURE_SMOOTHING_MM / s for s in baseline_bodies.spacing]
        x = _detrended(_smoothed_within(baseline_t1.data[box], inside, sigma), ijk)
        y = _detrended(_smoothed_within(follow.data, inside, sigma), ijk)
        scale = np.sqrt((x * x).sum() * (y * y).sum())
        out[body] = float((x * y).sum() / scale) if scale > 0 else 0.0
    return out
