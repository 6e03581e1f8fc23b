"""Image-only effects of randomized phantoms: marrow texture, dark discs and a bias field.

Real T1 marrow is mottled (focal fat, red-marrow islands, age-related fatty change), discs
degenerate and darken, and receive coils leave strong smooth shading (DOMAIN.md, "Real scans
are subtler than phantoms"). None of these is a lesion, so none of them may enter the truth:
they act on the rendered signal only, through
:class:`~bmetoolkit.data.phantom.render.RenderEffects`, and never on the tissue codes the
truth is measured from.

- **Spots** (:class:`Spot`): focal fat or red-marrow islands, soft spheres in a body's marrow.
- **Fatty bands** (:class:`Band`): a thin fatty layer of marrow under an endplate, thinner
  than a Modic change.
- Where spots and bands overlap, a sample is still one marrow, fatty or red: the strongest
  change of its kind holds, and fat over a red island holds where it reaches further
  (:func:`_feature_gain`), so no overlap gives a contrast beyond the drawn ones.
- **Mottling**: a smooth Gaussian random field of the marrow's log signal (relative SD and
  correlation length drawn per case), fat-like: brighter on T1, darker on a fat-suppressed
  image.
- **Basivertebral veins** (:class:`Vein`): slow-flowing blood in a thin channel at a body's
  mid-height, entering through an opening in the posterior wall (the cortex there shows the
  vein's signal) and running forward, sometimes splitting (Y-shaped): bright on fluid-sensitive
  images, iso- to hypointense on T1, a mimic of central edema that is not edema. Its voxels
  are kept as a truth mask of their own (:func:`vein_mask`), never as BME.
- **Dark discs**: the nucleus of some discs at a fraction of a healthy nucleus' signal on T2
  and on the fluid-sensitive image.
- **Bias field** (:class:`Bias`): a smooth multiplicative field, log-linear along a random
  direction, on top of the coil model.

A rendered ``above`` vertebra (T10, ``vertebra_above=True`` of :mod:`.randomize`) gets the
same kinds of texture, its own drawn (``Texture.above_mottle_seed``, ``Texture.above_gain``).

Contrasts are named by role: ``"t1"``, ``"t2"`` and ``"fluid"`` (the STIR or fat-suppressed
T2 series).

Examples
--------
>>> spot = Spot("L2", (0.0, 0.0, 0.0), 6.0, {"t1": 1.3, "t2": 1.1, "fluid": 0.6})
>>> texture = Texture(spots=(spot,), mottle_sd={"t1": 0.0, "t2": 0.0, "fluid": 0.0})
>>> texture.spots[0].radius_mm
3.0
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.data.phantom.anatomy import N_TISSUES, Spine, Tissue, Vertebra, endplate_depth
from bmetoolkit.data.phantom.grids import fine_grid
from bmetoolkit.data.phantom.render import RenderEffects
from bmetoolkit.data.phantom.scene import Samples, _block, _world, disc_frame, voxel_centres
from bmetoolkit.volume import Grid, Volume

__all__ = [
    "ROLES",
    "Band",
    "Bias",
    "MottleField",
    "Spot",
    "Texture",
    "Vein",
    "disc_names",
    "render_effects",
    "vein_mask",
]

#: Contrast roles: T1, plain T2 and the fat-suppressed fluid-sensitive image.
ROLES = ("t1", "t2", "fluid")
#: Width (mm) over which a spot's membership falls from 1 to 0 at its rim.
SPOT_EDGE_MM = 1.0
#: Width (mm) over which a fatty band's membership falls from 1 to 0 at its deep side.
BAND_EDGE_MM = 0.5
#: Width (mm) over which a basivertebral vein's membership falls from 1 to 0 at its wall.
VEIN_EDGE_MM = 0.5
#: How far (mm) a vein's trunk starts behind the posterior wall's outer surface, so that it
#: opens through the cortex.
VEIN_OPENING_MM = 1.0
#: Lattice step (mm) of the mottling field, interpolated linearly at the sample points.
MOTTLE_STEP_MM = 1.0
#: Margin (mm) of the mottling lattice around the vertebral bodies.
MOTTLE_MARGIN_MM = 6.0
#: Sign of the mottling per role: fat-rich marrow is brighter on T1 and T2, darker when fat
#: is suppressed.
MOTTLE_SIGN = {"t1": 1.0, "t2": 1.0, "fluid": -1.0}
#: Roles whose disc nucleus darkens when the disc degenerates (T1 barely changes).
DARK_DISC_ROLES = ("t2", "fluid")

FloatArray = NDArray[np.float64]
Points = NDArray[np.float32]


@dataclass(frozen=True)
class Spot:
    """A focal fat spot or red-marrow island in one body's marrow.

    Parameters
    ----------
    level : str
        The body it lies in.
    centre : tuple of 3 floats
        Centre in the body's local ``(ap, lr, si)`` frame (mm).
    diameter_mm : float
    ratios : dict of str to float
        Signal of the spot's core relative to the marrow around it, per role.
    """

    level: str
    centre: tuple[float, float, float]
    diameter_mm: float
    ratios: dict[str, float]

    @property
    def radius_mm(self) -> float:
        """Half the diameter (mm)."""
        return self.diameter_mm / 2

    @property
    def fatty(self) -> bool:
        """A fat spot (brighter than the marrow on T1), not a red-marrow island."""
        return self.ratios["t1"] > 1


@dataclass(frozen=True)
class Band:
    """A thin fatty band of marrow under one endplate.

    Parameters
    ----------
    level, endplate : str
        Where it lies (``endplate`` is ``"superior"`` or ``"inferior"``).
    thickness_mm : float
        Depth of the band below the endplate's bony plate (mm).
    extent : float
        Squared normalised radius it reaches along the endplate (1 = the whole endplate).
    ratios : dict of str to float
        Signal relative to the marrow, per role.
    """

    level: str
    endplate: str
    thickness_mm: float
    extent: float
    ratios: dict[str, float]


@dataclass(frozen=True)
class Vein:
    """A basivertebral vein: a thin channel from the posterior wall forward at mid-height.

    Parameters
    ----------
    level : str
        The body it lies in.
    si_mm : float
        Height of its centre in the body's local frame (mm, 0 = mid-height).
    height_mm, width_mm : float
        Its SI thickness and LR width (mm).
    depth_frac : float
        How far it runs forward from the posterior wall, as a fraction of the body's AP
        depth at mid-height.
    split_frac : float
        Where along its length it splits into two branches (Y-shaped), as a fraction of its
        length; 1 for a single channel.
    spread_mm : float
        LR distance of each branch's anterior end from the midline (mm).
    ratios : dict of str to float
        Signal of blood relative to the marrow, per role.
    """

    level: str
    si_mm: float
    height_mm: float
    width_mm: float
    depth_frac: float
    split_frac: float
    spread_mm: float
    ratios: dict[str, float]


@dataclass(frozen=True)
class Bias:
    """A smooth multiplicative field: log-linear along ``direction`` over the spine.

    Parameters
    ----------
    amplitude : float
        The field's maximum over its minimum across the vertebral bodies is ``1 + amplitude``.
    direction : tuple of 3 floats
        Unit vector (RAS+) along which the field grows.
    """

    amplitude: float
    direction: tuple[float, float, float]


@dataclass(frozen=True)
class Texture:
    """Everything image-only drawn for one case (empty by default: a plain phantom).

    Parameters
    ----------
    spots : tuple of Spot
        Fat spots and red-marrow islands.
    bands : tuple of Band
    mottle_sd : dict of str to float
        Relative SD of the marrow mottling per role (0: none).
    mottle_length_mm : float
        Correlation length of the mottling (Gaussian kernel SD, mm).
    mottle_seed : int
        Seed of the mottling field.
    dark_discs : dict of str to float
        Nucleus signal of degenerated discs (by name, e.g. ``"L4-L5"``) relative to a
        healthy nucleus.
    bias : Bias, optional
    veins : tuple of Vein
        Basivertebral veins (at most one per body).
    above_mottle_seed : int, optional
        Seed of the mottling field of a rendered ``above`` vertebra (T10; its own field,
        with the case's SD and length, so the levels' field stays as without it).
    above_gain : dict of str to float
        Signal of a rendered ``above`` vertebra's marrow relative to the table's, per role
        (its own body-to-body variation; empty: 1).
    """

    spots: tuple[Spot, ...] = ()
    bands: tuple[Band, ...] = ()
    mottle_sd: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ROLES, 0.0))
    mottle_length_mm: float = 4.0
    mottle_seed: int = 0
    dark_discs: dict[str, float] = field(default_factory=dict)
    bias: Bias | None = None
    veins: tuple[Vein, ...] = ()
    above_mottle_seed: int | None = None
    above_gain: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The draws as plain JSON-ready values (the ``above`` ones only when drawn)."""
        values = asdict(self)
        if self.above_mottle_seed is None and not self.above_gain:
            del values["above_mottle_seed"], values["above_gain"]
        return values


def disc_names(spine: Spine) -> list[str]:
    """Names of the discs between rendered bodies, cranial to caudal (``"T11-T12"``...).

    >>> from bmetoolkit.data.phantom.anatomy import AnatomyConfig, build_spine
    >>> disc_names(build_spine(AnatomyConfig()))[-1]
    'L5-S1'
    """
    levels = spine.levels
    return [f"{a}-{b}" for a, b in itertools.pairwise(levels)]


class MottleField:
    """A smooth unit-SD Gaussian random field around the vertebral bodies.

    Parameters
    ----------
    spine : Spine
    length_mm : float
        Correlation length (SD of the Gaussian smoothing kernel, mm).
    seed : int
    levels : sequence of str, optional
        The bodies the field covers (default: every level of ``spine.vertebrae``).
    """

    def __init__(
        self, spine: Spine, length_mm: float, seed: int, levels: Sequence[str] | None = None
    ) -> None:
        levels = spine.levels if levels is None else levels
        corners = np.vstack([_body_corners(spine, level) for level in levels])
        low = corners.min(axis=0) - MOTTLE_MARGIN_MM
        high = corners.max(axis=0) + MOTTLE_MARGIN_MM
        self.grid = fine_grid(np.vstack([low, high]), MOTTLE_STEP_MM)
        noise = np.random.default_rng(seed).standard_normal(self.grid.shape)
        smooth = ndimage.gaussian_filter(noise, length_mm / MOTTLE_STEP_MM, mode="wrap")
        self.values = (smooth / max(float(smooth.std()), 1e-12)).astype(np.float32)

    def at(self, points: FloatArray) -> NDArray[np.float32]:
        """Field values at world points (N, 3), linearly interpolated (edge values outside)."""
        ijk = self.grid.world_to_voxel(points).T
        return ndimage.map_coordinates(self.values, ijk, order=1, mode="nearest")


def _body_corners(spine: Spine, level: str) -> FloatArray:
    vertebra = spine.vertebra(level)
    a, b, h = vertebra.ap_radius_mm, vertebra.lr_radius_mm, vertebra.height_mm / 2
    mesh = np.meshgrid((-a, a), (-b, b), (-h, h), indexing="ij")
    return vertebra.to_world(*(m.ravel() for m in mesh))


def _sample_points(samples: Samples, flat: NDArray[np.intp]) -> FloatArray:
    """World coordinates (N, 3) of the samples at flat indices of ``samples.code``."""
    i, j, k, s = np.unravel_index(flat, samples.code.shape)
    ijk = np.stack([i, j, k], axis=1).astype(np.float64) + samples.offsets[s]
    return samples.grid.voxel_to_world(ijk)


def _membership(inside_mm: NDArray, edge_mm: float) -> NDArray[np.float32]:
    """Soft membership from a signed distance (mm, positive inside): 0.5 on the boundary."""
    return np.clip(0.5 + inside_mm / edge_mm, 0.0, 1.0).astype(np.float32)


def _marrow_gain(
    texture: Texture,
    spine: Spine,
    role: str,
    field_: MottleField | None,
    samples: Samples,
    above_field: MottleField | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Flat indices of the marrow samples and their texture factor for one role.

    The factor is the mottling times the spots' and bands' factor (:func:`_feature_gain`);
    a rendered ``above`` vertebra's marrow is mottled by ``above_field`` (when given) and
    scaled by its ``texture.above_gain``.
    """
    code = samples.code.reshape(-1)
    marrow = np.flatnonzero((code % N_TISSUES == Tissue.MARROW) & (code >= N_TISSUES))
    if marrow.size == 0:
        return marrow, np.ones(0, np.float32)
    points = _sample_points(samples, marrow)
    factor = np.ones(marrow.size, np.float32)
    body = code[marrow] // N_TISSUES - 1
    above = body == spine.above.index if spine.above.rendered else np.zeros(0, bool)
    sd = texture.mottle_sd.get(role, 0.0)
    if sd > 0 and field_ is not None:
        values = field_.at(points)
        if above_field is not None and above.any():
            values[above] = above_field.at(points[above])
        factor *= np.exp(np.float32(MOTTLE_SIGN[role] * sd) * values)
    for vertebra in spine.bodies:
        own = np.flatnonzero(body == vertebra.index)
        spots = [s for s in texture.spots if s.level == vertebra.level]
        bands = [b for b in texture.bands if b.level == vertebra.level]
        veins = [v for v in texture.veins if v.level == vertebra.level]
        if own.size == 0 or not (spots or bands or veins):
            continue
        ap, lr, si = vertebra.local(*(points[own, n].astype(np.float32) for n in range(3)))
        layers = [
            (spot.fatty, spot.ratios[role], _spot_membership(spot, ap, lr, si)) for spot in spots
        ]
        layers += [
            (True, band.ratios[role], _band_membership(band, vertebra, spine, ap, lr, si))
            for band in bands
        ]
        factor[own] *= _feature_gain(layers, own.size)
        for vein in veins:  # blood replaces the marrow, texture and all
            m = _vein_membership(vein, vertebra, ap, lr, si)
            factor[own] += m * (np.float32(vein.ratios[role]) - factor[own])
    if above.any() and role in texture.above_gain:
        factor[above] *= np.float32(texture.above_gain[role])
    return marrow, factor


def _cortex_gain(
    texture: Texture, spine: Spine, role: str, marrow_over_cortex: float, samples: Samples
) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Flat indices of cortex samples a vein opens through and their factor (to blood)."""
    empty = (np.zeros(0, np.intp), np.ones(0, np.float32))
    if not texture.veins:
        return empty
    code = samples.code.reshape(-1)
    cortex = np.flatnonzero((code % N_TISSUES == Tissue.CORTEX) & (code >= N_TISSUES))
    if cortex.size == 0:
        return empty
    points = _sample_points(samples, cortex)
    body = code[cortex] // N_TISSUES - 1
    where, factors = [], []
    for vein in texture.veins:
        vertebra = spine.vertebra(vein.level)
        own = np.flatnonzero(body == vertebra.index)
        if own.size == 0:
            continue
        ap, lr, si = vertebra.local(*(points[own, n].astype(np.float32) for n in range(3)))
        m = _vein_membership(vein, vertebra, ap, lr, si)
        hit = m > 0
        where.append(cortex[own[hit]])
        factors.append(1 + m[hit] * np.float32(vein.ratios[role] * marrow_over_cortex - 1))
    if not where:
        return empty
    return np.concatenate(where), np.concatenate(factors).astype(np.float32)


def _vein_path(vein: Vein, vertebra: Vertebra) -> list[tuple[FloatArray, FloatArray]]:
    """The vein's centre line as segments ``(start, end)`` in the local (ap, lr) plane."""
    wall = vertebra.ap_radius_mm * (1 - vertebra.waist)  # posterior wall at mid-height
    start = np.array([-wall - VEIN_OPENING_MM, 0.0])
    end_ap = -wall + vein.depth_frac * 2 * wall
    if vein.split_frac >= 1:
        return [(start, np.array([end_ap, 0.0]))]
    fork = np.array([-wall + vein.split_frac * (end_ap + wall), 0.0])
    return [
        (start, fork),
        (fork, np.array([end_ap, vein.spread_mm])),
        (fork, np.array([end_ap, -vein.spread_mm])),
    ]


def _vein_membership(
    vein: Vein, vertebra: Vertebra, ap: Points, lr: Points, si: Points
) -> NDArray[np.float32]:
    """Membership of local points in a vein (soft wall of :data:`VEIN_EDGE_MM`)."""
    distance = np.full(ap.shape, np.inf, np.float32)
    for start, end in _vein_path(vein, vertebra):
        step = end - start
        t = np.clip(((ap - start[0]) * step[0] + (lr - start[1]) * step[1]) / (step @ step), 0, 1)
        d = np.hypot(ap - (start[0] + t * step[0]), lr - (start[1] + t * step[1]))
        np.minimum(distance, d.astype(np.float32), out=distance)
    across = _membership(np.float32(vein.width_mm / 2) - distance, VEIN_EDGE_MM)
    through = _membership(np.float32(vein.height_mm / 2) - np.abs(si - vein.si_mm), VEIN_EDGE_MM)
    return np.minimum(across, through)


def vein_mask(
    texture: Texture,
    spine: Spine,
    grid: Grid,
    offsets: NDArray[np.float64],
    bodies: Volume,
) -> Volume:
    """Truth mask of the basivertebral veins on ``grid`` (uint8, 1 = vein).

    A voxel is vein when at least half of its samples (``offsets``, as the truth masks use)
    lie inside one (membership >= 0.5) and it belongs to the vein's body in ``bodies`` (the
    vertebral-body truth on ``grid``).
    """
    mask = np.zeros(grid.shape, np.uint8)
    labels = np.asarray(bodies.data)
    for vein in texture.veins:
        vertebra = spine.vertebra(vein.level)
        block = _block(grid, _body_corners(spine, vein.level))
        if block is None:
            continue
        ap, lr, si = vertebra.local(*_world(grid, offsets, block))
        inside = (_vein_membership(vein, vertebra, ap, lr, si) >= 0.5).mean(axis=-1) >= 0.5
        mask[block] |= (inside & (labels[block] == vertebra.verse_id)).astype(np.uint8)
    return Volume(mask, grid.affine, kind="label", source="phantom:vein")


def _feature_gain(layers: Sequence[tuple[bool, float, NDArray]], size: int) -> NDArray[np.float32]:
    """The marrow factor of overlapping fat spots, fatty bands and red-marrow islands.

    Each feature moves the marrow by ``(ratio - 1) x membership``. A sample of marrow is one
    tissue: fatty (yellow) or cellular (red) marrow, however many features reach it.

    - Features of one kind (fat spots and fatty bands; or red islands): the strongest
      change holds, not the product of their factors. Two fatty patches that meet are no
      fattier there than the fattier one, two red islands no more cellular than the more
      cellular one, so the signal stays within the drawn ranges (``FAT_SPOT_RATIOS``,
      ``BAND_RATIOS``, ``RED_ISLAND_RATIOS`` of ``randomize.py``); the joint phantom's
      islands follow the same rule.
    - Fat over a red island: the kind whose membership is larger holds (the sample lies
      more inside it), fat where both are full: a fat spot inside an island shows as fat,
      as focal fatty conversion inside red marrow does on real T1 images. Fat and red
      marrow do not cancel into normal marrow, nor multiply into a contrast neither has.

    Parameters
    ----------
    layers : sequence of (bool, float, ndarray of float32)
        Per feature: whether it is fat (else a red island), its ratio on this role and its
        membership at each sample.
    size : int
        Number of samples.

    Returns
    -------
    ndarray of float32
        The factor per sample (1 where no feature reaches).
    """
    change = {kind: np.zeros(size, np.float32) for kind in (True, False)}
    reach = {kind: np.zeros(size, np.float32) for kind in (True, False)}
    for fatty, ratio, membership in layers:
        step = (ratio - 1) * membership
        stronger = np.abs(step) > np.abs(change[fatty])
        change[fatty][stronger] = step[stronger]
        np.maximum(reach[fatty], membership, out=reach[fatty])
    fat_holds = reach[True] >= reach[False]
    return 1 + np.where(fat_holds, change[True], change[False])


def _spot_membership(spot: Spot, ap: Points, lr: Points, si: Points) -> NDArray[np.float32]:
    """Membership of marrow points in a spot (soft rim of :data:`SPOT_EDGE_MM`)."""
    distance = np.sqrt(
        (ap - spot.centre[0]) ** 2 + (lr - spot.centre[1]) ** 2 + (si - spot.centre[2]) ** 2
    )
    return _membership(spot.radius_mm - distance, SPOT_EDGE_MM)


def _band_membership(
    band: Band, vertebra: Vertebra, spine: Spine, ap: Points, lr: Points, si: Points
) -> NDArray[np.float32]:
    """Membership of marrow points in a fatty band under its endplate."""
    depth = endplate_depth(vertebra, ap, lr, si, band.endplate)
    reach = spine.config.endplate_thickness_mm + band.thickness_mm
    across = vertebra.radius2(ap, lr, si) <= band.extent
    return _membership(reach - depth, BAND_EDGE_MM) * across


def _disc_gain(
    texture: Texture, spine: Spine, samples: Samples
) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Flat indices of nucleus samples of dark discs and their factor."""
    empty = (np.zeros(0, np.intp), np.ones(0, np.float32))
    if not texture.dark_discs:
        return empty
    nucleus = np.flatnonzero(samples.code.reshape(-1) == Tissue.NUCLEUS)
    if nucleus.size == 0:
        return empty
    chain = [spine.above, *spine.vertebrae]
    frames = [disc_frame(upper, lower) for upper, lower in itertools.pairwise(chain)]
    centres = np.stack([frame.centre for frame in frames])
    names = ["above", *disc_names(spine)]
    points = _sample_points(samples, nucleus)
    nearest = np.argmin(((points[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)
    per_disc = np.array([texture.dark_discs.get(name, 1.0) for name in names], np.float32)
    factor = per_disc[nearest]
    dark = factor != 1
    return nucleus[dark], factor[dark]


def _bias_gain(bias: Bias, spine: Spine, grid: Grid) -> NDArray[np.float32]:
    """The bias field on a grid: 1 at the spine's centre, ``1 + amplitude`` across it."""
    direction = np.asarray(bias.direction, dtype=np.float64)
    corners = np.vstack([_body_corners(spine, v.level) for v in spine.vertebrae])
    along = corners @ direction
    middle, span = (along.max() + along.min()) / 2, max(float(np.ptp(along)), 1e-6)
    x, y, z = voxel_centres(grid)
    position = (x * direction[0] + y * direction[1] + z * direction[2] - middle) / span
    return np.power(np.float32(1 + bias.amplitude), position).astype(np.float32)


def render_effects(
    texture: Texture,
    spine: Spine,
    roles: Sequence[tuple[str, str]],
    *,
    marrow_over_cortex: dict[str, float] | None = None,
) -> dict[str, RenderEffects]:
    """The :class:`RenderEffects` of each contrast.

    Parameters
    ----------
    texture : Texture
    spine : Spine
    roles : sequence of (contrast name, role)
        E.g. ``[("t1", "t1"), ("t2", "t2"), ("stir", "fluid")]``.
    marrow_over_cortex : dict of str to float, optional
        Marrow signal over cortex signal per role (the contrasts' own tables), for the
        cortex a vein opens through: required when ``texture.veins``.
    """
    if texture.veins and marrow_over_cortex is None:
        raise ValueError("veins open through the cortex: give marrow_over_cortex per role")
    needs_field = any(sd > 0 for sd in texture.mottle_sd.values())
    field_ = (
        MottleField(spine, texture.mottle_length_mm, texture.mottle_seed) if needs_field else None
    )
    above_field = None
    if needs_field and spine.above.rendered and texture.above_mottle_seed is not None:
        above_field = MottleField(
            spine, texture.mottle_length_mm, texture.above_mottle_seed, (spine.above.level,)
        )
    effects: dict[str, RenderEffects] = {}
    for name, role in roles:

        def sample_gain(samples: Samples, role: str = role):
            where, factor = _marrow_gain(texture, spine, role, field_, samples, above_field)
            if texture.veins:
                opening, blood = _cortex_gain(
                    texture, spine, role, marrow_over_cortex[role], samples
                )
                where, factor = np.concatenate([where, opening]), np.concatenate([factor, blood])
            if role in DARK_DISC_ROLES:
                discs, dark = _disc_gain(texture, spine, samples)
                where, factor = np.concatenate([where, discs]), np.concatenate([factor, dark])
            return where, factor

        bias = texture.bias
        voxel_gain = (
            None if bias is None else (lambda grid, bias=bias: _bias_gain(bias, spine, grid))
        )
        effects[name] = RenderEffects(sample_gain=sample_gain, voxel_gain=voxel_gain)
    return effects
