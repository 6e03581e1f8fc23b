"""Paths of the sample data bundled with bmetoolkit, so notebooks and tests never hard-code them.

Where the data are looked up
----------------------------
1. The folder named by the environment variable ``BMETOOLKIT_DATA`` (set it when bmetoolkit is
   installed from a wheel, or to use a copy of ``sample_data/`` elsewhere);
2. else the ``sample_data/`` folder of the source checkout this package was imported from
   (an editable install, or running from the repository).

When neither holds the file asked for, an :class:`~bmetoolkit.errors.InputNotFoundError` names
the file and says what to do (set ``BMETOOLKIT_DATA`` to a copy of ``sample_data/`` from the
repository, or regenerate the phantom sample with ``python sample_data/make_phantom_sample.py``).

What is there
-------------
- :func:`cervical_pair`: real cervical T1w + T2 pair of one subject (Spinal Cord Toolbox test
  data, MIT), with cord masks and level labels.
- :func:`lumbar_t2`: real lumbar 3D T2 (Spinal Cord Toolbox tutorial data, MIT).
- :func:`tptbox_t2`: real T2w with SPINEPS-convention vertebra and subregion masks (TPTBox,
  Apache-2.0).
- :func:`phantom_sample`: a synthetic lumbar study with known truth (Modic I, II, I/II, edema,
  haemangioma) as DICOM and NIfTI, regenerated exactly by :func:`write_phantom_sample`.

Examples
--------
>>> paths = phantom_sample()
>>> paths["t1"].name, paths["dicom"].name
('t1.nii.gz', 'dicom')
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bmetoolkit.errors import InputNotFoundError

if TYPE_CHECKING:
    from bmetoolkit.data.phantom import PhantomConfig, PhantomStudy

__all__ = [
    "DATA_ENV_VAR",
    "PHANTOM_SAMPLE_LESIONS",
    "PHANTOM_SAMPLE_SEED",
    "cervical_pair",
    "data_root",
    "lumbar_t2",
    "make_phantom_sample",
    "phantom_sample",
    "phantom_sample_config",
    "tptbox_t2",
    "write_phantom_sample",
]

#: Environment variable naming a folder laid out like the repository's ``sample_data/``.
DATA_ENV_VAR = "BMETOOLKIT_DATA"
#: Seed of the bundled phantom study: its random lesions are Modic I, II and I/II at four
#: endplates, edema in L3 and a haemangioma in L2.
PHANTOM_SAMPLE_SEED = 3
#: Lesion choice of the bundled phantom study (drawn from the seed).
PHANTOM_SAMPLE_LESIONS = "random"
#: In-plane matrix of the bundled phantom is the realistic one divided by this (pixels twice
#: as large), so that DICOM and NIfTI together stay small enough for git.
_SAMPLE_DOWNSCALE = 2
_SAMPLE_SUPERSAMPLE = (2, 2, 5)

_REPO_SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
_REGENERATE = "python sample_data/make_phantom_sample.py"


def data_root() -> Path:
    """The folder holding the sample data (see the module docs for the lookup order).

    Raises
    ------
    InputNotFoundError
        ``BMETOOLKIT_DATA`` names a missing folder, or it is unset and no ``sample_data/``
        sits beside the package.
    """
    configured = os.environ.get(DATA_ENV_VAR)
    if configured:
        root = Path(configured).expanduser()
        if not root.is_dir():
            raise InputNotFoundError(
                f"is named by {DATA_ENV_VAR} but is not a folder",
                path=root,
                hint=f"point {DATA_ENV_VAR} at a copy of the repository's sample_data/ folder, "
                "or unset it",
            )
        return root
    if _REPO_SAMPLE_DATA.is_dir():
        return _REPO_SAMPLE_DATA
    raise InputNotFoundError(
        "no sample data folder found (bmetoolkit seems installed without its repository)",
        path=_REPO_SAMPLE_DATA,
        hint=f"clone the bmetoolkit repository and set {DATA_ENV_VAR}=<repo>/sample_data",
    )


def _existing(relative: str, *, hint: str | None = None) -> Path:
    path = data_root() / relative
    if not path.exists():
        raise InputNotFoundError(
            f"sample file missing from {data_root()}",
            path=path,
            hint=hint
            or f"copy the repository's sample_data/{relative} there, or point {DATA_ENV_VAR} "
            "at a complete sample_data/ folder",
        )
    return path


def cervical_pair() -> dict[str, Path]:
    """Real cervical T1w + T2 pair of one subject (Spinal Cord Toolbox test data, MIT).

    Returns
    -------
    dict of str to Path
        ``t1`` (42x76x77, 1 mm), ``t2`` (60x55x52, 1 mm, stored PSR), ``t1_cord`` and
        ``t2_cord`` (manual cord masks), ``t2_levels`` (cord labelled with C2-C5 levels).
    """
    base = "spine/sct_testing_data"
    return {
        "t1": _existing(f"{base}/t1/t1w.nii.gz"),
        "t2": _existing(f"{base}/t2/t2.nii.gz"),
        "t1_cord": _existing(f"{base}/t1/t1w_seg-manual.nii.gz"),
        "t2_cord": _existing(f"{base}/t2/t2_seg-manual.nii.gz"),
        "t2_levels": _existing(f"{base}/t2/t2_seg-manual_labeled.nii.gz"),
    }


def lumbar_t2() -> Path:
    """Real lumbar 3D T2, 38x257x201 at 1 mm (Spinal Cord Toolbox tutorial data, MIT)."""
    return _existing("spine/sct_tutorial_data/t2_lumbar/t2_lumbar.nii.gz")


def tptbox_t2() -> dict[str, Path]:
    """Real T2w with SPINEPS-convention masks (TPTBox sample, Apache-2.0).

    Returns
    -------
    dict of str to Path
        ``t2`` (68x52x67 at 1.5 mm), ``vertebrae`` (instance mask: vertebrae, 100+id discs,
        200+id endplates; the level numbers are arbitrary), ``subregions`` (semantic mask).
    """
    base = "spine/tptbox_sample_mri"
    return {
        "t2": _existing(f"{base}/sub-mri_label-6_T2w.nii.gz"),
        "vertebrae": _existing(f"{base}/sub-mri_seg-vert_label-6_msk.nii.gz"),
        "subregions": _existing(f"{base}/sub-mri_seg-subreg_label-6_msk.nii.gz"),
    }


#: Files of the NIfTI half of the phantom sample, by key.
_PHANTOM_NIFTI = {
    "t1": "t1.nii.gz",
    "t2": "t2.nii.gz",
    "stir": "stir.nii.gz",
    "bme_mask": "bme_mask.nii.gz",
    "modic_map": "modic_map.nii.gz",
    "vertebrae": "vertebrae.nii.gz",
    "tissue": "tissue.nii.gz",
    "endplates_csv": "endplates.csv",
    "endplates_json": "endplates.json",
    "lesions_json": "lesions.json",
    "phantom_json": "phantom.json",
}


def phantom_sample() -> dict[str, Path]:
    """The bundled synthetic study: DICOM folder, NIfTI images and truth on the T1 grid.

    Returns
    -------
    dict of str to Path
        ``dicom`` (one folder with the T1, T2 and STIR series), ``t1``, ``t2``, ``stir``
        (NIfTI), ``bme_mask``, ``modic_map``, ``vertebrae``, ``tissue`` (truth on the T1 grid),
        ``endplates_csv``, ``endplates_json``, ``lesions_json``, ``phantom_json``.

    Raises
    ------
    InputNotFoundError
        A file is missing; the message says how to regenerate them.
    """
    hint = f"regenerate the phantom sample with `{_REGENERATE}` from the repository"
    paths = {"dicom": _existing("phantom/dicom", hint=hint)}
    for key, name in _PHANTOM_NIFTI.items():
        paths[key] = _existing(f"phantom/nifti/{name}", hint=hint)
    return paths


def phantom_sample_config() -> PhantomConfig:
    """The grids of the bundled phantom: the realistic ones with half the in-plane matrix.

    Same fields of view, offsets, tilts, slices and gaps as
    :meth:`~bmetoolkit.data.phantom.PhantomConfig.realistic`; pixels twice as large (T1 200x200x16
    at 1.4 x 1.6 mm), sampled 2 x 2 in-plane and 5 times through each slice.

    Examples
    --------
    >>> phantom_sample_config().grids["t1"].shape
    (200, 200, 16)
    """
    from bmetoolkit.data.phantom import PhantomConfig

    realistic = PhantomConfig.realistic()
    grids = {
        name: replace(
            spec,
            n_ap=spec.n_ap // _SAMPLE_DOWNSCALE,
            n_si=spec.n_si // _SAMPLE_DOWNSCALE,
            pixel_ap_mm=spec.pixel_ap_mm * _SAMPLE_DOWNSCALE,
            pixel_si_mm=spec.pixel_si_mm * _SAMPLE_DOWNSCALE,
        )
        for name, spec in realistic.grids.items()
    }
    return replace(realistic, grids=grids, supersample=_SAMPLE_SUPERSAMPLE)


def make_phantom_sample() -> PhantomStudy:
    """Build the bundled phantom study in memory (seed, lesions and grids as shipped)."""
    from bmetoolkit.data.phantom import make_phantom

    return make_phantom(
        seed=PHANTOM_SAMPLE_SEED, lesions=PHANTOM_SAMPLE_LESIONS, config=phantom_sample_config()
    )


def write_phantom_sample(folder: str | os.PathLike) -> dict[str, Path]:
    """Write the phantom sample into ``folder``: ``dicom/`` and ``nifti/`` (as shipped).

    Only the truth on the T1 grid is kept (the per-contrast truth of the T2 and STIR grids is
    left out to keep the sample small; :meth:`PhantomStudy.truth_on` recomputes it).

    Returns
    -------
    dict of str to Path
        Like :func:`phantom_sample`, under ``folder``.
    """
    target = Path(folder)
    study = make_phantom_sample()
    study.truth.grid_masks = {"t1": study.truth.grid_masks["t1"]}
    study.write_dicom(target / "dicom")
    written = study.write_nifti(target / "nifti")
    paths = {"dicom": target / "dicom"}
    paths.update({key: written[key] for key in _PHANTOM_NIFTI})
    return paths
