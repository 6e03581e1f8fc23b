"""Do the images look like the roles they were given? Judged from the pixels, not the names.

Headers and file names can lie (a series exported under the wrong name, files swapped by
hand), so before any voxel-wise comparison :class:`~bmetoolkit.study.Study` checks:

1. **one image, one role**: the same file, or identical pixel data, given for two roles is
   refused (:class:`~bmetoolkit.errors.DuplicateInputError`);
2. **T1 against fluid**: fluid (CSF, discs, edema) is the brightest tissue on STIR and T2 and
   dark on a T1; fat is bright on a T1 and on a plain T2. So among the voxels brightest on the
   fluid image (its top 2 %, 5 % and 10 %: on a plain T2 the very top may be all fat), a real
   T1 shows some dark ones (the fluid) while a T2 or STIR given as the T1 shows them all
   bright. When, for every one of these sets, fewer than :data:`MIN_FLUID_DARK_FRACTION` of
   them lie in the T1's darkest quarter, the pair is refused
   (:class:`~bmetoolkit.errors.ContrastMismatchError`): one image is in the wrong role.

Measured (2026-11-29, ``python benchmarks/bench_role_check.py``) on the SCT cervical pair,
the fixed phantoms (seeds 0 and 5, small and realistic) and randomized phantoms
(``make_randomized_phantom``, small, random lesions): with seeds 0-39, where the threshold
was chosen, a genuine T1 scores 0.036-0.77 against the STIR and 0.047-0.61 against the T2
(the real cervical gradient-echo T1: 0.25), a T2 given as the T1 with the STIR 0.000-0.012
(44 of 44 refused); with held-out seeds 40-99 no genuine pair is refused (lowest 0.074
against the T2, 0.20 against the STIR) and 63 of 64 T2s given as the T1 are (highest
0.021). T1 and T2 swapped are refused only in part (10 of 45, 8 of 65); a STIR given as the
T1 with a plain T2 is not caught (fat and fluid are both bright on the T2). The contrast told
by the names and headers is reported in a note when it disagrees with the role.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import ContrastMismatchError, DuplicateInputError
from bmetoolkit.volume import Volume

__all__ = [
    "BRIGHT_FLUID_PERCENTILES",
    "DARK_QUANTILE",
    "FOREGROUND_FRACTION",
    "MIN_FLUID_DARK_FRACTION",
    "MIN_VOXELS",
    "check_roles",
    "fluid_dark_fraction",
    "refuse_duplicates",
    "same_input",
]

#: The fluid image's brightest voxels: at or above each of these percentiles of its
#: foreground (fluid on STIR; fat and fluid on a plain T2, where fat may fill the very top).
BRIGHT_FLUID_PERCENTILES = (98.0, 95.0, 90.0)
#: "Dark on the T1": in the lowest quarter of the T1's foreground intensities.
DARK_QUANTILE = 0.25
#: Below this fraction of the fluid image's brightest voxels dark on the T1 (the largest over
#: :data:`BRIGHT_FLUID_PERCENTILES`), the T1 does not look like a T1 (genuine T1s: 0.036 and
#: more; a T2 given as the T1: 0.012 at most; see the module documentation).
MIN_FLUID_DARK_FRACTION = 0.02
#: Foreground: fluid-image voxels brighter than this fraction of its 99th percentile.
FOREGROUND_FRACTION = 0.1
#: Fewer foreground voxels than this cannot be judged (the check is skipped, with a note).
MIN_VOXELS = 500

_ROLE_NAMES = {"t1": "T1", "t2": "T2", "stir": "STIR", "labels": "label map"}


def same_input(first: Volume, second: Volume) -> str | None:
    """Why two volumes are one and the same input (same file, same pixel data), or None.

    Examples
    --------
    >>> vol = Volume(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    >>> same_input(vol, vol.with_data(vol.data.copy()))
    'identical pixel data'
    >>> same_input(vol, vol.with_data(vol.data + 1)) is None
    True
    """
    shared = _files(first) & _files(second)
    if shared:
        return "the same file" if len(shared) == 1 else f"the same {len(shared)} files"
    if (
        first.shape == second.shape
        and first.data.size
        and first.data.min() != first.data.max()  # a constant array identifies no image
        and np.array_equal(first.data, second.data)
    ):
        return "identical pixel data"
    return None


def _files(volume: Volume) -> set[str]:
    """The files a volume was read from (a DICOM series' files, or its one file), resolved."""
    from bmetoolkit.io import SOURCE_FILES

    files = volume.meta.get(SOURCE_FILES) or (
        [volume.source] if volume.source and os.path.isfile(volume.source) else []
    )
    return {os.path.realpath(f) for f in files}


def fluid_dark_fraction(
    t1: NDArray, fluid: NDArray, covered: NDArray[np.bool_]
) -> tuple[float | None, int]:
    """Fraction of the fluid image's brightest voxels that are dark on the T1.

    The largest fraction over the sets at :data:`BRIGHT_FLUID_PERCENTILES`.

    Parameters
    ----------
    t1, fluid : ndarray
        The T1 and the fluid image on one grid.
    covered : ndarray of bool
        Where the fluid image has data.

    Returns
    -------
    fraction : float or None
        None when fewer than :data:`MIN_VOXELS` foreground voxels can be judged.
    voxels : int
        Foreground voxels used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fluid = rng.random((20, 20, 5)) * 100
    >>> fraction, _ = fluid_dark_fraction(100 - fluid, fluid, np.ones(fluid.shape, bool))
    >>> round(fraction, 2)  # fluid bright on one, dark on the other: a T1 against a STIR
    1.0
    >>> fluid_dark_fraction(fluid, fluid, np.ones(fluid.shape, bool))[0]  # a STIR as T1
    0.0
    """
    values = np.asarray(fluid, np.float64)[covered]
    if values.size == 0:
        return None, 0
    foreground = values > FOREGROUND_FRACTION * np.percentile(values, 99)
    bright_on_fluid = values[foreground]
    on_t1 = np.asarray(t1, np.float64)[covered][foreground]
    if bright_on_fluid.size < MIN_VOXELS:
        return None, int(bright_on_fluid.size)
    # In the T1's lowest quarter: fewer than DARK_QUANTILE of the voxels are darker, i.e. at
    # or below the value of rank ceil(DARK_QUANTILE * n) - 1 (a partition, not a sort).
    rank = max(int(np.ceil(DARK_QUANTILE * on_t1.size)) - 1, 0)
    dark = on_t1 <= np.partition(on_t1, rank)[rank]
    levels = np.percentile(bright_on_fluid, BRIGHT_FLUID_PERCENTILES)
    fractions = [np.mean(dark[bright_on_fluid >= level]) for level in levels]
    return float(max(fractions)), int(bright_on_fluid.size)


def check_roles(
    t1: Volume,
    given: Mapping[str, Volume],
    aligned: Mapping[str, Volume],
    covered: Mapping[str, NDArray[np.bool_]],
) -> tuple[dict[str, float | None], list[str]]:
    """Refuse images in the wrong role; return the fractions measured and notes.

    Parameters
    ----------
    t1 : Volume
        The image given as T1.
    given : mapping of role to Volume
        The other images as given (before resampling): ``t2``, ``stir``, ``labels``.
    aligned, covered : mapping of role to Volume / bool array
        The T2 and STIR on the T1 grid, and where they have data.

    Returns
    -------
    fractions : dict
        :func:`fluid_dark_fraction` per fluid role (None when not judged).
    notes : list of str
        Checks that could not be made, contrasts that names or headers disagree on.

    Raises
    ------
    DuplicateInputError
        One file or identical pixel data in two roles.
    ContrastMismatchError
        The T1 does not show fluid dark where a fluid image shows it bright.
    """
    refuse_duplicates({"t1": t1, **given})
    fractions: dict[str, float | None] = {}
    notes: list[str] = []
    for role in ("t2", "stir"):
        if role not in aligned:
            continue
        fraction, voxels = fluid_dark_fraction(t1.data, aligned[role].data, covered[role])
        fractions[role] = None if fraction is None else round(fraction, 3)
        if fraction is None:
            notes.append(
                f"the T1 was not checked against the {_ROLE_NAMES[role]} ({voxels} voxels "
                f"with signal where both have data; {MIN_VOXELS} needed)"
            )
        elif fraction < MIN_FLUID_DARK_FRACTION:
            _refuse_contrast(t1, given[role], role, fraction)
    notes += _name_notes({"t1": t1, **given})
    return fractions, notes


def refuse_duplicates(images: Mapping[str, Volume]) -> None:
    """Refuse one file, or identical pixel data, given in two roles (keys of ``images``)."""
    roles = list(images)
    for n, first in enumerate(roles):
        for second in roles[n + 1 :]:
            why = same_input(images[first], images[second])
            if why is not None:
                raise DuplicateInputError(
                    f"{why} was given as the {_ROLE_NAMES[first]} and as the {_ROLE_NAMES[second]}",
                    path=sorted({p for p in (images[first].source, images[second].source) if p}),
                    hint="give each role its own image: a T1, and a T2 and/or STIR of the "
                    "same session",
                )


def _refuse_contrast(t1: Volume, fluid: Volume, role: str, fraction: float) -> None:
    name = _ROLE_NAMES[role]
    raise ContrastMismatchError(
        f"the image given as T1 does not look like a T1: of the voxels brightest on the "
        f"{name} (fluid: CSF, discs), {100 * fraction:.0f} % are dark on it (a T1 shows fluid "
        f"dark: at least {100 * MIN_FLUID_DARK_FRACTION:.0f} %). It looks like a T2 or STIR, "
        f"or the {name} is in the wrong role{_called(t1, fluid)}",
        path=[p for p in (t1.source, fluid.source) if p],
        hint="check which file is which (`bmetoolkit info FILE` shows what the header and "
        "name say) and give the T1 as the T1",
    )


def _called(t1: Volume, fluid: Volume) -> str:
    pairs = (("T1", _contrast_of(t1)), ("fluid", _contrast_of(fluid)))
    calls = [f"{role}: {call}" for role, call in pairs if call]
    return f" (names and headers say {', '.join(calls)})" if calls else ""


def _contrast_of(volume: Volume) -> str | None:
    """The contrast a volume's file name or series description names, if any."""
    from bmetoolkit.pairing.contrast import contrast_from_name

    for text in (volume.meta.get("SeriesDescription"), volume.source):
        if text:
            call = contrast_from_name(os.path.basename(str(text)))
            if call is not None:
                return call
    return None


def _name_notes(images: Mapping[str, Volume]) -> list[str]:
    notes = []
    for role, volume in images.items():
        if role == "labels":
            continue
        call = _contrast_of(volume)
        fits = call is None or call == _ROLE_NAMES[role] or (role == "stir" and call == "T2")
        if not fits:
            notes.append(
                f"the image given as {_ROLE_NAMES[role]} is named as a {call} "
                f"({os.path.basename(volume.source or '')}); check the roles"
            )
    return notes
