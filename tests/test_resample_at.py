"""Resampling some voxels of a grid gives the whole grid's values there, bit for bit; a study
resamples its images only where their voxels are read."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bmetoolkit.pairing.tissue import measure_roles
from bmetoolkit.resample import (
    ResampledVolume,
    coverage_mask,
    resample_at,
    resample_to,
    values_at,
)
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume
from tests.helpers import SAGITTAL_PSR, ras_affine


@pytest.fixture
def fluid(rng) -> Volume:
    """A noisy image on an oblique, anisotropic grid unlike the T1's (other pixels, other
    tilt, offset), reaching past part of the T1's field of view."""
    affine = ras_affine(
        SAGITTAL_PSR,
        (0.55, 0.63, 3.3),
        rotations=(("z", -4.0), ("x", 2.0), ("y", 3.0)),
        origin=(-26.0, 66.0, -88.0),
    )
    return Volume(rng.gamma(2.0, 40.0, (120, 210, 13)).astype(np.float32), affine)


BOXES = [
    (slice(0, 90), slice(0, 160), slice(0, 10)),  # the whole grid
    (slice(17, 61), slice(33, 151), slice(2, 9)),  # a box inside
    (slice(80, 90), slice(0, 7), slice(9, 10)),  # at the far corner
    (slice(2, None, 4), slice(1, None, 3), slice(0, None, 1)),  # every k-th voxel
]


@pytest.mark.parametrize("box", BOXES)
def test_a_box_resampled_alone_equals_the_whole_grid_resampled_then_cut(
    oblique_t1_grid, fluid, box
):
    whole = resample_to(fluid, oblique_t1_grid).data
    alone = resample_at(fluid, oblique_t1_grid, box)
    assert alone.dtype == whole.dtype
    assert np.array_equal(alone, whole[box])  # bit for bit, the fill value outside included


def test_the_fluid_image_covers_part_of_the_t1_grid(oblique_t1_grid, fluid):
    """The cases above include voxels outside the image's field of view (the fill value)."""
    assert 0.2 < coverage_mask(fluid.grid, oblique_t1_grid).mean() < 0.9


def test_voxels_at_flat_indices_equal_the_whole_grids(oblique_t1_grid, fluid, rng):
    whole = resample_to(fluid, oblique_t1_grid).data
    index = np.flatnonzero(rng.random(oblique_t1_grid.shape) < 0.07)
    assert np.array_equal(resample_at(fluid, oblique_t1_grid, index), whole.ravel()[index])


def test_labels_at_some_voxels_are_the_nearest_and_keep_their_dtype(oblique_t1_grid, fluid):
    labels = fluid.with_data((fluid.data > 80).astype(np.uint16) * 7, kind="label")
    whole = resample_to(labels, oblique_t1_grid).data
    box = BOXES[1]
    alone = resample_at(labels, oblique_t1_grid, box)
    assert alone.dtype == np.uint16
    assert np.array_equal(alone, whole[box])


def test_a_resampled_volume_reads_some_voxels_without_resampling_the_rest(oblique_t1_grid, fluid):
    covered = coverage_mask(fluid.grid, oblique_t1_grid)
    lazy = ResampledVolume(fluid, oblique_t1_grid, covered)
    whole = resample_to(fluid, oblique_t1_grid).data
    box = BOXES[1]
    assert np.array_equal(values_at(lazy, box), whole[box])
    assert np.array_equal(values_at(lazy, np.array([5, 999])), whole.ravel()[[5, 999]])
    assert not lazy.resolved
    assert lazy.shape == oblique_t1_grid.shape and lazy.grid.same_as(oblique_t1_grid)
    assert np.array_equal(lazy.data, whole) and lazy.resolved
    assert np.array_equal(values_at(lazy, box), whole[box])  # now from the resolved array
    copied = pickle.loads(pickle.dumps(lazy))
    assert type(copied) is Volume and np.array_equal(copied.data, whole)
    assert copied.source == fluid.source and np.array_equal(copied.affine, lazy.affine)


def test_a_study_resamples_its_images_when_read(oblique_t1_grid, fluid):
    t1 = Volume(np.full(oblique_t1_grid.shape, 100, np.int16), oblique_t1_grid.affine)
    study = Study.from_images(t1, t2=fluid, verify_roles=False)
    assert isinstance(study.t2, ResampledVolume) and not study.t2.resolved
    assert np.array_equal(study.t2.data, resample_to(fluid, oblique_t1_grid).data)
    assert np.array_equal(study.covered["t2"], coverage_mask(fluid.grid, oblique_t1_grid))


def test_the_role_check_measures_a_resampled_image_as_the_whole_grid(oblique_t1_grid, rng):
    """The evidence from a :class:`ResampledVolume` (resampled at the judged voxels only)
    equals that from the whole grid's array."""
    shape = oblique_t1_grid.shape
    t1, stir = np.zeros(shape), np.zeros(shape)
    t1[5:85, 10:150], stir[5:85, 10:150] = 100.0, 8.0  # fat
    t1[25:65, 40:120], stir[25:65, 40:120] = 40.0, 35.0  # muscle
    t1[40:50, 70:90], stir[40:50, 70:90] = 25.0, 150.0  # fluid
    noise = rng.normal(0, 2, (2, *shape))
    t1, stir = np.abs(t1 + noise[0]), np.abs(stir + noise[1]).astype(np.float32)
    # the STIR on a grid shifted by a third of a voxel: resampled, not identical
    affine = oblique_t1_grid.affine.copy()
    affine[:3, 3] += oblique_t1_grid.affine[:3, :3] @ np.array([0.3, -0.2, 0.0])
    acquired = Volume(stir, affine)
    covered = coverage_mask(acquired.grid, oblique_t1_grid)
    lazy = ResampledVolume(acquired, oblique_t1_grid, covered)
    whole = resample_to(acquired, oblique_t1_grid).data
    spacing = oblique_t1_grid.spacing
    assert measure_roles(t1, lazy, covered, spacing) == measure_roles(t1, whole, covered, spacing)
    assert not lazy.resolved


def test_an_analysis_reading_some_voxels_equals_the_one_on_the_resampled_grid():
    """The spine analysis of a study whose T2 and STIR are resampled where read equals the
    analysis of the same study resampled on the whole grid first."""
    from bmetoolkit.analysis import analyze_study
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom

    phantom = make_phantom(seed=4, lesions="mixed", config=PhantomConfig.small())
    results = {}
    for whole in (False, True):
        study = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)
        assert isinstance(study.t2, ResampledVolume) and isinstance(study.stir, ResampledVolume)
        if whole:
            study.t2.data, study.stir.data  # noqa: B018 (read: resampled on the whole grid)
        results[whole] = analyze_study(study, phantom.truth.vertebrae)
        assert study.stir.resolved == whole and study.t2.resolved == whole
    some, every = results[False], results[True]
    for name in ("bme_mask", "modic_map", "lesion_labels", "marrow"):
        assert np.array_equal(getattr(some, name).data, getattr(every, name).data)
    for name, ratio in some.ratios.items():
        assert np.array_equal(ratio.data, every.ratios[name].data, equal_nan=True)
    assert some.endplate_rows == every.endplate_rows and some.lesion_rows == every.lesion_rows
    assert some.study.role_checks == every.study.role_checks
    assert some.references == every.references and some.decision == every.decision
    assert some.wall_layer_ratios is not None
    for name, ratio in some.wall_layer_ratios.items():
        assert np.array_equal(ratio, every.wall_layer_ratios[name], equal_nan=True)
