"""A body whose seed joins the tissue beside or in front of it is cut back, not lost.

Small synthetic canonical arrays (anterior, superior, right), 1 mm voxels: four bodies in
front of a canal wall, the caudal one joined to marrow-bright tissue as S1 was to the
pelvis on the pelvis-and-bowel tuning seeds 114, 150, 151 (beside it, too deep for a
body) and 152 (in front of it, far larger than a body). Each case fails without the
rescue (``midline`` not given, as before): the caudal body is then lost.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.spine.autoseg import AutosegParameters
from bmetoolkit.spine.autoseg.bodies import split_bodies

PARAMS = AutosegParameters()
SPACING = np.ones(3)
CANAL_WALL = 10  # AP index of the canal's anterior wall
BODY_AP = (12, 42)  # 30 mm deep bodies
BODY_LR = (10, 40)  # 30 mm wide, midline at 25
MIDLINE = 25.0
BODIES_SI = ((6, 32), (42, 68), (78, 104), (114, 140))  # 26 mm bodies, 10 mm discs


def _column(joined: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marrow mask, distance (mm) in front of the canal wall and the wall per SI row."""
    marrow = np.zeros((90, 146, 52), bool)
    for low, high in BODIES_SI:
        marrow[slice(*BODY_AP), low:high, slice(*BODY_LR)] = True
    low, high = BODIES_SI[0]
    if joined == "beside":  # a sheet along the caudal body's side, 75 mm deep
        marrow[BODY_AP[0] : 87, low - 4 : high + 4, 2:12] = True
    else:  # tissue in front of it, across 50 mm
        marrow[BODY_AP[1] : 72, low:high, 0:50] = True
    distance = np.repeat(((np.arange(90) - CANAL_WALL) * SPACING[0])[:, None], 146, axis=1)
    return marrow, distance.astype(np.float32), np.full(146, float(CANAL_WALL))


def _caudal_body(bodies: np.ndarray) -> int:
    """The label covering most of the caudal body's mid-sagittal section (0: none)."""
    low, high = BODIES_SI[0]
    section = bodies[slice(*BODY_AP), low:high, int(MIDLINE)]
    labels, counts = np.unique(section, return_counts=True)
    best = int(labels[np.argmax(counts)])
    return best if best > 0 and counts.max() > 0.8 * section.size else 0


@pytest.mark.parametrize("joined", ["beside", "in front"])
def test_a_body_joined_to_tissue_is_cut_back_to_the_column(joined: str) -> None:
    marrow, distance, front = _column(joined)
    before = split_bodies(marrow, distance, front, SPACING, PARAMS)
    if joined == "beside":  # too deep: its seed was rejected
        assert before.max() == 3 and _caudal_body(before) == 0
    else:  # kept whole, 2.7 times the others: check_sizes would drop it
        volumes = np.bincount(before.ravel())[1:]
        assert volumes.max() > PARAMS.large_body_factor * np.median(volumes)
    bodies = split_bodies(marrow, distance, front, SPACING, PARAMS, MIDLINE)
    label = _caudal_body(bodies)
    assert bodies.max() == 4 and label > 0
    ap = np.nonzero(bodies == label)[0]
    # In line with the column: little of the tissue in front or beside is kept.
    assert ap.max() < BODY_AP[1] + 8
    volumes = np.bincount(bodies.ravel())[1:]
    assert volumes.max() < 1.5 * np.median(volumes)
    # The other bodies are as before.
    for low, high in BODIES_SI[1:]:
        assert (bodies[:, low:high] > 0).sum() == (before[:, low:high] > 0).sum()
