"""The ``bmetoolkit`` command line.

Each command is thin: parse, call the Python API, print. ``main(argv)`` returns the exit
code instead of exiting, so tests run commands in-process.

Exit codes: 0 success, 1 some input could not be processed (the reasons are printed),
2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bmetoolkit import __version__
from bmetoolkit.errors import BmetoolkitError

__all__ = ["get_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``bmetoolkit`` command."""
    parser = argparse.ArgumentParser(
        prog="bmetoolkit",
        description="Find and measure bone marrow edema and Modic changes on T1 + T2/STIR MRI.",
    )
    parser.add_argument("--version", action="version", version=f"bmetoolkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser(
        "info",
        help="list the image series in a folder or file, their contrast and the pairing",
        description="List every image series found in PATH (a DICOM folder, a DICOM file or "
        "NIfTI files): number, description, plane, matrix, spacing, slices, detected contrast "
        "and why, and which series would be paired for analysis.",
    )
    info.add_argument("path", type=Path, metavar="PATH")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_run_info)

    convert = commands.add_parser(
        "convert",
        help="write one NIfTI + JSON sidecar per DICOM series (like dcm2niix)",
        description="Convert every DICOM series under PATH to OUT_DIR/<number>_<description>"
        ".nii.gz with a BIDS-style JSON sidecar of acquisition parameters (no patient "
        "identity). Series that cannot be converted are reported and skipped.",
    )
    convert.add_argument("path", type=Path, metavar="PATH")
    convert.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    convert.set_defaults(handler=_run_convert)

    phantom = commands.add_parser(
        "phantom",
        help="write a synthetic spine study with known truth (DICOM and NIfTI)",
        description="Build the synthetic lumbar spine phantom (T11-S1; T1, T2 and STIR on "
        "their own grids) and write OUT_DIR/dicom (all series in one folder) and OUT_DIR/nifti "
        "(images, truth masks, per-endplate and per-lesion truth tables). Same seed, same data.",
    )
    phantom.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    phantom.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    phantom.add_argument(
        "--lesions",
        default="random",
        help="'random' (drawn from the seed) or a preset: "
        "healthy, modic1, modic2, modic3, mixed, edema, haemangioma (default random)",
    )
    phantom.add_argument(
        "--size",
        choices=("realistic", "small"),
        default="realistic",
        help="realistic: ~400x400x16 per series; small: coarse grids for quick tests",
    )
    phantom.set_defaults(handler=_run_phantom)
    for module in _command_modules():
        module.register(commands)
    return parser


def _command_modules() -> list[Any]:
    """The modules of :mod:`bmetoolkit.commands`, each adding one command with ``register``.

    A command module must import quickly: heavy imports belong inside its handler.
    """
    import importlib
    import pkgutil

    from bmetoolkit import commands

    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.ispkg)
    return [importlib.import_module(f"bmetoolkit.commands.{name}") for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bmetoolkit`` command line with ``argv`` and return its exit code."""
    parser = get_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    with _silenced_warnings():
        try:
            return args.handler(args)
        except BmetoolkitError as exc:
            print(f"bmetoolkit {args.command}: error: {exc.for_cli()}", file=sys.stderr)
            return EXIT_FAILED
        except MemoryError:
            print(
                f"bmetoolkit {args.command}: error: not enough memory for these images; "
                "check their sizes with `bmetoolkit info PATH`, or close other programs",
                file=sys.stderr,
            )
            return EXIT_FAILED


@contextlib.contextmanager
def _silenced_warnings() -> Iterator[None]:
    """Silence library warnings (numpy, nibabel, pydicom) while a command runs.

    They are about values bmetoolkit checks itself (what matters reaches the user as a typed
    error or a report note), so on a terminal they would only be noise. Following the
    Python documentation's convention, nothing is changed when warnings were configured
    (``python -W ...`` or ``PYTHONWARNINGS``).
    """
    if sys.warnoptions:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --- info ------------------------------------------------------------------------------------


def _describe_inputs(path: Path) -> tuple[list[Any], list[str]]:
    """SeriesInfo of every image series under ``path`` (DICOM series and NIfTI files), and
    why files were skipped (damaged DICOM files, NIfTI files that cannot be read)."""
    from bmetoolkit.dicom.read import describe_skipped, scan_dicom
    from bmetoolkit.errors import EmptyInputError, InputNotFoundError
    from bmetoolkit.io import NIFTI_SUFFIXES, nifti_series_info

    if not path.exists():
        raise InputNotFoundError("does not exist", path=path, hint="check the path")
    if path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES):
        return [nifti_series_info(path)], []
    niftis = (
        sorted(p for p in path.rglob("*") if p.name.lower().endswith(NIFTI_SUFFIXES))
        if path.is_dir()
        else []
    )
    skipped: list[tuple[str, str]] = []
    try:
        series = scan_dicom(path, skipped=skipped)
    except EmptyInputError:
        if not niftis:
            raise
        series = []
    notes = [describe_skipped(skipped, examples=len(skipped))] if skipped and series else []
    for nifti in niftis:
        try:
            series.append(nifti_series_info(nifti))
        except BmetoolkitError as exc:
            notes.append(f"skipped {exc}")
    if not series:
        raise EmptyInputError(
            "holds no readable image: " + "; ".join(notes),
            path=path,
            hint="copy or export the damaged files again",
        )
    return series, notes


def _pairing_of(series: list[Any]) -> tuple[dict[str, str], list[str]]:
    """Role of each paired series uid, and the pairing's reasons (or why it failed)."""
    from bmetoolkit.pairing.pair import pair_series

    dicom_series = [s for s in series if s.files]
    if not dicom_series:
        return {}, [
            "NIfTI files are not paired automatically: name them in the Python API, "
            "Study.from_images(t1, t2=..., stir=...)"
        ]
    try:
        pairing = pair_series(dicom_series)
    except BmetoolkitError as exc:
        return {}, [f"no automatic pairing: {exc.for_cli()}"]
    roles = {}
    for role in ("t1", "t2", "stir"):
        chosen = getattr(pairing, role)
        if chosen is not None:
            roles[chosen.uid] = role.upper()
    return roles, list(pairing.reasons)


def _series_row(info: Any, call: Any, role: str) -> dict[str, Any]:
    plane = info.plane + (f" ({info.tilt_deg:.0f}° oblique)" if info.is_oblique else "")
    return {
        "number": info.number,
        "description": info.description,
        "plane": plane,
        "matrix": f"{info.shape[0]}x{info.shape[1]}",
        "spacing_mm": "x".join(f"{s:.3g}" for s in info.spacing),
        "slices": info.shape[2],
        "contrast": call.contrast + (" (fat-sat)" if call.fat_suppressed else ""),
        "why": "; ".join(call.reasons),
        "paired_as": role,
        "source": info.source,
    }


def _run_info(args: argparse.Namespace) -> int:
    from bmetoolkit.pairing.contrast import classify_series

    series, skipped = _describe_inputs(args.path)
    roles, reasons = _pairing_of(series)
    rows = [_series_row(s, classify_series(s), roles.get(s.uid, "")) for s in series]
    if args.json:
        print(json.dumps({"series": rows, "pairing": reasons, "skipped": skipped}, indent=2))
        return EXIT_OK
    for note in skipped:
        print(f"note: {note}")
    columns = ["number", "description", "plane", "matrix", "spacing_mm", "slices", "contrast"]
    columns += ["paired_as", "why"]
    print(_table(rows, columns))
    print()
    for reason in reasons:
        print(f"pairing: {reason}")
    return EXIT_OK


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[("" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


# --- convert ---------------------------------------------------------------------------------


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


def _run_convert(args: argparse.Namespace) -> int:
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


# --- phantom ---------------------------------------------------------------------------------


def _run_phantom(args: argparse.Namespace) -> int:
    from bmetoolkit.data.phantom import PRESETS, PhantomConfig, make_phantom

    if args.lesions not in ("random", *PRESETS):
        choices = ", ".join(("random", *PRESETS))
        print(
            f"bmetoolkit phantom: error: unknown --lesions {args.lesions!r}; choose one of "
            f"{choices}",
            file=sys.stderr,
        )
        return EXIT_USAGE
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
