"""Tests for bmetoolkit.pairing.pair: choosing the T1 and the T2 and/or STIR of a study."""

from __future__ import annotations

import pytest

from bmetoolkit.errors import AmbiguousSeriesError, CrossStudyError, MissingContrastError
from bmetoolkit.pairing.pair import pair_series
from bmetoolkit.pairing.series import SeriesInfo
from tests.helpers import series


def siemens_study() -> list[SeriesInfo]:
    return [
        series("localizer", 1, shape=(256, 256, 3)),
        series("t1_tse_sag", 3),
        series("t2_tse_sag", 4),
        series("t2_tirm_sag", 5),
        series("t2_tse_fs_sag", 6),
        series("t2_tse_tra", 7, plane="axial", shape=(320, 320, 30)),
    ]


def test_pairs_a_typical_study_and_prefers_stir_for_the_fluid_slot() -> None:
    pairing = pair_series(siemens_study())
    assert (pairing.t1.number, pairing.t2.number, pairing.stir.number) == (3, 4, 5)
    assert pairing.fluid.number == 5
    assert any("passed over #6" in r and "a true STIR" in r for r in pairing.reasons)
    assert any("passed over #7" in r and "sagittal" in r for r in pairing.reasons)
    assert not any(r.startswith("warning") for r in pairing.reasons)


def test_fat_suppressed_t2_fills_the_stir_slot_without_a_stir() -> None:
    study = [s for s in siemens_study() if s.number != 5]
    pairing = pair_series(study)
    assert (pairing.t2.number, pairing.stir.number) == (4, 6)
    assert any("no STIR in the study" in r and "#6" in r for r in pairing.reasons)


def test_fat_suppressed_t2_never_fills_the_plain_t2_slot() -> None:
    study = [series("t1_tse_sag", 3), series("T2W_SPAIR_SAG", 4)]
    pairing = pair_series(study)
    assert pairing.t2 is None
    assert pairing.stir.number == 4


def test_t1_and_stir_only() -> None:
    pairing = pair_series([series("SAG T1 FSE", 2), series("SAG STIR", 3)])
    assert pairing.t2 is None and pairing.stir.number == 3
    assert any("no T2 without fat suppression" in r for r in pairing.reasons)


def test_plain_t2_drives_fluid_when_nothing_fat_nulled_exists() -> None:
    pairing = pair_series([series("SAG T1 FSE", 2), series("Sag T2 FRFSE", 3)])
    assert pairing.stir is None and pairing.fluid.number == 3
    assert any("use the plain T2" in r for r in pairing.reasons)


def test_sagittal_preferred_over_axial() -> None:
    study = [
        series("T1_TSE_AX", 2, plane="axial"),
        series("T1_TSE_SAG", 3),
        series("T2_TSE_AX", 4, plane="axial"),
        series("T2_TSE_SAG", 5),
    ]
    pairing = pair_series(study)
    assert (pairing.t1.number, pairing.t2.number) == (3, 5)
    assert any("passed over #2" in r for r in pairing.reasons)


def test_non_sagittal_is_used_when_nothing_else_exists_with_a_warning() -> None:
    pairing = pair_series([series("T1_TSE_SAG", 3), series("T2_TSE_AX", 4, plane="axial")])
    assert pairing.t2.number == 4
    assert any(
        r.startswith("warning:") and "axial but the T1 is sagittal" in r for r in pairing.reasons
    )


def test_oblique_series_is_warned_about() -> None:
    pairing = pair_series([series("T1_TSE_SAG", 3, tilt_deg=18.0), series("T2_TSE_SAG", 4)])
    assert any("#3" in r and "oblique (18.0 deg" in r for r in pairing.reasons)


def test_original_preferred_over_derived() -> None:
    study = [
        series("T1_TSE_SAG", 3, ImageType=["DERIVED", "SECONDARY", "MPR"]),
        series("T1_TSE_SAG", 4, ImageType=["ORIGINAL", "PRIMARY", "M", "ND"]),
        series("T2_TSE_SAG", 5),
    ]
    assert pair_series(study).t1.number == 4


def test_ambiguous_t1_lists_candidates_and_how_to_choose() -> None:
    study = [
        series("T1_TSE_SAG", 3),
        series("T1_TSE_SAG_repeat", 8),
        series("T2_TSE_SAG", 4),
        series("T1_TSE_AX", 9, plane="axial"),
    ]
    with pytest.raises(AmbiguousSeriesError) as excinfo:
        pair_series(study)
    message = str(excinfo.value)
    assert "#3  T1_TSE_SAG  sagittal  448x448x15" in message
    assert "#8  T1_TSE_SAG_repeat  sagittal  448x448x15" in message
    assert "#9" not in message  # the axial T1 is not a candidate once sagittal ones exist
    assert "pair_series(..., t1=3)" in message
    assert "--t1-series 3" in message
    assert excinfo.value.path == "/data/study"


def test_ambiguous_fluid_slot_lists_the_stir_candidates() -> None:
    study = [series("t1_tse_sag", 3), series("t2_tirm_sag", 5), series("STIR_SAG_2", 6)]
    with pytest.raises(AmbiguousSeriesError, match="--stir-series 5") as excinfo:
        pair_series(study)
    assert "#6  STIR_SAG_2  sagittal" in str(excinfo.value)


@pytest.mark.parametrize("choice", [8, "8", "T1_TSE_SAG_REPEAT", "1.2.840.99.8"])
def test_explicit_choice_by_number_string_description_or_uid(choice: str | int) -> None:
    study = [
        series("T1_TSE_SAG", 3),
        series("T1_TSE_SAG_repeat", 8, uid="1.2.840.99.8"),
        series("T2_TSE_SAG", 4),
    ]
    pairing = pair_series(study, t1=choice)
    assert pairing.t1.number == 8
    assert any("chosen explicitly" in r for r in pairing.reasons)


def test_explicit_choice_of_a_nifti_file_by_path() -> None:
    t1 = series("scan_a", nifti="scan_a.nii.gz")
    t2 = series("sub-01_T2w", nifti="sub-01_T2w.nii.gz")
    pairing = pair_series([t1, t2], t1="/data/scan_a.nii.gz")
    assert pairing.t1 is t1 and pairing.t2 is t2


def test_explicit_choice_of_another_contrast_is_honoured_with_a_warning() -> None:
    study = [series("T1_TSE_SAG", 3), series("T2_TSE_SAG", 4), series("PD_TSE_SAG", 5)]
    pairing = pair_series(study, t2=5)
    assert pairing.t2.number == 5
    assert any(r.startswith("warning: #5") and "chosen explicitly" in r for r in pairing.reasons)


def test_explicit_choice_that_matches_nothing() -> None:
    with pytest.raises(MissingContrastError, match="no series matches t1=42"):
        pair_series(siemens_study(), t1=42)


def test_explicit_choice_that_matches_several_series() -> None:
    study = [
        series("T1_TSE_SAG", 3, uid="1.1.3"),
        series("T1_TSE_SAG", 4, uid="1.1.4"),
        series("T2_TSE_SAG", 5),
    ]
    with pytest.raises(AmbiguousSeriesError, match="t1='t1_tse_sag' matches 2 series") as exc:
        pair_series(study, t1="t1_tse_sag")
    assert "pair_series(..., t1=3)" in str(exc.value)


def test_same_series_for_two_roles_is_refused() -> None:
    with pytest.raises(AmbiguousSeriesError, match="both t2 and stir"):
        pair_series(siemens_study(), t2=4, stir=4)


def test_duplicate_series_numbers_fall_back_to_uid_in_the_hint() -> None:
    study = [
        series("T1_TSE_SAG", 3, uid="1.1.3", StudyInstanceUID="9.1"),
        series("T1_TSE_SAG", 3, uid="1.2.3", StudyInstanceUID="9.2"),
        series("T2_TSE_SAG", 5, StudyInstanceUID="9.1"),
    ]
    with pytest.raises(AmbiguousSeriesError) as excinfo:
        pair_series(study)
    message = str(excinfo.value)
    assert "from 2 different studies" in message
    assert "pair_series(..., t1='1.1.3')" in message and '--t1-series "1.1.3"' in message


def test_missing_t1_lists_every_series_with_its_contrast() -> None:
    study = [series("localizer", 1), series("T1 SAG POST GD", 2), series("T2_TSE_SAG", 3)]
    with pytest.raises(MissingContrastError) as excinfo:
        pair_series(study)
    message = str(excinfo.value)
    assert message.startswith("/data/study: no T1 series among 3 series. Series found:")
    assert "#1  localizer  sagittal  448x448x15  -> other (a localizer/scout" in message
    assert "#2  T1 SAG POST GD  sagittal  448x448x15  -> other (post-contrast T1" in message
    assert "#3  T2_TSE_SAG  sagittal  448x448x15  -> T2" in message
    assert "--t1-series <SeriesNumber>" in message


def test_missing_fluid_series() -> None:
    with pytest.raises(MissingContrastError, match="no T2 or STIR series among 2 series"):
        pair_series([series("t1_tse_sag", 3), series("Sag T2 FLAIR", 4)])


def test_no_series_at_all() -> None:
    with pytest.raises(MissingContrastError, match="no series given"):
        pair_series([])


def test_series_from_another_study_are_not_paired_silently() -> None:
    study = [
        series("t1_tse_sag", 3, StudyInstanceUID="9.1"),
        series("t2_tse_sag", 4, StudyInstanceUID="9.2"),
    ]
    with pytest.raises(CrossStudyError, match="pairing across studies is refused") as err:
        pair_series(study)
    assert "--allow-cross-study" in str(err.value) and "allow_cross_study=True" in str(err.value)
    with pytest.raises(CrossStudyError):
        pair_series(study, t2=4)  # choosing the series is not allowing the study
    pairing = pair_series(study, t2=4, allow_cross_study=True)
    assert pairing.t2.number == 4
    assert any(r.startswith("warning: #4") and "different study" in r for r in pairing.reasons)
    assert pair_series(study, allow_cross_study=True).t2.number == 4


def test_same_study_fluid_preferred_over_a_follow_up() -> None:
    study = [
        series("t1_tse_sag", 3, StudyInstanceUID="9.1"),
        series("t2_tse_sag", 4, StudyInstanceUID="9.1"),
        series("t2_tse_sag", 14, StudyInstanceUID="9.2"),
    ]
    pairing = pair_series(study)
    assert pairing.t2.number == 4
    assert any("passed over #14" in r and "another study" in r for r in pairing.reasons)


def test_frame_of_reference_breaks_ties_and_differences_are_warned() -> None:
    study = [
        series("t1_tse_sag", 3, FrameOfReferenceUID="5.1"),
        series("t2_tse_sag", 4, FrameOfReferenceUID="5.2"),
        series("t2_tse_sag", 5, FrameOfReferenceUID="5.1"),
    ]
    assert pair_series(study).t2.number == 5
    pairing = pair_series(study, t2=4)
    assert any("different frame of reference" in r for r in pairing.reasons)
