"""The fluid-alone canal's cuts labelled nested (bmetoolkit.spine.autoseg.canal): the same
candidate components, in the same order, as labelling each cut on the whole grid."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bmetoolkit.spine.autoseg.canal import (
    FLUID_ONLY_PERCENTILES,
    _nested_labels,
    outside_air,
)
from bmetoolkit.spine.autoseg.params import AutosegParameters


def _whole_grid_candidates(image, tissue, cut, spacing, min_length):
    """The components of ``tissue & (image > cut)`` at least ``min_length`` mm long
    (SI), in label order, as voxel index arrays of the whole grid."""
    labels, _ = ndimage.label(tissue & (image > cut))
    out = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None and (box[1].stop - box[1].start) * spacing[1] >= min_length:
            out.append(np.flatnonzero(labels == label))
    return out


def _nested_candidates(labels, parts, offset, shape, spacing, min_length):
    out = []
    for label, part in enumerate(parts, start=1):
        if part is not None and (part[1].stop - part[1].start) * spacing[1] >= min_length:
            whole = np.zeros(shape, bool)
            box = tuple(slice(s.start + o, s.stop + o) for s, o in zip(part, offset, strict=True))
            whole[box] = labels[part] == label
            out.append(np.flatnonzero(whole))
    return out


def test_nested_cuts_find_the_whole_grids_long_components_in_order():
    rng = np.random.default_rng(7)
    params = AutosegParameters(canal_min_length_mm=12.0)
    checked = 0
    for _ in range(40):
        shape = (int(rng.integers(8, 30)), int(rng.integers(20, 60)), int(rng.integers(3, 9)))
        spacing = np.array([1.0, float(rng.choice([0.5, 1.0, 2.0])), 3.0])
        # smoothed noise: blobs of all lengths, some joined at the lower cuts only
        image = ndimage.gaussian_filter(rng.random(shape), (1.0, 3.0, 0.7)).astype(np.float32)
        tissue = rng.random(shape) > 0.05
        cuts = np.percentile(image[tissue], FLUID_ONLY_PERCENTILES)
        nested = _nested_labels(image, tissue, cuts, spacing, params)
        assert len(nested) == len(cuts)
        for cut, (labels, parts, offset) in zip(cuts, nested, strict=True):
            expected = _whole_grid_candidates(
                image, tissue, cut, spacing, params.canal_min_length_mm
            )
            found = _nested_candidates(
                labels, parts, offset, shape, spacing, params.canal_min_length_mm
            )
            assert len(found) == len(expected)
            for a, b in zip(found, expected, strict=True):
                np.testing.assert_array_equal(a, b)
            checked += len(expected)
    assert checked > 100  # the trials hold candidates at many cuts


def test_no_long_component_at_a_lower_cut_leaves_the_higher_cuts_empty():
    image = np.zeros((10, 30, 4), np.float32)
    image[2:4, 5:9, 1] = 2.0  # 4 mm long: shorter than the canal
    tissue = np.ones(image.shape, bool)
    cuts = np.array([1.5, 1.0, 0.5])
    nested = _nested_labels(image, tissue, cuts, np.ones(3), AutosegParameters())
    assert [len(parts) for _, parts, _ in nested] == [0, 0, 1]


def test_outside_air_is_the_air_reaching_the_front_or_back_face():
    rng = np.random.default_rng(3)
    for _ in range(20):
        tissue = ndimage.binary_opening(rng.random((20, 15, 6)) > 0.35)
        labels, _ = ndimage.label(~tissue)
        faces = np.union1d(labels[0].ravel(), labels[-1].ravel())
        np.testing.assert_array_equal(outside_air(tissue), np.isin(labels, faces[faces > 0]))
