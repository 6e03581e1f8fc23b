"""What an image series is, told from its headers alone (no pixel data read).

A :class:`SeriesInfo` is what scanning a DICOM folder yields for each series, and what a NIfTI
file yields for itself; contrast detection and pairing (:mod:`bmetoolkit.pairing.contrast`)
work on it, and the ``info`` command prints it.

Acquisition parameters are kept in ``meta`` under BIDS sidecar names, with BIDS units
(seconds for ``RepetitionTime``, ``EchoTime`` and ``InversionTime``, degrees for
``FlipAngle``), as dcm2niix writes them. Patient identity is never stored there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "IDENTIFIERS_META_KEY",
    "OBLIQUE_TOLERANCE_DEG",
    "Plane",
    "SeriesInfo",
    "plane_of_normal",
]

Plane = Literal["sagittal", "coronal", "axial"]

#: A slice normal more than this many degrees off its closest anatomical axis is "oblique".
OBLIQUE_TOLERANCE_DEG = 10.0

#: Key of ``Volume.meta`` holding a DICOM series' pairing identifiers (StudyInstanceUID,
#: FrameOfReferenceUID) so that a study can compare them; writers drop it (never an output).
IDENTIFIERS_META_KEY = "PairingIdentifiers"

_PLANE_OF_AXIS: dict[int, Plane] = {0: "sagittal", 1: "coronal", 2: "axial"}


def plane_of_normal(normal: ArrayLike) -> tuple[Plane, float]:
    """Name the acquisition plane of a slice normal, and its angle off that plane's axis.

    Parameters
    ----------
    normal : array_like, shape (3,)
        Slice normal in patient coordinates (RAS+ or LPS+: only magnitudes matter).

    Returns
    -------
    plane : {'sagittal', 'coronal', 'axial'}
        The plane whose normal (x, y or z) is closest.
    tilt_deg : float
        Angle in degrees between ``normal`` and that axis.

    Examples
    --------
    >>> plane_of_normal([0.98, 0.0, 0.2])[0]
    'sagittal'
    >>> round(plane_of_normal([0, 0, 1])[1], 3)
    0.0
    """
    vector = np.abs(np.asarray(normal, dtype=np.float64))
    vector = vector / np.linalg.norm(vector)
    axis = int(np.argmax(vector))
    tilt = float(np.degrees(np.arccos(np.clip(vector[axis], -1.0, 1.0))))
    return _PLANE_OF_AXIS[axis], tilt


@dataclass(frozen=True)
class SeriesInfo:
    """Header summary of one image series (a DICOM series or a NIfTI file).

    Parameters
    ----------
    uid : str
        SeriesInstanceUID for DICOM (with a ``.sN`` suffix when one UID had to be split,
        e.g. by orientation); the resolved file path for NIfTI.
    number : int or None
        SeriesNumber, when known.
    description : str
        SeriesDescription (or ProtocolName, or the file name) for display.
    source : str
        The folder or file the series was found in.
    files : tuple of str
        DICOM files of the series (empty for NIfTI).
    shape : tuple of 3 ints
        Voxels along columns, rows and slices (DICOM) or the NIfTI i, j, k.
    spacing : tuple of 3 floats
        Voxel size in mm along the same three axes (in-plane column and row spacing may
        differ: non-square pixels).
    slice_normal : tuple of 3 floats
        Unit normal of the slices in RAS+ coordinates.
    meta : dict
        Acquisition parameters under BIDS sidecar names.
    identifiers : dict
        The identifiers pairing rules compare (``StudyInstanceUID``,
        ``FrameOfReferenceUID``), kept apart from ``meta`` so they never reach an output.
    """

    uid: str
    number: int | None
    description: str
    source: str
    files: tuple[str, ...]
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    slice_normal: tuple[float, float, float]
    meta: dict[str, Any] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)

    @property
    def plane(self) -> Plane:
        """Acquisition plane closest to the slice normal."""
        return plane_of_normal(self.slice_normal)[0]

    @property
    def tilt_deg(self) -> float:
        """Angle in degrees between the slice normal and the normal of :attr:`plane`."""
        return plane_of_normal(self.slice_normal)[1]

    @property
    def is_oblique(self) -> bool:
        """True when the slices are tilted more than :data:`OBLIQUE_TOLERANCE_DEG`."""
        return self.tilt_deg > OBLIQUE_TOLERANCE_DEG

    @property
    def label(self) -> str:
        """Short name for messages, e.g. ``'#3 "T1_TSE_SAG" (sagittal, 448x448x15)'``."""
        number = f"#{self.number} " if self.number is not None else ""
        size = "x".join(str(n) for n in self.shape)
        return f'{number}"{self.description}" ({self.plane}, {size})'
