"""``bmetoolkit convert PATH OUT_DIR``: one NIfTI + JSON sidecar per DICOM series."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from bmetoolkit import __version__
from bmetoolkit.commands import EXIT_FAILED, EXIT_OK
from bmetoolkit.errors import BmetoolkitError

__all__ = ["register", "run", "series_file_stem"]


def register(commands: Any) -> None:
    """Add the ``convert`` command to the CLI's sub-parsers ``commands``."""
    parser = commands.add_parser(
        "convert",
        help="write one NIfTI + JSON sidecar per DICOM series (like dcm2niix)",
        description="Convert every DICOM series under PATH to OUT_DIR/NNN_<description>"
        ".nii.gz (NNN: the series number, three digits, e.g. 002_T1_TSE_SAG.nii.gz) with a "
        "BIDS-style JSON sidecar of acquisition parameters (no patient identity). Series that "
        "cannot be converted are reported and skipped.",
    )
    parser.add_argument("path", type=Path, metavar="PATH")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.set_defaults(handler=run)


def series_file_stem(number: int | None, description: str) -> str:
    """File name stem for a series: zero-padded number and a safe version of its description.

    Examples
    --------
    >>> series_file_stem(3, "t2_tirm_sag / FS*")
    '003_t2_tirm_sag_FS'
    >>> series_file_stem(None, "")
    'series'
    """
    safe = re.sub(r"[^A-Za-z0-9.+-]+", "_", description).strip("._") or "series"
    return safe if number is None else f"{number:03d}_{safe}"


def run(args: argparse.Namespace) -> int:
    """Convert every DICOM series of ``args.path``; 1 when some series was skipped."""
    from bmetoolkit.dicom.read import read_series, scan_dicom
    from bmetoolkit.io import PRIVATE_META_KEYS, save_nifti, write_json
    from bmetoolkit.pairing.contrast import classify_series

    series = scan_dicom(args.path)
    failures = 0
    used: set[str] = set()
    for info in series:
        stem = series_file_stem(info.number, info.description)
        while stem in used:  # two series with one number and description
            stem += "_b"
        used.add(stem)
        try:
            volume = read_series(info)
        except BmetoolkitError as exc:
            failures += 1
            print(f"skipped {info.label}: {exc}", file=sys.stderr)
            continue
        call = classify_series(info)
        public = {k: v for k, v in volume.meta.items() if k not in PRIVATE_META_KEYS}
        sidecar = public | {
            "BmetoolkitContrast": call.contrast,
            "BmetoolkitContrastReasons": list(call.reasons),
            "ConversionSoftware": "bmetoolkit",
            "ConversionSoftwareVersion": __version__,
        }
        nifti = save_nifti(volume, args.out_dir / f"{stem}.nii.gz")
        write_json(args.out_dir / f"{stem}.json", sidecar)
        print(f"{info.label} -> {nifti}")
    print(f"converted {len(series) - failures} of {len(series)} series into {args.out_dir}")
    return EXIT_FAILED if failures else EXIT_OK
