"""Sampling a joint case on an acquisition grid: signal and truth fractions, slice by slice.

Each voxel is sampled at a few points (through the slice thickness), each placed at random
in its own cell of the voxel (stratified sampling); voxels whose samples disagree (an edge)
get more samples (adaptive supersampling). At every sample the anatomy gives a tissue and a
bone; lesions of that bone blend into its marrow by their soft membership (islands scale
the marrow signal, the strongest island where they overlap; edema and bruises move it to
their own signal, a cyst to the joint fluid's); the marrow mottles. The voxel's signal is
the mean of its samples' (partial volume). Truth counts, per voxel, the fraction of samples
inside each bone, in marrow, and truly (membership >= 0.5) in edema, a cyst or an island
(a cyst wins over edema, edema over an island), so a mask is "at least half the voxel".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.joint.anatomy import JointAnatomy, JointTissue
from bmetoolkit.data.phantom.joint.fields import NoiseField
from bmetoolkit.data.phantom.joint.lesions import (
    EDEMA_KINDS,
    TRUTH_MEMBERSHIP,
    JointLesion,
    lesion_membership,
)
from bmetoolkit.data.phantom.joint.shapes import transform
from bmetoolkit.volume import Grid

__all__ = ["TRUTH_LAYERS", "Scene", "scan"]

T = JointTissue
#: Truth layers counted per voxel besides the bones.
TRUTH_LAYERS = ("marrow", "bme", "cyst", "island")
#: Lattice step (mm) of the mottle field.
MOTTLE_STEP_MM = 1.5


@dataclass(frozen=True)
class Scene:
    """Everything needed to sample one case.

    Parameters
    ----------
    anatomy : JointAnatomy
    lesions : tuple of JointLesion
    borders : tuple of (NoiseField or None)
        Each lesion's border field.
    mottle : NoiseField or None
        The marrow mottle field.
    mottle_sd : dict of str to float
        Relative SD of the mottle per sequence (brighter on T1, darker fat-suppressed).
    """

    anatomy: JointAnatomy
    lesions: tuple[JointLesion, ...]
    borders: tuple[NoiseField | None, ...]
    mottle: NoiseField | None
    mottle_sd: dict[str, float]

    @classmethod
    def build(
        cls,
        anatomy: JointAnatomy,
        lesions: tuple[JointLesion, ...],
        *,
        mottle_sd: dict[str, float],
        mottle_length_mm: float,
        mottle_seed: int,
        step_mm: float,
    ) -> Scene:
        """Make the random fields of a case at lattice step ``step_mm``."""
        low, high = anatomy.mottle_box
        mottle = NoiseField(
            low, high, step_mm=MOTTLE_STEP_MM, length_mm=mottle_length_mm, seed=mottle_seed
        )
        borders = tuple(lesion.field(step_mm) for lesion in lesions)
        return cls(anatomy, tuple(lesions), borders, mottle, dict(mottle_sd))


def _voxel_points(
    grid: Grid,
    voxels: NDArray[np.float32],
    offsets: NDArray[np.float64],
    anatomy: JointAnatomy,
    jitter: tuple[np.random.Generator, NDArray[np.float64]] | None = None,
) -> NDArray[np.float32]:
    """Frame points of the samples of ``voxels`` (V, 3 indices), ordered (voxel, sample).

    ``jitter`` (a generator and the size of each sample's cell along i, j, k, in index
    units) moves every sample to a random place in its cell: stratified sampling, so a
    surface cut at a grazing angle blurs instead of repeating as parallel contours.
    """
    ijk = voxels[:, None, :] + offsets[None].astype(np.float32)
    if jitter is not None:
        rng, cell = jitter
        shake = rng.random(ijk.shape, dtype=np.float32) - np.float32(0.5)
        ijk += shake * cell.astype(np.float32)
    return transform(ijk.reshape(-1, 3), *anatomy.frame.voxel_to_local(grid.affine))


def _slice_voxels(grid: Grid, k: int) -> NDArray[np.float32]:
    """Indices (V, 3) of the voxels of slice ``k``, i-major."""
    ni, nj, _ = grid.shape
    i, j = np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij")
    return np.stack([i.ravel(), j.ravel(), np.full(i.size, k)], axis=1).astype(np.float32)


def _memberships(
    scene: Scene, local: NDArray, tissue: NDArray, bone: NDArray
) -> list[tuple[JointLesion, NDArray[np.intp], NDArray[np.float32]]]:
    """Per lesion: the marrow samples of its bone near it and their membership."""
    marrow = np.flatnonzero(tissue == T.MARROW)
    points, owner = local[marrow], bone[marrow]
    layers = []
    for lesion, border in zip(scene.lesions, scene.borders, strict=True):
        reach = np.float32(lesion.reach_mm())
        low = np.asarray(lesion.centre_mm, np.float32) - reach
        high = np.asarray(lesion.centre_mm, np.float32) + reach
        near = owner == lesion.bone
        for axis in range(3):
            near &= (points[:, axis] > low[axis]) & (points[:, axis] < high[axis])
        where = marrow[near]
        if where.size:
            layers.append((lesion, where, lesion_membership(lesion, local[where], border)))
    return layers


def _signal(
    scene: Scene,
    sequence: str,
    table: NDArray[np.float32],
    local: NDArray,
    tissue: NDArray,
    layers: list,
) -> NDArray[np.float32]:
    signal = table[tissue]
    marrow_base = table[T.MARROW]
    sd = scene.mottle_sd.get(sequence, 0.0)
    if sd > 0 and scene.mottle is not None:
        marrow = np.flatnonzero(tissue == T.MARROW)
        sign = 1.0 if sequence == "t1" else -1.0
        signal[marrow] *= np.exp(np.float32(sign * sd) * scene.mottle.at(local[marrow]))
    islands = [layer for layer in layers if layer[0].kind == "island"]
    if islands:
        touched, gain = _island_gain(islands, sequence, signal.size)
        signal[touched] *= 1 + gain
    order = {"edema": 1, "bruise": 1, "cyst": 2}
    others = [layer for layer in layers if layer[0].kind != "island"]
    for lesion, where, weight in sorted(others, key=lambda layer: order[layer[0].kind]):
        target = table[T.FLUID] if lesion.kind == "cyst" else marrow_base * lesion.ratios[sequence]
        signal[where] += weight * (np.float32(target) - signal[where])
    return signal


def _island_gain(
    islands: list, sequence: str, size: int
) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Samples under red-marrow islands and the relative change of their marrow signal.

    Each island changes the marrow by ``(ratio - 1) x membership``; where islands overlap,
    the strongest change holds (the largest in size), not the product of their factors:
    red marrow is no brighter (or darker) where two patches meet than inside either, so the
    signal stays within the islands' own range (``RED_ISLAND_RATIOS``).

    Parameters
    ----------
    islands : list of (JointLesion, ndarray of int, ndarray of float32)
        Each island, the samples it reaches and their membership.
    sequence : str
    size : int
        Number of samples.

    Returns
    -------
    touched : ndarray of int
        Samples reached by at least one island.
    gain : ndarray of float32
        Their relative change (``factor - 1``).
    """
    gain = np.zeros(size, np.float32)
    for lesion, where, weight in islands:
        change = (np.float32(lesion.ratios[sequence]) - 1) * weight.astype(np.float32)
        stronger = np.abs(change) > np.abs(gain[where])
        gain[where[stronger]] = change[stronger]
    touched = np.flatnonzero(gain)
    return touched, gain[touched]


def _truth(bone: NDArray, tissue: NDArray, layers: list) -> dict[str, NDArray[np.bool_]]:
    flags = {name: np.zeros(bone.shape, bool) for name in ("bme", "cyst", "island")}
    for lesion, where, weight in layers:
        name = "bme" if lesion.kind in EDEMA_KINDS else lesion.kind
        flags[name][where[weight >= TRUTH_MEMBERSHIP]] = True
    flags["bme"] &= ~flags["cyst"]
    flags["island"] &= ~(flags["bme"] | flags["cyst"])
    flags["marrow"] = tissue == T.MARROW
    return flags


def _evaluate(
    scene: Scene,
    sequence: str,
    table: NDArray[np.float32],
    local: NDArray[np.float32],
    soft: NDArray[np.uint8],
    with_truth: bool,
) -> tuple[NDArray[np.float32], NDArray[np.int16], dict[str, NDArray[np.bool_]]]:
    """Signal, a label per sample (tissue and bone) and truth flags at frame points."""
    tissue, bone, _ = scene.anatomy.classify_local(local, soft)
    layers = _memberships(scene, local, tissue, bone)
    values = _signal(scene, sequence, table, local, tissue, layers)
    flags: dict[str, NDArray[np.bool_]] = {}
    if with_truth:
        flags = {f"bone{b}": bone == b for b in scene.anatomy.bones}
        flags |= _truth(bone, tissue, layers)
    label = tissue.astype(np.int16) + np.int16(16) * bone.astype(np.int16)
    for n, layer in enumerate(layers):
        label[layer[1][layer[2] >= TRUTH_MEMBERSHIP]] += np.int16(256 * (n + 1))
    return values, label, flags


def scan(
    scene: Scene,
    grid: Grid,
    offsets: NDArray[np.float64],
    *,
    sequence: str,
    table: NDArray[np.float32],
    with_truth: bool,
    jitter: tuple[np.random.Generator, NDArray[np.float64]] | None = None,
    refine: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> tuple[NDArray[np.float32], dict[str, NDArray[np.float32]] | None]:
    """Noise-free signal of a grid, and per-voxel truth fractions when asked.

    Parameters
    ----------
    scene : Scene
    grid : Grid
    offsets : ndarray, shape (n, 3)
        Sample positions inside a voxel (index units).
    sequence : {'t1', 'stir', 't2fs', 'pdfs'}
    table : ndarray of float32
        Signal of each :class:`JointTissue` code for this case and sequence.
    with_truth : bool
    jitter : (numpy.random.Generator, ndarray of 3 floats), optional
        Stratified sampling: each sample moves at random within its cell of this size
        (index units along i, j, k).
    refine : (ndarray (m, 3), ndarray of 3 floats), optional
        Extra sample offsets and their cell size for mixed voxels (whose first samples
        disagree on tissue, bone or a lesion's truth): adaptive supersampling of the edges.

    Returns
    -------
    signal : ndarray of float32, grid shape
    fractions : dict of str to ndarray of float32, or None
        Fraction of each voxel's samples inside each bone (keys ``"bone1"``...) and in each
        of :data:`TRUTH_LAYERS`.
    """
    ni, nj, nk = grid.shape
    n = len(offsets)
    signal = np.zeros(grid.shape, np.float32)
    names = [f"bone{b}" for b in scene.anatomy.bones] + list(TRUTH_LAYERS)
    fractions = {name: np.zeros(grid.shape, np.float32) for name in names} if with_truth else None
    for k in range(nk):
        voxels = _slice_voxels(grid, k)
        centres = _voxel_points(grid, voxels, np.zeros((1, 3)), scene.anatomy)
        soft_voxel = scene.anatomy.soft_tissue(centres)
        local = _voxel_points(grid, voxels, offsets, scene.anatomy, jitter)
        values, label, flags = _evaluate(
            scene, sequence, table, local, np.repeat(soft_voxel, n), with_truth
        )
        total = values.reshape(-1, n).sum(axis=1)
        sums = {
            name: flag.reshape(-1, n).sum(axis=1, dtype=np.float32) for name, flag in flags.items()
        }
        count = np.full(len(voxels), n, np.float32)
        label = label.reshape(-1, n)
        mixed = np.flatnonzero((label != label[:, :1]).any(axis=1))
        if refine is not None and mixed.size:
            extra, cell = refine
            more = _voxel_points(
                grid, voxels[mixed], extra, scene.anatomy,
                None if jitter is None else (jitter[0], cell),
            )  # fmt: skip
            values, _, flags = _evaluate(
                scene, sequence, table, more, np.repeat(soft_voxel[mixed], len(extra)),
                with_truth,
            )  # fmt: skip
            total[mixed] += values.reshape(-1, len(extra)).sum(axis=1)
            for name, flag in flags.items():
                sums[name][mixed] += flag.reshape(-1, len(extra)).sum(axis=1)
            count[mixed] += len(extra)
        signal[:, :, k] = (total / count).reshape(ni, nj)
        if fractions is not None:
            for name, value in sums.items():
                fractions[name][:, :, k] = (value / count).reshape(ni, nj)
    return signal, fractions
