"""Joint phantom pairs: a follow-up visit (or a rescan) of the same knee or sacroiliac joints.

Like the spine pairs (:mod:`bmetoolkit.data.phantom.followup`): two renders of one joint case
(same anatomy, marrow texture and contrast) that differ in

- **lesions** (follow-up pairs only): each edema or bone bruise may grow, shrink, resolve
  or stay (:data:`JOINT_FATES`); cysts and red-marrow islands stay as they are;
- **acquisition**: both series get a new offset, tilt and pixel size, and new noise;
- **position**: the whole follow-up is moved by a rigid ``motion`` in scanner space
  (``follow-up RAS = motion @ baseline RAS``): a knee lies a few degrees and up to
  :data:`MOTION_SHIFT_MM` apart.

A test-retest pair (``retest=True``) changes acquisition and position only.
:meth:`JointPair.change_table` gives the true edema volume of each bone at each visit.

Examples
--------
>>> pair = make_joint_pair(3, small=True, lesions=["edema"])
>>> [row["bone"] for row in pair.change_table()]
['femur', 'tibia', 'patella']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.grids import rotation
from bmetoolkit.data.phantom.joint.build import JointPhantom, render_joint_case
from bmetoolkit.data.phantom.joint.lesions import JointLesion
from bmetoolkit.data.phantom.joint.randomize import (
    Acquisition,
    JointDraws,
    LesionRequest,
    draw_joint_case,
)
from bmetoolkit.volume import Volume

__all__ = ["JOINT_FATES", "JointPair", "make_joint_pair"]

#: What happens to an edema or bone bruise between visits, with weights.
JOINT_FATES: dict[str, float] = {"grown": 0.3, "shrunk": 0.35, "resolved": 0.15, "unchanged": 0.2}
#: Radius factors of a grown and of a shrunk lesion.
GROW_FACTOR = (1.25, 1.5)
SHRINK_FACTOR = (0.5, 0.75)
#: Patient motion between visits: rotation (degrees) about x, y, z, and shift (mm).
MOTION_ROTATION_DEG = (5.0, 5.0, 5.0)
MOTION_SHIFT_MM = 12.0
#: New acquisition per series: offset (mm), tilt (degrees), relative pixel size change.
GRID_OFFSET_MM = 3.0
GRID_TILT_DEG = 3.0
PIXEL_CHANGE = 0.08
#: Key mixed into a pair's seed for its own random stream.
_PAIR_KEY = 15
#: Lesion kinds whose fate is drawn (the others are distractors and stay).
CHANGING_KINDS = ("edema", "bruise")


@dataclass
class JointPair:
    """Two visits of one phantom joint, with what changed between them.

    Attributes
    ----------
    baseline, followup : JointPhantom
        Each truth lies on its own analysis grid and in its own scanner space.
    motion : ndarray (4, 4)
        Baseline RAS -> follow-up RAS.
    fates : list of dict
        Per edema or bruise: ``bone``, ``kind``, ``fate``, ``radius_factor``.
    retest : bool
    """

    baseline: JointPhantom
    followup: JointPhantom
    motion: NDArray[np.float64]
    fates: list[dict[str, Any]]
    retest: bool

    def change_table(self) -> list[dict[str, Any]]:
        """True edema per bone at each visit: ``bone``, ``bme_ml_baseline``,
        ``bme_ml_followup``, ``bme_change_ml`` (counted on each visit's analysis grid)."""
        before = {row["bone"]: float(row["bme_ml"]) for row in self.baseline.truth.bones_table}
        after = {row["bone"]: float(row["bme_ml"]) for row in self.followup.truth.bones_table}
        return [
            {
                "bone": bone,
                "bme_ml_baseline": round(before.get(bone, 0.0), 4),
                "bme_ml_followup": round(after.get(bone, 0.0), 4),
                "bme_change_ml": round(after.get(bone, 0.0) - before.get(bone, 0.0), 4),
            }
            for bone in dict.fromkeys([*before, *after])
        ]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _PAIR_KEY]))


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _follow(
    rng: np.random.Generator, lesions: tuple[JointLesion, ...]
) -> tuple[list[JointLesion], list[dict[str, Any]]]:
    """The follow-up's lesions: each edema or bruise grown, shrunk, resolved or unchanged."""
    names, weights = list(JOINT_FATES), np.array(list(JOINT_FATES.values()))
    kept, fates = [], []
    for lesion in lesions:
        if lesion.kind not in CHANGING_KINDS:
            kept.append(lesion)
            continue
        fate = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        factor = {"grown": GROW_FACTOR, "shrunk": SHRINK_FACTOR}.get(fate)
        scale = _uniform(rng, factor) if factor else (0.0 if fate == "resolved" else 1.0)
        fates.append({"bone": lesion.bone_name, "kind": lesion.kind, "fate": fate,
                      "radius_factor": round(scale, 3)})  # fmt: skip
        if fate != "resolved":
            radii = tuple(r * scale for r in lesion.radii_mm)
            kept.append(replace(lesion, radii_mm=radii))  # type: ignore[arg-type]
    return kept, fates


def _new_acquisition(rng: np.random.Generator, acquisition: Acquisition) -> Acquisition:
    pixel = tuple(p * (1 + rng.uniform(-PIXEL_CHANGE, PIXEL_CHANGE)) for p in acquisition.pixel_mm)
    offset = tuple(o + rng.uniform(-GRID_OFFSET_MM, GRID_OFFSET_MM) for o in acquisition.offset_mm)
    tilt = tuple(t + rng.uniform(-GRID_TILT_DEG, GRID_TILT_DEG) for t in acquisition.tilt_deg)
    return replace(acquisition, pixel_mm=pixel, offset_mm=offset, tilt_deg=tilt)  # type: ignore[arg-type]


def _motion(rng: np.random.Generator) -> NDArray[np.float64]:
    angles = tuple(rng.uniform(-a, a) for a in MOTION_ROTATION_DEG)
    motion = np.eye(4)
    motion[:3, :3] = rotation(angles)
    direction = rng.standard_normal(3)
    motion[:3, 3] = direction / np.linalg.norm(direction) * rng.uniform(0, MOTION_SHIFT_MM)
    return motion


def _moved(volume: Volume | None, motion: NDArray[np.float64]) -> Volume | None:
    if volume is None:
        return None
    return Volume(volume.data, motion @ volume.affine, kind=volume.kind, source=volume.source,
                  meta=volume.meta)  # fmt: skip


def _move(phantom: JointPhantom, motion: NDArray[np.float64]) -> JointPhantom:
    """The same phantom with the patient moved by ``motion`` (every volume and centroid)."""
    truth = phantom.truth
    moved_truth = replace(
        truth,
        **{name: _moved(volume, motion) for name, volume in truth.masks.items()},
        lesions=[
            dict(row) | {"centroid_ras_mm": (motion[:3, :3] @ row["centroid_ras_mm"]
                                             + motion[:3, 3]).round(2).tolist()}
            if row.get("centroid_ras_mm") else dict(row)
            for row in truth.lesions
        ],
    )  # fmt: skip
    return replace(
        phantom, t1=_moved(phantom.t1, motion), fluid=_moved(phantom.fluid, motion),
        truth=moved_truth,
    )  # fmt: skip


def make_joint_pair(
    seed: int,
    *,
    retest: bool = False,
    joint: str = "knee",
    plane: str = "sagittal",
    fluid: str = "stir",
    lesions: str | list[LesionRequest] = "random",
    small: bool = False,
    followup_lesions: list[JointLesion] | None = None,
    move: bool = True,
) -> JointPair:
    """Two visits of one randomised joint phantom and their true change.

    Parameters
    ----------
    seed : int
        The baseline is ``make_joint_phantom(seed, ...)``; the follow-up's fates, grids,
        motion and noise come from a stream of the same seed.
    retest : bool
        The same lesions, a new acquisition and position.
    joint, plane, fluid, lesions, small
        As for :func:`~bmetoolkit.data.phantom.joint.make_joint_phantom`.
    followup_lesions : list of JointLesion, optional
        The follow-up's lesions, chosen instead of drawn.
    move : bool
        Move the patient between visits.

    Returns
    -------
    JointPair
    """
    draws: JointDraws = draw_joint_case(
        seed, joint=joint, plane=plane, fluid=fluid, lesions=lesions, small=small
    )
    rng = _rng(seed)
    if followup_lesions is not None:
        after, fates = list(followup_lesions), [{"fate": "chosen"}]
    elif retest:
        after, fates = list(draws.lesions), []
    else:
        after, fates = _follow(rng, draws.lesions)
    acquisitions = {role: _new_acquisition(rng, a) for role, a in draws.acquisitions.items()}
    motion = _motion(rng) if move else np.eye(4)
    noise_seed = int(rng.integers(2**31))
    baseline = render_joint_case(draws)
    second = replace(draws, seed=noise_seed, lesions=tuple(after), acquisitions=acquisitions)
    followup = _move(render_joint_case(second), motion)
    return JointPair(baseline, followup, motion, fates, retest)
