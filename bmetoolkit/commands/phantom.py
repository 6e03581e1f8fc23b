"""``bmetoolkit phantom OUT_DIR``: a synthetic spine study with known truth (DICOM and NIfTI)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bmetoolkit.commands import EXIT_OK
from bmetoolkit.errors import UsageError

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    """Add the ``phantom`` command to the CLI's sub-parsers ``commands``."""
    parser = commands.add_parser(
        "phantom",
        help="write a synthetic spine study with known truth (DICOM and NIfTI)",
        description="Build the synthetic lumbar spine phantom (T11-S1; T1, T2 and STIR on "
        "their own grids) and write OUT_DIR/dicom (all series in one folder) and OUT_DIR/nifti "
        "(images, truth masks, per-endplate and per-lesion truth tables). Same seed, same data.",
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--lesions",
        default="random",
        help="'random' (drawn from the seed) or a preset: "
        "healthy, modic1, modic2, modic3, mixed, edema, haemangioma (default random)",
    )
    parser.add_argument(
        "--size",
        choices=("realistic", "small"),
        default="realistic",
        help="realistic: ~400x400x16 per series; small: coarse grids for quick tests",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the phantom and write it into ``args.out_dir``; return the exit code."""
    from bmetoolkit.data.phantom import PRESETS, PhantomConfig, make_phantom

    if args.lesions not in ("random", *PRESETS):
        choices = ", ".join(("random", *PRESETS))
        raise UsageError(f"unknown --lesions {args.lesions!r}; choose one of {choices}")
    config = PhantomConfig.small() if args.size == "small" else PhantomConfig.realistic()
    study = make_phantom(seed=args.seed, lesions=args.lesions, config=config)
    study.write_dicom(args.out_dir / "dicom")
    study.write_nifti(args.out_dir / "nifti")
    findings = [
        f"{row['level']} {row['endplate']}: Modic {row['modic_type']}"
        for row in study.truth.endplates
        if row["modic_type"] != "none"
    ]
    print(
        f"phantom seed {args.seed} ({args.lesions}): DICOM in {args.out_dir / 'dicom'}, "
        f"NIfTI and truth in {args.out_dir / 'nifti'}"
    )
    print("truth: " + ("; ".join(findings) if findings else "no Modic change"))
    return EXIT_OK
