"""Bad DICOM input gives a typed error naming the file or folder, the problem and a remedy.

Every case is built from write_dicom_series output by deleting, editing or cutting files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from bmetoolkit.dicom.read import load_dicom, read_series, scan_dicom
from bmetoolkit.dicom.write import write_dicom_series
from bmetoolkit.errors import (
    AmbiguousSeriesError,
    BmetoolkitError,
    DicomSeriesError,
    EmptyInputError,
    FourDimensionalError,
    InputNotFoundError,
    NotDicomOrNiftiError,
    PixelDataError,
)
from bmetoolkit.volume import Volume
from tests.helpers import ras_affine

SAGITTAL = ras_affine([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], (0.9, 0.9, 4.0), origin=(-20, 90, 80))


def _series(folder: Path, *, slices: int = 6, shape=(12, 10), number: int = 1, **kwargs):
    rng = np.random.default_rng(number)
    data = rng.integers(0, 1000, (*shape, slices)).astype(np.uint16)
    return write_dicom_series(
        Volume(data, SAGITTAL),
        folder,
        series_number=number,
        series_description=f"T1_{number}",
        **kwargs,
    )


def _edit(path: Path, **changes) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def _assert_helpful(error: BmetoolkitError, where: str | Path) -> None:
    assert str(where) in str(error), "the message names the file or folder"
    assert error.hint, "the error says what to do"


def test_missing_path(tmp_path):
    with pytest.raises(InputNotFoundError, match="does not exist") as err:
        scan_dicom(tmp_path / "nowhere")
    _assert_helpful(err.value, tmp_path / "nowhere")


def test_empty_folder(tmp_path):
    with pytest.raises(EmptyInputError, match=r"0 files looked at") as err:
        load_dicom(tmp_path)
    _assert_helpful(err.value, tmp_path)


def test_folder_without_dicom_files(tmp_path):
    (tmp_path / "notes.txt").write_text("scan protocol")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (tmp_path / "sub" / "fake.dcm").write_bytes(bytes(300))  # a .dcm name is not enough
    with pytest.raises(EmptyInputError, match=r"among 3 file\(s\) looked at: 3 not DICOM") as err:
        scan_dicom(tmp_path)
    _assert_helpful(err.value, tmp_path)


def test_folder_of_nifti_files_is_told_to_give_them_by_role(tmp_path):
    (tmp_path / "t1.nii.gz").write_bytes(bytes(400))
    (tmp_path / "stir.nii").write_bytes(bytes(400))
    with pytest.raises(EmptyInputError, match="not DICOM") as err:
        scan_dicom(tmp_path)
    _assert_helpful(err.value, tmp_path)
    assert "NIfTI files (stir.nii, t1.nii.gz)" in err.value.hint
    assert "--t1 FILE --stir FILE" in err.value.hint


def test_folder_with_dicom_but_no_images(tmp_path):
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # basic text SR
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "SR"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(EmptyInputError, match="1 DICOM without image"):
        scan_dicom(tmp_path)


def test_single_file_that_is_not_dicom(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_text("not really")
    with pytest.raises(NotDicomOrNiftiError, match="is not a DICOM file") as err:
        scan_dicom(path)
    _assert_helpful(err.value, path)


def test_single_slice_series(tmp_path):
    paths = _series(tmp_path, slices=1)
    with pytest.raises(DicomSeriesError, match="has 1 slice; a 3D series needs at least 2") as err:
        load_dicom(tmp_path)
    _assert_helpful(err.value, paths[0])


def test_missing_slice(tmp_path):
    paths = _series(tmp_path, slices=8)
    paths[3].unlink()
    with pytest.raises(
        DicomSeriesError, match=r"has a gap: 8\.000 mm .* 1 slice\(s\) are missing"
    ) as err:
        load_dicom(tmp_path)
    _assert_helpful(err.value, tmp_path)
    assert str(paths[2]) in str(err.value) and str(paths[4]) in str(err.value)


def test_two_missing_slices(tmp_path):
    paths = _series(tmp_path, slices=8)
    paths[3].unlink()
    paths[4].unlink()
    with pytest.raises(DicomSeriesError, match=r"about 2 slice\(s\) are missing"):
        load_dicom(tmp_path)


def test_uneven_spacing(tmp_path):
    paths = _series(tmp_path, slices=6)
    ds = pydicom.dcmread(paths[2])
    position = [float(v) for v in ds.ImagePositionPatient]
    position[0] -= 1.5  # 1.5 mm further along the slice normal (LPS x; normal is -x here)
    _edit(paths[2], ImagePositionPatient=position)
    with pytest.raises(DicomSeriesError, match="unevenly spaced slices") as err:
        load_dicom(tmp_path)
    _assert_helpful(err.value, tmp_path)


def test_slices_shifted_in_plane(tmp_path):
    paths = _series(tmp_path, slices=5)
    ds = pydicom.dcmread(paths[2])
    position = [float(v) for v in ds.ImagePositionPatient]
    position[2] += 3.0  # moved within the slice plane: positions no longer on one line
    _edit(paths[2], ImagePositionPatient=position)
    with pytest.raises(DicomSeriesError, match="not on a straight line") as err:
        load_dicom(tmp_path)
    assert str(paths[2]) in str(err.value)


def test_mixed_image_sizes(tmp_path):
    uid = pydicom.uid.generate_uid()
    small = _series(tmp_path, slices=6, shape=(12, 10), series_instance_uid=uid)
    for path in small[3:]:
        path.unlink()
    # Same series UID and orientation, the next three positions, but 16 x 14 pixels.
    data = np.zeros((16, 14, 3), np.uint16)
    affine = SAGITTAL.copy()
    affine[:3, 3] += 3 * affine[:3, 2]
    big = write_dicom_series(
        Volume(data, affine),
        tmp_path,
        series_number=1,
        series_description="T1_1",
        series_instance_uid=uid,
        seed=5,
    )
    with pytest.raises(DicomSeriesError, match=r"different sizes .*12x10 .*16x14") as err:
        load_dicom(tmp_path)
    _assert_helpful(err.value, tmp_path)
    assert str(big[0]) in str(err.value) or str(small[0]) in str(err.value)


def test_truncated_pixel_data(tmp_path):
    paths = _series(tmp_path, slices=4)
    victim = paths[1]
    size = victim.stat().st_size
    with open(victim, "r+b") as handle:
        handle.truncate(size - 100)
    with pytest.raises(PixelDataError, match=r"truncated: \d+ of 240 bytes") as err:
        load_dicom(tmp_path)
    assert err.value.path == str(victim)
    _assert_helpful(err.value, victim)


def test_file_cut_before_its_pixel_data(tmp_path):
    paths = _series(tmp_path, slices=4)
    victim = paths[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00")])  # up to the (7FE0,0010) tag
    with pytest.raises(PixelDataError, match="no pixel data element") as err:
        load_dicom(tmp_path)
    assert err.value.path == str(victim)


def test_corrupt_compressed_pixel_data(tmp_path):
    paths = _series(tmp_path, slices=3)
    ds = pydicom.dcmread(paths[0])
    ds.compress(pydicom.uid.RLELossless)
    ds.save_as(paths[0])
    assert load_dicom(tmp_path).shape == (12, 10, 3), "intact RLE is read"
    data = bytearray(paths[0].read_bytes())
    start = data.rindex(b"\xe0\x7f\x10\x00")
    data[start + 40 : start + 120] = b"\xff" * 80  # damage the RLE header and segments
    paths[0].write_bytes(bytes(data))
    with pytest.raises(PixelDataError, match="cannot be decoded") as err:
        load_dicom(tmp_path)
    assert err.value.path == str(paths[0])


def test_file_removed_after_scanning(tmp_path):
    paths = _series(tmp_path, slices=4)
    info = scan_dicom(tmp_path)[0]
    paths[0].unlink()
    with pytest.raises(InputNotFoundError, match="no longer exists") as err:
        read_series(info)
    _assert_helpful(err.value, paths[0])


def test_duplicate_positions_that_are_not_4d(tmp_path):
    paths = _series(tmp_path, slices=5)
    copy = tmp_path / "copy_of_slice.dcm"
    shutil.copy(paths[2], copy)
    _edit(copy, SOPInstanceUID=pydicom.uid.generate_uid())  # a re-sent image, new UID
    with pytest.raises(DicomSeriesError, match="repeated slice positions") as err:
        load_dicom(tmp_path)
    assert not isinstance(err.value, FourDimensionalError)
    assert "remove the extra files" in err.value.hint


def test_exact_copies_are_read_once(tmp_path):
    paths = _series(tmp_path / "a", slices=5)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # same SOPInstanceUIDs twice
    volume = load_dicom(tmp_path)
    assert volume.shape[2] == len(paths)


def test_two_volumes_at_every_position_are_4d(tmp_path):
    uid = pydicom.uid.generate_uid()
    _series(tmp_path, slices=5, series_instance_uid=uid, seed=1)
    _series(tmp_path, slices=5, series_instance_uid=uid, seed=2)
    with pytest.raises(FourDimensionalError, match="2 volumes at each of 5 slice positions") as err:
        load_dicom(tmp_path)
    _assert_helpful(err.value, tmp_path)


def test_several_series_need_a_choice(tmp_path):
    _series(tmp_path, number=3)
    _series(tmp_path, number=8, slices=4)
    with pytest.raises(AmbiguousSeriesError) as err:
        load_dicom(tmp_path)
    message = str(err.value)
    assert "holds 2 series" in message
    assert '#3 "T1_3" (sagittal, 12x10x6)' in message and '#8 "T1_8" (sagittal, 12x10x4)' in message
    assert "series=" in message and f"bmetoolkit info {tmp_path}" in message
    assert load_dicom(tmp_path, series=8).shape == (12, 10, 4)
    with pytest.raises(AmbiguousSeriesError, match="no series matches series='T2'"):
        load_dicom(tmp_path, series="T2")


def test_file_cut_inside_its_header(tmp_path):
    paths = _series(tmp_path, slices=4)
    data = paths[0].read_bytes()
    cut = data.index(b"\x28\x00\x10\x00")  # just before (0028,0010) Rows
    paths[0].write_bytes(data[:cut])
    with pytest.raises(PixelDataError, match="header ends before the image attributes") as err:
        load_dicom(tmp_path)
    assert err.value.path == str(paths[0])


def test_file_cut_before_its_series_uid_is_skipped_and_reported(tmp_path, recwarn):
    paths = _series(tmp_path, slices=4)
    broken = tmp_path / "broken.dcm"
    data = paths[0].read_bytes()
    broken.write_bytes(data[: data.index(b"\x20\x00\x0e\x00")])  # before (0020,000E)
    skipped: list[tuple[str, str]] = []
    infos = scan_dicom(tmp_path, skipped=skipped)
    assert len(infos) == 1 and len(infos[0].files) == 4
    assert [path for path, _ in skipped] == [str(broken)]
    assert "no readable SeriesInstanceUID" in skipped[0][1]
    assert not recwarn.list  # reported to the caller, not printed as a warning
