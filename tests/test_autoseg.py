"""Automatic vertebral bodies and levels (bmetoolkit.spine.autoseg) against phantom truth.

Every figure is compared with the phantom's VerSe body labels on the T1 grid; the realistic
phantoms (clinical-like ~400x400x16 grids) are marked slow.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.data.phantom import Lesion, PhantomConfig, Tissue, make_phantom
from bmetoolkit.data.phantom.anatomy import AnatomyConfig
from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies, segment_bodies
from bmetoolkit.spine.autoseg.frame import CanonicalFrame
from bmetoolkit.spine.autoseg.levels import (
    BodyShape,
    assign_levels,
    disc_height,
    given_back_below_sacrum,
    withheld,
)
from bmetoolkit.spine.labels import VertebraLabels, level_name, verse_id
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume
from tests.helpers import DARK_MARROW_T1

#: Every lesion kind that changes the marrow's T1 signal, one per level (Modic I/III are dark
#: on T1 and must be filled in; Modic II and haemangioma are bright).
LESION_MIX = [
    Lesion("T12", "modic3", endplate="inferior", height_frac=0.25),
    Lesion("L2", "haemangioma"),
    Lesion("L3", "modic2", endplate="inferior", height_frac=0.35, ap_center=0.5),
    Lesion("L4", "modic1", endplate="inferior", height_frac=0.3, ap_center=0.3),
    Lesion("L5", "modic1", endplate="superior", height_frac=0.2, ap_center=0.3),
]


def study_of(phantom) -> Study:
    """The phantom's T1, T2 and STIR on the T1 grid."""
    return Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)


def body_dice(result: VertebraLabels, truth: np.ndarray) -> dict[int, float]:
    """Dice of each true body (VerSe id) with the automatic body overlapping it most."""
    return label_dice(np.asarray(result.bodies.data), truth)


def label_dice(found: np.ndarray, truth: np.ndarray) -> dict[int, float]:
    """Dice of each true label with the found label overlapping it most (0 when none)."""
    dice = {}
    for verse in np.unique(truth[truth > 0]):
        true = truth == verse
        ids, counts = np.unique(found[true], return_counts=True)
        counts, ids = counts[ids > 0], ids[ids > 0]
        if ids.size == 0:
            dice[int(verse)] = 0.0
            continue
        best = found == ids[np.argmax(counts)]
        dice[int(verse)] = 2 * float((best & true).sum()) / float(best.sum() + true.sum())
    return dice


def levels_right(result: VertebraLabels, truth: np.ndarray) -> bool:
    """Every true body carries its own VerSe id and level name."""
    found = result.bodies.data
    for verse in np.unique(truth[truth > 0]):
        ids, counts = np.unique(found[truth == verse], return_counts=True)
        counts, ids = counts[ids > 0], ids[ids > 0]
        if ids.size == 0:
            return False
        best = int(ids[np.argmax(counts)])
        if best != verse or result.levels.get(best) != level_name(int(verse)):
            return False
    return True


def crop_si(volume: Volume, keep_superior_mm: float) -> Volume:
    """Keep the cranial ``keep_superior_mm`` of a volume (along the voxel axis closest to SI)."""
    grid = volume.grid
    axis = int(np.argmax(np.abs(grid.direction[2])))
    superior_first = grid.direction[2, axis] < 0
    n = round(keep_superior_mm / grid.spacing[axis])
    index = [slice(None)] * 3
    index[axis] = slice(0, n) if superior_first else slice(volume.shape[axis] - n, None)
    affine = grid.affine.copy()
    start = np.zeros(3)
    start[axis] = index[axis].start or 0
    affine[:3, 3] += affine[:3, :3] @ start
    return Volume(volume.data[tuple(index)], affine, kind=volume.kind, source=volume.source)


# --- small phantoms: fast checks of the segmentation on coarse (3 mm) grids -----------------


@pytest.fixture(scope="module")
def small_results():
    config = PhantomConfig.small()
    out = {}
    for name, lesions in [("healthy", None), ("mix", LESION_MIX), ("random", "random")]:
        phantom = make_phantom(seed=21, lesions=lesions, config=config)
        out[name] = (phantom, find_vertebral_bodies(study_of(phantom)))
    return out


@pytest.mark.parametrize("name", ["healthy", "mix", "random"])
def test_small_phantom_finds_every_body(small_results, name):
    phantom, result = small_results[name]
    dice = body_dice(result, phantom.truth.vertebrae.data)
    assert len(result.levels) == len(phantom.spine.vertebrae)
    # 3 mm pixels: a body is ~10 pixels across, so the partial-volume rim weighs a lot.
    assert min(dice.values()) > 0.6, dice
    assert np.median(list(dice.values())) > 0.8, dice


def test_small_phantom_levels_are_right_or_unknown(small_results):
    for phantom, result in small_results.values():
        truth = phantom.truth.vertebrae.data
        if result.levels_known:
            assert levels_right(result, truth)
        else:
            assert all(level is None for level in result.levels.values())
            assert sorted(result.levels) == list(range(1, len(result.levels) + 1))


def test_result_is_a_label_volume_on_the_t1_grid(small_results):
    phantom, result = small_results["healthy"]
    assert result.convention == "automatic"
    assert result.bodies.is_label and result.bodies.data.dtype == np.uint8
    assert result.bodies.grid.same_as(phantom.t1.grid)
    assert set(np.unique(result.bodies.data)) - {0} == set(result.levels)
    provenance = result.provenance
    assert provenance["parameters"] == AutosegParameters().to_dict()
    assert {"method", "anchor", "level_confidence", "level_evidence"} <= set(provenance)


def test_same_input_same_output():
    phantom = make_phantom(seed=5, lesions="random", config=PhantomConfig.small())
    first = find_vertebral_bodies(study_of(phantom))
    second = find_vertebral_bodies(study_of(phantom))
    assert np.array_equal(first.bodies.data, second.bodies.data)
    assert first.levels == second.levels


def test_no_canal_raises_a_typed_error():
    grid = Grid((40, 50, 6), np.diag([1.0, 1.0, 4.0, 1.0]))
    rng = np.random.default_rng(0)
    noise = Volume(rng.uniform(100, 200, grid.shape).astype(np.float32), grid.affine)
    with pytest.raises(BmetoolkitError, match="no spinal canal"):
        find_vertebral_bodies(Study(t1=noise, t2=noise.with_data(noise.data[::-1].copy())))


def test_canonical_frame_round_trip(oblique_t1_grid):
    frame = CanonicalFrame.of(oblique_t1_grid)
    data = np.arange(np.prod(oblique_t1_grid.shape)).reshape(oblique_t1_grid.shape)
    assert np.array_equal(frame.to_grid(frame.view(data)), data)
    # Canonical axis 1 runs superior: its world z grows along it.
    ijk = np.zeros((2, 3))
    ijk[1, frame.order[1]] = -1 if frame.flip[1] else 1
    z = oblique_t1_grid.voxel_to_world(ijk)[:, 2]
    assert z[1] > z[0]


# --- level naming on synthetic body lists ----------------------------------------------------


def _shapes(
    angles: list[float],
    *,
    spacing_mm: float = 35.0,
    bottom_row: int = 60,
    discs_mm: list[float] | None = None,
):
    """Bodies cranial to caudal with the given endplate angles, 35 mm apart.

    ``discs_mm`` are the central heights of the discs below every body but the last
    (10 mm each when omitted).
    """
    n = len(angles)
    discs = [10.0] * (n - 1) if discs_mm is None else discs_mm
    return [
        BodyShape(
            label=i + 1,
            centroid_mm=np.array([50.0, (n - i) * spacing_mm, 30.0]),
            angle_deg=angle,
            touches_bottom=False,
            inferior_row=bottom_row + (n - 1 - i) * 40,
            ap_range=(20, 60),
            disc_below_mm=discs[i] if i < n - 1 else float("nan"),
        )
        for i, angle in enumerate(angles)
    ]


LORDOSIS = [-8.0, -6.0, -4.0, -1.0, 3.0, 8.0, 15.0, 27.0]
SPACING = np.array([0.7, 0.8, 4.4])


def test_sacrum_anchor_names_levels_upwards():
    empty = np.zeros((80, 400, 10), bool)
    result = assign_levels(_shapes(LORDOSIS), empty, SPACING, AutosegParameters())
    assert result.anchor == "sacrum (S1)"
    assert list(result.levels.values()) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert result.confidence > 0.6
    assert any("five lumbar" in note for note in result.notes)


def test_a_small_caudal_angle_gives_no_anchor():
    empty = np.zeros((80, 400, 10), bool)
    result = assign_levels(_shapes(LORDOSIS[:-1]), empty, SPACING, AutosegParameters())
    assert result.anchor is None and set(result.levels.values()) == {None}


def test_sacral_segments_right_below_the_caudal_body_support_the_sacrum():
    empty = np.zeros((80, 400, 10), bool)
    below = np.zeros((80, 400, 10), bool)
    below[:, 45:58] = True  # marrow 2-10 mm below the caudal body (rows 60 and up): S2
    params = AutosegParameters()
    fused = assign_levels(_shapes(LORDOSIS), below, SPACING, params)
    alone = assign_levels(_shapes(LORDOSIS), empty, SPACING, params)
    assert fused.anchor == "sacrum (S1)" and fused.levels == alone.levels
    assert fused.evidence["bone_below"] is True
    assert fused.evidence["support"] == "sacral segments right below"
    assert fused.confidence < alone.confidence


def test_field_of_view_ending_below_the_caudal_body_gives_no_anchor():
    empty = np.zeros((80, 400, 10), bool)
    result = assign_levels(_shapes(LORDOSIS, bottom_row=3), empty, SPACING, AutosegParameters())
    assert result.evidence["bone_below"] is None and result.anchor is None


def test_a_thecal_sac_ending_at_the_caudal_body_anchors_when_the_image_ends():
    """The image ends right below the caudal body: the CSF column decides."""
    empty = np.zeros((80, 400, 10), bool)
    shapes = _shapes(LORDOSIS, bottom_row=6)  # 4.8 mm of image below it
    params = AutosegParameters()
    sac_ends = assign_levels(shapes, empty, SPACING, params, canal_end_row=10)
    runs_on = assign_levels(shapes, empty, SPACING, params, canal_end_row=0)
    too_high = assign_levels(shapes, empty, SPACING, params, canal_end_row=120)
    assert sac_ends.anchor == "sacrum (S1)"
    assert sac_ends.evidence["support"] == "thecal sac ends at it"
    assert runs_on.anchor is None and too_high.anchor is None


def test_a_segment_cut_by_the_lower_edge_below_the_sacrum_is_left_out():
    empty = np.zeros((80, 400, 10), bool)
    shapes = _shapes([*LORDOSIS, -10.0])
    shapes[-1] = replace(shapes[-1], touches_bottom=True, inferior_row=0)
    result = assign_levels(shapes, empty, SPACING, AutosegParameters())
    assert result.anchor == "sacrum (S1)"
    assert result.evidence["left_out_below_sacrum"] == [shapes[-1].label]
    assert shapes[-1].label not in result.levels
    assert list(result.levels.values())[-1] == "S1"


def test_segments_left_out_below_the_sacrum_are_bodies_again_when_the_levels_are_withheld():
    """From a STIR alone the sacrum is too weak to name levels on, and so to leave out a
    segment below it (tuning seed 171, cut above the sacrum: its L5 was left out as S2)."""
    empty = np.zeros((80, 400, 10), bool)
    shapes = _shapes([*LORDOSIS, -10.0])
    shapes[-1] = replace(shapes[-1], touches_bottom=True, inferior_row=0)
    named = assign_levels(shapes, empty, SPACING, AutosegParameters())
    volumes = np.repeat(np.arange(len(shapes) + 1), [0, *[100] * len(shapes)])
    back = given_back_below_sacrum(named, shapes, volumes)
    out = withheld(named, "a STIR alone", "not named", given_back=back)
    assert back == [shapes[-1].label]
    assert list(out.levels) == [s.label for s in shapes] and out.anchor is None
    assert not any("below the sacrum" in note for note in out.notes)
    # One at the lower edge with a third more voxels than the body above holds more.
    larger = np.repeat(np.arange(len(shapes) + 1), [0, *[100] * (len(shapes) - 1), 140])
    assert given_back_below_sacrum(named, shapes, larger) == []


def test_segments_joined_below_the_sacrum_are_left_out():
    """S2 and below segmented on their own under S1 (no disc between): S1 is found above
    them; with a well-formed disc under the tilted body nothing is left out."""
    params = AutosegParameters()
    shapes = _shapes([*LORDOSIS, 28.0, 29.0], bottom_row=10)  # S1's lowest row: 90
    joined = np.zeros((80, 400, 10), bool)
    joined[:, 70:88] = True  # marrow right below S1
    after_disc = np.zeros((80, 400, 10), bool)
    after_disc[:, 60:78] = True  # bone from 10 mm below S1: a disc between
    result = assign_levels(shapes, joined, SPACING, params)
    assert result.anchor == "sacrum (S1)"
    assert result.evidence["left_out_below_sacrum"] == [9, 10]
    assert list(result.levels.values())[-1] == "S1" and result.levels[8] == "S1"
    assert any("joined to the sacrum" in note for note in result.notes)
    kept = assign_levels(shapes, after_disc, SPACING, params)
    assert kept.anchor is None and kept.evidence["left_out_below_sacrum"] == []
    assert len(kept.levels) == 10


def test_a_gap_between_bodies_is_flagged_and_withholds_the_levels():
    """Counting up from the sacrum across a missing body would name every level above it
    wrongly: the levels stay unknown, with the reason."""
    empty = np.zeros((80, 400, 10), bool)
    shapes = _shapes(LORDOSIS)
    regular = assign_levels(shapes, empty, SPACING, AutosegParameters())
    for shape in shapes[:3]:  # a missing body between L1 and L2
        shape.centroid_mm[1] += 35.0
    gapped = assign_levels(shapes, empty, SPACING, AutosegParameters())
    assert regular.anchor == "sacrum (S1)"
    assert any("a body may be missing" in note for note in gapped.notes)
    assert gapped.anchor is None and set(gapped.levels.values()) == {None}
    assert gapped.evidence["is_sacrum"] and gapped.evidence["levels_withheld"]


def test_a_rudimentary_disc_above_the_sacrum_flags_a_transitional_vertebra():
    empty = np.zeros((80, 400, 10), bool)
    regular = assign_levels(_shapes(LORDOSIS), empty, SPACING, AutosegParameters())
    discs = [9.0, 10.0, 11.0, 12.0, 12.0, 12.0, 4.0]  # L5-S1 a third of the discs above
    narrow = assign_levels(_shapes(LORDOSIS, discs_mm=discs), empty, SPACING, AutosegParameters())
    assert regular.evidence["lumbosacral_disc_ratio"] == 1.0
    assert not any("rudimentary" in note for note in regular.notes)
    assert narrow.evidence["lumbosacral_disc_ratio"] == pytest.approx(4.0 / 12.0, abs=0.01)
    assert narrow.evidence["disc_heights_mm"] == discs
    assert any("rudimentary disc" in note for note in narrow.notes)
    assert narrow.confidence == pytest.approx(regular.confidence * 0.5, abs=0.01)
    assert narrow.levels == regular.levels  # flagged, still named under the usual count


def test_a_disc_and_bone_below_a_sacrum_tilted_body_suggest_lumbarisation():
    params = AutosegParameters()
    after_disc = np.zeros((80, 400, 10), bool)
    after_disc[:, 40:50] = True  # bone from 8.4 mm below the caudal body (row 60) down
    fused = np.zeros((80, 400, 10), bool)
    fused[:, 45:58] = True  # bone right below it, as S2 under the usual S1
    tilted = assign_levels(_shapes(LORDOSIS), after_disc, SPACING, params)
    level = assign_levels(_shapes([*LORDOSIS[:-1], 16.0]), after_disc, SPACING, params)
    no_disc = assign_levels(_shapes(LORDOSIS), fused, SPACING, params)
    assert tilted.anchor is None and level.anchor is None
    assert no_disc.anchor == "sacrum (S1)"  # S2 right below S1: the usual sacrum
    assert tilted.evidence["gap_to_bone_below_mm"] == pytest.approx(8.4, abs=0.1)
    assert any("lumbarised S1" in note for note in tilted.notes)
    assert not any("lumbarised S1" in note for note in level.notes)
    assert no_disc.evidence["gap_to_bone_below_mm"] == pytest.approx(2.0, abs=0.1)
    assert not any("lumbarised S1" in note for note in no_disc.notes)


def test_an_unmeasurable_caudal_angle_with_bone_below_gives_unknown_levels():
    below = np.zeros((80, 400, 10), bool)
    below[:, 40:50] = True
    result = assign_levels(
        _shapes([*LORDOSIS[:-1], float("nan")]), below, SPACING, AutosegParameters()
    )
    assert result.anchor is None
    assert result.evidence["lumbosacral_angle_deg"] is None


def test_disc_height_is_measured_along_the_spine_axis():
    spacing = np.array([0.5, 0.5])
    upper = np.zeros((120, 160), bool)
    lower = np.zeros((120, 160), bool)
    ap, si = np.meshgrid(np.arange(120) * 0.5, np.arange(160) * 0.5, indexing="ij")
    # two 20 mm slabs tilted 30 deg, 6 mm apart along their common axis
    axis_coord = (si - 40) * np.cos(np.radians(30)) + (ap - 30) * np.sin(np.radians(30))
    across = (ap - 30) * np.cos(np.radians(30)) - (si - 40) * np.sin(np.radians(30))
    upper[(axis_coord > 3) & (axis_coord <= 23) & (np.abs(across) < 12)] = True
    lower[(axis_coord < -3) & (axis_coord >= -23) & (np.abs(across) < 12)] = True
    assert disc_height(upper, lower, spacing) == pytest.approx(6.0, abs=0.3)
    assert disc_height(upper, upper, spacing) != disc_height(upper, upper, spacing)  # NaN


# --- realistic phantoms ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthy():
    phantom = make_phantom(seed=101, lesions=None)
    return phantom, find_vertebral_bodies(study_of(phantom))


@pytest.fixture(scope="module")
def lesions():
    phantom = make_phantom(seed=102, lesions=LESION_MIX)
    return phantom, find_vertebral_bodies(study_of(phantom))


@pytest.mark.slow
def test_healthy_bodies_and_levels(healthy):
    phantom, result = healthy
    dice = body_dice(result, phantom.truth.vertebrae.data)
    assert min(dice.values()) > 0.88, dice
    assert np.median(list(dice.values())) > 0.92, dice
    assert levels_right(result, phantom.truth.vertebrae.data)
    assert result.provenance["anchor"] == "sacrum (S1)"
    assert result.provenance["level_confidence"] >= 0.75
    assert "seconds" in result.provenance  # timed by benchmarks/bench_autoseg.py, not here


@pytest.mark.slow
def test_usual_lumbosacral_disc_is_not_flagged(healthy):
    _, result = healthy
    assert result.provenance["level_evidence"]["lumbosacral_disc_ratio"] > 0.6
    assert not any("rudimentary" in note for note in result.notes)


@pytest.mark.slow
def test_six_lumbar_bodies_with_a_rudimentary_disc_are_flagged():
    """L6 over a rudimentary L6-S1 disc: the usual count names it L5, and says it may be off."""
    anatomy = AnatomyConfig()
    six_lumbar = replace(
        anatomy,
        levels=("T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1"),
        disc_height_mm=(*anatomy.disc_height_mm[:-1], 4.0),
    )
    phantom = make_phantom(
        seed=105, lesions=None, config=replace(PhantomConfig(), anatomy=six_lumbar)
    )
    result = find_vertebral_bodies(study_of(phantom))
    dice = body_dice(result, phantom.truth.vertebrae.data)
    assert np.median(list(dice.values())) > 0.9, dice
    assert result.provenance["anchor"] == "sacrum (S1)"
    assert result.provenance["level_evidence"]["lumbosacral_disc_ratio"] < 0.5
    assert any("rudimentary disc" in note for note in result.notes)
    assert result.provenance["level_confidence"] <= 0.5
    truth = phantom.truth.vertebrae.data
    on_l6 = np.bincount(result.bodies.data[truth == verse_id("L6")])[1:].argmax() + 1
    assert result.levels[int(on_l6)] == "L5"  # named by the usual count: the flag matters


@pytest.mark.slow
def test_posterior_elements_are_not_bodies(healthy):
    phantom, result = healthy
    tissue = phantom.truth.masks["tissue"].data
    posterior = tissue == Tissue.POSTERIOR_BONE
    inside = (result.bodies.data > 0) & posterior
    assert inside.sum() <= 0.01 * posterior.sum()


@pytest.mark.slow
def test_lesion_bodies_are_segmented_whole(lesions):
    phantom, result = lesions
    dice = body_dice(result, phantom.truth.vertebrae.data)
    for lesion in LESION_MIX:
        assert dice[int(phantom.spine.vertebra(lesion.level).verse_id)] > 0.85, (lesion, dice)
    assert levels_right(result, phantom.truth.vertebrae.data)


@pytest.mark.slow
def test_lesions_lie_inside_the_bodies(lesions):
    """The BME/Modic analysis looks inside the bodies: the lesions must be there."""
    phantom, result = lesions
    inside = result.bodies.data > 0
    modic = phantom.truth.masks["modic_map"].data
    for modic_type in (1, 2, 3):
        assert inside[modic == modic_type].mean() > 0.8, modic_type
    assert inside[phantom.truth.masks["bme_mask"].data > 0].mean() > 0.8


@pytest.mark.slow
def test_random_lesions_levels_right():
    phantom = make_phantom(seed=103, lesions="random")
    result = find_vertebral_bodies(study_of(phantom))
    dice = body_dice(result, phantom.truth.vertebrae.data)
    assert np.median(list(dice.values())) > 0.9, dice
    assert levels_right(result, phantom.truth.vertebrae.data)


@pytest.mark.slow
@pytest.mark.parametrize("keep_mm", [150.0, 220.0])
def test_without_the_sacrum_levels_are_unknown(healthy, keep_mm):
    phantom, _ = healthy
    study = study_of(phantom)
    cropped = Study(
        t1=crop_si(study.t1, keep_mm),
        t2=crop_si(study.t2, keep_mm),
        stir=crop_si(study.stir, keep_mm),
    )
    result = find_vertebral_bodies(cropped)
    truth = crop_si(phantom.truth.vertebrae, keep_mm).data
    assert verse_absent(truth, "S1")
    assert not result.levels_known
    assert all(level is None for level in result.levels.values())
    assert result.provenance["anchor"] is None
    assert any("no level anchor" in note for note in result.notes)
    whole = [v for v in np.unique(truth[truth > 0]) if _complete(truth, v, phantom)]
    dice = body_dice(result, truth)
    assert all(dice[v] > 0.85 for v in whole), dice


def verse_absent(truth: np.ndarray, level: str) -> bool:
    return not (truth == verse_id(level)).any()


def _complete(truth: np.ndarray, verse: int, phantom) -> bool:
    """A body not cut by the crop: as many voxels as in the uncropped truth."""
    return (truth == verse).sum() == (phantom.truth.vertebrae.data == verse).sum()


@pytest.mark.slow
def test_shading_and_noise_do_not_change_the_result(healthy):
    phantom, _ = healthy
    study = study_of(phantom)
    rng = np.random.default_rng(7)
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, n) for n in study.grid.shape), indexing="ij")
    shading = (1 + 0.3 * j) * (1 + 0.2 * i) * (1 + 0.1 * k)  # +-30 % along SI, +-20 % AP

    def degrade(volume: Volume) -> Volume:
        data = volume.data.astype(np.float32) * shading.astype(np.float32)
        data += rng.normal(0, 0.04 * float(np.median(data)), data.shape).astype(np.float32)
        return volume.with_data(np.clip(data, 0, None))

    degraded = Study(t1=degrade(study.t1), t2=degrade(study.t2), stir=degrade(study.stir))
    result = find_vertebral_bodies(degraded)
    dice = body_dice(result, phantom.truth.vertebrae.data)
    assert np.median(list(dice.values())) > 0.9, dice
    assert levels_right(result, phantom.truth.vertebrae.data)


@pytest.mark.slow
def test_oblique_t1_grid():
    """T1 slices tilted 10, 3 and 5 degrees about x, y, z: handled without resampling."""
    config = PhantomConfig().with_grid("t1", tilt_deg=(-10.0, 3.0, 5.0))
    phantom = make_phantom(seed=104, lesions="random", config=config)
    result = find_vertebral_bodies(study_of(phantom))
    dice = body_dice(result, phantom.truth.vertebrae.data)
    assert result.provenance["grid_obliquity_deg"] > 10
    assert np.median(list(dice.values())) > 0.9, dice
    assert levels_right(result, phantom.truth.vertebrae.data)


@pytest.mark.slow
def test_t2_only_without_stir_still_works(healthy):
    phantom, _ = healthy
    result = find_vertebral_bodies(Study.from_images(phantom.t1, t2=phantom.t2))
    dice = body_dice(result, phantom.truth.vertebrae.data)
    assert np.median(list(dice.values())) > 0.9, dice
    assert levels_right(result, phantom.truth.vertebrae.data)


def test_segment_bodies_on_arrays_returns_labels():
    phantom = make_phantom(seed=8, config=PhantomConfig.small())
    study = study_of(phantom)
    frame = CanonicalFrame.of(study.grid)
    bodies, marrow, midline, *_ = segment_bodies(
        frame.view(study.t1.data), frame.view(study.stir.data), frame.spacing
    )
    assert bodies.dtype == np.int32 and bodies.max() == len(phantom.spine.vertebrae)
    assert marrow.dtype == bool
    assert 0 <= midline < study.grid.shape[frame.order[2]]


# --- dark marrow, canal wall, partial coverage ------------------------------------------


@pytest.fixture(scope="module")
def dark_marrow_phantom():
    from bmetoolkit.data.phantom import render

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(render.SIGNALS, "t1", {**render.SIGNALS["t1"], **DARK_MARROW_T1})
        return make_phantom(seed=21, config=PhantomConfig.small())


def test_dark_marrow_t1_is_recognised_and_bodies_found(dark_marrow_phantom):
    """Bodies darker than the discs on T1: found on the inverted T1, and the report says so."""
    p = dark_marrow_phantom  # its T1 fails the role check (discs brighter than fat): skipped
    study = Study.from_images(p.t1, t2=p.t2, stir=p.stir, verify_roles=False)
    result = find_vertebral_bodies(study)
    truth = dark_marrow_phantom.truth.vertebrae.data
    dice = body_dice(result, truth)
    assert result.provenance["t1_marrow"] == "dark"
    assert min(dice.values()) > 0.8, dice
    assert levels_right(result, truth)
    assert any("darker than the discs" in note for note in result.notes)


def test_spin_echo_t1_is_read_as_bright_marrow(small_results):
    _, result = small_results["healthy"]
    assert result.provenance["t1_marrow"] == "bright"
    assert not any("darker than the discs" in note for note in result.notes)


def test_t1_without_marrow_contrast_gives_no_bodies_and_says_so(small_results):
    """A T1 on which marrow and discs look alike (noise only): nothing invented."""
    phantom, _ = small_results["healthy"]
    study = study_of(phantom)
    flat = np.random.default_rng(3).normal(1000, 30, study.grid.shape).astype(np.float32)
    blank = Study(study.t1.with_data(flat), t2=study.t2, stir=study.stir, covered=study.covered)
    result = find_vertebral_bodies(blank)
    assert result.levels == {} and not result.bodies.data.any()
    assert any("no vertebral body found" in note for note in result.notes)


def test_canal_wall_ignores_bright_blobs_in_front_of_it():
    """The canal's anterior wall follows the CSF run, not a bright blob touching it."""
    from bmetoolkit.spine.autoseg.canal import _front

    column = np.zeros((60, 50, 9), bool)
    column[20:30, :, :] = True  # CSF, anterior wall at index 29
    column[30:45, 20:26, 4] = True  # a foramen-like blob attached in front, mid slice
    front = _front(column, 4.0, np.ones(3), AutosegParameters(canal_smooth_mm=1.0))
    assert np.allclose(front, 29.0)


def test_partial_fluid_coverage_is_cropped_not_mistaken_for_tissue(small_results):
    """Only the part of the T1 grid the T2/STIR cover is searched, and the bodies there are
    those found on the whole grid (the real cervical test below needs the crop: its T2
    covers 56 % of the T1, and the zeros outside would pass for dark tissue)."""
    phantom, full = small_results["healthy"]
    study = study_of(phantom)
    si_axis = int(np.argmax(np.abs(study.grid.direction[2])))
    covered = np.ones(study.grid.shape, bool)
    keep = [slice(None)] * 3
    keep[si_axis] = slice(study.grid.shape[si_axis] * 2 // 3, None)
    covered[tuple(keep)] = False  # one third of the grid along SI has no T2/STIR
    images = {
        role: getattr(study, role).with_data(np.where(covered, getattr(study, role).data, 0))
        for role in ("t2", "stir")
    }
    partial = Study(study.t1, **images, covered={"t2": covered, "stir": covered})
    result = find_vertebral_bodies(partial)
    found = result.bodies.data
    assert not found[~covered].any()
    inside = [v for v in np.unique(full.bodies.data) if v and covered[full.bodies.data == v].all()]
    assert len(inside) >= 3
    for verse in inside:
        true = full.bodies.data == verse
        ids, counts = np.unique(found[true], return_counts=True)
        best = found == ids[np.argmax(counts)]
        assert 2 * (best & true).sum() / (best.sum() + true.sum()) > 0.9


# --- real scans ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cervical():
    """SCT's real cervical T1w/T2 pair (1 mm; T2 covers 56 % of the T1) and its cord levels."""
    from bmetoolkit.data import datasets
    from bmetoolkit.io import load
    from bmetoolkit.resample import resample_to

    paths = datasets.cervical_pair()
    study = Study.from_images(paths["t1"], t2=paths["t2"])
    levels = resample_to(load(paths["t2_levels"]), study.grid).data
    return study, levels


def test_real_cervical_pair_bodies_match_the_manual_cord_levels(cervical):
    """On SCT's cervical pair (gradient-echo T1w: bodies darker than the discs) the bodies in
    the T2's field of view are found, one per vertebral level of the manual cord labelling
    (C2, C3, C4: the cord segment behind each body carries the body's level), and their
    levels are left unknown (no sacrum, and C2's dens is outside the T2)."""
    study, cord_levels = cervical
    result = find_vertebral_bodies(study)
    bodies = result.bodies.data
    assert result.bodies.grid.same_as(study.grid)
    assert result.provenance["t1_marrow"] == "dark"
    assert set(result.levels.values()) == {None}
    si_axis = int(np.argmax(np.abs(study.grid.direction[2])))
    found_levels = []
    for label in sorted(result.levels):
        body = bodies == label
        volume_ml = body.sum() * study.grid.voxel_volume_mm3 / 1000
        assert 3.0 < volume_ml < 12.0  # adult cervical bodies with cortex: about 5-8 mL
        centre = round(np.argwhere(body)[:, si_axis].mean())
        at_height = np.take(cord_levels, centre, axis=si_axis)
        values, counts = np.unique(at_height[at_height > 0], return_counts=True)
        found_levels.append(int(values[np.argmax(counts)]))
    assert sorted(found_levels) == [2, 3, 4]


def test_two_bodies_are_too_few_to_name_levels():
    """A sacrum-like angle between the only two bodies found is no evidence of a column."""
    empty = np.zeros((80, 400, 10), bool)
    result = assign_levels(_shapes(LORDOSIS[-2:]), empty, SPACING, AutosegParameters())
    assert result.anchor is None and set(result.levels.values()) == {None}


def test_parts_split_by_further_erosion_are_checked_allowing_for_it():
    """Two bodies joined by a bridge that only a deeper erosion cuts: each part lies that
    much further from the canal than its body, and is kept and grown back (S1 split from
    the sacral segments below it was dropped as too far from the canal)."""
    from bmetoolkit.spine.autoseg.bodies import split_bodies

    spacing = np.ones(3)
    marrow = np.zeros((70, 90, 16), bool)
    marrow[19:49, 10:40, 2:14] = True  # two bodies, 9 mm in front of the canal
    marrow[19:49, 50:80, 2:14] = True
    marrow[33:42, 40:50, 2:14] = True  # a 9 mm bridge: cut at 3 mm beyond the seed erosion
    front = np.full(90, 10.0)
    distance = (np.arange(70)[:, None] - front[None, :]) * spacing[0]
    bodies = split_bodies(marrow, distance.astype(np.float32), front, spacing, AutosegParameters())
    assert bodies.max() == 2
    for rows in (slice(10, 40), slice(50, 80)):
        labels, counts = np.unique(bodies[19:49, rows, 2:14], return_counts=True)
        assert labels[np.argmax(counts)] > 0 and counts.max() > 0.8 * 30 * 30 * 12
