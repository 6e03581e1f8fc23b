"""The follow-up's label maps on the baseline grid, body by body.

Each baseline body takes the follow-up maps through its own transform (see
:mod:`bmetoolkit.followup.register`), inside a box around it, and keeps the voxels of its
paired follow-up body: a bent spine is followed body by body. Labels are resampled by
nearest neighbour and keep their dtype.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.resample import coverage_mask, resample_to
from bmetoolkit.volume import Grid, Volume, grown_box

__all__ = ["box_grid", "common_field", "moved", "warp_labels"]

#: Margin (voxels) of the box around each baseline body.
BOX_MARGIN_VOXELS = (6, 6, 1)


def moved(volume: Volume, transform: NDArray[np.float64]) -> Volume:
    """``volume`` placed in baseline space (``transform``: baseline RAS -> follow-up RAS)."""
    return Volume(
        volume.data, np.linalg.inv(transform) @ volume.affine, kind=volume.kind,
        source=volume.source, meta=volume.meta,
    )  # fmt: skip


def box_grid(grid: Grid, box: tuple[slice, ...]) -> Grid:
    """The part ``box`` (voxel slices) of ``grid`` as a grid of its own."""
    start = np.array([s.start for s in box], dtype=np.float64)
    affine = grid.affine.copy()
    affine[:3, 3] = grid.affine[:3, :3] @ start + grid.affine[:3, 3]
    return Grid(tuple(s.stop - s.start for s in box), affine)


def warp_labels(
    maps: Mapping[str, Volume],
    baseline_bodies: Volume,
    pairs: Mapping[int, int],
    transforms: Mapping[int, NDArray[np.float64]],
) -> dict[str, Volume]:
    """The follow-up label maps on the baseline grid, each body through its own transform.

    Parameters
    ----------
    maps : dict of str to Volume
        Follow-up label maps, ``"vertebrae"`` among them.
    baseline_bodies : Volume
        Baseline body labels (the target grid).
    pairs : dict of int to int
        Baseline body id -> follow-up body id.
    transforms : dict of int to ndarray
        Baseline body id -> transform (baseline RAS -> follow-up RAS).

    Returns
    -------
    dict of str to Volume
        Same keys; ``vertebrae`` carries the **baseline** ids of the paired bodies; voxels
        outside every paired body are 0.
    """
    grid = baseline_bodies.grid
    out = {key: np.zeros(grid.shape, dtype=volume.data.dtype) for key, volume in maps.items()}
    out["vertebrae"] = np.zeros(grid.shape, dtype=baseline_bodies.data.dtype)
    labels = np.asarray(baseline_bodies.data)
    boxes = ndimage.find_objects(labels.astype(np.int32, copy=False))  # one pass for all bodies
    for body, other in pairs.items():
        if body < 1 or body > len(boxes) or boxes[body - 1] is None:
            continue  # not on the baseline grid: nothing to fill
        box = grown_box(boxes[body - 1], BOX_MARGIN_VOXELS, labels.shape)
        target = box_grid(grid, box)
        warped = {key: resample_to(moved(v, transforms[body]), target) for key, v in maps.items()}
        mine = np.asarray(warped["vertebrae"].data) == other
        for key, volume in warped.items():
            region = out[key][box]
            value = body if key == "vertebrae" else np.asarray(volume.data)
            region[mine] = value if np.isscalar(value) else value[mine]
    return {
        key: Volume(data, grid.affine, kind="label", source=f"follow-up {key} on baseline")
        for key, data in out.items()
    }


def common_field(baseline: Grid, followup: Grid, transform: NDArray[np.float64]) -> NDArray:
    """Baseline voxels inside the follow-up's field of view (after ``transform``)."""
    placed = Grid(followup.shape, np.linalg.inv(transform) @ followup.affine)
    return coverage_mask(placed, baseline)
