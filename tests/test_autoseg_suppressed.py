"""Bodies from a fat-suppressed image alone stop at the marrow, the discs and the walls.

(autoseg/suppressed.py, joined.py.)

Synthetic canonical arrays (anterior, superior, right). On a STIR suppressed marrow is the
darkest large tissue in front of the canal; muscle beside and in front of the bodies, the
discs and the tissue in front of narrow (thoracic) bodies are brighter.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.spine.autoseg import find_vertebral_bodies
from bmetoolkit.spine.autoseg.bodies import fluid_marrow_mask
from bmetoolkit.spine.autoseg.joined import split_joined
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.spine.autoseg.suppressed import (
    cut_disc_ends_then_sections,
    no_brighter_than_marrow,
    trim_bright_sections,
)
from bmetoolkit.study import Study
from tests.test_autoseg import label_dice
from tests.test_autoseg_fluid_only import NoT1Study

PARAMS = AutosegParameters()
SPACING = np.array([1.0, 1.0, 3.0])


def _strip(marrow_share: float) -> tuple[np.ndarray, np.ndarray]:
    """A column 40 AP x 60 SI x 5 LR: marrow (1.0) in front of the canal over
    ``marrow_share`` of its depth, brighter tissue (2.5: discs, vessels, bowel) beyond."""
    rng = np.random.default_rng(0)
    image = np.full((40, 60, 5), 2.5, np.float32)
    image[: round(40 * marrow_share)] = 1.0
    image += rng.normal(0.0, 0.03, image.shape).astype(np.float32)
    return image, np.ones(image.shape, bool)


def test_the_marrow_level_is_read_low_where_brighter_tissue_fills_half_the_strip():
    """In rows where bright tissue fills 55 % of the strip, its median is that tissue and
    the marrow, under 0.7 of it, was lost; the 30th percentile is the marrow."""
    image, column = _strip(0.45)
    median = fluid_marrow_mask(image, column, column, SPACING, PARAMS)
    assert median[:18].mean() < 0.05
    low = fluid_marrow_mask(
        image, column, column, SPACING, PARAMS, PARAMS.suppressed_reference_percentile
    )
    assert low[2:16, 2:-2].mean() > 0.95  # the marrow, inside the opening's rim
    assert not low[20:].any()  # not the bright tissue


def _column_darker_at_the_top(top_marrow: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column 30 AP x 320 SI x 5 LR at 1 mm: bodies of marrow (1.0) between bright discs
    (1.5, 10 mm) with a dark endplate (0.4, 2 mm) on each side; the marrow of the top 70 mm
    reads ``top_marrow`` (weaker signal towards the coil's edge). Returns the image, the
    column and the SI profile drawn."""
    profile = np.ones(320, np.float32)
    for start in range(30, 320, 40):
        profile[start : start + 10] = 1.5
        profile[start - 2 : start] = profile[start + 10 : start + 12] = 0.4
    profile[(profile == 1.0) & (np.arange(320) >= 250)] = top_marrow
    image = np.broadcast_to(profile[None, :, None], (30, 320, 5)).copy()
    image += np.random.default_rng(0).normal(0.0, 0.03, image.shape).astype(np.float32)
    return image, np.ones(image.shape, bool), profile


def test_the_marrow_level_follows_a_slow_fall_along_the_column_not_the_endplates():
    """Marrow a fifth darker at the top of the field was set aside as a disc row (under 0.85
    of the column's level) and lost; counted unless it lies in a dip narrower than
    ``suppressed_reference_dip_mm``, it is found, and the endplates stay out."""
    image, column, profile = _column_darker_at_the_top(0.72)
    level = PARAMS.suppressed_reference_percentile
    found = {}
    for dip in (0.0, PARAMS.suppressed_reference_dip_mm):
        marrow = fluid_marrow_mask(image, column, column, SPACING, PARAMS, level, dip)
        share = marrow.mean(axis=(0, 2))
        found[dip] = share[profile == 0.72].mean()
        assert share[profile == 1.0].mean() > 0.9
        assert not marrow[:, profile == 0.4].any()
    assert found[0.0] < 0.05
    assert found[PARAMS.suppressed_reference_dip_mm] > 0.7


def _body_and_muscle(muscle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marrow (1.0) in the 20 mm in front of the canal, muscle of signal ``muscle`` in front
    of it; a marrow mask (the T2's band around the strip's median) that took both in, and
    the strip near the canal where the marrow level is read (mostly the body)."""
    image = np.ones((40, 60, 5), np.float32)
    image[20:] = muscle
    near = np.zeros(image.shape, bool)
    near[:25] = True
    return image, np.ones(image.shape, bool), near


def test_muscle_brighter_than_the_marrow_is_left_out():
    image, marrow, near = _body_and_muscle(1.35)
    kept = no_brighter_than_marrow(marrow, image, near, SPACING, PARAMS)
    assert kept[:18].all()
    assert not kept[22:].any()


def test_tissue_as_dark_as_the_marrow_is_kept():
    """Where muscle has the marrow's signal (red marrow, or a scan where they match), the
    step changes nothing: no signal tells them apart."""
    image, marrow, near = _body_and_muscle(1.05)
    assert no_brighter_than_marrow(marrow, image, near, SPACING, PARAMS).all()


def test_switched_off_the_marrow_mask_is_unchanged():
    image, marrow, near = _body_and_muscle(1.35)
    off = AutosegParameters(suppressed_marrow_high=0.0)
    assert no_brighter_than_marrow(marrow, image, near, SPACING, off).all()


def _body_across_slices() -> tuple[np.ndarray, np.ndarray]:
    """One body over 11 slices of 3 mm (midline at slice 5) on marrow signal 1.0."""
    bodies = np.zeros((30, 30, 11), np.int32)
    bodies[5:25, 5:25, :] = 1
    rng = np.random.default_rng(1)
    image = (1.0 + rng.normal(0.0, 0.05, bodies.shape)).astype(np.float32)
    return bodies, image


def test_lateral_sections_in_muscle_are_cut_from_the_first_one_outwards():
    bodies, image = _body_across_slices()
    image[:, :, 9:] = 1.35  # muscle beside the right wall
    image[:, :, :1] = 1.3  # and beside the left one
    out, removed = trim_bright_sections(bodies, image, 5.0, SPACING, 1.15)
    assert removed == 3
    assert np.flatnonzero(out.any(axis=(0, 1))).tolist() == list(range(1, 9))


def test_a_lesion_in_part_of_a_lateral_section_keeps_it():
    """Edema bright on the fluid image over a third of the body's side (at an endplate) does
    not move the section's median: the section stays."""
    bodies, image = _body_across_slices()
    image[5:25, 5:12, 9:] = 2.0
    out, removed = trim_bright_sections(bodies, image, 5.0, SPACING, 1.15)
    assert removed == 0
    assert np.array_equal(out, bodies)


def test_muscle_only_a_little_brighter_than_marrow_is_cut_where_the_signal_steps_up():
    """Muscle beside the wall at 1.12 times the marrow (under ``suppressed_section_factor``)
    replaces the body on the outermost slice of each side: the section's median steps up
    from the one inside it (0.95, the lateral cortex darkens it) by more than
    ``suppressed_section_step`` of the body's level, and that slice goes; without the step
    it stays (the fixed ratio alone does not see it)."""
    bodies, image = _body_across_slices()
    image[:, :, [1, 9]] -= 0.05  # the lateral wall's partial volume in the last body slices
    image[:, :, [0, 10]] = 1.12  # muscle where the segment runs on past the wall
    step = PARAMS.suppressed_section_step
    assert step > 0
    out, removed = trim_bright_sections(bodies, image, 5.0, SPACING, 1.15, step)
    assert removed == 2
    assert np.flatnonzero(out.any(axis=(0, 1))).tolist() == list(range(1, 10))
    assert trim_bright_sections(bodies, image, 5.0, SPACING, 1.15)[1] == 0


def test_no_step_cut_within_the_body_or_below_its_own_level():
    """A body's own lateral sections, a little brighter than the one inside them (under the
    step) or brighter by more but still darker than the body's own level (after a darker
    section: cortex, a fatty band), are kept."""
    bodies, image = _body_across_slices()
    image[:, :, 10] = 1.04  # 0.04 brighter than the section inside it
    image[:, :, 1] = 0.8
    image[:, :, 0] = 0.95  # 0.15 brighter than slice 1, but under the body's level
    out, removed = trim_bright_sections(bodies, image, 5.0, SPACING, 1.15, 0.1)
    assert removed == 0
    assert np.array_equal(out, bodies)


def test_a_step_up_with_more_of_the_body_beyond_it_is_the_bodys_own_marrow():
    """The body's marrow brighter over its whole right side (edema, or the coil's shading
    across the slab: 1.12 from slice 8 outwards, 0.95 on slice 7): the signal steps up at
    slice 8, but the body goes on beyond it and its outermost section does not step up
    from the one inside it, so nothing is cut."""
    bodies, image = _body_across_slices()
    image[:, :, 7] = 0.95
    image[:, :, 8:] = 1.12
    out, removed = trim_bright_sections(bodies, image, 5.0, SPACING, 1.15, 0.1)
    assert removed == 0
    assert np.array_equal(out, bodies)


def _body_that_took_a_disc() -> tuple[np.ndarray, np.ndarray]:
    """Three bodies along SI on 7 sagittal slices of 3 mm (the canal's midline at 3), mottled
    marrow 80-120; body 2 took the disc above its superior endplate (a dark line at row 70,
    the disc 200 beyond it), and muscle (120) fills the two outermost slices."""
    bodies = np.zeros((30, 130, 7), np.int32)
    bodies[5:25, 2:32], bodies[5:25, 40:80], bodies[5:25, 90:120] = 1, 2, 3
    image = np.random.default_rng(0).uniform(80.0, 120.0, bodies.shape).astype(np.float32)
    image[5:25, 71:80] = 200.0
    image[5:25, 70] = 10.0
    image[:, :, [0, 6]] = 120.0
    return bodies, image


def test_lateral_sections_are_walked_again_once_the_disc_a_body_took_is_cut():
    """With the disc in it, body 2's own level is read high and the muscle beside it passes
    under 1.15 times it; with the disc cut off at the endplate the level is the marrow's
    and the muscle sections go. Bodies that lost no end keep what they had."""
    bodies, image = _body_that_took_a_disc()
    factor = PARAMS.suppressed_section_factor
    first, _ = trim_bright_sections(bodies, image, 3.0, SPACING, factor)
    assert (first == 2)[:, :, [0, 6]].any()  # kept on the first walk
    once, ends, more = cut_disc_ends_then_sections(first, image, 3.0, SPACING, factor, False)
    assert (ends, more) == (1, 0) and (once == 2)[:, :, [0, 6]].any()
    out, ends, more = cut_disc_ends_then_sections(first, image, 3.0, SPACING, factor)
    assert (ends, more) == (1, 2)
    assert not (out == 2)[:, :, [0, 6]].any()
    assert np.flatnonzero((out == 2).any(axis=(0, 2)))[[0, -1]].tolist() == [40, 70]
    for label in (1, 3):
        assert np.array_equal(out == label, first == label)


def test_the_mid_sagittal_slab_is_never_cut():
    """The body's own marrow level is read there; a body bright on the fluid image all
    through (diffuse edema) keeps every slice."""
    bodies, image = _body_across_slices()
    image[:] = 1.6
    assert trim_bright_sections(bodies, image, 5.0, SPACING, 1.15)[1] == 0


# --- two bodies joined across a disc (autoseg/joined.py) --------------------------------------


def _four_bodies(joined: bool) -> tuple[np.ndarray, np.ndarray]:
    """Four bodies 26 mm tall every 30 mm; with ``joined``, the lower two are one segment
    across their disc, whose endplates show as a dark line near the midline."""
    bodies = np.zeros((30, 124, 3), np.int32)
    for k, low in enumerate((2, 32, 62, 92)):
        bodies[5:25, low : low + 26] = k + 1
    image = np.full(bodies.shape, 100.0, np.float32)
    if joined:
        bodies[5:25, 2:58] = 1
        image[5:25, 29:31] = 20.0
    return bodies, image


def test_a_segment_two_bodies_tall_is_split_at_its_endplate_line():
    bodies, image = _four_bodies(joined=True)
    split, notes = split_joined(bodies, image, 1.0, np.ones(3))
    assert len(notes) == 1 and "split" in notes[0]
    lower, upper = split[15, 10, 1], split[15, 45, 1]
    assert lower != upper and lower > 0 and upper > 0
    assert (split == lower).any(axis=(0, 2)).nonzero()[0].max() <= 30
    assert (split == upper).any(axis=(0, 2)).nonzero()[0].min() >= 29


def test_bodies_of_a_body_height_are_not_split():
    bodies, image = _four_bodies(joined=False)
    image[5:25, 40, :] = 20.0  # a dark line inside a body (a fracture, a Schmorl node)
    split, notes = split_joined(bodies, image, 1.0, np.ones(3))
    assert notes == [] and np.array_equal(split, bodies)


# --- end to end on a phantom STIR -------------------------------------------------------------


@pytest.mark.slow  # one realistic segmentation: `make test`
def test_phantom_bodies_from_a_stir_alone_stop_at_the_muscle():
    """The plain realistic phantom's STIR alone (muscle beside the bodies has about the
    marrow's signal, discs marrow-like at their rim): before session 22 the bodies ran into
    the tissue beside the column and across discs (Dice median 0.64); the rules of a
    fat-suppressed image alone run (provenance) and the bodies are mostly bone."""
    phantom = make_phantom(seed=3, config=PhantomConfig.realistic())
    study = NoT1Study(t2=None, stir=Study.from_images(phantom.t1, stir=phantom.stir).stir)
    result = find_vertebral_bodies(study)
    assert "lateral_sections_cut" in result.provenance["t1_marrow_evidence"]
    assert "disc_ends_cut" in result.provenance["t1_marrow_evidence"]  # session 23
    assert "beyond_lateral_walls" in result.provenance["t1_marrow_evidence"]  # session 24
    outer = result.provenance["t1_marrow_evidence"]  # session 40: the lateral sections read
    assert outer["outer_sections"]["sides"] > 0 and "outer_sections_added" in outer
    dice = label_dice(np.asarray(result.bodies.data), np.asarray(phantom.truth.vertebrae.data))
    assert np.median(list(dice.values())) >= 0.75, dice
