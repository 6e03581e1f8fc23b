"""One subject's contrasts on one grid: the T1, the T2 and/or STIR, and optional labels.

Every voxel-wise comparison in bmetoolkit happens inside a :class:`Study`, which guarantees
that its images share the T1 grid. :meth:`Study.from_images` brings T2, STIR and a label map
onto that grid in physical space (linear interpolation for intensities, nearest neighbour
for labels), records how much of the T1 field of view each covers, and refuses images that
do not overlap the T1. The T2 and STIR are resampled where their voxels are read
(:class:`~bmetoolkit.resample.ResampledVolume`: the same values as resampling the whole grid):
an analysis that reads only the marrow does not pay for the rest of the field of view.
:meth:`Study.from_dicom` does the same for a DICOM study folder, choosing the series with
:func:`bmetoolkit.pairing.pair.pair_series`.

Before any voxel-wise comparison the inputs are checked: the same file or identical pixel
data in two roles, and a T1 that does not look like a T1 next to the fluid image, are refused
(:mod:`bmetoolkit.pairing.sanity`); DICOM series of different studies (StudyInstanceUID) are
refused unless ``allow_cross_study=True``, and a different FrameOfReferenceUID gets a note.
Notes made while reading (header fixes, damaged files skipped) become study notes, and the
SHA-256 of every input file is kept in :attr:`Study.checksums`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.concurrency import map_threads
from bmetoolkit.errors import (
    BmetoolkitError,
    CrossStudyError,
    GridMismatchError,
    MissingContrastError,
    NoOverlapError,
)
from bmetoolkit.io import READ_NOTES, SOURCE_FILES, as_volume, file_sha256
from bmetoolkit.pairing.sanity import check_roles, refuse_duplicates
from bmetoolkit.pairing.series import IDENTIFIERS_META_KEY
from bmetoolkit.pairing.tissue import RoleEvidence
from bmetoolkit.resample import ResampledVolume, coverage_mask, resample_with_coverage
from bmetoolkit.volume import Grid, Volume

__all__ = [
    "DEFAULT_MIN_COVERAGE",
    "PARTIAL_COVERAGE_WARNING",
    "Role",
    "Study",
    "input_checksums",
]

Role = Literal["t1", "t2", "stir", "labels"]

#: An image covering less than this fraction of the T1 field of view is refused.
DEFAULT_MIN_COVERAGE = 0.10
#: Below this fraction of the T1 field of view covered, the study carries a warning.
PARTIAL_COVERAGE_WARNING = 0.90

ImageInput = str | os.PathLike | Volume


@dataclass(frozen=True)
class Study:
    """The images of one subject and session on one grid: the T1's, or without a T1 the
    fluid image's.

    Build it with :meth:`from_images` or :meth:`from_dicom`; the constructor itself only
    checks that the volumes it is given already share the study grid.

    Parameters
    ----------
    t1 : Volume, optional
        T1-weighted intensities; its grid is the study grid. Without a T1 the STIR (else
        the T2) gives the grid, and edema is found from the fluid image alone.
    t2, stir : Volume, optional
        T2-weighted and STIR (or a fat-suppressed T2 or proton-density image) intensities on
        the study grid; at least one of them is required.
    labels : Volume, optional
        Vertebra label map (VerSe ids, TotalSegmentator classes or a binary mask).
    coverage : dict
        Fraction (0-1) of the study's field of view covered by each other image, by role.
    covered : dict
        Boolean masks on the study grid: where each other image has data, by role.
    inputs : dict
        Where each role's image came from (file or folder).
    notes : tuple of str
        Pairing decisions and warnings (partial coverage, different planes...).
    checksums : dict
        SHA-256 of every input file, by role: a list of ``{"file": ..., "sha256": ...}``
        (empty for images built in memory).
    role_evidence : dict
        Every measure the role check judged, per fluid role
        (:meth:`bmetoolkit.pairing.tissue.RoleEvidence.to_dict`; saved in ``report.json``
        under ``checks.role_evidence``; empty when the roles were not checked). Its
        fluid-dark fractions are :attr:`role_checks`.
    source_grids : dict
        Each image's own grid as acquired, by role (its voxel size and orientation decide
        how far partial volume reaches on the study grid).
    """

    t1: Volume | None = None
    t2: Volume | None = None
    stir: Volume | None = None
    labels: Volume | None = None
    coverage: Mapping[str, float] = field(default_factory=dict)
    covered: Mapping[str, NDArray[np.bool_]] = field(default_factory=dict, repr=False)
    inputs: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    checksums: Mapping[str, list[dict[str, str]]] = field(default_factory=dict, repr=False)
    role_evidence: Mapping[str, Mapping[str, float | int | None]] = field(
        default_factory=dict, repr=False
    )
    source_grids: Mapping[str, Grid] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.t2 is None and self.stir is None:
            raise MissingContrastError(
                "a study needs a fluid-sensitive image (STIR, T2 or a fat-suppressed T2/PD)",
                path=None if self.t1 is None else self.t1.source,
                hint="pass t2=... and/or stir=...",
                cli_hint="add --t2 PATH and/or --stir PATH",
            )
        grid = self.grid
        for role, volume in self.images().items():
            if not volume.grid.same_as(grid):
                raise GridMismatchError(
                    f"the {role} image is not on the study grid ({volume.grid} vs {grid})",
                    path=[p for p in (self.base.source, volume.source) if p],
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
        allow_cross_study: bool = False,
        verify_roles: bool = True,
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
        allow_cross_study : bool
            Accept DICOM series of different studies (StudyInstanceUID); refused otherwise.
        verify_roles : bool
            Check that the images look like their roles (:mod:`bmetoolkit.pairing.sanity`).
            Turn off only for images you know are right but unusual.

        Raises
        ------
        MissingContrastError
            No T1 (what is possible without one, and how, is in the message), or neither a
            T2 nor a STIR.
        NoOverlapError
            An image covers less than ``min_coverage`` of the T1 field of view; the message
            names both files and where each lies.
        DuplicateInputError, ContrastMismatchError
            One image in two roles, or a T1 that does not look like a T1.
        CrossStudyError
            DICOM series of different studies without ``allow_cross_study``.

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
        if t1 is None and t2 is None and stir is None:
            raise MissingContrastError(
                "no image was given",
                hint="pass a T1 and a fluid-sensitive image: t1=..., stir=... and/or t2=...",
                cli_hint="add --t1 PATH and --stir PATH and/or --t2 PATH",
            )
        given = {
            "t1": (t1, "intensity"),
            "t2": (t2, "intensity"),
            "stir": (stir, "intensity"),
            "labels": (labels, "label"),
        }
        base_role = "t1" if t1 is not None else ("stir" if stir is not None else "t2")
        base = as_volume(given.pop(base_role)[0], kind="intensity")
        grid = base.grid
        aligned: dict[str, Volume] = {base_role: base}
        coverage: dict[str, float] = {}
        covered: dict[str, NDArray[np.bool_]] = {}
        messages = list(notes)
        if base_role != "t1":
            messages.append(
                f"no T1 was given: the {base_role.upper()} image's grid is the study grid, "
                "edema is found from the fluid-sensitive image alone (the T1 criterion is not "
                "applied) and Modic types are not assessed"
            )
        if base_role == "t2" and stir is None:
            messages.append(
                "the only fluid-sensitive image is a T2 without fat suppression, on which fat "
                "is bright as edema is: fatty marrow (focal fat, fatty endplate bands) can be "
                "counted as edema; add the T1, or use a STIR or fat-suppressed image"
            )
        field_of_view = "T1 field of view" if base_role == "t1" else "study's field of view"
        volumes: dict[str, Volume] = {}
        unreadable: Exception | None = None  # raised after the coverage of the roles before
        for role, (image, kind) in given.items():
            if image is not None and unreadable is None:
                try:
                    volumes[role] = as_volume(image, kind=kind)
                except Exception as error:  # raised below, after the roles before it
                    unreadable = error
        # each image's coverage side by side (threads), then checked in the order of the roles
        resampled = map_threads(lambda image: _onto(image, grid), volumes.values())
        for (role, volume), (aligned[role], mask) in zip(volumes.items(), resampled, strict=True):
            fraction = float(mask.mean())
            if fraction < min_coverage:
                raise NoOverlapError(
                    f"the {role} image covers {100 * fraction:.1f} % of the {field_of_view} "
                    f"(at least {100 * min_coverage:.0f} % needed); {base_role.upper()} spans "
                    f"{_extent_text(grid)}, {role} spans {_extent_text(volume.grid)} (RAS mm)",
                    path=[p for p in (base.source, volume.source) if p],
                    hint="check that both images are of the same subject and session and were "
                    "exported with their scanner coordinates",
                )
            if fraction < PARTIAL_COVERAGE_WARNING:
                messages.append(
                    f"{role} covers only {100 * fraction:.0f} % of the {field_of_view}; "
                    "voxels outside it are not analysed"
                )
            coverage[role] = fraction
            covered[role] = mask
        if unreadable is not None:
            raise unreadable
        inputs = {role: volume.source or "" for role, volume in aligned.items()}
        messages += _read_notes({base_role: base, **volumes})
        messages += _identity_notes(base, base_role, volumes, allow_cross_study)
        evidence: dict[str, RoleEvidence] = {}
        if verify_roles and base_role == "t1" and ("t2" in aligned or "stir" in aligned):
            evidence, role_notes = check_roles(base, volumes, aligned, covered)
            messages += role_notes
        elif verify_roles:
            refuse_duplicates({base_role: base, **volumes})
        return cls(
            **aligned,
            coverage=coverage,
            covered=covered,
            inputs=inputs,
            notes=tuple(dict.fromkeys(messages)),
            checksums=input_checksums({base_role: base, **volumes}),
            role_evidence={role: measured.to_dict() for role, measured in evidence.items()},
            source_grids={
                role: volume.grid
                for role, volume in {base_role: base, **volumes}.items()
                if role != "labels"
            },
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
        allow_cross_study: bool = False,
        verify_roles: bool = True,
    ) -> Study:
        """Build a study from a DICOM folder holding one subject's series.

        The sagittal T1 and the T2 and/or STIR are chosen automatically
        (:func:`bmetoolkit.pairing.pair.pair_series`); pass ``t1``, ``t2`` or ``stir`` (a
        SeriesNumber, SeriesInstanceUID or SeriesDescription) to choose explicitly. Series
        of different studies are paired only with ``allow_cross_study=True``. Damaged files
        skipped while scanning are named in a note, and in the error when pairing fails.
        """
        from bmetoolkit.dicom.read import describe_skipped, read_series, scan_dicom
        from bmetoolkit.pairing.pair import pair_series

        skipped: list[tuple[str, str]] = []
        series = scan_dicom(folder, skipped=skipped)
        try:
            pairing = pair_series(
                series, t1=t1, t2=t2, stir=stir, allow_cross_study=allow_cross_study
            )
        except BmetoolkitError as exc:
            if not skipped:
                raise
            raise type(exc)(
                f"{exc.message} ({describe_skipped(skipped)})",
                path=exc.paths or None,
                hint=exc.hint,
                cli_hint=exc.cli_hint,
            ) from exc
        notes = (*pairing.reasons, *([describe_skipped(skipped)] if skipped else []))
        return cls.from_images(
            read_series(pairing.t1),
            t2=read_series(pairing.t2) if pairing.t2 else None,
            stir=read_series(pairing.stir) if pairing.stir else None,
            labels=labels,
            min_coverage=min_coverage,
            notes=notes,
            allow_cross_study=allow_cross_study,
            verify_roles=verify_roles,
        )

    @property
    def base_role(self) -> str:
        """The role whose grid is the study grid: ``"t1"``, or without a T1 ``"stir"``/``"t2"``."""
        if self.t1 is not None:
            return "t1"
        return "stir" if self.stir is not None else "t2"

    @property
    def base(self) -> Volume:
        """The image whose grid is the study grid (the T1, else the STIR, else the T2)."""
        return self.t1 if self.t1 is not None else self.fluid

    @property
    def role_checks(self) -> dict[str, float | None]:
        """The role check's fluid-dark fraction per fluid role (3 decimals; None: too few
        voxels to judge; no entry: not checked; :func:`bmetoolkit.pairing.sanity.check_roles`)."""
        return {role: measures["fluid_dark"] for role, measures in self.role_evidence.items()}

    @property
    def grid(self) -> Grid:
        """The study grid (the T1 grid, or the fluid image's without a T1)."""
        return self.base.grid

    @property
    def fluid(self) -> Volume:
        """The fluid-sensitive image that drives the edema decision: STIR if present, else T2."""
        return self.stir if self.stir is not None else self.t2

    def images(self) -> dict[str, Volume]:
        """The images present besides the T1, by role."""
        candidates = {"t2": self.t2, "stir": self.stir, "labels": self.labels}
        return {role: volume for role, volume in candidates.items() if volume is not None}

    def analysable(self) -> NDArray[np.bool_]:
        """Voxels of the study grid covered by every intensity image of the study."""
        mask = np.ones(self.grid.shape, dtype=bool)
        for role in ("t2", "stir"):
            if role in self.covered:
                mask &= self.covered[role]
        return mask


def _onto(volume: Volume, grid: Grid) -> tuple[Volume, NDArray[np.bool_]]:
    """``volume`` on ``grid`` and where it has data there: a label map resampled now, an
    image when its voxels are read (:class:`~bmetoolkit.resample.ResampledVolume`: a run
    that reads only the marrow does not resample the rest of the field of view)."""
    if volume.is_label or volume.grid.same_as(grid):
        return resample_with_coverage(volume, grid)
    covered = coverage_mask(volume.grid, grid)
    return ResampledVolume(volume, grid, covered), covered


def input_checksums(volumes: Mapping[str, Volume]) -> dict[str, list[dict[str, str]]]:
    """SHA-256 of every file each volume was read from, by role.

    A DICOM series lists its files (``meta["SourceFiles"]``); a NIfTI or ITK volume its
    file; a volume built in memory none.

    Examples
    --------
    >>> input_checksums({"t1": Volume(np.zeros((2, 2, 2)), np.eye(4), source="phantom")})
    {'t1': []}
    """
    result: dict[str, list[dict[str, str]]] = {}
    for role, volume in volumes.items():
        files = volume.meta.get(SOURCE_FILES) or (
            [volume.source] if volume.source and os.path.isfile(volume.source) else []
        )
        result[role] = [{"file": str(f), "sha256": file_sha256(f)} for f in files]
    return result


def _read_notes(volumes: Mapping[str, Volume]) -> list[str]:
    """Notes made while reading each image (header fixes, library warnings), by role."""
    return [
        f"reading the {role} image: {note}"
        for role, volume in volumes.items()
        for note in volume.meta.get(READ_NOTES, ())
    ]


def _identity_notes(
    base: Volume, base_role: str, volumes: Mapping[str, Volume], allow_cross_study: bool
) -> list[str]:
    """Refuse DICOM series of another study than the base image's (the T1's); note another
    frame of reference."""
    mine = base.meta.get(IDENTIFIERS_META_KEY) or {}
    base_name = base_role.upper()
    notes = []
    for role, volume in volumes.items():
        theirs = volume.meta.get(IDENTIFIERS_META_KEY) or {}
        if _differs(mine, theirs, "StudyInstanceUID"):
            if not allow_cross_study:
                raise CrossStudyError(
                    f"the {base_name} and the {role} image are from different studies "
                    "(StudyInstanceUID differs): pairing across studies is refused",
                    path=[p for p in (base.source, volume.source) if p],
                    hint="give images of one study; if they really are one patient's same "
                    "session, allow it: allow_cross_study=True",
                    cli_hint="give images of one study; if they really are one patient's same "
                    "session, allow it: --allow-cross-study",
                )
            notes.append(f"the {role} image is from another study than the {base_name} (allowed)")
        if _differs(mine, theirs, "FrameOfReferenceUID"):
            notes.append(
                f"the {role} image has another frame of reference than the {base_name} "
                "(FrameOfReferenceUID differs): the patient may have moved or been "
                "repositioned; check the alignment in the QC page"
            )
    return notes


def _differs(mine: Mapping[str, str], theirs: Mapping[str, str], key: str) -> bool:
    return bool(mine.get(key) and theirs.get(key) and mine[key] != theirs[key])


def _extent_text(grid: Grid) -> str:
    corners = grid.corners_world()
    low, high = corners.min(axis=0), corners.max(axis=0)
    return " ".join(f"{a}[{lo:.0f}, {hi:.0f}]" for a, lo, hi in zip("xyz", low, high, strict=True))
