"""The field both visits imaged (bmetoolkit.followup.field): each grid placed the right way.

The registration maps baseline RAS -> follow-up RAS. These tests place synthetic grids whose
coverage is known without the code under test (by hand, or point by point through explicit
world coordinates), so a transform applied in the wrong direction, or a per-body transform
given to the wrong side, fails them.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmetoolkit.followup.field import seen_by_both
from bmetoolkit.volume import Volume
from tests.helpers import in_body, slab_from_middle_of


def _rotation(axis: int, degrees: float, centre=(0.0, 0.0, 0.0), shift=(0.0, 0.0, 0.0)):
    """A rigid 4x4: rotation by ``degrees`` about ``axis`` through ``centre``, then ``shift``."""
    a = np.deg2rad(degrees)
    i, j = [n for n in range(3) if n != axis]
    rot = np.eye(4)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3], back[:3, 3] = -np.asarray(centre), np.asarray(centre)
    move = np.eye(4)
    move[:3, 3] = shift
    return move @ back @ rot @ to_centre


def _labels(shape, body_ids=(1,)):
    """Bodies as slabs along the last-but-one axis, one per id, covering the whole grid."""
    data = np.zeros(shape, np.uint8)
    edges = np.linspace(0, shape[1], len(body_ids) + 1).astype(int)
    for body, lo, hi in zip(body_ids, edges[:-1], edges[1:], strict=True):
        data[:, lo:hi, :] = body
    return data


def _brute_inside(here: Volume, other: Volume, into_other) -> np.ndarray:
    """Point by point: is each voxel centre of ``here``, carried into the other visit's
    world by ``into_other(voxel label)``, inside ``other``'s voxel edges?"""
    labels = np.asarray(here.data)
    out = np.zeros(labels.shape, bool)
    to_other_voxel = np.linalg.inv(other.affine)
    upper = np.asarray(other.data.shape) - 0.5
    for index in np.ndindex(labels.shape):
        world = here.affine @ np.array([*index, 1.0])
        voxel = (to_other_voxel @ into_other(int(labels[index])) @ world)[:3]
        out[index] = bool(np.all(voxel >= -0.5) and np.all(voxel < upper))
    return out


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("per_body", [False, True])
def test_a_shifted_anatomy_loses_the_far_slices_on_the_right_side(axis, sign, per_body):
    # Both visits on the same anisotropic grid; the anatomy sits 2 voxels further along
    # `axis` (times `sign`) in the follow-up's world: baseline point x <-> follow-up x + 2s.
    spacing = np.array([0.7, 0.5, 4.0])
    shape = (6, 7, 5)
    affine = np.diag([*spacing, 1.0])
    base = Volume(_labels(shape), affine, kind="label")
    follow = Volume(_labels(shape), affine, kind="label")
    transform = np.eye(4)
    transform[axis, 3] = sign * 2 * spacing[axis]
    whole, bodies = (np.eye(4), {1: transform}) if per_body else (transform, {})
    in_b, in_f = seen_by_both(base, follow, whole, {1: 1}, bodies)

    n = shape[axis]
    kept_b = np.arange(n) < n - 2 if sign > 0 else np.arange(n) >= 2
    kept_f = np.arange(n) >= 2 if sign > 0 else np.arange(n) < n - 2
    shape_along = [1, 1, 1]
    shape_along[axis] = n
    np.testing.assert_array_equal(in_b, np.broadcast_to(kept_b.reshape(shape_along), shape))
    np.testing.assert_array_equal(in_f, np.broadcast_to(kept_f.reshape(shape_along), shape))


@pytest.mark.parametrize("per_body", [False, True])
def test_a_grid_that_follows_the_patient_covers_everything(per_body):
    # The patient moved (rotated 25 degrees about S and shifted) and the follow-up grid was
    # placed on the anatomy exactly as the baseline's: the two visits image the same
    # tissue, so nothing is outside. A transform applied the wrong way round places the
    # other grid twice the movement off and cuts both.
    base_affine = np.diag([0.6, 0.8, 3.5, 1.0])
    base_affine[:3, 3] = (-5.0, -8.0, -7.0)
    shape = (16, 20, 5)
    transform = _rotation(2, 25.0, centre=(0.0, 0.0, 0.0), shift=(3.0, -2.0, 1.0))
    base = Volume(_labels(shape, (1, 2)), base_affine, kind="label")
    follow = Volume(_labels(shape, (4, 5)), transform @ base_affine, kind="label")
    pairs = {1: 4, 2: 5}
    whole, bodies = (np.eye(4), dict.fromkeys(pairs, transform)) if per_body else (transform, {})
    in_b, in_f = seen_by_both(base, follow, whole, pairs, bodies)
    assert in_b.all() and in_f.all()


def test_one_body_with_its_own_transform_and_the_rest_with_the_whole_one():
    # Oblique follow-up grid with non-square pixels; body 1 moved on its own (its transform
    # differs from the whole one), body 2 and the background follow the whole transform.
    base_affine = np.diag([0.5, 0.5, 4.0, 1.0])
    shape = (24, 24, 4)
    base = Volume(_labels(shape, (1, 2)), base_affine, kind="label")
    follow_affine = _rotation(0, 12.0, shift=(1.5, 2.0, -3.0)) @ np.diag([0.9, 0.55, 3.3, 1.0])
    follow_shape = (12, 20, 5)
    follow_data = np.zeros(follow_shape, np.uint8)
    follow_data[:, :10] = 7
    follow_data[:, 10:] = 8
    follow_data[:, :, 0] = 0  # background on the follow-up grid too
    follow = Volume(follow_data, follow_affine, kind="label")
    whole = _rotation(2, -8.0, centre=(6.0, 6.0, 6.0), shift=(0.5, -1.0, 2.0))
    own = _rotation(1, 15.0, centre=(6.0, 3.0, 6.0), shift=(-2.0, 1.0, -1.5))
    pairs = {1: 7, 2: 8}
    in_b, in_f = seen_by_both(base, follow, whole, pairs, {1: own})

    expected_b = _brute_inside(base, follow, lambda label: own if label == 1 else whole)
    inv_own, inv_whole = np.linalg.inv(own), np.linalg.inv(whole)
    expected_f = _brute_inside(follow, base, lambda label: inv_own if label == 7 else inv_whole)
    # the cases are not trivial: each side has voxels in and out, and the body's own
    # transform decides some of them
    for expected in (expected_b, expected_f):
        assert 0.1 < expected.mean() < 0.9
    assert (expected_b != _brute_inside(base, follow, lambda label: whole)).any(), (
        "body 1's own transform should decide some baseline voxels"
    )
    np.testing.assert_array_equal(in_b, expected_b)
    np.testing.assert_array_equal(in_f, expected_f)


@pytest.mark.parametrize("narrow", ["followup", "baseline"])
def test_a_field_wholly_inside_the_other(narrow):
    # One visit's slab is a box of the other's (same voxels, fewer of them), the anatomy
    # 1 mm further right in the follow-up's world: the narrow visit keeps all of its voxels,
    # the wide one exactly those the box holds.
    spacing = np.array([1.0, 0.8, 4.0])
    wide_shape, box = (20, 18, 6), (slice(4, 14), slice(3, 11), slice(1, 5))
    wide_affine = np.diag([*spacing, 1.0])
    narrow_affine = wide_affine.copy()
    narrow_affine[:3, 3] = spacing * [s.start for s in box]
    shift = np.eye(4)
    shift[0, 3] = 1.0
    wide = Volume(_labels(wide_shape), wide_affine, kind="label")
    narrow_shape = tuple(s.stop - s.start for s in box)
    expected_wide = np.zeros(wide_shape, bool)
    expected_wide[box] = True
    if narrow == "followup":
        follow = Volume(_labels(narrow_shape), shift @ narrow_affine, kind="label")
        in_b, in_f = seen_by_both(wide, follow, shift, {1: 1}, {})
        np.testing.assert_array_equal(in_b, expected_wide)
        assert in_f.all()
    else:
        base = Volume(_labels(narrow_shape), narrow_affine, kind="label")
        follow = Volume(_labels(wide_shape), shift @ wide_affine, kind="label")
        in_b, in_f = seen_by_both(base, follow, shift, {1: 1}, {})
        assert in_b.all()
        np.testing.assert_array_equal(in_f, expected_wide)


def test_a_slab_that_cuts_a_modic_change_at_one_visit_is_not_a_modic_change():
    # The follow-up's slab begins halfway through the L3 Modic I lesion: its analysis finds
    # the part it imaged (the endplate's Modic volume in proportion to the lesion's voxels
    # left). Compared where both visits imaged, the Modic volume does not fall.
    from dataclasses import replace

    from bmetoolkit.data.phantom.followup import make_phantom_pair, truth_visit
    from bmetoolkit.data.phantom.lesions import Lesion
    from bmetoolkit.followup.compare import compare

    lesion = Lesion("L3", "modic1", endplate="inferior", height_frac=0.4, ap_width=0.8)
    pair = make_phantom_pair(33, kind="random", small=True, retest=True, baseline_lesions=[lesion])
    base, follow = truth_visit(pair.baseline), truth_visit(pair.followup)
    modic = in_body(follow, "modic_map", "L3")
    cut, box = slab_from_middle_of(follow, modic)
    left = modic[box].sum() / modic.sum()
    endplates = [
        row | {"volume_ml": round(row["volume_ml"] * left, 4)}
        if row["level"] == "L3" and row["endplate"] == "inferior"
        else row
        for row in follow.endplates
    ]
    narrower = replace(cut, report=follow.report | {"endplates": endplates})

    def l3_inferior(**kw):
        rows = compare(base, narrower, **kw).change_rows
        return next(r for r in rows if r["region"] == "L3 inferior")

    before = next(
        r["volume_ml"] for r in base.endplates if r["level"] == "L3" and r["endplate"] == "inferior"
    )
    assert 0.25 < left < 0.75 and before > 0.5
    whole = l3_inferior(whole_fields=True)
    assert whole["modic_change_ml"] < -0.25 * before  # each visit's whole field: a loss
    row = l3_inferior()
    assert row["modic_ml_baseline"] < 0.8 * before
    assert abs(row["modic_change_ml"]) < 0.15 * before
    assert row["modic_ml_followup"] == whole["modic_ml_followup"]  # nothing of it outside
    assert "Modic change here lies outside the follow-up's field of view" in row["note"]
