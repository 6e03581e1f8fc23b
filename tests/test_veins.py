"""The basivertebral-vein rule (:mod:`bmetoolkit.veins`): recognised by place and shape in
its body, never an edema that fills more of the height, touches an endplate, lies off the
midline or away from the posterior wall."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.analysis import analyze_study
from bmetoolkit.data.phantom.randomize import draw_case, render_case
from bmetoolkit.data.phantom.texture import Texture, Vein
from bmetoolkit.params import Parameters
from bmetoolkit.spine.labels import VertebraLabels
from bmetoolkit.spine.vertebra import body_geometries
from bmetoolkit.study import Study
from bmetoolkit.veins import (
    VeinFrame,
    basivertebral_veins,
    body_frames,
    drop_basivertebral_veins,
)
from bmetoolkit.volume import Volume

#: The block body: x LR 5-44, y AP 5-34 (posterior wall at y = 5), z SI 5-30 (1 mm, RAS).
SHAPE = (50, 40, 36)


def _body(spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)):
    data = np.zeros(SHAPE, np.uint8)
    data[5:45, 5:35, 5:31] = 22
    affine = np.diag([*spacing, 1.0])
    labels = VertebraLabels(Volume(data, affine, kind="label"), {22: "L3"}, "verse")
    (body,) = body_geometries(labels, cortex_mm=1.0)
    return body, affine[:3, :3]


def _found(region: tuple[slice, slice, slice], **params) -> bool:
    body, axes = _body()
    bme = np.zeros(SHAPE, bool)
    bme[region] = True
    return bool(basivertebral_veins(bme, [body], axes, Parameters(**params))[region].all())


def test_a_thin_channel_from_the_posterior_wall_at_mid_height_is_a_vein():
    assert _found(np.s_[22:28, 7:18, 17:20])
    assert _found(np.s_[20:30, 7:22, 16:21])  # 5 mm tall, two thirds of the way forward


@pytest.mark.parametrize(
    "region, why",
    [
        (np.s_[22:28, 7:18, 11:25], "14 mm tall: central edema fills more of the height"),
        (np.s_[22:28, 7:18, 7:10], "against the inferior endplate"),
        (np.s_[22:28, 7:18, 26:29], "against the superior endplate"),
        (np.s_[22:28, 14:25, 17:20], "starts in the middle of the body, not at its wall"),
        (np.s_[36:42, 7:18, 17:20], "off the midline"),
        (np.s_[27:33, 7:18, 17:20], "5.5 mm off the midline, more than 15 % of the half-width"),
        (np.s_[22:28, 7:30, 17:20], "reaches the anterior third"),
        (np.s_[22:28, 7:10, 16:21], "a round spot, not a channel running forward"),
    ],
)
def test_what_is_not_vein_shaped_or_placed_stays_edema(region, why):
    assert not _found(region), why


def test_the_rule_is_off_at_zero_and_on_coarse_si_voxels():
    assert not _found(np.s_[22:28, 7:18, 17:20], vein_max_height_frac=0.0)
    body, axes = _body((1.0, 1.0, 3.0))  # 3 mm along SI: a vein's thickness is not seen
    bme = np.zeros(SHAPE, bool)
    bme[22:28, 7:18, 17:18] = True
    assert not basivertebral_veins(bme, [body], axes, Parameters()).any()


def _veins_of(bme: np.ndarray) -> np.ndarray:
    body, axes = _body()
    return basivertebral_veins(bme, [body], axes, Parameters())


def _ellipsoid(centre, semi):
    x, y, z = np.indices(SHAPE) + 0.5
    return ((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + (
        (z - centre[2]) / semi[2]
    ) ** 2 <= 1


@pytest.mark.parametrize(
    "edema, why",
    [
        (_ellipsoid((25, 14, 18), (6, 8, 6)), "round posterior-wall edema, 12 mm tall"),
        (_ellipsoid((25, 15, 18), (8, 10, 4.5)), "flat posterior-wall edema, 9 mm tall"),
        (_ellipsoid((25, 20, 18), (10, 12, 7)), "central edema at mid-height"),
    ],
)
def test_edema_at_mid_height_by_the_posterior_wall_keeps_its_rim(edema, why):
    assert not _veins_of(edema).any(), why


def test_a_thin_wing_of_an_edema_that_misses_the_wall_stays_edema():
    bme = np.zeros(SHAPE, bool)
    bme[17:33, 16:28, 11:25] = True  # an edema
    bme[22:28, 11:17, 17:20] = True  # a thin channel behind it, 6 mm short of the wall
    assert not _veins_of(bme).any()
    bme[22:28, 11:16, 17:20] = False
    bme[36:42, 7:17, 17:20] = True  # from the wall, off the midline, joined to the edema
    bme[33:42, 16:20, 17:20] = True
    assert not _veins_of(bme).any()


def test_an_outline_bulging_through_the_veins_foramen_keeps_its_vein():
    """An automatic outline ran through the vein's foramen into the epidural fat: 4 mm
    behind the wall over half the body's height around the vein (seed 35's L5 of the tuning
    phantoms). The wall is read on the body's other rows, so the vein is still one; a
    channel that starts 6 mm in front of the wall still is not."""
    data = np.zeros(SHAPE, np.uint8)
    data[5:45, 5:35, 5:31] = 22
    data[20:30, 1:5, 12:25] = 22  # the bulge behind the posterior wall (y = 5)
    labels = VertebraLabels(Volume(data, np.eye(4), kind="label"), {22: "L3"}, "verse")
    (body,) = body_geometries(labels, cortex_mm=1.0)
    bme = np.zeros(SHAPE, bool)
    bme[22:28, 7:18, 17:20] = True
    assert basivertebral_veins(bme, [body], np.eye(3), Parameters())[22:28, 7:18, 17:20].all()
    late = np.zeros(SHAPE, bool)
    late[22:28, 12:22, 17:20] = True
    assert not basivertebral_veins(late, [body], np.eye(3), Parameters()).any()


def test_a_vein_seen_on_another_scan_needs_only_its_shape_here():
    """Where another scan of the spine recognised the vein, a region over it is a vein when
    it is thin, at mid-height and no deeper than a vein, though this scan puts it off the
    midline or short of the wall; an edema over it (tall, or reaching the anterior third)
    is not."""
    body, axes = _body()
    seen = np.zeros(SHAPE, bool)
    seen[22:28, 7:18, 17:20] = True
    for region in (np.s_[27:33, 7:18, 17:20], np.s_[22:28, 14:25, 17:20]):  # off-centre; short
        bme = np.zeros(SHAPE, bool)
        bme[region] = True
        assert not basivertebral_veins(bme, [body], axes, Parameters()).any()
        assert basivertebral_veins(bme, [body], axes, Parameters(), seen)[region].all()
    for region in (np.s_[22:28, 7:18, 11:25], np.s_[22:28, 7:30, 17:20], np.s_[22:28, 7:18, 7:10]):
        bme = np.zeros(SHAPE, bool)
        bme[region] = True  # tall; into the anterior third; against the endplate
        assert not basivertebral_veins(bme, [body], axes, Parameters(), seen).any()
    bme = np.zeros(SHAPE, bool)
    bme[36:42, 7:18, 17:20] = True  # vein-shaped but away from what the other scan saw
    assert not basivertebral_veins(bme, [body], axes, Parameters(), seen).any()


def test_dropped_veins_are_summarised_with_a_note():
    body, axes = _body()
    bme = np.zeros(SHAPE, bool)
    bme[22:28, 7:18, 17:20] = True
    bme[10:20, 20:30, 8:22] = True  # an edema
    kept, summary, notes = drop_basivertebral_veins(bme, [body], axes, 1.0, Parameters())
    assert summary == {"count": 1, "volume_ml": 0.198}
    assert kept.sum() == 10 * 10 * 14
    assert len(notes) == 1 and "basivertebral vein" in notes[0]


# --- a body cut by the edge of the image --------------------------------------------------------


def _cut_spine(top: int) -> tuple[list, np.ndarray, tuple[int, int, int]]:
    """L3 as the block body (z 5-30) and L2 above it (z 39-64, 26 mm tall, mid-height at
    z = 52) cut by the top of the image at ``top`` (1 mm, RAS)."""
    shape = (50, 40, top)
    data = np.zeros(shape, np.uint8)
    data[5:45, 5:35, 5:31] = 22
    data[5:45, 5:35, 39:top] = 21
    labels = VertebraLabels(Volume(data, np.eye(4), kind="label"), {21: "L2", 22: "L3"}, "verse")
    return body_geometries(labels, cortex_mm=1.0), np.eye(3), shape


def test_a_vein_in_a_body_cut_by_the_image_is_judged_on_the_uncut_endplate():
    """L2 keeps 15 of its 26 mm in the image: its vein at its true mid-height lies by the cut,
    far from the centre of what is left; it is judged against L3's height from L2's inferior
    endplate. Edema against that endplate, or filling what is left, stays edema."""
    bodies, axes, shape = _cut_spine(54)
    frames = body_frames(bodies, shape)
    assert [frame.cut for frame in frames] == ["superior", None]
    assert frames[0].height_mm == pytest.approx(26.0)
    vein = np.s_[22:28, 7:18, 50:53]
    for region, is_vein in (
        (vein, True),
        (np.s_[22:28, 7:18, 40:43], False),  # against the inferior endplate
        (np.s_[22:28, 7:18, 42:52], False),  # 10 mm tall
    ):
        bme = np.zeros(shape, bool)
        bme[region] = True
        found = basivertebral_veins(bme, bodies, axes, Parameters())
        assert bool(found[region].all()) is is_vein, region
        assert bool(found.any()) is is_vein


def test_a_cut_body_with_no_whole_body_to_give_its_height_says_its_vein_is_not_known():
    bodies, axes, shape = _cut_spine(54)
    bme = np.zeros(shape, bool)
    bme[22:28, 7:18, 45:48] = True  # thin, at the centre of what is left: no guess
    kept, summary, notes = drop_basivertebral_veins(bme, bodies[:1], axes, 1.0, Parameters())
    assert summary["count"] == 0 and kept.sum() == bme.sum()
    assert len(notes) == 1 and "L2" in notes[0] and "cannot be told" in notes[0]


def test_a_body_reaching_the_image_at_its_side_keeps_its_own_height():
    data = np.zeros(SHAPE, np.uint8)
    data[0:45, 5:35, 5:31] = 22  # the block body, cut on its right by the image's left edge
    labels = VertebraLabels(Volume(data, np.eye(4), kind="label"), {22: "L3"}, "verse")
    (body,) = body_geometries(labels, cortex_mm=1.0)
    assert body.touches_border
    assert body_frames([body], SHAPE) == [VeinFrame(body.height_mm)]


# --- end to end, on a randomized phantom --------------------------------------------------------


@pytest.fixture(scope="module")
def veined_case():
    """A central-edema case (full size, STIR) with a bright vein in every body."""
    draws = replace(draw_case(19, kind="central_edema"), storage="uint16", fov="full")
    draws = replace(draws, fluid="stir")
    spine = render_case(replace(draws, texture=Texture())).spine
    veins = tuple(
        Vein(v.level, 0.0, 3.0, 6.0, 0.4, 1.0, 5.0, {"t1": 0.8, "t2": 2.2, "fluid": 2.5})
        for v in spine.vertebrae
    )
    return render_case(replace(draws, texture=Texture(veins=veins)))


def _bme_in_vein(phantom, params: Parameters):
    study = Study.from_images(phantom.t1, stir=phantom.stir)
    result = analyze_study(study, phantom.truth.vertebrae, params)
    found = np.asarray(result.bme_mask.data) > 0
    vein = np.asarray(phantom.truth.masks["vein"].data) > 0
    edema = np.asarray(phantom.truth.bme_mask.data) > 0
    kept = (found & edema).sum() / edema.sum()
    return (found & vein).sum() / vein.sum(), kept, result


def test_the_analysis_reports_veins_apart_and_keeps_the_central_edema(veined_case):
    counted, kept_before, _ = _bme_in_vein(veined_case, Parameters(vein_max_height_frac=0.0))
    left, kept_after, result = _bme_in_vein(veined_case, Parameters())
    assert counted > 0.3  # the vein is edema on the ratios alone
    assert left < 0.5 * counted
    assert result.checks["basivertebral_veins"]["count"] >= 1
    assert any("basivertebral vein" in note for note in result.notes)
    assert kept_after >= kept_before - 0.05  # the central edema stays
    assert result.parameters.vein_max_height_frac == Parameters().vein_max_height_frac
