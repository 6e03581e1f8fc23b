"""Tests for bmetoolkit.pairing.contrast: contrast detection from header tags and file names."""

from __future__ import annotations

import pytest

from bmetoolkit.pairing.contrast import ContrastCall, classify_series, contrast_from_name
from tests.helpers import series

# --------------------------------------------------------------------------- classification

VENDOR_DESCRIPTIONS = [
    # Siemens
    ("t1_tse_sag", "T1", False),
    ("T2_TSE_SAG", "T2", False),
    ("t2_tirm_sag", "STIR", True),
    ("t2_tse_fs_sag", "T2", True),
    ("t2_tse_dixon_sag_W", "T2", True),
    ("t2_tse_dixon_sag_opp", "other", False),
    ("t2_tse_dixon_sag_F", "other", False),
    ("t2_tirm_tra_dark-fluid", "other", False),
    ("t1_vibe_fs_sag", "other", True),
    ("t1_tse_sag_KM", "other", False),
    ("t2_me2d_tra", "other", False),
    ("localizer", "other", False),
    ("AAHead_Scout", "other", False),
    ("ep2d_diff", "other", False),
    ("ep2d_diff_tra_ADC", "other", False),
    # GE
    ("SAG T1 FSE", "T1", False),
    ("Sag T2 FRFSE", "T2", False),
    ("SAG STIR", "STIR", True),
    ("Sag T2 FSE FS", "T2", True),
    ("Sag T2 FLAIR", "other", False),
    ("Sag T1 FLAIR", "T1", False),
    ("Sag T2 FSE IDEAL WATER", "T2", True),
    ("3-Plane Loc", "other", False),
    ("T1 SAG POST GD", "other", False),
    ("SAG T1 +C", "other", False),
    ("SAG T1 PRE", "T1", False),
    ("SAG T1 PRE-CONTRAST", "T1", False),
    ("T1 SAG W/O CONTRAST", "T1", False),
    ("T1 SAG CONTRAST", "other", False),
    ("SAG T1 POST OP", "T1", False),
    # Philips
    ("T2W_TSE_SAG", "T2", False),
    ("T2W_SPAIR_SAG", "T2", True),
    ("sT1W_TSE", "T1", False),
    ("T1W_mDIXON_W", "other", True),
    ("sSTIR_SAG", "STIR", True),
    ("Survey", "other", False),
    ("PD_TSE_SAG", "other", False),
    ("PDW_SPAIR_COR", "T2", True),
    ("sPDW_SPIR_SAG", "T2", True),
    # joints: fat-suppressed proton density is the usual fluid-sensitive sequence
    ("pd_tse_fs_cor", "T2", True),
    ("Cor PD FatSat", "T2", True),
    ("COR PD FS", "T2", True),
    ("pd_tse_dixon_cor_W", "T2", True),
    ("Sag Proton Density", "other", False),
    # Hitachi / Canon
    ("T1WI_SE_SAG", "T1", False),
    ("T2WI_FSE_SAG", "T2", False),
    ("STIR_SAG", "STIR", True),
    ("SAGSTIR", "STIR", True),
    ("T2 FatSat SAG", "T2", True),
    ("T2* GRE AX", "other", False),
    # words that only look like keywords
    ("T12 LEVEL", "other", False),
]


@pytest.mark.parametrize(("description", "contrast", "fat_suppressed"), VENDOR_DESCRIPTIONS)
def test_vendor_descriptions(description: str, contrast: str, fat_suppressed: bool) -> None:
    call = classify_series(series(description))
    assert (call.contrast, call.fat_suppressed) == (contrast, fat_suppressed), call.reasons
    assert call.reasons, "every call must carry its reasons"


def test_fat_suppressed_proton_density_says_it_is_used_like_a_fat_suppressed_t2() -> None:
    call = classify_series(series("pd_tse_fs_cor"))
    assert call.cues[0] == "PD" and "used like a fat-suppressed T2" in call.reasons[0]
    silent = classify_series(series("SER7", RepetitionTime=3.0, EchoTime=0.025, ScanOptions="FS"))
    assert (silent.contrast, silent.fat_suppressed) == ("T2", True)


def test_reasons_name_the_field_the_word_and_the_vendor_meaning() -> None:
    call = classify_series(series("T2_TIRM_SAG"))
    assert call.reasons[0] == (
        "SeriesDescription 'T2_TIRM_SAG' contains 'tirm': STIR "
        "(Siemens turbo inversion recovery magnitude)"
    )
    assert str(call) == "STIR ('tirm' in description)"


def test_keyword_in_protocol_name_when_description_is_silent() -> None:
    call = classify_series(series("SER7", ProtocolName="t1_tse_sag"))
    assert call.contrast == "T1"
    assert "ProtocolName 't1_tse_sag'" in call.reasons[0]
    assert str(call) == "T1 ('t1' in protocol)"


@pytest.mark.parametrize(
    ("meta", "contrast", "cue"),
    [
        ({"RepetitionTime": 0.55, "EchoTime": 0.011}, "T1", "TR 550 ms, TE 11 ms"),
        ({"RepetitionTime": 4.0, "EchoTime": 0.1}, "T2", "TR 4000 ms, TE 100 ms"),
        (
            {
                "ScanningSequence": "SE\\IR",
                "InversionTime": 0.15,
                "RepetitionTime": 4.5,
                "EchoTime": 0.04,
            },
            "STIR",
            "TI 150 ms",
        ),
        (
            {
                "ScanningSequence": "SE_IR",
                "InversionTime": 0.23,
                "RepetitionTime": 5.0,
                "EchoTime": 0.05,
            },
            "STIR",
            "TI 230 ms",
        ),
        (
            {
                "ScanningSequence": ["SE", "IR"],
                "InversionTime": 2.5,
                "RepetitionTime": 9.0,
                "EchoTime": 0.1,
            },
            "other",
            "TI 2500 ms",
        ),
        (
            {
                "ScanningSequence": "GR\\IR",
                "InversionTime": 0.9,
                "RepetitionTime": 2.0,
                "EchoTime": 0.003,
            },
            "T1",
            "TI 900 ms, TE 3 ms",
        ),
        ({"RepetitionTime": 3.0, "EchoTime": 0.02}, "other", "TR 3000 ms, TE 20 ms"),
        (
            {"ScanningSequence": "GR", "RepetitionTime": 0.6, "EchoTime": 0.02},
            "other",
            "TR 600 ms, TE 20 ms",
        ),
        (
            {"ScanningSequence": "GR", "RepetitionTime": 0.3, "EchoTime": 0.00246},
            "T1",
            "TR 300 ms, TE 2.46 ms",
        ),
    ],
)
def test_silent_description_is_classified_from_timing(
    meta: dict[str, object], contrast: str, cue: str
) -> None:
    call = classify_series(series("SER3", **meta))
    assert call.contrast == contrast, call.reasons
    assert cue in str(call)


def test_stir_from_timing_is_fat_suppressed() -> None:
    call = classify_series(
        series("SER4", ScanningSequence="IR", InversionTime=0.16, RepetitionTime=3.5, EchoTime=0.05)
    )
    assert call.fat_suppressed
    assert any("STIR range 100-300 ms" in r for r in call.reasons)


def test_nothing_to_go_on_is_other_and_says_so() -> None:
    call = classify_series(series("SER3"))
    assert call.contrast == "other"
    assert "cannot tell the contrast" in call.reasons[-1]
    timing_gap = classify_series(series("SER3", RepetitionTime=1.2, EchoTime=0.045))
    assert timing_gap.contrast == "other"
    assert any("in no T1/T2 window" in r for r in timing_gap.reasons)


def test_times_in_milliseconds_are_recognised_and_reported() -> None:
    call = classify_series(series("SER3", RepetitionTime=600, EchoTime=12))
    assert call.contrast == "T1"
    assert any("RepetitionTime 600 is too large for seconds" in r for r in call.reasons)


def test_inversion_time_overrides_a_t2_keyword_and_says_so() -> None:
    call = classify_series(
        series(
            "T2_SAG",
            ScanningSequence="SE\\IR",
            InversionTime=0.15,
            RepetitionTime=4.0,
            EchoTime=0.06,
        )
    )
    assert call.contrast == "STIR"
    assert any(
        r.startswith("conflict: the text says T2 but the inversion time says STIR")
        for r in call.reasons
    )


def test_inversion_time_turns_tirm_flair_into_other() -> None:
    call = classify_series(
        series(
            "t2_tirm_sag",
            ScanningSequence="SE\\IR",
            InversionTime=2.2,
            RepetitionTime=8.0,
            EchoTime=0.09,
        )
    )
    assert call.contrast == "other"
    assert any("FLAIR" in r for r in call.reasons)


def test_keyword_wins_over_tr_te_and_the_conflict_is_reported() -> None:
    call = classify_series(series("t1_tse_sag", RepetitionTime=4.0, EchoTime=0.1))
    assert call.contrast == "T1"
    conflict = [r for r in call.reasons if r.startswith("conflict:")]
    assert conflict and "the text wins" in conflict[0] and "timing says T2" in conflict[0]


def test_agreeing_cues_report_no_conflict() -> None:
    call = classify_series(series("t1_tse_sag", RepetitionTime=0.6, EchoTime=0.01))
    assert call.contrast == "T1"
    assert not any(r.startswith("conflict") for r in call.reasons)
    assert str(call) == "T1 ('t1' in description; TR 600 ms, TE 10 ms)"


def test_t1_and_t2_keywords_together_are_resolved_by_timing() -> None:
    t2 = classify_series(series("T1_T2_SAG", RepetitionTime=3.5, EchoTime=0.09))
    assert t2.contrast == "T2"
    assert any("conflicting keywords" in r for r in t2.reasons)
    undecided = classify_series(series("T1_T2_SAG"))
    assert undecided.contrast == "other"


def test_spectral_fat_sat_inversion_time_is_not_stir() -> None:
    # Philips stores a TI for SPAIR; without IR in ScanningSequence it must not make a STIR
    call = classify_series(
        series(
            "T2W_SPAIR_SAG",
            ScanningSequence="SE",
            InversionTime=0.11,
            RepetitionTime=3.0,
            EchoTime=0.08,
        )
    )
    assert (call.contrast, call.fat_suppressed) == ("T2", True)
    assert any("InversionTime 110 ms ignored" in r for r in call.reasons)


def test_scan_options_fs_marks_fat_suppression() -> None:
    call = classify_series(
        series("Sag T2", ScanOptions="PFP\\FS", RepetitionTime=3.0, EchoTime=0.09)
    )
    assert (call.contrast, call.fat_suppressed) == ("T2", True)
    assert str(call) == (
        "T2 fat-suppressed ('t2' in description; TR 3000 ms, TE 90 ms; ScanOptions FS)"
    )


def test_t2_named_gradient_echo_is_t2_star() -> None:
    call = classify_series(
        series("T2_SAG", ScanningSequence="GR", RepetitionTime=0.7, EchoTime=0.02)
    )
    assert call.contrast == "other"
    assert any("gradient echo" in r for r in call.reasons)


def test_post_contrast_from_contrast_agent_tag() -> None:
    call = classify_series(series("t1_tse_sag", ContrastBolusAgent="Gadovist"))
    assert call.contrast == "other"
    assert "post-contrast" in call.reasons[0] and "Gadovist" in call.reasons[0]
    native = classify_series(series("t1_tse_sag", ContrastBolusAgent="NONE"))
    assert native.contrast == "T1"


def test_dixon_component_from_image_type() -> None:
    water = classify_series(
        series("t2_tse_dixon_sag", ImageType=["DERIVED", "PRIMARY", "DIXON", "WATER"])
    )
    assert (water.contrast, water.fat_suppressed) == ("T2", True)
    in_phase = classify_series(
        series("t2_tse_dixon_sag", ImageType=["DERIVED", "PRIMARY", "DIXON", "IN_PHASE"])
    )
    assert in_phase.contrast == "other"
    unnamed = classify_series(series("t2_tse_dixon_sag"))
    assert unnamed.contrast == "other"
    assert any("component" in r and "not named" in r for r in unnamed.reasons)


def test_image_type_and_scanning_sequence_exclusions() -> None:
    assert classify_series(series("T2_SAG", ImageType="DERIVED\\PRIMARY\\ADC")).contrast == (
        "other"
    )
    assert classify_series(series("T2_SAG", ScanningSequence="EP")).contrast == "other"


def test_contrast_call_str_is_short() -> None:
    call = ContrastCall("STIR", ("a long reason",), True, ("TI 150 ms", "'tirm' in description"))
    assert str(call) == "STIR (TI 150 ms; 'tirm' in description)"
    assert str(ContrastCall("T1", ("only reason",), False)) == "T1 (only reason)"


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sub-01_ses-1_acq-stir_T2w.nii.gz", "STIR"),
        ("sub-01_acq-STIR_T2w.nii.gz", "STIR"),
        ("sub-01_acq-sagtirm_T2w.nii.gz", "STIR"),
        ("sub-01_STIR.nii.gz", "STIR"),
        ("sub-01_T1w.nii.gz", "T1"),
        ("sub-01_ses-2_run-1_T2w.nii", "T2"),
        ("sub-01_acq-sag_T2w.json", "T2"),
        ("/data/anat/t1.nii.gz", "T1"),
        ("T2.nii.gz", "T2"),
        ("stir.nii.gz", "STIR"),
        ("t1w.mha", "T1"),
        ("case07-stir.nrrd", "STIR"),
        ("sub-01_FLAIR.nii.gz", None),
        ("sub-01_T2starw.nii.gz", None),
        ("sub-01_dwi.nii.gz", None),
        ("t2_fake_lesion.nii.gz", None),
        ("scan.nii.gz", None),
        ("t12.nii.gz", None),
    ],
)
def test_contrast_from_name(name: str, expected: str | None) -> None:
    assert contrast_from_name(name) == expected


def test_nifti_series_is_classified_by_its_bids_name() -> None:
    stir = classify_series(series("sub-01_acq-stir_T2w", nifti="sub-01_acq-stir_T2w.nii.gz"))
    assert (stir.contrast, stir.fat_suppressed) == ("STIR", True)
    assert "file name" in stir.reasons[0]
    enhanced = classify_series(series("sub-01_ce-gd_T1w", nifti="sub-01_ce-gd_T1w.nii.gz"))
    assert enhanced.contrast == "other"
