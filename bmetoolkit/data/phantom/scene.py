"""Tissue classes at sub-voxel sample points of an acquisition grid.

For every voxel of a grid, a few sample points (in-plane and through the slice thickness)
get a tissue code. Work is vectorised over points and done block by block: each vertebra only
evaluates the voxels of the index box around it. Painting order gives the priorities:
background (air, fat, muscle, viscera; evaluated at voxel centres only, so without
partial volume), then canal, posterior elements and discs, then the
vertebral bodies with their lesions. A rendered ``above`` vertebra (T10 above T11, see
:attr:`~bmetoolkit.data.phantom.anatomy.AnatomyConfig.render_above`) is painted as a body of
its own, after the levels' segments (its canal, posterior elements and upper disc).

A sample code is ``tissue + N_TISSUES * (vertebra_index + 1)`` inside a vertebral body (so
each body can have its own signal), and the plain tissue elsewhere. Lesions are kept apart:
``lesion`` holds the lesion's code and ``weight`` its soft membership, so the signal can
blend marrow and lesion at ill-defined margins while the truth stays binary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.anatomy import N_TISSUES, Spine, Tissue, Vertebra
from bmetoolkit.data.phantom.lesions import TRUTH_MEMBERSHIP, Lesion, lesion_membership
from bmetoolkit.volume import Grid

__all__ = [
    "Samples",
    "body_code",
    "disc_frame",
    "label_samples",
    "paint_body",
    "reduce_samples",
    "voxel_centres",
]

Array = NDArray[np.float32]

#: Margin (mm) added around each structure's bounding box before culling voxels.
CULL_MARGIN_MM = 4.0
#: Extra reach of a canal segment beyond half the neighbouring discs (mm), so segments join.
CANAL_OVERLAP_MM = 3.0
#: Nucleus pulposus: semi-axes as fractions of the disc radii / central height, and its AP
#: offset as a fraction of the AP radius (negative = posterior).
NUCLEUS_RADIUS_FRACTION = 0.55
NUCLEUS_HEIGHT_FRACTION = 0.38
NUCLEUS_AP_OFFSET_FRACTION = -0.1
#: Radial bulge of the disc beyond the mean radius of its two bodies.
DISC_BULGE = 1.03
#: Lateral muscles (psoas, quadratus) start this far out, as a fraction of the LR radius.
PSOAS_LR_FRACTION = 0.6
#: Spinous process slope: SI drop per mm of posterior reach.
SPINOUS_SLOPE = 0.25
#: Pedicles span SI from this fraction of the body height below the centre to 1 mm below the
#: superior endplate; the lamina from below the inferior endplate to below the superior one.
PEDICLE_SI_LOW_FRACTION = 0.1
LAMINA_SI_EXTENT_MM = (-4.0, -5.0)
SPINOUS_SI_EXTENT_MM = (-2.0, -8.0)


def reduce_samples(op: np.ufunc, values: NDArray) -> NDArray:
    """Reduce the last (sample) axis with a binary ufunc, slice by slice.

    Much faster than ``op.reduce(values, axis=-1)`` for a short last axis.

    >>> reduce_samples(np.add, np.arange(6).reshape(2, 3)).tolist()
    [3, 12]
    """
    result = values[..., 0].copy()
    for n in range(1, values.shape[-1]):
        op(result, values[..., n], out=result)
    return result


def body_code(tissue: int, vertebra_index: int) -> int:
    """Sample code of a body tissue of the vertebra with the given index.

    >>> body_code(Tissue.MARROW, 0) == Tissue.MARROW + 17
    True
    """
    return int(tissue) + N_TISSUES * (vertebra_index + 1)


@dataclass
class Samples:
    """Tissue codes at the sample points of a grid.

    Attributes
    ----------
    grid : Grid
    offsets : ndarray, shape (n, 3)
        Sample positions inside a voxel (voxel-index units).
    code : ndarray of int16, shape grid.shape + (n,)
        Tissue code of each sample (marrow where a lesion is).
    lesion : ndarray of int16
        Lesion code (a body code of a lesion tissue) or 0.
    weight : ndarray of float32
        Soft lesion membership in [0, 1]; the lesion is true where ``weight >= 0.5``.
    """

    grid: Grid
    offsets: NDArray[np.float64]
    code: NDArray[np.int16]
    lesion: NDArray[np.int16]
    weight: NDArray[np.float32]

    def truth_code(self) -> NDArray[np.int16]:
        """Binary truth per sample: the lesion code where the lesion holds, else ``code``."""
        return np.where(self.weight >= TRUTH_MEMBERSHIP, self.lesion, self.code)


def _world(
    grid: Grid, offsets: NDArray[np.float64], block: tuple[slice, slice, slice]
) -> tuple[Array, Array, Array]:
    """World coordinates (x, y, z) of the samples of a block, each of shape block + (n,)."""
    idx = [np.arange(s.start, s.stop, dtype=np.float32) for s in block]
    affine = grid.affine.astype(np.float32)
    coords = []
    for row in range(3):
        value = (affine[row, 3] + offsets.astype(np.float32) @ affine[row, :3]).reshape(1, 1, 1, -1)
        for axis in range(3):
            shape = [1, 1, 1, 1]
            shape[axis] = len(idx[axis])
            value = value + affine[row, axis] * idx[axis].reshape(shape)
        coords.append(value)
    return coords[0], coords[1], coords[2]


def voxel_centres(grid: Grid) -> tuple[Array, Array, Array]:
    """World coordinates (x, y, z) of every voxel centre of ``grid``, each of its shape."""
    ni, nj, nk = grid.shape
    x, y, z = _world(grid, np.zeros((1, 3)), (slice(0, ni), slice(0, nj), slice(0, nk)))
    return x[..., 0], y[..., 0], z[..., 0]


def _block(grid: Grid, corners: NDArray[np.float64]) -> tuple[slice, slice, slice] | None:
    """Index box of the grid covering world points ``corners``, or None when outside."""
    ijk = grid.world_to_voxel(corners)
    low = np.floor(ijk.min(axis=0)).astype(int) - 1
    high = np.ceil(ijk.max(axis=0)).astype(int) + 2
    low = np.maximum(low, 0)
    high = np.minimum(high, grid.shape)
    if np.any(high <= low):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def _box_corners(
    vertebra: Vertebra, ap: Sequence[float], lr: Sequence[float], si: Sequence[float]
) -> NDArray[np.float64]:
    mesh = np.meshgrid(ap, lr, si, indexing="ij")
    return vertebra.to_world(*(m.ravel() for m in mesh))


def _body_corners(vertebra: Vertebra) -> NDArray[np.float64]:
    a = vertebra.ap_radius_mm + CULL_MARGIN_MM
    b = vertebra.lr_radius_mm + CULL_MARGIN_MM
    h = vertebra.height_mm / 2 + CULL_MARGIN_MM
    return _box_corners(vertebra, (-a, a), (-b, b), (-h, h))


def _paint_background(spine: Spine, x: Array, y: Array, z: Array, code: NDArray) -> None:
    cfg = spine.config
    a_ref = float(np.mean([v.ap_radius_mm for v in spine.vertebrae]))
    b_ref = float(np.mean([v.lr_radius_mm for v in spine.vertebrae]))
    ap, _ = spine.sagittal_frame(y, z)
    back = -(a_ref + cfg.posterior_skin_depth_mm)
    front = a_ref + cfg.anterior_skin_depth_mm
    code[...] = Tissue.VISCERA
    code[ap < -(a_ref + cfg.ligament_gap_mm)] = Tissue.MUSCLE
    lateral = (np.abs(x) > PSOAS_LR_FRACTION * b_ref) & (ap < a_ref + cfg.psoas_front_mm)
    code[lateral] = Tissue.MUSCLE
    fat = (ap < back + cfg.subcutaneous_fat_mm) | (ap > front - cfg.subcutaneous_fat_mm)
    code[fat] = Tissue.FAT
    _paint_surroundings(spine, x, ap, z, a_ref, code)
    _paint_pelvis_and_bowel(spine, x, y, ap, z, code)
    code[(ap < back) | (ap > front)] = Tissue.AIR


def _paint_surroundings(
    spine: Spine, x: Array, ap: Array, z: Array, a_ref: float, code: NDArray
) -> None:
    """The optional vessels, iliac wings and bowel gas of :class:`AnatomyConfig`."""
    cfg = spine.config
    for radius, side in ((cfg.aorta_radius_mm, 1.0), (cfg.ivc_radius_mm, -1.0)):
        if radius > 0:
            centre_ap = a_ref + cfg.vessel_gap_mm + radius
            lr = x - side * cfg.vessel_lr_offset_mm
            code[(ap - centre_ap) ** 2 + lr**2 <= radius**2] = Tissue.AIR
    if cfg.iliac_lr_mm > 0 and "S1" in spine.levels:
        sacrum = spine.vertebra("S1")
        top = sacrum.to_world([0.0], [0.0], [sacrum.height_mm / 2])[0][2]
        reach = np.abs(x) - cfg.iliac_lr_mm
        wing = (reach >= 0) & (reach <= cfg.iliac_thickness_mm) & (np.abs(ap) <= a_ref)
        code[wing & (z <= top)] = Tissue.POSTERIOR_BONE
    for gas_ap, gas_lr, gas_z, radius in cfg.bowel_gas:
        code[(ap - gas_ap) ** 2 + (x - gas_lr) ** 2 + (z - gas_z) ** 2 <= radius**2] = Tissue.AIR


def _paint_pelvis_and_bowel(
    spine: Spine, x: Array, y: Array, ap: Array, z: Array, code: NDArray
) -> None:
    """The optional lower sacrum, pelvic bone and bowel loops of :class:`AnatomyConfig`."""
    cfg = spine.config
    for loop_ap, loop_lr, loop_z, radius in cfg.bowel_loops:
        r2 = (ap - loop_ap) ** 2 + (x - loop_lr) ** 2 + (z - loop_z) ** 2
        code[r2 <= radius**2] = Tissue.VISCERA
        code[r2 <= max(radius - cfg.bowel_wall_mm, 0.0) ** 2] = Tissue.CSF
    if "S1" not in spine.levels:
        return
    sacrum = spine.vertebra("S1")
    top = sacrum.to_world([0.0], [0.0], [sacrum.height_mm / 2])[0][2]
    if cfg.pelvis_lr_mm > 0:
        wing = (np.abs(x) >= cfg.pelvis_lr_mm) & (np.abs(ap) <= cfg.pelvis_ap_mm)
        code[wing & (z <= top)] = Tissue.MARROW
    if cfg.lower_sacrum_mm > 0:
        # In S1's frame: the segment starts below S1's inferior surface and the remnant disc.
        depth, lr, along = sacrum.local(x, y, z)
        start = sacrum.height_mm / 2 + cfg.sacral_disc_mm
        below = -along - start  # mm below the remnant disc
        taper = 1.0 - 0.5 * np.clip(below / cfg.lower_sacrum_mm, 0.0, 1.0)
        inside = (
            (below >= 0)
            & (below <= cfg.lower_sacrum_mm)
            & ((depth / (sacrum.ap_radius_mm * taper)) ** 2 + (lr / sacrum.lr_radius_mm) ** 2 <= 1)
        )
        code[inside] = Tissue.MARROW


def _paint_canal(spine: Spine, k: int, ap: Array, lr: Array, si: Array, code: NDArray) -> None:
    """Posterior elements, canal, epidural fat, thecal sac (CSF) and cord of vertebra k.

    ``k`` indexes :attr:`Spine.vertebrae`; ``k == len(spine.vertebrae)`` is the rendered
    ``above`` vertebra, whose canal reaches half its upper and lower discs (both as thick as
    the one under it) and holds the cord.
    """
    cfg = spine.config
    vertebra = spine.vertebrae[k] if k < len(spine.vertebrae) else spine.above
    a, h = vertebra.ap_radius_mm, vertebra.height_mm
    rc_ap, rc_lr = cfg.canal_ap_radius_mm, cfg.canal_lr_radius_mm
    centre_ap = -(a + cfg.ligament_gap_mm + rc_ap)
    back = -(a + cfg.ligament_gap_mm + 2 * rc_ap)
    half_lr = rc_lr + cfg.pedicle_width_mm

    pedicle = (
        (np.abs(lr) <= half_lr)
        & (ap >= back)
        & (ap <= -a + cfg.ligament_gap_mm)
        & (si >= -PEDICLE_SI_LOW_FRACTION * h)
        & (si <= h / 2 - cfg.endplate_thickness_mm)
    )
    lamina = (
        (np.abs(lr) <= half_lr)
        & (ap < back)
        & (ap >= back - cfg.lamina_thickness_mm)
        & (si >= -h / 2 + LAMINA_SI_EXTENT_MM[0])
        & (si <= h / 2 + LAMINA_SI_EXTENT_MM[1])
    )
    reach = (back - cfg.lamina_thickness_mm) - ap
    drop = SPINOUS_SLOPE * reach
    spinous = (
        (np.abs(lr) <= cfg.spinous_half_width_mm)
        & (reach > 0)
        & (reach <= cfg.spinous_length_mm)
        & (si + drop >= -h / 2 + SPINOUS_SI_EXTENT_MM[0])
        & (si + drop <= h / 2 + SPINOUS_SI_EXTENT_MM[1])
    )
    code[pedicle | lamina | spinous] = Tissue.POSTERIOR_BONE

    discs = cfg.disc_height_mm
    rendered_above = k == len(spine.vertebrae)
    if rendered_above:
        above = below = discs[0] / 2
    else:
        above = discs[k] / 2
        below = discs[k + 1] / 2 if k + 1 < len(discs) else discs[-1] / 2
    span = (si <= h / 2 + above + CANAL_OVERLAP_MM) & (si >= -h / 2 - below - CANAL_OVERLAP_MM)
    e2 = ((ap - centre_ap) / rc_ap) ** 2 + (lr / rc_lr) ** 2
    code[span & (e2 <= 1)] = Tissue.EPIDURAL_FAT
    code[span & (e2 <= cfg.thecal_sac_fraction**2)] = Tissue.CSF
    conus = spine.levels.index(cfg.conus_level) if cfg.conus_level in spine.levels else -1
    if k <= conus or rendered_above:
        cord = ((ap - centre_ap) / cfg.cord_ap_radius_mm) ** 2 + (
            lr / cfg.cord_lr_radius_mm
        ) ** 2 <= 1
        if k == conus:
            cord &= si >= 0
        code[span & cord] = Tissue.CORD


def disc_frame(upper: Vertebra, lower: Vertebra) -> Vertebra:
    """A pseudo-vertebra whose frame sits mid-disc between two bodies (for the nucleus)."""
    top = upper.to_world([0.0], [0.0], [-upper.height_mm / 2 + upper.dome_inferior_mm])[0]
    low = lower.to_world([0.0], [0.0], [lower.height_mm / 2 - lower.dome_superior_mm])[0]
    return Vertebra(
        level=f"{upper.level}-{lower.level}",
        verse_id=0,
        index=-1,
        centre=(top + low) / 2,
        tilt_rad=(upper.tilt_rad + lower.tilt_rad) / 2,
        height_mm=float(np.linalg.norm(top - low)),
        ap_radius_mm=(upper.ap_radius_mm + lower.ap_radius_mm) / 2 * DISC_BULGE,
        lr_radius_mm=(upper.lr_radius_mm + lower.lr_radius_mm) / 2 * DISC_BULGE,
        dome_superior_mm=0.0,
        dome_inferior_mm=0.0,
        rendered=False,
    )


def _paint_disc(
    upper: Vertebra, lower: Vertebra, x: Array, y: Array, z: Array, code: NDArray
) -> None:
    frame = disc_frame(upper, lower)
    ap, lr, si = frame.local(x, y, z)
    r2 = (ap / frame.ap_radius_mm) ** 2 + (lr / frame.lr_radius_mm) ** 2
    ua, ul, us = upper.local(x, y, z)
    la, ll, ls = lower.local(x, y, z)
    below_upper = us <= upper.surfaces(upper.radius2(ua, ul, us))[1]
    above_lower = ls >= lower.surfaces(lower.radius2(la, ll, ls))[0]
    disc = (r2 <= 1) & below_upper & above_lower
    code[disc] = Tissue.ANNULUS
    nucleus = (
        ((ap - NUCLEUS_AP_OFFSET_FRACTION * frame.ap_radius_mm)
         / (NUCLEUS_RADIUS_FRACTION * frame.ap_radius_mm)) ** 2
        + (lr / (NUCLEUS_RADIUS_FRACTION * frame.lr_radius_mm)) ** 2
        + (si / (NUCLEUS_HEIGHT_FRACTION * frame.height_mm)) ** 2
    )  # fmt: skip
    code[disc & (nucleus <= 1)] = Tissue.NUCLEUS


def paint_body(
    vertebra: Vertebra,
    lesions: Sequence[Lesion],
    ap: Array,
    lr: Array,
    si: Array,
    *,
    cortex_mm: float,
    endplate_mm: float,
) -> tuple[NDArray[np.int16], NDArray[np.int16], Array, NDArray[np.int16]]:
    """Body tissues, lesion codes, lesion weights and winning lesion at local points.

    Lesions only replace marrow; where lesions overlap, the one with the larger membership
    wins.

    Returns
    -------
    code : ndarray of int16
        Body code of cortex or marrow, 0 outside the body.
    lesion_code : ndarray of int16
        Body code of the lesion tissue at each point, 0 where no lesion reaches.
    weight : ndarray of float32
        Membership of the winning lesion (0 where none).
    winner : ndarray of int16
        Index into ``lesions`` of the winning lesion, -1 where none.
    """
    half = np.float32(vertebra.height_mm / 2)
    t = np.clip(si / half, -1, 1)
    scale = 1 - np.float32(vertebra.waist) * (1 - t * t)
    ra = vertebra.ap_radius_mm * scale
    rb = vertebra.lr_radius_mm * scale
    r2 = (ap / ra) ** 2 + (lr / rb) ** 2
    top, bottom = vertebra.surfaces(r2)
    inside = (r2 <= 1) & (si <= top) & (si >= bottom)
    shell = (
        ((ap / (ra - cortex_mm)) ** 2 + (lr / (rb - cortex_mm)) ** 2 > 1)
        | (si > top - endplate_mm)
        | (si < bottom + endplate_mm)
    )
    code = np.zeros(ap.shape, np.int16)
    code[inside] = body_code(Tissue.MARROW, vertebra.index)
    code[inside & shell] = body_code(Tissue.CORTEX, vertebra.index)
    marrow = code == body_code(Tissue.MARROW, vertebra.index)
    lesion_code = np.zeros(ap.shape, np.int16)
    weight = np.zeros(ap.shape, np.float32)
    winner = np.full(ap.shape, -1, np.int16)
    own = [(n, lesion) for n, lesion in enumerate(lesions) if lesion.level == vertebra.level]
    if not own or not marrow.any():
        return code, lesion_code, weight, winner
    sub_ap, sub_lr, sub_si = ap[marrow], lr[marrow], si[marrow]
    best = np.zeros(sub_ap.shape, np.float32)
    codes = np.zeros(sub_ap.shape, np.int16)
    which = np.full(sub_ap.shape, -1, np.int16)
    for n, lesion in own:
        m, tissue = lesion_membership(lesion, vertebra, sub_ap, sub_lr, sub_si)
        better = m > best
        best[better] = m[better]
        codes[better] = tissue[better] + N_TISSUES * (vertebra.index + 1)
        which[better] = n
    lesion_code[marrow] = codes
    weight[marrow] = best
    winner[marrow] = which
    return code, lesion_code, weight, winner


def label_samples(
    spine: Spine, lesions: Sequence[Lesion], grid: Grid, offsets: NDArray[np.float64]
) -> Samples:
    """Tissue codes at every sample point of ``grid``.

    Parameters
    ----------
    spine : Spine
    lesions : sequence of Lesion
    grid : Grid
        The acquisition grid.
    offsets : ndarray, shape (n, 3)
        Sample positions within a voxel in index units (see
        :func:`~bmetoolkit.data.phantom.grids.subsample_offsets`).
    """
    n = len(offsets)
    shape = (*grid.shape, n)
    code = np.zeros(shape, np.int16)
    lesion = np.zeros(shape, np.int16)
    weight = np.zeros(shape, np.float32)
    background = np.zeros(grid.shape, np.int16)
    _paint_background(spine, *voxel_centres(grid), background)
    code[...] = background[..., np.newaxis]

    cfg = spine.config
    chain = [spine.above, *spine.vertebrae]
    segments = list(enumerate(zip(chain, spine.vertebrae, strict=False)))
    if spine.above.rendered and spine.beyond is not None:  # its canal and upper disc
        segments.append((len(spine.vertebrae), (spine.beyond, spine.above)))
    for k, (upper, vertebra) in segments:
        a, h = vertebra.ap_radius_mm, vertebra.height_mm
        reach = (
            a + cfg.ligament_gap_mm + 2 * cfg.canal_ap_radius_mm + cfg.lamina_thickness_mm
            + cfg.spinous_length_mm + CULL_MARGIN_MM
        )  # fmt: skip
        half_lr = cfg.canal_lr_radius_mm + cfg.pedicle_width_mm + CULL_MARGIN_MM
        half_si = h / 2 + max(cfg.disc_height_mm) + CULL_MARGIN_MM + SPINOUS_SLOPE * reach
        corners = _box_corners(vertebra, (-reach, -a + CULL_MARGIN_MM), (-half_lr, half_lr),
                               (-half_si, half_si))  # fmt: skip
        block = _block(grid, corners)
        if block is not None:
            x, y, z = _world(grid, offsets, block)
            _paint_canal(spine, k, *vertebra.local(x, y, z), code[block])
        block = _block(grid, np.vstack([_body_corners(upper), _body_corners(vertebra)]))
        if block is not None:
            _paint_disc(upper, vertebra, *_world(grid, offsets, block), code[block])

    for vertebra in spine.bodies:
        block = _block(grid, _body_corners(vertebra))
        if block is None:
            continue
        x, y, z = _world(grid, offsets, block)
        body, les, wt, _ = paint_body(
            vertebra,
            lesions,
            *vertebra.local(x, y, z),
            cortex_mm=cfg.cortex_thickness_mm,
            endplate_mm=cfg.endplate_thickness_mm,
        )
        inside = body > 0
        code[block][inside] = body[inside]
        lesion[block][inside] = les[inside]
        weight[block][inside] = wt[inside]
    return Samples(grid=grid, offsets=offsets, code=code, lesion=lesion, weight=weight)
