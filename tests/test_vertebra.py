"""Body geometry: axes, height, endplate depths, marrow on anisotropic and oblique grids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bmetoolkit.spine.labels import VertebraLabels
from bmetoolkit.spine.vertebra import AUTOMATIC_MAX_TILT_DEG, COARSE_SI_MM, body_geometries
from bmetoolkit.volume import Grid, Volume
from tests.helpers import SAGITTAL_PSR, ras_affine, rotation

#: Sagittal: i -> posterior (1 mm), j -> superior (1 mm), k -> right (3 mm slices), slightly
#: oblique (rotated about the vertical axis).
OBLIQUE = ras_affine(
    SAGITTAL_PSR, (1.0, 1.0, 3.0), rotations=(("z", 6.0),), origin=(-15.0, 30.0, -40.0)
)


def world_coordinates(grid: Grid) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), axis=-1)
    return grid.voxel_to_world(ijk.reshape(-1, 3)).reshape(*grid.shape, 3)


def tilted_box(
    grid: Grid, centre: np.ndarray, *, tilt_deg: float, half_mm=(12.0, 15.0, 10.0)
) -> np.ndarray:
    """Voxels whose centre lies in a box (half-extents LR, AP, SI) rotated about LR."""
    local = (world_coordinates(grid) - centre) @ rotation("x", tilt_deg)  # R.T applied per row
    return np.all(np.abs(local) <= np.asarray(half_mm), axis=-1)


def labels_of(mask: np.ndarray, affine: np.ndarray, body_id=23, level="L4") -> VertebraLabels:
    data = np.where(mask, body_id, 0).astype(np.uint8)
    return VertebraLabels(Volume(data, affine, kind="label"), {body_id: level}, "verse")


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def face_layer(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (computed independently)."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1, 1:-1].copy()
    for axis in range(3):
        for shift in (1, -1):
            inner &= np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    return mask & ~inner


@pytest.mark.parametrize("tilt", [-15.0, 0.0, 12.0])
def test_si_axis_recovered_and_points_up(tilt):
    grid = Grid((48, 48, 12), OBLIQUE)
    centre = grid.voxel_to_world([[24, 24, 6]])[0]
    mask = tilted_box(grid, centre, tilt_deg=tilt)
    (body,) = body_geometries(labels_of(mask, grid.affine), cortex_mm=0.5)
    expected_si = rotation("x", tilt) @ np.array([0.0, 0.0, 1.0])
    assert angle_deg(body.axes[2], expected_si) < 3.0
    assert body.axes[2][2] > 0  # towards the head
    assert body.axes[0][1] > 0.9  # AP points anteriorly
    np.testing.assert_allclose(body.axes @ body.axes.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(body.axes) > 0  # AP x LR = SI
    # the box centre is the centroid (voxelisation is nearly symmetric)
    assert np.linalg.norm(body.centroid_ras - centre) < 1.0
    # height within one voxel of 20 mm
    assert abs(body.height_mm - 20.0) <= body.si_extent_mm
    # AP half-extent within one voxel of 15 mm, LR spans the 24 mm box
    assert abs(body.ap_half_mm - 15.0) <= 1.0
    assert 0.9 <= body.si_extent_mm <= 1.0 + 1e-9  # the 1 mm SI step, slightly tilted


def test_tilt_changes_the_axis():
    """Control: an untilted box is not read as tilted (the angle check can fail)."""
    grid = Grid((48, 48, 12), OBLIQUE)
    centre = grid.voxel_to_world([[24, 24, 6]])[0]
    (flat,) = body_geometries(labels_of(tilted_box(grid, centre, tilt_deg=0), OBLIQUE), cortex_mm=1)
    (tilted,) = body_geometries(
        labels_of(tilted_box(grid, centre, tilt_deg=15), OBLIQUE), cortex_mm=1
    )
    assert angle_deg(flat.axes[2], tilted.axes[2]) > 12.0


def test_depths_add_up_to_the_column_height():
    grid = Grid((48, 48, 12), OBLIQUE)
    centre = grid.voxel_to_world([[24, 24, 6]])[0]
    mask = tilted_box(grid, centre, tilt_deg=10.0)
    (body,) = body_geometries(labels_of(mask, grid.affine), cortex_mm=0.5)
    total = body.depth_superior + body.depth_inferior
    # per voxel: the column height plus the voxel's own extent (depths run to far edges)
    central = (np.abs(body.ap - body.ap_center_mm) < 5) & (np.abs(body.lr) < 5)
    assert central.sum() > 50
    np.testing.assert_allclose(
        total[central], body.height_mm + body.si_extent_mm, atol=body.si_extent_mm
    )
    assert body.depth_superior.min() == pytest.approx(body.si_extent_mm, abs=1e-4)
    assert body.depth_inferior.min() == pytest.approx(body.si_extent_mm, abs=1e-4)
    assert abs(body.depth_superior[central].max() - body.height_mm) <= body.si_extent_mm
    # the superior depth grows downwards, i.e. against the SI coordinate
    assert np.corrcoef(body.depth_superior, body.si)[0, 1] < -0.95
    assert np.corrcoef(body.depth_inferior, body.si)[0, 1] > 0.95
    assert body.depth("superior") is body.depth_superior
    assert body.depth("inferior") is body.depth_inferior


def test_axis_aligned_box_exact_numbers():
    """RAS box 30 (LR) x 24 (AP) x 16 (SI) voxels of 1 x 1 x 1 mm: exact depths and height."""
    data = np.zeros((40, 34, 26), bool)
    data[5:35, 5:29, 5:21] = True
    (body,) = body_geometries(labels_of(data, np.eye(4)), cortex_mm=0.5)
    assert body.height_mm == 16.0
    assert body.n_columns == 30 * 24
    assert body.depth_superior.max() == 16.0 and body.depth_inferior.max() == 16.0
    np.testing.assert_allclose(body.depth_superior + body.depth_inferior, 17.0)
    assert body.ap_half_mm == 12.0
    np.testing.assert_allclose(body.centroid_ras, [19.5, 16.5, 12.5])


def test_marrow_excludes_outer_layer_on_thick_slices():
    """4 mm slices along LR: the outer slice is not marrow however thick it is."""
    affine = ras_affine(SAGITTAL_PSR, (0.8, 0.8, 4.0))  # i -> P, j -> S, k -> R
    data = np.zeros((40, 40, 12), bool)
    data[6:34, 8:30, 2:10] = True  # 28 x 22 voxels x 8 slices
    (body,) = body_geometries(labels_of(data, affine), cortex_mm=0.5)
    marrow = np.zeros(data.size, bool)
    marrow[body.marrow_index] = True
    marrow = marrow.reshape(data.shape)
    expected = np.zeros_like(data)
    expected[7:33, 9:29, 3:9] = True  # one voxel layer off every face
    np.testing.assert_array_equal(marrow, expected)
    layer = face_layer(data)
    inside = np.zeros(data.size, np.float32)
    inside[body.index] = body.inside_mm
    assert (inside.reshape(data.shape)[layer] == 0).all()
    # second layer in plane: 0.8 mm from the rim; second slice: 4 mm from it
    assert inside.reshape(data.shape)[7, 20, 5] == pytest.approx(0.8)
    assert inside.reshape(data.shape)[20, 20, 3] == pytest.approx(4.0)


def test_cortex_mm_is_physical_depth():
    """cortex_mm 1.0 drops a second in-plane layer (0.8 mm deep) but not the second slice."""
    affine = ras_affine(SAGITTAL_PSR, (0.8, 0.8, 4.0))
    data = np.zeros((40, 40, 12), bool)
    data[6:34, 8:30, 2:10] = True
    (thin,) = body_geometries(labels_of(data, affine), cortex_mm=0.5)
    (thick,) = body_geometries(labels_of(data, affine), cortex_mm=1.0)
    marrow = np.zeros(data.size, bool)
    marrow[thick.marrow_index] = True
    expected = np.zeros_like(data)
    expected[8:32, 10:28, 3:9] = True
    np.testing.assert_array_equal(marrow.reshape(data.shape), expected)
    assert thick.marrow.sum() < thin.marrow.sum()
    assert set(thick.marrow_index) <= set(thin.marrow_index)


def test_marrow_excludes_layer_on_tilted_body():
    grid = Grid((48, 48, 12), OBLIQUE)
    centre = grid.voxel_to_world([[24, 24, 6]])[0]
    mask = tilted_box(grid, centre, tilt_deg=12.0)
    (body,) = body_geometries(labels_of(mask, grid.affine), cortex_mm=0.5)
    marrow = np.zeros(mask.size, bool)
    marrow[body.marrow_index] = True
    marrow = marrow.reshape(mask.shape)
    layer = face_layer(mask)
    assert marrow.any() and not (marrow & layer).any()
    assert (marrow | layer).sum() <= mask.sum()
    # every marrow voxel is deeper than 0.5 mm: its face neighbours are all body voxels
    assert not (marrow & ~ndimage.binary_erosion(mask)).any()


def test_s1_has_only_a_superior_endplate_and_bodies_in_label_order():
    data = np.zeros((30, 30, 60), np.uint8)
    data[5:25, 5:25, 4:16] = 26  # S1 at the bottom (RAS: k is superior)
    data[5:25, 5:25, 22:34] = 24
    data[5:25, 5:25, 40:52] = 23
    labels = VertebraLabels(
        Volume(data, np.eye(4), kind="label"), {23: "L4", 24: "L5", 26: "S1"}, "verse"
    )
    bodies = body_geometries(labels, cortex_mm=0.5)
    assert [b.name for b in bodies] == ["L4", "L5", "S1"]
    assert [b.body_id for b in bodies] == [23, 24, 26]
    assert bodies[2].endplates == ("superior",)
    assert bodies[0].endplates == ("superior", "inferior")
    assert bodies[0].centroid_ras[2] > bodies[1].centroid_ras[2] > bodies[2].centroid_ras[2]
    # every index belongs to its own body
    for b in bodies:
        assert (data.ravel()[b.index] == b.body_id).all()
        assert len(b.index) == np.count_nonzero(data == b.body_id)


def test_unknown_level_names_and_missing_ids():
    data = np.zeros((30, 30, 30), np.uint8)
    data[5:25, 5:25, 8:22] = 2
    labels = VertebraLabels(Volume(data, np.eye(4), kind="label"), {1: None, 2: None}, "binary")
    bodies = body_geometries(labels, cortex_mm=0.5)  # id 1 has no voxel: skipped
    assert [(b.body_id, b.name, b.level) for b in bodies] == [(2, "body 2", None)]
    assert bodies[0].endplates == ("superior", "inferior")


def test_touches_border():
    affine = ras_affine(SAGITTAL_PSR, (1.0, 1.0, 3.0))
    inside = np.zeros((40, 40, 12), bool)
    inside[8:32, 10:28, 2:10] = True
    (body,) = body_geometries(labels_of(inside, affine), cortex_mm=0.5)
    assert body.touches_border is False
    for cut in (np.s_[0:32, 10:28, 2:10], np.s_[8:32, 10:40, 2:10], np.s_[8:32, 10:28, 0:10]):
        edge = np.zeros_like(inside)
        edge[cut] = True
        (body,) = body_geometries(labels_of(edge, affine), cortex_mm=0.5)
        assert body.touches_border is True


def test_the_field_of_view_edge_is_a_surface_along_thick_slices():
    """A body cut by the first slice of a thin slab of 4 mm slices: that slice is its
    outermost layer (it may hold the lateral wall in partial volume), not marrow; before,
    the array's edge was never a surface. Along 1 mm steps the edge is still not one."""
    data = np.zeros((40, 34, 6), bool)
    data[0:30, 5:29, 0:4] = True  # cut by the first row (1 mm) and the first slice (4 mm)
    (body,) = body_geometries(labels_of(data, np.diag([1.0, 1.0, 4.0, 1.0])), cortex_mm=0.5)
    i, _, k = np.unravel_index(body.index, data.shape)
    assert not body.marrow[k == 0].any() and float(body.inside_mm[k == 0].max()) == 0.0
    assert body.marrow[k == 1].any() and not body.marrow[k == 3].any()
    assert body.marrow[(i == 0) & (k == 1)].any()  # the 1 mm cut face stays marrow


def test_clearance_on_the_box_equals_the_whole_array():
    from bmetoolkit.spine.vertebra import _clearance, _clearance_in_box
    from tests.test_labels import _blobby_masks

    for mask, spacing in _blobby_masks():
        boxed = _clearance(mask, spacing)
        assert boxed.max() > 0
        # the whole array, with the edge along thick slices as background beyond it
        pad = [(1, 1) if step > COARSE_SI_MM else (0, 0) for step in spacing]
        inner = tuple(slice(a, a + n) for (a, _), n in zip(pad, mask.shape, strict=True))
        whole = _clearance_in_box(np.pad(mask, pad), spacing)[inner]
        np.testing.assert_array_equal(boxed, whole)


def test_a_body_narrower_than_high_keeps_its_endplates_along_the_spine():
    """A body cut to a thin slab (LR 12 mm, lower than its 20 mm height) between two whole
    neighbours: its least extent is LR, but its SI axis follows the spine's course, so its
    endplates are not its side walls (on 4 mm slices the voxels along that axis would be 4 mm
    and switch the whole analysis to coarse-voxel rules)."""
    affine = ras_affine(SAGITTAL_PSR, (1.0, 1.0, 4.0), rotations=(("x", 10.0),))
    grid = Grid((60, 120, 14), affine)
    centre = grid.voxel_to_world([[30, 60, 7]])[0]
    step = rotation("x", 10.0) @ np.array([0.0, 0.0, 30.0])
    data = np.zeros(grid.shape, np.uint8)
    for body_id, offset, half in (
        (22, step, (24, 15, 10)),
        (23, 0, (6, 15, 10)),
        (24, -step, (24, 15, 10)),
    ):
        data[tilted_box(grid, centre + offset, tilt_deg=10.0, half_mm=half)] = body_id
    labels = VertebraLabels(
        Volume(data, affine, kind="label"), {22: "L3", 23: "L4", 24: "L5"}, "verse"
    )
    upper, thin, lower = body_geometries(labels, cortex_mm=1.0)
    expected_si = rotation("x", 10.0) @ np.array([0.0, 0.0, 1.0])
    for body in (upper, thin, lower):
        assert angle_deg(body.axes[2], expected_si) < 5.0, body.name
        assert body.si_extent_mm < 1.5  # the in-plane pixel, not the 4 mm slice
    assert abs(thin.height_mm - 20.0) <= 1.5
    # control: alone (no neighbours, no course) its least extent is LR, the slice direction
    (alone,) = body_geometries(labels_of(data == 23, affine), cortex_mm=1.0)
    assert angle_deg(alone.axes[2], expected_si) > 60.0


def test_an_automatic_body_between_two_neighbours_takes_the_spines_course():
    """An outline lacking its upper quarter on one side (an automatic body that missed part
    of its lateral sections) turns its least extent; between two neighbours an automatic
    body's SI axis is then the line between their centroids. A user's outline keeps its own
    shape (control), and so do the bodies at either end of the spine."""
    affine = ras_affine(SAGITTAL_PSR, (1.0, 1.0, 4.0), rotations=(("x", 10.0),))
    grid = Grid((60, 120, 14), affine)
    centre = grid.voxel_to_world([[30, 60, 7]])[0]
    step = rotation("x", 10.0) @ np.array([0.0, 0.0, 30.0])
    data = np.zeros(grid.shape, np.uint8)
    for body_id, offset in ((22, step), (23, 0), (24, -step)):
        data[tilted_box(grid, centre + offset, tilt_deg=10.0, half_mm=(24, 15, 10))] = body_id
    local = (world_coordinates(grid) - centre) @ rotation("x", 10.0)
    data[(data == 23) & (local[..., 0] > 4) & (local[..., 2] > 0)] = 0  # right upper quarter
    expected_si = rotation("x", 10.0) @ np.array([0.0, 0.0, 1.0])
    levels = {22: "L3", 23: "L4", 24: "L5"}
    axes = {
        convention: [
            body.axes
            for body in body_geometries(
                VertebraLabels(Volume(data, affine, kind="label"), levels, convention),
                cortex_mm=1.0,
            )
        ]
        for convention in ("verse", "automatic")
    }
    assert angle_deg(axes["verse"][1][2], expected_si) > 6.0  # its own axis, beyond 5 degrees
    assert angle_deg(axes["automatic"][1][2], expected_si) < 1.0  # the course
    for end in (0, 2):
        np.testing.assert_allclose(axes["automatic"][end], axes["verse"][end])

    # A smaller corner leans it 3 degrees, within AUTOMATIC_MAX_TILT_DEG: its own axis kept.
    data[tilted_box(grid, centre, tilt_deg=10.0, half_mm=(24, 15, 10))] = 23
    data[(data == 23) & (local[..., 0] > 12) & (local[..., 2] > 5)] = 0
    leaning = [
        body_geometries(
            VertebraLabels(Volume(data, affine, kind="label"), levels, convention), cortex_mm=1.0
        )[1].axes
        for convention in ("verse", "automatic")
    ]
    assert 2.0 < angle_deg(leaning[0][2], expected_si) < AUTOMATIC_MAX_TILT_DEG
    np.testing.assert_allclose(leaning[1], leaning[0])
