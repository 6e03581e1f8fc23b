"""Reading DICOM series into volumes: find series from headers, then read one as a 3D volume.

Two steps, as the rest of the toolkit expects:

1. :func:`scan_dicom` reads the **headers only** of every file under a folder (pixel data are
   skipped, not read) and groups the images into series by SeriesInstanceUID. One UID whose
   images have several orientations is split into sub-series (``<uid>.s1``, ``<uid>.s2``...).
   The headers are kept in a small in-memory cache, keyed by path, modification time and
   size, so that reading a series afterwards does not parse its files a second time.
2. :func:`read_series` reads the pixel data of one series, orders its slices by
   ImagePositionPatient projected on the slice normal (never by file name or InstanceNumber),
   checks that the slices form one regular 3D grid, and applies RescaleSlope/Intercept.

:func:`load_dicom` does both and picks the series to read.

Conventions
-----------
- DICOM patient coordinates are LPS+; the returned affines are RAS+
  (``affine = LPS_TO_RAS @ A_lps``).
- Voxel axes: ``i`` runs along the columns of the image (the first ImageOrientationPatient
  vector, spacing ``PixelSpacing[1]``), ``j`` along its rows (the second vector, spacing
  ``PixelSpacing[0]``), ``k`` over slices in increasing order along the slice normal
  ``row_dir x col_dir``. The affine therefore always has a positive determinant.
- A 3D series needs at least 2 slices; a single slice (localizer, 2D image) is refused with
  :class:`~bmetoolkit.errors.DicomSeriesError`.
- Several images at each slice position (time series, multi-echo, diffusion) are refused
  with :class:`~bmetoolkit.errors.FourDimensionalError`.
- Classic single-frame and enhanced multi-frame (per-frame functional groups) images are
  read; uncompressed little-endian pixel data are read straight from the file at the offset
  found while scanning, compressed ones (JPEG, JPEG-LS, JPEG 2000, RLE) through pydicom and
  its pylibjpeg/pyjpegls plugins.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from bmetoolkit.volume import Volume
>>> from bmetoolkit.dicom_write import write_dicom_series
>>> folder = tempfile.mkdtemp()
>>> data = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
>>> _ = write_dicom_series(Volume(data, np.diag([0.5, 0.5, 3.0, 1.0])), folder,
...                        series_number=7, series_description="T1_SAG")
>>> [info.label for info in scan_dicom(folder)]
['#7 "T1_SAG" (axial, 4x3x2)']
>>> volume = load_dicom(folder)
>>> bool(np.array_equal(volume.data, data)), volume.data.dtype.name
(True, 'int16')
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import (
    AmbiguousSeriesError,
    DicomSeriesError,
    EmptyInputError,
    FourDimensionalError,
    InputNotFoundError,
    NotDicomOrNiftiError,
    PixelDataError,
)
from bmetoolkit.series import SeriesInfo
from bmetoolkit.volume import LPS_TO_RAS, Kind, Volume

__all__ = ["clear_header_cache", "load_dicom", "read_series", "scan_dicom"]

PathLike = str | os.PathLike

#: Two ImageOrientationPatient vectors closer than this (max abs difference) are the same.
ORIENTATION_TOLERANCE = 1e-3
#: Slice positions closer than this along the normal (mm) are the same position.
POSITION_TOLERANCE_MM = 0.01
#: Steps between slices may differ from the series' step by this fraction (or by
#: :data:`POSITION_TOLERANCE_MM`, whichever is larger) before the spacing counts as uneven.
SPACING_RELATIVE_TOLERANCE = 0.01

#: Header values larger than this many bytes are skipped while scanning (read on demand).
_DEFER_BYTES = 512
_NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: SOP classes of images that a series may hold (MR, CT, PET, secondary capture).
_IMAGE_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.128"}
_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.2.",
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.130",
)
_SPLIT_SUFFIX = re.compile(r"\.s\d+$")
#: Headers kept in memory between scanning and reading (a few kB each).
_HEADER_CACHE_SIZE = 20_000

# BIDS sidecar key -> DICOM keyword(s) to look for, in order.
_META_TEXT: dict[str, tuple[str, ...]] = {
    "SeriesDescription": ("SeriesDescription",),
    "ProtocolName": ("ProtocolName",),
    "Modality": ("Modality",),
    "Manufacturer": ("Manufacturer",),
    "ManufacturersModelName": ("ManufacturerModelName",),
    "SoftwareVersions": ("SoftwareVersions",),
    "BodyPart": ("BodyPartExamined",),
    "PatientPosition": ("PatientPosition",),
    "SequenceName": ("SequenceName", "PulseSequenceName"),
    "MRAcquisitionType": ("MRAcquisitionType",),
    "ReceiveCoilName": ("ReceiveCoilName",),
    "InPlanePhaseEncodingDirectionDICOM": ("InPlanePhaseEncodingDirection",),
}
_META_JOINED: dict[str, tuple[str, ...]] = {
    "ScanningSequence": ("ScanningSequence",),
    "SequenceVariant": ("SequenceVariant",),
    "ScanOptions": ("ScanOptions",),
}
_META_FLOAT: dict[str, tuple[str, ...]] = {
    "MagneticFieldStrength": ("MagneticFieldStrength",),
    "ImagingFrequency": ("ImagingFrequency",),
    "FlipAngle": ("FlipAngle",),
    "SliceThickness": ("SliceThickness",),
    "SpacingBetweenSlices": ("SpacingBetweenSlices",),
    "PixelBandwidth": ("PixelBandwidth",),
    "PercentPhaseFOV": ("PercentPhaseFieldOfView",),
}
_META_SECONDS: dict[str, tuple[str, ...]] = {
    "RepetitionTime": ("RepetitionTime",),
    "EchoTime": ("EchoTime", "EffectiveEchoTime"),
    "InversionTime": ("InversionTime", "InversionTimes"),
}
_META_INT: dict[str, tuple[str, ...]] = {
    "SeriesNumber": ("SeriesNumber",),
    "EchoTrainLength": ("EchoTrainLength",),
    "EchoNumber": ("EchoNumbers",),
}

_GEOMETRY_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "NumberOfFrames",
    "AcquisitionMatrix",
    "ImageType",
    "FrameType",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "PixelData",
)


def _specific_tags() -> list[int]:
    from pydicom.datadict import tag_for_keyword

    keywords = {*_GEOMETRY_KEYWORDS}
    for table in (_META_TEXT, _META_JOINED, _META_FLOAT, _META_SECONDS, _META_INT):
        for names in table.values():
            keywords.update(names)
    tags = [tag_for_keyword(keyword) for keyword in sorted(keywords)]
    return [tag for tag in tags if tag is not None]


_SPECIFIC_TAGS = _specific_tags()


# --------------------------------------------------------------------------------------------
# Header records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """One 2D image: a single-frame file, or one frame of a multi-frame file."""

    path: str
    index: int  # frame index within the file (0 for single-frame files)
    orientation: tuple[float, ...]  # ImageOrientationPatient, 6 values (LPS)
    position: tuple[float, float, float]  # ImagePositionPatient (LPS)
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) as in DICOM
    rows: int
    columns: int
    slope: float
    intercept: float
    instance: int


@dataclass(frozen=True)
class _FileHeader:
    """What scanning learnt about one DICOM image file (no pixel data)."""

    path: str
    uid: str
    sop_uid: str | None
    number: int | None
    transfer_syntax: str
    bits_allocated: int
    bits_stored: int
    signed: bool
    samples: int
    n_frames: int
    pixel_offset: int | None  # file offset of the pixel data value, None when absent
    pixel_length: int | None
    frames: tuple[_Frame, ...]
    meta: dict[str, Any]
    problem: str | None = None  # why this image cannot be read, found while scanning


class _Skip(Exception):
    """A file that is not a DICOM image with geometry; ``reason`` says which kind."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_header_cache: OrderedDict[str, tuple[tuple[int, int, int], _FileHeader]] = OrderedDict()


def _cached_header(path: str) -> _FileHeader:
    """Header of ``path`` from the cache when the file is unchanged, else read it."""
    stat = os.stat(path)
    stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    hit = _header_cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    header = _read_header(path)
    _header_cache[path] = (stamp, header)
    while len(_header_cache) > _HEADER_CACHE_SIZE:
        _header_cache.popitem(last=False)
    return header


def clear_header_cache() -> None:
    """Forget every DICOM header read so far (benchmarks use it to time a cold start)."""
    _header_cache.clear()


def _looks_like_dicom(path: str) -> tuple[bool, bool]:
    """(is DICOM candidate, has the 'DICM' preamble), from the first bytes of a file."""
    with open(path, "rb") as handle:
        head = handle.read(132)
    if len(head) == 132 and head[128:132] == b"DICM":
        return True, True
    # Preamble-less files start with a group 0002 or 0008 tag, little endian.
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00"), False


def _read_header(path: str) -> _FileHeader:
    """Parse the header of one file without reading its pixel data; raise _Skip if not usable."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        candidate, preamble = _looks_like_dicom(path)
    except OSError as exc:
        raise _Skip("unreadable") from exc
    if not candidate:
        raise _Skip("not-dicom")
    try:
        ds = pydicom.dcmread(
            path, defer_size=_DEFER_BYTES, specific_tags=_SPECIFIC_TAGS, force=not preamble
        )
    except InvalidDicomError as exc:
        raise _Skip("not-dicom") from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        warnings.warn(
            f"{path}: skipped, its DICOM header cannot be parsed ({type(exc).__name__}: {exc})",
            stacklevel=3,
        )
        raise _Skip("unreadable") from exc
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and file_meta.get("MediaStorageSOPClassUID") == _DICOMDIR_SOP_CLASS:
        raise _Skip("no-image")
    if "Rows" in ds and "Columns" in ds and "SeriesInstanceUID" in ds:
        return _header_from_dataset(ds, path)
    if not _is_image_class(ds):
        raise _Skip("no-image")
    if "SeriesInstanceUID" not in ds:
        warnings.warn(
            f"{path}: skipped, an image file whose header ends before its series UID "
            "(truncated or damaged)",
            stacklevel=3,
        )
        raise _Skip("unreadable")
    # An image of a known series whose header stops early: keep it, so that reading the
    # series names this file instead of reporting a missing slice.
    return _FileHeader(
        path=path,
        uid=str(ds.SeriesInstanceUID),
        sop_uid=None,
        number=None,
        transfer_syntax="",
        bits_allocated=0,
        bits_stored=0,
        signed=False,
        samples=1,
        n_frames=0,
        pixel_offset=None,
        pixel_length=None,
        frames=(),
        meta={},
        problem="the header ends before the image attributes (Rows, Columns): "
        "the file is truncated or damaged",
    )


def _is_image_class(ds: Any) -> bool:
    sop_class = str(ds.get("SOPClassUID", ""))
    return sop_class in _IMAGE_SOP_CLASSES or sop_class.startswith(_IMAGE_SOP_PREFIXES)


def _header_from_dataset(ds: Any, path: str) -> _FileHeader:
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
    n_frames = _as_int(ds.get("NumberOfFrames")) or 1
    frames = _frames_of(ds, path, n_frames)
    if not frames:
        raise _Skip("no-geometry")
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    offset = None if raw is None else int(raw.value_tell)
    length = None if raw is None else int(raw.length)
    bits = _as_int(ds.get("BitsAllocated")) or 16
    return _FileHeader(
        path=path,
        uid=str(ds.SeriesInstanceUID),
        sop_uid=str(ds.SOPInstanceUID) if "SOPInstanceUID" in ds else None,
        number=_as_int(ds.get("SeriesNumber")),
        transfer_syntax=transfer_syntax,
        bits_allocated=bits,
        bits_stored=_as_int(ds.get("BitsStored")) or bits,
        signed=_as_int(ds.get("PixelRepresentation")) == 1,
        samples=_as_int(ds.get("SamplesPerPixel")) or 1,
        n_frames=n_frames,
        pixel_offset=offset,
        pixel_length=length,
        frames=tuple(frames),
        meta=_bids_meta(ds, frames[0]),
    )


def _frames_of(ds: Any, path: str, n_frames: int) -> list[_Frame]:
    rows, columns = int(ds.Rows), int(ds.Columns)
    instance = _as_int(ds.get("InstanceNumber")) or 0
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        return _enhanced_frames(ds, path, n_frames, rows, columns, instance)
    orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    position = _floats(ds.get("ImagePositionPatient"), 3)
    spacing = _floats(ds.get("PixelSpacing"), 2)
    if orientation is None or position is None or spacing is None:
        return []
    slope, intercept = _rescale(ds)
    return [
        _Frame(
            path, index, orientation, position, spacing, rows, columns, slope, intercept, instance
        )
        for index in range(n_frames)
    ]


def _enhanced_frames(
    ds: Any, path: str, n_frames: int, rows: int, columns: int, instance: int
) -> list[_Frame]:
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    top_slope, top_intercept = _rescale(ds)
    frames = []
    for index in range(n_frames):
        groups = (per_frame[index] if index < len(per_frame) else None, shared)
        orientation = _floats(
            _functional(groups, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
        )
        position = _floats(_functional(groups, "PlanePositionSequence", "ImagePositionPatient"), 3)
        spacing = _floats(_functional(groups, "PixelMeasuresSequence", "PixelSpacing"), 2)
        if orientation is None or position is None or spacing is None:
            return []
        slope = _functional(groups, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _functional(groups, "PixelValueTransformationSequence", "RescaleIntercept")
        frames.append(
            _Frame(
                path,
                index,
                orientation,
                position,
                spacing,
                rows,
                columns,
                top_slope if slope is None else float(slope),
                top_intercept if intercept is None else float(intercept),
                instance * 100_000 + index,
            )
        )
    return frames


def _functional(groups: Iterable[Any], sequence: str, keyword: str) -> Any:
    """Value of ``keyword`` in functional group ``sequence``, per-frame first, then shared."""
    for group in groups:
        if group is not None and sequence in group and len(group[sequence].value):
            item = group[sequence].value[0]
            if keyword in item:
                return item[keyword].value
    return None


def _rescale(ds: Any) -> tuple[float, float]:
    slope = _as_float(ds.get("RescaleSlope"))
    intercept = _as_float(ds.get("RescaleIntercept"))
    return (1.0 if slope is None or slope == 0 else slope), (intercept or 0.0)


# --------------------------------------------------------------------------------------------
# Small value converters
# --------------------------------------------------------------------------------------------


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in (value if _is_multi(value) else [value]))
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(np.isfinite(numbers)):
        return None
    return numbers


def _is_multi(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _as_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if _is_multi(value):
        if not len(value):
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    number = _as_float(value)
    return None if number is None else round(number)


def _lookup(ds: Any, keywords: Sequence[str]) -> Any:
    """First non-empty value of ``keywords`` at the top level, else inside functional groups."""
    for keyword in keywords:
        if keyword in ds and ds[keyword].value not in (None, "", b""):
            return ds[keyword].value
    items = []
    for sequence in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if sequence in ds and len(ds[sequence].value):
            items.append(ds[sequence].value[0])
    for item in items:
        for element in item:
            if element.VR != "SQ" or not len(element.value):
                continue
            sub = element.value[0]
            for keyword in keywords:
                if keyword in sub and sub[keyword].value not in (None, "", b""):
                    return sub[keyword].value
    return None


def _bids_meta(ds: Any, first: _Frame) -> dict[str, Any]:
    """Acquisition parameters under BIDS sidecar names; never patient identity."""
    meta: dict[str, Any] = {}
    for key, names in _META_TEXT.items():
        value = _lookup(ds, names)
        if value is not None and str(value).strip():
            meta[key] = str(value).strip()
    for key, names in _META_JOINED.items():
        value = _lookup(ds, names)
        if value is not None:
            parts = [str(v).strip() for v in (value if _is_multi(value) else [value])]
            if any(parts):
                meta[key] = "\\".join(p for p in parts if p)  # as dcm2niix: "SP\\OSP"
    for key, names in _META_FLOAT.items():
        number = _as_float(_lookup(ds, names))
        if number is not None:
            meta[key] = number
    for key, names in _META_SECONDS.items():
        number = _as_float(_lookup(ds, names))
        if number is not None:
            meta[key] = number / 1000.0
    for key, names in _META_INT.items():
        number = _as_int(_lookup(ds, names))
        if number is not None:
            meta[key] = number
    image_type = _lookup(ds, ("ImageType", "FrameType"))
    if image_type is not None:
        meta["ImageType"] = [
            str(v) for v in (image_type if _is_multi(image_type) else [image_type])
        ]
    meta["ImageOrientationPatientDICOM"] = list(first.orientation)
    matrix = _lookup(ds, ("AcquisitionMatrix",))
    if _is_multi(matrix) and len(matrix) == 4 and max(int(matrix[2]), int(matrix[3])) > 0:
        meta["AcquisitionMatrixPE"] = max(int(matrix[2]), int(matrix[3]))
    direction = meta.get("InPlanePhaseEncodingDirectionDICOM")
    if direction in ("ROW", "COL"):
        meta["ReconMatrixPE"] = first.columns if direction == "ROW" else first.rows
    return meta


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


def scan_dicom(path: PathLike) -> list[SeriesInfo]:
    """Find the DICOM image series in a folder (recursively) or the series of one file.

    Only headers are read (pixel data are skipped), so scanning thousands of files is fast.
    Images are grouped by SeriesInstanceUID; a UID whose images have different orientations
    (ImageOrientationPatient) is split into sub-series whose uids end in ``.s1``, ``.s2``...
    Copies of the same image (same SOPInstanceUID) are counted once.

    Parameters
    ----------
    path : str or os.PathLike
        A folder, searched recursively (files that are not DICOM images are skipped, but
        counted for the error message), or one DICOM file: then the series holding that file
        is returned, assembled from the files of the same folder.

    Returns
    -------
    list of SeriesInfo
        Sorted by (SeriesNumber, uid). ``files`` are in slice order; ``shape`` is
        (columns, rows, slice positions); ``spacing`` is (column spacing, row spacing, slice
        spacing) in mm; ``slice_normal`` is in RAS+; ``meta`` holds BIDS sidecar keys (times
        in seconds), never patient identity.

    Raises
    ------
    InputNotFoundError
        ``path`` does not exist.
    NotDicomOrNiftiError
        ``path`` is a single file that is not DICOM.
    EmptyInputError
        No DICOM image with geometry was found; the message says how many files were looked
        at and what they were.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from bmetoolkit.volume import Volume
    >>> from bmetoolkit.dicom_write import write_dicom_series
    >>> folder = tempfile.mkdtemp()
    >>> grid = np.diag([-0.8, -0.8, 4.0, 1.0])
    >>> for number in (3, 2):
    ...     _ = write_dicom_series(Volume(np.zeros((8, 6, 3), np.uint16), grid), folder,
    ...                            series_number=number, series_description=f"S{number}")
    >>> [(info.number, info.description, info.shape) for info in scan_dicom(folder)]
    [(2, 'S2', (8, 6, 3)), (3, 'S3', (8, 6, 3))]
    >>> scan_dicom(folder)[0].spacing
    (0.8, 0.8, 4.0)
    """
    target = Path(path)
    if not target.exists():
        raise InputNotFoundError(
            "does not exist", path=target, hint="check the path and its spelling"
        )
    if target.is_file():
        return _scan_one_file(target)
    files = sorted(_walk_files(target))
    headers, skipped = _scan_files(files)
    if not headers:
        raise EmptyInputError(
            _nothing_found_message(len(files), skipped), path=target, hint=_EMPTY_HINT
        )
    return _series_from_headers(headers)


_EMPTY_HINT = (
    "pass the folder that holds the DICOM files of a series (they may have any name, "
    "with or without .dcm), or a NIfTI file"
)


def _scan_one_file(target: Path) -> list[SeriesInfo]:
    try:
        header = _cached_header(str(target))
    except _Skip as skip:
        if skip.reason == "not-dicom":
            raise NotDicomOrNiftiError(
                "is not a DICOM file (no 'DICM' marker at byte 128 and no DICOM tags at its start)",
                path=target,
                hint="pass a DICOM file or folder, or a NIfTI file",
            ) from None
        raise EmptyInputError(
            f"is a DICOM file but not an image bmetoolkit can place in space ({skip.reason})",
            path=target,
            hint="pass a file of an MR image series, or its folder",
        ) from None
    files = sorted(str(p) for p in target.parent.iterdir() if p.is_file())
    headers, _ = _scan_files(files)
    same_uid = [h for h in headers if h.uid == header.uid] or [header]
    for info in _series_from_headers(same_uid):
        if str(target) in info.files:
            return [info]
    return _series_from_headers([header])  # pragma: no cover - the file is always in a series


def _walk_files(folder: Path) -> Iterable[str]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith("."):
                yield os.path.join(root, name)


def _scan_files(files: Sequence[str]) -> tuple[list[_FileHeader], Counter[str]]:
    headers: list[_FileHeader] = []
    skipped: Counter[str] = Counter()
    seen_sop: set[str] = set()
    for file in files:
        try:
            header = _cached_header(file)
        except _Skip as skip:
            skipped[skip.reason] += 1
            continue
        except OSError:
            skipped["unreadable"] += 1
            continue
        if header.sop_uid is not None:
            if header.sop_uid in seen_sop:
                skipped["duplicate"] += 1
                continue
            seen_sop.add(header.sop_uid)
        headers.append(header)
    return headers, skipped


_SKIP_WORDS = {
    "not-dicom": "not DICOM",
    "no-image": "DICOM without image (e.g. DICOMDIR, report)",
    "no-geometry": "DICOM images without position/orientation (e.g. screenshots)",
    "unreadable": "unreadable",
    "duplicate": "copies of an image already found",
}


def _nothing_found_message(n_files: int, skipped: Counter[str]) -> str:
    if n_files == 0:
        return "holds no files at all (0 files looked at, subfolders included)"
    parts = [f"{skipped[key]} {_SKIP_WORDS[key]}" for key in _SKIP_WORDS if skipped[key]]
    return f"no DICOM image series found among {n_files} file(s) looked at: " + ", ".join(parts)


def _series_from_headers(headers: Sequence[_FileHeader]) -> list[SeriesInfo]:
    by_uid: dict[str, list[_Frame]] = {}
    broken: dict[str, list[str]] = {}
    header_of: dict[str, _FileHeader] = {}
    for header in headers:
        header_of[header.path] = header
        by_uid.setdefault(header.uid, []).extend(header.frames)
        if header.problem is not None:
            broken.setdefault(header.uid, []).append(header.path)
    infos = []
    for uid, frames in by_uid.items():
        if not frames:
            continue  # only damaged files: nothing to describe
        stacks = _split_by_orientation(frames)
        for n, stack in enumerate(stacks, start=1):
            sub_uid = uid if len(stacks) == 1 else f"{uid}.s{n}"
            infos.append(_series_info(sub_uid, stack, header_of, broken.get(uid, [])))
    infos.sort(key=lambda s: (s.number is None, s.number or 0, s.uid))
    return infos


def _split_by_orientation(frames: Sequence[_Frame]) -> list[list[_Frame]]:
    groups: list[list[_Frame]] = []
    for frame in frames:
        for group in groups:
            reference = np.asarray(group[0].orientation)
            if np.max(np.abs(reference - frame.orientation)) <= ORIENTATION_TOLERANCE:
                group.append(frame)
                break
        else:
            groups.append([frame])
    # Deterministic order of sub-series: by their first instance number, then path.
    groups.sort(key=lambda g: min((f.instance, f.path) for f in g))
    return groups


def _normal_lps(orientation: Sequence[float]) -> NDArray[np.float64]:
    row_dir = np.asarray(orientation[:3], dtype=np.float64)
    col_dir = np.asarray(orientation[3:], dtype=np.float64)
    normal = np.cross(row_dir, col_dir)
    return normal / np.linalg.norm(normal)


def _sorted_frames(frames: Sequence[_Frame]) -> tuple[list[_Frame], NDArray[np.float64]]:
    """Frames ordered along the slice normal, and their distances along it."""
    normal = _normal_lps(frames[0].orientation)
    distance = np.array([np.dot(normal, f.position) for f in frames])
    order = sorted(
        range(len(frames)),
        key=lambda n: (distance[n], frames[n].instance, frames[n].path, frames[n].index),
    )
    return [frames[n] for n in order], distance[order]


def _unique_positions(distance: NDArray[np.float64]) -> list[int]:
    """Indices (into sorted ``distance``) where a new slice position starts."""
    starts = [0]
    for n in range(1, len(distance)):
        if distance[n] - distance[starts[-1]] > POSITION_TOLERANCE_MM:
            starts.append(n)
    return starts


def _series_info(
    uid: str, frames: list[_Frame], header_of: dict[str, _FileHeader], broken: Sequence[str]
) -> SeriesInfo:
    ordered, distance = _sorted_frames(frames)
    first = ordered[0]
    header = header_of[first.path]
    starts = _unique_positions(distance)
    positions = distance[starts]
    if len(positions) > 1:
        slice_spacing = float(np.median(np.diff(positions)))
    else:
        meta = header.meta
        slice_spacing = float(meta.get("SpacingBetweenSlices") or meta.get("SliceThickness") or 0.0)
    files = tuple(dict.fromkeys([*(f.path for f in ordered), *broken]))
    folders = {os.path.dirname(f) for f in files}
    source = folders.pop() if len(folders) == 1 else os.path.commonpath(list(folders))
    normal_ras = LPS_TO_RAS[:3, :3] @ _normal_lps(first.orientation)
    meta = dict(header.meta)
    description = str(meta.get("SeriesDescription") or meta.get("ProtocolName") or "")
    return SeriesInfo(
        uid=uid,
        number=header.number,
        description=description,
        source=source,
        files=files,
        shape=(first.columns, first.rows, len(positions)),
        spacing=(first.pixel_spacing[1], first.pixel_spacing[0], slice_spacing),
        slice_normal=tuple(float(v) for v in normal_ras),
        meta=meta,
    )


# --------------------------------------------------------------------------------------------
# Reading one series
# --------------------------------------------------------------------------------------------


def read_series(info: SeriesInfo, *, kind: Kind = "intensity") -> Volume:
    """Read the pixel data of one series found by :func:`scan_dicom` into a 3D volume.

    Slices are ordered by ImagePositionPatient projected on the slice normal; the geometry
    is checked (one image size, one pixel spacing, evenly spaced slices on a straight line,
    one image per position) and RescaleSlope/RescaleIntercept are applied.

    Parameters
    ----------
    info : SeriesInfo
        A series returned by :func:`scan_dicom`.
    kind : {'intensity', 'label'}
        What the image holds.

    Returns
    -------
    Volume
        ``data[i, j, k]``: i along the image columns (first ImageOrientationPatient vector),
        j along the rows, k over slices in increasing order along the normal. The stored
        integer dtype is kept when every slope is 1 and every intercept 0; otherwise the data
        are float32 with the rescale applied (per frame for enhanced multi-frame images).
        ``affine`` is RAS+; ``source`` is the series folder (the file for a multi-frame image);
        ``meta`` as in ``info``.

    Raises
    ------
    DicomSeriesError
        A single slice, missing or unevenly spaced slices, mixed image sizes or pixel
        spacings, repeated positions, colour images.
    FourDimensionalError
        Every slice position holds the same number (more than one) of images.
    PixelDataError
        Pixel data missing, truncated or impossible to decode (the message names the file).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from bmetoolkit.volume import Volume
    >>> from bmetoolkit.dicom_write import write_dicom_series
    >>> folder = tempfile.mkdtemp()
    >>> # Sagittal, voxel axes P, S, L; slices 4 mm apart, non-square pixels 0.7 x 1.1 mm.
    >>> affine = np.array([[0, 0, -4.0, 30], [-0.7, 0, 0, 80], [0, 1.1, 0, -60], [0, 0, 0, 1]])
    >>> data = np.arange(5 * 4 * 3, dtype=np.uint16).reshape(5, 4, 3)
    >>> _ = write_dicom_series(Volume(data, affine), folder, series_number=1,
    ...                        series_description="T2_SAG")
    >>> volume = read_series(scan_dicom(folder)[0])
    >>> bool(np.array_equal(volume.data, data)), bool(np.allclose(volume.affine, affine))
    (True, True)
    """
    headers = {path: _header_for_read(path) for path in info.files}
    for header in headers.values():
        if header.problem is not None:
            raise PixelDataError(
                header.problem, path=header.path, hint="copy the file again from the source"
            )
    frames = [f for h in headers.values() if _base_uid(info.uid) == h.uid for f in h.frames]
    if _SPLIT_SUFFIX.search(info.uid):
        wanted = np.asarray(info.meta.get("ImageOrientationPatientDICOM", frames[0].orientation))
        frames = [
            f for f in frames if np.max(np.abs(wanted - f.orientation)) <= ORIENTATION_TOLERANCE
        ]
    multi_frame = len(headers) == 1 and next(iter(headers.values())).n_frames > 1
    source = info.files[0] if multi_frame else info.source
    label = info.label
    _check_uniform(frames, label, source)
    ordered, distance = _sorted_frames(frames)
    affine_lps = _affine_lps(ordered, distance, label, source)
    data = _stack_pixels(ordered, headers)
    return Volume(data, LPS_TO_RAS @ affine_lps, kind=kind, source=source, meta=dict(info.meta))


def _base_uid(uid: str) -> str:
    return _SPLIT_SUFFIX.sub("", uid)


def _header_for_read(path: str) -> _FileHeader:
    try:
        return _cached_header(path)
    except FileNotFoundError:
        raise InputNotFoundError(
            "was part of the series when it was scanned but no longer exists",
            path=path,
            hint="scan the folder again (scan_dicom) and read the series from the new result",
        ) from None
    except (_Skip, OSError) as exc:
        reason = exc.reason if isinstance(exc, _Skip) else str(exc)
        raise PixelDataError(
            f"can no longer be read as a DICOM image ({reason})",
            path=path,
            hint="the file changed since the folder was scanned; copy the series again",
        ) from None


def _examples(frames: Sequence[_Frame], count: int = 2) -> str:
    names = list(dict.fromkeys(f.path for f in frames))[:count]
    return ", ".join(names)


def _of_size(frames: Sequence[_Frame], columns: int, rows: int) -> list[_Frame]:
    return [f for f in frames if (f.columns, f.rows) == (columns, rows)]


def _check_uniform(frames: Sequence[_Frame], label: str, source: str) -> None:
    sizes = Counter((f.columns, f.rows) for f in frames)
    if len(sizes) > 1:
        described = "; ".join(
            f"{c}x{r} ({n} image(s), e.g. {_examples(_of_size(frames, c, r), 1)})"
            for (c, r), n in sizes.most_common()
        )
        raise DicomSeriesError(
            f"images of series {label} have different sizes (columns x rows): {described}",
            path=source,
            hint="the series mixes images of different acquisitions or reconstructions; "
            "move the odd files to their own folder",
        )
    spacings = {tuple(np.round(f.pixel_spacing, 4)) for f in frames}
    if len(spacings) > 1:
        raise DicomSeriesError(
            f"images of series {label} have different pixel spacings (row, column mm): "
            + ", ".join(str(s) for s in sorted(spacings)),
            path=source,
            hint="the series mixes reconstructions; move the odd files to their own folder",
        )


def _affine_lps(
    ordered: Sequence[_Frame], distance: NDArray[np.float64], label: str, source: str
) -> NDArray[np.float64]:
    starts = _unique_positions(distance)
    n_images, n_positions = len(ordered), len(starts)
    if n_positions < 2:
        _refuse_single_position(ordered, n_images, label, source)
    if n_positions != n_images:
        _refuse_repeated_positions(ordered, distance, starts, label, source)
    _check_spacing(ordered, distance, label, source)
    first, last = ordered[0], ordered[-1]
    step = (np.asarray(last.position) - np.asarray(first.position)) / (n_images - 1)
    _check_collinear(ordered, step, label, source)
    row_spacing, column_spacing = first.pixel_spacing
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(first.orientation[:3]) * column_spacing
    affine[:3, 1] = np.asarray(first.orientation[3:]) * row_spacing
    affine[:3, 2] = step
    affine[:3, 3] = first.position
    return affine


def _refuse_single_position(
    ordered: Sequence[_Frame], n_images: int, label: str, source: str
) -> None:
    if n_images == 1:
        raise DicomSeriesError(
            f"series {label} has 1 slice; a 3D series needs at least 2",
            path=ordered[0].path,
            hint="this is a single 2D image or localizer; choose another series "
            "(`bmetoolkit info PATH` lists them)",
        )
    raise FourDimensionalError(
        f"series {label} holds {n_images} images at one single slice position",
        path=source,
        hint="a time series of one slice cannot be read as a 3D volume; choose another series",
    )


def _refuse_repeated_positions(
    ordered: Sequence[_Frame],
    distance: NDArray[np.float64],
    starts: list[int],
    label: str,
    source: str,
) -> None:
    counts = np.diff([*starts, len(ordered)])
    if np.all(counts == counts[0]):
        raise FourDimensionalError(
            f"series {label} holds {counts[0]} volumes at each of {len(starts)} slice positions "
            f"({len(ordered)} images): it is a time series (fMRI, perfusion) or a multi-echo, "
            "multi-contrast or diffusion series, not one 3D image",
            path=source,
            hint="bmetoolkit reads one 3D anatomical image; convert the series with dcm2niix and "
            "pass one volume as NIfTI, or choose another series",
        )
    crowded = int(np.argmax(counts))
    at = ordered[starts[crowded] : starts[crowded] + counts[crowded]]
    raise DicomSeriesError(
        f"series {label} has repeated slice positions but not the same number at each: "
        f"{int(np.sum(counts > 1))} of {len(starts)} positions hold more than one image "
        f"(e.g. {_examples(at)} at {distance[starts[crowded]]:.2f} mm along the normal)",
        path=source,
        hint="the folder may hold copies or a partial repeat of the series; remove the extra files",
    )


def _check_spacing(
    ordered: Sequence[_Frame], distance: NDArray[np.float64], label: str, source: str
) -> None:
    steps = np.diff(distance)
    step = float(np.median(steps))
    tolerance = max(POSITION_TOLERANCE_MM, SPACING_RELATIVE_TOLERANCE * step)
    bad = np.flatnonzero(np.abs(steps - step) > tolerance)
    if bad.size == 0:
        return
    n = int(bad[0])
    pair = f"{ordered[n].path} and {ordered[n + 1].path}"
    ratio = steps[n] / step
    if ratio > 1.5 and abs(ratio - round(ratio)) * step <= tolerance:
        missing = round(ratio) - 1
        raise DicomSeriesError(
            f"series {label} has a gap: {steps[n]:.3f} mm between slices {n + 1} and {n + 2} "
            f"({pair}) where the others are {step:.3f} mm apart, so about {missing} slice(s) "
            "are missing",
            path=source,
            hint="copy the complete series again (a file may be missing, unreadable or "
            "filtered out by the export)",
        )
    raise DicomSeriesError(
        f"series {label} has unevenly spaced slices: steps from {steps.min():.3f} to "
        f"{steps.max():.3f} mm (median {step:.3f}); first odd step {steps[n]:.3f} mm between "
        f"{pair}",
        path=source,
        hint="bmetoolkit needs evenly spaced slices; check that the folder holds one series "
        "only, or resample the series to a regular grid (e.g. dcm2niix, which corrects variable "
        "slice spacing) and pass the NIfTI",
    )


def _check_collinear(
    ordered: Sequence[_Frame], step: NDArray[np.float64], label: str, source: str
) -> None:
    origin = np.asarray(ordered[0].position)
    expected = origin + np.outer(np.arange(len(ordered)), step)
    actual = np.array([f.position for f in ordered])
    error = np.linalg.norm(actual - expected, axis=1)
    tolerance = max(POSITION_TOLERANCE_MM, SPACING_RELATIVE_TOLERANCE * float(np.linalg.norm(step)))
    if error.max() > tolerance:
        worst = int(np.argmax(error))
        raise DicomSeriesError(
            f"slices of series {label} are not on a straight line: {ordered[worst].path} is "
            f"{error.max():.3f} mm off the line through the first and last slice",
            path=source,
            hint="the slices are shifted against each other in-plane; the series cannot be "
            "stored as one regular 3D grid",
        )


# --------------------------------------------------------------------------------------------
# Pixel data
# --------------------------------------------------------------------------------------------


def _stack_pixels(ordered: Sequence[_Frame], headers: dict[str, _FileHeader]) -> NDArray[Any]:
    """Pixel data as ``[i, j, k]``, rescaled to float32 unless every slope/intercept is 1/0."""
    rescale = any(f.slope != 1.0 or f.intercept != 0.0 for f in ordered)
    first = ordered[0]
    pixels_of: dict[str, NDArray[Any]] = {}
    stack: NDArray[Any] | None = None
    for k, frame in enumerate(ordered):
        if frame.path not in pixels_of:
            pixels_of = {frame.path: _read_pixels(headers[frame.path])}
        image = pixels_of[frame.path][frame.index]
        if stack is None:
            dtype = np.float32 if rescale else _common_dtype(ordered, headers)
            stack = np.empty((len(ordered), first.rows, first.columns), dtype=dtype)
        if rescale:
            np.multiply(image, np.float32(frame.slope), out=stack[k], casting="unsafe")
            stack[k] += np.float32(frame.intercept)
        else:
            stack[k] = image
    assert stack is not None
    # [k, row, column] -> [i=column, j=row, k] (a view: no copy).
    return stack.transpose(2, 1, 0)


def _common_dtype(ordered: Sequence[_Frame], headers: dict[str, _FileHeader]) -> np.dtype:
    dtypes = {_stored_dtype(headers[f.path]) for f in ordered}
    return np.result_type(*dtypes)


def _stored_dtype(header: _FileHeader) -> np.dtype:
    if header.bits_allocated not in (8, 16, 32):
        raise PixelDataError(
            f"has {header.bits_allocated} bits allocated per pixel; bmetoolkit reads 8, 16 or 32",
            path=header.path,
            hint="convert the series with dcm2niix and pass the NIfTI",
        )
    kind = "i" if header.signed else "u"
    return np.dtype(f"<{kind}{header.bits_allocated // 8}")


def _read_pixels(header: _FileHeader) -> NDArray[Any]:
    """Stored pixel values of one file, shape (frames, rows, columns)."""
    if header.samples != 1:
        raise DicomSeriesError(
            f"holds colour images ({header.samples} samples per pixel)",
            path=header.path,
            hint="bmetoolkit reads greyscale MR images; choose another series",
        )
    if header.pixel_offset is None:
        raise PixelDataError(
            "has no pixel data element: the file ends before its image",
            path=header.path,
            hint="the file is truncated or damaged; copy it again from the source",
        )
    first = header.frames[0]
    shape = (header.n_frames, first.rows, first.columns)
    if header.transfer_syntax in _NATIVE_LITTLE_ENDIAN:
        return _read_native(header, shape)
    return _read_with_pydicom(header, shape)


def _read_native(header: _FileHeader, shape: tuple[int, int, int]) -> NDArray[Any]:
    dtype = _stored_dtype(header)
    expected = int(np.prod(shape)) * dtype.itemsize
    declared = header.pixel_length if header.pixel_length is not None else expected
    if declared < expected:
        raise PixelDataError(
            f"declares {declared} bytes of pixel data where {shape[1]}x{shape[2]} pixels x "
            f"{shape[0]} frame(s) need {expected}",
            path=header.path,
            hint="the file is damaged; copy or export it again",
        )
    with open(header.path, "rb") as handle:
        handle.seek(header.pixel_offset or 0)
        buffer = handle.read(expected)
    if len(buffer) < expected:
        raise PixelDataError(
            f"pixel data are truncated: {len(buffer)} of {expected} bytes present",
            path=header.path,
            hint="the file was cut short (interrupted copy or download); copy it again",
        )
    return _only_stored_bits(np.frombuffer(buffer, dtype=dtype).reshape(shape), header)


def _only_stored_bits(pixels: NDArray[Any], header: _FileHeader) -> NDArray[Any]:
    """Drop the bits above BitsStored (unsigned) or sign-extend from them (signed).

    Bits above the stored ones are not part of the pixel value (DICOM PS3.5 8.1.1); some
    scanners leave them set (e.g. 0xFFFF in a 12-bit image), which would read as 65535.
    """
    unused = header.bits_allocated - header.bits_stored
    if unused <= 0 or not np.issubdtype(pixels.dtype, np.integer):
        return pixels
    if header.signed:
        return (pixels << unused) >> unused
    return pixels & pixels.dtype.type((1 << header.bits_stored) - 1)


def _read_with_pydicom(header: _FileHeader, shape: tuple[int, int, int]) -> NDArray[Any]:
    import pydicom

    try:
        ds = pydicom.dcmread(header.path)
        pixels = ds.pixel_array
    except Exception as exc:  # decoders raise many kinds
        from pydicom.uid import UID

        name = UID(header.transfer_syntax).name
        raise PixelDataError(
            f"pixel data ({name}) cannot be decoded: {type(exc).__name__}: {exc}".splitlines()[0],
            path=header.path,
            hint="the file may be damaged; for compressed DICOM install pylibjpeg, "
            "pylibjpeg-libjpeg, pylibjpeg-openjpeg and pyjpegls (all on PyPI)",
        ) from exc
    pixels = np.asarray(pixels).reshape(shape) if pixels.size == np.prod(shape) else pixels
    if pixels.shape != shape:
        raise PixelDataError(
            f"decoded pixel data have shape {pixels.shape}, the header says {shape}",
            path=header.path,
            hint="the file is damaged or uses an unsupported layout; convert it with dcm2niix",
        )
    return _only_stored_bits(pixels, header)


# --------------------------------------------------------------------------------------------
# Choosing a series
# --------------------------------------------------------------------------------------------


def load_dicom(
    path: PathLike, *, kind: Kind = "intensity", series: str | int | None = None
) -> Volume:
    """Load one DICOM series as a 3D volume: scan, choose the series, read it.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM folder (searched recursively) or one DICOM file (its series is read).
    kind : {'intensity', 'label'}
        What the image holds.
    series : int or str, optional
        Which series to read when there are several: a SeriesNumber (int or digits), a
        SeriesInstanceUID (with its ``.sN`` suffix for split series), or an exact
        SeriesDescription (or ProtocolName).

    Returns
    -------
    Volume
        See :func:`read_series`.

    Raises
    ------
    AmbiguousSeriesError
        Several series and no (or no unique) match for ``series``; the message lists every
        series found.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from bmetoolkit.volume import Volume
    >>> from bmetoolkit.dicom_write import write_dicom_series
    >>> folder = tempfile.mkdtemp()
    >>> for number, name in ((1, "T1_SAG"), (2, "STIR_SAG")):
    ...     volume = Volume(np.full((4, 4, 3), number, np.uint16), np.eye(4))
    ...     _ = write_dicom_series(volume, folder, series_number=number,
    ...                            series_description=name)
    >>> int(load_dicom(folder, series="STIR_SAG").data.max())
    2
    >>> load_dicom(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bmetoolkit.errors.AmbiguousSeriesError: ...: holds 2 series...
    """
    infos = scan_dicom(path)
    if series is None and len(infos) == 1:
        return read_series(infos[0], kind=kind)
    return read_series(_choose(infos, series, Path(path)), kind=kind)


def _matches(info: SeriesInfo, series: str | int) -> bool:
    text = str(series).strip()
    if isinstance(series, int) or text.isdigit():
        return info.number is not None and info.number == int(text)
    names = {info.description, info.meta.get("SeriesDescription"), info.meta.get("ProtocolName")}
    return text in (info.uid, _base_uid(info.uid)) or text in names


def _choose(infos: list[SeriesInfo], series: str | int | None, path: Path) -> SeriesInfo:
    listing = "\n".join(f"  {info.label}  uid={info.uid}" for info in infos)
    hint = (
        "pass series=<number, uid or description> (API) or --series (CLI); "
        f"`bmetoolkit info {path}` lists the series"
    )
    if series is None:
        raise AmbiguousSeriesError(
            f"holds {len(infos)} series; which one should be read?\n{listing}\n",
            path=path,
            hint=hint,
        )
    found = [info for info in infos if _matches(info, series)]
    if len(found) == 1:
        return found[0]
    what = "no series matches" if not found else f"{len(found)} series match"
    raise AmbiguousSeriesError(
        f"{what} series={series!r}; the series found are:\n{listing}\n", path=path, hint=hint
    )
