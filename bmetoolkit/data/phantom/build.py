"""Building a phantom study: spine + lesions -> T1, T2, STIR volumes and their truth.

Every random draw comes from independent streams of one seed (anatomy, lesions, and one per
contrast), so the same seed and config give identical arrays, and changing the lesions does
not change the noise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bmetoolkit.data.phantom.anatomy import Spine, Vertebra, build_spine
from bmetoolkit.data.phantom.config import CONTRAST_NAMES, PhantomConfig
from bmetoolkit.data.phantom.grids import fine_grid, make_grid, subsample_offsets, voxel_offsets
from bmetoolkit.data.phantom.lesions import Lesion, preset_lesions, random_lesions
from bmetoolkit.data.phantom.render import RenderEffects, render
from bmetoolkit.data.phantom.scene import label_samples
from bmetoolkit.data.phantom.truth import PhantomTruth, endplate_table, endplates_of, truth_masks
from bmetoolkit.volume import Grid, Volume

__all__ = ["LesionChoice", "PhantomStudy", "assemble_study", "make_phantom"]

LesionChoice = None | str | Sequence[Lesion]

#: Default voxel size of :meth:`PhantomStudy.fine_truth` (mm).
FINE_SPACING_MM = 0.5
#: Order of the independent random streams spawned from the seed.
_STREAMS = ("anatomy", "lesions", *CONTRAST_NAMES)


@dataclass
class PhantomStudy:
    """A synthetic sagittal lumbar spine study with known ground truth.

    Attributes
    ----------
    t1, t2, stir : Volume
        Intensity volumes (uint16) on their own grids, ``meta`` in BIDS sidecar style.
        ``stir`` is the fat-suppressed fluid-sensitive series: a STIR, or in a randomized
        phantom (:mod:`.randomize`) sometimes a fat-suppressed T2 (see its ``meta``).
    truth : PhantomTruth
        Label masks on the T1 grid and the per-endplate / per-lesion tables.
    lesions : list of Lesion
        The lesion specifications rendered.
    spine : Spine
        The geometry.
    seed : int
    config : PhantomConfig
    render_parameters : dict
        The random scanner scale, offset and noise of each contrast (and, for a randomized
        phantom, every draw under ``"randomization"``).
    """

    t1: Volume
    t2: Volume
    stir: Volume
    truth: PhantomTruth
    lesions: list[Lesion]
    spine: Spine
    seed: int
    config: PhantomConfig
    render_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def contrasts(self) -> dict[str, Volume]:
        """The three intensity volumes by name (``"t1"``, ``"t2"``, ``"stir"``)."""
        return {"t1": self.t1, "t2": self.t2, "stir": self.stir}

    def provenance(self) -> dict[str, Any]:
        """What was built and how: seed, lesion specs, random draws (JSON-ready)."""
        return {
            "generator": "bmetoolkit.data.phantom",
            "seed": self.seed,
            "levels": list(self.spine.levels),
            "lesions": [lesion.to_dict() for lesion in self.lesions],
            "render_parameters": self.render_parameters,
            "anatomy": asdict(self.config.anatomy),
            "grids": {name: asdict(spec) for name, spec in self.config.grids.items()},
            "supersample": list(self.config.supersample),
            "truth_step_mm": self.config.truth_step_mm,
        }

    def truth_on(
        self, grid: Grid, *, supersample: tuple[int, int, int] = (1, 1, 1)
    ) -> dict[str, Volume]:
        """Truth masks (``bme_mask``, ``modic_map``, ``vertebrae``, ``tissue``) on any grid.

        Parameters
        ----------
        grid : Grid
            Any grid in the phantom's world space (e.g. a resampled or fine grid).
        supersample : tuple of 3 ints
            Samples per voxel; a voxel gets a label when at least half of them carry it.
        """
        samples = label_samples(self.spine, self.lesions, grid, voxel_offsets(supersample))
        return truth_masks(samples, self.spine)

    def fine_truth(self, spacing_mm: float = FINE_SPACING_MM) -> dict[str, Volume]:
        """Truth masks on an isotropic RAS+ grid of ``spacing_mm`` around the vertebral bodies.

        Examples
        --------
        >>> study = make_phantom(lesions="modic2", config=PhantomConfig.small())
        >>> fine = study.fine_truth(2.0)
        >>> fine["modic_map"].spacing.tolist(), int(fine["modic_map"].data.max())
        ([2.0, 2.0, 2.0], 2)
        """
        corners = np.vstack([_body_box(v) for v in self.spine.bodies])
        return self.truth_on(fine_grid(corners, spacing_mm))

    def write_nifti(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write images, truth masks and tables to ``folder``; see :func:`.write.write_nifti`."""
        from bmetoolkit.data.phantom.write import write_nifti

        return write_nifti(self, folder)

    def write_dicom(self, folder: str | os.PathLike) -> dict[str, list[Path]]:
        """Write the three series into one DICOM folder; see :func:`.write.write_dicom`."""
        from bmetoolkit.data.phantom.write import write_dicom

        return write_dicom(self, folder)


def _body_box(vertebra: Vertebra) -> np.ndarray:
    """World corners of a box around a vertebral body (mm)."""
    a, b, h = vertebra.ap_radius_mm, vertebra.lr_radius_mm, vertebra.height_mm / 2
    mesh = np.meshgrid((-a, a), (-b, b), (-h, h), indexing="ij")
    return vertebra.to_world(*(m.ravel() for m in mesh))


def _resolve_lesions(lesions: LesionChoice, rng: np.random.Generator, spine: Spine) -> list[Lesion]:
    if lesions is None:
        return []
    if isinstance(lesions, str):
        if lesions == "random":
            return random_lesions(rng, spine.levels)
        return preset_lesions(lesions)
    chosen = list(lesions)
    for lesion in chosen:
        if not isinstance(lesion, Lesion):
            raise TypeError(f"lesions must be Lesion objects, got {type(lesion).__name__}")
        if lesion.level not in spine.levels:
            raise ValueError(
                f"lesion at {lesion.level!r}, but the phantom has levels {spine.levels}"
            )
        if lesion.endplate is not None and lesion.endplate not in endplates_of(
            spine, spine.vertebra(lesion.level)
        ):
            raise ValueError(
                f"{lesion.level} has no {lesion.endplate} endplate in the phantom "
                "(the caudal end of S1 is fused to S2)"
            )
    return chosen


def make_phantom(
    seed: int = 0,
    lesions: LesionChoice = None,
    config: PhantomConfig | None = None,
) -> PhantomStudy:
    """Build a synthetic sagittal spine study (T1, T2, STIR) with its ground truth.

    Parameters
    ----------
    seed : int
        Seed of every random draw (body sizes, random lesions, per-body signal, coil
        shading, noise, scanner scale and offset). Same seed and config, same arrays.
    lesions : None, str or sequence of Lesion
        None for a healthy spine; ``"random"`` for a random set drawn from the seed; a preset
        name (``"healthy"``, ``"modic1"``, ``"modic2"``, ``"modic3"``, ``"mixed"``,
        ``"edema"``, ``"haemangioma"``); or explicit :class:`Lesion` objects.
    config : PhantomConfig, optional
        Grids, anatomy and rendering; the realistic (~400x400x16) config by default.

    Returns
    -------
    PhantomStudy

    Examples
    --------
    >>> study = make_phantom(seed=1, lesions="modic1", config=PhantomConfig.small())
    >>> study.t1.data.dtype.name, study.t1.shape
    ('uint16', (96, 110, 6))
    >>> [row["modic_type"] for row in study.truth.endplates if row["level"] == "L4"]
    ['none', 'I']
    """
    config = config or PhantomConfig()
    streams = dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS)), strict=True))
    rngs = {name: np.random.default_rng(stream) for name, stream in streams.items()}
    spine = build_spine(config.anatomy, rngs["anatomy"])
    chosen = _resolve_lesions(lesions, rngs["lesions"], spine)
    return assemble_study(seed, spine, chosen, config, rngs)


def assemble_study(
    seed: int,
    spine: Spine,
    lesions: list[Lesion],
    config: PhantomConfig,
    rngs: dict[str, np.random.Generator],
    *,
    effects: dict[str, RenderEffects] | None = None,
) -> PhantomStudy:
    """Render every contrast of a built spine and measure its truth.

    Parameters
    ----------
    seed : int
        Recorded in the study and the images' meta.
    spine : Spine
    lesions : list of Lesion
        Already checked against the spine.
    config : PhantomConfig
    rngs : dict of str to numpy.random.Generator
        One generator per contrast name (noise, scale, offset, per-body variation).
    effects : dict of str to RenderEffects, optional
        Image-only effects per contrast name (texture, bias); never in the truth.

    Returns
    -------
    PhantomStudy
    """
    effects = effects or {}
    centre = spine.centre_of_field()
    volumes: dict[str, Volume] = {}
    parameters: dict[str, dict[str, Any]] = {}
    masks: dict[str, dict[str, Volume]] = {}
    for name in CONTRAST_NAMES:
        spec = config.grids[name]
        grid = make_grid(spec, centre)
        samples = label_samples(spine, lesions, grid, subsample_offsets(spec, config.supersample))
        contrast = config.contrasts[name]
        image, parameters[name] = render(
            samples, spine, contrast, rngs[name], effects=effects.get(name)
        )
        meta = dict(contrast.meta) | {
            "SliceThickness": spec.slice_thickness_mm,
            "SpacingBetweenSlices": spec.slice_spacing_mm,
            "PhantomSeed": seed,
        }
        volumes[name] = Volume(
            image, grid.affine, kind="intensity", source=f"phantom:{name}", meta=meta
        )
        masks[name] = truth_masks(samples, spine)
        del samples
    endplates, lesion_rows = endplate_table(spine, lesions, step_mm=config.truth_step_mm)
    return PhantomStudy(
        t1=volumes["t1"],
        t2=volumes["t2"],
        stir=volumes["stir"],
        truth=PhantomTruth(
            masks=masks["t1"], endplates=endplates, lesions=lesion_rows, grid_masks=masks
        ),
        lesions=lesions,
        spine=spine,
        seed=seed,
        config=config,
        render_parameters=parameters,
    )
