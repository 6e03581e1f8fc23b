"""Resampling onto the T1 grid in physical space, coverage, and the Study contract."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bmetoolkit.errors import (
    GridMismatchError,
    InputNotFoundError,
    MissingContrastError,
    NoOverlapError,
)
from bmetoolkit.io import load, save_nifti
from bmetoolkit.resample import coverage_mask, resample_to
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume
from tests.helpers import SAGITTAL_PSR, linear_field, ras_affine, volume_on


@pytest.fixture
def t2_grid() -> Grid:
    """A T2 grid unlike the T1: other pixel size, other tilt, offset, more slices."""
    affine = ras_affine(
        SAGITTAL_PSR,
        (0.55, 0.55, 3.3),
        rotations=(("z", -4.0), ("x", 2.0), ("y", 3.0)),
        origin=(-26.0, 66.0, -88.0),
    )
    return Grid((130, 300, 16), affine)


def test_linear_interpolation_reproduces_a_linear_world_field(oblique_t1_grid, t2_grid):
    """Every resampled voxel must hold the value at its own world position."""
    t2 = volume_on(t2_grid, linear_field(t2_grid))
    resampled = resample_to(t2, oblique_t1_grid)
    inside = coverage_mask(t2_grid, oblique_t1_grid)
    # Away from the FOV edge (where values are extended by the nearest voxel) values are exact.
    interior = ndimage.binary_erosion(inside, border_value=0)
    expected = linear_field(oblique_t1_grid)
    assert interior.sum() > 1000
    np.testing.assert_allclose(resampled.data[interior], expected[interior], rtol=0, atol=0.02)


def test_point_keeps_its_world_position_after_resampling(oblique_t1_grid, t2_grid):
    point_world = oblique_t1_grid.voxel_to_world([[45.0, 80.0, 5.0]])[0]
    # A small bright ball around the point on the T2 grid.
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in t2_grid.shape], indexing="ij"), -1)
    world = t2_grid.voxel_to_world(ijk.reshape(-1, 3)).reshape(*t2_grid.shape, 3)
    ball = (np.linalg.norm(world - point_world, axis=-1) < 6.0).astype(np.float32)
    resampled = resample_to(volume_on(t2_grid, ball), oblique_t1_grid)
    weights = resampled.data
    t1_ijk = np.stack(
        np.meshgrid(*[np.arange(n) for n in oblique_t1_grid.shape], indexing="ij"), -1
    )
    t1_world = oblique_t1_grid.voxel_to_world(t1_ijk.reshape(-1, 3)).reshape(*weights.shape, 3)
    centroid = (t1_world * weights[..., None]).sum(axis=(0, 1, 2)) / weights.sum()
    # Within a fraction of the coarsest voxel size (4.4 mm slices sample the ball coarsely).
    assert np.linalg.norm(centroid - point_world) < 0.5


def test_labels_are_resampled_by_nearest_neighbour_and_keep_dtype(oblique_t1_grid, t2_grid, rng):
    labels = rng.choice(np.array([0, 20, 21, 122], dtype=np.uint8), size=t2_grid.shape)
    resampled = resample_to(volume_on(t2_grid, labels, kind="label"), oblique_t1_grid)
    assert resampled.data.dtype == np.uint8
    assert set(np.unique(resampled.data)) <= {0, 20, 21, 122}


def test_resampling_onto_own_grid_is_identity(oblique_t1_grid, rng):
    volume = volume_on(oblique_t1_grid, rng.random(oblique_t1_grid.shape).astype(np.float32))
    assert resample_to(volume, oblique_t1_grid) is volume


def test_voxels_outside_the_field_of_view_get_the_fill_value():
    source = Volume(np.full((4, 4, 4), 7.0, np.float32), np.eye(4))
    target = Grid((8, 4, 4), np.eye(4))
    data = resample_to(source, target, fill_value=-1.0).data
    assert (data[:4] == 7.0).all() and (data[4:] == -1.0).all()


def test_coverage_of_half_overlapping_grid():
    t1 = Grid((10, 10, 10), np.eye(4))
    shifted = ras_affine(np.eye(3), (1.0, 1.0, 1.0), origin=(5.0, 0.0, 0.0))
    mask = coverage_mask(Grid((10, 10, 10), shifted), t1)
    assert mask.mean() == pytest.approx(0.5)
    assert not mask[4].any() and mask[5].all()


def test_study_resamples_everything_onto_t1_grid(oblique_t1_grid, t2_grid):
    t1 = volume_on(oblique_t1_grid, np.ones(oblique_t1_grid.shape, np.int16), source="t1")
    t2 = volume_on(t2_grid, linear_field(t2_grid), source="t2")
    stir = volume_on(t2_grid, linear_field(t2_grid, constant=50.0), source="t2")
    labels = volume_on(t2_grid, np.ones(t2_grid.shape, np.int16), kind="label", source="seg")
    study = Study.from_images(t1, t2=t2, stir=stir, labels=labels)
    for role in ("t2", "stir", "labels"):
        assert study.images()[role].grid == oblique_t1_grid
    assert study.labels.data.dtype == np.int16
    assert study.fluid is study.stir
    assert 0.5 < study.coverage["t2"] <= 1.0
    assert study.inputs == {"t1": "t1", "t2": "t2", "stir": "t2", "labels": "seg"}
    np.testing.assert_array_equal(study.analysable(), study.covered["t2"])


def test_partial_coverage_is_noted():
    t1 = Volume(np.ones((10, 10, 10), np.int16), np.eye(4), source="t1.nii.gz")
    t2 = Volume(np.ones((10, 10, 10), np.int16), ras_affine(np.eye(3), (1, 1, 1), origin=(5, 0, 0)))
    study = Study.from_images(t1, t2=t2)
    assert study.coverage["t2"] == pytest.approx(0.5)
    assert any("covers only 50 %" in note for note in study.notes)


def test_images_that_do_not_overlap_are_refused_naming_both_files(tmp_path):
    t1 = save_nifti(Volume(np.ones((10, 10, 10), np.int16), np.eye(4)), tmp_path / "t1.nii.gz")
    far = ras_affine(np.eye(3), (1.0, 1.0, 1.0), origin=(0.0, 0.0, 300.0))
    t2 = save_nifti(Volume(np.ones((10, 10, 10), np.int16), far), tmp_path / "t2.nii.gz")
    with pytest.raises(NoOverlapError) as info:
        Study.from_images(t1, t2=t2)
    message = str(info.value)
    assert "t1.nii.gz" in message and "t2.nii.gz" in message
    assert "covers 0.0 %" in message and "same subject" in message


def test_the_roles_are_checked_in_order_though_read_before_resampling(tmp_path):
    """A T2 off the T1 is reported before an unreadable STIR given after it, as when each
    image was read, resampled and checked in turn; an unreadable T2 before the STIR's."""
    t1 = save_nifti(Volume(np.ones((10, 10, 10), np.int16), np.eye(4)), tmp_path / "t1.nii.gz")
    far = ras_affine(np.eye(3), (1.0, 1.0, 1.0), origin=(0.0, 0.0, 300.0))
    t2 = save_nifti(Volume(np.ones((10, 10, 10), np.int16), far), tmp_path / "t2.nii.gz")
    missing = tmp_path / "no_such_stir.nii.gz"
    with pytest.raises(NoOverlapError, match=r"t2 image covers 0\.0 %"):
        Study.from_images(t1, t2=t2, stir=missing)
    with pytest.raises(InputNotFoundError):
        Study.from_images(t1, t2=missing, stir=t2)


def test_a_plain_t2_alone_warns_that_fat_is_bright_on_it_too():
    image = Volume(np.ones((4, 4, 4), np.int16), np.eye(4))
    fat_warning = "T2 without fat suppression"
    plain = Study.from_images(None, t2=image)
    assert any(fat_warning in note and "add the T1" in note for note in plain.notes)
    for study in (Study.from_images(None, stir=image), Study.from_images(image, t2=image)):
        assert not any(fat_warning in note for note in study.notes)


def test_study_needs_a_fluid_sensitive_image():
    t1 = Volume(np.ones((4, 4, 4), np.int16), np.eye(4), source="t1.nii.gz")
    with pytest.raises(MissingContrastError, match="fluid-sensitive image"):
        Study.from_images(t1)


def test_study_constructor_refuses_images_on_other_grids():
    t1 = Volume(np.ones((4, 4, 4), np.int16), np.eye(4), source="a.nii")
    t2 = Volume(np.ones((4, 4, 4), np.int16), np.diag([2.0, 2, 2, 1]), source="b.nii")
    with pytest.raises(GridMismatchError, match=r"a\.nii and b\.nii"):
        Study(t1=t1, t2=t2)


def test_real_t1_t2_pair_cord_masks_agree_in_world_space():
    """Bundled cervical pair: T1 is stored RAS, T2 PSR; their manual cord masks must overlap.

    The masks were drawn independently on each scan; within the common field of view they
    agree with Dice 0.85 when the geometry is right. A left-right or head-foot flip drops it
    below 0.6 (an anterior-posterior flip barely changes it: the cord sits mid-crop in AP).
    """
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "sample_data/spine/sct_testing_data"
    study = Study.from_images(
        folder / "t1/t1w.nii.gz",
        t2=folder / "t2/t2.nii.gz",
        labels=folder / "t2/t2_seg-manual.nii.gz",
    )
    t1_cord = load(folder / "t1/t1w_seg-manual.nii.gz", kind="label").data > 0
    t1_cord &= study.covered["labels"]
    t2_cord = study.labels.data > 0

    def dice(a, b):
        return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))

    assert dice(t1_cord, t2_cord) > 0.8
    for axis in (0, 2):  # RAS grid: 0 = left-right, 2 = head-foot
        assert dice(t1_cord, np.flip(t2_cord, axis)) < 0.6
