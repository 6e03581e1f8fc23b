"""The core Grid and Volume types."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.errors import GridMismatchError
from bmetoolkit.volume import Grid, Volume, lps_to_ras
from tests.helpers import ras_affine


def test_grid_spacing_and_voxel_volume_with_rotation_and_non_square_pixels():
    affine = ras_affine(np.eye(3), (0.7, 1.1, 4.0), rotations=(("x", 20.0), ("z", -7.0)))
    grid = Grid((10, 10, 5), affine)
    np.testing.assert_allclose(grid.spacing, [0.7, 1.1, 4.0])
    assert grid.voxel_volume_mm3 == pytest.approx(0.7 * 1.1 * 4.0)
    np.testing.assert_allclose(grid.direction.T @ grid.direction, np.eye(3), atol=1e-12)


def test_world_voxel_round_trip_on_oblique_grid(oblique_t1_grid, rng):
    points = rng.uniform(0, 50, size=(100, 3))
    back = oblique_t1_grid.world_to_voxel(oblique_t1_grid.voxel_to_world(points))
    np.testing.assert_allclose(back, points, atol=1e-9)


def test_corners_span_field_of_view():
    grid = Grid((4, 2, 3), np.diag([2.0, 1.0, 5.0, 1.0]))
    corners = grid.corners_world()
    np.testing.assert_allclose(corners.min(axis=0), [-1.0, -0.5, -2.5])
    np.testing.assert_allclose(corners.max(axis=0), [7.0, 1.5, 12.5])


@pytest.mark.parametrize(
    "affine, message",
    [
        (np.eye(3), "4x4"),
        (np.diag([1.0, 1.0, 0.0, 1.0]), "singular"),
        (np.full((4, 4), np.nan), "NaN"),
    ],
)
def test_bad_affines_are_refused(affine, message):
    with pytest.raises(ValueError, match=message):
        Grid((2, 2, 2), affine)


def test_grid_equality_tolerance():
    base = np.diag([1.0, 1.0, 1.0, 1.0])
    nudged = base.copy()
    nudged[0, 3] = 5e-5
    moved = base.copy()
    moved[0, 3] = 1e-3
    assert Grid((2, 2, 2), base) == Grid((2, 2, 2), nudged)
    assert Grid((2, 2, 2), base) != Grid((2, 2, 2), moved)
    assert Grid((2, 2, 2), base) != Grid((2, 2, 3), base)


def test_label_volume_needs_integer_dtype():
    with pytest.raises(TypeError, match="integer"):
        Volume(np.zeros((2, 2, 2), np.float32), np.eye(4), kind="label")
    labels = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4), kind="label")
    assert labels.is_label


def test_volume_refuses_non_3d_data():
    with pytest.raises(ValueError, match="3D"):
        Volume(np.zeros((2, 2)), np.eye(4))


def test_with_data_checks_shape_and_keeps_provenance():
    volume = Volume(np.ones((2, 3, 4), np.float32), np.eye(4), source="t1.nii.gz", meta={"a": 1})
    derived = volume.with_data(volume.data * 2)
    assert derived.source == "t1.nii.gz" and derived.meta == {"a": 1}
    with pytest.raises(GridMismatchError, match=r"t1\.nii\.gz"):
        volume.with_data(np.ones((3, 3, 3)))


def test_affine_is_read_only():
    volume = Volume(np.ones((2, 2, 2)), np.eye(4))
    with pytest.raises(ValueError):
        volume.affine[0, 0] = 2.0


def test_lps_to_ras_flips_first_two_axes():
    affine = ras_affine(np.eye(3), (1.0, 2.0, 3.0), origin=(10.0, 20.0, 30.0))
    converted = lps_to_ras(affine)
    np.testing.assert_allclose(converted[:3, 3], [-10.0, -20.0, 30.0])
    np.testing.assert_allclose(lps_to_ras(converted), affine)


def test_grids_equal_within_tolerance_hash_alike():
    base = np.eye(4)
    nudged = base.copy()
    nudged[:3, 3] = [4e-5, -6e-5, 5e-5]  # equal within 1e-4 mm, but rounds differently
    assert Grid((3, 3, 3), base) == Grid((3, 3, 3), nudged)
    assert len({Grid((3, 3, 3), base), Grid((3, 3, 3), nudged)}) == 1


def test_occupied_box_is_the_smallest_box_holding_every_true_voxel() -> None:
    from bmetoolkit.volume import occupied_box

    rng = np.random.default_rng(3)
    for _ in range(300):
        shape = tuple(int(n) for n in rng.integers(1, 7, 3))
        mask = rng.random(shape) < rng.choice([0.0, 0.02, 0.2])
        box = occupied_box(mask)
        if not mask.any():
            assert all(s == slice(0, 0) for s in box)
            continue
        assert np.count_nonzero(mask[box]) == np.count_nonzero(mask)  # holds them all
        for axis, span in enumerate(box):  # and each face touches one
            faces = [span.start, span.stop - 1]
            assert all(np.take(mask, face, axis=axis).any() for face in faces)


def test_a_volume_builds_its_grid_once_and_pickles_with_it():
    import pickle

    vol = Volume(np.zeros((3, 4, 5), np.int16), np.diag([0.5, 0.5, 4.0, 1.0]))
    assert vol.grid is vol.grid
    again = pickle.loads(pickle.dumps(vol))
    assert again.grid.same_as(vol.grid) and again.grid.shape == (3, 4, 5)
    assert vol.with_data(np.ones((3, 4, 5), np.int16)).grid.same_as(vol.grid)
