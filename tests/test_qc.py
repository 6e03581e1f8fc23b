"""QC figures: orientation, physical aspect ratio, overlays, labels, per-level volumes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

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


def _montage(inputs: dict, **kwargs) -> Figure:
    return qc.sagittal_montage(
        inputs["t1"],
        inputs["fluid"],
        inputs["bme_mask"],
        inputs["modic_map"],
        inputs["vertebrae"],
        inputs["level_names"],
        **kwargs,
    )


def _pixels(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


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


def test_montage_is_a_pyplot_free_figure_with_two_panels_per_slice(phantom_inputs):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = _montage(phantom_inputs, n_slices=3, title="sub-01")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6
    assert plt.get_fignums() == before  # nothing registered with pyplot
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split("\n")[0] for t in titles] == ["T1", "STIR"] * 3


def test_montage_identical_whatever_the_stored_orientation(phantom_inputs):
    reference = _pixels(_montage(phantom_inputs))
    for perm, flips in (((1, 0, 2), (0,)), ((2, 1, 0), (1, 2)), ((0, 1, 2), (0, 1, 2))):
        moved = {
            key: _restored(value, perm, flips) if isinstance(value, Volume) else value
            for key, value in phantom_inputs.items()
        }
        assert moved["t1"].grid.axcodes != phantom_inputs["t1"].grid.axcodes
        assert np.array_equal(_pixels(_montage(moved)), reference), (perm, flips)


def test_montage_changes_when_the_affine_does_not_follow_the_data(phantom_inputs):
    """The orientation test above can fail: flipped data with the old affine looks different."""
    reference = _pixels(_montage(phantom_inputs))
    wrong = {
        key: value.with_data(np.flip(value.data, axis=1)) if isinstance(value, Volume) else value
        for key, value in phantom_inputs.items()
    }
    assert not np.array_equal(_pixels(_montage(wrong)), reference)


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
    fig = qc.sagittal_montage(anterior, superior, empty, empty, empty, {}, n_slices=1)
    t1_image, fluid_image = (ax.images[0] for ax in fig.axes)
    a_rows = np.asarray(t1_image.get_array())
    s_rows = np.asarray(fluid_image.get_array())
    assert np.all(np.diff(a_rows, axis=1) < 0)  # anterior (larger y) on the left
    assert np.all(np.diff(s_rows, axis=0) < 0)  # superior (larger z) at the top
    left, right, bottom, top = t1_image.get_extent()
    rows, cols = a_rows.shape
    assert (right - left) / cols == pytest.approx(0.7)  # AP pixel size, mm
    assert (bottom - top) / rows == pytest.approx(0.8)  # SI pixel size, mm
    assert fig.axes[0].get_aspect() == 1.0


def test_overlays_levels_and_legend(phantom_inputs):
    fig = _montage(phantom_inputs, n_slices=2)
    ax = fig.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert {"L1", "L2", "L3", "L4", "L5", "S1"} <= texts
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["Modic I", "Modic II", "Modic III", "BME"]
    # Filled areas in each Modic type's colour, and the dashed BME contour.
    colours = {
        tuple(np.round(c.get_facecolor()[0][:3], 3))
        for c in ax.collections
        if len(c.get_facecolor())
    }
    from matplotlib.colors import to_rgb

    for value in (1, 2, 3):
        assert tuple(np.round(to_rgb(qc.MODIC_COLORS[value]), 3)) in colours


def test_legend_says_when_a_finding_is_absent(phantom_inputs):
    nothing = phantom_inputs["bme_mask"].with_data(np.zeros_like(phantom_inputs["bme_mask"].data))
    fig = _montage({**phantom_inputs, "bme_mask": nothing, "modic_map": nothing})
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["Modic I (none)", "Modic II (none)", "Modic III (none)", "BME (none)"]


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


def test_bar_chart_shows_the_level_volumes(phantom_inputs):
    args = [phantom_inputs[k] for k in ("bme_mask", "modic_map", "vertebrae", "level_names")]
    rows = qc.level_volumes(*args)
    fig = qc.level_volume_chart(*args)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [r["level"] for r in rows]
    widths = [bar.get_width() for bar in ax.patches]
    expected = [
        r[key] for key in ("bme_ml", "modic_I_ml", "modic_II_ml", "modic_III_ml") for r in rows
    ]
    assert widths == pytest.approx(expected)


def test_save_figure_writes_a_png_atomically_and_reproducibly(phantom_inputs, tmp_path):
    args = [phantom_inputs[k] for k in ("bme_mask", "modic_map", "vertebrae", "level_names")]
    first = qc.save_figure(qc.level_volume_chart(*args), tmp_path / "qc" / "bars.png")
    data = first.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert list(first.parent.iterdir()) == [first]  # no temporary file left behind
    second = qc.save_figure(qc.level_volume_chart(*args), tmp_path / "again.png")
    assert second.read_bytes() == data


def test_pairs_wrap_into_rows(phantom_inputs):
    stacked = _montage(phantom_inputs, n_slices=3, pairs_per_row=1)
    assert len(stacked.axes) == 6
    positions = sorted({round(ax.get_position().y0, 3) for ax in stacked.axes})
    assert len(positions) == 3  # three rows of T1 | STIR
    assert stacked.get_figheight() > 2 * stacked.get_figwidth()
    wrapped = _montage(phantom_inputs, n_slices=3, pairs_per_row=2)
    shown = [ax for ax in wrapped.axes if ax.axison]
    assert len(wrapped.axes) == 8 and len(shown) == 6
