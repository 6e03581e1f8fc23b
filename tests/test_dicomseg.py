"""DICOM SEG: segments land on exactly the voxels of the NIfTI label map, never mirrored."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.errors import GridMismatchError
from bmetoolkit.io import load
from bmetoolkit.volume import LPS_TO_RAS, Volume

hd = pytest.importorskip("highdicom", reason="needs the dicomseg extra (highdicom)")

from bmetoolkit.report.dicomseg import write_dicom_seg  # noqa: E402

# The phantom's PatientName "PHANTOM" has one component; highdicom warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:The string .PHANTOM.:UserWarning")

MODIC_NAMES = {1: "Modic type I", 2: "Modic type II", 3: "Modic type III"}


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("phantom")
    study = make_phantom(seed=3, lesions="random", config=PhantomConfig.small())
    dicom = study.write_dicom(folder / "dicom")
    nifti = study.write_nifti(folder / "nifti")
    return {"t1_files": dicom["t1"], "nifti": nifti, "study": study, "folder": folder}


def _volume_from_seg(seg_path: Path, grid_volume: Volume) -> dict[int, np.ndarray]:
    """Rebuild each segment on ``grid_volume``'s grid from the SEG's own geometry only.

    Uses each frame's PlanePosition, the shared PlaneOrientation and PixelMeasures: nothing
    about the source images or their order.
    """
    ds = pydicom.dcmread(seg_path)
    pixels = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    shared = ds.SharedFunctionalGroupsSequence[0]
    orientation = np.asarray(
        shared.PlaneOrientationSequence[0].ImageOrientationPatient, dtype=float
    )
    row_spacing, column_spacing = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    inverse = np.linalg.inv(LPS_TO_RAS @ grid_volume.affine)
    segments: dict[int, np.ndarray] = {}
    for frame, item in zip(pixels, ds.PerFrameFunctionalGroupsSequence, strict=True):
        identification = item if "SegmentIdentificationSequence" in item else shared
        number = int(identification.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        position = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        rows, columns = np.nonzero(frame)
        lps = (
            position
            + np.outer(rows * row_spacing, orientation[3:])
            + np.outer(columns * column_spacing, orientation[:3])
        )
        ijk = lps @ inverse[:3, :3].T + inverse[:3, 3]
        assert np.allclose(ijk, np.rint(ijk), atol=1e-3)
        target = segments.setdefault(number, np.zeros(grid_volume.shape, bool))
        i, j, k = np.rint(ijk).astype(int).T
        target[i, j, k] = True
    return segments


def test_modic_and_bme_segments_match_the_nifti_maps(phantom_files: dict, tmp_path: Path) -> None:
    t1 = load(phantom_files["t1_files"][0])  # the whole T1 series, from DICOM
    for key, names, kind in (
        ("modic_map", MODIC_NAMES, "lesion"),
        ("bme_mask", {1: "bone marrow edema"}, "edema"),
    ):
        truth = load(phantom_files["nifti"][key], kind="label")
        assert truth.grid.same_as(t1.grid, atol_mm=1e-3)
        path = write_dicom_seg(
            truth, phantom_files["t1_files"], tmp_path / f"{key}.dcm", names, segment_kind=kind
        )
        segments = _volume_from_seg(path, truth)
        values = [v for v in names if np.any(truth.data == v)]
        assert values, key  # the phantom (seed 3) has types I and II, and edema
        seg = hd.seg.segread(path)
        labels = {d.segment_number: d.segment_label for d in seg.SegmentSequence}
        assert labels == {n: names[v] for n, v in enumerate(sorted(names), start=1)}
        for number, value in enumerate(sorted(names), start=1):
            expected = truth.data == value
            got = segments.get(number, np.zeros(truth.shape, bool))
            assert np.array_equal(got, expected), (key, value)


def test_asymmetric_mask_is_not_mirrored(phantom_files: dict, tmp_path: Path) -> None:
    t1 = load(phantom_files["t1_files"][0])
    data = np.zeros(t1.shape, np.uint8)
    data[2:9, 3:5, 1] = 1  # an L shape in one corner of slice 1 only
    data[2:4, 5:15, 1] = 1
    data[-6:-2, -10:-3, -1] = 2  # a block in the opposite corner of the last slice
    mask = Volume(data, t1.affine, kind="label")
    path = write_dicom_seg(mask, phantom_files["t1_files"], tmp_path / "asym.dcm", ["L", "block"])
    segments = _volume_from_seg(path, mask)
    assert np.array_equal(segments[1], data == 1)
    assert np.array_equal(segments[2], data == 2)
    # highdicom, by source instance (slice order as written): same voxels.
    seg = hd.seg.segread(path)
    uids = [pydicom.dcmread(f).SOPInstanceUID for f in phantom_files["t1_files"]]
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1, 2])
    for k in range(t1.shape[2]):
        assert np.array_equal(pixels[k, :, :, 0], (data[:, :, k] == 1).T)
        assert np.array_equal(pixels[k, :, :, 1], (data[:, :, k] == 2).T)


def test_labels_on_another_grid_are_refused(phantom_files: dict, tmp_path: Path) -> None:
    t2_mask = phantom_files["study"].truth.grid_masks["t2"]["modic_map"]
    with pytest.raises(GridMismatchError, match="does not lie on the label map's grid"):
        write_dicom_seg(t2_mask, phantom_files["t1_files"], tmp_path / "x.dcm", MODIC_NAMES)
    assert not (tmp_path / "x.dcm").exists()


def test_unnamed_label_values_are_refused(phantom_files: dict, tmp_path: Path) -> None:
    truth = load(phantom_files["nifti"]["modic_map"], kind="label")
    with pytest.raises(ValueError, match="no name"):
        write_dicom_seg(truth, phantom_files["t1_files"], tmp_path / "x.dcm", ["Modic type I"])


def test_missing_highdicom_names_the_extra(
    phantom_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "highdicom", None)
    truth = load(phantom_files["nifti"]["bme_mask"], kind="label")
    with pytest.raises(ImportError, match=r"pip install bmetoolkit\[dicomseg\]"):
        write_dicom_seg(truth, phantom_files["t1_files"], tmp_path / "x.dcm", ["edema"])


def test_a_folder_of_several_series_is_refused(phantom_files: dict, tmp_path: Path) -> None:
    truth = load(phantom_files["nifti"]["bme_mask"], kind="label")
    with pytest.raises(GridMismatchError, match=r"belong to 3 series \(series numbers") as err:
        write_dicom_seg(truth, phantom_files["folder"] / "dicom", tmp_path / "x.dcm", ["edema"])
    assert err.value.path == str(phantom_files["folder"] / "dicom")  # the folder, not UIDs
    assert "bmetoolkit info" in err.value.hint


def test_one_file_of_the_series_stands_for_its_series(phantom_files: dict, tmp_path: Path) -> None:
    truth = load(phantom_files["nifti"]["bme_mask"], kind="label")
    files = [Path(f) for f in phantom_files["t1_files"]]
    by_list = write_dicom_seg(truth, files, tmp_path / "list.dcm", ["edema"])
    by_file = write_dicom_seg(truth, files[0], tmp_path / "one.dcm", ["edema"])
    assert np.array_equal(
        pydicom.dcmread(by_list).pixel_array, pydicom.dcmread(by_file).pixel_array
    )


def test_an_intensity_volume_is_refused_with_what_to_do(
    phantom_files: dict, tmp_path: Path
) -> None:
    image = load(phantom_files["nifti"]["bme_mask"])  # loaded without kind="label"
    with pytest.raises(TypeError, match=r"kind='label'\)"):
        write_dicom_seg(image, phantom_files["t1_files"], tmp_path / "x.dcm", ["edema"])
