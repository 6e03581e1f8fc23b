"""At the edge of the T1's field of view, a resampled image mixes in what lies beyond it.

Two block "bones" face each other across a joint (as in ``test_bones_rules``) and reach the
T1's last slice (3 mm slices, its field of view ends at z = 46.5 mm). The STIR is acquired on
its own grid of 6 mm slices that reaches 6 mm further, where a layer as bright as 4 x normal
marrow lies beyond the T1's field of view (a joint, cartilage and fluid: the bone masks, drawn
on the T1, say nothing of it). Resampled onto the T1 grid, the STIR's last slice brightens the
T1's last slice to about 1.75 x normal marrow over the whole bone: no edema is there.
"""

from __future__ import annotations

import numpy as np

import bmetoolkit as bt
from bmetoolkit.volume import Volume

SPACING = np.array([0.8, 0.8, 3.0])
SHAPE = (80, 70, 16)  # T1 slice centres at z = 0, 3, ... 45 mm
STIR_SLICE_MM, STIR_ORIGIN_MM, STIR_SLICES = 6.0, -4.5, 10  # centres -4.5 ... 49.5 mm
FOV_END_MM = (SHAPE[2] - 0.5) * SPACING[2]  # 46.5 mm
MARROW = {"t1": 1000.0, "stir": 120.0}
BEYOND_RATIO = 4.0
BONE_J = slice(8, 62)


def _bones() -> np.ndarray:
    bones = np.zeros(SHAPE, np.uint8)
    bones[5:38, BONE_J, 2:] = 1  # to the T1's last slice
    bones[42:75, BONE_J, 2:] = 2
    return bones


def _scene(lesion: np.ndarray | None = None, stir_ratio: float = 1.9, seed: int = 0):
    """T1 and STIR volumes (on their own grids) and the bone labels; ``lesion`` (T1 grid
    voxels of bone) painted at ``stir_ratio`` on the STIR and 0.8 on the T1."""
    rng = np.random.default_rng(seed)
    bones = _bones()
    footprint = bones.max(axis=2) > 0
    t1 = np.full(SHAPE, 450.0)
    t1[bones > 0] = MARROW["t1"]
    t1[38:42, BONE_J, 2:] = 150.0  # joint fluid
    # The STIR along z at 0.5 mm, then averaged over each of its 6 mm slices.
    z = np.arange(STIR_ORIGIN_MM - 3.0 + 0.25, STIR_ORIGIN_MM + STIR_SLICES * 6.0 - 3.0, 0.5)
    k = np.clip(np.round(z / SPACING[2]).astype(int), 0, SHAPE[2] - 1)
    fine = np.full((*SHAPE[:2], z.size), 260.0)
    in_bone = (bones[:, :, k] > 0) & (z <= FOV_END_MM)
    fine[in_bone] = MARROW["stir"]
    fine[38:42, BONE_J][:, :, (z > 4.5) & (z <= FOV_END_MM)] = 2400.0
    beyond = footprint[:, :, None] & (z > FOV_END_MM)
    fine[np.broadcast_to(beyond, fine.shape)] = BEYOND_RATIO * MARROW["stir"]
    if lesion is not None:
        t1[lesion] = 0.8 * MARROW["t1"]
        fine[lesion[:, :, k] & (z <= FOV_END_MM)] = stir_ratio * MARROW["stir"]
    stir = fine.reshape(*SHAPE[:2], STIR_SLICES, -1).mean(axis=3)
    t1 += rng.normal(0, 0.03 * MARROW["t1"], t1.shape)
    stir += rng.normal(0, 0.03 * MARROW["stir"], stir.shape)
    stir_affine = np.diag([*SPACING[:2], STIR_SLICE_MM, 1.0])
    stir_affine[2, 3] = STIR_ORIGIN_MM
    return (
        Volume(np.abs(t1).astype(np.float32), np.diag([*SPACING, 1.0]), source="t1"),
        Volume(np.abs(stir).astype(np.float32), stir_affine, source="stir"),
        Volume(bones, np.diag([*SPACING, 1.0]), kind="label", source="bones"),
    )


def _analyze(t1, stir, bones):
    return bt.analyze(t1, stir=stir, marrow=bones, verify_roles=False)


def test_the_stir_mixed_with_what_lies_beyond_the_t1_field_of_view_is_not_edema():
    t1, stir, bones = _scene()
    result = _analyze(t1, stir, bones)
    ratio = np.asarray(result.ratios["stir"].data)
    assert np.nanmedian(ratio[:, :, -1]) > 1.5  # the last slice looks like edema
    assert result.bme_volume_ml == 0  # (6.2 mL when the edge stood for what lies beyond)


def test_edema_reaching_the_edge_of_the_field_of_view_is_found():
    lesion = np.zeros(SHAPE, bool)
    lesion[22:37, 20:45, 9:] = True  # 12 x 20 mm under the joint, from slice 9 to the edge
    t1, stir, bones = _scene(lesion)
    found = np.asarray(_analyze(t1, stir, bones).bme_mask.data, bool)
    assert np.count_nonzero(found & lesion) > 0.8 * np.count_nonzero(lesion)
    assert not (found & ~lesion & (np.indices(SHAPE)[2] < SHAPE[2] - 2)).any()
