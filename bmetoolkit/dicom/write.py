"""Writing a volume as a DICOM series: one single-frame MR Image Storage file per slice.

Used to build DICOM phantoms and test fixtures (the reader in :mod:`bmetoolkit.dicom.read` must
find the geometry again from the headers alone) and to hand results to tools that only read
DICOM. Geometry comes from the volume's RAS+ affine, converted to DICOM's LPS+.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.io import atomic_write
from bmetoolkit.volume import LPS_TO_RAS, Volume

__all__ = ["MR_IMAGE_STORAGE", "write_dicom_series"]

#: SOP Class UID of (classic, single-frame) MR Image Storage.
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_UINT16_MAX = 65535
#: Largest angle cosine between the slice axis and the image plane still called orthogonal.
_ORTHOGONALITY_TOLERANCE = 1e-4

# BIDS key -> (DICOM keyword, converter from the BIDS value to the DICOM value).
_SECONDS_TO_MS = {
    "RepetitionTime": "RepetitionTime",
    "EchoTime": "EchoTime",
    "InversionTime": "InversionTime",
}
_NUMBERS = {
    "FlipAngle": "FlipAngle",
    "MagneticFieldStrength": "MagneticFieldStrength",
    "ImagingFrequency": "ImagingFrequency",
    "PixelBandwidth": "PixelBandwidth",
    "PercentPhaseFOV": "PercentPhaseFieldOfView",
}
_INTEGERS = {"EchoTrainLength": "EchoTrainLength", "EchoNumber": "EchoNumbers"}
_TEXTS = {
    "Manufacturer": "Manufacturer",
    "ManufacturersModelName": "ManufacturerModelName",
    "SoftwareVersions": "SoftwareVersions",
    "BodyPart": "BodyPartExamined",
    "PatientPosition": "PatientPosition",
    "SequenceName": "SequenceName",
    "ReceiveCoilName": "ReceiveCoilName",
    "InPlanePhaseEncodingDirectionDICOM": "InPlanePhaseEncodingDirection",
}
_CODE_LISTS = {
    "ScanningSequence": "ScanningSequence",
    "SequenceVariant": "SequenceVariant",
    "ScanOptions": "ScanOptions",
}


def write_dicom_series(
    volume: Volume,
    folder: str | os.PathLike,
    *,
    series_number: int,
    series_description: str,
    meta: dict | None = None,
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_instance_uid: str | None = None,
    shuffle_names: bool = True,
    seed: int = 0,
    patient_id: str = "PHANTOM",
) -> list[Path]:
    """Write a volume as a DICOM series, one MR Image Storage file per k-slice.

    Each file is single-frame, explicit VR little endian, 16 bits per pixel, with
    ImageOrientationPatient, ImagePositionPatient, PixelSpacing (row spacing first, i.e. the
    spacing along j, then along i), SliceThickness and SpacingBetweenSlices taken from the
    volume's RAS+ affine (converted to LPS+). Axis ``i`` becomes the image columns (along the
    first orientation vector), ``j`` the rows, ``k`` the slices. Non-square pixels and oblique
    grids are fine; a sheared grid is not representable and refused.

    Voxel values:

    - integer or bool data that fit uint16 or int16 are stored as they are (RescaleSlope 1,
      RescaleIntercept 0): signed dtypes as int16 when they fit, otherwise uint16;
    - float data (and integers fitting neither) are **quantised** to uint16 with one
      RescaleSlope/RescaleIntercept for the whole series: ``value ~ stored * slope +
      intercept`` with ``intercept = min`` and ``slope ~ (max - min) / 65535``. A reader
      applying the rescale gets every value back within half a step, ``slope / 2``.

    Parameters
    ----------
    volume : Volume
        The image; ``volume.affine`` must have orthogonal i, j and k axes.
    folder : str or os.PathLike
        Output folder (created if needed). Several series may share one folder.
    series_number : int
        SeriesNumber.
    series_description : str
        SeriesDescription (also ProtocolName unless ``meta`` has one).
    meta : dict, optional
        Acquisition parameters under BIDS names and units (``RepetitionTime``, ``EchoTime``,
        ``InversionTime`` in seconds, written in ms; ``FlipAngle``, ``MagneticFieldStrength``,
        ``Manufacturer``, ``ProtocolName``, ``ScanningSequence``/``SequenceVariant``/
        ``ScanOptions`` as lists or backslash-separated strings (``"SP\\OSP"``, as dcm2niix),
        ``ImageType``, ``EchoTrainLength``,
        ``SliceThickness`` which may be smaller than the slice spacing: a gap...). Geometry
        keys (``ImageOrientationPatientDICOM``, ``SpacingBetweenSlices``) are ignored: the
        affine decides. Defaults to ``volume.meta``.
    study_instance_uid, frame_of_reference_uid, series_instance_uid : str, optional
        UIDs to use; new ones are made when not given. Give the same study and frame of
        reference UIDs to series of one session.
    shuffle_names : bool
        True: random file names (``<16 hex digits>.dcm``, deterministic for a given ``seed``,
        series number and description), so that readers cannot rely on names. False:
        ``<series>_<slice>.dcm`` in slice order.
    seed : int
        Seed of the file names.
    patient_id : str
        PatientID and PatientName (no other identity is written).

    Returns
    -------
    list of Path
        The files written, in slice (k) order.

    Raises
    ------
    ValueError
        The grid is sheared (k not orthogonal to i and j, or i not orthogonal to j), or the
        data hold NaN or infinite values.

    Examples
    --------
    >>> import tempfile
    >>> import pydicom
    >>> affine = np.diag([-0.7, -1.1, 4.0, 1.0])
    >>> volume = Volume(np.ones((6, 5, 3), np.float32) * 2.5, affine)
    >>> paths = write_dicom_series(volume, tempfile.mkdtemp(), series_number=2,
    ...                            series_description="STIR", meta={"SliceThickness": 3.0})
    >>> ds = pydicom.dcmread(paths[0])
    >>> [float(v) for v in ds.PixelSpacing]  # row spacing (along j) first
    [1.1, 0.7]
    >>> float(ds.SliceThickness), float(ds.SpacingBetweenSlices)
    (3.0, 4.0)
    >>> ds.Rows, ds.Columns, [float(v) for v in ds.ImageOrientationPatient]
    (5, 6, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    """
    from pydicom.uid import generate_uid

    geometry = _geometry_lps(volume.affine)
    stored, pixel_representation, slope, intercept = _stored_values(np.asarray(volume.data))
    meta = dict(volume.meta if meta is None else meta)
    study_uid = study_instance_uid or generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    series_uid = series_instance_uid or generate_uid()
    template = _series_dataset(
        meta,
        geometry,
        stored.shape,
        series_number,
        series_description,
        patient_id,
        (study_uid, frame_uid, series_uid),
        pixel_representation,
        slope,
        intercept,
    )
    names = _file_names(stored.shape[2], series_number, series_description, shuffle_names, seed)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        dataset = _slice_dataset(template, geometry, stored, k)
        path = target / name
        with atomic_write(path) as temporary:
            dataset.save_as(temporary, enforce_file_format=True)
        paths.append(path)
    return paths


def _geometry_lps(affine: NDArray[np.float64]) -> dict[str, Any]:
    """Directions, spacings and origin of a RAS+ affine, in DICOM's LPS+ terms."""
    matrix = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    columns = matrix[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    unit = columns / spacing
    row_dir, col_dir, slice_dir = unit.T
    if abs(float(np.dot(row_dir, col_dir))) > _ORTHOGONALITY_TOLERANCE:
        raise ValueError(
            "the volume's i and j axes are not orthogonal "
            f"(angle {np.degrees(np.arccos(np.dot(row_dir, col_dir))):.3f} degrees); "
            "DICOM images need a rectangular pixel grid: resample the volume first"
        )
    normal = np.cross(row_dir, col_dir)
    if abs(abs(float(np.dot(normal, slice_dir))) - 1.0) > _ORTHOGONALITY_TOLERANCE:
        tilt = np.degrees(np.arccos(min(1.0, abs(float(np.dot(normal, slice_dir))))))
        raise ValueError(
            f"the volume's k axis is {tilt:.3f} degrees off the normal of the i/j plane "
            "(a sheared grid, e.g. gantry tilt); a DICOM series of single-frame slices cannot "
            "store it exactly: resample the volume onto an orthogonal grid first"
        )
    return {
        "row_dir": row_dir,
        "col_dir": col_dir,
        "step": columns[:, 2],
        "normal": normal,
        "origin": matrix[:3, 3],
        "column_spacing": float(spacing[0]),  # along i, PixelSpacing[1]
        "row_spacing": float(spacing[1]),  # along j, PixelSpacing[0]
        "slice_spacing": float(spacing[2]),
    }


def _stored_values(data: NDArray[Any]) -> tuple[NDArray[Any], int, float, float]:
    """(pixels to store, PixelRepresentation, RescaleSlope, RescaleIntercept)."""
    if data.dtype == np.bool_:
        data = data.astype(np.uint16)
    if np.issubdtype(data.dtype, np.integer) and data.size:
        low, high = int(data.min()), int(data.max())
        signed = np.issubdtype(data.dtype, np.signedinteger)
        if signed and -32768 <= low and high <= 32767:
            return data.astype("<i2"), 1, 1.0, 0.0
        if 0 <= low and high <= _UINT16_MAX:
            return data.astype("<u2"), 0, 1.0, 0.0
    values = data.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("the volume holds NaN or infinite values; DICOM cannot store them")
    return _quantised(values)


def _quantised(values: NDArray[np.float64]) -> tuple[NDArray[Any], int, float, float]:
    from pydicom.valuerep import format_number_as_ds

    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    intercept = float(format_number_as_ds(low))
    span = high - intercept
    slope = span / _UINT16_MAX if span > 0 else 1.0
    # The slope is written as a decimal string (at most 16 characters): round it up so the
    # largest value still maps inside 0..65535.
    written = float(format_number_as_ds(slope))
    while span > 0 and span / written > _UINT16_MAX:
        written = float(format_number_as_ds(np.nextafter(written, np.inf) * (1 + 1e-12)))
    stored = np.clip(np.rint((values - intercept) / written), 0, _UINT16_MAX)
    return stored.astype("<u2"), 0, written, intercept


def _file_names(n: int, number: int, description: str, shuffle: bool, seed: int) -> list[str]:
    if not shuffle:
        return [f"{number:04d}_{k + 1:04d}.dcm" for k in range(n)]
    rng = np.random.default_rng([seed, number, zlib.crc32(description.encode())])
    names: list[str] = []
    while len(names) < n:
        name = f"{int(rng.integers(0, 2**63)):016x}.dcm"
        if name not in names:
            names.append(name)
    return names


def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    text = format_number_as_ds(float(value))
    return "0" if float(text) == 0.0 else text  # no "-0"


def _series_dataset(
    meta: Mapping[str, Any],
    geometry: dict[str, Any],
    shape: tuple[int, ...],
    series_number: int,
    series_description: str,
    patient_id: str,
    uids: tuple[str, str, str],
    pixel_representation: int,
    slope: float,
    intercept: float,
) -> Any:
    """Dataset with every attribute shared by the slices of the series."""
    from pydicom.dataset import Dataset

    study_uid, frame_uid, series_uid = uids
    ds = Dataset()
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.Modality = "MR"
    ds.ImageType = _image_type(meta.get("ImageType"))
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.StudyID = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.PositionReferenceIndicator = ""
    ds.SeriesNumber = int(series_number)
    ds.SeriesDescription = series_description
    ds.ProtocolName = str(meta.get("ProtocolName") or series_description)
    _write_acquisition(ds, meta)
    ds.ImageOrientationPatient = [_ds(v) for v in (*geometry["row_dir"], *geometry["col_dir"])]
    ds.PixelSpacing = [_ds(geometry["row_spacing"]), _ds(geometry["column_spacing"])]
    thickness = meta.get("SliceThickness")
    ds.SliceThickness = _ds(geometry["slice_spacing"] if thickness is None else float(thickness))
    ds.SpacingBetweenSlices = _ds(geometry["slice_spacing"])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(shape[1])
    ds.Columns = int(shape[0])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = pixel_representation
    ds.RescaleIntercept = _ds(intercept)
    ds.RescaleSlope = _ds(slope)
    ds.RescaleType = "US"
    return ds


def _image_type(value: Any) -> list[str]:
    if value is None:
        return ["DERIVED", "PRIMARY", "M"]
    parts = value.split("\\") if isinstance(value, str) else [str(v) for v in value]
    return [p.upper() for p in parts if p] or ["DERIVED", "PRIMARY", "M"]


def _write_acquisition(ds: Any, meta: Mapping[str, Any]) -> None:
    for key, keyword in _CODE_LISTS.items():
        value = meta.get(key)
        if value is None:
            continue
        parts = value.split("\\") if isinstance(value, str) else list(value)
        setattr(ds, keyword, [str(p) for p in parts if str(p)])
    # MR Image module: ScanningSequence and SequenceVariant are required (type 1).
    if "ScanningSequence" not in ds:
        ds.ScanningSequence = "RM"  # research mode
    if "SequenceVariant" not in ds:
        ds.SequenceVariant = "NONE"
    if "ScanOptions" not in ds:
        ds.ScanOptions = ""
    ds.MRAcquisitionType = str(meta.get("MRAcquisitionType", "2D"))
    for key, keyword in _SECONDS_TO_MS.items():
        if meta.get(key) is not None:
            setattr(ds, keyword, _ds(float(meta[key]) * 1000.0))
    for key, keyword in _NUMBERS.items():
        if meta.get(key) is not None:
            setattr(ds, keyword, _ds(float(meta[key])))
    for key, keyword in _INTEGERS.items():
        if meta.get(key) is not None:
            setattr(ds, keyword, int(meta[key]))
    for key, keyword in _TEXTS.items():
        if meta.get(key) is not None:
            setattr(ds, keyword, str(meta[key]))


def _slice_dataset(template: Any, geometry: dict[str, Any], stored: NDArray[Any], k: int) -> Any:
    """The dataset of slice ``k``: the template plus position, instance and pixels."""
    import copy

    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    ds = copy.copy(template)
    sop_uid = generate_uid()
    position = geometry["origin"] + k * geometry["step"]
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.SliceLocation = _ds(float(np.dot(geometry["normal"], position)))
    pixels = np.ascontiguousarray(stored[:, :, k].T)  # [row, column]
    ds.PixelData = pixels.tobytes()
    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    file_meta.MediaStorageSOPInstanceUID = sop_uid
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = file_meta
    ds.preamble = b"\x00" * 128
    return ds
