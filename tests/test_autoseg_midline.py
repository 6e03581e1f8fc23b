"""Bodies without a T1 joined to the tissue beside them, the canal under the skin, joined bodies.

Small synthetic canonical arrays (anterior, superior, right): each test builds the case the
rule is for and checks that the previous behaviour fails on it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg import canal as canal_module
from bmetoolkit.spine.autoseg import midline as midline_module
from bmetoolkit.spine.autoseg.bodies import split_bodies
from bmetoolkit.spine.autoseg.canal import find_canal
from bmetoolkit.spine.autoseg.levels import assign_levels
from bmetoolkit.spine.autoseg.midline import bodies_from_midline, split_from_midline
from tests.test_autoseg import LORDOSIS, SPACING, _shapes

PARAMS = AutosegParameters()
#: (AP, SI, LR) voxel size of the synthetic marrow masks: 1 mm in plane, 4 mm slices.
MASK_SPACING = np.array([1.0, 1.0, 4.0])
CANAL_WALL = 10  # AP index of the canal's anterior wall
BODIES_SI = ((10, 36), (46, 72))  # two 26 mm bodies, a 10 mm disc between
BODY_FRONT = 42  # AP index of the bodies' anterior wall (32 mm deep)


def _joined_through_lateral_slices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marrow-like mask: two bodies and the tissue in front, apart only near the midline.

    Returns the mask, the distance (mm) in front of the canal wall and the wall per row.
    The tissue in front spans the whole SI extent; a one-voxel dark anterior cortex
    separates it from the bodies on the three mid-sagittal slices only (LR 6-8 of 15), as
    when the wall runs through the lateral 4 mm slices and is lost to partial volume.
    """
    marrow = np.zeros((90, 82, 15), bool)
    for low, high in BODIES_SI:
        marrow[CANAL_WALL + 2 : BODY_FRONT, low:high, 1:14] = True
    marrow[BODY_FRONT:88, :, :] = True  # the tissue in front, with the marrow's T2 signal
    marrow[BODY_FRONT, :, 6:9] = False  # the anterior cortex, seen near the midline only
    distance = np.repeat(
        ((np.arange(90) - CANAL_WALL) * MASK_SPACING[0])[:, None], 82, axis=1
    ).astype(np.float32)
    return marrow, distance, np.full(82, float(CANAL_WALL))


def test_bodies_joined_to_the_tissue_in_front_through_lateral_slices_are_kept_apart():
    marrow, distance, front = _joined_through_lateral_slices()
    # Seeds labelled in 3D: bodies and tissue are one component, too deep for a body.
    assert split_bodies(marrow, distance, front, MASK_SPACING, PARAMS).max() == 0
    bodies = split_from_midline(marrow, distance, front, 7.0, MASK_SPACING, PARAMS)
    assert bodies.max() == 2
    mid = bodies[:, :, 6:9]
    for label in (1, 2):
        ap, si, _ = np.nonzero(mid == label)
        assert ap.max() < BODY_FRONT  # nothing of the tissue in front on the mid slices
        assert any(low <= si.min() and si.max() < high for low, high in BODIES_SI)


def test_a_body_joined_to_the_tissue_along_its_whole_wall_is_found_within_the_others_depth():
    """The second pass: one body has no dark wall at all; it is cut at its neighbours' depth."""
    marrow, distance, front = _joined_through_lateral_slices()
    marrow = np.concatenate([marrow, np.zeros((90, 40, 15), bool)], axis=1)
    marrow[BODY_FRONT:88, 82:, :] = True
    marrow[CANAL_WALL + 2 : BODY_FRONT, 82:108, 1:14] = True  # a body whose wall is not seen
    marrow[BODY_FRONT, 72:82, 6:9] = False  # the cortex line ends at the second body
    distance = np.repeat(distance[:, :1], marrow.shape[1], axis=1)
    front = np.full(marrow.shape[1], float(CANAL_WALL))
    first = split_from_midline(marrow, distance, front, 7.0, MASK_SPACING, PARAMS)
    both = bodies_from_midline(marrow, distance, front, 7.0, MASK_SPACING, PARAMS)
    assert first.max() == 2  # the body without a wall is joined to the tissue: dropped
    assert both.max() == 3
    ap, si, _ = np.nonzero(both[:, :, 6:9] == 3)  # on the mid-sagittal slices
    assert si.min() >= 82 - 1 and ap.max() <= BODY_FRONT + 2


def _three_bodies(mid_rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three 26 mm bodies, 10 mm discs; on the mid-sagittal slab (LR 6-8) the middle body
    keeps its marrow only on slice 7 and there only on ``mid_rows`` (a basivertebral vein
    on 6 and 8, a bright lesion band at its superior endplate: outside the marrow band)."""
    si = ((10, 36), (46, 72), (82, 108))
    marrow = np.zeros((60, 118, 15), bool)
    for low, high in si:
        marrow[CANAL_WALL + 2 : BODY_FRONT, low:high, 1:14] = True
    marrow[CANAL_WALL + 2 : BODY_FRONT, 46:72, 6:9] = False
    marrow[CANAL_WALL + 2 : BODY_FRONT, mid_rows, 7] = True
    distance = np.repeat(
        ((np.arange(60) - CANAL_WALL) * MASK_SPACING[0])[:, None], 118, axis=1
    ).astype(np.float32)
    return marrow, distance, np.full(118, float(CANAL_WALL))


def _alone_kept(marrow: np.ndarray, distance: np.ndarray, front: np.ndarray) -> np.ndarray:
    """The mid-slab bodies with the seeds alone at their level kept (a STIR alone)."""
    return split_from_midline(marrow, distance, front, 7.0, MASK_SPACING, PARAMS, alone=True)


def test_a_small_mid_slab_seed_alone_at_its_level_is_a_body():
    """Its mid-slab seed is under the volume floor (set for seeds labelled in 3D), but no
    other seed covers its level: it is kept and grows back over its marrow there."""
    marrow, distance, front = _three_bodies(slice(56, 72))
    bodies = _alone_kept(marrow, distance, front)
    assert bodies.max() == 3
    label = bodies[26, 64, 7]
    assert label > 0 and bodies[26, 23, 7] != label and bodies[26, 95, 7] != label
    _, si, _ = np.nonzero(bodies == label)
    assert 46 <= si.min() and si.max() < 72
    assert (bodies[:, 56:72, 7] == label).sum() > 0.8 * marrow[:, 56:72, 7].sum()
    before = split_from_midline(marrow, distance, front, 7.0, MASK_SPACING, PARAMS)
    assert before.max() == 2  # without the rule (a plain T2 alone): the body is lost


def test_a_small_shallow_seed_or_a_fragment_at_a_found_level_is_not_a_body(monkeypatch):
    # Shallow (10 mm of the 30 mm the other seeds reach): a disc's annulus, a strip.
    marrow, distance, front = _three_bodies(slice(56, 72))
    marrow[CANAL_WALL + 12 : BODY_FRONT, 46:72, 7] = False
    assert _alone_kept(marrow, distance, front).max() == 2
    # A fragment at a level a kept seed covers: the first body's mid slab split by a vein
    # (slice 7) into its seed (slice 8) and a smaller piece on slice 6; the piece is as deep.
    marrow, distance, front = _three_bodies(slice(46, 72))
    marrow[:, 10:36, 6:8] = False
    marrow[CANAL_WALL + 2 : BODY_FRONT, 18:32, 6] = True
    assert _alone_kept(marrow, distance, front).max() == 3
    monkeypatch.setattr(midline_module, "SAME_LEVEL_FRACTION", 1.0)  # levels not compared
    assert _alone_kept(marrow, distance, front).max() == 4


# --- the canal without a T1 is not the fat under the skin -------------------------------------


def _canal_and_fat_under_skin() -> np.ndarray:
    """A 1 mm volume: a CSF tube deep inside, and a brighter fat strip under the skin.

    The strip is tube-shaped too (6 mm deep, 24 mm wide, not across the slab, longer than
    the canal), with air behind it.
    """
    image = np.zeros((90, 100, 60), np.float32)
    image[8:, :, :] = 100.0  # tissue; the first 8 AP rows are air behind the skin
    image[8:14, 2:98, 18:42] = 600.0  # subcutaneous fat, brighter than CSF on this T2
    image[50:62, 10:90, 23:37] = 400.0  # the thecal sac, 80 mm long, far from any air
    return image


def test_the_canal_without_a_t1_is_not_the_fat_under_the_skin(monkeypatch):
    image = _canal_and_fat_under_skin()
    spacing = np.ones(3)
    canal = find_canal(None, image, spacing, PARAMS)
    rows = canal.mask.any(axis=(1, 2))
    assert 50 <= np.flatnonzero(rows).min() and np.flatnonzero(rows).max() < 62
    monkeypatch.setattr(canal_module, "SKIN_AIR_FRACTION", 2.0)  # the check disabled
    fooled = find_canal(None, image, spacing, PARAMS)
    assert np.flatnonzero(fooled.mask.any(axis=(1, 2))).max() < 14  # the fat, as before


# --- levels withheld when two bodies are joined -----------------------------------------------


@pytest.mark.parametrize("factor, withheld", [(1.0, False), (1.25, False), (2.0, True)])
def test_levels_are_withheld_when_one_body_is_two_joined(factor, withheld):
    """Counting up from the sacrum across two bodies joined into one names every level
    above it wrongly; a tilted S1 (its section about 1.3 times as tall) does not count."""
    empty = np.zeros((80, 400, 10), bool)
    shapes = [replace(s, height_mm=26.0) for s in _shapes(LORDOSIS)]
    shapes[2] = replace(shapes[2], height_mm=26.0 * factor)
    result = assign_levels(shapes, empty, SPACING, PARAMS)
    assert result.evidence["is_sacrum"]
    assert (result.anchor is None) == withheld
    assert ("levels_withheld" in result.evidence) == withheld
    if withheld:
        assert any("two bodies joined" in note for note in result.notes)
