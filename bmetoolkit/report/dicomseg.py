"""Writing a label map as a DICOM Segmentation (SEG) that references its source DICOM series.

A DICOM SEG opens in PACS and web viewers (OHIF, 3D Slicer's QuantitativeReporting, ...)
on top of the series it was made from. It needs the optional extra ``dicomseg``
(``pip install bmetoolkit[dicomseg]``, which installs highdicom).

Geometry is never assumed from file order: every pixel of every source image is located in
world space from its own ImagePositionPatient, ImageOrientationPatient and PixelSpacing, and
looked up in the label volume, which must have a voxel at each of those points (the label map
is on the grid of the source series, e.g. the study's T1 grid). Flipped, permuted or oblique
grids are therefore handled, and a label map on another grid is refused instead of being
written mirrored (a classic bug of SEG writers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.errors import GridMismatchError
from bmetoolkit.io import atomic_write
from bmetoolkit.volume import LPS_TO_RAS, Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["INSTALL_HINT", "read_source_series", "source_frames", "write_dicom_seg"]

INSTALL_HINT = "pip install bmetoolkit[dicomseg]"
#: A source pixel must fall within this fraction of a voxel of a label-volume voxel centre.
GRID_TOLERANCE_VOXELS = 0.01

#: Segmented property (category, type) of each segment kind, as SNOMED CT code names.
_PROPERTIES = {
    "lesion": ("MorphologicallyAbnormalStructure", "Lesion"),
    "edema": ("MorphologicallyAbnormalStructure", "Edema"),
    "vertebra": ("AnatomicalStructure", "Vertebra"),
}

SourceInput = str | os.PathLike | Sequence["str | os.PathLike | Dataset"]


def _highdicom() -> Any:
    try:
        import highdicom
    except ImportError as exc:
        raise ImportError(
            f"writing DICOM SEG needs highdicom; install it with `{INSTALL_HINT}`"
        ) from exc
    return highdicom


def read_source_series(source: SourceInput) -> list[Dataset]:
    """The datasets of one source series: from a folder, a list of files, or datasets.

    Raises
    ------
    GridMismatchError
        The inputs hold images of more than one series.
    """
    import pydicom

    from bmetoolkit.io import is_dicom_file

    where: str | None = None
    one_file: str | None = None  # one file given: its series, from the files beside it
    if isinstance(source, str | os.PathLike):
        where = str(source)
        folder = Path(source)
        if folder.is_file():
            one_file = str(pydicom.dcmread(folder, stop_before_pixels=True).SeriesInstanceUID)
            folder = folder.parent
        items: list[Any] = sorted(p for p in folder.rglob("*") if p.is_file() and is_dicom_file(p))
    else:
        items = list(source)
    datasets = [
        item if isinstance(item, pydicom.Dataset) else pydicom.dcmread(item) for item in items
    ]
    if one_file is not None:
        datasets = [ds for ds in datasets if str(ds.SeriesInstanceUID) == one_file]
    if not datasets:
        raise GridMismatchError(
            "no DICOM source images given",
            path=where,
            hint="pass the folder (or a file) of the DICOM series the label map was made on",
        )
    series = {str(ds.SeriesInstanceUID) for ds in datasets}
    if len(series) != 1:
        numbers = sorted({str(ds.get("SeriesNumber", "?")) for ds in datasets})
        raise GridMismatchError(
            f"source images belong to {len(series)} series (series numbers "
            f"{', '.join(numbers)}); a SEG references one",
            path=where,
            hint="pass only the files of the series the label map was made on (e.g. the T1: "
            "bmetoolkit info lists the series of a folder)",
        )
    return datasets


def source_frames(label_volume: Volume, datasets: Sequence[Dataset]) -> NDArray[Any]:
    """Label values at every pixel of every source image, shape (images, rows, columns).

    Raises
    ------
    GridMismatchError
        A source pixel does not fall on a voxel centre of ``label_volume`` (another grid).
    """
    grid = label_volume.grid
    frames = np.zeros((len(datasets), *_matrix(datasets[0])), dtype=label_volume.data.dtype)
    for n, ds in enumerate(datasets):
        ijk = grid.world_to_voxel(_pixel_centres_ras(ds))
        index = np.rint(ijk)
        off_grid = float(np.max(np.abs(ijk - index))) if ijk.size else 0.0
        inside = np.all((index >= 0) & (index < np.asarray(grid.shape)), axis=1)
        if off_grid > GRID_TOLERANCE_VOXELS or not inside.all():
            raise GridMismatchError(
                f"source image {n} (SOPInstanceUID {ds.SOPInstanceUID}) does not lie on the "
                f"label map's grid {grid} (off by up to {off_grid:.3f} voxel, "
                f"{int(np.count_nonzero(~inside))} pixels outside)",
                path=label_volume.source,
                hint="resample the label map onto the source series' grid first "
                "(bmetoolkit.resample_to with the series loaded by bmetoolkit.load)",
            )
        i, j, k = index.astype(np.intp).T
        frames[n] = label_volume.data[i, j, k].reshape(_matrix(ds))
    return frames


def _matrix(ds: Dataset) -> tuple[int, int]:
    return int(ds.Rows), int(ds.Columns)


def _pixel_centres_ras(ds: Dataset) -> NDArray[np.float64]:
    """World (RAS+) coordinates of every pixel centre of one image, row-major, shape (N, 3)."""
    position = np.asarray(ds.ImagePositionPatient, dtype=np.float64)
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
    along_row, along_column = orientation[:3], orientation[3:]  # column index, row index
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    rows, columns = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
    lps = (
        position
        + rows.reshape(-1, 1) * row_spacing * along_column
        + columns.reshape(-1, 1) * column_spacing * along_row
    )
    return lps * np.diag(LPS_TO_RAS)[:3]


def _segment_table(
    label_volume: Volume, segment_names: Mapping[int, str] | Sequence[str]
) -> dict[int, str]:
    if isinstance(segment_names, Mapping):
        table = {int(k): str(v) for k, v in segment_names.items()}
    else:
        table = {n + 1: str(name) for n, name in enumerate(segment_names)}
    if not table or min(table) < 1:
        raise ValueError("segment_names must name label values >= 1 (0 is the background)")
    present = {int(v) for v in np.unique(label_volume.data)} - {0}
    unnamed = sorted(present - set(table))
    if unnamed:
        raise ValueError(
            f"label values {unnamed} of the map have no name in segment_names; name every "
            f"value present ({sorted(present)})"
        )
    return dict(sorted(table.items()))


def write_dicom_seg(
    label_volume: Volume,
    source: SourceInput,
    path: str | os.PathLike,
    segment_names: Mapping[int, str] | Sequence[str],
    *,
    colors: Mapping[int, tuple[int, int, int]] | None = None,
    series_number: int = 900,
    series_description: str = "bmetoolkit segmentation",
    algorithm_type: str = "AUTOMATIC",
    segment_kind: str = "lesion",
) -> Path:
    """Write a label map on a DICOM series' grid as a DICOM SEG referencing that series.

    Each named label value becomes one binary segment (segment numbers 1..n in increasing
    label order, so VerSe ids such as 26 = S1 are renumbered; the segment label keeps the
    name). Frames without any labelled pixel are omitted.

    Parameters
    ----------
    label_volume : Volume
        Label map (integer dtype) on the grid of the source series.
    source : folder, sequence of files, or sequence of pydicom Datasets
        The source series (e.g. the T1 the analysis ran on); one SeriesInstanceUID.
    path : str or os.PathLike
        Output file (``.dcm``); written atomically.
    segment_names : mapping of int to str, or sequence of str
        Name of each label value (``{1: "Modic type I", 2: "Modic type II"}``); a sequence
        names the values 1, 2, ... in order. Every value present in the map must be named.
    colors : mapping of int to (R, G, B), optional
        Display colour of each label value (0-255); see :mod:`bmetoolkit.report.colortables`.
    series_number, series_description : int, str
        Of the new SEG series.
    algorithm_type : {'AUTOMATIC', 'SEMIAUTOMATIC', 'MANUAL'}
        How the segmentation was made (AUTOMATIC names bmetoolkit as the algorithm).
    segment_kind : {'lesion', 'edema', 'vertebra'}
        Segmented property of every segment (SNOMED CT): lesion (Modic changes), edema
        (BME), vertebra (vertebral bodies).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ImportError
        highdicom is not installed (``pip install bmetoolkit[dicomseg]``).
    GridMismatchError
        The label map is not on the grid of the source series.
    """
    hd = _highdicom()
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    import bmetoolkit

    if segment_kind not in _PROPERTIES:
        raise ValueError(f"segment_kind must be one of {sorted(_PROPERTIES)}, got {segment_kind!r}")
    if not label_volume.is_label:
        raise TypeError(
            "write_dicom_seg needs a label volume (kind='label'); load a saved map with "
            "bmetoolkit.load(path, kind='label')"
        )
    table = _segment_table(label_volume, segment_names)
    datasets = read_source_series(source)
    frames = source_frames(label_volume, datasets)
    masks = np.stack([frames == value for value in table], axis=-1)
    algorithm = None
    if algorithm_type.upper() != "MANUAL":
        algorithm = hd.AlgorithmIdentificationSequence(
            name="bmetoolkit",
            family=codes.cid7162.MultispectralProcessing,
            version=bmetoolkit.__version__,
        )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name,
            segmented_property_category=getattr(codes.SCT, _PROPERTIES[segment_kind][0]),
            segmented_property_type=getattr(codes.SCT, _PROPERTIES[segment_kind][1]),
            algorithm_type=algorithm_type.upper(),
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*colors[value])
            if colors and value in colors
            else None,
        )
        for number, (value, name) in enumerate(table.items(), start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="bmetoolkit",
        manufacturer_model_name="bmetoolkit",
        software_versions=bmetoolkit.__version__,
        device_serial_number="0",
        content_description=series_description[:64],
    )
    seg.SeriesDescription = series_description
    target = Path(path)
    with atomic_write(target) as temporary:
        seg.save_as(temporary)
    return target
