"""Property-based fuzzing (hypothesis): NIfTI header fields, affines, label maps, parameters.

Every input drawn here either loads into something sound or is refused with a
:class:`~bmetoolkit.errors.BmetoolkitError`; any other exception is a traceback a user would
see, and fails the test. The examples are derandomised (the same ones every run, no example
database) and their number fixed (:data:`EXAMPLES`), so ``make test`` stays deterministic;
all of them together take about 30 s. The mutation corpus of ``tests/test_fuzz.py`` covers
whole command runs; this suite covers the parsers and checks underneath, field by field.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bmetoolkit.bones.labels import bone_labels
from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.io import load, nifti_series_info
from bmetoolkit.params import Parameters
from bmetoolkit.spine.labels import CONVENTIONS, vertebral_bodies
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume

#: Examples per property: small enough for ``make test`` (a few seconds each).
EXAMPLES = 150

#: Deterministic settings: the same examples every run, nothing remembered between runs.
FIXED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)

# NIfTI-1 header fields: (byte offset, struct format) of the fields a scanner export sets.
_SHORT, _FLOAT, _BYTE = "h", "f", "B"
HEADER_FIELDS: dict[str, tuple[int, str, int]] = {
    "dim": (40, _SHORT, 8),
    "intent_code": (68, _SHORT, 1),
    "datatype": (70, _SHORT, 1),
    "bitpix": (72, _SHORT, 1),
    "pixdim": (76, _FLOAT, 8),
    "vox_offset": (108, _FLOAT, 1),
    "scl_slope": (112, _FLOAT, 1),
    "scl_inter": (116, _FLOAT, 1),
    "xyzt_units": (123, _BYTE, 1),
    "qform_code": (252, _SHORT, 1),
    "sform_code": (254, _SHORT, 1),
    "quatern": (256, _FLOAT, 6),
    "srow": (280, _FLOAT, 12),
}

_SHORTS = st.one_of(
    st.integers(-(2**15), 2**15 - 1),
    st.sampled_from([0, 1, 2, 3, 4, 5, 16, 64, 128, 256, 512, 768, 2304, 32767, -1]),
)
_FLOATS = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0, 1e-6, 1e-3, 0.5, 4.0, 352.0, 1e12, float("nan")]),
)
_BYTES = st.integers(0, 255)
_VALUES = {_SHORT: _SHORTS, _FLOAT: _FLOATS, _BYTE: _BYTES}


def _field_change(name: str) -> st.SearchStrategy:
    _, fmt, count = HEADER_FIELDS[name]
    position = st.integers(0, count - 1)
    return st.tuples(st.just(name), position, _VALUES[fmt])


HEADER_CHANGES = st.lists(
    st.sampled_from(sorted(HEADER_FIELDS)).flatmap(_field_change), min_size=1, max_size=4
)


def _seed_nifti() -> bytes:
    """A small valid NIfTI-1 image (int16, oblique, anisotropic) as bytes."""
    rng = np.random.default_rng(0)
    affine = np.array(
        [[0.9, 0.1, 0.0, -10.0], [-0.1, 0.9, 0.2, 5.0], [0.0, -0.05, 3.5, 20.0], [0, 0, 0, 1]]
    )
    image = nib.Nifti1Image(rng.integers(0, 900, (9, 7, 5), dtype=np.int16), affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    return image.to_bytes()


SEED_NIFTI = _seed_nifti()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


def _refused_or(action, check=lambda _: None):
    """Run ``action``: a BmetoolkitError is a clean refusal, anything else propagates."""
    try:
        outcome = action()
    except BmetoolkitError as exc:
        assert str(exc), "a refusal must say why"
        return None
    check(outcome)
    return outcome


def _sound_volume(volume: Volume) -> None:
    assert volume.data.ndim == 3 and min(volume.shape) >= 1
    assert np.all(np.isfinite(volume.affine))
    assert abs(np.linalg.det(volume.affine[:3, :3])) > 0


@FIXED
@given(changes=HEADER_CHANGES)
def test_nifti_header_fields(folder, changes):
    """Any value in the header fields a scanner sets: a sound volume or a typed refusal."""
    raw = bytearray(SEED_NIFTI)
    for name, position, value in changes:
        offset, fmt, _ = HEADER_FIELDS[name]
        struct.pack_into("<" + fmt, raw, offset + position * struct.calcsize(fmt), value)
    path = folder / "header.nii"
    path.write_bytes(bytes(raw))
    _refused_or(lambda: nifti_series_info(path))
    _refused_or(lambda: load(path), _sound_volume)
    _refused_or(lambda: load(path, kind="label"), _sound_volume)


_AFFINE_VALUES = st.one_of(
    st.floats(-1e8, 1e8, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.0, 1e-9, 1e-4, 1e5, float("nan"), float("inf")]),
)


@FIXED
@given(
    matrix=hnp.arrays(np.float64, (3, 4), elements=_AFFINE_VALUES),
    scale=st.sampled_from([1.0, 0.3, 4.0]),
)
def test_affines_of_files_and_of_pairs(folder, matrix, scale):
    """Any sform: a typed refusal, or a volume that pairs with a T1 or is refused as apart."""
    affine = np.vstack([matrix, [0, 0, 0, 1]])
    data = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4) % 97 + 10
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_sform(affine * np.array([scale] * 3 + [1.0])[None, :].T, code=2)
    path = folder / "affine.nii"
    path.write_bytes(image.to_bytes())
    volume = _refused_or(lambda: load(path), _sound_volume)
    if volume is None:
        return
    t1 = Volume(np.full((6, 5, 4), 100, np.int16), np.diag([2.0, 2.0, 4.0, 1.0]), source="t1")
    _refused_or(lambda: Study.from_images(t1, t2=volume, verify_roles=False))


_LABEL_DTYPES = st.sampled_from(
    [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.float32, np.float64]
)


@st.composite
def label_maps(draw) -> np.ndarray:
    dtype = np.dtype(draw(_LABEL_DTYPES))
    if dtype.kind == "f":
        elements = st.one_of(
            st.sampled_from([0.0, 1.0, 2.0, 20.0, 0.5, -1.0, 1e30, float("nan"), float("inf")]),
            st.floats(-1e6, 1e6, width=dtype.itemsize * 8),
        )
    else:
        info = np.iinfo(dtype)
        elements = st.one_of(
            st.sampled_from([v for v in (0, 1, 2, 18, 20, 24, 119, 220) if v <= info.max]),
            st.integers(int(info.min), int(info.max)),
        )
    shape = draw(st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 4)))
    return draw(hnp.arrays(dtype, shape, elements=elements))


@FIXED
@given(data=label_maps(), convention=st.sampled_from(["auto", *CONVENTIONS]))
def test_label_maps(folder, data, convention):
    """Any label file, read as vertebrae in any convention and as bone masks."""
    path = folder / "labels.nii.gz"
    path.write_bytes(nib.Nifti1Image(data, np.diag([1.5, 1.5, 4.0, 1.0])).to_bytes())
    labels = _refused_or(lambda: load(path, kind="label"), _sound_volume)
    if labels is None:
        return
    assert np.issubdtype(labels.data.dtype, np.integer) or labels.data.dtype == np.bool_
    _refused_or(lambda: vertebral_bodies(labels, convention=convention))
    _refused_or(lambda: bone_labels(labels))


_NAMES = sorted(Parameters().to_dict())
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(_NAMES) | st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
_PARAMETER_OBJECTS = st.dictionaries(
    st.sampled_from(_NAMES) | st.text(max_size=10), _JSON, max_size=4
)


@settings(FIXED, max_examples=EXAMPLES // 2)  # each example reads the JSON three ways
@given(values=_PARAMETER_OBJECTS | _JSON, noise=st.sampled_from(["", "}", " ", "{", "\x00"]))
def test_parameters_json(folder, values, noise):
    """Any JSON (or nearly JSON) as ``--params`` text or file: Parameters or a typed refusal."""
    text = json.dumps(values) + noise

    def sound(params: Parameters) -> None:
        assert Parameters.from_dict(params.to_dict()) == params  # what a report saves

    if text.lstrip().startswith("{"):
        _refused_or(lambda: Parameters.from_argument(text), sound)
    path = folder / "params.json"
    path.write_text(text, encoding="utf-8")
    _refused_or(lambda: Parameters.from_file(path), sound)
    _refused_or(lambda: Parameters.from_argument(str(path)), sound)


@FIXED
@given(
    seed=st.integers(0, 2**32 - 1),
    marrow_fraction=st.floats(0.1, 0.6),
    spread=st.floats(0.05, 2.0),
)
def test_role_relations_flip_when_the_images_are_swapped(seed, marrow_fraction, spread):
    """The swap-symmetric relations the role check relies on where no air is in view (ratio
    tails, the marrow's three fat relations) change sign, and only sign, when the T1 and the
    fluid image trade places: whatever the images hold, a swap cannot look like the genuine
    pair."""
    from bmetoolkit.pairing.sanity import marrow_fat_relations
    from bmetoolkit.pairing.tissue import measure_roles

    rng = np.random.default_rng(seed)
    shape = (32, 32, 4)
    first = np.exp(rng.normal(0.0, spread, shape)) * 100
    second = np.exp(rng.normal(0.0, spread, shape)) * 100
    marrow = rng.random(shape) < marrow_fraction
    covered = np.ones(shape, bool)
    genuine = measure_roles(first, second, covered, (1.0, 1.0, 1.0), marrow)
    swapped = measure_roles(second, first, covered, (1.0, 1.0, 1.0), marrow)
    # (images of wide spread, mostly dark, leave too little body above the air's noise to
    # judge: then neither order is judged)
    assert (swapped.ratio_tails is None) == (genuine.ratio_tails is None)
    if genuine.ratio_tails is not None:
        assert swapped.ratio_tails == pytest.approx(-genuine.ratio_tails, abs=1e-9)
    relations, mirrored = marrow_fat_relations(genuine), marrow_fat_relations(swapped)
    assert (relations is None) == (mirrored is None)  # too little marrow in the body to judge
    for name, value in (relations or {}).items():
        assert mirrored[name] == pytest.approx(-value, abs=2.0 / marrow.size), name
