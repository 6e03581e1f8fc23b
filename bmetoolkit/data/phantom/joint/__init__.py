"""Synthetic joint MRI phantoms with known truth, for bone marrow edema in any bone.

:func:`make_joint_phantom` renders a knee (distal femur, proximal tibia, patella with cortex,
fatty marrow and cartilage; joint fluid, menisci, fat pads, tendons, muscle, fat) as a T1
and a fluid-sensitive series (STIR, fat-suppressed T2 or fat-suppressed PD), each on its own
sagittal, coronal, axial or oblique grid. Lesions: subchondral edema touching the articular
surface (ill-defined, geographic), bone bruises (reticular), and distractors that are not
edema: red-marrow islands and subchondral cysts (fluid signal, well defined). Truth on the
analysis grid (whole-bone labels, marrow, edema, cyst and island masks), a lesion table and a
per-bone table. ``joint="sij"`` renders the sacroiliac joints instead (sacrum and both ilia,
coronal-oblique along the sacrum). Every property is drawn per case from broad ranges
(:mod:`.randomize`).

Seeds: tune on ``TUNING_SEEDS`` (0-999) and benchmark on ``HELD_OUT_SEEDS`` (5000-5999),
never the other way round; :func:`case_options` gives each seed its plane, fluid sequence,
healthy or not, with or without T1, so a benchmark covers every combination.

Modules: :mod:`.shapes` (signed distances), :mod:`.anatomy` (what a joint provides),
:mod:`.knee` and :mod:`.sij` (anatomies), :mod:`.lesions`,
:mod:`.fields` (random fields, shading), :mod:`.acquisition` (grids), :mod:`.signals`
(tissue tables, headers), :mod:`.randomize` (draws), :mod:`.scan` (sampling), :mod:`.truth`,
:mod:`.build` (:func:`make_joint_phantom`) and :mod:`.write` (:func:`write_joint_phantom`).

Examples
--------
>>> from bmetoolkit.data.phantom.joint import make_joint_phantom
>>> ph = make_joint_phantom(0, lesions="none", small=True)
>>> ph.t1.grid.axcodes, int(ph.truth.bme_mask.data.sum())
(('P', 'I', 'R'), 0)
"""

from bmetoolkit.data.phantom.joint.acquisition import PLANES, Acquisition
from bmetoolkit.data.phantom.joint.anatomy import JointTissue
from bmetoolkit.data.phantom.joint.build import JointPhantom, make_joint_phantom, render_joint_case
from bmetoolkit.data.phantom.joint.knee import KNEE_BONES, KneeAnatomy
from bmetoolkit.data.phantom.joint.lesions import LESION_KINDS, JointLesion
from bmetoolkit.data.phantom.joint.randomize import (
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    JointDraws,
    case_options,
    draw_joint_case,
)
from bmetoolkit.data.phantom.joint.signals import FLUID_KINDS
from bmetoolkit.data.phantom.joint.sij import SIJ_BONES, SacroiliacAnatomy
from bmetoolkit.data.phantom.joint.truth import JointTruth
from bmetoolkit.data.phantom.joint.write import write_joint_phantom

__all__ = [
    "FLUID_KINDS",
    "HELD_OUT_SEEDS",
    "KNEE_BONES",
    "LESION_KINDS",
    "PLANES",
    "SIJ_BONES",
    "TUNING_SEEDS",
    "Acquisition",
    "JointDraws",
    "JointLesion",
    "JointPhantom",
    "JointTissue",
    "JointTruth",
    "KneeAnatomy",
    "SacroiliacAnatomy",
    "case_options",
    "draw_joint_case",
    "make_joint_phantom",
    "render_joint_case",
    "write_joint_phantom",
]
