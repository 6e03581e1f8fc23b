"""Each body carried out sideways to the dark line of its lateral wall, on a plain T2 alone.

Small synthetic bodies (1 mm voxels): marrow with its own texture, the lateral wall's
cortex a dark line, the edge between them blurred over the voxels inside the wall (where
the segment stopped), tissue beside the spine darker than the marrow beyond it.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.spine.autoseg.lateral_cortex import add_to_lateral_cortex
from bmetoolkit.spine.autoseg.params import AutosegParameters
from tests.helpers import record_calls, segment_small_phantom_without_t1

SPACING = np.ones(3)
SHAPE = (40, 30, 50)
BODY = (slice(8, 32), slice(5, 25))  # AP, SI
WALLS = (10, 39)  # the lateral cortex on each side (LR index)
SHORT = 3  # the segment stops this many voxels inside each wall


def _case(seed: int = 0, cortex: float = 40.0, tissue: float = 55.0) -> np.ndarray:
    """The T2: marrow inside the walls, the edge blurred over the voxels inside them."""
    rng = np.random.default_rng(seed)
    image = rng.normal(tissue, 3.0, SHAPE)
    ap, si = BODY
    n_ap, n_si = ap.stop - ap.start, si.stop - si.start
    image[ap, si, WALLS[0] + 1 : WALLS[1]] = rng.normal(100.0, 4.0, (n_ap, n_si, 28))
    for wall, inward in ((WALLS[0], 1), (WALLS[1], -1)):
        image[ap, si, wall] = rng.normal(cortex, 3.0, (n_ap, n_si))
        for k, level in enumerate((60.0, 75.0), start=1):  # blurred inside the wall
            image[ap, si, wall + inward * k] = rng.normal(level, 3.0, (n_ap, n_si))
    return image


def _segment() -> np.ndarray:
    bodies = np.zeros(SHAPE, np.int32)
    bodies[BODY[0], BODY[1], WALLS[0] + SHORT : WALLS[1] - SHORT + 1] = 1
    return bodies


def test_the_body_reaches_its_lateral_cortex_and_not_beyond() -> None:
    out, evidence = add_to_lateral_cortex(_segment(), _case(), SPACING)
    reached = np.flatnonzero((out == 1)[20, 15])
    assert reached.min() == WALLS[0] + 1 and reached.max() == WALLS[1] - 1
    assert not (out[:, :, [WALLS[0], WALLS[1]]] > 0).any()  # the cortex's own voxel stays out
    added = (out > 0) & (_segment() == 0)
    assert not added[:, : BODY[1].start].any() and not added[: BODY[0].start].any()
    assert evidence["voxels_added"] == int(added.sum())
    assert evidence["lines"] > 0.9 * 2 * 24 * 20  # nearly every line on both sides


def test_a_fall_to_a_darker_tissue_is_not_a_wall() -> None:
    """No valley: the tissue beside the body is as dark as a cortex would be."""
    image = _case(cortex=40.0, tissue=40.0)
    out, evidence = add_to_lateral_cortex(_segment(), image, SPACING)
    assert evidence["voxels_added"] < 0.02 * (_segment() > 0).sum()
    assert (out > 0).sum() - (_segment() > 0).sum() == evidence["voxels_added"]


def test_a_valley_on_a_few_lines_alone_adds_nothing() -> None:
    """Tissue darker than a cortex beside the body (no wall shows), with a dip on a 3 x 3
    patch of lines only: the tissue's own texture, not a surface."""
    image = _case(cortex=40.0, tissue=40.0)
    image[18:21, 12:15, WALLS[1] + 3] = 25.0
    image[18:21, 12:15, WALLS[1] + 5 :] = 45.0
    out, _ = add_to_lateral_cortex(_segment(), image, SPACING)
    assert not ((out > 0) & (_segment() == 0))[18:21, 12:15].any()


def test_a_bright_band_between_the_edge_and_the_valley_is_not_a_fall() -> None:
    """Beyond the edge the signal rises again (bright tissue, a vessel) before a dark
    line: that line is not the body's wall."""
    image = _case()
    image[BODY[0], BODY[1], WALLS[1] - 1] = 120.0
    out, _ = add_to_lateral_cortex(_segment(), image, SPACING)
    assert not ((out > 0) & (_segment() == 0))[:, :, 25:].any()
    assert ((out > 0) & (_segment() == 0))[:, :, :25].any()


def test_a_valley_beyond_the_reach_adds_nothing() -> None:
    image = _case()
    bodies = np.zeros(SHAPE, np.int32)  # the segment stops 9 mm inside each wall
    bodies[BODY[0], BODY[1], WALLS[0] + 9 : WALLS[1] - 8] = 1
    image[BODY[0], BODY[1], WALLS[0] + 3 : WALLS[1] - 2] = 100.0
    out, evidence = add_to_lateral_cortex(bodies, image, SPACING)
    assert evidence["voxels_added"] == 0
    assert np.array_equal(out, bodies)


def test_a_line_stops_at_another_body() -> None:
    bodies = _segment()
    bodies[BODY[0], BODY[1], WALLS[0] + 1] = 2  # another body's voxels inside the left wall
    out, _ = add_to_lateral_cortex(bodies, _case(), SPACING)
    assert (out[:, :, WALLS[0] + 1] == 2).sum() == (bodies == 2).sum()
    assert (out[BODY[0], BODY[1], WALLS[0] + 2] == 1).mean() > 0.9


def test_nothing_is_read_where_the_image_shows_nothing() -> None:
    """The tissue beyond the right wall is not imaged (no signal, as beyond a slab)."""
    image = _case()
    image[:, :, WALLS[1] :] = 0.0
    out, _ = add_to_lateral_cortex(_segment(), image, SPACING)
    assert not ((out > 0) & (_segment() == 0))[:, :, 25:].any()
    assert ((out > 0) & (_segment() == 0))[:, :, :25].any()


def test_on_thick_sections_the_reach_is_in_millimetres() -> None:
    """On 4 mm sections the valley is read within two sections of the edge."""
    image = np.full((20, 20, 12), 55.0)
    image[4:16, 4:16, 2:10] = 100.0
    image[4:16, 4:16, [2, 9]] = 40.0
    image[4:16, 4:16, [3, 8]] = 70.0
    bodies = np.zeros(image.shape, np.int32)
    bodies[4:16, 4:16, 4:8] = 1
    out, _ = add_to_lateral_cortex(bodies, image, np.array([1.0, 1.0, 4.0]))
    assert np.flatnonzero(out[10, 10]).tolist() == list(range(3, 9))


def test_the_parameter_is_on_and_documented() -> None:
    assert AutosegParameters().t2_lateral_cortex is True
    assert "t2_lateral_cortex" in (AutosegParameters.__doc__ or "")


@pytest.mark.parametrize("stir_alone", [True, False])
@pytest.mark.parametrize("on", [True, False])
def test_segment_bodies_reads_the_lateral_cortex_from_a_plain_t2_only(monkeypatch, stir_alone, on):
    """Wired into :func:`segment_bodies`: on the plain T2 path (a T2, no T1) when on; not
    from a STIR alone."""
    calls = record_calls(monkeypatch, autoseg, "add_to_lateral_cortex")
    segment_small_phantom_without_t1(stir_alone, AutosegParameters(t2_lateral_cortex=on))
    assert len(calls) == (1 if on and not stir_alone else 0)
