"""The spine analysis on the bodies' box equals the analysis on the whole grid.

``analyze_study`` works on the box of the bodies widened by what its stages read around
them, and reads positions and images at each voxel's place on the study grid (integer
offsets), so every map, table and number is the whole grid's to the last bit.
"""

import numpy as np
import pytest

from bmetoolkit import analysis
from bmetoolkit.analysis import analyze_study
from bmetoolkit.bones.crop import cropped_grid
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.spine.labels import vertebral_bodies
from bmetoolkit.spine.vertebra import body_geometries
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume

#: Rows of the T1 grid kept (its second axis runs head to feet): the field of view cuts L2
#: through its superior endplate and L4 through its inferior one, where the lesions are.
KEPT = slice(43, 75)


def _cut(volume: Volume, rows: slice) -> Volume:
    box = (slice(0, volume.shape[0]), rows, slice(0, volume.shape[2]))
    affine = cropped_grid(volume.grid, box).affine
    return Volume(np.asarray(volume.data)[box], affine, kind=volume.kind, source=volume.source)


@pytest.fixture(scope="module")
def cut_study():
    """A small phantom (oblique, anisotropic T1 grid of 2.9 x 3.0 x 4.4 mm; T2 and STIR on
    other oblique grids) with Modic lesions at L2 and L4, its T1 field of view cut so that
    both lesioned bodies reach its edge."""
    phantom = make_phantom(3, lesions="mixed", config=PhantomConfig.small())
    study = Study.from_images(_cut(phantom.t1, KEPT), t2=phantom.t2, stir=phantom.stir)
    labels = vertebral_bodies(_cut(phantom.truth.vertebrae, KEPT))
    return study, labels


def _whole_grid(*args, **kwargs):
    grid = args[1]
    return tuple(slice(0, n) for n in grid.shape)


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_the_box_is_smaller_than_the_grid_and_reaches_its_edge(cut_study):
    study, labels = cut_study
    bodies = body_geometries(labels, cortex_mm=1.0)
    box = analysis._spine_box(bodies, study.grid, None, analysis.Parameters())
    sizes = [s.stop - s.start for s in box]
    assert np.prod(sizes) < 0.6 * np.prod(study.grid.shape)
    assert box[1] == slice(0, study.grid.shape[1])  # the bodies reach the field's edge
    assert sum(body.touches_border for body in bodies) >= 2


def test_the_analysis_on_the_box_equals_the_analysis_on_the_whole_grid(cut_study, monkeypatch):
    study, labels = cut_study
    boxed = analyze_study(study, labels)
    monkeypatch.setattr(analysis, "_spine_box", _whole_grid)
    whole = analyze_study(study, labels)
    assert boxed.lesion_rows, "the study should hold lesions"
    rows = study.grid.shape[1]
    edges = [row["bbox_voxels"].split(",")[1] for row in boxed.lesion_rows]
    # a lesion reaches the field's edge (its last voxel layer, which is the bodies' surface)
    assert any(
        e.startswith(("0:", "1:")) or e.endswith((f":{rows}", f":{rows - 1}")) for e in edges
    )
    for name in ("marrow", "bme_mask", "modic_map", "lesion_labels"):
        assert _same(getattr(boxed, name).data, getattr(whole, name).data), name
        assert np.array_equal(getattr(boxed, name).affine, getattr(whole, name).affine)
    assert boxed.ratios.keys() == whole.ratios.keys()
    for name in boxed.ratios:
        assert _same(boxed.ratios[name].data, whole.ratios[name].data), name
    assert boxed.wall_layer_ratios.keys() == whole.wall_layer_ratios.keys()
    for name in boxed.wall_layer_ratios:
        assert _same(boxed.wall_layer_ratios[name], whole.wall_layer_ratios[name]), name
    assert boxed.lesion_rows == whole.lesion_rows
    assert boxed.endplate_rows == whole.endplate_rows
    assert boxed.references == whole.references
    assert boxed.marrow_by_body == whole.marrow_by_body
    assert boxed.decision == whole.decision
    assert boxed.checks == whole.checks
    assert boxed.notes == whole.notes
    assert boxed.bodies is not None and len(boxed.bodies) == len(whole.bodies)
    for a, b in zip(boxed.bodies, whole.bodies, strict=True):
        assert _same(a.index, b.index)  # the result's bodies are on the study grid


def test_a_users_normal_region_outside_the_bodies_widens_the_box(cut_study, monkeypatch):
    study, labels = cut_study
    region = np.zeros(study.grid.shape, bool)
    bodies = body_geometries(labels, cortex_mm=1.0)
    box = analysis._spine_box(bodies, study.grid, None, analysis.Parameters())
    far = box[0].stop + 5  # beyond the bodies' box along the first axis
    region[far : far + 4, 10:20, 1:4] = True
    widened = analysis._spine_box(bodies, study.grid, region, analysis.Parameters())
    assert widened[0].stop >= far + 4 and widened[0].start == box[0].start


def test_the_reference_fitted_on_the_box_is_the_whole_grids_to_the_last_bit(cut_study):
    # The reference's field is fitted on the voxels' positions: on the box each position is
    # its place on the study grid (integer offset), not one from the box's own affine.
    study, labels = cut_study
    params = analysis.Parameters()
    bodies = body_geometries(labels, cortex_mm=params.cortex_mm)
    box = analysis._spine_box(bodies, study.grid, None, params)
    marrow = np.zeros(study.grid.shape, bool)
    regions = np.zeros(study.grid.shape, np.int32)
    for number, body in enumerate(bodies, start=1):
        marrow.flat[body.marrow_index] = True
        regions.flat[body.index] = number
    marrow &= study.analysable()
    names = {number: body.name for number, body in enumerate(bodies, start=1)}
    whole = analysis.marrow_ratios(study, marrow, regions, names, params)
    boxed = analysis.marrow_ratios(study, marrow[box], regions[box], names, params, box=box)
    for name in whole[1].log_residual:
        assert _same(boxed[1].log_residual[name], whole[1].log_residual[name]), name
        assert _same(boxed[0][name], whole[0][name][box]), name
    assert _same(boxed[2], whole[2][box])
