"""Damaged and hostile input files give typed errors that name the file, never a traceback.

Each case is one class of damage the issue-15 fuzzing found (and ``tests/test_fuzz.py``
keeps finding none of): checked here by the error type and what the message says.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from bmetoolkit.cli import main
from bmetoolkit.dicom.read import load_dicom, scan_dicom
from bmetoolkit.errors import (
    AmbiguousSeriesError,
    CorruptFileError,
    EmptyInputError,
    ImageTooLargeError,
    InvalidGeometryError,
    InvalidVoxelsError,
    PixelDataError,
    UnsupportedDataError,
)
from bmetoolkit.io import MAX_VOXELS, READ_NOTES, load
from bmetoolkit.study import Study
from tests.fuzz.corpus import make_seeds


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("damage_seeds"))


def _raw(seeds, name: str = "t1") -> bytearray:
    return bytearray(gzip.decompress((seeds.nifti / f"{name}.nii.gz").read_bytes()))


def _put(raw: bytearray, offset: int, fmt: str, *values) -> bytearray:
    struct.pack_into("<" + fmt, raw, offset, *values)
    return raw


def _write(tmp_path, raw: bytes, name: str = "t1.nii"):
    path = tmp_path / name
    path.write_bytes(bytes(raw))
    return path


def test_huge_claimed_size_is_refused_from_the_header(seeds, tmp_path):
    path = _write(tmp_path, _put(_raw(seeds), 40, "4h", 3, 32767, 32767, 32767))
    with pytest.raises(ImageTooLargeError, match="32767x32767x32767") as err:
        load(path)
    assert err.value.path == str(path) and f"{MAX_VOXELS:,}" in str(err.value)
    assert main(["info", str(path)]) == 1  # info refuses it too, from the same header


def test_claimed_size_larger_than_the_file_is_refused(seeds, tmp_path):
    raw = _raw(seeds)
    path = _write(tmp_path, raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match=r"header claims .* bytes of voxel data"):
        load(path)


@pytest.mark.parametrize(
    ("offset", "fmt", "values", "match"),
    [
        (108, "f", (347.0,), "vox offset 347 too low"),  # vox_offset below the header
        (112, "ff", (1.0, float("nan")), "invalid intercept"),  # valid slope, NaN intercept
        (70, "h", (9999,), "data code 9999"),  # unknown data type
    ],
)
def test_headers_nibabel_rejects(seeds, tmp_path, offset, fmt, values, match):
    path = _write(tmp_path, _put(_raw(seeds), offset, fmt, *values))
    with pytest.raises(CorruptFileError, match=match) as err:
        load(path)
    assert err.value.path == str(path)


@pytest.mark.parametrize("value", [1e-12, float("nan"), 1e30])
def test_unusable_affine_from_pixdim(seeds, tmp_path, value):
    raw = _put(_raw(seeds), 76 + 4 * 3, "f", value)  # pixdim[3]
    _put(raw, 252, "hh", 1, 0)  # the qform (built from pixdim) is the one used
    path = _write(tmp_path, raw)
    with pytest.raises(InvalidGeometryError) as err:
        load(path)
    assert err.value.path == str(path) and "geometry" in str(err.value)


def test_zero_pixdim_is_fixed_by_nibabel_and_noted(seeds, tmp_path):
    raw = _put(_raw(seeds), 76 + 4 * 3, "f", 0.0)
    path = _write(tmp_path, _put(raw, 252, "hh", 1, 0))
    assert any("pixdim" in note for note in load(path).meta[READ_NOTES])


def test_all_zero_sform_without_qform(seeds, tmp_path):
    raw = _put(_raw(seeds), 280, "12f", *([0.0] * 12))
    path = _write(tmp_path, _put(raw, 252, "hh", 0, 1))
    with pytest.raises(InvalidGeometryError, match="singular"):
        load(path)


def test_rgb_and_complex_images_are_refused(seeds, tmp_path):
    image = nib.load(seeds.nifti / "t1.nii.gz")
    grey = np.asarray(image.dataobj).astype(np.uint8)
    rgb = np.stack([grey] * 3, axis=-1).copy().view([("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb.reshape(grey.shape), image.affine), tmp_path / "rgb.nii.gz")
    with pytest.raises(UnsupportedDataError, match="RGB"):
        load(tmp_path / "rgb.nii.gz")
    complex_data = grey.astype(np.complex64)
    nib.save(nib.Nifti1Image(complex_data, image.affine), tmp_path / "c.nii.gz")
    with pytest.raises(UnsupportedDataError, match="complex"):
        load(tmp_path / "c.nii.gz")


def test_scaling_beyond_float32_is_refused(seeds, tmp_path):
    path = _write(tmp_path, _put(_raw(seeds), 112, "ff", 1e38, 0.0))
    with pytest.raises(InvalidVoxelsError, match="no MR image reaches"):
        load(path)


def test_header_fixes_become_notes_not_stderr(seeds, tmp_path, capsys):
    raw = _put(_raw(seeds, "t2"), 76 + 4, "f", -3.8)  # negative pixdim: nibabel fixes it
    _put(raw, 252, "hh", 1, 0)
    path = _write(tmp_path, raw, "t2.nii")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        volume = load(path)
    assert any("pixdim" in note for note in volume.meta[READ_NOTES])
    assert capsys.readouterr().err == ""
    study = Study.from_images(seeds.nifti / "t1.nii.gz", t2=path)
    assert any(n.startswith("reading the t2 image:") and "pixdim" in n for n in study.notes)


def _dicom_copy(seeds, tmp_path):
    folder = tmp_path / "dicom"
    shutil.copytree(seeds.dicom, folder)
    return folder


def _files_of(folder, description: str):
    return [
        p
        for p in sorted(folder.glob("*.dcm"))
        if description in str(pydicom.dcmread(p, stop_before_pixels=True).SeriesDescription)
    ]


def test_damaged_value_representation_names_the_file(seeds, tmp_path, capsys):
    folder = _dicom_copy(seeds, tmp_path)
    victim = _files_of(folder, "T1")[0]
    raw = bytearray(victim.read_bytes())
    at = raw.find(struct.pack("<HH", 0x0008, 0x103E), 144)  # SeriesDescription
    raw[at + 4 : at + 6] = b"ZZ"
    victim.write_bytes(bytes(raw))
    assert main(["analyze", str(folder), "--out", str(tmp_path / "out"), "--no-qc"]) == 1
    err = capsys.readouterr().err
    assert str(victim) in err and "damaged value" in err and "Traceback" not in err


def test_zero_pixel_spacing_names_the_file(seeds, tmp_path):
    folder = _dicom_copy(seeds, tmp_path)
    victim = _files_of(folder, "STIR")[2]
    ds = pydicom.dcmread(victim)
    ds.PixelSpacing = [0, 0]
    ds.save_as(victim)
    stir = next(s for s in scan_dicom(folder) if "STIR" in s.description)
    with pytest.raises(PixelDataError, match="PixelSpacing 0\\\\0") as err:
        load_dicom(folder, series=stir.number)
    assert err.value.path == str(victim)


def test_truncated_single_file_says_what_is_wrong(seeds, tmp_path, capsys):
    source = sorted(seeds.dicom.glob("*.dcm"))[0]
    data = source.read_bytes()
    target = tmp_path / "cut.dcm"
    target.write_bytes(data[: data.index(struct.pack("<HH", 0x0028, 0x0010))])
    with pytest.raises(CorruptFileError, match="header ends before the image attributes"):
        load(target)
    assert main(["info", str(target)]) == 1
    err = capsys.readouterr().err
    assert "0 series" not in err and "--series" not in err


def test_folder_of_damaged_files_only(seeds, tmp_path):
    folder = tmp_path / "dicom"
    folder.mkdir()
    for n, source in enumerate(sorted(seeds.dicom.glob("*.dcm"))[:3]):
        data = source.read_bytes()
        (folder / f"{n}.dcm").write_bytes(data[: data.index(struct.pack("<HH", 0x0028, 0x10))])
    with pytest.raises(EmptyInputError, match="damaged DICOM file"):
        scan_dicom(folder)


def test_several_series_message_offers_real_options(seeds, tmp_path, capsys):
    with pytest.raises(AmbiguousSeriesError) as err:
        load(seeds.dicom)
    assert "series=" in str(err.value) and "--" not in str(err.value)  # Python terms
    t2 = str(seeds.nifti / "t2.nii.gz")
    assert main(["analyze", "--t1", str(seeds.dicom), "--t2", t2, "--out", str(tmp_path)]) == 1
    text = capsys.readouterr().err
    assert "--t1-series" in text and " --series" not in text and "series=" not in text


def test_cli_prints_no_library_warning(seeds, tmp_path, capsys):
    raw = _put(_raw(seeds, "t2"), 112, "ff", 1.0, 0.0)
    _put(raw, 108, "f", 353.0)  # odd vox_offset: nibabel logs "not SPM compatible"
    raw[352:353] = b"\x00"
    path = _write(tmp_path, raw, "t2.nii")
    main(["info", str(path)])
    assert "SPM" not in capsys.readouterr().err


def test_report_records_the_sha256_of_every_input(seeds, tmp_path):
    out = tmp_path / "out"
    assert main(["analyze", str(seeds.dicom), "--out", str(out), "--no-qc"]) == 0
    recorded = json.loads((out / "report.json").read_text())["inputs"]["sha256"]
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in seeds.dicom.glob("*")}
    listed = [entry for role in ("t1", "t2", "stir") for entry in recorded[role]]
    assert len(listed) == len(files)
    assert all(files[entry["file"].split("/")[-1]] == entry["sha256"] for entry in listed)
    assert not any(os.path.isabs(entry["file"]) for entry in listed)
    nifti = seeds.nifti
    assert main(["analyze", "--t1", str(nifti / "t1.nii.gz"), "--t2", str(nifti / "t2.nii.gz"),
                 "--out", str(out), "--no-qc"]) == 0  # fmt: skip
    recorded = json.loads((out / "report.json").read_text())["inputs"]["sha256"]
    digest = hashlib.sha256((nifti / "t2.nii.gz").read_bytes()).hexdigest()
    relative = os.path.relpath(nifti / "t2.nii.gz", out)  # no folder above the study named
    assert recorded["t2"] == [{"file": Path(relative).as_posix(), "sha256": digest}]
    assert (out / recorded["t2"][0]["file"]).resolve() == (nifti / "t2.nii.gz").resolve()
