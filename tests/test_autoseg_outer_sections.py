"""Each body's outermost lateral section read by partial volume (STIR alone)."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.lateral_half import add_outer_sections, trim_outer_sections

SPACING = np.array([1.0, 1.0, 4.0])  # canonical (AP, SI, LR): 4 mm sagittal slices
MARROW, MUSCLE = 40.0, 100.0  # suppressed marrow darker than the muscle beside the body
N_SECTIONS = 11
SUPERSAMPLE = 8


def _elliptic_body(noise: float = 0.0, seed: int = 0):
    """A body whose axial section is an ellipse (semi-axes 16 mm AP, 21 mm LR), rendered on
    4 mm slices with partial volume across each slice; the truth a voxel at least half
    inside, as the phantoms' truth and a reader; the bodies as a segmentation that took
    every section holding any marrow whole, over the body's widest footprint."""
    ap = np.arange(40) - 19.5  # mm from the centre, 1 mm pixels
    lr = (np.arange(N_SECTIONS * SUPERSAMPLE) + 0.5) / SUPERSAMPLE * 4.0 - N_SECTIONS * 2.0
    inside = (ap[:, None] / 16.0) ** 2 + (lr[None, :] / 21.0) ** 2 <= 1.0  # (AP, LR samples)
    fraction = inside.reshape(40, N_SECTIONS, SUPERSAMPLE).mean(axis=2)  # per (AP, section)
    fraction = np.repeat(fraction[:, None, :], 30, axis=1)  # 30 mm tall along SI
    image = MUSCLE + (MARROW - MUSCLE) * fraction
    # muscle above, below and one section beyond each side
    image = np.pad(image, ((0, 0), (5, 5), (1, 1)), constant_values=MUSCLE).astype(np.float32)
    fraction = np.pad(fraction, ((0, 0), (5, 5), (1, 1)))
    if noise:
        image += np.random.default_rng(seed).normal(0.0, noise, image.shape).astype(np.float32)
    truth = fraction >= 0.5
    footprint = (fraction > 0).any(axis=2, keepdims=True) & (fraction > 0).any(axis=(0, 1))
    bodies = footprint.astype(np.int32)
    return image, bodies, truth


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.mark.parametrize("noise", [0.0, 6.0])
def test_the_outer_sections_keep_what_is_mostly_bone(noise):
    image, bodies, truth = _elliptic_body(noise)
    trimmed, evidence = trim_outer_sections(bodies, image, SPACING)
    outer = [1, N_SECTIONS]
    assert evidence["sides"] == 2 and evidence["voxels_removed"] > 0
    before = _dice(bodies[:, :, outer] > 0, truth[:, :, outer])
    after = _dice(trimmed[:, :, outer] > 0, truth[:, :, outer])
    assert after > before + 0.15  # the sections' tissue went, their bone stayed
    assert _dice(trimmed > 0, truth) > _dice(bodies > 0, truth)
    # Only the two outermost sections are read.
    assert (trimmed[:, :, 2:-2] == bodies[:, :, 2:-2]).all()


def test_a_lesion_brighter_than_the_muscle_in_the_outer_section_stays():
    image, bodies, _ = _elliptic_body()
    lesion = np.zeros(image.shape, bool)
    lesion[15:25, 15:25, N_SECTIONS] = True
    image[lesion] = 2.5 * MUSCLE  # edema on a STIR, far brighter than muscle
    trimmed, _ = trim_outer_sections(bodies, image, SPACING)
    # its rim, smoothed with the tissue around it over the voxel's 2 mm, may go
    assert (trimmed[16:24, 16:24, N_SECTIONS] == 1).all()
    assert (trimmed[lesion] == 1).mean() > 0.85


def test_without_contrast_to_the_tissue_beyond_nothing_is_removed():
    image, bodies, _ = _elliptic_body()
    image[:] = MARROW  # the tissue beside the body as dark as its marrow: nothing to read
    trimmed, evidence = trim_outer_sections(bodies, image, SPACING)
    assert (trimmed == bodies).all() and evidence["voxels_removed"] == 0


def test_a_side_at_the_image_edge_or_beyond_the_image_is_left_as_it_is():
    image, bodies, _ = _elliptic_body()
    image[:, :, 0] = 0.0  # the section beyond the left side not imaged (no signal)
    image, bodies = image[:, :, :-1].copy(), bodies[:, :, :-1].copy()  # right: at the edge
    trimmed, evidence = trim_outer_sections(bodies, image, SPACING)
    assert evidence["sides"] == 0 and (trimmed == bodies).all()


def test_on_by_default_for_a_stir_alone():
    params = AutosegParameters()
    assert params.suppressed_outer_sections and params.suppressed_outer_added


def test_the_cortex_beside_the_wall_is_read_as_bone_not_the_marrow_alone():
    # The section beside the body reads 68, 0.53 of the way from the muscle (100) to the
    # marrow (40): mostly bone if bone were marrow. A body with a dark cortex (10) holds a
    # darker bone: against it the section is 0.36 of the way, mostly tissue, not added.
    spacing = np.array([1.0, 1.0, 4.0])
    image = np.full((20, 20, 9), 100.0, np.float32)
    image[5:15, 5:15, 2:6] = 40.0
    image[5:15, 5:15, 6] = 68.0
    bodies = np.zeros(image.shape, np.int32)
    bodies[5:15, 5:15, 2:6] = 1
    marrow_only, _ = add_outer_sections(bodies, image, spacing)
    image[5:15, 5:15, 2] = image[5:15, 5:15, 5] = 10.0  # the body's cortex at its sides
    with_cortex, _ = add_outer_sections(bodies, image, spacing)
    assert marrow_only[7:13, 7:13, 6].all()
    assert not with_cortex[:, :, 6].any()


# --- with a T1: the section holding the wall added from the fat-suppressed image -------------


@pytest.mark.parametrize("noise", [0.0, 6.0])
def test_the_section_holding_the_wall_is_added_where_mostly_bone(noise):
    image, _, truth = _elliptic_body(noise)
    fraction = (MUSCLE - _elliptic_body()[0]) / (MUSCLE - MARROW)
    # As the T1 path finds them: only the voxels wholly marrow (on the T1 the partial
    # sections, cortex and muscle mixed in, are dark)
    bodies = (fraction > 0.99).astype(np.int32)
    grown, evidence = add_outer_sections(bodies, image, SPACING)
    added = (grown == 1) & (bodies == 0)
    assert evidence["sides"] == 2 and evidence["voxels_added"] == int(added.sum()) > 0
    assert _dice(grown > 0, truth) > _dice(bodies > 0, truth) + 0.03
    assert (added & truth).sum() > 0.8 * added.sum()  # what is added is mostly true body
    assert not (added & (fraction == 0)).any()  # never pure tissue


def test_nothing_is_added_without_the_tissue_section_in_the_image():
    image, _, truth = _elliptic_body()
    bodies = truth.astype(np.int32)
    bodies, image = bodies[:, :, :-1], image[:, :, :-1]
    # each side of the body reaches the image's edge, or the section next to it: no
    # tissue section two beyond it to read the bone against
    grown, evidence = add_outer_sections(bodies, image, SPACING)
    assert (grown == bodies).all() and evidence["sides"] == 0


def test_with_a_t1_opt_in():
    # the analysis on these bodies measured the edema worse on tuning seeds (session 40)
    assert not AutosegParameters().fluid_outer_sections
