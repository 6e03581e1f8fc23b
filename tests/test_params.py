"""Parameters: defaults, checks, files, digest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.params import Parameters


def test_defaults_are_documented_values():
    params = Parameters()
    assert params.t1_hypo_ratio == 0.8
    assert params.t1_hypo_seed_ratio == 0.7
    assert (params.stir_hyper_ratio, params.stir_hyper_seed_ratio) == (1.2, 1.4)
    assert (params.t2_hyper_ratio, params.t2_hyper_seed_ratio) == (1.15, 1.3)
    assert (params.grow_z, params.seed_z) == (2.5, 4.0)
    assert params.t1_criterion == "auto"
    assert params.min_lesion_mm3 == 50.0
    assert params.reference_degree == 2
    assert params.reference_per_body is True
    assert params.mixed_min_fraction == 0.2
    # every default passes its own checks: the constructor did not raise


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Parameters().cortex_mm = 1.0  # type: ignore[misc]


def test_from_dict_partial_and_int_to_float():
    params = Parameters.from_dict({"min_lesion_mm3": 100, "cortex_mm": 1})
    assert params.min_lesion_mm3 == 100.0 and isinstance(params.min_lesion_mm3, float)
    assert isinstance(params.cortex_mm, float)
    assert params.t1_hypo_ratio == Parameters().t1_hypo_ratio


def test_from_dict_unknown_key_names_it():
    with pytest.raises(ValueError, match=r"unknown parameter 'min_lesion'.*min_lesion_mm3"):
        Parameters.from_dict({"min_lesion": 1})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cortex_mm", "0.5"),
        ("cortex_mm", None),
        ("cortex_mm", True),  # bool is an int subclass but not a number here
        ("reference_degree", 1.0),
        ("reference_degree", True),
        ("reference_per_body", 1),
    ],
)
def test_type_checks(name, value):
    with pytest.raises(ValueError, match=f"parameter {name} must be"):
        Parameters(**{name: value})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"t1_hypo_seed_ratio": 0.85},
            r"t1_hypo_seed_ratio \(0.85\) must not exceed t1_hypo_ratio \(0.8\): "
            "set t1_hypo_ratio to at least 0.85",
        ),
        ({"stir_hyper_seed_ratio": 1.1}, "stir_hyper_ratio .* must not exceed"),
        ({"t2_hyper_ratio": 1.6}, "t2_hyper_ratio .* must not exceed"),
        ({"seed_z": 2.0}, "grow_z .* must not exceed seed_z"),
        ({"t1_criterion": "maybe"}, "t1_criterion must be one of"),
        ({"t1_hyper_seed_ratio": 1.1}, "t1_hyper_ratio .* must not exceed"),
        ({"fluid_hypo_seed_ratio": 0.9}, "fluid_hypo_seed_ratio .* must not exceed"),
        ({"reference_degree": 4}, "reference_degree"),
        ({"mixed_min_fraction": 0.0}, "mixed_min_fraction"),
        ({"mixed_min_fraction": 0.6}, "mixed_min_fraction"),
    ],
)
def test_order_and_range_checks(changes, message):
    with pytest.raises(ValueError, match=message):
        Parameters(**changes)


def test_equal_seed_and_grow_thresholds_are_allowed():
    params = Parameters(t1_hypo_seed_ratio=0.8, stir_hyper_seed_ratio=2.0)
    assert params.t1_hypo_seed_ratio == params.t1_hypo_ratio


def test_replace_checks_and_keeps_original():
    base = Parameters()
    changed = base.replace(min_lesion_mm3=10)
    assert changed.min_lesion_mm3 == 10.0 and base.min_lesion_mm3 == 50.0
    with pytest.raises(ValueError):
        base.replace(t1_hypo_ratio=0.6)  # below its seed threshold 0.7
    with pytest.raises(TypeError):
        base.replace(no_such=1)


def test_digest_stable_and_sensitive():
    assert Parameters().digest() == Parameters().digest()
    assert Parameters().digest() == Parameters.from_dict(Parameters().to_dict()).digest()
    assert Parameters(cortex_mm=0.5).digest() == Parameters(cortex_mm=0.5).digest()
    assert Parameters().digest() != Parameters().replace(cortex_mm=0.6).digest()
    assert Parameters().digest() != Parameters().replace(reference_per_body=False).digest()
    assert len(Parameters().digest()) == 16


def test_to_dict_round_trip_through_json(tmp_path: Path):
    params = Parameters(min_lesion_mm3=75.0, reference_degree=1)
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params.to_dict()))
    assert Parameters.from_file(path) == params


def test_from_file_partial_json(tmp_path: Path):
    path = tmp_path / "p.json"
    path.write_text('{"min_lesion_mm3": 20, "reference_degree": 0}')
    params = Parameters.from_file(str(path))
    assert params.min_lesion_mm3 == 20.0 and params.reference_degree == 0


def test_from_file_report_json_uses_parameters(tmp_path: Path):
    path = tmp_path / "report.json"
    report = {"subject": "sub-01", "parameters": {"cortex_mm": 1.25}, "endplates": []}
    path.write_text(json.dumps(report))
    assert Parameters.from_file(path).cortex_mm == 1.25


def test_from_file_missing(tmp_path: Path):
    path = tmp_path / "nope.json"
    with pytest.raises(BmetoolkitError, match="does not exist") as info:
        Parameters.from_file(path)
    assert info.value.path == str(path)
    assert "nope.json" in str(info.value)
    assert "--params" in str(info.value)  # what to do: the path, or the values inline


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '"text"', '{"min_lesion": 3}', '{"cortex_mm": "x"}']
)
def test_from_file_invalid_names_file(tmp_path: Path, text: str):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(BmetoolkitError) as info:
        Parameters.from_file(path)
    assert info.value.path == str(path)
    assert "bad.json" in str(info.value)


def test_from_file_not_utf8(tmp_path: Path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(BmetoolkitError, match=r"binary\.json"):
        Parameters.from_file(path)


@pytest.mark.parametrize("value", [-5.0, float("nan"), float("inf")])
def test_negative_or_non_finite_values_are_refused(value):
    with pytest.raises(ValueError, match="min_lesion_mm3 must be a finite number >= 0"):
        Parameters(min_lesion_mm3=value)


# --- the automatic segmentation's thresholds: the nested ``autoseg`` section --------------


def _autoseg_change() -> tuple[str, float]:
    """A float threshold of AutosegParameters and a value 1 % off its default.

    Taken from the dataclass itself (its fields change as the segmentation evolves).
    """
    from bmetoolkit.spine.autoseg import AutosegParameters

    defaults = AutosegParameters()
    name = next(
        f.name for f in dataclasses.fields(defaults) if isinstance(getattr(defaults, f.name), float)
    )
    return name, round(getattr(defaults, name) * 1.01 + 0.001, 6)


def test_autoseg_section_takes_any_autoseg_parameter() -> None:
    from bmetoolkit.spine.autoseg import AutosegParameters

    assert Parameters().autoseg is None and Parameters().to_dict()["autoseg"] == {}
    for f in dataclasses.fields(AutosegParameters):  # every field can be set
        default = getattr(AutosegParameters(), f.name)
        assert Parameters(autoseg={f.name: default}).autoseg is None  # the defaults: None
    name, value = _autoseg_change()
    changed = Parameters(autoseg={name: value})
    assert changed.autoseg == AutosegParameters(**{name: value})  # the rest: defaults
    assert changed.to_dict()["autoseg"] == {name: value}  # what differs from the defaults
    assert Parameters.from_dict(changed.to_dict()) == changed  # a report reads back
    assert changed.digest() != Parameters().digest()
    assert Parameters().replace(autoseg={name: value}) == changed
    assert Parameters(autoseg=changed.autoseg) == changed
    assert changed.replace(autoseg=None) == Parameters()


def test_parameters_without_autoseg_values_do_not_import_the_segmentation() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from bmetoolkit.params import Parameters\n"
        "p = Parameters.from_dict({'stir_hyper_ratio': 1.3, 'autoseg': {}})\n"
        "p.to_dict(), p.digest(), Parameters().replace(grow_z=2.0)\n"
        "print('bmetoolkit.spine.autoseg' in sys.modules, 'scipy' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[1]  # this checkout first on the path
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert done.stdout.split() == ["False", "False"]


def test_autoseg_unknown_or_bad_values_are_clear_errors() -> None:
    name, _ = _autoseg_change()
    with pytest.raises(ValueError, match=r"unknown autoseg parameter 'nope'; known autoseg"):
        Parameters.from_dict({"autoseg": {"nope": 1}})
    with pytest.raises(ValueError, match=rf"parameter autoseg\.{name} must be a finite number"):
        Parameters.from_dict({"autoseg": {name: "high"}})
    with pytest.raises(ValueError, match=rf"autoseg\.{name} must be a finite number"):
        Parameters.from_dict({"autoseg": {name: float("nan")}})
    with pytest.raises(ValueError, match="parameter autoseg must be a JSON object"):
        Parameters.from_dict({"autoseg": 3})


def test_inline_json_and_files_give_the_same_parameters(tmp_path: Path) -> None:
    name, value = _autoseg_change()
    text = json.dumps({"stir_hyper_ratio": 1.3, "autoseg": {name: value}})
    path = tmp_path / "p.json"
    path.write_text(text)
    inline = Parameters.from_argument(text)
    assert inline == Parameters.from_argument(str(path)) == Parameters.from_file(path)
    assert inline.stir_hyper_ratio == 1.3 and getattr(inline.autoseg, name) == value
    with pytest.raises(BmetoolkitError, match="did you mean 'stir_hyper_ratio'"):
        Parameters.from_argument('{"stir_hyper_ration": 1.3}')
    with pytest.raises(BmetoolkitError, match="parameters must be a JSON object"):
        Parameters.from_argument(str(_write(tmp_path / "list.json", "[1]")))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class _Reached(BmetoolkitError):
    """Raised by the stand-in segmentation once it has seen its parameters."""


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small phantom's T1 and STIR as NIfTI, without vertebra labels."""
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    from bmetoolkit.io import save_nifti

    phantom = make_phantom(seed=1, config=PhantomConfig.small())
    root = tmp_path_factory.mktemp("unlabelled")
    save_nifti(phantom.t1, root / "t1.nii.gz")
    save_nifti(phantom.stir, root / "stir.nii.gz")
    return root


@pytest.mark.parametrize("route", ["Parameters", "dict", "--params file", "--params JSON"])
def test_an_autoseg_value_reaches_the_segmentation_by_every_route(
    route: str, unlabelled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bmetoolkit.spine.autoseg as autoseg
    from bmetoolkit.analysis import analyze
    from bmetoolkit.cli import main

    seen = []

    def segmentation(study: object, params: object = None) -> None:
        seen.append(params)
        raise _Reached("stopped after the parameters were seen")

    monkeypatch.setattr(autoseg, "find_vertebral_bodies", segmentation)
    name, value = _autoseg_change()
    values = {"autoseg": {name: value}}
    t1, stir = unlabelled / "t1.nii.gz", unlabelled / "stir.nii.gz"
    if route in ("Parameters", "dict"):
        params = Parameters.from_dict(values) if route == "Parameters" else values
        with pytest.raises(_Reached):
            analyze(t1, stir=stir, params=params)
    else:
        given = json.dumps(values)
        if route == "--params file":
            given = str(_write(tmp_path / "autoseg.json", given))
        argv = ["analyze", "--t1", str(t1), "--stir", str(stir), "--params", given]
        assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert len(seen) == 1 and getattr(seen[0], name) == value


def test_the_segmentation_records_the_value_it_used(unlabelled: Path) -> None:
    from bmetoolkit.analysis import analyze

    name, value = _autoseg_change()
    found = analyze(
        unlabelled / "t1.nii.gz",
        stir=unlabelled / "stir.nii.gz",
        params=Parameters(autoseg={name: value}),
    )
    report = found.to_dict()
    assert report["labels"]["provenance"]["parameters"][name] == value
    assert report["parameters"]["autoseg"][name] == value
