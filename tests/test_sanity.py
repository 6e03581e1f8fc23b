"""Images in the wrong role are refused, judged from the pixels; healthy real pairs pass."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from bmetoolkit.cli import main
from bmetoolkit.data import datasets
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.data.phantom.joint import make_joint_phantom
from bmetoolkit.errors import ContrastMismatchError, DuplicateInputError
from bmetoolkit.pairing.sanity import (
    FAT_SCARCE,
    MARROW_NOT_FATTY,
    MARROW_RULES,
    MIN_FLUID_DARK_FRACTION,
    NAMED_SWAP,
    NOTE_RULES,
    _marrow,
    check_bone_roles,
    judge_roles,
)
from bmetoolkit.pairing.tissue import RoleEvidence
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume
from tests.fuzz.corpus import make_seeds


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("sanity_seeds"))


@pytest.mark.parametrize("seed", [0, 11])
@pytest.mark.parametrize(
    "size", ["small", pytest.param("realistic", marks=pytest.mark.slow)]
)  # fmt: skip
def test_phantom_t1_passes_and_a_t2_as_t1_is_refused(seed, size):
    """A genuine pair passes; a T2 as the T1, with the STIR or with another T2, does not."""
    config = PhantomConfig.small() if size == "small" else PhantomConfig.realistic()
    phantom = make_phantom(seed=seed, lesions="healthy", config=config)
    study = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)
    assert min(study.role_checks.values()) > MIN_FLUID_DARK_FRACTION
    with pytest.raises(ContrastMismatchError, match="does not look like a T1"):
        Study.from_images(phantom.t2, stir=phantom.stir)  # a T2 as the T1
    with pytest.raises(ContrastMismatchError):
        Study.from_images(phantom.t2, t2=phantom.t2.with_data(phantom.t2.data // 2 + 1))


@pytest.mark.parametrize("seed", [40, 41, 42])
def test_randomized_phantoms_pass_and_their_t2_as_t1_is_refused(seed):
    from bmetoolkit.data import phantom as phantoms

    make = getattr(phantoms, "make_randomized_phantom", None)
    if make is None:
        pytest.skip("randomized phantoms are not in this version")
    study = make(seed, kind="random", small=True)
    assert Study.from_images(study.t1, t2=study.t2, stir=study.stir).role_checks
    with pytest.raises(ContrastMismatchError):
        Study.from_images(study.t2, stir=study.stir)


@pytest.mark.parametrize("seed", [0, 11])
def test_stir_as_t1_with_a_plain_t2_and_swapped_roles_are_refused(seed):
    """Fat bright on the T2 and dark on the "T1": a STIR in the T1's role; T1 and T2, or T1 and
    STIR, swapped; each refused, naming what the images show."""
    phantom = make_phantom(seed=seed, lesions="healthy", config=PhantomConfig.small())
    t1, t2, stir = phantom.t1, phantom.t2, phantom.stir
    with pytest.raises(ContrastMismatchError, match="fat is suppressed on it"):
        Study.from_images(stir, t2=t2)
    with pytest.raises(ContrastMismatchError, match="fat is suppressed on it"):
        Study.from_images(stir, stir=t1)
    with pytest.raises(ContrastMismatchError, match="does not look like a T1 next to the T2"):
        Study.from_images(t2, t2=t1)
    with pytest.raises(ContrastMismatchError, match="verify_roles=False") as err:
        Study.from_images(t2, t2=t1)
    assert "--no-role-check" in err.value.for_cli() and "verify_roles" not in err.value.for_cli()


@pytest.mark.parametrize(
    ("seed", "joint", "plane", "fluid", "rule"),
    [
        (9, "sij", "sagittal", "t2fs", "fat looks scarce on it"),  # surface fat near air level
        (2, "sij", "axial", "pdfs", "fat is suppressed on it"),  # a thin layer, above noise
        (4, "knee", "sagittal", "stir", "fat is suppressed on it"),
        (5, "knee", "coronal", "t2fs", "fat is suppressed on it"),
    ],
)
def test_genuine_joint_t1s_pass_and_a_swap_is_refused(seed, joint, plane, fluid, rule):
    """On joints, muscle (not fluid) may be the brightest tissue on the STIR: a genuine T1 is
    accepted. T1 and fluid image swapped are refused: by the surface fat where it is in view,
    else because fat (bright on a T1, suppressed on the other) is scarcer than fluid."""
    phantom = make_joint_phantom(seed, joint=joint, plane=plane, fluid=fluid, small=True)
    study = Study.from_images(phantom.t1, stir=phantom.fluid)
    assert study.role_checks["stir"] is not None
    with pytest.raises(ContrastMismatchError, match=rule):
        Study.from_images(phantom.fluid, stir=phantom.t1)


def test_a_swap_in_a_view_without_air_gets_a_note_and_its_bone_masks_refuse_it():
    """Sacroiliac joints in a coronal view without air around the body: the fat-scarce
    relation speaks against the swapped roles, but a view cut inside the body cannot be told
    from one filled by marrow by it: a note, not a refusal. The bone masks' fatty marrow
    refuses the swap."""
    phantom = make_joint_phantom(1, joint="sij", plane="coronal", fluid="stir", small=True)
    study = Study.from_images(phantom.fluid, stir=phantom.t1)
    assert any("not fully checked against the STIR: fat may be scarce" in n for n in study.notes)
    with pytest.raises(ContrastMismatchError, match="marrow"):
        Study.from_images(phantom.fluid, stir=phantom.t1, labels=phantom.truth.bones)


def _inner_part(volume: Volume, margin: float = 0.2, axes: int = 2) -> Volume:
    """``volume`` without the outer ``margin`` of each of its first ``axes`` axes (in-plane:
    a view without air; all three: a tight view inside the body)."""
    box = tuple(
        slice(round(n * margin), n - round(n * margin)) if axis < axes else slice(None)
        for axis, n in enumerate(volume.shape)
    )
    corner = volume.affine @ np.array([b.start or 0 for b in box] + [1.0])
    affine = volume.affine.copy()
    affine[:3, 3] = corner[:3]
    return Volume(np.asarray(volume.data)[box], affine, kind=volume.kind, meta=volume.meta)


@pytest.fixture(scope="module")
def knee():
    """Tuning knee 0 (sagittal STIR) seen without its surface (the inner 60 % of each
    in-plane axis): no air in view, so the surface rules cannot judge it, and its swap
    passes where no mask is given."""
    phantom = make_joint_phantom(0, joint="knee", plane="sagittal", fluid="stir", small=True)
    return replace(phantom, t1=_inner_part(phantom.t1), fluid=_inner_part(phantom.fluid))


@pytest.mark.parametrize(("seed", "plane"), [(0, "sagittal"), (2, "coronal")])
def test_genuine_tight_view_filled_by_marrow_is_not_refused(seed, plane):
    """A view inside the knee (the inner 40 % of every axis: no air, fatty marrow fills
    it) has its T1-to-STIR ratio's median at fat, so the lower tail is the long one on the
    genuine pair (tails about -0.7, which refused it before): a note, not a refusal. Its
    swap is refused by the bone masks' marrow."""
    phantom = make_joint_phantom(seed, joint="knee", plane=plane, fluid="stir", small=True)
    t1, stir, bones = (
        _inner_part(v, margin=0.3, axes=3) for v in (phantom.t1, phantom.fluid, phantom.truth.bones)
    )
    study = Study.from_images(t1, stir=stir)
    assert any("fat may be scarce" in note for note in study.notes)
    assert Study.from_images(t1, stir=stir, labels=bones).role_checks["stir"] is not None
    with pytest.raises(ContrastMismatchError, match="marrow"):
        Study.from_images(stir, stir=t1, labels=bones)


def test_bone_masks_reach_the_role_check(knee):
    """``marrow=`` bone masks are read after the study is built; their fatty marrow (bright
    on a T1, dark on a STIR) still refuses a swapped knee that the images alone let through,
    and a genuine knee with the same masks is analysed."""
    from bmetoolkit.analysis import analyze

    assert Study.from_images(knee.fluid, stir=knee.t1).role_checks["stir"] is not None
    with pytest.raises(ContrastMismatchError, match="marrow looks less fatty on it") as err:
        analyze(knee.fluid, stir=knee.t1, marrow=knee.truth.bones)
    assert "--no-role-check" in err.value.for_cli()
    result = analyze(knee.t1, stir=knee.fluid, marrow=knee.truth.bones)
    assert not any("marrow" in note and "check the roles" in note for note in result.notes)


def test_bone_role_check_is_skipped_when_roles_are_not_verified(knee):
    unchecked = Study.from_images(
        knee.fluid, stir=knee.t1, labels=knee.truth.bones, verify_roles=False
    )
    assert check_bone_roles(unchecked, np.asarray(unchecked.labels.data) > 0) is unchecked


def test_marrow_rules_give_a_note_when_the_t1_is_named_t1(knee):
    """The marrow rules are recognised by their rule, not their wording: a T1 whose header
    says T1 is used with a note when only the marrow speaks against it."""
    named = knee.fluid.with_data(
        knee.fluid.data, meta={**knee.fluid.meta, "SeriesDescription": "SAG_T1"}
    )
    study = Study.from_images(named, stir=knee.t1, labels=knee.truth.bones)
    note = next(n for n in study.notes if "marrow looks less fatty" in n)
    assert "its name or header says T1, so it is used as the T1" in note


def test_judge_roles_names_its_rule():
    surface = dict(
        fat_contrast=0.1, fat_t1_rank=0.4, fat_fluid_rank=0.4, fat_t1_over_air=1.5,
        fat_fluid_over_air=1.5, brighter_on_t1=0.5,
    )  # the surface fat found, none of its rules speaking  # fmt: skip
    evidence = RoleEvidence(
        5000, fluid_dark=0.3, fluid_bright=0.0, marrow_ratio_position=0.3,
        marrow_ratio_rank=0.2, marrow_level_gap=-0.4, ratio_tails=-0.8, **surface,
    )  # fmt: skip
    verdict = judge_roles(evidence, "stir")
    assert (verdict.rule, verdict.rule in MARROW_RULES) == (MARROW_NOT_FATTY, True)
    assert verdict.reason.startswith("marrow looks less fatty on it than on the STIR")
    one_reversed = replace(evidence, marrow_ratio_position=0.6, marrow_level_gap=0.2)
    assert judge_roles(one_reversed, "stir").rule == FAT_SCARCE  # one sign alone is not enough
    without_marrow = replace(evidence, marrow_ratio_position=None)
    assert judge_roles(without_marrow, "stir").rule == FAT_SCARCE
    assert judge_roles(without_marrow, "t2") is None  # a plain T2's fluid tail is long
    # no surface fat found (a view cut inside the body): the tails give a note, not a refusal
    inside = replace(without_marrow, **dict.fromkeys(surface))
    assert judge_roles(inside, "stir").rule in NOTE_RULES
    assert judge_roles(replace(inside, ratio_tails=-0.2), "stir") is None
    # ... unless a marrow mask shows marrow does not fill the view
    assert judge_roles(replace(inside, marrow_lit_share=0.2), "stir").rule == FAT_SCARCE
    assert judge_roles(replace(inside, marrow_lit_share=0.7), "stir").rule in NOTE_RULES


def test_a_swap_without_air_is_refused_where_the_mask_shows_marrow_does_not_fill_the_view():
    """Sacroiliac joints in an oblique view without air, fat-suppressed T2 swapped with the
    T1: no marrow relation is reversed enough, no surface fat is found, but the bone masks
    show marrow is a small part of the view (about an eighth of the lit tissue), so the
    fat-scarce relation refuses it; without the masks, a note."""
    phantom = make_joint_phantom(15, joint="sij", plane="oblique", fluid="t2fs", small=True)
    with pytest.raises(ContrastMismatchError, match="fat looks scarce on it"):
        Study.from_images(phantom.fluid, stir=phantom.t1, labels=phantom.truth.bones)
    study = Study.from_images(phantom.fluid, stir=phantom.t1)
    assert any("fat may be scarce" in note for note in study.notes)
    genuine = Study.from_images(phantom.t1, stir=phantom.fluid, labels=phantom.truth.bones)
    assert genuine.role_checks["stir"] is not None


def test_spineps_discs_are_not_marrow():
    """SPINEPS maps hold discs (100+) and endplates (200+) besides the vertebrae: a disc is
    fluid-bright, and must not make a genuine T1's "marrow" look dark."""
    data = np.zeros((4, 4, 3), np.uint8)
    data[0], data[1], data[2] = 20, 120, 220
    marrow = _marrow(Volume(data, np.eye(4), kind="label"))
    assert marrow[0].all() and not marrow[1:].any()


def test_a_plain_t2_in_the_stir_role_is_named_in_the_message():
    """With a plain T2 in the STIR role fat is bright on both images; the refusal names that
    possibility too."""
    phantom = make_phantom(seed=0, lesions="healthy", config=PhantomConfig.small())
    with pytest.raises(ContrastMismatchError, match="a plain T2 belongs in the T2 role"):
        Study.from_images(phantom.t1, stir=phantom.t2)


def test_real_cervical_gradient_echo_t1_passes():
    paths = datasets.cervical_pair()
    study = Study.from_images(paths["t1"], t2=paths["t2"])
    assert study.role_checks["t2"] >= 10 * MIN_FLUID_DARK_FRACTION  # measured: 0.25


def test_real_cervical_pair_swapped_is_refused_on_the_command_line(tmp_path, capsys):
    """A crop without air, fat layer or marrow mask: no tissue rule can judge it, but both
    names say the roles are swapped and the fluid fractions lean so: refused."""
    paths = datasets.cervical_pair()
    out = tmp_path / "out"
    code = main(
        ["analyze", "--t1", str(paths["t2"]), "--t2", str(paths["t1"]), "--out", str(out),
         "--no-qc"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "does not look like a T1" in err and "named a T2 or STIR and the T2 a T1" in err


def test_names_alone_do_not_refuse_a_pair_whose_fluid_speaks_for_the_roles(tmp_path):
    """Files named the wrong way round but given in the right roles: a note, no refusal."""
    paths = datasets.cervical_pair()
    t1, t2 = tmp_path / "sub_T2w.nii.gz", tmp_path / "sub_T1w.nii.gz"
    shutil.copyfile(paths["t1"], t1)
    shutil.copyfile(paths["t2"], t2)
    study = Study.from_images(t1, t2=t2)
    assert any("is named as a T2" in note for note in study.notes)


def test_named_swap_needs_both_names_and_the_images_leaning():
    leaning = RoleEvidence(
        134125, fluid_dark=0.234, fluid_bright=0.442, swapped_fluid_dark=0.311,
        swapped_fluid_bright=0.154,
    )  # fmt: skip
    assert judge_roles(leaning, "t2", names_swapped=True).rule == NAMED_SWAP
    assert judge_roles(leaning, "t2") is None
    one_way = replace(leaning, fluid_bright=0.1)  # fluid less dark on it, but not brighter
    assert judge_roles(one_way, "t2", names_swapped=True) is None


def test_same_file_or_identical_pixels_in_two_roles_are_refused(seeds, tmp_path):
    t1 = seeds.nifti / "t1.nii.gz"
    with pytest.raises(DuplicateInputError, match="the same file was given as the T1 and as"):
        Study.from_images(t1, t2=t1)
    copy = tmp_path / "t2.nii.gz"
    shutil.copyfile(t1, copy)
    with pytest.raises(DuplicateInputError, match="identical pixel data") as err:
        Study.from_images(t1, t2=copy)
    assert err.value.paths == tuple(sorted((str(t1), str(copy))))


def test_cli_refuses_a_t2_given_as_t1_naming_the_files(seeds, tmp_path, capsys):
    nifti = seeds.nifti
    out = tmp_path / "out"
    code = main(
        ["analyze", "--t1", str(nifti / "t2.nii.gz"), "--stir", str(nifti / "stir.nii.gz"),
         "--vertebrae", str(nifti / "vertebrae.nii.gz"), "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "does not look like a T1" in err and str(nifti / "t2.nii.gz") in err
    assert "names and headers say T1: T2, fluid: STIR" in err


def test_same_file_twice_on_the_command_line(seeds, tmp_path, capsys):
    t2 = str(seeds.nifti / "t2.nii.gz")
    assert main(["analyze", "--t1", t2, "--t2", t2, "--out", str(tmp_path / "o")]) == 1
    assert "the same file was given as the T1 and as the T2" in capsys.readouterr().err


def test_t2_only_is_analysed_and_says_what_it_could_not_assess(seeds, tmp_path):
    """Without a T1 the bodies come from the T2 alone (issue 16) and edema from the fluid
    image; the report says the T1 criterion was not applied and Modic types not assessed."""
    t2 = str(seeds.nifti / "t2.nii.gz")
    out = tmp_path / "o"
    assert main(["analyze", "--t2", t2, "--out", str(out), "--no-qc"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["decision_levels"]["t1_criterion"] == "not applied (no T1)"
    assert report["endplates"] and {row["modic_type"] for row in report["endplates"]} == {
        "not assessed"
    }
    assert any("no T1 was given" in note for note in report["notes"])
    assert report["labels"]["provenance"]["images_used"] == ["T2"]


def test_t1_only_message_in_command_line_terms(seeds, tmp_path, capsys):
    t1 = str(seeds.nifti / "t1.nii.gz")
    assert main(["analyze", t1, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "needs a fluid-sensitive image" in err and "--t2 PATH" in err and "t2=..." not in err


@pytest.mark.slow
def test_real_gradient_echo_t1_with_vertebrae_given_is_used_with_a_note(tmp_path):
    """The SCT cervical T1 is a gradient-echo T1 (marrow darker than the discs): with a
    vertebra mask its marrow is dark, weak evidence when its name says T1: a note, not a
    refusal (Modic is then not assessed, edema is)."""
    from pathlib import Path

    from bmetoolkit.analysis import analyze
    from bmetoolkit.io import save_nifti

    data = Path(__file__).resolve().parents[1] / "sample_data" / "spine" / "sct_testing_data"
    t1, t2 = data / "t1" / "t1w.nii.gz", data / "t2" / "t2.nii.gz"
    found = analyze(t1, t2=t2)  # automatic bodies: the vertebra mask to give back
    mask = save_nifti(found.vertebrae.bodies, tmp_path / "vertebrae.nii.gz")
    result = analyze(t1, t2=t2, vertebrae=mask)
    assert any("marrow is dark" in note and "used as the T1" in note for note in result.notes)


# the measures of a genuine moved and tilted thin-slab phantom (follow-up of held-out 5006)
# that the outshines-fat rule refused alone, and of the same with its fat relations unclear
_GENUINE_THIN_SLAB = RoleEvidence(
    2410652, fluid_dark=0.675, fluid_bright=0.294, fat_t1_rank=0.714, fat_fluid_rank=0.224,
    fat_contrast=1.66, fat_t1_over_air=6.717, fat_fluid_over_air=12.838,
    brighter_on_t1=1.032, ratio_tails=0.696,
)  # fmt: skip


def test_outshines_fat_does_not_refuse_a_t1_whose_surface_fat_is_clearly_a_t1s():
    assert judge_roles(_GENUINE_THIN_SLAB, "stir") is None
    unclear = replace(_GENUINE_THIN_SLAB, fat_contrast=0.5)
    verdict = judge_roles(unclear, "stir")
    assert verdict is not None and verdict.rule == "outshines_fat"


def _body_in_air(spacing_mm: float, noise: float = 1.0, seed: int = 0):
    """A fine-grid slab of a body in air: subcutaneous fat around muscle, marrow and fluid
    (T1 and STIR intensities), sizes in mm whatever the spacing."""
    size = round(120 / spacing_mm)
    mm = (np.indices((size, size, 8))[:2] + 0.5) * spacing_mm
    radius = np.hypot(mm[0] - 60, mm[1] - 60)
    t1, stir = np.zeros(radius.shape), np.zeros(radius.shape)
    for region, t1_level, stir_level in (
        (radius < 50, 100.0, 8.0),  # fat
        (radius < 42, 40.0, 35.0),  # muscle
        (radius < 25, 95.0, 15.0),  # fatty marrow
        (radius < 6, 20.0, 150.0),  # fluid
    ):
        t1[region], stir[region] = t1_level, stir_level
    rng = np.random.default_rng(seed)
    return np.abs(t1 + rng.normal(0, noise, t1.shape)), np.abs(
        stir + rng.normal(0, noise, t1.shape)
    )


def test_a_fine_grid_is_judged_on_every_kth_voxel_with_the_same_verdicts():
    from bmetoolkit.pairing.tissue import judging_steps, measure_roles

    t1, stir = _body_in_air(0.4)
    covered, spacing = np.ones(t1.shape, bool), (0.4, 0.4, 4.0)
    assert judging_steps(spacing, t1.size) == (2, 3, 1)  # at least 100,000 of 720,000
    for first, second, refused in ((t1, stir, False), (stir, t1, True)):
        judged = measure_roles(first, second, covered, spacing)
        every = measure_roles(first, second, covered, spacing, every_voxel=True)
        assert judged.voxels < every.voxels / 5
        for evidence in (judged, every):
            assert (judge_roles(evidence, "stir") is not None) == refused
        assert judged.fat_contrast == pytest.approx(every.fat_contrast, abs=0.2)


def test_report_keeps_what_the_role_check_measured(knee, tmp_path):
    """``report.json`` records every measure the role check judged, per fluid image (spine
    and bones; the bones' marrow measures once the masks are read), and none when the roles
    were not checked."""
    from bmetoolkit.analysis import analyze

    phantom = make_phantom(seed=0, lesions="healthy", config=PhantomConfig.small())
    spine = analyze(phantom.t1, t2=phantom.t2, stir=phantom.stir)
    spine.save(tmp_path / "spine", qc=False)
    saved = json.loads((tmp_path / "spine" / "report.json").read_text())["checks"]
    evidence = saved["role_evidence"]
    assert sorted(evidence) == ["stir", "t2"]
    for role in ("t2", "stir"):
        assert evidence[role]["fluid_dark"] == spine.study.role_checks[role]
        assert evidence[role]["fluid_dark"] > MIN_FLUID_DARK_FRACTION
        assert evidence[role]["voxels"] > 0 and "fat_contrast" in evidence[role]
    bones = analyze(knee.t1, stir=knee.fluid, marrow=knee.truth.bones)
    measured = bones.checks["role_evidence"]["stir"]
    assert measured["marrow_t1_rank"] is not None  # from the bone masks, read after the study
    assert measured["fluid_dark"] == bones.study.role_checks["stir"]
    unchecked = analyze(phantom.t1, t2=phantom.t2, stir=phantom.stir, verify_roles=False)
    assert unchecked.checks["role_evidence"] == {}
