"""Normal-marrow reference: robust polynomial fit of log intensity, robust location."""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.reference import (
    ReferenceField,
    fit_reference,
    normal_marrow_reference,
)

N = 6000


def column_points(rng: np.random.Generator, n: int = N) -> np.ndarray:
    """RAS positions spread like a lumbar column: narrow in x and y, long in z (mm)."""
    return rng.uniform([-20, -15, -90], [20, 25, 70], size=(n, 3))


def quadratic_shading(xyz: np.ndarray) -> np.ndarray:
    """A coil-like multiplicative field: brighter anteriorly and towards the centre in z."""
    x, y, z = xyz.T
    return np.exp(0.004 * y - 0.002 * x + 0.003 * z - 3e-5 * (z - 10) ** 2)


def linear_shading(xyz: np.ndarray) -> np.ndarray:
    x, y, z = xyz.T
    return np.exp(0.006 * y + 0.002 * z - 0.001 * x)


def with_outliers(values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """15 % three times as bright (edema on STIR), 5 % at 40 % (sclerosis): 20 % outliers."""
    values = values.copy()
    kind = rng.permutation(len(values))
    n_bright, n_outliers = int(0.15 * len(values)), int(0.2 * len(values))
    bright, dark = kind[:n_bright], kind[n_bright:n_outliers]
    values[bright] *= 3.0
    values[dark] *= 0.4
    outlier = np.zeros(len(values), bool)
    outlier[bright] = outlier[dark] = True
    return values, outlier


@pytest.mark.parametrize(("degree", "shading"), [(1, linear_shading), (2, quadratic_shading)])
def test_recovers_multiplicative_shading_despite_outliers(rng, degree, shading):
    xyz = column_points(rng)
    truth = 420.0 * shading(xyz)
    values, outlier = with_outliers(truth * rng.normal(1, 0.05, N), rng)
    field = fit_reference(values, xyz, degree=degree)
    test_xyz = column_points(rng, 2000)
    error = field.at(test_xyz) / (420.0 * shading(test_xyz)) - 1
    assert np.abs(error).max() < 0.02
    ratio = values / field.at(xyz)
    assert np.median(ratio[~outlier]) == pytest.approx(1.0, abs=0.01)
    assert np.median(ratio[outlier & (ratio > 1)]) == pytest.approx(3.0, rel=0.03)
    assert field.degree == degree and field.n_voxels == N
    # MAD of all residuals: the 5 % noise, inflated by a third by 20 % outliers (a MAD over
    # 80 % N(0, s) and 20 % far values is the 62.5th percentile of |N(0, s)|: 1.32 s)
    assert 0.045 < field.spread < 0.08
    assert np.std(np.log(ratio)) > 0.3  # what a non-robust spread would be


def test_ordinary_least_squares_would_fail_the_same_check(rng):
    """Control: the outliers are strong enough that a non-robust fit misses by far more."""
    xyz = column_points(rng)
    truth = 420.0 * quadratic_shading(xyz)
    values, _ = with_outliers(truth * rng.normal(1, 0.05, N), rng)
    field = fit_reference(values, xyz, degree=2)
    from bmetoolkit.reference import _design

    design = _design((xyz - field.centre) / field.scale, 2)
    plain, *_ = np.linalg.lstsq(design, np.log(values), rcond=None)
    error = np.exp(design @ plain) / truth - 1
    assert np.median(error) > 0.05


def test_degree_too_low_cannot_follow_curvature(rng):
    """A degree-1 field cannot model the quadratic shading within 2 %: degree matters."""
    xyz = column_points(rng)
    values = 420.0 * quadratic_shading(xyz)
    field = fit_reference(values, xyz, degree=1)
    error = field.at(xyz) / values - 1
    assert np.abs(error).max() > 0.05


def test_degree_zero_is_one_value(rng):
    xyz = column_points(rng, 3000)
    values = 250.0 * rng.normal(1, 0.03, 3000)
    values[:600] *= 2.5
    field = fit_reference(values, xyz, degree=0)
    assert field.coefficients.shape == (1,)
    at = field.at(xyz[:10])
    assert np.ptp(at) == 0
    assert at[0] == pytest.approx(250.0, rel=0.01)
    assert field.to_dict()["level_at_centre"] == pytest.approx(250.0, rel=0.01)


def test_scale_and_translation_invariance(rng):
    xyz = column_points(rng)
    values = 420.0 * linear_shading(xyz) * rng.normal(1, 0.05, N)
    field = fit_reference(values, xyz, degree=2)
    scaled = fit_reference(7.0 * values, xyz, degree=2)
    np.testing.assert_allclose(scaled.at(xyz[:50]), 7.0 * field.at(xyz[:50]), rtol=1e-6)
    offset = np.array([100.0, -40.0, 300.0])
    shifted = fit_reference(values, xyz + offset, degree=2)
    np.testing.assert_allclose(shifted.at(xyz[:50] + offset), field.at(xyz[:50]), rtol=1e-6)


@pytest.mark.parametrize(("degree", "terms"), [(0, 1), (1, 4), (2, 10), (3, 20)])
def test_too_few_voxels(rng, degree, terms):
    xyz = column_points(rng, 10 * terms)
    values = np.full(10 * terms, 100.0)
    fit_reference(values, xyz, degree=degree)  # exactly enough
    with pytest.raises(ValueError, match="too few marrow voxels"):
        fit_reference(values[1:], xyz[1:], degree=degree)
    values[0] = 0.0  # non-positive voxels do not count
    with pytest.raises(ValueError, match=f"\\(({10 * terms - 1})\\)"):
        fit_reference(values, xyz, degree=degree)


def test_empty_input_is_too_few():
    with pytest.raises(ValueError, match="too few"):
        fit_reference(np.zeros(0), np.zeros((0, 3)), degree=0)


def test_to_dict_keys(rng):
    xyz = column_points(rng, 500)
    field = fit_reference(np.full(500, 80.0), xyz, degree=1)
    assert isinstance(field, ReferenceField)
    summary = field.to_dict()
    assert set(summary) == {"degree", "n_voxels", "log_spread", "level_at_centre"}
    assert summary["level_at_centre"] == pytest.approx(80.0)
    assert summary["log_spread"] == 0.0


def test_n4_removes_a_smooth_multiplicative_bias():
    from bmetoolkit.reference import n4_corrected

    shape = (48, 48, 12)
    i, j, _ = np.indices(shape, dtype=float)
    truth = np.full(shape, 500.0)
    truth[16:32, 16:32, 3:9] = 800.0  # a bright block: structure the bias must not erase
    bias = np.exp(0.5 * (i / shape[0]) - 0.3 * (j / shape[1]))
    mask = np.ones(shape, bool)
    corrected = n4_corrected(truth * bias, np.array([1.0, 1.0, 3.0]), mask)
    background = truth == 500.0
    before = np.std(np.log(truth * bias)[background])
    after = np.std(np.log(corrected)[background])
    assert after < 0.5 * before  # most of the shading is gone
    block = np.median(corrected[~background]) / np.median(corrected[background])
    assert block == pytest.approx(1.6, rel=0.1)  # contrast between tissues is kept


def test_analysis_with_bias_correction_runs_and_is_recorded():
    from bmetoolkit.analysis import analyze
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    from bmetoolkit.params import Parameters

    phantom = make_phantom(seed=2, lesions="edema", config=PhantomConfig.small())
    params = Parameters(reference_bias_correction=True)
    found = analyze(phantom.t1, stir=phantom.stir, vertebrae=phantom.truth.vertebrae, params=params)
    assert found.to_dict()["parameters"]["reference_bias_correction"] is True
    assert found.bme_volume_ml > 0


# --- normal marrow that lesions cannot bend --------------------------------------------------


def spine_like(rng, n_bodies=5, per_body=3000, offsets=None):
    """Marrow voxels of ``n_bodies`` stacked bodies (30 mm apart along z), T1 and STIR with
    5 % / 8 % noise; ``offsets`` multiplies each body's normal marrow."""
    offsets = np.ones(n_bodies) if offsets is None else np.asarray(offsets)
    body_of = np.repeat(np.arange(1, n_bodies + 1), per_body)
    xyz = rng.uniform(-12, 12, size=(len(body_of), 3))
    xyz[:, 2] += 30.0 * (body_of - 3)
    t1 = 600 * offsets[body_of - 1] * rng.normal(1, 0.05, len(body_of))
    stir = 150 * offsets[body_of - 1] * rng.normal(1, 0.08, len(body_of))
    names = {b: f"L{b}" for b in range(1, n_bodies + 1)}
    return xyz, body_of, t1, stir, names


def reference_of(xyz, body_of, t1, stir, names, **changes):
    options = {
        "degree": 1,
        "inlier_z": 2.5,
        "per_body": True,
        "max_body_offset": 0.2,
        "min_normal_fraction": 0.4,
    } | changes
    return normal_marrow_reference({"t1": t1, "stir": stir}, xyz, body_of, names, **options)


def test_edema_filling_half_a_body_does_not_move_its_factor(rng):
    xyz, body_of, t1, stir, names = spine_like(rng)
    edema = (body_of == 3) & (np.abs(xyz[:, 2]) < 6.5)  # the central half of body 3
    t1[edema] *= 0.85  # only mildly T1-dark, inside the T1 noise window
    stir[edema] *= 1.8
    ref = reference_of(xyz, body_of, t1, stir, names)
    assert ref.body_factors["L3"]["stir"] == pytest.approx(1.0, abs=0.02)
    assert ref.body_factors["L3"]["t1"] == pytest.approx(1.0, abs=0.02)
    assert not ref.normal[edema].any()  # left out of the T1 reference too
    assert ref.body_confidence["L3"]["confidence"] == "moderate"
    assert ref.body_confidence["L1"]["confidence"] == "high"
    stir_ratio = np.exp(ref.log_residual["stir"])
    assert np.median(stir_ratio[edema]) == pytest.approx(1.8, rel=0.03)


def test_a_body_whose_normal_marrow_is_brighter_keeps_its_own_factor(rng):
    xyz, body_of, t1, stir, names = spine_like(rng, offsets=[1, 1, 1.12, 1, 1])
    ref = reference_of(xyz, body_of, t1, stir, names, degree=0)
    assert ref.body_factors["L3"]["t1"] == pytest.approx(1.12, rel=0.02)
    assert ref.body_confidence["L3"]["normal_fraction"] > 0.9


def test_a_body_mostly_abnormal_gets_the_field_and_low_confidence(rng):
    xyz, body_of, t1, stir, names = spine_like(rng)
    diffuse = (body_of == 2) & (rng.random(len(body_of)) < 0.8)
    stir[diffuse] *= 2.5
    ref = reference_of(xyz, body_of, t1, stir, names)
    assert ref.body_confidence["L2"]["confidence"] == "low"
    assert ref.body_factors["L2"]["stir"] == 1.0
    assert np.median(np.exp(ref.log_residual["stir"])[diffuse]) == pytest.approx(2.5, rel=0.05)


def test_several_abnormal_bodies_do_not_move_the_field(rng):
    xyz, body_of, t1, stir, names = spine_like(rng, n_bodies=6)
    lesion = np.isin(body_of, [2, 3, 5]) & (rng.random(len(body_of)) < 0.45)
    stir[lesion] *= 2.2
    ref = reference_of(xyz, body_of, t1, stir, names)
    normal_stir = np.exp(ref.log_residual["stir"])[~lesion]
    assert np.median(normal_stir) == pytest.approx(1.0, abs=0.02)


def test_user_region_is_the_reference(rng):
    xyz, body_of, t1, stir, names = spine_like(rng)
    region = body_of == 5
    t1[body_of != 5] *= 0.7  # the rest of the marrow is abnormal
    ref = reference_of(xyz, body_of, t1, stir, names, degree=0, normal_mask=region)
    assert ref.source == "mask"
    assert np.median(np.exp(ref.log_residual["t1"])[body_of == 1]) == pytest.approx(0.7, rel=0.03)
    assert ref.summary()["n_normal_voxels"] == region.sum()


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_fields_at_many_positions_are_the_polynomial_and_the_same_at_each_position(rng, degree):
    """The block-wise evaluation (several blocks and a partial last one) is the design
    matrix's product up to rounding, and a position's value does not depend on the other
    positions evaluated with it (a refit, the other image, a subset: the same value)."""
    from bmetoolkit.reference import MonomialsAt, _design

    xyz = column_points(rng, 2 * MonomialsAt.BLOCK + 123)
    field = fit_reference(420.0 * quadratic_shading(xyz), xyz, degree=degree)
    other = ReferenceField(
        rng.normal(0, 0.3, field.coefficients.shape), field.centre, field.scale, degree, 0.1, 1
    )
    logs = MonomialsAt(xyz, field).log_fields([field, other])
    for values, coefficients in zip(logs, (field.coefficients, other.coefficients), strict=True):
        expected = _design((xyz - field.centre) / field.scale, degree) @ coefficients
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)
    subset = xyz[MonomialsAt.BLOCK - 7 :: 5]
    assert np.array_equal(field.log_at(subset), logs[0][MonomialsAt.BLOCK - 7 :: 5])
    with pytest.raises(ValueError, match="normalisation"):
        MonomialsAt(xyz, field).log_fields([fit_reference(np.full(500, 80.0), xyz[:500])])


@pytest.mark.parametrize("n_bodies", [1, 3, 300])
@pytest.mark.parametrize("offset", [0, 500])  # ids of region numbers; some below 0
def test_each_bodys_voxels_are_found_whatever_its_id(rng, n_bodies, offset):
    from bmetoolkit.reference import _body_members

    ids = np.sort(rng.choice(100_000, n_bodies, replace=False)) - offset  # sparse
    body_of = rng.choice(ids, 20_000)
    body_ids, index, members = _body_members(body_of)
    assert body_ids == [int(b) for b in np.unique(body_of)]
    assert np.array_equal(np.asarray(body_ids)[index], body_of)
    for b, mine in zip(body_ids, members, strict=True):
        assert np.array_equal(mine, np.flatnonzero(body_of == b))


def test_per_body_factors_do_not_depend_on_how_bodies_are_numbered(rng):
    xyz, body_of, t1, stir, names = spine_like(rng, offsets=[1, 1.1, 1, 0.9, 1])
    sparse = {b: 1000 - 7 * b for b in names}  # descending, not from 1
    a = reference_of(xyz, body_of, t1, stir, names)
    b = reference_of(
        xyz, np.array([sparse[v] for v in body_of]), t1, stir,
        {sparse[k]: v for k, v in names.items()},
    )  # fmt: skip
    assert a.body_factors == b.body_factors
    assert a.body_factors["L2"]["t1"] == pytest.approx(1.1, rel=0.02)
    assert a.body_confidence == b.body_confidence
    assert np.array_equal(a.normal, b.normal)
    for name in ("t1", "stir"):
        assert np.array_equal(a.log_residual[name], b.log_residual[name])


def mottled_block(rng, lesion_ratio=1.45):
    """Marrow voxels of a 40 x 40 x 30 mm block at 1 mm, mottled (SD 12 % on the STIR, in
    patches of about 5 mm, the T1 darker where the STIR is brighter) with a faint edema
    filling a quarter of it; and ``region_mean``, the box average over 15 mm within it."""
    from scipy import ndimage

    shape = (40, 40, 30)
    mottle = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2.0)
    mottle *= 0.12 / mottle.std()
    lesion = np.zeros(shape, bool)
    lesion[20:, :20] = True
    stir = 150 * np.exp(mottle) * rng.normal(1, 0.03, shape)
    t1 = 600 * np.exp(-0.5 * mottle) * rng.normal(1, 0.03, shape)
    stir[lesion] *= lesion_ratio
    t1[lesion] *= 0.85
    xyz = np.indices(shape).reshape(3, -1).T.astype(float)

    def region_mean(values):
        return ndimage.uniform_filter(values.reshape(shape), 15, mode="nearest").ravel()

    body_of = np.ones(t1.size, int)
    return xyz, body_of, t1.ravel(), stir.ravel(), lesion.ravel(), region_mean


def test_a_faint_edema_filling_a_quarter_of_mottled_marrow_does_not_widen_the_spread(rng):
    # Voxel by voxel a 1.45 x edema lies within 3.1 SDs of marrow mottled at 12 %: the
    # per-voxel window takes most of it for normal marrow and the spread widens. Averaged
    # over 15 mm the mottle shrinks and the edema does not, so it is left out there.
    xyz, body_of, t1, stir, lesion, region_mean = mottled_block(rng)
    healthy = ~lesion
    plain = reference_of(xyz, body_of, t1, stir, {1: "bone"}, degree=0)
    regional = reference_of(
        xyz, body_of, t1, stir, {1: "bone"}, degree=0, region_mean=region_mean, region_z=3.0
    )
    assert plain.normal[lesion].mean() > 0.5  # the per-voxel window alone keeps it
    assert regional.normal[lesion].mean() < 0.1
    far = healthy & ((xyz[:, 0] < 12) | (xyz[:, 1] > 27))  # 8 mm or more from it
    assert regional.normal[far].mean() > 0.9
    mottle_only = reference_of(
        xyz[healthy], body_of[healthy], t1[healthy], stir[healthy], {1: "bone"}, degree=0
    )
    assert plain.fields["stir"].spread > 1.15 * mottle_only.fields["stir"].spread
    assert regional.fields["stir"].spread == pytest.approx(
        mottle_only.fields["stir"].spread, rel=0.1
    )


def test_the_region_scale_changes_little_on_mottled_marrow_without_a_lesion(rng):
    xyz, body_of, t1, stir, lesion, region_mean = mottled_block(rng, lesion_ratio=1.0)
    t1[lesion] /= 0.85
    plain = reference_of(xyz, body_of, t1, stir, {1: "bone"}, degree=0)
    regional = reference_of(
        xyz, body_of, t1, stir, {1: "bone"}, degree=0, region_mean=region_mean, region_z=3.0
    )
    assert regional.normal.mean() > plain.normal.mean() - 0.05
    assert regional.fields["stir"].spread == pytest.approx(plain.fields["stir"].spread, rel=0.05)


def test_the_region_scale_reference_is_for_marrow_masks_not_the_spine():
    from bmetoolkit.analysis import analyze
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    from bmetoolkit.params import Parameters

    phantom = make_phantom(seed=2, lesions="edema", config=PhantomConfig.small())
    results = [
        analyze(
            phantom.t1,
            stir=phantom.stir,
            vertebrae=phantom.truth.vertebrae,
            params=Parameters(reference_region_mm=width),
        )
        for width in (0.0, 15.0)
    ]
    assert results[0].bme_volume_ml > 0
    assert results[0].bme_volume_ml == results[1].bme_volume_ml
