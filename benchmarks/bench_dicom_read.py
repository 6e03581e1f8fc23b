"""Time reading a DICOM study with bmetoolkit against SimpleITK's ImageSeriesReader.

Writes a synthetic study (3 series of 400 x 400 x 20 uint16 slices, shuffled file names, all
in one folder) with :func:`bmetoolkit.dicom.write.write_dicom_series`, then reads every series
with both readers, several times, and prints the median wall times. Each bmetoolkit run
starts with an empty header cache, so it includes the header scan of the whole folder.

Run: ``.venv/bin/python benchmarks/bench_dicom_read.py [--repeats 7] [--folder DIR]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bmetoolkit.dicom import read as dicom
from bmetoolkit.dicom.write import write_dicom_series
from bmetoolkit.volume import Volume


def write_study(folder: Path, *, size: int = 400, slices: int = 20) -> None:
    """Three series (sagittal, axial, coronal) of ``size x size x slices`` uint16 images."""
    rng = np.random.default_rng(0)
    axes = {
        "SAG_T1": [[0, 0, 1], [-1, 0, 0], [0, 1, 0]],
        "AX_T2": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        "COR_STIR": [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
    }
    for number, (name, direction) in enumerate(axes.items(), start=1):
        affine = np.eye(4)
        affine[:3, :3] = np.asarray(direction, float) * [0.6, 0.6, 4.0]
        affine[:3, 3] = [-100.0, -120.0, -90.0]
        data = rng.integers(0, 4096, (size, size, slices), dtype=np.uint16)
        write_dicom_series(
            Volume(data, affine), folder, series_number=number, series_description=name, seed=number
        )


def read_bmetoolkit(folder: Path) -> list[np.ndarray]:
    dicom.clear_header_cache()  # cold start: scan every header again
    return [dicom.read_series(info).data for info in dicom.scan_dicom(folder)]


def read_simpleitk(folder: Path) -> list[np.ndarray]:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    volumes = []
    for uid in reader.GetGDCMSeriesIDs(str(folder)):
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), uid))
        volumes.append(sitk.GetArrayFromImage(reader.Execute()))
    return volumes


def median_seconds(function: Callable[[Path], object], folder: Path, repeats: int) -> float:
    function(folder)  # warm the operating system's file cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(folder)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--folder", type=Path, help="existing study folder (default: synthetic)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.folder or Path(temporary)
        if args.folder is None:
            write_study(folder)
        n_files = sum(1 for p in folder.rglob("*") if p.is_file())
        ours = median_seconds(read_bmetoolkit, folder, args.repeats)
        theirs = median_seconds(read_simpleitk, folder, args.repeats)
        print(f"{n_files} files in {folder}")
        print(
            f"bmetoolkit scan_dicom + read_series: {ours * 1000:8.1f} ms (median of {args.repeats})"
        )
        print(f"SimpleITK ImageSeriesReader:         {theirs * 1000:8.1f} ms")
        print(f"ratio bmetoolkit / SimpleITK:        {ours / theirs:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
