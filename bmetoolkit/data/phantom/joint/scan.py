"""Sampling a joint case on an acquisition grid: signal and truth fractions, slice by slice.

Each voxel is sampled at a few points (through the slice thickness), each placed at random
in its own cell of the voxel (stratified sampling). At every sample the anatomy gives a
tissue and a bone; lesions of that bone blend into its marrow by their soft membership
(islands scale the marrow signal, edema and bruises move it to their own signal, a cyst to
the joint fluid's); the marrow mottles. The voxel's signal is the mean of its samples'
(partial volume). Truth counts, per voxel, the samples
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


def _slice_points(
    grid: Grid,
    k: int,
    offsets: NDArray[np.float64],
    anatomy: JointAnatomy,
    jitter: tuple[np.random.Generator, NDArray[np.float64]] | None = None,
) -> NDArray[np.float32]:
    """Knee-frame points of every sample of slice ``k``, ordered (i, j, sample), (N, 3).

    ``jitter`` (a generator and the size of each sample's cell along i, j, k, in index
    units) moves every sample to a random place in its cell: stratified sampling, so a
    surface cut at a grazing angle blurs instead of repeating as parallel contours.
    """
    ni, nj, _ = grid.shape
    i, j = np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij")
    base = np.stack([i, j, np.full_like(i, k)], axis=-1).astype(np.float32)
    ijk = base[:, :, None, :] + offsets[None, None].astype(np.float32)
    if jitter is not None:
        rng, cell = jitter
        shake = rng.random((ni, nj, len(offsets), 3), dtype=np.float32) - np.float32(0.5)
        ijk += shake * cell.astype(np.float32)
    return transform(ijk.reshape(-1, 3), *anatomy.frame.voxel_to_local(grid.affine))


def _slice_soft_tissue(grid: Grid, k: int, n_samples: int, anatomy: JointAnatomy) -> NDArray:
    """Soft tissue at the voxel centres of slice ``k``, repeated for each sample."""
    centres = _slice_points(grid, k, np.zeros((1, 3)), anatomy)
    return np.repeat(anatomy.soft_tissue(centres), n_samples)


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
    order = {"island": 0, "edema": 1, "bruise": 1, "cyst": 2}
    for lesion, where, weight in sorted(layers, key=lambda layer: order[layer[0].kind]):
        if lesion.kind == "island":
            signal[where] *= 1 + (np.float32(lesion.ratios[sequence]) - 1) * weight
            continue
        target = table[T.FLUID] if lesion.kind == "cyst" else marrow_base * lesion.ratios[sequence]
        signal[where] += weight * (np.float32(target) - signal[where])
    return signal


def _truth(bone: NDArray, tissue: NDArray, layers: list) -> dict[str, NDArray[np.bool_]]:
    flags = {name: np.zeros(bone.shape, bool) for name in ("bme", "cyst", "island")}
    for lesion, where, weight in layers:
        name = "bme" if lesion.kind in EDEMA_KINDS else lesion.kind
        flags[name][where[weight >= TRUTH_MEMBERSHIP]] = True
    flags["bme"] &= ~flags["cyst"]
    flags["island"] &= ~(flags["bme"] | flags["cyst"])
    flags["marrow"] = tissue == T.MARROW
    return flags


def scan(
    scene: Scene,
    grid: Grid,
    offsets: NDArray[np.float64],
    *,
    sequence: str,
    table: NDArray[np.float32],
    with_truth: bool,
    jitter: tuple[np.random.Generator, NDArray[np.float64]] | None = None,
) -> tuple[NDArray[np.float32], dict[str, NDArray[np.uint8]] | None]:
    """Noise-free signal of a grid, and per-voxel truth sample counts when asked.

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

    Returns
    -------
    signal : ndarray of float32, grid shape
    counts : dict of str to ndarray of uint8, or None
        Samples per voxel inside each bone (keys ``"bone1"``...) and in each of
        :data:`TRUTH_LAYERS`; divide by ``len(offsets)`` for fractions.
    """
    ni, nj, nk = grid.shape
    n = len(offsets)
    signal = np.zeros(grid.shape, np.float32)
    names = [f"bone{b}" for b in scene.anatomy.bones] + list(TRUTH_LAYERS)
    counts = {name: np.zeros(grid.shape, np.uint8) for name in names} if with_truth else None
    for k in range(nk):
        local = _slice_points(grid, k, offsets, scene.anatomy, jitter)
        soft = _slice_soft_tissue(grid, k, n, scene.anatomy)
        tissue, bone, _ = scene.anatomy.classify_local(local, soft)
        layers = _memberships(scene, local, tissue, bone)
        values = _signal(scene, sequence, table, local, tissue, layers)
        signal[:, :, k] = values.reshape(ni, nj, n).mean(axis=-1)
        if counts is not None:
            flags = {f"bone{b}": bone == b for b in scene.anatomy.bones}
            flags |= _truth(bone, tissue, layers)
            for name, flag in flags.items():
                counts[name][:, :, k] = flag.reshape(ni, nj, n).sum(axis=-1)
    return signal, counts
