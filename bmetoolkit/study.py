"""One subject's contrasts on one grid: the T1, the T2 and/or STIR, and optional labels.

Every voxel-wise comparison in bmetoolkit happens inside a :class:`Study`, which guarantees
that its images share the T1 grid. :meth:`Study.from_images` brings T2, STIR and a label map
onto that grid in physical space (linear interpolation for intensities, nearest neighbour
for labels), records how much of the T1 field of view each covers, and refuses images that
do not overlap the T1. :meth:`Study.from_dicom` does the same for a DICOM study folder,
choosing the series with :func:`bmetoolkit.pairing.pair.pair_series`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import GridMismatchError, MissingContrastError, NoOverlapError
from bmetoolkit.io import as_volume
from bmetoolkit.resample import resample_with_coverage
from bmetoolkit.volume import Grid, Volume

__all__ = ["DEFAULT_MIN_COVERAGE", "PARTIAL_COVERAGE_WARNING", "Role", "Study"]

Role = Literal["t1", "t2", "stir", "labels"]

#: An image covering less than this fraction of the T1 field of view is refused.
DEFAULT_MIN_COVERAGE = 0.10
#: Below this fraction of the T1 field of view covered, the study carries a warning.
PARTIAL_COVERAGE_WARNING = 0.90

ImageInput = str | os.PathLike | Volume


@dataclass(frozen=True)
class Study:
    """The images of one subject and session on the T1 grid.

    Build it with :meth:`from_images` or :meth:`from_dicom`; the constructor itself only
    checks that the volumes it is given already share the T1 grid.

    Parameters
    ----------
    t1 : Volume
        T1-weighted intensities; its grid is the study grid.
    t2, stir : Volume, optional
        T2-weighted and STIR (or fat-suppressed T2) intensities on the T1 grid; at least
        one of them is required.
    labels : Volume, optional
        Vertebra label map (VerSe ids, TotalSegmentator classes or a binary mask).
    coverage : dict
        Fraction (0-1) of the T1 field of view covered by each other image, by role.
    covered : dict
        Boolean masks on the T1 grid: where each other image has data, by role.
    inputs : dict
        Where each role's image came from (file or folder).
    notes : tuple of str
        Pairing decisions and warnings (partial coverage, different planes...).
    """

    t1: Volume
    t2: Volume | None = None
    stir: Volume | None = None
    labels: Volume | None = None
    coverage: Mapping[str, float] = field(default_factory=dict)
    covered: Mapping[str, NDArray[np.bool_]] = field(default_factory=dict, repr=False)
    inputs: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.t2 is None and self.stir is None:
            raise MissingContrastError(
                "a study needs a T2 or a STIR image besides the T1",
                path=self.t1.source,
                hint="pass t2=... and/or stir=...",
            )
        for role, volume in self.images().items():
            if not volume.grid.same_as(self.t1.grid):
                raise GridMismatchError(
                    f"the {role} image is not on the T1 grid ({volume.grid} vs {self.t1.grid})",
                    path=[p for p in (self.t1.source, volume.source) if p],
                    hint="build the study with Study.from_images(), which resamples",
                )

    @classmethod
    def from_images(
        cls,
        t1: ImageInput,
        t2: ImageInput | None = None,
        stir: ImageInput | None = None,
        labels: ImageInput | None = None,
        *,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        notes: tuple[str, ...] = (),
    ) -> Study:
        """Load (if given paths) and resample T2, STIR and labels onto the T1 grid.

        Parameters
        ----------
        t1, t2, stir, labels : path or Volume
            Images of one subject; paths may be NIfTI files or DICOM series folders.
        min_coverage : float
            Smallest fraction (0-1) of the T1 field of view another image must cover.
        notes : tuple of str
            Decisions made before this call (e.g. series pairing) to keep with the study.

        Raises
        ------
        NoOverlapError
            An image covers less than ``min_coverage`` of the T1 field of view; the message
            names both files and where each lies.

        Examples
        --------
        >>> t1 = Volume(np.ones((20, 20, 4), np.int16), np.diag([1.0, 1.0, 4.0, 1.0]))
        >>> t2_affine = np.diag([2.0, 2.0, 4.0, 1.0])
        >>> t2_affine[:2, 3] = 0.5  # 2 mm voxels covering exactly the T1's 20 mm
        >>> t2 = Volume(np.ones((10, 10, 4), np.int16), t2_affine)
        >>> study = Study.from_images(t1, t2)
        >>> study.t2.shape, round(study.coverage["t2"], 2)
        ((20, 20, 4), 1.0)
        """
        t1_volume = as_volume(t1, kind="intensity")
        given = {
            "t2": (t2, "intensity"),
            "stir": (stir, "intensity"),
            "labels": (labels, "label"),
        }
        grid = t1_volume.grid
        aligned: dict[str, Volume] = {}
        coverage: dict[str, float] = {}
        covered: dict[str, NDArray[np.bool_]] = {}
        messages = list(notes)
        for role, (image, kind) in given.items():
            if image is None:
                continue
            volume = as_volume(image, kind=kind)
            aligned[role], mask = resample_with_coverage(volume, grid)
            fraction = float(mask.mean())
            if fraction < min_coverage:
                raise NoOverlapError(
                    f"the {role} image covers {100 * fraction:.1f} % of the T1 field of view "
                    f"(at least {100 * min_coverage:.0f} % needed); T1 spans "
                    f"{_extent_text(grid)}, {role} spans {_extent_text(volume.grid)} (RAS mm)",
                    path=[p for p in (t1_volume.source, volume.source) if p],
                    hint="check that both images are of the same subject and session and were "
                    "exported with their scanner coordinates",
                )
            if fraction < PARTIAL_COVERAGE_WARNING:
                messages.append(
                    f"{role} covers only {100 * fraction:.0f} % of the T1 field of view; "
                    "voxels outside it are not analysed"
                )
            coverage[role] = fraction
            covered[role] = mask
        inputs = {"t1": t1_volume.source or ""} | {
            role: volume.source or "" for role, volume in aligned.items()
        }
        return cls(
            t1=t1_volume,
            **aligned,
            coverage=coverage,
            covered=covered,
            inputs=inputs,
            notes=tuple(messages),
        )

    @classmethod
    def from_dicom(
        cls,
        folder: str | os.PathLike,
        *,
        t1: str | int | None = None,
        t2: str | int | None = None,
        stir: str | int | None = None,
        labels: ImageInput | None = None,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
    ) -> Study:
        """Build a study from a DICOM folder holding one subject's series.

        The sagittal T1 and the T2 and/or STIR are chosen automatically
        (:func:`bmetoolkit.pairing.pair.pair_series`); pass ``t1``, ``t2`` or ``stir`` (a
        SeriesNumber, SeriesInstanceUID or SeriesDescription) to choose explicitly.
        """
        from bmetoolkit.dicom.read import read_series, scan_dicom
        from bmetoolkit.pairing.pair import pair_series

        pairing = pair_series(scan_dicom(folder), t1=t1, t2=t2, stir=stir)
        return cls.from_images(
            read_series(pairing.t1),
            t2=read_series(pairing.t2) if pairing.t2 else None,
            stir=read_series(pairing.stir) if pairing.stir else None,
            labels=labels,
            min_coverage=min_coverage,
            notes=tuple(pairing.reasons),
        )

    @property
    def grid(self) -> Grid:
        """The study grid (the T1 grid)."""
        return self.t1.grid

    @property
    def fluid(self) -> Volume:
        """The fluid-sensitive image that drives the edema decision: STIR if present, else T2."""
        return self.stir if self.stir is not None else self.t2

    def images(self) -> dict[str, Volume]:
        """The images present besides the T1, by role."""
        candidates = {"t2": self.t2, "stir": self.stir, "labels": self.labels}
        return {role: volume for role, volume in candidates.items() if volume is not None}

    def analysable(self) -> NDArray[np.bool_]:
        """Voxels of the T1 grid covered by every intensity image of the study."""
        mask = np.ones(self.grid.shape, dtype=bool)
        for role in ("t2", "stir"):
            if role in self.covered:
                mask &= self.covered[role]
        return mask


def _extent_text(grid: Grid) -> str:
    corners = grid.corners_world()
    low, high = corners.min(axis=0), corners.max(axis=0)
    return " ".join(f"{a}[{lo:.0f}, {hi:.0f}]" for a, lo, hi in zip("xyz", low, high, strict=True))
