"""The caudal body joined to the tissue below it is cut at its inferior endplate.

Small synthetic arrays on canonical axes (anterior, superior, right): fast, no phantom.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg.checks import drop_tall_at_lower_edge
from bmetoolkit.spine.autoseg.lower_edge import cut_at_lower_endplate, find_dark_line

SPACING = np.array([1.0, 1.0, 4.0])
MARROW = 100.0


def _tilted_body_on_tissue(
    angle_deg: float, line: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A body 25 mm tall tilted by ``angle_deg`` above tissue with its signal down to row 0.

    Returns the image (noisy), the segment (body and tissue joined on the lateral slice 4,
    where the endplate is lost), the true body and the endplate's offset (mm) along the
    body's normal. The endplate is a dark line one pixel thick on slices 0-3, with ``line``.
    """
    rng = np.random.default_rng(seed)
    shape = (60, 90, 5)
    phi = -np.radians(angle_deg)
    ap = np.arange(shape[0])[:, None] * SPACING[0]
    si = np.arange(shape[1])[None, :] * SPACING[1]
    normal = -np.sin(phi) * ap + np.cos(phi) * si
    along = np.cos(phi) * ap + np.sin(phi) * si
    columns = (along > 15) & (along < 45)
    endplate = 50.0 + (30 * np.tan(-phi) if angle_deg < 0 else 0.0)
    body2d = columns & (normal > endplate + 0.5) & (normal < endplate + 25)
    line2d = columns & (np.abs(normal - endplate) <= 0.5)
    below2d = columns & (normal < endplate - 0.5)
    image = np.full(shape, 40.0)
    image[(body2d | below2d | line2d)[:, :, None].repeat(shape[2], axis=2)] = MARROW
    if line:
        image[:, :, :4][line2d] = 25.0
    image += rng.normal(0, 5, shape)
    segment = (body2d | below2d)[:, :, None].repeat(shape[2], axis=2)
    segment[:, :, 4] |= line2d  # joined on the lateral slice
    truth = np.zeros(shape, bool)
    truth[:, :, :][body2d] = True
    return image, segment, truth, endplate


@pytest.mark.parametrize("angle", [0.0, 20.0, 40.0])
def test_the_segment_is_cut_along_the_tilted_endplate(angle):
    image, segment, truth, _ = _tilted_body_on_tissue(angle)
    kept = cut_at_lower_endplate(segment, image, 2.0, SPACING, body_height_mm=25.0)
    assert kept is not None
    dice = 2 * (kept & truth).sum() / (kept.sum() + truth.sum())
    assert dice > 0.95
    assert not (kept & ~truth).any(axis=2).sum() > 0.05 * truth[:, :, 2].sum()


def test_without_an_endplate_nothing_is_cut():
    image, segment, _, _ = _tilted_body_on_tissue(20.0, line=False)
    assert cut_at_lower_endplate(segment, image, 2.0, SPACING, body_height_mm=25.0) is None


def test_dark_tissue_in_a_step_of_the_segment_is_no_endplate():
    """Dark tissue where the segment steps back (inside its convex hull, outside the
    segment) is not taken for the endplate: it has the segment on one side only. On tuning
    seed 5 it was the dark band behind the tissue below S1."""
    image, segment, _, _ = _tilted_body_on_tissue(20.0, line=False)
    ap = np.arange(segment.shape[0])[:, None]
    si = np.arange(segment.shape[1])[None, :]
    step = (ap < 35 + 0.2 * si) & (si < 50)  # the segment steps back along its posterior side
    segment[step] = False
    image[step[:, :, None] & (image > 60)] = 20.0
    assert find_dark_line(segment[:, :, 2], image[:, :, 2], SPACING[:2], 25.0) is None


def test_an_endplate_out_of_a_bodys_height_is_not_taken():
    """A dark line far shallower than a body's height (a lesion band) is not the endplate."""
    image, segment, _, endplate = _tilted_body_on_tissue(0.0, line=False)
    image[15:45, int(endplate) + 20, :] = 20.0  # 5 mm below the top
    assert cut_at_lower_endplate(segment, image, 2.0, SPACING, body_height_mm=25.0) is None


def _with_bodies_above(segment: np.ndarray) -> np.ndarray:
    """Label map: the joined segment (1) at the lower edge and three bodies above it."""
    labels = np.zeros((segment.shape[0], 200, segment.shape[2]), np.int32)
    labels[:, : segment.shape[1]][segment] = 1
    for k, start in enumerate((100, 135, 170), start=2):
        labels[20:40, start : start + 25, :] = k
    return labels


def test_the_lower_edge_check_cuts_when_it_sees_the_endplate_and_drops_otherwise():
    image, segment, truth, _ = _tilted_body_on_tissue(20.0)
    labels = _with_bodies_above(segment)
    full = np.full(labels.shape, MARROW)
    full[:, : image.shape[1]] = image
    cut, notes = drop_tall_at_lower_edge(labels, SPACING, full, 2.0)
    assert int(cut.max()) == 4 and "cut at the caudal body's inferior endplate" in notes[0]
    kept = cut[:, : image.shape[1]] == 1
    assert 2 * (kept & truth).sum() / (kept.sum() + truth.sum()) > 0.95
    dropped, notes = drop_tall_at_lower_edge(labels, SPACING)  # no image: as before
    assert int(dropped.max()) == 3 and "was dropped" in notes[0]
    assert not (dropped[:, : image.shape[1]] > 0).any()


def test_a_section_too_small_to_measure_gives_no_line():
    section = np.zeros((10, 10), bool)
    section[4, 2:7] = True  # five collinear pixels: no convex hull
    assert find_dark_line(section, np.ones((10, 10)), SPACING[:2], 25.0) is None
