"""Test helpers: synthetic grids and fields, world-space comparison, an independent DICOM reader."""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np

from bmetoolkit.data.phantom import Tissue
from bmetoolkit.pairing.series import SeriesInfo
from bmetoolkit.volume import LPS_TO_RAS, Grid, Volume

#: Phantom T1 signals of a gradient-echo-like T1: marrow darker than discs, muscle and fat
#: (as on SCT's cervical t1w, where the discs are about 4 times brighter than the marrow).
#: Patch them into ``bmetoolkit.data.phantom.render.SIGNALS["t1"]``.
DARK_MARROW_T1 = {
    Tissue.MARROW: 1.0, Tissue.NUCLEUS: 4.0, Tissue.ANNULUS: 3.0, Tissue.MUSCLE: 2.5,
    Tissue.FAT: 3.0, Tissue.CORD: 3.0, Tissue.CSF: 1.5, Tissue.EPIDURAL_FAT: 3.0,
    Tissue.POSTERIOR_BONE: 1.0, Tissue.CORTEX: 0.5, Tissue.VISCERA: 2.5,
}  # fmt: skip

#: The benchmark scripts (not a package: imported by putting their folder on the path).
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

#: The public DICOM reference suite, beside the project (``../shared/sample_data/dicom``).
SHARED_DICOM = Path(__file__).resolve().parents[1].parent / "shared" / "sample_data" / "dicom"


def rotation(axis: str, degrees: float) -> np.ndarray:
    """3x3 rotation about the x, y or z axis."""
    angle = np.radians(degrees)
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}[axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def ras_affine(
    axes: Sequence[Sequence[float]],
    spacing: Sequence[float],
    *,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    rotations: Sequence[tuple[str, float]] = (),
) -> np.ndarray:
    """Affine whose voxel axes are the columns of ``axes`` (RAS unit vectors), rotated, scaled."""
    direction = np.asarray(axes, dtype=float)
    for axis, degrees in rotations:
        direction = rotation(axis, degrees) @ direction
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(spacing, dtype=float)
    affine[:3, 3] = origin
    return affine


def canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data and affine flipped/transposed to the closest RAS+ orientation (nibabel)."""
    image = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data), np.asarray(affine)))
    return np.asanyarray(image.dataobj), image.affine


def assert_same_in_world(
    data: np.ndarray,
    affine: np.ndarray,
    ref_data: np.ndarray,
    ref_affine: np.ndarray,
    *,
    atol_mm: float = 1e-4,
    rtol_values: float = 0.0,
) -> None:
    """Both images hold the same voxels at the same places once made canonical."""
    ours, our_affine = canonical(data, affine)
    theirs, their_affine = canonical(ref_data, ref_affine)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    difference = np.abs(our_affine - their_affine).max()
    assert difference <= atol_mm, (
        f"affines differ by {difference:.3g} mm\n{our_affine}\n{their_affine}"
    )
    if rtol_values == 0.0:
        assert np.array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=rtol_values, atol=1e-6)


def read_with_simpleitk(files: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read DICOM files with SimpleITK's ImageSeriesReader: (data[i, j, k], RAS+ affine).

    SimpleITK sorts the files itself (GDCM, by position), so the order given does not matter.
    """
    import SimpleITK as sitk

    folder = str(Path(files[0]).parent)
    reader = sitk.ImageSeriesReader()
    wanted = {str(Path(f)) for f in files}
    for uid in reader.GetGDCMSeriesIDs(folder):
        names = reader.GetGDCMSeriesFileNames(folder, uid)
        if {str(Path(n)) for n in names} == wanted:
            reader.SetFileNames(names)
            break
    else:
        raise AssertionError("SimpleITK found no series made of exactly these files")
    image = reader.Execute()
    data = sitk.GetArrayFromImage(image).T  # [k, j, i] -> [i, j, k]
    affine_lps = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine_lps[:3, :3] = direction * np.array(image.GetSpacing())
    affine_lps[:3, 3] = image.GetOrigin()
    return data, LPS_TO_RAS @ affine_lps


def position_of(path: str | Path) -> np.ndarray:
    """ImagePositionPatient of a file, converted to RAS+."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    lps = np.array([float(v) for v in ds.ImagePositionPatient])
    return lps * np.array([-1.0, -1.0, 1.0])


#: Sagittal voxel axes as a scanner stores them: i -> posterior, j -> superior, k -> right.
SAGITTAL_PSR = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def linear_field(grid: Grid, coefficients=(0.5, -1.25, 2.0), constant=100.0) -> np.ndarray:
    """Values a.x + b.y + c.z + d of a linear function of world position at each voxel centre."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), axis=-1)
    world = grid.voxel_to_world(ijk.reshape(-1, 3))
    values = world @ np.asarray(coefficients) + constant
    return values.reshape(grid.shape).astype(np.float32)


def volume_on(grid: Grid, data=None, **kwargs) -> Volume:
    data = np.zeros(grid.shape, np.float32) if data is None else data
    return Volume(data, grid.affine, **kwargs)


#: Slice normals (RAS+) of the three standard planes, for :func:`series`.
PLANE_NORMALS = {
    "sagittal": (1.0, 0.0, 0.0),
    "coronal": (0.0, 1.0, 0.0),
    "axial": (0.0, 0.0, 1.0),
}


def series(
    description: str,
    number: int | None = 1,
    *,
    plane: str = "sagittal",
    tilt_deg: float = 0.0,
    shape: tuple[int, int, int] = (448, 448, 15),
    uid: str | None = None,
    nifti: str | None = None,
    **meta: object,
) -> SeriesInfo:
    """A DICOM-like series (or a NIfTI file when ``nifti`` names it) built from header values."""
    normal = PLANE_NORMALS[plane]
    if tilt_deg:
        angle = math.radians(tilt_deg)
        axis = normal.index(1.0)
        other = (axis + 2) % 3
        tilted = [0.0, 0.0, 0.0]
        tilted[axis], tilted[other] = math.cos(angle), math.sin(angle)
        normal = (tilted[0], tilted[1], tilted[2])
    if nifti is not None:
        return SeriesInfo(
            uid=f"/data/{nifti}",
            number=None,
            description=description,
            source=f"/data/{nifti}",
            files=(),
            shape=shape,
            spacing=(1.0, 1.0, 4.0),
            slice_normal=normal,
            meta=dict(meta),
        )
    return SeriesInfo(
        uid=uid or f"1.2.840.99.{number}.{abs(hash(description)) % 10_000}",
        number=number,
        description=description,
        source="/data/study",
        files=(f"/data/study/{number}/0001.dcm",),
        shape=shape,
        spacing=(0.7, 0.7, 4.0),
        slice_normal=normal,
        meta={"SeriesDescription": description, **meta},
    )


def segments_outside(found: np.ndarray, truth: np.ndarray) -> list[int]:
    """Labels of ``found`` less than half of whose voxels lie in a true body (``truth`` > 0)."""
    return [int(b) for b in np.unique(found[found > 0]) if (truth[found == b] > 0).mean() < 0.5]


def in_body(visit, map_name: str, level: str) -> np.ndarray:
    """The voxels of a visit's ``map_name`` (e.g. ``"bme_mask"``) in its body ``level``."""
    ids = {name: body for body, name in visit.body_names.items()}
    found = np.asarray(visit.maps[map_name].data) > 0
    return found & (np.asarray(visit.maps["vertebrae"].data) == ids[level])


def left_right_slices(visit, mask: np.ndarray) -> tuple[int, np.ndarray]:
    """The grid axis across a sagittal slab (left-right) and the slices along it that hold
    ``mask``."""
    axis = int(np.argmax(np.abs(visit.maps["vertebrae"].grid.direction[0])))
    return axis, np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))


def slab_from_middle_of(visit, mask: np.ndarray):
    """``visit`` as if its sagittal slab began halfway through ``mask`` (a narrower field
    of view), and the box of its grid that was kept."""
    from dataclasses import replace

    from bmetoolkit.followup.warp import box_grid

    axis, slices = left_right_slices(visit, mask)
    grid = visit.maps["vertebrae"].grid
    start = int(slices[len(slices) // 2])
    box = tuple(slice(start if a == axis else 0, n) for a, n in enumerate(grid.shape))
    affine = box_grid(grid, box).affine

    def crop(volume: Volume) -> Volume:
        return Volume(np.asarray(volume.data)[box], affine, kind=volume.kind, source=volume.source)

    maps = {k: crop(v) for k, v in visit.maps.items()}
    return replace(visit, maps=maps, t1=crop(visit.t1)), box


@contextmanager
def benchmark_module(monkeypatch, name: str) -> Iterator[ModuleType]:
    """``benchmarks/<name>.py`` imported for a test, and forgotten after it (so another
    test imports it afresh)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)


def segment_small_phantom_without_t1(
    stir_alone: bool, params
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``autoseg.segment_bodies`` on the small phantom (seed 3) without its T1.

    From its STIR alone (``stir_alone``), or from its T2 with the STIR as the fluid image
    (the T2 path); for tests that record which steps run. Returns the canonical STIR and
    T2 (None from the STIR alone) handed to it.
    """
    import bmetoolkit.spine.autoseg as autoseg
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    from bmetoolkit.spine.autoseg.frame import CanonicalFrame
    from bmetoolkit.study import Study

    phantom = make_phantom(seed=3, config=PhantomConfig.small())
    study = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)
    frame = CanonicalFrame.of(study.grid)
    stir = frame.view(np.asarray(study.stir.data, dtype=np.float32))
    t2 = None if stir_alone else frame.view(np.asarray(study.t2.data, dtype=np.float32))
    autoseg.segment_bodies(None, stir, frame.spacing, t2=t2, params=params, fat_suppressed=True)
    return stir, t2


def record_calls(monkeypatch, module, name: str) -> list[tuple[tuple, dict]]:
    """Wrap ``module.name`` so each call's ``(args, kwargs)`` is recorded, then the original
    runs; returns the list the calls are appended to (for tests of which steps run)."""
    calls: list[tuple[tuple, dict]] = []
    real = getattr(module, name)

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return calls


@dataclass
class NoT1Study:
    """The fields of a study without a T1 that :func:`find_vertebral_bodies` reads."""

    t2: Volume | None
    stir: Volume | None
    t1: None = None

    @property
    def fluid(self) -> Volume:
        return self.stir if self.stir is not None else self.t2

    @property
    def grid(self) -> Grid:
        return self.fluid.grid

    def analysable(self) -> np.ndarray:
        return np.ones(self.grid.shape, bool)


def lordotic_column(
    tilts: Sequence[float],
    *,
    signals: dict[str, float],
    disc_mm: float,
    body_mm: float = 24.0,
    depth_mm: float = 34.0,
    joined: bool = False,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Segments and an image of a sagittal column of bodies on a 1 x 1 x 3 mm grid of
    90 x 260 x 5 voxels, the same on every slice.

    Each body a rectangle ``body_mm`` high and ``depth_mm`` deep tilted by its entry of
    ``tilts`` (deg, anterior-down, cranial to caudal), with a 1 mm cortex, ``disc_mm`` apart.
    ``signals`` gives ``marrow``, ``cortex`` and ``background``; with ``nucleus`` and
    ``annulus`` too, a disc is drawn between each body and the one above it (a nucleus in
    its central 60 %). With ``joined`` the last segment holds tissue at its
    anterior-superior and posterior-inferior corners (no cortex there), drawn with the
    signal ``joined`` of ``signals`` when given (else left as drawn), so that its outline
    is flatter than its endplates. Gaussian noise of SD ``noise`` drawn from ``seed``.
    """
    shape = (90, 260, 5)
    ap, si = np.meshgrid(np.arange(shape[0]) * 1.0, np.arange(shape[1]) * 1.0, indexing="ij")
    image = np.full(shape[:2], signals["background"])
    segments = np.zeros(shape[:2], np.int32)
    centre = 230.0
    for label, tilt in enumerate(tilts, start=1):
        turn = np.radians(tilt)
        along = (ap - 45) * np.cos(turn) - (si - centre) * np.sin(turn)
        normal = (ap - 45) * np.sin(turn) + (si - centre) * np.cos(turn)
        if label > 1 and "nucleus" in signals:  # the disc between this body and the one above
            mid = np.radians((tilt + tilts[label - 2]) / 2)
            up = si - centre - (body_mm + disc_mm) / 2  # SI from the disc's centre
            d_along = (ap - 45) * np.cos(mid) - up * np.sin(mid)
            d_normal = (ap - 45) * np.sin(mid) + up * np.cos(mid)
            disc = (np.abs(d_along) <= depth_mm / 2) & (np.abs(d_normal) <= disc_mm / 2 + 2)
            disc &= segments == 0  # not into the body above
            nucleus = np.abs(d_along[disc]) <= 0.3 * depth_mm
            image[disc] = np.where(nucleus, signals["nucleus"], signals["annulus"])
        body = (np.abs(along) <= depth_mm / 2) & (np.abs(normal) <= body_mm / 2)
        image[body] = signals["cortex"]
        inner = (np.abs(along) <= depth_mm / 2 - 1) & (np.abs(normal) <= body_mm / 2 - 1.2)
        image[inner] = signals["marrow"]
        segments[body] = label
        if joined and label == len(tilts):
            beyond = (np.abs(normal) > body_mm / 2) & (np.abs(normal) < body_mm / 2 + 7)
            front_top = (along > 4) & (along < 22) & (normal > 0)
            back_bottom = (along < -4) & (along > -22) & (normal < 0)
            corners = beyond & (front_top | back_bottom)
            segments[corners] = label
            if "joined" in signals:
                image[corners] = signals["joined"]
        centre -= body_mm + disc_mm
    if noise:
        image = image + np.random.default_rng(seed).normal(0.0, noise, image.shape)
    return (
        np.repeat(segments[:, :, None], shape[2], axis=2),
        np.repeat(image[:, :, None], shape[2], axis=2),
    )
