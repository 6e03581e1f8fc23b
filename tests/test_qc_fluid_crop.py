"""The QC montage reads the fluid image on the bodies' crop alone: the same panels as from
the image resampled whole, without resampling the rest of the field of view."""

import dataclasses

import nibabel as nib
import numpy as np
import pytest

from bmetoolkit.analysis import analyze_study
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.report import qc
from bmetoolkit.resample import ResampledVolume
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(5, lesions="mixed", config=PhantomConfig.small())


def _figures(images, *, whole_first: bool, monkeypatch):
    t1, t2, stir, vertebrae = images
    study = Study.from_images(t1, t2=t2, stir=stir)
    result = analyze_study(study, vertebrae)
    assert isinstance(study.fluid, ResampledVolume)
    with monkeypatch.context() as patch:
        if whole_first:  # as before: the whole grid resampled and reoriented, then cut
            patch.setattr(qc, "_canonical_box", _whole_then_box)
        return result.qc_figures("s"), study.fluid


def _whole_then_box(volume, ornt, box):
    whole = nib.orientations.apply_orientation(np.asarray(volume.data), ornt)
    out = np.zeros(whole.shape, whole.dtype)
    out[box] = whole[box]
    return out


@pytest.mark.parametrize("turn", [False, True])
def test_the_montage_from_the_fluid_crop_equals_the_whole_images(phantom, turn, monkeypatch):
    images = (phantom.t1, phantom.t2, phantom.stir, phantom.truth.vertebrae)
    if turn:  # stored axes in another order and direction
        images = (_turn(phantom.t1), phantom.t2, phantom.stir, _turn(phantom.truth.vertebrae))
    lazy, fluid = _figures(images, whole_first=False, monkeypatch=monkeypatch)
    assert not fluid.resolved  # the page did not resample the whole field of view
    whole, _ = _figures(images, whole_first=True, monkeypatch=monkeypatch)
    assert len(lazy.montage.panels) == len(whole.montage.panels) > 0
    for a, b in zip(lazy.montage.panels, whole.montage.panels, strict=True):
        assert (a.contrast, a.position, a.levels) == (b.contrast, b.position, b.levels)
        assert np.array_equal(a.rgb, b.rgb)
    assert dataclasses.replace(lazy.montage, panels=()) == dataclasses.replace(
        whole.montage, panels=()
    )
    assert lazy.level_rows == whole.level_rows


@pytest.mark.parametrize("flips", [(1, 1, 1), (-1, 1, 1), (1, -1, -1), (-1, -1, 1)])
def test_a_canonical_box_holds_the_whole_arrays_values(flips):
    rng = np.random.default_rng(3)
    data = rng.normal(size=(7, 9, 5)).astype(np.float32)
    affine = np.eye(4)[:, [1, 2, 0, 3]] @ np.diag([*flips, 1.0])  # stored axes permuted
    volume = Volume(data, affine)
    ornt = nib.orientations.io_orientation(affine)
    for box in [(slice(None), slice(2, 6), slice(1, 8)), (slice(3, 5), slice(0, 7), slice(4, 5))]:
        assert np.array_equal(
            qc._canonical_box(volume, ornt, box), _whole_then_box(volume, ornt, box)
        )


def _turn(volume: Volume) -> Volume:
    """``volume`` stored with its first axis reversed and its last two swapped (the same
    voxels in the world)."""
    data = np.asarray(volume.data)[::-1].transpose(0, 2, 1)
    affine = volume.affine.copy()
    affine[:3, 3] = volume.affine[:3, 3] + volume.affine[:3, 0] * (volume.shape[0] - 1)
    affine[:3, :3] = np.stack(
        [-volume.affine[:3, 0], volume.affine[:3, 2], volume.affine[:3, 1]], 1
    )
    return Volume(np.ascontiguousarray(data), affine, kind=volume.kind, source=volume.source)
