"""The role check catches a T1 and a fat-suppressed image swapped in a view that is mostly fat.

An axial view of the pelvis is mostly fat (subcutaneous, and behind the sacrum): the
interior's T1-to-fluid ratio is then near fat's, so a swap's fat contrast stays short of the
suppressed-fat rule's margin, and its tails are long on the fat side. The surface fat's ranks
on both images still say which image suppresses fat
(:func:`bmetoolkit.pairing.sanity.surface_fat_shows_swap`). Such views are also noisy enough
that the air's noise passes a tenth of the brightest tissue: the air around the body is then
found from its darkest specks (:func:`bmetoolkit.pairing.tissue._body`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.data.phantom.joint import make_joint_phantom
from bmetoolkit.errors import ContrastMismatchError
from bmetoolkit.pairing.sanity import (
    FAT_SCARCE,
    FAT_SHOWS_SWAP,
    judge_roles,
    surface_fat_shows_swap,
    surface_fat_shows_t1,
)
from bmetoolkit.pairing.tissue import (
    MIN_AIR_FRACTION,
    MIN_REGION_VOXELS,
    RoleEvidence,
    _body,
    _surrounding_air,
)
from bmetoolkit.study import Study

# the measures of the full-size axial sacroiliac study of tuning seed 66 of bench_joint.py
# (fat-suppressed T2, no mask) with the T1 and the T2 swapped, which passed before
_SWAPPED_AXIAL_PELVIS = RoleEvidence(
    136750, fluid_dark=0.031, fluid_bright=0.016, fat_t1_rank=0.252, fat_fluid_rank=0.608,
    fat_contrast=-0.293, fat_t1_over_air=7.171, fat_fluid_over_air=16.636, brighter_on_t1=2.212,
    ratio_tails=0.745, air_fraction=0.225,
)  # fmt: skip


def test_surface_fat_dark_on_the_t1_and_brighter_on_the_stir_refuses():
    verdict = judge_roles(_SWAPPED_AXIAL_PELVIS, "stir")
    assert verdict is not None and verdict.rule == FAT_SHOWS_SWAP
    assert verdict.reason.startswith("fat is dark on it and brighter on the STIR")
    assert not surface_fat_shows_t1(_SWAPPED_AXIAL_PELVIS)


def test_the_genuine_order_of_the_same_measures_is_not_refused():
    """The genuine pair's own measures (session 15, ``tests/test_role_fat_bulk.py``)."""
    genuine = replace(
        _SWAPPED_AXIAL_PELVIS, fat_t1_rank=0.607, fat_fluid_rank=0.22, fat_contrast=0.739,
        fluid_dark=0.277, fluid_bright=0.0, brighter_on_t1=0.15, ratio_tails=-0.829,
    )  # fmt: skip
    assert not surface_fat_shows_swap(genuine)
    assert judge_roles(genuine, "stir") is None


@pytest.mark.parametrize(
    "change",
    [
        # the layer as bright in rank on both images: not a suppressed fat
        dict(fat_t1_rank=0.45, fat_fluid_rank=0.45),
        # the layer bright on the image given as T1
        dict(fat_t1_rank=0.55, fat_fluid_rank=0.7),
        # the layer's ratio above the interior's
        dict(fat_contrast=0.05),
        # the layer holds no signal on one image (out of register): not judged by the surface
        dict(fat_t1_over_air=1.2),
    ],
)
def test_the_rule_needs_every_sign_of_a_swap(change):
    evidence = replace(_SWAPPED_AXIAL_PELVIS, **change)
    verdict = judge_roles(evidence, "stir")
    assert verdict is None or verdict.rule != FAT_SHOWS_SWAP


def test_not_judged_in_the_t2_role_nor_without_the_surface_fat():
    """A plain T2 shows fat bright as a T1 does: the rule is for the STIR role."""
    verdict = judge_roles(_SWAPPED_AXIAL_PELVIS, "t2")
    assert verdict is None or verdict.rule != FAT_SHOWS_SWAP
    assert not surface_fat_shows_swap(replace(_SWAPPED_AXIAL_PELVIS, fat_contrast=None))


def test_the_fat_scarce_rule_is_still_named_first_where_it_refuses():
    evidence = replace(_SWAPPED_AXIAL_PELVIS, ratio_tails=-0.8)
    assert judge_roles(evidence, "stir").rule == FAT_SCARCE


def test_air_found_from_its_darkest_specks_when_its_noise_passes_the_first_bound():
    """A body in air whose noise mostly passes a tenth of the top on both images (as on the
    full-size axial pelvis of tuning seed 18): few border-connected specks fall under it on
    both (under :data:`MIN_AIR_FRACTION` of the view), yet their local means tell the
    noise's level, and the air around the body is found."""
    rng = np.random.default_rng(3)
    shape = (90, 90, 40)
    x, y = np.meshgrid(np.arange(90) - 44.5, np.arange(90) - 44.5, indexing="ij")
    inside = np.broadcast_to(((x / 38) ** 2 + (y / 30) ** 2 <= 1)[..., None], shape)

    def magnitude(level: float, sigma: float) -> np.ndarray:  # Rayleigh noise in the air
        signal = np.where(inside, level, 0.0)
        return np.hypot(signal + rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))

    t1, fluid = magnitude(250.0, 32.0), magnitude(300.0, 39.0)
    covered = np.ones(shape, bool)
    signal = (t1 > 0.1 * np.percentile(t1, 99)) | (fluid > 0.1 * np.percentile(fluid, 99))
    first = np.count_nonzero(_surrounding_air(signal, covered))
    assert MIN_REGION_VOXELS <= first < MIN_AIR_FRACTION * t1.size  # little air at first ...
    _, body, air, _ = _body(t1, fluid, covered)
    outside = ~inside
    assert np.mean(air[outside]) > 0.9 and np.mean(body[inside]) > 0.99  # ... then the air


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "fluid", "lesions"), [(22, "pdfs", "random"), (66, "t2fs", "none")]
)
def test_swapped_axial_sacroiliac_phantoms_are_refused(seed, fluid, lesions):
    """Tuning seeds 22 and 66 of bench_joint.py rendered small (axial sacroiliac joints): the
    genuine pair passes with and without its bone masks, the swap is refused by its
    surface fat."""
    phantom = make_joint_phantom(
        seed, joint="sij", plane="axial", fluid=fluid, lesions=lesions, small=True
    )
    for labels in (None, phantom.truth.bones):
        study = Study.from_images(phantom.t1, stir=phantom.fluid, labels=labels)
        assert study.role_checks["stir"] is not None
        with pytest.raises(ContrastMismatchError, match="fat is dark on it and brighter on"):
            Study.from_images(phantom.fluid, stir=phantom.t1, labels=labels)
