"""Steps of a run computed on less than the whole grid equal the whole grid's computation:
the coverage mask in slabs, the ratio images masked in place (the former ``np.where``
copy), the shell peeled body by body (the former grid-sized formula)."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit import analysis, resample
from bmetoolkit.params import Parameters
from bmetoolkit.ratios import shell_like
from bmetoolkit.resample import coverage_mask, voxel_mapping
from bmetoolkit.spine.labels import VertebraLabels
from bmetoolkit.spine.vertebra import body_geometries, on_grid
from bmetoolkit.volume import Grid, Volume
from tests.helpers import SAGITTAL_PSR, ras_affine


def _whole_grid_coverage(source: Grid, target: Grid) -> np.ndarray:
    """The coverage as computed before the slabs (each axis over the whole grid at once)."""
    matrix, offset = voxel_mapping(source, target)
    upper = np.asarray(source.shape, dtype=np.float64) - 0.5
    i, j, k = (np.arange(n, dtype=np.float64) for n in target.shape)
    inside = np.ones(target.shape, dtype=bool)
    for axis in range(3):
        plane = (
            offset[axis] + matrix[axis, 0] * i[:, None, None] + matrix[axis, 1] * j[None, :, None]
        )
        coordinate = plane + matrix[axis, 2] * k[None, None, :]
        inside &= coordinate >= -0.5
        inside &= coordinate < upper[axis]
    return inside


@pytest.fixture
def fluid_grid() -> Grid:
    """An oblique, anisotropic grid unlike the T1's, reaching past part of its field of view."""
    affine = ras_affine(
        SAGITTAL_PSR,
        (0.55, 0.63, 3.3),
        rotations=(("z", -4.0), ("x", 2.0), ("y", 3.0)),
        origin=(-26.0, 66.0, -88.0),
    )
    return Grid((120, 210, 13), affine)


@pytest.mark.parametrize("slab", [1, 1600, 7000, 10**9])  # one voxel ... the whole grid
def test_coverage_in_slabs_equals_the_whole_grid(oblique_t1_grid, fluid_grid, monkeypatch, slab):
    expected = _whole_grid_coverage(fluid_grid, oblique_t1_grid)
    assert 0.2 < expected.mean() < 0.9  # edges of the field of view inside the grid
    monkeypatch.setattr(resample, "_COVERAGE_SLAB", slab)
    assert np.array_equal(coverage_mask(fluid_grid, oblique_t1_grid), expected)


def test_ratios_masked_in_place_equal_the_where_copy(rng):
    shape = (12, 14, 5)
    fitted_on = rng.random(shape) < 0.4
    user_normal = rng.random(shape) < 0.1
    marrow = fitted_on & (rng.random(shape) < 0.7)  # some voxels left the marrow
    region = fitted_on | user_normal
    ratios = {}
    for name in ("t1", "stir"):
        ratio = np.full(shape, np.nan, np.float32)  # NaN outside the region, as marrow_ratios
        ratio[region] = rng.gamma(4.0, 0.25, np.count_nonzero(region)).astype(np.float32)
        ratios[name] = ratio
    expected = {name: np.where(marrow, r, np.nan).astype(np.float32) for name, r in ratios.items()}
    got = analysis._within_marrow(ratios, marrow, fitted_on, user_normal)
    for name, values in expected.items():
        assert got[name].dtype == np.float32
        assert got[name].tobytes() == values.tobytes()  # NaNs and values, bit for bit
    assert np.isfinite(got["t1"][user_normal & ~marrow]).sum() == 0  # the user's region too


def _labels_of_two_bodies(shape=(30, 24, 12)) -> Volume:
    """Two box-shaped bodies, one touching the edge of the array, on an anisotropic grid."""
    data = np.zeros(shape, np.uint8)
    data[3:14, 4:20, 2:10] = 22  # L3
    data[16:30, 5:21, 0:9] = 23  # L4, at the array's edge
    return Volume(data, np.diag([0.8, 0.9, 2.5, 1.0]), kind="label")


@pytest.mark.parametrize("with_t1", [True, False])
def test_shell_peeled_per_body_equals_the_grid_formula(rng, with_t1):
    labels = VertebraLabels(_labels_of_two_bodies(), {22: "L3", 23: "L4"}, "verse")
    bodies = body_geometries(labels, cortex_mm=1.0)
    shape = labels.bodies.shape
    marrow = on_grid(bodies, shape, lambda b: b.marrow, fill=False, dtype=bool)
    names = ("t1", "stir") if with_t1 else ("stir",)
    ratios = {name: rng.gamma(3.0, 0.3, shape).astype(np.float32) for name in names}
    ratios["stir"][0, 0, 0] = np.nan
    shell = {"endplate_mm": 3.0, "wall_mm": 1.5}
    params = Parameters()

    def within(body):
        return (body.nearest_depth < shell["endplate_mm"]) | (body.inside_mm < shell["wall_mm"])

    near = on_grid(bodies, shape, within, fill=False, dtype=bool)
    expected = marrow & ~(near & shell_like(ratios, "stir", params))
    assert 0 < np.count_nonzero(marrow & ~expected) < np.count_nonzero(marrow)  # some peeled
    analysis._peel_shell(marrow, bodies, ratios, "stir", shell, params)
    assert np.array_equal(marrow, expected)
