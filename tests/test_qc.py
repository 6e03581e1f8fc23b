"""QC figures: orientation, physical aspect ratio, overlays, labels, per-level volumes, PNG."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.data.phantom import Lesion, PhantomConfig, make_phantom
from bmetoolkit.errors import GridMismatchError
from bmetoolkit.report import qc
from bmetoolkit.spine.labels import level_name
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume
from tests.helpers import SAGITTAL_PSR, linear_field, ras_affine

LESIONS = [
    Lesion("L4", "modic1/2", endplate="inferior", height_frac=0.4),
    Lesion("L2", "modic2/3", endplate="superior", height_frac=0.25),
    Lesion("L1", "edema", height_frac=0.45, ap_width=0.5, lr_width=0.5),
]


@pytest.fixture(scope="module")
def phantom_inputs() -> dict:
    """Small phantom: T1, STIR on the T1 grid, truth masks, level names."""
    study = make_phantom(seed=5, lesions=LESIONS, config=PhantomConfig.small())
    aligned = Study.from_images(study.t1, stir=study.stir)
    masks = study.truth.masks
    ids = np.unique(masks["vertebrae"].data)
    return {
        "t1": study.t1,
        "fluid": aligned.stir,
        "bme_mask": masks["bme_mask"],
        "modic_map": masks["modic_map"],
        "vertebrae": masks["vertebrae"],
        "level_names": {int(i): level_name(int(i)) for i in ids if i},
    }


def _montage(inputs: dict, **kwargs) -> qc.Montage:
    return qc.sagittal_montage(
        inputs["t1"],
        inputs["fluid"],
        inputs["bme_mask"],
        inputs["modic_map"],
        inputs["vertebrae"],
        inputs["level_names"],
        **kwargs,
    )


def _pixels(montage: qc.Montage) -> list[np.ndarray]:
    return [panel.rgb for panel in montage.panels]


def _same(first: qc.Montage, second: qc.Montage) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(_pixels(first), _pixels(second), strict=True))


def _has_colour(rgb: np.ndarray, colour: str) -> bool:
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], np.uint8)
    return bool(np.all(rgb == target, axis=2).any())


def _restored(volume: Volume, perm: tuple[int, int, int], flips: tuple[int, ...]) -> Volume:
    """The same image stored with permuted and flipped voxel axes, with the matching affine.

    New axis ``a`` is old axis ``perm[a]``, reversed when ``a`` is in ``flips``.
    """
    data = np.transpose(volume.data, perm)
    for axis in flips:
        data = np.flip(data, axis=axis)
    new_to_old = np.zeros((4, 4))
    new_to_old[3, 3] = 1.0
    for new_axis, old_axis in enumerate(perm):
        if new_axis in flips:
            new_to_old[old_axis, new_axis] = -1.0
            new_to_old[old_axis, 3] = data.shape[new_axis] - 1
        else:
            new_to_old[old_axis, new_axis] = 1.0
    moved = Volume(np.ascontiguousarray(data), volume.affine @ new_to_old, kind=volume.kind)
    # The helper itself must keep every voxel where it was in the world.
    corner = np.array([[0, 0, 0]])
    old_index = (new_to_old @ np.append(corner[0], 1.0))[:3]
    assert np.allclose(moved.grid.voxel_to_world(corner), volume.grid.voxel_to_world([old_index]))
    assert moved.data[0, 0, 0] == volume.data[tuple(int(i) for i in old_index)]
    return moved


def test_montage_panels_are_drawn_at_their_display_size(phantom_inputs):
    montage = _montage(phantom_inputs, n_slices=3, title="sub-01")
    assert [p.contrast for p in montage.panels] == ["T1", "STIR"] * 3
    assert montage.title == "sub-01"
    for panel in montage.panels:
        assert panel.rgb.dtype == np.uint8 and panel.rgb.shape[2] == 3
        assert panel.rgb.shape[1] == qc.PANEL_WIDTH_PX
        assert panel.position.startswith("x = ")
    assert montage.panels[0].position == montage.panels[1].position  # T1 | STIR of one slice
    assert len({p.position for p in montage.panels}) == 3
    narrow = _montage(phantom_inputs, n_slices=1, panel_width_px=120)
    assert {p.rgb.shape[1] for p in narrow.panels} == {120}


def test_montage_identical_whatever_the_stored_orientation(phantom_inputs):
    reference = _montage(phantom_inputs)
    for perm, flips in (((1, 0, 2), (0,)), ((2, 1, 0), (1, 2)), ((0, 1, 2), (0, 1, 2))):
        moved = {
            key: _restored(value, perm, flips) if isinstance(value, Volume) else value
            for key, value in phantom_inputs.items()
        }
        assert moved["t1"].grid.axcodes != phantom_inputs["t1"].grid.axcodes
        montage = _montage(moved)
        assert _same(montage, reference), (perm, flips)
        assert [p.levels for p in montage.panels] == [p.levels for p in reference.panels]


def test_montage_changes_when_the_affine_does_not_follow_the_data(phantom_inputs):
    """The orientation test above can fail: flipped data with the old affine looks different."""
    reference = _montage(phantom_inputs)
    wrong = {
        key: value.with_data(np.flip(value.data, axis=1)) if isinstance(value, Volume) else value
        for key, value in phantom_inputs.items()
    }
    assert not _same(_montage(wrong), reference)


@pytest.mark.parametrize("stored", ["PSR", "RAS", "ILA"])
def test_anterior_left_superior_up_with_physical_aspect(stored):
    axes = {
        "PSR": SAGITTAL_PSR,
        "RAS": np.eye(3),
        "ILA": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).T,
    }[stored]
    spacing = {"PSR": (0.7, 0.8, 4.0), "RAS": (4.0, 0.7, 0.8), "ILA": (0.8, 4.0, 0.7)}[stored]
    shape = {"PSR": (60, 80, 5), "RAS": (5, 60, 80), "ILA": (80, 5, 60)}[stored]
    grid = Grid(shape, ras_affine(axes, spacing))
    anterior = Volume(linear_field(grid, (0.0, 1.0, 0.0), 500.0), grid.affine)
    superior = Volume(linear_field(grid, (0.0, 0.0, 1.0), 500.0), grid.affine)
    empty = Volume(np.zeros(shape, np.uint8), grid.affine, kind="label")
    montage = qc.sagittal_montage(anterior, superior, empty, empty, empty, {}, n_slices=1)
    a_grey = montage.panels[0].rgb[..., 0].astype(int)
    s_grey = montage.panels[1].rgb[..., 0].astype(int)
    assert np.all(np.diff(a_grey, axis=1) <= 0) and a_grey[0, 0] > a_grey[0, -1]  # A left
    assert np.all(np.diff(s_grey, axis=0) <= 0) and s_grey[0, 0] > s_grey[-1, 0]  # S up
    rows, cols = a_grey.shape
    # 60 AP pixels of 0.7 mm by 80 SI pixels of 0.8 mm, drawn at their size in mm
    assert rows / cols == pytest.approx((80 * 0.8) / (60 * 0.7), abs=1.0 / cols)


def test_overlays_levels_and_legend(phantom_inputs):
    montage = _montage(phantom_inputs, n_slices=2)
    names = {mark.name for mark in montage.panels[0].levels}
    assert {"L1", "L2", "L3", "L4", "L5", "S1"} <= names
    for mark in montage.panels[0].levels:
        assert 0 <= mark.x_pct <= 100 and 0 <= mark.y_pct <= 100
    heights = {m.name: m.y_pct for m in montage.panels[0].levels}
    assert heights["L1"] < heights["L2"] < heights["L5"]  # cranial names higher up
    labels = [e["label"] for e in montage.legend()]
    assert labels == ["Modic I", "Modic II", "Modic III", "BME", "vertebral body (T1 panels)"]
    assert all(e["present"] for e in montage.legend())
    everything = np.concatenate([p.rgb for p in montage.panels], axis=1)
    for value in (1, 2, 3):  # each type's outline in its own colour
        assert _has_colour(everything, qc.MODIC_COLORS[value]), value
    assert _has_colour(everything, qc.BME_COLOR)
    plain = qc.sagittal_montage(
        *(phantom_inputs[k] for k in ("t1", "fluid")),
        *(
            phantom_inputs["bme_mask"].with_data(np.zeros_like(phantom_inputs["bme_mask"].data))
            for _ in range(2)
        ),
        phantom_inputs["vertebrae"],
        phantom_inputs["level_names"],
        n_slices=2,
    )
    changed = [
        not np.array_equal(a, b) for a, b in zip(_pixels(plain), _pixels(montage), strict=True)
    ]
    assert all(changed)  # the overlays are drawn on every panel, T1 and STIR alike


def test_bodies_are_outlined_on_the_first_panel_of_each_slice(phantom_inputs):
    nothing = phantom_inputs["bme_mask"].with_data(np.zeros_like(phantom_inputs["bme_mask"].data))
    montage = _montage({**phantom_inputs, "bme_mask": nothing, "modic_map": nothing}, n_slices=1)
    t1, _ = montage.panels
    outline = np.all(t1.rgb == qc._OUTLINE_RGB, axis=2)
    # the panel's bodies, as the montage samples them, outlined where a body meets another
    # body or no body (one pixel wide), nowhere else
    same_bodies = {**phantom_inputs, "bme_mask": nothing, "modic_map": nothing}
    bodies_rgb = _montage({**same_bodies, "t1": phantom_inputs["vertebrae"]}, n_slices=1)
    assert outline.any() and outline.mean() < 0.1
    assert np.array_equal(outline, np.all(bodies_rgb.panels[0].rgb == qc._OUTLINE_RGB, axis=2))
    ids = np.zeros((5, 6), np.uint8)
    ids[1:4, 1:3] = 1
    ids[1:4, 3:5] = 2
    assert np.array_equal(qc._edges(ids), ids > 0)  # two touching 3x2 bodies: all edge
    ids = np.zeros((7, 7), np.uint8)
    ids[1:6, 1:6] = 3  # a 5x5 body: its ring is outlined, its 3x3 inside is not
    assert qc._edges(ids).sum() == 16 and not qc._edges(ids)[2:5, 2:5].any()
    ids[:, :3] = 4  # cut by the panel's edge: no outline along the edge itself
    assert not qc._edges(ids)[:, 0].any() and qc._edges(ids)[:, 2].all()


def test_legend_says_when_a_finding_is_absent(phantom_inputs):
    nothing = phantom_inputs["bme_mask"].with_data(np.zeros_like(phantom_inputs["bme_mask"].data))
    montage = _montage({**phantom_inputs, "bme_mask": nothing, "modic_map": nothing})
    assert [e["present"] for e in montage.legend()] == [False] * 4 + [True]  # outlines stay
    fluid = np.concatenate([p.rgb for p in montage.panels[1::2]], axis=1)
    assert np.all(fluid[..., 0] == fluid[..., 1])  # grey only: nothing drawn
    t1 = np.concatenate([p.rgb for p in montage.panels[::2]], axis=1)
    coloured = t1[(t1[..., 0] != t1[..., 1]) | (t1[..., 1] != t1[..., 2])]
    assert coloured.size and np.all(coloured == qc._OUTLINE_RGB)  # the bodies' outlines only


def test_thumbnail_is_the_panel_with_most_findings(phantom_inputs):
    montage = _montage(phantom_inputs)
    assert montage.panels[montage.key_panel].contrast == "STIR"
    thumbnail = montage.thumbnail(60)
    assert thumbnail.shape[0] == 60 and thumbnail.dtype == np.uint8
    key = montage.panels[montage.key_panel].rgb
    first, last = montage.key_rows
    assert np.any(key[first] != key[first, :, :1]) and np.any(key[last] != key[last, :, :1])
    crop = max(last - first + 1, round(key.shape[1] / qc.THUMBNAIL_ASPECT))
    assert thumbnail.shape[1] == round(key.shape[1] * 60 / crop)  # around the findings
    nothing = phantom_inputs["bme_mask"].with_data(np.zeros_like(phantom_inputs["bme_mask"].data))
    healthy = _montage({**phantom_inputs, "bme_mask": nothing, "modic_map": nothing})
    assert healthy.key_rows is None and healthy.panels[healthy.key_panel].contrast == "STIR"
    whole = healthy.panels[healthy.key_panel].rgb
    assert healthy.thumbnail(60).shape[1] == round(whole.shape[1] * 60 / whole.shape[0])


def test_without_a_t1_each_slice_shows_the_fluid_image_once(phantom_inputs):
    # no T1: the analysis passes the fluid image as the base image, named as the fluid
    fluid = phantom_inputs["fluid"]
    inputs = {**phantom_inputs, "t1": fluid}
    paired = _montage(phantom_inputs, n_slices=3)
    alone = _montage(inputs, n_slices=3, image_name="T2", fluid_name="T2")
    assert [p.contrast for p in alone.panels] == ["T2"] * 3 and alone.contrasts == ("T2",)
    assert paired.contrasts == ("T1", "STIR") and len(paired.panels) == 6
    # the same fluid panels as beside a T1, with the bodies outlined on them (the only
    # panels), and the thumbnail is the same slice's
    for a, b in zip(alone.panels, paired.panels[1::2], strict=True):
        outline = np.all(a.rgb == qc._OUTLINE_RGB, axis=2)
        assert outline.any() and np.array_equal(a.rgb[~outline], b.rgb[~outline])
    assert alone.key_panel == paired.key_panel // 2
    assert alone.thumbnail(60).shape == paired.thumbnail(60).shape
    not_assessed = _montage(inputs, image_name="T2", fluid_name="T2", show_modic=False)
    legend = [e["label"] for e in not_assessed.legend()]
    assert legend == ["BME", "vertebral body (T2 panels)"]  # no "Modic I (none)"


def test_slices_go_through_the_bodies_and_the_largest_finding():
    bodies = np.zeros((9, 6, 6), np.uint8)
    bodies[2:7, 1:5, 1:5] = 22
    findings = np.zeros(bodies.shape, bool)
    assert qc.select_slices(bodies, findings, 3) == [3, 4, 5]
    findings[6, 2, 2] = True
    assert qc.select_slices(bodies, findings, 3) == [3, 4, 6]
    assert qc.select_slices(bodies, findings, 1) == [6]
    assert qc.select_slices(bodies, findings, 50) == list(range(9))


def test_inputs_off_the_t1_grid_are_refused(phantom_inputs):
    from bmetoolkit.data.phantom import make_phantom as build

    other = build(seed=5, lesions=None, config=PhantomConfig.small()).stir
    with pytest.raises(GridMismatchError, match="T1 grid"):
        _montage({**phantom_inputs, "fluid": other})


def test_level_volumes_count_voxels_per_body(phantom_inputs):
    rows = qc.level_volumes(
        phantom_inputs["bme_mask"],
        phantom_inputs["modic_map"],
        phantom_inputs["vertebrae"],
        phantom_inputs["level_names"],
    )
    assert [r["level"] for r in rows] == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    bodies = phantom_inputs["vertebrae"].data
    bme = phantom_inputs["bme_mask"].data > 0
    modic = phantom_inputs["modic_map"].data
    ml = phantom_inputs["t1"].grid.voxel_volume_mm3 / 1000
    by_level = {r["level"]: r for r in rows}
    l4 = bodies == 23
    assert by_level["L4"]["bme_ml"] == pytest.approx(np.count_nonzero(bme & l4) * ml)
    assert by_level["L4"]["modic_II_ml"] == pytest.approx(np.count_nonzero((modic == 2) & l4) * ml)
    assert by_level["L4"]["modic_I_ml"] > 0 and by_level["L4"]["modic_II_ml"] > 0
    assert by_level["L2"]["modic_III_ml"] > 0 and by_level["L2"]["bme_ml"] == 0
    assert by_level["L1"]["bme_ml"] > 0 and by_level["L1"]["modic_I_ml"] == 0
    assert by_level["L3"]["bme_ml"] == by_level["L3"]["modic_I_ml"] == 0


def test_level_volumes_list_findings_outside_the_bodies():
    affine = np.diag([10.0, 10.0, 10.0, 1.0])  # 1 mL voxels
    bodies = np.zeros((1, 1, 4), np.uint8)
    bodies[0, 0, 2:] = 23
    modic = np.zeros_like(bodies)
    modic[0, 0, 0] = 3
    modic[0, 0, 3] = 1
    vol = lambda a: Volume(a, affine, kind="label")  # noqa: E731
    rows = qc.level_volumes(vol(np.zeros_like(bodies)), vol(modic), vol(bodies), {23: "L4"})
    assert [(r["level"], r["modic_I_ml"], r["modic_III_ml"]) for r in rows] == [
        ("L4", 1.0, 0.0),
        ("outside bodies", 0.0, 1.0),
    ]


def _level_volumes_by_flat_arrays(bme_mask, modic_map, vertebrae, level_names):
    """What level_volumes computed before session 13: the canonical arrays copied flat, the
    mean heights as float sums (the reference the faster counting must equal)."""
    canon = qc._canonical({"bme": bme_mask, "modic": modic_map, "bodies": vertebrae})
    bodies = canon.arrays["bodies"].astype(np.intp).ravel()
    n = int(bodies.max(initial=0)) + 1
    size = np.bincount(bodies, minlength=n)
    z = np.broadcast_to(np.arange(canon.arrays["bodies"].shape[2]), canon.arrays["bodies"].shape)
    height = np.bincount(bodies, weights=z.ravel(), minlength=n) / np.maximum(size, 1)
    bme = np.bincount(bodies[canon.arrays["bme"].ravel() > 0], minlength=n)
    flat_modic = canon.arrays["modic"].ravel()
    modic = {v: np.bincount(bodies[flat_modic == v], minlength=n) for v in (1, 2, 3)}
    return size, height, bme, modic


@pytest.mark.parametrize("axes", [np.eye(3), SAGITTAL_PSR, -SAGITTAL_PSR])
def test_level_volumes_equal_the_flat_count_on_any_axis_order(axes):
    rng = np.random.default_rng(3)
    affine = ras_affine(axes, (0.8, 0.7, 3.5))
    bodies = rng.integers(0, 6, (30, 24, 9)).astype(np.uint8)
    bodies[bodies == 4] = 0  # an id missing
    bme = (rng.random(bodies.shape) < 0.1).astype(np.uint8)
    modic = rng.integers(0, 4, bodies.shape).astype(np.uint8) * (rng.random(bodies.shape) < 0.2)
    vol = lambda a: Volume(a, affine, kind="label")  # noqa: E731
    names = {i: f"body {i}" for i in range(1, 6)}
    rows = qc.level_volumes(vol(bme), vol(modic), vol(bodies), names)
    size, height, bme_count, modic_count = _level_volumes_by_flat_arrays(
        vol(bme), vol(modic), vol(bodies), names
    )
    expected_order = sorted(np.flatnonzero(size[1:]) + 1, key=lambda i: -height[i])
    assert [r["id"] for r in rows if r["id"] is not None] == [int(i) for i in expected_order]
    ml = vol(bodies).grid.voxel_volume_mm3 / 1000
    for r in rows:
        index = 0 if r["id"] is None else r["id"]
        assert r["bme_ml"] == round(float(bme_count[index] * ml), qc.ML_DECIMALS)
        assert r["modic_II_ml"] == round(float(modic_count[2][index] * ml), qc.ML_DECIMALS)


def test_png_bytes_decode_to_the_same_pixels_and_are_reproducible(phantom_inputs, tmp_path):
    from PIL import Image

    panel = _montage(phantom_inputs, n_slices=1).panels[1]
    first = qc.write_png(panel.rgb, tmp_path / "qc" / "panel.png")
    assert list(first.parent.iterdir()) == [first]  # no temporary file left behind
    with Image.open(first) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), panel.rgb)
    assert qc.png_bytes(panel.rgb) == first.read_bytes() == panel.png()
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with Image.open(qc.write_png(grey, tmp_path / "grey.png")) as image:
        assert np.array_equal(np.asarray(image), grey)
    with pytest.raises(ValueError, match="uint8"):
        qc.png_bytes(np.zeros((2, 2, 4), np.uint8))
