"""Building a joint phantom: draws -> T1 and fluid-sensitive images and their truth.

The T1 and the fluid-sensitive series are rendered on their own grids (different matrix,
slice thickness, gap, offset and tilt, like two real series). The truth lives on the
analysis grid: the T1's, or the fluid image's when there is no T1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.data.phantom.joint.anatomy import JointTissue
from bmetoolkit.data.phantom.joint.fields import shading
from bmetoolkit.data.phantom.joint.randomize import JointDraws, LesionRequest, draw_joint_case
from bmetoolkit.data.phantom.joint.scan import Scene, scan
from bmetoolkit.data.phantom.joint.shapes import transform
from bmetoolkit.data.phantom.joint.signals import series_meta
from bmetoolkit.data.phantom.joint.truth import JointTruth, bones_table, lesion_rows, masks
from bmetoolkit.volume import Grid, Volume

__all__ = ["JointPhantom", "make_joint_phantom", "render_joint_case"]

#: Samples per voxel (i, j, through the slice) of realistic and of ``small`` grids.
SUPERSAMPLE = (1, 1, 3)
SMALL_SUPERSAMPLE = (1, 1, 3)
#: Extra samples per voxel (i, j, through the slice) where the first ones disagree (edges).
REFINE = (1, 1, 6)
#: Entropy added to the seed for the sub-sample positions (a stream apart from the draws).
SAMPLING_STREAM = 7
#: Lattice step (mm) of the random fields and of the lesion measurements.
FIELD_STEP_MM = 0.5
SMALL_FIELD_STEP_MM = 1.0
#: In-plane point-spread function of the reconstruction (Gaussian SD, pixels): blurs edges
#: as k-space truncation does, and smooths the stratified sampling's dither.
PSF_SIGMA_PX = 0.6
#: Largest value stored (uint16).
STORED_MAX = np.iinfo(np.uint16).max


@dataclass
class JointPhantom:
    """A synthetic joint study with known truth.

    Attributes
    ----------
    t1 : Volume or None
        The T1 series (uint16), None when made with ``with_t1=False``.
    fluid : Volume
        The fluid-sensitive series (uint16): STIR, fat-suppressed T2 or fat-suppressed PD.
    fluid_kind : {'stir', 't2fs', 'pdfs'}
    truth : JointTruth
        On the analysis grid (the T1's, or the fluid image's without a T1).
    draws : JointDraws
        Every drawn property (``draws.to_dict()`` for a report).
    render_parameters : dict
        Noise SD in stored units per role.
    """

    t1: Volume | None
    fluid: Volume
    fluid_kind: str
    truth: JointTruth
    draws: JointDraws
    render_parameters: dict[str, Any]

    @property
    def seed(self) -> int:
        """The case's seed."""
        return self.draws.seed

    @property
    def analysis_grid(self) -> Grid:
        """The grid the truth lives on."""
        return self.truth.bones.grid

    def provenance(self) -> dict[str, Any]:
        """What was built and how (JSON-ready)."""
        return {
            "generator": "bmetoolkit.data.phantom.joint",
            "seed": self.seed,
            "draws": self.draws.to_dict(),
            "render_parameters": self.render_parameters,
            "analysis_grid": "t1" if self.t1 is not None else "fluid",
        }

    def write(self, folder: str | os.PathLike, **options: Any) -> dict[str, Path]:
        """Write images and truth; see :func:`.write.write_joint_phantom`."""
        from bmetoolkit.data.phantom.joint.write import write_joint_phantom

        return write_joint_phantom(self, folder, **options)


def _table(draws: JointDraws, sequence: str) -> NDArray[np.float32]:
    signals = draws.signals[sequence]
    return np.array([signals[tissue.name] for tissue in JointTissue], np.float32)


def _scanner(
    clean: NDArray[np.float32], grid: Grid, draws: JointDraws, role: str, sequence: str,
    rng: np.random.Generator,
) -> tuple[NDArray[np.uint16], float]:  # fmt: skip
    """In-plane blur, shading, Rician noise, scanner scale and offset, uint16 storage."""
    frame = draws.anatomy.frame
    ijk = np.stack([n.ravel() for n in np.indices(grid.shape, dtype=np.float32)], axis=1)
    matrix, offset = frame.voxel_to_local(grid.affine)
    local = transform(ijk, matrix, offset - frame.to_local([draws.anatomy.centre()])[0])
    clean = ndimage.gaussian_filter(clean, (PSF_SIGMA_PX, PSF_SIGMA_PX, 0.0))
    span = draws.anatomy.BIAS_SPAN_MM
    clean *= shading(local, **draws.shading, span_mm=span).reshape(grid.shape)
    marrow = draws.signals[sequence][JointTissue.MARROW.name]
    sigma = marrow / draws.snr[role]
    real = clean + sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary)
    scale = draws.scale[role] / marrow
    stored = np.rint(magnitude * scale) + draws.offset[role]
    return np.clip(stored, 0, STORED_MAX).astype(np.uint16), sigma * scale


def render_joint_case(draws: JointDraws, *, with_t1: bool = True) -> JointPhantom:
    """Render the images and measure the truth of a set of draws."""
    step = SMALL_FIELD_STEP_MM if draws.small else FIELD_STEP_MM
    supersample = SMALL_SUPERSAMPLE if draws.small else SUPERSAMPLE
    scene = Scene.build(
        draws.anatomy,
        draws.lesions,
        mottle_sd=draws.mottle_sd,
        mottle_length_mm=draws.mottle_length_mm,
        mottle_seed=draws.mottle_seed,
        step_mm=step,
    )
    noise = np.random.SeedSequence(draws.seed).spawn(2)
    sampling = np.random.SeedSequence([draws.seed, SAMPLING_STREAM]).spawn(2)
    centre = draws.anatomy.centre()
    analysis = "t1" if with_t1 else "fluid"
    volumes: dict[str, Volume] = {}
    parameters: dict[str, Any] = {}
    truth_volumes: dict[str, Volume] = {}
    for n, role in enumerate(("t1", "fluid")):
        if role == "t1" and not with_t1:
            continue
        acquisition = draws.acquisitions[role]
        sequence = "t1" if role == "t1" else draws.fluid
        grid = acquisition.grid(centre)
        offsets = acquisition.sample_offsets(supersample)
        cell = np.array(acquisition.sample_cell(supersample))
        refine = (acquisition.sample_offsets(REFINE), np.array(acquisition.sample_cell(REFINE)))
        clean, fractions = scan(
            scene, grid, offsets, sequence=sequence, table=_table(draws, sequence),
            with_truth=role == analysis, jitter=(np.random.default_rng(sampling[n]), cell),
            refine=refine,
        )  # fmt: skip
        image, sigma = _scanner(clean, grid, draws, role, sequence, np.random.default_rng(noise[n]))
        parameters[role] = {"noise_sigma": sigma, "sequence": sequence}
        meta = series_meta(sequence, draws.plane) | {
            "SliceThickness": acquisition.slice_thickness_mm,
            "SpacingBetweenSlices": acquisition.slice_spacing_mm,
            "PhantomSeed": draws.seed,
        }
        volumes[role] = Volume(
            image, grid.affine, kind="intensity", source=f"phantom:{sequence}", meta=meta
        )
        if fractions is not None:
            truth_volumes = masks(fractions, grid, draws.anatomy.bones)
    grid = truth_volumes["bones"].grid
    rows = lesion_rows(scene, step, grid)
    truth = JointTruth(
        bones=truth_volumes["bones"],
        bone_names=draws.anatomy.bones,
        marrow=truth_volumes["marrow"],
        bme_mask=truth_volumes["bme_mask"],
        cyst_mask=truth_volumes["cyst_mask"],
        islands_mask=truth_volumes["islands_mask"],
        lesions=rows,
        bones_table=bones_table(truth_volumes, draws.anatomy.bones, rows),
    )
    return JointPhantom(
        t1=volumes.get("t1"),
        fluid=volumes["fluid"],
        fluid_kind=draws.fluid,
        truth=truth,
        draws=draws,
        render_parameters=parameters,
    )


def make_joint_phantom(
    seed: int,
    *,
    joint: str = "knee",
    plane: str = "sagittal",
    fluid: str = "stir",
    with_t1: bool = True,
    lesions: str | Sequence[LesionRequest] = "random",
    small: bool = False,
) -> JointPhantom:
    """A synthetic joint study (T1 and a fluid-sensitive series) with known truth.

    Parameters
    ----------
    seed : int
        Same seed and options: identical arrays and truth. Tune on
        :data:`~.randomize.TUNING_SEEDS`, benchmark on :data:`~.randomize.HELD_OUT_SEEDS`.
    joint : {'knee', 'sij'}
        A knee (femur, tibia, patella) or the sacroiliac joints (sacrum, both ilia).
    plane : {'sagittal', 'coronal', 'axial', 'oblique', 'random'}
        Acquisition plane of both series (oblique: sagittal along the ACL for the knee,
        coronal along the sacrum for the sacroiliac joints).
    fluid : {'stir', 't2fs', 'pdfs', 'random'}
        The fluid-sensitive sequence.
    with_t1 : bool
        Render the T1 (the truth's grid); without it the truth is on the fluid image's grid.
    lesions : 'random', 'none' or sequence
        See :func:`~.randomize.draw_joint_case`.
    small : bool
        ~96 x 96 x 16 grids for unit tests.

    Returns
    -------
    JointPhantom

    Examples
    --------
    >>> ph = make_joint_phantom(1, plane="coronal", lesions=["edema"], small=True)
    >>> ph.truth.bone_names
    {1: 'femur', 2: 'tibia', 3: 'patella'}
    >>> row = ph.truth.lesions[0]
    >>> row["kind"], row["touches_articular_surface"], int(ph.truth.bme_mask.data.max())
    ('edema', True, 1)
    """
    draws = draw_joint_case(
        seed, joint=joint, plane=plane, fluid=fluid, lesions=lesions, small=small
    )
    return render_joint_case(draws, with_t1=with_t1)
