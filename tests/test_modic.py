"""Modic: grades, type strings, per-voxel map and per-endplate table on a synthetic body.

The body: a RAS grid with 3 mm voxels along x (LR) and 1 mm along y (AP) and z (SI); the
body fills x 1..10, y 5..34, z 5..24 (30 x 30 x 20 mm). Marrow (cortex 0.5 mm) is the body
without its outer voxel layer: x 2..9, y 6..33, z 6..23. Along SI the superior endplate
surface is at z = 24.5, the inferior at z = 4.5, so the body height is 20 mm, a voxel at z
lies 24.5 - z + 0.5 mm below the superior surface (to its far edge), and the first marrow
voxels under the endplates (z = 23 and z = 6) are the contact reference (``endplate_contact_mm``
2.5 mm: a region reaching z >= 21 or z <= 8 touches an endplate). The endplate has
10 x 30 = 300 columns (AP bins 1 mm, LR bins 3 mm). The AP centre is y = 19.5 with
half-extent 15 mm: the posterior third is y <= 14, the anterior third y >= 25. (Coordinates
above are voxel indices.)
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.decision import decision_levels
from bmetoolkit.modic import (
    ENDPLATE_COLUMNS,
    INFERIOR,
    SUPERIOR,
    area_grade,
    endplate_table,
    height_grade,
    modic_map,
    type_string,
)
from bmetoolkit.params import Parameters
from bmetoolkit.spine.labels import VertebraLabels
from bmetoolkit.spine.vertebra import BodyGeometry, body_geometries
from bmetoolkit.volume import Volume

AFFINE = np.diag([3.0, 1.0, 1.0, 1.0])
AFFINE[:3, 3] = (-18.0, -20.0, 7.0)
SHAPE = (12, 40, 30)
VOXEL_MM3 = 3.0
PARAMS = Parameters(min_modic_mm3=50.0)  # the synthetic regions are tens of 3 mm³ voxels
BODY = np.s_[1:11, 5:35, 5:25]
MARROW = np.s_[2:10, 6:34, 6:24]


def make_body(level: str = "L4", body_id: int = 23) -> tuple[BodyGeometry, np.ndarray]:
    labels = np.zeros(SHAPE, np.uint8)
    labels[BODY] = body_id
    vertebrae = VertebraLabels(Volume(labels, AFFINE, kind="label"), {body_id: level}, "verse")
    (body,) = body_geometries(vertebrae, cortex_mm=PARAMS.cortex_mm)
    return body, labels


@pytest.fixture(scope="module")
def body() -> tuple[BodyGeometry, np.ndarray]:
    return make_body()


def normal_ratios() -> tuple[np.ndarray, np.ndarray]:
    """T1 and STIR ratio images: 1 in the marrow, NaN elsewhere (as the analysis makes them)."""
    t1 = np.full(SHAPE, np.nan, np.float32)
    t1[MARROW] = 1.0
    return t1, t1.copy()


def run(body_and_labels, t1, fluid, bme=None, *, fluid_kind="stir", params=PARAMS, sd=None):
    body, labels = body_and_labels
    bme = np.zeros(SHAPE, bool) if bme is None else bme
    types, assignment = modic_map(
        bme,
        t1,
        fluid,
        levels=decision_levels(sd or {}, fluid=fluid_kind, params=params),
        bodies=[body],
        body_labels=labels,
        voxel_mm3=VOXEL_MM3,
        params=params,
    )
    rows = endplate_table([body], types, assignment, voxel_mm3=VOXEL_MM3, params=params)
    return types, assignment, {row["endplate"]: row for row in rows}


# --- grades and type strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pct", "grade"),
    [(0.0, None), (-1.0, None), (0.01, "A"), (24.99, "A"), (25.0, "B"), (50.0, "B"),
     (50.01, "C"), (100.0, "C")],
)  # fmt: skip
def test_height_grade(pct, grade):
    assert height_grade(pct) == grade


@pytest.mark.parametrize(
    ("pct", "grade"),
    [(0.0, None), (0.5, "small"), (24.99, "small"), (25.0, "medium"), (49.99, "medium"),
     (50.0, "large"), (100.0, "large")],
)  # fmt: skip
def test_area_grade(pct, grade):
    assert area_grade(pct) == grade


def test_type_string():
    assert type_string({"I": 0.0, "II": 0.0, "III": 0.0}, 0.2) == "none"
    assert type_string({"I": 1.0, "II": 0.0, "III": 0.0}, 0.2) == "I"
    assert type_string({"I": 0.6, "II": 2.0, "III": 0.0}, 0.2) == "II/I"  # dominant first
    assert type_string({"I": 2.0, "II": 0.6, "III": 0.0}, 0.2) == "I/II"
    assert type_string({"I": 0.0, "II": 3.0, "III": 1.0}, 0.2) == "II/III"
    # minor type: 0.19 of the total is dropped, 0.2 is kept
    assert type_string({"I": 19.0, "II": 81.0, "III": 0.0}, 0.2) == "II"
    assert type_string({"I": 20.0, "II": 80.0, "III": 0.0}, 0.2) == "II/I"
    assert type_string({"I": 20.0, "II": 80.0, "III": 0.0}, 0.25) == "II"
    assert type_string({"I": 3.0, "II": 1.0, "III": 1.0}, 0.2) == "I/II/III"


# --- the synthetic body ----------------------------------------------------------------------


def test_synthetic_body_geometry(body):
    """The geometry the expected values below are derived from."""
    geometry, _ = body
    assert geometry.height_mm == 20.0
    assert geometry.si_extent_mm == 1.0
    assert geometry.n_columns == 300
    assert geometry.ap_half_mm == 15.0
    marrow = np.zeros(SHAPE, bool)
    marrow.ravel()[geometry.marrow_index] = True
    expected = np.zeros(SHAPE, bool)
    expected[MARROW] = True
    np.testing.assert_array_equal(marrow, expected)


def test_type_ii_at_superior_endplate(body):
    t1, stir = normal_ratios()
    region = np.s_[2:10, 6:16, 17:24]  # 8 x 10 x 7 voxels, posterior, up to the endplate
    t1[region], stir[region] = 1.3, 0.8  # T1 bright, fat nulled on STIR
    types, assignment, rows = run(body, t1, stir)
    expected = np.zeros(SHAPE, bool)
    expected[region] = True
    np.testing.assert_array_equal(types == 2, expected)
    assert (types[~expected] == 0).all()
    assert (assignment[expected] == SUPERIOR).all() and (assignment[~expected] == 0).all()
    row = rows["superior"]
    assert row["modic_type"] == "II"
    assert row["volume_ml"] == pytest.approx(8 * 10 * 7 * VOXEL_MM3 / 1000)
    assert row["volume_ml_II"] == row["volume_ml"] and row["volume_ml_I"] == 0.0
    # deepest voxel z = 17: 24.5 - 17 + 0.5 = 8 mm below the endplate, 40 % of 20 mm
    assert row["height_pct"] == pytest.approx(40.0)
    assert row["height_grade"] == "B"
    # 8 x 10 of the 300 columns
    assert row["area_pct"] == pytest.approx(100 * 80 / 300, abs=0.01)
    assert row["area_grade"] == "medium"
    assert row["location"] == "posterior"  # y 6..15: 9 of 10 rows in the posterior third
    assert row["level"] == "L4" and row["verse_id"] == 23
    assert row["body_height_mm"] == 20.0 and row["body_partly_outside"] is False
    assert list(row) == list(ENDPLATE_COLUMNS)
    inferior = rows["inferior"]
    assert inferior["modic_type"] == "none" and inferior["volume_ml"] == 0.0
    assert inferior["height_grade"] is None and inferior["location"] is None


@pytest.mark.parametrize(("y", "location"), [(np.s_[24:34], "anterior"), (np.s_[14:26], "middle")])
def test_location_by_ap_third(body, y, location):
    t1, stir = normal_ratios()
    region = (np.s_[2:10], y, np.s_[19:24])
    t1[region], stir[region] = 1.3, 0.8
    *_, rows = run(body, t1, stir)
    assert rows["superior"]["location"] == location


def test_region_away_from_endplates_is_not_modic(body):
    t1, stir = normal_ratios()
    middle = np.s_[2:10, 10:20, 12:17]  # z 12..16: 7 mm from either endplate's marrow
    t1[middle], stir[middle] = 1.3, 0.8
    types, assignment, rows = run(body, t1, stir)
    assert not types.any() and not assignment.any()
    assert rows["superior"]["modic_type"] == rows["inferior"]["modic_type"] == "none"
    # control: a band z 17..20 under the superior endplate is still away (3 mm from the
    # first marrow voxel); up to z = 21 it touches (2 mm) but is not attached: its
    # shallowest voxels end 3 mm below the marrow start (``modic_attach_mm`` 2); up to
    # z = 22 it is (median depth 6.5 mm of 20, within ``modic_anchor_fraction`` 0.35)
    t1, stir = normal_ratios()
    t1[2:10, 10:20, 17:21], stir[2:10, 10:20, 17:21] = 1.3, 0.8
    assert not run(body, t1, stir)[0].any()
    t1[2:10, 10:20, 21], stir[2:10, 10:20, 21] = 1.3, 0.8
    assert not run(body, t1, stir)[0].any()
    t1[2:10, 10:20, 22], stir[2:10, 10:20, 22] = 1.3, 0.8
    assert (run(body, t1, stir)[0] == 2).sum() == 8 * 10 * 6


def test_bme_away_from_endplates_stays_out_of_the_modic_map(body):
    t1, stir = normal_ratios()
    bme = np.zeros(SHAPE, bool)
    bme[2:10, 15:25, 11:18] = True
    t1[bme], stir[bme] = 0.5, 3.0
    types, _, rows = run(body, t1, stir, bme)
    assert not types.any()
    bme[2:10, 15:25, 18:23] = True  # grown up to z = 22: it reaches the endplate, but is
    t1[bme], stir[bme] = 0.5, 3.0  # centred in the body (median 8 mm = 40 % deep): BME
    types, _, rows = run(body, t1, stir, bme)
    assert not types.any() and rows["superior"]["modic_type"] == "none"
    band = np.zeros(SHAPE, bool)
    band[2:10, 15:25, 17:23] = True  # a band anchored at the endplate is a type I change
    types, _, rows = run(body, t1, stir, band)
    np.testing.assert_array_equal(types == 1, band)
    assert rows["superior"]["modic_type"] == "I"


def test_a_band_of_edema_needs_less_depth_than_a_fatty_band(body):
    """3 mm below the marrow start (z 21..23): a Modic I when it is edema; as fat it looks
    like the normal fatty band under an endplate and is not a Modic II (4 mm)."""
    t1, stir = normal_ratios()
    band = np.zeros(SHAPE, bool)
    band[2:10, 10:30, 21:24] = True
    t1[band], stir[band] = 0.6, 2.5
    types, _, rows = run(body, t1, stir, band)
    np.testing.assert_array_equal(types == 1, band)
    assert rows["superior"]["modic_type"] == "I"
    t1, stir = normal_ratios()
    t1[band], stir[band] = 1.3, 0.8
    assert not run(body, t1, stir)[0].any()
    t1[2:10, 10:30, 20], stir[2:10, 10:30, 20] = 1.3, 0.8  # 4 mm deep: a Modic II
    assert (run(body, t1, stir)[0] == 2).sum() == 8 * 20 * 4


def test_edema_touching_an_endplate_in_a_few_columns_is_not_attached(body):
    """Edema 4-6 mm below the marrow start that reaches the endplate in 15 % of its columns
    only is BME; attached along its footprint it is a Modic I."""
    t1, stir = normal_ratios()
    bme = np.zeros(SHAPE, bool)
    bme[2:10, 10:30, 18:21] = True
    bme[2:10, 10:13, 21:23] = True  # reaches z = 22: it touches the endplate
    t1[bme], stir[bme] = 0.6, 2.5
    types, _, rows = run(body, t1, stir, bme)
    assert not types.any() and rows["superior"]["modic_type"] == "none"
    unattached = PARAMS.replace(modic_min_attached=0.0)
    assert (run(body, t1, stir, bme, params=unattached)[0] == 1).sum() == bme.sum()
    bme[2:10, 10:30, 21:23] = True  # now attached in every column
    t1[bme], stir[bme] = 0.6, 2.5
    assert (run(body, t1, stir, bme)[0] == 1).sum() == bme.sum()


def test_thin_type_iii_rim_along_the_cortex_is_dropped(body):
    t1, stir = normal_ratios()
    rim = np.s_[2:10, 33, 17:24]  # the outermost marrow row, 1 mm from the cortex layer
    t1[rim], stir[rim] = 0.5, 0.5  # 56 voxels, 168 mm³: large enough by volume
    types, _, rows = run(body, t1, stir)
    assert not types.any()
    assert rows["superior"]["modic_type"] == "none"
    # control: three voxels thick it reaches 3 mm deep and is type III
    thick = np.s_[2:10, 31:34, 17:24]  # 24 of 300 columns: allow small footprints here
    t1[thick], stir[thick] = 0.5, 0.5
    types, _, rows = run(body, t1, stir, params=PARAMS.replace(modic_min_area_pct=0.0))
    expected = np.zeros(SHAPE, bool)
    expected[thick] = True
    np.testing.assert_array_equal(types == 3, expected)
    assert rows["superior"]["modic_type"] == "III"
    assert rows["superior"]["location"] == "anterior"
    # and with modic_core_mm below 1 mm the thin rim itself counts
    t1, stir = normal_ratios()
    t1[rim], stir[rim] = 0.5, 0.5
    thin_ok = PARAMS.replace(modic_core_mm=0.5, modic_min_area_pct=0.0)
    types, *_ = run(body, t1, stir, params=thin_ok)
    assert (types == 3).sum() == 8 * 7


@pytest.mark.parametrize(
    ("bme_y", "fat_y", "expected"),
    [
        (np.s_[20:26], np.s_[26:34], "II/I"),  # 6 vs 8 rows
        (np.s_[20:30], np.s_[30:34], "I/II"),  # 10 vs 4 rows
        (np.s_[20:22], np.s_[22:34], "II"),  # 2 of 14 rows: below the 0.2 fraction
    ],
)
def test_mixed_types_at_inferior_endplate(body, bme_y, fat_y, expected):
    t1, stir = normal_ratios()
    bme = np.zeros(SHAPE, bool)
    bme[2:10, bme_y, 6:11] = True
    t1[bme], stir[bme] = 0.5, 3.0
    fat = (np.s_[2:10], fat_y, np.s_[6:11])
    t1[fat], stir[fat] = 1.3, 0.8
    types, assignment, rows = run(body, t1, stir, bme)
    row = rows["inferior"]
    assert row["modic_type"] == expected
    n_bme = int(bme.sum())
    n_fat = int((types == 2).sum())
    assert row["volume_ml_I"] == pytest.approx(n_bme * VOXEL_MM3 / 1000)
    assert row["volume_ml_II"] == pytest.approx(n_fat * VOXEL_MM3 / 1000)
    assert n_fat == 8 * 5 * (fat_y.stop - fat_y.start)
    # z 6..10: the voxel at z = 10 is 10 - 4.5 + 0.5 = 6 mm above the inferior surface
    assert row["height_pct"] == pytest.approx(30.0)
    assert (assignment[types > 0] == INFERIOR).all()
    assert rows["superior"]["modic_type"] == "none"


def test_tall_region_split_between_endplates_voxel_by_voxel(body):
    t1, stir = normal_ratios()
    column = np.s_[4:8, 16:24, 6:24]  # from the inferior to the superior marrow
    t1[column], stir[column] = 1.3, 0.8
    types, assignment, rows = run(body, t1, stir)
    assert (types[column] == 2).all()
    # superior depth 23 - z, inferior depth z - 6: superior when z >= 14.5
    z = np.arange(SHAPE[2])
    nearer_top = np.broadcast_to(z >= 15, SHAPE)
    inside = types > 0
    np.testing.assert_array_equal(assignment[inside] == SUPERIOR, nearer_top[inside])
    assert rows["superior"]["modic_type"] == rows["inferior"]["modic_type"] == "II"
    # heights run from the body surface (through the rim layer) to the far voxel edge:
    # z = 15 is 24.5 - 14.5 = 10 mm below the superior surface, z = 14 is 14.5 - 4.5 = 10 mm
    # above the inferior one
    assert rows["superior"]["height_pct"] == pytest.approx(50.0)
    assert rows["inferior"]["height_pct"] == pytest.approx(50.0)
    assert rows["superior"]["height_grade"] == rows["inferior"]["height_grade"] == "B"
    total = rows["superior"]["volume_ml"] + rows["inferior"]["volume_ml"]
    assert total == pytest.approx(4 * 8 * 18 * VOXEL_MM3 / 1000)


def test_type_ii_needs_fat_suppression_on_stir(body):
    t1, stir = normal_ratios()
    region = np.s_[2:10, 6:16, 17:24]
    t1[region], stir[region] = 1.3, 1.5  # T1 and STIR bright: not fat (a haemangioma)
    assert not run(body, t1, stir)[0].any()
    # read as plain T2 the same values are "not hypointense": type II
    types, *_ = run(body, t1, stir, fluid_kind="t2")
    assert (types == 2).sum() == 8 * 10 * 7


def test_small_type_ii_dropped_by_volume(body):
    t1, stir = normal_ratios()
    small = np.s_[4:6, 10:14, 20:24]  # 2 x 4 x 4 voxels = 96 mm³; with min_modic_mm3 100
    t1[small], stir[small] = 1.3, 0.8
    any_area = PARAMS.replace(modic_min_area_pct=0.0)
    assert (run(body, t1, stir, params=any_area)[0] == 2).sum() == 32
    assert not run(body, t1, stir, params=any_area.replace(min_modic_mm3=100.0))[0].any()


def test_focal_fat_spot_by_an_endplate_is_not_type_ii(body):
    """A 4 x 6 voxel footprint (24 of 300 columns, 8 %) is a spot, not a Modic band."""
    t1, stir = normal_ratios()
    spot = np.s_[4:8, 14:20, 17:24]
    t1[spot], stir[spot] = 1.35, 0.6
    assert not run(body, t1, stir)[0].any()
    t1[2:10, 12:22, 17:24], stir[2:10, 12:22, 17:24] = 1.35, 0.6  # 80 columns, 27 %
    assert run(body, t1, stir)[2]["superior"]["modic_type"] == "II"


SPOTS = PARAMS.replace(modic_spot_mm=15.0)


@pytest.mark.parametrize("kind", ["fat", "sclerosis"])
def test_round_spot_at_an_endplate_is_not_a_modic_change(body, kind):
    """Focal fat (or a dark island) touching an endplate: 20 % of the endplate's columns
    (past ``modic_min_area_pct``) and 7 mm deep (past the depth a band needs), but round and
    12 x 11 x 6 mm between voxel centres (at most ``modic_spot_mm`` along every axis, its
    depth at least half its width): a spot, not a band. Spread along the endplate (21 mm
    AP) the same change is a Modic change, and ``modic_spot_mm`` 0 (the default) keeps the
    spot."""
    spot = np.zeros(SHAPE, bool)
    spot[3:8, 12:24, 17:24] = True
    wide = np.zeros(SHAPE, bool)
    wide[3:8, 8:30, 17:24] = True
    expected = "II" if kind == "fat" else "III"

    def superior(region, params=SPOTS):
        t1, stir = normal_ratios()
        t1[region], stir[region] = (1.35, 0.6) if kind == "fat" else (0.5, 0.5)
        return run(body, t1, stir, params=params)[2]["superior"]

    assert superior(spot)["area_pct"] == 0.0 and superior(spot)["modic_type"] == "none"
    assert superior(wide)["modic_type"] == expected
    kept = superior(spot, PARAMS)
    assert kept["modic_type"] == expected and kept["area_pct"] == pytest.approx(20.0)


def test_a_round_spot_of_edema_at_an_endplate_stays_a_modic_i(body):
    """The spot test leaves edema to the edema's own focal-spot rule (its contrast
    decides): the same round region as edema is a Modic I."""
    t1, stir = normal_ratios()
    spot = np.zeros(SHAPE, bool)
    spot[3:8, 12:24, 17:24] = True
    t1[spot], stir[spot] = 0.85, 1.5
    assert run(body, t1, stir, spot, params=SPOTS)[2]["superior"]["modic_type"] == "I"


def test_s1_has_no_inferior_endplate_row():
    s1 = make_body("S1", 26)
    t1, stir = normal_ratios()
    near_bottom = np.s_[2:10, 10:20, 6:10]
    t1[near_bottom], stir[near_bottom] = 1.3, 0.8
    types, _, rows = run(s1, t1, stir)
    assert list(rows) == ["superior"]
    assert not types.any()  # next to the sacrum's lower end: no endplate, not Modic


# --- decisions that generalise: bands, texture, noise ----------------------------------------


def test_thin_fatty_band_along_the_endplate_is_not_type_ii(body):
    """Normal fatty marrow just under an endplate, thinner than a Modic change (2 mm)."""
    t1, stir = normal_ratios()
    band = np.s_[2:10, 6:34, 22:24]  # z 22-23: the first two marrow voxels, 2 mm
    t1[band], stir[band] = 1.35, 0.6
    types, _, rows = run(body, t1, stir, params=PARAMS.replace(modic_core_mm=0.0))
    assert not types.any() and rows["superior"]["modic_type"] == "none"
    # control: the same band 5 mm thick is a type II change
    t1[2:10, 6:34, 19:24], stir[2:10, 6:34, 19:24] = 1.35, 0.6
    _, _, rows = run(body, t1, stir, params=PARAMS.replace(modic_core_mm=0.0))
    assert rows["superior"]["modic_type"] == "II"


def test_region_barely_past_its_level_as_a_whole_is_not_modic(body):
    """Mottled marrow: a region whose voxels touch the T1-bright level but whose median does
    not pass it clearly is texture, not a fatty Modic change."""
    t1, stir = normal_ratios()
    region = np.s_[2:10, 6:16, 17:24]
    t1[region], stir[region] = 1.13, 0.8  # just past the 1.12 grow level
    t1[5, 10, 20] = 1.25  # one seed voxel
    types, *_ = run(body, t1, stir)
    assert not types.any()
    t1[region] = 1.2  # clearly fatty as a whole
    types, *_ = run(body, t1, stir)
    assert (types == 2).sum() == 8 * 10 * 7


def test_noisier_scan_needs_a_stronger_change(body):
    """A 1.25x T1-bright change is type II on a clean scan, not where normal marrow spreads
    0.1 (log SD) around its reference."""
    t1, stir = normal_ratios()
    region = np.s_[2:10, 6:16, 17:24]
    t1[region], stir[region] = 1.25, 0.8
    _, _, clean = run(body, t1, stir, sd={"t1": 0.02, "stir": 0.05})
    _, _, noisy = run(body, t1, stir, sd={"t1": 0.1, "stir": 0.05})
    assert clean["superior"]["modic_type"] == "II"
    assert noisy["superior"]["modic_type"] == "none"


def test_thin_dark_rim_joined_to_the_wall_layer_is_not_type_iii(body):
    """Partial volume of dark bone: a 2 mm dark rim under the endplate (31 of 300 columns,
    past ``modic_min_area_pct``) joined to a strip of the body's wall layer (AP y = 6,
    1 mm beyond the outermost voxel layer, 8 of its columns) that runs 8 mm down. The
    strip makes the region's typical reach deep, but the wall layer is the wall's cortex
    mixed with marrow, not sclerosis: no Modic III. The same strip one voxel further in
    (y = 7, 2 mm beyond the outer layer, deeper than ``modic_core_mm``) is marrow, and the
    region is a type III band."""

    def superior(strip_y: int) -> dict:
        t1, stir = normal_ratios()
        region = np.zeros(SHAPE, bool)
        region[2:10, 6:9, 22:24] = True  # the rim: z 22-23, y 6-8, every x
        region[2:9, 9, 22:24] = True  # and y 9 for x 2-8: 24 + 7 = 31 columns
        region[2:10, strip_y, 16:24] = True  # the strip down from it, 8 mm
        t1[region], stir[region] = 0.5, 0.5
        return run(body, t1, stir)[2]["superior"]

    assert superior(6)["modic_type"] == "none"
    assert superior(7)["modic_type"] == "III"
