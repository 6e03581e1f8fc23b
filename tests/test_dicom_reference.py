"""The DICOM reader against public reference series and their independent NIfTI conversions.

References: ``*_ground_truth.nii.gz`` (dicom2nifti, the voxel order the converter chose) and
``*_ground_truth_reoriented.nii.gz`` (the same image flipped/transposed towards LAS by
dicom2nifti: same voxels at the same world positions). Both are compared in world space,
after reorienting to the closest canonical (RAS+) orientation. dcm_qa_* references were
made by dcm2niix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bmetoolkit.dicom.read import load_dicom, read_series, scan_dicom
from bmetoolkit.errors import (
    AmbiguousSeriesError,
    DicomSeriesError,
    FourDimensionalError,
    NotDicomOrNiftiError,
)
from bmetoolkit.io import load
from tests.helpers import SHARED_DICOM, assert_same_in_world, position_of

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(
        not SHARED_DICOM.is_dir(),
        reason=f"DICOM reference suite not found at {SHARED_DICOM} (../shared/sample_data/dicom)",
    ),
]

D2N = "dicom2nifti"

#: (series folder, reference stem or file relative to SHARED_DICOM, rescaled float data?)
CASES = [
    (f"{D2N}/siemens/anatomical/001", f"{D2N}/siemens/anatomical/001", False),
    (f"{D2N}/ge/anatomical/001", f"{D2N}/ge/anatomical/001", False),
    (f"{D2N}/philips/anatomical/001", f"{D2N}/philips/anatomical/001", False),  # implicit VR
    (f"{D2N}/hitachi/anatomical/001", f"{D2N}/hitachi/anatomical/001", False),
    (f"{D2N}/generic/anatomical/001", f"{D2N}/generic/anatomical/001", False),
    # non-square 4 x 6.4 mm pixels, RescaleSlope/Intercept different in every file
    (
        f"{D2N}/generic/anatomical/002_non_isotropic",
        f"{D2N}/generic/anatomical/002_non_isotropic",
        True,
    ),
    (f"{D2N}/generic/compressed_j2k/001", f"{D2N}/generic/compressed_j2k/001", False),
    (f"{D2N}/generic/compressed_jpeg/001", f"{D2N}/generic/compressed_jpeg/001", False),
    (f"{D2N}/generic/compressed_jpegls/001", f"{D2N}/generic/compressed_jpegls/001", False),
    (f"{D2N}/generic/compressed_rle/001", f"{D2N}/generic/compressed_rle/001", False),
    # enhanced multi-frame with per-frame RescaleSlope 4.2589
    (f"{D2N}/philips_enhanced/anatomical/001", f"{D2N}/philips_enhanced/anatomical/001", True),
    # enhanced multi-frame, everything in per-frame functional groups
    (f"{D2N}/siemens_multiframe/anatomical/001", f"{D2N}/siemens_multiframe/anatomical/001", False),
    # 2 slices: the smallest valid 3D series (dicom2nifti used to refuse it)
    (f"{D2N}/failing/slicecount/001", f"{D2N}/failing/slicecount/001", False),
]


def _reference(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4:
        assert data.shape[3] == 1
        data = data[..., 0]
    return data, image.affine


@pytest.mark.parametrize(("folder", "stem", "rescaled"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("variant", ["_ground_truth.nii.gz", "_ground_truth_reoriented.nii.gz"])
def test_dicom2nifti_series_match_reference(folder, stem, rescaled, variant):
    volume = load_dicom(SHARED_DICOM / folder)
    ref_data, ref_affine = _reference(SHARED_DICOM / f"{stem}{variant}")
    if rescaled:
        assert volume.data.dtype == np.float32
        assert_same_in_world(volume.data, volume.affine, ref_data, ref_affine, rtol_values=1e-4)
    else:
        assert volume.data.dtype.kind in "iu", "integer data without rescale keep their dtype"
        assert_same_in_world(volume.data, volume.affine, ref_data, ref_affine)


def test_non_square_pixels_go_to_the_right_axes():
    info = scan_dicom(SHARED_DICOM / D2N / "generic/anatomical/002_non_isotropic")[0]
    # PixelSpacing is [4.0, 6.39996]: row spacing 4 mm (along j), column spacing 6.4 mm (along i)
    assert info.shape == (64, 28, 4)
    assert info.spacing[:2] == pytest.approx((6.39995861053464, 4.0))
    volume = read_series(info)
    assert volume.spacing[:2] == pytest.approx((6.39995861053464, 4.0), abs=1e-6)


def test_per_frame_rescale_is_applied():
    folder = SHARED_DICOM / D2N / "philips_enhanced/anatomical/001"
    import pydicom

    ds = pydicom.dcmread(next(folder.iterdir()))
    raw = ds.pixel_array.astype(np.float64)
    volume = load_dicom(folder)
    slope = float(
        ds.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleSlope
    )
    assert slope == pytest.approx(4.2589, abs=1e-4)
    assert volume.data.max() == pytest.approx(raw.max() * slope, rel=1e-6)
    assert volume.source == str(next(folder.iterdir())), "a multi-frame series' source is its file"


def test_single_slice_series_is_refused():
    folder = SHARED_DICOM / D2N / "ge/anatomical/001_single_slice"
    info = scan_dicom(folder)[0]
    assert info.shape[2] == 1
    with pytest.raises(DicomSeriesError, match="has 1 slice; a 3D series needs at least 2") as err:
        read_series(info)
    assert err.value.path == info.files[0]
    assert "bmetoolkit info" in err.value.hint


def test_two_orientations_under_one_uid_are_split():
    folder = SHARED_DICOM / D2N / "failing/sliceorientation/001"
    infos = scan_dicom(folder)
    assert [i.uid.rsplit(".", 1)[1] for i in infos] == ["s1", "s2"]
    assert len({i.uid.rsplit(".", 1)[0] for i in infos}) == 1
    assert [i.plane for i in infos] == ["sagittal", "axial"]
    assert [i.number for i in infos] == [202, 501]
    assert all(len(i.files) == 2 for i in infos)
    assert not set(infos[0].files) & set(infos[1].files)
    assert all(" 2.dcm" in f for f in infos[0].files), "file names with spaces are read"
    for info in infos:
        volume = load_dicom(folder, series=info.number)
        assert volume.shape == (288, 288, 2)
        # Each slice sits at its own file's ImagePositionPatient.
        for k, file in enumerate(info.files):
            corner = volume.affine @ [0, 0, k, 1]
            np.testing.assert_allclose(corner[:3], position_of(file), atol=1e-4)
    with pytest.raises(AmbiguousSeriesError, match="holds 2 series") as err:
        load_dicom(folder)
    assert "#202" in str(err.value) and "#501" in str(err.value)


def test_dcm_qa_sag_matches_dcm2niix():
    folder = SHARED_DICOM / "dcm_qa_sag/In/2_gre_field_mapping"
    volume = load_dicom(folder)
    ref_data, ref_affine = _reference(
        SHARED_DICOM / "dcm_qa_sag/Ref/2_gre_field_mapping_PMUlog.nii"
    )
    # 12 bits stored in 16: the unused high bits (set in a few pixels) are not part of the value.
    assert volume.data.max() <= 4095
    assert_same_in_world(volume.data, volume.affine, ref_data, ref_affine)


def test_decubitus_positions_give_the_same_affine():
    base = SHARED_DICOM / "dcm_qa_decubitus"
    hfs = load_dicom(base / "In/HFS")
    hfdl = load_dicom(base / "In/HFDL")
    assert hfs.meta["PatientPosition"] == "HFS" and hfdl.meta["PatientPosition"] == "HFDL"
    np.testing.assert_allclose(hfs.affine, hfdl.affine, atol=1e-6)
    for volume, name in (
        (hfs, "HFS_t1_fl2d_sag_20220407150138"),
        (hfdl, "HFDL_t1_fl2d_sag_20220407152351"),
    ):
        ref_data, ref_affine = _reference(base / f"Ref_generated/{name}.nii.gz")
        # dcm2niix extrapolates its origin from the first slice step (4.7999954 mm) over 34
        # steps, so its x origin is off the first slice's IPP by 1.5e-4 mm; we keep the IPP.
        assert_same_in_world(volume.data, volume.affine, ref_data, ref_affine, atol_mm=2e-4)


def test_decubitus_affine_reproduces_every_slice_position():
    info = scan_dicom(SHARED_DICOM / "dcm_qa_decubitus/In/HFS")[0]
    volume = read_series(info)
    assert volume.shape == (256, 256, 35)
    for k, file in enumerate(info.files):
        np.testing.assert_allclose((volume.affine @ [0, 0, k, 1])[:3], position_of(file), atol=1e-4)


def test_sidecar_meta_agrees_with_dcm2niix():
    base = SHARED_DICOM / "dcm_qa_decubitus"
    meta = scan_dicom(base / "In/HFS")[0].meta
    sidecar = json.loads((base / "Ref_generated/HFS_t1_fl2d_sag_20220407150138.json").read_text())
    for key in (
        "RepetitionTime",
        "EchoTime",
        "FlipAngle",
        "MagneticFieldStrength",
        "SliceThickness",
        "SpacingBetweenSlices",
        "SeriesNumber",
        "PixelBandwidth",
        "AcquisitionMatrixPE",
        "ReconMatrixPE",
        "ScanningSequence",
        "SequenceVariant",
        "ProtocolName",
        "SeriesDescription",
        "ManufacturersModelName",
        "PercentPhaseFOV",
    ):
        assert meta[key] == pytest.approx(sidecar[key]), key
    assert meta["ImageOrientationPatientDICOM"] == [0, 1, 0, 0, 0, -1]
    forbidden = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "InstitutionName")
    assert not set(meta) & set(forbidden)


def test_enhanced_meta_comes_from_functional_groups():
    meta = scan_dicom(SHARED_DICOM / D2N / "philips_enhanced/anatomical/001")[0].meta
    assert meta["RepetitionTime"] == pytest.approx(6.7702e-3, rel=1e-4)
    assert meta["EchoTime"] == pytest.approx(3.133e-3)
    assert meta["FlipAngle"] == 9.0


def test_time_series_is_refused_with_its_layout():
    folder = SHARED_DICOM / "dcm_qa_nih/In"
    infos = scan_dicom(folder)
    assert len(infos) == 1
    assert len(infos[0].files) == 150 and infos[0].shape == (64, 64, 15)
    with pytest.raises(
        FourDimensionalError, match="10 volumes at each of 15 slice positions"
    ) as err:
        load_dicom(folder)
    assert "dcm2niix" in err.value.hint
    assert err.value.path == str(folder / "20180918GE/mr_0004")


def test_a_single_file_gives_its_whole_series():
    folder = SHARED_DICOM / D2N / "siemens/anatomical/001"
    one_file = sorted(folder.iterdir())[2]
    infos = scan_dicom(one_file)
    assert len(infos) == 1 and len(infos[0].files) == 4
    assert_same_in_world(*_as_pair(load(one_file)), *_as_pair(load_dicom(folder)))


def _as_pair(volume):
    return volume.data, volume.affine


def test_folder_of_mixed_content_skips_non_dicom(tmp_path):
    # Non-DICOM files (NIfTI, licences, JSON) next to the series are skipped silently.
    for case in ("siemens/anatomical", "ge/anatomical"):
        shutil.copytree(SHARED_DICOM / D2N / case, tmp_path / case)
    infos = scan_dicom(tmp_path)
    ge_single_uid = scan_dicom(SHARED_DICOM / D2N / "ge/anatomical/001_single_slice")[0].uid
    assert sorted(len(i.files) for i in infos) == [1, 4, 4]
    assert ge_single_uid in {i.uid for i in infos}


def test_whole_suite_scans_and_copies_are_counted_once():
    infos = scan_dicom(SHARED_DICOM / D2N / "generic")
    # The four compressed folders hold the same images (same SOPInstanceUIDs) in different
    # transfer syntaxes: one series, each image once.
    compressed = [i for i in infos if "compressed" in i.source]
    assert len(compressed) == 1 and len(compressed[0].files) == 4


def test_a_non_dicom_file_is_refused():
    with pytest.raises(NotDicomOrNiftiError, match="is not a DICOM file"):
        scan_dicom(SHARED_DICOM / D2N / "LICENSE")
