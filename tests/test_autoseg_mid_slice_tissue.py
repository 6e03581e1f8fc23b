"""A plain T2 alone (session 33): bodies found on the mid-sagittal slice inside a seed of the
marrow-like tissue around the column. A segment too large for a body does not cover the
level of a segment as tall as a body; the body's region takes its lateral sections back from
the tissue's; its section is read on the slices beside the midline too.

Small synthetic canonical arrays (anterior, superior, right): each test builds the case the
rule is for and checks that the previous behaviour fails on it.
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.checks import check_sizes

SPACING = np.ones(3)
PARAMS = AutosegParameters()


def _tall_small_in_tissue() -> np.ndarray:
    """Four bodies 20 voxels tall (20 x 20 x 10), a segment 6 x 6 in section and 20 rows
    tall at the empty level between the second and third, and a segment of tissue far
    larger than a body spanning every row in front of them."""
    bodies = np.zeros((90, 160, 12), np.int32)
    for label, low in enumerate((5, 35, 95, 125), start=1):
        bodies[5:25, low : low + 20, 1:11] = label
    bodies[10:16, 65:85, 3:9] = 5
    bodies[40:90, :, :] = 6  # 96 mL of tissue: dropped as too large
    return bodies


def test_a_segment_too_large_for_a_body_does_not_cover_a_tall_segments_level():
    bodies = _tall_small_in_tissue()
    before, notes = check_sizes(bodies, SPACING, PARAMS, tall_kept=0.8)
    assert before.max() == 4 and len(notes) == 2  # the tissue covers its rows: dropped
    kept, notes = check_sizes(bodies, SPACING, PARAMS, tall_kept=0.8, tall_over_large=True)
    assert kept.max() == 5 and len(notes) == 1  # only the tissue is dropped
    assert (kept[10:16, 65:85, 3:9] > 0).all() and not kept[40:90].any()


SLAB_SPACING = np.array([1.0, 1.0, 2.0])  # 1 mm in plane, 2 mm slices
MIDLINE = 10.0  # the slab is slices 7-13 (within 6 mm); 9-11 within 3 mm


def _seeds_with_a_vein(vein: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mid-slab seeds: three bodies' (labels 1-3, 27 x 23 voxels a slice) and one large
    seed (label 4) of the tissue in front of them, the whole height of the image, joined
    through slice 13 to the top body's seed. With ``vein`` an 11 mm band across the top
    body's mid-height on the midline slice (slice 10) only is no seed (a basivertebral vein
    or a lesion band): there its section is two pieces, each under ``small_body_fraction``
    of the others'. Returns the seed labels, the distance (mm) in front of the canal wall
    and the labels as labelled before any split (the same here)."""
    labels = np.zeros((90, 160, 21), np.int32)
    for label, low in enumerate((12, 48, 84), start=1):
        labels[14:41, low : low + 23, 7:14] = label
    labels[14:41, 120:143, 7:14] = 4  # the top body's seed ...
    labels[44:88, :, 7:14] = 4  # ... the tissue's ...
    labels[41:44, 120:143, 13] = 4  # ... joined through slice 13
    if vein:
        labels[14:41, 126:137, 10] = 0
    distance = np.repeat((np.arange(90) - 10.0)[:, None], 160, axis=1).astype(np.float32)
    return labels, distance, labels.copy()


def test_a_body_cut_by_a_vein_on_the_midline_slice_is_read_on_the_slice_beside_it():
    from dataclasses import replace

    from bmetoolkit.spine.autoseg.midline import mid_slice_seeds

    labels, distance, initial = _seeds_with_a_vein()
    keep = [1, 2, 3, 4]

    def added(params: AutosegParameters) -> list[np.ndarray]:
        out, _, kept = mid_slice_seeds(
            labels, 4, keep, initial, distance, MIDLINE, SLAB_SPACING, params
        )
        return [out == label for label in kept[len(keep) :]]

    assert added(replace(PARAMS, t2_mid_slice_reach_mm=0.0)) == []  # two small pieces
    found = added(PARAMS)
    assert len(found) == 1
    ap, si, lr = np.nonzero(found[0])
    assert si.min() >= 120 and si.max() <= 142 and ap.max() <= 40  # the top body's seed
    assert set(lr) <= set(range(7, 14))
    # Without the vein it is read on the midline slice, as before the rule.
    plain, distance, initial = _seeds_with_a_vein(vein=False)
    _, _, kept = mid_slice_seeds(
        plain, 4, keep, initial, distance, MIDLINE, SLAB_SPACING,
        replace(PARAMS, t2_mid_slice_reach_mm=0.0),
    )  # fmt: skip
    assert len(kept) == 5


def test_beside_the_midline_a_part_across_a_bodys_level_is_no_seed():
    from bmetoolkit.spine.autoseg.midline import mid_slice_seeds

    labels, distance, initial = _seeds_with_a_vein()
    # A strip of the tissue's seed behind the wall on slice 9, down across the third
    # body's level (rows 84-106) to the top body: shaped like a body's section in depth,
    # but it covers another body's level whole.
    labels[14:41, 120:143, 7:10] = 0  # the top body's seed is on slices 10-13 only
    labels[14:41, 126:137, 11] = 0  # and cut by the vein on slices 10-11
    labels[0:14, 80:145, 9] = 4
    initial = labels.copy()
    _, _, kept = mid_slice_seeds(
        labels, 4, [1, 2, 3, 4], initial, distance, MIDLINE, SLAB_SPACING, PARAMS
    )
    assert len(kept) == 4
