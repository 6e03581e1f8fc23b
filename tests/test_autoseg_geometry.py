"""Endplate inclination of a body's sagittal section (``spine/autoseg/geometry.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import theilslopes

from bmetoolkit.spine.autoseg.geometry import (
    IN_PLANE_SLICE_MM,
    endplate_angles,
    hull_image,
    in_plane_distance,
    label_centroids,
    surface_angle,
    theil_sen_slope,
)

SPACING = np.array([0.8, 1.1, 4.0])


def _tilted_body(angle_deg: float, shape: tuple[int, int] = (60, 60)) -> np.ndarray:
    """A 30 x 24 mm rectangle turned by ``angle_deg`` (anterior down), (AP, SI) pixels."""
    ap, si = np.meshgrid(
        (np.arange(shape[0]) - shape[0] / 2) * SPACING[0],
        (np.arange(shape[1]) - shape[1] / 2) * SPACING[1],
        indexing="ij",
    )
    turn = np.radians(angle_deg)
    along = ap * np.cos(turn) - si * np.sin(turn)
    normal = ap * np.sin(turn) + si * np.cos(turn)
    return (np.abs(along) <= 15) & (np.abs(normal) <= 12)


@pytest.mark.parametrize("angle", [-12.0, 0.0, 8.0])
def test_a_tilted_body_s_endplates_are_measured_at_its_tilt(angle):
    superior, inferior = endplate_angles(_tilted_body(angle), SPACING)
    assert superior == pytest.approx(angle, abs=1.5)
    assert inferior == pytest.approx(angle, abs=1.5)


def test_the_angle_does_not_depend_on_where_the_section_lies_in_its_slice():
    body = _tilted_body(9.0)
    padded = np.zeros((400, 300), bool)
    padded[213:273, 37:97] = body
    # the same to rounding: the pixel coordinates differ by the section's place
    assert surface_angle(padded, SPACING) == pytest.approx(surface_angle(body, SPACING), abs=1e-9)
    assert endplate_angles(padded, SPACING) == pytest.approx(
        endplate_angles(body, SPACING), abs=1e-9
    )


def test_theil_sen_slope_is_scipy_s_slope_with_ties_and_outliers():
    rng = np.random.default_rng(3)
    for n in (3, 8, 25):
        x = np.round(rng.uniform(0, 10, n))  # repeated x: pairs with equal x are left out
        y = 0.3 * x + rng.normal(0, 1, n)
        y[0] += 40
        assert theil_sen_slope(x, y) == theilslopes(y, x)[0]


def test_label_centroids_are_scipy_s_centres_of_mass_to_the_bit():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 6, size=(37, 41, 9)).astype(np.int32)
    labels[rng.random(labels.shape) < 0.6] = 0
    labels[labels == 4] = 0  # an absent label: NaN in both
    for index in (np.arange(1, 7), np.array([5, 2, 3]), np.array([1])):
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.array(ndimage.center_of_mass(labels > 0, labels, index))
        found = label_centroids(labels, index)
        assert found.shape == (len(index), 3)
        assert np.array_equal(found, expected.reshape(-1, 3), equal_nan=True)
    assert np.isnan(label_centroids(labels, np.array([4]))).all()


def test_in_plane_distance_is_the_3d_transform_with_thick_slices_to_the_bit():
    rng = np.random.default_rng(11)
    for trial in range(400):
        shape = tuple(int(n) for n in rng.integers(2, 12, 3))
        background = rng.random(shape) > rng.choice([0.03, 0.2, 0.6])
        if trial % 5 == 0:
            background[:, :, 0] = True  # a slice without a feature: the 3D transform
        spacing = np.array([rng.choice([0.6, 0.9, 1.0, 1.4]), rng.choice([0.6, 1.0, 1.4]), 4.0])
        if trial % 3 == 0:
            spacing[:2] = 1.0  # equal pixels: many ties between nearest voxels
        sampling = (float(spacing[0]), float(spacing[1]), IN_PLANE_SLICE_MM)
        far, nearest = ndimage.distance_transform_edt(
            background, sampling=sampling, return_indices=True
        )
        found, indices = in_plane_distance(background, spacing, return_indices=True)
        assert np.array_equal(found, far) and np.array_equal(indices, nearest)
        assert indices.dtype == nearest.dtype
        assert np.array_equal(in_plane_distance(background, spacing), far)


def test_hull_image_is_skimage_s_hull_on_the_whole_plane():
    from skimage.morphology import convex_hull_image

    rng = np.random.default_rng(13)
    for _ in range(300):
        plane = np.zeros(tuple(int(n) for n in rng.integers(12, 40, 2)), bool)
        a, s = (int(rng.integers(0, n - 8)) for n in plane.shape)
        blob = rng.random((int(rng.integers(3, 9)), int(rng.integers(3, 9)))) < 0.5
        blob[0, 0] = True  # at least one pixel
        plane[a : a + blob.shape[0], s : s + blob.shape[1]] = blob
        assert np.array_equal(hull_image(plane), convex_hull_image(plane))


def test_row_percentiles_by_one_sort_are_numpys_nanpercentile():
    from bmetoolkit.spine.autoseg.bodies import _nan_percentile_rows

    rng = np.random.default_rng(11)
    for trial in range(300):
        rows, cols = int(rng.integers(1, 30)), int(rng.integers(5, 200))
        if trial % 2:  # many ties
            values = rng.integers(0, 15, (rows, cols)).astype(np.float32)
        else:
            values = rng.normal(300.0, 80.0, (rows, cols)).astype(np.float32)
        values[rng.random((rows, cols)) < 0.9 * rng.random()] = np.nan
        values[:, 0] = np.where(np.isnan(values[:, 0]), 2.5, values[:, 0])
        for q in (0.0, 10.0, 50.0, 62.5, 100.0, float(rng.random() * 100.0)):
            expected = np.nanpercentile(values, q, axis=1)
            found = _nan_percentile_rows(values, q)
            assert found.dtype == expected.dtype
            np.testing.assert_array_equal(found.view(np.uint32), expected.view(np.uint32))
