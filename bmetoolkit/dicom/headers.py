"""Reading the header of one DICOM file: geometry, pixel layout and acquisition parameters.

:func:`cached_header` parses the header of one file **without its pixel data** (values larger
than a few hundred bytes are deferred, and only the tags the toolkit uses are parsed) and
returns a :class:`FileHeader`: the series it belongs to, where its pixel data start in the
file and how they are stored, one :class:`Frame` per 2D image (position, orientation, pixel
spacing, rescale) and the acquisition parameters under BIDS sidecar names.

- Classic single-frame and enhanced multi-frame images are read; for enhanced images the
  geometry and rescale of each frame come from the per-frame functional groups, else from
  the shared ones.
- A file that is not a DICOM image with geometry raises :class:`Skip`, whose ``reason``
  (``"not-dicom"``, ``"no-image"``, ``"no-geometry"``, ``"unreadable"``) says which kind it is.
- An image of a known series whose header stops early, holds a damaged value (an unknown
  value representation, a value of the wrong length) or an unusable geometry (PixelSpacing
  ``0\\0``, orientation vectors that are not unit vectors) is kept with a ``problem`` that
  says why it cannot be read, so that reading the series names the file. Nothing pydicom
  raises or warns on a damaged file escapes: the file is skipped with a reason, or kept with
  its problem.
- The identifiers pairing rules use (StudyInstanceUID, FrameOfReferenceUID) are kept in
  ``identifiers``, apart from ``meta``, so they are never written into sidecars or reports.
- The headers are kept in a small in-memory cache, keyed by path, modification time, size and
  inode, so that reading a series after :func:`bmetoolkit.dicom.read.scan_dicom` does not parse
  its files a second time; :func:`clear_header_cache` empties it.
- The BIDS meta never hold patient identity; times are in seconds.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bmetoolkit.io import quiet_reading

__all__ = [
    "IDENTIFIER_KEYWORDS",
    "FileHeader",
    "Frame",
    "Skip",
    "cached_header",
    "clear_header_cache",
]

#: Header values larger than this many bytes are skipped while scanning (read on demand).
_DEFER_BYTES = 512
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: SOP classes of images that a series may hold (MR, CT, PET, secondary capture).
_IMAGE_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.128"}
_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.2.",
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.130",
)
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

#: Identifiers the pairing rules use; kept apart from ``meta`` (never written to outputs).
IDENTIFIER_KEYWORDS = ("StudyInstanceUID", "FrameOfReferenceUID")
#: ImageOrientationPatient vectors whose length is off 1, or whose dot product is off 0, by
#: more than this are not a valid orientation (scanners write 6+ decimals).
ORIENTATION_UNIT_TOLERANCE = 1e-2

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

    keywords = {*_GEOMETRY_KEYWORDS, *IDENTIFIER_KEYWORDS}
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
class Frame:
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
class FileHeader:
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
    frames: tuple[Frame, ...]
    meta: dict[str, Any]
    problem: str | None = None  # why this image cannot be read, found while scanning
    identifiers: dict[str, str] = field(default_factory=dict)  # IDENTIFIER_KEYWORDS found


class Skip(Exception):
    """A file that is not a DICOM image with geometry; ``reason`` says which kind.

    ``detail`` says what exactly was wrong, when known (e.g. the error of a damaged header).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


_header_cache: OrderedDict[str, tuple[tuple[int, int, int], FileHeader]] = OrderedDict()


def cached_header(path: str) -> FileHeader:
    """Header of ``path`` from the cache when the file is unchanged, else read it.

    Parameters
    ----------
    path : str
        One file. It counts as unchanged while its modification time, size and inode are.

    Returns
    -------
    FileHeader
        The header (no pixel data); ``problem`` is set for an image whose header is cut short.

    Raises
    ------
    Skip
        The file is not a DICOM image with geometry (``reason`` says which kind).
    OSError
        The file cannot be looked at (``FileNotFoundError`` when it no longer exists).
    """
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


def _read_header(path: str) -> FileHeader:
    """Parse the header of one file without reading its pixel data; raise Skip if not usable."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        candidate, preamble = _looks_like_dicom(path)
    except OSError as exc:
        raise Skip("unreadable") from exc
    if not candidate:
        raise Skip("not-dicom")
    # pydicom warns and logs on every odd value; damage that matters is checked below.
    with quiet_reading([], loggers=("pydicom",)):
        try:
            ds = pydicom.dcmread(
                path, defer_size=_DEFER_BYTES, specific_tags=_SPECIFIC_TAGS, force=not preamble
            )
        except InvalidDicomError as exc:
            raise Skip("not-dicom") from exc
        except Exception as exc:  # pydicom raises many kinds on damaged headers
            raise Skip("unreadable", f"its DICOM header cannot be parsed ({_why(exc)})") from exc
        try:
            return _header_of(ds, path)
        except Skip:
            raise
        except Exception as exc:  # damaged values surface lazily, when they are converted
            return _damaged(ds, path, f"its header holds a damaged value ({_why(exc)})")


def _why(exc: BaseException) -> str:
    """``Type: message`` of an exception, on one line and at most 200 characters."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _header_of(ds: Any, path: str) -> FileHeader:
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and file_meta.get("MediaStorageSOPClassUID") == _DICOMDIR_SOP_CLASS:
        raise Skip("no-image")
    if "Rows" in ds and "Columns" in ds and "SeriesInstanceUID" in ds:
        return _header_from_dataset(ds, path)
    if not _is_image_class(ds):
        raise Skip("no-image")
    # An image of a known series whose header stops early: keep it, so that reading the
    # series names this file instead of reporting a missing slice.
    return _damaged(
        ds,
        path,
        "the header ends before the image attributes (Rows, Columns): "
        "the file is truncated or damaged",
    )


def _damaged(ds: Any, path: str, problem: str) -> FileHeader:
    """A header kept only to name its file when its series is read; Skip without a series."""
    try:
        uid = str(ds.SeriesInstanceUID) if "SeriesInstanceUID" in ds else ""
    except Exception:  # the UID itself is damaged
        uid = ""
    if not uid:
        raise Skip("unreadable", f"{problem}; no readable SeriesInstanceUID")
    return FileHeader(
        path=path,
        uid=uid,
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
        problem=problem,
    )


def _is_image_class(ds: Any) -> bool:
    sop_class = str(ds.get("SOPClassUID", ""))
    return sop_class in _IMAGE_SOP_CLASSES or sop_class.startswith(_IMAGE_SOP_PREFIXES)


def _header_from_dataset(ds: Any, path: str) -> FileHeader:
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
    n_frames = _as_int(ds.get("NumberOfFrames")) or 1
    if n_frames < 1:
        return _damaged(ds, path, f"NumberOfFrames is {n_frames}")
    frames = _frames_of(ds, path, n_frames)
    if not frames:
        raise Skip("no-geometry")
    problem = _geometry_problem(frames[0])
    if problem is not None:
        return _damaged(ds, path, problem)
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    offset = None if raw is None else int(raw.value_tell)
    length = None if raw is None else int(raw.length)
    bits = _as_int(ds.get("BitsAllocated")) or 16
    return FileHeader(
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
        identifiers=_identifiers(ds),
    )


def _identifiers(ds: Any) -> dict[str, str]:
    found = {}
    for keyword in IDENTIFIER_KEYWORDS:
        value = ds.get(keyword)
        if value is not None and str(value).strip():
            found[keyword] = str(value).strip()
    return found


def _geometry_problem(frame: Frame) -> str | None:
    """Why a frame's pixel spacing or orientation cannot place it in space, or None."""
    if min(frame.pixel_spacing) <= 0:
        spacing = "\\".join(f"{v:g}" for v in frame.pixel_spacing)
        return f"PixelSpacing {spacing} is not a positive pixel size: the header is damaged"
    if frame.rows < 1 or frame.columns < 1:
        return f"the image has {frame.rows} rows and {frame.columns} columns"
    row, column = np.asarray(frame.orientation[:3]), np.asarray(frame.orientation[3:])
    lengths = np.array([np.linalg.norm(row), np.linalg.norm(column)])
    if (
        np.abs(lengths - 1).max() > ORIENTATION_UNIT_TOLERANCE
        or abs(float(row @ column)) > ORIENTATION_UNIT_TOLERANCE
    ):
        values = "\\".join(f"{v:g}" for v in frame.orientation)
        return (
            f"ImageOrientationPatient {values} is not two perpendicular unit vectors: "
            "the header is damaged"
        )
    return None


def _frames_of(ds: Any, path: str, n_frames: int) -> list[Frame]:
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
        Frame(
            path, index, orientation, position, spacing, rows, columns, slope, intercept, instance
        )
        for index in range(n_frames)
    ]


def _enhanced_frames(
    ds: Any, path: str, n_frames: int, rows: int, columns: int, instance: int
) -> list[Frame]:
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
            Frame(
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
        numbers = tuple(float(v) for v in _as_list(value))
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(np.isfinite(numbers)):
        return None
    return numbers


def _is_multi(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _as_list(value: Any) -> Sequence[Any]:
    """A DICOM value as a sequence: multi-valued as it is, a single value wrapped."""
    return value if _is_multi(value) else [value]


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


def _bids_meta(ds: Any, first: Frame) -> dict[str, Any]:
    """Acquisition parameters under BIDS sidecar names; never patient identity."""
    meta: dict[str, Any] = {}
    for key, names in _META_TEXT.items():
        value = _lookup(ds, names)
        if value is not None and str(value).strip():
            meta[key] = str(value).strip()
    for key, names in _META_JOINED.items():
        value = _lookup(ds, names)
        if value is not None:
            parts = [str(v).strip() for v in _as_list(value)]
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
        meta["ImageType"] = [str(v) for v in _as_list(image_type)]
    meta["ImageOrientationPatientDICOM"] = list(first.orientation)
    matrix = _lookup(ds, ("AcquisitionMatrix",))
    if _is_multi(matrix) and len(matrix) == 4 and max(int(matrix[2]), int(matrix[3])) > 0:
        meta["AcquisitionMatrixPE"] = max(int(matrix[2]), int(matrix[3]))
    direction = meta.get("InPlanePhaseEncodingDirectionDICOM")
    if direction in ("ROW", "COL"):
        meta["ReconMatrixPE"] = first.columns if direction == "ROW" else first.rows
    return meta
