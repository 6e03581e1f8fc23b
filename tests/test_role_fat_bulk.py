"""The fat-scarce rule of the role check stands aside where the surface fat shows a T1.

An axial view of the pelvis is mostly fat (subcutaneous and deep): the median of the
T1-to-fluid log ratio is then fat's, and the lower tail (muscle, fluid) is the long one on
a genuine pair, as on a swap elsewhere. The body's surface fat, measured directly, says
which image is the T1 (:func:`bmetoolkit.pairing.sanity.surface_fat_shows_t1`).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bmetoolkit.data.phantom.joint import make_joint_phantom
from bmetoolkit.pairing.sanity import FAT_SCARCE, judge_roles, surface_fat_shows_t1
from bmetoolkit.pairing.tissue import RoleEvidence
from bmetoolkit.study import Study

# the measures of a genuine full-size axial sacroiliac study (tuning seed 66 of
# bench_joint.py, fat-suppressed T2, no mask) that the fat-scarce rule refused alone
_GENUINE_AXIAL_PELVIS = RoleEvidence(
    136750, fluid_dark=0.277, fluid_bright=0.0, swapped_fluid_dark=0.004,
    swapped_fluid_bright=0.015, fat_t1_rank=0.607, fat_fluid_rank=0.22, fat_contrast=0.739,
    fat_t1_over_air=17.279, fat_fluid_over_air=6.756, brighter_on_t1=0.15,
    ratio_tails=-0.829, air_fraction=0.225,
)  # fmt: skip


def test_a_fat_bulk_view_whose_surface_fat_shows_a_t1_is_not_refused():
    assert surface_fat_shows_t1(_GENUINE_AXIAL_PELVIS)
    assert judge_roles(_GENUINE_AXIAL_PELVIS, "stir") is None


@pytest.mark.parametrize(
    "change",
    [
        # a plain T2 in the STIR role: fat bright on both images, no contrast
        dict(fat_t1_rank=0.75, fat_fluid_rank=0.7, fat_contrast=0.05),
        # the T1 and the fat-suppressed image swapped: the fat relations turn round
        dict(fat_t1_rank=0.22, fat_fluid_rank=0.607, fat_contrast=-0.739),
        # fat dark on both (not fat, or not suppressed on the fluid image alone)
        dict(fat_t1_rank=0.3, fat_fluid_rank=0.2, fat_contrast=-0.1),
        # the surface layer holds no signal on one image: not judged by the surface
        dict(fat_fluid_over_air=1.2),
    ],
)
def test_the_tails_still_refuse_where_the_surface_fat_does_not_show_a_t1(change):
    evidence = replace(_GENUINE_AXIAL_PELVIS, **change)
    verdict = judge_roles(evidence, "stir")
    assert verdict is not None and verdict.rule == FAT_SCARCE


def test_missing_fat_measures_do_not_show_a_t1():
    assert not surface_fat_shows_t1(RoleEvidence(5000, ratio_tails=-0.8))
    assert not surface_fat_shows_t1(replace(_GENUINE_AXIAL_PELVIS, fat_contrast=None))


@pytest.mark.slow
def test_genuine_axial_sacroiliac_phantom_is_not_refused():
    """Tuning seed 66 rendered small (axial sacroiliac joints, fat-suppressed T2): its ratio
    tails are -0.6, which the fat-scarce rule refused, while its surface fat is bright on
    the T1 and dark on the T2 (fat contrast 0.8)."""
    phantom = make_joint_phantom(66, joint="sij", plane="axial", fluid="t2fs", small=True)
    study = Study.from_images(phantom.t1, stir=phantom.fluid, labels=phantom.truth.bones)
    assert study.role_checks["stir"] is not None  # judged, and not refused
