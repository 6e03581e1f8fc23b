"""On the T1 path too, a segment wholly beside the canal's midline is not a body."""

from __future__ import annotations

import numpy as np
import pytest

import bmetoolkit.spine.autoseg as autoseg
from bmetoolkit.spine.autoseg.canal import Canal
from bmetoolkit.spine.autoseg.params import AutosegParameters

SPACING = np.array([1.0, 1.0, 1.0])
SHAPE = (60, 120, 60)  # anterior, superior, right (canonical)


def _bodies() -> np.ndarray:
    """Three bodies across the midline (LR 30) and a lateral sliver beside the lowest."""
    bodies = np.zeros(SHAPE, np.int32)
    for k in range(3):
        bodies[10:40, 10 + 36 * k : 36 + 36 * k, 15:45] = k + 1
    bodies[5:35, 15:30, 0:6] = 4  # beside the lowest body, 24-30 mm from the midline
    return bodies


def test_a_lateral_piece_is_dropped_on_the_t1_path(monkeypatch: pytest.MonkeyPatch):
    bodies = _bodies()
    monkeypatch.setattr(autoseg, "marrow_polarity", lambda *args: (autoseg.BRIGHT, {}))
    monkeypatch.setattr(
        autoseg,
        "_t1_bodies",
        # bodies, marrow, notes, the voxels the cortex steps grew (none here), no dark mask
        lambda *args: (bodies.copy(), bodies > 0, ["from the T1"], np.zeros(SHAPE, bool), None),
    )
    canal = Canal(np.full(SHAPE[1], 45.0), 30.0, (0, SHAPE[1] - 1), np.zeros(SHAPE, bool))
    image = np.zeros(SHAPE, np.float32)
    found = autoseg._segment_column(
        image,
        image,
        None,
        canal,
        np.ones(SHAPE, bool),
        np.zeros(SHAPE[:2], np.float32),
        SPACING,
        AutosegParameters(),
        fat_suppressed=False,
    )
    assert int(found.bodies.max()) == 3
    assert not found.bodies[:, :, :6].any()
    assert np.array_equal(found.bodies > 0, (bodies > 0) & (bodies < 4))
    assert found.notes[0] == "from the T1"
    assert any("beside the canal's midline" in note for note in found.notes)
