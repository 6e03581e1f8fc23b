"""Small pieces of the follow-up comparison on synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.followup.change import zone_of
from bmetoolkit.followup.register import (
    candidate_pairings,
    kabsch,
    pair_bodies,
    rotation_deg,
)
from bmetoolkit.followup.repeatability import (
    BOUNDARY_SD_FACTOR,
    RC_FACTOR,
    boundary_volumes,
    repeatability_coefficient,
)
from bmetoolkit.followup.signal import _is_edema


def _spine(n: int = 6) -> dict[int, np.ndarray]:
    """Body centroids along a curved line, ids 18.. top down (VerSe-like)."""
    t = np.arange(n, dtype=np.float64)
    return {18 + k: np.array([0.0, 5.0 * np.sin(t[k] / 3), -38.0 * t[k]]) for k in range(n)}


def _moved(points: dict[int, np.ndarray], angle_deg: float, shift) -> dict[int, np.ndarray]:
    a = np.radians(angle_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return {k: rot @ p + np.asarray(shift) for k, p in points.items()}


def test_pair_bodies_by_labels_recovers_the_motion():
    base = _spine()
    follow = _moved(base, 7.0, [3.0, -12.0, 20.0])
    pairs, transform, how = pair_bodies(base, follow)
    assert how == "labels" and pairs == {k: k for k in base}
    assert rotation_deg(transform) == pytest.approx(7.0, abs=1e-6)


def test_centroids_alone_cannot_tell_a_misnamed_level_from_a_shifted_patient():
    base = _spine()
    follow = {k + 1: p for k, p in _moved(base, 4.0, [0.0, 5.0, -10.0]).items()}  # misnamed
    candidates = {how: (pairs, rms) for pairs, _, rms, how in candidate_pairings(base, follow)}
    assert candidates["shifted by +1"][1] < 1e-6  # the right pairing fits exactly...
    assert candidates["labels"][1] < 6.0  # ...and the misnamed one nearly as well
    _, _, how = pair_bodies(base, follow)
    assert how == "labels"  # without images the labels are trusted (register_visits asks T1)


def test_kabsch_residual_of_a_non_rigid_set_is_positive():
    points = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]])
    _, rms = kabsch(points, points * 1.1)
    assert rms > 0.1


def test_boundary_volume_counts_faces_per_label_and_scales_with_voxels():
    labels = np.zeros((6, 6, 6), np.uint8)
    labels[1:3, 1:3, 1:3] = 1  # 2x2x2 cube: 24 faces
    labels[4, 4, 4] = 2  # one voxel: 6 faces
    assert boundary_volumes(labels, 1000.0).tolist() == [0.0, 24.0, 6.0]
    # the same cube touching the array edge still counts its outer faces
    edge = np.zeros((2, 2, 2), np.uint8) + 1
    assert boundary_volumes(edge, 1000.0)[1] == 24.0


def test_rc_formula_and_a_change_within_it():
    rc = repeatability_coefficient(1.0, 2.0)
    assert rc == pytest.approx(RC_FACTOR * BOUNDARY_SD_FACTOR * np.sqrt(2.5))
    assert repeatability_coefficient(0.0, 0.0) == 0.0
    assert np.allclose(repeatability_coefficient(np.array([1.0]), np.array([1.0])),
                       RC_FACTOR * BOUNDARY_SD_FACTOR)  # fmt: skip


def test_zone_names_and_edema_findings():
    assert [zone_of(z) for z in ("inferior endplate", "central", None)] == [
        "inferior",
        "central",
        "",
    ]
    assert _is_edema("Modic I/II") and not _is_edema("Modic III/II+Modic II")


def test_kabsch_of_centroids_along_a_line_turns_only_the_line():
    # The sacrum between the two ilia (tuning joint pair 39): three centroids on a line, the
    # follow-up turned by 5 degrees and shifted, each centroid off by 0.5 mm. Fitted as any
    # point set, the turn about the line itself comes from that noise alone (5-37 degrees
    # over these draws: compare then refused the pair, its bone masks overlapping at 0.32).
    source = np.array([[-0.7, -0.8, 14.2], [-67.6, -8.7, 13.4], [66.3, 4.4, 17.2]])
    c, s = np.cos(np.radians(5.0)), np.sin(np.radians(5.0))
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(0)
    for _ in range(20):
        target = source @ turn.T + [4.0, -5.0, 5.5] + rng.normal(0.0, 0.5, (3, 3))
        transform, rms = kabsch(source, target)
        assert abs(rotation_deg(transform) - 5.0) < 1.0
        assert rms < 2.0
