"""Seed inputs and deterministic mutations: every case is a function of (seed, case number).

The seeds are a small synthetic phantom study (:func:`bmetoolkit.data.phantom.make_phantom`
with :meth:`~bmetoolkit.data.phantom.PhantomConfig.small` grids) written once as NIfTI and
DICOM. Each :class:`Case` copies what it needs into its own folder, damages it in one way
(a NIfTI header field, a DICOM tag or value representation, bytes, a label map, a
parameter file, roles swapped...) and names the command to run on it.

Mutations are drawn from :data:`MUTATORS` with equal weight; the same ``(seed, number)``
always gives the same bytes, so a failing case can be rebuilt alone with :func:`build_case`.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["MUTATORS", "Case", "Seeds", "build_case", "make_seeds"]

# NIfTI-1 header field offsets (bytes, little endian), from the NIfTI-1 standard.
_DIM, _DATATYPE, _BITPIX, _PIXDIM = 40, 70, 72, 76
_VOX_OFFSET, _SCL_SLOPE, _SCL_INTER = 108, 112, 116
_QFORM_CODE, _SFORM_CODE, _QUATERN, _SROW = 252, 254, 256, 280
_MAGIC, _EXTENSION, _HEADER_SIZE = 344, 348, 348

#: Hostile numbers written into numeric header fields and DICOM decimal strings.
_BAD_FLOATS = (0.0, 1e-12, -1.0, float("nan"), float("inf"), -float("inf"), 1e30, 3.4e38)
_BAD_DS = ("0\\0", "0", "-1\\-1", "nan\\nan", "inf\\1", "abc", "", "1e400\\1", "1\\2\\3", "1e-30")
_BAD_IOP = (
    "0\\0\\0\\0\\0\\0",
    "1\\0\\0\\1\\0\\0",
    "nan\\0\\0\\0\\1\\0",
    "1\\0\\0",
    "2\\0\\0\\0\\2\\0",
    "x\\y\\z\\1\\2\\3",
)
_BAD_INTS = (0, 1, 3, 7, 12, 64, 255, 65535, -1)
_DATATYPES = (0, 1, 32, 128, 255, 1536, 1792, 2048, 2304, 9999)
_VR_JUNK = (b"XX", b"\x00\x00", b"ZZ", b"SQ", b"UN", b"OB", b"  ", b"\xff\xfe", b"AT", b"FD")
#: DICOM tags whose value representation is damaged (group, element).
_VR_TAGS = (
    (0x0028, 0x0030),  # PixelSpacing
    (0x0020, 0x0037),  # ImageOrientationPatient
    (0x0020, 0x0032),  # ImagePositionPatient
    (0x0028, 0x0010),  # Rows
    (0x0028, 0x0100),  # BitsAllocated
    (0x0018, 0x0080),  # RepetitionTime
    (0x0008, 0x103E),  # SeriesDescription
    (0x0020, 0x000E),  # SeriesInstanceUID
    (0x0028, 0x1053),  # RescaleSlope
)


@dataclass(frozen=True)
class Seeds:
    """Where the seed inputs of a corpus live (written once, never modified)."""

    root: Path

    @property
    def nifti(self) -> Path:
        """Folder of t1/t2/stir/vertebrae ``.nii.gz`` of the seed study."""
        return self.root / "nifti"

    @property
    def dicom(self) -> Path:
        """DICOM folder of the seed study (T1, T2 and STIR series together)."""
        return self.root / "dicom"


@dataclass(frozen=True)
class Case:
    """One fuzz case: what was damaged, and the command to run on it.

    Parameters
    ----------
    number : int
        Case number within the corpus.
    kind : str
        The mutator's name.
    detail : str
        What exactly was changed (for reports).
    folder : Path
        The case's own folder: its inputs, and ``out/`` for outputs.
    argv : tuple of str
        ``bmetoolkit`` arguments.
    """

    number: int
    kind: str
    detail: str
    folder: Path
    argv: tuple[str, ...]

    @property
    def out(self) -> Path:
        """The output folder a command may write into."""
        return self.folder / "out"


def make_seeds(root: Path, *, seed: int = 3) -> Seeds:
    """Write the seed study into ``root`` (a small phantom as NIfTI and DICOM)."""
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom

    seeds = Seeds(Path(root))
    if (seeds.nifti / "t1.nii.gz").exists() and any(seeds.dicom.glob("*.dcm")):
        return seeds
    study = make_phantom(seed=seed, lesions="modic1", config=PhantomConfig.small())
    study.write_dicom(seeds.dicom)
    study.write_nifti(seeds.nifti)
    return seeds


# --------------------------------------------------------------------------- NIfTI helpers


def _raw_nifti(path: Path) -> bytearray:
    """The uncompressed bytes of a NIfTI file (header, extension flag, data)."""
    data = path.read_bytes()
    return bytearray(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def _write_nifti(raw: bytes, target: Path, compress: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        target = target.with_name(target.name + ".gz")
        target.write_bytes(gzip.compress(bytes(raw), mtime=0))
    else:
        target.write_bytes(bytes(raw))
    return target


def _put(raw: bytearray, offset: int, fmt: str, *values: float) -> None:
    struct.pack_into("<" + fmt, raw, offset, *values)


def _analyze_argv(case_dir: Path, roles: dict[str, Path], extra: tuple[str, ...] = ()) -> tuple:
    argv = ["analyze"]
    for role, path in roles.items():
        argv += [f"--{role}", str(path)]
    return (*argv, "--out", str(case_dir / "out"), "--no-qc", *extra)


def _nifti_case(
    rng: np.random.Generator, seeds: Seeds, case_dir: Path, raw: bytearray, detail: str
) -> tuple[str, tuple[str, ...]]:
    """Write a damaged NIfTI into a random role and choose ``info`` or ``analyze``."""
    role = str(rng.choice(["t1", "t2", "stir", "vertebrae"]))
    damaged = _write_nifti(raw, case_dir / f"{role}.nii", compress=bool(rng.random() < 0.5))
    if rng.random() < 0.35:
        return f"{detail}; info", ("info", str(damaged))
    roles = {"t1": seeds.nifti / "t1.nii.gz", "t2": seeds.nifti / "t2.nii.gz"}
    if role == "vertebrae" or rng.random() < 0.5:
        roles["vertebrae"] = seeds.nifti / "vertebrae.nii.gz"
    roles[role] = damaged
    return f"{detail}; analyze as {role}", _analyze_argv(case_dir, roles)


def _seed_raw(rng: np.random.Generator, seeds: Seeds) -> bytearray:
    name = str(rng.choice(["t1", "t2", "stir", "vertebrae"]))
    return _raw_nifti(seeds.nifti / f"{name}.nii.gz")


# --------------------------------------------------------------------------- NIfTI mutators


def nifti_pixdim(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """pixdim values zero, tiny, negative or not finite, with the qform or no form in use."""
    raw = _seed_raw(rng, seeds)
    axis = int(rng.integers(1, 4))
    value = float(rng.choice(_BAD_FLOATS))
    _put(raw, _PIXDIM + 4 * axis, "f", value)
    _put(raw, _SFORM_CODE, "h", 0)
    qform = int(rng.integers(0, 2))
    _put(raw, _QFORM_CODE, "h", qform)
    return _nifti_case(rng, seeds, case_dir, raw, f"pixdim[{axis}]={value}, qform_code={qform}")


def nifti_sform(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """An all-zero, singular or non-finite sform, with or without a usable qform."""
    raw = _seed_raw(rng, seeds)
    how = str(rng.choice(["zero", "nonfinite", "singular", "huge"]))
    srow = np.frombuffer(bytes(raw[_SROW : _SROW + 48]), "<f4").reshape(3, 4).copy()
    if how == "zero":
        srow[:] = 0
    elif how == "nonfinite":
        srow[rng.integers(0, 3), rng.integers(0, 4)] = rng.choice([np.nan, np.inf])
    elif how == "singular":
        srow[:, 2] = srow[:, 0]
    else:
        srow[:, :3] *= 1e30
    raw[_SROW : _SROW + 48] = srow.astype("<f4").tobytes()
    _put(raw, _SFORM_CODE, "h", int(rng.choice([1, 2, 4])))
    qform = int(rng.integers(0, 2))
    _put(raw, _QFORM_CODE, "h", qform)
    if rng.random() < 0.3:
        raw[_QUATERN : _QUATERN + 24] = np.full(6, np.nan, "<f4").tobytes()
    return _nifti_case(rng, seeds, case_dir, raw, f"sform {how}, qform_code={qform}")


def nifti_dims(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Claimed sizes: huge (32767^3), zero, negative, or a dim[0] out of range."""
    raw = _seed_raw(rng, seeds)
    how = str(rng.choice(["huge", "huge_all", "zero", "negative", "ndim"]))
    if how == "huge_all":
        _put(raw, _DIM, "8h", 3, 32767, 32767, 32767, 1, 1, 1, 1)
    elif how == "ndim":
        _put(raw, _DIM, "h", int(rng.choice([0, -1, 4, 5, 8, 9, 100])))
    else:
        value = {"huge": 32767, "zero": 0, "negative": -3}[how]
        _put(raw, _DIM + 2 * int(rng.integers(1, 4)), "h", value)
    return _nifti_case(rng, seeds, case_dir, raw, f"dim {how}")


def nifti_datatype(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Data type codes that are unsupported, complex, RGB or unknown; bitpix kept or not."""
    raw = _seed_raw(rng, seeds)
    code = int(rng.choice(_DATATYPES))
    _put(raw, _DATATYPE, "h", code)
    if rng.random() < 0.5:
        _put(raw, _BITPIX, "h", int(rng.choice([0, 8, 24, 64, 128])))
    return _nifti_case(rng, seeds, case_dir, raw, f"datatype={code}")


def nifti_offset(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """vox_offset too low, negative, not finite, odd or far beyond the end of the file."""
    raw = _seed_raw(rng, seeds)
    value = float(rng.choice([0.0, 100.0, 347.0, 351.0, 353.0, -1.0, np.nan, 1e12, 1e30]))
    _put(raw, _VOX_OFFSET, "f", value)
    return _nifti_case(rng, seeds, case_dir, raw, f"vox_offset={value}")


def nifti_scaling(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """scl_slope / scl_inter not finite, huge or negative (e.g. a valid slope, NaN intercept)."""
    raw = _seed_raw(rng, seeds)
    slope = float(rng.choice([1.0, 0.0, -1.0, np.nan, np.inf, 1e38, 1e-38]))
    inter = float(rng.choice([0.0, np.nan, -np.inf, 1e38, -5.0]))
    _put(raw, _SCL_SLOPE, "ff", slope, inter)
    return _nifti_case(rng, seeds, case_dir, raw, f"scl_slope={slope}, scl_inter={inter}")


def nifti_extension(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """A junk header extension: flag set, sizes and codes random, vox_offset moved or not."""
    raw = _seed_raw(rng, seeds)
    offset = int(struct.unpack_from("<f", raw, _VOX_OFFSET)[0])
    junk = rng.integers(0, 256, int(rng.choice([8, 16, 32]))).astype(np.uint8).tobytes()
    raw[_EXTENSION : _EXTENSION + 4] = bytes([1, 0, 0, 0])
    if rng.random() < 0.5:
        raw[offset:offset] = junk
        _put(raw, _VOX_OFFSET, "f", float(offset + len(junk)))
        detail = f"{len(junk)}-byte junk extension, vox_offset moved"
    else:
        raw[_EXTENSION + 4 : _EXTENSION + 4 + len(junk)] = junk[: max(0, offset - 352)]
        detail = "extension flag set over the data"
    return _nifti_case(rng, seeds, case_dir, raw, detail)


def nifti_magic(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """sizeof_hdr or magic wrong (NIfTI-2 size, zero, byte-swapped) or a random header field."""
    raw = _seed_raw(rng, seeds)
    how = str(rng.choice(["sizeof", "magic", "swap", "flip"]))
    if how == "sizeof":
        _put(raw, 0, "i", int(rng.choice([0, 540, 1, -348])))
    elif how == "magic":
        raw[_MAGIC : _MAGIC + 4] = bytes(rng.choice([b"ni1\0", b"XXXX", b"n+2\0", b"\0\0\0\0"]))
    elif how == "swap":
        raw[0:4] = raw[0:4][::-1]
    else:
        for position in rng.integers(0, _HEADER_SIZE, int(rng.integers(1, 12))):
            raw[int(position)] ^= int(rng.integers(1, 256))
    return _nifti_case(rng, seeds, case_dir, raw, f"header {how}")


def nifti_bytes(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Truncated file (header or data), or random bytes flipped anywhere."""
    raw = _seed_raw(rng, seeds)
    if rng.random() < 0.5:
        cut = int(rng.integers(0, len(raw)))
        raw = raw[:cut]
        detail = f"truncated at {cut} of {len(raw)} bytes"
    else:
        count = int(rng.integers(1, 64))
        for position in rng.integers(0, len(raw), count):
            raw[int(position)] = int(rng.integers(0, 256))
        detail = f"{count} random bytes"
    return _nifti_case(rng, seeds, case_dir, raw, detail)


def nifti_gzip(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """A .nii.gz cut short, not compressed at all, empty, or a folder with a NIfTI name."""
    name = str(rng.choice(["t1", "t2", "stir"]))
    compressed = (seeds.nifti / f"{name}.nii.gz").read_bytes()
    how = str(rng.choice(["cut", "plain", "empty", "text", "folder"]))
    target = case_dir / f"{name}.nii.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    if how == "cut":
        target.write_bytes(compressed[: int(rng.integers(1, len(compressed)))])
    elif how == "plain":
        target.write_bytes(bytes(_raw_nifti(seeds.nifti / f"{name}.nii.gz")))
    elif how == "empty":
        target.write_bytes(b"")
    elif how == "text":
        target.write_text("not an image\n")
    else:
        target.mkdir()
    roles = {"t1": seeds.nifti / "t1.nii.gz", "t2": seeds.nifti / "t2.nii.gz", name: target}
    if rng.random() < 0.3:
        return f"{how}; info", ("info", str(target))
    return f"{how} as {name}", _analyze_argv(case_dir, roles)


def _image_file(case_dir: Path, name: str, data: np.ndarray, affine: np.ndarray) -> Path:
    import nibabel as nib

    target = case_dir / f"{name}.nii.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), target)
    return target


def nifti_content(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Well-formed files with hostile content: RGB, 4D, NaN, constant, tiny, extreme values."""
    import nibabel as nib

    role = str(rng.choice(["t1", "t2", "stir"]))
    image = nib.load(seeds.nifti / f"{role}.nii.gz")
    data = np.asarray(image.dataobj)
    how = str(rng.choice(["rgb", "4d", "nan", "constant", "tiny", "extreme", "complex", "bool"]))
    if how == "rgb":
        rgb = np.stack([data.astype(np.uint8)] * 3, axis=-1).copy()
        data = rgb.view(np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])).reshape(data.shape)
    elif how == "4d":
        data = np.stack([data] * int(rng.integers(2, 4)), axis=-1)
    elif how == "nan":
        data = data.astype(np.float32)
        data.flat[rng.integers(0, data.size, 5)] = rng.choice([np.nan, np.inf])
    elif how == "constant":
        data = np.full(data.shape, float(rng.choice([0, 1, 1000])), np.float32)
    elif how == "tiny":
        data = data[:2, :2, :1]
    elif how == "extreme":
        data = np.where(rng.random(data.shape) < 0.5, 3e38, -3e38).astype(np.float32)
    elif how == "complex":
        data = data.astype(np.complex64)
    else:
        data = data > data.mean()
        data = data.astype(np.uint8)
    target = _image_file(case_dir, role, data, image.affine)
    roles = {"t1": seeds.nifti / "t1.nii.gz", "t2": seeds.nifti / "t2.nii.gz", role: target}
    if rng.random() < 0.3:
        return f"{how} {role}; info", ("info", str(target))
    return f"{how} {role}", _analyze_argv(case_dir, roles)


def nifti_labels(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Label maps: fractions, negative or huge ids, empty, on another grid, an image as labels."""
    import nibabel as nib

    image = nib.load(seeds.nifti / "vertebrae.nii.gz")
    labels = np.asarray(image.dataobj).astype(np.int64)
    affine = image.affine.copy()
    how = str(rng.choice(["fraction", "negative", "huge", "empty", "shifted", "image", "one"]))
    if how == "fraction":
        data = labels + 0.5
    elif how == "negative":
        data = (-labels).astype(np.int32)
    elif how == "huge":
        data = (labels * 100_000).astype(np.int32)
    elif how == "empty":
        data = np.zeros_like(labels, np.uint8)
    elif how == "shifted":
        data = labels.astype(np.uint8)
        affine[:3, 3] += 10_000.0
    elif how == "image":
        data = np.asarray(nib.load(seeds.nifti / "t2.nii.gz").dataobj)
    else:
        data = (labels == labels.max()).astype(np.uint8)
    target = _image_file(case_dir, "labels", data, affine)
    roles = {
        "t1": seeds.nifti / "t1.nii.gz",
        "stir": seeds.nifti / "stir.nii.gz",
        "vertebrae": target,
    }
    return f"labels {how}", _analyze_argv(case_dir, roles)


def roles_swapped(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Contrasts in the wrong roles: a T2 or STIR as the T1, one file twice, copies, no T1."""
    nifti = seeds.nifti
    how = str(rng.choice(["t2_as_t1", "stir_as_t1", "same_file", "same_pixels", "t2_only"]))
    if how == "t2_as_t1":
        roles = {"t1": nifti / "t2.nii.gz", "t2": nifti / "t1.nii.gz"}
    elif how == "stir_as_t1":
        roles = {"t1": nifti / "stir.nii.gz", "stir": nifti / "stir.nii.gz"}
    elif how == "same_file":
        roles = {"t1": nifti / "t1.nii.gz", "t2": nifti / "t1.nii.gz"}
    elif how == "same_pixels":
        case_dir.mkdir(parents=True, exist_ok=True)
        copy = case_dir / "copy_of_t1.nii.gz"
        shutil.copyfile(nifti / "t1.nii.gz", copy)
        roles = {"t1": nifti / "t1.nii.gz", "t2": copy}
    else:
        argv = ("analyze", "--t2", str(nifti / "t2.nii.gz"), "--out", str(case_dir / "out"))
        return how, argv
    return how, _analyze_argv(case_dir, roles, ("--vertebrae", str(nifti / "vertebrae.nii.gz")))


def parameters(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Parameter files: not JSON, not an object, unknown keys, wrong types, NaN, negatives."""
    case_dir.mkdir(parents=True, exist_ok=True)
    target = case_dir / "params.json"
    how = str(rng.choice(["garbage", "list", "unknown", "string", "nan", "negative", "huge"]))
    values: object
    if how == "garbage":
        target.write_bytes(rng.integers(0, 256, 64).astype(np.uint8).tobytes())
    else:
        values = {
            "list": [1, 2, 3],
            "unknown": {"no_such_parameter": 1},
            "string": {"stir_hyper_ratio": "high"},
            "nan": {"stir_hyper_ratio": float("nan")},
            "negative": {"min_lesion_mm3": -5, "cortex_mm": -1},
            "huge": {"stir_hyper_ratio": 1e308, "reference_degree": 10**9},
        }[how]
        target.write_text(json.dumps(values))
    roles = {
        "t1": seeds.nifti / "t1.nii.gz",
        "stir": seeds.nifti / "stir.nii.gz",
        "vertebrae": seeds.nifti / "vertebrae.nii.gz",
    }
    return f"params {how}", _analyze_argv(case_dir, roles, ("--params", str(target)))


# --------------------------------------------------------------------------- DICOM mutators


def _copy_dicom(seeds: Seeds, case_dir: Path) -> tuple[Path, list[Path]]:
    folder = case_dir / "dicom"
    shutil.copytree(seeds.dicom, folder)
    return folder, sorted(folder.glob("*.dcm"))


def _dicom_command(rng: np.random.Generator, case_dir: Path, folder: Path, detail: str) -> tuple:
    command = str(rng.choice(["info", "analyze", "analyze", "convert"]))
    if command == "info":
        return f"{detail}; info", ("info", str(folder))
    if command == "convert":
        return f"{detail}; convert", ("convert", str(folder), str(case_dir / "out"))
    return f"{detail}; analyze", ("analyze", str(folder), "--out", str(case_dir / "out"), "--no-qc")


def _series_files(files: list[Path], rng: np.random.Generator) -> list[Path]:
    """The files of one randomly chosen series of the copied study."""
    import pydicom

    uids = {f: str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID) for f in files}
    chosen = sorted(set(uids.values()))[int(rng.integers(0, len(set(uids.values()))))]
    return [f for f in files if uids[f] == chosen]


def _set_tag(path: Path, keyword: str, value: object) -> None:
    import pydicom
    from pydicom import config

    config.settings.writing_validation_mode = config.IGNORE
    config.settings.reading_validation_mode = config.IGNORE
    ds = pydicom.dcmread(path)
    if value is None:
        if keyword in ds:
            del ds[keyword]
        ds.save_as(path, enforce_file_format=False)
        return
    try:
        setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=False)
    except (ValueError, TypeError, OverflowError, OSError, struct.error):
        ds = pydicom.dcmread(path)  # a value pydicom will not convert or write: raw bytes
        _set_raw(ds, keyword, value)
        ds.save_as(path, enforce_file_format=False)


#: struct formats of binary integer value representations.
_BINARY_VR = {"US": "<H", "SS": "<H", "UL": "<I", "SL": "<I"}


def _set_raw(ds: object, keyword: str, value: object) -> None:
    """Store ``value`` as the raw bytes of ``keyword``, bypassing pydicom's conversion."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement

    tag = tag_for_keyword(keyword)
    vr = dictionary_VR(tag)
    if vr in _BINARY_VR and isinstance(value, int):
        fmt = _BINARY_VR[vr]
        raw = struct.pack(fmt, value & (0xFFFF if fmt == "<H" else 0xFFFFFFFF))
    else:
        raw = str(value).encode("latin-1")
        raw += b" " * (len(raw) % 2)
    ds[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)


_TAG_VALUES: dict[str, tuple] = {
    "PixelSpacing": _BAD_DS,
    "ImageOrientationPatient": _BAD_IOP,
    "ImagePositionPatient": ("nan\\0\\0", "0\\0", "1e300\\0\\0", "a\\b\\c", "0\\0\\0"),
    "Rows": (0, 1, 65535),
    "Columns": (0, 1, 65535),
    "BitsAllocated": _BAD_INTS,
    "BitsStored": _BAD_INTS,
    "SamplesPerPixel": (0, 3, 4),
    "PixelRepresentation": (1, 2),
    "RescaleSlope": _BAD_DS,
    "RescaleIntercept": _BAD_DS,
    "NumberOfFrames": ("0", "100000", "-1", "x"),
    "RepetitionTime": _BAD_DS,
    "EchoTime": _BAD_DS,
    "SeriesNumber": ("x", "-1", "99999999999"),
    "PhotometricInterpretation": ("RGB", "PALETTE COLOR", "YBR_FULL", "MONOCHROME1"),
    "SeriesInstanceUID": (None, "", "1.2.3"),
    "PixelData": (None, b"", b"\x00\x01"),
}


def dicom_tag(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """A geometry, pixel-layout or acquisition tag set to a hostile value in one or all files."""
    folder, files = _copy_dicom(seeds, case_dir)
    keyword = str(rng.choice(sorted(_TAG_VALUES)))
    options = _TAG_VALUES[keyword]
    value = options[int(rng.integers(0, len(options)))]
    targets = _series_files(files, rng)
    if rng.random() < 0.5:
        targets = [targets[int(rng.integers(0, len(targets)))]]
    for path in targets:
        _set_tag(path, keyword, value)
    detail = f"{keyword}={value!r} in {len(targets)} file(s)"
    return _dicom_command(rng, case_dir, folder, detail)


def _element_offset(raw: bytes, group: int, element: int) -> int:
    """Offset of an explicit-VR element header in the dataset (after the file meta), or -1."""
    needle = struct.pack("<HH", group, element)
    return raw.find(needle, 132 + 12)


def dicom_vr(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """A damaged value representation (two VR bytes replaced) in one or several files."""
    folder, files = _copy_dicom(seeds, case_dir)
    group, element = _VR_TAGS[int(rng.integers(0, len(_VR_TAGS)))]
    junk = bytes(_VR_JUNK[int(rng.integers(0, len(_VR_JUNK)))])
    targets = _series_files(files, rng)
    if rng.random() < 0.6:
        targets = targets[: int(rng.integers(1, len(targets) + 1))]
    for path in targets:
        raw = bytearray(path.read_bytes())
        at = _element_offset(bytes(raw), group, element)
        if at >= 0:
            raw[at + 4 : at + 6] = junk
            path.write_bytes(bytes(raw))
    detail = f"VR of ({group:04X},{element:04X}) -> {junk!r} in {len(targets)} file(s)"
    return _dicom_command(rng, case_dir, folder, detail)


def dicom_bytes(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """Files cut short (header or pixel data), bytes flipped, files removed or duplicated."""
    folder, files = _copy_dicom(seeds, case_dir)
    how = str(rng.choice(["truncate", "truncate_all", "flip", "remove", "duplicate", "junk"]))
    victim = files[int(rng.integers(0, len(files)))]
    if how in ("truncate", "truncate_all"):
        targets = _series_files(files, rng) if how == "truncate_all" else [victim]
        for path in targets:
            raw = path.read_bytes()
            path.write_bytes(raw[: int(rng.integers(0, len(raw)))])
    elif how == "flip":
        raw = bytearray(victim.read_bytes())
        for position in rng.integers(0, len(raw), int(rng.integers(1, 40))):
            raw[int(position)] = int(rng.integers(0, 256))
        victim.write_bytes(bytes(raw))
    elif how == "remove":
        victim.unlink()
    elif how == "duplicate":
        shutil.copyfile(victim, folder / f"copy_{victim.name}")
        _set_tag(folder / f"copy_{victim.name}", "SOPInstanceUID", "1.2.3.4.5.6")
    else:
        (folder / "notes.txt").write_text("exported by hand\n")
        (folder / "DICOMDIR").write_bytes(b"\x00" * 200)
        (folder / "empty.dcm").write_bytes(b"")
    if how == "truncate" and rng.random() < 0.5:
        return f"{how} {victim.name}; info of the file", ("info", str(victim))
    return _dicom_command(rng, case_dir, folder, f"{how} {victim.name}")


def dicom_study(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """One series moved to another study or frame of reference, or the only series left."""
    folder, files = _copy_dicom(seeds, case_dir)
    targets = _series_files(files, rng)
    how = str(rng.choice(["study", "frame", "both", "alone"]))
    if how == "alone":
        for path in files:
            if path not in targets:
                path.unlink()
    for path in targets:
        if how in ("study", "both"):
            _set_tag(path, "StudyInstanceUID", "1.2.826.0.1.3680043.8.498.1")
        if how in ("frame", "both"):
            _set_tag(path, "FrameOfReferenceUID", "1.2.826.0.1.3680043.8.498.2")
    return _dicom_command(rng, case_dir, folder, f"series {how}")


def dicom_single(rng: np.random.Generator, seeds: Seeds, case_dir: Path) -> tuple[str, tuple]:
    """One DICOM file alone in a folder, given as a study, a T1 or to ``info``."""
    case_dir.mkdir(parents=True, exist_ok=True)
    source = sorted(seeds.dicom.glob("*.dcm"))[int(rng.integers(0, 18))]
    folder = case_dir / "single"
    folder.mkdir()
    target = folder / source.name
    raw = source.read_bytes()
    if rng.random() < 0.5:
        raw = raw[: int(rng.integers(132, len(raw)))]
    target.write_bytes(raw)
    command = str(rng.choice(["info", "study", "t1"]))
    out = str(case_dir / "out")
    if command == "info":
        return "single file; info", ("info", str(target))
    if command == "study":
        return "single file; analyze", ("analyze", str(folder), "--out", out, "--no-qc")
    t2 = str(seeds.nifti / "t2.nii.gz")
    return "single file as t1", ("analyze", "--t1", str(target), "--t2", t2, "--out", out)


Mutator = Callable[[np.random.Generator, Seeds, Path], tuple[str, tuple]]

#: Every mutator, by name; a case draws one with equal weight.
MUTATORS: dict[str, Mutator] = {
    "nifti_pixdim": nifti_pixdim,
    "nifti_sform": nifti_sform,
    "nifti_dims": nifti_dims,
    "nifti_datatype": nifti_datatype,
    "nifti_offset": nifti_offset,
    "nifti_scaling": nifti_scaling,
    "nifti_extension": nifti_extension,
    "nifti_magic": nifti_magic,
    "nifti_bytes": nifti_bytes,
    "nifti_gzip": nifti_gzip,
    "nifti_content": nifti_content,
    "nifti_labels": nifti_labels,
    "roles_swapped": roles_swapped,
    "parameters": parameters,
    "dicom_tag": dicom_tag,
    "dicom_vr": dicom_vr,
    "dicom_bytes": dicom_bytes,
    "dicom_study": dicom_study,
    "dicom_single": dicom_single,
}


def build_case(seeds: Seeds, root: Path, seed: int, number: int) -> Case:
    """Build case ``number`` of the corpus ``seed`` under ``root/<number>``."""
    rng = np.random.default_rng([seed, number])
    names = sorted(MUTATORS)
    kind = names[int(rng.integers(0, len(names)))]
    folder = Path(root) / f"{number:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    detail, argv = MUTATORS[kind](rng, seeds, folder)
    return Case(number=number, kind=kind, detail=detail, folder=folder, argv=tuple(argv))
