"""NIfTI/ITK loading and writing, and the bad inputs every loader must name clearly."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from bmetoolkit.errors import (
    CorruptFileError,
    EmptyInputError,
    FourDimensionalError,
    InputNotFoundError,
    InvalidVoxelsError,
    NotDicomOrNiftiError,
)
from bmetoolkit.io import as_volume, atomic_write, load, save_nifti
from bmetoolkit.volume import Volume
from tests.helpers import SAGITTAL_PSR, ras_affine


@pytest.fixture
def oblique_affine() -> np.ndarray:
    return ras_affine(
        SAGITTAL_PSR, (0.7, 1.1, 4.0), rotations=(("x", 12.0), ("y", -6.0)), origin=(5, -3, 40)
    )


def test_nifti_round_trip_keeps_affine_and_voxels(tmp_path, oblique_affine, rng):
    data = rng.integers(0, 4000, size=(12, 9, 5)).astype(np.int16)
    original = Volume(data, oblique_affine, source="mem")
    written = save_nifti(original, tmp_path / "t1.nii.gz")
    loaded = load(written)
    np.testing.assert_array_equal(loaded.data, data)
    assert loaded.data.dtype == np.int16
    np.testing.assert_allclose(loaded.affine, oblique_affine, atol=1e-4)
    header = nib.load(written).header
    assert int(header["sform_code"]) == 1 and int(header["qform_code"]) == 1


def test_label_writer_uses_integer_dtype(tmp_path, oblique_affine):
    labels = np.zeros((6, 6, 3), np.int64)
    labels[2:4, 2:4, 1] = 224
    path = save_nifti(Volume(labels, oblique_affine, kind="label"), tmp_path / "labels.nii.gz")
    image = nib.load(path)
    assert image.get_data_dtype() == np.uint8
    assert load(path, kind="label").data.max() == 224


def test_sform_is_preferred_over_qform(tmp_path):
    data = np.zeros((4, 4, 4), np.int16)
    image = nib.Nifti1Image(data, np.eye(4))
    sform = np.diag([2.0, 2.0, 2.0, 1.0])
    image.set_qform(np.eye(4), code=1)
    image.set_sform(sform, code=2)
    nib.save(image, tmp_path / "a.nii")
    np.testing.assert_allclose(load(tmp_path / "a.nii").affine, sform)


def test_qform_used_when_sform_unset(tmp_path):
    qform = np.diag([-1.5, 1.5, 3.0, 1.0])
    image = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), None)
    image.set_qform(qform, code=1)
    image.set_sform(np.eye(4), code=0)
    nib.save(image, tmp_path / "q.nii.gz")
    volume = load(tmp_path / "q.nii.gz")
    np.testing.assert_allclose(volume.affine, qform)
    assert volume.meta["AffineSource"] == "qform"


def test_singleton_fourth_axis_is_accepted(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5, 1), np.float32), np.eye(4)), tmp_path / "s.nii")
    assert load(tmp_path / "s.nii").shape == (3, 4, 5)


def test_true_4d_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5, 6), np.float32), np.eye(4)), tmp_path / "f.nii")
    with pytest.raises(FourDimensionalError, match=r"f\.nii: holds 6 volumes"):
        load(tmp_path / "f.nii")


def test_scaled_nifti_gives_float_with_scaling_applied(tmp_path):
    image = nib.Nifti1Image(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    image.header.set_slope_inter(0.5, 10.0)
    nib.save(image, tmp_path / "scaled.nii")
    data = load(tmp_path / "scaled.nii").data
    assert np.issubdtype(data.dtype, np.floating)
    assert data[1, 1, 1] == pytest.approx(7 * 0.5 + 10)


def test_itk_image_is_read_in_ras(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)  # SimpleITK order: k, j, i
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.8, 3.0))
    image.SetOrigin((10.0, 20.0, 30.0))
    sitk.WriteImage(image, str(tmp_path / "x.mha"))
    volume = load(tmp_path / "x.mha")
    assert volume.shape == (4, 3, 2)
    assert volume.data[3, 2, 1] == array[1, 2, 3]
    # LPS origin (10, 20, 30) is RAS (-10, -20, 30); LPS +x is RAS -x.
    np.testing.assert_allclose(volume.affine[:3, 3], [-10.0, -20.0, 30.0])
    np.testing.assert_allclose(np.diag(volume.affine)[:3], [-0.5, -0.8, 3.0])


def test_label_given_as_float_with_whole_numbers_becomes_integer(tmp_path):
    nib.save(nib.Nifti1Image(np.array([[[0.0, 20.0]]]), np.eye(4)), tmp_path / "l.nii")
    volume = load(tmp_path / "l.nii", kind="label")
    assert volume.data.dtype == np.uint8


def test_label_with_fractional_values_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.array([[[0.0, 0.5]]]), np.eye(4)), tmp_path / "p.nii")
    with pytest.raises(NotDicomOrNiftiError, match="non-integer"):
        load(tmp_path / "p.nii", kind="label")


# --- bad input -------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"nothere\.nii\.gz: does not exist"):
        load(tmp_path / "nothere.nii.gz")


def test_file_that_is_neither_dicom_nor_nifti(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(NotDicomOrNiftiError, match=r"notes\.txt: is neither NIfTI") as info:
        load(path)
    assert "pass a NIfTI file" in str(info.value)


def test_truncated_nifti_gz(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.float32), np.eye(4)), tmp_path / "a.nii.gz")
    content = (tmp_path / "a.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(content[: len(content) // 2])
    with pytest.raises(CorruptFileError, match=r"cut\.nii\.gz: cannot be read") as info:
        load(tmp_path / "cut.nii.gz")
    assert "truncated" in str(info.value)


def test_gzip_of_garbage_named_nifti(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(gzip.compress(b"not a nifti header at all" * 20))
    with pytest.raises(CorruptFileError, match=r"bad\.nii\.gz"):
        load(tmp_path / "bad.nii.gz")


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_voxels(tmp_path, bad_value):
    data = np.ones((4, 4, 4), np.float32)
    data[1, 2, 3] = bad_value
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(InvalidVoxelsError, match=r"nan\.nii\.gz: holds 1 NaN or infinite") as info:
        load(tmp_path / "nan.nii.gz")
    assert "nan_to_num" in str(info.value)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError, match="holds no files at all"):
        load(tmp_path / "empty")


# --- helpers ---------------------------------------------------------------------------------


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError), atomic_write(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_existing_file_only_when_done(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")
    with atomic_write(target) as temporary:
        temporary.write_text("new")
        assert target.read_text() == "old"
        assert temporary.name.startswith(".")
    assert target.read_text() == "new"


def test_as_volume_loads_paths_and_checks_kind(tmp_path):
    volume = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4))
    path = save_nifti(volume, tmp_path / "v.nii.gz")
    assert as_volume(path).shape == (2, 2, 2)
    with pytest.raises(TypeError, match="expected a label volume"):
        as_volume(volume, kind="label")


@pytest.mark.parametrize(
    "shape, zooms, plane",
    [
        ((42, 76, 77), (1.0, 1.0, 1.0), "sagittal"),  # isotropic 3D crop, narrow in x
        ((256, 256, 20), (1.0, 1.0, 1.0), "axial"),
        ((300, 20, 300), (0.8, 4.0, 0.8), "coronal"),  # thick slices decide
        ((20, 400, 400), (1.0, 1.05, 1.0), "sagittal"),  # nearly isotropic: fewest voxels
    ],
)
def test_nifti_series_info_finds_the_slice_axis(tmp_path, shape, zooms, plane):
    from bmetoolkit.io import nifti_series_info

    image = nib.Nifti1Image(np.zeros(shape, np.uint8), np.diag([*zooms, 1.0]))
    nib.save(image, tmp_path / "x.nii.gz")
    info = nifti_series_info(tmp_path / "x.nii.gz")
    assert info.plane == plane
    assert info.shape == shape and info.files == ()
