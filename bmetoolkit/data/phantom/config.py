"""Configuration of a phantom study: anatomy, one grid per contrast, rendering, truth.

:meth:`PhantomConfig.realistic` (the default) gives clinical-like ~400x400x16 sagittal
series; :meth:`PhantomConfig.small` a coarse, fast one for tests.

Examples
--------
>>> PhantomConfig().grids["t1"].shape
(400, 400, 16)
>>> PhantomConfig.small().grids["stir"].shape
(72, 84, 6)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bmetoolkit.data.phantom.anatomy import AnatomyConfig
from bmetoolkit.data.phantom.grids import GridSpec
from bmetoolkit.data.phantom.render import CONTRASTS, ContrastSpec
from bmetoolkit.data.phantom.truth import TRUTH_STEP_MM

__all__ = ["CONTRAST_NAMES", "REALISTIC_GRIDS", "SMALL_GRIDS", "PhantomConfig"]

#: Contrasts of a phantom study, in series order.
CONTRAST_NAMES = ("t1", "t2", "stir")

#: Clinical-like grids: T1 with 0.7 x 0.8 mm non-square pixels, T2 a different in-plane
#: resolution and a small offset, STIR coarser; 4 mm slices with a gap; small oblique tilts.
REALISTIC_GRIDS: dict[str, GridSpec] = {
    "t1": GridSpec(400, 400, 16, 0.7, 0.8, 4.0, 4.4, (0.0, 0.0, 0.0), (0.0, 0.0, 2.0)),
    "t2": GridSpec(384, 384, 16, 0.75, 0.85, 4.0, 4.4, (0.6, -1.1, 1.7), (2.0, 0.0, 3.0)),
    "stir": GridSpec(320, 320, 15, 0.9, 1.0, 4.0, 4.6, (-0.8, 0.9, -1.4), (0.0, 1.5, 3.5)),
}

#: Coarse grids for tests: same field of view, a few mm per pixel, 6 slices.
SMALL_GRIDS: dict[str, GridSpec] = {
    "t1": GridSpec(96, 110, 6, 2.9, 3.0, 4.0, 4.4, (0.0, 0.0, 0.0), (0.0, 0.0, 2.0)),
    "t2": GridSpec(90, 104, 6, 3.2, 3.1, 4.0, 4.4, (0.6, -1.1, 1.7), (2.0, 0.0, 3.0)),
    "stir": GridSpec(72, 84, 6, 4.0, 3.8, 4.0, 4.6, (-0.8, 0.9, -1.4), (0.0, 1.5, 3.5)),
}

#: Samples per voxel (i, j, k): in-plane x through-slice.
REALISTIC_SUPERSAMPLE = (1, 1, 5)
SMALL_SUPERSAMPLE = (2, 2, 3)


@dataclass(frozen=True)
class PhantomConfig:
    """Everything that shapes a phantom study, except the seed and the lesions.

    Parameters
    ----------
    anatomy : AnatomyConfig
        Levels and dimensions of the spine.
    grids : dict of str to GridSpec
        Acquisition grid of each contrast (``"t1"``, ``"t2"``, ``"stir"``).
    contrasts : dict of str to ContrastSpec
        Signal, noise, scaling and DICOM/BIDS metadata of each contrast.
    supersample : tuple of 3 ints
        Samples per voxel along i, j (in-plane) and k (through the slice thickness).
    truth_step_mm : float
        Lattice step (mm) of the per-endplate truth measurements.
    """

    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)
    grids: dict[str, GridSpec] = field(default_factory=lambda: dict(REALISTIC_GRIDS))
    contrasts: dict[str, ContrastSpec] = field(default_factory=lambda: dict(CONTRASTS))
    supersample: tuple[int, int, int] = REALISTIC_SUPERSAMPLE
    truth_step_mm: float = TRUTH_STEP_MM

    def __post_init__(self) -> None:
        for name in CONTRAST_NAMES:
            if name not in self.grids or name not in self.contrasts:
                raise ValueError(f"config needs a grid and a contrast spec for {name!r}")

    @classmethod
    def realistic(cls) -> PhantomConfig:
        """Clinical-like grids (about 400 x 400 x 16 per contrast)."""
        return cls()

    @classmethod
    def small(cls) -> PhantomConfig:
        """Coarse grids (about 100 x 100 x 6) that build in a fraction of a second."""
        return cls(grids=dict(SMALL_GRIDS), supersample=SMALL_SUPERSAMPLE)

    def with_grid(self, contrast: str, **changes: object) -> PhantomConfig:
        """A copy with some fields of one contrast's :class:`GridSpec` changed.

        >>> PhantomConfig.small().with_grid("t1", tilt_deg=(0, 0, 0)).grids["t1"].tilt_deg
        (0, 0, 0)
        """
        grids = dict(self.grids)
        grids[contrast] = replace(grids[contrast], **changes)
        return replace(self, grids=grids)
