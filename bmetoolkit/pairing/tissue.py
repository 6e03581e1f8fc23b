"""What a T1 and a fluid-sensitive image show of fat, fluid and marrow: the role check's measures.

Tissue relations that hold on real scans, whatever the scanner's scaling (DOMAIN.md):

============  =============  =============  =============
tissue        T1             plain T2       STIR / fat-suppressed T2 or PD
============  =============  =============  =============
fat           bright         bright         dark (suppressed)
fluid, CSF    dark           brightest      brightest
fatty marrow  bright         intermediate   dark
muscle        intermediate   dark           intermediate
============  =============  =============  =============

:func:`measure_roles` measures these relations between the image given as T1 and one given as
fluid image, on the T1 grid, from ranks (an image's own order of intensities) and from the
voxel-wise log ratio of the two images (which cancels the coil shading they share):

- ``fluid_dark``: of the fluid image's brightest voxels (its top 2, 5 and 10 %; on a plain T2
  the very top may be all fat), the largest fraction that lies in the T1's darkest quarter.
  A real T1 shows fluid dark; a T2 or PD given as the T1 shows it bright.
- ``fluid_bright``: as ``fluid_dark``, the fraction in the T1's brightest quarter: high when
  the fluid image's brightest tissue is the brightest on the T1 too (a T2 given as the T1 with
  a STIR: both show fluid brightest), low when it is intermediate there (muscle, the
  brightest tissue on some joint STIRs, is intermediate on a T1).
- ``swapped_fluid_dark`` and ``swapped_fluid_bright``: the same two with the images' roles
  traded (of the T1's brightest voxels, the fractions dark and bright on the fluid image).
  With a plain T2 the two pairs mirror each other: a real T1 and T2 show fluid darker and
  less bright on the T1 than the T1's brightest tissue is on the T2, and a swap trades the
  pairs.
- **surface fat**: the body's outer layer (1.5-8 mm inside the air that surrounds it, found
  as dark voxels on both images connected to the array's border; see "the body" below) is
  subcutaneous fat on the
  spine, the pelvis and every limb. ``fat_t1_rank`` and ``fat_fluid_rank`` are its median
  rank in each image; ``fat_contrast`` is how much higher the T1-to-fluid log ratio is there
  than deeper than 15 mm inside the body (fat suppressed on the fluid image: well above 0; on
  both or neither: near 0; suppressed on the image given as T1: well below 0).
  ``fat_t1_over_air`` and ``fat_fluid_over_air``: the layer's median on each image over
  the surrounding air's: suppressed fat still holds signal, while a layer that is air on one
  image (the two images not in register, e.g. a damaged header) holds none.
  ``brighter_on_t1``: how far, in log units, the tissues lit on either image (upper half of
  either) reach above fat in the T1-to-fluid ratio (its percentile ``100 - TAIL_PERCENT``).
  On a real T1 fat is the brightest tissue relative to any fluid image (marrow and muscle
  with a plain T2: about 0.6 above); a T2 or STIR in the T1's role brings its fluid, far
  above (1.3 and more).
  The layer's fat reference is its *fattest half*: the half of the layer brightest on either
  image (fat is bright on a T1 and on a plain T2; where the layer is thin, skin and muscle
  make the rest).
- ``ratio_tails``: how much longer the upper tail of the T1-to-fluid log ratio is than its
  lower tail, over the tissues lit on either image: ``((p90 - p50) - (p50 - p10)) / (p90 -
  p10)``, -1 to 1. With a fat-suppressed fluid image the upper tail is fat and fatty marrow
  (bright on a T1, suppressed on the other) and the lower tail fluid (dark on a T1, bright on
  the other); fat fills more of a spine, pelvis or joint than free fluid, so on a real T1 the
  upper tail is not the shorter one by far. Swapped, the ratio is mirrored and the sign flips.
- ``air_fraction``: the fraction of the judged view that is air around the body (0 when
  the view is cut inside the body, as a tight field of view in a joint is).
- **marrow** (when a vertebra or bone mask is known, :func:`measure_marrow`):
  ``marrow_t1_rank`` and ``marrow_fluid_rank``, its median rank in each image (fatty marrow
  is bright on a T1, intermediate on a T2, dark on a STIR); and how fatty it looks on the
  image given as T1 against the fluid image, from three relations that each flip sign when
  the two images are swapped: ``marrow_ratio_rank``, the fraction of the other tissue whose
  T1-to-fluid log ratio is below the marrow's median (fatty marrow: most, only fat is above);
  ``marrow_ratio_position``, where the marrow's ratio lies between the 1st (fluid) and 99th
  (fat) percentiles of the other lit tissue's, 0 to 1 (fatty marrow resembles fat: above the
  middle); ``marrow_level_gap``, the marrow's median over the 95th percentile of the body on
  the image given as T1 minus the same on the fluid image (fat, and fatty marrow nearly as
  much, is among the brightest tissues of a T1 and among the darkest of a fat-suppressed image).
  ``marrow_lit_share``: the marrow's share of the tissue lit on either image (upper half of
  either): whether marrow could fill the view (a tight view inside a joint) or not.

Measures that cannot be made (no air around the body in view, no mask, too few voxels) are
None; :mod:`bmetoolkit.pairing.sanity` decides from those that can.

**The body** is what holds signal on either image: above a tenth of the image's 99th
percentile (:data:`FOREGROUND_FRACTION`) and, where air surrounds it, with a local mean
above :data:`NOISE_FACTOR` times that air's on either image (at most twice the first bound:
dark tissue taken for air cannot raise it far). The second bound is the
image's own noise: on a noisy T1 the air's noise alone can reach a tenth of the brightest
tissue, and the surface layer found inside that "body" would be air. It is taken whenever
the first bound leaves :data:`MIN_REGION_VOXELS` of air around the body, however small a
share of the view: where most of the air's noise passes the first bound, the air left is
only its darkest specks (under 1 % of the view on full-size axial pelvis phantoms), whose
local means still tell the noise's level.

**The judged grid.** These are relations between tissues millimetres to centimetres across,
so a fine grid is judged on every k-th voxel along each axis (:func:`judging_steps`): no
coarser than :data:`JUDGED_SPACING_MM`, two voxels across the surface layer, and never on
fewer than :data:`MIN_JUDGED_VOXELS` of the covered voxels. Every k-th voxel, not a block
average: the values, their noise and so their ranks are the image's own. A 400x400x16
sagittal spine at 0.8 mm is judged on a sixteenth of its voxels; the small randomized
phantoms of the benchmark (3.5 mm and coarser) on all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.resample import values_at
from bmetoolkit.volume import Volume

__all__ = [
    "BRIGHT_PERCENTILES",
    "DARK_RANK",
    "FOREGROUND_FRACTION",
    "INTERIOR_MM",
    "JUDGED_SPACING_MM",
    "MIN_AIR_FRACTION",
    "MIN_JUDGED_VOXELS",
    "MIN_REGION_VOXELS",
    "MIN_VOXELS",
    "NOISE_FACTOR",
    "SHELL_MM",
    "TAIL_PERCENT",
    "RoleEvidence",
    "judging_steps",
    "measure_marrow",
    "measure_roles",
]

#: An image's brightest voxels: at or above each of these percentiles of the body's values.
BRIGHT_PERCENTILES = (98.0, 95.0, 90.0)
#: "Dark": in the lowest quarter of an image's values within the body.
DARK_RANK = 0.25
#: Body: voxels brighter than this fraction of the 99th percentile on either image.
FOREGROUND_FRACTION = 0.1
#: ... and, where air surrounds the body, with a local mean (3 x 3 x 3 voxels) above this
#: many times the air's median local mean on either image: the air of a magnitude image is
#: Rayleigh noise, whose mean over 27 voxels lies within 1.25 +- 0.13 times its scale, so
#: twice it is ten deviations away; tissue dim on both images (muscle on a noisy T1 and a
#: T2) stays body.
NOISE_FACTOR = 2.0
#: Fewer body voxels than this cannot be judged.
MIN_VOXELS = 500
#: The surface layer taken as subcutaneous fat: this far inside the surrounding air (mm);
#: the first 1.5 mm (skin, partial volume with air) are left out.
SHELL_MM = (1.5, 8.0)
#: Tissue deeper than this below the surface (mm) is the body's interior.
INTERIOR_MM = 15.0
#: Air around the body must fill at least this fraction of the judged field of view.
MIN_AIR_FRACTION = 0.02
#: Fewest voxels of surface fat, interior or marrow to take their median.
MIN_REGION_VOXELS = 200
#: The upper tail of the T1-to-fluid log ratio (relative to surface fat) is its percentile
#: ``100 - TAIL_PERCENT`` over voxels in the upper half of either image.
TAIL_PERCENT = 1.0
#: ``ratio_tails`` compares the log ratio's distance from its median to these percentiles.
RATIO_TAIL_PERCENTILES = (10.0, 50.0, 90.0)
#: ``marrow_ratio_position`` lies between these percentiles of the other tissue's log ratio.
RATIO_SPAN_PERCENTILES = (1.0, 99.0)
#: ``marrow_level_gap`` takes each image's level at this percentile of the body's values.
LEVEL_PERCENTILE = 95.0
#: A fine grid is judged on every k-th voxel along each axis, up to this spacing (mm): two
#: voxels across the surface layer of :data:`SHELL_MM`.
JUDGED_SPACING_MM = (SHELL_MM[1] - SHELL_MM[0]) / 2
#: ... keeping at least this many of the covered voxels (the small phantoms of
#: ``benchmarks/bench_role_check.py``, judged on all theirs, hold 100,000-150,000).
MIN_JUDGED_VOXELS = 100_000


@dataclass(frozen=True)
class RoleEvidence:
    """The tissue relations measured between the image given as T1 and a fluid image.

    See the module documentation for each measure; None where it could not be made.
    """

    voxels: int
    fluid_dark: float | None = None
    fluid_bright: float | None = None
    swapped_fluid_dark: float | None = None
    swapped_fluid_bright: float | None = None
    fat_t1_rank: float | None = None
    fat_fluid_rank: float | None = None
    fat_contrast: float | None = None
    fat_t1_over_air: float | None = None
    fat_fluid_over_air: float | None = None
    brighter_on_t1: float | None = None
    ratio_tails: float | None = None
    air_fraction: float | None = None
    marrow_t1_rank: float | None = None
    marrow_fluid_rank: float | None = None
    marrow_ratio_rank: float | None = None
    marrow_ratio_position: float | None = None
    marrow_level_gap: float | None = None
    marrow_lit_share: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """The measures, rounded to 3 decimals (for ``report.json``)."""
        return {
            k: v if v is None or k == "voxels" else round(v, 3) for k, v in asdict(self).items()
        }


def _ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each value's rank among ``values`` as a fraction 0-1 (ties share their middle rank, so
    a constant image is 0.5 everywhere: neither dark nor bright).

    >>> _ranks(np.array([3.0, 1.0, 2.0, 2.0, 5.0])).tolist()
    [0.75, 0.0, 0.375, 0.375, 1.0]
    """
    return _sorted_ranks(values)[0]


def _sorted_ranks(
    values: NDArray[np.float64], whole: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`_ranks` of finite ``values``, and the values sorted (for their percentiles).

    With ``whole`` (the values are whole numbers: an integer image's) the values are counted
    (:func:`numpy.bincount`) instead of sorted when their range is compact; the ranks are the
    same either way, to the last bit.

    >>> values = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    >>> ranks, ordered = _sorted_ranks(values, whole=True)
    >>> ranks.tolist(), ordered.tolist()
    ([0.75, 0.0, 0.375, 0.375, 1.0], [1.0, 2.0, 2.0, 3.0, 5.0])
    >>> np.array_equal(_sorted_ranks(values)[0], ranks)
    True
    """
    size = values.size
    scale = max(size - 1, 1)
    if whole and size:
        low, high = int(values.min()), int(values.max())
        if high - low < max(size, 1 << 16):
            offsets = values.astype(np.int64) - low
            counts = np.bincount(offsets, minlength=high - low + 1)
            middle = np.cumsum(counts) - (counts + 1) / 2  # middle rank of each value
            ordered = np.repeat(np.arange(low, high + 1, dtype=np.float64), counts)
            return middle[offsets] / scale, ordered
    order = np.argsort(values)
    ordered = values[order]
    first = np.empty(size, bool)  # the first of each run of equal values
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    counts = np.diff(np.flatnonzero(first), append=size)
    middle = np.cumsum(counts) - (counts + 1) / 2  # middle rank of each distinct value
    ranks = np.empty(size)
    ranks[order] = middle[np.cumsum(first) - 1] / scale
    return ranks, ordered


def _largest_fraction(
    bright_on: NDArray[np.float64],
    chosen: NDArray[np.bool_],
    levels: NDArray[np.float64] | None = None,
) -> float:
    """Of the brightest values of ``bright_on`` (each set of :data:`BRIGHT_PERCENTILES`, whose
    ``levels`` may be given), the largest fraction ``chosen`` (e.g. dark on the other image)."""
    if levels is None:
        levels = np.percentile(bright_on, BRIGHT_PERCENTILES)
    return float(max(np.mean(chosen[bright_on >= level]) for level in levels))


def _over(value: float, air: float) -> float:
    """``value`` over the air's level (infinite above an air of exactly 0, 0 for nothing)."""
    if air > 0:
        return value / air
    return float("inf") if value > 0 else 0.0


def _surrounding_air(body: NDArray[np.bool_], judged: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Judged voxels outside the body that connect to the array's border: the air around it."""
    outside = judged & ~body
    labels, count = ndimage.label(outside)
    if count == 0:
        return outside
    border = np.zeros(body.shape, bool)
    for axis in range(body.ndim):
        index = [slice(None)] * body.ndim
        for end in (0, -1):
            index[axis] = end
            border[tuple(index)] = True
    touching = np.zeros(count + 1, bool)  # by label: whether it reaches the border
    touching[labels[border & outside]] = True
    touching[0] = False
    return touching[labels]


def judging_steps(spacing: Sequence[float], covered_voxels: int) -> tuple[int, ...]:
    """Along each axis, judge every k-th voxel: the k of each axis.

    The largest k that keeps the axis' judged spacing within :data:`JUDGED_SPACING_MM`,
    lowered (largest first) while fewer than :data:`MIN_JUDGED_VOXELS` of the
    ``covered_voxels`` would be judged.

    Examples
    --------
    A sagittal spine at 0.8 mm with 4 mm slices; the bundled phantom sample; a small crop:

    >>> judging_steps((0.8, 0.8, 4.0), 400 * 400 * 16)
    (4, 4, 1)
    >>> judging_steps((1.4, 1.6, 4.4), 200 * 200 * 16)
    (2, 2, 1)
    >>> judging_steps((1.0, 1.0, 1.0), 42 * 76 * 77)
    (1, 1, 2)
    """
    steps = [max(1, int(JUDGED_SPACING_MM / float(size))) for size in spacing]
    while max(steps) > 1 and covered_voxels < MIN_JUDGED_VOXELS * math.prod(steps):
        steps[steps.index(max(steps))] -= 1
    return tuple(steps)


def measure_roles(
    t1: NDArray,
    fluid: NDArray | Volume,
    covered: NDArray[np.bool_],
    spacing: tuple[float, float, float] | NDArray[np.float64],
    marrow: NDArray[np.bool_] | None = None,
    *,
    every_voxel: bool = False,
) -> RoleEvidence:
    """Measure the tissue relations between a T1 and a fluid image on one grid.

    Parameters
    ----------
    t1, fluid : ndarray
        The image given as T1 and a fluid-sensitive image, on the same grid; ``fluid`` may
        be a :class:`~bmetoolkit.volume.Volume` on the grid (a
        :class:`~bmetoolkit.resample.ResampledVolume` is resampled at the judged voxels only).
    covered : ndarray of bool
        Where the fluid image has data.
    spacing : sequence of 3 floats
        Voxel size (mm) of the grid.
    marrow : ndarray of bool, optional
        Bone marrow (vertebral bodies or other bones) on the grid, when known.
    every_voxel : bool
        Judge every voxel, not every k-th of a fine grid (:func:`judging_steps`; for
        comparison in the benchmark).

    Returns
    -------
    RoleEvidence
        ``voxels`` counts the body's voxels on the judged grid.

    Examples
    --------
    A body of fat (bright on a T1, dark on a STIR) around muscle and a fluid core, in air:

    >>> t1, stir = np.zeros((40, 40, 6)), np.zeros((40, 40, 6))
    >>> t1[2:38, 2:38], stir[2:38, 2:38] = 100.0, 8.0  # fat
    >>> t1[10:30, 10:30], stir[10:30, 10:30] = 40.0, 35.0  # muscle
    >>> t1[17:23, 17:23], stir[17:23, 17:23] = 25.0, 150.0  # fluid
    >>> noise = np.random.default_rng(0).normal(0, 1, (2, *t1.shape))
    >>> t1, stir = np.abs(t1 + noise[0]), np.abs(stir + noise[1])
    >>> covered = np.ones(t1.shape, bool)
    >>> genuine = measure_roles(t1, stir, covered, (1.0, 1.0, 1.0))
    >>> genuine.fluid_dark, genuine.fat_t1_rank > 0.5, genuine.fat_contrast > 1
    (1.0, True, True)
    >>> swapped = measure_roles(stir, t1, covered, (1.0, 1.0, 1.0))  # a STIR as the T1
    >>> swapped.fat_t1_rank < 0.5, swapped.fat_contrast < -1
    (True, True)
    """
    every, judged_spacing = _judged_voxels(covered, spacing, every_voxel)
    t1, fluid = _judged(t1, every), _judged(fluid, every)
    whole_t1, whole_fluid = _whole_numbers(t1), _whole_numbers(fluid)
    t1, fluid = np.asarray(t1, np.float64), np.asarray(fluid, np.float64)
    covered = np.asarray(covered, bool)[every]
    marrow = None if marrow is None else np.asarray(marrow, bool)[every]
    judged, body, air, log_ratio = _body(t1, fluid, covered)
    voxels = int(np.count_nonzero(body))
    if log_ratio is None:
        return RoleEvidence(voxels=voxels)
    t1_body, fluid_body = t1[body], fluid[body]
    # the ranks, and the values sorted: their percentiles and medians then take no selection
    t1_body_rank, t1_sorted = _sorted_ranks(t1_body, whole_t1)
    fluid_body_rank, fluid_sorted = _sorted_ranks(fluid_body, whole_fluid)
    t1_rank = np.zeros(t1.shape)
    fluid_rank = np.zeros(t1.shape)
    t1_rank[body] = t1_body_rank
    fluid_rank[body] = fluid_body_rank
    lit = body & ((t1_rank >= 0.5) | (fluid_rank >= 0.5))
    # each image's levels in one pass: its brightest voxels' bounds and its spread
    t1_levels = np.percentile(t1_sorted, [*BRIGHT_PERCENTILES, *RATIO_TAIL_PERCENTILES[::2]])
    fluid_levels = np.percentile(fluid_sorted, [*BRIGHT_PERCENTILES, *RATIO_TAIL_PERCENTILES[::2]])
    bright = len(BRIGHT_PERCENTILES)
    t1_dark, t1_bright = t1_body_rank <= DARK_RANK, t1_body_rank >= 1 - DARK_RANK
    fluid_dark, fluid_bright = fluid_body_rank <= DARK_RANK, fluid_body_rank >= 1 - DARK_RANK
    measures: dict[str, float | None] = {
        "fluid_dark": _largest_fraction(fluid_body, t1_dark, fluid_levels[:bright]),
        "fluid_bright": _largest_fraction(fluid_body, t1_bright, fluid_levels[:bright]),
        "swapped_fluid_dark": _largest_fraction(t1_body, fluid_dark, t1_levels[:bright]),
        "swapped_fluid_bright": _largest_fraction(t1_body, fluid_bright, t1_levels[:bright]),
    }
    # (an image whose body does not spread, its 10th and 90th percentiles equal, has no
    # contrast: it leaves the ratio's tails to the other image alone)
    lit_ratio = log_ratio[lit]
    if t1_levels[-1] > t1_levels[-2] and fluid_levels[-1] > fluid_levels[-2]:
        low, middle, high = np.percentile(lit_ratio, RATIO_TAIL_PERCENTILES)
        measures["ratio_tails"] = float(((high - middle) - (middle - low)) / max(high - low, 1e-9))
    measures["air_fraction"] = float(np.count_nonzero(air) / max(np.count_nonzero(judged), 1))
    if _air_in_view(air, judged):
        depth = ndimage.distance_transform_edt(~air, sampling=judged_spacing)
        shell = body & (depth > SHELL_MM[0]) & (depth <= SHELL_MM[1])
        interior = body & (depth > INTERIOR_MM)
        if min(np.count_nonzero(shell), np.count_nonzero(interior)) >= MIN_REGION_VOXELS:
            brightest = np.maximum(t1_rank[shell], fluid_rank[shell])
            fattest = brightest >= np.median(brightest)  # the layer's fattest half
            fat_ratio = float(np.median(log_ratio[shell][fattest]))
            air_t1, air_fluid = float(np.median(t1[air])), float(np.median(fluid[air]))
            measures |= {
                "fat_t1_over_air": _over(float(np.median(t1[shell])), air_t1),
                "fat_fluid_over_air": _over(float(np.median(fluid[shell])), air_fluid),
                "brighter_on_t1": float(np.percentile(lit_ratio - fat_ratio, 100 - TAIL_PERCENT)),
                "fat_t1_rank": float(np.median(t1_rank[shell])),
                "fat_fluid_rank": float(np.median(fluid_rank[shell])),
                "fat_contrast": fat_ratio - float(np.median(log_ratio[interior])),
            }
    if marrow is not None:
        measures |= _marrow_measures(
            t1, fluid, body, log_ratio, marrow, sorted_body=(t1_sorted, fluid_sorted)
        )
    return RoleEvidence(voxels=voxels, **measures)


def measure_marrow(
    t1: NDArray,
    fluid: NDArray | Volume,
    covered: NDArray[np.bool_],
    marrow: NDArray[np.bool_],
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    """The marrow measures of :func:`measure_roles` alone (no sorting of the whole image).

    For a bone mask known only after the study was judged without it: fold the result into
    the evidence with ``dataclasses.replace(evidence, **measure_marrow(...))``. Empty when
    the marrow or the rest of the body is too small to judge. With the grid's ``spacing``
    (mm) a fine grid is judged on every k-th voxel, as :func:`measure_roles` judges it;
    without, on every voxel.

    Examples
    --------
    >>> t1, stir = np.zeros((40, 40, 6)), np.zeros((40, 40, 6))
    >>> t1[2:38, 2:38], stir[2:38, 2:38] = 40.0, 35.0  # muscle
    >>> t1[5:15, 5:35], stir[5:15, 5:35] = 110.0, 8.0  # fat
    >>> t1[20:34, 8:32], stir[20:34, 8:32] = 100.0, 20.0  # a bone's fatty marrow
    >>> t1[16:19, 8:32], stir[16:19, 8:32] = 25.0, 150.0  # joint fluid
    >>> noise = np.random.default_rng(0).normal(0, 1, (2, *t1.shape))
    >>> t1, stir = np.abs(t1 + noise[0]), np.abs(stir + noise[1])
    >>> covered, bone = np.ones(t1.shape, bool), np.zeros(t1.shape, bool)
    >>> bone[20:34, 8:32] = True
    >>> genuine = measure_marrow(t1, stir, covered, bone)
    >>> swapped = measure_marrow(stir, t1, covered, bone)
    >>> genuine["marrow_ratio_position"] > 0.5 > swapped["marrow_ratio_position"]
    True
    >>> genuine["marrow_level_gap"] > 0 > swapped["marrow_level_gap"]
    True
    """
    t1, fluid, covered, marrow, _ = _on_judged_grid(t1, fluid, covered, marrow, spacing)
    _, body, _, log_ratio = _body(t1, fluid, covered)
    if log_ratio is None or marrow is None:
        return {}
    return _marrow_measures(t1, fluid, body, log_ratio, marrow)


def _whole_numbers(image: NDArray) -> bool:
    """Whether an image's values are whole numbers by its type (integer or boolean)."""
    dtype = np.asarray(image).dtype
    return bool(np.issubdtype(dtype, np.integer) or dtype == np.bool_)


def _on_judged_grid(
    t1: NDArray,
    fluid: NDArray,
    covered: NDArray[np.bool_],
    marrow: NDArray[np.bool_] | None,
    spacing: Sequence[float] | NDArray[np.float64] | None,
    every_voxel: bool = False,
) -> tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.bool_],
    NDArray[np.bool_] | None,
    NDArray[np.float64] | None,
]:
    """The images (float64), coverage and marrow on the judged grid
    (:func:`judging_steps`; every voxel with ``every_voxel`` or without a ``spacing``), and
    the judged grid's spacing."""
    every, judged_spacing = _judged_voxels(covered, spacing, every_voxel)
    return (
        np.asarray(_judged(t1, every), np.float64),
        np.asarray(_judged(fluid, every), np.float64),
        np.asarray(covered, bool)[every],
        None if marrow is None else np.asarray(marrow, bool)[every],
        judged_spacing,
    )


def _judged_voxels(
    covered: NDArray[np.bool_],
    spacing: Sequence[float] | NDArray[np.float64] | None,
    every_voxel: bool = False,
) -> tuple[tuple[slice, ...], NDArray[np.float64] | None]:
    """The judged voxels (every k-th along each axis, :func:`judging_steps`; every voxel
    with ``every_voxel`` or without a ``spacing``) and the judged grid's spacing."""
    covered = np.asarray(covered, bool)
    steps: tuple[int, ...] = (1,) * covered.ndim
    if spacing is not None and not every_voxel:
        steps = judging_steps(spacing, int(np.count_nonzero(covered)))
    every = tuple(slice(step // 2, None, step) for step in steps)
    return every, None if spacing is None else np.asarray(spacing, float) * np.asarray(steps)


def _judged(image: NDArray | Volume, every: tuple[slice, ...]) -> NDArray:
    """An image's judged voxels (of a resampled volume, resampled there only)."""
    if isinstance(image, Volume):
        return values_at(image, every)
    return np.asarray(image)[every]


def _body(
    t1: NDArray[np.float64], fluid: NDArray[np.float64], covered: NDArray[np.bool_]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64] | None]:
    """Judged voxels, the body (signal on either image), the air around it and the
    T1-to-fluid log ratio (None when the body is too small or an image holds no signal).

    >>> t1 = np.random.default_rng(0).rayleigh(8.0, (40, 40, 4))  # noisy air
    >>> t1[8:32, 8:32] += 100.0
    >>> judged, body, air, _ = _body(t1, t1[::-1], np.ones(t1.shape, bool))
    >>> int(np.count_nonzero(t1 > 0.1 * np.percentile(t1, 99)) - 24 * 24 * 4)  # noise over
    1271
    >>> int(body.sum() - 24 * 24 * 4), int(air.sum())  # of the 4096 voxels of noisy air
    (224, 3872)
    """
    judged = np.asarray(covered, bool) & np.isfinite(t1) & np.isfinite(fluid)
    if not judged.any():
        return judged, judged, judged, None
    top_t1 = np.percentile(t1[judged], 99)
    top_fluid = np.percentile(fluid[judged], 99)
    limit_t1, limit_fluid = FOREGROUND_FRACTION * top_t1, FOREGROUND_FRACTION * top_fluid
    signal = judged & ((t1 > limit_t1) | (fluid > limit_fluid))
    body = signal
    air = _surrounding_air(body, judged)
    if np.count_nonzero(air) >= MIN_REGION_VOXELS:
        # a local mean takes in the noise around each dark voxel, so the first air tells the
        # noise's level; capped, so that dark tissue taken for air cannot raise it far. Its
        # median needs some air, not a share of the view: where the noise reaches a tenth
        # of the top, the first air is the noise's darkest specks (under 1 % of the view)
        local_t1, local_fluid = _local_mean(t1), _local_mean(fluid)
        noise_t1 = NOISE_FACTOR * min(float(np.median(local_t1[air])), limit_t1)
        noise_fluid = NOISE_FACTOR * min(float(np.median(local_fluid[air])), limit_fluid)
        body = signal & ((local_t1 > noise_t1) | (local_fluid > noise_fluid))
        air = _surrounding_air(body, judged)
    if np.count_nonzero(body) < MIN_VOXELS or top_t1 <= 0 or top_fluid <= 0:
        return judged, body, air, None
    log_ratio = np.log(np.maximum(t1, 1e-3 * top_t1) / top_t1) - np.log(
        np.maximum(fluid, 1e-3 * top_fluid) / top_fluid
    )
    return judged, body, air, log_ratio


def _local_mean(image: NDArray[np.float64]) -> NDArray[np.float64]:
    """The mean of each voxel's 3 x 3 x 3 neighbourhood (fewer along an axis shorter than 3;
    a value that is not finite counts as 0)."""
    finite = np.where(np.isfinite(image), image, 0.0)
    return ndimage.uniform_filter(finite, size=[min(3, n) for n in image.shape], mode="nearest")


def _air_in_view(air: NDArray[np.bool_], judged: NDArray[np.bool_]) -> bool:
    """Whether the air around the body fills at least :data:`MIN_AIR_FRACTION` of the view."""
    return bool(np.count_nonzero(air) >= MIN_AIR_FRACTION * np.count_nonzero(judged))


def _rank_of(value: float, ordered: NDArray[np.float64]) -> float:
    """The rank (0-1, ties at their middle) ``value`` would have among the values
    ``ordered`` (sorted)."""
    smaller = int(np.searchsorted(ordered, value, side="left"))
    equal = int(np.searchsorted(ordered, value, side="right")) - smaller
    below = smaller + 0.5 * equal
    return float(min(max((below - 0.5) / max(ordered.size - 1, 1), 0.0), 1.0))


def _marrow_measures(
    t1: NDArray[np.float64],
    fluid: NDArray[np.float64],
    body: NDArray[np.bool_],
    log_ratio: NDArray[np.float64],
    marrow: NDArray[np.bool_],
    sorted_body: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> dict[str, float]:
    """The marrow measures of :func:`measure_roles`; ``sorted_body`` the T1's and the fluid
    image's values in the body, sorted, when already at hand."""
    in_marrow = body & marrow
    rest = body & ~marrow
    if min(np.count_nonzero(in_marrow), np.count_nonzero(rest)) < MIN_REGION_VOXELS:
        return {}
    if sorted_body is None:
        sorted_body = (np.sort(t1[body]), np.sort(fluid[body]))
    t1_body, fluid_body = sorted_body  # (medians and percentiles need no order)
    lit_body = body & ((t1 >= np.median(t1_body)) | (fluid >= np.median(fluid_body)))
    lit = lit_body & ~marrow  # (the rest's lit tissue)
    marrow_ratio = float(np.median(log_ratio[in_marrow]))
    low, high = np.percentile(log_ratio[lit if lit.any() else rest], RATIO_SPAN_PERCENTILES)
    t1_marrow, fluid_marrow = float(np.median(t1[in_marrow])), float(np.median(fluid[in_marrow]))
    t1_level = t1_marrow / max(np.percentile(t1_body, LEVEL_PERCENTILE), 1e-12)
    fluid_level = fluid_marrow / max(np.percentile(fluid_body, LEVEL_PERCENTILE), 1e-12)
    return {
        "marrow_t1_rank": _rank_of(t1_marrow, t1_body),
        "marrow_fluid_rank": _rank_of(fluid_marrow, fluid_body),
        "marrow_ratio_rank": float(np.mean(log_ratio[rest] < marrow_ratio)),
        "marrow_ratio_position": float((marrow_ratio - low) / max(high - low, 1e-9)),
        "marrow_level_gap": float(t1_level - fluid_level),
        "marrow_lit_share": float(
            np.count_nonzero(lit_body & marrow) / max(np.count_nonzero(lit_body), 1)
        ),
    }
