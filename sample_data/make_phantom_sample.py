"""Regenerate the bundled phantom study in ``sample_data/phantom/`` (DICOM and NIfTI).

Usage, from the repository root::

    python sample_data/make_phantom_sample.py            # rewrites sample_data/phantom/
    python sample_data/make_phantom_sample.py OUT_DIR    # writes elsewhere

The recipe (seed, lesions, grids) lives in :mod:`bmetoolkit.data.datasets`
(:func:`~bmetoolkit.data.datasets.write_phantom_sample`); the same recipe gives the same voxels,
which ``tests/test_datasets.py`` checks against the committed files. DICOM UIDs of the
individual files (SOPInstanceUID) are new on every run; the study, frame of reference and
series UIDs and the file names are deterministic.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from bmetoolkit.data.datasets import (
    PHANTOM_SAMPLE_LESIONS,
    PHANTOM_SAMPLE_SEED,
    write_phantom_sample,
)


def main(argv: list[str] | None = None) -> int:
    """Write the phantom sample; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent / "phantom",
        help="output folder (default: sample_data/phantom beside this script)",
    )
    args = parser.parse_args(argv)
    for sub in ("dicom", "nifti"):  # no stale files from an older recipe
        shutil.rmtree(args.out_dir / sub, ignore_errors=True)
    paths = write_phantom_sample(args.out_dir)
    print(
        f"phantom sample (seed {PHANTOM_SAMPLE_SEED}, lesions {PHANTOM_SAMPLE_LESIONS}) "
        f"written to {args.out_dir}: {len(list(paths['dicom'].iterdir()))} DICOM files, "
        f"{len(paths) - 1} NIfTI/table files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
