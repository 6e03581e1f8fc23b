"""The dark shell read on each body's own profile (T2 or STIR alone): :mod:`.autoseg.shell`."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg.shell import (
    add_dark_shell,
    add_half_edge,
    shell_thresholds,
    valley_thresholds,
)

SPACING = np.array([1.0, 1.0, 3.0])  # canonical (AP, SI, LR)
MARROW, SHELL, TISSUE = 100.0, 45.0, 95.0
BODY = (slice(10, 26), slice(10, 31), slice(0, 5))


def _scene(shell_voxels: int, anterior_voxels: int | None = None):
    """A marrow box inside a dark shell inside marrow-like tissue, and the box's label."""
    image = np.full((44, 44, 5), TISSUE, np.float32)
    front = shell_voxels if anterior_voxels is None else anterior_voxels
    ap, si = BODY[0], BODY[1]
    image[
        ap.start - shell_voxels : ap.stop + front, si.start - shell_voxels : si.stop + shell_voxels
    ] = SHELL
    image[BODY] = MARROW
    bodies = np.zeros(image.shape, np.int32)
    bodies[BODY] = 1
    return image, bodies


def test_the_dark_shell_outside_the_body_is_added_up_to_the_tissue():
    image, bodies = _scene(2)
    grown, evidence = add_dark_shell(bodies, image, SPACING, 2.5)
    added = (grown == 1) & (bodies == 0)
    assert evidence["faces_with_shell"] == 4
    # Every face's shell, 2 voxels deep, is taken (corners, behind no face, may not be).
    assert added[BODY[0].stop : BODY[0].stop + 2, BODY[1]].all()  # anterior
    assert added[BODY[0].start - 2 : BODY[0].start, BODY[1]].all()  # posterior
    assert added[BODY[0], BODY[1].stop : BODY[1].stop + 2].all()  # superior
    assert added[BODY[0], BODY[1].start - 2 : BODY[1].start].all()  # inferior
    assert not (added & (image == TISSUE)).any()  # never into the tissue beyond


def test_a_body_that_already_holds_its_shell_gets_nothing():
    image, _ = _scene(2)
    bodies = np.zeros(image.shape, np.int32)
    bodies[8:28, 8:33] = 1  # the box with its shell: the signal rises right outside it
    grown, evidence = add_dark_shell(bodies, image, SPACING, 2.5)
    assert evidence == {"faces_with_shell": 0, "voxels_added": 0}
    np.testing.assert_array_equal(grown, bodies)


def test_a_dark_run_wider_than_cortex_is_not_taken():
    image, bodies = _scene(2, anterior_voxels=7)  # 7 mm of dark tissue in front: no cortex
    grown, evidence = add_dark_shell(bodies, image, SPACING, 2.5)
    added = (grown == 1) & (bodies == 0)
    assert not added[BODY[0].stop :, BODY[1]].any()
    assert added[BODY[0].start - 2 : BODY[0].start, BODY[1]].all()  # the posterior wall still is
    assert evidence["faces_with_shell"] == 3


def test_zero_cap_turns_it_off():
    image, bodies = _scene(2)
    grown, evidence = add_dark_shell(bodies, image, SPACING, 0.0)
    np.testing.assert_array_equal(grown, bodies)
    assert evidence["voxels_added"] == 0


@pytest.mark.parametrize(
    ("profile", "rings"),
    [
        # The phantom's anterior wall (tuning seed 0): the dark run goes on for two rings.
        ([0.67, 0.59, 0.60, 1.05, 1.05, 1.04], 2),
        # The real TPTBox T2's anterior wall: the body holds the dark layer, the signal
        # rises from ring 1 (partial volume) to the tissue: nothing.
        ([0.55, 0.74, 0.90, 0.99, 0.89], 0),
        # Its endplate: dark on, no rise (a dark disc): nothing.
        ([0.45, 0.73, 0.55, 0.53, 0.47], 0),
        # An endplate whose dark run does not rise within the cap (a degenerated disc).
        ([0.46, 0.64, 0.67, 0.69, 0.71, 0.89], 0),
    ],
)
def test_shell_rings_from_a_face_profile(profile, rings):
    last, threshold = shell_thresholds(np.array(profile), 1.2, 2.5)
    assert last == rings
    if rings:
        assert profile[1] < threshold < profile[rings + 1]


# --- the edge blurred over one voxel, from a fat-suppressed image alone -------------------------

CORTEX, BLURRED, BEYOND = 30.0, 60.0, 150.0  # the body's dark outer layer, the blur, muscle


def _blurred_edge(blurred: float, beyond: float = BEYOND):
    """A marrow box whose outer layer is dark cortex, then one voxel of ``blurred`` signal
    in front of and behind it (AP faces), then ``beyond``; the box is the body."""
    image = np.full((44, 44, 5), beyond, np.float32)
    ap, si = BODY[0], BODY[1]
    image[ap.start - 1 : ap.stop + 1, si] = blurred
    image[ap, si] = CORTEX
    image[ap.start + 1 : ap.stop - 1, si.start + 1 : si.stop - 1] = MARROW
    bodies = np.zeros(image.shape, np.int32)
    bodies[BODY] = 1
    return image, bodies


def test_the_layer_below_halfway_to_the_tissue_beyond_is_added():
    image, bodies = _blurred_edge(BLURRED)  # 0.6 of the marrow, halfway is (0.3 + 1.5) / 2
    grown, evidence = add_half_edge(bodies, image, SPACING)
    added = (grown == 1) & (bodies == 0)
    assert added[BODY[0].stop, BODY[1]].all() and added[BODY[0].start - 1, BODY[1]].all()
    assert not added[BODY[0].stop + 1 :].any() and not added[: BODY[0].start - 1].any()
    assert evidence["faces"] >= 2


@pytest.mark.parametrize(
    "blurred, beyond",
    [
        (110.0, BEYOND),  # above halfway: the tissue beyond, not the body's edge
        (35.0, 40.0),  # the tissue beyond as dark as the cortex: no edge to locate
    ],
)
def test_no_layer_without_an_edge_crossing_halfway(blurred, beyond):
    image, bodies = _blurred_edge(blurred, beyond)
    grown, _ = add_half_edge(bodies, image, SPACING)
    added = (grown == 1) & (bodies == 0)
    assert not added[BODY[0].stop, BODY[1]].any() and not added[BODY[0].start - 1, BODY[1]].any()


# --- the cortex before tissue darker than marrow (a plain T2 alone, t2_shell_valley) -----------

ENDPLATE, ANNULUS = 25.0, 60.0  # a dark endplate, then a disc darker than the marrow


def _endplate_scene():
    """A marrow box with a 2-voxel dark endplate above and below it and a disc darker than
    the marrow beyond (the anterior and posterior walls as in :func:`_scene`)."""
    image, bodies = _scene(2)
    ap, si = BODY[0], BODY[1]
    image[ap, si.stop : si.stop + 2] = ENDPLATE
    image[ap, si.start - 2 : si.start] = ENDPLATE
    image[ap, si.stop + 2 :] = ANNULUS
    image[ap, : si.start - 2] = ANNULUS
    return image, bodies


def test_an_endplate_before_a_disc_darker_than_marrow_is_added_as_a_valley():
    image, bodies = _endplate_scene()
    plain, _ = add_dark_shell(bodies, image, SPACING, 2.5)
    grown, evidence = add_dark_shell(bodies, image, SPACING, 2.5, valley=True)
    ap, si = BODY[0], BODY[1]
    # Without the valley rule the disc (0.6 of the marrow) never rises halfway back to it.
    assert not ((plain == 1) & (bodies == 0))[ap, si.stop :].any()
    added = (grown == 1) & (bodies == 0)
    assert added[ap, si.stop : si.stop + 2].all()  # superior endplate
    assert added[ap, si.start - 2 : si.start].all()  # inferior endplate
    assert not (added & (image == ANNULUS)).any()  # never into the disc
    assert evidence["faces_with_valley"] == 2


def test_the_valley_rule_leaves_bodies_alone_without_a_valley():
    image, bodies = _scene(2)  # shells before tissue as bright as marrow: the first rule
    plain, _ = add_dark_shell(bodies, image, SPACING, 2.5)
    grown, evidence = add_dark_shell(bodies, image, SPACING, 2.5, valley=True)
    np.testing.assert_array_equal(grown, plain)
    assert evidence["faces_with_valley"] == 0


@pytest.mark.parametrize(
    ("profile", "last", "valley"),
    [
        # Tuning seed 112 (pelvis and bowel, 1 mm), L1's superior endplate: the annulus
        # beyond (0.6) stays under halfway back to the marrow.
        ([0.94, 0.50, 0.23, 0.55, 0.60, 0.63, 0.61], 2, 2),
        # The real TPTBox T2's faces of the test above: the body holds its dark layer, or
        # the disc is dark on: no valley.
        ([0.55, 0.74, 0.90, 0.99, 0.89, 0.90], 0, 0),
        ([0.45, 0.73, 0.55, 0.53, 0.47, 0.45], 0, 0),
        ([0.46, 0.64, 0.67, 0.69, 0.71, 0.89], 0, 0),
        # A dark run with no rise after it (a dark disc or ligament): no valley.
        ([0.90, 0.40, 0.30, 0.32, 0.35, 0.36], 0, 0),
    ],
)
def test_valley_rings_from_a_face_profile(profile, last, valley):
    profile = np.array(profile)
    assert shell_thresholds(profile, 1.0, 2.5) == (0, 0.0)
    got, outer, inner, at = valley_thresholds(profile, 1.0, 2.5)
    assert (got, at) == (last, valley)
    if last:
        assert profile[at] < outer < profile[at + 1] and profile[1] < inner
