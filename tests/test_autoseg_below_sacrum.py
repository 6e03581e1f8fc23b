"""The search for S1 above segments left out below it does not pass over a vertebra."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.levels import BodyShape, assign_levels

SPACING = np.array([0.7, 0.8, 4.4])
#: Tilts (deg) of T11 ... S1, cranial to caudal: the lumbosacral angle is the last step.
LORDOSIS = [-8.0, -6.0, -4.0, -1.0, 3.0, 8.0, 15.0, 27.0]


def _column(angles: list[float], discs_mm: list[float], rows: list[int]) -> list[BodyShape]:
    """Bodies 25 mm tall, cranial to caudal, with the discs below them and lowest rows."""
    return [
        BodyShape(
            label=i + 1,
            centroid_mm=np.array([50.0, rows[i] * 0.8 + 15.0, 30.0]),
            angle_deg=angle,
            touches_bottom=rows[i] == 0,
            inferior_row=rows[i],
            ap_range=(20, 60),
            disc_below_mm=discs_mm[i] if i < len(discs_mm) else float("nan"),
            height_mm=25.0,
        )
        for i, angle in enumerate(angles)
    ]


def _rows(n: int, bottom: int) -> list[int]:
    """Lowest rows of ``n`` bodies 44 rows (35 mm) apart, the caudal-most at ``bottom``."""
    return [bottom + (n - 1 - i) * 44 for i in range(n)]


def test_a_sacrum_tilted_segment_below_a_disc_is_s1_not_a_sacral_segment():
    """S1 (tilted 13 deg over the body above, its support cut off by the image's edge) over
    a segment of the sacrum at the edge, and marrow-like signal right below the body above
    it: with a well-formed disc between that body and S1, the body is L5, not S1."""
    params = AutosegParameters()
    angles = [*LORDOSIS, 40.0, 41.0]
    rows = [*_rows(8, 50), 4, 0]
    marrow = np.zeros((80, 600, 10), bool)
    marrow[:, 30:47] = True  # right below the body above S1 (its lowest row 50)
    with_disc = _column(angles, [10.0] * 7 + [12.0, 0.0], rows)
    result = assign_levels(with_disc, marrow, SPACING, params)
    assert result.anchor is None and result.evidence["left_out_below_sacrum"] == []
    assert "tilted like the sacrum" in result.evidence["not_below_sacrum"]
    # A gap twice the discs above is soft tissue between S1 and tissue below: no disc.
    wide = [replace(s, disc_below_mm=24.0) if s.label == 8 else s for s in with_disc]
    assert "not_below_sacrum" not in assign_levels(wide, marrow, SPACING, params).evidence
    # Without a disc (the two fused) the lower segments are the sacrum's, left out as before.
    fused = [replace(s, disc_below_mm=2.0) if s.label == 8 else s for s in with_disc]
    joined = assign_levels(fused, marrow, SPACING, params)
    assert joined.anchor == "sacrum (S1)" and joined.evidence["left_out_below_sacrum"] == [9, 10]
    assert joined.levels[8] == "S1"
