"""A synthetic sagittal lumbar spine phantom (T11-S1) with known ground truth.

T1, T2 and STIR series of the same spine, each on its own acquisition grid, with Modic
type I, II, III and mixed lesions at chosen endplates, edema away from the endplates and
distractors (a haemangioma: bright on T1 and T2, not edema). Truth: a BME mask, a Modic type
map and VerSe vertebral-body labels on the T1 grid, a per-endplate table (type, volume,
height and area grades, location) and a per-lesion table. Deterministic by seed.

Modules: :mod:`.anatomy` (spine geometry), :mod:`.lesions` (lesion specs, presets, random
sets), :mod:`.grids` (acquisition grids), :mod:`.scene` (tissues at sub-voxel samples),
:mod:`.render` (signal, partial volume, shading, noise, scaling), :mod:`.truth` (masks and
tables), :mod:`.config`, :mod:`.build` (:func:`make_phantom`), :mod:`.write` (NIfTI and
DICOM output), and :mod:`.randomize` (:func:`make_randomized_phantom`: every property drawn
per case from broad ranges, for validation; image-only texture, dark discs and bias in
:mod:`.texture`).

Examples
--------
>>> from bmetoolkit.data.phantom import Lesion, PhantomConfig, make_phantom
>>> study = make_phantom(seed=0, config=PhantomConfig.small(),
...                      lesions=[Lesion("L4", "modic1", endplate="inferior", height_frac=0.3)])
>>> rows = {(r["level"], r["endplate"]): r for r in study.truth.endplates}
>>> rows["L4", "inferior"]["modic_type"], rows["L4", "inferior"]["height_grade"]
('I', 'B')
>>> int(study.truth.bme_mask.data.max()), study.truth.vertebrae.data.dtype.name
(1, 'uint8')
"""

from bmetoolkit.data.phantom.anatomy import VERSE_IDS, AnatomyConfig, Spine, Tissue, build_spine
from bmetoolkit.data.phantom.build import PhantomStudy, make_phantom
from bmetoolkit.data.phantom.config import PhantomConfig
from bmetoolkit.data.phantom.grids import GridSpec, make_grid
from bmetoolkit.data.phantom.joint import make_joint_phantom
from bmetoolkit.data.phantom.lesions import LESION_KINDS, PRESETS, Lesion, random_lesions
from bmetoolkit.data.phantom.randomize import make_randomized_phantom
from bmetoolkit.data.phantom.render import CONTRASTS, SIGNALS, ContrastSpec
from bmetoolkit.data.phantom.truth import ENDPLATE_COLUMNS, PhantomTruth

__all__ = [
    "CONTRASTS",
    "ENDPLATE_COLUMNS",
    "LESION_KINDS",
    "PRESETS",
    "SIGNALS",
    "VERSE_IDS",
    "AnatomyConfig",
    "ContrastSpec",
    "GridSpec",
    "Lesion",
    "PhantomConfig",
    "PhantomStudy",
    "PhantomTruth",
    "Spine",
    "Tissue",
    "build_spine",
    "make_grid",
    "make_joint_phantom",
    "make_phantom",
    "make_randomized_phantom",
    "random_lesions",
]
