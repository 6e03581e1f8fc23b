"""Typed errors raised by bmetoolkit.

Every error says which file or folder it is about, what was wrong and what to do about it,
so that a batch can log it for one subject and go on, and a user can fix the input.

Examples
--------
>>> err = NotDicomOrNiftiError("is neither DICOM nor NIfTI", path="scan.txt",
...                            hint="pass a .nii/.nii.gz file or a DICOM folder")
>>> str(err)
'scan.txt: is neither DICOM nor NIfTI. pass a .nii/.nii.gz file or a DICOM folder'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "AmbiguousSeriesError",
    "BmetoolkitError",
    "ContrastMismatchError",
    "CorruptFileError",
    "CrossStudyError",
    "DicomSeriesError",
    "DuplicateInputError",
    "EmptyInputError",
    "FourDimensionalError",
    "GridMismatchError",
    "ImageTooLargeError",
    "InputNotFoundError",
    "InvalidGeometryError",
    "InvalidVoxelsError",
    "MarrowLabelError",
    "MissingContrastError",
    "NoOverlapError",
    "NotDicomOrNiftiError",
    "PixelDataError",
    "UnsupportedDataError",
    "UsageError",
    "VisitMismatchError",
    "existing_path",
]


class BmetoolkitError(Exception):
    """Base class of every error bmetoolkit raises on purpose.

    Parameters
    ----------
    message : str
        What was wrong, as found (e.g. ``"has 1 slice; a 3D series needs at least 2"``).
    path : str or os.PathLike or sequence of them, optional
        The file(s) or folder(s) the error is about; shown first in the message.
    hint : str, optional
        What the user can do about it, in Python terms (``t2=...``).
    cli_hint : str, optional
        The same advice in command-line terms (``--t2 PATH``), when it differs; the command
        line prints :meth:`for_cli`.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        hint: str | None = None,
        cli_hint: str | None = None,
    ) -> None:
        if path is None:
            self.paths: tuple[str, ...] = ()
        elif isinstance(path, str | os.PathLike):
            self.paths = (os.fspath(path),)
        else:
            self.paths = tuple(os.fspath(p) for p in path)
        self.message = message
        self.hint = hint
        self.cli_hint = cli_hint
        super().__init__(self._format())

    @property
    def path(self) -> str | None:
        """The first path the error is about, or None."""
        return self.paths[0] if self.paths else None

    def for_cli(self) -> str:
        """The message with the command-line advice (``cli_hint``) when there is one.

        Examples
        --------
        >>> err = BmetoolkitError("no T1", hint="pass t1=...", cli_hint="add --t1 PATH")
        >>> str(err), err.for_cli()
        ('no T1. pass t1=...', 'no T1. add --t1 PATH')
        """
        return self._format(self.cli_hint)

    def with_hint(self, hint: str | None) -> str:
        """The message with another piece of advice (e.g. in a batch's terms)."""
        return self._format(hint)

    def _format(self, hint: str | None = None) -> str:
        text = self.message
        hint = hint or self.hint
        if self.paths:
            text = f"{' and '.join(self.paths)}: {text}"
        if hint:
            text = f"{text}{hint}" if text.endswith("\n") else f"{text.rstrip('.')}. {hint}"
        return text


class UsageError(BmetoolkitError):
    """Arguments or options that do not fit together (the command line exits with 2).

    An error about the input itself, which the arguments named correctly, is another
    :class:`BmetoolkitError` (exit code 1); :func:`bmetoolkit.cli.main` decides the codes.
    """


class InputNotFoundError(BmetoolkitError, FileNotFoundError):
    """A path given as input does not exist."""


def existing_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path, after checking it exists.

    Raises
    ------
    InputNotFoundError
        ``path`` does not exist.
    """
    target = Path(path)
    if not target.exists():
        raise InputNotFoundError(
            "does not exist", path=target, hint="check the path and its spelling"
        )
    return target


class NotDicomOrNiftiError(BmetoolkitError, ValueError):
    """A file is neither DICOM nor NIfTI (nor another format bmetoolkit reads)."""


class EmptyInputError(BmetoolkitError, ValueError):
    """A folder holds no readable image series."""


class CorruptFileError(BmetoolkitError, ValueError):
    """A file has the right format but cannot be read completely (truncated, damaged)."""


class PixelDataError(CorruptFileError):
    """DICOM pixel data are missing, truncated or cannot be decoded."""


class DicomSeriesError(BmetoolkitError, ValueError):
    """A DICOM series cannot be assembled into one 3D volume.

    Raised for a single slice, missing or unevenly spaced slices, mixed image sizes or
    orientations, and similar geometry problems.
    """


class FourDimensionalError(DicomSeriesError):
    """The input is a time series or otherwise 4D; bmetoolkit reads 3D anatomical images."""


class InvalidVoxelsError(BmetoolkitError, ValueError):
    """An image holds NaN or infinite voxel values."""


class AmbiguousSeriesError(BmetoolkitError, ValueError):
    """Several series could play the same role (e.g. two sagittal T1); the user must choose."""


class MissingContrastError(BmetoolkitError, ValueError):
    """A required contrast (e.g. T1) was not found among the inputs."""


class MarrowLabelError(BmetoolkitError, ValueError):
    """A bone (marrow) mask or its table of names cannot be used as given: a probability
    map, too many labels, an id without a name, a name or id given twice."""


class GridMismatchError(BmetoolkitError, ValueError):
    """Two volumes that must share a voxel grid do not."""


class NoOverlapError(BmetoolkitError, ValueError):
    """Two images do not overlap in physical space, so they cannot be compared voxel-wise."""


class InvalidGeometryError(BmetoolkitError, ValueError):
    """An image's placement in space is unusable: a singular, NaN or absurd affine.

    Raised for all-zero or degenerate sform/qform, zero or non-finite voxel sizes
    (``pixdim``, DICOM ``PixelSpacing``), orientation vectors that are not unit vectors.
    """


class ImageTooLargeError(BmetoolkitError, ValueError):
    """A header claims more voxels than the file holds or than bmetoolkit will allocate.

    Checked from the header, before any voxel is read, so a damaged or hostile header cannot
    exhaust memory.
    """


class UnsupportedDataError(BmetoolkitError, ValueError):
    """Voxel values of a kind bmetoolkit does not analyse (RGB, complex, unknown data type)."""


class ContrastMismatchError(BmetoolkitError, ValueError):
    """An image does not look like the contrast of the role it was given (e.g. a T2 as T1)."""


class DuplicateInputError(ContrastMismatchError):
    """The same file, or identical pixel data, was given for two roles."""


class CrossStudyError(BmetoolkitError, ValueError):
    """Series of different studies (StudyInstanceUID) would be paired without being asked."""


class VisitMismatchError(BmetoolkitError, ValueError):
    """Two visits to compare do not show the same anatomy (another subject, another region)."""
