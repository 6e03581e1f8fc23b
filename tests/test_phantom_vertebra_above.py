"""The opt-in vertebra above T11 (T10) of the phantom (``render_above``, ``vertebra_above``).

Off by default: the phantom draws nothing above the T10/T11 disc but its background. On,
T10 is a healthy body with marrow, cortex, endplates, canal and posterior elements,
labelled 17 in the truth, and every other draw stays as without it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.data.phantom.anatomy import AnatomyConfig, Tissue, build_spine
from bmetoolkit.data.phantom.randomize import draw_case, make_randomized_phantom, render_case
from bmetoolkit.data.phantom.scene import voxel_centres

SEED = 0
T10, T11 = 17, 18


@pytest.fixture(scope="module")
def pair():
    return (
        make_randomized_phantom(SEED, small=True),
        make_randomized_phantom(SEED, small=True, vertebra_above=True),
    )


def _si_in_t11(study, grid) -> np.ndarray:
    """Each voxel centre's height (mm) in T11's own frame (0 at its centre, up positive)."""
    return study.spine.vertebra("T11").local(*voxel_centres(grid))[2]


def test_the_spine_has_t10_above_t11_only_when_asked():
    off = build_spine(AnatomyConfig())
    on = build_spine(AnatomyConfig(render_above=True))
    assert not off.above.rendered and off.bodies == off.vertebrae and off.beyond is None
    assert on.above.rendered and on.above.level == "T10" and on.above.verse_id == T10
    assert on.levels == off.levels  # lesions and per-level draws stay T11-S1
    assert on.vertebra("T10") is on.above and on.bodies[-1] is on.above
    assert np.allclose(on.above.centre, off.above.centre)
    assert on.beyond is not None and on.beyond.centre[2] > on.above.centre[2]
    with pytest.raises(ValueError, match="no vertebra above"):
        build_spine(AnatomyConfig(levels=("C1", "C2"), render_above=True))


def test_t10_is_labelled_above_the_t11_disc(pair):
    off, on = pair
    labels = np.asarray(on.truth.vertebrae.data)
    assert (labels == T10).sum() > 20
    assert not (np.asarray(off.truth.vertebrae.data) == T10).any()
    si = _si_in_t11(on, on.truth.vertebrae.grid)
    top_of_t11 = on.spine.vertebra("T11").height_mm / 2
    assert si[labels == T10].min() > top_of_t11  # above T11's top, across the disc
    assert si[labels == T11].max() < si[labels == T10].min()
    tissue = np.asarray(on.truth.masks["tissue"].data)[labels == T10]
    assert set(np.unique(tissue)) <= {Tissue.CORTEX, Tissue.MARROW}


@pytest.fixture(scope="module")
def unbiased():
    """T10 on, without the case's bias field (log-linear along the spine, it grows beyond
    its top body: T10 and T11 are its brightest or darkest bodies)."""
    draws = draw_case(SEED, small=True, vertebra_above=True)
    return render_case(replace(draws, texture=replace(draws.texture, bias=None)))


@pytest.mark.parametrize("name", ["t1", "t2"])
def test_t10_shows_the_signal_of_marrow(unbiased, name):
    image = np.asarray(getattr(unbiased, name).data).astype(float)
    masks = unbiased.truth.grid_masks[name]
    labels, tissue = np.asarray(masks["vertebrae"].data), np.asarray(masks["tissue"].data)
    marrow = tissue == Tissue.MARROW
    t10 = np.median(image[marrow & (labels == T10)])
    levels = np.median(image[marrow & (labels > T10)])
    # its own texture, variation and the coil's SI ripple aside (T1: viscera is 0.5 marrow)
    assert 0.8 < t10 / levels < 1.25


def test_every_other_draw_and_voxel_stays_as_without_it(pair):
    off, on = pair
    base, extra = (
        draw_case(SEED, small=True).to_dict(),
        draw_case(SEED, small=True, vertebra_above=True).to_dict(),
    )
    assert extra["surroundings"] == base["surroundings"] | {"render_above": True}
    for name in base:
        if name not in ("surroundings", "texture"):
            assert extra[name] == base[name], name
    for name, drawn in base["texture"].items():
        kept = extra["texture"][name]
        if isinstance(drawn, (list, tuple)):  # spots, bands, veins: T10's own come after
            assert kept[: len(drawn)] == drawn and all(
                f["level"] == "T10" for f in kept[len(drawn) :]
            )
        else:
            assert kept == drawn, name
    assert extra["texture"]["above_gain"] and "above_gain" not in base["texture"]
    labels_off, labels_on = (np.asarray(s.truth.vertebrae.data) for s in (off, on))
    assert np.array_equal(labels_off, np.where(labels_on == T10, 0, labels_on))
    for mask in ("bme_mask", "modic_map"):
        assert np.array_equal(on.truth.masks[mask].data, off.truth.masks[mask].data)
    assert on.truth.endplates == off.truth.endplates
    for name in ("t1", "t2", "stir"):
        changed = np.asarray(getattr(on, name).data) != np.asarray(getattr(off, name).data)
        assert changed.any()
        assert _si_in_t11(on, getattr(on, name).grid)[changed].min() > 0  # only above T11


def test_the_plain_phantom_renders_t10_too():
    config = replace(PhantomConfig.small(), anatomy=AnatomyConfig(render_above=True))
    study = make_phantom(1, lesions="modic1", config=config)
    labels = np.asarray(study.truth.vertebrae.data)
    assert (labels == T10).sum() > 20
    assert {row["level"] for row in study.truth.endplates} == set(study.spine.levels)
    image, tissue = np.asarray(study.t2.data).astype(float), None
    masks = study.truth.grid_masks["t2"]
    tissue = np.asarray(masks["tissue"].data) == Tissue.MARROW
    on_t2 = np.asarray(masks["vertebrae"].data)
    assert (
        0.75
        < np.median(image[tissue & (on_t2 == T10)]) / np.median(image[tissue & (on_t2 == T11)])
        < 1.35
    )
