"""Reading and writing volumes: NIfTI, DICOM (via :mod:`bmetoolkit.dicom.read`) and ITK formats.

:func:`load` takes any supported path and returns a :class:`~bmetoolkit.volume.Volume` with a
RAS+ affine; :func:`save_nifti` writes one back with the exact affine of its grid. Every
writer goes through :func:`atomic_write`, so an interrupted run never leaves a half-written
file under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import struct
import uuid
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bmetoolkit.errors import (
    BmetoolkitError,
    CorruptFileError,
    FourDimensionalError,
    ImageTooLargeError,
    InvalidVoxelsError,
    NotDicomOrNiftiError,
    UnsupportedDataError,
    existing_path,
)
from bmetoolkit.pairing.series import IDENTIFIERS_META_KEY, SeriesInfo
from bmetoolkit.volume import LPS_TO_RAS, Kind, Volume, _checked_affine

__all__ = [
    "ITK_SUFFIXES",
    "MAX_VOXELS",
    "NIFTI_SUFFIXES",
    "PRIVATE_META_KEYS",
    "READ_NOTES",
    "SOURCE_FILES",
    "as_volume",
    "atomic_write",
    "file_sha256",
    "is_dicom_file",
    "label_dtype",
    "load",
    "load_itk",
    "load_nifti",
    "nifti_series_info",
    "quiet_reading",
    "save_nifti",
    "write_json",
    "write_text",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: Formats read through SimpleITK (SPIDER ships .mha).
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")

PathLike = str | os.PathLike

#: Voxel spacings within this ratio of each other count as isotropic.
ISOTROPIC_TOLERANCE = 1.1


#: Largest image read, in voxels (2**28: 1 GiB as float32, ~30 times a 3D spine scan). A
#: header claiming more is refused before any voxel is read.
MAX_VOXELS = 2**28
#: deflate (gzip) compresses at most about 1032:1, so a ``.nii.gz`` whose header claims more
#: than this many bytes per compressed byte cannot hold its data.
MAX_DEFLATE_RATIO = 1032
#: Voxel value kinds bmetoolkit analyses (numpy ``dtype.kind``): bool, integers, floats.
_SCALAR_KINDS = "biuf"
_DAMAGED_HINT = "the file may be truncated or damaged; copy or export it again"
#: Header key under which notes made while reading (header fixes, library warnings) are kept
#: in ``Volume.meta``; :class:`~bmetoolkit.study.Study` turns them into report notes.
READ_NOTES = "ReadNotes"
#: Key of ``Volume.meta`` listing the files a DICOM series was read from (for checksums).
SOURCE_FILES = "SourceFiles"
#: ``Volume.meta`` keys for bmetoolkit's own use, never written into sidecars or reports.
PRIVATE_META_KEYS = (READ_NOTES, SOURCE_FILES, IDENTIFIERS_META_KEY)
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as hex (read in 1 MiB blocks).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_text("abc")
    >>> file_sha256(path)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class _NoteHandler(logging.Handler):
    """Logging handler that keeps each message as a note instead of printing it."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(record.getMessage())


@contextlib.contextmanager
def quiet_reading(
    notes: list[str], loggers: tuple[str, ...] = ("nibabel.global",)
) -> Iterator[None]:
    """Collect library log messages and warnings raised inside the block into ``notes``.

    Reading libraries (nibabel, pydicom, numpy casts) report header fixes and damaged values
    as log messages or warnings on stderr; inside this block they are kept as notes (each
    once) for the caller to report, and numpy floating-point warnings are silenced (the
    values are checked afterwards).
    """
    handler = _NoteHandler(notes)
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        notes.extend(str(w.message) for w in caught)
        unique = list(dict.fromkeys(notes))
        notes[:] = unique


def _nibabel_errors() -> tuple[type[BaseException], ...]:
    import nibabel as nib
    from nibabel.spatialimages import HeaderDataError, HeaderTypeError

    return (
        EOFError,
        zlib.error,
        nib.filebasedimages.ImageFileError,
        HeaderDataError,
        HeaderTypeError,
        ValueError,
        OSError,
        OverflowError,
        struct.error,
        TypeError,
        IndexError,
    )


@contextlib.contextmanager
def _reading_nifti(source: Path, hint: str | None = None) -> Iterator[None]:
    """Turn nibabel's read errors inside the block into a :class:`CorruptFileError`."""
    try:
        yield
    except BmetoolkitError:
        raise
    except _nibabel_errors() as exc:
        raise CorruptFileError(
            f"cannot be read as NIfTI ({type(exc).__name__}: {exc})", path=source, hint=hint
        ) from exc


def _check_claimed_size(image: Any, source: Path) -> None:
    """Refuse, from the header alone, an image larger than the file or the memory ceiling."""
    shape = tuple(int(n) for n in image.shape)
    if not shape or min(shape) < 1:
        raise CorruptFileError(
            f"header claims an image of shape {shape}",
            path=source,
            hint="the header is damaged (every dimension must be at least 1); export it again",
        )
    voxels = math.prod(shape)
    if voxels > MAX_VOXELS:
        raise ImageTooLargeError(
            f"header claims {'x'.join(map(str, shape))} = {voxels:,} voxels, more than the "
            f"{MAX_VOXELS:,} bmetoolkit reads",
            path=source,
            hint="the header is probably damaged; if the image is really that large, crop or "
            "downsample it first",
        )
    needed = voxels * image.get_data_dtype().itemsize
    size = source.stat().st_size
    compressed = source.name.lower().endswith(".gz")
    available = size * MAX_DEFLATE_RATIO if compressed else size - _data_offset(image)
    if needed > available:
        what = "could unpack to" if compressed else "holds"
        raise CorruptFileError(
            f"header claims {needed:,} bytes of voxel data ({'x'.join(map(str, shape))}, "
            f"{image.get_data_dtype()}); the file {what} at most {max(available, 0):,}",
            path=source,
            hint="the file is truncated or its header damaged; copy or export it again",
        )


def _data_offset(image: Any) -> int:
    offset = image.header.get("vox_offset")
    return int(offset) if offset is not None and np.isfinite(offset) else 0


def _check_scalar(image: Any, source: Path) -> None:
    dtype = image.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in _SCALAR_KINDS:
        what = "RGB/colour" if dtype.fields is not None else {"c": "complex"}.get(dtype.kind, "")
        raise UnsupportedDataError(
            f"holds {what or 'non-numeric'} voxel values (data type {dtype}); bmetoolkit "
            "analyses grey-level (single-channel) images",
            path=source,
            hint="pass the grey-level MR image (for a colour screenshot, export the original "
            "series; for complex data, its magnitude)",
        )


def _full_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (*NIFTI_SUFFIXES, *ITK_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def is_dicom_file(path: PathLike) -> bool:
    """True when ``path`` starts with the DICOM preamble and ``DICM`` magic.

    Files without the 128-byte preamble (rare, very old) are not recognised here; pass
    their folder to :func:`load`, which tries every file with pydicom.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[Path]:
    """Give a temporary path next to ``path``; move it onto ``path`` only on success.

    The temporary name keeps the full file name as its suffix (so ``.nii.gz`` writers still
    compress) and starts with a dot, so it is never mistaken for a finished output. On any
    exception the temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "result.txt"
    >>> with atomic_write(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{uuid.uuid4().hex[:12]}.partial.{final.name}")
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    target = Path(path)
    with atomic_write(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return target


def write_json(path: PathLike, value: Any) -> Path:
    """Write ``value`` as indented JSON to ``path`` atomically; return the path.

    Values JSON cannot represent (e.g. DICOM value types) are written as their ``str``.

    Examples
    --------
    >>> import tempfile
    >>> out = write_json(Path(tempfile.mkdtemp()) / "a.json", {"TR": 0.5})
    >>> json.loads(out.read_text())
    {'TR': 0.5}
    """
    return write_text(path, json.dumps(value, indent=2, default=str) + "\n")


def load(
    path: PathLike,
    *,
    kind: Kind = "intensity",
    series: str | int | None = None,
) -> Volume:
    """Load a volume from a NIfTI file, an ITK image file, a DICOM file or a DICOM folder.

    Parameters
    ----------
    path : str or os.PathLike
        ``.nii``/``.nii.gz``, ``.mha``/``.mhd``/``.nrrd``, a DICOM file (its whole series is
        read) or a folder holding DICOM files (searched recursively).
    kind : {'intensity', 'label'}
        What the image holds; labels keep an integer dtype.
    series : str or int, optional
        For DICOM folders holding several series: the SeriesNumber, SeriesInstanceUID or
        SeriesDescription of the one to read.

    Returns
    -------
    Volume
        Data with a RAS+ affine; ``meta`` holds the acquisition parameters that were found.

    Raises
    ------
    InputNotFoundError
        ``path`` does not exist.
    NotDicomOrNiftiError
        ``path`` is a file of a format bmetoolkit does not read.
    """
    target = existing_path(path)
    suffix = _full_suffix(target)
    if target.is_file() and suffix in NIFTI_SUFFIXES:
        return load_nifti(target, kind=kind)
    if target.is_file() and suffix in ITK_SUFFIXES:
        return load_itk(target, kind=kind)
    if target.is_dir() or is_dicom_file(target):
        from bmetoolkit.dicom.read import load_dicom

        return load_dicom(target, kind=kind, series=series)
    raise NotDicomOrNiftiError(
        f"is neither NIfTI ({', '.join(NIFTI_SUFFIXES)}) nor DICOM (no 'DICM' marker at byte 128)",
        path=target,
        hint="pass a NIfTI file, a DICOM file or a folder of DICOM files",
    )


def as_volume(image: PathLike | Volume, *, kind: Kind = "intensity") -> Volume:
    """Return ``image`` as a :class:`Volume`, loading it first when it is a path.

    Idempotent: a volume passes through unchanged, so every public function can accept a
    path or a loaded volume alike.

    Raises
    ------
    TypeError
        ``image`` is a volume of the other kind (e.g. an intensity image given as labels).

    Examples
    --------
    >>> vol = Volume(np.zeros((2, 2, 2), np.uint8), np.eye(4), kind="label")
    >>> as_volume(vol, kind="label") is vol
    True
    """
    if isinstance(image, Volume):
        if image.kind != kind:
            raise TypeError(
                f"expected a {kind} volume, got a {image.kind} volume (source: {image.source}); "
                f"build it with Volume(..., kind={kind!r})"
            )
        return image
    if isinstance(image, str | os.PathLike):
        return load(image, kind=kind)
    raise TypeError(f"expected a path or a Volume, got {type(image).__name__}")


def load_nifti(path: PathLike, *, kind: Kind = "intensity") -> Volume:
    """Load a NIfTI-1/2 file, honouring its sform (or qform when the sform is unset).

    A 4D file whose fourth axis has length 1 is read as 3D; a true 4D file is refused.
    Intensities keep the stored dtype unless the header scales them (then float32); labels
    must hold whole numbers and are returned with an integer dtype.

    The header is checked before any voxel is read: a claimed size larger than the file (or
    than :data:`MAX_VOXELS`) and non-scalar voxels are refused. Header fixes nibabel makes
    and library warnings are kept in ``meta["ReadNotes"]`` instead of printed.

    Raises
    ------
    CorruptFileError
        The file is truncated, its header damaged, or it is not a valid NIfTI.
    ImageTooLargeError
        The header claims more than :data:`MAX_VOXELS` voxels.
    UnsupportedDataError
        RGB, complex or unknown voxel data types.
    InvalidGeometryError
        The affine (sform, qform or pixdim) is singular, not finite or absurd.
    FourDimensionalError
        The file holds more than one volume.
    InvalidVoxelsError
        The image holds NaN or infinite values.
    """
    source = Path(path)
    notes: list[str] = []
    with quiet_reading(notes):
        image = _open_nifti(source)
        with _reading_nifti(source, _DAMAGED_HINT):
            data = np.asanyarray(image.dataobj)
            affine = _checked_affine(image.affine, str(source))
    data = _squeeze_to_3d(data, source)
    header = image.header
    sform_code = int(header["sform_code"]) if "sform_code" in header else 0
    qform_code = int(header["qform_code"]) if "qform_code" in header else 0
    affine_source = "sform" if sform_code > 0 else ("qform" if qform_code > 0 else "fallback")
    meta: dict[str, Any] = {"AffineSource": affine_source}
    description = header.get("descrip")
    if description is not None and description.size and bytes(description).strip(b"\x00 "):
        meta["Description"] = bytes(description).rstrip(b"\x00").decode("latin-1").strip()
    if notes:
        meta[READ_NOTES] = notes
    data = _checked_voxels(data, kind, source)
    return Volume(data, affine, kind=kind, source=str(source), meta=meta)


def _open_nifti(source: Path) -> Any:
    """The nibabel image of ``source`` (header read, voxels not), after checking the header.

    Raises
    ------
    CorruptFileError, ImageTooLargeError, UnsupportedDataError
        The header cannot be parsed, claims more data than the file or the memory ceiling
        allows, or the voxels are not grey levels.
    """
    import nibabel as nib

    with _reading_nifti(source, "the header is damaged; copy or export the file again"):
        image = nib.load(source)
        _check_scalar(image, source)
        _check_claimed_size(image, source)
    return image


def nifti_series_info(path: PathLike) -> SeriesInfo:
    """Describe a NIfTI file from its header alone (no voxel data read).

    The result is shaped like a DICOM series' :class:`~bmetoolkit.pairing.series.SeriesInfo`, so the
    ``info`` command and contrast detection treat both alike. The slice axis is taken to be
    the voxel axis with the clearly largest spacing (thick slices) or, when the spacing is
    (nearly) isotropic, the axis with the fewest voxels (a sagittal 3D crop is narrow in x).
    """
    source = Path(path)
    with quiet_reading([]):
        image = _open_nifti(source)
        with _reading_nifti(source, "the header is damaged; copy or export the file again"):
            affine = _checked_affine(image.affine, str(source))
    shape = tuple(int(n) for n in image.shape[:3]) + (1,) * max(0, 3 - len(image.shape))
    columns = np.asarray(affine[:3, :3], dtype=np.float64)
    spacing = np.linalg.norm(columns, axis=0)
    slice_axis = _slice_axis(spacing, shape)
    normal = columns[:, slice_axis] / spacing[slice_axis]
    name = source.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return SeriesInfo(
        uid=str(source.resolve()),
        number=None,
        description=name,
        source=str(source),
        files=(),
        shape=shape,
        spacing=tuple(float(s) for s in spacing),
        slice_normal=tuple(float(v) for v in normal),
        meta={"Volumes": int(np.prod(image.shape[3:])) if len(image.shape) > 3 else 1},
    )


def _slice_axis(spacing: np.ndarray, shape: tuple[int, ...]) -> int:
    thickest = int(np.argmax(spacing))
    if spacing[thickest] > ISOTROPIC_TOLERANCE * np.delete(spacing, thickest).max():
        return thickest
    return 2 - int(np.argmin(np.asarray(shape[:3])[::-1]))  # the last axis on ties


def load_itk(path: PathLike, *, kind: Kind = "intensity") -> Volume:
    """Load an ITK-format image (``.mha``, ``.mhd``, ``.nrrd``) through SimpleITK.

    ITK works in LPS+; the returned affine is RAS+ like every other volume.
    """
    import SimpleITK as sitk

    source = Path(path)
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(source))
        reader.ReadImageInformation()
        voxels = math.prod(reader.GetSize())
        if voxels > MAX_VOXELS:
            raise ImageTooLargeError(
                f"header claims {voxels:,} voxels, more than the {MAX_VOXELS:,} bmetoolkit reads",
                path=source,
                hint="the header is probably damaged; if not, crop or downsample the image first",
            )
        image = reader.Execute()
    except RuntimeError as exc:
        raise CorruptFileError(
            f"cannot be read by SimpleITK ({exc})".splitlines()[0],
            path=source,
            hint="the file may be truncated or damaged; export it again",
        ) from exc
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise NotDicomOrNiftiError(
            f"holds {image.GetNumberOfComponentsPerPixel()} components per voxel",
            path=source,
            hint="bmetoolkit reads scalar (single-channel) images",
        )
    # SimpleITK arrays are [k, j, i]; volumes are [i, j, k].
    data = _squeeze_to_3d(sitk.GetArrayFromImage(image).T, source)
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction * np.array(image.GetSpacing())
    affine_lps[:3, 3] = image.GetOrigin()
    data = _checked_voxels(data, kind, source)
    affine = _checked_affine(LPS_TO_RAS @ affine_lps, str(source))
    return Volume(data, affine, kind=kind, source=str(source), meta={})


def _squeeze_to_3d(data: np.ndarray, source: Path) -> np.ndarray:
    if data.ndim == 3:
        return data
    if data.ndim == 2:
        return data[:, :, np.newaxis]
    if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
        return data.reshape(data.shape[:3])
    if data.ndim > 3:
        raise FourDimensionalError(
            f"holds {int(np.prod(data.shape[3:]))} volumes (shape {data.shape}); "
            "bmetoolkit reads one 3D image per file",
            path=source,
            hint="extract the volume you want first, e.g. with nibabel: img.slicer[..., 0]",
        )
    raise NotDicomOrNiftiError(f"holds a {data.ndim}D array", path=source)


#: Intensities beyond this magnitude are not MR signal (scanners store 12-16 bit integers;
#: scaled float exports reach about 1e9) but a damaged scaling; float32 sums over an image
#: (the analysis computes in float32, max 3.4e38) would overflow.
MAX_ABS_INTENSITY = 1e20


def _checked_voxels(data: np.ndarray, kind: Kind, source: Path) -> np.ndarray:
    if np.issubdtype(data.dtype, np.floating):
        finite = np.isfinite(data)
        if not finite.all():
            bad = int(data.size - np.count_nonzero(finite))
            raise InvalidVoxelsError(
                f"holds {bad} NaN or infinite voxel value(s) out of {data.size}",
                path=source,
                hint="replace them before analysis, e.g. "
                "nibabel: np.nan_to_num(img.get_fdata(), nan=0, posinf=0, neginf=0)",
            )
        if data.size and float(np.abs(data).max()) > MAX_ABS_INTENSITY:
            raise InvalidVoxelsError(
                f"holds voxel values up to {float(np.abs(data).max()):.3g}, beyond the "
                f"{MAX_ABS_INTENSITY:.0e} no MR image reaches",
                path=source,
                hint="the header's scaling (scl_slope/scl_inter) is probably damaged; "
                "check it, or rescale the image",
            )
    if kind == "label":
        return _as_label_array(data, source)
    return data


def _as_label_array(data: np.ndarray, source: Path) -> np.ndarray:
    if np.issubdtype(data.dtype, np.integer) or data.dtype == np.bool_:
        return data
    if not np.array_equal(data, np.round(data)):
        raise NotDicomOrNiftiError(
            "was given as a label map but holds non-integer values",
            path=source,
            hint="pass a label map (integer ids per voxel), or load it as an intensity image",
        )
    if data.size and float(np.abs(data).max()) >= 2.0**63:  # no integer type holds it
        raise NotDicomOrNiftiError(
            f"was given as a label map but holds ids up to {float(np.abs(data).max()):.3g}",
            path=source,
            hint="the header's scaling (scl_slope/scl_inter) is probably damaged; check it",
        )
    return data.astype(label_dtype(data))


def label_dtype(data: np.ndarray) -> np.dtype:
    """Smallest integer dtype that holds every value of a label array.

    Examples
    --------
    >>> label_dtype(np.array([0, 1, 2])).name
    'uint8'
    >>> label_dtype(np.array([0, 224])).name
    'uint8'
    >>> label_dtype(np.array([-1, 300])).name
    'int16'
    """
    if data.size == 0:
        return np.dtype(np.uint8)
    low, high = int(np.min(data)), int(np.max(data))
    for dtype in (np.uint8, np.uint16, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"label values {low}..{high} do not fit a 64-bit integer")


def save_nifti(volume: Volume, path: PathLike) -> Path:
    """Write a volume as NIfTI-1 with the exact affine of its grid (sform and qform, code 1).

    Label volumes are written with the smallest integer dtype holding their values; intensity
    volumes keep their dtype, except float64, which is stored as float32 (MRI intensities do
    not need the precision, and many viewers expect float32). The file appears under ``path``
    only once complete.

    Returns
    -------
    Path
        The path written.
    """
    import nibabel as nib

    target = Path(path)
    data = volume.data
    if volume.is_label:
        data = data.astype(label_dtype(data), copy=False)
    elif data.dtype == np.float64:
        data = data.astype(np.float32)
    image = nib.Nifti1Image(data, volume.affine)
    image.set_sform(volume.affine, code=1)
    image.set_qform(volume.affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    if volume.is_label:
        image.header["intent_code"] = 1002  # NIFTI_INTENT_LABEL
    with atomic_write(target) as temporary:
        nib.save(image, temporary)
    return target
