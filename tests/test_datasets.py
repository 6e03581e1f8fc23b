"""Bundled sample data: lookup, errors, and the phantom sample regenerating identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bmetoolkit.data import datasets
from bmetoolkit.errors import InputNotFoundError
from bmetoolkit.io import load

NIFTI_VOLUMES = ("t1", "t2", "stir", "bme_mask", "modic_map", "vertebrae", "tissue")
SERIES = {"t1": 2, "t2": 3, "stir": 4}


def test_real_scans_resolve_and_load() -> None:
    pair = datasets.cervical_pair()
    assert load(pair["t1"]).shape == (42, 76, 77)
    assert load(pair["t2"]).shape == (60, 55, 52)
    assert load(datasets.lumbar_t2()).shape == (38, 257, 201)
    tptbox = datasets.tptbox_t2()
    assert load(tptbox["vertebrae"], kind="label").shape == load(tptbox["t2"]).shape


def test_env_var_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "spine/sct_tutorial_data/t2_lumbar/t2_lumbar.nii.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    assert datasets.data_root() == tmp_path
    assert datasets.lumbar_t2() == target


def test_missing_folder_and_file_errors_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(InputNotFoundError, match="BMETOOLKIT_DATA"):
        datasets.data_root()
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    with pytest.raises(InputNotFoundError, match=r"make_phantom_sample\.py") as info:
        datasets.phantom_sample()
    assert info.value.path == str(tmp_path / "phantom" / "dicom")
    with pytest.raises(InputNotFoundError, match=r"sample_data/spine/sct_testing_data"):
        datasets.cervical_pair()


def test_phantom_sample_is_small_and_complete() -> None:
    paths = datasets.phantom_sample()
    sizes = [p.stat().st_size for p in datasets.data_root().joinpath("phantom").rglob("*")]
    assert sum(sizes) < 8_000_000  # git-friendly; measured 5.8 MB
    assert len(list(paths["dicom"].glob("*.dcm"))) == 16 + 16 + 15
    assert load(paths["t1"]).shape == (200, 200, 16)
    modic = load(paths["modic_map"], kind="label").data
    assert set(np.unique(modic).tolist()) == {0, 1, 2}  # types I and II (and I/II)


@pytest.mark.slow
def test_regenerating_the_phantom_sample_gives_identical_voxels(tmp_path: Path) -> None:
    shipped = datasets.phantom_sample()
    fresh = datasets.write_phantom_sample(tmp_path)
    assert set(fresh) == set(shipped)
    for key in NIFTI_VOLUMES:
        kind = "intensity" if key in SERIES else "label"
        old, new = load(shipped[key], kind=kind), load(fresh[key], kind=kind)
        assert old.data.dtype == new.data.dtype, key
        assert np.array_equal(old.data, new.data), key
        assert np.array_equal(old.affine, new.affine), key
    assert shipped["endplates_csv"].read_text() == fresh["endplates_csv"].read_text()
    assert shipped["lesions_json"].read_text() == fresh["lesions_json"].read_text()
    assert sorted(p.name for p in shipped["dicom"].iterdir()) == sorted(
        p.name for p in fresh["dicom"].iterdir()
    )
    for name, number in SERIES.items():
        old = load(shipped["dicom"], series=number)
        new = load(fresh["dicom"], series=number)
        nifti = load(shipped[name])
        assert np.array_equal(old.data, new.data), name
        assert np.array_equal(old.data, nifti.data), name  # DICOM and NIfTI: one study
        assert np.allclose(old.affine, nifti.affine, atol=1e-4), name
