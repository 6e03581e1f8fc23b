"""write_dicom_series then scan_dicom/read_series gives the volume back; SimpleITK agrees."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from bmetoolkit.dicom.read import load_dicom, read_series, scan_dicom
from bmetoolkit.dicom.write import write_dicom_series
from bmetoolkit.volume import Volume
from tests.helpers import (
    assert_same_in_world,
    ras_affine,
    read_with_simpleitk,
)

#: Voxel axes as scanners store them (columns of RAS unit vectors), all right-handed.
SAGITTAL_PIR = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # i -> P, j -> I, k -> R
AXIAL_LPS = [[-1, 0, 0], [0, -1, 0], [0, 0, 1]]  # i -> L, j -> P, k -> S
CORONAL_LIP = [[-1, 0, 0], [0, 0, -1], [0, -1, 0]]  # i -> L, j -> I, k -> P

GEOMETRIES = {
    "sagittal": ras_affine(SAGITTAL_PIR, (0.8, 0.8, 4.0), origin=(-30.0, 110.0, 95.0)),
    "axial": ras_affine(AXIAL_LPS, (0.9, 0.9, 5.0), origin=(100.0, 90.0, -60.0)),
    "coronal": ras_affine(CORONAL_LIP, (1.0, 1.0, 3.5), origin=(110.0, 40.0, 100.0)),
    "double_oblique": ras_affine(
        SAGITTAL_PIR,
        (0.75, 0.75, 4.4),
        origin=(-12.5, 80.0, 70.0),
        rotations=(("z", 12.0), ("x", 7.0)),
    ),
    "non_square_pixels": ras_affine(
        SAGITTAL_PIR, (0.7, 1.1, 4.0), origin=(-20.0, 60.0, 80.0), rotations=(("y", 9.0),)
    ),
    "gap": ras_affine(SAGITTAL_PIR, (0.6, 0.6, 4.0), origin=(-24.0, 70.0, 90.0)),
}


def _random_volume(affine, dtype, shape=(23, 17, 6), seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    data = rng.integers(max(info.min, -3000), min(info.max, 60000), shape, endpoint=True)
    return Volume(data.astype(dtype), affine)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16])
@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_integer_volume_round_trips_exactly(tmp_path, name, dtype):
    volume = _random_volume(GEOMETRIES[name], dtype)
    meta = {"SliceThickness": 3.0} if name == "gap" else None
    paths = write_dicom_series(
        volume, tmp_path, series_number=5, series_description=name, meta=meta
    )
    assert len(paths) == volume.shape[2]
    infos = scan_dicom(tmp_path)
    assert len(infos) == 1
    info = infos[0]
    assert info.shape == volume.shape
    np.testing.assert_allclose(info.spacing, volume.spacing, atol=1e-5)
    np.testing.assert_allclose(info.slice_normal, volume.grid.direction[:, 2], atol=1e-6)
    back = read_series(info)
    assert back.data.dtype == dtype
    assert np.array_equal(back.data, volume.data)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)
    assert back.source == str(tmp_path)
    # An independent reader (SimpleITK / GDCM) finds the same image in the same place.
    itk_data, itk_affine = read_with_simpleitk(info.files)
    assert np.array_equal(itk_data, volume.data)
    np.testing.assert_allclose(itk_affine, volume.affine, atol=1e-4)


def test_slice_gap_is_written_as_thickness_smaller_than_spacing(tmp_path):
    volume = _random_volume(GEOMETRIES["gap"], np.uint16)
    paths = write_dicom_series(
        volume, tmp_path, series_number=3, series_description="T1", meta={"SliceThickness": 3.0}
    )
    ds = pydicom.dcmread(paths[0])
    assert float(ds.SliceThickness) == 3.0
    assert float(ds.SpacingBetweenSlices) == pytest.approx(4.0)
    info = scan_dicom(tmp_path)[0]
    assert info.spacing[2] == pytest.approx(4.0)
    assert info.meta["SliceThickness"] == 3.0


def test_non_square_pixels_are_written_row_spacing_first(tmp_path):
    volume = _random_volume(GEOMETRIES["non_square_pixels"], np.uint16)
    paths = write_dicom_series(volume, tmp_path, series_number=1, series_description="T2")
    ds = pydicom.dcmread(paths[0])
    # PixelSpacing = [spacing between rows (along j), spacing between columns (along i)]
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([1.1, 0.7])
    assert (ds.Rows, ds.Columns) == (volume.shape[1], volume.shape[0])


def test_left_handed_volume_comes_back_flipped_along_k(tmp_path):
    affine = GEOMETRIES["sagittal"].copy()
    affine[:3, 2] *= -1  # slices stored from right to left: negative determinant
    volume = _random_volume(affine, np.int16)
    write_dicom_series(volume, tmp_path, series_number=1, series_description="T1")
    back = load_dicom(tmp_path)
    # The reader orders slices along row x column direction: k is reversed, the image is not.
    assert np.linalg.det(back.affine) > 0
    assert np.array_equal(back.data, volume.data[:, :, ::-1])
    assert_same_in_world(back.data, back.affine, volume.data, volume.affine)


def test_several_series_in_one_folder_with_shuffled_names(tmp_path):
    study = pydicom.uid.generate_uid()
    originals = {}
    for number, (name, shape) in enumerate(
        (("sagittal", (20, 16, 5)), ("axial", (12, 14, 7)), ("double_oblique", (18, 18, 4))),
        start=1,
    ):
        volume = _random_volume(GEOMETRIES[name], np.uint16, shape=shape, seed=number)
        paths = write_dicom_series(
            volume,
            tmp_path,
            series_number=number,
            series_description=name,
            study_instance_uid=study,
            seed=7,
        )
        originals[name] = volume
        # Names are random: sorting them does not give the slice order.
        assert [p.name for p in paths] != sorted(p.name for p in paths) or len(paths) < 3
    assert len(list(tmp_path.iterdir())) == 16
    infos = scan_dicom(tmp_path)
    assert [(i.number, i.description) for i in infos] == [
        (1, "sagittal"),
        (2, "axial"),
        (3, "double_oblique"),
    ]
    for info in infos:
        back = read_series(info)
        original = originals[info.description]
        assert np.array_equal(back.data, original.data)
        np.testing.assert_allclose(back.affine, original.affine, atol=1e-4)
        assert load_dicom(tmp_path, series=info.description).shape == original.shape
        assert load_dicom(tmp_path, series=str(info.number)).shape == original.shape
        assert load_dicom(tmp_path, series=info.uid).shape == original.shape


def test_one_uid_with_two_orientations_is_split(tmp_path):
    uid = pydicom.uid.generate_uid()
    sagittal = _random_volume(GEOMETRIES["sagittal"], np.uint16, seed=1)
    axial = _random_volume(GEOMETRIES["axial"], np.uint16, shape=(10, 12, 3), seed=2)
    write_dicom_series(
        sagittal,
        tmp_path,
        series_number=4,
        series_description="loc",
        series_instance_uid=uid,
        seed=1,
    )
    write_dicom_series(
        axial, tmp_path, series_number=4, series_description="loc", series_instance_uid=uid, seed=2
    )
    infos = scan_dicom(tmp_path)
    assert [i.uid for i in infos] == [f"{uid}.s1", f"{uid}.s2"]
    planes = {i.plane: read_series(i) for i in infos}
    assert np.array_equal(planes["sagittal"].data, sagittal.data)
    assert np.array_equal(planes["axial"].data, axial.data)


def test_float_volume_round_trips_within_half_a_quantisation_step(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.normal(0.3, 0.2, (16, 12, 5)).astype(np.float32)
    volume = Volume(data, GEOMETRIES["double_oblique"])
    paths = write_dicom_series(volume, tmp_path, series_number=9, series_description="map")
    slope = float(pydicom.dcmread(paths[0]).RescaleSlope)
    assert slope == pytest.approx((data.max() - data.min()) / 65535, rel=1e-6)
    back = load_dicom(tmp_path)
    assert back.data.dtype == np.float32
    error = np.abs(back.data.astype(np.float64) - data)
    assert error.max() <= slope / 2 * (1 + 1e-3) + 1e-6  # float32 rounding on top
    assert error.max() > 0  # quantised indeed: the test can see an error


def test_integers_beyond_16_bits_are_quantised(tmp_path):
    data = np.linspace(-100000, 100000, 4 * 4 * 3).reshape(4, 4, 3).astype(np.int32)
    write_dicom_series(Volume(data, np.eye(4)), tmp_path, series_number=1, series_description="x")
    back = load_dicom(tmp_path)
    assert back.data.dtype == np.float32
    np.testing.assert_allclose(back.data, data, atol=200000 / 65535)


def test_meta_round_trips_in_bids_units(tmp_path):
    meta = {
        "RepetitionTime": 0.6,
        "EchoTime": 0.012,
        "InversionTime": 0.16,
        "FlipAngle": 150.0,
        "ScanningSequence": "SE\\IR",
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "FS",
        "MagneticFieldStrength": 1.5,
        "Manufacturer": "Phantom Inc",
        "ProtocolName": "stir_sag",
        "SliceThickness": 3.5,
        "EchoTrainLength": 12,
        "ImageType": ["ORIGINAL", "PRIMARY", "M"],
    }
    volume = _random_volume(GEOMETRIES["sagittal"], np.uint16)
    paths = write_dicom_series(
        volume,
        tmp_path,
        series_number=2,
        series_description="STIR_SAG",
        meta=meta,
        patient_id="SUBJ01",
    )
    ds = pydicom.dcmread(paths[0])
    assert float(ds.RepetitionTime) == 600.0 and float(ds.InversionTime) == 160.0
    assert ds.PatientID == "SUBJ01" and ds.Modality == "MR"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    back = scan_dicom(tmp_path)[0].meta
    for key, value in meta.items():
        expected = "SK\\SP" if key == "SequenceVariant" else value
        assert back[key] == pytest.approx(expected), key
    assert back["SeriesDescription"] == "STIR_SAG" and back["SeriesNumber"] == 2
    assert "PatientID" not in back and "PatientName" not in back


def test_volume_meta_is_the_default_meta(tmp_path):
    volume = Volume(np.ones((3, 3, 2), np.uint16), np.eye(4), meta={"EchoTime": 0.08})
    write_dicom_series(volume, tmp_path, series_number=1, series_description="T2")
    assert load_dicom(tmp_path).meta["EchoTime"] == pytest.approx(0.08)


def test_label_volume_round_trips_as_label(tmp_path):
    labels = np.zeros((8, 8, 3), np.uint8)
    labels[2:5, 2:6, 1] = 20
    write_dicom_series(
        Volume(labels, np.eye(4), kind="label"), tmp_path, series_number=1, series_description="seg"
    )
    back = load_dicom(tmp_path, kind="label")
    assert back.is_label and np.array_equal(back.data, labels)


def test_file_names_are_shuffled_deterministically(tmp_path):
    volume = _random_volume(GEOMETRIES["axial"], np.uint16, shape=(4, 4, 8))
    first = write_dicom_series(volume, tmp_path / "a", series_number=1, series_description="x")
    again = write_dicom_series(volume, tmp_path / "b", series_number=1, series_description="x")
    other = write_dicom_series(
        volume, tmp_path / "c", series_number=1, series_description="x", seed=1
    )
    plain = write_dicom_series(
        volume, tmp_path / "d", series_number=1, series_description="x", shuffle_names=False
    )
    assert [p.name for p in first] == [p.name for p in again]
    assert [p.name for p in first] != [p.name for p in other]
    assert [p.name for p in first] != sorted(p.name for p in first)
    assert [p.name for p in plain] == [f"0001_{k:04d}.dcm" for k in range(1, 9)]
    assert not [p for p in (tmp_path / "a").iterdir() if "partial" in p.name]


def test_sheared_grid_is_refused(tmp_path):
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    affine[0, 2] = 0.5  # k leans along x: gantry-tilt-like shear
    with pytest.raises(ValueError, match=r"k axis is .* off the normal"):
        write_dicom_series(
            Volume(np.zeros((4, 4, 3), np.int16), affine),
            tmp_path,
            series_number=1,
            series_description="x",
        )
    assert not list(tmp_path.iterdir())


def test_non_finite_values_are_refused(tmp_path):
    data = np.ones((4, 4, 2), np.float32)
    data[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_dicom_series(
            Volume(data, np.eye(4)), tmp_path, series_number=1, series_description="x"
        )
