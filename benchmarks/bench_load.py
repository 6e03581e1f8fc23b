"""Time loading a phantom study from DICOM and NIfTI against plain SimpleITK / nibabel reads.

Builds a realistic three-series phantom study (T1 400x400x16, T2 384x384x16, STIR 320x320x15),
writes it as DICOM (all series in one folder, shuffled names) and as NIfTI, then times:

- bmetoolkit: scan the folder (headers only) and read the three series;
- SimpleITK: ``GetGDCMSeriesIDs`` + ``GetGDCMSeriesFileNames`` + ``ImageSeriesReader`` per series;
- bmetoolkit.load vs ``nibabel.load(...).dataobj`` for the three NIfTI files;
- building the Study (resampling T2 and STIR onto the T1 grid) on its own.

Each figure is the median of ``--repeats`` runs after one warm-up (files in the OS cache).

Usage: ``python benchmarks/bench_load.py [--repeats 7]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from bmetoolkit import Study, load
from bmetoolkit.data.phantom import make_phantom
from bmetoolkit.dicom.read import clear_header_cache, read_series, scan_dicom


def median_seconds(task: Callable[[], object], repeats: int) -> float:
    task()  # warm-up: file cache, imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_dicom_bmetoolkit(folder: Path) -> list[np.ndarray]:
    clear_header_cache()  # a cold start, as in a fresh process: every header parsed again
    return [read_series(info).data for info in scan_dicom(folder)]


def read_dicom_simpleitk(folder: Path) -> list[np.ndarray]:
    arrays = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)):
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
        arrays.append(sitk.GetArrayFromImage(reader.Execute()))
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    phantom = make_phantom(seed=args.seed, lesions="random")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        phantom.write_dicom(root / "dicom")
        niftis = phantom.write_nifti(root / "nifti")
        paths = [niftis[name] for name in ("t1", "t2", "stir")]
        n_files = sum(1 for _ in (root / "dicom").iterdir())
        print(
            f"phantom study: {n_files} DICOM files; "
            + ", ".join(
                f"{name} {'x'.join(map(str, v.shape))}" for name, v in phantom.contrasts.items()
            )
        )

        ours = median_seconds(lambda: read_dicom_bmetoolkit(root / "dicom"), args.repeats)
        theirs = median_seconds(lambda: read_dicom_simpleitk(root / "dicom"), args.repeats)
        print(
            f"DICOM  bmetoolkit {ours:.3f} s | SimpleITK {theirs:.3f} s | "
            f"ratio {ours / theirs:.2f} (target <= 1.5)"
        )

        ours = median_seconds(lambda: [load(p).data for p in paths], args.repeats)
        theirs = median_seconds(
            lambda: [np.asanyarray(nib.load(p).dataobj) for p in paths], args.repeats
        )
        print(
            f"NIfTI  bmetoolkit {ours:.3f} s | nibabel   {theirs:.3f} s | ratio {ours / theirs:.2f}"
        )

        volumes = [load(p) for p in paths]
        study = median_seconds(
            lambda: _on_t1_grid(Study.from_images(volumes[0], t2=volumes[1], stir=volumes[2])),
            args.repeats,
        )
        print(f"Study  resample T2 + STIR onto the T1 grid: {study:.3f} s")


def _on_t1_grid(study: Study) -> Study:
    """``study`` with its T2 and STIR resampled on the whole T1 grid (a study resamples an
    image where its voxels are first read: here all of them, as before 2026-12-01)."""
    for volume in (study.t2, study.stir):
        volume.data  # noqa: B018 (read: resampled now)
    return study


if __name__ == "__main__":
    main()
