"""With a T1: the body's posterior face cut at a faint cortex beside the canal.

On the tuning phantoms a body whose thin posterior cortex shows only as a faint line on the
T1 ran through it into the epidural fat behind it (brighter than marrow on a T1) up to the
canal; the analysis then held the cortex (Modic III at both endplates of seed 6's T11) and
measured the basivertebral vein from the wrong wall. Small synthetic bodies (1 mm voxels,
canonical axes: anterior, superior, right) and the small phantom.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.spine.autoseg.frame import CanonicalFrame
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.spine.autoseg.wall_cortex import canal_sections, cut_beyond_wall_cortex
from bmetoolkit.study import Study
from tests.helpers import record_calls

SPACING = np.ones(3)
SHAPE = (60, 40, 30)
BODY_AP = (20, 45)  # the body's AP extent (posterior, anterior), a cortex on each
BODY_SI = slice(8, 32)
BODY_LR = slice(5, 25)


def _t1_case(seed: int = 0, taken: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A T1 (marrow 100, a faint cortex 0.8 of it, fat 130 behind and in front) and a
    segment holding ``taken`` voxels beyond both walls."""
    rng = np.random.default_rng(seed)
    image = rng.normal(130.0, 4.0, SHAPE)  # fat: brighter than marrow on a T1
    body = (slice(BODY_AP[0], BODY_AP[1] + 1), BODY_SI, BODY_LR)
    image[body] = rng.normal(100.0, 4.0, image[body].shape)
    for ap in BODY_AP:
        image[ap, BODY_SI, BODY_LR] = rng.normal(80.0, 3.0, (24, 20))
    bodies = np.zeros(SHAPE, np.int32)
    bodies[BODY_AP[0] - taken : BODY_AP[1] + taken + 1, BODY_SI, BODY_LR] = 1
    return image, bodies


def test_the_posterior_face_alone_is_cut_when_asked() -> None:
    image, bodies = _t1_case()
    out, evidence = cut_beyond_wall_cortex(bodies, image, SPACING, signs=(-1,))
    line = np.flatnonzero(out[:, 20, 15])
    assert line.min() == BODY_AP[0]  # cut to the posterior cortex
    assert line.max() == BODY_AP[1] + 4  # the anterior face is not read
    assert evidence["bodies_cut"] == 1
    both, _ = cut_beyond_wall_cortex(bodies, image, SPACING)
    assert np.flatnonzero(both[:, 20, 15]).max() == BODY_AP[1]


def test_only_the_sections_given_are_cut() -> None:
    image, bodies = _t1_case()
    sections = np.zeros(SHAPE[2], bool)
    sections[12:18] = True
    out, _ = cut_beyond_wall_cortex(bodies, image, SPACING, signs=(-1,), sections=sections)
    assert np.flatnonzero(out[:, 20, 15]).min() == BODY_AP[0]
    assert np.flatnonzero(out[:, 20, 8]).min() == BODY_AP[0] - 4  # outside: as it was
    assert np.array_equal(out[:, :, ~sections], bodies[:, :, ~sections])


def test_canal_sections_are_where_the_csf_column_is_at_least_half_as_wide() -> None:
    canal = np.zeros((10, 20, 9), bool)
    canal[2:8, :, 3:6] = True  # the column's core
    canal[2:4, :, 2] = True  # partial volume on the sections beside it
    canal[2:3, :, 6] = True
    assert canal_sections(canal).tolist() == [False] * 3 + [True] * 3 + [False] * 3
    assert not canal_sections(np.zeros((4, 4, 4), bool)).any()


def test_the_parameter_is_on_and_documented() -> None:
    assert AutosegParameters().t1_posterior_wall_cortex is True
    assert "t1_posterior_wall_cortex" in (AutosegParameters.__doc__ or "")


@pytest.mark.parametrize("on", [True, False])
def test_segment_bodies_cuts_the_posterior_wall_with_a_t1(monkeypatch, on: bool) -> None:
    """Wired into :func:`segment_bodies` on the T1 path: once, posterior face only, on the
    sections beside the canal; not when off."""
    calls = record_calls(monkeypatch, autoseg, "cut_beyond_wall_cortex")
    phantom = make_phantom(seed=3, config=PhantomConfig.small())
    study = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)
    frame = CanonicalFrame.of(study.grid)
    view = lambda volume: frame.view(np.asarray(volume.data, dtype=np.float32))  # noqa: E731
    found = autoseg.segment_bodies(
        view(study.t1),
        view(study.stir),
        frame.spacing,
        t2=view(study.t2),
        params=AutosegParameters(t1_posterior_wall_cortex=on),
        fat_suppressed=True,
    )
    assert len(calls) == (1 if on else 0)
    if on:
        _, kwargs = calls[0]
        assert kwargs["signs"] == (-1,)
        sections = kwargs["sections"]
        assert 0 < sections.sum() < sections.size
        assert "posterior_wall_cortex" in found.polarity_evidence
