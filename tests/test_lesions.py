"""Lesion table: columns, volumes in mL, RAS centroids on an oblique grid, zones, findings."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.decision import decision_levels
from bmetoolkit.lesions import LESION_COLUMNS, lesion_table
from bmetoolkit.modic import INFERIOR, SUPERIOR
from bmetoolkit.params import Parameters
from bmetoolkit.segment import label_lesions
from bmetoolkit.volume import Grid
from tests.helpers import SAGITTAL_PSR, ras_affine

#: Oblique sagittal grid: 0.8 x 0.8 mm pixels, 3.5 mm slices (2.24 mm³ voxels).
AFFINE = ras_affine(
    SAGITTAL_PSR, (0.8, 0.8, 3.5), rotations=(("x", 7.0), ("z", -4.0)), origin=(12.0, -5.0, 30.0)
)
GRID = Grid((40, 40, 12), AFFINE)
LEVELS = decision_levels({"t1": 0.05, "stir": 0.1}, fluid="stir", params=Parameters())
VOXEL_MM3 = 0.8 * 0.8 * 3.5

BME_BLOB = np.s_[5:9, 4:8, 3:6]  # body 23, central edema: 48 voxels
MODIC_I = np.s_[24:28, 30:33, 2:5]  # body 24 (j grows superiorly on this grid): 36 voxels
MODIC_II = np.s_[28:34, 30:33, 2:5]
MODIC_III = np.s_[10:14, 2:4, 8:10]  # body 23, inferior endplate


def scene():
    bodies = np.zeros(GRID.shape, np.uint8)
    bodies[2:38, 0:18, :] = 23
    bodies[2:38, 22:40, :] = 24
    bme = np.zeros(GRID.shape, bool)
    types = np.zeros(GRID.shape, np.uint8)
    assignment = np.zeros(GRID.shape, np.uint8)
    bme[BME_BLOB] = True
    bme[MODIC_I] = True
    types[MODIC_I], types[MODIC_II], types[MODIC_III] = 1, 2, 3
    assignment[MODIC_I] = assignment[MODIC_II] = SUPERIOR
    assignment[MODIC_III] = INFERIOR
    t1 = np.full(GRID.shape, np.nan, np.float32)
    t1[bodies > 0] = 1.0
    t1[BME_BLOB] = 0.6
    t1[MODIC_III] = 0.5
    t1[5, 4, 3] = np.nan  # a NaN inside a lesion is left out of its mean
    stir = np.where(bodies > 0, 1.0, np.nan).astype(np.float32)
    stir[BME_BLOB] = 3.0
    return bodies, bme, types, assignment, {"t1": t1, "stir": stir}


def table(**changes):
    bodies, bme, types, assignment, ratios = scene()
    values = {"bme": bme, "types": types, "assignment": assignment, "ratios": ratios}
    values |= changes
    lesions, n = label_lesions(values["bme"] | (values["types"] > 0), bodies)
    rows = lesion_table(
        lesions,
        n,
        bme=values["bme"],
        types=values["types"],
        assignment=values["assignment"],
        body_labels=bodies,
        body_names={23: ("L4", 23), 24: ("L5", 24)},
        ratios=values["ratios"],
        decisions=values["ratios"],
        levels=LEVELS,
        t1_dark=np.zeros(GRID.shape, bool),
        grid=GRID,
        params=Parameters(),
    )
    return rows, lesions


def centroid_ras(region) -> np.ndarray:
    mask = np.zeros(GRID.shape, bool)
    mask[region] = True
    ijk = np.argwhere(mask).mean(axis=0)
    return AFFINE[:3, :3] @ ijk + AFFINE[:3, 3]


def test_columns_and_order():
    rows, lesions = table()
    assert len(rows) == 3
    for row in rows:
        assert tuple(row) == LESION_COLUMNS
    assert [row["lesion"] for row in rows] == [1, 2, 3]
    # lesion numbers follow the first voxel in C order: the BME blob (i = 5), then the
    # type III change (i = 10), then the Modic I/II change (i = 24)
    assert lesions[BME_BLOB].min() == lesions[BME_BLOB].max() == 1
    assert (lesions[MODIC_III] == 2).all()
    assert (lesions[MODIC_I] == 3).all() and (lesions[MODIC_II] == 3).all()


def test_findings_zones_levels():
    rows, _ = table()
    bme_row, iii_row, mixed_row = rows
    assert (bme_row["finding"], bme_row["zone"], bme_row["level"]) == ("BME", "central", "L4")
    assert bme_row["verse_id"] == 23
    assert (iii_row["finding"], iii_row["zone"]) == ("Modic III", "inferior endplate")
    # 36 type I voxels (also BME) and 54 type II: II dominant, I above the 0.2 fraction
    assert (mixed_row["finding"], mixed_row["zone"]) == ("Modic II/I", "superior endplate")
    assert (mixed_row["level"], mixed_row["verse_id"]) == ("L5", 24)


def test_volumes_in_ml():
    rows, _ = table()
    bme_row, iii_row, mixed_row = rows
    assert bme_row["volume_ml"] == pytest.approx(48 * VOXEL_MM3 / 1000, abs=1e-4)
    assert bme_row["bme_volume_ml"] == bme_row["volume_ml"]
    assert bme_row["volume_ml_I"] == bme_row["volume_ml_II"] == 0.0
    assert iii_row["volume_ml_III"] == pytest.approx(16 * VOXEL_MM3 / 1000, abs=1e-4)
    assert iii_row["bme_volume_ml"] == 0.0
    assert mixed_row["volume_ml"] == pytest.approx(90 * VOXEL_MM3 / 1000, abs=1e-4)
    assert mixed_row["volume_ml_I"] == pytest.approx(36 * VOXEL_MM3 / 1000, abs=1e-4)
    assert mixed_row["volume_ml_II"] == pytest.approx(54 * VOXEL_MM3 / 1000, abs=1e-4)
    assert mixed_row["bme_volume_ml"] == mixed_row["volume_ml_I"]


def test_centroid_and_bbox_in_ras_mm():
    rows, _ = table()
    bme_row = rows[0]
    expected = centroid_ras(BME_BLOB)
    got = [bme_row[f"centroid_{c}_mm"] for c in "xyz"]
    np.testing.assert_allclose(got, expected, atol=0.006)
    # the voxel-index centroid is not the answer (the check can fail)
    assert np.abs(np.array(got) - [6.5, 5.5, 4.0]).max() > 1  # voxel indices are not RAS mm
    corners = np.array([[i, j, k] for i in (5, 8) for j in (4, 7) for k in (3, 5)])
    world = corners @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    np.testing.assert_allclose(
        [bme_row[f"bbox_min_{c}_mm"] for c in "xyz"], world.min(0), atol=0.006
    )
    np.testing.assert_allclose(
        [bme_row[f"bbox_max_{c}_mm"] for c in "xyz"], world.max(0), atol=0.006
    )
    assert bme_row["bbox_voxels"] == "5:9,4:8,3:6"
    mixed = rows[2]
    mixed_region = np.zeros(GRID.shape, bool)
    mixed_region[MODIC_I] = mixed_region[MODIC_II] = True
    ijk = np.argwhere(mixed_region).mean(0)
    np.testing.assert_allclose(
        [mixed[f"centroid_{c}_mm"] for c in "xyz"],
        AFFINE[:3, :3] @ ijk + AFFINE[:3, 3],
        atol=0.006,
    )


def test_mean_ratios_ignore_nan_and_missing_contrasts():
    rows, _ = table()
    bme_row, iii_row, _ = rows
    assert bme_row["mean_t1_ratio"] == pytest.approx(0.6)  # 47 finite voxels of 0.6
    assert bme_row["mean_stir_ratio"] == pytest.approx(3.0)
    assert bme_row["mean_t2_ratio"] is None  # no T2 in the study
    assert iii_row["mean_t1_ratio"] == pytest.approx(0.5)
    ratios = scene()[4]
    nan_t1 = ratios["t1"].copy()
    nan_t1[BME_BLOB] = np.nan
    rows, _ = table(ratios={"t1": nan_t1})
    assert rows[0]["mean_t1_ratio"] is None and rows[0]["mean_stir_ratio"] is None


def test_zone_majority_of_endplate_voxels():
    assignment = scene()[3]
    assignment[10:12, 2:4, 8:10] = SUPERIOR  # 8 of the 16 type III voxels: a tie
    rows, _ = table(assignment=assignment)
    assert rows[1]["zone"] == "superior endplate"
    assignment[11, 2, 8] = INFERIOR  # 7 superior, 9 inferior
    rows, _ = table(assignment=assignment)
    assert rows[1]["zone"] == "inferior endplate"


def test_unknown_body_name_falls_back():
    bodies, bme, types, assignment, ratios = scene()
    lesions, n = label_lesions(bme | (types > 0), bodies)
    rows = lesion_table(
        lesions,
        n,
        bme=bme,
        types=types,
        assignment=assignment,
        body_labels=bodies,
        body_names={23: ("body 1", None)},
        ratios=ratios,
        decisions=ratios,
        levels=LEVELS,
        t1_dark=np.zeros(GRID.shape, bool),
        grid=GRID,
        params=Parameters(),
    )
    assert rows[0]["level"] == "body 1" and rows[0]["verse_id"] is None
    assert rows[2]["level"] == "body id 24" and rows[2]["verse_id"] is None


def test_no_lesions():
    bodies, *_ = scene()
    empty = np.zeros(GRID.shape, np.int32)
    rows = lesion_table(
        empty,
        0,
        bme=empty > 0,
        types=empty.astype(np.uint8),
        assignment=empty.astype(np.uint8),
        body_labels=bodies,
        body_names={},
        ratios={},
        decisions={},
        levels=LEVELS,
        t1_dark=np.zeros(GRID.shape, bool),
        grid=GRID,
        params=Parameters(),
    )
    assert rows == []
