"""A body's wall read as a faint dark line on the T2 alone, the tissue beyond it cut.

Small synthetic bodies (1 mm voxels): marrow with its own texture, a one-voxel cortex only
0.8 of the marrow (lighter than the 0.7 that makes a voxel dark for the marrow mask) and
tissue of the marrow's signal in front of and behind it, which the segment ran into (the
pelvis-and-bowel cases of session 35 whose every body came out 1.3-1.9 times too large).
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.spine.autoseg.wall_cortex import cut_beyond_wall_cortex, wall_cut_depths
from tests.helpers import record_calls, segment_small_phantom_without_t1

SPACING = np.ones(3)
SHAPE = (60, 40, 30)
BODY_AP = (20, 45)  # the body's true AP extent, its cortex on the first and last voxel
BODY_SI = slice(8, 32)
BODY_LR = slice(5, 25)


def _case(seed: int = 0, cortex: float = 0.8, taken: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The T2 and a segment holding the body and ``taken`` voxels of tissue beyond each wall."""
    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 3.0, SHAPE)  # the tissue around: the marrow's signal
    body = (slice(BODY_AP[0], BODY_AP[1] + 1), BODY_SI, BODY_LR)
    image[body] = rng.normal(95.0, 4.0, image[body].shape)  # marrow with its texture
    for ap in BODY_AP:
        image[ap, BODY_SI, BODY_LR] = rng.normal(95.0 * cortex, 3.0, (24, 20))  # a thin wall
    bodies = np.zeros(SHAPE, np.int32)
    bodies[BODY_AP[0] - taken : BODY_AP[1] + taken + 1, BODY_SI, BODY_LR] = 1
    return image, bodies


def _truth() -> np.ndarray:
    truth = np.zeros(SHAPE, bool)
    truth[BODY_AP[0] : BODY_AP[1] + 1, BODY_SI, BODY_LR] = True
    return truth


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_tissue_beyond_a_faint_wall_is_cut_to_the_wall() -> None:
    image, bodies = _case()
    out, evidence = cut_beyond_wall_cortex(bodies, image, SPACING)
    truth = _truth()
    assert _dice(bodies > 0, truth) < 0.87  # 4 mm of tissue in front and behind
    assert _dice(out > 0, truth) > 0.97
    assert evidence["bodies_cut"] == 1 and evidence["voxels_removed"] > 0
    rows = (out > 0)[:, 20, 15]  # a line through the middle of both walls
    assert np.flatnonzero(rows).min() == BODY_AP[0] and np.flatnonzero(rows).max() == BODY_AP[1]


def test_a_body_ending_at_its_wall_is_unchanged() -> None:
    image, bodies = _case(taken=0)
    out, evidence = cut_beyond_wall_cortex(bodies, image, SPACING)
    assert np.array_equal(out, bodies)
    assert evidence == {"bodies_cut": 0, "voxels_removed": 0}


def test_no_line_where_the_wall_is_as_bright_as_the_marrow() -> None:
    image, bodies = _case(cortex=1.0)  # no wall shows: nothing is read as one
    out, _ = cut_beyond_wall_cortex(bodies, image, SPACING)
    assert np.array_equal(out, bodies)


def test_a_dark_voxel_on_one_line_alone_cuts_nothing() -> None:
    image, bodies = _case(cortex=1.0)
    image[BODY_AP[1] - 3, 20, 15] = 60.0  # a dark spot inside the body, on one line only
    face, depth = wall_cut_depths(bodies == 1, image, SPACING, 5.0, 1)
    assert face[20, 15] == BODY_AP[1] + 4
    assert not depth.any()


def test_an_endplate_is_not_read_as_a_wall() -> None:
    """A face running at more than 45 degrees to the column's axis (two voxels forward per
    row) with a dark line parallel to it inside (an endplate and the disc's annulus seen
    obliquely): the lines cross it obliquely, nothing is read there. The same line on a
    wall (the face straight along the axis) is cut."""
    rng = np.random.default_rng(1)
    image = rng.normal(100.0, 3.0, SHAPE)
    bodies = np.zeros(SHAPE, np.int32)
    for si in range(BODY_SI.start, BODY_SI.stop):
        face = 10 + 2 * (si - BODY_SI.start)
        bodies[5 : face + 1, si, BODY_LR] = 1
        image[face - 4, si, BODY_LR] = 80.0
    _, depth = wall_cut_depths(bodies == 1, image, SPACING, 5.0, 1)
    assert not depth.any()
    straight = np.zeros(SHAPE, np.int32)
    straight[5:40, BODY_SI, BODY_LR] = 1
    image[:, BODY_SI, BODY_LR] = rng.normal(100.0, 3.0, (SHAPE[0], 24, 20))
    image[35, BODY_SI, BODY_LR] = 80.0
    _, depth = wall_cut_depths(straight == 1, image, SPACING, 5.0, 1)
    assert depth[20, 15] == 4


def test_the_parameter_is_on_and_documented() -> None:
    params = AutosegParameters()
    assert params.t2_wall_cortex is True
    assert "t2_wall_cortex" in (AutosegParameters.__doc__ or "")


@pytest.mark.parametrize("stir_alone", [True, False])
@pytest.mark.parametrize("on", [True, False])
def test_segment_bodies_cuts_at_the_wall_from_a_plain_t2_only(monkeypatch, stir_alone, on):
    """Wired into :func:`segment_bodies`: on the plain T2 path (a T2, no T1) when on; not
    from a STIR alone."""
    calls = record_calls(monkeypatch, autoseg, "cut_beyond_wall_cortex")
    segment_small_phantom_without_t1(stir_alone, AutosegParameters(t2_wall_cortex=on))
    assert len(calls) == (1 if on and not stir_alone else 0)


def _rounded_front(seed: int, wall: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A body on 4 mm left-right sections whose anterior wall curves back a voxel per
    section away from the middle one (a rounded front), the segment's face flat in front of
    it (3-6 voxels past the wall, as a segment runs on into tissue of the marrow's signal)."""
    rng = np.random.default_rng(seed)
    shape = (60, 40, 7)
    image = rng.normal(100.0, 3.0, shape)  # the tissue in front: the marrow's signal
    bodies = np.zeros(shape, np.int32)
    fronts = [45 - abs(lr - 3) for lr in range(shape[2])]
    for lr, front in enumerate(fronts):
        image[10:front, 8:32, lr] = rng.normal(95.0, 4.0, (front - 10, 24))
        if wall:
            image[front, 8:32, lr] = rng.normal(76.0, 3.0, 24)
    bodies[10:49, 8:32, :] = 1
    return image, bodies, fronts


def test_on_thick_sections_a_rounded_front_is_cut_on_every_section() -> None:
    """The lines agree over 5 mm of the face, not over 5 sections: across 20 mm of a
    rounded front the wall lies at depths 3-6 voxels inside a flat face, and the median
    profile of 5 sections loses it (tuning seed 168, 3.3 mm sections: the anterior walls,
    0.55-0.75 of the marrow, were left uncut on most lines). On one section the lines are
    taken along the wall (superior-inferior) instead."""
    image, bodies, fronts = _rounded_front(0, wall=True)
    out, _ = cut_beyond_wall_cortex(bodies, image, np.array([1.0, 1.0, 4.0]))
    for lr, front in enumerate(fronts):
        assert np.flatnonzero(out[:, 20, lr]).max() == front, lr


def test_on_thick_sections_noise_alone_cuts_nothing() -> None:
    for seed in range(1, 6):
        image, bodies, _ = _rounded_front(seed, wall=False)
        _, evidence = cut_beyond_wall_cortex(bodies, image, np.array([1.0, 1.0, 4.0]))
        assert evidence["voxels_removed"] == 0, seed
