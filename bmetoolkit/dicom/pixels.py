"""Reading the pixel data of DICOM images into one stack of slices.

:func:`stack_pixels` reads the pixel data of frames already put in slice order, using the
headers found while scanning (:mod:`bmetoolkit.dicom.headers`):

- uncompressed little-endian pixel data are read straight from the file at the offset found
  while scanning; compressed ones (JPEG, JPEG-LS, JPEG 2000, RLE) are decoded by pydicom and
  its pylibjpeg/pyjpegls plugins;
- bits above BitsStored are dropped (unsigned) or sign-extended from (signed);
- the stored integer dtype is kept when every RescaleSlope is 1 and every RescaleIntercept 0,
  otherwise the data are float32 with the rescale of each frame applied;
- the result is indexed ``[i, j, k]``: ``i`` along the image columns, ``j`` along its rows,
  ``k`` over the frames in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.dicom.headers import FileHeader, Frame
from bmetoolkit.errors import DicomSeriesError, PixelDataError

__all__ = ["stack_pixels"]

_NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


def stack_pixels(ordered: Sequence[Frame], headers: dict[str, FileHeader]) -> NDArray[Any]:
    """Pixel data as ``[i, j, k]``, rescaled to float32 unless every slope/intercept is 1/0.

    Parameters
    ----------
    ordered : sequence of Frame
        The frames of one series in slice order, all of the same size.
    headers : dict of str to FileHeader
        The header of every file that holds one of the frames, by path.

    Returns
    -------
    numpy.ndarray
        ``data[i, j, k]``: i along the image columns, j along its rows, k over ``ordered``.

    Raises
    ------
    DicomSeriesError
        Colour images.
    PixelDataError
        Pixel data missing, truncated, impossible to decode, or of an unsupported bit depth.
    """
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


def _common_dtype(ordered: Sequence[Frame], headers: dict[str, FileHeader]) -> np.dtype:
    dtypes = {_stored_dtype(headers[f.path]) for f in ordered}
    return np.result_type(*dtypes)


def _stored_dtype(header: FileHeader) -> np.dtype:
    if header.bits_allocated not in (8, 16, 32):
        raise PixelDataError(
            f"has {header.bits_allocated} bits allocated per pixel; bmetoolkit reads 8, 16 or 32",
            path=header.path,
            hint="convert the series with dcm2niix and pass the NIfTI",
        )
    kind = "i" if header.signed else "u"
    return np.dtype(f"<{kind}{header.bits_allocated // 8}")


def _read_pixels(header: FileHeader) -> NDArray[Any]:
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


def _read_native(header: FileHeader, shape: tuple[int, int, int]) -> NDArray[Any]:
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


def _only_stored_bits(pixels: NDArray[Any], header: FileHeader) -> NDArray[Any]:
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


def _read_with_pydicom(header: FileHeader, shape: tuple[int, int, int]) -> NDArray[Any]:
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
