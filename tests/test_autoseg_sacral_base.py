"""S1 missed by the bodies: the sacral base read on the marrow below L5's disc (session 21)."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.levels import assign_levels, body_shapes
from bmetoolkit.spine.autoseg.sacral_base import bone_surface_below

PARAMS = AutosegParameters()
SPACING = np.array([1.0, 1.0, 2.0])
SHAPE = (100, 300, 9)
#: T12 to L5 (anterior-down, deg): the lordosis grows from level to level.
LUMBAR_TILTS = [-6.0, -4.0, -1.0, 3.0, 8.0, 15.0]
PITCH_MM, HEIGHT_MM, DEPTH_MM = 36.0, 24.0, 30.0
AP_CENTRE = 50.0


def _tilted_box(centre_si: float, angle_deg: float) -> np.ndarray:
    """A sagittal rectangle (every slice) turned anterior-down by ``angle_deg``."""
    ap, si = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    phi = -np.radians(angle_deg)
    along = (ap - AP_CENTRE) * np.cos(phi) + (si - centre_si) * np.sin(phi)
    normal = -(ap - AP_CENTRE) * np.sin(phi) + (si - centre_si) * np.cos(phi)
    inside = (np.abs(along) <= DEPTH_MM / 2) & (np.abs(normal) <= HEIGHT_MM / 2)
    return np.repeat(inside[:, :, None], SHAPE[2], axis=2)


def _column(base_tilt: float | None, disc_mm: float = 12.0, tilts=LUMBAR_TILTS):
    """Lumbar bodies (labels, cranial first) and the marrow mask with, when ``base_tilt``
    is given, bone below the caudal body's disc whose superior surface has that tilt down
    to 10 mm above the image's lower edge (S1 and below, not among the bodies)."""
    bodies = np.zeros(SHAPE, np.int32)
    n = len(tilts)
    centres = [110.0 + (n - 1 - i) * PITCH_MM for i in range(n)]
    for i, (centre, tilt) in enumerate(zip(centres, tilts, strict=True)):
        bodies[_tilted_box(centre, tilt)] = i + 1
    marrow = bodies > 0
    if base_tilt is not None:
        ap, si = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
        top = centres[-1] - HEIGHT_MM / 2 - disc_mm  # at the centre column
        surface = top - np.tan(np.radians(base_tilt)) * (ap - AP_CENTRE)
        bone = (si <= surface) & (si >= 10) & (np.abs(ap - AP_CENTRE) <= DEPTH_MM / 2 + 4)
        marrow = marrow | np.repeat(bone[:, :, None], SHAPE[2], axis=2)
    return bodies, marrow


def _levels(base_tilt: float | None, **kwargs):
    bodies, marrow = _column(base_tilt, **kwargs)
    shapes = body_shapes(bodies, (SHAPE[2] - 1) / 2, SPACING)
    return assign_levels(shapes, marrow, SPACING, PARAMS)


def test_bone_surface_below_reads_the_tilt_of_the_sacral_base():
    bodies, marrow = _column(27.0)
    section = (bodies == len(LUMBAR_TILTS)).any(axis=2)
    angle, depth = bone_surface_below(section, marrow, SPACING)
    assert angle == pytest.approx(27.0, abs=1.5)
    assert 8.0 < depth < 20.0


def test_s1_missed_is_read_on_its_sacral_base_and_the_caudal_body_named_l5():
    """S1 joined to the tissue in front of it and dropped (T2 alone, tuning seeds 45 and
    139): the caudal-most body is L5 over a 12 mm disc and the sacrum tilted 12 degrees
    more than it. Before, the levels stayed unknown (a disc and bone below)."""
    result = _levels(27.0)
    assert result.anchor == "sacrum (S1)"
    assert list(result.levels.values()) == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert result.evidence["support"] == "sacral base below a disc"
    assert result.evidence["s1_among_bodies"] is False
    assert result.evidence["lumbosacral_angle_deg"] == pytest.approx(12.0, abs=2.5)
    assert 0.4 < result.confidence < 0.7  # weaker than S1 seen among the bodies
    assert any("S1 is not among the bodies" in note for note in result.notes)


def test_a_lumbar_body_below_the_disc_is_no_sacrum():
    """The next lumbar body missed below the caudal one: its superior endplate is tilted
    one level of lordosis more (4 degrees), not like the sacral base."""
    result = _levels(19.0)
    assert result.anchor is None
    assert result.evidence["sacral_base_angle_deg"] == pytest.approx(4.0, abs=2.5)


def test_no_bone_below_the_caudal_body_reads_no_sacral_base():
    """The image cut above the sacrum: nothing below the caudal body's disc to read."""
    result = _levels(None)
    assert result.anchor is None
    assert result.evidence["sacral_base_deg"] is None


def test_a_caudal_body_tilted_like_the_sacrum_over_a_disc_stays_unknown():
    """A caudal body itself tilted like S1 over a disc and more bone may be a lumbarised
    S1 (six lumbar-type bodies): the levels stay unknown whatever the bone below shows."""
    result = _levels(40.0, disc_mm=20.0, tilts=[*LUMBAR_TILTS[1:], 27.0])
    assert result.evidence["gap_to_bone_below_mm"] >= 5.0
    assert result.anchor is None
    assert result.evidence["tilted_like_sacrum"] is True
    assert any("lumbarised S1" in note for note in result.notes)


def test_bone_right_below_without_a_disc_is_not_read_as_a_sacral_base():
    """Bone 3 mm below the caudal body is no L5-S1 disc (S2 under S1, or tissue joined):
    the new reading needs a well-formed disc."""
    result = _levels(27.0, disc_mm=3.0)
    assert result.anchor is None
    assert result.evidence["sacral_base_deg"] is None


def test_a_caudal_body_read_flatter_than_the_one_above_is_no_reference():
    """Cut above the sacrum (T2 alone, tuning seed 26 with ``--no-sacrum-every 1``): L5
    missed, L4 the caudal body with its surfaces read flat (below the tilt of L3), L5's
    superior endplate below its disc 22 degrees more than that. Against a tilt that
    breaks the lordosis the angle means nothing: no anchor (named L5 without the rule)."""
    result = _levels(19.0, tilts=[-6.0, -4.0, -1.0, 3.0, 8.0, -3.0])
    assert result.evidence["sacral_base_angle_deg"] >= PARAMS.sacrum_min_angle_deg
    assert result.anchor is None
