"""Vertebra label conventions: level names, convention detection, bodies from label maps."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.errors import BmetoolkitError, EmptyInputError
from bmetoolkit.spine.labels import (
    VERSE_LEVELS,
    detect_convention,
    level_name,
    totalseg_to_verse,
    verse_id,
    vertebral_bodies,
)
from bmetoolkit.volume import Volume
from tests.helpers import SAGITTAL_PSR, ras_affine

#: Sagittal grid: i -> posterior (1 mm), j -> superior (1 mm), k -> right (2 mm slices).
SAGITTAL = ras_affine(SAGITTAL_PSR, (1.0, 1.0, 2.0), origin=(10.0, -20.0, 5.0))
#: Voxel axes permuted and flipped: i -> inferior, j -> anterior, k -> right.
I_INFERIOR = ras_affine([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], (1.0, 1.0, 2.0))
#: The same axes with i -> superior.
I_SUPERIOR = ras_affine([[0, 0, 1], [0, 1, 0], [1, 0, 0]], (1.0, 1.0, 2.0))


def label_volume(data: np.ndarray, affine: np.ndarray = SAGITTAL) -> Volume:
    return Volume(data, affine, kind="label", source="labels.nii.gz")


def column_of_boxes(values: list[int], *, shape=(30, 80, 14), height=12, gap=4) -> np.ndarray:
    """Boxes stacked along j (superior on SAGITTAL), ``values[0]`` lowest (most caudal)."""
    data = np.zeros(shape, np.uint8)
    for n, value in enumerate(values):
        low = 3 + n * (height + gap)
        data[6:24, low : low + height, 2:12] = value
    return data


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


# --- level names ---------------------------------------------------------------------------


def test_level_name_and_verse_id_round_trip():
    for number, name in VERSE_LEVELS.items():
        assert verse_id(name) == number
        assert level_name(number) == name
    assert len(VERSE_LEVELS) == 27  # C1-C7, T1-T12, T13, L1-L6, S1


def test_level_names_known_values():
    assert [level_name(i) for i in (1, 7, 8, 19, 20, 24, 25, 26, 28)] == [
        "C1",
        "C7",
        "T1",
        "T12",
        "L1",
        "L5",
        "L6",
        "S1",
        "T13",
    ]
    assert verse_id("sacrum") == 26
    assert verse_id(" l4 ") == 23
    assert verse_id("Sacrum") == 26


@pytest.mark.parametrize("number", [0, 27, 29, 120, 224, -1])
def test_level_name_rejects_non_vertebrae(number):
    with pytest.raises(ValueError, match="not a VerSe vertebra id"):
        level_name(number)


@pytest.mark.parametrize("name", ["L7", "X1", "", "T14", "S2"])
def test_verse_id_rejects_unknown(name):
    with pytest.raises(ValueError, match="unknown vertebra level"):
        verse_id(name)


def test_totalseg_to_verse():
    assert totalseg_to_verse(1) == 26  # sacrum
    assert totalseg_to_verse(2) == 24  # L5
    assert totalseg_to_verse(6) == 20  # L1
    assert totalseg_to_verse(7) == 19  # T12
    assert totalseg_to_verse(25) == 1  # C1
    for bad in (0, 26):
        with pytest.raises(ValueError):
            totalseg_to_verse(bad)


# --- detect_convention -----------------------------------------------------------------------


def test_detect_binary():
    data = column_of_boxes([1, 1])
    assert detect_convention(label_volume(data)) == "binary"
    assert detect_convention(label_volume(data.astype(bool))) == "binary"


def test_detect_spineps_by_disc_or_endplate_ids():
    data = column_of_boxes([21, 20])
    data[6:24, 0:2, 2:12] = 121
    assert detect_convention(label_volume(data)) == "spineps"
    data[data == 121] = 0
    data[data == 21] = 200  # an endplate label alone is enough
    assert detect_convention(label_volume(data)) == "spineps"


def test_detect_order_in_world_space_not_voxel_order():
    """Low i is cranial on I_INFERIOR: 20 at low i is above 21, VerSe order."""
    data = np.zeros((60, 30, 14), np.uint8)
    data[5:20, 6:24, 2:12] = 20
    data[30:45, 6:24, 2:12] = 21
    assert detect_convention(label_volume(data, I_INFERIOR)) == "verse"
    # The same voxels with i -> superior put 21 above 20: TotalSegmentator order.
    assert detect_convention(label_volume(data, I_SUPERIOR)) == "totalsegmentator"


def test_detect_sagittal_orders():
    # values listed caudal first
    assert detect_convention(label_volume(column_of_boxes([24, 23, 22]))) == "verse"
    assert detect_convention(label_volume(column_of_boxes([1, 2, 3]))) == "totalsegmentator"


def test_detect_inconsistent_order_is_an_error():
    with pytest.raises(BmetoolkitError, match="neither in VerSe order"):
        detect_convention(label_volume(column_of_boxes([22, 24, 23])))
    # TotalSegmentator order (ids growing upwards) but with ids above its 25 classes
    with pytest.raises(BmetoolkitError, match="neither"):
        detect_convention(label_volume(column_of_boxes([25, 30])))


def test_detect_single_label_is_an_error():
    with pytest.raises(BmetoolkitError, match="single label") as info:
        detect_convention(label_volume(column_of_boxes([20])))
    assert info.value.path == "labels.nii.gz"


def test_detect_empty_map():
    with pytest.raises(EmptyInputError, match="empty"):
        detect_convention(label_volume(np.zeros((10, 10, 4), np.uint8)))


# --- vertebral_bodies ------------------------------------------------------------------------


def test_verse_bodies_keep_ids_and_voxels():
    data = column_of_boxes([24, 23, 22])
    found = vertebral_bodies(label_volume(data), body_opening_mm=3.0)
    assert found.convention == "verse"
    assert list(found.levels.items()) == [(22, "L3"), (23, "L4"), (24, "L5")]  # cranial first
    assert found.levels_known
    assert found.bodies.is_label and np.issubdtype(found.bodies.data.dtype, np.integer)
    assert found.bodies.grid.same_as(label_volume(data).grid)
    # plain boxes are all body: the opening's rounded corners are put back
    np.testing.assert_array_equal(found.bodies.data, data)
    assert found.notes == ()
    assert found.name(23) == "L4"


def test_spineps_merges_endplates_and_drops_discs():
    data = column_of_boxes([21, 20])  # L2 below L1
    l1 = data == 20
    l2 = data == 21
    body_top = np.flatnonzero(l1.any(axis=(0, 2)))
    data[6:24, body_top[0], 2:12] = 220  # L1 inferior endplate layer
    data[6:24, body_top[-1], 2:12] = 220  # L1 superior endplate layer
    disc = np.zeros_like(l1)
    disc[6:24, body_top[0] - 4 : body_top[0], 2:12] = True  # the gap between L2 and L1
    data[disc] = 120
    found = vertebral_bodies(label_volume(data), body_opening_mm=3.0)
    assert found.convention == "spineps"
    assert found.levels == {20: "L1", 21: "L2"}
    assert list(found.levels) == [20, 21]
    out = found.bodies.data
    np.testing.assert_array_equal(out == 20, l1)  # endplate voxels are body voxels
    np.testing.assert_array_equal(out == 21, l2)
    assert not out[disc].any()
    assert out.max() < 100


def test_totalsegmentator_classes_to_verse():
    data = column_of_boxes([1, 2, 3])  # sacrum, L5, L4 from the bottom up
    found = vertebral_bodies(label_volume(data), body_opening_mm=3.0)
    assert found.convention == "totalsegmentator"
    assert list(found.levels.items()) == [(23, "L4"), (24, "L5"), (26, "S1")]
    out = found.bodies.data
    np.testing.assert_array_equal(out == 26, data == 1)
    np.testing.assert_array_equal(out == 24, data == 2)
    np.testing.assert_array_equal(out == 23, data == 3)


def test_total_mr_splits_vertebrae_class_into_instances():
    data = column_of_boxes([18, 19, 19])  # sacrum below two merged vertebrae
    found = vertebral_bodies(label_volume(data), convention="total_mr", body_opening_mm=3.0)
    assert found.convention == "total_mr"
    out = found.bodies.data
    ids = list(found.levels)
    assert len(ids) == 3 and ids[-1] == 26 and found.levels[26] == "S1"
    np.testing.assert_array_equal(out == 26, data == 18)
    upper, lower = ids[0], ids[1]
    assert lower == upper + 1  # consecutive ids, numbered downwards
    # the upper instance is the top box
    rows = np.flatnonzero((out == upper).any(axis=(0, 2)))
    assert rows.min() > np.flatnonzero((out == lower).any(axis=(0, 2))).max()
    assert found.levels_known


def test_total_mr_body_above_sacrum_is_l5():
    data = column_of_boxes([18, 19, 19])
    found = vertebral_bodies(label_volume(data), convention="total_mr", body_opening_mm=3.0)
    assert found.levels == {23: "L4", 24: "L5", 26: "S1"}


def test_total_mr_without_sacrum_has_unknown_levels():
    data = column_of_boxes([19, 19])
    found = vertebral_bodies(label_volume(data), convention="total_mr", body_opening_mm=3.0)
    assert found.levels == {1: None, 2: None}
    assert not found.levels_known
    assert any("unknown" in note for note in found.notes)


def test_total_mr_is_never_guessed():
    """Its ids collide with VerSe (T11, T12) and TotalSegmentator classes: name it."""
    data = column_of_boxes([18, 19])  # sacrum class below the merged vertebrae
    assert detect_convention(label_volume(data)) == "totalsegmentator"


def test_binary_instances_numbered_cranial_to_caudal_in_world_space():
    data = np.zeros((60, 30, 14), np.uint8)
    data[4:16, 6:24, 2:12] = 1  # first in voxel order
    data[24:36, 6:24, 2:12] = 1
    data[44:56, 6:24, 2:12] = 1
    for affine, top in ((I_INFERIOR, slice(4, 16)), (I_SUPERIOR, slice(44, 56))):
        found = vertebral_bodies(label_volume(data, affine), body_opening_mm=3.0)
        assert found.convention == "binary"
        assert found.levels == {1: None, 2: None, 3: None}
        assert found.name(1) == "body 1" and found.name(3) == "body 3"
        out = found.bodies.data
        assert (out[top][data[top] > 0] == 1).all()  # the most cranial box is body 1
        np.testing.assert_array_equal(out > 0, data > 0)
        assert len(found.notes) == 1 and "unknown" in found.notes[0]
        assert found.provenance["convention"] == "binary"


def vertebra_with_posterior_elements() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A box body, a narrow pedicle behind it and a thin bar (lamina) behind that.

    On SAGITTAL, i grows posteriorly: the body lies at i 4..23, the pedicle at 24..29, the
    bar at 30..32.
    """
    data = np.zeros((36, 40, 14), np.uint8)
    body = np.zeros(data.shape, bool)
    body[4:24, 8:30, 1:12] = True
    pedicle = np.zeros(data.shape, bool)
    pedicle[24:30, 17:20, 6:7] = True  # 3 mm x 2 mm cross-section, 6 mm long
    bar = np.zeros(data.shape, bool)
    bar[30:33, 4:36, 0:14] = True  # 3 mm thick, wider and taller than the body
    data[body | pedicle | bar] = 22
    return data, body, pedicle | bar


@pytest.mark.parametrize("convention", ["verse", "binary"])
def test_posterior_elements_are_cut_off(convention):
    data, body, posterior = vertebra_with_posterior_elements()
    if convention == "binary":
        data = (data > 0).astype(np.uint8)
    found = vertebral_bodies(label_volume(data), convention=convention, body_opening_mm=5.0)
    out = found.bodies.data > 0
    assert dice(out, body) >= 0.95
    assert not out[30:].any()  # the bar is gone
    assert np.count_nonzero(out & posterior) <= 3 * 6  # at most the pedicle's base
    assert np.count_nonzero(body & ~out) == 0  # the box keeps all its voxels


def rounded_body(spacing=(0.8, 0.8, 4.2)) -> tuple[np.ndarray, np.ndarray]:
    """A lumbar-sized body (elliptic cylinder: AP 32, LR 44, SI 26 mm) on 4.2 mm sagittal
    slices, with room behind it (i grows posteriorly): ``(labels, affine)``."""
    spacing = np.asarray(spacing)
    shape = (80, 50, 15)
    centre = np.array([25, 24.5, 7.0])
    mm = (np.indices(shape).reshape(3, -1).T - centre) * spacing
    inside = ((mm[:, 0] / 16) ** 2 + (mm[:, 2] / 22) ** 2 <= 1) & (np.abs(mm[:, 1]) <= 13)
    return (inside.reshape(shape) * 23).astype(np.uint8), ras_affine(SAGITTAL_PSR, spacing)


@pytest.mark.slow  # a realistic phantom (4 s)
def test_phantom_bodies_on_thick_oblique_slices_are_kept_whole():
    """Body-only labels stay whole. The rim of a body on 4.4 mm oblique slices lies up to
    about a slice beyond the opening's ball; with the ball's radius as the only tolerance it
    was dropped from most bodies (about 9 % of each), by where the slices happened to fall,
    so one spine's bodies, marrow and edema changed between two scans."""
    from bmetoolkit.data.phantom import make_phantom

    study = make_phantom(1, lesions="healthy")
    given = study.truth.vertebrae
    found = vertebral_bodies(given, convention="verse", body_opening_mm=5.0)
    np.testing.assert_array_equal(found.bodies.data, given.data)


def test_posterior_elements_are_cut_off_on_thick_slices():
    """The wider rim tolerance of thick slices keeps no posterior element: a pedicle and a
    lamina behind a rounded body, on 4.2 mm slices."""
    data, affine = rounded_body()
    body = data > 0
    back = np.flatnonzero(body.any(axis=(1, 2))).max()  # i grows posteriorly
    data[back + 1 : back + 12, 22:28, 5:6] = 23  # pedicle: 8.8 mm long, 4.8 x 4.2 mm
    data[back + 12 : back + 16, 5:45, 2:13] = 23  # lamina: 3.2 mm thick, wide and tall
    found = vertebral_bodies(label_volume(data, affine), convention="verse", body_opening_mm=5.0)
    out = found.bodies.data > 0
    assert np.count_nonzero(body & ~out) == 0
    assert not out[back + 3 :].any()  # at most the pedicle's base (2 voxels, 1.6 mm)


def test_without_opening_the_posterior_elements_would_stay():
    """Control for the test above: a label map that is only thin parts is kept whole."""
    data, _, posterior = vertebra_with_posterior_elements()
    data[~posterior] = 0
    data[data > 0] = 22
    out = vertebral_bodies(label_volume(data), convention="verse").bodies.data
    np.testing.assert_array_equal(out > 0, posterior)


@pytest.mark.parametrize("convention", ["auto", "binary", "total_mr"])
def test_empty_map_raises(convention):
    empty = label_volume(np.zeros((20, 20, 6), np.uint8))
    with pytest.raises(EmptyInputError):
        vertebral_bodies(empty, convention=convention)


@pytest.mark.parametrize("convention", ["verse", "spineps", "totalsegmentator"])
def test_empty_map_named_convention_raises_empty_input(convention):
    empty = label_volume(np.zeros((20, 20, 6), np.uint8))
    with pytest.raises(EmptyInputError):
        vertebral_bodies(empty, convention=convention)


def test_only_discs_is_empty():
    data = column_of_boxes([120, 121])
    with pytest.raises(EmptyInputError, match="no vertebral body"):
        vertebral_bodies(label_volume(data))


def test_unknown_convention():
    with pytest.raises(ValueError, match="unknown label convention"):
        vertebral_bodies(label_volume(column_of_boxes([1])), convention="nnunet")


def test_detect_verse_with_t13():
    data = column_of_boxes([20, 28, 19])  # L1 below T13 below T12
    assert vertebral_bodies(label_volume(data), convention="verse").levels == {
        19: "T12",
        28: "T13",
        20: "L1",
    }  # named explicitly it works; auto-detection should too
    assert detect_convention(label_volume(data)) == "verse"


def test_mask_of_255_is_binary_or_a_clear_error():
    data = column_of_boxes([255, 255])
    try:
        found = vertebral_bodies(label_volume(data))
    except BmetoolkitError:
        return
    assert found.convention == "binary"


def _blobby_masks() -> list[tuple[np.ndarray, np.ndarray]]:
    """Vertebra-like masks (a body, a process, holes; some touching the array's edge) with
    their voxel sizes."""
    masks = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        shape = tuple(int(n) for n in rng.integers(18, 40, 3))
        spacing = rng.uniform(0.7, 4.5, 3)
        mask = np.zeros(shape, bool)
        low = rng.integers(0, 4, 3) if seed % 2 else rng.integers(2, 6, 3)
        high = np.minimum(low + rng.integers(8, 16, 3), shape)
        mask[tuple(slice(a, b) for a, b in zip(low, high, strict=True))] = True
        mask[low[0] : low[0] + 2, high[1] - 1 : shape[1], low[2] + 2 : low[2] + 4] = True
        mask &= rng.random(shape) > 0.05
        masks.append((mask, spacing))
    return masks


@pytest.mark.parametrize("keep_all", [False, True])
def test_body_only_on_the_box_equals_the_whole_array(keep_all):
    from bmetoolkit.spine.labels import _body_in_box, _body_only

    for mask, spacing in _blobby_masks():
        boxed = _body_only(mask, spacing, 5.0, keep_all=keep_all)
        whole = _body_in_box(mask, spacing, 5.0, keep_all=keep_all)
        assert boxed.any()
        np.testing.assert_array_equal(boxed, whole)
