"""Reading DICOM series into volumes: find series from headers, then read one as a 3D volume.

Two steps, as the rest of the toolkit expects:

1. :func:`scan_dicom` reads the **headers only** of every file under a folder (pixel data are
   skipped, not read) and groups the images into series by SeriesInstanceUID. One UID whose
   images have several orientations is split into sub-series (``<uid>.s1``, ``<uid>.s2``...).
   The headers are kept in a small in-memory cache (:mod:`bmetoolkit.dicom.headers`), so
   that reading a series afterwards does not parse its files a second time.
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
  read. How one file's header is read is described in :mod:`bmetoolkit.dicom.headers`, how
  its pixel data are read (native or compressed) in :mod:`bmetoolkit.dicom.pixels`.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from bmetoolkit.volume import Volume
>>> from bmetoolkit.dicom.write import write_dicom_series
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
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.dicom.headers import FileHeader, Frame, Skip, cached_header, clear_header_cache
from bmetoolkit.dicom.pixels import stack_pixels
from bmetoolkit.errors import (
    AmbiguousSeriesError,
    CorruptFileError,
    DicomSeriesError,
    EmptyInputError,
    FourDimensionalError,
    ImageTooLargeError,
    InputNotFoundError,
    NotDicomOrNiftiError,
    PixelDataError,
    existing_path,
)
from bmetoolkit.io import MAX_VOXELS, SOURCE_FILES, quiet_reading
from bmetoolkit.pairing.series import IDENTIFIERS_META_KEY, SeriesInfo
from bmetoolkit.volume import LPS_TO_RAS, Kind, Volume

__all__ = ["clear_header_cache", "describe_skipped", "load_dicom", "read_series", "scan_dicom"]

PathLike = str | os.PathLike

#: Two ImageOrientationPatient vectors closer than this (max abs difference) are the same.
ORIENTATION_TOLERANCE = 1e-3
#: Slice positions closer than this along the normal (mm) are the same position.
POSITION_TOLERANCE_MM = 0.01
#: Steps between slices may differ from the series' step by this fraction (or by
#: :data:`POSITION_TOLERANCE_MM`, whichever is larger) before the spacing counts as uneven.
SPACING_RELATIVE_TOLERANCE = 0.01

_SPLIT_SUFFIX = re.compile(r"\.s\d+$")


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


def scan_dicom(path: PathLike, *, skipped: list[tuple[str, str]] | None = None) -> list[SeriesInfo]:
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
    skipped : list, optional
        When given, filled with ``(file, why)`` for every DICOM file that was passed over
        because it is damaged (unparseable header, damaged value, unusable geometry) and
        could not be kept as part of a series, so callers can report them.

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
    >>> from bmetoolkit.dicom.write import write_dicom_series
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
    target = existing_path(path)
    if target.is_file():
        return _scan_one_file(target)
    files = sorted(_walk_files(target))
    damaged: list[tuple[str, str]] = []
    headers, counts = _scan_files(files, damaged)
    infos = _series_from_headers(headers, damaged) if headers else []
    if skipped is not None:
        skipped.extend(damaged)
    if not infos:
        raise EmptyInputError(
            _nothing_found_message(len(files), counts, damaged),
            path=target,
            hint=_nifti_hint(files) or _EMPTY_HINT,
        )
    return infos


def _nifti_hint(files: Sequence[str]) -> str | None:
    """What to do with a folder of NIfTI files (read per file, by role), or None."""
    nifti = [os.path.basename(f) for f in files if f.endswith((".nii", ".nii.gz"))]
    if not nifti:
        return None
    shown = ", ".join(nifti[:3]) + (", ..." if len(nifti) > 3 else "")
    return (
        f"the folder holds NIfTI files ({shown}): give each by its role, "
        "bmetoolkit analyze --t1 FILE --stir FILE (or --t2 FILE), or run bmetoolkit batch "
        "on the folder of subjects"
    )


_COPY_AGAIN = "copy or export the file again from the scanner or archive"
_EMPTY_HINT = (
    "pass the folder that holds the DICOM files of a series (they may have any name, "
    "with or without .dcm), or a NIfTI file"
)


def _scan_one_file(target: Path) -> list[SeriesInfo]:
    try:
        header = cached_header(str(target))
    except Skip as skip:
        if skip.reason == "not-dicom":
            raise NotDicomOrNiftiError(
                "is not a DICOM file (no 'DICM' marker at byte 128 and no DICOM tags at its start)",
                path=target,
                hint="pass a DICOM file or folder, or a NIfTI file",
            ) from None
        detail = f": {skip.detail}" if skip.detail else ""
        raise EmptyInputError(
            f"is a DICOM file but not an image bmetoolkit can place in space "
            f"({_SKIP_WORDS.get(skip.reason, skip.reason)}{detail})",
            path=target,
            hint="pass a file of an MR image series, or its folder",
        ) from None
    if header.problem is not None:
        raise CorruptFileError(header.problem, path=target, hint=_COPY_AGAIN)
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


def _scan_files(
    files: Sequence[str], damaged: list[tuple[str, str]] | None = None
) -> tuple[list[FileHeader], Counter[str]]:
    headers: list[FileHeader] = []
    skipped: Counter[str] = Counter()
    seen_sop: set[str] = set()
    for file in files:
        try:
            header = cached_header(file)
        except Skip as skip:
            skipped[skip.reason] += 1
            if skip.detail and damaged is not None:
                damaged.append((file, skip.detail))
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


def _nothing_found_message(
    n_files: int, skipped: Counter[str], damaged: Sequence[tuple[str, str]] = ()
) -> str:
    if n_files == 0:
        return "holds no files at all (0 files looked at, subfolders included)"
    parts = [f"{skipped[key]} {_SKIP_WORDS[key]}" for key in _SKIP_WORDS if skipped[key]]
    if damaged and not parts:  # damaged images of known series, kept to be named
        parts.append(f"{len(damaged)} damaged")
    text = f"no DICOM image series found among {n_files} file(s) looked at: " + ", ".join(parts)
    return text + (f" ({describe_skipped(damaged)})" if damaged else "")


def describe_skipped(skipped: Sequence[tuple[str, str]], examples: int = 2) -> str:
    """One line about files passed over while scanning: how many, and why for a few.

    Examples
    --------
    >>> describe_skipped([("a.dcm", "its header holds a damaged value")])
    '1 damaged DICOM file(s) skipped, e.g. a.dcm: its header holds a damaged value'
    """
    shown = "; ".join(f"{path}: {why}" for path, why in skipped[:examples])
    return f"{len(skipped)} damaged DICOM file(s) skipped, e.g. {shown}"


def _series_from_headers(
    headers: Sequence[FileHeader], damaged: list[tuple[str, str]] | None = None
) -> list[SeriesInfo]:
    by_uid: dict[str, list[Frame]] = {}
    broken: dict[str, list[str]] = {}
    header_of: dict[str, FileHeader] = {}
    for header in headers:
        header_of[header.path] = header
        by_uid.setdefault(header.uid, []).extend(header.frames)
        if header.problem is not None:
            broken.setdefault(header.uid, []).append(header.path)
    infos = []
    for uid, frames in by_uid.items():
        if not frames:  # only damaged files: nothing to describe, but say why
            if damaged is not None:
                damaged.extend((p, header_of[p].problem or "") for p in broken.get(uid, []))
            continue
        stacks = _split_by_orientation(frames)
        for n, stack in enumerate(stacks, start=1):
            sub_uid = uid if len(stacks) == 1 else f"{uid}.s{n}"
            infos.append(_series_info(sub_uid, stack, header_of, broken.get(uid, [])))
    infos.sort(key=lambda s: (s.number is None, s.number or 0, s.uid))
    return infos


def _same_orientation(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two ImageOrientationPatient vectors agree within ``ORIENTATION_TOLERANCE``."""
    return bool(np.max(np.abs(np.asarray(a) - np.asarray(b))) <= ORIENTATION_TOLERANCE)


def _split_by_orientation(frames: Sequence[Frame]) -> list[list[Frame]]:
    groups: list[list[Frame]] = []
    for frame in frames:
        for group in groups:
            reference = np.asarray(group[0].orientation)
            if _same_orientation(reference, frame.orientation):
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


def _sorted_frames(frames: Sequence[Frame]) -> tuple[list[Frame], NDArray[np.float64]]:
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
    uid: str, frames: list[Frame], header_of: dict[str, FileHeader], broken: Sequence[str]
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
        identifiers=dict(header.identifiers),
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
    >>> from bmetoolkit.dicom.write import write_dicom_series
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
        frames = [f for f in frames if _same_orientation(wanted, f.orientation)]
    multi_frame = len(headers) == 1 and next(iter(headers.values())).n_frames > 1
    source = info.files[0] if multi_frame else info.source
    label = info.label
    _check_uniform(frames, label, source)
    _check_size(frames, label, source)
    ordered, distance = _sorted_frames(frames)
    affine_lps = _affine_lps(ordered, distance, label, source)
    with quiet_reading([], loggers=("pydicom",)):  # decoders warn on odd values
        data = stack_pixels(ordered, headers)
    meta = dict(info.meta) | {SOURCE_FILES: list(dict.fromkeys(f.path for f in ordered))}
    if info.identifiers:
        meta[IDENTIFIERS_META_KEY] = dict(info.identifiers)
    return Volume(data, LPS_TO_RAS @ affine_lps, kind=kind, source=source, meta=meta)


def _check_size(frames: Sequence[Frame], label: str, source: str) -> None:
    """Refuse a series whose headers claim more voxels than bmetoolkit reads (before reading)."""
    first = frames[0]
    voxels = first.rows * first.columns * len(frames)
    if voxels > MAX_VOXELS:
        raise ImageTooLargeError(
            f"series {label} claims {first.columns}x{first.rows}x{len(frames)} = {voxels:,} "
            f"voxels, more than the {MAX_VOXELS:,} bmetoolkit reads",
            path=source,
            hint="the headers are probably damaged (Rows, Columns, NumberOfFrames); "
            "export the series again",
        )


def _base_uid(uid: str) -> str:
    return _SPLIT_SUFFIX.sub("", uid)


def _header_for_read(path: str) -> FileHeader:
    try:
        return cached_header(path)
    except FileNotFoundError:
        raise InputNotFoundError(
            "was part of the series when it was scanned but no longer exists",
            path=path,
            hint="scan the folder again (scan_dicom) and read the series from the new result",
        ) from None
    except (Skip, OSError) as exc:
        reason = exc.reason if isinstance(exc, Skip) else str(exc)
        raise PixelDataError(
            f"can no longer be read as a DICOM image ({reason})",
            path=path,
            hint="the file changed since the folder was scanned; copy the series again",
        ) from None


def _examples(frames: Sequence[Frame], count: int = 2) -> str:
    names = list(dict.fromkeys(f.path for f in frames))[:count]
    return ", ".join(names)


def _of_size(frames: Sequence[Frame], columns: int, rows: int) -> list[Frame]:
    return [f for f in frames if (f.columns, f.rows) == (columns, rows)]


def _check_uniform(frames: Sequence[Frame], label: str, source: str) -> None:
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
    ordered: Sequence[Frame], distance: NDArray[np.float64], label: str, source: str
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
    ordered: Sequence[Frame], n_images: int, label: str, source: str
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
    ordered: Sequence[Frame],
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
    ordered: Sequence[Frame], distance: NDArray[np.float64], label: str, source: str
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
    ordered: Sequence[Frame], step: NDArray[np.float64], label: str, source: str
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
    >>> from bmetoolkit.dicom.write import write_dicom_series
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
        "choose one: bmetoolkit.load(path, series=<number, uid or description>), or give the "
        "study folder to bmetoolkit.analyze(folder, t1_series=N, t2_series=N) / "
        f"Study.from_dicom(folder, t1=N, t2=N); `bmetoolkit info {path}` lists the series"
    )
    cli_hint = (
        "give the folder as STUDY_DIR and choose the series there: `bmetoolkit analyze "
        "STUDY_DIR --t1-series N --t2-series N --out DIR` (or --stir-series N); "
        f"`bmetoolkit info {path}` lists the series"
    )
    if series is None:
        raise AmbiguousSeriesError(
            f"holds {len(infos)} series; which one should be read?\n{listing}\n",
            path=path,
            hint=hint,
            cli_hint=cli_hint,
        )
    found = [info for info in infos if _matches(info, series)]
    if len(found) == 1:
        return found[0]
    what = "no series matches" if not found else f"{len(found)} series match"
    raise AmbiguousSeriesError(
        f"{what} series={series!r}; the series found are:\n{listing}\n",
        path=path,
        hint=hint,
        cli_hint=cli_hint,
    )
